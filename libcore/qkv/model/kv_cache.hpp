// kv_cache: keys and values of every layer for the positions of one sequence seen so far, so
// that each new token costs one position's work in generation.
#pragma once
#include "qkv/model/attention.hpp"
#include "qkv/model/weights.hpp"
#include "qkv/tensor/backend.hpp"

namespace qkv {

class KVCache {
  public:
    // Room for capacity positions (0: n_ctx), allocated once.
    KVCache(Backend& be, const Config& cfg, int64_t capacity = 0);
    KVLayerView layer(int64_t l) const; // view at the current length
    int64_t length() const { return length_; }
    int64_t capacity() const { return capacity_; }
    void advance(int64_t n) { length_ += n; } // after every layer has seen n new positions
    void clear() { length_ = 0; }

  private:
    Tensor k_, v_; // [layer, capacity, kv_head * d_head] each
    int64_t capacity_ = 0, width_ = 0, length_ = 0;
};

} // namespace qkv

#include "qkv/model/kv_cache.hpp"

namespace qkv {

KVCache::KVCache(Backend& be, const Config& cfg, int64_t capacity)
    : capacity_(capacity > 0 && capacity < cfg.n_ctx ? capacity : cfg.n_ctx),
      width_(cfg.kv_heads() * cfg.d_head) {
    k_ = be.empty({cfg.n_layers, capacity_, width_});
    v_ = be.empty({cfg.n_layers, capacity_, width_});
}

KVLayerView KVCache::layer(int64_t l) const {
    KVLayerView v;
    v.k = const_cast<float*>(k_.f32()) + l * capacity_ * width_;
    v.v = const_cast<float*>(v_.f32()) + l * capacity_ * width_;
    v.pos0 = length_;
    return v;
}

} // namespace qkv

// padding: ragged batches. Sequences of unequal length share one length [batch, pos], each
// padded on the left or on the right; the mask [batch, pos] says which tokens are real (1) and
// which are pads (0). The model treats a padded batch as Hugging Face does from an attention
// mask: a token's position counts only the real tokens before it (so a left-padded sequence
// starts at position 0 after its pads), and no query sees a pad key. A pad query sees only
// itself and the real keys before it (its values mean nothing, but stay finite), so every real
// token's result equals its sequence's result alone.
#pragma once
#include "qkv/tensor/tensor.hpp"

#include <string>
#include <vector>

namespace qkv {

class Padding {
  public:
    Padding() = default; // no batch yet: none() is true
    // Every token real.
    static Padding none(int64_t batch, int64_t n_pos);
    // mask: host int32 [batch, pos] of 0 and 1; each row's real tokens must be one run (left or
    // right padding) of at least one token. where names the file and dataset in errors.
    static Padding from_mask(const Tensor& mask, const std::string& where);

    bool padded() const { return !mask_.empty(); } // some token is a pad
    const Tensor& mask() const { return mask_; }   // host int32 [batch, pos]; empty: none
    int64_t batch() const { return static_cast<int64_t>(begin_.size()); }
    int64_t n_pos() const { return n_pos_; }
    int64_t begin(int64_t b) const { return begin_[b]; } // first real token of sequence b
    int64_t end(int64_t b) const { return end_[b]; }     // one past its last real token
    int64_t length(int64_t b) const { return end_[b] - begin_[b]; }
    bool real(int64_t b, int64_t p) const { return p >= begin_[b] && p < end_[b]; }
    int32_t pad_id = 0; // the token id in the pads' places (the files keep it with the mask)

    // Each token's position [batch * pos]: pos0 plus the number of real tokens before it in its
    // sequence; a pad's is pos0 (what it is does not matter, only that it is in range).
    std::vector<int32_t> positions(int64_t pos0 = 0) const;

  private:
    Tensor mask_;
    int64_t n_pos_ = 0;
    std::vector<int64_t> begin_, end_; // [batch]
};

// Sequences of unequal length as one batch: tokens [batch, longest], each padded on the left
// (left) or the right with pad_id, and which tokens are pads. Every sequence needs a token.
struct PaddedBatch {
    Tensor tokens;
    Padding pad;
};
PaddedBatch pad_batch(const std::vector<std::vector<int32_t>>& seqs, bool left, int32_t pad_id);

} // namespace qkv

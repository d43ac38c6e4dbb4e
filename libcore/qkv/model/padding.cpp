#include "qkv/model/padding.hpp"

#include "qkv/base/errors.hpp"

#include <algorithm>

namespace qkv {

Padding Padding::none(int64_t batch, int64_t n_pos) {
    Padding p;
    p.n_pos_ = n_pos;
    p.begin_.assign(batch, 0);
    p.end_.assign(batch, n_pos);
    return p;
}

Padding Padding::from_mask(const Tensor& mask, const std::string& where) {
    if (mask.rank() != 2)
        throw ShapeError(where + ": rank " + std::to_string(mask.rank()) +
                         ", expected [batch, pos]");
    const int64_t B = mask.dim(0), T = mask.dim(1);
    Padding p = none(B, T);
    bool any_pad = false;
    for (int64_t b = 0; b < B; ++b) {
        const int32_t* m = mask.i32() + b * T;
        const std::string row = where + ": sequence " + std::to_string(b);
        int64_t first = -1, last = -1;
        for (int64_t t = 0; t < T; ++t) {
            if (m[t] != 0 && m[t] != 1)
                throw FormatError(row + ", pos " + std::to_string(t) + ": value " +
                                  std::to_string(m[t]) +
                                  " (a mask holds 1 for a real token, 0 "
                                  "for a pad)");
            if (m[t] == 0) {
                any_pad = true;
                continue;
            }
            if (last >= 0 && last != t - 1)
                throw FormatError(row + ": pads between real tokens (a sequence is padded on the "
                                        "left or on the right)");
            if (first < 0) first = t;
            last = t;
        }
        if (first < 0 && T > 0) throw FormatError(row + ": has no real token");
        p.begin_[b] = first < 0 ? 0 : first;
        p.end_[b] = last + 1;
    }
    if (any_pad) p.mask_ = mask;
    return p;
}

PaddedBatch pad_batch(const std::vector<std::vector<int32_t>>& seqs, bool left, int32_t pad_id) {
    const int64_t B = static_cast<int64_t>(seqs.size());
    int64_t T = 0;
    for (const auto& s : seqs)
        T = std::max(T, static_cast<int64_t>(s.size()));
    Tensor tokens = Tensor::zeros({B, T}, DType::I32); // [batch, pos]
    Tensor mask = Tensor::zeros({B, T}, DType::I32);   // [batch, pos]
    for (int64_t b = 0; b < B; ++b) {
        const int64_t n = static_cast<int64_t>(seqs[b].size());
        const int64_t first = left ? T - n : 0; // where its real tokens begin
        for (int64_t p = 0; p < T; ++p) {
            const bool real = p >= first && p < first + n;
            tokens.i32()[b * T + p] = real ? seqs[b][p - first] : pad_id;
            mask.i32()[b * T + p] = real;
        }
    }
    PaddedBatch out{tokens, Padding::from_mask(mask, "a padded batch")};
    out.pad.pad_id = pad_id;
    return out;
}

std::vector<int32_t> Padding::positions(int64_t pos0) const {
    std::vector<int32_t> pos(batch() * n_pos_);
    for (int64_t b = 0; b < batch(); ++b)
        for (int64_t t = 0; t < n_pos_; ++t)
            pos[b * n_pos_ + t] = static_cast<int32_t>(pos0 + (real(b, t) ? t - begin_[b] : 0));
    return pos;
}

} // namespace qkv

#include "qkv/model/weights.hpp"

#include <cstring>

namespace qkv {

namespace {

// Calls f(fused row d's slice of W_x[h], W_x[h]'s row d) for every x, head h and row d.
template <typename F>
void each_qkv_row(int64_t head, int64_t kv_head, int64_t d_model, int64_t d_head, F f) {
    const int64_t heads[3] = {head, kv_head, kv_head};
    const int64_t col0[3] = {0, head * d_head, (head + kv_head) * d_head};
    const int64_t width = (head + 2 * kv_head) * d_head;
    for (int64_t d = 0; d < d_model; ++d)
        for (int x = 0; x < 3; ++x)
            for (int64_t h = 0; h < heads[x]; ++h)
                f(d * width + col0[x] + h * d_head, x, (h * d_model + d) * d_head);
}

} // namespace

void pack_qkv(const float* const W[3], int64_t head, int64_t kv_head, int64_t d_model,
              int64_t d_head, float* fused) {
    each_qkv_row(head, kv_head, d_model, d_head, [&](int64_t at, int x, int64_t from) {
        std::memcpy(fused + at, W[x] + from, d_head * sizeof(float));
    });
}

void unpack_qkv(const float* fused, int64_t head, int64_t kv_head, int64_t d_model, int64_t d_head,
                float* const W[3]) {
    each_qkv_row(head, kv_head, d_model, d_head, [&](int64_t at, int x, int64_t to) {
        std::memcpy(W[x] + to, fused + at, d_head * sizeof(float));
    });
}

} // namespace qkv

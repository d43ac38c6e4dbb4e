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

Tensor pack_qkv(const Tensor W[3], int64_t head, int64_t kv_head, int64_t d_model, int64_t d_head) {
    const DType t = W[0].dtype();
    const size_t e = dtype_size(t);
    Tensor fused = Tensor::uninitialized({d_model, (head + 2 * kv_head) * d_head}, t);
    auto* out = static_cast<char*>(fused.data());
    each_qkv_row(head, kv_head, d_model, d_head, [&](int64_t at, int x, int64_t from) {
        std::memcpy(out + at * e, static_cast<const char*>(W[x].data()) + from * e, d_head * e);
    });
    return fused;
}

Tensor concat_columns(const Tensor& a, const Tensor& b) {
    const int64_t rows = a.dim(0), ca = a.dim(1), cb = b.dim(1);
    const size_t e = dtype_size(a.dtype());
    Tensor both = Tensor::uninitialized({rows, ca + cb}, a.dtype());
    auto* out = static_cast<char*>(both.data());
    const auto *pa = static_cast<const char*>(a.data()), *pb = static_cast<const char*>(b.data());
    for (int64_t r = 0; r < rows; ++r) {
        std::memcpy(out + r * (ca + cb) * e, pa + r * ca * e, ca * e);
        std::memcpy(out + (r * (ca + cb) + ca) * e, pb + r * cb * e, cb * e);
    }
    return both;
}

void unpack_qkv(const float* fused, int64_t head, int64_t kv_head, int64_t d_model, int64_t d_head,
                float* const W[3]) {
    each_qkv_row(head, kv_head, d_model, d_head, [&](int64_t at, int x, int64_t to) {
        std::memcpy(W[x] + to, fused + at, d_head * sizeof(float));
    });
}

} // namespace qkv

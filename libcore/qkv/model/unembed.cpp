#include "qkv/model/unembed.hpp"

#include "qkv/model/norm.hpp"

namespace qkv {

void unembed_forward(Backend& be, const Config& cfg, const UnembedWeights& w, const float* x,
                     int64_t rows, float* logits) {
    const int64_t D = cfg.d_model, V = cfg.vocab_size;
    Tensor h = be.empty({rows, D}); // [rows, d_model]
    normalize(be, cfg, w.ln_final, x, rows, h.f32());
    be.gemm(false, false, rows, V, D, 1.0f, h.f32(), D, w.W_U.f32(), V, 0.0f, logits, V);
    if (!w.b_U.empty()) be.add_bias(logits, w.b_U.f32(), rows, V);
}

} // namespace qkv

#include "model/unembed.hpp"

namespace qkv {

void unembed_forward(Backend& be, const Config& cfg, const UnembedWeights& w, const float* x,
                     int64_t rows, float* logits) {
    const int64_t D = cfg.d_model, V = cfg.vocab_size;
    Tensor h = be.empty({rows, D}); // [rows, d_model]
    be.layer_norm(x, w.ln_final.w.f32(), w.ln_final.b.f32(), static_cast<float>(cfg.ln_eps), rows,
                  D, h.f32(), nullptr, nullptr);
    be.gemm(false, false, rows, V, D, 1.0f, h.f32(), D, w.W_U.f32(), V, 0.0f, logits, V);
    be.add_bias(logits, w.b_U.f32(), rows, V);
}

} // namespace qkv

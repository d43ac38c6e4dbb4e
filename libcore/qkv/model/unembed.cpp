#include "qkv/model/unembed.hpp"

#include "qkv/model/norm.hpp"
#include "qkv/tensor/matmul.hpp"

namespace qkv {

void unembed_forward(Backend& be, const Config& cfg, const UnembedWeights& w, const float* x,
                     int64_t rows, float* logits) {
    const int64_t D = cfg.d_model, V = cfg.vocab_size;
    Tensor h = be.empty({rows, D}); // [rows, d_model]
    normalize(be, cfg, w.ln_final, x, rows, h.f32());
    const MatrixView W_U = w.tied ? weight_view(w.W_U, 0, V, D, D).T() // W_E^T
                                  : weight_view(w.W_U, 0, D, V, V);
    matmul(be, {h.f32(), rows, D, D}, W_U, {logits, rows, V, V});
    if (!w.b_U.empty()) be.add_bias(logits, w.b_U.f32(), rows, V);
}

} // namespace qkv

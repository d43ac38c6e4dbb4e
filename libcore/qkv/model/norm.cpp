#include "qkv/model/norm.hpp"

namespace qkv {

void normalize(Backend& be, const Config& cfg, const LayerNormWeights& w, const float* x,
               int64_t rows, float* out) {
    const float eps = static_cast<float>(cfg.ln_eps);
    if (cfg.norm == "rmsnorm")
        be.rms_norm(x, w.w.f32(), eps, rows, cfg.d_model, out);
    else
        be.layer_norm(x, w.w.f32(), w.b.f32(), eps, rows, cfg.d_model, out, nullptr, nullptr);
}

} // namespace qkv

#include "model/mlp.hpp"

namespace qkv {

void mlp_forward(Backend& be, const Config& cfg, const LayerNormWeights& ln2, const MlpWeights& w,
                 Tensor& resid, const MlpSaves& saves, MlpResult& result) {
    const int64_t rows = resid.dim(0) * resid.dim(1); // batch * pos: one GEMM for all
    const int64_t D = cfg.d_model, F = cfg.d_mlp;

    // 1. LayerNorm 2.
    Tensor x = be.empty({rows, D}); // [batch*pos, d_model]
    be.layer_norm(resid.f32(), ln2.w.f32(), ln2.b.f32(), static_cast<float>(cfg.ln_eps), rows, D,
                  x.f32(), nullptr, nullptr);
    // 2. Up-projection: pre = x W_in + b_in.
    Tensor hidden = be.empty({rows, F}); // [batch*pos, d_mlp]
    be.gemm(false, false, rows, F, D, 1.0f, x.f32(), D, w.W_in.f32(), F, 0.0f, hidden.f32(), F);
    be.add_bias(hidden.f32(), w.b_in.f32(), rows, F);
    if (saves.pre) {
        result.pre = be.empty({resid.dim(0), resid.dim(1), F});
        be.copy(result.pre.f32(), hidden.f32(), rows * F);
    }
    // 3. GELU (tanh form).
    be.gelu(hidden.f32(), rows * F);
    if (saves.post) {
        result.post = be.empty({resid.dim(0), resid.dim(1), F});
        be.copy(result.post.f32(), hidden.f32(), rows * F);
    }
    // 4. Down-projection, bias, and the residual add: resid += post W_out + b_out.
    be.gemm(false, false, rows, D, F, 1.0f, hidden.f32(), F, w.W_out.f32(), D, 0.0f, x.f32(), D);
    be.add_bias(x.f32(), w.b_out.f32(), rows, D);
    be.add(resid.f32(), x.f32(), rows * D);
}

} // namespace qkv

#include "qkv/model/mlp.hpp"

#include "qkv/model/norm.hpp"
#include "qkv/tensor/matmul.hpp"

namespace qkv {

void mlp_forward(Backend& be, const Config& cfg, const LayerNormWeights& ln2, const MlpWeights& w,
                 Tensor& resid, const MlpSaves& saves, MlpResult& result, const Tensor* resid_pre,
                 const SiteEdits* edits) {
    const int64_t B = resid.dim(0), T = resid.dim(1), rows = B * T; // one GEMM for all
    const int64_t D = cfg.d_model, F = cfg.d_mlp;
    const bool gated = cfg.gated_mlp != 0;
    auto keep = [&](Tensor& dst, const float* src, int64_t ld) {
        dst = be.empty({B, T, F});
        be.copy2d(dst.f32(), F, src, ld, rows, F);
    };

    auto edit = [&](Site site, float* x, int64_t ld, int64_t units, int64_t width) {
        if (edits) apply_site_edits(be, *edits, site, x, {T * ld, ld, width}, B, T, units, width);
    };
    // 1. Norm 2 (of the layer's input stream when attention and MLP run side by side).
    Tensor x = be.empty({rows, D}); // [batch*pos, d_model]
    normalize(be, cfg, ln2, (resid_pre ? *resid_pre : resid).f32(), rows, x.f32());
    // 2. Up-projection: pre = x W_in + b_in; gated, W_gate and W_in side by side in one GEMM.
    const int64_t up = gated ? 2 * F : F;
    Tensor hidden = be.empty({rows, up}); // [batch*pos, (gate|in) d_mlp]
    matmul(be, {x.f32(), rows, D, D}, weight_view(w.W_in, 0, D, up, up),
           {hidden.f32(), rows, up, up});
    if (!w.b_in.empty()) be.add_bias(hidden.f32(), w.b_in.f32(), rows, F);
    edit(Site::MlpPre, hidden.f32(), up, F, 1);
    if (saves.pre) keep(result.pre, hidden.f32(), up);
    if (saves.pre_linear && gated) keep(result.pre_linear, hidden.f32() + F, up);
    // 3. The activation: GELU (tanh or erf form), or silu(gate) * in.
    Tensor post = hidden;
    if (gated) {
        post = be.empty({rows, F}); // [batch*pos, d_mlp]
        be.silu_mul(hidden.f32(), rows, F, post.f32());
    } else if (cfg.act == "gelu") {
        be.gelu_erf(hidden.f32(), rows * F);
    } else {
        be.gelu(hidden.f32(), rows * F);
    }
    edit(Site::MlpPost, post.f32(), F, F, 1);
    if (saves.post) keep(result.post, post.f32(), F);
    // 4. Down-projection, bias, and the residual add: resid += post W_out + b_out.
    matmul(be, {post.f32(), rows, F, F}, weight_view(w.W_out, 0, F, D, D), {x.f32(), rows, D, D});
    if (!w.b_out.empty()) be.add_bias(x.f32(), w.b_out.f32(), rows, D);
    edit(Site::MlpOut, x.f32(), D, 1, D);
    be.add(resid.f32(), x.f32(), rows * D);
    if (saves.out) result.out = x.reshaped({B, T, D});
}

} // namespace qkv

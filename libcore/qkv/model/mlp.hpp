// mlp: norm 2, then the MLP, added to the residual stream.
//   GPT-2:  pre = x W_in + b_in,  post = GELU(pre)  (GPT-NeoX: the exact GELU)
//   SwiGLU: pre = x W_gate,  pre_linear = x W_in,  post = silu(pre) * pre_linear
// and resid += post W_out + b_out. With a parallel residual (GPT-NeoX) x is the norm of the
// stream the layer began with, not of the stream after attention.
#pragma once
#include "qkv/model/intervention.hpp"
#include "qkv/model/weights.hpp"
#include "qkv/tensor/backend.hpp"

namespace qkv {

struct MlpSaves {
    bool pre = false, pre_linear = false, post = false, out = false;
};

struct MlpResult {
    Tensor pre, pre_linear, post; // [batch, pos, d_mlp], when asked for (on the backend's device)
    Tensor out;                   // [batch, pos, d_model]: the MLP's change to the stream
};

// resid: [batch, pos, d_model] on the backend's device, updated in place. resid_pre: the
// stream before the layer's attention (same shape) for a parallel-residual model, else null.
// edits: of mlp_pre, mlp_post and mlp_out, or null (resid_mid, the stream as it enters, is the
// caller's).
void mlp_forward(Backend& be, const Config& cfg, const LayerNormWeights& ln2, const MlpWeights& w,
                 Tensor& resid, const MlpSaves& saves, MlpResult& result,
                 const Tensor* resid_pre = nullptr, const SiteEdits* edits = nullptr);

} // namespace qkv

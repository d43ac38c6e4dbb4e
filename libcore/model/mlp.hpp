// mlp: LayerNorm 2, x W_in + b_in, GELU, W_out + b_out, added to the residual stream.
#pragma once
#include "model/weights.hpp"
#include "tensor/backend.hpp"

namespace qkv {

struct MlpSaves {
    bool pre = false, post = false;
};

struct MlpResult {
    Tensor pre, post; // [batch, pos, d_mlp], when asked for (on the backend's device)
};

// resid: [batch, pos, d_model] on the backend's device, updated in place.
void mlp_forward(Backend& be, const Config& cfg, const LayerNormWeights& ln2, const MlpWeights& w,
                 Tensor& resid, const MlpSaves& saves, MlpResult& result);

} // namespace qkv

// norm: the family's normalisation of the residual stream before attention, the MLP and the
// unembedding: LayerNorm (GPT-2: centre, scale to unit variance, times w plus b) or RMSNorm
// (Llama: scale to unit root mean square, times w).
#pragma once
#include "qkv/model/weights.hpp"
#include "qkv/tensor/backend.hpp"

namespace qkv {

// x [rows, d_model] -> out [rows, d_model], both on the backend's device.
void normalize(Backend& be, const Config& cfg, const LayerNormWeights& w, const float* x,
               int64_t rows, float* out);

} // namespace qkv

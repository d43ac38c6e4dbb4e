// unembed: the prediction from the residual stream: final norm, then x W_U + b_U.
#pragma once
#include "qkv/model/weights.hpp"
#include "qkv/tensor/backend.hpp"

namespace qkv {

// x [rows, d_model] (device) -> logits [rows, vocab] (device).
void unembed_forward(Backend& be, const Config& cfg, const UnembedWeights& w, const float* x,
                     int64_t rows, float* logits);

} // namespace qkv

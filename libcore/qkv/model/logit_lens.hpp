// logit_lens: what the model would predict from the residual stream at any layer: the final
// norm and the unembedding applied to an intermediate stream, as at the last layer
// (nostalgebraist's logit lens; TransformerLens's accumulated_resid with apply_ln).
#pragma once
#include "qkv/model/weights.hpp"
#include "qkv/tensor/backend.hpp"

#include <cstdint>
#include <vector>

namespace qkv {

struct LensPrediction {
    int32_t token = 0; // the most likely next token (the lowest id among equal logits)
    double prob = 0;   // its probability, softmax in double over the float logits
};

// streams: host [rows, d_model] -> one prediction a row, computed a few rows at a time.
std::vector<LensPrediction> logit_lens(Backend& be, const Config& cfg, const UnembedWeights& w,
                                       const float* streams, int64_t rows);

} // namespace qkv

// attribution: direct logit attribution. The final stream at a position is a sum of parts (the
// token and position embeddings, every head's head_out, every b_O, every MLP's out); the logit
// of a token, or the difference of an answer's and a foil's, is linear in the stream once the
// final norm's scale is frozen at its value on the whole stream (as TransformerLens does):
//   logit_diff = sum over parts c of  norm_frozen(c) . (w * u)  +  remaining
// with u = W_U[:, answer] - W_U[:, foil], w the final norm's weight, norm_frozen(c) =
// (c - mean(c)) * rstd for LayerNorm (c * rstd for RMSNorm), and remaining = b . u plus the
// b_U difference. The parts' contributions and the remaining term sum to the real logit
// difference.
#pragma once
#include "qkv/model/weights.hpp"

#include <vector>

namespace qkv {

// The direction one part's contribution is read along, for one position's final stream x.
struct LogitDirection {
    std::vector<double> wu; // [d_model]: w * u
    double rstd = 1;        // the final norm's scale on the whole stream, frozen
    bool center = true;     // LayerNorm subtracts each part's mean; RMSNorm does not
    double remaining = 0;   // the norm's bias along u, and b_U's difference
};

// From the host weights of the unembedding, the final stream x [d_model] (host), the answer and
// the foil (-1: none, the answer's logit itself).
LogitDirection logit_direction(const Config& cfg, const UnembedWeights& w, const float* x,
                               int32_t answer, int32_t foil);

// One part's direct contribution along the direction.
double direct_contribution(const LogitDirection& dir, const float* part, int64_t d_model);

} // namespace qkv

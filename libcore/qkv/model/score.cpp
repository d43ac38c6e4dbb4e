#include "qkv/model/score.hpp"

#include <algorithm>
#include <cmath>

namespace qkv {

std::vector<ScoreWindow> score_windows(int64_t n, int64_t context, int64_t stride) {
    std::vector<ScoreWindow> out;
    int64_t prev_end = 0;
    for (int64_t begin = 0; begin < n; begin += stride) {
        const int64_t end = std::min(begin + context, n);
        // A window's first token has nothing before it in the window: it is scored only where
        // an earlier window ended before it (never token 0; with stride = context, no window
        // start, as in the guide, whose labels are shifted inside the model).
        out.push_back({begin, end, std::max(prev_end, begin + 1)});
        prev_end = end;
        if (end == n) break;
    }
    return out;
}

double log_softmax(const float* logits, int64_t vocab, double* logprobs) {
    double mx = logits[0];
    for (int64_t v = 1; v < vocab; ++v)
        mx = std::max(mx, static_cast<double>(logits[v]));
    double sum = 0;
    for (int64_t v = 0; v < vocab; ++v)
        sum += std::exp(static_cast<double>(logits[v]) - mx);
    const double lse = mx + std::log(sum);
    double entropy = 0;
    for (int64_t v = 0; v < vocab; ++v) {
        logprobs[v] = logits[v] - lse;
        entropy -= std::exp(logprobs[v]) * logprobs[v];
    }
    return entropy;
}

int64_t token_rank(const float* logits, int64_t vocab, int32_t id) {
    int64_t above = 0;
    for (int64_t v = 0; v < vocab; ++v)
        if (logits[v] > logits[id] || (logits[v] == logits[id] && v < id)) ++above;
    return above + 1;
}

double kl_divergence(const float* base_logprobs, const float* run_logprobs, int64_t vocab) {
    double kl = 0;
    for (int64_t v = 0; v < vocab; ++v) {
        const double lb = base_logprobs[v];
        if (std::isinf(lb)) continue; // p_base = 0 adds nothing
        kl += std::exp(lb) * (lb - run_logprobs[v]);
    }
    return kl;
}

} // namespace qkv

#include "qkv/model/sampler.hpp"

#include "qkv/base/errors.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace qkv {

Sampler::Sampler(const SamplerOptions& opt) : opt_(opt), rng_(opt.seed) {
    if (!(opt.temperature >= 0) || !std::isfinite(opt.temperature))
        throw UsageError("--temperature must be 0 or more");
    if (opt.top_k < 0) throw UsageError("--top-k must be 0 (off) or more");
    if (!(opt.top_p > 0 && opt.top_p <= 1)) throw UsageError("--top-p must be in (0, 1]");
}

double log_softmax_at(const float* logits, int64_t vocab, int32_t id) {
    const double mx = *std::max_element(logits, logits + vocab);
    double sum = 0;
    for (int64_t i = 0; i < vocab; ++i)
        sum += std::exp(static_cast<double>(logits[i]) - mx);
    return static_cast<double>(logits[id]) - mx - std::log(sum);
}

std::vector<std::pair<int32_t, double>> Sampler::distribution(const float* logits,
                                                              int64_t vocab) const {
    // Most likely first when a filter needs the order (ties by lower id, so the order never
    // depends on the sort algorithm); otherwise in id order.
    std::vector<int32_t>& order = order_;
    order.resize(vocab);
    std::iota(order.begin(), order.end(), 0);
    auto before = [&](int32_t a, int32_t b) {
        return logits[a] != logits[b] ? logits[a] > logits[b] : a < b;
    };
    if (opt_.temperature == 0) { // greedy: the largest logit, the lower id on a tie
        return {{*std::min_element(order.begin(), order.end(), before), 1.0}};
    }
    // Only the tokens that can be kept need sorting: the top k, or all for top-p alone; with
    // neither filter every token stays, in id order.
    if (opt_.top_k > 0)
        std::partial_sort(order.begin(), order.begin() + std::min<int64_t>(opt_.top_k, vocab),
                          order.end(), before);
    else if (opt_.top_p < 1)
        std::sort(order.begin(), order.end(), before);
    int64_t keep = opt_.top_k > 0 ? std::min<int64_t>(opt_.top_k, vocab) : vocab;
    const double mx = *std::max_element(logits, logits + vocab);
    std::vector<double> p(keep);
    double sum = 0;
    for (int64_t i = 0; i < keep; ++i) {
        p[i] = std::exp((logits[order[i]] - mx) / opt_.temperature);
        sum += p[i];
    }
    for (auto& x : p)
        x /= sum;
    if (opt_.top_p < 1) {
        double cum = 0;
        int64_t n = 0;
        while (n < keep) {
            cum += p[n++];
            if (cum >= opt_.top_p) break;
        }
        keep = n;
        double s = std::accumulate(p.begin(), p.begin() + keep, 0.0);
        for (int64_t i = 0; i < keep; ++i)
            p[i] /= s;
    }
    std::vector<std::pair<int32_t, double>> out(keep);
    for (int64_t i = 0; i < keep; ++i)
        out[i] = {order[i], p[i]};
    return out;
}

Sample Sampler::sample(const float* logits, int64_t vocab) {
    auto dist = distribution(logits, vocab);
    int32_t id = dist.back().first;
    if (dist.size() > 1) {
        const double u = rng_.uniform();
        double cum = 0;
        for (const auto& [tok, p] : dist) {
            cum += p;
            if (u < cum) {
                id = tok;
                break;
            }
        }
    }
    return {id, log_softmax_at(logits, vocab, id)};
}

} // namespace qkv

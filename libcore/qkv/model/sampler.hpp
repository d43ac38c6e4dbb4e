// sampler: picks the next token from logits, with our own seeded generator (rng.hpp), so a
// seed gives the same text on every machine, compiler and thread count.
#pragma once
#include "qkv/base/rng.hpp"

#include <cstdint>
#include <vector>

namespace qkv {

struct SamplerOptions {
    double temperature = 1.0; // 0: greedy
    int64_t top_k = 0;        // 0: off
    double top_p = 1.0;       // 1: off
    uint64_t seed = 0;
};

struct Sample {
    int32_t id;
    double logprob; // log-probability of id under the model (softmax of the raw logits)
};

class Sampler {
  public:
    explicit Sampler(const SamplerOptions& opt);
    // logits [vocab] -> one token, drawn from distribution().
    Sample sample(const float* logits, int64_t vocab);
    // The distribution sample() draws from: temperature, then top-k, then top-p (the smallest
    // set of most likely tokens whose probability reaches p), renormalised. For tests.
    std::vector<std::pair<int32_t, double>> distribution(const float* logits, int64_t vocab) const;

  private:
    SamplerOptions opt_;
    Rng rng_;
    mutable std::vector<int32_t> order_; // reused between steps: no allocation per token
};

// log softmax of one logit within logits [vocab], in double.
double log_softmax_at(const float* logits, int64_t vocab, int32_t id);

} // namespace qkv

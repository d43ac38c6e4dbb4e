// sweep: every single-site variant of an intervention, each scored, in batches rather than one
// run a variant. The clean run goes once, keeping the stream that enters each layer; the
// variants of layer L then run as one batch (that stream repeated, each row with its own edit)
// from L to the last layer, and each row's last position is scored: the logit difference of an
// answer from a foil, the answer's log-probability, or the KL divergence of the row's
// next-token distribution from the clean run's.
#pragma once
#include "qkv/model/intervention.hpp"
#include "qkv/model/weights.hpp"
#include "qkv/tensor/backend.hpp"

#include <functional>
#include <vector>

namespace qkv {

struct SweepMetric {
    int32_t answer = -1; // -1: KL(clean || variant) at the last position, in nats
    int32_t foil = -1;   // -1: log p(answer) instead of logit(answer) - logit(foil)
};

// The variants of layer L, one edit each (the sweep sets which batch row it changes).
using SweepVariants = std::function<std::vector<SiteEdit>(int64_t layer)>;

struct SweepResult {
    double clean = 0;                        // the metric of the run without any edit
    std::vector<std::vector<double>> metric; // [layer - first][variant]
};

// stream: [1, pos, d_model] on the device, entering layer `first`; the variants of the layers
// [first, stop) are swept, at most max_batch a batch.
SweepResult run_sweep(Backend& be, const ModelWeights& w, const Tensor& stream, int64_t first,
                      int64_t stop, const SweepVariants& variants, const SweepMetric& metric,
                      int64_t max_batch = 64);

} // namespace qkv

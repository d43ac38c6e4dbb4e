// activation_grads: how a metric of one position's prediction depends on every layer's
// activations, for every family qkv runs. The forward pass is inference's (embed_forward,
// block_forward), keeping what the backward pass reads; the backward pass goes through the layer
// functions training uses (train/backprop.hpp), last layer first, with no weight's gradient.
// Attribution patching reads it: patching an activation a of this run with another run's a'
// changes the metric by about (a' - a) . d metric / d a, one backward pass for every site.
// Everything here runs on the CPU backend (host memory).
#pragma once
#include "qkv/base/thread_pool.hpp"
#include "qkv/model/weights.hpp"
#include "qkv/tensor/backend.hpp"

#include <vector>

namespace qkv {

// The activations attribution patching reads, per layer (host).
struct LayerActivations {
    std::vector<Tensor> resid_pre; // [layer] [batch, pos, d_model]: the stream entering it
    std::vector<Tensor> z;         // [layer] [batch, pos, head, d_head]
};

// The metric of one position per sequence: logit(answer) - logit(foil), or log p(answer)
// without a foil (foil -1).
struct LogitMetric {
    int32_t answer = 0;
    int32_t foil = -1;
    std::vector<int64_t> position; // [batch]: the position scored in each sequence
};

struct MetricGradients {
    std::vector<double> metric; // [batch]
    LayerActivations values;    // this run's activations
    LayerActivations grads;     // d metric / d each of them (each sequence its own metric)
};

// tokens: host int32 [batch, pos], every token real (no padding), from position 0.
LayerActivations layer_activations(Backend& be, const ModelWeights& w, const Tensor& tokens);
MetricGradients metric_gradients(Backend& be, ThreadPool& pool, const ModelWeights& w,
                                 const Tensor& tokens, const LogitMetric& metric);

} // namespace qkv

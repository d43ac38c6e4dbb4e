// adamw: the optimizer (AdamW as torch.optim.AdamW computes it), the learning-rate schedule
// (linear warm-up, then cosine decay to a floor, as nanoGPT) and gradient clipping by the
// global norm (as torch.nn.utils.clip_grad_norm_).
#pragma once
#include <cstdint>
#include <vector>

namespace qkv {

struct AdamWConfig {
    double beta1 = 0.9, beta2 = 0.95, eps = 1e-8, weight_decay = 0.1;
};

// One step on a span of parameters. step is 1 for the first update; decay says whether the
// weight decay applies to this span (matrices and embeddings; not biases or LayerNorm).
void adamw_update(const AdamWConfig& cfg, double lr, int64_t step, bool decay, float* param,
                  const float* grad, float* m, float* v, int64_t n);

struct LrSchedule {
    double lr = 1e-3, min_lr = 1e-4;
    int64_t warmup = 100, steps = 1000;
    // The rate of step it (0-based): lr * (it + 1) / (warmup + 1) during warm-up, then a cosine
    // from lr down to min_lr at the last step.
    double at(int64_t it) const;
};

// The gradients' global L2 norm (summed in double in a fixed order); when it exceeds max_norm
// (> 0) every gradient is scaled by max_norm / (norm + 1e-6). Returns the norm before clipping.
double clip_grad_norm(float* grad, int64_t n, double max_norm);

} // namespace qkv

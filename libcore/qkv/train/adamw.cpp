#include "qkv/train/adamw.hpp"

#include <cmath>

namespace qkv {

void adamw_update(const AdamWConfig& cfg, double lr, int64_t step, bool decay, float* param,
                  const float* grad, float* m, float* v, int64_t n) {
    // torch.optim.AdamW (single tensor, not amsgrad):
    //   p *= 1 - lr * wd;  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
    //   p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
    const float b1 = static_cast<float>(cfg.beta1), b2 = static_cast<float>(cfg.beta2);
    const double bc1 = 1.0 - std::pow(cfg.beta1, static_cast<double>(step));
    const double bc2 = 1.0 - std::pow(cfg.beta2, static_cast<double>(step));
    const float step_size = static_cast<float>(lr / bc1);
    const float bc2_sqrt = static_cast<float>(std::sqrt(bc2));
    const float eps = static_cast<float>(cfg.eps);
    const float keep = decay ? static_cast<float>(1.0 - lr * cfg.weight_decay) : 1.0f;
    for (int64_t i = 0; i < n; ++i) {
        const float g = grad[i];
        m[i] = b1 * m[i] + (1.0f - b1) * g;
        v[i] = b2 * v[i] + (1.0f - b2) * g * g;
        const float denom = std::sqrt(v[i]) / bc2_sqrt + eps;
        param[i] = param[i] * keep - step_size * m[i] / denom;
    }
}

double LrSchedule::at(int64_t it) const {
    if (it < warmup) return lr * static_cast<double>(it + 1) / static_cast<double>(warmup + 1);
    if (it >= steps - 1 || steps - 1 <= warmup) return it >= steps - 1 ? min_lr : lr;
    const double ratio = static_cast<double>(it - warmup) / static_cast<double>(steps - 1 - warmup);
    const double coeff = 0.5 * (1.0 + std::cos(M_PI * ratio));
    return min_lr + coeff * (lr - min_lr);
}

double clip_grad_norm(float* grad, int64_t n, double max_norm) {
    double sq = 0;
    for (int64_t i = 0; i < n; ++i)
        sq += static_cast<double>(grad[i]) * grad[i];
    const double norm = std::sqrt(sq);
    if (max_norm > 0 && norm > max_norm) {
        const float s = static_cast<float>(max_norm / (norm + 1e-6));
        for (int64_t i = 0; i < n; ++i)
            grad[i] *= s;
    }
    return norm;
}

} // namespace qkv

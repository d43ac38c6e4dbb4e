// cpu_kernels: the per-row and per-element formulas that the CPU backend (inference) and
// backprop (training) share, so that both compute the same numbers the same way.
#pragma once
#include <cmath>
#include <cstdint>

namespace qkv {

// out[d] = (x - mean) * rstd * w + b, statistics summed in double; mean and rstd are handed
// back when asked for (training keeps them for the backward pass).
inline void layer_norm_row(const float* x, const float* w, const float* b, float eps, int64_t d,
                           float* out, float* mean_out = nullptr, float* rstd_out = nullptr) {
    double sum = 0;
    for (int64_t i = 0; i < d; ++i)
        sum += x[i];
    const float mean = static_cast<float>(sum / d);
    double var = 0;
    for (int64_t i = 0; i < d; ++i) {
        const float c = x[i] - mean;
        var += static_cast<double>(c) * c;
    }
    const float rstd = 1.0f / std::sqrt(static_cast<float>(var / d) + eps);
    for (int64_t i = 0; i < d; ++i)
        out[i] = (x[i] - mean) * rstd * w[i] + b[i];
    if (mean_out) *mean_out = mean;
    if (rstd_out) *rstd_out = rstd;
}

// out[d] = x * rstd * w with rstd = 1 / sqrt(mean(x^2) + eps), the sum in double (RMSNorm).
inline void rms_norm_row(const float* x, const float* w, float eps, int64_t d, float* out) {
    double sq = 0;
    for (int64_t i = 0; i < d; ++i)
        sq += static_cast<double>(x[i]) * x[i];
    const float rstd = 1.0f / std::sqrt(static_cast<float>(sq / d) + eps);
    for (int64_t i = 0; i < d; ++i)
        out[i] = x[i] * rstd * w[i];
}

// GELU in its exact form, v Phi(v) = 0.5 v (1 + erf(v / sqrt(2))) (GPT-NeoX, BERT).
inline float gelu_erf_value(float v) {
    return 0.5f * v * (1.0f + std::erf(v * 0.70710678118654752f));
}

// SiLU (swish): v * sigmoid(v).
inline float silu_value(float v) {
    return v / (1.0f + std::exp(-v));
}

// Rotary position embedding of one head's vector, rotate-half layout (Hugging Face's): for
// i < rot/2 the pair (x[i], x[i + rot/2]) turns by the angle whose cos and sin are given;
// dimensions from rot on are left as they are.
inline void rotary_row(float* x, const float* cos, const float* sin, int64_t rot) {
    const int64_t half = rot / 2;
    for (int64_t i = 0; i < half; ++i) {
        const float a = x[i], b = x[i + half];
        x[i] = a * cos[i] - b * sin[i];
        x[i + half] = b * cos[i] + a * sin[i];
    }
}

constexpr float kGeluC = 0.7978845608028654f; // sqrt(2 / pi)

// GPT-2's GELU (tanh approximation), 0.5 v (1 + tanh(u)) with u = sqrt(2/pi) (v + 0.044715 v^3),
// written as v / (1 + exp(-2u)): the same function with one expf instead of a tanhf.
inline float gelu_value(float v) {
    return v / (1.0f + std::exp(-2.0f * kGeluC * (v + 0.044715f * v * v * v)));
}

// Its derivative, 0.5 (1 + tanh(u)) + 0.5 v (1 - tanh(u)^2) du/dv.
inline float gelu_derivative(float v) {
    const float u = kGeluC * (v + 0.044715f * v * v * v);
    const float t = 2.0f / (1.0f + std::exp(-2.0f * u)) - 1.0f; // tanh(u)
    const float du = kGeluC * (1.0f + 3.0f * 0.044715f * v * v);
    return 0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * du;
}

// p[n] = softmax(s[n]): exponentials of s - max, summed in double, times the sum's inverse.
// p may be s.
inline void softmax_row(const float* s, float* p, int64_t n) {
    if (n <= 0) return;
    float mx = s[0];
    for (int64_t k = 1; k < n; ++k)
        mx = mx < s[k] ? s[k] : mx;
    double sum = 0;
    for (int64_t k = 0; k < n; ++k) {
        p[k] = std::exp(s[k] - mx);
        sum += p[k];
    }
    const float inv = static_cast<float>(1.0 / sum);
    for (int64_t k = 0; k < n; ++k)
        p[k] *= inv;
}

} // namespace qkv

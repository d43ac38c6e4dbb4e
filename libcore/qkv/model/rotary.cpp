#include "qkv/model/rotary.hpp"

#include <cmath>

namespace qkv {

std::vector<double> rotary_inv_freq(const Config& cfg) {
    const int64_t half = cfg.rotary_dim / 2;
    std::vector<double> inv(half);
    for (int64_t i = 0; i < half; ++i)
        inv[i] = 1.0 / std::pow(cfg.rope_theta, static_cast<double>(2 * i) / cfg.rotary_dim);
    if (cfg.rope_scaling == "llama3") {
        // Wavelengths longer than original_ctx / low_freq_factor are divided by factor, those
        // shorter than original_ctx / high_freq_factor kept; between, a linear blend.
        const double ctx = static_cast<double>(cfg.rope_original_ctx);
        const double low = cfg.rope_low_freq_factor, high = cfg.rope_high_freq_factor;
        for (double& f : inv) {
            const double wavelen = 2 * M_PI / f;
            if (wavelen > ctx / low) {
                f /= cfg.rope_factor;
            } else if (wavelen >= ctx / high) {
                const double smooth = (ctx / wavelen - low) / (high - low);
                f = (1 - smooth) * f / cfg.rope_factor + smooth * f;
            }
        }
    }
    return inv;
}

void apply_rotary(Backend& be, const Config& cfg, float* x, int64_t ld, int64_t rows, int64_t n_pos,
                  int64_t pos0, int64_t heads, const int32_t* positions) {
    const std::vector<double> inv = rotary_inv_freq(cfg);
    const int64_t half = static_cast<int64_t>(inv.size());
    if (positions) n_pos = rows; // a table row for every row of x
    Tensor cos = Tensor::zeros({n_pos, half}), sin = Tensor::zeros({n_pos, half}); // [pos, rot/2]
    for (int64_t p = 0; p < n_pos; ++p)
        for (int64_t i = 0; i < half; ++i) {
            const double angle = static_cast<double>(positions ? positions[p] : pos0 + p) * inv[i];
            cos.f32()[p * half + i] = static_cast<float>(std::cos(angle));
            sin.f32()[p * half + i] = static_cast<float>(std::sin(angle));
        }
    const Tensor c = be.to_device(cos), s = be.to_device(sin);
    be.rotary(x, ld, rows, n_pos, heads, cfg.d_head, cfg.rotary_dim, c.f32(), s.f32());
}

} // namespace qkv

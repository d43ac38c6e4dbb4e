#include "qkv/model/attribution.hpp"

#include "qkv/base/errors.hpp"

#include <cmath>

namespace qkv {

LogitDirection logit_direction(const Config& cfg, const UnembedWeights& w, const float* x,
                               int32_t answer, int32_t foil) {
    const int64_t D = cfg.d_model, V = cfg.vocab_size;
    if (w.tied) throw Error("internal: attribution reads W_U [d_model, vocab] (plain weights)");
    LogitDirection dir;
    dir.center = cfg.norm == "layernorm";
    // The final norm's statistics on the whole stream, as the forward pass computes them.
    double mean = 0, sq = 0;
    if (dir.center) {
        for (int64_t d = 0; d < D; ++d)
            mean += x[d];
        mean /= D;
    }
    for (int64_t d = 0; d < D; ++d)
        sq += (x[d] - mean) * (x[d] - mean);
    dir.rstd = 1.0 / std::sqrt(sq / D + cfg.ln_eps);
    dir.wu.assign(D, 0.0);
    for (int64_t d = 0; d < D; ++d) {
        const double u = static_cast<double>(w.W_U.f32()[d * V + answer]) -
                         (foil >= 0 ? static_cast<double>(w.W_U.f32()[d * V + foil]) : 0.0);
        dir.wu[d] = w.ln_final.w.f32()[d] * u;
        if (!w.ln_final.b.empty()) dir.remaining += w.ln_final.b.f32()[d] * u;
    }
    if (!w.b_U.empty())
        dir.remaining += w.b_U.f32()[answer] - (foil >= 0 ? w.b_U.f32()[foil] : 0.0f);
    return dir;
}

double direct_contribution(const LogitDirection& dir, const float* part, int64_t d_model) {
    double mean = 0;
    if (dir.center) {
        for (int64_t d = 0; d < d_model; ++d)
            mean += part[d];
        mean /= d_model;
    }
    double sum = 0;
    for (int64_t d = 0; d < d_model; ++d)
        sum += (part[d] - mean) * dir.wu[d];
    return sum * dir.rstd;
}

} // namespace qkv

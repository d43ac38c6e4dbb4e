#include "qkv/model/logit_lens.hpp"

#include "qkv/model/unembed.hpp"

#include <algorithm>
#include <cmath>

namespace qkv {

std::vector<LensPrediction> logit_lens(Backend& be, const Config& cfg, const UnembedWeights& w,
                                       const float* streams, int64_t rows) {
    const int64_t D = cfg.d_model, V = cfg.vocab_size;
    const int64_t chunk = std::min<int64_t>(rows, 32); // logits of 32 rows: 6 MB for GPT-2
    std::vector<LensPrediction> out(rows);
    if (rows == 0) return out;
    Tensor x = Tensor::zeros({chunk, D});   // [rows, d_model], host
    Tensor logits_d = be.empty({chunk, V}); // [rows, vocab]
    for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
        const int64_t n = std::min(chunk, rows - r0);
        std::copy(streams + r0 * D, streams + (r0 + n) * D, x.f32());
        const Tensor x_d = be.to_device(x);
        unembed_forward(be, cfg, w, x_d.f32(), n, logits_d.f32());
        Tensor logits = be.to_host(logits_d);
        for (int64_t r = 0; r < n; ++r) {
            const float* l = logits.f32() + r * V;
            const int64_t best = std::max_element(l, l + V) - l; // the first of equals
            double sum = 0;
            for (int64_t i = 0; i < V; ++i)
                sum += std::exp(static_cast<double>(l[i]) - l[best]);
            out[r0 + r] = {static_cast<int32_t>(best), 1.0 / sum};
        }
    }
    return out;
}

} // namespace qkv

#include "qkv/model/sweep.hpp"

#include "qkv/model/score.hpp"
#include "qkv/model/transformer.hpp"
#include "qkv/model/unembed.hpp"

#include <algorithm>

namespace qkv {

namespace {

// The metric of every row's last position of resid [rows, pos, d_model]; for the KL, clean holds
// the clean run's log-probabilities [vocab] (empty: this is the clean run, whose are kept there).
std::vector<double> score_last(Backend& be, const ModelWeights& w, const Tensor& resid,
                               const SweepMetric& m, std::vector<float>& clean) {
    const Config& cfg = w.config;
    const int64_t R = resid.dim(0), T = resid.dim(1), D = cfg.d_model, V = cfg.vocab_size;
    Tensor last = be.empty({R, D}); // [rows, d_model]
    be.copy2d(last.f32(), D, resid.f32() + (T - 1) * D, T * D, R, D);
    Tensor logits_d = be.empty({R, V});
    unembed_forward(be, cfg, w.unembed, last.f32(), R, logits_d.f32());
    const Tensor logits = be.to_host(logits_d); // [rows, vocab]
    std::vector<double> out(R), lp(V);
    std::vector<float> lp32(V);
    for (int64_t r = 0; r < R; ++r) {
        const float* l = logits.f32() + r * V;
        if (m.answer >= 0 && m.foil >= 0) {
            out[r] = static_cast<double>(l[m.answer]) - l[m.foil];
            continue;
        }
        log_softmax(l, V, lp.data());
        if (m.answer >= 0) {
            out[r] = lp[m.answer];
            continue;
        }
        std::copy(lp.begin(), lp.end(), lp32.begin());
        if (clean.empty()) clean = lp32;
        out[r] = kl_divergence(clean.data(), lp32.data(), V);
    }
    return out;
}

} // namespace

SweepResult run_sweep(Backend& be, const ModelWeights& w, const Tensor& stream, int64_t first,
                      int64_t stop, const SweepVariants& variants, const SweepMetric& metric,
                      int64_t max_batch) {
    const Config& cfg = w.config;
    const int64_t T = stream.dim(1), D = cfg.d_model;
    // The clean run, keeping the stream that enters each swept layer [1, pos, d_model].
    std::vector<Tensor> entering;
    Tensor resid = be.empty({1, T, D});
    be.copy(resid.f32(), stream.f32(), T * D);
    for (int64_t l = first; l < cfg.n_layers; ++l) {
        if (l < stop) {
            entering.push_back(be.empty({1, T, D}));
            be.copy(entering.back().f32(), resid.f32(), T * D);
        }
        block_forward(be, cfg, w.blocks[l], resid);
    }
    SweepResult r;
    std::vector<float> clean_logprobs; // [vocab], for the KL
    r.clean = score_last(be, w, resid, metric, clean_logprobs)[0];
    // Each layer's variants, a batch at a time: the stream repeated, row v with edit v.
    for (int64_t l = first; l < stop; ++l) {
        std::vector<SiteEdit> all = variants(l);
        std::vector<double> scores;
        for (size_t v0 = 0; v0 < all.size(); v0 += max_batch) {
            const int64_t n = std::min<int64_t>(max_batch, all.size() - v0);
            Tensor batch = be.empty({n, T, D}); // [variant, pos, d_model]
            for (int64_t v = 0; v < n; ++v)
                be.copy(batch.f32() + v * T * D, entering[l - first].f32(), T * D);
            AttentionEdit edit;
            for (int64_t v = 0; v < n; ++v) {
                edit.sites.push_back(all[v0 + v]);
                edit.sites.back().batches = {v};
            }
            block_forward(be, cfg, w.blocks[l], batch, nullptr, {}, nullptr, &edit);
            for (int64_t k = l + 1; k < cfg.n_layers; ++k)
                block_forward(be, cfg, w.blocks[k], batch);
            const std::vector<double> s = score_last(be, w, batch, metric, clean_logprobs);
            scores.insert(scores.end(), s.begin(), s.end());
        }
        r.metric.push_back(scores);
    }
    return r;
}

} // namespace qkv

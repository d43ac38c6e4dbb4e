#include "qkv/train/activation_grads.hpp"

#include "qkv/base/errors.hpp"
#include "qkv/model/embed.hpp"
#include "qkv/model/score.hpp"
#include "qkv/model/transformer.hpp"
#include "qkv/model/unembed.hpp"
#include "qkv/train/backprop.hpp"

#include <cmath>

namespace qkv {

namespace {

// What the backward pass of one layer reads, from its forward pass (host).
struct LayerTrace {
    Tensor resid_pre, resid_mid; // [batch*pos, d_model]: entering attention, entering the MLP
    Tensor qkv;     // [batch*pos, (head + 2 kv_head) d_head]: as the product makes it, after rotary
    Tensor pattern; // [batch, head, query_pos, key_pos]
    Tensor z;       // [batch, pos, head, d_head]
    Tensor
        hidden; // [batch*pos, d_mlp] before the activation; gated: [batch*pos, (gate | in) d_mlp]
};

// Columns side by side: out [rows, sum of widths] from parts [rows, width_i] (host).
Tensor side_by_side(const std::vector<const Tensor*>& parts, int64_t rows) {
    int64_t width = 0;
    for (const Tensor* p : parts)
        width += p->numel() / rows;
    Tensor out = Tensor::zeros({rows, width});
    int64_t col = 0;
    for (const Tensor* p : parts) {
        const int64_t w = p->numel() / rows;
        for (int64_t r = 0; r < rows; ++r)
            std::copy_n(p->f32() + r * w, w, out.f32() + r * width + col);
        col += w;
    }
    return out;
}

// The forward pass over tokens, each layer's trace (only resid_pre and z unless full), and the
// final stream [batch, pos, d_model].
Tensor trace_forward(Backend& be, const ModelWeights& w, const Tensor& tokens, bool full,
                     std::vector<LayerTrace>& trace) {
    const Config& cfg = w.config;
    if (be.device() != Device::CPU)
        throw UsageError("gradients of activations are computed on the CPU (--device cpu)");
    const int64_t rows = tokens.numel(), D = cfg.d_model;
    Tensor resid = embed_forward(be, cfg, w.embed, tokens, 0, false, "attribute").resid;
    BlockSaves saves;
    saves.resid_pre = true;
    saves.attn.z = true;
    if (full) {
        saves.resid_mid = true;
        saves.attn.q = saves.attn.k = saves.attn.v = saves.attn.pattern = true;
        saves.mlp.pre = saves.mlp.pre_linear = true;
    }
    for (const BlockWeights& bw : w.blocks) {
        BlockResult r;
        block_forward(be, cfg, bw, resid, nullptr, saves, &r);
        LayerTrace t;
        t.resid_pre = r.resid_pre.reshaped({rows, D});
        t.z = r.attn.z;
        if (full) {
            t.resid_mid = r.resid_mid.reshaped({rows, D});
            t.qkv = side_by_side({&r.attn.q, &r.attn.k, &r.attn.v}, rows);
            t.pattern = r.attn.pattern;
            t.hidden = cfg.gated_mlp ? side_by_side({&r.mlp.pre, &r.mlp.pre_linear}, rows)
                                     : r.mlp.pre.reshaped({rows, cfg.d_mlp});
        }
        trace.push_back(std::move(t));
    }
    return resid;
}

// dx [rows, d_model] += the gradient of a norm's input x [rows, d_model] from its output's
// dout, with the statistics recomputed as the forward pass computes them (cpu_kernels.hpp).
void norm_input_grad(bp::Ctx& c, const Config& cfg, const LayerNormWeights& w, const float* dout,
                     const float* x, int64_t rows, float* dx) {
    const int64_t D = cfg.d_model;
    const bool rms = cfg.norm == "rmsnorm";
    std::vector<float> mean(rows, 0.0f), rstd(rows); // [rows]
    for (int64_t r = 0; r < rows; ++r) {
        const float* xr = x + r * D;
        if (!rms) {
            double sum = 0;
            for (int64_t i = 0; i < D; ++i)
                sum += xr[i];
            mean[r] = static_cast<float>(sum / D);
        }
        double var = 0;
        for (int64_t i = 0; i < D; ++i) {
            const float v = xr[i] - mean[r];
            var += static_cast<double>(v) * v;
        }
        rstd[r] = 1.0f / std::sqrt(static_cast<float>(var / D) + static_cast<float>(cfg.ln_eps));
    }
    if (rms)
        bp::rms_norm_backward(c, dout, x, w.w.f32(), rstd.data(), rows, D, dx, nullptr);
    else
        bp::layer_norm_backward(c, dout, x, w.w.f32(), mean.data(), rstd.data(), rows, D, dx,
                                nullptr, nullptr);
}

// dx += the gradient of the MLP's input stream x (resid_mid, or resid_pre side by side) from
// dout, the gradient of the stream after it.
void mlp_input_grad(bp::Ctx& c, const Config& cfg, const BlockWeights& bw, const LayerTrace& t,
                    const float* x, const float* dout, int64_t rows, float* dx) {
    const int64_t D = cfg.d_model, F = cfg.d_mlp, up = cfg.gated_mlp ? 2 * F : F;
    std::vector<float> dpost(rows * F, 0.0f), dhidden(rows * up, 0.0f), dln(rows * D, 0.0f);
    bp::linear_backward(c, dout, nullptr, bw.mlp.W_out.f32(), rows, F, D, dpost.data(), nullptr,
                        nullptr);
    if (cfg.gated_mlp)
        bp::swiglu_backward(c, dpost.data(), t.hidden.f32(), rows, F, dhidden.data());
    else if (cfg.act == "gelu")
        bp::gelu_erf_backward(c, dpost.data(), t.hidden.f32(), dhidden.data(), rows * F);
    else
        bp::gelu_backward(c, dpost.data(), t.hidden.f32(), dhidden.data(), rows * F);
    bp::linear_backward(c, dhidden.data(), nullptr, bw.mlp.W_in.f32(), rows, D, up, dln.data(),
                        nullptr, nullptr);
    norm_input_grad(c, cfg, bw.ln2, dln.data(), x, rows, dx);
}

// dx += the gradient of attention's input stream from dout; dz [batch, pos, head, d_head] gets
// the gradient of z.
void attention_input_grad(bp::Ctx& c, const Config& cfg, const BlockWeights& bw,
                          const LayerTrace& t, const float* dout, int64_t batch, int64_t pos,
                          float* dx, float* dz) {
    const int64_t rows = batch * pos, D = cfg.d_model, H = cfg.n_heads, Hkv = cfg.kv_heads();
    const int64_t dh = cfg.d_head, W3 = (H + 2 * Hkv) * dh;
    bp::linear_backward(c, dout, nullptr, bw.attn.W_O.f32(), rows, H * dh, D, dz, nullptr, nullptr);
    std::vector<float> dqkv(rows * W3, 0.0f), dln(rows * D, 0.0f);
    bp::attention_backward(c, dz, t.qkv.f32(), t.pattern.f32(), batch, pos, H, Hkv, dh,
                           dqkv.data());
    if (cfg.positions == "rotary") bp::rotary_backward(c, cfg, dqkv.data(), W3, rows, pos, H + Hkv);
    bp::linear_backward(c, dqkv.data(), nullptr, bw.attn.W_QKV.f32(), rows, D, W3, dln.data(),
                        nullptr, nullptr);
    norm_input_grad(c, cfg, bw.ln1, dln.data(), t.resid_pre.f32(), rows, dx);
}

} // namespace

LayerActivations layer_activations(Backend& be, const ModelWeights& w, const Tensor& tokens) {
    std::vector<LayerTrace> trace;
    trace_forward(be, w, tokens, false, trace);
    LayerActivations a;
    for (const LayerTrace& t : trace) {
        a.resid_pre.push_back(
            t.resid_pre.reshaped({tokens.dim(0), tokens.dim(1), w.config.d_model}));
        a.z.push_back(t.z);
    }
    return a;
}

MetricGradients metric_gradients(Backend& be, ThreadPool& pool, const ModelWeights& w,
                                 const Tensor& tokens, const LogitMetric& m) {
    const Config& cfg = w.config;
    const int64_t B = tokens.dim(0), T = tokens.dim(1), rows = B * T, D = cfg.d_model,
                  V = cfg.vocab_size;
    std::vector<LayerTrace> trace;
    const Tensor final_stream = trace_forward(be, w, tokens, true, trace); // [batch, pos, d_model]
    bp::Ctx c{be, pool};

    // The metric of each sequence's position, and its gradient with respect to the final stream:
    // d logits = e_answer - e_foil (or - softmax), back through W_U and the final norm.
    MetricGradients out;
    Tensor dres = Tensor::zeros({rows, D}); // d metric / d the stream after the last layer
    std::vector<float> logits(V), dlogits(V), dln(D);
    std::vector<double> logprobs(V);
    for (int64_t b = 0; b < B; ++b) {
        const float* x = final_stream.f32() + (b * T + m.position[b]) * D;
        unembed_forward(be, cfg, w.unembed, x, 1, logits.data());
        std::fill(dlogits.begin(), dlogits.end(), 0.0f);
        if (m.foil >= 0) {
            out.metric.push_back(static_cast<double>(logits[m.answer]) - logits[m.foil]);
            dlogits[m.foil] = -1.0f;
        } else {
            log_softmax(logits.data(), V, logprobs.data());
            out.metric.push_back(logprobs[m.answer]);
            for (int64_t v = 0; v < V; ++v)
                dlogits[v] = -static_cast<float>(std::exp(logprobs[v]));
        }
        dlogits[m.answer] += 1.0f;
        // dln [1, d_model] = dlogits [1, vocab] W_U^T (W_U [d_model, vocab])
        be.gemm(false, true, 1, D, V, 1.0f, dlogits.data(), V, w.unembed.W_U.f32(), V, 0.0f,
                dln.data(), D);
        norm_input_grad(c, cfg, w.unembed.ln_final, dln.data(), x, 1,
                        dres.f32() + (b * T + m.position[b]) * D);
    }

    // Each layer, last first: the gradient of the stream entering it from the one leaving it.
    const int64_t L = cfg.n_layers, H = cfg.n_heads, dh = cfg.d_head;
    out.grads.resid_pre.resize(L);
    out.grads.z.resize(L);
    for (int64_t l = L - 1; l >= 0; --l) {
        const LayerTrace& t = trace[l];
        const BlockWeights& bw = w.blocks[l];
        Tensor dz = Tensor::zeros({B, T, H, dh});
        Tensor dpre = Tensor::zeros({rows, D});
        std::copy_n(dres.f32(), rows * D, dpre.f32());
        if (cfg.parallel_residual) {
            // out = in + attention(in) + mlp(in)
            mlp_input_grad(c, cfg, bw, t, t.resid_pre.f32(), dres.f32(), rows, dpre.f32());
            attention_input_grad(c, cfg, bw, t, dres.f32(), B, T, dpre.f32(), dz.f32());
        } else {
            // mid = in + attention(in), out = mid + mlp(mid)
            Tensor dmid = Tensor::zeros({rows, D});
            std::copy_n(dres.f32(), rows * D, dmid.f32());
            mlp_input_grad(c, cfg, bw, t, t.resid_mid.f32(), dres.f32(), rows, dmid.f32());
            std::copy_n(dmid.f32(), rows * D, dpre.f32());
            attention_input_grad(c, cfg, bw, t, dmid.f32(), B, T, dpre.f32(), dz.f32());
        }
        out.grads.resid_pre[l] = dpre.reshaped({B, T, D});
        out.grads.z[l] = dz;
        dres = dpre;
    }
    for (LayerTrace& t : trace) {
        out.values.resid_pre.push_back(t.resid_pre.reshaped({B, T, D}));
        out.values.z.push_back(t.z);
    }
    return out;
}

} // namespace qkv

#include "qkv/train/train_model.hpp"

#include "qkv/base/errors.hpp"

#include <cstring>

namespace qkv {

Layout::Layout(const Config& c) {
    if (c.arch != "gpt2") // the backward passes are GPT-2's layers'
        throw FormatError("train: a " + c.arch + " model cannot be trained yet (gpt2 only)");
    for (const ParamSpec& p : model_params(c)) {
        if (!p.trained) continue;
        params.push_back({p.name, p.shape, total, p.decay});
        total += shape_numel(p.shape);
    }
    auto at = [&](const std::string& name) {
        for (const ParamInfo& p : params)
            if (p.name == name) return p.offset;
        throw Error("internal: the schema has no trained weight " + name);
    };
    W_E = at("/embed/W_E");
    W_pos = at("/pos_embed/W_pos");
    lnf_w = at("/ln_final/w");
    lnf_b = at("/ln_final/b");
    for (int64_t l = 0; l < c.n_layers; ++l) {
        const std::string g = block_group(l);
        layers.push_back(
            {at(g + "/ln1/w"), at(g + "/ln1/b"), at(g + "/attn/W_Q"), at(g + "/attn/b_Q"),
             at(g + "/attn/W_K"), at(g + "/attn/b_K"), at(g + "/attn/W_V"), at(g + "/attn/b_V"),
             at(g + "/attn/W_O"), at(g + "/attn/b_O"), at(g + "/ln2/w"), at(g + "/ln2/b"),
             at(g + "/mlp/W_in"), at(g + "/mlp/b_in"), at(g + "/mlp/W_out"), at(g + "/mlp/b_out")});
    }
}

Tensor param_tensor(const ParamInfo& p, const float* flat) {
    Tensor t = Tensor::zeros(p.shape);
    std::memcpy(t.f32(), flat + p.offset, t.numel() * sizeof(float));
    return t;
}

Gpt::Gpt(const Config& c, Backend& be, ThreadPool& pool, int64_t batch, int64_t pos)
    : cfg_(c), lay_(c), ctx_{be, pool}, B_(batch), T_(pos) {
    const int64_t BT = B_ * T_, D = c.d_model, A = c.n_heads * c.d_head, M = c.d_mlp,
                  L = c.n_layers;
    params_.assign(lay_.total, 0.0f);
    grads_.assign(lay_.total, 0.0f);
    res_.assign((2 * L + 1) * BT * D, 0.0f);      // residual stream [2L+1, batch, pos, d_model]
    ln_.assign((2 * L + 1) * BT * D, 0.0f);       // LayerNorm outputs
    ln_stats_.assign((2 * L + 1) * 2 * BT, 0.0f); // mean, rstd [rows] of each
    qkv_.assign(L * BT * 3 * A, 0.0f);            // [layer, batch, pos, 3, head, d_head]
    pattern_.assign(L * B_ * c.n_heads * T_ * T_, 0.0f); // [layer, batch, head, pos, pos]
    z_.assign(L * BT * A, 0.0f);                         // [layer, batch, pos, head, d_head]
    pre_.assign(L * BT * M, 0.0f);           // MLP pre-activation [layer, batch, pos, d_mlp]
    post_.assign(L * BT * M, 0.0f);          // after GELU
    logits_.assign(BT * c.vocab_size, 0.0f); // [batch, pos, vocab]
    losses_.assign(BT, 0.0f);
    dres_.assign(BT * D, 0.0f);
    dln_.assign(BT * D, 0.0f);
    dqkv_.assign(BT * 3 * A, 0.0f);
    dz_.assign(BT * A, 0.0f);
    dpost_.assign(BT * M, 0.0f);
    dpre_.assign(BT * M, 0.0f);
    W_QKV_.assign(D * 3 * A, 0.0f);
    dW_QKV_.assign(D * 3 * A, 0.0f);
}

double Gpt::forward(const int32_t* x, const int32_t* y, int64_t batch, int64_t pos, bool grad) {
    const Config& c = cfg_;
    const int64_t BT = batch * pos, D = c.d_model, H = c.n_heads, dh = c.d_head, A = H * dh,
                  M = c.d_mlp, V = c.vocab_size, L = c.n_layers;
    const float eps = static_cast<float>(c.ln_eps);
    float* P = params_.data();
    auto res = [&](int64_t i) { return res_.data() + i * B_ * T_ * D; };
    auto ln = [&](int64_t i) { return ln_.data() + i * B_ * T_ * D; };
    auto mean = [&](int64_t i) { return ln_stats_.data() + i * 2 * B_ * T_; };
    auto rstd = [&](int64_t i) { return mean(i) + B_ * T_; };
    auto qkv = [&](int64_t l) { return qkv_.data() + l * B_ * T_ * 3 * A; };
    auto pattern = [&](int64_t l) { return pattern_.data() + l * B_ * H * T_ * T_; };
    auto z = [&](int64_t l) { return z_.data() + l * B_ * T_ * A; };
    auto pre = [&](int64_t l) { return pre_.data() + l * B_ * T_ * M; };
    auto post = [&](int64_t l) { return post_.data() + l * B_ * T_ * M; };

    for (int64_t b = 0; b < batch; ++b) // token and position embeddings, per sequence
        ctx_.be.embed(x + b * pos, pos, 0, nullptr, P + lay_.W_E, DType::F32, P + lay_.W_pos, D,
                      nullptr, nullptr, res(0) + b * pos * D);
    for (int64_t l = 0; l < L; ++l) {
        const LayerOffsets& o = lay_.layers[l];
        // attention: LayerNorm, queries/keys/values of all heads in one product, the
        // pattern-weighted values z, then every head's change through W_O added to the stream
        ctx_.be.layer_norm(res(2 * l), P + o.ln1_w, P + o.ln1_b, eps, BT, D, ln(2 * l), mean(2 * l),
                           rstd(2 * l));
        const float* W_qkv[3] = {P + o.W_Q, P + o.W_K, P + o.W_V};
        const float* b_qkv[3] = {P + o.b_Q, P + o.b_K, P + o.b_V};
        bp::qkv_forward(ctx_, ln(2 * l), W_qkv, b_qkv, BT, D, H, dh, W_QKV_.data(), qkv(l));
        bp::attention_forward(ctx_, qkv(l), batch, pos, H, dh, pattern(l), z(l));
        std::memcpy(res(2 * l + 1), res(2 * l), BT * D * sizeof(float));
        bp::linear_forward(ctx_, z(l), P + o.W_O, P + o.b_O, BT, A, D, res(2 * l + 1), true);
        // MLP: LayerNorm, W_in, GELU, W_out added to the stream
        ctx_.be.layer_norm(res(2 * l + 1), P + o.ln2_w, P + o.ln2_b, eps, BT, D, ln(2 * l + 1),
                           mean(2 * l + 1), rstd(2 * l + 1));
        bp::linear_forward(ctx_, ln(2 * l + 1), P + o.W_in, P + o.b_in, BT, D, M, pre(l));
        ctx_.be.copy(post(l), pre(l), BT * M);
        ctx_.be.gelu(post(l), BT * M);
        std::memcpy(res(2 * l + 2), res(2 * l + 1), BT * D * sizeof(float));
        bp::linear_forward(ctx_, post(l), P + o.W_out, P + o.b_out, BT, M, D, res(2 * l + 2), true);
    }
    // unembedding, tied: logits = LayerNorm(resid) W_E^T + b_U
    ctx_.be.layer_norm(res(2 * L), P + lay_.lnf_w, P + lay_.lnf_b, eps, BT, D, ln(2 * L),
                       mean(2 * L), rstd(2 * L));
    float* logits = logits_.data();
    ctx_.pool.run(BT, 16, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r)
            std::memcpy(logits + r * V, b_U_.data(), V * sizeof(float));
    });
    ctx_.be.gemm(false, true, BT, V, D, 1.0f, ln(2 * L), D, P + lay_.W_E, D, 1.0f, logits, V);
    const double loss = bp::cross_entropy(ctx_, logits, y, BT, V, losses_.data(), grad);
    if (!grad) return loss;

    // ---- backward, last layer first; dres holds d loss / d residual stream
    float* G = grads_.data();
    float* dres = dres_.data();
    float* dln = dln_.data();
    ctx_.be.gemm(false, false, BT, D, V, 1.0f, logits, V, P + lay_.W_E, D, 0.0f, dln, D);
    ctx_.be.gemm(true, false, V, D, BT, 1.0f, logits, V, ln(2 * L), D, 1.0f, G + lay_.W_E, D);
    std::memset(dres, 0, BT * D * sizeof(float));
    bp::layer_norm_backward(ctx_, dln, res(2 * L), P + lay_.lnf_w, mean(2 * L), rstd(2 * L), BT, D,
                            dres, G + lay_.lnf_w, G + lay_.lnf_b);
    for (int64_t l = L - 1; l >= 0; --l) {
        const LayerOffsets& o = lay_.layers[l];
        // MLP
        std::memset(dpost_.data(), 0, BT * M * sizeof(float));
        bp::linear_backward(ctx_, dres, post(l), P + o.W_out, BT, M, D, dpost_.data(), G + o.W_out,
                            G + o.b_out);
        std::memset(dpre_.data(), 0, BT * M * sizeof(float));
        bp::gelu_backward(ctx_, dpost_.data(), pre(l), dpre_.data(), BT * M);
        std::memset(dln, 0, BT * D * sizeof(float));
        bp::linear_backward(ctx_, dpre_.data(), ln(2 * l + 1), P + o.W_in, BT, D, M, dln,
                            G + o.W_in, G + o.b_in);
        bp::layer_norm_backward(ctx_, dln, res(2 * l + 1), P + o.ln2_w, mean(2 * l + 1),
                                rstd(2 * l + 1), BT, D, dres, G + o.ln2_w, G + o.ln2_b);
        // attention
        std::memset(dz_.data(), 0, BT * A * sizeof(float));
        bp::linear_backward(ctx_, dres, z(l), P + o.W_O, BT, A, D, dz_.data(), G + o.W_O,
                            G + o.b_O);
        std::memset(dqkv_.data(), 0, BT * 3 * A * sizeof(float));
        bp::attention_backward(ctx_, dz_.data(), qkv(l), pattern(l), batch, pos, H, H, dh,
                               dqkv_.data());
        std::memset(dln, 0, BT * D * sizeof(float));
        const float* W_qkv[3] = {P + o.W_Q, P + o.W_K, P + o.W_V};
        float* dW_qkv[3] = {G + o.W_Q, G + o.W_K, G + o.W_V};
        float* db_qkv[3] = {G + o.b_Q, G + o.b_K, G + o.b_V};
        bp::qkv_backward(ctx_, dqkv_.data(), ln(2 * l), W_qkv, BT, D, H, dh, W_QKV_.data(),
                         dW_QKV_.data(), dln, dW_qkv, db_qkv);
        bp::layer_norm_backward(ctx_, dln, res(2 * l), P + o.ln1_w, mean(2 * l), rstd(2 * l), BT, D,
                                dres, G + o.ln1_w, G + o.ln1_b);
    }
    bp::embed_backward(dres, x, batch, pos, D, G + lay_.W_E, G + lay_.W_pos);
    return loss;
}

} // namespace qkv

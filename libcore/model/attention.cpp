#include "model/attention.hpp"

#include "base/errors.hpp"
#include "tensor/matmul.hpp"

#include <cmath>

namespace qkv {

void attention_forward(Backend& be, const Config& cfg, const LayerNormWeights& ln1,
                       const AttentionWeights& w, Tensor& resid, const Tensor* context, bool causal,
                       const AttentionSaves& saves, AttentionResult& result,
                       const KVLayerView* cache, const AttentionEdit* edit) {
    const int64_t B = resid.dim(0), T = resid.dim(1), D = cfg.d_model;
    const int64_t H = cfg.n_heads, dh = cfg.d_head, HD = H * dh;
    const float eps = static_cast<float>(cfg.ln_eps);
    const int64_t rows = B * T;

    // LayerNorm 1 over every position of every sequence.
    Tensor x = be.empty({rows, D}); // [batch*pos, d_model]
    be.layer_norm(resid.f32(), ln1.w.f32(), ln1.b.f32(), eps, rows, D, x.f32(), nullptr, nullptr);

    // Queries, keys and values of all heads in one GEMM: [batch*pos, (q|k|v, head, d_head)].
    const float *q_base, *k_base, *v_base;
    int64_t ld_q, ld_kv, Bk, Tk;
    Tensor qkv, q_only, kv;
    if (!context) {
        qkv = be.empty({rows, 3 * HD}); // [batch*pos, 3*head*d_head]
        matmul(be, {x.f32(), rows, D, D}, {w.W_QKV.f32(), D, 3 * HD, 3 * HD},
               {qkv.f32(), rows, 3 * HD, 3 * HD});
        be.add_bias(qkv.f32(), w.b_QKV.f32(), rows, 3 * HD);
        q_base = qkv.f32();
        k_base = qkv.f32() + HD;
        v_base = qkv.f32() + 2 * HD;
        ld_q = ld_kv = 3 * HD;
        Bk = B;
        Tk = T;
        if (cache) {
            // Append this step's keys and values; attend over every cached position.
            if (B != 1) throw ShapeError("internal: a key/value cache holds one sequence");
            be.copy2d(cache->k + cache->pos0 * HD, HD, k_base, ld_kv, T, HD);
            be.copy2d(cache->v + cache->pos0 * HD, HD, v_base, ld_kv, T, HD);
            k_base = cache->k;
            v_base = cache->v;
            ld_kv = HD;
            Tk = cache->pos0 + T;
        }
    } else {
        // Cross-attention: queries from the input, keys and values from the context stream.
        Bk = context->dim(0);
        Tk = context->dim(1);
        if (Bk != B && Bk != 1)
            throw ShapeError("--context: batch " + std::to_string(Bk) +
                             " does not match the input's batch " + std::to_string(B));
        q_only = be.empty({rows, HD}); // [batch*pos, head*d_head]
        matmul(be, {x.f32(), rows, D, D}, {w.W_QKV.f32(), D, HD, 3 * HD},
               {q_only.f32(), rows, HD, HD});
        be.add_bias(q_only.f32(), w.b_QKV.f32(), rows, HD);
        Tensor xc = be.empty({Bk * Tk, D}); // [batch_k*key_pos, d_model]
        be.layer_norm(context->f32(), ln1.w.f32(), ln1.b.f32(), eps, Bk * Tk, D, xc.f32(), nullptr,
                      nullptr);
        kv = be.empty({Bk * Tk, 2 * HD}); // [batch_k*key_pos, (k|v, head, d_head)]
        matmul(be, {xc.f32(), Bk * Tk, D, D}, {w.W_QKV.f32() + HD, D, 2 * HD, 3 * HD},
               {kv.f32(), Bk * Tk, 2 * HD, 2 * HD});
        be.add_bias(kv.f32(), w.b_QKV.f32() + HD, Bk * Tk, 2 * HD);
        q_base = q_only.f32();
        k_base = kv.f32();
        v_base = kv.f32() + HD;
        ld_q = HD;
        ld_kv = 2 * HD;
    }
    if (saves.q) {
        result.q = be.empty({B, T, H, dh});
        be.copy2d(result.q.f32(), HD, q_base, ld_q, rows, HD);
    }
    if (saves.k) {
        result.k = be.empty({Bk, Tk, H, dh}); // with a cache: every cached position
        be.copy2d(result.k.f32(), HD, k_base, ld_kv, Bk * Tk, HD);
    }
    if (saves.v) {
        result.v = be.empty({Bk, Tk, H, dh});
        be.copy2d(result.v.f32(), HD, v_base, ld_kv, Bk * Tk, HD);
    }
    if (saves.scores) result.scores = be.empty({B, H, T, Tk});
    if (saves.pattern) result.pattern = be.empty({B, H, T, Tk});

    Tensor scores = be.empty({H, T, Tk});  // [head, query_pos, key_pos]
    Tensor pattern = be.empty({H, T, Tk}); // [head, query_pos, key_pos]
    Tensor z = be.empty({B, T, H, dh});    // [batch, pos, head, d_head]
    const float scale = 1.0f / std::sqrt(static_cast<float>(dh));
    for (int64_t b = 0; b < B; ++b) {
        const int64_t bk = Bk == 1 ? 0 : b;
        const float* q = q_base + b * T * ld_q;    // [query_pos, head, d_head], row stride ld_q
        const float* k = k_base + bk * Tk * ld_kv; // [key_pos, head, d_head], row stride ld_kv
        const float* v = v_base + bk * Tk * ld_kv; // [key_pos, head, d_head], row stride ld_kv
        // Scores of every head: q_h k_h^T / sqrt(d_head)  [head, query_pos, key_pos].
        const MatrixView q_h{q, T, dh, ld_q, dh}, k_h{k, Tk, dh, ld_kv, dh},
            v_h{v, Tk, dh, ld_kv, dh};
        matmul(be, q_h, k_h.T(), {scores.f32(), T, Tk, Tk, T * Tk}, H, scale);
        // Mask (keys after the query) and softmax over keys, per query and head.
        be.masked_softmax(scores.f32(), pattern.f32(), H * T, T, Tk, Tk, causal, Tk - T);
        // z: the pattern-weighted sum of values, each head into its slice [pos, head, d_head].
        matmul(be, {pattern.f32(), T, Tk, Tk, T * Tk}, v_h, {z.f32() + b * T * HD, T, dh, HD, dh},
               H);
        if (saves.scores) be.copy(result.scores.f32() + b * H * T * Tk, scores.f32(), H * T * Tk);
        if (saves.pattern)
            be.copy(result.pattern.f32() + b * H * T * Tk, pattern.f32(), H * T * Tk);
    }
    // Interventions: scale (or ablate) heads, and take patched heads out before adding theirs.
    if (edit) {
        for (int64_t h = 0; h < H; ++h) {
            float s = edit->head_scale.empty() ? 1.0f : edit->head_scale[h];
            if (!edit->patched.empty() && edit->patched[h]) s = 0.0f;
            if (s != 1.0f) be.scale2d(z.f32() + h * dh, HD, rows, dh, s);
        }
    }
    if (saves.z) result.z = z;

    // Each head's proposed change to the residual stream: z_h W_O[h]  [batch, pos, head, d_model].
    if (saves.head_out) {
        result.head_out = be.empty({B, T, H, D});
        matmul(be, {z.f32(), rows, dh, HD, dh}, {w.W_O.f32(), dh, D, D, dh * D},
               {result.head_out.f32(), rows, D, H * D, D}, H);
    }

    // Output: the changes of all heads in one GEMM, plus b_O, added to the residual stream.
    Tensor out = be.empty({B, T, D}); // [batch, pos, d_model]
    matmul(be, {z.f32(), rows, HD, HD}, {w.W_O.f32(), HD, D, D}, {out.f32(), rows, D, D});
    be.add_bias(out.f32(), w.b_O.f32(), rows, D);
    if (edit && edit->patch) {
        for (int64_t h = 0; h < H; ++h) {
            if (edit->patched.empty() || !edit->patched[h]) continue;
            be.add2d(out.f32(), D, edit->patch->f32() + h * D, H * D, rows, D);
            if (saves.head_out)
                be.copy2d(result.head_out.f32() + h * D, H * D, edit->patch->f32() + h * D, H * D,
                          rows, D);
        }
    }
    be.add(resid.f32(), out.f32(), rows * D);
    if (saves.out) result.out = out;
}

} // namespace qkv

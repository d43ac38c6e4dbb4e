#include "qkv/model/attention.hpp"

#include "qkv/base/errors.hpp"
#include "qkv/model/norm.hpp"
#include "qkv/model/rotary.hpp"
#include "qkv/tensor/matmul.hpp"

#include <cmath>

namespace qkv {

void attention_forward(Backend& be, const Config& cfg, const LayerNormWeights& ln1,
                       const AttentionWeights& w, Tensor& resid, const Tensor* context, bool causal,
                       const AttentionSaves& saves, AttentionResult& result,
                       const KVLayerView* cache, const AttentionEdit* edit, const Padding* pad) {
    const int64_t B = resid.dim(0), T = resid.dim(1), D = cfg.d_model;
    const int64_t H = cfg.n_heads, dh = cfg.d_head, HD = H * dh;
    const int64_t Hkv = cfg.kv_heads(), KD = Hkv * dh, W3 = HD + 2 * KD; // W3: q, k, v widths
    const bool rotary = cfg.positions == "rotary";
    const int64_t rows = B * T;
    const bool padded = pad && pad->padded();
    if (padded && (cache || context))
        throw ShapeError("internal: a padded batch runs without a cache, as self-attention");
    // The positions of a padded batch count real tokens only [batch * pos].
    const std::vector<int32_t> positions =
        padded && rotary ? pad->positions() : std::vector<int32_t>();

    // Norm 1 over every position of every sequence.
    Tensor x = be.empty({rows, D}); // [batch*pos, d_model]
    normalize(be, cfg, ln1, resid.f32(), rows, x.f32());

    // Queries, keys and values of all heads in one GEMM: [batch*pos, (q: head | k, v: kv_head)
    // * d_head]; rotary models then turn each query and key by its position.
    const float *q_base, *k_base, *v_base;
    int64_t ld_q, ld_kv, Bk, Tk;
    Tensor qkv, q_only, kv;
    if (!context) {
        qkv = be.empty({rows, W3}); // [batch*pos, (head + 2 kv_head) * d_head]
        matmul(be, {x.f32(), rows, D, D}, weight_view(w.W_QKV, 0, D, W3, W3),
               {qkv.f32(), rows, W3, W3});
        if (!w.b_QKV.empty()) be.add_bias(qkv.f32(), w.b_QKV.f32(), rows, W3);
        const int64_t pos0 = cache ? cache->pos0 : 0;
        if (rotary)
            apply_rotary(be, cfg, qkv.f32(), W3, rows, T, pos0, H + Hkv,
                         positions.empty() ? nullptr : positions.data());
        if (edit) { // queries, keys and values as they are used: after rotary, before a cache
            const SiteLayout l{T * W3, W3, dh};
            apply_site_edits(be, edit->sites, Site::Q, qkv.f32(), l, B, T, H, dh);
            apply_site_edits(be, edit->sites, Site::K, qkv.f32() + HD, l, B, T, Hkv, dh);
            apply_site_edits(be, edit->sites, Site::V, qkv.f32() + HD + KD, l, B, T, Hkv, dh);
        }
        q_base = qkv.f32();
        k_base = qkv.f32() + HD;
        v_base = qkv.f32() + HD + KD;
        ld_q = ld_kv = W3;
        Bk = B;
        Tk = T;
        if (cache) {
            // Append this step's keys and values; attend over every cached position.
            if (B != 1) throw ShapeError("internal: a key/value cache holds one sequence");
            be.copy2d(cache->k + cache->pos0 * KD, KD, k_base, ld_kv, T, KD);
            be.copy2d(cache->v + cache->pos0 * KD, KD, v_base, ld_kv, T, KD);
            k_base = cache->k;
            v_base = cache->v;
            ld_kv = KD;
            Tk = cache->pos0 + T;
        }
    } else {
        // Cross-attention: queries from the input, keys and values from the context stream.
        if (edit && !edit->sites.empty())
            throw ShapeError("internal: cross-attention takes no edits of its sites");
        Bk = context->dim(0);
        Tk = context->dim(1);
        if (Bk != B && Bk != 1)
            throw ShapeError("--context: batch " + std::to_string(Bk) +
                             " does not match the input's batch " + std::to_string(B));
        q_only = be.empty({rows, HD}); // [batch*pos, head*d_head]
        matmul(be, {x.f32(), rows, D, D}, weight_view(w.W_QKV, 0, D, HD, W3),
               {q_only.f32(), rows, HD, HD});
        if (!w.b_QKV.empty()) be.add_bias(q_only.f32(), w.b_QKV.f32(), rows, HD);
        Tensor xc = be.empty({Bk * Tk, D}); // [batch_k*key_pos, d_model]
        normalize(be, cfg, ln1, context->f32(), Bk * Tk, xc.f32());
        kv = be.empty({Bk * Tk, 2 * KD}); // [batch_k*key_pos, (k|v, kv_head, d_head)]
        matmul(be, {xc.f32(), Bk * Tk, D, D}, weight_view(w.W_QKV, HD, D, 2 * KD, W3),
               {kv.f32(), Bk * Tk, 2 * KD, 2 * KD});
        if (!w.b_QKV.empty()) be.add_bias(kv.f32(), w.b_QKV.f32() + HD, Bk * Tk, 2 * KD);
        if (rotary) {
            apply_rotary(be, cfg, q_only.f32(), HD, rows, T, 0, H);
            apply_rotary(be, cfg, kv.f32(), 2 * KD, Bk * Tk, Tk, 0, Hkv);
        }
        q_base = q_only.f32();
        k_base = kv.f32();
        v_base = kv.f32() + KD;
        ld_q = HD;
        ld_kv = 2 * KD;
    }
    if (saves.q) {
        result.q = be.empty({B, T, H, dh});
        be.copy2d(result.q.f32(), HD, q_base, ld_q, rows, HD);
    }
    if (saves.k) {
        result.k = be.empty({Bk, Tk, Hkv, dh}); // with a cache: every cached position
        be.copy2d(result.k.f32(), KD, k_base, ld_kv, Bk * Tk, KD);
    }
    if (saves.v) {
        result.v = be.empty({Bk, Tk, Hkv, dh});
        be.copy2d(result.v.f32(), KD, v_base, ld_kv, Bk * Tk, KD);
    }
    if (saves.scores) result.scores = be.empty({B, H, T, Tk});
    if (saves.pattern) result.pattern = be.empty({B, H, T, Tk});

    Tensor scores = be.empty({H, T, Tk});  // [head, query_pos, key_pos]
    Tensor pattern = be.empty({H, T, Tk}); // [head, query_pos, key_pos]
    Tensor z = be.empty({B, T, H, dh});    // [batch, pos, head, d_head]
    const Tensor key_mask = padded ? be.to_device(pad->mask()) : Tensor(); // [batch, key_pos]
    const float scale = 1.0f / std::sqrt(static_cast<float>(dh));
    for (int64_t b = 0; b < B; ++b) {
        const int64_t bk = Bk == 1 ? 0 : b;
        const float* q = q_base + b * T * ld_q;    // [query_pos, head, d_head], row stride ld_q
        const float* k = k_base + bk * Tk * ld_kv; // [key_pos, kv_head, d_head], stride ld_kv
        const float* v = v_base + bk * Tk * ld_kv; // [key_pos, kv_head, d_head], stride ld_kv
        // Query heads g G .. g G + G - 1 share key/value head g (grouped-query attention);
        // when every head has its own (G = 1), all heads are one batched product.
        const int64_t G = H / Hkv;
        auto each_group = [&](auto product) {
            if (G == 1)
                product(0, H, dh);
            else
                for (int64_t g = 0; g < Hkv; ++g)
                    product(g, G, 0);
        };
        // Scores of every head: q_h k_h^T / sqrt(d_head)  [head, query_pos, key_pos].
        each_group([&](int64_t g, int64_t n, int64_t kv_stride) {
            matmul(be, {q + g * G * dh, T, dh, ld_q, dh},
                   MatrixView{k + g * dh, Tk, dh, ld_kv, kv_stride}.T(),
                   {scores.f32() + g * G * T * Tk, T, Tk, Tk, T * Tk}, n, scale);
        });
        // Mask (keys after the query, pad keys) and softmax over keys, per query and head.
        be.masked_softmax(scores.f32(), pattern.f32(), H * T, T, Tk, Tk, causal, Tk - T,
                          padded ? key_mask.i32() + b * Tk : nullptr);
        if (edit) // this sequence's [head, query_pos, key_pos], edited per query
            apply_site_edits(be, edit->sites, Site::Pattern, pattern.f32(), {0, Tk, T * Tk}, 1, T,
                             H, Tk, b);
        // z: the pattern-weighted sum of values, each head into its slice [pos, head, d_head].
        each_group([&](int64_t g, int64_t n, int64_t kv_stride) {
            matmul(be, {pattern.f32() + g * G * T * Tk, T, Tk, Tk, T * Tk},
                   {v + g * dh, Tk, dh, ld_kv, kv_stride},
                   {z.f32() + b * T * HD + g * G * dh, T, dh, HD, dh}, n);
        });
        if (saves.scores) be.copy(result.scores.f32() + b * H * T * Tk, scores.f32(), H * T * Tk);
        if (saves.pattern)
            be.copy(result.pattern.f32() + b * H * T * Tk, pattern.f32(), H * T * Tk);
    }
    // Interventions: edits of z, then scale (or ablate) heads, and take patched heads out before
    // adding theirs.
    if (edit) {
        apply_site_edits(be, edit->sites, Site::Z, z.f32(), {T * HD, HD, dh}, B, T, H, dh);
        for (int64_t h = 0; h < H; ++h) {
            float s = edit->head_scale.empty() ? 1.0f : edit->head_scale[h];
            if (!edit->patched.empty() && edit->patched[h]) s = 0.0f;
            if (s != 1.0f) be.scale2d(z.f32() + h * dh, HD, rows, dh, s);
        }
    }
    if (saves.z) result.z = z;

    // Each head's proposed change to the residual stream: z_h W_O[h]  [batch, pos, head, d_model].
    const bool edit_head_out = edits_site(edit ? &edit->sites : nullptr, Site::HeadOut);
    if (saves.head_out || edit_head_out) {
        result.head_out = be.empty({B, T, H, D});
        matmul(be, {z.f32(), rows, dh, HD, dh}, weight_view(w.W_O, 0, dh, D, D, dh * D),
               {result.head_out.f32(), rows, D, H * D, D}, H);
    }

    // Output: the changes of all heads in one GEMM, plus b_O, added to the residual stream.
    Tensor out = be.empty({B, T, D}); // [batch, pos, d_model]
    matmul(be, {z.f32(), rows, HD, HD}, weight_view(w.W_O, 0, HD, D, D), {out.f32(), rows, D, D});
    if (!w.b_O.empty()) be.add_bias(out.f32(), w.b_O.f32(), rows, D);
    if (edit_head_out) {
        // Edited heads' changes replace their own in the output: out += edited - own, which is
        // exactly 0 where a head_out is patched with itself.
        Tensor edited = be.empty({B, T, H, D}); // [batch, pos, head, d_model]
        be.copy(edited.f32(), result.head_out.f32(), B * T * H * D);
        apply_site_edits(be, edit->sites, Site::HeadOut, edited.f32(), {T * H * D, H * D, D}, B, T,
                         H, D);
        be.scale2d(result.head_out.f32(), H * D, rows, H * D, -1.0f); // -own
        be.add(result.head_out.f32(), edited.f32(), B * T * H * D);   // edited - own
        for (int64_t h = 0; h < H; ++h)
            be.add2d(out.f32(), D, result.head_out.f32() + h * D, H * D, rows, D);
        result.head_out = edited;
    }
    if (edit && edit->patch) {
        for (int64_t h = 0; h < H; ++h) {
            if (edit->patched.empty() || !edit->patched[h]) continue;
            be.add2d(out.f32(), D, edit->patch->f32() + h * D, H * D, rows, D);
            if (saves.head_out)
                be.copy2d(result.head_out.f32() + h * D, H * D, edit->patch->f32() + h * D, H * D,
                          rows, D);
        }
    }
    if (edit) apply_stream_edits(be, edit->sites, Site::AttnOut, out);
    be.add(resid.f32(), out.f32(), rows * D);
    if (saves.out) result.out = out;
}

} // namespace qkv

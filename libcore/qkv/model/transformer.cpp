#include "qkv/model/transformer.hpp"

#include "qkv/base/errors.hpp"
#include "qkv/model/embed.hpp"
#include "qkv/model/unembed.hpp"

namespace qkv {

void block_forward(Backend& be, const Config& cfg, const BlockWeights& w, Tensor& resid,
                   const KVLayerView* cache, const BlockSaves& saves, BlockResult* result,
                   const AttentionEdit* edit, const Padding* pad) {
    BlockResult scratch;
    BlockResult& r = result ? *result : scratch;
    auto copy_of = [&](const Tensor& t) {
        Tensor c = be.empty(t.shape());
        be.copy(c.f32(), t.f32(), t.numel());
        return c;
    };
    if (edit) apply_stream_edits(be, edit->sites, Site::ResidPre, resid);
    // A parallel-residual layer's MLP reads the stream as it was before attention.
    Tensor before;
    if (cfg.parallel_residual || saves.resid_pre) before = copy_of(resid);
    if (saves.resid_pre) r.resid_pre = before;
    attention_forward(be, cfg, w.ln1, w.attn, resid, nullptr, true, saves.attn, r.attn, cache, edit,
                      pad);
    if (edit) apply_stream_edits(be, edit->sites, Site::ResidMid, resid);
    if (saves.resid_mid) r.resid_mid = copy_of(resid);
    mlp_forward(be, cfg, w.ln2, w.mlp, resid, saves.mlp, r.mlp,
                cfg.parallel_residual ? &before : nullptr, edit ? &edit->sites : nullptr);
}

Transformer::Transformer(ModelWeights weights, Backend& be)
    : be_(be), cfg_(weights.config), embed_(std::move(weights.embed)),
      layers_(std::move(weights.blocks)), unembed_(std::move(weights.unembed)) {}

const AttentionEdit* Transformer::edit_of(int64_t layer) const {
    if (layer >= static_cast<int64_t>(edits_.size())) return nullptr;
    const AttentionEdit& e = edits_[layer];
    return e.head_scale.empty() && e.patched.empty() && e.sites.empty() ? nullptr : &e;
}

Tensor Transformer::step(const int32_t* tokens, int64_t n, KVCache& cache) {
    if (n <= 0) throw ShapeError("internal: a step needs at least one token");
    if (cache.length() + n > cache.capacity())
        throw ShapeError(
            "sequence of " + std::to_string(cache.length() + n) +
            " tokens is longer than the model's context n_ctx = " + std::to_string(cfg_.n_ctx));
    Tensor ids = Tensor::zeros({1, n}, DType::I32); // [batch=1, pos]
    for (int64_t i = 0; i < n; ++i)
        ids.i32()[i] = tokens[i];
    EmbedResult e = embed_forward(be_, cfg_, embed_, ids, cache.length(), false, "generate");
    Tensor& resid = e.resid; // [1, pos, d_model]
    for (int64_t l = 0; l < cfg_.n_layers; ++l) {
        const KVLayerView kv = cache.layer(l);
        block_forward(be_, cfg_, layers_[l], resid, &kv, {}, nullptr, edit_of(l));
    }
    cache.advance(n);
    Tensor logits = be_.empty({cfg_.vocab_size}); // [vocab], last position only
    unembed_forward(be_, cfg_, unembed_, resid.f32() + (n - 1) * cfg_.d_model, 1, logits.f32());
    return be_.to_host(logits);
}

Tensor Transformer::logits(const Tensor& tokens, const Padding* pad) {
    const int64_t B = tokens.dim(0), T = tokens.dim(1);
    EmbedResult e = embed_forward(be_, cfg_, embed_, tokens, 0, false, "score", pad);
    for (int64_t l = 0; l < cfg_.n_layers; ++l)
        block_forward(be_, cfg_, layers_[l], e.resid, nullptr, {}, nullptr, edit_of(l), pad);
    Tensor out = be_.empty({B, T, cfg_.vocab_size}); // [batch, pos, vocab]
    unembed_forward(be_, cfg_, unembed_, e.resid.f32(), B * T, out.f32());
    return be_.to_host(out);
}

} // namespace qkv

// transformer: the whole model in one process, every layer's weights loaded once, run over
// tokens with a key/value cache. The same kernels as the stage tools (embed, attend, mlp).
#pragma once
#include "qkv/model/attention.hpp"
#include "qkv/model/kv_cache.hpp"
#include "qkv/model/mlp.hpp"
#include "qkv/model/weights.hpp"
#include "qkv/tensor/backend.hpp"

#include <vector>

namespace qkv {

// What a block keeps on request: its attention's and MLP's saves, and the stream as it entered
// the block (resid_pre) and after attention (resid_mid), each [batch, pos, d_model].
struct BlockSaves {
    AttentionSaves attn;
    MlpSaves mlp;
    bool resid_pre = false, resid_mid = false;
};
struct BlockResult {
    AttentionResult attn;
    MlpResult mlp;
    Tensor resid_pre, resid_mid;
};

// One block, attention then MLP (or both from the same input, parallel residual), on resid
// [batch, pos, d_model] in place; cache: the layer's keys and values (generation) or null.
// edit: interventions on the layer's heads and on any of its sites (resid_pre .. mlp_out).
void block_forward(Backend& be, const Config& cfg, const BlockWeights& w, Tensor& resid,
                   const KVLayerView* cache = nullptr, const BlockSaves& saves = {},
                   BlockResult* result = nullptr, const AttentionEdit* edit = nullptr,
                   const Padding* pad = nullptr);

class Transformer {
  public:
    Transformer(ModelWeights weights, Backend& be); // weights on be's device
    const Config& config() const { return cfg_; }
    // Interventions on every run's layers from now on (steering in generation): edits[layer],
    // or fewer layers; an empty edit changes nothing.
    void set_edits(std::vector<AttentionEdit> edits) { edits_ = std::move(edits); }
    // Runs tokens[0..n) at positions cache.length().., appends them to the cache, and returns
    // the logits of the last position [vocab] on the host.
    Tensor step(const int32_t* tokens, int64_t n, KVCache& cache);
    // The whole model on tokens [batch, pos] (host int32, from position 0, no cache; pad: a
    // padded batch): the logits of every position [batch, pos, vocab] on the host.
    Tensor logits(const Tensor& tokens, const Padding* pad = nullptr);

  private:
    Backend& be_;
    Config cfg_;
    EmbedWeights embed_;
    std::vector<BlockWeights> layers_;
    UnembedWeights unembed_;
    std::vector<AttentionEdit> edits_;
    const AttentionEdit* edit_of(int64_t layer) const;
};

} // namespace qkv

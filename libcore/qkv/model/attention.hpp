// attention: norm 1, multi-head causal self-attention (or cross-attention), output
// projection, added to the residual stream. The steps, for each head:
//   queries  q = LN(x) W_Q + b_Q, then rotary         [pos, d_head]
//   keys     k = LN(x) W_K + b_K, then rotary         [pos, d_head]
//   scores   q k^T / sqrt(d_head), later keys masked  [query_pos, key_pos]
//   pattern  softmax over keys, per query             [query_pos, key_pos]
//   values   v = LN(x) W_V + b_V  (value-down)        [pos, d_head]
//   z        pattern v                                [pos, d_head]
//   change   z W_O[head]          (value-up)          [pos, d_model]
// and the changes of all heads plus b_O are added to the residual stream. Rotary models
// (Llama) turn q and k by their positions (model/rotary.hpp); GPT-2 has none. With
// grouped-query attention, kv_head < head: each key/value head serves head / kv_head query
// heads, the consecutive ones.
#pragma once
#include "qkv/model/intervention.hpp"
#include "qkv/model/padding.hpp"
#include "qkv/model/weights.hpp"
#include "qkv/tensor/backend.hpp"

#include <vector>

namespace qkv {

struct AttentionSaves {
    bool scores = false, pattern = false, q = false, k = false, v = false, z = false,
         head_out = false, out = false;
};

struct AttentionResult {    // on the backend's device, each only when asked for
    Tensor scores, pattern; // [batch, head, query_pos, key_pos]
    Tensor q, z;            // [batch, pos, head, d_head]; q after rotary
    Tensor k, v;            // [batch, pos, kv_head, d_head]; k after rotary
    Tensor head_out;        // [batch, pos, head, d_model]
    Tensor out;             // [batch, pos, d_model]
};

// Keys and values of earlier positions of one sequence (generation): the new positions' keys
// and values are written at pos0.., and queries attend to every cached position before them.
struct KVLayerView {
    float* k = nullptr; // [n_ctx, kv_head * d_head]
    float* v = nullptr; // [n_ctx, kv_head * d_head]
    int64_t pos0 = 0;   // positions already cached
};

// Interventions on heads: each head's z is multiplied by head_scale[h] (0 ablates the head);
// the heads marked in patched have their contribution replaced by patch (head_out of another
// run, [batch, pos, head, d_model] on the device).
// sites: edits of q, k, v, pattern, z, head_out and attn_out (model/intervention.hpp), applied
// before the scaling; resid_pre is the caller's (the stream before the layer).
struct AttentionEdit {
    std::vector<float> head_scale; // [head]; empty: every head 1
    std::vector<bool> patched;     // [head]; empty: none
    const Tensor* patch = nullptr;
    SiteEdits sites;
};

// resid [batch, pos, d_model] on the device, updated in place. context: null for
// self-attention, else the residual stream [batch or 1, key_pos, d_model] that keys and values
// come from (cross-attention). causal masks keys after each query. pad: a padded batch
// (model/padding.hpp): rotary positions over real tokens, and pad keys masked.
void attention_forward(Backend& be, const Config& cfg, const LayerNormWeights& ln1,
                       const AttentionWeights& w, Tensor& resid, const Tensor* context, bool causal,
                       const AttentionSaves& saves, AttentionResult& result,
                       const KVLayerView* cache = nullptr, const AttentionEdit* edit = nullptr,
                       const Padding* pad = nullptr);

} // namespace qkv

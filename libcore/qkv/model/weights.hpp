// weights: a model's weights as the layers compute on them, one struct per layer kind, each
// tensor's shape beside it (man/qkv-files.5 has the file's own layout). Loaded by ModelFile.
// The matrices W_E, W_QKV, W_O, W_in, W_out and W_U of a file that stores them F16 or BF16 stay
// so in memory (on the CPU) and are widened inside the products (tensor/half.hpp); norms,
// biases and W_pos are always float32.
#pragma once
#include "qkv/model/config.hpp"
#include "qkv/tensor/tensor.hpp"

#include <vector>

namespace qkv {

struct LayerNormWeights {
    Tensor w, b; // [d_model]; RMSNorm has no b (empty)
};

// Attention weights as the forward pass uses them: W_Q, W_K and W_V of every head side by side
// in one matrix (pack_qkv, the one weight not used as the file holds it), so queries, keys and
// values of all heads come from one product. A product's rounding depends on its shape in the
// BLAS library, so per-head products would change every result after the queries by an ulp.
// Grouped-query attention has fewer key/value heads than query heads (kv_head <= head).
// A bias a family does not have is an empty tensor.
struct AttentionWeights {
    Tensor W_QKV; // [d_model, (head + 2 kv_head) * d_head]: columns (q: head | k: kv_head |
                  // v: kv_head, d_head)
    Tensor b_QKV; // [(head + 2 kv_head) * d_head]
    Tensor W_O;   // [head, d_head, d_model], i.e. [head * d_head, d_model]
    Tensor b_O;   // [d_model]
};

struct MlpWeights {
    Tensor W_in;  // [d_model, d_mlp]; gated MLPs: [d_model, 2 d_mlp], columns (W_gate | W_in)
    Tensor b_in;  // [d_mlp]
    Tensor W_out; // [d_mlp, d_model]
    Tensor b_out; // [d_model]
};

struct EmbedWeights {
    Tensor W_E;   // [vocab, d_model]
    Tensor W_pos; // [n_ctx, d_model]; empty with rotary positions
};

struct UnembedWeights {
    LayerNormWeights ln_final;
    Tensor W_U;        // [d_model, vocab]; tied: W_E itself [vocab, d_model], held once
    Tensor b_U;        // [vocab]; may be empty
    bool tied = false; // the file's W_U is exactly W_E transposed: logits = x W_E^T
};

// One transformer block: LayerNorm, attention, LayerNorm, MLP.
struct BlockWeights {
    LayerNormWeights ln1;
    AttentionWeights attn;
    LayerNormWeights ln2;
    MlpWeights mlp;
};

// A whole model's weights.
struct ModelWeights {
    Config config;
    EmbedWeights embed;
    std::vector<BlockWeights> blocks; // [n_layers]
    UnembedWeights unembed;
};

// W_Q [head, d_model, d_head], W_K and W_V [kv_head, d_model, d_head] (W[0] = W_Q, ...), side
// by side as one fused [d_model, (q: head | k: kv_head | v: kv_head) * d_head] matrix;
// unpack_qkv is the inverse.
void pack_qkv(const float* const W[3], int64_t head, int64_t kv_head, int64_t d_model,
              int64_t d_head, float* fused);
// The same for tensors of any one dtype (16-bit weights are packed as they are).
Tensor pack_qkv(const Tensor W[3], int64_t head, int64_t kv_head, int64_t d_model, int64_t d_head);
// [rows, a_cols + b_cols]: a's and b's columns side by side (W_gate | W_in), dtype kept.
Tensor concat_columns(const Tensor& a, const Tensor& b);
void unpack_qkv(const float* fused, int64_t head, int64_t kv_head, int64_t d_model, int64_t d_head,
                float* const W[3]);

} // namespace qkv

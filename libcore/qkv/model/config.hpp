// config: a model's hyper-parameters, one struct for every family qkv runs, and the presets.
// GPT-2 (arch gpt2): LayerNorm, learned positions, GELU MLP, biases everywhere.
// Llama (arch llama; Mistral, Qwen2, SmolLM, TinyLlama): RMSNorm, rotary positions,
// grouped-query attention, SwiGLU MLP, no biases but Qwen2's on q, k and v.
// GPT-NeoX (arch gpt-neox; Pythia): LayerNorm, rotary positions on part of each head, exact
// GELU, biases but no b_U, attention and MLP side by side (parallel residual) or in turn.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace qkv {

struct Config {
    std::string arch = "gpt2";
    int64_t n_layers = 0, d_model = 0, n_heads = 0, d_head = 0, d_mlp = 0, n_ctx = 0,
            vocab_size = 0;
    double ln_eps = 1e-5;         // LayerNorm's or RMSNorm's epsilon
    std::string act = "gelu_new"; // gelu_new (GELU, tanh form), gelu (erf form) or silu
    // The family's settings; GPT-2's values are the defaults (and are not written for GPT-2).
    int64_t n_kv_heads = 0;            // key/value heads (grouped-query attention); 0: n_heads
    std::string norm = "layernorm";    // layernorm (w, b) or rmsnorm (w)
    std::string positions = "learned"; // learned (W_pos) or rotary
    int64_t rotary_dim = 0;            // rotary: dimensions of each head rotated (d_head or less)
    double rope_theta = 10000;
    std::string rope_scaling = "none"; // none or llama3
    double rope_factor = 1, rope_low_freq_factor = 1, rope_high_freq_factor = 4;
    int64_t rope_original_ctx = 0; // llama3 scaling's original_max_position_embeddings
    int64_t gated_mlp = 0;         // 1: silu(x W_gate) * (x W_in), then W_out
    int64_t biases = 1;            // 1: every linear layer has a bias (b_Q.. b_O, b_in, b_out, b_U)
    int64_t qkv_bias = 0;          // 1: b_Q, b_K, b_V although biases is 0 (Qwen2)
    int64_t parallel_residual = 0; // 1: attention and MLP both read the layer's input stream

    int64_t kv_heads() const { return n_kv_heads > 0 ? n_kv_heads : n_heads; }
    bool has_qkv_bias() const { return biases || qkv_bias; }
    void validate(const std::string& where) const;
};

// GPT-2's sizes (tiny, gpt2, gpt2-medium, gpt2-large, gpt2-xl), llama-tiny, pythia-tiny, and
// published models' (llama2-7b, llama3-8b, mistral-7b, qwen2.5-0.5b, smollm2-135m,
// pythia-160m) for count-params.
Config preset_config(const std::string& name);
std::vector<std::string> preset_names();

} // namespace qkv

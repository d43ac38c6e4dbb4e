// param_count: where a transformer's parameters live, head by head, and its forward FLOPs.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace qkv {

struct ParamConfig {
    std::string name; // preset or file name
    int64_t n_layers = 0, d_model = 0, n_heads = 0, d_head = 0, d_mlp = 0, vocab = 0, n_ctx = 0;
    int64_t n_kv_heads = 0; // key/value heads (grouped-query attention); 0: n_heads
    bool bias = true, tied = true;
    bool qkv_bias = false;          // b_Q, b_K, b_V without the other biases (Qwen2)
    bool gated = false;             // a gated MLP: W_gate beside W_in
    bool norm_bias = true;          // LayerNorm (w and b); false: RMSNorm (w)
    bool learned_pos = true;        // W_pos; false: rotary positions, no weights
    std::vector<std::string> notes; // how a preset resolved the table's inconsistencies
};

// GPT-2 (gpt2 .. gpt2-xl, tiny), the eight GPT-3 models of the GPT-3 paper's Table 2.1, and
// the Llama family's (llama-tiny, llama2-7b, llama3-8b, mistral-7b, smollm2-135m,
// qwen2.5-0.5b).
ParamConfig param_preset(const std::string& name);
std::vector<std::string> param_preset_names();

struct ParamCount {
    ParamConfig cfg;
    // one head: four matrices, each d_model x d_head (with grouped-query attention W_K and W_V
    // are shared by a group of query heads)
    int64_t head_q = 0, head_k = 0, head_v = 0, head_o = 0, head = 0;
    int64_t attn_matrices = 0, attn_biases = 0, attn_block = 0; // one layer
    int64_t mlp_matrices = 0, mlp_biases = 0, mlp_block = 0;    // one layer
    int64_t layer_norms = 0;                                    // per layer (ln1 + ln2)
    int64_t layer = 0;                                          // one whole block
    int64_t all_attn = 0, all_mlp = 0, all_ln = 0;              // every layer
    int64_t all_attn_matrices = 0;
    int64_t token_embed = 0, pos_embed = 0, unembed = 0, unembed_bias = 0, final_ln = 0;
    int64_t total = 0;
    // FLOPs per token of a forward pass with T tokens of context
    int64_t context = 0;
    int64_t flops_matmul = 0, flops_attention = 0;
};

ParamCount count_params(const ParamConfig& cfg, int64_t context);

// Counts from a model file's datasets (checked against its config; a missing or misshapen
// dataset is an error naming it). The unembedding counts as tied when W_U equals W_E^T.
ParamCount count_params_in_file(const std::string& path, int64_t context);

std::string param_report(const ParamCount& c);
std::string param_json(const ParamCount& c);

// The count-params command: a model file, a preset, or a configuration by flags (flags
// override a preset's values); 0 means "not given".
struct CountParamsOptions {
    std::string model, preset;
    int64_t n_layers = 0, d_model = 0, n_heads = 0, d_head = 0, d_mlp = 0, vocab = 0, n_ctx = 0;
    int64_t n_kv_heads = 0;
    bool no_bias = false, untied = false, json = false;
    int64_t context = 0; // FLOPs at this context length (default n_ctx)
};
std::string run_count_params(const CountParamsOptions& opt);

} // namespace qkv

// config: a GPT-2-style model's hyper-parameters, and the presets of the GPT-2 family.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace qkv {

struct Config {
    std::string arch = "gpt2";
    int64_t n_layers = 0, d_model = 0, n_heads = 0, d_head = 0, d_mlp = 0, n_ctx = 0,
            vocab_size = 0;
    double ln_eps = 1e-5;
    std::string act = "gelu_new"; // GELU, tanh approximation
    void validate(const std::string& where) const;
};

Config preset_config(const std::string& name); // gpt2, gpt2-medium, gpt2-large, gpt2-xl, tiny
std::vector<std::string> preset_names();

} // namespace qkv

#include "qkv/model/config.hpp"
#include "qkv/base/errors.hpp"

namespace qkv {

void Config::validate(const std::string& where) const {
    auto positive = [&](int64_t v, const char* name, int64_t max) {
        if (v <= 0 || v > max)
            throw FormatError(where + ": config " + name + " = " + std::to_string(v) +
                              " is out of range (1.." + std::to_string(max) + ")");
    };
    auto bad = [&](const std::string& what) { throw FormatError(where + ": config " + what); };
    if (arch != "gpt2" && arch != "llama" && arch != "gpt-neox")
        bad("arch '" + arch + "' is not supported (gpt2, llama, gpt-neox)");
    positive(n_layers, "n_layers", 1024);
    positive(d_model, "d_model", 1 << 16);
    positive(n_heads, "n_heads", 1024);
    positive(d_head, "d_head", 1 << 14);
    positive(d_mlp, "d_mlp", 1 << 18);
    positive(n_ctx, "n_ctx", 1 << 20);
    positive(vocab_size, "vocab_size", 1 << 22);
    positive(kv_heads(), "n_kv_heads", n_heads);
    if (n_heads % kv_heads() != 0)
        bad("n_heads = " + std::to_string(n_heads) +
            " is not a multiple of n_kv_heads = " + std::to_string(kv_heads()));
    if (!(ln_eps > 0 && ln_eps < 1)) bad("ln_eps out of range");
    if (act != "gelu_new" && act != "gelu" && act != "silu")
        bad("act '" + act + "' is not supported (gelu_new, gelu, silu)");
    if (norm != "layernorm" && norm != "rmsnorm")
        bad("norm '" + norm + "' is not supported (layernorm, rmsnorm)");
    if (positions == "rotary") {
        if (rotary_dim <= 0 || rotary_dim > d_head || rotary_dim % 2 != 0)
            bad("rotary_dim = " + std::to_string(rotary_dim) + " must be even, 2..d_head");
        if (!(rope_theta > 1 && rope_theta < 1e12)) bad("rope_theta out of range");
    } else if (positions != "learned") {
        bad("positions '" + positions + "' is not supported (learned, rotary)");
    }
    if (rope_scaling == "llama3") {
        if (!(rope_factor >= 1 && rope_factor < 1e6) || !(rope_low_freq_factor > 0) ||
            !(rope_high_freq_factor > rope_low_freq_factor) || rope_original_ctx <= 0)
            bad("rope scaling llama3: factor, low_freq_factor < high_freq_factor and "
                "original_max_position_embeddings out of range");
    } else if (rope_scaling != "none") {
        bad("rope_scaling '" + rope_scaling + "' is not supported (none, llama3)");
    }
    for (int64_t flag : {gated_mlp, biases, qkv_bias, parallel_residual})
        if (flag != 0 && flag != 1)
            bad("gated_mlp, biases, qkv_bias and parallel_residual are 0 or 1");
}

namespace {

// Sizes of the GPT-2 family: d_head = d_model / n_heads, d_mlp = 4 d_model.
Config gpt2_sized(int64_t L, int64_t d, int64_t H, int64_t ctx, int64_t vocab) {
    Config c;
    c.n_layers = L;
    c.d_model = d;
    c.n_heads = H;
    c.d_head = d / H;
    c.d_mlp = 4 * d;
    c.n_ctx = ctx;
    c.vocab_size = vocab;
    return c;
}

// A Llama-family model: RMSNorm, rotary positions on whole heads, SwiGLU, no biases.
Config llama_sized(int64_t L, int64_t d, int64_t H, int64_t kv, int64_t F, int64_t ctx,
                   int64_t vocab, double theta, double eps) {
    Config c = gpt2_sized(L, d, H, ctx, vocab);
    c.arch = "llama";
    c.n_kv_heads = kv;
    c.d_mlp = F;
    c.ln_eps = eps;
    c.act = "silu";
    c.norm = "rmsnorm";
    c.positions = "rotary";
    c.rotary_dim = c.d_head;
    c.rope_theta = theta;
    c.gated_mlp = 1;
    c.biases = 0;
    return c;
}

// A GPT-NeoX model (Pythia): LayerNorm, rotary on a quarter of each head, exact GELU, biases,
// attention and MLP in parallel.
Config neox_sized(int64_t L, int64_t d, int64_t H, int64_t ctx, int64_t vocab) {
    Config c = gpt2_sized(L, d, H, ctx, vocab);
    c.arch = "gpt-neox";
    c.act = "gelu";
    c.positions = "rotary";
    c.rotary_dim = c.d_head / 4;
    c.parallel_residual = 1;
    return c;
}

} // namespace

Config preset_config(const std::string& name) {
    if (name == "gpt2") return gpt2_sized(12, 768, 12, 1024, 50257);
    if (name == "gpt2-medium") return gpt2_sized(24, 1024, 16, 1024, 50257);
    if (name == "gpt2-large") return gpt2_sized(36, 1280, 20, 1024, 50257);
    if (name == "gpt2-xl") return gpt2_sized(48, 1600, 25, 1024, 50257);
    if (name == "tiny") return gpt2_sized(2, 64, 4, 128, 50257);
    if (name == "llama-tiny") return llama_sized(2, 64, 4, 2, 176, 128, 50257, 10000, 1e-5);
    if (name == "llama2-7b") return llama_sized(32, 4096, 32, 32, 11008, 4096, 32000, 1e4, 1e-5);
    if (name == "mistral-7b") return llama_sized(32, 4096, 32, 8, 14336, 32768, 32000, 1e6, 1e-5);
    if (name == "llama3-8b") {
        return llama_sized(32, 4096, 32, 8, 14336, 8192, 128256, 500000, 1e-5);
    }
    if (name == "pythia-tiny") return neox_sized(2, 64, 4, 128, 50257);
    if (name == "pythia-160m") return neox_sized(12, 768, 12, 2048, 50304);
    if (name == "smollm2-135m") return llama_sized(30, 576, 9, 3, 1536, 8192, 49152, 100000, 1e-5);
    if (name == "qwen2.5-0.5b") {
        Config c = llama_sized(24, 896, 14, 2, 4864, 32768, 151936, 1e6, 1e-6);
        c.qkv_bias = 1;
        return c;
    }
    std::string all;
    for (auto& n : preset_names())
        all += (all.empty() ? "" : ", ") + n;
    throw UsageError("--preset: unknown preset '" + name + "' (known: " + all + ")");
}

std::vector<std::string> preset_names() {
    return {"tiny",         "gpt2",        "gpt2-medium", "gpt2-large", "gpt2-xl",
            "llama-tiny",   "llama2-7b",   "llama3-8b",   "mistral-7b", "smollm2-135m",
            "qwen2.5-0.5b", "pythia-tiny", "pythia-160m"};
}

} // namespace qkv

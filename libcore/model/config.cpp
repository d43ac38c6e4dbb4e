#include "model/config.hpp"
#include "base/errors.hpp"

namespace qkv {

void Config::validate(const std::string& where) const {
    auto positive = [&](int64_t v, const char* name, int64_t max) {
        if (v <= 0 || v > max)
            throw FormatError(where + ": config " + name + " = " + std::to_string(v) +
                              " is out of range (1.." + std::to_string(max) + ")");
    };
    positive(n_layers, "n_layers", 1024);
    positive(d_model, "d_model", 1 << 16);
    positive(n_heads, "n_heads", 1024);
    positive(d_head, "d_head", 1 << 14);
    positive(d_mlp, "d_mlp", 1 << 18);
    positive(n_ctx, "n_ctx", 1 << 20);
    positive(vocab_size, "vocab_size", 1 << 22);
    if (!(ln_eps > 0 && ln_eps < 1)) throw FormatError(where + ": config ln_eps out of range");
    if (act != "gelu_new")
        throw FormatError(where + ": activation '" + act + "' is not supported (gelu_new)");
}

Config preset_config(const std::string& name) {
    Config c;
    auto set = [&](int64_t L, int64_t d, int64_t H, int64_t ctx, int64_t vocab) {
        c.n_layers = L;
        c.d_model = d;
        c.n_heads = H;
        c.d_head = d / H;
        c.d_mlp = 4 * d;
        c.n_ctx = ctx;
        c.vocab_size = vocab;
    };
    if (name == "gpt2")
        set(12, 768, 12, 1024, 50257);
    else if (name == "gpt2-medium")
        set(24, 1024, 16, 1024, 50257);
    else if (name == "gpt2-large")
        set(36, 1280, 20, 1024, 50257);
    else if (name == "gpt2-xl")
        set(48, 1600, 25, 1024, 50257);
    else if (name == "tiny")
        set(2, 64, 4, 128, 50257);
    else {
        std::string all;
        for (auto& n : preset_names())
            all += (all.empty() ? "" : ", ") + n;
        throw UsageError("--preset: unknown preset '" + name + "' (known: " + all + ")");
    }
    return c;
}

std::vector<std::string> preset_names() {
    return {"tiny", "gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl"};
}

} // namespace qkv

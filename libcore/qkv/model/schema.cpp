#include "qkv/model/schema.hpp"

#include <algorithm>

namespace qkv {

namespace {

// A row of the table: name (relative to a layer's group for block rows), shape, init, decay,
// trained.
// A shape as a function of the config, and the names of its dimensions.
struct Dims {
    Shape (*shape)(const Config&);
    const char* names; // comma-separated
};

struct Row {
    const char* name;
    Dims dims;
    Init init;
    bool decay, trained = true;
    bool (*present)(const Config&) = nullptr; // null: in every model
};

// Which weights a family has.
bool learned_positions(const Config& c) {
    return c.positions == "learned";
}
bool norm_bias(const Config& c) {
    return c.norm == "layernorm";
}
bool linear_bias(const Config& c) {
    return c.biases != 0;
}
bool qkv_bias(const Config& c) {
    return c.has_qkv_bias();
}
bool unembed_bias(const Config& c) {
    return c.arch == "gpt2"; // GPT-2's b_U, zero; no other family has one
}
bool gated(const Config& c) {
    return c.gated_mlp != 0;
}

Shape d_model(const Config& c) {
    return {c.d_model};
}
Shape d_mlp(const Config& c) {
    return {c.d_mlp};
}
Shape vocab(const Config& c) {
    return {c.vocab_size};
}
Shape head_d_model_d_head(const Config& c) {
    return {c.n_heads, c.d_model, c.d_head};
}
Shape head_d_head(const Config& c) {
    return {c.n_heads, c.d_head};
}
Shape kv_head_d_model_d_head(const Config& c) {
    return {c.kv_heads(), c.d_model, c.d_head};
}
Shape kv_head_d_head(const Config& c) {
    return {c.kv_heads(), c.d_head};
}
Shape head_d_head_d_model(const Config& c) {
    return {c.n_heads, c.d_head, c.d_model};
}
Shape d_model_d_mlp(const Config& c) {
    return {c.d_model, c.d_mlp};
}
Shape d_mlp_d_model(const Config& c) {
    return {c.d_mlp, c.d_model};
}
Shape vocab_d_model(const Config& c) {
    return {c.vocab_size, c.d_model};
}
Shape n_ctx_d_model(const Config& c) {
    return {c.n_ctx, c.d_model};
}
Shape d_model_vocab(const Config& c) {
    return {c.d_model, c.vocab_size};
}

const Dims k_d_model{d_model, "d_model"};
const Dims k_d_mlp{d_mlp, "d_mlp"};
const Dims k_vocab{vocab, "vocab"};
const Dims k_head_d_model_d_head{head_d_model_d_head, "head,d_model,d_head"};
const Dims k_head_d_head{head_d_head, "head,d_head"};
const Dims k_kv_head_d_model_d_head{kv_head_d_model_d_head, "kv_head,d_model,d_head"};
const Dims k_kv_head_d_head{kv_head_d_head, "kv_head,d_head"};
const Dims k_head_d_head_d_model{head_d_head_d_model, "head,d_head,d_model"};
const Dims k_d_model_d_mlp{d_model_d_mlp, "d_model,d_mlp"};
const Dims k_d_mlp_d_model{d_mlp_d_model, "d_mlp,d_model"};
const Dims k_vocab_d_model{vocab_d_model, "vocab,d_model"};
const Dims k_n_ctx_d_model{n_ctx_d_model, "pos,d_model"};
const Dims k_d_model_vocab{d_model_vocab, "d_model,vocab"};

const Row kBefore[] = {
    {"/embed/W_E", k_vocab_d_model, Init::Normal, true},
    {"/pos_embed/W_pos", k_n_ctx_d_model, Init::Normal, true, true, learned_positions},
};
const Row kBlock[] = {
    {"/ln1/w", k_d_model, Init::Ones, false},
    {"/ln1/b", k_d_model, Init::Zeros, false, true, norm_bias},
    {"/attn/W_Q", k_head_d_model_d_head, Init::Normal, true},
    {"/attn/b_Q", k_head_d_head, Init::Zeros, false, true, qkv_bias},
    {"/attn/W_K", k_kv_head_d_model_d_head, Init::Normal, true},
    {"/attn/b_K", k_kv_head_d_head, Init::Zeros, false, true, qkv_bias},
    {"/attn/W_V", k_kv_head_d_model_d_head, Init::Normal, true},
    {"/attn/b_V", k_kv_head_d_head, Init::Zeros, false, true, qkv_bias},
    {"/attn/W_O", k_head_d_head_d_model, Init::NormalResidual, true},
    {"/attn/b_O", k_d_model, Init::Zeros, false, true, linear_bias},
    {"/ln2/w", k_d_model, Init::Ones, false},
    {"/ln2/b", k_d_model, Init::Zeros, false, true, norm_bias},
    {"/mlp/W_gate", k_d_model_d_mlp, Init::Normal, true, true, gated},
    {"/mlp/W_in", k_d_model_d_mlp, Init::Normal, true},
    {"/mlp/b_in", k_d_mlp, Init::Zeros, false, true, linear_bias},
    {"/mlp/W_out", k_d_mlp_d_model, Init::NormalResidual, true},
    {"/mlp/b_out", k_d_model, Init::Zeros, false, true, linear_bias},
};
const Row kAfter[] = {
    {"/ln_final/w", k_d_model, Init::Ones, false},
    {"/ln_final/b", k_d_model, Init::Zeros, false, true, norm_bias},
    {"/unembed/W_U", k_d_model_vocab, Init::TransposeOfW_E, true, false},
    {"/unembed/b_U", k_vocab, Init::Zeros, false, false, unembed_bias},
};

} // namespace

std::vector<std::string> weight_dims(const std::string& name) {
    auto ends_with = [&](const std::string& tail) {
        return name.size() >= tail.size() &&
               name.compare(name.size() - tail.size(), tail.size(), tail) == 0;
    };
    auto find = [&](const Row* begin, const Row* end) -> const Row* {
        for (const Row* r = begin; r != end; ++r)
            if (ends_with(r->name)) return r;
        return nullptr;
    };
    const Row* r = find(std::begin(kBefore), std::end(kBefore));
    if (!r) r = find(std::begin(kBlock), std::end(kBlock));
    if (!r) r = find(std::begin(kAfter), std::end(kAfter));
    std::vector<std::string> out;
    if (!r) return out;
    std::string names = r->dims.names;
    for (size_t at = 0; at <= names.size();) {
        const size_t comma = std::min(names.find(',', at), names.size());
        out.push_back(names.substr(at, comma - at));
        at = comma + 1;
    }
    return out;
}

std::string block_group(int64_t layer) {
    return "/blocks/" + std::to_string(layer);
}

std::vector<ParamSpec> model_params(const Config& c) {
    std::vector<ParamSpec> out;
    auto add = [&](const std::string& prefix, const Row& r) {
        if (r.present && !r.present(c)) return;
        out.push_back({prefix + r.name, r.dims.shape(c), r.init, r.decay, r.trained});
    };
    for (const Row& r : kBefore)
        add("", r);
    for (int64_t l = 0; l < c.n_layers; ++l)
        for (const Row& r : kBlock)
            add(block_group(l), r);
    for (const Row& r : kAfter)
        add("", r);
    return out;
}

const std::vector<Field<Config>>& config_fields() {
    static const std::vector<Field<Config>> fields = {
        {"arch", nullptr, nullptr, &Config::arch},
        {"n_layers", &Config::n_layers},
        {"d_model", &Config::d_model},
        {"n_heads", &Config::n_heads},
        {"d_head", &Config::d_head},
        {"d_mlp", &Config::d_mlp},
        {"n_ctx", &Config::n_ctx},
        {"vocab_size", &Config::vocab_size},
        {"ln_eps", nullptr, &Config::ln_eps},
        {"act", nullptr, nullptr, &Config::act},
        // The family's settings, written for families other than GPT-2 (whose file is as it
        // was before them); absent, they are GPT-2's.
        {"n_kv_heads", &Config::n_kv_heads, nullptr, nullptr, true},
        {"norm", nullptr, nullptr, &Config::norm, true},
        {"positions", nullptr, nullptr, &Config::positions, true},
        {"rotary_dim", &Config::rotary_dim, nullptr, nullptr, true},
        {"rope_theta", nullptr, &Config::rope_theta, nullptr, true},
        {"rope_scaling", nullptr, nullptr, &Config::rope_scaling, true},
        {"rope_factor", nullptr, &Config::rope_factor, nullptr, true},
        {"rope_low_freq_factor", nullptr, &Config::rope_low_freq_factor, nullptr, true},
        {"rope_high_freq_factor", nullptr, &Config::rope_high_freq_factor, nullptr, true},
        {"rope_original_ctx", &Config::rope_original_ctx, nullptr, nullptr, true},
        {"gated_mlp", &Config::gated_mlp, nullptr, nullptr, true},
        {"biases", &Config::biases, nullptr, nullptr, true},
        {"qkv_bias", &Config::qkv_bias, nullptr, nullptr, true},
        {"parallel_residual", &Config::parallel_residual, nullptr, nullptr, true},
    };
    return fields;
}

} // namespace qkv

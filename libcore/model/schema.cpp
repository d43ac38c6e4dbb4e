#include "model/schema.hpp"

namespace qkv {

namespace {

// A row of the table: name (relative to a layer's group for block rows), shape, init, decay,
// trained.
struct Row {
    const char* name;
    Shape (*shape)(const Config&);
    Init init;
    bool decay, trained = true;
};

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

const Row kBefore[] = {
    {"/embed/W_E", vocab_d_model, Init::Normal, true},
    {"/pos_embed/W_pos", n_ctx_d_model, Init::Normal, true},
};
const Row kBlock[] = {
    {"/ln1/w", d_model, Init::Ones, false},
    {"/ln1/b", d_model, Init::Zeros, false},
    {"/attn/W_Q", head_d_model_d_head, Init::Normal, true},
    {"/attn/b_Q", head_d_head, Init::Zeros, false},
    {"/attn/W_K", head_d_model_d_head, Init::Normal, true},
    {"/attn/b_K", head_d_head, Init::Zeros, false},
    {"/attn/W_V", head_d_model_d_head, Init::Normal, true},
    {"/attn/b_V", head_d_head, Init::Zeros, false},
    {"/attn/W_O", head_d_head_d_model, Init::NormalResidual, true},
    {"/attn/b_O", d_model, Init::Zeros, false},
    {"/ln2/w", d_model, Init::Ones, false},
    {"/ln2/b", d_model, Init::Zeros, false},
    {"/mlp/W_in", d_model_d_mlp, Init::Normal, true},
    {"/mlp/b_in", d_mlp, Init::Zeros, false},
    {"/mlp/W_out", d_mlp_d_model, Init::NormalResidual, true},
    {"/mlp/b_out", d_model, Init::Zeros, false},
};
const Row kAfter[] = {
    {"/ln_final/w", d_model, Init::Ones, false},
    {"/ln_final/b", d_model, Init::Zeros, false},
    {"/unembed/W_U", d_model_vocab, Init::TransposeOfW_E, true, false},
    {"/unembed/b_U", vocab, Init::Zeros, false, false},
};

} // namespace

std::string block_group(int64_t layer) {
    return "/blocks/" + std::to_string(layer);
}

std::vector<ParamSpec> model_params(const Config& c) {
    std::vector<ParamSpec> out;
    auto add = [&](const std::string& prefix, const Row& r) {
        out.push_back({prefix + r.name, r.shape(c), r.init, r.decay, r.trained});
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
    };
    return fields;
}

} // namespace qkv

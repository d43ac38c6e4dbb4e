#include "qkv/files/hf_import.hpp"

#include "qkv/base/errors.hpp"
#include "qkv/files/hf_checkpoint.hpp"
#include "qkv/files/model_file.hpp"
#include "qkv/files/tokenizer_json.hpp"
#include "qkv/model/schema.hpp"

#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <sys/stat.h>

namespace qkv {

namespace {

// config.json, read with the file's name in every message.
struct HfConfig {
    nlohmann::json j;
    std::string where;

    bool has(const char* key) const { return j.contains(key) && !j[key].is_null(); }
    int64_t integer(std::initializer_list<const char*> keys) const {
        for (const char* k : keys)
            if (j.contains(k) && j[k].is_number_integer()) return j[k].get<int64_t>();
        throw FormatError(where + ": missing integer '" + *keys.begin() + "'");
    }
    int64_t integer_or(const char* key, int64_t fallback) const {
        return has(key) ? integer({key}) : fallback;
    }
    double number_or(const nlohmann::json& obj, const char* key, double fallback) const {
        if (!obj.contains(key) || obj[key].is_null()) return fallback;
        if (!obj[key].is_number()) throw FormatError(where + ": '" + key + "' must be a number");
        return obj[key].get<double>();
    }
    double number_or(const char* key, double fallback) const { return number_or(j, key, fallback); }
    bool flag_or(const char* key, bool fallback) const {
        if (!has(key)) return fallback;
        if (!j[key].is_boolean())
            throw FormatError(where + ": '" + key + "' must be true or false");
        return j[key].get<bool>();
    }
    std::string text_or(const char* key, const std::string& fallback) const {
        if (!has(key)) return fallback;
        if (!j[key].is_string()) throw FormatError(where + ": '" + key + "' must be a string");
        return j[key].get<std::string>();
    }
};

std::string folder_name(std::string dir) {
    while (dir.size() > 1 && dir.back() == '/')
        dir.pop_back();
    const auto slash = dir.rfind('/');
    return slash == std::string::npos ? dir : dir.substr(slash + 1);
}

bool exists(const std::string& path) {
    struct stat st;
    return stat(path.c_str(), &st) == 0;
}

} // namespace

TokenizerData folder_tokenizer(const std::string& dir, bool prefer_json) {
    const bool pair = exists(dir + "/vocab.json") && exists(dir + "/merges.txt");
    if (!exists(dir + "/tokenizer.json") || (pair && !prefer_json))
        return tokenizer_data_from_dir(dir);
    TokenizerData tok = load_tokenizer_data(dir + "/tokenizer.json");
    const std::string cfg_path = dir + "/tokenizer_config.json";
    if (!exists(cfg_path)) return tok;
    nlohmann::json tc;
    try {
        tc = nlohmann::json::parse(read_whole_file(cfg_path));
    } catch (const nlohmann::json::exception&) {
        throw FormatError(cfg_path + ": not valid JSON");
    }
    if (!tc.is_object()) throw FormatError(cfg_path + ": expected a JSON object");
    // A special token by its text: a string, or an object with "content".
    auto token_id = [&](const char* key) -> int32_t {
        if (!tc.contains(key) || tc[key].is_null()) return -1;
        const nlohmann::json& v = tc[key];
        const nlohmann::json& text = v.is_object() && v.contains("content") ? v["content"] : v;
        if (!text.is_string()) throw FormatError(cfg_path + ": '" + key + "' is not a token");
        for (size_t id = 0; id < tok.vocab.size(); ++id)
            if (tok.vocab[id] == text.get<std::string>()) return static_cast<int32_t>(id);
        throw FormatError(cfg_path + ": " + key + " '" + text.get<std::string>() +
                          "' is not in tokenizer.json");
    };
    tok.eos = token_id("eos_token");
    if (tc.contains("add_bos_token") && tc["add_bos_token"].is_boolean()) {
        tok.add_bos = tc["add_bos_token"].get<bool>();
        if (tok.add_bos && tok.bos < 0) tok.bos = token_id("bos_token");
        if (tok.add_bos && tok.bos < 0)
            throw FormatError(cfg_path + ": add_bos_token is true but no bos_token is given");
    }
    return tok;
}

namespace {

// x [n * d_head, d_in] (a Linear layer's weight, out x in) -> [n, d_in, d_head]: per head, the
// matrix that multiplies a row vector.
Tensor per_head_in(const Tensor& W, int64_t n, int64_t d_head, int64_t d_in) {
    Tensor out = Tensor::zeros({n, d_in, d_head});
    for (int64_t h = 0; h < n; ++h)
        for (int64_t e = 0; e < d_head; ++e)
            for (int64_t i = 0; i < d_in; ++i)
                out.f32()[(h * d_in + i) * d_head + e] = W.f32()[(h * d_head + e) * d_in + i];
    return out;
}

// A block weight's layer and its name within the block ("attn/W_Q"); family names the error.
std::string block_part(const std::string& name, int64_t& layer, const char* family) {
    char rest[32] = {0};
    if (std::sscanf(name.c_str(), "/blocks/%" SCNd64 "/%31s", &layer, rest) != 2)
        throw Error(std::string("internal: no ") + family + " tensor for " + name);
    return rest;
}

// ---------------------------------------------------------------- GPT-2

Config gpt2_config(const HfConfig& hc) {
    Config c;
    c.n_layers = hc.integer({"n_layer", "num_hidden_layers"});
    c.d_model = hc.integer({"n_embd", "hidden_size"});
    c.n_heads = hc.integer({"n_head", "num_attention_heads"});
    if (c.n_heads <= 0 || c.d_model % c.n_heads != 0)
        throw FormatError(hc.where + ": n_embd must be a multiple of n_head");
    c.d_head = c.d_model / c.n_heads;
    c.d_mlp = hc.integer_or("n_inner", 4 * c.d_model);
    c.n_ctx = hc.integer({"n_positions", "n_ctx"});
    c.vocab_size = hc.integer({"vocab_size"});
    c.ln_eps = hc.number_or("layer_norm_epsilon", 1e-5);
    const std::string act = hc.text_or("activation_function", "gelu_new");
    if (act != "gelu_new" && act != "gelu_pytorch_tanh")
        throw FormatError(hc.where + ": activation_function '" + act + "' is not supported");
    return c;
}

// GPT-2's weight for a schema name. Conv1D layers hold x @ W as it is ([in, out]).
Tensor gpt2_weight(const CheckpointTensors& s, const Config& c, const std::string& name) {
    // Names carry the "transformer." prefix (GPT2LMHeadModel) or not (GPT2Model).
    const std::string prefix = s.has("transformer.wte.weight") ? "transformer." : "";
    auto get = [&](const std::string& n, const Shape& shape) { return s.read(prefix + n, shape); };
    const int64_t D = c.d_model, H = c.n_heads, dh = c.d_head, F = c.d_mlp, V = c.vocab_size;
    if (name == "/embed/W_E") return get("wte.weight", {V, D});
    if (name == "/pos_embed/W_pos") return get("wpe.weight", {c.n_ctx, D});
    if (name == "/ln_final/w") return get("ln_f.weight", {D});
    if (name == "/ln_final/b") return get("ln_f.bias", {D});
    // The unembedding is tied to W_E in GPT-2; an lm_head.weight, where present, is used as is.
    if (name == "/unembed/W_U")
        return transpose2d(s.has("lm_head.weight") ? s.read("lm_head.weight", {V, D})
                                                   : get("wte.weight", {V, D}));
    if (name == "/unembed/b_U") return Tensor::zeros({V});
    int64_t layer = 0;
    const std::string r = block_part(name, layer, "GPT-2");
    const std::string h = "h." + std::to_string(layer) + ".";
    const char* qkv = "QKV";
    for (int which = 0; which < 3; ++which) {
        // c_attn [d_model, 3 d_model]: columns (q|k|v, head, d_head).
        if (r == std::string("attn/W_") + qkv[which]) {
            const Tensor Wc = get(h + "attn.c_attn.weight", {D, 3 * D});
            Tensor W = Tensor::zeros({H, D, dh}); // [head, d_model, d_head]
            for (int64_t hd = 0; hd < H; ++hd)
                for (int64_t i = 0; i < D; ++i)
                    std::memcpy(W.f32() + (hd * D + i) * dh,
                                Wc.f32() + i * 3 * D + which * D + hd * dh, dh * sizeof(float));
            return W;
        }
        if (r == std::string("attn/b_") + qkv[which]) {
            const Tensor bc = get(h + "attn.c_attn.bias", {3 * D});
            Tensor b = Tensor::zeros({H, dh}); // [head, d_head]
            std::memcpy(b.f32(), bc.f32() + which * D, D * sizeof(float));
            return b;
        }
    }
    // c_proj [d_model(= head * d_head), d_model] is W_O [head, d_head, d_model] as it is.
    if (r == "attn/W_O") return get(h + "attn.c_proj.weight", {D, D}).reshaped({H, dh, D});
    if (r == "attn/b_O") return get(h + "attn.c_proj.bias", {D});
    if (r == "ln1/w") return get(h + "ln_1.weight", {D});
    if (r == "ln1/b") return get(h + "ln_1.bias", {D});
    if (r == "ln2/w") return get(h + "ln_2.weight", {D});
    if (r == "ln2/b") return get(h + "ln_2.bias", {D});
    if (r == "mlp/W_in") return get(h + "mlp.c_fc.weight", {D, F});
    if (r == "mlp/b_in") return get(h + "mlp.c_fc.bias", {F});
    if (r == "mlp/W_out") return get(h + "mlp.c_proj.weight", {F, D});
    if (r == "mlp/b_out") return get(h + "mlp.c_proj.bias", {D});
    throw Error("internal: no GPT-2 tensor for " + name);
}

// ---------------------------------------------------------------- Llama family

Config llama_config(const HfConfig& hc, const std::string& model_type) {
    Config c = preset_config("llama-tiny"); // the family's settings; sizes below
    c.n_layers = hc.integer({"num_hidden_layers"});
    c.d_model = hc.integer({"hidden_size"});
    c.n_heads = hc.integer({"num_attention_heads"});
    c.n_kv_heads = hc.integer_or("num_key_value_heads", c.n_heads);
    if (c.n_heads <= 0) throw FormatError(hc.where + ": num_attention_heads must be positive");
    c.d_head = hc.integer_or("head_dim", c.d_model / c.n_heads);
    c.d_mlp = hc.integer({"intermediate_size"});
    c.n_ctx = hc.integer({"max_position_embeddings"});
    c.vocab_size = hc.integer({"vocab_size"});
    c.ln_eps = hc.number_or("rms_norm_eps", 1e-6);
    c.rotary_dim = c.d_head;
    c.rope_theta = hc.number_or("rope_theta", 10000);
    const std::string act = hc.text_or("hidden_act", "silu");
    if (act != "silu") throw FormatError(hc.where + ": hidden_act '" + act + "' is not supported");
    if (hc.flag_or("mlp_bias", false))
        throw FormatError(hc.where + ": mlp_bias true is not supported");
    if (hc.flag_or("attention_bias", false))
        throw FormatError(hc.where + ": attention_bias true is not supported");
    c.qkv_bias = model_type == "qwen2" ? 1 : 0; // Qwen2's q, k and v have biases, o none
    // A sliding window as long as the context changes nothing; a shorter one limits it.
    const bool window = model_type == "mistral" || hc.flag_or("use_sliding_window", false);
    if (window && hc.has("sliding_window"))
        c.n_ctx = std::min(c.n_ctx, hc.integer({"sliding_window"}));
    if (hc.has("rope_scaling")) {
        const nlohmann::json& rs = hc.j["rope_scaling"];
        if (!rs.is_object()) throw FormatError(hc.where + ": rope_scaling must be an object");
        std::string type;
        for (const char* k : {"rope_type", "type"})
            if (rs.contains(k) && rs[k].is_string()) type = rs[k].get<std::string>();
        if (type != "llama3" && type != "default")
            throw FormatError(hc.where + ": rope_scaling type '" + type +
                              "' is not supported (llama3, default)");
        if (type == "llama3") {
            c.rope_scaling = "llama3";
            c.rope_factor = hc.number_or(rs, "factor", 0);
            c.rope_low_freq_factor = hc.number_or(rs, "low_freq_factor", 0);
            c.rope_high_freq_factor = hc.number_or(rs, "high_freq_factor", 0);
            c.rope_original_ctx =
                static_cast<int64_t>(hc.number_or(rs, "original_max_position_embeddings", 0));
        }
    }
    return c;
}

// The Llama family's weight for a schema name. Linear layers hold W as [out, in] (y = x W^T).
Tensor llama_weight(const CheckpointTensors& s, const Config& c, bool tied,
                    const std::string& name) {
    const std::string prefix = s.has("model.embed_tokens.weight") ? "model." : "";
    auto get = [&](const std::string& n, const Shape& shape) { return s.read(prefix + n, shape); };
    const int64_t D = c.d_model, H = c.n_heads, Hkv = c.kv_heads(), dh = c.d_head, F = c.d_mlp,
                  V = c.vocab_size;
    if (name == "/embed/W_E") return get("embed_tokens.weight", {V, D});
    if (name == "/ln_final/w") return get("norm.weight", {D});
    if (name == "/unembed/W_U")
        return transpose2d(tied || !s.has("lm_head.weight") ? get("embed_tokens.weight", {V, D})
                                                            : s.read("lm_head.weight", {V, D}));
    int64_t layer = 0;
    const std::string r = block_part(name, layer, "Llama");
    const std::string l = "layers." + std::to_string(layer) + ".";
    const std::string a = l + "self_attn.";
    if (r == "ln1/w") return get(l + "input_layernorm.weight", {D});
    if (r == "ln2/w") return get(l + "post_attention_layernorm.weight", {D});
    if (r == "attn/W_Q") return per_head_in(get(a + "q_proj.weight", {H * dh, D}), H, dh, D);
    if (r == "attn/W_K") return per_head_in(get(a + "k_proj.weight", {Hkv * dh, D}), Hkv, dh, D);
    if (r == "attn/W_V") return per_head_in(get(a + "v_proj.weight", {Hkv * dh, D}), Hkv, dh, D);
    if (r == "attn/b_Q") return get(a + "q_proj.bias", {H * dh}).reshaped({H, dh});
    if (r == "attn/b_K") return get(a + "k_proj.bias", {Hkv * dh}).reshaped({Hkv, dh});
    if (r == "attn/b_V") return get(a + "v_proj.bias", {Hkv * dh}).reshaped({Hkv, dh});
    // o_proj [d_model, head * d_head]: its transpose is W_O [head, d_head, d_model].
    if (r == "attn/W_O")
        return transpose2d(get(a + "o_proj.weight", {D, H * dh})).reshaped({H, dh, D});
    if (r == "mlp/W_gate") return transpose2d(get(l + "mlp.gate_proj.weight", {F, D}));
    if (r == "mlp/W_in") return transpose2d(get(l + "mlp.up_proj.weight", {F, D}));
    if (r == "mlp/W_out") return transpose2d(get(l + "mlp.down_proj.weight", {D, F}));
    throw Error("internal: no Llama tensor for " + name);
}

// ---------------------------------------------------------------- GPT-NeoX (Pythia)

Config neox_config(const HfConfig& hc) {
    Config c = preset_config("pythia-tiny"); // the family's settings; sizes below
    c.n_layers = hc.integer({"num_hidden_layers"});
    c.d_model = hc.integer({"hidden_size"});
    c.n_heads = hc.integer({"num_attention_heads"});
    if (c.n_heads <= 0 || c.d_model % c.n_heads != 0)
        throw FormatError(hc.where + ": hidden_size must be a multiple of num_attention_heads");
    c.d_head = c.d_model / c.n_heads;
    c.d_mlp = hc.integer({"intermediate_size"});
    c.n_ctx = hc.integer({"max_position_embeddings"});
    c.vocab_size = hc.integer({"vocab_size"});
    c.ln_eps = hc.number_or("layer_norm_eps", 1e-5);
    c.rotary_dim = static_cast<int64_t>(c.d_head * hc.number_or("rotary_pct", 0.25));
    c.rope_theta = hc.number_or("rope_theta", hc.number_or("rotary_emb_base", 10000));
    c.parallel_residual = hc.flag_or("use_parallel_residual", true) ? 1 : 0;
    const std::string act = hc.text_or("hidden_act", "gelu");
    if (act != "gelu") throw FormatError(hc.where + ": hidden_act '" + act + "' is not supported");
    if (!hc.flag_or("attention_bias", true))
        throw FormatError(hc.where + ": attention_bias false is not supported");
    if (hc.has("rope_scaling"))
        throw FormatError(hc.where + ": rope_scaling is not supported for gpt_neox");
    return c;
}

// GPT-NeoX's weight for a schema name. query_key_value [3 d_model, d_model] holds, per head,
// q, k and v one after another: row h * 3 d_head + x * d_head + e.
Tensor neox_weight(const CheckpointTensors& s, const Config& c, const std::string& name) {
    const std::string prefix = s.has("gpt_neox.embed_in.weight") ? "gpt_neox." : "";
    auto get = [&](const std::string& n, const Shape& shape) { return s.read(prefix + n, shape); };
    const int64_t D = c.d_model, H = c.n_heads, dh = c.d_head, F = c.d_mlp, V = c.vocab_size;
    if (name == "/embed/W_E") return get("embed_in.weight", {V, D});
    if (name == "/ln_final/w") return get("final_layer_norm.weight", {D});
    if (name == "/ln_final/b") return get("final_layer_norm.bias", {D});
    if (name == "/unembed/W_U") return transpose2d(s.read("embed_out.weight", {V, D}));
    int64_t layer = 0;
    const std::string r = block_part(name, layer, "GPT-NeoX");
    const std::string l = "layers." + std::to_string(layer) + ".";
    const std::string a = l + "attention.";
    const char* qkv = "QKV";
    for (int which = 0; which < 3; ++which) {
        if (r == std::string("attn/W_") + qkv[which]) {
            const Tensor W = get(a + "query_key_value.weight", {3 * D, D});
            Tensor out = Tensor::zeros({H, D, dh}); // [head, d_model, d_head]
            for (int64_t h = 0; h < H; ++h)
                for (int64_t e = 0; e < dh; ++e)
                    for (int64_t i = 0; i < D; ++i)
                        out.f32()[(h * D + i) * dh + e] =
                            W.f32()[(h * 3 * dh + which * dh + e) * D + i];
            return out;
        }
        if (r == std::string("attn/b_") + qkv[which]) {
            const Tensor b = get(a + "query_key_value.bias", {3 * D});
            Tensor out = Tensor::zeros({H, dh}); // [head, d_head]
            for (int64_t h = 0; h < H; ++h)
                std::memcpy(out.f32() + h * dh, b.f32() + h * 3 * dh + which * dh,
                            dh * sizeof(float));
            return out;
        }
    }
    if (r == "attn/W_O") return transpose2d(get(a + "dense.weight", {D, D})).reshaped({H, dh, D});
    if (r == "attn/b_O") return get(a + "dense.bias", {D});
    if (r == "ln1/w") return get(l + "input_layernorm.weight", {D});
    if (r == "ln1/b") return get(l + "input_layernorm.bias", {D});
    if (r == "ln2/w") return get(l + "post_attention_layernorm.weight", {D});
    if (r == "ln2/b") return get(l + "post_attention_layernorm.bias", {D});
    if (r == "mlp/W_in") return transpose2d(get(l + "mlp.dense_h_to_4h.weight", {F, D}));
    if (r == "mlp/b_in") return get(l + "mlp.dense_h_to_4h.bias", {F});
    if (r == "mlp/W_out") return transpose2d(get(l + "mlp.dense_4h_to_h.weight", {D, F}));
    if (r == "mlp/b_out") return get(l + "mlp.dense_4h_to_h.bias", {D});
    throw Error("internal: no GPT-NeoX tensor for " + name);
}

} // namespace

std::string model_import(const ModelImportOptions& opt) {
    const std::string& dir = opt.from_dir;
    struct stat st;
    if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
        throw IoError(dir + ": not a directory (expected a Hugging Face checkpoint directory)");
    HfConfig hc;
    hc.where = dir + "/config.json";
    try {
        hc.j = nlohmann::json::parse(read_whole_file(hc.where));
    } catch (const nlohmann::json::exception&) {
        throw FormatError(hc.where + ": not valid JSON");
    }
    if (!hc.j.is_object()) throw FormatError(hc.where + ": expected a JSON object");
    const std::string model_type = hc.text_or("model_type", "");
    const bool llama = model_type == "llama" || model_type == "mistral" || model_type == "qwen2";
    const bool neox = model_type == "gpt_neox", gpt2 = model_type == "gpt2";
    if (!gpt2 && !llama && !neox)
        throw FormatError(hc.where + ": model_type '" + model_type +
                          "' is not supported (gpt2, llama, mistral, qwen2, gpt_neox)");
    const Config c = llama  ? llama_config(hc, model_type)
                     : neox ? neox_config(hc)
                            : gpt2_config(hc);
    c.validate(hc.where);
    // Llama ties W_U to W_E only when the config says so (Llama 3.2, Qwen2.5 small sizes do).
    const bool tied = hc.flag_or("tie_word_embeddings", gpt2);
    if (neox && tied) throw FormatError(hc.where + ": tie_word_embeddings true is not supported");

    TokenizerData tok = folder_tokenizer(dir, !gpt2);
    if (static_cast<int64_t>(tok.vocab.size()) > c.vocab_size ||
        (gpt2 && static_cast<int64_t>(tok.vocab.size()) != c.vocab_size))
        throw FormatError(dir + ": the tokenizer has " + std::to_string(tok.vocab.size()) +
                          " tokens, but config.json says vocab_size " +
                          std::to_string(c.vocab_size));

    const CheckpointTensors s = CheckpointTensors::open(dir);
    ModelWriter w(opt.output, c, "hf-" + folder_name(dir), opt.history_line);
    const std::string half = opt.keep_dtype ? s.common_half_dtype() : "";
    if (!half.empty()) w.store_half(half == "F16" ? DType::F16 : DType::BF16);
    w.on_progress(opt.progress);
    for (const ParamSpec& p : model_params(c))
        w.put(p.name, llama  ? llama_weight(s, c, tied, p.name)
                      : neox ? neox_weight(s, c, p.name)
                             : gpt2_weight(s, c, p.name));
    w.put_tokenizer(tok);
    return w.commit();
}

} // namespace qkv

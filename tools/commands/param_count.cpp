#include "commands/param_count.hpp"
#include "qkv/model/schema.hpp"

#include "qkv/base/errors.hpp"
#include "qkv/files/model_file.hpp"

#include <cmath>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <sstream>

namespace qkv {

std::vector<std::string> param_preset_names() {
    std::vector<std::string> names = preset_names(); // the model presets, then GPT-3's
    for (const char* n : {"gpt3-small", "gpt3-medium", "gpt3-large", "gpt3-xl", "gpt3-2.7b",
                          "gpt3-6.7b", "gpt3-13b", "gpt3"})
        names.push_back(n);
    return names;
}

namespace {
// The sizes count_params needs, from a model's config.
ParamConfig param_config_of(const Config& c, const std::string& name) {
    ParamConfig p;
    p.name = name;
    p.n_layers = c.n_layers;
    p.d_model = c.d_model;
    p.n_heads = c.n_heads;
    p.d_head = c.d_head;
    p.d_mlp = c.d_mlp;
    p.vocab = c.vocab_size;
    p.n_ctx = c.n_ctx;
    p.n_kv_heads = c.kv_heads();
    p.bias = c.biases != 0;
    p.qkv_bias = c.qkv_bias != 0;
    p.gated = c.gated_mlp != 0;
    p.norm_bias = c.norm == "layernorm";
    p.learned_pos = c.positions == "learned";
    return p;
}
} // namespace

ParamConfig param_preset(const std::string& name) {
    if (name.rfind("gpt3", 0) != 0) { // the model presets; throws for unknown names
        ParamConfig p = param_config_of(preset_config(name), name);
        // The published Llama 2, Llama 3, Mistral and Pythia models have an unembedding of
        // their own.
        p.tied = !(name == "llama2-7b" || name == "llama3-8b" || name == "mistral-7b" ||
                   name == "pythia-160m");
        return p;
    }
    ParamConfig p;
    p.name = name;
    // GPT-3 paper, Table 2.1: n_layers, d_model, n_heads, d_head; n_ctx 2048, d_mlp = 4 d_model.
    struct Row {
        const char* name;
        int64_t L, d, H, dh;
    };
    const Row rows[] = {{"gpt3-small", 12, 768, 12, 64},  {"gpt3-medium", 24, 1024, 16, 64},
                        {"gpt3-large", 24, 1536, 16, 96}, {"gpt3-xl", 24, 2048, 24, 128},
                        {"gpt3-2.7b", 32, 2560, 32, 80},  {"gpt3-6.7b", 32, 4096, 32, 128},
                        {"gpt3-13b", 40, 5140, 40, 128},  {"gpt3", 96, 12288, 96, 128}};
    for (const Row& r : rows) {
        if (name != r.name) continue;
        p.n_layers = r.L;
        p.d_model = r.d;
        p.n_heads = r.H;
        p.d_head = r.dh;
        p.vocab = 50257;
        p.n_ctx = 2048;
        if (name == "gpt3-xl") {
            // 24 x 128 = 3072 != 2048; 24 heads of 128 would give about 1.52 billion.
            p.n_heads = 16;
            p.notes.push_back(
                "Table 2.1 prints 24 heads of 128 for d_model 2048; counted as 16 "
                "heads of 128 (attention width 2048) so the total is the table's 1.3B");
        } else if (name == "gpt3-13b") {
            // 40 x 128 = 5120 != 5140: the model's width is 5120 (the table's 5140 a misprint).
            p.d_model = 5120;
            p.notes.push_back("Table 2.1 prints d_model 5140 with 40 heads of 128 (= 5120); "
                              "counted with d_model 5120");
        }
        p.d_mlp = 4 * p.d_model;
        return p;
    }
    std::string all;
    for (auto& n : param_preset_names())
        all += (all.empty() ? "" : ", ") + n;
    throw UsageError("--preset: unknown preset '" + name + "' (known: " + all + ")");
}

ParamCount count_params(const ParamConfig& cfg, int64_t context) {
    for (int64_t v :
         {cfg.n_layers, cfg.d_model, cfg.n_heads, cfg.d_head, cfg.d_mlp, cfg.vocab, cfg.n_ctx})
        if (v <= 0) throw UsageError("every size must be positive (see --help)");
    ParamCount c;
    c.cfg = cfg;
    const int64_t L = cfg.n_layers, D = cfg.d_model, H = cfg.n_heads, dh = cfg.d_head,
                  F = cfg.d_mlp, A = H * dh; // A: attention width
    const int64_t b = cfg.bias ? 1 : 0, qkv_b = cfg.bias || cfg.qkv_bias ? 1 : 0;
    const int64_t Hkv = cfg.n_kv_heads > 0 ? cfg.n_kv_heads : H, KV = Hkv * dh;
    if (H % Hkv != 0) throw UsageError("--n-heads must be a multiple of --kv-heads");
    c.head_q = c.head_k = c.head_v = c.head_o = D * dh;
    c.head = 4 * D * dh;
    // W_Q and W_O per query head, W_K and W_V per key/value head.
    c.attn_matrices = H * (c.head_q + c.head_o) + Hkv * (c.head_k + c.head_v);
    c.attn_biases = qkv_b * (A + 2 * KV) + b * D; // b_Q; b_K, b_V per key/value head; b_O
    c.attn_block = c.attn_matrices + c.attn_biases;
    c.mlp_matrices = (cfg.gated ? 3 : 2) * D * F;
    c.mlp_biases = b * (F + D);
    c.mlp_block = c.mlp_matrices + c.mlp_biases;
    const int64_t norm = cfg.norm_bias ? 2 * D : D; // LayerNorm keeps its bias, RMSNorm has none
    c.layer_norms = 2 * norm;                       // ln1 and ln2
    c.layer = c.attn_block + c.mlp_block + c.layer_norms;
    c.all_attn = L * c.attn_block;
    c.all_attn_matrices = L * c.attn_matrices;
    c.all_mlp = L * c.mlp_block;
    c.all_ln = L * c.layer_norms;
    c.token_embed = cfg.vocab * D;
    c.pos_embed = cfg.learned_pos ? cfg.n_ctx * D : 0;
    c.unembed = cfg.tied ? 0 : D * cfg.vocab;
    c.unembed_bias = 0; // GPT-2 and GPT-3 have none
    c.final_ln = norm;
    c.total = L * c.layer + c.token_embed + c.pos_embed + c.unembed + c.unembed_bias + c.final_ln;
    // Forward FLOPs per token (a multiply-add is 2 FLOPs): every weight matrix of the blocks
    // and the unembedding once; attention scores q.k and the weighted sum of values, each
    // 2 * T * A per layer, over a context of T tokens.
    c.context = context > 0 ? context : cfg.n_ctx;
    c.flops_matmul = 2 * (c.all_attn_matrices + L * c.mlp_matrices + D * cfg.vocab);
    c.flops_attention = L * 2 * 2 * c.context * A;
    return c;
}

ParamCount count_params_in_file(const std::string& path, int64_t context) {
    ModelFile m = ModelFile::open(path);
    const Config& k = m.config();
    const H5File& f = m.h5();
    ParamConfig p = param_config_of(k, path);
    int64_t in_file = 0;
    // Every dataset the config calls for, with its shape; the counts come from the file.
    for (const ParamSpec& spec : model_params(k)) {
        if (!f.exists(spec.name)) throw FormatError(path + ": missing dataset " + spec.name);
        const DatasetInfo in = f.info(spec.name);
        if (in.shape != spec.shape)
            throw ShapeError(path + ":" + spec.name + ": shape " + shape_str(in.shape) +
                             " disagrees with the config, which implies " + shape_str(spec.shape));
        in_file += shape_numel(in.shape);
    }
    // Tied when W_U is exactly W_E transposed (then it is one matrix stored twice).
    const bool tied = is_transpose_of(f.read_f32("/embed/W_E"), f.read_f32("/unembed/W_U"));
    bool b_U_zero = true; // (a model without b_U has none to count)
    if (f.exists("/unembed/b_U")) {
        Tensor b_U = f.read_f32("/unembed/b_U");
        for (int64_t v = 0; v < k.vocab_size; ++v)
            b_U_zero = b_U_zero && b_U.f32()[v] == 0.0f;
    }
    p.tied = tied;
    ParamCount c = count_params(p, context);
    if (!b_U_zero) {
        c.unembed_bias = k.vocab_size;
        c.total += k.vocab_size;
    }
    // What the file stores must be the count plus what it stores twice or as zeros.
    const bool zero_b_U_stored = b_U_zero && f.exists("/unembed/b_U");
    const int64_t stored =
        c.total + (tied ? k.d_model * k.vocab_size : 0) + (zero_b_U_stored ? k.vocab_size : 0);
    if (stored != in_file)
        throw FormatError(path + ": the datasets hold " + std::to_string(in_file) +
                          " values but the config implies " + std::to_string(stored));
    c.cfg.notes.push_back(
        "counted from the file's datasets: " + std::to_string(in_file) + " stored values, W_U " +
        (tied ? "tied to W_E (stored twice, counted once)" : "a matrix of its own") +
        (zero_b_U_stored ? ", b_U all zero (not counted)" : ""));
    return c;
}

namespace {
std::string num(int64_t v) {
    std::string s = std::to_string(v), out;
    int n = 0;
    for (auto it = s.rbegin(); it != s.rend(); ++it) {
        if (n && n % 3 == 0 && *it != '-') out += ',';
        out += *it;
        ++n;
    }
    return std::string(out.rbegin(), out.rend());
}
std::string human(double v) {
    std::ostringstream o;
    o << std::setprecision(4);
    if (v >= 1e9)
        o << v / 1e9 << " billion";
    else if (v >= 1e6)
        o << v / 1e6 << " million";
    else
        o << v;
    return o.str();
}
std::string pct(int64_t part, int64_t total) {
    std::ostringstream o;
    o << std::fixed << std::setprecision(1) << 100.0 * part / total << "%";
    return o.str();
}
} // namespace

std::string param_report(const ParamCount& c) {
    const ParamConfig& p = c.cfg;
    std::ostringstream o;
    auto line = [&](const std::string& what, int64_t v, const std::string& extra = "") {
        o << "  " << std::left << std::setw(44) << what << std::right << std::setw(20) << num(v)
          << (extra.empty() ? "" : "  " + extra) << '\n';
    };
    o << p.name << ": " << p.n_layers << " layers, d_model " << p.d_model << ", " << p.n_heads
      << " heads of d_head " << p.d_head << ", d_mlp " << p.d_mlp << ", vocab " << p.vocab
      << ", n_ctx " << p.n_ctx
      << (p.n_kv_heads > 0 && p.n_kv_heads != p.n_heads
              ? ", " + std::to_string(p.n_kv_heads) + " key/value heads"
              : "")
      << (p.gated ? ", gated MLP" : "") << (p.norm_bias ? "" : ", RMSNorm")
      << (p.learned_pos ? "" : ", rotary positions")
      << (p.bias       ? ""
          : p.qkv_bias ? ", biases on q, k, v only"
                       : ", no biases")
      << (p.tied ? ", tied unembedding" : ", untied unembedding") << '\n';
    for (const auto& n : p.notes)
        o << "note: " << n << '\n';
    const std::string dxh = num(p.d_model) + " x " + num(p.d_head);
    o << "\none attention head\n";
    line("query  W_Q", c.head_q, dxh);
    const bool grouped = p.n_kv_heads > 0 && p.n_kv_heads != p.n_heads;
    const std::string shared =
        grouped ? dxh + ", shared by " + std::to_string(p.n_heads / p.n_kv_heads) + " heads" : dxh;
    line("key    W_K", c.head_k, shared);
    line("value-down W_V", c.head_v, shared);
    line("value-up   W_O (the head's slice)", c.head_o, dxh);
    line("one head, matrices", c.head, "about " + human(c.head));
    o << "\none block\n";
    line("attention matrices (" + std::to_string(p.n_heads) + " heads)", c.attn_matrices,
         "about " + human(c.attn_matrices));
    line("attention biases", c.attn_biases);
    line(p.gated ? "MLP matrices W_gate, W_in, W_out" : "MLP matrices W_in, W_out", c.mlp_matrices,
         "about " + human(c.mlp_matrices));
    line("MLP biases", c.mlp_biases);
    line(p.norm_bias ? "LayerNorms (2 x weight and bias)" : "RMSNorms (2 x weight)", c.layer_norms);
    line("one block", c.layer, "about " + human(c.layer));
    o << "\nwhole model\n";
    line("attention matrices, all " + std::to_string(p.n_layers) + " layers", c.all_attn_matrices,
         "about " + human(c.all_attn_matrices));
    line("attention, with biases", c.all_attn, pct(c.all_attn, c.total));
    line("MLP, with biases", c.all_mlp, pct(c.all_mlp, c.total));
    line("LayerNorms in blocks", c.all_ln, pct(c.all_ln, c.total));
    line("token embedding W_E", c.token_embed, pct(c.token_embed, c.total));
    if (p.learned_pos) line("position embedding W_pos", c.pos_embed, pct(c.pos_embed, c.total));
    line(p.tied ? "unembedding W_U (tied to W_E)" : "unembedding W_U", c.unembed,
         pct(c.unembed, c.total));
    if (c.unembed_bias) line("unembedding bias b_U", c.unembed_bias);
    line("final LayerNorm", c.final_ln);
    line("total", c.total, "about " + human(c.total));
    o << "\nforward FLOPs per token, context " << num(c.context) << " tokens\n";
    line("matrix products 2 x (block matrices + W_U)", c.flops_matmul, human(c.flops_matmul));
    line("attention scores and values 4 L T A", c.flops_attention, human(c.flops_attention));
    line("total", c.flops_matmul + c.flops_attention, human(c.flops_matmul + c.flops_attention));
    return o.str();
}

std::string param_json(const ParamCount& c) {
    const ParamConfig& p = c.cfg;
    nlohmann::ordered_json j;
    j["name"] = p.name;
    j["config"] = {
        {"n_layers", p.n_layers},   {"d_model", p.d_model},
        {"n_heads", p.n_heads},     {"n_kv_heads", p.n_kv_heads > 0 ? p.n_kv_heads : p.n_heads},
        {"d_head", p.d_head},       {"d_mlp", p.d_mlp},
        {"vocab", p.vocab},         {"n_ctx", p.n_ctx},
        {"bias", p.bias},           {"qkv_bias", p.qkv_bias},
        {"gated_mlp", p.gated},     {"rms_norm", !p.norm_bias},
        {"rotary", !p.learned_pos}, {"tied", p.tied}};
    j["notes"] = p.notes;
    j["head"] = {{"W_Q", c.head_q},
                 {"W_K", c.head_k},
                 {"W_V", c.head_v},
                 {"W_O", c.head_o},
                 {"total", c.head}};
    j["block"] = {{"attention_matrices", c.attn_matrices}, {"attention_biases", c.attn_biases},
                  {"mlp_matrices", c.mlp_matrices},        {"mlp_biases", c.mlp_biases},
                  {"layer_norms", c.layer_norms},          {"total", c.layer}};
    j["model"] = {{"attention_matrices", c.all_attn_matrices},
                  {"attention", c.all_attn},
                  {"mlp", c.all_mlp},
                  {"layer_norms", c.all_ln},
                  {"token_embedding", c.token_embed},
                  {"position_embedding", c.pos_embed},
                  {"unembedding", c.unembed},
                  {"unembedding_bias", c.unembed_bias},
                  {"final_layer_norm", c.final_ln},
                  {"total", c.total}};
    j["share"] = {{"attention", double(c.all_attn) / c.total},
                  {"mlp", double(c.all_mlp) / c.total},
                  {"embeddings", double(c.token_embed + c.pos_embed + c.unembed) / c.total}};
    j["flops_per_token"] = {{"context", c.context},
                            {"matmul", c.flops_matmul},
                            {"attention", c.flops_attention},
                            {"total", c.flops_matmul + c.flops_attention}};
    return j.dump(2) + "\n";
}

std::string run_count_params(const CountParamsOptions& o) {
    const bool flags = o.n_layers || o.d_model || o.n_heads || o.d_head || o.d_mlp || o.vocab ||
                       o.n_ctx || o.n_kv_heads || o.no_bias || o.untied;
    if (o.context < 0) throw UsageError("--context must be positive");
    ParamCount c;
    if (!o.model.empty()) {
        if (!o.preset.empty() || flags)
            throw UsageError("--model counts a file: give no --preset or size flags with it");
        c = count_params_in_file(o.model, o.context);
    } else {
        ParamConfig p;
        if (!o.preset.empty())
            p = param_preset(o.preset);
        else if (!o.n_layers || !o.d_model)
            throw UsageError(
                "give --model FILE, --preset NAME, or at least --n-layers and --d-model");
        else
            p.name = "custom";
        if (flags && !o.preset.empty()) {
            p.name += " (modified)";
            p.notes.clear();
        }
        if (o.n_layers) p.n_layers = o.n_layers;
        if (o.d_model) p.d_model = o.d_model;
        if (o.n_heads) p.n_heads = o.n_heads;
        if (o.n_heads && !o.n_kv_heads) p.n_kv_heads = 0; // one key/value head per head
        if (o.n_kv_heads) p.n_kv_heads = o.n_kv_heads;
        if (!p.n_heads) p.n_heads = std::max<int64_t>(1, p.d_model / 64);
        if (o.d_head) p.d_head = o.d_head;
        if (!p.d_head || (o.d_model && !o.d_head) || (o.n_heads && !o.d_head))
            p.d_head = o.d_head ? o.d_head : p.d_model / p.n_heads;
        if (o.d_mlp) p.d_mlp = o.d_mlp;
        if (!p.d_mlp || (o.d_model && !o.d_mlp)) p.d_mlp = o.d_mlp ? o.d_mlp : 4 * p.d_model;
        if (o.vocab) p.vocab = o.vocab;
        if (!p.vocab) p.vocab = 50257;
        if (o.n_ctx) p.n_ctx = o.n_ctx;
        if (!p.n_ctx) p.n_ctx = 1024;
        if (o.no_bias) p.bias = false;
        if (o.untied) p.tied = false;
        if (p.n_heads * p.d_head != p.d_model)
            p.notes.push_back("attention width " + std::to_string(p.n_heads) + " x " +
                              std::to_string(p.d_head) + " = " +
                              std::to_string(p.n_heads * p.d_head) + " differs from d_model " +
                              std::to_string(p.d_model) + "; counted as given");
        c = count_params(p, o.context);
    }
    return o.json ? param_json(c) : param_report(c);
}

} // namespace qkv

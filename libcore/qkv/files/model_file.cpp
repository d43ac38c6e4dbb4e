#include "qkv/files/model_file.hpp"
#include "qkv/files/hf_import.hpp"
#include "qkv/model/schema.hpp"

#include "qkv/base/errors.hpp"
#include "qkv/base/rng.hpp"
#include "qkv/files/resources.hpp"
#include "qkv/files/safetensors.hpp"
#include "qkv/files/tokenizer_json.hpp"
#include "qkv/tensor/half.hpp"
#include "qkv/version.hpp"

#include <cmath>
#include <cstring>
#include <fstream>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <sstream>
#include <sys/stat.h>

namespace qkv {

// ---------------------------------------------------------------- reading

ModelFile ModelFile::open(const std::string& path) {
    if (path.empty()) throw UsageError("--model: a model file is required");
    return open(path, H5Input::start(path));
}

ModelFile ModelFile::open(const std::string& path, H5Input started) {
    ModelFile m;
    m.path_ = path;
    m.file_ = started.open();
    const H5File& f = m.file_;
    const std::string format = f.has_attr("/", "format") ? f.attr_str("/", "format") : "";
    if (format == "qkv-activations")
        throw FormatError(path + ": is an activation file, expected a model file (--model)");
    if (format != "qkv-model")
        throw FormatError(path + ": not a qkv model file (root attribute format != qkv-model)");
    if (f.attr_int("/", "version") != 1)
        throw FormatError(path + ": unsupported model file version");
    m.model_id_ = f.attr_str("/", "model_id");
    Config& c = m.config_;
    visit_fields(config_fields(), c, [&](const auto& field, auto& value) {
        if (!field.optional || f.has_attr("/config", field.name))
            f.get_attr("/config", field.name, value);
    });
    c.validate(path);
    return m;
}

Tensor ModelFile::read(const std::string& name, const Shape& shape) const {
    Tensor t = Tensor::uninitialized(shape);
    file_.read_f32_into(name, shape, t.f32());
    return t;
}

Tensor ModelFile::read_matrix(const std::string& name, const Shape& shape) const {
    return file_.read_floats_as_stored(name, shape, !plain_);
}

void ModelFile::check_layer(int64_t layer, const std::string& option) const {
    if (layer < 0 || layer >= config_.n_layers)
        throw ShapeError(option + ": layer " + std::to_string(layer) + " is out of range; " +
                         path_ + " has layers 0.." + std::to_string(config_.n_layers - 1));
}

EmbedWeights ModelFile::load_embed(Backend& be) const {
    const Config& c = config_;
    EmbedWeights w;
    w.W_E = be.to_device(read_matrix("/embed/W_E", {c.vocab_size, c.d_model}));
    if (c.positions == "learned")
        w.W_pos = be.to_device(read("/pos_embed/W_pos", {c.n_ctx, c.d_model}));
    return w;
}

LayerNormWeights ModelFile::load_ln(const std::string& group, Backend& be) const {
    LayerNormWeights w;
    w.w = be.to_device(read(group + "/w", {config_.d_model}));
    if (config_.norm == "layernorm") w.b = be.to_device(read(group + "/b", {config_.d_model}));
    return w;
}

AttentionWeights ModelFile::load_attention(int64_t layer, Backend& be) const {
    check_layer(layer, "--layer");
    const Config& c = config_;
    const std::string g = block_group(layer) + "/attn/";
    const int64_t H = c.n_heads, Hkv = c.kv_heads(), D = c.d_model, dh = c.d_head;
    const int64_t heads[3] = {H, Hkv, Hkv}, W3 = (H + 2 * Hkv) * dh;
    const char* const names[3] = {"Q", "K", "V"};
    Tensor W[3]; // W_Q [head, d_model, d_head]; W_K, W_V [kv_head, d_model, d_head]
    for (int x = 0; x < 3; ++x)
        W[x] = read_matrix(g + "W_" + names[x], {heads[x], D, dh});
    if (W[0].dtype() != W[1].dtype() || W[0].dtype() != W[2].dtype())
        for (Tensor& t : W)
            t = to_f32(t);
    AttentionWeights w;
    w.W_QKV = be.to_device(pack_qkv(W, H, Hkv, D, dh));
    if (c.has_qkv_bias()) {
        Tensor b_QKV = Tensor::zeros({W3}); // b_Q [head, d_head], b_K, b_V [kv_head, d_head]
        for (int x = 0, at = 0; x < 3; at += heads[x] * dh, ++x)
            file_.read_f32_into(g + "b_" + names[x], {heads[x], dh}, b_QKV.f32() + at);
        w.b_QKV = be.to_device(b_QKV);
    }
    w.W_O = be.to_device(read_matrix(g + "W_O", {H, dh, D}));
    if (c.biases) w.b_O = be.to_device(read(g + "b_O", {D}));
    return w;
}

MlpWeights ModelFile::load_mlp(int64_t layer, Backend& be) const {
    check_layer(layer, "--layer");
    const Config& c = config_;
    const std::string g = block_group(layer) + "/mlp/";
    const int64_t D = c.d_model, F = c.d_mlp;
    MlpWeights w;
    if (c.gated_mlp) { // W_gate and W_in side by side: [d_model, (gate|in) d_mlp]
        Tensor W_gate = read_matrix(g + "W_gate", {D, F}), W_in = read_matrix(g + "W_in", {D, F});
        if (W_gate.dtype() != W_in.dtype()) W_gate = to_f32(W_gate), W_in = to_f32(W_in);
        w.W_in = be.to_device(concat_columns(W_gate, W_in));
    } else {
        w.W_in = be.to_device(read_matrix(g + "W_in", {D, F}));
    }
    w.W_out = be.to_device(read_matrix(g + "W_out", {F, D}));
    if (c.biases) {
        w.b_in = be.to_device(read(g + "b_in", {F}));
        w.b_out = be.to_device(read(g + "b_out", {D}));
    }
    return w;
}

UnembedWeights ModelFile::load_unembed(Backend& be, const Tensor* W_E) const {
    const Config& c = config_;
    UnembedWeights w;
    w.ln_final = load_ln("/ln_final", be);
    w.tied = W_E && !plain_ && unembed_is_W_E_T(be.to_host(*W_E));
    w.W_U = w.tied ? *W_E : be.to_device(read_matrix("/unembed/W_U", {c.d_model, c.vocab_size}));
    if (c.arch == "gpt2") w.b_U = be.to_device(read("/unembed/b_U", {c.vocab_size}));
    return w;
}

// Whether the file's W_U [d_model, vocab] holds exactly W_E [vocab, d_model] transposed (as
// GPT-2 and model init tie them), compared 64 rows of W_U at a time (before the blocks are loaded):
// an untied W_U differs in its first block, and a W_U edited after it was tied is seen, however
// little it changed.
namespace {
// Whether rows [d0, d0 + n) of W_U [d_model, vocab] (rows, as stored) are columns d0.. of W_E
// [vocab, d_model], bit for bit.
template <typename Bits>
bool rows_are_columns(const void* rows, const void* W_E, int64_t d0, int64_t n, int64_t D,
                      int64_t V) {
    const auto* u = static_cast<const Bits*>(rows);
    const auto* e = static_cast<const Bits*>(W_E);
    for (int64_t v = 0; v < V; ++v) // W_U[d0 + r, v] == W_E[v, d0 + r]
        for (int64_t r = 0; r < n; ++r)
            if (u[r * V + v] != e[v * D + d0 + r]) return false;
    return true;
}
} // namespace

bool ModelFile::unembed_is_W_E_T(const Tensor& W_E) const {
    const int64_t D = config_.d_model, V = config_.vocab_size, kRows = 64;
    const DatasetInfo in = file_.info("/unembed/W_U");
    // Compared as stored: the bits of W_E's type (float32, or the 16-bit layout both share).
    const DType t = W_E.dtype();
    if (in.kind != ValueKind::Float || in.shape != Shape{D, V} || (is_half(t) && in.half != t))
        return false; // held apart (or refused when read)
    std::vector<char> rows(static_cast<size_t>(kRows * V) * dtype_size(t));
    for (int64_t d0 = 0; d0 < D; d0 += kRows) {
        const int64_t n = std::min(kRows, D - d0);
        file_.read_rows("/unembed/W_U", d0, n, V, t, rows.data());
        if (!(is_half(t) ? rows_are_columns<uint16_t>(rows.data(), W_E.data(), d0, n, D, V)
                         : rows_are_columns<uint32_t>(rows.data(), W_E.data(), d0, n, D, V)))
            return false;
    }
    return true;
}

BlockWeights ModelFile::load_block(int64_t layer, Backend& be) const {
    const std::string g = block_group(layer);
    return {load_ln(g + "/ln1", be), load_attention(layer, be), load_ln(g + "/ln2", be),
            load_mlp(layer, be)};
}

ModelWeights ModelFile::load_all(Backend& be) const {
    ModelWeights m{config_, load_embed(be), {}, {}};
    m.unembed = load_unembed(be, &m.embed.W_E);
    for (int64_t l = 0; l < config_.n_layers; ++l)
        m.blocks.push_back(load_block(l, be));
    return m;
}

TokenizerData ModelFile::load_tokenizer() const {
    return read_tokenizer_group(file_);
}

std::string ModelFile::name() const {
    const auto dash = model_id_.rfind('-');
    return dash == std::string::npos ? model_id_ : model_id_.substr(0, dash);
}

// ---------------------------------------------------------------- tokenizer data

TokenizerData tokenizer_data_from_text(const std::string& vocab_json, const std::string& merges,
                                       const std::string& where) {
    TokenizerData t;
    t.kind = "gpt2-bpe";
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(vocab_json);
    } catch (const nlohmann::json::exception&) {
        throw FormatError(where + "/vocab.json: not valid JSON");
    }
    if (!j.is_object()) throw FormatError(where + "/vocab.json: expected a JSON object");
    t.vocab.assign(j.size(), std::string());
    std::vector<bool> seen(j.size(), false);
    for (auto it = j.begin(); it != j.end(); ++it) {
        if (!it.value().is_number_integer())
            throw FormatError(where + "/vocab.json: id of '" + it.key() + "' is not an integer");
        const int64_t id = it.value().get<int64_t>();
        if (id < 0 || id >= static_cast<int64_t>(j.size()) || seen[id])
            throw FormatError(where + "/vocab.json: ids must be 0..N-1, each once (bad id " +
                              std::to_string(id) + ")");
        seen[id] = true;
        t.vocab[id] = it.key();
    }
    std::istringstream in(merges);
    std::string line;
    while (std::getline(in, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty() || line.rfind("#version", 0) == 0) continue;
        if (line.find(' ') == std::string::npos)
            throw FormatError(where + "/merges.txt: malformed merge '" + line + "'");
        t.merges.push_back(line);
    }
    return t;
}

TokenizerData gpt2_tokenizer_data() {
    return tokenizer_data_from_text(std::string(gpt2_vocab_json()), std::string(gpt2_merges_txt()),
                                    "<built-in gpt2>");
}

std::string read_whole_file(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw IoError(path + ": cannot open");
    std::ostringstream s;
    s << f.rdbuf();
    return s.str();
}

TokenizerData tokenizer_data_from_dir(const std::string& dir) {
    return tokenizer_data_from_text(read_whole_file(dir + "/vocab.json"),
                                    read_whole_file(dir + "/merges.txt"), dir);
}

// ---------------------------------------------------------------- writing

ModelWriter::ModelWriter(const std::string& path, const Config& c, const std::string& name,
                         const std::string& history_line)
    : out_(path), name_(name) {
    for (const ParamSpec& p : model_params(c))
        total_ += shape_numel(p.shape);
    H5File& f = out_.file();
    f.set_attr("/", "format", std::string("qkv-model"));
    f.set_attr("/", "version", int64_t(1));
    f.set_attr("/", "history", history_line);
    visit_fields(config_fields(), c, [&](const auto& field, const auto& value) {
        if (!field.optional || c.arch != "gpt2") f.set_attr("/config", field.name, value);
    });
}

void ModelWriter::put(const std::string& name, const Tensor& t_in) {
    // What is stored, and the float32 values it holds (which the model_id hashes).
    const Tensor stored = half_ == DType::F32     ? to_f32(t_in)
                          : t_in.dtype() == half_ ? t_in
                                                  : to_half(to_f32(t_in), half_);
    const Tensor t = to_f32(stored);
    for (char ch : name)
        hash_ = (hash_ ^ static_cast<unsigned char>(ch)) * 0x100000001b3ULL;
    const auto* p = reinterpret_cast<const unsigned char*>(t.f32());
    const size_t n = static_cast<size_t>(t.numel()) * 4;
    // FNV-1a over 8-byte words: fast enough for GPT-2 XL, and any change of a weight shows.
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        std::memcpy(&w, p + i, 8);
        hash_ = (hash_ ^ w) * 0x100000001b3ULL;
    }
    for (; i < n; ++i)
        hash_ = (hash_ ^ p[i]) * 0x100000001b3ULL;
    out_.file().write(name, stored);
    done_ += t_in.numel();
    if (progress_) progress_(done_, total_);
}

void write_tokenizer_group(H5File& f, const TokenizerData& tok) {
    f.write_strings("/tokenizer/vocab", {static_cast<int64_t>(tok.vocab.size())}, tok.vocab);
    f.write_strings("/tokenizer/merges", {static_cast<int64_t>(tok.merges.size())}, tok.merges);
    f.set_attr("/tokenizer", "kind", tok.kind);
    if (tok.kind == "gpt2-bpe") return; // GPT-2's pattern and <|endoftext|>: nothing more
    if (!tok.pattern.empty()) f.set_attr("/tokenizer", "pattern", tok.pattern);
    if (!tok.normalizer.empty()) f.set_attr("/tokenizer", "normalizer", tok.normalizer);
    if (tok.kind == "sentencepiece-bpe") {
        f.set_attr("/tokenizer", "unk", int64_t(tok.unk));
        f.set_attr("/tokenizer", "fuse_unk", int64_t(tok.fuse_unk));
    }
    f.set_attr("/tokenizer", "ignore_merges", int64_t(tok.ignore_merges));
    f.set_attr("/tokenizer", "bos", int64_t(tok.bos));
    f.set_attr("/tokenizer", "add_bos", int64_t(tok.add_bos));
    if (tok.eos >= 0) f.set_attr("/tokenizer", "eos", int64_t(tok.eos));
    Tensor added = Tensor::zeros({static_cast<int64_t>(tok.added.size())}, DType::I32);
    std::copy(tok.added.begin(), tok.added.end(), added.i32());
    f.write("/tokenizer/added", added);
}

TokenizerData read_tokenizer_group(const H5File& f) {
    if (!f.exists("/tokenizer/vocab") || !f.exists("/tokenizer/merges"))
        throw FormatError(f.name() + ": holds no tokenizer (/tokenizer/vocab and merges)");
    TokenizerData t;
    t.kind = f.attr_str("/tokenizer", "kind");
    t.vocab = f.read_strings("/tokenizer/vocab");
    t.merges = f.read_strings("/tokenizer/merges");
    if (t.kind == "gpt2-bpe") return t;
    if (f.has_attr("/tokenizer", "pattern")) t.pattern = f.attr_str("/tokenizer", "pattern");
    if (f.has_attr("/tokenizer", "unk"))
        t.unk = static_cast<int32_t>(f.attr_int("/tokenizer", "unk"));
    if (f.has_attr("/tokenizer", "fuse_unk"))
        t.fuse_unk = f.attr_int("/tokenizer", "fuse_unk") != 0;
    if (f.has_attr("/tokenizer", "normalizer"))
        t.normalizer = f.attr_str("/tokenizer", "normalizer");
    t.ignore_merges = f.attr_int("/tokenizer", "ignore_merges") != 0;
    t.bos = static_cast<int32_t>(f.attr_int("/tokenizer", "bos"));
    t.add_bos = f.attr_int("/tokenizer", "add_bos") != 0;
    if (f.has_attr("/tokenizer", "eos"))
        t.eos = static_cast<int32_t>(f.attr_int("/tokenizer", "eos"));
    if (f.exists("/tokenizer/added")) {
        const Tensor added = f.read_i32("/tokenizer/added", 1);
        t.added.assign(added.i32(), added.i32() + added.numel());
    }
    return t;
}

void ModelWriter::put_tokenizer(const TokenizerData& tok) {
    write_tokenizer_group(out_.file(), tok);
}

void write_tokenizer_file(const std::string& path, const TokenizerData& tok,
                          const std::string& history_line) {
    H5Output out(path);
    H5File& f = out.file();
    f.set_attr("/", "format", std::string("qkv-tokenizer"));
    f.set_attr("/", "version", int64_t(1));
    f.set_attr("/", "history", history_line);
    write_tokenizer_group(f, tok);
    out.commit();
}

TokenizerData load_tokenizer_data(const std::string& path) {
    // "gpt2": the tokenizer built into the library, unless a file or folder has that name here.
    struct stat st;
    if (path == "gpt2" && stat(path.c_str(), &st) != 0) return gpt2_tokenizer_data();
    // A folder: tokenizer.json with its tokenizer_config.json, or vocab.json and merges.txt.
    if (stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return folder_tokenizer(path, true);
    if (path.size() >= 5 && path.compare(path.size() - 5, 5, ".json") == 0)
        return tokenizer_data_from_json(read_whole_file(path), path);
    return read_tokenizer_group(H5File::open_read(path));
}

std::string ModelWriter::commit() {
    std::ostringstream id;
    id << name_ << '-' << std::hex << std::setw(16) << std::setfill('0') << hash_;
    out_.file().set_attr("/", "model_id", id.str());
    out_.commit();
    return id.str();
}

namespace {
Tensor filled(const Shape& s, float v) {
    Tensor t = Tensor::zeros(s);
    for (int64_t i = 0; i < t.numel(); ++i)
        t.f32()[i] = v;
    return t;
}
} // namespace

std::string model_init(const ModelInitOptions& opt) {
    if (!opt.arch.empty() && opt.arch != "gpt2" && opt.arch != "llama" && opt.arch != "gpt-neox")
        throw UsageError("--arch: gpt2, llama or gpt-neox, not '" + opt.arch + "'");
    const std::string preset = !opt.preset.empty()      ? opt.preset
                               : opt.arch == "llama"    ? "llama-tiny"
                               : opt.arch == "gpt-neox" ? "pythia-tiny"
                                                        : "tiny";
    Config c = preset_config(preset);
    if (!opt.arch.empty() && opt.arch != c.arch)
        throw UsageError("--arch " + opt.arch + ": preset " + preset + " is a " + c.arch +
                         " model");
    if (opt.n_layers > 0) c.n_layers = opt.n_layers;
    if (opt.d_model > 0) c.d_model = opt.d_model;
    if (opt.n_heads > 0) c.n_heads = opt.n_heads;
    if (opt.d_model > 0 || opt.n_heads > 0) {
        if (c.d_model % c.n_heads != 0)
            throw UsageError("--d-model " + std::to_string(c.d_model) +
                             " is not a multiple of --heads " + std::to_string(c.n_heads));
        c.d_head = c.d_model / c.n_heads;
        // Llama's rule: two thirds of 4 d_model (the gate doubles the matrices), rounded up.
        c.d_mlp = c.gated_mlp ? (8 * c.d_model / 3 + 15) / 16 * 16 : 4 * c.d_model;
        if (c.positions == "rotary") c.rotary_dim = c.d_head;
        if (c.n_kv_heads > 0 && c.n_heads % c.n_kv_heads != 0) c.n_kv_heads = c.n_heads;
    }
    if (opt.n_kv_heads > 0) {
        if (c.arch != "llama")
            throw UsageError("--kv-heads: a " + c.arch + " model has a key/value head per head");
        if (c.n_heads % opt.n_kv_heads != 0)
            throw UsageError("--heads " + std::to_string(c.n_heads) +
                             " is not a multiple of --kv-heads " + std::to_string(opt.n_kv_heads));
        c.n_kv_heads = opt.n_kv_heads;
    }
    if (opt.d_mlp > 0) c.d_mlp = opt.d_mlp;
    if (opt.n_ctx > 0) c.n_ctx = opt.n_ctx;
    TokenizerData tok =
        opt.vocab_dir.empty() ? gpt2_tokenizer_data() : load_tokenizer_data(opt.vocab_dir);
    c.vocab_size = static_cast<int64_t>(tok.vocab.size()); // the tokenizer decides
    c.validate("model init");
    Rng rng(opt.seed);
    auto normal = [&](const Shape& s, double sd) {
        Tensor t = Tensor::zeros(s);
        for (int64_t i = 0; i < t.numel(); ++i)
            t.f32()[i] = static_cast<float>(rng.normal() * sd);
        return t;
    };
    const double init_std = 0.02, proj_std = 0.02 / std::sqrt(2.0 * c.n_layers);
    ModelWriter w(opt.output, c, opt.name.empty() ? preset : opt.name, opt.history_line);
    w.on_progress(opt.progress);
    Tensor W_E;
    for (const ParamSpec& p : model_params(c)) {
        Tensor t;
        switch (p.init) {
        case Init::Normal:
            t = normal(p.shape, init_std);
            break;
        case Init::NormalResidual:
            t = normal(p.shape, proj_std);
            break;
        case Init::Ones:
            t = filled(p.shape, 1.0f);
            break;
        case Init::Zeros:
            t = filled(p.shape, 0.0f);
            break;
        case Init::TransposeOfW_E:
            t = transpose2d(W_E);
            break;
        }
        if (p.name == "/embed/W_E") W_E = t;
        w.put(p.name, t);
    }
    w.put_tokenizer(tok);
    return w.commit();
}

// ---------------------------------------------------------------- export

std::string model_export(const ModelExportOptions& opt) {
    if (opt.dtype != "f16" && opt.dtype != "bf16" && opt.dtype != "f32")
        throw UsageError("--dtype: f16, bf16 or f32, not '" + opt.dtype + "'");
    if (opt.input.empty() || is_stdio(opt.input))
        throw UsageError("model export: give the model file");
    check_not_same_file(opt.input, opt.output);
    ModelFile m = ModelFile::open(opt.input);
    const H5File& in = m.h5();
    const std::string old_history = in.has_attr("/", "history") ? in.attr_str("/", "history") : "";
    ModelWriter w(opt.output, m.config(), m.name(),
                  old_history.empty() ? opt.history_line : old_history + "\n" + opt.history_line);
    if (opt.dtype != "f32") w.store_half(opt.dtype == "f16" ? DType::F16 : DType::BF16);
    w.on_progress(opt.progress);
    for (const std::string& d : in.datasets("/")) {
        if (d.rfind("/tokenizer/", 0) == 0 || d.rfind("/train/", 0) == 0) continue;
        w.put(d, in.read_f32(d));
    }
    w.put_tokenizer(m.load_tokenizer());
    if (in.exists("/train")) { // the log and the figures, not the optimizer state
        H5File& f = w.file();
        f.make_group("/train");
        f.copy_attrs(in, "/train", "/train");
        if (in.exists("/train/log")) f.copy_from(in, "/train/log", "/train/log");
    }
    return w.commit();
}

// ---------------------------------------------------------------- info

namespace {
// How a dataset's values are stored, as model info names it: f32, f16, bf16, i32, string...
std::string stored_type(const DatasetInfo& in) {
    const std::string bits = std::to_string(8 * in.type_size);
    switch (in.kind) {
    case ValueKind::Float:
        return in.half == DType::BF16 ? "bf16" : "f" + bits;
    case ValueKind::Integer:
        return "i" + bits;
    case ValueKind::String:
        return "string";
    default:
        return "other";
    }
}
} // namespace

std::string model_info(const std::string& path, bool json) {
    ModelFile m = ModelFile::open(path);
    const Config& c = m.config();
    const H5File& f = m.h5();
    const std::string tok_kind =
        f.has_attr("/tokenizer", "kind") ? f.attr_str("/tokenizer", "kind") : "none";
    int64_t total = 0;
    nlohmann::ordered_json tensors = nlohmann::ordered_json::array();
    std::ostringstream table;
    for (const auto& d : f.datasets("/")) {
        if (d.rfind("/tokenizer/", 0) == 0) continue;
        const DatasetInfo in = f.info(d);
        const std::string type = stored_type(in);
        total += shape_numel(in.shape);
        tensors.push_back({{"name", d}, {"shape", in.shape}, {"dtype", type}});
        table << "  " << std::left << std::setw(28) << d << ' ' << std::setw(18)
              << shape_str(in.shape) << ' ' << type << '\n';
    }
    if (json) {
        nlohmann::ordered_json j;
        j["file"] = path;
        j["model_id"] = m.model_id();
        nlohmann::ordered_json& config = j["config"];
        visit_fields(config_fields(), c, [&](const auto& field, const auto& value) {
            if (!field.optional || c.arch != "gpt2") config[field.name] = value;
        });
        j["tokenizer"] = tok_kind;
        j["stored_values"] = total;
        j["tensors"] = tensors;
        return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    }
    std::ostringstream o;
    o << "file:       " << path << "\nmodel_id:   " << m.model_id() << '\n';
    visit_fields(config_fields(), c, [&](const auto& field, const auto& value) {
        if (field.optional && c.arch == "gpt2") return;
        o << std::left << std::setw(c.arch == "gpt2" ? 12 : 23) << std::string(field.name) + ":"
          << value << '\n';
    });
    o << "tokenizer:  " << tok_kind << "\nstored values: " << total
      << " (W_U stored apart from W_E)\ntensors:\n"
      << table.str();
    return o.str();
}

} // namespace qkv

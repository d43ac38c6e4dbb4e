#include "commands/pipeline.hpp"
#include "qkv/model/schema.hpp"

#include "commands/inspect.hpp"
#include "commands/store_tool.hpp"
#include "commands/sweep_tool.hpp"
#include "qkv/files/activations.hpp"
#include "qkv/files/model_file.hpp"
#include "qkv/model/attention.hpp"
#include "qkv/model/embed.hpp"
#include "qkv/model/mlp.hpp"
#include "qkv/model/transformer.hpp"
#include "qkv/tensor/backend.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>

namespace qkv {

namespace {

bool wants(const std::vector<std::string>& list, const std::string& name) {
    return std::find(list.begin(), list.end(), name) != list.end();
}

// What every stage tool does first: read the model and the input, check they belong together.
struct StageInput {
    ModelFile model;
    Activations in;
    std::unique_ptr<Backend> be;
};

// The files are checked in child processes (h5_probe.hpp) while the tool works: the model's
// check runs while the input arrives, the input's while `meanwhile` loads the stage's weights.
StageInput open_stage(const CommonOptions& c, const std::string& input, bool need_resid,
                      const std::function<void(StageInput&)>& meanwhile = {}) {
    require_input(input);
    check_not_same_file(input, c.output);
    if (c.model.empty()) throw UsageError("--model: a model file is required");
    H5Input model = H5Input::start(c.model);
    H5Input in = H5Input::start(input);
    StageInput s;
    s.model = ModelFile::open(c.model, std::move(model));
    s.be = make_backend(parse_device(c.device), c.threads);
    if (meanwhile) meanwhile(s);
    s.in = read_activations(in.open(), need_resid, s.model.config().d_model);
    check_model(s.in, s.model.model_id(), c.model);
    if (s.in.n_pos() > s.model.config().n_ctx)
        throw ShapeError(s.in.file.name() + ": sequence of " + std::to_string(s.in.n_pos()) +
                         " tokens is longer than the model's context n_ctx = " +
                         std::to_string(s.model.config().n_ctx));
    return s;
}

// A saved tensor, where positions is not empty only at those positions (its axis pos_axis).
void write_saved(H5File& f, Backend& be, const std::string& name, const Tensor& t,
                 const std::vector<int64_t>& positions = {}, int pos_axis = 1) {
    if (t.empty()) return;
    const Tensor host = be.to_host(t);
    if (positions.empty()) return f.write(name, host);
    Shape shape = host.shape();
    int64_t outer = 1, inner = 1;
    for (int i = 0; i < pos_axis; ++i)
        outer *= shape[i];
    for (int i = pos_axis + 1; i < host.rank(); ++i)
        inner *= shape[i];
    const int64_t n = shape[pos_axis], kept = static_cast<int64_t>(positions.size());
    shape[pos_axis] = kept;
    Tensor out = Tensor::zeros(shape);
    for (int64_t o = 0; o < outer; ++o)
        for (int64_t i = 0; i < kept; ++i)
            std::memcpy(out.f32() + (o * kept + i) * inner,
                        host.f32() + (o * n + positions[i]) * inner, inner * sizeof(float));
    f.write(name, out);
}

// The saves of one attention (group "/attn", or "/blocks/L/attn" for block --save), at the
// chosen positions (empty: all; the pattern's and scores' query positions).
void save_attention(H5File& f, Backend& be, const AttentionResult& r, const std::string& g,
                    const std::vector<int64_t>& positions = {}) {
    write_saved(f, be, g + "/scores", r.scores, positions, 2);
    write_saved(f, be, g + "/pattern", r.pattern, positions, 2);
    write_saved(f, be, g + "/q", r.q, positions);
    write_saved(f, be, g + "/k", r.k, positions);
    write_saved(f, be, g + "/v", r.v, positions);
    write_saved(f, be, g + "/z", r.z, positions);
    write_saved(f, be, g + "/head_out", r.head_out, positions);
    write_saved(f, be, g + "/out", r.out, positions);
}

void save_mlp(H5File& f, Backend& be, const MlpResult& r, const std::string& g,
              const std::vector<int64_t>& positions = {}) {
    write_saved(f, be, g + "/pre", r.pre, positions);
    write_saved(f, be, g + "/pre_linear", r.pre_linear, positions);
    write_saved(f, be, g + "/post", r.post, positions);
    write_saved(f, be, g + "/out", r.out, positions);
}

// A copy of a host tensor.
Tensor host_copy(const Tensor& t) {
    Tensor c = Tensor::zeros(t.shape());
    std::memcpy(c.f32(), t.f32(), t.numel() * sizeof(float));
    return c;
}

// A stage's group, replacing carried-forward saves of an earlier layer, with its layer.
void replace_group(H5File& f, const std::string& g, int64_t layer) {
    if (f.exists(g)) f.remove(g);
    f.make_group(g);
    f.set_attr(g, "layer", layer);
}

// A whole decimal number, F of --scale-head H=F.
float parse_factor(const std::string& text, const std::string& option) {
    try {
        size_t used = 0;
        const float f = std::stof(text, &used);
        if (used == text.size()) return f;
    } catch (const std::exception&) {
    }
    throw UsageError(option + ": '" + text + "' is not a number");
}

// A later reader must know this stream is not a plain forward pass: what changed it, after what
// earlier tools recorded.
void record_modified(H5File& out, const Activations& in, const std::string& what) {
    const std::string before =
        in.file.has_attr("/", "modified") ? in.file.attr_str("/", "modified") + "; " : "";
    out.set_attr("/", "modified", before + what);
}

// "L.H" items, comma-separated: heads of layers in [range.start, range.stop).
std::vector<std::pair<int64_t, int64_t>> parse_layer_heads(const std::string& text,
                                                           const LayerRange& range, int64_t H,
                                                           const std::string& option) {
    std::vector<std::pair<int64_t, int64_t>> out;
    size_t at = 0;
    while (!text.empty() && at <= text.size()) {
        const size_t comma = std::min(text.find(',', at), text.size());
        const std::string item = text.substr(at, comma - at);
        const size_t dot = item.find('.');
        int64_t l = 0, h = 0;
        if (dot == std::string::npos || !parse_int64(item.substr(0, dot), l) ||
            !parse_int64(item.substr(dot + 1), h))
            throw UsageError(option + ": '" + item + "' is not LAYER.HEAD (e.g. 0.3)");
        if (l < range.start || l >= range.stop)
            throw UsageError(option + ": layer " + std::to_string(l) +
                             " is not among the layers block runs (" + std::to_string(range.start) +
                             ":" + std::to_string(range.stop) + ")");
        if (h < 0 || h >= H)
            throw UsageError(option + ": head " + std::to_string(h) + " is out of range (0.." +
                             std::to_string(H - 1) + ")");
        out.push_back({l, h});
        at = comma + 1;
    }
    return out;
}

void require_gated(const Config& cfg, const std::vector<std::string>& save,
                   const std::string& model) {
    if (wants(save, "pre_linear") && !cfg.gated_mlp)
        throw UsageError("--save pre_linear: " + model + " has no gated MLP (" + cfg.arch + ")");
}

AttentionSaves attention_saves(const std::vector<std::string>& save) {
    AttentionSaves s;
    s.scores = wants(save, "scores");
    s.pattern = wants(save, "pattern");
    s.q = wants(save, "q");
    s.k = wants(save, "k");
    s.v = wants(save, "v");
    s.z = wants(save, "z");
    s.head_out = wants(save, "head_out");
    s.out = wants(save, "out");
    return s;
}

} // namespace

const std::vector<std::string>& attend_save_names() {
    static const std::vector<std::string> names = {"scores", "pattern", "q",        "k",
                                                   "v",      "z",       "head_out", "out"};
    return names;
}

void run_embed(const EmbedOptions& opt) {
    EmbedWeights w;
    StageInput s = open_stage(opt.common, opt.input, false,
                              [&](StageInput& s) { w = s.model.load_embed(*s.be); });
    check_order(s.in, Stage::Embed, -1, opt.common.force);
    const bool parts = wants(opt.save, "parts");
    EmbedResult r = embed_forward(*s.be, s.model.config(), w, s.in.tokens, 0, parts,
                                  s.in.file.name(), &s.in.pad);
    ActivationWriter out(opt.common.output, s.in);
    if (parts) {
        if (out.file().exists("/embed")) out.file().remove("/embed");
        out.file().write("/embed/token", s.be->to_host(r.token));
        if (!r.pos.empty()) out.file().write("/embed/pos", s.be->to_host(r.pos));
    }
    Tensor resid = s.be->to_host(r.resid);
    out.finish(Stage::Embed, -1, &resid, history_line(opt.common, s.be->describe()));
    out.commit();
}

void run_attend(const AttendOptions& opt) {
    LayerNormWeights ln1;
    AttentionWeights w;
    StageInput s = open_stage(opt.common, opt.input, true, [&](StageInput& s) {
        s.model.check_layer(opt.layer, "--layer");
        ln1 = s.model.load_ln(block_group(opt.layer) + "/ln1", *s.be);
        w = s.model.load_attention(opt.layer, *s.be);
    });
    const Config& cfg = s.model.config();
    check_order(s.in, Stage::Attn, opt.layer, opt.common.force);
    Tensor context;
    if (!opt.context.empty()) {
        Activations ctx = read_activations(opt.context, true, cfg.d_model);
        check_model(ctx, s.model.model_id(), opt.common.model);
        if (s.in.pad.padded() || ctx.pad.padded())
            throw UsageError("--context: cross-attention takes no padded batch (" +
                             (ctx.pad.padded() ? ctx.file.name() : s.in.file.name()) +
                             " has /mask)");
        context = s.be->to_device(ctx.resid);
    }
    const bool causal = opt.context.empty() ? !opt.no_mask : opt.mask;
    // Interventions on heads, and the words that record them in the output.
    const int64_t H = cfg.n_heads;
    AttentionEdit edit;
    std::vector<std::string> done;
    auto heads_text = [](const std::vector<int64_t>& hs) {
        std::string t;
        for (auto h : hs)
            t += (t.empty() ? "" : ",") + std::to_string(h);
        return t;
    };
    if (!opt.ablate_heads.empty() || !opt.only_heads.empty() || !opt.scale_heads.empty())
        edit.head_scale.assign(H, 1.0f);
    if (!opt.only_heads.empty()) {
        auto keep = parse_head_list(opt.only_heads, H, "--only-heads");
        std::fill(edit.head_scale.begin(), edit.head_scale.end(), 0.0f);
        for (auto h : keep)
            edit.head_scale[h] = 1.0f;
        done.push_back("only heads " + heads_text(keep));
    }
    if (!opt.ablate_heads.empty()) {
        auto hs = parse_head_list(opt.ablate_heads, H, "--ablate-heads");
        for (auto h : hs)
            edit.head_scale[h] = 0.0f;
        done.push_back("ablated heads " + heads_text(hs));
    }
    for (const auto& sh : opt.scale_heads) {
        const auto eq = sh.find('=');
        if (eq == std::string::npos)
            throw UsageError("--scale-head: expected H=F, got '" + sh + "'");
        const int64_t h = parse_head_list(sh.substr(0, eq), H, "--scale-head")[0];
        edit.head_scale[h] *= parse_factor(sh.substr(eq + 1), "--scale-head");
        done.push_back("scaled head " + std::to_string(h) + " by " + sh.substr(eq + 1));
    }
    Tensor patch;
    if (!opt.patch_from.empty() && opt.patch_heads.empty() && opt.sites.patch.empty())
        throw UsageError("--patch-from: give --patch SITE or --patch-heads H with it");
    if (!opt.patch_heads.empty()) {
        if (opt.patch_from.empty()) throw UsageError("--patch-heads: give --patch-from FILE");
        Activations src = read_activations(opt.patch_from, false);
        check_model(src, s.model.model_id(), opt.common.model);
        const std::string where = src.file.name() + ":/attn/head_out";
        if (!src.file.exists("/attn/head_out"))
            throw FormatError(where + ": not found (save it with attend --save head_out)");
        if (src.file.attr_int("/attn", "layer") != opt.layer)
            throw ShapeError(where + ": is from layer " +
                             std::to_string(src.file.attr_int("/attn", "layer")) + ", not " +
                             std::to_string(opt.layer));
        Tensor ho = src.file.read_f32("/attn/head_out", 4);
        const Shape want = {s.in.batch(), s.in.n_pos(), H, cfg.d_model};
        if (ho.shape() != want)
            throw ShapeError(where + ": shape " + shape_str(ho.shape()) + ", expected " +
                             shape_str(want));
        patch = s.be->to_device(ho);
        auto hs = parse_head_list(opt.patch_heads, H, "--patch-heads");
        edit.patched.assign(H, false);
        for (auto h : hs)
            edit.patched[h] = true;
        edit.patch = &patch;
        done.push_back("patched heads " + heads_text(hs) + " from " + opt.patch_from);
    }
    // Edits at attention's sites; the stream entering it (resid_pre) is edited here.
    Interventions sites =
        read_interventions(opt.sites, opt.patch_from, SiteOwner::Attend, opt.layer, opt.layer + 1,
                           s.model, opt.common.model, &s.in, *s.be);
    if (!sites.empty() && !opt.context.empty())
        throw UsageError("--patch, --ablate and --add: not with cross-attention (--context)");
    edit.sites = std::move(sites.layers[opt.layer]);
    done.insert(done.end(), sites.done.begin(), sites.done.end());
    Tensor resid = s.be->to_device(s.in.resid);
    apply_stream_edits(*s.be, edit.sites, Site::ResidPre, resid);
    // A parallel-residual layer's MLP reads the stream the layer began with: it travels along
    // (a copy: on the CPU the device stream is the input's own memory, which attention changes).
    Tensor resid_pre;
    if (cfg.parallel_residual) resid_pre = host_copy(s.be->to_host(resid));
    AttentionResult r;
    attention_forward(*s.be, cfg, ln1, w, resid, context.empty() ? nullptr : &context, causal,
                      attention_saves(opt.save), r, nullptr, done.empty() ? nullptr : &edit,
                      &s.in.pad);
    ActivationWriter out(opt.common.output, s.in);
    if (!opt.save.empty()) {
        replace_group(out.file(), "/attn", opt.layer);
        save_attention(out.file(), *s.be, r, "/attn");
    }
    if (out.file().exists("/resid_pre")) out.file().remove("/resid_pre");
    if (!resid_pre.empty()) out.file().write("/resid_pre", resid_pre);
    if (!opt.context.empty()) done.insert(done.begin(), "cross-attention from " + opt.context);
    if (!causal && opt.context.empty()) done.insert(done.begin(), "no causal mask");
    if (!done.empty()) {
        std::string what;
        for (auto& d : done)
            what += (what.empty() ? "" : ", ") + d;
        record_modified(out.file(), s.in, "layer " + std::to_string(opt.layer) + ": " + what);
    }
    Tensor host = s.be->to_host(resid);
    out.finish(Stage::Attn, opt.layer, &host, history_line(opt.common, s.be->describe()));
    out.commit();
}

void run_mlp(const MlpOptions& opt) {
    LayerNormWeights ln2;
    MlpWeights w;
    StageInput s = open_stage(opt.common, opt.input, true, [&](StageInput& s) {
        s.model.check_layer(opt.layer, "--layer");
        ln2 = s.model.load_ln(block_group(opt.layer) + "/ln2", *s.be);
        w = s.model.load_mlp(opt.layer, *s.be);
    });
    check_order(s.in, Stage::Mlp, opt.layer, opt.common.force);
    Tensor resid = s.be->to_device(s.in.resid);
    Tensor resid_pre; // parallel residual: the stream before this layer's attention
    if (s.model.config().parallel_residual) {
        const std::string where = s.in.file.name() + ":/resid_pre";
        if (!s.in.file.exists("/resid_pre"))
            throw FormatError(where + ": not found (a parallel-residual model's mlp reads the "
                                      "stream attend began with; run attend first)");
        resid_pre = s.in.file.read_f32("/resid_pre", 3);
        if (resid_pre.shape() != s.in.resid.shape())
            throw ShapeError(where + ": shape " + shape_str(resid_pre.shape()) + ", expected " +
                             shape_str(s.in.resid.shape()));
        resid_pre = s.be->to_device(resid_pre);
    }
    require_gated(s.model.config(), opt.save, opt.common.model);
    MlpSaves saves{wants(opt.save, "pre"), wants(opt.save, "pre_linear"), wants(opt.save, "post"),
                   wants(opt.save, "out")};
    // Edits at the MLP's sites; the stream entering it (resid_mid) is edited here.
    if (!opt.patch_from.empty() && opt.sites.patch.empty())
        throw UsageError("--patch-from: give --patch SITE with it");
    Interventions sites =
        read_interventions(opt.sites, opt.patch_from, SiteOwner::Mlp, opt.layer, opt.layer + 1,
                           s.model, opt.common.model, &s.in, *s.be);
    const SiteEdits& edits = sites.layers[opt.layer];
    apply_stream_edits(*s.be, edits, Site::ResidMid, resid);
    MlpResult r;
    mlp_forward(*s.be, s.model.config(), ln2, w, resid, saves, r,
                resid_pre.empty() ? nullptr : &resid_pre, edits.empty() ? nullptr : &edits);
    ActivationWriter out(opt.common.output, s.in);
    if (out.file().exists("/resid_pre")) out.file().remove("/resid_pre");
    if (!opt.save.empty()) {
        replace_group(out.file(), "/mlp", opt.layer);
        save_mlp(out.file(), *s.be, r, "/mlp");
    }
    if (!sites.done.empty()) {
        std::string what;
        for (auto& d : sites.done)
            what += (what.empty() ? "" : ", ") + d;
        record_modified(out.file(), s.in, what);
    }
    Tensor host = s.be->to_host(resid);
    out.finish(Stage::Mlp, opt.layer, &host, history_line(opt.common, s.be->describe()));
    out.commit();
}

const std::vector<std::string>& block_save_names() {
    static const std::vector<std::string> names = [] {
        std::vector<std::string> n = {"resid_pre", "resid_mid"};
        for (const std::string& a : attend_save_names())
            n.push_back(a);
        for (const char* m : {"pre", "pre_linear", "post", "mlp_out"})
            n.push_back(m);
        return n;
    }();
    return names;
}

BlockSaves block_saves(const Config& cfg, const std::vector<std::string>& save,
                       const std::string& model_path) {
    require_gated(cfg, save, model_path);
    BlockSaves saves;
    saves.attn = attention_saves(save);
    saves.mlp = {wants(save, "pre"), wants(save, "pre_linear"), wants(save, "post"),
                 wants(save, "mlp_out")};
    saves.resid_pre = wants(save, "resid_pre");
    saves.resid_mid = wants(save, "resid_mid");
    return saves;
}

void run_block(const BlockOptions& opt) {
    const bool store = !opt.store.corpus.empty() || !opt.store.append.empty();
    if (opt.stats && (store || !opt.sweep.empty()))
        throw UsageError("--stats times a plain run, not --sweep or --append");
    if (store) return run_block_store(opt);
    StageInput s = open_stage(opt.common, opt.input, true);
    const Config& cfg = s.model.config();
    // An empty range (6: of 6 layers, 0:0) passes the stream through.
    const LayerRange range = parse_layer_range(opt.layers, cfg.n_layers, "--layers", true);
    check_order(s.in, Stage::Attn, range.start, opt.common.force);
    if (!opt.sweep.empty())
        return run_block_sweep(opt, s.model, s.in, *s.be, range.start, range.stop);
    const BlockSaves saves = block_saves(cfg, opt.save, opt.common.model);
    // Interventions on heads of the layers it runs, named L.H; patches come from a capture
    // (block --save head_out) of another run.
    const int64_t H = cfg.n_heads;
    std::vector<AttentionEdit> edits(cfg.n_layers);
    std::vector<Tensor> patches(cfg.n_layers);
    std::vector<std::string> done;
    auto edit_of = [&](int64_t l) -> AttentionEdit& {
        if (edits[l].head_scale.empty()) edits[l].head_scale.assign(H, 1.0f);
        return edits[l];
    };
    auto label = [](const std::pair<int64_t, int64_t>& lh) {
        return std::to_string(lh.first) + "." + std::to_string(lh.second);
    };
    for (const auto& lh : parse_layer_heads(opt.ablate_heads, range, H, "--ablate-heads")) {
        edit_of(lh.first).head_scale[lh.second] = 0.0f;
        done.push_back("ablated head " + label(lh));
    }
    for (const std::string& sh : opt.scale_heads) {
        const auto eq = sh.find('=');
        if (eq == std::string::npos)
            throw UsageError("--scale-head: expected L.H=F, got '" + sh + "'");
        const auto lh = parse_layer_heads(sh.substr(0, eq), range, H, "--scale-head")[0];
        edit_of(lh.first).head_scale[lh.second] *= parse_factor(sh.substr(eq + 1), "--scale-head");
        done.push_back("scaled head " + label(lh) + " by " + sh.substr(eq + 1));
    }
    if (!opt.patch_from.empty() && opt.patch_heads.empty() && opt.sites.patch.empty())
        throw UsageError("--patch-from: give --patch L.SITE or --patch-heads L.H with it");
    if (!opt.patch_heads.empty()) {
        if (opt.patch_from.empty()) throw UsageError("--patch-heads: give --patch-from FILE");
        Activations src = read_activations(opt.patch_from, false);
        check_model(src, s.model.model_id(), opt.common.model);
        for (const auto& lh : parse_layer_heads(opt.patch_heads, range, H, "--patch-heads")) {
            const int64_t l = lh.first;
            if (patches[l].empty()) {
                const std::string name = "/blocks/" + std::to_string(l) + "/attn/head_out";
                const std::string where = src.file.name() + ":" + name;
                if (!src.file.exists(name))
                    throw FormatError(where +
                                      ": not found (capture it with block --save head_out)");
                Tensor ho = src.file.read_f32(name, 4);
                const Shape want = {s.in.batch(), s.in.n_pos(), H, cfg.d_model};
                if (ho.shape() != want)
                    throw ShapeError(where + ": shape " + shape_str(ho.shape()) + ", expected " +
                                     shape_str(want));
                patches[l] = s.be->to_device(ho);
                edit_of(l).patched.assign(H, false);
                edits[l].patch = &patches[l];
            }
            edits[l].patched[lh.second] = true;
            done.push_back("patched head " + label(lh) + " from " + opt.patch_from);
        }
    }
    // Edits at any site of the layers run.
    Interventions sites =
        read_interventions(opt.sites, opt.patch_from, SiteOwner::Block, range.start, range.stop,
                           s.model, opt.common.model, &s.in, *s.be);
    for (auto& [l, e] : sites.layers)
        edits[l].sites = std::move(e);
    done.insert(done.end(), sites.done.begin(), sites.done.end());
    // The positions a capture keeps (empty: all).
    if (!opt.positions.empty() && opt.save.empty())
        throw UsageError("--positions chooses what --save keeps: give --save too");
    const std::vector<int64_t> positions =
        opt.positions.empty() ? std::vector<int64_t>()
                              : parse_index_list(opt.positions, s.in.n_pos(), "--positions");
    ActivationWriter out(opt.common.output, s.in);
    H5File& f = out.file();
    if (!opt.save.empty() && f.exists("/blocks")) f.remove("/blocks"); // an earlier capture
    if (!positions.empty()) {
        Tensor kept = Tensor::zeros({static_cast<int64_t>(positions.size())}, DType::I32);
        for (size_t i = 0; i < positions.size(); ++i)
            kept.i32()[i] = static_cast<int32_t>(positions[i]);
        f.write("/blocks/positions", kept); // [n]: which positions the saves hold
    }
    using Clock = std::chrono::steady_clock;
    const auto seconds = [](Clock::duration d) { return std::chrono::duration<double>(d).count(); };
    double load_s = 0, forward_s = 0; // for --stats
    Tensor resid = s.be->to_device(s.in.resid);
    for (int64_t l = range.start; l < range.stop; ++l) { // one layer's weights at a time
        BlockResult r;
        const auto t0 = Clock::now();
        const BlockWeights w = s.model.load_block(l, *s.be);
        const auto t1 = Clock::now();
        block_forward(*s.be, cfg, w, resid, nullptr, saves, &r,
                      edits[l].head_scale.empty() && edits[l].sites.empty() ? nullptr : &edits[l],
                      &s.in.pad);
        load_s += seconds(t1 - t0);
        forward_s += seconds(Clock::now() - t1);
        if (opt.save.empty()) continue;
        // What attend and mlp of layer l would save, under /blocks/l.
        const std::string g = "/blocks/" + std::to_string(l);
        write_saved(f, *s.be, g + "/resid_pre", r.resid_pre, positions);
        write_saved(f, *s.be, g + "/resid_mid", r.resid_mid, positions);
        save_attention(f, *s.be, r.attn, g + "/attn", positions);
        save_mlp(f, *s.be, r.mlp, g + "/mlp", positions);
    }
    if (!done.empty()) {
        std::string what;
        for (auto& d : done)
            what += (what.empty() ? "" : ", ") + d;
        record_modified(f, s.in, "block: " + what);
    }
    const auto t2 = Clock::now();
    Tensor host = s.be->to_host(resid); // on a GPU, waits for the last layer's work
    forward_s += seconds(Clock::now() - t2);
    if (opt.stats) {
        const int64_t B = s.in.batch(), T = s.in.n_pos();
        std::fprintf(stderr,
                     "forward: %lld x %lld tokens, layers %lld:%lld in %.3f s (%.1f tokens/s)\n"
                     "load: %.3f s\npeak memory: %.1f MiB\n",
                     static_cast<long long>(B), static_cast<long long>(T),
                     static_cast<long long>(range.start), static_cast<long long>(range.stop),
                     forward_s, B * T / std::max(forward_s, 1e-9), load_s, peak_memory_mib());
    }
    const bool empty = range.start == range.stop;
    out.finish(empty ? s.in.stage : Stage::Mlp, empty ? s.in.layer : range.stop - 1, &host,
               history_line(opt.common, s.be->describe()));
    out.commit();
}

} // namespace qkv

#include "commands/interventions.hpp"

#include "qkv/base/errors.hpp"

#include <cstdio>
#include <cstring>

namespace qkv {

void add_intervention_options(CLI::App& app, InterventionOptions& opt, bool per_layer, bool patch) {
    const std::string site = per_layer ? "L.SITE" : "SITE";
    if (patch)
        app.add_option("--patch", opt.patch,
                       "Replace " + site +
                           "[@POSITIONS][#UNITS] with its values in --patch-from's run "
                           "(repeatable)")
            ->allow_extra_args(false);
    app.add_option("--ablate", opt.ablate,
                   site + "[@POSITIONS][#UNITS]=zero|mean:FILE|resample:FILE: zeros, the mean "
                          "over FILE's batch and positions, or FILE's values (repeatable)")
        ->allow_extra_args(false);
    app.add_option("--add", opt.add,
                   site + "[@POSITIONS][#UNITS]=FILE[:/DATASET]: add a vector (default dataset "
                          "/steer/vector), times --scale (repeatable)")
        ->allow_extra_args(false);
    app.add_option("--scale", opt.scale, "The factor of --add's vectors (default 1)");
}

namespace {

struct Spec {
    int64_t layer = -1;
    Site site = Site::ResidPre;
    std::string positions, units, text;
};

bool owns(SiteOwner owner, Site site) {
    const bool attention = site <= Site::AttnOut;
    return owner == SiteOwner::Block || (owner == SiteOwner::Attend) == attention;
}

// [L.]SITE[@POSITIONS][#UNITS]
Spec parse_spec(const std::string& text, const std::string& option, SiteOwner owner, int64_t first,
                int64_t stop) {
    Spec s;
    s.text = text;
    std::string rest = text;
    if (const auto hash = rest.find('#'); hash != std::string::npos) {
        s.units = rest.substr(hash + 1);
        rest.resize(hash);
    }
    if (const auto at = rest.find('@'); at != std::string::npos) {
        s.positions = rest.substr(at + 1);
        rest.resize(at);
    }
    if (owner == SiteOwner::Block) {
        const auto dot = rest.find('.');
        if (dot == std::string::npos || !parse_int64(rest.substr(0, dot), s.layer))
            throw UsageError(option + " '" + text + "': name the layer, L.SITE (e.g. 3.z)");
        rest = rest.substr(dot + 1);
        if (s.layer < first || s.layer >= stop)
            throw UsageError(option + " '" + text + "': layer " + std::to_string(s.layer) +
                             " is not among the layers run (" + std::to_string(first) + ":" +
                             std::to_string(stop) + ")");
    } else {
        s.layer = first;
    }
    if (!parse_site(rest, s.site))
        throw UsageError(option + " '" + text + "': no site '" + rest +
                         "' (resid_pre, q, k, v, pattern, z, head_out, attn_out, resid_mid, "
                         "mlp_pre, mlp_post, mlp_out)");
    if (!owns(owner, s.site))
        throw UsageError(option + " '" + text + "': " + site_name(s.site) + " is computed by " +
                         (s.site <= Site::AttnOut ? "attend" : "mlp") + ", not here");
    return s;
}

// A site's units and their width: [unit, width].
std::pair<int64_t, int64_t> site_dims(const Config& cfg, Site site, int64_t T) {
    switch (site) {
    case Site::Q:
    case Site::Z:
        return {cfg.n_heads, cfg.d_head};
    case Site::K:
    case Site::V:
        return {cfg.kv_heads(), cfg.d_head};
    case Site::Pattern:
        return {cfg.n_heads, T};
    case Site::HeadOut:
        return {cfg.n_heads, cfg.d_model};
    case Site::MlpPre:
    case Site::MlpPost:
        return {cfg.d_mlp, 1};
    default:
        return {1, cfg.d_model};
    }
}

} // namespace

Tensor site_values(const Activations& run, Site site, int64_t layer, const Config& cfg,
                   std::string& where) {
    const H5File& f = run.file;
    const std::string L = std::to_string(layer);
    const bool attn = site <= Site::AttnOut;
    static const std::map<Site, std::string> saved = {
        {Site::Q, "q"},          {Site::K, "k"},
        {Site::V, "v"},          {Site::Pattern, "pattern"},
        {Site::Z, "z"},          {Site::HeadOut, "head_out"},
        {Site::AttnOut, "out"},  {Site::MlpPre, "pre"},
        {Site::MlpPost, "post"}, {Site::MlpOut, "out"}};
    std::vector<std::string> names;
    if (site == Site::ResidPre || site == Site::ResidMid) {
        names.push_back("/blocks/" + L + "/" + site_name(site));
        const bool before = site == Site::ResidPre
                                ? (layer == 0 ? run.stage == Stage::Embed
                                              : run.stage == Stage::Mlp && run.layer == layer - 1)
                                : run.stage == Stage::Attn && run.layer == layer;
        if (before) names.push_back("/resid");
    } else {
        const std::string group = attn ? "attn" : "mlp";
        names.push_back("/blocks/" + L + "/" + group + "/" + saved.at(site));
        if (f.exists("/" + group) && f.has_attr("/" + group, "layer") &&
            f.attr_int("/" + group, "layer") == layer)
            names.push_back("/" + group + "/" + saved.at(site));
    }
    for (const std::string& name : names) {
        if (!f.exists(name)) continue;
        where = f.name() + ":" + name;
        const int64_t T = run.n_pos();
        const auto [U, W] = site_dims(cfg, site, T);
        Tensor t = f.read_f32(name);
        const Shape want = site == Site::Pattern ? Shape{run.batch(), U, T, W}
                           : (U == 1 || W == 1)  ? Shape{run.batch(), T, U * W}
                                                 : Shape{run.batch(), T, U, W};
        if (t.shape() != want)
            throw ShapeError(where + ": shape " + shape_str(t.shape()) + ", expected " +
                             shape_str(want) + " (a capture of every position of this layer)");
        if (site != Site::Pattern) return t.reshaped({run.batch(), T, U, W});
        Tensor out = Tensor::zeros({run.batch(), T, U, W}); // [batch, query_pos, head, key_pos]
        for (int64_t b = 0; b < run.batch(); ++b)
            for (int64_t h = 0; h < U; ++h)
                for (int64_t q = 0; q < T; ++q)
                    std::memcpy(out.f32() + ((b * T + q) * U + h) * W,
                                t.f32() + ((b * U + h) * T + q) * W, W * sizeof(float));
        return out;
    }
    throw FormatError(run.file.name() + ": has no values of " + site_name(site) + " at layer " + L +
                      " (capture them with block --save, or attend/mlp --save)");
}

namespace {

// The mean over the batch and the real positions: [1, 1, unit, width].
Tensor mean_of(const Tensor& v, const Padding& pad) {
    const int64_t B = v.dim(0), T = v.dim(1), n = v.dim(2) * v.dim(3);
    std::vector<double> sum(n, 0.0);
    int64_t count = 0;
    for (int64_t b = 0; b < B; ++b)
        for (int64_t t = pad.begin(b); t < pad.end(b); ++t, ++count)
            for (int64_t i = 0; i < n; ++i)
                sum[i] += v.f32()[(b * T + t) * n + i];
    Tensor m = Tensor::zeros({1, 1, v.dim(2), v.dim(3)});
    for (int64_t i = 0; i < n; ++i)
        m.f32()[i] = static_cast<float>(sum[i] / static_cast<double>(count));
    return m;
}

// FNV-1a of the values: which values a file was changed with, in its `modified`.
std::string values_hash(const Tensor& t) {
    uint64_t h = 1469598103934665603ull;
    const auto* p = reinterpret_cast<const unsigned char*>(t.f32());
    for (int64_t i = 0; i < t.numel() * 4; ++i)
        h = (h ^ p[i]) * 1099511628211ull;
    char buf[24];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
    return buf;
}

// A run to take values from: of the same model, and where in is given (values, not a mean),
// of the same positions.
Activations open_source(const std::string& path, const ModelFile& model,
                        const std::string& model_path, const Activations* in) {
    require_input(path);
    Activations src = read_activations(path, false);
    check_model(src, model.model_id(), model_path);
    if (in && (src.n_pos() != in->n_pos() || (src.batch() != in->batch() && src.batch() != 1)))
        throw ShapeError(src.file.name() + ": /tokens " + shape_str(src.tokens.shape()) +
                         " does not match this run's " + shape_str(in->tokens.shape()) +
                         " (a source has the same positions, and the same batch or batch 1)");
    return src;
}

} // namespace

Interventions read_interventions(const InterventionOptions& opt, const std::string& patch_from,
                                 SiteOwner owner, int64_t first, int64_t stop,
                                 const ModelFile& model, const std::string& model_path,
                                 const Activations* in, Backend& be) {
    const Config& cfg = model.config();
    const int64_t T = in ? in->n_pos() : 1; // (generation: one position at a time, any)
    Interventions out;
    if (!in && !opt.patch.empty())
        throw UsageError("--patch: generation has no run of the same positions to patch from; "
                         "--add and --ablate zero|mean:FILE hold at any position");
    if (!opt.patch.empty() && patch_from.empty())
        throw UsageError("--patch: give the run to patch from, --patch-from FILE");
    auto add_edit = [&](const Spec& s, bool add, Tensor source, const std::string& what) {
        const auto [U, W] = site_dims(cfg, s.site, T);
        if (!in && (!s.positions.empty() || s.site == Site::Pattern))
            throw UsageError("'" + s.text +
                             "': generation brings new positions at every step: "
                             "no positions, and no pattern (its width grows)");
        SiteEdit e;
        e.site = s.site;
        e.add = add;
        if (!s.positions.empty())
            e.positions = parse_index_list(s.positions, T, "positions of " + s.text);
        if (!s.units.empty()) {
            if (U == 1)
                throw UsageError("'" + s.text + "': " + site_name(s.site) +
                                 " has no heads or neurons to choose");
            e.units = parse_index_list(s.units, U, "units of " + s.text);
        }
        e.source = be.to_device(source.reshaped({source.dim(0), source.dim(1), source.dim(2), W}));
        out.layers[s.layer].push_back(std::move(e));
        out.done.push_back(
            (owner == SiteOwner::Block ? "" : "layer " + std::to_string(s.layer) + ": ") + what);
    };
    std::unique_ptr<Activations> patch_src;
    for (const std::string& text : opt.patch) {
        const Spec s = parse_spec(text, "--patch", owner, first, stop);
        if (!patch_src)
            patch_src =
                std::make_unique<Activations>(open_source(patch_from, model, model_path, in));
        std::string where;
        Tensor v = site_values(*patch_src, s.site, s.layer, cfg, where);
        add_edit(s, false, v,
                 "patched " + text + " from " + where + " (" + patch_src->model_id + ", values " +
                     values_hash(v) + ")");
    }
    for (const std::string& text : opt.ablate) {
        const auto eq = text.find('=');
        if (eq == std::string::npos)
            throw UsageError("--ablate '" + text + "': expected SITE=zero|mean:FILE|resample:FILE");
        const Spec s = parse_spec(text.substr(0, eq), "--ablate", owner, first, stop);
        const std::string how = text.substr(eq + 1);
        if (how == "zero") {
            const auto [U, W] = site_dims(cfg, s.site, T);
            add_edit(s, false, Tensor::zeros({1, 1, U, W}), "zero-ablated " + s.text);
            continue;
        }
        const auto colon = how.find(':');
        const std::string kind = how.substr(0, colon);
        if (colon == std::string::npos || (kind != "mean" && kind != "resample"))
            throw UsageError("--ablate '" + text +
                             "': after '=' give zero, mean:FILE or resample:FILE");
        if (!in && kind == "resample")
            throw UsageError("--ablate '" + text +
                             "': resample needs a run of the same "
                             "positions; not in generation");
        const Activations src =
            open_source(how.substr(colon + 1), model, model_path, kind == "mean" ? nullptr : in);
        std::string where;
        Tensor v = site_values(src, s.site, s.layer, cfg, where);
        if (kind == "mean") v = mean_of(v, src.pad);
        add_edit(s, false, v,
                 (kind == "mean" ? "mean-ablated " : "resample-ablated ") + s.text + " from " +
                     where + " (" + src.model_id + ", values " + values_hash(v) + ")");
    }
    for (const std::string& text : opt.add) {
        const auto eq = text.find('=');
        if (eq == std::string::npos)
            throw UsageError("--add '" + text + "': expected SITE=FILE[:/DATASET]");
        const Spec s = parse_spec(text.substr(0, eq), "--add", owner, first, stop);
        std::string path = text.substr(eq + 1), dataset = "/steer/vector";
        if (const auto c = path.find(":/"); c != std::string::npos) {
            dataset = path.substr(c + 1);
            path.resize(c);
        }
        require_input(path);
        const H5File f = H5File::open_read(path);
        const std::string where = f.name() + ":" + dataset;
        if (!f.exists(dataset)) throw FormatError(where + ": not found");
        Tensor v = f.read_f32(dataset);
        const auto [U, W] = site_dims(cfg, s.site, T);
        // [width] or [unit * width], once or per position [pos, ...]
        const int64_t n = v.rank() == 1 ? v.dim(0) : v.rank() == 2 ? v.dim(1) : -1;
        const int64_t rows = v.rank() == 2 ? v.dim(0) : 1;
        if ((n != W && n != U * W) || (rows != 1 && (rows != T || !in)))
            throw ShapeError(where + ": shape " + shape_str(v.shape()) + ", but " +
                             site_name(s.site) + " takes a vector of " + std::to_string(W) +
                             (U > 1 ? " (or " + std::to_string(U * W) + ")" : std::string()) +
                             " values, once or for each of " + std::to_string(T) + " positions");
        v = v.reshaped({1, rows, n / W, W});
        for (int64_t i = 0; i < v.numel(); ++i)
            v.f32()[i] *= opt.scale;
        char scale[32];
        std::snprintf(scale, sizeof scale, "%g", static_cast<double>(opt.scale));
        add_edit(s, true, v,
                 "added " + std::string(scale) + " x " + where + " to " + s.text + " (values " +
                     values_hash(v) + ")");
    }
    return out;
}

} // namespace qkv

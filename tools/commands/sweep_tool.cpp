#include "commands/sweep_tool.hpp"

#include "commands/prompt.hpp"
#include "qkv/model/sweep.hpp"
#include "qkv/tokenizer/tokenizer.hpp"

#include <cstdio>

namespace qkv {

const std::vector<std::string>& sweep_kinds() {
    static const std::vector<std::string> kinds = {"ablate-heads", "ablate-neurons", "patch-heads",
                                                   "patch-positions"};
    return kinds;
}

void run_block_sweep(const BlockOptions& opt, const ModelFile& model, const Activations& in,
                     Backend& be, int64_t first, int64_t stop) {
    const Config& cfg = model.config();
    const std::string& kind = opt.sweep;
    if (opt.answer.empty() && !opt.foil.empty())
        throw UsageError("--foil: give the --answer it is compared with");
    if (!opt.save.empty() || !opt.ablate_heads.empty() || !opt.scale_heads.empty() ||
        !opt.patch_heads.empty() || !opt.sites.patch.empty() || !opt.sites.ablate.empty() ||
        !opt.sites.add.empty())
        throw UsageError("--sweep runs its own variants: no --save or other interventions");
    const bool patch = kind.rfind("patch", 0) == 0;
    if (patch == opt.patch_from.empty())
        throw UsageError(patch ? "--sweep " + kind + ": give the run to patch from, --patch-from"
                               : "--sweep " + kind + " takes no --patch-from");
    if (in.batch() != 1)
        throw UsageError(in.file.name() + ": --sweep takes one sequence (batch 1)");
    if (first == stop) throw UsageError("--sweep: the layer range is empty");
    const Tokenizer tok(model.load_tokenizer());
    SweepMetric metric;
    if (!opt.answer.empty()) metric.answer = encode_answer(tok, opt.answer, "--answer")[0];
    if (!opt.foil.empty()) metric.foil = encode_answer(tok, opt.foil, "--foil")[0];

    // Each layer's variants: one head, neuron or position each.
    const int64_t T = in.n_pos(), H = cfg.n_heads, dh = cfg.d_head;
    std::unique_ptr<Activations> src;
    if (patch) {
        src = std::make_unique<Activations>(read_activations(opt.patch_from, false));
        check_model(*src, model.model_id(), opt.common.model);
        if (src->n_pos() != T || src->batch() != 1)
            throw ShapeError(src->file.name() + ": /tokens " + shape_str(src->tokens.shape()) +
                             ", but the run swept is [1, " + std::to_string(T) + "]");
    }
    const Site site = kind == "ablate-neurons"    ? Site::MlpPost
                      : kind == "patch-positions" ? Site::ResidPre
                                                  : Site::Z;
    const Tensor zeros = be.to_device(kind == "ablate-neurons" ? Tensor::zeros({1, 1, cfg.d_mlp, 1})
                                                               : Tensor::zeros({1, 1, H, dh}));
    const int64_t n_units = kind == "ablate-neurons"    ? cfg.d_mlp
                            : kind == "patch-positions" ? T
                                                        : H;
    SweepVariants variants = [&](int64_t layer) {
        Tensor source = zeros;
        if (patch) {
            std::string where;
            source = be.to_device(site_values(*src, site, layer, cfg, where));
        }
        std::vector<SiteEdit> out;
        for (int64_t u = 0; u < n_units; ++u) {
            SiteEdit e;
            e.site = site;
            e.source = source;
            if (site == Site::ResidPre)
                e.positions = {u};
            else
                e.units = {u};
            out.push_back(std::move(e));
        }
        return out;
    };
    const ModelWeights w = model.load_all(be);
    const Tensor stream = be.to_device(in.resid);
    const SweepResult r = run_sweep(be, w, stream, first, stop, variants, metric);

    const std::string what = metric.answer < 0 ? "kl" : metric.foil >= 0 ? "logit_diff" : "logprob";
    const int64_t L = stop - first;
    if (!opt.common.output.empty() && opt.common.output != "-") {
        H5Output out(opt.common.output);
        H5File& f = out.file();
        write_tokens(f, model.model_id(), in.tokens, in.token_text,
                     (in.history.empty() ? "" : in.history + "\n") +
                         history_line(opt.common, be.describe()));
        // [layer, head | neuron | position]: the metric, and its change from the clean run
        Tensor grid = Tensor::zeros({L, n_units}), change = Tensor::zeros({L, n_units});
        for (int64_t l = 0; l < L; ++l)
            for (int64_t u = 0; u < n_units; ++u) {
                grid.f32()[l * n_units + u] = static_cast<float>(r.metric[l][u]);
                change.f32()[l * n_units + u] = static_cast<float>(r.metric[l][u] - r.clean);
            }
        f.write("/sweep/metric", grid);
        f.write("/sweep/change", change);
        f.set_attr("/sweep", "kind", kind);
        f.set_attr("/sweep", "metric", what);
        f.set_attr("/sweep", "answer", opt.answer);
        f.set_attr("/sweep", "foil", opt.foil);
        f.set_attr("/sweep", "clean", r.clean);
        f.set_attr("/sweep", "first_layer", first);
        if (patch) f.set_attr("/sweep", "patch_from", opt.patch_from);
        out.commit();
        return;
    }
    const char* unit = kind == "ablate-neurons"    ? "neuron"
                       : kind == "patch-positions" ? "position"
                                                   : "head";
    const std::string of = metric.answer < 0 ? " from the clean run's next-token distribution"
                           : opt.foil.empty()
                               ? " of \"" + opt.answer + "\""
                               : " of \"" + opt.answer + "\" over \"" + opt.foil + "\"";
    std::printf("# %s, %s%s; clean %.9g\nlayer\t%s\t%s\tchange\n", kind.c_str(), what.c_str(),
                of.c_str(), r.clean, unit, what.c_str());
    for (int64_t l = 0; l < L; ++l)
        for (int64_t u = 0; u < n_units; ++u)
            std::printf("%lld\t%lld\t%.9g\t%.9g\n", static_cast<long long>(first + l),
                        static_cast<long long>(u), r.metric[l][u], r.metric[l][u] - r.clean);
}

} // namespace qkv

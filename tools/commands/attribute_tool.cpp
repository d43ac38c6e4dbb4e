#include "commands/attribute_tool.hpp"

#include "commands/prompt.hpp"
#include "qkv/files/activations.hpp"
#include "qkv/files/model_file.hpp"
#include "qkv/model/attribution.hpp"
#include "qkv/model/embed.hpp"
#include "qkv/model/transformer.hpp"
#include "qkv/model/unembed.hpp"
#include "qkv/tensor/backend.hpp"
#include "qkv/tokenizer/tokenizer.hpp"
#include "qkv/train/activation_grads.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

namespace qkv {

namespace {

struct Part {
    std::string label; // "embed", "pos", "L.H", "L b_O", "mlp L"
    double value;
};

// What every method reads: the model, the prompt, the position in each sequence (its last real
// token by default), the answer and the foil (-1: none).
struct Setup {
    ModelFile model;
    Tokenizer tok;
    Prompt in;
    std::vector<int64_t> at;
    int32_t answer, foil;
    std::vector<std::string> token_text() const {
        std::vector<std::string> text(in.tokens.numel());
        for (int64_t i = 0; i < in.tokens.numel(); ++i)
            text[i] = tok.token_text(in.tokens.i32()[i]);
        return text;
    }
};

// The parts in order, or the K largest by size.
std::vector<Part> listed(std::vector<Part> list, int64_t top) {
    if (top > 0) {
        std::stable_sort(list.begin(), list.end(), [](const Part& a, const Part& c) {
            return std::abs(a.value) > std::abs(c.value);
        });
        list.resize(std::min<size_t>(list.size(), top));
    }
    return list;
}

std::string metric_text(const AttributeOptions& opt) {
    return opt.foil.empty() ? "logit(\"" + opt.answer + "\")"
                            : "logit(\"" + opt.answer + "\") - logit(\"" + opt.foil + "\")";
}

void run_direct(const AttributeOptions& opt, Setup& s) {
    const ModelFile& model = s.model;
    const Config& cfg = model.config();
    const int64_t D = cfg.d_model, H = cfg.n_heads, L = cfg.n_layers;
    const Prompt& in = s.in;
    const Tensor& tokens = in.tokens; // [batch, pos]
    const int64_t B = tokens.dim(0), T = tokens.dim(1);
    const std::vector<int64_t>& at = s.at;
    const int32_t answer = s.answer, foil = s.foil;

    // The forward pass, keeping every part of the stream at each sequence's position (host,
    // [batch, d_model]).
    auto be = make_backend(parse_device(opt.common.device), opt.common.threads);
    ModelWeights w = model.load_all(*be);
    auto at_p = [&](const Tensor& t, int64_t per_pos, int64_t offset) { // rows at the position
        const Tensor h = be->to_host(t);
        Tensor out = Tensor::zeros({B, D});
        for (int64_t b = 0; b < B; ++b)
            std::copy_n(h.f32() + (b * T + at[b]) * per_pos + offset, D, out.f32() + b * D);
        return out;
    };
    EmbedResult e = embed_forward(*be, cfg, w.embed, tokens, 0, true, "attribute", &in.pad);
    std::vector<Tensor> parts = {at_p(e.token, D, 0)};
    std::vector<std::string> labels = {"embed"};
    std::vector<int64_t> grid_cell = {-1}; // a head's layer * H + head, else -1
    if (!e.pos.empty()) {
        parts.push_back(at_p(e.pos, D, 0));
        labels.push_back("pos");
        grid_cell.push_back(-1);
    }
    BlockSaves saves;
    saves.attn.head_out = true;
    saves.mlp.out = true;
    Tensor resid = e.resid;
    for (int64_t l = 0; l < L; ++l) {
        BlockResult r;
        block_forward(*be, cfg, w.blocks[l], resid, nullptr, saves, &r, nullptr, &in.pad);
        for (int64_t h = 0; h < H; ++h) {
            parts.push_back(at_p(r.attn.head_out, H * D, h * D));
            labels.push_back(std::to_string(l) + "." + std::to_string(h));
            grid_cell.push_back(l * H + h);
        }
        if (!w.blocks[l].attn.b_O.empty()) {
            const Tensor b_O = be->to_host(w.blocks[l].attn.b_O);
            Tensor rows = Tensor::zeros({B, D});
            for (int64_t b = 0; b < B; ++b)
                std::copy_n(b_O.f32(), D, rows.f32() + b * D);
            parts.push_back(rows);
            labels.push_back(std::to_string(l) + " b_O");
            grid_cell.push_back(-1);
        }
        parts.push_back(at_p(r.mlp.out, D, 0));
        labels.push_back("mlp " + std::to_string(l));
        grid_cell.push_back(-1);
    }
    const Tensor final_stream = at_p(resid, D, 0);
    UnembedWeights uw{{be->to_host(w.unembed.ln_final.w),
                       w.unembed.ln_final.b.empty() ? Tensor() : be->to_host(w.unembed.ln_final.b)},
                      be->to_host(w.unembed.W_U),
                      w.unembed.b_U.empty() ? Tensor() : be->to_host(w.unembed.b_U)};
    Tensor logits_d = be->empty({B, cfg.vocab_size});
    const Tensor final_d = be->to_device(final_stream);
    unembed_forward(*be, cfg, w.unembed, final_d.f32(), B, logits_d.f32());
    const Tensor logits = be->to_host(logits_d);

    // Each part's direct contribution, per sequence.
    const int64_t n = static_cast<int64_t>(parts.size());
    Tensor table = Tensor::zeros({B, n});
    std::vector<double> remaining(B), actual(B);
    for (int64_t b = 0; b < B; ++b) {
        const LogitDirection dir =
            logit_direction(cfg, uw, final_stream.f32() + b * D, answer, foil);
        for (int64_t i = 0; i < n; ++i)
            table.f32()[b * n + i] =
                static_cast<float>(direct_contribution(dir, parts[i].f32() + b * D, D));
        remaining[b] = dir.remaining;
        const float* l = logits.f32() + b * cfg.vocab_size;
        actual[b] = static_cast<double>(l[answer]) - (foil >= 0 ? l[foil] : 0.0f);
    }

    if (!opt.common.output.empty() && opt.common.output != "-") {
        H5Output out(opt.common.output);
        H5File& f = out.file();
        write_tokens(f, model.model_id(), tokens, s.token_text(),
                     history_line(opt.common, be->describe()), in.pad);
        // The heads as a grid [batch, layer, head], then every part in the model's order.
        Tensor grid = Tensor::zeros({B, L, H});
        for (int64_t b = 0; b < B; ++b)
            for (int64_t i = 0; i < n; ++i)
                if (grid_cell[i] >= 0)
                    grid.f32()[b * L * H + grid_cell[i]] = table.f32()[b * n + i];
        f.write("/attribution/heads", grid);
        f.write("/attribution/parts", table);
        f.write_strings("/attribution/labels", {n}, labels);
        Tensor rem = Tensor::zeros({B}), act = Tensor::zeros({B});
        for (int64_t b = 0; b < B; ++b) {
            rem.f32()[b] = static_cast<float>(remaining[b]);
            act.f32()[b] = static_cast<float>(actual[b]);
        }
        f.write("/attribution/remaining", rem);
        f.write("/attribution/logit_diff", act);
        f.set_attr("/attribution", "answer", opt.answer);
        f.set_attr("/attribution", "foil", opt.foil);
        Tensor where = Tensor::zeros({B}, DType::I32); // each sequence's position [batch]
        for (int64_t b = 0; b < B; ++b)
            where.i32()[b] = static_cast<int32_t>(at[b]);
        f.write("/attribution/position", where);
        out.commit();
    }

    nlohmann::ordered_json rows = nlohmann::ordered_json::array();
    for (int64_t b = 0; b < B; ++b) {
        std::vector<Part> all;
        double sum = remaining[b];
        for (int64_t i = 0; i < n; ++i) {
            all.push_back({labels[i], table.f32()[b * n + i]});
            sum += table.f32()[b * n + i];
        }
        const std::vector<Part> list = listed(all, opt.top);
        if (opt.json) {
            nlohmann::ordered_json parts_j = nlohmann::ordered_json::array();
            for (const Part& p : list)
                parts_j.push_back({{"part", p.label}, {"value", p.value}});
            rows.push_back({{"batch", b},
                            {"position", at[b]},
                            {"parts", parts_j},
                            {"remaining", remaining[b]},
                            {"sum", sum},
                            {"logit_diff", actual[b]}});
            continue;
        }
        std::printf("# batch %lld, position %lld: %s\n", static_cast<long long>(b),
                    static_cast<long long>(at[b]), metric_text(opt).c_str());
        std::printf("part\tdirect\n");
        for (const Part& p : list)
            std::printf("%s\t%.6f\n", p.label.c_str(), p.value);
        std::printf("norm bias, b_U\t%.6f\nsum\t%.6f\nmodel\t%.6f\n", remaining[b], sum, actual[b]);
    }
    if (opt.json)
        std::cout << (B == 1 ? rows[0] : rows)
                         .dump(2, ' ', false, nlohmann::json::error_handler_t::replace)
                  << '\n';
}

// Attribution patching: the metric's gradient with respect to every head's z and every layer's
// entering stream on this run, one backward pass; patching a site from the source run changes
// the metric by about (source - this run) . gradient, summed over the site's cells.
void run_patching_estimate(const AttributeOptions& opt, Setup& s) {
    const Config& cfg = s.model.config();
    const Tensor& tokens = s.in.tokens;
    const int64_t T = tokens.dim(1), D = cfg.d_model, H = cfg.n_heads, dh = cfg.d_head,
                  L = cfg.n_layers;
    if (opt.patch_from.empty())
        throw UsageError("--method atp: give the run to patch from, --patch-from");
    if (tokens.dim(0) != 1 || s.in.pad.padded())
        throw UsageError("--method atp takes one sequence (batch 1)");
    const Activations src = read_activations(opt.patch_from, false);
    check_model(src, s.model.model_id(), opt.common.model);
    if (src.tokens.shape() != tokens.shape() || src.pad.padded())
        throw ShapeError(src.file.name() + ": /tokens " + shape_str(src.tokens.shape()) +
                         ", but the run attributed is [1, " + std::to_string(T) + "]");
    if (parse_device(opt.common.device) != Device::CPU)
        throw UsageError("--method atp runs on the CPU (--device cpu)");

    const int threads = thread_count(opt.common);
    auto be = make_cpu_backend(threads);
    ThreadPool pool(threads);
    const ModelWeights w = s.model.load_all(*be);
    LogitMetric metric;
    metric.answer = s.answer;
    metric.foil = s.foil;
    metric.position = s.at;
    const MetricGradients g = metric_gradients(*be, pool, w, tokens, metric);
    const LayerActivations source = layer_activations(*be, w, src.tokens);

    // The estimates [layer, head] and [layer, position]: sum of (source - run) * gradient.
    Tensor heads = Tensor::zeros({L, H}), positions = Tensor::zeros({L, T});
    for (int64_t l = 0; l < L; ++l) {
        const float *zs = source.z[l].f32(), *zr = g.values.z[l].f32(), *gz = g.grads.z[l].f32();
        for (int64_t h = 0; h < H; ++h) {
            double sum = 0;
            for (int64_t t = 0; t < T; ++t)
                for (int64_t j = 0; j < dh; ++j) {
                    const int64_t i = (t * H + h) * dh + j;
                    sum += (static_cast<double>(zs[i]) - zr[i]) * gz[i];
                }
            heads.f32()[l * H + h] = static_cast<float>(sum);
        }
        const float *rs = source.resid_pre[l].f32(), *rr = g.values.resid_pre[l].f32(),
                    *gr = g.grads.resid_pre[l].f32();
        for (int64_t t = 0; t < T; ++t) {
            double sum = 0;
            for (int64_t d = 0; d < D; ++d)
                sum += (static_cast<double>(rs[t * D + d]) - rr[t * D + d]) * gr[t * D + d];
            positions.f32()[l * T + t] = static_cast<float>(sum);
        }
    }

    if (!opt.common.output.empty() && opt.common.output != "-") {
        H5Output out(opt.common.output);
        H5File& f = out.file();
        write_tokens(f, s.model.model_id(), tokens, s.token_text(),
                     history_line(opt.common, be->describe()));
        f.write("/atp/heads", heads);
        f.write("/atp/positions", positions);
        Tensor grad_z = Tensor::zeros({L, T, H, dh}), grad_resid = Tensor::zeros({L, T, D});
        for (int64_t l = 0; l < L; ++l) {
            std::copy_n(g.grads.z[l].f32(), T * H * dh, grad_z.f32() + l * T * H * dh);
            std::copy_n(g.grads.resid_pre[l].f32(), T * D, grad_resid.f32() + l * T * D);
        }
        f.write("/atp/grad_z", grad_z);
        f.write("/atp/grad_resid_pre", grad_resid);
        f.set_attr("/atp", "metric", opt.foil.empty() ? "logprob" : "logit_diff");
        f.set_attr("/atp", "answer", opt.answer);
        f.set_attr("/atp", "foil", opt.foil);
        f.set_attr("/atp", "value", g.metric[0]);
        f.set_attr("/atp", "position", s.at[0]);
        f.set_attr("/atp", "patch_from", opt.patch_from);
        out.commit();
        return;
    }
    // Labelled as the --patch option that makes the change: L.z#H, L.resid_pre@P.
    std::vector<Part> all;
    for (int64_t l = 0; l < L; ++l)
        for (int64_t h = 0; h < H; ++h)
            all.push_back({std::to_string(l) + ".z#" + std::to_string(h), heads.f32()[l * H + h]});
    for (int64_t l = 0; l < L; ++l)
        for (int64_t t = 0; t < T; ++t)
            all.push_back({std::to_string(l) + ".resid_pre@" + std::to_string(t),
                           positions.f32()[l * T + t]});
    const std::vector<Part> list = listed(all, opt.top);
    if (opt.json) {
        nlohmann::ordered_json sites = nlohmann::ordered_json::array();
        for (const Part& p : list)
            sites.push_back({{"site", p.label}, {"estimate", p.value}});
        std::cout << nlohmann::ordered_json{{"position", s.at[0]},
                                            {"value", g.metric[0]},
                                            {"estimates", sites}}
                         .dump(2, ' ', false, nlohmann::json::error_handler_t::replace)
                  << '\n';
        return;
    }
    std::printf("# position %lld: %s %.9g; patched from %s, estimated change\nsite\testimate\n",
                static_cast<long long>(s.at[0]), metric_text(opt).c_str(), g.metric[0],
                opt.patch_from.c_str());
    for (const Part& p : list)
        std::printf("%s\t%.9g\n", p.label.c_str(), p.value);
}

} // namespace

void run_attribute(const AttributeOptions& opt) {
    if (opt.answer.empty()) throw UsageError("--answer: the token whose logit to attribute");
    if (opt.method == "dla" && !opt.patch_from.empty())
        throw UsageError("--patch-from: only with --method atp");
    ModelFile model = ModelFile::open(opt.common.model);
    model.plain_weights(); // attribution reads W_U and the backward pass's weights itself
    Tokenizer tok(model.load_tokenizer());
    Prompt in = read_prompt(opt.prompt, model, tok);
    std::vector<int64_t> at = position_in_each(in.pad, opt.position, "--position");
    const int32_t answer = encode_answer(tok, opt.answer, "--answer")[0];
    const int32_t foil = opt.foil.empty() ? -1 : encode_answer(tok, opt.foil, "--foil")[0];
    Setup s{std::move(model), std::move(tok), std::move(in), std::move(at), answer, foil};
    if (opt.method == "atp")
        run_patching_estimate(opt, s);
    else
        run_direct(opt, s);
}

} // namespace qkv

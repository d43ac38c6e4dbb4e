#include "commands/attribute_tool.hpp"

#include "commands/prompt.hpp"
#include "files/activations.hpp"
#include "files/model_file.hpp"
#include "model/attribution.hpp"
#include "model/embed.hpp"
#include "model/transformer.hpp"
#include "model/unembed.hpp"
#include "tensor/backend.hpp"
#include "tokenizer/tokenizer.hpp"

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

} // namespace

void run_attribute(const AttributeOptions& opt) {
    if (opt.answer.empty()) throw UsageError("--answer: the token whose logit to attribute");
    ModelFile model = ModelFile::open(opt.common.model);
    const Config& cfg = model.config();
    const int64_t D = cfg.d_model, H = cfg.n_heads, L = cfg.n_layers;
    Tokenizer tok(model.load_tokenizer());
    const Prompt in = read_prompt(opt.prompt, model, tok);
    const Tensor& tokens = in.tokens; // [batch, pos]
    const int64_t B = tokens.dim(0), T = tokens.dim(1);
    // The position in each sequence (its last real token by default).
    const std::vector<int64_t> at = position_in_each(in.pad, opt.position, "--position");
    const int32_t answer = encode_answer(tok, opt.answer, "--answer")[0];
    const int32_t foil = opt.foil.empty() ? -1 : encode_answer(tok, opt.foil, "--foil")[0];

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
        std::vector<std::string> text(tokens.numel());
        for (int64_t i = 0; i < tokens.numel(); ++i)
            text[i] = tok.token_text(tokens.i32()[i]);
        write_tokens(f, model.model_id(), tokens, text, history_line(opt.common, be->describe()),
                     in.pad);
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
        std::vector<Part> list;
        double sum = remaining[b];
        for (int64_t i = 0; i < n; ++i) {
            list.push_back({labels[i], table.f32()[b * n + i]});
            sum += table.f32()[b * n + i];
        }
        if (opt.top > 0) {
            std::stable_sort(list.begin(), list.end(), [](const Part& a, const Part& c) {
                return std::abs(a.value) > std::abs(c.value);
            });
            list.resize(std::min<size_t>(list.size(), opt.top));
        }
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
                    static_cast<long long>(at[b]),
                    foil >= 0
                        ? ("logit(\"" + opt.answer + "\") - logit(\"" + opt.foil + "\")").c_str()
                        : ("logit(\"" + opt.answer + "\")").c_str());
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

} // namespace qkv

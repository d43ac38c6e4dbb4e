#include "commands/generate_tool.hpp"

#include "commands/prompt.hpp"
#include "qkv/base/errors.hpp"
#include "qkv/files/activations.hpp"
#include "qkv/files/model_file.hpp"
#include "qkv/model/kv_cache.hpp"
#include "qkv/model/transformer.hpp"
#include "qkv/model/unembed.hpp"
#include "qkv/tensor/backend.hpp"
#include "qkv/tokenizer/tokenizer.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <unistd.h>

namespace qkv {

namespace {

// The prediction (or logit lens) from one position of an activation file.
void predict(const GenerateOptions& opt) {
    require_input(opt.from);
    ModelFile model = ModelFile::open(opt.common.model);
    const Config& cfg = model.config();
    Activations in = read_activations(opt.from, true, cfg.d_model);
    check_model(in, model.model_id(), opt.common.model);
    const int64_t B = in.batch(), T = in.n_pos(), V = cfg.vocab_size;
    if (T == 0) throw ShapeError(in.file.name() + ": has no positions to predict from");
    // The position in each sequence, counted over its real tokens (a padded batch).
    const std::vector<int64_t> at = position_in_each(in.pad, opt.position, "--position");
    auto be = make_backend(parse_device(opt.common.device), opt.common.threads);
    UnembedWeights w = model.load_unembed(*be);
    Tensor resid = be->to_device(in.resid);
    // Logits of every position (for -o --all-positions) or only of the chosen one.
    const int64_t rows = opt.all_positions ? B * T : B;
    Tensor x = be->empty({rows, cfg.d_model}); // the vectors to unembed
    if (opt.all_positions)
        be->copy(x.f32(), resid.f32(), B * T * cfg.d_model);
    else
        for (int64_t b = 0; b < B; ++b)
            be->copy(x.f32() + b * cfg.d_model, resid.f32() + (b * T + at[b]) * cfg.d_model,
                     cfg.d_model);
    Tensor logits_d = be->empty({rows, V});
    unembed_forward(*be, cfg, w, x.f32(), rows, logits_d.f32());
    Tensor logits = be->to_host(logits_d); // [batch, pos or 1, vocab]

    const bool final_layer = in.stage == Stage::Mlp && in.layer == cfg.n_layers - 1;
    std::string lens;
    if (!final_layer)
        lens = std::string("logit lens: the stream is after ") + stage_name(in.stage) +
               (in.layer >= 0 ? " of layer " + std::to_string(in.layer) : "") +
               ", not after the last layer (" + std::to_string(cfg.n_layers - 1) + ")";

    if (!opt.common.output.empty() && opt.common.output != "-") {
        check_not_same_file(opt.from, opt.common.output);
        ActivationWriter out(opt.common.output, in);
        // [batch, pos, vocab]: every position, or the chosen one
        out.file().write_f32("/logits", {B, opt.all_positions ? T : 1, V}, logits.f32());
        // int64 [batch, pos]: the position of the input each row of logits is for
        const int64_t n = opt.all_positions ? T : 1;
        std::vector<int64_t> positions;
        for (int64_t b = 0; b < B; ++b)
            for (int64_t p = 0; p < n; ++p)
                positions.push_back(opt.all_positions ? p : at[b]);
        out.file().set_attr("/logits", "positions", {B, n}, positions);
        out.finish(Stage::Logits, in.layer, nullptr, history_line(opt.common, be->describe()));
        out.commit();
        return;
    }
    Tokenizer tok(model.load_tokenizer());
    const int64_t K = std::max<int64_t>(1, std::min(opt.top, V));
    nlohmann::ordered_json j = nlohmann::ordered_json::array();
    for (int64_t b = 0; b < B; ++b) {
        const int64_t pos = at[b];
        const float* l = logits.f32() + (opt.all_positions ? (b * T + pos) : b) * V;
        std::vector<int32_t> order(V);
        for (int64_t i = 0; i < V; ++i)
            order[i] = static_cast<int32_t>(i);
        std::partial_sort(order.begin(), order.begin() + K, order.end(),
                          [&](int32_t a, int32_t c) { return l[a] != l[c] ? l[a] > l[c] : a < c; });
        const double mx = l[order[0]];
        double sum = 0;
        for (int64_t i = 0; i < V; ++i)
            sum += std::exp(static_cast<double>(l[i]) - mx);
        const double lse = mx + std::log(sum);
        if (opt.json) {
            nlohmann::ordered_json top = nlohmann::ordered_json::array();
            for (int64_t r = 0; r < K; ++r)
                top.push_back({{"rank", r + 1},
                               {"id", order[r]},
                               {"token", tok.token_text(order[r])},
                               {"prob", std::exp(l[order[r]] - lse)},
                               {"logprob", l[order[r]] - lse}});
            j.push_back({{"batch", b},
                         {"position", pos},
                         {"stage", stage_name(in.stage)},
                         {"layer", in.layer},
                         {"logit_lens", !final_layer},
                         {"top", top}});
            continue;
        }
        if (b == 0 && !lens.empty()) std::cout << "# " << lens << '\n';
        std::cout << "# batch " << b << ", position " << pos << " ("
                  << visible_whitespace(in.token_text.empty() ? "" : in.token_text[b * T + pos])
                  << ")\n";
        std::printf("rank\tid\ttoken\tprob\tlogprob\n");
        for (int64_t r = 0; r < K; ++r)
            std::printf("%lld\t%d\t%s\t%.6f\t%.4f\n", static_cast<long long>(r + 1), order[r],
                        visible_whitespace(tok.token_text(order[r])).c_str(),
                        std::exp(l[order[r]] - lse), l[order[r]] - lse);
    }
    if (opt.json)
        std::cout
            << (B == 1 ? j[0] : j).dump(2, ' ', false, nlohmann::json::error_handler_t::replace)
            << '\n';
}

// Holds back generated text that could be the start of a stop string.
struct StopFilter {
    const std::vector<std::string>& stops;
    std::string pending;
    bool stopped = false;
    std::string push(const std::string& s) {
        pending += s;
        for (const auto& st : stops) {
            auto hit = pending.find(st);
            if (!st.empty() && hit != std::string::npos) {
                stopped = true;
                std::string out = pending.substr(0, hit);
                pending.clear();
                return out;
            }
        }
        size_t hold = 0;
        for (const auto& st : stops)
            for (size_t k = std::min(st.size() - 1, pending.size()); k > hold; --k)
                if (pending.compare(pending.size() - k, k, st, 0, k) == 0) {
                    hold = k;
                    break;
                }
        // never split a UTF-8 character when holding back
        while (hold < pending.size() &&
               (static_cast<unsigned char>(pending[pending.size() - hold]) & 0xC0) == 0x80)
            ++hold;
        std::string out = pending.substr(0, pending.size() - hold);
        pending.erase(0, pending.size() - hold);
        return out;
    }
};

void generate_text(const GenerateOptions& opt) {
    ModelFile model = ModelFile::open(opt.common.model);
    const Config& cfg = model.config();
    Tokenizer tok(model.load_tokenizer());
    const Prompt in = read_prompt(opt.prompt, model, tok); // [batch, pos]
    if (in.tokens.dim(0) != 1)
        throw ShapeError(opt.prompt.tokens_file + ": generation takes one sequence (batch 1)");
    std::vector<int32_t> prompt(in.tokens.i32() + in.pad.begin(0), // its real tokens
                                in.tokens.i32() + in.pad.end(0));
    for (int32_t id : prompt)
        if (id < 0 || id >= cfg.vocab_size)
            throw ShapeError("prompt token id " + std::to_string(id) +
                             " is outside the vocabulary");
    if (prompt.empty()) {
        if (tok.eot_id() < 0) throw UsageError("empty prompt");
        prompt.push_back(tok.eot_id()); // GPT-2 starts unconditioned text after <|endoftext|>
    }
    if (opt.n_new < 0) throw UsageError("-n must be 0 or more");
    const int64_t total = static_cast<int64_t>(prompt.size()) + opt.n_new;
    if (total > cfg.n_ctx && !opt.slide)
        throw ShapeError("prompt (" + std::to_string(prompt.size()) + " tokens) plus -n " +
                         std::to_string(opt.n_new) +
                         " is longer than the model's context n_ctx = " +
                         std::to_string(cfg.n_ctx) + " (use --slide to keep the last tokens)");
    if (static_cast<int64_t>(prompt.size()) > cfg.n_ctx) {
        if (!opt.slide) throw ShapeError("prompt is longer than n_ctx");
        prompt.erase(prompt.begin(), prompt.end() - cfg.n_ctx / 2);
    }

    auto be = make_backend(parse_device(opt.common.device), opt.common.threads);
    Transformer net(model.load_all(*be), *be);
    // Steering and ablation on every step (the KV cache keeps what they changed).
    Interventions sites = read_interventions(opt.sites, "", SiteOwner::Block, 0, cfg.n_layers,
                                             model, opt.common.model, nullptr, *be);
    if (!sites.empty()) {
        std::vector<AttentionEdit> edits(cfg.n_layers);
        for (auto& [l, e] : sites.layers)
            edits[l].sites = std::move(e);
        net.set_edits(std::move(edits));
    }
    // Room for the whole run (a model's context can be far longer than the run).
    KVCache cache(*be, cfg, opt.slide ? cfg.n_ctx : total);
    Sampler sampler(opt.sampling);
    StreamDecoder decoder(tok);
    StopFilter stop{opt.stop, std::string(), false};
    std::vector<int32_t> seq = prompt, generated;
    std::vector<double> logprobs;
    std::string text_out;
    auto emit = [&](const std::string& s) {
        if (s.empty()) return;
        text_out += s;
        if (!opt.json) {
            std::fwrite(s.data(), 1, s.size(), stdout);
            std::fflush(stdout);
        }
    };

    if (be->device() == Device::CUDA) {
        // The first use of each kernel loads it: do that before the clock starts.
        KVCache warm(*be, cfg, 1);
        net.step(prompt.data(), 1, warm);
    }
    using clock = std::chrono::steady_clock;
    const auto t0 = clock::now();
    Tensor logits = net.step(prompt.data(), static_cast<int64_t>(prompt.size()), cache);
    const double prompt_s = std::chrono::duration<double>(clock::now() - t0).count();
    const auto t1 = clock::now();
    std::string stop_reason = "length";
    for (int64_t i = 0; i < opt.n_new; ++i) {
        const Sample s = sampler.sample(logits.f32(), cfg.vocab_size);
        if (s.id == tok.eot_id() && !opt.ignore_eos) {
            stop_reason = "eos";
            break;
        }
        generated.push_back(s.id);
        logprobs.push_back(s.logprob);
        seq.push_back(s.id);
        emit(stop.push(decoder.push(s.id)));
        if (stop.stopped) {
            stop_reason = "stop";
            break;
        }
        if (i + 1 == opt.n_new) break;
        if (cache.length() + 1 > cache.capacity()) { // --slide: keep the last half of the context
            cache.clear();
            std::vector<int32_t> tail(seq.end() - cfg.n_ctx / 2, seq.end());
            logits = net.step(tail.data(), static_cast<int64_t>(tail.size()), cache);
        } else {
            logits = net.step(&s.id, 1, cache);
        }
    }
    if (!stop.stopped) emit(stop.push(decoder.flush()) + stop.pending);
    const double gen_s = std::chrono::duration<double>(clock::now() - t1).count();

    if (opt.json) {
        nlohmann::ordered_json j;
        j["prompt_ids"] = prompt;
        j["generated_ids"] = generated;
        j["text"] = text_out;
        j["logprobs"] = logprobs;
        j["stop_reason"] = stop_reason;
        std::cout << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
    } else if (isatty(STDOUT_FILENO)) {
        std::cout << '\n';
    }
    if (!opt.common.output.empty() && opt.common.output != "-") {
        H5Output out(opt.common.output);
        H5File& f = out.file();
        Tensor ids =
            Tensor::zeros({1, static_cast<int64_t>(prompt.size() + generated.size())}, DType::I32);
        std::vector<std::string> texts;
        int64_t k = 0;
        for (auto* v : {&prompt, &generated})
            for (int32_t id : *v) {
                ids.i32()[k++] = id;
                texts.push_back(tok.token_text(id));
            }
        write_tokens(f, model.model_id(), ids, texts, history_line(opt.common, be->describe()));
        Tensor lp = Tensor::zeros({static_cast<int64_t>(logprobs.size())});
        for (size_t i = 0; i < logprobs.size(); ++i)
            lp.f32()[i] = static_cast<float>(logprobs[i]);
        f.write("/generate/logprobs", lp);
        f.set_attr("/generate", "prompt_tokens", static_cast<int64_t>(prompt.size()));
        f.set_attr("/generate", "stop_reason", stop_reason);
        if (!sites.done.empty()) {
            std::string what;
            for (const auto& d : sites.done)
                what += (what.empty() ? "" : ", ") + d;
            f.set_attr("/", "modified", "generate: " + what);
        }
        out.commit();
    }
    if (opt.stats) {
        std::fprintf(stderr,
                     "prompt: %zu tokens in %.3f s (%.1f tokens/s)\n"
                     "generated: %zu tokens in %.3f s (%.1f tokens/s)\n"
                     "peak memory: %.1f MiB\n",
                     prompt.size(), prompt_s, prompt.size() / std::max(prompt_s, 1e-9),
                     generated.size(), gen_s, generated.size() / std::max(gen_s, 1e-9),
                     peak_memory_mib());
    }
}

} // namespace

void run_generate(const GenerateOptions& opt) {
    if (!opt.from.empty()) {
        if (!opt.sites.add.empty() || !opt.sites.ablate.empty())
            throw UsageError("--add and --ablate change generation; with --from, change the "
                             "stream with block instead");
        return predict(opt);
    }
    generate_text(opt);
}

} // namespace qkv

#include "commands/score_tool.hpp"

#include "commands/prompt.hpp"
#include "qkv/files/activations.hpp"
#include "qkv/files/model_file.hpp"
#include "qkv/model/score.hpp"
#include "qkv/model/transformer.hpp"
#include "qkv/model/unembed.hpp"
#include "qkv/tensor/backend.hpp"
#include "qkv/tokenizer/tokenizer.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <limits>
#include <nlohmann/json.hpp>
#include <unistd.h>

namespace qkv {

namespace {

const double kNaN = std::numeric_limits<double>::quiet_NaN();

// An answer after one position: its log-probability (all tokens), its first token's rank, and
// the logit difference of its first token from the foil's.
struct AnswerScore {
    double logprob = kNaN, logit_diff = kNaN;
    int64_t rank = 0;
};

// The logits of every position [batch, pos, vocab], and which tokens are scored [batch, pos].
struct Logits {
    Tensor values;
    std::vector<char> scored;
};

// Each sequence's real tokens but its first (nothing before it) are scored [batch * pos].
std::vector<char> real_after_first(const Padding& pad) {
    std::vector<char> scored(pad.batch() * pad.n_pos(), 0);
    for (int64_t b = 0; b < pad.batch(); ++b)
        for (int64_t t = pad.begin(b) + 1; t < pad.end(b); ++t)
            scored[b * pad.n_pos() + t] = 1;
    return scored;
}

// The unembedded stream of an activation file after the last layer.
Logits logits_of_stream(const Activations& in, const ModelFile& model, Backend& be) {
    const Config& cfg = model.config();
    if (in.stage != Stage::Mlp || in.layer != cfg.n_layers - 1)
        throw UsageError(in.file.name() + ": the stream is after " + stage_name(in.stage) +
                         (in.layer >= 0 ? " of layer " + std::to_string(in.layer) : "") +
                         "; score reads it after the last layer (mlp of layer " +
                         std::to_string(cfg.n_layers - 1) + "; generate --from is the logit lens)");
    const int64_t B = in.batch(), T = in.n_pos(), V = cfg.vocab_size;
    const UnembedWeights w = model.load_unembed(be);
    const Tensor resid = be.to_device(in.resid);
    Tensor out = be.empty({B, T, V});
    unembed_forward(be, cfg, w, resid.f32(), B * T, out.f32());
    return {be.to_host(out), real_after_first(in.pad)};
}

// The model run over each window of the tokens (every one real); every position's logits from
// the window in which the token after it is scored, or else the last window that holds it.
Logits logits_of_windows(const Tensor& tokens, Transformer& net, int64_t context, int64_t stride,
                         bool progress) {
    const int64_t B = tokens.dim(0), T = tokens.dim(1), V = net.config().vocab_size;
    const std::vector<ScoreWindow> windows = score_windows(T, context, stride);
    Logits l{Tensor::zeros({B, T, V}), std::vector<char>(B * T, 0)};
    for (size_t i = 0; i < windows.size(); ++i) {
        const ScoreWindow& w = windows[i];
        if (progress) std::fprintf(stderr, "\rscore: window %zu of %zu", i + 1, windows.size());
        const int64_t n = w.end - w.begin;
        Tensor ids = Tensor::zeros({B, n}, DType::I32); // [batch, window]
        for (int64_t b = 0; b < B; ++b)
            std::memcpy(ids.i32() + b * n, tokens.i32() + b * T + w.begin, n * sizeof(int32_t));
        const Tensor out = net.logits(ids); // [batch, window, vocab]
        // (A later window overwrites a position only where it scores the token after it.)
        for (int64_t b = 0; b < B; ++b)
            for (int64_t p = w.first_scored - 1; p < w.end; ++p)
                std::memcpy(l.values.f32() + (b * T + p) * V, out.f32() + (b * n + p - w.begin) * V,
                            V * sizeof(float));
        for (int64_t b = 0; b < B; ++b)
            for (int64_t t = w.first_scored; t < w.end; ++t)
                l.scored[b * T + t] = 1;
    }
    if (progress) std::fprintf(stderr, "\n");
    return l;
}

// The logits of tokens [batch, pos]. A padded batch that fits the context is one run of the
// model with its mask; a longer one goes through the windows a sequence at a time, its real
// tokens alone, so that each is scored as it would be on its own.
Logits logits_of_tokens(const Tensor& tokens, const Padding& pad, Transformer& net, int64_t context,
                        int64_t stride, bool progress) {
    if (!pad.padded()) return logits_of_windows(tokens, net, context, stride, progress);
    const int64_t B = tokens.dim(0), T = tokens.dim(1), V = net.config().vocab_size;
    if (T <= context) return {net.logits(tokens, &pad), real_after_first(pad)};
    Logits l{Tensor::zeros({B, T, V}), std::vector<char>(B * T, 0)};
    for (int64_t b = 0; b < B; ++b) {
        const int64_t n = pad.length(b), first = pad.begin(b);
        Tensor ids = Tensor::zeros({1, n}, DType::I32); // [1, pos]: its real tokens
        std::memcpy(ids.i32(), tokens.i32() + b * T + first, n * sizeof(int32_t));
        const Logits one = logits_of_windows(ids, net, context, stride, progress);
        std::memcpy(l.values.f32() + (b * T + first) * V, one.values.f32(), n * V * sizeof(float));
        std::copy_n(one.scored.begin(), n, l.scored.begin() + b * T + first);
    }
    return l;
}

std::string num(double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.17g", v);
    return buf;
}

} // namespace

void run_score(const ScoreOptions& opt) {
    ModelFile model = ModelFile::open(opt.common.model);
    const Config& cfg = model.config();
    const int64_t V = cfg.vocab_size;
    Tokenizer tok(model.load_tokenizer());
    if (!opt.foil.empty() && opt.answer.empty()) throw UsageError("--foil goes with --answer");
    if (!opt.save.empty() && (opt.common.output.empty() || opt.common.output == "-"))
        throw UsageError("--save: give -o FILE to write /score/entropy and /score/rank into");
    const int64_t context = opt.context > 0 ? opt.context : cfg.n_ctx;
    const int64_t stride = opt.stride > 0 ? opt.stride : context;
    if (context > cfg.n_ctx)
        throw UsageError("--context " + std::to_string(context) + " is longer than the model's " +
                         "n_ctx = " + std::to_string(cfg.n_ctx));
    if (stride > context)
        throw UsageError("--stride " + std::to_string(stride) + " is larger than --context " +
                         std::to_string(context));
    auto be = make_backend(parse_device(opt.common.device), opt.common.threads);

    // Every position's logits, from the stream or from the model run over the tokens.
    const bool from_stream = !opt.from.empty();
    Activations in;
    Tensor tokens; // [batch, pos]
    Padding pad;
    Logits logits;
    std::unique_ptr<Transformer> net;
    if (from_stream) {
        if (!opt.prompt.text.empty() || !opt.prompt.file.empty() || !opt.prompt.tokens_file.empty())
            throw UsageError("--from: give no text, -f or --tokens with it");
        if (opt.context || opt.stride)
            throw UsageError("--context and --stride are for text and tokens, not --from");
        require_input(opt.from);
        check_not_same_file(opt.from, opt.common.output);
        in = read_activations(opt.from, true, cfg.d_model);
        check_model(in, model.model_id(), opt.common.model);
        tokens = in.tokens;
        pad = in.pad;
        logits = logits_of_stream(in, model, *be);
    } else {
        Prompt p = read_prompt(opt.prompt, model, tok);
        tokens = p.tokens;
        pad = p.pad;
        for (int64_t i = 0; i < tokens.numel(); ++i)
            if (tokens.i32()[i] < 0 || tokens.i32()[i] >= V)
                throw ShapeError("token id " + std::to_string(tokens.i32()[i]) +
                                 " is outside the vocabulary");
        net = std::make_unique<Transformer>(model.load_all(*be), *be);
        logits = logits_of_tokens(tokens, pad, *net, context, stride,
                                  !opt.common.quiet && isatty(STDERR_FILENO));
    }
    const int64_t B = tokens.dim(0), T = tokens.dim(1);
    if (T == 0) throw ShapeError("nothing to score: no tokens");
    int64_t n_real = 0; // tokens that are not pads
    for (int64_t b = 0; b < B; ++b)
        n_real += pad.length(b);

    // Each token's log-probability given the ones before it (a sequence's first: none; pads:
    // NaN), from the distribution of the position before; every position's log-probabilities
    // [b, t, vocab], kept only for the file (-o) and the KL (4 bytes x pos x vocab).
    const bool to_file = !opt.common.output.empty() && opt.common.output != "-";
    const bool keep_dists = to_file || !opt.kl_base.empty();
    Tensor next_lp = keep_dists ? Tensor::zeros({B, T, V}) : Tensor();
    Tensor logprob = Tensor::zeros({B, T}), entropy = Tensor::zeros({B, T});
    std::fill_n(logprob.f32(), B * T, std::numeric_limits<float>::quiet_NaN());
    std::fill_n(entropy.f32(), B * T, std::numeric_limits<float>::quiet_NaN());
    Tensor rank = Tensor::zeros({B, T}, DType::I32);
    std::vector<double> row(V);
    double total_nats = 0;
    int64_t scored = 0, bytes = 0, chars = 0;
    for (int64_t b = 0; b < B; ++b) {
        std::string text;
        for (int64_t t = 0; t < T; ++t) {
            const float* l = logits.values.f32() + (b * T + t) * V;
            const double h = log_softmax(l, V, row.data());
            if (keep_dists)
                for (int64_t v = 0; v < V; ++v)
                    next_lp.f32()[(b * T + t) * V + v] = static_cast<float>(row[v]);
            // (not a pad, nor a window's first token, which has nothing before it there)
            if (t + 1 >= T || !logits.scored[b * T + t + 1]) continue;
            const int32_t next = tokens.i32()[b * T + t + 1];
            logprob.f32()[b * T + t + 1] = static_cast<float>(row[next]);
            entropy.f32()[b * T + t + 1] = static_cast<float>(h);
            rank.i32()[b * T + t + 1] = static_cast<int32_t>(token_rank(l, V, next));
            total_nats -= row[next];
            ++scored;
            text += tok.token_bytes(next);
        }
        bytes += static_cast<int64_t>(text.size());
        chars += utf8_char_count(text);
    }
    const double mean = scored ? total_nats / scored : kNaN;

    // The answer after a position, and the foil.
    std::vector<AnswerScore> answers;
    std::vector<int64_t> at; // the position in each sequence, an index into [pos]
    if (!opt.answer.empty()) {
        at = position_in_each(pad, opt.position, "--position");
        const std::vector<int32_t> ans = encode_answer(tok, opt.answer, "--answer");
        const std::vector<int32_t> foil =
            opt.foil.empty() ? std::vector<int32_t>{} : encode_answer(tok, opt.foil, "--foil");
        if (from_stream && ans.size() > 1)
            throw UsageError("--answer '" + opt.answer + "' is " + std::to_string(ans.size()) +
                             " tokens; from a stream (--from) only a one-token answer can be "
                             "scored (give the text or tokens to score all of them)");
        for (int64_t b = 0; b < B; ++b) {
            AnswerScore a;
            const int64_t pos = at[b];
            const float* l = logits.values.f32() + (b * T + pos) * V;
            a.rank = token_rank(l, V, ans[0]);
            log_softmax(l, V, row.data());
            a.logprob = row[ans[0]];
            if (!foil.empty()) a.logit_diff = static_cast<double>(l[ans[0]]) - l[foil[0]];
            if (ans.size() > 1) { // the rest teacher-forced: the model on prompt + answer
                const int64_t first = pad.begin(b); // its real tokens up to pos, then the answer
                std::vector<int32_t> seq(tokens.i32() + b * T + first,
                                         tokens.i32() + b * T + pos + 1);
                seq.insert(seq.end(), ans.begin(), ans.end());
                const int64_t n = std::min<int64_t>(static_cast<int64_t>(seq.size()), context);
                const int64_t off = static_cast<int64_t>(seq.size()) - n;
                Tensor ids = Tensor::zeros({1, n}, DType::I32);
                std::memcpy(ids.i32(), seq.data() + off, n * sizeof(int32_t));
                const Tensor out = net->logits(ids); // [1, n, vocab]
                a.logprob = 0;
                for (size_t k = 0; k < ans.size(); ++k) {
                    const int64_t p =
                        pos - first + static_cast<int64_t>(k) - off; // predicts ans[k]
                    if (p < 0)
                        throw UsageError("--answer: prompt and answer exceed --context " +
                                         std::to_string(context));
                    log_softmax(out.f32() + p * V, V, row.data());
                    a.logprob += row[ans[k]];
                }
            }
            answers.push_back(a);
        }
    }

    // The KL divergence from a base run's distributions, per position.
    std::vector<double> kl;
    double kl_mean = kNaN, kl_max = kNaN;
    if (!opt.kl_base.empty()) {
        Activations base = read_activations(opt.kl_base, false);
        check_model(base, model.model_id(), opt.common.model);
        const std::string where = base.file.name() + ":/score/next_logprobs";
        if (!base.file.exists("/score/next_logprobs"))
            throw FormatError(where + ": not found (write the base with score -o)");
        const Tensor blp = base.file.read_f32("/score/next_logprobs", 3);
        if (blp.shape() != next_lp.shape())
            throw ShapeError(where + ": shape " + shape_str(blp.shape()) + ", but this run's is " +
                             shape_str(next_lp.shape()));
        if (base.pad.padded() != pad.padded() ||
            (pad.padded() &&
             std::memcmp(base.pad.mask().i32(), pad.mask().i32(), B * T * sizeof(int32_t)) != 0))
            throw ShapeError(base.file.name() + ":/mask: the base's padding is not this run's");
        // Over every real token (a pad's distribution means nothing: NaN in the list).
        kl_mean = 0;
        kl_max = 0;
        for (int64_t b = 0; b < B; ++b)
            for (int64_t t = 0; t < T; ++t) {
                const int64_t r = b * T + t;
                if (!pad.real(b, t)) {
                    kl.push_back(kNaN);
                    continue;
                }
                kl.push_back(kl_divergence(blp.f32() + r * V, next_lp.f32() + r * V, V));
                kl_mean += kl.back();
                kl_max = std::max(kl_max, kl.back());
            }
        kl_mean /= static_cast<double>(n_real);
    }

    // The file: tokens (a tokens file for the next run), the scores, and every position's
    // log-probabilities (what a later --kl-base reads).
    if (to_file) {
        H5Output out(opt.common.output);
        H5File& f = out.file();
        const std::string history = history_line(opt.common, be->describe());
        std::vector<std::string> text(tokens.numel());
        for (int64_t i = 0; i < tokens.numel(); ++i)
            text[i] = tok.token_text(tokens.i32()[i]);
        write_tokens(f, model.model_id(), tokens, text,
                     (from_stream && !in.history.empty() ? in.history + "\n" : "") + history, pad);
        f.write("/score/logprob", logprob);
        if (std::find(opt.save.begin(), opt.save.end(), "entropy") != opt.save.end())
            f.write("/score/entropy", entropy);
        if (std::find(opt.save.begin(), opt.save.end(), "rank") != opt.save.end())
            f.write("/score/rank", rank);
        f.write("/score/next_logprobs", next_lp);
        f.set_attr("/score", "context", from_stream ? T : context);
        f.set_attr("/score", "stride", from_stream ? T : stride);
        f.set_attr("/score", "tokens_scored", scored);
        f.set_attr("/score", "mean_nats_per_token", mean);
        out.commit();
    }

    // What it prints.
    if (opt.value) {
        for (int64_t b = 0; b < B; ++b) {
            const double v = !opt.foil.empty()     ? answers[b].logit_diff
                             : !opt.answer.empty() ? answers[b].logprob
                             : !kl.empty()         ? kl_mean
                                                   : mean;
            std::printf("%s\n", num(v).c_str());
            if (opt.answer.empty()) break; // one summary figure
        }
        return;
    }
    const double ln2 = std::log(2.0);
    if (opt.json) {
        nlohmann::ordered_json j;
        j["tokens"] = T;
        j["batch"] = B;
        j["context"] = from_stream ? T : context;
        j["stride"] = from_stream ? T : stride;
        j["tokens_scored"] = scored;
        j["mean_nats_per_token"] = mean;
        j["perplexity"] = std::exp(mean);
        j["bits_per_byte"] = bytes ? total_nats / ln2 / bytes : kNaN;
        j["nats_per_char"] = chars ? total_nats / chars : kNaN;
        j["scored_bytes"] = bytes;
        j["scored_chars"] = chars;
        if (!answers.empty()) {
            j["answer"] = opt.answer;
            j["foil"] = opt.foil;
            j["position"] = opt.position;
            nlohmann::ordered_json rows = nlohmann::ordered_json::array();
            for (size_t b = 0; b < answers.size(); ++b) {
                const AnswerScore& a = answers[b];
                rows.push_back({{"position", at[b]},
                                {"logprob", a.logprob},
                                {"first_token_rank", a.rank},
                                {"logit_diff", a.logit_diff}});
            }
            j["answers"] = rows;
        }
        if (!kl.empty()) j["kl"] = {{"mean", kl_mean}, {"max", kl_max}, {"per_position", kl}};
        std::cout << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
        return;
    }
    std::printf("tokens scored       %lld of %lld (not the first, which has nothing before it, "
                "nor, with stride = context, each window's first); context %lld, stride %lld\n",
                static_cast<long long>(scored), static_cast<long long>(n_real),
                static_cast<long long>(from_stream ? T : context),
                static_cast<long long>(from_stream ? T : stride));
    std::printf("mean nats/token     %.6f\n", mean);
    std::printf("perplexity          %.6g  (exp of the mean nats/token)\n", std::exp(mean));
    std::printf("bits per byte       %.6f  (total nats / ln 2 / %lld UTF-8 bytes scored)\n",
                bytes ? total_nats / ln2 / bytes : kNaN, static_cast<long long>(bytes));
    std::printf("nats per character  %.6f  (total nats / %lld characters scored)\n",
                chars ? total_nats / chars : kNaN, static_cast<long long>(chars));
    for (size_t b = 0; b < answers.size(); ++b) {
        std::printf("answer              batch %zu after position %lld: log p %.6f nats, first "
                    "token rank %lld",
                    b, static_cast<long long>(at[b]), answers[b].logprob,
                    static_cast<long long>(answers[b].rank));
        if (!opt.foil.empty())
            std::printf(", logit difference from the foil %.6f", answers[b].logit_diff);
        std::printf("\n");
    }
    if (!kl.empty())
        std::printf("KL from the base    mean %.6g nats, max %.6g nats over %lld positions\n",
                    kl_mean, kl_max, static_cast<long long>(n_real));
}

} // namespace qkv

#include "commands/trainer.hpp"

#include "qkv/base/errors.hpp"
#include "qkv/base/rng.hpp"
#include "qkv/base/thread_pool.hpp"
#include "qkv/files/checkpoint.hpp"
#include "qkv/files/h5file.hpp"
#include "qkv/files/model_file.hpp"
#include "qkv/tokenizer/tokenizer.hpp"
#include "qkv/train/adamw.hpp"
#include "qkv/train/train_model.hpp"

#include <chrono>
#include <cmath>
#include <csignal>
#include <cstring>
#include <iomanip>
#include <iostream>
#include <limits>
#include <sstream>
#include <unistd.h>

namespace qkv {

namespace {

// ------------------------------------------------------------------ data

struct Corpus {
    std::vector<int32_t> train, val;
    std::string val_text;
    uint64_t hash = 0;
    int64_t bytes = 0;
};

uint64_t fnv1a(const std::string& s) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (unsigned char ch : s)
        h = (h ^ ch) * 0x100000001b3ULL;
    return h;
}

// The last val_fraction of the text (from a character boundary) is held out.
Corpus load_corpus(const std::string& path, const Tokenizer& tok, double val_fraction) {
    if (path.empty()) throw UsageError("-f: a training text is required");
    require_input(path);
    std::vector<char> raw = read_all(path);
    Corpus c;
    std::string text(raw.begin(), raw.end());
    c.hash = fnv1a(text);
    c.bytes = static_cast<int64_t>(text.size());
    size_t cut = static_cast<size_t>(static_cast<double>(text.size()) * (1.0 - val_fraction));
    while (cut < text.size() && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80)
        ++cut;
    const std::string where = is_stdio(path) ? "<stdin>" : path;
    try {
        c.train = tok.encode(std::string_view(text).substr(0, cut));
        c.val_text = text.substr(cut);
        c.val = tok.encode(c.val_text);
    } catch (const FormatError& e) {
        throw FormatError(where + ": " + e.what());
    }
    return c;
}

// One window at s: the inputs x = tokens[s, s+pos) and the targets y = tokens[s+1, s+pos+1).
void take_window(const std::vector<int32_t>& tokens, int64_t s, int64_t pos, int32_t* x,
                 int32_t* y) {
    std::memcpy(x, tokens.data() + s, pos * sizeof(int32_t));
    std::memcpy(y, tokens.data() + s + 1, pos * sizeof(int32_t));
}

// A batch of windows at random starts. The starts depend only on the seed and the step, so a
// resumed run draws the same batches.
void sample_batch(const std::vector<int32_t>& tokens, int64_t batch, int64_t pos, uint64_t seed,
                  int64_t step, int32_t* x, int32_t* y) {
    Rng rng(seed ^ (0x9E3779B97F4A7C15ULL * static_cast<uint64_t>(step + 1)));
    const int64_t starts = static_cast<int64_t>(tokens.size()) - pos;
    for (int64_t b = 0; b < batch; ++b) {
        const int64_t s = static_cast<int64_t>(rng.uniform() * static_cast<double>(starts));
        take_window(tokens, s, pos, x + b * pos, y + b * pos);
    }
}

// ------------------------------------------------------------------ signals

volatile std::sig_atomic_t g_stop_signal = 0;
extern "C" void on_stop_signal(int sig) {
    g_stop_signal = sig;
}

void catch_stop_signals() {
    struct sigaction sa;
    std::memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
}

// Holds SIGINT and SIGTERM back while a checkpoint is written, so the write always completes;
// a signal that arrives meanwhile is delivered to on_stop_signal afterwards.
class SignalsHeld {
  public:
    SignalsHeld() {
        sigemptyset(&set_);
        sigaddset(&set_, SIGINT);
        sigaddset(&set_, SIGTERM);
        sigprocmask(SIG_BLOCK, &set_, nullptr);
    }
    ~SignalsHeld() {
        catch_stop_signals(); // the output writer installed its own handlers
        sigprocmask(SIG_UNBLOCK, &set_, nullptr);
    }

  private:
    sigset_t set_;
};

// ------------------------------------------------------------------ the run

double eval_windows(Gpt& gpt, const std::vector<int32_t>& val, int64_t batch, int64_t pos,
                    int64_t windows, std::vector<int32_t>& x, std::vector<int32_t>& y) {
    const int64_t last = static_cast<int64_t>(val.size()) - pos - 1;
    double sum = 0;
    int64_t done = 0;
    while (done < windows) {
        const int64_t b = std::min(batch, windows - done);
        for (int64_t i = 0; i < b; ++i) {
            const int64_t w = done + i;
            const int64_t s = windows > 1 ? last * w / (windows - 1) : 0;
            take_window(val, s, pos, x.data() + i * pos, y.data() + i * pos);
        }
        sum += gpt.forward(x.data(), y.data(), b, pos, false) * b;
        done += b;
    }
    return sum / windows;
}

struct FullEval {
    double nats_per_token = 0, nats_per_char = 0;
    int64_t tokens = 0, chars = 0;
};

// Every held-out token after the first, predicted once: consecutive windows of pos tokens.
FullEval eval_all(Gpt& gpt, const Tokenizer& tok, const Corpus& corpus, int64_t batch, int64_t pos,
                  std::vector<int32_t>& x, std::vector<int32_t>& y) {
    const auto& val = corpus.val;
    const int64_t n = static_cast<int64_t>(val.size()) - 1; // predicted tokens
    double sum = 0;
    int64_t at = 0;
    while (at < n) {
        const int64_t full = std::min(batch, (n - at) / pos);
        const int64_t b = full > 0 ? full : 1, p = full > 0 ? pos : n - at;
        for (int64_t i = 0; i < b; ++i)
            take_window(val, at + i * p, p, x.data() + i * p, y.data() + i * p);
        gpt.forward(x.data(), y.data(), b, p, false);
        for (int64_t r = 0; r < b * p; ++r)
            sum += gpt.losses()[r];
        at += b * p;
    }
    FullEval e;
    e.tokens = n;
    e.chars = utf8_char_count(corpus.val_text) - utf8_char_count(tok.token_bytes(val[0]));
    e.nats_per_token = sum / static_cast<double>(n);
    e.nats_per_char = sum / static_cast<double>(e.chars);
    return e;
}

std::string clock_text(double secs) {
    const int64_t s = static_cast<int64_t>(secs + 0.5);
    std::ostringstream o;
    if (s >= 3600)
        o << s / 3600 << "h" << std::setw(2) << std::setfill('0') << (s / 60) % 60 << "m";
    else if (s >= 60)
        o << s / 60 << "m" << std::setw(2) << std::setfill('0') << s % 60 << "s";
    else
        o << s << "s";
    return o.str();
}

TrainSettings settings_from(const TrainOptions& o) {
    TrainSettings s{o.steps,        o.batch,        o.context,
                    o.warmup,       o.eval_every,   o.eval_iters,
                    o.save_every,   o.lr,           o.min_lr < 0 ? o.lr / 10 : o.min_lr,
                    o.weight_decay, o.beta1,        o.beta2,
                    o.grad_clip,    o.val_fraction, o.seed};
    return s;
}

void check_settings(const TrainSettings& s, const Config& c) {
    auto bad = [](const std::string& m) { throw UsageError(m); };
    if (s.steps < 1) bad("--steps must be at least 1");
    if (s.batch < 1 || s.batch > 4096) bad("--batch must be 1 to 4096");
    if (s.context < 2 || s.context > c.n_ctx)
        bad("--context must be 2 to the model's n_ctx (" + std::to_string(c.n_ctx) + ")");
    if (s.warmup < 0) bad("--warmup must not be negative");
    if (!(s.lr > 0) || !(s.min_lr >= 0) || s.min_lr > s.lr)
        bad("--lr must be > 0 and --min-lr 0 to --lr");
    if (!(s.weight_decay >= 0)) bad("--weight-decay must not be negative");
    if (!(s.beta1 >= 0 && s.beta1 < 1) || !(s.beta2 >= 0 && s.beta2 < 1))
        bad("--beta1 and --beta2 must be in [0, 1)");
    if (!(s.grad_clip >= 0)) bad("--grad-clip must not be negative (0: off)");
    if (!(s.val_fraction > 0 && s.val_fraction < 1)) bad("--val-fraction must be between 0 and 1");
    if (s.eval_every < 0 || s.eval_iters < 1 || s.save_every < 0)
        bad("--eval-every and --save-every must not be negative, --eval-iters at least 1");
}

} // namespace

void run_train(const TrainOptions& opt) {
    if (!opt.resume.empty() && !opt.common.model.empty())
        throw UsageError("give --model (start) or --resume (continue), not both");
    if (!opt.resume.empty() && !opt.settings_given.empty())
        throw UsageError("--resume continues with the checkpoint's settings; " +
                         opt.settings_given.front() + " cannot be changed");
    const std::string in = opt.resume.empty() ? opt.common.model : opt.resume;
    if (in.empty()) throw UsageError("--model: a model file to train is required (see model init)");
    if (is_stdio(in)) throw UsageError("train reads the model from a file, not standard input");
    if (opt.output == "-") throw UsageError("-o: train writes a file, not standard output");
    const std::string out = opt.output.empty() ? in : opt.output;
    if (!opt.corpus.empty()) check_not_same_file(opt.corpus, out);

    ModelFile model = ModelFile::open(in);
    const Config& c = model.config();
    const TokenizerData tok_data = model.load_tokenizer(); // read once: every checkpoint has it
    Tokenizer tok(tok_data);
    TrainState st;
    const bool resuming = !opt.resume.empty();
    if (!resuming) {
        st.s = settings_from(opt);
        if (st.s.context == 0) st.s.context = c.n_ctx;
    }
    const int threads = thread_count(opt.common);
    auto be = make_cpu_backend(threads);
    ThreadPool pool(threads);

    // Settings come from the checkpoint when resuming; read them before sizing buffers.
    if (resuming) st = read_checkpoint(model, Layout(c));
    TrainSettings& s = st.s;
    check_settings(s, c);
    Corpus corpus = load_corpus(opt.corpus, tok, s.val_fraction);
    if (resuming) {
        const std::string want = model.h5().attr_str("/train", "corpus_fnv1a");
        if (want != hex64(corpus.hash))
            throw UsageError(opt.corpus + ": not the text this checkpoint was trained on (fnv1a " +
                             hex64(corpus.hash) + ", the checkpoint's " + want + ")");
    }
    const int64_t B = s.batch, T = s.context;
    if (static_cast<int64_t>(corpus.train.size()) < T + 1)
        throw UsageError("the training split has " + std::to_string(corpus.train.size()) +
                         " tokens, fewer than --context + 1 (" + std::to_string(T + 1) + ")");
    if (corpus.val.size() < 2)
        throw UsageError("the held-out split has fewer than 2 tokens: more text or a larger "
                         "--val-fraction");
    const int64_t T_val = std::min<int64_t>(T, static_cast<int64_t>(corpus.val.size()) - 1);

    Gpt gpt(c, *be, pool, B, T);
    read_params(model, gpt.layout(), gpt.params().data(), gpt.b_U());
    const int64_t n_params = gpt.layout().total;
    if (!resuming) {
        st.m.assign(n_params, 0.0f);
        st.v.assign(n_params, 0.0f);
    }
    std::vector<int32_t> x(B * T), y(B * T);
    const bool talk = !opt.common.quiet;

    if (opt.eval_only) {
        FullEval e = eval_all(gpt, tok, corpus, B, T_val, x, y);
        std::cout << std::setprecision(6) << "val_nats_per_token " << e.nats_per_token
                  << "\nval_nats_per_char " << e.nats_per_char << "\nval_tokens " << e.tokens
                  << "\nval_chars " << e.chars << '\n';
        return;
    }
    if (!opt.dump_grads.empty()) {
        sample_batch(corpus.train, B, T, s.seed, st.step, x.data(), y.data());
        std::fill(gpt.grads().begin(), gpt.grads().end(), 0.0f);
        const double loss = gpt.forward(x.data(), y.data(), B, T, true);
        H5Output o(opt.dump_grads);
        H5File& f = o.file();
        f.set_attr("/", "format", std::string("qkv-gradients"));
        f.set_attr("/", "model_id", model.model_id());
        f.set_attr("/", "loss", loss);
        f.set_attr("/", "step", st.step);
        Tensor tx = Tensor::zeros({B, T}, DType::I32), ty = Tensor::zeros({B, T}, DType::I32);
        std::memcpy(tx.i32(), x.data(), x.size() * sizeof(int32_t));
        std::memcpy(ty.i32(), y.data(), y.size() * sizeof(int32_t));
        f.write("/batch/x", tx);
        f.write("/batch/y", ty);
        for (const ParamInfo& p : gpt.layout().params)
            f.write(p.name, param_tensor(p, gpt.grads().data()));
        o.commit();
        if (talk)
            std::cerr << "train: loss " << loss << "; gradients written to " << opt.dump_grads
                      << '\n';
        return;
    }

    const std::string history = history_line(opt.common, be->describe());
    const CorpusInfo info{corpus.hash, corpus.bytes, static_cast<int64_t>(corpus.train.size()),
                          static_cast<int64_t>(corpus.val.size())};
    const auto t0 = std::chrono::steady_clock::now();
    auto elapsed = [&] {
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    };
    // run_seconds: this run's training time (earlier runs' is in st.seconds).
    auto save = [&](double run_seconds,
                    const std::vector<std::pair<std::string, double>>& final_stats) {
        SignalsHeld held; // the write always completes; a signal meanwhile is seen afterwards
        write_checkpoint(out, model, tok_data, gpt, st, st.seconds + run_seconds, info, history,
                         final_stats);
    };
    LrSchedule sched{s.lr, s.min_lr, s.warmup, s.steps};
    AdamWConfig adam{s.beta1, s.beta2, 1e-8, s.weight_decay};
    const bool tty = talk && isatty(STDERR_FILENO);
    if (talk)
        std::cerr << "train: " << in << " (" << n_params << " parameters), " << corpus.train.size()
                  << " training and " << corpus.val.size() << " held-out tokens; " << B << " x "
                  << T << " tokens a step, " << (resuming ? "resuming at step " : "from step ")
                  << st.step << " of " << s.steps << '\n';
    g_stop_signal = 0;
    catch_stop_signals();
    const int64_t first = st.step;
    float last_val = std::numeric_limits<float>::quiet_NaN();
    for (int64_t it = st.step; it < s.steps; ++it) {
        const double lr = sched.at(it);
        sample_batch(corpus.train, B, T, s.seed, it, x.data(), y.data());
        std::fill(gpt.grads().begin(), gpt.grads().end(), 0.0f);
        const double loss = gpt.forward(x.data(), y.data(), B, T, true);
        if (!std::isfinite(loss))
            throw Error("the training loss is " + std::to_string(loss) + " at step " +
                        std::to_string(it) + ": lower --lr (the last checkpoint is unchanged)");
        clip_grad_norm(gpt.grads().data(), n_params, s.grad_clip);
        for (const auto& p : gpt.layout().params)
            adamw_update(adam, lr, it + 1, p.decay, gpt.params().data() + p.offset,
                         gpt.grads().data() + p.offset, st.m.data() + p.offset,
                         st.v.data() + p.offset, shape_numel(p.shape));
        st.step = it + 1;
        float val = std::numeric_limits<float>::quiet_NaN();
        const bool eval_now =
            s.eval_every > 0 && (st.step % s.eval_every == 0 || st.step == s.steps);
        if (eval_now)
            last_val = val =
                static_cast<float>(eval_windows(gpt, corpus.val, B, T_val, s.eval_iters * B, x, y));
        st.log.step.push_back(static_cast<int32_t>(it));
        st.log.lr.push_back(static_cast<float>(lr));
        st.log.train_loss.push_back(static_cast<float>(loss));
        st.log.val_loss.push_back(val);

        const double secs = elapsed();
        const double tok_s = static_cast<double>((st.step - first) * B * T) / secs;
        if (tty || (talk && eval_now)) {
            std::ostringstream line;
            line << "train: step " << st.step << "/" << s.steps << "  loss " << std::fixed
                 << std::setprecision(4) << loss << "  val "
                 << (std::isnan(last_val) ? std::string("-")
                                          : std::to_string(last_val).substr(0, 6))
                 << "  lr " << std::scientific << std::setprecision(2) << lr << std::fixed << "  "
                 << std::setprecision(0) << tok_s << " tok/s  "
                 << clock_text(secs / static_cast<double>(st.step - first) *
                               static_cast<double>(s.steps - st.step))
                 << " left";
            std::cerr << (tty ? "\r\033[K" : "") << line.str() << (tty && !eval_now ? "" : "\n")
                      << std::flush;
        }
        if (!g_stop_signal && s.save_every > 0 && st.step % s.save_every == 0 && st.step < s.steps)
            save(secs, {});
        if (g_stop_signal) { // (also when it arrived while the checkpoint above was written)
            const int sig = g_stop_signal;
            save(elapsed(), {});
            if (tty) std::cerr << '\n';
            throw Interrupted(std::string("stopped by ") + (sig == SIGINT ? "SIGINT" : "SIGTERM") +
                                  " after step " + std::to_string(st.step) + "; checkpoint " + out +
                                  " (continue with: train --resume " + out + " -f " + opt.corpus +
                                  ")",
                              sig);
        }
    }
    if (tty) std::cerr << '\n';
    const double secs = elapsed();
    FullEval e = eval_all(gpt, tok, corpus, B, T_val, x, y);
    const double tok_s = static_cast<double>((st.step - first) * B * T) / std::max(secs, 1e-9);
    save(secs, {{"val_nats_per_token", e.nats_per_token},
                {"val_nats_per_char", e.nats_per_char},
                {"val_chars", static_cast<double>(e.chars)},
                {"tokens_per_s", tok_s}});
    if (talk)
        std::cerr << "train: " << st.step << " steps, " << clock_text(st.seconds + secs)
                  << " in all, " << std::fixed << std::setprecision(0) << tok_s
                  << " tok/s; held-out loss " << std::setprecision(4) << e.nats_per_token
                  << " nats/token = " << e.nats_per_char << " nats/char (" << e.tokens
                  << " tokens, " << e.chars << " characters); wrote " << out << '\n';
}

} // namespace qkv

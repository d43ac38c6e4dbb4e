#include "trainer.hpp"

#include "adamw.hpp"
#include "backprop.hpp"
#include "errors.hpp"
#include "h5file.hpp"
#include "model.hpp"
#include "rng.hpp"
#include "thread_pool.hpp"
#include "tokenizer.hpp"

#include <chrono>
#include <cmath>
#include <csignal>
#include <cstring>
#include <iomanip>
#include <iostream>
#include <limits>
#include <sstream>
#include <thread>
#include <unistd.h>

namespace qkv {

namespace {

// ------------------------------------------------------------------ parameters

// Every trained tensor in one flat buffer (so the optimizer and the gradient norm are single
// loops), in the layout the forward pass uses: W_Q, W_K, W_V of all heads side by side.
struct ParamInfo {
    std::string name; // training-layout name
    Shape shape;
    int64_t offset = 0;
    bool decay = false; // weight decay: matrices and embeddings, not biases or LayerNorm
};

struct LayerOffsets {
    int64_t ln1_w, ln1_b, W_QKV, b_QKV, W_O, b_O, ln2_w, ln2_b, W_in, b_in, W_out, b_out;
};

struct Layout {
    std::vector<ParamInfo> params;
    int64_t total = 0;
    int64_t W_E = 0, W_pos = 0, lnf_w = 0, lnf_b = 0;
    std::vector<LayerOffsets> layers;

    explicit Layout(const Config& c) {
        const int64_t D = c.d_model, A = c.n_heads * c.d_head, M = c.d_mlp;
        auto add = [&](const std::string& name, const Shape& s, bool decay) {
            params.push_back({name, s, total, decay});
            total += shape_numel(s);
            return params.back().offset;
        };
        W_E = add("/embed/W_E", {c.vocab_size, D}, true);
        W_pos = add("/pos_embed/W_pos", {c.n_ctx, D}, true);
        for (int64_t l = 0; l < c.n_layers; ++l) {
            const std::string g = "/blocks/" + std::to_string(l);
            LayerOffsets o;
            o.ln1_w = add(g + "/ln1/w", {D}, false);
            o.ln1_b = add(g + "/ln1/b", {D}, false);
            o.W_QKV = add(g + "/attn/W_QKV", {D, 3 * A}, true);
            o.b_QKV = add(g + "/attn/b_QKV", {3 * A}, false);
            o.W_O = add(g + "/attn/W_O", {A, D}, true);
            o.b_O = add(g + "/attn/b_O", {D}, false);
            o.ln2_w = add(g + "/ln2/w", {D}, false);
            o.ln2_b = add(g + "/ln2/b", {D}, false);
            o.W_in = add(g + "/mlp/W_in", {D, M}, true);
            o.b_in = add(g + "/mlp/b_in", {M}, false);
            o.W_out = add(g + "/mlp/W_out", {M, D}, true);
            o.b_out = add(g + "/mlp/b_out", {D}, false);
            layers.push_back(o);
        }
        lnf_w = add("/ln_final/w", {D}, false);
        lnf_b = add("/ln_final/b", {D}, false);
    }
};

// Writes a flat buffer (weights or gradients) under the model file's names and shapes:
// per-head W_Q/W_K/W_V [head, d_model, d_head], b_Q/b_K/b_V [head, d_head], W_O
// [head, d_head, d_model]. put(name, tensor).
template <class Put>
void put_file_layout(const Config& c, const Layout& lay, const float* flat, Put put) {
    const int64_t D = c.d_model, H = c.n_heads, dh = c.d_head, A = H * dh;
    for (const auto& p : lay.params) {
        const float* src = flat + p.offset;
        const std::string& n = p.name;
        if (n.size() > 6 && n.compare(n.size() - 6, 6, "/W_QKV") == 0) {
            const std::string g = n.substr(0, n.size() - 5);
            for (int x = 0; x < 3; ++x) {
                Tensor t = Tensor::zeros({H, D, dh});
                for (int64_t h = 0; h < H; ++h)
                    for (int64_t d = 0; d < D; ++d)
                        for (int64_t j = 0; j < dh; ++j)
                            t.f32()[(h * D + d) * dh + j] = src[d * 3 * A + x * A + h * dh + j];
                put(g + "W_" + "QKV"[x], t);
            }
        } else if (n.size() > 6 && n.compare(n.size() - 6, 6, "/b_QKV") == 0) {
            const std::string g = n.substr(0, n.size() - 5);
            for (int x = 0; x < 3; ++x) {
                Tensor t = Tensor::zeros({H, dh});
                std::memcpy(t.f32(), src + x * A, A * sizeof(float));
                put(g + "b_" + "QKV"[x], t);
            }
        } else {
            Shape s = p.shape;
            if (n.size() > 4 && n.compare(n.size() - 4, 4, "/W_O") == 0) s = {H, dh, D};
            Tensor t = Tensor::zeros(s);
            std::memcpy(t.f32(), src, t.numel() * sizeof(float));
            put(n, t);
        }
    }
}

// Reads a model file's weights into the flat buffer; b_U (not trained) separately.
void load_params(const ModelFile& m, const Layout& lay, float* flat, std::vector<float>& b_U) {
    const Config& c = m.config();
    auto be = make_cpu_backend(1);
    auto put = [&](int64_t off, const Tensor& t) {
        std::memcpy(flat + off, t.f32(), t.numel() * sizeof(float));
    };
    EmbedWeights e = m.load_embed(*be);
    put(lay.W_E, e.W_E);
    put(lay.W_pos, e.W_pos);
    for (int64_t l = 0; l < c.n_layers; ++l) {
        const LayerOffsets& o = lay.layers[l];
        const std::string g = "/blocks/" + std::to_string(l);
        LayerNormWeights ln1 = m.load_ln(g + "/ln1", *be), ln2 = m.load_ln(g + "/ln2", *be);
        AttentionWeights a = m.load_attention(l, *be);
        MlpWeights p = m.load_mlp(l, *be);
        put(o.ln1_w, ln1.w);
        put(o.ln1_b, ln1.b);
        put(o.W_QKV, a.W_QKV);
        put(o.b_QKV, a.b_QKV);
        put(o.W_O, a.W_O);
        put(o.b_O, a.b_O);
        put(o.ln2_w, ln2.w);
        put(o.ln2_b, ln2.b);
        put(o.W_in, p.W_in);
        put(o.b_in, p.b_in);
        put(o.W_out, p.W_out);
        put(o.b_out, p.b_out);
    }
    UnembedWeights u = m.load_unembed(*be);
    put(lay.lnf_w, u.ln_final.w);
    put(lay.lnf_b, u.ln_final.b);
    const int64_t V = c.vocab_size, D = c.d_model;
    for (int64_t v = 0; v < V; ++v)
        for (int64_t d = 0; d < D; ++d)
            if (u.W_U.f32()[d * V + v] != flat[lay.W_E + v * D + d])
                throw FormatError(m.path() + ":/unembed/W_U: train ties the unembedding to W_E (as "
                                  "GPT-2 does), but this model's W_U is not W_E transposed");
    b_U.assign(u.b_U.f32(), u.b_U.f32() + V);
}

// ------------------------------------------------------------------ the model, trainable

class Gpt {
  public:
    Gpt(const Config& c, Backend& be, ThreadPool& pool, int64_t batch, int64_t pos)
        : cfg_(c), lay_(c), ctx_{be, pool}, B_(batch), T_(pos) {
        const int64_t BT = B_ * T_, D = c.d_model, A = c.n_heads * c.d_head, M = c.d_mlp,
                      L = c.n_layers;
        params_.assign(lay_.total, 0.0f);
        grads_.assign(lay_.total, 0.0f);
        res_.assign((2 * L + 1) * BT * D, 0.0f);       // residual stream [2L+1, batch, pos, d_model]
        ln_.assign((2 * L + 1) * BT * D, 0.0f);        // LayerNorm outputs
        ln_stats_.assign((2 * L + 1) * 2 * BT, 0.0f);  // mean, rstd [rows] of each
        qkv_.assign(L * BT * 3 * A, 0.0f);             // [layer, batch, pos, 3, head, d_head]
        pattern_.assign(L * B_ * c.n_heads * T_ * T_, 0.0f); // [layer, batch, head, pos, pos]
        z_.assign(L * BT * A, 0.0f);                   // [layer, batch, pos, head, d_head]
        pre_.assign(L * BT * M, 0.0f);                 // MLP pre-activation [layer, batch, pos, d_mlp]
        post_.assign(L * BT * M, 0.0f);                // after GELU
        logits_.assign(BT * c.vocab_size, 0.0f);       // [batch, pos, vocab]
        losses_.assign(BT, 0.0f);
        dres_.assign(BT * D, 0.0f);
        dln_.assign(BT * D, 0.0f);
        dqkv_.assign(BT * 3 * A, 0.0f);
        dz_.assign(BT * A, 0.0f);
        dpost_.assign(BT * M, 0.0f);
        dpre_.assign(BT * M, 0.0f);
    }
    const Layout& layout() const { return lay_; }
    std::vector<float>& params() { return params_; }
    std::vector<float>& grads() { return grads_; }
    std::vector<float>& b_U() { return b_U_; }
    const std::vector<float>& losses() const { return losses_; }

    // Mean cross-entropy of predicting y from x (both [batch, pos], batch <= B, pos <= T);
    // with grad, the gradients of every parameter are added into grads().
    double forward(const int32_t* x, const int32_t* y, int64_t batch, int64_t pos, bool grad) {
        const Config& c = cfg_;
        const int64_t BT = batch * pos, D = c.d_model, H = c.n_heads, dh = c.d_head, A = H * dh,
                      M = c.d_mlp, V = c.vocab_size, L = c.n_layers;
        const float eps = static_cast<float>(c.ln_eps);
        float* P = params_.data();
        auto res = [&](int64_t i) { return res_.data() + i * B_ * T_ * D; };
        auto ln = [&](int64_t i) { return ln_.data() + i * B_ * T_ * D; };
        auto mean = [&](int64_t i) { return ln_stats_.data() + i * 2 * B_ * T_; };
        auto rstd = [&](int64_t i) { return mean(i) + B_ * T_; };
        auto qkv = [&](int64_t l) { return qkv_.data() + l * B_ * T_ * 3 * A; };
        auto pattern = [&](int64_t l) { return pattern_.data() + l * B_ * H * T_ * T_; };
        auto z = [&](int64_t l) { return z_.data() + l * B_ * T_ * A; };
        auto pre = [&](int64_t l) { return pre_.data() + l * B_ * T_ * M; };
        auto post = [&](int64_t l) { return post_.data() + l * B_ * T_ * M; };

        bp::embed_forward(x, P + lay_.W_E, P + lay_.W_pos, batch, pos, D, res(0));
        for (int64_t l = 0; l < L; ++l) {
            const LayerOffsets& o = lay_.layers[l];
            // attention: LayerNorm, queries/keys/values of all heads in one product, the
            // pattern-weighted values z, then every head's change through W_O added to the stream
            bp::layer_norm_forward(ctx_, res(2 * l), P + o.ln1_w, P + o.ln1_b, eps, BT, D, ln(2 * l),
                                   mean(2 * l), rstd(2 * l));
            bp::linear_forward(ctx_, ln(2 * l), P + o.W_QKV, P + o.b_QKV, BT, D, 3 * A, qkv(l));
            bp::attention_forward(ctx_, qkv(l), batch, pos, H, dh, pattern(l), z(l));
            std::memcpy(res(2 * l + 1), res(2 * l), BT * D * sizeof(float));
            add_linear(z(l), P + o.W_O, P + o.b_O, BT, A, D, res(2 * l + 1));
            // MLP: LayerNorm, W_in, GELU, W_out added to the stream
            bp::layer_norm_forward(ctx_, res(2 * l + 1), P + o.ln2_w, P + o.ln2_b, eps, BT, D,
                                   ln(2 * l + 1), mean(2 * l + 1), rstd(2 * l + 1));
            bp::linear_forward(ctx_, ln(2 * l + 1), P + o.W_in, P + o.b_in, BT, D, M, pre(l));
            bp::gelu_forward(ctx_, pre(l), post(l), BT * M);
            std::memcpy(res(2 * l + 2), res(2 * l + 1), BT * D * sizeof(float));
            add_linear(post(l), P + o.W_out, P + o.b_out, BT, M, D, res(2 * l + 2));
        }
        // unembedding, tied: logits = LayerNorm(resid) W_E^T + b_U
        bp::layer_norm_forward(ctx_, res(2 * L), P + lay_.lnf_w, P + lay_.lnf_b, eps, BT, D,
                               ln(2 * L), mean(2 * L), rstd(2 * L));
        float* logits = logits_.data();
        ctx_.pool.run(BT, 16, [&](int64_t r0, int64_t r1) {
            for (int64_t r = r0; r < r1; ++r) std::memcpy(logits + r * V, b_U_.data(), V * sizeof(float));
        });
        ctx_.be.gemm(false, true, BT, V, D, 1.0f, ln(2 * L), D, P + lay_.W_E, D, 1.0f, logits, V);
        const double loss = bp::cross_entropy(ctx_, logits, y, BT, V, losses_.data(), grad);
        if (!grad) return loss;

        // ---- backward, last layer first; dres holds d loss / d residual stream
        float* G = grads_.data();
        float* dres = dres_.data();
        float* dln = dln_.data();
        ctx_.be.gemm(false, false, BT, D, V, 1.0f, logits, V, P + lay_.W_E, D, 0.0f, dln, D);
        ctx_.be.gemm(true, false, V, D, BT, 1.0f, logits, V, ln(2 * L), D, 1.0f, G + lay_.W_E, D);
        std::memset(dres, 0, BT * D * sizeof(float));
        bp::layer_norm_backward(ctx_, dln, res(2 * L), P + lay_.lnf_w, mean(2 * L), rstd(2 * L), BT,
                                D, dres, G + lay_.lnf_w, G + lay_.lnf_b);
        for (int64_t l = L - 1; l >= 0; --l) {
            const LayerOffsets& o = lay_.layers[l];
            // MLP
            std::memset(dpost_.data(), 0, BT * M * sizeof(float));
            bp::linear_backward(ctx_, dres, post(l), P + o.W_out, BT, M, D, dpost_.data(),
                                G + o.W_out, G + o.b_out);
            std::memset(dpre_.data(), 0, BT * M * sizeof(float));
            bp::gelu_backward(ctx_, dpost_.data(), pre(l), dpre_.data(), BT * M);
            std::memset(dln, 0, BT * D * sizeof(float));
            bp::linear_backward(ctx_, dpre_.data(), ln(2 * l + 1), P + o.W_in, BT, D, M, dln,
                                G + o.W_in, G + o.b_in);
            bp::layer_norm_backward(ctx_, dln, res(2 * l + 1), P + o.ln2_w, mean(2 * l + 1),
                                    rstd(2 * l + 1), BT, D, dres, G + o.ln2_w, G + o.ln2_b);
            // attention
            std::memset(dz_.data(), 0, BT * A * sizeof(float));
            bp::linear_backward(ctx_, dres, z(l), P + o.W_O, BT, A, D, dz_.data(), G + o.W_O, G + o.b_O);
            std::memset(dqkv_.data(), 0, BT * 3 * A * sizeof(float));
            bp::attention_backward(ctx_, dz_.data(), qkv(l), pattern(l), batch, pos, H, dh,
                                   dqkv_.data());
            std::memset(dln, 0, BT * D * sizeof(float));
            bp::linear_backward(ctx_, dqkv_.data(), ln(2 * l), P + o.W_QKV, BT, D, 3 * A, dln,
                                G + o.W_QKV, G + o.b_QKV);
            bp::layer_norm_backward(ctx_, dln, res(2 * l), P + o.ln1_w, mean(2 * l), rstd(2 * l), BT,
                                    D, dres, G + o.ln1_w, G + o.ln1_b);
        }
        bp::embed_backward(dres, x, batch, pos, D, G + lay_.W_E, G + lay_.W_pos);
        return loss;
    }

  private:
    // out[rows, n] += x[rows, k] W[k, n] + b[n]
    void add_linear(const float* x, const float* W, const float* b, int64_t rows, int64_t k,
                    int64_t n, float* out) {
        ctx_.pool.run(rows, 64, [&](int64_t r0, int64_t r1) {
            for (int64_t r = r0; r < r1; ++r)
                for (int64_t j = 0; j < n; ++j) out[r * n + j] += b[j];
        });
        ctx_.be.gemm(false, false, rows, n, k, 1.0f, x, k, W, n, 1.0f, out, n);
    }

    Config cfg_;
    Layout lay_;
    bp::Ctx ctx_;
    int64_t B_, T_;
    std::vector<float> params_, grads_, b_U_;
    std::vector<float> res_, ln_, ln_stats_, qkv_, pattern_, z_, pre_, post_, logits_, losses_;
    std::vector<float> dres_, dln_, dqkv_, dz_, dpost_, dpre_;
};

// ------------------------------------------------------------------ data

struct Corpus {
    std::vector<int32_t> train, val;
    std::string val_text;
    uint64_t hash = 0;
    int64_t bytes = 0;
};

uint64_t fnv1a(const std::string& s) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (unsigned char ch : s) h = (h ^ ch) * 0x100000001b3ULL;
    return h;
}

std::string hex64(uint64_t v) {
    std::ostringstream o;
    o << std::hex << std::setw(16) << std::setfill('0') << v;
    return o.str();
}

int64_t utf8_chars(const std::string& s) {
    int64_t n = 0;
    for (unsigned char ch : s) n += (ch & 0xC0) != 0x80;
    return n;
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
    while (cut < text.size() && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) ++cut;
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

// A batch of windows at random starts: x = tokens[s, s+pos), y = tokens[s+1, s+pos+1).
// The starts depend only on the seed and the step, so a resumed run draws the same batches.
void sample_batch(const std::vector<int32_t>& tokens, int64_t batch, int64_t pos, uint64_t seed,
                  int64_t step, int32_t* x, int32_t* y) {
    Rng rng(seed ^ (0x9E3779B97F4A7C15ULL * static_cast<uint64_t>(step + 1)));
    const int64_t starts = static_cast<int64_t>(tokens.size()) - pos;
    for (int64_t b = 0; b < batch; ++b) {
        const int64_t s = static_cast<int64_t>(rng.uniform() * static_cast<double>(starts));
        std::memcpy(x + b * pos, tokens.data() + s, pos * sizeof(int32_t));
        std::memcpy(y + b * pos, tokens.data() + s + 1, pos * sizeof(int32_t));
    }
}

// ------------------------------------------------------------------ signals

volatile std::sig_atomic_t g_stop_signal = 0;
extern "C" void on_stop_signal(int sig) { g_stop_signal = sig; }

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

struct Settings { // what a checkpoint records, so that --resume continues exactly
    int64_t steps, batch, context, warmup, eval_every, eval_iters, save_every;
    double lr, min_lr, weight_decay, beta1, beta2, grad_clip, val_fraction;
    uint64_t seed;
};

struct Log {
    std::vector<int32_t> step;
    std::vector<float> lr, train_loss, val_loss;
};

struct State {
    Settings s;
    int64_t step = 0; // updates done
    std::vector<float> m, v;
    Log log;
    double seconds = 0; // training time of earlier runs
};

void write_checkpoint(const std::string& path, const ModelFile& src, Gpt& gpt, const State& st,
                      const Corpus& corpus, const std::string& history,
                      const std::vector<std::pair<std::string, double>>& final_stats) {
    SignalsHeld held;
    const Config& c = src.config();
    std::string name = src.model_id();
    if (auto dash = name.rfind('-'); dash != std::string::npos) name = name.substr(0, dash);
    ModelWriter w(path, c, name, history);
    put_file_layout(c, gpt.layout(), gpt.params().data(),
                    [&](const std::string& n, const Tensor& t) { w.put(n, t); });
    const int64_t V = c.vocab_size, D = c.d_model;
    Tensor W_U = Tensor::zeros({D, V}), b_U = Tensor::zeros({V});
    const float* W_E = gpt.params().data() + gpt.layout().W_E;
    for (int64_t v = 0; v < V; ++v)
        for (int64_t d = 0; d < D; ++d) W_U.f32()[d * V + v] = W_E[v * D + d];
    std::memcpy(b_U.f32(), gpt.b_U().data(), V * sizeof(float));
    w.put("/unembed/W_U", W_U);
    w.put("/unembed/b_U", b_U);
    w.put_tokenizer(src.load_tokenizer());

    H5File& f = w.file();
    const Settings& s = st.s;
    const std::string g = "/train";
    f.make_group(g);
    f.set_attr(g, "step", st.step);
    for (auto [k, v] : {std::pair<const char*, int64_t>{"steps", s.steps}, {"batch", s.batch},
                        {"context", s.context}, {"warmup", s.warmup}, {"eval_every", s.eval_every},
                        {"eval_iters", s.eval_iters}, {"save_every", s.save_every}})
        f.set_attr(g, k, v);
    for (auto [k, v] : {std::pair<const char*, double>{"lr", s.lr}, {"min_lr", s.min_lr},
                        {"weight_decay", s.weight_decay}, {"beta1", s.beta1}, {"beta2", s.beta2},
                        {"grad_clip", s.grad_clip}, {"val_fraction", s.val_fraction},
                        {"seconds", st.seconds}})
        f.set_attr(g, k, v);
    f.set_attr(g, "seed", hex64(s.seed));
    f.set_attr(g, "corpus_fnv1a", hex64(corpus.hash));
    f.set_attr(g, "corpus_bytes", corpus.bytes);
    f.set_attr(g, "train_tokens", static_cast<int64_t>(corpus.train.size()));
    f.set_attr(g, "val_tokens", static_cast<int64_t>(corpus.val.size()));
    for (auto& [k, v] : final_stats) f.set_attr(g, k, v);
    const int64_t n = static_cast<int64_t>(st.m.size());
    f.write_f32(g + "/adam_m", {n}, st.m.data());
    f.write_f32(g + "/adam_v", {n}, st.v.data());
    const int64_t k = static_cast<int64_t>(st.log.step.size());
    Tensor steps_t = Tensor::zeros({k}, DType::I32);
    if (k) std::memcpy(steps_t.i32(), st.log.step.data(), k * sizeof(int32_t));
    f.write(g + "/log/step", steps_t);
    f.write_f32(g + "/log/lr", {k}, st.log.lr.data());
    f.write_f32(g + "/log/train_loss", {k}, st.log.train_loss.data());
    f.write_f32(g + "/log/val_loss", {k}, st.log.val_loss.data());
    w.commit();
}

State read_checkpoint(const ModelFile& m, int64_t n_params) {
    const H5File& f = m.h5();
    if (!f.exists("/train/adam_m"))
        throw FormatError(m.path() + ": not a checkpoint (no /train group): give it as --model to "
                          "start training from it");
    State st;
    const std::string g = "/train";
    st.step = f.attr_int(g, "step");
    Settings& s = st.s;
    s.steps = f.attr_int(g, "steps");
    s.batch = f.attr_int(g, "batch");
    s.context = f.attr_int(g, "context");
    s.warmup = f.attr_int(g, "warmup");
    s.eval_every = f.attr_int(g, "eval_every");
    s.eval_iters = f.attr_int(g, "eval_iters");
    s.save_every = f.attr_int(g, "save_every");
    s.lr = f.attr_double(g, "lr");
    s.min_lr = f.attr_double(g, "min_lr");
    s.weight_decay = f.attr_double(g, "weight_decay");
    s.beta1 = f.attr_double(g, "beta1");
    s.beta2 = f.attr_double(g, "beta2");
    s.grad_clip = f.attr_double(g, "grad_clip");
    s.val_fraction = f.attr_double(g, "val_fraction");
    s.seed = std::stoull(f.attr_str(g, "seed"), nullptr, 16);
    st.seconds = f.attr_double(g, "seconds");
    st.m.assign(n_params, 0.0f);
    st.v.assign(n_params, 0.0f);
    f.read_f32_into(g + "/adam_m", {n_params}, st.m.data());
    f.read_f32_into(g + "/adam_v", {n_params}, st.v.data());
    Tensor steps = f.read_i32(g + "/log/step", 1);
    const int64_t k = steps.numel();
    st.log.step.assign(steps.i32(), steps.i32() + k);
    for (auto [name, vec] : {std::pair<const char*, std::vector<float>*>{"lr", &st.log.lr},
                             {"train_loss", &st.log.train_loss}, {"val_loss", &st.log.val_loss}}) {
        vec->assign(k, 0.0f);
        f.read_f32_into(g + "/log/" + name, {k}, vec->data());
    }
    return st;
}

// Mean loss over fixed windows evenly spread over the held-out tokens (the same every time).
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
            std::memcpy(x.data() + i * pos, val.data() + s, pos * sizeof(int32_t));
            std::memcpy(y.data() + i * pos, val.data() + s + 1, pos * sizeof(int32_t));
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
        for (int64_t i = 0; i < b; ++i) {
            std::memcpy(x.data() + i * p, val.data() + at + i * p, p * sizeof(int32_t));
            std::memcpy(y.data() + i * p, val.data() + at + i * p + 1, p * sizeof(int32_t));
        }
        gpt.forward(x.data(), y.data(), b, p, false);
        for (int64_t r = 0; r < b * p; ++r) sum += gpt.losses()[r];
        at += b * p;
    }
    FullEval e;
    e.tokens = n;
    e.chars = utf8_chars(corpus.val_text) - utf8_chars(tok.token_bytes(val[0]));
    e.nats_per_token = sum / static_cast<double>(n);
    e.nats_per_char = sum / static_cast<double>(e.chars);
    return e;
}

std::string clock_text(double secs) {
    const int64_t s = static_cast<int64_t>(secs + 0.5);
    std::ostringstream o;
    if (s >= 3600) o << s / 3600 << "h" << std::setw(2) << std::setfill('0') << (s / 60) % 60 << "m";
    else if (s >= 60) o << s / 60 << "m" << std::setw(2) << std::setfill('0') << s % 60 << "s";
    else o << s << "s";
    return o.str();
}

Settings settings_from(const TrainOptions& o) {
    Settings s{o.steps, o.batch, o.context, o.warmup, o.eval_every, o.eval_iters, o.save_every,
               o.lr, o.min_lr < 0 ? o.lr / 10 : o.min_lr, o.weight_decay, o.beta1, o.beta2,
               o.grad_clip, o.val_fraction, o.seed};
    return s;
}

void check_settings(const Settings& s, const Config& c) {
    auto bad = [](const std::string& m) { throw UsageError(m); };
    if (s.steps < 1) bad("--steps must be at least 1");
    if (s.batch < 1 || s.batch > 4096) bad("--batch must be 1 to 4096");
    if (s.context < 2 || s.context > c.n_ctx)
        bad("--context must be 2 to the model's n_ctx (" + std::to_string(c.n_ctx) + ")");
    if (s.warmup < 0) bad("--warmup must not be negative");
    if (!(s.lr > 0) || !(s.min_lr >= 0) || s.min_lr > s.lr) bad("--lr must be > 0 and --min-lr 0 to --lr");
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
    Tokenizer tok(model.load_tokenizer());
    State st;
    const bool resuming = !opt.resume.empty();
    if (!resuming) {
        st.s = settings_from(opt);
        if (st.s.context == 0) st.s.context = c.n_ctx;
    }
    int threads = opt.common.threads > 0 ? opt.common.threads
                                         : static_cast<int>(std::thread::hardware_concurrency());
    threads = std::max(1, threads);
    auto be = make_cpu_backend(threads);
    ThreadPool pool(threads);

    // Settings come from the checkpoint when resuming; read them before sizing buffers.
    if (resuming) st = read_checkpoint(model, Layout(c).total);
    Settings& s = st.s;
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
    load_params(model, gpt.layout(), gpt.params().data(), gpt.b_U());
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
        put_file_layout(c, gpt.layout(), gpt.grads().data(),
                        [&](const std::string& n, const Tensor& t) { f.write(n, t); });
        o.commit();
        if (talk) std::cerr << "train: loss " << loss << "; gradients written to " << opt.dump_grads << '\n';
        return;
    }

    const std::string history = history_line(opt.common, be->describe());
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
    const auto t0 = std::chrono::steady_clock::now();
    auto elapsed = [&] {
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    };
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
        const bool eval_now = s.eval_every > 0 && (st.step % s.eval_every == 0 || st.step == s.steps);
        if (eval_now) last_val = val = static_cast<float>(eval_windows(gpt, corpus.val, B, T_val,
                                                                       s.eval_iters * B, x, y));
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
                 << (std::isnan(last_val) ? std::string("-") : std::to_string(last_val).substr(0, 6))
                 << "  lr " << std::scientific << std::setprecision(2) << lr << std::fixed
                 << "  " << std::setprecision(0) << tok_s << " tok/s  "
                 << clock_text(secs / static_cast<double>(st.step - first) *
                               static_cast<double>(s.steps - st.step))
                 << " left";
            std::cerr << (tty ? "\r\033[K" : "") << line.str() << (tty && !eval_now ? "" : "\n")
                      << std::flush;
        }
        const bool stop = g_stop_signal != 0;
        const bool save_now = s.save_every > 0 && st.step % s.save_every == 0 && st.step < s.steps;
        if (stop || save_now) {
            State snap = st;
            snap.seconds += secs;
            write_checkpoint(out, model, gpt, snap, corpus, history, {});
        }
        if (stop || g_stop_signal) {
            const int sig = g_stop_signal;
            if (!stop) { // arrived while the checkpoint of this step was written
                State snap = st;
                snap.seconds += elapsed();
                write_checkpoint(out, model, gpt, snap, corpus, history, {});
            }
            if (tty) std::cerr << '\n';
            throw Interrupted(std::string("stopped by ") + (sig == SIGINT ? "SIGINT" : "SIGTERM") +
                                  " after step " + std::to_string(st.step) + "; checkpoint " + out +
                                  " (continue with: train --resume " + out + " -f " + opt.corpus + ")",
                              sig);
        }
    }
    if (tty) std::cerr << '\n';
    const double secs = elapsed();
    st.seconds += secs;
    FullEval e = eval_all(gpt, tok, corpus, B, T_val, x, y);
    const double tok_s = static_cast<double>((st.step - first) * B * T) / std::max(secs, 1e-9);
    write_checkpoint(out, model, gpt, st, corpus, history,
                     {{"val_nats_per_token", e.nats_per_token},
                      {"val_nats_per_char", e.nats_per_char},
                      {"val_chars", static_cast<double>(e.chars)},
                      {"tokens_per_s", tok_s}});
    if (talk)
        std::cerr << "train: " << st.step << " steps, " << clock_text(st.seconds) << " in all, "
                  << std::fixed << std::setprecision(0) << tok_s << " tok/s; held-out loss "
                  << std::setprecision(4) << e.nats_per_token << " nats/token = "
                  << e.nats_per_char << " nats/char (" << e.tokens << " tokens, " << e.chars
                  << " characters); wrote " << out << '\n';
}

} // namespace qkv

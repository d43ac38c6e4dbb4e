// Every layer's backward pass against central finite differences of its forward pass, on tiny
// shapes. The loss is sum(out * R) for a fixed random R, so dout = R.
#include "qkv/base/rng.hpp"
#include "qkv/train/backprop.hpp"

#include <catch2/catch.hpp>
#include <cmath>
#include <functional>
#include <vector>

using namespace qkv;

namespace {

std::vector<float> randn(size_t n, uint64_t seed, double sd = 1.0) {
    Rng r(seed);
    std::vector<float> v(n);
    for (auto& x : v)
        x = static_cast<float>(r.normal() * sd);
    return v;
}

double dot(const std::vector<float>& a, const std::vector<float>& b) {
    double s = 0;
    for (size_t i = 0; i < a.size(); ++i)
        s += static_cast<double>(a[i]) * b[i];
    return s;
}

// Central differences of loss() with respect to every element of x, against analytic.
// Float32 forward passes: step 1e-2, tolerance 1e-2 of the largest gradient.
void check_grad(std::vector<float>& x, const std::vector<float>& analytic,
                const std::function<double()>& loss, const char* what) {
    REQUIRE(x.size() == analytic.size());
    double worst = 0, scale = 0;
    for (float g : analytic)
        scale = std::max(scale, static_cast<double>(std::abs(g)));
    REQUIRE(scale > 0);
    for (size_t i = 0; i < x.size(); ++i) {
        const float keep = x[i];
        const float h = 1e-2f;
        x[i] = keep + h;
        const double up = loss();
        x[i] = keep - h;
        const double down = loss();
        x[i] = keep;
        const double numeric = (up - down) / (2.0 * h);
        worst = std::max(worst, std::abs(numeric - analytic[i]));
    }
    INFO(what << ": worst difference " << worst << ", largest gradient " << scale);
    CHECK(worst <= 1e-2 * scale);
}

struct Fixture {
    std::unique_ptr<Backend> be = make_cpu_backend(1);
    ThreadPool pool{2};
    bp::Ctx ctx{*be, pool};
};

} // namespace

TEST_CASE("backprop: LayerNorm against finite differences") {
    Fixture f;
    const int64_t rows = 5, d = 7;
    auto x = randn(rows * d, 1), w = randn(d, 2), b = randn(d, 3), R = randn(rows * d, 4);
    std::vector<float> out(rows * d), mean(rows), rstd(rows);
    auto loss = [&] {
        f.be->layer_norm(x.data(), w.data(), b.data(), 1e-5f, rows, d, out.data(), mean.data(),
                         rstd.data());
        return dot(out, R);
    };
    loss();
    std::vector<float> dx(rows * d, 0.0f), dw(d, 0.0f), db(d, 0.0f);
    bp::layer_norm_backward(f.ctx, R.data(), x.data(), w.data(), mean.data(), rstd.data(), rows, d,
                            dx.data(), dw.data(), db.data());
    check_grad(x, dx, loss, "LayerNorm dx");
    check_grad(w, dw, loss, "LayerNorm dw");
    check_grad(b, db, loss, "LayerNorm db");
}

TEST_CASE("backprop: RMSNorm against finite differences") {
    Fixture f;
    const int64_t rows = 4, d = 9;
    auto x = randn(rows * d, 21), w = randn(d, 22), R = randn(rows * d, 23);
    std::vector<float> out(rows * d), rstd(rows);
    auto loss = [&] {
        f.be->rms_norm(x.data(), w.data(), 1e-5f, rows, d, out.data());
        return dot(out, R);
    };
    loss();
    for (int64_t r = 0; r < rows; ++r) {
        double sq = 0;
        for (int64_t i = 0; i < d; ++i)
            sq += static_cast<double>(x[r * d + i]) * x[r * d + i];
        rstd[r] = static_cast<float>(1.0 / std::sqrt(sq / d + 1e-5));
    }
    std::vector<float> dx(rows * d, 0.0f), dw(d, 0.0f);
    bp::rms_norm_backward(f.ctx, R.data(), x.data(), w.data(), rstd.data(), rows, d, dx.data(),
                          dw.data());
    check_grad(x, dx, loss, "RMSNorm dx");
    check_grad(w, dw, loss, "RMSNorm dw");
}

TEST_CASE("backprop: exact GELU and SwiGLU against finite differences") {
    Fixture f;
    const int64_t rows = 3, n = 16;
    auto x = randn(rows * n, 24, 2.0), R = randn(rows * n, 25);
    std::vector<float> out(rows * n);
    auto gelu_loss = [&] {
        f.be->copy(out.data(), x.data(), rows * n);
        f.be->gelu_erf(out.data(), rows * n);
        return dot(out, R);
    };
    std::vector<float> dx(rows * n, 0.0f);
    bp::gelu_erf_backward(f.ctx, R.data(), x.data(), dx.data(), rows * n);
    check_grad(x, dx, gelu_loss, "exact GELU dx");
    // SwiGLU: hidden [rows, (gate | in) n] -> silu(gate) * in [rows, n]
    auto hidden = randn(rows * 2 * n, 26, 1.5);
    auto swiglu_loss = [&] {
        f.be->silu_mul(hidden.data(), rows, n, out.data());
        return dot(out, R);
    };
    std::vector<float> dhidden(rows * 2 * n, 0.0f);
    bp::swiglu_backward(f.ctx, R.data(), hidden.data(), rows, n, dhidden.data());
    check_grad(hidden, dhidden, swiglu_loss, "SwiGLU dhidden");
}

TEST_CASE("backprop: linear layer against finite differences") {
    Fixture f;
    const int64_t rows = 4, k = 5, n = 3;
    auto x = randn(rows * k, 5), W = randn(k * n, 6), b = randn(n, 7), R = randn(rows * n, 8);
    std::vector<float> out(rows * n);
    auto loss = [&] {
        bp::linear_forward(f.ctx, x.data(), W.data(), b.data(), rows, k, n, out.data());
        return dot(out, R);
    };
    loss();
    std::vector<float> dx(rows * k, 0.0f), dW(k * n, 0.0f), db(n, 0.0f);
    bp::linear_backward(f.ctx, R.data(), x.data(), W.data(), rows, k, n, dx.data(), dW.data(),
                        db.data());
    check_grad(x, dx, loss, "linear dx");
    check_grad(W, dW, loss, "linear dW");
    check_grad(b, db, loss, "linear db");
}

TEST_CASE("backprop: GELU against finite differences") {
    Fixture f;
    const int64_t n = 64;
    auto x = randn(n, 9, 2.0), R = randn(n, 10);
    std::vector<float> out(n);
    auto loss = [&] {
        f.be->copy(out.data(), x.data(), n);
        f.be->gelu(out.data(), n);
        return dot(out, R);
    };
    loss();
    // GPT-2's gelu_new at a few points
    CHECK(out[0] ==
          Approx(0.5 * x[0] * (1 + std::tanh(0.7978845608 * (x[0] + 0.044715 * std::pow(x[0], 3)))))
              .epsilon(1e-5));
    std::vector<float> dx(n, 0.0f);
    bp::gelu_backward(f.ctx, R.data(), x.data(), dx.data(), n);
    check_grad(x, dx, loss, "GELU dx");
}

TEST_CASE("backprop: causal attention against finite differences") {
    Fixture f;
    for (const auto& dims : {std::tuple<int64_t, int64_t, int64_t, int64_t>{2, 5, 2, 12},
                             {1, 9, 1, 32},
                             {1, 4, 3, 3}}) {
        // plain locals: lambdas may not capture structured bindings in C++17 (clang refuses)
        const int64_t batch = std::get<0>(dims), pos = std::get<1>(dims), head = std::get<2>(dims),
                      d_head = std::get<3>(dims);
        const int64_t ld = 3 * head * d_head;
        auto qkv = randn(batch * pos * ld, 11 + d_head, 0.7),
             R = randn(batch * pos * head * d_head, 12);
        std::vector<float> pattern(batch * head * pos * pos), z(batch * pos * head * d_head);
        auto loss = [&] {
            bp::attention_forward(f.ctx, qkv.data(), batch, pos, head, d_head, pattern.data(),
                                  z.data());
            return dot(z, R);
        };
        loss();
        // the pattern: rows sum to 1, masked entries are 0
        for (int64_t r = 0; r < batch * head * pos; ++r) {
            double s = 0;
            for (int64_t c = 0; c < pos; ++c) {
                s += pattern[r * pos + c];
                if (c > r % pos) CHECK(pattern[r * pos + c] == 0.0f);
            }
            CHECK(s == Approx(1.0).epsilon(1e-6));
        }
        std::vector<float> dqkv(qkv.size(), 0.0f);
        bp::attention_backward(f.ctx, R.data(), qkv.data(), pattern.data(), batch, pos, head, head,
                               d_head, dqkv.data());
        check_grad(qkv, dqkv, loss, "attention dqkv");
        // the same gradients with one thread and with three
        for (int threads : {1, 3}) {
            ThreadPool pool(threads);
            bp::Ctx ctx{*f.be, pool};
            std::vector<float> p2(pattern.size()), z2(z.size()), d2(qkv.size(), 0.0f);
            bp::attention_forward(ctx, qkv.data(), batch, pos, head, d_head, p2.data(), z2.data());
            bp::attention_backward(ctx, R.data(), qkv.data(), p2.data(), batch, pos, head, head,
                                   d_head, d2.data());
            CHECK(p2 == pattern);
            CHECK(d2 == dqkv);
        }
    }
}

TEST_CASE("backprop: cross-entropy against finite differences and log-softmax") {
    Fixture f;
    const int64_t rows = 3, vocab = 7;
    auto logits = randn(rows * vocab, 13, 2.0);
    const std::vector<int32_t> targets = {2, 0, 6};
    std::vector<float> losses(rows), work(rows * vocab);
    auto loss = [&] {
        work = logits;
        return bp::cross_entropy(f.ctx, work.data(), targets.data(), rows, vocab, losses.data(),
                                 false);
    };
    const double l = loss();
    double want = 0;
    for (int64_t r = 0; r < rows; ++r) {
        double s = 0;
        for (int64_t j = 0; j < vocab; ++j)
            s += std::exp(static_cast<double>(logits[r * vocab + j]));
        want += std::log(s) - logits[r * vocab + targets[r]];
    }
    CHECK(l == Approx(want / rows).epsilon(1e-6));
    std::vector<float> g = logits;
    bp::cross_entropy(f.ctx, g.data(), targets.data(), rows, vocab, losses.data(), true);
    check_grad(logits, g, loss, "cross-entropy dlogits");
}

TEST_CASE("backprop: embedding gradients land on the tokens and positions used") {
    Fixture f;
    const int64_t batch = 2, pos = 3, d = 4, vocab = 5;
    const std::vector<int32_t> tokens = {1, 3, 1, 4, 1, 0};
    auto W_E = randn(vocab * d, 14), W_pos = randn(pos * d, 15), R = randn(batch * pos * d, 16);
    std::vector<float> out(batch * pos * d);
    auto loss = [&] {
        for (int64_t b = 0; b < batch; ++b)
            f.be->embed(tokens.data() + b * pos, pos, 0, nullptr, W_E.data(), DType::F32,
                        W_pos.data(), d, nullptr, nullptr, out.data() + b * pos * d);
        return dot(out, R);
    };
    loss();
    std::vector<float> dE(vocab * d, 0.0f), dP(pos * d, 0.0f);
    bp::embed_backward(R.data(), tokens.data(), batch, pos, d, dE.data(), dP.data());
    check_grad(W_E, dE, loss, "embedding dW_E");
    check_grad(W_pos, dP, loss, "embedding dW_pos");
    for (int64_t i = 0; i < d; ++i)
        CHECK(dE[2 * d + i] == 0.0f); // token 2 is not used
}

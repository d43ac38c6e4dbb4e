#include "qkv/tensor/backend.hpp"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <vector>

using namespace qkv;

TEST_CASE("cpu backend: gemm against a naive triple loop, with transposes and strides") {
    auto be = make_cpu_backend(2);
    const int M = 5, N = 7, K = 3;
    std::vector<float> A(M * K), B(K * N), C(M * N, 1.0f);
    for (int i = 0; i < M * K; ++i)
        A[i] = std::sin(i + 1.0f);
    for (int i = 0; i < K * N; ++i)
        B[i] = std::cos(i + 2.0f);
    be->gemm(false, false, M, N, K, 2.0f, A.data(), K, B.data(), N, 0.5f, C.data(), N);
    for (int i = 0; i < M; ++i)
        for (int j = 0; j < N; ++j) {
            double ref = 0.5;
            for (int k = 0; k < K; ++k)
                ref += 2.0 * A[i * K + k] * B[k * N + j];
            REQUIRE(C[i * N + j] == Approx(ref).epsilon(1e-5));
        }
    // C = A B^T with B stored [N, K]
    std::vector<float> Bt(N * K), C2(M * N);
    for (int k = 0; k < K; ++k)
        for (int j = 0; j < N; ++j)
            Bt[j * K + k] = B[k * N + j];
    be->gemm(false, true, M, N, K, 1.0f, A.data(), K, Bt.data(), K, 0.0f, C2.data(), N);
    for (int i = 0; i < M * N; ++i)
        REQUIRE(C2[i] == Approx((C[i] - 0.5f) / 2).epsilon(1e-5));
}

TEST_CASE("cpu backend: layer norm, GELU, softmax with mask") {
    auto be = make_cpu_backend(1);
    std::vector<float> x = {1, 2, 3, 4}, w = {1, 1, 2, 2}, b = {0, 0, 0, 1}, out(4);
    be->layer_norm(x.data(), w.data(), b.data(), 1e-5f, 1, 4, out.data(), nullptr, nullptr);
    const double sd = std::sqrt(1.25 + 1e-5);
    REQUIRE(out[0] == Approx(-1.5 / sd));
    REQUIRE(out[3] == Approx(2 * 1.5 / sd + 1));

    std::vector<float> g = {-1.0f, 0.0f, 1.0f, 3.0f};
    be->gelu(g.data(), 4);
    REQUIRE(g[0] == Approx(-0.15880800939172324)); // GPT-2's tanh form
    REQUIRE(g[1] == 0.0f);
    REQUIRE(g[2] == Approx(0.8411919906082768));
    REQUIRE(g[3] == Approx(2.99636));

    // 3 queries x 3 keys, causal: row q sees keys 0..q
    std::vector<float> s = {1, 5, 5, 1, 2, 9, 0, 0, 0}, p(9);
    be->masked_softmax(s.data(), p.data(), 3, 3, 3, 3, true, 0, nullptr);
    REQUIRE(p[0] == 1.0f);
    REQUIRE(p[1] == 0.0f);
    REQUIRE(std::isinf(s[1]));
    REQUIRE(p[3] == Approx(1 / (1 + std::exp(1.0))));
    REQUIRE(p[6] == Approx(1 / 3.0));
    // no mask
    std::vector<float> s2 = {0, 0, std::log(2.0f)}, p2(3);
    be->masked_softmax(s2.data(), p2.data(), 1, 1, 3, 3, false, 0, nullptr);
    REQUIRE(p2[2] == Approx(0.5));
    // two heads of two queries: row r is query r % 2
    std::vector<float> s3(8, 0.0f), p3(8);
    be->masked_softmax(s3.data(), p3.data(), 4, 2, 2, 2, true, 0, nullptr);
    REQUIRE(p3 == std::vector<float>{1, 0, 0.5f, 0.5f, 1, 0, 0.5f, 0.5f});
}

TEST_CASE("cpu backend: RMSNorm, rotary embedding, SwiGLU by their formulas") {
    auto be = make_cpu_backend(2);
    std::vector<float> x = {1, 2, 3, 4}, w = {1, 1, 2, 2}, out(4);
    be->rms_norm(x.data(), w.data(), 1e-5f, 1, 4, out.data());
    const double rms = std::sqrt(30.0 / 4 + 1e-5);
    REQUIRE(out[0] == Approx(1 / rms));
    REQUIRE(out[3] == Approx(2 * 4 / rms));

    // Two rows (positions 0 and 1) of two heads of d_head 6, rot 4: pairs (0, 2) and (1, 3)
    // turn by the angles' cos and sin; dimensions 4 and 5 stay.
    const float c[4] = {1, 1, std::cos(0.5f), std::cos(0.25f)};
    const float sn[4] = {0, 0, std::sin(0.5f), std::sin(0.25f)};
    std::vector<float> v(2 * 12);
    for (size_t i = 0; i < v.size(); ++i)
        v[i] = static_cast<float>(i % 12) + 1;
    const std::vector<float> before = v;
    be->rotary(v.data(), 12, 2, 2, 2, 6, 4, c, sn);
    REQUIRE(std::equal(v.begin(), v.begin() + 12, before.begin())); // position 0: angle 0
    for (int h = 0; h < 2; ++h) {
        const float* r = v.data() + 12 + 6 * h;
        const float* o = before.data() + 12 + 6 * h;
        REQUIRE(r[0] == Approx(o[0] * c[2] - o[2] * sn[2]));
        REQUIRE(r[2] == Approx(o[2] * c[2] + o[0] * sn[2]));
        REQUIRE(r[1] == Approx(o[1] * c[3] - o[3] * sn[3]));
        REQUIRE(r[3] == Approx(o[3] * c[3] + o[1] * sn[3]));
        REQUIRE((r[4] == o[4] && r[5] == o[5]));
    }

    std::vector<float> e = {-1.0f, 0.0f, 1.0f};
    be->gelu_erf(e.data(), 3);
    REQUIRE(e[0] == Approx(-0.15865525393145707)); // x Phi(x)
    REQUIRE(e[1] == 0.0f);
    REQUIRE(e[2] == Approx(0.8413447460685429));

    std::vector<float> gate_up = {-1, 2, 3, 0.5f}, h(2); // one row: gate (-1, 2), up (3, 0.5)
    be->silu_mul(gate_up.data(), 1, 2, h.data());
    REQUIRE(h[0] == Approx(-1 / (1 + std::exp(1.0)) * 3));
    REQUIRE(h[1] == Approx(2 / (1 + std::exp(-2.0)) * 0.5));
}

TEST_CASE("cpu backend: batched gemm equals one gemm per matrix") {
    auto be = make_cpu_backend(1);
    std::vector<float> A(3 * 2 * 4), B(3 * 4 * 5), C(3 * 2 * 5), D(3 * 2 * 5);
    for (size_t i = 0; i < A.size(); ++i)
        A[i] = std::sin(float(i));
    for (size_t i = 0; i < B.size(); ++i)
        B[i] = std::cos(float(i));
    be->gemm_batched(false, false, 2, 5, 4, 1.0f, A.data(), 4, 8, B.data(), 5, 20, 0.0f, C.data(),
                     5, 10, 3);
    for (int i = 0; i < 3; ++i)
        be->gemm(false, false, 2, 5, 4, 1.0f, A.data() + 8 * i, 4, B.data() + 20 * i, 5, 0.0f,
                 D.data() + 10 * i, 5);
    REQUIRE(C == D);
}

TEST_CASE("cpu backend: results do not depend on the thread count") {
    const int n = 64, d = 777;
    std::vector<float> x(n * d), w(d, 1.0f), b(d, 0.0f), o1(n * d), o2(n * d);
    for (int i = 0; i < n * d; ++i)
        x[i] = std::sin(0.37f * i);
    make_cpu_backend(1)->layer_norm(x.data(), w.data(), b.data(), 1e-5f, n, d, o1.data(), nullptr,
                                    nullptr);
    make_cpu_backend(2)->layer_norm(x.data(), w.data(), b.data(), 1e-5f, n, d, o2.data(), nullptr,
                                    nullptr);
    REQUIRE(o1 == o2);
}

TEST_CASE("cpu backend: matrix products are exact and bit-identical on 1, 2 and 3 threads") {
    // Shapes that span several tiles both ways (cpu_gemm), one-row products (decoding), every
    // transpose, strided leading dimensions, beta = 0 and 1, and batches.
    struct Case {
        bool ta, tb;
        int64_t M, N, K;
        float beta;
        int64_t batch;
    };
    const Case cases[] = {
        {false, false, 300, 530, 70, 0.0f, 1}, {false, true, 257, 300, 33, 1.0f, 1},
        {true, false, 520, 260, 41, 1.0f, 1},  {true, true, 17, 700, 9, 0.0f, 2},
        {false, false, 1, 1000, 300, 0.0f, 1}, {false, true, 1, 777, 65, 1.0f, 3},
        {true, false, 1, 600, 50, 0.0f, 1},    {false, true, 40, 40, 16, 0.0f, 12}};
    for (const Case& c : cases) {
        const int64_t pad = 3; // leading dimensions wider than the matrices
        const int64_t lda = (c.ta ? c.M : c.K) + pad, ldb = (c.tb ? c.K : c.N) + pad,
                      ldc = c.N + pad;
        const int64_t sa = (c.ta ? c.K : c.M) * lda, sb = (c.tb ? c.N : c.K) * ldb, sc = c.M * ldc;
        std::vector<float> A(sa * c.batch), B(sb * c.batch), C0(sc * c.batch);
        for (size_t i = 0; i < A.size(); ++i)
            A[i] = std::sin(0.7f * i);
        for (size_t i = 0; i < B.size(); ++i)
            B[i] = std::cos(0.3f * i);
        for (size_t i = 0; i < C0.size(); ++i)
            C0[i] = std::sin(0.1f * i);
        std::vector<std::vector<float>> results;
        for (int threads : {1, 2, 3, 2}) {
            std::vector<float> C = C0;
            make_cpu_backend(threads)->gemm_batched(c.ta, c.tb, c.M, c.N, c.K, 0.5f, A.data(), lda,
                                                    sa, B.data(), ldb, sb, c.beta, C.data(), ldc,
                                                    sc, c.batch);
            results.push_back(C);
        }
        INFO("M " << c.M << " N " << c.N << " K " << c.K << " ta " << c.ta << " tb " << c.tb);
        for (size_t r = 1; r < results.size(); ++r)
            REQUIRE(std::memcmp(results[r].data(), results[0].data(), C0.size() * sizeof(float)) ==
                    0);
        double worst = 0;
        for (int64_t b = 0; b < c.batch; ++b)
            for (int64_t i = 0; i < c.M; ++i)
                for (int64_t j = 0; j < c.N; ++j) {
                    double ref = c.beta * double(C0[b * sc + i * ldc + j]), mag = std::abs(ref);
                    for (int64_t k = 0; k < c.K; ++k) {
                        const double a = A[b * sa + (c.ta ? k * lda + i : i * lda + k)];
                        const double bb = B[b * sb + (c.tb ? j * ldb + k : k * ldb + j)];
                        ref += 0.5 * a * bb;
                        mag += std::abs(0.5 * a * bb);
                    }
                    worst = std::max(worst, std::abs(results[0][b * sc + i * ldc + j] - ref) / mag);
                }
        // relative to the sum of magnitudes: the float32 bound K u (u = 2^-24), and beta's product
        REQUIRE(worst < (c.K + 2) * 6e-8);
        // the padding between rows is never written
        for (int64_t i = 0; i < c.M; ++i)
            for (int64_t j = c.N; j < ldc; ++j)
                REQUIRE(results[0][i * ldc + j] == C0[i * ldc + j]);
    }
}

#include "backend.hpp"

#include <catch2/catch.hpp>
#include <cmath>
#include <vector>

using namespace qkv;

TEST_CASE("cpu backend: gemm against a naive triple loop, with transposes and strides") {
    auto be = make_cpu_backend(2);
    const int M = 5, N = 7, K = 3;
    std::vector<float> A(M * K), B(K * N), C(M * N, 1.0f);
    for (int i = 0; i < M * K; ++i) A[i] = std::sin(i + 1.0f);
    for (int i = 0; i < K * N; ++i) B[i] = std::cos(i + 2.0f);
    be->gemm(false, false, M, N, K, 2.0f, A.data(), K, B.data(), N, 0.5f, C.data(), N);
    for (int i = 0; i < M; ++i)
        for (int j = 0; j < N; ++j) {
            double ref = 0.5;
            for (int k = 0; k < K; ++k) ref += 2.0 * A[i * K + k] * B[k * N + j];
            REQUIRE(C[i * N + j] == Approx(ref).epsilon(1e-5));
        }
    // C = A B^T with B stored [N, K]
    std::vector<float> Bt(N * K), C2(M * N);
    for (int k = 0; k < K; ++k)
        for (int j = 0; j < N; ++j) Bt[j * K + k] = B[k * N + j];
    be->gemm(false, true, M, N, K, 1.0f, A.data(), K, Bt.data(), K, 0.0f, C2.data(), N);
    for (int i = 0; i < M * N; ++i) REQUIRE(C2[i] == Approx((C[i] - 0.5f) / 2).epsilon(1e-5));
}

TEST_CASE("cpu backend: layer norm, GELU, softmax with mask") {
    auto be = make_cpu_backend(1);
    std::vector<float> x = {1, 2, 3, 4}, w = {1, 1, 2, 2}, b = {0, 0, 0, 1}, out(4);
    be->layer_norm(x.data(), w.data(), b.data(), 1e-5f, 1, 4, out.data());
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
    be->masked_softmax(s.data(), p.data(), 3, 3, 3, 3, true, 0);
    REQUIRE(p[0] == 1.0f);
    REQUIRE(p[1] == 0.0f);
    REQUIRE(std::isinf(s[1]));
    REQUIRE(p[3] == Approx(1 / (1 + std::exp(1.0))));
    REQUIRE(p[6] == Approx(1 / 3.0));
    // no mask
    std::vector<float> s2 = {0, 0, std::log(2.0f)}, p2(3);
    be->masked_softmax(s2.data(), p2.data(), 1, 1, 3, 3, false, 0);
    REQUIRE(p2[2] == Approx(0.5));
    // two heads of two queries: row r is query r % 2
    std::vector<float> s3(8, 0.0f), p3(8);
    be->masked_softmax(s3.data(), p3.data(), 4, 2, 2, 2, true, 0);
    REQUIRE(p3 == std::vector<float>{1, 0, 0.5f, 0.5f, 1, 0, 0.5f, 0.5f});
}

TEST_CASE("cpu backend: batched gemm equals one gemm per matrix") {
    auto be = make_cpu_backend(1);
    std::vector<float> A(3 * 2 * 4), B(3 * 4 * 5), C(3 * 2 * 5), D(3 * 2 * 5);
    for (size_t i = 0; i < A.size(); ++i) A[i] = std::sin(float(i));
    for (size_t i = 0; i < B.size(); ++i) B[i] = std::cos(float(i));
    be->gemm_batched(false, false, 2, 5, 4, 1.0f, A.data(), 4, 8, B.data(), 5, 20, 0.0f, C.data(), 5,
                     10, 3);
    for (int i = 0; i < 3; ++i)
        be->gemm(false, false, 2, 5, 4, 1.0f, A.data() + 8 * i, 4, B.data() + 20 * i, 5, 0.0f,
                 D.data() + 10 * i, 5);
    REQUIRE(C == D);
}

TEST_CASE("cpu backend: results do not depend on the thread count") {
    const int n = 64, d = 777;
    std::vector<float> x(n * d), w(d, 1.0f), b(d, 0.0f), o1(n * d), o2(n * d);
    for (int i = 0; i < n * d; ++i) x[i] = std::sin(0.37f * i);
    make_cpu_backend(1)->layer_norm(x.data(), w.data(), b.data(), 1e-5f, n, d, o1.data());
    make_cpu_backend(2)->layer_norm(x.data(), w.data(), b.data(), 1e-5f, n, d, o2.data());
    REQUIRE(o1 == o2);
}

// 16-bit weights: conversions, and the products over 16-bit B against float64 sums of the same
// widened values, bit-identical on 1, 2 and 3 threads; with the SIMD kernels where the CPU has
// them and with the plain C++ ones.
#include "qkv/base/rng.hpp"
#include "qkv/tensor/cpu_gemm.hpp"
#include "qkv/tensor/half.hpp"

#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <vector>

using namespace qkv;

namespace {
bool same_bits(float a, float b) {
    return std::memcmp(&a, &b, 4) == 0;
}

// The plain C++ kernels on or off for one test, restored after it however it ends.
struct PortableKernels {
    bool before;
    explicit PortableKernels(bool on) : before(use_portable_half_kernels(on)) {}
    ~PortableKernels() { use_portable_half_kernels(before); }
};
} // namespace

TEST_CASE("half: rounding to nearest even, and widening every 16-bit pattern exactly") {
    REQUIRE(f32_to_f16(1.0f) == 0x3c00);
    REQUIRE(f32_to_bf16(1.0f) == 0x3f80);
    REQUIRE(f32_to_bf16(-3.0f) == 0xc040);
    // 1 + 2^-8 lies halfway between bfloat16's 1 and 1 + 2^-7: to the even one, 1.
    REQUIRE(f32_to_bf16(1.0f + std::ldexp(1.0f, -8)) == 0x3f80);
    REQUIRE(f32_to_bf16(1.0f + 3 * std::ldexp(1.0f, -8)) == 0x3f82); // halfway, up to even
    REQUIRE(f32_to_bf16(3.4e38f) == 0x7f80);                         // rounds past the largest
    REQUIRE(std::isnan(bf16_to_f32(f32_to_bf16(std::nanf("")))));
    for (DType t : {DType::F16, DType::BF16}) {
        std::vector<uint16_t> all(65536);
        for (uint32_t i = 0; i < 65536; ++i)
            all[i] = static_cast<uint16_t>(i);
        std::vector<float> wide(65536);
        widen(t, all.data(), 65536, wide.data()); // the SIMD path where the CPU has one
        for (uint32_t i = 0; i < 65536; ++i) {
            const float one = from_half(t, all[i]);
            REQUIRE((same_bits(wide[i], one) || (std::isnan(wide[i]) && std::isnan(one))));
            if (!std::isnan(one)) REQUIRE(to_half(t, one) == all[i]); // round trip
        }
    }
}

TEST_CASE("half: products over 16-bit B equal float64 sums and do not depend on threads") {
    const bool portable = GENERATE(false, true);
    INFO("plain C++ kernels: " << portable);
    const PortableKernels kernels(portable);
    Rng rng(7);
    const int64_t K = 151, N = 603; // odd sizes: every tail of the kernels runs; 1 row: 4 tiles
    for (DType t : {DType::F16, DType::BF16})
        for (bool tb : {false, true})
            for (int64_t M : {1, 3, 40}) {
                std::vector<float> A(M * K), C0(M * N), Bf(K * N);
                std::vector<uint16_t> B(K * N);
                for (auto& v : A)
                    v = static_cast<float>(rng.normal());
                for (size_t i = 0; i < B.size(); ++i) {
                    B[i] = to_half(t, static_cast<float>(rng.normal()));
                    Bf[i] = from_half(t, B[i]);
                }
                for (auto& v : C0)
                    v = static_cast<float>(rng.normal());
                const int64_t ldb = tb ? K : N;
                std::vector<float> first;
                for (int threads : {1, 2, 3}) {
                    ThreadPool pool(threads);
                    std::vector<float> C = C0;
                    cpu_gemm_half_b(pool, false, tb, M, N, K, 0.5f, A.data(), K, 0, t, B.data(),
                                    ldb, 0, 2.0f, C.data(), N, 0, 1);
                    if (first.empty()) {
                        first = C;
                        for (int64_t m = 0; m < M; ++m)
                            for (int64_t n = 0; n < N; ++n) {
                                double s = 0, mag = 0;
                                for (int64_t k = 0; k < K; ++k) {
                                    const double b = tb ? Bf[n * K + k] : Bf[k * N + n];
                                    s += double(A[m * K + k]) * b;
                                    mag += std::fabs(double(A[m * K + k]) * b);
                                }
                                const double want = 0.5 * s + 2.0 * C0[m * N + n];
                                REQUIRE(std::fabs(C[m * N + n] - want) <=
                                        1e-6 * (mag + std::fabs(want)));
                            }
                    } else {
                        REQUIRE(std::memcmp(C.data(), first.data(), C.size() * 4) == 0);
                    }
                }
            }
}

#include "qkv/tensor/half.hpp"

#include "qkv/base/errors.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#endif

namespace qkv {

uint16_t f32_to_f16(float x) {
    uint32_t u;
    std::memcpy(&u, &x, 4);
    const uint32_t sign = (u >> 16) & 0x8000u;
    const uint32_t exp = (u >> 23) & 0xffu, man = u & 0x7fffffu;
    if (exp == 0xff) return static_cast<uint16_t>(sign | 0x7c00u | (man ? 0x200u : 0)); // Inf, NaN
    const int e = static_cast<int>(exp) - 127 + 15;
    if (e >= 31) return static_cast<uint16_t>(sign | 0x7c00u); // too large: infinity
    if (e <= 0) {                                              // a half subnormal (or zero)
        if (e < -10) return static_cast<uint16_t>(sign);
        const uint32_t m = man | 0x800000u;
        const int shift = 14 - e;
        uint32_t h = m >> shift;
        const uint32_t rest = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rest > half || (rest == half && (h & 1u))) ++h;
        return static_cast<uint16_t>(sign | h);
    }
    uint32_t h = (static_cast<uint32_t>(e) << 10) | (man >> 13);
    const uint32_t rest = man & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h; // may carry into the exponent
    return static_cast<uint16_t>(sign | h);
}

float f16_to_f32(uint16_t h) {
    const uint32_t sign = (h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
    uint32_t u;
    if (exp == 0x1f) {
        u = sign | 0x7f800000u | (man << 13);
    } else if (exp == 0) {
        if (man == 0) {
            u = sign;
        } else { // subnormal: normalise
            int e = -1;
            uint32_t m = man;
            do {
                ++e;
                m <<= 1;
            } while (!(m & 0x400u));
            u = sign | (static_cast<uint32_t>(127 - 15 - e) << 23) | ((m & 0x3ffu) << 13);
        }
    } else {
        u = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

uint16_t f32_to_bf16(float x) {
    uint32_t u;
    std::memcpy(&u, &x, 4);
    if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x7fffffu)) // NaN: keep it a NaN
        return static_cast<uint16_t>((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u); // round to nearest even (overflow carries to infinity)
    return static_cast<uint16_t>(u >> 16);
}

float bf16_to_f32(uint16_t h) {
    const uint32_t u = static_cast<uint32_t>(h) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

bool is_half(DType t) {
    return t == DType::F16 || t == DType::BF16;
}

uint16_t to_half(DType t, float x) {
    return t == DType::F16 ? f32_to_f16(x) : f32_to_bf16(x);
}

float from_half(DType t, uint16_t h) {
    return t == DType::F16 ? f16_to_f32(h) : bf16_to_f32(h);
}

namespace {

// ---------------------------------------------------------------- x86 kernels (chosen at run
// time: the library is built for any x86-64, and these run only where the CPU has the
// instructions).
#if defined(__x86_64__)
#define QKV_HALF_SIMD 1

// AVX2 and FMA as the compiler's runtime checks them (with the OS's support for the registers);
// F16C from CPUID leaf 1 (ECX bit 29), which clang's __builtin_cpu_supports does not name.
// Off only while a test runs the plain kernels (use_portable_half_kernels).
std::atomic<bool> portable_only{false};

bool cpu_has_simd() {
    static const bool yes = [] {
        unsigned a = 0, b = 0, c = 0, d = 0;
        const bool f16c = __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 29));
        return f16c && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }();
    return yes && !portable_only.load(std::memory_order_relaxed);
}

// 8 16-bit values at p, widened.
__attribute__((target("avx2,fma,f16c"))) inline __m256 load8(DType t, const uint16_t* p) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    if (t == DType::F16) return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

__attribute__((target("avx2,fma,f16c"))) void widen_simd(DType t, const uint16_t* src, int64_t n,
                                                         float* dst) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, load8(t, src + i));
    for (; i < n; ++i)
        dst[i] = from_half(t, src[i]);
}

// out[8] = alpha s + beta out
__attribute__((target("avx2,fma,f16c"))) inline void store8(float* out, __m256 s, float alpha,
                                                            float beta) {
    s = _mm256_mul_ps(s, _mm256_set1_ps(alpha));
    if (beta != 0.0f) s = _mm256_fmadd_ps(_mm256_set1_ps(beta), _mm256_loadu_ps(out), s);
    _mm256_storeu_ps(out, s);
}

// y[j] in chunks of up to 512 columns whose sums stay in L1, 4 rows of W per pass over the sums;
// each sum still adds k in order.
__attribute__((target("avx2,fma,f16c"))) void
vec_times_half_simd(DType t, const float* x, int64_t incx, int64_t K, const uint16_t* W,
                    int64_t ldw, int64_t n, float alpha, float beta, float* y) {
    // Rows are short runs of cache lines far apart, which the prefetchers do not follow: the
    // rows kAhead below are asked for while these are summed.
    constexpr int64_t kChunk = 512, kAhead = 32;
    alignas(32) float acc[kChunk];
    for (int64_t j0 = 0; j0 < n; j0 += kChunk) {
        const int64_t m = std::min(kChunk, n - j0), m8 = m / 8 * 8;
        std::fill(acc, acc + m, 0.0f);
        const uint16_t* w = W + j0;
        int64_t k = 0;
        for (; k + 4 <= K; k += 4, w += 4 * ldw) {
            const __m256 x0 = _mm256_set1_ps(x[k * incx]), x1 = _mm256_set1_ps(x[(k + 1) * incx]);
            const __m256 x2 = _mm256_set1_ps(x[(k + 2) * incx]),
                         x3 = _mm256_set1_ps(x[(k + 3) * incx]);
            for (int64_t j = 0; j < m8; j += 8) {
                if (j % 32 == 0 && k + kAhead + 4 <= K) // each cache line of rows kAhead below
                    for (int r = 0; r < 4; ++r)
                        _mm_prefetch(reinterpret_cast<const char*>(w + (kAhead + r) * ldw + j),
                                     _MM_HINT_T0);
                __m256 s = _mm256_load_ps(acc + j);
                s = _mm256_fmadd_ps(x0, load8(t, w + j), s);
                s = _mm256_fmadd_ps(x1, load8(t, w + ldw + j), s);
                s = _mm256_fmadd_ps(x2, load8(t, w + 2 * ldw + j), s);
                s = _mm256_fmadd_ps(x3, load8(t, w + 3 * ldw + j), s);
                _mm256_store_ps(acc + j, s);
            }
            for (int64_t j = m8; j < m; ++j)
                for (int r = 0; r < 4; ++r)
                    acc[j] = std::fma(x[(k + r) * incx], from_half(t, w[r * ldw + j]), acc[j]);
        }
        for (; k < K; ++k, w += ldw) {
            const __m256 xk = _mm256_set1_ps(x[k * incx]);
            for (int64_t j = 0; j < m8; j += 8)
                _mm256_store_ps(acc + j,
                                _mm256_fmadd_ps(xk, load8(t, w + j), _mm256_load_ps(acc + j)));
            for (int64_t j = m8; j < m; ++j)
                acc[j] = std::fma(x[k * incx], from_half(t, w[j]), acc[j]);
        }
        for (int64_t j = 0; j < m8; j += 8)
            store8(y + j0 + j, _mm256_load_ps(acc + j), alpha, beta);
        for (int64_t j = m8; j < m; ++j)
            y[j0 + j] = alpha * acc[j] + (beta != 0.0f ? beta * y[j0 + j] : 0.0f);
    }
}

// One dot product: 4 registers of 8 lanes over k, then the lanes added in a fixed order.
__attribute__((target("avx2,fma,f16c"))) float dot_half_simd(DType t, const float* x,
                                                             const uint16_t* w, int64_t K) {
    __m256 s[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                   _mm256_setzero_ps()};
    int64_t k = 0;
    for (; k + 32 <= K; k += 32)
        for (int r = 0; r < 4; ++r)
            s[r] = _mm256_fmadd_ps(_mm256_loadu_ps(x + k + 8 * r), load8(t, w + k + 8 * r), s[r]);
    for (; k + 8 <= K; k += 8)
        s[0] = _mm256_fmadd_ps(_mm256_loadu_ps(x + k), load8(t, w + k), s[0]);
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, _mm256_add_ps(_mm256_add_ps(s[0], s[1]), _mm256_add_ps(s[2], s[3])));
    float sum = 0.0f;
    for (float v : lanes)
        sum += v;
    for (; k < K; ++k)
        sum = std::fma(x[k], from_half(t, w[k]), sum);
    return sum;
}
#endif

} // namespace

bool use_portable_half_kernels(bool on) {
#ifdef QKV_HALF_SIMD
    return portable_only.exchange(on);
#else
    (void)on;
    return true;
#endif
}

void widen(DType t, const uint16_t* src, int64_t n, float* dst) {
#ifdef QKV_HALF_SIMD
    if (cpu_has_simd()) return widen_simd(t, src, n, dst);
#endif
    for (int64_t i = 0; i < n; ++i)
        dst[i] = from_half(t, src[i]);
}

void vec_times_half(DType t, const float* x, int64_t incx, int64_t K, const uint16_t* W,
                    int64_t ldw, int64_t n, float alpha, float beta, float* y) {
#ifdef QKV_HALF_SIMD
    if (cpu_has_simd()) return vec_times_half_simd(t, x, incx, K, W, ldw, n, alpha, beta, y);
#endif
    for (int64_t j = 0; j < n; ++j) {
        float s = 0.0f;
        for (int64_t k = 0; k < K; ++k)
            s += x[k * incx] * from_half(t, W[k * ldw + j]);
        y[j] = alpha * s + (beta != 0.0f ? beta * y[j] : 0.0f);
    }
}

void half_times_vec(DType t, const float* x, int64_t incx, int64_t K, const uint16_t* W,
                    int64_t ldw, int64_t n, float alpha, float beta, float* y) {
    bool simd = false;
#ifdef QKV_HALF_SIMD
    simd = incx == 1 && cpu_has_simd();
#endif
    for (int64_t j = 0; j < n; ++j) {
        const uint16_t* w = W + j * ldw;
        float s = 0.0f;
#ifdef QKV_HALF_SIMD
        if (simd) s = dot_half_simd(t, x, w, K);
#endif
        for (int64_t k = 0; !simd && k < K; ++k)
            s += x[k * incx] * from_half(t, w[k]);
        y[j] = alpha * s + (beta != 0.0f ? beta * y[j] : 0.0f);
    }
}

Tensor to_f32(const Tensor& t) {
    if (!is_half(t.dtype())) return t;
    Tensor out = Tensor::uninitialized(t.shape());
    widen(t.dtype(), t.u16(), t.numel(), out.f32());
    return out;
}

Tensor to_half(const Tensor& t, DType half) {
    Tensor out = Tensor::uninitialized(t.shape(), half);
    for (int64_t i = 0; i < t.numel(); ++i)
        out.u16()[i] = to_half(half, t.f32()[i]);
    return out;
}

} // namespace qkv

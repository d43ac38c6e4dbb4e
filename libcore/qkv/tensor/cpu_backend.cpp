// The CPU backend: matrix products as tiles of single-threaded OpenBLAS calls on qkv's thread
// pool (cpu_gemm: results independent of --threads), plain loops for the rest, the row loops
// on the same pool. (OpenMP loops beside OpenBLAS's threads once made both spin on two cores.)
#include "qkv/base/thread_pool.hpp"
#include "qkv/tensor/backend.hpp"
#include "qkv/tensor/cpu_gemm.hpp"
#include "qkv/tensor/cpu_kernels.hpp"
#include "qkv/tensor/half.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <malloc.h>
#include <memory>
#include <thread>
#include <vector>

namespace qkv {

namespace {

class CpuBackend : public Backend {
  public:
    explicit CpuBackend(int threads) {
        threads_ = threads > 0 ? threads : static_cast<int>(std::thread::hardware_concurrency());
        if (threads_ <= 0) threads_ = 1;
        blas_single_threaded();
        pool_ = std::make_unique<ThreadPool>(threads_);
        // Keep freed buffers in the heap: without this every decode step maps fresh pages for
        // its logits and scratch tensors and the kernel zeroes them (a sixth of decode time).
        mallopt(M_MMAP_THRESHOLD, 512 << 20);
        mallopt(M_TRIM_THRESHOLD, 1 << 30);
    }
    Device device() const override { return Device::CPU; }
    std::string describe() const override {
        return std::string("cpu (OpenBLAS ") + blas_core_name() + ", " + std::to_string(threads_) +
               " threads)";
    }
    Tensor empty(const Shape& shape, DType dtype) override { return Tensor::zeros(shape, dtype); }
    Tensor to_device(const Tensor& host) override { return host; }
    Tensor to_host(const Tensor& t) override { return t; }
    void copy(float* dst, const float* src, int64_t n) override {
        std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
    }

    void copy2d(float* dst, int64_t ldd, const float* src, int64_t lds, int64_t rows,
                int64_t cols) override {
        for (int64_t r = 0; r < rows; ++r)
            std::memcpy(dst + r * ldd, src + r * lds, static_cast<size_t>(cols) * sizeof(float));
    }

    void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
              int64_t lda, const float* B, int64_t ldb, float beta, float* C,
              int64_t ldc) override {
        cpu_gemm_batched(*pool_, ta, tb, M, N, K, alpha, A, lda, 0, B, ldb, 0, beta, C, ldc, 0, 1);
    }

    void gemm_batched(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha,
                      const float* A, int64_t lda, int64_t sa, const float* B, int64_t ldb,
                      int64_t sb, float beta, float* C, int64_t ldc, int64_t sc,
                      int64_t batch) override {
        cpu_gemm_batched(*pool_, ta, tb, M, N, K, alpha, A, lda, sa, B, ldb, sb, beta, C, ldc, sc,
                         batch);
    }

    void gemm_half_b(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                     int64_t lda, int64_t sa, DType b_type, const uint16_t* B, int64_t ldb,
                     int64_t sb, float beta, float* C, int64_t ldc, int64_t sc,
                     int64_t batch) override {
        cpu_gemm_half_b(*pool_, ta, tb, M, N, K, alpha, A, lda, sa, b_type, B, ldb, sb, beta, C,
                        ldc, sc, batch);
    }

    void layer_norm(const float* x, const float* w, const float* b, float eps, int64_t rows,
                    int64_t d, float* out, float* mean, float* rstd) override {
        pool_->run(rows, 16, [&](int64_t r0, int64_t r1) {
            for (int64_t r = r0; r < r1; ++r)
                layer_norm_row(x + r * d, w, b, eps, d, out + r * d, mean ? mean + r : nullptr,
                               rstd ? rstd + r : nullptr);
        });
    }

    void rms_norm(const float* x, const float* w, float eps, int64_t rows, int64_t d,
                  float* out) override {
        pool_->run(rows, 16, [&](int64_t r0, int64_t r1) {
            for (int64_t r = r0; r < r1; ++r)
                rms_norm_row(x + r * d, w, eps, d, out + r * d);
        });
    }

    void rotary(float* x, int64_t ld, int64_t rows, int64_t n_pos, int64_t heads, int64_t d_head,
                int64_t rot, const float* cos, const float* sin) override {
        pool_->run(rows, 16, [&](int64_t r0, int64_t r1) {
            for (int64_t r = r0; r < r1; ++r) {
                const int64_t p = r % n_pos;
                for (int64_t h = 0; h < heads; ++h)
                    rotary_row(x + r * ld + h * d_head, cos + p * (rot / 2), sin + p * (rot / 2),
                               rot);
            }
        });
    }

    void silu_mul(const float* gate_up, int64_t rows, int64_t n, float* out) override {
        pool_->run(rows, std::max<int64_t>(1, 32768 / std::max<int64_t>(n, 1)),
                   [&](int64_t r0, int64_t r1) {
                       for (int64_t r = r0; r < r1; ++r) {
                           const float* g = gate_up + r * 2 * n;
                           for (int64_t i = 0; i < n; ++i)
                               out[r * n + i] = silu_value(g[i]) * g[n + i];
                       }
                   });
    }

    void add_bias(float* x, const float* bias, int64_t rows, int64_t n) override {
        pool_->run(rows, std::max<int64_t>(1, 65536 / std::max<int64_t>(n, 1)),
                   [&](int64_t r0, int64_t r1) {
                       for (int64_t r = r0; r < r1; ++r)
                           for (int64_t i = 0; i < n; ++i)
                               x[r * n + i] += bias[i];
                   });
    }

    void add(float* y, const float* x, int64_t n) override {
        for (int64_t i = 0; i < n; ++i)
            y[i] += x[i];
    }

    void scale2d(float* x, int64_t ld, int64_t rows, int64_t cols, float s) override {
        for (int64_t r = 0; r < rows; ++r)
            for (int64_t c = 0; c < cols; ++c)
                x[r * ld + c] *= s;
    }

    void add2d(float* y, int64_t ldy, const float* x, int64_t ldx, int64_t rows,
               int64_t cols) override {
        for (int64_t r = 0; r < rows; ++r)
            for (int64_t c = 0; c < cols; ++c)
                y[r * ldy + c] += x[r * ldx + c];
    }

    void gelu(float* x, int64_t n) override {
        pool_->run(n, 32768, [x](int64_t i0, int64_t i1) {
            for (int64_t i = i0; i < i1; ++i)
                x[i] = gelu_value(x[i]);
        });
    }

    void gelu_erf(float* x, int64_t n) override {
        pool_->run(n, 32768, [x](int64_t i0, int64_t i1) {
            for (int64_t i = i0; i < i1; ++i)
                x[i] = gelu_erf_value(x[i]);
        });
    }

    void masked_softmax(float* scores, float* pattern, int64_t rows, int64_t q_len, int64_t k_len,
                        int64_t ld, bool causal, int64_t offset, const int32_t* key_mask) override {
        pool_->run(rows, 8, [&](int64_t r0, int64_t r1) {
            softmax_rows(scores, pattern, r0, r1, q_len, k_len, ld, causal, offset, key_mask);
        });
    }

    static void softmax_rows(float* scores, float* pattern, int64_t r0, int64_t r1, int64_t q_len,
                             int64_t k_len, int64_t ld, bool causal, int64_t offset,
                             const int32_t* key_mask) {
        const float neg_inf = -std::numeric_limits<float>::infinity();
        for (int64_t r = r0; r < r1; ++r) {
            const int64_t q = r % q_len;
            float* s = scores + r * ld;
            float* p = pattern + r * ld;
            // Keys after the query (k > q + offset) are masked out of a causal pattern.
            const int64_t visible = causal ? std::min(k_len, q + offset + 1) : k_len;
            for (int64_t k = visible; k < k_len; ++k)
                s[k] = neg_inf;
            if (key_mask) // pad keys, all but the query's own
                for (int64_t k = 0; k < visible; ++k)
                    if (!key_mask[k] && !(causal && k == q + offset)) s[k] = neg_inf;
            softmax_row(s, p, visible);
            for (int64_t k = visible; k < k_len; ++k)
                p[k] = 0.0f;
        }
    }

    void embed(const int32_t* tokens, int64_t n_pos, int64_t pos0, const int32_t* positions,
               const void* W_E, DType W_E_type, const float* W_pos, int64_t d, float* out_token,
               float* out_pos, float* out) override {
        for (int64_t p = 0; p < n_pos; ++p) {
            const int64_t row = static_cast<int64_t>(tokens[p]) * d;
            float* o = out + p * d;
            if (is_half(W_E_type))
                widen(W_E_type, static_cast<const uint16_t*>(W_E) + row, d, o);
            else
                std::memcpy(o, static_cast<const float*>(W_E) + row, d * sizeof(float));
            if (out_token) std::memcpy(out_token + p * d, o, d * sizeof(float));
            if (!W_pos) continue;
            const float* pe = W_pos + (positions ? positions[p] : pos0 + p) * d;
            for (int64_t i = 0; i < d; ++i)
                o[i] += pe[i];
            if (out_pos) std::memcpy(out_pos + p * d, pe, d * sizeof(float));
        }
    }

  private:
    int threads_ = 1;
    std::unique_ptr<ThreadPool> pool_;
};

} // namespace

std::unique_ptr<Backend> make_cpu_backend(int threads) {
    return std::make_unique<CpuBackend>(threads);
}

} // namespace qkv

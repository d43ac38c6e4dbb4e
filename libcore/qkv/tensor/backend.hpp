// Backend: where tensors live and how the forward pass's primitive operations run.
// The CPU backend does matrix products as tiles of single-threaded OpenBLAS calls (cpu_gemm);
// the CUDA backend with cuBLAS.
// All matrices are row-major. Pointers passed to an operation point into tensors of the
// backend's own device.
#pragma once
#include "qkv/tensor/tensor.hpp"

#include <memory>

namespace qkv {

class Backend {
  public:
    virtual ~Backend() = default;
    virtual Device device() const = 0;
    virtual std::string describe() const = 0; // e.g. "cpu (OpenBLAS Haswell, 2 threads)"

    // Memory.
    virtual Tensor empty(const Shape& shape, DType dtype = DType::F32) = 0; // zero-filled
    virtual Tensor to_device(const Tensor& host) = 0; // a copy on this backend
    virtual Tensor to_host(const Tensor& t) = 0;      // a copy on the CPU
    virtual void copy(float* dst, const float* src, int64_t n) = 0;
    // rows x cols block from src (row stride lds) to dst (row stride ldd).
    virtual void copy2d(float* dst, int64_t ldd, const float* src, int64_t lds, int64_t rows,
                        int64_t cols) = 0;

    // C[M,N] = alpha * op(A) op(B) + beta * C, row-major, op = transpose when trans is set.
    virtual void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                      const float* A, int64_t lda, const float* B, int64_t ldb, float beta,
                      float* C, int64_t ldc) = 0;

    // The same product for `batch` matrices at fixed strides: C_i = alpha op(A_i) op(B_i) +
    // beta C_i with A_i = A + i * stride_a, and so on (one cuBLAS call on a GPU).
    virtual void gemm_batched(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                              float alpha, const float* A, int64_t lda, int64_t stride_a,
                              const float* B, int64_t ldb, int64_t stride_b, float beta, float* C,
                              int64_t ldc, int64_t stride_c, int64_t batch) = 0;
    // The same with B 16-bit (b_type F16 or BF16): weights kept 16-bit in memory. Only the CPU
    // keeps them so (the CUDA backend widens them to float32 when they are copied to it).
    virtual void gemm_half_b(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                             float alpha, const float* A, int64_t lda, int64_t stride_a,
                             DType b_type, const uint16_t* B, int64_t ldb, int64_t stride_b,
                             float beta, float* C, int64_t ldc, int64_t stride_c,
                             int64_t batch) = 0;

    // out[rows, d] = (x - mean) / sqrt(var + eps) * w + b, statistics per row; mean and
    // rstd = 1 / sqrt(var + eps) [rows] are kept where not null (training's backward reads them).
    virtual void layer_norm(const float* x, const float* w, const float* b, float eps, int64_t rows,
                            int64_t d, float* out, float* mean, float* rstd) = 0;
    // out[rows, d] = x / sqrt(mean(x^2) + eps) * w, per row (RMSNorm).
    virtual void rms_norm(const float* x, const float* w, float eps, int64_t rows, int64_t d,
                          float* out) = 0;
    // Rotary position embedding in place: x[rows, heads * d_head] (row stride ld), row r at
    // position r % n_pos; cos and sin [n_pos, rot / 2] (rotary_angles); rotary_row's formula.
    virtual void rotary(float* x, int64_t ld, int64_t rows, int64_t n_pos, int64_t heads,
                        int64_t d_head, int64_t rot, const float* cos, const float* sin) = 0;
    // out[rows, n] = silu(gate_up[:, :n]) * gate_up[:, n:], gate_up [rows, 2 n] (SwiGLU).
    virtual void silu_mul(const float* gate_up, int64_t rows, int64_t n, float* out) = 0;
    // x[rows, n] += bias[n]
    virtual void add_bias(float* x, const float* bias, int64_t rows, int64_t n) = 0;
    // y[n] += x[n]
    virtual void add(float* y, const float* x, int64_t n) = 0;
    // x[rows, cols] (row stride ld) *= s
    virtual void scale2d(float* x, int64_t ld, int64_t rows, int64_t cols, float s) = 0;
    // y[rows, cols] (row stride ldy) += x[rows, cols] (row stride ldx)
    virtual void add2d(float* y, int64_t ldy, const float* x, int64_t ldx, int64_t rows,
                       int64_t cols) = 0;
    // x[n] = GELU(x), tanh approximation as in GPT-2.
    virtual void gelu(float* x, int64_t n) = 0;
    // x[n] = GELU(x), the exact (erf) form.
    virtual void gelu_erf(float* x, int64_t n) = 0;
    // scores[rows, k_len] (row stride ld), rows = heads * q_len, row r holding query
    // q = r % q_len: keys k > q + offset are masked to -inf when causal, and so are pad keys
    // (key_mask[k] == 0; key_mask [k_len] on the device, null: none), except the query's own
    // key (k == q + offset) when causal; then each row becomes a softmax into pattern (same
    // layout), 0 where masked.
    virtual void masked_softmax(float* scores, float* pattern, int64_t rows, int64_t q_len,
                                int64_t k_len, int64_t ld, bool causal, int64_t offset,
                                const int32_t* key_mask) = 0;
    // out[pos, d_model] = W_E[tokens[pos]] + W_pos[position], the position pos0 + pos or, where
    // positions [n_pos] (device) is given, positions[pos] (W_pos null: no position); W_E of
    // type W_E_type (16-bit only on the CPU).
    virtual void embed(const int32_t* tokens, int64_t n_pos, int64_t pos0, const int32_t* positions,
                       const void* W_E, DType W_E_type, const float* W_pos, int64_t d_model,
                       float* out_token, float* out_pos, float* out) = 0;
};

// The backend for --device; threads <= 0 means the machine's cores.
std::unique_ptr<Backend> make_backend(Device device, int threads);
std::unique_ptr<Backend> make_cpu_backend(int threads);
bool cuda_device_available(); // the CUDA backend was built and a device is present

} // namespace qkv

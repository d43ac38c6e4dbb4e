// cpu_gemm: matrix products on the CPU whose results never depend on the thread count.
//
// qkv, not the BLAS library, decides the order of every sum. A product C[M, N] is cut into
// tiles whose sizes depend on its shape alone; each tile is one single-threaded BLAS call
// (OpenBLAS never threads a call: its threaded kernels split sums by thread count on some
// CPUs, e.g. OPENBLAS_CORETYPE=Haswell or Zen), and the tiles are shared out over qkv's own
// thread pool. A tile is computed whole by whichever thread takes it, in the same order on
// 1, 2 or 16 threads, so every output element is bit-identical for any --threads.
#pragma once
#include "qkv/base/thread_pool.hpp"
#include "qkv/tensor/tensor.hpp"

#include <cstdint>

namespace qkv {

// C_i[M, N] = alpha op(A_i) op(B_i) + beta C_i for i < batch, row-major, op = transpose when
// trans is set; A_i = A + i * stride_a, likewise B_i and C_i.
void cpu_gemm_batched(ThreadPool& pool, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                      float alpha, const float* A, int64_t lda, int64_t stride_a, const float* B,
                      int64_t ldb, int64_t stride_b, float beta, float* C, int64_t ldc,
                      int64_t stride_c, int64_t batch);

// The same with B's matrices 16-bit (b_type F16 or BF16), widened inside the product: a one-row
// product reads each weight once (half.hpp's kernels), a larger tile widens its panel of B once
// and multiplies in float32. Tiles as above, so results do not depend on the thread count.
void cpu_gemm_half_b(ThreadPool& pool, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                     float alpha, const float* A, int64_t lda, int64_t stride_a, DType b_type,
                     const uint16_t* B, int64_t ldb, int64_t stride_b, float beta, float* C,
                     int64_t ldc, int64_t stride_c, int64_t batch);

// Makes the BLAS library compute every call on the calling thread (once per process).
void blas_single_threaded();
// The BLAS library's name for the kernels it runs on this CPU (e.g. "Haswell", "SkylakeX").
const char* blas_core_name();

} // namespace qkv

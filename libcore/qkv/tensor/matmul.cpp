#include "qkv/tensor/matmul.hpp"

#include "qkv/base/errors.hpp"

namespace qkv {

void matmul(Backend& be, const MatrixView& A, const MatrixView& B, const OutputView& C,
            int64_t batch, float alpha, float beta) {
    if (A.cols != B.rows || A.rows != C.rows || B.cols != C.cols)
        throw ShapeError("internal: matmul of [" + std::to_string(A.rows) + ", " +
                         std::to_string(A.cols) + "] by [" + std::to_string(B.rows) + ", " +
                         std::to_string(B.cols) + "] into [" + std::to_string(C.rows) + ", " +
                         std::to_string(C.cols) + "]");
    if (A.dtype != DType::F32) throw Error("internal: matmul of a 16-bit left-hand side");
    const auto* a = static_cast<const float*>(A.data);
    if (B.dtype != DType::F32)
        be.gemm_half_b(A.transposed, B.transposed, C.rows, C.cols, A.cols, alpha, a, A.ld, A.stride,
                       B.dtype, static_cast<const uint16_t*>(B.data), B.ld, B.stride, beta, C.data,
                       C.ld, C.stride, batch);
    else if (batch == 1 && A.stride == 0 && B.stride == 0)
        be.gemm(A.transposed, B.transposed, C.rows, C.cols, A.cols, alpha, a, A.ld,
                static_cast<const float*>(B.data), B.ld, beta, C.data, C.ld);
    else
        be.gemm_batched(A.transposed, B.transposed, C.rows, C.cols, A.cols, alpha, a, A.ld,
                        A.stride, static_cast<const float*>(B.data), B.ld, B.stride, beta, C.data,
                        C.ld, C.stride, batch);
}

MatrixView weight_view(const Tensor& W, int64_t offset, int64_t rows, int64_t cols, int64_t ld,
                       int64_t stride) {
    const auto* at = static_cast<const char*>(W.data()) + offset * dtype_size(W.dtype());
    return {at, rows, cols, ld, stride, false, W.dtype()};
}

} // namespace qkv

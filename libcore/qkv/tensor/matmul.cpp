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
    if (batch == 1 && A.stride == 0 && B.stride == 0)
        be.gemm(A.transposed, B.transposed, C.rows, C.cols, A.cols, alpha, A.data, A.ld, B.data,
                B.ld, beta, C.data, C.ld);
    else
        be.gemm_batched(A.transposed, B.transposed, C.rows, C.cols, A.cols, alpha, A.data, A.ld,
                        A.stride, B.data, B.ld, B.stride, beta, C.data, C.ld, C.stride, batch);
}

} // namespace qkv

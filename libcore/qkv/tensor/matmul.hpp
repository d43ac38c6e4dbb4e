// matmul: a matrix product written as the math reads, on a backend. A MatrixView is a batch of
// row-major matrices at a fixed stride (stride 0: the same matrix for every item), so a product
// over all heads at once is one call:
//     scores_h = q_h k_h^T  for every head h
//     matmul(be, heads(q), heads(k).T(), heads_out(scores));
#pragma once
#include "qkv/tensor/backend.hpp"

namespace qkv {

struct MatrixView {
    const void* data;
    int64_t rows, cols; // of each matrix, as it enters the product
    int64_t ld;         // elements between rows in memory
    int64_t stride = 0; // elements between consecutive matrices of the batch
    bool transposed = false;
    DType dtype = DType::F32; // a weight kept 16-bit (F16, BF16) may be the right-hand side
    MatrixView T() const { return {data, cols, rows, ld, stride, !transposed, dtype}; }
};

// A weight matrix [rows, cols] in W (of its own dtype) starting at element offset, row stride
// ld (the weights of a layer, or one of its column blocks).
MatrixView weight_view(const Tensor& W, int64_t offset, int64_t rows, int64_t cols, int64_t ld,
                       int64_t stride = 0);

struct OutputView {
    float* data;
    int64_t rows, cols, ld, stride = 0;
};

// C_i = alpha A_i B_i + beta C_i for i < batch; throws ShapeError when the shapes disagree.
void matmul(Backend& be, const MatrixView& A, const MatrixView& B, const OutputView& C,
            int64_t batch = 1, float alpha = 1.0f, float beta = 0.0f);

} // namespace qkv

#include "qkv/tensor/cpu_gemm.hpp"

#include "qkv/tensor/half.hpp"

#include <algorithm>
#include <cblas.h>
#include <vector>

namespace qkv {

namespace {

// Tiles are at most kTileMax x kTileMax outputs (kVectorMax for one-row products): each
// single-threaded call packs its own panels of A and B, so a larger tile repacks less (a
// 128-wide tile cost about 5% against OpenBLAS's own threading, which shares its packed
// panels). The parts in each direction are then made even, so that a product of 64 tokens by
// 768 columns still keeps two threads busy (bench/gemm_bench measures the choice).
// A one-row product over 16-bit weights takes wider parts (kHalfVectorMax): its rows are read
// as runs of a part's width, and runs of 1 KiB kept the memory busier than runs of 512 bytes.
constexpr int64_t kTileMax = 512, kVectorMax = 256, kHalfVectorMax = 512;
// A 16-bit product of fewer rows than this runs each row as a one-row product: widening a panel
// for sgemm costs more than reading the weights that many times.
constexpr int64_t kHalfPanelRows = 4;
// Below this many multiply-adds a product runs on the caller alone: waking threads costs more.
constexpr int64_t kInline = 1 << 16;

// The tile grid of one product: C's rows cut into row_parts and its columns into col_parts
// near-equal parts (edges on multiples of 16, the kernels' width). A function of the shape only.
struct GemmTiles {
    int64_t M, N, row_parts, col_parts;
    int64_t count() const { return row_parts * col_parts; }
    int64_t row_edge(int64_t i) const { return edge(M, row_parts, i); } // tile row i starts here
    int64_t col_edge(int64_t j) const { return edge(N, col_parts, j); }
    static int64_t edge(int64_t n, int64_t parts, int64_t i) {
        return i >= parts ? n : n * i / parts / 16 * 16;
    }
};

int64_t even_parts(int64_t n, int64_t max_size) {
    const int64_t parts = (n + max_size - 1) / max_size;
    return parts > 1 && parts % 2 ? parts + 1 : parts;
}

blasint bl(int64_t v) {
    return static_cast<blasint>(v);
}

// One tile as one single-threaded BLAS call: the rows [m0, m0 + m) and columns [n0, n0 + n)
// of C = alpha op(A) op(B) + beta C.
void gemm_tile(bool ta, bool tb, int64_t m0, int64_t m, int64_t n0, int64_t n, int64_t K,
               float alpha, const float* A, int64_t lda, const float* B, int64_t ldb, float beta,
               float* C, int64_t ldc) {
    const float* a = ta ? A + m0 : A + m0 * lda; // op(A) rows m0..
    const float* b = tb ? B + n0 * ldb : B + n0; // op(B) columns n0..
    float* c = C + m0 * ldc + n0;
    if (m == 1) {
        // One row: a matrix-vector product reads B once, where sgemm would first pack it.
        if (beta == 0.0f) std::fill(c, c + n, 0.0f);
        const blasint x_inc = ta ? bl(lda) : 1;
        if (tb) // c[n] = alpha B[n, K] x + beta c
            cblas_sgemv(CblasRowMajor, CblasNoTrans, bl(n), bl(K), alpha, b, bl(ldb), a, x_inc,
                        beta, c, 1);
        else // c[n] = alpha x B[K, n] + beta c
            cblas_sgemv(CblasRowMajor, CblasTrans, bl(K), bl(n), alpha, b, bl(ldb), a, x_inc, beta,
                        c, 1);
        return;
    }
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                bl(m), bl(n), bl(K), alpha, a, bl(lda), b, bl(ldb), beta, c, bl(ldc));
}

// rows_by_row: products of fewer rows run row by row (tiles cut only the columns, vector_max
// wide at most).
GemmTiles gemm_tiles(int64_t M, int64_t N, int64_t rows_by_row, int64_t vector_max) {
    if (M < rows_by_row) return {M, N, 1, even_parts(N, vector_max)};
    return {M, N, even_parts(M, kTileMax), even_parts(N, kTileMax)};
}

// One tile of C = alpha op(A) op(B) + beta C with B 16-bit: as gemm_tile, the rows [m0, m0 + m)
// and columns [n0, n0 + n).
void half_b_tile(bool ta, bool tb, int64_t m0, int64_t m, int64_t n0, int64_t n, int64_t K,
                 float alpha, const float* A, int64_t lda, DType b_type, const uint16_t* B,
                 int64_t ldb, float beta, float* C, int64_t ldc) {
    if (m < kHalfPanelRows) { // decoding, a short prompt: row by row, each weight read as is
        for (int64_t i = m0; i < m0 + m; ++i) {
            const float* x = ta ? A + i : A + i * lda;
            const int64_t incx = ta ? lda : 1;
            float* c = C + i * ldc + n0;
            if (tb) // c[n] = alpha B[n, K] x + beta c
                half_times_vec(b_type, x, incx, K, B + n0 * ldb, ldb, n, alpha, beta, c);
            else // c[n] = alpha x B[K, n] + beta c
                vec_times_half(b_type, x, incx, K, B + n0, ldb, n, alpha, beta, c);
        }
        return;
    }
    // More rows: this tile's panel of B widened once (op(B) [K, n]), then one sgemm.
    thread_local std::vector<float> panel;
    panel.resize(static_cast<size_t>(K * n));
    if (tb) // B [N, K]: rows n0..n0+n
        for (int64_t j = 0; j < n; ++j)
            widen(b_type, B + (n0 + j) * ldb, K, panel.data() + j * K);
    else // B [K, N]: columns n0..n0+n of every row
        for (int64_t k = 0; k < K; ++k)
            widen(b_type, B + k * ldb + n0, n, panel.data() + k * n);
    gemm_tile(ta, tb, m0, m, 0, n, K, alpha, A, lda, panel.data(), tb ? K : n, beta, C + n0, ldc);
}

// Runs tile(matrix, m0, m, n0, n) for every tile of every matrix of the batch, on the pool
// unless the product is small.
template <typename Tile>
void each_tile(ThreadPool& pool, int64_t M, int64_t N, int64_t K, int64_t batch, const GemmTiles& t,
               Tile tile) {
    if (M <= 0 || N <= 0 || batch <= 0) return;
    auto one = [&](int64_t i) {
        const int64_t mat = i / t.count(), r = i % t.count() / t.col_parts, c = i % t.col_parts;
        const int64_t m0 = t.row_edge(r), n0 = t.col_edge(c);
        tile(mat, m0, t.row_edge(r + 1) - m0, n0, t.col_edge(c + 1) - n0);
    };
    const int64_t n = batch * t.count();
    if (batch * M * N * K < kInline) {
        for (int64_t i = 0; i < n; ++i)
            one(i);
        return;
    }
    pool.each(n, one);
}

} // namespace

void cpu_gemm_batched(ThreadPool& pool, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
                      float alpha, const float* A, int64_t lda, int64_t sa, const float* B,
                      int64_t ldb, int64_t sb, float beta, float* C, int64_t ldc, int64_t sc,
                      int64_t batch) {
    each_tile(pool, M, N, K, batch, gemm_tiles(M, N, 2, kVectorMax),
              [&](int64_t i, int64_t m0, int64_t m, int64_t n0, int64_t n) {
                  gemm_tile(ta, tb, m0, m, n0, n, K, alpha, A + i * sa, lda, B + i * sb, ldb, beta,
                            C + i * sc, ldc);
              });
}

void cpu_gemm_half_b(ThreadPool& pool, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
                     float alpha, const float* A, int64_t lda, int64_t sa, DType b_type,
                     const uint16_t* B, int64_t ldb, int64_t sb, float beta, float* C, int64_t ldc,
                     int64_t sc, int64_t batch) {
    each_tile(pool, M, N, K, batch, gemm_tiles(M, N, kHalfPanelRows, kHalfVectorMax),
              [&](int64_t i, int64_t m0, int64_t m, int64_t n0, int64_t n) {
                  half_b_tile(ta, tb, m0, m, n0, n, K, alpha, A + i * sa, lda, b_type, B + i * sb,
                              ldb, beta, C + i * sc, ldc);
              });
}

void blas_single_threaded() {
    openblas_set_num_threads(1);
}

const char* blas_core_name() {
    return openblas_get_corename();
}

} // namespace qkv

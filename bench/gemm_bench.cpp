// Matrix products as qkv runs them (cpu_gemm: tiles of single-threaded OpenBLAS calls on qkv's
// pool, bit-identical for any thread count) against one OpenBLAS call threaded by OpenBLAS, on
// GPT-2's shapes. GFLOP/s = 2 M N K batch / seconds, the median of several runs.
// Prints one JSON object. Usage: gemm_bench THREADS [D_MODEL] [T]
#include "qkv/tensor/cpu_gemm.hpp"

#include <algorithm>
#include <cblas.h>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <thread>
#include <vector>

namespace {
double seconds(const std::function<void()>& f) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
double median(std::vector<double> t) {
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
}
} // namespace

int main(int argc, char** argv) {
    const int threads = argc > 1 ? std::atoi(argv[1]) : 2;
    const int64_t D = argc > 2 ? std::atoi(argv[2]) : 768;
    const int64_t T = argc > 3 ? std::atoi(argv[3]) : 256;
    const int64_t H = D / 64, dh = 64, V = 50257;
    struct Shape {
        const char* what;
        bool tb;
        int64_t M, N, K, batch;
    };
    const Shape shapes[] = {
        {"qkv", false, T, 3 * D, D, 1},
        {"attn_out", false, T, D, D, 1},
        {"mlp_in", false, T, 4 * D, D, 1},
        {"mlp_out", false, T, D, 4 * D, 1},
        {"scores", true, T, T, dh, H},
        {"weighted_v", false, T, dh, T, H},
        {"unembed_last", false, 1, V, D, 1},
        {"decode_qkv", false, 1, 3 * D, D, 1},
        {"decode_mlp_out", false, 1, D, 4 * D, 1},
        {"backward_dW", false, 4 * D, D, T, 1},
    };
    qkv::ThreadPool pool(threads);
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    std::printf("{\"threads\": %d, \"core\": \"%s\", \"shapes\": [", threads,
                openblas_get_corename());
    for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); ++s) {
        const Shape& sh = shapes[s];
        const int64_t M = sh.M, N = sh.N, K = sh.K;
        std::vector<float> A(M * K * sh.batch), B(K * N * sh.batch), C(M * N * sh.batch);
        for (size_t i = 0; i < A.size(); ++i)
            A[i] = std::sin(0.1f * i);
        for (size_t i = 0; i < B.size(); ++i)
            B[i] = std::cos(0.1f * i);
        const int64_t ldb = sh.tb ? K : N;
        const double flops = 2.0 * M * N * K * sh.batch;
        const int runs = std::max(15, std::min(400, static_cast<int>(2e10 / flops)));
        auto openblas = [&] {
            for (int64_t i = 0; i < sh.batch; ++i)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, sh.tb ? CblasTrans : CblasNoTrans, M, N, K,
                            1.0f, A.data() + i * M * K, K, B.data() + i * K * N, ldb, 0.0f,
                            C.data() + i * M * N, N);
        };
        auto tiled = [&] {
            qkv::cpu_gemm_batched(pool, false, sh.tb, M, N, K, 1.0f, A.data(), K, M * K, B.data(),
                                  ldb, K * N, 0.0f, C.data(), N, M * N, sh.batch);
        };
        // qkv's tiles first: once OpenBLAS has threaded a call, its idle threads spin for a while
        // and would take a core from qkv's pool.
        std::vector<double> t_a, t_b;
        qkv::blas_single_threaded();
        for (int r = 0; r < runs; ++r)
            t_b.push_back(seconds(tiled));
        openblas_set_num_threads(threads);
        for (int r = 0; r < runs; ++r)
            t_a.push_back(seconds(openblas));
        qkv::blas_single_threaded();
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
        const double t_blas = median(t_a), t_qkv = median(t_b);
        std::printf("%s\n {\"what\": \"%s\", \"M\": %ld, \"N\": %ld, \"K\": %ld, \"batch\": %ld, "
                    "\"openblas_gflops\": %.1f, \"qkv_gflops\": %.1f, \"ratio\": %.2f}",
                    s ? "," : "", sh.what, static_cast<long>(M), static_cast<long>(N),
                    static_cast<long>(K), static_cast<long>(sh.batch), flops / t_blas / 1e9,
                    flops / t_qkv / 1e9, t_blas / t_qkv);
    }
    std::printf("]}\n");
}

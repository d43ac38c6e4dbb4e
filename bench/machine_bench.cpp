// The machine's own limits, for the benchmark's ratios: cblas_sgemm GFLOP/s on GPT-2 shapes
// (FLOPs = 2 M N K) and memory read bandwidth (bytes of a 1 GiB array summed / seconds).
// Prints one JSON object. Usage: machine_bench THREADS [D_MODEL]
#include <algorithm>
#include <cblas.h>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <vector>

namespace {
double seconds_of(const std::function<void()>& f, int runs) {
    std::vector<double> t;
    for (int r = 0; r < runs; ++r) {
        const auto t0 = std::chrono::steady_clock::now();
        f();
        t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
}
} // namespace

int main(int argc, char** argv) {
    const int threads = argc > 1 ? std::atoi(argv[1]) : 2;
    const int D = argc > 2 ? std::atoi(argv[2]) : 768;
    openblas_set_num_threads(threads);
    std::printf("{\"threads\": %d, \"sgemm\": [", threads);
    // (M, N, K): the QKV projection, the MLP up-projection, and a one-row product (decode)
    const int shapes[][3] = {{256, 3 * D, D}, {256, 4 * D, D}, {1024, 4 * D, D}, {1, 4 * D, D}};
    bool first = true;
    for (auto& s : shapes) {
        const int M = s[0], N = s[1], K = s[2];
        std::vector<float> A(size_t(M) * K, 0.5f), B(size_t(K) * N, 0.25f), C(size_t(M) * N);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1, A.data(), K, B.data(), N,
                    0, C.data(), N);
        const int runs = M == 1 ? 200 : 10;
        const double t = seconds_of(
            [&] {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1, A.data(), K,
                            B.data(), N, 0, C.data(), N);
            },
            runs);
        std::printf("%s{\"M\": %d, \"N\": %d, \"K\": %d, \"gflops\": %.1f}", first ? "" : ", ", M,
                    N, K, 2.0 * M * N * K / t / 1e9);
        first = false;
    }
    const size_t n = (size_t(1) << 30) / sizeof(float);
    std::vector<float> big(n, 1.0f);
    volatile float sink = 0;
    const double t = seconds_of(
        [&] {
            float acc[8] = {0};
            for (size_t i = 0; i < n; i += 8)
                for (int k = 0; k < 8; ++k)
                    acc[k] += big[i + k];
            sink = acc[0] + acc[7];
        },
        5);
    (void)sink;
    std::printf("], \"read_gb_per_s\": %.1f}\n", n * sizeof(float) / t / 1e9);
}

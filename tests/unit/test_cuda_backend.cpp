// The CUDA backend against the CPU backend, op by op (1e-4 relative). Skips (exit 77) when no
// CUDA device is present.
#define CATCH_CONFIG_RUNNER
#include "qkv/tensor/backend.hpp"

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdlib>
#include <iostream>

using namespace qkv;

namespace {
Tensor random_host(const Shape& s, float seed) {
    Tensor t = Tensor::zeros(s);
    for (int64_t i = 0; i < t.numel(); ++i)
        t.f32()[i] = std::sin(seed + 0.731f * i);
    return t;
}
void require_close(const Tensor& cpu, const Tensor& gpu_host) {
    float scale = 0, err = 0;
    for (int64_t i = 0; i < cpu.numel(); ++i) {
        if (std::isinf(cpu.f32()[i])) {
            REQUIRE(std::isinf(gpu_host.f32()[i]));
            continue;
        }
        scale = std::max(scale, std::abs(cpu.f32()[i]));
        err = std::max(err, std::abs(cpu.f32()[i] - gpu_host.f32()[i]));
    }
    REQUIRE(err <= 1e-4f * scale);
}
} // namespace

TEST_CASE("cuda backend: every op equals the CPU backend") {
    auto cpu = make_cpu_backend(2);
    auto gpu = make_backend(Device::CUDA, 0);
    const int64_t M = 37, N = 53, K = 29;
    Tensor A = random_host({M, K}, 1), B = random_host({K, N}, 2), C = random_host({M, N}, 3);
    Tensor Cg = gpu->to_device(C);
    Tensor Ag = gpu->to_device(A), Bg = gpu->to_device(B);
    cpu->gemm(false, false, M, N, K, 0.5f, A.f32(), K, B.f32(), N, 1.0f, C.f32(), N);
    gpu->gemm(false, false, M, N, K, 0.5f, Ag.f32(), K, Bg.f32(), N, 1.0f, Cg.f32(), N);
    require_close(C, gpu->to_host(Cg));

    Tensor Bt = random_host({N, K}, 4), D = Tensor::zeros({M, N});
    Tensor Btg = gpu->to_device(Bt), Dg = gpu->empty({M, N});
    cpu->gemm(false, true, M, N, K, 1.0f, A.f32(), K, Bt.f32(), K, 0.0f, D.f32(), N);
    gpu->gemm(false, true, M, N, K, 1.0f, Ag.f32(), K, Btg.f32(), K, 0.0f, Dg.f32(), N);
    require_close(D, gpu->to_host(Dg));

    // strided batches with transposed B, as attention scores use them
    {
        const int64_t T = 7, Tk = 9, dh = 5, H = 3, ld = 3 * H * dh;
        Tensor q = random_host({T, ld}, 11), k = random_host({Tk, ld}, 12);
        Tensor s1 = Tensor::zeros({H, T, Tk});
        Tensor qg = gpu->to_device(q), kg = gpu->to_device(k), s1g = gpu->empty({H, T, Tk});
        cpu->gemm_batched(false, true, T, Tk, dh, 0.5f, q.f32(), ld, dh, k.f32(), ld, dh, 0.0f,
                          s1.f32(), Tk, T * Tk, H);
        gpu->gemm_batched(false, true, T, Tk, dh, 0.5f, qg.f32(), ld, dh, kg.f32(), ld, dh, 0.0f,
                          s1g.f32(), Tk, T * Tk, H);
        require_close(s1, gpu->to_host(s1g));
    }

    Tensor x = random_host({M, N}, 5), w = random_host({N}, 6), b = random_host({N}, 7);
    Tensor out = Tensor::zeros({M, N});
    Tensor xg = gpu->to_device(x), wg = gpu->to_device(w), bg = gpu->to_device(b);
    Tensor outg = gpu->empty({M, N});
    cpu->layer_norm(x.f32(), w.f32(), b.f32(), 1e-5f, M, N, out.f32(), nullptr, nullptr);
    gpu->layer_norm(xg.f32(), wg.f32(), bg.f32(), 1e-5f, M, N, outg.f32(), nullptr, nullptr);
    require_close(out, gpu->to_host(outg));

    cpu->add_bias(x.f32(), b.f32(), M, N);
    gpu->add_bias(xg.f32(), bg.f32(), M, N);
    cpu->gelu(x.f32(), M * N);
    gpu->gelu(xg.f32(), M * N);
    cpu->add(x.f32(), out.f32(), M * N);
    gpu->add(xg.f32(), outg.f32(), M * N);
    require_close(x, gpu->to_host(xg));

    {
        Tensor r = Tensor::zeros({M, N}), rg = gpu->empty({M, N});
        cpu->rms_norm(x.f32(), w.f32(), 1e-5f, M, N, r.f32());
        gpu->rms_norm(xg.f32(), wg.f32(), 1e-5f, M, N, rg.f32());
        require_close(r, gpu->to_host(rg));
        // rows of 3 heads of d_head 8 (rot 6) in a row of 30, 5 positions
        Tensor q = random_host({10, 30}, 9), cs = random_host({5, 3}, 10),
               sn = random_host({5, 3}, 11);
        Tensor qg = gpu->to_device(q), csg = gpu->to_device(cs), sng = gpu->to_device(sn);
        cpu->rotary(q.f32(), 30, 10, 5, 3, 8, 6, cs.f32(), sn.f32());
        gpu->rotary(qg.f32(), 30, 10, 5, 3, 8, 6, csg.f32(), sng.f32());
        require_close(q, gpu->to_host(qg));
        Tensor h = Tensor::zeros({M, N / 2}), hg = gpu->empty({M, N / 2});
        cpu->silu_mul(x.f32(), M, N / 2, h.f32());
        gpu->silu_mul(xg.f32(), M, N / 2, hg.f32());
        require_close(h, gpu->to_host(hg));
        cpu->gelu_erf(r.f32(), M * N);
        gpu->gelu_erf(rg.f32(), M * N);
        require_close(r, gpu->to_host(rg));
    }

    for (bool causal : {true, false}) {
        Tensor s = random_host({M, N}, 8), p = Tensor::zeros({M, N});
        Tensor sg = gpu->to_device(s), pg = gpu->empty({M, N});
        // two heads of M / 2 queries each
        cpu->masked_softmax(s.f32(), p.f32(), M, M / 2, N, N, causal, N - M / 2, nullptr);
        gpu->masked_softmax(sg.f32(), pg.f32(), M, M / 2, N, N, causal, N - M / 2, nullptr);
        require_close(p, gpu->to_host(pg));
        require_close(s, gpu->to_host(sg));
    }
}

int main(int argc, char** argv) {
    setenv("QKV_CUDA_MODULE", QKV_CUDA_MODULE, 0); // the module of this build
    if (!cuda_device_available()) {
        std::cout << "skipped: no CUDA device on this machine\n";
        return 77;
    }
    return Catch::Session().run(argc, argv);
}

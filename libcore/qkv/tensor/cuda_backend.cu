// The CUDA backend: tensors in device memory (cudaMalloc), matrix products with cuBLAS in
// FP32 (TF32 off), and small kernels of our own for the element-wise and row-wise steps.
#include "qkv/base/errors.hpp"
#include "qkv/tensor/backend.hpp"
#include "qkv/tensor/half.hpp"

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cmath>
#include <string>
#include <unordered_map>
#include <vector>

namespace qkv {

namespace {

void check(cudaError_t e, const char* what) {
    if (e != cudaSuccess) throw Error(std::string("CUDA: ") + what + ": " + cudaGetErrorString(e));
}
void check(cublasStatus_t s, const char* what) {
    if (s != CUBLAS_STATUS_SUCCESS)
        throw Error(std::string("cuBLAS: ") + what + ": status " + std::to_string(int(s)));
}

// Device memory is reused: a freed block goes back to a pool by size, so a decode step
// allocates nothing from the driver once the first step has run (cudaMalloc synchronises).
class Pool {
  public:
    // Sizes are rounded up (powers of two below 16 MiB, 2 MiB steps above), so a buffer that
    // grows by one position a step, like the attention scores in decoding, still finds a block.
    static size_t bucket(size_t bytes) {
        if (bytes >= (16u << 20)) return (bytes + (2u << 20) - 1) / (2u << 20) * (2u << 20);
        size_t b = 256;
        while (b < bytes)
            b <<= 1;
        return b;
    }
    void* get(size_t bytes) {
        auto& list = free_[bytes];
        if (!list.empty()) {
            void* p = list.back();
            list.pop_back();
            return p;
        }
        void* p = nullptr;
        check(cudaMalloc(&p, bytes), "cudaMalloc");
        return p;
    }
    void put(void* p, size_t bytes) { free_[bytes].push_back(p); }
    ~Pool() {
        for (auto& [n, list] : free_)
            for (void* p : list)
                cudaFree(p);
    }

  private:
    std::unordered_map<size_t, std::vector<void*>> free_;
};

class CudaStorage : public Storage {
  public:
    CudaStorage(std::shared_ptr<Pool> pool, size_t bytes)
        : pool_(std::move(pool)), bytes_(Pool::bucket(bytes)) {
        ptr_ = pool_->get(bytes_);
        check(cudaMemsetAsync(ptr_, 0, bytes_), "cudaMemset");
    }
    ~CudaStorage() override { pool_->put(ptr_, bytes_); }
    void* data() override { return ptr_; }
    Device device() const override { return Device::CUDA; }

  private:
    std::shared_ptr<Pool> pool_;
    size_t bytes_;
    void* ptr_ = nullptr;
};

// The sum of v over the block's threads, on every thread; red: 32 floats of shared memory.
__device__ float block_sum(float v, float* red) {
    for (int off = 16; off; off >>= 1)
        v += __shfl_down_sync(0xffffffff, v, off);
    if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = v;
    __syncthreads();
    if (threadIdx.x == 0) {
        float t = 0;
        for (int i = 0; i < (blockDim.x + 31) / 32; ++i)
            t += red[i];
        red[0] = t;
    }
    __syncthreads();
    const float total = red[0];
    __syncthreads(); // red is free again for the next sum
    return total;
}

__global__ void k_layer_norm(const float* x, const float* w, const float* b, float eps, int64_t d,
                             float* out, float* mean_out, float* rstd_out) {
    // one block per row
    const float* xr = x + blockIdx.x * d;
    float* o = out + blockIdx.x * d;
    __shared__ float red[32];
    float s = 0;
    for (int64_t i = threadIdx.x; i < d; i += blockDim.x)
        s += xr[i];
    const float mean = block_sum(s, red) / d;
    float v = 0;
    for (int64_t i = threadIdx.x; i < d; i += blockDim.x) {
        const float c = xr[i] - mean;
        v += c * c;
    }
    const float rstd = rsqrtf(block_sum(v, red) / d + eps);
    if (threadIdx.x == 0 && mean_out) mean_out[blockIdx.x] = mean;
    if (threadIdx.x == 0 && rstd_out) rstd_out[blockIdx.x] = rstd;
    for (int64_t i = threadIdx.x; i < d; i += blockDim.x)
        o[i] = (xr[i] - mean) * rstd * w[i] + b[i];
}

__global__ void k_add_bias(float* x, const float* bias, int64_t total, int64_t n) {
    int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    if (i < total) x[i] += bias[i % n];
}
__global__ void k_add(float* y, const float* x, int64_t n) {
    int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    if (i < n) y[i] += x[i];
}
__global__ void k_scale2d(float* x, int64_t ld, int64_t rows, int64_t cols, float s) {
    int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    if (i < rows * cols) x[(i / cols) * ld + i % cols] *= s;
}
__global__ void k_add2d(float* y, int64_t ldy, const float* x, int64_t ldx, int64_t rows,
                        int64_t cols) {
    int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    if (i < rows * cols) y[(i / cols) * ldy + i % cols] += x[(i / cols) * ldx + i % cols];
}
__global__ void k_gelu(float* x, int64_t n) {
    int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    if (i < n) {
        const float v = x[i];
        x[i] = 0.5f * v * (1.0f + tanhf(0.7978845608028654f * (v + 0.044715f * v * v * v)));
    }
}
// one thread block per query row; serial over keys in each thread's strided share
__global__ void k_masked_softmax(float* scores, float* pattern, int64_t q_len, int64_t k_len,
                                 int64_t ld, bool causal, int64_t offset, const int32_t* key_mask) {
    const int64_t r = blockIdx.x;
    const int64_t q = r % q_len;
    float* s = scores + r * ld;
    float* p = pattern + r * ld;
    int64_t visible = causal ? min(k_len, q + offset + 1) : k_len;
    __shared__ float red[32];
    float mx = -INFINITY;
    for (int64_t k = threadIdx.x; k < k_len; k += blockDim.x) {
        if (k >= visible || (key_mask && !key_mask[k] && !(causal && k == q + offset)))
            s[k] = -INFINITY;
        else
            mx = fmaxf(mx, s[k]);
    }
    for (int off = 16; off; off >>= 1)
        mx = fmaxf(mx, __shfl_down_sync(0xffffffff, mx, off));
    if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = mx;
    __syncthreads();
    if (threadIdx.x == 0) {
        float t = -INFINITY;
        for (int i = 0; i < (blockDim.x + 31) / 32; ++i)
            t = fmaxf(t, red[i]);
        red[0] = t;
    }
    __syncthreads();
    mx = red[0];
    __syncthreads();
    float sum = 0;
    for (int64_t k = threadIdx.x; k < k_len; k += blockDim.x) {
        const float e = k < visible ? expf(s[k] - mx) : 0.0f;
        p[k] = e;
        sum += e;
    }
    for (int off = 16; off; off >>= 1)
        sum += __shfl_down_sync(0xffffffff, sum, off);
    if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = sum;
    __syncthreads();
    if (threadIdx.x == 0) {
        float t = 0;
        for (int i = 0; i < (blockDim.x + 31) / 32; ++i)
            t += red[i];
        red[0] = 1.0f / t;
    }
    __syncthreads();
    const float inv = red[0];
    for (int64_t k = threadIdx.x; k < k_len; k += blockDim.x)
        p[k] *= inv;
}
__global__ void k_embed(const int32_t* tokens, int64_t pos0, const int32_t* positions,
                        const float* W_E, const float* W_pos, int64_t d, float* out_token,
                        float* out_pos, float* out) {
    const int64_t p = blockIdx.x;
    const float* te = W_E + (int64_t)tokens[p] * d;
    const float* pe = W_pos ? W_pos + (positions ? positions[p] : pos0 + p) * d : nullptr;
    for (int64_t i = threadIdx.x; i < d; i += blockDim.x) {
        out[p * d + i] = pe ? te[i] + pe[i] : te[i];
        if (out_token) out_token[p * d + i] = te[i];
        if (out_pos && pe) out_pos[p * d + i] = pe[i];
    }
}

// RMSNorm, one block per row.
__global__ void k_rms_norm(const float* x, const float* w, float eps, int64_t d, float* out) {
    const float* xr = x + blockIdx.x * d;
    float* o = out + blockIdx.x * d;
    __shared__ float red[32];
    float s = 0;
    for (int64_t i = threadIdx.x; i < d; i += blockDim.x)
        s += xr[i] * xr[i];
    const float rstd = rsqrtf(block_sum(s, red) / d + eps);
    for (int64_t i = threadIdx.x; i < d; i += blockDim.x)
        o[i] = xr[i] * rstd * w[i];
}

// Rotary embedding: one thread per (row, head, pair).
__global__ void k_rotary(float* x, int64_t ld, int64_t rows, int64_t n_pos, int64_t heads,
                         int64_t d_head, int64_t half, const float* cos, const float* sin) {
    const int64_t t = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    if (t >= rows * heads * half) return;
    const int64_t i = t % half, h = (t / half) % heads, r = t / (half * heads);
    const int64_t p = r % n_pos;
    float* v = x + r * ld + h * d_head;
    const float a = v[i], b = v[i + half], c = cos[p * half + i], s = sin[p * half + i];
    v[i] = a * c - b * s;
    v[i + half] = b * c + a * s;
}

__global__ void k_gelu_erf(float* x, int64_t n) {
    const int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    if (i < n) x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
}

__global__ void k_silu_mul(const float* gate_up, int64_t rows, int64_t n, float* out) {
    const int64_t t = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    if (t >= rows * n) return;
    const int64_t r = t / n, i = t % n;
    const float g = gate_up[r * 2 * n + i];
    out[t] = g / (1.0f + expf(-g)) * gate_up[r * 2 * n + n + i];
}

unsigned blocks(int64_t n) {
    return static_cast<unsigned>((n + 255) / 256);
}

class CudaBackend : public Backend {
  public:
    CudaBackend() {
        check(cublasCreate(&handle_), "cublasCreate");
        // FP32 maths: the default mode uses no TF32, so results match the CPU within its
        // tolerance (pedantic mode would also rule out faster FP32 kernels).
        check(cublasSetMathMode(handle_, CUBLAS_DEFAULT_MATH), "cublasSetMathMode");
    }
    ~CudaBackend() override { cublasDestroy(handle_); }
    Device device() const override { return Device::CUDA; }
    std::string describe() const override {
        cudaDeviceProp prop{};
        int dev = 0;
        cudaGetDevice(&dev);
        cudaGetDeviceProperties(&prop, dev);
        return std::string("cuda (") + prop.name + ", cuBLAS FP32)";
    }
    Tensor empty(const Shape& shape, DType dtype) override {
        return Tensor(shape, dtype, std::make_shared<CudaStorage>(pool_, shape_numel(shape) * 4));
    }
    Tensor to_device(const Tensor& host_in) override {
        if (host_in.device() == Device::CUDA) return host_in;
        const Tensor host = to_f32(host_in); // 16-bit weights computed on as float32 here
        Tensor t = empty(host.shape(), host.dtype());
        check(cudaMemcpy(t.f32(), host.f32(), host.numel() * 4, cudaMemcpyHostToDevice), "upload");
        return t;
    }
    Tensor to_host(const Tensor& t) override {
        if (t.device() == Device::CPU) return t;
        Tensor h = Tensor::zeros(t.shape(), t.dtype());
        check(cudaMemcpy(h.f32(), t.f32(), t.numel() * 4, cudaMemcpyDeviceToHost), "download");
        return h;
    }
    void copy(float* dst, const float* src, int64_t n) override {
        check(cudaMemcpy(dst, src, n * 4, cudaMemcpyDeviceToDevice), "copy");
    }
    void copy2d(float* dst, int64_t ldd, const float* src, int64_t lds, int64_t rows,
                int64_t cols) override {
        if (rows && cols)
            check(
                cudaMemcpy2D(dst, ldd * 4, src, lds * 4, cols * 4, rows, cudaMemcpyDeviceToDevice),
                "copy2d");
    }
    void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
              int64_t lda, const float* B, int64_t ldb, float beta, float* C,
              int64_t ldc) override {
        if (M == 0 || N == 0) return;
        // Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T.
        check(cublasSgemm(handle_, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N,
                          (int)N, (int)M, (int)K, &alpha, B, (int)ldb, A, (int)lda, &beta, C,
                          (int)ldc),
              "sgemm");
    }
    void gemm_batched(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha,
                      const float* A, int64_t lda, int64_t sa, const float* B, int64_t ldb,
                      int64_t sb, float beta, float* C, int64_t ldc, int64_t sc,
                      int64_t batch) override {
        if (M == 0 || N == 0 || batch == 0) return;
        check(cublasSgemmStridedBatched(handle_, tb ? CUBLAS_OP_T : CUBLAS_OP_N,
                                        ta ? CUBLAS_OP_T : CUBLAS_OP_N, (int)N, (int)M, (int)K,
                                        &alpha, B, (int)ldb, sb, A, (int)lda, sa, &beta, C,
                                        (int)ldc, sc, (int)batch),
              "sgemm strided batched");
    }
    void gemm_half_b(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, int64_t,
                     DType, const uint16_t*, int64_t, int64_t, float, float*, int64_t, int64_t,
                     int64_t) override {
        throw Error("internal: a 16-bit weight on the GPU (to_device widens them)");
    }
    void layer_norm(const float* x, const float* w, const float* b, float eps, int64_t rows,
                    int64_t d, float* out, float* mean, float* rstd) override {
        if (rows) k_layer_norm<<<(unsigned)rows, 256>>>(x, w, b, eps, d, out, mean, rstd);
        check(cudaGetLastError(), "layer_norm");
    }
    void rms_norm(const float* x, const float* w, float eps, int64_t rows, int64_t d,
                  float* out) override {
        if (rows) k_rms_norm<<<(unsigned)rows, 256>>>(x, w, eps, d, out);
        check(cudaGetLastError(), "rms_norm");
    }
    void rotary(float* x, int64_t ld, int64_t rows, int64_t n_pos, int64_t heads, int64_t d_head,
                int64_t rot, const float* cos, const float* sin) override {
        const int64_t n = rows * heads * (rot / 2);
        if (n) k_rotary<<<blocks(n), 256>>>(x, ld, rows, n_pos, heads, d_head, rot / 2, cos, sin);
        check(cudaGetLastError(), "rotary");
    }
    void silu_mul(const float* gate_up, int64_t rows, int64_t n, float* out) override {
        if (rows * n) k_silu_mul<<<blocks(rows * n), 256>>>(gate_up, rows, n, out);
        check(cudaGetLastError(), "silu_mul");
    }
    void add_bias(float* x, const float* bias, int64_t rows, int64_t n) override {
        if (rows * n) k_add_bias<<<blocks(rows * n), 256>>>(x, bias, rows * n, n);
        check(cudaGetLastError(), "add_bias");
    }
    void add(float* y, const float* x, int64_t n) override {
        if (n) k_add<<<blocks(n), 256>>>(y, x, n);
        check(cudaGetLastError(), "add");
    }
    void scale2d(float* x, int64_t ld, int64_t rows, int64_t cols, float s) override {
        if (rows * cols) k_scale2d<<<blocks(rows * cols), 256>>>(x, ld, rows, cols, s);
        check(cudaGetLastError(), "scale2d");
    }
    void add2d(float* y, int64_t ldy, const float* x, int64_t ldx, int64_t rows,
               int64_t cols) override {
        if (rows * cols) k_add2d<<<blocks(rows * cols), 256>>>(y, ldy, x, ldx, rows, cols);
        check(cudaGetLastError(), "add2d");
    }
    void gelu(float* x, int64_t n) override {
        if (n) k_gelu<<<blocks(n), 256>>>(x, n);
        check(cudaGetLastError(), "gelu");
    }
    void gelu_erf(float* x, int64_t n) override {
        if (n) k_gelu_erf<<<blocks(n), 256>>>(x, n);
        check(cudaGetLastError(), "gelu_erf");
    }
    void masked_softmax(float* scores, float* pattern, int64_t rows, int64_t q_len, int64_t k_len,
                        int64_t ld, bool causal, int64_t offset, const int32_t* key_mask) override {
        if (rows)
            k_masked_softmax<<<(unsigned)rows, 256>>>(scores, pattern, q_len, k_len, ld, causal,
                                                      offset, key_mask);
        check(cudaGetLastError(), "masked_softmax");
    }
    void embed(const int32_t* tokens, int64_t n_pos, int64_t pos0, const int32_t* positions,
               const void* W_E, DType W_E_type, const float* W_pos, int64_t d, float* out_token,
               float* out_pos, float* out) override {
        if (W_E_type != DType::F32) throw Error("internal: a 16-bit W_E on the GPU");
        if (n_pos)
            k_embed<<<(unsigned)n_pos, 256>>>(tokens, pos0, positions,
                                              static_cast<const float*>(W_E), W_pos, d, out_token,
                                              out_pos, out);
        check(cudaGetLastError(), "embed");
    }

  private:
    cublasHandle_t handle_ = nullptr;
    std::shared_ptr<Pool> pool_ = std::make_shared<Pool>();
};

} // namespace

} // namespace qkv

// The module's entry points, found with dlsym by libcore (backend_loader.cpp).
extern "C" int qkv_cuda_device_count() {
    int n = 0;
    return cudaGetDeviceCount(&n) == cudaSuccess ? n : 0;
}
extern "C" qkv::Backend* qkv_make_cuda_backend() {
    return new qkv::CudaBackend();
}

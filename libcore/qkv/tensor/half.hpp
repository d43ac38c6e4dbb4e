// half: 16-bit floats (IEEE half, bfloat16) as qkv stores and computes with them. Weights kept
// 16-bit in memory are widened to float32 inside the kernels, a row or a tile at a time, so
// every product still sums in float32; widening is exact, so a 16-bit model computes exactly
// what a float32 model holding the same rounded values computes, up to the order of the sums.
#pragma once
#include "qkv/tensor/tensor.hpp"

#include <cstdint>

namespace qkv {

// float32 -> 16 bits, round to nearest even (overflow to infinity, NaN kept), and back (exact).
uint16_t f32_to_f16(float x);
float f16_to_f32(uint16_t h);
uint16_t f32_to_bf16(float x);
float bf16_to_f32(uint16_t h);

bool is_half(DType t);              // F16 or BF16
uint16_t to_half(DType t, float x); // f32_to_f16 or f32_to_bf16
float from_half(DType t, uint16_t h);

// dst[n] = src[n] widened (t: F16 or BF16): F16C or AVX2 where the CPU has them (chosen at run
// time), plain C++ otherwise; the same values either way.
void widen(DType t, const uint16_t* src, int64_t n, float* dst);

// The two matrix-vector products of decoding over 16-bit weights, each output summed in
// float32 in an order fixed by K alone, whatever part of y a thread computes:
//   y[n] = alpha sum_k x[k * incx] W[k, n] + beta y[n]   (W [K, n], row stride ldw)
void vec_times_half(DType t, const float* x, int64_t incx, int64_t K, const uint16_t* W,
                    int64_t ldw, int64_t n, float alpha, float beta, float* y);
//   y[j] = alpha sum_k W[j, k] x[k * incx] + beta y[j]   (W [n, K], row stride ldw)
void half_times_vec(DType t, const float* x, int64_t incx, int64_t K, const uint16_t* W,
                    int64_t ldw, int64_t n, float alpha, float beta, float* y);

// For tests: on, the plain C++ kernels run even where the CPU has the SIMD ones, so both are
// checked on one machine. Returns the previous setting.
bool use_portable_half_kernels(bool on);

// A float32 copy of a tensor (a 16-bit one widened; a float32 one shared).
Tensor to_f32(const Tensor& t);
// A 16-bit copy of a float32 tensor, rounded to nearest even.
Tensor to_half(const Tensor& t, DType half);

} // namespace qkv

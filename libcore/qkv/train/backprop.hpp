// backprop: each layer as training and gradient-based attribution need it: the backward pass,
// and the forward pass where training computes it otherwise than inference (LayerNorm, GELU and
// the embedding are the Backend's own, as inference runs them). Training runs GPT-2's layers;
// attribution patching (activation_grads) every family's: RMSNorm, rotary positions,
// grouped-query attention, the exact GELU and SwiGLU too. Host memory, row-major,
// rows = batch * pos. Weight gradients given as null are not computed.
// Backward passes add into their gradients (dx +=, dW +=), so the residual stream's gradient
// and shared weights (the tied embedding) simply accumulate. Every sum runs in a fixed order,
// so results do not depend on the thread count.
#pragma once
#include "qkv/base/thread_pool.hpp"
#include "qkv/model/config.hpp"
#include "qkv/tensor/backend.hpp"

#include <cstdint>

namespace qkv::bp {

struct Ctx {
    Backend& be;      // matrix products (the CPU backend)
    ThreadPool& pool; // our own loops
};

// dx, dw, db += the gradients of out = (x - mean) * rstd * w + b (mean, rstd [rows] kept by
// Backend::layer_norm); dw and db may be null.
void layer_norm_backward(Ctx& c, const float* dout, const float* x, const float* w,
                         const float* mean, const float* rstd, int64_t rows, int64_t d, float* dx,
                         float* dw, float* db);
// dx, dw += the gradients of RMSNorm, out = x * rstd * w (rstd [rows]); dw may be null.
void rms_norm_backward(Ctx& c, const float* dout, const float* x, const float* w, const float* rstd,
                       int64_t rows, int64_t d, float* dx, float* dw);

// out[rows, n] = x[rows, k] W[k, n] + b[n] (b may be null); with accumulate, out += the same
// (a residual branch added into the stream).
void linear_forward(Ctx& c, const float* x, const float* W, const float* b, int64_t rows, int64_t k,
                    int64_t n, float* out, bool accumulate = false);
// dx[rows, k] += dout W^T, dW[k, n] += x^T dout, db[n] += column sums of dout (each may be null)
void linear_backward(Ctx& c, const float* dout, const float* x, const float* W, int64_t rows,
                     int64_t k, int64_t n, float* dx, float* dW, float* db);

// Queries, keys and values of every head from weights as the model file holds them: for x in
// (Q, K, V), qkv[rows, x, head, d_head] = in[rows, d_model] W_x[head] + b_x[head], with
// W_x [head, d_model, d_head] and b_x [head, d_head] (W[0] = W_Q, ...). The product runs on the
// three packed side by side in W_fused [d_model, 3 head d_head] (scratch), as inference does.
void qkv_forward(Ctx& c, const float* in, const float* const W[3], const float* const b[3],
                 int64_t rows, int64_t d_model, int64_t head, int64_t d_head, float* W_fused,
                 float* qkv);
// din += dqkv (W_Q | W_K | W_V)^T, dW_x += in^T dqkv_x, db_x += column sums of dqkv_x; W_fused
// and dW_fused [d_model, 3 head d_head] are scratch.
void qkv_backward(Ctx& c, const float* dqkv, const float* in, const float* const W[3], int64_t rows,
                  int64_t d_model, int64_t head, int64_t d_head, float* W_fused, float* dW_fused,
                  float* din, float* const dW[3], float* const db[3]);

// GELU, tanh approximation (GPT-2's gelu_new): dx[n] += dout * GELU'(x).
void gelu_backward(Ctx& c, const float* dout, const float* x, float* dx, int64_t n);
// The exact GELU, x Phi(x) (GPT-NeoX): dx[n] += dout * (Phi(x) + x phi(x)).
void gelu_erf_backward(Ctx& c, const float* dout, const float* x, float* dx, int64_t n);
// SwiGLU, post = silu(gate) * in, from hidden [rows, (gate | in) n] as the MLP's one product
// makes it: dhidden [rows, 2 n] += (dpost * in * silu'(gate) | dpost * silu(gate)).
void swiglu_backward(Ctx& c, const float* dpost, const float* hidden, int64_t rows, int64_t n,
                     float* dhidden);
// Rotary positions turn q and k by an angle per position; the gradient turns back by it:
// dx [rows, ...] (row stride ld, its first heads * d_head columns) turned by -angle, row r at
// position r % n_pos.
void rotary_backward(Ctx& c, const Config& cfg, float* dx, int64_t ld, int64_t rows, int64_t n_pos,
                     int64_t heads);

// Causal self-attention of every head. qkv[batch, pos, 3, head, d_head] holds the queries,
// keys and values; scores = q k^T / sqrt(d_head) with later keys masked, softmax per query:
// pattern[batch, head, pos, pos] (masked entries 0); z[batch, pos, head, d_head] = pattern v.
void attention_forward(Ctx& c, const float* qkv, int64_t batch, int64_t pos, int64_t head,
                       int64_t d_head, float* pattern, float* z);
// dqkv += the gradient through pattern and values, for qkv laid out as inference's product
// makes it, [batch, pos, (q: head | k: kv_head | v: kv_head) d_head] (training's: kv_head =
// head); query heads g G .. g G + G - 1 share key/value head g, G = head / kv_head.
void attention_backward(Ctx& c, const float* dz, const float* qkv, const float* pattern,
                        int64_t batch, int64_t pos, int64_t head, int64_t kv_head, int64_t d_head,
                        float* dqkv);

// Mean cross-entropy of logits[rows, vocab] against targets[rows]; losses[rows] gets each
// row's loss. When grad is set, logits is overwritten by dloss/dlogits of the mean.
double cross_entropy(Ctx& c, float* logits, const int32_t* targets, int64_t rows, int64_t vocab,
                     float* losses, bool grad);

// dW_E[tokens] += dout, dW_pos[pos] += dout summed over the batch
void embed_backward(const float* dout, const int32_t* tokens, int64_t batch, int64_t pos,
                    int64_t d_model, float* dW_E, float* dW_pos);

} // namespace qkv::bp

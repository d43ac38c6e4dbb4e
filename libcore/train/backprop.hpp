// backprop: each layer of GPT-2 as training needs it: the backward pass, and the forward pass
// where training computes it otherwise than inference (LayerNorm, GELU and the embedding are
// the Backend's own, as inference runs them). Host memory, row-major, rows = batch * pos.
// Backward passes add into their gradients (dx +=, dW +=), so the residual stream's gradient
// and shared weights (the tied embedding) simply accumulate. Every sum runs in a fixed order,
// so results do not depend on the thread count.
#pragma once
#include "base/thread_pool.hpp"
#include "tensor/backend.hpp"

#include <cstdint>

namespace qkv::bp {

struct Ctx {
    Backend& be;      // matrix products (the CPU backend)
    ThreadPool& pool; // our own loops
};

// dx, dw, db += the gradients of out = (x - mean) * rstd * w + b (mean, rstd [rows] kept by
// Backend::layer_norm).
void layer_norm_backward(Ctx& c, const float* dout, const float* x, const float* w,
                         const float* mean, const float* rstd, int64_t rows, int64_t d, float* dx,
                         float* dw, float* db);

// out[rows, n] = x[rows, k] W[k, n] + b[n] (b may be null); with accumulate, out += the same
// (a residual branch added into the stream).
void linear_forward(Ctx& c, const float* x, const float* W, const float* b, int64_t rows, int64_t k,
                    int64_t n, float* out, bool accumulate = false);
// dx[rows, k] += dout W^T (dx may be null), dW[k, n] += x^T dout, db[n] += column sums of dout
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

// Causal self-attention of every head. qkv[batch, pos, 3, head, d_head] holds the queries,
// keys and values; scores = q k^T / sqrt(d_head) with later keys masked, softmax per query:
// pattern[batch, head, pos, pos] (masked entries 0); z[batch, pos, head, d_head] = pattern v.
void attention_forward(Ctx& c, const float* qkv, int64_t batch, int64_t pos, int64_t head,
                       int64_t d_head, float* pattern, float* z);
// dqkv[batch, pos, 3, head, d_head] += the gradient through pattern and values.
void attention_backward(Ctx& c, const float* dz, const float* qkv, const float* pattern,
                        int64_t batch, int64_t pos, int64_t head, int64_t d_head, float* dqkv);

// Mean cross-entropy of logits[rows, vocab] against targets[rows]; losses[rows] gets each
// row's loss. When grad is set, logits is overwritten by dloss/dlogits of the mean.
double cross_entropy(Ctx& c, float* logits, const int32_t* targets, int64_t rows, int64_t vocab,
                     float* losses, bool grad);

// dW_E[tokens] += dout, dW_pos[pos] += dout summed over the batch
void embed_backward(const float* dout, const int32_t* tokens, int64_t batch, int64_t pos,
                    int64_t d_model, float* dW_E, float* dW_pos);

} // namespace qkv::bp

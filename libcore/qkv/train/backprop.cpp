#include "qkv/train/backprop.hpp"

#include "qkv/base/errors.hpp"
#include "qkv/model/rotary.hpp"
#include "qkv/model/weights.hpp"
#include "qkv/tensor/cpu_kernels.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

// Hot loops are compiled twice, for AVX2 + FMA and for the baseline, and chosen at run time
// (the machine decides; a given machine always runs the same code).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define QKV_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define QKV_CLONES
#endif

namespace qkv::bp {

namespace {

// db[n] += column sums of x[rows, n] (row stride ld): columns split over threads, rows summed
// in order.
void column_sums_add(Ctx& c, const float* x, int64_t rows, int64_t n, int64_t ld, float* db) {
    c.pool.run(n, 64, [&](int64_t j0, int64_t j1) {
        for (int64_t r = 0; r < rows; ++r) {
            const float* xr = x + r * ld;
            for (int64_t j = j0; j < j1; ++j)
                db[j] += xr[j];
        }
    });
}

std::vector<float>& scratch(size_t n) { // per-thread, grows once
    thread_local std::vector<float> buf;
    if (buf.size() < n) buf.resize(n);
    return buf;
}

} // namespace

namespace {

// The gradient of a row norm, out = xhat * w (+ b), xhat = (x - mean) * rstd (LayerNorm) or
// x * rstd (RMSNorm, mean null): dw, db += column sums (when given), and
// dx += rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)), dxhat = dout * w, without the
// mean(dxhat) term for RMSNorm.
void norm_backward(Ctx& c, const float* dout, const float* x, const float* w, const float* mean,
                   const float* rstd, int64_t rows, int64_t d, float* dx, float* dw, float* db) {
    auto xhat = [&](int64_t r, int64_t i) {
        return (x[r * d + i] - (mean ? mean[r] : 0.0f)) * rstd[r];
    };
    if (dw || db) // columns over threads
        c.pool.run(d, 16, [&](int64_t i0, int64_t i1) {
            for (int64_t r = 0; r < rows; ++r) {
                const float* g = dout + r * d;
                for (int64_t i = i0; i < i1; ++i) {
                    if (dw) dw[i] += g[i] * xhat(r, i);
                    if (db) db[i] += g[i];
                }
            }
        });
    c.pool.run(rows, 16, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
            const float* g = dout + r * d;
            float* o = dx + r * d;
            double s1 = 0, s2 = 0;
            for (int64_t i = 0; i < d; ++i) {
                const float dxh = g[i] * w[i];
                s1 += dxh;
                s2 += static_cast<double>(dxh) * xhat(r, i);
            }
            const float m1 = mean ? static_cast<float>(s1 / d) : 0.0f;
            const float m2 = static_cast<float>(s2 / d);
            for (int64_t i = 0; i < d; ++i)
                o[i] += rstd[r] * (g[i] * w[i] - m1 - xhat(r, i) * m2);
        }
    });
}

} // namespace

void layer_norm_backward(Ctx& c, const float* dout, const float* x, const float* w,
                         const float* mean, const float* rstd, int64_t rows, int64_t d, float* dx,
                         float* dw, float* db) {
    norm_backward(c, dout, x, w, mean, rstd, rows, d, dx, dw, db);
}

void rms_norm_backward(Ctx& c, const float* dout, const float* x, const float* w, const float* rstd,
                       int64_t rows, int64_t d, float* dx, float* dw) {
    norm_backward(c, dout, x, w, nullptr, rstd, rows, d, dx, dw, nullptr);
}

void linear_forward(Ctx& c, const float* x, const float* W, const float* b, int64_t rows, int64_t k,
                    int64_t n, float* out, bool accumulate) {
    if (b) {
        c.pool.run(rows, 64, [&](int64_t r0, int64_t r1) {
            for (int64_t r = r0; r < r1; ++r) {
                if (!accumulate) {
                    std::memcpy(out + r * n, b, n * sizeof(float));
                    continue;
                }
                for (int64_t j = 0; j < n; ++j)
                    out[r * n + j] += b[j];
            }
        });
    }
    c.be.gemm(false, false, rows, n, k, 1.0f, x, k, W, n, b || accumulate ? 1.0f : 0.0f, out, n);
}

void linear_backward(Ctx& c, const float* dout, const float* x, const float* W, int64_t rows,
                     int64_t k, int64_t n, float* dx, float* dW, float* db) {
    if (dx) c.be.gemm(false, true, rows, k, n, 1.0f, dout, n, W, n, 1.0f, dx, k);
    if (dW) c.be.gemm(true, false, k, n, rows, 1.0f, x, k, dout, n, 1.0f, dW, n);
    if (db) column_sums_add(c, dout, rows, n, n, db);
}

void qkv_forward(Ctx& c, const float* in, const float* const W[3], const float* const b[3],
                 int64_t rows, int64_t d_model, int64_t head, int64_t d_head, float* W_fused,
                 float* qkv) {
    const int64_t A = head * d_head;
    pack_qkv(W, head, head, d_model, d_head, W_fused);
    c.pool.run(rows, 64, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r)
            for (int x = 0; x < 3; ++x)
                std::memcpy(qkv + r * 3 * A + x * A, b[x], A * sizeof(float));
    });
    linear_forward(c, in, W_fused, nullptr, rows, d_model, 3 * A, qkv, true);
}

void qkv_backward(Ctx& c, const float* dqkv, const float* in, const float* const W[3], int64_t rows,
                  int64_t d_model, int64_t head, int64_t d_head, float* W_fused, float* dW_fused,
                  float* din, float* const dW[3], float* const db[3]) {
    const int64_t A = head * d_head;
    pack_qkv(W, head, head, d_model, d_head, W_fused);
    const float* dW_in[3] = {dW[0], dW[1], dW[2]};
    pack_qkv(dW_in, head, head, d_model, d_head, dW_fused);
    linear_backward(c, dqkv, in, W_fused, rows, d_model, 3 * A, din, dW_fused, nullptr);
    unpack_qkv(dW_fused, head, head, d_model, d_head, dW);
    for (int x = 0; x < 3; ++x)
        column_sums_add(c, dqkv + x * A, rows, A, 3 * A, db[x]);
}

void gelu_backward(Ctx& c, const float* dout, const float* x, float* dx, int64_t n) {
    c.pool.run(n, 16384, [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i)
            dx[i] += dout[i] * gelu_derivative(x[i]);
    });
}

void gelu_erf_backward(Ctx& c, const float* dout, const float* x, float* dx, int64_t n) {
    c.pool.run(n, 16384, [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i) {
            const double v = x[i];
            const double Phi = 0.5 * (1.0 + std::erf(v * M_SQRT1_2));
            const double phi = std::exp(-0.5 * v * v) * (0.5 * M_2_SQRTPI * M_SQRT1_2);
            dx[i] += static_cast<float>(dout[i] * (Phi + v * phi));
        }
    });
}

void swiglu_backward(Ctx& c, const float* dpost, const float* hidden, int64_t rows, int64_t n,
                     float* dhidden) {
    c.pool.run(rows, 16, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
            const float* gate = hidden + r * 2 * n;
            const float* in = gate + n;
            float* dgate = dhidden + r * 2 * n;
            float* din = dgate + n;
            for (int64_t j = 0; j < n; ++j) {
                const double sig = 1.0 / (1.0 + std::exp(-static_cast<double>(gate[j])));
                const double g = dpost[r * n + j];
                dgate[j] += static_cast<float>(g * in[j] * sig * (1.0 + gate[j] * (1.0 - sig)));
                din[j] += static_cast<float>(g * gate[j] * sig);
            }
        }
    });
}

void rotary_backward(Ctx& c, const Config& cfg, float* dx, int64_t ld, int64_t rows, int64_t n_pos,
                     int64_t heads) {
    std::vector<int32_t> back(rows); // each row's position, negated: the inverse turn
    for (int64_t r = 0; r < rows; ++r)
        back[r] = -static_cast<int32_t>(r % n_pos);
    apply_rotary(c.be, cfg, dx, ld, rows, n_pos, 0, heads, back.data());
}

namespace {

// Each head of each sequence is one task. The score rows are computed 8 keys at a time with
// the 8 sums in registers (not a read-modify-write of the row per d_head element); keys and
// values are first copied transposed, [d_head, pos] with the row padded by 8.
constexpr int64_t kBlock = 8;

// row[s] = sum_j a[j] * mT[j * ld + s] for s in [0, n), n rounded up to 8 (mT padded).
QKV_CLONES void dot_rows(const float* a, const float* mT, int64_t ld, int64_t dh, int64_t n,
                         float* row) {
    for (int64_t s0 = 0; s0 < n; s0 += kBlock) {
        float acc[kBlock] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (int64_t j = 0; j < dh; ++j) {
            const float aj = a[j];
            const float* m = mT + j * ld + s0;
            for (int64_t u = 0; u < kBlock; ++u)
                acc[u] += aj * m[u];
        }
        for (int64_t u = 0; u < kBlock; ++u)
            row[s0 + u] = acc[u];
    }
}

// out[j0 + u] += sum_{i < n} coef[i * cs] * rows[i * ld + j0 + u] for u < W: the W sums stay
// in registers while the rows stream past.
template <int64_t W>
inline void weighted_block(const float* coef, int64_t cs, const float* rows, int64_t ld, int64_t n,
                           int64_t j0, float* out) {
    float acc[W] = {};
    for (int64_t i = 0; i < n; ++i) {
        const float c = coef[i * cs];
        const float* r = rows + i * ld + j0;
        for (int64_t u = 0; u < W; ++u)
            acc[u] += c * r[u];
    }
    for (int64_t u = 0; u < W; ++u)
        out[j0 + u] += acc[u];
}

// out[j] += sum_{i < n} coef[i * cs] * rows[i * ld + j] for j < dh: 32 columns at a time (a
// whole head of 32 in registers), then 8, then one.
QKV_CLONES void weighted_rows_add(const float* coef, int64_t cs, const float* rows, int64_t ld,
                                  int64_t n, int64_t dh, float* out) {
    int64_t j0 = 0;
    for (; j0 + 4 * kBlock <= dh; j0 += 4 * kBlock)
        weighted_block<4 * kBlock>(coef, cs, rows, ld, n, j0, out);
    for (; j0 + kBlock <= dh; j0 += kBlock)
        weighted_block<kBlock>(coef, cs, rows, ld, n, j0, out);
    for (; j0 < dh; ++j0)
        weighted_block<1>(coef, cs, rows, ld, n, j0, out);
}

QKV_CLONES void attention_forward_head(const float* q, const float* k, const float* v, int64_t ld,
                                       int64_t T, int64_t dh, float scale, float* kT,
                                       float* pattern, float* z, int64_t z_ld) {
    const int64_t Tp = T + kBlock;
    for (int64_t s = 0; s < T; ++s)
        for (int64_t j = 0; j < dh; ++j)
            kT[j * Tp + s] = k[s * ld + j];
    float qs[1024];
    for (int64_t t = 0; t < T; ++t) {
        // scores: q_t . k_s / sqrt(d_head) for the keys s <= t; the mask leaves s > t at 0
        float* row = pattern + t * T;
        for (int64_t j = 0; j < dh; ++j)
            qs[j] = q[t * ld + j] * scale;
        float tmp[2048 + kBlock];
        const int64_t n = t + 1;
        dot_rows(qs, kT, Tp, dh, n, tmp);
        softmax_row(tmp, row, n); // over the visible keys
        for (int64_t s = n; s < T; ++s)
            row[s] = 0.0f;
        // values: z_t = sum_s pattern[t, s] v_s
        float* zt = z + t * z_ld;
        for (int64_t j = 0; j < dh; ++j)
            zt[j] = 0.0f;
        weighted_rows_add(row, 1, v, ld, n, dh, zt);
    }
}

// ds [pos, pos] is scratch for the gradient of the scores.
QKV_CLONES void attention_backward_head(const float* dz, int64_t z_ld, const float* q,
                                        const float* k, const float* v, int64_t ld,
                                        const float* pattern, int64_t T, int64_t dh, float scale,
                                        float* vT, float* ds, float* dq, float* dk, float* dv) {
    const int64_t Tp = T + kBlock;
    for (int64_t s = 0; s < T; ++s)
        for (int64_t j = 0; j < dh; ++j)
            vT[j * Tp + s] = v[s * ld + j];
    float dp[2048 + kBlock];
    for (int64_t t = 0; t < T; ++t) {
        const float* p = pattern + t * T;
        const int64_t n = t + 1;
        // d pattern[t, s] = dz_t . v_s
        dot_rows(dz + t * z_ld, vT, Tp, dh, n, dp);
        // softmax backward: d scores = pattern * (d pattern - sum(pattern * d pattern))
        double dot = 0;
        for (int64_t s = 0; s < n; ++s)
            dot += static_cast<double>(p[s]) * dp[s];
        const float fdot = static_cast<float>(dot);
        float* dst = ds + t * T;
        for (int64_t s = 0; s < n; ++s)
            dst[s] = p[s] * (dp[s] - fdot) * scale;
        for (int64_t s = n; s < T; ++s)
            dst[s] = 0.0f;
        // d q_t += sum_s ds[t, s] k_s
        weighted_rows_add(dst, 1, k, ld, n, dh, dq + t * ld);
    }
    for (int64_t s = 0; s < T; ++s) {
        // d k_s += sum_{t >= s} ds[t, s] q_t; d v_s += sum_{t >= s} pattern[t, s] dz_t
        weighted_rows_add(ds + s * T + s, T, q + s * ld, ld, T - s, dh, dk + s * ld);
        weighted_rows_add(pattern + s * T + s, T, dz + s * z_ld, z_ld, T - s, dh, dv + s * ld);
    }
}

} // namespace

void attention_forward(Ctx& c, const float* qkv, int64_t batch, int64_t pos, int64_t head,
                       int64_t d_head, float* pattern, float* z) {
    const int64_t T = pos, H = head, dh = d_head, ld = 3 * H * dh;
    if (T > 2048 || dh > 1024) throw ShapeError("train: context over 2048 or d_head over 1024");
    const float scale = 1.0f / std::sqrt(static_cast<float>(dh));
    c.pool.run(batch * H, 1, [&](int64_t i0, int64_t i1) {
        float* kT = scratch(static_cast<size_t>(dh * (T + kBlock))).data();
        for (int64_t i = i0; i < i1; ++i) {
            const int64_t b = i / H, h = i % H;
            const float* base = qkv + b * T * ld;
            attention_forward_head(base + h * dh, base + (H + h) * dh, base + (2 * H + h) * dh, ld,
                                   T, dh, scale, kT, pattern + i * T * T, z + (b * T * H + h) * dh,
                                   H * dh);
        }
    });
}

void attention_backward(Ctx& c, const float* dz, const float* qkv, const float* pattern,
                        int64_t batch, int64_t pos, int64_t head, int64_t kv_head, int64_t d_head,
                        float* dqkv) {
    const int64_t T = pos, H = head, Hkv = kv_head, G = H / Hkv, dh = d_head;
    const int64_t ld = (H + 2 * Hkv) * dh, HD = H * dh, KD = Hkv * dh;
    const float scale = 1.0f / std::sqrt(static_cast<float>(dh));
    // One task a key/value head of a sequence: its query heads in order, so the keys' and
    // values' gradients are summed in a fixed order whatever the thread count.
    c.pool.run(batch * Hkv, 1, [&](int64_t i0, int64_t i1) {
        float* vT = scratch(static_cast<size_t>(dh * (T + kBlock) + T * T)).data();
        float* ds = vT + dh * (T + kBlock);
        for (int64_t i = i0; i < i1; ++i) {
            const int64_t b = i / Hkv, g = i % Hkv;
            const float* base = qkv + b * T * ld;
            float* dbase = dqkv + b * T * ld;
            for (int64_t h = g * G; h < (g + 1) * G; ++h)
                attention_backward_head(
                    dz + (b * T * H + h) * dh, HD, base + h * dh, base + HD + g * dh,
                    base + HD + KD + g * dh, ld, pattern + (b * H + h) * T * T, T, dh, scale, vT,
                    ds, dbase + h * dh, dbase + HD + g * dh, dbase + HD + KD + g * dh);
        }
    });
}

double cross_entropy(Ctx& c, float* logits, const int32_t* targets, int64_t rows, int64_t vocab,
                     float* losses, bool grad) {
    const float inv_rows = 1.0f / static_cast<float>(rows);
    c.pool.run(rows, 4, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
            float* l = logits + r * vocab;
            float mx = l[0];
            for (int64_t j = 1; j < vocab; ++j)
                mx = std::max(mx, l[j]);
            double sum = 0;
            for (int64_t j = 0; j < vocab; ++j)
                sum += std::exp(static_cast<double>(l[j] - mx));
            const double lse = mx + std::log(sum);
            losses[r] = static_cast<float>(lse - l[targets[r]]);
            if (grad) {
                for (int64_t j = 0; j < vocab; ++j)
                    l[j] = static_cast<float>(std::exp(l[j] - lse)) * inv_rows;
                l[targets[r]] -= inv_rows;
            }
        }
    });
    double total = 0;
    for (int64_t r = 0; r < rows; ++r)
        total += losses[r];
    return total / rows;
}

void embed_backward(const float* dout, const int32_t* tokens, int64_t batch, int64_t pos,
                    int64_t d_model, float* dW_E, float* dW_pos) {
    for (int64_t b = 0; b < batch; ++b)
        for (int64_t t = 0; t < pos; ++t) {
            const float* g = dout + (b * pos + t) * d_model;
            float* e = dW_E + static_cast<int64_t>(tokens[b * pos + t]) * d_model;
            float* p = dW_pos + t * d_model;
            for (int64_t i = 0; i < d_model; ++i) {
                e[i] += g[i];
                p[i] += g[i];
            }
        }
}

} // namespace qkv::bp

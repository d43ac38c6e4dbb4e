#include "backprop.hpp"

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

namespace qkv::bp {

namespace {

// db[n] += column sums of x[rows, n]: columns split over threads, rows summed in order.
void column_sums_add(Ctx& c, const float* x, int64_t rows, int64_t n, float* db) {
    c.pool.run(n, 64, [&](int64_t j0, int64_t j1) {
        for (int64_t r = 0; r < rows; ++r) {
            const float* xr = x + r * n;
            for (int64_t j = j0; j < j1; ++j) db[j] += xr[j];
        }
    });
}

std::vector<float>& scratch(size_t n) { // per-thread, grows once
    thread_local std::vector<float> buf;
    if (buf.size() < n) buf.resize(n);
    return buf;
}

constexpr float kGeluC = 0.7978845608028654f; // sqrt(2 / pi)

} // namespace

void layer_norm_forward(Ctx& c, const float* x, const float* w, const float* b, float eps,
                        int64_t rows, int64_t d, float* out, float* mean, float* rstd) {
    c.pool.run(rows, 16, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
            const float* xr = x + r * d;
            double sum = 0;
            for (int64_t i = 0; i < d; ++i) sum += xr[i];
            const float m = static_cast<float>(sum / d);
            double var = 0;
            for (int64_t i = 0; i < d; ++i) {
                const float dv = xr[i] - m;
                var += static_cast<double>(dv) * dv;
            }
            const float s = 1.0f / std::sqrt(static_cast<float>(var / d) + eps);
            float* o = out + r * d;
            for (int64_t i = 0; i < d; ++i) o[i] = (xr[i] - m) * s * w[i] + b[i];
            mean[r] = m;
            rstd[r] = s;
        }
    });
}

void layer_norm_backward(Ctx& c, const float* dout, const float* x, const float* w,
                         const float* mean, const float* rstd, int64_t rows, int64_t d, float* dx,
                         float* dw, float* db) {
    // dw[i] += sum_r dout * xhat, db[i] += sum_r dout: columns over threads.
    c.pool.run(d, 16, [&](int64_t i0, int64_t i1) {
        for (int64_t r = 0; r < rows; ++r) {
            const float* g = dout + r * d;
            const float* xr = x + r * d;
            for (int64_t i = i0; i < i1; ++i) {
                dw[i] += g[i] * ((xr[i] - mean[r]) * rstd[r]);
                db[i] += g[i];
            }
        }
    });
    // dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)), dxhat = dout * w.
    c.pool.run(rows, 16, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
            const float* g = dout + r * d;
            const float* xr = x + r * d;
            float* o = dx + r * d;
            double s1 = 0, s2 = 0;
            for (int64_t i = 0; i < d; ++i) {
                const float dxh = g[i] * w[i];
                s1 += dxh;
                s2 += static_cast<double>(dxh) * ((xr[i] - mean[r]) * rstd[r]);
            }
            const float m1 = static_cast<float>(s1 / d), m2 = static_cast<float>(s2 / d);
            for (int64_t i = 0; i < d; ++i) {
                const float xhat = (xr[i] - mean[r]) * rstd[r];
                o[i] += rstd[r] * (g[i] * w[i] - m1 - xhat * m2);
            }
        }
    });
}

void linear_forward(Ctx& c, const float* x, const float* W, const float* b, int64_t rows,
                    int64_t k, int64_t n, float* out) {
    if (b) {
        c.pool.run(rows, 64, [&](int64_t r0, int64_t r1) {
            for (int64_t r = r0; r < r1; ++r) std::memcpy(out + r * n, b, n * sizeof(float));
        });
    }
    c.be.gemm(false, false, rows, n, k, 1.0f, x, k, W, n, b ? 1.0f : 0.0f, out, n);
}

void linear_backward(Ctx& c, const float* dout, const float* x, const float* W, int64_t rows,
                     int64_t k, int64_t n, float* dx, float* dW, float* db) {
    if (dx) c.be.gemm(false, true, rows, k, n, 1.0f, dout, n, W, n, 1.0f, dx, k);
    c.be.gemm(true, false, k, n, rows, 1.0f, x, k, dout, n, 1.0f, dW, n);
    if (db) column_sums_add(c, dout, rows, n, db);
}

void gelu_forward(Ctx& c, const float* x, float* out, int64_t n) {
    c.pool.run(n, 16384, [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i) {
            const float v = x[i];
            out[i] = 0.5f * v * (1.0f + std::tanh(kGeluC * (v + 0.044715f * v * v * v)));
        }
    });
}

void gelu_backward(Ctx& c, const float* dout, const float* x, float* dx, int64_t n) {
    c.pool.run(n, 16384, [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i) {
            const float v = x[i];
            const float t = std::tanh(kGeluC * (v + 0.044715f * v * v * v));
            const float du = kGeluC * (1.0f + 3.0f * 0.044715f * v * v);
            dx[i] += dout[i] * (0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * du);
        }
    });
}

void attention_forward(Ctx& c, const float* qkv, int64_t batch, int64_t pos, int64_t head,
                       int64_t d_head, float* pattern, float* z) {
    const int64_t T = pos, H = head, dh = d_head, ld = 3 * H * dh;
    const float scale = 1.0f / std::sqrt(static_cast<float>(dh));
    c.pool.run(batch * H, 1, [&](int64_t i0, int64_t i1) {
        float* kT = scratch(static_cast<size_t>(dh * T)).data(); // keys, transposed [d_head, pos]
        for (int64_t i = i0; i < i1; ++i) {
            const int64_t b = i / H, h = i % H;
            const float* q = qkv + b * T * ld + h * dh;          // [pos, d_head], stride ld
            const float* k = qkv + b * T * ld + (H + h) * dh;
            const float* v = qkv + b * T * ld + (2 * H + h) * dh;
            for (int64_t s = 0; s < T; ++s)
                for (int64_t j = 0; j < dh; ++j) kT[j * T + s] = k[s * ld + j];
            for (int64_t t = 0; t < T; ++t) {
                // scores: row[s] = q_t . k_s / sqrt(d_head) for s <= t (the mask: s > t stays 0)
                float* row = pattern + (i * T + t) * T;
                std::memset(row, 0, T * sizeof(float));
                for (int64_t j = 0; j < dh; ++j) {
                    const float a = q[t * ld + j] * scale;
                    const float* kj = kT + j * T;
                    for (int64_t s = 0; s <= t; ++s) row[s] += a * kj[s];
                }
                // softmax over the visible keys
                float mx = -std::numeric_limits<float>::infinity();
                for (int64_t s = 0; s <= t; ++s) mx = std::max(mx, row[s]);
                double sum = 0;
                for (int64_t s = 0; s <= t; ++s) {
                    row[s] = std::exp(row[s] - mx);
                    sum += row[s];
                }
                const float inv = static_cast<float>(1.0 / sum);
                for (int64_t s = 0; s <= t; ++s) row[s] *= inv;
                // values: z_t = sum_s pattern[t, s] v_s
                float* zt = z + ((b * T + t) * H + h) * dh;
                std::memset(zt, 0, dh * sizeof(float));
                for (int64_t s = 0; s <= t; ++s) {
                    const float p = row[s];
                    const float* vs = v + s * ld;
                    for (int64_t j = 0; j < dh; ++j) zt[j] += p * vs[j];
                }
            }
        }
    });
}

void attention_backward(Ctx& c, const float* dz, const float* qkv, const float* pattern,
                        int64_t batch, int64_t pos, int64_t head, int64_t d_head, float* dqkv) {
    const int64_t T = pos, H = head, dh = d_head, ld = 3 * H * dh;
    const float scale = 1.0f / std::sqrt(static_cast<float>(dh));
    c.pool.run(batch * H, 1, [&](int64_t i0, int64_t i1) {
        std::vector<float>& buf = scratch(static_cast<size_t>(dh * T + T));
        float* vT = buf.data(); // values, transposed [d_head, pos]
        float* dp = vT + dh * T; // d pattern row [pos], then d scores
        for (int64_t i = i0; i < i1; ++i) {
            const int64_t b = i / H, h = i % H;
            const float* q = qkv + b * T * ld + h * dh;
            const float* k = qkv + b * T * ld + (H + h) * dh;
            const float* v = qkv + b * T * ld + (2 * H + h) * dh;
            float* dq = dqkv + b * T * ld + h * dh;
            float* dk = dqkv + b * T * ld + (H + h) * dh;
            float* dv = dqkv + b * T * ld + (2 * H + h) * dh;
            for (int64_t s = 0; s < T; ++s)
                for (int64_t j = 0; j < dh; ++j) vT[j * T + s] = v[s * ld + j];
            for (int64_t t = 0; t < T; ++t) {
                const float* p = pattern + (i * T + t) * T;
                const float* dzt = dz + ((b * T + t) * H + h) * dh;
                // d pattern[t, s] = dz_t . v_s; d v_s += pattern[t, s] dz_t
                std::memset(dp, 0, (t + 1) * sizeof(float));
                for (int64_t j = 0; j < dh; ++j) {
                    const float a = dzt[j];
                    const float* vj = vT + j * T;
                    for (int64_t s = 0; s <= t; ++s) dp[s] += a * vj[s];
                }
                for (int64_t s = 0; s <= t; ++s) {
                    float* dvs = dv + s * ld;
                    for (int64_t j = 0; j < dh; ++j) dvs[j] += p[s] * dzt[j];
                }
                // softmax backward: d scores = pattern * (d pattern - sum(pattern * d pattern))
                double dot = 0;
                for (int64_t s = 0; s <= t; ++s) dot += static_cast<double>(p[s]) * dp[s];
                const float fdot = static_cast<float>(dot);
                for (int64_t s = 0; s <= t; ++s) dp[s] = p[s] * (dp[s] - fdot) * scale;
                // d q_t += sum_s ds[s] k_s; d k_s += ds[s] q_t
                float* dqt = dq + t * ld;
                const float* qt = q + t * ld;
                for (int64_t s = 0; s <= t; ++s) {
                    const float g = dp[s];
                    const float* ks = k + s * ld;
                    float* dks = dk + s * ld;
                    for (int64_t j = 0; j < dh; ++j) {
                        dqt[j] += g * ks[j];
                        dks[j] += g * qt[j];
                    }
                }
            }
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
            for (int64_t j = 1; j < vocab; ++j) mx = std::max(mx, l[j]);
            double sum = 0;
            for (int64_t j = 0; j < vocab; ++j) sum += std::exp(static_cast<double>(l[j] - mx));
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
    for (int64_t r = 0; r < rows; ++r) total += losses[r];
    return total / rows;
}

void embed_forward(const int32_t* tokens, const float* W_E, const float* W_pos, int64_t batch,
                   int64_t pos, int64_t d_model, float* out) {
    for (int64_t b = 0; b < batch; ++b)
        for (int64_t t = 0; t < pos; ++t) {
            const float* e = W_E + static_cast<int64_t>(tokens[b * pos + t]) * d_model;
            const float* p = W_pos + t * d_model;
            float* o = out + (b * pos + t) * d_model;
            for (int64_t i = 0; i < d_model; ++i) o[i] = e[i] + p[i];
        }
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

// rotary: rotary position embeddings (RoPE), how Llama-family models know where a token is.
// Each head's query and key are turned, pair of dimensions by pair, by an angle
// position * inv_freq[i], inv_freq[i] = theta^(-2i / rot) for i < rot / 2, so that q k^T
// depends on how far apart the two positions are. The pairs are (i, i + rot / 2), Hugging
// Face's rotate-half layout. Llama 3.1's scaling (rope_scaling llama3) stretches the long
// wavelengths by factor, the short ones not at all, and blends those between.
#pragma once
#include "qkv/model/config.hpp"
#include "qkv/tensor/backend.hpp"

#include <vector>

namespace qkv {

// The frequencies inv_freq [rot / 2], in double, scaling applied.
std::vector<double> rotary_inv_freq(const Config& cfg);

// Turns the first heads * d_head columns of x [rows, ...] (row stride ld; row r at position
// pos0 + r % n_pos, or positions[r] where positions [rows] (host) is given) by their positions'
// angles, on the backend's device.
void apply_rotary(Backend& be, const Config& cfg, float* x, int64_t ld, int64_t rows, int64_t n_pos,
                  int64_t pos0, int64_t heads, const int32_t* positions = nullptr);

} // namespace qkv

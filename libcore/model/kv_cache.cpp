#include "model/kv_cache.hpp"

namespace qkv {

KVCache::KVCache(Backend& be, const Config& cfg)
    : k_(be.empty({cfg.n_layers, cfg.n_ctx, cfg.n_heads * cfg.d_head})),
      v_(be.empty({cfg.n_layers, cfg.n_ctx, cfg.n_heads * cfg.d_head})), capacity_(cfg.n_ctx),
      width_(cfg.n_heads * cfg.d_head) {}

KVLayerView KVCache::layer(int64_t l) const {
    KVLayerView v;
    v.k = const_cast<float*>(k_.f32()) + l * capacity_ * width_;
    v.v = const_cast<float*>(v_.f32()) + l * capacity_ * width_;
    v.pos0 = length_;
    return v;
}

} // namespace qkv

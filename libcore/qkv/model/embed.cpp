#include "qkv/model/embed.hpp"

#include "qkv/base/errors.hpp"

#include <algorithm>

namespace qkv {

EmbedResult embed_forward(Backend& be, const Config& cfg, const EmbedWeights& w,
                          const Tensor& tokens, int64_t pos0, bool keep_parts,
                          const std::string& where, const Padding* pad) {
    const int64_t batch = tokens.dim(0), n_pos = tokens.dim(1), D = cfg.d_model;
    if (pos0 + n_pos > cfg.n_ctx)
        throw ShapeError(
            where + ": sequence of " + std::to_string(pos0 + n_pos) +
            " tokens is longer than the model's context n_ctx = " + std::to_string(cfg.n_ctx));
    for (int64_t i = 0; i < tokens.numel(); ++i) {
        const int32_t id = tokens.i32()[i];
        if (id < 0 || id >= cfg.vocab_size)
            throw ShapeError(where + ":/tokens: id " + std::to_string(id) + " at batch " +
                             std::to_string(i / n_pos) + ", pos " + std::to_string(i % n_pos) +
                             " is outside the vocabulary (0.." +
                             std::to_string(cfg.vocab_size - 1) + ")");
    }
    Tensor ids = be.to_device(tokens);
    EmbedResult r;
    r.resid = be.empty({batch, n_pos, D}); // [batch, pos, d_model]
    const bool learned = !w.W_pos.empty(); // rotary models add no position here
    if (keep_parts) {
        r.token = be.empty({batch, n_pos, D});
        if (learned) r.pos = be.empty({batch, n_pos, D});
    }
    // Positions over real tokens only, where the batch is padded: [batch, pos] on the device.
    Tensor positions;
    if (learned && pad && pad->padded()) {
        const std::vector<int32_t> p = pad->positions(pos0);
        positions = Tensor::zeros({batch, n_pos}, DType::I32);
        std::copy(p.begin(), p.end(), positions.i32());
        positions = be.to_device(positions);
    }
    for (int64_t b = 0; b < batch; ++b) {
        const int64_t off = b * n_pos * D;
        be.embed(ids.i32() + b * n_pos, n_pos, pos0,
                 positions.empty() ? nullptr : positions.i32() + b * n_pos, w.W_E.data(),
                 w.W_E.dtype(), learned ? w.W_pos.f32() : nullptr, D,
                 keep_parts ? r.token.f32() + off : nullptr,
                 keep_parts && learned ? r.pos.f32() + off : nullptr, r.resid.f32() + off);
    }
    return r;
}

} // namespace qkv

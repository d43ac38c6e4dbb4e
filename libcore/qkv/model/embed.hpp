// embed: token ids -> the residual stream, token embedding plus position embedding (GPT-2), or
// the token embedding alone (rotary models add positions inside attention).
#pragma once
#include "qkv/model/padding.hpp"
#include "qkv/model/weights.hpp"
#include "qkv/tensor/backend.hpp"

namespace qkv {

struct EmbedResult {
    Tensor resid;      // [batch, pos, d_model]
    Tensor token, pos; // [batch, pos, d_model] each, only when parts were asked for (pos: only
                       // with learned positions)
};

// tokens: host int32 [batch, pos]. Ids outside the vocabulary, or pos0 + pos beyond n_ctx,
// are errors. A padded batch (pad: not null) counts positions over each sequence's real tokens
// (model/padding.hpp). Results are on the backend's device.
EmbedResult embed_forward(Backend& be, const Config& cfg, const EmbedWeights& w,
                          const Tensor& tokens, int64_t pos0, bool keep_parts,
                          const std::string& where, const Padding* pad = nullptr);

} // namespace qkv

// schema: a model declared once. Every dataset of a model file, with its shape as a function of
// the config, how `model init` fills it, whether train updates it and whether AdamW decays it;
// and every attribute of the config. Init, the file's reader and writer, `model info`,
// count-params, the trainer's parameter layout and its checkpoints walk these tables:
// adding a weight or a config attribute is one row.
#pragma once
#include "qkv/base/fields.hpp"
#include "qkv/model/config.hpp"
#include "qkv/tensor/tensor.hpp"

#include <string>
#include <vector>

namespace qkv {

enum class Init {
    Normal,         // normal(0, 0.02)
    NormalResidual, // normal(0, 0.02 / sqrt(2 n_layers)): projections into the residual stream
    Ones,
    Zeros,
    TransposeOfW_E, // the unembedding, tied to the embedding as in GPT-2
};

struct ParamSpec {
    std::string name; // e.g. "/blocks/3/attn/W_Q"
    Shape shape;      // e.g. [head, d_model, d_head]
    Init init;
    bool decay;   // AdamW's weight decay applies (matrices, not biases or LayerNorms)
    bool trained; // train updates it (not the tied W_U, nor b_U, which GPT-2 does not have)
};

// Every weight of a model file, in the order the file is written (which model_id hashes).
std::vector<ParamSpec> model_params(const Config& c);

// The names of a weight's dimensions (["head", "d_model", "d_head"] for ".../attn/W_Q"), by the
// end of its name (so also for a checkpoint's optimizer state of it); empty: not a weight.
std::vector<std::string> weight_dims(const std::string& name);

// "/blocks/L": the group of layer L's weights.
std::string block_group(int64_t layer);

// The attributes of the /config group.
const std::vector<Field<Config>>& config_fields();

} // namespace qkv

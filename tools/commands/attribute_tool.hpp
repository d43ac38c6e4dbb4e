// attribute_tool: the `attribute` command. Direct logit attribution (--method dla): how much each
// part of the final stream (embeddings, every head, every b_O, every MLP) adds to an answer's
// logit, or to its difference from a foil's, at one position, the final norm's scale frozen
// (model/attribution.hpp). Attribution patching (--method atp): the change of that metric
// patching each head's z, or the stream entering each layer at each position, from another run,
// estimated from one backward pass (train/activation_grads.hpp).
#pragma once
#include "commands/cli.hpp"
#include "commands/prompt.hpp"

#include <string>
#include <vector>

namespace qkv {

struct AttributeOptions {
    CommonOptions common;
    PromptSource prompt;
    std::string answer, foil;
    int64_t position = -1;
    int64_t top = 0; // 0: every part, in the model's order; else the K largest by size
    bool json = false;
    std::string method = "dla"; // dla or atp
    std::string patch_from;     // atp: the run patched from (a file with its /tokens)
};
void run_attribute(const AttributeOptions& opt);

} // namespace qkv

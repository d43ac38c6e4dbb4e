// generate_tool: the `generate` command. With --from: the prediction from one position of an
// activation file (final LayerNorm, unembedding, softmax; the logit lens before the last
// layer). Otherwise: text generation with a key/value cache and a seeded sampler.
#pragma once
#include "commands/cli.hpp"
#include "commands/interventions.hpp"
#include "commands/prompt.hpp"
#include "qkv/model/sampler.hpp"

#include <string>
#include <vector>

namespace qkv {

struct GenerateOptions {
    CommonOptions common;
    // prediction from a stream
    std::string from;
    int64_t top = 10;
    int64_t position = -1; // -1: the last
    bool all_positions = false;
    // generation
    PromptSource prompt;
    int64_t n_new = 32;
    SamplerOptions sampling;
    std::vector<std::string> stop;
    bool ignore_eos = false, slide = false, stats = false;
    bool json = false;
    InterventionOptions sites; // steering and ablation while generating (L.SITE)
};
void run_generate(const GenerateOptions& opt);

} // namespace qkv

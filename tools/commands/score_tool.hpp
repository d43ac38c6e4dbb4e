// score_tool: the `score` command. Teacher-forced log-probabilities of a text's tokens (each
// given the ones before it), in windows for texts longer than the context; the summary
// (tokens, mean nats/token, perplexity, bits per byte, nats per character); an answer's
// log-probability and rank and its logit difference from a foil; the KL divergence from a base
// run. Input: text, a tokens file, or a stream after the last layer (--from: a patched or
// ablated run is scored as a clean one is).
#pragma once
#include "commands/cli.hpp"
#include "commands/prompt.hpp"

#include <string>
#include <vector>

namespace qkv {

struct ScoreOptions {
    CommonOptions common;
    PromptSource prompt;
    std::string from;
    int64_t context = 0, stride = 0; // 0: n_ctx, and the context
    std::vector<std::string> save;   // entropy, rank
    std::string answer, foil;
    int64_t position = -1; // of the answer: the position it follows (-1: the last)
    bool value = false, json = false;
    std::string kl_base;
};
void run_score(const ScoreOptions& opt);

} // namespace qkv

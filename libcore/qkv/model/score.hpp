// score: how likely a model finds a text, token by token (teacher forcing): each token's
// log-probability given the tokens before it, from the logits of the position before.
// Texts longer than the context go through windows of `context` tokens that slide by `stride`,
// the rule of Hugging Face's perplexity guide: a token is scored once, in the first window that
// holds it after the previous window's end and not as that window's first token, so that once
// the window slides each has at least context - stride tokens before it. (With stride equal to
// the context, each window's first token is left out, as in the guide.)
#pragma once
#include <cstdint>
#include <vector>

namespace qkv {

struct ScoreWindow {
    int64_t begin, end;   // the tokens [begin, end) run through the model
    int64_t first_scored; // tokens first_scored .. end - 1 are scored in this window
};

// The windows over n tokens; context >= 1, 1 <= stride <= context.
std::vector<ScoreWindow> score_windows(int64_t n, int64_t context, int64_t stride);

// One position's next-token distribution from its logits [vocab]: log-softmax in double.
// logprobs [vocab] is filled; entropy in nats.
double log_softmax(const float* logits, int64_t vocab, double* logprobs);

// The rank of token id in logits (1: the largest; ties go to the smaller id first).
int64_t token_rank(const float* logits, int64_t vocab, int32_t id);

// KL(base || run) = sum_v p_base(v) (log p_base(v) - log p_run(v)) for one position, in nats,
// from two rows of log-probabilities [vocab].
double kl_divergence(const float* base_logprobs, const float* run_logprobs, int64_t vocab);

} // namespace qkv

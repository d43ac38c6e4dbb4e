// prompt: the tokens a command starts from: TEXT arguments (joined by spaces), -f FILE ('-':
// stdin), or a tokens file that tokenize wrote (any stage: its /tokens).
#pragma once
#include "commands/cli.hpp"
#include "qkv/files/model_file.hpp"
#include "qkv/model/padding.hpp"
#include "qkv/tensor/tensor.hpp"
#include "qkv/tokenizer/tokenizer.hpp"

#include <string>
#include <vector>

namespace qkv {

struct PromptSource {
    std::vector<std::string> text;
    std::string file, tokens_file;
    bool no_special = false; // added tokens in the text are plain text
    bool no_bos = false;     // no BOS, even where the tokenizer adds one
};

// Registers TEXT, -f/--file, --tokens, --no-bos and --no-special; what is the text for (the
// prompt, the text to score).
void add_prompt_options(CLI::App& app, PromptSource& src, const std::string& what);

// The tokens, host int32 [batch, pos]: a text is one sequence; a tokens file may be a padded
// batch (tokenize --pad); a tokens file of another model is an error.
struct Prompt {
    Tensor tokens;
    Padding pad;
};
Prompt read_prompt(const PromptSource& src, const ModelFile& model, const Tokenizer& tok);

// Where --position (counted over each sequence's real tokens, from its last when negative)
// falls in each sequence of a batch: an index into [pos] per sequence. Out of range: a usage
// error naming option.
std::vector<int64_t> position_in_each(const Padding& pad, int64_t position,
                                      const std::string& option);

// A text's lines, their ends (\n or \r\n) removed: one sequence a line (tokenize --lines,
// steer's prompt sets).
std::vector<std::string> lines_of(const std::string& text);

// An answer's (or foil's) tokens, as they follow a prompt: no BOS; none is a usage error.
std::vector<int32_t> encode_answer(const Tokenizer& tok, const std::string& text,
                                   const std::string& option);

} // namespace qkv

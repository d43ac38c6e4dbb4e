// tokenize_tool: the `tokenize` command: text to a tokens-stage activation file (or a table,
// ids or a count), and ids back to text.
#pragma once
#include "commands/cli.hpp"

#include <string>
#include <vector>

namespace qkv {

struct TokenizeOptions {
    CommonOptions common;
    std::string vocab_dir;          // --vocab DIR (instead of --model)
    std::vector<std::string> texts; // positional TEXT arguments (or, with --decode, ids/file)
    std::string file;               // -f FILE ('-' stdin)
    bool lines = false;             // one sequence per line
    std::string pad;                // --pad left|right: sequences of unequal length padded
    bool show = false, ids = false, count = false;
    bool decode = false;
    bool no_special = false;
    bool no_bos = false;
    bool raw_bytes = false; // --bytes
    int64_t train = 0;      // --train N: learn a tokenizer of N tokens from the text
};
void run_tokenize(const TokenizeOptions& opt);

} // namespace qkv

// tokenizer_data: what defines a byte-level BPE tokenizer (its vocabulary and merges), as the
// tokenizer, its trainer and the tokenizer files share it.
#pragma once
#include <string>
#include <vector>

namespace qkv {

struct TokenizerData {
    std::string kind;                // "gpt2-bpe"
    std::vector<std::string> vocab;  // id -> token in GPT-2's byte-to-unicode alphabet
    std::vector<std::string> merges; // "a b", in rank order
};

} // namespace qkv

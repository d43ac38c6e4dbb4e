// tokenizer_data: what defines a byte-level BPE tokenizer (its vocabulary, merges, the pattern
// that splits text before merging, and its added tokens), as the tokenizer, its trainer and the
// tokenizer files share it.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace qkv {

struct TokenizerData {
    // "gpt2-bpe": GPT-2's pattern, <|endoftext|> its one added token (the fields below unused);
    // "byte-level-bpe": as a Hugging Face tokenizer.json gives it (Llama 3, SmolLM, Qwen2,
    // GPT-NeoX).
    std::string kind;
    std::vector<std::string> vocab;  // id -> token in GPT-2's byte-to-unicode alphabet; added
                                     // tokens (below) hold their text as it is
    std::vector<std::string> merges; // "a b", in rank order
    std::string normalizer;          // "" or "NFC": applied to the text between added tokens
    std::string pattern;             // splits text into the pieces BPE merges within (PCRE2)
    bool ignore_merges = false;      // a piece that is a token is that token, unmerged
    std::vector<int32_t> added;      // tokens matched in the text before it is split
    int32_t bos = -1;                // put before every sequence when add_bos
    bool add_bos = false;
    int32_t eos = -1;      // ends a text (generation stops at it); gpt2-bpe: <|endoftext|>
    int32_t unk = -1;      // sentencepiece: a character with no token and no bytes
    bool fuse_unk = false; // sentencepiece: unknowns in a row are one
};

} // namespace qkv

// bpe_trainer: learns a byte-level BPE tokenizer from text, as GPT-2's was made: the text is
// split by GPT-2's pre-tokenizer, every piece starts as its bytes (GPT-2's byte alphabet), and
// the most frequent adjacent pair is merged until the vocabulary has the size asked for.
// "<|endoftext|>" separates documents and is kept as the last token.
#pragma once
#include "qkv/tokenizer/tokenizer_data.hpp"

#include <cstdint>
#include <functional>
#include <string_view>

namespace qkv {

// Ties between pairs of equal count go to the pair with the smaller (left id, right id); ids are
// 0..255 for the bytes, then merged tokens in the order they were made. A merge whose bytes
// already form a token reuses that token. Stops early (with a smaller vocabulary) when no
// adjacent pair is left.
TokenizerData train_bpe(std::string_view text, int64_t vocab_size,
                        const std::function<void(int64_t done, int64_t total)>& progress = {});

} // namespace qkv

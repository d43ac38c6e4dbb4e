// tokenizer_json: a Hugging Face tokenizer.json (the tokenizers library's format) read into
// TokenizerData. Byte-level BPE, as Llama 3, SmolLM, Qwen2 and GPT-NeoX write it: the model
// BPE (merges as "a b" or ["a", "b"], ignore_merges), no normalizer or NFC, the pre-tokenizer
// ByteLevel (GPT-2's pattern) or a Split by a regex followed by ByteLevel without its own pattern,
// the decoder ByteLevel, added tokens, and a post-processor that adds nothing or one token in front
// (BOS). Anything else is refused with one line that names it.
#pragma once
#include "qkv/tokenizer/tokenizer_data.hpp"

#include <string>

namespace qkv {

// where names the file in messages.
TokenizerData tokenizer_data_from_json(const std::string& text, const std::string& where);

} // namespace qkv

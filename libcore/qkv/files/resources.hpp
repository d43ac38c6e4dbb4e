// resources: data built into libcore, so a fresh clone runs with nothing beside it.
// GPT-2's vocabulary and merges (OpenAI, modified MIT licence; see data/gpt2/LICENSE).
#pragma once
#include <string_view>

namespace qkv {
std::string_view gpt2_vocab_json();
std::string_view gpt2_merges_txt();
} // namespace qkv

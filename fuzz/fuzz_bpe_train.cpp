// The tokenizer trainer on arbitrary text: learning never crashes or loops, refuses invalid
// UTF-8 with a FormatError, gives a vocabulary of distinct tokens with <|endoftext|> last, the
// same result twice, and a tokenizer that round-trips the text it learned from.
#include "qkv/base/errors.hpp"
#include "qkv/tokenizer/bpe_trainer.hpp"
#include "qkv/tokenizer/tokenizer.hpp"

#include <cstdlib>
#include <set>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 1 || size > 4096) return 0;
    const int64_t n = 257 + data[0] * 2; // 257 .. 767 tokens
    const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
    qkv::TokenizerData t;
    try {
        t = qkv::train_bpe(text, n);
    } catch (const qkv::FormatError&) {
        if (qkv::find_invalid_utf8(text) < 0) std::abort(); // refused valid UTF-8
        return 0;
    }
    if (qkv::find_invalid_utf8(text) >= 0) std::abort(); // accepted invalid UTF-8
    if (static_cast<int64_t>(t.vocab.size()) > n || t.vocab.back() != "<|endoftext|>") std::abort();
    if (std::set<std::string>(t.vocab.begin(), t.vocab.end()).size() != t.vocab.size())
        std::abort();
    qkv::TokenizerData again = qkv::train_bpe(text, n);
    if (again.merges != t.merges || again.vocab != t.vocab) std::abort();
    qkv::Tokenizer tok(t);
    if (tok.decode(tok.encode(text)) != text) std::abort();
    return 0;
}

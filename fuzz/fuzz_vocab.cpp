// The vocabulary and merges loaders: vocab.json text and merges.txt text (split at the first
// NUL byte of the input), then building a tokenizer from them and encoding a little text.
#include "qkv/base/errors.hpp"
#include "qkv/files/model_file.hpp"
#include "qkv/tokenizer/tokenizer.hpp"

#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string all(reinterpret_cast<const char*>(data), size);
    const auto nul = all.find('\0');
    const std::string vocab = all.substr(0, nul);
    const std::string merges = nul == std::string::npos ? "" : all.substr(nul + 1);
    try {
        qkv::TokenizerData d = qkv::tokenizer_data_from_text(vocab, merges, "fuzz");
        qkv::Tokenizer tok(d);
        qkv::EncodeOptions raw;
        raw.raw_bytes = true;
        tok.encode("hello world \xff", raw);
    } catch (const qkv::Error&) {
    }
    return 0;
}

// The tokenizer on arbitrary bytes (raw-bytes mode must round-trip exactly; strict mode must
// accept exactly the valid UTF-8) and decoding of arbitrary ids, one-shot and streamed.
#include "qkv/base/errors.hpp"
#include "qkv/files/model_file.hpp"
#include "qkv/tokenizer/tokenizer.hpp"

#include <cstdlib>
#include <cstring>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const qkv::Tokenizer tok(qkv::gpt2_tokenizer_data());
    const std::string text(reinterpret_cast<const char*>(data), size);
    qkv::EncodeOptions raw;
    raw.raw_bytes = true;
    raw.allow_special = size % 2 == 0;
    const auto ids = tok.encode(text, raw);
    if (tok.decode(ids) != text) std::abort();
    try {
        tok.encode(text);
        if (qkv::find_invalid_utf8(text) >= 0) std::abort(); // strict mode accepted bad UTF-8
    } catch (const qkv::FormatError&) {
        if (qkv::find_invalid_utf8(text) < 0) std::abort(); // refused valid UTF-8
    }
    // arbitrary ids (some out of range): decode throws a clear error or returns bytes
    std::vector<int32_t> arb;
    for (size_t i = 0; i + 4 <= size && arb.size() < 256; i += 4) {
        int32_t v;
        std::memcpy(&v, data + i, 4);
        arb.push_back(v % 60000);
    }
    try {
        const std::string once = tok.decode(arb);
        qkv::StreamDecoder s(tok);
        std::string streamed;
        for (auto id : arb)
            streamed += s.push(id);
        streamed += s.flush();
        if (streamed != once) std::abort();
    } catch (const qkv::ShapeError&) {
    }
    return 0;
}

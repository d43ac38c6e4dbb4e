// A Hugging Face tokenizer.json from arbitrary bytes: read it (a clear error or a tokenizer),
// then encode a few texts with it, whose ids must decode to the same bytes (the BOS aside;
// where the tokenizer round-trips: not with NFC or SentencePiece's spaces).
#include "qkv/base/errors.hpp"
#include "qkv/files/tokenizer_json.hpp"
#include "qkv/tokenizer/tokenizer.hpp"

#include <cstdlib>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    try {
        const qkv::Tokenizer tok(qkv::tokenizer_data_from_json(text, "<fuzz>"));
        qkv::EncodeOptions raw;
        raw.raw_bytes = true;
        for (std::string_view s : {std::string_view("Hello world, it's 2026! <|bos|>  \n\tx"),
                                   std::string_view(text).substr(0, 200)}) {
            std::vector<int32_t> ids = tok.encode(s, raw);
            if (tok.bos_id() >= 0) {
                if (ids.empty() || ids.front() != tok.bos_id()) std::abort();
                ids.erase(ids.begin());
            }
            if (tok.round_trips() && tok.decode(ids) != s) std::abort();
        }
    } catch (const qkv::Error&) {
    }
    return 0;
}

// A checkpoint folder's tokenizer_config.json (add_bos_token, bos_token, eos_token as strings or
// objects with "content"), read beside a small tokenizer.json whose tokens it must name.
#include "qkv/base/errors.hpp"
#include "qkv/files/hf_import.hpp"
#include "qkv/tokenizer/tokenizer.hpp"

#include <fstream>
#include <string>
#include <unistd.h>

namespace {
std::string make_dir() {
    static std::string dir;
    if (!dir.empty()) return dir;
    char tmpl[] = "/tmp/qkv-fuzz-tokcfg-XXXXXX";
    dir = mkdtemp(tmpl);
    std::ofstream t(dir + "/tokenizer.json");
    t << R"({"added_tokens":[{"id":3,"content":"<s>","special":true},)"
      << R"({"id":4,"content":"</s>","special":true}],"normalizer":null,)"
      << R"("pre_tokenizer":{"type":"ByteLevel","add_prefix_space":false,"use_regex":true},)"
      << R"("post_processor":null,"decoder":null,"model":{"type":"BPE","vocab":)"
      << R"({"a":0,"b":1,"ab":2,"<s>":3,"</s>":4},"merges":["a b"]}})";
    return dir;
}
} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string dir = make_dir();
    {
        std::ofstream c(dir + "/tokenizer_config.json", std::ios::binary);
        c.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    }
    try {
        qkv::Tokenizer tok(qkv::folder_tokenizer(dir, true));
        tok.encode("abab");
    } catch (const qkv::Error&) {
    }
    return 0;
}

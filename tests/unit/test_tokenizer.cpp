#include "qkv/base/errors.hpp"
#include "qkv/files/model_file.hpp"
#include "qkv/tokenizer/tokenizer.hpp"

#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

using namespace qkv;

namespace {
const Tokenizer& gpt2() {
    static Tokenizer tok(gpt2_tokenizer_data());
    return tok;
}
std::vector<std::string> test_strings() {
    std::ifstream f(QKV_TEST_DATA "/tokenizer_strings.json");
    REQUIRE(f.good());
    return nlohmann::json::parse(f).get<std::vector<std::string>>();
}
} // namespace

TEST_CASE("tokenizer: GPT-2's known ids") {
    const Tokenizer& t = gpt2();
    REQUIRE(t.encode("Hello world") == std::vector<int32_t>{15496, 995});
    REQUIRE(t.encode(" the") == std::vector<int32_t>{262});
    REQUIRE(t.encode("<|endoftext|>") == std::vector<int32_t>{50256});
    EncodeOptions plain;
    plain.allow_special = false;
    REQUIRE(t.encode("<|endoftext|>", plain).size() > 1);
    REQUIRE(t.encode("").empty());
    REQUIRE(t.eot_id() == 50256);
    REQUIRE(byte_to_unicode()[' '] == "\xC4\xA0"); // Ġ
    REQUIRE(byte_to_unicode()['A'] == "A");
}

TEST_CASE("tokenizer: invalid UTF-8 names its offset, --bytes tokenizes raw bytes") {
    const Tokenizer& t = gpt2();
    REQUIRE(find_invalid_utf8("ab\xC3\xA9") == -1);
    REQUIRE(find_invalid_utf8("ab\xC3") == 2);
    REQUIRE(find_invalid_utf8("abc\xC0\x80") == 3);         // overlong
    REQUIRE(find_invalid_utf8("\xED\xA0\x80") == 0);        // surrogate
    REQUIRE(find_invalid_utf8("ok \xF4\x90\x80\x80") == 3); // past U+10FFFF
    REQUIRE_THROWS_WITH(t.encode("hello \xFF world"), Catch::Contains("byte offset 6"));
    EncodeOptions raw;
    raw.raw_bytes = true;
    const std::string bad = "hello \xFF w\xC3rld \xE6\x97";
    auto ids = t.encode(bad, raw);
    REQUIRE(t.decode(ids) == bad);
    REQUIRE(t.token_text(t.encode("\xE6\x97\xA5")[0]).find("\\x") != std::string::npos);
}

TEST_CASE("tokenizer: round trip and streaming decode on the test strings") {
    const Tokenizer& t = gpt2();
    auto strings = test_strings();
    REQUIRE(strings.size() >= 2000);
    for (const auto& s : strings) {
        auto ids = t.encode(s);
        const std::string once = t.decode(ids);
        REQUIRE(once == s);
        StreamDecoder stream(t);
        std::string streamed;
        for (auto id : ids) {
            std::string part = stream.push(id);
            REQUIRE(find_invalid_utf8(part) == -1); // never a broken character
            streamed += part;
        }
        streamed += stream.flush();
        REQUIRE(streamed == once);
    }
}

TEST_CASE("tokenizer: stream decoder holds bytes until the character completes") {
    const Tokenizer& t = gpt2();
    auto ids = t.encode("日"); // three bytes, two tokens in GPT-2
    REQUIRE(ids.size() == 2);
    StreamDecoder d(t);
    REQUIRE(d.push(ids[0]).empty());
    REQUIRE(d.push(ids[1]) == "日");
    REQUIRE(d.flush().empty());
    REQUIRE_THROWS_AS(t.decode({50257}), ShapeError);
    REQUIRE_THROWS_AS(t.decode({-1}), ShapeError);
}

TEST_CASE("tokenizer: a bad vocabulary is a clear error") {
    TokenizerData d = gpt2_tokenizer_data();
    d.merges.push_back("notatoken alsonot");
    REQUIRE_THROWS_WITH(Tokenizer(d), Catch::Contains("not in the vocabulary"));
    TokenizerData e;
    e.kind = "sentencepiece";
    REQUIRE_THROWS_AS(Tokenizer(e), FormatError);
}

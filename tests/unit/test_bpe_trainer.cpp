#include "qkv/base/errors.hpp"
#include "qkv/tokenizer/bpe_trainer.hpp"
#include "qkv/tokenizer/tokenizer.hpp"

#include <catch2/catch.hpp>

using namespace qkv;

TEST_CASE("bpe_trainer: merges by count, ties to the smaller ids, within pieces only") {
    // Pieces "aaab" and " aaab": (a,a) 4 times; then (aa,a) and (a,b) twice each: the tie goes
    // to (a,b), whose left id (97) is smaller than aa's (256); then (aa,ab); then (Ġ,aaab).
    TokenizerData t = train_bpe("aaab aaab", 261);
    REQUIRE(t.merges == std::vector<std::string>{"a a", "a b", "aa ab", "\xc4\xa0 aaab"});
    REQUIRE(t.vocab.size() == 261);
    CHECK(t.vocab[97] == "a");
    CHECK(t.vocab[256] == "aa");
    CHECK(t.vocab[259] == "\xc4\xa0"
                          "aaab");
    CHECK(t.vocab.back() == "<|endoftext|>");
    Tokenizer tok(t);
    CHECK(tok.encode("aaab aaab") == std::vector<int32_t>{258, 259});
    CHECK(tok.decode(tok.encode("aab ba, aaab!")) == "aab ba, aaab!");
}

TEST_CASE("bpe_trainer: deterministic, documents split at <|endoftext|>, stops when out of pairs") {
    const std::string text = "low lower lowest<|endoftext|>newer wider low low";
    TokenizerData a = train_bpe(text, 300), b = train_bpe(text, 300);
    CHECK(a.merges == b.merges);
    CHECK(a.vocab == b.vocab);
    CHECK(a.vocab.size() < 300); // a short text runs out of pairs
    for (const auto& m : a.merges)
        CHECK(m.find('<') == std::string::npos);
    Tokenizer tok(a);
    const auto ids = tok.encode(text);
    CHECK(tok.decode(ids) == text);
    CHECK(std::count(ids.begin(), ids.end(), tok.eot_id()) == 1);
}

TEST_CASE("bpe_trainer: refuses a vocabulary without room for the bytes, and bad UTF-8") {
    CHECK_THROWS_AS(train_bpe("abc", 256), UsageError);
    CHECK_THROWS_AS(train_bpe("ab\xff", 300), FormatError);
}

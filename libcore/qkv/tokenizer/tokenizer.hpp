// tokenizer: byte-level BPE (GPT-2's, and that of Hugging Face tokenizer.json files: Llama 3,
// SmolLM, Qwen2, GPT-NeoX). Added tokens (<|endoftext|>, <|begin_of_text|>, ...) are found in
// the text first, unless turned off; the rest is normalized (NFC, where the tokenizer asks for
// it), split by the pre-tokenizer pattern (PCRE2 with Unicode properties), each piece's bytes
// are mapped to GPT-2's byte-to-unicode alphabet and merged by rank; a beginning-of-sequence
// token goes first where the tokenizer adds one. SentencePiece-style BPE (Llama 2, Mistral)
// instead merges characters of the whole text between added tokens, its spaces written as
// U+2581 and one put in front, a character that is no token written as its <0xNN> bytes.
#pragma once
#include "qkv/tokenizer/tokenizer_data.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace qkv {

struct EncodeOptions {
    bool allow_special = true; // recognise the added tokens ("<|endoftext|>") in the text
    bool raw_bytes = false;    // accept invalid UTF-8, each bad byte a token of its own
    bool bos = true;           // begin with the BOS token where the tokenizer adds one
};

// GPT-2's pre-tokenizer pattern: contractions, letters, numbers, other symbols, whitespace.
inline constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// Splits text (valid UTF-8) into the pieces that BPE merges within: each match of the pattern,
// and each stretch of text between matches, is a piece.
class PreTokenizer {
  public:
    explicit PreTokenizer(const std::string& pattern = kGpt2Pattern);
    ~PreTokenizer();
    PreTokenizer(PreTokenizer&&) noexcept;
    // The piece of text starting at pos; advances pos. False at the end of text.
    bool next(std::string_view text, size_t& pos, std::string_view& piece) const;

  private:
    struct Regex;
    std::unique_ptr<Regex> regex_;
};

// Characters of UTF-8 text: the bytes that do not continue a character.
inline int64_t utf8_char_count(std::string_view s) {
    int64_t n = 0;
    for (unsigned char c : s)
        n += (c & 0xC0) != 0x80;
    return n;
}

// The text of the special token that separates documents.
inline constexpr std::string_view kEndOfTextToken = "<|endoftext|>";

class Tokenizer {
  public:
    explicit Tokenizer(const TokenizerData& data);
    ~Tokenizer();
    Tokenizer(Tokenizer&&) noexcept;

    std::vector<int32_t> encode(std::string_view text, const EncodeOptions& opt = {}) const;
    std::string decode(const std::vector<int32_t>& ids) const; // the exact bytes
    const std::string& token_bytes(int32_t id) const;          // one token's bytes
    std::string token_text(int32_t id) const; // valid UTF-8: invalid bytes written as \xNN
    int64_t vocab_size() const { return static_cast<int64_t>(bytes_.size()); }
    int32_t eot_id() const { return eot_; }                 // -1 when the vocabulary has none
    int32_t bos_id() const { return add_bos_ ? bos_ : -1; } // -1 when none is added
    // Whether decode(encode(text)) is text again: not with NFC, nor with SentencePiece's spaces
    // (one put in front of each stretch between added tokens, one taken off at the start).
    bool round_trips() const { return !nfc_ && !sentencepiece_; }

  private:
    void bpe(std::string_view piece, std::vector<int32_t>& out) const;
    void merge(const std::vector<int32_t>& symbols, std::vector<int32_t>& out) const;
    void encode_sentencepiece(std::string_view text, std::vector<int32_t>& out) const;
    void encode_ordinary(std::string_view text, bool raw_bytes, std::vector<int32_t>& out) const;
    // The leftmost added token in text from pos (the longest there): its id and offset.
    bool find_added(std::string_view text, size_t pos, int32_t& id, size_t& at) const;
    std::vector<std::string> bytes_; // id -> bytes
    int32_t byte_id_[256];           // single-byte token of each byte
    std::unordered_map<uint64_t, std::pair<int32_t, int32_t>> merges_; // (a,b) -> (rank, merged)
    std::unordered_map<std::string, int32_t> whole_; // bytes -> id, with ignore_merges
    std::vector<int32_t> added_by_first_[256];       // added tokens by first byte, longest first
    int32_t eot_ = -1, bos_ = -1, unk_ = -1;
    bool add_bos_ = false, nfc_ = false, sentencepiece_ = false, fuse_unk_ = false;
    std::unordered_map<std::string, int32_t> char_id_; // sentencepiece: a character's token
    PreTokenizer pre_;
    mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;
};

// GPT-2's reversible map from bytes to printable unicode characters (as UTF-8).
const std::vector<std::string>& byte_to_unicode();

// A token's text for tables: space as ·, newline as ↵, tab as →, CR as ␍, other control
// bytes as \xNN.
std::string visible_whitespace(const std::string& s);

// Byte offset of the first invalid UTF-8 sequence, or -1 when text is valid.
int64_t find_invalid_utf8(std::string_view text);

// Decodes ids one at a time and hands out only whole UTF-8 characters: bytes that end inside a
// character are held until it completes (or flush()).
class StreamDecoder {
  public:
    explicit StreamDecoder(const Tokenizer& tok) : tok_(tok) {}
    std::string push(int32_t id);
    std::string flush();

  private:
    const Tokenizer& tok_;
    std::string pending_;
};

} // namespace qkv

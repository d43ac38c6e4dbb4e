#include "qkv/tokenizer/tokenizer.hpp"

#include "qkv/base/errors.hpp"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <unicode/normalizer2.h>
#include <unicode/unistr.h>

#include <algorithm>
#include <cstdio>
#include <queue>

namespace qkv {

namespace {

std::string utf8(uint32_t cp) {
    std::string s;
    if (cp < 0x80) {
        s += static_cast<char>(cp);
    } else if (cp < 0x800) {
        s += static_cast<char>(0xC0 | (cp >> 6));
        s += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        s += static_cast<char>(0xE0 | (cp >> 12));
        s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        s += static_cast<char>(0x80 | (cp & 0x3F));
    }
    return s;
}

// Length of the valid UTF-8 sequence at p (1..4), or 0 when invalid; *incomplete is set when
// the bytes so far are a valid start that runs past the end.
int utf8_seq(const unsigned char* p, size_t n, bool* incomplete = nullptr) {
    if (incomplete) *incomplete = false;
    const unsigned char c = p[0];
    if (c < 0x80) return 1;
    int len;
    uint32_t min;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF)
        len = 3, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4)
        len = 4, min = 0x10000;
    else
        return 0;
    uint32_t cp = c & (0x3F >> (len - 1));
    for (int i = 1; i < len; ++i) {
        if (static_cast<size_t>(i) >= n) {
            if (incomplete) *incomplete = true;
            return 0;
        }
        if ((p[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (p[i] & 0x3F);
        // reject overlong forms, surrogates and values past U+10FFFF as early as possible
        if (i == 1) {
            if (len == 3 && c == 0xE0 && p[1] < 0xA0) return 0;
            if (len == 3 && c == 0xED && p[1] >= 0xA0) return 0;
            if (len == 4 && c == 0xF0 && p[1] < 0x90) return 0;
            if (len == 4 && c == 0xF4 && p[1] >= 0x90) return 0;
        }
    }
    return cp >= min ? len : 0;
}

// SentencePiece's mark for a space: U+2581 (▁).
constexpr std::string_view kSpaceMark = "\xE2\x96\x81";

// A SentencePiece token's bytes: <0xNN> is the byte NN; the space mark stands for a space.
std::string sentencepiece_bytes(const std::string& tok) {
    unsigned byte = 0;
    if (tok.size() == 6 && std::sscanf(tok.c_str(), "<0x%2X>", &byte) == 1)
        return std::string(1, static_cast<char>(byte));
    std::string s;
    for (size_t i = 0; i < tok.size();) {
        if (tok.compare(i, kSpaceMark.size(), kSpaceMark) == 0) {
            s += ' ';
            i += 3;
        } else {
            s += tok[i++];
        }
    }
    return s;
}

// Text (valid UTF-8) in Unicode normalization form C.
std::string nfc(std::string_view text) {
    bool ascii = true;
    for (char c : text)
        ascii = ascii && static_cast<unsigned char>(c) < 0x80;
    if (ascii) return std::string(text); // ASCII is its own NFC
    UErrorCode status = U_ZERO_ERROR;
    const icu::Normalizer2* form = icu::Normalizer2::getNFCInstance(status);
    if (U_FAILURE(status)) throw Error("tokenizer: ICU's NFC normalizer is not available");
    const icu::UnicodeString in = icu::UnicodeString::fromUTF8(
        icu::StringPiece(text.data(), static_cast<int32_t>(text.size())));
    icu::UnicodeString out = form->normalize(in, status);
    if (U_FAILURE(status)) throw Error("tokenizer: NFC normalization failed");
    std::string s;
    out.toUTF8String(s);
    return s;
}

uint64_t pair_key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

} // namespace

const std::vector<std::string>& byte_to_unicode() {
    static const std::vector<std::string> table = [] {
        std::vector<std::string> t(256);
        int n = 0;
        for (int b = 0; b < 256; ++b) {
            const bool printable =
                (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            t[b] = utf8(printable ? b : 256 + n++);
        }
        return t;
    }();
    return table;
}

std::string visible_whitespace(const std::string& s) {
    std::string o;
    for (char c : s) {
        switch (c) {
        case ' ':
            o += "\xC2\xB7";
            break; // ·
        case '\n':
            o += "\xE2\x86\xB5";
            break; // ↵
        case '\t':
            o += "\xE2\x86\x92";
            break; // →
        case '\r':
            o += "\xE2\x90\x8D";
            break; // ␍
        default:
            if (static_cast<unsigned char>(c) < 0x20) {
                char buf[8];
                std::snprintf(buf, sizeof buf, "\\x%02X", static_cast<unsigned char>(c));
                o += buf;
            } else {
                o += c;
            }
        }
    }
    return o;
}

int64_t find_invalid_utf8(std::string_view text) {
    const auto* p = reinterpret_cast<const unsigned char*>(text.data());
    size_t i = 0;
    while (i < text.size()) {
        const int len = utf8_seq(p + i, text.size() - i);
        if (!len) return static_cast<int64_t>(i);
        i += len;
    }
    return -1;
}

struct PreTokenizer::Regex {
    pcre2_code* code = nullptr;
    pcre2_match_data* match = nullptr;
    ~Regex() {
        if (match) pcre2_match_data_free(match);
        if (code) pcre2_code_free(code);
    }
};

PreTokenizer::PreTokenizer(const std::string& pattern) : regex_(std::make_unique<Regex>()) {
    int err = 0;
    PCRE2_SIZE off = 0;
    regex_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                 PCRE2_UTF | PCRE2_UCP, &err, &off, nullptr);
    if (!regex_->code) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        throw FormatError("tokenizer: cannot compile the pre-tokenizer pattern (" +
                          std::string(reinterpret_cast<const char*>(msg)) + " at offset " +
                          std::to_string(off) + ")");
    }
    pcre2_jit_compile(regex_->code, PCRE2_JIT_COMPLETE); // falls back to the interpreter
    regex_->match = pcre2_match_data_create_from_pattern(regex_->code, nullptr);
}
PreTokenizer::~PreTokenizer() = default;
PreTokenizer::PreTokenizer(PreTokenizer&&) noexcept = default;

bool PreTokenizer::next(std::string_view text, size_t& pos, std::string_view& piece) const {
    if (pos >= text.size()) return false;
    const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
    // An empty match is no piece: the engine looks on for a non-empty one.
    const int rc = pcre2_match(regex_->code, subject, text.size(), pos,
                               PCRE2_NO_UTF_CHECK | PCRE2_NOTEMPTY, regex_->match, nullptr);
    size_t start = text.size(), end = text.size();
    if (rc > 0) {
        const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(regex_->match);
        start = ov[0];
        end = ov[1];
        if (start < pos || end <= start) start = end = text.size(); // (\K could do it)
    }
    if (start > pos)
        end = start; // an unmatched gap (never with GPT-2's pattern) is a piece of its own
    else if (end <= start)
        return false;
    piece = text.substr(pos, end - pos);
    pos = end;
    return true;
}

Tokenizer::~Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;

Tokenizer::Tokenizer(const TokenizerData& data)
    : pre_(data.kind == "byte-level-bpe" ? data.pattern : std::string(kGpt2Pattern)) {
    if (data.kind != "gpt2-bpe" && data.kind != "byte-level-bpe" &&
        data.kind != "sentencepiece-bpe")
        throw FormatError("tokenizer kind '" + data.kind +
                          "' is not supported (gpt2-bpe, byte-level-bpe, sentencepiece-bpe)");
    sentencepiece_ = data.kind == "sentencepiece-bpe";
    const int64_t n = static_cast<int64_t>(data.vocab.size());
    std::vector<bool> is_added(data.vocab.size(), false);
    std::vector<int32_t> added = data.kind != "gpt2-bpe" ? data.added : std::vector<int32_t>{};
    for (int64_t id = 0; id < n && data.kind == "gpt2-bpe"; ++id)
        if (data.vocab[id] == kEndOfTextToken) added.push_back(static_cast<int32_t>(id));
    for (int32_t id : added) {
        if (id < 0 || id >= n || data.vocab[id].empty())
            throw FormatError("tokenizer: added token " + std::to_string(id) +
                              " is not a token of the vocabulary");
        is_added[id] = true;
    }
    // Token strings are in the byte-to-unicode alphabet: map them back to bytes.
    std::unordered_map<std::string, int> char_to_byte;
    const auto& b2u = byte_to_unicode();
    for (int b = 0; b < 256; ++b)
        char_to_byte[b2u[b]] = b;
    std::unordered_map<std::string, int32_t> id_of;
    bytes_.resize(data.vocab.size());
    for (size_t id = 0; id < data.vocab.size(); ++id) {
        const std::string& tok = data.vocab[id];
        if (is_added[id]) { // its text as it is
            bytes_[id] = tok;
            continue;
        }
        id_of[tok] = static_cast<int32_t>(id);
        if (sentencepiece_) { // U+2581 is a space; <0xNN> is the byte NN
            bytes_[id] = sentencepiece_bytes(tok);
            if (utf8_seq(reinterpret_cast<const unsigned char*>(tok.data()), tok.size()) ==
                static_cast<int>(tok.size()))
                char_id_.emplace(tok, static_cast<int32_t>(id)); // one character
            continue;
        }
        std::string raw;
        const auto* p = reinterpret_cast<const unsigned char*>(tok.data());
        for (size_t i = 0; i < tok.size();) {
            const int len = utf8_seq(p + i, tok.size() - i);
            auto it = len ? char_to_byte.find(tok.substr(i, len)) : char_to_byte.end();
            if (it == char_to_byte.end())
                throw FormatError("tokenizer: token " + std::to_string(id) +
                                  " is not in GPT-2's byte alphabet");
            raw += static_cast<char>(it->second);
            i += len;
        }
        bytes_[id] = raw;
        if (data.ignore_merges) whole_.emplace(raw, static_cast<int32_t>(id));
    }
    for (int32_t id : added)
        added_by_first_[static_cast<unsigned char>(bytes_[id][0])].push_back(id);
    for (auto& list : added_by_first_)
        std::stable_sort(list.begin(), list.end(),
                         [&](int32_t a, int32_t b) { return bytes_[a].size() > bytes_[b].size(); });
    if (data.kind == "gpt2-bpe" && !added.empty()) eot_ = added.front();
    if (data.eos >= 0) {
        if (data.eos >= n)
            throw FormatError("tokenizer: the EOS token " + std::to_string(data.eos) +
                              " is not in the vocabulary");
        eot_ = data.eos;
    }
    if (data.add_bos && (data.bos < 0 || data.bos >= n))
        throw FormatError("tokenizer: the BOS token " + std::to_string(data.bos) +
                          " is not in the vocabulary");
    bos_ = data.bos;
    add_bos_ = data.add_bos;
    if (!data.normalizer.empty() && data.normalizer != "NFC")
        throw FormatError("tokenizer: normalizer '" + data.normalizer + "' is not supported (NFC)");
    nfc_ = data.normalizer == "NFC";
    if (sentencepiece_ && (data.unk < 0 || data.unk >= n))
        throw FormatError("tokenizer: the unknown token " + std::to_string(data.unk) +
                          " is not in the vocabulary");
    unk_ = data.unk;
    fuse_unk_ = data.fuse_unk;
    for (int b = 0; b < 256; ++b) {
        char name[8];
        std::snprintf(name, sizeof name, "<0x%02X>", b);
        auto it = id_of.find(sentencepiece_ ? std::string(name) : b2u[b]);
        if (it == id_of.end())
            throw FormatError("tokenizer: the vocabulary lacks the token of byte " +
                              std::to_string(b));
        byte_id_[b] = it->second;
    }
    for (size_t rank = 0; rank < data.merges.size(); ++rank) {
        const std::string& m = data.merges[rank];
        const auto sp = m.find(' ');
        const std::string a = m.substr(0, sp), b = m.substr(sp + 1);
        auto ia = id_of.find(a), ib = id_of.find(b), im = id_of.find(a + b);
        if (ia == id_of.end() || ib == id_of.end() || im == id_of.end())
            throw FormatError("tokenizer: merge " + std::to_string(rank) + " '" + m +
                              "' uses a token not in the vocabulary");
        merges_.emplace(pair_key(ia->second, ib->second),
                        std::make_pair(static_cast<int32_t>(rank), im->second));
    }
}

// Byte-pair merges on one piece of byte-level text: its bytes' tokens, merged.
void Tokenizer::bpe(std::string_view piece, std::vector<int32_t>& out) const {
    if (piece.size() == 1) {
        out.push_back(byte_id_[static_cast<unsigned char>(piece[0])]);
        return;
    }
    std::vector<int32_t> symbols(piece.size());
    for (size_t i = 0; i < piece.size(); ++i)
        symbols[i] = byte_id_[static_cast<unsigned char>(piece[i])];
    merge(symbols, out);
}

// Repeatedly merges the adjacent pair of lowest rank (leftmost first on ties), with a heap so
// long pieces stay O(n log n); appends the result to out.
void Tokenizer::merge(const std::vector<int32_t>& symbols, std::vector<int32_t>& out) const {
    const size_t n = symbols.size();
    if (n == 0) return;
    struct Sym {
        int32_t id;
        int prev, next;
    };
    std::vector<Sym> sym(n);
    for (size_t i = 0; i < n; ++i)
        sym[i] = {symbols[i], static_cast<int>(i) - 1, i + 1 < n ? static_cast<int>(i + 1) : -1};
    struct Cand {
        int32_t rank;
        int pos;
        int32_t left, right;
        bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
    };
    std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap;
    auto push = [&](int pos) {
        if (pos < 0 || sym[pos].next < 0) return;
        auto it = merges_.find(pair_key(sym[pos].id, sym[sym[pos].next].id));
        if (it != merges_.end())
            heap.push({it->second.first, pos, sym[pos].id, sym[sym[pos].next].id});
    };
    for (size_t i = 0; i + 1 < n; ++i)
        push(static_cast<int>(i));
    while (!heap.empty()) {
        const Cand c = heap.top();
        heap.pop();
        Sym& a = sym[c.pos];
        if (a.id != c.left || a.next < 0 || sym[a.next].id != c.right) continue; // stale
        const int b = a.next;
        a.id = merges_.at(pair_key(c.left, c.right)).second;
        a.next = sym[b].next;
        if (a.next >= 0) sym[a.next].prev = c.pos;
        sym[b].id = -1;
        push(a.prev);
        push(c.pos);
    }
    for (int i = 0; i >= 0; i = sym[i].next)
        out.push_back(sym[i].id);
}

// SentencePiece-style: the text between added tokens, spaces as U+2581 and one in front, is one
// word; each character is its token, or its bytes' <0xNN> tokens, or the unknown token.
void Tokenizer::encode_sentencepiece(std::string_view text, std::vector<int32_t>& out) const {
    if (text.empty()) return;
    std::string word(kSpaceMark);
    for (char c : text)
        word += c == ' ' ? kSpaceMark : std::string_view(&c, 1);
    std::vector<int32_t> symbols;
    const auto* p = reinterpret_cast<const unsigned char*>(word.data());
    for (size_t i = 0; i < word.size();) {
        const int len = std::max(1, utf8_seq(p + i, word.size() - i));
        auto it = char_id_.find(word.substr(i, len));
        if (it != char_id_.end()) {
            symbols.push_back(it->second);
        } else if (byte_id_[p[i]] >= 0) {
            for (int k = 0; k < len; ++k)
                symbols.push_back(byte_id_[p[i + k]]);
        } else if (!(fuse_unk_ && !symbols.empty() && symbols.back() == unk_)) {
            symbols.push_back(unk_);
        }
        i += len;
    }
    merge(symbols, out);
}

void Tokenizer::encode_ordinary(std::string_view text, bool raw_bytes,
                                std::vector<int32_t>& out) const {
    if (raw_bytes) { // split into valid runs and single invalid bytes
        const auto* p = reinterpret_cast<const unsigned char*>(text.data());
        size_t start = 0, i = 0;
        while (i < text.size()) {
            const int len = utf8_seq(p + i, text.size() - i);
            if (len) {
                i += len;
                continue;
            }
            encode_ordinary(text.substr(start, i - start), false, out);
            out.push_back(byte_id_[p[i]]);
            start = ++i;
        }
        encode_ordinary(text.substr(start), false, out);
        return;
    }
    std::string normalized;
    if (nfc_) {
        normalized = nfc(text);
        text = normalized;
    }
    if (sentencepiece_) return encode_sentencepiece(text, out);
    size_t pos = 0;
    std::string_view piece;
    while (pre_.next(text, pos, piece)) {
        if (!whole_.empty()) { // ignore_merges: a piece that is a token stays whole
            auto it = whole_.find(std::string(piece));
            if (it != whole_.end()) {
                out.push_back(it->second);
                continue;
            }
        }
        if (piece.size() <= 64) {
            auto it = cache_.find(std::string(piece));
            if (it != cache_.end()) {
                out.insert(out.end(), it->second.begin(), it->second.end());
            } else {
                std::vector<int32_t> ids;
                bpe(piece, ids);
                out.insert(out.end(), ids.begin(), ids.end());
                if (cache_.size() > 200000) cache_.clear();
                cache_.emplace(std::string(piece), std::move(ids));
            }
        } else {
            bpe(piece, out);
        }
    }
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, const EncodeOptions& opt) const {
    if (!opt.raw_bytes) {
        const int64_t bad = find_invalid_utf8(text);
        if (bad >= 0)
            throw FormatError("invalid UTF-8 at byte offset " + std::to_string(bad) +
                              " (use --bytes to tokenize raw bytes)");
    }
    std::vector<int32_t> out;
    out.reserve(text.size() / 3 + 2);
    if (opt.bos && add_bos_) out.push_back(bos_);
    size_t pos = 0, at = 0;
    int32_t id = -1;
    while (opt.allow_special && find_added(text, pos, id, at)) {
        encode_ordinary(text.substr(pos, at - pos), opt.raw_bytes, out);
        out.push_back(id);
        pos = at + bytes_[id].size();
    }
    encode_ordinary(text.substr(pos), opt.raw_bytes, out);
    return out;
}

bool Tokenizer::find_added(std::string_view text, size_t pos, int32_t& id, size_t& at) const {
    for (at = pos; at < text.size(); ++at) {
        for (int32_t a : added_by_first_[static_cast<unsigned char>(text[at])]) {
            if (text.compare(at, bytes_[a].size(), bytes_[a]) == 0) {
                id = a;
                return true;
            }
        }
    }
    return false;
}

const std::string& Tokenizer::token_bytes(int32_t id) const {
    if (id < 0 || id >= vocab_size())
        throw ShapeError("token id " + std::to_string(id) + " is outside the vocabulary (0.." +
                         std::to_string(vocab_size() - 1) + ")");
    return bytes_[id];
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
    std::string s;
    for (int32_t id : ids)
        s += token_bytes(id);
    if (sentencepiece_ && !s.empty() && s[0] == ' ') s.erase(0, 1); // the space put in front
    return s;
}

std::string Tokenizer::token_text(int32_t id) const {
    const std::string& b = token_bytes(id);
    if (find_invalid_utf8(b) < 0) return b;
    static const char* hex = "0123456789ABCDEF";
    std::string s;
    const auto* p = reinterpret_cast<const unsigned char*>(b.data());
    for (size_t i = 0; i < b.size();) {
        const int len = utf8_seq(p + i, b.size() - i);
        if (len) {
            s.append(b, i, len);
            i += len;
        } else {
            s += "\\x";
            s += hex[p[i] >> 4];
            s += hex[p[i] & 15];
            ++i;
        }
    }
    return s;
}

std::string StreamDecoder::push(int32_t id) {
    pending_ += tok_.token_bytes(id);
    // Hand out everything but a trailing, still-incomplete UTF-8 character.
    const auto* p = reinterpret_cast<const unsigned char*>(pending_.data());
    size_t i = 0, keep_from = pending_.size();
    while (i < pending_.size()) {
        bool incomplete = false;
        const int len = utf8_seq(p + i, pending_.size() - i, &incomplete);
        if (incomplete) {
            keep_from = i;
            break;
        }
        i += len ? len : 1;
    }
    std::string out = pending_.substr(0, keep_from);
    pending_.erase(0, keep_from);
    return out;
}

std::string StreamDecoder::flush() {
    std::string out;
    out.swap(pending_);
    return out;
}

} // namespace qkv

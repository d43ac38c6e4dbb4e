#include "qkv/tokenizer/bpe_trainer.hpp"

#include "qkv/base/errors.hpp"
#include "qkv/tokenizer/tokenizer.hpp"

#include <algorithm>
#include <map>
#include <queue>
#include <tuple>
#include <unordered_map>

namespace qkv {

namespace {

uint64_t key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}
int32_t left_of(uint64_t k) {
    return static_cast<int32_t>(k >> 32);
}
int32_t right_of(uint64_t k) {
    return static_cast<int32_t>(k & 0xffffffffu);
}

struct Word {
    std::vector<int32_t> syms;
    int64_t count = 0;
    int64_t stamp = -1; // the last merge that rewrote this word
};

// Every distinct piece of the text with its number of occurrences, in byte order.
std::vector<Word> count_pieces(std::string_view text) {
    const int64_t bad = find_invalid_utf8(text);
    if (bad >= 0)
        throw FormatError("invalid UTF-8 at byte offset " + std::to_string(bad) +
                          " of the training text");
    PreTokenizer pre;
    std::unordered_map<std::string_view, int64_t> counts;
    size_t start = 0;
    while (start <= text.size()) {
        size_t hit = text.find(kEndOfTextToken, start);
        if (hit == std::string_view::npos) hit = text.size();
        const std::string_view doc = text.substr(start, hit - start);
        size_t pos = 0;
        std::string_view piece;
        while (pre.next(doc, pos, piece))
            ++counts[piece];
        start = hit + kEndOfTextToken.size();
    }
    std::vector<std::pair<std::string_view, int64_t>> sorted(counts.begin(), counts.end());
    std::sort(sorted.begin(), sorted.end());
    std::vector<Word> words(sorted.size());
    for (size_t i = 0; i < sorted.size(); ++i) {
        for (unsigned char c : sorted[i].first)
            words[i].syms.push_back(c);
        words[i].count = sorted[i].second;
    }
    return words;
}

} // namespace

TokenizerData train_bpe(std::string_view text, int64_t vocab_size,
                        const std::function<void(int64_t, int64_t)>& progress) {
    if (vocab_size < 257 || vocab_size > (int64_t(1) << 20))
        throw UsageError("--train: the vocabulary size must be 257 (256 bytes and "
                         "<|endoftext|>) to 1048576, not " +
                         std::to_string(vocab_size));
    std::vector<Word> words = count_pieces(text);

    std::vector<std::string> bytes(256); // token id -> its bytes
    for (int b = 0; b < 256; ++b)
        bytes[b] = std::string(1, static_cast<char>(b));
    std::unordered_map<std::string, int32_t> id_of;
    for (int b = 0; b < 256; ++b)
        id_of[bytes[b]] = b;

    std::unordered_map<uint64_t, int64_t> pair_count;
    std::unordered_map<uint64_t, std::vector<int32_t>> where; // pair -> words (may repeat)
    for (size_t w = 0; w < words.size(); ++w) {
        const auto& s = words[w].syms;
        for (size_t i = 0; i + 1 < s.size(); ++i) {
            const uint64_t k = key(s[i], s[i + 1]);
            pair_count[k] += words[w].count;
            auto& list = where[k];
            if (list.empty() || list.back() != static_cast<int32_t>(w))
                list.push_back(static_cast<int32_t>(w));
        }
    }
    // Max-heap on (count, then smaller left id, then smaller right id). Entries go stale when a
    // count drops; a stale entry is re-pushed with its current count when it comes up.
    using Entry = std::tuple<int64_t, int64_t, int64_t>; // count, -left, -right
    std::priority_queue<Entry> heap;
    auto push = [&](uint64_t k, int64_t c) {
        if (c > 0) heap.emplace(c, -int64_t(left_of(k)), -int64_t(right_of(k)));
    };
    {
        std::vector<std::pair<uint64_t, int64_t>> all(pair_count.begin(), pair_count.end());
        std::sort(all.begin(), all.end());
        for (auto& [k, c] : all)
            push(k, c);
    }

    std::vector<std::string> merges; // "A B" in the byte-to-unicode alphabet
    const auto& b2u = byte_to_unicode();
    auto visible = [&](const std::string& raw) {
        std::string s;
        for (unsigned char c : raw)
            s += b2u[c];
        return s;
    };
    const int64_t target = vocab_size - 1; // the last id is <|endoftext|>
    int64_t merge_no = 0;
    std::vector<uint64_t> grown;
    while (static_cast<int64_t>(bytes.size()) < target && !heap.empty()) {
        auto [c, na, nb] = heap.top();
        heap.pop();
        const uint64_t k = key(static_cast<int32_t>(-na), static_cast<int32_t>(-nb));
        auto pc = pair_count.find(k);
        const int64_t now = pc == pair_count.end() ? 0 : pc->second;
        if (now != c) { // stale
            push(k, now);
            continue;
        }
        const int32_t a = left_of(k), b = right_of(k);
        const std::string joined = bytes[a] + bytes[b];
        int32_t made;
        if (auto it = id_of.find(joined); it != id_of.end()) {
            made = it->second;
        } else {
            made = static_cast<int32_t>(bytes.size());
            bytes.push_back(joined);
            id_of.emplace(joined, made);
        }
        merges.push_back(visible(bytes[a]) + " " + visible(bytes[b]));
        grown.clear();
        std::vector<int32_t> list = std::move(where[k]);
        where.erase(k);
        for (int32_t w : list) {
            Word& word = words[w];
            if (word.stamp == merge_no) continue;
            word.stamp = merge_no;
            auto& s = word.syms;
            bool has = false;
            for (size_t i = 0; i + 1 < s.size() && !has; ++i)
                has = s[i] == a && s[i + 1] == b;
            if (!has) continue; // an old entry: an earlier merge took this pair away
            for (size_t i = 0; i + 1 < s.size(); ++i)
                pair_count[key(s[i], s[i + 1])] -= word.count;
            std::vector<int32_t> out;
            out.reserve(s.size());
            for (size_t i = 0; i < s.size(); ++i) {
                if (i + 1 < s.size() && s[i] == a && s[i + 1] == b) {
                    out.push_back(made);
                    ++i;
                } else {
                    out.push_back(s[i]);
                }
            }
            s.swap(out);
            for (size_t i = 0; i + 1 < s.size(); ++i) {
                const uint64_t p = key(s[i], s[i + 1]);
                pair_count[p] += word.count;
                if (s[i] == made || s[i + 1] == made) {
                    auto& l = where[p];
                    if (l.empty() || l.back() != w) l.push_back(w);
                    grown.push_back(p);
                }
            }
        }
        pair_count.erase(k);
        std::sort(grown.begin(), grown.end());
        grown.erase(std::unique(grown.begin(), grown.end()), grown.end());
        for (uint64_t p : grown)
            push(p, pair_count[p]);
        ++merge_no;
        if (progress && (merge_no % 256 == 0)) progress(static_cast<int64_t>(bytes.size()), target);
    }

    TokenizerData tok;
    tok.kind = "gpt2-bpe";
    for (const auto& raw : bytes)
        tok.vocab.push_back(visible(raw));
    tok.vocab.emplace_back(kEndOfTextToken);
    tok.merges = std::move(merges);
    return tok;
}

} // namespace qkv

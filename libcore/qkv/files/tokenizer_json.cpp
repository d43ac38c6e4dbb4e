#include "qkv/files/tokenizer_json.hpp"

#include "qkv/base/errors.hpp"
#include "qkv/tokenizer/tokenizer.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <limits>

namespace qkv {

namespace {

using nlohmann::json;

class Reader {
  public:
    explicit Reader(std::string where) : where_(std::move(where)) {}

    [[noreturn]] void fail(const std::string& what) const {
        throw FormatError(where_ + ": " + what);
    }
    const json& member(const json& obj, const char* key, const std::string& path) const {
        if (!obj.is_object() || !obj.contains(key)) fail(path + "." + key + " is missing");
        return obj[key];
    }
    std::string type_of(const json& obj, const std::string& path) const {
        const json& t = member(obj, "type", path);
        if (!t.is_string()) fail(path + ".type is not a string");
        return t.get<std::string>();
    }
    bool flag(const json& obj, const char* key, bool fallback) const {
        if (!obj.is_object() || !obj.contains(key) || obj[key].is_null()) return fallback;
        if (!obj[key].is_boolean()) fail(std::string(key) + " is not true or false");
        return obj[key].get<bool>();
    }
    int32_t id(const json& v, const std::string& path) const {
        if (!v.is_number_integer() || v.get<int64_t>() < 0 ||
            v.get<int64_t>() > std::numeric_limits<int32_t>::max())
            fail(path + " is not a token id");
        return static_cast<int32_t>(v.get<int64_t>());
    }

  private:
    std::string where_;
};

// The pattern of the pre-tokenizer: ByteLevel with its own (GPT-2's) pattern, or a Split by a
// regex (its matches and the text between them are the pieces) then ByteLevel without one.
std::string read_pattern(const Reader& r, const json& pre) {
    auto byte_level = [&](const json& b, const std::string& path) {
        if (r.flag(b, "add_prefix_space", false))
            r.fail(path + ".add_prefix_space true is not supported");
        return r.flag(b, "use_regex", true);
    };
    if (pre.is_null()) r.fail("pre_tokenizer null is not supported (byte-level BPE needs one)");
    const std::string type = r.type_of(pre, "pre_tokenizer");
    if (type == "ByteLevel") {
        if (!byte_level(pre, "pre_tokenizer"))
            r.fail("pre_tokenizer ByteLevel without use_regex is not supported");
        return kGpt2Pattern;
    }
    if (type != "Sequence") r.fail("pre_tokenizer " + type + " is not supported");
    const json& list = r.member(pre, "pretokenizers", "pre_tokenizer");
    if (!list.is_array() || list.size() != 2)
        r.fail("pre_tokenizer Sequence: only [Split, ByteLevel] is supported");
    const std::string first = r.type_of(list[0], "pre_tokenizer[0]");
    const std::string second = r.type_of(list[1], "pre_tokenizer[1]");
    if (first != "Split" || second != "ByteLevel")
        r.fail("pre_tokenizer Sequence [" + first + ", " + second +
               "] is not supported (only [Split, ByteLevel])");
    if (byte_level(list[1], "pre_tokenizer[1]"))
        r.fail("pre_tokenizer[1] ByteLevel with use_regex after a Split is not supported");
    const json& split = list[0];
    const json& behavior = r.member(split, "behavior", "pre_tokenizer[0]");
    if (behavior != "Isolated")
        r.fail("pre_tokenizer[0] Split behavior " + behavior.dump() +
               " is not supported (Isolated)");
    if (r.flag(split, "invert", false)) r.fail("pre_tokenizer[0] Split invert is not supported");
    const json& pattern = r.member(split, "pattern", "pre_tokenizer[0]");
    if (!pattern.is_object() || !pattern.contains("Regex") || !pattern["Regex"].is_string())
        r.fail("pre_tokenizer[0] Split: only a Regex pattern is supported");
    return pattern["Regex"].get<std::string>();
}

// The vocabulary: the model's tokens, then the added tokens (their text as it is) at their ids.
void read_vocab(const Reader& r, const json& root, const json& model, TokenizerData& t) {
    const json& vocab = r.member(model, "vocab", "model");
    if (!vocab.is_object()) r.fail("model.vocab is not an object");
    const json& added = root.contains("added_tokens") ? root["added_tokens"] : json::array();
    if (!added.is_array()) r.fail("added_tokens is not a list");
    const size_t n = vocab.size() + added.size();
    t.vocab.assign(n, std::string());
    std::vector<bool> seen(n, false);
    auto place = [&](int32_t id, const std::string& path) {
        if (static_cast<size_t>(id) >= n)
            r.fail(path + ": id " + std::to_string(id) + " is past the vocabulary's " +
                   std::to_string(n) + " tokens (ids must be 0..N-1)");
        const bool again = seen[id];
        seen[id] = true;
        return again;
    };
    for (auto it = vocab.begin(); it != vocab.end(); ++it) {
        const int32_t id = r.id(it.value(), "model.vocab[\"" + it.key() + "\"]");
        if (place(id, "model.vocab"))
            r.fail("model.vocab: id " + std::to_string(id) + " is given twice");
        t.vocab[id] = it.key();
    }
    const auto& b2u = byte_to_unicode();
    for (size_t i = 0; i < added.size(); ++i) {
        const std::string path = "added_tokens[" + std::to_string(i) + "]";
        const json& a = added[i];
        const json& content = r.member(a, "content", path);
        if (!content.is_string() || content.get<std::string>().empty())
            r.fail(path + ".content is not a non-empty string");
        for (const char* f : {"single_word", "lstrip", "rstrip"})
            if (r.flag(a, f, false)) r.fail(path + "." + f + " true is not supported");
        const std::string text = content.get<std::string>();
        if (find_invalid_utf8(text) >= 0) r.fail(path + ".content is not valid UTF-8");
        const int32_t id = r.id(r.member(a, "id", path), path + ".id");
        if (place(id, path)) { // the model's own token may be added too: the same bytes
            std::string mapped;
            for (unsigned char c : text)
                mapped += b2u[c];
            if (t.vocab[id] != mapped && t.vocab[id] != text)
                r.fail(path + ": id " + std::to_string(id) + " is another token's");
        }
        t.vocab[id] = text;
        if (std::find(t.added.begin(), t.added.end(), id) == t.added.end()) t.added.push_back(id);
    }
    size_t missing = 0;
    while (missing < n && seen[missing])
        ++missing;
    if (missing < n) {
        // Ids given twice for one token leave the last slots empty: a smaller vocabulary.
        for (size_t i = missing; i < n; ++i)
            if (seen[i]) r.fail("no token has id " + std::to_string(missing));
        t.vocab.resize(missing);
    }
}

void read_merges(const Reader& r, const json& model, TokenizerData& t) {
    const json& merges = r.member(model, "merges", "model");
    if (!merges.is_array()) r.fail("model.merges is not a list");
    t.merges.reserve(merges.size());
    for (size_t i = 0; i < merges.size(); ++i) {
        const json& m = merges[i];
        if (m.is_string() && m.get<std::string>().find(' ') != std::string::npos) {
            t.merges.push_back(m.get<std::string>());
        } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string() &&
                   m[0].get<std::string>().find(' ') == std::string::npos) {
            t.merges.push_back(m[0].get<std::string>() + " " + m[1].get<std::string>());
        } else {
            r.fail("model.merges[" + std::to_string(i) + "] is not a merge (\"a b\" or [a, b])");
        }
    }
}

// The post-processor: nothing added (null, ByteLevel) or a template that puts one token first.
void read_post_processor(const Reader& r, const json& post, TokenizerData& t) {
    if (post.is_null()) return;
    const std::string type = r.type_of(post, "post_processor");
    if (type == "ByteLevel") return;
    std::vector<json> steps;
    if (type == "TemplateProcessing") {
        const json& single = r.member(post, "single", "post_processor");
        if (single.is_array()) steps.assign(single.begin(), single.end());
    } else if (type == "Sequence") { // ByteLevel and a template, as Llama 3.1 writes it
        const json& list = r.member(post, "processors", "post_processor");
        if (!list.is_array()) r.fail("post_processor.processors is not a list");
        for (const json& p : list) {
            const std::string inner = r.type_of(p, "post_processor.processors[]");
            if (inner == "TemplateProcessing") {
                read_post_processor(r, p, t);
            } else if (inner != "ByteLevel") {
                r.fail("post_processor " + inner + " is not supported");
            }
        }
        return;
    } else {
        r.fail("post_processor " + type + " is not supported");
    }
    auto is_sequence_a = [](const json& s) {
        return s.is_object() && s.contains("Sequence") && s["Sequence"].is_object() &&
               s["Sequence"].value("id", "") == "A";
    };
    if (steps.size() == 1 && is_sequence_a(steps[0])) return;
    if (steps.size() != 2 || !is_sequence_a(steps[1]) || !steps[0].is_object() ||
        !steps[0].contains("SpecialToken") || !steps[0]["SpecialToken"].is_object())
        r.fail("post_processor template " + r.member(post, "single", "post_processor").dump() +
               " is not supported (only one token before the sequence)");
    const json& token = steps[0]["SpecialToken"]["id"];
    const json& specials = r.member(post, "special_tokens", "post_processor");
    if (!token.is_string() || !specials.is_object() || !specials.contains(token.get<std::string>()))
        r.fail("post_processor: the token before the sequence is not among its special_tokens");
    const json& ids = r.member(specials[token.get<std::string>()], "ids", "post_processor");
    if (!ids.is_array() || ids.size() != 1)
        r.fail("post_processor: the token before the sequence must have one id");
    t.bos = r.id(ids[0], "post_processor's BOS id");
    t.add_bos = true;
}

// Llama 2's and Mistral's: Sequence [Prepend "▁", Replace " " by "▁"].
bool is_sentencepiece_normalizer(const json& n) {
    const std::string space = "\xE2\x96\x81";
    if (!n.is_object() || n.value("type", "") != "Sequence" || !n.contains("normalizers"))
        return false;
    const json& list = n["normalizers"];
    if (!list.is_array() || list.size() != 2 || !list[0].is_object() || !list[1].is_object())
        return false;
    const json& prepend = list[0];
    const json& replace = list[1];
    return prepend.value("type", "") == "Prepend" && prepend.value("prepend", "") == space &&
           replace.value("type", "") == "Replace" && replace.value("content", "") == space &&
           replace.contains("pattern") && replace["pattern"].is_object() &&
           replace["pattern"].value("String", "") == " ";
}

} // namespace

namespace {
TokenizerData read_tokenizer_json(const Reader& r, const std::string& text) {
    json root;
    try {
        root = json::parse(text);
    } catch (const json::exception&) {
        r.fail("not valid JSON");
    }
    if (!root.is_object()) r.fail("not a tokenizer.json (expected a JSON object)");
    const json& model = r.member(root, "model", "");
    const std::string type = r.type_of(model, "model");
    if (type != "BPE") r.fail("model type " + type + " is not supported (BPE)");
    for (const char* k : {"continuing_subword_prefix", "end_of_word_suffix", "dropout"})
        if (model.contains(k) && !model[k].is_null() && model[k] != "")
            r.fail(std::string("model.") + k + " is not supported");
    const json none;
    const json& normalizer = root.contains("normalizer") ? root["normalizer"] : none;
    const json& pre = root.contains("pre_tokenizer") ? root["pre_tokenizer"] : none;
    const json& decoder = root.contains("decoder") ? root["decoder"] : none;
    TokenizerData t;
    if (r.flag(model, "byte_fallback", false)) {
        // SentencePiece-style BPE: spaces as U+2581 with one in front, then one word.
        t.kind = "sentencepiece-bpe";
        if (!is_sentencepiece_normalizer(normalizer))
            r.fail("byte_fallback BPE with normalizer " + normalizer.dump().substr(0, 200) +
                   " is not supported (only Prepend \"\u2581\" then Replace \" \" by "
                   "\"\u2581\", as Llama 2 and Mistral write it)");
        if (!pre.is_null()) r.fail("byte_fallback BPE with a pre_tokenizer is not supported");
        t.fuse_unk = r.flag(model, "fuse_unk", false);
    } else {
        t.kind = "byte-level-bpe";
        if (!normalizer.is_null()) {
            t.normalizer = r.type_of(normalizer, "normalizer");
            if (t.normalizer != "NFC")
                r.fail("normalizer " + t.normalizer + " is not supported (NFC)");
        }
        if (!decoder.is_null() && r.type_of(decoder, "decoder") != "ByteLevel")
            r.fail("decoder " + r.type_of(decoder, "decoder") + " is not supported (ByteLevel)");
        t.pattern = read_pattern(r, pre);
        t.ignore_merges = r.flag(model, "ignore_merges", false);
    }
    read_vocab(r, root, model, t);
    read_merges(r, model, t);
    if (t.kind == "sentencepiece-bpe") {
        const json& unk = r.member(model, "unk_token", "model");
        auto it = unk.is_string()
                      ? std::find(t.vocab.begin(), t.vocab.end(), unk.get<std::string>())
                      : t.vocab.end();
        if (it == t.vocab.end()) r.fail("model.unk_token is not a token of the vocabulary");
        t.unk = static_cast<int32_t>(it - t.vocab.begin());
    }
    read_post_processor(r, root.contains("post_processor") ? root["post_processor"] : json(), t);
    if (t.add_bos && static_cast<size_t>(t.bos) >= t.vocab.size())
        r.fail("post_processor: the BOS id " + std::to_string(t.bos) + " is not in the vocabulary");
    return t;
}
} // namespace

TokenizerData tokenizer_data_from_json(const std::string& text, const std::string& where) {
    const Reader r(where);
    try {
        return read_tokenizer_json(r, text);
    } catch (const nlohmann::json::exception& e) { // a value of the wrong kind met by value()
        r.fail(std::string("unexpected JSON (") + e.what() + ")");
    }
}

} // namespace qkv

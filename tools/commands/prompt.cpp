#include "commands/prompt.hpp"

#include "commands/cli.hpp"
#include "qkv/files/activations.hpp"

#include <cstring>
#include <sstream>

namespace qkv {

void add_prompt_options(CLI::App& app, PromptSource& src, const std::string& what) {
    app.add_option("text", src.text, "The " + what + " (the arguments joined by spaces)");
    app.add_option("-f,--file", src.file, "Read the " + what + " from FILE ('-': stdin)");
    app.add_option("--tokens", src.tokens_file, "Take the " + what + " from a tokens file");
    app.add_flag("--no-bos", src.no_bos, "Do not begin the text with the tokenizer's BOS");
    app.add_flag("--no-special", src.no_special,
                 "Added tokens written in the text (<|endoftext|>) are plain text");
}

Prompt read_prompt(const PromptSource& src, const ModelFile& model, const Tokenizer& tok) {
    if (!src.tokens_file.empty()) {
        if (!src.text.empty() || !src.file.empty())
            throw UsageError("give TEXT, -f FILE or --tokens FILE, one of them");
        Activations in = read_activations(src.tokens_file, false);
        check_model(in, model.model_id(), model.path());
        return {in.tokens, in.pad};
    }
    std::string text;
    if (!src.text.empty()) {
        if (!src.file.empty()) throw UsageError("give TEXT or -f FILE, not both");
        for (size_t i = 0; i < src.text.size(); ++i)
            text += (i ? " " : "") + src.text[i];
    } else {
        require_input(src.file);
        auto data = read_all(src.file);
        text.assign(data.begin(), data.end());
    }
    EncodeOptions eo;
    eo.allow_special = !src.no_special;
    eo.bos = !src.no_bos;
    const std::vector<int32_t> ids = tok.encode(text, eo);
    const int64_t n = static_cast<int64_t>(ids.size());
    Tensor t = Tensor::zeros({1, n}, DType::I32);
    if (!ids.empty()) std::memcpy(t.i32(), ids.data(), ids.size() * sizeof(int32_t));
    return {t, Padding::none(1, n)};
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        out.push_back(line);
    }
    return out;
}

std::vector<int64_t> position_in_each(const Padding& pad, int64_t position,
                                      const std::string& option) {
    std::vector<int64_t> at(pad.batch());
    for (int64_t b = 0; b < pad.batch(); ++b) {
        const int64_t n = pad.length(b);
        const int64_t p = position < 0 ? n + position : position;
        if (p < 0 || p >= n)
            throw UsageError(
                option + " " + std::to_string(position) + ": " +
                (pad.batch() > 1 ? "sequence " + std::to_string(b) + " has " : "the text has ") +
                std::to_string(n) + " tokens");
        at[b] = pad.begin(b) + p;
    }
    return at;
}

std::vector<int32_t> encode_answer(const Tokenizer& tok, const std::string& text,
                                   const std::string& option) {
    EncodeOptions eo;
    eo.bos = false;
    std::vector<int32_t> ids = tok.encode(text, eo);
    if (ids.empty()) throw UsageError(option + ": '" + text + "' has no tokens");
    return ids;
}

} // namespace qkv

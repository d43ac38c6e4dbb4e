#include "commands/prompt.hpp"

#include "commands/cli.hpp"
#include "files/activations.hpp"

#include <cstring>

namespace qkv {

void add_prompt_options(CLI::App& app, PromptSource& src, const std::string& what) {
    app.add_option("text", src.text, "The " + what + " (the arguments joined by spaces)");
    app.add_option("-f,--file", src.file, "Read the " + what + " from FILE ('-': stdin)");
    app.add_option("--tokens", src.tokens_file, "Take the " + what + " from a tokens file");
    app.add_flag("--no-bos", src.no_bos, "Do not begin the text with the tokenizer's BOS");
    app.add_flag("--no-special", src.no_special,
                 "Added tokens written in the text (<|endoftext|>) are plain text");
}

Tensor read_prompt(const PromptSource& src, const ModelFile& model, const Tokenizer& tok) {
    if (!src.tokens_file.empty()) {
        if (!src.text.empty() || !src.file.empty())
            throw UsageError("give TEXT, -f FILE or --tokens FILE, one of them");
        Activations in = read_activations(src.tokens_file, false);
        check_model(in, model.model_id(), model.path());
        return in.tokens;
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
    Tensor t = Tensor::zeros({1, static_cast<int64_t>(ids.size())}, DType::I32);
    if (!ids.empty()) std::memcpy(t.i32(), ids.data(), ids.size() * sizeof(int32_t));
    return t;
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

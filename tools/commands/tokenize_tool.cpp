#include "commands/tokenize_tool.hpp"

#include "commands/prompt.hpp"
#include "qkv/files/activations.hpp"
#include "qkv/files/h5file.hpp"
#include "qkv/files/model_file.hpp"
#include "qkv/tokenizer/bpe_trainer.hpp"
#include "qkv/tokenizer/tokenizer.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <unistd.h>

namespace qkv {

namespace {

struct Loaded {
    Tokenizer tok;
    std::string model_id;
};

Loaded load(const TokenizeOptions& opt) {
    if (!opt.common.model.empty() && !opt.vocab_dir.empty())
        throw UsageError("give --model or --vocab, not both");
    if (!opt.vocab_dir.empty())
        return {Tokenizer(load_tokenizer_data(opt.vocab_dir)), "vocab:" + opt.vocab_dir};
    if (opt.common.model.empty())
        throw UsageError("a tokenizer is needed: --model M (a model file) or --vocab DIR|FILE");
    ModelFile m = ModelFile::open(opt.common.model);
    return {Tokenizer(m.load_tokenizer()), m.model_id()};
}

std::vector<std::string> input_texts(const TokenizeOptions& opt) {
    std::vector<std::string> texts = opt.texts;
    if (!opt.file.empty() || texts.empty()) {
        if (!texts.empty()) throw UsageError("give TEXT arguments or -f FILE, not both");
        require_input(opt.file);
        std::vector<char> data = read_all(opt.file);
        texts.emplace_back(data.begin(), data.end());
    }
    if (opt.lines) {
        std::vector<std::string> out;
        for (const auto& t : texts)
            for (std::string& line : lines_of(t))
                out.push_back(std::move(line));
        return out;
    }
    return texts;
}

void run_decode(const TokenizeOptions& opt, const Tokenizer& tok) {
    std::vector<std::vector<int32_t>> seqs;
    bool all_ints = !opt.texts.empty();
    for (const auto& t : opt.texts)
        all_ints =
            all_ints && !t.empty() && t.find_first_not_of("-0123456789") == std::string::npos;
    if (all_ints) {
        std::vector<int32_t> ids;
        for (const auto& t : opt.texts) {
            try {
                ids.push_back(static_cast<int32_t>(std::stol(t)));
            } catch (const std::exception&) {
                throw UsageError("--decode: '" + t + "' is not a token id");
            }
        }
        seqs.push_back(ids);
    } else {
        if (opt.texts.size() > 1) throw UsageError("--decode takes one file or a list of ids");
        const std::string path = opt.texts.empty() ? opt.file : opt.texts[0];
        require_input(path);
        Activations a = read_activations(path, false);
        for (int64_t b = 0; b < a.batch(); ++b) // each sequence's real tokens, without pads
            seqs.emplace_back(a.tokens.i32() + b * a.n_pos() + a.pad.begin(b),
                              a.tokens.i32() + b * a.n_pos() + a.pad.end(b));
    }
    for (size_t i = 0; i < seqs.size(); ++i) {
        std::string text = tok.decode(seqs[i]);
        if (seqs.size() > 1) text += '\n';
        std::fwrite(text.data(), 1, text.size(), stdout);
    }
}

} // namespace

// --train N: a new tokenizer learned from the input text, written as a tokenizer file.
void run_train(const TokenizeOptions& opt) {
    if (!opt.common.model.empty() || !opt.vocab_dir.empty())
        throw UsageError("--train learns a new tokenizer: give no --model or --vocab");
    if (opt.show || opt.ids || opt.count || opt.decode || opt.lines)
        throw UsageError("--train writes a tokenizer file: it takes no --show, --ids, --count, "
                         "--decode or --lines");
    std::vector<std::string> texts = input_texts(opt);
    std::string text;
    for (auto& t : texts)
        text += t;
    const auto t0 = std::chrono::steady_clock::now();
    const bool tty = !opt.common.quiet && isatty(STDERR_FILENO);
    TokenizerData tok = train_bpe(text, opt.train, [&](int64_t done, int64_t total) {
        if (tty) std::cerr << "\rtokenize: " << done << " / " << total << " tokens" << std::flush;
    });
    if (tty) std::cerr << '\n';
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    write_tokenizer_file(opt.common.output, tok, history_line(opt.common, "cpu"));
    if (!opt.common.quiet) {
        std::cerr << "tokenize: learned " << tok.merges.size() << " merges, " << tok.vocab.size()
                  << " tokens, from " << text.size() << " bytes in " << std::fixed
                  << std::setprecision(2) << secs << " s";
        if (static_cast<int64_t>(tok.vocab.size()) < opt.train)
            std::cerr << " (the text has no more pairs to merge: fewer than " << opt.train << ")";
        std::cerr << '\n';
    }
}

void run_tokenize(const TokenizeOptions& opt) {
    if (opt.train) return run_train(opt);
    const int modes = opt.show + opt.ids + opt.count + opt.decode;
    if (modes > 1) throw UsageError("choose one of --show, --ids, --count, --decode");
    if (modes && !opt.pad.empty())
        throw UsageError("--pad shapes the tokens file: it takes no --show, --ids, --count or "
                         "--decode");
    Loaded l = load(opt);
    if (opt.decode) return run_decode(opt, l.tok);
    std::vector<std::string> texts = input_texts(opt);
    EncodeOptions eo;
    eo.allow_special = !opt.no_special;
    eo.raw_bytes = opt.raw_bytes;
    eo.bos = !opt.no_bos;
    std::vector<std::vector<int32_t>> seqs;
    for (size_t i = 0; i < texts.size(); ++i) {
        try {
            seqs.push_back(l.tok.encode(texts[i], eo));
        } catch (const FormatError& e) {
            throw FormatError((texts.size() > 1 ? "text " + std::to_string(i) + ": " : "") +
                              e.what());
        }
    }
    if (opt.count) {
        for (auto& s : seqs)
            std::cout << s.size() << '\n';
        return;
    }
    if (opt.ids) {
        for (auto& s : seqs) {
            for (size_t i = 0; i < s.size(); ++i)
                std::cout << (i ? " " : "") << s[i];
            std::cout << '\n';
        }
        return;
    }
    if (opt.show) {
        for (size_t b = 0; b < seqs.size(); ++b) {
            if (seqs.size() > 1) std::cout << "# sequence " << b << '\n';
            std::cout << "pos\tid\ttoken\n";
            for (size_t p = 0; p < seqs[b].size(); ++p)
                std::cout << p << '\t' << seqs[b][p] << '\t'
                          << visible_whitespace(l.tok.token_text(seqs[b][p])) << '\n';
        }
        return;
    }
    const int64_t batch = static_cast<int64_t>(seqs.size());
    for (size_t b = 0; b < seqs.size(); ++b) {
        const int64_t n = static_cast<int64_t>(seqs[b].size());
        if (n != static_cast<int64_t>(seqs[0].size()) && opt.pad.empty())
            throw ShapeError("sequences have unequal lengths (" + std::to_string(seqs[0].size()) +
                             " tokens in sequence 0, " + std::to_string(n) + " in sequence " +
                             std::to_string(b) + "); give --pad left or --pad right");
        if (n == 0 && batch > 1)
            throw ShapeError((opt.lines ? "line " : "text ") + std::to_string(b + 1) +
                             " has no tokens: a sequence of a batch needs at least one");
    }
    // A ragged batch: each sequence padded with the pad id (the tokenizer's end of text, or
    // 0), the mask 1 on its real tokens.
    const PaddedBatch padded = pad_batch(seqs, opt.pad == "left", std::max(l.tok.eot_id(), 0));
    const Tensor& tokens = padded.tokens; // [batch, pos]
    std::vector<std::string> text;
    for (int64_t i = 0; i < tokens.numel(); ++i)
        text.push_back(l.tok.token_text(tokens.i32()[i]));
    write_tokens_file(opt.common.output, l.model_id, tokens, text, history_line(opt.common, "cpu"),
                      padded.pad);
}

} // namespace qkv

// tokenize: text to byte-level BPE tokens (an activation file at stage tokens), and back.
#include "commands/tokenize_tool.hpp"

int main(int argc, char** argv) {
    qkv::TokenizeOptions opt;
    CLI::App app{"Text to tokens (byte-level BPE: GPT-2's, or a tokenizer.json) and back.\n\n"
                 "Examples:\n"
                 "  tokenize --model tiny.h5 \"a fluffy blue creature\" -o tok.h5\n"
                 "  tokenize --model tiny.h5 --show \"Hello world\"\n"
                 "  tokenize --model tiny.h5 --lines --pad left -f prompts.txt -o batch.h5\n"
                 "  tokenize --vocab gpt2 --ids -f notes.txt\n"
                 "  tokenize --vocab llama3/tokenizer.json --show \"Hello world\"\n"
                 "  tokenize --model tiny.h5 --decode 15496 995\n"
                 "  tokenize --model tiny.h5 --decode tok.h5\n"
                 "  tokenize --train 2048 -f corpus.txt -o tokenizer.h5",
                 "tokenize"};
    qkv::add_common_options(app, opt.common, qkv::kOutput | qkv::kQuiet);
    app.add_option("-m,--model", opt.common.model, "Model file whose tokenizer to use");
    app.add_option("--vocab", opt.vocab_dir,
                   "A tokenizer.json, a folder with tokenizer.json or with vocab.json and "
                   "merges.txt, or a tokenizer file");
    app.add_option("text", opt.texts, "Text (several make a batch); with --decode: ids or a file");
    app.add_option("-f,--file", opt.file, "Read the text from FILE ('-': stdin)");
    app.add_flag("--lines", opt.lines, "One sequence per line of the input");
    app.add_option("--pad", opt.pad,
                   "Pad sequences of unequal length on the left or right to one length, "
                   "writing /mask")
        ->check(CLI::IsMember({"left", "right"}));
    app.add_flag("--show", opt.show, "A readable table: position, id, token text");
    app.add_flag("--ids", opt.ids, "Ids as one line of numbers per sequence");
    app.add_flag("--count", opt.count, "Just the number of tokens per sequence");
    app.add_flag("-d,--decode", opt.decode, "Ids (arguments or an activation file) back to text");
    app.add_flag("--no-special", opt.no_special,
                 "Treat added tokens (<|endoftext|>, ...) as plain text");
    app.add_flag("--no-bos", opt.no_bos, "Leave out the BOS token the tokenizer puts first");
    app.add_flag("--bytes", opt.raw_bytes, "Accept invalid UTF-8, tokenized as raw bytes");
    app.add_option("--train", opt.train,
                   "Learn a byte-level BPE tokenizer of N tokens from the text; -o gets it")
        ->check(CLI::PositiveNumber);
    return qkv::run_tool(app, argc, argv, opt.common, [&] { qkv::run_tokenize(opt); });
}

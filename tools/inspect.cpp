// inspect: what a file holds; values of a slice; attention patterns and slices as pictures;
// the difference between two files.
#include "commands/inspect.hpp"
#include "commands/cli.hpp"

#include <cstdlib>
#include <iostream>
#include <string>
#include <unistd.h>
#include <vector>

int main(int argc, char** argv) {
    qkv::InspectOptions o;
    qkv::CommonOptions common;
    bool plain = false;
    CLI::App app{"Look inside activation and model files.\n\n"
                 "Examples:\n"
                 "  inspect l0.h5\n"
                 "  inspect l0.h5:/resid --slice 0,:,0:4\n"
                 "  inspect l0.h5 --pattern --heads all --png pattern.png\n"
                 "  inspect l0.h5 --pattern --head 1 --term\n"
                 "  inspect l0.h5:/resid --slice 0,:,: --png resid.png\n"
                 "  inspect clean.h5 --diff patched.h5\n"
                 "  inspect l0.h5 --pattern --heads all --svg pattern.svg\n"
                 "  inspect l0.h5 --pattern --heads all --html pattern.html\n"
                 "  inspect trained.h5 --loss --png loss.png\n"
                 "  block -m gpt2.h5 --save resid_pre e.h5 | inspect - --lens -m gpt2.h5 --png "
                 "lens.png",
                 "inspect"};
    qkv::add_common_options(app, common, 0); // --version
    std::vector<std::string> files;
    app.add_option("file", files,
                   "FILE.h5, or FILE.h5:/DATASET ('-': stdin); with --lens, the stage files of "
                   "a run")
        ->required();
    app.add_option("--slice", o.slice, "numpy-like selection of FILE:/DATASET, e.g. 0,:,3");
    app.add_flag("--json", o.json, "The summary (or --diff) as one JSON object");
    app.add_flag("--pattern", o.pattern, "Draw /attn/pattern (with --png, --svg or --term)");
    app.add_option("--head,--heads", o.heads, "Heads to draw: H, a list 0,2,5, or all")
        ->capture_default_str();
    app.add_option("--batch", o.batch, "Which sequence of the batch")->capture_default_str();
    app.add_option("--png", o.png, "Write the picture as PNG");
    app.add_option("--svg", o.svg, "Write the picture as SVG (vector, real text: for papers)");
    app.add_option("--html", o.html,
                   "With --pattern: one self-contained page for a browser (every head; click "
                   "to enlarge, hover for the weights)");
    app.add_flag("--term", o.term, "Draw the picture in the terminal (24-bit colour)");
    app.add_option("--width", o.width,
                   "Width for --term (default: the terminal's, else $COLUMNS, else 80)");
    std::string color = "auto";
    app.add_option("--color", color,
                   "--term in 24-bit colour: auto (on a terminal, unless NO_COLOR is set), "
                   "always (a pipe too) or never (plain characters)")
        ->check(CLI::IsMember({"auto", "always", "never"}))
        ->capture_default_str();
    app.add_flag("--no-color", plain)->group(""); // qkv 0.1's --color never
    app.add_option("--diff", o.diff,
                   "Compare FILE with this file, dataset by dataset; exit 1 when they differ");
    app.add_option("--tolerance", o.tolerance,
                   "With --diff: values at most this far apart agree (default 0)")
        ->check(CLI::NonNegativeNumber);
    app.add_flag("--text", o.text,
                 "Print the text with each token coloured by FILE:/DATASET [batch, pos] "
                 "(/score/logprob, a neuron with --slice :,:,N, ...)");
    app.add_flag("--lens", o.lens,
                 "The logit lens: the top next token and its probability at every layer's "
                 "stream (block --save resid_pre, or stage files) and position; needs -m");
    app.add_option("-m,--model", o.model, "The model, for --lens");
    app.add_flag("--loss", o.loss,
                 "The training log of a model from train (a table; --png or --svg: curves)");
    // "-:/DATASET" (a dataset of standard input) would read as an option: hand it over as
    // "./-:/DATASET" and turn it back after parsing.
    std::vector<std::string> args(argv, argv + argc);
    std::vector<char*> ptrs;
    for (auto& a : args) {
        if (a.rfind("-:/", 0) == 0) a = "./" + a;
        ptrs.push_back(a.data());
    }
    return qkv::run_tool(app, argc, ptrs.data(), common, [&] {
        o.target = files[0];
        o.more.assign(files.begin() + 1, files.end());
        if (o.target.rfind("./-:/", 0) == 0) o.target.erase(0, 2);
        const char* no_color = std::getenv("NO_COLOR");
        o.color = !plain && (color == "always" || (color == "auto" && isatty(STDOUT_FILENO) &&
                                                   !(no_color && *no_color)));
        bool differ = false;
        std::cout << qkv::run_inspect(o, &differ);
        common.exit_status = differ ? 1 : 0;
    });
}

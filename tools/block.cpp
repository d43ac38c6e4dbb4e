// block: attend then mlp for a range of layers in one process, with the same kernels.
#include "commands/pipeline.hpp"
#include "commands/sweep_tool.hpp"

int main(int argc, char** argv) {
    qkv::BlockOptions opt;
    CLI::App app{"Whole transformer blocks (attend then mlp) for a range of layers.\n\n"
                 "Examples:\n"
                 "  tokenize -m tiny.h5 \"a b c\" | embed -m tiny.h5 | block -m tiny.h5 --save "
                 "resid_pre,pattern -o all.h5\n"
                 "  block -m tiny.h5 e.h5 --sweep ablate-heads --answer \" Mary\" --foil \" "
                 "John\" -o grid.h5\n"
                 "  block -m gpt2.h5 -f corpus.txt --window 128 --layers 6 --save resid_pre "
                 "--append store.h5",
                 "block"};
    qkv::add_common_options(app, opt.common, qkv::kCompute);
    app.add_option("input", opt.input, "Activation file; '-' or absent: stdin");
    app.add_option("-L,--layers", opt.layers,
                   "START:STOP (half-open, as in Python; empty, e.g. 6: of 6 layers, passes the "
                   "stream through), one layer L, or all")
        ->capture_default_str();
    app.add_option("--save", opt.save,
                   "Keep what attend and mlp would save, per layer under /blocks/L: resid_pre, "
                   "resid_mid, scores, pattern, q, k, v, z, head_out, out (attention's), pre, "
                   "pre_linear, post, mlp_out")
        ->delimiter(',')
        ->allow_extra_args(false)
        ->check(CLI::IsMember(qkv::block_save_names()));
    app.add_option("--positions", opt.positions,
                   "Keep the saves at these positions only: I, START:STOP, negative from the end "
                   "(e.g. 0,4:6,-1); the pattern's query positions, every key");
    app.add_option("--ablate-heads", opt.ablate_heads,
                   "Zero these heads' contribution, LAYER.HEAD (e.g. 0.3,1.2)");
    app.add_option("--scale-head", opt.scale_heads, "Multiply head L.H's contribution by F: L.H=F")
        ->allow_extra_args(false);
    app.add_option("--patch-from", opt.patch_from,
                   "A capture of a run of the same model (block --save) for --patch and "
                   "--patch-heads");
    app.add_option("--patch-heads", opt.patch_heads,
                   "Replace these heads' contribution with the capture's head_out, LAYER.HEAD "
                   "(e.g. 0.3,1.2)");
    qkv::add_intervention_options(app, opt.sites, true);
    app.add_flag("--stats", opt.stats,
                 "Print to stderr the time of the forward pass (loads apart) with its tokens/s, "
                 "of the weights' loads, and peak memory");
    app.add_option("--sweep", opt.sweep,
                   "Score every single-site variant in batches: ablate-heads, ablate-neurons "
                   "(zero), patch-heads (z), patch-positions (the stream) from --patch-from; "
                   "-o gets /sweep/metric [layer, unit], else a table")
        ->check(CLI::IsMember(qkv::sweep_kinds()));
    app.add_option("--answer", opt.answer,
                   "With --sweep: the answer token scored (without: the KL divergence from the "
                   "clean run's next-token distribution)");
    app.add_option("--foil", opt.foil, "With --sweep: score logit(answer) - logit(foil)");
    app.add_option("-f,--file", opt.store.corpus,
                   "With --append: a text (a corpus; '-': stdin) run in windows of --window "
                   "tokens");
    app.add_option("--window", opt.store.window, "With --append: tokens a window")
        ->check(CLI::PositiveNumber);
    app.add_option("--stride", opt.store.stride,
                   "With --append: tokens from a window's start to the next's (default: the "
                   "window)")
        ->check(CLI::PositiveNumber);
    app.add_option("--append", opt.store.append,
                   "Append the --save sites of --layers at --positions of every window to this "
                   "activation store (created when absent; a store a killed run left continues "
                   "where it stopped)");
    return qkv::run_tool(app, argc, argv, opt.common, [&] { qkv::run_block(opt); });
}

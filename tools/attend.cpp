// attend: LayerNorm 1, multi-head causal self-attention and output projection of one layer,
// added to the residual stream.
#include "commands/pipeline.hpp"

int main(int argc, char** argv) {
    qkv::AttendOptions opt;
    CLI::App app{"One attention block: LayerNorm 1, multi-head attention, W_O, residual add.\n\n"
                 "Examples:\n"
                 "  tokenize -m tiny.h5 \"a fluffy blue creature\" | embed -m tiny.h5 | attend "
                 "-m tiny.h5 --layer 0 --save pattern -o l0.h5\n"
                 "  attend -m tiny.h5 -l 0 e.h5 --ablate-heads 0.3 | mlp -m tiny.h5 -l 0 -o out.h5",
                 "attend"};
    qkv::add_common_options(app, opt.common, qkv::kCompute);
    app.add_option("input", opt.input, "Activation file; '-' or absent: stdin");
    app.add_option("-l,--layer", opt.layer, "Layer (block index, from 0)")->required();
    app.add_option("--save", opt.save,
                   "Also write /attn/NAME for each of: scores, pattern, q, k, v, z, head_out, out")
        ->delimiter(',')
        ->allow_extra_args(false)
        ->check(CLI::IsMember(qkv::attend_save_names()));
    auto* no_mask = app.add_flag("--no-mask", opt.no_mask, "Turn off the causal mask");
    app.add_option("--context", opt.context,
                   "Cross-attention: keys and values from this activation file's /resid");
    app.add_flag("--mask", opt.mask, "With --context: apply the causal mask too")
        ->excludes(no_mask);
    app.add_option("--ablate-heads", opt.ablate_heads, "Zero these heads' contribution (e.g. 0,3)");
    app.add_option("--only-heads", opt.only_heads, "Keep only these heads' contribution");
    app.add_option("--scale-head", opt.scale_heads, "Multiply head H's contribution by F: H=F")
        ->allow_extra_args(false);
    app.add_option("--patch-from", opt.patch_from,
                   "A run of the same model (its saves of this layer) for --patch and "
                   "--patch-heads");
    app.add_option("--patch-heads", opt.patch_heads,
                   "Replace these heads' contribution with the run's /attn/head_out (e.g. 1,2)");
    qkv::add_intervention_options(app, opt.sites, false);
    return qkv::run_tool(app, argc, argv, opt.common, [&] { qkv::run_attend(opt); });
}

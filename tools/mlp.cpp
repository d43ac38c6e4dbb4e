// mlp: LayerNorm 2 and the MLP (GELU) of one layer, added to the residual stream.
#include "commands/pipeline.hpp"

int main(int argc, char** argv) {
    qkv::MlpOptions opt;
    CLI::App app{"One MLP block: LayerNorm 2, W_in, GELU, W_out, residual add.\n\n"
                 "Examples:\n"
                 "  attend -m tiny.h5 -l 0 e.h5 | mlp -m tiny.h5 -l 0 --save post -o l0.h5\n"
                 "  mlp -m tiny.h5 -l 0 a.h5 --ablate mlp_post#42=zero -o out.h5",
                 "mlp"};
    qkv::add_common_options(app, opt.common, qkv::kCompute);
    app.add_option("input", opt.input, "Activation file; '-' or absent: stdin");
    app.add_option("-l,--layer", opt.layer, "Layer (block index, from 0)")->required();
    app.add_option("--save", opt.save,
                   "Also write hidden activations: /mlp/pre, /mlp/post, for gated MLPs (llama) "
                   "/mlp/pre_linear, and /mlp/out, the MLP's change to the stream")
        ->delimiter(',')
        ->allow_extra_args(false)
        ->check(CLI::IsMember({"pre", "pre_linear", "post", "out"}));
    app.add_option("--patch-from", opt.patch_from, "A run of the same model, for --patch");
    qkv::add_intervention_options(app, opt.sites, false);
    return qkv::run_tool(app, argc, argv, opt.common, [&] { qkv::run_mlp(opt); });
}

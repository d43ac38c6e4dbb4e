// block: attend then mlp for a range of layers in one process, with the same kernels.
#include "commands/pipeline.hpp"

int main(int argc, char** argv) {
    qkv::BlockOptions opt;
    CLI::App app{"Whole transformer blocks (attend then mlp) for a range of layers.", "block"};
    qkv::add_common_options(app, opt.common, qkv::kCompute);
    app.add_option("input", opt.input, "Activation file; '-' or absent: stdin");
    app.add_option("-L,--layers", opt.layers,
                   "START:STOP (half-open, as in Python), one layer L, or all")
        ->capture_default_str();
    return qkv::run_tool(app, argc, argv, opt.common, [&] { qkv::run_block(opt); });
}

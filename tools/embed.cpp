// embed: token ids to the residual stream (token embedding + position embedding).
#include "commands/pipeline.hpp"

int main(int argc, char** argv) {
    qkv::EmbedOptions opt;
    CLI::App app{"Token ids to the residual stream: /resid = W_E[token] + W_pos[pos].\n\n"
                 "Examples:\n"
                 "  tokenize -m tiny.h5 \"a fluffy blue creature\" | embed -m tiny.h5 -o e.h5\n"
                 "  embed -m tiny.h5 tokens.h5 --save parts | inspect -",
                 "embed"};
    qkv::add_common_options(app, opt.common, qkv::kCompute);
    app.add_option("input", opt.input, "Activation file at stage tokens; '-' or absent: stdin");
    app.add_option(
           "--save", opt.save,
           "Also write parts: /embed/token and /embed/pos (no /embed/pos for rotary models)")
        ->delimiter(',')
        ->allow_extra_args(false)
        ->check(CLI::IsMember({"parts"}));
    return qkv::run_tool(app, argc, argv, opt.common, [&] { qkv::run_embed(opt); });
}

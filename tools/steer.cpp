// steer: a steering vector by contrastive activation addition, for generate --add.
#include "commands/steer_tool.hpp"

int main(int argc, char** argv) {
    qkv::SteerOptions opt;
    CLI::App app{"A steering vector: the mean of the stream entering a layer over one set of "
                 "prompts minus its mean over another (contrastive activation addition), at "
                 "each prompt's last token.\n\n"
                 "Examples:\n"
                 "  steer -m tiny.h5 -l 3 --positive love.txt --negative hate.txt -o love.h5\n"
                 "  generate -m tiny.h5 \"I think that\" --add 3.resid_pre=love.h5 --scale 4",
                 "steer"};
    qkv::add_common_options(app, opt.common, qkv::kCompute & ~qkv::kForce);
    app.add_option("-l,--layer", opt.layer, "The layer whose entering stream (resid_pre) to use")
        ->required();
    app.add_option("--positive", opt.positive, "Prompts to steer towards, one a line")->required();
    app.add_option("--negative", opt.negative, "Prompts to steer away from, one a line")
        ->required();
    app.add_flag("--all-positions", opt.all_positions,
                 "The mean over every token of each prompt, not its last");
    app.add_flag("--no-bos", opt.no_bos, "Do not begin the prompts with the tokenizer's BOS");
    return qkv::run_tool(app, argc, argv, opt.common, [&] { qkv::run_steer(opt); });
}

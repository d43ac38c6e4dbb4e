// generate: the next-token prediction from a stream (or the logit lens), and text generation.
#include "commands/generate_tool.hpp"

int main(int argc, char** argv) {
    qkv::GenerateOptions opt;
    CLI::App app{"Predict the next token from the last vector, or generate text.\n\n"
                 "Examples:\n"
                 "  generate -m tiny.h5 \"Once upon a time\" -n 20 --seed 1\n"
                 "  generate -m tiny.h5 \"The capital of France is\" -n 5 --temperature 0\n"
                 "  tokenize -m tiny.h5 \"Hello world\" | embed -m tiny.h5 | block -m tiny.h5 \\\n"
                 "    | generate -m tiny.h5 --from - --top 5\n"
                 "  # logit lens: the prediction the stream would give after layer 0 only\n"
                 "  ... | block -m tiny.h5 -L 0:1 | generate -m tiny.h5 --from - --top 5",
                 "generate"};
    qkv::add_common_options(app, opt.common, qkv::kCompute & ~qkv::kForce);
    app.add_option("--from", opt.from,
                   "Predict from this activation file's stream ('-': stdin) instead of generating");
    app.add_option("--top", opt.top, "With --from: how many tokens to list")->capture_default_str();
    app.add_option("--position", opt.position, "With --from: the position (default: the last)");
    app.add_flag("--all-positions", opt.all_positions,
                 "With --from and -o: logits of every position");
    qkv::add_prompt_options(app, opt.prompt, "prompt");
    app.add_option("-n,--n-tokens", opt.n_new, "How many tokens to generate")
        ->capture_default_str();
    app.add_option("--temperature", opt.sampling.temperature, "0: greedy")->capture_default_str();
    app.add_option("--top-k", opt.sampling.top_k, "Sample from the K most likely (0: off)");
    app.add_option("--top-p", opt.sampling.top_p,
                   "Sample from the smallest set reaching P (1: off)");
    app.add_option("--seed", opt.sampling.seed, "Random seed")->capture_default_str();
    app.add_option("--stop", opt.stop, "Stop when this text appears (repeatable)")
        ->allow_extra_args(false);
    app.add_flag("--ignore-eos", opt.ignore_eos, "Do not stop at <|endoftext|>");
    app.add_flag("--slide", opt.slide, "Past n_ctx, keep the last half of the context and go on");
    app.add_flag("--stats", opt.stats, "Timing and peak memory on stderr");
    app.add_flag("--json", opt.json, "One JSON object instead of text");
    qkv::add_intervention_options(app, opt.sites, true, false);
    return qkv::run_tool(app, argc, argv, opt.common, [&] { qkv::run_generate(opt); });
}

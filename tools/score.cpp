// score: how likely the model finds a text, token by token; answers, foils and KL.
#include "commands/cli.hpp"
#include "commands/score_tool.hpp"

int main(int argc, char** argv) {
    qkv::ScoreOptions opt;
    CLI::App app{"Teacher-forced log-probabilities of a text's tokens, perplexity, an answer's "
                 "log-probability against a foil, and the KL divergence from a base run.\n\n"
                 "Examples:\n"
                 "  score -m tiny.h5 -f story.txt --context 128 --stride 64\n"
                 "  score -m tiny.h5 \"The capital of France is\" --answer \" Paris\" --foil "
                 "\" London\" --value\n"
                 "  tokenize -m tiny.h5 \"When Mary and John went to the store, John gave a drink "
                 "to\" | embed -m tiny.h5 \\\n"
                 "    | block -m tiny.h5 | score -m tiny.h5 --from - --answer \" Mary\" --foil "
                 "\" John\" --value\n"
                 "  score -m tiny.h5 -f story.txt -o base.h5 && ... | score -m tiny.h5 --from - "
                 "--kl-base base.h5",
                 "score"};
    qkv::add_common_options(app, opt.common, qkv::kCompute & ~qkv::kForce);
    qkv::add_prompt_options(app, opt.prompt, "text to score");
    app.add_option("--from", opt.from,
                   "Score the stream of an activation file after the last layer ('-': stdin)");
    app.add_option("--context", opt.context, "Window length in tokens (default n_ctx)")
        ->check(CLI::PositiveNumber);
    app.add_option("--stride", opt.stride,
                   "How far the window slides (default: the context; each token is scored once)")
        ->check(CLI::PositiveNumber);
    app.add_option("--save", opt.save, "Also write /score/entropy and/or /score/rank (with -o)")
        ->delimiter(',')
        ->allow_extra_args(false)
        ->check(CLI::IsMember({"entropy", "rank"}));
    app.add_option("--answer", opt.answer,
                   "Log-probability of this text after --position (all its tokens)");
    app.add_option("--foil", opt.foil, "With --answer: the logit difference answer - foil");
    app.add_option("--position", opt.position,
                   "The position the answer follows (default -1: the last; negative from the end)");
    app.add_flag("--value", opt.value,
                 "Print one number per sequence: the logit difference (--foil), the answer's "
                 "log-probability (--answer), the mean KL (--kl-base) or the mean nats/token");
    app.add_option("--kl-base", opt.kl_base,
                   "KL divergence from the distributions of a run that score -o wrote");
    app.add_flag("--json", opt.json, "One JSON object");
    return qkv::run_tool(app, argc, argv, opt.common, [&] { qkv::run_score(opt); });
}

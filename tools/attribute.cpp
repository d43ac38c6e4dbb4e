// attribute: direct logit attribution of an answer (against a foil) to every head, b_O, MLP and
// embedding.
#include "commands/attribute_tool.hpp"
#include "commands/cli.hpp"

int main(int argc, char** argv) {
    qkv::AttributeOptions opt;
    CLI::App app{"Direct logit attribution: each head's, MLP's and embedding's share of an "
                 "answer's logit (or of its difference from a foil's) at one position, the final "
                 "norm's scale frozen; or attribution patching (--method atp): the change of that "
                 "metric patching each site from another run, estimated from one backward "
                 "pass.\n\n"
                 "Examples:\n"
                 "  attribute -m tiny.h5 \"When Mary and John went to the store, John gave a drink "
                 "to\" --answer \" Mary\" --foil \" John\" --top 10\n"
                 "  attribute -m tiny.h5 -f prompt.txt --answer \" Mary\" -o dla.h5 && inspect "
                 "dla.h5:/attribution/heads --slice 0,:,: --png dla.png\n"
                 "  attribute -m tiny.h5 -f clean.txt --answer \" Mary\" --foil \" John\" "
                 "--method atp --patch-from corrupt-tokens.h5 --top 10",
                 "attribute"};
    qkv::add_common_options(app, opt.common, qkv::kCompute & ~qkv::kForce);
    qkv::add_prompt_options(app, opt.prompt, "prompt");
    app.add_option("--answer", opt.answer, "The token whose logit is attributed (its first token)")
        ->required();
    app.add_option("--foil", opt.foil, "Attribute logit(answer) - logit(foil)");
    app.add_option("--position", opt.position,
                   "The position whose prediction is attributed (default -1: the last)");
    app.add_option("--top", opt.top, "List the K largest parts by size (default: all, in order)");
    app.add_flag("--json", opt.json, "One JSON object");
    app.add_option("--method", opt.method,
                   "dla: direct logit attribution (the default); atp: attribution patching, the "
                   "change of the logit (difference) patching each head's z and each layer's "
                   "stream at each position from --patch-from, estimated from gradients")
        ->check(CLI::IsMember({"dla", "atp"}));
    app.add_option("--patch-from", opt.patch_from,
                   "With --method atp: a file of the run patched from (its /tokens: tokenize's, "
                   "embed's or any tool's output), as long as the prompt");
    return qkv::run_tool(app, argc, argv, opt.common, [&] { qkv::run_attribute(opt); });
}

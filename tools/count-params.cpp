// count-params: where a transformer's parameters live, head by head, and its FLOPs per token.
#include "commands/cli.hpp"
#include "commands/param_count.hpp"

#include <iostream>

int main(int argc, char** argv) {
    qkv::CountParamsOptions o;
    qkv::CommonOptions common;
    CLI::App app{"Parameters of a transformer, head by head, and forward FLOPs per token.\n\n"
                 "Examples:\n"
                 "  count-params --preset gpt3\n"
                 "  count-params --model tiny.h5 --json\n"
                 "  count-params --n-layers 12 --d-model 768 --n-heads 12 --context 2048",
                 "count-params"};
    qkv::add_common_options(app, common, 0); // --version
    app.add_option("-m,--model", o.model, "Count the datasets of this model file");
    app.add_option("-p,--preset", o.preset,
                   "tiny, gpt2, gpt2-medium, gpt2-large, gpt2-xl, llama-tiny, llama2-7b, "
                   "llama3-8b, mistral-7b, smollm2-135m, qwen2.5-0.5b, pythia-tiny, pythia-160m, "
                   "gpt3-small, gpt3-medium, "
                   "gpt3-large, gpt3-xl, gpt3-2.7b, gpt3-6.7b, gpt3-13b, gpt3");
    app.add_option("--n-layers", o.n_layers, "Layers")->check(CLI::PositiveNumber);
    app.add_option("--d-model", o.d_model, "Width of the residual stream")
        ->check(CLI::PositiveNumber);
    app.add_option("--n-heads", o.n_heads, "Heads per layer (default d_model / 64)")
        ->check(CLI::PositiveNumber);
    app.add_option("--d-head", o.d_head, "Width of a head (default d_model / n_heads)")
        ->check(CLI::PositiveNumber);
    app.add_option("--kv-heads", o.n_kv_heads,
                   "Key/value heads per layer (grouped-query attention; default n_heads)")
        ->check(CLI::PositiveNumber);
    app.add_option("--d-mlp", o.d_mlp, "MLP width (default 4 d_model)")->check(CLI::PositiveNumber);
    qkv::add_hidden_alias(app, "--vocab", o.vocab, "--vocab-size"); // the spelling of qkv 0.1
    app.add_option("--vocab-size", o.vocab, "Vocabulary size (default 50257)")
        ->check(CLI::PositiveNumber);
    app.add_option("--n-ctx", o.n_ctx, "Context length (default 1024)")->check(CLI::PositiveNumber);
    app.add_flag("--no-bias", o.no_bias, "No biases in attention and MLP");
    app.add_flag("--untied", o.untied, "An unembedding of its own, not tied to W_E");
    app.add_option("--context", o.context, "FLOPs per token at this context (default n_ctx)");
    app.add_flag("--json", o.json, "One JSON object");
    return qkv::run_tool(app, argc, argv, common, [&] { std::cout << qkv::run_count_params(o); });
}

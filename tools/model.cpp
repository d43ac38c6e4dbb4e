// model: make (init), import (Hugging Face checkpoints) and describe (info) model files.
#include "commands/cli.hpp"
#include "qkv/files/hf_import.hpp"
#include "qkv/files/model_file.hpp"

#include <iostream>

int main(int argc, char** argv) {
    qkv::CommonOptions common;
    CLI::App app{"Make, import and describe qkv model files.\n\n"
                 "Examples:\n"
                 "  model init --preset gpt2 --seed 1 -o gpt2.h5\n"
                 "  model import --from SmolLM2-135M -o smol.h5 && model info smol.h5",
                 "model"};
    qkv::add_common_options(app, common, 0); // --version
    app.require_subcommand(1);

    qkv::ModelInitOptions init;
    auto* c_init = app.add_subcommand("init", "A model with GPT-2's random initialisation");
    c_init->add_option("-a,--arch", init.arch,
                       "Family: gpt2, llama or gpt-neox (default: the preset's; their tiny "
                       "presets: tiny, llama-tiny, pythia-tiny)");
    c_init->add_option("-p,--preset", init.preset,
                       "tiny (default), gpt2, gpt2-medium, gpt2-large, gpt2-xl, llama-tiny, "
                       "llama2-7b, llama3-8b, mistral-7b, smollm2-135m, qwen2.5-0.5b, pythia-tiny, "
                       "pythia-160m");
    c_init->add_option("-s,--seed", init.seed, "Random seed")->capture_default_str();
    c_init->add_option("--vocab", init.vocab_dir,
                       "Tokenizer: a file from tokenize --train, or a folder with vocab.json and "
                       "merges.txt (default: GPT-2's, built in)");
    c_init->add_option("--n-layers", init.n_layers, "Number of layers (instead of the preset's)");
    c_init->add_option("--d-model", init.d_model, "Width of the residual stream");
    c_init->add_option("--n-heads", init.n_heads,
                       "Attention heads per layer (d_head = d_model / n_heads)");
    c_init->add_option("--kv-heads", init.n_kv_heads,
                       "Key/value heads per layer, llama (grouped-query attention; default: the "
                       "preset's)");
    c_init->add_option("--d-mlp", init.d_mlp,
                       "Hidden width of the MLP (default 4 d_model; gated: 8/3 d_model rounded "
                       "up to 16)");
    c_init->add_option("--n-ctx", init.n_ctx, "Context length (positions)");
    // the spellings of qkv 0.1, kept (count-params' names are the ones every tool uses)
    qkv::add_hidden_alias(*c_init, "--layers", init.n_layers, "--n-layers");
    qkv::add_hidden_alias(*c_init, "--heads", init.n_heads, "--n-heads");
    qkv::add_hidden_alias(*c_init, "--ctx", init.n_ctx, "--n-ctx");
    c_init->add_option("--name", init.name, "Name in the model_id (default: the preset's)");
    qkv::add_common_options(*c_init, common, qkv::kOutput | qkv::kQuiet);

    qkv::ModelImportOptions imp;
    auto* c_imp = app.add_subcommand(
        "import", "A Hugging Face checkpoint folder: GPT-2, Llama, Mistral, Qwen2, GPT-NeoX");
    c_imp
        ->add_option("-f,--from", imp.from_dir,
                     "Folder with config.json, model.safetensors (or its shards and "
                     "model.safetensors.index.json), tokenizer.json or vocab.json + merges.txt")
        ->required();
    c_imp->add_flag("--keep-dtype", imp.keep_dtype,
                    "Store the weights 16-bit as the checkpoint does (all F16 or all BF16); the "
                    "tools then keep them 16-bit in memory");
    qkv::add_common_options(*c_imp, common, qkv::kOutput | qkv::kQuiet);

    qkv::ModelExportOptions exp;
    auto* c_exp =
        app.add_subcommand("export", "A copy for sharing: 16-bit weights, no optimizer state");
    c_exp->add_option("file", exp.input, "Model file (from model init, import or train)")
        ->required();
    c_exp
        ->add_option(
            "--dtype", exp.dtype,
            "f16 or bf16 (half the size; the tools keep such weights 16-bit in memory) or f32")
        ->capture_default_str();
    qkv::add_common_options(*c_exp, common, qkv::kOutput | qkv::kQuiet);

    std::string info_path;
    bool info_json = false;
    auto* c_info = app.add_subcommand("info", "Config, tokenizer, model_id and tensors of a file");
    c_info->add_option("file", info_path, "Model file")->required();
    c_info->add_flag("--json", info_json, "One JSON object");

    return qkv::run_tool(app, argc, argv, common, [&] {
        const std::string history = qkv::history_line(common, "cpu");
        const auto progress = qkv::terminal_progress("model", common.quiet);
        std::string id;
        if (*c_init) {
            init.output = common.output;
            init.history_line = history;
            init.progress = progress;
            id = qkv::model_init(init);
        } else if (*c_exp) {
            exp.output = common.output;
            exp.history_line = history;
            exp.progress = progress;
            id = qkv::model_export(exp);
        } else if (*c_imp) {
            imp.output = common.output;
            imp.history_line = history;
            imp.progress = progress;
            id = qkv::model_import(imp);
        } else {
            std::cout << qkv::model_info(info_path, info_json);
            return;
        }
        if (!common.quiet) std::cerr << "model: wrote " << common.output << " (" << id << ")\n";
    });
}

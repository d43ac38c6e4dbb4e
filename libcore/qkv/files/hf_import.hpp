// hf_import: a Hugging Face checkpoint folder (config.json, safetensors weights, tokenizer) as a
// qkv model file. GPT-2 (model_type gpt2), the Llama family (llama, mistral, qwen2) and
// GPT-NeoX (gpt_neox: Pythia): each
// weight of the schema taken from the checkpoint's tensor, per head, under TransformerLens'
// names (man/qkv-files.5).
#pragma once
#include "qkv/files/model_file.hpp"
#include "qkv/tokenizer/tokenizer_data.hpp"

#include <string>

namespace qkv {

struct ModelImportOptions {
    std::string from_dir, output, history_line;
    // Weights stored as the checkpoint stores them when every tensor is F16 or BF16 (each value
    // kept exactly), float32 otherwise; the tools then keep them 16-bit in memory.
    bool keep_dtype = false;
    Progress progress; // may be empty
};
std::string model_import(const ModelImportOptions& opt); // returns the model_id

// The tokenizer of a checkpoint folder: tokenizer.json (with tokenizer_config.json's
// add_bos_token and eos_token), or vocab.json and merges.txt where there is no tokenizer.json
// or where they are preferred (GPT-2).
TokenizerData folder_tokenizer(const std::string& dir, bool prefer_json);

} // namespace qkv

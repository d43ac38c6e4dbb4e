// model: the model file (config, weights, tokenizer), read and written, and the model commands.
// Weights are stored per head as in TransformerLens, row-major; see man/qkv-files.5.
// Loading is apart from evaluation: a tool reads only the datasets it needs.
#pragma once
#include "qkv/files/h5file.hpp"
#include "qkv/model/config.hpp"
#include "qkv/model/weights.hpp"
#include "qkv/tensor/backend.hpp"
#include "qkv/tensor/tensor.hpp"
#include "qkv/tokenizer/tokenizer_data.hpp"

#include <functional>
#include <string>
#include <vector>

namespace qkv {

// A model file open for reading.
class ModelFile {
  public:
    static ModelFile open(const std::string& path);
    // The same for a file whose check has started (H5Input::start(path), path not empty).
    static ModelFile open(const std::string& path, H5Input started);
    const Config& config() const { return config_; }
    const std::string& model_id() const { return model_id_; }
    std::string name() const; // model_id without its weights hash: what a rewrite keeps
    const std::string& path() const { return path_; }
    const H5File& h5() const { return file_; }

    // The weight matrices (not norms, not biases) of a file that stores them F16 or BF16 are
    // loaded 16-bit and stay so in memory, and a W_U that is exactly W_E transposed is not
    // loaded: the unembedding uses W_E (UnembedWeights::tied). A tool that reads weights' values
    // itself rather than through the layers asks for plain weights: float32, W_U its own.
    void plain_weights() { plain_ = true; }

    EmbedWeights load_embed(Backend& be) const;
    LayerNormWeights load_ln(const std::string& group, Backend& be) const;
    AttentionWeights load_attention(int64_t layer, Backend& be) const;
    MlpWeights load_mlp(int64_t layer, Backend& be) const;
    BlockWeights load_block(int64_t layer, Backend& be) const;
    // With W_E (the embedding as loaded, on be), a tied unembedding shares it.
    UnembedWeights load_unembed(Backend& be, const Tensor* W_E = nullptr) const;
    ModelWeights load_all(Backend& be) const; // every layer's weights
    TokenizerData load_tokenizer() const;
    void check_layer(int64_t layer, const std::string& option) const;

  private:
    Tensor read(const std::string& name, const Shape& shape) const;        // float32
    Tensor read_matrix(const std::string& name, const Shape& shape) const; // 16-bit kept
    bool unembed_is_W_E_T(const Tensor& W_E) const;
    bool plain_ = false;
    std::string path_, model_id_;
    Config config_;
    H5File file_;
};

// Writes a model file one tensor at a time; model_id is derived from the weights' bytes.
// How far a long write has come: done of total weights (numbers) written so far.
using Progress = std::function<void(int64_t done, int64_t total)>;

class ModelWriter {
  public:
    ModelWriter(const std::string& path, const Config& cfg, const std::string& name,
                const std::string& history_line);
    // Weights stored 16-bit (F16 or BF16) from here on, rounded to nearest even first (unless
    // already of that type) and hashed as rounded.
    void store_half(DType half) { half_ = half; }
    // Told after each weight, of all the config's weights.
    void on_progress(Progress p) { progress_ = std::move(p); }
    void put(const std::string& name, const Tensor& t);
    void put_tokenizer(const TokenizerData& tok);
    H5File& file() { return out_.file(); } // for groups that are not weights (/train)
    std::string commit();                  // returns model_id

  private:
    H5Output out_;
    std::string name_;
    uint64_t hash_ = 0xcbf29ce484222325ULL;
    DType half_ = DType::F32;
    Progress progress_;
    int64_t done_ = 0, total_ = 0;
};

// The /tokenizer group (vocab, merges, kind; for byte-level-bpe also pattern, ignore_merges,
// bos, add_bos and the added token ids) of a model or tokenizer file.
void write_tokenizer_group(H5File& f, const TokenizerData& tok);
TokenizerData read_tokenizer_group(const H5File& f);

// Writes a tokenizer file (the /tokenizer group of a model file, alone).
void write_tokenizer_file(const std::string& path, const TokenizerData& tok,
                          const std::string& history_line);

// A tokenizer from a Hugging Face tokenizer.json (a file whose name ends in .json, or a folder
// holding one, with its tokenizer_config.json's BOS and EOS), a folder with vocab.json +
// merges.txt, or an HDF5 file with a /tokenizer group (a tokenizer file or a model file);
// "gpt2", where no such file is here, is GPT-2's built-in tokenizer.
TokenizerData load_tokenizer_data(const std::string& path);

// A file's bytes (IoError naming it when it cannot be read).
std::string read_whole_file(const std::string& path);

// GPT-2's tokenizer data, from the files built into libcore or from a directory holding
// vocab.json and merges.txt.
TokenizerData gpt2_tokenizer_data();
TokenizerData tokenizer_data_from_dir(const std::string& dir);
TokenizerData tokenizer_data_from_text(const std::string& vocab_json, const std::string& merges,
                                       const std::string& where);

struct ModelInitOptions {
    std::string arch;   // gpt2 or llama; empty: the preset's
    std::string preset; // empty: tiny, or the arch's tiny preset (llama-tiny)
    std::string vocab_dir, output;
    std::string name; // model_id prefix; default: the preset's name
    // Sizes that replace the preset's when > 0 (d_head defaults to d_model / n_heads and d_mlp
    // to 4 d_model, or about 8/3 d_model for a gated MLP, when d_model or n_heads is given).
    int64_t n_layers = 0, d_model = 0, n_heads = 0, n_kv_heads = 0, d_mlp = 0, n_ctx = 0;
    uint64_t seed = 0;
    std::string history_line;
    Progress progress; // may be empty
};
// GPT-2's initialisation (for every family): normal(0, 0.02); output projections (W_O, W_out)
// scaled by 1/sqrt(2 n_layers); norm weights 1, biases 0; unembedding tied to W_E.
std::string model_init(const ModelInitOptions& opt);

struct ModelExportOptions {
    std::string input, output, dtype = "f16", history_line;
    Progress progress; // may be empty
};
// A copy of a model for sharing: the weights (in half precision with dtype f16), the tokenizer,
// and the training log of /train without the optimizer's moments.
std::string model_export(const ModelExportOptions& opt);

// Text for `model info`.
std::string model_info(const std::string& path, bool json);

} // namespace qkv

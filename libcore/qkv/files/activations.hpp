// activations: the activation file that flows between tools (see man/qkv-files.5).
//   root attributes: format = "qkv-activations", version = 1, model_id, stage, layer, history
//   /tokens      int32   [batch, pos]
//   /token_text  strings [batch, pos]
//   /mask        int32   [batch, pos]  (a padded batch: 1 real token, 0 pad; attribute pad_id)
//   /resid       float32 [batch, pos, d_model]          (absent at stage "tokens")
//   optional:    /attn/..., /mlp/..., /embed/...        (names as in TransformerLens)
#pragma once
#include "qkv/files/h5file.hpp"
#include "qkv/model/padding.hpp"
#include "qkv/tensor/tensor.hpp"

#include <string>
#include <vector>

namespace qkv {

enum class Stage { Tokens, Embed, Attn, Mlp, Logits };
const char* stage_name(Stage s);
Stage parse_stage(const std::string& s, const std::string& where);

struct Activations {
    H5File file; // the input file, kept open so other datasets can be carried forward
    std::string model_id;
    Stage stage = Stage::Tokens;
    int64_t layer = -1; // block index of the last stage, -1 before any block
    std::string history;
    Tensor tokens;                       // int32 [batch, pos]
    std::vector<std::string> token_text; // [batch * pos], may be empty
    Tensor resid;                        // [batch, pos, d_model], empty at stage tokens
    Padding pad; // from /mask: which tokens are pads (a ragged batch); none when absent

    int64_t batch() const { return tokens.dim(0); }
    int64_t n_pos() const { return tokens.dim(1); }
};

// Reads and validates an activation file ("" or "-": stdin). When need_resid is set, /resid
// must be present, finite and of width d_model (d_model <= 0: any width).
Activations read_activations(const std::string& path, bool need_resid, int64_t d_model = -1);
Activations read_activations(H5File file, bool need_resid, int64_t d_model = -1);

// Refuses a file made with another model.
void check_model(const Activations& in, const std::string& model_id, const std::string& model_path);

// The stage a tool may run on: `next` at `layer` needs the stream exactly after the previous
// step (embed before layer 0 attention, attention of L before mlp of L, mlp of L-1 before
// attention of L). force skips only this check.
void check_order(const Activations& in, Stage next, int64_t layer, bool force);

// Writes an output activation file: the input's other datasets carried forward, then the
// new stage, layer, resid and history line.
class ActivationWriter {
  public:
    ActivationWriter(const std::string& path, const Activations& in);
    H5File& file() { return out_.file(); }
    // Writes /resid and the root attributes, appends history_line.
    void finish(Stage stage, int64_t layer, const Tensor* resid, const std::string& history_line);
    void commit() { out_.commit(); }

  private:
    H5Output out_;
    const Activations& in_;
};

// The root attributes of an activation file (format, version, model_id, stage, layer,
// history), written in this one place.
void set_activation_attrs(H5File& f, const std::string& model_id, Stage stage, int64_t layer,
                          const std::string& history);

// The tokens stage into f: root attributes, /tokens [batch, pos] and /token_text, and for a
// padded batch /mask [batch, pos] with the pad id as its attribute pad_id.
void write_tokens(H5File& f, const std::string& model_id, const Tensor& tokens,
                  const std::vector<std::string>& token_text, const std::string& history_line,
                  const Padding& pad = {});
// A fresh tokens-stage file (for tokenize and tests).
void write_tokens_file(const std::string& path, const std::string& model_id, const Tensor& tokens,
                       const std::vector<std::string>& token_text, const std::string& history_line,
                       const Padding& pad = {});

} // namespace qkv

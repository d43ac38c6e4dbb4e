// checkpoint: a model file with the training state beside the weights (/train: the step, the
// settings, AdamW's moments, the loss log), written atomically, and read back so that
// `train --resume` continues exactly. See qkv-files(5).
#pragma once
#include "qkv/base/fields.hpp"
#include "qkv/files/model_file.hpp"
#include "qkv/train/train_model.hpp"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace qkv {

struct TrainSettings { // what a checkpoint records, so that --resume continues exactly
    int64_t steps, batch, context, warmup, eval_every, eval_iters, save_every;
    double lr, min_lr, weight_decay, beta1, beta2, grad_clip, val_fraction;
    uint64_t seed;
};

// The settings by attribute name, written and read from this one table (the seed apart: a hex
// string).
const std::vector<Field<TrainSettings>>& train_setting_fields();

struct LossLog { // one entry per step
    std::vector<int32_t> step;
    std::vector<float> lr, train_loss, val_loss; // val_loss NaN where no evaluation ran
};

struct TrainState {
    TrainSettings s;
    int64_t step = 0;        // updates done
    std::vector<float> m, v; // AdamW's moments, in the flat layout
    LossLog log;
    double seconds = 0; // training time of the runs before this one
};

struct CorpusInfo {
    uint64_t hash = 0; // FNV-1a of the text's bytes
    int64_t bytes = 0, train_tokens = 0, val_tokens = 0;
};

// Writes the model (weights from gpt, config and name from src) and /train to path; seconds is
// the training time so far, earlier runs included.
void write_checkpoint(const std::string& path, const ModelFile& src, const TokenizerData& tok,
                      Gpt& gpt, const TrainState& st, double seconds, const CorpusInfo& corpus,
                      const std::string& history,
                      const std::vector<std::pair<std::string, double>>& final_stats);
TrainState read_checkpoint(const ModelFile& m, const Layout& lay);

// Reads a model's trained weights into the flat buffer of lay, and b_U (not trained) apart. The
// unembedding must be tied (W_U = W_E^T), as model init and GPT-2 make it.
void read_params(const ModelFile& m, const Layout& lay, float* flat, std::vector<float>& b_U);

// /train/log of a model file (inspect --loss reads it too); its four datasets must agree.
LossLog read_loss_log(const H5File& f);

std::string hex64(uint64_t v); // 16 hex digits

} // namespace qkv

// trainer: the `train` command. Trains a model file on a text corpus: forward and backward
// passes of every layer (backprop), AdamW with warm-up and cosine decay (adamw), random
// batches of context windows drawn from a seed, a held-out split for validation, checkpoints
// (model files with the optimizer state in /train) that resume exactly, and a clean stop on
// SIGINT or SIGTERM after writing a checkpoint.
#pragma once
#include "commands/cli.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace qkv {

struct TrainOptions {
    CommonOptions common; // --model, --threads, --quiet; output: see below
    std::string output;   // -o: default the model file itself (or the checkpoint resumed)
    std::string corpus;   // -f: UTF-8 text ('-' stdin)
    std::string resume;   // --resume CHECKPOINT: every setting comes from the checkpoint
    int64_t steps = 2000, batch = 16, context = 0 /* 0: the model's n_ctx */, warmup = 100;
    double lr = 1e-3, min_lr = -1 /* < 0: lr / 10 */, weight_decay = 0.1, beta1 = 0.9, beta2 = 0.95,
           grad_clip = 1.0, val_fraction = 0.1;
    int64_t eval_every = 100, eval_iters = 10, save_every = 0;
    uint64_t seed = 1337;
    std::string dump_grads; // --dump-grads FILE: one batch's loss and gradients, no training
    bool eval_only = false; // --eval-only: the validation loss of the model, no training
    std::vector<std::string> settings_given; // options the user set (refused with --resume)
};

void run_train(const TrainOptions& opt);

} // namespace qkv

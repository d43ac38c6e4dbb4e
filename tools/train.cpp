// train: trains a model file on a text corpus (backprop, AdamW, checkpoints that resume).
#include "commands/trainer.hpp"

int main(int argc, char** argv) {
    qkv::TrainOptions o;
    CLI::App app{
        "Train a model on a text corpus; checkpoints resume exactly.\n\n"
        "Examples:\n"
        "  tokenize --train 2048 -f corpus.txt -o tok.h5\n"
        "  model init --vocab tok.h5 --layers 4 --d-model 128 --heads 4 --ctx 128 -o m.h5\n"
        "  train --model m.h5 -f corpus.txt --steps 2000 -o trained.h5\n"
        "  train --resume trained.h5 -f corpus.txt      # after Ctrl-C\n"
        "  inspect trained.h5 --loss --png loss.png",
        "train"};
    qkv::add_common_options(app, o.common, qkv::kThreads | qkv::kQuiet);
    app.add_option("-m,--model", o.common.model, "Model file to train (from model init)");
    app.add_option("-o,--output", o.output,
                   "Trained model and checkpoints (default: the model file)");
    app.add_option("-f,--file", o.corpus, "Training text, UTF-8 ('-': stdin)");
    app.add_option("--resume", o.resume, "Continue a checkpoint (its settings are kept)");
    std::vector<CLI::Option*> settings = {
        app.add_option("--steps", o.steps, "Optimizer steps in all")->capture_default_str(),
        app.add_option("--batch", o.batch, "Windows per step")->capture_default_str(),
        app.add_option("--context", o.context, "Tokens per window (default: the model's n_ctx)"),
        app.add_option("--lr", o.lr, "Peak learning rate")->capture_default_str(),
        app.add_option("--min-lr", o.min_lr,
                       "Learning rate at the end of the cosine (default lr/10)"),
        app.add_option("--warmup", o.warmup, "Steps of linear warm-up")->capture_default_str(),
        app.add_option("--weight-decay", o.weight_decay,
                       "AdamW weight decay (matrices, embeddings)")
            ->capture_default_str(),
        app.add_option("--beta1", o.beta1, "AdamW beta1")->capture_default_str(),
        app.add_option("--beta2", o.beta2, "AdamW beta2")->capture_default_str(),
        app.add_option("--grad-clip", o.grad_clip, "Clip the gradients' global norm (0: off)")
            ->capture_default_str(),
        app.add_option("--val-fraction", o.val_fraction, "Held-out share at the end of the text")
            ->capture_default_str(),
        app.add_option("--eval-every", o.eval_every,
                       "Validation loss every N steps (0: only at the end)")
            ->capture_default_str(),
        app.add_option("--eval-iters", o.eval_iters, "Batches of held-out windows per validation")
            ->capture_default_str(),
        app.add_option("--save-every", o.save_every, "Checkpoint every N steps (0: at the end)")
            ->capture_default_str(),
        app.add_option("--seed", o.seed, "Seed of the batches")->capture_default_str(),
    };
    app.add_option("--dump-grads", o.dump_grads,
                   "Write one batch's loss and gradients to FILE, no training");
    app.add_flag("--eval-only", o.eval_only,
                 "Print the held-out loss (nats per token and per character)");
    return qkv::run_tool(app, argc, argv, o.common, [&] {
        for (auto* opt : settings)
            if (opt->count() > 0) o.settings_given.push_back(opt->get_name());
        qkv::run_train(o);
    });
}

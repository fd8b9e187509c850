// train.h — the training loop behind ufo-train: one task (a dense ViT) or several at once
// (a Task-MoE supernet with Gumbel-softmax routing, see router.h).
#pragma once
#include "train/augment.h"
#include "nn/model.h"
#include "nn/router.h"

#include <cstdint>
#include <string>
#include <vector>

namespace ufo {

// One task of a multi-task run (--task NAME=TRAIN.h5[,VAL.h5]).
struct TaskSpec {
    std::string name, train_path, val_path;
    int batch = 0;            // 0: TrainOptions::batch
    float weight = 1.0f;      // loss weight
    float lr_mult = 1.0f;     // learning-rate multiplier of the task's own FFNs and head
};

struct TrainOptions {
    std::string train_path, val_path;
    std::string out_path;             // final model (and periodic checkpoints unless ckpt_path)
    std::string ckpt_path;            // periodic / on-signal checkpoints (default: out_path)
    std::string resume_path;
    int epochs = 0;                   // epochs or steps (steps wins when both are given)
    int64_t steps = 0;
    int batch = 128;
    int eval_batch = 256;
    float lr = 1e-3f, min_lr = 1e-5f;
    int64_t warmup = -1;              // steps; -1 = 5% of the run
    float weight_decay = 0.05f, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
    float clip = 1.0f;
    float label_smoothing = 0.1f;
    AugmentConfig augment;
    uint64_t seed = 0;
    int threads = 0;
    int64_t log_every = 0;            // steps; 0 = once per epoch
    int64_t ckpt_every = 0;           // steps; 0 = only at the end (and on a signal)
    int64_t stop_after = 0;           // stop (with a checkpoint) after this many steps of this run
    bool json = false;
    int zstd = 0;
    std::string task_name = "main";
    // Two or more tasks train a Task-MoE supernet; empty means the one task above.
    std::vector<TaskSpec> tasks;
    RouterConfig router;
    float router_lr = -1.0f;          // router logits' peak rate (<0: lr); follows the schedule
    // From this step (or the first step of this epoch) routes are the argmax of the router and
    // fixed; only the chosen FFNs are computed. -1: never.
    int64_t route_freeze_step = -1;
    int route_freeze_epoch = -1;
    std::string command;              // provenance
};

// Runs training; returns the process exit code (0, or 130/143 after SIGINT/SIGTERM).
// `arch` is used for a fresh run; with `arch_given` false a resumed run takes the checkpoint's.
int train(const TrainOptions& opt, ViTConfig arch, bool arch_given);

// SIGINT/SIGTERM set a flag the loop polls between steps.
void install_stop_signals();
int stop_signal();   // 0, SIGINT or SIGTERM

}  // namespace ufo

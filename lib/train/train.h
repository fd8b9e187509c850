// train.h — ufo-train's library side: one short loop (train.cpp) over a step policy
// (policy.h), with data order and augmentation (task_data.h), checkpoints and signals
// (run_state.h) beside it. The library prints nothing to stdout: log rows go to a callback.
#pragma once
#include "nn/network.h"
#include "nn/router.h"
#include "train/augment.h"
#include "train/teacher.h"

#include <cstdint>
#include <functional>
#include <memory>
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

// One-for-All elastic training (--elastic): the search space (flag text; empty = default),
// the sandwich rule and in-place distillation.
struct ElasticOptions {
    bool on = false;
    std::string depth, heads, mlp_ratio;   // comma lists (nn/elastic.h make_space)
    int sandwich_random = 2;               // random sub-networks per step besides largest and smallest
    float kd_weight = 1.0f;                // weight of the largest's soft predictions (1 - it: labels)
    float kd_temperature = 1.0f;
    bool sort_importance = true;           // reorder heads and hidden units before a fresh run
};

// Distillation (ufo-distill): every step the teacher runs forward on the student's batch and
// the student learns alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * CE(labels).
struct DistillOptions {
    TeacherOptions teacher;
    float alpha = 0.5f;
    float temperature = 4.0f;
    bool on() const { return teacher.on(); }
};

struct TrainOptions {
    std::string train_path, val_path;
    std::string out_path;             // final model (and periodic checkpoints unless ckpt_path)
    std::string ckpt_path;            // periodic / on-signal checkpoints (default: out_path)
    std::string resume_path;
    // Fine-tuning: start from the weights of this checkpoint (a dense model, a task subnet, a
    // shared branch or a CNN), with a fresh head when the class count differs or new_head.
    std::string init_path;
    bool new_head = false;
    std::vector<Part> freeze;         // parts kept fixed
    int classes = 0;                  // --classes (0: from the data)
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
    ElasticOptions elastic;
    DistillOptions distill;
    std::string command;              // provenance
    std::string tool = "ufo-train";   // names the program in messages and provenance
};

// One log line of one task.
struct LogRow {
    int64_t step = 0;
    double epoch = 0, lr = 0, loss = 0, acc = 0, val_loss = 0, val_acc = 0, img_s = 0, elapsed = 0;
    bool has_val = false;
    double teacher_val_acc = -1;      // distillation with a validation split: the teacher's accuracy
    std::string task;                 // multi-task runs only ("" otherwise)
    std::vector<std::string> route;   // Task-MoE: per block "shared" / "own"
    std::vector<float> p_own;         // Task-MoE: per block p(own) of the router
};

struct TrainHooks {
    std::function<void(const LogRow&)> log;   // one call per task and log interval (rank 0 alone under MPI)
};

// Builds the fresh network of a new run from the data: `spec` holds the tasks (names, class
// counts), the image shape and the input normalisation measured on the training data; errors
// name `where` (the first training file).
using NetFactory = std::function<std::unique_ptr<Network>(const NetSpec& spec, const std::string& where)>;

// Runs training; returns the process exit code (0, or 130/143 after SIGINT/SIGTERM).
// `make` is used for a fresh run; with `arch_given` a resumed run checks that the checkpoint
// has the architecture `make` describes.
int train(const TrainOptions& opt, const NetFactory& make, bool arch_given, const TrainHooks& hooks);

}  // namespace ufo

// train_options.cpp — the shared options of ufo-train and ufo-distill.
#include "tool/train_options.h"

#include "base/common.h"
#include "tool/arch_options.h"
#include "tool/cli.h"
#include "train/fine_tune.h"

#include <cmath>

namespace ufo {

namespace po = boost::program_options;

void add_train_options(po::options_description& opts, TrainOptions& o, TrainCliText& t) {
    opts.add_options()
        ("help,h", "show this help")
        ("train", po::value(&o.train_path), "training dataset (HDF5, ufo-data format)")
        ("val", po::value(&o.val_path), "validation dataset, evaluated at every log line")
        ("output,o", po::value(&o.out_path)->default_value("model.h5"), "final model checkpoint")
        ("checkpoint", po::value(&o.ckpt_path), "periodic/signal checkpoint (default: OUT.ckpt.h5)")
        ("resume", po::value(&o.resume_path), "continue exactly from a checkpoint written by this tool")
        ("epochs", po::value(&o.epochs)->default_value(10), "epochs (ignored when --steps is given)")
        ("steps", po::value(&o.steps)->default_value(0), "total optimisation steps")
        ("batch,b", po::value(&o.batch)->default_value(128), "batch size")
        ("lr", po::value(&o.lr)->default_value(1e-3f, "0.001"), "peak learning rate")
        ("min-lr", po::value(&o.min_lr)->default_value(1e-5f, "1e-05"), "learning rate at the end of the cosine")
        ("warmup", po::value(&o.warmup)->default_value(-1), "linear warm-up steps (-1: 5% of the run)")
        ("weight-decay", po::value(&o.weight_decay)->default_value(0.05f, "0.05"), "AdamW decoupled weight decay")
        ("beta1", po::value(&o.beta1)->default_value(0.9f, "0.9"), "AdamW beta1")
        ("beta2", po::value(&o.beta2)->default_value(0.999f, "0.999"), "AdamW beta2")
        ("clip", po::value(&o.clip)->default_value(1.0f, "1"), "global gradient-norm clip (0: off)")
        ("label-smoothing", po::value(&o.label_smoothing)->default_value(0.1f, "0.1"), "label smoothing")
        ("crop-pad", po::value(&o.augment.crop_pad)->default_value(0), "random crop with this zero padding")
        ("hflip", po::bool_switch(&o.augment.hflip), "random horizontal flips")
        ("erase", po::value(&o.augment.erase_prob)->default_value(0.0f, "0"), "random erasing probability")
        ("seed", po::value(&t.seed)->default_value("0"), "random seed (init, data order, augmentation)")
        ("threads,t", po::value(&o.threads)->default_value(0), "threads (0: OMP_NUM_THREADS or all cores)")
        ("log-every", po::value(&o.log_every)->default_value(0), "log every N steps (0: every epoch)")
        ("ckpt-every", po::value(&o.ckpt_every)->default_value(0), "checkpoint every N steps (0: never)")
        ("stop-after", po::value(&o.stop_after)->default_value(0), "stop with a checkpoint after N steps of this run")
        ("task-name", po::value(&o.task_name)->default_value("main"), "name of the task in the checkpoint")
        ("zstd", po::value(&o.zstd)->default_value(0), "zstd level for checkpoint tensors (0: none)")
        ("json", po::bool_switch(&t.json), "JSON Lines instead of TSV on stdout");
}

void add_init_options(po::options_description& opts, TrainOptions& o, TrainCliText& t) {
    po::options_description fine("Fine-tuning and new tasks");
    fine.add_options()
        ("init", po::value(&o.init_path), "start from this checkpoint's weights (dense, subnet, shared branch, CNN)")
        ("new-head", po::bool_switch(&o.new_head), "with --init: a fresh head even when the class count matches")
        ("freeze", po::value(&t.freeze), "PART[,PART]: keep these fixed (embed, attn, ffn, norm, head, router, conv)");
    opts.add(fine);
}

void check_train_options(const po::variables_map& vm, TrainOptions& o, const TrainCliText& t) {
    o.seed = cli::seed(t.seed);
    // Values that cannot mean anything are usage errors, not silently replaced or clamped.
    auto need = [](bool ok, const std::string& what) { if (!ok) throw po::error(what); };
    auto finite = [](float v) { return std::isfinite(v); };
    need(o.epochs >= 1, "--epochs must be at least 1");
    need(o.steps >= 0, "--steps must be >= 0 (0: use --epochs)");
    need(o.threads >= 0, "--threads must be >= 0 (0: OMP_NUM_THREADS or all cores)");
    need(finite(o.lr) && o.lr >= 0, "--lr must be a finite number >= 0");
    need(finite(o.min_lr) && o.min_lr >= 0, "--min-lr must be a finite number >= 0");
    need(o.warmup >= -1, "--warmup must be >= 0 (or -1: 5% of the run)");
    need(finite(o.weight_decay) && o.weight_decay >= 0, "--weight-decay must be a finite number >= 0");
    need(o.beta1 >= 0 && o.beta1 < 1, "--beta1 must be in [0,1)");
    need(o.beta2 >= 0 && o.beta2 < 1, "--beta2 must be in [0,1)");
    need(finite(o.clip) && o.clip >= 0, "--clip must be a finite number >= 0 (0: off)");
    need(o.label_smoothing >= 0 && o.label_smoothing <= 1, "--label-smoothing must be in [0,1]");
    need(o.augment.crop_pad >= 0 && o.augment.crop_pad <= 1024, "--crop-pad must be in 0..1024");
    need(o.augment.erase_prob >= 0 && o.augment.erase_prob <= 1, "--erase must be a probability in [0,1]");
    need(o.log_every >= 0, "--log-every must be >= 0 (0: every epoch)");
    need(o.ckpt_every >= 0, "--ckpt-every must be >= 0 (0: never)");
    need(o.stop_after >= 0, "--stop-after must be >= 0 (0: never)");
    if (o.batch < 1) throw po::error("option --batch must be positive");
    if (o.zstd < 0 || o.zstd > 22) throw po::error("--zstd takes a level in 0..22, not " + std::to_string(o.zstd));
    if (!t.freeze.empty()) o.freeze = parse_parts(t.freeze, "--freeze");
    if (o.new_head && o.init_path.empty()) throw po::error("--new-head needs --init");
    if (!o.init_path.empty() && !o.resume_path.empty()) throw po::error("give --init or --resume, not both");
    if (!o.init_path.empty() && arch_flags_given(vm))
        throw po::error("architecture options cannot be combined with --init (the checkpoint sets them)");
    if (vm.count("classes")) o.classes = vm["classes"].as<int>();
}

}  // namespace ufo

// ufo-train — train a ViT on an HDF5 dataset (see man/ufo-train.1).
#include "arch_options.h"
#include "cli.h"
#include "common.h"
#include "train.h"

#include <cstdio>

namespace po = boost::program_options;
using namespace ufo;

int main(int argc, char** argv) {
    return cli::run("ufo-train", [&]() -> int {
        TrainOptions o;
        po::options_description opts("Options");
        opts.add_options()
            ("help,h", "show this help")
            ("train", po::value(&o.train_path), "training dataset (HDF5, ufo-data format)")
            ("val", po::value(&o.val_path), "validation dataset, evaluated at every log line")
            ("output,o", po::value(&o.out_path)->default_value("model.h5"), "final model checkpoint")
            ("checkpoint", po::value(&o.ckpt_path), "periodic/signal checkpoint (default: OUT.ckpt.h5)")
            ("resume", po::value(&o.resume_path), "continue exactly from a checkpoint written by ufo-train")
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
            ("seed", po::value(&o.seed)->default_value(0), "random seed (init, data order, augmentation)")
            ("threads,t", po::value(&o.threads)->default_value(0), "threads (0: OMP_NUM_THREADS or all cores)")
            ("log-every", po::value(&o.log_every)->default_value(0), "log every N steps (0: every epoch)")
            ("ckpt-every", po::value(&o.ckpt_every)->default_value(0), "checkpoint every N steps (0: never)")
            ("stop-after", po::value(&o.stop_after)->default_value(0), "stop with a checkpoint after N steps of this run")
            ("task-name", po::value(&o.task_name)->default_value("main"), "name of the task in the checkpoint")
            ("zstd", po::value(&o.zstd)->default_value(0), "zstd level for checkpoint tensors (0: none)")
            ("json", po::bool_switch(&o.json), "JSON Lines instead of TSV on stdout");
        add_arch_options(opts);
        po::positional_options_description pos;
        pos.add("train", 1);
        po::variables_map vm;
        if (!cli::parse(argc, argv, opts, pos, vm,
                        "Usage: ufo-train [options] TRAIN.h5 [--val VAL.h5] -o MODEL.h5\n"
                        "Trains a ViT; per-epoch metrics as TSV (or --json) on stdout."))
            return 0;
        if (o.train_path.empty()) throw po::error("a training dataset is required");
        o.command = cli::command_line(argc, argv);
        ViTConfig arch = arch_from_options(vm);
        if (!vm.count("img")) arch.img_h = arch.img_w = arch.img_c = 0;   // taken from the data
        if (!vm.count("classes")) arch.tasks[0].num_classes = 0;
        install_stop_signals();
        return train_single_task(o, arch, arch_flags_given(vm));
    });
}

// ufo-train — train a network on HDF5 datasets (see man/ufo-train.1).
#include "tool/arch_options.h"
#include "tool/cli.h"
#include "base/common.h"
#include "tool/train_log.h"
#include "train/run_state.h"
#include "train/train.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

namespace po = boost::program_options;
using namespace ufo;

int main(int argc, char** argv) {
    return cli::run("ufo-train", [&]() -> int {
        TrainOptions o;
        bool json = false;
        std::string seed_arg, freeze;
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
            ("seed", po::value(&seed_arg)->default_value("0"), "random seed (init, data order, augmentation)")
            ("threads,t", po::value(&o.threads)->default_value(0), "threads (0: OMP_NUM_THREADS or all cores)")
            ("log-every", po::value(&o.log_every)->default_value(0), "log every N steps (0: every epoch)")
            ("ckpt-every", po::value(&o.ckpt_every)->default_value(0), "checkpoint every N steps (0: never)")
            ("stop-after", po::value(&o.stop_after)->default_value(0), "stop with a checkpoint after N steps of this run")
            ("task-name", po::value(&o.task_name)->default_value("main"), "name of the task in the checkpoint")
            ("zstd", po::value(&o.zstd)->default_value(0), "zstd level for checkpoint tensors (0: none)")
            ("json", po::bool_switch(&json), "JSON Lines instead of TSV on stdout");
        po::options_description fine("Fine-tuning and new tasks");
        fine.add_options()
            ("init", po::value(&o.init_path), "start from this checkpoint's weights (dense, subnet, shared branch, CNN)")
            ("new-head", po::bool_switch(&o.new_head), "with --init: a fresh head even when the class count matches")
            ("freeze", po::value(&freeze), "PART[,PART]: keep these fixed (embed, attn, ffn, norm, head, router, conv)");
        opts.add(fine);
        bool no_sort = false;
        po::options_description el("One-for-All elastic training (--elastic)");
        el.add_options()
            ("elastic", po::bool_switch(&o.elastic.on),
             "train an elastic model (usually with --init TASK.h5): every step the largest, the smallest and random "
             "sub-networks")
            ("elastic-depth", po::value(&o.elastic.depth), "depths to sample, e.g. 4,5,6 (default: depth-2..depth)")
            ("elastic-heads", po::value(&o.elastic.heads), "heads per block, e.g. 1,2,3 (default: 1..heads)")
            ("elastic-mlp-ratio", po::value(&o.elastic.mlp_ratio),
             "FFN widths per block as multiples of dim, e.g. 1,1.5,2 (default: 1/2, 3/4 and all of the model's)")
            ("sandwich-random", po::value(&o.elastic.sandwich_random)->default_value(2),
             "random sub-networks per step besides the largest and the smallest")
            ("kd-weight", po::value(&o.elastic.kd_weight)->default_value(1.0f, "1"),
             "weight of the largest's soft predictions in the smaller ones' loss (the rest: labels)")
            ("kd-temperature", po::value(&o.elastic.kd_temperature)->default_value(1.0f, "1"),
             "temperature of in-place distillation")
            ("sort-importance", po::bool_switch(), "reorder heads and hidden units by importance first (default)")
            ("no-sort-importance", po::bool_switch(&no_sort), "keep the order of heads and hidden units");
        opts.add(el);
        std::vector<std::string> task_args, task_batch, task_weight, task_lr;
        std::string freeze_at, noise = "sample";
        float tau = -1;
        po::options_description multi("Multi-task supernet (two or more --task)");
        multi.add_options()
            ("task", po::value(&task_args)->composing(), "NAME=TRAIN.h5[,VAL.h5]; repeat for each task")
            ("task-batch", po::value(&task_batch)->composing(), "NAME=B[,NAME=B...]: per-task batch size")
            ("task-weight", po::value(&task_weight)->composing(), "NAME=W[,...]: per-task loss weight (default 1)")
            ("task-lr-mult", po::value(&task_lr)->composing(),
             "NAME=M[,...]: learning-rate multiplier of the task's own FFNs and head")
            ("tau", po::value(&tau), "fixed Gumbel-softmax temperature (default 5)")
            ("tau-start", po::value(&o.router.tau_start)->default_value(5.0f, "5"), "temperature at step 0")
            ("tau-end", po::value(&o.router.tau_end)->default_value(5.0f, "5"), "temperature after the anneal")
            ("tau-anneal-steps", po::value(&o.router.tau_anneal_steps)->default_value(0),
             "linear anneal length in steps (0: fixed --tau-start)")
            ("gumbel-noise", po::value(&noise)->default_value("sample"), "sample|batch: one Gumbel draw per sample or per batch")
            ("router-lr", po::value(&o.router_lr)->default_value(-1.0f, "lr"), "router logits' peak learning rate")
            ("router-init", po::value(&o.router.init)->default_value(0.0f, "0"), "initial logit of the own FFN (shared: 0)")
            ("route-freeze-at", po::value(&freeze_at),
             "STEP or Nep: from then on routes are the argmax and only the chosen FFNs run");
        opts.add(multi);
        add_arch_options(opts);
        po::positional_options_description pos;
        pos.add("train", 1);
        po::variables_map vm;
        if (!cli::parse(argc, argv, opts, pos, vm,
                        "Usage: ufo-train [options] TRAIN.h5 [--val VAL.h5] -o MODEL.h5\n"
                        "       ufo-train [options] --task A=TRAIN.h5[,VAL.h5] --task B=... -o SUPERNET.h5\n"
                        "Trains a ViT or a CNN (one task) or a Task-MoE supernet (several); metrics as TSV\n"
                        "(or --json) on stdout."))
            return 0;
        for (const auto& a : task_args) {
            const auto eq = a.find('=');
            if (eq == std::string::npos || eq == 0 || eq + 1 == a.size())
                throw po::error("--task takes NAME=TRAIN.h5[,VAL.h5], not '" + a + "'");
            const auto files = cli::split(a.substr(eq + 1), ',');
            if (files.size() > 2) throw po::error("--task takes NAME=TRAIN.h5[,VAL.h5], not '" + a + "'");
            for (const auto& t : o.tasks) if (t.name == a.substr(0, eq)) throw po::error("task '" + t.name + "' appears twice");
            if (a.substr(0, eq) == "shared") throw po::error("task name 'shared' is reserved for FFN weight sets");
            o.tasks.push_back(TaskSpec{a.substr(0, eq), files[0], files.size() > 1 ? files[1] : "", 0, 1.0f, 1.0f});
        }
        if (!o.tasks.empty() && !o.train_path.empty())
            throw po::error("give either a training dataset or --task NAME=FILE, not both");
        if (!o.tasks.empty() && (vm.count("val") || !vm["task-name"].defaulted()))
            throw po::error("--val and --task-name apply to one dataset; with --task give NAME=TRAIN.h5,VAL.h5");
        if (o.tasks.empty() && o.train_path.empty()) throw po::error("a training dataset (or --task) is required");
        auto per_task = [&](const std::vector<std::string>& args, const char* opt, auto&& set) {
            for (const auto& arg : args)
                for (const auto& kv : cli::split(arg, ',')) {
                    const auto eq = kv.find('=');
                    if (eq == std::string::npos) throw po::error(std::string("--") + opt + " takes NAME=VALUE, not '" + kv + "'");
                    const std::string name = kv.substr(0, eq);
                    auto it = std::find_if(o.tasks.begin(), o.tasks.end(), [&](const TaskSpec& t) { return t.name == name; });
                    if (it == o.tasks.end()) throw po::error(std::string("--") + opt + ": no --task named '" + name + "'");
                    try {
                        set(*it, kv.substr(eq + 1));
                    } catch (const std::logic_error&) {
                        throw po::error(std::string("--") + opt + ": '" + kv.substr(eq + 1) + "' is not a number");
                    }
                }
        };
        per_task(task_batch, "task-batch", [](TaskSpec& t, const std::string& v) {
            t.batch = std::stoi(v);
            if (t.batch < 1) throw po::error("--task-batch: " + t.name + "=" + v + " is not a positive batch size");
        });
        per_task(task_weight, "task-weight", [](TaskSpec& t, const std::string& v) {
            t.weight = std::stof(v);
            if (!(t.weight >= 0) || !std::isfinite(t.weight)) throw po::error("--task-weight: " + t.name + "=" + v + " is not a weight >= 0");
        });
        per_task(task_lr, "task-lr-mult", [](TaskSpec& t, const std::string& v) {
            t.lr_mult = std::stof(v);
            if (!(t.lr_mult >= 0) || !std::isfinite(t.lr_mult)) throw po::error("--task-lr-mult: " + t.name + "=" + v + " is not a multiplier >= 0");
        });
        o.seed = cli::seed(seed_arg);
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
        need(o.router.tau_anneal_steps >= 0, "--tau-anneal-steps must be >= 0");
        need(finite(o.router.init), "--router-init must be a finite number");
        need(vm["router-lr"].defaulted() || (finite(o.router_lr) && o.router_lr >= 0), "--router-lr must be a finite number >= 0");
        // The router's rate is a multiple of --lr's schedule, which a zero --lr cannot carry.
        need(vm["router-lr"].defaulted() || o.lr > 0 || o.router_lr == 0, "--router-lr needs --lr > 0");
        if (tau > 0) o.router.tau_start = o.router.tau_end = tau;
        else if (vm.count("tau")) throw po::error("--tau must be positive");
        if (noise != "sample" && noise != "batch") throw po::error("--gumbel-noise is sample or batch, not '" + noise + "'");
        o.router.noise_per_sample = noise == "sample";
        if (!freeze_at.empty()) {
            std::string num = freeze_at;
            bool epochs = false;
            for (const char* suf : {"epoch", "ep"})
                if (num.size() > std::strlen(suf) && num.compare(num.size() - std::strlen(suf), std::string::npos, suf) == 0) {
                    num.resize(num.size() - std::strlen(suf));
                    epochs = true;
                    break;
                }
            if (num.empty() || num.find_first_not_of("0123456789") != std::string::npos)
                throw po::error("--route-freeze-at takes a step or Nep (an epoch), not '" + freeze_at + "'");
            if (epochs) o.route_freeze_epoch = std::stoi(num);
            else o.route_freeze_step = std::stoll(num);
        }
        if (o.tasks.size() > 1 && vm.count("classes")) throw po::error("--classes applies to one task; a multi-task run takes each task's");
        if (o.batch < 1) throw po::error("option --batch must be positive");
        if (o.router.tau_start <= 0 || o.router.tau_end <= 0) throw po::error("the router temperature must be positive");
        if (o.zstd < 0 || o.zstd > 22) throw po::error("--zstd takes a level in 0..22, not " + std::to_string(o.zstd));
        if (!freeze.empty()) o.freeze = parse_parts(freeze, "--freeze");
        if (o.new_head && o.init_path.empty()) throw po::error("--new-head needs --init");
        if (!o.init_path.empty() && !o.resume_path.empty()) throw po::error("give --init or --resume, not both");
        if (!o.init_path.empty() && arch_flags_given(vm))
            throw po::error("architecture options cannot be combined with --init (the checkpoint sets them)");
        o.elastic.sort_importance = !no_sort;
        if (no_sort && vm["sort-importance"].as<bool>())
            throw po::error("give --sort-importance or --no-sort-importance, not both");
        if (!o.elastic.on)
            for (const char* k : {"elastic-depth", "elastic-heads", "elastic-mlp-ratio", "sandwich-random", "kd-weight",
                                  "kd-temperature", "sort-importance", "no-sort-importance"})
                if (vm.count(k) && !vm[k].defaulted())
                    throw po::error(std::string("--") + k + " needs --elastic");
        if (o.elastic.on) {
            need(o.tasks.size() <= 1, "--elastic trains one task; a multi-task run trains a Task-MoE supernet");
            need(o.elastic.sandwich_random >= 0 && o.elastic.sandwich_random <= 64, "--sandwich-random must be in 0..64");
            need(o.elastic.kd_weight >= 0 && o.elastic.kd_weight <= 1, "--kd-weight must be in [0,1]");
            need(finite(o.elastic.kd_temperature) && o.elastic.kd_temperature > 0 && o.elastic.kd_temperature <= 100,
                 "--kd-temperature must be in (0,100]");
        }
        if (!o.init_path.empty() && !arch_spec(vm).empty())
            throw po::error("--arch cannot be combined with --init; cut the sub-architecture out first "
                            "(ufo-extract --arch) and start from that file");
        o.command = cli::command_line(argc, argv);
        if (vm.count("classes")) o.classes = vm["classes"].as<int>();
        arch_family(vm);   // a bad --arch is a usage error before any data is read
        if (arch_family(vm) == "cnn") {
            (void)cnn_arch_from_options(vm);
            if (o.tasks.size() > 1) throw po::error("--family cnn trains one task; multi-task supernets are ViTs");
        } else {
            (void)arch_from_options(vm);
        }
        NetFactory make = [&vm](const NetSpec& data, const std::string& where) {
            return network_from_options(vm, &data, where);
        };
        TrainHooks hooks;
        hooks.log = TrainLogPrinter(json, o.tasks.size() > 1);
        install_stop_signals();
        return train(o, make, arch_flags_given(vm), hooks);
    });
}

// ufo-train — train a network on HDF5 datasets (see man/ufo-train.1).
#include "dist/process_group.h"
#include "tool/arch_options.h"
#include "tool/cli.h"
#include "base/common.h"
#include "tool/train_log.h"
#include "tool/train_options.h"
#include "train/run_state.h"
#include "train/train.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

namespace po = boost::program_options;
using namespace ufo;

int main(int argc, char** argv) {
    dist::Session mpi(argc, argv);   // MPI when started by mpirun or srun
    return cli::run("ufo-train", [&]() -> int {
        TrainOptions o;
        TrainCliText text;
        po::options_description opts("Options");
        add_train_options(opts, o, text);
        add_init_options(opts, o, text);
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
                        "(or --json) on stdout. Under mpirun or srun (a build with MPI): one of N processes\n"
                        "sharing each global batch; see ufo-train(1), MULTIPLE PROCESSES."))
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
        check_train_options(vm, o, text);
        auto need = [](bool ok, const std::string& what) { if (!ok) throw po::error(what); };
        auto finite = [](float v) { return std::isfinite(v); };
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
        if (o.router.tau_start <= 0 || o.router.tau_end <= 0) throw po::error("the router temperature must be positive");
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
        hooks.log = TrainLogPrinter(text.json, o.tasks.size() > 1);
        install_stop_signals();
        return train(o, make, arch_flags_given(vm), hooks);
    });
}

// ufo-distill — train a student network (a small CNN or ViT) from a teacher's soft predictions
// and the labels (heterogeneous distillation; see man/ufo-distill.1).
#include "base/common.h"
#include "dist/process_group.h"
#include "tool/arch_options.h"
#include "tool/cli.h"
#include "tool/train_log.h"
#include "tool/train_options.h"
#include "train/run_state.h"
#include "train/train.h"

#include <cmath>
#include <cstdio>

namespace po = boost::program_options;
using namespace ufo;

int main(int argc, char** argv) {
    dist::Session mpi(argc, argv);   // MPI when started by mpirun or srun
    return cli::run("ufo-distill", [&]() -> int {
        TrainOptions o;
        o.tool = "ufo-distill";
        TrainCliText text;
        po::options_description opts("Options");
        add_train_options(opts, o, text);
        add_init_options(opts, o, text);
        DistillOptions& d = o.distill;
        po::options_description teach("Teacher and distillation");
        teach.add_options()
            ("teacher,m", po::value(&d.teacher.path), "teacher checkpoint: any model ufo-infer runs")
            ("task", po::value(&d.teacher.task), "the teacher's task (a Task-MoE supernet)")
            ("arch", po::value(&d.teacher.arch), "the teacher's sub-architecture (an elastic model), or '-'")
            ("soft-labels", po::value(&d.teacher.soft_labels),
             "teacher logits of the training set stored by ufo-infer -o, instead of -m (no augmentation)")
            ("alpha", po::value(&d.alpha)->default_value(0.5f, "0.5"),
             "weight of the soft-target loss (the rest: cross-entropy with the labels)")
            ("temperature", po::value(&d.temperature)->default_value(4.0f, "4"), "softmax temperature of both sides");
        opts.add(teach);
        add_arch_options(opts, false);
        po::positional_options_description pos;
        pos.add("train", 1);
        po::variables_map vm;
        if (!cli::parse(argc, argv, opts, pos, vm,
                        "Usage: ufo-distill -m TEACHER.h5 [--task T] [--arch SPEC] TRAIN.h5 [--val VAL.h5] -o STUDENT.h5\n"
                        "                   [--family cnn|vit --preset P | arch flags | --init STUDENT0.h5]\n"
                        "       ufo-distill --soft-labels PRED.h5 TRAIN.h5 ... -o STUDENT.h5\n"
                        "Trains a student on alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * cross-entropy,\n"
                        "the teacher running forward only on the student's augmented batch. Log as TSV (or --json)\n"
                        "on stdout, with the teacher's validation accuracy. Runs under mpirun as ufo-train does."))
            return 0;
        if (o.train_path.empty()) throw po::error("a training dataset is required");
        // --arch here is the teacher's; the student's architecture helpers must not see it.
        po::variables_map svm = vm;
        svm.erase("arch");
        check_train_options(svm, o, text);
        const bool net_teacher = !d.teacher.path.empty(), stored = !d.teacher.soft_labels.empty();
        if (net_teacher == stored) throw po::error("give the teacher as -m TEACHER.h5 or --soft-labels PRED.h5 (one of them)");
        if (stored && (vm.count("task") || vm.count("arch")))
            throw po::error("--task and --arch choose what the teacher checkpoint runs; stored soft labels have neither");
        if (!(d.alpha >= 0 && d.alpha <= 1)) throw po::error("--alpha must be in [0,1]");
        if (!(std::isfinite(d.temperature) && d.temperature > 0 && d.temperature <= 100))
            throw po::error("--temperature must be in (0,100]");
        const int stdin_users = int(o.train_path == "-") + int(o.val_path == "-") + int(d.teacher.path == "-") +
                                int(d.teacher.soft_labels == "-") + int(d.teacher.arch == "-");
        if (stdin_users > 1) throw po::error("only one input can come from stdin ('-')");
        if (d.teacher.arch == "-") {
            d.teacher.arch = cli::read_spec_line();
        }
        cli::check_outputs({o.out_path}, {d.teacher.path, d.teacher.soft_labels});
        o.command = cli::command_line(argc, argv);
        arch_family(svm);   // a bad family is a usage error before any data is read
        if (arch_family(svm) == "cnn") (void)cnn_arch_from_options(svm);
        else (void)arch_from_options(svm);
        NetFactory make = [&svm](const NetSpec& data, const std::string& where) {
            return network_from_options(svm, &data, where);
        };
        TrainHooks hooks;
        hooks.log = TrainLogPrinter(text.json, false, true);
        install_stop_signals();
        return train(o, make, arch_flags_given(svm), hooks);
    });
}

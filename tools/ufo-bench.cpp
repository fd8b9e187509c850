// ufo-bench — inference latency/throughput and training-step speed of a checkpoint or of an
// architecture given by flags, over a grid of thread counts and batch sizes.
#include "dist/process_group.h"
#include "tool/arch_options.h"
#include "tool/bench.h"
#include "layers/blas.h"
#include "io/checkpoint.h"
#include "tool/cli.h"
#include "base/common.h"
#include "train/data_parallel.h"
#include "tool/gemm_plan.h"
#include "tool/arch_table.h"
#include "io/dataset.h"
#include "nn/elastic.h"
#include "nn/vit.h"
#include "train/optim.h"
#include "base/rng.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <omp.h>

using namespace ufo;
namespace po = boost::program_options;

namespace {

const char* kUsage =
    "usage: ufo-bench [-m MODEL.h5 | ARCH FLAGS] [-b 1,64] [-t THREADS] [--reps 5] [--warmup 1]\n"
    "                 [--train] [--gemm] [--task NAME] [-o md|csv|json|jsonl] [--seed S]\n"
    "       ufo-bench -m ELASTIC.h5 (--sample N [--seed S] | --archs FILE|-) [--eval VAL.h5] [-b 256]\n"
    "                 [-t T] [--reps 20] [--rounds 1] [-o tsv|csv|md|json|jsonl]\n"
    "Times forward passes (or full AdamW training steps with --train) for every (threads, batch)\n"
    "pair and prints one row per pair on stdout; progress goes to stderr. --arch SPEC times one\n"
    "sub-architecture of an elastic model. --sample / --archs print the sampling table instead:\n"
    "per sub-architecture its params, FLOPs, batch-1 latency, batch-B throughput and (--eval)\n"
    "accuracy.";

// Training-step hyperparameters: they do not change the work done, only the numbers, so they
// are fixed to the reference recipe rather than exposed.
constexpr float kLr = 1e-3f, kSmoothing = 0.1f;

struct Inputs {
    std::vector<uint8_t> images;   // [B,H,W,C]
    std::vector<int32_t> labels;   // [B]
};

// Deterministic per (seed, batch) so a row is reproducible alone, whatever else is in the grid.
Inputs random_inputs(const NetSpec& cfg, int B, int num_classes, uint64_t seed) {
    Inputs in;
    Rng rng(mix_seed(seed, uint64_t(B)));
    in.images.resize(size_t(B) * cfg.img_h * cfg.img_w * cfg.img_c);
    for (auto& v : in.images) v = uint8_t(rng.next() >> 56);
    in.labels.resize(size_t(B));
    for (auto& l : in.labels) l = int32_t(rng.below(uint64_t(num_classes)));
    return in;
}


// --sample N / --archs FILE: one row per sub-architecture (tool/arch_table.h).
int sampling_table(const po::variables_map& vm, const ViT* vit, const std::string& name, bench::Format fmt,
                   uint64_t seed) {
    if (!vit || !vit->cfg.is_elastic())
        fail(name, "is not an elastic model; --sample and --archs need one (ufo-train --elastic)");
    std::vector<Active> archs;
    if (vm.count("sample")) {
        try {
            archs = sample_archs(vit->cfg, vm["sample"].as<int>(), seed);
        } catch (const Error& e) {
            fail(name, e.what());
        }
    } else {
        const std::string f = vm["archs"].as<std::string>();
        if (f == "-" && name == "-") throw UsageError("the model and --archs cannot both come from stdin");
        for (const auto& spec : cli::read_specs(f, 1u << 20))
            archs.push_back(parse_arch(spec, vit->cfg, f == "-" ? "<stdin>" : f));
    }
    ArchTableOptions o;
    o.seed = seed;
    o.reps = vm["reps"].defaulted() ? 20 : vm["reps"].as<int>();
    o.warmup = vm["warmup"].as<int>();
    o.rounds = vm["rounds"].as<int>();
    const auto batches = cli::int_list("batch", vm["batch"].defaulted() ? "256" : vm["batch"].as<std::string>());
    const auto threads = vm.count("threads") ? cli::int_list("threads", vm["threads"].as<std::string>())
                                             : std::vector<int>{omp_get_max_threads()};
    if (batches.size() != 1 || threads.size() != 1)
        throw UsageError("with --sample/--archs, -b and -t take one value each (the throughput batch, the threads)");
    o.batch = batches[0];
    o.threads = threads[0];
    Dataset val;
    if (vm.count("eval")) {
        o.eval_path = vm["eval"].as<std::string>();
        val = load_dataset(o.eval_path);
        o.eval = &val;
    }
    const auto t0 = std::chrono::steady_clock::now();
    TablePrinter out(std::cout, fmt, arch_table_columns(o.eval != nullptr));
    arch_table(*vit, archs, o, out);
    out.finish();
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::fprintf(stderr, "ufo-bench: %zu sub-networks of %s in %.1f s\n", archs.size(), name.c_str(), secs);
    return 0;
}

int main_body(int argc, char** argv) {
    po::options_description opts("options");
    opts.add_options()
        ("help,h", "print this help and exit")
        ("model,m", po::value<std::string>(), "checkpoint to benchmark (else: architecture flags)")
        ("batch,b", po::value<std::string>()->default_value("1,64"), "batch sizes, comma-separated")
        ("threads,t", po::value<std::string>(),
         "thread counts, comma-separated (default: OpenMP's maximum)")
        ("reps", po::value<int>()->default_value(5), "timed repetitions per row")
        ("warmup", po::value<int>()->default_value(1), "untimed repetitions before timing")
        ("train", "time full training steps (forward, loss, backward, AdamW) instead of inference")
        ("gemm", "time only the step's matrix products (same shapes, shards and kernels): the model's ceiling")
        ("task", po::value<std::string>(), "task to run, by name (default: the first)")
        ("format,o", po::value<std::string>()->default_value("md"), "md, csv, tsv, json or jsonl (--sample: tsv)")
        ("json", "same as -o jsonl")
        ("seed", po::value<std::string>()->default_value("0"), "seed for random weights and inputs (and --sample)")
        ("sample", po::value<int>(), "sampling table: the largest, the smallest and N random sub-architectures")
        ("archs", po::value<std::string>(), "sampling table of the specs in FILE (one per line), or '-' (stdin)")
        ("eval", po::value<std::string>(), "with --sample/--archs: accuracy and loss of each on this labelled split")
        ("rounds", po::value<int>()->default_value(1),
         "with --sample/--archs: time every row in R interleaved rounds, the median of them (rows print at the end)");
    po::options_description arch("architecture (without -m)");
    add_arch_options(arch);
    po::options_description all;
    all.add(opts).add(arch);

    po::variables_map vm;
    if (!cli::parse(argc, argv, all, {}, vm, kUsage)) return 0;

    // The sampling table is data for other tools: TSV unless asked otherwise.
    const bool tsv_default = (vm.count("sample") || vm.count("archs")) && vm["format"].defaulted();
    auto fmt = bench::parse_format(vm.count("json") ? "jsonl" : tsv_default ? "tsv" : vm["format"].as<std::string>());
    auto batches = cli::int_list("batch", vm["batch"].as<std::string>());
    auto threads = vm.count("threads") ? cli::int_list("threads", vm["threads"].as<std::string>())
                                       : std::vector<int>{omp_get_max_threads()};
    int reps = vm["reps"].as<int>(), warmup = vm["warmup"].as<int>();
    if (reps < 1) throw UsageError("option --reps: must be at least 1");
    if (warmup < 0) throw UsageError("option --warmup: must not be negative");
    bool train = vm.count("train") > 0;
    bool gemm_only = vm.count("gemm") > 0;
    const uint64_t seed = cli::seed(vm["seed"].as<std::string>());

    const bool table = vm.count("sample") || vm.count("archs");
    // Under mpirun every process takes its rows of each global batch and the gradients are
    // summed across them: only training steps exchange anything.
    const int P = dist::size();
    if (P > 1 && (!train || gemm_only || table))
        throw UsageError("under mpirun only --train is timed (inference exchanges nothing between processes)");
    if (vm.count("sample") && vm.count("archs")) throw UsageError("give --sample N or --archs FILE, not both");
    if (table && !vm.count("model")) throw UsageError("--sample and --archs need an elastic model (-m)");
    if (table && (train || gemm_only)) throw UsageError("--sample and --archs time inference; drop --train and --gemm");
    if (vm.count("eval") && !table) throw UsageError("--eval applies to --sample and --archs");
    if (!vm["rounds"].defaulted() && !table) throw UsageError("--rounds applies to --sample and --archs");
    if (vm["rounds"].as<int>() < 1 || vm["rounds"].as<int>() > 1000)
        throw UsageError("option --rounds: must be within 1..1000");
    if (vm.count("sample") && vm["sample"].as<int>() < 0) throw UsageError("option --sample: must not be negative");
    if (table && vm.count("arch") && !arch_spec(vm).empty()) throw UsageError("--arch times one sub-architecture; --sample and --archs time many");
    std::unique_ptr<Network> model;
    std::string name;
    if (vm.count("model")) {
        // A checkpoint carries its own architecture; silently ignoring flags would benchmark
        // something other than what the user asked for. (--arch SPEC picks a sub-network.)
        if (arch_flags_given(vm, false))
            throw UsageError("architecture options cannot be combined with -m (the checkpoint sets them)");
        name = vm["model"].as<std::string>();
        model = load_checkpoint(name).net;
        if (table) return sampling_table(vm, dynamic_cast<const ViT*>(model.get()), name, fmt, seed);
    } else {
        name = "arch";
        // Without a checkpoint or data the flags are the whole model: one that cannot be built
        // is a usage error.
        try {
            model = network_from_options(vm, nullptr, "");
        } catch (const UsageError&) {
            throw;
        } catch (const Error& e) {
            throw UsageError(e.what());
        }
        model->init_weights(seed);
    }
    const NetSpec& cfg = model->spec();
    const auto* vit = dynamic_cast<const ViT*>(model.get());
    const bool supernet = vit && vit->cfg.is_supernet();
    if (cfg.tasks.empty()) fail(name, "has no task head (a shared backbone for new tasks), so it predicts nothing");
    if (supernet && !vm.count("task")) {
        std::string all;
        for (size_t i = 0; i < cfg.tasks.size(); ++i) all += (i ? ", " : "") + cfg.tasks[i].name;
        fail(name, "is a supernet with tasks " + all + "; choose one with --task");
    }
    int task = vm.count("task") ? cfg.task_index(vm["task"].as<std::string>(), name) : 0;
    Active active;   // a supernet runs only the task's route
    active.task = task;
    if (vit) active = active_for_task(vit->cfg, task);
    if (vm.count("model") && !arch_spec(vm).empty()) {   // without -m the flags built the sub-architecture
        if (!vit) fail(name, std::string("--arch names a ViT sub-architecture; this is a ") + model->family());
        active = parse_arch(arch_spec(vm), vit->cfg, name);
        active.task = task;
    }
    model->resolve(active);
    if (gemm_only && !vit) fail(name, std::string("--gemm lists a ViT's matrix products; this is a ") + model->family());
    int classes = cfg.tasks[size_t(task)].num_classes;
    double fwd_flops = model->forward_flops(active);
    // Backward costs two matmuls per forward matmul (input and weight gradients): 3x forward.
    double flops_per_img = train ? 3.0 * fwd_flops : fwd_flops;
    auto params = int64_t(model->num_active_params(active));

    const bool root = dist::root();
    if (root)
        std::fprintf(stderr, "ufo-bench: %s: %s; task %s; %lld active params; %.4g MFLOP/img forward; "
                     "sgemm %s\n", name.c_str(), model->describe().c_str(),
                     cfg.tasks[size_t(task)].name.c_str(), (long long)params, fwd_flops * 1e-6, blas_kernels().c_str());

    std::unique_ptr<AdamW> opt;
    std::vector<float> grads;
    if (train) {
        grads.assign(model->params.size(), 0.0f);
        AdamWConfig oc;   // defaults: betas 0.9/0.999, eps 1e-8, weight decay 0.05 on matrices
        opt = std::make_unique<AdamW>(model->params.size(), oc);
    }

    bench::Printer out(std::cout, fmt);
    // GFLOP/s of --gemm rows use the model's FLOP count too, so the two rows' ratio is the
    // ratio of their times.
    const char* mode = gemm_only ? (train ? "gemm-train" : "gemm-infer") : train ? "train" : "infer";
    for (int t : threads) {
        set_threads(t);
        for (int B : batches) {
            if (B < P) throw UsageError("option --batch: " + std::to_string(B) + " rows cannot be split across " +
                                        std::to_string(P) + " processes");
            DataParallel dp(*model, B, train);
            dp.set_processes(dist::rank(), P);
            if (!train) dp.pack_weights();
            std::vector<double> allreduce_ms;   // per step, warm-up included
            allreduce_ms.reserve(size_t(warmup + reps));
            Inputs in = random_inputs(cfg, B, classes, seed);
            std::function<void()> step;
            // --gemm: each shard's matrix products on its own thread, as DataParallel runs the
            // model: for inference in its passes, with its packed weights where it packs them.
            const int shards = dp.shards(B);
            std::vector<GemmPasses> gemm;
            if (gemm_only) {
                const bool packed = !train && dp.workspace(0).packed;
                for (int s = 0; s < shards; ++s)
                    gemm.push_back(gemm_passes(*vit, active, shard_rows(s, shards, B).count, train, packed));
                step = [&] {
                    if (shards == 1) return gemm[0].run();
#pragma omp parallel num_threads(shards)
                    gemm[size_t(omp_get_thread_num())].run();
                };
            } else if (train) {
                step = [&] {
                    std::fill(grads.begin(), grads.end(), 0.0f);
                    Targets y;
                    y.labels = in.labels.data();
                    y.smoothing = kSmoothing;
                    dp.train_step(*model, in.images.data(), y, B, active, grads.data());
                    dist::barrier();   // the all-reduce's own time, not waiting for a slower rank
                    const double a0 = dist::allreduce_seconds();
                    dist::sum(grads.data(), grads.size());
                    allreduce_ms.push_back((dist::allreduce_seconds() - a0) * 1e3);
                    model->update_statistics(dp.workspace(0));
                    opt->step(model->layout, model->params.data(), grads.data(), kLr);
                };
            } else {
                step = [&] { dp.forward(*model, in.images.data(), B, active); };
            }
            if (root)
                std::fprintf(stderr, "ufo-bench: %s threads %d batch %d: %d warm-up + %d reps\n", mode,
                             t, B, warmup, reps);
            auto ms = bench::time_reps(step, warmup, reps);
            auto row = bench::make_row(name, mode, B, t, ms, flops_per_img * B, params);
            row.processes = P;
            if (P > 1)   // rank 0's times; the all-reduce keeps every rank in step
                row.allreduce_ms = bench::stats({allreduce_ms.end() - reps, allreduce_ms.end()}).median;
            if (root) {
                std::fprintf(stderr, "ufo-bench: %s threads %d batch %d: median %.3f ms, %.1f img/s, "
                             "%.1f GFLOP/s", mode, t, B, row.median_ms, row.img_per_s, row.gflop_per_s);
                if (P > 1)
                    std::fprintf(stderr, "; %d processes, all-reduce %.3f ms (%.0f%%)", P, row.allreduce_ms,
                                 100.0 * row.allreduce_ms / row.median_ms);
                if (dp.batch1_threads() > 0 && dp.batch1_threads() != t)
                    std::fprintf(stderr, "; batch 1 ran on %d thread%s, measured faster here",
                                 dp.batch1_threads(), dp.batch1_threads() == 1 ? "" : "s");
                std::fprintf(stderr, "\n");
                out.add(row);
            }
        }
    }
    if (root) out.finish();
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    dist::Session mpi(argc, argv);   // MPI when started by mpirun or srun
    return cli::run("ufo-bench", [&] { return main_body(argc, argv); });
}

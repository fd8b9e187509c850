// train.cpp — the training loop: set-up (data, network, optimiser, policy), then one short loop
// over the step policy's passes. Printing is the caller's (TrainHooks::log); checkpoints and
// signals are in run_state.cpp, data order in task_data.cpp, policies in policy.cpp.
#include "train/train.h"

#include "base/common.h"
#include "base/rng.h"
#include "dist/process_group.h"
#include "io/atomic_file.h"
#include "io/checkpoint.h"
#include "layers/blas.h"
#include "nn/elastic.h"
#include "tool/cli.h"
#include "train/data_parallel.h"
#include "train/fine_tune.h"
#include "train/infer.h"
#include "train/optim.h"
#include "train/passes.h"
#include "train/policy.h"
#include "train/run_state.h"
#include "train/task_data.h"
#include "train/teacher.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <thread>

namespace ufo {

namespace {

std::vector<TaskData> load_tasks(const TrainOptions& opt) {
    std::vector<TaskData> runs(opt.tasks.size());
    for (size_t t = 0; t < runs.size(); ++t) {
        const TaskSpec& s = opt.tasks[t];
        runs[t].load(s.name, s.train_path, s.val_path, s.batch > 0 ? s.batch : opt.batch);
        const Dataset &d = runs[t].train, &d0 = runs[0].train;
        if (t > 0 && (d.h != d0.h || d.w != d0.w || d.c != d0.c))
            fail(s.train_path, "images are " + std::to_string(d.h) + "x" + std::to_string(d.w) + "x" +
                                   std::to_string(d.c) + " but task " + runs[0].name + "'s are " + std::to_string(d0.h) +
                                   "x" + std::to_string(d0.w) + "x" + std::to_string(d0.c) + " (ufo-data --resize)");
    }
    return runs;
}

// --elastic: a fresh run stores the flags' search space in the model; a resumed one checks
// that the flags (when given) name the space it was trained on.
void set_up_elastic(const TrainOptions& opt, Network& net, const LoadedCheckpoint& ck) {
    auto* vit = dynamic_cast<ViT*>(&net);
    const std::string where = !opt.resume_path.empty() ? opt.resume_path : opt.init_path;
    if (!opt.elastic.on) {
        if (vit && vit->cfg.is_elastic())
            fail(opt.resume_path, "is an elastic checkpoint; resume it with --elastic");
        return;
    }
    if (!vit) fail(where, std::string("--elastic needs a ViT, not a ") + net.family());
    if (vit->cfg.tasks.size() != 1) fail(where, "--elastic trains one task; extract a task sub-network first");
    if (!vit->cfg.block_heads.empty() || !vit->cfg.block_hidden.empty())
        fail(where, "--elastic needs the same heads and FFN width in every block; this model is a cut-out "
                    "sub-architecture");
    ViTConfig plain = vit->cfg;
    plain.elastic = {};
    const ElasticSpace want = make_space(plain, opt.elastic.depth, opt.elastic.heads, opt.elastic.mlp_ratio, where);
    if (ck.has_train_state) {
        if (!vit->cfg.is_elastic()) fail(opt.resume_path, "is " + kind_phrase(ck.kind) + ", not an elastic one");
        const bool flags = !opt.elastic.depth.empty() || !opt.elastic.heads.empty() || !opt.elastic.mlp_ratio.empty();
        if (flags && !(want == vit->cfg.elastic))
            fail(opt.resume_path, "was trained on another elastic space (" + vit->cfg.describe() + ")");
        return;
    }
    vit->cfg.elastic = want;
    vit->cfg.validate(where);
    if (dist::root()) std::fprintf(stderr, "ufo-train: elastic space of 10^%.1f sub-networks (%s)\n", log10_space_size(want),
                 vit->cfg.describe().c_str());
}

// The network of this run: the checkpoint's when resuming, the source's architecture with
// this run's head when fine-tuning, else a fresh one fitted to the data.
std::unique_ptr<Network> make_network(const TrainOptions& opt, const NetFactory& make, bool arch_given,
                                      std::vector<TaskData>& runs, LoadedCheckpoint& ck) {
    const bool multi = runs.size() > 1;
    NetSpec spec;
    spec.img_h = runs[0].train.h; spec.img_w = runs[0].train.w; spec.img_c = runs[0].train.c;
    spec.tasks.clear();
    for (const auto& r : runs)
        spec.tasks.push_back(TaskInfo{r.name, opt.classes > 0 ? opt.classes : r.train.num_classes(),
                                      r.train.class_names, {}});
    input_stats(runs, spec.in_mean, spec.in_std);
    if (!opt.resume_path.empty()) {
        ck = load_checkpoint(opt.resume_path, true);
        if (!ck.has_train_state) fail(opt.resume_path, "has no /train_state to resume from");
        const bool is_super = ck.kind == "supernet";
        if (is_super != multi)
            fail(opt.resume_path, "is " + kind_phrase(ck.kind) + ", not a " + (multi ? "supernet" : "single-task") + " one");
        const NetSpec& have = ck.net->spec();
        if (have.tasks.size() != runs.size())
            fail(opt.resume_path, "has " + std::to_string(have.tasks.size()) + " tasks, this run " +
                                      std::to_string(runs.size()));
        if (multi)
            for (size_t t = 0; t < runs.size(); ++t)
                if (have.tasks[t].name != runs[t].name)
                    fail(opt.resume_path, "task " + std::to_string(t + 1) + " is '" + have.tasks[t].name +
                                              "', this run names '" + runs[t].name + "'");
        if (arch_given) {
            spec.tasks = have.tasks;
            std::string why;
            if (!ck.net->same_architecture(*make(spec, opt.resume_path), &why))
                fail(opt.resume_path, "checkpoint has another architecture than requested (" + why + ")");
        }
        set_up_elastic(opt, *ck.net, ck);
        return std::move(ck.net);
    }
    if (!opt.init_path.empty()) {
        LoadedCheckpoint from = load_checkpoint(opt.init_path);
        if (from.kind == "supernet")
            fail(opt.init_path, "is a Task-MoE supernet; start from a task sub-network or the shared branch "
                                "(ufo-extract --task or --shared)");
        NetSpec s = from.net->spec();
        s.tasks = spec.tasks;   // this run's heads, the source's input normalisation
        auto net = from.net->rebuild(s);
        net->init_weights(mix_seed(opt.seed, 0x1417));   // the fresh head's start
        const InitReport rep = init_from(*net, *from.net, opt.new_head);
        set_up_elastic(opt, *net, ck);
        if (dist::root()) std::fprintf(stderr, "%s: started from %s (%zu tensors, %s head)\n", opt.tool.c_str(), opt.init_path.c_str(), rep.copied,
                     rep.head_copied ? "its" : "a fresh");
        return net;
    }
    auto net = make(spec, runs[0].train_path);
    net->init_weights(mix_seed(opt.seed, 0x1417));
    set_up_elastic(opt, *net, ck);
    return net;
}

}  // namespace

int train(const TrainOptions& opt_in, const NetFactory& make, bool arch_given, const TrainHooks& hooks) {
    TrainOptions opt = opt_in;
    // Processes of the run (mpirun): each computes its rows of every batch; rank 0 alone logs
    // and writes. Without -t, the processes on one machine share its cores.
    const int P = dist::size();
    const bool root = dist::root();
    if (opt.threads > 0)
        set_threads(opt.threads);
    else if (dist::local_size() > 1)
        set_threads(std::max(1, int(std::thread::hardware_concurrency()) / dist::local_size()));
    if (opt.out_path == "-") fail("-", "the model cannot go to stdout, which carries the training log");
    if (opt.tasks.empty()) opt.tasks.push_back(TaskSpec{opt.task_name, opt.train_path, opt.val_path, 0, 1.0f, 1.0f});
    const bool multi = opt.tasks.size() > 1;
    if (multi && !opt.init_path.empty()) fail(opt.init_path, "--init starts a single-task run, not a multi-task one");
    const std::string ckpt_path = checkpoint_path(opt);
    {
        // No output may replace an input. The checkpoint may be the --resume file: a resumed
        // run advances the very state it started from (written atomically, so never lost).
        std::vector<std::string> inputs{opt.init_path};
        for (const auto& t : opt.tasks) inputs.insert(inputs.end(), {t.train_path, t.val_path});
        cli::check_outputs({opt.out_path}, inputs);
        cli::check_outputs({ckpt_path}, inputs);
        cli::check_outputs({opt.out_path}, {opt.resume_path});
    }
    if (root) {   // fail on a bad output path before any work
        { AtomicPath probe(opt.out_path); }
        { AtomicPath probe(ckpt_path); }
    }
    if (opt.batch < 1) fail("", "option --batch must be positive");
    if (opt.router.tau_start <= 0 || opt.router.tau_end <= 0) fail("", "the router temperature must be positive");

    std::vector<TaskData> runs = load_tasks(opt);
    LoadedCheckpoint ck;
    std::unique_ptr<Network> net_ptr = make_network(opt, make, arch_given, runs, ck);
    Network& net = *net_ptr;
    NetSpec& spec = net.spec();
    for (size_t t = 0; t < runs.size(); ++t) {
        const TaskData& r = runs[t];
        const int K = spec.tasks[t].num_classes;
        for (const auto& [ds, path] : {std::pair{&r.train, r.train_path}, std::pair{&r.val, r.val_path}}) {
            if (path.empty()) continue;
            check_fits(spec, *ds, path);
            if (ds->num_classes() != K)
                fail(path, "dataset has " + std::to_string(ds->num_classes()) + " classes, the model's task " +
                               spec.tasks[t].name + " " + std::to_string(K));
        }
        if (r.train.n < r.batch)
            fail(r.train_path, std::to_string(r.train.n) + " images are fewer than one batch of " + std::to_string(r.batch));
        if (r.batch < P)
            fail("", "a batch of " + std::to_string(r.batch) + " cannot be split across " + std::to_string(P) + " processes");
    }
    // Distillation: the teacher is read and checked against the data before any training.
    std::unique_ptr<Teacher> teacher;
    double teacher_val_acc = -1;
    if (opt.distill.on()) {
        const TeacherOptions& to = opt.distill.teacher;
        if (multi || opt.elastic.on) fail("", "internal error: distillation trains one task, not a supernet or elastic model");
        if (!to.soft_labels.empty() && opt.augment.any())
            fail(to.soft_labels, "stored soft labels only fit unaugmented images; drop --crop-pad, --hflip and --erase, "
                                 "or distil from the teacher checkpoint (-m)");
        teacher = std::make_unique<Teacher>(to, runs[0].train, runs[0].train_path, std::max(runs[0].batch, opt.eval_batch));
        if (!runs[0].val_path.empty()) teacher_val_acc = teacher->accuracy(runs[0].val);
        if (root) {
            std::fprintf(stderr, "%s: teacher %s", opt.tool.c_str(), teacher->describe().c_str());
            if (teacher_val_acc >= 0) std::fprintf(stderr, ", validation accuracy %.4f", teacher_val_acc);
            std::fprintf(stderr, "; alpha %g, temperature %g\n", opt.distill.alpha, opt.distill.temperature);
        }
    }
    int64_t spe = 0;   // an epoch is one pass over the task with the most steps per epoch
    int maxB = 0;
    for (const auto& r : runs) {
        spe = std::max(spe, r.steps_per_epoch);
        maxB = std::max(maxB, r.batch);
    }
    const int64_t total = opt.steps > 0 ? opt.steps : int64_t(opt.epochs > 0 ? opt.epochs : 10) * spe;
    const int64_t warmup = opt.warmup >= 0 ? opt.warmup : total / 20;

    // Optimiser and the state a resume restores.
    AdamWConfig ac;
    ac.beta1 = opt.beta1; ac.beta2 = opt.beta2; ac.eps = opt.eps; ac.weight_decay = opt.weight_decay;
    AdamW adam(net.params.size(), ac);
    TrainState st;
    st.seed = opt.seed;
    if (ck.has_train_state) {
        st = ck.state;
        if (st.seed != opt.seed)
            fail(opt.resume_path, "was trained with --seed " + std::to_string(st.seed) + ", not " + std::to_string(opt.seed));
        warn_changed_options(opt.tool, opt.resume_path, st.train_options, options_json(opt));
        if (int64_t(st.step) > total)
            fail(opt.resume_path, "is at step " + std::to_string(st.step) + ", beyond the " + std::to_string(total) +
                                      " steps of this run");
        adam.m = st.adam_m;
        adam.v = st.adam_v;
        adam.t = st.step;
    }

    // The step policy: dense, or Task-MoE over the tasks.
    net.set_frozen(frozen_mask(net, opt.freeze));
    std::unique_ptr<StepPolicy> policy;
    if (multi) {
        TaskMoEOptions mo;
        mo.router = opt.router;
        mo.router_mult = opt.router_lr >= 0 ? opt.router_lr / opt.lr : 1.0f;
        for (const auto& t : opt.tasks) {
            mo.task_weight.push_back(t.weight);
            mo.task_lr_mult.push_back(t.lr_mult);
        }
        mo.freeze_at = opt.route_freeze_epoch >= 0 ? int64_t(opt.route_freeze_epoch) * spe : opt.route_freeze_step;
        mo.seed = opt.seed;
        policy = make_task_moe_policy(net, mo, net.frozen());
        if (!ck.has_train_state)   // a fresh supernet's own-FFN router logits start at --router-init
            for (const auto& t : net.layout)
                if (t.role.kind == Kind::Router)
                    for (size_t i = 1; i < t.size; i += 2) net.params[t.offset + i] = opt.router.init;
    } else if (opt.elastic.on) {
        SandwichOptions so;
        so.random = opt.elastic.sandwich_random;
        so.kd_weight = opt.elastic.kd_weight;
        so.kd_temperature = opt.elastic.kd_temperature;
        so.seed = opt.seed;
        if (!ck.has_train_state && opt.elastic.sort_importance) {
            // Before the first elastic step, so that first-k slicing keeps the important heads
            // and units. A fresh run's moments are still zero; they are permuted with their
            // weights all the same, as sorting a network mid-training must.
            const int n = sort_by_importance(static_cast<ViT&>(net), {adam.m.data(), adam.v.data()});
            if (root) std::fprintf(stderr, "ufo-train: importance sorting reordered heads or hidden units in %d places\n", n);
        }
        policy = make_sandwich_policy(net, so, net.frozen());
    } else if (teacher) {
        policy = make_distill_policy(net, opt.distill.alpha, opt.distill.temperature, net.frozen());
    } else {
        policy = make_dense_policy(net, net.frozen());
    }
    policy->set_routes_frozen(st.routes_frozen);
    policy->begin(net, int64_t(st.step));

    std::vector<float> grads(net.params.size(), 0.0f);
    DataParallel dp(net, maxB, true);
    dp.set_processes(dist::rank(), P);
    std::vector<std::vector<uint8_t>> batch_img(runs.size());
    std::vector<std::vector<int32_t>> batch_lab(runs.size());
    std::vector<int64_t> batch_step(runs.size(), -1);
    std::vector<int64_t> batch_index(static_cast<size_t>(maxB));   // training-set rows of the batch (stored soft labels)
    std::vector<float> teacher_probs;
    for (size_t t = 0; t < runs.size(); ++t) {
        batch_img[t].resize(size_t(runs[t].batch) * runs[t].train.image_size());
        batch_lab[t].resize(size_t(runs[t].batch));
    }
    if (root) {
        std::fprintf(stderr, "%s: %s%s, %zu parameters, %d task%s, %lld steps", opt.tool.c_str(), net.describe().c_str(),
                     multi ? " Task-MoE supernet" : "", net.num_params(), int(runs.size()), multi ? "s" : "",
                     (long long)total);
        if (P > 1) std::fprintf(stderr, "; %d processes, %d thread%s each", P, get_threads(), get_threads() > 1 ? "s" : "");
        std::fprintf(stderr, "\n");
        if (P > 1 && net.whole_batch())
            std::fprintf(stderr, "%s: note: BatchNorm statistics are each process's own rows, so the run differs from one "
                                 "process's\n", opt.tool.c_str());
    }

    // The parent's checksum is taken now: a resumed run may later overwrite that very file.
    Provenance prov;
    prov.tool = opt.tool;
    prov.command = opt.command;
    prov.parent = !opt.resume_path.empty() ? opt.resume_path : opt.init_path;
    if (!prov.parent.empty()) prov.parent_checksum = fnv1a_file(prov.parent);
    if (teacher) {
        prov.attrs = {{"teacher", teacher->source()},
                      {"teacher_checksum", teacher->source().empty() ? "" : hex64(teacher->checksum())},
                      {"distill", nlohmann::json({{"teacher_task", opt.distill.teacher.task},
                                                  {"teacher_arch", opt.distill.teacher.arch},
                                                  {"soft_labels", !opt.distill.teacher.soft_labels.empty()},
                                                  {"alpha", opt.distill.alpha},
                                                  {"temperature", opt.distill.temperature}}).dump()}};
    }
    const char* kind = multi ? "supernet" : opt.elastic.on ? "elastic" : net.family() == std::string("vit") ? "dense" : net.family();
    // Running sums of the open log interval, per task; they travel in the train state so that
    // a resumed run prints the log lines of an uninterrupted one.
    std::vector<TrainState::TaskLog> logs(runs.size());
    logs[0] = {st.log_loss_sum, st.log_correct, st.log_count, st.log_steps};
    for (size_t t = 1; t < runs.size() && t - 1 < st.task_logs.size(); ++t) logs[t] = st.task_logs[t - 1];
    auto save_state = [&](const std::string& path, int64_t step) {
        policy->settle(net);
        st.log_loss_sum = logs[0].loss_sum; st.log_correct = logs[0].correct;
        st.log_count = logs[0].count; st.log_steps = logs[0].steps;
        st.task_logs.assign(logs.begin() + 1, logs.end());
        st.step = uint64_t(step);
        st.adam_m = adam.m;
        st.adam_v = adam.v;
        st.train_options = options_json(opt);
        st.routes_frozen = policy->routes_frozen();
        if (root) save_checkpoint(path, kind, net, prov, &st, opt.zstd);
    };

    cli::Progress progress("train", total, "step");   // rank 0's only
    const auto t0 = std::chrono::steady_clock::now();
    auto interval_start = t0;
    int64_t interval_images = 0;
    const int64_t start = int64_t(st.step);
    std::vector<Pass> passes;
    PassRunner runner;
    std::vector<double> pass_sums;   // per pass: loss share, hits (summed over the processes)
    for (int64_t step = start; step < total; ++step) {
        if (int sig = dist::max(stop_signal())) {   // a signal to any process stops them all here
            save_state(ckpt_path, step);
            dist::barrier();   // no process exits (and has the launcher end the job) before rank 0 has written
            progress.finish();
            if (root)
                std::fprintf(stderr, "%s: stopped by signal %d at step %lld; checkpoint %s\n", opt.tool.c_str(), sig,
                             (long long)step, ckpt_path.c_str());
            return 128 + sig;
        }
        policy->before_step(net, step);
        std::fill(grads.begin(), grads.end(), 0.0f);
        passes.clear();
        policy->passes(net, step, passes);
        pass_sums.assign(passes.size() * 2, 0.0);
        runner.begin_step();
        for (const Pass& p : passes) {
            TaskData& r = runs[size_t(p.task)];
            if (batch_step[size_t(p.task)] != step) {   // passes of one task share its batch
                r.fill_batch(p.task, step, opt.seed, opt.augment, batch_img[size_t(p.task)].data(),
                             batch_lab[size_t(p.task)].data(), batch_index.data());
                batch_step[size_t(p.task)] = step;
                if (teacher && p.from_teacher) {   // the teacher sees this process's rows of the student's batch
                    const size_t K = size_t(spec.tasks[size_t(p.task)].num_classes);
                    const ShardRows part = dp.mine(r.batch);
                    teacher_probs.resize(size_t(r.batch) * K);
                    teacher->probs(teacher_probs.data() + size_t(part.first) * K,
                                   batch_img[size_t(p.task)].data() + size_t(part.first) * r.train.image_size(),
                                   batch_index.data() + part.first, part.count, opt.distill.temperature);
                    runner.provide_teacher(teacher_probs.data(), teacher_probs.size());
                }
            }
            const StepResult sr = runner.run(net, dp, p, batch_img[size_t(p.task)].data(),
                                             batch_lab[size_t(p.task)].data(), r.batch, opt.label_smoothing, grads.data());
            const size_t i = size_t(&p - passes.data());
            pass_sums[2 * i] = sr.loss;
            pass_sums[2 * i + 1] = sr.correct;
        }
        // One process: nothing to do. Several: the batch's gradients and figures are the sums of
        // every process's share.
        dist::sum(grads.data(), grads.size());
        dist::sum(pass_sums.data(), pass_sums.size());
        for (size_t i = 0; i < passes.size(); ++i) {
            const TaskData& r = runs[size_t(passes[i].task)];
            if (!std::isfinite(pass_sums[2 * i]))
                fail(r.train_path, "training diverged (loss is not finite) at step " + std::to_string(step + 1) +
                                       "; lower --lr");
            auto& l = logs[size_t(passes[i].task)];
            l.loss_sum += float(pass_sums[2 * i]);
            l.correct += int64_t(pass_sums[2 * i + 1]);
            l.count += r.batch;
            l.steps += 1;
            interval_images += r.batch;
        }
        clip_grad_norm(grads, opt.clip);
        const float lr = lr_at(uint64_t(step), uint64_t(total), uint64_t(warmup), opt.lr, opt.min_lr);
        adam.step(net.layout, net.params.data(), grads.data(), lr, &policy->lr_mults());
        progress.update(step + 1);

        const bool last = step + 1 == total;
        if ((opt.log_every > 0 ? (step + 1) % opt.log_every == 0 : (step + 1) % spe == 0) || last) {
            const auto now = std::chrono::steady_clock::now();
            const double secs = std::chrono::duration<double>(now - interval_start).count();
            progress.finish();
            policy->settle(net);   // validation runs each task's argmax route
            for (size_t t = 0; t < runs.size(); ++t) {
                auto& l = logs[t];
                LogRow row;
                row.step = step + 1;
                row.epoch = double(step + 1) / spe;
                row.lr = lr;
                row.loss = l.loss_sum / std::max<int64_t>(1, l.steps);
                row.acc = double(l.correct) / std::max<int64_t>(1, l.count);
                row.img_s = secs > 0 ? interval_images / secs : 0;
                row.elapsed = std::chrono::duration<double>(now - t0).count();
                row.teacher_val_acc = teacher_val_acc;
                if ((row.has_val = !runs[t].val_path.empty())) {
                    const EvalResult e = evaluate_across_processes(net, dp, runs[t].val, policy->eval_active(net, int(t)));
                    row.val_loss = e.loss;
                    row.val_acc = e.accuracy;
                }
                if (multi) {
                    row.task = spec.tasks[t].name;
                    policy->describe_task(net, int(t), row.route, row.p_own);
                }
                if (hooks.log && root) hooks.log(row);
                l = TrainState::TaskLog{};
            }
            interval_start = std::chrono::steady_clock::now();
            interval_images = 0;
        }
        if (opt.ckpt_every > 0 && (step + 1) % opt.ckpt_every == 0 && !last) save_state(ckpt_path, step + 1);
        if (opt.stop_after > 0 && step + 1 - start >= opt.stop_after && !last) {
            save_state(ckpt_path, step + 1);
            dist::barrier();
            if (root)
                std::fprintf(stderr, "%s: stopped after %lld steps as asked; checkpoint %s\n", opt.tool.c_str(),
                             (long long)opt.stop_after, ckpt_path.c_str());
            return 0;
        }
    }
    progress.finish();
    policy->settle(net);
    if (root) {
        save_checkpoint(opt.out_path, kind, net, prov, nullptr, opt.zstd);
        std::fprintf(stderr, "%s: wrote %s\n", opt.tool.c_str(), opt.out_path.c_str());
    }
    return 0;
}

}  // namespace ufo

// train.cpp — single-task training: data order, augmentation, AdamW, logging, checkpoints,
// exact resume and clean stops on SIGINT/SIGTERM.
#include "train/train.h"

#include "io/atomic_file.h"
#include "layers/blas.h"
#include "io/checkpoint.h"
#include "tool/cli.h"
#include "base/common.h"
#include "train/data_parallel.h"
#include "io/dataset.h"
#include "train/infer.h"
#include "train/optim.h"
#include "base/rng.h"

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <numeric>

namespace ufo {

namespace {

std::atomic<int> g_stop{0};   // the one piece of signal state; a handler can do nothing else
extern "C" void on_stop_signal(int sig) { g_stop.store(sig); }

std::string options_json(const TrainOptions& o) {
    nlohmann::json j = {{"train", o.train_path}, {"val", o.val_path}, {"epochs", o.epochs}, {"steps", o.steps},
                        {"batch", o.batch}, {"lr", o.lr}, {"min_lr", o.min_lr}, {"warmup", o.warmup},
                        {"weight_decay", o.weight_decay}, {"clip", o.clip}, {"label_smoothing", o.label_smoothing},
                        {"crop_pad", o.augment.crop_pad}, {"hflip", o.augment.hflip},
                        {"erase", o.augment.erase_prob}, {"seed", o.seed}, {"threads", o.threads}};
    if (o.tasks.size() > 1) {
        nlohmann::json tasks = nlohmann::json::array();
        for (const auto& t : o.tasks)
            tasks.push_back({{"name", t.name}, {"train", t.train_path}, {"val", t.val_path}, {"batch", t.batch},
                             {"weight", t.weight}, {"lr_mult", t.lr_mult}});
        j["tasks"] = tasks;
        j["tau_start"] = o.router.tau_start;
        j["tau_end"] = o.router.tau_end;
        j["tau_anneal_steps"] = o.router.tau_anneal_steps;
        j["gumbel_noise"] = o.router.noise_per_sample ? "sample" : "batch";
        j["router_lr"] = o.router_lr;
        j["router_init"] = o.router.init;
        j["route_freeze_step"] = o.route_freeze_step;
        j["route_freeze_epoch"] = o.route_freeze_epoch;
    }
    return j.dump();
}

// A resumed run is bit-exact only with the options of the first run; say which ones differ.
void warn_changed_options(const std::string& ckpt, const std::string& before, const std::string& now) {
    nlohmann::json a = nlohmann::json::parse(before, nullptr, false), b = nlohmann::json::parse(now);
    if (a.is_discarded() || !a.is_object()) return;
    std::string diff;
    for (auto it = b.begin(); it != b.end(); ++it)
        if (a.contains(it.key()) && a[it.key()] != it.value())
            diff += (diff.empty() ? "" : ", ") + it.key() + " " + a[it.key()].dump() + " -> " + it.value().dump();
    if (!diff.empty())
        std::fprintf(stderr, "ufo-train: warning: %s was written with other options (%s); the resumed run will "
                             "not match an uninterrupted one\n", ckpt.c_str(), diff.c_str());
}

// Per-channel mean and std of a dataset's pixels in [0,1], for input normalisation.
void channel_stats(const Dataset& ds, std::vector<float>& mean, std::vector<float>& stdv) {
    std::vector<double> s(ds.c, 0.0), ss(ds.c, 0.0);
    const size_t n = ds.images.size();
    for (size_t i = 0; i < n; ++i) {
        double v = ds.images[i] / 255.0;
        s[i % ds.c] += v;
        ss[i % ds.c] += v * v;
    }
    mean.resize(ds.c);
    stdv.resize(ds.c);
    const double cnt = double(n / ds.c);
    for (int c = 0; c < ds.c; ++c) {
        double m = s[c] / cnt, var = ss[c] / cnt - m * m;
        mean[c] = float(m);
        stdv[c] = float(std::sqrt(std::max(var, 1e-6)));
    }
}

struct LogRow {
    int64_t step;
    double epoch, lr, loss, acc, val_loss, val_acc, img_s, elapsed;
    bool has_val;
};

// Multi-task logs carry task, route and p_own columns after epoch/lr; a single task's do not.
void print_header(bool json, bool multi) {
    if (json) return;
    if (multi)
        std::printf("step\tepoch\ttask\tlr\ttrain_loss\ttrain_acc\tval_loss\tval_acc\troute\tp_own\timg_per_s\t"
                    "elapsed_s\n");
    else
        std::printf("step\tepoch\tlr\ttrain_loss\ttrain_acc\tval_loss\tval_acc\timg_per_s\telapsed_s\n");
}

// task == nullptr: a single-task row.
void print_row(const LogRow& r, const TaskInfo* task, const std::vector<float>& p_own, bool json) {
    std::vector<std::string> route;
    std::string route_tsv, p_own_tsv;
    if (task) {
        for (int x : task->route) route.push_back(x ? "own" : "shared");
        for (size_t l = 0; l < route.size(); ++l) route_tsv += (l ? "," : "") + route[l];
        char buf[16];
        for (size_t l = 0; l < p_own.size(); ++l) {
            std::snprintf(buf, sizeof buf, "%s%.3f", l ? "," : "", p_own[l]);
            p_own_tsv += buf;
        }
    }
    if (json) {
        nlohmann::ordered_json j = {{"step", r.step}, {"epoch", r.epoch}};
        if (task) j["task"] = task->name;
        j["lr"] = r.lr;
        j["train_loss"] = r.loss;
        j["train_acc"] = r.acc;
        j["val_loss"] = r.has_val ? nlohmann::json(r.val_loss) : nlohmann::json(nullptr);
        j["val_acc"] = r.has_val ? nlohmann::json(r.val_acc) : nlohmann::json(nullptr);
        if (task) {
            j["route"] = route;
            j["p_own"] = p_own;
        }
        j["img_per_s"] = r.img_s;
        j["elapsed_s"] = r.elapsed;
        std::printf("%s\n", j.dump().c_str());
    } else {
        char vl[32] = "nan", va[32] = "nan";
        if (r.has_val) {
            std::snprintf(vl, sizeof vl, "%.6f", r.val_loss);
            std::snprintf(va, sizeof va, "%.6f", r.val_acc);
        }
        std::printf("%lld\t%.3f\t", (long long)r.step, r.epoch);
        if (task) std::printf("%s\t", task->name.c_str());
        std::printf("%.6g\t%.6f\t%.6f\t%s\t%s\t", r.lr, r.loss, r.acc, vl, va);
        if (task) std::printf("%s\t%s\t", route_tsv.c_str(), p_own_tsv.c_str());
        std::printf("%.1f\t%.1f\n", r.img_s, r.elapsed);
    }
    std::fflush(stdout);
}

}  // namespace

void install_stop_signals() {
    std::signal(SIGINT, on_stop_signal);
    std::signal(SIGTERM, on_stop_signal);
}

int stop_signal() { return g_stop.load(); }

namespace {

// Everything the loop keeps per task.
struct TaskRun {
    TaskSpec spec;
    Dataset train, val;
    int batch = 0;
    int64_t steps_per_epoch = 0;     // of this task's own data
    std::vector<int64_t> perm;
    int64_t perm_epoch = -1;
    // log interval sums (task 0's live in TrainState so a resumed log line matches)
    double loss_sum = 0;
    int64_t correct = 0, count = 0, steps = 0;
};

void fill_batch(TaskRun& tr, int t, int64_t step, const TrainOptions& opt, uint8_t* img, int32_t* lab) {
    const int B = tr.batch;
    const int64_t epoch = step / tr.steps_per_epoch, k = step % tr.steps_per_epoch;
    if (epoch != tr.perm_epoch) {   // the order of an epoch depends only on (seed, task, epoch)
        std::iota(tr.perm.begin(), tr.perm.end(), 0);
        Rng r(mix_seed(opt.seed, 0x5eed + uint64_t(t), uint64_t(epoch)));
        for (int64_t i = tr.train.n - 1; i > 0; --i) std::swap(tr.perm[i], tr.perm[r.below(uint64_t(i) + 1)]);
        tr.perm_epoch = epoch;
    }
    const Dataset& d = tr.train;
    const size_t isz = d.image_size();
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; ++b) {
        const int64_t idx = tr.perm[k * B + b];
        lab[b] = d.labels[idx];
        if (opt.augment.any())
            augment_image(img + b * isz, d.image(idx), d.h, d.w, d.c, opt.augment,
                          mix_seed(opt.seed, 0xa06 + uint64_t(t), uint64_t(step), uint64_t(b)));
        else
            std::copy(d.image(idx), d.image(idx) + isz, img + b * isz);
    }
}

// Per-channel statistics over the training sets of all tasks together.
void input_stats(const std::vector<TaskRun>& runs, std::vector<float>& mean, std::vector<float>& stdv) {
    const int C = runs[0].train.c;
    std::vector<double> s(C, 0.0), ss(C, 0.0);
    double cnt = 0;
    for (const auto& r : runs) {
        std::vector<float> m, sd;
        channel_stats(r.train, m, sd);
        const double n = double(r.train.n);
        for (int c = 0; c < C; ++c) {
            s[c] += n * m[c];
            ss[c] += n * (double(sd[c]) * sd[c] + double(m[c]) * m[c]);
        }
        cnt += n;
    }
    mean.resize(C);
    stdv.resize(C);
    for (int c = 0; c < C; ++c) {
        const double m = s[c] / cnt;
        mean[c] = float(m);
        stdv[c] = float(std::sqrt(std::max(ss[c] / cnt - m * m, 1e-6)));
    }
}

// p(own) per block of task t: softmax of its router logits, without noise.
std::vector<float> p_own_of(const Model& m, int t) {
    std::vector<float> out(m.cfg.depth);
    for (int l = 0; l < m.cfg.depth; ++l) {
        float p[2];
        route_probs(p, m.p.heads[t].router + 2 * l);
        out[l] = p[1];
    }
    return out;
}


}  // namespace

int train(const TrainOptions& opt_in, ViTConfig arch, bool arch_given) {
    TrainOptions opt = opt_in;
    if (opt.threads > 0) set_threads(opt.threads);
    if (opt.out_path == "-") fail("-", "the model cannot go to stdout, which carries the training log");
    if (opt.tasks.empty()) opt.tasks.push_back(TaskSpec{opt.task_name, opt.train_path, opt.val_path, 0, 1.0f, 1.0f});
    const bool multi = opt.tasks.size() > 1;
    const std::string ckpt_path = !opt.ckpt_path.empty() ? opt.ckpt_path
                                  : opt.out_path.size() > 3 && opt.out_path.compare(opt.out_path.size() - 3, 3, ".h5") == 0
                                      ? opt.out_path.substr(0, opt.out_path.size() - 3) + ".ckpt.h5"
                                      : opt.out_path + ".ckpt";
    {
        // No output may replace an input. The checkpoint may be the --resume file: a resumed
        // run advances the very state it started from (written atomically, so never lost).
        std::vector<std::string> inputs;
        for (const auto& t : opt.tasks) inputs.insert(inputs.end(), {t.train_path, t.val_path});
        cli::check_outputs({opt.out_path}, inputs);
        cli::check_outputs({ckpt_path}, inputs);
        cli::check_outputs({opt.out_path}, {opt.resume_path});
    }
    { AtomicPath probe(opt.out_path); }   // fail on a bad output path before any work
    { AtomicPath probe(ckpt_path); }
    if (opt.batch < 1) fail("", "option --batch must be positive");
    if (opt.router.tau_start <= 0 || opt.router.tau_end <= 0) fail("", "the router temperature must be positive");

    std::vector<TaskRun> runs(opt.tasks.size());
    for (size_t t = 0; t < runs.size(); ++t) {
        TaskRun& r = runs[t];
        r.spec = opt.tasks[t];
        r.batch = r.spec.batch > 0 ? r.spec.batch : opt.batch;
        r.train = load_dataset(r.spec.train_path);
        if (!r.spec.val_path.empty()) r.val = load_dataset(r.spec.val_path);
        if (t > 0 && (r.train.h != runs[0].train.h || r.train.w != runs[0].train.w || r.train.c != runs[0].train.c))
            fail(r.spec.train_path, "images are " + std::to_string(r.train.h) + "x" + std::to_string(r.train.w) + "x" +
                                        std::to_string(r.train.c) + " but task " + runs[0].spec.name + "'s are " +
                                        std::to_string(runs[0].train.h) + "x" + std::to_string(runs[0].train.w) +
                                        "x" + std::to_string(runs[0].train.c) + " (ufo-data --resize)");
        r.steps_per_epoch = r.train.n / r.batch;   // the last partial batch of an epoch is dropped
        r.perm.resize(r.train.n);
    }

    // Architecture: the checkpoint's when resuming, else flags/preset fitted to the data.
    LoadedCheckpoint ck;
    std::unique_ptr<Model> model;
    if (!opt.resume_path.empty()) {
        ck = load_checkpoint(opt.resume_path, true);
        if (!ck.has_train_state) fail(opt.resume_path, "has no /train_state to resume from");
        const char* want = multi ? "supernet" : "dense";
        if (ck.kind != want) fail(opt.resume_path, "is a " + ck.kind + " checkpoint, not a " + want + " one");
        const ViTConfig& have = ck.model->cfg;
        if (have.tasks.size() != runs.size())
            fail(opt.resume_path, "has " + std::to_string(have.tasks.size()) + " tasks, this run " +
                                      std::to_string(runs.size()));
        if (multi)
            for (size_t t = 0; t < runs.size(); ++t)
                if (have.tasks[t].name != runs[t].spec.name)
                    fail(opt.resume_path, "task " + std::to_string(t + 1) + " is '" + have.tasks[t].name +
                                              "', this run names '" + runs[t].spec.name + "'");
        if (arch.img_h == 0) { arch.img_h = have.img_h; arch.img_w = have.img_w; arch.img_c = have.img_c; }
        arch.tasks = have.tasks;
        arch.ffn_sets = have.ffn_sets;
        std::string why;
        if (arch_given && !have.same_architecture(arch, &why))
            fail(opt.resume_path, "checkpoint has another architecture than requested (" + why + ")");
        model = std::move(ck.model);
    } else {
        if (arch.img_h == 0) {   // no --img: the model takes the data's shape
            arch.img_h = runs[0].train.h; arch.img_w = runs[0].train.w; arch.img_c = runs[0].train.c;
        }
        const int classes_flag = arch.tasks[0].num_classes;
        if (multi && classes_flag > 0) fail("", "--classes applies to one task; a multi-task run takes each task's");
        arch.tasks.clear();
        for (const auto& r : runs)
            arch.tasks.push_back(TaskInfo{r.spec.name, classes_flag > 0 ? classes_flag : r.train.num_classes(),
                                          r.train.class_names, {}});
        if (multi) arch.make_supernet();
        input_stats(runs, arch.in_mean, arch.in_std);
        arch.validate(opt.tasks[0].train_path);
        model = std::make_unique<Model>(arch);
        model->init_weights(mix_seed(opt.seed, 0x1417));
        for (auto& h : model->p.heads)
            if (h.router)
                for (int l = 0; l < arch.depth; ++l) h.router[2 * l + 1] = opt.router.init;
    }
    Model& m = *model;
    ViTConfig& cfg = m.cfg;
    for (size_t t = 0; t < runs.size(); ++t) {
        const TaskRun& r = runs[t];
        const int K = cfg.tasks[t].num_classes;
        for (const auto& [ds, path] : {std::pair{&r.train, r.spec.train_path}, std::pair{&r.val, r.spec.val_path}}) {
            if (path.empty()) continue;
            check_fits(cfg, *ds, path);
            if (ds->num_classes() != K)
                fail(path, "dataset has " + std::to_string(ds->num_classes()) + " classes, the model's task " +
                               cfg.tasks[t].name + " " + std::to_string(K));
        }
    }
    for (const auto& r : runs)
        if (r.train.n < r.batch)
            fail(r.spec.train_path, std::to_string(r.train.n) + " images are fewer than one batch of " +
                                        std::to_string(r.batch));
    int64_t spe = 0;   // an epoch is one pass over the task with the most steps per epoch
    int maxB = 0, step_images = 0;
    for (const auto& r : runs) {
        spe = std::max(spe, r.steps_per_epoch);
        maxB = std::max(maxB, r.batch);
        step_images += r.batch;
    }
    const int64_t total = opt.steps > 0 ? opt.steps : int64_t(opt.epochs > 0 ? opt.epochs : 10) * spe;
    const int64_t warmup = opt.warmup >= 0 ? opt.warmup : total / 20;
    const int64_t freeze_at = !multi ? -1 : opt.route_freeze_epoch >= 0 ? int64_t(opt.route_freeze_epoch) * spe
                                                                       : opt.route_freeze_step;

    AdamWConfig ac;
    ac.beta1 = opt.beta1; ac.beta2 = opt.beta2; ac.eps = opt.eps; ac.weight_decay = opt.weight_decay;
    AdamW adam(m.params.size(), ac);
    TrainState st;
    st.seed = opt.seed;
    if (ck.has_train_state) {
        st = ck.state;
        if (st.seed != opt.seed)
            fail(opt.resume_path, "was trained with --seed " + std::to_string(st.seed) + ", not " +
                                      std::to_string(opt.seed));
        warn_changed_options(opt.resume_path, st.train_options, options_json(opt));
        if (int64_t(st.step) > total)
            fail(opt.resume_path, "is at step " + std::to_string(st.step) + ", beyond the " + std::to_string(total) +
                                      " steps of this run");
        adam.m = st.adam_m;
        adam.v = st.adam_v;
        adam.t = st.step;
    }

    // Per-tensor learning-rate multipliers: task-owned FFNs and heads, router logits.
    const float router_mult = opt.router_lr >= 0 ? opt.router_lr / opt.lr : 1.0f;
    // After the freeze the router's rate is zero: frozen routes must not drift from their logits.
    std::vector<float> lr_mult(m.layout.size(), 1.0f), lr_mult_frozen(m.layout.size(), 1.0f);
    for (size_t k = 0; k < m.layout.size(); ++k) {
        const std::string& n = m.layout[k].name;
        for (size_t t = 0; t < runs.size(); ++t) {
            const std::string& tn = cfg.tasks[t].name;
            const bool own_ffn = multi && n.rfind("blocks/", 0) == 0 && n.find("/ffn/" + tn + "/") != std::string::npos;
            if (n == "tasks/" + tn + "/router") {
                lr_mult[k] = router_mult;
                lr_mult_frozen[k] = 0.0f;
            } else if (own_ffn || n.rfind("tasks/" + tn + "/head/", 0) == 0) {
                lr_mult[k] = lr_mult_frozen[k] = runs[t].spec.lr_mult;
            }
        }
    }
    auto harden_all = [&]() {
        for (size_t t = 0; t < runs.size(); ++t) cfg.tasks[t].route = harden_route(m.p.heads[t].router, cfg.depth);
    };

    m.enable_grads();
    DataParallel dp(m, maxB, true);
    std::vector<uint8_t> batch_img(size_t(maxB) * runs[0].train.image_size());
    std::vector<int32_t> batch_lab(maxB);
    std::vector<float> gates, soft;
    if (multi) {
        gates.resize(size_t(cfg.depth) * maxB * 2);
        soft.resize(gates.size());
    }

    std::fprintf(stderr, "ufo-train: %s%s, %zu parameters, %d task%s, %lld steps\n", cfg.describe().c_str(),
                 multi ? " Task-MoE supernet" : "", m.num_params(), int(runs.size()), multi ? "s" : "",
                 (long long)total);
    print_header(opt.json, multi);

    // The parent's checksum is taken now: a resumed run may later overwrite that very file.
    Provenance prov;
    prov.tool = "ufo-train";
    prov.command = opt.command;
    prov.parent = opt.resume_path;
    if (!opt.resume_path.empty()) prov.parent_checksum = fnv1a_file(opt.resume_path);
    const char* kind = multi ? "supernet" : "dense";
    auto save_state = [&](const std::string& path, uint64_t step) {
        if (multi && !st.routes_frozen) harden_all();
        st.log_loss_sum = runs[0].loss_sum; st.log_correct = runs[0].correct;
        st.log_count = runs[0].count; st.log_steps = runs[0].steps;
        st.task_logs.clear();
        for (size_t t = 1; t < runs.size(); ++t)
            st.task_logs.push_back({runs[t].loss_sum, runs[t].correct, runs[t].count, runs[t].steps});
        st.step = step;
        st.adam_m = adam.m;
        st.adam_v = adam.v;
        st.train_options = options_json(opt);
        save_checkpoint(path, kind, m, prov, &st, opt.zstd);
    };

    cli::Progress progress("train", total, "step");
    const auto t0 = std::chrono::steady_clock::now();
    auto interval_start = t0;
    int64_t interval_images = 0;
    const int64_t start = int64_t(st.step);
    // The open log interval's running sums travel in the train state, so that a resumed run
    // prints the log lines of an uninterrupted one.
    runs[0].loss_sum = st.log_loss_sum; runs[0].correct = st.log_correct;
    runs[0].count = st.log_count; runs[0].steps = st.log_steps;
    for (size_t t = 1; t < runs.size() && t - 1 < st.task_logs.size(); ++t) {
        const auto& l = st.task_logs[t - 1];
        runs[t].loss_sum = l.loss_sum; runs[t].correct = l.correct; runs[t].count = l.count; runs[t].steps = l.steps;
    }
    for (int64_t step = start; step < total; ++step) {
        if (int sig = stop_signal()) {
            save_state(ckpt_path, uint64_t(step));
            progress.finish();
            std::fprintf(stderr, "ufo-train: stopped by signal %d at step %lld; checkpoint %s\n", sig,
                         (long long)step, ckpt_path.c_str());
            return 128 + sig;
        }
        if (multi && !st.routes_frozen && freeze_at >= 0 && step >= freeze_at) {
            harden_all();
            st.routes_frozen = true;
            std::fprintf(stderr, "ufo-train: routes frozen at step %lld\n", (long long)step);
        }
        m.zero_grads();
        const float tau = tau_at(opt.router, step);
        for (size_t t = 0; t < runs.size(); ++t) {
            TaskRun& r = runs[t];
            const int B = r.batch;
            fill_batch(r, int(t), step, opt, batch_img.data(), batch_lab.data());
            Active a = multi && st.routes_frozen ? Active::for_task(cfg, int(t)) : Active::full(cfg, int(t));
            if (multi && !st.routes_frozen) {
                router_forward(gates.data(), soft.data(), m.p.heads[t].router, cfg.depth, B, tau, opt.router.hard,
                               opt.router.noise_per_sample, mix_seed(opt.seed, 0x6a7e, uint64_t(step), t));
                a.gates = gates.data();
            }
            const StepResult sr = dp.train_step(m, batch_img.data(), batch_lab.data(), B, a, opt.label_smoothing,
                                                r.spec.weight);
            const float loss = sr.loss;
            const int correct = sr.correct;
            if (a.gates) router_backward(m.g.heads[t].router, dp.d_gates(), soft.data(), cfg.depth, B, tau);
            if (!std::isfinite(loss))
                fail(r.spec.train_path, "training diverged (loss is not finite) at step " + std::to_string(step + 1) +
                                            "; lower --lr");
            r.loss_sum += loss;
            r.correct += correct;
            r.count += B;
            r.steps += 1;
        }
        clip_grad_norm(m.grads, opt.clip);
        const float lr = lr_at(uint64_t(step), uint64_t(total), uint64_t(warmup), opt.lr, opt.min_lr);
        adam.step(m, lr, st.routes_frozen ? &lr_mult_frozen : &lr_mult);
        interval_images += step_images;
        progress.update(step + 1);

        const bool last = step + 1 == total;
        const bool log_now = opt.log_every > 0 ? (step + 1) % opt.log_every == 0 : (step + 1) % spe == 0;
        if (log_now || last) {
            auto now = std::chrono::steady_clock::now();
            const double secs = std::chrono::duration<double>(now - interval_start).count();
            const double img_s = secs > 0 ? interval_images / secs : 0;
            const double elapsed = std::chrono::duration<double>(now - t0).count();
            if (multi && !st.routes_frozen) harden_all();   // validation runs each task's argmax route
            progress.finish();
            for (size_t t = 0; t < runs.size(); ++t) {
                TaskRun& r = runs[t];
                const bool has_val = !r.spec.val_path.empty();
                LogRow row{step + 1, double(step + 1) / spe, lr, r.loss_sum / std::max<int64_t>(1, r.steps),
                           double(r.correct) / std::max<int64_t>(1, r.count), 0, 0, img_s, elapsed, has_val};
                if (has_val) {
                    EvalResult e = evaluate(m, dp, r.val, Active::for_task(cfg, int(t)));
                    row.val_loss = e.loss;
                    row.val_acc = e.accuracy;
                }
                print_row(row, multi ? &cfg.tasks[t] : nullptr, multi ? p_own_of(m, int(t)) : std::vector<float>{}, opt.json);
                r.loss_sum = 0;
                r.correct = r.count = r.steps = 0;
            }
            interval_start = std::chrono::steady_clock::now();
            interval_images = 0;
        }
        if (opt.ckpt_every > 0 && (step + 1) % opt.ckpt_every == 0 && !last) save_state(ckpt_path, uint64_t(step + 1));
        if (opt.stop_after > 0 && step + 1 - start >= opt.stop_after && !last) {
            save_state(ckpt_path, uint64_t(step + 1));
            std::fprintf(stderr, "ufo-train: stopped after %lld steps as asked; checkpoint %s\n",
                         (long long)opt.stop_after, ckpt_path.c_str());
            return 0;
        }
    }
    progress.finish();
    if (multi && !st.routes_frozen) harden_all();
    save_checkpoint(opt.out_path, kind, m, prov, nullptr, opt.zstd);
    std::fprintf(stderr, "ufo-train: wrote %s\n", opt.out_path.c_str());
    return 0;
}

}  // namespace ufo

// train.cpp — single-task training: data order, augmentation, AdamW, logging, checkpoints,
// exact resume and clean stops on SIGINT/SIGTERM.
#include "train.h"

#include "atomic_file.h"
#include "blas.h"
#include "checkpoint.h"
#include "cli.h"
#include "common.h"
#include "dataset.h"
#include "infer.h"
#include "optim.h"
#include "rng.h"

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

void print_header(bool json) {
    if (!json) std::printf("step\tepoch\tlr\ttrain_loss\ttrain_acc\tval_loss\tval_acc\timg_per_s\telapsed_s\n");
}

void print_row(const LogRow& r, bool json) {
    if (json) {
        nlohmann::json j = {{"step", r.step}, {"epoch", r.epoch}, {"lr", r.lr}, {"train_loss", r.loss},
                            {"train_acc", r.acc}, {"img_per_s", r.img_s}, {"elapsed_s", r.elapsed}};
        j["val_loss"] = r.has_val ? nlohmann::json(r.val_loss) : nlohmann::json(nullptr);
        j["val_acc"] = r.has_val ? nlohmann::json(r.val_acc) : nlohmann::json(nullptr);
        std::printf("%s\n", j.dump().c_str());
    } else {
        char vl[32] = "nan", va[32] = "nan";
        if (r.has_val) {
            std::snprintf(vl, sizeof vl, "%.6f", r.val_loss);
            std::snprintf(va, sizeof va, "%.6f", r.val_acc);
        }
        std::printf("%lld\t%.3f\t%.6g\t%.6f\t%.6f\t%s\t%s\t%.1f\t%.1f\n", (long long)r.step, r.epoch, r.lr, r.loss,
                    r.acc, vl, va, r.img_s, r.elapsed);
    }
    std::fflush(stdout);
}

}  // namespace

void install_stop_signals() {
    std::signal(SIGINT, on_stop_signal);
    std::signal(SIGTERM, on_stop_signal);
}

int stop_signal() { return g_stop.load(); }

int train_single_task(const TrainOptions& opt, ViTConfig arch, bool arch_given) {
    if (opt.threads > 0) set_threads(opt.threads);
    if (opt.out_path == "-") fail("-", "the model cannot go to stdout, which carries the training log");
    const std::string ckpt_path = !opt.ckpt_path.empty() ? opt.ckpt_path
                                  : opt.out_path.size() > 3 && opt.out_path.compare(opt.out_path.size() - 3, 3, ".h5") == 0
                                      ? opt.out_path.substr(0, opt.out_path.size() - 3) + ".ckpt.h5"
                                      : opt.out_path + ".ckpt";
    { AtomicPath probe(opt.out_path); }   // fail on a bad output path before any work
    { AtomicPath probe(ckpt_path); }

    Dataset train = load_dataset(opt.train_path);
    Dataset val;
    const bool has_val = !opt.val_path.empty();
    if (has_val) val = load_dataset(opt.val_path);

    // Architecture: the checkpoint's when resuming, else flags/preset fitted to the data.
    LoadedCheckpoint ck;
    std::unique_ptr<Model> model;
    if (!opt.resume_path.empty()) {
        ck = load_checkpoint(opt.resume_path, true);
        if (!ck.has_train_state) fail(opt.resume_path, "has no /train_state to resume from");
        if (ck.kind != "dense") fail(opt.resume_path, "is a " + ck.kind + " checkpoint, not a dense one");
        const ViTConfig& have = ck.model->cfg;
        if (arch.img_h == 0) { arch.img_h = have.img_h; arch.img_w = have.img_w; arch.img_c = have.img_c; }
        if (arch.tasks[0].num_classes <= 0) arch.tasks = have.tasks;
        std::string why;
        if (arch_given && !ck.model->cfg.same_architecture(arch, &why))
            fail(opt.resume_path, "checkpoint has another architecture than requested (" + why + ")");
        model = std::move(ck.model);
    } else {
        arch.tasks[0].name = opt.task_name;
        if (arch.img_h == 0) {   // no --img: the model takes the data's shape
            arch.img_h = train.h; arch.img_w = train.w; arch.img_c = train.c;
        }
        if (arch.tasks[0].num_classes <= 0) arch.tasks[0].num_classes = train.num_classes();
        arch.tasks[0].class_names = train.class_names;
        if (arch.tasks[0].num_classes != train.num_classes())
            fail(opt.train_path, "dataset has " + std::to_string(train.num_classes()) + " classes but the model " +
                                     std::to_string(arch.tasks[0].num_classes));
        channel_stats(train, arch.in_mean, arch.in_std);
        arch.validate(opt.train_path);
        model = std::make_unique<Model>(arch);
        model->init_weights(mix_seed(opt.seed, 0x1417));
    }
    Model& m = *model;
    const ViTConfig& cfg = m.cfg;
    check_fits(cfg, train, opt.train_path);
    if (train.num_classes() != cfg.tasks[0].num_classes)
        fail(opt.train_path, "dataset has " + std::to_string(train.num_classes()) + " classes, the model " +
                                 std::to_string(cfg.tasks[0].num_classes));
    if (has_val) {
        check_fits(cfg, val, opt.val_path);
        if (val.num_classes() != cfg.tasks[0].num_classes)
            fail(opt.val_path, "dataset has " + std::to_string(val.num_classes()) + " classes, the model " +
                                   std::to_string(cfg.tasks[0].num_classes));
    }
    const int B = opt.batch;
    if (B < 1) fail("", "option --batch must be positive");
    if (train.n < B)
        fail(opt.train_path, std::to_string(train.n) + " images are fewer than one batch of " + std::to_string(B));
    const int64_t spe = train.n / B;   // the last partial batch of an epoch is dropped
    const int64_t total = opt.steps > 0 ? opt.steps : int64_t(opt.epochs > 0 ? opt.epochs : 10) * spe;
    const int64_t warmup = opt.warmup >= 0 ? opt.warmup : total / 20;
    const int K = cfg.tasks[0].num_classes;

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
        adam.m = st.adam_m;
        adam.v = st.adam_v;
        adam.t = st.step;
    }
    m.enable_grads();
    Activations act;
    act.allocate(cfg, B, true);
    const Active active = Active::full(cfg);
    std::vector<uint8_t> batch_img(size_t(B) * train.image_size());
    std::vector<int32_t> batch_lab(B);
    std::vector<int64_t> perm(train.n);
    int64_t perm_epoch = -1;

    std::fprintf(stderr, "ufo-train: %s, %zu parameters, %lld images, %lld steps of %d\n", cfg.describe().c_str(),
                 m.num_params(), (long long)train.n, (long long)total, B);
    print_header(opt.json);

    // The parent's checksum is taken now: a resumed run may later overwrite that very file.
    Provenance prov{"ufo-train", opt.command, opt.resume_path, 0};
    if (!opt.resume_path.empty()) prov.parent_checksum = fnv1a_file(opt.resume_path);
    auto save_state = [&](const std::string& path, uint64_t step) {
        st.step = step;
        st.adam_m = adam.m;
        st.adam_v = adam.v;
        st.train_options = options_json(opt);
        save_checkpoint(path, "dense", m, prov, &st, opt.zstd);
    };

    cli::Progress progress("train", total, "step");
    const auto t0 = std::chrono::steady_clock::now();
    auto interval_start = t0;
    int64_t interval_images = 0;
    const int64_t start = int64_t(st.step);
    for (int64_t step = start; step < total; ++step) {
        if (int sig = stop_signal()) {
            save_state(ckpt_path, uint64_t(step));
            progress.finish();
            std::fprintf(stderr, "ufo-train: stopped by signal %d at step %lld; checkpoint %s\n", sig,
                         (long long)step, ckpt_path.c_str());
            return 128 + sig;
        }
        const int64_t epoch = step / spe, k = step % spe;
        if (epoch != perm_epoch) {   // the order of an epoch depends only on (seed, epoch)
            std::iota(perm.begin(), perm.end(), 0);
            Rng r(mix_seed(opt.seed, 0x5eed, uint64_t(epoch)));
            for (int64_t i = train.n - 1; i > 0; --i) std::swap(perm[i], perm[r.below(uint64_t(i) + 1)]);
            perm_epoch = epoch;
        }
        const size_t isz = train.image_size();
#pragma omp parallel for schedule(static)
        for (int b = 0; b < B; ++b) {
            const int64_t idx = perm[k * B + b];
            batch_lab[b] = train.labels[idx];
            if (opt.augment.any())
                augment_image(batch_img.data() + b * isz, train.image(idx), train.h, train.w, train.c, opt.augment,
                              mix_seed(opt.seed, 0xa06, uint64_t(step), uint64_t(b)));
            else
                std::copy(train.image(idx), train.image(idx) + isz, batch_img.data() + b * isz);
        }
        m.zero_grads();
        m.forward(act, batch_img.data(), B, active);
        int correct = 0;
        const float loss = m.loss(act, batch_lab.data(), B, K, opt.label_smoothing, true, 1.0f, &correct);
        m.backward(act, B, active);
        clip_grad_norm(m.grads, opt.clip);
        const float lr = lr_at(uint64_t(step), uint64_t(total), uint64_t(warmup), opt.lr, opt.min_lr);
        adam.step(m, lr);
        if (!std::isfinite(loss)) fail(opt.train_path, "training diverged (loss is not finite) at step " +
                                                           std::to_string(step + 1) + "; lower --lr");
        st.log_loss_sum += loss;
        st.log_correct += correct;
        st.log_count += B;
        st.log_steps += 1;
        interval_images += B;
        progress.update(step + 1);

        const bool last = step + 1 == total;
        const bool log_now = opt.log_every > 0 ? (step + 1) % opt.log_every == 0 : (step + 1) % spe == 0;
        if (log_now || last) {
            auto now = std::chrono::steady_clock::now();
            double secs = std::chrono::duration<double>(now - interval_start).count();
            LogRow row{step + 1, double(step + 1) / spe, lr, st.log_loss_sum / std::max<int64_t>(1, st.log_steps),
                       double(st.log_correct) / std::max<int64_t>(1, st.log_count), 0, 0,
                       secs > 0 ? interval_images / secs : 0, std::chrono::duration<double>(now - t0).count(),
                       has_val};
            if (has_val) {
                EvalResult e = evaluate(m, act, val, active);
                row.val_loss = e.loss;
                row.val_acc = e.accuracy;
            }
            progress.finish();
            print_row(row, opt.json);
            st.log_loss_sum = 0;
            st.log_correct = st.log_count = st.log_steps = 0;
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
    save_checkpoint(opt.out_path, "dense", m, prov, nullptr, opt.zstd);
    std::fprintf(stderr, "ufo-train: wrote %s\n", opt.out_path.c_str());
    return 0;
}

}  // namespace ufo

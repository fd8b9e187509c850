// run_state.cpp — signals and the options record of a training run.
#include "train/run_state.h"

#include "dist/process_group.h"

#include <nlohmann/json.hpp>

#include <atomic>
#include <csignal>
#include <cstdio>

namespace ufo {

namespace {
std::atomic<int> g_stop{0};   // the one piece of signal state; a handler can do nothing else
extern "C" void on_stop_signal(int sig) { g_stop.store(sig); }
}  // namespace

void install_stop_signals() {
    std::signal(SIGINT, on_stop_signal);
    std::signal(SIGTERM, on_stop_signal);
}

int stop_signal() { return g_stop.load(); }

std::string options_json(const TrainOptions& o) {
    nlohmann::json j = {{"train", o.train_path}, {"val", o.val_path}, {"epochs", o.epochs}, {"steps", o.steps},
                        {"batch", o.batch}, {"lr", o.lr}, {"min_lr", o.min_lr}, {"warmup", o.warmup},
                        {"weight_decay", o.weight_decay}, {"beta1", o.beta1}, {"beta2", o.beta2}, {"eps", o.eps},
                        {"clip", o.clip}, {"label_smoothing", o.label_smoothing},
                        {"crop_pad", o.augment.crop_pad}, {"hflip", o.augment.hflip},
                        {"erase", o.augment.erase_prob}, {"seed", o.seed}, {"threads", o.threads}};
    if (!o.init_path.empty()) {
        j["init"] = o.init_path;
        j["new_head"] = o.new_head;
    }
    if (!o.freeze.empty()) {
        nlohmann::json parts = nlohmann::json::array();
        for (Part p : o.freeze) parts.push_back(part_name(p));
        j["freeze"] = parts;
    }
    if (o.distill.on()) {
        const DistillOptions& d = o.distill;
        j["distill"] = {{"teacher", d.teacher.path}, {"teacher_task", d.teacher.task}, {"teacher_arch", d.teacher.arch},
                        {"soft_labels", d.teacher.soft_labels}, {"alpha", d.alpha}, {"temperature", d.temperature}};
    }
    if (o.elastic.on) {
        const ElasticOptions& e = o.elastic;
        j["elastic"] = {{"depth", e.depth}, {"heads", e.heads}, {"mlp_ratio", e.mlp_ratio},
                        {"sandwich_random", e.sandwich_random}, {"kd_weight", e.kd_weight},
                        {"kd_temperature", e.kd_temperature}, {"sort_importance", e.sort_importance}};
    }
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

void warn_changed_options(const std::string& tool, const std::string& ckpt, const std::string& before,
                          const std::string& now) {
    nlohmann::json a = nlohmann::json::parse(before, nullptr, false), b = nlohmann::json::parse(now);
    if (a.is_discarded() || !a.is_object()) return;
    std::string diff;
    for (auto it = b.begin(); it != b.end(); ++it)
        if (a.contains(it.key()) && a[it.key()] != it.value())
            diff += (diff.empty() ? "" : ", ") + it.key() + " " + a[it.key()].dump() + " -> " + it.value().dump();
    if (!diff.empty())
        if (dist::root()) std::fprintf(stderr, "%s: warning: %s was written with other options (%s); the resumed run will "
                             "not match an uninterrupted one\n", tool.c_str(), ckpt.c_str(), diff.c_str());
}

std::string checkpoint_path(const TrainOptions& o) {
    if (!o.ckpt_path.empty()) return o.ckpt_path;
    const std::string& out = o.out_path;
    if (out.size() > 3 && out.compare(out.size() - 3, 3, ".h5") == 0) return out.substr(0, out.size() - 3) + ".ckpt.h5";
    return out + ".ckpt";
}

}  // namespace ufo

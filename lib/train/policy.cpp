// policy.cpp — the dense and Task-MoE step policies.
#include "train/policy.h"

#include "dist/process_group.h"
#include "base/common.h"
#include "base/rng.h"
#include "nn/elastic.h"
#include "nn/vit.h"

#include <cstdio>

namespace ufo {

Active StepPolicy::eval_active(const Network& net, int task) const {
    Active a;
    a.task = task;
    if (auto* vit = dynamic_cast<const ViT*>(&net)) a = active_for_task(vit->cfg, task);
    net.resolve(a);
    return a;
}

namespace {

std::vector<float> base_mults(const Network& net, const std::vector<char>& frozen) {
    std::vector<float> m(net.layout.size(), 1.0f);
    for (size_t k = 0; k < m.size(); ++k)
        if (frozen[k] || !net.layout[k].role.trained()) m[k] = 0.0f;
    return m;
}

class DensePolicy : public StepPolicy {
public:
    DensePolicy(const Network& net, const std::vector<char>& frozen) : mults_(base_mults(net, frozen)) {}
    const char* name() const override { return "dense"; }
    void passes(const Network& net, int64_t, std::vector<Pass>& out) override {
        Pass p;
        p.task = 0;
        p.active = eval_active(net, 0);
        out.push_back(std::move(p));
    }
    const std::vector<float>& lr_mults() const override { return mults_; }

private:
    std::vector<float> mults_;
};

class DistillPolicy : public DensePolicy {
public:
    DistillPolicy(const Network& net, float alpha, float T, const std::vector<char>& frozen)
        : DensePolicy(net, frozen), alpha_(alpha), T_(T) {}
    const char* name() const override { return "distill"; }
    void passes(const Network& net, int64_t step, std::vector<Pass>& out) override {
        DensePolicy::passes(net, step, out);
        Pass& p = out.back();
        p.from_teacher = alpha_ > 0;
        p.alpha = alpha_;
        p.T = T_;
    }

private:
    float alpha_, T_;
};

class TaskMoEPolicy : public StepPolicy {
public:
    TaskMoEPolicy(const Network& net, const TaskMoEOptions& o, const std::vector<char>& frozen) : o_(o) {
        const auto& L = net.layout;
        mults_ = base_mults(net, frozen);
        for (size_t k = 0; k < L.size(); ++k) {
            const Role& r = L[k].role;
            if (mults_[k] == 0.0f) continue;
            if (r.kind == Kind::Router) mults_[k] = o.router_mult;
            else if (r.task >= 0 && size_t(r.task) < o.task_lr_mult.size()) mults_[k] = o.task_lr_mult[size_t(r.task)];
        }
        // After the freeze the router's rate is zero: fixed routes must not drift from their logits.
        frozen_mults_ = mults_;
        for (size_t k = 0; k < L.size(); ++k)
            if (L[k].role.kind == Kind::Router) frozen_mults_[k] = 0.0f;
    }
    const char* name() const override { return "task-moe"; }
    void begin(Network& net, int64_t) override { vit(net); }
    void before_step(Network& net, int64_t step) override {
        if (!frozen_ && o_.freeze_at >= 0 && step >= o_.freeze_at) {
            settle(net);
            frozen_ = true;
            if (dist::root()) std::fprintf(stderr, "ufo-train: routes frozen at step %lld\n", (long long)step);
        }
    }
    void passes(const Network& net, int64_t step, std::vector<Pass>& out) override {
        const ViT& v = vit(net);
        for (int t = 0; t < int(v.cfg.tasks.size()); ++t) {
            Pass p;
            p.task = t;
            p.weight = size_t(t) < o_.task_weight.size() ? o_.task_weight[size_t(t)] : 1.0f;
            if (frozen_) {
                p.active = active_for_task(v.cfg, t);
            } else {
                p.active = active_full(v.cfg, t);
                auto& r = p.active.routing;
                r.on = true;
                r.tau = tau_at(o_.router, step);
                r.hard = o_.router.hard;
                r.per_sample = o_.router.noise_per_sample;
                r.seed = o_.seed;
                r.step = step;
            }
            out.push_back(std::move(p));
        }
    }
    const std::vector<float>& lr_mults() const override { return frozen_ ? frozen_mults_ : mults_; }
    // Validation and checkpoints use each task's argmax route.
    void settle(Network& net) override {
        if (frozen_) return;
        ViT& v = vit(net);
        for (size_t t = 0; t < v.cfg.tasks.size(); ++t)
            v.cfg.tasks[t].route = harden_route(v.p.heads[t].router, v.cfg.depth);
    }
    void describe_task(const Network& net, int t, std::vector<std::string>& route,
                       std::vector<float>& p_own) const override {
        const ViT& v = vit(net);
        for (int x : v.cfg.tasks[size_t(t)].route) route.push_back(x ? "own" : "shared");
        for (int l = 0; l < v.cfg.depth; ++l) {
            float p[2];
            route_probs(p, v.p.heads[size_t(t)].router + 2 * l);
            p_own.push_back(p[1]);
        }
    }
    bool routes_frozen() const override { return frozen_; }
    void set_routes_frozen(bool f) override { frozen_ = f; }

private:
    static ViT& vit(Network& n) {
        auto* v = dynamic_cast<ViT*>(&n);
        if (!v || !v->cfg.is_supernet()) fail("", "Task-MoE training needs a ViT supernet");
        return *v;
    }
    static const ViT& vit(const Network& n) { return vit(const_cast<Network&>(n)); }

    TaskMoEOptions o_;
    std::vector<float> mults_, frozen_mults_;
    bool frozen_ = false;
};

class SandwichPolicy : public StepPolicy {
public:
    SandwichPolicy(const Network& net, const SandwichOptions& o, const std::vector<char>& frozen)
        : o_(o), mults_(base_mults(net, frozen)) {
        const auto* v = dynamic_cast<const ViT*>(&net);
        if (!v || !v->cfg.is_elastic()) fail("", "elastic training needs a ViT with an elastic space");
    }
    const char* name() const override { return "sandwich"; }
    void passes(const Network& net, int64_t step, std::vector<Pass>& out) override {
        const ViTConfig& c = static_cast<const ViT&>(net).cfg;
        Pass largest;
        largest.active = largest_arch(c);
        largest.teacher = o_.kd_weight > 0;
        largest.T = o_.kd_temperature;
        out.push_back(largest);
        auto student = [&](Active a) {
            Pass p;
            p.active = std::move(a);
            p.from_teacher = o_.kd_weight > 0;
            p.alpha = o_.kd_weight;
            p.T = o_.kd_temperature;
            out.push_back(std::move(p));
        };
        student(smallest_arch(c));
        for (int k = 0; k < o_.random; ++k) {
            Rng rng(mix_seed(o_.seed, 0x5A4DC4, uint64_t(step), uint64_t(k)));
            student(sample_arch(c, rng));
        }
    }
    const std::vector<float>& lr_mults() const override { return mults_; }

private:
    SandwichOptions o_;
    std::vector<float> mults_;
};

}  // namespace

std::unique_ptr<StepPolicy> make_sandwich_policy(const Network& net, const SandwichOptions& o,
                                                 const std::vector<char>& frozen) {
    return std::make_unique<SandwichPolicy>(net, o, frozen);
}

std::unique_ptr<StepPolicy> make_distill_policy(const Network& net, float alpha, float T, const std::vector<char>& frozen) {
    return std::make_unique<DistillPolicy>(net, alpha, T, frozen);
}

std::unique_ptr<StepPolicy> make_dense_policy(const Network& net, const std::vector<char>& frozen) {
    return std::make_unique<DensePolicy>(net, frozen);
}

std::unique_ptr<StepPolicy> make_task_moe_policy(const Network& net, const TaskMoEOptions& o,
                                                 const std::vector<char>& frozen) {
    return std::make_unique<TaskMoEPolicy>(net, o, frozen);
}

}  // namespace ufo

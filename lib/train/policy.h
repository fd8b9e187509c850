// policy.h — step policies: what one training step runs. A policy returns the passes of a step
// (which sub-network, on which task's batch, against which targets, with what loss weight);
// the trainer runs them, sums their gradients and takes one optimiser step. Dense and Task-MoE
// training live here; sandwich-rule and distillation policies are further implementations of
// the same interface.
#pragma once
#include "nn/network.h"
#include "nn/router.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace ufo {

struct Pass {
    int task = 0;              // whose batch (and head)
    Active active;             // the sub-network; routing filled in by the policy
    float weight = 1.0f;       // loss weight
    const float* soft = nullptr;   // teacher probabilities [B,K] at temperature T (distillation)
    float alpha = 0.0f, T = 1.0f;
    // In-place distillation: a teacher pass's predictions at temperature T become the soft
    // targets of the later passes of the step marked from_teacher (same batch; no gradient
    // flows into the teacher through them).
    bool teacher = false, from_teacher = false;
};

class StepPolicy {
public:
    virtual ~StepPolicy() = default;
    virtual const char* name() const = 0;
    // Called once before the first step of this run (fresh or resumed at `start`).
    virtual void begin(Network& net, int64_t start) {}
    // Called before each step; may change the network (e.g. fix routes) and print a notice.
    virtual void before_step(Network& net, int64_t step) {}
    // The passes of `step`, written into `out` (cleared by the caller).
    virtual void passes(const Network& net, int64_t step, std::vector<Pass>& out) = 0;
    // Per-tensor learning-rate multipliers for this step (one per layout tensor).
    virtual const std::vector<float>& lr_mults() const = 0;
    // The sub-network validation, checkpoints and logs use for a task.
    virtual Active eval_active(const Network& net, int task) const;
    // Brings the network into the state a checkpoint stores (e.g. routes = router argmax).
    virtual void settle(Network& net) {}
    // Extra per-task log fields (e.g. route and p(own)); empty by default.
    virtual void describe_task(const Network& net, int task, std::vector<std::string>& route,
                               std::vector<float>& p_own) const {}
    // Everything a resume must restore beyond the weights and moments.
    virtual bool routes_frozen() const { return false; }
    virtual void set_routes_frozen(bool) {}
};

// One task, the whole network, weight 1. Frozen parts (--freeze) get rate 0.
std::unique_ptr<StepPolicy> make_dense_policy(const Network& net, const std::vector<char>& frozen);

struct TaskMoEOptions {
    RouterConfig router;
    float router_mult = 1.0f;           // router logits' rate / base rate
    std::vector<float> task_weight;     // loss weight per task
    std::vector<float> task_lr_mult;    // rate multiplier of a task's own FFNs and head
    int64_t freeze_at = -1;             // step from which routes are fixed (-1: never)
    uint64_t seed = 0;
};
// One pass per task, each on its own batch: before freeze_at, every block mixes the shared
// and the task's own FFN with Gumbel-softmax gates drawn from the task's router; from then on
// each task runs its hardened route and the router no longer moves.
std::unique_ptr<StepPolicy> make_task_moe_policy(const Network& net, const TaskMoEOptions& o,
                                                 const std::vector<char>& frozen);

struct SandwichOptions {
    int random = 2;              // random sub-networks per step, besides the largest and smallest
    float kd_weight = 1.0f;      // alpha of the smaller passes' loss (soft targets vs labels)
    float kd_temperature = 1.0f;
    uint64_t seed = 0;
};
// One-for-All elastic training with the sandwich rule: each step runs the largest
// sub-network (on the labels; the teacher), the smallest, and `random` ones drawn uniformly
// from the space, all on the same batch; the smaller ones learn the largest's soft
// predictions (in-place distillation). Gradients of all passes are summed. The draws of a
// step depend only on (seed, step), so a resumed run draws what an uninterrupted one would.
// Distillation from a separate teacher: one pass of the whole student on the labels mixed
// with the teacher's soft predictions of the same batch (alpha, T); alpha 0 is dense training.
std::unique_ptr<StepPolicy> make_distill_policy(const Network& net, float alpha, float T, const std::vector<char>& frozen);

std::unique_ptr<StepPolicy> make_sandwich_policy(const Network& net, const SandwichOptions& o,
                                                 const std::vector<char>& frozen);

}  // namespace ufo

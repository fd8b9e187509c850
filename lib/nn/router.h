// router.h — Task-MoE routing: Gumbel-softmax gates from router logits, their straight-through
// gradient, the temperature schedule and route hardening.
//
// Per task t and block l the router holds logits alpha[l] = (shared, own). A training step
// draws Gumbel noise G, forms y = softmax((alpha + G) / tau) and, in hard mode, uses the one-hot
// argmax of y as the gate while the gradient flows through y (straight-through estimator).
#pragma once
#include <cstdint>
#include <vector>

namespace ufo {

struct RouterConfig {
    float tau_start = 5.0f, tau_end = 5.0f;   // temperature; fixed when equal (UFO uses 5)
    int64_t tau_anneal_steps = 0;             // linear tau_start -> tau_end over these steps
    bool noise_per_sample = true;             // false: one Gumbel draw per batch and block
    bool hard = true;                         // false: soft gates (used by the gradient checks)
    float init = 0.0f;                        // initial logit of the own FFN (shared stays 0)
};

float tau_at(const RouterConfig& rc, int64_t step);

// The Gumbel noise (shared, own) of one sample at one block: a pure function of (seed, step,
// task, block, sample), so a batch split across threads or processes draws the noise of the
// whole batch. With per-batch noise every sample uses sample index 0.
void gumbel_noise(float g[2], uint64_t seed, int64_t step, int task, int block, int64_t sample);

// gates, soft [depth,B,2]; alpha [depth,2]. Row b of the batch is global sample first_sample + b.
void router_forward(float* gates, float* soft, const float* alpha, int depth, int B, float tau, bool hard,
                    bool noise_per_sample, uint64_t seed, int64_t step, int task, int64_t first_sample);
// dalpha [depth,2] +=, from dgates [depth,B,2] (= dL/dy under straight-through) and soft.
void router_backward(float* dalpha, const float* dgates, const float* soft, int depth, int B, float tau);

// p(shared), p(own) of one block: softmax(alpha) without noise.
void route_probs(float* p2, const float* alpha2);
// Argmax route per block (0 = shared, 1 = own); ties go to the shared FFN.
std::vector<int> harden_route(const float* alpha, int depth);

}  // namespace ufo

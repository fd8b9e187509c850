// optim.h — AdamW with decoupled weight decay, the learning-rate schedule and gradient clipping.
#pragma once
#include "nn/network.h"

#include <cstdint>
#include <vector>

namespace ufo {

struct AdamWConfig {
    float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
    float weight_decay = 0.05f;   // applied only to tensors whose ParamInfo::decay is set
};

struct AdamW {
    AdamWConfig cfg;
    std::vector<float> m, v;      // [num params], parameter layout order
    uint64_t t = 0;               // steps taken (bias correction)

    AdamW(size_t n, AdamWConfig c) : cfg(c), m(n, 0.0f), v(n, 0.0f) {}
    // p <- p (1 - lr wd) - lr mhat / (sqrt(vhat) + eps), as torch.optim.AdamW, for every
    // tensor of `layout` (params, grads, m and v share it). lr_mult (optional, one per layout
    // tensor) scales the rate per tensor; a tensor whose rate is 0 (frozen, statistics) is
    // left exactly as it is, moments included.
    void step(const std::vector<ParamInfo>& layout, float* params, const float* grads, float lr,
              const std::vector<float>* lr_mult = nullptr);
};

// Linear warm-up from 0 to base over `warmup` steps, then cosine from base down to min_lr, which
// the last step (total - 1) reaches.
float lr_at(uint64_t step, uint64_t total, uint64_t warmup, float base, float min_lr);

// Scales grads so that their global L2 norm is at most max_norm (<= 0: no clipping).
// Returns the norm before clipping.
float clip_grad_norm(std::vector<float>& grads, float max_norm);

}  // namespace ufo

// optim.cpp — AdamW, schedule, clipping.
#include "train/optim.h"

#include <algorithm>
#include <cmath>

namespace ufo {

void AdamW::step(const std::vector<ParamInfo>& layout, float* params, const float* grads, float lr,
                 const std::vector<float>* lr_mult) {
    ++t;
    const float b1 = cfg.beta1, b2 = cfg.beta2, eps = cfg.eps;
    const float c1 = 1.0f / (1.0f - std::pow(b1, float(t))), c2 = 1.0f / (1.0f - std::pow(b2, float(t)));
    for (size_t k = 0; k < layout.size(); ++k) {
        const ParamInfo& info = layout[k];
        const float rate = lr * (lr_mult ? (*lr_mult)[k] : 1.0f) * (info.role.trained() ? 1.0f : 0.0f);
        if (rate == 0.0f) continue;
        const float keep = 1.0f - rate * (info.decay() ? cfg.weight_decay : 0.0f);
        float* p = params + info.offset;
        const float* g = grads + info.offset;
        float* mm = m.data() + info.offset;
        float* vv = v.data() + info.offset;
        const long n = long(info.size);
#pragma omp parallel for simd schedule(static) if (n > 65536)
        for (long i = 0; i < n; ++i) {
            mm[i] = b1 * mm[i] + (1.0f - b1) * g[i];
            vv[i] = b2 * vv[i] + (1.0f - b2) * g[i] * g[i];
            p[i] = p[i] * keep - rate * (mm[i] * c1) / (std::sqrt(vv[i] * c2) + eps);
        }
    }
}

float lr_at(uint64_t step, uint64_t total, uint64_t warmup, float base, float min_lr) {
    if (warmup > 0 && step < warmup) return base * float(step + 1) / float(warmup);
    if (total <= warmup + 1) return base;
    double progress = double(step - warmup) / double(total - 1 - warmup);
    if (progress > 1.0) progress = 1.0;
    return float(min_lr + 0.5 * (base - min_lr) * (1.0 + std::cos(M_PI * progress)));
}

float clip_grad_norm(std::vector<float>& grads, float max_norm) {
    double ss = 0.0;
    const long n = long(grads.size());
    // Fixed chunking keeps the sum bitwise independent of the thread count.
    const long chunk = 1 << 16, nchunks = (n + chunk - 1) / chunk;
    std::vector<double> part(nchunks, 0.0);
#pragma omp parallel for schedule(static)
    for (long c = 0; c < nchunks; ++c) {
        double s = 0.0;
        for (long i = c * chunk; i < std::min(n, (c + 1) * chunk); ++i) s += double(grads[i]) * grads[i];
        part[c] = s;
    }
    for (double s : part) ss += s;
    const float norm = float(std::sqrt(ss));
    if (max_norm > 0 && norm > max_norm) {
        const float scale = max_norm / (norm + 1e-6f);
#pragma omp parallel for simd schedule(static)
        for (long i = 0; i < n; ++i) grads[i] *= scale;
    }
    return norm;
}

}  // namespace ufo

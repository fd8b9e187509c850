// router.cpp — Gumbel-softmax Task-MoE gates and their straight-through gradient.
#include "nn/router.h"

#include "base/rng.h"

#include <algorithm>
#include <cmath>

namespace ufo {

float tau_at(const RouterConfig& rc, int64_t step) {
    if (rc.tau_anneal_steps <= 0) return rc.tau_start;
    if (step >= rc.tau_anneal_steps) return rc.tau_end;
    const double f = double(step) / double(rc.tau_anneal_steps);
    return float(rc.tau_start + f * (rc.tau_end - rc.tau_start));
}

namespace {
// Standard Gumbel from a uniform in (0,1): -log(-log u). u is kept away from 0 and 1.
float gumbel(Rng& r) {
    const double u = (double(r.next() >> 11) + 0.5) * (1.0 / 9007199254740992.0);
    return float(-std::log(-std::log(u)));
}
}  // namespace

void gumbel_noise(float g[2], uint64_t seed, int64_t step, int task, int block, int64_t sample) {
    Rng r(mix_seed(mix_seed(seed, 0x6a7e, uint64_t(step), uint64_t(task)), uint64_t(block), uint64_t(sample)));
    g[0] = gumbel(r);
    g[1] = gumbel(r);
}

void router_forward(float* gates, float* soft, const float* alpha, int depth, int B, float tau, bool hard,
                    bool noise_per_sample, uint64_t seed, int64_t step, int task, int64_t first_sample) {
    for (int l = 0; l < depth; ++l) {
        float g[2] = {0.0f, 0.0f};
        if (!noise_per_sample) gumbel_noise(g, seed, step, task, l, 0);
        for (int b = 0; b < B; ++b) {
            if (noise_per_sample) gumbel_noise(g, seed, step, task, l, first_sample + b);
            const float z0 = (alpha[2 * l] + g[0]) / tau, z1 = (alpha[2 * l + 1] + g[1]) / tau;
            const float m = std::max(z0, z1);
            const float e0 = std::exp(z0 - m), e1 = std::exp(z1 - m);
            float* y = soft + (size_t(l) * B + b) * 2;
            y[0] = e0 / (e0 + e1);
            y[1] = e1 / (e0 + e1);
            float* out = gates + (size_t(l) * B + b) * 2;
            if (hard) {
                const int k = y[1] > y[0] ? 1 : 0;
                out[0] = k == 0 ? 1.0f : 0.0f;
                out[1] = k == 1 ? 1.0f : 0.0f;
            } else {
                out[0] = y[0];
                out[1] = y[1];
            }
        }
    }
}

void router_backward(float* dalpha, const float* dgates, const float* soft, int depth, int B, float tau) {
    for (int l = 0; l < depth; ++l) {
        double d0 = 0.0, d1 = 0.0;
        for (int b = 0; b < B; ++b) {
            const float* y = soft + (size_t(l) * B + b) * 2;
            const float* dy = dgates + (size_t(l) * B + b) * 2;
            // softmax Jacobian: dz_e = y_e (dy_e - sum_k y_k dy_k); z = (alpha + G) / tau
            const double s = double(y[0]) * dy[0] + double(y[1]) * dy[1];
            d0 += y[0] * (dy[0] - s);
            d1 += y[1] * (dy[1] - s);
        }
        dalpha[2 * l] += float(d0 / tau);
        dalpha[2 * l + 1] += float(d1 / tau);
    }
}

void route_probs(float* p2, const float* a2) {
    const float m = std::max(a2[0], a2[1]);
    const float e0 = std::exp(a2[0] - m), e1 = std::exp(a2[1] - m);
    p2[0] = e0 / (e0 + e1);
    p2[1] = e1 / (e0 + e1);
}

std::vector<int> harden_route(const float* alpha, int depth) {
    std::vector<int> r(depth);
    for (int l = 0; l < depth; ++l) r[l] = alpha[2 * l + 1] > alpha[2 * l] ? 1 : 0;
    return r;
}

}  // namespace ufo

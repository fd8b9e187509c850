// losses.cpp — softmax, label-smoothed cross-entropy, soft-target (distillation) loss, top-1 hits.
#include "nn/losses.h"

#include <algorithm>
#include <cmath>
#include <cstddef>

namespace ufo {

namespace {

// Smoothed target of the label (on) and of every other class (off); float, as in Model::loss.
struct SmoothedTarget {
    float off, on;
    SmoothedTarget(float smoothing, int K) : off(smoothing / K), on(1.0f - smoothing + off) {}
    float at(int i, int y) const { return i == y ? on : off; }
};

// Row loss of the cross-entropy: the operations and their order are those of Model::loss.
double ce_row(const float* pr, int y, int K, const SmoothedTarget& t) {
    double l = 0.0;
    for (int i = 0; i < K; ++i) {
        const float q = t.at(i, y);
        if (q > 0) l -= q * std::log(std::max(pr[i], 1e-30f));
    }
    return l;
}

// KL(p || q) of one row, in double, with 0 log 0 = 0 and log q clamped at 1e-30.
double kl_row(const float* q, const float* p, int K) {
    double l = 0.0;
    for (int i = 0; i < K; ++i) {
        if (p[i] == 0.0f) continue;   // 0 log 0 = 0; a NaN still propagates
        const double pi = p[i];
        l += pi * (std::log(pi) - std::log(double(std::max(q[i], 1e-30f))));
    }
    return l;
}

}  // namespace

void softmax_forward(float* probs, const float* logits, int B, int K, float T) {
    for (int b = 0; b < B; ++b) {
        const float* z = logits + size_t(b) * K;
        float* pr = probs + size_t(b) * K;
        const float mx = *std::max_element(z, z + K);
        float sum = 0.0f;
        for (int i = 0; i < K; ++i) sum += (pr[i] = std::exp((z[i] - mx) / T));
        for (int i = 0; i < K; ++i) pr[i] /= sum;
    }
}

double cross_entropy_forward(float* losses, const float* probs, const int32_t* labels, int B, int K,
                             float smoothing) {
    if (B <= 0) return 0.0;
    const SmoothedTarget t(smoothing, K);
    double total = 0.0;
    for (int b = 0; b < B; ++b) {
        const double l = ce_row(probs + size_t(b) * K, labels[b], K, t);
        if (losses) losses[b] = float(l);
        total += l;
    }
    return total / B;
}

void cross_entropy_backward(float* dlogits, const float* probs, const int32_t* labels, int B, int K,
                            float smoothing, float scale) {
    const SmoothedTarget t(smoothing, K);
    for (int b = 0; b < B; ++b) {
        const float* pr = probs + size_t(b) * K;
        float* d = dlogits + size_t(b) * K;
        const int y = labels[b];
        for (int i = 0; i < K; ++i) d[i] += scale * (pr[i] - t.at(i, y));
    }
}

double soft_target_forward(float* losses, const float* qs, const float* pt, int B, int K, float T) {
    if (B <= 0) return 0.0;
    const double T2 = double(T) * T;
    double total = 0.0;
    for (int b = 0; b < B; ++b) {
        const double l = T2 * kl_row(qs + size_t(b) * K, pt + size_t(b) * K, K);
        if (losses) losses[b] = float(l);
        total += l;
    }
    return total / B;
}

void soft_target_backward(float* dlogits, const float* qs, const float* pt, int B, int K, float T,
                          float scale) {
    if (B <= 0 || K <= 0) return;
    const float s = scale * T;
    for (size_t i = 0, n = size_t(B) * K; i < n; ++i) dlogits[i] += s * (qs[i] - pt[i]);
}

double distill_loss_forward(float* losses, const float* probs, const float* qs, const float* pt,
                            const int32_t* labels, int B, int K, float alpha, float T, float smoothing) {
    if (B <= 0) return 0.0;
    const SmoothedTarget t(smoothing, K);
    const double T2 = double(T) * T, a = alpha;
    double total = 0.0;
    for (int b = 0; b < B; ++b) {
        const size_t o = size_t(b) * K;
        const double l = a * T2 * kl_row(qs + o, pt + o, K) + (1.0 - a) * ce_row(probs + o, labels[b], K, t);
        if (losses) losses[b] = float(l);
        total += l;
    }
    return total / B;
}

void distill_loss_backward(float* dlogits, const float* probs, const float* qs, const float* pt,
                           const int32_t* labels, int B, int K, float alpha, float T, float smoothing,
                           float scale) {
    soft_target_backward(dlogits, qs, pt, B, K, T, scale * alpha);
    cross_entropy_backward(dlogits, probs, labels, B, K, smoothing, scale * (1.0f - alpha));
}

int count_correct(const float* scores, const int32_t* labels, int B, int K) {
    int right = 0;
    for (int b = 0; b < B; ++b) {
        const float* s = scores + size_t(b) * K;
        if (int(std::max_element(s, s + K) - s) == labels[b]) ++right;
    }
    return right;
}

}  // namespace ufo

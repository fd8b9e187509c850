// Tests of lib/nn/losses: softmax, label-smoothed cross-entropy, the soft-target (distillation)
// loss, their mix, and top-1 hits.
//
// Gradient checks. Method: the loss L(z) is the float32 forward (softmax_forward, then the
// loss's forward, whose sum is in double), differentiated w.r.t. every student logit by central
// differences in double, (L(z+eps) - L(z-eps)) / (2 eps), eps = 1e-2. Every check uses weight
// B (scale = 1), i.e. L = sum of the row losses, so that the gradient entries are O(0.1..1)
// and a smoothing term (s/K = 0.02 here) is far above the tolerance.
// Tolerance: |analytic - numeric| <= 1e-3 + 1e-3 * max(1, |analytic|, |numeric|).
// Justification: the probabilities carry a relative rounding error of ~1e-7, so a row loss
// (at most T^2 = 16 times a sum of O(1) log terms) is off by ~2e-6, which divided by 2 eps gives
// ~1e-4 on the numeric derivative; the truncation error of central differences is
// eps^2/6 |L'''| <= ~3e-5 (L''' is O(1) in z for the cross-entropy and O(1/T) for T^2 KL).
// The largest error measured is 8e-5 (soft targets at T = 4; see the comment at each check),
// 25x below the smallest tolerance (2e-3). A wrong backward (missing T factor, missing smoothing, wrong sign) is off by
// >= 0.02, and LossCrossEntropy.GradCheckRejectsUnsmoothedGradient shows that the tolerance
// catches the smallest of these errors.
#include "nn/losses.h"

#include "base/rng.h"

#include "test_util.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <vector>

using namespace ufo;
using ufo::test::randv;

namespace {

std::vector<int32_t> rand_labels(int B, int K, uint64_t seed) {
    Rng r(seed);
    std::vector<int32_t> y(B);
    for (auto& v : y) v = int32_t(r.below(uint64_t(K)));
    return y;
}

std::vector<float> softmax(const std::vector<float>& z, int B, int K, float T = 1.0f) {
    std::vector<float> p(z.size());
    softmax_forward(p.data(), z.data(), B, K, T);
    return p;
}

// Worst |analytic - numeric| / tolerance over all x[i] (< 1 passes); see the file comment.
double fd_worst(std::vector<float>& x, const std::vector<float>& analytic, const std::function<double()>& loss,
                double* worst_abs = nullptr) {
    const float eps = 1e-2f;
    const double rel = 1e-3, abs_tol = 1e-3;
    double worst = 0.0, wabs = 0.0;
    for (size_t i = 0; i < x.size(); ++i) {
        const float keep = x[i];
        x[i] = keep + eps;
        const double lp = loss();
        x[i] = keep - eps;
        const double lm = loss();
        x[i] = keep;
        const double num = (lp - lm) / (2.0 * double(eps)), an = analytic[i];
        const double tol = abs_tol + rel * std::max({1.0, std::fabs(num), std::fabs(an)});
        worst = std::max(worst, std::fabs(an - num) / tol);
        wabs = std::max(wabs, std::fabs(an - num));
    }
    if (worst_abs) *worst_abs = wabs;
    return worst;
}

void expect_fd(std::vector<float>& x, const std::vector<float>& analytic, const std::function<double()>& loss,
               const char* what) {
    double wabs = 0.0;
    const double w = fd_worst(x, analytic, loss, &wabs);
    EXPECT_LT(w, 1.0) << what << ": worst |analytic - numeric| = " << wabs;
}

// A copy of Model::loss (lib/nn/model.cpp) as written when losses.cpp was added, on plain
// arrays: the reference the cross-entropy must reproduce. d is written (=), as Model::loss does.
float model_loss_reference(float* d, const float* probs, const int32_t* labels, int B, int K, float smoothing,
                           float loss_scale, int* correct) {
    double total = 0.0;
    int right = 0;
    const float off = smoothing / K, on = 1.0f - smoothing + off;
    for (int b = 0; b < B; ++b) {
        const float* pr = probs + size_t(b) * K;
        const int y = labels[b];
        double l = 0.0;
        for (int i = 0; i < K; ++i) {
            float q = i == y ? on : off;
            if (q > 0) l -= q * std::log(std::max(pr[i], 1e-30f));
        }
        total += l;
        if (int(std::max_element(pr, pr + K) - pr) == y) ++right;
        float* dr = d + size_t(b) * K;
        for (int i = 0; i < K; ++i) dr[i] = (pr[i] - (i == y ? on : off)) * loss_scale / B;
    }
    if (correct) *correct = right;
    return float(total / B);
}

}  // namespace

// ---------------------------------------------------------------- softmax

TEST(LossSoftmax, HandValuesTemperatureAndStability) {
    const std::vector<float> z = {1.0f, 2.0f, 3.0f, 1000.0f, 1001.0f, -1e30f};
    std::vector<float> p(6);
    softmax_forward(p.data(), z.data(), 2, 3);
    // e^-2, e^-1, 1 over their sum
    EXPECT_NEAR(p[0], 0.09003057, 1e-7);
    EXPECT_NEAR(p[1], 0.24472847, 1e-7);
    EXPECT_NEAR(p[2], 0.66524096, 1e-7);
    // max subtraction: no overflow at 1000, no NaN from a -1e30 logit
    EXPECT_NEAR(p[3], 0.26894142, 1e-7);
    EXPECT_NEAR(p[4], 0.73105858, 1e-7);
    EXPECT_EQ(p[5], 0.0f);

    // softmax(z / T): logits 2,4,6 at T = 2 give exactly the probabilities of 1,2,3 at T = 1.
    const std::vector<float> z2 = {2.0f, 4.0f, 6.0f};
    std::vector<float> p2(3);
    softmax_forward(p2.data(), z2.data(), 1, 3, 2.0f);
    for (int i = 0; i < 3; ++i) EXPECT_EQ(p2[i], p[i]);

    // in place, and every row sums to 1
    const int B = 4, K = 9;
    auto x = randv(B * K, 1, 3.0f);
    const auto ref = softmax(x, B, K, 4.0f);
    softmax_forward(x.data(), x.data(), B, K, 4.0f);
    EXPECT_EQ(x, ref);
    for (int b = 0; b < B; ++b) {
        double s = 0.0;
        for (int i = 0; i < K; ++i) s += x[b * K + i];
        EXPECT_NEAR(s, 1.0, 1e-6);
    }
}

TEST(LossSoftmax, MatchesModelForwardBitwise) {
    // The loop Model::forward (lib/nn/model.cpp) used to fill act.probs, copied.
    const int B = 5, K = 11;
    const auto z = randv(B * K, 2, 5.0f);
    std::vector<float> ref(B * K);
    for (int b = 0; b < B; ++b) {
        const float* zb = z.data() + b * K;
        float* pr = ref.data() + b * K;
        float mx = *std::max_element(zb, zb + K), sum = 0.0f;
        for (int i = 0; i < K; ++i) sum += (pr[i] = std::exp(zb[i] - mx));
        for (int i = 0; i < K; ++i) pr[i] /= sum;
    }
    EXPECT_EQ(softmax(z, B, K), ref);
}

// ---------------------------------------------------------------- cross-entropy

TEST(LossCrossEntropy, HandComputed) {
    // Row 0: p = (1/2, 1/4, 1/4), label 0; row 1: p = (1/4, 1/2, 1/4), label 1.
    const std::vector<float> p = {0.5f, 0.25f, 0.25f, 0.25f, 0.5f, 0.25f};
    const std::vector<int32_t> y = {0, 1};
    std::vector<float> rows(2);
    // s = 0: -log(1/2) per row.
    EXPECT_NEAR(cross_entropy_forward(rows.data(), p.data(), y.data(), 2, 3, 0.0f), std::log(2.0), 1e-7);
    EXPECT_NEAR(rows[0], std::log(2.0), 1e-7);
    // s = 0.3: q = (0.8, 0.1, 0.1): 0.8 log 2 + 0.2 log 4 = 1.2 log 2 per row.
    EXPECT_NEAR(cross_entropy_forward(rows.data(), p.data(), y.data(), 2, 3, 0.3f), 1.2 * std::log(2.0), 1e-6);
    EXPECT_NEAR(rows[1], 1.2 * std::log(2.0), 1e-6);
    // An underflowed probability counts as 1e-30: s = 0.3, p = (1, 0, 0), label 0 gives
    // -(0.8 log 1 + 0.2 log 1e-30) = 0.2 * 30 log 10.
    const std::vector<float> p0 = {1.0f, 0.0f, 0.0f};
    EXPECT_NEAR(cross_entropy_forward(nullptr, p0.data(), y.data(), 1, 3, 0.3f), 6.0 * std::log(10.0), 1e-5);
    // backward: scale * (p - q)
    std::vector<float> d(6, 0.0f);
    cross_entropy_backward(d.data(), p.data(), y.data(), 2, 3, 0.3f, 2.0f);
    const std::vector<float> want = {2 * (0.5f - 0.8f), 2 * (0.25f - 0.1f), 2 * (0.25f - 0.1f),
                                     2 * (0.25f - 0.1f), 2 * (0.5f - 0.8f), 2 * (0.25f - 0.1f)};
    for (int i = 0; i < 6; ++i) EXPECT_NEAR(d[i], want[i], 1e-6) << i;
    EXPECT_EQ(cross_entropy_forward(nullptr, p.data(), y.data(), 0, 3, 0.1f), 0.0);
}

TEST(LossCrossEntropy, MatchesModelLoss) {
    // Random probabilities, some of them underflowed to 0 (logit spread > 104), so that the
    // 1e-30 clamp is exercised too.
    for (float s : {0.0f, 0.1f}) {
        for (int B : {8, 6}) {
            const int K = 10;
            auto z = randv(B * K, 3 + B, 30.0f);
            for (int b = 0; b < B; b += 2) z[b * K + 1] = z[b * K] - 200.0f;
            const auto p = softmax(z, B, K);
            ASSERT_TRUE(std::count(p.begin(), p.end(), 0.0f) > 0);
            auto y = rand_labels(B, K, 4);
            y[0] = 1;   // a label whose probability underflowed
            y[2] = int32_t(std::max_element(p.begin() + 2 * K, p.begin() + 3 * K) - (p.begin() + 2 * K));   // a hit
            const float loss_scale = B == 8 ? 1.0f : 0.37f;
            std::vector<float> dref(B * K), d(B * K, 0.0f);
            int right_ref = -1;
            const float ref = model_loss_reference(dref.data(), p.data(), y.data(), B, K, s, loss_scale, &right_ref);
            EXPECT_EQ(float(cross_entropy_forward(nullptr, p.data(), y.data(), B, K, s)), ref) << "s=" << s;
            EXPECT_EQ(count_correct(p.data(), y.data(), B, K), right_ref);
            EXPECT_GE(right_ref, 1);
            cross_entropy_backward(d.data(), p.data(), y.data(), B, K, s, loss_scale / B);
            // Model::loss forms (p - q) * loss_scale / B, the backward scale * (p - q) with
            // scale = loss_scale / B: the same when loss_scale / B is exact (B = 8, scale 1),
            // else within a couple of float roundings (absolute below the normal range, where
            // the underflowed probabilities' entries are denormal).
            for (int i = 0; i < B * K; ++i) {
                if (B == 8)
                    EXPECT_EQ(d[i], dref[i]) << i;
                else
                    EXPECT_NEAR(d[i], dref[i], 3e-7 * std::fabs(dref[i]) + 1e-37) << i;
            }
        }
    }
}

TEST(LossCrossEntropy, GradCheck) {
    // Measured worst |analytic - numeric|: 1.8e-5 (s = 0), 3.0e-5 (s = 0.1).
    const int B = 3, K = 5;
    const auto y = rand_labels(B, K, 5);
    for (float s : {0.0f, 0.1f}) {
        auto z = randv(B * K, 6, 2.0f);
        std::vector<float> d(B * K, 0.0f);
        cross_entropy_backward(d.data(), softmax(z, B, K).data(), y.data(), B, K, s, 1.0f);
        auto L = [&] { return B * cross_entropy_forward(nullptr, softmax(z, B, K).data(), y.data(), B, K, s); };
        expect_fd(z, d, L, s == 0.0f ? "CE s=0" : "CE s=0.1");
    }
}

TEST(LossCrossEntropy, GradCheckRejectsUnsmoothedGradient) {
    // Negative control: the gradient without smoothing, against the s = 0.1 loss, is off by
    // s/K = 0.02 (s (1 - 1/K) = 0.08 at the label), which the tolerance must reject (measured:
    // 40 times the tolerance).
    const int B = 3, K = 5;
    const auto y = rand_labels(B, K, 5);
    auto z = randv(B * K, 6, 2.0f);
    std::vector<float> d(B * K, 0.0f);
    cross_entropy_backward(d.data(), softmax(z, B, K).data(), y.data(), B, K, 0.0f, 1.0f);
    auto L = [&] { return B * cross_entropy_forward(nullptr, softmax(z, B, K).data(), y.data(), B, K, 0.1f); };
    EXPECT_GT(fd_worst(z, d, L), 5.0);
}

TEST(LossCrossEntropy, BackwardAccumulates) {
    const int B = 2, K = 4;
    const auto p = softmax(randv(B * K, 7), B, K);
    const auto y = rand_labels(B, K, 8);
    const auto prefill = randv(B * K, 9);
    std::vector<float> once(B * K, 0.0f), acc = prefill;
    cross_entropy_backward(once.data(), p.data(), y.data(), B, K, 0.1f, 0.5f);
    cross_entropy_backward(acc.data(), p.data(), y.data(), B, K, 0.1f, 0.5f);
    // Not bitwise: with -mfma the compiler may fuse d += s * x into one rounding.
    for (int i = 0; i < B * K; ++i)
        EXPECT_NEAR(acc[i], prefill[i] + once[i], 1e-6f * (std::fabs(prefill[i]) + std::fabs(once[i]))) << i;
    std::vector<float> d(B * K, 0.0f);
    soft_target_backward(d.data(), p.data(), softmax(randv(B * K, 10), B, K).data(), B, K, 3.0f, 1.0f);
    acc = prefill;
    soft_target_backward(acc.data(), p.data(), softmax(randv(B * K, 10), B, K).data(), B, K, 3.0f, 1.0f);
    for (int i = 0; i < B * K; ++i)
        EXPECT_NEAR(acc[i], prefill[i] + d[i], 1e-6f * (std::fabs(prefill[i]) + std::fabs(d[i]))) << i;
}

// ---------------------------------------------------------------- soft targets

TEST(LossSoftTarget, HandComputed) {
    // p = (1/2, 1/2), q = (3/4, 1/4), T = 2: T^2 KL = 4 * (1/2 log(2/3) + 1/2 log 2) = 2 log(4/3).
    const std::vector<float> q = {0.75f, 0.25f}, p = {0.5f, 0.5f};
    float row = 0.0f;
    EXPECT_NEAR(soft_target_forward(&row, q.data(), p.data(), 1, 2, 2.0f), 2.0 * std::log(4.0 / 3.0), 1e-7);
    EXPECT_NEAR(row, 2.0 * std::log(4.0 / 3.0), 1e-6);
    // 0 log 0 = 0: a one-hot teacher gives KL = -log q_label, no NaN from the zero entry.
    const std::vector<float> one_hot = {0.0f, 1.0f}, q2 = {0.5f, 0.5f};
    EXPECT_NEAR(soft_target_forward(nullptr, q2.data(), one_hot.data(), 1, 2, 1.0f), std::log(2.0), 1e-7);
    // backward: scale * T * (q - p)
    std::vector<float> d(2, 0.0f);
    soft_target_backward(d.data(), q.data(), p.data(), 1, 2, 2.0f, 0.5f);
    EXPECT_FLOAT_EQ(d[0], 0.25f);
    EXPECT_FLOAT_EQ(d[1], -0.25f);
}

TEST(LossSoftTarget, ZeroOnlyWhenStudentEqualsTeacher) {
    const int B = 4, K = 7;
    const auto zt = randv(B * K, 11, 2.0f);
    for (float T : {1.0f, 4.0f}) {
        const auto pt = softmax(zt, B, K, T);
        std::vector<float> rows(B, -1.0f);
        // The student is the teacher: the same probabilities, so every term is exactly 0.
        EXPECT_EQ(soft_target_forward(rows.data(), pt.data(), pt.data(), B, K, T), 0.0);
        for (float r : rows) EXPECT_EQ(r, 0.0f);
        // Logits shifted by a constant: the same distribution up to rounding.
        auto zs = zt;
        for (auto& v : zs) v += 3.0f;
        EXPECT_NEAR(soft_target_forward(nullptr, softmax(zs, B, K, T).data(), pt.data(), B, K, T), 0.0, 1e-6);
        // A different student: every row's loss is positive.
        const auto qs = softmax(randv(B * K, 12, 2.0f), B, K, T);
        EXPECT_GT(soft_target_forward(rows.data(), qs.data(), pt.data(), B, K, T), 0.0);
        for (float r : rows) EXPECT_GT(r, 1e-4f);
    }
}

TEST(LossSoftTarget, GradCheck) {
    // Measured worst |analytic - numeric|: 1.0e-5 at T = 1, 7.6e-5 at T = 4.
    const int B = 3, K = 6;
    for (float T : {1.0f, 4.0f}) {
        auto zs = randv(B * K, 13, 2.0f);
        const auto pt = softmax(randv(B * K, 14, 2.0f), B, K, T);
        std::vector<float> d(B * K, 0.0f);
        soft_target_backward(d.data(), softmax(zs, B, K, T).data(), pt.data(), B, K, T, 1.0f);
        auto L = [&] { return B * soft_target_forward(nullptr, softmax(zs, B, K, T).data(), pt.data(), B, K, T); };
        expect_fd(zs, d, L, T == 1.0f ? "soft T=1" : "soft T=4");
    }
}

TEST(LossSoftTarget, TSquaredKeepsGradientSizeForLargeT) {
    // d(T^2 KL)/dz_k = T (q_k - p_k) tends to g_k = ((z_k - mean z) - (v_k - mean v)) / K as
    // T grows (the first-order expansion of softmax(x/T) around uniform); the next term is
    // O(|z|^2 / T) relative. Without the T^2 factor the gradient would shrink like 1/T^2.
    const int B = 3, K = 8;
    const auto zs = randv(B * K, 15), zt = randv(B * K, 16);
    std::vector<float> g(B * K);
    double gnorm = 0.0;
    for (int b = 0; b < B; ++b) {
        double ms = 0.0, mt = 0.0;
        for (int i = 0; i < K; ++i) ms += zs[b * K + i] / K, mt += zt[b * K + i] / K;
        for (int i = 0; i < K; ++i) {
            g[b * K + i] = float(((zs[b * K + i] - ms) - (zt[b * K + i] - mt)) / K);
            gnorm += double(g[b * K + i]) * g[b * K + i];
        }
    }
    gnorm = std::sqrt(gnorm);
    ASSERT_GT(gnorm, 0.1);
    double prev_err = 1e9;
    for (float T : {8.0f, 16.0f, 32.0f, 64.0f, 128.0f}) {
        std::vector<float> d(B * K, 0.0f);
        soft_target_backward(d.data(), softmax(zs, B, K, T).data(), softmax(zt, B, K, T).data(), B, K, T, 1.0f);
        double dn = 0.0, err = 0.0;
        for (int i = 0; i < B * K; ++i) {
            dn += double(d[i]) * d[i];
            err = std::max(err, std::fabs(double(d[i]) - g[i]));
        }
        dn = std::sqrt(dn);
        // The size stays within 2% of the limit's from T = 8 on (measured: 0.3% at T = 8), and
        // the error falls like 1/T (measured: max error * T = 0.34 for every T).
        EXPECT_NEAR(dn / gnorm, 1.0, 0.02) << "T=" << T;
        EXPECT_LT(err, 2.0 / T) << "T=" << T;
        EXPECT_LT(err, prev_err) << "T=" << T;
        prev_err = err;
    }
}

// ---------------------------------------------------------------- distillation mix

TEST(LossDistill, MixesBothTerms) {
    const int B = 4, K = 5;
    const float T = 3.0f, s = 0.1f;
    const auto zs = randv(B * K, 17, 2.0f);
    const auto probs = softmax(zs, B, K), qs = softmax(zs, B, K, T), pt = softmax(randv(B * K, 18, 2.0f), B, K, T);
    const auto y = rand_labels(B, K, 19);
    std::vector<float> rs(B), rc(B), rm(B);
    const double soft = soft_target_forward(rs.data(), qs.data(), pt.data(), B, K, T);
    const double ce = cross_entropy_forward(rc.data(), probs.data(), y.data(), B, K, s);
    const double mix =
        distill_loss_forward(rm.data(), probs.data(), qs.data(), pt.data(), y.data(), B, K, 0.3f, T, s);
    EXPECT_NEAR(mix, 0.3 * soft + 0.7 * ce, 1e-6 * std::fabs(mix));
    for (int b = 0; b < B; ++b) EXPECT_NEAR(rm[b], 0.3f * rs[b] + 0.7f * rc[b], 1e-5f * std::fabs(rm[b]));
    EXPECT_EQ(distill_loss_forward(nullptr, probs.data(), qs.data(), pt.data(), y.data(), B, K, 0.0f, T, s), ce);
    EXPECT_NEAR(distill_loss_forward(nullptr, probs.data(), qs.data(), pt.data(), y.data(), B, K, 1.0f, T, s), soft,
                1e-12 * soft);
}

TEST(LossDistill, GradCheck) {
    // alpha = 0.5, T = 4, smoothing 0.1. Measured worst |analytic - numeric|: 5.4e-5.
    const int B = 3, K = 6;
    const float alpha = 0.5f, T = 4.0f, s = 0.1f;
    auto zs = randv(B * K, 20, 2.0f);
    const auto pt = softmax(randv(B * K, 21, 2.0f), B, K, T);
    const auto y = rand_labels(B, K, 22);
    std::vector<float> d(B * K, 0.0f);
    distill_loss_backward(d.data(), softmax(zs, B, K).data(), softmax(zs, B, K, T).data(), pt.data(), y.data(), B,
                          K, alpha, T, s, 1.0f);
    auto L = [&] {
        return B * distill_loss_forward(nullptr, softmax(zs, B, K).data(), softmax(zs, B, K, T).data(), pt.data(),
                                        y.data(), B, K, alpha, T, s);
    };
    expect_fd(zs, d, L, "distill alpha=0.5 T=4 s=0.1");
}

// ---------------------------------------------------------------- top-1

TEST(LossCountCorrect, ArgmaxTiesGoToLowestIndex) {
    const std::vector<float> p = {0.4f, 0.4f, 0.2f,    // tie between 0 and 1: argmax 0
                                  0.1f, 0.3f, 0.6f,    // argmax 2
                                  -1.0f, 5.0f, 5.0f};  // logits work too; tie: argmax 1
    EXPECT_EQ(count_correct(p.data(), std::vector<int32_t>{0, 2, 1}.data(), 3, 3), 3);
    EXPECT_EQ(count_correct(p.data(), std::vector<int32_t>{1, 2, 2}.data(), 3, 3), 1);
    EXPECT_EQ(count_correct(p.data(), std::vector<int32_t>{2, 0, 0}.data(), 3, 3), 0);
    EXPECT_EQ(count_correct(p.data(), nullptr, 0, 3), 0);
}

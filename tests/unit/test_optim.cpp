// AdamW (betas, decoupled weight decay, per-tensor rate multipliers), the warm-up + cosine
// schedule, global-norm clipping and the per-task loss weight, each against values computed by
// hand in double precision. Non-default betas and decay throughout, so that a config field the
// optimiser ignored (falling back to its default) shows up as a wrong value.
#include "train/data_parallel.h"
#include "nn/vit.h"
#include "train/optim.h"
#include "base/rng.h"

#include "test_util.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

using namespace ufo;

namespace {

struct HandAdam {   // one scalar parameter, in double
    double p, m = 0, v = 0;
    void step(int t, double g, double lr, double b1, double b2, double eps, double wd) {
        m = b1 * m + (1 - b1) * g;
        v = b2 * v + (1 - b2) * g * g;
        const double mhat = m / (1 - std::pow(b1, t)), vhat = v / (1 - std::pow(b2, t));
        p = p * (1 - lr * wd) - lr * mhat / (std::sqrt(vhat) + eps);
    }
};

// A ViT with its own gradient buffer.
struct Net : ViT {
    std::vector<float> grads;
    explicit Net(const ViTConfig& c) : ViT(c), grads(params.size(), 0.0f) {}
};
void step(AdamW& opt, Net& m, float lr, const std::vector<float>* mult = nullptr) {
    opt.step(m.layout, m.params.data(), m.grads.data(), lr, mult);
}

}  // namespace

TEST(Optim, AdamWThreeStepsMatchHandComputation) {
    ViTConfig c = preset("tiny");
    Net m(c);
    m.init_weights(1);
    // One decayed tensor (patch w) and one not (patch b); two elements of each.
    const ParamInfo& W = m.layout[0];
    const ParamInfo& Bi = m.layout[1];
    ASSERT_TRUE(W.decay());
    ASSERT_FALSE(Bi.decay());
    const size_t idx[4] = {W.offset, W.offset + 5, Bi.offset, Bi.offset + 3};
    const bool decays[4] = {true, true, false, false};
    const double p0[4] = {0.5, -0.125, -0.25, 0.75};
    for (int k = 0; k < 4; ++k) m.params[idx[k]] = float(p0[k]);
    AdamWConfig ac;
    ac.beta1 = 0.8f; ac.beta2 = 0.95f; ac.eps = 1e-3f; ac.weight_decay = 0.3f;   // none the default
    AdamW opt(m.params.size(), ac);
    const double b1 = 0.8f, b2 = 0.95f, eps = 1e-3f, wd = 0.3f;
    const float lrs[3] = {0.01f, 0.02f, 0.005f};
    const double gs[3][4] = {{0.2, -0.4, 0.03, -0.3}, {-0.1, 0.3, 0.0, 0.2}, {0.05, 0.05, -0.7, 0.01}};
    HandAdam h[4];
    for (int k = 0; k < 4; ++k) h[k].p = p0[k];
    const std::vector<float> before = m.params;
    for (int t = 1; t <= 3; ++t) {
        std::fill(m.grads.begin(), m.grads.end(), 0.0f);   // every other element: zero gradient
        for (int k = 0; k < 4; ++k) m.grads[idx[k]] = float(gs[t - 1][k]);
        step(opt, m, lrs[t - 1]);
        EXPECT_EQ(opt.t, uint64_t(t));
        for (int k = 0; k < 4; ++k) {
            h[k].step(t, double(float(gs[t - 1][k])), lrs[t - 1], b1, b2, eps, decays[k] ? wd : 0.0);
            EXPECT_NEAR(m.params[idx[k]], h[k].p, 1e-6) << "step " << t << " element " << k;
        }
    }
    // Step 1 in closed form: mhat/sqrt(vhat) = g/|g|, so a parameter moves by lr*g/(|g|+eps)
    // after its decay: 0.5*(1 - 0.01*0.3) - 0.01*0.2/(0.2+0.001).
    {
        Net m1(c);
        m1.params[idx[0]] = 0.5f;
        m1.grads[idx[0]] = 0.2f;
        AdamW o1(m1.params.size(), ac);
        step(o1, m1, 0.01f);
        EXPECT_NEAR(m1.params[idx[0]], 0.5 * (1 - 0.01 * 0.3) - 0.01 * 0.2 / (0.2 + 0.001), 1e-7);
    }
    // Elements whose gradient was always zero: a decayed one shrank by exactly (1 - lr wd) per
    // step (no Adam term: m = v = 0), a non-decayed one did not move at all.
    const size_t wz = W.offset + 1, bz = Bi.offset + 1;
    ASSERT_NE(before[wz], 0.0f);
    float want = before[wz];
    for (float lr : lrs) want = want * (1.0f - lr * 0.3f);
    EXPECT_EQ(m.params[wz], want);
    EXPECT_EQ(m.params[bz], before[bz]);
}

TEST(Optim, LrMultScalesTheRateAndTheDecayOfItsTensorOnly) {
    ViTConfig c = preset("tiny");
    Net a(c), b(c);
    a.init_weights(2);
    b.init_weights(2);
    Rng r(3);
    for (size_t i = 0; i < a.grads.size(); ++i) a.grads[i] = b.grads[i] = 0.1f * r.normal();
    AdamWConfig ac;
    ac.weight_decay = 0.5f;
    AdamW oa(a.params.size(), ac), ob(b.params.size(), ac);
    std::vector<float> mult(a.layout.size(), 1.0f);
    const size_t k3 = 0, k0 = 3;   // tensor k3 at 3x the rate, tensor k0 frozen (rate 0)
    ASSERT_TRUE(a.layout[k3].decay());   // so that the decay's scaling is checked too
    mult[k3] = 3.0f;
    mult[k0] = 0.0f;
    const float lr = 0.01f;
    const std::vector<float> p0 = a.params;
    step(oa, a, lr);
    step(ob, b, lr, &mult);
    for (size_t k = 0; k < a.layout.size(); ++k) {
        const ParamInfo& t = a.layout[k];
        for (size_t i = t.offset; i < t.offset + t.size; ++i) {
            if (k == k0) {
                ASSERT_EQ(b.params[i], p0[i]) << t.name << ": a zero rate must not move the tensor";
            } else if (k == k3) {
                // Adam's first step is -rate*g/(|g|+eps) after the decay: 3x further from p0.
                const double wd = t.decay() ? 0.5 : 0.0, g = a.grads[i];
                const double want = p0[i] * (1 - 3 * lr * wd) - 3 * lr * g / (std::fabs(g) + 1e-8);
                ASSERT_NEAR(b.params[i], want, 1e-6) << t.name << "[" << i - t.offset << "]";
            } else {
                ASSERT_EQ(b.params[i], a.params[i]) << t.name << ": multiplier 1 must equal no multiplier";
            }
        }
    }
}

TEST(Optim, ScheduleWarmupAndCosine) {
    // warm-up of 10: linear from base/10 at step 0 to base at step 9
    EXPECT_FLOAT_EQ(lr_at(0, 100, 10, 1.0f, 0.0f), 0.1f);
    EXPECT_FLOAT_EQ(lr_at(4, 100, 10, 1.0f, 0.0f), 0.5f);
    EXPECT_FLOAT_EQ(lr_at(9, 100, 10, 1.0f, 0.0f), 1.0f);
    // cosine from base at the end of the warm-up to min_lr at the last step (total - 1)
    EXPECT_FLOAT_EQ(lr_at(10, 100, 10, 1.0f, 0.0f), 1.0f);
    EXPECT_NEAR(lr_at(99, 100, 10, 1.0f, 0.1f), 0.1f, 1e-6);
    EXPECT_GT(lr_at(98, 100, 10, 1.0f, 0.1f), 0.1f);
    EXPECT_NEAR(lr_at(500, 100, 10, 1.0f, 0.1f), 0.1f, 1e-6);   // clamped after the end
    for (int s = 10; s < 100; s += 7) {
        const double want = 0.2 + 0.5 * (2.0 - 0.2) * (1 + std::cos(M_PI * (s - 10) / 89.0));
        EXPECT_NEAR(lr_at(uint64_t(s), 100, 10, 2.0f, 0.2f), want, 2e-6) << "step " << s;
    }
    // no warm-up: step 0 is already the peak
    EXPECT_FLOAT_EQ(lr_at(0, 100, 0, 1.0f, 0.0f), 1.0f);
    // min_lr == base: constant (the CLI tests rely on this to know the exact rate)
    for (int s : {0, 1, 37, 99}) EXPECT_EQ(lr_at(uint64_t(s), 100, 0, 0.01f, 0.01f), 0.01f);
    // warm-up as long as the run: all warm-up, never the cosine
    EXPECT_FLOAT_EQ(lr_at(3, 4, 4, 1.0f, 0.0f), 1.0f);
    EXPECT_FLOAT_EQ(lr_at(7, 4, 4, 1.0f, 0.0f), 1.0f);
    // ufo-train's default warm-up is 5% of the run (--warmup -1): total 200 -> 10 steps
    EXPECT_FLOAT_EQ(lr_at(0, 200, 200 / 20, 1.0f, 0.0f), 0.1f);
    EXPECT_FLOAT_EQ(lr_at(9, 200, 200 / 20, 1.0f, 0.0f), 1.0f);
}

TEST(Optim, ClipAboveTheMaxScalesToItBelowLeavesAlone) {
    // above: scaled to norm max_norm, direction kept; returns the norm before clipping
    std::vector<float> g = {3.0f, 4.0f, 0.0f, -12.0f};   // norm 13
    EXPECT_FLOAT_EQ(clip_grad_norm(g, 1.0f), 13.0f);
    const float want[4] = {3.0f / 13, 4.0f / 13, 0.0f, -12.0f / 13};
    double ss = 0;
    for (int i = 0; i < 4; ++i) {
        EXPECT_NEAR(g[i], want[i], 1e-6) << i;
        ss += double(g[i]) * g[i];
    }
    EXPECT_NEAR(std::sqrt(ss), 1.0, 1e-6);
    // below (and at) the max: bit-identical, and the norm is still returned
    std::vector<float> h = {0.3f, -0.4f}, h0 = h;
    EXPECT_FLOAT_EQ(clip_grad_norm(h, 1.0f), 0.5f);
    EXPECT_EQ(h, h0);
    EXPECT_FLOAT_EQ(clip_grad_norm(h, 0.5f), 0.5f);
    EXPECT_EQ(h, h0);
    // max_norm 0 (--clip 0): never clips, however large
    std::vector<float> big = {300.0f, 400.0f}, big0 = big;
    EXPECT_FLOAT_EQ(clip_grad_norm(big, 0.0f), 500.0f);
    EXPECT_EQ(big, big0);
}

TEST(Optim, ClipNormOfALargeVectorMatchesDouble) {
    // more than one 65536-element chunk, with thread-independent summation
    std::vector<float> g(200003);
    Rng r(4);
    double ss = 0;
    for (auto& x : g) {
        x = r.normal();
        ss += double(x) * x;
    }
    std::vector<float> g2 = g;
    const float norm = clip_grad_norm(g, 2.0f);
    EXPECT_NEAR(norm, std::sqrt(ss), 1e-6 * std::sqrt(ss));
    double ss2 = 0;
    for (size_t i = 0; i < g.size(); ++i) {
        ss2 += double(g[i]) * g[i];
        ASSERT_NEAR(g[i], g2[i] * 2.0 / std::sqrt(ss), 1e-6) << i;
    }
    EXPECT_NEAR(std::sqrt(ss2), 2.0, 1e-5);
}

// --task-weight: the trainer passes a task's weight as train_step's loss_scale. Its gradient
// contribution must scale by exactly that factor (2 is a power of two: bit-exact), the reported
// loss must not.
TEST(TaskWeight, LossScaleTwoDoublesEveryGradientExactly) {
    ViTConfig c = preset("tiny");
    c.tasks = {TaskInfo{"alpha", 5, {}, {}}, TaskInfo{"beta", 3, {}, {}}};
    c.make_supernet();
    ViT m(c);
    m.init_weights(7);
    Rng r(8);
    for (const auto& t : m.layout)
        for (size_t i = 0; i < t.size; ++i) m.params[t.offset + i] += 0.05f * r.normal();
    const int B = 6;
    std::vector<uint8_t> img(size_t(B) * 64);
    for (auto& v : img) v = uint8_t(r.below(256));
    std::vector<int32_t> lab = {0, 1, 2, 3, 4, 0};
    DataParallel dp(m, B, true);
    Active a = active_full(c, 0);
    std::vector<float> gates(size_t(c.depth) * B * 2);
    for (size_t i = 0; i < gates.size(); i += 2) gates[i + 1] = 1.0f - (gates[i] = float((i / 2) % 2));
    a.gates = gates.data();
    std::vector<float> grads;
    const StepResult one = test::train_step(dp, m, img.data(), lab.data(), B, a, 0.1f, 1.0f, grads);
    const std::vector<float> g1 = grads;
    const std::vector<float> dg1(dp.d_gates(), dp.d_gates() + gates.size());
    std::fill(grads.begin(), grads.end(), 0.0f);
    const StepResult two = test::train_step(dp, m, img.data(), lab.data(), B, a, 0.1f, 2.0f, grads);
    EXPECT_EQ(one.loss, two.loss);
    EXPECT_EQ(one.correct, two.correct);
    double norm = 0;
    for (size_t i = 0; i < g1.size(); ++i) {
        ASSERT_EQ(grads[i], 2.0f * g1[i]) << i;
        norm += std::fabs(g1[i]);
    }
    EXPECT_GT(norm, 1e-3);
    for (size_t i = 0; i < dg1.size(); ++i) ASSERT_EQ(dp.d_gates()[i], 2.0f * dg1[i]) << i;
}

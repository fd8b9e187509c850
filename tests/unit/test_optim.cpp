// AdamW, schedule and clipping against values computed by hand.
#include "model.h"
#include "optim.h"

#include <gtest/gtest.h>

#include <cmath>

using namespace ufo;

TEST(Optim, AdamWTwoStepsMatchHandComputation) {
    ViTConfig c = preset("tiny");
    Model m(c);
    m.enable_grads();
    // One decayed tensor (patch w) and one not (patch b); check an element of each.
    const size_t iw = m.layout[0].offset, ib = m.layout[1].offset;
    ASSERT_TRUE(m.layout[0].decay);
    ASSERT_FALSE(m.layout[1].decay);
    m.params[iw] = 0.5f;
    m.params[ib] = -0.25f;
    AdamWConfig ac;
    ac.beta1 = 0.9f; ac.beta2 = 0.99f; ac.eps = 1e-8f; ac.weight_decay = 0.1f;
    AdamW opt(m.params.size(), ac);
    const float lr = 0.01f;
    double pw = 0.5, pb = -0.25, mw = 0, vw = 0, mb = 0, vb = 0;
    const double gs[2][2] = {{0.2, -0.4}, {-0.1, 0.3}};
    for (int t = 1; t <= 2; ++t) {
        m.grads[iw] = float(gs[t - 1][0]);
        m.grads[ib] = float(gs[t - 1][1]);
        opt.step(m, lr);
        // by hand: decoupled decay on w only, bias-corrected moments
        mw = 0.9 * mw + 0.1 * gs[t - 1][0]; vw = 0.99 * vw + 0.01 * gs[t - 1][0] * gs[t - 1][0];
        mb = 0.9 * mb + 0.1 * gs[t - 1][1]; vb = 0.99 * vb + 0.01 * gs[t - 1][1] * gs[t - 1][1];
        double c1 = 1 - std::pow(0.9, t), c2 = 1 - std::pow(0.99, t);
        pw = pw * (1 - lr * 0.1) - lr * (mw / c1) / (std::sqrt(vw / c2) + 1e-8);
        pb = pb - lr * (mb / c1) / (std::sqrt(vb / c2) + 1e-8);
        EXPECT_NEAR(m.params[iw], pw, 1e-6) << "step " << t;
        EXPECT_NEAR(m.params[ib], pb, 1e-6) << "step " << t;
    }
    // After step 1 Adam moves by exactly lr (plus decay): 0.5*(1-0.001) - 0.01 = 0.4895
    EXPECT_NEAR(0.5 * (1 - 0.001) - 0.01, 0.4895, 1e-12);
}

TEST(Optim, ScheduleWarmupAndCosine) {
    EXPECT_FLOAT_EQ(lr_at(0, 100, 10, 1.0f, 0.0f), 0.1f);
    EXPECT_FLOAT_EQ(lr_at(9, 100, 10, 1.0f, 0.0f), 1.0f);
    EXPECT_FLOAT_EQ(lr_at(10, 100, 10, 1.0f, 0.0f), 1.0f);
    EXPECT_NEAR(lr_at(55, 100, 10, 1.0f, 0.0f), 0.5f, 1e-6);
    EXPECT_NEAR(lr_at(100, 100, 10, 1.0f, 0.1f), 0.1f, 1e-6);
}

TEST(Optim, ClipGlobalNorm) {
    std::vector<float> g = {3.0f, 4.0f};
    EXPECT_FLOAT_EQ(clip_grad_norm(g, 1.0f), 5.0f);
    EXPECT_NEAR(g[0], 0.6f, 1e-6);
    EXPECT_NEAR(g[1], 0.8f, 1e-6);
    std::vector<float> h = {0.3f, 0.4f};
    clip_grad_norm(h, 1.0f);
    EXPECT_FLOAT_EQ(h[0], 0.3f);
}

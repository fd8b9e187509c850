// The CNN network: whole-network finite differences in training mode, BatchNorm's training and
// inference semantics, the checkpoint round trip with running statistics, FLOPs and roles.
// (The layers alone are checked in test_cnn_layers.cpp.)
#include "base/rng.h"
#include "io/checkpoint.h"
#include "nn/cnn.h"
#include "nn/losses.h"
#include "train/fine_tune.h"
#include "test_util.h"

#include <gtest/gtest.h>

#include <cmath>

using namespace ufo;

namespace {

CNNConfig tiny(const std::string& layers = "c4,m,c6/2,a,c5") {
    CNNConfig c = cnn_preset("tiny");   // 8x8x1
    c.layers = layers;
    c.tasks[0].num_classes = 4;
    c.in_mean = {0.4f};
    c.in_std = {0.3f};
    return c;
}

std::vector<uint8_t> images(const NetSpec& s, int B, uint64_t seed) {
    Rng r(seed);
    std::vector<uint8_t> img(size_t(B) * s.image_size());
    for (auto& v : img) v = uint8_t(r.below(256));
    return img;
}

}  // namespace

// Method: L = label-smoothed cross-entropy (mean over B = 3) of a training-mode forward (batch
// statistics), recomputed in double from the logits; central differences, eps = 3e-3, on every
// parameter. Tolerance 2e-3 + 2e-2 * max(0.1, |analytic|, |numeric|): the float forward's
// rounding (~1e-6 relative of L) divided by 2 eps gives ~1e-4 absolute, truncation is
// O(eps^2) of smooth terms. Max-pool and ReLU are not differentiable where two inputs of a
// window tie or an input is 0: the input sample is chosen so that none is within eps of such
// a kink (with image seed 7, two weights of "c4,m,c6/2" sit at a max-pool near-tie and differ
// by 5% at any eps down to 1e-3, while the same network passes on this sample). A wrong
// backward (missing BatchNorm term, wrong stride or index) is off by O(1) relative everywhere.
TEST(Cnn, WholeNetworkGradientsMatchFiniteDifferences) {
    for (const std::string layers : {"c4,m,c6/2", "c4,m,c6/2,a,c5", "c3/2,c4"}) {
        CNNConfig c = tiny(layers);
        CNN m(c);
        m.init_weights(5);
        Rng r(6);
        for (const auto& t : m.layout)
            if (t.role.trained())
                for (size_t i = 0; i < t.size; ++i) m.params[t.offset + i] += 0.2f * r.normal();
        const int B = 3, K = 4;
        const auto img = images(c, B, 17);
        const std::vector<int32_t> lab = {0, 3, 2};
        auto ws = m.workspace(B, true);
        Active a;
        a.train = true;
        std::vector<float> grads(m.params.size(), 0.0f);
        m.forward(*ws, img.data(), B, a);
        std::fill(ws->d_logits, ws->d_logits + B * K, 0.0f);
        cross_entropy_backward(ws->d_logits, ws->probs, lab.data(), B, K, 0.1f, 1.0f / B);
        m.backward(*ws, B, a, grads.data());
        auto L = [&] {
            m.forward(*ws, img.data(), B, a);
            double s = 0.0;
            const float off = 0.1f / K, on = 0.9f + off;
            for (int b = 0; b < B; ++b) {
                const float* z = ws->logits + b * K;
                double mx = *std::max_element(z, z + K), se = 0.0;
                for (int i = 0; i < K; ++i) se += std::exp(double(z[i]) - mx);
                for (int i = 0; i < K; ++i) s -= (i == lab[b] ? on : off) * (z[i] - mx - std::log(se));
            }
            return s / B;
        };
        const int checked = test::check_param_gradients(m, grads, L, 3e-3f, layers);
        EXPECT_GT(checked, 100);
    }
}

// Training mode normalises with the batch's statistics (each channel of a BatchNorm output has
// mean 0 and variance 1 before gamma/beta); update_statistics folds them into the running
// ones as PyTorch does; inference uses the running statistics, so it differs from training
// mode until they converge.
TEST(Cnn, BatchNormUsesBatchStatisticsInTrainingAndRunningOnesAtInference) {
    CNNConfig c = tiny("c6");
    CNN m(c);
    m.init_weights(3);
    Rng r(1);
    for (const auto& t : m.layout)   // the zero-initialised head would make every logit 0
        if (t.role.kind == Kind::Head)
            for (size_t i = 0; i < t.size; ++i) m.params[t.offset + i] = r.normal();
    const int B = 5;
    const auto img = images(c, B, 4);
    auto ws = m.workspace(B, true);
    auto& act = static_cast<CnnActivations&>(*ws);
    Active train;
    train.train = true;
    m.forward(act, img.data(), B, train);
    const auto& la = act.layers[0];
    const int N = B * la.H * la.W;
    // z is the conv output; BN output before ReLU is not stored, so recompute mean/var of z.
    for (int ch = 0; ch < la.C; ++ch) {
        double s = 0, ss = 0;
        for (int n = 0; n < N; ++n) s += la.z[size_t(n) * la.C + ch];
        const double mean = s / N;
        for (int n = 0; n < N; ++n) ss += std::pow(la.z[size_t(n) * la.C + ch] - mean, 2);
        EXPECT_NEAR(la.mean[ch], mean, 1e-5 * (1 + std::fabs(mean)));
        EXPECT_NEAR(1.0 / (la.rstd[ch] * la.rstd[ch]) - 1e-5, ss / N, 1e-4 * (1 + ss / N));
    }
    const std::vector<float> train_logits(act.logits, act.logits + B * 4);
    // Running statistics start at (0, 1); one update moves them 10% toward the batch's.
    const float* rm = m.p.conv[0].run_mean;
    const float* rv = m.p.conv[0].run_var;
    EXPECT_EQ(rm[0], 0.0f);
    EXPECT_EQ(rv[0], 1.0f);
    m.update_statistics(act);
    for (int ch = 0; ch < la.C; ++ch) {
        const double var = 1.0 / (double(la.rstd[ch]) * la.rstd[ch]) - 1e-5;
        EXPECT_NEAR(rm[ch], 0.1 * la.mean[ch], 1e-6);
        EXPECT_NEAR(rv[ch], 0.9 + 0.1 * var * N / (N - 1), 1e-5);
    }
    // Inference with the running statistics: out = (z - rm)/sqrt(rv + eps)*gamma + beta.
    Active infer;
    m.forward(act, img.data(), B, infer);
    const float* g = m.p.conv[0].gamma;
    const float* bt = m.p.conv[0].beta;
    for (int n = 0; n < N; n += 7)
        for (int ch = 0; ch < la.C; ++ch) {
            const double z = la.z[size_t(n) * la.C + ch];
            const double want = std::max(0.0, (z - rm[ch]) / std::sqrt(rv[ch] + 1e-5) * g[ch] + bt[ch]);
            ASSERT_NEAR(la.out[size_t(n) * la.C + ch], want, 1e-5 * (1 + std::fabs(want)));
        }
    EXPECT_NE(train_logits, std::vector<float>(act.logits, act.logits + B * 4));
    // An inference forward never changes the running statistics.
    const std::vector<float> before(rm, rm + la.C);
    m.forward(act, img.data(), B, infer);
    EXPECT_EQ(before, std::vector<float>(rm, rm + la.C));
}

TEST(Cnn, CheckpointRoundTripKeepsWeightsAndRunningStatistics) {
    CNNConfig c = tiny();
    CNN m(c);
    m.init_weights(8);
    Rng r(9);
    for (const auto& t : m.layout)   // tensors only: the alignment padding is not saved
        for (size_t i = 0; i < t.size; ++i) m.params[t.offset + i] += 0.1f * r.normal();
    for (const auto& t : m.layout)   // running variances must stay positive
        if (t.role.kind == Kind::Statistic && t.role.unit == 1)
            for (size_t i = 0; i < t.size; ++i) m.params[t.offset + i] = 0.5f + float(i) * 0.1f;
    test::TempDir d;
    Provenance prov;
    prov.tool = "test";
    save_checkpoint(d / "c.h5", "cnn", m, prov, nullptr);
    auto ck = load_checkpoint(d / "c.h5");
    EXPECT_EQ(ck.kind, "cnn");
    ASSERT_EQ(std::string(ck.net->family()), "cnn");
    EXPECT_EQ(ck.net->params, m.params);
    EXPECT_EQ(static_cast<CNN&>(*ck.net).cfg.layers, c.layers);
    const auto img = images(c, 4, 10);
    auto w1 = m.workspace(4, false), w2 = ck.net->workspace(4, false);
    Active a;
    m.forward(*w1, img.data(), 4, a);
    ck.net->forward(*w2, img.data(), 4, a);
    EXPECT_EQ(std::vector<float>(w1->logits, w1->logits + 16), std::vector<float>(w2->logits, w2->logits + 16));
    EXPECT_NE(test::error_of([&] { ck.vit(); }).find("is a cnn checkpoint, not a ViT"), std::string::npos);
}

TEST(Cnn, FlopsParametersRolesAndBadLayerLists) {
    CNNConfig c = cnn_preset("small");   // 28x28x1: c24,c24,m,c48,c48,m,c80
    CNN m(c);
    // conv FLOPs 2*H*W*OC*IC*9 per layer, then the head 2*80*10.
    const double want = 2.0 * 9 * (28 * 28 * 24 * 1 + 28 * 28 * 24 * 24 + 14 * 14 * 48 * 24 + 14 * 14 * 48 * 48 +
                                    7 * 7 * 80 * 48) + 2.0 * 80 * 10;
    EXPECT_EQ(m.forward_flops(Active{}), want);
    EXPECT_LT(m.num_params(), 100000u);
    EXPECT_EQ(m.num_params(), size_t(9 * (24 + 24 * 24 + 24 * 48 + 48 * 48 + 48 * 80) + 2 * (24 + 24 + 48 + 48 + 80) +
                                     80 * 10 + 10));
    for (size_t i = 0; i < m.layout.size(); ++i)
        for (size_t j = 0; j < i; ++j) ASSERT_FALSE(m.layout[i].role.same_slot(m.layout[j].role));
    for (const std::string bad : {"", "m,c4", "c0", "c4,x", "c4/3", "c99999"}) {
        CNNConfig b = tiny(bad);
        EXPECT_NE(test::error_of([&] { b.validate("f"); }).find("f: CNN layers"), std::string::npos) << bad;
    }
    CNNConfig small_img = tiny("c4,m,m,m,m");   // 8 -> 4 -> 2 -> 1, then no room to pool
    EXPECT_NE(test::error_of([&] { small_img.validate("f"); }).find("a pool on a 1x1 map"), std::string::npos);
}

// Freezing the convolutions of a CNN (fine-tuning the head and norms only) leaves them
// bit-identical through training steps.
TEST(Cnn, InitFromACnnReproducesItsLogits) {
    CNNConfig c = tiny();
    CNN from(c);
    from.init_weights(2);
    Rng r(3);
    for (auto& w : from.params) w += 0.1f * r.normal();
    for (const auto& t : from.layout)
        if (t.role.kind == Kind::Statistic && t.role.unit == 1)
            for (size_t i = 0; i < t.size; ++i) from.params[t.offset + i] = 1.5f;
    auto net = from.rebuild(from.spec());
    net->init_weights(4);
    EXPECT_TRUE(init_from(*net, from, false).head_copied);
    const auto img = images(c, 3, 5);
    auto w1 = from.workspace(3, false), w2 = net->workspace(3, false);
    Active a;
    from.forward(*w1, img.data(), 3, a);
    net->forward(*w2, img.data(), 3, a);
    EXPECT_EQ(std::vector<float>(w1->logits, w1->logits + 12), std::vector<float>(w2->logits, w2->logits + 12));
}

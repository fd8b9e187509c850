// test_distill.cpp — distillation from a separate teacher: the whole path a training step
// takes (Teacher::probs on the batch, PassRunner with the teacher's probabilities, the
// soft-target loss through a CNN student) against finite differences, and the teacher's
// checks against the data.
#include "base/rng.h"
#include "io/checkpoint.h"
#include "nn/cnn.h"
#include "nn/vit.h"
#include "train/passes.h"
#include "train/teacher.h"
#include "test_util.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

using namespace ufo;
using ufo::test::error_of;

namespace {

// A tiny ViT teacher on 8x8x1 images with 4 classes, saved to a file (the teacher is read from
// a checkpoint as ufo-distill reads it), with weights perturbed so that its predictions are
// far from uniform.
std::string save_teacher(const test::TempDir& dir) {
    ViTConfig c = preset("tiny");
    c.tasks[0].num_classes = 4;
    c.in_mean = {0.5f};
    c.in_std = {0.25f};
    ViT t(c);
    t.init_weights(3);
    Rng r(4);
    for (auto& w : t.params) w += 0.3f * r.normal();
    Provenance prov;
    prov.tool = "test";
    save_checkpoint(dir / "teacher.h5", "dense", t, prov, nullptr);
    return dir / "teacher.h5";
}

Dataset data(int n, int K, uint64_t seed) {
    Dataset d;
    d.n = n;
    d.h = d.w = 8;
    d.c = 1;
    Rng r(seed);
    d.images.resize(size_t(n) * 64);
    for (auto& v : d.images) v = uint8_t(r.below(256));
    for (int i = 0; i < n; ++i) d.labels.push_back(i % K);
    for (int k = 0; k < K; ++k) d.class_names.push_back("c" + std::to_string(k));
    return d;
}

}  // namespace

// Method: the student (CNN "c4,m,c6/2", training-mode BatchNorm) takes one step's pass with the
// teacher's softmax(z_t / T) of the same batch as soft targets: L = alpha T² KL(p_t || q_s) +
// (1 - alpha) CE_smoothed(labels), mean over B = 3, recomputed in double from the student's
// logits; central differences (eps 3e-3) on every trained parameter against the gradient the
// PassRunner leaves. Tolerance and sample as in Cnn.WholeNetworkGradientsMatchFiniteDifferences
// (2e-3 + 2e-2 relative: float rounding over 2 eps, O(eps²) truncation; the same seeds keep
// max-pool and ReLU away from their kinks). A teacher probability mix-up (wrong rows, T applied
// twice, missing T²) changes the gradient by O(1) relative.
TEST(Distill, StepThroughTeacherAndStudentMatchesFiniteDifferences) {
    test::TempDir dir;
    const int B = 3, K = 4;
    const float alpha = 0.7f, T = 3.0f, smoothing = 0.1f;
    const Dataset train = data(B, K, 17);
    TeacherOptions to;
    to.path = save_teacher(dir);
    Teacher teacher(to, train, "train.h5", B);
    std::vector<float> pt(size_t(B) * K);
    const std::vector<int64_t> idx = {0, 1, 2};
    teacher.probs(pt.data(), train.images.data(), idx.data(), B, T);
    for (int b = 0; b < B; ++b) {
        double s = 0;
        for (int k = 0; k < K; ++k) s += pt[size_t(b * K + k)];
        EXPECT_NEAR(s, 1.0, 1e-5);
    }

    CNNConfig c = cnn_preset("tiny");
    c.layers = "c4,m,c6/2";
    c.tasks[0].num_classes = K;
    c.in_mean = {0.4f};
    c.in_std = {0.3f};
    CNN m(c);
    m.init_weights(5);
    Rng r(6);
    for (const auto& t : m.layout)
        if (t.role.trained())
            for (size_t i = 0; i < t.size; ++i) m.params[t.offset + i] += 0.2f * r.normal();
    DataParallel dp(m, B, true);
    PassRunner runner;
    runner.begin_step();
    runner.provide_teacher(pt.data(), pt.size());
    Pass p;
    p.active.train = true;
    p.from_teacher = true;
    p.alpha = alpha;
    p.T = T;
    std::vector<float> grads(m.params.size(), 0.0f);
    // (The step also folds the batch statistics into BatchNorm's running ones; the
    // training-mode forward below does not read those.)
    runner.run(m, dp, p, train.images.data(), train.labels.data(), B, smoothing, grads.data());

    auto ws = m.workspace(B, true);
    Active a;
    a.train = true;
    auto L = [&] {
        m.forward(*ws, train.images.data(), B, a);
        double s = 0.0;
        const double off = smoothing / K, on = 1.0 - smoothing + off;
        for (int b = 0; b < B; ++b) {
            const float* z = ws->logits + b * K;
            const double mx = *std::max_element(z, z + K);
            double se = 0.0, seT = 0.0;
            for (int i = 0; i < K; ++i) {
                se += std::exp(double(z[i]) - mx);
                seT += std::exp((double(z[i]) - mx) / T);
            }
            double ce = 0.0, kl = 0.0;
            for (int i = 0; i < K; ++i) {
                ce -= (i == train.labels[size_t(b)] ? on : off) * (z[i] - mx - std::log(se));
                const double p_i = pt[size_t(b * K + i)], logq = (z[i] - mx) / T - std::log(seT);
                if (p_i > 0) kl += p_i * (std::log(p_i) - logq);
            }
            s += alpha * T * T * kl + (1 - alpha) * ce;
        }
        return s / B;
    };
    const int checked = test::check_param_gradients(m, grads, L, 3e-3f, "distill");
    EXPECT_GT(checked, 100);
}

// The teacher runs forward only: its probabilities for the same images are the same on every
// call (no state changes), and they are softmax(z / T) of its logits.
TEST(Distill, TeacherIsAPureFunctionOfTheBatch) {
    test::TempDir dir;
    const Dataset train = data(5, 4, 2);
    TeacherOptions to;
    to.path = save_teacher(dir);
    Teacher t(to, train, "train.h5", 8);
    std::vector<float> a(20), b(20), c1(20);
    const std::vector<int64_t> idx = {0, 1, 2, 3, 4};
    t.probs(a.data(), train.images.data(), idx.data(), 5, 2.0f);
    t.probs(c1.data(), train.images.data(), idx.data(), 5, 1.0f);
    t.probs(b.data(), train.images.data(), idx.data(), 5, 2.0f);
    EXPECT_EQ(a, b);
    // softmax(z/2) ∝ sqrt(softmax(z)): the ratio of two classes' probabilities is the square root.
    for (int r = 0; r < 5; ++r)
        EXPECT_NEAR(a[size_t(r * 4)] / a[size_t(r * 4 + 1)], std::sqrt(c1[size_t(r * 4)] / c1[size_t(r * 4 + 1)]), 1e-4);
}

// A teacher that does not fit the data is refused with one line naming the teacher.
TEST(Distill, TeacherMustFitTheData) {
    test::TempDir dir;
    TeacherOptions to;
    to.path = save_teacher(dir);
    EXPECT_NE(error_of([&] { Teacher(to, data(6, 3, 1), "t.h5", 4); }).find("has 4 classes, the training set t.h5 3"),
              std::string::npos);
    Dataset big = data(2, 4, 1);
    big.h = big.w = 16;
    big.images.resize(size_t(2) * 256);
    EXPECT_NE(error_of([&] { Teacher(to, big, "t.h5", 4); }).find("the teacher takes 8x8x1 images, the training set t.h5 holds 16x16x1"),
              std::string::npos);
}

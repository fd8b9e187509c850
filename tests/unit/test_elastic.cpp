// test_elastic.cpp — One-for-All elastic models: spec text, search space, sampling, importance
// sorting (the function is unchanged), extraction (logits equal), and a finite-difference check
// of a whole sandwich step with in-place distillation.
#include "layers/blas.h"
#include "nn/elastic.h"
#include "nn/extract.h"
#include "nn/losses.h"
#include "train/passes.h"
#include "train/policy.h"

#include "test_util.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

using namespace ufo;
using ufo::test::error_of;

namespace {

// 8x8x1, patch 4, dim 24, depth 3, 3 heads of 8, mlp 48; elastic depth 2,3, heads 1..3,
// widths 24, 36, 48.
ViTConfig elastic_config(bool qk_norm = false) {
    ViTConfig c = preset("tiny");
    c.dim = 24; c.depth = 3; c.heads = 3; c.mlp_hidden = 48;
    c.qk_norm = qk_norm;
    c.tasks[0].num_classes = 5;
    c.in_mean = {0.4f};
    c.in_std = {0.3f};
    c.elastic = make_space(c, "2,3", "", "1,1.5,2", "test");
    return c;
}

std::unique_ptr<ViT> random_vit(const ViTConfig& c, uint64_t seed, float scale = 0.3f) {
    auto m = std::make_unique<ViT>(c);
    m->init_weights(seed);
    Rng r(seed + 1);
    for (auto& w : m->params) w += scale * r.normal();
    return m;
}

std::vector<uint8_t> random_images(const ViTConfig& c, int B, uint64_t seed) {
    Rng r(seed);
    std::vector<uint8_t> img(size_t(B) * c.image_size());
    for (auto& v : img) v = uint8_t(r.below(256));
    return img;
}

std::vector<float> logits_of(const ViT& m, const std::vector<uint8_t>& img, int B, const Active& a) {
    auto ws = m.workspace(B, false);
    m.forward(*ws, img.data(), B, a);
    const int K = m.cfg.tasks[0].num_classes;
    return std::vector<float>(ws->logits, ws->logits + size_t(B) * K);
}

// Relative to the logits' scale: a permuted or cut-out network sums the same products in
// another order (and through differently shaped GEMMs), so equality holds to float rounding:
// ~1e-7 relative per operation, amplified by a few layers, stays far below 1e-5.
void expect_close(const std::vector<float>& a, const std::vector<float>& b, const char* what) {
    ASSERT_EQ(a.size(), b.size());
    float scale = 0;
    for (float x : a) scale = std::max(scale, std::fabs(x));
    for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], 1e-5f * std::max(1.0f, scale)) << what << "[" << i << "]";
}

}  // namespace

TEST(Elastic, SpaceDefaultsAndFlags) {
    ViTConfig c = preset("small");   // dim 96, depth 6, 3 heads, mlp 192
    ElasticSpace s = make_space(c, "", "", "", "x");
    EXPECT_EQ(s.depth, (std::vector<int>{4, 5, 6}));
    EXPECT_EQ(s.heads, (std::vector<int>{1, 2, 3}));
    EXPECT_EQ(s.hidden, (std::vector<int>{96, 144, 192}));
    s = make_space(c, "6,4", "3,1", "2,1", "x");   // sorted
    EXPECT_EQ(s.depth, (std::vector<int>{4, 6}));
    EXPECT_EQ(s.hidden, (std::vector<int>{96, 192}));
    EXPECT_NE(error_of([&] { make_space(c, "4,5", "", "", "x"); }).find("largest elastic depth choice is 5, not the model's 6"),
              std::string::npos);
    EXPECT_NE(error_of([&] { make_space(c, "4,7", "", "", "x"); }).find("--elastic-depth: 7 is outside 1..6"), std::string::npos);
    EXPECT_NE(error_of([&] { make_space(c, "", "1,x", "", "x"); }).find("'x' is not a whole number"), std::string::npos);
    EXPECT_NE(error_of([&] { make_space(c, "", "", "1,3", "x"); }).find("outside 1..192 hidden units"), std::string::npos);
    EXPECT_NE(error_of([&] { make_space(c, "", "", "0", "x"); }).find("not a positive number"), std::string::npos);
    // 3 depths x (3 heads x 3 widths)^d: 9^4 + 9^5 + 9^6
    EXPECT_NEAR(log10_space_size(make_space(c, "", "", "", "x")), std::log10(6561.0 + 59049 + 531441), 1e-9);
}

TEST(Elastic, SpecRoundTripAndDefaults) {
    const ViTConfig c = elastic_config();
    Active a = parse_arch("depth=2 heads=3,1 mlp=48,24", c, "m.h5");
    EXPECT_EQ(a.depth, 2);
    EXPECT_EQ(format_arch(a), "depth=2 heads=3,1 mlp=48,24");
    EXPECT_EQ(format_arch(parse_arch(format_arch(a), c, "m.h5")), format_arch(a));
    // omitted keys: the largest; one value: every block; any order, tabs and extra spaces
    EXPECT_EQ(format_arch(parse_arch("heads=2", c, "m.h5")), "depth=3 heads=2,2,2 mlp=48,48,48");
    EXPECT_EQ(format_arch(parse_arch(" mlp=36\tdepth=2 ", c, "m.h5")), "depth=2 heads=3,3 mlp=36,36");
    EXPECT_EQ(format_arch(largest_arch(c)), "depth=3 heads=3,3,3 mlp=48,48,48");
    EXPECT_EQ(format_arch(smallest_arch(c)), "depth=2 heads=1,1 mlp=24,24");
}

TEST(Elastic, BadSpecsSayWhatIsWrong) {
    const ViTConfig c = elastic_config();
    auto err = [&](const std::string& s) { return error_of([&] { parse_arch(s, c, "m.h5"); }); };
    auto has = [](const std::string& e, const std::string& want) {
        return e.find(want) != std::string::npos ? ::testing::AssertionSuccess()
                                                 : ::testing::AssertionFailure() << "'" << e << "' lacks '" << want << "'";
    };
    EXPECT_TRUE(has(err("depth=1"), "m.h5: --arch 'depth=1': depth 1 is not in the elastic space (depths 2,3)"));
    EXPECT_TRUE(has(err("depth=4"), "depth 4 is not in the elastic space"));
    EXPECT_TRUE(has(err("heads=4"), "heads 4 in block 0 is above the stored maximum 3"));
    EXPECT_TRUE(has(err("mlp=30"), "mlp 30 in block 0 is not one of the space's choices (24,36,48)"));
    EXPECT_TRUE(has(err("depth=3 heads=1,2"), "heads lists 2 values for depth 3 (give one per block, or one for all)"));
    EXPECT_TRUE(has(err("depth=2 mlp=24,24,24"), "mlp lists 3 values for depth 2"));
    EXPECT_TRUE(has(err("width=3"), "unknown key 'width' (keys: depth, heads, mlp)"));
    EXPECT_TRUE(has(err("depth=2 depth=3"), "'depth' is given twice"));
    EXPECT_TRUE(has(err("depth"), "'depth' is not KEY=VALUE"));
    EXPECT_TRUE(has(err(""), "the spec is empty"));
    EXPECT_TRUE(has(err("   "), "the spec is empty"));
    EXPECT_TRUE(has(err("heads=2,x,1"), "'x' is not a whole number"));
    EXPECT_TRUE(has(err("heads=-1"), "'-1' is not a whole number"));
    EXPECT_TRUE(has(err("depth=99999999999999999999"), "is not a whole number"));
    // On a plain ViT any size up to the model's fits; beyond it does not.
    ViTConfig plain = c;
    plain.elastic = {};
    EXPECT_EQ(format_arch(parse_arch("depth=1 heads=2 mlp=7", plain, "d.h5")), "depth=1 heads=2 mlp=7");
    EXPECT_TRUE(has(error_of([&] { parse_arch("mlp=49", plain, "d.h5"); }), "mlp 49 in block 0 is above the model's 48"));
}

TEST(Elastic, SamplingStaysInTheSpaceAndCoversIt) {
    const ViTConfig c = elastic_config();
    Rng r(3);
    std::vector<int> seen_depth(4, 0), seen_heads(4, 0);
    for (int i = 0; i < 400; ++i) {
        const Active a = sample_arch(c, r);
        ASSERT_EQ(format_arch(parse_arch(format_arch(a), c, "")), format_arch(a));   // valid
        ++seen_depth[size_t(a.depth)];
        for (int l = 0; l < a.depth; ++l) ++seen_heads[size_t(a.heads[size_t(l)])];
    }
    EXPECT_EQ(seen_depth[1], 0);
    EXPECT_GT(seen_depth[2], 150);
    EXPECT_GT(seen_depth[3], 150);
    for (int h = 1; h <= 3; ++h) EXPECT_GT(seen_heads[size_t(h)], 250);
}

TEST(Elastic, ImportanceSortingKeepsTheFunctionAndMovesTheMoments) {
    for (bool qk : {false, true}) {
        const ViTConfig c = elastic_config(qk);
        auto m = random_vit(c, 11);
        const int B = 4;
        const auto img = random_images(c, B, 5);
        const auto before = logits_of(*m, img, B, largest_arch(c));
        // Moments that are copies of the weights must still be copies afterwards.
        std::vector<float> m1 = m->params, m2(m->params.size());
        for (size_t i = 0; i < m2.size(); ++i) m2[i] = 2.0f * m->params[i] + 1.0f;
        const int changed = sort_by_importance(*m, {m1.data(), m2.data()});
        EXPECT_GT(changed, 3) << "random weights are not sorted already";
        expect_close(before, logits_of(*m, img, B, largest_arch(c)), "logits after sorting");
        for (size_t i = 0; i < m1.size(); ++i) {
            ASSERT_EQ(m1[i], m->params[i]) << i;
            ASSERT_EQ(m2[i], 2.0f * m->params[i] + 1.0f) << i;
        }
        // Sorted: importance descends in every block, and sorting again changes nothing.
        for (int l = 0; l < c.depth; ++l) {
            const float* fc2 = m->p.blocks[size_t(l)].ffn[0].fc2_w;
            for (int j = 1; j < c.mlp_hidden; ++j) {
                double a = 0, b = 0;
                for (int r = 0; r < c.dim; ++r) { a += std::fabs(fc2[r * c.mlp_hidden + j - 1]); b += std::fabs(fc2[r * c.mlp_hidden + j]); }
                ASSERT_GE(a, b) << "block " << l << " unit " << j;
            }
        }
        EXPECT_EQ(sort_by_importance(*m, {}), 0);
        // A smaller sub-network now keeps the heavier units: the sort is not a no-op.
        auto unsorted = random_vit(c, 11);
        const Active small = smallest_arch(c);
        const auto a = logits_of(*m, img, B, small), b = logits_of(*unsorted, img, B, small);
        float diff = 0;
        for (size_t i = 0; i < a.size(); ++i) diff = std::max(diff, std::fabs(a[i] - b[i]));
        EXPECT_GT(diff, 1e-3f);
    }
}

TEST(Elastic, ExtractedSubnetworksComputeTheSameLogits) {
    for (bool qk : {false, true}) {
        ViTConfig c = elastic_config(qk);
        c.qkv_bias = !qk;
        auto m = random_vit(c, 21);
        const int B = 3;
        const auto img = random_images(c, B, 9);
        Rng r(17);
        std::vector<Active> archs{largest_arch(c), smallest_arch(c), parse_arch("depth=3 heads=3,1,2 mlp=24,48,36", c, "")};
        for (int i = 0; i < 5; ++i) archs.push_back(sample_arch(c, r));
        for (const Active& a : archs) {
            SourceMap src;
            auto sub = extract_arch(*m, a, &src);
            EXPECT_FALSE(sub->cfg.is_elastic());
            EXPECT_EQ(sub->cfg.depth, a.depth);
            EXPECT_EQ(sub->num_params(), m->num_active_params(a)) << format_arch(a);
            EXPECT_DOUBLE_EQ(sub->forward_flops(active_full(sub->cfg)), m->forward_flops(a));
            EXPECT_EQ(src.size(), sub->layout.size());
            expect_close(logits_of(*m, img, B, a), logits_of(*sub, img, B, active_full(sub->cfg)), format_arch(a).c_str());
        }
    }
}

// A whole sandwich step on a tiny elastic model: the largest pass on the labels, the smallest
// and two random ones on the largest's soft predictions at T = 2 (alpha 0.7, so labels count
// too). The analytic gradient (summed over passes, as the trainer takes it) must match central
// differences of the step's loss with the teacher's predictions held fixed: in-place
// distillation treats them as constants (no gradient flows into the teacher through them).
// Tolerances as in test_gradcheck.cpp: the loss is recomputed in double, eps = 3e-3, error
// budget 2e-3 + 2e-2 relative; a wrong term (missing pass, wrong T^2, a gradient through the
// teacher) is off by O(1) relative.
TEST(Elastic, SandwichStepWithInPlaceDistillationMatchesFiniteDifferences) {
    const ViTConfig c = elastic_config(true);
    auto m = random_vit(c, 31, 0.2f);
    const int B = 3, K = 5;
    const auto img = random_images(c, B, 13);
    const std::vector<int32_t> lab{0, 3, 2};
    SandwichOptions so;
    so.random = 2;
    so.kd_weight = 0.7f;
    so.kd_temperature = 2.0f;
    so.seed = 4;
    auto policy = make_sandwich_policy(*m, so, std::vector<char>(m->layout.size(), 0));
    std::vector<Pass> passes;
    policy->passes(*m, 7, passes);
    ASSERT_EQ(passes.size(), 4u);
    EXPECT_TRUE(passes[0].teacher);
    EXPECT_EQ(format_arch(passes[0].active), format_arch(largest_arch(c)));
    EXPECT_EQ(format_arch(passes[1].active), format_arch(smallest_arch(c)));
    for (size_t i = 1; i < passes.size(); ++i) EXPECT_TRUE(passes[i].from_teacher);
    // The draws are a function of (seed, step): the same step draws the same sub-networks.
    std::vector<Pass> again;
    policy->passes(*m, 7, again);
    for (size_t i = 0; i < passes.size(); ++i) EXPECT_EQ(format_arch(passes[i].active), format_arch(again[i].active));

    set_threads(1);
    DataParallel dp(*m, B, true);
    PassRunner runner;
    runner.begin_step();
    std::vector<float> grads(m->params.size(), 0.0f);
    for (const Pass& p : passes) runner.run(*m, dp, p, img.data(), lab.data(), B, 0.1f, grads.data());
    const std::vector<float> teacher(runner.teacher_probs(), runner.teacher_probs() + B * K);

    // The step's loss in double: CE(largest) + sum over students of
    // alpha T^2 KL(teacher_T || student_T) + (1 - alpha) CE(student), mean over the batch.
    auto workspace = m->workspace(B, false);
    auto L = [&] {
        double total = 0;
        for (size_t pi = 0; pi < passes.size(); ++pi) {
            m->forward(*workspace, img.data(), B, passes[pi].active);
            for (int b = 0; b < B; ++b) {
                const float* z = workspace->logits + b * K;
                auto log_softmax = [&](double T, int i) {
                    double mx = *std::max_element(z, z + K) / T, se = 0;
                    for (int j = 0; j < K; ++j) se += std::exp(z[j] / T - mx);
                    return z[i] / T - mx - std::log(se);
                };
                double ce = 0;
                const double off = 0.1 / K, on = 0.9 + off;
                for (int i = 0; i < K; ++i) ce -= (i == lab[size_t(b)] ? on : off) * log_softmax(1.0, i);
                if (pi == 0) { total += ce / B; continue; }
                double kl = 0;
                for (int i = 0; i < K; ++i) {
                    const double pt = teacher[size_t(b) * K + i];
                    if (pt > 0) kl += pt * (std::log(pt) - log_softmax(2.0, i));
                }
                total += (0.7 * 4.0 * kl + 0.3 * ce) / B;
            }
        }
        return total;
    };
    const float eps = 3e-3f;
    int checked = 0, nonzero = 0;
    Rng pick(99);
    for (const auto& t : m->layout)
        for (size_t k = 0; k < std::min<size_t>(t.size, 24); ++k) {
            const size_t i = t.size <= 24 ? k : size_t(pick.below(t.size));
            float* w = &m->params[t.offset + i];
            const float an = grads[t.offset + i], keep = *w;
            *w = keep + eps;
            const double lp = L();
            *w = keep - eps;
            const double lm = L();
            *w = keep;
            const double num = (lp - lm) / (2.0 * eps);
            const double tol = 2e-3 + 2e-2 * std::max({1e-1, std::fabs(num), double(std::fabs(an))});
            ASSERT_NEAR(an, num, tol) << t.name << "[" << i << "]";
            ++checked;
            nonzero += std::fabs(num) > 1e-3;
        }
    EXPECT_GT(checked, 500);
    EXPECT_GT(nonzero, 200);
}

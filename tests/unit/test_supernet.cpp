// Task-MoE supernet: routing determinism, hard gates against hard routes, route tables,
// checkpoint round trip of routes, and extracted sub-networks against the supernet.
// (The gradients of the mixing FFN and the router are checked in test_gradcheck.cpp.)
#include "io/checkpoint.h"
#include "nn/extract.h"
#include "nn/vit.h"
#include "base/rng.h"
#include "nn/router.h"
#include "io/routes.h"
#include "test_util.h"

#include <gtest/gtest.h>

#include <cstring>

using namespace ufo;
using ufo::test::error_of;
using ufo::test::TempDir;

namespace {

ViTConfig two_task_config() {
    ViTConfig c = preset("tiny");   // 8x8x1, patch 4, dim 16, depth 2, heads 2, mlp 32
    c.tasks = {TaskInfo{"alpha", 5, {}, {}}, TaskInfo{"beta", 3, {}, {}}};
    c.make_supernet();
    return c;
}

// A supernet with random weights (own FFNs differ from the shared ones) and random routes.
std::unique_ptr<ViT> random_supernet(uint64_t seed) {
    auto m = std::make_unique<ViT>(two_task_config());
    m->init_weights(seed);
    Rng r(seed + 1);
    for (const auto& t : m->layout)   // tensors only: the alignment padding is not saved
        for (size_t i = 0; i < t.size; ++i) m->params[t.offset + i] += 0.1f * r.normal();
    m->cfg.tasks[0].route = {1, 0};
    m->cfg.tasks[1].route = {0, 1};
    return m;
}

std::vector<uint8_t> random_images(const ViTConfig& c, int B, uint64_t seed) {
    Rng r(seed);
    std::vector<uint8_t> img(size_t(B) * c.img_h * c.img_w * c.img_c);
    for (auto& v : img) v = uint8_t(r.below(256));
    return img;
}

std::vector<float> logits_of(const ViT& m, const Active& a, const std::vector<uint8_t>& img, int B,
                             bool training_buffers = false) {
    Activations act;
    act.allocate(m.cfg, B, training_buffers);
    m.forward(act, img.data(), B, a);
    const int K = m.cfg.tasks[a.task].num_classes;
    return std::vector<float>(act.logits, act.logits + size_t(B) * K);
}

}  // namespace

TEST(Router, SameSeedSameGatesOtherSeedOtherNoise) {
    const int depth = 3, B = 8;
    std::vector<float> alpha = {0.1f, -0.2f, 0.0f, 0.3f, 1.0f, -1.0f};
    std::vector<float> g1(depth * B * 2), s1(g1.size()), g2(g1.size()), s2(g1.size()), g3(g1.size()), s3(g1.size());
    router_forward(g1.data(), s1.data(), alpha.data(), depth, B, 5.0f, true, true, 7, 0, 0, 0);
    router_forward(g2.data(), s2.data(), alpha.data(), depth, B, 5.0f, true, true, 7, 0, 0, 0);
    router_forward(g3.data(), s3.data(), alpha.data(), depth, B, 5.0f, true, true, 8, 0, 0, 0);
    EXPECT_EQ(0, std::memcmp(g1.data(), g2.data(), g1.size() * sizeof(float)));
    EXPECT_EQ(0, std::memcmp(s1.data(), s2.data(), s1.size() * sizeof(float)));
    EXPECT_NE(0, std::memcmp(s1.data(), s3.data(), s1.size() * sizeof(float)));
    for (size_t i = 0; i < g1.size(); i += 2) {
        EXPECT_EQ(g1[i] + g1[i + 1], 1.0f);                     // one-hot
        EXPECT_EQ(g1[i + 1] == 1.0f, s1[i + 1] > s1[i]);        // of the soft argmax
        EXPECT_NEAR(s1[i] + s1[i + 1], 1.0f, 1e-6f);
    }
}

// The noise of a sample is a function of (seed, step, task, block, global sample index): rows
// 3..7 drawn as a batch of their own (first_sample 3) get the noise they get inside the batch.
TEST(Router, NoiseDoesNotDependOnHowTheBatchIsSplit) {
    const int depth = 2, B = 8;
    std::vector<float> alpha = {0.1f, -0.2f, 0.0f, 0.3f};
    std::vector<float> g(depth * B * 2), s(g.size()), g2(depth * 5 * 2), s2(g2.size());
    router_forward(g.data(), s.data(), alpha.data(), depth, B, 5.0f, true, true, 7, 12, 1, 0);
    router_forward(g2.data(), s2.data(), alpha.data(), depth, 5, 5.0f, true, true, 7, 12, 1, 3);
    for (int l = 0; l < depth; ++l)
        for (int b = 0; b < 5; ++b)
            for (int e = 0; e < 2; ++e) EXPECT_EQ(s2[(l * 5 + b) * 2 + e], s[(l * B + b + 3) * 2 + e]);
    // Another step, task or block draws other noise.
    std::vector<float> g3(g.size()), s3(g.size());
    router_forward(g3.data(), s3.data(), alpha.data(), depth, B, 5.0f, true, true, 7, 13, 1, 0);
    EXPECT_NE(s, s3);
    router_forward(g3.data(), s3.data(), alpha.data(), depth, B, 5.0f, true, true, 7, 12, 0, 0);
    EXPECT_NE(s, s3);
}

TEST(Router, PerBatchNoiseIsSharedAcrossTheBatch) {
    const int depth = 2, B = 5;
    std::vector<float> alpha = {0.0f, 0.0f, 0.5f, 0.0f};
    std::vector<float> g(depth * B * 2), s(g.size());
    router_forward(g.data(), s.data(), alpha.data(), depth, B, 2.0f, false, false, 3, 0, 0, 0);
    for (int l = 0; l < depth; ++l)
        for (int b = 1; b < B; ++b) EXPECT_EQ(s[(l * B + b) * 2], s[l * B * 2]);
}

TEST(Router, GumbelArgmaxFollowsTheRouteProbabilities) {
    // With tau irrelevant to the argmax, P(own) = softmax(alpha)[own] (the Gumbel-max trick).
    const int B = 20000;
    std::vector<float> alpha = {0.0f, 1.0f};
    std::vector<float> g(B * 2), s(g.size());
    router_forward(g.data(), s.data(), alpha.data(), 1, B, 5.0f, true, true, 11, 0, 0, 0);
    double own = 0;
    for (int b = 0; b < B; ++b) own += g[2 * b + 1];
    float p[2];
    route_probs(p, alpha.data());
    // binomial standard error sqrt(p(1-p)/B) ~ 0.003; 4 sigma
    EXPECT_NEAR(own / B, p[1], 0.013);
}

TEST(Router, TemperatureScheduleAndHardening) {
    RouterConfig rc;
    EXPECT_EQ(tau_at(rc, 0), 5.0f);
    EXPECT_EQ(tau_at(rc, 1000), 5.0f);
    rc.tau_start = 5; rc.tau_end = 1; rc.tau_anneal_steps = 100;
    EXPECT_FLOAT_EQ(tau_at(rc, 0), 5.0f);
    EXPECT_FLOAT_EQ(tau_at(rc, 50), 3.0f);
    EXPECT_FLOAT_EQ(tau_at(rc, 100), 1.0f);
    EXPECT_FLOAT_EQ(tau_at(rc, 1000), 1.0f);
    std::vector<float> alpha = {0.0f, 1.0f, 2.0f, -1.0f, 0.0f, 0.0f};
    EXPECT_EQ(harden_route(alpha.data(), 3), (std::vector<int>{1, 0, 0}));   // ties stay shared
}

// Hard one-hot gates must compute what the hard route computes (only the summation order of
// the residual add differs: the mixed path adds 1*expert + 0*other after the FFN GEMM, the
// route path accumulates inside the GEMM). Tolerance 1e-5 of the logit scale for that.
TEST(Supernet, HardGatesMatchTheHardRoute) {
    auto m = random_supernet(5);
    const int B = 4, depth = m->cfg.depth;
    auto img = random_images(m->cfg, B, 6);
    for (int t = 0; t < 2; ++t) {
        std::vector<float> gates(size_t(depth) * B * 2);
        for (int l = 0; l < depth; ++l)
            for (int b = 0; b < B; ++b) {
                gates[(l * B + b) * 2 + 0] = m->cfg.tasks[t].route[l] ? 0.0f : 1.0f;
                gates[(l * B + b) * 2 + 1] = m->cfg.tasks[t].route[l] ? 1.0f : 0.0f;
            }
        Active mixed = active_full(m->cfg, t);
        mixed.gates = gates.data();
        auto a = logits_of(*m, mixed, img, B, true);
        auto b = logits_of(*m, active_for_task(m->cfg, t), img, B);
        ASSERT_EQ(a.size(), b.size());
        float scale = 0;
        for (float v : b) scale = std::max(scale, std::fabs(v));
        for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-5f * std::max(1.0f, scale)) << i;
    }
}

TEST(Supernet, ExtractedTaskLogitsAreBitIdentical) {
    auto m = random_supernet(9);
    const int B = 5;
    auto img = random_images(m->cfg, B, 10);
    for (int t = 0; t < 2; ++t) {
        SourceMap sources;
        auto sub = extract_task(*m, t, &sources);
        EXPECT_EQ(sub->cfg.tasks.size(), 1u);
        EXPECT_EQ(sub->cfg.ffn_sets, 1);
        EXPECT_FALSE(sub->cfg.is_supernet());
        EXPECT_EQ(sub->num_params(), m->num_active_params(active_for_task(m->cfg, t)));
        auto want = logits_of(*m, active_for_task(m->cfg, t), img, B);
        auto got = logits_of(*sub, active_full(sub->cfg), img, B);
        ASSERT_EQ(want.size(), got.size());
        EXPECT_EQ(0, std::memcmp(want.data(), got.data(), want.size() * sizeof(float)));
        const std::string own = "blocks/" + std::to_string(t == 0 ? 0 : 1) + "/ffn/" + m->cfg.tasks[t].name + "/fc1/w";
        const std::string at = "blocks/" + std::to_string(t == 0 ? 0 : 1) + "/ffn/shared/fc1/w";
        EXPECT_EQ(sources.at(at), own);
        EXPECT_EQ(sources.at("tasks/" + m->cfg.tasks[t].name + "/head/w"),
                  "tasks/" + m->cfg.tasks[t].name + "/head/w");
    }
    // A different route gives different logits (the own FFNs are not copies of the shared).
    auto before = logits_of(*m, active_for_task(m->cfg, 0), img, B);
    m->cfg.tasks[0].route = {0, 0};
    EXPECT_NE(before, logits_of(*m, active_for_task(m->cfg, 0), img, B));
}

TEST(Supernet, SharedBranchHasNoHeadAndAllSharedFfns) {
    auto m = random_supernet(3);
    Provenance prov;
    auto sh = extract_shared(*m, &prov.sources);
    EXPECT_TRUE(sh->cfg.tasks.empty());
    for (const auto& [name, src] : prov.sources) EXPECT_EQ(name, src);
    EXPECT_EQ(prov.sources.count("blocks/1/ffn/shared/fc2/w"), 1u);
    TempDir d;
    save_checkpoint(d / "shared.h5", "subnet", *sh, prov, nullptr);
    auto back = load_checkpoint(d / "shared.h5");
    EXPECT_TRUE(back.vit().cfg.tasks.empty());
    EXPECT_EQ(back.net->params, sh->params);
}

TEST(Supernet, CheckpointKeepsRoutesRoutersAndSources) {
    auto m = random_supernet(4);
    TempDir d;
    Provenance prov;
    prov.tool = "test";
    save_checkpoint(d / "s.h5", "supernet", *m, prov, nullptr);
    auto ck = load_checkpoint(d / "s.h5");
    EXPECT_EQ(ck.kind, "supernet");
    ASSERT_TRUE(ck.vit().cfg.is_supernet());
    EXPECT_EQ(ck.vit().cfg.tasks[0].route, (std::vector<int>{1, 0}));
    EXPECT_EQ(ck.vit().cfg.tasks[1].route, (std::vector<int>{0, 1}));
    EXPECT_EQ(ck.net->params, m->params);   // includes the router logits
}

TEST(RouteTable, FormatParseApplyRoundTrip) {
    ViTConfig c = two_task_config();
    c.tasks[0].route = {1, 0};
    const std::string text = format_route_table(c);
    EXPECT_EQ(text, "task\tlayer\tpath\nalpha\t0\town\nalpha\t1\tshared\nbeta\t0\tshared\nbeta\t1\tshared\n");
    ViTConfig d = two_task_config();
    apply_route_table(d, parse_route_table(text, "t.tsv"), "t.tsv");
    EXPECT_EQ(d.tasks[0].route, c.tasks[0].route);
    // A partial table changes only the tasks it names.
    apply_route_table(d, parse_route_table("task\tlayer\tpath\nbeta\t1\town\nbeta\t0\town\n", "p.tsv"), "p.tsv");
    EXPECT_EQ(d.tasks[1].route, (std::vector<int>{1, 1}));
    EXPECT_EQ(d.tasks[0].route, (std::vector<int>{1, 0}));
}

TEST(RouteTable, BadTablesAreOneLineErrors) {
    ViTConfig c = two_task_config();
    auto apply = [&](const std::string& text) {
        return error_of([&] { apply_route_table(c, parse_route_table(text, "r.tsv"), "r.tsv"); });
    };
    EXPECT_NE(apply("").find("r.tsv: empty route table"), std::string::npos);
    EXPECT_NE(apply("a\tb\n").find("not a route table"), std::string::npos);
    EXPECT_NE(apply("task\tlayer\tpath\nalpha\t0\tsideways\n").find("r.tsv:2: path 'sideways'"), std::string::npos);
    EXPECT_NE(apply("task\tlayer\tpath\nalpha\tx\town\n").find("layer 'x'"), std::string::npos);
    EXPECT_NE(apply("task\tlayer\tpath\nalpha\t0\town\nalpha\t0\tshared\n").find("appears twice"), std::string::npos);
    EXPECT_NE(apply("task\tlayer\tpath\nalpha\t1\town\n").find("no entry for layer 0"), std::string::npos);
    EXPECT_NE(apply("task\tlayer\tpath\ngamma\t0\town\ngamma\t1\town\n").find("task gamma, which the supernet does not have"),
              std::string::npos);
    EXPECT_NE(apply("task\tlayer\tpath\nalpha\t0\town\nalpha\t1\town\nalpha\t2\town\n")
                  .find("3 layers for task alpha, the supernet has 2"),
              std::string::npos);
    ViTConfig dense = preset("tiny");
    EXPECT_NE(error_of([&] { apply_route_table(dense, parse_route_table("task\tlayer\tpath\n", "r.tsv"), "r.tsv"); })
                  .find("only to a Task-MoE supernet"),
              std::string::npos);
}

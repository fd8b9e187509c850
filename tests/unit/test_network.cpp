// The network interface: parameter roles (unique slots, weight-decay groups, parts), the ViT's
// small kernels against their plain twins, frozen parts (no gradient, no update) and starting
// from another checkpoint's weights (fine-tuning).
#include "base/rng.h"
#include "layers/vit_kernels.h"
#include "nn/extract.h"
#include "nn/losses.h"
#include "nn/vit.h"
#include "reference.h"
#include "train/fine_tune.h"
#include "train/optim.h"
#include "train/policy.h"
#include "test_util.h"

#include <gtest/gtest.h>

#include <cstring>

using namespace ufo;
using ufo::test::randv;

namespace {

std::vector<ViTConfig> configs() {
    std::vector<ViTConfig> out;
    ViTConfig c = preset("tiny");
    out.push_back(c);
    c.qk_norm = true;
    c.parallel_block = true;
    c.qkv_bias = false;
    out.push_back(c);
    c = preset("tiny");
    c.tasks = {TaskInfo{"a", 5, {}, {}}, TaskInfo{"b", 3, {}, {}}};
    c.make_supernet();
    out.push_back(c);
    return out;
}

void perturb(Network& m, uint64_t seed, float scale = 0.1f) {
    Rng r(seed);
    for (const auto& t : m.layout)
        for (size_t i = 0; i < t.size; ++i) m.params[t.offset + i] += scale * r.normal();
}

std::vector<float> logits_of(const Network& m, const Active& a, const std::vector<uint8_t>& img, int B) {
    auto ws = m.workspace(B, false);
    m.forward(*ws, img.data(), B, a);
    const int K = m.spec().tasks[size_t(a.task)].num_classes;
    return std::vector<float>(ws->logits, ws->logits + size_t(B) * K);
}

std::vector<uint8_t> images(const NetSpec& s, int B, uint64_t seed) {
    Rng r(seed);
    std::vector<uint8_t> img(size_t(B) * s.image_size());
    for (auto& v : img) v = uint8_t(r.below(256));
    return img;
}

}  // namespace

TEST(Roles, EveryTensorHasItsOwnSlot) {
    for (const auto& c : configs()) {
        const auto L = vit_layout(c);
        for (size_t i = 0; i < L.size(); ++i)
            for (size_t j = 0; j < i; ++j)
                ASSERT_FALSE(L[i].role.same_slot(L[j].role)) << L[i].name << " and " << L[j].name;
    }
}

// Weight decay: linear weights, including the heads; never biases, norms, class token,
// positions or router logits.
TEST(Roles, WeightDecayGoesToLinearWeightsAndHeads) {
    ViTConfig c = configs()[2];
    for (const auto& t : vit_layout(c)) {
        const std::string& n = t.name;
        const bool want = n.size() > 2 && n.compare(n.size() - 2, 2, "/w") == 0 &&
                          (n.find("qkv") != std::string::npos || n.find("proj") != std::string::npos ||
                           n.find("fc") != std::string::npos || n.find("patch") != std::string::npos ||
                           n.find("head") != std::string::npos);
        EXPECT_EQ(t.decay(), want) << n;
    }
}

TEST(Roles, PartsNameWhatFreezeKeeps) {
    EXPECT_EQ(parse_parts("embed,attn", "--freeze"), (std::vector<Part>{Part::Embed, Part::Attn}));
    EXPECT_NE(test::error_of([] { parse_parts("embed,wings", "--freeze"); }).find("unknown part 'wings'"),
              std::string::npos);
    ViTConfig c = preset("tiny");
    ViT m(c);
    const auto mask = frozen_mask(m, {Part::Attn});
    for (size_t k = 0; k < m.layout.size(); ++k)
        EXPECT_EQ(bool(mask[k]), m.layout[k].name.find("/attn/") != std::string::npos) << m.layout[k].name;
}

// Plain twins: the fast kernels copy and add the same numbers (OpenMP over samples), so they
// must agree exactly, except moe_mix_forward, whose twin sums in double: 1 ulp-level (1e-6).
TEST(VitKernels, MatchTheirReferenceTwins) {
    const int B = 3, H = 8, W = 12, C = 3, ps = 4, T = (H / ps) * (W / ps) + 1, D = 5;
    std::vector<uint8_t> img(size_t(B) * H * W * C);
    Rng r(1);
    for (auto& v : img) v = uint8_t(r.below(256));
    const float scale[3] = {0.01f, 0.02f, 0.03f}, shift[3] = {-0.5f, 0.1f, 0.2f};
    const size_t pd = ps * ps * C;
    std::vector<float> a(size_t(B) * (T - 1) * pd), b(a.size());
    patchify_forward(a.data(), img.data(), B, H, W, C, ps, scale, shift);
    ref::patchify_forward(b.data(), img.data(), B, H, W, C, ps, scale, shift);
    EXPECT_EQ(a, b);

    auto emb = randv(size_t(B) * (T - 1) * D, 2), cls = randv(D, 3), pos = randv(size_t(T) * D, 4);
    std::vector<float> x1(size_t(B) * T * D), x2(x1.size());
    tokens_forward(x1.data(), emb.data(), cls.data(), pos.data(), B, T, D);
    ref::tokens_forward(x2.data(), emb.data(), cls.data(), pos.data(), B, T, D);
    EXPECT_EQ(x1, x2);
    auto dx = randv(x1.size(), 5);
    std::vector<float> de1(emb.size()), de2(emb.size()), dc1(D, 1.0f), dc2(D, 1.0f), dp1(pos.size(), 1.0f),
        dp2(pos.size(), 1.0f);
    tokens_backward(de1.data(), dc1.data(), dp1.data(), dx.data(), B, T, D);
    ref::tokens_backward(de2.data(), dc2.data(), dp2.data(), dx.data(), B, T, D);
    EXPECT_EQ(de1, de2);
    for (int i = 0; i < D; ++i) EXPECT_NEAR(dc1[i], dc2[i], 1e-6f);
    for (size_t i = 0; i < dp1.size(); ++i) EXPECT_NEAR(dp1[i], dp2[i], 1e-6f);

    std::vector<float> g1(size_t(B) * D), g2(g1.size()), back1(x1.size(), 7.0f), back2(x1.size(), 7.0f);
    cls_gather_forward(g1.data(), x1.data(), B, T, D);
    ref::cls_gather_forward(g2.data(), x1.data(), B, T, D);
    EXPECT_EQ(g1, g2);
    cls_gather_backward(back1.data(), g1.data(), B, T, D);
    ref::cls_gather_backward(back2.data(), g1.data(), B, T, D);
    EXPECT_EQ(back1, back2);

    const long R = long(T) * D;
    auto e0 = randv(size_t(B) * R, 6), e1 = randv(size_t(B) * R, 7), gates = randv(size_t(B) * 2, 8);
    std::vector<float> o1 = randv(size_t(B) * R, 9), o2 = o1;
    moe_mix_forward(o1.data(), e0.data(), e1.data(), gates.data(), B, R);
    ref::moe_mix_forward(o2.data(), e0.data(), e1.data(), gates.data(), B, R);
    for (size_t i = 0; i < o1.size(); ++i) ASSERT_NEAR(o1[i], o2[i], 1e-6f * (1 + std::fabs(o2[i]))) << i;
    for (int e = 0; e < 2; ++e) {
        std::vector<float> d1(o1.size()), d2(o1.size()), dg1(size_t(B) * 2), dg2(dg1.size());
        moe_mix_backward(d1.data(), dg1.data(), o1.data(), e ? e1.data() : e0.data(), gates.data(), e, B, R);
        ref::moe_mix_backward(d2.data(), dg2.data(), o1.data(), e ? e1.data() : e0.data(), gates.data(), e, B, R);
        EXPECT_EQ(d1, d2);
        EXPECT_EQ(dg1, dg2);
    }
}

// A frozen part gets no gradient buffer (backward skips its weight gradients) and the
// optimiser leaves it bit-identical; the other tensors' gradients are those of a full backward.
TEST(Freeze, FrozenTensorsGetNoGradientAndDoNotMove) {
    for (const auto& parts : std::vector<std::vector<Part>>{{Part::Attn}, {Part::Embed, Part::Norm}, {Part::Ffn}}) {
        ViTConfig c = preset("tiny");
        ViT m(c);
        m.init_weights(3);
        perturb(m, 4);
        const int B = 4;
        const auto img = images(c, B, 5);
        const std::vector<int32_t> lab = {0, 1, 2, 3};
        auto grads_of = [&](const std::vector<char>& frozen) {
            m.set_frozen(frozen);
            DataParallel dp(m, B, true);
            std::vector<float> g;
            test::train_step(dp, m, img.data(), lab.data(), B, active_full(c), 0.1f, 1.0f, g);
            return g;
        };
        const auto full = grads_of(std::vector<char>(m.layout.size(), 0));
        const auto mask = frozen_mask(m, parts);
        const auto part = grads_of(mask);
        for (size_t k = 0; k < m.layout.size(); ++k) {
            const auto& t = m.layout[k];
            for (size_t i = t.offset; i < t.offset + t.size; ++i) {
                if (mask[k]) ASSERT_EQ(part[i], 0.0f) << t.name;
                else ASSERT_NEAR(part[i], full[i], 1e-6f * (1 + std::fabs(full[i]))) << t.name;
            }
        }
        auto policy = make_dense_policy(m, mask);
        AdamW opt(m.params.size(), AdamWConfig{});
        const std::vector<float> before = m.params;
        opt.step(m.layout, m.params.data(), full.data(), 0.1f, &policy->lr_mults());   // even with a gradient
        for (size_t k = 0; k < m.layout.size(); ++k) {
            const auto& t = m.layout[k];
            const bool same = std::memcmp(before.data() + t.offset, m.params.data() + t.offset, t.size * 4) == 0;
            EXPECT_EQ(same, bool(mask[k])) << t.name;
        }
    }
}

// Starting from a task sub-network reproduces its logits exactly before any training; a new
// head (or another class count) starts fresh while the backbone is copied.
TEST(FineTune, InitFromSubnetReproducesItsLogits) {
    ViTConfig c = configs()[2];
    ViT super(c);
    super.init_weights(6);
    perturb(super, 7);
    super.cfg.tasks[1].route = {1, 0};
    auto sub = extract_task(super, 1, nullptr);
    const int B = 5;
    const auto img = images(c, B, 8);
    NetSpec spec = sub->spec();
    auto net = sub->rebuild(spec);
    net->init_weights(9);
    const InitReport rep = init_from(*net, *sub, false);
    EXPECT_TRUE(rep.head_copied);
    EXPECT_EQ(rep.copied, net->layout.size());
    Active a;
    net->resolve(a);
    EXPECT_EQ(logits_of(*net, a, img, B), logits_of(*sub, a, img, B));
    // A new head: the backbone is the subnet's, the head the fresh init (zero).
    auto fresh = sub->rebuild(spec);
    fresh->init_weights(9);
    EXPECT_FALSE(init_from(*fresh, *sub, true).head_copied);
    for (const auto& t : fresh->layout) {
        const bool same = std::memcmp(fresh->params.data() + t.offset, sub->params.data() + t.offset, t.size * 4) == 0;
        if (t.role.kind != Kind::Head) {
            EXPECT_TRUE(same) << t.name;
        }
    }
    // From the shared branch (no head at all) with 7 classes: a fresh head of 7.
    auto shared = extract_shared(super, nullptr);
    NetSpec s7 = shared->spec();
    s7.tasks = {TaskInfo{"new", 7, {}, {}}};
    auto net7 = shared->rebuild(s7);
    net7->init_weights(1);
    EXPECT_FALSE(init_from(*net7, *shared, false).head_copied);
    EXPECT_EQ(net7->spec().tasks[0].num_classes, 7);
}

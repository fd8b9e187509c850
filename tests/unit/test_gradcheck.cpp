// Finite-difference checks of every layer's backward and of the whole model.
//
// Method: L = sum_i out_i * R_i (R fixed random) for a layer, or the label-smoothed
// cross-entropy for the model; numeric dL/dx by central differences, eps = 1e-2 (layers) or
// 3e-3 (model), computed in float32 forward passes with L accumulated in double.
// Tolerance: |analytic - numeric| <= 1e-2 * max(1, |analytic|, |numeric|) + 2e-3 (layers).
// Justification: the forward rounding error of L is ~1e-6 |L|, which divided by 2*eps gives an
// absolute error of ~1e-4..1e-3 on the numeric derivative; the truncation error of central
// differences is O(eps^2 |f'''|) ~ 1e-4 for these smooth functions. A wrong backward (missing
// term, wrong sign, wrong stride) is off by O(1) relative, far outside the tolerance.
#include "layers/layers.h"
#include "nn/vit.h"
#include "nn/losses.h"
#include "nn/router.h"
#include "base/rng.h"

#include "test_util.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

using namespace ufo;
using ufo::test::randv;

namespace {

double weighted_sum(const std::vector<float>& out, const std::vector<float>& R) {
    double s = 0.0;
    for (size_t i = 0; i < out.size(); ++i) s += double(out[i]) * R[i];
    return s;
}

// Checks d(loss)/d(x[i]) for every i against `analytic`.
void check_fd(std::vector<float>& x, const std::vector<float>& analytic, const std::function<double()>& loss,
              const char* what, float eps = 1e-2f, float rel = 1e-2f, float abs_tol = 2e-3f) {
    ASSERT_EQ(x.size(), analytic.size());
    for (size_t i = 0; i < x.size(); ++i) {
        float keep = x[i];
        x[i] = keep + eps;
        double lp = loss();
        x[i] = keep - eps;
        double lm = loss();
        x[i] = keep;
        double num = (lp - lm) / (2.0 * eps);
        double tol = abs_tol + rel * std::max({1.0, std::fabs(num), double(std::fabs(analytic[i]))});
        ASSERT_NEAR(analytic[i], num, tol) << what << "[" << i << "]";
    }
}

}  // namespace

TEST(GradCheck, Matmul) {
    const int N = 5, IC = 7, OC = 4, ldw = 9;   // w is a column slice of a wider matrix
    auto inp = randv(N * IC, 1), w = randv(OC * ldw, 2), b = randv(OC, 3), R = randv(N * OC, 4);
    std::vector<float> out(N * OC);
    auto L = [&] {
        matmul_forward(out.data(), OC, inp.data(), IC, w.data(), ldw, b.data(), N, IC, OC, false);
        return weighted_sum(out, R);
    };
    std::vector<float> di(N * IC, 0.0f), dw(OC * ldw, 0.0f), db(OC, 0.0f);
    matmul_backward(di.data(), IC, dw.data(), ldw, db.data(), R.data(), OC, inp.data(), IC, w.data(), ldw, N, IC,
                    OC, true);
    check_fd(inp, di, L, "dinp");
    check_fd(w, dw, L, "dw");
    check_fd(b, db, L, "db");
}

TEST(GradCheck, LayerNormGrouped) {
    const int N = 4, G = 2, C = 6, ldi = 15;
    auto inp = randv(N * ldi, 5, 1.5f), w = randv(C, 6), b = randv(C, 7), R = randv(N * G * C, 8);
    std::vector<float> out(N * G * C), mean(N * G), rstd(N * G);
    auto L = [&] {
        layernorm_forward(out.data(), mean.data(), rstd.data(), inp.data(), ldi, w.data(), b.data(), N, G, C);
        return weighted_sum(out, R);
    };
    L();
    std::vector<float> di(N * ldi, 0.0f), dw(C, 0.0f), db(C, 0.0f);
    layernorm_backward(di.data(), ldi, dw.data(), db.data(), R.data(), inp.data(), ldi, w.data(), mean.data(),
                       rstd.data(), N, G, C);
    check_fd(inp, di, L, "dinp");
    check_fd(w, dw, L, "dw");
    check_fd(b, db, L, "db");
}

TEST(GradCheck, Gelu) {
    const int N = 37;
    auto x = randv(N, 9, 2.0f), R = randv(N, 10);
    std::vector<float> out(N), dx(N);
    auto L = [&] {
        gelu_forward(out.data(), x.data(), N);
        return weighted_sum(out, R);
    };
    gelu_backward(dx.data(), R.data(), x.data(), N);
    check_fd(x, dx, L, "dx", 1e-3f);
}

TEST(GradCheck, Attention) {
    const int B = 2, T = 5, NH = 2, HS = 4, A = NH * HS, ld = 3 * A;
    auto qkv = randv(B * T * ld, 11), R = randv(B * T * A, 12);
    std::vector<float> out(B * T * A), att(B * NH * T * T);
    auto L = [&] {
        attention_forward(out.data(), att.data(), qkv.data(), ld, qkv.data() + A, ld, qkv.data() + 2 * A, ld, B, T,
                          NH, HS);
        return weighted_sum(out, R);
    };
    L();
    std::vector<float> d(B * T * ld, 0.0f);
    attention_backward(d.data(), ld, d.data() + A, ld, d.data() + 2 * A, ld, R.data(), qkv.data(), ld,
                       qkv.data() + A, ld, qkv.data() + 2 * A, ld, att.data(), B, T, NH, HS);
    check_fd(qkv, d, L, "dqkv");
}

// ---------------------------------------------------------------- whole model

namespace {

ViTConfig tiny_config() {
    ViTConfig c = preset("tiny");   // 8x8x1, patch 4, dim 16, depth 2, heads 2, mlp 32
    c.tasks[0].num_classes = 5;
    c.in_mean = {0.4f};
    c.in_std = {0.3f};
    return c;
}

// Every parameter of the active path is checked; parameters off the path must get zero gradient.
// With active.routing on, the network draws its gates from its router (fixed noise) and
// backward adds the router's gradient: both are inside the checked function.
void check_model(const ViTConfig& cfg, const Active& active) {
    ViT m(cfg);
    m.init_weights(42);
    // Larger weights than the 0.02 init make every path through the network matter.
    Rng r(7);
    for (auto& w : m.params) w += 0.2f * r.normal();
    const int B = 3;
    std::vector<uint8_t> img(size_t(B) * cfg.img_h * cfg.img_w * cfg.img_c);
    for (auto& v : img) v = uint8_t(r.below(256));
    std::vector<int32_t> lab = {0, 3, 2};
    const int K = cfg.tasks[active.task].num_classes;
    Activations act;
    act.allocate(cfg, B, true);

    std::vector<float> grads(m.params.size(), 0.0f);
    m.forward(act, img.data(), B, active);
    std::fill(act.d_logits, act.d_logits + B * K, 0.0f);
    cross_entropy_backward(act.d_logits, act.probs, lab.data(), B, K, 0.1f, 1.0f / B);
    m.backward(act, B, active, grads.data());

    auto L = [&] {
        m.forward(act, img.data(), B, active);
        // loss() returns a float mean of a double sum; recompute in double for FD precision.
        double s = 0.0;
        const float off = 0.1f / K, on = 0.9f + off;
        for (int b = 0; b < B; ++b) {
            const float* z = act.logits + b * K;
            double mx = *std::max_element(z, z + K), se = 0.0;
            for (int i = 0; i < K; ++i) se += std::exp(double(z[i]) - mx);
            for (int i = 0; i < K; ++i) s -= (i == lab[b] ? on : off) * (z[i] - mx - std::log(se));
        }
        return s / B;
    };
    const float eps = 3e-3f;
    int checked = 0;
    for (const auto& t : m.layout) {
        for (size_t i = 0; i < t.size; ++i) {
            float* w = &m.params[t.offset + i];
            float an = grads[t.offset + i];
            float keep = *w;
            *w = keep + eps;
            double lp = L();
            *w = keep - eps;
            double lm = L();
            *w = keep;
            double num = (lp - lm) / (2.0 * eps);
            double tol = 2e-3 + 2e-2 * std::max({1e-1, std::fabs(num), double(std::fabs(an))});
            ASSERT_NEAR(an, num, tol) << t.name << "[" << i << "]";
            ++checked;
        }
    }
    EXPECT_GT(checked, 1000);
}

}  // namespace

TEST(GradCheck, ModelDense) { check_model(tiny_config(), active_full(tiny_config())); }

TEST(GradCheck, ModelQkNorm) {
    auto c = tiny_config();
    c.qk_norm = true;
    check_model(c, active_full(c));
}

TEST(GradCheck, ModelParallelBlockNoQkvBias) {
    auto c = tiny_config();
    c.parallel_block = true;
    c.qkv_bias = false;
    check_model(c, active_full(c));
}

TEST(GradCheck, ModelActiveSubnetworkAndSecondFfnSet) {
    auto c = tiny_config();
    c.qk_norm = true;
    c.ffn_sets = 2;
    c.tasks.push_back(TaskInfo{"b", 4, {}, {}});
    Active a;
    a.task = 1;
    a.depth = 2;
    a.heads = {1, 2};
    a.hidden = {32, 20};
    a.ffn_set = {1, 0};
    resolve_active(c, a);
    check_model(c, a);
}

// A cut-out sub-architecture: blocks of their own widths (1 and 2 heads, 20 and 32 hidden
// units, so the stored q/k/v and projection widths differ from dim), run with fewer heads than
// block 1 stores: strides of every sliced weight and gradient are inside the check.
TEST(GradCheck, ModelPerBlockWidths) {
    auto c = tiny_config();
    c.qk_norm = true;
    c.block_heads = {1, 2};
    c.block_hidden = {20, 32};
    Active a;
    a.heads = {1, 1};
    a.hidden = {12, 32};
    resolve_active(c, a);
    check_model(c, a);
}

// The Task-MoE supernet on the soft path: per-sample Gumbel-softmax gates (fixed noise, tau 1,
// no hard one-hot) mix the shared and the task's own FFN in every block. Checks the FFN
// mixing backward (both experts' weights, d gates) and the router backward (logits) together.
// The hard straight-through path uses the same backward with one-hot forward values, which
// is an estimator, not a derivative, so finite differences apply to the soft path only.
TEST(GradCheck, TaskMoeSoftRouting) {
    for (bool parallel : {false, true}) {
        auto c = tiny_config();
        c.parallel_block = parallel;
        c.tasks.push_back(TaskInfo{"b", 4, {}, {}});
        c.make_supernet();
        Active a = active_full(c, 1);
        a.routing.on = true;
        a.routing.tau = 1.0f;
        a.routing.hard = false;
        a.routing.seed = 99;
        a.routing.step = 3;
        check_model(c, a);
    }
}

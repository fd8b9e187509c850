// Packed-weight products (layers/packed_matmul.h, oneDNN) against their plain twin, the
// reference matmul (kernels/reference.cpp), and a whole ViT run with packed weights against the
// same ViT on the plain kernels.
// Tolerance: 2e-5 relative to the largest output magnitude, as for the fast kernels: both sum
// K <= 200 float products in other orders (error ~ K * 6e-8 ~ 1e-5); the twin sums in double.
#include "layers/blas.h"
#include "layers/packed_matmul.h"
#include "nn/vit.h"
#include "reference.h"
#include "train/data_parallel.h"

#include "test_util.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

using namespace ufo;
using ufo::test::randv;

namespace {
void expect_close(const float* a, const float* b, size_t n, float rel, const char* what) {
    float mx = 1e-6f;
    for (size_t i = 0; i < n; ++i) mx = std::max(mx, std::fabs(b[i]));
    for (size_t i = 0; i < n; ++i) ASSERT_NEAR(a[i], b[i], rel * mx) << what << " at " << i;
}
}  // namespace

TEST(PackedMatmul, StridedWithAndWithoutBiasAndAccumulateMatchReference) {
    const int IC = 24, OC = 13, ldi = 30, ldw = 28, ldo = 17;
    auto w = randv(OC * ldw, 2), b = randv(OC, 3);
    PackedMatmuls pm;
    for (int N : {1, 37, 200})
        for (bool acc : {false, true})
            for (const float* bias : std::vector<const float*>{b.data(), nullptr}) {
                auto inp = randv(N * ldi, uint64_t(N)), out0 = randv(N * ldo, 4);
                auto o1 = out0, o2 = out0;
                pm.forward(o1.data(), ldo, inp.data(), ldi, w.data(), ldw, bias, N, IC, OC, acc);
                ref::matmul_forward(o2.data(), ldo, inp.data(), ldi, w.data(), ldw, bias, N, IC, OC, acc);
                expect_close(o1.data(), o2.data(), o1.size(), 2e-5f, "packed matmul");
                // Columns past OC (row stride ldo) are never written.
                for (int n = 0; n < N; ++n)
                    for (int o = OC; o < ldo; ++o) ASSERT_EQ(o1[size_t(n) * ldo + o], out0[size_t(n) * ldo + o]);
            }
    // One weight, one packed copy per layout: far fewer copies than calls.
    EXPECT_GE(pm.packed_weights(), 1u);
    EXPECT_LE(pm.packed_weights(), 3u);
}

// The post-op forms: GELU (oneDNN's tanh form, as gelu_forward) and a residual from another
// buffer, against the reference product followed by the reference GELU or added to a copy.
TEST(PackedMatmul, GeluAndResidualPostOpsMatchReference) {
    const int IC = 24, OC = 13, ldi = 30, ldw = 28, ldo = 17, ldr = 19;
    auto w = randv(OC * ldw, 5), b = randv(OC, 6);
    PackedMatmuls pm;
    for (int N : {1, 37, 200}) {
        auto inp = randv(N * ldi, uint64_t(N) + 7, 2.0f), res = randv(N * ldr, uint64_t(N) + 8);
        std::vector<float> o1(size_t(N) * ldo, 0.0f), pre(o1.size(), 0.0f), o2(o1.size(), 0.0f);
        pm.forward_gelu(o1.data(), ldo, inp.data(), ldi, w.data(), ldw, b.data(), N, IC, OC);
        ref::matmul_forward(pre.data(), ldo, inp.data(), ldi, w.data(), ldw, b.data(), N, IC, OC, false);
        ref::gelu_forward(o2.data(), pre.data(), long(pre.size()));
        expect_close(o1.data(), o2.data(), o1.size(), 2e-5f, "packed matmul + GELU");

        std::vector<float> r1(size_t(N) * ldo, 0.0f), r2(r1.size(), 0.0f);
        for (int n = 0; n < N; ++n)
            for (int o = 0; o < OC; ++o) r2[size_t(n) * ldo + o] = res[size_t(n) * ldr + o];
        pm.forward_residual(r1.data(), ldo, res.data(), ldr, inp.data(), ldi, w.data(), ldw, b.data(), N, IC, OC);
        ref::matmul_forward(r2.data(), ldo, inp.data(), ldi, w.data(), ldw, b.data(), N, IC, OC, true);
        expect_close(r1.data(), r2.data(), r1.size(), 2e-5f, "packed matmul + residual");
        for (int n = 0; n < N; ++n)   // columns past OC are never written
            for (int o = OC; o < ldo; ++o) ASSERT_EQ(r1[size_t(n) * ldo + o], 0.0f);
    }
    EXPECT_EQ(pm.packed_weights(), 1u);   // one weight: its packed copy serves every form
}

TEST(PackedMatmul, RepeatedCallsWithNewInputsUseTheSameWeights) {
    const int N = 50, IC = 32, OC = 48;
    auto w = randv(OC * IC, 9);
    PackedMatmuls pm;
    for (uint64_t seed = 10; seed < 13; ++seed) {
        auto inp = randv(N * IC, seed);
        std::vector<float> o1(size_t(N) * OC), o2(o1.size());
        pm.forward(o1.data(), OC, inp.data(), IC, w.data(), IC, nullptr, N, IC, OC, false);
        ref::matmul_forward(o2.data(), OC, inp.data(), IC, w.data(), IC, nullptr, N, IC, OC, false);
        expect_close(o1.data(), o2.data(), o1.size(), 2e-5f, "repeated call");
    }
    EXPECT_EQ(pm.packed_weights(), 1u);
}

// The ViT with packed weights (ufo-infer's path) against the plain kernels, for a dense model
// and for a sub-architecture whose products read slices of wider weights (row strides).
TEST(PackedMatmul, VitForwardMatchesThePlainKernels) {
    ViTConfig c = preset("tiny");
    c.elastic = ElasticSpace{{1, 2}, {1, 2}, {c.mlp_hidden / 2, c.mlp_hidden}};
    ViT m(c);
    m.init_weights(5);
    const int B = 3;
    std::vector<uint8_t> images(size_t(B) * c.image_size());
    for (size_t i = 0; i < images.size(); ++i) images[i] = uint8_t((i * 37 + 11) % 256);
    Active full = active_full(c), part = full;
    part.depth = 2;
    part.heads = {1, 2};
    part.hidden = {c.mlp_hidden / 2, c.mlp_hidden};
    for (const Active& a : {full, part}) {
        DataParallel plain(m, B, false), packed(m, B, false);
        packed.pack_weights();
        plain.forward(m, images.data(), B, a);
        packed.forward(m, images.data(), B, a);
        const int K = c.tasks[0].num_classes;
        expect_close(packed.logits(), plain.logits(), size_t(B) * K, 2e-5f, "ViT logits");
        EXPECT_GT(packed.workspace(0).packed->packed_weights(), 0u);
    }
}

// Batch-1 passes of a fixed model choose their thread count by measurement; the choice must
// never show in the output, so one thread and two give the same logits bit for bit.
TEST(PackedMatmul, BatchOfOneGivesTheSameLogitsOnOneAndTwoThreads) {
    ViTConfig c = preset("small");
    ViT m(c);
    m.init_weights(7);
    std::vector<uint8_t> image(c.image_size());
    for (size_t i = 0; i < image.size(); ++i) image[i] = uint8_t((i * 53 + 7) % 256);
    const int K = c.tasks[0].num_classes;
    std::vector<float> first;
    for (int t : {1, 2, 1, 2}) {
        set_threads(t);
        DataParallel dp(m, 1, false);
        dp.pack_weights();
        for (int rep = 0; rep < 12; ++rep) {   // through the measuring passes and past them
            dp.forward(m, image.data(), 1, active_full(c));
            std::vector<float> z(dp.logits(), dp.logits() + K);
            if (first.empty()) {
                first = z;
            }
            ASSERT_EQ(z, first) << "threads " << t << " pass " << rep;
        }
        if (t == 2) {
            EXPECT_NE(dp.batch1_threads(), 0);
        }
    }
    set_threads(2);
}

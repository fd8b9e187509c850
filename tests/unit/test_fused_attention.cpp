// The fused inference attention (layers/fused_attention.h) against its twins, attention_forward
// and the plain reference, and the whole inference path of a ViT (packed weights with GELU and
// residual post-ops, fused attention, the batch in passes) against the training forward pass,
// which uses none of them.
// Tolerance: 2e-5 relative to the largest output magnitude, as for the other fast kernels:
// the kernels sum up to 64 products per score and per output in other orders than the twins
// (error ~ 64 * 6e-8 ~ 4e-6), and exp differs from std::exp by < 2e-7 relative.
#include "layers/blas.h"
#include "layers/fused_attention.h"
#include "layers/layers.h"
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
void expect_close(const float* a, const float* b, size_t n, float rel, const std::string& what) {
    float mx = 1e-6f;
    for (size_t i = 0; i < n; ++i) mx = std::max(mx, std::fabs(b[i]));
    for (size_t i = 0; i < n; ++i) ASSERT_NEAR(a[i], b[i], rel * mx) << what << " at " << i;
}
}  // namespace

TEST(FusedAttention, MatchesBothTwinsOverShapes) {
    if (!attention_fused_supported(50)) GTEST_SKIP() << "no AVX-512 on this CPU";
    EXPECT_FALSE(attention_fused_supported(65));
    EXPECT_FALSE(attention_fused_supported(0));
    // Token counts around the 16-lane registers and the 6-row tiles; head sizes below, at and
    // past 16 and past 64 (more than one chunk of value columns), and odd ones.
    for (int T : {1, 5, 16, 17, 50, 64})
        for (int HS : {1, 7, 16, 32, 40, 64, 100}) {
            const int B = 2, NH = 2, A = NH * HS, ld = 3 * A + 3;   // q, k, v inside one padded row
            auto qkv = randv(size_t(B) * T * ld, uint64_t(T * 131 + HS), 2.0f);
            const float *q = qkv.data(), *k = q + A, *v = q + 2 * A;
            std::vector<float> fused(size_t(B) * T * A), plain(fused.size()), twin(fused.size());
            std::vector<float> att(size_t(B) * NH * T * T), att2(att.size());
            attention_fused_forward(fused.data(), q, ld, k, ld, v, ld, B, T, NH, HS);
            attention_forward(plain.data(), att.data(), q, ld, k, ld, v, ld, B, T, NH, HS);
            ref::attention_forward(twin.data(), att2.data(), q, ld, k, ld, v, ld, B, T, NH, HS);
            const std::string what = "T " + std::to_string(T) + " HS " + std::to_string(HS);
            expect_close(fused.data(), twin.data(), fused.size(), 2e-5f, what + " vs reference");
            expect_close(fused.data(), plain.data(), fused.size(), 2e-5f, what + " vs attention_forward");
        }
}

// Large score differences: probabilities that underflow to 0 must not become NaN, and a row
// dominated by one key returns that key's value.
TEST(FusedAttention, ExtremeScoresStayFinite) {
    if (!attention_fused_supported(50)) GTEST_SKIP() << "no AVX-512 on this CPU";
    const int B = 1, T = 50, NH = 1, HS = 32, ld = 3 * HS;
    auto qkv = randv(size_t(T) * ld, 41, 30.0f);   // scores up to ~30 * 30 * 32 / sqrt(32)
    std::vector<float> fused(size_t(T) * HS), twin(fused.size()), att(size_t(T) * T);
    attention_fused_forward(fused.data(), qkv.data(), ld, qkv.data() + HS, ld, qkv.data() + 2 * HS, ld, B, T, NH, HS);
    ref::attention_forward(twin.data(), att.data(), qkv.data(), ld, qkv.data() + HS, ld, qkv.data() + 2 * HS, ld, B, T,
                           NH, HS);
    for (float x : fused) ASSERT_TRUE(std::isfinite(x));
    expect_close(fused.data(), twin.data(), fused.size(), 2e-5f, "extreme scores");
}

// Each (batch, head) pair is computed whole by one thread, so the thread count never changes
// a bit of the output.
TEST(FusedAttention, SameBitsOnOneAndTwoThreads) {
    if (!attention_fused_supported(50)) GTEST_SKIP() << "no AVX-512 on this CPU";
    const int B = 5, T = 50, NH = 3, HS = 32, A = NH * HS, ld = 3 * A;
    auto qkv = randv(size_t(B) * T * ld, 43);
    std::vector<float> one(size_t(B) * T * A), two(one.size());
    set_threads(1);
    attention_fused_forward(one.data(), qkv.data(), ld, qkv.data() + A, ld, qkv.data() + 2 * A, ld, B, T, NH, HS);
    set_threads(2);
    attention_fused_forward(two.data(), qkv.data(), ld, qkv.data() + A, ld, qkv.data() + 2 * A, ld, B, T, NH, HS);
    EXPECT_EQ(one, two);
}

// ufo-infer's path against the training forward pass: packed weights (GELU and residual adds
// as post-ops), fused attention where the CPU runs it, and a batch split into passes of
// inference_chunk() images, against plain products, attention_forward and one pass.
TEST(FusedAttention, InferencePathMatchesTheTrainingForward) {
    for (const char* name : {"small", "long"}) {
        ViTConfig c = preset("small");
        if (std::string(name) == "long") {   // 257 tokens: past the fused kernel, 7 images a pass
            c.img_h = c.img_w = 64;
            c.dim = 64;
            c.heads = 2;
            c.mlp_hidden = 128;
        }
        ViT m(c);
        m.init_weights(11);
        const int B = 30, K = c.tasks[0].num_classes;
        if (std::string(name) == "long") {
            EXPECT_LT(m.inference_chunk(), B / 2);
        }
        std::vector<uint8_t> images(size_t(B) * c.image_size());
        for (size_t i = 0; i < images.size(); ++i) images[i] = uint8_t((i * 41 + 3) % 256);
        const Active a = active_full(c);
        auto ws = m.workspace(B, true);
        Active train_pass = a;
        train_pass.train = false;   // no dropout or routing noise: the same function
        m.forward(*ws, images.data(), B, train_pass);
        for (int t : {1, 2}) {
            set_threads(t);
            DataParallel dp(m, B, false);
            dp.pack_weights();
            dp.forward(m, images.data(), B, a);
            expect_close(dp.logits(), ws->logits, size_t(B) * K, 2e-5f,
                         std::string(name) + " logits, threads " + std::to_string(t));
        }
    }
    set_threads(2);
}

// Fast kernels (lib/layers.cpp) against their plain twins (kernels/reference.cpp).
// Tolerance: 2e-5 relative to the largest magnitude of the output. The twins accumulate in double
// and use libm; the fast path accumulates float sums of <= 200 terms in a different order
// (error ~ terms * 6e-8 ~ 1e-5) and uses exp8 (relative error < 2e-7).
#include "layers/layers.h"
#include "reference.h"
#include "base/rng.h"
#include "vec_math.h"

#include "test_util.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

using namespace ufo;
using ufo::test::randv;

namespace {
void expect_close(const std::vector<float>& a, const std::vector<float>& b, float rel, const char* what) {
    ASSERT_EQ(a.size(), b.size());
    float mx = 1e-6f;
    for (float x : b) mx = std::max(mx, std::fabs(x));
    for (size_t i = 0; i < a.size(); ++i)
        ASSERT_NEAR(a[i], b[i], rel * mx) << what << " at " << i;
}

// exp16 over an array, on a CPU that has AVX-512 (the caller checks).
UFO_AVX512 void exp16_array(float* y, const float* x, int n) {
    for (int i = 0; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, vec::exp16(_mm512_loadu_ps(x + i)));
}
}  // namespace

// The vector exponentials against libm in double: relative error < 4e-7 (the polynomial's
// 2e-7 plus float rounding of the reduction) where e^x is above 1e-37, and below that within
// 2e-38 (exp16 goes to denormals through scalef; exp8 returns 0 for results under twice the
// smallest normal float, where its 2^n runs out of exponent bits).
TEST(Kernels, VectorExpMatchesLibm) {
    const int n = 4096;   // a multiple of 16
    std::vector<float> x8(n), x16(n), y(n);
    for (int i = 0; i < n; ++i) {
        x8[i] = -87.0f + 175.0f * float(i) / (n - 1);   // exp8's whole range
        x16[i] = -104.0f * float(i) / (n - 1);          // exp16's: softmax arguments, <= 0
    }
    auto check = [&](const std::vector<float>& x, const char* what) {
        for (int i = 0; i < n; ++i) {
            const double want = std::exp(double(x[i]));
            if (want >= 1e-37) ASSERT_NEAR(y[i], want, 4e-7 * want) << what << " at x = " << x[i];
            else ASSERT_LE(std::fabs(y[i] - want), 2e-38) << what << " at x = " << x[i];
        }
    };
    for (int i = 0; i < n; i += 8) _mm256_storeu_ps(&y[i], vec::exp8(_mm256_loadu_ps(&x8[i])));
    check(x8, "exp8");
    if (!__builtin_cpu_supports("avx512f")) GTEST_SKIP() << "exp16 needs AVX-512";
    exp16_array(y.data(), x16.data(), n);
    check(x16, "exp16");
}

TEST(Kernels, MatmulStridedMatchesReference) {
    const int N = 37, IC = 24, OC = 13, ldi = 30, ldw = 28, ldo = 17;
    auto inp = randv(N * ldi, 1), w = randv(OC * ldw, 2), b = randv(OC, 3), out0 = randv(N * ldo, 4);
    for (bool acc : {false, true}) {
        auto o1 = out0, o2 = out0;
        matmul_forward(o1.data(), ldo, inp.data(), ldi, w.data(), ldw, b.data(), N, IC, OC, acc);
        ref::matmul_forward(o2.data(), ldo, inp.data(), ldi, w.data(), ldw, b.data(), N, IC, OC, acc);
        expect_close(o1, o2, 2e-5f, "matmul_forward");
    }
    auto dout = randv(N * ldo, 5);
    auto di1 = randv(N * ldi, 6), di2 = di1, dw1 = randv(OC * ldw, 7), dw2 = dw1, db1 = randv(OC, 8), db2 = db1;
    matmul_backward(di1.data(), ldi, dw1.data(), ldw, db1.data(), dout.data(), ldo, inp.data(), ldi, w.data(), ldw,
                    N, IC, OC, true);
    ref::matmul_backward(di2.data(), ldi, dw2.data(), ldw, db2.data(), dout.data(), ldo, inp.data(), ldi, w.data(),
                         ldw, N, IC, OC, true);
    expect_close(di1, di2, 2e-5f, "dinp");
    expect_close(dw1, dw2, 2e-5f, "dw");
    expect_close(db1, db2, 2e-5f, "db");
}

TEST(Kernels, LayerNormGroupedMatchesReference) {
    const int N = 19, G = 3, C = 20, ldi = 70;
    auto inp = randv(N * ldi, 11, 2.0f), w = randv(C, 12), b = randv(C, 13), dout = randv(N * G * C, 14);
    std::vector<float> o1(N * G * C), o2(o1), m1(N * G), m2(m1), r1(N * G), r2(r1);
    layernorm_forward(o1.data(), m1.data(), r1.data(), inp.data(), ldi, w.data(), b.data(), N, G, C);
    ref::layernorm_forward(o2.data(), m2.data(), r2.data(), inp.data(), ldi, w.data(), b.data(), N, G, C);
    expect_close(o1, o2, 2e-5f, "ln out");
    auto d1 = randv(N * ldi, 15), d2 = d1, dw1 = randv(C, 16), dw2 = dw1, db1 = randv(C, 17), db2 = db1;
    layernorm_backward(d1.data(), ldi, dw1.data(), db1.data(), dout.data(), inp.data(), ldi, w.data(), m2.data(),
                       r2.data(), N, G, C);
    ref::layernorm_backward(d2.data(), ldi, dw2.data(), db2.data(), dout.data(), inp.data(), ldi, w.data(),
                            m2.data(), r2.data(), N, G, C);
    expect_close(d1, d2, 2e-5f, "ln dinp");
    expect_close(dw1, dw2, 2e-5f, "ln dw");
    expect_close(db1, db2, 2e-5f, "ln db");
}

TEST(Kernels, GeluMatchesReferenceOverWideRange) {
    const long N = 1003;   // not a multiple of 8: exercises the scalar tail
    std::vector<float> x(N);
    for (long i = 0; i < N; ++i) x[i] = -12.0f + 24.0f * i / (N - 1);
    auto dout = randv(N, 21);
    std::vector<float> o1(N), o2(N), d1(N), d2(N);
    gelu_forward(o1.data(), x.data(), N);
    ref::gelu_forward(o2.data(), x.data(), N);
    gelu_backward(d1.data(), dout.data(), x.data(), N);
    ref::gelu_backward(d2.data(), dout.data(), x.data(), N);
    for (long i = 0; i < N; ++i) {
        ASSERT_NEAR(o1[i], o2[i], 2e-6f * std::max(1.0f, std::fabs(o2[i]))) << x[i];
        ASSERT_NEAR(d1[i], d2[i], 2e-6f * std::max(1.0f, std::fabs(d2[i]))) << x[i];
    }
}

TEST(Kernels, AttentionMatchesReference) {
    const int B = 2, T = 11, NH = 3, HS = 8, A = NH * HS, ld = 3 * A + 5;
    auto qkv = randv(B * T * ld, 31), dout = randv(B * T * A, 32);
    std::vector<float> o1(B * T * A), o2(o1), a1(B * NH * T * T), a2(a1);
    const float *q = qkv.data(), *k = q + A, *v = q + 2 * A;
    attention_forward(o1.data(), a1.data(), q, ld, k, ld, v, ld, B, T, NH, HS);
    ref::attention_forward(o2.data(), a2.data(), q, ld, k, ld, v, ld, B, T, NH, HS);
    expect_close(o1, o2, 2e-5f, "att out");
    expect_close(a1, a2, 2e-5f, "att probs");
    auto g1 = randv(B * T * ld, 33), g2 = g1;
    attention_backward(g1.data(), ld, g1.data() + A, ld, g1.data() + 2 * A, ld, dout.data(), q, ld, k, ld, v, ld,
                       a2.data(), B, T, NH, HS);
    ref::attention_backward(g2.data(), ld, g2.data() + A, ld, g2.data() + 2 * A, ld, dout.data(), q, ld, k, ld, v,
                            ld, a2.data(), B, T, NH, HS);
    expect_close(g1, g2, 2e-5f, "att dqkv");
}

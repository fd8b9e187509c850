// CNN kernels (lib/layers/cnn_layers.cpp): the fast path against its plain twins
// (kernels/reference_cnn.cpp), finite-difference checks of every backward, BatchNorm's
// train/eval/running-statistics semantics, and bitwise independence of the thread count.
//
// Fast vs reference — tolerances, relative to the largest magnitude of the reference output:
//  * convolution 2e-5: the fast path sums n <= 720 products in float (fused multiply-adds in
//    the direct kernel; OpenBLAS's blocking and pixel chunks in the backward), the twin in
//    double. For random-sign terms of size t the rounding errors walk randomly over partial sums
//    of size ~t sqrt(k): ~6e-8 t n / sqrt(2) in all, i.e. ~6e-8 sqrt(n) ~ 2e-6 of a typical
//    output (t sqrt(n)) at n = 720, 10x inside the tolerance. A wrong tap, stride or channel
//    is off by O(1).
//  * col2im 1e-6: float sums of <= ceil(K/S)^2 = 9 terms, the twin's in double.
//  * batch norm 1e-5: float partial sums over 256-row chunks (chunks added in double), float
//    mean/rstd in the normalisation; ~256 * 6e-8 = 1.5e-5 at worst per chunk, far less in
//    practice because chunk errors are random. Running statistics 1e-6: the same double
//    formula in both, on float inputs; only the final rounding differs.
//  * average pool 2e-6 (forward and backward), global average pool 1e-5 forward (a float sum of
//    H*W <= 99 terms times a rounded 1/n), 1e-6 backward (one product per element).
//  * image normalisation 1e-6 of max(1, |out|): three rounded float operations against double.
//  * ReLU, max pool (values and indices), im2col: exact (selection and copies, no arithmetic);
//    max pool backward too: it adds the same float values in the same order as the twin.
//
// Finite differences — method as tests/unit/test_gradcheck.cpp: L = sum_i out_i * R_i with R
// fixed random, L accumulated in double from float forward passes, central differences.
// Tolerance |analytic - numeric| <= 1e-2 * max(1, |analytic|, |numeric|) + 2e-3.
//  * Linear maps (convolution, average pools): eps = 0.1. Central differences are exact for a
//    linear function, so only the forward's rounding (~1e-6 |L|, over 2 eps) remains: ~1e-5.
//  * Piecewise-linear maps (ReLU, max pool): eps = 1e-2 with inputs kept 0.05 away from the kinks
//    (|x| >= 0.05; window values distinct by >= 0.05), so no perturbation crosses one and the
//    difference is exact again up to rounding (~1e-4).
//  * Batch norm (smooth): eps = 1e-2; truncation error O(eps^2 |f'''|) ~ 1e-4 with rstd ~ 1,
//    rounding ~1e-4. A wrong backward (a missing mean term, a wrong sign) is off by O(1).
#include "layers/cnn_layers.h"
#include "layers/blas.h"
#include "reference_cnn.h"
#include "base/rng.h"

#include "test_util.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <numeric>
#include <vector>
#include <omp.h>

using namespace ufo;
using ufo::test::randv;

namespace {

float max_abs(const std::vector<float>& v) {
    float mx = 1e-6f;
    for (float x : v) mx = std::max(mx, std::fabs(x));
    return mx;
}

void expect_close(const std::vector<float>& a, const std::vector<float>& b, float rel, const std::string& what) {
    ASSERT_EQ(a.size(), b.size()) << what;
    const float tol = rel * max_abs(b);
    for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], tol) << what << " at " << i;
}

template <class T>
void expect_equal(const std::vector<T>& a, const std::vector<T>& b, const std::string& what) {
    ASSERT_EQ(a.size(), b.size()) << what;
    for (size_t i = 0; i < a.size(); ++i) ASSERT_EQ(a[i], b[i]) << what << " at " << i;
}

template <class T>
bool bitwise_equal(const std::vector<T>& a, const std::vector<T>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

double weighted_sum(const std::vector<float>& out, const std::vector<float>& R) {
    double s = 0.0;
    for (size_t i = 0; i < out.size(); ++i) s += double(out[i]) * R[i];
    return s;
}

// Checks d(loss)/d(x[i]) for every i against `analytic` (central differences).
void check_fd(std::vector<float>& x, const std::vector<float>& analytic, const std::function<double()>& loss,
              const std::string& what, float eps, float rel = 1e-2f, float abs_tol = 2e-3f) {
    ASSERT_EQ(x.size(), analytic.size());
    for (size_t i = 0; i < x.size(); ++i) {
        const float keep = x[i];
        x[i] = keep + eps;
        const double lp = loss();
        x[i] = keep - eps;
        const double lm = loss();
        x[i] = keep;
        const double num = (lp - lm) / (2.0 * eps);
        const double tol = abs_tol + rel * std::max({1.0, std::fabs(num), double(std::fabs(analytic[i]))});
        ASSERT_NEAR(analytic[i], num, tol) << what << "[" << i << "]";
    }
}

struct ConvShape {
    int B, H, W, IC, OC, K, S, P;
    bool bias;
    int OH() const { return conv2d_out_size(H, K, S, P); }
    int OW() const { return conv2d_out_size(W, K, S, P); }
    size_t in_size() const { return size_t(B) * H * W * IC; }
    size_t out_size() const { return size_t(B) * OH() * OW() * OC; }
    size_t w_size() const { return size_t(OC) * IC * K * K; }
    size_t col_size() const { return conv2d_col_size(B, H, W, IC, K, S, P); }
    std::string name() const {
        char s[96];
        std::snprintf(s, sizeof s, "B%d %dx%d %d->%d K%d S%d P%d%s", B, H, W, IC, OC, K, S, P, bias ? "" : " nobias");
        return s;
    }
};

// Odd sizes, B = 1 and B > 1, stride 1 and 2, padding 0, 1 and 2, K = 1, 3 and 5; OC below 8,
// at 8/16 multiples and in between (the direct kernel's channel tails); outputs smaller than one
// 6-pixel block and blocks that span rows and images; the last two have B*OH*OW >= 512, where
// the backward sums dw over pixel chunks (3x3, and the pointwise path).
const ConvShape kConvShapes[] = {
    {1, 5, 7, 3, 5, 3, 1, 1, true},    {2, 9, 8, 4, 17, 3, 2, 1, true},  {3, 6, 6, 2, 8, 1, 1, 0, false},
    {2, 7, 7, 1, 16, 3, 2, 0, true},   {2, 11, 10, 16, 32, 3, 1, 1, true}, {1, 6, 5, 3, 24, 5, 1, 2, false},
    {2, 8, 9, 5, 10, 1, 2, 0, true},   {1, 4, 4, 2, 3, 3, 1, 0, true},   {1, 3, 3, 2, 4, 5, 1, 1, true},
    {3, 14, 14, 32, 64, 3, 2, 1, true}, {2, 20, 18, 3, 8, 3, 1, 1, true},  {3, 13, 14, 6, 12, 1, 1, 0, false},
};

struct PoolShape {
    int B, H, W, C, K, S;
    int OH() const { return conv2d_out_size(H, K, S, 0); }
    int OW() const { return conv2d_out_size(W, K, S, 0); }
    size_t in_size() const { return size_t(B) * H * W * C; }
    size_t out_size() const { return size_t(B) * OH() * OW() * C; }
    std::string name() const {
        char s[64];
        std::snprintf(s, sizeof s, "B%d %dx%dx%d K%d S%d", B, H, W, C, K, S);
        return s;
    }
};

// Floor mode with odd sizes, overlapping windows (K > S), stride 1.
const PoolShape kPoolShapes[] = {{2, 7, 9, 5, 2, 2}, {1, 8, 8, 16, 3, 2}, {3, 5, 6, 3, 3, 1}, {2, 6, 6, 8, 2, 1}};

// Tests here change the thread count; later tests get the count they started with.
struct RestoreThreads {
    int n = get_threads();
    ~RestoreThreads() { set_threads(n); }
};

}  // namespace

// ================================================================ (a) fast path vs reference

TEST(CnnKernels, ConvOutSize) {
    EXPECT_EQ(conv2d_out_size(28, 3, 1, 1), 28);
    EXPECT_EQ(conv2d_out_size(28, 3, 2, 1), 14);
    EXPECT_EQ(conv2d_out_size(7, 3, 2, 1), 4);
    EXPECT_EQ(conv2d_out_size(7, 2, 2, 0), 3);
    EXPECT_EQ(conv2d_out_size(5, 5, 1, 0), 1);
    EXPECT_EQ(conv2d_out_size(3, 5, 1, 0), 0);
    EXPECT_EQ(conv2d_col_size(2, 28, 28, 16, 3, 2, 1), size_t(2) * 14 * 14 * 16 * 9);
}

TEST(CnnKernels, Conv2dForwardMatchesReference) {
    uint64_t seed = 100;
    for (const auto& s : kConvShapes) {
        auto inp = randv(s.in_size(), ++seed), w = randv(s.w_size(), ++seed, 0.5f), b = randv(s.OC, ++seed);
        const float* bp = s.bias ? b.data() : nullptr;
        std::vector<float> want(s.out_size());
        ref::conv2d_forward(want.data(), nullptr, inp.data(), w.data(), bp, s.B, s.H, s.W, s.IC, s.OC, s.K, s.S, s.P);
        // Exactly the advertised scratch, and a guard band after the output that must stay put.
        const float guard = 12345.0f;
        std::vector<float> scratch(conv2d_forward_scratch(s.IC, s.OC, s.K), -1.0f), col(s.col_size(), -1.0f);
        std::vector<float> got(s.out_size() + 32, guard), got2(got);
        conv2d_forward(got.data(), scratch.data(), inp.data(), w.data(), bp, s.B, s.H, s.W, s.IC, s.OC, s.K, s.S,
                       s.P);
        conv2d_forward_im2col(got2.data(), col.data(), inp.data(), w.data(), bp, s.B, s.H, s.W, s.IC, s.OC, s.K,
                              s.S, s.P);
        for (size_t i = s.out_size(); i < got.size(); ++i) {
            ASSERT_EQ(got[i], guard) << "direct wrote past the output, " << s.name();
            ASSERT_EQ(got2[i], guard) << "im2col wrote past the output, " << s.name();
        }
        got.resize(s.out_size());
        got2.resize(s.out_size());
        expect_close(got, want, 2e-5f, "direct " + s.name());
        expect_close(got2, want, 2e-5f, "im2col " + s.name());
    }
}

TEST(CnnKernels, Im2colCol2imMatchReference) {
    uint64_t seed = 200;
    for (const auto& s : kConvShapes) {
        auto inp = randv(s.in_size(), ++seed);
        std::vector<float> c1(s.col_size()), c2(s.col_size());
        conv2d_im2col(c1.data(), inp.data(), s.B, s.H, s.W, s.IC, s.K, s.S, s.P);
        ref::conv2d_im2col(c2.data(), inp.data(), s.B, s.H, s.W, s.IC, s.K, s.S, s.P);
        expect_equal(c1, c2, "im2col " + s.name());
        // col2im accumulates: start from a random dinp. At most ceil(K/S)^2 terms per entry.
        auto dcol = randv(s.col_size(), ++seed), d1 = randv(s.in_size(), ++seed), d2 = d1;
        conv2d_col2im(d1.data(), dcol.data(), s.B, s.H, s.W, s.IC, s.K, s.S, s.P);
        ref::conv2d_col2im(d2.data(), dcol.data(), s.B, s.H, s.W, s.IC, s.K, s.S, s.P);
        expect_close(d1, d2, 1e-6f, "col2im " + s.name());
    }
}

TEST(CnnKernels, Conv2dBackwardMatchesReference) {
    uint64_t seed = 300;
    for (const auto& s : kConvShapes) {
        auto inp = randv(s.in_size(), ++seed), w = randv(s.w_size(), ++seed, 0.5f), dout = randv(s.out_size(), ++seed);
        // Gradients start non-zero: the kernels must add to them.
        const auto di0 = randv(s.in_size(), ++seed), dw0 = randv(s.w_size(), ++seed), db0 = randv(s.OC, ++seed);
        // Exactly the advertised scratch, and a guard band after it that must stay put.
        const size_t ns = conv2d_backward_scratch(s.B, s.H, s.W, s.IC, s.OC, s.K, s.S, s.P);
        std::vector<float> scratch(ns + 32);
        // All gradients; then no input gradient (first layer); then frozen weight and no bias.
        for (int variant = 0; variant < 3; ++variant) {
            const bool want_di = variant != 1, want_dw = variant != 2, want_db = s.bias && variant != 2;
            auto di1 = di0, di2 = di0, dw1 = dw0, dw2 = dw0, db1 = db0, db2 = db0;
            std::fill(scratch.begin(), scratch.end(), 12345.0f);
            conv2d_backward(want_di ? di1.data() : nullptr, want_dw ? dw1.data() : nullptr,
                            want_db ? db1.data() : nullptr, scratch.data(), dout.data(), inp.data(), w.data(), s.B, s.H,
                            s.W, s.IC, s.OC, s.K, s.S, s.P);
            ref::conv2d_backward(want_di ? di2.data() : nullptr, want_dw ? dw2.data() : nullptr,
                                 want_db ? db2.data() : nullptr, nullptr, dout.data(), inp.data(), w.data(), s.B, s.H,
                                 s.W, s.IC, s.OC, s.K, s.S, s.P);
            const std::string v = s.name() + " variant " + std::to_string(variant);
            for (size_t i = ns; i < scratch.size(); ++i) ASSERT_EQ(scratch[i], 12345.0f) << "past the scratch, " << v;
            expect_close(di1, di2, 2e-5f, "dinp " + v);
            expect_close(dw1, dw2, 2e-5f, "dw " + v);
            expect_close(db1, db2, 2e-5f, "db " + v);
            if (!want_di) expect_equal(di1, di0, "untouched dinp " + v);
            if (!want_dw) expect_equal(dw1, dw0, "untouched dw " + v);
            if (!want_db) expect_equal(db1, db0, "untouched db " + v);
        }
    }
}

TEST(CnnKernels, BatchNormMatchesReference) {
    struct Shape { int N, C; };
    // N = 1 (no spread), odd N, N over several 256-row chunks, C over one 64-channel slice.
    const Shape shapes[] = {{1, 5}, {35, 3}, {286, 16}, {1000, 70}};
    uint64_t seed = 400;
    for (const auto& sh : shapes) {
        const int N = sh.N, C = sh.C;
        const std::string name = "N" + std::to_string(N) + " C" + std::to_string(C);
        auto inp = randv(size_t(N) * C, ++seed, 2.0f), gamma = randv(C, ++seed), beta = randv(C, ++seed);
        for (int i = 0; i < N * C; ++i) inp[i] += float(i % C) - 1.5f;   // per-channel offsets
        std::vector<float> o1(size_t(N) * C), o2(o1), m1(C), m2(C), r1(C), r2(C);
        batchnorm_forward_train(o1.data(), m1.data(), r1.data(), inp.data(), gamma.data(), beta.data(), N, C);
        ref::batchnorm_forward_train(o2.data(), m2.data(), r2.data(), inp.data(), gamma.data(), beta.data(), N, C);
        expect_close(o1, o2, 1e-5f, "train out " + name);
        expect_close(m1, m2, 1e-5f, "mean " + name);
        expect_close(r1, r2, 1e-5f, "rstd " + name);

        auto rm = randv(C, ++seed), rv = randv(C, ++seed);
        for (auto& v : rv) v = 0.2f + v * v;
        batchnorm_forward_eval(o1.data(), inp.data(), gamma.data(), beta.data(), rm.data(), rv.data(), N, C);
        ref::batchnorm_forward_eval(o2.data(), inp.data(), gamma.data(), beta.data(), rm.data(), rv.data(), N, C);
        expect_close(o1, o2, 1e-5f, "eval out " + name);

        auto dout = randv(size_t(N) * C, ++seed);
        auto d1 = randv(size_t(N) * C, ++seed), d2 = d1, g1 = randv(C, ++seed), g2 = g1, b1 = randv(C, ++seed), b2 = b1;
        batchnorm_backward(d1.data(), g1.data(), b1.data(), dout.data(), inp.data(), gamma.data(), m2.data(),
                           r2.data(), N, C);
        ref::batchnorm_backward(d2.data(), g2.data(), b2.data(), dout.data(), inp.data(), gamma.data(), m2.data(),
                                r2.data(), N, C);
        expect_close(d1, d2, 1e-5f, "dinp " + name);
        expect_close(g1, g2, 1e-5f, "dgamma " + name);
        expect_close(b1, b2, 1e-5f, "dbeta " + name);

        auto rm1 = rm, rv1 = rv, rm2 = rm, rv2 = rv;
        batchnorm_update_running(rm1.data(), rv1.data(), m2.data(), r2.data(), N, C, 0.1f);
        ref::batchnorm_update_running(rm2.data(), rv2.data(), m2.data(), r2.data(), N, C, 0.1f);
        expect_close(rm1, rm2, 1e-6f, "run_mean " + name);
        expect_close(rv1, rv2, 1e-6f, "run_var " + name);
    }
}

TEST(CnnKernels, BatchNormBackwardFrozenAffine) {
    const int N = 40, C = 6;
    auto inp = randv(N * C, 450), gamma = randv(C, 451), beta = randv(C, 452), dout = randv(N * C, 453);
    std::vector<float> out(N * C), mean(C), rstd(C);
    batchnorm_forward_train(out.data(), mean.data(), rstd.data(), inp.data(), gamma.data(), beta.data(), N, C);
    std::vector<float> d1(N * C, 0.0f), d2(d1), dg(C, 0.0f), db(C, 0.0f);
    batchnorm_backward(d1.data(), dg.data(), db.data(), dout.data(), inp.data(), gamma.data(), mean.data(),
                       rstd.data(), N, C);
    batchnorm_backward(d2.data(), nullptr, nullptr, dout.data(), inp.data(), gamma.data(), mean.data(), rstd.data(),
                       N, C);
    expect_equal(d2, d1, "dinp without parameter gradients");
}

TEST(CnnKernels, ReluMatchesReference) {
    const long N = 1003;
    auto x = randv(N, 500), dout = randv(N, 501), d0 = randv(N, 502);
    x[7] = 0.0f;
    x[8] = -0.0f;
    std::vector<float> o1(N), o2(N);
    relu_forward(o1.data(), x.data(), N);
    ref::relu_forward(o2.data(), x.data(), N);
    expect_equal(o1, o2, "relu");
    auto d1 = d0, d2 = d0, d3 = d0;
    relu_backward(d1.data(), dout.data(), x.data(), N);
    ref::relu_backward(d2.data(), dout.data(), x.data(), N);
    relu_backward(d3.data(), dout.data(), o1.data(), N);   // from the output: the same mask
    expect_equal(d1, d2, "relu backward");
    expect_equal(d3, d2, "relu backward from the output");
    auto inplace = x;
    relu_forward(inplace.data(), inplace.data(), N);
    expect_equal(inplace, o2, "relu in place");
}

TEST(CnnKernels, PoolingMatchesReference) {
    uint64_t seed = 600;
    for (const auto& s : kPoolShapes) {
        auto inp = randv(s.in_size(), ++seed), dout = randv(s.out_size(), ++seed), d0 = randv(s.in_size(), ++seed);
        inp[0] = inp[s.C] = 10.0f;   // a tie (channel 0, pixels (0,0) and (0,1)): the first wins in both
        std::vector<float> o1(s.out_size()), o2(o1);
        std::vector<int32_t> i1(s.out_size()), i2(i1);
        maxpool2d_forward(o1.data(), i1.data(), inp.data(), s.B, s.H, s.W, s.C, s.K, s.S);
        ref::maxpool2d_forward(o2.data(), i2.data(), inp.data(), s.B, s.H, s.W, s.C, s.K, s.S);
        expect_equal(o1, o2, "maxpool " + s.name());
        expect_equal(i1, i2, "maxpool idx " + s.name());
        auto d1 = d0, d2 = d0;
        maxpool2d_backward(d1.data(), dout.data(), i2.data(), s.B, s.H, s.W, s.C, s.K, s.S);
        ref::maxpool2d_backward(d2.data(), dout.data(), i2.data(), s.B, s.H, s.W, s.C, s.K, s.S);
        expect_equal(d1, d2, "maxpool backward " + s.name());

        avgpool2d_forward(o1.data(), inp.data(), s.B, s.H, s.W, s.C, s.K, s.S);
        ref::avgpool2d_forward(o2.data(), inp.data(), s.B, s.H, s.W, s.C, s.K, s.S);
        expect_close(o1, o2, 2e-6f, "avgpool " + s.name());
        d1 = d0, d2 = d0;
        avgpool2d_backward(d1.data(), dout.data(), s.B, s.H, s.W, s.C, s.K, s.S);
        ref::avgpool2d_backward(d2.data(), dout.data(), s.B, s.H, s.W, s.C, s.K, s.S);
        expect_close(d1, d2, 2e-6f, "avgpool backward " + s.name());

        std::vector<float> g1(size_t(s.B) * s.C), g2(g1);
        global_avgpool_forward(g1.data(), inp.data(), s.B, s.H, s.W, s.C);
        ref::global_avgpool_forward(g2.data(), inp.data(), s.B, s.H, s.W, s.C);
        expect_close(g1, g2, 1e-5f, "global avgpool " + s.name());
        auto gd = randv(g1.size(), ++seed);
        d1 = d0, d2 = d0;
        global_avgpool_backward(d1.data(), gd.data(), s.B, s.H, s.W, s.C);
        ref::global_avgpool_backward(d2.data(), gd.data(), s.B, s.H, s.W, s.C);
        expect_close(d1, d2, 1e-6f, "global avgpool backward " + s.name());
    }
}

TEST(CnnKernels, MaxPoolPicksFirstOfTiesAndPropagatesNaN) {
    // One 1x4x4x1 image, 2x2 windows stride 2.
    std::vector<float> x = {1, 1, 0, 5,    //
                            1, 0, 2, 2,    //
                            -1, -2, 3, NAN,  //
                            -3, -1, 4, 7};
    std::vector<float> out(4);
    std::vector<int32_t> idx(4);
    maxpool2d_forward(out.data(), idx.data(), x.data(), 1, 4, 4, 1, 2, 2);
    EXPECT_EQ(out[0], 1.0f);
    EXPECT_EQ(idx[0], 0);    // three ones: the first in (ky, kx) order
    EXPECT_EQ(out[1], 5.0f);
    EXPECT_EQ(idx[1], 3);
    EXPECT_EQ(out[2], -1.0f);
    EXPECT_EQ(idx[2], 8);
    EXPECT_TRUE(std::isnan(out[3]));
    EXPECT_EQ(idx[3], 11);
}

// (x/255 - mean)/std in float against double: a few ulps of max(1, |out|).
TEST(CnnKernels, NormalizeImagesMatchesReference) {
    const long N = 77;
    const int C = 3;
    std::vector<uint8_t> img(N * C);
    for (long i = 0; i < N * C; ++i) img[i] = uint8_t((i * 37) % 256);
    img[0] = 0;
    img[1] = 255;
    const float mean[C] = {0.485f, 0.456f, 0.406f}, stdv[C] = {0.229f, 0.224f, 0.225f};
    std::vector<float> o1(N * C), o2(N * C);
    normalize_images(o1.data(), img.data(), N, C, mean, stdv);
    ref::normalize_images(o2.data(), img.data(), N, C, mean, stdv);
    for (long i = 0; i < N * C; ++i) ASSERT_NEAR(o1[i], o2[i], 1e-6f * std::max(1.0f, std::fabs(o2[i]))) << i;
    EXPECT_NEAR(o1[0], -0.485f / 0.229f, 1e-6f);
    EXPECT_NEAR(o1[1], (1.0f - 0.456f) / 0.224f, 1e-6f);
}

// ================================================================ (b) finite differences

TEST(CnnGradCheck, Conv2d) {
    // Padding 1 / stride 1; stride 2 without padding; the pointwise path; K=5 with padding 2.
    const ConvShape shapes[] = {{2, 5, 6, 3, 4, 3, 1, 1, true},
                                {1, 7, 7, 2, 3, 3, 2, 0, true},
                                {2, 3, 4, 4, 5, 1, 1, 0, true},
                                {1, 5, 4, 2, 9, 5, 2, 2, true}};
    uint64_t seed = 700;
    for (const auto& s : shapes) {
        auto inp = randv(s.in_size(), ++seed), w = randv(s.w_size(), ++seed, 0.5f), b = randv(s.OC, ++seed);
        auto R = randv(s.out_size(), ++seed);
        std::vector<float> out(s.out_size()), scratch(conv2d_forward_scratch(s.IC, s.OC, s.K));
        std::vector<float> bscratch(conv2d_backward_scratch(s.B, s.H, s.W, s.IC, s.OC, s.K, s.S, s.P));
        auto L = [&] {
            conv2d_forward(out.data(), scratch.data(), inp.data(), w.data(), b.data(), s.B, s.H, s.W, s.IC, s.OC, s.K,
                           s.S, s.P);
            return weighted_sum(out, R);
        };
        std::vector<float> di(s.in_size(), 0.0f), dw(s.w_size(), 0.0f), db(s.OC, 0.0f);
        conv2d_backward(di.data(), dw.data(), db.data(), bscratch.data(), R.data(), inp.data(), w.data(), s.B, s.H,
                        s.W, s.IC, s.OC, s.K, s.S, s.P);
        check_fd(inp, di, L, "dinp " + s.name(), 0.1f);
        check_fd(w, dw, L, "dw " + s.name(), 0.1f);
        check_fd(b, db, L, "db " + s.name(), 0.1f);
    }
}

TEST(CnnGradCheck, BatchNormTraining) {
    const int N = 2 * 3 * 3, C = 3;   // B=2 images of 3x3
    auto inp = randv(N * C, 710, 1.5f), gamma = randv(C, 711), beta = randv(C, 712), R = randv(N * C, 713);
    std::vector<float> out(N * C), mean(C), rstd(C);
    auto L = [&] {
        batchnorm_forward_train(out.data(), mean.data(), rstd.data(), inp.data(), gamma.data(), beta.data(), N, C);
        return weighted_sum(out, R);
    };
    L();
    std::vector<float> di(N * C, 0.0f), dg(C, 0.0f), db(C, 0.0f);
    batchnorm_backward(di.data(), dg.data(), db.data(), R.data(), inp.data(), gamma.data(), mean.data(), rstd.data(),
                       N, C);
    check_fd(inp, di, L, "dinp", 1e-2f);
    check_fd(gamma, dg, L, "dgamma", 1e-2f);
    check_fd(beta, db, L, "dbeta", 1e-2f);
}

TEST(CnnGradCheck, Relu) {
    const long N = 41;
    auto x = randv(N, 720), R = randv(N, 721);
    for (auto& v : x)
        if (std::fabs(v) < 0.05f) v = v < 0 ? -0.05f - v : 0.05f + v;   // away from the kink
    std::vector<float> out(N), dx(N, 0.0f);
    auto L = [&] {
        relu_forward(out.data(), x.data(), N);
        return weighted_sum(out, R);
    };
    relu_backward(dx.data(), R.data(), x.data(), N);
    check_fd(x, dx, L, "dx", 1e-2f);
}

TEST(CnnGradCheck, MaxPool) {
    const PoolShape shapes[] = {{2, 5, 4, 3, 2, 2}, {1, 7, 6, 2, 3, 2}};   // floor mode; overlapping windows
    uint64_t seed = 730;
    for (const auto& s : shapes) {
        // Distinct values 0.05 apart in random order: no perturbation of 1e-2 changes an argmax.
        std::vector<float> x(s.in_size());
        std::vector<size_t> order(x.size());
        std::iota(order.begin(), order.end(), size_t(0));
        Rng r(++seed);
        for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[r.below(i)]);
        for (size_t i = 0; i < x.size(); ++i) x[order[i]] = 0.05f * float(i) - 1.0f;
        auto R = randv(s.out_size(), ++seed);
        std::vector<float> out(s.out_size());
        std::vector<int32_t> idx(s.out_size());
        auto L = [&] {
            maxpool2d_forward(out.data(), idx.data(), x.data(), s.B, s.H, s.W, s.C, s.K, s.S);
            return weighted_sum(out, R);
        };
        L();
        std::vector<float> dx(s.in_size(), 0.0f);
        maxpool2d_backward(dx.data(), R.data(), idx.data(), s.B, s.H, s.W, s.C, s.K, s.S);
        check_fd(x, dx, L, "dx " + s.name(), 1e-2f);
    }
}

TEST(CnnGradCheck, AvgPool) {
    const PoolShape shapes[] = {{2, 5, 4, 3, 2, 2}, {1, 7, 6, 2, 3, 2}, {1, 4, 5, 2, 2, 1}};
    uint64_t seed = 740;
    for (const auto& s : shapes) {
        auto x = randv(s.in_size(), ++seed), R = randv(s.out_size(), ++seed);
        std::vector<float> out(s.out_size());
        auto L = [&] {
            avgpool2d_forward(out.data(), x.data(), s.B, s.H, s.W, s.C, s.K, s.S);
            return weighted_sum(out, R);
        };
        std::vector<float> dx(s.in_size(), 0.0f);
        avgpool2d_backward(dx.data(), R.data(), s.B, s.H, s.W, s.C, s.K, s.S);
        check_fd(x, dx, L, "dx " + s.name(), 0.1f);
    }
}

TEST(CnnGradCheck, GlobalAvgPool) {
    const int B = 2, H = 3, W = 5, C = 4;
    auto x = randv(B * H * W * C, 750), R = randv(B * C, 751);
    std::vector<float> out(B * C);
    auto L = [&] {
        global_avgpool_forward(out.data(), x.data(), B, H, W, C);
        return weighted_sum(out, R);
    };
    std::vector<float> dx(x.size(), 0.0f);
    global_avgpool_backward(dx.data(), R.data(), B, H, W, C);
    check_fd(x, dx, L, "dx", 0.1f);
}

// ================================================================ (c) BatchNorm semantics

// Training mode normalises with the batch's own statistics: before the affine map every channel
// has mean 0 and (biased) variance var/(var+eps) = 1 - O(1e-5); after it, mean beta and
// standard deviation |gamma|. The saved mean/rstd are the batch mean and 1/sqrt(var+eps).
TEST(CnnBatchNorm, TrainingUsesBatchStatistics) {
    const int N = 500, C = 4;
    const float cm[C] = {3.0f, -2.0f, 0.5f, 10.0f}, cs[C] = {2.0f, 0.5f, 1.0f, 5.0f};
    auto inp = randv(N * C, 800);
    for (int n = 0; n < N; ++n)
        for (int c = 0; c < C; ++c) inp[n * C + c] = cm[c] + cs[c] * inp[n * C + c];
    std::vector<float> ones(C, 1.0f), zeros(C, 0.0f), out(N * C), mean(C), rstd(C);
    batchnorm_forward_train(out.data(), mean.data(), rstd.data(), inp.data(), ones.data(), zeros.data(), N, C);
    for (int c = 0; c < C; ++c) {
        double m = 0, v = 0, om = 0, ov = 0;
        for (int n = 0; n < N; ++n) m += inp[n * C + c], om += out[n * C + c];
        m /= N, om /= N;
        for (int n = 0; n < N; ++n) {
            v += (inp[n * C + c] - m) * (inp[n * C + c] - m);
            ov += (out[n * C + c] - om) * (out[n * C + c] - om);
        }
        v /= N, ov /= N;
        EXPECT_NEAR(om, 0.0, 1e-5) << c;
        EXPECT_NEAR(ov, 1.0, 1e-4) << c;
        EXPECT_NEAR(mean[c], m, 1e-5 * std::fabs(m) + 1e-6) << c;
        EXPECT_NEAR(rstd[c], 1.0 / std::sqrt(v + 1e-5), 1e-5 / std::sqrt(v)) << c;
    }
    const std::vector<float> gamma = {2.0f, -0.5f, 1.0f, 3.0f}, beta = {1.0f, 0.0f, -4.0f, 0.25f};
    batchnorm_forward_train(out.data(), mean.data(), rstd.data(), inp.data(), gamma.data(), beta.data(), N, C);
    for (int c = 0; c < C; ++c) {
        double om = 0, ov = 0;
        for (int n = 0; n < N; ++n) om += out[n * C + c];
        om /= N;
        for (int n = 0; n < N; ++n) ov += (out[n * C + c] - om) * (out[n * C + c] - om);
        EXPECT_NEAR(om, beta[c], 1e-5) << c;
        EXPECT_NEAR(std::sqrt(ov / N), std::fabs(gamma[c]), 1e-4) << c;
    }
}

// Eval mode uses the running statistics only: each row is normalised on its own (a row gives the
// same output alone and inside a batch), by hand-computable constants, whatever the batch holds.
TEST(CnnBatchNorm, EvalUsesRunningStatistics) {
    const int N = 6, C = 2;
    const std::vector<float> inp = {1, -1, 2, 0, 3, 1, 4, 2, 5, 3, 100, -50};
    const std::vector<float> gamma = {2.0f, 0.5f}, beta = {0.5f, -1.0f}, rm = {1.5f, -0.5f}, rv = {4.0f, 0.25f};
    std::vector<float> out(N * C);
    batchnorm_forward_eval(out.data(), inp.data(), gamma.data(), beta.data(), rm.data(), rv.data(), N, C);
    for (int n = 0; n < N; ++n)
        for (int c = 0; c < C; ++c) {
            const double want = (inp[n * C + c] - rm[c]) / std::sqrt(double(rv[c]) + 1e-5) * gamma[c] + beta[c];
            EXPECT_NEAR(out[n * C + c], want, 1e-5 * std::max(1.0, std::fabs(want))) << n << "," << c;
        }
    std::vector<float> one(C);
    batchnorm_forward_eval(one.data(), inp.data() + 2 * C, gamma.data(), beta.data(), rm.data(), rv.data(), 1, C);
    EXPECT_EQ(one[0], out[2 * C]);
    EXPECT_EQ(one[1], out[2 * C + 1]);
    // Training mode on the same batch differs (its statistics are the batch's, not the running ones).
    std::vector<float> tr(N * C), mean(C), rstd(C);
    batchnorm_forward_train(tr.data(), mean.data(), rstd.data(), inp.data(), gamma.data(), beta.data(), N, C);
    EXPECT_GT(std::fabs(tr[0] - out[0]), 0.1f);
}

// PyTorch: running_mean = (1-m) running_mean + m mean; running_var = (1-m) running_var +
// m var_unbiased, var_unbiased = var_biased * N/(N-1); momentum 0.1.
TEST(CnnBatchNorm, UpdateRunningMatchesPyTorch) {
    const int N = 4, C = 3;
    // Channel 0: 1,2,3,4 (mean 2.5, biased var 1.25, unbiased 5/3); channel 1: constant 7
    // (var 0); channel 2: -1,1,-1,1 (mean 0, biased var 1, unbiased 4/3).
    const std::vector<float> inp = {1, 7, -1, 2, 7, 1, 3, 7, -1, 4, 7, 1};
    const std::vector<float> gamma(C, 1.0f), beta(C, 0.0f);
    std::vector<float> out(N * C), mean(C), rstd(C);
    batchnorm_forward_train(out.data(), mean.data(), rstd.data(), inp.data(), gamma.data(), beta.data(), N, C);
    std::vector<float> rm = {0.5f, -1.0f, 0.0f}, rv = {2.0f, 1.0f, 1.0f};
    batchnorm_update_running(rm.data(), rv.data(), mean.data(), rstd.data(), N, C, 0.1f);
    EXPECT_NEAR(rm[0], 0.9 * 0.5 + 0.1 * 2.5, 1e-6);
    EXPECT_NEAR(rm[1], 0.9 * -1.0 + 0.1 * 7.0, 1e-6);
    EXPECT_NEAR(rm[2], 0.0, 1e-6);
    EXPECT_NEAR(rv[0], 0.9 * 2.0 + 0.1 * (5.0 / 3.0), 1e-6);
    EXPECT_NEAR(rv[1], 0.9 * 1.0 + 0.1 * 0.0, 1e-6);
    EXPECT_NEAR(rv[2], 0.9 * 1.0 + 0.1 * (4.0 / 3.0), 1e-6);
    // A second step composes (the same batch again, momentum 0.1).
    batchnorm_update_running(rm.data(), rv.data(), mean.data(), rstd.data(), N, C, 0.1f);
    EXPECT_NEAR(rm[0], 0.9 * (0.9 * 0.5 + 0.25) + 0.25, 1e-6);
    EXPECT_NEAR(rv[0], 0.9 * (0.9 * 2.0 + 0.1 * (5.0 / 3.0)) + 0.1 * (5.0 / 3.0), 1e-6);
    // Another momentum; N = 1 keeps the (zero) biased variance instead of dividing by N-1 = 0.
    std::vector<float> m1(C), r1(C), o1(C);
    batchnorm_forward_train(o1.data(), m1.data(), r1.data(), inp.data(), gamma.data(), beta.data(), 1, C);
    std::vector<float> rm1 = {0.0f, 0.0f, 0.0f}, rv1 = {1.0f, 1.0f, 1.0f};
    batchnorm_update_running(rm1.data(), rv1.data(), m1.data(), r1.data(), 1, C, 0.5f);
    EXPECT_NEAR(rm1[0], 0.5, 1e-6);
    EXPECT_NEAR(rm1[1], 3.5, 1e-6);
    for (int c = 0; c < C; ++c) EXPECT_NEAR(rv1[c], 0.5, 1e-6) << c;
}

// ================================================================ (d) thread count

namespace {

struct AllOutputs {
    std::vector<float> conv, conv_im2col, di, dw, db, bn, bn_mean, bn_rstd, bn_eval, bn_di, bn_dg, bn_db;
    std::vector<float> relu, relu_d, mp, mp_d, ap, ap_d, gap, gap_d, norm;
    std::vector<int32_t> mp_idx;
};

// Large enough that every kernel runs its threaded path (>= 32768 elements or multiply-adds),
// that OpenBLAS would split its products over two threads (M*N*K > 65536*4; it gives other bits
// then, which is why the convolution cuts its products into fixed single-threaded pieces), that
// dw is summed over 8 pixel chunks (M = 2048), and that batch norm runs over several 256-row
// chunks.
AllOutputs run_all(int threads) {
    set_threads(threads);
    EXPECT_EQ(get_threads(), threads);
    const ConvShape s = {8, 16, 16, 16, 32, 3, 1, 1, true};
    const PoolShape p = {8, 16, 16, 32, 3, 2};
    const int N = s.B * s.OH() * s.OW(), C = s.OC;
    AllOutputs r;
    auto inp = randv(s.in_size(), 900), w = randv(s.w_size(), 901, 0.3f), b = randv(s.OC, 902);
    auto dout = randv(s.out_size(), 903);
    std::vector<float> scratch(conv2d_forward_scratch(s.IC, s.OC, s.K)), col(s.col_size());
    std::vector<float> bscratch(conv2d_backward_scratch(s.B, s.H, s.W, s.IC, s.OC, s.K, s.S, s.P));
    r.conv.resize(s.out_size());
    r.conv_im2col.resize(s.out_size());
    conv2d_forward(r.conv.data(), scratch.data(), inp.data(), w.data(), b.data(), s.B, s.H, s.W, s.IC, s.OC, s.K, s.S,
                   s.P);
    conv2d_forward_im2col(r.conv_im2col.data(), col.data(), inp.data(), w.data(), b.data(), s.B, s.H, s.W, s.IC,
                          s.OC, s.K, s.S, s.P);
    r.di.assign(s.in_size(), 0.5f);
    r.dw.assign(s.w_size(), 0.25f);
    r.db.assign(s.OC, 0.125f);
    conv2d_backward(r.di.data(), r.dw.data(), r.db.data(), bscratch.data(), dout.data(), inp.data(), w.data(), s.B, s.H,
                    s.W, s.IC, s.OC, s.K, s.S, s.P);

    auto gamma = randv(C, 904), beta = randv(C, 905), rm = randv(C, 906);
    const std::vector<float> rv(C, 1.5f);
    r.bn.resize(size_t(N) * C);
    r.bn_mean.resize(C);
    r.bn_rstd.resize(C);
    batchnorm_forward_train(r.bn.data(), r.bn_mean.data(), r.bn_rstd.data(), r.conv.data(), gamma.data(), beta.data(),
                            N, C);
    r.bn_eval.resize(size_t(N) * C);
    batchnorm_forward_eval(r.bn_eval.data(), r.conv.data(), gamma.data(), beta.data(), rm.data(), rv.data(), N, C);
    r.bn_di.assign(size_t(N) * C, 0.0f);
    r.bn_dg.assign(C, 0.0f);
    r.bn_db.assign(C, 0.0f);
    batchnorm_backward(r.bn_di.data(), r.bn_dg.data(), r.bn_db.data(), dout.data(), r.conv.data(), gamma.data(),
                       r.bn_mean.data(), r.bn_rstd.data(), N, C);

    r.relu.resize(r.bn.size());
    relu_forward(r.relu.data(), r.bn.data(), long(r.bn.size()));
    r.relu_d.assign(r.bn.size(), 0.0f);
    relu_backward(r.relu_d.data(), dout.data(), r.bn.data(), long(r.bn.size()));

    auto pdout = randv(p.out_size(), 907);
    r.mp.resize(p.out_size());
    r.mp_idx.resize(p.out_size());
    maxpool2d_forward(r.mp.data(), r.mp_idx.data(), r.relu.data(), p.B, p.H, p.W, p.C, p.K, p.S);
    r.mp_d.assign(p.in_size(), 0.0f);
    maxpool2d_backward(r.mp_d.data(), pdout.data(), r.mp_idx.data(), p.B, p.H, p.W, p.C, p.K, p.S);
    r.ap.resize(p.out_size());
    avgpool2d_forward(r.ap.data(), r.relu.data(), p.B, p.H, p.W, p.C, p.K, p.S);
    r.ap_d.assign(p.in_size(), 0.0f);
    avgpool2d_backward(r.ap_d.data(), pdout.data(), p.B, p.H, p.W, p.C, p.K, p.S);
    r.gap.resize(size_t(p.B) * p.C);
    global_avgpool_forward(r.gap.data(), r.relu.data(), p.B, p.H, p.W, p.C);
    r.gap_d.assign(p.in_size(), 0.0f);
    global_avgpool_backward(r.gap_d.data(), pdout.data(), p.B, p.H, p.W, p.C);

    const long npx = 16384;
    std::vector<uint8_t> img(size_t(npx) * 3);
    for (size_t i = 0; i < img.size(); ++i) img[i] = uint8_t(i * 131 % 251);
    const float mean[3] = {0.5f, 0.4f, 0.3f}, stdv[3] = {0.25f, 0.2f, 0.3f};
    r.norm.resize(img.size());
    normalize_images(r.norm.data(), img.data(), npx, 3, mean, stdv);
    return r;
}

}  // namespace

TEST(CnnThreads, BitwiseIndependentOfThreadCount) {
    RestoreThreads restore;
    const AllOutputs a = run_all(1), b = run_all(2);
    EXPECT_TRUE(bitwise_equal(a.conv, b.conv)) << "conv2d_forward";
    EXPECT_TRUE(bitwise_equal(a.conv_im2col, b.conv_im2col)) << "conv2d_forward_im2col";
    EXPECT_TRUE(bitwise_equal(a.di, b.di)) << "conv dinp";
    EXPECT_TRUE(bitwise_equal(a.dw, b.dw)) << "conv dw";
    EXPECT_TRUE(bitwise_equal(a.db, b.db)) << "conv db";
    EXPECT_TRUE(bitwise_equal(a.bn, b.bn)) << "batchnorm train out";
    EXPECT_TRUE(bitwise_equal(a.bn_mean, b.bn_mean)) << "batchnorm mean";
    EXPECT_TRUE(bitwise_equal(a.bn_rstd, b.bn_rstd)) << "batchnorm rstd";
    EXPECT_TRUE(bitwise_equal(a.bn_eval, b.bn_eval)) << "batchnorm eval out";
    EXPECT_TRUE(bitwise_equal(a.bn_di, b.bn_di)) << "batchnorm dinp";
    EXPECT_TRUE(bitwise_equal(a.bn_dg, b.bn_dg)) << "batchnorm dgamma";
    EXPECT_TRUE(bitwise_equal(a.bn_db, b.bn_db)) << "batchnorm dbeta";
    EXPECT_TRUE(bitwise_equal(a.relu, b.relu)) << "relu";
    EXPECT_TRUE(bitwise_equal(a.relu_d, b.relu_d)) << "relu backward";
    EXPECT_TRUE(bitwise_equal(a.mp, b.mp)) << "maxpool";
    EXPECT_TRUE(bitwise_equal(a.mp_idx, b.mp_idx)) << "maxpool idx";
    EXPECT_TRUE(bitwise_equal(a.mp_d, b.mp_d)) << "maxpool backward";
    EXPECT_TRUE(bitwise_equal(a.ap, b.ap)) << "avgpool";
    EXPECT_TRUE(bitwise_equal(a.ap_d, b.ap_d)) << "avgpool backward";
    EXPECT_TRUE(bitwise_equal(a.gap, b.gap)) << "global avgpool";
    EXPECT_TRUE(bitwise_equal(a.gap_d, b.gap_d)) << "global avgpool backward";
    EXPECT_TRUE(bitwise_equal(a.norm, b.norm)) << "normalize_images";
}

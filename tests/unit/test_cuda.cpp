// The CUDA backend against the CPU path. Runs where a device exists; elsewhere it checks that
// the backend reports itself unavailable instead of pretending.
#include "layers/blas.h"
#include "cuda_backend.h"
#include "layers/layers.h"
#include "base/rng.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

using namespace ufo;

TEST(Cuda, SgemmAndGeluMatchCpu) {
    if (!cuda::available()) {
        EXPECT_FALSE(cuda::describe().empty());
        GTEST_SKIP() << "no CUDA device: " << cuda::describe();
    }
    const int M = 67, N = 45, K = 130;
    Rng r(3);
    std::vector<float> A(M * K), B(N * K), C1(M * N, 0.5f), C2(C1);
    for (auto& x : A) x = r.normal();
    for (auto& x : B) x = r.normal();
    sgemm(false, true, M, N, K, 1.0f, A.data(), K, B.data(), K, 0.5f, C1.data(), N);
    cuda::sgemm_host(false, true, M, N, K, 1.0f, A.data(), K, B.data(), K, 0.5f, C2.data(), N);
    // Sums of 130 products of unit normals: |C| ~ 11; both sides round in float32 in different
    // orders (and cuBLAS may use TF32-free FMA trees), so 1e-4 absolute is ~1e-5 relative.
    for (int i = 0; i < M * N; ++i) ASSERT_NEAR(C1[i], C2[i], 1e-4f) << i;
    std::vector<float> x(1000), g1(1000), g2(1000);
    for (int i = 0; i < 1000; ++i) x[i] = -8.0f + 16.0f * i / 999;
    gelu_forward(g1.data(), x.data(), 1000);
    cuda::gelu_forward_host(g2.data(), x.data(), 1000);
    for (int i = 0; i < 1000; ++i) ASSERT_NEAR(g1[i], g2[i], 1e-5f * std::max(1.0f, std::fabs(g1[i])));
}

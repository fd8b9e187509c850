// blas.h — the thin BLAS interface every layer goes through. The CPU backend is oneDNN's sgemm
// (or OpenBLAS's with UFO_SGEMM=openblas; blas.cpp says why); a CUDA backend (kernels/*.cu,
// cuBLAS) implements the same calls on device buffers.
#pragma once
#include <string>

namespace ufo {

// Row-major: C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C.
void sgemm(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A, int lda,
           const float* B, int ldb, float beta, float* C, int ldc);

// Which sgemm runs, for benchmark reports: "oneDNN 2.6 avx512_core_bf16", "OpenBLAS Haswell".
std::string blas_kernels();

// The one piece of process-wide configuration: OpenMP and OpenBLAS thread counts together.
void set_threads(int n);
int get_threads();

}  // namespace ufo

// cuda_backend.h — the CUDA/cuBLAS backend of blas.h. Built from kernels/cuda_backend.cu when
// nvcc exists (make CUDA=auto|1); without it, available() is false and callers use the CPU.
#pragma once
#include <string>

namespace ufo::cuda {

// True when libufo was built with CUDA and a device is present.
bool available();
// "NVIDIA H100 ..." or the reason there is none.
std::string describe();

// Row-major C = alpha op(A) op(B) + beta C on host buffers, computed on the device with cuBLAS
// (copies in and out). Used to check the device path against OpenBLAS and by ufo-bench.
void sgemm_host(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A, int lda,
                const float* B, int ldb, float beta, float* C, int ldc);

// GELU (tanh approximation) on host buffers, computed on the device.
void gelu_forward_host(float* out, const float* inp, long n);

}  // namespace ufo::cuda

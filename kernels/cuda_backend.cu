// cuda_backend.cu — cuBLAS sgemm and a GELU kernel, with RAII around every CUDA handle.
#include "cuda_backend.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace ufo::cuda {

namespace {

void check(cudaError_t e, const char* what) {
    if (e != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(e));
}
void check(cublasStatus_t s, const char* what) {
    if (s != CUBLAS_STATUS_SUCCESS) throw std::runtime_error(std::string(what) + ": cuBLAS status " + std::to_string(int(s)));
}

class DeviceBuffer {
public:
    explicit DeviceBuffer(size_t floats) { check(cudaMalloc(&p_, floats * sizeof(float) + 1), "cudaMalloc"); }
    ~DeviceBuffer() { cudaFree(p_); }
    DeviceBuffer(const DeviceBuffer&) = delete;
    DeviceBuffer& operator=(const DeviceBuffer&) = delete;
    float* get() const { return static_cast<float*>(p_); }
private:
    void* p_ = nullptr;
};

class Cublas {
public:
    Cublas() { check(cublasCreate(&h_), "cublasCreate"); }
    ~Cublas() { cublasDestroy(h_); }
    Cublas(const Cublas&) = delete;
    Cublas& operator=(const Cublas&) = delete;
    cublasHandle_t get() const { return h_; }
private:
    cublasHandle_t h_ = nullptr;
};

__global__ void gelu_kernel(float* out, const float* inp, long n) {
    long i = blockIdx.x * long(blockDim.x) + threadIdx.x;
    if (i < n) {
        float x = inp[i];
        float z = 0.7978845608028654f * (x + 0.044715f * x * x * x);
        out[i] = 0.5f * x * (1.0f + tanhf(z));
    }
}

}  // namespace

bool available() {
    int n = 0;
    return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

std::string describe() {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) return std::string("no CUDA device: ") + cudaGetErrorString(e);
    if (n == 0) return "no CUDA device";
    cudaDeviceProp p{};
    cudaGetDeviceProperties(&p, 0);
    return p.name;
}

void sgemm_host(bool ta, bool tb, int M, int N, int K, float alpha, const float* A, int lda, const float* B,
                int ldb, float beta, float* C, int ldc) {
    // Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: swap the operands.
    const size_t a_rows = ta ? K : M, b_rows = tb ? N : K;
    DeviceBuffer dA(a_rows * lda), dB(b_rows * ldb), dC(size_t(M) * ldc);
    check(cudaMemcpy(dA.get(), A, a_rows * lda * sizeof(float), cudaMemcpyHostToDevice), "copy A");
    check(cudaMemcpy(dB.get(), B, b_rows * ldb * sizeof(float), cudaMemcpyHostToDevice), "copy B");
    check(cudaMemcpy(dC.get(), C, size_t(M) * ldc * sizeof(float), cudaMemcpyHostToDevice), "copy C");
    Cublas h;
    check(cublasSgemm(h.get(), tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K, &alpha,
                      dB.get(), ldb, dA.get(), lda, &beta, dC.get(), ldc),
          "cublasSgemm");
    check(cudaMemcpy(C, dC.get(), size_t(M) * ldc * sizeof(float), cudaMemcpyDeviceToHost), "copy C back");
}

void gelu_forward_host(float* out, const float* inp, long n) {
    DeviceBuffer din(n), dout(n);
    check(cudaMemcpy(din.get(), inp, n * sizeof(float), cudaMemcpyHostToDevice), "copy in");
    gelu_kernel<<<unsigned((n + 255) / 256), 256>>>(dout.get(), din.get(), n);
    check(cudaGetLastError(), "gelu kernel");
    check(cudaMemcpy(out, dout.get(), n * sizeof(float), cudaMemcpyDeviceToHost), "copy out");
}

}  // namespace ufo::cuda

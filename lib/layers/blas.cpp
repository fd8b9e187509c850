// blas.cpp — the CPU backend of blas.h: oneDNN's sgemm, or OpenBLAS's.
//
// Chosen by measurement at ufo's shapes (scripts/gemm-candidates; the README has the table):
// oneDNN JIT-compiles its kernels for the CPU's widest vector unit (AVX-512 where there is
// one) and ran every product of the reference ViT twice as fast as OpenBLAS 0.3.21's AVX2
// kernels on the 2-core AMD EPYC build machine, and training 1.8x as fast; OpenBLAS picks its
// kernels when it loads (or as OPENBLAS_CORETYPE says). UFO_SGEMM=openblas selects OpenBLAS,
// to compare the two on another machine. Both run on the caller's OpenMP threads (one inside
// a parallel region).
#include "layers/blas.h"

#include "layers/onednn_isa.h"

#include <cblas.h>
#include <oneapi/dnnl/dnnl.h>
#include <omp.h>

#include <cstdlib>
#include <cstring>
#include <string>

namespace ufo {
namespace {

const bool kOpenBlas = [] {
    const char* e = std::getenv("UFO_SGEMM");
    return e && std::strcmp(e, "openblas") == 0;
}();

}  // namespace

std::string blas_kernels() {
    if (kOpenBlas) {
        const char* core = openblas_get_corename();
        return std::string("OpenBLAS ") + (core ? core : "unknown");
    }
    const dnnl_version_t* v = dnnl_version();
    return "oneDNN " + std::to_string(v->major) + "." + std::to_string(v->minor) + " " + onednn_isa_name();
}

void sgemm(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A, int lda,
           const float* B, int ldb, float beta, float* C, int ldc) {
    if (M == 0 || N == 0) return;
    if (kOpenBlas) {
        cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, M, N,
                    K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    // Row-major, like cblas; its only failure is a bad argument, which ufo never passes.
    dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void set_threads(int n) {
    if (n < 1) n = 1;
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
}

int get_threads() { return omp_get_max_threads(); }

}  // namespace ufo

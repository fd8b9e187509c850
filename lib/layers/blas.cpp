// blas.cpp — OpenBLAS backend of blas.h.
#include "layers/blas.h"

#include <cblas.h>
#include <omp.h>

namespace ufo {

// OpenBLAS chooses its kernels per CPU when it loads, or as OPENBLAS_CORETYPE says.
const char* blas_kernels() {
    const char* core = openblas_get_corename();
    return core ? core : "unknown";
}

void sgemm(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A, int lda,
           const float* B, int ldb, float beta, float* C, int ldc) {
    if (M == 0 || N == 0) return;
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void set_threads(int n) {
    if (n < 1) n = 1;
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
}

int get_threads() { return omp_get_max_threads(); }

}  // namespace ufo

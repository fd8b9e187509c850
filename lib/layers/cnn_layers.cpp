// cnn_layers.cpp — the fast path of cnn_layers.h: a direct AVX2 convolution forward, OpenBLAS
// for the convolution backward, OpenMP over output pixels, rows or channel blocks.
// Plain twins: kernels/reference_cnn.cpp.
#include "layers/cnn_layers.h"

#include "layers/blas.h"
#include "layers/layers.h"

#include <algorithm>
#include <cmath>
#include <immintrin.h>
#include <omp.h>

namespace ufo {

namespace {

constexpr float kBnEps = 1e-5f;   // PyTorch's BatchNorm2d default

// Column block [c0, c1) of C owned by the calling thread inside a parallel region.
inline void my_columns(int C, int& c0, int& c1) {
    int t = omp_get_thread_num(), nt = omp_get_num_threads();
    c0 = int(long(C) * t / nt);
    c1 = int(long(C) * (t + 1) / nt);
}

inline int round_up8(int n) { return (n + 7) / 8 * 8; }

// Loops over less work than this (elements touched, or multiply-adds) run on the calling thread:
// a fork/join costs more than it saves there, and far more when the cores are shared and a
// team member waits for a time slice. Each element is computed the same way either way.
constexpr long kMinParallelWork = 1 << 15;
[[maybe_unused]] inline bool worth_threads(long work) { return work >= kMinParallelWork; }   // (only in pragmas)

}  // namespace

int conv2d_out_size(int in, int K, int S, int P) {
    const int span = in + 2 * P - K;
    return span < 0 ? 0 : span / S + 1;
}

size_t conv2d_forward_scratch(int IC, int OC, int K) {
    return size_t(round_up8(OC)) * IC * K * K + IC;
}

size_t conv2d_col_size(int B, int H, int W, int IC, int K, int S, int P) {
    return size_t(B) * conv2d_out_size(H, K, S, P) * conv2d_out_size(W, K, S, P) * IC * K * K;
}

// ---------------------------------------------------------------- convolution forward
//
// Direct vs im2col + sgemm, forward, measured with a throwaway benchmark on the 2-core AMD EPYC
// build machine (shared with other jobs, so each number is the minimum over repeated runs; ms).
// "im2col+sgemm" is conv2d_im2col then one matmul_forward, OpenBLAS threaded as it likes
// (OMP_NUM_THREADS = OpenBLAS threads); 3x3, stride 1, padding 1 unless noted; the 1x1 rows
// (stride 1, no padding) need no im2col.
//
//                                  1 thread                 2 threads
//   B    IC->OC    input       im2col+sgemm  direct     im2col+sgemm  direct
//   128  1->16     28x28           1.70       0.88          1.26       0.47
//   128  16->16    28x28          14.3        4.58         12.2        2.42
//   128  16->32    14x14           3.83       2.20          2.95       1.18
//   128  16->32    28x28 S2        4.67       2.25          3.12       1.28
//   128  32->64    7x7             2.84       2.15          1.86       1.13
//   128  32->64    14x14 S2        2.94       2.14          2.34       1.15
//   128  16->32    14x14 1x1       0.353      0.348         0.296      0.185
//   128  32->64    7x7 1x1         0.290      0.262         0.392      0.145
//   128  64->128   7x7            11.3        8.46          7.38       4.74
//   128  64->64    14x14          33.0       16.8          19.7        9.30
//   128  128->128  7x7            23.6       17.1          14.4        9.41
//   1    1->16     28x28           0.015      0.010         0.018      0.009
//   1    16->16    28x28           0.073      0.038         0.088      0.026
//   1    16->32    14x14           0.028      0.022         0.052      0.016
//   1    32->64    7x7             0.028      0.026         0.037      0.023
//   1    16->32    14x14 1x1       0.004      0.006         0.005      0.007
//   1    64->64    14x14           0.181      0.138         0.177      0.085
//   1    128->128  7x7             0.188      0.190         0.111      0.116
//
// The direct kernel wins at B = 128 on every shape (1.0-3.1x on one thread, 1.5-5x on two): im2col
// writes K*K copies of the input, and OpenBLAS runs far from peak with N = OC <= 128 columns. At
// B = 1 it wins or ties, except 1x1 layers, where one sgemm is 2 us faster. That sgemm is also
// not bitwise reproducible across thread counts (see conv2d_backward); cut into fixed
// single-threaded blocks so that it is (conv2d_forward_im2col), it is slower than the direct
// kernel there too. So conv2d_forward is the direct kernel for every shape.
//
// The kernel: output pixels (b,oy,ox) in flat order are cut into blocks of 6 (a block may span
// rows and images); for each block and each 16-channel slice of OC, 6x2 AVX2 accumulators run
// over the taps (ky,kx) and input channels, with the weights repacked to [OC/16][ky,kx,i][16]
// (scratch) so that each (tap, i) reads 16 contiguous weights. A tap that falls in the padding
// reads a row of zeros (scratch), so every pixel takes the same path; blocks whose windows are
// all inside the image skip the bounds checks. Each output is one thread's fixed-order sum:
// bias, then taps in (ky, kx, i) order, fused multiply-adds.

namespace {

constexpr int kPx = 6;   // output pixels per register block: 6 x 2 accumulators + 2 weights + 1

// Repacks block blk of the (OC+15)/16 output-channel blocks (called from a worksharing loop):
// block o0 = 16*blk starts at wp + o0*CK and is [K*K][IC][wb], wb = 16, or 8 for a last block
// of <= 8 channels; channels past OC are zero.
void pack_weights(float* wp, const float* w, int IC, int OC, int K, int blk) {
    const int KK = K * K, CK = IC * KK;
    const int o0 = blk * 16, t = std::min(16, OC - o0), wb = t > 8 ? 16 : 8;
    float* dst = wp + size_t(o0) * CK;
    for (int k = 0; k < KK; ++k)
        for (int i = 0; i < IC; ++i)
            for (int j = 0; j < wb; ++j)
                dst[(size_t(k) * IC + i) * wb + j] = j < t ? w[(size_t(o0 + j) * IC + i) * KK + k] : 0.0f;
}

// PX pixels x NV*8 channels. INTERIOR: every tap of every pixel is inside the image and
// base[p] points at the top-left of pixel p's window. Otherwise base[p] is pixel p's image and
// (iy0[p], ix0[p]) the top-left of its window, which may lie in the padding.
template <int PX, int NV, bool INTERIOR>
inline void conv_block(float* const* o, const float* const* base, const int* iy0, const int* ix0,
                       const float* zeros, const float* wk, const float* bias, int H, int W, int IC,
                       int K) {
    __m256 acc[PX][NV];
    for (int v = 0; v < NV; ++v) {
        const __m256 bv = _mm256_loadu_ps(bias + 8 * v);
        for (int p = 0; p < PX; ++p) acc[p][v] = bv;
    }
    for (int ky = 0; ky < K; ++ky)
        for (int kx = 0; kx < K; ++kx) {
            const float* s[PX];
            const long tap = (long(ky) * W + kx) * IC;
            for (int p = 0; p < PX; ++p) {
                if (INTERIOR) {
                    s[p] = base[p] + tap;
                } else {
                    const int iy = iy0[p] + ky, ix = ix0[p] + kx;
                    s[p] = (unsigned(iy) < unsigned(H) && unsigned(ix) < unsigned(W))
                               ? base[p] + (long(iy) * W + ix) * IC
                               : zeros;
                }
            }
            const float* wt = wk + size_t(ky * K + kx) * IC * (NV * 8);
            for (int i = 0; i < IC; ++i) {
                __m256 wv[NV];
                for (int v = 0; v < NV; ++v) wv[v] = _mm256_loadu_ps(wt + i * (NV * 8) + 8 * v);
                for (int p = 0; p < PX; ++p) {
                    const __m256 x = _mm256_broadcast_ss(s[p] + i);
                    for (int v = 0; v < NV; ++v) acc[p][v] = _mm256_fmadd_ps(x, wv[v], acc[p][v]);
                }
            }
        }
    for (int p = 0; p < PX; ++p)
        for (int v = 0; v < NV; ++v) _mm256_storeu_ps(o[p] + 8 * v, acc[p][v]);
}

}  // namespace

void conv2d_forward(float* out, float* scratch, const float* inp, const float* w, const float* b,
                    int B, int H, int W, int IC, int OC, int K, int S, int P) {
    const int OH = conv2d_out_size(H, K, S, P), OW = conv2d_out_size(W, K, S, P);
    const int CK = IC * K * K;
    const long M = long(B) * OH * OW;
    if (M <= 0 || OC <= 0) return;
    float* wp = scratch;                                   // [round_up8(OC) * CK]
    float* zeros = scratch + size_t(round_up8(OC)) * CK;   // [IC]
    std::fill(zeros, zeros + IC, 0.0f);
    const long nblk = (M + kPx - 1) / kPx;
    const int nwblk = (OC + 15) / 16;
    const size_t img_size = size_t(H) * W * IC;
#pragma omp parallel if (parallel : worth_threads(M * OC * CK))
    {
#pragma omp for schedule(static)
        for (int blk = 0; blk < nwblk; ++blk) pack_weights(wp, w, IC, OC, K, blk);
#pragma omp for schedule(static)
        for (long blk = 0; blk < nblk; ++blk) {
            const long m0 = blk * kPx;
            const int np = int(std::min<long>(kPx, M - m0));
            // Pixel coordinates, stepped from the first; a short last block repeats its last pixel
            // (computed into the temporary and dropped).
            int iy0[kPx], ix0[kPx];
            const float* img[kPx];
            const float* corner[kPx];
            bool inside = true;
            int ox = int(m0 % OW), oy = int(m0 / OW % OH), bb = int(m0 / (long(OW) * OH));
            for (int p = 0; p < kPx; ++p) {
                iy0[p] = oy * S - P;
                ix0[p] = ox * S - P;
                img[p] = inp + size_t(bb) * img_size;
                inside &= iy0[p] >= 0 && ix0[p] >= 0 && iy0[p] + K <= H && ix0[p] + K <= W;
                if (inside) corner[p] = img[p] + (long(iy0[p]) * W + ix0[p]) * IC;
                if (p + 1 < np && ++ox == OW) {
                    ox = 0;
                    if (++oy == OH) {
                        oy = 0;
                        ++bb;
                    }
                }
            }
            for (int o0 = 0; o0 < OC; o0 += 16) {
                const int t = std::min(16, OC - o0);
                const float* wk = wp + size_t(o0) * CK;
                alignas(32) float tmp[kPx][16];
                float bias[16] = {};
                if (b)
                    for (int j = 0; j < t; ++j) bias[j] = b[o0 + j];
                const bool store_direct = (t == 16 || t == 8) && np == kPx;
                float* o[kPx];
                for (int p = 0; p < kPx; ++p) o[p] = store_direct ? out + size_t(m0 + p) * OC + o0 : tmp[p];
                if (inside) {
                    if (t > 8) conv_block<kPx, 2, true>(o, corner, iy0, ix0, zeros, wk, bias, H, W, IC, K);
                    else conv_block<kPx, 1, true>(o, corner, iy0, ix0, zeros, wk, bias, H, W, IC, K);
                } else {
                    if (t > 8) conv_block<kPx, 2, false>(o, img, iy0, ix0, zeros, wk, bias, H, W, IC, K);
                    else conv_block<kPx, 1, false>(o, img, iy0, ix0, zeros, wk, bias, H, W, IC, K);
                }
                if (!store_direct)
                    for (int p = 0; p < np; ++p)
                        for (int j = 0; j < t; ++j) out[size_t(m0 + p) * OC + o0 + j] = tmp[p][j];
            }
        }
    }
}

// OpenBLAS's threaded sgemm does not give the same bits for 1 and 2 threads (measured: with one
// threaded matmul_forward/backward per call, the im2col forward, dw and dinp differed in the
// last places). So the products below are cut into fixed blocks, each one single-threaded sgemm
// (OpenBLAS runs one thread inside an active OpenMP parallel region), spread over the threads:
// the same bits for any thread count.
namespace {
constexpr int kRowBlock = 256;   // pixel rows per block of out / d(col)
constexpr int kDwChunks = 8;     // dw: at most this many partial products over pixel chunks

// The pixel chunks of dw: a function of M only, never of the thread count.
inline int dw_chunks(int M) { return std::max(1, std::min(kDwChunks, M / kRowBlock)); }
}  // namespace

size_t conv2d_backward_scratch(int B, int H, int W, int IC, int OC, int K, int S, int P) {
    const size_t M = size_t(B) * conv2d_out_size(H, K, S, P) * conv2d_out_size(W, K, S, P);
    const size_t col = K == 1 && S == 1 && P == 0 ? 0 : M * IC * K * K;
    const int nc = dw_chunks(int(M));
    return col + (nc > 1 ? size_t(nc) * OC * IC * K * K : 0);
}

void conv2d_forward_im2col(float* out, float* col, const float* inp, const float* w,
                           const float* b, int B, int H, int W, int IC, int OC, int K, int S,
                           int P) {
    const int OH = conv2d_out_size(H, K, S, P), OW = conv2d_out_size(W, K, S, P);
    const int CK = IC * K * K, M = B * OH * OW;
    if (M <= 0) return;
    const float* x = inp;   // a 1x1 stride-1 unpadded convolution is a matmul over pixels
    if (!(K == 1 && S == 1 && P == 0)) {
        conv2d_im2col(col, inp, B, H, W, IC, K, S, P);
        x = col;
    }
    const int nblk = (M + kRowBlock - 1) / kRowBlock;
#pragma omp parallel for schedule(static)
    for (int blk = 0; blk < nblk; ++blk) {
        const int m0 = blk * kRowBlock, mb = std::min(kRowBlock, M - m0);
        matmul_forward(out + size_t(m0) * OC, OC, x + size_t(m0) * CK, CK, w, CK, b, mb, CK, OC, false);
    }
}

void conv2d_im2col(float* col, const float* inp, int B, int H, int W, int IC, int K, int S, int P) {
    const int OH = conv2d_out_size(H, K, S, P), OW = conv2d_out_size(W, K, S, P);
    const int KK = K * K, CK = IC * KK;
#pragma omp parallel for collapse(2) schedule(static) if (parallel : worth_threads(long(B) * OH * OW * CK))
    for (int b = 0; b < B; ++b)
        for (int oy = 0; oy < OH; ++oy)
            for (int ox = 0; ox < OW; ++ox) {
                float* dst = col + ((size_t(b) * OH + oy) * OW + ox) * CK;
                for (int ky = 0; ky < K; ++ky) {
                    const int iy = oy * S - P + ky;
                    for (int kx = 0; kx < K; ++kx) {
                        const int ix = ox * S - P + kx;
                        float* d = dst + ky * K + kx;
                        if (iy < 0 || iy >= H || ix < 0 || ix >= W) {
                            for (int i = 0; i < IC; ++i) d[i * KK] = 0.0f;
                        } else {
                            const float* s = inp + ((size_t(b) * H + iy) * W + ix) * IC;
                            for (int i = 0; i < IC; ++i) d[i * KK] = s[i];
                        }
                    }
                }
            }
}

// Gather form: each input row (b, iy) is one thread's, so there are no write races whatever B
// is. Contributions are added in (oy, ox) ascending order (ky, kx descending), the order of the
// scatter loop in the reference.
void conv2d_col2im(float* dinp, const float* dcol, int B, int H, int W, int IC, int K, int S,
                   int P) {
    const int OH = conv2d_out_size(H, K, S, P), OW = conv2d_out_size(W, K, S, P);
    const int KK = K * K, CK = IC * KK;
#pragma omp parallel for collapse(2) schedule(static) if (parallel : worth_threads(long(B) * OH * OW * CK))
    for (int b = 0; b < B; ++b)
        for (int iy = 0; iy < H; ++iy)
            for (int ix = 0; ix < W; ++ix) {
                float* d = dinp + ((size_t(b) * H + iy) * W + ix) * IC;
                for (int ky = K - 1; ky >= 0; --ky) {
                    const int ty = iy + P - ky;
                    if (ty < 0 || ty % S) continue;
                    const int oy = ty / S;
                    if (oy >= OH) continue;
                    for (int kx = K - 1; kx >= 0; --kx) {
                        const int tx = ix + P - kx;
                        if (tx < 0 || tx % S) continue;
                        const int ox = tx / S;
                        if (ox >= OW) continue;
                        const float* s = dcol + ((size_t(b) * OH + oy) * OW + ox) * CK + ky * K + kx;
                        for (int i = 0; i < IC; ++i) d[i] += s[i * KK];
                    }
                }
            }
}

// dw = dout^T @ im2col(inp) sums over all M pixels. It is cut into dw_chunks(M) fixed pixel
// chunks: each chunk's product is one single-threaded sgemm into its own partial [OC, CK]
// (scratch), the chunks spread over the threads; then dw += the partials, added in chunk order.
// (One chunk: straight into dw.) Fixed output tiles of dw instead (no partials) measured
// 1.2-1.5x slower at 64 channels and more: every tile re-packs its slices of dout and im2col.
// Then d(col) = dout @ w overwrites the im2col part of the scratch, in fixed row blocks, and
// col2im adds it into dinp.
// Measured (ms, whole backward incl. im2col and col2im; this vs im2col + one threaded
// matmul_backward + col2im), B = 128, 2 threads: 1->16 28x28 3.9 vs 6.2, 16->32 14x14 4.7 vs
// 6.7, 32->64 7x7 3.4 vs 5.9, 64->64 14x14 31 vs 37, 128->128 7x7 26 vs 29; one thread: equal
// within noise. B = 1 (M < 512: dw is one chunk, on one thread): up to 1.3x slower (0.34 vs
// 0.26 ms at 128->128 7x7).
void conv2d_backward(float* dinp, float* dw, float* db, float* scratch, const float* dout,
                     const float* inp, const float* w, int B, int H, int W, int IC, int OC, int K,
                     int S, int P) {
    const int OH = conv2d_out_size(H, K, S, P), OW = conv2d_out_size(W, K, S, P);
    const int CK = IC * K * K, M = B * OH * OW;
    if (M <= 0) return;
    const bool pointwise = K == 1 && S == 1 && P == 0;   // im2col(inp) is inp itself
    float* col = scratch;                                              // [M, CK] unless pointwise
    float* partial = scratch + (pointwise ? 0 : size_t(M) * CK);       // [chunks, OC, CK]
    if (db) colsum_accumulate(db, dout, OC, M, OC);
    if (dw) {
        const float* x = inp;
        if (!pointwise) {
            conv2d_im2col(col, inp, B, H, W, IC, K, S, P);
            x = col;
        }
        // Inside a parallel region, so that every sgemm runs single-threaded even for one chunk.
        const int nc = dw_chunks(M);
        const size_t DW = size_t(OC) * CK;
#pragma omp parallel
        {
#pragma omp for schedule(static)
            for (int c = 0; c < nc; ++c) {   // one chunk: dw += dout^T @ x directly
                const int m0 = int(long(M) * c / nc), m1 = int(long(M) * (c + 1) / nc);
                sgemm(true, false, OC, CK, m1 - m0, 1.0f, dout + size_t(m0) * OC, OC,
                      x + size_t(m0) * CK, CK, nc == 1 ? 1.0f : 0.0f, nc == 1 ? dw : partial + c * DW,
                      CK);
            }
            if (nc > 1) {
#pragma omp for simd schedule(static)
                for (size_t e = 0; e < DW; ++e) {
                    float s = partial[e];
                    for (int c = 1; c < nc; ++c) s += partial[c * DW + e];
                    dw[e] += s;
                }
            }
        }
    }
    if (!dinp) return;
    // pointwise: dinp[M,IC] += dout @ w;  otherwise col[M,CK] = dout[M,OC] @ w[OC,CK] (the
    // input-gradient product of matmul_backward), then col2im.
    float* dst = pointwise ? dinp : col;
    const float beta = pointwise ? 1.0f : 0.0f;
    const int nblk = (M + kRowBlock - 1) / kRowBlock;
#pragma omp parallel for schedule(static)
    for (int blk = 0; blk < nblk; ++blk) {
        const int m0 = blk * kRowBlock, mb = std::min(kRowBlock, M - m0);
        sgemm(false, false, mb, CK, OC, 1.0f, dout + size_t(m0) * OC, OC, w, CK, beta,
              dst + size_t(m0) * CK, CK);
    }
    if (!pointwise) conv2d_col2im(dinp, col, B, H, W, IC, K, S, P);
}

// ---------------------------------------------------------------- batch normalisation
//
// Per-channel statistics over N rows. Each thread owns a block of channels (my_columns); within
// it, channels go in slices of up to kBnSlice, and rows in fixed chunks of kBnRows: a float
// partial sum per chunk (vectorised across channels), chunk sums added in double. A channel's
// sum is thus the same sequence of operations whichever thread or slice holds it.

namespace {

constexpr int kBnSlice = 64;
constexpr int kBnRows = 256;

// sum[c - c0] = sum_n f(n, c) for c in [c0, c1), c1 - c0 <= kBnSlice.
template <class F>
inline void column_sums(double* sum, int c0, int c1, int N, F f) {
    const int w = c1 - c0;
    for (int j = 0; j < w; ++j) sum[j] = 0.0;
    for (int n0 = 0; n0 < N; n0 += kBnRows) {
        const int n1 = std::min(N, n0 + kBnRows);
        float part[kBnSlice] = {};
        for (int n = n0; n < n1; ++n) {
#pragma omp simd
            for (int j = 0; j < w; ++j) part[j] += f(n, c0 + j);
        }
        for (int j = 0; j < w; ++j) sum[j] += part[j];
    }
}

}  // namespace

void batchnorm_forward_train(float* out, float* mean, float* rstd, const float* inp,
                             const float* gamma, const float* beta, int N, int C) {
#pragma omp parallel if (parallel : worth_threads(long(N) * C))
    {
        int c0, c1;
        my_columns(C, c0, c1);
        for (int s0 = c0; s0 < c1; s0 += kBnSlice) {
            const int s1 = std::min(c1, s0 + kBnSlice);
            double sum[kBnSlice];
            column_sums(sum, s0, s1, N, [&](int n, int c) { return inp[size_t(n) * C + c]; });
            float m[kBnSlice];
            for (int c = s0; c < s1; ++c) mean[c] = m[c - s0] = float(sum[c - s0] / N);
            column_sums(sum, s0, s1, N, [&](int n, int c) {
                const float d = inp[size_t(n) * C + c] - m[c - s0];
                return d * d;
            });
            for (int c = s0; c < s1; ++c) rstd[c] = float(1.0 / std::sqrt(sum[c - s0] / N + double(kBnEps)));
        }
#pragma omp barrier
#pragma omp for schedule(static)
        for (int n = 0; n < N; ++n) {
            const float* x = inp + size_t(n) * C;
            float* o = out + size_t(n) * C;
#pragma omp simd
            for (int c = 0; c < C; ++c) o[c] = (x[c] - mean[c]) * rstd[c] * gamma[c] + beta[c];
        }
    }
}

void batchnorm_forward_eval(float* out, const float* inp, const float* gamma, const float* beta,
                            const float* run_mean, const float* run_var, int N, int C) {
#pragma omp parallel for schedule(static) if (parallel : worth_threads(long(N) * C))
    for (int n = 0; n < N; ++n) {
        const float* x = inp + size_t(n) * C;
        float* o = out + size_t(n) * C;
        for (int c = 0; c < C; ++c) {
            const float scale = gamma[c] / std::sqrt(run_var[c] + kBnEps);
            o[c] = (x[c] - run_mean[c]) * scale + beta[c];
        }
    }
}

// xhat = (x - mean) rstd, S1 = sum_n dout, S2 = sum_n dout xhat (per channel):
// dinp += gamma rstd (dout - S1/N - xhat S2/N), dgamma += S2, dbeta += S1.
// Each thread owns its channels for the sums and for the dinp update.
void batchnorm_backward(float* dinp, float* dgamma, float* dbeta, const float* dout,
                        const float* inp, const float* gamma, const float* mean, const float* rstd,
                        int N, int C) {
#pragma omp parallel if (parallel : worth_threads(long(N) * C))
    {
        int c0, c1;
        my_columns(C, c0, c1);
        for (int s0 = c0; s0 < c1; s0 += kBnSlice) {
            const int s1 = std::min(c1, s0 + kBnSlice), w = s1 - s0;
            double s1sum[kBnSlice], s2sum[kBnSlice];
            column_sums(s1sum, s0, s1, N, [&](int n, int c) { return dout[size_t(n) * C + c]; });
            column_sums(s2sum, s0, s1, N, [&](int n, int c) {
                return dout[size_t(n) * C + c] * ((inp[size_t(n) * C + c] - mean[c]) * rstd[c]);
            });
            float a[kBnSlice], m1[kBnSlice], m2[kBnSlice];   // gamma*rstd, S1/N, S2/N
            for (int j = 0; j < w; ++j) {
                a[j] = gamma[s0 + j] * rstd[s0 + j];
                m1[j] = float(s1sum[j] / N);
                m2[j] = float(s2sum[j] / N);
            }
            for (int n = 0; n < N; ++n) {
                const float* x = inp + size_t(n) * C + s0;
                const float* dy = dout + size_t(n) * C + s0;
                float* dx = dinp + size_t(n) * C + s0;
                const float* mu = mean + s0;
                const float* rs = rstd + s0;
#pragma omp simd
                for (int j = 0; j < w; ++j) dx[j] += a[j] * (dy[j] - m1[j] - (x[j] - mu[j]) * rs[j] * m2[j]);
            }
            for (int j = 0; j < w; ++j) {
                if (dgamma) dgamma[s0 + j] += float(s2sum[j]);
                if (dbeta) dbeta[s0 + j] += float(s1sum[j]);
            }
        }
    }
}

void batchnorm_update_running(float* run_mean, float* run_var, const float* mean,
                              const float* rstd, int N, int C, float momentum) {
    const double unbias = N > 1 ? double(N) / (N - 1) : 1.0;
    for (int c = 0; c < C; ++c) {
        const double rs = rstd[c];
        const double var = std::max(0.0, 1.0 / (rs * rs) - double(kBnEps));
        run_mean[c] = float((1.0 - momentum) * run_mean[c] + double(momentum) * mean[c]);
        run_var[c] = float((1.0 - momentum) * run_var[c] + double(momentum) * var * unbias);
    }
}

// ---------------------------------------------------------------- ReLU

void relu_forward(float* out, const float* inp, long N) {
#pragma omp parallel for simd schedule(static) if (parallel : worth_threads(N))
    for (long i = 0; i < N; ++i) out[i] = inp[i] > 0.0f ? inp[i] : 0.0f;
}

void relu_backward(float* dinp, const float* dout, const float* x, long N) {
#pragma omp parallel for simd schedule(static) if (parallel : worth_threads(N))
    for (long i = 0; i < N; ++i) dinp[i] += x[i] > 0.0f ? dout[i] : 0.0f;
}

// ---------------------------------------------------------------- pooling
//
// Forwards: one thread per output row (b, oy), vectorised over channels. Backwards: gather form,
// one thread per input row (b, iy), adding the windows that cover a pixel in (oy, ox) ascending
// order, as the reference's scatter does; no write races for overlapping windows (K > S).

namespace {

// The output windows that cover input position i: [lo, hi] (empty when lo > hi).
inline void covering(int i, int K, int S, int O, int& lo, int& hi) {
    lo = i - K + 1 <= 0 ? 0 : (i - K + S) / S;   // ceil((i - K + 1) / S)
    hi = std::min(O - 1, i / S);
}

}  // namespace

void maxpool2d_forward(float* out, int32_t* idx, const float* inp, int B, int H, int W, int C,
                       int K, int S) {
    const int OH = conv2d_out_size(H, K, S, 0), OW = conv2d_out_size(W, K, S, 0);
#pragma omp parallel for collapse(2) schedule(static) if (parallel : worth_threads(long(B) * OH * OW * C * K * K))
    for (int b = 0; b < B; ++b)
        for (int oy = 0; oy < OH; ++oy)
            for (int ox = 0; ox < OW; ++ox) {
                float* o = out + ((size_t(b) * OH + oy) * OW + ox) * C;
                int32_t* id = idx + ((size_t(b) * OH + oy) * OW + ox) * C;
                const float* img = inp + size_t(b) * H * W * C;
                const int first = oy * S * W + ox * S;
                const float* x0 = img + size_t(first) * C;
#pragma omp simd
                for (int c = 0; c < C; ++c) {
                    o[c] = x0[c];
                    id[c] = first;
                }
                for (int ky = 0; ky < K; ++ky)
                    for (int kx = 0; kx < K; ++kx) {
                        if (ky == 0 && kx == 0) continue;
                        const int pos = (oy * S + ky) * W + ox * S + kx;
                        const float* x = img + size_t(pos) * C;
#pragma omp simd
                        for (int c = 0; c < C; ++c) {
                            const bool take = x[c] > o[c] || x[c] != x[c];
                            o[c] = take ? x[c] : o[c];
                            id[c] = take ? pos : id[c];
                        }
                    }
            }
}

void maxpool2d_backward(float* dinp, const float* dout, const int32_t* idx, int B, int H, int W,
                        int C, int K, int S) {
    const int OH = conv2d_out_size(H, K, S, 0), OW = conv2d_out_size(W, K, S, 0);
#pragma omp parallel for collapse(2) schedule(static) if (parallel : worth_threads(long(B) * H * W * C))
    for (int b = 0; b < B; ++b)
        for (int iy = 0; iy < H; ++iy) {
            int oy0, oy1;
            covering(iy, K, S, OH, oy0, oy1);
            for (int ix = 0; ix < W; ++ix) {
                int ox0, ox1;
                covering(ix, K, S, OW, ox0, ox1);
                const int pos = iy * W + ix;
                float* d = dinp + (size_t(b) * H * W + pos) * C;
                for (int oy = oy0; oy <= oy1; ++oy)
                    for (int ox = ox0; ox <= ox1; ++ox) {
                        const size_t o = ((size_t(b) * OH + oy) * OW + ox) * C;
                        const float* g = dout + o;
                        const int32_t* id = idx + o;
#pragma omp simd
                        for (int c = 0; c < C; ++c) d[c] += id[c] == pos ? g[c] : 0.0f;
                    }
            }
        }
}

void avgpool2d_forward(float* out, const float* inp, int B, int H, int W, int C, int K, int S) {
    const int OH = conv2d_out_size(H, K, S, 0), OW = conv2d_out_size(W, K, S, 0);
    const float inv = 1.0f / float(K * K);
#pragma omp parallel for collapse(2) schedule(static) if (parallel : worth_threads(long(B) * OH * OW * C * K * K))
    for (int b = 0; b < B; ++b)
        for (int oy = 0; oy < OH; ++oy)
            for (int ox = 0; ox < OW; ++ox) {
                float* o = out + ((size_t(b) * OH + oy) * OW + ox) * C;
                const float* img = inp + size_t(b) * H * W * C;
#pragma omp simd
                for (int c = 0; c < C; ++c) o[c] = 0.0f;
                for (int ky = 0; ky < K; ++ky)
                    for (int kx = 0; kx < K; ++kx) {
                        const float* x = img + (size_t(oy * S + ky) * W + ox * S + kx) * C;
#pragma omp simd
                        for (int c = 0; c < C; ++c) o[c] += x[c];
                    }
#pragma omp simd
                for (int c = 0; c < C; ++c) o[c] *= inv;
            }
}

void avgpool2d_backward(float* dinp, const float* dout, int B, int H, int W, int C, int K, int S) {
    const int OH = conv2d_out_size(H, K, S, 0), OW = conv2d_out_size(W, K, S, 0);
    const float inv = 1.0f / float(K * K);
#pragma omp parallel for collapse(2) schedule(static) if (parallel : worth_threads(long(B) * H * W * C))
    for (int b = 0; b < B; ++b)
        for (int iy = 0; iy < H; ++iy) {
            int oy0, oy1;
            covering(iy, K, S, OH, oy0, oy1);
            for (int ix = 0; ix < W; ++ix) {
                int ox0, ox1;
                covering(ix, K, S, OW, ox0, ox1);
                float* d = dinp + ((size_t(b) * H + iy) * W + ix) * C;
                for (int oy = oy0; oy <= oy1; ++oy)
                    for (int ox = ox0; ox <= ox1; ++ox) {
                        const float* g = dout + ((size_t(b) * OH + oy) * OW + ox) * C;
#pragma omp simd
                        for (int c = 0; c < C; ++c) d[c] += g[c] * inv;
                    }
            }
        }
}

void global_avgpool_forward(float* out, const float* inp, int B, int H, int W, int C) {
    const int HW = H * W;
    const float inv = 1.0f / float(HW);
#pragma omp parallel for schedule(static) if (parallel : worth_threads(long(B) * HW * C))
    for (int b = 0; b < B; ++b) {
        float* o = out + size_t(b) * C;
        const float* x = inp + size_t(b) * HW * C;
#pragma omp simd
        for (int c = 0; c < C; ++c) o[c] = 0.0f;
        for (int p = 0; p < HW; ++p) {
#pragma omp simd
            for (int c = 0; c < C; ++c) o[c] += x[size_t(p) * C + c];
        }
#pragma omp simd
        for (int c = 0; c < C; ++c) o[c] *= inv;
    }
}

void global_avgpool_backward(float* dinp, const float* dout, int B, int H, int W, int C) {
    const int HW = H * W;
    const float inv = 1.0f / float(HW);
#pragma omp parallel for collapse(2) schedule(static) if (parallel : worth_threads(long(B) * HW * C))
    for (int b = 0; b < B; ++b)
        for (int p = 0; p < HW; ++p) {
            float* d = dinp + (size_t(b) * HW + p) * C;
            const float* g = dout + size_t(b) * C;
#pragma omp simd
            for (int c = 0; c < C; ++c) d[c] += g[c] * inv;
        }
}

// ---------------------------------------------------------------- input

void normalize_images(float* out, const uint8_t* images, long N, int C, const float* mean,
                      const float* std) {
#pragma omp parallel for schedule(static) if (parallel : worth_threads(N * C))
    for (long n = 0; n < N; ++n) {
        const uint8_t* px = images + n * C;
        float* o = out + n * C;
        for (int c = 0; c < C; ++c) o[c] = (float(px[c]) / 255.0f - mean[c]) / std[c];
    }
}

}  // namespace ufo

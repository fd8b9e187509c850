// cnn_layers.h — forward/backward of the CNN layers (llm.c style: outputs first, then inputs,
// then dims; backward accumulates (+=) into input and parameter gradients unless its comment
// says that a buffer is overwritten).
// Activations are NHWC: row n = (b, y, x) holds C contiguous floats. Convolution weights are in
// PyTorch's layout [OC, IC, K, K] (OIHW), bias [OC].
// Every kernel gives bitwise the same result for any OpenMP thread count: each output element
// is computed by one thread in a fixed order, and parameter-gradient reductions run over fixed
// partitions (whole channels, fixed row or pixel chunks). OpenBLAS's own threading is never
// used (it gives other bits for another thread count): its products run single-threaded on
// fixed blocks, spread over the OpenMP threads. Plain twins: kernels/reference_cnn.h.
#pragma once
#include <cstddef>
#include <cstdint>

namespace ufo {

// ---------------------------------------------------------------- convolution
// Square kernel K, stride S, zero padding P on every side.

// Output size along one axis: (in + 2P - K) / S + 1 (floor; 0 when the kernel does not fit).
// Pooling (no padding) uses conv2d_out_size(in, K, S, 0).
int conv2d_out_size(int in, int K, int S, int P);

// Floats of scratch conv2d_forward needs: the weights repacked for its kernel (OC rounded up to a
// multiple of 8, times IC*K*K) and a row of IC zeros. Independent of the batch and image size.
size_t conv2d_forward_scratch(int IC, int OC, int K);
// Floats of the im2col buffer of conv2d_forward_im2col: B*OH*OW * IC*K*K.
size_t conv2d_col_size(int B, int H, int W, int IC, int K, int S, int P);
// Floats of scratch conv2d_backward needs: the im2col buffer (none for K=1 S=1 P=0) and, when
// B*OH*OW >= 512, up to 8 partial weight gradients [OC, IC*K*K].
size_t conv2d_backward_scratch(int B, int H, int W, int IC, int OC, int K, int S, int P);

// out[b,oy,ox,o] = b[o] + sum_{i,ky,kx} inp[b, oy*S-P+ky, ox*S-P+kx, i] * w[o,i,ky,kx]
// out [B,OH,OW,OC], scratch [conv2d_forward_scratch(IC,OC,K)] (overwritten),
// inp [B,H,W,IC], w [OC,IC,K,K], b [OC] (may be null)
// The direct (implicit-GEMM) kernel: no im2col, blocks of 6 output pixels x 16 channels held
// in AVX2 registers. 1.0-5x faster than im2col + sgemm on the shapes measured, and as fast at
// B = 1 except for 1x1 layers (2 us slower); numbers in cnn_layers.cpp.
void conv2d_forward(float* out, float* scratch, const float* inp, const float* w, const float* b,
                    int B, int H, int W, int IC, int OC, int K, int S, int P);
// The same through im2col + matmul_forward (the slower baseline, kept for comparison).
// col [conv2d_col_size(...)] (overwritten with im2col(inp); unused, may be null, for K=1 S=1 P=0).
void conv2d_forward_im2col(float* out, float* col, const float* inp, const float* w,
                           const float* b, int B, int H, int W, int IC, int OC, int K, int S,
                           int P);

// col[(b,oy,ox), (i,ky,kx)] = inp[b, oy*S-P+ky, ox*S-P+kx, i], 0 in the padding; the column
// order (i,ky,kx) matches a row of the OIHW weight. col [B*OH*OW, IC*K*K] (overwritten),
// inp [B,H,W,IC]
void conv2d_im2col(float* col, const float* inp, int B, int H, int W, int IC, int K, int S, int P);
// The adjoint of conv2d_im2col: dinp[b,iy,ix,i] += every dcol entry that im2col read from there.
// dinp [B,H,W,IC] +=, dcol [B*OH*OW, IC*K*K]
void conv2d_col2im(float* dinp, const float* dcol, int B, int H, int W, int IC, int K, int S,
                   int P);

// dinp [B,H,W,IC] += (may be null: the first layer needs no input gradient),
// dw [OC,IC,K,K] += (may be null: frozen), db [OC] += (may be null),
// scratch [conv2d_backward_scratch(...)] (overwritten; may be null when it is 0),
// dout [B,OH,OW,OC], inp [B,H,W,IC], w [OC,IC,K,K]
// im2col into the scratch, dw from fixed pixel chunks (sgemm), db by colsum_accumulate, then
// d(col) = dout @ w over the im2col buffer (sgemm) and col2im into dinp.
void conv2d_backward(float* dinp, float* dw, float* db, float* scratch, const float* dout,
                     const float* inp, const float* w, int B, int H, int W, int IC, int OC, int K,
                     int S, int P);

// ---------------------------------------------------------------- batch normalisation
// Over the channels of NHWC rows: statistics per channel over all N = B*H*W rows. eps = 1e-5
// and momentum as PyTorch's BatchNorm2d.

// Training mode (batch statistics, biased variance):
// out[n,c] = (inp[n,c] - mean[c]) * rstd[c] * gamma[c] + beta[c], rstd = 1/sqrt(var + eps).
// out [N,C], mean [C] and rstd [C] (written; saved for backward and update_running),
// inp [N,C], gamma [C], beta [C]
void batchnorm_forward_train(float* out, float* mean, float* rstd, const float* inp,
                             const float* gamma, const float* beta, int N, int C);
// Eval mode (running statistics): out = (inp - run_mean) / sqrt(run_var + eps) * gamma + beta.
// out [N,C], inp [N,C], gamma/beta/run_mean/run_var [C]
void batchnorm_forward_eval(float* out, const float* inp, const float* gamma, const float* beta,
                            const float* run_mean, const float* run_var, int N, int C);
// Backward of batchnorm_forward_train (the batch statistics depend on inp).
// dinp [N,C] +=, dgamma [C] += and dbeta [C] += (either may be null: frozen), dout [N,C],
// inp [N,C], gamma [C], mean/rstd [C] from the forward
void batchnorm_backward(float* dinp, float* dgamma, float* dbeta, const float* dout,
                        const float* inp, const float* gamma, const float* mean, const float* rstd,
                        int N, int C);
// PyTorch's running-statistics update after a training forward over N rows:
// run_mean = (1-m) run_mean + m mean;  run_var = (1-m) run_var + m var * N/(N-1)  (unbiased;
// var = 1/rstd^2 - eps is the biased batch variance). N = 1 uses the biased variance (PyTorch
// refuses to train on one value per channel). run_mean, run_var [C] (updated), mean/rstd [C]
void batchnorm_update_running(float* run_mean, float* run_var, const float* mean,
                              const float* rstd, int N, int C, float momentum);

// ---------------------------------------------------------------- ReLU
// out[i] = max(inp[i], 0); out may be inp (in place). out, inp [N]
void relu_forward(float* out, const float* inp, long N);
// dinp[i] += x[i] > 0 ? dout[i] : 0, where x is the forward input or its output (either works:
// relu(x) > 0 exactly when x > 0, so an in-place forward loses nothing). dinp, dout, x [N]
void relu_backward(float* dinp, const float* dout, const float* x, long N);

// ---------------------------------------------------------------- pooling (NHWC, no padding)
// Kernel K, stride S; OH = conv2d_out_size(H, K, S, 0) = (H - K) / S + 1 (floor), OW likewise.

// out[b,oy,ox,c] = max over the window; idx = iy*W + ix of the maximum within its image (as
// PyTorch's return_indices); ties go to the first in window order (ky, kx), and a NaN wins (and
// propagates, as in PyTorch). out [B,OH,OW,C], idx [B,OH,OW,C] (int32), inp [B,H,W,C]
void maxpool2d_forward(float* out, int32_t* idx, const float* inp, int B, int H, int W, int C,
                       int K, int S);
// dinp [B,H,W,C] +=, dout [B,OH,OW,C], idx from the forward
void maxpool2d_backward(float* dinp, const float* dout, const int32_t* idx, int B, int H, int W,
                        int C, int K, int S);
// out[b,oy,ox,c] = mean over the K*K window. out [B,OH,OW,C], inp [B,H,W,C]
void avgpool2d_forward(float* out, const float* inp, int B, int H, int W, int C, int K, int S);
// dinp [B,H,W,C] += dout / (K*K) over each window, dout [B,OH,OW,C]
void avgpool2d_backward(float* dinp, const float* dout, int B, int H, int W, int C, int K, int S);
// out[b,c] = mean over the H*W positions. out [B,C], inp [B,H,W,C]
void global_avgpool_forward(float* out, const float* inp, int B, int H, int W, int C);
// dinp[b,y,x,c] += dout[b,c] / (H*W). dinp [B,H,W,C], dout [B,C]
void global_avgpool_backward(float* dinp, const float* dout, int B, int H, int W, int C);

// ---------------------------------------------------------------- input
// out[n,c] = (images[n,c] / 255 - mean[c]) / std[c]: uint8 NHWC pixels to normalised floats.
// out [N,C], images [N,C] (N = B*H*W), mean/std [C]
void normalize_images(float* out, const uint8_t* images, long N, int C, const float* mean,
                      const float* std);

// Nothing else is needed between these layers: an NHWC [B,H,W,C] tensor already is the
// flattened [B, H*W*C] input of a classifier (matmul_forward/backward in layers.h), a residual
// sum is add_forward (its backward is the += of both branches), and dropout-free CNNs need no
// mask kernel.

}  // namespace ufo

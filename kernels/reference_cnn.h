// reference_cnn.h — plain single-threaded loops for every kernel of lib/layers/cnn_layers.h,
// with the same signatures (scratch arguments are accepted and ignored). They are the
// obviously-correct twins the fast path is tested against.
#pragma once
#include <cstddef>
#include <cstdint>

namespace ufo::ref {

// conv2d_forward and conv2d_forward_im2col of the fast path both compare to this one.
void conv2d_forward(float* out, float* scratch, const float* inp, const float* w, const float* b,
                    int B, int H, int W, int IC, int OC, int K, int S, int P);
void conv2d_im2col(float* col, const float* inp, int B, int H, int W, int IC, int K, int S, int P);
void conv2d_col2im(float* dinp, const float* dcol, int B, int H, int W, int IC, int K, int S,
                   int P);
void conv2d_backward(float* dinp, float* dw, float* db, float* scratch, const float* dout,
                     const float* inp, const float* w, int B, int H, int W, int IC, int OC, int K,
                     int S, int P);

void batchnorm_forward_train(float* out, float* mean, float* rstd, const float* inp,
                             const float* gamma, const float* beta, int N, int C);
void batchnorm_forward_eval(float* out, const float* inp, const float* gamma, const float* beta,
                            const float* run_mean, const float* run_var, int N, int C);
void batchnorm_backward(float* dinp, float* dgamma, float* dbeta, const float* dout,
                        const float* inp, const float* gamma, const float* mean, const float* rstd,
                        int N, int C);
void batchnorm_update_running(float* run_mean, float* run_var, const float* mean,
                              const float* rstd, int N, int C, float momentum);

void relu_forward(float* out, const float* inp, long N);
void relu_backward(float* dinp, const float* dout, const float* x, long N);

void maxpool2d_forward(float* out, int32_t* idx, const float* inp, int B, int H, int W, int C,
                       int K, int S);
void maxpool2d_backward(float* dinp, const float* dout, const int32_t* idx, int B, int H, int W,
                        int C, int K, int S);
void avgpool2d_forward(float* out, const float* inp, int B, int H, int W, int C, int K, int S);
void avgpool2d_backward(float* dinp, const float* dout, int B, int H, int W, int C, int K, int S);
void global_avgpool_forward(float* out, const float* inp, int B, int H, int W, int C);
void global_avgpool_backward(float* dinp, const float* dout, int B, int H, int W, int C);

void normalize_images(float* out, const uint8_t* images, long N, int C, const float* mean,
                      const float* std);

}  // namespace ufo::ref

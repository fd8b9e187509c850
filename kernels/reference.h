// reference.h — plain single-threaded loops for every kernel of lib/layers.h, with the same
// signatures. They are the obviously-correct twins the fast path is tested against.
#pragma once
#include <cstdint>

namespace ufo::ref {

void matmul_forward(float* out, int ldo, const float* inp, int ldi, const float* w, int ldw,
                    const float* b, int N, int IC, int OC, bool accumulate);
void matmul_backward(float* dinp, int lddi, float* dw, int lddw, float* db, const float* dout,
                     int lddo, const float* inp, int ldi, const float* w, int ldw, int N, int IC,
                     int OC, bool accumulate_dinp);
void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, int ldi,
                       const float* w, const float* b, int N, int G, int C);
void layernorm_backward(float* dinp, int lddi, float* dw, float* db, const float* dout,
                        const float* inp, int ldi, const float* w, const float* mean,
                        const float* rstd, int N, int G, int C);
void gelu_forward(float* out, const float* inp, long N);
void gelu_backward(float* dinp, const float* dout, const float* inp, long N);
void attention_forward(float* out, float* att, const float* q, int ldq, const float* k, int ldk,
                       const float* v, int ldv, int B, int T, int NH, int HS);
void attention_backward(float* dq, int lddq, float* dk, int lddk, float* dv, int lddv,
                        const float* dout, const float* q, int ldq, const float* k, int ldk,
                        const float* v, int ldv, const float* att, int B, int T, int NH, int HS);

}  // namespace ufo::ref

// Twins of lib/layers/vit_kernels.h.
namespace ufo::ref {
void patchify_forward(float* out, const uint8_t* images, int B, int H, int W, int C, int ps,
                      const float* scale, const float* shift);
void tokens_forward(float* x, const float* emb, const float* cls, const float* pos, int B, int T, int C);
void tokens_backward(float* demb, float* dcls, float* dpos, const float* dx, int B, int T, int C);
void cls_gather_forward(float* out, const float* x, int B, int T, int C);
void cls_gather_backward(float* dx, const float* dout, int B, int T, int C);
void moe_mix_forward(float* out, const float* e0, const float* e1, const float* gates, int B, long R);
void moe_mix_backward(float* dexp, float* dgates, const float* dout, const float* exp_out, const float* gates,
                      int e, int B, long R);
}  // namespace ufo::ref

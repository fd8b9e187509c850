// reference.h — plain single-threaded loops for every kernel of lib/layers.h, with the same
// signatures. They are the obviously-correct twins the fast path is tested against.
#pragma once

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

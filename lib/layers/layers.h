// layers.h — forward/backward of every ViT layer (llm.c style: outputs first, then inputs,
// then dims; backward accumulates (+=) into input and parameter gradients).
// Row strides (ld*) let callers run on a slice of a wider tensor: the first k heads or
// hidden units of an elastic layer, or q/k/v inside a fused qkv buffer.
// Parameter-gradient reductions run over column blocks, so they are bitwise independent of
// the thread count.
#pragma once

namespace ufo {

// out[n,o] = (accumulate ? out[n,o] : 0) + sum_i inp[n,i] * w[o,i] + b[o]   (b may be null)
// out [N,OC] (ldo), inp [N,IC] (ldi), w [OC,IC] (ldw), b [OC]
void matmul_forward(float* out, int ldo, const float* inp, int ldi, const float* w, int ldw,
                    const float* b, int N, int IC, int OC, bool accumulate);
// dinp [N,IC] (+= when accumulate, else =; may be null), dw [OC,IC] += (may be null: frozen),
// db [OC] += (may be null)
void matmul_backward(float* dinp, int lddi, float* dw, int lddw, float* db, const float* dout,
                     int lddo, const float* inp, int ldi, const float* w, int ldw, int N, int IC,
                     int OC, bool accumulate_dinp);

// LayerNorm over groups of C: row (n,g) of the input starts at inp + n*ldi + g*C; out is
// contiguous [N,G,C]; mean/rstd [N,G]. G=1, ldi=C is the ordinary LayerNorm; G=heads, C=head
// dim is QK-norm inside a fused qkv buffer. w, b [C] are shared by the groups.
void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, int ldi,
                       const float* w, const float* b, int N, int G, int C);
// dinp (row stride lddi, += ), dw/db [C] += (either may be null: frozen), dout contiguous [N,G,C]
void layernorm_backward(float* dinp, int lddi, float* dw, float* db, const float* dout,
                        const float* inp, int ldi, const float* w, const float* mean,
                        const float* rstd, int N, int G, int C);

// GELU, tanh approximation. out, inp [N]
void gelu_forward(float* out, const float* inp, long N);
// dinp [N] = dout * gelu'(inp)   (overwrites)
void gelu_backward(float* dinp, const float* dout, const float* inp, long N);

// Non-causal multi-head attention. Token n = b*T + t; head h of q starts at q + n*ldq + h*HS
// (likewise k, v). out [B,T,NH*HS], att [B,NH,T,T] softmax probabilities.
void attention_forward(float* out, float* att, const float* q, int ldq, const float* k, int ldk,
                       const float* v, int ldv, int B, int T, int NH, int HS);
// dq, dk, dv +=, with their own strides; dout [B,T,NH*HS]
void attention_backward(float* dq, int lddq, float* dk, int lddk, float* dv, int lddv,
                        const float* dout, const float* q, int ldq, const float* k, int ldk,
                        const float* v, int ldv, const float* att, int B, int T, int NH, int HS);

// db[o] += sum_n dout[n,o]   (bias gradients; fixed summation order)
void colsum_accumulate(float* db, const float* dout, int ldd, int N, int OC);

// out[i] = a[i] + b[i]
void add_forward(float* out, const float* a, const float* b, long N);

}  // namespace ufo

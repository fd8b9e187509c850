// vit_kernels.h — the ViT's small kernels around the layers of layers.h: patch extraction
// with input normalisation, class token and positions, class-token gather, and the Task-MoE
// mix of two FFN outputs. Same conventions as layers.h (outputs first, backward accumulates
// into parameter gradients); plain twins in kernels/reference.h.
#pragma once
#include <cstdint>

namespace ufo {

// out[b, p, (ky*ps + kx)*C + c] = images[b, py*ps+ky, px*ps+kx, c] * scale[c] + shift[c]
// out [B,P,ps*ps*C], images [B,H,W,C] uint8, scale/shift [C]; P = (H/ps)*(W/ps).
void patchify_forward(float* out, const uint8_t* images, int B, int H, int W, int C, int ps,
                      const float* scale, const float* shift);

// The first A rows of each of the q, k and v parts of a fused projection with Af rows per part:
// w_out [3A,C] <- rows [p*Af, p*Af + A) of w [3Af,C] for p = 0..2; b_out [3A] likewise from
// b [3Af] (skipped when b is null). Lets an elastic sub-network with fewer heads run its q, k
// and v projection as one matrix product, as a cut-out network does.
void qkv_rows_gather(float* w_out, float* b_out, const float* w, const float* b, int Af, int A, int C);

// x[b,0] = cls + pos[0]; x[b,t] = emb[b,t-1] + pos[t] for t >= 1.
// x [B,T,C], emb [B,T-1,C], cls [C], pos [T,C]
void tokens_forward(float* x, const float* emb, const float* cls, const float* pos, int B, int T, int C);
// dcls [C] +=, dpos [T,C] +=, demb [B,T-1,C] = (overwrites; may be null); dx [B,T,C]
void tokens_backward(float* demb, float* dcls, float* dpos, const float* dx, int B, int T, int C);

// out[b] = x[b, 0] (the class-token row). out [B,C], x [B,T,C]
void cls_gather_forward(float* out, const float* x, int B, int T, int C);
// dx[b,0] = dout[b], other rows 0 (overwrites all of dx). dx [B,T,C], dout [B,C]
void cls_gather_backward(float* dx, const float* dout, int B, int T, int C);

// out[b, i] += g[b,0] * e0[b, i] + g[b,1] * e1[b, i]   for i < R (R = rows of a sample * C)
// out, e0, e1 [B,R], gates [B,2]
void moe_mix_forward(float* out, const float* e0, const float* e1, const float* gates, int B, long R);
// For expert e: dexp[b,i] = gates[b,e] * dout[b,i] (overwrites) and
// dgates[b,e] = <dout[b], exp_out[b]> (overwrites, summed in double).
// dexp, dout, exp_out [B,R], gates, dgates [B,2]
void moe_mix_backward(float* dexp, float* dgates, const float* dout, const float* exp_out, const float* gates,
                      int e, int B, long R);

}  // namespace ufo

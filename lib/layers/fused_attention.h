// fused_attention.h — attention for inference, one (batch, head) pair at a time, in cache.
//
// attention_forward (layers.h) keeps every head's [T,T] probabilities for the backward pass
// and runs two library GEMM calls per (batch, head). A fixed model at inference keeps no
// probabilities, and at ViT sizes (about 50 tokens, head size 32 to 64) those calls cost
// more in dispatch than in arithmetic. This kernel computes one pair's scores, softmax and
// weighted sum of values in a per-thread scratch tile that stays in L1/L2, with
// register-blocked AVX-512 micro-kernels: a row of up to 64 scores is four registers, so the
// scores and their softmax never leave them. Same contract as attention_forward without
// `att`; attention_forward and ref::attention_forward are its twins in the tests. The result
// of a pair does not depend on the thread count.
#pragma once

namespace ufo {

// Whether this CPU runs the kernel (AVX-512F) for sequences of T tokens (1..64); elsewhere
// callers use attention_forward.
bool attention_fused_supported(int T);

// Non-causal multi-head attention. Token n = b*T + t; head h of q starts at q + n*ldq + h*HS
// (likewise k, v). out [B,T,NH*HS]. Any HS >= 1; T as
// attention_fused_supported allows (else it fails).
void attention_fused_forward(float* out, const float* q, int ldq, const float* k, int ldk, const float* v, int ldv,
                             int B, int T, int NH, int HS);

}  // namespace ufo

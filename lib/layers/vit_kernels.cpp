// vit_kernels.cpp — OpenMP over samples; every output element has one writer, so results do
// not depend on the thread count (the bias-like sums of tokens_backward go through
// colsum_accumulate's fixed column blocks).
#include "layers/vit_kernels.h"

#include "layers/layers.h"

#include <cstring>

namespace ufo {

void patchify_forward(float* out, const uint8_t* images, int B, int H, int W, int C, int ps, const float* scale,
                      const float* shift) {
    const int gw = W / ps, P = (H / ps) * gw, pd = ps * ps * C;
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; ++b) {
        const uint8_t* img = images + size_t(b) * H * W * C;
        for (int p = 0; p < P; ++p) {
            const int py = p / gw, px = p % gw;
            float* dst = out + (size_t(b) * P + p) * pd;
            for (int ky = 0; ky < ps; ++ky) {
                const uint8_t* src = img + (size_t(py * ps + ky) * W + px * ps) * C;
                for (int i = 0; i < ps * C; ++i) dst[ky * ps * C + i] = src[i] * scale[i % C] + shift[i % C];
            }
        }
    }
}

void tokens_forward(float* x, const float* emb, const float* cls, const float* pos, int B, int T, int C) {
    const int P = T - 1;
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; ++b) {
        float* xb = x + size_t(b) * T * C;
        for (int c = 0; c < C; ++c) xb[c] = cls[c] + pos[c];
        for (int t = 1; t < T; ++t) {
            const float* e = emb + (size_t(b) * P + t - 1) * C;
            for (int c = 0; c < C; ++c) xb[size_t(t) * C + c] = e[c] + pos[size_t(t) * C + c];
        }
    }
}

void tokens_backward(float* demb, float* dcls, float* dpos, const float* dx, int B, int T, int C) {
    if (dpos) colsum_accumulate(dpos, dx, T * C, B, T * C);
    if (dcls) colsum_accumulate(dcls, dx, T * C, B, C);
    if (!demb) return;
    const int P = T - 1;
    for (int b = 0; b < B; ++b)
        std::memcpy(demb + size_t(b) * P * C, dx + (size_t(b) * T + 1) * C, sizeof(float) * size_t(P) * C);
}

void qkv_rows_gather(float* w_out, float* b_out, const float* w, const float* b, int Af, int A, int C) {
    for (int p = 0; p < 3; ++p) {
        std::memcpy(w_out + size_t(p) * A * C, w + size_t(p) * Af * C, sizeof(float) * size_t(A) * C);
        if (b) std::memcpy(b_out + size_t(p) * A, b + size_t(p) * Af, sizeof(float) * size_t(A));
    }
}

void cls_gather_forward(float* out, const float* x, int B, int T, int C) {
    for (int b = 0; b < B; ++b) std::memcpy(out + size_t(b) * C, x + size_t(b) * T * C, sizeof(float) * C);
}

void cls_gather_backward(float* dx, const float* dout, int B, int T, int C) {
    std::memset(dx, 0, sizeof(float) * size_t(B) * T * C);
    for (int b = 0; b < B; ++b) std::memcpy(dx + size_t(b) * T * C, dout + size_t(b) * C, sizeof(float) * C);
}

void moe_mix_forward(float* out, const float* e0, const float* e1, const float* gates, int B, long R) {
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; ++b) {
        const float g0 = gates[2 * b], g1 = gates[2 * b + 1];
        const size_t o = size_t(b) * R;
        for (long i = 0; i < R; ++i) out[o + i] += g0 * e0[o + i] + g1 * e1[o + i];
    }
}

void moe_mix_backward(float* dexp, float* dgates, const float* dout, const float* exp_out, const float* gates, int e,
                      int B, long R) {
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; ++b) {
        const size_t o = size_t(b) * R;
        const float g = gates[2 * b + e];
        double dot = 0.0;
        for (long i = 0; i < R; ++i) {
            dot += double(dout[o + i]) * exp_out[o + i];
            dexp[o + i] = g * dout[o + i];
        }
        dgates[2 * b + e] = float(dot);
    }
}

}  // namespace ufo

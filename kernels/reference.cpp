// reference.cpp — plain loops, double accumulators, libm transcendental functions.
#include "reference.h"

#include <cmath>
#include <vector>

namespace ufo::ref {

void matmul_forward(float* out, int ldo, const float* inp, int ldi, const float* w, int ldw,
                    const float* b, int N, int IC, int OC, bool accumulate) {
    for (int n = 0; n < N; ++n)
        for (int o = 0; o < OC; ++o) {
            double s = b ? b[o] : 0.0;
            for (int i = 0; i < IC; ++i) s += double(inp[n * ldi + i]) * w[o * ldw + i];
            out[n * ldo + o] = float((accumulate ? out[n * ldo + o] : 0.0) + s);
        }
}

void matmul_backward(float* dinp, int lddi, float* dw, int lddw, float* db, const float* dout,
                     int lddo, const float* inp, int ldi, const float* w, int ldw, int N, int IC,
                     int OC, bool accumulate_dinp) {
    if (dinp)
        for (int n = 0; n < N; ++n)
            for (int i = 0; i < IC; ++i) {
                double s = 0.0;
                for (int o = 0; o < OC; ++o) s += double(dout[n * lddo + o]) * w[o * ldw + i];
                dinp[n * lddi + i] = float((accumulate_dinp ? dinp[n * lddi + i] : 0.0) + s);
            }
    for (int o = 0; o < OC; ++o) {
        for (int i = 0; i < IC; ++i) {
            double s = 0.0;
            for (int n = 0; n < N; ++n) s += double(dout[n * lddo + o]) * inp[n * ldi + i];
            dw[o * lddw + i] += float(s);
        }
        if (db) {
            double s = 0.0;
            for (int n = 0; n < N; ++n) s += dout[n * lddo + o];
            db[o] += float(s);
        }
    }
}

void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, int ldi,
                       const float* w, const float* b, int N, int G, int C) {
    for (int n = 0; n < N; ++n)
        for (int g = 0; g < G; ++g) {
            const float* x = inp + long(n) * ldi + long(g) * C;
            double m = 0.0, v = 0.0;
            for (int c = 0; c < C; ++c) m += x[c];
            m /= C;
            for (int c = 0; c < C; ++c) v += (x[c] - m) * (x[c] - m);
            v /= C;
            double rs = 1.0 / std::sqrt(v + 1e-6);
            long r = long(n) * G + g;
            for (int c = 0; c < C; ++c) out[r * C + c] = float((x[c] - m) * rs * w[c] + b[c]);
            mean[r] = float(m);
            rstd[r] = float(rs);
        }
}

void layernorm_backward(float* dinp, int lddi, float* dw, float* db, const float* dout,
                        const float* inp, int ldi, const float* w, const float* mean,
                        const float* rstd, int N, int G, int C) {
    for (int n = 0; n < N; ++n)
        for (int g = 0; g < G; ++g) {
            long r = long(n) * G + g;
            const float* x = inp + long(n) * ldi + long(g) * C;
            const float* dy = dout + r * C;
            float* dx = dinp + long(n) * lddi + long(g) * C;
            double m = mean[r], rs = rstd[r], sdn = 0.0, sdnx = 0.0;
            for (int c = 0; c < C; ++c) {
                double xh = (x[c] - m) * rs;
                sdn += dy[c] * w[c];
                sdnx += dy[c] * w[c] * xh;
                dw[c] += float(dy[c] * xh);
                db[c] += dy[c];
            }
            sdn /= C;
            sdnx /= C;
            for (int c = 0; c < C; ++c) {
                double xh = (x[c] - m) * rs;
                dx[c] += float(rs * (dy[c] * w[c] - sdn - xh * sdnx));
            }
        }
}

static const double kK0 = 0.7978845608028654, kK1 = 0.044715;

void gelu_forward(float* out, const float* inp, long N) {
    for (long i = 0; i < N; ++i) {
        double x = inp[i];
        out[i] = float(0.5 * x * (1.0 + std::tanh(kK0 * (x + kK1 * x * x * x))));
    }
}

void gelu_backward(float* dinp, const float* dout, const float* inp, long N) {
    for (long i = 0; i < N; ++i) {
        double x = inp[i], t = std::tanh(kK0 * (x + kK1 * x * x * x));
        double g = 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * kK0 * (1.0 + 3.0 * kK1 * x * x);
        dinp[i] = float(dout[i] * g);
    }
}

void attention_forward(float* out, float* att, const float* q, int ldq, const float* k, int ldk,
                       const float* v, int ldv, int B, int T, int NH, int HS) {
    const double scale = 1.0 / std::sqrt(double(HS));
    const int A = NH * HS;
    for (int b = 0; b < B; ++b)
        for (int h = 0; h < NH; ++h)
            for (int i = 0; i < T; ++i) {
                float* arow = att + ((long(b) * NH + h) * T + i) * T;
                std::vector<double> s(T);
                double mx = -1e300, sum = 0.0;
                for (int j = 0; j < T; ++j) {
                    double d = 0.0;
                    for (int e = 0; e < HS; ++e)
                        d += double(q[(long(b) * T + i) * ldq + h * HS + e]) * k[(long(b) * T + j) * ldk + h * HS + e];
                    s[j] = d * scale;
                    mx = std::fmax(mx, s[j]);
                }
                for (int j = 0; j < T; ++j) sum += (s[j] = std::exp(s[j] - mx));
                for (int j = 0; j < T; ++j) arow[j] = float(s[j] / sum);
                for (int e = 0; e < HS; ++e) {
                    double o = 0.0;
                    for (int j = 0; j < T; ++j) o += s[j] / sum * v[(long(b) * T + j) * ldv + h * HS + e];
                    out[(long(b) * T + i) * A + h * HS + e] = float(o);
                }
            }
}

void attention_backward(float* dq, int lddq, float* dk, int lddk, float* dv, int lddv,
                        const float* dout, const float* q, int ldq, const float* k, int ldk,
                        const float* v, int ldv, const float* att, int B, int T, int NH, int HS) {
    const double scale = 1.0 / std::sqrt(double(HS));
    const int A = NH * HS;
    for (int b = 0; b < B; ++b)
        for (int h = 0; h < NH; ++h)
            for (int i = 0; i < T; ++i) {
                const float* arow = att + ((long(b) * NH + h) * T + i) * T;
                const float* doi = dout + (long(b) * T + i) * A + h * HS;
                std::vector<double> dp(T);
                double s = 0.0;
                for (int j = 0; j < T; ++j) {
                    double d = 0.0;
                    for (int e = 0; e < HS; ++e) {
                        d += double(doi[e]) * v[(long(b) * T + j) * ldv + h * HS + e];
                        dv[(long(b) * T + j) * lddv + h * HS + e] += arow[j] * doi[e];
                    }
                    dp[j] = d;
                    s += arow[j] * d;
                }
                for (int j = 0; j < T; ++j) {
                    double ds = arow[j] * (dp[j] - s) * scale;
                    for (int e = 0; e < HS; ++e) {
                        dq[(long(b) * T + i) * lddq + h * HS + e] += float(ds * k[(long(b) * T + j) * ldk + h * HS + e]);
                        dk[(long(b) * T + j) * lddk + h * HS + e] += float(ds * q[(long(b) * T + i) * ldq + h * HS + e]);
                    }
                }
            }
}

}  // namespace ufo::ref

namespace ufo::ref {

void patchify_forward(float* out, const uint8_t* images, int B, int H, int W, int C, int ps, const float* scale,
                      const float* shift) {
    const int gh = H / ps, gw = W / ps, pd = ps * ps * C;
    for (int b = 0; b < B; ++b)
        for (int py = 0; py < gh; ++py)
            for (int px = 0; px < gw; ++px)
                for (int ky = 0; ky < ps; ++ky)
                    for (int kx = 0; kx < ps; ++kx)
                        for (int c = 0; c < C; ++c) {
                            const int y = py * ps + ky, x = px * ps + kx;
                            const uint8_t v = images[((size_t(b) * H + y) * W + x) * C + c];
                            out[(size_t(b) * gh * gw + py * gw + px) * pd + (ky * ps + kx) * C + c] =
                                v * scale[c] + shift[c];
                        }
}

void tokens_forward(float* x, const float* emb, const float* cls, const float* pos, int B, int T, int C) {
    for (int b = 0; b < B; ++b)
        for (int t = 0; t < T; ++t)
            for (int c = 0; c < C; ++c)
                x[(size_t(b) * T + t) * C + c] =
                    (t == 0 ? cls[c] : emb[(size_t(b) * (T - 1) + t - 1) * C + c]) + pos[size_t(t) * C + c];
}

void tokens_backward(float* demb, float* dcls, float* dpos, const float* dx, int B, int T, int C) {
    for (int t = 0; t < T; ++t)
        for (int c = 0; c < C; ++c) {
            double s = 0.0;
            for (int b = 0; b < B; ++b) s += dx[(size_t(b) * T + t) * C + c];
            if (dpos) dpos[size_t(t) * C + c] += float(s);
            if (t == 0 && dcls) dcls[c] += float(s);
        }
    if (demb)
        for (int b = 0; b < B; ++b)
            for (int t = 1; t < T; ++t)
                for (int c = 0; c < C; ++c)
                    demb[(size_t(b) * (T - 1) + t - 1) * C + c] = dx[(size_t(b) * T + t) * C + c];
}

void cls_gather_forward(float* out, const float* x, int B, int T, int C) {
    for (int b = 0; b < B; ++b)
        for (int c = 0; c < C; ++c) out[size_t(b) * C + c] = x[size_t(b) * T * C + c];
}

void cls_gather_backward(float* dx, const float* dout, int B, int T, int C) {
    for (int b = 0; b < B; ++b)
        for (int t = 0; t < T; ++t)
            for (int c = 0; c < C; ++c) dx[(size_t(b) * T + t) * C + c] = t == 0 ? dout[size_t(b) * C + c] : 0.0f;
}

void moe_mix_forward(float* out, const float* e0, const float* e1, const float* gates, int B, long R) {
    for (int b = 0; b < B; ++b)
        for (long i = 0; i < R; ++i) {
            const size_t k = size_t(b) * R + i;
            out[k] = float(double(out[k]) + double(gates[2 * b]) * e0[k] + double(gates[2 * b + 1]) * e1[k]);
        }
}

void moe_mix_backward(float* dexp, float* dgates, const float* dout, const float* exp_out, const float* gates, int e,
                      int B, long R) {
    for (int b = 0; b < B; ++b) {
        double dot = 0.0;
        for (long i = 0; i < R; ++i) {
            const size_t k = size_t(b) * R + i;
            dot += double(dout[k]) * exp_out[k];
            dexp[k] = gates[2 * b + e] * dout[k];
        }
        dgates[2 * b + e] = float(dot);
    }
}

}  // namespace ufo::ref

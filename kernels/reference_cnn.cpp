// reference_cnn.cpp — plain loops, double accumulators, scatter-form backwards.
#include "reference_cnn.h"

#include <cmath>
#include <vector>

namespace ufo::ref {

namespace {

int out_size(int in, int K, int S, int P) {
    const int span = in + 2 * P - K;
    return span < 0 ? 0 : span / S + 1;
}

const double kEps = 1e-5;

}  // namespace

// ---------------------------------------------------------------- convolution

void conv2d_forward(float* out, float* /*scratch*/, const float* inp, const float* w, const float* b,
                    int B, int H, int W, int IC, int OC, int K, int S, int P) {
    const int OH = out_size(H, K, S, P), OW = out_size(W, K, S, P);
    for (int n = 0; n < B; ++n)
        for (int oy = 0; oy < OH; ++oy)
            for (int ox = 0; ox < OW; ++ox)
                for (int o = 0; o < OC; ++o) {
                    double s = b ? b[o] : 0.0;
                    for (int i = 0; i < IC; ++i)
                        for (int ky = 0; ky < K; ++ky)
                            for (int kx = 0; kx < K; ++kx) {
                                const int iy = oy * S - P + ky, ix = ox * S - P + kx;
                                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                                s += double(inp[((long(n) * H + iy) * W + ix) * IC + i]) *
                                     w[((long(o) * IC + i) * K + ky) * K + kx];
                            }
                    out[((long(n) * OH + oy) * OW + ox) * OC + o] = float(s);
                }
}

void conv2d_im2col(float* col, const float* inp, int B, int H, int W, int IC, int K, int S, int P) {
    const int OH = out_size(H, K, S, P), OW = out_size(W, K, S, P), CK = IC * K * K;
    for (int n = 0; n < B; ++n)
        for (int oy = 0; oy < OH; ++oy)
            for (int ox = 0; ox < OW; ++ox)
                for (int i = 0; i < IC; ++i)
                    for (int ky = 0; ky < K; ++ky)
                        for (int kx = 0; kx < K; ++kx) {
                            const int iy = oy * S - P + ky, ix = ox * S - P + kx;
                            const bool in = iy >= 0 && iy < H && ix >= 0 && ix < W;
                            col[((long(n) * OH + oy) * OW + ox) * CK + (i * K + ky) * K + kx] =
                                in ? inp[((long(n) * H + iy) * W + ix) * IC + i] : 0.0f;
                        }
}

void conv2d_col2im(float* dinp, const float* dcol, int B, int H, int W, int IC, int K, int S,
                   int P) {
    const int OH = out_size(H, K, S, P), OW = out_size(W, K, S, P), CK = IC * K * K;
    std::vector<double> acc(size_t(B) * H * W * IC, 0.0);
    for (int n = 0; n < B; ++n)
        for (int oy = 0; oy < OH; ++oy)
            for (int ox = 0; ox < OW; ++ox)
                for (int i = 0; i < IC; ++i)
                    for (int ky = 0; ky < K; ++ky)
                        for (int kx = 0; kx < K; ++kx) {
                            const int iy = oy * S - P + ky, ix = ox * S - P + kx;
                            if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                            acc[((size_t(n) * H + iy) * W + ix) * IC + i] +=
                                dcol[((long(n) * OH + oy) * OW + ox) * CK + (i * K + ky) * K + kx];
                        }
    for (size_t j = 0; j < acc.size(); ++j) dinp[j] = float(dinp[j] + acc[j]);
}

void conv2d_backward(float* dinp, float* dw, float* db, float* /*scratch*/, const float* dout,
                     const float* inp, const float* w, int B, int H, int W, int IC, int OC, int K,
                     int S, int P) {
    const int OH = out_size(H, K, S, P), OW = out_size(W, K, S, P);
    std::vector<double> gi(dinp ? size_t(B) * H * W * IC : 0, 0.0);
    std::vector<double> gw(size_t(OC) * IC * K * K, 0.0), gb(OC, 0.0);
    for (int n = 0; n < B; ++n)
        for (int oy = 0; oy < OH; ++oy)
            for (int ox = 0; ox < OW; ++ox)
                for (int o = 0; o < OC; ++o) {
                    const double g = dout[((long(n) * OH + oy) * OW + ox) * OC + o];
                    gb[o] += g;
                    for (int i = 0; i < IC; ++i)
                        for (int ky = 0; ky < K; ++ky)
                            for (int kx = 0; kx < K; ++kx) {
                                const int iy = oy * S - P + ky, ix = ox * S - P + kx;
                                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                                const size_t xi = ((size_t(n) * H + iy) * W + ix) * IC + i;
                                const size_t wi = ((size_t(o) * IC + i) * K + ky) * K + kx;
                                gw[wi] += g * inp[xi];
                                if (dinp) gi[xi] += g * w[wi];
                            }
                }
    if (dinp)
        for (size_t j = 0; j < gi.size(); ++j) dinp[j] = float(dinp[j] + gi[j]);
    if (dw)
        for (size_t j = 0; j < gw.size(); ++j) dw[j] = float(dw[j] + gw[j]);
    if (db)
        for (int o = 0; o < OC; ++o) db[o] = float(db[o] + gb[o]);
}

// ---------------------------------------------------------------- batch normalisation

void batchnorm_forward_train(float* out, float* mean, float* rstd, const float* inp,
                             const float* gamma, const float* beta, int N, int C) {
    for (int c = 0; c < C; ++c) {
        double m = 0.0, v = 0.0;
        for (int n = 0; n < N; ++n) m += inp[long(n) * C + c];
        m /= N;
        for (int n = 0; n < N; ++n) v += (inp[long(n) * C + c] - m) * (inp[long(n) * C + c] - m);
        v /= N;
        const double rs = 1.0 / std::sqrt(v + kEps);
        for (int n = 0; n < N; ++n)
            out[long(n) * C + c] = float((inp[long(n) * C + c] - m) * rs * gamma[c] + beta[c]);
        mean[c] = float(m);
        rstd[c] = float(rs);
    }
}

void batchnorm_forward_eval(float* out, const float* inp, const float* gamma, const float* beta,
                            const float* run_mean, const float* run_var, int N, int C) {
    for (int n = 0; n < N; ++n)
        for (int c = 0; c < C; ++c)
            out[long(n) * C + c] = float((inp[long(n) * C + c] - double(run_mean[c])) /
                                             std::sqrt(double(run_var[c]) + kEps) * gamma[c] +
                                         beta[c]);
}

void batchnorm_backward(float* dinp, float* dgamma, float* dbeta, const float* dout,
                        const float* inp, const float* gamma, const float* mean, const float* rstd,
                        int N, int C) {
    for (int c = 0; c < C; ++c) {
        const double m = mean[c], rs = rstd[c];
        double s1 = 0.0, s2 = 0.0;
        for (int n = 0; n < N; ++n) {
            const double dy = dout[long(n) * C + c], xh = (inp[long(n) * C + c] - m) * rs;
            s1 += dy;
            s2 += dy * xh;
        }
        for (int n = 0; n < N; ++n) {
            const double dy = dout[long(n) * C + c], xh = (inp[long(n) * C + c] - m) * rs;
            dinp[long(n) * C + c] = float(dinp[long(n) * C + c] + gamma[c] * rs * (dy - s1 / N - xh * s2 / N));
        }
        if (dgamma) dgamma[c] = float(dgamma[c] + s2);
        if (dbeta) dbeta[c] = float(dbeta[c] + s1);
    }
}

void batchnorm_update_running(float* run_mean, float* run_var, const float* mean,
                              const float* rstd, int N, int C, float momentum) {
    for (int c = 0; c < C; ++c) {
        double var = 1.0 / (double(rstd[c]) * rstd[c]) - kEps;
        if (var < 0.0) var = 0.0;
        if (N > 1) var = var * N / (N - 1);
        run_mean[c] = float((1.0 - momentum) * run_mean[c] + double(momentum) * mean[c]);
        run_var[c] = float((1.0 - momentum) * run_var[c] + double(momentum) * var);
    }
}

// ---------------------------------------------------------------- ReLU

void relu_forward(float* out, const float* inp, long N) {
    for (long i = 0; i < N; ++i) out[i] = inp[i] > 0.0f ? inp[i] : 0.0f;
}

void relu_backward(float* dinp, const float* dout, const float* x, long N) {
    for (long i = 0; i < N; ++i)
        if (x[i] > 0.0f) dinp[i] += dout[i];
}

// ---------------------------------------------------------------- pooling

void maxpool2d_forward(float* out, int32_t* idx, const float* inp, int B, int H, int W, int C,
                       int K, int S) {
    const int OH = out_size(H, K, S, 0), OW = out_size(W, K, S, 0);
    for (int n = 0; n < B; ++n)
        for (int oy = 0; oy < OH; ++oy)
            for (int ox = 0; ox < OW; ++ox)
                for (int c = 0; c < C; ++c) {
                    float best = 0.0f;
                    int32_t arg = -1;
                    for (int ky = 0; ky < K; ++ky)
                        for (int kx = 0; kx < K; ++kx) {
                            const int pos = (oy * S + ky) * W + ox * S + kx;
                            const float v = inp[(long(n) * H * W + pos) * C + c];
                            if (arg < 0 || v > best || std::isnan(v)) {
                                best = v;
                                arg = pos;
                            }
                        }
                    const long o = ((long(n) * OH + oy) * OW + ox) * C + c;
                    out[o] = best;
                    idx[o] = arg;
                }
}

void maxpool2d_backward(float* dinp, const float* dout, const int32_t* idx, int B, int H, int W,
                        int C, int K, int S) {
    const int OH = out_size(H, K, S, 0), OW = out_size(W, K, S, 0);
    for (int n = 0; n < B; ++n)
        for (int oy = 0; oy < OH; ++oy)
            for (int ox = 0; ox < OW; ++ox)
                for (int c = 0; c < C; ++c) {
                    const long o = ((long(n) * OH + oy) * OW + ox) * C + c;
                    dinp[(long(n) * H * W + idx[o]) * C + c] += dout[o];
                }
}

void avgpool2d_forward(float* out, const float* inp, int B, int H, int W, int C, int K, int S) {
    const int OH = out_size(H, K, S, 0), OW = out_size(W, K, S, 0);
    for (int n = 0; n < B; ++n)
        for (int oy = 0; oy < OH; ++oy)
            for (int ox = 0; ox < OW; ++ox)
                for (int c = 0; c < C; ++c) {
                    double s = 0.0;
                    for (int ky = 0; ky < K; ++ky)
                        for (int kx = 0; kx < K; ++kx)
                            s += inp[((long(n) * H + oy * S + ky) * W + ox * S + kx) * C + c];
                    out[((long(n) * OH + oy) * OW + ox) * C + c] = float(s / (K * K));
                }
}

void avgpool2d_backward(float* dinp, const float* dout, int B, int H, int W, int C, int K, int S) {
    const int OH = out_size(H, K, S, 0), OW = out_size(W, K, S, 0);
    std::vector<double> acc(size_t(B) * H * W * C, 0.0);
    for (int n = 0; n < B; ++n)
        for (int oy = 0; oy < OH; ++oy)
            for (int ox = 0; ox < OW; ++ox)
                for (int c = 0; c < C; ++c) {
                    const double g = double(dout[((long(n) * OH + oy) * OW + ox) * C + c]) / (K * K);
                    for (int ky = 0; ky < K; ++ky)
                        for (int kx = 0; kx < K; ++kx)
                            acc[((size_t(n) * H + oy * S + ky) * W + ox * S + kx) * C + c] += g;
                }
    for (size_t j = 0; j < acc.size(); ++j) dinp[j] = float(dinp[j] + acc[j]);
}

void global_avgpool_forward(float* out, const float* inp, int B, int H, int W, int C) {
    const long HW = long(H) * W;
    for (int n = 0; n < B; ++n)
        for (int c = 0; c < C; ++c) {
            double s = 0.0;
            for (long p = 0; p < HW; ++p) s += inp[(n * HW + p) * C + c];
            out[long(n) * C + c] = float(s / HW);
        }
}

void global_avgpool_backward(float* dinp, const float* dout, int B, int H, int W, int C) {
    const long HW = long(H) * W;
    for (int n = 0; n < B; ++n)
        for (long p = 0; p < HW; ++p)
            for (int c = 0; c < C; ++c)
                dinp[(n * HW + p) * C + c] = float(dinp[(n * HW + p) * C + c] + double(dout[long(n) * C + c]) / HW);
}

// ---------------------------------------------------------------- input

void normalize_images(float* out, const uint8_t* images, long N, int C, const float* mean,
                      const float* std) {
    for (long n = 0; n < N; ++n)
        for (int c = 0; c < C; ++c)
            out[n * C + c] = float((images[n * C + c] / 255.0 - mean[c]) / std[c]);
}

}  // namespace ufo::ref

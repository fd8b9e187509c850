// fused_attention.cpp — attention_fused_forward: per (batch, head), keys transposed into a
// scratch tile, then per block of query rows the scores, their softmax and the weighted sum
// of the values, the scores never leaving registers.
//
// AVX-512 kernels (a row of up to 64 scores is four 16-float registers), chosen at run time;
// the compile-time baseline is AVX2, so every AVX-512 function carries a target attribute.
#include "layers/fused_attention.h"

// GCC 12's _mm512_reduce_*_ps start from _mm512_undefined_ps and trip -Wuninitialized (GCC
// bug 105593): silenced for this file only.
#pragma GCC diagnostic ignored "-Wuninitialized"

#include "base/common.h"
#include "vec_math.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <vector>

// The tiles' accumulator arrays must live in registers: GCC promotes them only when the
// constant-trip loops over them are unrolled before its scalar replacement runs.
#define UFO_UNROLL _Pragma("GCC unroll 8")

namespace ufo {

namespace {

constexpr int kMaxTokens = 64;   // four 16-float registers per score row
constexpr int kKeyCols = 64;     // kt's row length: every score tile computes 64 columns

// kt [HS, 64] <- k [T, HS] (row stride ldk) transposed; columns T..63 are zero.
void transpose_keys(float* kt, const float* k, int ldk, int T, int HS) {
    int j = 0;
    for (; j + 8 <= T; j += 8) {
        int d = 0;
        for (; d + 8 <= HS; d += 8) {   // one 8x8 block: rows j..j+7, columns d..d+7
            __m256 r[8], t[8], s[8];
            UFO_UNROLL for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(k + size_t(j + i) * ldk + d);
            UFO_UNROLL for (int i = 0; i < 8; i += 2) {
                t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
                t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
            }
            UFO_UNROLL for (int i = 0; i < 8; i += 4) {
                s[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
                s[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
                s[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
                s[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
            }
            // s[i] holds column d+i of rows j..j+3 (low half) and d+i+4 of the same rows;
            // s[i+4] the same for rows j+4..j+7.
            UFO_UNROLL for (int i = 0; i < 4; ++i) {
                _mm256_storeu_ps(kt + size_t(d + i) * kKeyCols + j, _mm256_permute2f128_ps(s[i], s[i + 4], 0x20));
                _mm256_storeu_ps(kt + size_t(d + i + 4) * kKeyCols + j, _mm256_permute2f128_ps(s[i], s[i + 4], 0x31));
            }
        }
        for (; d < HS; ++d)
            for (int i = 0; i < 8; ++i) kt[size_t(d) * kKeyCols + j + i] = k[size_t(j + i) * ldk + d];
    }
    for (; j < T; ++j)
        for (int d = 0; d < HS; ++d) kt[size_t(d) * kKeyCols + j] = k[size_t(j) * ldk + d];
    for (int d = 0; d < HS; ++d)
        for (j = T; j < kKeyCols; ++j) kt[size_t(d) * kKeyCols + j] = 0.0f;
}

// Rows i..i+R-1 of one pair: scores s[r, j] = q[r] . kt[:, j] in 4 registers per row, then
// p[r, j] = exp(scale * (s[r, j] - max_j s[r, j])) for j < T (0 beyond), inv[r] = 1 / sum_j.
// q [R, HS] (ldq), kt [HS, 64], p [R, 64], inv [R].
template <int R>
UFO_AVX512 void scores_softmax_rows(float* p, float* inv, const float* q, int ldq, const float* kt, int T, int HS,
                                    float scale) {
    __m512 acc[R][4];
    UFO_UNROLL for (int r = 0; r < R; ++r)
        UFO_UNROLL for (int c = 0; c < 4; ++c) acc[r][c] = _mm512_setzero_ps();
    for (int d = 0; d < HS; ++d) {
        const float* kd = kt + size_t(d) * kKeyCols;
        __m512 kv[4];
        UFO_UNROLL for (int c = 0; c < 4; ++c) kv[c] = _mm512_loadu_ps(kd + 16 * c);
        UFO_UNROLL for (int r = 0; r < R; ++r) {
            const __m512 qb = _mm512_set1_ps(q[size_t(r) * ldq + d]);
            UFO_UNROLL for (int c = 0; c < 4; ++c) acc[r][c] = _mm512_fmadd_ps(qb, kv[c], acc[r][c]);
        }
    }
    // Lanes at or past T take no part: -inf for the max, 0 after the exponential.
    __mmask16 live[4];
    UFO_UNROLL for (int c = 0; c < 4; ++c) {
        const int n = std::clamp(T - 16 * c, 0, 16);
        live[c] = __mmask16((1u << n) - 1u);
    }
    const __m512 ninf = _mm512_set1_ps(-INFINITY), vs = _mm512_set1_ps(scale);
    UFO_UNROLL for (int r = 0; r < R; ++r) {
        __m512 m = ninf;
        UFO_UNROLL for (int c = 0; c < 4; ++c) m = _mm512_mask_max_ps(m, live[c], m, acc[r][c]);
        const __m512 vm = _mm512_set1_ps(_mm512_reduce_max_ps(m) * scale);
        __m512 sum = _mm512_setzero_ps();
        UFO_UNROLL for (int c = 0; c < 4; ++c) {
            const __m512 e = _mm512_maskz_mov_ps(live[c], vec::exp16(_mm512_fmsub_ps(acc[r][c], vs, vm)));
            _mm512_storeu_ps(p + size_t(r) * kKeyCols + 16 * c, e);
            sum = _mm512_add_ps(sum, e);
        }
        inv[r] = 1.0f / _mm512_reduce_add_ps(sum);
    }
}

// o[r, 16c..] = inv[r] * sum_j p[r, j] * v[j, 16c..] for r < R, c < NV; the last register
// covers only `last` lanes (mask). o [R, *] (ldo), p [R, 64], v [T, *] (ldv).
template <int R, int NV>
UFO_AVX512 void values_rows(float* o, int ldo, const float* p, const float* v, int ldv, int T, const float* inv,
                            __mmask16 last) {
    __m512 acc[R][NV];
    UFO_UNROLL for (int r = 0; r < R; ++r)
        UFO_UNROLL for (int c = 0; c < NV; ++c) acc[r][c] = _mm512_setzero_ps();
    for (int j = 0; j < T; ++j) {
        const float* vj = v + size_t(j) * ldv;
        __m512 vv[NV];
        UFO_UNROLL for (int c = 0; c < NV; ++c)
            vv[c] = c + 1 < NV ? _mm512_loadu_ps(vj + 16 * c) : _mm512_maskz_loadu_ps(last, vj + 16 * c);
        UFO_UNROLL for (int r = 0; r < R; ++r) {
            const __m512 pb = _mm512_set1_ps(p[size_t(r) * kKeyCols + j]);
            UFO_UNROLL for (int c = 0; c < NV; ++c) acc[r][c] = _mm512_fmadd_ps(pb, vv[c], acc[r][c]);
        }
    }
    UFO_UNROLL for (int r = 0; r < R; ++r) {
        const __m512 sc = _mm512_set1_ps(inv[r]);
        UFO_UNROLL for (int c = 0; c < NV; ++c) {
            float* dst = o + size_t(r) * ldo + 16 * c;
            if (c + 1 < NV) _mm512_storeu_ps(dst, _mm512_mul_ps(acc[r][c], sc));
            else _mm512_mask_storeu_ps(dst, last, _mm512_mul_ps(acc[r][c], sc));
        }
    }
}

// 6 rows: 6 x 4 score accumulators + 4 key registers + a broadcast fit AVX-512's 32 registers.
constexpr int kRows = 6;
using ScoresFn = void (*)(float*, float*, const float*, int, const float*, int, int, float);
using ValuesFn = void (*)(float*, int, const float*, const float*, int, int, const float*, __mmask16);
const ScoresFn kScores[kRows] = {scores_softmax_rows<1>, scores_softmax_rows<2>, scores_softmax_rows<3>,
                                 scores_softmax_rows<4>, scores_softmax_rows<5>, scores_softmax_rows<6>};
#define UFO_VALUES_ROW(R) {values_rows<R, 1>, values_rows<R, 2>, values_rows<R, 3>, values_rows<R, 4>}
const ValuesFn kValues[kRows][4] = {UFO_VALUES_ROW(1), UFO_VALUES_ROW(2), UFO_VALUES_ROW(3),
                                    UFO_VALUES_ROW(4), UFO_VALUES_ROW(5), UFO_VALUES_ROW(6)};
#undef UFO_VALUES_ROW

// One (batch, head) pair. out [T, HS] (row stride ldo); q, k, v [T, HS] with their strides;
// kt [HS, 64], p [T, 64], inv [T] scratch.
void attend_pair(float* out, int ldo, const float* q, int ldq, const float* k, int ldk, const float* v, int ldv, int T,
                 int HS, float* kt, float* p, float* inv) {
    const float scale = 1.0f / std::sqrt(float(HS));
    transpose_keys(kt, k, ldk, T, HS);
    for (int i = 0; i < T; i += kRows) {
        const int R = std::min(kRows, T - i);
        kScores[R - 1](p + size_t(i) * kKeyCols, inv + i, q + size_t(i) * ldq, ldq, kt, T, HS, scale);
    }
    for (int c = 0; c < HS; c += 64) {   // value columns in chunks of up to four registers
        const int width = std::min(64, HS - c), NV = (width + 15) / 16;
        const __mmask16 last = __mmask16((1u << (width - 16 * (NV - 1))) - 1u);
        for (int i = 0; i < T; i += kRows) {
            const int R = std::min(kRows, T - i);
            kValues[R - 1][NV - 1](out + size_t(i) * ldo + c, ldo, p + size_t(i) * kKeyCols, v + c, ldv, T, inv + i,
                                   last);
        }
    }
}

bool cpu_has_avx512() {
    static const bool has = __builtin_cpu_supports("avx512f");
    return has;
}

}  // namespace

bool attention_fused_supported(int T) { return T >= 1 && T <= kMaxTokens && cpu_has_avx512(); }

void attention_fused_forward(float* out, const float* q, int ldq, const float* k, int ldk, const float* v, int ldv,
                             int B, int T, int NH, int HS) {
    if (!attention_fused_supported(T)) fail("", "fused attention needs AVX-512 and at most 64 tokens");
    const int A = NH * HS;
    // Per-thread scratch: kt [HS,64], p [T,64], inv [T]; thread_local, so a thread allocates
    // only when a larger head comes along.
    const size_t need = size_t(HS) * kKeyCols + size_t(T) * kKeyCols + size_t(T);
#pragma omp parallel
    {
        thread_local std::vector<float> scratch;
        if (scratch.size() < need) scratch.resize(need);
        float* kt = scratch.data();
        float* p = kt + size_t(HS) * kKeyCols;
        float* inv = p + size_t(T) * kKeyCols;
#pragma omp for collapse(2) schedule(static)
        for (int b = 0; b < B; ++b)
            for (int h = 0; h < NH; ++h) {
                const size_t tok0 = size_t(b) * T;
                attend_pair(out + tok0 * A + h * HS, A, q + tok0 * ldq + h * HS, ldq, k + tok0 * ldk + h * HS, ldk,
                            v + tok0 * ldv + h * HS, ldv, T, HS, kt, p, inv);
            }
    }
}

}  // namespace ufo

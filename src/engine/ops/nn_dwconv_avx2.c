/*
 * Depthwise convolution of one plane, AVX2 + FMA (see nn_dwconv.h).
 *
 * Sixteen outputs of a row live in two registers while every kernel tap is
 * applied, so each output is loaded and stored once instead of once per tap
 * as in the portable kernel. The common 3x3 case keeps its nine weights in
 * registers. ReLU and Clip are applied in registers; other activations run
 * over the finished row. Tails use masked loads, which never touch memory
 * outside the mask, so no row needs slack at its end.
 */
#include <immintrin.h>

#include "engine/ops/nn_dwconv.h"

#define DW_MAX_TAPS 64

static inline __m256 act8(__m256 v, tdm_act act, __m256 lo, __m256 hi)
{
    if (act == TDM_ACT_RELU)
        return _mm256_max_ps(v, _mm256_setzero_ps());
    if (act == TDM_ACT_CLIP)
        return _mm256_min_ps(hi, _mm256_max_ps(lo, v)); /* NaN passes, as in act1 */
    return v;
}

static inline __m256i tail_mask(int64_t rem)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)rem),
                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

static void row_3x3(const tdm_dw_plane *p, const float *base, const int64_t *offs, float *o,
                    tdm_act act, __m256 lo, __m256 hi)
{
    const __m256 w0 = _mm256_set1_ps(p->w[0]), w1 = _mm256_set1_ps(p->w[1]);
    const __m256 w2 = _mm256_set1_ps(p->w[2]), w3 = _mm256_set1_ps(p->w[3]);
    const __m256 w4 = _mm256_set1_ps(p->w[4]), w5 = _mm256_set1_ps(p->w[5]);
    const __m256 w6 = _mm256_set1_ps(p->w[6]), w7 = _mm256_set1_ps(p->w[7]);
    const __m256 w8 = _mm256_set1_ps(p->w[8]), b = _mm256_set1_ps(p->bias);
    const float *s0 = base + offs[0], *s1 = base + offs[1], *s2 = base + offs[2];
    const float *s3 = base + offs[3], *s4 = base + offs[4], *s5 = base + offs[5];
    const float *s6 = base + offs[6], *s7 = base + offs[7], *s8 = base + offs[8];
    int64_t ox = 0, n = p->wout;
    for (; ox + 16 <= n; ox += 16) {
        __m256 a = _mm256_fmadd_ps(w0, _mm256_loadu_ps(s0 + ox), b);
        __m256 c = _mm256_fmadd_ps(w0, _mm256_loadu_ps(s0 + ox + 8), b);
        a = _mm256_fmadd_ps(w1, _mm256_loadu_ps(s1 + ox), a);
        c = _mm256_fmadd_ps(w1, _mm256_loadu_ps(s1 + ox + 8), c);
        a = _mm256_fmadd_ps(w2, _mm256_loadu_ps(s2 + ox), a);
        c = _mm256_fmadd_ps(w2, _mm256_loadu_ps(s2 + ox + 8), c);
        a = _mm256_fmadd_ps(w3, _mm256_loadu_ps(s3 + ox), a);
        c = _mm256_fmadd_ps(w3, _mm256_loadu_ps(s3 + ox + 8), c);
        a = _mm256_fmadd_ps(w4, _mm256_loadu_ps(s4 + ox), a);
        c = _mm256_fmadd_ps(w4, _mm256_loadu_ps(s4 + ox + 8), c);
        a = _mm256_fmadd_ps(w5, _mm256_loadu_ps(s5 + ox), a);
        c = _mm256_fmadd_ps(w5, _mm256_loadu_ps(s5 + ox + 8), c);
        a = _mm256_fmadd_ps(w6, _mm256_loadu_ps(s6 + ox), a);
        c = _mm256_fmadd_ps(w6, _mm256_loadu_ps(s6 + ox + 8), c);
        a = _mm256_fmadd_ps(w7, _mm256_loadu_ps(s7 + ox), a);
        c = _mm256_fmadd_ps(w7, _mm256_loadu_ps(s7 + ox + 8), c);
        a = _mm256_fmadd_ps(w8, _mm256_loadu_ps(s8 + ox), a);
        c = _mm256_fmadd_ps(w8, _mm256_loadu_ps(s8 + ox + 8), c);
        _mm256_storeu_ps(o + ox, act8(a, act, lo, hi));
        _mm256_storeu_ps(o + ox + 8, act8(c, act, lo, hi));
    }
    for (; ox < n; ox += 8) {
        __m256i m = tail_mask(n - ox);
        __m256 a = _mm256_fmadd_ps(w0, _mm256_maskload_ps(s0 + ox, m), b);
        a = _mm256_fmadd_ps(w1, _mm256_maskload_ps(s1 + ox, m), a);
        a = _mm256_fmadd_ps(w2, _mm256_maskload_ps(s2 + ox, m), a);
        a = _mm256_fmadd_ps(w3, _mm256_maskload_ps(s3 + ox, m), a);
        a = _mm256_fmadd_ps(w4, _mm256_maskload_ps(s4 + ox, m), a);
        a = _mm256_fmadd_ps(w5, _mm256_maskload_ps(s5 + ox, m), a);
        a = _mm256_fmadd_ps(w6, _mm256_maskload_ps(s6 + ox, m), a);
        a = _mm256_fmadd_ps(w7, _mm256_maskload_ps(s7 + ox, m), a);
        a = _mm256_fmadd_ps(w8, _mm256_maskload_ps(s8 + ox, m), a);
        _mm256_maskstore_ps(o + ox, m, act8(a, act, lo, hi));
    }
}

static void row_any(const tdm_dw_plane *p, const float *base, const int64_t *offs, int64_t ntaps,
                    float *o, tdm_act act, __m256 lo, __m256 hi)
{
    const __m256 b = _mm256_set1_ps(p->bias);
    int64_t ox = 0, n = p->wout;
    for (; ox + 16 <= n; ox += 16) {
        __m256 a = b, c = b;
        for (int64_t t = 0; t < ntaps; t++) {
            __m256 w = _mm256_broadcast_ss(&p->w[t]);
            const float *s = base + offs[t] + ox;
            a = _mm256_fmadd_ps(w, _mm256_loadu_ps(s), a);
            c = _mm256_fmadd_ps(w, _mm256_loadu_ps(s + 8), c);
        }
        _mm256_storeu_ps(o + ox, act8(a, act, lo, hi));
        _mm256_storeu_ps(o + ox + 8, act8(c, act, lo, hi));
    }
    for (; ox < n; ox += 8) {
        __m256i m = tail_mask(n - ox);
        __m256 a = b;
        for (int64_t t = 0; t < ntaps; t++)
            a = _mm256_fmadd_ps(_mm256_broadcast_ss(&p->w[t]),
                                _mm256_maskload_ps(base + offs[t] + ox, m), a);
        _mm256_maskstore_ps(o + ox, m, act8(a, act, lo, hi));
    }
}

void tdm_dw_plane_avx2(const tdm_dw_plane *p)
{
    int64_t ntaps = p->kh * p->kw;
    if (ntaps > DW_MAX_TAPS) {
        tdm_dw_plane_portable(p);
        return;
    }
    int64_t offs[DW_MAX_TAPS];
    for (int64_t ki = 0; ki < p->kh; ki++)
        for (int64_t kj = 0; kj < p->kw; kj++) {
            int64_t off = kj * p->dw;
            offs[ki * p->kw + kj] = ki * p->dh * p->in_row + (off % p->sw) * p->phase + off / p->sw;
        }
    bool in_reg = p->act == TDM_ACT_NONE || p->act == TDM_ACT_RELU || p->act == TDM_ACT_CLIP;
    tdm_act act = in_reg ? p->act : TDM_ACT_NONE;
    __m256 lo = _mm256_set1_ps(p->alpha), hi = _mm256_set1_ps(p->beta);
    for (int64_t oy = 0; oy < p->hout; oy++) {
        const float *base = p->in + oy * p->sh * p->in_row;
        float *o = p->out + oy * p->out_row;
        if (ntaps == 9 && p->kw == 3)
            row_3x3(p, base, offs, o, act, lo, hi);
        else
            row_any(p, base, offs, ntaps, o, act, lo, hi);
        if (!in_reg)
            tdm_act_apply(o, p->wout, p->act, p->alpha, p->beta);
    }
}

/*
 * Depthwise convolution of one plane, AVX-512 (see nn_dwconv.h).
 *
 * Same structure as the AVX2 kernel with 16-float vectors: 32 outputs in two
 * registers across all taps, nine weights in registers for 3x3, and masked
 * loads and stores (which never fault outside the mask) for row tails.
 */
#include <immintrin.h>

#include "engine/ops/nn_dwconv.h"

#define DW_MAX_TAPS 64

static inline __m512 act16(__m512 v, tdm_act act, __m512 lo, __m512 hi)
{
    if (act == TDM_ACT_RELU)
        return _mm512_max_ps(v, _mm512_setzero_ps());
    if (act == TDM_ACT_CLIP)
        return _mm512_min_ps(hi, _mm512_max_ps(lo, v)); /* NaN passes, as in act1 */
    return v;
}

static inline __mmask16 tail_mask(int64_t rem)
{
    return rem >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << rem) - 1u);
}

static void row_3x3(const tdm_dw_plane *p, const float *base, const int64_t *offs, float *o,
                    tdm_act act, __m512 lo, __m512 hi)
{
    const __m512 w0 = _mm512_set1_ps(p->w[0]), w1 = _mm512_set1_ps(p->w[1]);
    const __m512 w2 = _mm512_set1_ps(p->w[2]), w3 = _mm512_set1_ps(p->w[3]);
    const __m512 w4 = _mm512_set1_ps(p->w[4]), w5 = _mm512_set1_ps(p->w[5]);
    const __m512 w6 = _mm512_set1_ps(p->w[6]), w7 = _mm512_set1_ps(p->w[7]);
    const __m512 w8 = _mm512_set1_ps(p->w[8]), b = _mm512_set1_ps(p->bias);
    const float *s0 = base + offs[0], *s1 = base + offs[1], *s2 = base + offs[2];
    const float *s3 = base + offs[3], *s4 = base + offs[4], *s5 = base + offs[5];
    const float *s6 = base + offs[6], *s7 = base + offs[7], *s8 = base + offs[8];
    int64_t ox = 0, n = p->wout;
    for (; ox + 32 <= n; ox += 32) {
        __m512 a = _mm512_fmadd_ps(w0, _mm512_loadu_ps(s0 + ox), b);
        __m512 c = _mm512_fmadd_ps(w0, _mm512_loadu_ps(s0 + ox + 16), b);
        a = _mm512_fmadd_ps(w1, _mm512_loadu_ps(s1 + ox), a);
        c = _mm512_fmadd_ps(w1, _mm512_loadu_ps(s1 + ox + 16), c);
        a = _mm512_fmadd_ps(w2, _mm512_loadu_ps(s2 + ox), a);
        c = _mm512_fmadd_ps(w2, _mm512_loadu_ps(s2 + ox + 16), c);
        a = _mm512_fmadd_ps(w3, _mm512_loadu_ps(s3 + ox), a);
        c = _mm512_fmadd_ps(w3, _mm512_loadu_ps(s3 + ox + 16), c);
        a = _mm512_fmadd_ps(w4, _mm512_loadu_ps(s4 + ox), a);
        c = _mm512_fmadd_ps(w4, _mm512_loadu_ps(s4 + ox + 16), c);
        a = _mm512_fmadd_ps(w5, _mm512_loadu_ps(s5 + ox), a);
        c = _mm512_fmadd_ps(w5, _mm512_loadu_ps(s5 + ox + 16), c);
        a = _mm512_fmadd_ps(w6, _mm512_loadu_ps(s6 + ox), a);
        c = _mm512_fmadd_ps(w6, _mm512_loadu_ps(s6 + ox + 16), c);
        a = _mm512_fmadd_ps(w7, _mm512_loadu_ps(s7 + ox), a);
        c = _mm512_fmadd_ps(w7, _mm512_loadu_ps(s7 + ox + 16), c);
        a = _mm512_fmadd_ps(w8, _mm512_loadu_ps(s8 + ox), a);
        c = _mm512_fmadd_ps(w8, _mm512_loadu_ps(s8 + ox + 16), c);
        _mm512_storeu_ps(o + ox, act16(a, act, lo, hi));
        _mm512_storeu_ps(o + ox + 16, act16(c, act, lo, hi));
    }
    for (; ox < n; ox += 16) {
        __mmask16 m = tail_mask(n - ox);
        __m512 a = _mm512_fmadd_ps(w0, _mm512_maskz_loadu_ps(m, s0 + ox), b);
        a = _mm512_fmadd_ps(w1, _mm512_maskz_loadu_ps(m, s1 + ox), a);
        a = _mm512_fmadd_ps(w2, _mm512_maskz_loadu_ps(m, s2 + ox), a);
        a = _mm512_fmadd_ps(w3, _mm512_maskz_loadu_ps(m, s3 + ox), a);
        a = _mm512_fmadd_ps(w4, _mm512_maskz_loadu_ps(m, s4 + ox), a);
        a = _mm512_fmadd_ps(w5, _mm512_maskz_loadu_ps(m, s5 + ox), a);
        a = _mm512_fmadd_ps(w6, _mm512_maskz_loadu_ps(m, s6 + ox), a);
        a = _mm512_fmadd_ps(w7, _mm512_maskz_loadu_ps(m, s7 + ox), a);
        a = _mm512_fmadd_ps(w8, _mm512_maskz_loadu_ps(m, s8 + ox), a);
        _mm512_mask_storeu_ps(o + ox, m, act16(a, act, lo, hi));
    }
}

static void row_any(const tdm_dw_plane *p, const float *base, const int64_t *offs, int64_t ntaps,
                    float *o, tdm_act act, __m512 lo, __m512 hi)
{
    const __m512 b = _mm512_set1_ps(p->bias);
    int64_t ox = 0, n = p->wout;
    for (; ox + 32 <= n; ox += 32) {
        __m512 a = b, c = b;
        for (int64_t t = 0; t < ntaps; t++) {
            __m512 w = _mm512_set1_ps(p->w[t]);
            const float *s = base + offs[t] + ox;
            a = _mm512_fmadd_ps(w, _mm512_loadu_ps(s), a);
            c = _mm512_fmadd_ps(w, _mm512_loadu_ps(s + 16), c);
        }
        _mm512_storeu_ps(o + ox, act16(a, act, lo, hi));
        _mm512_storeu_ps(o + ox + 16, act16(c, act, lo, hi));
    }
    for (; ox < n; ox += 16) {
        __mmask16 m = tail_mask(n - ox);
        __m512 a = b;
        for (int64_t t = 0; t < ntaps; t++)
            a = _mm512_fmadd_ps(_mm512_set1_ps(p->w[t]),
                                _mm512_maskz_loadu_ps(m, base + offs[t] + ox), a);
        _mm512_mask_storeu_ps(o + ox, m, act16(a, act, lo, hi));
    }
}

void tdm_dw_plane_avx512(const tdm_dw_plane *p)
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
    __m512 lo = _mm512_set1_ps(p->alpha), hi = _mm512_set1_ps(p->beta);
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

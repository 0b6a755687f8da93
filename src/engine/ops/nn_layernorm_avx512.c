/*
 * LayerNormalization rows with AVX-512 (see nn_layernorm.h). Two vector
 * accumulators per pass hide the add latency; the tail of a row is one
 * masked vector, so rows of any length take the same path. Every pass works
 * on x - x[0] (exact for nearby values), so a row with a large mean and a
 * small spread keeps its precision: the sum does not grow with the mean and
 * the centring does not round the mean to float first.
 */
#include <immintrin.h>
#include <math.h>

#include "engine/ops/nn_layernorm.h"

static inline __mmask16 tail_mask(int64_t n)
{
    return (__mmask16)((1u << n) - 1u);
}

void tdm_ln_rows_avx512(const float *x, float *y, int64_t rows, int64_t n, const float *scale,
                        const float *bias, float eps, float *mean, float *inv_std)
{
    for (int64_t r = 0; r < rows; r++, x += n, y += n) {
        float x0 = n > 0 ? x[0] : 0.f;
        __m512 v0 = _mm512_set1_ps(x0);
        __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
        int64_t i = 0;
        for (; i + 32 <= n; i += 32) {
            s0 = _mm512_add_ps(s0, _mm512_sub_ps(_mm512_loadu_ps(x + i), v0));
            s1 = _mm512_add_ps(s1, _mm512_sub_ps(_mm512_loadu_ps(x + i + 16), v0));
        }
        for (; i < n; i += 16) {
            __mmask16 m = n - i < 16 ? tail_mask(n - i) : 0xffff;
            s0 = _mm512_add_ps(s0, _mm512_maskz_sub_ps(m, _mm512_maskz_loadu_ps(m, x + i), v0));
        }
        /* mean = x0 + ms, kept as two floats */
        float ms = n > 0 ? _mm512_reduce_add_ps(_mm512_add_ps(s0, s1)) / (float)n : 0.f;
        __m512 vm = _mm512_set1_ps(ms);
        s0 = _mm512_setzero_ps();
        s1 = _mm512_setzero_ps();
        for (i = 0; i + 32 <= n; i += 32) {
            __m512 d0 = _mm512_sub_ps(_mm512_sub_ps(_mm512_loadu_ps(x + i), v0), vm);
            __m512 d1 = _mm512_sub_ps(_mm512_sub_ps(_mm512_loadu_ps(x + i + 16), v0), vm);
            s0 = _mm512_fmadd_ps(d0, d0, s0);
            s1 = _mm512_fmadd_ps(d1, d1, s1);
        }
        for (; i < n; i += 16) {
            __mmask16 m = n - i < 16 ? tail_mask(n - i) : 0xffff;
            __m512 d =
                _mm512_maskz_sub_ps(m, _mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), v0), vm);
            s0 = _mm512_fmadd_ps(d, d, s0);
        }
        float var = n > 0 ? _mm512_reduce_add_ps(_mm512_add_ps(s0, s1)) / (float)n : 0.f;
        float inv = 1.f / sqrtf(var + eps);
        if (mean != NULL)
            mean[r] = x0 + ms;
        if (inv_std != NULL)
            inv_std[r] = inv;
        __m512 vi = _mm512_set1_ps(inv);
        for (i = 0; i < n; i += 16) {
            __mmask16 m = n - i < 16 ? tail_mask(n - i) : 0xffff;
            __m512 d = _mm512_sub_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), v0), vm);
            d = _mm512_mul_ps(d, vi);
            __m512 v = _mm512_mul_ps(d, _mm512_maskz_loadu_ps(m, scale + i));
            if (bias != NULL)
                v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, bias + i));
            _mm512_mask_storeu_ps(y + i, m, v);
        }
    }
}

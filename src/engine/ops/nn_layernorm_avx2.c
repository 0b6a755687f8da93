/*
 * LayerNormalization rows with AVX2 + FMA (see nn_layernorm.h); the same
 * structure as the AVX-512 kernel (including working on x - x[0] for
 * precision), tails through vmaskmov.
 */
#include <immintrin.h>
#include <math.h>

#include "engine/ops/nn_layernorm.h"

static inline __m256i tail_mask(int64_t n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

static inline float hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

void tdm_ln_rows_avx2(const float *x, float *y, int64_t rows, int64_t n, const float *scale,
                      const float *bias, float eps, float *mean, float *inv_std)
{
    int64_t nv = n / 8 * 8;
    __m256i tm = tail_mask(n - nv);
    for (int64_t r = 0; r < rows; r++, x += n, y += n) {
        float x0 = n > 0 ? x[0] : 0.f;
        __m256 v0 = _mm256_set1_ps(x0), mt = _mm256_castsi256_ps(tm);
        __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
        int64_t i = 0;
        for (; i + 16 <= n; i += 16) {
            s0 = _mm256_add_ps(s0, _mm256_sub_ps(_mm256_loadu_ps(x + i), v0));
            s1 = _mm256_add_ps(s1, _mm256_sub_ps(_mm256_loadu_ps(x + i + 8), v0));
        }
        for (; i < nv; i += 8)
            s0 = _mm256_add_ps(s0, _mm256_sub_ps(_mm256_loadu_ps(x + i), v0));
        if (nv < n)
            s1 = _mm256_add_ps(
                s1, _mm256_and_ps(_mm256_sub_ps(_mm256_maskload_ps(x + nv, tm), v0), mt));
        /* mean = x0 + ms, kept as two floats */
        float ms = n > 0 ? hsum(_mm256_add_ps(s0, s1)) / (float)n : 0.f;
        __m256 vm = _mm256_set1_ps(ms);
        s0 = _mm256_setzero_ps();
        s1 = _mm256_setzero_ps();
        for (i = 0; i + 16 <= n; i += 16) {
            __m256 d0 = _mm256_sub_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), v0), vm);
            __m256 d1 = _mm256_sub_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i + 8), v0), vm);
            s0 = _mm256_fmadd_ps(d0, d0, s0);
            s1 = _mm256_fmadd_ps(d1, d1, s1);
        }
        for (; i < nv; i += 8) {
            __m256 d = _mm256_sub_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), v0), vm);
            s0 = _mm256_fmadd_ps(d, d, s0);
        }
        if (nv < n) {
            __m256 d = _mm256_sub_ps(_mm256_sub_ps(_mm256_maskload_ps(x + nv, tm), v0), vm);
            d = _mm256_and_ps(d, mt);
            s1 = _mm256_fmadd_ps(d, d, s1);
        }
        float var = n > 0 ? hsum(_mm256_add_ps(s0, s1)) / (float)n : 0.f;
        float inv = 1.f / sqrtf(var + eps);
        if (mean != NULL)
            mean[r] = x0 + ms;
        if (inv_std != NULL)
            inv_std[r] = inv;
        __m256 vi = _mm256_set1_ps(inv);
        for (i = 0; i < nv; i += 8) {
            __m256 d = _mm256_sub_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), v0), vm);
            d = _mm256_mul_ps(d, vi);
            __m256 v = _mm256_mul_ps(d, _mm256_loadu_ps(scale + i));
            if (bias != NULL)
                v = _mm256_add_ps(v, _mm256_loadu_ps(bias + i));
            _mm256_storeu_ps(y + i, v);
        }
        if (nv < n) {
            __m256 d = _mm256_sub_ps(_mm256_sub_ps(_mm256_maskload_ps(x + nv, tm), v0), vm);
            d = _mm256_mul_ps(d, vi);
            __m256 v = _mm256_mul_ps(d, _mm256_maskload_ps(scale + nv, tm));
            if (bias != NULL)
                v = _mm256_add_ps(v, _mm256_maskload_ps(bias + nv, tm));
            _mm256_maskstore_ps(y + nv, tm, v);
        }
    }
}

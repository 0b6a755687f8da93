/*
 * AVX2 + F16C codec kernels (see quant.h for the contract).
 *
 * Multiply and add are separate instructions on purpose: a fused
 * multiply-add rounds once instead of twice and would, on rare ties, pick a
 * different integer than the portable path. Tails go to the portable code.
 */
#include <float.h>
#include <immintrin.h>

#include "codec/quant.h"

static void quantize_avx2(const float *x, size_t n, float inv, float zp, unsigned qmax, uint8_t *r)
{
    const __m256 vinv = _mm256_set1_ps(inv), vzp = _mm256_set1_ps(zp);
    const __m256 vlo = _mm256_setzero_ps(), vhi = _mm256_set1_ps((float)qmax);
    const __m256i vizp = _mm256_set1_epi32((int)zp), vmask = _mm256_set1_epi32((int)qmax);
    const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256i q[4];
        for (int k = 0; k < 4; k++) {
            __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + i + 8 * k), vinv);
            v = _mm256_add_ps(v, vzp);
            v = _mm256_min_ps(_mm256_max_ps(v, vlo), vhi);
            __m256i qi = _mm256_cvtps_epi32(v);
            q[k] = _mm256_and_si256(_mm256_sub_epi32(qi, vizp), vmask);
        }
        __m256i p01 = _mm256_packus_epi32(q[0], q[1]);
        __m256i p23 = _mm256_packus_epi32(q[2], q[3]);
        __m256i b = _mm256_permutevar8x32_epi32(_mm256_packus_epi16(p01, p23), perm);
        _mm256_storeu_si256((__m256i *)(void *)(r + i), b);
    }
    tdm_codec_quantize_c(x + i, n - i, inv, zp, qmax, r + i);
}

static void dequantize_avx2(const uint8_t *r, size_t n, unsigned zp, unsigned qmax, float scale,
                            float *x)
{
    const __m256i vzp = _mm256_set1_epi32((int)zp), vmask = _mm256_set1_epi32((int)qmax);
    const __m256 vs = _mm256_set1_ps(scale);
    const __m256 vmax = _mm256_set1_ps(FLT_MAX), vmin = _mm256_set1_ps(-FLT_MAX);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(r + i));
        __m256i q0 = _mm256_cvtepu8_epi32(b);
        __m256i q1 = _mm256_cvtepu8_epi32(_mm_srli_si128(b, 8));
        q0 = _mm256_sub_epi32(_mm256_and_si256(_mm256_add_epi32(q0, vzp), vmask), vzp);
        q1 = _mm256_sub_epi32(_mm256_and_si256(_mm256_add_epi32(q1, vzp), vmask), vzp);
        __m256 f0 = _mm256_mul_ps(_mm256_cvtepi32_ps(q0), vs);
        __m256 f1 = _mm256_mul_ps(_mm256_cvtepi32_ps(q1), vs);
        _mm256_storeu_ps(x + i, _mm256_max_ps(_mm256_min_ps(f0, vmax), vmin));
        _mm256_storeu_ps(x + i + 8, _mm256_max_ps(_mm256_min_ps(f1, vmax), vmin));
    }
    tdm_codec_dequantize_c(r + i, n - i, zp, qmax, scale, x + i);
}

static void to_f16_avx2(const float *x, size_t n, uint16_t *h)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i v = _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT);
        _mm_storeu_si128((__m128i *)(void *)(h + i), v);
    }
    tdm_codec_to_f16_c(x + i, n - i, h + i);
}

static void from_f16_avx2(const uint16_t *h, size_t n, float *x)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(h + i));
        _mm256_storeu_ps(x + i, _mm256_cvtph_ps(v));
    }
    tdm_codec_from_f16_c(h + i, n - i, x + i);
}

void tdm_codec_kernels_avx2_fill(tdm_codec_kernels *k)
{
    k->quantize = quantize_avx2;
    k->dequantize = dequantize_avx2;
    k->to_f16 = to_f16_avx2;
    k->from_f16 = from_f16_avx2;
}

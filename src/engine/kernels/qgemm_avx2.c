/*
 * AVX2 int8 tile kernel: 4 rows x one 16-channel panel at a time.
 *
 * maddubs multiplies the u8 activations by the s8 weights and adds adjacent
 * pairs into int16 (saturating; the 7-bit activation codes keep every pair
 * sum within 127 * 127 * 2 = 32258, see qgemm.h), madd by ones adds the two
 * int16 pairs into the int32 lane of their channel. The 4 activation bytes
 * of a k group are broadcast to every lane. 8 accumulators (4 rows x 2 ymm)
 * leave registers for the two weight vectors, the broadcast and the ones.
 * Rows past mr repeat row 0 and are not stored, so the loop has no tail.
 */
#include <immintrin.h>
#include <string.h>

#include "engine/kernels/qgemm.h"
#include "engine/kernels/qgemm_internal.h"

static inline __m256i bcast4(const uint8_t *p)
{
    int32_t v;
    memcpy(&v, p, sizeof v);
    return _mm256_set1_epi32(v);
}

static inline __m256i dot4(__m256i acc, __m256i a, __m256i w, __m256i ones)
{
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(a, w), ones));
}

void tdm_qgemm_tile_avx2(const uint8_t *a, int64_t lda, int mr, const int8_t *w, int np, int64_t kp,
                         int32_t *acc)
{
    const __m256i ones = _mm256_set1_epi16(1);
    const uint8_t *a0 = a, *a1 = a + (mr > 1 ? lda : 0), *a2 = a + (mr > 2 ? 2 * lda : 0),
                  *a3 = a + (mr > 3 ? 3 * lda : 0);
    for (int p = 0; p < np; p++) {
        const int8_t *wp = w + (int64_t)p * kp * TDM_QGEMM_NR;
        __m256i c00 = _mm256_setzero_si256(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
                c30 = c00, c31 = c00;
        for (int64_t g = 0; g < kp; g += TDM_QGEMM_KG) {
            const int8_t *wg = wp + g * TDM_QGEMM_NR;
            __m256i w0 = _mm256_loadu_si256((const __m256i *)wg);
            __m256i w1 = _mm256_loadu_si256((const __m256i *)(wg + 32));
            __m256i v = bcast4(a0 + g);
            c00 = dot4(c00, v, w0, ones);
            c01 = dot4(c01, v, w1, ones);
            v = bcast4(a1 + g);
            c10 = dot4(c10, v, w0, ones);
            c11 = dot4(c11, v, w1, ones);
            v = bcast4(a2 + g);
            c20 = dot4(c20, v, w0, ones);
            c21 = dot4(c21, v, w1, ones);
            v = bcast4(a3 + g);
            c30 = dot4(c30, v, w0, ones);
            c31 = dot4(c31, v, w1, ones);
        }
        __m256i r[4][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}};
        for (int i = 0; i < mr; i++) {
            int32_t *dst = acc + i * 2 * TDM_QGEMM_NR + p * TDM_QGEMM_NR;
            _mm256_storeu_si256((__m256i *)dst, r[i][0]);
            _mm256_storeu_si256((__m256i *)(dst + 8), r[i][1]);
        }
    }
}

/*
 * The row quantiser, 8 lanes at a time, with the portable one's exact
 * operations (qgemm.c): min/max including 0 (min_ps/max_ps keep the
 * accumulator on NaN, as the portable comparisons do), then a * inv + z
 * without FMA, max with 0 (NaN becomes 0), min with 127, + 0.5, truncate.
 */
void tdm_qgemm_quantize_row_avx2(const float *a, int64_t K, uint8_t *q, float *scale, int32_t *zp)
{
    __m256 vmn = _mm256_setzero_ps(), vmx = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k + 8 <= K; k += 8) {
        __m256 x = _mm256_loadu_ps(a + k);
        vmn = _mm256_min_ps(x, vmn);
        vmx = _mm256_max_ps(x, vmx);
    }
    float lo[8], hi[8];
    _mm256_storeu_ps(lo, vmn);
    _mm256_storeu_ps(hi, vmx);
    float mn = 0.f, mx = 0.f;
    for (int i = 0; i < 8; i++) {
        mn = lo[i] < mn ? lo[i] : mn;
        mx = hi[i] > mx ? hi[i] : mx;
    }
    for (; k < K; k++) {
        mn = a[k] < mn ? a[k] : mn;
        mx = a[k] > mx ? a[k] : mx;
    }
    int64_t kp = tdm_qgemm_kp(K);
    if (!tdm_qgemm_row_params(mn, mx, scale, zp)) {
        memset(q, 0, (size_t)kp);
        return;
    }
    const float inv = 1.f / *scale, zf = (float)*zp;
    const __m256 vinv = _mm256_set1_ps(inv), vz = _mm256_set1_ps(zf), zero = _mm256_setzero_ps(),
                 top = _mm256_set1_ps((float)TDM_QGEMM_QMAX), half = _mm256_set1_ps(0.5f);
    k = 0;
    for (; k + 32 <= K; k += 32) {
        __m256i c[4];
        for (int j = 0; j < 4; j++) {
            __m256 v = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(a + k + 8 * j), vinv), vz);
            v = _mm256_min_ps(_mm256_max_ps(v, zero), top);
            c[j] = _mm256_cvttps_epi32(_mm256_add_ps(v, half));
        }
        /* 4 x 8 int32 -> 32 bytes; packs work per 128-bit lane, the permute restores order */
        __m256i w01 = _mm256_packs_epi32(c[0], c[1]), w23 = _mm256_packs_epi32(c[2], c[3]);
        __m256i b = _mm256_packus_epi16(w01, w23);
        b = _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)(q + k), b);
    }
    for (; k < K; k++) {
        float v = a[k] * inv + zf;
        v = v > 0.f ? v : 0.f;
        v = v < (float)TDM_QGEMM_QMAX ? v : (float)TDM_QGEMM_QMAX;
        q[k] = (uint8_t)(int32_t)(v + 0.5f);
    }
    for (; k < kp; k++)
        q[k] = 0;
}

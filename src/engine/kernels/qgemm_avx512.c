/*
 * AVX-512 int8 tile kernels: 4 rows x two 16-channel panels.
 *
 * One zmm holds a whole k group of a panel (16 channels x 4 k), so a tile is
 * 8 accumulators, 2 weight loads and 4 broadcasts per k group. With VNNI,
 * dpbusd does the u8 x s8 4-way dot product into int32 in one instruction;
 * without it (AVX-512BW), maddubs + madd by ones does the same in two, exact
 * because the activation codes are 7-bit (qgemm.h). Rows past mr repeat row
 * 0 and are not stored. Only intrinsics here: this file is compiled with
 * -mavx512vnni, and the BW kernel must not contain VNNI instructions.
 */
#include <immintrin.h>
#include <string.h>

#include "engine/kernels/qgemm.h"
#include "engine/kernels/qgemm_internal.h"

static inline __m512i bcast4(const uint8_t *p)
{
    int32_t v;
    memcpy(&v, p, sizeof v);
    return _mm512_set1_epi32(v);
}

static inline __m512i dot4_bw(__m512i acc, __m512i a, __m512i w, __m512i ones)
{
    return _mm512_add_epi32(acc, _mm512_madd_epi16(_mm512_maddubs_epi16(a, w), ones));
}

#define DOT4_VNNI(acc, a, w, ones) _mm512_dpbusd_epi32((acc), (a), (w))
#define DOT4_BW(acc, a, w, ones) dot4_bw((acc), (a), (w), (ones))

/* The shared body; DOT is one of the two macros above. */
#define TILE_BODY(DOT)                                                                         \
    const __m512i ones = _mm512_set1_epi16(1);                                                 \
    (void)ones;                                                                                \
    const uint8_t *a0 = a, *a1 = a + (mr > 1 ? lda : 0), *a2 = a + (mr > 2 ? 2 * lda : 0),     \
                  *a3 = a + (mr > 3 ? 3 * lda : 0);                                            \
    const int64_t pstride = kp * TDM_QGEMM_NR;                                                 \
    if (np == 2) {                                                                             \
        __m512i c00 = _mm512_setzero_si512(), c01 = c00, c10 = c00, c11 = c00, c20 = c00,      \
                c21 = c00, c30 = c00, c31 = c00;                                               \
        for (int64_t g = 0; g < kp; g += TDM_QGEMM_KG) {                                       \
            const int8_t *wg = w + g * TDM_QGEMM_NR;                                           \
            __m512i w0 = _mm512_loadu_si512((const void *)wg);                                 \
            __m512i w1 = _mm512_loadu_si512((const void *)(wg + pstride));                     \
            __m512i v = bcast4(a0 + g);                                                        \
            c00 = DOT(c00, v, w0, ones);                                                       \
            c01 = DOT(c01, v, w1, ones);                                                       \
            v = bcast4(a1 + g);                                                                \
            c10 = DOT(c10, v, w0, ones);                                                       \
            c11 = DOT(c11, v, w1, ones);                                                       \
            v = bcast4(a2 + g);                                                                \
            c20 = DOT(c20, v, w0, ones);                                                       \
            c21 = DOT(c21, v, w1, ones);                                                       \
            v = bcast4(a3 + g);                                                                \
            c30 = DOT(c30, v, w0, ones);                                                       \
            c31 = DOT(c31, v, w1, ones);                                                       \
        }                                                                                      \
        __m512i r[4][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}};                    \
        for (int i = 0; i < mr; i++) {                                                         \
            _mm512_storeu_si512((void *)(acc + i * 2 * TDM_QGEMM_NR), r[i][0]);                \
            _mm512_storeu_si512((void *)(acc + i * 2 * TDM_QGEMM_NR + TDM_QGEMM_NR), r[i][1]); \
        }                                                                                      \
    } else {                                                                                   \
        __m512i c0 = _mm512_setzero_si512(), c1 = c0, c2 = c0, c3 = c0;                        \
        for (int64_t g = 0; g < kp; g += TDM_QGEMM_KG) {                                       \
            __m512i w0 = _mm512_loadu_si512((const void *)(w + g * TDM_QGEMM_NR));             \
            c0 = DOT(c0, bcast4(a0 + g), w0, ones);                                            \
            c1 = DOT(c1, bcast4(a1 + g), w0, ones);                                            \
            c2 = DOT(c2, bcast4(a2 + g), w0, ones);                                            \
            c3 = DOT(c3, bcast4(a3 + g), w0, ones);                                            \
        }                                                                                      \
        __m512i r[4] = {c0, c1, c2, c3};                                                       \
        for (int i = 0; i < mr; i++)                                                           \
            _mm512_storeu_si512((void *)(acc + i * 2 * TDM_QGEMM_NR), r[i]);                   \
    }

void tdm_qgemm_tile_avx512(const uint8_t *a, int64_t lda, int mr, const int8_t *w, int np,
                           int64_t kp, int32_t *acc)
{
    TILE_BODY(DOT4_BW)
}

void tdm_qgemm_tile_avx512_vnni(const uint8_t *a, int64_t lda, int mr, const int8_t *w, int np,
                                int64_t kp, int32_t *acc)
{
    TILE_BODY(DOT4_VNNI)
}

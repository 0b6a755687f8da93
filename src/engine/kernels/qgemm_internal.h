/*
 * What an int8 kernel family provides to the driver in qgemm.c.
 *
 * A tile kernel computes exact int32 dot products for up to 4 rows of
 * quantised activations against one or two packed 16-channel panels:
 *   acc[i * 32 + j] = sum_k a[i * lda + k] * w(k, panel0 * 16 + j),  j < 16 * np
 * a holds kp bytes per row (zero padded), w points at the first panel; the
 * second panel, when np == 2, follows it (kp * 16 bytes later).
 */
#ifndef TANDEM_KERNELS_QGEMM_INTERNAL_H
#define TANDEM_KERNELS_QGEMM_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#define TDM_QGEMM_MR 4

typedef void (*tdm_qgemm_tile_fn)(const uint8_t *a, int64_t lda, int mr, const int8_t *w, int np,
                                  int64_t kp, int32_t *acc);

/* A row quantiser: tdm_qgemm_quantize_row's contract, identical codes. */
typedef void (*tdm_qgemm_quant_fn)(const float *a, int64_t K, uint8_t *q, float *scale,
                                   int32_t *zp);

/* Scale and zero point from a row's min and max (both including 0); false
 * when the row quantises to all zero codes (scale 0). */
bool tdm_qgemm_row_params(float mn, float mx, float *scale, int32_t *zp);

#if defined(TDM_X86)
void tdm_qgemm_quantize_row_avx2(const float *a, int64_t K, uint8_t *q, float *scale, int32_t *zp);
void tdm_qgemm_tile_avx2(const uint8_t *a, int64_t lda, int mr, const int8_t *w, int np, int64_t kp,
                         int32_t *acc);
void tdm_qgemm_tile_avx512(const uint8_t *a, int64_t lda, int mr, const int8_t *w, int np,
                           int64_t kp, int32_t *acc);
void tdm_qgemm_tile_avx512_vnni(const uint8_t *a, int64_t lda, int mr, const int8_t *w, int np,
                                int64_t kp, int32_t *acc);
#endif

#endif

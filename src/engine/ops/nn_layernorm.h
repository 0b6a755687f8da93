/*
 * LayerNormalization row kernels, one per instruction set (nn_layernorm.c
 * picks one at run time). Each normalises `rows` contiguous rows of n floats:
 *
 *   y = (x - mean) / sqrt(var + eps) * scale + bias   (bias may be NULL)
 *
 * with the mean and the variance computed in two passes over the row (the
 * centred form, which does not cancel when |mean| >> stddev), and stores
 * mean and 1/sqrt(var + eps) per row when those pointers are not NULL.
 */
#ifndef TANDEM_OPS_NN_LAYERNORM_H
#define TANDEM_OPS_NN_LAYERNORM_H

#include <stdint.h>

typedef void (*tdm_ln_rows_fn)(const float *x, float *y, int64_t rows, int64_t n,
                               const float *scale, const float *bias, float eps, float *mean,
                               float *inv_std);

void tdm_ln_rows_portable(const float *x, float *y, int64_t rows, int64_t n, const float *scale,
                          const float *bias, float eps, float *mean, float *inv_std);
#if defined(TDM_X86)
void tdm_ln_rows_avx2(const float *x, float *y, int64_t rows, int64_t n, const float *scale,
                      const float *bias, float eps, float *mean, float *inv_std);
void tdm_ln_rows_avx512(const float *x, float *y, int64_t rows, int64_t n, const float *scale,
                        const float *bias, float eps, float *mean, float *inv_std);
#endif

/* The kernel for level 0 portable, 1 AVX2, 2 AVX-512; NULL when unavailable. -1: best. */
tdm_ln_rows_fn tdm_ln_rows_get(int level);

#endif

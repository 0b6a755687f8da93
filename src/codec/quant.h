/*
 * The codec's inner loops: affine quantisation, dequantisation, float16
 * conversion and byte planes.
 *
 * They sit behind a small table of function pointers chosen once per call
 * from the CPU's features (base/cpu.h), with a portable C version that is
 * also the reference: the AVX2 versions round the same way (nearest even,
 * multiply then add, no fused multiply-add) so a frame does not depend on
 * which machine encoded it, and the tests compare the two paths bit for bit.
 *
 * Symbols are offsets from the zero point wrapped to the alphabet,
 * r = (q - zp) mod (qmax + 1), so that zero is symbol 0 in every channel and
 * the entropy coder sees one distribution instead of one per zero point.
 */
#ifndef TANDEM_CODEC_QUANT_H
#define TANDEM_CODEC_QUANT_H

#include <float.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tdm_codec_kernels {
    /* r[i] = (rne(clamp(x[i] * inv + zp, 0, qmax)) - zp) & qmax; qmax is 15 or 255. */
    void (*quantize)(const float *x, size_t n, float inv, float zp, unsigned qmax, uint8_t *r);
    /* x[i] = (float)(((r[i] + zp) & qmax) - zp) * scale, saturated to +-FLT_MAX */
    void (*dequantize)(const uint8_t *r, size_t n, unsigned zp, unsigned qmax, float scale,
                       float *x);
    void (*to_f16)(const float *x, size_t n, uint16_t *h);
    void (*from_f16)(const uint16_t *h, size_t n, float *x);
} tdm_codec_kernels;

/* The fastest kernels for this CPU (honours TDM_CPU=portable). */
void tdm_codec_kernels_select(tdm_codec_kernels *k);
void tdm_codec_kernels_portable(tdm_codec_kernels *k);
/* Fills k with the AVX2 kernels; false (k untouched) when unavailable. */
bool tdm_codec_kernels_avx2(tdm_codec_kernels *k);
/* Defined in quant_avx2.c (x86 builds only). */
void tdm_codec_kernels_avx2_fill(tdm_codec_kernels *k);

/* The portable kernels, also used for the tails of the SIMD ones. */
void tdm_codec_quantize_c(const float *x, size_t n, float inv, float zp, unsigned qmax, uint8_t *r);
void tdm_codec_dequantize_c(const uint8_t *r, size_t n, unsigned zp, unsigned qmax, float scale,
                            float *x);
void tdm_codec_to_f16_c(const float *x, size_t n, uint16_t *h);
void tdm_codec_from_f16_c(const uint16_t *h, size_t n, float *x);

/* One value, as the kernels do it (for sparse and strided paths). */
static inline uint8_t tdm_codec_quantize1(float x, float inv, float zp, unsigned qmax)
{
    float v = x * inv;
    v = v + zp;
    v = v > 0.0f ? v : 0.0f;
    v = v < (float)qmax ? v : (float)qmax;
    int q = (int)((v + 12582912.0f) - 12582912.0f); /* 1.5 * 2^23: round to nearest even */
    return (uint8_t)((unsigned)(q - (int)zp) & qmax);
}

static inline float tdm_codec_dequantize1(uint8_t r, unsigned zp, unsigned qmax, float scale)
{
    float v = (float)((int)((r + zp) & qmax) - (int)zp) * scale;
    v = v < FLT_MAX ? v : FLT_MAX; /* a grid spanning all floats has an end just past them */
    return v > -FLT_MAX ? v : -FLT_MAX;
}

/* Byte planes: plane k holds byte k (little-endian) of every word. */
void tdm_codec_split32(const uint32_t *v, size_t n, uint8_t *planes);
void tdm_codec_merge32(const uint8_t *planes, size_t n, uint32_t *v);
void tdm_codec_split16(const uint16_t *v, size_t n, uint8_t *planes);
void tdm_codec_merge16(const uint8_t *planes, size_t n, uint16_t *v);

#endif

/*
 * Portable codec kernels and run-time selection (see quant.h).
 *
 * The loops are written so that compilers vectorise them at -O3 with the
 * baseline instruction set; the rounding trick (adding and subtracting
 * 1.5 * 2^23) gives round-to-nearest-even on values already clamped to
 * [0, qmax] without a call to lrintf, and matches cvtps2dq exactly.
 */
#include "codec/quant.h"

#include "base/cpu.h"
#include "tandem/tensor.h"

void tdm_codec_quantize_c(const float *x, size_t n, float inv, float zp, unsigned qmax, uint8_t *r)
{
    for (size_t i = 0; i < n; i++)
        r[i] = tdm_codec_quantize1(x[i], inv, zp, qmax);
}

void tdm_codec_dequantize_c(const uint8_t *r, size_t n, unsigned zp, unsigned qmax, float scale,
                            float *x)
{
    for (size_t i = 0; i < n; i++)
        x[i] = tdm_codec_dequantize1(r[i], zp, qmax, scale);
}

void tdm_codec_to_f16_c(const float *x, size_t n, uint16_t *h)
{
    for (size_t i = 0; i < n; i++)
        h[i] = tdm_fp32_to_fp16(x[i]);
}

void tdm_codec_from_f16_c(const uint16_t *h, size_t n, float *x)
{
    for (size_t i = 0; i < n; i++)
        x[i] = tdm_fp16_to_fp32(h[i]);
}

void tdm_codec_kernels_portable(tdm_codec_kernels *k)
{
    k->quantize = tdm_codec_quantize_c;
    k->dequantize = tdm_codec_dequantize_c;
    k->to_f16 = tdm_codec_to_f16_c;
    k->from_f16 = tdm_codec_from_f16_c;
}

bool tdm_codec_kernels_avx2(tdm_codec_kernels *k)
{
#ifdef TDM_X86
    if (!tdm_cpu_get()->avx2_fma)
        return false;
    tdm_codec_kernels_avx2_fill(k);
    return true;
#else
    (void)k;
    return false;
#endif
}

void tdm_codec_kernels_select(tdm_codec_kernels *k)
{
    if (!tdm_codec_kernels_avx2(k))
        tdm_codec_kernels_portable(k);
}

void tdm_codec_split32(const uint32_t *v, size_t n, uint8_t *planes)
{
    uint8_t *p0 = planes, *p1 = planes + n, *p2 = planes + 2 * n, *p3 = planes + 3 * n;
    for (size_t i = 0; i < n; i++) {
        uint32_t w = v[i];
        p0[i] = (uint8_t)w;
        p1[i] = (uint8_t)(w >> 8);
        p2[i] = (uint8_t)(w >> 16);
        p3[i] = (uint8_t)(w >> 24);
    }
}

void tdm_codec_merge32(const uint8_t *planes, size_t n, uint32_t *v)
{
    const uint8_t *p0 = planes, *p1 = planes + n, *p2 = planes + 2 * n, *p3 = planes + 3 * n;
    for (size_t i = 0; i < n; i++)
        v[i] =
            (uint32_t)p0[i] | (uint32_t)p1[i] << 8 | (uint32_t)p2[i] << 16 | (uint32_t)p3[i] << 24;
}

void tdm_codec_split16(const uint16_t *v, size_t n, uint8_t *planes)
{
    uint8_t *p0 = planes, *p1 = planes + n;
    for (size_t i = 0; i < n; i++) {
        p0[i] = (uint8_t)v[i];
        p1[i] = (uint8_t)(v[i] >> 8);
    }
}

void tdm_codec_merge16(const uint8_t *planes, size_t n, uint16_t *v)
{
    const uint8_t *p0 = planes, *p1 = planes + n;
    for (size_t i = 0; i < n; i++)
        v[i] = (uint16_t)(p0[i] | p1[i] << 8);
}

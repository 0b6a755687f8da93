/*
 * Depthwise convolution of one plane: portable kernel and dispatch
 * (see nn_dwconv.h for the padded, phase-split input layout).
 *
 * The portable kernel keeps eight outputs in a small accumulator array
 * across all kernel taps, a shape compilers map onto vector registers on
 * their own, so the baseline SSE2 (or NEON) build gets SIMD too; the
 * AVX2/AVX-512 kernels do the same with 16 or 32 outputs and explicit
 * intrinsics. Very large kernels (over 64 taps) sweep the row once per tap.
 */
#include "engine/ops/nn_dwconv.h"

#include "base/cpu.h"

#define DW_MAX_TAPS 64

/* Kernels with more taps than DW_MAX_TAPS: one sweep of the row per tap. */
static void plane_sweep(const tdm_dw_plane *p)
{
    for (int64_t oy = 0; oy < p->hout; oy++) {
        float *restrict o = p->out + oy * p->out_row;
        for (int64_t ox = 0; ox < p->wout; ox++)
            o[ox] = p->bias;
        for (int64_t ki = 0; ki < p->kh; ki++) {
            const float *row = p->in + (oy * p->sh + ki * p->dh) * p->in_row;
            for (int64_t kj = 0; kj < p->kw; kj++) {
                int64_t off = kj * p->dw;
                const float *restrict src = row + (off % p->sw) * p->phase + off / p->sw;
                float w = p->w[ki * p->kw + kj];
                for (int64_t ox = 0; ox < p->wout; ox++)
                    o[ox] += w * src[ox];
            }
        }
        tdm_act_apply(o, p->wout, p->act, p->alpha, p->beta);
    }
}

void tdm_dw_plane_portable(const tdm_dw_plane *p)
{
    int64_t ntaps = p->kh * p->kw;
    if (ntaps > DW_MAX_TAPS) {
        plane_sweep(p);
        return;
    }
    int64_t offs[DW_MAX_TAPS];
    for (int64_t ki = 0; ki < p->kh; ki++)
        for (int64_t kj = 0; kj < p->kw; kj++) {
            int64_t off = kj * p->dw;
            offs[ki * p->kw + kj] = ki * p->dh * p->in_row + (off % p->sw) * p->phase + off / p->sw;
        }
    for (int64_t oy = 0; oy < p->hout; oy++) {
        const float *base = p->in + oy * p->sh * p->in_row;
        float *o = p->out + oy * p->out_row;
        int64_t ox = 0;
        /* Eight outputs stay in an accumulator array across all taps: the
         * shape compilers turn into vector registers (SSE2, NEON). */
        for (; ox + 8 <= p->wout; ox += 8) {
            float acc[8];
            for (int k = 0; k < 8; k++)
                acc[k] = p->bias;
            for (int64_t t = 0; t < ntaps; t++) {
                const float *s = base + offs[t] + ox;
                float w = p->w[t];
                for (int k = 0; k < 8; k++)
                    acc[k] += w * s[k];
            }
            for (int k = 0; k < 8; k++)
                o[ox + k] = acc[k];
        }
        for (; ox < p->wout; ox++) {
            float acc = p->bias;
            for (int64_t t = 0; t < ntaps; t++)
                acc += p->w[t] * base[offs[t] + ox];
            o[ox] = acc;
        }
        tdm_act_apply(o, p->wout, p->act, p->alpha, p->beta);
    }
}

tdm_dw_plane_fn tdm_dw_plane_select(void)
{
#if defined(TDM_X86)
    const tdm_cpu *cpu = tdm_cpu_get();
    if (cpu->avx512)
        return tdm_dw_plane_avx512;
    if (cpu->avx2_fma)
        return tdm_dw_plane_avx2;
#endif
    return tdm_dw_plane_portable;
}

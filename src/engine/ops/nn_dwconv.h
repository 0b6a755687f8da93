/*
 * Direct depthwise convolution of one 2-D plane (one output channel of one
 * image), in portable C, AVX2 and AVX-512 flavours chosen at run time.
 *
 * A depthwise conv does ~2*k*k flops per output, far too few for im2col +
 * GEMM to pay off, so it runs directly. To keep the inner loop a plain
 * vector multiply-add with no bounds tests, the caller first copies the input
 * plane into a zero-padded buffer and, for stride s > 1, splits each padded
 * row into s phases (phase q holds columns q, q+s, q+2s, ...). Then output
 * column ox of kernel tap (ki, kj) reads
 *
 *   row (oy*sh + ki*dh), phase (kj*dw) % sw, element ox + (kj*dw) / sw
 *
 * which is contiguous in ox for every stride and dilation. Without padding
 * and with unit stride along W the caller skips the copy and passes the
 * input plane itself.
 */
#ifndef TANDEM_OPS_NN_DWCONV_H
#define TANDEM_OPS_NN_DWCONV_H

#include <stdint.h>

#include "engine/kernels/gemm.h"

typedef struct tdm_dw_plane {
    const float *in; /* padded, phase-split input plane */
    int64_t in_row;  /* floats from one padded row to the next */
    int64_t phase;   /* floats from one phase of a row to the next */
    int64_t sh, sw, dh, dw, kh, kw;
    const float *w; /* kh*kw taps, row-major */
    float bias;
    float *out;      /* hout rows of wout outputs */
    int64_t out_row; /* floats from one output row to the next (>= wout) */
    int64_t hout, wout;
    tdm_act act;
    float alpha, beta;
} tdm_dw_plane;

void tdm_dw_plane_portable(const tdm_dw_plane *p);
/* Built on x86 only (TDM_X86 inside the library; tests test the compiler's macro). */
#if defined(TDM_X86) || defined(__x86_64__) || defined(__i386__)
void tdm_dw_plane_avx2(const tdm_dw_plane *p);
void tdm_dw_plane_avx512(const tdm_dw_plane *p);
#endif

/* The best kernel for this CPU (honours TDM_CPU). */
typedef void (*tdm_dw_plane_fn)(const tdm_dw_plane *p);
tdm_dw_plane_fn tdm_dw_plane_select(void);

#endif

/*
 * Window geometry shared by Conv, ConvTranspose and the pooling ops.
 *
 * ONNX gives these ops 1, 2 or 3 spatial axes. Rather than writing every
 * kernel three times, the geometry is normalised to three axes (D, H, W):
 * a 2-D op gets a leading axis of size 1 with kernel 1, stride 1, dilation 1
 * and no padding, a 1-D op two of them. Kernels then have one code path
 * whose innermost loop runs along W, which is where the data is contiguous
 * and where the fast paths live; the extra outer loops of length 1 cost
 * nothing measurable.
 *
 * Attributes come from files, so every value is range-checked here (with a
 * message naming the attribute) before any kernel does arithmetic with it;
 * after tdm_spatial_forward succeeds, all products used by the kernels fit
 * comfortably in int64_t.
 */
#ifndef TANDEM_OPS_NN_SPATIAL_H
#define TANDEM_OPS_NN_SPATIAL_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/kernels/gemm.h"
#include "engine/op.h"

#define TDM_SP_AXES 3

/* Largest stride, dilation, kernel or pad accepted: far beyond any real model,
 * small enough that products of two of them cannot overflow int64_t. */
#define TDM_SP_ATTR_MAX ((int64_t)1 << 30)

typedef enum tdm_autopad {
    TDM_AUTOPAD_NOTSET = 0,
    TDM_AUTOPAD_SAME_UPPER,
    TDM_AUTOPAD_SAME_LOWER,
    TDM_AUTOPAD_VALID,
} tdm_autopad;

/* Axis 0 is D, 1 is H, 2 is W; unused leading axes are trivial. A dim of -1
 * (in or out) means unknown at plan time. */
typedef struct tdm_spatial {
    int nsp; /* the op's own spatial rank, 1..3 */
    int64_t in[TDM_SP_AXES], out[TDM_SP_AXES];
    int64_t k[TDM_SP_AXES], s[TDM_SP_AXES], d[TDM_SP_AXES];
    int64_t pb[TDM_SP_AXES], pe[TDM_SP_AXES]; /* padding before / after; pe may be
                                                 negative for ConvTranspose */
    tdm_autopad autopad;
} tdm_spatial;

/*
 * Reads strides, dilations, pads and auto_pad of ctx->node for nsp axes and
 * stores them, with the kernel (nsp values), into g; the op's in/out are -1
 * (unknown) until tdm_spatial_forward, the leading trivial axes' are 1.
 * Checks counts and ranges and fails with a message naming the attribute.
 */
tdm_status tdm_spatial_read(tdm_op_ctx *ctx, int nsp, const int64_t *kernel, tdm_spatial *g);

/*
 * Output size of a sliding-window op (Conv, pooling) for the input spatial
 * dims in[nsp]; resolves auto_pad into pb/pe. ceil_mode rounds up as the
 * pooling ops define it (a last window starting past the input and its
 * leading padding is dropped). Fails when an output axis would be empty.
 */
tdm_status tdm_spatial_forward(tdm_op_ctx *ctx, tdm_spatial *g, const int64_t *in, bool ceil_mode);

/* dims = [n, c, out spatial...] of a sliding-window op's output; returns the rank. */
int tdm_spatial_out_dims(const tdm_spatial *g, int64_t n, int64_t c, int64_t *dims);

/* *vol = v[0] * v[1] * v[2] (a kernel or a spatial size); false when it overflows. */
bool tdm_spatial_volume(const int64_t v[TDM_SP_AXES], int64_t *vol);

/* Floor and ceiling of a / b for b > 0 and any sign of a. */
static inline int64_t tdm_sp_floor_div(int64_t a, int64_t b)
{
    return a >= 0 ? a / b : -((-a + b - 1) / b);
}

static inline int64_t tdm_sp_ceil_div(int64_t a, int64_t b)
{
    return a >= 0 ? (a + b - 1) / b : -(-a / b);
}

/*
 * The positions p in [0, n) with 0 <= p * s + shift < bound form one range
 * [*lo, *hi) (empty when *lo >= *hi). With p an output position and shift =
 * tap * dilation - pad_begin this is where a kernel tap reads inside the
 * input; kernels use it to split a row into padding and interior once
 * instead of testing every element.
 */
static inline void tdm_sp_range(int64_t n, int64_t bound, int64_t s, int64_t shift, int64_t *lo,
                                int64_t *hi)
{
    int64_t l = tdm_sp_ceil_div(-shift, s);
    int64_t h = tdm_sp_floor_div(bound - 1 - shift, s) + 1;
    *lo = l < 0 ? 0 : (l > n ? n : l);
    *hi = h > n ? n : (h < *lo ? *lo : h);
}

/*
 * Pads one input row of w floats with pb copies of `fill` in front (and as
 * many as needed behind) to sw * phase floats and splits it into sw phases
 * of `phase` floats: dst[q * phase + k] = padded[k * sw + q]. A window tap at
 * padded offset t then reads phase t % sw from element t / sw on, contiguous
 * in the output position whatever the stride, so the kernels' inner loops
 * are plain vector loads with no bounds tests.
 */
void tdm_sp_split_row(const float *src, int64_t w, int64_t pb, int64_t sw, int64_t phase,
                      float fill, float *dst);

/*
 * Reads the fused-activation attributes the fusion pass attaches
 * (tdm_activation, tdm_alpha, tdm_beta) with each activation's ONNX defaults.
 * TDM_ACT_NONE when absent.
 */
tdm_status tdm_nn_fused_act(tdm_op_ctx *ctx, tdm_act *act, float *alpha, float *beta);

/* Fails with TDM_ERR_UNSUPPORTED unless input i is float32 (what names it). */
tdm_status tdm_nn_require_f32(tdm_op_ctx *ctx, int i, const char *what);

/* Number of worker slots a tdm_pool_for on ctx->pool may use. */
int tdm_nn_threads(const tdm_op_ctx *ctx);

#endif

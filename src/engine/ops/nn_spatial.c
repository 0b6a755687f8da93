/*
 * Window geometry shared by Conv, ConvTranspose and pooling (see nn_spatial.h).
 *
 * All range checks on strides, dilations, pads and kernel sizes happen here,
 * once, so that kernels can do plain int64 arithmetic: every attribute is in
 * [0, 2^30] and every input dim below 2^40, hence sums and the products the
 * kernels form stay far from overflow.
 */
#include "engine/ops/nn_spatial.h"

#include <assert.h>
#include <math.h>
#include <string.h>

/* Input dims beyond this cannot be allocated anyway; bounding them keeps
 * in + pads and (out - 1) * stride + extent exact. */
#define SP_DIM_MAX ((int64_t)1 << 40)

static tdm_status read_axis_list(tdm_op_ctx *ctx, const char *name, int count, int64_t lo,
                                 int64_t *dst, int stride_dst)
{
    int64_t n = 0;
    const int64_t *v = tdm_attr_ints(ctx->node, name, &n);
    if (v == NULL || n == 0)
        return TDM_OK;
    if (n != count)
        return tdm_op_fail(ctx, TDM_ERR_SHAPE, "attribute %s has %lld values, expected %d", name,
                           (long long)n, count);
    for (int i = 0; i < count; i++) {
        if (v[i] < lo || v[i] > TDM_SP_ATTR_MAX)
            return tdm_op_fail(ctx, TDM_ERR_SHAPE, "attribute %s[%d] = %lld is out of range", name,
                               i, (long long)v[i]);
        dst[i * stride_dst] = v[i];
    }
    return TDM_OK;
}

tdm_status tdm_spatial_read(tdm_op_ctx *ctx, int nsp, const int64_t *kernel, tdm_spatial *g)
{
    assert(nsp >= 1 && nsp <= TDM_SP_AXES);
    memset(g, 0, sizeof *g);
    g->nsp = nsp;
    int off = TDM_SP_AXES - nsp;
    for (int a = 0; a < TDM_SP_AXES; a++) {
        g->in[a] = g->out[a] = a < off ? 1 : -1; /* leading axes are trivial */
        g->k[a] = g->s[a] = g->d[a] = 1;
    }
    for (int i = 0; i < nsp; i++) {
        if (kernel[i] < 1 || kernel[i] > TDM_SP_ATTR_MAX)
            return tdm_op_fail(ctx, TDM_ERR_SHAPE,
                               "kernel size %lld on spatial axis %d is out of range",
                               (long long)kernel[i], i);
        g->k[off + i] = kernel[i];
    }
    tdm_status s = read_axis_list(ctx, "strides", nsp, 1, &g->s[off], 1);
    if (s == TDM_OK)
        s = read_axis_list(ctx, "dilations", nsp, 1, &g->d[off], 1);
    if (s == TDM_OK) {
        int64_t pads[2 * TDM_SP_AXES] = {0};
        s = read_axis_list(ctx, "pads", 2 * nsp, 0, pads, 1);
        for (int i = 0; i < nsp; i++) {
            g->pb[off + i] = pads[i];
            g->pe[off + i] = pads[nsp + i];
        }
    }
    if (s != TDM_OK)
        return s;
    const char *ap = tdm_attr_str(ctx->node, "auto_pad", "NOTSET");
    if (strcmp(ap, "NOTSET") == 0 || ap[0] == '\0')
        g->autopad = TDM_AUTOPAD_NOTSET;
    else if (strcmp(ap, "SAME_UPPER") == 0)
        g->autopad = TDM_AUTOPAD_SAME_UPPER;
    else if (strcmp(ap, "SAME_LOWER") == 0)
        g->autopad = TDM_AUTOPAD_SAME_LOWER;
    else if (strcmp(ap, "VALID") == 0)
        g->autopad = TDM_AUTOPAD_VALID;
    else
        return tdm_op_fail(ctx, TDM_ERR_UNSUPPORTED,
                           "auto_pad '%s' is not one of NOTSET, "
                           "SAME_UPPER, SAME_LOWER, VALID",
                           ap);
    return TDM_OK;
}

tdm_status tdm_spatial_forward(tdm_op_ctx *ctx, tdm_spatial *g, const int64_t *in, bool ceil_mode)
{
    int off = TDM_SP_AXES - g->nsp;
    for (int i = 0; i < g->nsp; i++) {
        int a = off + i;
        g->in[a] = in[i];
        g->out[a] = -1;
        if (in[i] < 0)
            continue; /* unknown until run time */
        if (in[i] > SP_DIM_MAX)
            return tdm_op_fail(ctx, TDM_ERR_SHAPE, "spatial size %lld on axis %d is too large",
                               (long long)in[i], i);
        int64_t ext = (g->k[a] - 1) * g->d[a] + 1, st = g->s[a], out;
        switch (g->autopad) {
        case TDM_AUTOPAD_SAME_UPPER:
        case TDM_AUTOPAD_SAME_LOWER: {
            out = (in[i] + st - 1) / st;
            int64_t total = (out - 1) * st + ext - in[i];
            if (total < 0)
                total = 0;
            int64_t small = total / 2;
            g->pb[a] = g->autopad == TDM_AUTOPAD_SAME_UPPER ? small : total - small;
            g->pe[a] = total - g->pb[a];
            break;
        }
        case TDM_AUTOPAD_VALID:
            g->pb[a] = g->pe[a] = 0;
            out = in[i] >= ext ? (in[i] - ext) / st + 1 : 0;
            break;
        case TDM_AUTOPAD_NOTSET:
        default: {
            int64_t span = in[i] + g->pb[a] + g->pe[a];
            if (span < ext) {
                out = 0;
                break;
            }
            out = (span - ext) / st + 1;
            if (ceil_mode && (span - ext) % st != 0) {
                out++;
                /* A window may overhang the end padding, never start in it. */
                if ((out - 1) * st >= in[i] + g->pb[a])
                    out--;
            }
            break;
        }
        }
        if (out < 1)
            return tdm_op_fail(ctx, TDM_ERR_SHAPE,
                               "spatial axis %d: input size %lld with pads %lld+%lld is smaller "
                               "than the kernel extent %lld",
                               i, (long long)in[i], (long long)g->pb[a], (long long)g->pe[a],
                               (long long)ext);
        g->out[a] = out;
    }
    return TDM_OK;
}

/* Phase q of a padded row, elements [k0, k1): scalar, bounds-checked. */
static void split_edge(const float *src, int64_t w, int64_t pb, int64_t sw, int64_t q, float fill,
                       float *d, int64_t k0, int64_t k1)
{
    for (int64_t k = k0; k < k1; k++) {
        int64_t i = k * sw + q - pb;
        d[k] = i >= 0 && i < w ? src[i] : fill;
    }
}

void tdm_sp_split_row(const float *src, int64_t w, int64_t pb, int64_t sw, int64_t phase,
                      float fill, float *dst)
{
    if (sw == 1) {
        int64_t lo = pb < phase ? pb : phase, hi = pb + w < phase ? pb + w : phase;
        for (int64_t k = 0; k < lo; k++)
            dst[k] = fill;
        if (hi > lo)
            memcpy(dst + lo, src, sizeof *dst * (size_t)(hi - lo));
        else
            hi = lo;
        for (int64_t k = hi; k < phase; k++)
            dst[k] = fill;
        return;
    }
    if (sw == 2) {
        /* Where both phases read inside the row, one loop deinterleaves them
         * (compilers vectorise it with shuffles); the edges are scalar. */
        int64_t lo0, hi0, lo1, hi1;
        tdm_sp_range(phase, w, 2, -pb, &lo0, &hi0);
        tdm_sp_range(phase, w, 2, 1 - pb, &lo1, &hi1);
        int64_t lo = lo0 > lo1 ? lo0 : lo1, hi = hi0 < hi1 ? hi0 : hi1;
        if (hi < lo)
            hi = lo;
        float *restrict d0 = dst, *restrict d1 = dst + phase;
        const float *restrict s0 = src;
        for (int64_t k = lo; k < hi; k++) {
            d0[k] = s0[2 * k - pb];
            d1[k] = s0[2 * k + 1 - pb];
        }
        split_edge(src, w, pb, 2, 0, fill, d0, 0, lo);
        split_edge(src, w, pb, 2, 0, fill, d0, hi, phase);
        split_edge(src, w, pb, 2, 1, fill, d1, 0, lo);
        split_edge(src, w, pb, 2, 1, fill, d1, hi, phase);
        return;
    }
    for (int64_t q = 0; q < sw; q++) {
        int64_t lo, hi;
        float *d = dst + q * phase;
        tdm_sp_range(phase, w, sw, q - pb, &lo, &hi);
        split_edge(src, w, pb, sw, q, fill, d, 0, lo);
        for (int64_t k = lo; k < hi; k++)
            d[k] = src[k * sw + q - pb];
        split_edge(src, w, pb, sw, q, fill, d, hi, phase);
    }
}

tdm_status tdm_nn_fused_act(tdm_op_ctx *ctx, tdm_act *act, float *alpha, float *beta)
{
    const char *name = tdm_attr_str(ctx->node, "tdm_activation", NULL);
    *act = TDM_ACT_NONE;
    *alpha = 0.f;
    *beta = 0.f;
    if (name == NULL)
        return TDM_OK;
    if (!tdm_act_from_name(name, act))
        return tdm_op_fail(ctx, TDM_ERR_UNSUPPORTED, "unknown fused activation '%s'", name);
    float da = 0.f, db = 0.f;
    switch (*act) {
    case TDM_ACT_LEAKY_RELU: da = 0.01f; break;
    case TDM_ACT_CLIP:
        da = -INFINITY;
        db = INFINITY;
        break;
    case TDM_ACT_HARD_SIGMOID:
        da = 0.2f;
        db = 0.5f;
        break;
    default: break;
    }
    *alpha = tdm_attr_float(ctx->node, "tdm_alpha", da);
    *beta = tdm_attr_float(ctx->node, "tdm_beta", db);
    return TDM_OK;
}

tdm_status tdm_nn_require_f32(tdm_op_ctx *ctx, int i, const char *what)
{
    const tdm_tensor *t = ctx->in[i];
    if (t->dtype != TDM_DTYPE_FLOAT32)
        return tdm_op_fail(ctx, TDM_ERR_UNSUPPORTED, "%s has dtype %s; only float32 is supported",
                           what, tdm_dtype_name(t->dtype));
    return TDM_OK;
}

int tdm_nn_threads(const tdm_op_ctx *ctx)
{
    return ctx->pool != NULL ? tdm_pool_size(ctx->pool) : 1;
}

int tdm_spatial_out_dims(const tdm_spatial *g, int64_t n, int64_t c, int64_t *dims)
{
    dims[0] = n;
    dims[1] = c;
    for (int i = 0; i < g->nsp; i++)
        dims[2 + i] = g->out[TDM_SP_AXES - g->nsp + i];
    return g->nsp + 2;
}

bool tdm_spatial_volume(const int64_t v[TDM_SP_AXES], int64_t *vol)
{
    return !__builtin_mul_overflow(v[0], v[1], vol) && !__builtin_mul_overflow(*vol, v[2], vol);
}

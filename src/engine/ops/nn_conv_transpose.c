/*
 * ConvTranspose: float32, 1-D/2-D/3-D, groups, strides, dilations, pads,
 * output_padding, output_shape, auto_pad, optional bias and fused activation.
 *
 * A transposed convolution scatters each input pixel through the kernel, so
 * it is computed as GEMM + col2im: for one image and group,
 *
 *   col[Cout/group * kernel volume, pixels] = W_g^T * X_g[Cin/group, pixels]
 *
 * (W is stored [Cin, Cout/group, k...], so W_g^T is a transposed operand and
 * needs no copy), then every column entry is added into the output pixel it
 * lands on. As in Conv, input pixels are processed in tiles so the column
 * block stays around L2 size. Tiles of one (image, group) accumulate into the
 * same output, so they run in order; parallel work is either across
 * (image, group) pairs or, when there are too few of those, inside the GEMM
 * and across output channels in col2im (each channel's rows write only that
 * channel).
 *
 * Output size and padding follow the ONNX definition: explicit pads, or
 * output_shape / auto_pad deriving them from total_padding, where SAME_UPPER
 * puts the larger half at the end. A negative total (output_shape larger
 * than the natural size) becomes a negative end pad: extra zero outputs at
 * the high end, as onnxruntime produces.
 */
#include <assert.h>
#include <string.h>

#include "base/alloc.h"
#include "engine/kernels/gemm.h"
#include "engine/ops/nn_ops.h"
#include "engine/ops/nn_spatial.h"

#define CT_TILE_BYTES ((size_t)512 * 1024)

typedef struct ct_plan {
    tdm_spatial g;
    int64_t n, c, m, group, cg, mg;
    int64_t kvol, rows;      /* kernel volume; column rows mg * kvol */
    int64_t in_vol, out_vol; /* spatial volumes */
    tdm_act act;
    float alpha, beta;
} ct_plan;

/* Output size and pads of axis a (see the file comment). */
static tdm_status ct_axis(tdm_op_ctx *ctx, tdm_spatial *g, int a, int i, int64_t opad,
                          int64_t oshape)
{
    int64_t in = g->in[a], ext = (g->k[a] - 1) * g->d[a] + 1, full;
    if (in < 1 || in > ((int64_t)1 << 40) || __builtin_mul_overflow(g->s[a], in - 1, &full))
        return tdm_op_fail(ctx, TDM_ERR_SHAPE, "spatial size %lld on axis %d is out of range",
                           (long long)in, i);
    full += opad + ext;
    int64_t out;
    if (oshape >= 0 || g->autopad == TDM_AUTOPAD_SAME_UPPER ||
        g->autopad == TDM_AUTOPAD_SAME_LOWER) {
        out = oshape >= 0 ? oshape : in * g->s[a];
        int64_t total = full - out;
        if (total < 0) {
            g->pb[a] = 0;
            g->pe[a] = total;
        } else if (g->autopad == TDM_AUTOPAD_SAME_UPPER) {
            g->pb[a] = total / 2;
            g->pe[a] = total - total / 2;
        } else {
            g->pb[a] = total - total / 2;
            g->pe[a] = total / 2;
        }
    } else {
        if (g->autopad == TDM_AUTOPAD_VALID)
            g->pb[a] = g->pe[a] = 0;
        out = full - g->pb[a] - g->pe[a];
    }
    if (out < 1)
        return tdm_op_fail(ctx, TDM_ERR_SHAPE,
                           "output size on spatial axis %d would be %lld (input %lld, pads "
                           "%lld+%lld)",
                           i, (long long)out, (long long)in, (long long)g->pb[a],
                           (long long)g->pe[a]);
    g->out[a] = out;
    return TDM_OK;
}

static tdm_status ct_setup(tdm_op_ctx *ctx, ct_plan *p)
{
    memset(p, 0, sizeof *p);
    if (ctx->n_in < 2 || ctx->in[0] == NULL || ctx->in[1] == NULL || ctx->n_out < 1 ||
        ctx->out[0] == NULL)
        return tdm_op_fail(ctx, TDM_ERR_INVALID_ARG, "needs inputs X and W and output Y");
    const tdm_tensor *x = ctx->in[0], *w = ctx->in[1];
    const tdm_tensor *b = ctx->n_in > 2 ? ctx->in[2] : NULL;
    if (x->ndim < 0 || w->ndim < 0 || (b != NULL && b->ndim < 0))
        return TDM_ERR_NEEDS_VALUE;
    tdm_status s = tdm_nn_require_f32(ctx, 0, "input X");
    if (s == TDM_OK)
        s = tdm_nn_require_f32(ctx, 1, "weight W");
    if (s == TDM_OK && b != NULL)
        s = tdm_nn_require_f32(ctx, 2, "bias B");
    if (s != TDM_OK)
        return s;
    if (x->ndim < 3 || x->ndim > 5)
        return tdm_op_fail(ctx, TDM_ERR_UNSUPPORTED,
                           "input X has rank %d; 3 to 5 (1-D to 3-D) are supported", (int)x->ndim);
    if (w->ndim != x->ndim)
        return tdm_op_fail(ctx, TDM_ERR_SHAPE, "weight W has rank %d but input X has rank %d",
                           (int)w->ndim, (int)x->ndim);
    for (int i = 0; i < x->ndim; i++)
        if (x->dims[i] < 0 || w->dims[i] < 0)
            return TDM_ERR_NEEDS_VALUE;
    int nsp = (int)x->ndim - 2, off = TDM_SP_AXES - nsp;
    p->group = tdm_attr_int(ctx->node, "group", 1);
    if (p->group < 1 || p->group > ((int64_t)1 << 30))
        return tdm_op_fail(ctx, TDM_ERR_SHAPE, "group %lld is out of range", (long long)p->group);
    p->n = x->dims[0];
    p->c = x->dims[1];
    if (p->c != w->dims[0])
        return tdm_op_fail(ctx, TDM_ERR_SHAPE, "input channels %lld do not match weight dim 0 %lld",
                           (long long)p->c, (long long)w->dims[0]);
    if (p->c % p->group != 0)
        return tdm_op_fail(ctx, TDM_ERR_SHAPE,
                           "input channels %lld are not divisible by group %lld", (long long)p->c,
                           (long long)p->group);
    p->cg = p->c / p->group;
    p->mg = w->dims[1];
    if (__builtin_mul_overflow(p->mg, p->group, &p->m))
        return tdm_op_fail(ctx, TDM_ERR_SHAPE, "output channel count overflows");
    int64_t kcount = 0;
    const int64_t *ks = tdm_attr_ints(ctx->node, "kernel_shape", &kcount);
    if (ks != NULL && kcount > 0) {
        if (kcount != nsp)
            return tdm_op_fail(ctx, TDM_ERR_SHAPE, "kernel_shape has %lld values, expected %d",
                               (long long)kcount, nsp);
        for (int i = 0; i < nsp; i++)
            if (ks[i] != w->dims[2 + i])
                return tdm_op_fail(ctx, TDM_ERR_SHAPE,
                                   "kernel_shape[%d] = %lld does not match weight dim %lld", i,
                                   (long long)ks[i], (long long)w->dims[2 + i]);
    }
    if (b != NULL && (b->ndim != 1 || b->dims[0] != p->m))
        return tdm_op_fail(ctx, TDM_ERR_SHAPE, "bias B must have shape [%lld]", (long long)p->m);
    s = tdm_spatial_read(ctx, nsp, &w->dims[2], &p->g);
    if (s == TDM_OK)
        s = tdm_nn_fused_act(ctx, &p->act, &p->alpha, &p->beta);
    if (s != TDM_OK)
        return s;
    int64_t n_op = 0, n_os = 0;
    const int64_t *opad = tdm_attr_ints(ctx->node, "output_padding", &n_op);
    const int64_t *oshape = tdm_attr_ints(ctx->node, "output_shape", &n_os);
    if (n_op != 0 && n_op != nsp)
        return tdm_op_fail(ctx, TDM_ERR_SHAPE, "output_padding has %lld values, expected %d",
                           (long long)n_op, nsp);
    /* Some exporters write the full output shape (N, C, spatial...). */
    if (n_os == nsp + 2)
        oshape += 2;
    else if (n_os != 0 && n_os != nsp)
        return tdm_op_fail(ctx, TDM_ERR_SHAPE, "output_shape has %lld values, expected %d",
                           (long long)n_os, nsp);
    for (int i = 0; i < nsp; i++) {
        int a = off + i;
        int64_t op = n_op != 0 ? opad[i] : 0, os = n_os != 0 ? oshape[i] : -1;
        if (op < 0 || op > TDM_SP_ATTR_MAX)
            return tdm_op_fail(ctx, TDM_ERR_SHAPE, "output_padding[%d] = %lld is out of range", i,
                               (long long)op);
        if (n_os != 0 && (os < 1 || os > ((int64_t)1 << 40)))
            return tdm_op_fail(ctx, TDM_ERR_SHAPE, "output_shape[%d] = %lld is out of range", i,
                               (long long)os);
        p->g.in[a] = x->dims[2 + i];
        s = ct_axis(ctx, &p->g, a, i, op, os);
        if (s != TDM_OK)
            return s;
    }
    for (int a = 0; a < off; a++)
        p->g.in[a] = p->g.out[a] = 1;
    const tdm_spatial *g = &p->g;
    if (!tdm_spatial_volume(g->k, &p->kvol) || __builtin_mul_overflow(p->kvol, p->mg, &p->rows) ||
        !tdm_spatial_volume(g->in, &p->in_vol) || !tdm_spatial_volume(g->out, &p->out_vol))
        return tdm_op_fail(ctx, TDM_ERR_SHAPE, "kernel or spatial size overflows");
    return TDM_OK;
}

tdm_status tdm_conv_transpose_infer(tdm_op_ctx *ctx)
{
    ct_plan p;
    tdm_status s = ct_setup(ctx, &p);
    if (s != TDM_OK)
        return s;
    int64_t dims[TDM_MAX_DIMS];
    int rank = tdm_spatial_out_dims(&p.g, p.n, p.m, dims);
    tdm_tensor_set_shape(ctx->out[0], TDM_DTYPE_FLOAT32, rank, dims);
    return TDM_OK;
}

/*
 * Adds column rows [r0, r1) (input pixels [i0, i1)) into y, the first output
 * channel of the group. Row r = (channel, kd, kh, kw).
 */
static void col2im(const ct_plan *p, const float *col, int64_t ldcol, int64_t i0, int64_t i1,
                   int64_t r0, int64_t r1, float *y)
{
    const tdm_spatial *g = &p->g;
    int64_t kw = g->k[2], khw = g->k[1] * kw;
    int64_t ih_n = g->in[1], iw_n = g->in[2], ihw = ih_n * iw_n;
    for (int64_t r = r0; r < r1; r++) {
        int64_t m = r / p->kvol, t = r % p->kvol;
        int64_t kd = t / khw, kh = (t / kw) % g->k[1], kx = t % kw;
        int64_t shift_w = kx * g->d[2] - g->pb[2];
        int64_t lo, hi;
        tdm_sp_range(iw_n, g->out[2], g->s[2], shift_w, &lo, &hi);
        const float *src = col + r * ldcol;
        float *ym = y + m * p->out_vol;
        for (int64_t q = i0; q < i1;) {
            int64_t id = q / ihw, ih = (q / iw_n) % ih_n, iw0 = q % iw_n;
            int64_t run = iw_n - iw0 < i1 - q ? iw_n - iw0 : i1 - q;
            int64_t od = id * g->s[0] - g->pb[0] + kd * g->d[0];
            int64_t oh = ih * g->s[1] - g->pb[1] + kh * g->d[1];
            const float *s = src + (q - i0); /* s[iw - iw0] is input column iw */
            q += run;
            if (od < 0 || od >= g->out[0] || oh < 0 || oh >= g->out[1])
                continue;
            float *dst = ym + (od * g->out[1] + oh) * g->out[2];
            int64_t a = lo > iw0 ? lo : iw0, b = hi < iw0 + run ? hi : iw0 + run;
            if (g->s[2] == 1) {
                for (int64_t iw = a; iw < b; iw++)
                    dst[iw + shift_w] += s[iw - iw0];
            } else {
                for (int64_t iw = a; iw < b; iw++)
                    dst[iw * g->s[2] + shift_w] += s[iw - iw0];
            }
        }
    }
}

typedef struct ct_job {
    const ct_plan *p;
    const float *x, *w, *bias;
    float *y;
    int64_t tile;
    float *buf;      /* one rows x tile column block per worker */
    int64_t buf_len; /* floats per worker */
    tdm_pool *inner;
    /* col2im over output channels (inner mode) */
    const float *c2_col;
    int64_t c2_i0, c2_i1;
    float *c2_y;
} ct_job;

static void col2im_task(void *arg, int64_t m0, int64_t m1, int worker)
{
    const ct_job *j = arg;
    (void)worker;
    col2im(j->p, j->c2_col, j->c2_i1 - j->c2_i0, j->c2_i0, j->c2_i1, m0 * j->p->kvol,
           m1 * j->p->kvol, j->c2_y);
}

/* One (image, group): zero, accumulate every tile, then bias and activation. */
static void ct_one(ct_job *j, int64_t task, float *buf)
{
    const ct_plan *p = j->p;
    int64_t n = task / p->group, gi = task % p->group;
    float *y = j->y + (n * p->m + gi * p->mg) * p->out_vol;
    memset(y, 0, sizeof *y * (size_t)(p->mg * p->out_vol));
    const float *x = j->x + (n * p->c + gi * p->cg) * p->in_vol;
    const float *w = j->w + gi * p->cg * p->rows;
    for (int64_t i0 = 0; i0 < p->in_vol && p->cg > 0; i0 += j->tile) {
        int64_t i1 = i0 + j->tile < p->in_vol ? i0 + j->tile : p->in_vol;
        tdm_sgemm(j->inner, true, false, p->rows, i1 - i0, p->cg, 1.f, w, p->rows, x + i0,
                  p->in_vol, 0.f, buf, i1 - i0, NULL);
        if (j->inner != NULL && tdm_pool_size(j->inner) > 1) {
            j->c2_col = buf;
            j->c2_i0 = i0;
            j->c2_i1 = i1;
            j->c2_y = y;
            tdm_pool_for(j->inner, p->mg, 1, col2im_task, j);
        } else {
            col2im(p, buf, i1 - i0, i0, i1, 0, p->rows, y);
        }
    }
    for (int64_t m = 0; m < p->mg; m++) {
        float *ym = y + m * p->out_vol;
        if (j->bias != NULL) {
            float bv = j->bias[gi * p->mg + m];
            for (int64_t i = 0; i < p->out_vol; i++)
                ym[i] += bv;
        }
        tdm_act_apply(ym, p->out_vol, p->act, p->alpha, p->beta);
    }
}

static void ct_task(void *arg, int64_t begin, int64_t end, int worker)
{
    ct_job *j = arg;
    for (int64_t t = begin; t < end; t++)
        ct_one(j, t, j->buf + (int64_t)worker * j->buf_len);
}

tdm_status tdm_conv_transpose_run(tdm_op_ctx *ctx)
{
    ct_plan p;
    tdm_status s = ct_setup(ctx, &p);
    if (s != TDM_OK)
        return s == TDM_ERR_NEEDS_VALUE
                   ? tdm_op_fail(ctx, TDM_ERR_INTERNAL, "input shapes unknown at run time")
                   : s;
    ct_job j;
    memset(&j, 0, sizeof j);
    j.p = &p;
    j.x = ctx->in[0]->data;
    j.w = ctx->in[1]->data;
    j.bias = ctx->n_in > 2 && ctx->in[2] != NULL ? ctx->in[2]->data : NULL;
    j.y = ctx->out[0]->data;
    assert(j.x != NULL && j.w != NULL && j.y != NULL);
    if (p.n == 0 || p.m == 0)
        return TDM_OK;
    int64_t tile = p.rows > 0 ? (int64_t)(CT_TILE_BYTES / sizeof(float)) / p.rows : p.in_vol;
    if (tile < 64)
        tile = 64;
    if (tile > p.in_vol)
        tile = p.in_vol;
    j.tile = tile > 0 ? tile : 1;
    int threads = tdm_nn_threads(ctx);
    int64_t tasks = p.n * p.group;
    bool outer = threads > 1 && tasks >= threads;
    size_t per, total;
    if (tdm_mul_overflow((size_t)p.rows, (size_t)j.tile, &per) ||
        tdm_mul_overflow(per, sizeof(float) * (size_t)(outer ? threads : 1), &total))
        return tdm_op_fail(ctx, TDM_ERR_NOMEM, "col2im workspace size overflows");
    j.buf = tdm_op_scratch(ctx, total);
    if (j.buf == NULL)
        return tdm_op_fail(ctx, TDM_ERR_NOMEM, "out of memory for a %zu-byte workspace", total);
    j.buf_len = (int64_t)per;
    if (outer) {
        tdm_pool_for(ctx->pool, tasks, 1, ct_task, &j);
    } else {
        j.inner = ctx->pool;
        for (int64_t t = 0; t < tasks; t++)
            ct_one(&j, t, j.buf);
    }
    return TDM_OK;
}

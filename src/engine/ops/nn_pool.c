/*
 * MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool: float32, 1-D/2-D/
 * 3-D, strides, pads, auto_pad, dilations, ceil_mode, count_include_pad,
 * and MaxPool's optional int64 Indices output with storage_order.
 *
 * Pooling is memory-bound, so the kernels are organised for contiguous
 * access rather than for arithmetic: an output row is produced by sweeping
 * it once per kernel tap (kd, kh, kw) whose input row exists. With unit
 * stride along W the tap's valid output range is computed once
 * (tdm_sp_range), so the inner loop is a branch-free max or add over
 * contiguous floats. With a larger stride the reduction is done in two
 * steps instead: the valid input rows of the window are first reduced into
 * one row (contiguous, full width), then each output takes its kw taps from
 * that row. The first step does the bulk of the work on whole rows; the
 * second is kw scalar operations per output, so a 4x4 / stride 4 window on
 * a small map costs a few vector passes per output row rather than a
 * padded, phase-split copy of every input row. Compilers vectorise the
 * contiguous loops on their own (maxps/addps), which is the "SIMD where
 * cheap" here.
 *
 * AveragePool's divisor depends only on the position along each axis, so
 * per-axis counts are computed once per call and multiplied: the window
 * positions inside [0, in) or, with count_include_pad, inside the padded
 * extent [-pad_begin, in + pad_end) (a ceil_mode window overhanging that is
 * not counted past it, as in onnxruntime).
 *
 * MaxPool with Indices takes a plain per-window loop: it is rare and needs
 * the position of the first maximum. Parallel work is one (image, channel)
 * plane per task.
 */
#include <assert.h>
#include <math.h>
#include <string.h>

#include "base/alloc.h"
#include "engine/ops/nn_ops.h"
#include "engine/ops/nn_spatial.h"

typedef struct pool_plan {
    tdm_spatial g;
    int64_t n, c;
    int64_t in_vol, out_vol;
    bool ceil_mode, include_pad;
    int64_t storage_order;
} pool_plan;

static tdm_status pool_setup(tdm_op_ctx *ctx, pool_plan *p)
{
    memset(p, 0, sizeof *p);
    if (ctx->n_in < 1 || ctx->in[0] == NULL || ctx->n_out < 1 || ctx->out[0] == NULL)
        return tdm_op_fail(ctx, TDM_ERR_INVALID_ARG, "needs input X and output Y");
    const tdm_tensor *x = ctx->in[0];
    if (x->ndim < 0)
        return TDM_ERR_NEEDS_VALUE;
    tdm_status s = tdm_nn_require_f32(ctx, 0, "input X");
    if (s != TDM_OK)
        return s;
    if (x->ndim < 3 || x->ndim > 5)
        return tdm_op_fail(ctx, TDM_ERR_UNSUPPORTED,
                           "input X has rank %d; 3 to 5 (1-D to 3-D pooling) are supported",
                           (int)x->ndim);
    int nsp = (int)x->ndim - 2;
    int64_t kcount = 0;
    const int64_t *ks = tdm_attr_ints(ctx->node, "kernel_shape", &kcount);
    if (ks == NULL || kcount != nsp)
        return tdm_op_fail(ctx, TDM_ERR_SHAPE, "kernel_shape needs %d values, has %lld", nsp,
                           (long long)kcount);
    p->n = x->dims[0];
    p->c = x->dims[1];
    int64_t ceil_mode = tdm_attr_int(ctx->node, "ceil_mode", 0);
    int64_t cip = tdm_attr_int(ctx->node, "count_include_pad", 0);
    p->storage_order = tdm_attr_int(ctx->node, "storage_order", 0);
    if (ceil_mode != 0 && ceil_mode != 1)
        return tdm_op_fail(ctx, TDM_ERR_SHAPE, "ceil_mode must be 0 or 1, not %lld",
                           (long long)ceil_mode);
    if (cip != 0 && cip != 1)
        return tdm_op_fail(ctx, TDM_ERR_SHAPE, "count_include_pad must be 0 or 1, not %lld",
                           (long long)cip);
    if (p->storage_order != 0 && p->storage_order != 1)
        return tdm_op_fail(ctx, TDM_ERR_SHAPE, "storage_order must be 0 or 1, not %lld",
                           (long long)p->storage_order);
    p->ceil_mode = ceil_mode != 0;
    p->include_pad = cip != 0;
    s = tdm_spatial_read(ctx, nsp, ks, &p->g);
    if (s == TDM_OK)
        s = tdm_spatial_forward(ctx, &p->g, &x->dims[2], p->ceil_mode);
    if (s != TDM_OK)
        return s;
    const tdm_spatial *g = &p->g;
    p->in_vol = p->out_vol = -1;
    if (g->in[0] >= 0 && g->in[1] >= 0 && g->in[2] >= 0 &&
        (__builtin_mul_overflow(g->in[0], g->in[1], &p->in_vol) ||
         __builtin_mul_overflow(p->in_vol, g->in[2], &p->in_vol) ||
         __builtin_mul_overflow(g->out[0], g->out[1], &p->out_vol) ||
         __builtin_mul_overflow(p->out_vol, g->out[2], &p->out_vol)))
        return tdm_op_fail(ctx, TDM_ERR_SHAPE, "spatial size overflows");
    return TDM_OK;
}

static tdm_status pool_infer(tdm_op_ctx *ctx, bool is_max)
{
    pool_plan p;
    tdm_status s = pool_setup(ctx, &p);
    if (s != TDM_OK)
        return s;
    int64_t dims[TDM_MAX_DIMS];
    int rank = tdm_spatial_out_dims(&p.g, p.n, p.c, dims);
    tdm_tensor_set_shape(ctx->out[0], TDM_DTYPE_FLOAT32, rank, dims);
    if (is_max && ctx->n_out > 1 && ctx->out[1] != NULL)
        tdm_tensor_set_shape(ctx->out[1], TDM_DTYPE_INT64, rank, dims);
    return TDM_OK;
}

tdm_status tdm_maxpool_infer(tdm_op_ctx *ctx)
{
    return pool_infer(ctx, true);
}

tdm_status tdm_avgpool_infer(tdm_op_ctx *ctx)
{
    return pool_infer(ctx, false);
}

typedef struct pool_job {
    const pool_plan *p;
    const float *x;
    float *y;
    int64_t *idx;         /* MaxPool Indices, or NULL */
    const int64_t *count; /* AveragePool: per-axis window counts, out[0]+out[1]+out[2] */
    bool is_max;
    float *rows;   /* stride along W > 1: one reduced input row per worker */
    int64_t phase; /* floats per worker in rows */
} pool_job;

/*
 * acc = reduce(acc, rows[0..n)) over w floats, n <= 4, in one pass; with
 * `first` acc starts from the identity. Max is written `r > m ? r : m` from
 * -inf, so a NaN input is skipped, as in the tap sweeps.
 */
static void fold_rows(float *restrict acc, const float *const *rows, int n, int64_t w, bool is_max,
                      bool first)
{
    const float *restrict r0 = rows[0];
    const float *restrict r1 = rows[n > 1 ? 1 : 0];
    const float *restrict r2 = rows[n > 2 ? 2 : 0];
    const float *restrict r3 = rows[n > 3 ? 3 : 0];
    if (is_max) {
        /* repeating a row is harmless for max */
        if (first)
            for (int64_t i = 0; i < w; i++)
                acc[i] = -INFINITY;
        for (int64_t i = 0; i < w; i++) {
            float m = acc[i];
            m = r0[i] > m ? r0[i] : m;
            m = r1[i] > m ? r1[i] : m;
            m = r2[i] > m ? r2[i] : m;
            m = r3[i] > m ? r3[i] : m;
            acc[i] = m;
        }
        return;
    }
    if (first)
        memset(acc, 0, sizeof *acc * (size_t)w);
    switch (n) {
    case 4:
        for (int64_t i = 0; i < w; i++)
            acc[i] += (r0[i] + r1[i]) + (r2[i] + r3[i]);
        break;
    case 3:
        for (int64_t i = 0; i < w; i++)
            acc[i] += (r0[i] + r1[i]) + r2[i];
        break;
    case 2:
        for (int64_t i = 0; i < w; i++)
            acc[i] += r0[i] + r1[i];
        break;
    default:
        for (int64_t i = 0; i < w; i++)
            acc[i] += r0[i];
    }
}

/* One output row (od, oh) of one plane by tap sweeps; see the file comment. */
static void pool_row(const pool_job *j, const float *x, float *o, int64_t od, int64_t oh,
                     float *split)
{
    const tdm_spatial *g = &j->p->g;
    int64_t wout = g->out[2], sw = g->s[2];
    float init = j->is_max ? -INFINITY : 0.f;
    bool first = true; /* strided W: no input row reduced into `split` yet */
    const float *pend[4];
    int npend = 0;
    for (int64_t ow = 0; ow < wout; ow++)
        o[ow] = init;
    for (int64_t kd = 0; kd < g->k[0]; kd++) {
        int64_t id = od * g->s[0] - g->pb[0] + kd * g->d[0];
        if (id < 0 || id >= g->in[0])
            continue;
        for (int64_t kh = 0; kh < g->k[1]; kh++) {
            int64_t ih = oh * g->s[1] - g->pb[1] + kh * g->d[1];
            if (ih < 0 || ih >= g->in[1])
                continue;
            const float *row = x + (id * g->in[1] + ih) * g->in[2];
            if (sw > 1) {
                /* Step one: rows are folded into the reduced row four at a
                 * time, one pass each (a 4 x 4 window: one pass, not four). */
                pend[npend++] = row;
                if (npend == 4) {
                    fold_rows(split, pend, npend, g->in[2], j->is_max, first);
                    first = false;
                    npend = 0;
                }
                continue;
            }
            for (int64_t kw = 0; kw < g->k[2]; kw++) {
                int64_t shift = kw * g->d[2] - g->pb[2], lo, hi;
                tdm_sp_range(wout, g->in[2], 1, shift, &lo, &hi);
                const float *restrict src = row + shift; /* src[ow] for ow in [lo, hi) */
                float *restrict out = o;
                if (j->is_max) {
                    for (int64_t ow = lo; ow < hi; ow++)
                        out[ow] = src[ow] > out[ow] ? src[ow] : out[ow];
                } else {
                    for (int64_t ow = lo; ow < hi; ow++)
                        out[ow] += src[ow];
                }
            }
        }
    }
    if (npend > 0) {
        fold_rows(split, pend, npend, g->in[2], j->is_max, first);
        first = false;
    }
    if (sw > 1 && !first) {
        /* Step two: each output reduces its kw taps of the reduced row;
         * taps in the padding are the identity and are skipped. */
        const float *acc = split;
        for (int64_t ow = 0; ow < wout; ow++) {
            int64_t lo = 0, hi = g->k[2], base = ow * sw - g->pb[2];
            if (base < 0 || base + (g->k[2] - 1) * g->d[2] >= g->in[2])
                tdm_sp_range(g->k[2], g->in[2], g->d[2], base, &lo, &hi);
            float v = init;
            const float *a = acc + base;
            if (j->is_max) {
                for (int64_t kw = lo; kw < hi; kw++)
                    v = a[kw * g->d[2]] > v ? a[kw * g->d[2]] : v;
            } else {
                for (int64_t kw = lo; kw < hi; kw++)
                    v += a[kw * g->d[2]];
            }
            o[ow] = v;
        }
    }
    if (!j->is_max) {
        const int64_t *cd = j->count, *ch = cd + g->out[0], *cw = ch + g->out[1];
        int64_t dh = cd[od] * ch[oh];
        for (int64_t ow = 0; ow < wout; ow++) {
            int64_t cnt = dh * cw[ow];
            o[ow] = cnt > 0 ? o[ow] / (float)cnt : 0.f;
        }
    }
}

/* MaxPool of one plane with the index of each maximum (first one wins). */
static void maxpool_plane_idx(const pool_job *j, const float *x, float *y, int64_t *idx,
                              int64_t base)
{
    const tdm_spatial *g = &j->p->g;
    bool colmajor = j->p->storage_order == 1;
    for (int64_t od = 0; od < g->out[0]; od++)
        for (int64_t oh = 0; oh < g->out[1]; oh++)
            for (int64_t ow = 0; ow < g->out[2]; ow++) {
                float best = -INFINITY;
                int64_t at = -1;
                for (int64_t kd = 0; kd < g->k[0]; kd++) {
                    int64_t id = od * g->s[0] - g->pb[0] + kd * g->d[0];
                    if (id < 0 || id >= g->in[0])
                        continue;
                    for (int64_t kh = 0; kh < g->k[1]; kh++) {
                        int64_t ih = oh * g->s[1] - g->pb[1] + kh * g->d[1];
                        if (ih < 0 || ih >= g->in[1])
                            continue;
                        for (int64_t kw = 0; kw < g->k[2]; kw++) {
                            int64_t iw = ow * g->s[2] - g->pb[2] + kw * g->d[2];
                            if (iw < 0 || iw >= g->in[2])
                                continue;
                            float v = x[(id * g->in[1] + ih) * g->in[2] + iw];
                            if (at < 0 || v > best) {
                                best = v;
                                at = colmajor ? id + g->in[0] * (ih + g->in[1] * iw)
                                              : (id * g->in[1] + ih) * g->in[2] + iw;
                            }
                        }
                    }
                }
                int64_t o = (od * g->out[1] + oh) * g->out[2] + ow;
                y[o] = best;
                idx[o] = at < 0 ? 0 : base + at;
            }
}

static void pool_task(void *arg, int64_t begin, int64_t end, int worker)
{
    const pool_job *j = arg;
    const pool_plan *p = j->p;
    const tdm_spatial *g = &p->g;
    float *split = j->rows != NULL ? j->rows + (int64_t)worker * j->phase : NULL;
    for (int64_t plane = begin; plane < end; plane++) {
        const float *x = j->x + plane * p->in_vol;
        float *y = j->y + plane * p->out_vol;
        if (j->idx != NULL) {
            maxpool_plane_idx(j, x, y, j->idx + plane * p->out_vol, plane * p->in_vol);
            continue;
        }
        for (int64_t od = 0; od < g->out[0]; od++)
            for (int64_t oh = 0; oh < g->out[1]; oh++)
                pool_row(j, x, y + (od * g->out[1] + oh) * g->out[2], od, oh, split);
    }
}

/* Window positions of each output along axis a that count for the average. */
static void avg_counts(const pool_plan *p, int a, int64_t *cnt)
{
    const tdm_spatial *g = &p->g;
    int64_t lo_b = p->include_pad ? -g->pb[a] : 0;
    int64_t hi_b = p->include_pad ? g->in[a] + g->pe[a] : g->in[a];
    for (int64_t o = 0; o < g->out[a]; o++) {
        int64_t lo, hi;
        tdm_sp_range(g->k[a], hi_b - lo_b, g->d[a], o * g->s[a] - g->pb[a] - lo_b, &lo, &hi);
        cnt[o] = hi - lo;
    }
}

static tdm_status pool_run(tdm_op_ctx *ctx, bool is_max)
{
    pool_plan p;
    tdm_status s = pool_setup(ctx, &p);
    if (s != TDM_OK)
        return s == TDM_ERR_NEEDS_VALUE
                   ? tdm_op_fail(ctx, TDM_ERR_INTERNAL, "input shape unknown at run time")
                   : s;
    pool_job j = {&p, ctx->in[0]->data, ctx->out[0]->data, NULL, NULL, is_max, NULL, 0};
    if (is_max && ctx->n_out > 1 && ctx->out[1] != NULL)
        j.idx = ctx->out[1]->data;
    assert(j.x != NULL && j.y != NULL);
    int64_t planes = p.n * p.c;
    if (planes == 0 || p.out_vol == 0)
        return TDM_OK;
    /* Workspace: the average's counts, then (64-byte aligned) per-worker
     * split rows for a strided W. */
    const tdm_spatial *g = &p.g;
    size_t row_floats = 0, counts_bytes = 0, rows_bytes, bytes;
    if (g->s[2] > 1 && j.idx == NULL) {
        j.phase = (g->in[2] + 15) / 16 * 16; /* one reduced row per worker, 64-byte aligned */
        row_floats = (size_t)j.phase;
    }
    if (!is_max)
        counts_bytes =
            ((size_t)(g->out[0] + g->out[1] + g->out[2]) * sizeof(int64_t) + 63) / 64 * 64;
    if (tdm_mul_overflow(row_floats, sizeof(float) * (size_t)tdm_nn_threads(ctx), &rows_bytes) ||
        tdm_add_overflow(rows_bytes, counts_bytes, &bytes))
        return tdm_op_fail(ctx, TDM_ERR_NOMEM, "pooling workspace size overflows");
    char *ws = bytes > 0 ? tdm_op_scratch(ctx, bytes) : NULL;
    if (bytes > 0 && ws == NULL)
        return tdm_op_fail(ctx, TDM_ERR_NOMEM, "out of memory for a %zu-byte workspace", bytes);
    if (row_floats > 0)
        j.rows = (float *)(ws + counts_bytes);
    if (!is_max) {
        int64_t *cnt = (int64_t *)ws;
        avg_counts(&p, 0, cnt);
        avg_counts(&p, 1, cnt + g->out[0]);
        avg_counts(&p, 2, cnt + g->out[0] + g->out[1]);
        j.count = cnt;
    }
    int64_t work = p.out_vol * p.g.k[0] * p.g.k[1] * p.g.k[2];
    tdm_pool_for(ctx->pool, planes, 32768 / (work > 0 ? work : 1) + 1, pool_task, &j);
    return TDM_OK;
}

tdm_status tdm_maxpool_run(tdm_op_ctx *ctx)
{
    return pool_run(ctx, true);
}

tdm_status tdm_avgpool_run(tdm_op_ctx *ctx)
{
    return pool_run(ctx, false);
}

/* ---- global pooling ------------------------------------------------------------- */

static tdm_status gpool_check(tdm_op_ctx *ctx)
{
    if (ctx->n_in < 1 || ctx->in[0] == NULL || ctx->n_out < 1 || ctx->out[0] == NULL)
        return tdm_op_fail(ctx, TDM_ERR_INVALID_ARG, "needs input X and output Y");
    const tdm_tensor *x = ctx->in[0];
    if (x->ndim < 0)
        return TDM_ERR_NEEDS_VALUE;
    tdm_status s = tdm_nn_require_f32(ctx, 0, "input X");
    if (s != TDM_OK)
        return s;
    if (x->ndim < 2)
        return tdm_op_fail(ctx, TDM_ERR_SHAPE, "input X has rank %d; needs N x C x ...",
                           (int)x->ndim);
    return TDM_OK;
}

tdm_status tdm_global_pool_infer(tdm_op_ctx *ctx)
{
    tdm_status s = gpool_check(ctx);
    if (s != TDM_OK)
        return s;
    const tdm_tensor *x = ctx->in[0];
    int64_t dims[TDM_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++)
        dims[i] = i < 2 ? x->dims[i] : 1;
    tdm_tensor_set_shape(ctx->out[0], TDM_DTYPE_FLOAT32, x->ndim, dims);
    return TDM_OK;
}

typedef struct gpool_job {
    const float *x;
    float *y;
    int64_t vol;
} gpool_job;

static void gavg_task(void *arg, int64_t begin, int64_t end, int worker)
{
    const gpool_job *j = arg;
    (void)worker;
    for (int64_t pl = begin; pl < end; pl++) {
        const float *x = j->x + pl * j->vol;
        float acc[8] = {0};
        int64_t i = 0;
        for (; i + 8 <= j->vol; i += 8)
            for (int k = 0; k < 8; k++)
                acc[k] += x[i + k];
        float sum = 0.f;
        for (; i < j->vol; i++)
            sum += x[i];
        sum += ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
        j->y[pl] = j->vol > 0 ? sum / (float)j->vol : 0.f;
    }
}

static void gmax_task(void *arg, int64_t begin, int64_t end, int worker)
{
    const gpool_job *j = arg;
    (void)worker;
    for (int64_t pl = begin; pl < end; pl++) {
        const float *x = j->x + pl * j->vol;
        float acc[8];
        for (int k = 0; k < 8; k++)
            acc[k] = -INFINITY;
        int64_t i = 0;
        for (; i + 8 <= j->vol; i += 8)
            for (int k = 0; k < 8; k++)
                acc[k] = x[i + k] > acc[k] ? x[i + k] : acc[k];
        float m = -INFINITY;
        for (; i < j->vol; i++)
            m = x[i] > m ? x[i] : m;
        for (int k = 0; k < 8; k++)
            m = acc[k] > m ? acc[k] : m;
        j->y[pl] = m;
    }
}

static tdm_status gpool_run(tdm_op_ctx *ctx, tdm_task_fn fn)
{
    tdm_status s = gpool_check(ctx);
    if (s != TDM_OK)
        return s == TDM_ERR_NEEDS_VALUE
                   ? tdm_op_fail(ctx, TDM_ERR_INTERNAL, "input shape unknown at run time")
                   : s;
    const tdm_tensor *x = ctx->in[0];
    gpool_job j = {x->data, ctx->out[0]->data, 1};
    for (int i = 2; i < x->ndim; i++)
        j.vol *= x->dims[i];
    int64_t planes = x->dims[0] * x->dims[1];
    tdm_pool_for(ctx->pool, planes, 65536 / (j.vol > 0 ? j.vol : 1) + 1, fn, &j);
    return TDM_OK;
}

tdm_status tdm_global_avgpool_run(tdm_op_ctx *ctx)
{
    return gpool_run(ctx, gavg_task);
}

tdm_status tdm_global_maxpool_run(tdm_op_ctx *ctx)
{
    return gpool_run(ctx, gmax_task);
}

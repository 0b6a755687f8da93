/*
 * LayerNormalization (opset 17): normalise over the axes [axis, rank) of X,
 * then scale and shift; optional outputs Mean and InvStdDev (shape of X with
 * the normalised axes set to 1).
 *
 * The op is a loop over rows handed to a row kernel chosen per CPU
 * (nn_layernorm.h): BERT-sized rows (384 floats) sit in L1, so the three
 * passes of the centred two-pass form cost little more than one and avoid
 * the cancellation of E[x^2] - E[x]^2. Rows go to the pool in chunks of at
 * least 32 KiB of data. Scale and B usually have exactly the normalised
 * shape and are used in place; a broadcast one (size-1 axes) is expanded
 * once into scratch.
 */
#include <math.h>
#include <string.h>

#include "base/alloc.h"
#include "base/cpu.h"
#include "engine/ops/nn_layernorm.h"
#include "engine/ops/nn_ops.h"

void tdm_ln_rows_portable(const float *x, float *y, int64_t rows, int64_t n, const float *scale,
                          const float *bias, float eps, float *mean, float *inv_std)
{
    for (int64_t r = 0; r < rows; r++, x += n, y += n) {
        double s = 0;
        for (int64_t i = 0; i < n; i++)
            s += x[i];
        double mu = n > 0 ? s / (double)n : 0.0;
        double v = 0;
        for (int64_t i = 0; i < n; i++) {
            double d = (double)x[i] - mu;
            v += d * d;
        }
        double inv = 1.0 / sqrt((n > 0 ? v / (double)n : 0.0) + eps);
        if (mean != NULL)
            mean[r] = (float)mu;
        if (inv_std != NULL)
            inv_std[r] = (float)inv;
        for (int64_t i = 0; i < n; i++) {
            float o = (float)(((double)x[i] - mu) * inv) * scale[i];
            y[i] = bias != NULL ? o + bias[i] : o;
        }
    }
}

tdm_ln_rows_fn tdm_ln_rows_get(int level)
{
    const tdm_cpu *cpu = tdm_cpu_get();
#if defined(TDM_X86)
    if ((level == -1 || level == 2) && cpu->avx512)
        return tdm_ln_rows_avx512;
    if ((level == -1 || level == 1) && cpu->avx2_fma)
        return tdm_ln_rows_avx2;
#else
    (void)cpu;
#endif
    if (level == -1 || level == 0)
        return tdm_ln_rows_portable;
    return NULL;
}

typedef struct ln_geom {
    int axis;
    int64_t rows, n;
    float eps;
} ln_geom;

/* Checks that p (Scale or B) broadcasts to X's normalised axes; *dense when it needs no expansion.
 */
static tdm_status ln_check_param(tdm_op_ctx *ctx, const tdm_tensor *p, const char *what,
                                 const ln_geom *g, bool *dense)
{
    const tdm_tensor *x = ctx->in[0];
    char sp[96], sx[96];
    if (p->dtype != TDM_DTYPE_FLOAT32)
        return tdm_op_fail(ctx, TDM_ERR_UNSUPPORTED, "%s has dtype %s; only float32 is supported",
                           what, tdm_dtype_name(p->dtype));
    bool ok = p->ndim <= x->ndim;
    for (int d = 0; ok && d < p->ndim; d++) {
        int xd = x->ndim - p->ndim + d;
        if (xd < g->axis)
            ok = p->dims[d] == 1;
        else
            ok = p->dims[d] == 1 || p->dims[d] == x->dims[xd];
    }
    if (!ok)
        return tdm_op_fail(
            ctx, TDM_ERR_SHAPE, "%s %s does not broadcast to the normalised axes of X %s", what,
            tdm_tensor_shape_str(p, sp, sizeof sp), tdm_tensor_shape_str(x, sx, sizeof sx));
    *dense = tdm_tensor_numel(p) == g->n;
    return TDM_OK;
}

static tdm_status ln_setup(tdm_op_ctx *ctx, ln_geom *g)
{
    memset(g, 0, sizeof *g);
    if (ctx->n_in < 2 || ctx->n_in > 3 || ctx->in[0] == NULL || ctx->in[1] == NULL ||
        ctx->n_out < 1 || ctx->out[0] == NULL)
        return tdm_op_fail(ctx, TDM_ERR_INVALID_ARG,
                           "needs inputs X, Scale, optional B and output Y");
    for (int i = 0; i < ctx->n_in; i++) {
        const tdm_tensor *t = ctx->in[i];
        if (t == NULL)
            continue;
        if (t->ndim < 0)
            return TDM_ERR_NEEDS_VALUE;
        for (int d = 0; d < t->ndim; d++)
            if (t->dims[d] < 0)
                return TDM_ERR_NEEDS_VALUE;
    }
    const tdm_tensor *x = ctx->in[0];
    if (x->dtype != TDM_DTYPE_FLOAT32)
        return tdm_op_fail(ctx, TDM_ERR_UNSUPPORTED, "X has dtype %s; only float32 is supported",
                           tdm_dtype_name(x->dtype));
    int64_t axis = tdm_attr_int(ctx->node, "axis", -1);
    int64_t a = axis < 0 ? axis + x->ndim : axis;
    if (x->ndim < 1 || a < 0 || a >= x->ndim)
        return tdm_op_fail(ctx, TDM_ERR_INVALID_ARG, "axis %lld is out of range for rank %d",
                           (long long)axis, (int)x->ndim);
    g->axis = (int)a;
    g->rows = 1;
    g->n = 1;
    for (int d = 0; d < x->ndim; d++) {
        if (d < g->axis)
            g->rows *= x->dims[d];
        else
            g->n *= x->dims[d];
    }
    g->eps = tdm_attr_float(ctx->node, "epsilon", 1e-5f);
    if (!(g->eps >= 0.f))
        return tdm_op_fail(ctx, TDM_ERR_INVALID_ARG, "epsilon %g must be >= 0", (double)g->eps);
    bool dense;
    tdm_status s = ln_check_param(ctx, ctx->in[1], "Scale", g, &dense);
    if (s == TDM_OK && ctx->n_in > 2 && ctx->in[2] != NULL)
        s = ln_check_param(ctx, ctx->in[2], "B", g, &dense);
    return s;
}

tdm_status tdm_layernorm_infer(tdm_op_ctx *ctx)
{
    ln_geom g;
    tdm_status s = ln_setup(ctx, &g);
    if (s != TDM_OK)
        return s;
    const tdm_tensor *x = ctx->in[0];
    tdm_tensor_set_shape(ctx->out[0], TDM_DTYPE_FLOAT32, x->ndim, x->dims);
    int64_t sd[TDM_MAX_DIMS];
    for (int d = 0; d < x->ndim; d++)
        sd[d] = d < g.axis ? x->dims[d] : 1;
    for (int o = 1; o < 3 && o < ctx->n_out; o++)
        if (ctx->out[o] != NULL)
            tdm_tensor_set_shape(ctx->out[o], TDM_DTYPE_FLOAT32, x->ndim, sd);
    return TDM_OK;
}

/* Expands a broadcast Scale/B to the n floats of one normalised row. */
static void ln_expand(const tdm_tensor *x, int axis, const tdm_tensor *p, float *dst, int64_t n)
{
    const float *src = p->data;
    int nd = x->ndim - axis;
    for (int64_t i = 0; i < n; i++) {
        int64_t rem = i, off = 0, pstride = 1;
        for (int d = nd - 1; d >= 0; d--) {
            int64_t xn = x->dims[axis + d];
            int64_t idx = rem % xn;
            rem /= xn;
            int pd = p->ndim - (nd - d);
            if (pd >= 0) {
                if (p->dims[pd] != 1)
                    off += idx * pstride;
                pstride *= p->dims[pd];
            }
        }
        dst[i] = src[off];
    }
}

typedef struct ln_job {
    tdm_ln_rows_fn fn;
    const float *x, *scale, *bias;
    float *y, *mean, *inv;
    int64_t n;
    float eps;
} ln_job;

static void ln_task(void *arg, int64_t r0, int64_t r1, int worker)
{
    const ln_job *j = arg;
    (void)worker;
    j->fn(j->x + r0 * j->n, j->y + r0 * j->n, r1 - r0, j->n, j->scale, j->bias, j->eps,
          j->mean != NULL ? j->mean + r0 : NULL, j->inv != NULL ? j->inv + r0 : NULL);
}

tdm_status tdm_layernorm_run(tdm_op_ctx *ctx)
{
    ln_geom g;
    tdm_status s = ln_setup(ctx, &g);
    if (s != TDM_OK)
        return s;
    if (g.rows == 0)
        return TDM_OK;
    const tdm_tensor *x = ctx->in[0], *sc = ctx->in[1];
    const tdm_tensor *b = ctx->n_in > 2 ? ctx->in[2] : NULL;
    ln_job j;
    j.fn = tdm_ln_rows_get(-1);
    j.x = x->data;
    j.y = ctx->out[0]->data;
    j.mean = ctx->n_out > 1 && ctx->out[1] != NULL ? ctx->out[1]->data : NULL;
    j.inv = ctx->n_out > 2 && ctx->out[2] != NULL ? ctx->out[2]->data : NULL;
    j.n = g.n;
    j.eps = g.eps;
    j.scale = sc->data;
    j.bias = b != NULL ? b->data : NULL;
    bool sc_dense = tdm_tensor_numel(sc) == g.n;
    bool b_dense = b == NULL || tdm_tensor_numel(b) == g.n;
    if (!sc_dense || !b_dense) {
        float *tmp = tdm_op_scratch(ctx, sizeof(float) * (size_t)(2 * g.n + 16));
        if (tmp == NULL)
            return tdm_op_fail(ctx, TDM_ERR_NOMEM, "out of memory expanding Scale/B");
        if (!sc_dense) {
            ln_expand(x, g.axis, sc, tmp, g.n);
            j.scale = tmp;
        }
        if (!b_dense) {
            ln_expand(x, g.axis, b, tmp + g.n + 16, g.n);
            j.bias = tmp + g.n + 16;
        }
    }
    int64_t grain = g.n > 0 ? 8192 / g.n + 1 : g.rows;
    tdm_pool_for(ctx->pool, g.rows, grain, ln_task, &j);
    return TDM_OK;
}

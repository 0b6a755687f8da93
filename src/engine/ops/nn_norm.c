/*
 * BatchNormalization (inference mode) and InstanceNormalization, float32.
 *
 * Inference-mode batch norm is an affine map per channel,
 *   y = x * a + b,  a = scale / sqrt(var + eps),  b = bias - mean * a,
 * so each (image, channel) plane costs one sqrt and one multiply-add per
 * element; a fused activation (tdm_activation, see nn_spatial.h) is applied
 * on the same pass. Training mode (statistics from the batch, running-mean
 * updates) is not something an inference engine should silently emulate, so
 * training_mode=1 is TDM_ERR_UNSUPPORTED. Opsets before 9 may set spatial=0,
 * where the parameters have one value per (channel, position); that form is
 * handled by the same loop with per-element parameters. The optional extra
 * outputs of old opsets (running and saved statistics) are meaningful only
 * in training; if a graph asks for them they receive the input statistics.
 *
 * Instance norm needs the mean and variance of every plane. Both are taken
 * in two passes (mean, then the mean squared deviation) with eight partial
 * sums, which vectorises and avoids the cancellation of E[x^2] - E[x]^2;
 * values are first shifted by the plane's first element so that data with a
 * large common offset keeps its precision in float.
 * Work is split across (image, channel) planes.
 */
#include <assert.h>
#include <math.h>
#include <string.h>

#include "engine/kernels/gemm.h"
#include "engine/ops/nn_ops.h"
#include "engine/ops/nn_spatial.h"

/* ---- BatchNormalization --------------------------------------------------------- */

typedef struct bn_plan {
    int64_t n, c, vol;
    bool per_element; /* spatial = 0: parameters are [C, spatial...] */
    float eps;
    tdm_act act;
    float alpha, beta;
} bn_plan;

static tdm_status bn_setup(tdm_op_ctx *ctx, bn_plan *p)
{
    memset(p, 0, sizeof *p);
    static const char *const names[] = {"input X", "scale", "bias B", "mean", "var"};
    if (ctx->n_in < 5 || ctx->n_out < 1 || ctx->out[0] == NULL)
        return tdm_op_fail(ctx, TDM_ERR_INVALID_ARG, "needs inputs X, scale, B, mean, var");
    for (int i = 0; i < 5; i++) {
        if (ctx->in[i] == NULL)
            return tdm_op_fail(ctx, TDM_ERR_INVALID_ARG, "input %s is missing", names[i]);
        if (ctx->in[i]->ndim < 0)
            return TDM_ERR_NEEDS_VALUE;
        tdm_status s = tdm_nn_require_f32(ctx, i, names[i]);
        if (s != TDM_OK)
            return s;
    }
    if (tdm_attr_int(ctx->node, "training_mode", 0) != 0)
        return tdm_op_fail(ctx, TDM_ERR_UNSUPPORTED,
                           "training_mode=1 is not supported (inference engine)");
    const tdm_tensor *x = ctx->in[0];
    if (x->ndim < 2)
        return tdm_op_fail(ctx, TDM_ERR_SHAPE, "input X has rank %d; needs N x C x ...",
                           (int)x->ndim);
    p->n = x->dims[0];
    p->c = x->dims[1];
    p->vol = 1;
    for (int i = 2; i < x->ndim; i++)
        p->vol = x->dims[i] < 0 || p->vol < 0 ? -1 : p->vol * x->dims[i];
    p->per_element = ctx->node->opset < 9 && tdm_attr_int(ctx->node, "spatial", 1) == 0;
    for (int i = 1; i < 5; i++) {
        const tdm_tensor *t = ctx->in[i];
        bool ok;
        if (p->per_element) {
            ok = t->ndim == x->ndim - 1;
            for (int d = 0; ok && d < t->ndim; d++)
                ok = x->dims[d + 1] < 0 || t->dims[d] == x->dims[d + 1];
        } else {
            ok = t->ndim == 1 && (p->c < 0 || t->dims[0] == p->c);
        }
        if (!ok) {
            char buf[96];
            return tdm_op_fail(ctx, TDM_ERR_SHAPE, "%s has shape %s; expected one value per %s",
                               names[i], tdm_tensor_shape_str(t, buf, sizeof buf),
                               p->per_element ? "channel and position (spatial=0)" : "channel");
        }
    }
    p->eps = tdm_attr_float(ctx->node, "epsilon", 1e-5f);
    if (!(p->eps >= 0.f))
        return tdm_op_fail(ctx, TDM_ERR_SHAPE, "epsilon %g is negative", (double)p->eps);
    return tdm_nn_fused_act(ctx, &p->act, &p->alpha, &p->beta);
}

tdm_status tdm_batchnorm_infer(tdm_op_ctx *ctx)
{
    bn_plan p;
    tdm_status s = bn_setup(ctx, &p);
    if (s != TDM_OK)
        return s;
    const tdm_tensor *x = ctx->in[0];
    tdm_tensor_set_shape(ctx->out[0], TDM_DTYPE_FLOAT32, x->ndim, x->dims);
    /* Old opsets' optional statistics outputs: mean, var, saved mean, saved var. */
    for (int i = 1; i < ctx->n_out && i < 5; i++)
        if (ctx->out[i] != NULL) {
            const tdm_tensor *src = ctx->in[i % 2 == 1 ? 3 : 4];
            tdm_tensor_set_shape(ctx->out[i], TDM_DTYPE_FLOAT32, src->ndim, src->dims);
        }
    return TDM_OK;
}

typedef struct bn_job {
    const bn_plan *p;
    const float *x, *scale, *bias, *mean, *var;
    float *y;
} bn_job;

static void bn_task(void *arg, int64_t begin, int64_t end, int worker)
{
    const bn_job *j = arg;
    const bn_plan *p = j->p;
    (void)worker;
    for (int64_t plane = begin; plane < end; plane++) {
        int64_t c = plane % p->c;
        const float *x = j->x + plane * p->vol;
        float *y = j->y + plane * p->vol;
        if (p->per_element) {
            int64_t o = c * p->vol;
            for (int64_t i = 0; i < p->vol; i++) {
                float a = j->scale[o + i] / sqrtf(j->var[o + i] + p->eps);
                y[i] = x[i] * a + (j->bias[o + i] - j->mean[o + i] * a);
            }
        } else {
            float a = j->scale[c] / sqrtf(j->var[c] + p->eps);
            float b = j->bias[c] - j->mean[c] * a;
            for (int64_t i = 0; i < p->vol; i++)
                y[i] = x[i] * a + b;
        }
        tdm_act_apply(y, p->vol, p->act, p->alpha, p->beta);
    }
}

tdm_status tdm_batchnorm_run(tdm_op_ctx *ctx)
{
    bn_plan p;
    tdm_status s = bn_setup(ctx, &p);
    if (s != TDM_OK)
        return s == TDM_ERR_NEEDS_VALUE
                   ? tdm_op_fail(ctx, TDM_ERR_INTERNAL, "input shapes unknown at run time")
                   : s;
    bn_job j = {&p,
                ctx->in[0]->data,
                ctx->in[1]->data,
                ctx->in[2]->data,
                ctx->in[3]->data,
                ctx->in[4]->data,
                ctx->out[0]->data};
    assert(j.x != NULL && j.y != NULL);
    for (int i = 1; i < ctx->n_out && i < 5; i++)
        if (ctx->out[i] != NULL && ctx->out[i]->data != NULL) {
            const tdm_tensor *src = ctx->in[i % 2 == 1 ? 3 : 4];
            memcpy(ctx->out[i]->data, src->data, tdm_tensor_nbytes(src));
        }
    int64_t planes = p.n * p.c;
    if (planes > 0)
        tdm_pool_for(ctx->pool, planes, 65536 / (p.vol > 0 ? p.vol : 1) + 1, bn_task, &j);
    return TDM_OK;
}

/* ---- InstanceNormalization ------------------------------------------------------ */

typedef struct in_job {
    const float *x, *scale, *bias;
    float *y;
    int64_t c, vol;
    float eps;
} in_job;

static float sum8(const float *x, int64_t n, float shift)
{
    float acc[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++)
            acc[k] += x[i + k] - shift;
    float s = 0.f;
    for (; i < n; i++)
        s += x[i] - shift;
    return s + (((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])));
}

/* Sum of ((x - shift) - mean)^2. */
static float sqdev8(const float *x, int64_t n, float shift, float mean)
{
    float acc[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) {
            float d = (x[i + k] - shift) - mean;
            acc[k] += d * d;
        }
    float s = 0.f;
    for (; i < n; i++) {
        float d = (x[i] - shift) - mean;
        s += d * d;
    }
    return s + (((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])));
}

static void in_task(void *arg, int64_t begin, int64_t end, int worker)
{
    const in_job *j = arg;
    (void)worker;
    for (int64_t plane = begin; plane < end; plane++) {
        int64_t c = plane % j->c;
        const float *x = j->x + plane * j->vol;
        float *y = j->y + plane * j->vol;
        /* Statistics of x - x[0]: for data far from zero this subtraction is
         * nearly exact, and the mean and deviations stay small. */
        float shift = x[0];
        float mean = sum8(x, j->vol, shift) / (float)j->vol;
        float var = sqdev8(x, j->vol, shift, mean) / (float)j->vol;
        float a = j->scale[c] / sqrtf(var + j->eps);
        float b = j->bias[c];
        for (int64_t i = 0; i < j->vol; i++)
            y[i] = ((x[i] - shift) - mean) * a + b;
    }
}

static tdm_status in_check(tdm_op_ctx *ctx)
{
    static const char *const names[] = {"input X", "scale", "bias B"};
    if (ctx->n_in < 3 || ctx->n_out < 1 || ctx->out[0] == NULL)
        return tdm_op_fail(ctx, TDM_ERR_INVALID_ARG, "needs inputs X, scale, B");
    for (int i = 0; i < 3; i++) {
        if (ctx->in[i] == NULL)
            return tdm_op_fail(ctx, TDM_ERR_INVALID_ARG, "input %s is missing", names[i]);
        if (ctx->in[i]->ndim < 0)
            return TDM_ERR_NEEDS_VALUE;
        tdm_status s = tdm_nn_require_f32(ctx, i, names[i]);
        if (s != TDM_OK)
            return s;
    }
    const tdm_tensor *x = ctx->in[0];
    if (x->ndim < 2)
        return tdm_op_fail(ctx, TDM_ERR_SHAPE, "input X has rank %d; needs N x C x ...",
                           (int)x->ndim);
    for (int i = 1; i < 3; i++) {
        const tdm_tensor *t = ctx->in[i];
        if (t->ndim != 1 || (x->dims[1] >= 0 && t->dims[0] != x->dims[1]))
            return tdm_op_fail(ctx, TDM_ERR_SHAPE, "%s must have shape [%lld]", names[i],
                               (long long)x->dims[1]);
    }
    float eps = tdm_attr_float(ctx->node, "epsilon", 1e-5f);
    if (!(eps >= 0.f))
        return tdm_op_fail(ctx, TDM_ERR_SHAPE, "epsilon %g is negative", (double)eps);
    return TDM_OK;
}

tdm_status tdm_instancenorm_infer(tdm_op_ctx *ctx)
{
    tdm_status s = in_check(ctx);
    if (s != TDM_OK)
        return s;
    const tdm_tensor *x = ctx->in[0];
    tdm_tensor_set_shape(ctx->out[0], TDM_DTYPE_FLOAT32, x->ndim, x->dims);
    return TDM_OK;
}

tdm_status tdm_instancenorm_run(tdm_op_ctx *ctx)
{
    tdm_status s = in_check(ctx);
    if (s != TDM_OK)
        return s == TDM_ERR_NEEDS_VALUE
                   ? tdm_op_fail(ctx, TDM_ERR_INTERNAL, "input shapes unknown at run time")
                   : s;
    const tdm_tensor *x = ctx->in[0];
    in_job j = {x->data,
                ctx->in[1]->data,
                ctx->in[2]->data,
                ctx->out[0]->data,
                x->dims[1],
                1,
                tdm_attr_float(ctx->node, "epsilon", 1e-5f)};
    for (int i = 2; i < x->ndim; i++)
        j.vol *= x->dims[i];
    int64_t planes = x->dims[0] * x->dims[1];
    if (planes > 0 && j.vol > 0)
        tdm_pool_for(ctx->pool, planes, 65536 / j.vol + 1, in_task, &j);
    return TDM_OK;
}

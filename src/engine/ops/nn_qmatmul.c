/*
 * tandem.QMatMul: a MatMul / FusedMatMul whose constant weight the int8 pass
 * (passes/quantize.c) has quantised and packed at load time.
 *
 *   Y[..., N] = act(A[..., K] @ dequant(Wq) + bias)
 *   inputs: A (float32), Wq (int8, packed [np(N)/16, kp(K)/4, 16, 4], see
 *           kernels/qgemm.h), scale (float32 [N], per output channel),
 *           bias (float32 [N], optional)
 *   attributes: activation, alpha, beta (as tandem.FusedMatMul)
 *
 * All of A's leading axes fold into M: the weight is one matrix. prepare
 * sums each packed column once (the zero-point correction); the activations
 * are quantised per row inside tdm_qgemm on every run. The packed layout is
 * the tensor's shape, so infer can check it against K and N exactly and a
 * file or pass that disagrees fails with a message instead of reading past
 * the weights.
 */
#include <float.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "engine/kernels/qgemm.h"
#include "engine/op.h"

extern const tdm_op tdm_ops_quant[];

typedef struct qmm_attrs {
    tdm_act act;
    float alpha, beta;
} qmm_attrs;

static tdm_status qmm_attrs_get(tdm_op_ctx *ctx, qmm_attrs *f)
{
    const char *name = tdm_attr_str(ctx->node, "activation", "");
    if (!tdm_act_from_name(name, &f->act))
        return tdm_op_fail(ctx, TDM_ERR_UNSUPPORTED, "activation '%s' is not supported", name);
    float da = 0.f, db = 0.f;
    switch (f->act) {
    case TDM_ACT_LEAKY_RELU: da = 0.01f; break;
    case TDM_ACT_CLIP:
        da = -FLT_MAX;
        db = FLT_MAX;
        break;
    case TDM_ACT_HARD_SIGMOID:
        da = 0.2f;
        db = 0.5f;
        break;
    default: break;
    }
    f->alpha = tdm_attr_float(ctx->node, "alpha", da);
    f->beta = tdm_attr_float(ctx->node, "beta", db);
    return TDM_OK;
}

/* K, N from the inputs, every shape and dtype checked. */
static tdm_status qmm_geom(tdm_op_ctx *ctx, int64_t *M, int64_t *K, int64_t *N)
{
    if (ctx->n_in < 3 || ctx->n_in > 4 || ctx->n_out < 1 || ctx->out[0] == NULL)
        return tdm_op_fail(ctx, TDM_ERR_INVALID_ARG, "needs 3 or 4 inputs and an output, got %d",
                           ctx->n_in);
    for (int i = 0; i < 3; i++)
        if (ctx->in[i] == NULL)
            return tdm_op_fail(ctx, TDM_ERR_INVALID_ARG, "input %d is required", i);
    const tdm_tensor *a = ctx->in[0], *w = ctx->in[1], *s = ctx->in[2];
    const tdm_tensor *b = ctx->n_in > 3 ? ctx->in[3] : NULL;
    for (int i = 0; i < ctx->n_in; i++)
        if (ctx->in[i] != NULL && ctx->in[i]->ndim < 0)
            return TDM_ERR_NEEDS_VALUE;
    for (int d = 0; d < a->ndim; d++)
        if (a->dims[d] < 0)
            return TDM_ERR_NEEDS_VALUE;
    char sa[96], sw[96];
    if (a->dtype != TDM_DTYPE_FLOAT32 || w->dtype != TDM_DTYPE_INT8 ||
        s->dtype != TDM_DTYPE_FLOAT32 || (b != NULL && b->dtype != TDM_DTYPE_FLOAT32))
        return tdm_op_fail(ctx, TDM_ERR_UNSUPPORTED,
                           "expects float32 A, int8 weights, float32 scale and bias; got %s, %s, "
                           "%s",
                           tdm_dtype_name(a->dtype), tdm_dtype_name(w->dtype),
                           tdm_dtype_name(s->dtype));
    if (a->ndim < 1 || s->ndim != 1 || w->ndim != 4)
        return tdm_op_fail(
            ctx, TDM_ERR_SHAPE, "A %s must have rank >= 1, Wq %s rank 4, scale rank 1",
            tdm_tensor_shape_str(a, sa, sizeof sa), tdm_tensor_shape_str(w, sw, sizeof sw));
    *K = a->dims[a->ndim - 1];
    *N = s->dims[0];
    *M = 1;
    for (int d = 0; d < a->ndim - 1; d++)
        *M *= a->dims[d];
    if (w->dims[0] * TDM_QGEMM_NR != tdm_qgemm_np(*N) ||
        w->dims[1] * TDM_QGEMM_KG != tdm_qgemm_kp(*K) || w->dims[2] != TDM_QGEMM_NR ||
        w->dims[3] != TDM_QGEMM_KG)
        return tdm_op_fail(ctx, TDM_ERR_SHAPE,
                           "packed weights %s do not match K = %lld (A %s) and N = %lld (scale)",
                           tdm_tensor_shape_str(w, sw, sizeof sw), (long long)*K,
                           tdm_tensor_shape_str(a, sa, sizeof sa), (long long)*N);
    if (b != NULL && (b->ndim != 1 || b->dims[0] != *N))
        return tdm_op_fail(ctx, TDM_ERR_SHAPE, "bias %s must be a vector of N = %lld",
                           tdm_tensor_shape_str(b, sw, sizeof sw), (long long)*N);
    return TDM_OK;
}

static tdm_status qmm_prepare(tdm_op_ctx *ctx)
{
    const tdm_tensor *w = ctx->n_in > 2 ? ctx->in[1] : NULL;
    const tdm_tensor *s = ctx->n_in > 2 ? ctx->in[2] : NULL;
    if (w == NULL || s == NULL || w->data == NULL || w->dtype != TDM_DTYPE_INT8 || w->ndim != 4 ||
        s->ndim != 1)
        return TDM_OK; /* not constant: run sums the columns itself */
    int64_t np = w->dims[0] * TDM_QGEMM_NR;
    int64_t kp = w->dims[1] * TDM_QGEMM_KG;
    if (np != tdm_qgemm_np(s->dims[0]) || tdm_tensor_numel(w) != np * kp)
        return TDM_OK; /* infer reports the mismatch */
    int32_t *cs = malloc(sizeof *cs * (size_t)(np > 0 ? np : 1));
    if (cs == NULL)
        return tdm_op_fail(ctx, TDM_ERR_NOMEM, "out of memory for column sums");
    tdm_qgemm_colsums(w->data, np, kp, cs);
    ctx->state = cs;
    return TDM_OK;
}

static void qmm_release(void *state)
{
    free(state);
}

static tdm_status qmm_infer(tdm_op_ctx *ctx)
{
    int64_t M, K, N;
    qmm_attrs f;
    tdm_status st = qmm_geom(ctx, &M, &K, &N);
    if (st == TDM_OK)
        st = qmm_attrs_get(ctx, &f);
    if (st != TDM_OK)
        return st;
    const tdm_tensor *a = ctx->in[0];
    int64_t dims[TDM_MAX_DIMS];
    memcpy(dims, a->dims, sizeof dims[0] * (size_t)a->ndim);
    dims[a->ndim - 1] = N;
    tdm_tensor_set_shape(ctx->out[0], TDM_DTYPE_FLOAT32, a->ndim, dims);
    return TDM_OK;
}

static tdm_status qmm_run(tdm_op_ctx *ctx)
{
    int64_t M, K, N;
    qmm_attrs f;
    tdm_status st = qmm_geom(ctx, &M, &K, &N);
    if (st == TDM_OK)
        st = qmm_attrs_get(ctx, &f);
    if (st != TDM_OK)
        return st;
    const tdm_tensor *w = ctx->in[1], *b = ctx->n_in > 3 ? ctx->in[3] : NULL;
    const int32_t *cs = ctx->state;
    if (cs == NULL) {
        int32_t *tmp = tdm_op_scratch(ctx, sizeof *tmp * (size_t)tdm_qgemm_np(N));
        if (tmp == NULL)
            return tdm_op_fail(ctx, TDM_ERR_NOMEM, "out of memory for column sums");
        tdm_qgemm_colsums(w->data, N, K, tmp);
        cs = tmp;
    }
    tdm_qmat q = {N, K, w->data, ctx->in[2]->data, cs};
    tdm_epilogue ep = {b != NULL ? b->data : NULL, NULL, f.act, f.alpha, f.beta};
    if (!tdm_qgemm(ctx->pool, M, ctx->in[0]->data, K, &q, ctx->out[0]->data, N, &ep))
        return tdm_op_fail(ctx, TDM_ERR_NOMEM, "out of memory quantising %lld x %lld activations",
                           (long long)M, (long long)K);
    return TDM_OK;
}

const tdm_op tdm_ops_quant[] = {
    {"tandem", "QMatMul", qmm_infer, qmm_run, qmm_prepare, qmm_release},
    {NULL, NULL, NULL, NULL, NULL, NULL},
};

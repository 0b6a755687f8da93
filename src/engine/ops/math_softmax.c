/*
 * Softmax, LogSoftmax and Hardmax.
 *
 * The axis is turned into (outer, R, inner): before opset 13 the input is
 * coerced to 2-D at the axis (R is the product of the dims from the axis
 * on, inner is 1); from opset 13 on only that one axis is normalised (inner
 * is the product of the dims after it). Numerically stable form: subtract
 * the maximum, exponentiate, divide by the sum (LogSoftmax: (x - max) -
 * log(sum), two terms of one sign, so results near 0 keep their digits). For float32:
 *   inner == 1: per row, SIMD max, then exp-and-sum in one pass writing the
 *       exponentials to the output, then one divide pass;
 *   inner > 1: blocks of up to 512 columns are processed row by row with
 *       the SIMD element-wise kernels (running max, exp of the difference,
 *       running sum, divide), so the strided axis is never gathered.
 * Work items (outer index, column block) go to the pool for big tensors.
 * float16/bfloat16 go through float32 scratch; float64 has a scalar path.
 */
#include <assert.h>
#include <math.h>
#include <string.h>

#include "engine/ops/math_ops.h"
#include "engine/ops/math_vec.h"

typedef enum smop { S_SOFTMAX, S_LOGSOFTMAX, S_HARDMAX } smop;

#define IB 512

static smop which(const tdm_op_ctx *ctx)
{
    const char *n = ctx->node->op_type;
    if (strcmp(n, "LogSoftmax") == 0)
        return S_LOGSOFTMAX;
    if (strcmp(n, "Hardmax") == 0)
        return S_HARDMAX;
    return S_SOFTMAX;
}

/* (outer, R, inner) for the node's axis semantics. */
static tdm_status split_axis(tdm_op_ctx *ctx, const tdm_tensor *x, int64_t *outer, int64_t *R,
                             int64_t *inner)
{
    const bool legacy = ctx->node->opset > 0 && ctx->node->opset < 13;
    int axis;
    if (x->ndim == 0)
        return tdm_op_fail(ctx, TDM_ERR_SHAPE, "input must have rank >= 1");
    tdm_status s = tdm_math_axis(ctx, "axis", tdm_attr_int(ctx->node, "axis", legacy ? 1 : -1),
                                 x->ndim, &axis);
    if (s != TDM_OK)
        return s;
    *outer = *R = *inner = 1;
    for (int d = 0; d < x->ndim; d++) {
        if (d < axis)
            *outer *= x->dims[d];
        else if (d == axis || legacy)
            *R *= x->dims[d];
        else
            *inner *= x->dims[d];
    }
    return TDM_OK;
}

tdm_status tdm_math_softmax_infer(tdm_op_ctx *ctx)
{
    tdm_status s = tdm_math_check_inputs(ctx, 1);
    if (s != TDM_OK)
        return s;
    if (ctx->n_out < 1 || ctx->out[0] == NULL)
        return tdm_op_fail(ctx, TDM_ERR_INVALID_ARG, "output 0 is required");
    const tdm_tensor *x = ctx->in[0];
    if (!tdm_math_is_float(x->dtype))
        return tdm_op_fail(ctx, TDM_ERR_UNSUPPORTED, "dtype %s is not supported",
                           tdm_dtype_name(x->dtype));
    int64_t o, r, i;
    s = split_axis(ctx, x, &o, &r, &i);
    if (s != TDM_OK)
        return s;
    tdm_tensor_set_shape(ctx->out[0], x->dtype, x->ndim, x->dims);
    return TDM_OK;
}

typedef struct sm_job {
    smop op;
    const float *x;
    float *y;
    int64_t R, inner, nblk;
    const tdm_vec_kernels *vk;
} sm_job;

static void sm_row(const sm_job *j, const float *x, float *y)
{
    const tdm_vec_kernels *vk = j->vk;
    const int64_t R = j->R;
    float m = vk->reduce[TDM_VEC_RMAX](x, R);
    if (j->op == S_SOFTMAX) {
        float s = vk->exp_sum(x, m, y, R);
        vk->binary[TDM_VEC_DIV][TDM_VEC_VS](y, &s, y, R);
    } else {
        /* (x - m) - log(s): both terms <= 0 side by side, so no cancellation
         * where x - (m + log s) would lose the digits of results near 0 */
        float ls = logf(vk->exp_sum(x, m, NULL, R));
        vk->binary[TDM_VEC_SUB][TDM_VEC_VS](x, &m, y, R);
        vk->binary[TDM_VEC_SUB][TDM_VEC_VS](y, &ls, y, R);
    }
}

static void sm_cols(const sm_job *j, const float *x, float *y, int64_t w)
{
    const tdm_vec_kernels *vk = j->vk;
    const int64_t R = j->R, inner = j->inner;
    float m[IB], s[IB];
    memcpy(m, x, (size_t)w * sizeof(float));
    for (int64_t r = 1; r < R; r++)
        vk->binary[TDM_VEC_MAX][TDM_VEC_VV](m, x + r * inner, m, w);
    memset(s, 0, sizeof s);
    if (j->op == S_SOFTMAX) {
        for (int64_t r = 0; r < R; r++) {
            float *yr = y + r * inner;
            vk->binary[TDM_VEC_SUB][TDM_VEC_VV](x + r * inner, m, yr, w);
            vk->unary[TDM_VEC_EXP](yr, yr, w);
            vk->binary[TDM_VEC_ADD][TDM_VEC_VV](s, yr, s, w);
        }
        for (int64_t r = 0; r < R; r++)
            vk->binary[TDM_VEC_DIV][TDM_VEC_VV](y + r * inner, s, y + r * inner, w);
        return;
    }
    /* LogSoftmax needs x again at the end, so the exponentials go to a
     * temporary row (y may alias x) */
    float t[IB];
    for (int64_t r = 0; r < R; r++) {
        vk->binary[TDM_VEC_SUB][TDM_VEC_VV](x + r * inner, m, t, w);
        vk->unary[TDM_VEC_EXP](t, t, w);
        vk->binary[TDM_VEC_ADD][TDM_VEC_VV](s, t, s, w);
    }
    for (int64_t c = 0; c < w; c++)
        s[c] = logf(s[c]);
    for (int64_t r = 0; r < R; r++) {
        vk->binary[TDM_VEC_SUB][TDM_VEC_VV](x + r * inner, m, y + r * inner, w);
        vk->binary[TDM_VEC_SUB][TDM_VEC_VV](y + r * inner, s, y + r * inner, w);
    }
}

static void sm_range(void *arg, int64_t b, int64_t e, int worker)
{
    (void)worker;
    const sm_job *j = arg;
    for (int64_t it = b; it < e; it++) {
        int64_t o = it / j->nblk, blk = it % j->nblk;
        int64_t j0 = blk * IB, w = j->inner - j0 < IB ? j->inner - j0 : IB;
        const float *x = j->x + o * j->R * j->inner + j0;
        float *y = j->y + o * j->R * j->inner + j0;
        if (j->inner == 1)
            sm_row(j, x, y);
        else
            sm_cols(j, x, y, w);
    }
}

static void softmax_f64(smop op, const double *x, double *y, int64_t outer, int64_t R,
                        int64_t inner)
{
    for (int64_t o = 0; o < outer; o++) {
        for (int64_t c = 0; c < inner; c++) {
            const double *xc = x + o * R * inner + c;
            double *yc = y + o * R * inner + c;
            double m = -INFINITY, s = 0;
            for (int64_t r = 0; r < R; r++)
                m = (xc[r * inner] > m || isnan(xc[r * inner])) && !isnan(m) ? xc[r * inner] : m;
            for (int64_t r = 0; r < R; r++)
                s += exp(xc[r * inner] - m);
            for (int64_t r = 0; r < R; r++)
                yc[r * inner] =
                    op == S_SOFTMAX ? exp(xc[r * inner] - m) / s : (xc[r * inner] - m) - log(s);
        }
    }
}

static double load_f(const tdm_tensor *t, int64_t i)
{
    switch (t->dtype) {
    case TDM_DTYPE_FLOAT32: return ((const float *)t->data)[i];
    case TDM_DTYPE_FLOAT64: return ((const double *)t->data)[i];
    case TDM_DTYPE_FLOAT16: return tdm_fp16_to_fp32(((const uint16_t *)t->data)[i]);
    default: return tdm_bf16_to_fp32(((const uint16_t *)t->data)[i]);
    }
}

/* One-hot of the first maximum (NaN counts as the maximum, like argmax). */
static void hardmax(const tdm_tensor *x, tdm_tensor *y, int64_t outer, int64_t R, int64_t inner)
{
    memset(y->data, 0, tdm_tensor_nbytes(y));
    uint16_t one16 =
        x->dtype == TDM_DTYPE_FLOAT16 ? tdm_fp32_to_fp16(1.0f) : tdm_math_fp32_to_bf16(1.0f);
    for (int64_t o = 0; o < outer; o++) {
        for (int64_t c = 0; c < inner; c++) {
            int64_t base = o * R * inner + c, bi = 0;
            double best = R > 0 ? load_f(x, base) : 0;
            for (int64_t r = 1; r < R && !isnan(best); r++) {
                double v = load_f(x, base + r * inner);
                if (v > best || isnan(v)) {
                    best = v;
                    bi = r;
                }
            }
            if (R == 0)
                continue;
            int64_t k = base + bi * inner;
            switch (y->dtype) {
            case TDM_DTYPE_FLOAT32: ((float *)y->data)[k] = 1.0f; break;
            case TDM_DTYPE_FLOAT64: ((double *)y->data)[k] = 1.0; break;
            default: ((uint16_t *)y->data)[k] = one16; break;
            }
        }
    }
}

tdm_status tdm_math_softmax_run(tdm_op_ctx *ctx)
{
    const tdm_tensor *x = ctx->in[0];
    tdm_tensor *y = ctx->out[0];
    int64_t outer, R, inner;
    tdm_status s = split_axis(ctx, x, &outer, &R, &inner);
    if (s != TDM_OK)
        return s;
    const int64_t n = tdm_tensor_numel(x);
    if (n == 0)
        return TDM_OK;
    smop op = which(ctx);
    if (op == S_HARDMAX) {
        hardmax(x, y, outer, R, inner);
        return TDM_OK;
    }
    if (x->dtype == TDM_DTYPE_FLOAT64) {
        softmax_f64(op, x->data, y->data, outer, R, inner);
        return TDM_OK;
    }
    sm_job j = {op, x->data, y->data, R, inner, (inner + IB - 1) / IB, tdm_vec_get()};
    float *buf = NULL;
    if (x->dtype != TDM_DTYPE_FLOAT32) {
        buf = tdm_op_scratch(ctx, (size_t)n * sizeof(float));
        if (buf == NULL)
            return tdm_op_fail(ctx, TDM_ERR_NOMEM, "out of memory for %lld elements", (long long)n);
        (void)tdm_math_convert(x->data, x->dtype, buf, TDM_DTYPE_FLOAT32, n);
        j.x = buf;
        j.y = buf; /* in place: every kernel reads an element before writing it */
    }
    int64_t items = outer * j.nblk;
    tdm_math_parallel(ctx, items, n >= TDM_MATH_PAR_MIN ? 1 : items + 1, sm_range, &j);
    if (buf != NULL)
        (void)tdm_math_convert(buf, TDM_DTYPE_FLOAT32, y->data, y->dtype, n);
    return TDM_OK;
}

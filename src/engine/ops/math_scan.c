/*
 * CumSum and TopK: the two ops that walk one axis in order.
 *
 * CumSum works on (outer, R, inner) and adds whole rows of the inner dims
 * (y_r = y_{r-1} + x_r, or x_{r-1} when exclusive, walking r backwards when
 * reverse), so memory is streamed contiguously whatever the axis; integer
 * sums wrap.
 *
 * TopK selects per slice with a bounded heap whose root is the worst of the
 * k best so far (O(R log k), no full sort when k is small), then heap-sorts
 * the k survivors best first; the output is therefore always sorted, which
 * sorted=0 allows. Order: values, then the lower index first on ties (as
 * ONNX's reference does), NaN counting as larger than every number. Values
 * are copied bit for bit from the input.
 */
#include <assert.h>
#include <math.h>
#include <string.h>

#include "engine/ops/math_ops.h"

/* ---- CumSum -------------------------------------------------------------------------- */

static bool cumsum_dtype_ok(tdm_dtype dt)
{
    return tdm_math_is_float(dt) || tdm_math_is_signed_int(dt) || tdm_math_is_unsigned_int(dt);
}

static tdm_status cumsum_axis(tdm_op_ctx *ctx, int *axis)
{
    const tdm_tensor *a = ctx->in[1];
    if (a->dtype != TDM_DTYPE_INT64 && a->dtype != TDM_DTYPE_INT32)
        return tdm_op_fail(ctx, TDM_ERR_SHAPE, "axis must be int32 or int64, got %s",
                           tdm_dtype_name(a->dtype));
    if (tdm_tensor_numel(a) != 1)
        return tdm_op_fail(ctx, TDM_ERR_SHAPE, "axis must have one element, has %lld",
                           (long long)tdm_tensor_numel(a));
    if (a->data == NULL)
        return TDM_OK; /* checked again at run time */
    return tdm_math_axis(ctx, "axis", tdm_tensor_get_i64(a, 0), ctx->in[0]->ndim, axis);
}

tdm_status tdm_math_cumsum_infer(tdm_op_ctx *ctx)
{
    tdm_status s = tdm_math_check_inputs(ctx, 2);
    if (s != TDM_OK)
        return s;
    if (ctx->n_out < 1 || ctx->out[0] == NULL)
        return tdm_op_fail(ctx, TDM_ERR_INVALID_ARG, "output 0 is required");
    const tdm_tensor *x = ctx->in[0];
    if (!cumsum_dtype_ok(x->dtype))
        return tdm_op_fail(ctx, TDM_ERR_UNSUPPORTED, "dtype %s is not supported",
                           tdm_dtype_name(x->dtype));
    int axis;
    s = cumsum_axis(ctx, &axis);
    if (s != TDM_OK)
        return s;
    tdm_tensor_set_shape(ctx->out[0], x->dtype, x->ndim, x->dims);
    return TDM_OK;
}

#define LD_ID(v) (v)
#define ST_ID(v) (v)
#define ADD_F(a, b) ((a) + (b))
#define ADD_S(a, b) ((int64_t)((uint64_t)(a) + (uint64_t)(b)))
#define ADD_U(a, b) ((a) + (b))

#define DEF_CUMSUM(NAME, T, CT, LD, ST, ADD)                                                       \
    static void NAME(const void *xv, void *yv, int64_t outer, int64_t R, int64_t inner, bool excl, \
                     bool rev)                                                                     \
    {                                                                                              \
        const T *x = xv;                                                                           \
        T *y = yv;                                                                                 \
        for (int64_t o = 0; o < outer; o++) {                                                      \
            const T *xo = x + o * R * inner;                                                       \
            T *yo = y + o * R * inner;                                                             \
            for (int64_t k = 0; k < R; k++) {                                                      \
                int64_t r = rev ? R - 1 - k : k, prev = rev ? r + 1 : r - 1;                       \
                T *yr = yo + r * inner;                                                            \
                if (k == 0) {                                                                      \
                    for (int64_t j = 0; j < inner; j++)                                            \
                        yr[j] = excl ? ST((CT)0) : xo[r * inner + j];                              \
                    continue;                                                                      \
                }                                                                                  \
                const T *yp = yo + prev * inner;                                                   \
                const T *xa = xo + (excl ? prev : r) * inner;                                      \
                for (int64_t j = 0; j < inner; j++)                                                \
                    yr[j] = ST(ADD((CT)LD(yp[j]), (CT)LD(xa[j])));                                 \
            }                                                                                      \
        }                                                                                          \
    }

#define LD_F16(v) tdm_fp16_to_fp32(v)
#define ST_F16(v) tdm_fp32_to_fp16(v)
#define LD_BF16(v) tdm_bf16_to_fp32(v)
#define ST_BF16(v) tdm_math_fp32_to_bf16(v)
DEF_CUMSUM(cs_f32, float, float, LD_ID, ST_ID, ADD_F)
DEF_CUMSUM(cs_f64, double, double, LD_ID, ST_ID, ADD_F)
DEF_CUMSUM(cs_f16, uint16_t, float, LD_F16, ST_F16, ADD_F)
DEF_CUMSUM(cs_bf16, uint16_t, float, LD_BF16, ST_BF16, ADD_F)
DEF_CUMSUM(cs_i8, int8_t, int64_t, LD_ID, (int8_t), ADD_S)
DEF_CUMSUM(cs_i16, int16_t, int64_t, LD_ID, (int16_t), ADD_S)
DEF_CUMSUM(cs_i32, int32_t, int64_t, LD_ID, (int32_t), ADD_S)
DEF_CUMSUM(cs_i64, int64_t, int64_t, LD_ID, ST_ID, ADD_S)
DEF_CUMSUM(cs_u8, uint8_t, uint64_t, LD_ID, (uint8_t), ADD_U)
DEF_CUMSUM(cs_u16, uint16_t, uint64_t, LD_ID, (uint16_t), ADD_U)
DEF_CUMSUM(cs_u32, uint32_t, uint64_t, LD_ID, (uint32_t), ADD_U)
DEF_CUMSUM(cs_u64, uint64_t, uint64_t, LD_ID, ST_ID, ADD_U)

tdm_status tdm_math_cumsum_run(tdm_op_ctx *ctx)
{
    const tdm_tensor *x = ctx->in[0];
    int axis = 0;
    tdm_status s = cumsum_axis(ctx, &axis);
    if (s != TDM_OK)
        return s;
    int64_t outer = 1, R = x->dims[axis], inner = 1;
    for (int d = 0; d < axis; d++)
        outer *= x->dims[d];
    for (int d = axis + 1; d < x->ndim; d++)
        inner *= x->dims[d];
    bool excl = tdm_attr_int(ctx->node, "exclusive", 0) != 0;
    bool rev = tdm_attr_int(ctx->node, "reverse", 0) != 0;
    void *y = ctx->out[0]->data;
    if (tdm_tensor_numel(x) == 0)
        return TDM_OK;
    switch (x->dtype) {
    case TDM_DTYPE_FLOAT32: cs_f32(x->data, y, outer, R, inner, excl, rev); break;
    case TDM_DTYPE_FLOAT64: cs_f64(x->data, y, outer, R, inner, excl, rev); break;
    case TDM_DTYPE_FLOAT16: cs_f16(x->data, y, outer, R, inner, excl, rev); break;
    case TDM_DTYPE_BFLOAT16: cs_bf16(x->data, y, outer, R, inner, excl, rev); break;
    case TDM_DTYPE_INT8: cs_i8(x->data, y, outer, R, inner, excl, rev); break;
    case TDM_DTYPE_INT16: cs_i16(x->data, y, outer, R, inner, excl, rev); break;
    case TDM_DTYPE_INT32: cs_i32(x->data, y, outer, R, inner, excl, rev); break;
    case TDM_DTYPE_INT64: cs_i64(x->data, y, outer, R, inner, excl, rev); break;
    case TDM_DTYPE_UINT8: cs_u8(x->data, y, outer, R, inner, excl, rev); break;
    case TDM_DTYPE_UINT16: cs_u16(x->data, y, outer, R, inner, excl, rev); break;
    case TDM_DTYPE_UINT32: cs_u32(x->data, y, outer, R, inner, excl, rev); break;
    case TDM_DTYPE_UINT64: cs_u64(x->data, y, outer, R, inner, excl, rev); break;
    default: assert(!"dtype checked by infer"); break;
    }
    return TDM_OK;
}

/* ---- TopK ----------------------------------------------------------------------------- */

typedef struct tk_item {
    double f;    /* float key */
    int64_t i;   /* integer key (uint64 bits for unsigned types) */
    int64_t idx; /* position along the axis */
} tk_item;

typedef enum tk_kind { TK_FLOAT, TK_SIGNED, TK_UNSIGNED } tk_kind;

typedef struct tk_order {
    tk_kind kind;
    bool largest;
} tk_order;

/* Value order only: NaN above every number, NaNs equal. */
static int key_cmp(const tk_order *o, const tk_item *a, const tk_item *b)
{
    switch (o->kind) {
    case TK_FLOAT: {
        bool na = isnan(a->f), nb = isnan(b->f);
        if (na || nb)
            return na == nb ? 0 : (na ? 1 : -1);
        return a->f < b->f ? -1 : (a->f > b->f ? 1 : 0);
    }
    case TK_SIGNED: return a->i < b->i ? -1 : (a->i > b->i ? 1 : 0);
    default: {
        uint64_t x = (uint64_t)a->i, z = (uint64_t)b->i;
        return x < z ? -1 : (x > z ? 1 : 0);
    }
    }
}

/* True when a ranks before b in the output. */
static bool better(const tk_order *o, const tk_item *a, const tk_item *b)
{
    int c = key_cmp(o, a, b);
    if (c != 0)
        return o->largest ? c > 0 : c < 0;
    return a->idx < b->idx;
}

/* Heap with the worst item at the root. */
static void sift_down(const tk_order *o, tk_item *h, int64_t n, int64_t i)
{
    for (;;) {
        int64_t l = 2 * i + 1, r = l + 1, w = i;
        if (l < n && better(o, &h[w], &h[l]))
            w = l;
        if (r < n && better(o, &h[w], &h[r]))
            w = r;
        if (w == i)
            return;
        tk_item t = h[i];
        h[i] = h[w];
        h[w] = t;
        i = w;
    }
}

static void sift_up(const tk_order *o, tk_item *h, int64_t i)
{
    while (i > 0) {
        int64_t p = (i - 1) / 2;
        if (!better(o, &h[p], &h[i]))
            return;
        tk_item t = h[i];
        h[i] = h[p];
        h[p] = t;
        i = p;
    }
}

static void load_item(const tdm_tensor *x, int64_t pos, tk_item *it)
{
    switch (x->dtype) {
    case TDM_DTYPE_FLOAT32: it->f = ((const float *)x->data)[pos]; break;
    case TDM_DTYPE_FLOAT64: it->f = ((const double *)x->data)[pos]; break;
    case TDM_DTYPE_FLOAT16: it->f = tdm_fp16_to_fp32(((const uint16_t *)x->data)[pos]); break;
    case TDM_DTYPE_BFLOAT16: it->f = tdm_bf16_to_fp32(((const uint16_t *)x->data)[pos]); break;
    case TDM_DTYPE_UINT64: it->i = (int64_t)((const uint64_t *)x->data)[pos]; break;
    default: it->i = tdm_tensor_get_i64(x, pos); break;
    }
}

static tdm_status topk_k(tdm_op_ctx *ctx, int axis, int64_t *k)
{
    const tdm_tensor *x = ctx->in[0];
    if (ctx->node->opset > 0 && ctx->node->opset < 10) {
        const tdm_attr *a = tdm_node_attr(ctx->node, "k");
        if (a == NULL)
            return tdm_op_fail(ctx, TDM_ERR_INVALID_ARG, "attribute 'k' is missing");
        *k = a->i;
    } else {
        if (ctx->n_in < 2 || ctx->in[1] == NULL)
            return tdm_op_fail(ctx, TDM_ERR_INVALID_ARG, "input K is required");
        const tdm_tensor *kt = ctx->in[1];
        if (kt->dtype != TDM_DTYPE_INT64 && kt->dtype != TDM_DTYPE_INT32)
            return tdm_op_fail(ctx, TDM_ERR_SHAPE, "K must be int64, got %s",
                               tdm_dtype_name(kt->dtype));
        if (tdm_tensor_numel(kt) != 1)
            return tdm_op_fail(ctx, TDM_ERR_SHAPE, "K must have one element, has %lld",
                               (long long)tdm_tensor_numel(kt));
        TDM_NEED_VALUE(ctx, 1);
        *k = tdm_tensor_get_i64(kt, 0);
    }
    if (*k < 0 || *k > x->dims[axis])
        return tdm_op_fail(ctx, TDM_ERR_SHAPE, "k=%lld is out of range for axis %d of size %lld",
                           (long long)*k, axis, (long long)x->dims[axis]);
    return TDM_OK;
}

tdm_status tdm_math_topk_infer(tdm_op_ctx *ctx)
{
    tdm_status s = tdm_math_check_inputs(ctx, 1);
    if (s != TDM_OK)
        return s;
    const tdm_tensor *x = ctx->in[0];
    if (!cumsum_dtype_ok(x->dtype))
        return tdm_op_fail(ctx, TDM_ERR_UNSUPPORTED, "dtype %s is not supported",
                           tdm_dtype_name(x->dtype));
    int axis;
    s = tdm_math_axis(ctx, "axis", tdm_attr_int(ctx->node, "axis", -1), x->ndim, &axis);
    if (s != TDM_OK)
        return s;
    int64_t k;
    s = topk_k(ctx, axis, &k);
    if (s != TDM_OK)
        return s;
    int64_t dims[TDM_MAX_DIMS];
    memcpy(dims, x->dims, sizeof dims);
    dims[axis] = k;
    if (ctx->n_out >= 1 && ctx->out[0] != NULL)
        tdm_tensor_set_shape(ctx->out[0], x->dtype, x->ndim, dims);
    if (ctx->n_out >= 2 && ctx->out[1] != NULL)
        tdm_tensor_set_shape(ctx->out[1], TDM_DTYPE_INT64, x->ndim, dims);
    return TDM_OK;
}

tdm_status tdm_math_topk_run(tdm_op_ctx *ctx)
{
    const tdm_tensor *x = ctx->in[0];
    int axis;
    tdm_status s = tdm_math_axis(ctx, "axis", tdm_attr_int(ctx->node, "axis", -1), x->ndim, &axis);
    if (s != TDM_OK)
        return s;
    int64_t k;
    s = topk_k(ctx, axis, &k);
    if (s != TDM_OK)
        return s;
    int64_t outer = 1, R = x->dims[axis], inner = 1;
    for (int d = 0; d < axis; d++)
        outer *= x->dims[d];
    for (int d = axis + 1; d < x->ndim; d++)
        inner *= x->dims[d];
    if (k == 0 || outer * inner == 0)
        return TDM_OK;
    tk_order ord = {TK_FLOAT, tdm_attr_int(ctx->node, "largest", 1) != 0};
    if (tdm_math_is_signed_int(x->dtype))
        ord.kind = TK_SIGNED;
    else if (tdm_math_is_unsigned_int(x->dtype))
        ord.kind = TK_UNSIGNED;
    tk_item *h = tdm_op_scratch(ctx, (size_t)k * sizeof *h);
    if (h == NULL)
        return tdm_op_fail(ctx, TDM_ERR_NOMEM, "out of memory for k=%lld", (long long)k);
    const size_t es = tdm_dtype_size(x->dtype);
    char *vals = ctx->n_out >= 1 && ctx->out[0] != NULL ? ctx->out[0]->data : NULL;
    int64_t *idxs = ctx->n_out >= 2 && ctx->out[1] != NULL ? ctx->out[1]->data : NULL;
    for (int64_t o = 0; o < outer; o++) {
        for (int64_t j = 0; j < inner; j++) {
            const int64_t base = o * R * inner + j;
            int64_t n = 0;
            for (int64_t r = 0; r < R; r++) {
                tk_item it = {0, 0, r};
                load_item(x, base + r * inner, &it);
                if (n < k) {
                    h[n] = it;
                    sift_up(&ord, h, n);
                    n++;
                } else if (better(&ord, &it, &h[0])) {
                    h[0] = it;
                    sift_down(&ord, h, n, 0);
                }
            }
            /* heap sort: repeatedly move the worst to the end */
            for (int64_t m = n - 1; m > 0; m--) {
                tk_item t = h[0];
                h[0] = h[m];
                h[m] = t;
                sift_down(&ord, h, m, 0);
            }
            const int64_t obase = o * k * inner + j;
            for (int64_t r = 0; r < k; r++) {
                int64_t dst = obase + r * inner;
                if (vals != NULL)
                    memcpy(vals + (size_t)dst * es,
                           (const char *)x->data + (size_t)(base + h[r].idx * inner) * es, es);
                if (idxs != NULL)
                    idxs[dst] = h[r].idx;
            }
        }
    }
    return TDM_OK;
}

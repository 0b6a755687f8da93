/*
 * Index-driven ops: Gather, GatherElements, GatherND, ScatterElements (and
 * its deprecated name Scatter), ScatterND, OneHot, NonZero, Compress and
 * ReverseSequence.
 *
 * Indices come from tensors a user controls, so every index is range checked
 * (negative ones count from the end) and an out-of-range index is an error
 * naming its position, never an out-of-bounds access. Gather and GatherND
 * copy whole slices with memcpy; the per-element ops first compute a chunk
 * of source (or destination) element offsets and then move the chunk with a
 * loop typed by element size, which keeps the dtype out of the inner loop.
 * Scatter reductions (add, mul, max, min) are the one place that needs
 * arithmetic; they are provided for float32/float64/int32/int64.
 */
#include <string.h>

#include "engine/ops/shape_ops.h"

/* Offsets are computed and moved in chunks of this many elements. */
#define IDX_CHUNK 256

/* ---- typed offset loops ------------------------------------------------------- */

#define OFFSET_LOOPS(T, SUF)                                                                   \
    static void gather_offs_##SUF(void *dst, const void *src, const int64_t *offs, int64_t n)  \
    {                                                                                          \
        T *d = dst;                                                                            \
        const T *s = src;                                                                      \
        for (int64_t i = 0; i < n; i++)                                                        \
            d[i] = s[offs[i]];                                                                 \
    }                                                                                          \
    static void scatter_offs_##SUF(void *dst, const void *src, const int64_t *offs, int64_t n) \
    {                                                                                          \
        T *d = dst;                                                                            \
        const T *s = src;                                                                      \
        for (int64_t i = 0; i < n; i++)                                                        \
            d[offs[i]] = s[i];                                                                 \
    }
OFFSET_LOOPS(uint8_t, 1)
OFFSET_LOOPS(uint16_t, 2)
OFFSET_LOOPS(uint32_t, 4)
OFFSET_LOOPS(uint64_t, 8)

typedef void (*offs_fn)(void *, const void *, const int64_t *, int64_t);

static offs_fn gather_fn(size_t es)
{
    switch (es) {
    case 1: return gather_offs_1;
    case 2: return gather_offs_2;
    case 4: return gather_offs_4;
    case 8: return gather_offs_8;
    default: return NULL;
    }
}

static offs_fn scatter_fn(size_t es)
{
    switch (es) {
    case 1: return scatter_offs_1;
    case 2: return scatter_offs_2;
    case 4: return scatter_offs_4;
    case 8: return scatter_offs_8;
    default: return NULL;
    }
}

/* Index i of an int32/int64 tensor. */
static inline int64_t index_at(const tdm_tensor *t, int64_t i)
{
    return t->dtype == TDM_DTYPE_INT64 ? ((const int64_t *)t->data)[i]
                                       : ((const int32_t *)t->data)[i];
}

static tdm_status check_index_dtype(tdm_op_ctx *ctx, const tdm_tensor *t, const char *what)
{
    if (t->dtype != TDM_DTYPE_INT64 && t->dtype != TDM_DTYPE_INT32)
        return tdm_op_fail(ctx, TDM_ERR_SHAPE, "%s must be int32 or int64, got %s", what,
                           tdm_dtype_name(t->dtype));
    return TDM_OK;
}

/* Normalises a possibly negative index into [0, n). */
static inline bool fix_index(int64_t *v, int64_t n)
{
    if (*v < 0)
        *v += n;
    return *v >= 0 && *v < n;
}

static tdm_status index_error(tdm_op_ctx *ctx, int64_t pos, int64_t v, int64_t n)
{
    return tdm_op_fail(ctx, TDM_ERR_INVALID_ARG,
                       "index %lld at position %lld is out of range [%lld, %lld)", (long long)v,
                       (long long)pos, (long long)-n, (long long)n);
}

/* ---- Gather -------------------------------------------------------------------- */

tdm_status tdm_op_gather_infer(tdm_op_ctx *ctx)
{
    const tdm_tensor *x, *ind;
    tdm_status s = tdm_shp_input(ctx, 0, "data", true, &x);
    if (s == TDM_OK)
        s = tdm_shp_input(ctx, 1, "indices", false, &ind);
    if (s == TDM_OK)
        s = check_index_dtype(ctx, ind, "indices");
    if (s != TDM_OK)
        return s;
    if (x->ndim < 1)
        return tdm_op_fail(ctx, TDM_ERR_SHAPE, "data must have rank >= 1");
    int axis;
    s = tdm_shp_axis(ctx, tdm_attr_int(ctx->node, "axis", 0), x->ndim, "axis", &axis);
    if (s != TDM_OK)
        return s;
    int r = x->ndim - 1 + ind->ndim;
    if (r > TDM_MAX_DIMS)
        return tdm_op_fail(ctx, TDM_ERR_UNSUPPORTED, "output rank %d exceeds %d", r, TDM_MAX_DIMS);
    int64_t d[TDM_MAX_DIMS];
    int j = 0;
    for (int k = 0; k < axis; k++)
        d[j++] = x->dims[k];
    for (int k = 0; k < ind->ndim; k++)
        d[j++] = ind->dims[k];
    for (int k = axis + 1; k < x->ndim; k++)
        d[j++] = x->dims[k];
    return tdm_shp_set_out(ctx, 0, x->dtype, r, d);
}

typedef struct gather_job {
    const tdm_tensor *x, *ind;
    char *dst;
    int64_t n_idx, axis_len;
    size_t inner_bytes;
} gather_job;

/* Items are (outer, index) pairs: each copies one inner block. */
static void gather_items(void *arg, int64_t begin, int64_t end, int worker)
{
    const gather_job *j = arg;
    (void)worker;
    const char *src = j->x->data;
    size_t ib = j->inner_bytes;
    for (int64_t it = begin; it < end; it++) {
        int64_t o = it / j->n_idx, i = it % j->n_idx;
        int64_t v = index_at(j->ind, i);
        if (v < 0)
            v += j->axis_len;
        const char *s = src + ((size_t)o * (size_t)j->axis_len + (size_t)v) * ib;
        char *d = j->dst + (size_t)it * ib;
        switch (ib) { /* constant sizes let the compiler inline the copy */
        case 4: memcpy(d, s, 4); break;
        case 8: memcpy(d, s, 8); break;
        default: memcpy(d, s, ib); break;
        }
    }
}

tdm_status tdm_op_gather_run(tdm_op_ctx *ctx)
{
    const tdm_tensor *x = ctx->in[0], *ind = ctx->in[1];
    tdm_tensor *y = ctx->out[0];
    int axis;
    tdm_status s = tdm_shp_axis(ctx, tdm_attr_int(ctx->node, "axis", 0), x->ndim, "axis", &axis);
    if (s != TDM_OK)
        return s;
    int64_t n_idx = tdm_tensor_numel(ind), len = x->dims[axis];
    for (int64_t i = 0; i < n_idx; i++) {
        int64_t v = index_at(ind, i);
        if (!fix_index(&v, len))
            return index_error(ctx, i, index_at(ind, i), len);
    }
    int64_t outer = 1, inner = 1;
    for (int k = 0; k < axis; k++)
        outer *= x->dims[k];
    for (int k = axis + 1; k < x->ndim; k++)
        inner *= x->dims[k];
    gather_job j = {x, ind, y->data, n_idx, len, (size_t)inner * tdm_dtype_size(x->dtype)};
    int64_t items = outer * n_idx;
    if (items == 0 || j.inner_bytes == 0)
        return TDM_OK;
    if (ctx->pool == NULL || tdm_tensor_nbytes(y) < TDM_SHP_PARALLEL_BYTES)
        gather_items(&j, 0, items, 0);
    else
        tdm_pool_for(ctx->pool, items, 1 + (int64_t)(((size_t)1 << 13) / j.inner_bytes),
                     gather_items, &j);
    return TDM_OK;
}

/* ---- GatherElements / ScatterElements shared walk --------------------------------- */

/*
 * Walks the index tensor `ind` (shape idims, rank r) and calls flush with
 * chunks of data offsets: offset = sum over k of coordinate k * data stride
 * k, where the coordinate along `axis` is the index value instead.
 */
typedef tdm_status (*chunk_fn)(void *arg, const int64_t *offs, int64_t first, int64_t n);

static tdm_status walk_elements(tdm_op_ctx *ctx, const tdm_tensor *x, const tdm_tensor *ind,
                                int axis, chunk_fn flush, void *arg)
{
    int r = ind->ndim;
    int64_t xs[TDM_MAX_DIMS], idx[TDM_MAX_DIMS] = {0};
    tdm_shp_strides(x->dims, x->ndim, xs);
    int64_t total = tdm_tensor_numel(ind), base = 0, len = x->dims[axis];
    int64_t offs[IDX_CHUNK];
    int64_t fill = 0, first = 0;
    for (int64_t i = 0; i < total; i++) {
        int64_t v = index_at(ind, i);
        if (!fix_index(&v, len))
            return index_error(ctx, i, index_at(ind, i), len);
        offs[fill++] = base + v * xs[axis];
        if (fill == IDX_CHUNK) {
            tdm_status s = flush(arg, offs, first, fill);
            if (s != TDM_OK)
                return s;
            first += fill;
            fill = 0;
        }
        for (int k = r - 1; k >= 0; k--) {
            if (k != axis)
                base += xs[k];
            if (++idx[k] < ind->dims[k])
                break;
            if (k != axis)
                base -= xs[k] * ind->dims[k];
            idx[k] = 0;
        }
    }
    return fill > 0 ? flush(arg, offs, first, fill) : TDM_OK;
}

static tdm_status elements_check(tdm_op_ctx *ctx, const tdm_tensor *x, const tdm_tensor *ind,
                                 int *axis)
{
    tdm_status s = check_index_dtype(ctx, ind, "indices");
    if (s != TDM_OK)
        return s;
    if (x->ndim < 1 || ind->ndim != x->ndim)
        return tdm_op_fail(ctx, TDM_ERR_SHAPE, "indices rank %d must equal data rank %d (>= 1)",
                           (int)ind->ndim, (int)x->ndim);
    s = tdm_shp_axis(ctx, tdm_attr_int(ctx->node, "axis", 0), x->ndim, "axis", axis);
    if (s != TDM_OK)
        return s;
    for (int k = 0; k < x->ndim; k++)
        if (k != *axis && ind->dims[k] > x->dims[k])
            return tdm_op_fail(ctx, TDM_ERR_SHAPE, "indices dim %d (%lld) exceeds data's (%lld)", k,
                               (long long)ind->dims[k], (long long)x->dims[k]);
    return TDM_OK;
}

tdm_status tdm_op_gather_elements_infer(tdm_op_ctx *ctx)
{
    const tdm_tensor *x, *ind;
    int axis;
    tdm_status s = tdm_shp_input(ctx, 0, "data", true, &x);
    if (s == TDM_OK)
        s = tdm_shp_input(ctx, 1, "indices", false, &ind);
    if (s == TDM_OK)
        s = elements_check(ctx, x, ind, &axis);
    if (s != TDM_OK)
        return s;
    return tdm_shp_set_out(ctx, 0, x->dtype, ind->ndim, ind->dims);
}

typedef struct move_job {
    offs_fn fn;
    char *dst;
    const char *src;
    size_t es;
} move_job;

static tdm_status gather_chunk(void *arg, const int64_t *offs, int64_t first, int64_t n)
{
    const move_job *j = arg;
    j->fn(j->dst + (size_t)first * j->es, j->src, offs, n);
    return TDM_OK;
}

tdm_status tdm_op_gather_elements_run(tdm_op_ctx *ctx)
{
    const tdm_tensor *x = ctx->in[0], *ind = ctx->in[1];
    int axis;
    tdm_status s = elements_check(ctx, x, ind, &axis);
    if (s != TDM_OK)
        return s;
    size_t es = tdm_dtype_size(x->dtype);
    move_job j = {gather_fn(es), ctx->out[0]->data, x->data, es};
    if (j.fn == NULL)
        return tdm_op_fail(ctx, TDM_ERR_UNSUPPORTED, "dtype %s", tdm_dtype_name(x->dtype));
    return walk_elements(ctx, x, ind, axis, gather_chunk, &j);
}

/* ---- scatter reductions -------------------------------------------------------------- */

enum { RED_NONE, RED_ADD, RED_MUL, RED_MAX, RED_MIN };

static tdm_status reduction_mode(tdm_op_ctx *ctx, tdm_dtype dt, int *op)
{
    const char *r = tdm_attr_str(ctx->node, "reduction", "none");
    if (strcmp(r, "none") == 0)
        *op = RED_NONE;
    else if (strcmp(r, "add") == 0)
        *op = RED_ADD;
    else if (strcmp(r, "mul") == 0)
        *op = RED_MUL;
    else if (strcmp(r, "max") == 0)
        *op = RED_MAX;
    else if (strcmp(r, "min") == 0)
        *op = RED_MIN;
    else
        return tdm_op_fail(ctx, TDM_ERR_INVALID_ARG, "reduction '%s' is not supported", r);
    if (*op != RED_NONE && dt != TDM_DTYPE_FLOAT32 && dt != TDM_DTYPE_FLOAT64 &&
        dt != TDM_DTYPE_INT32 && dt != TDM_DTYPE_INT64)
        return tdm_op_fail(ctx, TDM_ERR_UNSUPPORTED, "reduction '%s' on %s", r, tdm_dtype_name(dt));
    return TDM_OK;
}

/* Integer add/mul wrap (two's complement) like the reference, without UB. */
#define RED_LOOP(T, SUF, ADD, MUL)                                                               \
    static void reduce_##SUF(void *dst, const void *src, const int64_t *offs, int64_t n, int op) \
    {                                                                                            \
        T *d = dst;                                                                              \
        const T *s = src;                                                                        \
        for (int64_t i = 0; i < n; i++) {                                                        \
            T a = d[offs[i]], b = s[i];                                                          \
            switch (op) {                                                                        \
            case RED_ADD: a = ADD; break;                                                        \
            case RED_MUL: a = MUL; break;                                                        \
            case RED_MAX: a = b > a ? b : a; break;                                              \
            case RED_MIN: a = b < a ? b : a; break;                                              \
            default: a = b; break;                                                               \
            }                                                                                    \
            d[offs[i]] = a;                                                                      \
        }                                                                                        \
    }
RED_LOOP(float, f32, a + b, a *b)
RED_LOOP(double, f64, a + b, a *b)
RED_LOOP(int32_t, i32, (int32_t)((uint32_t)a + (uint32_t)b), (int32_t)((uint32_t)a *(uint32_t)b))
RED_LOOP(int64_t, i64, (int64_t)((uint64_t)a + (uint64_t)b), (int64_t)((uint64_t)a *(uint64_t)b))

typedef struct scatter_job {
    tdm_dtype dt;
    int op;
    char *dst;
    const char *upd;
    size_t es;
} scatter_job;

static tdm_status scatter_chunk(void *arg, const int64_t *offs, int64_t first, int64_t n)
{
    const scatter_job *j = arg;
    const char *src = j->upd + (size_t)first * j->es;
    switch (j->op == RED_NONE ? TDM_DTYPE_UNDEFINED : j->dt) {
    case TDM_DTYPE_FLOAT32: reduce_f32(j->dst, src, offs, n, j->op); break;
    case TDM_DTYPE_FLOAT64: reduce_f64(j->dst, src, offs, n, j->op); break;
    case TDM_DTYPE_INT32: reduce_i32(j->dst, src, offs, n, j->op); break;
    case TDM_DTYPE_INT64: reduce_i64(j->dst, src, offs, n, j->op); break;
    default: scatter_fn(j->es)(j->dst, src, offs, n); break;
    }
    return TDM_OK;
}

/* ---- ScatterElements ------------------------------------------------------------------ */

static tdm_status scatter_inputs(tdm_op_ctx *ctx, const tdm_tensor **x, const tdm_tensor **ind,
                                 const tdm_tensor **upd)
{
    tdm_status s = tdm_shp_input(ctx, 0, "data", true, x);
    if (s == TDM_OK)
        s = tdm_shp_input(ctx, 1, "indices", false, ind);
    if (s == TDM_OK)
        s = tdm_shp_input(ctx, 2, "updates", true, upd);
    if (s == TDM_OK)
        s = check_index_dtype(ctx, *ind, "indices");
    if (s != TDM_OK)
        return s;
    if ((*upd)->dtype != (*x)->dtype)
        return tdm_op_fail(ctx, TDM_ERR_SHAPE, "updates are %s, data is %s",
                           tdm_dtype_name((*upd)->dtype), tdm_dtype_name((*x)->dtype));
    if (scatter_fn(tdm_dtype_size((*x)->dtype)) == NULL)
        return tdm_op_fail(ctx, TDM_ERR_UNSUPPORTED, "dtype %s", tdm_dtype_name((*x)->dtype));
    int op;
    return reduction_mode(ctx, (*x)->dtype, &op);
}

tdm_status tdm_op_scatter_elements_infer(tdm_op_ctx *ctx)
{
    const tdm_tensor *x, *ind, *upd;
    tdm_status s = scatter_inputs(ctx, &x, &ind, &upd);
    if (s != TDM_OK)
        return s;
    int axis;
    s = elements_check(ctx, x, ind, &axis);
    if (s != TDM_OK)
        return s;
    bool same = upd->ndim == ind->ndim;
    for (int k = 0; same && k < ind->ndim; k++)
        same = upd->dims[k] == ind->dims[k];
    if (!same)
        return tdm_op_fail(ctx, TDM_ERR_SHAPE, "updates and indices must have the same shape");
    return tdm_shp_set_out(ctx, 0, x->dtype, x->ndim, x->dims);
}

tdm_status tdm_op_scatter_elements_run(tdm_op_ctx *ctx)
{
    const tdm_tensor *x = ctx->in[0], *ind = ctx->in[1], *upd = ctx->in[2];
    tdm_tensor *y = ctx->out[0];
    int axis, op;
    tdm_status s = elements_check(ctx, x, ind, &axis);
    if (s == TDM_OK)
        s = reduction_mode(ctx, x->dtype, &op);
    if (s != TDM_OK)
        return s;
    tdm_shp_copy_bytes(y->data, x->data, tdm_tensor_nbytes(x), ctx->pool);
    scatter_job j = {x->dtype, op, y->data, upd->data, tdm_dtype_size(x->dtype)};
    return walk_elements(ctx, x, ind, axis, scatter_chunk, &j);
}

/* ---- GatherND / ScatterND ---------------------------------------------------------------- */

/* Data offset (elements) of index tuple t, checked; dims from data axis `from`. */
static tdm_status nd_offset(tdm_op_ctx *ctx, const tdm_tensor *x, const int64_t *xs,
                            const tdm_tensor *ind, int64_t t, int64_t last, int from, int64_t *off)
{
    int64_t o = 0;
    for (int64_t j = 0; j < last; j++) {
        int64_t v = index_at(ind, t * last + j);
        int64_t n = x->dims[from + j];
        if (!fix_index(&v, n))
            return index_error(ctx, t * last + j, index_at(ind, t * last + j), n);
        o += v * xs[from + j];
    }
    *off = o;
    return TDM_OK;
}

tdm_status tdm_op_gather_nd_infer(tdm_op_ctx *ctx)
{
    const tdm_tensor *x, *ind;
    tdm_status s = tdm_shp_input(ctx, 0, "data", true, &x);
    if (s == TDM_OK)
        s = tdm_shp_input(ctx, 1, "indices", false, &ind);
    if (s == TDM_OK)
        s = check_index_dtype(ctx, ind, "indices");
    if (s != TDM_OK)
        return s;
    int64_t b = tdm_attr_int(ctx->node, "batch_dims", 0);
    int r = x->ndim, q = ind->ndim;
    if (r < 1 || q < 1)
        return tdm_op_fail(ctx, TDM_ERR_SHAPE, "data and indices must have rank >= 1");
    if (b < 0 || b >= q || b >= r)
        return tdm_op_fail(ctx, TDM_ERR_INVALID_ARG, "batch_dims %lld is out of range",
                           (long long)b);
    int64_t last = ind->dims[q - 1];
    if (last > r - b)
        return tdm_op_fail(ctx, TDM_ERR_SHAPE, "index tuples of %lld exceed data rank %d - %lld",
                           (long long)last, r, (long long)b);
    for (int k = 0; k < b; k++)
        if (ind->dims[k] != x->dims[k])
            return tdm_op_fail(ctx, TDM_ERR_SHAPE, "batch dim %d differs: %lld vs %lld", k,
                               (long long)ind->dims[k], (long long)x->dims[k]);
    int64_t d[2 * TDM_MAX_DIMS];
    int n = 0;
    for (int k = 0; k < q - 1; k++)
        d[n++] = ind->dims[k];
    for (int64_t k = b + last; k < r; k++)
        d[n++] = x->dims[k];
    return tdm_shp_set_out(ctx, 0, x->dtype, n, d);
}

tdm_status tdm_op_gather_nd_run(tdm_op_ctx *ctx)
{
    const tdm_tensor *x = ctx->in[0], *ind = ctx->in[1];
    tdm_tensor *y = ctx->out[0];
    int b = (int)tdm_attr_int(ctx->node, "batch_dims", 0);
    int q = ind->ndim;
    int64_t last = ind->dims[q - 1];
    int64_t xs[TDM_MAX_DIMS];
    tdm_shp_strides(x->dims, x->ndim, xs);
    int64_t slice = 1, tuples = 1, per_batch = 1;
    for (int64_t k = b + last; k < x->ndim; k++)
        slice *= x->dims[k];
    for (int k = 0; k < q - 1; k++)
        tuples *= ind->dims[k];
    for (int k = b; k < q - 1; k++)
        per_batch *= ind->dims[k];
    int64_t batch_stride = b > 0 ? xs[b - 1] : 0;
    size_t es = tdm_dtype_size(x->dtype), sb = (size_t)slice * es;
    for (int64_t t = 0; t < tuples; t++) {
        int64_t off = 0;
        tdm_status s = nd_offset(ctx, x, xs, ind, t, last, b, &off);
        if (s != TDM_OK)
            return s;
        off += (per_batch > 0 ? t / per_batch : 0) * batch_stride;
        if (sb > 0)
            memcpy((char *)y->data + (size_t)t * sb, (const char *)x->data + (size_t)off * es, sb);
    }
    return TDM_OK;
}

tdm_status tdm_op_scatter_nd_infer(tdm_op_ctx *ctx)
{
    const tdm_tensor *x, *ind, *upd;
    tdm_status s = scatter_inputs(ctx, &x, &ind, &upd);
    if (s != TDM_OK)
        return s;
    int r = x->ndim, q = ind->ndim;
    if (r < 1 || q < 1)
        return tdm_op_fail(ctx, TDM_ERR_SHAPE, "data and indices must have rank >= 1");
    int64_t last = ind->dims[q - 1];
    if (last > r)
        return tdm_op_fail(ctx, TDM_ERR_SHAPE, "index tuples of %lld exceed data rank %d",
                           (long long)last, r);
    /* updates: indices.shape[:-1] + data.shape[last:] */
    int64_t want = q - 1 + r - last;
    bool ok = upd->ndim == want;
    for (int k = 0; ok && k < q - 1; k++)
        ok = upd->dims[k] == ind->dims[k];
    for (int64_t k = last; ok && k < r; k++)
        ok = upd->dims[q - 1 + k - last] == x->dims[k];
    if (!ok)
        return tdm_op_fail(ctx, TDM_ERR_SHAPE, "updates shape does not match indices and data");
    return tdm_shp_set_out(ctx, 0, x->dtype, x->ndim, x->dims);
}

tdm_status tdm_op_scatter_nd_run(tdm_op_ctx *ctx)
{
    const tdm_tensor *x = ctx->in[0], *ind = ctx->in[1], *upd = ctx->in[2];
    tdm_tensor *y = ctx->out[0];
    int op;
    tdm_status s = reduction_mode(ctx, x->dtype, &op);
    if (s != TDM_OK)
        return s;
    tdm_shp_copy_bytes(y->data, x->data, tdm_tensor_nbytes(x), ctx->pool);
    int q = ind->ndim;
    int64_t last = ind->dims[q - 1];
    int64_t xs[TDM_MAX_DIMS];
    tdm_shp_strides(x->dims, x->ndim, xs);
    int64_t slice = 1, tuples = 1;
    for (int64_t k = last; k < x->ndim; k++)
        slice *= x->dims[k];
    for (int k = 0; k < q - 1; k++)
        tuples *= ind->dims[k];
    size_t es = tdm_dtype_size(x->dtype);
    scatter_job j = {x->dtype, op, y->data, upd->data, es};
    int64_t offs[IDX_CHUNK];
    for (int64_t t = 0; t < tuples; t++) {
        int64_t off = 0;
        s = nd_offset(ctx, x, xs, ind, t, last, 0, &off);
        if (s != TDM_OK)
            return s;
        if (op == RED_NONE) {
            if (slice > 0)
                memcpy((char *)y->data + (size_t)off * es,
                       (const char *)upd->data + (size_t)(t * slice) * es, (size_t)slice * es);
            continue;
        }
        for (int64_t e0 = 0; e0 < slice; e0 += IDX_CHUNK) {
            int64_t n = slice - e0 < IDX_CHUNK ? slice - e0 : IDX_CHUNK;
            for (int64_t e = 0; e < n; e++)
                offs[e] = off + e0 + e;
            scatter_chunk(&j, offs, t * slice + e0, n);
        }
    }
    return TDM_OK;
}

/* ---- OneHot ------------------------------------------------------------------------------ */

static tdm_status one_hot_depth(tdm_op_ctx *ctx, int64_t *depth)
{
    const tdm_tensor *dt;
    tdm_status s = tdm_shp_input(ctx, 1, "depth", true, &dt);
    if (s != TDM_OK)
        return s;
    TDM_NEED_VALUE(ctx, 1);
    if (tdm_tensor_numel(dt) != 1)
        return tdm_op_fail(ctx, TDM_ERR_SHAPE, "depth must have one element");
    double v = tdm_tensor_get_f64(dt, 0);
    if (!(v >= 1 && v < 1e15))
        return tdm_op_fail(ctx, TDM_ERR_INVALID_ARG, "depth %g is invalid", v);
    *depth = (int64_t)v;
    return TDM_OK;
}

tdm_status tdm_op_one_hot_infer(tdm_op_ctx *ctx)
{
    const tdm_tensor *ind, *vals;
    tdm_status s = tdm_shp_input(ctx, 0, "indices", true, &ind);
    if (s == TDM_OK)
        s = tdm_shp_input(ctx, 2, "values", true, &vals);
    if (s != TDM_OK)
        return s;
    int64_t depth;
    s = one_hot_depth(ctx, &depth);
    if (s != TDM_OK)
        return s;
    if (tdm_tensor_numel(vals) != 2)
        return tdm_op_fail(ctx, TDM_ERR_SHAPE, "values must have two elements [off, on]");
    int r = ind->ndim + 1, axis;
    if (r > TDM_MAX_DIMS)
        return tdm_op_fail(ctx, TDM_ERR_UNSUPPORTED, "output rank %d exceeds %d", r, TDM_MAX_DIMS);
    s = tdm_shp_axis(ctx, tdm_attr_int(ctx->node, "axis", -1), r, "axis", &axis);
    if (s != TDM_OK)
        return s;
    int64_t d[TDM_MAX_DIMS];
    for (int k = 0, j = 0; k < r; k++)
        d[k] = k == axis ? depth : ind->dims[j++];
    return tdm_shp_set_out(ctx, 0, vals->dtype, r, d);
}

tdm_status tdm_op_one_hot_run(tdm_op_ctx *ctx)
{
    const tdm_tensor *ind = ctx->in[0], *vals = ctx->in[2];
    tdm_tensor *y = ctx->out[0];
    int64_t depth;
    tdm_status s = one_hot_depth(ctx, &depth);
    if (s != TDM_OK)
        return s;
    int axis;
    s = tdm_shp_axis(ctx, tdm_attr_int(ctx->node, "axis", -1), y->ndim, "axis", &axis);
    if (s != TDM_OK)
        return s;
    size_t es = tdm_dtype_size(y->dtype);
    const char *off = vals->data, *on = off + es;
    tdm_shp_fill(y->data, off, es, tdm_tensor_numel(y));
    int64_t n = tdm_tensor_numel(ind);
    int64_t *iv = tdm_op_scratch(ctx, (size_t)(n > 0 ? n : 1) * sizeof *iv);
    if (iv == NULL)
        return tdm_op_fail(ctx, TDM_ERR_NOMEM, "out of memory");
    s = tdm_shp_indices_i64(ctx, ind, "indices", iv);
    if (s != TDM_OK)
        return s;
    int64_t inner = 1;
    for (int k = axis; k < ind->ndim; k++)
        inner *= ind->dims[k];
    for (int64_t i = 0; i < n; i++) {
        int64_t v = iv[i];
        if (!fix_index(&v, depth))
            continue; /* out-of-range indices give an all-off row, as specified */
        int64_t o = i / inner, p = i % inner;
        memcpy((char *)y->data + (size_t)((o * depth + v) * inner + p) * es, on, es);
    }
    return TDM_OK;
}

/* ---- NonZero ----------------------------------------------------------------------------- */

/* Writes coordinate k of the j-th hit to out[k * nnz + j]; rank 0 has one row of zeros. */
static inline void unravel(int64_t i, const int64_t *dims, int nd, int64_t *out, int64_t nnz,
                           int64_t j)
{
    if (nd == 0) {
        out[j] = 0;
        return;
    }
    for (int k = nd - 1; k >= 0; k--) {
        out[k * nnz + j] = i % dims[k];
        i /= dims[k];
    }
}

#define NZ_SCAN(T, SUF, TEST)                                                       \
    static int64_t nz_##SUF(const void *data, int64_t n, int64_t *out, int64_t nnz, \
                            const int64_t *dims, int nd)                            \
    {                                                                               \
        const T *p = data;                                                          \
        int64_t j = 0;                                                              \
        for (int64_t i = 0; i < n; i++) {                                           \
            T v = p[i];                                                             \
            if (TEST) {                                                             \
                if (out != NULL)                                                    \
                    unravel(i, dims, nd, out, nnz, j);                              \
                j++;                                                                \
            }                                                                       \
        }                                                                           \
        return j;                                                                   \
    }
NZ_SCAN(uint8_t, u8, v != 0)
NZ_SCAN(uint16_t, u16, v != 0)
NZ_SCAN(uint32_t, u32, v != 0)
NZ_SCAN(uint64_t, u64, v != 0)
NZ_SCAN(uint16_t, half, (v & 0x7fffu) != 0) /* float16 and bfloat16: -0 is zero */
NZ_SCAN(float, f32, v != 0.0f)
NZ_SCAN(double, f64, v != 0.0)

typedef int64_t (*nz_fn)(const void *, int64_t, int64_t *, int64_t, const int64_t *, int);

static nz_fn nz_pick(tdm_dtype dt)
{
    switch (dt) {
    case TDM_DTYPE_FLOAT32: return nz_f32;
    case TDM_DTYPE_FLOAT64: return nz_f64;
    case TDM_DTYPE_FLOAT16:
    case TDM_DTYPE_BFLOAT16: return nz_half;
    default: break;
    }
    switch (tdm_dtype_size(dt)) {
    case 1: return nz_u8;
    case 2: return nz_u16;
    case 4: return nz_u32;
    case 8: return nz_u64;
    default: return NULL;
    }
}

tdm_status tdm_op_non_zero_infer(tdm_op_ctx *ctx)
{
    const tdm_tensor *x;
    tdm_status s = tdm_shp_input(ctx, 0, "X", true, &x);
    if (s != TDM_OK)
        return s;
    TDM_NEED_VALUE(ctx, 0);
    nz_fn fn = nz_pick(x->dtype);
    if (fn == NULL)
        return tdm_op_fail(ctx, TDM_ERR_UNSUPPORTED, "dtype %s", tdm_dtype_name(x->dtype));
    int64_t d[2] = {x->ndim > 0 ? x->ndim : 1, 0};
    d[1] = fn(x->data, tdm_tensor_numel(x), NULL, 0, x->dims, x->ndim);
    return tdm_shp_set_out(ctx, 0, TDM_DTYPE_INT64, 2, d);
}

tdm_status tdm_op_non_zero_run(tdm_op_ctx *ctx)
{
    const tdm_tensor *x = ctx->in[0];
    tdm_tensor *y = ctx->out[0];
    nz_fn fn = nz_pick(x->dtype);
    int64_t nnz = y->dims[1];
    int64_t got = fn(x->data, tdm_tensor_numel(x), NULL, 0, x->dims, x->ndim);
    if (got != nnz)
        return tdm_op_fail(ctx, TDM_ERR_SHAPE, "input changed since inference (%lld vs %lld)",
                           (long long)got, (long long)nnz);
    fn(x->data, tdm_tensor_numel(x), y->data, nnz, x->dims, x->ndim);
    return TDM_OK;
}

/* ---- Compress ------------------------------------------------------------------------------ */

/* Axis (or -1 for the flattened input), selectable length and selected count. */
static tdm_status compress_plan(tdm_op_ctx *ctx, const tdm_tensor *x, const tdm_tensor *cond,
                                int *axis, int64_t *len, int64_t *count)
{
    if (cond->ndim != 1 || (cond->dtype != TDM_DTYPE_BOOL && cond->dtype != TDM_DTYPE_UINT8))
        return tdm_op_fail(ctx, TDM_ERR_SHAPE, "condition must be a 1-D bool tensor");
    const tdm_attr *a = tdm_node_attr(ctx->node, "axis");
    int64_t dim = tdm_tensor_numel(x);
    *axis = -1;
    if (a != NULL && a->type == TDM_ATTR_INT) {
        tdm_status s = tdm_shp_axis(ctx, a->i, x->ndim, "axis", axis);
        if (s != TDM_OK)
            return s;
        dim = x->dims[*axis];
    }
    /* a shorter condition drops the rest; a longer one may only add false entries */
    const uint8_t *c = cond->data;
    int64_t n = 0;
    for (int64_t i = 0; i < cond->dims[0]; i++) {
        if (c[i] == 0)
            continue;
        if (i >= dim)
            return tdm_op_fail(ctx, TDM_ERR_SHAPE, "condition selects index %lld of %lld",
                               (long long)i, (long long)dim);
        n++;
    }
    *len = cond->dims[0] < dim ? cond->dims[0] : dim;
    *count = n;
    return TDM_OK;
}

tdm_status tdm_op_compress_infer(tdm_op_ctx *ctx)
{
    const tdm_tensor *x, *cond;
    tdm_status s = tdm_shp_input(ctx, 0, "input", true, &x);
    if (s == TDM_OK)
        s = tdm_shp_input(ctx, 1, "condition", false, &cond);
    if (s != TDM_OK)
        return s;
    TDM_NEED_VALUE(ctx, 1);
    int axis;
    int64_t len, count;
    s = compress_plan(ctx, x, cond, &axis, &len, &count);
    if (s != TDM_OK)
        return s;
    if (axis < 0)
        return tdm_shp_set_out(ctx, 0, x->dtype, 1, &count);
    int64_t d[TDM_MAX_DIMS];
    memcpy(d, x->dims, sizeof d);
    d[axis] = count;
    return tdm_shp_set_out(ctx, 0, x->dtype, x->ndim, d);
}

tdm_status tdm_op_compress_run(tdm_op_ctx *ctx)
{
    const tdm_tensor *x = ctx->in[0], *cond = ctx->in[1];
    int axis;
    int64_t len, count;
    tdm_status s = compress_plan(ctx, x, cond, &axis, &len, &count);
    if (s != TDM_OK)
        return s;
    int64_t outer = 1, inner = 1, dim = tdm_tensor_numel(x);
    if (axis >= 0) {
        dim = x->dims[axis];
        for (int k = 0; k < axis; k++)
            outer *= x->dims[k];
        for (int k = axis + 1; k < x->ndim; k++)
            inner *= x->dims[k];
    }
    size_t ib = (size_t)inner * tdm_dtype_size(x->dtype);
    const uint8_t *c = cond->data;
    char *d = ctx->out[0]->data;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < len; i++)
            if (c[i] != 0) {
                memcpy(d, (const char *)x->data + (size_t)(o * dim + i) * ib, ib);
                d += ib;
            }
    return TDM_OK;
}

/* ---- ReverseSequence ----------------------------------------------------------------------- */

static tdm_status rseq_axes(tdm_op_ctx *ctx, int *batch, int *time)
{
    int64_t b = tdm_attr_int(ctx->node, "batch_axis", 1),
            t = tdm_attr_int(ctx->node, "time_axis", 0);
    if (!((b == 0 && t == 1) || (b == 1 && t == 0)))
        return tdm_op_fail(ctx, TDM_ERR_INVALID_ARG,
                           "batch_axis %lld and time_axis %lld must be 0 and 1", (long long)b,
                           (long long)t);
    *batch = (int)b;
    *time = (int)t;
    return TDM_OK;
}

tdm_status tdm_op_reverse_sequence_infer(tdm_op_ctx *ctx)
{
    const tdm_tensor *x, *lens;
    int b = 0, t = 0;
    tdm_status s = tdm_shp_input(ctx, 0, "input", true, &x);
    if (s == TDM_OK)
        s = tdm_shp_input(ctx, 1, "sequence_lens", false, &lens);
    if (s == TDM_OK)
        s = check_index_dtype(ctx, lens, "sequence_lens");
    if (s == TDM_OK)
        s = rseq_axes(ctx, &b, &t);
    if (s != TDM_OK)
        return s;
    if (x->ndim < 2)
        return tdm_op_fail(ctx, TDM_ERR_SHAPE, "input must have rank >= 2");
    if (lens->ndim != 1 || lens->dims[0] != x->dims[b])
        return tdm_op_fail(ctx, TDM_ERR_SHAPE, "sequence_lens must have one value per batch (%lld)",
                           (long long)x->dims[b]);
    return tdm_shp_set_out(ctx, 0, x->dtype, x->ndim, x->dims);
}

tdm_status tdm_op_reverse_sequence_run(tdm_op_ctx *ctx)
{
    const tdm_tensor *x = ctx->in[0], *lens = ctx->in[1];
    int bax = 0, tax = 0;
    tdm_status s = rseq_axes(ctx, &bax, &tax);
    if (s != TDM_OK)
        return s;
    int64_t B = x->dims[bax], T = x->dims[tax], inner = 1;
    for (int k = 2; k < x->ndim; k++)
        inner *= x->dims[k];
    for (int64_t b = 0; b < B; b++) {
        int64_t n = index_at(lens, b);
        if (n < 0 || n > T)
            return tdm_op_fail(ctx, TDM_ERR_INVALID_ARG,
                               "sequence_lens[%lld] = %lld is outside [0, %lld]", (long long)b,
                               (long long)n, (long long)T);
    }
    size_t ib = (size_t)inner * tdm_dtype_size(x->dtype);
    for (int64_t b = 0; b < B; b++) {
        int64_t n = index_at(lens, b);
        for (int64_t t = 0; t < T; t++) {
            int64_t src = t < n ? n - 1 - t : t;
            size_t od = (size_t)(bax == 0 ? b * T + t : t * B + b) * ib;
            size_t os = (size_t)(bax == 0 ? b * T + src : src * B + b) * ib;
            memcpy((char *)ctx->out[0]->data + od, (const char *)x->data + os, ib);
        }
    }
    return TDM_OK;
}

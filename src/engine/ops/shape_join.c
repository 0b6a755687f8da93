/*
 * Ops that cut, join or extend tensors: Concat, Split, Slice, Expand, Tile,
 * Pad, Where and Trilu.
 *
 * Concat and Split move whole blocks: with `outer` the product of the dims
 * before the axis, each input (output) contributes one contiguous block per
 * outer index, so the copy is outer * n memcpys and never looks at elements.
 * Slice, Expand and Tile are views for the strided copy in shape_util.c (a
 * negative step is a negative stride, a broadcast dim a zero stride, and Tile
 * of dim d by r is the 2-D view [r, d] with strides [0, s]). Pad builds one
 * index map per axis (output coordinate -> input coordinate or "constant"),
 * which expresses all four modes the same way; the unpadded middle of each
 * output row is still a single memcpy. Where and Trilu are elementwise but
 * select by element size, not by dtype.
 */
#include <string.h>

#include "engine/ops/shape_ops.h"

/* ---- Concat ------------------------------------------------------------------- */

static tdm_status concat_axis(tdm_op_ctx *ctx, int rank, int *axis)
{
    const tdm_attr *a = tdm_node_attr(ctx->node, "axis");
    int64_t v;
    if (a != NULL && a->type == TDM_ATTR_INT)
        v = a->i;
    else if (ctx->node->opset < 4)
        v = 1;
    else
        return tdm_op_fail(ctx, TDM_ERR_INVALID_ARG, "attribute axis is required");
    return tdm_shp_axis(ctx, v, rank, "axis", axis);
}

tdm_status tdm_op_concat_infer(tdm_op_ctx *ctx)
{
    if (ctx->n_in < 1)
        return tdm_op_fail(ctx, TDM_ERR_INVALID_ARG, "needs at least one input");
    const tdm_tensor *x0;
    tdm_status s = tdm_shp_input(ctx, 0, "inputs", true, &x0);
    if (s != TDM_OK)
        return s;
    if (x0->ndim == 0)
        return tdm_op_fail(ctx, TDM_ERR_SHAPE, "cannot concatenate scalars");
    int axis;
    s = concat_axis(ctx, x0->ndim, &axis);
    if (s != TDM_OK)
        return s;
    int64_t d[TDM_MAX_DIMS];
    memcpy(d, x0->dims, sizeof d);
    for (int i = 1; i < ctx->n_in; i++) {
        const tdm_tensor *x;
        s = tdm_shp_input(ctx, i, "inputs", true, &x);
        if (s != TDM_OK)
            return s;
        if (x->dtype != x0->dtype || x->ndim != x0->ndim)
            return tdm_op_fail(ctx, TDM_ERR_SHAPE, "input %d is %s rank %d, input 0 is %s rank %d",
                               i, tdm_dtype_name(x->dtype), (int)x->ndim, tdm_dtype_name(x0->dtype),
                               (int)x0->ndim);
        for (int k = 0; k < x->ndim; k++) {
            if (k == axis)
                continue;
            if (x->dims[k] != x0->dims[k])
                return tdm_op_fail(ctx, TDM_ERR_SHAPE, "input %d has dim %d = %lld, input 0 %lld",
                                   i, k, (long long)x->dims[k], (long long)x0->dims[k]);
        }
        if (__builtin_add_overflow(d[axis], x->dims[axis], &d[axis]))
            return tdm_op_fail(ctx, TDM_ERR_SHAPE, "concatenated size overflows");
    }
    return tdm_shp_set_out(ctx, 0, x0->dtype, x0->ndim, d);
}

typedef struct concat_job {
    const tdm_op_ctx *ctx;
    char *dst;
    size_t row_bytes; /* output bytes per outer index */
    size_t inner_bytes;
    int axis;
} concat_job;

static void concat_rows(void *arg, int64_t begin, int64_t end, int worker)
{
    const concat_job *j = arg;
    (void)worker;
    for (int64_t o = begin; o < end; o++) {
        char *d = j->dst + (size_t)o * j->row_bytes;
        for (int i = 0; i < j->ctx->n_in; i++) {
            const tdm_tensor *x = j->ctx->in[i];
            size_t b = (size_t)x->dims[j->axis] * j->inner_bytes;
            if (b > 0)
                memcpy(d, (const char *)x->data + (size_t)o * b, b);
            d += b;
        }
    }
}

tdm_status tdm_op_concat_run(tdm_op_ctx *ctx)
{
    const tdm_tensor *x0 = ctx->in[0];
    tdm_tensor *y = ctx->out[0];
    int axis;
    tdm_status s = concat_axis(ctx, x0->ndim, &axis);
    if (s != TDM_OK)
        return s;
    int64_t outer = 1, inner = 1;
    for (int k = 0; k < axis; k++)
        outer *= y->dims[k];
    for (int k = axis + 1; k < y->ndim; k++)
        inner *= y->dims[k];
    size_t es = tdm_dtype_size(y->dtype);
    concat_job j = {ctx, y->data, (size_t)y->dims[axis] * (size_t)inner * es, (size_t)inner * es,
                    axis};
    if (outer == 1) { /* one big block per input: let the pool split each memcpy */
        char *d = y->data;
        for (int i = 0; i < ctx->n_in; i++) {
            size_t b = tdm_tensor_nbytes(ctx->in[i]);
            tdm_shp_copy_bytes(d, ctx->in[i]->data, b, ctx->pool);
            d += b;
        }
        return TDM_OK;
    }
    if (ctx->pool == NULL || tdm_tensor_nbytes(y) < TDM_SHP_PARALLEL_BYTES)
        concat_rows(&j, 0, outer, 0);
    else
        tdm_pool_for(ctx->pool, outer, 1 + (int64_t)(((size_t)1 << 14) / (j.row_bytes + 1)),
                     concat_rows, &j);
    return TDM_OK;
}

/* ---- Split ---------------------------------------------------------------------- */

/* Fills sizes[n_out] for splitting dim `len`. */
static tdm_status split_sizes(tdm_op_ctx *ctx, int64_t len, int64_t *sizes)
{
    int n = ctx->n_out;
    const tdm_node *node = ctx->node;
    const tdm_tensor *st = node->opset >= 13 ? tdm_shp_in(ctx, 1) : NULL;
    int64_t count = -1;
    if (st != NULL) {
        TDM_NEED_VALUE(ctx, 1);
        if (st->dtype != TDM_DTYPE_INT64 && st->dtype != TDM_DTYPE_INT32)
            return tdm_op_fail(ctx, TDM_ERR_SHAPE, "split must be int64");
        if (st->ndim != 1)
            return tdm_op_fail(ctx, TDM_ERR_SHAPE, "split must be 1-D");
        count = st->dims[0];
        if (count == n)
            for (int i = 0; i < n; i++)
                sizes[i] = tdm_tensor_get_i64(st, i);
    } else if (node->opset < 13 && tdm_node_attr(node, "split") != NULL) {
        const int64_t *a = tdm_attr_ints(node, "split", &count);
        if (count == n)
            memcpy(sizes, a, (size_t)n * sizeof *sizes);
    }
    if (count >= 0) {
        if (count != n)
            return tdm_op_fail(ctx, TDM_ERR_SHAPE, "split has %lld sizes for %d outputs",
                               (long long)count, n);
        int64_t sum = 0;
        for (int i = 0; i < n; i++) {
            if (sizes[i] < 0 || __builtin_add_overflow(sum, sizes[i], &sum))
                return tdm_op_fail(ctx, TDM_ERR_SHAPE, "split[%d] = %lld is invalid", i,
                                   (long long)sizes[i]);
        }
        if (sum != len)
            return tdm_op_fail(ctx, TDM_ERR_SHAPE, "split sizes add up to %lld, the axis has %lld",
                               (long long)sum, (long long)len);
        return TDM_OK;
    }
    const tdm_attr *no = node->opset >= 18 ? tdm_node_attr(node, "num_outputs") : NULL;
    if (no != NULL && no->i != n)
        return tdm_op_fail(ctx, TDM_ERR_SHAPE, "num_outputs is %lld but the node has %d outputs",
                           (long long)no->i, n);
    /* equal parts; since opset 18 the last may be smaller */
    int64_t chunk = (len + n - 1) / n;
    if (no == NULL && len % n != 0)
        return tdm_op_fail(ctx, TDM_ERR_SHAPE, "axis of %lld does not split into %d equal parts",
                           (long long)len, n);
    for (int i = 0; i < n; i++) {
        int64_t rest = len - chunk * i;
        sizes[i] = rest < chunk ? rest : chunk;
        if (sizes[i] < 0)
            return tdm_op_fail(ctx, TDM_ERR_SHAPE, "axis of %lld cannot give %d outputs",
                               (long long)len, n);
    }
    return TDM_OK;
}

static tdm_status split_prepare(tdm_op_ctx *ctx, const tdm_tensor **x, int *axis, int64_t **sizes)
{
    tdm_status s = tdm_shp_input(ctx, 0, "input", true, x);
    if (s != TDM_OK)
        return s;
    if (ctx->n_out < 1)
        return tdm_op_fail(ctx, TDM_ERR_INVALID_ARG, "needs at least one output");
    s = tdm_shp_axis(ctx, tdm_attr_int(ctx->node, "axis", 0), (*x)->ndim, "axis", axis);
    if (s != TDM_OK)
        return s;
    *sizes = tdm_op_scratch(ctx, (size_t)ctx->n_out * sizeof **sizes);
    if (*sizes == NULL)
        return tdm_op_fail(ctx, TDM_ERR_NOMEM, "out of memory");
    return split_sizes(ctx, (*x)->dims[*axis], *sizes);
}

tdm_status tdm_op_split_infer(tdm_op_ctx *ctx)
{
    const tdm_tensor *x;
    int axis;
    int64_t *sizes;
    tdm_status s = split_prepare(ctx, &x, &axis, &sizes);
    if (s != TDM_OK)
        return s;
    int64_t d[TDM_MAX_DIMS];
    memcpy(d, x->dims, sizeof d);
    for (int i = 0; i < ctx->n_out && s == TDM_OK; i++) {
        d[axis] = sizes[i];
        s = tdm_shp_set_out(ctx, i, x->dtype, x->ndim, d);
    }
    return s;
}

tdm_status tdm_op_split_run(tdm_op_ctx *ctx)
{
    const tdm_tensor *x;
    int axis;
    int64_t *sizes;
    tdm_status s = split_prepare(ctx, &x, &axis, &sizes);
    if (s != TDM_OK)
        return s;
    int64_t outer = 1, inner = 1;
    for (int k = 0; k < axis; k++)
        outer *= x->dims[k];
    for (int k = axis + 1; k < x->ndim; k++)
        inner *= x->dims[k];
    size_t es = tdm_dtype_size(x->dtype);
    size_t row = (size_t)x->dims[axis] * (size_t)inner * es;
    size_t off = 0;
    for (int i = 0; i < ctx->n_out; i++) {
        size_t b = (size_t)sizes[i] * (size_t)inner * es;
        tdm_tensor *y = ctx->out[i];
        if (y != NULL && b > 0) {
            if (outer == 1)
                tdm_shp_copy_bytes(y->data, (const char *)x->data + off, b, ctx->pool);
            else
                for (int64_t o = 0; o < outer; o++)
                    memcpy((char *)y->data + (size_t)o * b,
                           (const char *)x->data + (size_t)o * row + off, b);
        }
        off += b;
    }
    return TDM_OK;
}

/* ---- Slice ---------------------------------------------------------------------- */

typedef struct slice_plan {
    int64_t start[TDM_MAX_DIMS];
    int64_t step[TDM_MAX_DIMS];
    int64_t count[TDM_MAX_DIMS];
} slice_plan;

static tdm_status slice_list(tdm_op_ctx *ctx, int input, const char *name, int64_t *v, int64_t *n,
                             bool *present)
{
    *present = false;
    if (ctx->node->opset < 10) {
        const tdm_attr *a = tdm_node_attr(ctx->node, name);
        if (a == NULL || a->type != TDM_ATTR_INTS)
            return TDM_OK;
        if (a->n > TDM_MAX_DIMS)
            return tdm_op_fail(ctx, TDM_ERR_INVALID_ARG, "%s has %lld entries", name,
                               (long long)a->n);
        memcpy(v, a->ints, (size_t)a->n * sizeof *v);
        *n = a->n;
        *present = true;
        return TDM_OK;
    }
    const tdm_tensor *t = tdm_shp_in(ctx, input);
    if (t == NULL)
        return TDM_OK;
    TDM_NEED_VALUE(ctx, input);
    *present = true;
    return tdm_shp_read_ints(ctx, t, name, v, TDM_MAX_DIMS, n);
}

static tdm_status slice_make_plan(tdm_op_ctx *ctx, const tdm_tensor *x, slice_plan *p)
{
    int64_t starts[TDM_MAX_DIMS], ends[TDM_MAX_DIMS], axes[TDM_MAX_DIMS], steps[TDM_MAX_DIMS];
    int64_t ns = 0, ne = 0, na = 0, nt = 0;
    bool has_s, has_e, has_a, has_t;
    tdm_status s = slice_list(ctx, 1, "starts", starts, &ns, &has_s);
    if (s == TDM_OK)
        s = slice_list(ctx, 2, "ends", ends, &ne, &has_e);
    if (s == TDM_OK)
        s = slice_list(ctx, 3, "axes", axes, &na, &has_a);
    if (s == TDM_OK)
        s = ctx->node->opset < 10 ? TDM_OK : slice_list(ctx, 4, "steps", steps, &nt, &has_t);
    if (s != TDM_OK)
        return s;
    if (ctx->node->opset < 10)
        has_t = false;
    if (!has_s || !has_e)
        return tdm_op_fail(ctx, TDM_ERR_INVALID_ARG, "starts and ends are required");
    if (ne != ns || (has_a && na != ns) || (has_t && nt != ns))
        return tdm_op_fail(ctx, TDM_ERR_INVALID_ARG,
                           "starts, ends, axes and steps must have the same length");
    if (!has_a) {
        if (ns > x->ndim)
            return tdm_op_fail(ctx, TDM_ERR_INVALID_ARG, "%lld starts for rank %d", (long long)ns,
                               (int)x->ndim);
        for (int64_t i = 0; i < ns; i++)
            axes[i] = i;
    }
    int ax[TDM_MAX_DIMS];
    bool seen[TDM_MAX_DIMS];
    s = tdm_shp_axes(ctx, axes, ns, x->ndim, "axis", ax, seen);
    if (s != TDM_OK)
        return s;
    for (int k = 0; k < x->ndim; k++) {
        p->start[k] = 0;
        p->step[k] = 1;
        p->count[k] = x->dims[k];
    }
    for (int64_t i = 0; i < ns; i++) {
        int k = ax[i];
        int64_t dim = x->dims[k], b = starts[i], e = ends[i];
        int64_t st = has_t ? steps[i] : 1;
        if (st == 0)
            return tdm_op_fail(ctx, TDM_ERR_INVALID_ARG, "step for axis %d is 0", k);
        if (b < 0)
            b += dim;
        if (e < 0)
            e += dim;
        int64_t cnt;
        if (dim == 0) {
            b = 0;
            cnt = 0;
        } else if (st > 0) {
            b = b < 0 ? 0 : (b > dim ? dim : b);
            e = e < 0 ? 0 : (e > dim ? dim : e);
            cnt = e > b ? (e - b - 1) / st + 1 : 0;
        } else {
            b = b < 0 ? 0 : (b > dim - 1 ? dim - 1 : b);
            e = e < -1 ? -1 : (e > dim - 1 ? dim - 1 : e);
            /* -st may overflow for INT64_MIN: the count is at most 1 then */
            cnt = b > e ? (st == INT64_MIN ? 1 : (b - e - 1) / (-st) + 1) : 0;
        }
        p->start[k] = b;
        p->step[k] = st;
        p->count[k] = cnt;
    }
    return TDM_OK;
}

tdm_status tdm_op_slice_infer(tdm_op_ctx *ctx)
{
    const tdm_tensor *x;
    tdm_status s = tdm_shp_input(ctx, 0, "data", true, &x);
    if (s != TDM_OK)
        return s;
    slice_plan p;
    s = slice_make_plan(ctx, x, &p);
    if (s != TDM_OK)
        return s;
    return tdm_shp_set_out(ctx, 0, x->dtype, x->ndim, p.count);
}

tdm_status tdm_op_slice_run(tdm_op_ctx *ctx)
{
    const tdm_tensor *x = ctx->in[0];
    tdm_tensor *y = ctx->out[0];
    slice_plan p;
    tdm_status s = slice_make_plan(ctx, x, &p);
    if (s != TDM_OK)
        return s;
    if (tdm_tensor_numel(y) == 0)
        return TDM_OK;
    int64_t xs[TDM_MAX_DIMS], vs[TDM_MAX_DIMS], off = 0;
    tdm_shp_strides(x->dims, x->ndim, xs);
    for (int k = 0; k < x->ndim; k++) {
        off += p.start[k] * xs[k];
        vs[k] = p.count[k] > 1 ? p.step[k] * xs[k] : 0; /* |step| < dim here */
    }
    size_t es = tdm_dtype_size(x->dtype);
    tdm_shp_strided_copy(y->data, (const char *)x->data + off * (int64_t)es, es, x->ndim, p.count,
                         vs, ctx->pool);
    return TDM_OK;
}

/* ---- Expand --------------------------------------------------------------------- */

tdm_status tdm_op_expand_infer(tdm_op_ctx *ctx)
{
    const tdm_tensor *x, *st;
    tdm_status s = tdm_shp_input(ctx, 0, "input", true, &x);
    if (s == TDM_OK)
        s = tdm_shp_input(ctx, 1, "shape", false, &st);
    if (s != TDM_OK)
        return s;
    TDM_NEED_VALUE(ctx, 1);
    int64_t shape[TDM_MAX_DIMS], d[TDM_MAX_DIMS];
    int64_t n;
    int nd;
    s = tdm_shp_read_ints(ctx, st, "shape", shape, TDM_MAX_DIMS, &n);
    if (s != TDM_OK)
        return s;
    for (int64_t i = 0; i < n; i++)
        if (shape[i] < 0)
            return tdm_op_fail(ctx, TDM_ERR_SHAPE, "shape[%lld] = %lld is negative", (long long)i,
                               (long long)shape[i]);
    s = tdm_shp_broadcast(ctx, x->dims, x->ndim, shape, (int)n, d, &nd);
    if (s != TDM_OK)
        return s;
    return tdm_shp_set_out(ctx, 0, x->dtype, nd, d);
}

tdm_status tdm_op_expand_run(tdm_op_ctx *ctx)
{
    const tdm_tensor *x = ctx->in[0];
    tdm_tensor *y = ctx->out[0];
    int64_t vs[TDM_MAX_DIMS];
    tdm_shp_bcast_strides(x, y->ndim, y->dims, vs);
    tdm_shp_strided_copy(y->data, x->data, tdm_dtype_size(x->dtype), y->ndim, y->dims, vs,
                         ctx->pool);
    return TDM_OK;
}

/* ---- Tile ------------------------------------------------------------------------ */

static tdm_status tile_repeats(tdm_op_ctx *ctx, const tdm_tensor *x, int64_t *rep)
{
    if (ctx->node->opset < 6)
        return tdm_op_fail(ctx, TDM_ERR_UNSUPPORTED, "Tile before opset 6");
    const tdm_tensor *rt;
    tdm_status s = tdm_shp_input(ctx, 1, "repeats", false, &rt);
    if (s != TDM_OK)
        return s;
    TDM_NEED_VALUE(ctx, 1);
    int64_t n;
    s = tdm_shp_read_ints(ctx, rt, "repeats", rep, TDM_MAX_DIMS, &n);
    if (s != TDM_OK)
        return s;
    if (n != x->ndim)
        return tdm_op_fail(ctx, TDM_ERR_SHAPE, "repeats has %lld values for rank %d", (long long)n,
                           (int)x->ndim);
    for (int k = 0; k < x->ndim; k++)
        if (rep[k] < 0)
            return tdm_op_fail(ctx, TDM_ERR_SHAPE, "repeats[%d] = %lld is negative", k,
                               (long long)rep[k]);
    return TDM_OK;
}

tdm_status tdm_op_tile_infer(tdm_op_ctx *ctx)
{
    const tdm_tensor *x;
    tdm_status s = tdm_shp_input(ctx, 0, "input", true, &x);
    if (s != TDM_OK)
        return s;
    int64_t rep[TDM_MAX_DIMS], d[TDM_MAX_DIMS];
    s = tile_repeats(ctx, x, rep);
    if (s != TDM_OK)
        return s;
    for (int k = 0; k < x->ndim; k++)
        if (__builtin_mul_overflow(x->dims[k], rep[k], &d[k]))
            return tdm_op_fail(ctx, TDM_ERR_SHAPE, "tiled dim %d overflows", k);
    return tdm_shp_set_out(ctx, 0, x->dtype, x->ndim, d);
}

tdm_status tdm_op_tile_run(tdm_op_ctx *ctx)
{
    const tdm_tensor *x = ctx->in[0];
    int64_t rep[TDM_MAX_DIMS], xs[TDM_MAX_DIMS];
    tdm_status s = tile_repeats(ctx, x, rep);
    if (s != TDM_OK)
        return s;
    tdm_shp_strides(x->dims, x->ndim, xs);
    int64_t vd[TDM_SHP_MAX_VIEW], vs[TDM_SHP_MAX_VIEW];
    for (int k = 0; k < x->ndim; k++) {
        vd[2 * k] = rep[k];
        vs[2 * k] = 0;
        vd[2 * k + 1] = x->dims[k];
        vs[2 * k + 1] = xs[k];
    }
    tdm_shp_strided_copy(ctx->out[0]->data, x->data, tdm_dtype_size(x->dtype), 2 * x->ndim, vd, vs,
                         ctx->pool);
    return TDM_OK;
}

/* ---- Pad ------------------------------------------------------------------------- */

enum { PAD_CONSTANT, PAD_REFLECT, PAD_EDGE, PAD_WRAP };

typedef struct pad_cfg {
    int mode;
    int64_t begin[TDM_MAX_DIMS], end[TDM_MAX_DIMS];
    unsigned char value[8]; /* the constant, in the data's dtype */
} pad_cfg;

static tdm_status pad_config(tdm_op_ctx *ctx, const tdm_tensor *x, pad_cfg *c)
{
    const tdm_node *node = ctx->node;
    int r = x->ndim;
    const char *mode = tdm_attr_str(node, "mode", "constant");
    if (strcmp(mode, "constant") == 0)
        c->mode = PAD_CONSTANT;
    else if (strcmp(mode, "reflect") == 0)
        c->mode = PAD_REFLECT;
    else if (strcmp(mode, "edge") == 0)
        c->mode = PAD_EDGE;
    else if (strcmp(mode, "wrap") == 0)
        c->mode = PAD_WRAP;
    else
        return tdm_op_fail(ctx, TDM_ERR_INVALID_ARG, "mode '%s' is not supported", mode);
    memset(c->value, 0, sizeof c->value);
    int64_t pads[2 * TDM_MAX_DIMS];
    int64_t n = 0;
    int ax[TDM_MAX_DIMS];
    int nax = r;
    for (int k = 0; k < r; k++)
        ax[k] = k;
    if (node->opset < 11) {
        const char *name = node->opset < 2 ? "paddings" : "pads";
        const int64_t *a = tdm_attr_ints(node, name, &n);
        if (a == NULL)
            return tdm_op_fail(ctx, TDM_ERR_INVALID_ARG, "attribute %s is required", name);
        if (n > 2 * TDM_MAX_DIMS)
            return tdm_op_fail(ctx, TDM_ERR_INVALID_ARG, "%s has %lld entries", name, (long long)n);
        memcpy(pads, a, (size_t)n * sizeof *pads);
        if (!tdm_shp_scalar_from_f64(x->dtype, tdm_attr_float(node, "value", 0.0f), c->value))
            return tdm_op_fail(ctx, TDM_ERR_UNSUPPORTED, "dtype %s", tdm_dtype_name(x->dtype));
    } else {
        const tdm_tensor *pt;
        tdm_status s = tdm_shp_input(ctx, 1, "pads", false, &pt);
        if (s != TDM_OK)
            return s;
        TDM_NEED_VALUE(ctx, 1);
        s = tdm_shp_read_ints(ctx, pt, "pads", pads, 2 * TDM_MAX_DIMS, &n);
        if (s != TDM_OK)
            return s;
        const tdm_tensor *cv = tdm_shp_in(ctx, 2);
        if (cv != NULL && cv->ndim >= 0 && tdm_tensor_numel(cv) > 0) {
            if (cv->dtype != x->dtype)
                return tdm_op_fail(ctx, TDM_ERR_SHAPE, "constant_value is %s, data is %s",
                                   tdm_dtype_name(cv->dtype), tdm_dtype_name(x->dtype));
            if (cv->data != NULL)
                memcpy(c->value, cv->data, tdm_dtype_size(x->dtype));
        }
        const tdm_tensor *at = tdm_shp_in(ctx, 3);
        if (at != NULL) {
            TDM_NEED_VALUE(ctx, 3);
            int64_t axes[TDM_MAX_DIMS], na;
            bool seen[TDM_MAX_DIMS];
            s = tdm_shp_read_ints(ctx, at, "axes", axes, TDM_MAX_DIMS, &na);
            if (s == TDM_OK)
                s = tdm_shp_axes(ctx, axes, na, r, "axis", ax, seen);
            if (s != TDM_OK)
                return s;
            nax = (int)na;
        }
    }
    if (n != 2 * nax)
        return tdm_op_fail(ctx, TDM_ERR_INVALID_ARG, "pads has %lld entries, expected %d",
                           (long long)n, 2 * nax);
    for (int k = 0; k < r; k++)
        c->begin[k] = c->end[k] = 0;
    for (int i = 0; i < nax; i++) {
        c->begin[ax[i]] = pads[i];
        c->end[ax[i]] = pads[i + nax];
    }
    return TDM_OK;
}

tdm_status tdm_op_pad_infer(tdm_op_ctx *ctx)
{
    const tdm_tensor *x;
    tdm_status s = tdm_shp_input(ctx, 0, "data", true, &x);
    if (s != TDM_OK)
        return s;
    pad_cfg c;
    s = pad_config(ctx, x, &c);
    if (s != TDM_OK)
        return s;
    int64_t d[TDM_MAX_DIMS];
    for (int k = 0; k < x->ndim; k++) {
        if (__builtin_add_overflow(x->dims[k], c.begin[k], &d[k]) ||
            __builtin_add_overflow(d[k], c.end[k], &d[k]) || d[k] < 0)
            return tdm_op_fail(ctx, TDM_ERR_SHAPE, "pads %lld, %lld on axis %d of size %lld",
                               (long long)c.begin[k], (long long)c.end[k], k,
                               (long long)x->dims[k]);
        if (c.mode != PAD_CONSTANT && x->dims[k] == 0 && d[k] > 0)
            return tdm_op_fail(ctx, TDM_ERR_SHAPE, "cannot pad the empty axis %d in mode %s", k,
                               tdm_attr_str(ctx->node, "mode", ""));
    }
    return tdm_shp_set_out(ctx, 0, x->dtype, x->ndim, d);
}

static int64_t pad_map(int mode, int64_t i, int64_t n)
{
    if (i >= 0 && i < n)
        return i;
    switch (mode) {
    case PAD_EDGE: return i < 0 ? 0 : n - 1;
    case PAD_WRAP: {
        int64_t m = i % n;
        return m < 0 ? m + n : m;
    }
    case PAD_REFLECT: {
        if (n == 1)
            return 0;
        int64_t period = 2 * (n - 1);
        int64_t m = i % period;
        if (m < 0)
            m += period;
        return m >= n ? period - m : m;
    }
    default: return -1;
    }
}

typedef struct pad_job {
    const tdm_tensor *x;
    tdm_tensor *y;
    const pad_cfg *c;
    int64_t *map[TDM_MAX_DIMS]; /* output coordinate -> input coordinate, -1: constant */
    int64_t xs[TDM_MAX_DIMS];
    int64_t c0, c1; /* innermost output range copied in one run */
} pad_job;

static void pad_rows(void *arg, int64_t begin, int64_t end, int worker)
{
    const pad_job *j = arg;
    (void)worker;
    int last = j->y->ndim - 1;
    int64_t n = j->y->dims[last];
    size_t es = tdm_dtype_size(j->y->dtype);
    const int64_t *m = j->map[last];
    for (int64_t row = begin; row < end; row++) {
        char *d = (char *)j->y->data + (size_t)row * (size_t)n * es;
        int64_t off = 0, r = row;
        bool constant = false;
        for (int k = last - 1; k >= 0; k--) {
            int64_t i = j->map[k][r % j->y->dims[k]];
            r /= j->y->dims[k];
            if (i < 0)
                constant = true;
            off += i * j->xs[k];
        }
        if (constant) {
            tdm_shp_fill(d, j->c->value, es, n);
            continue;
        }
        const char *s = (const char *)j->x->data + (size_t)off * es;
        for (int64_t o = 0; o < n; o++) {
            if (o == j->c0 && j->c1 > j->c0) {
                memcpy(d + (size_t)o * es, s + (size_t)m[o] * es, (size_t)(j->c1 - j->c0) * es);
                o = j->c1 - 1;
                continue;
            }
            if (m[o] < 0)
                memcpy(d + (size_t)o * es, j->c->value, es);
            else
                memcpy(d + (size_t)o * es, s + (size_t)m[o] * es, es);
        }
    }
}

tdm_status tdm_op_pad_run(tdm_op_ctx *ctx)
{
    const tdm_tensor *x = ctx->in[0];
    tdm_tensor *y = ctx->out[0];
    pad_cfg c;
    tdm_status s = pad_config(ctx, x, &c);
    if (s != TDM_OK)
        return s;
    size_t es = tdm_dtype_size(x->dtype);
    if (tdm_tensor_numel(y) == 0)
        return TDM_OK;
    if (y->ndim == 0) {
        memcpy(y->data, x->data, es);
        return TDM_OK;
    }
    size_t total = 0;
    for (int k = 0; k < y->ndim; k++)
        total += (size_t)y->dims[k];
    int64_t *maps = tdm_op_scratch(ctx, total * sizeof *maps);
    if (maps == NULL)
        return tdm_op_fail(ctx, TDM_ERR_NOMEM, "out of memory");
    pad_job j = {.x = x, .y = y, .c = &c};
    tdm_shp_strides(x->dims, x->ndim, j.xs);
    for (int k = 0; k < y->ndim; k++) {
        j.map[k] = maps;
        for (int64_t o = 0; o < y->dims[k]; o++)
            maps[o] = pad_map(c.mode, o - c.begin[k], x->dims[k]);
        maps += y->dims[k];
    }
    int last = y->ndim - 1;
    j.c0 = c.begin[last] > 0 ? c.begin[last] : 0;
    j.c1 = c.begin[last] + x->dims[last];
    if (j.c1 > y->dims[last])
        j.c1 = y->dims[last];
    int64_t rows = tdm_tensor_numel(y) / y->dims[last];
    if (ctx->pool == NULL || tdm_tensor_nbytes(y) < TDM_SHP_PARALLEL_BYTES)
        pad_rows(&j, 0, rows, 0);
    else
        tdm_pool_for(ctx->pool, rows, 1 + ((int64_t)1 << 12) / y->dims[last], pad_rows, &j);
    return TDM_OK;
}

/* ---- Where ----------------------------------------------------------------------- */

#define WHERE_LOOP(T, SUF)                                                                        \
    static void where_##SUF(void *dst, const uint8_t *c, const void *x, const void *y, int64_t n, \
                            int64_t cs, int64_t xs, int64_t ys)                                   \
    {                                                                                             \
        T *d = dst;                                                                               \
        const T *a = x, *b = y;                                                                   \
        for (int64_t i = 0; i < n; i++)                                                           \
            d[i] = c[i * cs] ? a[i * xs] : b[i * ys];                                             \
    }
WHERE_LOOP(uint8_t, 1)
WHERE_LOOP(uint16_t, 2)
WHERE_LOOP(uint32_t, 4)
WHERE_LOOP(uint64_t, 8)

typedef void (*where_fn)(void *, const uint8_t *, const void *, const void *, int64_t, int64_t,
                         int64_t, int64_t);

tdm_status tdm_op_where_infer(tdm_op_ctx *ctx)
{
    const tdm_tensor *c, *x, *y;
    tdm_status s = tdm_shp_input(ctx, 0, "condition", true, &c);
    if (s == TDM_OK)
        s = tdm_shp_input(ctx, 1, "X", true, &x);
    if (s == TDM_OK)
        s = tdm_shp_input(ctx, 2, "Y", true, &y);
    if (s != TDM_OK)
        return s;
    if (c->dtype != TDM_DTYPE_BOOL)
        return tdm_op_fail(ctx, TDM_ERR_SHAPE, "condition must be bool, got %s",
                           tdm_dtype_name(c->dtype));
    if (x->dtype != y->dtype)
        return tdm_op_fail(ctx, TDM_ERR_SHAPE, "X is %s but Y is %s", tdm_dtype_name(x->dtype),
                           tdm_dtype_name(y->dtype));
    int64_t d1[TDM_MAX_DIMS], d2[TDM_MAX_DIMS];
    int n1, n2;
    s = tdm_shp_broadcast(ctx, c->dims, c->ndim, x->dims, x->ndim, d1, &n1);
    if (s == TDM_OK)
        s = tdm_shp_broadcast(ctx, d1, n1, y->dims, y->ndim, d2, &n2);
    if (s != TDM_OK)
        return s;
    return tdm_shp_set_out(ctx, 0, x->dtype, n2, d2);
}

tdm_status tdm_op_where_run(tdm_op_ctx *ctx)
{
    const tdm_tensor *c = ctx->in[0], *x = ctx->in[1], *y = ctx->in[2];
    tdm_tensor *o = ctx->out[0];
    size_t es = tdm_dtype_size(o->dtype);
    where_fn fn;
    switch (es) {
    case 1: fn = where_1; break;
    case 2: fn = where_2; break;
    case 4: fn = where_4; break;
    case 8: fn = where_8; break;
    default: return tdm_op_fail(ctx, TDM_ERR_UNSUPPORTED, "dtype %s", tdm_dtype_name(o->dtype));
    }
    int64_t total = tdm_tensor_numel(o);
    if (total == 0)
        return TDM_OK;
    if (tdm_tensor_numel(c) == total && tdm_tensor_numel(x) == total &&
        tdm_tensor_numel(y) == total) {
        fn(o->data, c->data, x->data, y->data, total, 1, 1, 1);
        return TDM_OK;
    }
    int nd = o->ndim;
    if (nd == 0) {
        fn(o->data, c->data, x->data, y->data, 1, 0, 0, 0);
        return TDM_OK;
    }
    int64_t cs[TDM_MAX_DIMS], xs[TDM_MAX_DIMS], ys[TDM_MAX_DIMS], idx[TDM_MAX_DIMS] = {0};
    tdm_shp_bcast_strides(c, nd, o->dims, cs);
    tdm_shp_bcast_strides(x, nd, o->dims, xs);
    tdm_shp_bcast_strides(y, nd, o->dims, ys);
    int last = nd - 1;
    int64_t n = o->dims[last], rows = total / n;
    int64_t co = 0, xo = 0, yo = 0;
    for (int64_t r = 0; r < rows; r++) {
        fn((char *)o->data + (size_t)(r * n) * es, (const uint8_t *)c->data + co,
           (const char *)x->data + (size_t)xo * es, (const char *)y->data + (size_t)yo * es, n,
           cs[last], xs[last], ys[last]);
        for (int k = last - 1; k >= 0; k--) {
            co += cs[k];
            xo += xs[k];
            yo += ys[k];
            if (++idx[k] < o->dims[k])
                break;
            co -= cs[k] * o->dims[k];
            xo -= xs[k] * o->dims[k];
            yo -= ys[k] * o->dims[k];
            idx[k] = 0;
        }
    }
    return TDM_OK;
}

/* ---- Trilu ------------------------------------------------------------------------ */

tdm_status tdm_op_trilu_infer(tdm_op_ctx *ctx)
{
    const tdm_tensor *x;
    tdm_status s = tdm_shp_input(ctx, 0, "input", true, &x);
    if (s != TDM_OK)
        return s;
    if (x->ndim < 2)
        return tdm_op_fail(ctx, TDM_ERR_SHAPE, "input must have rank >= 2, got %d", (int)x->ndim);
    const tdm_tensor *k = tdm_shp_in(ctx, 1);
    if (k != NULL && k->ndim >= 0 && tdm_tensor_numel(k) != 1)
        return tdm_op_fail(ctx, TDM_ERR_SHAPE, "k must be a scalar");
    return tdm_shp_set_out(ctx, 0, x->dtype, x->ndim, x->dims);
}

tdm_status tdm_op_trilu_run(tdm_op_ctx *ctx)
{
    const tdm_tensor *x = ctx->in[0];
    tdm_tensor *y = ctx->out[0];
    const tdm_tensor *kt = tdm_shp_in(ctx, 1);
    int64_t k = 0;
    if (kt != NULL) {
        if (kt->dtype != TDM_DTYPE_INT64)
            return tdm_op_fail(ctx, TDM_ERR_SHAPE, "k must be int64");
        k = tdm_tensor_get_i64(kt, 0);
    }
    bool upper = tdm_attr_int(ctx->node, "upper", 1) != 0;
    int64_t rows = x->dims[x->ndim - 2], cols = x->dims[x->ndim - 1];
    /* beyond +-(rows + cols) every k keeps or zeroes everything: clamp to stay in range */
    int64_t lim = rows + cols;
    k = k > lim ? lim : (k < -lim ? -lim : k);
    size_t es = tdm_dtype_size(x->dtype);
    int64_t mats = rows * cols == 0 ? 0 : tdm_tensor_numel(x) / (rows * cols);
    const char *s = x->data;
    char *d = y->data;
    for (int64_t m = 0; m < mats; m++) {
        for (int64_t i = 0; i < rows; i++) {
            /* upper keeps j >= i + k, lower keeps j <= i + k */
            int64_t lo = upper ? i + k : 0, hi = upper ? cols : i + k + 1;
            lo = lo < 0 ? 0 : (lo > cols ? cols : lo);
            hi = hi < lo ? lo : (hi > cols ? cols : hi);
            memset(d, 0, (size_t)lo * es);
            memcpy(d + (size_t)lo * es, s + (size_t)lo * es, (size_t)(hi - lo) * es);
            memset(d + (size_t)hi * es, 0, (size_t)(cols - hi) * es);
            s += (size_t)cols * es;
            d += (size_t)cols * es;
        }
    }
    return TDM_OK;
}

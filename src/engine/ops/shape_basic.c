/*
 * Shape-only and permutation ops: Identity, Dropout (inference), Flatten,
 * Reshape, Squeeze, Unsqueeze, Shape, Size, Constant, ConstantOfShape, Range,
 * EyeLike, Transpose, DepthToSpace and SpaceToDepth.
 *
 * The view ops (Identity .. Unsqueeze) only compute a new shape: their data
 * is the input's bytes unchanged, so they share one run function that copies
 * (or does nothing when the executor let the output alias the input).
 * Shape and Size read only the input's dims, never its data, so they work
 * when the planner knows shapes but no values. Transpose and the
 * depth/space rearrangements are views for the strided copy in shape_util.c:
 * its merge step turns the common cases (2-D transpose, the attention head
 * split [B,S,H,D] -> [B,H,S,D]) into tiled transposes or row memcpys.
 */
#include <math.h>
#include <string.h>

#include "engine/ops/shape_ops.h"

/* ---- Identity and views ------------------------------------------------------ */

tdm_status tdm_op_identity_infer(tdm_op_ctx *ctx)
{
    const tdm_tensor *x;
    tdm_status s = tdm_shp_input(ctx, 0, "input", true, &x);
    if (s != TDM_OK)
        return s;
    return tdm_shp_set_out(ctx, 0, x->dtype, x->ndim, x->dims);
}

tdm_status tdm_op_copy_run(tdm_op_ctx *ctx)
{
    const tdm_tensor *x = ctx->in[0];
    tdm_tensor *y = ctx->out[0];
    tdm_shp_copy_bytes(y->data, x->data, tdm_tensor_nbytes(x), ctx->pool);
    return TDM_OK;
}

/* ---- Dropout ----------------------------------------------------------------- */

/* Inference Dropout is the identity; the optional mask is all ones. */
tdm_status tdm_op_dropout_infer(tdm_op_ctx *ctx)
{
    const tdm_tensor *x;
    tdm_status s = tdm_shp_input(ctx, 0, "data", true, &x);
    if (s != TDM_OK)
        return s;
    s = tdm_shp_set_out(ctx, 0, x->dtype, x->ndim, x->dims);
    if (s != TDM_OK)
        return s;
    /* the mask became bool in opset 10 */
    tdm_dtype mask_dt = ctx->node->opset >= 10 ? TDM_DTYPE_BOOL : x->dtype;
    return tdm_shp_set_out(ctx, 1, mask_dt, x->ndim, x->dims);
}

tdm_status tdm_op_dropout_run(tdm_op_ctx *ctx)
{
    const tdm_tensor *x = ctx->in[0];
    const tdm_tensor *ratio = tdm_shp_in(ctx, 1);
    const tdm_tensor *training = tdm_shp_in(ctx, 2);
    if (training != NULL && tdm_tensor_numel(training) > 0 && training->data != NULL &&
        tdm_tensor_get_i64(training, 0) != 0) {
        double r = 0.5;
        if (ratio != NULL && tdm_tensor_numel(ratio) > 0 && ratio->data != NULL)
            r = tdm_tensor_get_f64(ratio, 0);
        if (r != 0.0)
            return tdm_op_fail(ctx, TDM_ERR_UNSUPPORTED,
                               "training_mode with ratio %g is random and not supported", r);
    }
    tdm_shp_copy_bytes(ctx->out[0]->data, x->data, tdm_tensor_nbytes(x), ctx->pool);
    tdm_tensor *mask = tdm_shp_out(ctx, 1);
    if (mask != NULL) {
        unsigned char one[8];
        if (!tdm_shp_scalar_from_f64(mask->dtype, 1.0, one))
            return tdm_op_fail(ctx, TDM_ERR_UNSUPPORTED, "mask dtype %s",
                               tdm_dtype_name(mask->dtype));
        tdm_shp_fill(mask->data, one, tdm_dtype_size(mask->dtype), tdm_tensor_numel(mask));
    }
    return TDM_OK;
}

/* ---- Flatten ----------------------------------------------------------------- */

tdm_status tdm_op_flatten_infer(tdm_op_ctx *ctx)
{
    const tdm_tensor *x;
    tdm_status s = tdm_shp_input(ctx, 0, "input", true, &x);
    if (s != TDM_OK)
        return s;
    int64_t axis = tdm_attr_int(ctx->node, "axis", 1);
    int r = x->ndim;
    if (axis < -(int64_t)r || axis > r)
        return tdm_op_fail(ctx, TDM_ERR_INVALID_ARG, "axis %lld is out of range for rank %d",
                           (long long)axis, r);
    if (axis < 0)
        axis += r;
    int64_t d[2] = {1, 1};
    for (int k = 0; k < r; k++)
        d[k < axis ? 0 : 1] *= x->dims[k];
    return tdm_shp_set_out(ctx, 0, x->dtype, 2, d);
}

/* ---- Reshape ----------------------------------------------------------------- */

tdm_status tdm_op_reshape_infer(tdm_op_ctx *ctx)
{
    const tdm_tensor *x;
    tdm_status s = tdm_shp_input(ctx, 0, "data", true, &x);
    if (s != TDM_OK)
        return s;
    int64_t shape[TDM_MAX_DIMS + 1];
    int64_t n = 0;
    if (ctx->node->opset < 5) {
        const int64_t *a = tdm_attr_ints(ctx->node, "shape", &n);
        if (n > TDM_MAX_DIMS)
            return tdm_op_fail(ctx, TDM_ERR_UNSUPPORTED, "shape has %lld dims (max %d)",
                               (long long)n, TDM_MAX_DIMS);
        for (int64_t i = 0; i < n; i++)
            shape[i] = a[i];
    } else {
        const tdm_tensor *st;
        s = tdm_shp_input(ctx, 1, "shape", false, &st);
        if (s != TDM_OK)
            return s;
        TDM_NEED_VALUE(ctx, 1);
        s = tdm_shp_read_ints(ctx, st, "shape", shape, TDM_MAX_DIMS, &n);
        if (s != TDM_OK)
            return s;
    }
    bool allowzero = ctx->node->opset >= 14 && tdm_attr_int(ctx->node, "allowzero", 0) != 0;
    int neg = -1;
    int64_t known = 1, numel = tdm_tensor_numel(x);
    for (int i = 0; i < (int)n; i++) {
        if (shape[i] == 0 && !allowzero) {
            if (i >= x->ndim)
                return tdm_op_fail(ctx, TDM_ERR_SHAPE,
                                   "shape[%d] = 0 copies a dim the rank-%d input does not have", i,
                                   (int)x->ndim);
            shape[i] = x->dims[i];
        }
        if (shape[i] == -1) {
            if (neg >= 0)
                return tdm_op_fail(ctx, TDM_ERR_SHAPE, "shape has more than one -1");
            neg = i;
            continue;
        }
        if (shape[i] < 0)
            return tdm_op_fail(ctx, TDM_ERR_SHAPE, "shape[%d] = %lld is invalid", i,
                               (long long)shape[i]);
        if (__builtin_mul_overflow(known, shape[i], &known))
            return tdm_op_fail(ctx, TDM_ERR_SHAPE, "shape overflows");
    }
    if (neg >= 0) {
        if (known == 0 || numel % known != 0)
            return tdm_op_fail(ctx, TDM_ERR_SHAPE,
                               "cannot reshape %lld elements with -1 and the other dims' product "
                               "%lld",
                               (long long)numel, (long long)known);
        shape[neg] = numel / known;
        known = numel;
    }
    if (known != numel) {
        char buf[128];
        return tdm_op_fail(ctx, TDM_ERR_SHAPE, "cannot reshape %s (%lld elements) to %lld elements",
                           tdm_tensor_shape_str(x, buf, sizeof buf), (long long)numel,
                           (long long)known);
    }
    return tdm_shp_set_out(ctx, 0, x->dtype, (int)n, shape);
}

/* ---- Squeeze / Unsqueeze ------------------------------------------------------ */

/* Axes from the attribute (opset < 13) or from input 1; *present false when neither. */
static tdm_status read_axes(tdm_op_ctx *ctx, int64_t *axes, int64_t max, int64_t *n, bool *present)
{
    *present = false;
    *n = 0;
    if (ctx->node->opset < 13) {
        const tdm_attr *a = tdm_node_attr(ctx->node, "axes");
        if (a == NULL || a->type != TDM_ATTR_INTS)
            return TDM_OK;
        if (a->n > max)
            return tdm_op_fail(ctx, TDM_ERR_INVALID_ARG, "too many axes (%lld)", (long long)a->n);
        memcpy(axes, a->ints, (size_t)a->n * sizeof *axes);
        *n = a->n;
        *present = true;
        return TDM_OK;
    }
    const tdm_tensor *t = tdm_shp_in(ctx, 1);
    if (t == NULL)
        return TDM_OK;
    TDM_NEED_VALUE(ctx, 1);
    *present = true;
    return tdm_shp_read_ints(ctx, t, "axes", axes, max, n);
}

tdm_status tdm_op_squeeze_infer(tdm_op_ctx *ctx)
{
    const tdm_tensor *x;
    tdm_status s = tdm_shp_input(ctx, 0, "data", true, &x);
    if (s != TDM_OK)
        return s;
    int64_t axes[TDM_MAX_DIMS];
    int64_t n;
    bool present;
    s = read_axes(ctx, axes, TDM_MAX_DIMS, &n, &present);
    if (s != TDM_OK)
        return s;
    bool drop[TDM_MAX_DIMS];
    int norm[TDM_MAX_DIMS];
    /* an empty axes list means "all size-1 axes", as when absent (onnxruntime does the same) */
    if (present && n > 0) {
        s = tdm_shp_axes(ctx, axes, n, x->ndim, "axis", norm, drop);
        if (s != TDM_OK)
            return s;
        for (int64_t i = 0; i < n; i++)
            if (x->dims[norm[i]] != 1)
                return tdm_op_fail(ctx, TDM_ERR_SHAPE, "cannot squeeze axis %lld of size %lld",
                                   (long long)axes[i], (long long)x->dims[norm[i]]);
    } else {
        for (int k = 0; k < x->ndim; k++)
            drop[k] = x->dims[k] == 1;
    }
    int64_t d[TDM_MAX_DIMS];
    int r = 0;
    for (int k = 0; k < x->ndim; k++)
        if (!drop[k])
            d[r++] = x->dims[k];
    return tdm_shp_set_out(ctx, 0, x->dtype, r, d);
}

tdm_status tdm_op_unsqueeze_infer(tdm_op_ctx *ctx)
{
    const tdm_tensor *x;
    tdm_status s = tdm_shp_input(ctx, 0, "data", true, &x);
    if (s != TDM_OK)
        return s;
    int64_t axes[TDM_MAX_DIMS + 1];
    int64_t n;
    bool present;
    s = read_axes(ctx, axes, TDM_MAX_DIMS + 1, &n, &present);
    if (s != TDM_OK)
        return s;
    if (!present)
        return tdm_op_fail(ctx, TDM_ERR_INVALID_ARG, "axes are required");
    int64_t r = x->ndim + n;
    if (r > TDM_MAX_DIMS)
        return tdm_op_fail(ctx, TDM_ERR_UNSUPPORTED, "output rank %lld exceeds %d", (long long)r,
                           TDM_MAX_DIMS);
    bool ins[TDM_MAX_DIMS];
    int norm[TDM_MAX_DIMS + 1];
    s = tdm_shp_axes(ctx, axes, n, (int)r, "axis", norm, ins);
    if (s != TDM_OK)
        return s;
    int64_t d[TDM_MAX_DIMS];
    int j = 0;
    for (int k = 0; k < r; k++)
        d[k] = ins[k] ? 1 : x->dims[j++];
    return tdm_shp_set_out(ctx, 0, x->dtype, (int)r, d);
}

/* ---- Shape / Size ------------------------------------------------------------- */

static void shape_range(const tdm_op_ctx *ctx, int r, int64_t *start, int64_t *end)
{
    int64_t b = 0, e = r;
    if (ctx->node->opset >= 15) {
        b = tdm_attr_int(ctx->node, "start", 0);
        e = tdm_attr_int(ctx->node, "end", r);
    }
    if (b < 0)
        b += r;
    if (e < 0)
        e += r;
    b = b < 0 ? 0 : (b > r ? r : b);
    e = e < 0 ? 0 : (e > r ? r : e);
    *start = b;
    *end = e < b ? b : e;
}

tdm_status tdm_op_shape_infer(tdm_op_ctx *ctx)
{
    const tdm_tensor *x = tdm_shp_in(ctx, 0);
    if (x == NULL)
        return tdm_op_fail(ctx, TDM_ERR_INVALID_ARG, "missing input");
    if (x->ndim < 0)
        return TDM_ERR_NEEDS_VALUE;
    int64_t b, e;
    shape_range(ctx, x->ndim, &b, &e);
    int64_t d = e - b;
    return tdm_shp_set_out(ctx, 0, TDM_DTYPE_INT64, 1, &d);
}

tdm_status tdm_op_shape_run(tdm_op_ctx *ctx)
{
    const tdm_tensor *x = ctx->in[0];
    int64_t b, e;
    shape_range(ctx, x->ndim, &b, &e);
    int64_t *y = ctx->out[0]->data;
    for (int64_t k = b; k < e; k++)
        y[k - b] = x->dims[k];
    return TDM_OK;
}

tdm_status tdm_op_size_infer(tdm_op_ctx *ctx)
{
    const tdm_tensor *x;
    tdm_status s = tdm_shp_input(ctx, 0, "data", false, &x);
    if (s != TDM_OK)
        return s;
    return tdm_shp_set_out(ctx, 0, TDM_DTYPE_INT64, 0, NULL);
}

tdm_status tdm_op_size_run(tdm_op_ctx *ctx)
{
    *(int64_t *)ctx->out[0]->data = tdm_tensor_numel(ctx->in[0]);
    return TDM_OK;
}

/* ---- Constant ------------------------------------------------------------------ */

/* A borrowed view of the node's value, whichever attribute holds it. */
static tdm_status constant_view(tdm_op_ctx *ctx, tdm_tensor *v)
{
    memset(v, 0, sizeof *v);
    const tdm_node *n = ctx->node;
    for (int i = 0; i < n->n_attr; i++) {
        const tdm_attr *a = &n->attrs[i];
        if (strcmp(a->name, "value") == 0 && a->type == TDM_ATTR_TENSOR) {
            *v = a->t;
            v->flags = 0;
            if (tdm_dtype_size(v->dtype) == 0)
                return tdm_op_fail(ctx, TDM_ERR_UNSUPPORTED, "value of dtype %s",
                                   tdm_dtype_name(v->dtype));
            if (v->ndim < 0 || v->ndim > TDM_MAX_DIMS)
                return tdm_op_fail(ctx, TDM_ERR_INVALID_ARG, "value has rank %d", (int)v->ndim);
            if (v->data == NULL && tdm_tensor_numel(v) != 0)
                return tdm_op_fail(ctx, TDM_ERR_INVALID_ARG, "value has no data");
            return TDM_OK;
        }
        if (strcmp(a->name, "value_float") == 0 && a->type == TDM_ATTR_FLOAT) {
            v->dtype = TDM_DTYPE_FLOAT32;
            v->data = (void *)&a->f;
            return TDM_OK;
        }
        if (strcmp(a->name, "value_int") == 0 && a->type == TDM_ATTR_INT) {
            v->dtype = TDM_DTYPE_INT64;
            v->data = (void *)&a->i;
            return TDM_OK;
        }
        if (strcmp(a->name, "value_floats") == 0 && a->type == TDM_ATTR_FLOATS) {
            v->dtype = TDM_DTYPE_FLOAT32;
            v->ndim = 1;
            v->dims[0] = a->n;
            v->data = a->floats;
            return TDM_OK;
        }
        if (strcmp(a->name, "value_ints") == 0 && a->type == TDM_ATTR_INTS) {
            v->dtype = TDM_DTYPE_INT64;
            v->ndim = 1;
            v->dims[0] = a->n;
            v->data = a->ints;
            return TDM_OK;
        }
        if (strcmp(a->name, "sparse_value") == 0 || strncmp(a->name, "value_string", 12) == 0)
            return tdm_op_fail(ctx, TDM_ERR_UNSUPPORTED, "attribute %s is not supported", a->name);
    }
    return tdm_op_fail(ctx, TDM_ERR_INVALID_ARG, "no value attribute");
}

tdm_status tdm_op_constant_infer(tdm_op_ctx *ctx)
{
    tdm_tensor v;
    tdm_status s = constant_view(ctx, &v);
    if (s != TDM_OK)
        return s;
    return tdm_shp_set_out(ctx, 0, v.dtype, v.ndim, v.dims);
}

tdm_status tdm_op_constant_run(tdm_op_ctx *ctx)
{
    tdm_tensor v;
    tdm_status s = constant_view(ctx, &v);
    if (s != TDM_OK)
        return s;
    size_t n = tdm_tensor_nbytes(&v);
    if (n > 0)
        memcpy(ctx->out[0]->data, v.data, n);
    return TDM_OK;
}

/* ---- ConstantOfShape ------------------------------------------------------------ */

static tdm_status cos_value(tdm_op_ctx *ctx, tdm_dtype *dt, const void **elem)
{
    static const float zero = 0.0f;
    const tdm_tensor *v = tdm_attr_tensor(ctx->node, "value");
    if (v == NULL) {
        *dt = TDM_DTYPE_FLOAT32;
        *elem = &zero;
        return TDM_OK;
    }
    if (tdm_dtype_size(v->dtype) == 0 || v->ndim < 0 || v->ndim > TDM_MAX_DIMS ||
        tdm_tensor_numel(v) != 1 || v->data == NULL)
        return tdm_op_fail(ctx, TDM_ERR_INVALID_ARG, "value must be a one-element tensor");
    *dt = v->dtype;
    *elem = v->data;
    return TDM_OK;
}

tdm_status tdm_op_constant_of_shape_infer(tdm_op_ctx *ctx)
{
    const tdm_tensor *st;
    tdm_status s = tdm_shp_input(ctx, 0, "input", false, &st);
    if (s != TDM_OK)
        return s;
    TDM_NEED_VALUE(ctx, 0);
    int64_t d[TDM_MAX_DIMS];
    int64_t n;
    s = tdm_shp_read_ints(ctx, st, "input", d, TDM_MAX_DIMS, &n);
    if (s != TDM_OK)
        return s;
    tdm_dtype dt = TDM_DTYPE_UNDEFINED;
    const void *elem = NULL;
    s = cos_value(ctx, &dt, &elem);
    if (s != TDM_OK)
        return s;
    return tdm_shp_set_out(ctx, 0, dt, (int)n, d);
}

tdm_status tdm_op_constant_of_shape_run(tdm_op_ctx *ctx)
{
    tdm_dtype dt = TDM_DTYPE_UNDEFINED;
    const void *elem = NULL;
    tdm_status s = cos_value(ctx, &dt, &elem);
    if (s != TDM_OK)
        return s;
    tdm_tensor *y = ctx->out[0];
    tdm_shp_fill(y->data, elem, tdm_dtype_size(dt), tdm_tensor_numel(y));
    return TDM_OK;
}

/* ---- Range ------------------------------------------------------------------------ */

static bool range_is_int(tdm_dtype dt)
{
    return dt == TDM_DTYPE_INT16 || dt == TDM_DTYPE_INT32 || dt == TDM_DTYPE_INT64;
}

static tdm_status range_count(tdm_op_ctx *ctx, int64_t *count)
{
    const tdm_tensor *t[3];
    static const char *const names[3] = {"start", "limit", "delta"};
    for (int i = 0; i < 3; i++) {
        tdm_status s = tdm_shp_input(ctx, i, names[i], true, &t[i]);
        if (s != TDM_OK)
            return s;
        TDM_NEED_VALUE(ctx, i);
        if (tdm_tensor_numel(t[i]) != 1)
            return tdm_op_fail(ctx, TDM_ERR_SHAPE, "%s must be a scalar", names[i]);
        if (t[i]->dtype != t[0]->dtype)
            return tdm_op_fail(ctx, TDM_ERR_SHAPE, "%s is %s but start is %s", names[i],
                               tdm_dtype_name(t[i]->dtype), tdm_dtype_name(t[0]->dtype));
    }
    tdm_dtype dt = t[0]->dtype;
    if (range_is_int(dt)) {
        int64_t a = tdm_tensor_get_i64(t[0], 0), b = tdm_tensor_get_i64(t[1], 0);
        int64_t d = tdm_tensor_get_i64(t[2], 0), diff;
        if (d == 0)
            return tdm_op_fail(ctx, TDM_ERR_INVALID_ARG, "delta is 0");
        if (__builtin_sub_overflow(b, a, &diff))
            return tdm_op_fail(ctx, TDM_ERR_INVALID_ARG, "limit - start overflows");
        if ((d > 0 && diff <= 0) || (d < 0 && diff >= 0)) {
            *count = 0;
        } else if (diff == INT64_MIN) {
            return tdm_op_fail(ctx, TDM_ERR_NOMEM, "range is too large");
        } else {
            *count = diff / d + (diff % d != 0);
        }
        return TDM_OK;
    }
    if (dt != TDM_DTYPE_FLOAT32 && dt != TDM_DTYPE_FLOAT64 && dt != TDM_DTYPE_FLOAT16)
        return tdm_op_fail(ctx, TDM_ERR_UNSUPPORTED, "dtype %s", tdm_dtype_name(dt));
    double a = tdm_tensor_get_f64(t[0], 0), b = tdm_tensor_get_f64(t[1], 0);
    double d = tdm_tensor_get_f64(t[2], 0);
    double n = ceil((b - a) / d);
    if (d == 0 || !isfinite(n))
        return tdm_op_fail(ctx, TDM_ERR_INVALID_ARG, "start %g, limit %g, delta %g give no range",
                           a, b, d);
    if (n > 1e15)
        return tdm_op_fail(ctx, TDM_ERR_NOMEM, "range of %g elements is too large", n);
    *count = n < 0 ? 0 : (int64_t)n;
    return TDM_OK;
}

tdm_status tdm_op_range_infer(tdm_op_ctx *ctx)
{
    int64_t n;
    tdm_status s = range_count(ctx, &n);
    if (s != TDM_OK)
        return s;
    return tdm_shp_set_out(ctx, 0, ctx->in[0]->dtype, 1, &n);
}

tdm_status tdm_op_range_run(tdm_op_ctx *ctx)
{
    tdm_tensor *y = ctx->out[0];
    int64_t n = y->dims[0];
    tdm_dtype dt = y->dtype;
    if (range_is_int(dt)) {
        int64_t a = tdm_tensor_get_i64(ctx->in[0], 0), d = tdm_tensor_get_i64(ctx->in[2], 0);
        for (int64_t i = 0; i < n; i++) {
            int64_t v = a + i * d; /* stays between start and limit */
            if (dt == TDM_DTYPE_INT64)
                ((int64_t *)y->data)[i] = v;
            else if (dt == TDM_DTYPE_INT32)
                ((int32_t *)y->data)[i] = (int32_t)v;
            else
                ((int16_t *)y->data)[i] = (int16_t)v;
        }
        return TDM_OK;
    }
    double a = tdm_tensor_get_f64(ctx->in[0], 0), d = tdm_tensor_get_f64(ctx->in[2], 0);
    size_t es = tdm_dtype_size(dt);
    for (int64_t i = 0; i < n; i++)
        tdm_shp_scalar_from_f64(dt, a + (double)i * d, (char *)y->data + (size_t)i * es);
    return TDM_OK;
}

/* ---- EyeLike --------------------------------------------------------------------- */

static tdm_dtype eye_dtype(const tdm_op_ctx *ctx)
{
    int64_t dt = tdm_attr_int(ctx->node, "dtype", 0);
    return dt == 0 ? ctx->in[0]->dtype : (tdm_dtype)dt;
}

tdm_status tdm_op_eye_like_infer(tdm_op_ctx *ctx)
{
    const tdm_tensor *x;
    tdm_status s = tdm_shp_input(ctx, 0, "input", false, &x);
    if (s != TDM_OK)
        return s;
    if (x->ndim != 2)
        return tdm_op_fail(ctx, TDM_ERR_SHAPE, "input must be 2-D, got rank %d", (int)x->ndim);
    int64_t want = tdm_attr_int(ctx->node, "dtype", 0);
    if (want < 0 || want > TDM_DTYPE_BFLOAT16)
        return tdm_op_fail(ctx, TDM_ERR_UNSUPPORTED, "dtype %lld", (long long)want);
    tdm_dtype dt = eye_dtype(ctx);
    unsigned char one[8];
    if (tdm_dtype_size(dt) == 0 || !tdm_shp_scalar_from_f64(dt, 1.0, one))
        return tdm_op_fail(ctx, TDM_ERR_UNSUPPORTED, "dtype %d", (int)dt);
    return tdm_shp_set_out(ctx, 0, dt, 2, x->dims);
}

tdm_status tdm_op_eye_like_run(tdm_op_ctx *ctx)
{
    tdm_tensor *y = ctx->out[0];
    size_t es = tdm_dtype_size(y->dtype);
    unsigned char one[8];
    tdm_shp_scalar_from_f64(y->dtype, 1.0, one);
    memset(y->data, 0, tdm_tensor_nbytes(y));
    int64_t rows = y->dims[0], cols = y->dims[1];
    int64_t k = tdm_attr_int(ctx->node, "k", 0);
    if (k >= cols || k <= -rows)
        return TDM_OK;
    for (int64_t i = k < 0 ? -k : 0; i < rows && i + k < cols; i++)
        memcpy((char *)y->data + (size_t)(i * cols + i + k) * es, one, es);
    return TDM_OK;
}

/* ---- Transpose ---------------------------------------------------------------------- */

static tdm_status transpose_perm(tdm_op_ctx *ctx, const tdm_tensor *x, int *perm)
{
    int64_t n;
    const int64_t *p = tdm_attr_ints(ctx->node, "perm", &n);
    int r = x->ndim;
    if (p == NULL) {
        for (int k = 0; k < r; k++)
            perm[k] = r - 1 - k;
        return TDM_OK;
    }
    if (n != r)
        return tdm_op_fail(ctx, TDM_ERR_INVALID_ARG, "perm has %lld entries for rank %d",
                           (long long)n, r);
    bool seen[TDM_MAX_DIMS];
    return tdm_shp_axes(ctx, p, n, r, "perm entry", perm, seen);
}

tdm_status tdm_op_transpose_infer(tdm_op_ctx *ctx)
{
    const tdm_tensor *x;
    tdm_status s = tdm_shp_input(ctx, 0, "data", true, &x);
    if (s != TDM_OK)
        return s;
    int perm[TDM_MAX_DIMS];
    s = transpose_perm(ctx, x, perm);
    if (s != TDM_OK)
        return s;
    int64_t d[TDM_MAX_DIMS];
    for (int k = 0; k < x->ndim; k++)
        d[k] = x->dims[perm[k]];
    return tdm_shp_set_out(ctx, 0, x->dtype, x->ndim, d);
}

tdm_status tdm_op_transpose_run(tdm_op_ctx *ctx)
{
    const tdm_tensor *x = ctx->in[0];
    int perm[TDM_MAX_DIMS];
    tdm_status s = transpose_perm(ctx, x, perm);
    if (s != TDM_OK)
        return s;
    int64_t xs[TDM_MAX_DIMS], vs[TDM_MAX_DIMS];
    tdm_shp_strides(x->dims, x->ndim, xs);
    for (int k = 0; k < x->ndim; k++)
        vs[k] = xs[perm[k]];
    tdm_shp_strided_copy(ctx->out[0]->data, x->data, tdm_dtype_size(x->dtype), x->ndim,
                         ctx->out[0]->dims, vs, ctx->pool);
    return TDM_OK;
}

/* ---- DepthToSpace / SpaceToDepth -------------------------------------------------- */

static tdm_status block_input(tdm_op_ctx *ctx, const tdm_tensor **x, int64_t *b)
{
    tdm_status s = tdm_shp_input(ctx, 0, "input", true, x);
    if (s != TDM_OK)
        return s;
    if ((*x)->ndim != 4)
        return tdm_op_fail(ctx, TDM_ERR_SHAPE, "input must be 4-D NCHW, got rank %d",
                           (int)(*x)->ndim);
    *b = tdm_attr_int(ctx->node, "blocksize", 0);
    if (*b <= 0 || *b > (1 << 20))
        return tdm_op_fail(ctx, TDM_ERR_INVALID_ARG, "blocksize %lld is invalid", (long long)*b);
    return TDM_OK;
}

static bool dts_crd(const tdm_op_ctx *ctx)
{
    return strcmp(tdm_attr_str(ctx->node, "mode", "DCR"), "CRD") == 0;
}

tdm_status tdm_op_depth_to_space_infer(tdm_op_ctx *ctx)
{
    const tdm_tensor *x = NULL;
    int64_t b = 1;
    tdm_status s = block_input(ctx, &x, &b);
    if (s != TDM_OK)
        return s;
    const char *mode = tdm_attr_str(ctx->node, "mode", "DCR");
    if (strcmp(mode, "DCR") != 0 && strcmp(mode, "CRD") != 0)
        return tdm_op_fail(ctx, TDM_ERR_INVALID_ARG, "mode '%s' is not DCR or CRD", mode);
    if (x->dims[1] % (b * b) != 0)
        return tdm_op_fail(ctx, TDM_ERR_SHAPE,
                           "channels %lld are not divisible by blocksize^2 %lld",
                           (long long)x->dims[1], (long long)(b * b));
    int64_t d[4] = {x->dims[0], x->dims[1] / (b * b), 0, 0};
    if (__builtin_mul_overflow(x->dims[2], b, &d[2]) ||
        __builtin_mul_overflow(x->dims[3], b, &d[3]))
        return tdm_op_fail(ctx, TDM_ERR_SHAPE, "output size overflows");
    return tdm_shp_set_out(ctx, 0, x->dtype, 4, d);
}

tdm_status tdm_op_depth_to_space_run(tdm_op_ctx *ctx)
{
    const tdm_tensor *x = ctx->in[0];
    int64_t b = tdm_attr_int(ctx->node, "blocksize", 1);
    int64_t C = x->dims[1], H = x->dims[2], W = x->dims[3], c2 = C / (b * b);
    int64_t sC = H * W;
    /* view in output order [N, C', H, b1, W, b2] */
    int64_t dims[6] = {x->dims[0], c2, H, b, W, b};
    int64_t str[6] = {C * sC, sC, W, 0, 1, 0};
    if (dts_crd(ctx)) { /* channel = c' * b * b + b1 * b + b2 */
        str[1] = b * b * sC;
        str[3] = b * sC;
        str[5] = sC;
    } else { /* DCR: channel = (b1 * b + b2) * C' + c' */
        str[3] = b * c2 * sC;
        str[5] = c2 * sC;
    }
    tdm_shp_strided_copy(ctx->out[0]->data, x->data, tdm_dtype_size(x->dtype), 6, dims, str,
                         ctx->pool);
    return TDM_OK;
}

tdm_status tdm_op_space_to_depth_infer(tdm_op_ctx *ctx)
{
    const tdm_tensor *x = NULL;
    int64_t b = 1;
    tdm_status s = block_input(ctx, &x, &b);
    if (s != TDM_OK)
        return s;
    if (x->dims[2] % b != 0 || x->dims[3] % b != 0)
        return tdm_op_fail(ctx, TDM_ERR_SHAPE, "spatial dims %lldx%lld are not divisible by %lld",
                           (long long)x->dims[2], (long long)x->dims[3], (long long)b);
    int64_t d[4] = {x->dims[0], 0, x->dims[2] / b, x->dims[3] / b};
    if (__builtin_mul_overflow(x->dims[1], b * b, &d[1]))
        return tdm_op_fail(ctx, TDM_ERR_SHAPE, "output size overflows");
    return tdm_shp_set_out(ctx, 0, x->dtype, 4, d);
}

tdm_status tdm_op_space_to_depth_run(tdm_op_ctx *ctx)
{
    const tdm_tensor *x = ctx->in[0];
    int64_t b = tdm_attr_int(ctx->node, "blocksize", 1);
    int64_t C = x->dims[1], H = x->dims[2], W = x->dims[3];
    /* view in output order [N, b1, b2, C, H', W']; out channel = (b1 * b + b2) * C + c */
    int64_t dims[6] = {x->dims[0], b, b, C, H / b, W / b};
    int64_t str[6] = {C * H * W, W, 1, H * W, b * W, b};
    tdm_shp_strided_copy(ctx->out[0]->data, x->data, tdm_dtype_size(x->dtype), 6, dims, str,
                         ctx->pool);
    return TDM_OK;
}

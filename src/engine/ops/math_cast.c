/*
 * Cast and CastLike.
 *
 * Both are one call to tdm_math_convert (math_common.c), whose comment
 * gives the conversion rules; large tensors are converted in parallel
 * slices. Strings are not a tensor dtype this engine stores, so a cast from
 * or to string is reported as unsupported rather than guessed at.
 */
#include <string.h>

#include "engine/ops/math_ops.h"

static bool castable(tdm_dtype dt)
{
    return tdm_math_is_float(dt) || tdm_math_is_signed_int(dt) || tdm_math_is_unsigned_int(dt) ||
           dt == TDM_DTYPE_BOOL;
}

static bool is_castlike(const tdm_op_ctx *ctx)
{
    return strcmp(ctx->node->op_type, "CastLike") == 0;
}

tdm_status tdm_math_cast_infer(tdm_op_ctx *ctx)
{
    bool like = is_castlike(ctx);
    tdm_status s = tdm_math_check_inputs(ctx, like ? 2 : 1);
    if (s != TDM_OK)
        return s;
    if (ctx->n_out < 1 || ctx->out[0] == NULL)
        return tdm_op_fail(ctx, TDM_ERR_INVALID_ARG, "output 0 is required");
    const tdm_tensor *x = ctx->in[0];
    tdm_dtype to;
    if (like) {
        to = ctx->in[1]->dtype;
    } else {
        const tdm_attr *a = tdm_node_attr(ctx->node, "to");
        if (a == NULL || a->type != TDM_ATTR_INT)
            return tdm_op_fail(ctx, TDM_ERR_INVALID_ARG, "attribute 'to' is missing");
        if (a->i < 0 || a->i > 64)
            return tdm_op_fail(ctx, TDM_ERR_UNSUPPORTED, "to=%lld is not a known dtype",
                               (long long)a->i);
        to = (tdm_dtype)a->i;
    }
    if (!castable(x->dtype))
        return tdm_op_fail(ctx, TDM_ERR_UNSUPPORTED, "cast from %s is not supported",
                           tdm_dtype_name(x->dtype));
    if (!castable(to))
        return tdm_op_fail(ctx, TDM_ERR_UNSUPPORTED, "cast to %s (%d) is not supported",
                           tdm_dtype_name(to), (int)to);
    tdm_tensor_set_shape(ctx->out[0], to, x->ndim, x->dims);
    return TDM_OK;
}

typedef struct cast_job {
    const char *x;
    char *y;
    tdm_dtype sdt, ddt;
    size_t es, ed;
} cast_job;

static void cast_range(void *arg, int64_t b, int64_t e, int worker)
{
    (void)worker;
    const cast_job *j = arg;
    bool ok =
        tdm_math_convert(j->x + (size_t)b * j->es, j->sdt, j->y + (size_t)b * j->ed, j->ddt, e - b);
    (void)ok; /* dtypes checked by infer */
}

tdm_status tdm_math_cast_run(tdm_op_ctx *ctx)
{
    const tdm_tensor *x = ctx->in[0];
    tdm_tensor *y = ctx->out[0];
    cast_job j = {
        x->data, y->data, x->dtype, y->dtype, tdm_dtype_size(x->dtype), tdm_dtype_size(y->dtype)};
    tdm_math_parallel(ctx, tdm_tensor_numel(x), TDM_MATH_PAR_MIN, cast_range, &j);
    return TDM_OK;
}

/*
 * Reductions (ReduceSum/Mean/Max/Min/Prod/L1/L2/SumSquare/LogSum/LogSumExp)
 * and ArgMax/ArgMin.
 *
 * Every reduction is brought to the shape (outer, R, inner): size-1 dims are
 * dropped and neighbouring dims of the same kind (kept / reduced) merged.
 * When the reduced dims still form more than one run (axes 0 and 2 of a
 * 3-D tensor), the input is first permuted into scratch with the kept dims
 * in front, which costs one copy and leaves a single run. Then:
 *   inner == 1: each output is the reduction of one contiguous row; float32
 *       rows use the SIMD row kernels of math_vec.h (8/16 partial sums).
 *   inner > 1: output rows accumulate input rows element by element, which
 *       streams memory once and vectorises over the inner dim.
 * Work items are (outer index, block of inner columns) and run on the pool
 * when the tensor is large. float32 and float64 are reduced natively,
 * float16/bfloat16 through float32 and the integer types through int64
 * (sums and products wrap), converting in and out of scratch.
 *
 * Axes come from the attribute (before opset 18, or 13 for ReduceSum) or
 * from input 1; an empty list reduces everything unless
 * noop_with_empty_axes is set. Max/Min propagate NaN; reducing an empty
 * set gives the identity (0 for sums, 1 for Prod, -inf/+inf for Max/Min,
 * NaN for Mean, -inf for LogSumExp).
 */
#include <assert.h>
#include <math.h>
#include <string.h>

#include "base/alloc.h"
#include "engine/ops/math_ops.h"
#include "engine/ops/math_vec.h"

typedef enum rop {
    R_SUM,
    R_MEAN,
    R_MAX,
    R_MIN,
    R_PROD,
    R_L1,
    R_L2,
    R_SUMSQ,
    R_LOGSUM,
    R_LSE,
} rop;

typedef struct red_desc {
    const char *name;
    rop op;
} red_desc;

static const red_desc k_reduce_ops[] = {
    {"ReduceSum", R_SUM},       {"ReduceMean", R_MEAN},       {"ReduceMax", R_MAX},
    {"ReduceMin", R_MIN},       {"ReduceProd", R_PROD},       {"ReduceL1", R_L1},
    {"ReduceL2", R_L2},         {"ReduceSumSquare", R_SUMSQ}, {"ReduceLogSum", R_LOGSUM},
    {"ReduceLogSumExp", R_LSE},
};

static const red_desc *reduce_desc(const tdm_op_ctx *ctx)
{
    if (ctx->state != NULL)
        return ctx->state;
    for (size_t i = 0; i < sizeof k_reduce_ops / sizeof k_reduce_ops[0]; i++)
        if (strcmp(k_reduce_ops[i].name, ctx->node->op_type) == 0)
            return &k_reduce_ops[i];
    return NULL;
}

tdm_status tdm_math_reduce_prepare(tdm_op_ctx *ctx)
{
    ctx->state = (void *)reduce_desc(ctx);
    return TDM_OK;
}

/* ---- axes and shapes ------------------------------------------------------------- */

typedef struct red_shape {
    bool noop; /* empty axes with noop_with_empty_axes: identity */
    bool reduced[TDM_MAX_DIMS];
    int out_nd;
    int64_t out_dims[TDM_MAX_DIMS];
} red_shape;

/* Reads axes (attribute or input 1) into the reduced mask. */
static tdm_status reduce_axes(tdm_op_ctx *ctx, red_shape *rs)
{
    const tdm_tensor *x = ctx->in[0];
    const int rank = x->ndim;
    int64_t axes[64];
    int64_t n_axes = 0;
    bool from_input = ctx->n_in > 1 && ctx->in[1] != NULL;
    if (from_input) {
        TDM_NEED_VALUE(ctx, 1);
        const tdm_tensor *a = ctx->in[1];
        if (a->dtype != TDM_DTYPE_INT64 && a->dtype != TDM_DTYPE_INT32)
            return tdm_op_fail(ctx, TDM_ERR_SHAPE, "axes must be int64, got %s",
                               tdm_dtype_name(a->dtype));
        if (a->ndim > 1)
            return tdm_op_fail(ctx, TDM_ERR_SHAPE, "axes must be 1-D, has rank %d", (int)a->ndim);
        n_axes = tdm_tensor_numel(a);
        if (n_axes > 64)
            return tdm_op_fail(ctx, TDM_ERR_SHAPE, "%lld axes for rank %d", (long long)n_axes,
                               rank);
        for (int64_t i = 0; i < n_axes; i++)
            axes[i] = tdm_tensor_get_i64(a, i);
    } else {
        const int64_t *v = tdm_attr_ints(ctx->node, "axes", &n_axes);
        if (n_axes > 64)
            return tdm_op_fail(ctx, TDM_ERR_SHAPE, "%lld axes for rank %d", (long long)n_axes,
                               rank);
        for (int64_t i = 0; i < n_axes; i++)
            axes[i] = v[i];
    }
    memset(rs->reduced, 0, sizeof rs->reduced);
    rs->noop = false;
    if (n_axes == 0) {
        if (tdm_attr_int(ctx->node, "noop_with_empty_axes", 0) != 0) {
            rs->noop = true;
        } else {
            for (int d = 0; d < rank; d++)
                rs->reduced[d] = true;
        }
    }
    for (int64_t i = 0; i < n_axes; i++) {
        int ax;
        tdm_status s = tdm_math_axis(ctx, "axis", axes[i], rank, &ax);
        if (s != TDM_OK)
            return s;
        if (rs->reduced[ax])
            return tdm_op_fail(ctx, TDM_ERR_SHAPE, "axis %lld is repeated", (long long)axes[i]);
        rs->reduced[ax] = true;
    }
    bool keep = tdm_attr_int(ctx->node, "keepdims", 1) != 0;
    rs->out_nd = 0;
    for (int d = 0; d < rank; d++) {
        if (!rs->reduced[d] || rs->noop)
            rs->out_dims[rs->out_nd++] = x->dims[d];
        else if (keep)
            rs->out_dims[rs->out_nd++] = 1;
    }
    return TDM_OK;
}

static bool reduce_dtype_ok(tdm_dtype dt)
{
    return (tdm_math_is_float(dt) || tdm_math_is_signed_int(dt) || tdm_math_is_unsigned_int(dt)) &&
           dt != TDM_DTYPE_UINT64;
}

tdm_status tdm_math_reduce_infer(tdm_op_ctx *ctx)
{
    const red_desc *d = reduce_desc(ctx);
    if (d == NULL)
        return tdm_op_fail(ctx, TDM_ERR_INTERNAL, "not a reduction");
    tdm_status s = tdm_math_check_inputs(ctx, 1);
    if (s != TDM_OK)
        return s;
    if (ctx->n_out < 1 || ctx->out[0] == NULL)
        return tdm_op_fail(ctx, TDM_ERR_INVALID_ARG, "output 0 is required");
    const tdm_tensor *x = ctx->in[0];
    if (!reduce_dtype_ok(x->dtype))
        return tdm_op_fail(ctx, TDM_ERR_UNSUPPORTED, "dtype %s is not supported",
                           tdm_dtype_name(x->dtype));
    red_shape rs;
    s = reduce_axes(ctx, &rs);
    if (s != TDM_OK)
        return s;
    tdm_tensor_set_shape(ctx->out[0], x->dtype, rs.out_nd, rs.out_dims);
    return TDM_OK;
}

/* Copies src (dims) into dst permuted: dst dim k is src dim perm[k]. */
static void permute_copy(const char *src, char *dst, int nd, const int64_t *dims, const int *perm,
                         size_t es)
{
    int64_t sstride[TDM_MAX_DIMS], ddims[TDM_MAX_DIMS], st[TDM_MAX_DIMS], idx[TDM_MAX_DIMS];
    int64_t c = 1;
    for (int d = nd - 1; d >= 0; d--) {
        sstride[d] = c;
        c *= dims[d];
    }
    for (int k = 0; k < nd; k++) {
        ddims[k] = dims[perm[k]];
        st[k] = sstride[perm[k]];
        idx[k] = 0;
    }
    int64_t total = c, off = 0;
    const int64_t inner = ddims[nd - 1], ist = st[nd - 1];
    for (int64_t pos = 0; pos < total; pos += inner) {
        for (int64_t j = 0; j < inner; j++)
            memcpy(dst + (size_t)(pos + j) * es, src + (size_t)(off + j * ist) * es, es);
        for (int k = nd - 2; k >= 0; k--) {
            off += st[k];
            if (++idx[k] < ddims[k])
                break;
            off -= st[k] * ddims[k];
            idx[k] = 0;
        }
    }
}

/* ---- kernels ---------------------------------------------------------------------- */

#define IB 512 /* inner columns per work item */

typedef struct red_job {
    rop op;
    const void *x;
    void *y;
    int64_t outer, R, inner, nblk;
    const tdm_vec_kernels *vk;
} red_job;

#define NAN_F(v) ((v) != (v))
#define NAN_I(v) 0

/* Column reductions over (o, [j0, j1)) for compute type T, accumulating in
 * the output row (ACC is the accumulator type for sums). */
#define DEF_COLS(NAME, T, ACC, ISNAN, LO, HI, SQRT, LOG, EXP)                   \
    static void NAME(const red_job *jb, int64_t o, int64_t j0, int64_t j1)      \
    {                                                                           \
        const T *x = (const T *)jb->x + o * jb->R * jb->inner;                  \
        T *y = (T *)jb->y + o * jb->inner;                                      \
        const int64_t R = jb->R, inner = jb->inner, w = j1 - j0;                \
        ACC acc[IB];                                                            \
        switch (jb->op) {                                                       \
        case R_MAX:                                                             \
        case R_MIN:                                                             \
        case R_LSE: {                                                           \
            const bool mx = jb->op != R_MIN;                                    \
            for (int64_t j = 0; j < w; j++)                                     \
                acc[j] = R > 0 ? (ACC)x[j0 + j] : (mx ? (ACC)(LO) : (ACC)(HI)); \
            for (int64_t r = 1; r < R; r++) {                                   \
                const T *row = x + r * inner + j0;                              \
                for (int64_t j = 0; j < w; j++) {                               \
                    ACC v = (ACC)row[j];                                        \
                    bool take = mx ? v > acc[j] : v < acc[j];                   \
                    acc[j] = (take || ISNAN(v)) && !ISNAN(acc[j]) ? v : acc[j]; \
                }                                                               \
            }                                                                   \
            if (jb->op != R_LSE) {                                              \
                for (int64_t j = 0; j < w; j++)                                 \
                    y[j0 + j] = (T)acc[j];                                      \
                return;                                                         \
            }                                                                   \
            double s[IB] = {0};                                                 \
            for (int64_t r = 0; r < R; r++) {                                   \
                const T *row = x + r * inner + j0;                              \
                for (int64_t j = 0; j < w; j++)                                 \
                    s[j] += EXP((double)row[j] - (double)acc[j]);               \
            }                                                                   \
            for (int64_t j = 0; j < w; j++) {                                   \
                double m = (double)acc[j];                                      \
                y[j0 + j] = (T)(isinf(m) ? m : m + LOG(s[j]));                  \
            }                                                                   \
            return;                                                             \
        }                                                                       \
        case R_PROD:                                                            \
            for (int64_t j = 0; j < w; j++)                                     \
                acc[j] = 1;                                                     \
            for (int64_t r = 0; r < R; r++) {                                   \
                const T *row = x + r * inner + j0;                              \
                for (int64_t j = 0; j < w; j++)                                 \
                    acc[j] = MUL(acc[j], (ACC)row[j]);                          \
            }                                                                   \
            break;                                                              \
        default: {                                                              \
            const rop op = jb->op;                                              \
            for (int64_t j = 0; j < w; j++)                                     \
                acc[j] = 0;                                                     \
            for (int64_t r = 0; r < R; r++) {                                   \
                const T *row = x + r * inner + j0;                              \
                if (op == R_SUM || op == R_MEAN || op == R_LOGSUM) {            \
                    for (int64_t j = 0; j < w; j++)                             \
                        acc[j] = ADD(acc[j], (ACC)row[j]);                      \
                } else if (op == R_L1) {                                        \
                    for (int64_t j = 0; j < w; j++)                             \
                        acc[j] = ADD(acc[j], ABS((ACC)row[j]));                 \
                } else {                                                        \
                    for (int64_t j = 0; j < w; j++)                             \
                        acc[j] = ADD(acc[j], MUL((ACC)row[j], (ACC)row[j]));    \
                }                                                               \
            }                                                                   \
            break;                                                              \
        }                                                                       \
        }                                                                       \
        for (int64_t j = 0; j < w; j++) {                                       \
            ACC a = acc[j];                                                     \
            switch (jb->op) {                                                   \
            case R_MEAN: y[j0 + j] = MEAN(a, R); break;                         \
            case R_L2: y[j0 + j] = (T)SQRT((double)a); break;                   \
            case R_LOGSUM: y[j0 + j] = (T)LOG((double)a); break;                \
            default: y[j0 + j] = (T)a; break;                                   \
            }                                                                   \
        }                                                                       \
    }

/* float types: plain arithmetic */
#define ADD(a, b) ((a) + (b))
#define MUL(a, b) ((a) * (b))
#define ABS(a) ((a) < 0 ? -(a) : (a))
#define MEAN(a, R) ((a) / (R))
DEF_COLS(cols_f32, float, float, NAN_F, -INFINITY, INFINITY, sqrt, log, exp)
DEF_COLS(cols_f64, double, double, NAN_F, -INFINITY, INFINITY, sqrt, log, exp)
#undef ADD
#undef MUL
#undef ABS
#undef MEAN
/* int64: wrapping arithmetic, mean by truncating division (0 for R == 0) */
#define ADD(a, b) ((int64_t)((uint64_t)(a) + (uint64_t)(b)))
#define MUL(a, b) ((int64_t)((uint64_t)(a) * (uint64_t)(b)))
#define ABS(a) ((a) < 0 ? (int64_t)(0 - (uint64_t)(a)) : (a))
#define MEAN(a, R) ((R) > 0 ? (a) / (R) : 0)
DEF_COLS(cols_i64, int64_t, int64_t, NAN_I, INT64_MIN, INT64_MAX, sqrt, log, exp)
#undef ADD
#undef MUL
#undef ABS
#undef MEAN

/* float32 rows (inner == 1) through the SIMD row kernels. */
static float row_f32(const red_job *jb, const float *x)
{
    const int64_t R = jb->R;
    const tdm_vec_kernels *vk = jb->vk;
    switch (jb->op) {
    case R_SUM: return vk->reduce[TDM_VEC_RSUM](x, R);
    case R_MEAN: return vk->reduce[TDM_VEC_RSUM](x, R) / (float)R;
    case R_MAX: return vk->reduce[TDM_VEC_RMAX](x, R);
    case R_MIN: return vk->reduce[TDM_VEC_RMIN](x, R);
    case R_L1: return vk->reduce[TDM_VEC_RASUM](x, R);
    case R_L2: return sqrtf(vk->reduce[TDM_VEC_RSUMSQ](x, R));
    case R_SUMSQ: return vk->reduce[TDM_VEC_RSUMSQ](x, R);
    case R_LOGSUM: return logf(vk->reduce[TDM_VEC_RSUM](x, R));
    case R_LSE: {
        float m = vk->reduce[TDM_VEC_RMAX](x, R);
        if (isinf(m) || isnan(m))
            return m;
        return m + logf(vk->exp_sum(x, m, NULL, R));
    }
    case R_PROD: {
        float p = 1;
        for (int64_t i = 0; i < R; i++)
            p *= x[i];
        return p;
    }
    }
    return 0;
}

static void red_range(void *arg, int64_t b, int64_t e, int worker)
{
    (void)worker;
    const red_job *jb = arg;
    for (int64_t it = b; it < e; it++) {
        int64_t o = it / jb->nblk, blk = it % jb->nblk;
        int64_t j0 = blk * IB, j1 = j0 + IB < jb->inner ? j0 + IB : jb->inner;
        if (jb->inner == 1)
            ((float *)jb->y)[o] = row_f32(jb, (const float *)jb->x + o * jb->R);
        else
            cols_f32(jb, o, j0, j1);
    }
}

typedef struct red_any {
    red_job jb;
    tdm_dtype ct; /* FLOAT64 or INT64 */
} red_any;

static void red_any_range(void *arg, int64_t b, int64_t e, int worker)
{
    (void)worker;
    const red_any *ra = arg;
    const red_job *jb = &ra->jb;
    for (int64_t it = b; it < e; it++) {
        int64_t o = it / jb->nblk, blk = it % jb->nblk;
        int64_t j0 = blk * IB, j1 = j0 + IB < jb->inner ? j0 + IB : jb->inner;
        if (ra->ct == TDM_DTYPE_FLOAT64)
            cols_f64(jb, o, j0, j1);
        else
            cols_i64(jb, o, j0, j1);
    }
}

tdm_status tdm_math_reduce_run(tdm_op_ctx *ctx)
{
    const red_desc *d = reduce_desc(ctx);
    assert(d != NULL);
    const tdm_tensor *x = ctx->in[0];
    tdm_tensor *y = ctx->out[0];
    red_shape rs;
    tdm_status s = reduce_axes(ctx, &rs);
    if (s != TDM_OK)
        return s;
    const size_t es = tdm_dtype_size(x->dtype);
    const int64_t numel = tdm_tensor_numel(x);
    if (rs.noop) {
        if (numel > 0)
            memcpy(y->data, x->data, (size_t)numel * es);
        return TDM_OK;
    }
    if (tdm_tensor_numel(y) == 0)
        return TDM_OK;

    /* collapse into runs of kept (K) and reduced (R) dims, size-1 dims dropped */
    int nrun = 0, n_rruns = 0;
    int64_t run_len[TDM_MAX_DIMS];
    bool run_red[TDM_MAX_DIMS];
    for (int dd = 0; dd < x->ndim; dd++) {
        if (x->dims[dd] == 1)
            continue;
        if (nrun > 0 && run_red[nrun - 1] == rs.reduced[dd]) {
            run_len[nrun - 1] *= x->dims[dd];
        } else {
            run_red[nrun] = rs.reduced[dd];
            run_len[nrun] = x->dims[dd];
            n_rruns += rs.reduced[dd];
            nrun++;
        }
    }

    /* scratch: permuted input, converted input, converted output */
    const void *src = x->data;
    tdm_dtype ct = x->dtype;
    if (ct == TDM_DTYPE_FLOAT16 || ct == TDM_DTYPE_BFLOAT16)
        ct = TDM_DTYPE_FLOAT32;
    else if (tdm_math_is_signed_int(ct) || tdm_math_is_unsigned_int(ct))
        ct = TDM_DTYPE_INT64;
    const size_t cs = tdm_dtype_size(ct);
    const int64_t ny = tdm_tensor_numel(y);
    size_t perm_bytes = n_rruns > 1 ? ((size_t)numel * es + 63) / 64 * 64 : 0;
    size_t conv_bytes = ct != x->dtype ? ((size_t)numel * cs + 63) / 64 * 64 : 0;
    size_t out_bytes = ct != x->dtype ? (size_t)ny * cs : 0;
    char *buf = NULL;
    if (perm_bytes + conv_bytes + out_bytes > 0) {
        buf = tdm_op_scratch(ctx, perm_bytes + conv_bytes + out_bytes);
        if (buf == NULL)
            return tdm_op_fail(ctx, TDM_ERR_NOMEM, "out of memory for %lld elements",
                               (long long)numel);
    }
    int64_t outer = 1, R = 1, inner = 1;
    if (n_rruns > 1) {
        int perm[TDM_MAX_DIMS], k = 0;
        for (int dd = 0; dd < nrun; dd++)
            if (!run_red[dd])
                perm[k++] = dd;
        for (int dd = 0; dd < nrun; dd++)
            if (run_red[dd])
                perm[k++] = dd;
        permute_copy(src, buf, nrun, run_len, perm, es);
        src = buf;
        for (int dd = 0; dd < nrun; dd++) {
            if (run_red[dd])
                R *= run_len[dd];
            else
                outer *= run_len[dd];
        }
    } else {
        bool seen_r = false;
        for (int dd = 0; dd < nrun; dd++) {
            if (run_red[dd]) {
                R *= run_len[dd];
                seen_r = true;
            } else if (seen_r) {
                inner *= run_len[dd];
            } else {
                outer *= run_len[dd];
            }
        }
        if (!seen_r) /* every reduced dim has size 1 (or there are none) */
            R = numel == 0 ? 0 : 1;
    }
    if (numel == 0)
        R = 0; /* reducing an empty set: outputs take the identity */
    void *cin = (void *)src, *cout = y->data;
    if (ct != x->dtype) {
        cin = buf + perm_bytes;
        cout = buf + perm_bytes + conv_bytes;
        (void)tdm_math_convert(src, x->dtype, cin, ct, numel);
    }
    red_any ra;
    memset(&ra, 0, sizeof ra);
    ra.ct = ct;
    ra.jb.op = d->op;
    ra.jb.x = cin;
    ra.jb.y = cout;
    ra.jb.outer = outer;
    ra.jb.R = R;
    ra.jb.inner = inner;
    ra.jb.nblk = (inner + IB - 1) / IB;
    int64_t items = outer * ra.jb.nblk;
    int64_t min_par = numel >= TDM_MATH_PAR_MIN ? 1 : items + 1;
    if (ct == TDM_DTYPE_FLOAT32) {
        ra.jb.vk = tdm_vec_get();
        tdm_math_parallel(ctx, items, min_par, red_range, &ra.jb);
    } else {
        tdm_math_parallel(ctx, items, min_par, red_any_range, &ra);
    }
    if (ct != x->dtype)
        (void)tdm_math_convert(cout, ct, y->data, y->dtype, ny);
    return TDM_OK;
}

/* ---- ArgMax / ArgMin -------------------------------------------------------------- */

tdm_status tdm_math_arg_infer(tdm_op_ctx *ctx)
{
    tdm_status s = tdm_math_check_inputs(ctx, 1);
    if (s != TDM_OK)
        return s;
    if (ctx->n_out < 1 || ctx->out[0] == NULL)
        return tdm_op_fail(ctx, TDM_ERR_INVALID_ARG, "output 0 is required");
    const tdm_tensor *x = ctx->in[0];
    tdm_dtype dt = x->dtype;
    if (!tdm_math_is_float(dt) && !tdm_math_is_signed_int(dt) && !tdm_math_is_unsigned_int(dt))
        return tdm_op_fail(ctx, TDM_ERR_UNSUPPORTED, "dtype %s is not supported",
                           tdm_dtype_name(dt));
    int axis;
    s = tdm_math_axis(ctx, "axis", tdm_attr_int(ctx->node, "axis", 0), x->ndim, &axis);
    if (s != TDM_OK)
        return s;
    if (x->dims[axis] == 0)
        return tdm_op_fail(ctx, TDM_ERR_SHAPE, "axis %d has size 0", axis);
    bool keep = tdm_attr_int(ctx->node, "keepdims", 1) != 0;
    int64_t dims[TDM_MAX_DIMS];
    int nd = 0;
    for (int d = 0; d < x->ndim; d++) {
        if (d != axis)
            dims[nd++] = x->dims[d];
        else if (keep)
            dims[nd++] = 1;
    }
    tdm_tensor_set_shape(ctx->out[0], TDM_DTYPE_INT64, nd, dims);
    return TDM_OK;
}

/* NaN counts as the best value for both (numpy's argmax/argmin), first one wins. */
#define DEF_ARG(NAME, T, CT, LD, ISNAN)                                                   \
    static void NAME(const void *xv, int64_t *y, int64_t outer, int64_t R, int64_t inner, \
                     bool is_max, bool last, CT *best)                                    \
    {                                                                                     \
        const T *x = xv;                                                                  \
        for (int64_t o = 0; o < outer; o++) {                                             \
            const T *xo = x + o * R * inner;                                              \
            int64_t *yo = y + o * inner;                                                  \
            for (int64_t j = 0; j < inner; j++) {                                         \
                best[j] = LD(xo[j]);                                                      \
                yo[j] = 0;                                                                \
            }                                                                             \
            for (int64_t r = 1; r < R; r++) {                                             \
                const T *row = xo + r * inner;                                            \
                for (int64_t j = 0; j < inner; j++) {                                     \
                    CT v = LD(row[j]), b = best[j];                                       \
                    bool take;                                                            \
                    if (ISNAN(b))                                                         \
                        take = last && ISNAN(v);                                          \
                    else if (ISNAN(v))                                                    \
                        take = true;                                                      \
                    else                                                                  \
                        take = (is_max ? v > b : v < b) || (last && v == b);              \
                    if (take) {                                                           \
                        best[j] = v;                                                      \
                        yo[j] = r;                                                        \
                    }                                                                     \
                }                                                                         \
            }                                                                             \
        }                                                                                 \
    }

#define LD_PLAIN(v) (v)
DEF_ARG(arg_f32, float, float, LD_PLAIN, NAN_F)
DEF_ARG(arg_f64, double, double, LD_PLAIN, NAN_F)
DEF_ARG(arg_f16, uint16_t, float, tdm_fp16_to_fp32, NAN_F)
DEF_ARG(arg_bf16, uint16_t, float, tdm_bf16_to_fp32, NAN_F)
DEF_ARG(arg_i8, int8_t, int64_t, LD_PLAIN, NAN_I)
DEF_ARG(arg_i16, int16_t, int64_t, LD_PLAIN, NAN_I)
DEF_ARG(arg_i32, int32_t, int64_t, LD_PLAIN, NAN_I)
DEF_ARG(arg_i64, int64_t, int64_t, LD_PLAIN, NAN_I)
DEF_ARG(arg_u8, uint8_t, uint64_t, LD_PLAIN, NAN_I)
DEF_ARG(arg_u16, uint16_t, uint64_t, LD_PLAIN, NAN_I)
DEF_ARG(arg_u32, uint32_t, uint64_t, LD_PLAIN, NAN_I)
DEF_ARG(arg_u64, uint64_t, uint64_t, LD_PLAIN, NAN_I)

tdm_status tdm_math_arg_run(tdm_op_ctx *ctx)
{
    const tdm_tensor *x = ctx->in[0];
    int axis;
    tdm_status s = tdm_math_axis(ctx, "axis", tdm_attr_int(ctx->node, "axis", 0), x->ndim, &axis);
    if (s != TDM_OK)
        return s;
    int64_t outer = 1, inner = 1, R = x->dims[axis];
    for (int d = 0; d < axis; d++)
        outer *= x->dims[d];
    for (int d = axis + 1; d < x->ndim; d++)
        inner *= x->dims[d];
    if (outer * inner == 0)
        return TDM_OK;
    bool is_max = strcmp(ctx->node->op_type, "ArgMax") == 0;
    bool last = tdm_attr_int(ctx->node, "select_last_index", 0) != 0;
    void *best = tdm_op_scratch(ctx, (size_t)inner * 8);
    if (best == NULL)
        return tdm_op_fail(ctx, TDM_ERR_NOMEM, "out of memory for %lld columns", (long long)inner);
    int64_t *y = ctx->out[0]->data;
    switch (x->dtype) {
    case TDM_DTYPE_FLOAT32: arg_f32(x->data, y, outer, R, inner, is_max, last, best); break;
    case TDM_DTYPE_FLOAT64: arg_f64(x->data, y, outer, R, inner, is_max, last, best); break;
    case TDM_DTYPE_FLOAT16: arg_f16(x->data, y, outer, R, inner, is_max, last, best); break;
    case TDM_DTYPE_BFLOAT16: arg_bf16(x->data, y, outer, R, inner, is_max, last, best); break;
    case TDM_DTYPE_INT8: arg_i8(x->data, y, outer, R, inner, is_max, last, best); break;
    case TDM_DTYPE_INT16: arg_i16(x->data, y, outer, R, inner, is_max, last, best); break;
    case TDM_DTYPE_INT32: arg_i32(x->data, y, outer, R, inner, is_max, last, best); break;
    case TDM_DTYPE_INT64: arg_i64(x->data, y, outer, R, inner, is_max, last, best); break;
    case TDM_DTYPE_UINT8: arg_u8(x->data, y, outer, R, inner, is_max, last, best); break;
    case TDM_DTYPE_UINT16: arg_u16(x->data, y, outer, R, inner, is_max, last, best); break;
    case TDM_DTYPE_UINT32: arg_u32(x->data, y, outer, R, inner, is_max, last, best); break;
    case TDM_DTYPE_UINT64: arg_u64(x->data, y, outer, R, inner, is_max, last, best); break;
    default: assert(!"dtype checked by infer"); break;
    }
    return TDM_OK;
}

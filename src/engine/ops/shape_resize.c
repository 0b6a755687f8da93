/*
 * Resize (opsets 10 to 19) and Upsample (7 to 9).
 *
 * Every interpolation mode is separable, so the op is planned per axis: for
 * each output coordinate we compute the input coordinate (the
 * coordinate_transformation_mode), then a short list of taps, i.e. (input
 * index, weight) pairs: one for nearest, two for linear, four for cubic.
 * Taps with equal indices are merged and zero weights dropped, so an axis
 * that is not resized collapses to a single weight-1 tap and costs nothing.
 * Out-of-range taps are clamped, which is the edge padding the reference
 * uses; tf_crop_and_resize marks coordinates outside the input instead, and
 * those outputs take extrapolation_value.
 *
 * Two executors use the plan:
 *   - when every axis has a single weight-1 tap (any nearest resize), the
 *     output is a pure gather, done by element size for every dtype;
 *   - otherwise a float kernel walks output rows: the taps of the outer axes
 *     are combined once per row into (offset, weight) pairs, then each output
 *     element of the row sums its innermost taps over them. For the common
 *     bilinear NCHW case that is 2 row pairs x 2 column taps per element, with
 *     an unrolled loop of its own.
 *     Other dtypes are converted to float32 around that kernel.
 *
 * Versions: before opset 11 (Resize 10, Upsample) coordinates are asymmetric
 * and nearest rounds like onnxruntime's legacy mode (floor when enlarging,
 * ceil when shrinking). Output sizes from scales are floor(scale * size),
 * computed in float like onnxruntime. Antialiasing (opset 18) is not
 * implemented and is refused when it would change the result.
 */
#include <math.h>
#include <string.h>

#include "base/alloc.h"
#include "engine/ops/shape_ops.h"

enum { RS_NEAREST, RS_LINEAR, RS_CUBIC };
enum {
    RS_HALF_PIXEL,
    RS_HALF_PIXEL_SYMMETRIC,
    RS_PYTORCH_HALF_PIXEL,
    RS_ALIGN_CORNERS,
    RS_ASYMMETRIC,
    RS_TF_HALF_PIXEL_FOR_NN,
    RS_TF_CROP_AND_RESIZE,
};
enum { RS_ROUND_PREFER_FLOOR, RS_ROUND_PREFER_CEIL, RS_FLOOR, RS_CEIL, RS_SIMPLE };

/* Most combined taps of the outer axes per row (4 cubic axes). */
#define RS_MAX_COMBOS 256

typedef struct rs_cfg {
    int mode, coord, nearest;
    double cubic_a;
    bool exclude_outside;
    float extrapolation;
    int rank;
    double scale[TDM_MAX_DIMS];
    int64_t out[TDM_MAX_DIMS];
    /* scale * input length: fractional when scales are given; the reference's
     * align_corners and tf_crop_and_resize use it rather than the integer out */
    double length[TDM_MAX_DIMS];
    double roi_start[TDM_MAX_DIMS], roi_end[TDM_MAX_DIMS];
} rs_cfg;

static bool is_upsample(const tdm_op_ctx *ctx)
{
    return strcmp(ctx->node->op_type, "Upsample") == 0;
}

static bool legacy(const tdm_op_ctx *ctx)
{
    return is_upsample(ctx) || ctx->node->opset < 11;
}

static tdm_status parse_enum(tdm_op_ctx *ctx, const char *attr, const char *def,
                             const char *const *names, int count, int *out)
{
    const char *v = tdm_attr_str(ctx->node, attr, def);
    for (int i = 0; i < count; i++)
        if (names[i] != NULL && strcmp(v, names[i]) == 0) {
            *out = i;
            return TDM_OK;
        }
    return tdm_op_fail(ctx, TDM_ERR_UNSUPPORTED, "%s '%s' is not supported", attr, v);
}

/* Reads a float tensor (any float dtype) of exactly `n` values. */
static tdm_status read_floats(tdm_op_ctx *ctx, const tdm_tensor *t, const char *what, double *out,
                              int64_t n)
{
    if (t->dtype != TDM_DTYPE_FLOAT32 && t->dtype != TDM_DTYPE_FLOAT64 &&
        t->dtype != TDM_DTYPE_FLOAT16)
        return tdm_op_fail(ctx, TDM_ERR_SHAPE, "%s must be float, got %s", what,
                           tdm_dtype_name(t->dtype));
    if (tdm_tensor_numel(t) != n)
        return tdm_op_fail(ctx, TDM_ERR_SHAPE, "%s has %lld values, expected %lld", what,
                           (long long)tdm_tensor_numel(t), (long long)n);
    if (n > 0 && t->data == NULL)
        return TDM_ERR_NEEDS_VALUE;
    for (int64_t i = 0; i < n; i++)
        out[i] = tdm_tensor_get_f64(t, i);
    return TDM_OK;
}

static const tdm_tensor *nonempty(const tdm_tensor *t)
{
    return t != NULL && t->ndim >= 0 && (t->ndim == 0 || tdm_tensor_numel(t) > 0) ? t : NULL;
}

/* Fills cfg from attributes and inputs; `need_roi` reads roi (run time). */
static tdm_status rs_config(tdm_op_ctx *ctx, const tdm_tensor *x, bool need_roi, rs_cfg *c)
{
    static const char *const modes[] = {"nearest", "linear", "cubic", "bilinear"};
    static const char *const coords[] = {
        "half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners",
        "asymmetric", "tf_half_pixel_for_nn", "tf_crop_and_resize"};
    static const char *const nearests[] = {"round_prefer_floor", "round_prefer_ceil", "floor",
                                           "ceil"};
    const tdm_node *node = ctx->node;
    int r = x->ndim;
    c->rank = r;
    if (r < 1)
        return tdm_op_fail(ctx, TDM_ERR_SHAPE, "input must have rank >= 1");
    tdm_status s = parse_enum(ctx, "mode", "nearest", modes, is_upsample(ctx) ? 4 : 3, &c->mode);
    if (s != TDM_OK)
        return s;
    if (c->mode == 3)
        c->mode = RS_LINEAR;
    if (legacy(ctx)) {
        if (c->mode == RS_CUBIC)
            return tdm_op_fail(ctx, TDM_ERR_UNSUPPORTED, "cubic before opset 11");
        c->coord = RS_ASYMMETRIC;
        c->nearest = RS_SIMPLE;
    } else {
        s = parse_enum(ctx, "coordinate_transformation_mode", "half_pixel", coords, 7, &c->coord);
        if (s == TDM_OK)
            s = parse_enum(ctx, "nearest_mode", "round_prefer_floor", nearests, 4, &c->nearest);
        if (s != TDM_OK)
            return s;
    }
    c->cubic_a = tdm_attr_float(node, "cubic_coeff_a", -0.75f);
    c->exclude_outside = tdm_attr_int(node, "exclude_outside", 0) != 0;
    c->extrapolation = tdm_attr_float(node, "extrapolation_value", 0.0f);

    /* axes (opset 18) */
    int ax[TDM_MAX_DIMS];
    int nax = r;
    for (int k = 0; k < r; k++)
        ax[k] = k;
    if (!is_upsample(ctx) && node->opset >= 18) {
        int64_t na;
        const int64_t *a = tdm_attr_ints(node, "axes", &na);
        if (a != NULL) {
            bool seen[TDM_MAX_DIMS];
            if (na > r)
                return tdm_op_fail(ctx, TDM_ERR_INVALID_ARG, "%lld axes for rank %d", (long long)na,
                                   r);
            s = tdm_shp_axes(ctx, a, na, r, "axis", ax, seen);
            if (s != TDM_OK)
                return s;
            nax = (int)na;
        }
    }

    /* where scales / sizes / roi come from */
    const tdm_tensor *scales = NULL, *sizes = NULL, *roi = NULL;
    double sc[TDM_MAX_DIMS];
    if (is_upsample(ctx) && node->opset < 9) {
        int64_t n;
        const float *a = tdm_attr_floats(node, "scales", &n);
        if (a == NULL || n != r)
            return tdm_op_fail(ctx, TDM_ERR_INVALID_ARG, "scales must have %d values", r);
        for (int k = 0; k < r; k++)
            sc[k] = a[k];
    } else if (legacy(ctx)) {
        scales = tdm_shp_in(ctx, 1);
        if (scales == NULL)
            return tdm_op_fail(ctx, TDM_ERR_INVALID_ARG, "scales are required");
    } else {
        roi = nonempty(tdm_shp_in(ctx, 1));
        scales = nonempty(tdm_shp_in(ctx, 2));
        sizes = nonempty(tdm_shp_in(ctx, 3));
        if ((scales == NULL) == (sizes == NULL))
            return tdm_op_fail(ctx, TDM_ERR_INVALID_ARG,
                               "exactly one of scales and sizes must be given");
    }
    for (int k = 0; k < r; k++) {
        c->roi_start[k] = 0.0;
        c->roi_end[k] = 1.0;
        c->out[k] = x->dims[k];
        c->scale[k] = 1.0;
        c->length[k] = (double)x->dims[k];
    }
    if (scales != NULL) {
        if (scales->data == NULL)
            return TDM_ERR_NEEDS_VALUE;
        double v[TDM_MAX_DIMS];
        s = read_floats(ctx, scales, "scales", v, nax);
        if (s != TDM_OK)
            return s;
        for (int i = 0; i < nax; i++)
            sc[ax[i]] = v[i];
    }
    if (scales != NULL || (is_upsample(ctx) && node->opset < 9)) {
        for (int i = 0; i < nax; i++) {
            int k = ax[i];
            if (!(sc[k] > 0) || !isfinite(sc[k]))
                return tdm_op_fail(ctx, TDM_ERR_INVALID_ARG, "scale %g for axis %d is invalid",
                                   sc[k], k);
            float o = (float)sc[k] * (float)x->dims[k]; /* float like onnxruntime */
            if (!(o < 1e15f))
                return tdm_op_fail(ctx, TDM_ERR_NOMEM, "output dim %d is too large", k);
            c->out[k] = (int64_t)o;
            c->scale[k] = sc[k];
            c->length[k] = sc[k] * (double)x->dims[k];
        }
    } else {
        if (sizes->data == NULL)
            return TDM_ERR_NEEDS_VALUE;
        int64_t v[TDM_MAX_DIMS], n;
        s = tdm_shp_read_ints(ctx, sizes, "sizes", v, TDM_MAX_DIMS, &n);
        if (s != TDM_OK)
            return s;
        if (n != nax)
            return tdm_op_fail(ctx, TDM_ERR_SHAPE, "sizes has %lld values, expected %d",
                               (long long)n, nax);
        static const char *const policies[] = {"stretch", "not_larger", "not_smaller"};
        int policy = 0;
        if (node->opset >= 18) {
            s = parse_enum(ctx, "keep_aspect_ratio_policy", "stretch", policies, 3, &policy);
            if (s != TDM_OK)
                return s;
        }
        for (int i = 0; i < nax; i++)
            if (v[i] < 0)
                return tdm_op_fail(ctx, TDM_ERR_SHAPE, "sizes[%d] = %lld is negative", i,
                                   (long long)v[i]);
        if (policy == 0) {
            for (int i = 0; i < nax; i++) {
                int k = ax[i];
                c->out[k] = v[i];
                c->length[k] = (double)v[i];
                c->scale[k] = x->dims[k] > 0 ? (double)v[i] / (double)x->dims[k] : 1.0;
            }
        } else {
            double g = policy == 1 ? INFINITY : 0.0;
            for (int i = 0; i < nax; i++) {
                double q = x->dims[ax[i]] > 0 ? (double)v[i] / (double)x->dims[ax[i]] : 1.0;
                g = policy == 1 ? (q < g ? q : g) : (q > g ? q : g);
            }
            for (int i = 0; i < nax; i++) {
                int k = ax[i];
                c->scale[k] = g;
                c->out[k] = (int64_t)floor(g * (double)x->dims[k] + 0.5);
                c->length[k] = (double)c->out[k];
            }
        }
    }
    for (int k = 0; k < r; k++)
        if (c->out[k] > 0 && x->dims[k] == 0)
            return tdm_op_fail(ctx, TDM_ERR_SHAPE, "cannot resize the empty axis %d to %lld", k,
                               (long long)c->out[k]);
    if (!legacy(ctx) && node->opset >= 18 && tdm_attr_int(node, "antialias", 0) != 0 &&
        c->mode != RS_NEAREST)
        for (int k = 0; k < r; k++)
            if (c->scale[k] < 1.0)
                return tdm_op_fail(ctx, TDM_ERR_UNSUPPORTED, "antialiased downsampling");
    if (c->coord == RS_TF_CROP_AND_RESIZE && roi == NULL)
        return tdm_op_fail(ctx, TDM_ERR_INVALID_ARG, "tf_crop_and_resize needs roi");
    if (c->coord == RS_TF_CROP_AND_RESIZE && need_roi) {
        double v[2 * TDM_MAX_DIMS];
        s = read_floats(ctx, roi, "roi", v, 2 * nax);
        if (s != TDM_OK)
            return s;
        for (int i = 0; i < nax; i++) {
            c->roi_start[ax[i]] = v[i];
            c->roi_end[ax[i]] = v[i + nax];
        }
    }
    return TDM_OK;
}

tdm_status tdm_op_resize_infer(tdm_op_ctx *ctx)
{
    const tdm_tensor *x;
    tdm_status s = tdm_shp_input(ctx, 0, "X", true, &x);
    if (s != TDM_OK)
        return s;
    rs_cfg c;
    s = rs_config(ctx, x, false, &c);
    if (s != TDM_OK)
        return s;
    return tdm_shp_set_out(ctx, 0, x->dtype, x->ndim, c.out);
}

/* ---- per-axis plan ---------------------------------------------------------------- */

typedef struct rs_axis {
    int K;        /* taps per output coordinate */
    int64_t *idx; /* [out * K] input indices */
    float *w;     /* [out * K] weights */
    uint8_t *ext; /* [out] 1: outside the input (tf_crop_and_resize) */
} rs_axis;

static double rs_coord(const rs_cfg *c, int k, int64_t o, int64_t in)
{
    double s = c->scale[k], out = c->length[k], x = (double)o;
    switch (c->coord) {
    case RS_HALF_PIXEL: return (x + 0.5) / s - 0.5;
    case RS_HALF_PIXEL_SYMMETRIC: {
        double adj = (double)c->out[k] / (s * (double)in), center = (double)in / 2;
        return center * (1 - adj) + (x + 0.5) / s - 0.5;
    }
    case RS_PYTORCH_HALF_PIXEL: return out > 1 ? (x + 0.5) / s - 0.5 : 0.0;
    case RS_ALIGN_CORNERS: return out == 1 ? 0.0 : x * (double)(in - 1) / (out - 1);
    case RS_TF_HALF_PIXEL_FOR_NN: return (x + 0.5) / s;
    case RS_TF_CROP_AND_RESIZE: {
        double a = c->roi_start[k], b = c->roi_end[k];
        if (out > 1)
            return a * (double)(in - 1) + x * (b - a) * (double)(in - 1) / (out - 1);
        return 0.5 * (a + b) * (double)(in - 1);
    }
    default: return x / s; /* asymmetric */
    }
}

static int64_t rs_nearest(const rs_cfg *c, int k, double x)
{
    double f = floor(x);
    switch (c->nearest) {
    case RS_ROUND_PREFER_FLOOR: return (int64_t)(x - f == 0.5 ? f : floor(x + 0.5));
    case RS_ROUND_PREFER_CEIL: return (int64_t)ceil(x - f == 0.5 ? x : floor(x + 0.5));
    case RS_FLOOR: return (int64_t)f;
    case RS_CEIL: return (int64_t)ceil(x);
    default: return c->scale[k] < 1.0 ? (int64_t)ceil(x) : (int64_t)x;
    }
}

static void cubic_coeffs(double a, double r, double *w)
{
    double t = r + 1;
    w[0] = ((a * t - 5 * a) * t + 8 * a) * t - 4 * a;
    w[1] = ((a + 2) * r - (a + 3)) * r * r + 1;
    t = 1 - r;
    w[2] = ((a + 2) * t - (a + 3)) * t * t + 1;
    t = 2 - r;
    w[3] = ((a * t - 5 * a) * t + 8 * a) * t - 4 * a;
}

/* Builds axis k's taps into the given arrays (capacity out * 4). */
static void rs_plan_axis(const rs_cfg *c, int k, int64_t in, rs_axis *a)
{
    int64_t out = c->out[k];
    int K = 1;
    for (int64_t o = 0; o < out; o++) {
        double x = rs_coord(c, k, o, in);
        a->ext[o] = c->coord == RS_TF_CROP_AND_RESIZE && (x < 0 || x > (double)(in - 1));
        if (!(x > -1e15 && x < 1e15)) /* NaN or absurd: any tap, the value is extrapolated */
            x = 0;
        int64_t ti[4];
        double tw[4];
        int n;
        if (c->mode == RS_NEAREST) {
            ti[0] = rs_nearest(c, k, x);
            tw[0] = 1.0;
            n = 1;
        } else if (c->mode == RS_LINEAR) {
            double f = floor(x);
            ti[0] = (int64_t)f;
            ti[1] = ti[0] + 1;
            tw[1] = x - f;
            tw[0] = 1.0 - tw[1];
            n = 2;
        } else {
            double f = floor(x);
            cubic_coeffs(c->cubic_a, x - f, tw);
            for (int t = 0; t < 4; t++)
                ti[t] = (int64_t)f - 1 + t;
            if (c->exclude_outside) {
                double sum = 0;
                for (int t = 0; t < 4; t++) {
                    if (ti[t] < 0 || ti[t] >= in)
                        tw[t] = 0;
                    sum += tw[t];
                }
                for (int t = 0; t < 4 && sum != 0; t++)
                    tw[t] /= sum;
            }
            n = 4;
        }
        /* clamp (edge padding), merge equal indices, drop zero weights */
        int m = 0;
        int64_t *idx = a->idx + o * 4;
        float *w = a->w + o * 4;
        for (int t = 0; t < n; t++) {
            int64_t i = ti[t] < 0 ? 0 : (ti[t] >= in ? in - 1 : ti[t]);
            if (tw[t] == 0)
                continue;
            int u = 0;
            while (u < m && idx[u] != i)
                u++;
            if (u == m) {
                idx[m] = i;
                w[m++] = 0;
            }
            w[u] += (float)tw[t];
        }
        if (m == 0) {
            idx[0] = 0;
            w[m++] = 0;
        }
        for (int t = m; t < 4; t++) {
            idx[t] = idx[0];
            w[t] = 0;
        }
        K = m > K ? m : K;
    }
    a->K = K;
    /* repack from stride 4 to stride K */
    for (int64_t o = 0; o < out && K < 4; o++)
        for (int t = 0; t < K; t++) {
            a->idx[o * K + t] = a->idx[o * 4 + t];
            a->w[o * K + t] = a->w[o * 4 + t];
        }
}

/* ---- gather executor (single weight-1 taps, any dtype) ----------------------------------- */

typedef struct rs_job {
    const tdm_tensor *x;
    int nd;
    int64_t odims[TDM_MAX_DIMS];
    int64_t xs[TDM_MAX_DIMS];
    rs_axis ax[TDM_MAX_DIMS];
    const void *src;
    void *dst;
    size_t es;
    unsigned char extval[8]; /* extrapolation value in the output dtype */
    float extf;
    bool any_ext; /* tf_crop_and_resize: some output lies outside the input */
} rs_job;

#define RS_GATHER_ROW(T, SUF)                                                                    \
    static void rs_row_##SUF(void *dst, const void *src, const int64_t *idx, const uint8_t *ext, \
                             int64_t n, const void *extval)                                      \
    {                                                                                            \
        T *d = dst, e;                                                                           \
        const T *s = src;                                                                        \
        memcpy(&e, extval, sizeof e);                                                            \
        for (int64_t i = 0; i < n; i++)                                                          \
            d[i] = ext[i] ? e : s[idx[i]];                                                       \
    }
RS_GATHER_ROW(uint8_t, 1)
RS_GATHER_ROW(uint16_t, 2)
RS_GATHER_ROW(uint32_t, 4)
RS_GATHER_ROW(uint64_t, 8)

typedef void (*rs_row_fn)(void *, const void *, const int64_t *, const uint8_t *, int64_t,
                          const void *);

static void rs_gather_rows(void *arg, int64_t begin, int64_t end, int worker)
{
    const rs_job *j = arg;
    (void)worker;
    int last = j->nd - 1;
    int64_t n = j->odims[last];
    rs_row_fn fn = j->es == 1 ? rs_row_1 : j->es == 2 ? rs_row_2 : j->es == 4 ? rs_row_4 : rs_row_8;
    for (int64_t row = begin; row < end; row++) {
        char *d = (char *)j->dst + (size_t)(row * n) * j->es;
        int64_t off = 0, r = row;
        bool ext = false;
        for (int k = last - 1; k >= 0; k--) {
            int64_t o = r % j->odims[k];
            r /= j->odims[k];
            ext |= j->ax[k].ext[o] != 0;
            off += j->ax[k].idx[o] * j->xs[k];
        }
        if (ext)
            tdm_shp_fill(d, j->extval, j->es, n);
        else
            fn(d, (const char *)j->src + (size_t)off * j->es, j->ax[last].idx, j->ax[last].ext, n,
               j->extval);
    }
}

/* ---- float executor ------------------------------------------------------------------------ */

static void rs_float_rows(void *arg, int64_t begin, int64_t end, int worker)
{
    const rs_job *j = arg;
    (void)worker;
    int last = j->nd - 1;
    int64_t n = j->odims[last];
    const rs_axis *ia = &j->ax[last];
    int K = ia->K;
    const float *src = j->src;
    int64_t coff[RS_MAX_COMBOS];
    float cw[RS_MAX_COMBOS];
    for (int64_t row = begin; row < end; row++) {
        float *d = (float *)j->dst + row * n;
        int nc = 1;
        coff[0] = 0;
        cw[0] = 1.0f;
        bool ext = false;
        int64_t r = row;
        for (int k = last - 1; k >= 0; k--) {
            const rs_axis *a = &j->ax[k];
            int64_t o = r % j->odims[k];
            r /= j->odims[k];
            ext |= a->ext[o] != 0;
            /* expand the combos by this axis' taps, last tap first so nothing is overwritten */
            for (int t = a->K - 1; t >= 0; t--)
                for (int c = 0; c < nc; c++) {
                    coff[t * nc + c] = coff[c] + a->idx[o * a->K + t] * j->xs[k];
                    cw[t * nc + c] = cw[c] * a->w[o * a->K + t];
                }
            nc *= a->K;
        }
        if (ext) {
            for (int64_t i = 0; i < n; i++)
                d[i] = j->extf;
            continue;
        }
        if (nc == 2 && K == 2 && !j->any_ext) { /* bilinear: the common case, unrolled */
            const float *s0 = src + coff[0], *s1 = src + coff[1];
            float c0 = cw[0], c1 = cw[1];
            for (int64_t i = 0; i < n; i++) {
                const int64_t *ti = ia->idx + 2 * i;
                const float *tw = ia->w + 2 * i;
                d[i] = c0 * (tw[0] * s0[ti[0]] + tw[1] * s0[ti[1]]) +
                       c1 * (tw[0] * s1[ti[0]] + tw[1] * s1[ti[1]]);
            }
            continue;
        }
        for (int64_t i = 0; i < n; i++) {
            if (ia->ext[i]) {
                d[i] = j->extf;
                continue;
            }
            const int64_t *ti = ia->idx + i * K;
            const float *tw = ia->w + i * K;
            float acc = 0;
            for (int c = 0; c < nc; c++) {
                const float *s = src + coff[c];
                float v = 0;
                for (int t = 0; t < K; t++)
                    v += tw[t] * s[ti[t]];
                acc += cw[c] * v;
            }
            d[i] = acc;
        }
    }
}

static void to_float(const tdm_tensor *t, float *out)
{
    int64_t n = tdm_tensor_numel(t);
    if (t->dtype == TDM_DTYPE_BFLOAT16) {
        for (int64_t i = 0; i < n; i++)
            out[i] = tdm_bf16_to_fp32(((const uint16_t *)t->data)[i]);
        return;
    }
    for (int64_t i = 0; i < n; i++)
        out[i] = (float)tdm_tensor_get_f64(t, i);
}

static void from_float(const float *in, tdm_tensor *t)
{
    int64_t n = tdm_tensor_numel(t);
    size_t es = tdm_dtype_size(t->dtype);
    bool integral = t->dtype != TDM_DTYPE_FLOAT16 && t->dtype != TDM_DTYPE_BFLOAT16 &&
                    t->dtype != TDM_DTYPE_FLOAT64;
    for (int64_t i = 0; i < n; i++)
        tdm_shp_scalar_from_f64(t->dtype, integral ? nearbyint(in[i]) : in[i],
                                (char *)t->data + (size_t)i * es);
}

tdm_status tdm_op_resize_run(tdm_op_ctx *ctx)
{
    const tdm_tensor *x = ctx->in[0];
    tdm_tensor *y = ctx->out[0];
    rs_cfg c;
    tdm_status s = rs_config(ctx, x, true, &c);
    if (s != TDM_OK)
        return s;
    int64_t total = tdm_tensor_numel(y);
    if (total == 0)
        return TDM_OK;
    int nd = x->ndim;
    bool f32 = x->dtype == TDM_DTYPE_FLOAT32;
    /* scratch: taps of every axis, then float copies of input and output if needed */
    size_t taps = 0;
    for (int k = 0; k < nd; k++)
        taps += (size_t)c.out[k];
    size_t bytes = (taps * 4 * (sizeof(int64_t) + sizeof(float)) + taps + 63) & ~(size_t)63;
    size_t conv = f32 ? 0 : (size_t)(tdm_tensor_numel(x) + total) * sizeof(float);
    char *mem = tdm_op_scratch(ctx, bytes + conv);
    if (mem == NULL)
        return tdm_op_fail(ctx, TDM_ERR_NOMEM, "out of memory");
    rs_job j;
    memset(&j, 0, sizeof j);
    j.x = x;
    j.nd = nd;
    j.es = tdm_dtype_size(x->dtype);
    j.extf = c.extrapolation;
    tdm_shp_scalar_from_f64(x->dtype, c.extrapolation, j.extval);
    tdm_shp_strides(x->dims, nd, j.xs);
    int64_t *ip = (int64_t *)mem;
    float *wp = (float *)(ip + taps * 4);
    uint8_t *ep = (uint8_t *)(wp + taps * 4);
    bool gather = true;
    int64_t combos = 1;
    for (int k = 0; k < nd; k++) {
        j.odims[k] = c.out[k];
        j.ax[k].idx = ip;
        j.ax[k].w = wp;
        j.ax[k].ext = ep;
        rs_plan_axis(&c, k, x->dims[k], &j.ax[k]);
        for (int64_t o = 0; o < c.out[k]; o++)
            j.any_ext |= j.ax[k].ext[o] != 0;
        for (int64_t o = 0; gather && o < c.out[k]; o++)
            gather = j.ax[k].K == 1 && j.ax[k].w[o] == 1.0f;
        if (k < nd - 1)
            combos *= j.ax[k].K;
        ip += c.out[k] * 4;
        wp += c.out[k] * 4;
        ep += c.out[k];
    }
    int64_t rows = total / c.out[nd - 1];
    bool par = ctx->pool != NULL && total >= 16384;
    int64_t grain = 1 + 4096 / c.out[nd - 1];
    if (gather) {
        j.src = x->data;
        j.dst = y->data;
        if (par)
            tdm_pool_for(ctx->pool, rows, grain, rs_gather_rows, &j);
        else
            rs_gather_rows(&j, 0, rows, 0);
        return TDM_OK;
    }
    if (combos > RS_MAX_COMBOS)
        return tdm_op_fail(ctx, TDM_ERR_UNSUPPORTED, "interpolating over %lld tap combinations",
                           (long long)combos);
    float *fin = NULL, *fout = NULL;
    if (f32) {
        j.src = x->data;
        j.dst = y->data;
    } else {
        if (j.es == 0 || x->dtype == TDM_DTYPE_BOOL)
            return tdm_op_fail(ctx, TDM_ERR_UNSUPPORTED, "interpolating %s",
                               tdm_dtype_name(x->dtype));
        fin = (float *)(mem + bytes);
        fout = fin + tdm_tensor_numel(x);
        to_float(x, fin);
        j.src = fin;
        j.dst = fout;
    }
    if (par)
        tdm_pool_for(ctx->pool, rows, grain, rs_float_rows, &j);
    else
        rs_float_rows(&j, 0, rows, 0);
    if (!f32)
        from_float(fout, y);
    return TDM_OK;
}

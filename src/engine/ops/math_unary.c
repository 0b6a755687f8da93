/*
 * Element-wise unary ops: activations, Clip, rounding, exponentials,
 * trigonometry, sign and magnitude, IsNaN/IsInf and Not.
 *
 * Every float op is one expression instantiated for float and double (with
 * _Generic picking expf/exp, ...), so float32 and float64 cannot drift
 * apart; float16 and bfloat16 run the float32 kernel over chunks converted
 * on the stack, which keeps one code path per op. The hot activations
 * (Relu, Sigmoid, Tanh, Exp, Erf, Gelu) use the SIMD kernels of
 * math_vec.h for float32. Integer variants exist where ONNX defines them
 * (Neg, Abs, Sign, Relu, Clip) and wrap on overflow (Neg of INT_MIN).
 * Large tensors are split over the pool by flat index.
 */
#include <assert.h>
#include <float.h>
#include <math.h>
#include <string.h>

#include "engine/ops/math_ops.h"
#include "engine/ops/math_vec.h"

typedef struct uparams {
    double alpha, beta, gamma;
    double lo, hi;               /* Clip, float types */
    int64_t lo_i, hi_i;          /* Clip, signed integer types */
    uint64_t lo_u, hi_u;         /* Clip, unsigned integer types */
    bool has_lo, has_hi;         /* Clip bounds given */
    bool detect_pos, detect_neg; /* IsInf */
    bool gelu_tanh;
    const tdm_vec_kernels *vk;
} uparams;

typedef void (*uf32_fn)(const float *x, float *y, int64_t n, const uparams *p);
typedef void (*uf64_fn)(const double *x, double *y, int64_t n, const uparams *p);

typedef enum iop { I_NONE, I_NEG, I_ABS, I_SIGN, I_RELU, I_CLIP } iop;
typedef enum ukind {
    UK_FLOAT, /* float types in, same type out */
    UK_TEST,  /* IsNaN, IsInf: float types in, bool out */
    UK_NOT,   /* bool in, bool out */
} ukind;

typedef struct un_desc {
    const char *name;
    ukind kind;
    uf32_fn f32;
    uf64_fn f64;
    iop ints;                  /* integer variant, I_NONE when float only */
    double alpha, beta, gamma; /* attribute defaults */
} un_desc;

/* ---- float kernels ------------------------------------------------------------ */

#define GM(fn, v) _Generic((v), float : fn##f, default : fn)(v)
#define GM2(fn, v, w) _Generic((v), float : fn##f, default : fn)((v), (w))

#define DEF_UN(NAME, EXPR)                                                          \
    static void NAME##_f32(const float *x, float *y, int64_t n, const uparams *p)   \
    {                                                                               \
        (void)p;                                                                    \
        for (int64_t i = 0; i < n; i++) {                                           \
            const float v = x[i];                                                   \
            y[i] = (float)(EXPR(float, v, p));                                      \
        }                                                                           \
    }                                                                               \
    static void NAME##_f64(const double *x, double *y, int64_t n, const uparams *p) \
    {                                                                               \
        (void)p;                                                                    \
        for (int64_t i = 0; i < n; i++) {                                           \
            const double v = x[i];                                                  \
            y[i] = (double)(EXPR(double, v, p));                                    \
        }                                                                           \
    }

/* float32 through a SIMD kernel, float64 through the expression */
#define DEF_UN_VEC(NAME, VOP, EXPR)                                                 \
    static void NAME##_f32(const float *x, float *y, int64_t n, const uparams *p)   \
    {                                                                               \
        p->vk->unary[VOP](x, y, n);                                                 \
    }                                                                               \
    static void NAME##_f64(const double *x, double *y, int64_t n, const uparams *p) \
    {                                                                               \
        (void)p;                                                                    \
        for (int64_t i = 0; i < n; i++) {                                           \
            const double v = x[i];                                                  \
            y[i] = EXPR(double, v, p);                                              \
        }                                                                           \
    }

static inline double softplus_d(double v)
{
    return v > 0 ? v + log1p(exp(-v)) : log1p(exp(v));
}
static inline float softplus_f(float v)
{
    return v > 0 ? v + log1pf(expf(-v)) : log1pf(expf(v));
}
#define SOFTPLUS(v) _Generic((v), float : softplus_f, default : softplus_d)(v)

static inline double gelu_d(double v, bool tanh_form)
{
    if (v == -INFINITY)
        return -0.0; /* the limit, not -inf * 0 */
    if (tanh_form) {
        double u = 0.79788456080286535588 * (v + 0.044715 * v * v * v);
        return v / (1 + exp(-2 * u));
    }
    return 0.5 * v * erfc(-v * 0.70710678118654752440);
}

#define E_RELU(T, v, p) ((v) > 0 || (v) != (v) ? (v) : (T)0)
#define E_LEAKY(T, v, p) ((v) < 0 ? (v) * (T)(p)->alpha : (v))
#define E_SIGMOID(T, v, p) ((v) >= 0 ? 1 / (1 + GM(exp, -(v))) : GM(exp, v) / (1 + GM(exp, v)))
#define E_TANH(T, v, p) GM(tanh, v)
#define E_EXP(T, v, p) GM(exp, v)
#define E_ERF(T, v, p) GM(erf, v)
#define E_GELU(T, v, p) gelu_d((v), (p)->gelu_tanh)
#define E_HARDSIG(T, v, p) hardsig((double)(v), (p)->alpha, (p)->beta)
#define E_HARDSWISH(T, v, p) ((v) * (T)hardsig((double)(v), 1.0 / 6.0, 0.5))
#define E_ELU(T, v, p) ((v) < 0 ? (T)(p)->alpha * GM(expm1, v) : (v))
#define E_SELU(T, v, p) \
    ((v) <= 0 ? (T)(p)->gamma * ((T)(p)->alpha * GM(expm1, v)) : (T)(p)->gamma * (v))
#define E_SOFTPLUS(T, v, p) SOFTPLUS(v)
#define E_SOFTSIGN(T, v, p) ((v) / (1 + GM(fabs, v)))
#define E_SQRT(T, v, p) GM(sqrt, v)
#define E_LOG(T, v, p) GM(log, v)
#define E_NEG(T, v, p) (-(v))
#define E_ABS(T, v, p) GM(fabs, v)
#define E_RECIP(T, v, p) ((T)1 / (v))
#define E_FLOOR(T, v, p) GM(floor, v)
#define E_CEIL(T, v, p) GM(ceil, v)
#define E_ROUND(T, v, p) GM(nearbyint, v) /* half to even in the default rounding mode */
#define E_SIGN(T, v, p) ((v) > 0 ? (T)1 : ((v) < 0 ? (T)-1 : (v)))
#define E_SIN(T, v, p) GM(sin, v)
#define E_COS(T, v, p) GM(cos, v)
#define E_TAN(T, v, p) GM(tan, v)
#define E_ASIN(T, v, p) GM(asin, v)
#define E_ACOS(T, v, p) GM(acos, v)
#define E_ATAN(T, v, p) GM(atan, v)
#define E_SINH(T, v, p) GM(sinh, v)
#define E_COSH(T, v, p) GM(cosh, v)
#define E_ASINH(T, v, p) GM(asinh, v)
#define E_ACOSH(T, v, p) GM(acosh, v)
#define E_ATANH(T, v, p) GM(atanh, v)
#define E_THRELU(T, v, p) ((v) > (T)(p)->alpha ? (v) : (T)0)
#define E_CELU(T, v, p) ((v) < 0 ? (T)(p)->alpha * GM(expm1, (v) / (T)(p)->alpha) : (v))
#define E_MISH(T, v, p) ((v)*GM(tanh, SOFTPLUS(v)))
#define E_SHRINK(T, v, p) \
    ((v) < -(T)(p)->alpha ? (v) + (T)(p)->beta : ((v) > (T)(p)->alpha ? (v) - (T)(p)->beta : (T)0))
#define E_CLIP(T, v, p) clip_##T((v), (p))

static inline double hardsig(double v, double alpha, double beta)
{
    double t = alpha * v + beta;
    t = t > 1 ? 1 : t;
    return t < 0 ? 0 : t;
}

static inline float clip_float(float v, const uparams *p)
{
    float t = p->has_lo && v < (float)p->lo ? (float)p->lo : v;
    return p->has_hi && t > (float)p->hi ? (float)p->hi : t;
}

static inline double clip_double(double v, const uparams *p)
{
    double t = p->has_lo && v < p->lo ? p->lo : v;
    return p->has_hi && t > p->hi ? p->hi : t;
}

DEF_UN_VEC(relu, TDM_VEC_RELU, E_RELU)
DEF_UN_VEC(sigmoid, TDM_VEC_SIGMOID, E_SIGMOID)
DEF_UN_VEC(tanh, TDM_VEC_TANH, E_TANH)
DEF_UN_VEC(exp, TDM_VEC_EXP, E_EXP)
DEF_UN_VEC(erf, TDM_VEC_ERF, E_ERF)
DEF_UN(leaky, E_LEAKY)
DEF_UN(hardsig, E_HARDSIG)
DEF_UN(hardswish, E_HARDSWISH)
DEF_UN(elu, E_ELU)
DEF_UN(selu, E_SELU)
DEF_UN(softplus, E_SOFTPLUS)
DEF_UN(softsign, E_SOFTSIGN)
DEF_UN(sqrt, E_SQRT)
DEF_UN(log, E_LOG)
DEF_UN(neg, E_NEG)
DEF_UN(abs, E_ABS)
DEF_UN(recip, E_RECIP)
DEF_UN(floor, E_FLOOR)
DEF_UN(ceil, E_CEIL)
DEF_UN(round, E_ROUND)
DEF_UN(sign, E_SIGN)
DEF_UN(sin, E_SIN)
DEF_UN(cos, E_COS)
DEF_UN(tan, E_TAN)
DEF_UN(asin, E_ASIN)
DEF_UN(acos, E_ACOS)
DEF_UN(atan, E_ATAN)
DEF_UN(sinh, E_SINH)
DEF_UN(cosh, E_COSH)
DEF_UN(asinh, E_ASINH)
DEF_UN(acosh, E_ACOSH)
DEF_UN(atanh, E_ATANH)
DEF_UN(threlu, E_THRELU)
DEF_UN(celu, E_CELU)
DEF_UN(mish, E_MISH)
DEF_UN(shrink, E_SHRINK)
DEF_UN(clip, E_CLIP)

static void gelu_f32(const float *x, float *y, int64_t n, const uparams *p)
{
    p->vk->unary[p->gelu_tanh ? TDM_VEC_GELU_TANH : TDM_VEC_GELU](x, y, n);
}

static void gelu_f64(const double *x, double *y, int64_t n, const uparams *p)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = gelu_d(x[i], p->gelu_tanh);
}

/* ---- descriptors ---------------------------------------------------------------- */

#define UF(name) name##_f32, name##_f64

static const un_desc k_unary_ops[] = {
    {"Relu", UK_FLOAT, UF(relu), I_RELU, 0, 0, 0},
    {"LeakyRelu", UK_FLOAT, UF(leaky), I_NONE, 0.01, 0, 0},
    {"Sigmoid", UK_FLOAT, UF(sigmoid), I_NONE, 0, 0, 0},
    {"Tanh", UK_FLOAT, UF(tanh), I_NONE, 0, 0, 0},
    {"Exp", UK_FLOAT, UF(exp), I_NONE, 0, 0, 0},
    {"Erf", UK_FLOAT, UF(erf), I_NONE, 0, 0, 0},
    {"Gelu", UK_FLOAT, UF(gelu), I_NONE, 0, 0, 0},
    {"Clip", UK_FLOAT, UF(clip), I_CLIP, 0, 0, 0},
    {"HardSigmoid", UK_FLOAT, UF(hardsig), I_NONE, 0.2, 0.5, 0},
    {"HardSwish", UK_FLOAT, UF(hardswish), I_NONE, 0, 0, 0},
    {"Elu", UK_FLOAT, UF(elu), I_NONE, 1.0, 0, 0},
    {"Selu", UK_FLOAT, UF(selu), I_NONE, 1.67326319217681884765625, 0, 1.05070102214813232421875},
    {"Softplus", UK_FLOAT, UF(softplus), I_NONE, 0, 0, 0},
    {"Softsign", UK_FLOAT, UF(softsign), I_NONE, 0, 0, 0},
    {"Sqrt", UK_FLOAT, UF(sqrt), I_NONE, 0, 0, 0},
    {"Log", UK_FLOAT, UF(log), I_NONE, 0, 0, 0},
    {"Neg", UK_FLOAT, UF(neg), I_NEG, 0, 0, 0},
    {"Abs", UK_FLOAT, UF(abs), I_ABS, 0, 0, 0},
    {"Reciprocal", UK_FLOAT, UF(recip), I_NONE, 0, 0, 0},
    {"Floor", UK_FLOAT, UF(floor), I_NONE, 0, 0, 0},
    {"Ceil", UK_FLOAT, UF(ceil), I_NONE, 0, 0, 0},
    {"Round", UK_FLOAT, UF(round), I_NONE, 0, 0, 0},
    {"Sign", UK_FLOAT, UF(sign), I_SIGN, 0, 0, 0},
    {"Sin", UK_FLOAT, UF(sin), I_NONE, 0, 0, 0},
    {"Cos", UK_FLOAT, UF(cos), I_NONE, 0, 0, 0},
    {"Tan", UK_FLOAT, UF(tan), I_NONE, 0, 0, 0},
    {"Asin", UK_FLOAT, UF(asin), I_NONE, 0, 0, 0},
    {"Acos", UK_FLOAT, UF(acos), I_NONE, 0, 0, 0},
    {"Atan", UK_FLOAT, UF(atan), I_NONE, 0, 0, 0},
    {"Sinh", UK_FLOAT, UF(sinh), I_NONE, 0, 0, 0},
    {"Cosh", UK_FLOAT, UF(cosh), I_NONE, 0, 0, 0},
    {"Asinh", UK_FLOAT, UF(asinh), I_NONE, 0, 0, 0},
    {"Acosh", UK_FLOAT, UF(acosh), I_NONE, 0, 0, 0},
    {"Atanh", UK_FLOAT, UF(atanh), I_NONE, 0, 0, 0},
    {"ThresholdedRelu", UK_FLOAT, UF(threlu), I_NONE, 1.0, 0, 0},
    {"Celu", UK_FLOAT, UF(celu), I_NONE, 1.0, 0, 0},
    {"Mish", UK_FLOAT, UF(mish), I_NONE, 0, 0, 0},
    {"Shrink", UK_FLOAT, UF(shrink), I_NONE, 0.5, 0, 0}, /* alpha = lambd, beta = bias */
    {"IsNaN", UK_TEST, NULL, NULL, I_NONE, 0, 0, 0},
    {"IsInf", UK_TEST, NULL, NULL, I_NONE, 0, 0, 0},
    {"Not", UK_NOT, NULL, NULL, I_NONE, 0, 0, 0},
};

static const un_desc *unary_desc(const tdm_op_ctx *ctx)
{
    if (ctx->state != NULL)
        return ctx->state;
    for (size_t i = 0; i < sizeof k_unary_ops / sizeof k_unary_ops[0]; i++)
        if (strcmp(k_unary_ops[i].name, ctx->node->op_type) == 0)
            return &k_unary_ops[i];
    return NULL;
}

tdm_status tdm_math_unary_prepare(tdm_op_ctx *ctx)
{
    ctx->state = (void *)unary_desc(ctx);
    return TDM_OK;
}

static bool is_int(tdm_dtype dt)
{
    return tdm_math_is_signed_int(dt) || tdm_math_is_unsigned_int(dt);
}

tdm_status tdm_math_unary_infer(tdm_op_ctx *ctx)
{
    const un_desc *d = unary_desc(ctx);
    if (d == NULL)
        return tdm_op_fail(ctx, TDM_ERR_INTERNAL, "not a unary op");
    tdm_status s = tdm_math_check_inputs(ctx, 1);
    if (s != TDM_OK)
        return s;
    if (ctx->n_out < 1 || ctx->out[0] == NULL)
        return tdm_op_fail(ctx, TDM_ERR_INVALID_ARG, "output 0 is required");
    const tdm_tensor *x = ctx->in[0];
    tdm_dtype dt = x->dtype, out_dt = dt;
    switch (d->kind) {
    case UK_FLOAT:
        if (!tdm_math_is_float(dt) && !(d->ints != I_NONE && is_int(dt)))
            return tdm_op_fail(ctx, TDM_ERR_UNSUPPORTED, "dtype %s is not supported",
                               tdm_dtype_name(dt));
        break;
    case UK_TEST:
        if (!tdm_math_is_float(dt))
            return tdm_op_fail(ctx, TDM_ERR_UNSUPPORTED, "dtype %s is not supported",
                               tdm_dtype_name(dt));
        out_dt = TDM_DTYPE_BOOL;
        break;
    case UK_NOT:
        if (dt != TDM_DTYPE_BOOL)
            return tdm_op_fail(ctx, TDM_ERR_UNSUPPORTED, "dtype %s is not supported (bool only)",
                               tdm_dtype_name(dt));
        break;
    }
    if (strcmp(d->name, "Gelu") == 0) {
        const char *ap = tdm_attr_str(ctx->node, "approximate", "none");
        if (strcmp(ap, "none") != 0 && strcmp(ap, "tanh") != 0)
            return tdm_op_fail(ctx, TDM_ERR_UNSUPPORTED, "approximate='%s' (want none or tanh)",
                               ap);
    }
    if (d->ints == I_CLIP) {
        for (int i = 1; i < ctx->n_in && i < 3; i++) {
            const tdm_tensor *b = ctx->in[i];
            if (b == NULL)
                continue;
            if (b->dtype != dt)
                return tdm_op_fail(ctx, TDM_ERR_SHAPE, "%s has dtype %s, input has %s",
                                   i == 1 ? "min" : "max", tdm_dtype_name(b->dtype),
                                   tdm_dtype_name(dt));
            if (tdm_tensor_numel(b) != 1)
                return tdm_op_fail(ctx, TDM_ERR_SHAPE, "%s must have one element, has %lld",
                                   i == 1 ? "min" : "max", (long long)tdm_tensor_numel(b));
        }
    }
    tdm_tensor_set_shape(ctx->out[0], out_dt, x->ndim, x->dims);
    return TDM_OK;
}

/* ---- run ---------------------------------------------------------------------------- */

typedef struct ujob {
    const un_desc *d;
    const void *x;
    void *y;
    tdm_dtype dt;
    uparams p;
} ujob;

static void run_ints(const ujob *j, int64_t b, int64_t e);

#define CHUNK 256

static void ujob_range(void *arg, int64_t b, int64_t e, int worker)
{
    (void)worker;
    const ujob *j = arg;
    const un_desc *d = j->d;
    if (d->kind == UK_NOT) {
        const uint8_t *x = j->x;
        uint8_t *y = j->y;
        for (int64_t i = b; i < e; i++)
            y[i] = x[i] == 0;
        return;
    }
    if (d->kind == UK_TEST) {
        bool is_nan = strcmp(d->name, "IsNaN") == 0;
        uint8_t *y = j->y;
        for (int64_t i = b; i < e; i++) {
            double v;
            switch (j->dt) {
            case TDM_DTYPE_FLOAT32: v = ((const float *)j->x)[i]; break;
            case TDM_DTYPE_FLOAT64: v = ((const double *)j->x)[i]; break;
            case TDM_DTYPE_FLOAT16: v = tdm_fp16_to_fp32(((const uint16_t *)j->x)[i]); break;
            default: v = tdm_bf16_to_fp32(((const uint16_t *)j->x)[i]); break;
            }
            if (is_nan)
                y[i] = isnan(v);
            else
                y[i] = isinf(v) && ((v > 0 && j->p.detect_pos) || (v < 0 && j->p.detect_neg));
        }
        return;
    }
    switch (j->dt) {
    case TDM_DTYPE_FLOAT32:
        d->f32((const float *)j->x + b, (float *)j->y + b, e - b, &j->p);
        return;
    case TDM_DTYPE_FLOAT64:
        d->f64((const double *)j->x + b, (double *)j->y + b, e - b, &j->p);
        return;
    case TDM_DTYPE_FLOAT16:
    case TDM_DTYPE_BFLOAT16: {
        const uint16_t *x = j->x;
        uint16_t *y = j->y;
        bool h = j->dt == TDM_DTYPE_FLOAT16;
        float buf[CHUNK];
        for (int64_t i = b; i < e; i += CHUNK) {
            int64_t n = e - i < CHUNK ? e - i : CHUNK;
            for (int64_t k = 0; k < n; k++)
                buf[k] = h ? tdm_fp16_to_fp32(x[i + k]) : tdm_bf16_to_fp32(x[i + k]);
            d->f32(buf, buf, n, &j->p);
            for (int64_t k = 0; k < n; k++)
                y[i + k] = h ? tdm_fp32_to_fp16(buf[k]) : tdm_math_fp32_to_bf16(buf[k]);
        }
        return;
    }
    default: run_ints(j, b, e); return;
    }
}

#define INT_LOOPS_S(T)                                            \
    {                                                             \
        const T *x = j->x;                                        \
        T *y = j->y;                                              \
        switch (j->d->ints) {                                     \
        case I_NEG:                                               \
            for (int64_t i = b; i < e; i++)                       \
                y[i] = (T)(0 - (uint64_t)x[i]);                   \
            break;                                                \
        case I_ABS:                                               \
            for (int64_t i = b; i < e; i++)                       \
                y[i] = x[i] < 0 ? (T)(0 - (uint64_t)x[i]) : x[i]; \
            break;                                                \
        case I_SIGN:                                              \
            for (int64_t i = b; i < e; i++)                       \
                y[i] = (T)((x[i] > 0) - (x[i] < 0));              \
            break;                                                \
        case I_RELU:                                              \
            for (int64_t i = b; i < e; i++)                       \
                y[i] = x[i] > 0 ? x[i] : 0;                       \
            break;                                                \
        case I_CLIP:                                              \
            for (int64_t i = b; i < e; i++) {                     \
                int64_t v = x[i];                                 \
                v = j->p.has_lo && v < j->p.lo_i ? j->p.lo_i : v; \
                v = j->p.has_hi && v > j->p.hi_i ? j->p.hi_i : v; \
                y[i] = (T)v;                                      \
            }                                                     \
            break;                                                \
        default: assert(!"no integer variant"); break;            \
        }                                                         \
        return;                                                   \
    }

#define INT_LOOPS_U(T)                                                          \
    {                                                                           \
        const T *x = j->x;                                                      \
        T *y = j->y;                                                            \
        switch (j->d->ints) {                                                   \
        case I_NEG:                                                             \
            for (int64_t i = b; i < e; i++)                                     \
                y[i] = (T)(0 - (uint64_t)x[i]);                                 \
            break;                                                              \
        case I_ABS:                                                             \
        case I_RELU: memmove(y + b, x + b, (size_t)(e - b) * sizeof(T)); break; \
        case I_SIGN:                                                            \
            for (int64_t i = b; i < e; i++)                                     \
                y[i] = (T)(x[i] != 0);                                          \
            break;                                                              \
        case I_CLIP:                                                            \
            for (int64_t i = b; i < e; i++) {                                   \
                uint64_t v = x[i];                                              \
                v = j->p.has_lo && v < j->p.lo_u ? j->p.lo_u : v;               \
                v = j->p.has_hi && v > j->p.hi_u ? j->p.hi_u : v;               \
                y[i] = (T)v;                                                    \
            }                                                                   \
            break;                                                              \
        default: assert(!"no integer variant"); break;                          \
        }                                                                       \
        return;                                                                 \
    }

static void run_ints(const ujob *j, int64_t b, int64_t e)
{
    switch (j->dt) {
    case TDM_DTYPE_INT8: INT_LOOPS_S(int8_t)
    case TDM_DTYPE_INT16: INT_LOOPS_S(int16_t)
    case TDM_DTYPE_INT32: INT_LOOPS_S(int32_t)
    case TDM_DTYPE_INT64: INT_LOOPS_S(int64_t)
    case TDM_DTYPE_UINT8: INT_LOOPS_U(uint8_t)
    case TDM_DTYPE_UINT16: INT_LOOPS_U(uint16_t)
    case TDM_DTYPE_UINT32: INT_LOOPS_U(uint32_t)
    case TDM_DTYPE_UINT64: INT_LOOPS_U(uint64_t)
    default: assert(!"dtype checked by infer"); return;
    }
}

/* Clip bounds: attributes before opset 11, optional scalar inputs after. */
static void clip_bounds(const tdm_op_ctx *ctx, uparams *p)
{
    const tdm_node *n = ctx->node;
    if (n->opset > 0 && n->opset < 11) {
        p->lo = tdm_attr_float(n, "min", -FLT_MAX);
        p->hi = tdm_attr_float(n, "max", FLT_MAX);
        p->has_lo = p->has_hi = true;
        return;
    }
    for (int i = 1; i < 3 && i < ctx->n_in; i++) {
        const tdm_tensor *t = ctx->in[i];
        if (t == NULL || tdm_tensor_numel(t) != 1)
            continue;
        double f = tdm_math_is_float(t->dtype) ? tdm_tensor_get_f64(t, 0) : 0;
        int64_t v = tdm_math_is_float(t->dtype) ? 0 : tdm_tensor_get_i64(t, 0);
        if (i == 1) {
            p->has_lo = true;
            p->lo = f;
            p->lo_i = v;
            p->lo_u = (uint64_t)v;
        } else {
            p->has_hi = true;
            p->hi = f;
            p->hi_i = v;
            p->hi_u = (uint64_t)v;
        }
    }
}

tdm_status tdm_math_unary_run(tdm_op_ctx *ctx)
{
    const un_desc *d = unary_desc(ctx);
    assert(d != NULL);
    ujob j;
    memset(&j, 0, sizeof j);
    j.d = d;
    j.x = ctx->in[0]->data;
    j.y = ctx->out[0]->data;
    j.dt = ctx->in[0]->dtype;
    j.p.vk = tdm_vec_get();
    const tdm_node *n = ctx->node;
    /* defaults in double precision, so float64 inputs see 0.01, not 0.01f */
    j.p.alpha = tdm_node_attr(n, "alpha") ? tdm_attr_float(n, "alpha", 0) : d->alpha;
    j.p.beta = tdm_node_attr(n, "beta") ? tdm_attr_float(n, "beta", 0) : d->beta;
    j.p.gamma = tdm_node_attr(n, "gamma") ? tdm_attr_float(n, "gamma", 0) : d->gamma;
    if (strcmp(d->name, "Shrink") == 0) {
        j.p.alpha = tdm_attr_float(n, "lambd", 0.5f);
        j.p.beta = tdm_attr_float(n, "bias", 0.0f);
    }
    if (d->ints == I_CLIP)
        clip_bounds(ctx, &j.p);
    j.p.detect_pos = tdm_attr_int(n, "detect_positive", 1) != 0;
    j.p.detect_neg = tdm_attr_int(n, "detect_negative", 1) != 0;
    j.p.gelu_tanh = strcmp(tdm_attr_str(n, "approximate", "none"), "tanh") == 0;
    tdm_math_parallel(ctx, tdm_tensor_numel(ctx->in[0]), TDM_MATH_PAR_MIN, ujob_range, &j);
    return TDM_OK;
}

/*
 * Element-wise binary ops with multidirectional (numpy) broadcasting, and
 * the variadic Sum/Mean/Min/Max built on them.
 *
 * Broadcasting is planned once per call: the output shape is walked, dims of
 * size 1 are dropped and neighbours that are contiguous for both operands
 * are merged, so "same shape" collapses to one run, a bias over the last
 * dim to rows of a contiguous run against a reused vector, a per-channel
 * scale ([N,C,H,W] * [1,C,1,1]) to runs of H*W against a scalar. The plan's
 * innermost dim is handed to a typed kernel in one of three forms (both
 * vectors, b scalar, a scalar); the outer dims are walked by an odometer
 * that adds strides, never dividing per element. Float32 add/sub/mul/div/
 * min/max kernels are the SIMD ones from math_vec.h; the other (op, dtype)
 * pairs are plain loops generated from one expression per op and kind of
 * type. Large outputs are split over the pool by flat output index, each
 * slice restarting the odometer with one division per dim.
 *
 * Integer semantics are defined for every input, since tensors come from
 * files: add/sub/mul wrap (two's complement), division and modulo by zero
 * give 0, INT_MIN / -1 wraps, negative integer powers give 0 except for
 * bases +-1. Min and Max propagate NaN as numpy does; float Mod with
 * fmod=0 takes the divisor's sign (numpy's mod), fmod=1 is C fmod.
 */
#include <assert.h>
#include <math.h>
#include <string.h>

#include "base/alloc.h"
#include "engine/ops/math_ops.h"
#include "engine/ops/math_vec.h"

typedef enum bop {
    B_ADD,
    B_SUB,
    B_MUL,
    B_DIV,
    B_MIN,
    B_MAX,
    B_POW,
    B_MOD,  /* fmod = 0: result has the divisor's sign */
    B_FMOD, /* fmod = 1: result has the dividend's sign */
    B_EQ,
    B_LT,
    B_GT,
    B_LE,
    B_GE,
    B_AND,
    B_OR,
    B_XOR,
    B_PRELU,
    B_COUNT
} bop;

#define NDT 17 /* dtype numbers 0..16 */

typedef void (*bin_fn)(const void *a, const void *b, void *y, int64_t n, int form);

/* ---- scalar helpers with defined results for every input ------------------- */

static inline int64_t idiv_s(int64_t x, int64_t z)
{
    if (z == 0)
        return 0;
    if (z == -1)
        return (int64_t)(0 - (uint64_t)x);
    return x / z;
}

static inline int64_t imod_c(int64_t x, int64_t z)
{
    if (z == 0 || z == -1)
        return 0;
    return x % z;
}

static inline int64_t imod_py(int64_t x, int64_t z)
{
    int64_t r = imod_c(x, z);
    if (r != 0 && ((r < 0) != (z < 0)))
        r += z;
    return r;
}

static inline uint64_t ipow_u(uint64_t x, uint64_t e)
{
    uint64_t r = 1;
    while (e != 0) {
        if (e & 1)
            r *= x;
        x *= x;
        e >>= 1;
    }
    return r;
}

static inline int64_t ipow_s(int64_t x, int64_t e)
{
    if (e < 0) {
        if (x == 1)
            return 1;
        if (x == -1)
            return (e & 1) ? -1 : 1;
        return 0;
    }
    return (int64_t)ipow_u((uint64_t)x, (uint64_t)e);
}

static inline float pymodf(float x, float z)
{
    float r = fmodf(x, z);
    if (r != 0 && ((r < 0) != (z < 0)))
        r += z;
    return r;
}

static inline double pymod(double x, double z)
{
    double r = fmod(x, z);
    if (r != 0 && ((r < 0) != (z < 0)))
        r += z;
    return r;
}

/* ---- kernel generation ------------------------------------------------------ */

#define LD_ID(v) (v)
#define LD_F16(v) tdm_fp16_to_fp32(v)
#define LD_BF16(v) tdm_bf16_to_fp32(v)
#define ST_ID(v, OT) ((OT)(v))
#define ST_F16(v, OT) tdm_fp32_to_fp16(v)
#define ST_BF16(v, OT) tdm_math_fp32_to_bf16(v)

#define DEF_BIN(name, T, CT, OT, LD, ST, EXPR)                                      \
    static void name(const void *pa, const void *pb, void *py, int64_t n, int form) \
    {                                                                               \
        const T *a = pa;                                                            \
        const T *b = pb;                                                            \
        OT *y = py;                                                                 \
        if (form == TDM_VEC_VV) {                                                   \
            for (int64_t i = 0; i < n; i++) {                                       \
                CT x_ = LD(a[i]), z_ = LD(b[i]);                                    \
                y[i] = ST(EXPR(x_, z_), OT);                                        \
            }                                                                       \
        } else if (form == TDM_VEC_VS) {                                            \
            const CT z_ = LD(b[0]);                                                 \
            for (int64_t i = 0; i < n; i++) {                                       \
                CT x_ = LD(a[i]);                                                   \
                y[i] = ST(EXPR(x_, z_), OT);                                        \
            }                                                                       \
        } else {                                                                    \
            const CT x_ = LD(a[0]);                                                 \
            for (int64_t i = 0; i < n; i++) {                                       \
                CT z_ = LD(b[i]);                                                   \
                y[i] = ST(EXPR(x_, z_), OT);                                        \
            }                                                                       \
        }                                                                           \
    }

/* All numeric dtypes; output of the input's type. */
#define GEN_ARITH(NAME, EF, ES, EU)                                       \
    DEF_BIN(NAME##_f32, float, float, float, LD_ID, ST_ID, EF)            \
    DEF_BIN(NAME##_f64, double, double, double, LD_ID, ST_ID, EF)         \
    DEF_BIN(NAME##_f16, uint16_t, float, uint16_t, LD_F16, ST_F16, EF)    \
    DEF_BIN(NAME##_bf16, uint16_t, float, uint16_t, LD_BF16, ST_BF16, EF) \
    DEF_BIN(NAME##_i8, int8_t, int64_t, int8_t, LD_ID, ST_ID, ES)         \
    DEF_BIN(NAME##_i16, int16_t, int64_t, int16_t, LD_ID, ST_ID, ES)      \
    DEF_BIN(NAME##_i32, int32_t, int64_t, int32_t, LD_ID, ST_ID, ES)      \
    DEF_BIN(NAME##_i64, int64_t, int64_t, int64_t, LD_ID, ST_ID, ES)      \
    DEF_BIN(NAME##_u8, uint8_t, uint64_t, uint8_t, LD_ID, ST_ID, EU)      \
    DEF_BIN(NAME##_u16, uint16_t, uint64_t, uint16_t, LD_ID, ST_ID, EU)   \
    DEF_BIN(NAME##_u32, uint32_t, uint64_t, uint32_t, LD_ID, ST_ID, EU)   \
    DEF_BIN(NAME##_u64, uint64_t, uint64_t, uint64_t, LD_ID, ST_ID, EU)

/* All numeric dtypes (and bool through u8); bool output. */
#define GEN_CMP(NAME, E)                                              \
    DEF_BIN(NAME##_f32, float, float, uint8_t, LD_ID, ST_ID, E)       \
    DEF_BIN(NAME##_f64, double, double, uint8_t, LD_ID, ST_ID, E)     \
    DEF_BIN(NAME##_f16, uint16_t, float, uint8_t, LD_F16, ST_ID, E)   \
    DEF_BIN(NAME##_bf16, uint16_t, float, uint8_t, LD_BF16, ST_ID, E) \
    DEF_BIN(NAME##_i8, int8_t, int64_t, uint8_t, LD_ID, ST_ID, E)     \
    DEF_BIN(NAME##_i16, int16_t, int64_t, uint8_t, LD_ID, ST_ID, E)   \
    DEF_BIN(NAME##_i32, int32_t, int64_t, uint8_t, LD_ID, ST_ID, E)   \
    DEF_BIN(NAME##_i64, int64_t, int64_t, uint8_t, LD_ID, ST_ID, E)   \
    DEF_BIN(NAME##_u8, uint8_t, uint64_t, uint8_t, LD_ID, ST_ID, E)   \
    DEF_BIN(NAME##_u16, uint16_t, uint64_t, uint8_t, LD_ID, ST_ID, E) \
    DEF_BIN(NAME##_u32, uint32_t, uint64_t, uint8_t, LD_ID, ST_ID, E) \
    DEF_BIN(NAME##_u64, uint64_t, uint64_t, uint8_t, LD_ID, ST_ID, E)

#define TAB_NUM(NAME)                                                                             \
    [TDM_DTYPE_FLOAT32] = NAME##_f32, [TDM_DTYPE_FLOAT64] = NAME##_f64,                           \
    [TDM_DTYPE_FLOAT16] = NAME##_f16, [TDM_DTYPE_BFLOAT16] = NAME##_bf16,                         \
    [TDM_DTYPE_INT8] = NAME##_i8, [TDM_DTYPE_INT16] = NAME##_i16, [TDM_DTYPE_INT32] = NAME##_i32, \
    [TDM_DTYPE_INT64] = NAME##_i64, [TDM_DTYPE_UINT8] = NAME##_u8,                                \
    [TDM_DTYPE_UINT16] = NAME##_u16, [TDM_DTYPE_UINT32] = NAME##_u32,                             \
    [TDM_DTYPE_UINT64] = NAME##_u64

/* float expressions (float or double compute type) */
#define EF_ADD(x, z) ((x) + (z))
#define EF_SUB(x, z) ((x) - (z))
#define EF_MUL(x, z) ((x) * (z))
#define EF_DIV(x, z) ((x) / (z))
#define EF_MIN(x, z) (((x) < (z) || (x) != (x)) ? (x) : (z))
#define EF_MAX(x, z) (((z) < (x) || (x) != (x)) ? (x) : (z))
#define EF_POW(x, z) _Generic((x), float : powf, default : pow)((x), (z))
#define EF_MOD(x, z) _Generic((x), float : pymodf, default : pymod)((x), (z))
#define EF_FMOD(x, z) _Generic((x), float : fmodf, default : fmod)((x), (z))
#define EF_PRELU(x, z) ((x) < 0 ? (x) * (z) : (x))
/* signed integers, computed in int64 */
#define ES_ADD(x, z) ((int64_t)((uint64_t)(x) + (uint64_t)(z)))
#define ES_SUB(x, z) ((int64_t)((uint64_t)(x) - (uint64_t)(z)))
#define ES_MUL(x, z) ((int64_t)((uint64_t)(x) * (uint64_t)(z)))
#define ES_DIV(x, z) idiv_s((x), (z))
#define ES_MIN(x, z) ((x) < (z) ? (x) : (z))
#define ES_MAX(x, z) ((x) > (z) ? (x) : (z))
#define ES_POW(x, z) ipow_s((x), (z))
#define ES_MOD(x, z) imod_py((x), (z))
#define ES_FMOD(x, z) imod_c((x), (z))
#define ES_PRELU(x, z) ((x) < 0 ? ES_MUL((x), (z)) : (x))
/* unsigned integers, computed in uint64 */
#define EU_ADD(x, z) ((x) + (z))
#define EU_SUB(x, z) ((x) - (z))
#define EU_MUL(x, z) ((x) * (z))
#define EU_DIV(x, z) ((z) == 0 ? 0 : (x) / (z))
#define EU_MIN(x, z) ((x) < (z) ? (x) : (z))
#define EU_MAX(x, z) ((x) > (z) ? (x) : (z))
#define EU_POW(x, z) ipow_u((x), (z))
#define EU_MOD(x, z) ((z) == 0 ? 0 : (x) % (z))
#define EU_PRELU(x, z) ((void)(z), (x))
/* comparisons, any compute type */
#define E_EQ(x, z) ((x) == (z))
#define E_LT(x, z) ((x) < (z))
#define E_GT(x, z) ((x) > (z))
#define E_LE(x, z) ((x) <= (z))
#define E_GE(x, z) ((x) >= (z))
#define E_AND(x, z) (((x) != 0) & ((z) != 0))
#define E_OR(x, z) (((x) != 0) | ((z) != 0))
#define E_XOR(x, z) (((x) != 0) ^ ((z) != 0))

GEN_ARITH(add, EF_ADD, ES_ADD, EU_ADD)
GEN_ARITH(sub, EF_SUB, ES_SUB, EU_SUB)
GEN_ARITH(mul, EF_MUL, ES_MUL, EU_MUL)
GEN_ARITH(div, EF_DIV, ES_DIV, EU_DIV)
GEN_ARITH(min, EF_MIN, ES_MIN, EU_MIN)
GEN_ARITH(max, EF_MAX, ES_MAX, EU_MAX)
GEN_ARITH(pow, EF_POW, ES_POW, EU_POW)
GEN_ARITH(mod, EF_MOD, ES_MOD, EU_MOD)
GEN_ARITH(fmod, EF_FMOD, ES_FMOD, EU_MOD)
GEN_ARITH(prelu, EF_PRELU, ES_PRELU, EU_PRELU)
GEN_CMP(eq, E_EQ)
GEN_CMP(lt, E_LT)
GEN_CMP(gt, E_GT)
GEN_CMP(le, E_LE)
GEN_CMP(ge, E_GE)
DEF_BIN(and_b, uint8_t, unsigned, uint8_t, LD_ID, ST_ID, E_AND)
DEF_BIN(or_b, uint8_t, unsigned, uint8_t, LD_ID, ST_ID, E_OR)
DEF_BIN(xor_b, uint8_t, unsigned, uint8_t, LD_ID, ST_ID, E_XOR)

static const bin_fn k_kernels[B_COUNT][NDT] = {
    [B_ADD] = {TAB_NUM(add)},
    [B_SUB] = {TAB_NUM(sub)},
    [B_MUL] = {TAB_NUM(mul)},
    [B_DIV] = {TAB_NUM(div)},
    [B_MIN] = {TAB_NUM(min)},
    [B_MAX] = {TAB_NUM(max)},
    [B_POW] = {TAB_NUM(pow)},
    [B_MOD] = {TAB_NUM(mod)},
    [B_FMOD] = {TAB_NUM(fmod)},
    [B_PRELU] = {TAB_NUM(prelu)},
    [B_EQ] = {TAB_NUM(eq), [TDM_DTYPE_BOOL] = eq_u8},
    [B_LT] = {TAB_NUM(lt)},
    [B_GT] = {TAB_NUM(gt)},
    [B_LE] = {TAB_NUM(le)},
    [B_GE] = {TAB_NUM(ge)},
    [B_AND] = {[TDM_DTYPE_BOOL] = and_b},
    [B_OR] = {[TDM_DTYPE_BOOL] = or_b},
    [B_XOR] = {[TDM_DTYPE_BOOL] = xor_b},
};

static bin_fn kernel_for(bop op, tdm_dtype dt)
{
    if ((int)dt < 0 || (int)dt >= NDT)
        return NULL;
    return k_kernels[op][dt];
}

static bool is_compare(bop op)
{
    return op >= B_EQ && op <= B_XOR;
}

/* ---- op descriptors ---------------------------------------------------------- */

typedef struct bin_desc {
    const char *name;
    bop op;
} bin_desc;

static const bin_desc k_binary_ops[] = {
    {"Add", B_ADD},    {"Sub", B_SUB},        {"Mul", B_MUL},           {"Div", B_DIV},
    {"Pow", B_POW},    {"Mod", B_MOD},        {"Equal", B_EQ},          {"Less", B_LT},
    {"Greater", B_GT}, {"LessOrEqual", B_LE}, {"GreaterOrEqual", B_GE}, {"And", B_AND},
    {"Or", B_OR},      {"Xor", B_XOR},        {"PRelu", B_PRELU},
};

static const bin_desc k_variadic_ops[] = {
    {"Sum", B_ADD}, {"Mean", B_ADD}, {"Min", B_MIN}, {"Max", B_MAX}};

static const bin_desc *find_desc(const bin_desc *tab, size_t n, const tdm_op_ctx *ctx)
{
    if (ctx->state != NULL)
        return ctx->state;
    for (size_t i = 0; i < n; i++)
        if (strcmp(tab[i].name, ctx->node->op_type) == 0)
            return &tab[i];
    return NULL;
}

#define BIN_DESC(ctx) find_desc(k_binary_ops, sizeof k_binary_ops / sizeof k_binary_ops[0], (ctx))
#define VAR_DESC(ctx) \
    find_desc(k_variadic_ops, sizeof k_variadic_ops / sizeof k_variadic_ops[0], (ctx))

/* ---- broadcasting plan ------------------------------------------------------- */

typedef struct bplan {
    int nd;
    int64_t dims[TDM_MAX_DIMS];
    int64_t sa[TDM_MAX_DIMS], sb[TDM_MAX_DIMS]; /* element strides, 0 = broadcast */
    int form;
    int64_t total;
} bplan;

/* Shape of broadcasting a and b (numpy rules); false when incompatible. */
static bool bcast_shape(int na, const int64_t *da, int nb, const int64_t *db, int *nout,
                        int64_t *dout)
{
    int n = na > nb ? na : nb;
    for (int d = 0; d < n; d++) {
        int ia = d - (n - na), ib = d - (n - nb);
        int64_t x = ia >= 0 ? da[ia] : 1, z = ib >= 0 ? db[ib] : 1;
        if (x == z || z == 1)
            dout[d] = x;
        else if (x == 1)
            dout[d] = z;
        else
            return false;
    }
    *nout = n;
    return true;
}

static void plan_make(bplan *p, const tdm_tensor *a, const tdm_tensor *b, const tdm_tensor *y)
{
    int n = y->ndim;
    int64_t sa_full[TDM_MAX_DIMS], sb_full[TDM_MAX_DIMS];
    int64_t ca = 1, cb = 1;
    for (int d = n - 1; d >= 0; d--) {
        int ia = d - (n - a->ndim), ib = d - (n - b->ndim);
        int64_t x = ia >= 0 ? a->dims[ia] : 1, z = ib >= 0 ? b->dims[ib] : 1;
        sa_full[d] = x == 1 ? 0 : ca;
        sb_full[d] = z == 1 ? 0 : cb;
        ca *= x;
        cb *= z;
    }
    p->nd = 0;
    p->total = tdm_tensor_numel(y);
    for (int d = 0; d < n; d++) {
        int64_t yd = y->dims[d];
        if (yd == 1)
            continue;
        if (p->nd > 0 && p->sa[p->nd - 1] == sa_full[d] * yd &&
            p->sb[p->nd - 1] == sb_full[d] * yd) {
            p->dims[p->nd - 1] *= yd;
            p->sa[p->nd - 1] = sa_full[d];
            p->sb[p->nd - 1] = sb_full[d];
        } else {
            p->dims[p->nd] = yd;
            p->sa[p->nd] = sa_full[d];
            p->sb[p->nd] = sb_full[d];
            p->nd++;
        }
    }
    if (p->nd == 0) {
        p->nd = 1;
        p->dims[0] = 1;
        p->sa[0] = 0;
        p->sb[0] = 0;
    }
    int64_t ia = p->sa[p->nd - 1], ib = p->sb[p->nd - 1];
    assert((ia == 0 || ia == 1) && (ib == 0 || ib == 1));
    p->form = (ia == ib) ? TDM_VEC_VV : (ia == 1 ? TDM_VEC_VS : TDM_VEC_SV);
}

typedef struct bjob {
    const bplan *p;
    const char *a, *b;
    char *y;
    size_t ea, eb, ey; /* element sizes */
    bin_fn fn;
    tdm_vec_binary_fn vf; /* SIMD float32 kernel for p->form, or NULL */
    bool square;          /* y = a * a (Pow with exponent 2) */
} bjob;

static void bjob_range(void *arg, int64_t begin, int64_t end, int worker)
{
    (void)worker;
    const bjob *j = arg;
    const bplan *p = j->p;
    const int nd = p->nd;
    const int64_t inner = p->dims[nd - 1];
    const int64_t sai = p->sa[nd - 1], sbi = p->sb[nd - 1];
    int64_t idx[TDM_MAX_DIMS];
    int64_t rest = begin / inner, col = begin % inner;
    int64_t ra = 0, rb = 0;
    for (int d = nd - 2; d >= 0; d--) {
        idx[d] = rest % p->dims[d];
        rest /= p->dims[d];
        ra += idx[d] * p->sa[d];
        rb += idx[d] * p->sb[d];
    }
    int64_t pos = begin;
    while (pos < end) {
        int64_t len = inner - col;
        if (len > end - pos)
            len = end - pos;
        const char *pa = j->a + (size_t)(ra + col * sai) * j->ea;
        const char *pb = j->b + (size_t)(rb + col * sbi) * j->eb;
        char *py = j->y + (size_t)pos * j->ey;
        if (j->square)
            j->vf((const float *)pa, (const float *)pa, (float *)py, len);
        else if (j->vf != NULL)
            j->vf((const float *)pa, (const float *)pb, (float *)py, len);
        else
            j->fn(pa, pb, py, len, p->form);
        pos += len;
        col = 0;
        for (int d = nd - 2; d >= 0; d--) {
            ra += p->sa[d];
            rb += p->sb[d];
            if (++idx[d] < p->dims[d])
                break;
            ra -= p->sa[d] * p->dims[d];
            rb -= p->sb[d] * p->dims[d];
            idx[d] = 0;
        }
    }
}

static int vec_op(bop op)
{
    switch (op) {
    case B_ADD: return TDM_VEC_ADD;
    case B_SUB: return TDM_VEC_SUB;
    case B_MUL: return TDM_VEC_MUL;
    case B_DIV: return TDM_VEC_DIV;
    case B_MIN: return TDM_VEC_MIN;
    case B_MAX: return TDM_VEC_MAX;
    default: return -1;
    }
}

/* y = op(a, b) with a and b of one dtype broadcast to y's shape. */
static void run_broadcast(tdm_op_ctx *ctx, bop op, const tdm_tensor *a, const tdm_tensor *b,
                          tdm_tensor *y)
{
    bplan p;
    plan_make(&p, a, b, y);
    if (p.total == 0)
        return;
    bjob j = {&p,
              a->data,
              b->data,
              y->data,
              tdm_dtype_size(a->dtype),
              tdm_dtype_size(b->dtype),
              tdm_dtype_size(y->dtype),
              kernel_for(op, a->dtype),
              NULL,
              false};
    assert(j.fn != NULL);
    if (a->dtype == TDM_DTYPE_FLOAT32) {
        const tdm_vec_kernels *vk = tdm_vec_get();
        int vo = vec_op(op);
        if (vo >= 0) {
            j.vf = vk->binary[vo][p.form];
        } else if (op == B_POW && p.form == TDM_VEC_VS && ((const float *)b->data)[0] == 2.0f) {
            j.vf = vk->binary[TDM_VEC_MUL][TDM_VEC_VV];
            j.square = true;
        }
    }
    tdm_math_parallel(ctx, p.total, TDM_MATH_PAR_MIN, bjob_range, &j);
}

/* ---- binary ops ---------------------------------------------------------------- */

tdm_status tdm_math_binary_prepare(tdm_op_ctx *ctx)
{
    ctx->state = (void *)BIN_DESC(ctx);
    return TDM_OK;
}

static bop effective_op(const tdm_op_ctx *ctx, const bin_desc *d)
{
    if (d->op == B_MOD && tdm_attr_int(ctx->node, "fmod", 0) != 0)
        return B_FMOD;
    return d->op;
}

tdm_status tdm_math_binary_infer(tdm_op_ctx *ctx)
{
    const bin_desc *d = BIN_DESC(ctx);
    if (d == NULL)
        return tdm_op_fail(ctx, TDM_ERR_INTERNAL, "not a binary op");
    tdm_status s = tdm_math_check_inputs(ctx, 2);
    if (s != TDM_OK)
        return s;
    if (ctx->n_out < 1 || ctx->out[0] == NULL)
        return tdm_op_fail(ctx, TDM_ERR_INVALID_ARG, "output 0 is required");
    const tdm_tensor *a = ctx->in[0], *b = ctx->in[1];
    bop op = effective_op(ctx, d);
    char sa[96], sb[96];
    if (a->dtype != b->dtype && op != B_POW)
        return tdm_op_fail(ctx, TDM_ERR_SHAPE, "input dtypes differ: %s and %s",
                           tdm_tensor_shape_str(a, sa, sizeof sa),
                           tdm_tensor_shape_str(b, sb, sizeof sb));
    if (kernel_for(op, a->dtype) == NULL)
        return tdm_op_fail(ctx, TDM_ERR_UNSUPPORTED, "dtype %s is not supported",
                           tdm_dtype_name(a->dtype));
    if (op == B_POW && !tdm_math_is_float(b->dtype) && !tdm_math_is_signed_int(b->dtype) &&
        !tdm_math_is_unsigned_int(b->dtype))
        return tdm_op_fail(ctx, TDM_ERR_UNSUPPORTED, "exponent dtype %s is not supported",
                           tdm_dtype_name(b->dtype));
    int n;
    int64_t dims[TDM_MAX_DIMS];
    if (!bcast_shape(a->ndim, a->dims, b->ndim, b->dims, &n, dims))
        return tdm_op_fail(ctx, TDM_ERR_SHAPE, "cannot broadcast %s with %s",
                           tdm_tensor_shape_str(a, sa, sizeof sa),
                           tdm_tensor_shape_str(b, sb, sizeof sb));
    if (op == B_PRELU) {
        /* slope broadcasts to X; X is never expanded */
        bool same = n == a->ndim;
        for (int i = 0; same && i < n; i++)
            same = dims[i] == a->dims[i];
        if (!same)
            return tdm_op_fail(ctx, TDM_ERR_SHAPE, "slope %s does not broadcast to X %s",
                               tdm_tensor_shape_str(b, sb, sizeof sb),
                               tdm_tensor_shape_str(a, sa, sizeof sa));
    }
    tdm_tensor_set_shape(ctx->out[0], is_compare(op) ? TDM_DTYPE_BOOL : a->dtype, n, dims);
    return TDM_OK;
}

/* Pow with operands of different dtypes: a float base takes the exponent in
 * its own type; an integer base with a float exponent is computed in double
 * and converted back (numpy's power(x, y).astype(x.dtype)). */
static tdm_status run_pow_mixed(tdm_op_ctx *ctx, const tdm_tensor *a, const tdm_tensor *b,
                                tdm_tensor *y)
{
    int64_t na = tdm_tensor_numel(a), nb = tdm_tensor_numel(b), ny = tdm_tensor_numel(y);
    bool via_double = !tdm_math_is_float(a->dtype) && tdm_math_is_float(b->dtype);
    tdm_dtype ct = via_double ? TDM_DTYPE_FLOAT64 : a->dtype;
    size_t es = tdm_dtype_size(ct);
    size_t bytes = ((size_t)nb * es + 63) / 64 * 64;
    if (via_double)
        bytes += ((size_t)na * es + 63) / 64 * 64 + (size_t)ny * es;
    char *buf = tdm_op_scratch(ctx, bytes);
    if (buf == NULL)
        return tdm_op_fail(ctx, TDM_ERR_NOMEM, "out of memory for Pow operands");
    tdm_tensor bc = *b;
    bc.dtype = ct;
    bc.data = buf;
    bc.flags = 0;
    if (!tdm_math_convert(b->data, b->dtype, bc.data, ct, nb))
        return tdm_op_fail(ctx, TDM_ERR_UNSUPPORTED, "exponent dtype %s is not supported",
                           tdm_dtype_name(b->dtype));
    if (!via_double) {
        run_broadcast(ctx, B_POW, a, &bc, y);
        return TDM_OK;
    }
    char *pa = buf + ((size_t)nb * es + 63) / 64 * 64;
    char *py = pa + ((size_t)na * es + 63) / 64 * 64;
    tdm_tensor ac = *a, yc = *y;
    ac.dtype = yc.dtype = ct;
    ac.data = pa;
    yc.data = py;
    ac.flags = yc.flags = 0;
    (void)tdm_math_convert(a->data, a->dtype, pa, ct, na);
    run_broadcast(ctx, B_POW, &ac, &bc, &yc);
    (void)tdm_math_convert(py, ct, y->data, y->dtype, ny);
    return TDM_OK;
}

tdm_status tdm_math_binary_run(tdm_op_ctx *ctx)
{
    const bin_desc *d = BIN_DESC(ctx);
    assert(d != NULL);
    bop op = effective_op(ctx, d);
    const tdm_tensor *a = ctx->in[0], *b = ctx->in[1];
    if (op == B_POW && a->dtype != b->dtype)
        return run_pow_mixed(ctx, a, b, ctx->out[0]);
    run_broadcast(ctx, op, a, b, ctx->out[0]);
    return TDM_OK;
}

/* ---- variadic ops -------------------------------------------------------------- */

tdm_status tdm_math_variadic_prepare(tdm_op_ctx *ctx)
{
    ctx->state = (void *)VAR_DESC(ctx);
    return TDM_OK;
}

tdm_status tdm_math_variadic_infer(tdm_op_ctx *ctx)
{
    const bin_desc *d = VAR_DESC(ctx);
    if (d == NULL)
        return tdm_op_fail(ctx, TDM_ERR_INTERNAL, "not a variadic op");
    if (ctx->n_in < 1)
        return tdm_op_fail(ctx, TDM_ERR_INVALID_ARG, "needs at least one input");
    tdm_status s = tdm_math_check_inputs(ctx, ctx->n_in);
    if (s != TDM_OK)
        return s;
    if (ctx->n_out < 1 || ctx->out[0] == NULL)
        return tdm_op_fail(ctx, TDM_ERR_INVALID_ARG, "output 0 is required");
    const tdm_tensor *a = ctx->in[0];
    if (kernel_for(d->op, a->dtype) == NULL)
        return tdm_op_fail(ctx, TDM_ERR_UNSUPPORTED, "dtype %s is not supported",
                           tdm_dtype_name(a->dtype));
    int n = a->ndim;
    int64_t dims[TDM_MAX_DIMS];
    memcpy(dims, a->dims, sizeof dims);
    for (int i = 1; i < ctx->n_in; i++) {
        const tdm_tensor *b = ctx->in[i];
        char sa[96], sb[96];
        if (b->dtype != a->dtype)
            return tdm_op_fail(ctx, TDM_ERR_SHAPE, "input %d dtype %s differs from input 0's %s", i,
                               tdm_dtype_name(b->dtype), tdm_dtype_name(a->dtype));
        int64_t nd[TDM_MAX_DIMS];
        int nn;
        if (!bcast_shape(n, dims, b->ndim, b->dims, &nn, nd)) {
            tdm_tensor t;
            memset(&t, 0, sizeof t);
            tdm_tensor_set_shape(&t, a->dtype, n, dims);
            return tdm_op_fail(ctx, TDM_ERR_SHAPE, "cannot broadcast %s with input %d %s",
                               tdm_tensor_shape_str(&t, sa, sizeof sa), i,
                               tdm_tensor_shape_str(b, sb, sizeof sb));
        }
        n = nn;
        memcpy(dims, nd, sizeof dims);
    }
    tdm_tensor_set_shape(ctx->out[0], a->dtype, n, dims);
    return TDM_OK;
}

typedef struct mean_job {
    void *y;
    tdm_dtype dt;
    int64_t count;
} mean_job;

static void mean_range(void *arg, int64_t begin, int64_t end, int worker)
{
    (void)worker;
    const mean_job *j = arg;
    const int64_t c = j->count;
    switch (j->dt) {
    case TDM_DTYPE_FLOAT32: {
        float *y = j->y;
        for (int64_t i = begin; i < end; i++)
            y[i] /= (float)c;
        break;
    }
    case TDM_DTYPE_FLOAT64: {
        double *y = j->y;
        for (int64_t i = begin; i < end; i++)
            y[i] /= (double)c;
        break;
    }
    case TDM_DTYPE_FLOAT16: {
        uint16_t *y = j->y;
        for (int64_t i = begin; i < end; i++)
            y[i] = tdm_fp32_to_fp16(tdm_fp16_to_fp32(y[i]) / (float)c);
        break;
    }
    case TDM_DTYPE_BFLOAT16: {
        uint16_t *y = j->y;
        for (int64_t i = begin; i < end; i++)
            y[i] = tdm_math_fp32_to_bf16(tdm_bf16_to_fp32(y[i]) / (float)c);
        break;
    }
#define MEAN_INT(DT, T)                       \
    case DT: {                                \
        T *y = j->y;                          \
        for (int64_t i = begin; i < end; i++) \
            y[i] = (T)(y[i] / (T)c);          \
        break;                                \
    }
        MEAN_INT(TDM_DTYPE_INT8, int8_t)
        MEAN_INT(TDM_DTYPE_INT16, int16_t)
        MEAN_INT(TDM_DTYPE_INT32, int32_t)
        MEAN_INT(TDM_DTYPE_INT64, int64_t)
        MEAN_INT(TDM_DTYPE_UINT8, uint8_t)
        MEAN_INT(TDM_DTYPE_UINT16, uint16_t)
        MEAN_INT(TDM_DTYPE_UINT32, uint32_t)
        MEAN_INT(TDM_DTYPE_UINT64, uint64_t)
#undef MEAN_INT
    default: assert(!"dtype checked by infer"); break;
    }
}

tdm_status tdm_math_variadic_run(tdm_op_ctx *ctx)
{
    const bin_desc *d = VAR_DESC(ctx);
    assert(d != NULL);
    tdm_tensor *y = ctx->out[0];
    if (ctx->n_in == 1) {
        /* one input: its shape is the output's */
        if (tdm_tensor_nbytes(y) > 0)
            memcpy(y->data, ctx->in[0]->data, tdm_tensor_nbytes(y));
        return TDM_OK;
    }
    run_broadcast(ctx, d->op, ctx->in[0], ctx->in[1], y);
    for (int i = 2; i < ctx->n_in; i++)
        run_broadcast(ctx, d->op, y, ctx->in[i], y);
    if (strcmp(d->name, "Mean") == 0) {
        mean_job j = {y->data, y->dtype, ctx->n_in};
        tdm_math_parallel(ctx, tdm_tensor_numel(y), TDM_MATH_PAR_MIN, mean_range, &j);
    }
    return TDM_OK;
}

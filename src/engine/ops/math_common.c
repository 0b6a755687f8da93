/*
 * Helpers shared by the math op sources: input checks, axis resolution, the
 * parallel-or-inline decision and dtype conversion.
 *
 * Conversion is written as one loop per (source, destination) pair,
 * generated from three source kinds (float, signed, unsigned) so that every
 * pair is a tight loop without a per-element switch; Cast, CastLike, Pow
 * with mixed operand types and the reductions' int paths all use it.
 */
#include <math.h>
#include <string.h>

#include "engine/ops/math_ops.h"

tdm_status tdm_math_check_inputs(tdm_op_ctx *ctx, int n_required)
{
    if (ctx->n_in < n_required)
        return tdm_op_fail(ctx, TDM_ERR_INVALID_ARG, "needs %d inputs, got %d", n_required,
                           ctx->n_in);
    for (int i = 0; i < ctx->n_in; i++) {
        const tdm_tensor *t = ctx->in[i];
        if (t == NULL) {
            if (i < n_required)
                return tdm_op_fail(ctx, TDM_ERR_INVALID_ARG, "input %d is required", i);
            continue;
        }
        if (t->ndim < 0)
            return TDM_ERR_NEEDS_VALUE;
        if (t->ndim > TDM_MAX_DIMS)
            return tdm_op_fail(ctx, TDM_ERR_SHAPE, "input %d has rank %d > %d", i, (int)t->ndim,
                               TDM_MAX_DIMS);
        for (int d = 0; d < t->ndim; d++)
            if (t->dims[d] < 0)
                return TDM_ERR_NEEDS_VALUE;
    }
    return TDM_OK;
}

tdm_status tdm_math_axis(tdm_op_ctx *ctx, const char *what, int64_t axis, int rank, int *out)
{
    int64_t a = axis < 0 ? axis + rank : axis;
    if (a < 0 || a >= rank || rank == 0)
        return tdm_op_fail(ctx, TDM_ERR_SHAPE, "%s %lld is out of range for rank %d", what,
                           (long long)axis, rank);
    *out = (int)a;
    return TDM_OK;
}

void tdm_math_parallel(tdm_op_ctx *ctx, int64_t n, int64_t min_parallel, tdm_task_fn fn, void *arg)
{
    if (n <= 0)
        return;
    if (ctx->pool == NULL || tdm_pool_size(ctx->pool) <= 1 || n < min_parallel) {
        fn(arg, 0, n, 0);
        return;
    }
    int threads = tdm_pool_size(ctx->pool);
    /* a few chunks per thread balance uneven cores without tiny tasks */
    int64_t grain = n / ((int64_t)threads * 4);
    if (grain < min_parallel / 4)
        grain = min_parallel / 4;
    if (grain < 1)
        grain = 1;
    tdm_pool_for(ctx->pool, n, grain, fn, arg);
}

bool tdm_math_is_float(tdm_dtype dt)
{
    return dt == TDM_DTYPE_FLOAT32 || dt == TDM_DTYPE_FLOAT64 || dt == TDM_DTYPE_FLOAT16 ||
           dt == TDM_DTYPE_BFLOAT16;
}

bool tdm_math_is_signed_int(tdm_dtype dt)
{
    return dt == TDM_DTYPE_INT8 || dt == TDM_DTYPE_INT16 || dt == TDM_DTYPE_INT32 ||
           dt == TDM_DTYPE_INT64;
}

bool tdm_math_is_unsigned_int(tdm_dtype dt)
{
    return dt == TDM_DTYPE_UINT8 || dt == TDM_DTYPE_UINT16 || dt == TDM_DTYPE_UINT32 ||
           dt == TDM_DTYPE_UINT64;
}

uint16_t tdm_math_fp32_to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((u >> 16) | 0x40u); /* quiet NaN, sign kept */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

/* x86 cvttsd2si semantics: NaN and out-of-range give the minimum. */
static inline int32_t f_to_i32(double v)
{
    return (v > -2147483649.0 && v < 2147483648.0) ? (int32_t)v : INT32_MIN;
}

static inline int64_t f_to_i64(double v)
{
    return (v >= -9223372036854775808.0 && v < 9223372036854775808.0) ? (int64_t)v : INT64_MIN;
}

static inline uint64_t f_to_u64(double v)
{
    if (v >= 9223372036854775808.0 && v < 18446744073709551616.0)
        return (uint64_t)v;
    return (uint64_t)f_to_i64(v);
}

/* Source loads, by dtype. */
#define LD_PLAIN(p, i) ((p)[i])
#define LD_F16(p, i) tdm_fp16_to_fp32((p)[i])
#define LD_BF16(p, i) tdm_bf16_to_fp32((p)[i])

/* Stores from a float-kind value (float or double). */
#define SF_F32(v) ((float)(v))
#define SF_F64(v) ((double)(v))
#define SF_F16(v) tdm_fp32_to_fp16((float)(v))
#define SF_BF16(v) tdm_math_fp32_to_bf16((float)(v))
#define SF_I8(v) ((int8_t)(uint32_t)f_to_i32(v))
#define SF_I16(v) ((int16_t)(uint32_t)f_to_i32(v))
#define SF_I32(v) f_to_i32(v)
#define SF_I64(v) f_to_i64(v)
#define SF_U8(v) ((uint8_t)(uint32_t)f_to_i32(v))
#define SF_U16(v) ((uint16_t)(uint32_t)f_to_i32(v))
#define SF_U32(v) ((uint32_t)(uint64_t)f_to_i64(v))
#define SF_U64(v) f_to_u64(v)
#define SF_BOOL(v) ((uint8_t)((v) != 0))

/* Stores from an integer-kind value (int64_t or uint64_t): wrap to width. */
#define SI_F32(v) ((float)(v))
#define SI_F64(v) ((double)(v))
#define SI_F16(v) tdm_fp32_to_fp16((float)(v))
#define SI_BF16(v) tdm_math_fp32_to_bf16((float)(v))
#define SI_I8(v) ((int8_t)(uint64_t)(v))
#define SI_I16(v) ((int16_t)(uint64_t)(v))
#define SI_I32(v) ((int32_t)(uint64_t)(v))
#define SI_I64(v) ((int64_t)(uint64_t)(v))
#define SI_U8(v) ((uint8_t)(uint64_t)(v))
#define SI_U16(v) ((uint16_t)(uint64_t)(v))
#define SI_U32(v) ((uint32_t)(uint64_t)(v))
#define SI_U64(v) ((uint64_t)(v))
#define SI_BOOL(v) ((uint8_t)((v) != 0))

#define CONV_LOOP(ST, ST_T, LD, S_T)    \
    do {                                \
        const S_T *s_ = src;            \
        ST_T *d_ = dst;                 \
        for (int64_t i = 0; i < n; i++) \
            d_[i] = ST(LD(s_, i));      \
    } while (0)

/* One function per source dtype; K is SF or SI (the store family). */
#define CONV_FROM(fname, S_T, LD, K)                                                  \
    static bool fname(const void *src, void *dst, tdm_dtype ddt, int64_t n)           \
    {                                                                                 \
        switch (ddt) {                                                                \
        case TDM_DTYPE_FLOAT32: CONV_LOOP(K##_F32, float, LD, S_T); return true;      \
        case TDM_DTYPE_FLOAT64: CONV_LOOP(K##_F64, double, LD, S_T); return true;     \
        case TDM_DTYPE_FLOAT16: CONV_LOOP(K##_F16, uint16_t, LD, S_T); return true;   \
        case TDM_DTYPE_BFLOAT16: CONV_LOOP(K##_BF16, uint16_t, LD, S_T); return true; \
        case TDM_DTYPE_INT8: CONV_LOOP(K##_I8, int8_t, LD, S_T); return true;         \
        case TDM_DTYPE_INT16: CONV_LOOP(K##_I16, int16_t, LD, S_T); return true;      \
        case TDM_DTYPE_INT32: CONV_LOOP(K##_I32, int32_t, LD, S_T); return true;      \
        case TDM_DTYPE_INT64: CONV_LOOP(K##_I64, int64_t, LD, S_T); return true;      \
        case TDM_DTYPE_UINT8: CONV_LOOP(K##_U8, uint8_t, LD, S_T); return true;       \
        case TDM_DTYPE_UINT16: CONV_LOOP(K##_U16, uint16_t, LD, S_T); return true;    \
        case TDM_DTYPE_UINT32: CONV_LOOP(K##_U32, uint32_t, LD, S_T); return true;    \
        case TDM_DTYPE_UINT64: CONV_LOOP(K##_U64, uint64_t, LD, S_T); return true;    \
        case TDM_DTYPE_BOOL: CONV_LOOP(K##_BOOL, uint8_t, LD, S_T); return true;      \
        default: return false;                                                        \
        }                                                                             \
    }

CONV_FROM(conv_f32, float, LD_PLAIN, SF)
CONV_FROM(conv_f64, double, LD_PLAIN, SF)
CONV_FROM(conv_f16, uint16_t, LD_F16, SF)
CONV_FROM(conv_bf16, uint16_t, LD_BF16, SF)
CONV_FROM(conv_i8, int8_t, LD_PLAIN, SI)
CONV_FROM(conv_i16, int16_t, LD_PLAIN, SI)
CONV_FROM(conv_i32, int32_t, LD_PLAIN, SI)
CONV_FROM(conv_i64, int64_t, LD_PLAIN, SI)
CONV_FROM(conv_u8, uint8_t, LD_PLAIN, SI)
CONV_FROM(conv_u16, uint16_t, LD_PLAIN, SI)
CONV_FROM(conv_u32, uint32_t, LD_PLAIN, SI)
CONV_FROM(conv_u64, uint64_t, LD_PLAIN, SI)

bool tdm_math_convert(const void *src, tdm_dtype sdt, void *dst, tdm_dtype ddt, int64_t n)
{
    if (sdt == ddt && sdt != TDM_DTYPE_BOOL) {
        size_t es = tdm_dtype_size(sdt);
        if (es == 0 || sdt == TDM_DTYPE_STRING)
            return false;
        if (n > 0 && src != dst)
            memmove(dst, src, (size_t)n * es);
        return true;
    }
    switch (sdt) {
    case TDM_DTYPE_FLOAT32: return conv_f32(src, dst, ddt, n);
    case TDM_DTYPE_FLOAT64: return conv_f64(src, dst, ddt, n);
    case TDM_DTYPE_FLOAT16: return conv_f16(src, dst, ddt, n);
    case TDM_DTYPE_BFLOAT16: return conv_bf16(src, dst, ddt, n);
    case TDM_DTYPE_INT8: return conv_i8(src, dst, ddt, n);
    case TDM_DTYPE_INT16: return conv_i16(src, dst, ddt, n);
    case TDM_DTYPE_INT32: return conv_i32(src, dst, ddt, n);
    case TDM_DTYPE_INT64: return conv_i64(src, dst, ddt, n);
    case TDM_DTYPE_UINT8: return conv_u8(src, dst, ddt, n);
    case TDM_DTYPE_UINT16: return conv_u16(src, dst, ddt, n);
    case TDM_DTYPE_UINT32: return conv_u32(src, dst, ddt, n);
    case TDM_DTYPE_UINT64: return conv_u64(src, dst, ddt, n);
    /* bool data is read as bytes, so a stray 2 still becomes true */
    case TDM_DTYPE_BOOL: return conv_u8(src, dst, ddt, n);
    default: return false;
    }
}

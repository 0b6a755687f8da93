/*
 * Float32 vector kernels of the math ops, with run-time dispatch.
 *
 * The hot element-wise functions (exp, tanh, sigmoid, erf, gelu, relu), the
 * add/mul family and the row reductions behind softmax and Reduce* exist in
 * three builds: portable C (libm, what the compiler vectorises by itself),
 * AVX2+FMA and AVX-512. The two SIMD builds share one source
 * (math_vec_impl.h) compiled at two vector widths, so that the polynomial
 * approximations and their special-case handling are written once and tested
 * once per width. The kernels only see contiguous runs; broadcasting,
 * strides and threads are the callers' business (math_binary.c, ...).
 *
 * Accuracy contract (tested in tests/engine/test_math_vec.c against libm):
 * exp, tanh, sigmoid and erf within 1e-6 relative error (about 2 ulp) for
 * normal results, denormal results within a few denormal ulps, NaN in gives
 * NaN out, +-inf handled as the limits. Results do not depend on where an
 * element falls in a run (tails go through the same vector code).
 */
#ifndef TANDEM_OPS_MATH_VEC_H
#define TANDEM_OPS_MATH_VEC_H

#include <stdint.h>

typedef enum tdm_vec_unary {
    TDM_VEC_EXP,
    TDM_VEC_TANH,
    TDM_VEC_SIGMOID,
    TDM_VEC_ERF,
    TDM_VEC_GELU,      /* x * Phi(x), exact (erf) form */
    TDM_VEC_GELU_TANH, /* the tanh approximation of gelu */
    TDM_VEC_RELU,
    TDM_VEC_NUNARY
} tdm_vec_unary;

typedef enum tdm_vec_binop {
    TDM_VEC_ADD,
    TDM_VEC_SUB,
    TDM_VEC_MUL,
    TDM_VEC_DIV,
    TDM_VEC_MIN, /* NaN in either operand gives NaN (numpy minimum) */
    TDM_VEC_MAX,
    TDM_VEC_NBINOP
} tdm_vec_binop;

/* Operand forms of a binary run: both vectors, b a scalar, a a scalar. */
typedef enum tdm_vec_form {
    TDM_VEC_VV,
    TDM_VEC_VS, /* b[0] applies to every element */
    TDM_VEC_SV, /* a[0] applies to every element */
    TDM_VEC_NFORM
} tdm_vec_form;

typedef enum tdm_vec_reduce {
    TDM_VEC_RSUM,
    TDM_VEC_RSUMSQ,
    TDM_VEC_RASUM, /* sum of |x| */
    TDM_VEC_RMAX,  /* NaN if any element is NaN; -inf for n == 0 */
    TDM_VEC_RMIN,
    TDM_VEC_NREDUCE
} tdm_vec_reduce;

typedef void (*tdm_vec_unary_fn)(const float *x, float *y, int64_t n);
typedef void (*tdm_vec_binary_fn)(const float *a, const float *b, float *y, int64_t n);
typedef float (*tdm_vec_reduce_fn)(const float *x, int64_t n);

typedef struct tdm_vec_kernels {
    const char *name; /* "portable", "avx2", "avx512" */
    tdm_vec_unary_fn unary[TDM_VEC_NUNARY];
    tdm_vec_binary_fn binary[TDM_VEC_NBINOP][TDM_VEC_NFORM];
    tdm_vec_reduce_fn reduce[TDM_VEC_NREDUCE];
    /* y[i] = exp(x[i] - shift) (y may be NULL); returns the sum of those values. */
    float (*exp_sum)(const float *x, float shift, float *y, int64_t n);
} tdm_vec_kernels;

/* The best kernels for this CPU (and the TDM_CPU cap). */
const tdm_vec_kernels *tdm_vec_get(void);

/*
 * Kernels of one level for tests and benchmarks: 0 portable, 1 AVX2,
 * 2 AVX-512. NULL when that level is not built or the CPU lacks it.
 */
const tdm_vec_kernels *tdm_vec_level(int level);

#if defined(TDM_X86)
extern const tdm_vec_kernels tdm_vec_kernels_avx2;
extern const tdm_vec_kernels tdm_vec_kernels_avx512;
#endif

#endif

/*
 * Single-precision matrix multiply, the engine's hot loop.
 *
 *   C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C, then the epilogue
 *
 * All matrices are row-major with leading dimensions (lda, ldb, ldc) in
 * elements; op(X) is X or its transpose. The epilogue (a bias per column, a
 * bias per row, then an activation) is applied while the output tile is hot,
 * so Conv+bias+ReLU and MatMul+Add+GELU cost one pass over C.
 *
 * Operands are read in place (only B^T is repacked, one cache-sized panel
 * at a time); nothing is kept between calls, so weights exist once in memory. The implementation
 * picks AVX-512, AVX2+FMA, NEON or portable code at run time (base/cpu.h).
 */
#ifndef TANDEM_KERNELS_GEMM_H
#define TANDEM_KERNELS_GEMM_H

#include <stdbool.h>
#include <stdint.h>

#include "base/pool.h"

typedef enum tdm_act {
    TDM_ACT_NONE = 0,
    TDM_ACT_RELU,
    TDM_ACT_LEAKY_RELU, /* alpha = slope */
    TDM_ACT_CLIP,       /* alpha = min, beta = max */
    TDM_ACT_SIGMOID,
    TDM_ACT_TANH,
    TDM_ACT_GELU,         /* exact (erf) form */
    TDM_ACT_HARD_SIGMOID, /* max(0, min(1, alpha*x + beta)) */
    TDM_ACT_HARD_SWISH,   /* x * max(0, min(1, x/6 + 1/2)) */
} tdm_act;

typedef struct tdm_epilogue {
    const float *bias_col; /* length N, added to every row; NULL for none */
    const float *bias_row; /* length M, added to every column; NULL for none */
    tdm_act act;
    float alpha, beta; /* activation parameters, see tdm_act */
} tdm_epilogue;

/* Multi-threaded over the pool (NULL: single thread). ep may be NULL. */
void tdm_sgemm(tdm_pool *pool, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
               float alpha, const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
               float *C, int64_t ldc, const tdm_epilogue *ep);

/* Applies an activation in place to n floats. */
void tdm_act_apply(float *x, int64_t n, tdm_act act, float alpha, float beta);

/* Parses an activation from its ONNX op name ("Relu", "LeakyRelu", ...); false if unknown. */
bool tdm_act_from_name(const char *name, tdm_act *act);

/*
 * Explicit kernel choice, for tests and benchmarks that compare the kernel
 * families on one machine (tdm_sgemm picks the best one the CPU has).
 * REFERENCE is the plain triple loop, PORTABLE the blocked C kernel.
 */
typedef enum tdm_gemm_impl {
    TDM_GEMM_AUTO = 0,
    TDM_GEMM_REFERENCE,
    TDM_GEMM_PORTABLE,
    TDM_GEMM_AVX2,
    TDM_GEMM_AVX512,
    TDM_GEMM_NEON,
} tdm_gemm_impl;

/* True when this build and CPU can run impl. */
bool tdm_gemm_impl_available(tdm_gemm_impl impl);

/* tdm_sgemm with a chosen implementation (AUTO: the default); false if unavailable. */
bool tdm_sgemm_impl(tdm_gemm_impl impl, tdm_pool *pool, bool trans_a, bool trans_b, int64_t M,
                    int64_t N, int64_t K, float alpha, const float *A, int64_t lda, const float *B,
                    int64_t ldb, float beta, float *C, int64_t ldc, const tdm_epilogue *ep);

/*
 * tdm_sgemm plus a residual R [M, N] (leading dimension ldr), added after the
 * biases and before the activation:
 *
 *   C = act(alpha * op(A) op(B) + beta * C + bias + R)
 *
 * so MatMul + bias + residual Add is one pass over C (the residual is read
 * while the output tile is in registers). R may be C itself (then it acts as
 * beta + 1); otherwise it must not overlap C. impl as for tdm_sgemm_impl;
 * false if unavailable.
 */
bool tdm_sgemm_res(tdm_gemm_impl impl, tdm_pool *pool, bool trans_a, bool trans_b, int64_t M,
                   int64_t N, int64_t K, float alpha, const float *A, int64_t lda, const float *B,
                   int64_t ldb, float beta, float *C, int64_t ldc, const tdm_epilogue *ep,
                   const float *R, int64_t ldr);

/* tdm_act_apply with a chosen implementation; false if unavailable. */
bool tdm_act_apply_impl(tdm_gemm_impl impl, float *x, int64_t n, tdm_act act, float alpha,
                        float beta);

/*
 * Single-threaded tdm_sgemm on a caller-provided workspace of
 * TDM_SGEMM_WS_FLOATS floats (64-byte aligned), for ops that already run in
 * parallel slices (attention heads) and must not allocate per call.
 */
#define TDM_SGEMM_WS_FLOATS (768 * 64)
void tdm_sgemm_st(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                  const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
                  int64_t ldc, const tdm_epilogue *ep, float *ws);

#endif

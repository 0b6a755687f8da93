/*
 * Private interface between the GEMM driver (gemm.c) and its SIMD kernels.
 *
 * The driver owns blocking, threading and workspace; a kernel family (one
 * per instruction set, in gemm_<isa>.c) only knows how to compute one column
 * panel of C (at most nr columns) over a range of rows, reading A and B in
 * place. Neither operand is packed in the common case: A is addressed with a
 * row and a column stride, so op(A) = A and op(A) = A^T are the same kernel,
 * and B is read row by row with its own leading dimension. Only B^T must be
 * repacked (pack_bt), one panel at a time, because the kernel wants the
 * columns of a B row contiguous. On the cores this was tuned on, the L2 feeds
 * unpacked rows as fast as packed ones, and skipping the copy is what makes
 * the small-M and attention-sized products fast.
 *
 * The driver calls the kernel once per (row block, k block, column panel);
 * the kernel loops over micro-tiles of mr rows inside, so the indirect call
 * is amortised over mr * nr * k multiply-adds per tile.
 */
#ifndef TANDEM_KERNELS_GEMM_INTERNAL_H
#define TANDEM_KERNELS_GEMM_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/kernels/gemm.h"

/* How a tile's accumulator meets the old C. */
enum {
    TDM_GEMM_STORE = 0, /* c = alpha*acc + beta*c (c not read when beta == 0) */
    TDM_GEMM_ACCUM = 1, /* c = c + alpha*acc (a later k block) */
};

typedef struct tdm_gemm_panel {
    int64_t m, n, k; /* rows, columns (1..nr, or any for gemv), depth */
    const float *a;  /* element (i, p) at a[i * a_rs + p * a_cs] */
    int64_t a_rs, a_cs;
    const float *b; /* element (p, j) at b[p * ldb + j] (gemv with bt: b[j * ldb + p]) */
    int64_t ldb;
    bool bt;             /* gemv only: B is given transposed */
    const float *b_next; /* the next panel's B to prefetch (k rows, stride b_next_ld), or NULL */
    int64_t b_next_ld;
    float *c; /* element (i, j) at c[i * ldc + j] */
    int64_t ldc;
    float alpha, beta;
    int mode;              /* TDM_GEMM_STORE or TDM_GEMM_ACCUM */
    bool last;             /* last k block: add biases and apply the activation */
    const float *bias_col; /* at the panel's first column, or NULL */
    const float *bias_row; /* at the panel's first row, or NULL */
    const float *res;      /* residual at the panel's (0, 0), added with the biases, or NULL */
    int64_t ldr;
    tdm_act act;
    float act_alpha, act_beta;
} tdm_gemm_panel;

typedef struct tdm_gemm_isa {
    const char *name;
    int mr; /* rows of a micro-tile */
    int nr; /* columns of a panel */
    int vw; /* floats per vector: the unit in which columns are split between threads */
    /* Computes p->m rows of one panel; p->n <= nr. */
    void (*panel)(const tdm_gemm_panel *p);
    /* dst[p * nr + j] = b[j * ldb + p] for j < n <= nr, p < k. */
    void (*pack_bt)(const float *b, int64_t ldb, int64_t n, int64_t k, float *dst);
    /* One row of C (p->m == 1), any p->n; with p->bt, p->a_cs == 1. */
    void (*gemv)(const tdm_gemm_panel *p);
    void (*act)(float *x, int64_t n, tdm_act act, float alpha, float beta);
    /* panel and gemv add p->res; without it the driver folds R into C first (beta = 1) */
    bool has_res;
} tdm_gemm_isa;

/* Largest k block the driver hands a kernel; sizes the B^T panel buffer. */
#define TDM_GEMM_KC_MAX 768
/* Widest panel of any kernel family (TDM_SGEMM_WS_FLOATS covers KC_MAX x this). */
#define TDM_GEMM_NR_MAX 64

/* Scalar activation, the reference for the SIMD ones. */
float tdm_act_scalar(float v, tdm_act act, float alpha, float beta);

#if defined(TDM_X86)
extern const tdm_gemm_isa tdm_gemm_isa_avx512;
extern const tdm_gemm_isa tdm_gemm_isa_avx2;
#endif
#if defined(__aarch64__)
extern const tdm_gemm_isa tdm_gemm_isa_neon;
#endif

#endif

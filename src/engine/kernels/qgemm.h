/*
 * Int8 matrix multiply with dynamic activation quantisation (the --int8 path).
 *
 *   C[M,N] = act(A[M,K] * W[K,N] + bias)   computed as
 *   C[m,n] = sa[m] * sw[n] * (sum_k qa[m,k] * qw[k,n] - za[m] * colsum[n]) + bias[n]
 *
 * Weights are quantised once, symmetric per output channel (qw in [-127, 127],
 * sw[n] = max|W[:,n]| / 127), and packed for the kernels: panels of 16 output
 * channels, in each panel groups of 4 consecutive k, so one 64-byte line holds
 * 4 k x 16 channels, the operand layout of VNNI's dpbusd (u8 x s8, 4-way dot
 * product into each int32 lane). K is padded to a multiple of 4 and N to a
 * multiple of 16 with zero weights, which contribute nothing.
 *
 * Activations are quantised at run time per row, asymmetric: qa = round(a /
 * sa) + za with the range [min(a, 0), max(a, 0)] mapped onto 0..127. Seven
 * bits, not eight, on every kernel: AVX2 (and AVX-512 without VNNI) multiply
 * with maddubs, which adds two u8 x s8 products into a saturating int16;
 * 127 * 127 * 2 = 32258 never saturates, 255 * 127 * 2 would. With the same
 * codes on every path the int32 sums are exact and identical, so every kernel
 * gives bit-identical output and the tests can hold them to one reference.
 * The lost activation bit costs about 0.1% of cosine on a BERT encoder.
 *
 * Kernels: AVX-512 VNNI (dpbusd), AVX-512BW and AVX2 (maddubs + madd), and
 * portable C, chosen at run time from base/cpu.h (TDM_CPU caps the level).
 */
#ifndef TANDEM_KERNELS_QGEMM_H
#define TANDEM_KERNELS_QGEMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/pool.h"
#include "engine/kernels/gemm.h"

#define TDM_QGEMM_NR 16 /* output channels per packed panel */
#define TDM_QGEMM_KG 4  /* k per group inside a panel */
#define TDM_QGEMM_QMAX 127

/* K and N rounded up to the packing granularity. */
static inline int64_t tdm_qgemm_kp(int64_t K)
{
    return (K + TDM_QGEMM_KG - 1) / TDM_QGEMM_KG * TDM_QGEMM_KG;
}
static inline int64_t tdm_qgemm_np(int64_t N)
{
    return (N + TDM_QGEMM_NR - 1) / TDM_QGEMM_NR * TDM_QGEMM_NR;
}

/* Bytes of the packed weights for an N x K layer (np(N) * kp(K)). */
size_t tdm_qgemm_packed_size(int64_t N, int64_t K);

/*
 * Quantises float weights per output channel and packs them.
 * W holds element (k, n) at W[k * N + n] (trans_w false, a [K, N] MatMul
 * weight) or W[n * K + k] (trans_w true, [N, K] as Gemm transB / Linear).
 * packed: tdm_qgemm_packed_size bytes; scale: N floats.
 */
void tdm_qgemm_quantize_pack(const float *W, bool trans_w, int64_t K, int64_t N, int8_t *packed,
                             float *scale);

/* Weight (k, n) of a packed matrix, for tests and tools. */
int8_t tdm_qgemm_packed_at(const int8_t *packed, int64_t K, int64_t k, int64_t n);

/* Sums over k of each packed column: colsum[0 .. np(N)). */
void tdm_qgemm_colsums(const int8_t *packed, int64_t N, int64_t K, int32_t *colsum);

/* A packed, quantised weight matrix as the kernels read it. */
typedef struct tdm_qmat {
    int64_t N, K;
    const int8_t *w;       /* tdm_qgemm_packed_size bytes (any alignment; 64 is best) */
    const float *scale;    /* N */
    const int32_t *colsum; /* np(N), from tdm_qgemm_colsums */
} tdm_qmat;

typedef enum tdm_qgemm_impl {
    TDM_QGEMM_AUTO = 0,
    TDM_QGEMM_PORTABLE,
    TDM_QGEMM_AVX2,
    TDM_QGEMM_AVX512,      /* AVX-512BW, maddubs */
    TDM_QGEMM_AVX512_VNNI, /* dpbusd */
} tdm_qgemm_impl;

/* True when this build and CPU (after TDM_CPU capping) can run impl. */
bool tdm_qgemm_impl_available(tdm_qgemm_impl impl);
/* Name of the kernel AUTO picks ("avx512-vnni", "avx512", "avx2", "portable"). */
const char *tdm_qgemm_impl_name(tdm_qgemm_impl impl);

/*
 * C[M, N] (leading dimension ldc) = act(quant(A)[M, K] (lda) * W + bias),
 * ep may be NULL; only ep->bias_col, act, alpha, beta are used (bias_row must
 * be NULL). Threads over the pool (NULL: one thread). Returns false when the
 * workspace cannot be allocated or impl is unavailable; C is then untouched.
 */
bool tdm_qgemm(tdm_pool *pool, int64_t M, const float *A, int64_t lda, const tdm_qmat *W, float *C,
               int64_t ldc, const tdm_epilogue *ep);
bool tdm_qgemm_impl_run(tdm_qgemm_impl impl, tdm_pool *pool, int64_t M, const float *A, int64_t lda,
                        const tdm_qmat *W, float *C, int64_t ldc, const tdm_epilogue *ep);

/* The per-row activation quantiser: q[0 .. kp(K)) (zero padded), scale, zero point. */
void tdm_qgemm_quantize_row(const float *a, int64_t K, uint8_t *q, float *scale, int32_t *zp);

#endif

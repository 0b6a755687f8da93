/*
 * GEMM throughput on the shapes that dominate the models we run: the BERT
 * (MiniLM) projections and FFN at batch 1 x seq 128, a small-M and an M = 1
 * case, two convolution-like im2col products, a tall one, and the attention
 * score/context products (which are B^T and tiny). Prints GFLOP/s and the
 * share of one core's fp32 peak (227 GFLOP/s on the Zen 5 this was tuned on;
 * override with --peak) at 1 and 2 threads.
 *
 *   bench_gemm [--impl auto|portable|avx2|avx512|reference] [--peak GFLOPS]
 *              [--min-ms MS]
 *
 * Built with -DTDM_WITH_OPENBLAS (and linked with -lopenblas) it also times
 * cblas_sgemm on the same shapes; the default build does not need OpenBLAS.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/pool.h"
#include "engine/kernels/gemm.h"

#ifdef TDM_WITH_OPENBLAS
#include <cblas.h>
void openblas_set_num_threads(int num_threads);
#endif

typedef struct shape {
    int64_t M, N, K;
    bool tb;
    const char *what;
} shape;

static const shape k_shapes[] = {
    {128, 384, 384, false, "bert qkv/out proj"},
    {128, 1536, 384, false, "bert ffn1"},
    {128, 384, 1536, false, "bert ffn2"},
    {16, 384, 384, false, "small M"},
    {1, 1536, 384, false, "gemv"},
    {32, 784, 288, false, "conv-like"},
    {64, 196, 576, false, "conv-like"},
    {4096, 384, 384, false, "tall"},
    {128, 128, 32, true, "attn scores (B^T)"},
    {128, 32, 128, false, "attn context"},
    {128, 384, 384, true, "proj with B^T"},
};

static double time_one(tdm_gemm_impl impl, tdm_pool *pool, const shape *s, const float *A,
                       const float *B, float *C, double min_ms, int use_blas)
{
    int64_t lda = s->K, ldb = s->tb ? s->K : s->N;
    double best = 1e30;
    double total = 0;
    int reps = 0;
    while (total < min_ms * 1e6 || reps < 5) {
        uint64_t t0 = tdm_now_ns();
#ifdef TDM_WITH_OPENBLAS
        if (use_blas)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, s->tb ? CblasTrans : CblasNoTrans, (int)s->M,
                        (int)s->N, (int)s->K, 1.f, A, (int)lda, B, (int)ldb, 0.f, C, (int)s->N);
        else
#else
        (void)use_blas;
#endif
            tdm_sgemm_impl(impl, pool, false, s->tb, s->M, s->N, s->K, 1.f, A, lda, B, ldb, 0.f, C,
                           s->N, NULL);
        double dt = (double)(tdm_now_ns() - t0);
        if (dt < best)
            best = dt;
        total += dt;
        reps++;
    }
    return 2.0 * (double)s->M * (double)s->N * (double)s->K / best; /* GFLOP/s */
}

int main(int argc, char **argv)
{
    tdm_gemm_impl impl = TDM_GEMM_AUTO;
    double peak = 227.0, min_ms = 200.0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--impl") == 0 && i + 1 < argc) {
            const char *v = argv[++i];
            impl = strcmp(v, "portable") == 0    ? TDM_GEMM_PORTABLE
                   : strcmp(v, "avx2") == 0      ? TDM_GEMM_AVX2
                   : strcmp(v, "avx512") == 0    ? TDM_GEMM_AVX512
                   : strcmp(v, "neon") == 0      ? TDM_GEMM_NEON
                   : strcmp(v, "reference") == 0 ? TDM_GEMM_REFERENCE
                                                 : TDM_GEMM_AUTO;
        } else if (strcmp(argv[i], "--peak") == 0 && i + 1 < argc) {
            peak = atof(argv[++i]);
        } else if (strcmp(argv[i], "--min-ms") == 0 && i + 1 < argc) {
            min_ms = atof(argv[++i]);
        } else {
            fprintf(stderr, "usage: bench_gemm [--impl NAME] [--peak GFLOPS] [--min-ms MS]\n");
            return 2;
        }
    }
    if (!tdm_gemm_impl_available(impl)) {
        fprintf(stderr, "bench_gemm: implementation not available on this machine\n");
        return 1;
    }
    tdm_pool *pools[2] = {NULL, NULL};
    if (tdm_pool_create(2, &pools[1], NULL) != TDM_OK) {
        fprintf(stderr, "bench_gemm: cannot create a thread pool\n");
        return 1;
    }
    printf("%-26s %5s %5s %5s %3s | %8s %6s | %8s %6s", "shape (M,N,K)", "M", "N", "K", "B^T",
           "1t GF/s", "%peak", "2t GF/s", "%peak");
#ifdef TDM_WITH_OPENBLAS
    printf(" | %8s %8s", "blas 1t", "blas 2t");
#endif
    printf("\n");
    for (size_t s = 0; s < sizeof k_shapes / sizeof k_shapes[0]; s++) {
        const shape *sh = &k_shapes[s];
        size_t na = (size_t)(sh->M * sh->K), nb = (size_t)(sh->K * sh->N);
        size_t nc = (size_t)(sh->M * sh->N);
        float *A = tdm_aligned_alloc(na * sizeof(float));
        float *B = tdm_aligned_alloc(nb * sizeof(float));
        float *C = tdm_aligned_alloc(nc * sizeof(float));
        if (A == NULL || B == NULL || C == NULL) {
            fprintf(stderr, "bench_gemm: out of memory\n");
            return 1;
        }
        for (size_t i = 0; i < na; i++)
            A[i] = (float)((i * 7) % 13) / 13.f - 0.5f;
        for (size_t i = 0; i < nb; i++)
            B[i] = (float)((i * 5) % 11) / 11.f - 0.5f;
        double g1 = time_one(impl, pools[0], sh, A, B, C, min_ms, 0);
        double g2 = time_one(impl, pools[1], sh, A, B, C, min_ms, 0);
        printf("%-26s %5lld %5lld %5lld %3s | %8.1f %5.0f%% | %8.1f %5.0f%%", sh->what,
               (long long)sh->M, (long long)sh->N, (long long)sh->K, sh->tb ? "yes" : "no", g1,
               100.0 * g1 / peak, g2, 100.0 * g2 / peak);
#ifdef TDM_WITH_OPENBLAS
        openblas_set_num_threads(1);
        double b1 = time_one(impl, NULL, sh, A, B, C, min_ms, 1);
        openblas_set_num_threads(2);
        double b2 = time_one(impl, NULL, sh, A, B, C, min_ms, 1);
        printf(" | %8.1f %8.1f", b1, b2);
#endif
        printf("\n");
        fflush(stdout);
        tdm_aligned_free(A);
        tdm_aligned_free(B);
        tdm_aligned_free(C);
    }
    tdm_pool_free(pools[1]);
    return 0;
}

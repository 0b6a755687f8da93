/*
 * GEMM entry point and the portable reference kernel.
 *
 * The portable path is a plain blocked triple loop; it is the correctness
 * reference for the SIMD kernels and what runs where no SIMD path exists.
 */
#include "engine/kernels/gemm.h"

#include <math.h>
#include <string.h>

static float act1(float v, tdm_act act, float alpha, float beta)
{
    switch (act) {
    case TDM_ACT_NONE: return v;
    case TDM_ACT_RELU: return v > 0.f ? v : 0.f;
    case TDM_ACT_LEAKY_RELU: return v >= 0.f ? v : v * alpha;
    case TDM_ACT_CLIP: return v < alpha ? alpha : (v > beta ? beta : v);
    case TDM_ACT_SIGMOID: return 1.f / (1.f + expf(-v));
    case TDM_ACT_TANH: return tanhf(v);
    case TDM_ACT_GELU: return 0.5f * v * (1.f + erff(v * 0.70710678118654752f));
    case TDM_ACT_HARD_SIGMOID: {
        float y = alpha * v + beta;
        return y < 0.f ? 0.f : (y > 1.f ? 1.f : y);
    }
    case TDM_ACT_HARD_SWISH: {
        float y = v / 6.f + 0.5f;
        return v * (y < 0.f ? 0.f : (y > 1.f ? 1.f : y));
    }
    }
    return v;
}

void tdm_act_apply(float *x, int64_t n, tdm_act act, float alpha, float beta)
{
    if (act == TDM_ACT_NONE)
        return;
    for (int64_t i = 0; i < n; i++)
        x[i] = act1(x[i], act, alpha, beta);
}

bool tdm_act_from_name(const char *name, tdm_act *act)
{
    static const struct {
        const char *name;
        tdm_act act;
    } k[] = {{"", TDM_ACT_NONE},           {"Relu", TDM_ACT_RELU},
             {"LeakyRelu", TDM_ACT_LEAKY_RELU}, {"Clip", TDM_ACT_CLIP},
             {"Sigmoid", TDM_ACT_SIGMOID}, {"Tanh", TDM_ACT_TANH},
             {"Gelu", TDM_ACT_GELU},       {"HardSigmoid", TDM_ACT_HARD_SIGMOID},
             {"HardSwish", TDM_ACT_HARD_SWISH}};
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
        if (strcmp(name, k[i].name) == 0) {
            *act = k[i].act;
            return true;
        }
    return false;
}

typedef struct gemm_job {
    bool ta, tb;
    int64_t M, N, K;
    float alpha, beta;
    const float *A, *B;
    int64_t lda, ldb, ldc;
    float *C;
    const tdm_epilogue *ep;
} gemm_job;

static void gemm_rows(void *arg, int64_t m0, int64_t m1, int worker)
{
    const gemm_job *j = arg;
    (void)worker;
    for (int64_t m = m0; m < m1; m++) {
        float *c = j->C + m * j->ldc;
        if (j->beta == 0.f)
            memset(c, 0, sizeof *c * (size_t)j->N);
        else if (j->beta != 1.f)
            for (int64_t n = 0; n < j->N; n++)
                c[n] *= j->beta;
        for (int64_t k = 0; k < j->K; k++) {
            float a = j->alpha * (j->ta ? j->A[k * j->lda + m] : j->A[m * j->lda + k]);
            if (!j->tb) {
                const float *b = j->B + k * j->ldb;
                for (int64_t n = 0; n < j->N; n++)
                    c[n] += a * b[n];
            } else {
                for (int64_t n = 0; n < j->N; n++)
                    c[n] += a * j->B[n * j->ldb + k];
            }
        }
        const tdm_epilogue *ep = j->ep;
        if (ep != NULL) {
            for (int64_t n = 0; n < j->N; n++) {
                float v = c[n];
                if (ep->bias_col)
                    v += ep->bias_col[n];
                if (ep->bias_row)
                    v += ep->bias_row[m];
                c[n] = act1(v, ep->act, ep->alpha, ep->beta);
            }
        }
    }
}

void tdm_sgemm(tdm_pool *pool, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
               float alpha, const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
               float *C, int64_t ldc, const tdm_epilogue *ep)
{
    if (M <= 0 || N <= 0)
        return;
    gemm_job j = {trans_a, trans_b, M, N, K, alpha, beta, A, B, lda, ldb, ldc, C, ep};
    int64_t grain = (N * K) > 0 ? (65536 / (N * K > 0 ? N * K : 1)) + 1 : M;
    tdm_pool_for(pool, M, grain, gemm_rows, &j);
}

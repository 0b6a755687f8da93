/*
 * GEMM driver: dispatch, blocking, threading, and the portable kernels.
 *
 * tdm_sgemm picks a kernel family at run time (AVX-512, AVX2+FMA, NEON or
 * portable C; see gemm_internal.h for what a family provides) and drives it:
 *
 *   - Threads: C is cut into a grid of mt x nt tasks, one per thread, the
 *     grid chosen to minimise the largest task counted in micro-tile rows and
 *     vector columns; ties prefer cutting N, so threads share A (small) and
 *     each stream their own part of B (the weights). Small M therefore splits
 *     N, and M = 128, N = 384 splits into two 128 x 192 halves.
 *   - Blocking: inside a task, rows go in blocks of mc (an A block of about
 *     512 KiB, held in L2 while the column panels stream past it) and depth
 *     in blocks of kc <= 768; the first k block applies beta, later ones
 *     accumulate, the last one adds the biases and the activation, so the
 *     epilogue costs no extra pass over C.
 *   - Operands are used in place; only B^T is transposed, one kc x nr panel
 *     at a time, into a per-task buffer allocated once per call; the first
 *     tile of each panel prefetches the next panel of B (cold weights).
 *   - One output row (M == 1) or one output column with N == 1 is a matrix-
 *     vector product with its own kernel (more accumulators, no tiles).
 *
 * The plain triple loop is kept as TDM_GEMM_REFERENCE: it is the definition
 * the tests compare every kernel family against, and the fallback if the
 * workspace allocation fails (tdm_sgemm has no way to report an error).
 */
#include "engine/kernels/gemm.h"

#include <math.h>
#include <string.h>

#include "base/alloc.h"
#include "base/cpu.h"
#include "engine/kernels/gemm_internal.h"

/* ---- activations ----------------------------------------------------------------- */

float tdm_act_scalar(float v, tdm_act act, float alpha, float beta)
{
    switch (act) {
    case TDM_ACT_NONE: return v;
    case TDM_ACT_RELU: return v > 0.f ? v : 0.f;
    case TDM_ACT_LEAKY_RELU: return v >= 0.f ? v : v * alpha;
    case TDM_ACT_CLIP: return v < alpha ? alpha : (v > beta ? beta : v);
    case TDM_ACT_SIGMOID: return 1.f / (1.f + expf(-v));
    case TDM_ACT_TANH: return tanhf(v);
    /* erfc, not 1 + erf (no cancellation for negative v), in double so that
     * rounding -v/sqrt(2) does not cost relative accuracy in the tail */
    case TDM_ACT_GELU: return (float)(0.5 * v * erfc(-(double)v * 0.70710678118654752));
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

static void act_portable(float *x, int64_t n, tdm_act act, float alpha, float beta)
{
    if (act == TDM_ACT_NONE)
        return;
    for (int64_t i = 0; i < n; i++)
        x[i] = tdm_act_scalar(x[i], act, alpha, beta);
}

bool tdm_act_from_name(const char *name, tdm_act *act)
{
    static const struct {
        const char *name;
        tdm_act act;
    } k[] = {{"", TDM_ACT_NONE},
             {"Relu", TDM_ACT_RELU},
             {"LeakyRelu", TDM_ACT_LEAKY_RELU},
             {"Clip", TDM_ACT_CLIP},
             {"Sigmoid", TDM_ACT_SIGMOID},
             {"Tanh", TDM_ACT_TANH},
             {"Gelu", TDM_ACT_GELU},
             {"HardSigmoid", TDM_ACT_HARD_SIGMOID},
             {"HardSwish", TDM_ACT_HARD_SWISH}};
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
        if (strcmp(name, k[i].name) == 0) {
            *act = k[i].act;
            return true;
        }
    return false;
}

/* ---- portable kernel family ---------------------------------------------------------- */

#define P_MR 4
#define P_NR 16

static void panel_portable(const tdm_gemm_panel *p)
{
    const int64_t n = p->n, k = p->k, ldb = p->ldb;
    for (int64_t i0 = 0; i0 < p->m; i0 += P_MR) {
        int mr = p->m - i0 < P_MR ? (int)(p->m - i0) : P_MR;
        float acc[P_MR][P_NR];
        memset(acc, 0, sizeof acc);
        for (int64_t q = 0; q < k; q++) {
            const float *b = p->b + q * ldb;
            for (int i = 0; i < mr; i++) {
                float a = p->a[(i0 + i) * p->a_rs + q * p->a_cs];
                if (n == P_NR) {
                    for (int j = 0; j < P_NR; j++)
                        acc[i][j] += a * b[j];
                } else {
                    for (int64_t j = 0; j < n; j++)
                        acc[i][j] += a * b[j];
                }
            }
        }
        for (int i = 0; i < mr; i++) {
            float *c = p->c + (i0 + i) * p->ldc;
            for (int64_t j = 0; j < n; j++) {
                float v = acc[i][j] * p->alpha;
                if (p->mode == TDM_GEMM_ACCUM)
                    v += c[j];
                else if (p->beta != 0.f)
                    v += p->beta * c[j];
                if (p->last) {
                    if (p->bias_col != NULL)
                        v += p->bias_col[j];
                    if (p->bias_row != NULL)
                        v += p->bias_row[i0 + i];
                    if (p->res != NULL)
                        v += p->res[(i0 + i) * p->ldr + j];
                    v = tdm_act_scalar(v, p->act, p->act_alpha, p->act_beta);
                }
                c[j] = v;
            }
        }
    }
}

static void pack_bt_portable(const float *b, int64_t ldb, int64_t n, int64_t k, float *dst)
{
    for (int64_t j = 0; j < n; j++)
        for (int64_t q = 0; q < k; q++)
            dst[q * P_NR + j] = b[j * ldb + q];
}

static const tdm_gemm_isa k_isa_portable = {
    .name = "portable",
    .mr = P_MR,
    .nr = P_NR,
    .vw = 4,
    .panel = panel_portable,
    .pack_bt = pack_bt_portable,
    .gemv = NULL,
    .act = act_portable,
    .has_res = true,
};

/* ---- reference ------------------------------------------------------------------------- */

static void sgemm_reference(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha,
                            const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
                            float *C, int64_t ldc, const tdm_epilogue *ep, const float *R,
                            int64_t ldr)
{
    if (R == C) { /* C += R is what beta + 1 does */
        beta += 1.f;
        R = NULL;
    }
    for (int64_t m = 0; m < M; m++) {
        float *c = C + m * ldc;
        if (beta == 0.f)
            memset(c, 0, sizeof *c * (size_t)N);
        else if (beta != 1.f)
            for (int64_t n = 0; n < N; n++)
                c[n] *= beta;
        for (int64_t k = 0; k < K; k++) {
            float a = alpha * (ta ? A[k * lda + m] : A[m * lda + k]);
            if (!tb) {
                const float *b = B + k * ldb;
                for (int64_t n = 0; n < N; n++)
                    c[n] += a * b[n];
            } else {
                for (int64_t n = 0; n < N; n++)
                    c[n] += a * B[n * ldb + k];
            }
        }
        if (ep != NULL || R != NULL) {
            for (int64_t n = 0; n < N; n++) {
                float v = c[n];
                if (ep != NULL && ep->bias_col)
                    v += ep->bias_col[n];
                if (ep != NULL && ep->bias_row)
                    v += ep->bias_row[m];
                if (R != NULL)
                    v += R[m * ldr + n];
                c[n] = ep != NULL ? tdm_act_scalar(v, ep->act, ep->alpha, ep->beta) : v;
            }
        }
    }
}

/* ---- driver ---------------------------------------------------------------------------- */

typedef struct gemm_job {
    const tdm_gemm_isa *isa;
    bool ta, tb;
    int64_t M, N, K;
    float alpha, beta;
    const float *A, *B;
    int64_t lda, ldb, ldc;
    float *C;
    tdm_epilogue ep;
    const float *res; /* residual, or NULL */
    int64_t ldr;
    int64_t kc, mc;
    int mt, nt; /* task grid */
    float *ws;  /* B^T panels, ws_stride floats per worker */
    int64_t ws_stride;
} gemm_job;

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}
static int64_t ceil_div(int64_t a, int64_t b)
{
    return (a + b - 1) / b;
}

static void panel_init(const gemm_job *j, tdm_gemm_panel *p)
{
    memset(p, 0, sizeof *p);
    p->a_rs = j->ta ? 1 : j->lda;
    p->a_cs = j->ta ? j->lda : 1;
    p->ldc = j->ldc;
    p->ldr = j->ldr;
    p->alpha = j->alpha;
    p->beta = j->beta;
    p->act = j->ep.act;
    p->act_alpha = j->ep.alpha;
    p->act_beta = j->ep.beta;
}

/* C[m0:m1, n0:n1] in full: the task of one thread. */
static void gemm_block(const gemm_job *j, int64_t m0, int64_t m1, int64_t n0, int64_t n1, float *ws)
{
    const tdm_gemm_isa *isa = j->isa;
    tdm_gemm_panel p;
    panel_init(j, &p);
    for (int64_t ic = m0; ic < m1; ic += j->mc) {
        int64_t mlen = min64(j->mc, m1 - ic);
        int64_t pc = 0;
        do {
            int64_t klen = min64(j->kc, j->K - pc);
            p.m = mlen;
            p.k = klen;
            p.mode = pc == 0 ? TDM_GEMM_STORE : TDM_GEMM_ACCUM;
            p.last = pc + klen >= j->K;
            p.a = j->A + ic * p.a_rs + pc * p.a_cs;
            p.bias_row = j->ep.bias_row != NULL ? j->ep.bias_row + ic : NULL;
            const float *res_row = j->res != NULL ? j->res + ic * j->ldr : NULL;
            for (int64_t jc = n0; jc < n1; jc += isa->nr) {
                int64_t nlen = min64(isa->nr, n1 - jc);
                if (j->tb) {
                    isa->pack_bt(j->B + jc * j->ldb + pc, j->ldb, nlen, klen, ws);
                    p.b = ws;
                    p.ldb = isa->nr;
                    p.b_next = NULL;
                } else {
                    p.b = j->B + pc * j->ldb + jc;
                    p.ldb = j->ldb;
                    /* the next panel, or the first one of the next depth block */
                    if (jc + isa->nr < n1)
                        p.b_next = p.b + isa->nr;
                    else if (pc + klen < j->K)
                        p.b_next = j->B + (pc + klen) * j->ldb + n0;
                    else
                        p.b_next = NULL;
                    p.b_next_ld = j->ldb;
                }
                p.n = nlen;
                p.c = j->C + ic * j->ldc + jc;
                p.bias_col = j->ep.bias_col != NULL ? j->ep.bias_col + jc : NULL;
                p.res = res_row != NULL ? res_row + jc : NULL;
                isa->panel(&p);
            }
            pc += klen;
        } while (pc < j->K);
    }
}

static void task_range(int64_t units, int parts, int idx, int64_t unit, int64_t limit, int64_t *b,
                       int64_t *e)
{
    *b = min64(units * idx / parts * unit, limit);
    *e = min64(units * (idx + 1) / parts * unit, limit);
}

/* B^T buffers are per task, not per worker: a pool may have more workers than tasks. */
static void gemm_task(void *arg, int64_t t0, int64_t t1, int worker)
{
    const gemm_job *j = arg;
    (void)worker;
    for (int64_t t = t0; t < t1; t++) {
        int ti = (int)(t / j->nt), tj = (int)(t % j->nt);
        int64_t m0, m1, n0, n1;
        task_range(ceil_div(j->M, j->isa->mr), j->mt, ti, j->isa->mr, j->M, &m0, &m1);
        task_range(ceil_div(j->N, j->isa->vw), j->nt, tj, j->isa->vw, j->N, &n0, &n1);
        if (m0 < m1 && n0 < n1)
            gemm_block(j, m0, m1, n0, n1, j->ws != NULL ? j->ws + t * j->ws_stride : NULL);
    }
}

/* Task grid minimising the largest task; fewer tasks only when strictly better. */
static void plan_grid(const tdm_gemm_isa *isa, int64_t M, int64_t N, int threads, int *mt, int *nt)
{
    int64_t mu = ceil_div(M, isa->mr), nu = ceil_div(N, isa->vw);
    int64_t best = INT64_MAX;
    *mt = *nt = 1;
    for (int t = threads; t >= 1; t--) {
        for (int a = 1; a <= t; a++) {
            if (t % a != 0 || a > mu || t / a > nu)
                continue;
            int b = t / a;
            int64_t cost = ceil_div(mu, a) * isa->mr * ceil_div(nu, b) * isa->vw;
            if (cost < best || (cost == best && t == *mt * *nt && b > *nt)) {
                best = cost;
                *mt = a;
                *nt = b;
            }
        }
    }
}

typedef struct gemv_job {
    const tdm_gemm_isa *isa;
    tdm_gemm_panel p;
    int parts;
} gemv_job;

static void gemv_task(void *arg, int64_t t0, int64_t t1, int worker)
{
    const gemv_job *g = arg;
    (void)worker;
    int64_t units = ceil_div(g->p.n, g->isa->vw);
    for (int64_t t = t0; t < t1; t++) {
        int64_t n0, n1;
        task_range(units, g->parts, (int)t, g->isa->vw, g->p.n, &n0, &n1);
        if (n0 >= n1)
            continue;
        tdm_gemm_panel p = g->p;
        p.n = n1 - n0;
        p.c += n0;
        if (p.bias_col != NULL)
            p.bias_col += n0;
        if (p.res != NULL)
            p.res += n0;
        p.b += p.bt ? n0 * p.ldb : n0;
        g->isa->gemv(&p);
    }
}

/* Threads worth using for a product of this many flops (a pool wake-up costs ~1-2 us). */
static int useful_threads(tdm_pool *pool, int64_t M, int64_t N, int64_t K)
{
    int t = tdm_pool_size(pool);
    double flops = 2.0 * (double)M * (double)N * (double)(K > 0 ? K : 1);
    int64_t by_work = (int64_t)(flops / 131072.0);
    if (by_work < t)
        t = by_work < 1 ? 1 : (int)by_work;
    return t;
}

/*
 * Matrix-vector cases. M == 1: c = op(A) row times op(B). N == 1 with a
 * contiguous output column: the transposed problem c^T = op(B)^T op(A)^T is
 * one row. Returns false when the shape is not such a case.
 */
static bool try_gemv(const tdm_gemm_isa *isa, tdm_pool *pool, const gemm_job *j)
{
    if (isa->gemv == NULL)
        return false;
    gemv_job g;
    g.isa = isa;
    tdm_gemm_panel *p = &g.p;
    panel_init(j, p);
    p->m = 1;
    p->k = j->K;
    p->mode = TDM_GEMM_STORE;
    p->last = true;
    if (j->M == 1) {
        p->n = j->N;
        p->a = j->A;
        p->a_cs = j->ta ? j->lda : 1;
        p->b = j->B;
        p->ldb = j->ldb;
        p->bt = j->tb;
        p->c = j->C;
        p->bias_col = j->ep.bias_col;
        p->bias_row = j->ep.bias_row;
        p->res = j->res;
        if (p->bt && p->a_cs != 1)
            return false;
    } else if (j->N == 1 && j->ldc == 1) {
        /* c[m] = sum_p A(m, p) B(p, 0): the "vector" is B's column. */
        p->n = j->M;
        p->a = j->B;
        p->a_cs = j->tb ? 1 : j->ldb;
        p->b = j->A;
        p->ldb = j->lda;
        p->bt = !j->ta;
        p->c = j->C;
        p->bias_col = j->ep.bias_row;
        p->bias_row = j->ep.bias_col;
        p->res = j->res; /* a column of R, contiguous only when ldr == 1 */
        if ((p->bt && p->a_cs != 1) || (j->res != NULL && j->ldr != 1))
            return false;
    } else {
        return false;
    }
    g.parts = useful_threads(pool, 1, p->n, p->k);
    if (g.parts > ceil_div(p->n, isa->vw))
        g.parts = (int)ceil_div(p->n, isa->vw);
    tdm_pool_for(g.parts > 1 ? pool : NULL, g.parts, 1, gemv_task, &g);
    return true;
}

static void scale_and_epilogue(const gemm_job *j)
{
    /* K == 0 or alpha == 0: C = beta*C, then the epilogue; A and B are not read. */
    for (int64_t m = 0; m < j->M; m++) {
        float *c = j->C + m * j->ldc;
        for (int64_t n = 0; n < j->N; n++) {
            float v = j->beta == 0.f ? 0.f : j->beta * c[n];
            if (j->ep.bias_col != NULL)
                v += j->ep.bias_col[n];
            if (j->ep.bias_row != NULL)
                v += j->ep.bias_row[m];
            if (j->res != NULL)
                v += j->res[m * j->ldr + n];
            c[n] = v;
        }
        j->isa->act(c, j->N, j->ep.act, j->ep.alpha, j->ep.beta);
    }
}

static const tdm_gemm_isa *isa_for(tdm_gemm_impl impl)
{
    const tdm_cpu *cpu = tdm_cpu_get();
    (void)cpu; /* unused on targets without SIMD kernels */
    switch (impl) {
    case TDM_GEMM_AUTO:
#if defined(TDM_X86)
        if (cpu->avx512)
            return &tdm_gemm_isa_avx512;
        if (cpu->avx2_fma)
            return &tdm_gemm_isa_avx2;
#endif
#if defined(__aarch64__)
        if (cpu->neon)
            return &tdm_gemm_isa_neon;
#endif
        return &k_isa_portable;
    case TDM_GEMM_REFERENCE:
    case TDM_GEMM_PORTABLE: return &k_isa_portable;
    case TDM_GEMM_AVX2:
#if defined(TDM_X86)
        return cpu->avx2_fma ? &tdm_gemm_isa_avx2 : NULL;
#else
        return NULL;
#endif
    case TDM_GEMM_AVX512:
#if defined(TDM_X86)
        return cpu->avx512 ? &tdm_gemm_isa_avx512 : NULL;
#else
        return NULL;
#endif
    case TDM_GEMM_NEON:
#if defined(__aarch64__)
        return cpu->neon ? &tdm_gemm_isa_neon : NULL;
#else
        return NULL;
#endif
    }
    return NULL;
}

bool tdm_gemm_impl_available(tdm_gemm_impl impl)
{
    return isa_for(impl) != NULL;
}

static void sgemm_run(const tdm_gemm_isa *isa, tdm_pool *pool, bool ta, bool tb, int64_t M,
                      int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                      const float *B, int64_t ldb, float beta, float *C, int64_t ldc,
                      const tdm_epilogue *ep, const float *R, int64_t ldr, float *ws)
{
    if (M <= 0 || N <= 0)
        return;
    if (R == C) { /* C += R is what beta + 1 does */
        beta += 1.f;
        R = NULL;
    } else if (R != NULL && !isa->has_res) {
        /* Fold R into C (C = beta C + R, C not read when beta == 0), then accumulate. */
        for (int64_t m = 0; m < M; m++) {
            float *c = C + m * ldc;
            const float *r = R + m * ldr;
            if (beta == 0.f)
                memcpy(c, r, sizeof *c * (size_t)N);
            else
                for (int64_t n = 0; n < N; n++)
                    c[n] = beta * c[n] + r[n];
        }
        beta = 1.f;
        R = NULL;
    }
    gemm_job j;
    memset(&j, 0, sizeof j);
    j.isa = isa;
    j.ta = ta;
    j.tb = tb;
    j.M = M;
    j.N = N;
    j.K = K < 0 ? 0 : K;
    j.alpha = alpha;
    j.beta = beta;
    j.A = A;
    j.B = B;
    j.lda = lda;
    j.ldb = ldb;
    j.C = C;
    j.ldc = ldc;
    if (ep != NULL)
        j.ep = *ep;
    j.res = R;
    j.ldr = ldr;
    if (j.K == 0 || alpha == 0.f) {
        scale_and_epilogue(&j);
        return;
    }
    if ((M == 1 || N == 1) && try_gemv(isa, ws == NULL ? pool : NULL, &j))
        return;

    /* Depth blocks of at most KC_MAX, equal in size; row blocks of ~512 KiB of A. */
    int64_t nk = ceil_div(j.K, 512);
    j.kc = j.K <= TDM_GEMM_KC_MAX ? j.K : ceil_div(j.K, nk);
    j.mc = (131072 / j.kc) / isa->mr * isa->mr;
    if (j.mc < isa->mr)
        j.mc = isa->mr;
    int threads = ws == NULL ? useful_threads(pool, M, N, j.K) : 1;
    /* Up to four tasks per thread when each is still >= ~2 MFLOP: a thread
     * that is descheduled (a busy machine) then delays only a small task,
     * which the others take over, and splitting columns finer costs nothing
     * here since every task reads A in place. */
    int target = threads;
    double flops = 2.0 * (double)M * (double)N * (double)j.K;
    if (threads > 1)
        target = flops >= threads * 4 * 2e6   ? threads * 4
                 : flops >= threads * 2 * 2e6 ? threads * 2
                                              : threads;
    plan_grid(isa, M, N, target, &j.mt, &j.nt);
    int tasks = j.mt * j.nt;
    void *own = NULL;
    if (tb) {
        j.ws_stride = (j.kc * isa->nr + 15) / 16 * 16;
        if (ws == NULL) {
            own = tdm_aligned_alloc(sizeof(float) * (size_t)(j.ws_stride * tasks));
            if (own == NULL) {
                sgemm_reference(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ep, R, ldr);
                return;
            }
            ws = own;
        }
        j.ws = ws;
    }
    tdm_pool_for(tasks > 1 ? pool : NULL, tasks, 1, gemm_task, &j);
    tdm_aligned_free(own);
}

bool tdm_sgemm_res(tdm_gemm_impl impl, tdm_pool *pool, bool trans_a, bool trans_b, int64_t M,
                   int64_t N, int64_t K, float alpha, const float *A, int64_t lda, const float *B,
                   int64_t ldb, float beta, float *C, int64_t ldc, const tdm_epilogue *ep,
                   const float *R, int64_t ldr)
{
    const tdm_gemm_isa *isa = isa_for(impl);
    if (isa == NULL)
        return false;
    if (impl == TDM_GEMM_REFERENCE) {
        if (M > 0 && N > 0)
            sgemm_reference(trans_a, trans_b, M, N, K < 0 ? 0 : K, alpha, A, lda, B, ldb, beta, C,
                            ldc, ep, R, ldr);
        return true;
    }
    sgemm_run(isa, pool, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ep, R, ldr,
              NULL);
    return true;
}

bool tdm_sgemm_impl(tdm_gemm_impl impl, tdm_pool *pool, bool trans_a, bool trans_b, int64_t M,
                    int64_t N, int64_t K, float alpha, const float *A, int64_t lda, const float *B,
                    int64_t ldb, float beta, float *C, int64_t ldc, const tdm_epilogue *ep)
{
    return tdm_sgemm_res(impl, pool, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc,
                         ep, NULL, 0);
}

void tdm_sgemm(tdm_pool *pool, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
               float alpha, const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
               float *C, int64_t ldc, const tdm_epilogue *ep)
{
    sgemm_run(isa_for(TDM_GEMM_AUTO), pool, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta,
              C, ldc, ep, NULL, 0, NULL);
}

void tdm_sgemm_st(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                  const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
                  int64_t ldc, const tdm_epilogue *ep, float *ws)
{
    sgemm_run(isa_for(TDM_GEMM_AUTO), NULL, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta,
              C, ldc, ep, NULL, 0, ws);
}

bool tdm_act_apply_impl(tdm_gemm_impl impl, float *x, int64_t n, tdm_act act, float alpha,
                        float beta)
{
    const tdm_gemm_isa *isa = isa_for(impl);
    if (isa == NULL)
        return false;
    if (n > 0)
        (impl == TDM_GEMM_REFERENCE ? act_portable : isa->act)(x, n, act, alpha, beta);
    return true;
}

void tdm_act_apply(float *x, int64_t n, tdm_act act, float alpha, float beta)
{
    if (n > 0 && act != TDM_ACT_NONE)
        isa_for(TDM_GEMM_AUTO)->act(x, n, act, alpha, beta);
}

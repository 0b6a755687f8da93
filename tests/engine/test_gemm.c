/*
 * GEMM and activation kernels against a naive double-precision reference.
 *
 * Every kernel family this machine can run (reference, portable, AVX2,
 * AVX-512; NEON on aarch64) is selected explicitly with tdm_sgemm_impl, so
 * one process covers all of them regardless of the cached CPU level. Shapes
 * are drawn from a fixed-seed generator and biased toward the edges: row and
 * column tails of every size, K = 0 and K large enough to be cut into depth
 * blocks, M large enough for several row blocks, leading dimensions larger
 * than the rows, all four transpose combinations, alpha/beta, biases and
 * every activation, with 1, 2 and 3 threads; and the residual of
 * tdm_sgemm_res (separate, or C itself) on the same shapes.
 *
 * The tolerance is relative to the magnitude of the terms summed
 * (|alpha| sum |a||b| + |beta c| + |bias|), which is what float rounding
 * scales with, so a wrong element fails while honest rounding passes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/pool.h"
#include "engine/kernels/gemm.h"

static const tdm_gemm_impl k_impls[] = {TDM_GEMM_REFERENCE, TDM_GEMM_PORTABLE, TDM_GEMM_AVX2,
                                        TDM_GEMM_AVX512,    TDM_GEMM_NEON,     TDM_GEMM_AUTO};
static const char *const k_impl_names[] = {"reference", "portable", "avx2",
                                           "avx512",    "neon",     "auto"};
#define N_IMPLS ((int)(sizeof k_impls / sizeof k_impls[0]))

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (uint32_t)(g_rng >> 16);
}

static float rndf(void)
{
    return (float)((rnd() % 20001) / 10000.0 - 1.0);
}

static int64_t pick(const int64_t *v, int n)
{
    return v[rnd() % (uint32_t)n];
}

static double act_ref(double v, tdm_act act, double a, double b)
{
    switch (act) {
    case TDM_ACT_NONE: return v;
    case TDM_ACT_RELU: return v > 0 ? v : 0;
    case TDM_ACT_LEAKY_RELU: return v >= 0 ? v : v * a;
    case TDM_ACT_CLIP: return v < a ? a : (v > b ? b : v);
    case TDM_ACT_SIGMOID: return 1.0 / (1.0 + exp(-v));
    case TDM_ACT_TANH: return tanh(v);
    case TDM_ACT_GELU: return 0.5 * v * erfc(-v / sqrt(2.0));
    case TDM_ACT_HARD_SIGMOID: {
        double y = a * v + b;
        return y < 0 ? 0 : (y > 1 ? 1 : y);
    }
    case TDM_ACT_HARD_SWISH: {
        double y = v / 6.0 + 0.5;
        return v * (y < 0 ? 0 : (y > 1 ? 1 : y));
    }
    }
    return v;
}

typedef struct gemm_case {
    bool ta, tb;
    int64_t M, N, K, lda, ldb, ldc;
    float alpha, beta;
    bool bias_col, bias_row;
    tdm_act act;
    float act_a, act_b;
} gemm_case;

/* The residual of tdm_sgemm_res: none, a separate R (ldr = N + 2), or R == C. */
enum { RES_NONE = 0, RES_SEPARATE, RES_ALIAS };

/* Runs one case on one implementation and checks every element. */
static void check_case_res(const gemm_case *gc, int res, tdm_gemm_impl impl, const char *impl_name,
                           tdm_pool *pool)
{
    int64_t M = gc->M, N = gc->N, K = gc->K;
    int64_t a_rows = gc->ta ? K : M, b_rows = gc->tb ? N : K;
    size_t a_n = (size_t)(a_rows * gc->lda + 1), b_n = (size_t)(b_rows * gc->ldb + 1);
    size_t c_n = (size_t)(M * gc->ldc + 1);
    float *A = malloc(sizeof(float) * a_n), *B = malloc(sizeof(float) * b_n);
    /* 64 guard floats after C: masked vector stores are invisible to ASan */
    float *C = malloc(sizeof(float) * (c_n + 64)), *C0 = malloc(sizeof(float) * c_n);
    float *bc = malloc(sizeof(float) * (size_t)(N + 1)),
          *br = malloc(sizeof(float) * (size_t)(M + 1));
    assert_non_null(A);
    assert_non_null(B);
    assert_non_null(C);
    assert_non_null(C0);
    assert_non_null(bc);
    assert_non_null(br);
    int64_t ldr = gc->N + 2;
    float *R = res == RES_SEPARATE ? malloc(sizeof(float) * (size_t)(M * ldr + 1)) : NULL;
    if (res == RES_SEPARATE) {
        assert_non_null(R);
        for (int64_t i = 0; i < M * ldr + 1; i++)
            R[i] = rndf();
    }
    for (size_t i = 0; i < a_n; i++)
        A[i] = rndf();
    for (size_t i = 0; i < b_n; i++)
        B[i] = rndf();
    for (size_t i = 0; i < c_n; i++)
        C0[i] = gc->beta == 0.f && res != RES_ALIAS ? NAN : rndf(); /* beta 0 must not read C */
    for (int64_t i = 0; i < N; i++)
        bc[i] = rndf();
    for (int64_t i = 0; i < M; i++)
        br[i] = rndf();
    memcpy(C, C0, sizeof(float) * c_n);
    for (size_t i = c_n; i < c_n + 64; i++)
        C[i] = 777.f;
    tdm_epilogue ep = {gc->bias_col ? bc : NULL, gc->bias_row ? br : NULL, gc->act, gc->act_a,
                       gc->act_b};
    bool use_ep = gc->bias_col || gc->bias_row || gc->act != TDM_ACT_NONE;
    if (res == RES_NONE)
        assert_true(tdm_sgemm_impl(impl, pool, gc->ta, gc->tb, M, N, K, gc->alpha, A, gc->lda, B,
                                   gc->ldb, gc->beta, C, gc->ldc, use_ep ? &ep : NULL));
    else
        assert_true(tdm_sgemm_res(impl, pool, gc->ta, gc->tb, M, N, K, gc->alpha, A, gc->lda, B,
                                  gc->ldb, gc->beta, C, gc->ldc, use_ep ? &ep : NULL,
                                  res == RES_ALIAS ? C : R, res == RES_ALIAS ? gc->ldc : ldr));
    for (int64_t m = 0; m < M; m++) {
        for (int64_t n = 0; n < N; n++) {
            double s = 0, mag = 0;
            for (int64_t k = 0; k < K; k++) {
                double a = gc->ta ? A[k * gc->lda + m] : A[m * gc->lda + k];
                double b = gc->tb ? B[n * gc->ldb + k] : B[k * gc->ldb + n];
                s += a * b;
                mag += fabs(a * b);
            }
            double v = gc->alpha * s;
            mag *= fabs(gc->alpha);
            if (gc->beta != 0.f) {
                v += gc->beta * (double)C0[m * gc->ldc + n];
                mag += fabs(gc->beta * (double)C0[m * gc->ldc + n]);
            }
            if (gc->bias_col) {
                v += bc[n];
                mag += fabs(bc[n]);
            }
            if (gc->bias_row) {
                v += br[m];
                mag += fabs(br[m]);
            }
            if (res != RES_NONE) {
                double r = res == RES_ALIAS ? C0[m * gc->ldc + n] : R[m * ldr + n];
                v += r;
                mag += fabs(r);
            }
            double want = act_ref(v, gc->act, gc->act_a, gc->act_b);
            double got = C[m * gc->ldc + n];
            double tol = 1e-6 * (1.0 + sqrt((double)K) / 4.0) * (mag + fabs(v)) + 1e-6;
            if (!(fabs(got - want) <= tol)) {
                fail_msg("%s ta=%d tb=%d M=%lld N=%lld K=%lld lda=%lld ldb=%lld ldc=%lld "
                         "alpha=%g beta=%g act=%d bias=%d%d res=%d threads=%d: C[%lld,%lld] = "
                         "%.9g, want %.9g",
                         impl_name, gc->ta, gc->tb, (long long)M, (long long)N, (long long)K,
                         (long long)gc->lda, (long long)gc->ldb, (long long)gc->ldc, gc->alpha,
                         gc->beta, gc->act, gc->bias_col, gc->bias_row, res, tdm_pool_size(pool),
                         (long long)m, (long long)n, got, want);
            }
        }
        /* Padding between rows is untouched. */
        for (int64_t n = N; n < gc->ldc && m * gc->ldc + n < (int64_t)c_n; n++) {
            float was = C0[m * gc->ldc + n], is = C[m * gc->ldc + n];
            assert_true(memcmp(&was, &is, sizeof was) == 0);
        }
    }
    for (size_t i = c_n; i < c_n + 64; i++)
        if (C[i] != 777.f)
            fail_msg("%s M=%lld N=%lld K=%lld: wrote past the end of C", impl_name, (long long)M,
                     (long long)N, (long long)K);
    free(A);
    free(B);
    free(C);
    free(C0);
    free(bc);
    free(br);
    free(R);
}

static void check_case(const gemm_case *gc, tdm_gemm_impl impl, const char *impl_name,
                       tdm_pool *pool)
{
    check_case_res(gc, RES_NONE, impl, impl_name, pool);
}

static void random_case(gemm_case *gc, int64_t max_dim)
{
    static const int64_t dims[] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  12, 13, 15, 16, 17,
                                   23, 31, 32, 33, 47, 48, 49, 63, 64, 65, 95, 96, 97, 130};
    static const float alphas[] = {1.f, 1.f, 0.5f, -2.f};
    static const float betas[] = {0.f, 0.f, 1.f, 0.25f};
    memset(gc, 0, sizeof *gc);
    do {
        gc->M = pick(dims, (int)(sizeof dims / sizeof dims[0]));
        gc->N = pick(dims, (int)(sizeof dims / sizeof dims[0]));
        gc->K = pick(dims, (int)(sizeof dims / sizeof dims[0]));
    } while (gc->M * gc->N * gc->K > max_dim * max_dim * max_dim);
    if (rnd() % 16 == 0)
        gc->K = 0;
    gc->ta = rnd() & 1;
    gc->tb = rnd() & 1;
    int64_t a_cols = gc->ta ? gc->M : gc->K, b_cols = gc->tb ? gc->K : gc->N;
    gc->lda = (a_cols > 0 ? a_cols : 1) + (rnd() % 3 == 0 ? (int64_t)(rnd() % 5) : 0);
    gc->ldb = (b_cols > 0 ? b_cols : 1) + (rnd() % 3 == 0 ? (int64_t)(rnd() % 5) : 0);
    gc->ldc = gc->N + (rnd() % 3 == 0 ? (int64_t)(rnd() % 5) : 0);
    gc->alpha = alphas[rnd() % 4];
    gc->beta = betas[rnd() % 4];
    gc->bias_col = rnd() % 3 == 0;
    gc->bias_row = rnd() % 4 == 0;
    gc->act = rnd() % 2 ? TDM_ACT_NONE : (tdm_act)(rnd() % 9);
    gc->act_a = 0.1f;
    gc->act_b = 0.6f;
    if (gc->act == TDM_ACT_CLIP) {
        gc->act_a = -0.5f;
        gc->act_b = 0.5f;
    } else if (gc->act == TDM_ACT_HARD_SIGMOID) {
        gc->act_a = 0.2f;
        gc->act_b = 0.5f;
    }
}

static void test_random_shapes(void **state)
{
    (void)state;
    tdm_pool *pools[3] = {NULL, NULL, NULL};
    assert_int_equal(tdm_pool_create(2, &pools[1], NULL), TDM_OK);
    assert_int_equal(tdm_pool_create(3, &pools[2], NULL), TDM_OK);
    int ran = 0;
    for (int i = 0; i < N_IMPLS; i++) {
        if (!tdm_gemm_impl_available(k_impls[i]))
            continue;
        for (int c = 0; c < 120; c++) {
            gemm_case gc;
            random_case(&gc, 64);
            int res = c % 4 == 1 ? RES_SEPARATE : (c % 8 == 3 ? RES_ALIAS : RES_NONE);
            check_case_res(&gc, res, k_impls[i], k_impl_names[i], pools[c % 3]);
            ran++;
        }
    }
    assert_true(ran >= 240);
    tdm_pool_free(pools[1]);
    tdm_pool_free(pools[2]);
}

/* Every transpose combination and tail on fixed edge shapes. */
static void test_edges(void **state)
{
    (void)state;
    static const int64_t ms[] = {1, 7, 8, 9, 17};
    static const int64_t ns[] = {1, 15, 16, 17, 48, 49, 100};
    static const int64_t ks[] = {0, 1, 33};
    tdm_pool *pool = NULL;
    assert_int_equal(tdm_pool_create(2, &pool, NULL), TDM_OK);
    for (int i = 0; i < N_IMPLS; i++) {
        if (!tdm_gemm_impl_available(k_impls[i]))
            continue;
        for (int t = 0; t < 4; t++)
            for (size_t a = 0; a < sizeof ms / sizeof ms[0]; a++)
                for (size_t b = 0; b < sizeof ns / sizeof ns[0]; b++)
                    for (size_t c = 0; c < sizeof ks / sizeof ks[0]; c++) {
                        gemm_case gc;
                        memset(&gc, 0, sizeof gc);
                        gc.ta = t & 1;
                        gc.tb = t >> 1;
                        gc.M = ms[a];
                        gc.N = ns[b];
                        gc.K = ks[c];
                        gc.lda = (gc.ta ? gc.M : gc.K) + 1;
                        gc.ldb = (gc.tb ? gc.K : gc.N) + 2;
                        gc.ldc = gc.N + 3;
                        gc.alpha = 1.5f;
                        gc.beta = (a + b) % 2 ? 0.5f : 0.f;
                        gc.bias_col = b % 2 == 0;
                        gc.bias_row = c == 1;
                        gc.act = (a + c) % 3 == 0 ? TDM_ACT_RELU : TDM_ACT_NONE;
                        check_case(&gc, k_impls[i], k_impl_names[i], (a + b) % 2 ? pool : NULL);
                        /* the residual on every tail, M = 1, K = 0 and 1 */
                        check_case_res(&gc, (a + b + c) % 3 == 2 ? RES_ALIAS : RES_SEPARATE,
                                       k_impls[i], k_impl_names[i], (a + c) % 2 ? pool : NULL);
                    }
    }
    tdm_pool_free(pool);
}

/* Depth cut into several k blocks and rows into several row blocks. */
static void test_large_blocks(void **state)
{
    (void)state;
    tdm_pool *pool = NULL;
    assert_int_equal(tdm_pool_create(2, &pool, NULL), TDM_OK);
    const gemm_case cases[] = {
        {false, false, 300, 50, 1600, 1600, 50, 50, 1.f, 0.5f, true, true, TDM_ACT_RELU, 0, 0},
        {true, true, 70, 97, 1000, 70, 1000, 97, -1.f, 0.f, true, false, TDM_ACT_GELU, 0, 0},
        {false, true, 1, 300, 1000, 1000, 1000, 300, 1.f, 1.f, true, true, TDM_ACT_NONE, 0, 0},
        {true, false, 1, 300, 800, 5, 300, 300, 2.f, 0.f, true, true, TDM_ACT_TANH, 0, 0},
        {false, false, 257, 1, 900, 900, 1, 1, 1.f, 0.f, true, true, TDM_ACT_SIGMOID, 0, 0},
        {true, true, 100, 1, 500, 100, 500, 1, 1.f, 0.25f, true, true, TDM_ACT_NONE, 0, 0},
        {false, false, 200, 1, 64, 64, 3, 2, 1.f, 0.f, false, false, TDM_ACT_NONE, 0, 0},
    };
    for (int i = 0; i < N_IMPLS; i++) {
        if (!tdm_gemm_impl_available(k_impls[i]) || k_impls[i] == TDM_GEMM_REFERENCE)
            continue;
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
            check_case(&cases[c], k_impls[i], k_impl_names[i], NULL);
            check_case(&cases[c], k_impls[i], k_impl_names[i], pool);
            /* the residual with several k blocks: added once, on the last */
            check_case_res(&cases[c], RES_SEPARATE, k_impls[i], k_impl_names[i], pool);
        }
    }
    tdm_pool_free(pool);
}

/* The single-threaded entry with a caller workspace matches too. */
static void test_workspace_entry(void **state)
{
    (void)state;
    int64_t M = 37, N = 53, K = 29;
    float *A = malloc(sizeof(float) * (size_t)(M * K)),
          *B = malloc(sizeof(float) * (size_t)(N * K));
    float *C = malloc(sizeof(float) * (size_t)(M * N)),
          *R = malloc(sizeof(float) * (size_t)(M * N));
    float *ws = malloc(sizeof(float) * TDM_SGEMM_WS_FLOATS);
    assert_non_null(A);
    assert_non_null(B);
    assert_non_null(C);
    assert_non_null(R);
    assert_non_null(ws);
    for (int64_t i = 0; i < M * K; i++)
        A[i] = rndf();
    for (int64_t i = 0; i < N * K; i++)
        B[i] = rndf();
    tdm_sgemm_st(false, true, M, N, K, 1.f, A, K, B, K, 0.f, C, N, NULL, ws);
    tdm_sgemm_impl(TDM_GEMM_REFERENCE, NULL, false, true, M, N, K, 1.f, A, K, B, K, 0.f, R, N,
                   NULL);
    for (int64_t i = 0; i < M * N; i++)
        assert_float_equal(C[i], R[i], 1e-4);
    free(A);
    free(B);
    free(C);
    free(R);
    free(ws);
}

/* Activations of every family: all tails, and GELU against erfc in double. */
static void test_activations(void **state)
{
    (void)state;
    enum { N = 4099 };
    float *x = malloc(sizeof(float) * N), *y = malloc(sizeof(float) * N);
    assert_non_null(x);
    assert_non_null(y);
    for (int i = 0; i < N; i++)
        x[i] = -12.f + 24.f * (float)i / (float)(N - 1);
    x[0] = 0.f;
    x[1] = -0.f;
    x[2] = 1e-6f;
    x[3] = -3.80639f;
    for (int i = 0; i < N_IMPLS; i++) {
        if (!tdm_gemm_impl_available(k_impls[i]))
            continue;
        for (int a = 0; a <= TDM_ACT_HARD_SWISH; a++) {
            float pa = a == TDM_ACT_CLIP ? -0.5f : 0.2f, pb = a == TDM_ACT_CLIP ? 0.5f : 0.5f;
            for (int n = 0; n < 40; n++) { /* every tail length */
                memcpy(y, x, sizeof(float) * (size_t)(N - 40 + n));
                assert_true(tdm_act_apply_impl(k_impls[i], y, N - 40 + n, (tdm_act)a, pa, pb));
                y[N - 40 + n] = 12345.f;
                for (int j = 0; j < N - 40 + n; j++) {
                    double want = act_ref(x[j], (tdm_act)a, pa, pb);
                    double tol = 2e-6 * fabs(want) + 1e-7;
                    if (a == TDM_ACT_GELU || a == TDM_ACT_SIGMOID || a == TDM_ACT_TANH)
                        tol = 1e-6 * fabs(want) + 1e-30; /* relative, down to tiny values */
                    if (a == TDM_ACT_GELU && fabs(want) < 1e-30)
                        tol = 1e-30;
                    if (!(fabs(y[j] - want) <= tol))
                        fail_msg("%s act %d x=%.9g: %.9g want %.9g", k_impl_names[i], a, x[j], y[j],
                                 want);
                }
                /* nothing written past n */
                assert_true(n == 40 || y[N - 40 + n] == 12345.f);
            }
        }
    }
    free(x);
    free(y);
}

/* GELU over a dense sweep of the range where it is not negligible. */
static void test_gelu_dense(void **state)
{
    (void)state;
    enum { N = 1 << 18 };
    float *x = malloc(sizeof(float) * N), *y = malloc(sizeof(float) * N);
    assert_non_null(x);
    assert_non_null(y);
    for (int i = 0; i < N; i++)
        x[i] = (float)(-14.0 + 28.0 * (double)rnd() / 4294967296.0);
    for (int i = 0; i < N_IMPLS; i++) {
        if (!tdm_gemm_impl_available(k_impls[i]))
            continue;
        memcpy(y, x, sizeof(float) * N);
        tdm_act_apply_impl(k_impls[i], y, N, TDM_ACT_GELU, 0, 0);
        double worst = 0;
        for (int j = 0; j < N; j++) {
            double want = 0.5 * x[j] * erfc(-(double)x[j] / sqrt(2.0));
            if (fabs(want) < 1e-30)
                continue;
            double rel = fabs(y[j] - want) / fabs(want);
            if (rel > worst)
                worst = rel;
        }
        if (worst > 1e-6)
            fail_msg("%s GELU worst relative error %g", k_impl_names[i], worst);
    }
    free(x);
    free(y);
}

static void test_act_names(void **state)
{
    (void)state;
    tdm_act a;
    assert_true(tdm_act_from_name("Gelu", &a));
    assert_int_equal(a, TDM_ACT_GELU);
    assert_true(tdm_act_from_name("", &a));
    assert_int_equal(a, TDM_ACT_NONE);
    assert_true(tdm_act_from_name("HardSwish", &a));
    assert_int_equal(a, TDM_ACT_HARD_SWISH);
    assert_false(tdm_act_from_name("Softmax", &a));
}

int main(void)
{
    for (int i = 0; i < N_IMPLS; i++)
        printf("# %s: %s\n", k_impl_names[i],
               tdm_gemm_impl_available(k_impls[i]) ? "tested" : "not available here");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_shapes), cmocka_unit_test(test_edges),
        cmocka_unit_test(test_large_blocks),  cmocka_unit_test(test_workspace_entry),
        cmocka_unit_test(test_activations),   cmocka_unit_test(test_gelu_dense),
        cmocka_unit_test(test_act_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

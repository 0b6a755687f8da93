/*
 * Int8 GEMM (kernels/qgemm.h) against a double-precision float reference.
 *
 * Every kernel family this machine can run (portable, AVX2, AVX-512BW,
 * AVX-512 VNNI) is selected explicitly, so one process covers all of them;
 * AUTO is also run, and integration/embed_int8.sh reruns this binary with
 * TDM_CPU capped so the dispatch under each cap is checked too.
 *
 * Three properties are tested on random shapes with odd sizes (row tails of
 * the 4-row tile, channel tails of the 16-channel panels and of the 2-panel
 * tasks, K not a multiple of 4), biases and activations, 1 and 2 threads:
 *  - accuracy: |C - C_ref| within the quantisation error bound,
 *    sum_k (|a_k| sw/2 + |w_k| sa/2 + sa sw/4) (times the activation's
 *    Lipschitz constant, 1.13 for GELU), plus float rounding. A wrong sum,
 *    scale or zero point is off by far more than this.
 *  - exactness: C equals sa sw (sum qa qw - za colsum) + bias computed in
 *    double from the same codes, up to float rounding of the epilogue.
 *  - identity: the integer sums are exact, so every family's output equals
 *    the portable one bit for bit.
 * Plus the pieces: weight quantisation and packing, the column sums, the
 * activation quantiser's codes and step.
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

#include "base/alloc.h"
#include "base/pool.h"
#include "engine/kernels/qgemm.h"
#include "engine/op.h"
#include "op_harness.h"

static const tdm_qgemm_impl k_impls[] = {TDM_QGEMM_PORTABLE, TDM_QGEMM_AVX2, TDM_QGEMM_AVX512,
                                         TDM_QGEMM_AVX512_VNNI, TDM_QGEMM_AUTO};
static const char *const k_names[] = {"portable", "avx2", "avx512", "avx512-vnni", "auto"};
#define N_IMPLS ((int)(sizeof k_impls / sizeof k_impls[0]))

static uint64_t g_rng = 0x2545f4914f6cdd1dull;

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

/* A quantised weight matrix with its own storage. */
typedef struct qw {
    int8_t *w;
    float *scale;
    int32_t *colsum;
    tdm_qmat m;
} qw;

static void qw_make(qw *q, const float *W, bool trans, int64_t K, int64_t N)
{
    q->w = tdm_aligned_alloc(tdm_qgemm_packed_size(N, K) + 64);
    q->scale = malloc(sizeof(float) * (size_t)N);
    q->colsum = malloc(sizeof(int32_t) * (size_t)tdm_qgemm_np(N));
    assert_non_null(q->w);
    assert_non_null(q->scale);
    assert_non_null(q->colsum);
    tdm_qgemm_quantize_pack(W, trans, K, N, q->w, q->scale);
    tdm_qgemm_colsums(q->w, N, K, q->colsum);
    q->m = (tdm_qmat){N, K, q->w, q->scale, q->colsum};
}

static void qw_free(qw *q)
{
    tdm_aligned_free(q->w);
    free(q->scale);
    free(q->colsum);
}

static double act_ref(double v, tdm_act act)
{
    switch (act) {
    case TDM_ACT_RELU: return v > 0 ? v : 0;
    case TDM_ACT_GELU: return 0.5 * v * erfc(-v / sqrt(2.0));
    default: return v;
    }
}

static void test_pack(void **state)
{
    (void)state;
    const int64_t K = 37, N = 21;
    float *W = malloc(sizeof(float) * K * N), *Wt = malloc(sizeof(float) * K * N);
    for (int64_t i = 0; i < K * N; i++)
        W[i] = rndf() * 3.f;
    W[5 * N + 7] = -4.f; /* the largest magnitude of column 7 */
    for (int64_t k = 0; k < K; k++)
        W[k * N + 9] = 0.f; /* an all-zero column */
    for (int64_t k = 0; k < K; k++)
        for (int64_t n = 0; n < N; n++)
            Wt[n * K + k] = W[k * N + n];
    qw a, b;
    qw_make(&a, W, false, K, N);
    qw_make(&b, Wt, true, K, N);
    size_t bytes = tdm_qgemm_packed_size(N, K);
    assert_int_equal(bytes, (size_t)(32 * 40));
    assert_memory_equal(a.w, b.w, bytes);
    assert_memory_equal(a.scale, b.scale, sizeof(float) * N);
    assert_float_equal(a.scale[7], 4.f / 127.f, 1e-7);
    assert_float_equal(a.scale[9], 0.f, 0.f);
    assert_int_equal(tdm_qgemm_packed_at(a.w, K, 5, 7), -127);
    for (int64_t n = 0; n < N; n++) {
        int32_t sum = 0;
        for (int64_t k = 0; k < K; k++) {
            int8_t q = tdm_qgemm_packed_at(a.w, K, k, n);
            sum += q;
            assert_true(q != -128);
            /* round to nearest: within half a step */
            assert_true(fabs((double)q * a.scale[n] - W[k * N + n]) <= a.scale[n] * 0.5001 + 1e-7);
        }
        assert_int_equal(a.colsum[n], sum);
    }
    /* padding (k >= K, n >= N) is zero and sums to zero */
    for (int64_t n = 0; n < tdm_qgemm_np(N); n++)
        for (int64_t k = 0; k < tdm_qgemm_kp(K); k++)
            if (k >= K || n >= N)
                assert_int_equal(tdm_qgemm_packed_at(a.w, K, k, n), 0);
    for (int64_t n = N; n < tdm_qgemm_np(N); n++)
        assert_int_equal(a.colsum[n], 0);
    qw_free(&a);
    qw_free(&b);
    free(W);
    free(Wt);
}

static void test_quantize_row(void **state)
{
    (void)state;
    const int64_t K = 23;
    float a[23];
    uint8_t q[24];
    float s;
    int32_t z;
    for (int trial = 0; trial < 50; trial++) {
        float lo = trial % 3 == 0 ? 0.5f : -2.f * (float)(trial % 5);
        for (int64_t k = 0; k < K; k++)
            a[k] = lo + (rndf() + 1.f) * (float)(1 + trial % 4);
        memset(q, 0xff, sizeof q);
        tdm_qgemm_quantize_row(a, K, q, &s, &z);
        assert_true(s > 0.f);
        assert_true(z >= 0 && z <= TDM_QGEMM_QMAX);
        assert_int_equal(q[23], 0); /* padding */
        for (int64_t k = 0; k < K; k++) {
            assert_true(q[k] <= TDM_QGEMM_QMAX);
            double back = ((double)q[k] - z) * s;
            assert_true(fabs(back - a[k]) <= s * 0.5001);
        }
        /* zero is exactly representable: its code is the zero point */
        float zero = 0.f;
        uint8_t qz[4];
        float s1;
        int32_t z1;
        tdm_qgemm_quantize_row(&zero, 1, qz, &s1, &z1);
        assert_int_equal(qz[0], z1);
    }
    /* all zeros */
    memset(a, 0, sizeof a);
    tdm_qgemm_quantize_row(a, K, q, &s, &z);
    assert_float_equal(s, 0.f, 0.f);
    assert_int_equal(z, 0);
    for (int64_t k = 0; k < K; k++)
        assert_int_equal(q[k], 0);
    /* non-finite input does not crash and keeps codes in range */
    a[3] = NAN;
    a[4] = INFINITY;
    tdm_qgemm_quantize_row(a, K, q, &s, &z);
    for (int64_t k = 0; k < K; k++)
        assert_true(q[k] <= TDM_QGEMM_QMAX);
}

/* One shape through every available kernel, checked against the bound and each other. */
static void run_case(int64_t M, int64_t K, int64_t N, bool trans, bool bias, tdm_act act,
                     tdm_pool *pool)
{
    int64_t lda = K + (rnd() % 3), ldc = N + (rnd() % 3);
    float *A = malloc(sizeof(float) * (size_t)(M * lda + 1));
    float *W = malloc(sizeof(float) * (size_t)(K * N + 1));
    float *b = malloc(sizeof(float) * (size_t)(N + 1));
    float *C0 = malloc(sizeof(float) * (size_t)(M * ldc + 1));
    float *C = malloc(sizeof(float) * (size_t)(M * ldc + 1));
    for (int64_t i = 0; i < M * lda; i++)
        A[i] = rndf() * 2.f + (i % 7 == 0 ? 0.75f : 0.f); /* asymmetric ranges */
    for (int64_t i = 0; i < K * N; i++)
        W[i] = rndf() * 0.5f;
    for (int64_t n = 0; n < N; n++)
        b[n] = rndf();
    qw q;
    qw_make(&q, W, trans, K, N);
    tdm_epilogue ep = {bias ? b : NULL, NULL, act, 0.f, 0.f};
    /* the portable result is the one every other family must equal */
    for (int64_t i = 0; i < M * ldc; i++)
        C0[i] = -7.f;
    assert_true(tdm_qgemm_impl_run(TDM_QGEMM_PORTABLE, pool, M, A, lda, &q.m, C0, ldc, &ep));
    double lip = act == TDM_ACT_GELU ? 1.13 : 1.0;
    uint8_t *qa = malloc((size_t)tdm_qgemm_kp(K));
    for (int64_t m = 0; m < M; m++) {
        float sa;
        int32_t za;
        tdm_qgemm_quantize_row(A + m * lda, K, qa, &sa, &za);
        for (int64_t n = 0; n < N; n++) {
            double ref = bias ? b[n] : 0.0, bound = 0.0, mag = fabs(ref);
            double sw = q.scale[n];
            for (int64_t k = 0; k < K; k++) {
                double a = A[m * lda + k], w = trans ? W[n * K + k] : W[k * N + n];
                ref += a * w;
                bound += fabs(a) * sw * 0.5 + fabs(w) * sa * 0.5 + sa * sw * 0.25;
                mag += fabs(a * w);
            }
            double want = act_ref(ref, act);
            double got = C0[m * ldc + n];
            /* the exact value of the quantised product: integer sums leave no slack */
            int64_t dot = 0;
            for (int64_t k = 0; k < K; k++)
                dot += (int64_t)qa[k] * tdm_qgemm_packed_at(q.w, K, k, n);
            double pre = (double)sa * sw * (double)(dot - (int64_t)za * q.colsum[n]);
            double exact = act_ref(pre + (bias ? b[n] : 0.0), act);
            if (!(fabs(got - exact) <= 2e-6 * (fabs(pre) + (bias ? fabs(b[n]) : 0.0)) + 1e-6))
                fail_msg("M=%lld K=%lld N=%lld: C[%lld,%lld] = %.9g, exact quantised product %.9g",
                         (long long)M, (long long)K, (long long)N, (long long)m, (long long)n, got,
                         exact);
            double tol = lip * bound * 1.001 + 1e-5 * (mag + 1.0);
            if (!(fabs(got - want) <= tol))
                fail_msg("M=%lld K=%lld N=%lld trans=%d act=%d: C[%lld,%lld] = %.7g, reference "
                         "%.7g, bound %.3g",
                         (long long)M, (long long)K, (long long)N, (int)trans, (int)act,
                         (long long)m, (long long)n, got, want, tol);
        }
        for (int64_t n = N; n < ldc; n++)
            assert_float_equal(C0[m * ldc + n], -7.f, 0.f); /* outside C untouched */
    }
    for (int i = 1; i < N_IMPLS; i++) {
        if (!tdm_qgemm_impl_available(k_impls[i]))
            continue;
        for (int64_t j = 0; j < M * ldc; j++)
            C[j] = -7.f;
        assert_true(tdm_qgemm_impl_run(k_impls[i], pool, M, A, lda, &q.m, C, ldc, &ep));
        if (memcmp(C, C0, sizeof(float) * (size_t)(M * ldc)) != 0)
            fail_msg("%s differs from portable at M=%lld K=%lld N=%lld", k_names[i], (long long)M,
                     (long long)K, (long long)N);
    }
    free(qa);
    qw_free(&q);
    free(A);
    free(W);
    free(b);
    free(C0);
    free(C);
}

static void test_random_shapes(void **state)
{
    (void)state;
    static const int64_t ms[] = {1, 2, 3, 4, 5, 7, 9, 13, 33};
    static const int64_t ks[] = {1, 3, 4, 5, 17, 64, 127, 130, 384};
    static const int64_t ns[] = {1, 5, 15, 16, 17, 31, 32, 33, 48, 100};
    static const tdm_act acts[] = {TDM_ACT_NONE, TDM_ACT_RELU, TDM_ACT_GELU};
    tdm_pool *pool = NULL;
    tdm_err err;
    assert_int_equal(tdm_pool_create(2, &pool, &err), TDM_OK);
    for (int t = 0; t < 120; t++) {
        int64_t M = ms[rnd() % 9], K = ks[rnd() % 9], N = ns[rnd() % 10];
        run_case(M, K, N, rnd() % 2, rnd() % 2, acts[rnd() % 3], t % 2 ? pool : NULL);
    }
    tdm_pool_free(pool);
}

/* The BERT-shaped layers the pass rewrites: M = 128 tokens, 384 -> 1536 and back. */
static void test_layer_shapes(void **state)
{
    (void)state;
    tdm_pool *pool = NULL;
    tdm_err err;
    assert_int_equal(tdm_pool_create(2, &pool, &err), TDM_OK);
    run_case(128, 384, 1536, false, true, TDM_ACT_GELU, pool);
    run_case(37, 1536, 384, true, true, TDM_ACT_NONE, pool);
    tdm_pool_free(pool);
}

static void test_degenerate(void **state)
{
    (void)state;
    float W[64], A[8] = {0}, C[8] = {5.f};
    for (int i = 0; i < 64; i++)
        W[i] = rndf();
    qw q;
    qw_make(&q, W, false, 8, 8);
    /* M = 0: nothing written */
    assert_true(tdm_qgemm(NULL, 0, A, 8, &q.m, C, 8, NULL));
    assert_float_equal(C[0], 5.f, 0.f);
    /* a zero row gives exactly the bias */
    float bias[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    tdm_epilogue ep = {bias, NULL, TDM_ACT_NONE, 0.f, 0.f};
    assert_true(tdm_qgemm(NULL, 1, A, 8, &q.m, C, 8, &ep));
    for (int n = 0; n < 8; n++)
        assert_float_equal(C[n], bias[n], 0.f);
    qw_free(&q);
}

/* tandem.QMatMul through the op table: A's leading axes fold into M, the result
 * equals tdm_qgemm's, and inconsistent inputs fail with a message. */
static void test_qmatmul_op(void **state)
{
    (void)state;
    const int64_t K = 19, N = 21;
    tdm_tensor a, qwt, sc, bias;
    float W[19 * 21];
    for (int i = 0; i < K * N; i++)
        W[i] = rndf();
    int64_t adims[3] = {2, 3, K}, qdims[4] = {2, 5, 16, 4};
    assert_int_equal(tdm_tensor_make(&a, TDM_DTYPE_FLOAT32, 3, adims, NULL), TDM_OK);
    assert_int_equal(tdm_tensor_make(&qwt, TDM_DTYPE_INT8, 4, qdims, NULL), TDM_OK);
    assert_int_equal(tdm_tensor_make(&sc, TDM_DTYPE_FLOAT32, 1, &N, NULL), TDM_OK);
    assert_int_equal(tdm_tensor_make(&bias, TDM_DTYPE_FLOAT32, 1, &N, NULL), TDM_OK);
    for (int i = 0; i < 6 * K; i++)
        ((float *)a.data)[i] = rndf();
    for (int i = 0; i < N; i++)
        ((float *)bias.data)[i] = rndf();
    tdm_qgemm_quantize_pack(W, false, K, N, qwt.data, sc.data);
    tdm_node node;
    op_node_init(&node, "QMatMul", "tandem", 1, 4, 1);
    op_attr_str(&node, "activation", "Relu");
    const tdm_tensor *ins[4] = {&a, &qwt, &sc, &bias};
    tdm_tensor out;
    tdm_err err = {{0}};
    assert_int_equal(op_run(&node, ins, 4, &out, 1, NULL, &err), TDM_OK);
    assert_int_equal(out.ndim, 3);
    assert_int_equal(out.dims[0], 2);
    assert_int_equal(out.dims[1], 3);
    assert_int_equal(out.dims[2], N);
    qw q;
    qw_make(&q, W, false, K, N);
    float want[6 * 21];
    tdm_epilogue ep = {bias.data, NULL, TDM_ACT_RELU, 0.f, 0.f};
    assert_true(tdm_qgemm(NULL, 6, a.data, K, &q.m, want, N, &ep));
    assert_memory_equal(out.data, want, sizeof want);
    tdm_tensor_free(&out);
    /* packed weights that do not match K */
    a.dims[2] = K + 4;
    assert_int_equal(op_run(&node, ins, 4, &out, 1, NULL, &err), TDM_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "packed weights"));
    tdm_tensor_free(&out);
    a.dims[2] = K;
    /* a bias of the wrong length */
    bias.dims[0] = N - 1;
    assert_int_equal(op_run(&node, ins, 4, &out, 1, NULL, &err), TDM_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "bias"));
    tdm_tensor_free(&out);
    bias.dims[0] = N;
    /* float weights where int8 are expected */
    const tdm_tensor *bad[4] = {&a, &a, &sc, &bias};
    assert_int_equal(op_run(&node, bad, 4, &out, 1, NULL, &err), TDM_ERR_UNSUPPORTED);
    tdm_tensor_free(&out);
    tdm_node_clear(&node);
    qw_free(&q);
    tdm_tensor_free(&a);
    tdm_tensor_free(&qwt);
    tdm_tensor_free(&sc);
    tdm_tensor_free(&bias);
}

/* AUTO follows the TDM_CPU cap (the integration test reruns this binary capped). */
static void test_dispatch(void **state)
{
    (void)state;
    const char *cap = getenv("TDM_CPU");
    const char *name = tdm_qgemm_impl_name(TDM_QGEMM_AUTO);
    printf("# auto picks %s (TDM_CPU=%s)\n", name, cap ? cap : "unset");
    assert_true(tdm_qgemm_impl_available(TDM_QGEMM_PORTABLE));
    if (cap != NULL && strcmp(cap, "portable") == 0) {
        assert_string_equal(name, "portable");
        assert_false(tdm_qgemm_impl_available(TDM_QGEMM_AVX2));
    }
    if (cap != NULL && strcmp(cap, "avx2") == 0)
        assert_false(tdm_qgemm_impl_available(TDM_QGEMM_AVX512));
    if (tdm_qgemm_impl_available(TDM_QGEMM_AVX512_VNNI))
        assert_string_equal(name, "avx512-vnni");
}

int main(void)
{
    for (int i = 0; i < N_IMPLS; i++)
        printf("# %s: %s\n", k_names[i],
               tdm_qgemm_impl_available(k_impls[i]) ? "tested" : "not available here");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pack),          cmocka_unit_test(test_quantize_row),
        cmocka_unit_test(test_random_shapes), cmocka_unit_test(test_layer_shapes),
        cmocka_unit_test(test_degenerate),    cmocka_unit_test(test_dispatch),
        cmocka_unit_test(test_qmatmul_op),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

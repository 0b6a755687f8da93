/*
 * MatMul, Gemm, tandem::FusedMatMul, tandem::Attention and LayerNormalization
 * through the op interface (tests/engine/op_harness.h), each against a naive
 * double-precision reference written independently of the op: numpy
 * broadcasting by explicit index arithmetic, softmax by its definition,
 * mean and variance in double. Run with 1, 2 and 3 threads so the batched,
 * folded and per-head parallel paths are all taken, plus the error paths
 * (shape mismatches, dtypes, bad attributes) that must fail with a status.
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
#include "engine/op.h"
#include "engine/ops/nn_layernorm.h"
#include "engine/op_harness.h"

static uint64_t g_rng = 0x2545f4914f6cdd1dull;

static float rndf(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (float)((double)(g_rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static void make(tdm_tensor *t, int ndim, const int64_t *dims)
{
    assert_int_equal(tdm_tensor_make(t, TDM_DTYPE_FLOAT32, ndim, dims, NULL), TDM_OK);
    float *p = t->data;
    for (int64_t i = 0; i < tdm_tensor_numel(t); i++)
        p[i] = rndf();
}

static tdm_pool *g_pools[3];

static int setup(void **state)
{
    (void)state;
    g_pools[0] = NULL;
    if (tdm_pool_create(2, &g_pools[1], NULL) != TDM_OK ||
        tdm_pool_create(3, &g_pools[2], NULL) != TDM_OK)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tdm_pool_free(g_pools[1]);
    tdm_pool_free(g_pools[2]);
    return 0;
}

static void expect_close(const float *got, const double *want, const double *mag, int64_t n,
                         const char *what)
{
    for (int64_t i = 0; i < n; i++) {
        double tol = 1e-5 * (mag != NULL ? mag[i] : fabs(want[i])) + 1e-5;
        if (!(fabs(got[i] - want[i]) <= tol))
            fail_msg("%s: element %lld = %.8g, want %.8g", what, (long long)i, got[i], want[i]);
    }
}

/* ---- MatMul ---------------------------------------------------------------------------- */

/* numpy matmul in double, by index arithmetic over the broadcast output. */
static int64_t ref_matmul(const tdm_tensor *a, const tdm_tensor *b, double *out, double *mag,
                          int64_t *odims, int *ondim)
{
    int ra = a->ndim, rb = b->ndim;
    int64_t ad[8], bd[8];
    int na = ra, nbr = rb;
    memcpy(ad, a->dims, sizeof(int64_t) * (size_t)ra);
    memcpy(bd, b->dims, sizeof(int64_t) * (size_t)rb);
    if (ra == 1) { /* [K] -> [1, K] */
        ad[1] = ad[0];
        ad[0] = 1;
        na = 2;
    }
    if (rb == 1) { /* [K] -> [K, 1] */
        bd[1] = 1;
        nbr = 2;
    }
    int64_t M = ad[na - 2], K = ad[na - 1], N = bd[nbr - 1];
    int nb = (na > nbr ? na : nbr) - 2;
    int64_t batch[8], count = 1;
    for (int d = 0; d < nb; d++) {
        int ia = d - (nb - (na - 2)), ib = d - (nb - (nbr - 2));
        int64_t x = ia >= 0 ? ad[ia] : 1, y = ib >= 0 ? bd[ib] : 1;
        batch[d] = x == 1 ? y : x; /* numpy: 1 broadcasts, 0 stays 0 */
        count *= batch[d];
    }
    const float *A = a->data, *B = b->data;
    for (int64_t bi = 0; bi < count; bi++) {
        int64_t idx[8], rem = bi;
        for (int d = nb - 1; d >= 0; d--) {
            idx[d] = rem % batch[d];
            rem /= batch[d];
        }
        int64_t ao = 0, bo = 0, as = M * K, bs = K * N;
        for (int d = nb - 1; d >= 0; d--) {
            int ia = d - (nb - (na - 2)), ib = d - (nb - (nbr - 2));
            if (ia >= 0) {
                ao += (ad[ia] == 1 ? 0 : idx[d]) * as;
                as *= ad[ia];
            }
            if (ib >= 0) {
                bo += (bd[ib] == 1 ? 0 : idx[d]) * bs;
                bs *= bd[ib];
            }
        }
        for (int64_t m = 0; m < M; m++)
            for (int64_t n = 0; n < N; n++) {
                double s = 0, g = 0;
                for (int64_t k = 0; k < K; k++) {
                    double p = (double)A[ao + m * K + k] * B[bo + k * N + n];
                    s += p;
                    g += fabs(p);
                }
                out[(bi * M + m) * N + n] = s;
                mag[(bi * M + m) * N + n] = g;
            }
    }
    int nd = 0;
    for (int d = 0; d < nb; d++)
        odims[nd++] = batch[d];
    if (ra != 1)
        odims[nd++] = M;
    if (rb != 1)
        odims[nd++] = N;
    *ondim = nd;
    return count * M * N;
}

static void run_matmul_case(int ra, const int64_t *adims, int rb, const int64_t *bdims)
{
    tdm_tensor a, b;
    make(&a, ra, adims);
    make(&b, rb, bdims);
    double *want = malloc(sizeof(double) * 100000), *mag = malloc(sizeof(double) * 100000);
    assert_non_null(want);
    assert_non_null(mag);
    int64_t odims[8];
    int ond;
    int64_t n = ref_matmul(&a, &b, want, mag, odims, &ond);
    for (int p = 0; p < 3; p++) {
        tdm_node node;
        op_node_init(&node, "MatMul", "", 13, 2, 1);
        const tdm_tensor *ins[2] = {&a, &b};
        tdm_tensor out[1];
        tdm_err err = {{0}};
        tdm_status s = op_run(&node, ins, 2, out, 1, g_pools[p], &err);
        if (s != TDM_OK)
            fail_msg("MatMul failed: %s", err.msg);
        assert_int_equal(out[0].ndim, ond);
        for (int d = 0; d < ond; d++)
            assert_int_equal(out[0].dims[d], odims[d]);
        assert_int_equal(tdm_tensor_numel(&out[0]), n);
        expect_close(out[0].data, want, mag, n, "MatMul");
        tdm_tensor_free(&out[0]);
        tdm_node_clear(&node);
    }
    free(want);
    free(mag);
    tdm_tensor_free(&a);
    tdm_tensor_free(&b);
}

static void test_matmul_shapes(void **state)
{
    (void)state;
    struct {
        int ra;
        int64_t a[4];
        int rb;
        int64_t b[4];
    } cases[] = {
        {2, {3, 4}, 2, {4, 5}},
        {3, {2, 3, 4}, 2, {4, 5}},
        {3, {2, 3, 4}, 3, {2, 4, 5}},
        {4, {2, 1, 3, 4}, 3, {3, 4, 5}},
        {1, {4}, 2, {4, 5}},
        {2, {3, 4}, 1, {4}},
        {1, {7}, 1, {7}},
        {3, {2, 3, 4}, 1, {4}},
        {1, {4}, 3, {2, 4, 5}},
        {3, {1, 3, 4}, 3, {2, 4, 5}},
        {3, {5, 3, 4}, 3, {1, 4, 6}},
        {3, {16, 9, 32}, 3, {16, 32, 17}},
        {3, {2, 130, 70}, 2, {70, 50}},
        {4, {2, 3, 17, 33}, 4, {2, 3, 33, 49}},
        {2, {1, 300}, 2, {300, 100}},
        {2, {3, 0}, 2, {0, 4}},
        {3, {0, 3, 4}, 2, {4, 5}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run_matmul_case(cases[i].ra, cases[i].a, cases[i].rb, cases[i].b);
}

static tdm_status run_status(const char *op, const char *domain, const tdm_tensor *const *ins,
                             int n_in, tdm_node *node, char *msg, size_t msg_len)
{
    tdm_tensor out[3];
    tdm_err err = {{0}};
    tdm_status s = op_run(node, ins, n_in, out, 1, NULL, &err);
    (void)op;
    (void)domain;
    snprintf(msg, msg_len, "%s", err.msg);
    tdm_tensor_free(&out[0]);
    return s;
}

static void test_matmul_errors(void **state)
{
    (void)state;
    tdm_tensor a, b, c, i64;
    make(&a, 2, (int64_t[]){3, 4});
    make(&b, 2, (int64_t[]){5, 6});
    make(&c, 3, (int64_t[]){3, 4, 6});
    assert_int_equal(tdm_tensor_make(&i64, TDM_DTYPE_INT64, 2, (int64_t[]){4, 2}, NULL), TDM_OK);
    char msg[TDM_ERR_MSG_MAX];
    tdm_node node;
    op_node_init(&node, "MatMul", "", 13, 2, 1);
    assert_int_equal(
        run_status("MatMul", "", (const tdm_tensor *[]){&a, &b}, 2, &node, msg, sizeof msg),
        TDM_ERR_SHAPE);
    assert_non_null(strstr(msg, "inner dimensions"));
    tdm_tensor a2;
    make(&a2, 3, (int64_t[]){2, 3, 6});
    assert_int_equal(
        run_status("MatMul", "", (const tdm_tensor *[]){&a2, &c}, 2, &node, msg, sizeof msg),
        TDM_ERR_SHAPE); /* batch 2 vs 3 */
    assert_int_equal(
        run_status("MatMul", "", (const tdm_tensor *[]){&a, &i64}, 2, &node, msg, sizeof msg),
        TDM_ERR_UNSUPPORTED);
    assert_int_equal(
        run_status("MatMul", "", (const tdm_tensor *[]){&a, NULL}, 2, &node, msg, sizeof msg),
        TDM_ERR_INVALID_ARG);
    tdm_node_clear(&node);
    tdm_tensor_free(&a);
    tdm_tensor_free(&a2);
    tdm_tensor_free(&b);
    tdm_tensor_free(&c);
    tdm_tensor_free(&i64);
}

/* ---- Gemm ------------------------------------------------------------------------------- */

static void test_gemm_variants(void **state)
{
    (void)state;
    const int64_t M = 13, N = 21, K = 17;
    /* C shapes: absent, scalar, [1], [N], [1,N], [M,1], [M,N], [1,1] */
    const int c_ndim[] = {-1, 0, 1, 1, 2, 2, 2, 2};
    const int64_t c_dims[][2] = {{0, 0}, {0, 0}, {1, 0}, {N, 0}, {1, N}, {M, 1}, {M, N}, {1, 1}};
    int ci = 0;
    for (int t = 0; t < 4; t++) {
        for (int cs = 0; cs < 8; cs++, ci++) {
            bool ta = t & 1, tb = t >> 1;
            float alpha = ci % 3 == 0 ? 1.f : 0.75f, beta = ci % 4 == 1 ? 1.f : -0.5f;
            tdm_tensor a, b, c;
            make(&a, 2, ta ? (int64_t[]){K, M} : (int64_t[]){M, K});
            make(&b, 2, tb ? (int64_t[]){N, K} : (int64_t[]){K, N});
            if (c_ndim[cs] >= 0)
                make(&c, c_ndim[cs], c_dims[cs]);
            tdm_node node;
            op_node_init(&node, "Gemm", "", 13, c_ndim[cs] >= 0 ? 3 : 2, 1);
            op_attr_int(&node, "transA", ta);
            op_attr_int(&node, "transB", tb);
            op_attr_float(&node, "alpha", alpha);
            op_attr_float(&node, "beta", beta);
            const tdm_tensor *ins[3] = {&a, &b, c_ndim[cs] >= 0 ? &c : NULL};
            double want[13 * 21], mag[13 * 21];
            const float *A = a.data, *B = b.data;
            for (int64_t m = 0; m < M; m++)
                for (int64_t n = 0; n < N; n++) {
                    double s = 0, g = 0;
                    for (int64_t k = 0; k < K; k++) {
                        double p = (double)(ta ? A[k * M + m] : A[m * K + k]) *
                                   (tb ? B[n * K + k] : B[k * N + n]);
                        s += p;
                        g += fabs(p);
                    }
                    s *= alpha;
                    g *= fabs(alpha);
                    if (c_ndim[cs] >= 0) {
                        const float *C = c.data;
                        int64_t cm = c_ndim[cs] == 2 ? c_dims[cs][0] : 1;
                        int64_t cn = c_ndim[cs] == 0 ? 1 : c_dims[cs][c_ndim[cs] - 1];
                        double cv = C[(cm == 1 ? 0 : m) * cn + (cn == 1 ? 0 : n)];
                        s += beta * cv;
                        g += fabs(beta * cv);
                    }
                    want[m * N + n] = s;
                    mag[m * N + n] = g;
                }
            for (int p = 0; p < 3; p++) {
                tdm_tensor out[1];
                tdm_err err = {{0}};
                if (op_run(&node, ins, c_ndim[cs] >= 0 ? 3 : 2, out, 1, g_pools[p], &err) != TDM_OK)
                    fail_msg("Gemm failed: %s", err.msg);
                assert_int_equal(out[0].ndim, 2);
                assert_int_equal(out[0].dims[0], M);
                assert_int_equal(out[0].dims[1], N);
                expect_close(out[0].data, want, mag, M * N, "Gemm");
                tdm_tensor_free(&out[0]);
            }
            tdm_node_clear(&node);
            tdm_tensor_free(&a);
            tdm_tensor_free(&b);
            if (c_ndim[cs] >= 0)
                tdm_tensor_free(&c);
        }
    }
}

static void test_gemm_errors(void **state)
{
    (void)state;
    tdm_tensor a, b, c;
    make(&a, 2, (int64_t[]){3, 4});
    make(&b, 2, (int64_t[]){4, 5});
    make(&c, 2, (int64_t[]){2, 5});
    char msg[TDM_ERR_MSG_MAX];
    tdm_node node;
    op_node_init(&node, "Gemm", "", 13, 3, 1);
    assert_int_equal(
        run_status("Gemm", "", (const tdm_tensor *[]){&a, &b, &c}, 3, &node, msg, sizeof msg),
        TDM_ERR_SHAPE);
    assert_non_null(strstr(msg, "does not broadcast"));
    tdm_node_clear(&node);
    op_node_init(&node, "Gemm", "", 13, 2, 1);
    op_attr_int(&node, "transB", 1);
    assert_int_equal(
        run_status("Gemm", "", (const tdm_tensor *[]){&a, &b}, 2, &node, msg, sizeof msg),
        TDM_ERR_SHAPE);
    tdm_node_clear(&node);
    op_node_init(&node, "Gemm", "", 9, 2, 1); /* C required before opset 11 */
    assert_int_equal(
        run_status("Gemm", "", (const tdm_tensor *[]){&a, &b}, 2, &node, msg, sizeof msg),
        TDM_ERR_INVALID_ARG);
    tdm_node_clear(&node);
    tdm_tensor_free(&a);
    tdm_tensor_free(&b);
    tdm_tensor_free(&c);
}

/* ---- FusedMatMul -------------------------------------------------------------------------- */

static double act_ref(const char *name, double v, double a, double b)
{
    if (strcmp(name, "Relu") == 0)
        return v > 0 ? v : 0;
    if (strcmp(name, "LeakyRelu") == 0)
        return v >= 0 ? v : a * v;
    if (strcmp(name, "Gelu") == 0)
        return 0.5 * v * erfc(-v / sqrt(2.0));
    if (strcmp(name, "Clip") == 0)
        return v < a ? a : (v > b ? b : v);
    if (strcmp(name, "HardSigmoid") == 0) {
        double y = a * v + b;
        return y < 0 ? 0 : (y > 1 ? 1 : y);
    }
    return v;
}

static void test_fused_matmul(void **state)
{
    (void)state;
    const char *acts[] = {"", "Relu", "Gelu", "LeakyRelu", "Clip", "HardSigmoid"};
    for (size_t ai = 0; ai < sizeof acts / sizeof acts[0]; ai++) {
        for (int tb = 0; tb < 2; tb++) {
            for (int with_bias = 0; with_bias < 2; with_bias++) {
                const int64_t Bt = 2, M = 9, K = 19, N = 35;
                tdm_tensor a, b, bias;
                make(&a, 3, (int64_t[]){Bt, M, K});
                make(&b, 2, tb ? (int64_t[]){N, K} : (int64_t[]){K, N});
                make(&bias, 1, (int64_t[]){N});
                tdm_node node;
                op_node_init(&node, "FusedMatMul", "tandem", 1, with_bias ? 3 : 2, 1);
                op_attr_str(&node, "activation", acts[ai]);
                op_attr_int(&node, "transB", tb);
                double pa = 0.01, pb = 0;
                if (strcmp(acts[ai], "LeakyRelu") == 0) {
                    op_attr_float(&node, "alpha", 0.3f);
                    pa = 0.3f;
                } else if (strcmp(acts[ai], "Clip") == 0) {
                    op_attr_float(&node, "alpha", -0.25f);
                    op_attr_float(&node, "beta", 0.5f);
                    pa = -0.25f;
                    pb = 0.5f;
                } else if (strcmp(acts[ai], "HardSigmoid") == 0) {
                    pa = 0.2f; /* defaults */
                    pb = 0.5f;
                }
                double want[2 * 9 * 35], mag[2 * 9 * 35];
                const float *A = a.data, *B = b.data, *bv = bias.data;
                for (int64_t i = 0; i < Bt * M; i++)
                    for (int64_t n = 0; n < N; n++) {
                        double s = 0, g = 0;
                        for (int64_t k = 0; k < K; k++) {
                            double p = (double)A[i * K + k] * (tb ? B[n * K + k] : B[k * N + n]);
                            s += p;
                            g += fabs(p);
                        }
                        if (with_bias) {
                            s += bv[n];
                            g += fabs(bv[n]);
                        }
                        want[i * N + n] = act_ref(acts[ai], s, pa, pb);
                        mag[i * N + n] = g;
                    }
                const tdm_tensor *ins[3] = {&a, &b, &bias};
                for (int p = 0; p < 3; p++) {
                    tdm_tensor out[1];
                    tdm_err err = {{0}};
                    if (op_run(&node, ins, with_bias ? 3 : 2, out, 1, g_pools[p], &err) != TDM_OK)
                        fail_msg("FusedMatMul failed: %s", err.msg);
                    assert_int_equal(out[0].ndim, 3);
                    assert_int_equal(out[0].dims[2], N);
                    expect_close(out[0].data, want, mag, Bt * M * N, acts[ai]);
                    tdm_tensor_free(&out[0]);
                }
                tdm_node_clear(&node);
                tdm_tensor_free(&a);
                tdm_tensor_free(&b);
                tdm_tensor_free(&bias);
            }
        }
    }
}

/* The residual (input 3) is added after the activation, per batch entry when B is batched too:
 * with no activation it rides in the GEMM's epilogue, after GELU it is a second pass. */
static void test_fused_matmul_residual(void **state)
{
    (void)state;
    const int64_t Bt = 2, M = 9, K = 19, N = 35;
    const char *acts[2] = {"", "Gelu"};
    for (int variant = 0; variant < 6; variant++) {
        /* variant / 2 = 0: B one matrix (one folded GEMM), 1: B^T, 2: B batched (a GEMM per
         * entry) */
        int tb = variant / 2 == 1;
        tdm_tensor a, b, bias, res;
        make(&a, 3, (int64_t[]){Bt, M, K});
        if (variant / 2 == 2)
            make(&b, 3, (int64_t[]){Bt, K, N});
        else
            make(&b, 2, tb ? (int64_t[]){N, K} : (int64_t[]){K, N});
        make(&bias, 1, (int64_t[]){N});
        make(&res, 3, (int64_t[]){Bt, M, N});
        tdm_node node;
        op_node_init(&node, "FusedMatMul", "tandem", 1, 4, 1);
        op_attr_str(&node, "activation", acts[variant % 2]);
        op_attr_int(&node, "transB", tb);
        double want[2 * 9 * 35], mag[2 * 9 * 35];
        const float *A = a.data, *B = b.data, *bv = bias.data, *R = res.data;
        for (int64_t i = 0; i < Bt * M; i++)
            for (int64_t n = 0; n < N; n++) {
                const float *Bm = variant / 2 == 2 ? B + (i / M) * K * N : B;
                double s = 0, g = 0;
                for (int64_t k = 0; k < K; k++) {
                    double p = (double)A[i * K + k] * (tb ? Bm[n * K + k] : Bm[k * N + n]);
                    s += p;
                    g += fabs(p);
                }
                s += bv[n];
                g += fabs(bv[n]) + fabs(R[i * N + n]);
                want[i * N + n] = act_ref(acts[variant % 2], s, 0, 0) + R[i * N + n];
                mag[i * N + n] = g;
            }
        const tdm_tensor *ins[4] = {&a, &b, &bias, &res};
        for (int p = 0; p < 3; p++) {
            tdm_tensor out[1];
            tdm_err err = {{0}};
            if (op_run(&node, ins, 4, out, 1, g_pools[p], &err) != TDM_OK)
                fail_msg("FusedMatMul with a residual failed: %s", err.msg);
            assert_int_equal(out[0].ndim, 3);
            expect_close(out[0].data, want, mag, Bt * M * N, "residual");
            tdm_tensor_free(&out[0]);
        }
        tdm_node_clear(&node);
        tdm_tensor_free(&a);
        tdm_tensor_free(&b);
        tdm_tensor_free(&bias);
        tdm_tensor_free(&res);
    }
}

/* A residual of another shape is added as ONNX Add would: broadcast both ways. */
static void test_fused_matmul_residual_broadcast(void **state)
{
    (void)state;
    const int64_t M = 3, K = 7, N = 5;
    const int64_t shapes[][4] = {{1, N}, {2, M, 1}, {3, 2, M, N}, {1, 1}}; /* rank, dims */
    const int ranks[] = {1, 2, 3, 1};
    /* residuals [5], [3, 1], [2, 3, 5], [1]: outputs [3, 5], [3, 5], [2, 3, 5], [3, 5] */
    for (int c = 0; c < 4; c++) {
        tdm_tensor a, b, bias, res;
        make(&a, 2, (int64_t[]){M, K});
        make(&b, 2, (int64_t[]){K, N});
        make(&bias, 1, (int64_t[]){N});
        make(&res, ranks[c], shapes[c] + 1);
        tdm_node node;
        op_node_init(&node, "FusedMatMul", "tandem", 1, 4, 1);
        op_attr_str(&node, "activation", c == 3 ? "Relu" : "");
        const tdm_tensor *ins[4] = {&a, &b, &bias, &res};
        tdm_tensor out[1];
        tdm_err err = {{0}};
        if (op_run(&node, ins, 4, out, 1, g_pools[c % 3], &err) != TDM_OK)
            fail_msg("FusedMatMul with residual %d failed: %s", c, err.msg);
        int64_t lead = ranks[c] == 3 ? 2 : 1;
        assert_int_equal(out[0].ndim, lead > 1 ? 3 : 2);
        assert_int_equal(tdm_tensor_numel(&out[0]), lead * M * N);
        const float *A = a.data, *B = b.data, *bv = bias.data, *R = res.data, *Y = out[0].data;
        for (int64_t l = 0; l < lead; l++)
            for (int64_t m = 0; m < M; m++)
                for (int64_t n = 0; n < N; n++) {
                    double sum = bv[n];
                    for (int64_t k = 0; k < K; k++)
                        sum += (double)A[m * K + k] * B[k * N + n];
                    if (c == 3 && sum < 0)
                        sum = 0;
                    double r = c == 0   ? R[n]
                               : c == 1 ? R[m]
                               : c == 2 ? R[(l * M + m) * N + n]
                                        : R[0];
                    assert_float_equal(Y[(l * M + m) * N + n], sum + r, 1e-5);
                }
        tdm_tensor_free(&out[0]);
        tdm_node_clear(&node);
        tdm_tensor_free(&a);
        tdm_tensor_free(&b);
        tdm_tensor_free(&bias);
        tdm_tensor_free(&res);
    }
}

static void test_fused_matmul_errors(void **state)
{
    (void)state;
    tdm_tensor a, b, bias;
    make(&a, 2, (int64_t[]){3, 4});
    make(&b, 2, (int64_t[]){4, 5});
    make(&bias, 2, (int64_t[]){3, 5});
    char msg[TDM_ERR_MSG_MAX];
    tdm_node node;
    op_node_init(&node, "FusedMatMul", "tandem", 1, 3, 1);
    assert_int_equal(run_status("FusedMatMul", "tandem", (const tdm_tensor *[]){&a, &b, &bias}, 3,
                                &node, msg, sizeof msg),
                     TDM_ERR_SHAPE);
    assert_non_null(strstr(msg, "bias"));
    tdm_node_clear(&node);
    op_node_init(&node, "FusedMatMul", "tandem", 1, 2, 1);
    op_attr_str(&node, "activation", "Softplus");
    assert_int_equal(run_status("FusedMatMul", "tandem", (const tdm_tensor *[]){&a, &b}, 2, &node,
                                msg, sizeof msg),
                     TDM_ERR_UNSUPPORTED);
    assert_non_null(strstr(msg, "Softplus"));
    tdm_node_clear(&node);
    /* a residual must broadcast with the [3, 5] product */
    tdm_tensor row, vec, col;
    make(&row, 2, (int64_t[]){2, 5});
    make(&vec, 1, (int64_t[]){4});
    make(&col, 3, (int64_t[]){2, 5, 5});
    tdm_tensor_free(&bias);
    make(&bias, 1, (int64_t[]){5}); /* a valid bias this time */
    const tdm_tensor *bad[3] = {&row, &vec, &col};
    for (int i = 0; i < 3; i++) {
        op_node_init(&node, "FusedMatMul", "tandem", 1, 4, 1);
        assert_int_equal(run_status("FusedMatMul", "tandem",
                                    (const tdm_tensor *[]){&a, &b, &bias, bad[i]}, 4, &node, msg,
                                    sizeof msg),
                         TDM_ERR_SHAPE);
        assert_non_null(strstr(msg, "residual"));
        tdm_node_clear(&node);
    }
    tdm_tensor_free(&row);
    tdm_tensor_free(&vec);
    tdm_tensor_free(&col);
    tdm_tensor_free(&a);
    tdm_tensor_free(&b);
    tdm_tensor_free(&bias);
}

/* ---- Attention ---------------------------------------------------------------------------- */

static void ref_attention(const tdm_tensor *q, const tdm_tensor *k, const tdm_tensor *v,
                          const tdm_tensor *mask, int64_t H, double scale, double *out)
{
    int64_t B = q->dims[0], S = q->dims[1], T = k->dims[1];
    int64_t E = q->dims[2], Ev = v->dims[2], D = E / H, Dv = Ev / H;
    const float *Q = q->data, *Kp = k->data, *V = v->data;
    double *p = malloc(sizeof(double) * (size_t)T);
    assert_non_null(p);
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t s = 0; s < S; s++) {
                double mx = -INFINITY;
                for (int64_t t = 0; t < T; t++) {
                    double d = 0;
                    for (int64_t i = 0; i < D; i++)
                        d += (double)Q[(b * S + s) * E + h * D + i] *
                             Kp[(b * T + t) * E + h * D + i];
                    d *= scale;
                    if (mask != NULL) {
                        /* right-aligned broadcast of the mask to [B, H, S, T] */
                        int64_t idx[4] = {b, h, s, t}, off = 0, st = 1;
                        for (int dd = 3; dd >= 0; dd--) {
                            int md = dd - (4 - mask->ndim);
                            if (md < 0)
                                continue;
                            if (mask->dims[md] != 1)
                                off += idx[dd] * st;
                            st *= mask->dims[md];
                        }
                        d += ((const float *)mask->data)[off];
                    }
                    p[t] = d;
                    if (d > mx)
                        mx = d;
                }
                double sum = 0;
                for (int64_t t = 0; t < T; t++) {
                    p[t] = mx == -INFINITY ? 0 : exp(p[t] - mx);
                    sum += p[t];
                }
                for (int64_t j = 0; j < Dv; j++) {
                    double o = 0;
                    for (int64_t t = 0; t < T; t++)
                        o += p[t] * V[(b * T + t) * Ev + h * Dv + j];
                    out[(b * S + s) * Ev + h * Dv + j] = sum > 0 ? o / sum : 0;
                }
            }
    free(p);
}

static void run_attention_case(int64_t B, int64_t S, int64_t T, int64_t H, int64_t D, int64_t Dv,
                               int mask_ndim, const int64_t *mask_dims, bool explicit_scale,
                               bool neg_inf_row)
{
    tdm_tensor q, k, v, mask;
    make(&q, 3, (int64_t[]){B, S, H * D});
    make(&k, 3, (int64_t[]){B, T, H * D});
    make(&v, 3, (int64_t[]){B, T, H * Dv});
    if (mask_ndim >= 0) {
        make(&mask, mask_ndim, mask_dims);
        float *m = mask.data;
        for (int64_t i = 0; i < tdm_tensor_numel(&mask); i++)
            m[i] = i % 5 == 1 ? -10000.f : m[i];
        if (neg_inf_row)
            for (int64_t i = 0; i < mask_dims[mask_ndim - 1]; i++)
                m[i] = -INFINITY;
    }
    double scale = explicit_scale ? 0.3 : 1.0 / sqrt((double)D);
    size_t n = (size_t)(B * S * H * Dv);
    double *want = malloc(sizeof(double) * n);
    assert_non_null(want);
    ref_attention(&q, &k, &v, mask_ndim >= 0 ? &mask : NULL, H, scale, want);
    tdm_node node;
    op_node_init(&node, "Attention", "tandem", 1, mask_ndim >= 0 ? 4 : 3, 1);
    op_attr_int(&node, "num_heads", H);
    if (explicit_scale)
        op_attr_float(&node, "scale", 0.3f);
    const tdm_tensor *ins[4] = {&q, &k, &v, &mask};
    for (int p = 0; p < 3; p++) {
        tdm_tensor out[1];
        tdm_err err = {{0}};
        if (op_run(&node, ins, mask_ndim >= 0 ? 4 : 3, out, 1, g_pools[p], &err) != TDM_OK)
            fail_msg("Attention failed: %s", err.msg);
        assert_int_equal(out[0].ndim, 3);
        assert_int_equal(out[0].dims[0], B);
        assert_int_equal(out[0].dims[1], S);
        assert_int_equal(out[0].dims[2], H * Dv);
        const float *o = out[0].data;
        for (size_t i = 0; i < n; i++)
            if (!(fabs(o[i] - want[i]) <= 2e-5))
                fail_msg("Attention B=%lld S=%lld T=%lld H=%lld D=%lld mask rank %d: "
                         "element %zu = %.8g, want %.8g",
                         (long long)B, (long long)S, (long long)T, (long long)H, (long long)D,
                         mask_ndim, i, o[i], want[i]);
        tdm_tensor_free(&out[0]);
    }
    tdm_node_clear(&node);
    free(want);
    tdm_tensor_free(&q);
    tdm_tensor_free(&k);
    tdm_tensor_free(&v);
    if (mask_ndim >= 0)
        tdm_tensor_free(&mask);
}

static void test_attention(void **state)
{
    (void)state;
    run_attention_case(2, 5, 7, 3, 4, 4, -1, NULL, false, false);
    run_attention_case(2, 5, 7, 3, 4, 2, 4, (int64_t[]){2, 1, 1, 7}, false, false);
    run_attention_case(2, 5, 7, 3, 4, 4, 4, (int64_t[]){2, 3, 5, 7}, true, false);
    run_attention_case(1, 9, 9, 2, 8, 8, 2, (int64_t[]){9, 9}, false, false);
    run_attention_case(1, 9, 9, 2, 8, 8, 1, (int64_t[]){1}, false, false);
    run_attention_case(2, 4, 6, 2, 3, 3, 3, (int64_t[]){2, 1, 6}, false, true);
    run_attention_case(1, 33, 50, 12, 32, 32, 4, (int64_t[]){1, 1, 1, 50}, false, false);
    /* S x T above the block size: query rows are processed in blocks */
    run_attention_case(1, 300, 260, 1, 8, 5, 4, (int64_t[]){1, 1, 300, 260}, false, false);
}

/* A run-time divisor (input 4) divides the scores: same as scale = 1/sqrt(D)/divisor. */
static void test_attention_divisor(void **state)
{
    (void)state;
    tdm_tensor q, k, v, div;
    make(&q, 3, (int64_t[]){2, 6, 8});
    make(&k, 3, (int64_t[]){2, 5, 8});
    make(&v, 3, (int64_t[]){2, 5, 8});
    assert_int_equal(tdm_tensor_make(&div, TDM_DTYPE_FLOAT32, 0, NULL, NULL), TDM_OK);
    *(float *)div.data = 2.5f;
    tdm_node a, b;
    op_node_init(&a, "Attention", "tandem", 1, 5, 1);
    op_attr_int(&a, "num_heads", 2);
    op_node_init(&b, "Attention", "tandem", 1, 3, 1);
    op_attr_int(&b, "num_heads", 2);
    op_attr_float(&b, "scale", (float)(1.0 / sqrt(4.0) / 2.5));
    tdm_tensor oa[1], ob[1];
    tdm_err err = {{0}};
    assert_int_equal(
        op_run(&a, (const tdm_tensor *[]){&q, &k, &v, NULL, &div}, 5, oa, 1, NULL, &err), TDM_OK);
    assert_int_equal(op_run(&b, (const tdm_tensor *[]){&q, &k, &v}, 3, ob, 1, NULL, &err), TDM_OK);
    const float *x = oa[0].data, *y = ob[0].data;
    for (int64_t i = 0; i < tdm_tensor_numel(&oa[0]); i++)
        assert_float_equal(x[i], y[i], 1e-6);
    tdm_tensor_free(&oa[0]);
    tdm_tensor_free(&ob[0]);
    tdm_node_clear(&a);
    tdm_node_clear(&b);
    tdm_tensor_free(&q);
    tdm_tensor_free(&k);
    tdm_tensor_free(&v);
    tdm_tensor_free(&div);
}

static void test_attention_errors(void **state)
{
    (void)state;
    tdm_tensor q, k, v, mask;
    make(&q, 3, (int64_t[]){1, 4, 6});
    make(&k, 3, (int64_t[]){1, 5, 6});
    make(&v, 3, (int64_t[]){1, 5, 6});
    make(&mask, 2, (int64_t[]){3, 5});
    char msg[TDM_ERR_MSG_MAX];
    tdm_node node;
    op_node_init(&node, "Attention", "tandem", 1, 4, 1);
    op_attr_int(&node, "num_heads", 4); /* 6 is not a multiple of 4 */
    assert_int_equal(run_status("Attention", "tandem", (const tdm_tensor *[]){&q, &k, &v, NULL}, 4,
                                &node, msg, sizeof msg),
                     TDM_ERR_SHAPE);
    tdm_node_clear(&node);
    op_node_init(&node, "Attention", "tandem", 1, 4, 1);
    op_attr_int(&node, "num_heads", 2);
    assert_int_equal(run_status("Attention", "tandem", (const tdm_tensor *[]){&q, &k, &v, &mask}, 4,
                                &node, msg, sizeof msg),
                     TDM_ERR_SHAPE); /* mask rows 3 vs S = 4 */
    assert_non_null(strstr(msg, "mask"));
    tdm_node_clear(&node);
    op_node_init(&node, "Attention", "tandem", 1, 3, 1); /* num_heads missing */
    assert_int_equal(run_status("Attention", "tandem", (const tdm_tensor *[]){&q, &k, &v}, 3, &node,
                                msg, sizeof msg),
                     TDM_ERR_INVALID_ARG);
    tdm_node_clear(&node);
    tdm_tensor_free(&q);
    tdm_tensor_free(&k);
    tdm_tensor_free(&v);
    tdm_tensor_free(&mask);
}

/* ---- LayerNormalization ----------------------------------------------------------------- */

static void run_ln_case(int ndim, const int64_t *dims, int axis, int s_ndim, const int64_t *sdims,
                        bool with_bias, float offset)
{
    tdm_tensor x, sc, b;
    make(&x, ndim, dims);
    float *xp = x.data;
    for (int64_t i = 0; i < tdm_tensor_numel(&x); i++)
        xp[i] = xp[i] * 0.01f + offset; /* large mean, small spread: tests cancellation */
    make(&sc, s_ndim, sdims);
    make(&b, s_ndim, sdims);
    int a = axis < 0 ? axis + ndim : axis;
    int64_t rows = 1, n = 1;
    for (int d = 0; d < ndim; d++) {
        if (d < a)
            rows *= dims[d];
        else
            n *= dims[d];
    }
    double *want = malloc(sizeof(double) * (size_t)(rows * n));
    double *wmean = malloc(sizeof(double) * (size_t)rows),
           *winv = malloc(sizeof(double) * (size_t)rows);
    assert_non_null(want);
    assert_non_null(wmean);
    assert_non_null(winv);
    const float *S = sc.data, *Bp = b.data;
    for (int64_t r = 0; r < rows; r++) {
        double mu = 0, var = 0;
        for (int64_t i = 0; i < n; i++)
            mu += xp[r * n + i];
        mu /= (double)n;
        for (int64_t i = 0; i < n; i++)
            var += (xp[r * n + i] - mu) * (xp[r * n + i] - mu);
        var /= (double)n;
        double inv = 1.0 / sqrt(var + 1e-5);
        wmean[r] = mu;
        winv[r] = inv;
        for (int64_t i = 0; i < n; i++) {
            /* Scale/B right-aligned to the normalised axes, size-1 axes broadcast */
            int64_t rem = i, off = 0, st = 1;
            for (int d = ndim - 1; d >= a; d--) {
                int64_t idx = rem % dims[d];
                rem /= dims[d];
                int sd = s_ndim - (ndim - d);
                if (sd >= 0) {
                    if (sdims[sd] != 1)
                        off += idx * st;
                    st *= sdims[sd];
                }
            }
            want[r * n + i] = (xp[r * n + i] - mu) * inv * S[off] + (with_bias ? Bp[off] : 0);
        }
    }
    tdm_node node;
    op_node_init(&node, "LayerNormalization", "", 17, with_bias ? 3 : 2, 3);
    op_attr_int(&node, "axis", axis);
    const tdm_tensor *ins[3] = {&x, &sc, &b};
    for (int p = 0; p < 3; p++) {
        tdm_tensor out[3];
        tdm_err err = {{0}};
        if (op_run(&node, ins, with_bias ? 3 : 2, out, 3, g_pools[p], &err) != TDM_OK)
            fail_msg("LayerNormalization failed: %s", err.msg);
        assert_int_equal(out[0].ndim, ndim);
        assert_int_equal(out[1].ndim, ndim);
        for (int d = 0; d < ndim; d++)
            assert_int_equal(out[1].dims[d], d < a ? dims[d] : 1);
        const float *y = out[0].data, *m = out[1].data, *iv = out[2].data;
        for (int64_t i = 0; i < rows * n; i++)
            if (!(fabs(y[i] - want[i]) <= 2e-3 * (1 + fabs(want[i]))))
                fail_msg("LayerNorm axis %d: y[%lld] = %.8g, want %.8g", axis, (long long)i, y[i],
                         want[i]);
        for (int64_t r = 0; r < rows; r++) {
            assert_true(fabs(m[r] - wmean[r]) <= 1e-6 * (1 + fabs(wmean[r])));
            assert_true(fabs(iv[r] - winv[r]) <= 2e-3 * winv[r]);
        }
        for (int o = 0; o < 3; o++)
            tdm_tensor_free(&out[o]);
    }
    tdm_node_clear(&node);
    free(want);
    free(wmean);
    free(winv);
    tdm_tensor_free(&x);
    tdm_tensor_free(&sc);
    tdm_tensor_free(&b);
}

static void test_layernorm(void **state)
{
    (void)state;
    run_ln_case(3, (int64_t[]){2, 3, 5}, -1, 1, (int64_t[]){5}, true, 0.f);
    run_ln_case(3, (int64_t[]){2, 3, 5}, 1, 2, (int64_t[]){3, 5}, false, 0.f);
    run_ln_case(3, (int64_t[]){2, 3, 5}, 0, 3, (int64_t[]){2, 3, 5}, true, 0.f);
    run_ln_case(3, (int64_t[]){2, 3, 5}, 1, 2, (int64_t[]){1, 5}, true, 0.f); /* broadcast */
    run_ln_case(2, (int64_t[]){128, 384}, -1, 1, (int64_t[]){384}, true, 1000.f);
    run_ln_case(2, (int64_t[]){7, 37}, -1, 1, (int64_t[]){37}, true, -3.f);
    run_ln_case(2, (int64_t[]){3, 1000}, 1, 1, (int64_t[]){1000}, false, 50.f);
}

/* Each row kernel the CPU has, directly, on every tail length. */
static void test_layernorm_kernels(void **state)
{
    (void)state;
    float x[3 * 70], y[3 * 70], sc[70], bi[70], mean[3], inv[3];
    for (int i = 0; i < 3 * 70; i++)
        x[i] = rndf() + (float)(i % 3);
    for (int i = 0; i < 70; i++) {
        sc[i] = rndf();
        bi[i] = rndf();
    }
    for (int level = 0; level <= 2; level++) {
        tdm_ln_rows_fn fn = tdm_ln_rows_get(level);
        if (fn == NULL)
            continue;
        for (int n = 1; n <= 70; n++) {
            fn(x, y, 3, n, sc, bi, 1e-5f, mean, inv);
            for (int r = 0; r < 3; r++) {
                double mu = 0, var = 0;
                for (int i = 0; i < n; i++)
                    mu += x[r * n + i];
                mu /= n;
                for (int i = 0; i < n; i++)
                    var += (x[r * n + i] - mu) * (x[r * n + i] - mu);
                var /= n;
                double iv = 1.0 / sqrt(var + 1e-5);
                assert_true(fabs(mean[r] - mu) < 1e-5);
                assert_true(fabs(inv[r] - iv) < 1e-4 * iv);
                for (int i = 0; i < n; i++) {
                    double w = (x[r * n + i] - mu) * iv * sc[i] + bi[i];
                    if (!(fabs(y[r * n + i] - w) < 1e-4 * (1 + fabs(w))))
                        fail_msg("level %d n %d: y = %g want %g", level, n, y[r * n + i], w);
                }
            }
        }
    }
}

static void test_layernorm_errors(void **state)
{
    (void)state;
    tdm_tensor x, sc;
    make(&x, 2, (int64_t[]){3, 4});
    make(&sc, 1, (int64_t[]){3});
    char msg[TDM_ERR_MSG_MAX];
    tdm_node node;
    op_node_init(&node, "LayerNormalization", "", 17, 2, 1);
    assert_int_equal(run_status("LayerNormalization", "", (const tdm_tensor *[]){&x, &sc}, 2, &node,
                                msg, sizeof msg),
                     TDM_ERR_SHAPE);
    assert_non_null(strstr(msg, "Scale"));
    tdm_node_clear(&node);
    op_node_init(&node, "LayerNormalization", "", 17, 2, 1);
    op_attr_int(&node, "axis", 2);
    assert_int_equal(run_status("LayerNormalization", "", (const tdm_tensor *[]){&x, &sc}, 2, &node,
                                msg, sizeof msg),
                     TDM_ERR_INVALID_ARG);
    tdm_node_clear(&node);
    tdm_tensor_free(&x);
    tdm_tensor_free(&sc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matmul_shapes),
        cmocka_unit_test(test_matmul_errors),
        cmocka_unit_test(test_gemm_variants),
        cmocka_unit_test(test_gemm_errors),
        cmocka_unit_test(test_fused_matmul),
        cmocka_unit_test(test_fused_matmul_residual),
        cmocka_unit_test(test_fused_matmul_residual_broadcast),
        cmocka_unit_test(test_fused_matmul_errors),
        cmocka_unit_test(test_attention),
        cmocka_unit_test(test_attention_divisor),
        cmocka_unit_test(test_attention_errors),
        cmocka_unit_test(test_layernorm),
        cmocka_unit_test(test_layernorm_kernels),
        cmocka_unit_test(test_layernorm_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

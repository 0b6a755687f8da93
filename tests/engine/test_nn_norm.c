/*
 * BatchNormalization (inference) and InstanceNormalization against the
 * textbook formulas evaluated in double, plus the ONNX backend example
 * values, the spatial=0 form of old opsets, fused activation and errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "op_harness.h"

static uint32_t g_seed = 4242u;

static float frand(void)
{
    g_seed = g_seed * 1664525u + 1013904223u;
    return (float)((g_seed >> 8) & 0xffff) / 32768.f - 1.f;
}

static void make_rand(tdm_tensor *t, int ndim, const int64_t *dims, float lo, float hi)
{
    assert_int_equal(tdm_tensor_make(t, TDM_DTYPE_FLOAT32, ndim, dims, NULL), TDM_OK);
    float *p = t->data;
    for (int64_t i = 0; i < tdm_tensor_numel(t); i++)
        p[i] = lo + (hi - lo) * (frand() + 1.f) * 0.5f;
}

static void check_bn(int ndim, const int64_t *dims, float eps, const char *act, tdm_pool *pool)
{
    tdm_tensor x, sc, b, mean, var;
    int64_t c = dims[1];
    make_rand(&x, ndim, dims, -3.f, 3.f);
    make_rand(&sc, 1, &c, -2.f, 2.f);
    make_rand(&b, 1, &c, -1.f, 1.f);
    make_rand(&mean, 1, &c, -1.f, 1.f);
    make_rand(&var, 1, &c, 0.f, 2.f);
    tdm_node node;
    op_node_init(&node, "BatchNormalization", "", 15, 5, 1);
    if (eps != 1e-5f)
        op_attr_float(&node, "epsilon", eps);
    if (act != NULL)
        op_attr_str(&node, "tdm_activation", act);
    const tdm_tensor *ins[5] = {&x, &sc, &b, &mean, &var};
    tdm_tensor y[1];
    tdm_err err = {{0}};
    if (op_run(&node, ins, 5, y, 1, pool, &err) != TDM_OK)
        fail_msg("%s", err.msg);
    assert_true(tdm_tensor_same_shape(&y[0], &x));
    int64_t vol = tdm_tensor_numel(&x) / (dims[0] * c);
    const float *xp = x.data, *yp = y[0].data, *s = sc.data, *bb = b.data, *m = mean.data,
                *v = var.data;
    for (int64_t i = 0; i < tdm_tensor_numel(&x); i++) {
        int64_t ch = (i / vol) % c;
        double want = (xp[i] - m[ch]) / sqrt((double)v[ch] + eps) * s[ch] + bb[ch];
        if (act != NULL && want < 0)
            want = 0;
        if (!(fabs(yp[i] - want) <= 1e-4 * (1 + fabs(want))))
            fail_msg("BN element %lld: %g vs %g", (long long)i, (double)yp[i], want);
    }
    tdm_tensor_free(&y[0]);
    tdm_tensor_free(&x);
    tdm_tensor_free(&sc);
    tdm_tensor_free(&b);
    tdm_tensor_free(&mean);
    tdm_tensor_free(&var);
    tdm_node_clear(&node);
}

static void test_batchnorm(void **state)
{
    (void)state;
    tdm_pool *pool = NULL;
    assert_int_equal(tdm_pool_create(3, &pool, NULL), TDM_OK);
    check_bn(4, (int64_t[]){2, 3, 4, 5}, 1e-5f, NULL, NULL);
    check_bn(4, (int64_t[]){1, 16, 9, 9}, 1e-2f, NULL, pool);
    check_bn(4, (int64_t[]){3, 5, 7, 1}, 1e-5f, "Relu", pool);
    check_bn(2, (int64_t[]){6, 7}, 1e-3f, NULL, NULL);
    check_bn(3, (int64_t[]){2, 4, 33}, 1e-5f, NULL, pool);
    check_bn(5, (int64_t[]){1, 2, 3, 4, 5}, 1e-5f, NULL, NULL);
    tdm_pool_free(pool);
}

/* The worked example of the ONNX BatchNormalization documentation. */
static void test_batchnorm_onnx_example(void **state)
{
    (void)state;
    tdm_tensor x, sc, b, mean, var;
    int64_t xd[4] = {1, 2, 1, 3}, cd[1] = {2};
    assert_int_equal(tdm_tensor_make(&x, TDM_DTYPE_FLOAT32, 4, xd, NULL), TDM_OK);
    tdm_tensor_make(&sc, TDM_DTYPE_FLOAT32, 1, cd, NULL);
    tdm_tensor_make(&b, TDM_DTYPE_FLOAT32, 1, cd, NULL);
    tdm_tensor_make(&mean, TDM_DTYPE_FLOAT32, 1, cd, NULL);
    tdm_tensor_make(&var, TDM_DTYPE_FLOAT32, 1, cd, NULL);
    static const float xv[6] = {-1, 0, 1, 2, 3, 4};
    memcpy(x.data, xv, sizeof xv);
    memcpy(sc.data, (float[]){1.f, 1.5f}, 8);
    memcpy(b.data, (float[]){0.f, 1.f}, 8);
    memcpy(mean.data, (float[]){0.f, 3.f}, 8);
    memcpy(var.data, (float[]){1.f, 1.5f}, 8);
    tdm_node node;
    op_node_init(&node, "BatchNormalization", "", 15, 5, 1);
    const tdm_tensor *ins[5] = {&x, &sc, &b, &mean, &var};
    tdm_tensor y[1];
    assert_int_equal(op_run(&node, ins, 5, y, 1, NULL, NULL), TDM_OK);
    static const float want[6] = {-0.999995f, 0.f, 0.999995f, -0.22474074f, 1.f, 2.2247407f};
    for (int i = 0; i < 6; i++)
        assert_float_equal(((float *)y[0].data)[i], want[i], 1e-5);
    tdm_tensor_free(&y[0]);
    tdm_tensor_free(&x);
    tdm_tensor_free(&sc);
    tdm_tensor_free(&b);
    tdm_tensor_free(&mean);
    tdm_tensor_free(&var);
    tdm_node_clear(&node);
}

/* Opset 7 with spatial=0: one parameter per (channel, position). */
static void test_batchnorm_spatial0(void **state)
{
    (void)state;
    tdm_tensor x, p[4];
    int64_t xd[4] = {2, 3, 2, 2}, pd[3] = {3, 2, 2};
    make_rand(&x, 4, xd, -2.f, 2.f);
    for (int i = 0; i < 4; i++)
        make_rand(&p[i], 3, pd, i == 3 ? 0.1f : -1.f, 1.f);
    tdm_node node;
    op_node_init(&node, "BatchNormalization", "", 7, 5, 1);
    op_attr_int(&node, "spatial", 0);
    const tdm_tensor *ins[5] = {&x, &p[0], &p[1], &p[2], &p[3]};
    tdm_tensor y[1];
    tdm_err err = {{0}};
    if (op_run(&node, ins, 5, y, 1, NULL, &err) != TDM_OK)
        fail_msg("%s", err.msg);
    const float *xp = x.data, *yp = y[0].data;
    const float *s = p[0].data, *b = p[1].data, *m = p[2].data, *v = p[3].data;
    for (int64_t i = 0; i < 24; i++) {
        int64_t j = i % 12;
        double want = (xp[i] - m[j]) / sqrt((double)v[j] + 1e-5) * s[j] + b[j];
        assert_float_equal(yp[i], want, 1e-4);
    }
    tdm_tensor_free(&y[0]);
    tdm_tensor_free(&x);
    for (int i = 0; i < 4; i++)
        tdm_tensor_free(&p[i]);
    tdm_node_clear(&node);
}

static void test_batchnorm_errors(void **state)
{
    (void)state;
    tdm_tensor x, c3, c4, ci;
    int64_t xd[4] = {1, 3, 2, 2}, d3[1] = {3}, d4[1] = {4};
    make_rand(&x, 4, xd, -1.f, 1.f);
    make_rand(&c3, 1, d3, 0.5f, 1.f);
    make_rand(&c4, 1, d4, 0.5f, 1.f);
    assert_int_equal(tdm_tensor_make(&ci, TDM_DTYPE_INT32, 1, d3, NULL), TDM_OK);
    tdm_err err = {{0}};
    tdm_tensor y[3];
    tdm_node node;

    op_node_init(&node, "BatchNormalization", "", 15, 5, 3);
    op_attr_int(&node, "training_mode", 1);
    const tdm_tensor *ok[5] = {&x, &c3, &c3, &c3, &c3};
    assert_int_equal(op_run(&node, ok, 5, y, 3, NULL, &err), TDM_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "training_mode"));
    tdm_node_clear(&node);

    op_node_init(&node, "BatchNormalization", "", 15, 5, 1);
    const tdm_tensor *bad[5] = {&x, &c3, &c4, &c3, &c3};
    assert_int_equal(op_run(&node, bad, 5, y, 1, NULL, &err), TDM_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "bias B"));
    const tdm_tensor *bad_dt[5] = {&x, &c3, &c3, &ci, &c3};
    assert_int_equal(op_run(&node, bad_dt, 5, y, 1, NULL, &err), TDM_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "int32"));
    const tdm_tensor *missing[5] = {&x, &c3, NULL, &c3, &c3};
    assert_int_equal(op_run(&node, missing, 5, y, 1, NULL, &err), TDM_ERR_INVALID_ARG);
    tdm_node_clear(&node);

    op_node_init(&node, "InstanceNormalization", "", 6, 3, 1);
    const tdm_tensor *ibad[3] = {&x, &c4, &c3};
    assert_int_equal(op_run(&node, ibad, 3, y, 1, NULL, &err), TDM_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "scale"));
    tdm_node_clear(&node);

    tdm_tensor_free(&x);
    tdm_tensor_free(&c3);
    tdm_tensor_free(&c4);
    tdm_tensor_free(&ci);
}

/* Old opsets may name the statistics outputs; in inference they carry the inputs. */
static void test_batchnorm_extra_outputs(void **state)
{
    (void)state;
    tdm_tensor x, c[4];
    int64_t xd[4] = {2, 3, 2, 2}, cd[1] = {3};
    make_rand(&x, 4, xd, -1.f, 1.f);
    for (int i = 0; i < 4; i++)
        make_rand(&c[i], 1, cd, 0.5f, 1.f);
    tdm_node node;
    op_node_init(&node, "BatchNormalization", "", 9, 5, 3);
    const tdm_tensor *ins[5] = {&x, &c[0], &c[1], &c[2], &c[3]};
    tdm_tensor y[3];
    assert_int_equal(op_run(&node, ins, 5, y, 3, NULL, NULL), TDM_OK);
    assert_memory_equal(y[1].data, c[2].data, 12);
    assert_memory_equal(y[2].data, c[3].data, 12);
    for (int i = 0; i < 3; i++)
        tdm_tensor_free(&y[i]);
    tdm_tensor_free(&x);
    for (int i = 0; i < 4; i++)
        tdm_tensor_free(&c[i]);
    tdm_node_clear(&node);
}

static void check_in(int ndim, const int64_t *dims, float eps, float offset, tdm_pool *pool)
{
    tdm_tensor x, sc, b;
    int64_t c = dims[1];
    make_rand(&x, ndim, dims, offset - 2.f, offset + 2.f);
    make_rand(&sc, 1, &c, -2.f, 2.f);
    make_rand(&b, 1, &c, -1.f, 1.f);
    tdm_node node;
    op_node_init(&node, "InstanceNormalization", "", 6, 3, 1);
    op_attr_float(&node, "epsilon", eps);
    const tdm_tensor *ins[3] = {&x, &sc, &b};
    tdm_tensor y[1];
    tdm_err err = {{0}};
    if (op_run(&node, ins, 3, y, 1, pool, &err) != TDM_OK)
        fail_msg("%s", err.msg);
    int64_t planes = dims[0] * c, vol = tdm_tensor_numel(&x) / planes;
    const float *xp = x.data, *yp = y[0].data, *s = sc.data, *bb = b.data;
    for (int64_t p = 0; p < planes; p++) {
        double mean = 0, var = 0;
        for (int64_t i = 0; i < vol; i++)
            mean += xp[p * vol + i];
        mean /= (double)vol;
        for (int64_t i = 0; i < vol; i++)
            var += (xp[p * vol + i] - mean) * (xp[p * vol + i] - mean);
        var /= (double)vol;
        int64_t ch = p % c;
        for (int64_t i = 0; i < vol; i++) {
            double want = (xp[p * vol + i] - mean) / sqrt(var + eps) * s[ch] + bb[ch];
            if (!(fabs(yp[p * vol + i] - want) <= 2e-4 * (1 + fabs(want))))
                fail_msg("InstanceNorm plane %lld element %lld: %g vs %g", (long long)p,
                         (long long)i, (double)yp[p * vol + i], want);
        }
    }
    tdm_tensor_free(&y[0]);
    tdm_tensor_free(&x);
    tdm_tensor_free(&sc);
    tdm_tensor_free(&b);
    tdm_node_clear(&node);
}

static void test_instancenorm(void **state)
{
    (void)state;
    tdm_pool *pool = NULL;
    assert_int_equal(tdm_pool_create(2, &pool, NULL), TDM_OK);
    check_in(4, (int64_t[]){2, 3, 4, 5}, 1e-5f, 0.f, NULL);
    check_in(4, (int64_t[]){1, 8, 17, 19}, 1e-2f, 0.f, pool);
    check_in(3, (int64_t[]){3, 2, 7}, 1e-5f, 0.f, pool);
    check_in(5, (int64_t[]){1, 2, 3, 4, 5}, 1e-5f, 0.f, NULL);
    /* A large common offset: the two-pass variance keeps its precision. */
    check_in(4, (int64_t[]){1, 2, 32, 32}, 1e-5f, 1000.f, NULL);
    tdm_pool_free(pool);
}

/* A constant plane has zero variance: the output is the bias. */
static void test_instancenorm_constant(void **state)
{
    (void)state;
    tdm_tensor x, sc, b;
    int64_t xd[4] = {1, 2, 3, 3}, cd[1] = {2};
    tdm_tensor_make(&x, TDM_DTYPE_FLOAT32, 4, xd, NULL);
    tdm_tensor_make(&sc, TDM_DTYPE_FLOAT32, 1, cd, NULL);
    tdm_tensor_make(&b, TDM_DTYPE_FLOAT32, 1, cd, NULL);
    for (int i = 0; i < 18; i++)
        ((float *)x.data)[i] = 5.f;
    memcpy(sc.data, (float[]){2.f, 3.f}, 8);
    memcpy(b.data, (float[]){0.5f, -0.5f}, 8);
    tdm_node node;
    op_node_init(&node, "InstanceNormalization", "", 6, 3, 1);
    const tdm_tensor *ins[3] = {&x, &sc, &b};
    tdm_tensor y[1];
    assert_int_equal(op_run(&node, ins, 3, y, 1, NULL, NULL), TDM_OK);
    for (int i = 0; i < 18; i++)
        assert_float_equal(((float *)y[0].data)[i], i < 9 ? 0.5f : -0.5f, 1e-6);
    tdm_tensor_free(&y[0]);
    tdm_tensor_free(&x);
    tdm_tensor_free(&sc);
    tdm_tensor_free(&b);
    tdm_node_clear(&node);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batchnorm),
        cmocka_unit_test(test_batchnorm_onnx_example),
        cmocka_unit_test(test_batchnorm_spatial0),
        cmocka_unit_test(test_batchnorm_errors),
        cmocka_unit_test(test_batchnorm_extra_outputs),
        cmocka_unit_test(test_instancenorm),
        cmocka_unit_test(test_instancenorm_constant),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

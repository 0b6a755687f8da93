/*
 * Softmax, LogSoftmax and Hardmax against a double-precision reference that
 * gathers each normalised group by explicit index arithmetic, for every
 * axis under both axis semantics (opset 11 coerces to 2-D, opset 13 takes
 * one axis), with large and -inf inputs, column blocks wider than the
 * kernel's block, float16/float64, the pool, and the errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <float.h>

#include "base/pool.h"
#include "engine/math_test_util.h"

/* Element i of x belongs to group g; groups are the coerced rows (legacy)
 * or the lines along axis. */
static void ref_softmax(int kind, const float *x, float *want, int nd, const int64_t *dims,
                        int axis, bool legacy)
{
    int64_t outer = 1, R = 1, inner = 1;
    for (int d = 0; d < nd; d++) {
        if (d < axis)
            outer *= dims[d];
        else if (d == axis || legacy)
            R *= dims[d];
        else
            inner *= dims[d];
    }
    for (int64_t o = 0; o < outer; o++) {
        for (int64_t c = 0; c < inner; c++) {
            double m = -INFINITY, s = 0;
            int64_t arg = 0;
            for (int64_t r = 0; r < R; r++) {
                double v = x[(o * R + r) * inner + c];
                if (v > m) {
                    m = v;
                    arg = r;
                }
            }
            for (int64_t r = 0; r < R; r++)
                s += exp(x[(o * R + r) * inner + c] - m);
            for (int64_t r = 0; r < R; r++) {
                int64_t i = (o * R + r) * inner + c;
                double v = x[i];
                want[i] = kind == 0   ? (float)(exp(v - m) / s)
                          : kind == 1 ? (float)(v - m - log(s))
                                      : (float)(r == arg);
            }
        }
    }
}

static const char *const k_names[] = {"Softmax", "LogSoftmax", "Hardmax"};

static void check(int kind, const tdm_tensor *x, int axis, int opset, tdm_pool *pool)
{
    tdm_node n;
    op_node_init(&n, k_names[kind], "", opset, 1, 1);
    op_attr_int(&n, "axis", axis);
    const tdm_tensor *ins[1] = {x};
    tdm_tensor y;
    tdm_err err;
    if (mt_run(&n, ins, 1, &y, 1, pool, &err) != TDM_OK)
        fail_msg("%s: %s", k_names[kind], err.msg);
    int64_t n_el = tdm_tensor_numel(x);
    float *want = malloc((size_t)(n_el + 1) * sizeof *want);
    assert_non_null(want);
    ref_softmax(kind, x->data, want, x->ndim, x->dims, axis < 0 ? axis + x->ndim : axis,
                opset < 13);
    for (int64_t i = 0; i < n_el; i++) {
        float got = ((float *)y.data)[i];
        /* LogSoftmax: log of a float sum near 1 is good to an ulp of 1, absolutely */
        if (!mt_close(got, want[i], 2e-6, kind == 1 ? 3e-7 : 1e-7))
            fail_msg("%s axis %d opset %d elem %lld: got %.9g want %.9g", k_names[kind], axis,
                     opset, (long long)i, got, want[i]);
    }
    free(want);
    tdm_tensor_free(&y);
    mt_node_free(&n);
}

static void test_axes_and_opsets(void **state)
{
    (void)state;
    mt_rng rng = {5};
    const int64_t dims[4] = {2, 3, 4, 5};
    tdm_tensor x = mt_rand_f32(&rng, 4, dims, -5, 5);
    for (int kind = 0; kind < 3; kind++)
        for (int axis = -4; axis < 4; axis++) {
            check(kind, &x, axis, 11, NULL);
            check(kind, &x, axis, 13, NULL);
        }
    tdm_tensor_free(&x);
    /* default axis: 1 before opset 13, -1 after */
    const int64_t d2[2] = {3, 4};
    x = mt_rand_f32(&rng, 2, d2, -1, 1);
    tdm_node n;
    op_node_init(&n, "Softmax", "", 13, 1, 1);
    const tdm_tensor *ins[1] = {&x};
    tdm_tensor y;
    tdm_err err;
    assert_int_equal(mt_run(&n, ins, 1, &y, 1, NULL, &err), TDM_OK);
    float want[12];
    ref_softmax(0, x.data, want, 2, d2, 1, false);
    for (int i = 0; i < 12; i++)
        assert_true(mt_close(((float *)y.data)[i], want[i], 2e-6, 1e-7));
    tdm_tensor_free(&y);
    mt_node_free(&n);
    tdm_tensor_free(&x);
}

static void test_wide_and_extreme(void **state)
{
    (void)state;
    mt_rng rng = {6};
    /* more inner columns than one kernel block, and an odd count */
    const int64_t d[3] = {3, 4, 1037};
    tdm_tensor x = mt_rand_f32(&rng, 3, d, -20, 20);
    for (int kind = 0; kind < 3; kind++) {
        check(kind, &x, 1, 13, NULL);
        check(kind, &x, 2, 13, NULL);
        check(kind, &x, 0, 13, NULL);
    }
    tdm_tensor_free(&x);
    /* large values: stable; -inf entries: zero probability */
    const float big[8] = {1000, 1001, 1002, 999, -INFINITY, 0, -INFINITY, 3};
    const int64_t d2[2] = {2, 4};
    x = mt_tensor(TDM_DTYPE_FLOAT32, 2, d2, big);
    check(0, &x, 1, 13, NULL);
    check(1, &x, 1, 13, NULL);
    check(0, &x, 0, 13, NULL);
    check(1, &x, 0, 13, NULL);
    tdm_tensor_free(&x);
}

static void test_dtypes(void **state)
{
    (void)state;
    const float v[6] = {0.5f, -1, 2, 3, 3, -4};
    const int64_t d[2] = {2, 3};
    float want[6];
    ref_softmax(0, v, want, 2, d, 1, false);
    uint16_t h[6];
    for (int i = 0; i < 6; i++)
        h[i] = tdm_fp32_to_fp16(v[i]);
    tdm_tensor xh = mt_tensor(TDM_DTYPE_FLOAT16, 2, d, h);
    tdm_tensor xd = mt_tensor(TDM_DTYPE_FLOAT64, 2, d, NULL);
    for (int i = 0; i < 6; i++)
        ((double *)xd.data)[i] = v[i];
    tdm_node n;
    op_node_init(&n, "Softmax", "", 13, 1, 1);
    const tdm_tensor *ins[1] = {&xh};
    tdm_tensor y;
    tdm_err err;
    assert_int_equal(mt_run(&n, ins, 1, &y, 1, NULL, &err), TDM_OK);
    assert_int_equal(y.dtype, TDM_DTYPE_FLOAT16);
    for (int i = 0; i < 6; i++)
        assert_true(mt_close(tdm_fp16_to_fp32(((uint16_t *)y.data)[i]), want[i], 1e-3, 1e-4));
    tdm_tensor_free(&y);
    ins[0] = &xd;
    assert_int_equal(mt_run(&n, ins, 1, &y, 1, NULL, &err), TDM_OK);
    for (int i = 0; i < 6; i++)
        assert_true(mt_close(((double *)y.data)[i], want[i], 1e-6, 1e-8));
    tdm_tensor_free(&y);
    mt_node_free(&n);
    /* Hardmax ties: the first maximum wins */
    op_node_init(&n, "Hardmax", "", 13, 1, 1);
    ins[0] = &xd;
    assert_int_equal(mt_run(&n, ins, 1, &y, 1, NULL, &err), TDM_OK);
    const double hm[6] = {0, 0, 1, 1, 0, 0};
    assert_memory_equal(y.data, hm, sizeof hm);
    tdm_tensor_free(&y);
    mt_node_free(&n);
    tdm_tensor_free(&xh);
    tdm_tensor_free(&xd);
}

static void test_parallel_and_errors(void **state)
{
    (void)state;
    tdm_pool *pool;
    tdm_err err;
    assert_int_equal(tdm_pool_create(4, &pool, &err), TDM_OK);
    mt_rng rng = {7};
    const int64_t d[2] = {96, 1500};
    tdm_tensor x = mt_rand_f32(&rng, 2, d, -8, 8);
    check(0, &x, 1, 13, pool);
    check(1, &x, 0, 13, pool);
    tdm_tensor_free(&x);
    tdm_pool_free(pool);

    const int64_t d3[3] = {2, 2, 2};
    tdm_tensor xi = mt_tensor(TDM_DTYPE_INT32, 3, d3, NULL);
    tdm_node n;
    op_node_init(&n, "Softmax", "", 13, 1, 1);
    const tdm_tensor *ins[1] = {&xi};
    tdm_tensor y;
    assert_int_equal(mt_run(&n, ins, 1, &y, 1, NULL, &err), TDM_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "int32"));
    tdm_tensor_free(&y);
    mt_node_free(&n);
    tdm_tensor xf = mt_tensor(TDM_DTYPE_FLOAT32, 3, d3, NULL);
    op_node_init(&n, "LogSoftmax", "", 13, 1, 1);
    op_attr_int(&n, "axis", -4);
    ins[0] = &xf;
    assert_int_equal(mt_run(&n, ins, 1, &y, 1, NULL, &err), TDM_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "axis -4"));
    tdm_tensor_free(&y);
    mt_node_free(&n);
    tdm_tensor_free(&xi);
    tdm_tensor_free(&xf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_axes_and_opsets),
        cmocka_unit_test(test_wide_and_extreme),
        cmocka_unit_test(test_dtypes),
        cmocka_unit_test(test_parallel_and_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * Cast and CastLike: the conversion rules of math_ops.h (truncation toward
 * zero, x86-defined results for NaN and out-of-range floats, wrapping
 * integer narrowing, bool as x != 0), half and bfloat16 rounding, and the
 * errors. Expected values are written out by hand.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <float.h>

#include "base/pool.h"
#include "engine/math_test_util.h"

static tdm_tensor cast(const tdm_tensor *x, tdm_dtype to, tdm_pool *pool)
{
    tdm_node n;
    op_node_init(&n, "Cast", "", 13, 1, 1);
    op_attr_int(&n, "to", to);
    const tdm_tensor *ins[1] = {x};
    tdm_tensor y;
    tdm_err err;
    if (mt_run(&n, ins, 1, &y, 1, pool, &err) != TDM_OK)
        fail_msg("Cast to %s: %s", tdm_dtype_name(to), err.msg);
    assert_int_equal(y.dtype, to);
    mt_node_free(&n);
    return y;
}

static const float k_src[] = {0.0f,          1.9f,  -1.9f, 127.5f,   128.0f,    -129.0f, 300.7f,
                              2147483648.0f, -3e9f, NAN,   INFINITY, -INFINITY, 1e20f,   -0.0f};
#define NSRC ((int64_t)(sizeof k_src / sizeof k_src[0]))

static void test_float_to_int(void **state)
{
    (void)state;
    int64_t d = NSRC;
    tdm_tensor x = mt_tensor(TDM_DTYPE_FLOAT32, 1, &d, k_src);

    tdm_tensor y = cast(&x, TDM_DTYPE_INT8, NULL);
    const int8_t i8[] = {0, 1, -1, 127, -128, 127, 44, 0, 0, 0, 0, 0, 0, 0};
    assert_memory_equal(y.data, i8, sizeof i8);
    tdm_tensor_free(&y);

    y = cast(&x, TDM_DTYPE_INT32, NULL);
    const int32_t i32[] = {0,         1,         -1,        127,       128,       -129,      300,
                           INT32_MIN, INT32_MIN, INT32_MIN, INT32_MIN, INT32_MIN, INT32_MIN, 0};
    assert_memory_equal(y.data, i32, sizeof i32);
    tdm_tensor_free(&y);

    y = cast(&x, TDM_DTYPE_INT64, NULL);
    const int64_t i64[] = {
        0,         1,         -1,        127,       128, -129, 300, 2147483648, -3000000000LL,
        INT64_MIN, INT64_MIN, INT64_MIN, INT64_MIN, 0};
    assert_memory_equal(y.data, i64, sizeof i64);
    tdm_tensor_free(&y);

    y = cast(&x, TDM_DTYPE_UINT8, NULL);
    const uint8_t u8[] = {0, 1, 255, 127, 128, 127, 44, 0, 0, 0, 0, 0, 0, 0};
    assert_memory_equal(y.data, u8, sizeof u8);
    tdm_tensor_free(&y);

    y = cast(&x, TDM_DTYPE_UINT32, NULL);
    const uint32_t u32[] = {
        0, 1, 0xffffffffu, 127, 128, 0xffffff7fu, 300, 0x80000000u, (uint32_t)(-3000000000LL),
        0, 0, 0,           0,   0};
    assert_memory_equal(y.data, u32, sizeof u32);
    tdm_tensor_free(&y);

    y = cast(&x, TDM_DTYPE_BOOL, NULL);
    const uint8_t b[] = {0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0};
    assert_memory_equal(y.data, b, sizeof b);
    tdm_tensor_free(&y);
    tdm_tensor_free(&x);

    const double big[] = {1e19, -1.0, 18446744073709551616.0, 9223372036854775807.0};
    int64_t d4 = 4;
    x = mt_tensor(TDM_DTYPE_FLOAT64, 1, &d4, big);
    y = cast(&x, TDM_DTYPE_UINT64, NULL);
    const uint64_t u64[] = {10000000000000000000ull, UINT64_MAX, 0x8000000000000000ull,
                            0x8000000000000000ull};
    assert_memory_equal(y.data, u64, sizeof u64);
    tdm_tensor_free(&y);
    tdm_tensor_free(&x);
}

static void test_int_conversions(void **state)
{
    (void)state;
    const int64_t v[] = {0, 255, 256, -1, INT64_MIN, INT64_MAX, 16777217};
    int64_t d = 7;
    tdm_tensor x = mt_tensor(TDM_DTYPE_INT64, 1, &d, v);
    tdm_tensor y = cast(&x, TDM_DTYPE_INT8, NULL);
    const int8_t i8[] = {0, -1, 0, -1, 0, -1, 1};
    assert_memory_equal(y.data, i8, sizeof i8);
    tdm_tensor_free(&y);
    y = cast(&x, TDM_DTYPE_UINT16, NULL);
    const uint16_t u16[] = {0, 255, 256, 65535, 0, 65535, 1};
    assert_memory_equal(y.data, u16, sizeof u16);
    tdm_tensor_free(&y);
    y = cast(&x, TDM_DTYPE_FLOAT32, NULL);
    const float f[] = {0,          255, 256, -1, -9223372036854775808.0f, 9223372036854775808.0f,
                       16777216.0f};
    assert_memory_equal(y.data, f, sizeof f);
    tdm_tensor_free(&y);
    y = cast(&x, TDM_DTYPE_BOOL, NULL);
    const uint8_t b[] = {0, 1, 1, 1, 1, 1, 1};
    assert_memory_equal(y.data, b, sizeof b);
    tdm_tensor_free(&y);
    y = cast(&x, TDM_DTYPE_INT64, NULL); /* same type: a copy */
    assert_memory_equal(y.data, v, sizeof v);
    tdm_tensor_free(&y);
    tdm_tensor_free(&x);

    const uint64_t u[] = {UINT64_MAX, 1};
    int64_t d2 = 2;
    x = mt_tensor(TDM_DTYPE_UINT64, 1, &d2, u);
    y = cast(&x, TDM_DTYPE_FLOAT64, NULL);
    assert_true(((double *)y.data)[0] == 18446744073709551616.0);
    tdm_tensor_free(&y);
    y = cast(&x, TDM_DTYPE_INT32, NULL);
    assert_int_equal(((int32_t *)y.data)[0], -1);
    tdm_tensor_free(&y);
    tdm_tensor_free(&x);

    const uint8_t bools[] = {0, 1, 2};
    int64_t d3 = 3;
    x = mt_tensor(TDM_DTYPE_BOOL, 1, &d3, bools);
    y = cast(&x, TDM_DTYPE_FLOAT32, NULL);
    const float bf[] = {0, 1, 2};
    assert_memory_equal(y.data, bf, sizeof bf);
    tdm_tensor_free(&y);
    y = cast(&x, TDM_DTYPE_BOOL, NULL); /* normalised to 0/1 */
    const uint8_t bb[] = {0, 1, 1};
    assert_memory_equal(y.data, bb, sizeof bb);
    tdm_tensor_free(&y);
    tdm_tensor_free(&x);
}

static void test_half_and_bfloat(void **state)
{
    (void)state;
    /* every half bit pattern survives half -> float -> half */
    int64_t d = 65536;
    tdm_tensor h = mt_tensor(TDM_DTYPE_FLOAT16, 1, &d, NULL);
    for (int i = 0; i < 65536; i++)
        ((uint16_t *)h.data)[i] = (uint16_t)i;
    tdm_tensor f = cast(&h, TDM_DTYPE_FLOAT32, NULL);
    tdm_tensor back = cast(&f, TDM_DTYPE_FLOAT16, NULL);
    for (int i = 0; i < 65536; i++) {
        uint16_t a = (uint16_t)i, b = ((uint16_t *)back.data)[i];
        bool nan = (a & 0x7c00) == 0x7c00 && (a & 0x3ff) != 0;
        if (nan)
            assert_true((b & 0x7c00) == 0x7c00 && (b & 0x3ff) != 0);
        else
            assert_int_equal(a, b);
    }
    tdm_tensor_free(&h);
    tdm_tensor_free(&f);
    tdm_tensor_free(&back);

    /* float -> half rounding: ties to even, overflow, subnormals */
    const float v[] = {1.0f + 0x1p-11f, 1.0f + 0x3p-11f, 65520.0f, 65519.0f,
                       0x1p-24f,        0x1p-26f,        -2.5f};
    const uint16_t want_h[] = {0x3c00, 0x3c02, 0x7c00, 0x7bff, 0x0001, 0x0000, 0xc100};
    int64_t dv = 7;
    tdm_tensor x = mt_tensor(TDM_DTYPE_FLOAT32, 1, &dv, v);
    tdm_tensor y = cast(&x, TDM_DTYPE_FLOAT16, NULL);
    assert_memory_equal(y.data, want_h, sizeof want_h);
    tdm_tensor_free(&y);

    /* float -> bfloat16: ties to even; NaN stays NaN */
    const float bv[] = {1.00390625f, 1.01171875f, -3.0f, NAN, INFINITY, 1.0f + 0x1p-9f};
    const uint16_t want_b[] = {0x3f80, 0x3f82, 0xc040, 0, 0x7f80, 0x3f80};
    int64_t db = 6;
    tdm_tensor xb = mt_tensor(TDM_DTYPE_FLOAT32, 1, &db, bv);
    y = cast(&xb, TDM_DTYPE_BFLOAT16, NULL);
    const uint16_t *pb = y.data;
    for (int i = 0; i < 6; i++) {
        if (i == 3)
            assert_true((pb[i] & 0x7f80) == 0x7f80 && (pb[i] & 0x7f) != 0);
        else
            assert_int_equal(pb[i], want_b[i]);
    }
    tdm_tensor back_f = cast(&y, TDM_DTYPE_FLOAT32, NULL);
    assert_true(((float *)back_f.data)[2] == -3.0f);
    tdm_tensor_free(&back_f);
    tdm_tensor_free(&y);
    tdm_tensor_free(&xb);
    tdm_tensor_free(&x);

    /* double -> float rounds, and overflows to inf */
    const double dd[] = {0.1, 1e300, -1e300, 1e-50};
    int64_t d4 = 4;
    x = mt_tensor(TDM_DTYPE_FLOAT64, 1, &d4, dd);
    y = cast(&x, TDM_DTYPE_FLOAT32, NULL);
    const float df[] = {0.1f, INFINITY, -INFINITY, 0.0f};
    assert_memory_equal(y.data, df, sizeof df);
    tdm_tensor_free(&y);
    tdm_tensor_free(&x);
}

static void test_castlike_and_errors(void **state)
{
    (void)state;
    const float v[] = {1.5f, -2.5f};
    int64_t d = 2;
    tdm_tensor x = mt_tensor(TDM_DTYPE_FLOAT32, 1, &d, v);
    tdm_tensor like = mt_tensor(TDM_DTYPE_INT32, 0, NULL, NULL);
    tdm_node n;
    op_node_init(&n, "CastLike", "", 15, 2, 1);
    const tdm_tensor *ins[2] = {&x, &like};
    tdm_tensor y;
    tdm_err err;
    assert_int_equal(mt_run(&n, ins, 2, &y, 1, NULL, &err), TDM_OK);
    assert_int_equal(y.dtype, TDM_DTYPE_INT32);
    assert_int_equal(y.ndim, 1);
    const int32_t w[] = {1, -2};
    assert_memory_equal(y.data, w, sizeof w);
    tdm_tensor_free(&y);
    mt_node_free(&n);

    op_node_init(&n, "Cast", "", 13, 1, 1);
    assert_int_equal(mt_run(&n, ins, 1, &y, 1, NULL, &err), TDM_ERR_INVALID_ARG);
    assert_non_null(strstr(err.msg, "'to'"));
    tdm_tensor_free(&y);
    mt_node_free(&n);

    op_node_init(&n, "Cast", "", 13, 1, 1);
    op_attr_int(&n, "to", TDM_DTYPE_STRING);
    assert_int_equal(mt_run(&n, ins, 1, &y, 1, NULL, &err), TDM_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "string"));
    tdm_tensor_free(&y);
    mt_node_free(&n);

    op_node_init(&n, "Cast", "", 13, 1, 1);
    op_attr_int(&n, "to", 999);
    assert_int_equal(mt_run(&n, ins, 1, &y, 1, NULL, &err), TDM_ERR_UNSUPPORTED);
    tdm_tensor_free(&y);
    mt_node_free(&n);
    tdm_tensor_free(&x);
    tdm_tensor_free(&like);
}

static void test_parallel(void **state)
{
    (void)state;
    tdm_pool *pool;
    tdm_err err;
    assert_int_equal(tdm_pool_create(4, &pool, &err), TDM_OK);
    mt_rng rng = {77};
    const int64_t dims[1] = {300001};
    tdm_tensor x = mt_rand_f32(&rng, 1, dims, -1000, 1000);
    tdm_tensor a = cast(&x, TDM_DTYPE_FLOAT16, NULL), b = cast(&x, TDM_DTYPE_FLOAT16, pool);
    assert_memory_equal(a.data, b.data, tdm_tensor_nbytes(&a));
    for (int64_t i = 0; i < dims[0]; i += 997)
        assert_int_equal(((uint16_t *)a.data)[i], tdm_fp32_to_fp16(((float *)x.data)[i]));
    tdm_tensor_free(&a);
    tdm_tensor_free(&b);
    tdm_tensor_free(&x);
    tdm_pool_free(pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_float_to_int),    cmocka_unit_test(test_int_conversions),
        cmocka_unit_test(test_half_and_bfloat), cmocka_unit_test(test_castlike_and_errors),
        cmocka_unit_test(test_parallel),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

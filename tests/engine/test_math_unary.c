/*
 * Element-wise unary ops against double-precision references written from
 * the ONNX operator definitions (not from the kernels' formulas where a
 * kernel uses a rearranged one), over values that cover both signs, the
 * domain edges and specials, for float32, float64 and float16, plus the
 * integer variants, the attribute/input forms of Clip and the errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <float.h>

#include "base/pool.h"
#include "engine/math_test_util.h"

typedef double (*ref1)(double x);

static double r_relu(double x)
{
    return x > 0 ? x : (isnan(x) ? x : 0);
}
static double r_leaky(double x)
{
    return x < 0 ? 0.01 * x : x;
}
static double r_sigmoid(double x)
{
    return 1 / (1 + exp(-x));
}
static double r_hardsig(double x)
{
    return isnan(x) ? x : fmax(0, fmin(1, 0.2 * x + 0.5));
}
static double r_hardswish(double x)
{
    return isnan(x) ? x : x * fmax(0, fmin(1, x / 6 + 0.5));
}
static double r_elu(double x)
{
    return x < 0 ? exp(x) - 1 : x;
}
static double r_selu(double x)
{
    const double a = 1.67326319217681884765625, g = 1.05070102214813232421875;
    return x <= 0 ? g * (a * exp(x) - a) : g * x;
}
static double r_softplus(double x)
{
    return log1p(exp(x));
}
static double r_softsign(double x)
{
    return x / (1 + fabs(x));
}
static double r_neg(double x)
{
    return -x;
}
static double r_recip(double x)
{
    return 1 / x;
}
static double r_round(double x)
{
    return nearbyint(x);
}
static double r_sign(double x)
{
    return x > 0 ? 1 : x < 0 ? -1 : x;
}
/* NaN is not above the threshold: 0, as ONNX Runtime's comparison gives */
static double r_threlu(double x)
{
    return x > 1 ? x : 0;
}
static double r_celu(double x)
{
    return isnan(x) ? x : fmax(0, x) + fmin(0, exp(x) - 1);
}
static double r_mish(double x)
{
    return x * tanh(log1p(exp(x)));
}
static double r_shrink(double x)
{
    return x < -0.5 ? x : x > 0.5 ? x : 0;
}
/* gelu at -inf is taken as its limit, -0, rather than the formula's -inf * 0 */
static double r_gelu(double x)
{
    return x == -INFINITY ? -0.0 : 0.5 * x * (1 + erf(x / sqrt(2.0)));
}
static double r_gelu_tanh(double x)
{
    if (x == -INFINITY)
        return -0.0;
    return 0.5 * x * (1 + tanh(sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
}

typedef struct ucase {
    const char *op;
    ref1 ref;
    double atol; /* where cancellation in the definition makes relative error meaningless */
} ucase;

static const ucase k_cases[] = {
    {"Relu", r_relu, 0},
    {"LeakyRelu", r_leaky, 0},
    {"Sigmoid", r_sigmoid, 0},
    {"Tanh", tanh, 0},
    {"Exp", exp, 0},
    {"Erf", erf, 0},
    {"HardSigmoid", r_hardsig, 1e-7},
    {"HardSwish", r_hardswish, 1e-7},
    {"Elu", r_elu, 0},
    {"Selu", r_selu, 0},
    {"Softplus", r_softplus, 0},
    {"Softsign", r_softsign, 0},
    {"Sqrt", sqrt, 0},
    {"Log", log, 0},
    {"Neg", r_neg, 0},
    {"Abs", fabs, 0},
    {"Reciprocal", r_recip, 0},
    {"Floor", floor, 0},
    {"Ceil", ceil, 0},
    {"Round", r_round, 0},
    {"Sign", r_sign, 0},
    {"Sin", sin, 0},
    {"Cos", cos, 1e-7},
    {"Tan", tan, 1e-7},
    {"Asin", asin, 0},
    {"Acos", acos, 0},
    {"Atan", atan, 0},
    {"Sinh", sinh, 0},
    {"Cosh", cosh, 0},
    {"Asinh", asinh, 0},
    {"Acosh", acosh, 0},
    {"Atanh", atanh, 0},
    {"ThresholdedRelu", r_threlu, 0},
    {"Celu", r_celu, 0},
    {"Mish", r_mish, 1e-7},
    {"Shrink", r_shrink, 0},
    {"Gelu", r_gelu, 1e-7},
};

static float *test_values(int *n)
{
    static float v[600];
    int k = 0;
    const float specials[] = {0.0f,  -0.0f,  0.5f,  -0.5f,  1.0f,     -1.0f,     2.5f,
                              -2.5f, 3.5f,   1e-3f, -1e-3f, INFINITY, -INFINITY, NAN,
                              20.0f, -20.0f, 0.99f, -0.99f, 1.5f,     -7.25f};
    for (size_t i = 0; i < sizeof specials / sizeof specials[0]; i++)
        v[k++] = specials[i];
    mt_rng rng = {99};
    while (k < 600)
        v[k++] = mt_uniform(&rng, -8, 8);
    *n = k;
    return v;
}

static tdm_tensor run_unary(const char *op, int opset, const tdm_tensor *x, tdm_pool *pool)
{
    tdm_node n;
    op_node_init(&n, op, "", opset, 1, 1);
    const tdm_tensor *ins[1] = {x};
    tdm_tensor y;
    tdm_err err;
    if (mt_run(&n, ins, 1, &y, 1, pool, &err) != TDM_OK)
        fail_msg("%s: %s", op, err.msg);
    mt_node_free(&n);
    return y;
}

static void test_float_ops(void **state)
{
    (void)state;
    int n;
    const float *v = test_values(&n);
    int64_t d = n;
    tdm_tensor x32 = mt_tensor(TDM_DTYPE_FLOAT32, 1, &d, v);
    tdm_tensor x64 = mt_tensor(TDM_DTYPE_FLOAT64, 1, &d, NULL);
    tdm_tensor x16 = mt_tensor(TDM_DTYPE_FLOAT16, 1, &d, NULL);
    for (int i = 0; i < n; i++) {
        ((double *)x64.data)[i] = v[i];
        ((uint16_t *)x16.data)[i] = tdm_fp32_to_fp16(v[i]);
    }
    for (size_t c = 0; c < sizeof k_cases / sizeof k_cases[0]; c++) {
        const ucase *uc = &k_cases[c];
        tdm_tensor y32 = run_unary(uc->op, 18, &x32, NULL);
        tdm_tensor y64 = run_unary(uc->op, 18, &x64, NULL);
        tdm_tensor y16 = run_unary(uc->op, 18, &x16, NULL);
        assert_int_equal(y32.dtype, TDM_DTYPE_FLOAT32);
        assert_int_equal(y64.dtype, TDM_DTYPE_FLOAT64);
        assert_int_equal(y16.dtype, TDM_DTYPE_FLOAT16);
        for (int i = 0; i < n; i++) {
            double want = uc->ref(v[i]);
            float got = ((float *)y32.data)[i];
            /* float32: about 2 ulp, plus the input's own rounding for
             * functions steeper than 1 (exp, sinh, cosh, tan near poles) */
            double rtol = 4e-7 * (1 + (isfinite(v[i]) ? fabs((double)v[i]) : 0));
            if (fabs(want) > FLT_MAX)
                want = want > 0 ? INFINITY : -INFINITY;
            if (!mt_close(got, want, rtol, uc->atol + 1e-37))
                fail_msg("%s f32(%.9g): got %.9g want %.9g", uc->op, v[i], got, want);
            double got64 = ((double *)y64.data)[i];
            if (!mt_close(got64, uc->ref(v[i]), 1e-12, uc->atol * 1e-8))
                fail_msg("%s f64(%.9g): got %.17g want %.17g", uc->op, v[i], got64, uc->ref(v[i]));
            double x16v = tdm_fp16_to_fp32(((uint16_t *)x16.data)[i]);
            double w16 = uc->ref(x16v);
            double g16 = tdm_fp16_to_fp32(((uint16_t *)y16.data)[i]);
            if (fabs(w16) > 65504)
                w16 = w16 > 0 ? INFINITY : -INFINITY;
            if (!mt_close(g16, w16, 1e-3 * (1 + (isfinite(x16v) ? fabs(x16v) : 0)),
                          1e-4 + uc->atol))
                fail_msg("%s f16(%.6g): got %.6g want %.6g", uc->op, x16v, g16, w16);
        }
        tdm_tensor_free(&y32);
        tdm_tensor_free(&y64);
        tdm_tensor_free(&y16);
    }
    tdm_tensor_free(&x32);
    tdm_tensor_free(&x64);
    tdm_tensor_free(&x16);
}

static void test_attrs_and_gelu(void **state)
{
    (void)state;
    const float v[] = {-3, -1, -0.25f, 0, 0.25f, 1, 3};
    int64_t d = 7;
    tdm_tensor x = mt_tensor(TDM_DTYPE_FLOAT32, 1, &d, v);
    const tdm_tensor *ins[1] = {&x};
    tdm_tensor y;
    tdm_err err;
    tdm_node n;

    op_node_init(&n, "LeakyRelu", "", 16, 1, 1);
    op_attr_float(&n, "alpha", 0.5f);
    assert_int_equal(mt_run(&n, ins, 1, &y, 1, NULL, &err), TDM_OK);
    for (int i = 0; i < 7; i++)
        assert_true(((float *)y.data)[i] == (v[i] < 0 ? 0.5f * v[i] : v[i]));
    tdm_tensor_free(&y);
    mt_node_free(&n);

    op_node_init(&n, "Elu", "", 6, 1, 1);
    op_attr_float(&n, "alpha", 2.0f);
    assert_int_equal(mt_run(&n, ins, 1, &y, 1, NULL, &err), TDM_OK);
    for (int i = 0; i < 7; i++)
        assert_true(mt_close(((float *)y.data)[i], v[i] < 0 ? 2 * (exp(v[i]) - 1) : v[i], 1e-6, 0));
    tdm_tensor_free(&y);
    mt_node_free(&n);

    op_node_init(&n, "Shrink", "", 9, 1, 1);
    op_attr_float(&n, "lambd", 1.5f);
    op_attr_float(&n, "bias", 0.5f);
    assert_int_equal(mt_run(&n, ins, 1, &y, 1, NULL, &err), TDM_OK);
    const float shrink[] = {-2.5f, 0, 0, 0, 0, 0, 2.5f};
    assert_memory_equal(y.data, shrink, sizeof shrink);
    tdm_tensor_free(&y);
    mt_node_free(&n);

    const char *domains[] = {"", "com.microsoft"};
    for (int k = 0; k < 2; k++) {
        op_node_init(&n, "Gelu", domains[k], 1, 1, 1);
        assert_int_equal(mt_run(&n, ins, 1, &y, 1, NULL, &err), TDM_OK);
        for (int i = 0; i < 7; i++)
            assert_true(mt_close(((float *)y.data)[i], r_gelu(v[i]), 1e-6, 1e-7));
        tdm_tensor_free(&y);
        mt_node_free(&n);
    }
    op_node_init(&n, "Gelu", "", 20, 1, 1);
    op_attr_str(&n, "approximate", "tanh");
    assert_int_equal(mt_run(&n, ins, 1, &y, 1, NULL, &err), TDM_OK);
    for (int i = 0; i < 7; i++)
        assert_true(mt_close(((float *)y.data)[i], r_gelu_tanh(v[i]), 1e-6, 1e-7));
    tdm_tensor_free(&y);
    mt_node_free(&n);
    op_node_init(&n, "Gelu", "", 20, 1, 1);
    op_attr_str(&n, "approximate", "fast");
    assert_int_equal(mt_run(&n, ins, 1, &y, 1, NULL, &err), TDM_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "fast"));
    tdm_tensor_free(&y);
    mt_node_free(&n);
    tdm_tensor_free(&x);
}

static void test_clip(void **state)
{
    (void)state;
    const float v[] = {-5, -1, 0, 0.5f, 2, 7, NAN};
    int64_t d = 7;
    tdm_tensor x = mt_tensor(TDM_DTYPE_FLOAT32, 1, &d, v);
    tdm_tensor y;
    tdm_err err;
    tdm_node n;
    /* opset 6: attributes */
    op_node_init(&n, "Clip", "", 6, 1, 1);
    op_attr_float(&n, "min", -1.0f);
    op_attr_float(&n, "max", 2.0f);
    const tdm_tensor *ins1[1] = {&x};
    assert_int_equal(mt_run(&n, ins1, 1, &y, 1, NULL, &err), TDM_OK);
    const float w1[] = {-1, -1, 0, 0.5f, 2, 2};
    assert_memory_equal(y.data, w1, sizeof w1);
    assert_true(isnan(((float *)y.data)[6]));
    tdm_tensor_free(&y);
    mt_node_free(&n);
    /* opset 13: inputs, each optional */
    float lo = 0, hi = 1;
    tdm_tensor tlo = mt_tensor(TDM_DTYPE_FLOAT32, 0, NULL, &lo),
               thi = mt_tensor(TDM_DTYPE_FLOAT32, 0, NULL, &hi);
    op_node_init(&n, "Clip", "", 13, 3, 1);
    const tdm_tensor *ins3[3] = {&x, NULL, &thi};
    assert_int_equal(mt_run(&n, ins3, 3, &y, 1, NULL, &err), TDM_OK);
    const float w2[] = {-5, -1, 0, 0.5f, 1, 1};
    assert_memory_equal(y.data, w2, sizeof w2);
    tdm_tensor_free(&y);
    ins3[1] = &tlo;
    ins3[2] = NULL;
    assert_int_equal(mt_run(&n, ins3, 3, &y, 1, NULL, &err), TDM_OK);
    const float w3[] = {0, 0, 0, 0.5f, 2, 7};
    assert_memory_equal(y.data, w3, sizeof w3);
    tdm_tensor_free(&y);
    /* min > max gives max everywhere (numpy clip) */
    ins3[1] = &thi;
    ins3[2] = &tlo;
    assert_int_equal(mt_run(&n, ins3, 3, &y, 1, NULL, &err), TDM_OK);
    for (int i = 0; i < 6; i++)
        assert_true(((float *)y.data)[i] == 0.0f);
    tdm_tensor_free(&y);
    /* no bounds: identity */
    assert_int_equal(mt_run(&n, ins1, 1, &y, 1, NULL, &err), TDM_OK);
    assert_memory_equal(y.data, v, 6 * sizeof(float));
    tdm_tensor_free(&y);
    /* bound of another dtype */
    tdm_tensor bad = mt_tensor(TDM_DTYPE_FLOAT64, 0, NULL, NULL);
    ins3[1] = &bad;
    assert_int_equal(mt_run(&n, ins3, 3, &y, 1, NULL, &err), TDM_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "min"));
    tdm_tensor_free(&y);
    tdm_tensor_free(&bad);
    /* int8 */
    const int8_t iv[] = {-128, -10, 0, 10, 127};
    int8_t ilo = -5, ihi = 100;
    int64_t d5 = 5;
    tdm_tensor xi = mt_tensor(TDM_DTYPE_INT8, 1, &d5, iv),
               il = mt_tensor(TDM_DTYPE_INT8, 0, NULL, &ilo),
               ih = mt_tensor(TDM_DTYPE_INT8, 0, NULL, &ihi);
    const tdm_tensor *insi[3] = {&xi, &il, &ih};
    assert_int_equal(mt_run(&n, insi, 3, &y, 1, NULL, &err), TDM_OK);
    const int8_t wi[] = {-5, -5, 0, 10, 100};
    assert_memory_equal(y.data, wi, sizeof wi);
    tdm_tensor_free(&y);
    mt_node_free(&n);
    tdm_tensor_free(&xi);
    tdm_tensor_free(&il);
    tdm_tensor_free(&ih);
    tdm_tensor_free(&x);
    tdm_tensor_free(&tlo);
    tdm_tensor_free(&thi);
}

static void test_int_variants(void **state)
{
    (void)state;
    const int32_t v[] = {INT32_MIN, -7, 0, 9, INT32_MAX};
    int64_t d = 5;
    tdm_tensor x = mt_tensor(TDM_DTYPE_INT32, 1, &d, v);
    tdm_tensor y = run_unary("Neg", 13, &x, NULL);
    const int32_t neg[] = {INT32_MIN, 7, 0, -9, -INT32_MAX};
    assert_memory_equal(y.data, neg, sizeof neg);
    tdm_tensor_free(&y);
    y = run_unary("Abs", 13, &x, NULL);
    const int32_t abs_[] = {INT32_MIN, 7, 0, 9, INT32_MAX};
    assert_memory_equal(y.data, abs_, sizeof abs_);
    tdm_tensor_free(&y);
    y = run_unary("Sign", 13, &x, NULL);
    const int32_t sign[] = {-1, -1, 0, 1, 1};
    assert_memory_equal(y.data, sign, sizeof sign);
    tdm_tensor_free(&y);
    y = run_unary("Relu", 14, &x, NULL);
    const int32_t relu[] = {0, 0, 0, 9, INT32_MAX};
    assert_memory_equal(y.data, relu, sizeof relu);
    tdm_tensor_free(&y);
    tdm_tensor_free(&x);

    const uint8_t u[] = {0, 1, 255};
    int64_t d3 = 3;
    x = mt_tensor(TDM_DTYPE_UINT8, 1, &d3, u);
    y = run_unary("Neg", 13, &x, NULL);
    const uint8_t uneg[] = {0, 255, 1};
    assert_memory_equal(y.data, uneg, sizeof uneg);
    tdm_tensor_free(&y);
    y = run_unary("Sign", 13, &x, NULL);
    const uint8_t usign[] = {0, 1, 1};
    assert_memory_equal(y.data, usign, sizeof usign);
    tdm_tensor_free(&y);
    tdm_tensor_free(&x);

    /* float-only ops reject integers, naming the dtype */
    x = mt_tensor(TDM_DTYPE_INT64, 1, &d3, NULL);
    tdm_node n;
    op_node_init(&n, "Sqrt", "", 13, 1, 1);
    const tdm_tensor *ins[1] = {&x};
    tdm_err err;
    assert_int_equal(mt_run(&n, ins, 1, &y, 1, NULL, &err), TDM_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "int64"));
    tdm_tensor_free(&y);
    mt_node_free(&n);
    op_node_init(&n, "Not", "", 1, 1, 1);
    assert_int_equal(mt_run(&n, ins, 1, &y, 1, NULL, &err), TDM_ERR_UNSUPPORTED);
    tdm_tensor_free(&y);
    mt_node_free(&n);
    tdm_tensor_free(&x);
}

static void test_tests_and_not(void **state)
{
    (void)state;
    const float v[] = {1, NAN, INFINITY, -INFINITY, -0.0f, FLT_MAX};
    int64_t d = 6;
    tdm_tensor x = mt_tensor(TDM_DTYPE_FLOAT32, 1, &d, v);
    tdm_tensor y = run_unary("IsNaN", 13, &x, NULL);
    assert_int_equal(y.dtype, TDM_DTYPE_BOOL);
    const uint8_t isnan_w[] = {0, 1, 0, 0, 0, 0};
    assert_memory_equal(y.data, isnan_w, 6);
    tdm_tensor_free(&y);
    const struct {
        int pos, neg;
        uint8_t w[6];
    } inf_cases[] = {
        {1, 1, {0, 0, 1, 1, 0, 0}}, {1, 0, {0, 0, 1, 0, 0, 0}}, {0, 1, {0, 0, 0, 1, 0, 0}}};
    for (int c = 0; c < 3; c++) {
        tdm_node n;
        op_node_init(&n, "IsInf", "", 10, 1, 1);
        op_attr_int(&n, "detect_positive", inf_cases[c].pos);
        op_attr_int(&n, "detect_negative", inf_cases[c].neg);
        const tdm_tensor *ins[1] = {&x};
        tdm_err err;
        assert_int_equal(mt_run(&n, ins, 1, &y, 1, NULL, &err), TDM_OK);
        assert_memory_equal(y.data, inf_cases[c].w, 6);
        tdm_tensor_free(&y);
        mt_node_free(&n);
    }
    tdm_tensor_free(&x);
    const uint8_t b[] = {0, 1, 1, 0};
    int64_t d4 = 4;
    x = mt_tensor(TDM_DTYPE_BOOL, 1, &d4, b);
    y = run_unary("Not", 1, &x, NULL);
    const uint8_t nb[] = {1, 0, 0, 1};
    assert_memory_equal(y.data, nb, 4);
    tdm_tensor_free(&y);
    tdm_tensor_free(&x);
}

static void test_parallel(void **state)
{
    (void)state;
    tdm_pool *pool;
    tdm_err err;
    assert_int_equal(tdm_pool_create(3, &pool, &err), TDM_OK);
    mt_rng rng = {1234};
    const int64_t dims[2] = {257, 1031};
    tdm_tensor x = mt_rand_f32(&rng, 2, dims, -10, 10);
    const char *ops[] = {"Tanh", "Gelu", "Softplus", "Relu"};
    for (int o = 0; o < 4; o++) {
        tdm_tensor a = run_unary(ops[o], 18, &x, NULL), b = run_unary(ops[o], 18, &x, pool);
        assert_memory_equal(a.data, b.data, tdm_tensor_nbytes(&a));
        tdm_tensor_free(&a);
        tdm_tensor_free(&b);
    }
    tdm_tensor_free(&x);
    tdm_pool_free(pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_float_ops),     cmocka_unit_test(test_attrs_and_gelu),
        cmocka_unit_test(test_clip),          cmocka_unit_test(test_int_variants),
        cmocka_unit_test(test_tests_and_not), cmocka_unit_test(test_parallel),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

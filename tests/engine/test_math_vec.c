/*
 * Accuracy and special-value tests of the float32 vector kernels, for every
 * build this CPU can run (portable, AVX2, AVX-512).
 *
 * The references are libm in double precision, so they are independent of
 * the polynomial approximations under test. Inputs sweep wide ranges densely
 * (evenly spaced float bit patterns across the interesting exponents, plus
 * special values) and all lengths 0..70 are run to cover vector tails.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/ops/math_vec.h"

static float from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* About 2 * 400000 floats with |x| in [lo, hi] (evenly spaced bit patterns,
 * odd step so every mantissa residue is visited), both signs, plus specials. */
static float *make_inputs(float lo, float hi, int64_t *n)
{
    uint32_t a, b;
    memcpy(&a, &lo, 4);
    memcpy(&b, &hi, 4);
    uint32_t step = ((b - a) / 400000u) | 1u;
    int64_t cap = (int64_t)((b - a) / step + 1) * 2 + 64;
    float *x = malloc((size_t)cap * sizeof *x);
    assert_non_null(x);
    int64_t k = 0;
    for (uint64_t u = a; u <= b; u += step) {
        x[k++] = from_bits((uint32_t)u);
        x[k++] = -from_bits((uint32_t)u);
    }
    const float specials[] = {
        0.0f,         -0.0f,       INFINITY,    -INFINITY,  NAN,      FLT_MIN,   -FLT_MIN,
        FLT_TRUE_MIN, 1e-40f,      -1e-40f,     FLT_MAX,    -FLT_MAX, 88.72283f, 88.7229f,
        -87.33655f,   -103.9f,     -104.0f,     -150.0f,    0.625f,   -0.625f,   1.0f,
        -1.0f,        0.99999994f, 9.0f,        3.9192f,    10.25f,   -10.25f,   20.0f,
        -20.0f,       1.4142135f,  -1.4142135f, 0.6249999f, 100.0f,   -100.0f};
    for (size_t i = 0; i < sizeof specials / sizeof specials[0]; i++)
        x[k++] = specials[i];
    *n = k;
    return x;
}

typedef double (*ref_fn)(double);

static double r_exp(double x)
{
    return exp(x);
}
static double r_tanh(double x)
{
    return tanh(x);
}
static double r_sigmoid(double x)
{
    return x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x));
}
static double r_erf(double x)
{
    return erf(x);
}
static double r_gelu(double x)
{
    return x == -INFINITY ? -0.0 : 0.5 * x * erfc(-x * 0.70710678118654752440);
}
static double r_gelu_tanh(double x)
{
    /* 0.5 x (1 + tanh u) == x / (1 + exp(-2u)), which does not cancel */
    if (x == -INFINITY)
        return -0.0; /* the limit, as for the exact form */
    double u = 0.7978845608028654 * (x + 0.044715 * x * x * x);
    return x / (1 + exp(-2 * u));
}
static double r_relu(double x)
{
    return x > 0 || isnan(x) ? x : 0.0;
}

/* Relative error against the float-rounded reference, with a floor of a few
 * denormal steps so that results in the gradual-underflow range pass when
 * they are within those steps. */
static double g_max_rel; /* worst relative error over normal results, for the log */

static void check_close(const char *what, const char *level, float in, float got, double want,
                        double rel, int *bad)
{
    if (isnan(want)) {
        if (!isnan(got) && (*bad)++ < 5)
            printf("%s/%s(%a): got %a want NaN\n", level, what, in, got);
        return;
    }
    if (isinf(want) || fabs(want) > FLT_MAX) {
        float w = (float)want;
        if (got != w && (*bad)++ < 5)
            printf("%s/%s(%a): got %a want %a\n", level, what, in, got, w);
        return;
    }
    double err = fabs((double)got - want);
    if (fabs(want) >= FLT_MIN && err / fabs(want) > g_max_rel)
        g_max_rel = err / fabs(want);
    double tol = rel * fabs(want) + 4.0 * FLT_TRUE_MIN;
    if (!(err <= tol) && (*bad)++ < 5)
        printf("%s/%s(%a): got %.9g want %.9g rel %.3g\n", level, what, in, got, want,
               err / fabs(want));
}

static void check_unary(tdm_vec_unary op, ref_fn ref, const char *what, float lo, float hi,
                        double rel)
{
    int64_t n;
    float *x = make_inputs(lo, hi, &n);
    float *y = malloc((size_t)n * sizeof *y);
    assert_non_null(y);
    for (int level = 0; level <= 2; level++) {
        const tdm_vec_kernels *k = tdm_vec_level(level);
        if (k == NULL)
            continue;
        int bad = 0;
        g_max_rel = 0;
        k->unary[op](x, y, n);
        for (int64_t i = 0; i < n; i++)
            check_close(what, k->name, x[i], y[i], ref(x[i]), rel, &bad);
        /* every short length gives the same values as the long run (tails) */
        for (int64_t len = 0; len <= 70 && len <= n; len++) {
            float t[70];
            k->unary[op](x + 1, t, len > n - 1 ? n - 1 : len);
            for (int64_t i = 0; i < len && i < n - 1; i++)
                if (memcmp(&t[i], &y[i + 1], 4) != 0 && !(isnan(t[i]) && isnan(y[i + 1])) &&
                    bad++ < 5)
                    printf("%s/%s tail len %lld index %lld differs\n", k->name, what,
                           (long long)len, (long long)i);
        }
        printf("%s/%s on [%g, %g]: max relative error %.3g (%.2f ulp of 2^-23)\n", k->name, what,
               lo, hi, g_max_rel, g_max_rel / FLT_EPSILON);
        if (bad != 0)
            printf("%s/%s: %d failures\n", k->name, what, bad);
        assert_int_equal(bad, 0);
    }
    free(x);
    free(y);
}

static void test_exp(void **state)
{
    (void)state;
    check_unary(TDM_VEC_EXP, r_exp, "exp", 1e-30f, 200.0f, 1e-6);
    check_unary(TDM_VEC_EXP, r_exp, "exp", FLT_TRUE_MIN, 1e-30f, 1e-6);
}

static void test_tanh(void **state)
{
    (void)state;
    check_unary(TDM_VEC_TANH, r_tanh, "tanh", FLT_TRUE_MIN, 50.0f, 1e-6);
}

static void test_sigmoid(void **state)
{
    (void)state;
    check_unary(TDM_VEC_SIGMOID, r_sigmoid, "sigmoid", FLT_TRUE_MIN, 200.0f, 1e-6);
}

static void test_erf(void **state)
{
    (void)state;
    check_unary(TDM_VEC_ERF, r_erf, "erf", FLT_TRUE_MIN, 30.0f, 1e-6);
}

static void test_gelu(void **state)
{
    (void)state;
    check_unary(TDM_VEC_GELU, r_gelu, "gelu", FLT_TRUE_MIN, 40.0f, 2e-6);
    /* the float rounding of the cubic argument u is amplified by |2u| in the
     * negative tail: a property of the formula, not of the kernels */
    check_unary(TDM_VEC_GELU_TANH, r_gelu_tanh, "gelu_tanh", 1e-30f, 8.0f, 2e-5);
}

static void test_relu(void **state)
{
    (void)state;
    check_unary(TDM_VEC_RELU, r_relu, "relu", FLT_TRUE_MIN, FLT_MAX, 0);
}

static float s_ref(tdm_vec_binop op, float a, float b)
{
    switch (op) {
    case TDM_VEC_ADD: return a + b;
    case TDM_VEC_SUB: return a - b;
    case TDM_VEC_MUL: return a * b;
    case TDM_VEC_DIV: return a / b;
    case TDM_VEC_MIN: return isnan(a) || isnan(b) ? NAN : fminf(a, b);
    case TDM_VEC_MAX: return isnan(a) || isnan(b) ? NAN : fmaxf(a, b);
    default: return 0;
    }
}

static void test_binary(void **state)
{
    (void)state;
    enum { N = 131 };
    float a[N], b[N], y[N];
    srand(7);
    for (int i = 0; i < N; i++) {
        a[i] = (float)(rand() % 2001 - 1000) / 37.0f;
        b[i] = (float)(rand() % 2001 - 1000) / 53.0f;
    }
    a[5] = NAN;
    b[9] = NAN;
    a[70] = INFINITY;
    b[71] = -INFINITY;
    for (int level = 0; level <= 2; level++) {
        const tdm_vec_kernels *k = tdm_vec_level(level);
        if (k == NULL)
            continue;
        for (int op = 0; op < TDM_VEC_NBINOP; op++) {
            for (int form = 0; form < TDM_VEC_NFORM; form++) {
                for (int n = 0; n <= N; n += (n < 40 ? 1 : 13)) {
                    k->binary[op][form](a, b, y, n);
                    for (int i = 0; i < n; i++) {
                        float ai = form == TDM_VEC_SV ? a[0] : a[i];
                        float bi = form == TDM_VEC_VS ? b[0] : b[i];
                        float w = s_ref((tdm_vec_binop)op, ai, bi);
                        if (isnan(w)) {
                            assert_true(isnan(y[i]));
                        } else if (y[i] != w) {
                            printf("%s op %d form %d n %d i %d: %g vs %g\n", k->name, op, form, n,
                                   i, y[i], w);
                            fail();
                        }
                    }
                }
            }
            /* in place: y aliases a */
            memcpy(y, a, sizeof y);
            k->binary[op][TDM_VEC_VV](y, b, y, N);
            for (int i = 0; i < N; i++) {
                float w = s_ref((tdm_vec_binop)op, a[i], b[i]);
                assert_true(isnan(w) ? isnan(y[i]) : y[i] == w);
            }
        }
    }
}

static void test_reduce(void **state)
{
    (void)state;
    enum { N = 1003 };
    float *x = malloc(N * sizeof *x);
    float *e = malloc(N * sizeof *e);
    assert_non_null(x);
    assert_non_null(e);
    for (int i = 0; i < N; i++)
        x[i] = sinf((float)i * 0.37f) * 5.0f + 0.25f;
    for (int level = 0; level <= 2; level++) {
        const tdm_vec_kernels *k = tdm_vec_level(level);
        if (k == NULL)
            continue;
        for (int n = 0; n <= N; n += (n < 100 ? 1 : 97)) {
            double s = 0, sq = 0, as = 0, mx = -INFINITY, mn = INFINITY, es = 0;
            for (int i = 0; i < n; i++) {
                s += x[i];
                sq += (double)x[i] * x[i];
                as += fabs(x[i]);
                mx = fmax(mx, x[i]);
                mn = fmin(mn, x[i]);
                es += exp((double)x[i] - 1.5);
            }
            double tol = 1e-5 * (as + 1);
            assert_true(fabs(k->reduce[TDM_VEC_RSUM](x, n) - s) <= tol);
            assert_true(fabs(k->reduce[TDM_VEC_RSUMSQ](x, n) - sq) <= 1e-5 * (sq + 1));
            assert_true(fabs(k->reduce[TDM_VEC_RASUM](x, n) - as) <= tol);
            assert_true(k->reduce[TDM_VEC_RMAX](x, n) == (float)mx);
            assert_true(k->reduce[TDM_VEC_RMIN](x, n) == (float)mn);
            float got = k->exp_sum(x, 1.5f, e, n);
            assert_true(fabs(got - es) <= 1e-5 * (es + 1));
            float got2 = k->exp_sum(x, 1.5f, NULL, n);
            assert_true(got2 == got);
            for (int i = 0; i < n; i++)
                assert_true(fabs(e[i] - exp((double)x[i] - 1.5)) <= 1e-6 * exp(x[i] - 1.5));
        }
        /* NaN anywhere poisons max and min */
        for (int pos = 0; pos < 70; pos++) {
            float saved = x[pos];
            x[pos] = NAN;
            assert_true(isnan(k->reduce[TDM_VEC_RMAX](x, 70)));
            assert_true(isnan(k->reduce[TDM_VEC_RMIN](x, 70)));
            x[pos] = saved;
        }
    }
    free(x);
    free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exp),     cmocka_unit_test(test_tanh),
        cmocka_unit_test(test_sigmoid), cmocka_unit_test(test_erf),
        cmocka_unit_test(test_gelu),    cmocka_unit_test(test_relu),
        cmocka_unit_test(test_binary),  cmocka_unit_test(test_reduce),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

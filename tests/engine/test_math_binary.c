/*
 * Element-wise binary and variadic ops: broadcasting, dtypes, integer edge
 * cases, NaN rules, errors, and the parallel path.
 *
 * References are computed independently of the kernels: every output
 * element's operand positions come from naive index arithmetic
 * (unravel + per-dim broadcast), never from the collapsed plan under test,
 * and integer edge cases are spelled out by hand.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <float.h>

#include "base/pool.h"
#include "engine/math_test_util.h"

static float ref_f32(const char *op, float a, float b)
{
    if (strcmp(op, "Add") == 0)
        return a + b;
    if (strcmp(op, "Sub") == 0)
        return a - b;
    if (strcmp(op, "Mul") == 0)
        return a * b;
    if (strcmp(op, "Div") == 0)
        return a / b;
    if (strcmp(op, "Pow") == 0)
        return powf(a, b);
    if (strcmp(op, "Mod") == 0)
        return fmodf(a, b);
    if (strcmp(op, "Min") == 0)
        return isnan(a) || isnan(b) ? NAN : fminf(a, b);
    if (strcmp(op, "Max") == 0)
        return isnan(a) || isnan(b) ? NAN : fmaxf(a, b);
    if (strcmp(op, "PRelu") == 0)
        return a < 0 ? a * b : a;
    fail_msg("unknown op %s", op);
    return 0;
}

/* Runs op on a, b (float32) and checks every element against ref_f32. */
static void check_f32(const char *op, int na, const int64_t *da, int nb, const int64_t *db,
                      tdm_pool *pool, mt_rng *rng)
{
    tdm_tensor a = mt_rand_f32(rng, na, da, -4, 4), b = mt_rand_f32(rng, nb, db, -4, 4);
    if (strcmp(op, "Pow") == 0) { /* positive bases, and some exponents exactly 2 */
        for (int64_t i = 0; i < tdm_tensor_numel(&a); i++)
            ((float *)a.data)[i] = fabsf(((float *)a.data)[i]) + 0.1f;
        if (tdm_tensor_numel(&b) == 1)
            ((float *)b.data)[0] = 2.0f;
    }
    tdm_node n;
    op_node_init(&n, op, "", 17, 2, 1);
    if (strcmp(op, "Mod") == 0)
        op_attr_int(&n, "fmod", 1);
    const tdm_tensor *ins[2] = {&a, &b};
    tdm_tensor y;
    tdm_err err;
    tdm_status s = mt_run(&n, ins, 2, &y, 1, pool, &err);
    if (s != TDM_OK)
        fail_msg("%s: %s", op, err.msg);
    int nd = na > nb ? na : nb;
    assert_int_equal(y.ndim, nd);
    int64_t idx[TDM_MAX_DIMS];
    for (int64_t i = 0; i < tdm_tensor_numel(&y); i++) {
        mt_unravel(i, nd, y.dims, idx);
        float av = ((float *)a.data)[mt_bcast_index(idx, nd, na, da)];
        float bv = ((float *)b.data)[mt_bcast_index(idx, nd, nb, db)];
        float want = ref_f32(op, av, bv), got = ((float *)y.data)[i];
        if (!mt_close(got, want, 1e-6, 0))
            fail_msg("%s element %lld: got %g want %g (a %g b %g)", op, (long long)i, got, want, av,
                     bv);
    }
    tdm_tensor_free(&a);
    tdm_tensor_free(&b);
    tdm_tensor_free(&y);
    mt_node_free(&n);
}

typedef struct shape_pair {
    int na;
    int64_t da[5];
    int nb;
    int64_t db[5];
} shape_pair;

static const shape_pair k_pairs[] = {
    {3, {2, 3, 4}, 3, {2, 3, 4}},           /* same shape */
    {2, {5, 7}, 0, {0}},                    /* scalar b */
    {1, {1}, 2, {6, 37}},                   /* one-element a */
    {2, {3, 1}, 2, {1, 4}},                 /* outer product */
    {4, {2, 3, 4, 5}, 3, {3, 1, 5}},        /* middle broadcast */
    {3, {4, 1, 6}, 2, {5, 1}},              /* both sides */
    {2, {7, 33}, 1, {33}},                  /* bias row */
    {4, {2, 5, 3, 3}, 4, {1, 5, 1, 1}},     /* per channel */
    {0, {0}, 0, {0}},                       /* scalars */
    {2, {0, 3}, 1, {3}},                    /* empty */
    {1, {1}, 3, {1, 1, 1}},                 /* all ones */
    {5, {2, 1, 3, 1, 17}, 4, {4, 3, 2, 1}}, /* mixed */
};

static void test_broadcast_f32(void **state)
{
    (void)state;
    mt_rng rng = {42};
    const char *ops[] = {"Add", "Sub", "Mul", "Div", "Pow", "Mod", "Min", "Max"};
    for (size_t o = 0; o < sizeof ops / sizeof ops[0]; o++) {
        for (size_t p = 0; p < sizeof k_pairs / sizeof k_pairs[0]; p++) {
            const shape_pair *sp = &k_pairs[p];
            check_f32(ops[o], sp->na, sp->da, sp->nb, sp->db, NULL, &rng);
            check_f32(ops[o], sp->nb, sp->db, sp->na, sp->da, NULL, &rng);
        }
    }
}

static void test_parallel_matches_serial(void **state)
{
    (void)state;
    tdm_pool *pool;
    tdm_err err;
    assert_int_equal(tdm_pool_create(4, &pool, &err), TDM_OK);
    mt_rng rng = {7};
    const int64_t big[2] = {301, 1003}, row[1] = {1003}, col[2] = {301, 1};
    const char *ops[] = {"Add", "Mul", "Max", "Div"};
    for (size_t o = 0; o < sizeof ops / sizeof ops[0]; o++) {
        check_f32(ops[o], 2, big, 1, row, pool, &rng);
        check_f32(ops[o], 2, big, 2, col, pool, &rng);
        check_f32(ops[o], 2, big, 2, big, pool, &rng);
        check_f32(ops[o], 0, big, 2, big, pool, &rng);
    }
    tdm_pool_free(pool);
}

/* Runs a binary op on two 1-D tensors of dtype dt and returns the output. */
static tdm_tensor run_1d(const char *op, tdm_dtype dt, int n, const void *a, const void *b,
                         int64_t fmod_attr)
{
    int64_t d = n;
    tdm_tensor ta = mt_tensor(dt, 1, &d, a), tb = mt_tensor(dt, 1, &d, b);
    tdm_node node;
    op_node_init(&node, op, "", 13, 2, 1);
    if (fmod_attr >= 0)
        op_attr_int(&node, "fmod", fmod_attr);
    const tdm_tensor *ins[2] = {&ta, &tb};
    tdm_tensor y;
    tdm_err err;
    if (mt_run(&node, ins, 2, &y, 1, NULL, &err) != TDM_OK)
        fail_msg("%s: %s", op, err.msg);
    tdm_tensor_free(&ta);
    tdm_tensor_free(&tb);
    mt_node_free(&node);
    return y;
}

static void test_int_edges(void **state)
{
    (void)state;
    const int32_t a32[] = {7, -7, 7, -7, INT32_MIN, 5, INT32_MAX, 0};
    const int32_t b32[] = {2, 2, -2, -2, -1, 0, 1, 3};
    tdm_tensor y = run_1d("Div", TDM_DTYPE_INT32, 8, a32, b32, -1);
    const int32_t div_want[] = {3, -3, -3, 3, INT32_MIN, 0, INT32_MAX, 0};
    assert_memory_equal(y.data, div_want, sizeof div_want);
    tdm_tensor_free(&y);
    y = run_1d("Mod", TDM_DTYPE_INT32, 8, a32, b32, 0); /* sign of the divisor */
    const int32_t mod_want[] = {1, 1, -1, -1, 0, 0, 0, 0};
    assert_memory_equal(y.data, mod_want, sizeof mod_want);
    tdm_tensor_free(&y);
    y = run_1d("Mod", TDM_DTYPE_INT32, 8, a32, b32, 1); /* sign of the dividend */
    const int32_t fmod_want[] = {1, -1, 1, -1, 0, 0, 0, 0};
    assert_memory_equal(y.data, fmod_want, sizeof fmod_want);
    tdm_tensor_free(&y);
    y = run_1d("Add", TDM_DTYPE_INT32, 8, a32, b32, -1); /* wraps */
    const int32_t add_want[] = {9, -5, 5, -9, INT32_MAX, 5, INT32_MIN, 3};
    assert_memory_equal(y.data, add_want, sizeof add_want);
    tdm_tensor_free(&y);
    y = run_1d("Mul", TDM_DTYPE_INT32, 8, a32, b32, -1);
    const int32_t mul_want[] = {14, -14, -14, 14, INT32_MIN, 0, INT32_MAX, 0};
    assert_memory_equal(y.data, mul_want, sizeof mul_want);
    tdm_tensor_free(&y);

    const int64_t a64[] = {INT64_MIN, 9, -9, 3, 2, -2, 1, -1};
    const int64_t b64[] = {-1, 4, 4, 0, 10, 3, -5, -3};
    y = run_1d("Div", TDM_DTYPE_INT64, 8, a64, b64, -1);
    const int64_t div64[] = {INT64_MIN, 2, -2, 0, 0, 0, 0, 0};
    assert_memory_equal(y.data, div64, sizeof div64);
    tdm_tensor_free(&y);
    y = run_1d("Pow", TDM_DTYPE_INT64, 8, a64, b64, -1);
    const int64_t pow64[] = {0, 6561, 6561, 1, 1024, -8, 1, -1};
    assert_memory_equal(y.data, pow64, sizeof pow64);
    tdm_tensor_free(&y);
    y = run_1d("Sub", TDM_DTYPE_INT64, 8, a64, b64, -1);
    assert_int_equal(((int64_t *)y.data)[0], INT64_MIN + 1);
    tdm_tensor_free(&y);

    const uint8_t ua[] = {3, 250, 7, 0}, ub[] = {5, 10, 0, 3};
    y = run_1d("Sub", TDM_DTYPE_UINT8, 4, ua, ub, -1);
    const uint8_t usub[] = {254, 240, 7, 253};
    assert_memory_equal(y.data, usub, sizeof usub);
    tdm_tensor_free(&y);
    y = run_1d("Add", TDM_DTYPE_UINT8, 4, ua, ub, -1);
    const uint8_t uadd[] = {8, 4, 7, 3};
    assert_memory_equal(y.data, uadd, sizeof uadd);
    tdm_tensor_free(&y);
    y = run_1d("Div", TDM_DTYPE_UINT8, 4, ua, ub, -1);
    const uint8_t udiv[] = {0, 25, 0, 0};
    assert_memory_equal(y.data, udiv, sizeof udiv);
    tdm_tensor_free(&y);

    const int8_t ia[] = {-128, 100, -3, 5}, ib[] = {-1, 100, 2, -2};
    y = run_1d("Mul", TDM_DTYPE_INT8, 4, ia, ib, -1);
    const int8_t imul[] = {-128, 16, -6, -10};
    assert_memory_equal(y.data, imul, sizeof imul);
    tdm_tensor_free(&y);
    y = run_1d("Max", TDM_DTYPE_INT8, 4, ia, ib, -1);
    const int8_t imax[] = {-1, 100, 2, 5};
    assert_memory_equal(y.data, imax, sizeof imax);
    tdm_tensor_free(&y);
}

static void test_float_mod_and_nan(void **state)
{
    (void)state;
    const float a[] = {5.5f, -5.5f, 5.5f, -5.5f, NAN, 1.0f, 3.0f};
    const float b[] = {2.0f, 2.0f, -2.0f, -2.0f, 1.0f, NAN, 0.0f};
    tdm_tensor y = run_1d("Mod", TDM_DTYPE_FLOAT32, 7, a, b, 0); /* numpy mod */
    const float *p = y.data;
    assert_true(p[0] == 1.5f && p[1] == 0.5f && p[2] == -0.5f && p[3] == -1.5f);
    assert_true(isnan(p[4]) && isnan(p[5]) && isnan(p[6]));
    tdm_tensor_free(&y);
    y = run_1d("Mod", TDM_DTYPE_FLOAT32, 7, a, b, 1); /* C fmod */
    p = y.data;
    assert_true(p[0] == 1.5f && p[1] == -1.5f && p[2] == 1.5f && p[3] == -1.5f);
    tdm_tensor_free(&y);
    y = run_1d("Min", TDM_DTYPE_FLOAT32, 7, a, b, -1);
    p = y.data;
    assert_true(p[0] == 2.0f && isnan(p[4]) && isnan(p[5]) && p[6] == 0.0f);
    tdm_tensor_free(&y);
    y = run_1d("Max", TDM_DTYPE_FLOAT32, 7, a, b, -1);
    p = y.data;
    assert_true(p[0] == 5.5f && isnan(p[4]) && isnan(p[5]) && p[6] == 3.0f);
    tdm_tensor_free(&y);
}

static void test_compare_and_logic(void **state)
{
    (void)state;
    const float a[] = {1, 2, NAN, -0.0f, 5};
    const float b[] = {1, 3, NAN, 0.0f, 4};
    const struct {
        const char *op;
        uint8_t want[5];
    } cases[] = {
        {"Equal", {1, 0, 0, 1, 0}},          {"Less", {0, 1, 0, 0, 0}},
        {"Greater", {0, 0, 0, 0, 1}},        {"LessOrEqual", {1, 1, 0, 1, 0}},
        {"GreaterOrEqual", {1, 0, 0, 1, 1}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        tdm_tensor y = run_1d(cases[c].op, TDM_DTYPE_FLOAT32, 5, a, b, -1);
        assert_int_equal(y.dtype, TDM_DTYPE_BOOL);
        assert_memory_equal(y.data, cases[c].want, 5);
        tdm_tensor_free(&y);
    }
    const int64_t ia[] = {INT64_MIN, 5, -1}, ib[] = {INT64_MAX, 5, 0};
    tdm_tensor y = run_1d("Less", TDM_DTYPE_INT64, 3, ia, ib, -1);
    const uint8_t lt[] = {1, 0, 1};
    assert_memory_equal(y.data, lt, 3);
    tdm_tensor_free(&y);

    /* bool logic with broadcasting: [2,1,3] op [2,3] */
    const int64_t da[3] = {2, 1, 3}, db[2] = {2, 3};
    const uint8_t va[6] = {1, 0, 1, 0, 0, 1}, vb[6] = {1, 1, 0, 0, 1, 0};
    const char *ops[] = {"And", "Or", "Xor", "Equal"};
    for (int o = 0; o < 4; o++) {
        tdm_tensor ta = mt_tensor(TDM_DTYPE_BOOL, 3, da, va),
                   tb = mt_tensor(TDM_DTYPE_BOOL, 2, db, vb);
        tdm_node n;
        op_node_init(&n, ops[o], "", 7, 2, 1);
        const tdm_tensor *ins[2] = {&ta, &tb};
        tdm_tensor out;
        tdm_err err;
        assert_int_equal(mt_run(&n, ins, 2, &out, 1, NULL, &err), TDM_OK);
        assert_int_equal(out.ndim, 3);
        assert_int_equal(out.dims[0], 2);
        assert_int_equal(out.dims[1], 2);
        assert_int_equal(out.dims[2], 3);
        int64_t idx[3];
        for (int64_t i = 0; i < 12; i++) {
            mt_unravel(i, 3, out.dims, idx);
            int x = va[idx[0] * 3 + idx[2]], z = vb[idx[1] * 3 + idx[2]];
            int w = o == 0 ? (x && z) : o == 1 ? (x || z) : o == 2 ? (x != z) : (x == z);
            assert_int_equal(((uint8_t *)out.data)[i], w);
        }
        tdm_tensor_free(&ta);
        tdm_tensor_free(&tb);
        tdm_tensor_free(&out);
        mt_node_free(&n);
    }
}

static void test_pow_mixed_types(void **state)
{
    (void)state;
    int64_t d = 4;
    const float base[] = {2.0f, 3.0f, 0.5f, -2.0f};
    const int64_t e64[] = {3, -1, 2, 3};
    tdm_tensor a = mt_tensor(TDM_DTYPE_FLOAT32, 1, &d, base),
               b = mt_tensor(TDM_DTYPE_INT64, 1, &d, e64);
    tdm_node n;
    op_node_init(&n, "Pow", "", 15, 2, 1);
    const tdm_tensor *ins[2] = {&a, &b};
    tdm_tensor y;
    tdm_err err;
    assert_int_equal(mt_run(&n, ins, 2, &y, 1, NULL, &err), TDM_OK);
    assert_int_equal(y.dtype, TDM_DTYPE_FLOAT32);
    const float want[] = {8.0f, 1.0f / 3.0f, 0.25f, -8.0f};
    assert_memory_equal(y.data, want, sizeof want);
    tdm_tensor_free(&a);
    tdm_tensor_free(&b);
    tdm_tensor_free(&y);

    /* int32 base, float exponent: computed in double, truncated */
    const int32_t ib[] = {2, 3, 10, -4};
    const float fe[] = {0.5f, 2.0f, -1.0f, 2.0f};
    a = mt_tensor(TDM_DTYPE_INT32, 1, &d, ib);
    b = mt_tensor(TDM_DTYPE_FLOAT32, 1, &d, fe);
    assert_int_equal(mt_run(&n, ins, 2, &y, 1, NULL, &err), TDM_OK);
    assert_int_equal(y.dtype, TDM_DTYPE_INT32);
    const int32_t iwant[] = {1, 9, 0, 16};
    assert_memory_equal(y.data, iwant, sizeof iwant);
    tdm_tensor_free(&a);
    tdm_tensor_free(&b);
    tdm_tensor_free(&y);
    mt_node_free(&n);
}

static void test_prelu(void **state)
{
    (void)state;
    mt_rng rng = {3};
    const int64_t x4[4] = {2, 3, 4, 5}, s3[3] = {3, 1, 1}, s1[1] = {5};
    check_f32("PRelu", 4, x4, 3, s3, NULL, &rng);
    check_f32("PRelu", 4, x4, 1, s1, NULL, &rng);
    /* slope larger than X: error */
    tdm_tensor x = mt_rand_f32(&rng, 1, s1, -1, 1), s = mt_rand_f32(&rng, 4, x4, -1, 1);
    tdm_node n;
    op_node_init(&n, "PRelu", "", 16, 2, 1);
    const tdm_tensor *ins[2] = {&x, &s};
    tdm_tensor y;
    tdm_err err;
    assert_int_equal(mt_run(&n, ins, 2, &y, 1, NULL, &err), TDM_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "slope"));
    tdm_tensor_free(&x);
    tdm_tensor_free(&s);
    tdm_tensor_free(&y);
    mt_node_free(&n);
}

static void test_variadic(void **state)
{
    (void)state;
    mt_rng rng = {11};
    const int64_t d0[2] = {3, 1}, d1[1] = {4}, d2[3] = {2, 1, 4};
    tdm_tensor t[3] = {mt_rand_f32(&rng, 2, d0, -3, 3), mt_rand_f32(&rng, 1, d1, -3, 3),
                       mt_rand_f32(&rng, 3, d2, -3, 3)};
    ((float *)t[1].data)[2] = NAN;
    const tdm_tensor *ins[3] = {&t[0], &t[1], &t[2]};
    const char *ops[] = {"Sum", "Mean", "Min", "Max"};
    for (int o = 0; o < 4; o++) {
        tdm_node n;
        op_node_init(&n, ops[o], "", 13, 3, 1);
        tdm_tensor y;
        tdm_err err;
        assert_int_equal(mt_run(&n, ins, 3, &y, 1, NULL, &err), TDM_OK);
        assert_int_equal(y.ndim, 3);
        int64_t idx[3];
        for (int64_t i = 0; i < tdm_tensor_numel(&y); i++) {
            mt_unravel(i, 3, y.dims, idx);
            float v0 = ((float *)t[0].data)[mt_bcast_index(idx, 3, 2, d0)];
            float v1 = ((float *)t[1].data)[mt_bcast_index(idx, 3, 1, d1)];
            float v2 = ((float *)t[2].data)[mt_bcast_index(idx, 3, 3, d2)];
            float w;
            if (o == 0)
                w = v0 + v1 + v2;
            else if (o == 1)
                w = (v0 + v1 + v2) / 3;
            else if (o == 2)
                w = isnan(v1) ? NAN : fminf(fminf(v0, v1), v2);
            else
                w = isnan(v1) ? NAN : fmaxf(fmaxf(v0, v1), v2);
            assert_true(mt_close(((float *)y.data)[i], w, 1e-6, 0));
        }
        tdm_tensor_free(&y);
        mt_node_free(&n);
    }
    /* one input: a copy */
    tdm_node n;
    op_node_init(&n, "Max", "", 13, 1, 1);
    tdm_tensor y;
    tdm_err err;
    assert_int_equal(mt_run(&n, ins, 1, &y, 1, NULL, &err), TDM_OK);
    assert_memory_equal(y.data, t[0].data, tdm_tensor_nbytes(&t[0]));
    tdm_tensor_free(&y);
    mt_node_free(&n);
    for (int i = 0; i < 3; i++)
        tdm_tensor_free(&t[i]);

    /* integer Mean truncates */
    int64_t d = 3;
    const int32_t a[] = {1, -7, 10}, b[] = {2, 2, 11};
    tdm_tensor ta = mt_tensor(TDM_DTYPE_INT32, 1, &d, a), tb = mt_tensor(TDM_DTYPE_INT32, 1, &d, b);
    const tdm_tensor *ins2[2] = {&ta, &tb};
    op_node_init(&n, "Mean", "", 13, 2, 1);
    assert_int_equal(mt_run(&n, ins2, 2, &y, 1, NULL, &err), TDM_OK);
    const int32_t want[] = {1, -2, 10};
    assert_memory_equal(y.data, want, sizeof want);
    tdm_tensor_free(&ta);
    tdm_tensor_free(&tb);
    tdm_tensor_free(&y);
    mt_node_free(&n);
}

static void test_float16(void **state)
{
    (void)state;
    const float av[] = {1.5f, -2.25f, 1000.0f, 0.1f, 65504.0f},
                bv[] = {0.5f, 4.0f, -1.0f, 0.2f, 65504.0f};
    uint16_t ah[5], bh[5];
    for (int i = 0; i < 5; i++) {
        ah[i] = tdm_fp32_to_fp16(av[i]);
        bh[i] = tdm_fp32_to_fp16(bv[i]);
    }
    const char *ops[] = {"Add", "Mul", "Max", "Sub"};
    for (int o = 0; o < 4; o++) {
        tdm_tensor y = run_1d(ops[o], TDM_DTYPE_FLOAT16, 5, ah, bh, -1);
        assert_int_equal(y.dtype, TDM_DTYPE_FLOAT16);
        for (int i = 0; i < 5; i++) {
            float x = tdm_fp16_to_fp32(ah[i]), z = tdm_fp16_to_fp32(bh[i]);
            float w = o == 0 ? x + z : o == 1 ? x * z : o == 2 ? fmaxf(x, z) : x - z;
            assert_int_equal(((uint16_t *)y.data)[i], tdm_fp32_to_fp16(w));
        }
        tdm_tensor_free(&y);
    }
}

static void test_errors(void **state)
{
    (void)state;
    mt_rng rng = {5};
    const int64_t d1[2] = {3, 4}, d2[2] = {2, 4};
    tdm_tensor a = mt_rand_f32(&rng, 2, d1, 0, 1), b = mt_rand_f32(&rng, 2, d2, 0, 1);
    tdm_node n;
    op_node_init(&n, "Add", "", 14, 2, 1);
    const tdm_tensor *ins[2] = {&a, &b};
    tdm_tensor y;
    tdm_err err;
    assert_int_equal(mt_run(&n, ins, 2, &y, 1, NULL, &err), TDM_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "float32[3,4]"));
    assert_non_null(strstr(err.msg, "float32[2,4]"));
    assert_non_null(strstr(err.msg, "Add 'test'"));
    tdm_tensor_free(&y);

    /* dtype mismatch */
    tdm_tensor c = mt_tensor(TDM_DTYPE_INT64, 2, d1, NULL);
    ins[1] = &c;
    assert_int_equal(mt_run(&n, ins, 2, &y, 1, NULL, &err), TDM_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "int64"));
    tdm_tensor_free(&y);

    /* unsupported dtype names itself */
    tdm_tensor e = mt_tensor(TDM_DTYPE_BOOL, 2, d1, NULL),
               f = mt_tensor(TDM_DTYPE_BOOL, 2, d1, NULL);
    ins[0] = &e;
    ins[1] = &f;
    assert_int_equal(mt_run(&n, ins, 2, &y, 1, NULL, &err), TDM_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "bool"));
    tdm_tensor_free(&y);
    mt_node_free(&n);

    /* And on floats is unsupported */
    op_node_init(&n, "And", "", 7, 2, 1);
    ins[0] = &a;
    ins[1] = &a;
    assert_int_equal(mt_run(&n, ins, 2, &y, 1, NULL, &err), TDM_ERR_UNSUPPORTED);
    tdm_tensor_free(&y);

    /* a missing input */
    ins[1] = NULL;
    assert_int_equal(mt_run(&n, ins, 2, &y, 1, NULL, &err), TDM_ERR_INVALID_ARG);
    tdm_tensor_free(&y);
    mt_node_free(&n);

    /* unknown shape: infer asks again at run time */
    tdm_tensor u;
    memset(&u, 0, sizeof u);
    u.dtype = TDM_DTYPE_FLOAT32;
    u.ndim = -1;
    op_node_init(&n, "Mul", "", 14, 2, 1);
    ins[0] = &a;
    ins[1] = &u;
    assert_int_equal(mt_run(&n, ins, 2, &y, 1, NULL, &err), TDM_ERR_NEEDS_VALUE);
    tdm_tensor_free(&y);
    mt_node_free(&n);

    tdm_tensor_free(&a);
    tdm_tensor_free(&b);
    tdm_tensor_free(&c);
    tdm_tensor_free(&e);
    tdm_tensor_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_broadcast_f32),
        cmocka_unit_test(test_parallel_matches_serial),
        cmocka_unit_test(test_int_edges),
        cmocka_unit_test(test_float_mod_and_nan),
        cmocka_unit_test(test_compare_and_logic),
        cmocka_unit_test(test_pow_mixed_types),
        cmocka_unit_test(test_prelu),
        cmocka_unit_test(test_variadic),
        cmocka_unit_test(test_float16),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

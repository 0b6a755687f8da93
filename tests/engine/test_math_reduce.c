/*
 * Reductions and ArgMax/ArgMin.
 *
 * The reference walks every input element once, maps it to its output
 * element by dropping the reduced coordinates, and accumulates in double:
 * no (outer, R, inner) collapsing and no permutation, so it shares nothing
 * with the implementation. Every subset of axes of several shapes is run,
 * for each reduction, with and without keepdims, with the axes as an
 * attribute (opset 13) and as an input (opset 18).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <float.h>

#include "base/pool.h"
#include "engine/math_test_util.h"

static const char *const k_ops[] = {
    "ReduceSum", "ReduceMean", "ReduceMax",       "ReduceMin",    "ReduceProd",
    "ReduceL1",  "ReduceL2",   "ReduceSumSquare", "ReduceLogSum", "ReduceLogSumExp"};
#define NOPS ((int)(sizeof k_ops / sizeof k_ops[0]))

/* Reference over the mask of reduced dims; out has numel(kept) doubles. */
static void ref_reduce(int op, const float *x, int nd, const int64_t *dims, const bool *red,
                       double *out, int64_t n_out)
{
    double *aux = calloc((size_t)n_out + 1, sizeof *aux);
    int64_t *cnt = calloc((size_t)n_out + 1, sizeof *cnt);
    assert_non_null(aux);
    assert_non_null(cnt);
    for (int64_t o = 0; o < n_out; o++)
        out[o] = op == 4 ? 1 : (op == 2 || op == 9) ? -INFINITY : op == 3 ? INFINITY : 0;
    int64_t n = 1, idx[TDM_MAX_DIMS];
    for (int d = 0; d < nd; d++)
        n *= dims[d];
    /* pass 1: max for LogSumExp, everything else directly */
    for (int64_t i = 0; i < n; i++) {
        mt_unravel(i, nd, dims, idx);
        int64_t o = 0;
        for (int d = 0; d < nd; d++)
            if (!red[d])
                o = o * dims[d] + idx[d];
        double v = x[i];
        cnt[o]++;
        switch (op) {
        case 0:
        case 1:
        case 8: out[o] += v; break;
        case 2:
        case 9: out[o] = isnan(v) || isnan(out[o]) ? NAN : fmax(out[o], v); break;
        case 3: out[o] = isnan(v) || isnan(out[o]) ? NAN : fmin(out[o], v); break;
        case 4: out[o] *= v; break;
        case 5: out[o] += fabs(v); break;
        case 6:
        case 7: out[o] += v * v; break;
        }
    }
    if (op == 9) {
        for (int64_t i = 0; i < n; i++) {
            mt_unravel(i, nd, dims, idx);
            int64_t o = 0;
            for (int d = 0; d < nd; d++)
                if (!red[d])
                    o = o * dims[d] + idx[d];
            aux[o] += exp(x[i] - out[o]);
        }
    }
    for (int64_t o = 0; o < n_out; o++) {
        if (op == 1)
            out[o] /= (double)cnt[o];
        else if (op == 6)
            out[o] = sqrt(out[o]);
        else if (op == 8)
            out[o] = log(out[o]);
        else if (op == 9 && !isinf(out[o]))
            out[o] += log(aux[o]);
    }
    free(aux);
    free(cnt);
}

static void run_case(int op, int nd, const int64_t *dims, unsigned mask, int keep, int axes_input,
                     tdm_pool *pool, mt_rng *rng)
{
    tdm_tensor x = mt_rand_f32(rng, nd, dims, op == 4 ? 0.5f : -2.0f, op == 4 ? 1.5f : 2.0f);
    if (op == 8) /* LogSum of positive values */
        for (int64_t i = 0; i < tdm_tensor_numel(&x); i++)
            ((float *)x.data)[i] = fabsf(((float *)x.data)[i]) + 0.01f;
    bool red[TDM_MAX_DIMS];
    int64_t axes[TDM_MAX_DIMS];
    int na = 0;
    for (int d = 0; d < nd; d++) {
        red[d] = (mask >> d) & 1;
        if (red[d]) {
            axes[na] = (na & 1) ? d - nd : d; /* mix negative axes in */
            na++;
        }
    }
    if (na == 0)
        for (int d = 0; d < nd; d++)
            red[d] = true; /* empty axes reduce everything */
    tdm_node n;
    op_node_init(&n, k_ops[op], "", axes_input ? 18 : 13, axes_input ? 2 : 1, 1);
    op_attr_int(&n, "keepdims", keep);
    tdm_tensor at = mt_i64s(na, axes);
    if (!axes_input && na > 0)
        op_attr_ints(&n, "axes", axes, na);
    const tdm_tensor *ins[2] = {&x, &at};
    tdm_tensor y;
    tdm_err err;
    tdm_status s = mt_run(&n, ins, axes_input ? 2 : 1, &y, 1, pool, &err);
    if (s != TDM_OK)
        fail_msg("%s: %s", k_ops[op], err.msg);
    int64_t n_out = 1;
    int k = 0;
    for (int d = 0; d < nd; d++) {
        if (!red[d]) {
            n_out *= dims[d];
            assert_int_equal(y.dims[k++], dims[d]);
        } else if (keep) {
            assert_int_equal(y.dims[k++], 1);
        }
    }
    assert_int_equal(y.ndim, k);
    assert_int_equal(tdm_tensor_numel(&y), n_out);
    double *want = malloc((size_t)(n_out + 1) * sizeof *want);
    assert_non_null(want);
    ref_reduce(op, x.data, nd, dims, red, want, n_out);
    for (int64_t o = 0; o < n_out; o++) {
        double got = ((float *)y.data)[o];
        if (!mt_close(got, want[o], 2e-5, 2e-5))
            fail_msg("%s mask %x keep %d: out %lld got %.9g want %.9g", k_ops[op], mask, keep,
                     (long long)o, got, want[o]);
    }
    free(want);
    tdm_tensor_free(&x);
    tdm_tensor_free(&at);
    tdm_tensor_free(&y);
    mt_node_free(&n);
}

static void test_all_axes(void **state)
{
    (void)state;
    mt_rng rng = {2024};
    const int64_t shapes[][4] = {{3, 4, 5, 6}, {2, 1, 7, 33}, {17, 1, 1, 3}, {1, 5, 1, 40}};
    for (int op = 0; op < NOPS; op++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            for (unsigned mask = 0; mask < 16; mask++)
                run_case(op, 4, shapes[s], mask, (int)(mask & 1), (int)((mask >> 1) & 1), NULL,
                         &rng);
    const int64_t d1[1] = {1000}, d2[2] = {300, 7};
    for (int op = 0; op < NOPS; op++) {
        run_case(op, 1, d1, 1, 1, 0, NULL, &rng);
        run_case(op, 2, d2, 1, 0, 1, NULL, &rng);
        run_case(op, 2, d2, 2, 1, 0, NULL, &rng);
    }
}

static void test_parallel(void **state)
{
    (void)state;
    tdm_pool *pool;
    tdm_err err;
    assert_int_equal(tdm_pool_create(4, &pool, &err), TDM_OK);
    mt_rng rng = {8};
    const int64_t dims[3] = {64, 129, 40};
    for (int op = 0; op < NOPS; op++)
        for (unsigned mask = 1; mask < 8; mask++)
            run_case(op, 3, dims, mask, 1, 0, pool, &rng);
    tdm_pool_free(pool);
}

static tdm_tensor reduce1(const char *op, const tdm_tensor *x, int n_axes, const int64_t *axes,
                          int keep, int noop, tdm_status want_status)
{
    tdm_node n;
    op_node_init(&n, op, "", 18, 2, 1);
    op_attr_int(&n, "keepdims", keep);
    op_attr_int(&n, "noop_with_empty_axes", noop);
    tdm_tensor at = mt_i64s(n_axes, axes);
    const tdm_tensor *ins[2] = {x, &at};
    tdm_tensor y;
    tdm_err err;
    tdm_status s = mt_run(&n, ins, 2, &y, 1, NULL, &err);
    if (s != want_status)
        fail_msg("%s: status %d (%s)", op, (int)s, err.msg);
    tdm_tensor_free(&at);
    mt_node_free(&n);
    return y;
}

static void test_special_cases(void **state)
{
    (void)state;
    mt_rng rng = {9};
    const int64_t dims[2] = {3, 4};
    tdm_tensor x = mt_rand_f32(&rng, 2, dims, -1, 1);
    /* noop with empty axes: identity */
    tdm_tensor y = reduce1("ReduceSum", &x, 0, NULL, 1, 1, TDM_OK);
    assert_int_equal(y.ndim, 2);
    assert_memory_equal(y.data, x.data, tdm_tensor_nbytes(&x));
    tdm_tensor_free(&y);
    /* NaN propagates through Max/Min in both code paths */
    ((float *)x.data)[5] = NAN;
    const int64_t ax1[1] = {1}, ax0[1] = {0};
    y = reduce1("ReduceMax", &x, 1, ax1, 0, 0, TDM_OK);
    assert_false(isnan(((float *)y.data)[0]));
    assert_true(isnan(((float *)y.data)[1]));
    tdm_tensor_free(&y);
    y = reduce1("ReduceMin", &x, 1, ax0, 0, 0, TDM_OK);
    assert_true(isnan(((float *)y.data)[1]));
    assert_false(isnan(((float *)y.data)[0]));
    tdm_tensor_free(&y);
    /* errors: repeated axis, out of range */
    const int64_t rep[2] = {1, -1}, oor[1] = {2};
    y = reduce1("ReduceSum", &x, 2, rep, 1, 0, TDM_ERR_SHAPE);
    tdm_tensor_free(&y);
    y = reduce1("ReduceSum", &x, 1, oor, 1, 0, TDM_ERR_SHAPE);
    tdm_tensor_free(&y);
    tdm_tensor_free(&x);

    /* empty reduced dim: identities */
    const int64_t ed[2] = {0, 3};
    tdm_tensor e = mt_tensor(TDM_DTYPE_FLOAT32, 2, ed, NULL);
    const struct {
        const char *op;
        float want;
    } ids[] = {{"ReduceSum", 0},
               {"ReduceProd", 1},
               {"ReduceMax", -INFINITY},
               {"ReduceMin", INFINITY},
               {"ReduceLogSumExp", -INFINITY}};
    for (int i = 0; i < 5; i++) {
        y = reduce1(ids[i].op, &e, 1, ax0, 1, 0, TDM_OK);
        assert_int_equal(tdm_tensor_numel(&y), 3);
        for (int k = 0; k < 3; k++)
            assert_true(((float *)y.data)[k] == ids[i].want);
        tdm_tensor_free(&y);
    }
    tdm_tensor_free(&e);

    /* axes input without a value yet: ask again at run time */
    x = mt_rand_f32(&rng, 2, dims, -1, 1);
    tdm_tensor at;
    memset(&at, 0, sizeof at);
    int64_t one = 1;
    tdm_tensor_set_shape(&at, TDM_DTYPE_INT64, 1, &one);
    tdm_node n;
    op_node_init(&n, "ReduceMean", "", 18, 2, 1);
    const tdm_tensor *ins[2] = {&x, &at};
    tdm_err err;
    assert_int_equal(mt_run(&n, ins, 2, &y, 1, NULL, &err), TDM_ERR_NEEDS_VALUE);
    tdm_tensor_free(&y);
    /* float axes are rejected */
    tdm_tensor fa = mt_tensor(TDM_DTYPE_FLOAT32, 1, &one, NULL);
    ins[1] = &fa;
    assert_int_equal(mt_run(&n, ins, 2, &y, 1, NULL, &err), TDM_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "axes"));
    tdm_tensor_free(&y);
    tdm_tensor_free(&fa);
    mt_node_free(&n);
    tdm_tensor_free(&x);
}

static void test_int_and_half(void **state)
{
    (void)state;
    const int64_t dims[2] = {2, 3};
    const int64_t v64[6] = {INT64_MAX, 1, 5, -4, -5, 7};
    tdm_tensor x = mt_tensor(TDM_DTYPE_INT64, 2, dims, v64);
    const int64_t ax0[1] = {0}, ax1[1] = {1};
    tdm_tensor y = reduce1("ReduceSum", &x, 1, ax0, 0, 0, TDM_OK);
    const int64_t sum0[3] = {INT64_MAX - 4, -4, 12};
    assert_memory_equal(y.data, sum0, sizeof sum0);
    tdm_tensor_free(&y);
    y = reduce1("ReduceSum", &x, 1, ax1, 0, 0, TDM_OK); /* wraps */
    assert_int_equal(((int64_t *)y.data)[0], INT64_MIN + 5);
    assert_int_equal(((int64_t *)y.data)[1], -2);
    tdm_tensor_free(&y);
    tdm_tensor_free(&x);

    const int32_t v32[6] = {3, -8, 5, 4, 1, -7};
    x = mt_tensor(TDM_DTYPE_INT32, 2, dims, v32);
    y = reduce1("ReduceMean", &x, 1, ax1, 1, 0, TDM_OK);
    assert_int_equal(y.dtype, TDM_DTYPE_INT32);
    const int32_t mean[2] = {0, -0}; /* 0/3 = 0, -2/3 truncates to 0 */
    assert_memory_equal(y.data, mean, sizeof mean);
    tdm_tensor_free(&y);
    y = reduce1("ReduceMax", &x, 1, ax0, 0, 0, TDM_OK);
    const int32_t mx[3] = {4, 1, 5};
    assert_memory_equal(y.data, mx, sizeof mx);
    tdm_tensor_free(&y);
    y = reduce1("ReduceProd", &x, 0, NULL, 0, 0, TDM_OK);
    assert_int_equal(y.ndim, 0);
    assert_int_equal(((int32_t *)y.data)[0], 3 * -8 * 5 * 4 * 1 * -7);
    tdm_tensor_free(&y);
    tdm_tensor_free(&x);

    uint16_t h[6];
    const float hv[6] = {1, 2, 3, 4, 5, 6.5f};
    for (int i = 0; i < 6; i++)
        h[i] = tdm_fp32_to_fp16(hv[i]);
    x = mt_tensor(TDM_DTYPE_FLOAT16, 2, dims, h);
    y = reduce1("ReduceMean", &x, 1, ax1, 0, 0, TDM_OK);
    assert_int_equal(y.dtype, TDM_DTYPE_FLOAT16);
    assert_true(tdm_fp16_to_fp32(((uint16_t *)y.data)[0]) == 2.0f);
    assert_true(tdm_fp16_to_fp32(((uint16_t *)y.data)[1]) == 5.1666665f ||
                fabsf(tdm_fp16_to_fp32(((uint16_t *)y.data)[1]) - 5.16667f) < 4e-3f);
    tdm_tensor_free(&y);
    tdm_tensor_free(&x);
}

/* ---- ArgMax / ArgMin ---------------------------------------------------------------- */

static void check_arg(const char *op, const tdm_tensor *x, int axis, int keep, int last)
{
    tdm_node n;
    op_node_init(&n, op, "", 13, 1, 1);
    op_attr_int(&n, "axis", axis);
    op_attr_int(&n, "keepdims", keep);
    op_attr_int(&n, "select_last_index", last);
    const tdm_tensor *ins[1] = {x};
    tdm_tensor y;
    tdm_err err;
    if (mt_run(&n, ins, 1, &y, 1, NULL, &err) != TDM_OK)
        fail_msg("%s: %s", op, err.msg);
    assert_int_equal(y.dtype, TDM_DTYPE_INT64);
    int nd = x->ndim, ax = axis < 0 ? axis + nd : axis;
    assert_int_equal(y.ndim, keep ? nd : nd - 1);
    bool is_max = strcmp(op, "ArgMax") == 0;
    int64_t idx[TDM_MAX_DIMS];
    int64_t odims[TDM_MAX_DIMS];
    memcpy(odims, x->dims, sizeof odims);
    odims[ax] = 1;
    for (int64_t o = 0; o < tdm_tensor_numel(&y); o++) {
        mt_unravel(o, nd, odims, idx);
        int64_t best = -1;
        double bv = 0;
        for (int64_t r = 0; r < x->dims[ax]; r++) {
            idx[ax] = r;
            int64_t flat = 0;
            for (int d = 0; d < nd; d++)
                flat = flat * x->dims[d] + idx[d];
            double v = tdm_tensor_get_f64(x, flat);
            bool take;
            if (best < 0)
                take = true;
            else if (isnan(bv))
                take = last && isnan(v);
            else if (isnan(v))
                take = true;
            else
                take = (is_max ? v > bv : v < bv) || (last && v == bv);
            if (take) {
                best = r;
                bv = v;
            }
        }
        assert_int_equal(((int64_t *)y.data)[o], best);
    }
    tdm_tensor_free(&y);
    mt_node_free(&n);
}

static void test_argmax_argmin(void **state)
{
    (void)state;
    mt_rng rng = {31};
    const int64_t dims[3] = {4, 5, 6};
    tdm_tensor xf = mt_tensor(TDM_DTYPE_FLOAT32, 3, dims, NULL);
    tdm_tensor xi = mt_tensor(TDM_DTYPE_INT32, 3, dims, NULL);
    tdm_tensor xu = mt_tensor(TDM_DTYPE_UINT8, 3, dims, NULL);
    for (int64_t i = 0; i < 120; i++) {
        int64_t v = mt_int(&rng, -3, 3); /* many ties */
        ((float *)xf.data)[i] = (float)v;
        ((int32_t *)xi.data)[i] = (int32_t)v;
        ((uint8_t *)xu.data)[i] = (uint8_t)(v + 3);
    }
    ((float *)xf.data)[7] = NAN;
    ((float *)xf.data)[50] = NAN;
    const char *ops[] = {"ArgMax", "ArgMin"};
    for (int o = 0; o < 2; o++)
        for (int axis = -3; axis < 3; axis++)
            for (int keep = 0; keep < 2; keep++)
                for (int last = 0; last < 2; last++) {
                    check_arg(ops[o], &xf, axis, keep, last);
                    check_arg(ops[o], &xi, axis, keep, last);
                    check_arg(ops[o], &xu, axis, keep, last);
                }
    /* axis out of range */
    tdm_node n;
    op_node_init(&n, "ArgMax", "", 13, 1, 1);
    op_attr_int(&n, "axis", 3);
    const tdm_tensor *ins[1] = {&xf};
    tdm_tensor y;
    tdm_err err;
    assert_int_equal(mt_run(&n, ins, 1, &y, 1, NULL, &err), TDM_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "axis 3"));
    tdm_tensor_free(&y);
    mt_node_free(&n);
    tdm_tensor_free(&xf);
    tdm_tensor_free(&xi);
    tdm_tensor_free(&xu);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_axes),      cmocka_unit_test(test_parallel),
        cmocka_unit_test(test_special_cases), cmocka_unit_test(test_int_and_half),
        cmocka_unit_test(test_argmax_argmin),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

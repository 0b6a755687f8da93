/*
 * CumSum and TopK against references that walk each line along the axis by
 * explicit index arithmetic; TopK's reference fully sorts each line with
 * qsort (value order, then lower index first), which the heap selection
 * under test must reproduce, ties and NaN included.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "engine/math_test_util.h"

/* ---- CumSum --------------------------------------------------------------------------- */

static void check_cumsum(const tdm_tensor *x, int64_t axis, int excl, int rev, tdm_dtype axis_dt)
{
    tdm_node n;
    op_node_init(&n, "CumSum", "", 14, 2, 1);
    op_attr_int(&n, "exclusive", excl);
    op_attr_int(&n, "reverse", rev);
    tdm_tensor at = mt_tensor(axis_dt, 0, NULL, NULL);
    if (axis_dt == TDM_DTYPE_INT32)
        *(int32_t *)at.data = (int32_t)axis;
    else
        *(int64_t *)at.data = axis;
    const tdm_tensor *ins[2] = {x, &at};
    tdm_tensor y;
    tdm_err err;
    if (mt_run(&n, ins, 2, &y, 1, NULL, &err) != TDM_OK)
        fail_msg("CumSum: %s", err.msg);
    int nd = x->ndim, ax = (int)(axis < 0 ? axis + nd : axis);
    int64_t idx[TDM_MAX_DIMS];
    for (int64_t i = 0; i < tdm_tensor_numel(x); i++) {
        mt_unravel(i, nd, x->dims, idx);
        int64_t pos = idx[ax];
        double want = 0;
        for (int64_t r = 0; r < x->dims[ax]; r++) {
            bool in = rev ? (excl ? r > pos : r >= pos) : (excl ? r < pos : r <= pos);
            if (!in)
                continue;
            idx[ax] = r;
            int64_t flat = 0;
            for (int d = 0; d < nd; d++)
                flat = flat * x->dims[d] + idx[d];
            want += tdm_tensor_get_f64(x, flat);
        }
        double got = tdm_tensor_get_f64(&y, i);
        if (!mt_close(got, want, 1e-5, 1e-5))
            fail_msg("CumSum axis %lld excl %d rev %d elem %lld: got %g want %g", (long long)axis,
                     excl, rev, (long long)i, got, want);
    }
    tdm_tensor_free(&at);
    tdm_tensor_free(&y);
    mt_node_free(&n);
}

static void test_cumsum(void **state)
{
    (void)state;
    mt_rng rng = {12};
    const int64_t dims[3] = {3, 4, 5};
    tdm_tensor xf = mt_rand_f32(&rng, 3, dims, -2, 2);
    tdm_tensor xi = mt_tensor(TDM_DTYPE_INT32, 3, dims, NULL);
    for (int64_t i = 0; i < 60; i++)
        ((int32_t *)xi.data)[i] = (int32_t)mt_int(&rng, -100, 100);
    for (int64_t axis = -3; axis < 3; axis++)
        for (int excl = 0; excl < 2; excl++)
            for (int rev = 0; rev < 2; rev++) {
                check_cumsum(&xf, axis, excl, rev, TDM_DTYPE_INT64);
                check_cumsum(&xi, axis, excl, rev, TDM_DTYPE_INT32);
            }
    /* errors: axis out of range, axis with two elements */
    tdm_node n;
    op_node_init(&n, "CumSum", "", 14, 2, 1);
    int64_t bad = 3;
    tdm_tensor at = mt_tensor(TDM_DTYPE_INT64, 0, NULL, &bad);
    const tdm_tensor *ins[2] = {&xf, &at};
    tdm_tensor y;
    tdm_err err;
    assert_int_equal(mt_run(&n, ins, 2, &y, 1, NULL, &err), TDM_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "axis 3"));
    tdm_tensor_free(&y);
    const int64_t two[2] = {0, 1};
    tdm_tensor at2 = mt_i64s(2, two);
    ins[1] = &at2;
    assert_int_equal(mt_run(&n, ins, 2, &y, 1, NULL, &err), TDM_ERR_SHAPE);
    tdm_tensor_free(&y);
    mt_node_free(&n);
    tdm_tensor_free(&at);
    tdm_tensor_free(&at2);
    tdm_tensor_free(&xf);
    tdm_tensor_free(&xi);
}

/* ---- TopK ----------------------------------------------------------------------------- */

typedef struct ref_item {
    double v;
    int64_t idx;
    int largest;
} ref_item;

static int ref_cmp(const void *pa, const void *pb)
{
    const ref_item *a = pa, *b = pb;
    bool na = isnan(a->v), nb = isnan(b->v);
    int c;
    if (na || nb)
        c = na == nb ? 0 : (na ? 1 : -1);
    else
        c = a->v < b->v ? -1 : a->v > b->v ? 1 : 0;
    if (c != 0)
        return a->largest ? -c : c;
    return a->idx < b->idx ? -1 : 1;
}

static void check_topk(const tdm_tensor *x, int axis, int64_t k, int largest, int opset)
{
    tdm_node n;
    op_node_init(&n, "TopK", "", opset, opset < 10 ? 1 : 2, 2);
    op_attr_int(&n, "axis", axis);
    op_attr_int(&n, "largest", largest);
    if (opset < 10)
        op_attr_int(&n, "k", k);
    tdm_tensor kt = mt_i64s(1, &k);
    const tdm_tensor *ins[2] = {x, &kt};
    tdm_tensor y[2];
    tdm_err err;
    if (mt_run(&n, ins, opset < 10 ? 1 : 2, y, 2, NULL, &err) != TDM_OK)
        fail_msg("TopK: %s", err.msg);
    int nd = x->ndim, ax = axis < 0 ? axis + nd : axis;
    assert_int_equal(y[0].dtype, x->dtype);
    assert_int_equal(y[1].dtype, TDM_DTYPE_INT64);
    assert_int_equal(y[0].dims[ax], k);
    int64_t R = x->dims[ax];
    ref_item *items = malloc((size_t)R * sizeof *items);
    assert_non_null(items);
    int64_t odims[TDM_MAX_DIMS], idx[TDM_MAX_DIMS];
    memcpy(odims, x->dims, sizeof odims);
    odims[ax] = 1;
    int64_t lines = 1;
    for (int d = 0; d < nd; d++)
        lines *= odims[d];
    for (int64_t l = 0; l < lines; l++) {
        mt_unravel(l, nd, odims, idx);
        for (int64_t r = 0; r < R; r++) {
            idx[ax] = r;
            int64_t flat = 0;
            for (int d = 0; d < nd; d++)
                flat = flat * x->dims[d] + idx[d];
            items[r].v = tdm_tensor_get_f64(x, flat);
            items[r].idx = r;
            items[r].largest = largest;
        }
        qsort(items, (size_t)R, sizeof *items, ref_cmp);
        for (int64_t r = 0; r < k; r++) {
            idx[ax] = r;
            int64_t flat = 0;
            for (int d = 0; d < nd; d++)
                flat = flat * y[0].dims[d] + idx[d];
            double gv = tdm_tensor_get_f64(&y[0], flat);
            int64_t gi = ((int64_t *)y[1].data)[flat];
            if (gi != items[r].idx || !(gv == items[r].v || (isnan(gv) && isnan(items[r].v))))
                fail_msg("TopK axis %d k %lld largest %d: rank %lld got (%g, %lld) want (%g, %lld)",
                         axis, (long long)k, largest, (long long)r, gv, (long long)gi, items[r].v,
                         (long long)items[r].idx);
        }
    }
    free(items);
    tdm_tensor_free(&kt);
    tdm_tensor_free(&y[0]);
    tdm_tensor_free(&y[1]);
    mt_node_free(&n);
}

static void test_topk(void **state)
{
    (void)state;
    mt_rng rng = {13};
    const int64_t dims[3] = {3, 9, 4};
    tdm_tensor xf = mt_tensor(TDM_DTYPE_FLOAT32, 3, dims, NULL);
    tdm_tensor xi = mt_tensor(TDM_DTYPE_INT64, 3, dims, NULL);
    tdm_tensor xu = mt_tensor(TDM_DTYPE_UINT8, 3, dims, NULL);
    for (int64_t i = 0; i < 108; i++) {
        int64_t v = mt_int(&rng, -4, 4); /* plenty of ties */
        ((float *)xf.data)[i] = (float)v * 0.5f;
        ((int64_t *)xi.data)[i] = v * 1000000000000LL;
        ((uint8_t *)xu.data)[i] = (uint8_t)(v + 200);
    }
    ((float *)xf.data)[3] = NAN;
    ((float *)xf.data)[40] = NAN;
    for (int axis = -3; axis < 3; axis++) {
        int64_t R = dims[axis < 0 ? axis + 3 : axis];
        const int64_t ks[4] = {0, 1, 3, R};
        for (int ki = 0; ki < 4; ki++)
            for (int largest = 0; largest < 2; largest++) {
                if (ks[ki] > R)
                    continue;
                check_topk(&xf, axis, ks[ki], largest, 11);
                check_topk(&xi, axis, ks[ki], largest, 11);
                check_topk(&xu, axis, ks[ki], largest, 11);
            }
    }
    check_topk(&xf, -1, 2, 1, 9); /* k as an attribute */
    check_topk(&xf, 1, 9, 1, 1);

    /* errors: k too large; K unknown at plan time asks for its value */
    tdm_node n;
    op_node_init(&n, "TopK", "", 11, 2, 2);
    int64_t k = 5;
    tdm_tensor kt = mt_i64s(1, &k);
    const tdm_tensor *ins[2] = {&xf, &kt};
    tdm_tensor y[2];
    tdm_err err;
    assert_int_equal(mt_run(&n, ins, 2, y, 2, NULL, &err), TDM_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "k=5"));
    tdm_tensor_free(&y[0]);
    tdm_tensor_free(&y[1]);
    tdm_tensor ku;
    memset(&ku, 0, sizeof ku);
    int64_t one = 1;
    tdm_tensor_set_shape(&ku, TDM_DTYPE_INT64, 1, &one);
    ins[1] = &ku;
    assert_int_equal(mt_run(&n, ins, 2, y, 2, NULL, &err), TDM_ERR_NEEDS_VALUE);
    tdm_tensor_free(&y[0]);
    tdm_tensor_free(&y[1]);
    mt_node_free(&n);
    tdm_tensor_free(&kt);
    tdm_tensor_free(&xf);
    tdm_tensor_free(&xi);
    tdm_tensor_free(&xu);
}

static void test_topk_large(void **state)
{
    (void)state;
    /* a long line with small k exercises the bounded heap */
    mt_rng rng = {14};
    const int64_t dims[2] = {2, 5000};
    tdm_tensor x = mt_rand_f32(&rng, 2, dims, -1, 1);
    check_topk(&x, 1, 7, 1, 11);
    check_topk(&x, 1, 7, 0, 11);
    check_topk(&x, 1, 5000, 1, 11);
    tdm_tensor_free(&x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cumsum),
        cmocka_unit_test(test_topk),
        cmocka_unit_test(test_topk_large),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

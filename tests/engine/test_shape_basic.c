/*
 * Shape-only ops: Reshape, Flatten, Squeeze, Unsqueeze, Shape, Size,
 * Constant, ConstantOfShape, Range, EyeLike, Identity, Dropout.
 *
 * Expected shapes and values are written out by hand from the ONNX spec;
 * the plan-time behaviour (inputs with a shape but no data) is checked by
 * calling infer directly: value-dependent ops must ask for the value,
 * shape-only ops (Shape, Size) must not.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <math.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/pool.h"
#include "engine/op.h"
#include "engine/ops/shape_ops.h"
#include "op_harness.h"

/* ---- helpers ------------------------------------------------------------------ */

static tdm_tensor mk(tdm_dtype dt, int nd, const int64_t *dims, const void *data)
{
    tdm_tensor t;
    assert_int_equal(tdm_tensor_make(&t, dt, nd, dims, NULL), TDM_OK);
    if (data != NULL)
        memcpy(t.data, data, tdm_tensor_nbytes(&t));
    return t;
}

static tdm_tensor mk_f32(int nd, const int64_t *dims)
{
    tdm_tensor t = mk(TDM_DTYPE_FLOAT32, nd, dims, NULL);
    for (int64_t i = 0; i < tdm_tensor_numel(&t); i++)
        ((float *)t.data)[i] = (float)i;
    return t;
}

static tdm_tensor mk_i64(int n, const int64_t *v)
{
    int64_t d = n;
    return mk(TDM_DTYPE_INT64, 1, &d, v);
}

/* A tensor whose shape is known and value is not (plan time). */
static tdm_tensor shape_only(tdm_dtype dt, int nd, const int64_t *dims)
{
    tdm_tensor t;
    memset(&t, 0, sizeof t);
    tdm_tensor_set_shape(&t, dt, nd, dims);
    return t;
}

static tdm_status infer_only(const tdm_node *n, const tdm_tensor *const *ins, int n_in,
                             tdm_tensor *outs, int n_out)
{
    const tdm_op *op = tdm_op_find(n->domain, n->op_type);
    assert_non_null(op);
    tdm_scratch scratch = {NULL, 0};
    tdm_tensor *ptrs[8];
    for (int i = 0; i < n_out; i++) {
        memset(&outs[i], 0, sizeof outs[i]);
        ptrs[i] = &outs[i];
    }
    tdm_err err;
    tdm_op_ctx ctx = {n, n_in, ins, n_out, ptrs, NULL, NULL, &scratch, &err};
    tdm_status s = op->infer(&ctx);
    tdm_aligned_free(scratch.p);
    return s;
}

static void node_free(tdm_node *n)
{
    tdm_node_clear(n);
}

static void assert_dims(const tdm_tensor *t, int nd, const int64_t *dims)
{
    assert_int_equal(t->ndim, nd);
    for (int k = 0; k < nd; k++)
        assert_int_equal(t->dims[k], dims[k]);
}

/* Runs a one-output node whose output must equal the input's bytes reshaped to dims. */
static void expect_view(tdm_node *n, const tdm_tensor *const *ins, int n_in, int nd,
                        const int64_t *dims)
{
    tdm_tensor out;
    tdm_err err = {{0}};
    tdm_status s = op_run(n, ins, n_in, &out, 1, NULL, &err);
    if (s != TDM_OK)
        fail_msg("%s: %s", n->op_type, err.msg);
    assert_dims(&out, nd, dims);
    assert_int_equal(out.dtype, ins[0]->dtype);
    assert_memory_equal(out.data, ins[0]->data, tdm_tensor_nbytes(ins[0]));
    tdm_tensor_free(&out);
}

static tdm_status run1(tdm_node *n, const tdm_tensor *const *ins, int n_in, tdm_tensor *out)
{
    tdm_err err = {{0}};
    return op_run(n, ins, n_in, out, 1, NULL, &err);
}

/* ---- Reshape ------------------------------------------------------------------ */

static void test_reshape(void **state)
{
    (void)state;
    int64_t xd[3] = {2, 3, 4};
    tdm_tensor x = mk_f32(3, xd);
    struct {
        int n;
        int64_t shape[4];
        int allowzero;
        int nd;
        int64_t want[4];
    } cases[] = {
        {2, {4, -1}, 0, 2, {4, 6}},
        {3, {0, 0, -1}, 0, 3, {2, 3, 4}},
        {1, {-1}, 0, 1, {24}},
        {4, {2, 0, 2, 2}, 0, 4, {2, 3, 2, 2}},
        {3, {-1, 2, 3}, 0, 3, {4, 2, 3}},
        {2, {6, 4}, 1, 2, {6, 4}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        tdm_node n;
        op_node_init(&n, "Reshape", "", 14, 2, 1);
        op_attr_int(&n, "allowzero", cases[c].allowzero);
        tdm_tensor st = mk_i64(cases[c].n, cases[c].shape);
        const tdm_tensor *ins[2] = {&x, &st};
        expect_view(&n, ins, 2, cases[c].nd, cases[c].want);
        tdm_tensor_free(&st);
        node_free(&n);
    }
    tdm_tensor_free(&x);
}

static void test_reshape_errors_and_allowzero(void **state)
{
    (void)state;
    int64_t xd[3] = {2, 3, 4};
    tdm_tensor x = mk_f32(3, xd);
    const int64_t bad[][3] = {{5, -1, 0}, {-1, -1, 2}, {7, 7, 7}, {-2, 3, 4}};
    for (size_t c = 0; c < 4; c++) {
        tdm_node n;
        op_node_init(&n, "Reshape", "", 13, 2, 1);
        tdm_tensor st = mk_i64(3, bad[c]);
        const tdm_tensor *ins[2] = {&x, &st};
        tdm_tensor out;
        assert_int_equal(run1(&n, ins, 2, &out), TDM_ERR_SHAPE);
        tdm_tensor_free(&out);
        tdm_tensor_free(&st);
        node_free(&n);
    }
    /* allowzero keeps a literal 0: an empty tensor reshaped to [3,4,0] */
    int64_t ed[3] = {0, 3, 4}, shp[3] = {3, 4, 0};
    tdm_tensor e = mk(TDM_DTYPE_FLOAT32, 3, ed, NULL);
    tdm_node n;
    op_node_init(&n, "Reshape", "", 14, 2, 1);
    op_attr_int(&n, "allowzero", 1);
    tdm_tensor st = mk_i64(3, shp);
    const tdm_tensor *ins[2] = {&e, &st};
    tdm_tensor out;
    assert_int_equal(run1(&n, ins, 2, &out), TDM_OK);
    assert_dims(&out, 3, shp);
    tdm_tensor_free(&out);
    /* without allowzero the 0 copies dim 2 of the input (4): 3*4*4 != 0 */
    node_free(&n);
    op_node_init(&n, "Reshape", "", 13, 2, 1);
    assert_int_equal(run1(&n, ins, 2, &out), TDM_ERR_SHAPE);
    tdm_tensor_free(&out);
    /* plan time: unknown shape value */
    tdm_tensor unk = shape_only(TDM_DTYPE_INT64, 1, (int64_t[]){3});
    const tdm_tensor *ins2[2] = {&x, &unk};
    assert_int_equal(infer_only(&n, ins2, 2, &out, 1), TDM_ERR_NEEDS_VALUE);
    /* opset 1-4: shape attribute */
    node_free(&n);
    op_node_init(&n, "Reshape", "", 1, 1, 1);
    op_attr_ints(&n, "shape", (int64_t[]){-1, 12}, 2);
    const tdm_tensor *ins1[1] = {&x};
    expect_view(&n, ins1, 1, 2, (int64_t[]){2, 12});
    node_free(&n);
    tdm_tensor_free(&st);
    tdm_tensor_free(&e);
    tdm_tensor_free(&x);
}

/* ---- Flatten / Squeeze / Unsqueeze / Identity ------------------------------------ */

static void test_flatten(void **state)
{
    (void)state;
    int64_t xd[4] = {2, 3, 4, 5};
    tdm_tensor x = mk_f32(4, xd);
    const int64_t want[][2] = {{1, 120}, {2, 60}, {6, 20}, {24, 5}, {120, 1}};
    for (int axis = -4; axis <= 4; axis++) {
        tdm_node n;
        op_node_init(&n, "Flatten", "", 13, 1, 1);
        op_attr_int(&n, "axis", axis);
        const tdm_tensor *ins[1] = {&x};
        expect_view(&n, ins, 1, 2, want[axis < 0 ? axis + 4 : axis]);
        node_free(&n);
    }
    tdm_node n;
    op_node_init(&n, "Flatten", "", 13, 1, 1);
    op_attr_int(&n, "axis", 5);
    const tdm_tensor *ins[1] = {&x};
    tdm_tensor out;
    assert_int_equal(run1(&n, ins, 1, &out), TDM_ERR_INVALID_ARG);
    node_free(&n);
    tdm_tensor_free(&x);
}

static void test_squeeze_unsqueeze(void **state)
{
    (void)state;
    int64_t xd[4] = {1, 3, 1, 5};
    tdm_tensor x = mk_f32(4, xd);
    const tdm_tensor *ins1[1] = {&x};
    /* opset 11: axes attribute; opset 13: axes input; no axes: all ones */
    tdm_node n;
    op_node_init(&n, "Squeeze", "", 11, 1, 1);
    op_attr_ints(&n, "axes", (int64_t[]){-2}, 1);
    expect_view(&n, ins1, 1, 3, (int64_t[]){1, 3, 5});
    node_free(&n);

    op_node_init(&n, "Squeeze", "", 13, 2, 1);
    tdm_tensor ax = mk_i64(2, (int64_t[]){0, 2});
    const tdm_tensor *ins2[2] = {&x, &ax};
    expect_view(&n, ins2, 2, 2, (int64_t[]){3, 5});
    const tdm_tensor *ins_none[2] = {&x, NULL};
    expect_view(&n, ins_none, 2, 2, (int64_t[]){3, 5});
    tdm_tensor no_axes = mk(TDM_DTYPE_INT64, 1, (int64_t[]){0}, NULL);
    const tdm_tensor *ins_empty[2] = {&x, &no_axes};
    expect_view(&n, ins_empty, 2, 2, (int64_t[]){3, 5});
    tdm_tensor_free(&no_axes);
    tdm_tensor bad = mk_i64(1, (int64_t[]){1});
    const tdm_tensor *insb[2] = {&x, &bad};
    tdm_tensor out;
    assert_int_equal(run1(&n, insb, 2, &out), TDM_ERR_SHAPE); /* dim 1 is 3 */
    node_free(&n);

    op_node_init(&n, "Unsqueeze", "", 13, 2, 1);
    tdm_tensor ua = mk_i64(3, (int64_t[]){-1, 0, 3});
    const tdm_tensor *ins3[2] = {&x, &ua};
    expect_view(&n, ins3, 2, 7, (int64_t[]){1, 1, 3, 1, 1, 5, 1});
    tdm_tensor dup = mk_i64(2, (int64_t[]){1, 1});
    const tdm_tensor *ins4[2] = {&x, &dup};
    assert_int_equal(run1(&n, ins4, 2, &out), TDM_ERR_INVALID_ARG);
    tdm_tensor big = mk_i64(5, (int64_t[]){0, 1, 2, 3, 4});
    const tdm_tensor *ins5[2] = {&x, &big};
    assert_int_equal(run1(&n, ins5, 2, &out), TDM_ERR_UNSUPPORTED); /* rank 9 */
    node_free(&n);

    op_node_init(&n, "Unsqueeze", "", 11, 1, 1);
    op_attr_ints(&n, "axes", (int64_t[]){4, 1}, 2);
    expect_view(&n, ins1, 1, 6, (int64_t[]){1, 1, 3, 1, 1, 5});
    node_free(&n);

    op_node_init(&n, "Identity", "", 16, 1, 1);
    expect_view(&n, ins1, 1, 4, xd);
    node_free(&n);
    tdm_tensor_free(&ax);
    tdm_tensor_free(&bad);
    tdm_tensor_free(&ua);
    tdm_tensor_free(&dup);
    tdm_tensor_free(&big);
    tdm_tensor_free(&x);
}

/* ---- Shape / Size ------------------------------------------------------------ */

static void test_shape_size(void **state)
{
    (void)state;
    int64_t xd[4] = {2, 3, 4, 5};
    tdm_tensor x = shape_only(TDM_DTYPE_FLOAT32, 4, xd); /* never needs data */
    const tdm_tensor *ins[1] = {&x};
    struct {
        int has_start, has_end;
        int64_t start, end;
        int n;
        int64_t want[4];
    } cases[] = {
        {0, 0, 0, 0, 4, {2, 3, 4, 5}}, {1, 0, 1, 0, 3, {3, 4, 5}},      {0, 1, 0, -1, 3, {2, 3, 4}},
        {1, 1, 1, 2, 1, {3}},          {1, 0, -10, 0, 4, {2, 3, 4, 5}}, {1, 0, 10, 0, 0, {0}},
        {1, 1, 3, 1, 0, {0}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        tdm_node n;
        op_node_init(&n, "Shape", "", 15, 1, 1);
        if (cases[c].has_start)
            op_attr_int(&n, "start", cases[c].start);
        if (cases[c].has_end)
            op_attr_int(&n, "end", cases[c].end);
        tdm_tensor out;
        assert_int_equal(infer_only(&n, ins, 1, &out, 1), TDM_OK);
        assert_int_equal(out.dtype, TDM_DTYPE_INT64);
        assert_int_equal(out.dims[0], cases[c].n);
        assert_int_equal(op_run(&n, ins, 1, &out, 1, NULL, NULL), TDM_OK);
        for (int i = 0; i < cases[c].n; i++)
            assert_int_equal(((int64_t *)out.data)[i], cases[c].want[i]);
        tdm_tensor_free(&out);
        node_free(&n);
    }
    tdm_node n;
    op_node_init(&n, "Size", "", 13, 1, 1);
    tdm_tensor out;
    assert_int_equal(op_run(&n, ins, 1, &out, 1, NULL, NULL), TDM_OK);
    assert_int_equal(out.ndim, 0);
    assert_int_equal(*(int64_t *)out.data, 120);
    tdm_tensor_free(&out);
    node_free(&n);
}

/* ---- Constant / ConstantOfShape / Range / EyeLike ----------------------------------- */

static void test_constant(void **state)
{
    (void)state;
    tdm_node n;
    op_node_init(&n, "Constant", "", 13, 0, 1);
    op_attr_ints(&n, "value_ints", (int64_t[]){4, -5, 6}, 3);
    tdm_tensor out;
    assert_int_equal(op_run(&n, NULL, 0, &out, 1, NULL, NULL), TDM_OK);
    assert_int_equal(out.dtype, TDM_DTYPE_INT64);
    assert_dims(&out, 1, (int64_t[]){3});
    assert_int_equal(((int64_t *)out.data)[1], -5);
    tdm_tensor_free(&out);
    node_free(&n);

    op_node_init(&n, "Constant", "", 13, 0, 1);
    op_attr_float(&n, "value_float", 2.5f);
    assert_int_equal(op_run(&n, NULL, 0, &out, 1, NULL, NULL), TDM_OK);
    assert_int_equal(out.ndim, 0);
    assert_true(*(float *)out.data == 2.5f);
    tdm_tensor_free(&out);
    node_free(&n);

    op_node_init(&n, "Constant", "", 13, 0, 1);
    tdm_attr *a = tdm_node_add_attr(&n, "value", TDM_ATTR_TENSOR);
    int16_t v[4] = {1, -2, 3, -4};
    a->t = mk(TDM_DTYPE_INT16, 2, (int64_t[]){2, 2}, v);
    assert_int_equal(op_run(&n, NULL, 0, &out, 1, NULL, NULL), TDM_OK);
    assert_int_equal(out.dtype, TDM_DTYPE_INT16);
    assert_memory_equal(out.data, v, sizeof v);
    tdm_tensor_free(&out);
    node_free(&n);

    op_node_init(&n, "Constant", "", 13, 0, 1);
    tdm_node_add_attr(&n, "sparse_value", TDM_ATTR_TENSOR);
    assert_int_equal(op_run(&n, NULL, 0, &out, 1, NULL, NULL), TDM_ERR_UNSUPPORTED);
    node_free(&n);
}

static void test_constant_of_shape(void **state)
{
    (void)state;
    tdm_node n;
    op_node_init(&n, "ConstantOfShape", "", 9, 1, 1);
    tdm_attr *a = tdm_node_add_attr(&n, "value", TDM_ATTR_TENSOR);
    int32_t seven = 7;
    a->t = mk(TDM_DTYPE_INT32, 1, (int64_t[]){1}, &seven);
    tdm_tensor st = mk_i64(2, (int64_t[]){3, 2});
    const tdm_tensor *ins[1] = {&st};
    tdm_tensor out;
    assert_int_equal(op_run(&n, ins, 1, &out, 1, NULL, NULL), TDM_OK);
    assert_int_equal(out.dtype, TDM_DTYPE_INT32);
    assert_dims(&out, 2, (int64_t[]){3, 2});
    for (int i = 0; i < 6; i++)
        assert_int_equal(((int32_t *)out.data)[i], 7);
    tdm_tensor_free(&out);
    /* empty shape -> scalar; unknown shape value -> NEEDS_VALUE; negative -> error */
    tdm_tensor empty = mk(TDM_DTYPE_INT64, 1, (int64_t[]){0}, NULL);
    ins[0] = &empty;
    assert_int_equal(op_run(&n, ins, 1, &out, 1, NULL, NULL), TDM_OK);
    assert_int_equal(out.ndim, 0);
    assert_int_equal(*(int32_t *)out.data, 7);
    tdm_tensor_free(&out);
    tdm_tensor unk = shape_only(TDM_DTYPE_INT64, 1, (int64_t[]){2});
    ins[0] = &unk;
    assert_int_equal(infer_only(&n, ins, 1, &out, 1), TDM_ERR_NEEDS_VALUE);
    tdm_tensor neg = mk_i64(2, (int64_t[]){3, -1});
    ins[0] = &neg;
    assert_int_equal(op_run(&n, ins, 1, &out, 1, NULL, NULL), TDM_ERR_SHAPE);
    tdm_tensor huge = mk_i64(3, (int64_t[]){1 << 30, 1 << 30, 1 << 30});
    ins[0] = &huge;
    assert_int_equal(op_run(&n, ins, 1, &out, 1, NULL, NULL), TDM_ERR_NOMEM);
    node_free(&n);
    /* default value: float32 zeros */
    op_node_init(&n, "ConstantOfShape", "", 9, 1, 1);
    ins[0] = &st;
    assert_int_equal(op_run(&n, ins, 1, &out, 1, NULL, NULL), TDM_OK);
    assert_int_equal(out.dtype, TDM_DTYPE_FLOAT32);
    assert_true(((float *)out.data)[5] == 0.0f);
    tdm_tensor_free(&out);
    node_free(&n);
    tdm_tensor_free(&st);
    tdm_tensor_free(&empty);
    tdm_tensor_free(&neg);
    tdm_tensor_free(&huge);
}

static void test_range(void **state)
{
    (void)state;
    tdm_node n;
    op_node_init(&n, "Range", "", 11, 3, 1);
    struct {
        int64_t a, b, d;
        int64_t want[8];
        int n;
    } ic[] = {
        {10, 4, -3, {10, 7}, 2}, {0, 5, 1, {0, 1, 2, 3, 4}, 5},
        {1, 2, 5, {1}, 1},       {5, 5, 1, {0}, 0},
        {3, 1, 1, {0}, 0},       {-3, 4, 2, {-3, -1, 1, 3}, 4},
    };
    for (size_t c = 0; c < sizeof ic / sizeof ic[0]; c++) {
        int32_t a = (int32_t)ic[c].a, b = (int32_t)ic[c].b, d = (int32_t)ic[c].d;
        tdm_tensor ta = mk(TDM_DTYPE_INT32, 0, NULL, &a), tb = mk(TDM_DTYPE_INT32, 0, NULL, &b),
                   td = mk(TDM_DTYPE_INT32, 0, NULL, &d);
        const tdm_tensor *ins[3] = {&ta, &tb, &td};
        tdm_tensor out;
        assert_int_equal(op_run(&n, ins, 3, &out, 1, NULL, NULL), TDM_OK);
        assert_int_equal(out.dtype, TDM_DTYPE_INT32);
        assert_int_equal(out.dims[0], ic[c].n);
        for (int i = 0; i < ic[c].n; i++)
            assert_int_equal(((int32_t *)out.data)[i], ic[c].want[i]);
        tdm_tensor_free(&out);
        tdm_tensor_free(&ta);
        tdm_tensor_free(&tb);
        tdm_tensor_free(&td);
    }
    float fa = 1.0f, fb = 5.0f, fd = 1.5f;
    tdm_tensor ta = mk(TDM_DTYPE_FLOAT32, 0, NULL, &fa), tb = mk(TDM_DTYPE_FLOAT32, 0, NULL, &fb),
               td = mk(TDM_DTYPE_FLOAT32, 0, NULL, &fd);
    const tdm_tensor *ins[3] = {&ta, &tb, &td};
    tdm_tensor out;
    assert_int_equal(op_run(&n, ins, 3, &out, 1, NULL, NULL), TDM_OK);
    assert_int_equal(out.dims[0], 3);
    assert_true(((float *)out.data)[2] == 4.0f);
    tdm_tensor_free(&out);
    /* zero delta and a range that is too large are errors */
    *(float *)td.data = 0.0f;
    assert_int_equal(op_run(&n, ins, 3, &out, 1, NULL, NULL), TDM_ERR_INVALID_ARG);
    *(float *)td.data = 1e-12f;
    *(float *)tb.data = 1e10f;
    assert_int_not_equal(op_run(&n, ins, 3, &out, 1, NULL, NULL), TDM_OK);
    tdm_tensor unk = shape_only(TDM_DTYPE_FLOAT32, 0, NULL);
    ins[1] = &unk;
    assert_int_equal(infer_only(&n, ins, 3, &out, 1), TDM_ERR_NEEDS_VALUE);
    tdm_tensor_free(&ta);
    tdm_tensor_free(&tb);
    tdm_tensor_free(&td);
    /* int64 extremes do not overflow */
    int64_t lo = INT64_MIN, hi = INT64_MAX, one = 1;
    tdm_tensor la = mk(TDM_DTYPE_INT64, 0, NULL, &lo), lb = mk(TDM_DTYPE_INT64, 0, NULL, &hi),
               ld = mk(TDM_DTYPE_INT64, 0, NULL, &one);
    const tdm_tensor *ins2[3] = {&la, &lb, &ld};
    assert_int_not_equal(op_run(&n, ins2, 3, &out, 1, NULL, NULL), TDM_OK);
    tdm_tensor_free(&la);
    tdm_tensor_free(&lb);
    tdm_tensor_free(&ld);
    node_free(&n);
}

static void test_eye_like(void **state)
{
    (void)state;
    int64_t xd[2] = {3, 4};
    tdm_tensor x = shape_only(TDM_DTYPE_INT32, 2, xd);
    for (int k = -4; k <= 5; k++) {
        tdm_node n;
        op_node_init(&n, "EyeLike", "", 9, 1, 1);
        op_attr_int(&n, "k", k);
        op_attr_int(&n, "dtype", TDM_DTYPE_FLOAT64);
        const tdm_tensor *ins[1] = {&x};
        tdm_tensor out;
        assert_int_equal(op_run(&n, ins, 1, &out, 1, NULL, NULL), TDM_OK);
        assert_int_equal(out.dtype, TDM_DTYPE_FLOAT64);
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 4; j++)
                assert_true(((double *)out.data)[i * 4 + j] == (j - i == k ? 1.0 : 0.0));
        tdm_tensor_free(&out);
        node_free(&n);
    }
}

/* ---- Dropout -------------------------------------------------------------------- */

static void test_dropout(void **state)
{
    (void)state;
    int64_t xd[2] = {2, 3};
    tdm_tensor x = mk_f32(2, xd);
    tdm_node n;
    op_node_init(&n, "Dropout", "", 13, 1, 2);
    const tdm_tensor *ins[1] = {&x};
    tdm_tensor out[2];
    assert_int_equal(op_run(&n, ins, 1, out, 2, NULL, NULL), TDM_OK);
    assert_memory_equal(out[0].data, x.data, tdm_tensor_nbytes(&x));
    assert_int_equal(out[1].dtype, TDM_DTYPE_BOOL);
    for (int i = 0; i < 6; i++)
        assert_int_equal(((uint8_t *)out[1].data)[i], 1);
    tdm_tensor_free(&out[0]);
    tdm_tensor_free(&out[1]);
    node_free(&n);
    /* training mode with a non-zero ratio is random: refused */
    op_node_init(&n, "Dropout", "", 13, 3, 1);
    float ratio = 0.5f;
    uint8_t yes = 1;
    tdm_tensor tr = mk(TDM_DTYPE_FLOAT32, 0, NULL, &ratio), tm = mk(TDM_DTYPE_BOOL, 0, NULL, &yes);
    const tdm_tensor *ins3[3] = {&x, &tr, &tm};
    assert_int_equal(op_run(&n, ins3, 3, out, 1, NULL, NULL), TDM_ERR_UNSUPPORTED);
    tdm_tensor_free(&out[0]);
    *(float *)tr.data = 0.0f;
    assert_int_equal(op_run(&n, ins3, 3, out, 1, NULL, NULL), TDM_OK);
    tdm_tensor_free(&out[0]);
    node_free(&n);
    tdm_tensor_free(&tr);
    tdm_tensor_free(&tm);
    tdm_tensor_free(&x);
}

/* ---- scalar conversion (constants written in a dtype) ------------------------------ */

static void test_scalar_conversion(void **state)
{
    (void)state;
    unsigned char b[8];
    struct {
        tdm_dtype dt;
        double v;
        int64_t want;
    } ic[] = {
        {TDM_DTYPE_UINT8, 300.7, 255},
        {TDM_DTYPE_UINT8, -5, 0},
        {TDM_DTYPE_INT8, -1e9, -128},
        {TDM_DTYPE_INT8, 12.9, 12},
        {TDM_DTYPE_INT16, 40000, 32767},
        {TDM_DTYPE_UINT16, 70000, 65535},
        {TDM_DTYPE_INT32, -3e10, INT32_MIN},
        {TDM_DTYPE_UINT32, 5e9, UINT32_MAX},
        {TDM_DTYPE_INT64, 1e30, INT64_MAX - 1023},
        {TDM_DTYPE_INT64, NAN, 0},
        {TDM_DTYPE_BOOL, 0.5, 1},
        {TDM_DTYPE_BOOL, 0.0, 0},
    };
    for (size_t c = 0; c < sizeof ic / sizeof ic[0]; c++) {
        memset(b, 0, sizeof b);
        assert_true(tdm_shp_scalar_from_f64(ic[c].dt, ic[c].v, b));
        tdm_tensor t;
        memset(&t, 0, sizeof t);
        tdm_tensor_set_shape(&t, ic[c].dt, 0, NULL);
        t.data = b;
        assert_int_equal(tdm_tensor_get_i64(&t, 0), ic[c].want);
    }
    assert_true(tdm_shp_scalar_from_f64(TDM_DTYPE_UINT64, 1e30, b));
    assert_true(*(uint64_t *)b == UINT64_MAX);
    assert_true(tdm_shp_scalar_from_f64(TDM_DTYPE_UINT64, -1, b));
    assert_true(*(uint64_t *)b == 0);
    assert_true(tdm_shp_scalar_from_f64(TDM_DTYPE_FLOAT16, 1.5, b));
    assert_int_equal(*(uint16_t *)b, 0x3e00);
    assert_true(tdm_shp_scalar_from_f64(TDM_DTYPE_BFLOAT16, 1.5, b));
    assert_int_equal(*(uint16_t *)b, 0x3fc0);
    assert_true(tdm_shp_scalar_from_f64(TDM_DTYPE_BFLOAT16, NAN, b));
    assert_true(isnan(tdm_bf16_to_fp32(*(uint16_t *)b)));
    assert_false(tdm_shp_scalar_from_f64(TDM_DTYPE_STRING, 1, b));
}

/* A big Identity goes through the pool's chunked copy. */
static void test_identity_large(void **state)
{
    (void)state;
    tdm_pool *pool = NULL;
    assert_int_equal(tdm_pool_create(2, &pool, NULL), TDM_OK);
    int64_t d[1] = {(3 << 20) + 17};
    tdm_tensor x = mk_f32(1, d);
    tdm_node n;
    op_node_init(&n, "Identity", "", 16, 1, 1);
    const tdm_tensor *ins[1] = {&x};
    tdm_tensor out;
    assert_int_equal(op_run(&n, ins, 1, &out, 1, pool, NULL), TDM_OK);
    assert_memory_equal(out.data, x.data, tdm_tensor_nbytes(&x));
    tdm_tensor_free(&out);
    node_free(&n);
    tdm_tensor_free(&x);
    tdm_pool_free(pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reshape),
        cmocka_unit_test(test_reshape_errors_and_allowzero),
        cmocka_unit_test(test_flatten),
        cmocka_unit_test(test_squeeze_unsqueeze),
        cmocka_unit_test(test_shape_size),
        cmocka_unit_test(test_constant),
        cmocka_unit_test(test_constant_of_shape),
        cmocka_unit_test(test_range),
        cmocka_unit_test(test_eye_like),
        cmocka_unit_test(test_dropout),
        cmocka_unit_test(test_scalar_conversion),
        cmocka_unit_test(test_identity_large),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * Executor: whole runs, split runs from any frontier, plan caching across
 * shapes, dynamic shapes, and every error a caller can cause.
 *
 * The graphs are built in memory with the IR API so the test does not
 * depend on the ONNX reader:
 *
 *   x ─► Add(x, c1) ─► a ─► Relu ─► r ─► Mul(r, x) ─► y
 *                                  └──────────────► z = Neg(r)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/ir.h"
#include "engine/op.h"
#include "tandem/tandem.h"

static int32_t add_input(tdm_graph *g, const char *name, int ndim, const int64_t *dims)
{
    int32_t v = tdm_graph_intern(g, name);
    g->values[v].is_input = true;
    g->values[v].dtype = TDM_DTYPE_FLOAT32;
    g->values[v].ndim = ndim;
    for (int d = 0; d < ndim; d++)
        g->values[v].dims[d] = dims[d];
    int32_t *in = realloc(g->inputs, sizeof *in * (size_t)(g->n_inputs + 1));
    assert_non_null(in);
    g->inputs = in;
    g->inputs[g->n_inputs++] = v;
    return v;
}

static void add_output(tdm_graph *g, int32_t v)
{
    int32_t *o = realloc(g->outputs, sizeof *o * (size_t)(g->n_outputs + 1));
    assert_non_null(o);
    g->outputs = o;
    g->outputs[g->n_outputs++] = v;
    g->values[v].is_output = true;
}

static int32_t node(tdm_graph *g, const char *op, int32_t a, int32_t b, const char *out)
{
    int32_t i = tdm_graph_add_node(g, op, "", out, b >= 0 ? 2 : 1, 1);
    assert_true(i >= 0);
    int32_t o = tdm_graph_intern(g, out);
    g->nodes[i].in[0] = a;
    if (b >= 0)
        g->nodes[i].in[1] = b;
    g->nodes[i].out[0] = o;
    g->nodes[i].opset = 13;
    return o;
}

/* The graph of the header comment, x of shape [batch, 4] (batch symbolic). */
static tdm_graph *make_graph(void)
{
    tdm_graph *g = NULL;
    assert_int_equal(tdm_graph_new(&g, NULL), TDM_OK);
    g->opset = 13;
    int32_t x = add_input(g, "x", 2, (int64_t[]){-1, 4});
    int32_t c1 = tdm_graph_intern(g, "c1");
    tdm_value *cv = &g->values[c1];
    cv->is_const = true;
    assert_int_equal(tdm_tensor_make(&cv->cval, TDM_DTYPE_FLOAT32, 1, (int64_t[]){4}, NULL), 0);
    float *c = cv->cval.data;
    for (int i = 0; i < 4; i++)
        c[i] = (float)i - 1.5f;
    int32_t a = node(g, "Add", x, c1, "a");
    int32_t r = node(g, "Relu", a, -1, "r");
    int32_t y = node(g, "Mul", r, x, "y");
    int32_t z = node(g, "Neg", r, -1, "z");
    add_output(g, y);
    add_output(g, z);
    assert_int_equal(tdm_graph_compact(g, NULL), TDM_OK);
    assert_int_equal(tdm_graph_validate(g, NULL), TDM_OK);
    return g;
}

static void fill(tdm_tensor *t, int64_t rows, float seed)
{
    assert_int_equal(tdm_tensor_make(t, TDM_DTYPE_FLOAT32, 2, (int64_t[]){rows, 4}, NULL), 0);
    float *p = t->data;
    for (int64_t i = 0; i < rows * 4; i++)
        p[i] = sinf(seed + (float)i);
}

static void expect(const tdm_tensor *x, const tdm_tensor *y, const tdm_tensor *z)
{
    const float *xp = x->data, *yp = y->data, *zp = z->data;
    int64_t n = tdm_tensor_numel(x);
    assert_int_equal(tdm_tensor_numel(y), n);
    for (int64_t i = 0; i < n; i++) {
        float a = xp[i] + ((float)(i % 4) - 1.5f);
        float r = a > 0 ? a : 0;
        assert_float_equal(yp[i], r * xp[i], 1e-6);
        assert_float_equal(zp[i], -r, 1e-6);
    }
}

static void test_whole_run_and_shapes(void **state)
{
    (void)state;
    tdm_graph *g = make_graph();
    for (int threads = 1; threads <= 2; threads++) {
        tdm_session *s = NULL;
        tdm_session_options so = {.threads = threads};
        assert_int_equal(tdm_session_create(g, &so, &s, NULL), TDM_OK);
        /* Several batch sizes, revisiting each: exercises plan building and the plan cache. */
        int64_t rows[] = {1, 3, 17, 3, 1, 64, 2, 5, 7, 9, 11, 13, 17};
        for (size_t k = 0; k < sizeof rows / sizeof rows[0]; k++) {
            tdm_tensor x, out[2];
            fill(&x, rows[k], (float)k);
            const char *names[] = {"x"};
            tdm_err err = {{0}};
            assert_int_equal(tdm_session_run(s, 1, names, &x, out, &err), TDM_OK);
            expect(&x, &out[0], &out[1]);
            tdm_tensor_free(&x);
            tdm_tensor_free(&out[0]);
            tdm_tensor_free(&out[1]);
        }
        tdm_session_free(s);
    }
    tdm_graph_free(g);
}

static void test_split_run_equals_whole(void **state)
{
    (void)state;
    tdm_graph *g = make_graph();
    tdm_session *s = NULL;
    assert_int_equal(tdm_session_create(g, NULL, &s, NULL), TDM_OK);
    tdm_tensor x, cut[2], out[2];
    fill(&x, 5, 0.25f);
    /* Head: x -> r. The tail needs r and x (Mul reads x): the frontier is {r, x}. */
    const char *in_names[] = {"x"};
    const char *cut_names[] = {"r", "x"};
    tdm_err err = {{0}};
    assert_int_equal(tdm_session_run_range(s, 1, in_names, &x, 1, cut_names, cut, &err), TDM_OK);
    tdm_tensor_free(&cut[1]); /* the head copied x out too; use the caller's */
    cut[1] = x;
    const char *out_names[] = {"y", "z"};
    assert_int_equal(tdm_session_run_range(s, 2, cut_names, cut, 2, out_names, out, &err), TDM_OK);
    expect(&x, &out[0], &out[1]);
    /* A tail that lacks part of the frontier names what is missing. */
    tdm_tensor bad[2];
    tdm_status st = tdm_session_run_range(s, 1, cut_names, cut, 2, out_names, bad, &err);
    assert_int_equal(st, TDM_ERR_INVALID_ARG);
    assert_non_null(strstr(err.msg, "'x'"));
    tdm_tensor_free(&cut[0]);
    tdm_tensor_free(&out[0]);
    tdm_tensor_free(&out[1]);
    tdm_tensor_free(&x);
    tdm_session_free(s);
    tdm_graph_free(g);
}

static void test_caller_errors(void **state)
{
    (void)state;
    tdm_graph *g = make_graph();
    tdm_session *s = NULL;
    assert_int_equal(tdm_session_create(g, NULL, &s, NULL), TDM_OK);
    tdm_tensor x, out[2];
    tdm_err err = {{0}};
    const char *names[] = {"x"};
    /* missing input */
    assert_int_equal(tdm_session_run(s, 0, names, &x, out, &err), TDM_ERR_INVALID_ARG);
    assert_non_null(strstr(err.msg, "'x'"));
    /* wrong fixed dim */
    assert_int_equal(tdm_tensor_make(&x, TDM_DTYPE_FLOAT32, 2, (int64_t[]){2, 5}, NULL), 0);
    assert_int_equal(tdm_session_run(s, 1, names, &x, out, &err), TDM_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "dim 1"));
    tdm_tensor_free(&x);
    /* wrong rank */
    assert_int_equal(tdm_tensor_make(&x, TDM_DTYPE_FLOAT32, 1, (int64_t[]){4}, NULL), 0);
    assert_int_equal(tdm_session_run(s, 1, names, &x, out, &err), TDM_ERR_SHAPE);
    tdm_tensor_free(&x);
    /* wrong dtype */
    assert_int_equal(tdm_tensor_make(&x, TDM_DTYPE_INT64, 2, (int64_t[]){2, 4}, NULL), 0);
    assert_int_equal(tdm_session_run(s, 1, names, &x, out, &err), TDM_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "float32"));
    tdm_tensor_free(&x);
    /* unknown tensor names and constants are refused */
    fill(&x, 2, 0);
    const char *unknown[] = {"nope"};
    assert_int_equal(tdm_session_run_range(s, 1, names, &x, 1, unknown, out, &err),
                     TDM_ERR_NOT_FOUND);
    const char *constant[] = {"c1"};
    assert_int_equal(tdm_session_run_range(s, 1, constant, &x, 1, names, out, &err),
                     TDM_ERR_INVALID_ARG);
    /* the session still works after errors */
    assert_int_equal(tdm_session_run(s, 1, names, &x, out, &err), TDM_OK);
    expect(&x, &out[0], &out[1]);
    tdm_tensor_free(&out[0]);
    tdm_tensor_free(&out[1]);
    tdm_tensor_free(&x);
    tdm_session_free(s);
    tdm_graph_free(g);
}

static void test_unsupported_op_named(void **state)
{
    (void)state;
    tdm_graph *g = make_graph();
    free(g->nodes[1].op_type);
    g->nodes[1].op_type = strdup("NoSuchOp");
    tdm_session *s = NULL;
    tdm_err err = {{0}};
    assert_int_equal(tdm_session_create(g, NULL, &s, &err), TDM_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "NoSuchOp"));
    assert_null(s);
    tdm_graph_free(g);
}

/*
 * Shape of a graph input folds into the plan of each input shape (so the
 * Reshape after it has a static shape and an arena slot): runs at
 * alternating batch sizes must each get their own shape, never the last
 * plan's, and split runs from the Relu output still work.
 *
 *   x ─► Relu ─► r ─► Reshape(r, Shape(x)) ─► y
 */
static void test_shape_of_input_folds_per_shape(void **state)
{
    (void)state;
    tdm_graph *g = NULL;
    assert_int_equal(tdm_graph_new(&g, NULL), TDM_OK);
    g->opset = 13;
    int32_t x = add_input(g, "x", 2, (int64_t[]){-1, 4});
    int32_t r = node(g, "Relu", x, -1, "r");
    int32_t sh = node(g, "Shape", x, -1, "s");
    g->values[sh].dtype = TDM_DTYPE_INT64;
    int32_t y = node(g, "Reshape", r, sh, "y");
    add_output(g, y);
    assert_int_equal(tdm_graph_compact(g, NULL), TDM_OK);
    assert_int_equal(tdm_graph_validate(g, NULL), TDM_OK);
    tdm_session *s = NULL;
    assert_int_equal(tdm_session_create(g, NULL, &s, NULL), TDM_OK);
    const int64_t batches[] = {3, 1, 3, 7, 1};
    for (size_t k = 0; k < sizeof batches / sizeof batches[0]; k++) {
        tdm_tensor in, out;
        fill(&in, batches[k], (float)k);
        const char *names[1] = {"x"};
        tdm_err err = {{0}};
        if (tdm_session_run(s, 1, names, &in, &out, &err) != TDM_OK)
            fail_msg("batch %lld: %s", (long long)batches[k], err.msg);
        assert_int_equal(out.ndim, 2);
        assert_int_equal(out.dims[0], batches[k]);
        assert_int_equal(out.dims[1], 4);
        const float *xp = in.data, *yp = out.data;
        for (int64_t i = 0; i < batches[k] * 4; i++)
            assert_float_equal(yp[i], xp[i] > 0 ? xp[i] : 0.f, 0);
        tdm_tensor_free(&out);
        /* from the cut r: Shape(x) is not computable, so this must fail cleanly */
        const char *cut[1] = {"r"}, *until[1] = {"y"};
        tdm_tensor yo;
        assert_int_not_equal(tdm_session_run_range(s, 1, cut, &in, 1, until, &yo, &err), TDM_OK);
        tdm_tensor_free(&in);
    }
    tdm_session_free(s);
    tdm_graph_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_whole_run_and_shapes),
        cmocka_unit_test(test_split_run_equals_whole),
        cmocka_unit_test(test_caller_errors),
        cmocka_unit_test(test_unsupported_op_named),
        cmocka_unit_test(test_shape_of_input_folds_per_shape),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

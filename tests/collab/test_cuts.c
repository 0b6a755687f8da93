/*
 * Cut enumeration, cut resolution, FLOPs and running head then tail.
 *
 * The graph is built in memory with the IR API (no reader involved) and has
 * a skip connection from the graph input, so frontiers hold more than one
 * tensor and one of them is a graph input the tail still reads:
 *
 *   x ─► Add(x, c1) ─► a ─► Relu ─► r ─► Mul(r, x) ─► y
 *   └───────────────────────────────┘└──► z = Neg(r)
 *
 * Expected cuts (after nodes 0, 1, 2): {x, a}, {x, r}, {r, y}. Every node is
 * element-wise, so with x [1, 4] each counts 4 FLOPs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "collab/cuts.h"
#include "collab/flops.h"
#include "engine/ir.h"
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

/* The graph of the header; a_name renames the Add's output (for a fake "original"). */
static tdm_graph *make_graph(const char *a_name)
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
    int32_t a = node(g, "Add", x, c1, a_name);
    int32_t r = node(g, "Relu", a, -1, "r");
    int32_t y = node(g, "Mul", r, x, "y");
    int32_t z = node(g, "Neg", r, -1, "z");
    add_output(g, y);
    add_output(g, z);
    assert_int_equal(tdm_graph_compact(g, NULL), TDM_OK);
    assert_int_equal(tdm_graph_validate(g, NULL), TDM_OK);
    return g;
}

static void expect_names(const tdm_cut *c, const char *a, const char *b)
{
    assert_int_equal(c->n, 2);
    assert_string_equal(c->t[0].name, a);
    assert_string_equal(c->t[1].name, b);
}

static void test_enumerate(void **state)
{
    (void)state;
    tdm_graph *g = make_graph("a");
    tdm_cut_list *l = NULL;
    tdm_err err;
    assert_int_equal(tdm_cuts_find(g, NULL, &l, &err), TDM_OK);
    assert_int_equal(l->n, 3);
    expect_names(&l->cuts[0], "x", "a");
    expect_names(&l->cuts[1], "x", "r");
    expect_names(&l->cuts[2], "r", "y");
    assert_true(l->cuts[0].t[0].is_input);
    assert_false(l->cuts[0].t[1].is_input);
    /* batch symbolic: dim 0 follows it everywhere, and keeps the default name */
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < 2; k++) {
            assert_int_equal(l->cuts[i].t[k].batch_dims, 1u);
            assert_int_equal(l->cuts[i].t[k].dims[0], 1);
            assert_int_equal(l->cuts[i].t[k].dims[1], 4);
        }
    assert_string_equal(l->batch_param, "batch");
    assert_int_equal(l->cuts[0].bytes_fp32, 32);
    assert_int_equal(l->cuts[0].bytes_int8, 8);
    assert_true(l->flops_total == 16);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(l->cuts[i].after_node, i);
        assert_true(l->cuts[i].flops_before == 4.0 * (i + 1));
        assert_true(l->cuts[i].flops_after == 16 - 4.0 * (i + 1));
    }
    tdm_value_info vi;
    tdm_cut_tensor_info(l, &l->cuts[1].t[1], &vi);
    assert_int_equal(vi.dims[0], -1);
    assert_string_equal(vi.dim_names[0], "batch");
    assert_int_equal(vi.dims[1], 4);
    tdm_cut_list_free(l);

    /* Given shapes: batch 3. */
    tdm_tensor s = {0};
    tdm_tensor_set_shape(&s, TDM_DTYPE_FLOAT32, 2, (int64_t[]){3, 4});
    const char *nm = "x";
    tdm_cut_options o = {.n_shapes = 1, .shape_names = &nm, .shapes = &s};
    assert_int_equal(tdm_cuts_find(g, &o, &l, &err), TDM_OK);
    assert_int_equal(l->cuts[2].t[1].dims[0], 3);
    assert_true(l->flops_total == 48);
    tdm_cut_list_free(l);

    /* Bad shapes are refused with the input named. */
    tdm_tensor_set_shape(&s, TDM_DTYPE_FLOAT32, 2, (int64_t[]){3, 5});
    assert_int_equal(tdm_cuts_find(g, &o, &l, &err), TDM_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "'x'"));
    assert_null(l);
    nm = "nope";
    assert_int_equal(tdm_cuts_find(g, &o, &l, &err), TDM_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, "nope"));
    tdm_graph_free(g);
}

static void test_original_filter(void **state)
{
    (void)state;
    tdm_graph *g = make_graph("a");
    tdm_graph *orig = make_graph("a_renamed"); /* lacks "a": that cut cannot be written */
    tdm_cut_options o = {.original = orig};
    tdm_cut_list *l = NULL;
    tdm_err err;
    assert_int_equal(tdm_cuts_find(g, &o, &l, &err), TDM_OK);
    assert_int_equal(l->n, 2);
    expect_names(&l->cuts[0], "x", "r");
    expect_names(&l->cuts[1], "r", "y");
    tdm_cut_list_free(l);
    tdm_graph_free(g);
    tdm_graph_free(orig);
}

/* An original graph whose tail still reads the graph input where the optimised one does not:
 * the input joins that cut (as an unfused Shape(input_ids) does in a transformer export). */
static void test_original_adds_inputs(void **state)
{
    (void)state;
    tdm_graph *g = make_graph("a");
    tdm_graph *orig = make_graph("a");
    int32_t z = tdm_graph_find(orig, "z");
    int32_t x = tdm_graph_find(orig, "x");
    tdm_node *neg = &orig->nodes[orig->values[z].producer];
    int32_t nz = tdm_graph_intern(orig, "nz");
    neg->out[0] = nz;
    orig->values[nz].producer = orig->values[z].producer;
    node(orig, "Add", nz, x, "z");
    assert_int_equal(tdm_graph_compact(orig, NULL), TDM_OK);
    assert_int_equal(tdm_graph_validate(orig, NULL), TDM_OK);
    tdm_cut_options o = {.original = orig};
    tdm_cut_list *l = NULL;
    tdm_err err;
    assert_int_equal(tdm_cuts_find(g, &o, &l, &err), TDM_OK);
    assert_int_equal(l->n, 3);
    expect_names(&l->cuts[1], "x", "r");
    assert_int_equal(l->cuts[2].n, 3);
    assert_string_equal(l->cuts[2].t[0].name, "x");
    assert_true(l->cuts[2].t[0].is_input);
    assert_string_equal(l->cuts[2].t[1].name, "r");
    assert_string_equal(l->cuts[2].t[2].name, "y");
    assert_int_equal(l->cuts[2].bytes_fp32, 48);
    /* the strict check names the input */
    const char *names[] = {"r", "y"};
    assert_int_equal(tdm_cut_check(orig, 2, names, &err), TDM_ERR_INVALID_ARG);
    assert_non_null(strstr(err.msg, "'x'"));
    tdm_cut_list_free(l);
    tdm_graph_free(g);
    tdm_graph_free(orig);
}

static void test_resolve_and_check(void **state)
{
    (void)state;
    tdm_graph *g = make_graph("a");
    tdm_cut_list *l = NULL;
    tdm_err err;
    assert_int_equal(tdm_cuts_find(g, NULL, &l, &err), TDM_OK);
    tdm_cut c;
    int idx;
    assert_int_equal(tdm_cut_resolve(l, NULL, "1", &c, &idx, &err), TDM_OK);
    assert_int_equal(idx, 1);
    expect_names(&c, "x", "r");
    tdm_cut_clear(&c);
    /* names in any order find the listed cut */
    assert_int_equal(tdm_cut_resolve(l, NULL, "r,x", &c, &idx, &err), TDM_OK);
    assert_int_equal(idx, 1);
    tdm_cut_clear(&c);
    /* a custom separating set: {x, a, r} (a is redundant) */
    assert_int_equal(tdm_cut_resolve(l, NULL, "a,r,x", &c, &idx, &err), TDM_OK);
    assert_int_equal(idx, -1);
    assert_int_equal(c.n, 3);
    assert_int_equal(c.after_node, -1);
    assert_true(c.flops_before == 8); /* Add and Relu */
    tdm_cut_clear(&c);
    /* not separating: the tail needs x too */
    assert_int_equal(tdm_cut_resolve(l, NULL, "r", &c, &idx, &err), TDM_ERR_INVALID_ARG);
    assert_non_null(strstr(err.msg, "'x'"));
    assert_int_equal(tdm_cut_resolve(l, NULL, "nope", &c, &idx, &err), TDM_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, "nope"));
    assert_int_equal(tdm_cut_resolve(l, NULL, "3", &c, &idx, &err), TDM_ERR_INVALID_ARG);
    assert_int_equal(tdm_cut_resolve(l, NULL, "c1", &c, &idx, &err), TDM_ERR_INVALID_ARG);
    assert_non_null(strstr(err.msg, "constant"));
    assert_int_equal(tdm_cut_resolve(l, NULL, "x,x", &c, &idx, &err), TDM_ERR_INVALID_ARG);
    assert_int_equal(tdm_cut_resolve(l, NULL, ",", &c, &idx, &err), TDM_ERR_INVALID_ARG);
    tdm_cut_list_free(l);
    tdm_graph_free(g);
}

static void test_split_run_equals_whole(void **state)
{
    (void)state;
    tdm_graph *g = make_graph("a");
    tdm_cut_list *l = NULL;
    tdm_err err;
    assert_int_equal(tdm_cuts_find(g, NULL, &l, &err), TDM_OK);
    tdm_session *s = NULL;
    assert_int_equal(tdm_session_create(g, NULL, &s, &err), TDM_OK);
    tdm_tensor in[1], ref[2], got[2];
    assert_int_equal(tdm_split_random_inputs(l, 5, 3, in, &err), TDM_OK);
    assert_int_equal(in[0].dims[0], 3);
    assert_int_equal(tdm_split_run_whole(s, l, in, ref, &err), TDM_OK);
    for (int i = 0; i < l->n; i++) {
        double hm = -1, tm = -1;
        assert_int_equal(tdm_split_run(s, s, l, &l->cuts[i], in, got, &hm, &tm, &err), TDM_OK);
        assert_true(hm >= 0 && tm >= 0);
        for (int k = 0; k < 2; k++) {
            assert_true(tdm_split_max_rel(&got[k], &ref[k]) == 0);
            tdm_tensor_free(&got[k]);
        }
    }
    /* the comparison itself can fail */
    tdm_tensor other;
    assert_int_equal(tdm_tensor_copy(&other, &ref[0], &err), TDM_OK);
    ((float *)other.data)[0] += 1.0f;
    assert_true(tdm_split_max_rel(&other, &ref[0]) > 1e-3);
    ((float *)other.data)[0] = NAN;
    assert_true(isinf(tdm_split_max_rel(&other, &ref[0])));
    other.dims[0] = 4; /* [4, 3]: same count, other shape */
    other.dims[1] = 3;
    ((float *)other.data)[0] = 0;
    assert_true(isinf(tdm_split_max_rel(&other, &ref[0])));
    tdm_tensor_free(&other);
    for (int k = 0; k < 2; k++)
        tdm_tensor_free(&ref[k]);
    tdm_tensor_free(&in[0]);
    tdm_session_free(s);
    tdm_cut_list_free(l);
    tdm_graph_free(g);
}

static void test_flops_api(void **state)
{
    (void)state;
    tdm_graph *g = make_graph("a");
    double *f = NULL, total = 0, until = 0;
    tdm_err err;
    assert_int_equal(tdm_flops_per_node(g, NULL, 0, NULL, NULL, &f, &total, &err), TDM_OK);
    assert_true(total == 16);
    const char *t[] = {"r"};
    assert_int_equal(tdm_flops_until(g, f, 1, t, &until, &err), TDM_OK);
    assert_true(until == 8);
    const char *bad[] = {"nope"};
    assert_int_equal(tdm_flops_until(g, f, 1, bad, &until, &err), TDM_ERR_NOT_FOUND);
    assert_true(tdm_flops_prefix(f, 3) == 12);
    free(f);
    tdm_graph_free(g);
}

/* Per-op formulas on hand-made shapes. */
static void test_flops_formulas(void **state)
{
    (void)state;
    tdm_graph *g = NULL;
    assert_int_equal(tdm_graph_new(&g, NULL), TDM_OK);
    tdm_tensor x = {0}, w = {0}, y = {0};
    const tdm_tensor *in[3] = {&x, &w, NULL}, *out[1] = {&y};
    int32_t i = tdm_graph_add_node(g, "Conv", "", "c", 2, 1);
    tdm_tensor_set_shape(&x, TDM_DTYPE_FLOAT32, 4, (int64_t[]){1, 3, 8, 8});
    tdm_tensor_set_shape(&w, TDM_DTYPE_FLOAT32, 4, (int64_t[]){4, 3, 3, 3});
    tdm_tensor_set_shape(&y, TDM_DTYPE_FLOAT32, 4, (int64_t[]){1, 4, 6, 6});
    assert_true(tdm_flops_node(&g->nodes[i], in, out) == 2.0 * 144 * 27);
    i = tdm_graph_add_node(g, "MatMul", "", "m", 2, 1);
    tdm_tensor_set_shape(&x, TDM_DTYPE_FLOAT32, 3, (int64_t[]){2, 5, 7});
    tdm_tensor_set_shape(&w, TDM_DTYPE_FLOAT32, 2, (int64_t[]){7, 3});
    tdm_tensor_set_shape(&y, TDM_DTYPE_FLOAT32, 3, (int64_t[]){2, 5, 3});
    assert_true(tdm_flops_node(&g->nodes[i], in, out) == 2.0 * 30 * 7);
    i = tdm_graph_add_node(g, "Gemm", "", "g", 2, 1);
    tdm_attr *a = tdm_node_add_attr(&g->nodes[i], "transA", TDM_ATTR_INT);
    assert_non_null(a);
    a->i = 1;
    tdm_tensor_set_shape(&x, TDM_DTYPE_FLOAT32, 2, (int64_t[]){7, 5});
    tdm_tensor_set_shape(&y, TDM_DTYPE_FLOAT32, 2, (int64_t[]){5, 3});
    assert_true(tdm_flops_node(&g->nodes[i], in, out) == 2.0 * 15 * 7);
    i = tdm_graph_add_node(g, "MaxPool", "", "p", 1, 1);
    a = tdm_node_add_attr(&g->nodes[i], "kernel_shape", TDM_ATTR_INTS);
    assert_non_null(a);
    a->ints = malloc(2 * sizeof *a->ints);
    assert_non_null(a->ints);
    a->ints[0] = a->ints[1] = 2;
    a->n = 2;
    tdm_tensor_set_shape(&y, TDM_DTYPE_FLOAT32, 4, (int64_t[]){1, 4, 3, 3});
    assert_true(tdm_flops_node(&g->nodes[i], in, out) == 36.0 * 4);
    i = tdm_graph_add_node(g, "Reshape", "", "r", 2, 1);
    assert_true(tdm_flops_node(&g->nodes[i], in, out) == 0);
    i = tdm_graph_add_node(g, "Sigmoid", "", "s", 1, 1);
    assert_true(tdm_flops_node(&g->nodes[i], in, out) == 36);
    i = tdm_graph_add_node(g, "FusedMatMul", "tandem", "f", 3, 1);
    tdm_tensor_set_shape(&x, TDM_DTYPE_FLOAT32, 2, (int64_t[]){4, 16});
    tdm_tensor_set_shape(&y, TDM_DTYPE_FLOAT32, 2, (int64_t[]){4, 8});
    assert_true(tdm_flops_node(&g->nodes[i], in, out) == 2.0 * 32 * 16);
    tdm_graph_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_enumerate),
        cmocka_unit_test(test_original_filter),
        cmocka_unit_test(test_original_adds_inputs),
        cmocka_unit_test(test_resolve_and_check),
        cmocka_unit_test(test_split_run_equals_whole),
        cmocka_unit_test(test_flops_api),
        cmocka_unit_test(test_flops_formulas),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

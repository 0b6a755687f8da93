/*
 * The ONNX sub-graph writer: what it writes, tandem's reader loads back and
 * runs to the same results; sub-graphs keep exactly the nodes and
 * initializers between their inputs and outputs; attributes of every kind,
 * symbolic dims and opsets survive; and a sub-graph whose outputs cannot be
 * computed from its inputs is refused with the tensor named.
 *
 * The in-memory graph (IR API, no reader involved):
 *
 *   x ─► Add(x, c1) ─► a ─► LeakyRelu(alpha) ─► r ─► Mul(r, x) ─► y
 *                                                └─► Transpose(perm) ─► z
 *
 * With ../shared present, a real model is also rewritten whole and split,
 * and must run to the same outputs as the original file.
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
#include "engine/onnx/onnx_writer.h"
#include "skip.h"
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

static int32_t node(tdm_graph *g, const char *op, int32_t a, int32_t b, const char *out,
                    int32_t *idx)
{
    int32_t i = tdm_graph_add_node(g, op, "", out, b >= 0 ? 2 : 1, 1);
    assert_true(i >= 0);
    int32_t o = tdm_graph_intern(g, out);
    g->nodes[i].in[0] = a;
    if (b >= 0)
        g->nodes[i].in[1] = b;
    g->nodes[i].out[0] = o;
    g->nodes[i].opset = 13;
    if (idx != NULL)
        *idx = i;
    return o;
}

static tdm_graph *make_graph(void)
{
    tdm_graph *g = NULL;
    assert_int_equal(tdm_graph_new(&g, NULL), TDM_OK);
    g->opset = 13;
    g->ir_version = 8;
    int32_t x = add_input(g, "x", 2, (int64_t[]){-1, 4});
    tdm_value *xv = &g->values[x];
    xv->dim_param[0] = strdup("N");
    int32_t c1 = tdm_graph_intern(g, "c1");
    tdm_value *cv = &g->values[c1];
    cv->is_const = true;
    assert_int_equal(tdm_tensor_make(&cv->cval, TDM_DTYPE_FLOAT32, 1, (int64_t[]){4}, NULL), 0);
    float *c = cv->cval.data;
    for (int i = 0; i < 4; i++)
        c[i] = (float)i - 1.5f;
    /* an unused constant must not be written */
    int32_t c2 = tdm_graph_intern(g, "unused");
    g->values[c2].is_const = true;
    assert_int_equal(
        tdm_tensor_make(&g->values[c2].cval, TDM_DTYPE_FLOAT32, 1, (int64_t[]){1000}, NULL), 0);
    int32_t i;
    int32_t a = node(g, "Add", x, c1, "a", NULL);
    int32_t r = node(g, "LeakyRelu", a, -1, "r", &i);
    tdm_attr *at = tdm_node_add_attr(&g->nodes[i], "alpha", TDM_ATTR_FLOAT);
    assert_non_null(at);
    at->f = 0.25f;
    int32_t y = node(g, "Mul", r, x, "y", NULL);
    int32_t z = node(g, "Transpose", r, -1, "z", &i);
    at = tdm_node_add_attr(&g->nodes[i], "perm", TDM_ATTR_INTS);
    assert_non_null(at);
    at->ints = malloc(2 * sizeof *at->ints);
    assert_non_null(at->ints);
    at->ints[0] = 1;
    at->ints[1] = 0;
    at->n = 2;
    add_output(g, y);
    add_output(g, z);
    assert_int_equal(tdm_graph_compact(g, NULL), TDM_OK);
    assert_int_equal(tdm_graph_validate(g, NULL), TDM_OK);
    return g;
}

static tdm_value_info info(const char *name, int64_t d0, const char *d0_name, int64_t d1)
{
    tdm_value_info vi;
    memset(&vi, 0, sizeof vi);
    vi.name = name;
    vi.dtype = TDM_DTYPE_FLOAT32;
    vi.ndim = 2;
    vi.dims[0] = d0;
    vi.dim_names[0] = d0_name;
    vi.dims[1] = d1;
    return vi;
}

static void fill(tdm_tensor *t, int64_t rows, float seed)
{
    assert_int_equal(tdm_tensor_make(t, TDM_DTYPE_FLOAT32, 2, (int64_t[]){rows, 4}, NULL), 0);
    float *p = t->data;
    for (int64_t i = 0; i < rows * 4; i++)
        p[i] = sinf(seed + (float)i);
}

static tdm_graph *roundtrip(const tdm_graph *g, int nf, const tdm_value_info *from, int nt,
                            const tdm_value_info *to, bool optimize)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    tdm_err err;
    tdm_status st = tdm_onnx_write_subgraph(g, nf, from, nt, to, "t", &buf, &len, &err);
    if (st != TDM_OK)
        fail_msg("write: %s", err.msg);
    tdm_load_options lo = {.no_optimize = !optimize};
    tdm_graph *back = NULL;
    st = tdm_graph_load_buffer(buf, len, NULL, &lo, &back, &err);
    free(buf);
    if (st != TDM_OK)
        fail_msg("load: %s", err.msg);
    return back;
}

static void test_whole_roundtrip(void **state)
{
    (void)state;
    tdm_graph *g = make_graph();
    tdm_value_info from[1] = {info("x", -1, "N", 4)};
    tdm_value_info to[2] = {info("y", -1, "N", 4), info("z", 4, NULL, -1)};
    to[1].dim_names[1] = "N";
    tdm_graph *back = roundtrip(g, 1, from, 2, to, false);
    assert_int_equal(back->n_nodes, 4);
    assert_int_equal(back->opset, 13);
    assert_int_equal(back->ir_version, 8);
    assert_int_equal(tdm_graph_find(back, "unused"), -1);
    tdm_value_info vi;
    assert_int_equal(tdm_graph_input_info(back, 0, &vi), TDM_OK);
    assert_string_equal(vi.name, "x");
    assert_int_equal(vi.dims[0], -1);
    assert_string_equal(vi.dim_names[0], "N");
    assert_int_equal(vi.dims[1], 4);
    assert_int_equal(tdm_graph_output_info(back, 1, &vi), TDM_OK);
    assert_string_equal(vi.name, "z");
    assert_int_equal(vi.dims[0], 4);
    assert_string_equal(vi.dim_names[1], "N");
    /* attributes survive */
    const tdm_node *lr = &back->nodes[1], *tr = &back->nodes[3];
    assert_string_equal(lr->op_type, "LeakyRelu");
    assert_true(tdm_attr_float(lr, "alpha", 0) == 0.25f);
    int64_t n = 0;
    const int64_t *perm = tdm_attr_ints(tr, "perm", &n);
    assert_int_equal(n, 2);
    assert_int_equal(perm[0], 1);
    assert_int_equal(perm[1], 0);

    /* same results at batch 3 (the batch stayed symbolic) */
    tdm_session *s1 = NULL, *s2 = NULL;
    assert_int_equal(tdm_session_create(g, NULL, &s1, NULL), TDM_OK);
    assert_int_equal(tdm_session_create(back, NULL, &s2, NULL), TDM_OK);
    tdm_tensor x, o1[2], o2[2];
    fill(&x, 3, 0.5f);
    const char *xn[] = {"x"};
    assert_int_equal(tdm_session_run(s1, 1, xn, &x, o1, NULL), TDM_OK);
    assert_int_equal(tdm_session_run(s2, 1, xn, &x, o2, NULL), TDM_OK);
    for (int k = 0; k < 2; k++) {
        assert_true(tdm_tensor_same_shape(&o1[k], &o2[k]));
        assert_memory_equal(o1[k].data, o2[k].data, tdm_tensor_nbytes(&o1[k]));
        tdm_tensor_free(&o1[k]);
        tdm_tensor_free(&o2[k]);
    }
    tdm_tensor_free(&x);
    tdm_session_free(s1);
    tdm_session_free(s2);
    tdm_graph_free(back);
    tdm_graph_free(g);
}

static void test_tail_and_head(void **state)
{
    (void)state;
    tdm_graph *g = make_graph();
    /* tail: {x, r} -> {y, z}: only Mul and Transpose, no constant */
    tdm_value_info from[2] = {info("x", -1, "N", 4), info("r", -1, "N", 4)};
    tdm_value_info to[2] = {info("y", -1, "N", 4), info("z", 4, NULL, -1)};
    tdm_graph *tail = roundtrip(g, 2, from, 2, to, true);
    assert_int_equal(tail->n_nodes, 2);
    assert_int_equal(tdm_graph_find(tail, "c1"), -1);
    assert_int_equal(tdm_graph_num_inputs(tail), 2);
    /* head: x -> a (Add and its constant only) */
    tdm_value_info ha[1] = {info("a", -1, "N", 4)};
    tdm_graph *head = roundtrip(g, 1, from, 1, ha, true);
    assert_int_equal(head->n_nodes, 1);
    assert_true(tdm_graph_find(head, "c1") >= 0);
    assert_int_equal(tdm_graph_find(head, "r"), -1);

    /* head (x -> a) then the original from a -> r, then the tail file: same as the whole */
    tdm_session *sg = NULL, *sh = NULL, *st = NULL;
    assert_int_equal(tdm_session_create(g, NULL, &sg, NULL), TDM_OK);
    assert_int_equal(tdm_session_create(head, NULL, &sh, NULL), TDM_OK);
    assert_int_equal(tdm_session_create(tail, NULL, &st, NULL), TDM_OK);
    tdm_tensor x, a, r, ref[2], got[2];
    fill(&x, 2, 1.5f);
    const char *xn[] = {"x"}, *an[] = {"a"}, *rn[] = {"r"}, *tn[] = {"x", "r"}, *on[] = {"y", "z"};
    assert_int_equal(tdm_session_run(sg, 1, xn, &x, ref, NULL), TDM_OK);
    assert_int_equal(tdm_session_run_range(sh, 1, xn, &x, 1, an, &a, NULL), TDM_OK);
    assert_int_equal(tdm_session_run_range(sg, 1, an, &a, 1, rn, &r, NULL), TDM_OK);
    tdm_tensor tin[2] = {x, r};
    assert_int_equal(tdm_session_run_range(st, 2, tn, tin, 2, on, got, NULL), TDM_OK);
    for (int k = 0; k < 2; k++) {
        assert_true(tdm_tensor_same_shape(&ref[k], &got[k]));
        assert_memory_equal(ref[k].data, got[k].data, tdm_tensor_nbytes(&ref[k]));
        tdm_tensor_free(&ref[k]);
        tdm_tensor_free(&got[k]);
    }
    tdm_tensor_free(&x);
    tdm_tensor_free(&a);
    tdm_tensor_free(&r);
    tdm_session_free(sg);
    tdm_session_free(sh);
    tdm_session_free(st);
    tdm_graph_free(head);
    tdm_graph_free(tail);
    tdm_graph_free(g);
}

static void test_errors(void **state)
{
    (void)state;
    tdm_graph *g = make_graph();
    uint8_t *buf = (uint8_t *)1;
    size_t len = 1;
    tdm_err err;
    tdm_value_info r[1] = {info("r", -1, NULL, 4)};
    tdm_value_info y[1] = {info("y", -1, NULL, 4)};
    /* y = Mul(r, x) needs x, which is not given */
    assert_int_equal(tdm_onnx_write_subgraph(g, 1, r, 1, y, NULL, &buf, &len, &err),
                     TDM_ERR_INVALID_ARG);
    assert_non_null(strstr(err.msg, "'x'"));
    assert_null(buf);
    assert_int_equal(len, 0);
    tdm_value_info nope[1] = {info("nope", 1, NULL, 4)};
    assert_int_equal(tdm_onnx_write_subgraph(g, 1, r, 1, nope, NULL, &buf, &len, &err),
                     TDM_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, "nope"));
    tdm_value_info c1[1] = {info("c1", 4, NULL, 1)};
    assert_int_equal(tdm_onnx_write_subgraph(g, 1, c1, 1, y, NULL, &buf, &len, &err),
                     TDM_ERR_INVALID_ARG);
    assert_int_equal(tdm_onnx_write_subgraph(g, 1, r, 0, y, NULL, &buf, &len, &err),
                     TDM_ERR_INVALID_ARG);
    assert_int_equal(tdm_onnx_write_file("/nonexistent-dir/x.onnx", (const uint8_t *)"a", 1, &err),
                     TDM_ERR_IO);
    assert_non_null(strstr(err.msg, "/nonexistent-dir/x.onnx"));
    tdm_graph_free(g);
}

/* A real model: rewritten whole, then split after its first node, from the unoptimised IR. */
static void test_real_model(void **state)
{
    (void)state;
    const char *path = TDM_SHARED_DIR "/models/vnncomp/resnet_2b.onnx";
    if (!tdm_test_path_exists(path)) {
        printf("SKIP: %s is absent\n", path);
        skip();
    }
    tdm_load_options lo = {.no_optimize = true};
    tdm_graph *g = NULL;
    tdm_err err;
    assert_int_equal(tdm_graph_load(path, &lo, &g, &err), TDM_OK);
    tdm_value_info in, out;
    assert_int_equal(tdm_graph_input_info(g, 0, &in), TDM_OK);
    assert_int_equal(tdm_graph_output_info(g, 0, &out), TDM_OK);
    tdm_graph *back = roundtrip(g, 1, &in, 1, &out, true);
    tdm_graph *opt = NULL;
    assert_int_equal(tdm_graph_load(path, NULL, &opt, &err), TDM_OK);
    tdm_session *s1 = NULL, *s2 = NULL;
    assert_int_equal(tdm_session_create(opt, NULL, &s1, NULL), TDM_OK);
    assert_int_equal(tdm_session_create(back, NULL, &s2, NULL), TDM_OK);
    tdm_tensor x, o1, o2;
    assert_int_equal(tdm_tensor_make(&x, TDM_DTYPE_FLOAT32, in.ndim, in.dims, NULL), TDM_OK);
    float *p = x.data;
    for (int64_t i = 0; i < tdm_tensor_numel(&x); i++)
        p[i] = sinf((float)i * 0.37f);
    const char *xn[] = {in.name};
    assert_int_equal(tdm_session_run(s1, 1, xn, &x, &o1, NULL), TDM_OK);
    assert_int_equal(tdm_session_run(s2, 1, xn, &x, &o2, NULL), TDM_OK);
    assert_true(tdm_tensor_same_shape(&o1, &o2));
    assert_memory_equal(o1.data, o2.data, tdm_tensor_nbytes(&o1));
    tdm_tensor_free(&o1);
    tdm_tensor_free(&o2);
    tdm_tensor_free(&x);
    tdm_session_free(s1);
    tdm_session_free(s2);
    tdm_graph_free(back);
    tdm_graph_free(opt);
    tdm_graph_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_whole_roundtrip),
        cmocka_unit_test(test_tail_and_head),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_real_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

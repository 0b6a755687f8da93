/*
 * Residuals (skip connections) in tandem.FusedMatMul's input 3, from both
 * ends: the fusion pass that puts an exported graph's MatMul + bias + Add
 * into one FusedMatMul (and must compute exactly what the graph did), and
 * the int8 pass, which must split such a node back into QMatMul followed by
 * an Add, in topological order, since QMatMul takes no residual. The int8
 * graph, built with the IR API:
 *
 *   y = FusedMatMul(x, W, bias, skip)     x, skip: [rows, 128], W: [128, 128]
 *   z = Neg(y)                            (a reader after the split point)
 *
 * The residual is large (|skip| ~ 5-6) against the product (~1), so an
 * int8 graph that dropped it would be off by far more than the
 * quantisation error allowed here.
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
#include "engine/passes/passes.h"
#include "tandem/tandem.h"

enum { ROWS = 6, DIM = 128 };

static float wave(int64_t i, float seed)
{
    return sinf(seed + 0.37f * (float)i);
}

static int32_t add_input(tdm_graph *g, const char *name)
{
    int32_t v = tdm_graph_intern(g, name);
    assert_true(v >= 0);
    g->values[v].is_input = true;
    g->values[v].dtype = TDM_DTYPE_FLOAT32;
    g->values[v].ndim = 2;
    g->values[v].dims[0] = -1;
    g->values[v].dims[1] = DIM;
    int32_t *in = realloc(g->inputs, sizeof *in * (size_t)(g->n_inputs + 1));
    assert_non_null(in);
    g->inputs = in;
    g->inputs[g->n_inputs++] = v;
    return v;
}

static int32_t add_const(tdm_graph *g, const char *name, int ndim, const int64_t *dims, float seed)
{
    int32_t v = tdm_graph_intern(g, name);
    assert_true(v >= 0);
    tdm_value *cv = &g->values[v];
    cv->is_const = true;
    assert_int_equal(tdm_tensor_make(&cv->cval, TDM_DTYPE_FLOAT32, ndim, dims, NULL), TDM_OK);
    float *p = cv->cval.data;
    for (int64_t i = 0; i < tdm_tensor_numel(&cv->cval); i++)
        p[i] = 0.1f * wave(i, seed);
    cv->dtype = TDM_DTYPE_FLOAT32;
    cv->ndim = ndim;
    for (int d = 0; d < ndim; d++)
        cv->dims[d] = dims[d];
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

static tdm_graph *make_graph(void)
{
    tdm_graph *g = NULL;
    assert_int_equal(tdm_graph_new(&g, NULL), TDM_OK);
    g->opset = 17;
    int32_t x = add_input(g, "x"), skip = add_input(g, "skip");
    int32_t w = add_const(g, "W", 2, (int64_t[]){DIM, DIM}, 0.5f);
    int32_t b = add_const(g, "bias", 1, (int64_t[]){DIM}, 2.0f);
    int32_t y = tdm_graph_intern(g, "y"), z = tdm_graph_intern(g, "z");
    int32_t i = tdm_graph_add_node(g, "FusedMatMul", "tandem", "proj", 4, 1);
    assert_true(i >= 0);
    g->nodes[i].opset = 1;
    g->nodes[i].in[0] = x;
    g->nodes[i].in[1] = w;
    g->nodes[i].in[2] = b;
    g->nodes[i].in[3] = skip;
    g->nodes[i].out[0] = y;
    i = tdm_graph_add_node(g, "Neg", "", "neg", 1, 1);
    assert_true(i >= 0);
    g->nodes[i].in[0] = y;
    g->nodes[i].out[0] = z;
    add_output(g, y);
    add_output(g, z);
    assert_int_equal(tdm_graph_compact(g, NULL), TDM_OK);
    assert_int_equal(tdm_graph_validate(g, NULL), TDM_OK);
    return g;
}

/* Runs g on fixed inputs; out[0] = y, out[1] = z. */
static void run(const tdm_graph *g, tdm_tensor out[2])
{
    tdm_tensor in[2];
    for (int k = 0; k < 2; k++) {
        assert_int_equal(
            tdm_tensor_make(&in[k], TDM_DTYPE_FLOAT32, 2, (int64_t[]){ROWS, DIM}, NULL), TDM_OK);
        float *p = in[k].data;
        for (int64_t i = 0; i < ROWS * DIM; i++)
            p[i] = k == 0 ? wave(i, 1.0f) : 5.0f + wave(i, 3.0f);
    }
    tdm_session *s = NULL;
    tdm_err err = {{0}};
    assert_int_equal(tdm_session_create(g, NULL, &s, &err), TDM_OK);
    const char *names[2] = {"x", "skip"};
    if (tdm_session_run(s, 2, names, in, out, &err) != TDM_OK)
        fail_msg("run failed: %s", err.msg);
    tdm_session_free(s);
    tdm_tensor_free(&in[0]);
    tdm_tensor_free(&in[1]);
}

static void test_split_keeps_residual(void **state)
{
    (void)state;
    tdm_graph *g = make_graph();
    tdm_tensor f[2], q[2];
    run(g, f);
    tdm_err err = {{0}};
    if (tdm_graph_quantize_int8(g, &err) != TDM_OK)
        fail_msg("int8 pass failed: %s", err.msg);
    /* QMatMul, then the Add of the residual, then the reader */
    assert_int_equal(g->n_nodes, 3);
    assert_string_equal(g->nodes[0].op_type, "QMatMul");
    assert_string_equal(g->nodes[1].op_type, "Add");
    assert_string_equal(g->nodes[2].op_type, "Neg");
    assert_int_equal(g->nodes[1].in[0], g->nodes[0].out[0]);
    assert_int_equal(g->nodes[1].in[1], tdm_graph_find(g, "skip"));
    assert_int_equal(g->nodes[1].out[0], tdm_graph_find(g, "y"));
    run(g, q);
    const float *fy = f[0].data, *qy = q[0].data, *qz = q[1].data;
    double worst = 0;
    for (int64_t i = 0; i < ROWS * DIM; i++) {
        double d = fabs((double)fy[i] - qy[i]);
        if (d > worst)
            worst = d;
        assert_float_equal(qz[i], -qy[i], 0.f);
    }
    /* the product is ~1 in magnitude; int8 costs a few hundredths at most */
    if (worst > 0.05)
        fail_msg("int8 differs from float by %g", worst);
    for (int k = 0; k < 2; k++) {
        tdm_tensor_free(&f[k]);
        tdm_tensor_free(&q[k]);
    }
    tdm_graph_free(g);
}

/* x -> MatMul(W) -> Add(bias) -> Add(skip) -> y, as an exporter writes a dense layer and its skip
 * connection (the skip on the left, which Add allows), -> Relu -> z reads y after the fusion. */
static tdm_graph *make_exported(void)
{
    tdm_graph *g = NULL;
    assert_int_equal(tdm_graph_new(&g, NULL), TDM_OK);
    g->opset = 17;
    int32_t x = add_input(g, "x"), skip = add_input(g, "skip");
    int32_t w = add_const(g, "W", 2, (int64_t[]){DIM, DIM}, 0.5f);
    int32_t b = add_const(g, "bias", 1, (int64_t[]){DIM}, 2.0f);
    const char *ops[4] = {"MatMul", "Add", "Add", "Relu"};
    const char *outs[4] = {"mm", "biased", "y", "z"};
    int32_t ins[4][2] = {{x, w}, {-1, b}, {skip, -1}, {-1, -1}};
    int32_t prev = -1;
    for (int k = 0; k < 4; k++) {
        int n_in = k == 3 ? 1 : 2;
        int32_t i = tdm_graph_add_node(g, ops[k], "", outs[k], n_in, 1);
        assert_true(i >= 0);
        g->nodes[i].opset = 17;
        for (int j = 0; j < n_in; j++)
            g->nodes[i].in[j] = ins[k][j] >= 0 ? ins[k][j] : prev;
        prev = tdm_graph_intern(g, outs[k]);
        g->nodes[i].out[0] = prev;
    }
    add_output(g, tdm_graph_find(g, "y"));
    add_output(g, tdm_graph_find(g, "z"));
    assert_int_equal(tdm_graph_compact(g, NULL), TDM_OK);
    assert_int_equal(tdm_graph_validate(g, NULL), TDM_OK);
    return g;
}

static void test_fusion_matches_graph(void **state)
{
    (void)state;
    tdm_graph *g = make_exported();
    tdm_tensor plain[2], fused[2];
    run(g, plain);
    tdm_load_options lo = {0};
    tdm_err err = {{0}};
    if (tdm_graph_optimize(g, &lo, &err) != TDM_OK)
        fail_msg("optimize failed: %s", err.msg);
    /* one FusedMatMul with the residual, then the Relu */
    assert_int_equal(g->n_nodes, 2);
    assert_string_equal(g->nodes[0].op_type, "FusedMatMul");
    assert_int_equal(g->nodes[0].n_in, 4);
    assert_int_equal(g->nodes[0].in[3], tdm_graph_find(g, "skip"));
    assert_int_equal(g->nodes[0].out[0], tdm_graph_find(g, "y"));
    assert_string_equal(g->nodes[1].op_type, "Relu");
    run(g, fused);
    for (int k = 0; k < 2; k++) {
        const float *p = plain[k].data, *f = fused[k].data;
        for (int64_t i = 0; i < ROWS * DIM; i++)
            assert_float_equal(f[i], p[i], 1e-5f * (1.f + fabsf(p[i])));
        tdm_tensor_free(&plain[k]);
        tdm_tensor_free(&fused[k]);
    }
    tdm_graph_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_keeps_residual),
        cmocka_unit_test(test_fusion_matches_graph),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

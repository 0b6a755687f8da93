/*
 * Tests of the ONNX reader (engine/onnx/onnx_reader.c).
 *
 * Three kinds of input:
 * - models assembled here with a small protobuf writer (pbw.h), each
 *   exercising one feature or one defect, with expectations written from
 *   the ONNX specification;
 * - the real models in ../shared (skipped when absent), checked against
 *   figures computed once with the onnx Python package;
 * - damaged copies of a valid model (every prefix, many byte flips), which
 *   must give an error or a valid graph, never a crash (run under ASan).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/ir.h"
#include "engine/onnx/onnx.h"
#include "engine/pbw.h"
#include "skip.h"
#include "tandem/graph.h"

/* Skips one test (not the whole executable) when data is absent. */
#define REQUIRE_OR_SKIP(path)                                                 \
    do {                                                                      \
        if (!tdm_test_path_exists(path)) {                                    \
            printf("SKIP: %s is absent (see ../shared/README.md)\n", (path)); \
            skip();                                                           \
        }                                                                     \
    } while (0)

/* ---- builders ------------------------------------------------------------- */

/* TensorProto float32 with raw_data (raw) or float_data. */
static void tensor_f32(pbw *t, const char *name, const int64_t *dims, int nd, const float *v,
                       size_t n, int raw)
{
    for (int i = 0; i < nd; i++)
        pbw_u(t, 1, (uint64_t)dims[i]);
    pbw_u(t, 2, 1);
    if (raw)
        pbw_bytes(t, 9, v, n * sizeof *v);
    else
        pbw_packed_f32(t, 4, v, n);
    pbw_str(t, 8, name);
}

/* ValueInfoProto of a tensor; dims < 0 use params[i] as dim_param. */
static void value_info(pbw *vi, const char *name, int elem, const int64_t *dims, int nd,
                       const char *const *params)
{
    pbw shape = {0}, tt = {0}, type = {0};
    for (int i = 0; i < nd; i++) {
        pbw d = {0};
        if (dims[i] >= 0)
            pbw_u(&d, 1, (uint64_t)dims[i]);
        else
            pbw_str(&d, 2, params[i]);
        pbw_msg(&shape, 1, &d);
    }
    pbw_u(&tt, 1, (uint64_t)elem);
    pbw_msg(&tt, 2, &shape);
    pbw_msg(&type, 1, &tt);
    pbw_str(vi, 1, name);
    pbw_msg(vi, 2, &type);
}

static void node(pbw *n, const char *op, const char *name, const char *const *in, int n_in,
                 const char *const *out, int n_out)
{
    for (int i = 0; i < n_in; i++)
        pbw_str(n, 1, in[i]);
    for (int i = 0; i < n_out; i++)
        pbw_str(n, 2, out[i]);
    if (name)
        pbw_str(n, 3, name);
    pbw_str(n, 4, op);
}

static void opset(pbw *m, const char *domain, int64_t v)
{
    pbw o = {0};
    pbw_str(&o, 1, domain);
    pbw_u(&o, 2, (uint64_t)v);
    pbw_msg(m, 8, &o);
}

/* ModelProto around a graph; frees the graph buffer. */
static pbw model(pbw *graph, int64_t opset_v)
{
    pbw m = {0};
    pbw_u(&m, 1, 8);
    pbw_str(&m, 2, "tandem-test");
    pbw_msg(&m, 7, graph); /* graph (7) before opset_import (8), as serializers write */
    opset(&m, "", opset_v);
    return m;
}

static const float k_w[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
static const float k_b[3] = {0.5f, -1.0f, 2.0f};

/*
 * y = Relu(MatMul(x, W) + B), x float[batch,4] (symbolic batch), W [4,3]
 * raw, B [3] float_data, with W also listed as an input (IR 3 style).
 */
static pbw small_model(void)
{
    pbw g = {0}, t = {0}, n = {0}, vi = {0};
    const int64_t wd[2] = {4, 3}, bd[1] = {3}, xd[2] = {-1, 4}, yd[2] = {-1, 3};
    const char *xp[2] = {"batch", NULL};
    node(&n, "MatMul", "mm", (const char *[]){"x", "W"}, 2, (const char *[]){"h"}, 1);
    pbw_msg(&g, 1, &n);
    node(&n, "Add", "add", (const char *[]){"h", "B"}, 2, (const char *[]){"h2"}, 1);
    pbw_msg(&g, 1, &n);
    node(&n, "Relu", "relu", (const char *[]){"h2"}, 1, (const char *[]){"y"}, 1);
    pbw_msg(&g, 1, &n);
    pbw_str(&g, 2, "small");
    tensor_f32(&t, "W", wd, 2, k_w, 12, 1);
    pbw_msg(&g, 5, &t);
    tensor_f32(&t, "B", bd, 1, k_b, 3, 0);
    pbw_msg(&g, 5, &t);
    value_info(&vi, "x", 1, xd, 2, xp);
    pbw_msg(&g, 11, &vi);
    value_info(&vi, "W", 1, wd, 2, NULL);
    pbw_msg(&g, 11, &vi);
    value_info(&vi, "y", 1, yd, 2, xp);
    pbw_msg(&g, 12, &vi);
    value_info(&vi, "h", 1, yd, 2, xp);
    pbw_msg(&g, 13, &vi);
    return model(&g, 13);
}

/* A graph with one Identity node whose input is a given initializer. */
static pbw model_with_init(pbw *tensor)
{
    pbw g = {0}, n = {0}, vi = {0};
    node(&n, "Identity", "id", (const char *[]){"c"}, 1, (const char *[]){"y"}, 1);
    pbw_msg(&g, 1, &n);
    pbw_str(tensor, 8, "c");
    pbw_msg(&g, 5, tensor);
    value_info(&vi, "y", 1, NULL, 0, NULL);
    pbw_msg(&g, 12, &vi);
    return model(&g, 13);
}

/* Graph passes would rewrite what these tests inspect: load the file as it is. */
static const tdm_load_options k_raw = {.no_optimize = true};

static tdm_status load(const pbw *m, tdm_graph **g, tdm_err *e)
{
    return tdm_graph_load_buffer(m->b, m->n, NULL, &k_raw, g, e);
}

/* ---- valid models --------------------------------------------------------- */

static void count_ops(void *arg, const char *op, int count)
{
    char *buf = arg;
    char item[64];
    snprintf(item, sizeof item, "%s=%d;", op, count);
    strcat(buf, item);
}

static void test_small_model(void **state)
{
    (void)state;
    pbw m = small_model();
    tdm_graph *g = NULL;
    tdm_err e = {{0}};
    assert_int_equal(load(&m, &g, &e), TDM_OK);
    assert_int_equal(tdm_graph_num_inputs(g), 1); /* W is an initializer, not an input */
    assert_int_equal(tdm_graph_num_outputs(g), 1);
    tdm_value_info vi;
    assert_int_equal(tdm_graph_input_info(g, 0, &vi), TDM_OK);
    assert_string_equal(vi.name, "x");
    assert_int_equal(vi.dtype, TDM_DTYPE_FLOAT32);
    assert_int_equal(vi.ndim, 2);
    assert_int_equal(vi.dims[0], -1);
    assert_string_equal(vi.dim_names[0], "batch");
    assert_int_equal(vi.dims[1], 4);
    assert_null(vi.dim_names[1]);
    assert_int_equal(tdm_graph_input_info(g, 1, &vi), TDM_ERR_INVALID_ARG);
    assert_int_equal(tdm_graph_output_info(g, 0, &vi), TDM_OK);
    assert_string_equal(vi.name, "y");
    assert_int_equal(vi.dims[1], 3);

    tdm_graph_stats st;
    tdm_graph_get_stats(g, &st);
    assert_int_equal(st.opset, 13);
    assert_int_equal(st.ir_version, 8);
    assert_int_equal(st.n_nodes, 3);
    assert_int_equal(st.param_bytes, (12 + 3) * 4);
    assert_int_equal(st.param_count, 15);
    char ops[256] = "";
    tdm_graph_op_counts(g, count_ops, ops);
    assert_string_equal(ops, "Add=1;MatMul=1;Relu=1;");

    int32_t w = tdm_graph_find(g, "W"), b = tdm_graph_find(g, "B");
    assert_true(w >= 0 && b >= 0);
    assert_true(g->values[w].is_const && !g->values[w].is_input);
    assert_memory_equal(g->values[w].cval.data, k_w, sizeof k_w);
    assert_int_equal((uintptr_t)g->values[w].cval.data % 64, 0);
    assert_memory_equal(g->values[b].cval.data, k_b, sizeof k_b);
    assert_int_equal(g->values[b].cval.ndim, 1);
    /* value_info(13) declared h */
    int32_t h = tdm_graph_find(g, "h");
    assert_int_equal(g->values[h].ndim, 2);
    assert_int_equal(g->values[h].producer, 0);
    assert_string_equal(g->nodes[0].op_type, "MatMul");
    assert_string_equal(g->nodes[0].name, "mm");
    assert_int_equal(g->nodes[0].opset, 13);
    assert_string_equal(g->producer, "tandem-test");
    assert_null(g->image);
    tdm_graph_free(g);
    pbw_free(&m);
}

static void test_load_from_file_and_missing(void **state)
{
    (void)state;
    char dir[] = "/tmp/tdm_reader_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/m.onnx", dir);
    pbw m = small_model();
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fwrite(m.b, 1, m.n, f);
    fclose(f);
    tdm_graph *g = NULL;
    tdm_err e;
    assert_int_equal(tdm_graph_load(path, NULL, &g, &e), TDM_OK);
    assert_int_equal(tdm_graph_num_inputs(g), 1);
    tdm_graph_free(g);
    /* too big for the caller's limit */
    tdm_load_options opt = {.max_file_size = 16};
    assert_int_equal(tdm_graph_load(path, &opt, &g, &e), TDM_ERR_PARSE);
    assert_non_null(strstr(e.msg, "limit"));
    remove(path);
    assert_int_equal(tdm_graph_load(path, NULL, &g, &e), TDM_ERR_NOT_FOUND);
    assert_non_null(strstr(e.msg, "m.onnx"));
    rmdir(dir);
    pbw_free(&m);
}

static void test_opsets_and_domains(void **state)
{
    (void)state;
    pbw g = {0}, n = {0}, vi = {0}, m = {0};
    node(&n, "Relu", "a", (const char *[]){"x"}, 1, (const char *[]){"t1"}, 1);
    pbw_str(&n, 7, "ai.onnx");
    pbw_msg(&g, 1, &n);
    node(&n, "FusedGemm", "b", (const char *[]){"t1"}, 1, (const char *[]){"t2"}, 1);
    pbw_str(&n, 7, "com.microsoft");
    pbw_msg(&g, 1, &n);
    node(&n, "Scaler", "c", (const char *[]){"t2"}, 1, (const char *[]){"t3"}, 1);
    pbw_str(&n, 7, "ai.onnx.ml");
    pbw_msg(&g, 1, &n);
    node(&n, "Mystery", "d", (const char *[]){"t3"}, 1, (const char *[]){"y"}, 1);
    pbw_str(&n, 7, "org.unknown");
    pbw_msg(&g, 1, &n);
    value_info(&vi, "x", 1, NULL, 0, NULL);
    pbw_msg(&g, 11, &vi);
    value_info(&vi, "y", 1, NULL, 0, NULL);
    pbw_msg(&g, 12, &vi);
    pbw_msg(&m, 7, &g);
    opset(&m, "ai.onnx.ml", 3);
    opset(&m, "ai.onnx", 17);
    opset(&m, "com.microsoft", 1);
    tdm_graph *gr = NULL;
    tdm_err e;
    assert_int_equal(load(&m, &gr, &e), TDM_OK);
    assert_int_equal(gr->opset, 17);
    assert_int_equal(gr->opset_ml, 3);
    assert_string_equal(gr->nodes[0].domain, ""); /* ai.onnx spelled "" */
    assert_int_equal(gr->nodes[0].opset, 17);
    assert_string_equal(gr->nodes[1].domain, "com.microsoft");
    assert_int_equal(gr->nodes[1].opset, 1);
    assert_int_equal(gr->nodes[2].opset, 3);
    assert_int_equal(gr->nodes[3].opset, 1);
    tdm_graph_free(gr);
    pbw_free(&m);

    /* no opset_import at all: default domain opset 1 */
    pbw g2 = {0}, m2 = {0};
    node(&n, "Relu", "a", (const char *[]){"x"}, 1, (const char *[]){"y"}, 1);
    pbw_msg(&g2, 1, &n);
    value_info(&vi, "x", 1, NULL, 0, NULL);
    pbw_msg(&g2, 11, &vi);
    pbw_msg(&m2, 7, &g2);
    assert_int_equal(load(&m2, &gr, &e), TDM_OK);
    assert_int_equal(gr->opset, 1);
    assert_int_equal(gr->nodes[0].opset, 1);
    tdm_graph_free(gr);
    pbw_free(&m2);
}

static void test_attributes(void **state)
{
    (void)state;
    pbw g = {0}, n = {0}, a = {0}, vi = {0}, t = {0};
    node(&n, "Conv", "conv1", (const char *[]){"x", "", "w"}, 3, (const char *[]){"y", ""}, 2);
    /* typed attributes */
    pbw_str(&a, 1, "pads");
    const int64_t pads[4] = {1, 2, -3, 4};
    pbw_packed(&a, 8, pads, 4);
    pbw_u(&a, 20, 7);
    pbw_msg(&n, 5, &a);
    pbw_str(&a, 1, "alpha");
    pbw_f32(&a, 2, 0.25f);
    pbw_u(&a, 20, 1);
    pbw_msg(&n, 5, &a);
    pbw_str(&a, 1, "mode");
    pbw_str(&a, 4, "constant");
    pbw_u(&a, 20, 3);
    pbw_msg(&n, 5, &a);
    /* untyped (old files): type inferred from the field that is set */
    pbw_str(&a, 1, "group");
    pbw_u(&a, 3, (uint64_t)-2);
    pbw_msg(&n, 5, &a);
    pbw_str(&a, 1, "scales");
    pbw_f32(&a, 7, 1.5f); /* unpacked repeated floats */
    pbw_f32(&a, 7, 2.5f);
    pbw_msg(&n, 5, &a);
    pbw_str(&a, 1, "names");
    pbw_str(&a, 9, "p");
    pbw_str(&a, 9, "qq");
    pbw_msg(&n, 5, &a);
    const int64_t one = 3;
    tensor_f32(&t, "val", &one, 1, k_b, 3, 1);
    pbw_str(&a, 1, "value");
    pbw_msg(&a, 5, &t);
    pbw_msg(&n, 5, &a);
    pbw_str(&a, 1, "empty");
    pbw_u(&a, 20, 7); /* INTS with no values */
    pbw_msg(&n, 5, &a);
    pbw_msg(&g, 1, &n);
    value_info(&vi, "x", 1, NULL, 0, NULL);
    pbw_msg(&g, 11, &vi);
    value_info(&vi, "w", 1, NULL, 0, NULL);
    pbw_msg(&g, 11, &vi);
    value_info(&vi, "y", 1, NULL, 0, NULL);
    pbw_msg(&g, 12, &vi);
    pbw m = model(&g, 11);
    tdm_graph *gr = NULL;
    tdm_err e;
    assert_int_equal(load(&m, &gr, &e), TDM_OK);
    const tdm_node *nd = &gr->nodes[0];
    assert_int_equal(nd->n_in, 3);
    assert_int_equal(nd->in[1], -1);
    assert_int_equal(nd->n_out, 2);
    assert_int_equal(nd->out[1], -1);
    int64_t cnt;
    const int64_t *p = tdm_attr_ints(nd, "pads", &cnt);
    assert_int_equal(cnt, 4);
    assert_memory_equal(p, pads, sizeof pads);
    assert_true(tdm_attr_float(nd, "alpha", 0) == 0.25f);
    assert_string_equal(tdm_attr_str(nd, "mode", ""), "constant");
    assert_int_equal(tdm_node_attr(nd, "mode")->s_len, 8);
    assert_int_equal(tdm_attr_int(nd, "group", 0), -2);
    const float *sc = tdm_attr_floats(nd, "scales", &cnt);
    assert_int_equal(cnt, 2);
    assert_true(sc[0] == 1.5f && sc[1] == 2.5f);
    const tdm_attr *names = tdm_node_attr(nd, "names");
    assert_int_equal(names->type, TDM_ATTR_STRINGS);
    assert_int_equal(names->n, 2);
    assert_string_equal(names->strings[1], "qq");
    const tdm_tensor *tv = tdm_attr_tensor(nd, "value");
    assert_non_null(tv);
    assert_memory_equal(tv->data, k_b, sizeof k_b);
    assert_int_equal(tdm_node_attr(nd, "empty")->type, TDM_ATTR_INTS);
    assert_int_equal(tdm_node_attr(nd, "empty")->n, 0);
    tdm_graph_free(gr);
    pbw_free(&m);
}

static void test_typed_data(void **state)
{
    (void)state;
    const int64_t d3 = 3;
    struct {
        int dtype;
        int field;
        int64_t vals[3];
        uint8_t expect[24];
        size_t bytes;
    } cases[] = {
        {3, 5, {-1, 2, -128}, {0xff, 2, 0x80}, 3},                       /* int8 */
        {2, 5, {255, 0, 7}, {255, 0, 7}, 3},                             /* uint8 */
        {9, 5, {1, 0, 5}, {1, 0, 1}, 3},                                 /* bool */
        {5, 5, {-2, 3, 0}, {0xfe, 0xff, 3, 0, 0, 0}, 6},                 /* int16 */
        {4, 5, {65535, 1, 2}, {0xff, 0xff, 1, 0, 2, 0}, 6},              /* uint16 */
        {10, 5, {0x3c00, 0xc000, 0}, {0x00, 0x3c, 0x00, 0xc0, 0, 0}, 6}, /* float16 bits */
        {16, 5, {0x3f80, 0, 0}, {0x80, 0x3f, 0, 0, 0, 0}, 6},            /* bfloat16 bits */
        {6, 5, {-1, 2, 3}, {0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 3, 0, 0, 0}, 12}, /* int32 */
        {7,
         7,
         {-1, 0, 1},
         {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0,
          0,    0,    0,    0,    1,    0,    0,    0,    0, 0, 0, 0},
         24}, /* int64 */
        {12,
         11,
         {0xffffffff, 1, 2},
         {0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0, 2, 0, 0, 0},
         12}, /* u32 */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        pbw t = {0};
        pbw_u(&t, 1, 3);
        pbw_u(&t, 2, (uint64_t)cases[c].dtype);
        pbw_packed(&t, (uint32_t)cases[c].field, cases[c].vals, 3);
        pbw m = model_with_init(&t);
        tdm_graph *g = NULL;
        tdm_err e;
        assert_int_equal(load(&m, &g, &e), TDM_OK);
        const tdm_tensor *cv = &g->values[tdm_graph_find(g, "c")].cval;
        assert_int_equal(cv->dtype, cases[c].dtype);
        assert_int_equal(cv->dims[0], d3);
        assert_memory_equal(cv->data, cases[c].expect, cases[c].bytes);
        tdm_graph_free(g);
        pbw_free(&m);
    }
    /* double_data and uint64 */
    pbw t = {0};
    pbw_u(&t, 1, 2);
    pbw_u(&t, 2, 11);
    double dv[2] = {1.25, -3.5};
    uint64_t bits[2];
    memcpy(bits, dv, sizeof bits);
    pbw_fixed64(&t, 10, bits[0]);
    pbw_fixed64(&t, 10, bits[1]);
    pbw m = model_with_init(&t);
    tdm_graph *g = NULL;
    tdm_err e;
    assert_int_equal(load(&m, &g, &e), TDM_OK);
    assert_memory_equal(g->values[tdm_graph_find(g, "c")].cval.data, dv, sizeof dv);
    tdm_graph_free(g);
    pbw_free(&m);
    /* a scalar (no dims) with one float, and an empty tensor (dim 0) with no data */
    pbw_u(&t, 2, 1);
    pbw_f32(&t, 4, 7.0f);
    m = model_with_init(&t);
    assert_int_equal(load(&m, &g, &e), TDM_OK);
    const tdm_tensor *cv = &g->values[tdm_graph_find(g, "c")].cval;
    assert_int_equal(cv->ndim, 0);
    assert_true(((float *)cv->data)[0] == 7.0f);
    tdm_graph_free(g);
    pbw_free(&m);
    pbw_u(&t, 1, 5);
    pbw_u(&t, 1, 0);
    pbw_u(&t, 2, 1);
    m = model_with_init(&t);
    assert_int_equal(load(&m, &g, &e), TDM_OK);
    assert_int_equal(tdm_tensor_numel(&g->values[tdm_graph_find(g, "c")].cval), 0);
    tdm_graph_free(g);
    pbw_free(&m);
}

/* Loads a model whose initializer is t; expects status s and a message containing want. */
static void expect_init_error(pbw *t, tdm_status s, const char *want)
{
    pbw m = model_with_init(t);
    tdm_graph *g = NULL;
    tdm_err e = {{0}};
    tdm_status got = load(&m, &g, &e);
    if (got != s || strstr(e.msg, want) == NULL)
        fail_msg("expected status %d with '%s', got %d: %s", s, want, got, e.msg);
    assert_null(g);
    pbw_free(&m);
}

static void test_hostile_tensors(void **state)
{
    (void)state;
    pbw t = {0};
    /* 2^62 elements with 16 bytes of raw data */
    const float few[4] = {0};
    pbw_u(&t, 1, (uint64_t)1 << 31);
    pbw_u(&t, 1, (uint64_t)1 << 31);
    pbw_u(&t, 2, 1);
    pbw_bytes(&t, 9, few, sizeof few);
    expect_init_error(&t, TDM_ERR_PARSE, "initializer 'c'");
    /* 2^62 elements of one byte: fits size_t, count check refuses it */
    pbw_u(&t, 1, (uint64_t)1 << 62);
    pbw_u(&t, 2, 2);
    pbw_bytes(&t, 9, few, sizeof few);
    expect_init_error(&t, TDM_ERR_PARSE, "raw_data has 16 bytes");
    /* dims whose product overflows */
    pbw_u(&t, 1, (uint64_t)1 << 62);
    pbw_u(&t, 1, 8);
    pbw_u(&t, 2, 1);
    expect_init_error(&t, TDM_ERR_PARSE, "overflow");
    /* negative dim */
    pbw_u(&t, 1, (uint64_t)-4);
    pbw_u(&t, 2, 1);
    expect_init_error(&t, TDM_ERR_PARSE, "negative dim");
    /* raw_data length mismatch */
    pbw_u(&t, 1, 3);
    pbw_u(&t, 2, 1);
    pbw_bytes(&t, 9, few, 8);
    expect_init_error(&t, TDM_ERR_PARSE,
                      "raw_data has 8 bytes but dims and data_type float32 "
                      "need 12");
    /* typed count mismatch */
    pbw_u(&t, 1, 3);
    pbw_u(&t, 2, 1);
    pbw_packed_f32(&t, 4, few, 2);
    expect_init_error(&t, TDM_ERR_PARSE, "float_data has 2 values but dims need 3");
    /* both raw and typed */
    pbw_u(&t, 1, 1);
    pbw_u(&t, 2, 1);
    pbw_packed_f32(&t, 4, few, 1);
    pbw_bytes(&t, 9, few, 4);
    expect_init_error(&t, TDM_ERR_PARSE, "both");
    /* wrong typed field for the dtype */
    pbw_u(&t, 1, 1);
    pbw_u(&t, 2, 1);
    pbw_u(&t, 7, 5);
    expect_init_error(&t, TDM_ERR_PARSE, "int64_data is set but data_type is float32");
    /* too many dims */
    for (int i = 0; i < 9; i++)
        pbw_u(&t, 1, 1);
    pbw_u(&t, 2, 1);
    expect_init_error(&t, TDM_ERR_UNSUPPORTED, "more than 8 dims");
    /* strings, complex64 and missing dtype */
    pbw_u(&t, 2, 8);
    pbw_str(&t, 6, "s");
    expect_init_error(&t, TDM_ERR_UNSUPPORTED, "string tensors");
    pbw_u(&t, 2, 14);
    expect_init_error(&t, TDM_ERR_UNSUPPORTED, "data_type 14");
    pbw_u(&t, 1, 1);
    expect_init_error(&t, TDM_ERR_PARSE, "no data_type");
    /* no data at all for a non-empty tensor */
    pbw_u(&t, 1, 2);
    pbw_u(&t, 2, 1);
    expect_init_error(&t, TDM_ERR_PARSE, "float_data has 0 values");
    /* segmented tensor */
    pbw_u(&t, 2, 1);
    pbw_bytes(&t, 3, "", 0);
    expect_init_error(&t, TDM_ERR_UNSUPPORTED, "segment");
    /* external data without a directory (buffer load) */
    pbw e1 = {0};
    pbw_u(&t, 1, 1);
    pbw_u(&t, 2, 1);
    pbw_str(&e1, 1, "location");
    pbw_str(&e1, 2, "w.bin");
    pbw_msg(&t, 13, &e1);
    pbw_u(&t, 14, 1);
    expect_init_error(&t, TDM_ERR_UNSUPPORTED, "no model directory");
}

static void test_graph_level_errors(void **state)
{
    (void)state;
    tdm_graph *g = NULL;
    tdm_err e;
    /* not a model at all */
    const uint8_t junk[] = "hello world, this is not protobuf";
    assert_int_not_equal(tdm_graph_load_buffer(junk, sizeof junk, NULL, NULL, &g, &e), TDM_OK);
    assert_int_equal(tdm_graph_load_buffer(junk, 0, NULL, NULL, &g, &e), TDM_ERR_PARSE);
    assert_non_null(strstr(e.msg, "no graph"));

    /* sparse initializer */
    pbw gr = {0}, sp = {0}, t = {0};
    const int64_t d1 = 1;
    tensor_f32(&t, "sparse_w", &d1, 1, k_b, 1, 1);
    pbw_msg(&sp, 1, &t);
    pbw_msg(&gr, 15, &sp);
    pbw m = model(&gr, 13);
    assert_int_equal(load(&m, &g, &e), TDM_ERR_UNSUPPORTED);
    assert_non_null(strstr(e.msg, "sparse initializer 'sparse_w'"));
    pbw_free(&m);

    /* subgraph attribute */
    pbw n = {0}, a = {0}, sub = {0}, vi = {0};
    node(&n, "If", "branch", (const char *[]){"x"}, 1, (const char *[]){"y"}, 1);
    pbw_str(&a, 1, "then_branch");
    pbw_msg(&a, 6, &sub);
    pbw_u(&a, 20, 5);
    pbw_msg(&n, 5, &a);
    pbw_msg(&gr, 1, &n);
    value_info(&vi, "x", 9, NULL, 0, NULL);
    pbw_msg(&gr, 11, &vi);
    m = model(&gr, 13);
    assert_int_equal(load(&m, &g, &e), TDM_ERR_UNSUPPORTED);
    assert_non_null(strstr(e.msg, "node 0 (If 'branch')"));
    assert_non_null(strstr(e.msg, "then_branch"));
    pbw_free(&m);

    /* undefined node input */
    node(&n, "Relu", "r", (const char *[]){"nowhere"}, 1, (const char *[]){"y"}, 1);
    pbw_msg(&gr, 1, &n);
    m = model(&gr, 13);
    assert_int_equal(load(&m, &g, &e), TDM_ERR_PARSE);
    assert_non_null(strstr(e.msg, "nowhere"));
    pbw_free(&m);

    /* output produced twice */
    value_info(&vi, "x", 1, NULL, 0, NULL);
    pbw_msg(&gr, 11, &vi);
    node(&n, "Relu", "r1", (const char *[]){"x"}, 1, (const char *[]){"y"}, 1);
    pbw_msg(&gr, 1, &n);
    node(&n, "Relu", "r2", (const char *[]){"x"}, 1, (const char *[]){"y"}, 1);
    pbw_msg(&gr, 1, &n);
    m = model(&gr, 13);
    assert_int_equal(load(&m, &g, &e), TDM_ERR_PARSE);
    assert_non_null(strstr(e.msg, "also produced by node 0"));
    pbw_free(&m);

    /* a node without op_type; a truncated attribute names node and attribute */
    node(&n, "", "anon", (const char *[]){"x"}, 1, (const char *[]){"y"}, 1);
    pbw_msg(&gr, 1, &n);
    m = model(&gr, 13);
    assert_int_equal(load(&m, &g, &e), TDM_ERR_PARSE);
    assert_non_null(strstr(e.msg, "no op_type"));
    pbw_free(&m);
    node(&n, "Conv", "conv1", (const char *[]){"x"}, 1, (const char *[]){"y"}, 1);
    pbw_str(&a, 1, "pads");
    const uint8_t bad_ints[] = {0x42, 0x02, 0x01, 0x80}; /* packed ints, last varint cut */
    pbw_raw(&a, bad_ints, sizeof bad_ints);
    pbw_msg(&n, 5, &a);
    pbw_msg(&gr, 1, &n);
    m = model(&gr, 13);
    assert_int_equal(load(&m, &g, &e), TDM_ERR_PARSE);
    assert_non_null(strstr(e.msg, "onnx buffer: graph: node 0 (Conv 'conv1'): attribute 'pads': "
                                  "truncated or overlong varint"));
    assert_non_null(strstr(e.msg, "at offset"));
    pbw_free(&m);

    /* graph input declared twice */
    value_info(&vi, "x", 1, NULL, 0, NULL);
    pbw_msg(&gr, 11, &vi);
    value_info(&vi, "x", 1, NULL, 0, NULL);
    pbw_msg(&gr, 11, &vi);
    m = model(&gr, 13);
    assert_int_equal(load(&m, &g, &e), TDM_ERR_PARSE);
    assert_non_null(strstr(e.msg, "declared twice"));
    pbw_free(&m);

    /* rank above TDM_MAX_DIMS in a value info */
    const int64_t d9[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    value_info(&vi, "x", 1, d9, 9, NULL);
    pbw_msg(&gr, 11, &vi);
    m = model(&gr, 13);
    assert_int_equal(load(&m, &g, &e), TDM_ERR_UNSUPPORTED);
    assert_non_null(strstr(e.msg, "graph input 'x'"));
    pbw_free(&m);
}

static void test_unsorted_and_cycle(void **state)
{
    (void)state;
    /* nodes listed consumer-first: c = Relu(b), b = Neg(a), a = Abs(x) */
    pbw gr = {0}, n = {0}, vi = {0};
    node(&n, "Relu", "third", (const char *[]){"b"}, 1, (const char *[]){"y"}, 1);
    pbw_msg(&gr, 1, &n);
    node(&n, "Neg", "second", (const char *[]){"a"}, 1, (const char *[]){"b"}, 1);
    pbw_msg(&gr, 1, &n);
    node(&n, "Abs", "first", (const char *[]){"x"}, 1, (const char *[]){"a"}, 1);
    pbw_msg(&gr, 1, &n);
    value_info(&vi, "x", 1, NULL, 0, NULL);
    pbw_msg(&gr, 11, &vi);
    value_info(&vi, "y", 1, NULL, 0, NULL);
    pbw_msg(&gr, 12, &vi);
    pbw m = model(&gr, 13);
    tdm_graph *g = NULL;
    tdm_err e;
    assert_int_equal(load(&m, &g, &e), TDM_OK);
    assert_string_equal(g->nodes[0].name, "first");
    assert_string_equal(g->nodes[1].name, "second");
    assert_string_equal(g->nodes[2].name, "third");
    assert_int_equal(g->values[tdm_graph_find(g, "b")].producer, 1);
    tdm_graph_free(g);
    pbw_free(&m);

    /* a = Abs(b), b = Neg(a): a cycle */
    node(&n, "Abs", "p", (const char *[]){"b"}, 1, (const char *[]){"a"}, 1);
    pbw_msg(&gr, 1, &n);
    node(&n, "Neg", "q", (const char *[]){"a"}, 1, (const char *[]){"b"}, 1);
    pbw_msg(&gr, 1, &n);
    m = model(&gr, 13);
    assert_int_equal(load(&m, &g, &e), TDM_ERR_PARSE);
    assert_non_null(strstr(e.msg, "cycle"));
    pbw_free(&m);
}

static void write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
}

/* Model whose initializer W [4,3] lives in an external file. */
static pbw external_model(const char *location, const char *offset, const char *length)
{
    pbw t = {0}, kv = {0};
    pbw_u(&t, 1, 4);
    pbw_u(&t, 1, 3);
    pbw_u(&t, 2, 1);
    pbw_str(&kv, 1, "location");
    pbw_str(&kv, 2, location);
    pbw_msg(&t, 13, &kv);
    if (offset) {
        pbw_str(&kv, 1, "offset");
        pbw_str(&kv, 2, offset);
        pbw_msg(&t, 13, &kv);
    }
    if (length) {
        pbw_str(&kv, 1, "length");
        pbw_str(&kv, 2, length);
        pbw_msg(&t, 13, &kv);
    }
    pbw_u(&t, 14, 1);
    return model_with_init(&t);
}

static tdm_status load_external(const char *dir, const char *loc, const char *off, const char *len,
                                tdm_graph **g, tdm_err *e)
{
    char path[512];
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    pbw m = external_model(loc, off, len);
    write_file(path, m.b, m.n);
    pbw_free(&m);
    *g = NULL;
    return tdm_graph_load(path, &k_raw, g, e);
}

static void test_external_data(void **state)
{
    (void)state;
    char dir[] = "/tmp/tdm_ext_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char sub[600], path[700];
    snprintf(sub, sizeof sub, "%s/weights", dir);
    mkdir(sub, 0700);
    /* 8 bytes of padding, then the 48 bytes of W */
    uint8_t blob[8 + sizeof k_w];
    memset(blob, 0xee, 8);
    memcpy(blob + 8, k_w, sizeof k_w);
    snprintf(path, sizeof path, "%s/weights/w.bin", dir);
    write_file(path, blob, sizeof blob);

    tdm_graph *g;
    tdm_err e;
    assert_int_equal(load_external(dir, "weights/w.bin", "8", "48", &g, &e), TDM_OK);
    assert_memory_equal(g->values[tdm_graph_find(g, "c")].cval.data, k_w, sizeof k_w);
    tdm_graph_free(g);
    /* length omitted: the rest of the file */
    assert_int_equal(load_external(dir, "weights/w.bin", "8", NULL, &g, &e), TDM_OK);
    tdm_graph_free(g);
    /* ./ components are fine */
    assert_int_equal(load_external(dir, "./weights/./w.bin", "8", "48", &g, &e), TDM_OK);
    tdm_graph_free(g);

    struct {
        const char *loc, *off, *len;
        tdm_status s;
        const char *want;
    } bad[] = {
        {"../w.bin", "8", "48", TDM_ERR_PARSE, "relative path"},
        {"weights/../../etc/passwd", NULL, NULL, TDM_ERR_PARSE, "relative path"},
        {"/etc/passwd", NULL, NULL, TDM_ERR_PARSE, "relative path"},
        {"weights/..", NULL, NULL, TDM_ERR_PARSE, "relative path"},
        {"", NULL, NULL, TDM_ERR_PARSE, "relative path"},
        {"weights/w.bin", "9", "48", TDM_ERR_PARSE, "exceeds"},
        {"weights/w.bin", "100", NULL, TDM_ERR_PARSE, "beyond the end"},
        {"weights/w.bin", "0", "56", TDM_ERR_PARSE, "does not match"},
        {"weights/w.bin", "18446744073709551615", "48", TDM_ERR_PARSE, "beyond the end"},
        {"weights/w.bin", "99999999999999999999999", "48", TDM_ERR_PARSE, "not a number"},
        {"weights/w.bin", "-1", "48", TDM_ERR_PARSE, "not a number"},
        {"weights/missing.bin", NULL, NULL, TDM_ERR_IO, "cannot open"},
        {"weights", NULL, NULL, TDM_ERR_IO, "not a regular file"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tdm_status s = load_external(dir, bad[i].loc, bad[i].off, bad[i].len, &g, &e);
        if (s != bad[i].s || strstr(e.msg, bad[i].want) == NULL)
            fail_msg("case %zu (%s): expected %d '%s', got %d: %s", i, bad[i].loc, bad[i].s,
                     bad[i].want, s, e.msg);
        assert_null(g);
        /* the message names the file and the initializer */
        assert_non_null(strstr(e.msg, "model.onnx"));
        assert_non_null(strstr(e.msg, "initializer 'c'"));
    }
    remove(path);
    rmdir(sub);
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    remove(path);
    rmdir(dir);
}

/*
 * A file-backed load copies raw_data in chunks and releases the source pages
 * behind it: a multi-chunk tensor at an unaligned offset must still arrive
 * intact, byte for byte.
 */
static void test_large_initializer_from_file(void **state)
{
    (void)state;
    const size_t n = 750001; /* 3,000,004 bytes: three 1 MiB chunks and a tail */
    float *w = malloc(n * sizeof *w);
    assert_non_null(w);
    for (size_t i = 0; i < n; i++)
        w[i] = (float)i * 0.5f - 7.0f;
    pbw t = {0};
    pbw_u(&t, 1, (uint64_t)n);
    pbw_u(&t, 2, 1);
    pbw_bytes(&t, 9, w, n * sizeof *w);
    pbw m = model_with_init(&t);
    char dir[] = "/tmp/tdm_big_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/big.onnx", dir);
    write_file(path, m.b, m.n);
    tdm_graph *g = NULL;
    tdm_err e;
    assert_int_equal(tdm_graph_load(path, &k_raw, &g, &e), TDM_OK);
    const tdm_tensor *c = &g->values[tdm_graph_find(g, "c")].cval;
    assert_int_equal(c->dims[0], (int64_t)n);
    assert_memory_equal(c->data, w, n * sizeof *w);
    tdm_graph_free(g);
    remove(path);
    rmdir(dir);
    free(w);
    pbw_free(&m);
}

/* ---- damaged copies -------------------------------------------------------- */

static int load_ok(const uint8_t *b, size_t n)
{
    tdm_graph *g = NULL;
    tdm_err e;
    tdm_status s = tdm_graph_load_buffer(b, n, NULL, NULL, &g, &e);
    if (s == TDM_OK) {
        assert_non_null(g);
        /* a graph that loads must be usable by the info calls */
        tdm_graph_stats st;
        tdm_graph_get_stats(g, &st);
        tdm_value_info vi;
        for (int i = 0; i < tdm_graph_num_inputs(g); i++)
            assert_int_equal(tdm_graph_input_info(g, i, &vi), TDM_OK);
        tdm_graph_free(g);
        return 1;
    }
    assert_null(g);
    assert_true(e.msg[0] != '\0');
    return 0;
}

static void test_every_truncation(void **state)
{
    (void)state;
    pbw m = small_model();
    int ok = 0;
    for (size_t len = 0; len < m.n; len++) {
        uint8_t *copy = malloc(len ? len : 1); /* exact size: ASan catches overreads */
        memcpy(copy, m.b, len);
        ok += load_ok(copy, len);
        free(copy);
    }
    assert_int_equal(load_ok(m.b, m.n), 1);
    /* a cut inside the graph message always breaks it; cuts after it may leave a valid model */
    assert_true(ok < 4);
    pbw_free(&m);
}

static void test_byte_flips(void **state)
{
    (void)state;
    pbw m = small_model();
    const uint8_t masks[] = {0x01, 0x02, 0x08, 0x40, 0x80, 0xff};
    uint8_t *copy = malloc(m.n);
    int loaded = 0, total = 0;
    for (size_t i = 0; i < m.n; i++)
        for (size_t k = 0; k < sizeof masks; k++) {
            memcpy(copy, m.b, m.n);
            copy[i] ^= masks[k];
            loaded += load_ok(copy, m.n);
            total++;
        }
    /* some flips only change a value or a name; many must be caught */
    assert_true(loaded > 0 && loaded < total);
    free(copy);
    pbw_free(&m);
}

/* ---- real models -------------------------------------------------------------- */

typedef struct model_facts {
    const char *file;
    int n_nodes;
    uint64_t param_bytes;
    uint64_t param_count;
    int64_t opset;
    const char *input;
    int in_ndim;
    int64_t in_dims[4];
    const char *output;
    int64_t out_last;
} model_facts;

/* Figures from the onnx Python package (onnx.load + numpy_helper). */
static const model_facts k_models[] = {
    {"vnncomp/Convnet_avgpool.onnx", 6, 46760, 11690, 9, "input", 4, {1, 1, 28, 28}, "output", 10},
    {"vnncomp/Convnet_maxpool.onnx", 5, 46760, 11690, 9, "input", 4, {1, 1, 28, 28}, "output", 10},
    {"vnncomp/cifar_base_kw.onnx", 8, 423864, 105966, 9, "input.1", 4, {1, 3, 32, 32}, "16", 10},
    {"vnncomp/cifar_wide_kw.onnx", 8, 859672, 214918, 9, "input.1", 4, {1, 3, 32, 32}, "16", 10},
    {"vnncomp/ffnnSIGMOID__Point_6x200.onnx",
     18,
     1440040,
     360010,
     9,
     "input",
     4,
     {1, 1, 28, 28},
     "output",
     10},
    {"vnncomp/mnist-net_256x2.onnx", 6, 1077288, 269322, 9, "0", 3, {1, 784, 1}, "12", 10},
    {"vnncomp/mnist-net_256x4.onnx", 10, 1603624, 400906, 9, "0", 3, {1, 784, 1}, "20", 10},
    {"vnncomp/mnist-net_256x6.onnx", 14, 2129960, 532490, 9, "0", 3, {1, 784, 1}, "28", 10},
    {"vnncomp/mnist_relu_9_200.onnx",
     23,
     1761640,
     440410,
     9,
     "input",
     4,
     {1, 1, 28, 28},
     "output",
     10},
    {"vnncomp/resnet_2b.onnx", 17, 448024, 112006, 9, "input.1", 4, {1, 3, 32, 32}, "33", 10},
    {"vnncomp/resnet_4b.onnx", 28, 494936, 123734, 9, "input.1", 4, {1, 3, 32, 32}, "54", 10},
};

static void test_shared_models(void **state)
{
    (void)state;
    REQUIRE_OR_SKIP(TDM_SHARED_DIR "/models/vnncomp");
    tdm_load_options opt = {.no_optimize = true};
    for (size_t i = 0; i < sizeof k_models / sizeof k_models[0]; i++) {
        const model_facts *f = &k_models[i];
        char path[512];
        snprintf(path, sizeof path, "%s/models/%s", TDM_SHARED_DIR, f->file);
        tdm_graph *g = NULL;
        tdm_err e;
        tdm_status s = tdm_graph_load(path, &opt, &g, &e);
        if (s != TDM_OK)
            fail_msg("%s: %s", f->file, e.msg);
        tdm_graph_stats st;
        tdm_graph_get_stats(g, &st);
        assert_int_equal(st.n_nodes, f->n_nodes);
        assert_int_equal(st.param_bytes, f->param_bytes);
        assert_int_equal(st.param_count, f->param_count);
        assert_int_equal(st.opset, f->opset);
        assert_int_equal(tdm_graph_num_inputs(g), 1);
        assert_int_equal(tdm_graph_num_outputs(g), 1);
        tdm_value_info vi;
        assert_int_equal(tdm_graph_input_info(g, 0, &vi), TDM_OK);
        assert_string_equal(vi.name, f->input);
        assert_int_equal(vi.dtype, TDM_DTYPE_FLOAT32);
        assert_int_equal(vi.ndim, f->in_ndim);
        for (int d = 0; d < f->in_ndim; d++)
            assert_int_equal(vi.dims[d], f->in_dims[d]);
        assert_int_equal(tdm_graph_output_info(g, 0, &vi), TDM_OK);
        assert_string_equal(vi.name, f->output);
        assert_int_equal(vi.dims[vi.ndim - 1], f->out_last);
        tdm_graph_free(g);
    }
}

static void test_bert_tiny(void **state)
{
    (void)state;
    const char *path = TDM_SHARED_DIR "/models/bert-tiny/onnx/model.onnx";
    REQUIRE_OR_SKIP(path);
    tdm_load_options opt = {.no_optimize = true};
    tdm_graph *g = NULL;
    tdm_err e;
    tdm_status s = tdm_graph_load(path, &opt, &g, &e);
    if (s != TDM_OK)
        fail_msg("%s", e.msg);
    tdm_graph_stats st;
    tdm_graph_get_stats(g, &st);
    assert_int_equal(st.ir_version, 7);
    assert_int_equal(st.opset, 14);
    assert_int_equal(st.n_nodes, 225);
    assert_int_equal(st.param_bytes, 12615680);
    assert_int_equal(st.param_count, 3153920);
    const char *names[3] = {"input_ids", "attention_mask", "token_type_ids"};
    assert_int_equal(tdm_graph_num_inputs(g), 3);
    for (int i = 0; i < 3; i++) {
        tdm_value_info vi;
        assert_int_equal(tdm_graph_input_info(g, i, &vi), TDM_OK);
        assert_string_equal(vi.name, names[i]);
        assert_int_equal(vi.dtype, TDM_DTYPE_INT64);
        assert_int_equal(vi.ndim, 2);
        assert_int_equal(vi.dims[0], -1);
        assert_string_equal(vi.dim_names[0], "batch");
        assert_string_equal(vi.dim_names[1], "seq");
    }
    tdm_value_info vo;
    assert_int_equal(tdm_graph_output_info(g, 0, &vo), TDM_OK);
    assert_string_equal(vo.name, "last_hidden_state");
    assert_int_equal(vo.ndim, 3);
    assert_int_equal(vo.dims[2], 96);
    assert_string_equal(vo.dim_names[1], "seq");
    /* Constant nodes stay nodes */
    int constants = 0;
    for (int32_t i = 0; i < g->n_nodes; i++)
        constants += strcmp(g->nodes[i].op_type, "Constant") == 0;
    assert_int_equal(constants, 59);
    tdm_graph_free(g);
}

/* input_0.pb of an ONNX node test, checked against the relu of it in output_0.pb. */
static uint8_t *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(sz > 0 ? (size_t)sz : 1);
    *n = fread(b, 1, (size_t)sz, f);
    fclose(f);
    return b;
}

static void test_parse_tensor_pb(void **state)
{
    (void)state;
    const char *dir = TDM_ONNX_TESTDATA "/test_relu/test_data_set_0";
    REQUIRE_OR_SKIP(dir);
    char p[512];
    size_t ni = 0, no = 0;
    snprintf(p, sizeof p, "%s/input_0.pb", dir);
    uint8_t *in = slurp(p, &ni);
    snprintf(p, sizeof p, "%s/output_0.pb", dir);
    uint8_t *out = slurp(p, &no);
    assert_non_null(in);
    assert_non_null(out);
    tdm_tensor x, y;
    char *name = NULL;
    tdm_err e;
    assert_int_equal(tdm_onnx_parse_tensor(in, ni, &x, &name, &e), TDM_OK);
    assert_string_equal(name, "x");
    free(name);
    assert_int_equal(tdm_onnx_parse_tensor(out, no, &y, NULL, &e), TDM_OK);
    assert_int_equal(x.ndim, 3);
    assert_int_equal(x.dims[0], 3);
    assert_int_equal(x.dims[1], 4);
    assert_int_equal(x.dims[2], 5);
    assert_true(tdm_tensor_same_shape(&x, &y));
    const float *xf = x.data, *yf = y.data;
    int negatives = 0;
    for (int64_t i = 0; i < tdm_tensor_numel(&x); i++) {
        negatives += xf[i] < 0;
        assert_true(yf[i] == (xf[i] > 0 ? xf[i] : 0));
    }
    assert_true(negatives > 0);
    tdm_tensor_free(&x);
    tdm_tensor_free(&y);
    /* every prefix of a tensor file */
    for (size_t len = 0; len < ni; len++) {
        tdm_tensor t;
        tdm_status s = tdm_onnx_parse_tensor(in, len, &t, NULL, &e);
        if (s == TDM_OK)
            tdm_tensor_free(&t);
        else
            assert_null(t.data);
    }
    free(in);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_model),
        cmocka_unit_test(test_load_from_file_and_missing),
        cmocka_unit_test(test_opsets_and_domains),
        cmocka_unit_test(test_attributes),
        cmocka_unit_test(test_typed_data),
        cmocka_unit_test(test_hostile_tensors),
        cmocka_unit_test(test_graph_level_errors),
        cmocka_unit_test(test_unsorted_and_cycle),
        cmocka_unit_test(test_external_data),
        cmocka_unit_test(test_large_initializer_from_file),
        cmocka_unit_test(test_every_truncation),
        cmocka_unit_test(test_byte_flips),
        cmocka_unit_test(test_shared_models),
        cmocka_unit_test(test_bert_tiny),
        cmocka_unit_test(test_parse_tensor_pb),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

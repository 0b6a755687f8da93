/*
 * The edge agent without a network: configuration errors are refused with
 * the field's path and nothing starts; an edge-only model answers on the
 * device with the same label as running the model directly; the exact cache
 * answers a repeated input; bad requests (unknown model, wrong shape, bad
 * request id) are errors that leave the agent serving.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "skip.h"
#include "tandem/data.h"
#include "tandem/edge.h"
#include "tandem/graph.h"

#define MODEL TDM_SHARED_DIR "/models/vnncomp/Convnet_maxpool.onnx"
#define MNIST TDM_SHARED_DIR "/data/mnist"

static void expect_error(const char *yaml, const char *needle)
{
    tdm_edge *e = (tdm_edge *)1;
    tdm_err err = {{0}};
    tdm_status st = tdm_edge_create_from_text(yaml, strlen(yaml), "/", &e, &err);
    if (st == TDM_OK || strstr(err.msg, needle) == NULL)
        fail_msg("config:\n%s\nwant an error with '%s', got status %d: %s", yaml, needle, st,
                 err.msg);
    assert_null(e);
}

static void test_config_errors(void **state)
{
    (void)state;
    expect_error("models: []\n", "models");
    expect_error("models:\n  - name: a\n    version: 1\n", "models[0].file");
    expect_error("modles:\n  - name: a\n", "unknown key 'modles'");
    expect_error("device_id: \"a b\"\nmodels:\n  - {name: a, version: 1, file: x.onnx}\n",
                 "device_id");
    expect_error("models:\n  - {name: a, version: 1, file: " MODEL ", mode: fast}\n",
                 "models[0].mode");
    expect_error("models:\n  - {name: a, version: 1, file: " MODEL "}\n",
                 "transport.endpoints is empty");
    expect_error("models:\n  - {name: a, version: 1, file: /nonexistent.onnx, mode: edge}\n",
                 "nonexistent.onnx");
    expect_error("models:\n  - {name: a, version: 1, file: " MODEL ", mode: edge}\n"
                 "transport: {endpoints: [ftp://x]}\n",
                 "transport.endpoints");
    if (tdm_test_path_exists(MODEL))
        expect_error("models:\n  - {name: a, version: 1, file: " MODEL ", mode: edge,\n"
                     "     exits: [{output: nope, threshold: 0.5}]}\n",
                     "nope");
    expect_error("models:\n  - {name: a, version: 1, file: " MODEL ", mode: edge}\n"
                 "cache: {ttl_s: -1}\n",
                 "cache.ttl_s");
    expect_error("models:\n  - {name: a, version: 1, file: " MODEL ", mode: edge}\n"
                 "transport: {endpoints: [\"http://h:1\"], hedge_after_ms: soon}\n",
                 "transport.hedge_after_ms");
    expect_error("models:\n  - {name: a, version: 1, file: " MODEL ", mode: edge}\n"
                 "transport: {endpoints: [\"http://h:1\"], hedge_after_ms: -5}\n",
                 "transport.hedge_after_ms");
    expect_error("models:\n  - {name: a, version: 1, file: " MODEL ", mode: edge}\n"
                 "compression: {mode: int4, zero_fraction: 1.5}\n",
                 "compression.zero_fraction");
    expect_error("models: [\n", "edge config");
}

static void test_edge_only(void **state)
{
    (void)state;
    if (!tdm_test_path_exists(MODEL))
        return; /* main reports the skip */
    const char *yaml = "device_id: test-1\n"
                       "models:\n"
                       "  - {name: mnist, version: 1, file: " MODEL ", mode: edge}\n"
                       "compression: {mode: int4, zero_fraction: 0.1}\n"
                       "cache: {ttl_s: 60, max_bytes: 1048576}\n";
    tdm_edge *e;
    tdm_err err = {{0}};
    assert_int_equal(tdm_edge_create_from_text(yaml, strlen(yaml), "/", &e, &err), TDM_OK);

    tdm_dataset ds = {0};
    tdm_data_norm norm = {.scale = 255};
    if (tdm_dataset_load("mnist", MNIST, false, &norm, 20, &ds, &err) != TDM_OK) {
        tdm_edge_free(e);
        fail_msg("%s", err.msg);
    }
    tdm_graph *g;
    tdm_session *s;
    assert_int_equal(tdm_graph_load(MODEL, NULL, &g, &err), TDM_OK);
    assert_int_equal(tdm_session_create(g, NULL, &s, &err), TDM_OK);
    tdm_value_info in;
    tdm_graph_input_info(g, 0, &in);
    int agree = 0;
    for (int i = 0; i < 20; i++) {
        tdm_tensor x = {0};
        int64_t dims[4] = {1, 1, 28, 28};
        tdm_tensor_set_shape(&x, TDM_DTYPE_FLOAT32, 4, dims);
        x.data = (float *)ds.x.data + (size_t)i * 784;
        tdm_edge_request req = {.model = "mnist", .input = &x, .mode = -1};
        tdm_edge_result res;
        assert_int_equal(tdm_edge_submit(e, &req, &res, &err), TDM_OK);
        assert_int_equal(res.route, TDM_EDGE_ROUTE_LOCAL);
        assert_true(res.confidence > 0 && res.confidence <= 1);
        assert_int_equal(res.bytes_sent, 0);

        tdm_tensor out = {0};
        const char *name = in.name;
        assert_int_equal(tdm_session_run(s, 1, &name, &x, &out, &err), TDM_OK);
        int best = 0;
        for (int k = 1; k < 10; k++)
            if (((float *)out.data)[k] > ((float *)out.data)[best])
                best = k;
        tdm_tensor_free(&out);
        agree += best == res.label;

        /* The same input again: answered by the exact cache, same label. */
        tdm_edge_result again;
        assert_int_equal(tdm_edge_submit(e, &req, &again, &err), TDM_OK);
        assert_int_equal(again.route, TDM_EDGE_ROUTE_CACHE);
        assert_int_equal(again.label, res.label);
    }
    assert_int_equal(agree, 20);

    /* Bad requests: errors, and the agent keeps serving. */
    tdm_tensor bad = {0};
    int64_t bd[2] = {1, 10};
    assert_int_equal(tdm_tensor_make(&bad, TDM_DTYPE_FLOAT32, 2, bd, &err), TDM_OK);
    tdm_edge_request req = {.model = "mnist", .input = &bad, .mode = -1};
    tdm_edge_result res;
    assert_int_equal(tdm_edge_submit(e, &req, &res, &err), TDM_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "784"));
    req.model = "nope";
    assert_int_equal(tdm_edge_submit(e, &req, &res, &err), TDM_ERR_NOT_FOUND);
    tdm_tensor_free(&bad);

    tdm_edge_stats st;
    tdm_edge_get_stats(e, &st);
    assert_int_equal(st.requests, 40);
    assert_int_equal(st.routes[TDM_EDGE_ROUTE_LOCAL], 20);
    assert_int_equal(st.routes[TDM_EDGE_ROUTE_CACHE], 20);
    char *metrics = tdm_edge_metrics_text(e);
    assert_non_null(metrics);
    assert_non_null(
        strstr(metrics, "tandem_edge_requests_total{device=\"test-1\",route=\"local\"} 20"));
    free(metrics);

    tdm_session_free(s);
    tdm_graph_free(g);
    tdm_dataset_free(&ds);
    tdm_edge_free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_edge_only),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    if (failed == 0 && !tdm_test_path_exists(MODEL)) {
        printf("SKIP: %s is absent (see ../shared/README.md); only config tests ran\n", MODEL);
        return TDM_SKIP_CODE;
    }
    return failed;
}

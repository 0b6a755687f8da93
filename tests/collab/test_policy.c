/*
 * The heuristic placement policy: one test per branch of the decision order,
 * the estimates it reports, rejection of out-of-range inputs, and the JSON
 * request/response forms used by /v1/policy/decide.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "collab/policy.h"

static tdm_policy_result decide(const tdm_policy_input *in)
{
    tdm_policy_config cfg;
    tdm_policy_config_default(&cfg);
    tdm_policy_result r;
    tdm_err err;
    assert_int_equal(tdm_policy_decide(&cfg, in, &r, &err), TDM_OK);
    return r;
}

static void test_confident_exit(void **state)
{
    (void)state;
    tdm_policy_input in;
    tdm_policy_input_default(&in);
    in.confidence = 0.95;
    in.local_ms = 50;
    in.cloud_ms = 1;
    in.rtt_ms = 1;
    tdm_policy_result r = decide(&in);
    assert_int_equal(r.decision, TDM_POLICY_DECISION_EXIT);
    assert_string_equal(r.reason, "confident_exit");
    assert_true(r.estimated_latency_ms == 0.0);
    /* Just under the threshold: not an exit; offload is faster here. */
    in.confidence = 0.89;
    r = decide(&in);
    assert_int_equal(r.decision, TDM_POLICY_DECISION_OFFLOAD);
    assert_string_equal(r.reason, "offload_faster");
    assert_true(fabs(r.estimated_latency_ms - 2.0) < 1e-9);
}

static void test_offload_estimate(void **state)
{
    (void)state;
    tdm_policy_input in;
    tdm_policy_input_default(&in);
    in.rtt_ms = 10;
    in.upload_bytes = 125000; /* 1 Mbit */
    in.bandwidth_mbps = 10;   /* 100 ms */
    in.cloud_ms = 20;
    in.cloud_load = 0.5; /* 30 ms */
    in.local_ms = 500;
    tdm_policy_result r = decide(&in);
    assert_int_equal(r.decision, TDM_POLICY_DECISION_OFFLOAD);
    assert_true(fabs(r.offload_ms - 140.0) < 1e-9);
    assert_true(fabs(r.local_ms - 500.0) < 1e-9);
    /* Local faster than offload: stay local. */
    in.local_ms = 100;
    r = decide(&in);
    assert_int_equal(r.decision, TDM_POLICY_DECISION_LOCAL);
    assert_string_equal(r.reason, "local_faster");
    assert_true(fabs(r.estimated_latency_ms - 100.0) < 1e-9);
}

static void test_deadline_paths(void **state)
{
    (void)state;
    tdm_policy_input in;
    tdm_policy_input_default(&in);
    in.rtt_ms = 50;
    in.cloud_ms = 10; /* offload 60 */
    in.local_ms = 40; /* local faster */
    in.deadline_ms = 30;
    /* Neither meets 30 ms and the caller cannot wait: the faster one, best effort. */
    tdm_policy_result r = decide(&in);
    assert_int_equal(r.decision, TDM_POLICY_DECISION_LOCAL);
    assert_string_equal(r.reason, "best_effort");
    /* Deferrable: defer. */
    in.deferrable = true;
    r = decide(&in);
    assert_int_equal(r.decision, TDM_POLICY_DECISION_DEFER);
    assert_string_equal(r.reason, "deadline_unmeetable");
    assert_true(fabs(r.estimated_latency_ms - 40.0) < 1e-9);
    /* Local misses the deadline but offload meets it, although with margin 2 it is not
     * "faster enough": offload anyway. */
    tdm_policy_config cfg;
    tdm_policy_config_default(&cfg);
    cfg.margin = 2.0;
    in.local_ms = 80;
    in.deadline_ms = 70;
    assert_int_equal(tdm_policy_decide(&cfg, &in, &r, NULL), TDM_OK);
    assert_int_equal(r.decision, TDM_POLICY_DECISION_OFFLOAD);
    assert_string_equal(r.reason, "local_misses_deadline");
    /* With margin 2 and no deadline, 60 ms offload does not beat 80 ms local by 2x. */
    in.deadline_ms = 0;
    assert_int_equal(tdm_policy_decide(&cfg, &in, &r, NULL), TDM_OK);
    assert_int_equal(r.decision, TDM_POLICY_DECISION_LOCAL);
}

static void test_cloud_unavailable_and_slow_link(void **state)
{
    (void)state;
    tdm_policy_input in;
    tdm_policy_input_default(&in);
    in.cloud_available = false;
    in.local_ms = 100;
    in.cloud_ms = 1;
    tdm_policy_result r = decide(&in);
    assert_int_equal(r.decision, TDM_POLICY_DECISION_LOCAL);
    assert_string_equal(r.reason, "cloud_unavailable");
    assert_true(r.offload_ms < 0);
    in.deadline_ms = 50;
    in.deferrable = true;
    r = decide(&in);
    assert_int_equal(r.decision, TDM_POLICY_DECISION_DEFER);
    assert_string_equal(r.reason, "cloud_unavailable");
    in.cloud_available = true;
    in.deferrable = false;
    in.deadline_ms = 0;
    in.rtt_ms = 5000; /* above max_rtt_ms */
    r = decide(&in);
    assert_int_equal(r.decision, TDM_POLICY_DECISION_LOCAL);
    assert_string_equal(r.reason, "rtt_too_high");
}

static void test_bad_inputs(void **state)
{
    (void)state;
    tdm_policy_config cfg;
    tdm_policy_config_default(&cfg);
    tdm_policy_input in;
    tdm_policy_result r;
    memset(&r, 0x5a, sizeof r);
    tdm_policy_result before = r;
    tdm_err err;
    struct {
        double *field;
        double value;
        const char *name;
    } cases[] = {
        {&in.confidence, 1.5, "confidence"},  {&in.rtt_ms, NAN, "rtt_ms"},
        {&in.deadline_ms, -1, "deadline_ms"}, {&in.local_ms, INFINITY, "local_ms"},
        {&in.cloud_load, 2, "cloud_load"},    {&in.bandwidth_mbps, -3, "bandwidth_mbps"},
        {&in.confidence, NAN, "confidence"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tdm_policy_input_default(&in);
        *cases[i].field = cases[i].value;
        assert_int_equal(tdm_policy_decide(&cfg, &in, &r, &err), TDM_ERR_INVALID_ARG);
        assert_non_null(strstr(err.msg, cases[i].name));
        assert_memory_equal(&r, &before, sizeof r);
    }
    tdm_policy_input_default(&in);
    cfg.confidence_threshold = 1.2;
    assert_int_equal(tdm_policy_decide(&cfg, &in, &r, &err), TDM_ERR_INVALID_ARG);
    assert_non_null(strstr(err.msg, "confidence_threshold"));
}

static void test_json_forms(void **state)
{
    (void)state;
    const char *req = "{\"confidence\":0.5,\"rtt_ms\":5,\"local_ms\":30,\"cloud_ms\":4,"
                      "\"deadline_ms\":100,\"deferrable\":true}";
    tdm_json_doc *doc;
    tdm_err err;
    assert_int_equal(tdm_json_parse(req, strlen(req), 0, &doc, &err), TDM_OK);
    tdm_policy_input in;
    assert_int_equal(tdm_policy_input_from_json(tdm_json_root(doc), &in, &err), TDM_OK);
    tdm_json_free(doc);
    assert_true(in.deferrable && in.cloud_available);
    tdm_policy_result r = decide(&in);
    tdm_json_buf b = {0};
    tdm_policy_result_json(&r, &b);
    assert_false(b.failed);
    assert_string_equal(b.data, "{\"decision\":\"offload\",\"reason\":\"offload_faster\","
                                "\"estimated_latency_ms\":9,\"estimates\":{\"local_ms\":30,"
                                "\"offload_ms\":9}}");
    tdm_json_buf_free(&b);

    static const char *bad[] = {"[1]", "{\"rtt_ms\":\"5\"}", "{\"deferrable\":1}",
                                "{\"confidence\":-0.5}"};
    static const char *names[] = {"object", "rtt_ms", "deferrable", "confidence"};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(tdm_json_parse(bad[i], strlen(bad[i]), 0, &doc, &err), TDM_OK);
        assert_int_equal(tdm_policy_input_from_json(tdm_json_root(doc), &in, &err),
                         TDM_ERR_INVALID_ARG);
        assert_non_null(strstr(err.msg, names[i]));
        tdm_json_free(doc);
    }
    /* Offload impossible: offload_ms is null. */
    tdm_policy_input_default(&in);
    in.cloud_available = false;
    r = decide(&in);
    tdm_policy_result_json(&r, &b);
    assert_non_null(strstr(b.data, "\"offload_ms\":null"));
    tdm_json_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_confident_exit),
        cmocka_unit_test(test_offload_estimate),
        cmocka_unit_test(test_deadline_paths),
        cmocka_unit_test(test_cloud_unavailable_and_slow_link),
        cmocka_unit_test(test_bad_inputs),
        cmocka_unit_test(test_json_forms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

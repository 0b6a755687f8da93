/*
 * Gateway plumbing without a socket: the config (YAML, flags overriding it, errors naming
 * the key), route matching with {name} captures, the error body shape, base64, and the
 * Prometheus text of the metrics.
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

#include "cloud/gateway_internal.h"
#include "cloud/http.h"
#include "cloud/metrics.h"
#include "cloud/runner.h"

static char *write_tmp(const char *text)
{
    static char path[64];
    snprintf(path, sizeof path, "/tmp/tdm_gwcfg_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static void test_config_yaml_and_flags(void **state)
{
    (void)state;
    tdm_gw_config c;
    tdm_gw_config_defaults(&c);
    assert_int_equal(c.port, 8080);
    assert_true(c.batching);
    /* No auth configured at all: refused, so that only an explicit "none" turns it off. */
    tdm_err aerr = {{0}};
    snprintf(c.model_repo, sizeof c.model_repo, "/srv/models");
    assert_int_equal(tdm_gw_config_validate(&c, &aerr), TDM_ERR_INVALID_ARG);
    assert_non_null(strstr(aerr.msg, "auth: none"));
    c.model_repo[0] = '\0';
    char *p = write_tmp("listen: 0.0.0.0\nport: 9000\nmodel_repo: /srv/models\n"
                        "limits:\n  max_body_bytes: 2048\n  max_concurrent: 7\n"
                        "batching:\n  enabled: false\n  max_batch: 8\n  slo_p99_ms: 12.5\n"
                        "auth: none\ncache:\n  max_bytes: 100\n");
    tdm_err err = {{0}};
    assert_int_equal(tdm_gw_config_load(&c, p, &err), TDM_OK);
    unlink(p);
    assert_string_equal(c.listen, "0.0.0.0");
    assert_int_equal(c.port, 9000);
    assert_string_equal(c.model_repo, "/srv/models");
    assert_int_equal(c.max_body_bytes, 2048);
    assert_int_equal(c.max_concurrent, 7);
    assert_false(c.batching);
    assert_int_equal(c.max_batch, 8);
    assert_float_equal(c.slo_p99_ms, 12.5, 1e-9);
    assert_string_equal(c.auth_mode, "none");
    /* module sections stay in the tree */
    assert_non_null(tdm_json_get(tdm_json_root(c.doc), "cache"));
    /* flags override */
    assert_int_equal(tdm_gw_config_set(&c, "port", "9100", &err), TDM_OK);
    assert_int_equal(tdm_gw_config_set(&c, "batching", "true", &err), TDM_OK);
    assert_int_equal(c.port, 9100);
    assert_true(c.batching);
    assert_int_equal(tdm_gw_config_validate(&c, &err), TDM_OK);
    tdm_gw_config_release(&c);
}

static void expect_config_error(const char *yaml, const char *needle)
{
    tdm_gw_config c;
    tdm_gw_config_defaults(&c);
    char *p = write_tmp(yaml);
    tdm_err err = {{0}};
    assert_int_not_equal(tdm_gw_config_load(&c, p, &err), TDM_OK);
    unlink(p);
    if (!strstr(err.msg, needle))
        fprintf(stderr, "message '%s' lacks '%s'\n", err.msg, needle);
    assert_non_null(strstr(err.msg, needle));
    assert_int_equal(c.port, 8080); /* unchanged on the failed key */
    tdm_gw_config_release(&c);
}

static void test_config_errors(void **state)
{
    (void)state;
    expect_config_error("port: eighty\n", "port: expected a number");
    expect_config_error("port: 70000\n", "outside");
    expect_config_error("limits:\n  max_bodybytes: 1\n", "unknown key 'limits.max_bodybytes'");
    expect_config_error("batching:\n  enabled: 3\n", "batching.enabled");
    expect_config_error("port: [1\n", "line");
    tdm_gw_config c;
    tdm_gw_config_defaults(&c);
    tdm_err err = {{0}};
    assert_int_equal(tdm_gw_config_set(&c, "no-such-flag", "1", &err), TDM_ERR_INVALID_ARG);
    assert_non_null(strstr(err.msg, "--no-such-flag"));
    assert_int_equal(tdm_gw_config_set(&c, "max-batch", "2.5", &err), TDM_ERR_INVALID_ARG);
    assert_int_equal(tdm_gw_config_validate(&c, &err), TDM_ERR_INVALID_ARG); /* no repo */
    assert_int_equal(tdm_gw_config_set(&c, "model-repo", "/x", &err), TDM_OK);
    assert_int_equal(tdm_gw_config_set(&c, "tls-cert", "c.pem", &err), TDM_OK);
    assert_int_equal(tdm_gw_config_validate(&c, &err), TDM_ERR_INVALID_ARG); /* no key */
}

static void h_dummy(const tdm_gw_request *req, tdm_gw_response *resp)
{
    (void)req;
    (void)resp;
}

static void test_route_matching(void **state)
{
    (void)state;
    static const tdm_gw_route routes[] = {
        {"GET", "/v1/models", h_dummy, TDM_GW_ROLE_OBSERVER},
        {"GET", "/v1/models/{name}/versions/{v}", h_dummy, TDM_GW_ROLE_OBSERVER},
        {"GET", "/v1/models/{name}/versions/{v}/download/{path*}", h_dummy, TDM_GW_ROLE_OBSERVER},
        {"POST", "/v1/infer", h_dummy, TDM_GW_ROLE_INFER},
    };
    tdm_gw_request req;
    bool mm;
    memset(&req, 0, sizeof req);
    const tdm_gw_route *r =
        tdm_gw_route_match(routes, 4, "GET", "/v1/models/bert/versions/3", &req, &mm);
    assert_ptr_equal(r, &routes[1]);
    assert_string_equal(tdm_gw_path_param(&req, "name"), "bert");
    assert_string_equal(tdm_gw_path_param(&req, "v"), "3");
    memset(&req, 0, sizeof req);
    r = tdm_gw_route_match(routes, 4, "GET", "/v1/models/m/versions/1/download/onnx/model.onnx",
                           &req, &mm);
    assert_ptr_equal(r, &routes[2]);
    assert_string_equal(tdm_gw_path_param(&req, "path"), "onnx/model.onnx");
    memset(&req, 0, sizeof req);
    assert_null(tdm_gw_route_match(routes, 4, "GET", "/v1/infer", &req, &mm));
    assert_true(mm);
    assert_null(tdm_gw_route_match(routes, 4, "GET", "/v1/models/x", &req, &mm));
    assert_false(mm);
    assert_null(tdm_gw_route_match(routes, 4, "GET", "/v1/models//versions/1", &req, &mm));
    assert_null(tdm_gw_route_match(routes, 4, "GET", "/v1/models/", &req, &mm));
    /* the real table has the core endpoints */
    int n;
    const tdm_gw_route *all = tdm_gw_routes(&n);
    memset(&req, 0, sizeof req);
    assert_non_null(tdm_gw_route_match(all, n, "POST", "/v1/features", &req, &mm));
    assert_non_null(tdm_gw_route_match(all, n, "GET", "/healthz", &req, &mm));
}

static void test_error_body_and_headers(void **state)
{
    (void)state;
    tdm_gw_response r;
    tdm_gw_resp_init(&r);
    tdm_gw_resp_json(&r, 200);
    tdm_gw_error(&r, 400, "bad_json", "line %d: \"quoted\"", 3);
    assert_int_equal(r.status, 400);
    assert_string_equal(
        r.body.data,
        "{\"error\":{\"code\":\"bad_json\",\"message\":\"line 3: \\\"quoted\\\"\"}}\n");
    assert_true(tdm_gw_resp_header(&r, "Retry-After", "1"));
    assert_true(tdm_gw_resp_header(&r, "retry-after", "2"));
    assert_int_equal(r.n_headers, 1);
    assert_string_equal(r.header_values[0], "2");
    tdm_gw_resp_free(&r);
}

static void test_base64(void **state)
{
    (void)state;
    unsigned char *out;
    size_t n;
    assert_true(tdm_gw_b64_decode("aGVsbG8=", 8, &out, &n));
    assert_int_equal(n, 5);
    assert_memory_equal(out, "hello", 5);
    free(out);
    assert_true(tdm_gw_b64_decode("aGVsbG8", 7, &out, &n)); /* padding optional */
    assert_int_equal(n, 5);
    free(out);
    assert_true(tdm_gw_b64_decode("-_8", 3, &out, &n)); /* URL-safe alphabet */
    assert_int_equal(out[0], 0xfb);
    assert_int_equal(out[1], 0xff);
    free(out);
    assert_false(tdm_gw_b64_decode("a$==", 4, &out, &n));
    assert_false(tdm_gw_b64_decode("a", 1, &out, &n));
}

static void test_metrics_text(void **state)
{
    (void)state;
    tdm_gw_metrics *m = NULL;
    assert_int_equal(tdm_gw_metrics_create(&m, NULL), TDM_OK);
    tdm_gw_metrics_request(m, "/v1/infer", "POST", 200, 0.003);
    tdm_gw_metrics_request(m, "/v1/infer", "POST", 200, 0.2);
    tdm_gw_metrics_request(m, NULL, "GET", 404, 0.0001);
    tdm_gw_metrics_batch(m, "cnn/1/full", 4, 0.01);
    tdm_gw_metrics_queue_time(m, 0.002);
    tdm_gw_metrics_event(m, "rejected_deadline");
    tdm_gw_metrics_event(m, "cache_hit");
    tdm_gw_metrics_event(m, "telemetry_reports");
    tdm_gw_metrics_inflight(m, 2);
    tdm_json_buf b = {0};
    tdm_gw_metrics_render(m, &b);
    const char *t = b.data;
    assert_non_null(strstr(
        t, "tandem_http_requests_total{route=\"/v1/infer\",method=\"POST\",status=\"200\"} 2\n"));
    assert_non_null(strstr(t, "route=\"unmatched\",method=\"GET\",status=\"404\"} 1\n"));
    /* cumulative buckets: 0.003 is in le=0.005, both are in le=0.25 and +Inf */
    assert_non_null(strstr(t, "tandem_http_request_duration_seconds_bucket{route=\"/v1/infer\","
                              "method=\"POST\",status=\"200\",le=\"0.0025\"} 0\n"));
    assert_non_null(strstr(t, "status=\"200\",le=\"0.005\"} 1\n"));
    assert_non_null(strstr(t, "status=\"200\",le=\"0.25\"} 2\n"));
    assert_non_null(strstr(t, "status=\"200\",le=\"+Inf\"} 2\n"));
    assert_non_null(strstr(t, "tandem_batch_size_bucket{model=\"cnn/1/full\",le=\"2\"} 0\n"));
    assert_non_null(strstr(t, "tandem_batch_size_bucket{model=\"cnn/1/full\",le=\"4\"} 1\n"));
    assert_non_null(strstr(t, "tandem_queue_seconds_count 1\n"));
    assert_non_null(strstr(t, "tandem_rejected_deadline_total 1\n"));
    assert_non_null(strstr(t, "tandem_cache_hits_total 1\n"));
    assert_non_null(strstr(t, "tandem_telemetry_reports_total 1\n"));
    assert_non_null(strstr(t, "tandem_in_flight 2\n"));
    /* every sample line is "name{labels} value" or "name value" */
    for (const char *line = t; *line; line = strchr(line, '\n') + 1) {
        if (*line != '#') {
            const char *nl = strchr(line, '\n');
            assert_non_null(nl);
            const char *sp = memrchr(line, ' ', (size_t)(nl - line));
            assert_non_null(sp);
            char *end = NULL;
            strtod(sp + 1, &end);
            assert_ptr_equal(end, nl); /* the value is a number */
        }
    }
    tdm_json_buf_free(&b);
    tdm_gw_metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_yaml_and_flags),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_route_matching),
        cmocka_unit_test(test_error_body_and_headers),
        cmocka_unit_test(test_base64),
        cmocka_unit_test(test_metrics_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

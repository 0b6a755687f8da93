/*
 * POST /v1/telemetry: edge devices report what their policy decided and how
 * long it took; the gateway folds the reports into its Prometheus metrics.
 *
 * Only aggregates are kept, labelled by decision (four fixed values) and never
 * by device or model name: a label per device would let any client grow the
 * metrics without bound. Reports are validated as a whole before anything is
 * counted, so a bad batch changes nothing.
 *
 * Body: {"device": "id", "reports": [{"decision": "exit", "latency_ms": 3.2,
 * "ok": true}, ...]} or one report object on its own.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cloud/extras.h"
#include "cloud/gateway_internal.h"
#include "cloud/metrics.h"

#define MAX_REPORTS 1000

static const char *const k_decisions[] = {"local", "exit", "offload", "defer"};

static int decision_index(const tdm_json *v)
{
    if (!v || v->type != TDM_JSON_STRING)
        return -1;
    for (int i = 0; i < 4; i++)
        if (!strcmp(v->str, k_decisions[i]))
            return i;
    return -1;
}

static bool check_report(const tdm_json *r, size_t i, tdm_gw_response *resp)
{
    if (r->type != TDM_JSON_OBJECT) {
        tdm_gw_error(resp, 400, "invalid_field", "reports[%zu] must be an object", i);
        return false;
    }
    if (decision_index(tdm_json_get(r, "decision")) < 0) {
        tdm_gw_error(resp, 400, "invalid_field",
                     "reports[%zu].decision must be one of local, exit, offload, defer", i);
        return false;
    }
    const tdm_json *l = tdm_json_get(r, "latency_ms");
    if (l &&
        (l->type != TDM_JSON_NUMBER || !isfinite(l->number) || l->number < 0 || l->number > 1e9)) {
        tdm_gw_error(resp, 400, "invalid_field",
                     "reports[%zu].latency_ms must be a number in [0, 1e9]", i);
        return false;
    }
    const tdm_json *ok = tdm_json_get(r, "ok");
    if (ok && ok->type != TDM_JSON_BOOL) {
        tdm_gw_error(resp, 400, "invalid_field", "reports[%zu].ok must be true or false", i);
        return false;
    }
    return true;
}

void tdm_gw_h_telemetry(const tdm_gw_request *req, tdm_gw_response *resp)
{
    tdm_json_doc *doc = tdm_gw_parse_json_body(req, resp);
    if (!doc)
        return;
    const tdm_json *root = tdm_json_root(doc);
    const tdm_json *reports = tdm_json_get(root, "reports");
    const tdm_json *list = root;
    size_t n = 1;
    if (reports) {
        if (reports->type != TDM_JSON_ARRAY) {
            tdm_json_free(doc);
            tdm_gw_error(resp, 400, "invalid_field", "\"reports\" must be an array");
            return;
        }
        if (reports->len > MAX_REPORTS) {
            tdm_json_free(doc);
            tdm_gw_error(resp, 413, "too_many_reports", "%zu reports; at most %d per request",
                         reports->len, MAX_REPORTS);
            return;
        }
        list = reports->items;
        n = reports->len;
    }
    for (size_t i = 0; i < n; i++) {
        if (!check_report(&list[i], i, resp)) {
            tdm_json_free(doc);
            return;
        }
    }
    tdm_gw_metrics *m = req->gw ? tdm_gw_metrics_of(req->gw) : NULL;
    if (m) {
        tdm_gw_metrics_counter_add(m, "tandem_telemetry_requests_total", 1);
        for (size_t i = 0; i < n; i++) {
            const char *d = k_decisions[decision_index(tdm_json_get(&list[i], "decision"))];
            char series[128];
            snprintf(series, sizeof series, "tandem_telemetry_reports_total{decision=\"%s\"}", d);
            tdm_gw_metrics_counter_add(m, series, 1);
            const tdm_json *l = tdm_json_get(&list[i], "latency_ms");
            if (l) {
                snprintf(series, sizeof series,
                         "tandem_telemetry_latency_seconds_total{decision=\"%s\"}", d);
                tdm_gw_metrics_counter_add(m, series, l->number / 1000.0);
            }
            const tdm_json *ok = tdm_json_get(&list[i], "ok");
            if (ok && !ok->boolean) {
                snprintf(series, sizeof series, "tandem_telemetry_failures_total{decision=\"%s\"}",
                         d);
                tdm_gw_metrics_counter_add(m, series, 1);
            }
        }
    }
    tdm_json_free(doc);
    tdm_json_buf_raw(&resp->body, "{\"accepted\":", 12);
    tdm_json_buf_i64(&resp->body, (int64_t)n);
    tdm_json_buf_raw(&resp->body, "}\n", 2);
    tdm_gw_resp_json(resp, 202);
}

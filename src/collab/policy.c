/*
 * The heuristic placement policy (see include/tandem/policy.h for the model).
 *
 * The order of the tests is the policy: a confident exit head wins outright
 * (it costs nothing more); then the faster of local and offload, if it meets
 * the deadline; then whichever meets the deadline at all; then defer when the
 * caller allows it, else the faster path as best effort. Every branch returns
 * a fixed reason string, so logs and metrics can count decisions by reason.
 *
 * It is also the gateway's /v1/policy/decide handler's whole cost, which must
 * stay far below a microsecond: no allocation, no clock, no locks.
 */
#include "collab/policy.h"

#include <math.h>
#include <string.h>

void tdm_policy_config_default(tdm_policy_config *cfg)
{
    cfg->confidence_threshold = 0.9;
    cfg->max_rtt_ms = 1000.0;
    cfg->margin = 1.0;
}

void tdm_policy_input_default(tdm_policy_input *in)
{
    memset(in, 0, sizeof *in);
    in->confidence = -1.0;
    in->rtt_ms = -1.0;
    in->cloud_available = true;
}

const char *tdm_policy_decision_name(tdm_policy_decision d)
{
    switch (d) {
    case TDM_POLICY_DECISION_LOCAL: return "local";
    case TDM_POLICY_DECISION_EXIT: return "exit";
    case TDM_POLICY_DECISION_OFFLOAD: return "offload";
    case TDM_POLICY_DECISION_DEFER: return "defer";
    }
    return "unknown";
}

static tdm_status check_range(const char *name, double v, double lo, double hi, tdm_err *err)
{
    if (!isfinite(v) || v < lo || v > hi)
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "policy: %s = %g is outside [%g, %g]", name, v,
                        lo, hi);
    return TDM_OK;
}

static tdm_status validate(const tdm_policy_config *cfg, const tdm_policy_input *in, tdm_err *err)
{
    const double big = 1e12;
    tdm_status s;
    if ((s = check_range("confidence_threshold", cfg->confidence_threshold, 0.0, 1.0, err)) ||
        (s = check_range("max_rtt_ms", cfg->max_rtt_ms, 0.0, big, err)) ||
        (s = check_range("margin", cfg->margin, 0.0, big, err)))
        return s;
    /* Negative confidence and rtt mean "none" and "unknown"; only their upper bounds matter. */
    if ((s = check_range("confidence", in->confidence < 0 ? 0 : in->confidence, 0.0, 1.0, err)) ||
        (s = check_range("rtt_ms", in->rtt_ms < 0 ? 0 : in->rtt_ms, 0.0, big, err)) ||
        (s = check_range("deadline_ms", in->deadline_ms, 0.0, big, err)) ||
        (s = check_range("local_ms", in->local_ms, 0.0, big, err)) ||
        (s = check_range("cloud_ms", in->cloud_ms, 0.0, big, err)) ||
        (s = check_range("upload_bytes", in->upload_bytes, 0.0, 1e15, err)) ||
        (s = check_range("bandwidth_mbps", in->bandwidth_mbps, 0.0, big, err)) ||
        (s = check_range("cloud_load", in->cloud_load, 0.0, 1.0, err)))
        return s;
    /* isfinite above rejected NaN in confidence/rtt too, since NaN < 0 is false. */
    return TDM_OK;
}

static void set(tdm_policy_result *out, tdm_policy_decision d, const char *reason, double est)
{
    out->decision = d;
    out->reason = reason;
    out->estimated_latency_ms = est;
}

tdm_status tdm_policy_decide(const tdm_policy_config *cfg, const tdm_policy_input *in,
                             tdm_policy_result *out, tdm_err *err)
{
    tdm_status s = validate(cfg, in, err);
    if (s != TDM_OK)
        return s;

    tdm_policy_result r;
    const double local = in->local_ms;
    double offload = -1.0;
    const char *no_offload = NULL;
    if (!in->cloud_available)
        no_offload = "cloud_unavailable";
    else if (in->rtt_ms > cfg->max_rtt_ms)
        no_offload = "rtt_too_high";
    else {
        double upload =
            in->bandwidth_mbps > 0 ? in->upload_bytes * 8.0 / (in->bandwidth_mbps * 1e3) : 0.0;
        offload =
            (in->rtt_ms > 0 ? in->rtt_ms : 0.0) + upload + in->cloud_ms * (1.0 + in->cloud_load);
    }
    r.local_ms = local;
    r.offload_ms = offload;

    if (in->confidence >= 0 && in->confidence >= cfg->confidence_threshold) {
        set(&r, TDM_POLICY_DECISION_EXIT, "confident_exit", 0.0);
        *out = r;
        return TDM_OK;
    }

    const bool has_deadline = in->deadline_ms > 0;
    const bool local_ok = !has_deadline || local <= in->deadline_ms;
    const bool offload_ok = offload >= 0 && (!has_deadline || offload <= in->deadline_ms);

    if (offload_ok && offload * cfg->margin < local)
        set(&r, TDM_POLICY_DECISION_OFFLOAD, "offload_faster", offload);
    else if (local_ok)
        set(&r, TDM_POLICY_DECISION_LOCAL, no_offload ? no_offload : "local_faster", local);
    else if (offload_ok)
        set(&r, TDM_POLICY_DECISION_OFFLOAD, "local_misses_deadline", offload);
    else if (in->deferrable)
        set(&r, TDM_POLICY_DECISION_DEFER, no_offload ? no_offload : "deadline_unmeetable",
            offload >= 0 && offload < local ? offload : local);
    else if (offload >= 0 && offload < local)
        set(&r, TDM_POLICY_DECISION_OFFLOAD, "best_effort", offload);
    else
        set(&r, TDM_POLICY_DECISION_LOCAL, "best_effort", local);
    *out = r;
    return TDM_OK;
}

/* ---- JSON request form ---------------------------------------------------------- */

static tdm_status json_number(const tdm_json *obj, const char *key, double *dst, tdm_err *err)
{
    const tdm_json *v = tdm_json_get(obj, key);
    if (!v || v->type == TDM_JSON_NULL)
        return TDM_OK;
    if (v->type != TDM_JSON_NUMBER)
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "policy: field \"%s\" must be a number, not %s",
                        key, tdm_json_type_name(v->type));
    *dst = v->number;
    return TDM_OK;
}

static tdm_status json_bool(const tdm_json *obj, const char *key, bool *dst, tdm_err *err)
{
    const tdm_json *v = tdm_json_get(obj, key);
    if (!v || v->type == TDM_JSON_NULL)
        return TDM_OK;
    if (v->type != TDM_JSON_BOOL)
        return tdm_errf(err, TDM_ERR_INVALID_ARG,
                        "policy: field \"%s\" must be true or false, not %s", key,
                        tdm_json_type_name(v->type));
    *dst = v->boolean;
    return TDM_OK;
}

tdm_status tdm_policy_input_from_json(const tdm_json *obj, tdm_policy_input *in, tdm_err *err)
{
    if (!obj || obj->type != TDM_JSON_OBJECT)
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "policy: the request must be a JSON object");
    tdm_policy_input r;
    tdm_policy_input_default(&r);
    tdm_status s;
    if ((s = json_number(obj, "confidence", &r.confidence, err)) ||
        (s = json_number(obj, "rtt_ms", &r.rtt_ms, err)) ||
        (s = json_number(obj, "deadline_ms", &r.deadline_ms, err)) ||
        (s = json_number(obj, "local_ms", &r.local_ms, err)) ||
        (s = json_number(obj, "cloud_ms", &r.cloud_ms, err)) ||
        (s = json_number(obj, "upload_bytes", &r.upload_bytes, err)) ||
        (s = json_number(obj, "bandwidth_mbps", &r.bandwidth_mbps, err)) ||
        (s = json_number(obj, "cloud_load", &r.cloud_load, err)) ||
        (s = json_bool(obj, "cloud_available", &r.cloud_available, err)) ||
        (s = json_bool(obj, "deferrable", &r.deferrable, err)))
        return s;
    /* An explicit confidence must be in [0, 1]; "none" is spelt by leaving it out. */
    const tdm_json *c = tdm_json_get(obj, "confidence");
    if (c && c->type == TDM_JSON_NUMBER && c->number < 0)
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "policy: confidence = %g is outside [0, 1]",
                        c->number);
    *in = r;
    return TDM_OK;
}

void tdm_policy_result_json(const tdm_policy_result *r, tdm_json_buf *b)
{
    tdm_json_buf_raw(b, "{\"decision\":\"", 13);
    const char *d = tdm_policy_decision_name(r->decision);
    tdm_json_buf_raw(b, d, strlen(d));
    tdm_json_buf_raw(b, "\",\"reason\":\"", 12);
    tdm_json_buf_raw(b, r->reason, strlen(r->reason));
    tdm_json_buf_raw(b, "\",\"estimated_latency_ms\":", 25);
    tdm_json_buf_f64(b, r->estimated_latency_ms);
    tdm_json_buf_raw(b, ",\"estimates\":{\"local_ms\":", 25);
    tdm_json_buf_f64(b, r->local_ms);
    tdm_json_buf_raw(b, ",\"offload_ms\":", 14);
    if (r->offload_ms >= 0)
        tdm_json_buf_f64(b, r->offload_ms);
    else
        tdm_json_buf_raw(b, "null", 4);
    tdm_json_buf_raw(b, "}}", 2);
}

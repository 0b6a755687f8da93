/*
 * POST /v1/policy/decide: the heuristic placement policy (src/collab/policy.c)
 * over HTTP, for edge devices that do not embed libtandem and for dashboards.
 *
 * The handler must sustain tens of thousands of requests a second on two
 * cores, so it does the minimum: one JSON parse of a small body, a pure
 * function, and a response written straight into the response buffer. The
 * policy's thresholds come from the config's "policy" section once, at start
 * (module "policy"), never per request.
 */
#include <stdlib.h>

#include "cloud/extras.h"
#include "collab/policy.h"

tdm_status tdm_gw_policy_init(tdm_gw *gw, const tdm_json *cfg, void **state, tdm_err *err)
{
    (void)gw;
    tdm_policy_config *pc = malloc(sizeof *pc);
    if (!pc)
        return tdm_errf(err, TDM_ERR_NOMEM, "policy: out of memory");
    tdm_policy_config_default(pc);
    tdm_status s;
    if ((s = tdm_gw_cfg_number(cfg, "policy", "confidence_threshold", 0, 1,
                               &pc->confidence_threshold, err)) ||
        (s = tdm_gw_cfg_number(cfg, "policy", "max_rtt_ms", 0, 1e9, &pc->max_rtt_ms, err)) ||
        (s = tdm_gw_cfg_number(cfg, "policy", "margin", 0, 1e6, &pc->margin, err))) {
        free(pc);
        return s;
    }
    *state = pc;
    return TDM_OK;
}

void tdm_gw_policy_free(void *state)
{
    free(state);
}

void tdm_gw_h_policy_decide(const tdm_gw_request *req, tdm_gw_response *resp)
{
    tdm_policy_config defaults;
    const tdm_policy_config *pc = req->gw ? tdm_gw_module_state(req->gw, "policy") : NULL;
    if (!pc) {
        tdm_policy_config_default(&defaults);
        pc = &defaults;
    }
    tdm_json_doc *doc = tdm_gw_parse_json_body(req, resp);
    if (!doc)
        return;
    tdm_policy_input in;
    tdm_policy_result r;
    tdm_err err;
    tdm_status s = tdm_policy_input_from_json(tdm_json_root(doc), &in, &err);
    if (s == TDM_OK)
        s = tdm_policy_decide(pc, &in, &r, &err);
    tdm_json_free(doc);
    if (s != TDM_OK) {
        tdm_gw_error(resp, 400, "invalid_field", "%s", err.msg);
        return;
    }
    tdm_policy_result_json(&r, &resp->body);
    tdm_json_buf_raw(&resp->body, "\n", 1);
    tdm_gw_resp_json(resp, 200);
}

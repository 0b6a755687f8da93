/*
 * Operational endpoints: liveness, readiness, metrics, the model listing and reload.
 *
 * /healthz answers as long as the process serves HTTP; /readyz only while models are
 * loaded and no drain has begun, so a load balancer stops sending work before SIGTERM's
 * drain completes. Reload builds the new snapshot before swapping, so a failed reload
 * (a broken model.yaml) leaves the old models serving and answers the error.
 */
#include <stdio.h>
#include <string.h>

#include "cloud/gateway_internal.h"
#include "cloud/http.h"
#include "cloud/metrics.h"
#include "cloud/registry.h"

void tdm_gw_h_healthz(const tdm_gw_request *req, tdm_gw_response *resp)
{
    tdm_json_buf_raw(&resp->body, "{\"status\":\"ok\"}\n", 16);
    tdm_gw_resp_json(resp, 200);
}

void tdm_gw_h_readyz(const tdm_gw_request *req, tdm_gw_response *resp)
{
    if (!tdm_gw_is_ready(req->gw)) {
        tdm_gw_error(resp, 503, "not_ready", "the gateway is draining or has no models loaded");
        return;
    }
    tdm_gw_models *m = tdm_gw_registry_acquire(tdm_gw_registry_of(req->gw));
    char buf[96];
    snprintf(buf, sizeof buf, "{\"status\":\"ready\",\"model_versions\":%d}\n",
             tdm_gw_models_count(m));
    tdm_gw_models_release(m);
    tdm_json_buf_raw(&resp->body, buf, strlen(buf));
    tdm_gw_resp_json(resp, 200);
}

void tdm_gw_h_metrics(const tdm_gw_request *req, tdm_gw_response *resp)
{
    tdm_gw_metrics_render(tdm_gw_metrics_of(req->gw), &resp->body);
    resp->status = 200;
    resp->content_type = "text/plain; version=0.0.4";
}

void tdm_gw_h_models_list(const tdm_gw_request *req, tdm_gw_response *resp)
{
    tdm_gw_models *m = tdm_gw_registry_acquire(tdm_gw_registry_of(req->gw));
    tdm_gw_models_list_json(m, &resp->body);
    tdm_gw_models_release(m);
    tdm_gw_resp_json(resp, 200);
}

void tdm_gw_h_models_reload(const tdm_gw_request *req, tdm_gw_response *resp)
{
    tdm_err err = {{0}};
    tdm_status st = tdm_gw_registry_reload(tdm_gw_registry_of(req->gw), &err);
    if (st != TDM_OK) {
        tdm_gw_error(resp, 422, "reload_failed", "%s (the previous models keep serving)", err.msg);
        return;
    }
    tdm_gw_h_models_list(req, resp);
}

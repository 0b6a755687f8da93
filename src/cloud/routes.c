/*
 * The gateway's route table, its stateful modules and the authentication hook.
 *
 * Everything the server can dispatch to is listed here, in one place, so that a reader
 * sees the whole API surface at a glance and a new endpoint is one line (see http.h for
 * the pattern syntax). Order matters only between patterns that could match the same
 * path: the first match wins, so list literal paths before {name} captures.
 */
#include <stddef.h>

#include "cloud/http.h"
#include "cloud/auth.h"
#include "cloud/extras.h"

static const tdm_gw_route k_routes[] = {
    {"GET", "/healthz", tdm_gw_h_healthz, TDM_GW_ROLE_PUBLIC},
    {"GET", "/readyz", tdm_gw_h_readyz, TDM_GW_ROLE_PUBLIC},
    {"GET", "/metrics", tdm_gw_h_metrics, TDM_GW_ROLE_PUBLIC},
    {"GET", "/v1/models", tdm_gw_h_models_list, TDM_GW_ROLE_OBSERVER},
    {"POST", "/v1/models/reload", tdm_gw_h_models_reload, TDM_GW_ROLE_OPERATOR},
    {"POST", "/v1/infer", tdm_gw_h_infer, TDM_GW_ROLE_INFER},
    {"POST", "/v1/features", tdm_gw_h_features, TDM_GW_ROLE_INFER},
    /* extras (auth, downloads, embeddings, caches, policy, telemetry) go below, one line each */
    {"GET", "/v1/models/{name}/versions/{v}", tdm_gw_h_download_list, TDM_GW_ROLE_OBSERVER},
    {"GET", "/v1/models/{name}/versions/{v}/download", tdm_gw_h_download_list,
     TDM_GW_ROLE_OBSERVER},
    {"GET", "/v1/models/{name}/versions/{v}/download/{path*}", tdm_gw_h_download_file,
     TDM_GW_ROLE_OBSERVER},
    {"POST", "/v1/embeddings", tdm_gw_h_embeddings, TDM_GW_ROLE_INFER},
    {"GET", "/v1/embed", tdm_gw_h_embed_get, TDM_GW_ROLE_INFER},
    {"POST", "/v1/cache/get", tdm_gw_h_cache_get, TDM_GW_ROLE_INFER},
    {"POST", "/v1/cache/put", tdm_gw_h_cache_put, TDM_GW_ROLE_INFER},
    {"POST", "/v1/policy/decide", tdm_gw_h_policy_decide, TDM_GW_ROLE_INFER},
    {"POST", "/v1/telemetry", tdm_gw_h_telemetry, TDM_GW_ROLE_INFER},
};

const tdm_gw_route *tdm_gw_routes(int *n_out)
{
    *n_out = (int)(sizeof k_routes / sizeof k_routes[0]);
    return k_routes;
}

/* Modules with state: {"name", init, free}. The server calls init in order at start and
 * free in reverse order at stop. */
static const tdm_gw_module k_modules[] = {
    {"respcache", tdm_gw_respcache_init, tdm_gw_respcache_free},
    {"policy", tdm_gw_policy_init, tdm_gw_policy_free},
    {"download", tdm_gw_download_init, tdm_gw_download_free},
    {"embed", tdm_gw_embed_init, tdm_gw_embed_free},
    /* add module lines above this one */
    {NULL, NULL, NULL},
};

const tdm_gw_module *tdm_gw_modules(int *n_out)
{
    int n = 0;
    while (k_modules[n].name)
        n++;
    *n_out = n;
    return k_modules;
}

const tdm_gw_auth_hooks *tdm_gw_auth_hooks_get(void)
{
    return &tdm_gw_auth_default_hooks;
}

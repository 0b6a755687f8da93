/*
 * The gateway's extra endpoints and their modules (auth is in auth.h):
 * downloads, embeddings, the shared result cache, the placement policy and
 * telemetry. routes.c includes this header and lists each handler and module
 * once; nothing else calls them.
 *
 * Module names for tdm_gw_module_state(): "respcache" (tdm_respcache *, or
 * NULL when cache.max_bytes is 0), "policy" (tdm_policy_config *),
 * "download" (digest cache), "embed" (loaded embedders).
 *
 * Config sections (all optional):
 *     cache:     {max_bytes: 67108864, ttl_s: 300}
 *     policy:    {confidence_threshold: 0.9, max_rtt_ms: 1000, margin: 1.0}
 *     embed:     {max_models: 4, threads: 1, max_inputs: 256, max_text_bytes: 65536,
 *                 max_age_s: 31536000}
 */
#ifndef TANDEM_CLOUD_EXTRAS_H
#define TANDEM_CLOUD_EXTRAS_H

#include "cloud/http.h"

/* handlers */
void tdm_gw_h_policy_decide(const tdm_gw_request *req, tdm_gw_response *resp);
void tdm_gw_h_cache_get(const tdm_gw_request *req, tdm_gw_response *resp);
void tdm_gw_h_cache_put(const tdm_gw_request *req, tdm_gw_response *resp);
void tdm_gw_h_telemetry(const tdm_gw_request *req, tdm_gw_response *resp);
void tdm_gw_h_download_list(const tdm_gw_request *req, tdm_gw_response *resp);
void tdm_gw_h_download_file(const tdm_gw_request *req, tdm_gw_response *resp);
void tdm_gw_h_embeddings(const tdm_gw_request *req, tdm_gw_response *resp);
void tdm_gw_h_embed_get(const tdm_gw_request *req, tdm_gw_response *resp);

/* modules */
tdm_status tdm_gw_respcache_init(tdm_gw *gw, const tdm_json *cfg, void **state, tdm_err *err);
void tdm_gw_respcache_free(void *state);
tdm_status tdm_gw_policy_init(tdm_gw *gw, const tdm_json *cfg, void **state, tdm_err *err);
void tdm_gw_policy_free(void *state);
tdm_status tdm_gw_download_init(tdm_gw *gw, const tdm_json *cfg, void **state, tdm_err *err);
void tdm_gw_download_free(void *state);
tdm_status tdm_gw_embed_init(tdm_gw *gw, const tdm_json *cfg, void **state, tdm_err *err);
void tdm_gw_embed_free(void *state);

/* ---- helpers shared by these handlers (h_cache.c) ----------------------------------- */

/* Reads section.key as a number (a YAML scalar may arrive as a string); *out keeps its
 * value when absent. An out-of-range or non-numeric value is an error naming the key. */
tdm_status tdm_gw_cfg_number(const tdm_json *cfg, const char *section, const char *key, double lo,
                             double hi, double *out, tdm_err *err);

/* Appends v re-serialised as compact JSON. */
void tdm_gw_json_write(tdm_json_buf *b, const tdm_json *v);

/* True for a model or version name: 1..128 of [A-Za-z0-9._-], not starting with '.'. */
bool tdm_gw_valid_name(const char *s);

#endif

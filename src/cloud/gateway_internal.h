/*
 * What the gateway's parts share: the configuration, and accessors on the running gateway
 * that handlers use (registry, metrics, idempotency store).
 *
 * The config is a plain struct filled from YAML (config.c) and then from flags; every
 * field has a default so that `tandem serve --model-repo DIR` alone works. The parsed
 * YAML tree stays alive in `doc` so that modules (auth, caches) read their own sections.
 */
#ifndef TANDEM_CLOUD_GATEWAY_INTERNAL_H
#define TANDEM_CLOUD_GATEWAY_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/json.h"
#include "cloud/http.h"
#include "tandem/status.h"

typedef struct tdm_gw_config {
    char listen[64];    /* address to bind: "127.0.0.1", "0.0.0.0", "::1" */
    int port;           /* 0 picks a free port (tdm_gateway_port tells which) */
    int conn_threads;   /* unused by thread-per-connection; kept for a pool model */
    int engine_threads; /* threads of each engine session */
    int workers;        /* batch workers (one session each) per model version and entry */
    char model_repo[1024];

    /* limits */
    size_t max_body_bytes;
    int max_json_depth;
    size_t max_tensor_bytes;
    int max_concurrent; /* requests in flight; more get 429 */
    int retry_after_s;
    int max_connections;

    /* batching */
    bool batching;
    int max_batch;
    double max_queue_delay_ms;
    bool adaptive; /* AIMD on the batch size to keep p99 under slo_p99_ms */
    double slo_p99_ms;
    double default_deadline_ms; /* when a request names none */
    int max_queue;              /* queued requests per batcher; more get 429 */

    /* idempotency */
    int idempotency_capacity;
    double idempotency_ttl_s;
    char idempotency_db[1024];  /* SQLite file: durable, shared by gateways that open it */
    double idempotency_lease_s; /* a claim without an answer lives this long (durable store) */

    /* auth and TLS (wired by the extras helper's auth module; MHD TLS options in server.c) */
    char auth_mode[32]; /* "none" or whatever auth.c accepts */
    char tls_cert[1024];
    char tls_key[1024];
    char tls_client_ca[1024]; /* mutual TLS when set */

    double drain_timeout_s;
    bool log_requests;     /* one JSON line per request on stderr */
    char config_dir[1024]; /* directory of the config file, for relative paths */
    tdm_json_doc *doc;     /* the parsed config tree (NULL without a file) */
} tdm_gw_config;

void tdm_gw_config_defaults(tdm_gw_config *c);
/* Reads a YAML (or JSON) config file into c (on top of the defaults). */
tdm_status tdm_gw_config_load(tdm_gw_config *c, const char *path, tdm_err *err);
/* Applies one "--name value" flag; name without the dashes ("port", "max-batch"). */
tdm_status tdm_gw_config_set(tdm_gw_config *c, const char *name, const char *value, tdm_err *err);
/* Checks ranges and cross-field rules after all flags. */
tdm_status tdm_gw_config_validate(const tdm_gw_config *c, tdm_err *err);
void tdm_gw_config_release(tdm_gw_config *c);
/* Writes the "name  default  meaning" list of options (for --help). */
void tdm_gw_config_print_help(void *file);

const tdm_gw_config *tdm_gw_config_get(const tdm_gw *gw);

typedef struct tdm_gw_registry tdm_gw_registry;
typedef struct tdm_gw_metrics tdm_gw_metrics;
typedef struct tdm_gw_idem tdm_gw_idem;

tdm_gw_registry *tdm_gw_registry_of(tdm_gw *gw);
tdm_gw_metrics *tdm_gw_metrics_of(tdm_gw *gw);
tdm_gw_idem *tdm_gw_idem_of(tdm_gw *gw);
/* True once models are loaded and until a drain begins. */
bool tdm_gw_is_ready(tdm_gw *gw);

#endif

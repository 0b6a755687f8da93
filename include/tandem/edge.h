/*
 * libtandem's edge API: the agent an application embeds (or talks to through
 * `tandem edge`, the daemon that exposes this API over local HTTP).
 *
 * One request goes through: result cache (exact, then similarity) -> the
 * model's head on the device up to the cut -> exits with calibrated
 * confidence -> the placement policy (answer now, finish on the device,
 * offload the cut tensors to the cloud, or defer) -> the feature codec ->
 * HTTPS to the best healthy gateway endpoint, with failover. When no
 * endpoint can be reached and the request may wait, it goes to a durable
 * replay queue (SQLite, fsync'd before the caller hears "deferred") and is
 * sent, exactly once thanks to its idempotency key, when the cloud is back;
 * the caller learns its result through the callback or by polling its id.
 *
 * The agent is thread-safe: any number of threads may submit at once; each
 * submission runs the model on a session of its own. A background thread
 * checks endpoint health and drains the replay queue.
 */
#ifndef TANDEM_EDGE_H
#define TANDEM_EDGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tandem/status.h"
#include "tandem/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tdm_edge tdm_edge;

/* Where a request was answered. */
typedef enum tdm_edge_route {
    TDM_EDGE_ROUTE_CACHE = 0, /* result cache (exact or similarity) */
    TDM_EDGE_ROUTE_EXIT,      /* an early exit on the device */
    TDM_EDGE_ROUTE_LOCAL,     /* the whole model on the device */
    TDM_EDGE_ROUTE_OFFLOAD,   /* the cloud ran the rest */
    TDM_EDGE_ROUTE_DEFERRED,  /* queued durably; the result comes later */
    TDM_EDGE_ROUTE_FAILED,    /* no answer and not deferrable */
    TDM_EDGE_ROUTE_COUNT
} tdm_edge_route;

/* How a model's requests are placed (the demo compares the three). */
typedef enum tdm_edge_mode {
    TDM_EDGE_MODE_COLLABORATIVE = 0, /* exits, then the policy decides */
    TDM_EDGE_MODE_EDGE_ONLY,         /* always finish on the device */
    TDM_EDGE_MODE_CLOUD_ONLY,        /* always send the raw input */
} tdm_edge_mode;

typedef struct tdm_edge_request {
    const char *model;       /* model name from the config; NULL = the first */
    const tdm_tensor *input; /* one input, float32, shape the model declares (batch 1) */
    double deadline_ms;      /* time budget from now; 0 = the model's default */
    bool deferrable;         /* may wait in the replay queue when the cloud is unreachable */
    const char *request_id;  /* optional; generated when NULL (at most 63 bytes) */
    int mode;                /* -1 = the model's configured mode, else a tdm_edge_mode */
} tdm_edge_request;

typedef struct tdm_edge_result {
    char request_id[64];
    tdm_edge_route route;
    int label;          /* argmax class; -1 when there is no answer yet */
    float confidence;   /* calibrated max-probability of the answer */
    int exit_index;     /* which exit answered (route EXIT), else -1 */
    int endpoint;       /* which gateway answered (route OFFLOAD), else -1 */
    bool cache_similar; /* route CACHE: a similarity (not exact) hit */
    double total_ms;    /* wall time inside the agent */
    double local_ms;    /* model compute on the device */
    double encode_ms;   /* feature codec */
    double network_ms;  /* request to the gateway and back */
    double cloud_ms;    /* the gateway's own compute, as it reports */
    uint64_t bytes_sent;
    double cost;     /* estimated cloud cost of this request (config's currency) */
    char error[256]; /* route FAILED: why */
} tdm_edge_result;

/* Creates an agent from a YAML config file (see docs/edge.md for the fields). */
tdm_status tdm_edge_create(const char *config_path, tdm_edge **out, tdm_err *err);
/* The same from YAML text; base_dir resolves relative paths in it. */
tdm_status tdm_edge_create_from_text(const char *yaml, size_t len, const char *base_dir,
                                     tdm_edge **out, tdm_err *err);
/* Stops the background thread, closes the queue and frees everything. */
void tdm_edge_free(tdm_edge *e);

/* Synchronous: runs the request and fills *res. Errors in the request itself
 * (unknown model, wrong shape) are a status; network trouble is a route. */
tdm_status tdm_edge_submit(tdm_edge *e, const tdm_edge_request *req, tdm_edge_result *res,
                           tdm_err *err);

/*
 * Callback style: the request runs on the agent's worker; cb is called once
 * with the result, from that worker, and again later for a request that was
 * deferred, when its answer arrives (route OFFLOAD then).
 */
typedef void (*tdm_edge_callback)(void *user, const tdm_edge_result *res);
tdm_status tdm_edge_submit_async(tdm_edge *e, const tdm_edge_request *req, tdm_edge_callback cb,
                                 void *user, tdm_err *err);

/*
 * The state of a request by id: a deferred request reports route DEFERRED
 * until its answer arrives, then OFFLOAD with the answer. TDM_ERR_NOT_FOUND
 * for an id the agent does not know (or that aged out).
 */
tdm_status tdm_edge_poll(tdm_edge *e, const char *request_id, tdm_edge_result *res, tdm_err *err);

/* Tries to deliver queued requests now; returns how many were delivered. */
int tdm_edge_drain(tdm_edge *e);

/* Prometheus text of the agent's metrics into a malloc'd string (free it). */
char *tdm_edge_metrics_text(tdm_edge *e);

/* Counters for the demo and tests. */
typedef struct tdm_edge_stats {
    uint64_t requests;
    uint64_t routes[TDM_EDGE_ROUTE_COUNT];
    uint64_t bytes_sent;
    uint64_t queued, delivered_later, dropped;
    double cost;
} tdm_edge_stats;
void tdm_edge_get_stats(tdm_edge *e, tdm_edge_stats *st);

const char *tdm_edge_route_name(tdm_edge_route r);

#ifdef __cplusplus
}
#endif
#endif

/*
 * The edge agent's parts and what they share: the parsed configuration
 * (agent_config.c), the per-model runtime (sessions, exits, estimates), and
 * the metrics (agent_metrics.c). agent.c holds the request pipeline and the
 * background thread.
 */
#ifndef TANDEM_EDGE_AGENT_INTERNAL_H
#define TANDEM_EDGE_AGENT_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/json.h"
#include "tandem/codec.h"
#include "tandem/edge.h"
#include "tandem/exits.h"
#include "tandem/graph.h"
#include "tandem/policy.h"

#define TDM_EDGE_MAX_MODELS 8
#define TDM_EDGE_MAX_CUT 8
#define TDM_EDGE_MAX_EXITS 8

/* One exit as configured: a logits output of the graph, or a fitted head. */
typedef struct tdm_edge_exit {
    char *tensor;        /* the logits output, or the head's cut tensor */
    tdm_exit_head *head; /* NULL for a graph output; points into the model's exits */
    double temperature;  /* > 0 */
    double threshold;    /* exit when calibrated max-probability >= this */
} tdm_edge_exit;

typedef struct tdm_edge_model_cfg {
    char *name;
    char *version;
    char *file;                  /* local ONNX file (absolute after loading) */
    char *input;                 /* input name; NULL = the first graph input */
    char *cut[TDM_EDGE_MAX_CUT]; /* tensors sent to the cloud; none = the raw input */
    int n_cut;
    char *cut_id;       /* the cut as the gateway names it; NULL = "input" or names */
    char *final_output; /* logits for a local finish; NULL = the first output */
    char *exits_file;   /* fitted heads (tdm-exits) */
    tdm_edge_exit exits[TDM_EDGE_MAX_EXITS];
    int n_exits;
    bool finish_on_device;                       /* the device may run the tail itself */
    char *remote_model, *remote_version;         /* at the gateway; default name/version */
    char *cloud_only_model, *cloud_only_version; /* gateway model for raw inputs; default remote */
    double deadline_ms;                          /* default budget */
    tdm_edge_mode mode;
} tdm_edge_model_cfg;

typedef struct tdm_edge_config {
    char *device_id;
    tdm_edge_model_cfg models[TDM_EDGE_MAX_MODELS];
    int n_models;
    tdm_codec_params codec;
    /* transport */
    char *endpoints[8];
    int n_endpoints;
    char *ca_file, *client_cert, *client_key, *token_file;
    bool tls13_only;
    double health_interval_ms;
    double telemetry_interval_ms; /* 0 = no telemetry push */
    double uplink_mbps;           /* known uplink for the policy; 0 = estimate */
    double hedge_after_ms;        /* second copy to the next endpoint after this; 0 = never */
    bool hedge_auto;              /* ... after the p95 of the best one's answer times */
    /* cache */
    double cache_ttl_s; /* 0 disables the cache */
    size_t cache_max_bytes;
    double cache_similarity; /* 0 disables the similarity cache */
    /* offline */
    char *queue_path; /* NULL = no replay queue (nothing deferrable) */
    double retention_s;
    uint64_t queue_max_bytes;
    /* policy and cost */
    tdm_policy_config policy;
    double cost_per_1k_requests; /* per offloaded request, per thousand */
    double cost_per_gb;          /* per GB sent */
    double cost_per_cpu_hour;    /* per hour of gateway compute */
    int workers;                 /* threads for submit_async */
    int threads;                 /* engine threads per session */
} tdm_edge_config;

/* Parses and validates a config document; relative paths resolve against base_dir. */
tdm_status tdm_edge_config_parse(const tdm_json *root, const char *base_dir, tdm_edge_config *c,
                                 tdm_err *err);
void tdm_edge_config_release(tdm_edge_config *c);

/* ---- metrics ---- */

#define TDM_EDGE_LAT_BUCKETS 14

typedef struct tdm_edge_metrics {
    pthread_mutex_t mu;
    uint64_t requests;
    uint64_t routes[TDM_EDGE_ROUTE_COUNT];
    uint64_t lat_buckets[TDM_EDGE_ROUTE_COUNT][TDM_EDGE_LAT_BUCKETS + 1]; /* last = +Inf */
    double lat_sum[TDM_EDGE_ROUTE_COUNT];
    uint64_t bytes_sent;
    uint64_t cache_exact_hits, cache_similar_hits, cache_misses;
    uint64_t queued, delivered_later, dropped;
    double cost;
} tdm_edge_metrics;

void tdm_edge_metrics_init(tdm_edge_metrics *m);
void tdm_edge_metrics_destroy(tdm_edge_metrics *m);
void tdm_edge_metrics_record(tdm_edge_metrics *m, const tdm_edge_result *r);
/* Prometheus text; extra (may be NULL) is appended verbatim. */
char *tdm_edge_metrics_render(tdm_edge_metrics *m, const char *device_id, const char *extra);

#endif

/*
 * The edge agent's way to the cloud: HTTP(S) requests over libcurl to one of
 * several gateway endpoints (regions), with health and failover.
 *
 * Each endpoint has a state (healthy or down), an EWMA of its round-trip time
 * and a count of consecutive failures. A request goes to the healthy
 * endpoint with the lowest EWMA (ties: the order of the config); if it fails
 * at the transport level or answers 5xx, the next healthy endpoint is tried
 * within the same deadline, so one dead region costs one failed attempt,
 * not the request. An endpoint is marked down after max_failures
 * consecutive failures and comes back when a health check (GET /healthz,
 * run by tdm_transport_check_health, which the agent calls from its
 * background thread) succeeds. When every endpoint is down, requests are
 * still tried against the one that failed least recently, because "all
 * down" is often a stale view.
 *
 * Timeouts come from the caller's deadline, not from a fixed setting: a
 * request never waits longer than its deadline allows. Connections are
 * reused: each endpoint keeps a small pool of curl easy handles (and thus of
 * kept-alive connections). Thread-safe.
 *
 * Hedging (optional): when the best endpoint has not answered after a delay
 * (fixed, or the 95th percentile of its recent answer times), a second copy
 * goes to the next healthy endpoint and the first answer wins. A first copy
 * that loses counts as an answer time of at least its wait, so an endpoint
 * that stalls loses its rank as if it had been waited for. Safe because every
 * offload carries an idempotency key: gateways sharing an idempotency store
 * run it once; separate regions may both run it, which the cost of a few
 * percent of hedged requests pays for.
 */
#ifndef TANDEM_EDGE_TRANSPORT_H
#define TANDEM_EDGE_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tandem/status.h"

#define TDM_TRANSPORT_MAX_ENDPOINTS 8

typedef struct tdm_transport_options {
    const char
        *endpoints[TDM_TRANSPORT_MAX_ENDPOINTS]; /* base URLs, e.g. https://eu.example:8443 */
    int n_endpoints;
    const char *ca_file;     /* PEM bundle to verify the gateway; NULL = system default */
    const char *client_cert; /* PEM client certificate for mutual TLS; NULL = none */
    const char *client_key;
    const char *token_file; /* JWT (or API key) sent as "Authorization: Bearer"; re-read on 401 */
    bool tls13_only;        /* refuse anything older than TLS 1.3 */
    int max_failures;       /* consecutive failures before an endpoint is down; default 2 */
    double connect_timeout_ms; /* cap on connect time; default 2000 */
    double ewma_alpha;         /* weight of a new RTT sample; default 0.2 */
    double hedge_after_ms;     /* > 0: a second copy to the next endpoint after this long */
    bool hedge_auto;           /* hedge after the p95 of the first one's answer times */
} tdm_transport_options;

typedef struct tdm_transport tdm_transport;

typedef struct tdm_http_response {
    long status; /* HTTP status; 0 when no answer came */
    char *body;  /* malloc'd, NUL-terminated; free with tdm_http_response_free */
    size_t len;
    int endpoint;  /* index of the endpoint that answered */
    double rtt_ms; /* time of the successful attempt */
    int attempts;  /* endpoints tried */
} tdm_http_response;

typedef struct tdm_endpoint_stats {
    const char *url;
    bool healthy;
    double ewma_rtt_ms; /* < 0 before the first sample */
    uint64_t requests, failures, failovers;
    uint64_t hedges, hedge_wins; /* second copies sent here, and those that answered first */
} tdm_endpoint_stats;

tdm_status tdm_transport_create(const tdm_transport_options *opt, tdm_transport **out,
                                tdm_err *err);
void tdm_transport_free(tdm_transport *t);

/*
 * POSTs body to path (with query) on the best endpoint, failing over as
 * described above, within timeout_ms. headers is a NULL-terminated list of
 * "Name: value" lines (may be NULL). Returns TDM_OK when some endpoint gave
 * an HTTP answer below 500 (4xx included: the caller decides what a 4xx
 * means); TDM_ERR_IO when none answered in time, with the last reason.
 */
tdm_status tdm_transport_post(tdm_transport *t, const char *path, const char *const *headers,
                              const void *body, size_t len, double timeout_ms,
                              tdm_http_response *resp, tdm_err *err);

/* GET with the same failover rules (used for model downloads and tests). */
tdm_status tdm_transport_get(tdm_transport *t, const char *path, double timeout_ms,
                             tdm_http_response *resp, tdm_err *err);

/* Probes every endpoint's /healthz once; returns how many are healthy. */
int tdm_transport_check_health(tdm_transport *t, double timeout_ms);

/* True when at least one endpoint is believed healthy. */
bool tdm_transport_any_healthy(tdm_transport *t);

/* Best healthy endpoint's EWMA RTT in ms; < 0 when unknown or none is healthy. */
double tdm_transport_rtt_ms(tdm_transport *t);

int tdm_transport_endpoint_count(const tdm_transport *t);
void tdm_transport_endpoint_stats(tdm_transport *t, int i, tdm_endpoint_stats *st);

void tdm_http_response_free(tdm_http_response *r);

#endif

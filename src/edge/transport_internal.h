/*
 * What transport.c and hedge.c share: the endpoint table and one HTTP
 * exchange. Not part of the transport's API.
 */
#ifndef TANDEM_EDGE_TRANSPORT_INTERNAL_H
#define TANDEM_EDGE_TRANSPORT_INTERNAL_H

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>

#include "edge/transport.h"

#define POOL_MAX 8
#define MAX_BODY ((size_t)64 << 20) /* an answer larger than this is refused */
#define TOKEN_MAX 8192
#define WHY_MAX (CURL_ERROR_SIZE + 64)
#define LAT_WINDOW 64      /* recent answer times kept per endpoint, for the hedge percentile */
#define LAT_MIN_SAMPLES 16 /* fewer: no automatic hedge yet */

typedef struct endpoint {
    char *url; /* without a trailing slash */
    bool healthy;
    int fails;          /* consecutive */
    uint64_t last_fail; /* ns */
    double ewma;        /* ms; < 0 until the first sample */
    double rttvar;      /* ms; mean deviation of the samples from ewma (RFC 6298) */
    uint64_t requests, failures, failovers, hedges, hedge_wins;
    float lat[LAT_WINDOW]; /* ring of recent answer times, ms */
    int n_lat, lat_next;
    CURL *pool[POOL_MAX];
    int n_pool;
} endpoint;

struct tdm_transport {
    pthread_mutex_t mu;
    pthread_cond_t idle_cv; /* legs_running reached 0 */
    int legs_running;       /* hedge legs still out; free waits for them */
    endpoint ep[TDM_TRANSPORT_MAX_ENDPOINTS];
    int n;
    tdm_transport_options opt;
    char *ca_file, *client_cert, *client_key, *token_file;
    char auth_header[TOKEN_MAX + 32]; /* "Authorization: Bearer ..." or "" */
};

/*
 * One HTTP exchange with endpoint i within timeout_ms. cancel, when not NULL,
 * aborts the exchange (CURLE_ABORTED_BY_CALLBACK) soon after it becomes true.
 * Returns the curl result; fills resp on an answer, why on a failure.
 */
CURLcode tdm_transport_attempt(tdm_transport *t, int i, const char *path,
                               const char *const *headers, const void *body, size_t len, bool post,
                               double timeout_ms, atomic_bool *cancel, tdm_http_response *resp,
                               char *why, size_t why_len);

/* Counts an attempt's outcome in endpoint i's health and RTT estimates. */
void tdm_transport_record(tdm_transport *t, int i, bool ok, double ms, bool failover);

/* An attempt abandoned after ms: its answer time is at least that. Feeds the RTT
 * estimates (so that a stalling endpoint loses its rank) without counting a failure. */
void tdm_transport_record_late(tdm_transport *t, int i, double ms);

/*
 * Sends the request to order[0] and, if it has not answered after hedge_ms, a
 * second copy to order[1]; the first answer (HTTP < 500) wins and the other
 * is abandoned. Returns true with *resp filled when one answered; else false
 * with the last reason in why. *attempts counts the copies sent.
 */
bool tdm_transport_hedged(tdm_transport *t, const int order[2], double hedge_ms, const char *path,
                          const char *const *headers, const void *body, size_t len, bool post,
                          double timeout_ms, tdm_http_response *resp, int *attempts, char *why,
                          size_t why_len);

#endif

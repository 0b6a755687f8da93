/*
 * The edge agent's metrics: counters by route, a latency histogram per route
 * (fixed millisecond buckets, Prometheus "le" semantics), bytes sent, cache
 * hits, the replay queue's in/out counts and the estimated cloud cost. One
 * mutex; recording is a handful of additions, far below a request's cost.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "edge/agent_internal.h"

static const double k_le_ms[TDM_EDGE_LAT_BUCKETS] = {0.05, 0.1, 0.25, 0.5, 1,   2.5,  5,
                                                     10,   25,  50,   100, 250, 1000, 5000};

void tdm_edge_metrics_init(tdm_edge_metrics *m)
{
    memset(m, 0, sizeof *m);
    pthread_mutex_init(&m->mu, NULL);
}

void tdm_edge_metrics_destroy(tdm_edge_metrics *m)
{
    pthread_mutex_destroy(&m->mu);
}

void tdm_edge_metrics_record(tdm_edge_metrics *m, const tdm_edge_result *r)
{
    pthread_mutex_lock(&m->mu);
    m->requests++;
    int route = r->route < TDM_EDGE_ROUTE_COUNT ? (int)r->route : TDM_EDGE_ROUTE_FAILED;
    m->routes[route]++;
    int b = 0;
    while (b < TDM_EDGE_LAT_BUCKETS && r->total_ms > k_le_ms[b])
        b++;
    m->lat_buckets[route][b]++;
    m->lat_sum[route] += r->total_ms;
    m->bytes_sent += r->bytes_sent;
    m->cost += r->cost;
    if (r->route == TDM_EDGE_ROUTE_CACHE) {
        if (r->cache_similar)
            m->cache_similar_hits++;
        else
            m->cache_exact_hits++;
    }
    if (r->route == TDM_EDGE_ROUTE_DEFERRED)
        m->queued++;
    pthread_mutex_unlock(&m->mu);
}

char *tdm_edge_metrics_render(tdm_edge_metrics *m, const char *device_id, const char *extra)
{
    tdm_json_buf b = {0};
    char line[512];
    pthread_mutex_lock(&m->mu);
#define OUT(...)                                                                             \
    do {                                                                                     \
        int n_ = snprintf(line, sizeof line, __VA_ARGS__);                                   \
        tdm_json_buf_raw(&b, line, (size_t)n_ < sizeof line ? (size_t)n_ : sizeof line - 1); \
    } while (0)
    OUT("# HELP tandem_edge_requests_total Requests by where they were answered.\n"
        "# TYPE tandem_edge_requests_total counter\n");
    for (int r = 0; r < TDM_EDGE_ROUTE_COUNT; r++)
        OUT("tandem_edge_requests_total{device=\"%s\",route=\"%s\"} %llu\n", device_id,
            tdm_edge_route_name((tdm_edge_route)r), (unsigned long long)m->routes[r]);
    OUT("# HELP tandem_edge_latency_ms End-to-end latency inside the agent by route.\n"
        "# TYPE tandem_edge_latency_ms histogram\n");
    for (int r = 0; r < TDM_EDGE_ROUTE_COUNT; r++) {
        const char *rn = tdm_edge_route_name((tdm_edge_route)r);
        uint64_t cum = 0;
        for (int k = 0; k <= TDM_EDGE_LAT_BUCKETS; k++) {
            cum += m->lat_buckets[r][k];
            if (k < TDM_EDGE_LAT_BUCKETS)
                OUT("tandem_edge_latency_ms_bucket{device=\"%s\",route=\"%s\",le=\"%g\"} %llu\n",
                    device_id, rn, k_le_ms[k], (unsigned long long)cum);
            else
                OUT("tandem_edge_latency_ms_bucket{device=\"%s\",route=\"%s\",le=\"+Inf\"} %llu\n",
                    device_id, rn, (unsigned long long)cum);
        }
        OUT("tandem_edge_latency_ms_sum{device=\"%s\",route=\"%s\"} %.3f\n", device_id, rn,
            m->lat_sum[r]);
        OUT("tandem_edge_latency_ms_count{device=\"%s\",route=\"%s\"} %llu\n", device_id, rn,
            (unsigned long long)cum);
    }
    OUT("# TYPE tandem_edge_bytes_sent_total counter\n"
        "tandem_edge_bytes_sent_total{device=\"%s\"} %llu\n",
        device_id, (unsigned long long)m->bytes_sent);
    OUT("# TYPE tandem_edge_cache_total counter\n"
        "tandem_edge_cache_total{device=\"%s\",result=\"exact_hit\"} %llu\n"
        "tandem_edge_cache_total{device=\"%s\",result=\"similar_hit\"} %llu\n",
        device_id, (unsigned long long)m->cache_exact_hits, device_id,
        (unsigned long long)m->cache_similar_hits);
    OUT("# TYPE tandem_edge_replay_total counter\n"
        "tandem_edge_replay_total{device=\"%s\",event=\"queued\"} %llu\n"
        "tandem_edge_replay_total{device=\"%s\",event=\"delivered\"} %llu\n"
        "tandem_edge_replay_total{device=\"%s\",event=\"dropped\"} %llu\n",
        device_id, (unsigned long long)m->queued, device_id, (unsigned long long)m->delivered_later,
        device_id, (unsigned long long)m->dropped);
    OUT("# HELP tandem_edge_cloud_cost_total Estimated cloud cost from the config's cost model.\n"
        "# TYPE tandem_edge_cloud_cost_total counter\n"
        "tandem_edge_cloud_cost_total{device=\"%s\"} %.6f\n",
        device_id, m->cost);
#undef OUT
    pthread_mutex_unlock(&m->mu);
    if (extra)
        tdm_json_buf_raw(&b, extra, strlen(extra));
    if (b.failed) {
        tdm_json_buf_free(&b);
        return NULL;
    }
    return b.data ? b.data : strdup("");
}

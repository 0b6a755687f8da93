/*
 * Prometheus counters and histograms for the gateway (see metrics.h).
 *
 * Series are kept in small fixed arrays keyed by their label strings: a gateway serves a
 * handful of routes and models, and a bounded table means a client that invents paths
 * cannot grow memory (unknown paths share the "unmatched" route label). Histograms use
 * cumulative buckets at render time, as the format requires; stored counts are per bucket.
 */
#include "cloud/metrics.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_REQ_SERIES 128
#define MAX_MODEL_SERIES 64
#define MAX_FREE_SERIES 64

static const double k_lat_buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                       0.1,    0.25,  0.5,    1,     2.5,  5,     10};
#define N_LAT (sizeof k_lat_buckets / sizeof k_lat_buckets[0])
static const double k_batch_buckets[] = {1, 2, 4, 8, 16, 32, 64, 128, 256};
#define N_BATCH (sizeof k_batch_buckets / sizeof k_batch_buckets[0])

typedef struct histo {
    uint64_t counts[16]; /* per bucket, plus one overflow slot at index n */
    uint64_t count;
    double sum;
} histo;

static void histo_add(histo *h, const double *bounds, size_t n, double v)
{
    size_t i = 0;
    while (i < n && v > bounds[i])
        i++;
    h->counts[i]++;
    h->count++;
    h->sum += v;
}

typedef struct req_series {
    char route[96];
    char method[8];
    int status;
    uint64_t count;
    histo lat;
} req_series;

typedef struct model_series {
    char model[96];
    histo batch_size;
    histo compute;
    int limit;
} model_series;

typedef struct free_series {
    char name[160];
    double value;
} free_series;

struct tdm_gw_metrics {
    pthread_mutex_t mu;
    req_series req[MAX_REQ_SERIES];
    int n_req;
    model_series models[MAX_MODEL_SERIES];
    int n_models;
    free_series free_[MAX_FREE_SERIES];
    int n_free;
    histo queue;
    int64_t inflight;
    uint64_t rejected_deadline, dropped_disconnected, rejected_overload, idempotent_replay,
        cache_hit, cache_miss;
};

tdm_status tdm_gw_metrics_create(tdm_gw_metrics **out, tdm_err *err)
{
    tdm_gw_metrics *m = calloc(1, sizeof *m);
    if (!m)
        return tdm_errf(err, TDM_ERR_NOMEM, "out of memory for metrics");
    pthread_mutex_init(&m->mu, NULL);
    *out = m;
    return TDM_OK;
}

void tdm_gw_metrics_free(tdm_gw_metrics *m)
{
    if (!m)
        return;
    pthread_mutex_destroy(&m->mu);
    free(m);
}

void tdm_gw_metrics_request(tdm_gw_metrics *m, const char *route, const char *method, int status,
                            double seconds)
{
    if (!route)
        route = "unmatched";
    pthread_mutex_lock(&m->mu);
    req_series *s = NULL;
    for (int i = 0; i < m->n_req; i++)
        if (m->req[i].status == status && strcmp(m->req[i].route, route) == 0 &&
            strcmp(m->req[i].method, method) == 0) {
            s = &m->req[i];
            break;
        }
    if (!s && m->n_req < MAX_REQ_SERIES) {
        s = &m->req[m->n_req++];
        snprintf(s->route, sizeof s->route, "%s", route);
        snprintf(s->method, sizeof s->method, "%s", method);
        s->status = status;
    }
    if (s) {
        s->count++;
        histo_add(&s->lat, k_lat_buckets, N_LAT, seconds);
    }
    pthread_mutex_unlock(&m->mu);
}

static model_series *model_get(tdm_gw_metrics *m, const char *model)
{
    for (int i = 0; i < m->n_models; i++)
        if (strcmp(m->models[i].model, model) == 0)
            return &m->models[i];
    if (m->n_models == MAX_MODEL_SERIES)
        return NULL;
    model_series *s = &m->models[m->n_models++];
    snprintf(s->model, sizeof s->model, "%s", model);
    return s;
}

void tdm_gw_metrics_batch(tdm_gw_metrics *m, const char *model, int size, double compute_s)
{
    pthread_mutex_lock(&m->mu);
    model_series *s = model_get(m, model);
    if (s) {
        histo_add(&s->batch_size, k_batch_buckets, N_BATCH, size);
        histo_add(&s->compute, k_lat_buckets, N_LAT, compute_s);
    }
    pthread_mutex_unlock(&m->mu);
}

void tdm_gw_metrics_batch_limit(tdm_gw_metrics *m, const char *model, int limit)
{
    pthread_mutex_lock(&m->mu);
    model_series *s = model_get(m, model);
    if (s)
        s->limit = limit;
    pthread_mutex_unlock(&m->mu);
}

void tdm_gw_metrics_queue_time(tdm_gw_metrics *m, double seconds)
{
    pthread_mutex_lock(&m->mu);
    histo_add(&m->queue, k_lat_buckets, N_LAT, seconds);
    pthread_mutex_unlock(&m->mu);
}

void tdm_gw_metrics_counter_add(tdm_gw_metrics *m, const char *series, double v)
{
    pthread_mutex_lock(&m->mu);
    free_series *s = NULL;
    for (int i = 0; i < m->n_free; i++)
        if (strcmp(m->free_[i].name, series) == 0) {
            s = &m->free_[i];
            break;
        }
    if (!s && m->n_free < MAX_FREE_SERIES && strlen(series) < sizeof s->name) {
        s = &m->free_[m->n_free++];
        snprintf(s->name, sizeof s->name, "%s", series);
    }
    if (s)
        s->value += v;
    pthread_mutex_unlock(&m->mu);
}

void tdm_gw_metrics_event(tdm_gw_metrics *m, const char *name)
{
    uint64_t *c = NULL;
    if (strcmp(name, "rejected_deadline") == 0)
        c = &m->rejected_deadline;
    else if (strcmp(name, "dropped_disconnected") == 0)
        c = &m->dropped_disconnected;
    else if (strcmp(name, "rejected_overload") == 0)
        c = &m->rejected_overload;
    else if (strcmp(name, "idempotent_replay") == 0)
        c = &m->idempotent_replay;
    else if (strcmp(name, "cache_hit") == 0)
        c = &m->cache_hit;
    else if (strcmp(name, "cache_miss") == 0)
        c = &m->cache_miss;
    if (!c) {
        char series[160];
        snprintf(series, sizeof series, "tandem_%s_total", name);
        tdm_gw_metrics_counter_add(m, series, 1);
        return;
    }
    pthread_mutex_lock(&m->mu);
    (*c)++;
    pthread_mutex_unlock(&m->mu);
}

void tdm_gw_metrics_inflight(tdm_gw_metrics *m, int delta)
{
    pthread_mutex_lock(&m->mu);
    m->inflight += delta;
    pthread_mutex_unlock(&m->mu);
}

static void appendf(tdm_json_buf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void appendf(tdm_json_buf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    tdm_json_buf_raw(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

static void render_histo(tdm_json_buf *b, const char *name, const char *labels, const histo *h,
                         const double *bounds, size_t n)
{
    uint64_t cum = 0;
    const char *sep = labels[0] ? "," : "";
    for (size_t i = 0; i < n; i++) {
        cum += h->counts[i];
        appendf(b, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep, bounds[i],
                (unsigned long long)cum);
    }
    appendf(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep,
            (unsigned long long)h->count);
    if (labels[0]) {
        appendf(b, "%s_sum{%s} %.9g\n", name, labels, h->sum);
        appendf(b, "%s_count{%s} %llu\n", name, labels, (unsigned long long)h->count);
    } else {
        appendf(b, "%s_sum %.9g\n", name, h->sum);
        appendf(b, "%s_count %llu\n", name, (unsigned long long)h->count);
    }
}

void tdm_gw_metrics_render(tdm_gw_metrics *m, tdm_json_buf *b)
{
    pthread_mutex_lock(&m->mu);
    char labels[256];
    appendf(b, "# HELP tandem_http_requests_total Requests by route, method and status.\n");
    appendf(b, "# TYPE tandem_http_requests_total counter\n");
    for (int i = 0; i < m->n_req; i++)
        appendf(b, "tandem_http_requests_total{route=\"%s\",method=\"%s\",status=\"%d\"} %llu\n",
                m->req[i].route, m->req[i].method, m->req[i].status,
                (unsigned long long)m->req[i].count);
    appendf(b, "# HELP tandem_http_request_duration_seconds Request latency.\n");
    appendf(b, "# TYPE tandem_http_request_duration_seconds histogram\n");
    for (int i = 0; i < m->n_req; i++) {
        snprintf(labels, sizeof labels, "route=\"%s\",method=\"%s\",status=\"%d\"", m->req[i].route,
                 m->req[i].method, m->req[i].status);
        render_histo(b, "tandem_http_request_duration_seconds", labels, &m->req[i].lat,
                     k_lat_buckets, N_LAT);
    }
    appendf(b, "# HELP tandem_queue_seconds Time requests waited in batcher queues.\n");
    appendf(b, "# TYPE tandem_queue_seconds histogram\n");
    render_histo(b, "tandem_queue_seconds", "", &m->queue, k_lat_buckets, N_LAT);
    appendf(b, "# HELP tandem_compute_seconds Engine time per batch.\n");
    appendf(b, "# TYPE tandem_compute_seconds histogram\n");
    for (int i = 0; i < m->n_models; i++) {
        snprintf(labels, sizeof labels, "model=\"%s\"", m->models[i].model);
        render_histo(b, "tandem_compute_seconds", labels, &m->models[i].compute, k_lat_buckets,
                     N_LAT);
    }
    appendf(b, "# HELP tandem_batch_size Requests per batch.\n");
    appendf(b, "# TYPE tandem_batch_size histogram\n");
    for (int i = 0; i < m->n_models; i++) {
        snprintf(labels, sizeof labels, "model=\"%s\"", m->models[i].model);
        render_histo(b, "tandem_batch_size", labels, &m->models[i].batch_size, k_batch_buckets,
                     N_BATCH);
    }
    appendf(b, "# HELP tandem_batch_limit Current adaptive batch size limit.\n");
    appendf(b, "# TYPE tandem_batch_limit gauge\n");
    for (int i = 0; i < m->n_models; i++)
        appendf(b, "tandem_batch_limit{model=\"%s\"} %d\n", m->models[i].model, m->models[i].limit);
    static const char *const names[] = {"rejected_deadline", "dropped_disconnected",
                                        "rejected_overload", "idempotent_replay",
                                        "cache_hits",        "cache_misses"};
    const uint64_t vals[] = {m->rejected_deadline, m->dropped_disconnected,
                             m->rejected_overload, m->idempotent_replay,
                             m->cache_hit,         m->cache_miss};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        appendf(b, "# TYPE tandem_%s_total counter\n", names[i]);
        appendf(b, "tandem_%s_total %llu\n", names[i], (unsigned long long)vals[i]);
    }
    appendf(b, "# HELP tandem_in_flight Requests being handled now.\n");
    appendf(b, "# TYPE tandem_in_flight gauge\n");
    appendf(b, "tandem_in_flight %lld\n", (long long)m->inflight);
    for (int i = 0; i < m->n_free; i++)
        appendf(b, "%s %.17g\n", m->free_[i].name, m->free_[i].value);
    pthread_mutex_unlock(&m->mu);
}

/*
 * Endpoint selection, failover and connection reuse over libcurl (see
 * transport.h for the rules).
 *
 * One mutex guards the endpoint table (state, EWMA, counters, handle pools);
 * it is never held across network I/O. An attempt takes an easy handle from
 * its endpoint's pool (a fresh one when the pool is empty), runs it, and
 * gives it back, so kept-alive connections survive between requests and
 * concurrent requests each get their own handle.
 */
#include "edge/transport.h"
#include "edge/transport_internal.h"

#include <curl/curl.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "edge/curl_init.h"

typedef struct body_buf {
    char *p;
    size_t len, cap;
    bool too_big;
} body_buf;

static size_t on_data(char *ptr, size_t size, size_t n, void *arg)
{
    body_buf *b = arg;
    size_t add = size * n;
    if (b->len + add > MAX_BODY) {
        b->too_big = true;
        return 0;
    }
    if (b->len + add + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + add + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (p == NULL)
            return 0;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, ptr, add);
    b->len += add;
    b->p[b->len] = '\0';
    return add;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* Reads the bearer token; an unreadable file leaves no header (the gateway says 401). */
static void load_token(tdm_transport *t)
{
    t->auth_header[0] = '\0';
    if (t->token_file == NULL)
        return;
    FILE *f = fopen(t->token_file, "rb");
    if (f == NULL)
        return;
    char tok[TOKEN_MAX];
    size_t n = fread(tok, 1, sizeof tok - 1, f);
    fclose(f);
    while (n > 0 && (tok[n - 1] == '\n' || tok[n - 1] == '\r' || tok[n - 1] == ' '))
        n--;
    tok[n] = '\0';
    if (n > 0 && strpbrk(tok, "\r\n") == NULL)
        snprintf(t->auth_header, sizeof t->auth_header, "Authorization: Bearer %s", tok);
}

/* The token may have been rotated on disk (a 401 says so): read it again. */
static void reload_token(tdm_transport *t)
{
    pthread_mutex_lock(&t->mu);
    load_token(t);
    pthread_mutex_unlock(&t->mu);
}

tdm_status tdm_transport_create(const tdm_transport_options *opt, tdm_transport **out, tdm_err *err)
{
    *out = NULL;
    if (opt == NULL || opt->n_endpoints < 1 || opt->n_endpoints > TDM_TRANSPORT_MAX_ENDPOINTS)
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "transport: want 1 to %d endpoints",
                        TDM_TRANSPORT_MAX_ENDPOINTS);
    for (int i = 0; i < opt->n_endpoints; i++) {
        const char *u = opt->endpoints[i];
        if (u == NULL || (strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0))
            return tdm_errf(err, TDM_ERR_INVALID_ARG,
                            "transport: endpoint %d ('%s') is not an http:// or https:// URL",
                            i + 1, u ? u : "(null)");
    }
    tdm_status st = tdm_curl_global_init(err);
    if (st != TDM_OK)
        return st;
    tdm_transport *t = calloc(1, sizeof *t);
    if (t == NULL)
        return tdm_errf(err, TDM_ERR_NOMEM, "transport: out of memory");
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->idle_cv, NULL);
    t->opt = *opt;
    if (t->opt.max_failures <= 0)
        t->opt.max_failures = 2;
    if (!(t->opt.connect_timeout_ms > 0))
        t->opt.connect_timeout_ms = 2000;
    if (!(t->opt.ewma_alpha > 0 && t->opt.ewma_alpha <= 1))
        t->opt.ewma_alpha = 0.2;
    t->ca_file = dup_or_null(opt->ca_file);
    t->client_cert = dup_or_null(opt->client_cert);
    t->client_key = dup_or_null(opt->client_key);
    t->token_file = dup_or_null(opt->token_file);
    bool oom = (opt->ca_file && !t->ca_file) || (opt->client_cert && !t->client_cert) ||
               (opt->client_key && !t->client_key) || (opt->token_file && !t->token_file);
    t->n = opt->n_endpoints;
    for (int i = 0; i < t->n && !oom; i++) {
        endpoint *e = &t->ep[i];
        e->url = strdup(opt->endpoints[i]);
        if (e->url == NULL) {
            oom = true;
            break;
        }
        size_t l = strlen(e->url);
        while (l > 0 && e->url[l - 1] == '/')
            e->url[--l] = '\0';
        e->healthy = true; /* optimistic until proven otherwise */
        e->ewma = -1;
        t->opt.endpoints[i] = e->url;
    }
    if (oom) {
        tdm_transport_free(t);
        return tdm_errf(err, TDM_ERR_NOMEM, "transport: out of memory");
    }
    t->opt.ca_file = t->ca_file;
    t->opt.client_cert = t->client_cert;
    t->opt.client_key = t->client_key;
    t->opt.token_file = t->token_file;
    load_token(t);
    *out = t;
    return TDM_OK;
}

void tdm_transport_free(tdm_transport *t)
{
    if (t == NULL)
        return;
    pthread_mutex_lock(&t->mu); /* abandoned hedge legs end within their own timeouts */
    while (t->legs_running > 0)
        pthread_cond_wait(&t->idle_cv, &t->mu);
    pthread_mutex_unlock(&t->mu);
    for (int i = 0; i < t->n; i++) {
        for (int k = 0; k < t->ep[i].n_pool; k++)
            curl_easy_cleanup(t->ep[i].pool[k]);
        free(t->ep[i].url);
    }
    free(t->ca_file);
    free(t->client_cert);
    free(t->client_key);
    free(t->token_file);
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->idle_cv);
    free(t);
}

void tdm_http_response_free(tdm_http_response *r)
{
    if (r == NULL)
        return;
    free(r->body);
    memset(r, 0, sizeof *r);
}

/* Endpoint order for one request: healthy by EWMA, then down ones by least recent failure. */
static int pick_order(tdm_transport *t, int *order)
{
    int n = 0;
    pthread_mutex_lock(&t->mu);
    for (int i = 0; i < t->n; i++)
        order[n++] = i;
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0; j--) {
            const endpoint *a = &t->ep[order[j - 1]], *b = &t->ep[order[j]];
            bool swap;
            if (a->healthy != b->healthy)
                swap = b->healthy;
            else if (a->healthy) /* unmeasured ranks last: health checks measure it soon */
                swap = b->ewma >= 0 && (a->ewma < 0 || b->ewma < a->ewma);
            else
                swap = b->last_fail < a->last_fail;
            if (!swap)
                break;
            int tmp = order[j];
            order[j] = order[j - 1];
            order[j - 1] = tmp;
        }
    pthread_mutex_unlock(&t->mu);
    return n;
}

static CURL *take_handle(tdm_transport *t, int i)
{
    pthread_mutex_lock(&t->mu);
    endpoint *e = &t->ep[i];
    CURL *h = e->n_pool > 0 ? e->pool[--e->n_pool] : NULL;
    pthread_mutex_unlock(&t->mu);
    return h ? h : curl_easy_init();
}

static void give_handle(tdm_transport *t, int i, CURL *h)
{
    pthread_mutex_lock(&t->mu);
    endpoint *e = &t->ep[i];
    if (e->n_pool < POOL_MAX) {
        e->pool[e->n_pool++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&t->mu);
    if (h)
        curl_easy_cleanup(h);
}

/* Under t->mu: one answer time into endpoint e's estimates. */
static void add_sample(tdm_transport *t, endpoint *e, double ms)
{
    if (e->ewma < 0) {
        e->ewma = ms;
        e->rttvar = ms / 2;
    } else {
        e->rttvar = 0.75 * e->rttvar + 0.25 * fabs(ms - e->ewma);
        e->ewma = (1 - t->opt.ewma_alpha) * e->ewma + t->opt.ewma_alpha * ms;
    }
    e->lat[e->lat_next] = (float)ms;
    e->lat_next = (e->lat_next + 1) % LAT_WINDOW;
    if (e->n_lat < LAT_WINDOW)
        e->n_lat++;
}

void tdm_transport_record_late(tdm_transport *t, int i, double ms)
{
    pthread_mutex_lock(&t->mu);
    add_sample(t, &t->ep[i], ms);
    pthread_mutex_unlock(&t->mu);
}

void tdm_transport_record(tdm_transport *t, int i, bool ok, double ms, bool failover)
{
    pthread_mutex_lock(&t->mu);
    endpoint *e = &t->ep[i];
    e->requests++;
    if (failover)
        e->failovers++;
    if (ok) {
        e->fails = 0;
        e->healthy = true;
        add_sample(t, e, ms);
    } else {
        e->failures++;
        e->last_fail = tdm_now_ns();
        if (++e->fails >= t->opt.max_failures)
            e->healthy = false;
    }
    pthread_mutex_unlock(&t->mu);
}

static int on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)dt;
    (void)dn;
    (void)ut;
    (void)un;
    return atomic_load((atomic_bool *)arg) ? 1 : 0;
}

CURLcode tdm_transport_attempt(tdm_transport *t, int i, const char *path,
                               const char *const *headers, const void *body, size_t len, bool post,
                               double timeout_ms, atomic_bool *cancel, tdm_http_response *resp,
                               char *why, size_t why_len)
{
    CURL *h = take_handle(t, i);
    if (h == NULL) {
        snprintf(why, why_len, "out of memory");
        return CURLE_OUT_OF_MEMORY;
    }
    char url[2048];
    snprintf(url, sizeof url, "%s%s", t->ep[i].url, path);
    struct curl_slist *hl = NULL;
    bool oom = false;
    for (int k = 0; headers && headers[k] && !oom; k++) {
        struct curl_slist *n = curl_slist_append(hl, headers[k]);
        oom = n == NULL;
        hl = n ? n : hl;
    }
    pthread_mutex_lock(&t->mu);
    if (t->auth_header[0] && !oom) {
        struct curl_slist *n = curl_slist_append(hl, t->auth_header);
        oom = n == NULL;
        hl = n ? n : hl;
    }
    pthread_mutex_unlock(&t->mu);
    if (post && !oom) { /* no "Expect: 100-continue" round trip on a slow link */
        struct curl_slist *n = curl_slist_append(hl, "Expect:");
        oom = n == NULL;
        hl = n ? n : hl;
    }
    char errbuf[CURL_ERROR_SIZE] = "";
    body_buf b = {0};
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
    if (cancel) {
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(h, CURLOPT_XFERINFODATA, (void *)cancel);
    }
    long tmo = timeout_ms < 1 ? 1 : (long)timeout_ms;
    long ctmo = (long)t->opt.connect_timeout_ms < tmo ? (long)t->opt.connect_timeout_ms : tmo;
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, tmo);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, ctmo);
    if (post) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    if (t->ca_file)
        curl_easy_setopt(h, CURLOPT_CAINFO, t->ca_file);
    if (t->client_cert) {
        curl_easy_setopt(h, CURLOPT_SSLCERT, t->client_cert);
        if (t->client_key)
            curl_easy_setopt(h, CURLOPT_SSLKEY, t->client_key);
    }
    if (t->opt.tls13_only)
        curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_3);
    uint64_t t0 = tdm_now_ns();
    CURLcode rc = oom ? CURLE_OUT_OF_MEMORY : curl_easy_perform(h);
    double ms = (double)(tdm_now_ns() - t0) / 1e6;
    curl_slist_free_all(hl);
    if (rc == CURLE_OK) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
        resp->body = b.p ? b.p : strdup("");
        resp->len = b.len;
        resp->rtt_ms = ms;
        if (resp->body == NULL) {
            rc = CURLE_OUT_OF_MEMORY;
            resp->status = 0;
        }
    } else {
        free(b.p);
        snprintf(why, why_len, "%s",
                 b.too_big   ? "answer larger than 64 MiB"
                 : errbuf[0] ? errbuf
                             : curl_easy_strerror(rc));
    }
    give_handle(t, i, h);
    return rc;
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* When to send a second copy to the next endpoint: never without a healthy second endpoint;
 * a fixed delay; or, automatically, the 95th percentile of the first endpoint's recent answer
 * times, so that about 5% of requests are hedged ("The Tail at Scale", Dean and Barroso).
 * 0 = no hedge. */
static double hedge_delay(tdm_transport *t, const int *order, int n)
{
    if (n < 2 || (t->opt.hedge_after_ms <= 0 && !t->opt.hedge_auto))
        return 0;
    double d = 0;
    pthread_mutex_lock(&t->mu);
    const endpoint *a = &t->ep[order[0]], *b = &t->ep[order[1]];
    if (a->healthy && b->healthy) {
        if (t->opt.hedge_after_ms > 0)
            d = t->opt.hedge_after_ms;
        else if (a->n_lat >= LAT_MIN_SAMPLES) {
            float v[LAT_WINDOW];
            memcpy(v, a->lat, (size_t)a->n_lat * sizeof *v);
            qsort(v, (size_t)a->n_lat, sizeof *v, cmp_float);
            d = fmax(1.0, v[(a->n_lat * 95 + 99) / 100 - 1]);
        }
    }
    pthread_mutex_unlock(&t->mu);
    return d;
}

static tdm_status request(tdm_transport *t, const char *path, const char *const *headers,
                          const void *body, size_t len, bool post, double timeout_ms,
                          tdm_http_response *resp, tdm_err *err)
{
    memset(resp, 0, sizeof *resp);
    if (path == NULL || path[0] != '/')
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "transport: path must start with '/'");
    int order[TDM_TRANSPORT_MAX_ENDPOINTS];
    int n = pick_order(t, order);
    uint64_t start = tdm_now_ns();
    char why[WHY_MAX] = "no endpoint tried";
    bool reloaded_token = false;
    int k = 0;
    double hedge_ms = hedge_delay(t, order, n);
    if (hedge_ms > 0 && hedge_ms < timeout_ms) {
        tdm_http_response r = {0};
        int sent = 0;
        bool answered = tdm_transport_hedged(t, order, hedge_ms, path, headers, body, len, post,
                                             timeout_ms, &r, &sent, why, sizeof why);
        resp->attempts += sent;
        if (answered && !(r.status == 401 && t->token_file)) {
            int attempts = resp->attempts;
            *resp = r;
            resp->attempts = attempts;
            return TDM_OK;
        }
        if (answered) { /* 401: read the token again, then go on one endpoint at a time */
            reload_token(t);
            reloaded_token = true;
            tdm_http_response_free(&r);
        } else {
            k = sent; /* those failed: fail over to the rest */
        }
    }
    for (; k < n; k++) {
        double left = timeout_ms - (double)(tdm_now_ns() - start) / 1e6;
        if (left <= 0)
            break;
        int i = order[k];
        tdm_http_response r = {0};
        CURLcode rc = tdm_transport_attempt(t, i, path, headers, body, len, post, left, NULL, &r,
                                            why, sizeof why);
        resp->attempts++;
        bool answered = rc == CURLE_OK && r.status > 0 && r.status < 500;
        tdm_transport_record(t, i, answered, r.rtt_ms, k > 0);
        if (answered && r.status == 401 && t->token_file && !reloaded_token) {
            /* The token may have been rotated on disk: read it again and retry once. */
            reload_token(t);
            reloaded_token = true;
            tdm_http_response_free(&r);
            k--;
            continue;
        }
        if (answered) {
            int attempts = resp->attempts;
            *resp = r;
            resp->endpoint = i;
            resp->attempts = attempts;
            return TDM_OK;
        }
        if (rc == CURLE_OK)
            snprintf(why, sizeof why, "%s answered HTTP %ld", t->ep[i].url, r.status);
        tdm_http_response_free(&r);
    }
    return tdm_errf(err, TDM_ERR_IO, "transport: no endpoint answered %s (deadline %.0f ms): %s",
                    path, timeout_ms, why);
}

tdm_status tdm_transport_post(tdm_transport *t, const char *path, const char *const *headers,
                              const void *body, size_t len, double timeout_ms,
                              tdm_http_response *resp, tdm_err *err)
{
    return request(t, path, headers, body, len, true, timeout_ms, resp, err);
}

tdm_status tdm_transport_get(tdm_transport *t, const char *path, double timeout_ms,
                             tdm_http_response *resp, tdm_err *err)
{
    return request(t, path, NULL, NULL, 0, false, timeout_ms, resp, err);
}

int tdm_transport_check_health(tdm_transport *t, double timeout_ms)
{
    int healthy = 0;
    for (int i = 0; i < t->n; i++) {
        tdm_http_response r = {0};
        char why[WHY_MAX];
        CURLcode rc = tdm_transport_attempt(t, i, "/healthz", NULL, NULL, 0, false, timeout_ms,
                                            NULL, &r, why, sizeof why);
        bool ok = rc == CURLE_OK && r.status == 200;
        pthread_mutex_lock(&t->mu);
        endpoint *e = &t->ep[i];
        if (ok) {
            e->healthy = true;
            e->fails = 0;
            e->ewma = e->ewma < 0
                          ? r.rtt_ms
                          : (1 - t->opt.ewma_alpha) * e->ewma + t->opt.ewma_alpha * r.rtt_ms;
            healthy++;
        } else {
            e->healthy = false;
            e->last_fail = tdm_now_ns();
        }
        pthread_mutex_unlock(&t->mu);
        tdm_http_response_free(&r);
    }
    return healthy;
}

bool tdm_transport_any_healthy(tdm_transport *t)
{
    bool any = false;
    pthread_mutex_lock(&t->mu);
    for (int i = 0; i < t->n; i++)
        any = any || t->ep[i].healthy;
    pthread_mutex_unlock(&t->mu);
    return any;
}

double tdm_transport_rtt_ms(tdm_transport *t)
{
    double best = -1;
    pthread_mutex_lock(&t->mu);
    for (int i = 0; i < t->n; i++)
        if (t->ep[i].healthy && t->ep[i].ewma >= 0 && (best < 0 || t->ep[i].ewma < best))
            best = t->ep[i].ewma;
    pthread_mutex_unlock(&t->mu);
    return best;
}

int tdm_transport_endpoint_count(const tdm_transport *t)
{
    return t->n;
}

void tdm_transport_endpoint_stats(tdm_transport *t, int i, tdm_endpoint_stats *st)
{
    pthread_mutex_lock(&t->mu);
    const endpoint *e = &t->ep[i];
    st->url = e->url;
    st->healthy = e->healthy;
    st->ewma_rtt_ms = e->ewma;
    st->requests = e->requests;
    st->failures = e->failures;
    st->failovers = e->failovers;
    st->hedges = e->hedges;
    st->hedge_wins = e->hedge_wins;
    pthread_mutex_unlock(&t->mu);
}

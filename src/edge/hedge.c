/*
 * Hedged requests: a second copy to the next endpoint when the first is slow.
 *
 * Each copy (a "leg") runs a blocking libcurl exchange on its own detached
 * thread, so the caller can wait for "first answer or hedge time" on a
 * condition variable. The loser is not joined: a blocked exchange notices
 * its cancel flag only at libcurl's next progress call (up to a second
 * later), and the caller must not wait for that. So a hedge owns copies of
 * everything its legs read (path, headers, body) and is reference-counted;
 * the last leg out frees it. The transport counts running legs and its free
 * waits for them, so a leg never outlives the handles and endpoint table it
 * uses. Threads are created only for hedged requests, and only when hedging
 * is configured with two healthy endpoints.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "edge/transport_internal.h"

typedef struct hedge hedge;

typedef struct leg {
    hedge *h;
    int ep;
    bool done, taken;
    bool censored; /* abandoned and already counted as late */
    CURLcode rc;
    tdm_http_response r;
    char why[WHY_MAX];
} leg;

struct hedge {
    tdm_transport *t;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* a leg finished */
    int refs;
    atomic_bool cancel;
    char *path;
    char **headers; /* NULL-terminated copy */
    void *body;
    size_t len;
    bool post;
    uint64_t deadline_ns;
    leg legs[2];
};

static bool answered(const leg *l)
{
    return l->done && l->rc == CURLE_OK && l->r.status > 0 && l->r.status < 500;
}

static void release(hedge *h)
{
    pthread_mutex_lock(&h->mu);
    bool last = --h->refs == 0;
    pthread_mutex_unlock(&h->mu);
    if (!last)
        return;
    for (int i = 0; i < 2; i++)
        if (!h->legs[i].taken)
            tdm_http_response_free(&h->legs[i].r);
    for (int i = 0; h->headers && h->headers[i]; i++)
        free(h->headers[i]);
    free(h->headers);
    free(h->path);
    free(h->body);
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->cv);
    free(h);
}

static void *run_leg(void *arg)
{
    leg *l = arg;
    hedge *h = l->h;
    tdm_transport *t = h->t;
    tdm_http_response r = {0};
    char why[WHY_MAX] = "deadline passed before the attempt";
    uint64_t now = tdm_now_ns();
    CURLcode rc = CURLE_OPERATION_TIMEDOUT;
    if (now < h->deadline_ns)
        rc = tdm_transport_attempt(t, l->ep, h->path, (const char *const *)h->headers, h->body,
                                   h->len, h->post, (double)(h->deadline_ns - now) / 1e6,
                                   &h->cancel, &r, why, sizeof why);
    bool ok = rc == CURLE_OK && r.status > 0 && r.status < 500;
    pthread_mutex_lock(&h->mu);
    /* an abandoned copy was counted when it lost, or says nothing (a late hedge) */
    if (!l->censored && !(rc == CURLE_ABORTED_BY_CALLBACK && atomic_load(&h->cancel)))
        tdm_transport_record(t, l->ep, ok, r.rtt_ms, false);
    l->rc = rc;
    l->r = r;
    l->r.endpoint = l->ep;
    memcpy(l->why, why, sizeof why);
    l->done = true;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
    release(h);
    pthread_mutex_lock(&t->mu);
    if (--t->legs_running == 0)
        pthread_cond_broadcast(&t->idle_cv);
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

/* Starts leg i on its own detached thread; false when no thread could be made. */
static bool start_leg(hedge *h, int i)
{
    pthread_mutex_lock(&h->t->mu);
    h->t->legs_running++;
    pthread_mutex_unlock(&h->t->mu);
    h->refs++; /* under h->mu, held by the caller */
    pthread_attr_t a;
    pthread_t th;
    bool ok = pthread_attr_init(&a) == 0;
    if (ok) {
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        ok = pthread_create(&th, &a, run_leg, &h->legs[i]) == 0;
        pthread_attr_destroy(&a);
    }
    if (!ok) {
        h->refs--;
        pthread_mutex_lock(&h->t->mu);
        if (--h->t->legs_running == 0)
            pthread_cond_broadcast(&h->t->idle_cv);
        pthread_mutex_unlock(&h->t->mu);
    }
    return ok;
}

static hedge *make(tdm_transport *t, const char *path, const char *const *headers, const void *body,
                   size_t len, bool post, double timeout_ms)
{
    hedge *h = calloc(1, sizeof *h);
    if (h == NULL)
        return NULL;
    int n = 0;
    while (headers && headers[n])
        n++;
    h->path = strdup(path);
    h->headers = calloc((size_t)n + 1, sizeof *h->headers);
    h->body = malloc(len ? len : 1);
    bool oom = !h->path || !h->headers || !h->body;
    for (int i = 0; i < n && !oom; i++)
        oom = (h->headers[i] = strdup(headers[i])) == NULL;
    if (oom) {
        for (int i = 0; h->headers && i < n; i++)
            free(h->headers[i]);
        free(h->headers);
        free(h->path);
        free(h->body);
        free(h);
        return NULL;
    }
    if (len)
        memcpy(h->body, body, len);
    h->t = t;
    h->len = len;
    h->post = post;
    h->refs = 1; /* the caller's */
    atomic_init(&h->cancel, false);
    h->deadline_ns = tdm_now_ns() + (uint64_t)(timeout_ms * 1e6);
    pthread_mutex_init(&h->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&h->cv, &ca);
    pthread_condattr_destroy(&ca);
    return h;
}

static void wait_until(hedge *h, uint64_t at_ns)
{
    struct timespec ts = {.tv_sec = (time_t)(at_ns / 1000000000ull),
                          .tv_nsec = (long)(at_ns % 1000000000ull)};
    pthread_cond_timedwait(&h->cv, &h->mu, &ts);
}

bool tdm_transport_hedged(tdm_transport *t, const int order[2], double hedge_ms, const char *path,
                          const char *const *headers, const void *body, size_t len, bool post,
                          double timeout_ms, tdm_http_response *resp, int *attempts, char *why,
                          size_t why_len)
{
    memset(resp, 0, sizeof *resp);
    *attempts = 0;
    hedge *h = make(t, path, headers, body, len, post, timeout_ms);
    if (h == NULL) {
        snprintf(why, why_len, "out of memory");
        return false;
    }
    h->legs[0] = (leg){.h = h, .ep = order[0]};
    h->legs[1] = (leg){.h = h, .ep = order[1]};
    uint64_t t0 = tdm_now_ns();
    pthread_mutex_lock(&h->mu);
    int started = start_leg(h, 0) ? 1 : 0;
    uint64_t hedge_at = tdm_now_ns() + (uint64_t)(hedge_ms * 1e6);
    while (started == 1 && !h->legs[0].done && tdm_now_ns() < hedge_at)
        wait_until(h, hedge_at);
    if (started == 1 && !h->legs[0].done && start_leg(h, 1)) {
        started = 2;
        pthread_mutex_lock(&t->mu);
        t->ep[order[1]].hedges++;
        pthread_mutex_unlock(&t->mu);
    }
    /* the first answer wins; a leg that fails leaves the field to the other */
    leg *win = NULL;
    for (;;) {
        int done = 0;
        for (int i = 0; i < started && !win; i++) {
            done += h->legs[i].done;
            if (answered(&h->legs[i]))
                win = &h->legs[i];
        }
        if (win || done == started)
            break;
        pthread_cond_wait(&h->cv, &h->mu);
    }
    bool ok = win != NULL;
    if (ok) {
        win->taken = true;
        *resp = win->r;
        if (win == &h->legs[1]) {
            pthread_mutex_lock(&t->mu);
            t->ep[order[1]].hedge_wins++;
            pthread_mutex_unlock(&t->mu);
            if (!h->legs[0].done) { /* the first is slower than this: let it lose its rank */
                h->legs[0].censored = true;
                tdm_transport_record_late(t, order[0], (double)(tdm_now_ns() - t0) / 1e6);
            }
        }
    } else if (started > 0) {
        const leg *last = &h->legs[started - 1];
        if (last->rc == CURLE_OK)
            snprintf(why, why_len, "%s answered HTTP %ld", t->ep[last->ep].url, last->r.status);
        else
            snprintf(why, why_len, "%s", last->why);
    } else {
        snprintf(why, why_len, "cannot start a thread for the request");
    }
    atomic_store(&h->cancel, true);
    *attempts = started;
    pthread_mutex_unlock(&h->mu);
    release(h);
    return ok;
}

/*
 * The similarity cache (see simcache.h): a dense array of entries scanned in
 * full on every lookup, plus an intrusive LRU list threaded through the
 * array by index. Removing an entry moves the last array slot into the hole
 * (fixing the LRU links of the moved entry), so the scan never skips holes.
 */
#include "collab/simcache.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define ENTRY_OVERHEAD 96

typedef struct entry {
    float *vec; /* normalised, dim floats */
    char *value;
    size_t len;
    uint64_t expires_ms;
    int32_t prev, next; /* LRU, -1 terminated; head = most recent */
} entry;

struct tdm_simcache {
    pthread_mutex_t mu;
    int dim;
    double threshold;
    uint64_t ttl_ms;
    size_t max_bytes, bytes;
    entry *e;
    int32_t n, cap;
    int32_t head, tail;
    tdm_simcache_stats st;
};

tdm_status tdm_simcache_create(int dim, double threshold, uint64_t ttl_ms, size_t max_bytes,
                               tdm_simcache **out, tdm_err *err)
{
    *out = NULL;
    if (dim <= 0 || dim > (1 << 20) || !(threshold > 0 && threshold <= 1) || ttl_ms == 0 ||
        max_bytes == 0)
        return tdm_errf(
            err, TDM_ERR_INVALID_ARG,
            "similarity cache: want dim 1..2^20, threshold in (0, 1], ttl and bytes > 0 "
            "(got dim %d, threshold %g)",
            dim, threshold);
    tdm_simcache *c = calloc(1, sizeof *c);
    if (c == NULL)
        return tdm_errf(err, TDM_ERR_NOMEM, "similarity cache: out of memory");
    pthread_mutex_init(&c->mu, NULL);
    c->dim = dim;
    c->threshold = threshold;
    c->ttl_ms = ttl_ms;
    c->max_bytes = max_bytes;
    c->head = c->tail = -1;
    *out = c;
    return TDM_OK;
}

static size_t cost(const tdm_simcache *c, size_t len)
{
    return (size_t)c->dim * sizeof(float) + len + ENTRY_OVERHEAD;
}

static void lru_unlink(tdm_simcache *c, int32_t i)
{
    entry *x = &c->e[i];
    if (x->prev >= 0)
        c->e[x->prev].next = x->next;
    else
        c->head = x->next;
    if (x->next >= 0)
        c->e[x->next].prev = x->prev;
    else
        c->tail = x->prev;
}

static void lru_push_front(tdm_simcache *c, int32_t i)
{
    entry *x = &c->e[i];
    x->prev = -1;
    x->next = c->head;
    if (c->head >= 0)
        c->e[c->head].prev = i;
    c->head = i;
    if (c->tail < 0)
        c->tail = i;
}

static void remove_at(tdm_simcache *c, int32_t i)
{
    lru_unlink(c, i);
    c->bytes -= cost(c, c->e[i].len);
    free(c->e[i].vec);
    free(c->e[i].value);
    int32_t last = --c->n;
    if (i != last) {
        c->e[i] = c->e[last];
        entry *x = &c->e[i];
        if (x->prev >= 0)
            c->e[x->prev].next = i;
        else
            c->head = i;
        if (x->next >= 0)
            c->e[x->next].prev = i;
        else
            c->tail = i;
    }
}

void tdm_simcache_free(tdm_simcache *c)
{
    if (c == NULL)
        return;
    for (int32_t i = 0; i < c->n; i++) {
        free(c->e[i].vec);
        free(c->e[i].value);
    }
    free(c->e);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

/* Writes vec / |vec| into out; false for a zero or non-finite vector. */
static bool normalise(const float *vec, int dim, float *out)
{
    double ss = 0;
    for (int k = 0; k < dim; k++)
        ss += (double)vec[k] * vec[k];
    if (!(ss > 0) || !isfinite(ss))
        return false;
    float inv = (float)(1.0 / sqrt(ss));
    for (int k = 0; k < dim; k++)
        out[k] = vec[k] * inv;
    return true;
}

bool tdm_simcache_get(tdm_simcache *c, const float *vec, uint64_t now_ms, char **value, size_t *len,
                      double *similarity)
{
    *value = NULL;
    *len = 0;
    float *q = malloc((size_t)c->dim * sizeof *q);
    if (q == NULL || !normalise(vec, c->dim, q)) {
        free(q);
        pthread_mutex_lock(&c->mu);
        c->st.misses++;
        pthread_mutex_unlock(&c->mu);
        return false;
    }
    pthread_mutex_lock(&c->mu);
    int32_t best = -1;
    double best_sim = -2;
    for (int32_t i = 0; i < c->n; i++) {
        if (c->e[i].expires_ms <= now_ms) {
            remove_at(c, i);
            c->st.expirations++;
            i--;
            continue;
        }
        const float *v = c->e[i].vec;
        double dot = 0;
        for (int k = 0; k < c->dim; k++)
            dot += (double)v[k] * q[k];
        if (dot > best_sim) {
            best_sim = dot;
            best = i;
        }
    }
    free(q);
    bool hit = best >= 0 && best_sim >= c->threshold;
    if (hit) {
        char *copy = malloc(c->e[best].len + 1);
        if (copy != NULL) {
            memcpy(copy, c->e[best].value, c->e[best].len);
            copy[c->e[best].len] = '\0';
            *value = copy;
            *len = c->e[best].len;
            *similarity = best_sim;
            lru_unlink(c, best);
            lru_push_front(c, best);
        }
        hit = copy != NULL;
    }
    if (hit)
        c->st.hits++;
    else
        c->st.misses++;
    pthread_mutex_unlock(&c->mu);
    return hit;
}

bool tdm_simcache_put(tdm_simcache *c, const float *vec, const void *value, size_t len,
                      uint64_t now_ms)
{
    size_t need = cost(c, len);
    if (need > c->max_bytes)
        return false;
    float *v = malloc((size_t)c->dim * sizeof *v);
    char *val = malloc(len + 1);
    if (v == NULL || val == NULL || !normalise(vec, c->dim, v)) {
        free(v);
        free(val);
        return false;
    }
    memcpy(val, value, len);
    val[len] = '\0';
    pthread_mutex_lock(&c->mu);
    while (c->bytes + need > c->max_bytes && c->tail >= 0) {
        remove_at(c, c->tail);
        c->st.evictions++;
    }
    if (c->n == c->cap) {
        int32_t cap = c->cap ? c->cap * 2 : 64;
        entry *e = realloc(c->e, (size_t)cap * sizeof *e);
        if (e == NULL) {
            pthread_mutex_unlock(&c->mu);
            free(v);
            free(val);
            return false;
        }
        c->e = e;
        c->cap = cap;
    }
    int32_t i = c->n++;
    c->e[i] = (entry){.vec = v, .value = val, .len = len, .expires_ms = now_ms + c->ttl_ms};
    lru_push_front(c, i);
    c->bytes += need;
    c->st.inserts++;
    pthread_mutex_unlock(&c->mu);
    return true;
}

void tdm_simcache_get_stats(tdm_simcache *c, tdm_simcache_stats *st)
{
    pthread_mutex_lock(&c->mu);
    *st = c->st;
    st->entries = (size_t)c->n;
    st->bytes = c->bytes;
    pthread_mutex_unlock(&c->mu);
}

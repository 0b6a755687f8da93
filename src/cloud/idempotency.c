/*
 * The idempotency store (see idempotency.h): a chained hash table plus an LRU list.
 *
 * One mutex guards the table; work done under it is a hash lookup and a memcpy of the
 * answer, never a model run. Waiters for a pending key sleep on one condition variable
 * that every finish/abandon broadcasts: duplicates in flight at the same moment are rare,
 * so a shared condition costs less than one per entry. Pending entries are never evicted
 * (their runner will store into them); when the table is full of pending entries a new
 * key is still admitted, so the bound is capacity plus the requests in flight.
 */
#include "cloud/idempotency.h"

#include "cloud/idem_db.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct entry {
    char *key;
    uint64_t hash;
    bool pending;
    int status;
    char *body;
    size_t body_len;
    double stored_s;
    struct entry *next_hash;
    struct entry *lru_prev, *lru_next; /* most recent at head */
} entry;

struct tdm_gw_idem {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    entry **buckets;
    size_t n_buckets;
    int count;
    int capacity;
    double ttl_s;
    entry *lru_head, *lru_tail;
    tdm_gw_idem_db *db; /* when set, the durable store answers instead (idem_db.h) */
};

static uint64_t hash_key(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

tdm_status tdm_gw_idem_create(int capacity, double ttl_s, tdm_gw_idem **out, tdm_err *err)
{
    *out = NULL;
    if (capacity < 1)
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "idempotency capacity must be >= 1");
    tdm_gw_idem *s = calloc(1, sizeof *s);
    if (!s)
        return tdm_errf(err, TDM_ERR_NOMEM, "out of memory for the idempotency store");
    s->n_buckets = 64;
    while (s->n_buckets < (size_t)capacity)
        s->n_buckets *= 2;
    s->buckets = calloc(s->n_buckets, sizeof *s->buckets);
    if (!s->buckets) {
        free(s);
        return tdm_errf(err, TDM_ERR_NOMEM, "out of memory for the idempotency store");
    }
    s->capacity = capacity;
    s->ttl_s = ttl_s;
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    *out = s;
    return TDM_OK;
}

static void entry_free(entry *e)
{
    free(e->key);
    free(e->body);
    free(e);
}

void tdm_gw_idem_free(tdm_gw_idem *s)
{
    if (!s)
        return;
    tdm_gw_idem_db_close(s->db);
    for (entry *e = s->lru_head; e;) {
        entry *n = e->lru_next;
        entry_free(e);
        e = n;
    }
    free(s->buckets);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
}

static entry *find(tdm_gw_idem *s, const char *key, uint64_t h)
{
    for (entry *e = s->buckets[h & (s->n_buckets - 1)]; e; e = e->next_hash)
        if (e->hash == h && strcmp(e->key, key) == 0)
            return e;
    return NULL;
}

static void lru_unlink(tdm_gw_idem *s, entry *e)
{
    if (e->lru_prev)
        e->lru_prev->lru_next = e->lru_next;
    else
        s->lru_head = e->lru_next;
    if (e->lru_next)
        e->lru_next->lru_prev = e->lru_prev;
    else
        s->lru_tail = e->lru_prev;
    e->lru_prev = e->lru_next = NULL;
}

static void lru_push(tdm_gw_idem *s, entry *e)
{
    e->lru_prev = NULL;
    e->lru_next = s->lru_head;
    if (s->lru_head)
        s->lru_head->lru_prev = e;
    s->lru_head = e;
    if (!s->lru_tail)
        s->lru_tail = e;
}

static void remove_entry(tdm_gw_idem *s, entry *e)
{
    entry **pp = &s->buckets[e->hash & (s->n_buckets - 1)];
    while (*pp != e)
        pp = &(*pp)->next_hash;
    *pp = e->next_hash;
    lru_unlink(s, e);
    s->count--;
    entry_free(e);
}

static void evict(tdm_gw_idem *s, double now_s)
{
    entry *e = s->lru_tail;
    while (e && s->count >= s->capacity) {
        entry *prev = e->lru_prev;
        if (!e->pending)
            remove_entry(s, e);
        e = prev;
    }
    /* expired entries at the cold end go too */
    e = s->lru_tail;
    while (e) {
        entry *prev = e->lru_prev;
        if (!e->pending && now_s - e->stored_s > s->ttl_s)
            remove_entry(s, e);
        e = prev;
        if (e && !e->pending && now_s - e->stored_s <= s->ttl_s)
            break;
    }
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Wall-clock seconds: the durable store's leases are compared across processes. */
static double wall_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

tdm_status tdm_gw_idem_attach_db(tdm_gw_idem *s, const char *path, double lease_s, tdm_err *err)
{
    return tdm_gw_idem_db_open(path, lease_s, &s->db, err);
}

tdm_gw_idem_result tdm_gw_idem_begin(tdm_gw_idem *s, const char *key, double now_s, double wait_s,
                                     int *status, char **body, size_t *body_len)
{
    if (s->db)
        return tdm_gw_idem_db_begin(s->db, key, wall_s(), wait_s, status, body, body_len);
    uint64_t h = hash_key(key);
    double give_up = mono_s() + wait_s;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        entry *e = find(s, key, h);
        if (e && !e->pending && now_s - e->stored_s > s->ttl_s) {
            remove_entry(s, e);
            e = NULL;
        }
        if (!e) {
            evict(s, now_s);
            e = calloc(1, sizeof *e);
            char *k = strdup(key);
            if (!e || !k) {
                /* out of memory: run without idempotency protection rather than fail */
                free(e);
                free(k);
                pthread_mutex_unlock(&s->mu);
                return TDM_GW_IDEM_RUN;
            }
            e->key = k;
            e->hash = h;
            e->pending = true;
            size_t b = h & (s->n_buckets - 1);
            e->next_hash = s->buckets[b];
            s->buckets[b] = e;
            lru_push(s, e);
            s->count++;
            pthread_mutex_unlock(&s->mu);
            return TDM_GW_IDEM_RUN;
        }
        if (!e->pending) {
            char *copy = malloc(e->body_len + 1);
            if (!copy) {
                pthread_mutex_unlock(&s->mu);
                return TDM_GW_IDEM_BUSY;
            }
            memcpy(copy, e->body, e->body_len);
            copy[e->body_len] = '\0';
            *status = e->status;
            *body = copy;
            *body_len = e->body_len;
            lru_unlink(s, e);
            lru_push(s, e);
            pthread_mutex_unlock(&s->mu);
            return TDM_GW_IDEM_STORED;
        }
        double left = give_up - mono_s();
        if (left <= 0) {
            pthread_mutex_unlock(&s->mu);
            return TDM_GW_IDEM_BUSY;
        }
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        double t = (double)ts.tv_sec + ts.tv_nsec * 1e-9 + left;
        ts.tv_sec = (time_t)t;
        ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
        pthread_cond_timedwait(&s->cv, &s->mu, &ts);
    }
}

bool tdm_gw_idem_final(int status)
{
    return status >= 200 && status < 500 && status != 408 && status != 409 && status != 425 &&
           status != 429 && status != 499;
}

void tdm_gw_idem_finish(tdm_gw_idem *s, const char *key, double now_s, int status, const char *body,
                        size_t body_len)
{
    if (!tdm_gw_idem_final(status)) {
        tdm_gw_idem_abandon(s, key);
        return;
    }
    if (s->db) {
        tdm_gw_idem_db_finish(s->db, key, wall_s(), status, body, body_len);
        return;
    }
    uint64_t h = hash_key(key);
    char *copy = malloc(body_len ? body_len : 1);
    pthread_mutex_lock(&s->mu);
    entry *e = find(s, key, h);
    if (e && e->pending) {
        if (!copy) {
            remove_entry(s, e);
        } else {
            memcpy(copy, body, body_len);
            e->body = copy;
            e->body_len = body_len;
            e->status = status;
            e->pending = false;
            e->stored_s = now_s;
            copy = NULL;
        }
    }
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    free(copy);
}

void tdm_gw_idem_abandon(tdm_gw_idem *s, const char *key)
{
    if (s->db) {
        tdm_gw_idem_db_abandon(s->db, key);
        return;
    }
    uint64_t h = hash_key(key);
    pthread_mutex_lock(&s->mu);
    entry *e = find(s, key, h);
    if (e && e->pending)
        remove_entry(s, e);
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

int tdm_gw_idem_count(tdm_gw_idem *s)
{
    pthread_mutex_lock(&s->mu);
    int n = s->count;
    pthread_mutex_unlock(&s->mu);
    return n;
}

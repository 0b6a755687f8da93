/*
 * Response cache: a chained hash table over SHA-256 keys plus an intrusive
 * doubly linked LRU list, under one mutex (design notes in respcache.h).
 *
 * The keys are already uniform hashes, so a bucket index is just the first
 * eight key bytes masked; the table doubles when entries outnumber buckets.
 * Each entry is one allocation: header, then the value bytes, then a NUL.
 */
#include "collab/respcache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/sha256.h"

typedef struct entry entry;
struct entry {
    entry *next_in_bucket;
    entry *lru_prev, *lru_next; /* lru_prev towards the most recently used end */
    uint8_t key[TDM_RESPCACHE_KEY_LEN];
    uint64_t expires_ms;
    size_t len;
    unsigned char data[]; /* len bytes + NUL */
};

struct tdm_respcache {
    pthread_mutex_t mu;
    entry **buckets;
    size_t n_buckets; /* power of two */
    entry *mru, *lru; /* list ends */
    size_t max_bytes;
    uint64_t default_ttl_ms;
    tdm_respcache_stats st;
};

static size_t cost_of(size_t len)
{
    return len + TDM_RESPCACHE_ENTRY_OVERHEAD;
}

tdm_status tdm_respcache_create(size_t max_bytes, uint64_t default_ttl_ms, tdm_respcache **out,
                                tdm_err *err)
{
    *out = NULL;
    if (max_bytes == 0)
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "response cache: max_bytes must be > 0");
    if (default_ttl_ms == 0)
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "response cache: the default TTL must be > 0");
    tdm_respcache *c = calloc(1, sizeof *c);
    if (!c)
        return tdm_errf(err, TDM_ERR_NOMEM, "response cache: out of memory");
    c->n_buckets = 64;
    c->buckets = calloc(c->n_buckets, sizeof *c->buckets);
    if (!c->buckets) {
        free(c);
        return tdm_errf(err, TDM_ERR_NOMEM, "response cache: out of memory");
    }
    pthread_mutex_init(&c->mu, NULL);
    c->max_bytes = max_bytes;
    c->default_ttl_ms = default_ttl_ms;
    c->st.max_bytes = max_bytes;
    *out = c;
    return TDM_OK;
}

void tdm_respcache_free(tdm_respcache *c)
{
    if (!c)
        return;
    for (entry *e = c->mru; e;) {
        entry *n = e->lru_next;
        free(e);
        e = n;
    }
    free(c->buckets);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static void hash_field(tdm_sha256_ctx *h, const void *p, size_t len)
{
    uint8_t n[8];
    for (int i = 0; i < 8; i++)
        n[i] = (uint8_t)((uint64_t)len >> (8 * i));
    tdm_sha256_update(h, n, sizeof n);
    if (len)
        tdm_sha256_update(h, p, len);
}

void tdm_respcache_key(const char *model, const char *version, const char *cut, const void *input,
                       size_t input_len, uint8_t key[TDM_RESPCACHE_KEY_LEN])
{
    tdm_sha256_ctx h;
    tdm_sha256_init(&h);
    hash_field(&h, "tandem-respcache-v1", 19);
    hash_field(&h, model ? model : "", model ? strlen(model) : 0);
    hash_field(&h, version ? version : "", version ? strlen(version) : 0);
    hash_field(&h, cut ? cut : "", cut ? strlen(cut) : 0);
    hash_field(&h, input, input_len);
    tdm_sha256_final(&h, key);
}

void tdm_respcache_key_tensors(const char *model, const char *version, const char *entry_name,
                               const tdm_tensor *inputs, int n, uint8_t key[TDM_RESPCACHE_KEY_LEN])
{
    tdm_sha256_ctx h;
    tdm_sha256_init(&h);
    hash_field(&h, "tandem-respcache-tensors-v1", 27);
    hash_field(&h, model ? model : "", model ? strlen(model) : 0);
    hash_field(&h, version ? version : "", version ? strlen(version) : 0);
    hash_field(&h, entry_name ? entry_name : "", entry_name ? strlen(entry_name) : 0);
    for (int i = 0; i < n; i++) {
        int64_t meta[2 + TDM_MAX_DIMS] = {(int64_t)inputs[i].dtype, inputs[i].ndim};
        for (int d = 0; d < inputs[i].ndim && d < TDM_MAX_DIMS; d++)
            meta[2 + d] = inputs[i].dims[d];
        hash_field(&h, meta, sizeof meta);
        hash_field(&h, inputs[i].data, inputs[i].data ? tdm_tensor_nbytes(&inputs[i]) : 0);
    }
    tdm_sha256_final(&h, key);
}

uint64_t tdm_respcache_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static size_t bucket_of(const tdm_respcache *c, const uint8_t *key)
{
    uint64_t h;
    memcpy(&h, key, sizeof h);
    return (size_t)(h & (c->n_buckets - 1));
}

static entry **find_slot(tdm_respcache *c, const uint8_t *key)
{
    entry **pp = &c->buckets[bucket_of(c, key)];
    while (*pp && memcmp((*pp)->key, key, TDM_RESPCACHE_KEY_LEN) != 0)
        pp = &(*pp)->next_in_bucket;
    return pp;
}

static void lru_unlink(tdm_respcache *c, entry *e)
{
    if (e->lru_prev)
        e->lru_prev->lru_next = e->lru_next;
    else
        c->mru = e->lru_next;
    if (e->lru_next)
        e->lru_next->lru_prev = e->lru_prev;
    else
        c->lru = e->lru_prev;
    e->lru_prev = e->lru_next = NULL;
}

static void lru_push_front(tdm_respcache *c, entry *e)
{
    e->lru_prev = NULL;
    e->lru_next = c->mru;
    if (c->mru)
        c->mru->lru_prev = e;
    c->mru = e;
    if (!c->lru)
        c->lru = e;
}

/* Unlinks e from its bucket and the list, frees it. */
static void drop(tdm_respcache *c, entry *e)
{
    entry **pp = find_slot(c, e->key);
    *pp = e->next_in_bucket;
    lru_unlink(c, e);
    c->st.entries--;
    c->st.bytes -= cost_of(e->len);
    free(e);
}

static void grow(tdm_respcache *c)
{
    size_t n = c->n_buckets * 2;
    entry **b = calloc(n, sizeof *b);
    if (!b)
        return; /* longer chains, still correct */
    for (size_t i = 0; i < c->n_buckets; i++) {
        for (entry *e = c->buckets[i]; e;) {
            entry *next = e->next_in_bucket;
            uint64_t h;
            memcpy(&h, e->key, sizeof h);
            size_t j = (size_t)(h & (n - 1));
            e->next_in_bucket = b[j];
            b[j] = e;
            e = next;
        }
    }
    free(c->buckets);
    c->buckets = b;
    c->n_buckets = n;
}

bool tdm_respcache_get(tdm_respcache *c, const uint8_t key[TDM_RESPCACHE_KEY_LEN], uint64_t now_ms,
                       tdm_respcache_value *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&c->mu);
    entry *e = *find_slot(c, key);
    if (e && e->expires_ms <= now_ms) {
        drop(c, e);
        c->st.expirations++;
        e = NULL;
    }
    bool hit = false;
    if (e) {
        out->data = malloc(e->len + 1);
        if (out->data) {
            memcpy(out->data, e->data, e->len + 1);
            out->len = e->len;
            out->expires_ms = e->expires_ms;
            lru_unlink(c, e);
            lru_push_front(c, e);
            hit = true;
        }
    }
    if (hit)
        c->st.hits++;
    else
        c->st.misses++;
    pthread_mutex_unlock(&c->mu);
    return hit;
}

void tdm_respcache_value_free(tdm_respcache_value *v)
{
    free(v->data);
    v->data = NULL;
    v->len = 0;
}

bool tdm_respcache_put(tdm_respcache *c, const uint8_t key[TDM_RESPCACHE_KEY_LEN], const void *data,
                       size_t len, uint64_t ttl_ms, uint64_t now_ms)
{
    if (len > c->max_bytes || cost_of(len) > c->max_bytes) {
        pthread_mutex_lock(&c->mu);
        c->st.rejected++;
        pthread_mutex_unlock(&c->mu);
        return false;
    }
    /* Allocate and fill outside the lock. */
    entry *n = malloc(sizeof *n + len + 1);
    if (!n)
        return false;
    memset(n, 0, sizeof *n);
    memcpy(n->key, key, TDM_RESPCACHE_KEY_LEN);
    if (len)
        memcpy(n->data, data, len);
    n->data[len] = 0;
    n->len = len;
    uint64_t ttl = ttl_ms ? ttl_ms : c->default_ttl_ms;
    n->expires_ms = now_ms > UINT64_MAX - ttl ? UINT64_MAX : now_ms + ttl;

    pthread_mutex_lock(&c->mu);
    entry *old = *find_slot(c, key);
    if (old)
        drop(c, old);
    while (c->st.bytes + cost_of(len) > c->max_bytes && c->lru) {
        entry *victim = c->lru;
        if (victim->expires_ms <= now_ms)
            c->st.expirations++;
        else
            c->st.evictions++;
        drop(c, victim);
    }
    entry **slot = &c->buckets[bucket_of(c, key)];
    n->next_in_bucket = *slot;
    *slot = n;
    lru_push_front(c, n);
    c->st.entries++;
    c->st.bytes += cost_of(len);
    c->st.inserts++;
    if (c->st.entries > c->n_buckets)
        grow(c);
    pthread_mutex_unlock(&c->mu);
    return true;
}

bool tdm_respcache_remove(tdm_respcache *c, const uint8_t key[TDM_RESPCACHE_KEY_LEN])
{
    pthread_mutex_lock(&c->mu);
    entry *e = *find_slot(c, key);
    bool found = e != NULL;
    if (e)
        drop(c, e);
    pthread_mutex_unlock(&c->mu);
    return found;
}

void tdm_respcache_get_stats(tdm_respcache *c, tdm_respcache_stats *out)
{
    pthread_mutex_lock(&c->mu);
    *out = c->st;
    pthread_mutex_unlock(&c->mu);
}

/*
 * A result cache shared by the gateway (responses) and the edge agent (exact hits):
 * content-hash keys, LRU order, a TTL per entry and a bound on the bytes held.
 *
 * FOR THE INFER/FEATURES HANDLERS (gateway core): the cache is the module
 * "respcache" (tdm_gw_module_state(req->gw, "respcache") returns the
 * tdm_respcache *, NULL when the config's cache.max_bytes is 0). Per request:
 *
 *     uint8_t key[TDM_RESPCACHE_KEY_LEN];
 *     tdm_respcache_key_tensors(v->model, v->version, e->name, inputs, n_in, key);
 *     tdm_respcache_value hit;
 *     if (tdm_respcache_get(rc, key, tdm_respcache_now_ms(), &hit)) {
 *         ... answer with hit.data[0..hit.len) (the stored result), add "X-Cache: hit" ...
 *         tdm_respcache_value_free(&hit);
 *     } else {
 *         ... run the model ...
 *         tdm_respcache_put(rc, key, result, result_len, 0, tdm_respcache_now_ms()); // 0: default
 * TTL
 *     }
 *
 * Keys hash every field with its length in front, so ("ab","c") and ("a","bc")
 * differ. Values are copied in and out: a caller never holds a pointer into
 * the cache, so eviction needs no reference counts and a reader never sees a
 * half-replaced value. One mutex guards the table; the critical sections are a
 * hash probe and a memcpy, far shorter than any model run.
 *
 * Time is a parameter (milliseconds of a monotonic clock) so that tests can
 * step it; tdm_respcache_now_ms() is the clock to use in the gateway.
 *
 * Accounting: an entry costs its value bytes plus a fixed overhead
 * (TDM_RESPCACHE_ENTRY_OVERHEAD), so many tiny entries cannot exceed the bound
 * either. A value larger than the whole bound is not stored.
 */
#ifndef TANDEM_COLLAB_RESPCACHE_H
#define TANDEM_COLLAB_RESPCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tandem/status.h"
#include "tandem/tensor.h"

#define TDM_RESPCACHE_KEY_LEN 32
#define TDM_RESPCACHE_ENTRY_OVERHEAD 128

typedef struct tdm_respcache tdm_respcache;

typedef struct tdm_respcache_stats {
    uint64_t hits, misses, inserts, evictions, expirations, rejected;
    size_t entries, bytes, max_bytes;
} tdm_respcache_stats;

typedef struct tdm_respcache_value {
    void *data; /* malloc'ed copy, NUL-terminated for convenience (not counted in len) */
    size_t len;
    uint64_t expires_ms; /* when the entry expires (the caller's clock) */
} tdm_respcache_value;

/*
 * max_bytes > 0 bounds the memory held; default_ttl_ms > 0 is used when put is
 * given ttl 0.
 */
tdm_status tdm_respcache_create(size_t max_bytes, uint64_t default_ttl_ms, tdm_respcache **out,
                                tdm_err *err);
void tdm_respcache_free(tdm_respcache *c);

/* The key of (model, version, cut, input bytes). */
void tdm_respcache_key(const char *model, const char *version, const char *cut, const void *input,
                       size_t input_len, uint8_t key[TDM_RESPCACHE_KEY_LEN]);

/* The key of (model, version, entry_name, n input tensors): dtype, shape and bytes of each, so
 * the same values sent as a different encoding (JSON base64 .npy or codec frames) hit. */
void tdm_respcache_key_tensors(const char *model, const char *version, const char *entry_name,
                               const tdm_tensor *inputs, int n, uint8_t key[TDM_RESPCACHE_KEY_LEN]);

/* Milliseconds of CLOCK_MONOTONIC. */
uint64_t tdm_respcache_now_ms(void);

/* A hit copies the value into *out (free with tdm_respcache_value_free) and makes the
 * entry most recently used. An expired entry is removed and reported as a miss. False also
 * when the copy cannot be allocated. */
bool tdm_respcache_get(tdm_respcache *c, const uint8_t key[TDM_RESPCACHE_KEY_LEN], uint64_t now_ms,
                       tdm_respcache_value *out);
void tdm_respcache_value_free(tdm_respcache_value *v);

/*
 * Stores a copy (replacing an entry with the same key), evicting least
 * recently used entries until it fits (expired entries go when a get touches
 * them or when they reach the LRU end). ttl_ms 0 = the
 * default TTL. Returns false when the value was not stored (larger than the
 * bound, or out of memory): a cache may always decline.
 */
bool tdm_respcache_put(tdm_respcache *c, const uint8_t key[TDM_RESPCACHE_KEY_LEN], const void *data,
                       size_t len, uint64_t ttl_ms, uint64_t now_ms);

/* Removes an entry; true when there was one. */
bool tdm_respcache_remove(tdm_respcache *c, const uint8_t key[TDM_RESPCACHE_KEY_LEN]);

void tdm_respcache_get_stats(tdm_respcache *c, tdm_respcache_stats *out);

#endif

/*
 * A similarity cache: results keyed by a feature vector, answered for any
 * later vector whose cosine similarity to a stored one reaches a threshold.
 *
 * On the edge, consecutive camera frames or re-asked questions differ in
 * bytes but not in meaning; an exact (content-hash) cache misses them, a
 * similarity cache on the cut features or the sentence embedding does not.
 * A wrong hit costs accuracy, so the threshold is the user's to set (0.99 is
 * conservative for pooled CNN features) and the hit rate is reported.
 *
 * Vectors are stored L2-normalised, so cosine is a dot product; lookup is a
 * linear scan, which for the few thousand entries an edge cache holds costs
 * microseconds and needs no index to keep consistent under eviction. Entries
 * have a TTL and the whole cache a byte bound (vectors + results + a fixed
 * per-entry overhead); the least recently used entry goes first. Values are
 * copied in and out. Thread-safe (one mutex).
 */
#ifndef TANDEM_COLLAB_SIMCACHE_H
#define TANDEM_COLLAB_SIMCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tandem/status.h"

typedef struct tdm_simcache tdm_simcache;

typedef struct tdm_simcache_stats {
    uint64_t hits, misses, inserts, evictions, expirations;
    size_t entries, bytes;
} tdm_simcache_stats;

/* dim: vector length; threshold: cosine in (0, 1]; ttl_ms > 0; max_bytes > 0. */
tdm_status tdm_simcache_create(int dim, double threshold, uint64_t ttl_ms, size_t max_bytes,
                               tdm_simcache **out, tdm_err *err);
void tdm_simcache_free(tdm_simcache *c);

/*
 * Finds the most similar live entry. On a hit (similarity >= threshold)
 * copies its value into *value (malloc'd, NUL-terminated; free it) and
 * returns true with *similarity set. A zero vector never hits.
 */
bool tdm_simcache_get(tdm_simcache *c, const float *vec, uint64_t now_ms, char **value, size_t *len,
                      double *similarity);

/* Stores a copy of (vec, value); false when it cannot (too large, zero vector, no memory). */
bool tdm_simcache_put(tdm_simcache *c, const float *vec, const void *value, size_t len,
                      uint64_t now_ms);

void tdm_simcache_get_stats(tdm_simcache *c, tdm_simcache_stats *st);

#endif

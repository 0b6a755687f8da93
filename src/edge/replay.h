/*
 * The edge agent's durable replay queue: requests that could not be sent (no
 * endpoint reachable, or the policy deferred them) wait here, on disk, until
 * the cloud is back.
 *
 * Promises, in order of importance:
 *  1. Nothing accepted is lost: tdm_replay_push returns only after the entry
 *     is committed with SQLite in WAL mode and synchronous=FULL, i.e. after
 *     fsync; a crash (kill -9, power) after that keeps it.
 *  2. Exactly once in the cloud: every entry carries the idempotency key it
 *     was created with, and keeps it across restarts, so a resend after the
 *     agent died between send and acknowledgement is answered by the
 *     gateway from its idempotency store and runs nothing twice.
 *  3. Bounded: entries older than max_age_s are dropped, and beyond
 *     max_bytes of payload the oldest are dropped; both are counted, and a
 *     dropped request's status says so, so the app is never left guessing.
 *
 * A delivered entry keeps its result (for polling by request id) until it
 * ages out; its payload is freed at once. One tdm_replay is used by one
 * thread at a time (the agent serialises calls); several processes must not
 * share a file.
 */
#ifndef TANDEM_EDGE_REPLAY_H
#define TANDEM_EDGE_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#include "tandem/status.h"

typedef struct tdm_replay tdm_replay;

typedef struct tdm_replay_options {
    double max_age_s;   /* default 24 h */
    uint64_t max_bytes; /* payload bytes kept queued; default 256 MiB */
} tdm_replay_options;

typedef enum tdm_replay_state {
    TDM_REPLAY_UNKNOWN = 0, /* no such request id */
    TDM_REPLAY_QUEUED,
    TDM_REPLAY_DELIVERED,
    TDM_REPLAY_DROPPED, /* aged out or pushed out by the byte bound */
} tdm_replay_state;

/* One queued request. Strings are NUL-terminated; payload is opaque bytes. */
typedef struct tdm_replay_entry {
    int64_t seq; /* assigned by push; order of arrival */
    char request_id[64];
    char idem_key[80];
    char route[256]; /* e.g. "/v1/features?model=fmnist&version=1&cut=2" */
    char content_type[64];
    double created_s;  /* wall-clock seconds (Unix time) */
    double deadline_s; /* absolute, Unix time; 0 = none */
    uint32_t attempts;
    const void *payload; /* points into memory owned by the queue until the next call */
    size_t payload_len;
} tdm_replay_entry;

typedef struct tdm_replay_stats {
    uint64_t queued;        /* entries waiting now */
    uint64_t queued_bytes;  /* their payload bytes */
    uint64_t delivered;     /* total since the file was created */
    uint64_t dropped_age;   /* aged out */
    uint64_t dropped_bytes; /* pushed out by the byte bound */
} tdm_replay_stats;

/* Opens (creating when absent) the queue file at path. */
tdm_status tdm_replay_open(const char *path, const tdm_replay_options *opt, tdm_replay **out,
                           tdm_err *err);
void tdm_replay_close(tdm_replay *q);

/*
 * Appends e (its seq and attempts are ignored) durably; e->request_id must
 * be unique. Applies the age and byte bounds afterwards, which may drop the
 * oldest entries (never this one unless it alone exceeds max_bytes, which is
 * refused with TDM_ERR_INVALID_ARG instead). now_s is the current Unix time.
 */
tdm_status tdm_replay_push(tdm_replay *q, const tdm_replay_entry *e, double now_s, tdm_err *err);

/*
 * The oldest queued entry with seq > after_seq, or TDM_ERR_NOT_FOUND when
 * none. Its payload stays valid until the next call on q. Draining walks
 * the queue with after_seq = the previous entry's seq.
 */
tdm_status tdm_replay_next(tdm_replay *q, int64_t after_seq, tdm_replay_entry *out, tdm_err *err);

/* Counts one more send attempt of seq (kept across restarts). */
tdm_status tdm_replay_attempted(tdm_replay *q, int64_t seq, tdm_err *err);

/*
 * Marks seq delivered with the gateway's answer (stored for polling) and
 * frees its payload, durably. Acknowledging twice is harmless.
 */
tdm_status tdm_replay_ack(tdm_replay *q, int64_t seq, const char *result, size_t result_len,
                          tdm_err *err);

/*
 * The state of a request by id; when delivered and result is not NULL,
 * *result receives a malloc'd NUL-terminated copy of the answer.
 */
tdm_status tdm_replay_lookup(tdm_replay *q, const char *request_id, tdm_replay_state *state,
                             char **result, tdm_err *err);

/* Drops what is older than max_age_s (queued or delivered) as of now_s. */
tdm_status tdm_replay_expire(tdm_replay *q, double now_s, tdm_err *err);

tdm_status tdm_replay_get_stats(tdm_replay *q, tdm_replay_stats *st, tdm_err *err);

#endif

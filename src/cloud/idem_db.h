/*
 * The durable idempotency store: the same contract as idempotency.h, kept in
 * a SQLite file so that it survives a gateway crash and is shared by every
 * gateway process that opens the same file (the fleet on one host, or a
 * shared volume). This is what makes "exactly once in the cloud" hold when a
 * gateway dies between running a request and answering it: the answer was
 * committed before it was sent, so the edge's resend (to this gateway after
 * its restart, or to another one) gets the stored answer.
 *
 * A key is claimed by inserting a "running" row with the claimant's owner
 * id and a lease; a claim whose lease has expired (its gateway died
 * mid-run) may be taken over. Finishing stores the answer and counts a
 * completion; a second completion of the same key (possible only after a
 * lease takeover of a run that in fact finished) keeps the first answer and
 * is counted as a duplicate, so tests can prove there were none.
 *
 * Commits use WAL with synchronous=NORMAL: a committed answer survives a
 * process crash (kill -9), which is the failure this store is for; a power
 * loss may lose the last few, in which case the request runs again.
 */
#ifndef TANDEM_CLOUD_IDEM_DB_H
#define TANDEM_CLOUD_IDEM_DB_H

#include <stddef.h>
#include <stdint.h>

#include "cloud/idempotency.h"
#include "tandem/status.h"

typedef struct tdm_gw_idem_db tdm_gw_idem_db;

typedef struct tdm_gw_idem_db_stats {
    int64_t keys;        /* stored answers */
    int64_t running;     /* claims in progress */
    int64_t completions; /* runs that finished and stored (or tried to store) an answer */
    int64_t duplicates;  /* keys that completed more than once */
} tdm_gw_idem_db_stats;

/* Opens (creating) the store at path; lease_s bounds how long a claim lives without an answer. */
tdm_status tdm_gw_idem_db_open(const char *path, double lease_s, tdm_gw_idem_db **out,
                               tdm_err *err);
void tdm_gw_idem_db_close(tdm_gw_idem_db *db);

/* As tdm_gw_idem_begin. Storage errors answer RUN: availability over deduplication. */
tdm_gw_idem_result tdm_gw_idem_db_begin(tdm_gw_idem_db *db, const char *key, double now_s,
                                        double wait_s, int *status, char **body, size_t *body_len);
void tdm_gw_idem_db_finish(tdm_gw_idem_db *db, const char *key, double now_s, int status,
                           const char *body, size_t body_len);
void tdm_gw_idem_db_abandon(tdm_gw_idem_db *db, const char *key);
/* Drops stored answers older than ttl_s. */
void tdm_gw_idem_db_expire(tdm_gw_idem_db *db, double now_s, double ttl_s);
tdm_status tdm_gw_idem_db_stats_get(tdm_gw_idem_db *db, tdm_gw_idem_db_stats *st, tdm_err *err);

#endif

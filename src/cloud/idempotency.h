/*
 * Idempotency keys: the same key twice returns the first answer without running the model
 * again.
 *
 * An edge device that lost a response retries with the same Idempotency-Key; the cloud must
 * not compute twice (cost) nor answer differently (a replayed decision must match the one the
 * device may already have acted on). The store maps key -> stored response (status + body),
 * bounded in entries with least-recently-used eviction and a TTL. A duplicate that arrives
 * while the first is still running waits for it rather than running in parallel. Answers
 * that are not the request's own outcome are not stored, so a retry runs again: 5xx (504
 * included), 408, 409, 425, 429 and 499 (the client went away, e.g. an agent killed
 * mid-request: its resend must run, not replay "client closed").
 */
#ifndef TANDEM_CLOUD_IDEMPOTENCY_H
#define TANDEM_CLOUD_IDEMPOTENCY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tandem/status.h"

typedef struct tdm_gw_idem tdm_gw_idem;

tdm_status tdm_gw_idem_create(int capacity, double ttl_s, tdm_gw_idem **out, tdm_err *err);
void tdm_gw_idem_free(tdm_gw_idem *s);

typedef enum tdm_gw_idem_result {
    TDM_GW_IDEM_RUN,    /* first sight: the caller runs and then calls _finish or _abandon */
    TDM_GW_IDEM_STORED, /* *status and *body (malloc'd, caller frees) hold the first answer */
    TDM_GW_IDEM_BUSY,   /* waited too long for a concurrent duplicate (answer 409) */
} tdm_gw_idem_result;

/*
 * Looks key up. A concurrent duplicate waits up to wait_s for the first to finish. now_s is
 * the caller's clock (seconds), so tests can drive expiry.
 */
tdm_gw_idem_result tdm_gw_idem_begin(tdm_gw_idem *s, const char *key, double now_s, double wait_s,
                                     int *status, char **body, size_t *body_len);
/* True for an answer that is the request's own outcome and so may be replayed (see above). */
bool tdm_gw_idem_final(int status);
/* Stores the answer of a key begun with RUN (one that is not final is forgotten instead). */
void tdm_gw_idem_finish(tdm_gw_idem *s, const char *key, double now_s, int status, const char *body,
                        size_t body_len);
/* Forgets a key begun with RUN without an answer (waiters then run themselves). */
void tdm_gw_idem_abandon(tdm_gw_idem *s, const char *key);
/*
 * Keeps keys in a durable SQLite store instead of memory (cloud/idem_db.h): answers survive
 * a crash and are shared with every gateway that opens the same file.
 */
tdm_status tdm_gw_idem_attach_db(tdm_gw_idem *s, const char *path, double lease_s, tdm_err *err);
/* Stored entries in memory (for tests and metrics). */
int tdm_gw_idem_count(tdm_gw_idem *s);

#endif

/*
 * The durable idempotency store on SQLite (see idem_db.h).
 *
 * Every state change is one short IMMEDIATE transaction, so gateways in
 * several processes serialise on the file's write lock rather than on
 * anything in memory; a waiting duplicate polls (10 ms) instead of holding a
 * transaction open. One connection per store, guarded by a mutex, since the
 * gateway's connection threads share it.
 */
#include "cloud/idem_db.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "cloud/idempotency.h"

enum { ST_RUNNING = 1, ST_DONE = 2 };

struct tdm_gw_idem_db {
    pthread_mutex_t mu;
    sqlite3 *db;
    double lease_s;
    char owner[64]; /* pid + start time: unique per gateway process */
};

static const char k_schema[] = "PRAGMA journal_mode=WAL;"
                               "PRAGMA synchronous=NORMAL;"
                               "CREATE TABLE IF NOT EXISTS idem("
                               " key TEXT PRIMARY KEY,"
                               " state INTEGER NOT NULL,"
                               " owner TEXT NOT NULL,"
                               " lease REAL NOT NULL,"
                               " status INTEGER NOT NULL DEFAULT 0,"
                               " body BLOB,"
                               " completions INTEGER NOT NULL DEFAULT 0,"
                               " created REAL NOT NULL);";

tdm_status tdm_gw_idem_db_open(const char *path, double lease_s, tdm_gw_idem_db **out, tdm_err *err)
{
    *out = NULL;
    tdm_gw_idem_db *d = calloc(1, sizeof *d);
    if (d == NULL)
        return tdm_errf(err, TDM_ERR_NOMEM, "idempotency store: out of memory");
    pthread_mutex_init(&d->mu, NULL);
    d->lease_s = lease_s > 0 ? lease_s : 30;
    snprintf(d->owner, sizeof d->owner, "%ld-%llu", (long)getpid(),
             (unsigned long long)tdm_now_ns());
    char *msg = NULL;
    if (sqlite3_open_v2(path, &d->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
            SQLITE_OK ||
        sqlite3_busy_timeout(d->db, 10000) != SQLITE_OK ||
        sqlite3_exec(d->db, k_schema, NULL, NULL, &msg) != SQLITE_OK) {
        tdm_status st = tdm_errf(err, TDM_ERR_IO, "idempotency store %s: %s", path,
                                 msg     ? msg
                                 : d->db ? sqlite3_errmsg(d->db)
                                         : "cannot open");
        sqlite3_free(msg);
        tdm_gw_idem_db_close(d);
        return st;
    }
    *out = d;
    return TDM_OK;
}

void tdm_gw_idem_db_close(tdm_gw_idem_db *d)
{
    if (d == NULL)
        return;
    sqlite3_close(d->db);
    pthread_mutex_destroy(&d->mu);
    free(d);
}

static bool exec(tdm_gw_idem_db *d, const char *sql)
{
    return sqlite3_exec(d->db, sql, NULL, NULL, NULL) == SQLITE_OK;
}

/* One attempt to claim or read key. Returns -1 on a storage error. */
static int try_begin(tdm_gw_idem_db *d, const char *key, double now, int *status, char **body,
                     size_t *body_len)
{
    if (!exec(d, "BEGIN IMMEDIATE"))
        return -1;
    sqlite3_stmt *s = NULL;
    int result = -1;
    if (sqlite3_prepare_v2(d->db, "SELECT state, lease, status, body FROM idem WHERE key = ?1", -1,
                           &s, NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    const char *claim = NULL;
    if (rc == SQLITE_DONE) {
        claim = "INSERT INTO idem(key, state, owner, lease, created) VALUES(?1, 1, ?2, ?3, ?4)";
    } else if (rc == SQLITE_ROW) {
        int state = sqlite3_column_int(s, 0);
        double lease = sqlite3_column_double(s, 1);
        if (state == ST_DONE) {
            size_t n = (size_t)sqlite3_column_bytes(s, 3);
            char *b = malloc(n + 1);
            if (b == NULL)
                goto out;
            if (n)
                memcpy(b, sqlite3_column_blob(s, 3), n);
            b[n] = '\0';
            *status = sqlite3_column_int(s, 2);
            *body = b;
            *body_len = n;
            result = TDM_GW_IDEM_STORED;
            goto out;
        }
        if (lease >= now) {
            result = TDM_GW_IDEM_BUSY; /* alive elsewhere: the caller waits */
            goto out;
        }
        /* The claimant died mid-run (its lease ran out): take the claim over. */
        claim = "UPDATE idem SET owner = ?2, lease = ?3 WHERE key = ?1";
    } else {
        goto out;
    }
    sqlite3_finalize(s);
    s = NULL;
    if (sqlite3_prepare_v2(d->db, claim, -1, &s, NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, d->owner, -1, SQLITE_STATIC);
    sqlite3_bind_double(s, 3, now + d->lease_s);
    sqlite3_bind_double(s, 4, now);
    if (sqlite3_step(s) == SQLITE_DONE)
        result = TDM_GW_IDEM_RUN;
out:
    sqlite3_finalize(s);
    if (result < 0 || !exec(d, "COMMIT")) {
        exec(d, "ROLLBACK");
        if (result == TDM_GW_IDEM_STORED)
            free(*body);
        return -1;
    }
    return result;
}

tdm_gw_idem_result tdm_gw_idem_db_begin(tdm_gw_idem_db *d, const char *key, double now_s,
                                        double wait_s, int *status, char **body, size_t *body_len)
{
    *body = NULL;
    *body_len = 0;
    uint64_t t0 = tdm_now_ns();
    for (;;) {
        double now = now_s + (double)(tdm_now_ns() - t0) / 1e9;
        pthread_mutex_lock(&d->mu);
        int r = try_begin(d, key, now, status, body, body_len);
        pthread_mutex_unlock(&d->mu);
        if (r < 0)
            return TDM_GW_IDEM_RUN; /* the store is unusable: serve rather than refuse */
        if (r != TDM_GW_IDEM_BUSY)
            return (tdm_gw_idem_result)r;
        if ((double)(tdm_now_ns() - t0) / 1e9 >= wait_s)
            return TDM_GW_IDEM_BUSY;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

void tdm_gw_idem_db_finish(tdm_gw_idem_db *d, const char *key, double now_s, int status,
                           const char *body, size_t body_len)
{
    if (!tdm_gw_idem_final(status)) {
        tdm_gw_idem_db_abandon(d, key);
        return;
    }
    pthread_mutex_lock(&d->mu);
    sqlite3_stmt *s = NULL;
    /* A row already done means another claimant finished first: keep its answer, count ours. */
    const char *sql =
        "UPDATE idem SET state = 2, status = CASE state WHEN 2 THEN status ELSE ?2 END,"
        " body = CASE state WHEN 2 THEN body ELSE ?3 END,"
        " completions = completions + 1, created = ?4 WHERE key = ?1";
    if (sqlite3_prepare_v2(d->db, sql, -1, &s, NULL) == SQLITE_OK) {
        sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
        sqlite3_bind_int(s, 2, status);
        sqlite3_bind_blob64(s, 3, body ? body : "", body ? body_len : 0, SQLITE_STATIC);
        sqlite3_bind_double(s, 4, now_s);
        sqlite3_step(s);
    }
    sqlite3_finalize(s);
    pthread_mutex_unlock(&d->mu);
}

void tdm_gw_idem_db_abandon(tdm_gw_idem_db *d, const char *key)
{
    pthread_mutex_lock(&d->mu);
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(d->db, "DELETE FROM idem WHERE key = ?1 AND state = 1 AND owner = ?2",
                           -1, &s, NULL) == SQLITE_OK) {
        sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, d->owner, -1, SQLITE_STATIC);
        sqlite3_step(s);
    }
    sqlite3_finalize(s);
    pthread_mutex_unlock(&d->mu);
}

void tdm_gw_idem_db_expire(tdm_gw_idem_db *d, double now_s, double ttl_s)
{
    pthread_mutex_lock(&d->mu);
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(d->db, "DELETE FROM idem WHERE state = 2 AND created < ?1", -1, &s,
                           NULL) == SQLITE_OK) {
        sqlite3_bind_double(s, 1, now_s - ttl_s);
        sqlite3_step(s);
    }
    sqlite3_finalize(s);
    pthread_mutex_unlock(&d->mu);
}

tdm_status tdm_gw_idem_db_stats_get(tdm_gw_idem_db *d, tdm_gw_idem_db_stats *st, tdm_err *err)
{
    memset(st, 0, sizeof *st);
    pthread_mutex_lock(&d->mu);
    sqlite3_stmt *s = NULL;
    tdm_status r = TDM_OK;
    if (sqlite3_prepare_v2(d->db,
                           "SELECT coalesce(sum(state = 2), 0), coalesce(sum(state = 1), 0),"
                           " coalesce(sum(completions), 0), coalesce(sum(completions > 1), 0)"
                           " FROM idem",
                           -1, &s, NULL) != SQLITE_OK ||
        sqlite3_step(s) != SQLITE_ROW) {
        r = tdm_errf(err, TDM_ERR_IO, "idempotency store: %s", sqlite3_errmsg(d->db));
    } else {
        st->keys = sqlite3_column_int64(s, 0);
        st->running = sqlite3_column_int64(s, 1);
        st->completions = sqlite3_column_int64(s, 2);
        st->duplicates = sqlite3_column_int64(s, 3);
    }
    sqlite3_finalize(s);
    pthread_mutex_unlock(&d->mu);
    return r;
}

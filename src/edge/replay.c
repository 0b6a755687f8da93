/*
 * The replay queue on SQLite (see replay.h for its promises).
 *
 * One table holds every request the queue has seen, with a state column
 * (queued, delivered, dropped) rather than separate tables, so that a state
 * change is one UPDATE inside one transaction and a request id can always be
 * looked up. Payloads are BLOBs set to NULL once delivered or dropped.
 * Counters that must survive restarts (delivered, dropped by age, dropped by
 * bytes) live in a small meta table updated in the same transactions.
 *
 * Durability: WAL mode with synchronous=FULL makes every COMMIT fsync the
 * log, which is the point at which push returns. Statements are prepared
 * once per open handle.
 */
#include "edge/replay.h"

#include <assert.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { ST_QUEUED = 1, ST_DELIVERED = 2, ST_DROPPED = 3 };

enum {
    Q_INSERT,
    Q_NEXT,
    Q_ATTEMPT,
    Q_ACK,
    Q_LOOKUP,
    Q_QUEUED_BYTES,
    Q_OLDEST_QUEUED,
    Q_DROP_ONE,
    Q_AGE_DROP,
    Q_AGE_DELETE,
    Q_META_ADD,
    Q_META_GET,
    Q_N
};

static const char *const k_sql[Q_N] = {
    [Q_INSERT] = "INSERT INTO entries(request_id, idem_key, route, content_type, created, deadline,"
                 " state, payload, payload_len) VALUES(?1, ?2, ?3, ?4, ?5, ?6, 1, ?7, ?8)",
    [Q_NEXT] = "SELECT seq, request_id, idem_key, route, content_type, created, deadline, attempts,"
               " payload FROM entries WHERE state = 1 AND seq > ?1 ORDER BY seq LIMIT 1",
    [Q_ATTEMPT] = "UPDATE entries SET attempts = attempts + 1 WHERE seq = ?1",
    [Q_ACK] =
        "UPDATE entries SET state = 2, payload = NULL, result = ?2 WHERE seq = ?1 AND state = 1",
    [Q_LOOKUP] = "SELECT state, result FROM entries WHERE request_id = ?1",
    [Q_QUEUED_BYTES] =
        "SELECT count(*), coalesce(sum(payload_len), 0) FROM entries WHERE state = 1",
    [Q_OLDEST_QUEUED] = "SELECT seq, payload_len FROM entries WHERE state = 1 AND seq <> ?1"
                        " ORDER BY seq LIMIT 1",
    [Q_DROP_ONE] = "UPDATE entries SET state = 3, payload = NULL WHERE seq = ?1",
    [Q_AGE_DROP] = "UPDATE entries SET state = 3, payload = NULL WHERE state = 1 AND created < ?1",
    [Q_AGE_DELETE] = "DELETE FROM entries WHERE state <> 1 AND created < ?1",
    [Q_META_ADD] = "INSERT INTO meta(k, v) VALUES(?1, ?2)"
                   " ON CONFLICT(k) DO UPDATE SET v = v + excluded.v",
    [Q_META_GET] = "SELECT v FROM meta WHERE k = ?1",
};

static const char k_schema[] =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=FULL;"
    "CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS entries("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " request_id TEXT NOT NULL UNIQUE,"
    " idem_key TEXT NOT NULL,"
    " route TEXT NOT NULL,"
    " content_type TEXT NOT NULL,"
    " created REAL NOT NULL,"
    " deadline REAL NOT NULL,"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " state INTEGER NOT NULL,"
    " payload BLOB,"
    " payload_len INTEGER NOT NULL,"
    " result BLOB);"
    "CREATE INDEX IF NOT EXISTS entries_state ON entries(state, seq);";

struct tdm_replay {
    sqlite3 *db;
    sqlite3_stmt *st[Q_N];
    tdm_replay_options opt;
    void *payload; /* copy handed out by tdm_replay_next */
};

static tdm_status db_fail(tdm_replay *q, tdm_err *err, const char *what)
{
    return tdm_errf(err, TDM_ERR_IO, "replay queue: %s: %s", what, sqlite3_errmsg(q->db));
}

static tdm_status exec(tdm_replay *q, const char *sql, tdm_err *err)
{
    char *msg = NULL;
    if (sqlite3_exec(q->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        tdm_status s = tdm_errf(err, TDM_ERR_IO, "replay queue: %s: %s", sql, msg ? msg : "?");
        sqlite3_free(msg);
        return s;
    }
    return TDM_OK;
}

/* Runs a prepared statement with no result rows; resets it afterwards. */
static int step_done(sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int meta_add(tdm_replay *q, const char *key, int64_t v)
{
    sqlite3_stmt *s = q->st[Q_META_ADD];
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, v);
    return step_done(s);
}

static int64_t meta_get(tdm_replay *q, const char *key)
{
    sqlite3_stmt *s = q->st[Q_META_GET];
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    int64_t v = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_reset(s);
    return v;
}

tdm_status tdm_replay_open(const char *path, const tdm_replay_options *opt, tdm_replay **out,
                           tdm_err *err)
{
    *out = NULL;
    tdm_replay *q = calloc(1, sizeof *q);
    if (q == NULL)
        return tdm_errf(err, TDM_ERR_NOMEM, "replay queue: out of memory");
    q->opt.max_age_s = opt && opt->max_age_s > 0 ? opt->max_age_s : 24 * 3600.0;
    q->opt.max_bytes = opt && opt->max_bytes > 0 ? opt->max_bytes : (uint64_t)256 << 20;
    tdm_status st = TDM_OK;
    if (sqlite3_open_v2(path, &q->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        st = tdm_errf(err, TDM_ERR_IO, "replay queue %s: %s", path,
                      q->db ? sqlite3_errmsg(q->db) : "cannot open");
        goto fail;
    }
    /* Another agent holding the file briefly (a checkpoint) should not fail a push. */
    sqlite3_busy_timeout(q->db, 5000);
    if ((st = exec(q, k_schema, err)) != TDM_OK) {
        tdm_err_prefix(err, "%s: ", path);
        goto fail;
    }
    for (int i = 0; i < Q_N; i++)
        if (sqlite3_prepare_v2(q->db, k_sql[i], -1, &q->st[i], NULL) != SQLITE_OK) {
            st = db_fail(q, err, k_sql[i]);
            tdm_err_prefix(err, "%s: ", path);
            goto fail;
        }
    *out = q;
    return TDM_OK;
fail:
    tdm_replay_close(q);
    return st;
}

void tdm_replay_close(tdm_replay *q)
{
    if (q == NULL)
        return;
    for (int i = 0; i < Q_N; i++)
        sqlite3_finalize(q->st[i]);
    sqlite3_close(q->db);
    free(q->payload);
    free(q);
}

static bool fits(const char *s, size_t cap)
{
    return s != NULL && strlen(s) < cap;
}

/* Drops the oldest queued entries (never keep_seq) until the bytes fit. */
static int enforce_bytes(tdm_replay *q, int64_t keep_seq)
{
    sqlite3_stmt *sb = q->st[Q_QUEUED_BYTES];
    if (sqlite3_step(sb) != SQLITE_ROW) {
        sqlite3_reset(sb);
        return SQLITE_ERROR;
    }
    uint64_t bytes = (uint64_t)sqlite3_column_int64(sb, 1);
    sqlite3_reset(sb);
    int64_t dropped = 0;
    while (bytes > q->opt.max_bytes) {
        sqlite3_stmt *so = q->st[Q_OLDEST_QUEUED];
        sqlite3_bind_int64(so, 1, keep_seq);
        if (sqlite3_step(so) != SQLITE_ROW) {
            sqlite3_reset(so);
            break;
        }
        int64_t seq = sqlite3_column_int64(so, 0);
        uint64_t len = (uint64_t)sqlite3_column_int64(so, 1);
        sqlite3_reset(so);
        sqlite3_bind_int64(q->st[Q_DROP_ONE], 1, seq);
        int rc = step_done(q->st[Q_DROP_ONE]);
        if (rc != SQLITE_OK)
            return rc;
        bytes -= len;
        dropped++;
    }
    return dropped ? meta_add(q, "dropped_bytes", dropped) : SQLITE_OK;
}

tdm_status tdm_replay_push(tdm_replay *q, const tdm_replay_entry *e, double now_s, tdm_err *err)
{
    if (!fits(e->request_id, sizeof e->request_id) || e->request_id[0] == '\0' ||
        !fits(e->idem_key, sizeof e->idem_key) || e->idem_key[0] == '\0' ||
        !fits(e->route, sizeof e->route) || !fits(e->content_type, sizeof e->content_type))
        return tdm_errf(
            err, TDM_ERR_INVALID_ARG,
            "replay queue: request id, idempotency key, route or content type missing or "
            "too long");
    if (e->payload_len > q->opt.max_bytes)
        return tdm_errf(
            err, TDM_ERR_INVALID_ARG,
            "replay queue: request %s has %zu payload bytes, more than the queue's bound "
            "of %llu",
            e->request_id, e->payload_len, (unsigned long long)q->opt.max_bytes);
    if (e->payload_len > 0 && e->payload == NULL)
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "replay queue: payload is NULL");
    tdm_status st = exec(q, "BEGIN IMMEDIATE", err);
    if (st != TDM_OK)
        return st;
    sqlite3_stmt *s = q->st[Q_INSERT];
    sqlite3_bind_text(s, 1, e->request_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, e->idem_key, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, e->route, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, e->content_type, -1, SQLITE_STATIC);
    sqlite3_bind_double(s, 5, e->created_s > 0 ? e->created_s : now_s);
    sqlite3_bind_double(s, 6, e->deadline_s);
    sqlite3_bind_blob64(s, 7, e->payload_len ? e->payload : "", e->payload_len, SQLITE_STATIC);
    sqlite3_bind_int64(s, 8, (sqlite3_int64)e->payload_len);
    int rc = step_done(s);
    if (rc == SQLITE_CONSTRAINT) {
        exec(q, "ROLLBACK", NULL);
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "replay queue: request id '%s' is already queued",
                        e->request_id);
    }
    if (rc == SQLITE_OK)
        rc = enforce_bytes(q, sqlite3_last_insert_rowid(q->db));
    if (rc != SQLITE_OK) {
        st = db_fail(q, err, "push");
        exec(q, "ROLLBACK", NULL);
        return st;
    }
    if ((st = exec(q, "COMMIT", err)) != TDM_OK) {
        exec(q, "ROLLBACK", NULL);
        return st;
    }
    return tdm_replay_expire(q, now_s, err);
}

static void copy_col(sqlite3_stmt *s, int col, char *dst, size_t cap)
{
    const unsigned char *t = sqlite3_column_text(s, col);
    snprintf(dst, cap, "%s", t ? (const char *)t : "");
}

tdm_status tdm_replay_next(tdm_replay *q, int64_t after_seq, tdm_replay_entry *out, tdm_err *err)
{
    sqlite3_stmt *s = q->st[Q_NEXT];
    sqlite3_bind_int64(s, 1, after_seq);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) {
        sqlite3_reset(s);
        return tdm_errf(err, TDM_ERR_NOT_FOUND, "replay queue: nothing queued after %lld",
                        (long long)after_seq);
    }
    if (rc != SQLITE_ROW) {
        tdm_status st = db_fail(q, err, "next");
        sqlite3_reset(s);
        return st;
    }
    memset(out, 0, sizeof *out);
    out->seq = sqlite3_column_int64(s, 0);
    copy_col(s, 1, out->request_id, sizeof out->request_id);
    copy_col(s, 2, out->idem_key, sizeof out->idem_key);
    copy_col(s, 3, out->route, sizeof out->route);
    copy_col(s, 4, out->content_type, sizeof out->content_type);
    out->created_s = sqlite3_column_double(s, 5);
    out->deadline_s = sqlite3_column_double(s, 6);
    out->attempts = (uint32_t)sqlite3_column_int64(s, 7);
    size_t n = (size_t)sqlite3_column_bytes(s, 8);
    const void *blob = sqlite3_column_blob(s, 8);
    free(q->payload);
    q->payload = malloc(n ? n : 1);
    if (q->payload == NULL) {
        sqlite3_reset(s);
        return tdm_errf(err, TDM_ERR_NOMEM, "replay queue: out of memory for a %zu-byte payload",
                        n);
    }
    if (n)
        memcpy(q->payload, blob, n);
    out->payload = q->payload;
    out->payload_len = n;
    sqlite3_reset(s);
    return TDM_OK;
}

tdm_status tdm_replay_attempted(tdm_replay *q, int64_t seq, tdm_err *err)
{
    sqlite3_bind_int64(q->st[Q_ATTEMPT], 1, seq);
    return step_done(q->st[Q_ATTEMPT]) == SQLITE_OK ? TDM_OK : db_fail(q, err, "attempt");
}

tdm_status tdm_replay_ack(tdm_replay *q, int64_t seq, const char *result, size_t result_len,
                          tdm_err *err)
{
    tdm_status st = exec(q, "BEGIN IMMEDIATE", err);
    if (st != TDM_OK)
        return st;
    sqlite3_stmt *s = q->st[Q_ACK];
    sqlite3_bind_int64(s, 1, seq);
    sqlite3_bind_blob64(s, 2, result ? result : "", result ? result_len : 0, SQLITE_STATIC);
    int rc = step_done(s);
    if (rc == SQLITE_OK && sqlite3_changes(q->db) > 0)
        rc = meta_add(q, "delivered", 1);
    if (rc != SQLITE_OK) {
        st = db_fail(q, err, "ack");
        exec(q, "ROLLBACK", NULL);
        return st;
    }
    return exec(q, "COMMIT", err);
}

tdm_status tdm_replay_lookup(tdm_replay *q, const char *request_id, tdm_replay_state *state,
                             char **result, tdm_err *err)
{
    if (result)
        *result = NULL;
    sqlite3_stmt *s = q->st[Q_LOOKUP];
    sqlite3_bind_text(s, 1, request_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) {
        sqlite3_reset(s);
        *state = TDM_REPLAY_UNKNOWN;
        return TDM_OK;
    }
    if (rc != SQLITE_ROW) {
        tdm_status st = db_fail(q, err, "lookup");
        sqlite3_reset(s);
        return st;
    }
    int v = sqlite3_column_int(s, 0);
    *state = v == ST_QUEUED      ? TDM_REPLAY_QUEUED
             : v == ST_DELIVERED ? TDM_REPLAY_DELIVERED
                                 : TDM_REPLAY_DROPPED;
    if (result && *state == TDM_REPLAY_DELIVERED) {
        size_t n = (size_t)sqlite3_column_bytes(s, 1);
        char *r = malloc(n + 1);
        if (r == NULL) {
            sqlite3_reset(s);
            return tdm_errf(err, TDM_ERR_NOMEM, "replay queue: out of memory");
        }
        if (n)
            memcpy(r, sqlite3_column_blob(s, 1), n);
        r[n] = '\0';
        *result = r;
    }
    sqlite3_reset(s);
    return TDM_OK;
}

tdm_status tdm_replay_expire(tdm_replay *q, double now_s, tdm_err *err)
{
    tdm_status st = exec(q, "BEGIN IMMEDIATE", err);
    if (st != TDM_OK)
        return st;
    sqlite3_stmt *s = q->st[Q_AGE_DROP];
    sqlite3_bind_double(s, 1, now_s - q->opt.max_age_s);
    int rc = step_done(s);
    int changed = sqlite3_changes(q->db);
    if (rc == SQLITE_OK && changed > 0)
        rc = meta_add(q, "dropped_age", changed);
    /* Finished entries stay answerable for another max_age, then go. */
    if (rc == SQLITE_OK) {
        s = q->st[Q_AGE_DELETE];
        sqlite3_bind_double(s, 1, now_s - 2 * q->opt.max_age_s);
        rc = step_done(s);
    }
    if (rc != SQLITE_OK) {
        st = db_fail(q, err, "expire");
        exec(q, "ROLLBACK", NULL);
        return st;
    }
    return exec(q, "COMMIT", err);
}

tdm_status tdm_replay_get_stats(tdm_replay *q, tdm_replay_stats *st, tdm_err *err)
{
    memset(st, 0, sizeof *st);
    sqlite3_stmt *s = q->st[Q_QUEUED_BYTES];
    if (sqlite3_step(s) != SQLITE_ROW) {
        tdm_status r = db_fail(q, err, "stats");
        sqlite3_reset(s);
        return r;
    }
    st->queued = (uint64_t)sqlite3_column_int64(s, 0);
    st->queued_bytes = (uint64_t)sqlite3_column_int64(s, 1);
    sqlite3_reset(s);
    st->delivered = (uint64_t)meta_get(q, "delivered");
    st->dropped_age = (uint64_t)meta_get(q, "dropped_age");
    st->dropped_bytes = (uint64_t)meta_get(q, "dropped_bytes");
    return TDM_OK;
}

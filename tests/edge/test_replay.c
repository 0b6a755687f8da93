/*
 * The replay queue on a real SQLite file: order, acknowledgement and lookup;
 * entries survive a process that dies without closing (a forked child that
 * _exits right after push, as kill -9 would leave it); the byte and age
 * bounds drop the oldest and count them; bad input is refused without
 * changing the queue; a file that is not a database is refused clearly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "edge/replay.h"

static char g_dir[64];

static void path_of(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", g_dir, name);
}

static tdm_replay_entry entry(const char *id, const char *payload)
{
    tdm_replay_entry e = {0};
    snprintf(e.request_id, sizeof e.request_id, "%s", id);
    snprintf(e.idem_key, sizeof e.idem_key, "idem-%s", id);
    snprintf(e.route, sizeof e.route, "/v1/features?model=m&version=1&cut=0");
    snprintf(e.content_type, sizeof e.content_type, "application/x-tandem-frame");
    e.payload = payload;
    e.payload_len = strlen(payload);
    return e;
}

static void test_order_ack_lookup(void **state)
{
    (void)state;
    char path[128];
    path_of(path, sizeof path, "q1.db");
    tdm_replay *q;
    tdm_err err;
    assert_int_equal(tdm_replay_open(path, NULL, &q, &err), TDM_OK);
    const char *ids[] = {"a", "b", "c"};
    for (int i = 0; i < 3; i++) {
        tdm_replay_entry e = entry(ids[i], ids[i]);
        assert_int_equal(tdm_replay_push(q, &e, 1000.0 + i, &err), TDM_OK);
    }
    tdm_replay_entry e = entry("a", "dup");
    assert_int_equal(tdm_replay_push(q, &e, 1003.0, &err), TDM_ERR_INVALID_ARG);
    assert_non_null(strstr(err.msg, "'a'"));

    tdm_replay_entry got;
    int64_t after = 0;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(tdm_replay_next(q, after, &got, &err), TDM_OK);
        assert_string_equal(got.request_id, ids[i]);
        char want[16];
        snprintf(want, sizeof want, "idem-%s", ids[i]);
        assert_string_equal(got.idem_key, want);
        assert_int_equal(got.payload_len, 1);
        assert_memory_equal(got.payload, ids[i], 1);
        after = got.seq;
    }
    assert_int_equal(tdm_replay_next(q, after, &got, &err), TDM_ERR_NOT_FOUND);

    assert_int_equal(tdm_replay_next(q, 0, &got, &err), TDM_OK);
    assert_int_equal(tdm_replay_attempted(q, got.seq, &err), TDM_OK);
    assert_int_equal(tdm_replay_ack(q, got.seq, "{\"label\":3}", 11, &err), TDM_OK);
    assert_int_equal(tdm_replay_ack(q, got.seq, "{\"label\":4}", 11, &err), TDM_OK); /* harmless */
    tdm_replay_state st;
    char *res;
    assert_int_equal(tdm_replay_lookup(q, "a", &st, &res, &err), TDM_OK);
    assert_int_equal(st, TDM_REPLAY_DELIVERED);
    assert_string_equal(res, "{\"label\":3}");
    free(res);
    assert_int_equal(tdm_replay_lookup(q, "b", &st, &res, &err), TDM_OK);
    assert_int_equal(st, TDM_REPLAY_QUEUED);
    assert_null(res);
    assert_int_equal(tdm_replay_lookup(q, "zz", &st, NULL, &err), TDM_OK);
    assert_int_equal(st, TDM_REPLAY_UNKNOWN);

    tdm_replay_stats s;
    assert_int_equal(tdm_replay_get_stats(q, &s, &err), TDM_OK);
    assert_int_equal(s.queued, 2);
    assert_int_equal(s.queued_bytes, 2);
    assert_int_equal(s.delivered, 1);
    assert_int_equal(tdm_replay_next(q, 0, &got, &err), TDM_OK);
    assert_string_equal(got.request_id, "b"); /* delivered ones are not resent */
    tdm_replay_close(q);
}

static void test_survives_crash(void **state)
{
    (void)state;
    char path[128];
    path_of(path, sizeof path, "q2.db");
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        tdm_replay *q;
        tdm_err err;
        if (tdm_replay_open(path, NULL, &q, &err) != TDM_OK)
            _exit(3);
        for (int i = 0; i < 50; i++) {
            char id[16];
            snprintf(id, sizeof id, "r%d", i);
            tdm_replay_entry e = entry(id, "payload");
            if (tdm_replay_push(q, &e, 5000.0, &err) != TDM_OK)
                _exit(4);
        }
        _exit(0); /* no close: the WAL is all that is left */
    }
    int status;
    waitpid(pid, &status, 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    tdm_replay *q;
    tdm_err err;
    assert_int_equal(tdm_replay_open(path, NULL, &q, &err), TDM_OK);
    tdm_replay_stats s;
    assert_int_equal(tdm_replay_get_stats(q, &s, &err), TDM_OK);
    assert_int_equal(s.queued, 50);
    tdm_replay_entry got;
    assert_int_equal(tdm_replay_next(q, 0, &got, &err), TDM_OK);
    assert_string_equal(got.request_id, "r0");
    assert_string_equal(got.idem_key, "idem-r0");
    tdm_replay_close(q);
}

static void test_bounds(void **state)
{
    (void)state;
    char path[128];
    path_of(path, sizeof path, "q3.db");
    tdm_replay_options opt = {.max_age_s = 100, .max_bytes = 10};
    tdm_replay *q;
    tdm_err err;
    assert_int_equal(tdm_replay_open(path, &opt, &q, &err), TDM_OK);
    tdm_replay_entry big = entry("big", "0123456789A");
    assert_int_equal(tdm_replay_push(q, &big, 0.0, &err), TDM_ERR_INVALID_ARG);
    const char *ids[] = {"p1", "p2", "p3", "p4"};
    for (int i = 0; i < 4; i++) {
        tdm_replay_entry e = entry(ids[i], "xxxx"); /* 4 bytes each: only two fit */
        e.created_s = 10.0 * i;
        assert_int_equal(tdm_replay_push(q, &e, 10.0 * i, &err), TDM_OK);
    }
    tdm_replay_stats s;
    assert_int_equal(tdm_replay_get_stats(q, &s, &err), TDM_OK);
    assert_int_equal(s.queued, 2);
    assert_int_equal(s.dropped_bytes, 2);
    tdm_replay_state st;
    assert_int_equal(tdm_replay_lookup(q, "p1", &st, NULL, &err), TDM_OK);
    assert_int_equal(st, TDM_REPLAY_DROPPED);
    assert_int_equal(tdm_replay_lookup(q, "p4", &st, NULL, &err), TDM_OK);
    assert_int_equal(st, TDM_REPLAY_QUEUED);
    /* p3 was created at 20, p4 at 30: at 125 only p3 is older than 100 s. */
    assert_int_equal(tdm_replay_expire(q, 125.0, &err), TDM_OK);
    assert_int_equal(tdm_replay_get_stats(q, &s, &err), TDM_OK);
    assert_int_equal(s.queued, 1);
    assert_int_equal(s.dropped_age, 1);
    tdm_replay_entry bad = entry("", "x");
    assert_int_equal(tdm_replay_push(q, &bad, 125.0, &err), TDM_ERR_INVALID_ARG);
    tdm_replay_close(q);
}

static void test_not_a_database(void **state)
{
    (void)state;
    char path[128];
    path_of(path, sizeof path, "junk.db");
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    for (int i = 0; i < 4096; i++)
        fputc(i * 7 & 0xff, f);
    fclose(f);
    tdm_replay *q = NULL;
    tdm_err err;
    assert_int_not_equal(tdm_replay_open(path, NULL, &q, &err), TDM_OK);
    assert_null(q);
    assert_non_null(strstr(err.msg, "junk.db"));
}

static int setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/tdm_replay_XXXXXX");
    return mkdtemp(g_dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_ack_lookup),
        cmocka_unit_test(test_survives_crash),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_not_a_database),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

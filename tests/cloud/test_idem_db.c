/*
 * The durable idempotency store with two handles on one file, as two gateway
 * processes would have: a claim makes the other wait (BUSY), a stored answer
 * is returned to the other, a claim whose lease ran out (its gateway died)
 * is taken over, answers survive closing and reopening, a late second
 * completion keeps the first answer and is counted as a duplicate, and a 5xx
 * is forgotten so a retry runs again.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cloud/idem_db.h"

static char g_path[64];

static void test_two_gateways(void **state)
{
    (void)state;
    tdm_gw_idem_db *a, *b;
    tdm_err err;
    assert_int_equal(tdm_gw_idem_db_open(g_path, 0.5, &a, &err), TDM_OK);
    assert_int_equal(tdm_gw_idem_db_open(g_path, 0.5, &b, &err), TDM_OK);
    int status;
    char *body;
    size_t len;
    assert_int_equal(tdm_gw_idem_db_begin(a, "k1", 100, 0, &status, &body, &len), TDM_GW_IDEM_RUN);
    assert_int_equal(tdm_gw_idem_db_begin(b, "k1", 100, 0.05, &status, &body, &len),
                     TDM_GW_IDEM_BUSY);
    tdm_gw_idem_db_finish(a, "k1", 100, 200, "{\"label\":3}", 11);
    assert_int_equal(tdm_gw_idem_db_begin(b, "k1", 100, 0, &status, &body, &len),
                     TDM_GW_IDEM_STORED);
    assert_int_equal(status, 200);
    assert_int_equal(len, 11);
    assert_string_equal(body, "{\"label\":3}");
    free(body);

    /* a claims k2 and "dies" before answering; after the lease b takes over. */
    assert_int_equal(tdm_gw_idem_db_begin(a, "k2", 100, 0, &status, &body, &len), TDM_GW_IDEM_RUN);
    assert_int_equal(tdm_gw_idem_db_begin(b, "k2", 100.1, 0, &status, &body, &len),
                     TDM_GW_IDEM_BUSY);
    assert_int_equal(tdm_gw_idem_db_begin(b, "k2", 101, 0, &status, &body, &len), TDM_GW_IDEM_RUN);
    tdm_gw_idem_db_finish(b, "k2", 101, 200, "B", 1);
    tdm_gw_idem_db_stats st;
    assert_int_equal(tdm_gw_idem_db_stats_get(b, &st, &err), TDM_OK);
    assert_int_equal(st.keys, 2);
    assert_int_equal(st.duplicates, 0);
    /* ...but a was only slow: its late answer is counted, not stored. */
    tdm_gw_idem_db_finish(a, "k2", 102, 200, "A", 1);
    assert_int_equal(tdm_gw_idem_db_stats_get(b, &st, &err), TDM_OK);
    assert_int_equal(st.duplicates, 1);
    assert_int_equal(tdm_gw_idem_db_begin(a, "k2", 103, 0, &status, &body, &len),
                     TDM_GW_IDEM_STORED);
    assert_string_equal(body, "B");
    free(body);

    /* A 5xx is not an answer: the retry runs. */
    assert_int_equal(tdm_gw_idem_db_begin(a, "k3", 100, 0, &status, &body, &len), TDM_GW_IDEM_RUN);
    tdm_gw_idem_db_finish(a, "k3", 100, 503, "busy", 4);
    assert_int_equal(tdm_gw_idem_db_begin(b, "k3", 100, 0, &status, &body, &len), TDM_GW_IDEM_RUN);
    /* Nor is 499, the client gone (an agent killed mid-request): its resend runs. */
    tdm_gw_idem_db_finish(b, "k3", 100, 499, "closed", 6);
    assert_int_equal(tdm_gw_idem_db_begin(a, "k3", 100, 0, &status, &body, &len), TDM_GW_IDEM_RUN);
    tdm_gw_idem_db_abandon(a, "k3");
    tdm_gw_idem_db_close(a);
    tdm_gw_idem_db_close(b);

    /* Restart: stored answers are still there; expiry drops old ones. */
    assert_int_equal(tdm_gw_idem_db_open(g_path, 0.5, &a, &err), TDM_OK);
    assert_int_equal(tdm_gw_idem_db_begin(a, "k1", 200, 0, &status, &body, &len),
                     TDM_GW_IDEM_STORED);
    free(body);
    tdm_gw_idem_db_expire(a, 1000, 10);
    assert_int_equal(tdm_gw_idem_db_stats_get(a, &st, &err), TDM_OK);
    assert_int_equal(st.keys, 0);
    tdm_gw_idem_db_close(a);
}

static void test_bad_path(void **state)
{
    (void)state;
    tdm_gw_idem_db *d = (tdm_gw_idem_db *)1;
    tdm_err err;
    assert_int_not_equal(tdm_gw_idem_db_open("/nonexistent/dir/x.db", 1, &d, &err), TDM_OK);
    assert_null(d);
    assert_non_null(strstr(err.msg, "/nonexistent/dir/x.db"));
}

int main(void)
{
    snprintf(g_path, sizeof g_path, "/tmp/tdm_idem_%ld.db", (long)getpid());
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_gateways),
        cmocka_unit_test(test_bad_path),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char p[96];
    remove(g_path);
    snprintf(p, sizeof p, "%s-wal", g_path);
    remove(p);
    snprintf(p, sizeof p, "%s-shm", g_path);
    remove(p);
    return rc;
}

/*
 * The idempotency store: a stored answer is replayed byte for byte, transient failures are
 * not stored, entries expire after the TTL and are evicted least recently used at capacity,
 * and a duplicate arriving while the first runs waits for its answer instead of running.
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
#include <pthread.h>

#include "cloud/idempotency.h"

static tdm_gw_idem *make(int cap, double ttl)
{
    tdm_gw_idem *s = NULL;
    assert_int_equal(tdm_gw_idem_create(cap, ttl, &s, NULL), TDM_OK);
    return s;
}

static void test_store_and_replay(void **state)
{
    (void)state;
    tdm_gw_idem *s = make(10, 60);
    int st;
    char *body;
    size_t len;
    assert_int_equal(tdm_gw_idem_begin(s, "k", 0, 1, &st, &body, &len), TDM_GW_IDEM_RUN);
    tdm_gw_idem_finish(s, "k", 0, 200, "{\"a\":1}", 7);
    assert_int_equal(tdm_gw_idem_begin(s, "k", 1, 1, &st, &body, &len), TDM_GW_IDEM_STORED);
    assert_int_equal(st, 200);
    assert_int_equal(len, 7);
    assert_memory_equal(body, "{\"a\":1}", 7);
    free(body);
    /* 4xx answers are part of the contract: stored too */
    assert_int_equal(tdm_gw_idem_begin(s, "bad", 0, 1, &st, &body, &len), TDM_GW_IDEM_RUN);
    tdm_gw_idem_finish(s, "bad", 0, 400, "e", 1);
    assert_int_equal(tdm_gw_idem_begin(s, "bad", 0, 1, &st, &body, &len), TDM_GW_IDEM_STORED);
    assert_int_equal(st, 400);
    free(body);
    tdm_gw_idem_free(s);
}

static void test_transient_failures_forgotten(void **state)
{
    (void)state;
    tdm_gw_idem *s = make(10, 60);
    int st;
    char *body;
    size_t len;
    assert_int_equal(tdm_gw_idem_begin(s, "k", 0, 1, &st, &body, &len), TDM_GW_IDEM_RUN);
    tdm_gw_idem_finish(s, "k", 0, 504, "late", 4);
    assert_int_equal(tdm_gw_idem_begin(s, "k", 0, 1, &st, &body, &len), TDM_GW_IDEM_RUN);
    /* the client went away (an agent killed mid-request): its resend must run, not replay */
    tdm_gw_idem_finish(s, "k", 0, 499, "closed", 6);
    assert_int_equal(tdm_gw_idem_begin(s, "k", 0, 1, &st, &body, &len), TDM_GW_IDEM_RUN);
    tdm_gw_idem_finish(s, "k", 0, 429, "busy", 4);
    assert_int_equal(tdm_gw_idem_begin(s, "k", 0, 1, &st, &body, &len), TDM_GW_IDEM_RUN);
    tdm_gw_idem_abandon(s, "k");
    assert_int_equal(tdm_gw_idem_begin(s, "k", 0, 1, &st, &body, &len), TDM_GW_IDEM_RUN);
    tdm_gw_idem_finish(s, "k", 0, 200, "ok", 2);
    assert_int_equal(tdm_gw_idem_count(s), 1);
    tdm_gw_idem_free(s);
}

static void test_ttl_and_capacity(void **state)
{
    (void)state;
    tdm_gw_idem *s = make(3, 10);
    int st;
    char *body;
    size_t len;
    char k[8];
    for (int i = 0; i < 3; i++) {
        snprintf(k, sizeof k, "k%d", i);
        assert_int_equal(tdm_gw_idem_begin(s, k, i, 1, &st, &body, &len), TDM_GW_IDEM_RUN);
        tdm_gw_idem_finish(s, k, i, 200, k, 2);
    }
    /* touch k0 so that k1 is the least recently used */
    assert_int_equal(tdm_gw_idem_begin(s, "k0", 3, 1, &st, &body, &len), TDM_GW_IDEM_STORED);
    free(body);
    assert_int_equal(tdm_gw_idem_begin(s, "k3", 3, 1, &st, &body, &len), TDM_GW_IDEM_RUN);
    tdm_gw_idem_finish(s, "k3", 3, 200, "k3", 2);
    assert_int_equal(tdm_gw_idem_count(s), 3);
    assert_int_equal(tdm_gw_idem_begin(s, "k0", 4, 1, &st, &body, &len), TDM_GW_IDEM_STORED);
    free(body);
    assert_int_equal(tdm_gw_idem_begin(s, "k1", 4, 1, &st, &body, &len), TDM_GW_IDEM_RUN);
    tdm_gw_idem_abandon(s, "k1");
    /* k2 was stored at t=2: expired at t=13 */
    assert_int_equal(tdm_gw_idem_begin(s, "k2", 13, 1, &st, &body, &len), TDM_GW_IDEM_RUN);
    tdm_gw_idem_abandon(s, "k2");
    tdm_gw_idem_free(s);
}

typedef struct dup_arg {
    tdm_gw_idem *s;
    tdm_gw_idem_result r;
    int status;
    char *body;
    size_t len;
} dup_arg;

static void *dup_main(void *p)
{
    dup_arg *a = p;
    a->r = tdm_gw_idem_begin(a->s, "same", 0, 5, &a->status, &a->body, &a->len);
    return NULL;
}

static void test_concurrent_duplicate_waits(void **state)
{
    (void)state;
    tdm_gw_idem *s = make(10, 60);
    int st;
    char *body;
    size_t len;
    assert_int_equal(tdm_gw_idem_begin(s, "same", 0, 1, &st, &body, &len), TDM_GW_IDEM_RUN);
    dup_arg a = {.s = s};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, dup_main, &a), 0);
    usleep(50000); /* the duplicate is waiting */
    tdm_gw_idem_finish(s, "same", 0, 200, "first", 5);
    pthread_join(t, NULL);
    assert_int_equal(a.r, TDM_GW_IDEM_STORED);
    assert_memory_equal(a.body, "first", 5);
    free(a.body);
    /* a duplicate that cannot wait long enough is told so */
    assert_int_equal(tdm_gw_idem_begin(s, "slow", 0, 1, &st, &body, &len), TDM_GW_IDEM_RUN);
    assert_int_equal(tdm_gw_idem_begin(s, "slow", 0, 0.02, &st, &body, &len), TDM_GW_IDEM_BUSY);
    tdm_gw_idem_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_store_and_replay),
        cmocka_unit_test(test_transient_failures_forgotten),
        cmocka_unit_test(test_ttl_and_capacity),
        cmocka_unit_test(test_concurrent_duplicate_waits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

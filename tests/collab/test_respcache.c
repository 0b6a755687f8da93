/*
 * The response cache: hits and misses, TTL expiry on a stepped clock, LRU
 * eviction order under the byte bound, replacement, refusal of oversized
 * values, key separation, and four threads hammering one cache (run under
 * ASan/TSan-free builds it checks the locking by the invariants at the end).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "collab/respcache.h"

static void key_of(int i, uint8_t key[TDM_RESPCACHE_KEY_LEN])
{
    char in[32];
    int n = snprintf(in, sizeof in, "input-%d", i);
    tdm_respcache_key("m", "1", "", in, (size_t)n, key);
}

static void test_hit_miss_ttl(void **state)
{
    (void)state;
    tdm_respcache *c;
    tdm_err err;
    assert_int_equal(tdm_respcache_create(1 << 20, 1000, &c, &err), TDM_OK);
    uint8_t k[TDM_RESPCACHE_KEY_LEN];
    key_of(1, k);
    tdm_respcache_value v;
    assert_false(tdm_respcache_get(c, k, 0, &v));
    assert_true(tdm_respcache_put(c, k, "{\"y\":1}", 7, 0, 100));
    assert_true(tdm_respcache_get(c, k, 500, &v));
    assert_int_equal(v.len, 7);
    assert_string_equal((char *)v.data, "{\"y\":1}");
    assert_int_equal(v.expires_ms, 1100);
    tdm_respcache_value_free(&v);
    /* Expires at 100 + 1000: a get at 1100 misses and removes it. */
    assert_false(tdm_respcache_get(c, k, 1100, &v));
    assert_null(v.data);
    tdm_respcache_stats st;
    tdm_respcache_get_stats(c, &st);
    assert_int_equal(st.hits, 1);
    assert_int_equal(st.misses, 2);
    assert_int_equal(st.expirations, 1);
    assert_int_equal(st.entries, 0);
    assert_int_equal(st.bytes, 0);
    /* Explicit TTL overrides the default; replacement keeps one entry. */
    assert_true(tdm_respcache_put(c, k, "a", 1, 50, 0));
    assert_true(tdm_respcache_put(c, k, "bb", 2, 5000, 0));
    tdm_respcache_get_stats(c, &st);
    assert_int_equal(st.entries, 1);
    assert_int_equal(st.bytes, 2 + TDM_RESPCACHE_ENTRY_OVERHEAD);
    assert_true(tdm_respcache_get(c, k, 4999, &v));
    assert_memory_equal(v.data, "bb", 2);
    tdm_respcache_value_free(&v);
    assert_true(tdm_respcache_remove(c, k));
    assert_false(tdm_respcache_remove(c, k));
    tdm_respcache_free(c);
}

static void test_lru_eviction(void **state)
{
    (void)state;
    const size_t value = 100, cost = value + TDM_RESPCACHE_ENTRY_OVERHEAD;
    tdm_respcache *c;
    assert_int_equal(tdm_respcache_create(cost * 4, 1000000, &c, NULL), TDM_OK);
    char buf[100];
    uint8_t k[TDM_RESPCACHE_KEY_LEN];
    for (int i = 0; i < 4; i++) {
        memset(buf, 'a' + i, sizeof buf);
        key_of(i, k);
        assert_true(tdm_respcache_put(c, k, buf, value, 0, 0));
    }
    /* Touch 0 so that 1 is least recently used, then insert 4: 1 goes. */
    tdm_respcache_value v;
    key_of(0, k);
    assert_true(tdm_respcache_get(c, k, 1, &v));
    tdm_respcache_value_free(&v);
    key_of(4, k);
    memset(buf, 'e', sizeof buf);
    assert_true(tdm_respcache_put(c, k, buf, value, 0, 2));
    int present[5];
    for (int i = 0; i < 5; i++) {
        key_of(i, k);
        present[i] = tdm_respcache_get(c, k, 3, &v);
        if (present[i]) {
            assert_int_equal(((unsigned char *)v.data)[0], 'a' + i);
            tdm_respcache_value_free(&v);
        }
    }
    assert_true(present[0] && !present[1] && present[2] && present[3] && present[4]);
    tdm_respcache_stats st;
    tdm_respcache_get_stats(c, &st);
    assert_int_equal(st.evictions, 1);
    assert_true(st.bytes <= st.max_bytes);
    /* A value larger than the bound is refused and changes nothing. */
    char *big = calloc(1, cost * 4);
    assert_non_null(big);
    key_of(9, k);
    assert_false(tdm_respcache_put(c, k, big, cost * 4, 0, 3));
    free(big);
    tdm_respcache_get_stats(c, &st);
    assert_int_equal(st.rejected, 1);
    assert_int_equal(st.entries, 4);
    tdm_respcache_free(c);
}

static void test_keys_separate_fields(void **state)
{
    (void)state;
    uint8_t a[TDM_RESPCACHE_KEY_LEN], b[TDM_RESPCACHE_KEY_LEN];
    tdm_respcache_key("ab", "c", "", "x", 1, a);
    tdm_respcache_key("a", "bc", "", "x", 1, b);
    assert_memory_not_equal(a, b, sizeof a);
    tdm_respcache_key("m", "1", "cut0", "x", 1, a);
    tdm_respcache_key("m", "1", "cut1", "x", 1, b);
    assert_memory_not_equal(a, b, sizeof a);
    tdm_respcache_key("m", "1", "cut0", "x", 1, b);
    assert_memory_equal(a, b, sizeof a);
    /* Tensor keys: equal values give equal keys; a changed shape, byte or entry does not. */
    float x[6] = {1, 2, 3, 4, 5, 6};
    tdm_tensor t = {.dtype = TDM_DTYPE_FLOAT32, .ndim = 2, .dims = {2, 3}, .data = x};
    tdm_respcache_key_tensors("m", "1", "full", &t, 1, a);
    tdm_respcache_key_tensors("m", "1", "full", &t, 1, b);
    assert_memory_equal(a, b, sizeof a);
    t.dims[0] = 3;
    t.dims[1] = 2;
    tdm_respcache_key_tensors("m", "1", "full", &t, 1, b);
    assert_memory_not_equal(a, b, sizeof a);
    t.dims[0] = 2;
    t.dims[1] = 3;
    x[5] = 7;
    tdm_respcache_key_tensors("m", "1", "full", &t, 1, b);
    assert_memory_not_equal(a, b, sizeof a);
    x[5] = 6;
    tdm_respcache_key_tensors("m", "1", "cut0", &t, 1, b);
    assert_memory_not_equal(a, b, sizeof a);

    tdm_respcache *c;
    tdm_err err;
    assert_int_equal(tdm_respcache_create(0, 1, &c, &err), TDM_ERR_INVALID_ARG);
    assert_null(c);
    assert_int_equal(tdm_respcache_create(10, 0, &c, &err), TDM_ERR_INVALID_ARG);
}

typedef struct worker {
    tdm_respcache *c;
    int seed;
} worker;

static void *hammer(void *arg)
{
    worker *w = arg;
    unsigned s = (unsigned)w->seed;
    char buf[300];
    for (int i = 0; i < 20000; i++) {
        s = s * 1103515245u + 12345u;
        int k = (int)((s >> 8) % 200);
        uint8_t key[TDM_RESPCACHE_KEY_LEN];
        key_of(k, key);
        if ((s >> 20) & 1) {
            size_t len = 1 + (s >> 4) % sizeof buf;
            memset(buf, (char)k, len);
            tdm_respcache_put(w->c, key, buf, len, 0, (uint64_t)i);
        } else {
            tdm_respcache_value v;
            if (tdm_respcache_get(w->c, key, (uint64_t)i, &v)) {
                /* Every stored value of key k is bytes equal to k. */
                for (size_t j = 0; j < v.len; j++)
                    if (((unsigned char *)v.data)[j] != (unsigned char)k)
                        abort();
                tdm_respcache_value_free(&v);
            }
        }
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    tdm_respcache *c;
    assert_int_equal(tdm_respcache_create(16 * 1024, 5000, &c, NULL), TDM_OK);
    pthread_t t[4];
    worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i].c = c;
        w[i].seed = i + 1;
        assert_int_equal(pthread_create(&t[i], NULL, hammer, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    tdm_respcache_stats st;
    tdm_respcache_get_stats(c, &st);
    assert_true(st.bytes <= st.max_bytes);
    assert_true(st.hits > 0 && st.evictions > 0);
    /* The table and the counters agree: every counted entry is found (at time 0 none has
     * expired), and each holds its key's bytes. */
    size_t found = 0;
    for (int k = 0; k < 200; k++) {
        uint8_t key[TDM_RESPCACHE_KEY_LEN];
        key_of(k, key);
        tdm_respcache_value v;
        if (tdm_respcache_get(c, key, 0, &v)) {
            found++;
            for (size_t j = 0; j < v.len; j++)
                assert_int_equal(((unsigned char *)v.data)[j], (unsigned char)k);
            tdm_respcache_value_free(&v);
        }
    }
    assert_int_equal(found, st.entries);
    tdm_respcache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hit_miss_ttl),
        cmocka_unit_test(test_lru_eviction),
        cmocka_unit_test(test_keys_separate_fields),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

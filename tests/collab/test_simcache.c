/*
 * The similarity cache: near vectors hit and far ones miss, scale does not
 * matter (cosine), entries expire, the byte bound evicts the least recently
 * used first, and degenerate vectors neither hit nor get stored.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "collab/simcache.h"

static void test_hit_miss(void **state)
{
    (void)state;
    tdm_simcache *c;
    tdm_err err;
    assert_int_equal(tdm_simcache_create(3, 0.99, 1000, 1 << 20, &c, &err), TDM_OK);
    const float a[3] = {1, 0, 0}, b[3] = {0, 1, 0};
    assert_true(tdm_simcache_put(c, a, "cat", 3, 0));
    assert_true(tdm_simcache_put(c, b, "dog", 3, 0));
    char *v;
    size_t len;
    double sim;
    const float near_a[3] = {10, 0.5f, 0}; /* cosine 0.9988, 10x the scale */
    assert_true(tdm_simcache_get(c, near_a, 1, &v, &len, &sim));
    assert_string_equal(v, "cat");
    assert_int_equal(len, 3);
    assert_true(sim > 0.99 && sim < 1.0);
    free(v);
    const float between[3] = {1, 1, 0}; /* cosine 0.707 to both */
    assert_false(tdm_simcache_get(c, between, 1, &v, &len, &sim));
    assert_null(v);
    const float zero[3] = {0, 0, 0};
    assert_false(tdm_simcache_get(c, zero, 1, &v, &len, &sim));
    assert_false(tdm_simcache_put(c, zero, "z", 1, 0));
    tdm_simcache_stats st;
    tdm_simcache_get_stats(c, &st);
    assert_int_equal(st.hits, 1);
    assert_int_equal(st.misses, 2);
    assert_int_equal(st.entries, 2);
    /* Expiry: at t=1000 both entries are gone. */
    assert_false(tdm_simcache_get(c, a, 1000, &v, &len, &sim));
    tdm_simcache_get_stats(c, &st);
    assert_int_equal(st.entries, 0);
    assert_int_equal(st.expirations, 2);
    assert_int_equal(st.bytes, 0);
    tdm_simcache_free(c);
}

static void test_lru_bound(void **state)
{
    (void)state;
    tdm_simcache *c;
    tdm_err err;
    /* Each entry costs 2*4 + 1 + 96 = 105 bytes: three fit in 320. */
    assert_int_equal(tdm_simcache_create(2, 0.999, 100000, 320, &c, &err), TDM_OK);
    const float v[4][2] = {{1, 0}, {0, 1}, {-1, 0}, {0, -1}};
    for (int i = 0; i < 3; i++)
        assert_true(tdm_simcache_put(c, v[i], &"abc"[i], 1, 0));
    char *out;
    size_t len;
    double sim;
    assert_true(tdm_simcache_get(c, v[0], 1, &out, &len, &sim)); /* v0 becomes most recent */
    free(out);
    assert_true(tdm_simcache_put(c, v[3], "d", 1, 2)); /* evicts v1, the least recent */
    assert_false(tdm_simcache_get(c, v[1], 3, &out, &len, &sim));
    assert_true(tdm_simcache_get(c, v[0], 3, &out, &len, &sim));
    assert_string_equal(out, "a");
    free(out);
    assert_true(tdm_simcache_get(c, v[3], 3, &out, &len, &sim));
    assert_string_equal(out, "d");
    free(out);
    tdm_simcache_stats st;
    tdm_simcache_get_stats(c, &st);
    assert_int_equal(st.evictions, 1);
    assert_int_equal(st.entries, 3);
    char big[400];
    memset(big, 'x', sizeof big);
    assert_false(tdm_simcache_put(c, v[1], big, sizeof big, 4)); /* larger than the bound */
    tdm_simcache_free(c);
}

static void test_bad_args(void **state)
{
    (void)state;
    tdm_simcache *c;
    tdm_err err;
    assert_int_equal(tdm_simcache_create(0, 0.9, 1, 1, &c, &err), TDM_ERR_INVALID_ARG);
    assert_int_equal(tdm_simcache_create(4, 1.5, 1, 1, &c, &err), TDM_ERR_INVALID_ARG);
    assert_int_equal(tdm_simcache_create(4, 0.9, 0, 1, &c, &err), TDM_ERR_INVALID_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hit_miss),
        cmocka_unit_test(test_lru_bound),
        cmocka_unit_test(test_bad_args),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

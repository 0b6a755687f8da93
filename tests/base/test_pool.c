/*
 * Thread pool: every index is visited exactly once, at any size and grain.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "base/pool.h"

typedef struct visit {
    int *hits;
} visit;

static void mark(void *arg, int64_t b, int64_t e, int worker)
{
    visit *v = arg;
    (void)worker;
    for (int64_t i = b; i < e; i++)
        __atomic_fetch_add(&v->hits[i], 1, __ATOMIC_RELAXED);
}

static void test_each_index_once(void **state)
{
    (void)state;
    for (int threads = 1; threads <= 4; threads++) {
        tdm_pool *p = NULL;
        assert_int_equal(tdm_pool_create(threads, &p, NULL), 0);
        assert_int_equal(tdm_pool_size(p), threads);
        for (int64_t n = 0; n < 300; n += 7) {
            for (int64_t grain = 0; grain < 9; grain += 4) {
                int *hits = calloc((size_t)n + 1, sizeof *hits);
                visit v = {hits};
                tdm_pool_for(p, n, grain, mark, &v);
                for (int64_t i = 0; i < n; i++)
                    assert_int_equal(hits[i], 1);
                free(hits);
            }
        }
        tdm_pool_free(p);
    }
}

static void test_null_pool_runs_inline(void **state)
{
    (void)state;
    int hits[10] = {0};
    visit v = {hits};
    tdm_pool_for(NULL, 10, 1, mark, &v);
    for (int i = 0; i < 10; i++)
        assert_int_equal(hits[i], 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_index_once),
        cmocka_unit_test(test_null_pool_runs_inline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * Thread pool: every index is visited exactly once, at any size and grain,
 * with workers awake, asleep or late; worker ids stay within the pool, and
 * a worker id is never used by two chunks at once (ops index per-worker
 * scratch by it).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

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

typedef struct owner_check {
    int size;
    int busy[8]; /* per worker id: chunks in flight */
    int bad;     /* a worker id out of range or used twice at once */
    int64_t sum; /* of all indices visited */
    int workers; /* bit per worker id seen */
} owner_check;

static void own(void *arg, int64_t b, int64_t e, int worker)
{
    owner_check *c = arg;
    if (worker < 0 || worker >= c->size) {
        __atomic_fetch_add(&c->bad, 1, __ATOMIC_RELAXED);
        return;
    }
    if (__atomic_fetch_add(&c->busy[worker], 1, __ATOMIC_ACQ_REL) != 0)
        __atomic_fetch_add(&c->bad, 1, __ATOMIC_RELAXED);
    __atomic_fetch_or(&c->workers, 1 << worker, __ATOMIC_RELAXED);
    int64_t s = 0;
    for (int64_t i = b; i < e; i++)
        s += i;
    __atomic_fetch_add(&c->sum, s, __ATOMIC_RELAXED);
    __atomic_fetch_sub(&c->busy[worker], 1, __ATOMIC_ACQ_REL);
}

static void nap_ms(long ms)
{
    struct timespec ts = {0, ms * 1000000L};
    nanosleep(&ts, NULL);
}

/* Thousands of tiny jobs back to back: workers wake late, find the job
 * finished or half-claimed, and must neither run a chunk twice nor touch a
 * later job's chunks with an earlier job's function. */
static void test_back_to_back_jobs(void **state)
{
    (void)state;
    for (int threads = 2; threads <= 8; threads *= 2) {
        tdm_pool *p = NULL;
        assert_int_equal(tdm_pool_create(threads, &p, NULL), 0);
        for (int64_t r = 0; r < 20000; r++) {
            int64_t n = 1 + (r * 7919) % 97;
            owner_check c = {.size = threads};
            tdm_pool_for(p, n, 1, own, &c);
            assert_int_equal(c.bad, 0);
            assert_int_equal(c.sum, n * (n - 1) / 2);
        }
        tdm_pool_free(p);
    }
}

/* After a pause the workers sleep on the condition variable: the next job
 * must still run every chunk once (by the caller alone if need be), and the
 * workers must wake for later jobs. */
static void test_sleeping_workers(void **state)
{
    (void)state;
    tdm_pool *p = NULL;
    assert_int_equal(tdm_pool_create(4, &p, NULL), 0);
    int seen = 0;
    for (int r = 0; r < 30; r++) {
        nap_ms(r % 3 == 0 ? 3 : 0);
        owner_check c = {.size = 4};
        tdm_pool_for(p, 4096, 1, own, &c);
        assert_int_equal(c.bad, 0);
        assert_int_equal(c.sum, (int64_t)4096 * 4095 / 2);
        seen |= c.workers;
    }
    assert_true(seen & 1); /* the caller always takes part */
    tdm_pool_free(p);
}

/* Freeing a pool whose workers sleep, spin, or never ran a job. */
static void test_create_free(void **state)
{
    (void)state;
    for (int r = 0; r < 50; r++) {
        tdm_pool *p = NULL;
        assert_int_equal(tdm_pool_create(1 + r % 5, &p, NULL), 0);
        if (r % 2) {
            owner_check c = {.size = 1 + r % 5};
            tdm_pool_for(p, 100, 1, own, &c);
            assert_int_equal(c.sum, 4950);
        }
        tdm_pool_free(p);
    }
    tdm_pool *p = NULL;
    assert_int_not_equal(tdm_pool_create(257, &p, NULL), 0);
    assert_null(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_index_once),   cmocka_unit_test(test_null_pool_runs_inline),
        cmocka_unit_test(test_back_to_back_jobs), cmocka_unit_test(test_sleeping_workers),
        cmocka_unit_test(test_create_free),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

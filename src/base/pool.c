/*
 * Thread pool (see pool.h).
 *
 * One job at a time, cut into at most 4 x size chunks. The whole state a
 * thread needs to take part is one 64-bit word, `claim`: the job's
 * generation, its chunk count and the next unclaimed chunk. A thread claims
 * a chunk with a compare-and-swap on that word, so a claim can only succeed
 * for the job that is current at that instant, and the job's fields (fn,
 * arg, n, chunk) stay valid until the claimed chunk is reported done.
 *
 * The caller publishes the job, works on it like any worker, and then waits
 * only for chunks that someone else actually claimed (a `done` count equal
 * to the chunk count). A worker that was descheduled or asleep and wakes up
 * late finds nothing left to claim and costs the caller nothing: on a
 * loaded machine the caller simply does all chunks itself, so two threads
 * are never slower than one by more than a failed claim.
 *
 * Workers spin on the word for a short while (the loops of one inference
 * run arrive microseconds apart) and then sleep on a condition variable;
 * the caller signals only when a worker is actually asleep (`sleepers`,
 * checked after publishing with sequentially consistent operations on both
 * sides, so a wake-up cannot be lost).
 */
#define _POSIX_C_SOURCE 200809L
#include "base/pool.h"

#include <assert.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#include "base/clock.h"

#define SPIN_NS 200000   /* workers spin 200 us before sleeping */
#define YIELD_SPINS 4096 /* the caller yields its core after this many idle polls */

/* claim word: generation (20 bits) | chunk count (22 bits) | next chunk (22 bits) */
#define CNT_BITS 22
#define CNT_MASK ((UINT64_C(1) << CNT_BITS) - 1)
#define GEN_MASK ((UINT64_C(1) << 20) - 1)
#define W_GEN(w) ((w) >> (2 * CNT_BITS))
#define W_TOTAL(w) (((w) >> CNT_BITS) & CNT_MASK)
#define W_NEXT(w) ((w)&CNT_MASK)

struct tdm_pool {
    int size;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t cv_work;
    atomic_uint_fast64_t claim;
    atomic_int_fast64_t done; /* chunks of the current job finished */
    atomic_int sleepers;      /* workers blocked (or about to block) on cv_work */
    atomic_bool stop;
    uint64_t gen; /* caller side only */
    /* the job, written before claim is published, stable while it runs */
    int64_t n, chunk;
    tdm_task_fn fn;
    void *arg;
};

typedef struct worker_arg {
    tdm_pool *p;
    int id;
} worker_arg;

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

/* Claims and runs chunks of whatever job is current until none is left. */
static void run_chunks(tdm_pool *p, int worker)
{
    for (;;) {
        uint64_t w = atomic_load_explicit(&p->claim, memory_order_acquire);
        do {
            if (W_NEXT(w) >= W_TOTAL(w))
                return;
        } while (!atomic_compare_exchange_weak_explicit(&p->claim, &w, w + 1, memory_order_acq_rel,
                                                        memory_order_acquire));
        /* The job cannot end (nor its fields change) before this chunk is done. */
        int64_t b = (int64_t)W_NEXT(w) * p->chunk;
        int64_t e = b + p->chunk < p->n ? b + p->chunk : p->n;
        p->fn(p->arg, b, e, worker);
        atomic_fetch_add_explicit(&p->done, 1, memory_order_release);
    }
}

static void *worker_main(void *argp)
{
    worker_arg wa = *(worker_arg *)argp;
    free(argp);
    tdm_pool *p = wa.p;
    uint64_t seen = 0;
    for (;;) {
        uint64_t t0 = tdm_now_ns();
        unsigned spins = 0;
        while (W_GEN(atomic_load_explicit(&p->claim, memory_order_acquire)) == seen &&
               !atomic_load_explicit(&p->stop, memory_order_relaxed)) {
            cpu_relax();
            if (++spins % 1024 == 0 && tdm_now_ns() - t0 > SPIN_NS) {
                pthread_mutex_lock(&p->mu);
                atomic_fetch_add(&p->sleepers, 1);
                while (W_GEN(atomic_load(&p->claim)) == seen && !atomic_load(&p->stop))
                    pthread_cond_wait(&p->cv_work, &p->mu);
                atomic_fetch_sub(&p->sleepers, 1);
                pthread_mutex_unlock(&p->mu);
            }
        }
        if (atomic_load(&p->stop))
            return NULL;
        seen = W_GEN(atomic_load_explicit(&p->claim, memory_order_acquire));
        run_chunks(p, wa.id);
    }
}

tdm_status tdm_pool_create(int threads, tdm_pool **out, tdm_err *err)
{
    *out = NULL;
    if (threads < 1)
        threads = 1;
    if (threads > 256)
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "thread count %d exceeds 256", threads);
    tdm_pool *p = calloc(1, sizeof *p);
    if (p == NULL)
        return tdm_errf(err, TDM_ERR_NOMEM, "out of memory creating thread pool");
    p->size = threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv_work, NULL);
    atomic_init(&p->claim, 0);
    atomic_init(&p->done, 0);
    atomic_init(&p->sleepers, 0);
    atomic_init(&p->stop, false);
    if (threads > 1) {
        p->threads = calloc((size_t)threads - 1, sizeof *p->threads);
        if (p->threads == NULL) {
            p->size = 1;
            tdm_pool_free(p);
            return tdm_errf(err, TDM_ERR_NOMEM, "out of memory creating thread pool");
        }
        for (int i = 1; i < threads; i++) {
            worker_arg *wa = malloc(sizeof *wa);
            if (wa == NULL) {
                p->size = i;
                tdm_pool_free(p);
                return tdm_errf(err, TDM_ERR_NOMEM, "out of memory creating thread pool");
            }
            wa->p = p;
            wa->id = i;
            if (pthread_create(&p->threads[i - 1], NULL, worker_main, wa) != 0) {
                free(wa);
                p->size = i;
                tdm_pool_free(p);
                return tdm_errf(err, TDM_ERR_INTERNAL, "cannot start worker thread %d", i);
            }
        }
    }
    *out = p;
    return TDM_OK;
}

void tdm_pool_free(tdm_pool *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, true);
    pthread_cond_broadcast(&p->cv_work);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->size; i++)
        pthread_join(p->threads[i - 1], NULL);
    free(p->threads);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv_work);
    free(p);
}

int tdm_pool_size(const tdm_pool *p)
{
    return p == NULL ? 1 : p->size;
}

void tdm_pool_for(tdm_pool *p, int64_t n, int64_t grain, tdm_task_fn fn, void *arg)
{
    if (n <= 0)
        return;
    if (grain < 1)
        grain = 1;
    if (p == NULL || p->size == 1 || n <= grain) {
        fn(arg, 0, n, 0);
        return;
    }
    /* A few chunks per thread balance uneven chunks without much contention. */
    int64_t chunk = (n + (int64_t)p->size * 4 - 1) / ((int64_t)p->size * 4);
    if (chunk < grain)
        chunk = grain;
    int64_t total = (n + chunk - 1) / chunk;
    assert(total >= 1 && (uint64_t)total <= CNT_MASK);
    p->n = n;
    p->chunk = chunk;
    p->fn = fn;
    p->arg = arg;
    atomic_store_explicit(&p->done, 0, memory_order_relaxed);
    /* A generation reused after 2^20 jobs can at worst make a worker that
     * slept through all of them skip one job, which the caller then runs. */
    p->gen = (p->gen + 1) & GEN_MASK;
    if (p->gen == 0)
        p->gen = 1;
    atomic_store(&p->claim, p->gen << (2 * CNT_BITS) | (uint64_t)total << CNT_BITS);
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cv_work);
        pthread_mutex_unlock(&p->mu);
    }
    run_chunks(p, 0);
    /* Everything is claimed; wait for the chunks other threads are running. */
    unsigned spins = 0;
    while (atomic_load_explicit(&p->done, memory_order_acquire) < total) {
        if (++spins < YIELD_SPINS)
            cpu_relax();
        else
            sched_yield();
    }
}

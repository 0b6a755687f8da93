/*
 * Thread pool (see pool.h).
 *
 * One job at a time: the caller publishes (fn, arg, n, chunk) and bumps a
 * generation counter; workers that see the new generation take chunks from a
 * shared atomic cursor, then decrement `active`. Workers spin on the
 * generation for a short while (back-to-back loops of one inference run
 * arrive microseconds apart) and then sleep on a condition variable.
 */
#define _POSIX_C_SOURCE 200809L
#include "base/pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#include "base/clock.h"

#define SPIN_NS 200000 /* spin 200 us before sleeping */

struct tdm_pool {
    int size;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t cv_work;
    pthread_cond_t cv_done;
    atomic_uint_fast64_t gen;
    atomic_int_fast64_t next;
    atomic_int active;
    atomic_bool stop;
    /* the job, written before gen is bumped */
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

static void run_chunks(tdm_pool *p, int worker)
{
    for (;;) {
        int64_t b = atomic_fetch_add_explicit(&p->next, p->chunk, memory_order_relaxed);
        if (b >= p->n)
            break;
        int64_t e = b + p->chunk < p->n ? b + p->chunk : p->n;
        p->fn(p->arg, b, e, worker);
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
        while (atomic_load_explicit(&p->gen, memory_order_acquire) == seen &&
               !atomic_load(&p->stop)) {
            cpu_relax();
            if (++spins % 1024 == 0 && tdm_now_ns() - t0 > SPIN_NS) {
                pthread_mutex_lock(&p->mu);
                while (atomic_load(&p->gen) == seen && !atomic_load(&p->stop))
                    pthread_cond_wait(&p->cv_work, &p->mu);
                pthread_mutex_unlock(&p->mu);
            }
        }
        if (atomic_load(&p->stop))
            return NULL;
        seen = atomic_load_explicit(&p->gen, memory_order_acquire);
        run_chunks(p, wa.id);
        if (atomic_fetch_sub_explicit(&p->active, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_broadcast(&p->cv_done);
            pthread_mutex_unlock(&p->mu);
        }
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
    pthread_cond_init(&p->cv_done, NULL);
    atomic_init(&p->gen, 0);
    atomic_init(&p->next, 0);
    atomic_init(&p->active, 0);
    atomic_init(&p->stop, false);
    if (threads > 1) {
        p->threads = calloc((size_t)threads - 1, sizeof *p->threads);
        if (p->threads == NULL) {
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
    pthread_cond_destroy(&p->cv_done);
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
    p->n = n;
    p->chunk = chunk;
    p->fn = fn;
    p->arg = arg;
    atomic_store_explicit(&p->next, 0, memory_order_relaxed);
    atomic_store_explicit(&p->active, p->size - 1, memory_order_relaxed);
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
    pthread_cond_broadcast(&p->cv_work);
    pthread_mutex_unlock(&p->mu);
    run_chunks(p, 0);
    uint64_t t0 = tdm_now_ns();
    unsigned spins = 0;
    while (atomic_load_explicit(&p->active, memory_order_acquire) > 0) {
        cpu_relax();
        if (++spins % 1024 == 0 && tdm_now_ns() - t0 > SPIN_NS) {
            pthread_mutex_lock(&p->mu);
            while (atomic_load(&p->active) > 0)
                pthread_cond_wait(&p->cv_done, &p->mu);
            pthread_mutex_unlock(&p->mu);
            break;
        }
    }
}

/*
 * A fixed-size thread pool for data-parallel loops.
 *
 * The only primitive is tdm_pool_for: split [0, n) into chunks and run them
 * on the workers and the calling thread, returning when all are done. Chunks
 * are claimed, so the caller waits only for chunks another thread actually
 * took: a worker that is asleep or descheduled (a loaded machine) costs
 * nothing, and the caller runs its share. Workers spin briefly before
 * sleeping, because an inference run issues thousands of short loops back
 * to back and a futex wake per loop would dominate small models. A NULL
 * pool, or a pool of one, runs the loop inline.
 */
#ifndef TANDEM_BASE_POOL_H
#define TANDEM_BASE_POOL_H

#include <stdint.h>

#include "tandem/status.h"

typedef struct tdm_pool tdm_pool;

/* fn runs on [begin, end); worker is 0..size-1 (0 is the caller). */
typedef void (*tdm_task_fn)(void *arg, int64_t begin, int64_t end, int worker);

/* threads counts the caller: 1 creates no thread. */
tdm_status tdm_pool_create(int threads, tdm_pool **out, tdm_err *err);
void tdm_pool_free(tdm_pool *p);
int tdm_pool_size(const tdm_pool *p);

/*
 * Runs fn over [0, n) in chunks of at least grain items (grain <= 0: 1).
 * Not reentrant: fn must not call tdm_pool_for on the same pool.
 */
void tdm_pool_for(tdm_pool *p, int64_t n, int64_t grain, tdm_task_fn fn, void *arg);

#endif

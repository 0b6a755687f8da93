/*
 * Dynamic batcher: EDF queue, batch formation, deadline checks, AIMD (see batcher.h).
 *
 * The queue is a binary min-heap on (deadline, arrival order). Forming a batch pops in
 * deadline order and sets aside what does not fit with the head, then pushes those back:
 * the cost is O(k log n) for a batch of k, with n bounded by max_queue. Waiting for a batch
 * to fill never risks the head's deadline: the wait ends at the earlier of the head's
 * arrival plus max_delay and its deadline minus the expected compute time.
 *
 * Compute time is estimated per row with an exponentially weighted average of measured
 * batches (a fixed part plus a per-row part would be more exact; a per-batch-size table
 * would be sparse). The estimate decides deadline rejections, so it errs towards running.
 */
#include "cloud/batcher.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"

#define LAT_WINDOW 256
#define AIMD_EVERY 32

struct tdm_gw_batcher {
    tdm_gw_batcher_opts o;
    char label[160];
    pthread_mutex_t mu;
    pthread_cond_t work_cv; /* a job arrived or stop */
    tdm_gw_job **heap;
    int n_heap;
    uint64_t next_seq;
    bool stop;
    bool batchable;
    int limit;
    double est_base_s; /* EWMA of one batch's compute time (batch of 1 equivalent) */
    double est_row_s;  /* EWMA of compute time per row */
    double lat[LAT_WINDOW];
    int n_lat, lat_pos, since_adjust;
    int useless_waits; /* consecutive fill waits that gathered no second request */
    uint64_t n_batches;
    int n_workers;
    pthread_t *threads;
};

/* ---- heap ---------------------------------------------------------------------- */

static bool earlier(const tdm_gw_job *a, const tdm_gw_job *b)
{
    if (a->deadline_ns != b->deadline_ns)
        return a->deadline_ns < b->deadline_ns;
    return a->seq < b->seq;
}

static void heap_push(tdm_gw_batcher *b, tdm_gw_job *j)
{
    int i = b->n_heap++;
    b->heap[i] = j;
    while (i > 0) {
        int p = (i - 1) / 2;
        if (!earlier(b->heap[i], b->heap[p]))
            break;
        tdm_gw_job *t = b->heap[i];
        b->heap[i] = b->heap[p];
        b->heap[p] = t;
        i = p;
    }
}

static tdm_gw_job *heap_pop(tdm_gw_batcher *b)
{
    assert(b->n_heap > 0);
    tdm_gw_job *top = b->heap[0];
    b->heap[0] = b->heap[--b->n_heap];
    int i = 0;
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < b->n_heap && earlier(b->heap[l], b->heap[m]))
            m = l;
        if (r < b->n_heap && earlier(b->heap[r], b->heap[m]))
            m = r;
        if (m == i)
            break;
        tdm_gw_job *t = b->heap[i];
        b->heap[i] = b->heap[m];
        b->heap[m] = t;
        i = m;
    }
    return top;
}

/* ---- helpers ---------------------------------------------------------------------- */

static double est_compute_s(const tdm_gw_batcher *b, int64_t rows)
{
    return b->est_base_s + b->est_row_s * (double)(rows > 1 ? rows - 1 : 0);
}

static bool fits(const tdm_gw_batcher *b, const tdm_gw_job *a, const tdm_gw_job *c)
{
    for (int i = 0; i < b->o.n_in; i++) {
        const tdm_tensor *x = &a->inputs[i], *y = &c->inputs[i];
        if (x->dtype != y->dtype || x->ndim != y->ndim || x->ndim < 1)
            return false;
        for (int d = 1; d < x->ndim; d++)
            if (x->dims[d] != y->dims[d] && d != b->o.pad_axis)
                return false;
    }
    return true;
}

static void finish_job(tdm_gw_job *j, int status, const char *code, const char *msg)
{
    j->http_status = status;
    if (code)
        snprintf(j->code, sizeof j->code, "%s", code);
    if (msg)
        snprintf(j->msg, sizeof j->msg, "%s", msg);
}

static void record_latency(tdm_gw_batcher *b, double s)
{
    b->lat[b->lat_pos] = s;
    b->lat_pos = (b->lat_pos + 1) % LAT_WINDOW;
    if (b->n_lat < LAT_WINDOW)
        b->n_lat++;
    b->since_adjust++;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* AIMD step after a batch of `rows` rows, under the lock. */
static void adapt(tdm_gw_batcher *b, int64_t rows)
{
    if (!b->o.adaptive || !b->batchable || b->since_adjust < AIMD_EVERY)
        return;
    double tmp[LAT_WINDOW];
    memcpy(tmp, b->lat, (size_t)b->n_lat * sizeof(double));
    qsort(tmp, (size_t)b->n_lat, sizeof(double), cmp_double);
    double p99 = tmp[(int)((b->n_lat - 1) * 0.99)];
    b->since_adjust = 0;
    if (p99 * 1000.0 > b->o.slo_ms) {
        int nl = b->limit * 3 / 4;
        b->limit = nl < 1 ? 1 : nl;
        b->n_lat = 0;
        b->lat_pos = 0;
    } else if (rows >= b->limit && b->limit < b->o.max_batch) {
        b->limit++;
    }
    if (b->o.metrics)
        tdm_gw_metrics_batch_limit(b->o.metrics, b->label, b->limit);
}

/* ---- running a batch ---------------------------------------------------------------- */

/* Concatenates the inputs of jobs along dim 0, zero-padding o.pad_axis. */
static tdm_status concat_inputs(const tdm_gw_batcher *b, tdm_gw_job **jobs, int n, int64_t rows,
                                tdm_tensor *out, tdm_err *err)
{
    for (int i = 0; i < b->o.n_in; i++) {
        const tdm_tensor *t0 = &jobs[0]->inputs[i];
        int64_t dims[TDM_MAX_DIMS];
        memcpy(dims, t0->dims, sizeof dims);
        dims[0] = rows;
        int pa = b->o.pad_axis;
        if (pa >= 1 && pa < t0->ndim)
            for (int k = 1; k < n; k++)
                if (jobs[k]->inputs[i].dims[pa] > dims[pa])
                    dims[pa] = jobs[k]->inputs[i].dims[pa];
        tdm_status st = tdm_tensor_make(&out[i], t0->dtype, t0->ndim, dims, err);
        if (st != TDM_OK)
            return st;
        size_t es = tdm_dtype_size(t0->dtype);
        /* outer = rows * prod(dims[1..pa)), inner = prod(dims(pa..]) */
        char *dst = out[i].data;
        size_t row_bytes = tdm_tensor_nbytes(&out[i]) / (size_t)(rows ? rows : 1);
        for (int k = 0; k < n; k++) {
            const tdm_tensor *src = &jobs[k]->inputs[i];
            if (pa < 1 || pa >= src->ndim || src->dims[pa] == dims[pa]) {
                size_t nb = tdm_tensor_nbytes(src);
                memcpy(dst, src->data, nb);
                dst += nb;
                continue;
            }
            /* copy blocks of the source's axis length into the padded layout */
            size_t inner = es;
            for (int d = pa + 1; d < src->ndim; d++)
                inner *= (size_t)src->dims[d];
            size_t outer = (size_t)src->dims[0];
            for (int d = 1; d < pa; d++)
                outer *= (size_t)src->dims[d];
            const char *s = src->data;
            size_t src_blk = inner * (size_t)src->dims[pa], dst_blk = inner * (size_t)dims[pa];
            for (size_t r = 0; r < outer; r++)
                memcpy(dst + r * dst_blk, s + r * src_blk, src_blk);
            dst += row_bytes * (size_t)src->dims[0];
        }
    }
    return TDM_OK;
}

/* Copies rows [r0, r0+nr) of t (trimming pad_axis to len when len >= 0) into an owned out. */
static tdm_status slice_rows(const tdm_tensor *t, int64_t r0, int64_t nr, int pad_axis, int64_t len,
                             tdm_tensor *out, tdm_err *err)
{
    int64_t dims[TDM_MAX_DIMS];
    memcpy(dims, t->dims, sizeof dims);
    dims[0] = nr;
    bool trim = pad_axis >= 1 && pad_axis < t->ndim && len >= 0 && len < t->dims[pad_axis];
    if (trim)
        dims[pad_axis] = len;
    tdm_status st = tdm_tensor_make(out, t->dtype, t->ndim, dims, err);
    if (st != TDM_OK)
        return st;
    size_t es = tdm_dtype_size(t->dtype);
    size_t src_row = tdm_tensor_nbytes(t) / (size_t)(t->dims[0] ? t->dims[0] : 1);
    const char *src = (const char *)t->data + (size_t)r0 * src_row;
    if (!trim) {
        memcpy(out->data, src, src_row * (size_t)nr);
        return TDM_OK;
    }
    size_t inner = es;
    for (int d = pad_axis + 1; d < t->ndim; d++)
        inner *= (size_t)t->dims[d];
    size_t outer = (size_t)nr;
    for (int d = 1; d < pad_axis; d++)
        outer *= (size_t)t->dims[d];
    size_t sblk = inner * (size_t)t->dims[pad_axis], dblk = inner * (size_t)len;
    for (size_t r = 0; r < outer; r++)
        memcpy((char *)out->data + r * dblk, src + r * sblk, dblk);
    return TDM_OK;
}

static int status_of(tdm_status st)
{
    return st == TDM_ERR_SHAPE || st == TDM_ERR_INVALID_ARG ? 400 : st == TDM_ERR_NOMEM ? 507 : 500;
}

/* Runs one job alone (batch of its own rows). */
static void run_single(tdm_gw_batcher *b, int w, tdm_gw_job *j, double *compute_s)
{
    tdm_err err = {{0}};
    uint64_t t0 = tdm_now_ns();
    tdm_status st = b->o.run(b->o.run_ctx, w, b->o.n_in, j->inputs, b->o.n_out, j->outputs, &err);
    double dt = (double)(tdm_now_ns() - t0) * 1e-9;
    *compute_s = dt;
    j->compute_s = dt;
    if (st != TDM_OK) {
        finish_job(j, status_of(st), st == TDM_ERR_SHAPE ? "bad_shape" : "engine_error", err.msg);
        return;
    }
    j->n_out = b->o.n_out;
    j->http_status = 200;
}

/* Runs jobs[0..n) as one batch; false when the model cannot batch them (caller falls back). */
static bool run_batch(tdm_gw_batcher *b, int w, tdm_gw_job **jobs, int n, int64_t rows,
                      double *compute_s)
{
    tdm_tensor in[TDM_GW_MAX_IO], out[TDM_GW_MAX_IO];
    memset(in, 0, sizeof in);
    memset(out, 0, sizeof out);
    tdm_err err = {{0}};
    bool ok = false;
    if (concat_inputs(b, jobs, n, rows, in, &err) != TDM_OK) {
        for (int k = 0; k < n; k++)
            finish_job(jobs[k], 507, "out_of_memory", err.msg);
        ok = true; /* answered */
        goto done;
    }
    uint64_t t0 = tdm_now_ns();
    tdm_status st = b->o.run(b->o.run_ctx, w, b->o.n_in, in, b->o.n_out, out, &err);
    *compute_s = (double)(tdm_now_ns() - t0) * 1e-9;
    if (st != TDM_OK)
        goto done; /* not batchable, or a genuine failure: the caller retries one by one */
    for (int i = 0; i < b->o.n_out; i++)
        if (out[i].ndim < 1 || out[i].dims[0] != rows)
            goto done; /* outputs do not keep the batch on dim 0 */
    int64_t r0 = 0;
    for (int k = 0; k < n; k++) {
        tdm_gw_job *j = jobs[k];
        int64_t len = -1;
        if (b->o.pad_axis >= 1 && b->o.pad_axis < j->inputs[0].ndim)
            len = j->inputs[0].dims[b->o.pad_axis];
        j->http_status = 200;
        for (int i = 0; i < b->o.n_out; i++) {
            if (slice_rows(&out[i], r0, j->rows, b->o.pad_axis, len, &j->outputs[i], &err) !=
                TDM_OK) {
                for (int q = 0; q < i; q++)
                    tdm_tensor_free(&j->outputs[q]);
                finish_job(j, 507, "out_of_memory", err.msg);
                break;
            }
        }
        if (j->http_status == 200)
            j->n_out = b->o.n_out;
        j->compute_s = *compute_s;
        r0 += j->rows;
    }
    ok = true;
done:
    for (int i = 0; i < TDM_GW_MAX_IO; i++) {
        tdm_tensor_free(&in[i]);
        tdm_tensor_free(&out[i]);
    }
    return ok;
}

/* ---- the worker ---------------------------------------------------------------------- */

typedef struct worker_arg {
    tdm_gw_batcher *b;
    int index;
} worker_arg;

static void abs_time(struct timespec *ts, uint64_t mono_ns)
{
    ts->tv_sec = (time_t)(mono_ns / 1000000000ull);
    ts->tv_nsec = (long)(mono_ns % 1000000000ull);
}

static void *worker_main(void *p)
{
    worker_arg *wa = p;
    tdm_gw_batcher *b = wa->b;
    int w = wa->index;
    free(wa);
    tdm_gw_job **batch = malloc(sizeof(tdm_gw_job *) * (size_t)(b->o.max_batch + 1));
    tdm_gw_job **dead = malloc(sizeof(tdm_gw_job *) * (size_t)(b->o.max_batch + 1));
    tdm_gw_job **aside = malloc(sizeof(tdm_gw_job *) * (size_t)(b->o.max_queue + 1));
    if (!batch || !aside || !dead) {
        /* cannot happen in practice (small sizes); keep serving one job at a time */
        free(batch);
        free(aside);
        free(dead);
        batch = NULL;
        aside = NULL;
        dead = NULL;
    }
    tdm_gw_job *one[1], *one_dead[1];
    pthread_mutex_lock(&b->mu);
    for (;;) {
        while (b->n_heap == 0 && !b->stop)
            pthread_cond_wait(&b->work_cv, &b->mu);
        if (b->n_heap == 0 && b->stop)
            break;
        int limit = b->batchable && batch ? b->limit : 1;
        /* wait for the batch to fill, without risking the most urgent deadline; skip the
         * wait while recent waits gathered nothing (a closed-loop client alone), probing
         * again every 16th batch */
        bool waited = false;
        bool skip = b->useless_waits >= 4 && (b->n_batches % 16) != 0;
        while (limit > 1 && b->n_heap < limit && !b->stop && !skip) {
            waited = true;
            tdm_gw_job *head = b->heap[0];
            uint64_t now = tdm_now_ns();
            uint64_t until = head->enqueue_ns + (uint64_t)(b->o.max_delay_ms * 1e6);
            uint64_t est = (uint64_t)(est_compute_s(b, limit) * 1e9);
            if (head->deadline_ns > est && head->deadline_ns - est < until)
                until = head->deadline_ns - est;
            if (now >= until)
                break;
            struct timespec ts;
            abs_time(&ts, until);
            pthread_cond_timedwait(&b->work_cv, &b->mu, &ts);
            if (b->n_heap == 0)
                break;
        }
        if (b->n_heap == 0)
            continue;
        /* pop the head and what fits with it, in deadline order */
        tdm_gw_job **sel = batch ? batch : one;
        int n = 0, n_aside = 0;
        int64_t rows = 0;
        b->n_batches++;
        if (waited)
            b->useless_waits = b->n_heap == 1 ? b->useless_waits + 1 : 0;
        else if (b->n_heap > 1)
            b->useless_waits = 0; /* requests are arriving together again */
        tdm_gw_job *head = heap_pop(b);
        sel[n++] = head;
        rows = head->rows;
        while (b->n_heap > 0 && rows < limit) {
            tdm_gw_job *j = heap_pop(b);
            if (rows + j->rows <= limit && fits(b, head, j)) {
                sel[n++] = j;
                rows += j->rows;
            } else {
                aside[n_aside++] = j;
                if (n_aside >= b->o.max_queue)
                    break;
            }
        }
        for (int k = 0; k < n_aside; k++)
            heap_push(b, aside[k]);
        if (b->n_heap > 0)
            pthread_cond_signal(&b->work_cv); /* another worker may take the rest */
        double est = est_compute_s(b, rows);
        pthread_mutex_unlock(&b->mu);

        /* drop the departed, refuse what cannot make its deadline */
        uint64_t now = tdm_now_ns();
        int m = 0, n_dead = 0;
        int64_t live_rows = 0;
        tdm_gw_job **gone = dead ? dead : one_dead;
        for (int k = 0; k < n; k++) {
            tdm_gw_job *j = sel[k];
            j->queue_s = (double)(now - j->enqueue_ns) * 1e-9;
            if (j->gone && j->gone(j->gone_arg)) {
                finish_job(j, 499, "client_closed", "the client closed the connection");
                if (b->o.metrics)
                    tdm_gw_metrics_event(b->o.metrics, "dropped_disconnected");
                gone[n_dead++] = j;
                continue;
            }
            if ((double)now + est * 1e9 > (double)j->deadline_ns) {
                finish_job(j, 504, "deadline_exceeded",
                           "the deadline cannot be met: it would pass before the model finishes");
                if (b->o.metrics)
                    tdm_gw_metrics_event(b->o.metrics, "rejected_deadline");
                gone[n_dead++] = j;
                continue;
            }
            sel[m++] = j;
            live_rows += j->rows;
        }
        double compute_s = 0;
        if (m == 1) {
            run_single(b, w, sel[0], &compute_s);
        } else if (m > 1) {
            if (!run_batch(b, w, sel, m, live_rows, &compute_s)) {
                compute_s = 0;
                bool all_ok = true;
                for (int k = 0; k < m; k++) {
                    double c = 0;
                    run_single(b, w, sel[k], &c);
                    compute_s += c;
                    all_ok = all_ok && sel[k]->http_status == 200;
                }
                live_rows = 1;
                /* each alone ran but together they did not: the model cannot batch (a bad
                 * request in the batch does not count against batching) */
                pthread_mutex_lock(&b->mu);
                if (all_ok && b->batchable) {
                    fprintf(stderr,
                            "{\"event\":\"batching_disabled\",\"batcher\":\"%s\",\"reason\":"
                            "\"the model did not accept a batch\"}\n",
                            b->label);
                    b->batchable = false;
                }
                pthread_mutex_unlock(&b->mu);
            }
        }
        if (b->o.metrics && m > 0) {
            tdm_gw_metrics_batch(b->o.metrics, b->label, m, compute_s);
            for (int k = 0; k < m; k++)
                tdm_gw_metrics_queue_time(b->o.metrics, sel[k]->queue_s);
        }
        pthread_mutex_lock(&b->mu);
        if (m > 0 && compute_s > 0) {
            /* split the measurement into a base and a per-row part (EWMA, alpha 0.2) */
            double per_row = live_rows > 1 ? compute_s / (double)live_rows : 0;
            if (live_rows <= 1 || b->est_base_s == 0)
                b->est_base_s =
                    b->est_base_s == 0 ? compute_s : 0.8 * b->est_base_s + 0.2 * compute_s;
            if (live_rows > 1)
                b->est_row_s = b->est_row_s == 0 ? per_row : 0.8 * b->est_row_s + 0.2 * per_row;
        }
        for (int k = 0; k < m; k++) {
            sel[k]->batch_size = m;
            record_latency(b, sel[k]->queue_s + sel[k]->compute_s);
            sel[k]->done = true;
            pthread_cond_signal(&sel[k]->done_cv);
        }
        for (int k = 0; k < n_dead; k++) {
            gone[k]->done = true;
            pthread_cond_signal(&gone[k]->done_cv);
        }
        adapt(b, live_rows);
    }
    pthread_mutex_unlock(&b->mu);
    free(batch);
    free(aside);
    free(dead);
    return NULL;
}

tdm_status tdm_gw_batcher_create(const tdm_gw_batcher_opts *o, tdm_gw_batcher **out, tdm_err *err)
{
    *out = NULL;
    if (o->n_in < 1 || o->n_in > TDM_GW_MAX_IO || o->n_out < 1 || o->n_out > TDM_GW_MAX_IO)
        return tdm_errf(err, TDM_ERR_UNSUPPORTED, "%s: %d inputs and %d outputs (at most %d each)",
                        o->label ? o->label : "batcher", o->n_in, o->n_out, TDM_GW_MAX_IO);
    tdm_gw_batcher *b = calloc(1, sizeof *b);
    if (!b)
        return tdm_errf(err, TDM_ERR_NOMEM, "out of memory for a batcher");
    b->o = *o;
    if (b->o.workers < 1)
        b->o.workers = 1;
    if (b->o.max_batch < 1)
        b->o.max_batch = 1;
    if (b->o.max_queue < 1)
        b->o.max_queue = 1;
    snprintf(b->label, sizeof b->label, "%s", o->label ? o->label : "batcher");
    b->o.label = b->label;
    b->batchable = o->batchable && o->max_batch > 1;
    b->limit = b->o.max_batch;
    b->heap = calloc((size_t)b->o.max_queue + 1, sizeof *b->heap);
    b->threads = calloc((size_t)b->o.workers, sizeof *b->threads);
    if (!b->heap || !b->threads) {
        free(b->heap);
        free(b->threads);
        free(b);
        return tdm_errf(err, TDM_ERR_NOMEM, "out of memory for a batcher");
    }
    pthread_mutex_init(&b->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&b->work_cv, &ca);
    pthread_condattr_destroy(&ca);
    for (int i = 0; i < b->o.workers; i++) {
        worker_arg *wa = malloc(sizeof *wa);
        if (wa) {
            wa->b = b;
            wa->index = i;
        }
        if (!wa || pthread_create(&b->threads[i], NULL, worker_main, wa) != 0) {
            free(wa);
            b->n_workers = i;
            tdm_gw_batcher_free(b);
            return tdm_errf(err, TDM_ERR_NOMEM, "cannot start batch worker %d", i);
        }
        b->n_workers = i + 1;
    }
    if (o->metrics)
        tdm_gw_metrics_batch_limit(o->metrics, b->label, b->limit);
    *out = b;
    return TDM_OK;
}

void tdm_gw_batcher_free(tdm_gw_batcher *b)
{
    if (!b)
        return;
    pthread_mutex_lock(&b->mu);
    b->stop = true;
    pthread_cond_broadcast(&b->work_cv);
    pthread_mutex_unlock(&b->mu);
    for (int i = 0; i < b->n_workers; i++)
        pthread_join(b->threads[i], NULL);
    pthread_mutex_destroy(&b->mu);
    pthread_cond_destroy(&b->work_cv);
    free(b->heap);
    free(b->threads);
    free(b);
}

void tdm_gw_batcher_run(tdm_gw_batcher *b, tdm_gw_job *job)
{
    job->done = false;
    job->n_out = 0;
    job->http_status = 0;
    job->code[0] = job->msg[0] = '\0';
    job->rows = job->inputs[0].ndim >= 1 ? job->inputs[0].dims[0] : 1;
    if (job->rows < 1)
        job->rows = 1;
    job->enqueue_ns = tdm_now_ns();
    pthread_mutex_lock(&b->mu);
    if (b->stop) {
        pthread_mutex_unlock(&b->mu);
        finish_job(job, 503, "shutting_down", "the model is being unloaded");
        return;
    }
    if (b->n_heap >= b->o.max_queue) {
        pthread_mutex_unlock(&b->mu);
        finish_job(job, 429, "queue_full", "the model's queue is full");
        return;
    }
    /* refuse before queueing when even an immediate run would miss the deadline */
    if (b->est_base_s > 0 &&
        (double)job->enqueue_ns + est_compute_s(b, job->rows) * 1e9 > (double)job->deadline_ns) {
        pthread_mutex_unlock(&b->mu);
        finish_job(job, 504, "deadline_exceeded",
                   "the deadline cannot be met: it is shorter than the model's compute time");
        if (b->o.metrics)
            tdm_gw_metrics_event(b->o.metrics, "rejected_deadline");
        return;
    }
    /* each job has its own condition: a finished batch wakes only its own waiters, not
     * every handler thread parked on the batcher */
    pthread_cond_init(&job->done_cv, NULL);
    job->seq = b->next_seq++;
    heap_push(b, job);
    pthread_cond_signal(&b->work_cv);
    while (!job->done)
        pthread_cond_wait(&job->done_cv, &b->mu);
    pthread_mutex_unlock(&b->mu);
    pthread_cond_destroy(&job->done_cv);
}

int tdm_gw_batcher_limit(tdm_gw_batcher *b)
{
    pthread_mutex_lock(&b->mu);
    int l = b->batchable ? b->limit : 1;
    pthread_mutex_unlock(&b->mu);
    return l;
}

double tdm_gw_batcher_estimate_s(tdm_gw_batcher *b)
{
    pthread_mutex_lock(&b->mu);
    double e = b->est_base_s;
    pthread_mutex_unlock(&b->mu);
    return e;
}

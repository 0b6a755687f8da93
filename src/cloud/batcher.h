/*
 * The dynamic batcher: one per model version and entry point (whole model or a cut's tail).
 *
 * Requests wait in an earliest-deadline-first queue. A worker takes the most urgent request
 * and the next most urgent ones whose inputs fit with it (same dtypes and shapes except the
 * batch dimension and, for text models, the padded sequence axis), up to the current batch
 * limit, waiting at most max_delay for the batch to fill. Before a batch runs, every member
 * whose client has gone is dropped and every member whose deadline cannot be met (now plus
 * the measured compute time of such a batch) is answered 504 without running. Inputs are
 * concatenated along dim 0 (padding the sequence axis with zeros), run once, and the outputs
 * are cut back into per-request rows.
 *
 * Waiting for a batch to fill only pays when other requests arrive meanwhile: after four
 * waits in a row that gathered nothing (one client in a closed loop), the batcher stops
 * waiting and probes again every 16th batch, so a lone client does not pay max_delay.
 *
 * The batch limit adapts (AIMD, as in Clipper): every window of completions whose p99
 * latency exceeds the SLO shrinks it by a quarter; a full batch within the SLO grows it by
 * one, up to max_batch. A model that cannot take batches (fixed batch dimension, or outputs
 * that do not keep the batch on dim 0) is detected on its first failing batch and then runs
 * requests one at a time.
 *
 * The work itself is a callback, so that the scheduling logic is tested on its own; the
 * registry supplies one that runs an engine session per worker.
 */
#ifndef TANDEM_CLOUD_BATCHER_H
#define TANDEM_CLOUD_BATCHER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "cloud/metrics.h"
#include "tandem/status.h"
#include "tandem/tensor.h"

#define TDM_GW_MAX_IO 8

/* Runs one batch on worker w: n_in inputs -> n_out owned outputs. */
typedef tdm_status (*tdm_gw_run_fn)(void *ctx, int worker, int n_in, const tdm_tensor *in,
                                    int n_out, tdm_tensor *out, tdm_err *err);

typedef struct tdm_gw_batcher_opts {
    tdm_gw_run_fn run;
    void *run_ctx;
    int n_in, n_out;
    int workers;
    bool batchable; /* false: one request per run */
    int pad_axis;   /* >= 1: inputs may differ on this axis and are zero-padded; -1: none */
    int max_batch;  /* rows per batch */
    double max_delay_ms;
    bool adaptive;
    double slo_ms;
    int max_queue;           /* queued requests; more are refused (429) */
    tdm_gw_metrics *metrics; /* may be NULL */
    const char *label;       /* "model/version/entry" for metrics and logs */
} tdm_gw_batcher_opts;

typedef struct tdm_gw_job {
    /* in */
    const tdm_tensor *inputs; /* n_in tensors, borrowed until the job is done */
    uint64_t deadline_ns;     /* tdm_now_ns() clock */
    bool (*gone)(void *arg);  /* true when the client has disconnected; may be NULL */
    void *gone_arg;
    /* out */
    int http_status; /* 200, or the error status */
    char code[32];   /* error code when http_status != 200 */
    char msg[256];
    int n_out;
    tdm_tensor outputs[TDM_GW_MAX_IO]; /* owned; free with tdm_tensor_free */
    double queue_s, compute_s;
    int batch_size; /* requests in the batch this job ran in */
    /* internal */
    int64_t rows;
    uint64_t enqueue_ns;
    uint64_t seq;
    bool done;
    pthread_cond_t done_cv;
} tdm_gw_job;

typedef struct tdm_gw_batcher tdm_gw_batcher;

tdm_status tdm_gw_batcher_create(const tdm_gw_batcher_opts *o, tdm_gw_batcher **out, tdm_err *err);
/* Finishes every queued job, then stops the workers. */
void tdm_gw_batcher_free(tdm_gw_batcher *b);

/* Queues job and waits until it is answered. Inputs must have been validated. */
void tdm_gw_batcher_run(tdm_gw_batcher *b, tdm_gw_job *job);

int tdm_gw_batcher_limit(tdm_gw_batcher *b);
/* Estimated compute seconds of a batch of one (0 until measured). */
double tdm_gw_batcher_estimate_s(tdm_gw_batcher *b);

#endif

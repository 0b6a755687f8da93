/*
 * The batcher's scheduling: earliest deadline first, batches formed from compatible
 * requests only, deadlines that cannot be met refused with 504 before running, departed
 * clients dropped, padding on the sequence axis cut back off, a model that cannot batch
 * detected, and AIMD shrinking the batch limit when latency exceeds the SLO.
 *
 * The work function is a real computation (each output row is its input row times two, plus
 * the row's position in the batch times 1000 for tests that check batch composition), run
 * by a gate that the test opens, so the queue's contents at each batch are deterministic.
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

#include "base/clock.h"
#include "cloud/batcher.h"

typedef struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int open;    /* runs allowed to start */
    int started; /* runs started */
    int calls;
    int sizes[64];    /* rows of each run */
    int fail_batches; /* refuse batches of more than one row (a fixed-batch model) */
    int sleep_ms;
} gate;

static tdm_status work(void *ctx, int worker, int n_in, const tdm_tensor *in, int n_out,
                       tdm_tensor *out, tdm_err *err)
{
    gate *g = ctx;
    pthread_mutex_lock(&g->mu);
    g->started++;
    while (g->started > g->open)
        pthread_cond_wait(&g->cv, &g->mu);
    if (g->calls < 64)
        g->sizes[g->calls] = (int)in[0].dims[0];
    g->calls++;
    int fail = g->fail_batches && in[0].dims[0] > 1;
    int sl = g->sleep_ms;
    pthread_mutex_unlock(&g->mu);
    if (sl)
        usleep((useconds_t)sl * 1000);
    if (fail)
        return tdm_errf(err, TDM_ERR_SHAPE, "dim 0 must be 1");
    tdm_status st = tdm_tensor_make(&out[0], in[0].dtype, in[0].ndim, in[0].dims, err);
    if (st != TDM_OK)
        return st;
    int64_t n = tdm_tensor_numel(&in[0]), per = n / in[0].dims[0];
    for (int64_t i = 0; i < n; i++)
        ((float *)out[0].data)[i] = ((const float *)in[0].data)[i] * 2 + (float)(i / per) * 1000;
    return TDM_OK;
}

static void gate_open(gate *g, int n)
{
    pthread_mutex_lock(&g->mu);
    g->open += n;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

static void wait_started(gate *g, int n)
{
    for (int i = 0; i < 2000; i++) {
        pthread_mutex_lock(&g->mu);
        int s = g->started;
        pthread_mutex_unlock(&g->mu);
        if (s >= n)
            return;
        usleep(1000);
    }
    fail_msg("the worker never started run %d", n);
}

typedef struct req {
    tdm_gw_batcher *b;
    tdm_tensor in;
    tdm_gw_job job;
    pthread_t t;
    bool gone;
    bool joined;
} req;

static bool is_gone(void *arg)
{
    return ((req *)arg)->gone;
}

static void *submit_main(void *p)
{
    req *r = p;
    tdm_gw_batcher_run(r->b, &r->job);
    return NULL;
}

static void make_req(req *r, tdm_gw_batcher *b, float value, int64_t len, double deadline_ms)
{
    memset(r, 0, sizeof *r);
    r->b = b;
    int64_t dims[2] = {1, len};
    assert_int_equal(tdm_tensor_make(&r->in, TDM_DTYPE_FLOAT32, 2, dims, NULL), TDM_OK);
    for (int64_t i = 0; i < len; i++)
        ((float *)r->in.data)[i] = value;
    r->job.inputs = &r->in;
    r->job.deadline_ns = tdm_now_ns() + (uint64_t)(deadline_ms * 1e6);
    r->job.gone = is_gone;
    r->job.gone_arg = r;
}

static void start(req *r)
{
    assert_int_equal(pthread_create(&r->t, NULL, submit_main, r), 0);
}

/* Waits for r's submission to return (its status and outputs are then final). */
static void join_req(req *r)
{
    if (!r->joined)
        pthread_join(r->t, NULL);
    r->joined = true;
}

static void finish(req *r)
{
    join_req(r);
    for (int i = 0; i < r->job.n_out; i++)
        tdm_tensor_free(&r->job.outputs[i]);
    tdm_tensor_free(&r->in);
}

/* Waits until the batcher queue holds n jobs (they are queued from other threads). */
static void settle(void)
{
    usleep(30000);
}

static tdm_gw_batcher *make(gate *g, int max_batch, bool batchable, int pad_axis)
{
    memset(g, 0, sizeof *g);
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    tdm_gw_batcher_opts o = {
        .run = work,
        .run_ctx = g,
        .n_in = 1,
        .n_out = 1,
        .workers = 1,
        .batchable = batchable,
        .pad_axis = pad_axis,
        .max_batch = max_batch,
        .max_delay_ms = 0,
        .adaptive = false,
        .slo_ms = 1000,
        .max_queue = 64,
        .label = "test",
    };
    tdm_gw_batcher *b = NULL;
    assert_int_equal(tdm_gw_batcher_create(&o, &b, NULL), TDM_OK);
    return b;
}

static void test_edf_order_and_batches(void **state)
{
    (void)state;
    gate g;
    tdm_gw_batcher *b = make(&g, 2, true, -1);
    /* a first request occupies the worker */
    req r0, r[4];
    make_req(&r0, b, 1, 3, 10000);
    start(&r0);
    wait_started(&g, 1);
    /* queued with deadlines 4000, 1000, 3000, 2000 ms: EDF runs 1,3 then 2,0 */
    double dl[4] = {4000, 1000, 3000, 2000};
    for (int i = 0; i < 4; i++) {
        make_req(&r[i], b, (float)(i + 10), 3, dl[i]);
        start(&r[i]);
    }
    settle();
    gate_open(&g, 10);
    finish(&r0);
    for (int i = 0; i < 4; i++) {
        join_req(&r[i]);
        assert_int_equal(r[i].job.http_status, 200);
    }
    /* position in batch: r1 first (row 0) then r3 (row 1); then r2 (row 0), r0 (row 1) */
    float v1 = ((float *)r[1].job.outputs[0].data)[0];
    float v3 = ((float *)r[3].job.outputs[0].data)[0];
    float v2 = ((float *)r[2].job.outputs[0].data)[0];
    float v0 = ((float *)r[0].job.outputs[0].data)[0];
    assert_float_equal(v1, 11 * 2 + 0, 1e-6);
    assert_float_equal(v3, 13 * 2 + 1000, 1e-6);
    assert_float_equal(v2, 12 * 2 + 0, 1e-6);
    assert_float_equal(v0, 10 * 2 + 1000, 1e-6);
    assert_int_equal(r[1].job.batch_size, 2);
    assert_int_equal(g.calls, 3);
    assert_int_equal(g.sizes[1], 2);
    assert_int_equal(g.sizes[2], 2);
    for (int i = 0; i < 4; i++)
        finish(&r[i]);
    tdm_gw_batcher_free(b);
}

static void test_incompatible_shapes_not_mixed(void **state)
{
    (void)state;
    gate g;
    tdm_gw_batcher *b = make(&g, 8, true, -1);
    req r0, a, c;
    make_req(&r0, b, 1, 3, 10000);
    start(&r0);
    wait_started(&g, 1);
    make_req(&a, b, 2, 3, 1000);
    make_req(&c, b, 3, 5, 1000); /* another length and no padding axis: its own batch */
    start(&a);
    start(&c);
    settle();
    gate_open(&g, 10);
    finish(&r0);
    finish(&a);
    finish(&c);
    assert_int_equal(a.job.http_status, 200);
    assert_int_equal(c.job.http_status, 200);
    assert_int_equal(g.calls, 3);
    assert_int_equal(g.sizes[1], 1);
    assert_int_equal(g.sizes[2], 1);
    tdm_gw_batcher_free(b);
}

static void test_padding_cut_back(void **state)
{
    (void)state;
    gate g;
    tdm_gw_batcher *b = make(&g, 8, true, 1);
    req r0, a, c;
    make_req(&r0, b, 1, 3, 10000);
    start(&r0);
    wait_started(&g, 1);
    make_req(&a, b, 2, 2, 1000);
    make_req(&c, b, 3, 5, 2000);
    start(&a);
    start(&c);
    settle();
    gate_open(&g, 10);
    pthread_join(r0.t, NULL);
    pthread_join(a.t, NULL);
    pthread_join(c.t, NULL);
    assert_int_equal(g.calls, 2);
    assert_int_equal(g.sizes[1], 2);
    assert_int_equal(a.job.outputs[0].dims[1], 2);
    assert_int_equal(c.job.outputs[0].dims[1], 5);
    for (int i = 0; i < 2; i++)
        assert_float_equal(((float *)a.job.outputs[0].data)[i], 4, 1e-6);
    for (int i = 0; i < 5; i++)
        assert_float_equal(((float *)c.job.outputs[0].data)[i], 1006, 1e-6);
    r0.t = a.t = c.t = pthread_self();
    for (req *p = &r0; p; p = p == &r0 ? &a : p == &a ? &c : NULL) {
        for (int i = 0; i < p->job.n_out; i++)
            tdm_tensor_free(&p->job.outputs[i]);
        tdm_tensor_free(&p->in);
    }
    tdm_gw_batcher_free(b);
}

static void test_deadline_and_disconnect(void **state)
{
    (void)state;
    gate g;
    tdm_gw_batcher *b = make(&g, 4, true, -1);
    req r0, late, gone, ok;
    make_req(&r0, b, 1, 3, 10000);
    start(&r0);
    wait_started(&g, 1);
    make_req(&late, b, 2, 3, 20); /* expires while the worker is busy */
    make_req(&gone, b, 3, 3, 5000);
    make_req(&ok, b, 4, 3, 5000);
    start(&late);
    start(&gone);
    start(&ok);
    settle();
    gone.gone = true;
    usleep(30000); /* past late's deadline */
    gate_open(&g, 10);
    finish(&r0);
    finish(&late);
    finish(&gone);
    finish(&ok);
    assert_int_equal(late.job.http_status, 504);
    assert_string_equal(late.job.code, "deadline_exceeded");
    assert_int_equal(gone.job.http_status, 499);
    assert_int_equal(ok.job.http_status, 200);
    assert_int_equal(g.calls, 2); /* r0 and ok: the other two never ran */
    assert_int_equal(g.sizes[1], 1);
    tdm_gw_batcher_free(b);
}

static void test_deadline_shorter_than_compute(void **state)
{
    (void)state;
    gate g;
    tdm_gw_batcher *b = make(&g, 4, true, -1);
    g.sleep_ms = 30;
    gate_open(&g, 100);
    req r0, r1;
    make_req(&r0, b, 1, 3, 10000);
    tdm_gw_batcher_run(b, &r0.job); /* measures ~30 ms of compute */
    assert_int_equal(r0.job.http_status, 200);
    make_req(&r1, b, 1, 3, 5); /* 5 ms cannot fit 30 ms of compute */
    tdm_gw_batcher_run(b, &r1.job);
    assert_int_equal(r1.job.http_status, 504);
    assert_int_equal(g.calls, 1);
    for (int i = 0; i < r0.job.n_out; i++)
        tdm_tensor_free(&r0.job.outputs[i]);
    tdm_tensor_free(&r0.in);
    tdm_tensor_free(&r1.in);
    tdm_gw_batcher_free(b);
}

static void test_unbatchable_model_detected(void **state)
{
    (void)state;
    gate g;
    tdm_gw_batcher *b = make(&g, 4, true, -1);
    g.fail_batches = 1;
    req r0, r[3];
    make_req(&r0, b, 1, 3, 10000);
    start(&r0);
    wait_started(&g, 1);
    for (int i = 0; i < 3; i++) {
        make_req(&r[i], b, (float)i, 3, 5000);
        start(&r[i]);
    }
    settle();
    gate_open(&g, 100);
    finish(&r0);
    for (int i = 0; i < 3; i++) {
        pthread_join(r[i].t, NULL);
        assert_int_equal(r[i].job.http_status, 200);
        assert_float_equal(((float *)r[i].job.outputs[0].data)[0], 2 * i, 1e-6);
        r[i].t = pthread_self();
        for (int k = 0; k < r[i].job.n_out; k++)
            tdm_tensor_free(&r[i].job.outputs[k]);
        tdm_tensor_free(&r[i].in);
    }
    assert_int_equal(tdm_gw_batcher_limit(b), 1);
    tdm_gw_batcher_free(b);
}

static void test_queue_full(void **state)
{
    (void)state;
    gate g;
    memset(&g, 0, sizeof g);
    pthread_mutex_init(&g.mu, NULL);
    pthread_cond_init(&g.cv, NULL);
    tdm_gw_batcher_opts o = {.run = work,
                             .run_ctx = &g,
                             .n_in = 1,
                             .n_out = 1,
                             .workers = 1,
                             .batchable = false,
                             .pad_axis = -1,
                             .max_batch = 1,
                             .max_queue = 2,
                             .slo_ms = 1000,
                             .label = "q"};
    tdm_gw_batcher *b = NULL;
    assert_int_equal(tdm_gw_batcher_create(&o, &b, NULL), TDM_OK);
    req r[4];
    for (int i = 0; i < 4; i++) {
        make_req(&r[i], b, 1, 1, 10000);
        start(&r[i]);
        if (i == 0)
            wait_started(&g, 1);
        else
            usleep(10000);
    }
    settle();
    gate_open(&g, 10);
    int full = 0;
    for (int i = 0; i < 4; i++) {
        finish(&r[i]);
        full += r[i].job.http_status == 429;
    }
    assert_int_equal(full, 1);
    tdm_gw_batcher_free(b);
}

static void test_aimd_shrinks_under_slo(void **state)
{
    (void)state;
    gate g;
    memset(&g, 0, sizeof g);
    pthread_mutex_init(&g.mu, NULL);
    pthread_cond_init(&g.cv, NULL);
    g.sleep_ms = 2;
    g.open = 1000;
    tdm_gw_batcher_opts o = {.run = work,
                             .run_ctx = &g,
                             .n_in = 1,
                             .n_out = 1,
                             .workers = 1,
                             .batchable = true,
                             .pad_axis = -1,
                             .max_batch = 16,
                             .max_delay_ms = 0,
                             .adaptive = true,
                             .slo_ms = 0.5,
                             .max_queue = 64,
                             .label = "aimd"};
    tdm_gw_batcher *b = NULL;
    assert_int_equal(tdm_gw_batcher_create(&o, &b, NULL), TDM_OK);
    assert_int_equal(tdm_gw_batcher_limit(b), 16);
    for (int i = 0; i < 40; i++) {
        req r;
        make_req(&r, b, 1, 1, 10000);
        tdm_gw_batcher_run(b, &r.job);
        assert_int_equal(r.job.http_status, 200);
        for (int k = 0; k < r.job.n_out; k++)
            tdm_tensor_free(&r.job.outputs[k]);
        tdm_tensor_free(&r.in);
    }
    /* every request took > 2 ms against a 0.5 ms SLO: the limit went down */
    assert_true(tdm_gw_batcher_limit(b) < 16);
    tdm_gw_batcher_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_edf_order_and_batches),
        cmocka_unit_test(test_incompatible_shapes_not_mixed),
        cmocka_unit_test(test_padding_cut_back),
        cmocka_unit_test(test_deadline_and_disconnect),
        cmocka_unit_test(test_deadline_shorter_than_compute),
        cmocka_unit_test(test_unbatchable_model_detected),
        cmocka_unit_test(test_queue_full),
        cmocka_unit_test(test_aimd_shrinks_under_slo),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

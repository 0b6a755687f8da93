/*
 * The edge agent: the request pipeline and its background work.
 *
 * A request walks: exact cache -> head on the device (one run_range from the
 * input to every exit tensor and cut tensor at once) -> similarity cache on
 * the pooled cut features -> exits in order (temperature-scaled max
 * probability against each exit's threshold) -> the placement policy ->
 * local finish (run_range from the cut to the final logits) or offload (the
 * cut tensors through the codec to /v1/features) or defer (the replay
 * queue). Offload failure falls back to defer when the request allows it,
 * else to a local finish when the device has the tail, else the request
 * fails with the transport's reason.
 *
 * Concurrency: models and their graphs are immutable after create; sessions
 * (which are single-threaded) come from a small per-model pool; estimates
 * (EWMAs of local tail time, cloud time and upload size) sit under the
 * agent's mutex; the replay queue is serialised by its own mutex. The
 * background thread wakes every health interval: health checks, queue
 * drain, telemetry, expiry. Async submissions go through a bounded job queue
 * served by cfg.workers threads.
 *
 * The wire contract with the gateway (docs/api.md): POST
 * /v1/features?model=&version=&cut= with the codec frames of the cut tensors
 * concatenated in cut order as the body (Content-Type
 * application/x-tandem-frames) and headers X-Request-Id, Idempotency-Key and
 * X-Deadline-Ms; the answer is JSON with "label", "confidence" and
 * "timings": {"compute_ms"}. cut=input means the model's own inputs (the
 * cloud runs everything).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "base/clock.h"
#include "base/sha256.h"
#include "base/yaml.h"
#include "collab/respcache.h"
#include "collab/simcache.h"
#include "edge/agent_internal.h"
#include "edge/replay.h"
#include "edge/transport.h"

#define SESSION_POOL 16
#define MAX_JOBS 1024
#define MAX_CLASSES 4096
#define MAX_FRAME_BYTES ((size_t)64 << 20)

typedef struct model_rt {
    tdm_edge_model_cfg *cfg;
    tdm_graph *g;
    tdm_value_info in_info;
    const char *input_name;
    const char *final_name;
    tdm_exits *heads;
    /* the head run: from the input to these tensors */
    const char *until[TDM_EDGE_MAX_EXITS + TDM_EDGE_MAX_CUT];
    int n_until;
    int exit_slot[TDM_EDGE_MAX_EXITS];
    int cut_slot[TDM_EDGE_MAX_CUT];
    char route_split[768], route_cloud[768];
    pthread_mutex_t mu;
    tdm_session *pool[SESSION_POOL];
    int n_pool;
    tdm_simcache *sim; /* created on first use, when the pooled dimension is known */
    /* estimates, under the agent's mutex */
    double est_tail_ms, est_cloud_ms, est_upload_bytes, est_raw_upload_bytes;
} model_rt;

typedef struct job {
    tdm_edge_request req;
    tdm_tensor input; /* owned copy */
    char model[128], request_id[64];
    tdm_edge_callback cb;
    void *user;
} job;

typedef struct waiter {
    char request_id[64];
    tdm_edge_callback cb;
    void *user;
} waiter;

struct tdm_edge {
    tdm_edge_config cfg;
    model_rt models[TDM_EDGE_MAX_MODELS];
    int n_models;
    tdm_transport *tp;
    tdm_replay *q;
    pthread_mutex_t qmu;
    tdm_respcache *exact;
    tdm_edge_metrics m;
    pthread_mutex_t mu; /* estimates, id counter, waiters */
    uint64_t next_id;
    uint64_t seed;
    waiter *waiters;
    int n_waiters, cap_waiters;
    /* background thread */
    pthread_t bg;
    bool bg_started;
    pthread_mutex_t bg_mu;
    pthread_cond_t bg_cv;
    bool stopping;
    /* async workers */
    pthread_t *workers;
    int n_workers;
    job *jobs[MAX_JOBS];
    int job_head, job_count;
    pthread_mutex_t job_mu;
    pthread_cond_t job_cv;
    double last_telemetry_ms;
};

const char *tdm_edge_route_name(tdm_edge_route r)
{
    static const char *const names[TDM_EDGE_ROUTE_COUNT] = {"cache",   "exit",     "local",
                                                            "offload", "deferred", "failed"};
    return (unsigned)r < TDM_EDGE_ROUTE_COUNT ? names[r] : "?";
}

static double wall_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double ms_since(uint64_t t0)
{
    return (double)(tdm_now_ns() - t0) / 1e6;
}

static void ewma(double *v, double sample)
{
    *v = *v <= 0 ? sample : 0.8 * *v + 0.2 * sample;
}

/* ---- sessions ---------------------------------------------------------------------- */

static tdm_session *take_session(tdm_edge *e, model_rt *m, tdm_err *err)
{
    pthread_mutex_lock(&m->mu);
    tdm_session *s = m->n_pool > 0 ? m->pool[--m->n_pool] : NULL;
    pthread_mutex_unlock(&m->mu);
    if (s)
        return s;
    tdm_session_options so = {.threads = e->cfg.threads};
    if (tdm_session_create(m->g, &so, &s, err) != TDM_OK)
        return NULL;
    return s;
}

static void give_session(model_rt *m, tdm_session *s)
{
    pthread_mutex_lock(&m->mu);
    if (m->n_pool < SESSION_POOL) {
        m->pool[m->n_pool++] = s;
        s = NULL;
    }
    pthread_mutex_unlock(&m->mu);
    tdm_session_free(s);
}

/* ---- model setup ------------------------------------------------------------------- */

static int add_until(model_rt *m, const char *name)
{
    for (int i = 0; i < m->n_until; i++)
        if (strcmp(m->until[i], name) == 0)
            return i;
    m->until[m->n_until] = name;
    return m->n_until++;
}

/* Appends "&key=value" with the value percent-encoded. */
static void query_append(char *q, size_t cap, const char *key, const char *value)
{
    size_t n = strlen(q);
    n += (size_t)snprintf(q + n, n < cap ? cap - n : 0, "%s%s=", strchr(q, '?') ? "&" : "?", key);
    for (const unsigned char *p = (const unsigned char *)value; *p && n + 4 < cap; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '_' || *p == '.' || *p == '~')
            q[n++] = (char)*p;
        else
            n += (size_t)snprintf(q + n, cap - n, "%%%02X", *p);
    }
    q[n < cap ? n : cap - 1] = '\0';
}

static tdm_status setup_model(tdm_edge *e, int idx, tdm_err *err)
{
    model_rt *m = &e->models[idx];
    tdm_edge_model_cfg *c = &e->cfg.models[idx];
    m->cfg = c;
    pthread_mutex_init(&m->mu, NULL);
    if (tdm_graph_load(c->file, NULL, &m->g, err) != TDM_OK) {
        tdm_err_prefix(err, "edge config: models[%d] (%s): ", idx, c->name);
        return TDM_ERR_INVALID_ARG;
    }
    int in_idx = 0;
    if (c->input) {
        in_idx = -1;
        for (int i = 0; i < tdm_graph_num_inputs(m->g); i++) {
            tdm_value_info vi;
            tdm_graph_input_info(m->g, i, &vi);
            if (strcmp(vi.name, c->input) == 0)
                in_idx = i;
        }
        if (in_idx < 0)
            return tdm_errf(err, TDM_ERR_INVALID_ARG,
                            "edge config: models[%d].input: %s has no input '%s'", idx, c->file,
                            c->input);
    }
    if (tdm_graph_num_inputs(m->g) != 1)
        return tdm_errf(err, TDM_ERR_UNSUPPORTED,
                        "edge config: models[%d]: %s has %d inputs; the agent feeds one", idx,
                        c->file, tdm_graph_num_inputs(m->g));
    tdm_graph_input_info(m->g, in_idx, &m->in_info);
    m->input_name = m->in_info.name;
    if (m->in_info.dtype != TDM_DTYPE_FLOAT32)
        return tdm_errf(err, TDM_ERR_UNSUPPORTED,
                        "edge config: models[%d]: input '%s' is not float32", idx, m->input_name);
    if (c->final_output) {
        m->final_name = c->final_output;
    } else {
        tdm_value_info vo;
        tdm_graph_output_info(m->g, 0, &vo);
        m->final_name = vo.name;
    }
    if (c->exits_file) {
        if (tdm_exits_load(c->exits_file, &m->heads, err) != TDM_OK) {
            tdm_err_prefix(err, "edge config: models[%d].exits_file: ", idx);
            return TDM_ERR_INVALID_ARG;
        }
        if (m->heads->n_exits > TDM_EDGE_MAX_EXITS)
            return tdm_errf(err, TDM_ERR_UNSUPPORTED, "edge config: models[%d]: more than %d exits",
                            idx, TDM_EDGE_MAX_EXITS);
        for (int k = 0; k < m->heads->n_exits; k++) {
            tdm_exit_head *h = &m->heads->heads[k];
            c->exits[k].tensor = strdup(h->cut);
            if (c->exits[k].tensor == NULL)
                return tdm_errf(err, TDM_ERR_NOMEM, "edge config: out of memory");
            c->exits[k].head = h;
            c->exits[k].temperature = h->temperature > 0 ? h->temperature : 1.0;
            c->exits[k].threshold = h->threshold;
        }
        c->n_exits = m->heads->n_exits;
    }
    for (int k = 0; k < c->n_exits; k++)
        m->exit_slot[k] = add_until(m, c->exits[k].tensor);
    for (int k = 0; k < c->n_cut; k++)
        m->cut_slot[k] = add_until(m, c->cut[k]);

    /* Check now that every named tensor exists and the head runs: one run on zeros. */
    tdm_tensor x = {0};
    int64_t dims[TDM_MAX_DIMS];
    for (int d = 0; d < m->in_info.ndim; d++)
        dims[d] = m->in_info.dims[d] > 0 ? m->in_info.dims[d] : 1;
    tdm_status st = tdm_tensor_make(&x, TDM_DTYPE_FLOAT32, m->in_info.ndim, dims, err);
    if (st != TDM_OK)
        return st;
    tdm_session *s = take_session(e, m, err);
    if (s == NULL) {
        tdm_tensor_free(&x);
        return TDM_ERR_INVALID_ARG;
    }
    const char *all[TDM_EDGE_MAX_EXITS + TDM_EDGE_MAX_CUT + 1];
    int n_all = m->n_until;
    memcpy(all, m->until, (size_t)n_all * sizeof all[0]);
    all[n_all++] = m->final_name;
    tdm_tensor outs[TDM_EDGE_MAX_EXITS + TDM_EDGE_MAX_CUT + 1];
    memset(outs, 0, sizeof outs);
    st = tdm_session_run_range(s, 1, &m->input_name, &x, n_all, all, outs, err);
    tdm_tensor_free(&x);
    give_session(m, s);
    if (st != TDM_OK) {
        tdm_err_prefix(err, "edge config: models[%d] (%s): ", idx, c->name);
        return st;
    }
    for (int i = 0; i < n_all; i++)
        tdm_tensor_free(&outs[i]);

    const char *rm = c->remote_model ? c->remote_model : c->name;
    const char *rv = c->remote_version ? c->remote_version : c->version;
    char cut_names[512] = "";
    for (int k = 0; k < c->n_cut; k++)
        snprintf(cut_names + strlen(cut_names), sizeof cut_names - strlen(cut_names), "%s%s",
                 k ? "," : "", c->cut[k]);
    snprintf(m->route_split, sizeof m->route_split, "/v1/features");
    query_append(m->route_split, sizeof m->route_split, "model", rm);
    query_append(m->route_split, sizeof m->route_split, "version", rv);
    query_append(m->route_split, sizeof m->route_split, "cut",
                 c->cut_id  ? c->cut_id
                 : c->n_cut ? cut_names
                            : "input");
    snprintf(m->route_cloud, sizeof m->route_cloud, "/v1/features");
    query_append(m->route_cloud, sizeof m->route_cloud, "model",
                 c->cloud_only_model ? c->cloud_only_model : rm);
    query_append(m->route_cloud, sizeof m->route_cloud, "version",
                 c->cloud_only_version ? c->cloud_only_version : rv);
    query_append(m->route_cloud, sizeof m->route_cloud, "cut", "input");
    return TDM_OK;
}

/* ---- small pieces of the pipeline ---------------------------------------------------- */

/* Temperature-scaled softmax max probability and argmax of one row of logits. */
static void classify(const float *logits, int n, double temperature, int *label, float *conf)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (logits[i] > logits[best])
            best = i;
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += exp(((double)logits[i] - logits[best]) / temperature);
    *label = best;
    *conf = (float)(1.0 / sum);
}

static int row_len(const tdm_tensor *t)
{
    int64_t n = tdm_tensor_numel(t);
    int64_t b = t->ndim > 0 ? t->dims[0] : 1;
    return b > 0 ? (int)(n / b) : 0;
}

static double cost_of(const tdm_edge_config *c, uint64_t bytes, double cloud_ms)
{
    return c->cost_per_1k_requests / 1000.0 + (double)bytes / 1e9 * c->cost_per_gb +
           cloud_ms / 3.6e6 * c->cost_per_cpu_hour;
}

/* Parses the gateway's answer into res; false when it is not one. */
static bool parse_answer(const char *body, size_t len, tdm_edge_result *res)
{
    tdm_json_doc *doc = NULL;
    tdm_err err;
    if (tdm_json_parse(body, len, 0, &doc, &err) != TDM_OK)
        return false;
    const tdm_json *r = tdm_json_root(doc);
    const tdm_json *inner = tdm_json_get(r, "result");
    if (inner && inner->type == TDM_JSON_OBJECT)
        r = inner;
    int64_t label;
    bool ok = tdm_json_int(tdm_json_get(r, "label"), &label) && label >= 0 && label < MAX_CLASSES;
    if (ok) {
        res->label = (int)label;
        const tdm_json *cf = tdm_json_get(r, "confidence");
        res->confidence = cf && cf->type == TDM_JSON_NUMBER ? (float)cf->number : -1.0f;
        const tdm_json *tm = tdm_json_get(tdm_json_root(doc), "timings");
        const tdm_json *cm = tdm_json_get(tm, "compute_ms");
        if (cm && cm->type == TDM_JSON_NUMBER && cm->number >= 0)
            res->cloud_ms = cm->number;
    }
    tdm_json_free(doc);
    return ok;
}

/* Encodes tensors as concatenated codec frames into a malloc'd buffer. */
static tdm_status encode_frames(const tdm_codec_params *p, const tdm_tensor *const *ts, int n,
                                uint8_t **out, size_t *len, tdm_err *err)
{
    size_t cap = 0;
    for (int i = 0; i < n; i++) {
        size_t b = tdm_codec_bound(ts[i], p);
        if (b == 0)
            return tdm_errf(err, TDM_ERR_INVALID_ARG, "codec: cannot encode cut tensor %d", i);
        cap += b;
    }
    if (cap > MAX_FRAME_BYTES)
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "codec: cut tensors too large (%zu bytes)", cap);
    uint8_t *buf = malloc(cap);
    if (buf == NULL)
        return tdm_errf(err, TDM_ERR_NOMEM, "codec: out of memory");
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        size_t w = 0;
        tdm_status st = tdm_codec_encode(ts[i], p, buf + off, cap - off, &w, err);
        if (st != TDM_OK) {
            free(buf);
            return st;
        }
        off += w;
    }
    *out = buf;
    *len = off;
    return TDM_OK;
}

/* Serialised cache value: label and confidence. */
typedef struct cached {
    int32_t label;
    float confidence;
} cached;

static void new_request_id(tdm_edge *e, char *out, size_t cap)
{
    pthread_mutex_lock(&e->mu);
    uint64_t n = ++e->next_id;
    pthread_mutex_unlock(&e->mu);
    snprintf(out, cap, "%.24s-%llx-%llu", e->cfg.device_id, (unsigned long long)e->seed,
             (unsigned long long)n);
}

/* ---- offload and defer ------------------------------------------------------------- */

static void offload_headers(const char *id, double deadline_ms, char h[4][160])
{
    snprintf(h[0], 160, "Content-Type: application/x-tandem-frames");
    snprintf(h[1], 160, "X-Request-Id: %s", id);
    snprintf(h[2], 160, "Idempotency-Key: %s", id);
    if (deadline_ms > 0)
        snprintf(h[3], 160, "X-Deadline-Ms: %.0f", deadline_ms);
    else
        h[3][0] = '\0';
}

/* One offload attempt. TDM_OK with res filled; TDM_ERR_IO when no endpoint answered. */
static tdm_status offload(tdm_edge *e, model_rt *m, const char *route, const uint8_t *body,
                          size_t len, double budget_ms, tdm_edge_result *res, tdm_err *err)
{
    char h[4][160];
    offload_headers(res->request_id, budget_ms, h);
    const char *hdr[5] = {h[0], h[1], h[2], h[3][0] ? h[3] : NULL, NULL};
    tdm_http_response r;
    uint64_t t0 = tdm_now_ns();
    tdm_status st = tdm_transport_post(e->tp, route, hdr, body, len, budget_ms, &r, err);
    res->network_ms += ms_since(t0);
    res->bytes_sent += len;
    if (st != TDM_OK)
        return st;
    res->endpoint = r.endpoint;
    if (r.status != 200 || !parse_answer(r.body, r.len, res)) {
        st = tdm_errf(err, TDM_ERR_PARSE, "gateway answered HTTP %ld: %.200s", r.status,
                      r.body ? r.body : "");
        tdm_http_response_free(&r);
        return st;
    }
    tdm_http_response_free(&r);
    res->route = TDM_EDGE_ROUTE_OFFLOAD;
    res->cost = cost_of(&e->cfg, len, res->cloud_ms);
    pthread_mutex_lock(&e->mu);
    if (res->cloud_ms > 0)
        ewma(&m->est_cloud_ms, res->cloud_ms);
    pthread_mutex_unlock(&e->mu);
    return TDM_OK;
}

static tdm_status defer(tdm_edge *e, const char *route, const uint8_t *body, size_t len,
                        tdm_edge_result *res, tdm_err *err)
{
    if (e->q == NULL)
        return tdm_errf(err, TDM_ERR_UNSUPPORTED, "no offline queue configured");
    tdm_replay_entry q = {0};
    snprintf(q.request_id, sizeof q.request_id, "%s", res->request_id);
    snprintf(q.idem_key, sizeof q.idem_key, "%s", res->request_id);
    snprintf(q.route, sizeof q.route, "%s", route);
    snprintf(q.content_type, sizeof q.content_type, "application/x-tandem-frames");
    q.payload = body;
    q.payload_len = len;
    double now = wall_s();
    q.created_s = now;
    pthread_mutex_lock(&e->qmu);
    tdm_status st = tdm_replay_push(e->q, &q, now, err);
    pthread_mutex_unlock(&e->qmu);
    if (st == TDM_OK) {
        res->route = TDM_EDGE_ROUTE_DEFERRED;
        res->label = -1;
        res->confidence = 0;
    }
    return st;
}

/* ---- the pipeline --------------------------------------------------------------------- */

static model_rt *find_model(tdm_edge *e, const char *name)
{
    if (name == NULL)
        return &e->models[0];
    for (int i = 0; i < e->n_models; i++)
        if (strcmp(e->models[i].cfg->name, name) == 0)
            return &e->models[i];
    return NULL;
}

static tdm_status check_input(const model_rt *m, const tdm_tensor *x, tdm_tensor *view,
                              tdm_err *err)
{
    if (x == NULL || x->dtype != TDM_DTYPE_FLOAT32 || x->data == NULL)
        return tdm_errf(err, TDM_ERR_SHAPE, "model %s: input must be a float32 tensor",
                        m->cfg->name);
    int64_t want = 1;
    int64_t dims[TDM_MAX_DIMS];
    for (int d = 0; d < m->in_info.ndim; d++) {
        dims[d] = m->in_info.dims[d] > 0 ? m->in_info.dims[d] : 1;
        want *= dims[d];
    }
    if (tdm_tensor_numel(x) != want)
        return tdm_errf(err, TDM_ERR_SHAPE,
                        "model %s: input '%s' wants %lld values (one item), got %lld", m->cfg->name,
                        m->input_name, (long long)want, (long long)tdm_tensor_numel(x));
    *view = *x;
    view->ndim = m->in_info.ndim;
    memcpy(view->dims, dims, sizeof dims);
    return TDM_OK;
}

static void finish(tdm_edge *e, model_rt *m, const uint8_t *key, tdm_edge_result *res, uint64_t t0)
{
    res->total_ms = ms_since(t0);
    if (e->exact && key &&
        (res->route == TDM_EDGE_ROUTE_EXIT || res->route == TDM_EDGE_ROUTE_LOCAL ||
         res->route == TDM_EDGE_ROUTE_OFFLOAD)) {
        cached v = {res->label, res->confidence};
        tdm_respcache_put(e->exact, key, &v, sizeof v, 0, tdm_respcache_now_ms());
    }
    (void)m;
    tdm_edge_metrics_record(&e->m, res);
}

static tdm_status run_request(tdm_edge *e, const tdm_edge_request *req, tdm_edge_result *res,
                              tdm_err *err)
{
    uint64_t t0 = tdm_now_ns();
    memset(res, 0, sizeof *res);
    res->label = -1;
    res->exit_index = -1;
    res->endpoint = -1;
    model_rt *m = find_model(e, req->model);
    if (m == NULL)
        return tdm_errf(err, TDM_ERR_NOT_FOUND, "no model named '%s' in the edge config",
                        req->model);
    if (req->request_id) {
        if (req->request_id[0] == '\0' || strlen(req->request_id) >= sizeof res->request_id)
            return tdm_errf(err, TDM_ERR_INVALID_ARG, "request id must be 1 to 63 bytes");
        snprintf(res->request_id, sizeof res->request_id, "%s", req->request_id);
    } else {
        new_request_id(e, res->request_id, sizeof res->request_id);
    }
    if (!(req->deadline_ms >= 0) || req->deadline_ms > 3.6e6)
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "deadline_ms must be 0..3600000");
    tdm_edge_mode mode = req->mode >= 0 && req->mode <= TDM_EDGE_MODE_CLOUD_ONLY
                             ? (tdm_edge_mode)req->mode
                             : m->cfg->mode;
    if (mode != TDM_EDGE_MODE_EDGE_ONLY && e->tp == NULL)
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "model %s: no endpoints for mode %s",
                        m->cfg->name, mode == TDM_EDGE_MODE_CLOUD_ONLY ? "cloud" : "collaborative");
    tdm_tensor x;
    tdm_status st = check_input(m, req->input, &x, err);
    if (st != TDM_OK)
        return st;
    double budget = req->deadline_ms > 0 ? req->deadline_ms : m->cfg->deadline_ms;

    /* 1. exact cache: model, version, mode and the input's bytes */
    uint8_t key[TDM_RESPCACHE_KEY_LEN];
    const char *mode_s = mode == TDM_EDGE_MODE_EDGE_ONLY    ? "edge"
                         : mode == TDM_EDGE_MODE_CLOUD_ONLY ? "cloud"
                                                            : "collab";
    if (e->exact) {
        tdm_respcache_key(m->cfg->name, m->cfg->version, mode_s, x.data, tdm_tensor_nbytes(&x),
                          key);
        tdm_respcache_value v;
        if (tdm_respcache_get(e->exact, key, tdm_respcache_now_ms(), &v)) {
            if (v.len == sizeof(cached)) {
                cached c;
                memcpy(&c, v.data, sizeof c);
                res->route = TDM_EDGE_ROUTE_CACHE;
                res->label = c.label;
                res->confidence = c.confidence;
                tdm_respcache_value_free(&v);
                finish(e, m, NULL, res, t0);
                return TDM_OK;
            }
            tdm_respcache_value_free(&v);
        }
    }

    uint8_t *body = NULL;
    size_t body_len = 0;
    tdm_tensor outs[TDM_EDGE_MAX_EXITS + TDM_EDGE_MAX_CUT];
    memset(outs, 0, sizeof outs);
    tdm_session *s = NULL;
    const char *route = NULL;

    if (mode == TDM_EDGE_MODE_CLOUD_ONLY) {
        const tdm_tensor *tx[1] = {&x};
        uint64_t te = tdm_now_ns();
        st = encode_frames(&e->cfg.codec, tx, 1, &body, &body_len, err);
        res->encode_ms = ms_since(te);
        if (st != TDM_OK)
            goto done;
        route = m->route_cloud;
        goto send;
    }

    s = take_session(e, m, err);
    if (s == NULL) {
        st = TDM_ERR_INTERNAL;
        goto done;
    }
    /* 2. the head: every exit and cut tensor in one run */
    if (m->n_until > 0) {
        uint64_t th = tdm_now_ns();
        st = tdm_session_run_range(s, 1, &m->input_name, &x, m->n_until, m->until, outs, err);
        res->local_ms += ms_since(th);
        if (st != TDM_OK)
            goto done;
    }
    /* 3. similarity cache on the pooled features of the first cut (or exit) tensor */
    float *pooled = NULL;
    int64_t pdim = 0;
    if (e->cfg.cache_similarity > 0 && e->cfg.cache_ttl_s > 0 && m->n_until > 0) {
        const tdm_tensor *ft = &outs[m->cfg->n_cut ? m->cut_slot[0] : m->exit_slot[0]];
        tdm_exit_pool used;
        tdm_err perr;
        if (ft->dtype == TDM_DTYPE_FLOAT32 &&
            tdm_exit_pool_dim(ft, "cache", TDM_POOL_AUTO, 0, &used, &pdim, &perr) == TDM_OK &&
            pdim > 0 && pdim <= (1 << 20) && (pooled = malloc((size_t)pdim * sizeof *pooled)) &&
            tdm_exit_pool_apply(ft, "cache", used, 0, NULL, pooled, &perr) == TDM_OK) {
            pthread_mutex_lock(&m->mu);
            if (m->sim == NULL)
                tdm_simcache_create((int)pdim, e->cfg.cache_similarity,
                                    (uint64_t)(e->cfg.cache_ttl_s * 1000), e->cfg.cache_max_bytes,
                                    &m->sim, &perr);
            pthread_mutex_unlock(&m->mu);
            char *val = NULL;
            size_t vlen = 0;
            double sim = 0;
            if (m->sim &&
                tdm_simcache_get(m->sim, pooled, tdm_respcache_now_ms(), &val, &vlen, &sim)) {
                if (vlen == sizeof(cached)) {
                    cached c;
                    memcpy(&c, val, sizeof c);
                    res->route = TDM_EDGE_ROUTE_CACHE;
                    res->cache_similar = true;
                    res->label = c.label;
                    res->confidence = c.confidence;
                }
                free(val);
                if (res->route == TDM_EDGE_ROUTE_CACHE) {
                    free(pooled);
                    goto done;
                }
            }
        } else {
            free(pooled);
            pooled = NULL;
        }
    }
    /* 4. exits, in order */
    if (mode == TDM_EDGE_MODE_COLLABORATIVE) {
        for (int k = 0; k < m->cfg->n_exits && res->route != TDM_EDGE_ROUTE_EXIT; k++) {
            const tdm_edge_exit *ex = &m->cfg->exits[k];
            const tdm_tensor *t = &outs[m->exit_slot[k]];
            float logits_buf[MAX_CLASSES];
            const float *logits = t->data;
            int n = row_len(t);
            if (ex->head) {
                int64_t dim = ex->head->in_dim;
                float *feat = malloc((size_t)dim * sizeof *feat);
                if (feat == NULL) {
                    st = tdm_errf(err, TDM_ERR_NOMEM, "out of memory");
                    break;
                }
                st = tdm_exit_pool_apply(t, ex->tensor, ex->head->pool, ex->head->grid, NULL, feat,
                                         err);
                if (st == TDM_OK)
                    st = tdm_exit_head_logits(ex->head, feat, 1, logits_buf, err);
                free(feat);
                if (st != TDM_OK)
                    break;
                logits = logits_buf;
                n = ex->head->n_classes;
            }
            if (n <= 0 || n > MAX_CLASSES)
                continue;
            int label;
            float conf;
            classify(logits, n, ex->temperature, &label, &conf);
            if (conf >= ex->threshold) {
                res->route = TDM_EDGE_ROUTE_EXIT;
                res->exit_index = k;
                res->label = label;
                res->confidence = conf;
            }
        }
        if (st != TDM_OK) {
            free(pooled);
            goto done;
        }
    }
    if (res->route == TDM_EDGE_ROUTE_EXIT)
        goto cache_sim;

    /* 5. place the rest */
    bool local = mode == TDM_EDGE_MODE_EDGE_ONLY;
    bool can_local = m->cfg->finish_on_device;
    if (!local) {
        tdm_policy_input in;
        tdm_policy_input_default(&in);
        pthread_mutex_lock(&e->mu);
        in.local_ms = can_local ? m->est_tail_ms : 1e9;
        in.cloud_ms = m->est_cloud_ms;
        in.upload_bytes = m->est_upload_bytes;
        pthread_mutex_unlock(&e->mu);
        in.rtt_ms = tdm_transport_rtt_ms(e->tp);
        in.bandwidth_mbps = e->cfg.uplink_mbps;
        in.cloud_available = tdm_transport_any_healthy(e->tp);
        in.deferrable = req->deferrable && e->q != NULL;
        double left = budget - ms_since(t0);
        in.deadline_ms = left > 0.001 ? left : 0.001;
        tdm_policy_result pr;
        tdm_err perr;
        if (tdm_policy_decide(&e->cfg.policy, &in, &pr, &perr) == TDM_OK)
            local = pr.decision == TDM_POLICY_DECISION_LOCAL && can_local;
    }
    if (local) {
        if (!can_local) {
            st = tdm_errf(err, TDM_ERR_INVALID_ARG,
                          "model %s: mode edge needs finish_on_device: true", m->cfg->name);
            free(pooled);
            goto done;
        }
        uint64_t tl = tdm_now_ns();
        tdm_tensor fin = {0};
        if (m->cfg->n_cut > 0) {
            const char *from[TDM_EDGE_MAX_CUT];
            tdm_tensor fx[TDM_EDGE_MAX_CUT];
            for (int k = 0; k < m->cfg->n_cut; k++) {
                from[k] = m->cfg->cut[k];
                fx[k] = outs[m->cut_slot[k]];
            }
            st = tdm_session_run_range(s, m->cfg->n_cut, from, fx, 1, &m->final_name, &fin, err);
        } else {
            st = tdm_session_run_range(s, 1, &m->input_name, &x, 1, &m->final_name, &fin, err);
        }
        double tail = ms_since(tl);
        res->local_ms += tail;
        if (st == TDM_OK) {
            int n = row_len(&fin);
            if (n > 0 && n <= MAX_CLASSES && fin.dtype == TDM_DTYPE_FLOAT32) {
                classify(fin.data, n, 1.0, &res->label, &res->confidence);
                res->route = TDM_EDGE_ROUTE_LOCAL;
            } else {
                st = tdm_errf(err, TDM_ERR_SHAPE, "model %s: final output '%s' is not logits",
                              m->cfg->name, m->final_name);
            }
        }
        tdm_tensor_free(&fin);
        pthread_mutex_lock(&e->mu);
        ewma(&m->est_tail_ms, tail);
        pthread_mutex_unlock(&e->mu);
        if (st != TDM_OK) {
            free(pooled);
            goto done;
        }
        goto cache_sim;
    }

    /* 6. offload the cut tensors (or the input itself) */
    {
        const tdm_tensor *tx[TDM_EDGE_MAX_CUT];
        int n = 0;
        if (m->cfg->n_cut == 0)
            tx[n++] = &x;
        for (int k = 0; k < m->cfg->n_cut; k++)
            tx[n++] = &outs[m->cut_slot[k]];
        uint64_t te = tdm_now_ns();
        st = encode_frames(&e->cfg.codec, tx, n, &body, &body_len, err);
        res->encode_ms = ms_since(te);
        route = m->route_split;
        if (st != TDM_OK) {
            free(pooled);
            goto done;
        }
        pthread_mutex_lock(&e->mu);
        ewma(&m->est_upload_bytes, (double)body_len);
        pthread_mutex_unlock(&e->mu);
    }
    {
        tdm_err oerr;
        double left = budget - ms_since(t0);
        if (tdm_transport_any_healthy(e->tp) || !req->deferrable || e->q == NULL) {
            st = offload(e, m, route, body, body_len, left > 1 ? left : 1, res, &oerr);
        } else {
            st = TDM_ERR_IO;
            snprintf(oerr.msg, sizeof oerr.msg, "no gateway endpoint is reachable");
        }
        if (st == TDM_OK)
            goto cache_sim;
        if (req->deferrable && e->q != NULL &&
            defer(e, route, body, body_len, res, err) == TDM_OK) {
            st = TDM_OK;
            free(pooled);
            goto done;
        }
        if (can_local) {
            /* No cloud and no queue: the device finishes what it can. */
            tdm_tensor fin = {0};
            uint64_t tl = tdm_now_ns();
            st = tdm_session_run_range(s, 1, &m->input_name, &x, 1, &m->final_name, &fin, err);
            res->local_ms += ms_since(tl);
            if (st == TDM_OK && fin.dtype == TDM_DTYPE_FLOAT32 && row_len(&fin) > 0 &&
                row_len(&fin) <= MAX_CLASSES) {
                classify(fin.data, row_len(&fin), 1.0, &res->label, &res->confidence);
                res->route = TDM_EDGE_ROUTE_LOCAL;
                tdm_tensor_free(&fin);
                goto cache_sim;
            }
            tdm_tensor_free(&fin);
        }
        res->route = TDM_EDGE_ROUTE_FAILED;
        snprintf(res->error, sizeof res->error, "%s", oerr.msg);
        st = TDM_OK;
        free(pooled);
        goto done;
    }

cache_sim:
    if (pooled && m->sim && res->label >= 0) {
        cached c = {res->label, res->confidence};
        tdm_simcache_put(m->sim, pooled, &c, sizeof c, tdm_respcache_now_ms());
    }
    free(pooled);
    goto done;

send:
    /* cloud-only: the raw input, no head */
    {
        tdm_err oerr;
        double left = budget - ms_since(t0);
        st = offload(e, m, route, body, body_len, left > 1 ? left : 1, res, &oerr);
        if (st != TDM_OK) {
            st = TDM_OK;
            if (!(req->deferrable && e->q != NULL &&
                  defer(e, route, body, body_len, res, err) == TDM_OK)) {
                res->route = TDM_EDGE_ROUTE_FAILED;
                snprintf(res->error, sizeof res->error, "%s", oerr.msg);
            }
        }
    }

done:
    for (int i = 0; i < TDM_EDGE_MAX_EXITS + TDM_EDGE_MAX_CUT; i++)
        tdm_tensor_free(&outs[i]);
    if (s)
        give_session(m, s);
    free(body);
    if (st == TDM_OK)
        finish(e, m, e->exact ? key : NULL, res, t0);
    return st;
}

tdm_status tdm_edge_submit(tdm_edge *e, const tdm_edge_request *req, tdm_edge_result *res,
                           tdm_err *err)
{
    if (e == NULL || req == NULL || res == NULL)
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "tdm_edge_submit: NULL argument");
    return run_request(e, req, res, err);
}

/* ---- deferred results --------------------------------------------------------------- */

static void add_waiter(tdm_edge *e, const char *id, tdm_edge_callback cb, void *user)
{
    pthread_mutex_lock(&e->mu);
    if (e->n_waiters == e->cap_waiters) {
        int cap = e->cap_waiters ? 2 * e->cap_waiters : 64;
        waiter *w = realloc(e->waiters, (size_t)cap * sizeof *w);
        if (w == NULL) { /* the app can still poll */
            pthread_mutex_unlock(&e->mu);
            return;
        }
        e->waiters = w;
        e->cap_waiters = cap;
    }
    waiter *w = &e->waiters[e->n_waiters++];
    snprintf(w->request_id, sizeof w->request_id, "%s", id);
    w->cb = cb;
    w->user = user;
    pthread_mutex_unlock(&e->mu);
}

static bool take_waiter(tdm_edge *e, const char *id, waiter *out)
{
    bool found = false;
    pthread_mutex_lock(&e->mu);
    for (int i = 0; i < e->n_waiters; i++)
        if (strcmp(e->waiters[i].request_id, id) == 0) {
            *out = e->waiters[i];
            e->waiters[i] = e->waiters[--e->n_waiters];
            found = true;
            break;
        }
    pthread_mutex_unlock(&e->mu);
    return found;
}

int tdm_edge_drain(tdm_edge *e)
{
    if (e->q == NULL || e->tp == NULL)
        return 0;
    int delivered = 0;
    int64_t after = 0;
    for (;;) {
        tdm_replay_entry q;
        tdm_err err;
        pthread_mutex_lock(&e->qmu);
        tdm_status st = tdm_replay_next(e->q, after, &q, &err);
        void *payload = NULL;
        if (st == TDM_OK) {
            payload = malloc(q.payload_len ? q.payload_len : 1);
            if (payload) {
                memcpy(payload, q.payload, q.payload_len);
                tdm_replay_attempted(e->q, q.seq, &err);
            }
        }
        pthread_mutex_unlock(&e->qmu);
        if (st != TDM_OK || payload == NULL) {
            free(payload);
            break;
        }
        after = q.seq;
        char h[4][160];
        offload_headers(q.request_id, 0, h);
        snprintf(h[0], sizeof h[0], "Content-Type: %s", q.content_type);
        snprintf(h[2], sizeof h[2], "Idempotency-Key: %s", q.idem_key);
        const char *hdr[4] = {h[0], h[1], h[2], NULL};
        tdm_http_response r;
        st = tdm_transport_post(e->tp, q.route, hdr, payload, q.payload_len, 10000, &r, &err);
        free(payload);
        if (st != TDM_OK)
            break; /* still offline: keep the rest for the next round */
        if (r.status == 409 || r.status == 429) {
            /* Still running elsewhere (a send before a crash) or overloaded: ask again later. */
            tdm_http_response_free(&r);
            break;
        }
        tdm_edge_result res = {0};
        snprintf(res.request_id, sizeof res.request_id, "%s", q.request_id);
        res.endpoint = r.endpoint;
        res.network_ms = r.rtt_ms;
        res.bytes_sent = q.payload_len;
        res.exit_index = -1;
        bool ok = r.status == 200 && parse_answer(r.body, r.len, &res);
        if (ok) {
            res.route = TDM_EDGE_ROUTE_OFFLOAD;
            res.cost = cost_of(&e->cfg, q.payload_len, res.cloud_ms);
        } else {
            /* A 4xx will not get better by resending: answer it as failed, once. */
            res.route = TDM_EDGE_ROUTE_FAILED;
            res.label = -1;
            snprintf(res.error, sizeof res.error, "gateway answered HTTP %ld: %.200s", r.status,
                     r.body ? r.body : "");
        }
        char stored[512];
        int n = snprintf(stored, sizeof stored,
                         "{\"route\":\"%s\",\"label\":%d,\"confidence\":%.6f,\"cloud_ms\":%.3f}",
                         tdm_edge_route_name(res.route), res.label, (double)res.confidence,
                         res.cloud_ms);
        pthread_mutex_lock(&e->qmu);
        st = tdm_replay_ack(e->q, q.seq, stored, (size_t)n, &err);
        pthread_mutex_unlock(&e->qmu);
        tdm_http_response_free(&r);
        if (st != TDM_OK)
            break;
        delivered++;
        pthread_mutex_lock(&e->m.mu);
        e->m.delivered_later++;
        e->m.cost += res.cost;
        e->m.bytes_sent += res.bytes_sent;
        pthread_mutex_unlock(&e->m.mu);
        waiter w;
        if (take_waiter(e, q.request_id, &w))
            w.cb(w.user, &res);
    }
    return delivered;
}

tdm_status tdm_edge_poll(tdm_edge *e, const char *request_id, tdm_edge_result *res, tdm_err *err)
{
    memset(res, 0, sizeof *res);
    res->label = -1;
    res->exit_index = -1;
    res->endpoint = -1;
    if (request_id == NULL || strlen(request_id) >= sizeof res->request_id)
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "request id must be 1 to 63 bytes");
    snprintf(res->request_id, sizeof res->request_id, "%s", request_id);
    if (e->q == NULL)
        return tdm_errf(err, TDM_ERR_NOT_FOUND, "request %s: no offline queue", request_id);
    tdm_replay_state state;
    char *stored = NULL;
    pthread_mutex_lock(&e->qmu);
    tdm_status st = tdm_replay_lookup(e->q, request_id, &state, &stored, err);
    pthread_mutex_unlock(&e->qmu);
    if (st != TDM_OK)
        return st;
    if (state == TDM_REPLAY_UNKNOWN)
        return tdm_errf(err, TDM_ERR_NOT_FOUND, "request %s is not known to this agent",
                        request_id);
    if (state == TDM_REPLAY_QUEUED) {
        res->route = TDM_EDGE_ROUTE_DEFERRED;
    } else if (state == TDM_REPLAY_DROPPED) {
        res->route = TDM_EDGE_ROUTE_FAILED;
        snprintf(res->error, sizeof res->error, "dropped from the offline queue (age or size)");
    } else {
        tdm_json_doc *doc = NULL;
        tdm_err perr;
        res->route = TDM_EDGE_ROUTE_FAILED;
        if (stored && tdm_json_parse(stored, strlen(stored), 0, &doc, &perr) == TDM_OK) {
            const tdm_json *r = tdm_json_root(doc);
            size_t n;
            const char *route = tdm_json_string(tdm_json_get(r, "route"), &n);
            int64_t label;
            if (route && strcmp(route, "offload") == 0 &&
                tdm_json_int(tdm_json_get(r, "label"), &label)) {
                res->route = TDM_EDGE_ROUTE_OFFLOAD;
                res->label = (int)label;
                const tdm_json *c = tdm_json_get(r, "confidence");
                res->confidence = c && c->type == TDM_JSON_NUMBER ? (float)c->number : 0;
            }
            tdm_json_free(doc);
        }
    }
    free(stored);
    return TDM_OK;
}

/* ---- async workers and the background thread ----------------------------------------- */

static void *worker_main(void *arg)
{
    tdm_edge *e = arg;
    for (;;) {
        pthread_mutex_lock(&e->job_mu);
        while (e->job_count == 0 && !e->stopping)
            pthread_cond_wait(&e->job_cv, &e->job_mu);
        if (e->job_count == 0 && e->stopping) {
            pthread_mutex_unlock(&e->job_mu);
            return NULL;
        }
        job *j = e->jobs[e->job_head];
        e->job_head = (e->job_head + 1) % MAX_JOBS;
        e->job_count--;
        pthread_mutex_unlock(&e->job_mu);
        tdm_edge_result res;
        tdm_err err;
        j->req.input = &j->input;
        if (run_request(e, &j->req, &res, &err) != TDM_OK) {
            memset(&res, 0, sizeof res);
            snprintf(res.request_id, sizeof res.request_id, "%s", j->request_id);
            res.route = TDM_EDGE_ROUTE_FAILED;
            res.label = -1;
            snprintf(res.error, sizeof res.error, "%s", err.msg);
        } else if (res.route == TDM_EDGE_ROUTE_DEFERRED) {
            add_waiter(e, res.request_id, j->cb, j->user);
        }
        j->cb(j->user, &res);
        tdm_tensor_free(&j->input);
        free(j);
    }
}

tdm_status tdm_edge_submit_async(tdm_edge *e, const tdm_edge_request *req, tdm_edge_callback cb,
                                 void *user, tdm_err *err)
{
    if (e == NULL || req == NULL || cb == NULL || req->input == NULL)
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "tdm_edge_submit_async: NULL argument");
    job *j = calloc(1, sizeof *j);
    if (j == NULL)
        return tdm_errf(err, TDM_ERR_NOMEM, "out of memory");
    j->req = *req;
    tdm_status st = tdm_tensor_copy(&j->input, req->input, err);
    if (st != TDM_OK) {
        free(j);
        return st;
    }
    if (req->model) {
        snprintf(j->model, sizeof j->model, "%s", req->model);
        j->req.model = j->model;
    }
    if (req->request_id) {
        if (strlen(req->request_id) >= sizeof j->request_id) {
            tdm_tensor_free(&j->input);
            free(j);
            return tdm_errf(err, TDM_ERR_INVALID_ARG, "request id must be 1 to 63 bytes");
        }
        snprintf(j->request_id, sizeof j->request_id, "%s", req->request_id);
    } else {
        new_request_id(e, j->request_id, sizeof j->request_id);
    }
    j->req.request_id = j->request_id;
    j->cb = cb;
    j->user = user;
    pthread_mutex_lock(&e->job_mu);
    if (e->job_count == MAX_JOBS || e->stopping) {
        pthread_mutex_unlock(&e->job_mu);
        tdm_tensor_free(&j->input);
        free(j);
        return tdm_errf(err, TDM_ERR_NOMEM, "edge agent: %d requests already waiting", MAX_JOBS);
    }
    e->jobs[(e->job_head + e->job_count) % MAX_JOBS] = j;
    e->job_count++;
    pthread_cond_signal(&e->job_cv);
    pthread_mutex_unlock(&e->job_mu);
    return TDM_OK;
}

static void push_telemetry(tdm_edge *e)
{
    tdm_edge_stats st;
    tdm_edge_get_stats(e, &st);
    char body[1024];
    int n = snprintf(body, sizeof body,
                     "{\"device_id\":\"%s\",\"requests\":%llu,\"cache\":%llu,\"exit\":%llu,"
                     "\"local\":%llu,\"offload\":%llu,\"deferred\":%llu,\"failed\":%llu,"
                     "\"bytes_sent\":%llu,\"cost\":%.6f}",
                     e->cfg.device_id, (unsigned long long)st.requests,
                     (unsigned long long)st.routes[TDM_EDGE_ROUTE_CACHE],
                     (unsigned long long)st.routes[TDM_EDGE_ROUTE_EXIT],
                     (unsigned long long)st.routes[TDM_EDGE_ROUTE_LOCAL],
                     (unsigned long long)st.routes[TDM_EDGE_ROUTE_OFFLOAD],
                     (unsigned long long)st.routes[TDM_EDGE_ROUTE_DEFERRED],
                     (unsigned long long)st.routes[TDM_EDGE_ROUTE_FAILED],
                     (unsigned long long)st.bytes_sent, st.cost);
    const char *hdr[] = {"Content-Type: application/json", NULL};
    tdm_http_response r;
    tdm_err err;
    if (tdm_transport_post(e->tp, "/v1/telemetry", hdr, body, (size_t)n, 2000, &r, &err) == TDM_OK)
        tdm_http_response_free(&r);
}

static void *bg_main(void *arg)
{
    tdm_edge *e = arg;
    double interval = e->cfg.health_interval_ms;
    pthread_mutex_lock(&e->bg_mu);
    while (!e->stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t ns = (uint64_t)ts.tv_nsec + (uint64_t)(interval * 1e6);
        ts.tv_sec += (time_t)(ns / 1000000000ull);
        ts.tv_nsec = (long)(ns % 1000000000ull);
        pthread_cond_timedwait(&e->bg_cv, &e->bg_mu, &ts);
        if (e->stopping)
            break;
        pthread_mutex_unlock(&e->bg_mu);
        int healthy = tdm_transport_check_health(e->tp, interval < 2000 ? interval : 2000);
        if (healthy > 0 && e->q)
            tdm_edge_drain(e);
        if (e->q) {
            tdm_err err;
            pthread_mutex_lock(&e->qmu);
            tdm_replay_expire(e->q, wall_s(), &err);
            pthread_mutex_unlock(&e->qmu);
        }
        double now_ms = (double)tdm_now_ns() / 1e6;
        if (healthy > 0 && e->cfg.telemetry_interval_ms > 0 &&
            now_ms - e->last_telemetry_ms >= e->cfg.telemetry_interval_ms) {
            push_telemetry(e);
            e->last_telemetry_ms = now_ms;
        }
        pthread_mutex_lock(&e->bg_mu);
    }
    pthread_mutex_unlock(&e->bg_mu);
    return NULL;
}

/* ---- create / free ----------------------------------------------------------------------- */

static tdm_status create_from_doc(const tdm_json *root, const char *base_dir, tdm_edge **out,
                                  tdm_err *err)
{
    tdm_edge *e = calloc(1, sizeof *e);
    if (e == NULL)
        return tdm_errf(err, TDM_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&e->mu, NULL);
    pthread_mutex_init(&e->qmu, NULL);
    pthread_mutex_init(&e->bg_mu, NULL);
    pthread_cond_init(&e->bg_cv, NULL);
    pthread_mutex_init(&e->job_mu, NULL);
    pthread_cond_init(&e->job_cv, NULL);
    tdm_edge_metrics_init(&e->m);
    uint8_t rnd[TDM_SHA256_LEN];
    double now = wall_s();
    tdm_sha256_buf(&now, sizeof now, rnd);
    memcpy(&e->seed, rnd, sizeof e->seed);
    e->seed &= 0xffffffffffull; /* ids stay short; uniqueness across restarts is what counts */

    tdm_status st = tdm_edge_config_parse(root, base_dir, &e->cfg, err);
    if (st != TDM_OK)
        goto fail;
    for (int i = 0; i < e->cfg.n_models; i++) {
        e->n_models = i + 1;
        if ((st = setup_model(e, i, err)) != TDM_OK)
            goto fail;
    }
    if (e->cfg.n_endpoints > 0) {
        tdm_transport_options to = {0};
        for (int i = 0; i < e->cfg.n_endpoints; i++)
            to.endpoints[i] = e->cfg.endpoints[i];
        to.n_endpoints = e->cfg.n_endpoints;
        to.ca_file = e->cfg.ca_file;
        to.client_cert = e->cfg.client_cert;
        to.client_key = e->cfg.client_key;
        to.token_file = e->cfg.token_file;
        to.tls13_only = e->cfg.tls13_only;
        to.hedge_after_ms = e->cfg.hedge_after_ms;
        to.hedge_auto = e->cfg.hedge_auto;
        if ((st = tdm_transport_create(&to, &e->tp, err)) != TDM_OK)
            goto fail;
    }
    if (e->cfg.queue_path) {
        tdm_replay_options ro = {.max_age_s = e->cfg.retention_s,
                                 .max_bytes = e->cfg.queue_max_bytes};
        if ((st = tdm_replay_open(e->cfg.queue_path, &ro, &e->q, err)) != TDM_OK)
            goto fail;
    }
    if (e->cfg.cache_ttl_s > 0 &&
        (st = tdm_respcache_create(e->cfg.cache_max_bytes, (uint64_t)(e->cfg.cache_ttl_s * 1000),
                                   &e->exact, err)) != TDM_OK)
        goto fail;
    e->workers = calloc((size_t)e->cfg.workers, sizeof *e->workers);
    if (e->workers == NULL) {
        st = tdm_errf(err, TDM_ERR_NOMEM, "out of memory");
        goto fail;
    }
    for (int i = 0; i < e->cfg.workers; i++) {
        if (pthread_create(&e->workers[i], NULL, worker_main, e) != 0) {
            st = tdm_errf(err, TDM_ERR_NOMEM, "cannot start worker threads");
            goto fail;
        }
        e->n_workers = i + 1;
    }
    if (e->tp) {
        if (pthread_create(&e->bg, NULL, bg_main, e) != 0) {
            st = tdm_errf(err, TDM_ERR_NOMEM, "cannot start the background thread");
            goto fail;
        }
        e->bg_started = true;
    }
    *out = e;
    return TDM_OK;
fail:
    tdm_edge_free(e);
    return st;
}

tdm_status tdm_edge_create_from_text(const char *yaml, size_t len, const char *base_dir,
                                     tdm_edge **out, tdm_err *err)
{
    *out = NULL;
    tdm_json_doc *doc = NULL;
    tdm_status st = tdm_yaml_parse(yaml, len, &doc, err);
    if (st != TDM_OK) {
        tdm_err_prefix(err, "edge config: ");
        return st;
    }
    st = create_from_doc(tdm_json_root(doc), base_dir, out, err);
    tdm_json_free(doc);
    return st;
}

tdm_status tdm_edge_create(const char *config_path, tdm_edge **out, tdm_err *err)
{
    *out = NULL;
    tdm_json_doc *doc = NULL;
    tdm_status st = tdm_yaml_read_file(config_path, &doc, err);
    if (st != TDM_OK)
        return st;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", config_path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    else
        snprintf(dir, sizeof dir, ".");
    st = create_from_doc(tdm_json_root(doc), dir, out, err);
    tdm_json_free(doc);
    if (st != TDM_OK)
        tdm_err_prefix(err, "%s: ", config_path);
    return st;
}

void tdm_edge_free(tdm_edge *e)
{
    if (e == NULL)
        return;
    pthread_mutex_lock(&e->bg_mu);
    pthread_mutex_lock(&e->job_mu);
    e->stopping = true;
    pthread_cond_broadcast(&e->job_cv);
    pthread_mutex_unlock(&e->job_mu);
    pthread_cond_broadcast(&e->bg_cv);
    pthread_mutex_unlock(&e->bg_mu);
    if (e->bg_started)
        pthread_join(e->bg, NULL);
    for (int i = 0; i < e->n_workers; i++)
        pthread_join(e->workers[i], NULL);
    free(e->workers);
    for (int i = 0; i < e->n_models; i++) {
        model_rt *m = &e->models[i];
        for (int k = 0; k < m->n_pool; k++)
            tdm_session_free(m->pool[k]);
        tdm_simcache_free(m->sim);
        tdm_exits_free(m->heads);
        tdm_graph_free(m->g);
        pthread_mutex_destroy(&m->mu);
    }
    tdm_transport_free(e->tp);
    tdm_replay_close(e->q);
    tdm_respcache_free(e->exact);
    tdm_edge_config_release(&e->cfg);
    tdm_edge_metrics_destroy(&e->m);
    free(e->waiters);
    pthread_mutex_destroy(&e->mu);
    pthread_mutex_destroy(&e->qmu);
    pthread_mutex_destroy(&e->bg_mu);
    pthread_cond_destroy(&e->bg_cv);
    pthread_mutex_destroy(&e->job_mu);
    pthread_cond_destroy(&e->job_cv);
    free(e);
}

void tdm_edge_get_stats(tdm_edge *e, tdm_edge_stats *st)
{
    memset(st, 0, sizeof *st);
    pthread_mutex_lock(&e->m.mu);
    st->requests = e->m.requests;
    memcpy(st->routes, e->m.routes, sizeof st->routes);
    st->bytes_sent = e->m.bytes_sent;
    st->queued = e->m.queued;
    st->delivered_later = e->m.delivered_later;
    st->cost = e->m.cost;
    pthread_mutex_unlock(&e->m.mu);
    if (e->q) {
        tdm_replay_stats rs;
        tdm_err err;
        pthread_mutex_lock(&e->qmu);
        if (tdm_replay_get_stats(e->q, &rs, &err) == TDM_OK)
            st->dropped = rs.dropped_age + rs.dropped_bytes;
        pthread_mutex_unlock(&e->qmu);
    }
}

char *tdm_edge_metrics_text(tdm_edge *e)
{
    char extra[2048] = "";
    size_t n = 0;
    if (e->q) {
        tdm_replay_stats rs;
        tdm_err err;
        pthread_mutex_lock(&e->qmu);
        tdm_status st = tdm_replay_get_stats(e->q, &rs, &err);
        pthread_mutex_unlock(&e->qmu);
        if (st == TDM_OK)
            n += (size_t)snprintf(extra + n, sizeof extra - n,
                                  "# TYPE tandem_edge_queue_depth gauge\n"
                                  "tandem_edge_queue_depth{device=\"%s\"} %llu\n"
                                  "tandem_edge_queue_bytes{device=\"%s\"} %llu\n",
                                  e->cfg.device_id, (unsigned long long)rs.queued, e->cfg.device_id,
                                  (unsigned long long)rs.queued_bytes);
    }
    for (int i = 0; e->tp && i < tdm_transport_endpoint_count(e->tp) && n < sizeof extra; i++) {
        tdm_endpoint_stats es;
        tdm_transport_endpoint_stats(e->tp, i, &es);
        n += (size_t)snprintf(extra + n, sizeof extra - n,
                              "tandem_edge_endpoint_healthy{device=\"%s\",endpoint=\"%d\"} %d\n"
                              "tandem_edge_endpoint_rtt_ms{device=\"%s\",endpoint=\"%d\"} %.3f\n"
                              "tandem_edge_hedges_total{device=\"%s\",endpoint=\"%d\"} %llu\n"
                              "tandem_edge_hedge_wins_total{device=\"%s\",endpoint=\"%d\"} %llu\n",
                              e->cfg.device_id, i, es.healthy ? 1 : 0, e->cfg.device_id, i,
                              es.ewma_rtt_ms, e->cfg.device_id, i, (unsigned long long)es.hedges,
                              e->cfg.device_id, i, (unsigned long long)es.hedge_wins);
    }
    return tdm_edge_metrics_render(&e->m, e->cfg.device_id, extra);
}

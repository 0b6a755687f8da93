/*
 * Shared request-to-result path of the inference endpoints (see runner.h).
 *
 * The result format depends on the model's task: a classifier answers the argmax, its
 * softmax probability as confidence and the raw scores; an encoder answers the mean-pooled,
 * L2-normalised embedding (each request's outputs are already cut to its own sequence
 * length by the batcher, so pooling over every position is pooling over its real tokens);
 * anything else answers its outputs as arrays. Every answer carries timings split into
 * queue and compute time and the size of the batch it ran in.
 */
#include "cloud/runner.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "cloud/gateway_internal.h"
#include "cloud/metrics.h"
#include "collab/respcache.h"

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

bool tdm_gw_b64_decode(const char *s, size_t n, unsigned char **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    while (n > 0 && s[n - 1] == '=')
        n--;
    if (n % 4 == 1)
        return false;
    unsigned char *buf = malloc(n / 4 * 3 + 3);
    if (!buf)
        return false;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_value((unsigned char)s[i]);
        if (v < 0) {
            free(buf);
            return false;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[o++] = (unsigned char)(acc >> bits);
        }
    }
    *out = buf;
    *out_len = o;
    return true;
}

bool tdm_gw_check_input(const tdm_value_info *info, const tdm_tensor *t, size_t max_bytes,
                        const char *what, tdm_gw_response *resp)
{
    char shape[128];
    if (tdm_tensor_nbytes(t) > max_bytes) {
        tdm_gw_error(resp, 413, "tensor_too_large", "%s: %s is %zu bytes, more than the limit %zu",
                     what, tdm_tensor_shape_str(t, shape, sizeof shape), tdm_tensor_nbytes(t),
                     max_bytes);
        return false;
    }
    if (info->dtype != TDM_DTYPE_UNDEFINED && t->dtype != info->dtype) {
        tdm_gw_error(resp, 400, "bad_dtype", "%s: expected dtype %s, got %s", what,
                     tdm_dtype_name(info->dtype), tdm_dtype_name(t->dtype));
        return false;
    }
    if (t->ndim < 1) {
        tdm_gw_error(resp, 400, "bad_shape", "%s: a scalar; expected a tensor with a batch dim",
                     what);
        return false;
    }
    if (info->ndim >= 0) {
        if (t->ndim != info->ndim) {
            tdm_gw_error(resp, 400, "bad_shape", "%s: expected rank %d, got %s", what, info->ndim,
                         tdm_tensor_shape_str(t, shape, sizeof shape));
            return false;
        }
        for (int d = 0; d < t->ndim; d++)
            if (info->dims[d] >= 0 && info->dims[d] != t->dims[d]) {
                tdm_gw_error(resp, 400, "bad_shape", "%s: dim %d must be %lld, got %s", what, d,
                             (long long)info->dims[d],
                             tdm_tensor_shape_str(t, shape, sizeof shape));
                return false;
            }
    }
    if (t->dims[0] < 1) {
        tdm_gw_error(resp, 400, "bad_shape", "%s: the batch dim is 0", what);
        return false;
    }
    return true;
}

bool tdm_gw_deadline(const tdm_gw_request *req, const tdm_json *body, uint64_t *deadline_ns,
                     tdm_gw_response *resp)
{
    double ms = tdm_gw_config_get(req->gw)->default_deadline_ms;
    const tdm_json *j = body ? tdm_json_get(body, "deadline_ms") : NULL;
    const char *h = tdm_gw_header(req, "X-Deadline-Ms");
    if (j) {
        if (j->type != TDM_JSON_NUMBER || !(j->number > 0) || j->number > 1e9) {
            tdm_gw_error(resp, 400, "bad_deadline", "deadline_ms must be a positive number of ms");
            return false;
        }
        ms = j->number;
    } else if (h) {
        char *end;
        double v = strtod(h, &end);
        if (end == h || *end || !(v > 0) || v > 1e9) {
            tdm_gw_error(resp, 400, "bad_deadline", "X-Deadline-Ms: '%s' is not a positive number",
                         h);
            return false;
        }
        ms = v;
    }
    *deadline_ns = req->received_ns + (uint64_t)(ms * 1e6);
    return true;
}

const tdm_gw_version *tdm_gw_find_version(const tdm_gw_models *m, const char *model,
                                          const char *version, tdm_gw_response *resp)
{
    if (!model) {
        tdm_gw_error(resp, 400, "missing_field", "the request names no model");
        return NULL;
    }
    const tdm_gw_version *v = tdm_gw_models_find(m, model, version);
    if (!v) {
        if (version && version[0] && tdm_gw_models_find(m, model, NULL))
            tdm_gw_error(resp, 404, "unknown_version", "model '%s' has no version '%s'", model,
                         version);
        else
            tdm_gw_error(resp, 404, "unknown_model", "no model named '%s'", model);
    }
    return v;
}

/* ---- results ---------------------------------------------------------------------------- */

static void key(tdm_json_buf *b, const char *k)
{
    tdm_json_buf_raw(b, ",\"", 2);
    tdm_json_buf_raw(b, k, strlen(k));
    tdm_json_buf_raw(b, "\":", 2);
}

static void float_array(tdm_json_buf *b, const float *x, int64_t n)
{
    tdm_json_buf_raw(b, "[", 1);
    for (int64_t i = 0; i < n; i++) {
        if (i)
            tdm_json_buf_raw(b, ",", 1);
        tdm_json_buf_f32(b, x[i]);
    }
    tdm_json_buf_raw(b, "]", 1);
}

static void write_raw_tensor(tdm_json_buf *b, const tdm_tensor *t)
{
    tdm_json_buf_raw(b, "{\"dtype\":", 9);
    const char *dn = tdm_dtype_name(t->dtype);
    tdm_json_buf_string(b, dn, strlen(dn));
    tdm_json_buf_raw(b, ",\"shape\":[", 10);
    for (int d = 0; d < t->ndim; d++) {
        if (d)
            tdm_json_buf_raw(b, ",", 1);
        tdm_json_buf_i64(b, t->dims[d]);
    }
    tdm_json_buf_raw(b, "],\"data\":[", 10);
    int64_t n = tdm_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) {
        if (i)
            tdm_json_buf_raw(b, ",", 1);
        switch (t->dtype) {
        case TDM_DTYPE_FLOAT32: tdm_json_buf_f32(b, ((const float *)t->data)[i]); break;
        case TDM_DTYPE_INT64: tdm_json_buf_i64(b, ((const int64_t *)t->data)[i]); break;
        case TDM_DTYPE_INT32: tdm_json_buf_i64(b, ((const int32_t *)t->data)[i]); break;
        case TDM_DTYPE_FLOAT64: tdm_json_buf_f64(b, ((const double *)t->data)[i]); break;
        case TDM_DTYPE_BOOL:
        case TDM_DTYPE_UINT8: tdm_json_buf_i64(b, ((const uint8_t *)t->data)[i]); break;
        default: tdm_json_buf_raw(b, "null", 4);
        }
    }
    tdm_json_buf_raw(b, "]}", 2);
}

/* One classification row: argmax (as "result" and "label"), its name ("class") when the
 * model has labels, softmax confidence, raw scores. */
static void classify_row(tdm_json_buf *b, const tdm_gw_version *v, const float *x, int64_t n)
{
    int64_t best = 0;
    bool probs = true;
    double sum = 0;
    for (int64_t i = 0; i < n; i++) {
        if (x[i] > x[best])
            best = i;
        if (!(x[i] >= 0 && x[i] <= 1))
            probs = false;
        sum += x[i];
    }
    double conf;
    if (probs && fabs(sum - 1.0) < 1e-3) {
        conf = x[best];
    } else {
        double z = 0;
        for (int64_t i = 0; i < n; i++)
            z += exp((double)x[i] - (double)x[best]);
        conf = 1.0 / z;
    }
    tdm_json_buf_raw(b, "\"result\":", 9);
    tdm_json_buf_i64(b, best);
    key(b, "label"); /* the class index, as the edge agent reads it */
    tdm_json_buf_i64(b, best);
    if (best < v->n_labels) {
        key(b, "class");
        tdm_json_buf_string(b, v->labels[best], strlen(v->labels[best]));
    }
    key(b, "confidence");
    tdm_json_buf_f64(b, conf);
    key(b, "scores");
    float_array(b, x, n);
}

static bool write_result(tdm_json_buf *b, const tdm_gw_version *v, const tdm_gw_entry *e,
                         const tdm_gw_job *job)
{
    const tdm_tensor *o = &job->outputs[0];
    if (v->task == TDM_GW_TASK_RAW || o->dtype != TDM_DTYPE_FLOAT32 || o->ndim < 1) {
        key(b, "outputs");
        tdm_json_buf_raw(b, "{", 1);
        for (int i = 0; i < job->n_out; i++) {
            if (i)
                tdm_json_buf_raw(b, ",", 1);
            tdm_json_buf_string(b, e->out_names[i], strlen(e->out_names[i]));
            tdm_json_buf_raw(b, ":", 1);
            write_raw_tensor(b, &job->outputs[i]);
        }
        tdm_json_buf_raw(b, "}", 1);
        return true;
    }
    int64_t rows = o->dims[0];
    int64_t per_row = rows ? tdm_tensor_numel(o) / rows : 0;
    const float *x = o->data;
    if (v->task == TDM_GW_TASK_CLASSIFY) {
        if (rows == 1) {
            tdm_json_buf_raw(b, ",", 1);
            classify_row(b, v, x, per_row);
        } else {
            key(b, "results");
            tdm_json_buf_raw(b, "[", 1);
            for (int64_t r = 0; r < rows; r++) {
                tdm_json_buf_raw(b, r ? ",{" : "{", r ? 2 : 1);
                classify_row(b, v, x + r * per_row, per_row);
                tdm_json_buf_raw(b, "}", 1);
            }
            tdm_json_buf_raw(b, "]", 1);
        }
        return true;
    }
    /* embed: [rows, seq, H] mean-pooled over seq, or [rows, H] */
    int64_t hdim = o->dims[o->ndim - 1];
    int64_t seq = hdim ? per_row / hdim : 0;
    float *emb = malloc(sizeof(float) * (size_t)(hdim ? hdim : 1));
    if (!emb)
        return false;
    key(b, rows == 1 ? "embedding" : "embeddings");
    if (rows > 1)
        tdm_json_buf_raw(b, "[", 1);
    for (int64_t r = 0; r < rows; r++) {
        const float *row = x + r * per_row;
        double norm = 0;
        for (int64_t h = 0; h < hdim; h++) {
            double s = 0;
            for (int64_t t = 0; t < seq; t++)
                s += row[t * hdim + h];
            emb[h] = (float)(seq ? s / (double)seq : 0);
            norm += (double)emb[h] * emb[h];
        }
        norm = sqrt(norm);
        for (int64_t h = 0; h < hdim && norm > 0; h++)
            emb[h] = (float)(emb[h] / norm);
        if (r)
            tdm_json_buf_raw(b, ",", 1);
        float_array(b, emb, hdim);
    }
    if (rows > 1)
        tdm_json_buf_raw(b, "]", 1);
    key(b, "dim");
    tdm_json_buf_i64(b, hdim);
    free(emb);
    return true;
}

static bool client_gone_cb(void *arg)
{
    return tdm_gw_client_gone(arg);
}

/* The answer's fixed head: model, version, entry, request id. */
static void write_head(tdm_json_buf *b, const tdm_gw_request *req, const tdm_gw_version *v,
                       const tdm_gw_entry *e)
{
    tdm_json_buf_reset(b);
    tdm_json_buf_raw(b, "{\"model\":", 9);
    tdm_json_buf_string(b, v->model, strlen(v->model));
    key(b, "version");
    tdm_json_buf_string(b, v->version, strlen(v->version));
    key(b, "entry");
    tdm_json_buf_string(b, e->name, strlen(e->name));
    key(b, "request_id");
    tdm_json_buf_string(b, req->request_id, strlen(req->request_id));
}

void tdm_gw_run_entry(const tdm_gw_request *req, const tdm_gw_version *v, const tdm_gw_entry *e,
                      const tdm_tensor *inputs, uint64_t deadline_ns, tdm_gw_response *resp)
{
    /* The response cache (extras' module, NULL when off) holds the result part of an answer,
     * keyed by model, version, entry and the input tensors; the head and the timings are
     * this request's own. */
    tdm_respcache *rc = req->gw ? tdm_gw_module_state(req->gw, "respcache") : NULL;
    uint8_t ckey[TDM_RESPCACHE_KEY_LEN];
    tdm_json_buf *b = &resp->body;
    char t[200];
    if (rc) {
        tdm_respcache_key_tensors(v->model, v->version, e->name, inputs, e->n_in, ckey);
        tdm_respcache_value hit;
        if (tdm_respcache_get(rc, ckey, tdm_respcache_now_ms(), &hit)) {
            tdm_gw_metrics_event(tdm_gw_metrics_of(req->gw), "cache_hit");
            write_head(b, req, v, e);
            tdm_json_buf_raw(b, hit.data, hit.len);
            tdm_respcache_value_free(&hit);
            snprintf(t, sizeof t,
                     ",\"timings\":{\"queue_ms\":0,\"compute_ms\":0,\"total_ms\":%.3f,"
                     "\"batch_size\":0,\"cache\":\"hit\"}}\n",
                     (double)(tdm_now_ns() - req->received_ns) * 1e-6);
            tdm_json_buf_raw(b, t, strlen(t));
            tdm_gw_resp_header(resp, "X-Cache", "hit");
            if (b->failed)
                tdm_gw_error(resp, 507, "out_of_memory", "out of memory writing the result");
            else
                tdm_gw_resp_json(resp, 200);
            return;
        }
        tdm_gw_metrics_event(tdm_gw_metrics_of(req->gw), "cache_miss");
        tdm_gw_resp_header(resp, "X-Cache", "miss");
    }
    tdm_gw_job *job = calloc(1, sizeof *job);
    if (!job) {
        tdm_gw_error(resp, 507, "out_of_memory", "out of memory");
        return;
    }
    job->inputs = inputs;
    job->deadline_ns = deadline_ns;
    job->gone = client_gone_cb;
    job->gone_arg = (void *)req;
    tdm_gw_batcher_run(e->batcher, job);
    if (job->http_status != 200) {
        int st = job->http_status ? job->http_status : 500;
        tdm_gw_error(resp, st, job->code[0] ? job->code : "internal", "model %s version %s: %s",
                     v->model, v->version, job->msg[0] ? job->msg : "failed");
        if (st == 429) {
            char ra[16];
            snprintf(ra, sizeof ra, "%d", tdm_gw_config_get(req->gw)->retry_after_s);
            tdm_gw_resp_header(resp, "Retry-After", ra);
        }
        free(job);
        return;
    }
    write_head(b, req, v, e);
    size_t frag_start = b->len;
    bool ok = write_result(b, v, e, job);
    if (ok && rc && !b->failed)
        tdm_respcache_put(rc, ckey, b->data + frag_start, b->len - frag_start, 0,
                          tdm_respcache_now_ms());
    double total_ms = (double)(tdm_now_ns() - req->received_ns) * 1e-6;
    key(b, "timings");
    snprintf(t, sizeof t,
             "{\"queue_ms\":%.3f,\"compute_ms\":%.3f,\"total_ms\":%.3f,"
             "\"batch_size\":%d}}\n",
             job->queue_s * 1e3, job->compute_s * 1e3, total_ms, job->batch_size);
    tdm_json_buf_raw(b, t, strlen(t));
    for (int i = 0; i < job->n_out; i++)
        tdm_tensor_free(&job->outputs[i]);
    free(job);
    if (!ok || b->failed)
        tdm_gw_error(resp, 507, "out_of_memory", "out of memory writing the result");
    else
        tdm_gw_resp_json(resp, 200);
}

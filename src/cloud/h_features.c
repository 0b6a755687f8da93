/*
 * POST /v1/features: an edge device sends the activations at a cut; the cloud runs the tail.
 *
 * Two body forms. Binary (Content-Type application/octet-stream or
 * application/x-tandem-frame): the body is the codec frames of the cut tensors, back to back
 * in the cut's order (each frame is self-describing, so no lengths are needed); model,
 * version and cut come from the query string (?model=&version=&cut=), the request id,
 * idempotency key and deadline from the X-Request-Id, Idempotency-Key and X-Deadline-Ms
 * headers. JSON: {"model","version","cut","features": base64 frame or [base64 frames],
 * "idempotency_key","deadline_ms","request_id"}.
 *
 * With an idempotency key (scoped to model, version and cut), the first answer is stored and
 * returned verbatim to every repeat, with "Idempotent-Replayed: true"; the model does not
 * run again. cut=input names the model's own inputs (the cloud runs the whole model on
 * frames of its inputs). A frame that is truncated, corrupt or of a shape the cut does not take is
 * a 400 naming the tensor.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cloud/gateway_internal.h"
#include "cloud/http.h"
#include "cloud/idempotency.h"
#include "cloud/metrics.h"
#include "cloud/runner.h"
#include "tandem/codec.h"

/* Decodes the frames in buf into one tensor per cut tensor. */
static bool decode_frames(const tdm_gw_entry *e, const unsigned char *buf, size_t len,
                          size_t max_bytes, tdm_tensor *in, int *n_in, tdm_gw_response *resp)
{
    size_t off = 0;
    while (off < len) {
        if (*n_in == e->n_in) {
            tdm_gw_error(resp, 400, "bad_frame",
                         "%zu bytes after the %d frame(s) that cut '%s' takes", len - off, e->n_in,
                         e->name);
            return false;
        }
        const char *tn = e->in_names[*n_in];
        tdm_codec_header h;
        tdm_err err = {{0}};
        if (tdm_codec_frame_info(buf + off, len - off, &h, &err) != TDM_OK) {
            tdm_gw_error(resp, 400, "bad_frame", "tensor '%s': %s", tn, err.msg);
            return false;
        }
        if (h.frame_len > len - off) {
            tdm_gw_error(resp, 400, "bad_frame", "tensor '%s': truncated frame: %zu bytes of %zu",
                         tn, len - off, h.frame_len);
            return false;
        }
        if (h.decoded_bytes > max_bytes) {
            tdm_gw_error(resp, 413, "tensor_too_large",
                         "tensor '%s': decodes to %zu bytes, more than the limit %zu", tn,
                         h.decoded_bytes, max_bytes);
            return false;
        }
        if (tdm_codec_decode(buf + off, h.frame_len, &in[*n_in], max_bytes, &err) != TDM_OK) {
            tdm_gw_error(resp, 400, "bad_frame", "tensor '%s': %s", tn, err.msg);
            return false;
        }
        if (!tdm_gw_check_input(&e->in_info[*n_in], &in[*n_in], max_bytes, tn, resp))
            return false;
        (*n_in)++;
        off += h.frame_len;
    }
    if (*n_in != e->n_in) {
        tdm_gw_error(resp, 400, "bad_frame", "cut '%s' takes %d tensor(s), the request has %d",
                     e->name, e->n_in, *n_in);
        return false;
    }
    for (int i = 1; i < *n_in; i++)
        if (in[i].dims[0] != in[0].dims[0]) {
            tdm_gw_error(resp, 400, "bad_shape", "the cut tensors disagree on the batch dim");
            return false;
        }
    return true;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void tdm_gw_h_features(const tdm_gw_request *req, tdm_gw_response *resp)
{
    const tdm_gw_config *cfg = tdm_gw_config_get(req->gw);
    const char *ctype = tdm_gw_header(req, "Content-Type");
    bool binary = ctype && (strncasecmp(ctype, "application/octet-stream", 24) == 0 ||
                            strncasecmp(ctype, "application/x-tandem-frame", 26) == 0);
    tdm_json_doc *doc = NULL;
    const tdm_json *root = NULL;
    const char *model, *version, *cut, *idem_key;
    if (binary) {
        model = tdm_gw_query(req, "model");
        version = tdm_gw_query(req, "version");
        cut = tdm_gw_query(req, "cut");
        idem_key = tdm_gw_header(req, "Idempotency-Key");
    } else {
        doc = tdm_gw_parse_json_body(req, resp);
        if (!doc)
            return;
        root = tdm_json_root(doc);
        model = tdm_json_string(tdm_json_get(root, "model"), NULL);
        version = tdm_json_string(tdm_json_get(root, "version"), NULL);
        cut = tdm_json_string(tdm_json_get(root, "cut"), NULL);
        idem_key = tdm_json_string(tdm_json_get(root, "idempotency_key"), NULL);
        if (!idem_key)
            idem_key = tdm_gw_header(req, "Idempotency-Key");
    }
    tdm_gw_models *m = tdm_gw_registry_acquire(tdm_gw_registry_of(req->gw));
    tdm_tensor in[TDM_GW_MAX_IO];
    memset(in, 0, sizeof in);
    int n_in = 0;
    char key[512];
    bool idem_running = false;
    uint64_t deadline = 0;
    const tdm_gw_version *v = tdm_gw_find_version(m, model, version, resp);
    if (!v || !tdm_gw_deadline(req, root, &deadline, resp))
        goto out;
    if (!cut) {
        tdm_gw_error(resp, 400, "missing_field", "the request names no cut");
        goto out;
    }
    /* cut=input: the edge sends the model's own inputs and the cloud runs all of it */
    const tdm_gw_entry *e =
        strcmp(cut, "input") == 0 ? &v->entries[0] : tdm_gw_version_entry(v, cut);
    if (!e || (e == &v->entries[0] && strcmp(cut, "input") != 0)) {
        tdm_gw_error(resp, 404, "unknown_cut", "model %s version %s has no cut '%s'", v->model,
                     v->version, cut);
        goto out;
    }
    if (idem_key && (idem_key[0] == '\0' || strlen(idem_key) > 255)) {
        tdm_gw_error(resp, 400, "bad_idempotency_key", "the idempotency key must be 1..255 bytes");
        goto out;
    }
    if (idem_key) {
        snprintf(key, sizeof key, "%s\n%s\n%s\n%s", v->model, v->version, cut, idem_key);
        int status = 0;
        char *body = NULL;
        size_t body_len = 0;
        tdm_gw_idem_result r =
            tdm_gw_idem_begin(tdm_gw_idem_of(req->gw), key, now_s(),
                              cfg->default_deadline_ms * 1e-3, &status, &body, &body_len);
        if (r == TDM_GW_IDEM_STORED) {
            tdm_gw_resp_bytes(resp, status, "application/json", body, body_len);
            tdm_gw_resp_header(resp, "Idempotent-Replayed", "true");
            tdm_gw_metrics_event(tdm_gw_metrics_of(req->gw), "idempotent_replay");
            free(body);
            goto out;
        }
        if (r == TDM_GW_IDEM_BUSY) {
            tdm_gw_error(resp, 409, "idempotency_conflict",
                         "a request with this idempotency key is still running");
            goto out;
        }
        idem_running = true;
    }
    if (binary) {
        if (!req->body_len) {
            tdm_gw_error(resp, 400, "bad_frame", "the request body is empty");
            goto out;
        }
        if (!decode_frames(e, (const unsigned char *)req->body, req->body_len,
                           cfg->max_tensor_bytes, in, &n_in, resp))
            goto out;
    } else {
        const tdm_json *f = tdm_json_get(root, "features");
        size_t nf = f && f->type == TDM_JSON_ARRAY ? f->len : 1;
        if (!f || (f->type != TDM_JSON_STRING && f->type != TDM_JSON_ARRAY)) {
            tdm_gw_error(resp, 400, "missing_field",
                         "\"features\" must be a base64 frame or a list of them");
            goto out;
        }
        /* frames from the list are concatenated: the same parser then checks them all */
        unsigned char *all = NULL;
        size_t all_len = 0;
        for (size_t i = 0; i < nf; i++) {
            const tdm_json *item = f->type == TDM_JSON_ARRAY ? &f->items[i] : f;
            size_t sl = 0;
            const char *s = tdm_json_string(item, &sl);
            unsigned char *raw = NULL;
            size_t rl = 0;
            if (!s || !tdm_gw_b64_decode(s, sl, &raw, &rl)) {
                free(all);
                tdm_gw_error(resp, 400, "bad_base64", "features[%zu]: not a base64 string", i);
                goto out;
            }
            unsigned char *grown = realloc(all, all_len + rl + 1);
            if (!grown) {
                free(raw);
                free(all);
                tdm_gw_error(resp, 507, "out_of_memory", "out of memory");
                goto out;
            }
            all = grown;
            memcpy(all + all_len, raw, rl);
            all_len += rl;
            free(raw);
        }
        bool ok =
            all_len > 0 && decode_frames(e, all, all_len, cfg->max_tensor_bytes, in, &n_in, resp);
        free(all);
        if (!ok) {
            if (resp->status == 0)
                tdm_gw_error(resp, 400, "bad_frame", "the features are empty");
            goto out;
        }
    }
    tdm_gw_run_entry(req, v, e, in, deadline, resp);
out:
    if (idem_running) {
        if (!tdm_gw_idem_final(resp->status))
            tdm_gw_idem_abandon(tdm_gw_idem_of(req->gw), key);
        else
            tdm_gw_idem_finish(tdm_gw_idem_of(req->gw), key, now_s(), resp->status,
                               resp->body.data ? resp->body.data : "", resp->body.len);
    }
    for (int i = 0; i < TDM_GW_MAX_IO; i++)
        tdm_tensor_free(&in[i]);
    tdm_gw_models_release(m);
    tdm_json_free(doc);
}

/*
 * POST /v1/infer: a whole-model run on raw input.
 *
 * Body: {"model", "version"?, "input": base64 .npy} for single-input models,
 * {"inputs": {"name": base64 .npy, ...}} for several, or {"text": "..."} for text models
 * (tokenised here with the version's tokenizer into BERT-style input_ids / attention_mask /
 * token_type_ids). Optional "deadline_ms". Inputs are checked against the graph's declared
 * dtypes and shapes before they are queued, so a malformed request is a 400 that names the
 * input, never an engine error.
 */
#include <stdlib.h>
#include <string.h>

#include "cloud/gateway_internal.h"
#include "cloud/http.h"
#include "cloud/runner.h"
#include "tandem/npy.h"

/* Decodes one base64 .npy value into t; writes a 400 naming `name` on failure. */
static bool decode_npy(const tdm_json *val, const char *name, tdm_tensor *t, tdm_gw_response *resp)
{
    size_t n = 0;
    const char *s = tdm_json_string(val, &n);
    if (!s) {
        tdm_gw_error(resp, 400, "bad_input", "input '%s': expected a base64 .npy string, got %s",
                     name, val ? tdm_json_type_name(val->type) : "nothing");
        return false;
    }
    unsigned char *raw = NULL;
    size_t len = 0;
    if (!tdm_gw_b64_decode(s, n, &raw, &len)) {
        tdm_gw_error(resp, 400, "bad_base64", "input '%s': not valid base64", name);
        return false;
    }
    tdm_err err = {{0}};
    tdm_status st = tdm_npy_parse(raw, len, t, &err);
    free(raw);
    if (st != TDM_OK) {
        tdm_gw_error(resp, 400, "bad_npy", "input '%s': %s", name, err.msg);
        return false;
    }
    return true;
}

static bool tokenize(const tdm_gw_version *v, const tdm_gw_entry *e, const tdm_json *text,
                     tdm_tensor *in, size_t max_bytes, tdm_gw_response *resp)
{
    size_t n = 0;
    const char *s = tdm_json_string(text, &n);
    if (!s) {
        tdm_gw_error(resp, 400, "bad_input", "text: expected a string");
        return false;
    }
    if (n > max_bytes) {
        tdm_gw_error(resp, 413, "tensor_too_large", "text: %zu bytes, more than %zu", n, max_bytes);
        return false;
    }
    size_t cap = tdm_tokenizer_encode_bound(v->tok, n);
    if (cap > (size_t)v->max_seq_len)
        cap = (size_t)v->max_seq_len;
    int32_t *ids = malloc(sizeof(int32_t) * (cap ? cap : 1));
    if (!ids) {
        tdm_gw_error(resp, 507, "out_of_memory", "out of memory");
        return false;
    }
    size_t got = 0;
    tdm_err err = {{0}};
    tdm_status st =
        tdm_tokenizer_encode(v->tok, s, n, (size_t)v->max_seq_len, ids, cap, &got, &err);
    if (st != TDM_OK) {
        free(ids);
        tdm_gw_error(resp, 400, "bad_text", "text: %s", err.msg);
        return false;
    }
    int64_t dims[2] = {1, (int64_t)got};
    for (int i = 0; i < e->n_in; i++) {
        if (tdm_tensor_make(&in[i], TDM_DTYPE_INT64, 2, dims, &err) != TDM_OK) {
            free(ids);
            tdm_gw_error(resp, 507, "out_of_memory", "out of memory");
            return false;
        }
        int64_t *d = in[i].data;
        const char *nm = e->in_names[i];
        for (size_t k = 0; k < got; k++)
            d[k] = strstr(nm, "input_ids")        ? ids[k]
                   : strstr(nm, "attention_mask") ? 1
                                                  : 0; /* token_type_ids and others */
    }
    free(ids);
    return true;
}

void tdm_gw_h_infer(const tdm_gw_request *req, tdm_gw_response *resp)
{
    tdm_json_doc *doc = tdm_gw_parse_json_body(req, resp);
    if (!doc)
        return;
    const tdm_json *root = tdm_json_root(doc);
    const tdm_gw_config *cfg = tdm_gw_config_get(req->gw);
    tdm_gw_models *m = tdm_gw_registry_acquire(tdm_gw_registry_of(req->gw));
    tdm_tensor in[TDM_GW_MAX_IO];
    memset(in, 0, sizeof in);
    uint64_t deadline = 0;
    const tdm_gw_version *v =
        tdm_gw_find_version(m, tdm_json_string(tdm_json_get(root, "model"), NULL),
                            tdm_json_string(tdm_json_get(root, "version"), NULL), resp);
    if (!v || !tdm_gw_deadline(req, root, &deadline, resp))
        goto out;
    const tdm_gw_entry *e = &v->entries[0];
    const tdm_json *text = tdm_json_get(root, "text");
    const tdm_json *input = tdm_json_get(root, "input");
    const tdm_json *inputs = tdm_json_get(root, "inputs");
    if (text) {
        if (!v->text_input) {
            tdm_gw_error(resp, 400, "bad_input", "model '%s' takes tensors, not text", v->model);
            goto out;
        }
        if (!tokenize(v, e, text, in, cfg->max_tensor_bytes, resp))
            goto out;
    } else if (input) {
        if (e->n_in != 1) {
            tdm_gw_error(resp, 400, "bad_input",
                         "model '%s' has %d inputs: send them by name in \"inputs\"", v->model,
                         e->n_in);
            goto out;
        }
        if (!decode_npy(input, e->in_names[0], &in[0], resp) ||
            !tdm_gw_check_input(&e->in_info[0], &in[0], cfg->max_tensor_bytes, e->in_names[0],
                                resp))
            goto out;
    } else if (inputs && inputs->type == TDM_JSON_OBJECT) {
        for (size_t k = 0; k < inputs->len; k++) {
            bool known = false;
            for (int i = 0; i < e->n_in; i++)
                known = known || strcmp(inputs->items[k].key, e->in_names[i]) == 0;
            if (!known) {
                tdm_gw_error(resp, 400, "bad_input", "model '%s' has no input '%s'", v->model,
                             inputs->items[k].key);
                goto out;
            }
        }
        for (int i = 0; i < e->n_in; i++) {
            const tdm_json *val = tdm_json_get(inputs, e->in_names[i]);
            if (!val) {
                tdm_gw_error(resp, 400, "missing_field", "inputs: no value for input '%s'",
                             e->in_names[i]);
                goto out;
            }
            if (!decode_npy(val, e->in_names[i], &in[i], resp) ||
                !tdm_gw_check_input(&e->in_info[i], &in[i], cfg->max_tensor_bytes, e->in_names[i],
                                    resp))
                goto out;
        }
        for (int i = 1; i < e->n_in; i++)
            if (in[i].dims[0] != in[0].dims[0]) {
                tdm_gw_error(resp, 400, "bad_shape", "inputs disagree on the batch dim");
                goto out;
            }
    } else {
        tdm_gw_error(resp, 400, "missing_field",
                     "the request has no \"input\", \"inputs\" object or \"text\"");
        goto out;
    }
    tdm_gw_run_entry(req, v, e, in, deadline, resp);
out:
    for (int i = 0; i < TDM_GW_MAX_IO; i++)
        tdm_tensor_free(&in[i]);
    tdm_gw_models_release(m);
    tdm_json_free(doc);
}

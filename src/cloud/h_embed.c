/*
 * Sentence embeddings over HTTP: POST /v1/embeddings (the OpenAI request and
 * response shapes) and GET /v1/embed?model=&version=&text= (one text, made
 * for HTTP caches).
 *
 * A model of the repository is an embedding model when its version directory
 * holds a tokenizer (vocab.txt or tokenizer.json) and either
 * sentence-transformers weights (config.json + model.safetensors) or an ONNX
 * export (onnx/model.onnx or model.onnx); include/tandem/embed.h loads both.
 * Embedders are loaded on first use and kept (at most embed.max_models, least
 * recently used unloaded first); each is used by one request at a time (its
 * mutex), as embed.h requires, and different models run in parallel.
 *
 * Caching: the embedding of a text under a pinned model version never
 * changes, so GET /v1/embed with a version answers with
 * "Cache-Control: public, max-age=N, immutable" and an ETag derived from
 * (model, version, text) alone. That lets nginx or a CDN serve repeats
 * without asking, and lets the gateway answer If-None-Match with 304 before
 * running the model at all. Without a version the latest one is used and the
 * answer may be cached for a minute only. Results also go through the
 * gateway's own response cache (module "respcache") when it is on.
 */
#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/sha256.h"
#include "cloud/extras.h"
#include "cloud/gateway_internal.h"
#include "collab/respcache.h"
#include "tandem/embed.h"
#include "tandem/text.h"

#define MAX_MODELS_LIMIT 64

typedef struct loaded {
    char model[136], version[136];
    tdm_embedder *e;
    tdm_tokenizer *tok;
    pthread_mutex_t run_mu; /* one embed call at a time */
    int refs;               /* requests using it (guarded by the state's mu) */
    uint64_t last_used;     /* tick of the state's clock */
} loaded;

typedef struct embed_state {
    pthread_mutex_t mu; /* guards the table, refs and ticks; loads happen under it */
    loaded *m[MAX_MODELS_LIMIT];
    int n;
    uint64_t tick;
    int max_models, threads, max_inputs;
    size_t max_text_bytes;
    double max_age_s;
} embed_state;

tdm_status tdm_gw_embed_init(tdm_gw *gw, const tdm_json *cfg, void **state, tdm_err *err)
{
    (void)gw;
    double max_models = 4, threads = 1, max_inputs = 256, max_text = 65536, max_age = 31536000;
    tdm_status s;
    if ((s = tdm_gw_cfg_number(cfg, "embed", "max_models", 1, MAX_MODELS_LIMIT, &max_models,
                               err)) ||
        (s = tdm_gw_cfg_number(cfg, "embed", "threads", 1, 256, &threads, err)) ||
        (s = tdm_gw_cfg_number(cfg, "embed", "max_inputs", 1, 100000, &max_inputs, err)) ||
        (s = tdm_gw_cfg_number(cfg, "embed", "max_text_bytes", 1, 1e8, &max_text, err)) ||
        (s = tdm_gw_cfg_number(cfg, "embed", "max_age_s", 0, 1e9, &max_age, err)))
        return s;
    embed_state *st = calloc(1, sizeof *st);
    if (!st)
        return tdm_errf(err, TDM_ERR_NOMEM, "embed: out of memory");
    pthread_mutex_init(&st->mu, NULL);
    st->max_models = (int)max_models;
    st->threads = (int)threads;
    st->max_inputs = (int)max_inputs;
    st->max_text_bytes = (size_t)max_text;
    st->max_age_s = max_age;
    *state = st;
    return TDM_OK;
}

static void unload(loaded *l)
{
    tdm_embedder_free(l->e);
    tdm_tokenizer_free(l->tok);
    pthread_mutex_destroy(&l->run_mu);
    free(l);
}

void tdm_gw_embed_free(void *state)
{
    embed_state *st = state;
    if (!st)
        return;
    for (int i = 0; i < st->n; i++)
        unload(st->m[i]);
    pthread_mutex_destroy(&st->mu);
    free(st);
}

static bool is_file(const char *dir, const char *name)
{
    char p[2300];
    struct stat s;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return stat(p, &s) == 0 && S_ISREG(s.st_mode);
}

/* The highest version directory of a model (natural order: 2 < 10), or false. */
static bool latest_version(const char *repo, const char *model, char *out, size_t cap)
{
    char dir[1300];
    snprintf(dir, sizeof dir, "%s/%s", repo, model);
    DIR *d = opendir(dir);
    if (!d)
        return false;
    bool found = false;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!tdm_gw_valid_name(de->d_name) || strlen(de->d_name) >= cap)
            continue;
        char p[2600];
        struct stat s;
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        if (stat(p, &s) != 0 || !S_ISDIR(s.st_mode))
            continue;
        if (!found || strverscmp(de->d_name, out) > 0) {
            snprintf(out, cap, "%s", de->d_name);
            found = true;
        }
    }
    closedir(d);
    return found;
}

/* Finds or loads model/version; the result holds a reference (release()). On failure the
 * HTTP error is in resp. */
static loaded *acquire(embed_state *st, const char *repo, const char *model, const char *version,
                       tdm_gw_response *resp)
{
    pthread_mutex_lock(&st->mu);
    st->tick++;
    for (int i = 0; i < st->n; i++) {
        loaded *l = st->m[i];
        if (!strcmp(l->model, model) && !strcmp(l->version, version)) {
            l->refs++;
            l->last_used = st->tick;
            pthread_mutex_unlock(&st->mu);
            return l;
        }
    }
    char dir[1300];
    snprintf(dir, sizeof dir, "%s/%s/%s", repo, model, version);
    struct stat s;
    if (stat(dir, &s) != 0 || !S_ISDIR(s.st_mode)) {
        pthread_mutex_unlock(&st->mu);
        tdm_gw_error(resp, 404, "unknown_model", "model \"%s\" has no version \"%s\"", model,
                     version);
        return NULL;
    }
    if (!is_file(dir, "vocab.txt") && !is_file(dir, "tokenizer.json")) {
        pthread_mutex_unlock(&st->mu);
        tdm_gw_error(resp, 400, "not_an_embedding_model",
                     "model \"%s\" version \"%s\" has no tokenizer (vocab.txt or tokenizer.json)",
                     model, version);
        return NULL;
    }
    if (st->n == st->max_models) {
        int victim = -1;
        for (int i = 0; i < st->n; i++)
            if (st->m[i]->refs == 0 &&
                (victim < 0 || st->m[i]->last_used < st->m[victim]->last_used))
                victim = i;
        if (victim < 0) {
            pthread_mutex_unlock(&st->mu);
            tdm_gw_error(resp, 503, "busy",
                         "all %d embedding model slots are in use (embed.max_models)",
                         st->max_models);
            tdm_gw_resp_header(resp, "Retry-After", "1");
            return NULL;
        }
        unload(st->m[victim]);
        st->m[victim] = st->m[--st->n];
    }
    loaded *l = calloc(1, sizeof *l);
    tdm_err err;
    tdm_status rc = l ? TDM_OK : tdm_errf(&err, TDM_ERR_NOMEM, "out of memory");
    if (rc == TDM_OK) {
        tdm_embedder_options opt = {.threads = st->threads};
        rc = tdm_embedder_load(dir, &opt, &l->e, &err);
    }
    if (rc == TDM_OK)
        rc = tdm_tokenizer_load(dir, &l->tok, &err);
    if (rc != TDM_OK) {
        pthread_mutex_unlock(&st->mu);
        if (l) {
            tdm_embedder_free(l->e);
            free(l);
        }
        tdm_gw_error(resp, rc == TDM_ERR_NOMEM ? 503 : 422, "model_load_failed",
                     "model \"%s\" version \"%s\": %s", model, version, err.msg);
        return NULL;
    }
    snprintf(l->model, sizeof l->model, "%s", model);
    snprintf(l->version, sizeof l->version, "%s", version);
    pthread_mutex_init(&l->run_mu, NULL);
    l->refs = 1;
    l->last_used = st->tick;
    st->m[st->n++] = l;
    pthread_mutex_unlock(&st->mu);
    return l;
}

static void release(embed_state *st, loaded *l)
{
    pthread_mutex_lock(&st->mu);
    l->refs--;
    pthread_mutex_unlock(&st->mu);
}

static embed_state *state_or_500(const tdm_gw_request *req, tdm_gw_response *resp)
{
    embed_state *st = req->gw ? tdm_gw_module_state(req->gw, "embed") : NULL;
    if (!st)
        tdm_gw_error(resp, 500, "internal", "the embed module is not loaded");
    return st;
}

/* Splits "name@version" or takes an explicit version; resolves the latest when none. */
static bool resolve_model(const tdm_gw_request *req, const char *spec, const char *version_in,
                          char *model, char *version, tdm_gw_response *resp)
{
    const char *at = strchr(spec, '@');
    size_t mlen = at ? (size_t)(at - spec) : strlen(spec);
    if (mlen > 128) {
        tdm_gw_error(resp, 400, "invalid_name", "model name longer than 128 bytes");
        return false;
    }
    memcpy(model, spec, mlen);
    model[mlen] = 0;
    const char *v = at ? at + 1 : version_in;
    if (!tdm_gw_valid_name(model) || (v && !tdm_gw_valid_name(v))) {
        tdm_gw_error(resp, 400, "invalid_name",
                     "model and version names are 1..128 of [A-Za-z0-9._-], not starting with '.'");
        return false;
    }
    const char *repo = req->gw ? tdm_gw_config_get(req->gw)->model_repo : "";
    if (v) {
        snprintf(version, 136, "%s", v);
    } else if (!latest_version(repo, model, version, 136)) {
        tdm_gw_error(resp, 404, "unknown_model", "no model \"%s\" in the repository", model);
        return false;
    }
    return true;
}

/* Embeds n texts under l into out (n * dim); counts tokens. False with resp filled. */
static bool run_embed(loaded *l, const char *const *texts, int n, float *out, int64_t *tokens,
                      tdm_gw_response *resp)
{
    tdm_err err;
    *tokens = 0;
    int max_len = tdm_embedder_max_len(l->e);
    for (int i = 0; i < n; i++) {
        size_t len = strlen(texts[i]), cap = tdm_tokenizer_encode_bound(l->tok, len), got = 0;
        int32_t *ids = malloc((cap ? cap : 1) * sizeof *ids);
        tdm_status s =
            ids ? tdm_tokenizer_encode(l->tok, texts[i], len, (size_t)max_len, ids, cap, &got, &err)
                : tdm_errf(&err, TDM_ERR_NOMEM, "out of memory");
        free(ids);
        if (s != TDM_OK) {
            tdm_gw_error(resp, tdm_gw_status_http(s), "invalid_input", "input[%d]: %s", i, err.msg);
            return false;
        }
        *tokens += (int64_t)got;
    }
    pthread_mutex_lock(&l->run_mu);
    tdm_status s = tdm_embedder_embed(l->e, texts, n, out, &err);
    pthread_mutex_unlock(&l->run_mu);
    if (s != TDM_OK) {
        tdm_gw_error(resp, s == TDM_ERR_INVALID_ARG ? 400 : 500, "embed_failed", "%s", err.msg);
        return false;
    }
    return true;
}

static void write_vector(tdm_json_buf *b, const float *v, int dim)
{
    tdm_json_buf_raw(b, "[", 1);
    for (int j = 0; j < dim; j++) {
        if (j)
            tdm_json_buf_raw(b, ",", 1);
        tdm_json_buf_f32(b, v[j]);
    }
    tdm_json_buf_raw(b, "]", 1);
}

void tdm_gw_h_embeddings(const tdm_gw_request *req, tdm_gw_response *resp)
{
    embed_state *st = state_or_500(req, resp);
    if (!st)
        return;
    tdm_json_doc *doc = tdm_gw_parse_json_body(req, resp);
    if (!doc)
        return;
    const tdm_json *root = tdm_json_root(doc);
    const tdm_json *mv = tdm_json_get(root, "model"), *in = tdm_json_get(root, "input");
    const tdm_json *vv = tdm_json_get(root, "version"),
                   *fmt = tdm_json_get(root, "encoding_format");
    const char **texts = NULL;
    float *out = NULL;
    loaded *l = NULL;
    char model[136], version[136];
    int n = 0;
    if (!mv || mv->type != TDM_JSON_STRING) {
        tdm_gw_error(resp, 400, "missing_field", "\"model\" (a string) is required");
        goto done;
    }
    if (vv && vv->type != TDM_JSON_STRING) {
        tdm_gw_error(resp, 400, "invalid_field", "\"version\" must be a string");
        goto done;
    }
    if (fmt && (fmt->type != TDM_JSON_STRING || strcmp(fmt->str, "float") != 0)) {
        tdm_gw_error(resp, 400, "invalid_field", "\"encoding_format\" must be \"float\"");
        goto done;
    }
    if (!in || (in->type != TDM_JSON_STRING && in->type != TDM_JSON_ARRAY)) {
        tdm_gw_error(resp, 400, "missing_field",
                     "\"input\" must be a string or an array of strings");
        goto done;
    }
    n = in->type == TDM_JSON_STRING ? 1 : (int)in->len;
    if (in->type == TDM_JSON_ARRAY && (in->len == 0 || in->len > (size_t)st->max_inputs)) {
        tdm_gw_error(resp, 400, "invalid_field", "\"input\" holds %zu texts; 1..%d are accepted",
                     in->len, st->max_inputs);
        goto done;
    }
    texts = malloc((size_t)n * sizeof *texts);
    if (!texts) {
        tdm_gw_error(resp, 503, "out_of_memory", "out of memory");
        goto done;
    }
    for (int i = 0; i < n; i++) {
        const tdm_json *t = in->type == TDM_JSON_STRING ? in : &in->items[i];
        if (t->type != TDM_JSON_STRING || t->len > st->max_text_bytes || strlen(t->str) != t->len) {
            tdm_gw_error(resp, 400, "invalid_field",
                         "input[%d] must be a string of at most %zu bytes without NUL", i,
                         st->max_text_bytes);
            goto done;
        }
        texts[i] = t->str;
    }
    if (!resolve_model(req, mv->str, vv ? vv->str : NULL, model, version, resp))
        goto done;
    l = acquire(st, tdm_gw_config_get(req->gw)->model_repo, model, version, resp);
    if (!l)
        goto done;
    int dim = tdm_embedder_dim(l->e);
    out = malloc((size_t)n * (size_t)dim * sizeof *out);
    int64_t tokens;
    if (!out) {
        tdm_gw_error(resp, 503, "out_of_memory", "out of memory");
        goto done;
    }
    if (!run_embed(l, texts, n, out, &tokens, resp))
        goto done;
    tdm_json_buf *b = &resp->body;
    tdm_json_buf_raw(b, "{\"object\":\"list\",\"data\":[", 25);
    for (int i = 0; i < n; i++) {
        tdm_json_buf_raw(
            b, i ? ",{\"object\":\"embedding\",\"index\":" : "{\"object\":\"embedding\",\"index\":",
            i ? 31 : 30);
        tdm_json_buf_i64(b, i);
        tdm_json_buf_raw(b, ",\"embedding\":", 13);
        write_vector(b, out + (size_t)i * (size_t)dim, dim);
        tdm_json_buf_raw(b, "}", 1);
    }
    tdm_json_buf_raw(b, "],\"model\":", 10);
    tdm_json_buf_string(b, model, strlen(model));
    tdm_json_buf_raw(b, ",\"version\":", 11);
    tdm_json_buf_string(b, version, strlen(version));
    tdm_json_buf_raw(b, ",\"usage\":{\"prompt_tokens\":", 26);
    tdm_json_buf_i64(b, tokens);
    tdm_json_buf_raw(b, ",\"total_tokens\":", 16);
    tdm_json_buf_i64(b, tokens);
    tdm_json_buf_raw(b, "}}\n", 3);
    tdm_gw_resp_json(resp, 200);
done:
    if (l)
        release(st, l);
    free(out);
    free(texts);
    tdm_json_free(doc);
}

static void embed_etag(const char *model, const char *version, const char *text, char *etag)
{
    uint8_t d[TDM_SHA256_LEN];
    char hex[TDM_SHA256_HEX_LEN + 1];
    tdm_respcache_key(model, version, "embed", text, strlen(text), d);
    tdm_sha256_hex(d, hex);
    snprintf(etag, TDM_SHA256_HEX_LEN + 3, "\"%s\"", hex);
}

static bool etag_listed(const char *inm, const char *etag)
{
    if (!inm)
        return false;
    if (!strcmp(inm, "*"))
        return true;
    return strstr(inm, etag) != NULL; /* the tag is quoted hex: no false substring match */
}

void tdm_gw_h_embed_get(const tdm_gw_request *req, tdm_gw_response *resp)
{
    embed_state *st = state_or_500(req, resp);
    if (!st)
        return;
    const char *spec = tdm_gw_query(req, "model"), *v = tdm_gw_query(req, "version");
    const char *text = tdm_gw_query(req, "text");
    if (!spec || !text) {
        tdm_gw_error(resp, 400, "missing_field", "query parameters model and text are required");
        return;
    }
    if (strlen(text) > st->max_text_bytes) {
        tdm_gw_error(resp, 400, "invalid_field", "text longer than %zu bytes", st->max_text_bytes);
        return;
    }
    char model[136], version[136];
    if (!resolve_model(req, spec, v, model, version, resp))
        return;
    bool pinned = v != NULL || strchr(spec, '@') != NULL;
    char etag[TDM_SHA256_HEX_LEN + 3], cc[80];
    embed_etag(model, version, text, etag);
    if (pinned)
        snprintf(cc, sizeof cc, "public, max-age=%.0f, immutable", st->max_age_s);
    else
        snprintf(cc, sizeof cc, "public, max-age=60");
    if (etag_listed(tdm_gw_header(req, "If-None-Match"), etag)) {
        tdm_gw_resp_bytes(resp, 304, "application/json", "", 0);
        tdm_gw_resp_header(resp, "ETag", etag);
        tdm_gw_resp_header(resp, "Cache-Control", cc);
        return;
    }
    /* The gateway's own cache first (key = the ETag's digest). */
    tdm_respcache *rc = req->gw ? tdm_gw_module_state(req->gw, "respcache") : NULL;
    uint8_t key[TDM_RESPCACHE_KEY_LEN];
    tdm_respcache_key(model, version, "embed", text, strlen(text), key);
    tdm_respcache_value cached;
    const char *xcache = "miss";
    if (rc && tdm_respcache_get(rc, key, tdm_respcache_now_ms(), &cached)) {
        tdm_json_buf_raw(&resp->body, cached.data, cached.len);
        tdm_respcache_value_free(&cached);
        xcache = "hit";
    } else {
        loaded *l = acquire(st, tdm_gw_config_get(req->gw)->model_repo, model, version, resp);
        if (!l)
            return;
        int dim = tdm_embedder_dim(l->e);
        float *out = malloc((size_t)dim * sizeof *out);
        int64_t tokens;
        if (!out) {
            release(st, l);
            tdm_gw_error(resp, 503, "out_of_memory", "out of memory");
            return;
        }
        bool ok = run_embed(l, &text, 1, out, &tokens, resp);
        release(st, l);
        if (!ok) {
            free(out);
            return;
        }
        tdm_json_buf *b = &resp->body;
        tdm_json_buf_raw(b, "{\"model\":", 9);
        tdm_json_buf_string(b, model, strlen(model));
        tdm_json_buf_raw(b, ",\"version\":", 11);
        tdm_json_buf_string(b, version, strlen(version));
        tdm_json_buf_raw(b, ",\"dim\":", 7);
        tdm_json_buf_i64(b, dim);
        tdm_json_buf_raw(b, ",\"tokens\":", 10);
        tdm_json_buf_i64(b, tokens);
        tdm_json_buf_raw(b, ",\"embedding\":", 13);
        write_vector(b, out, dim);
        tdm_json_buf_raw(b, "}\n", 2);
        free(out);
        if (rc && !b->failed)
            tdm_respcache_put(rc, key, b->data, b->len, 0, tdm_respcache_now_ms());
    }
    tdm_gw_resp_json(resp, 200);
    tdm_gw_resp_header(resp, "ETag", etag);
    tdm_gw_resp_header(resp, "Cache-Control", cc);
    tdm_gw_resp_header(resp, "X-Cache", xcache);
}

/*
 * The edge agent's configuration: YAML (read into the same tree as JSON by
 * base/yaml.h), checked field by field before anything starts, so that a
 * typo fails at start with the field's path ("models[0].exits[1].threshold:
 * want a number in (0, 1]") rather than later as odd behaviour.
 *
 * Unknown keys are errors too: a misspelt "retention_h" silently keeping the
 * default would be worse than refusing to start. The shape:
 *
 *   device_id: kiosk-17
 *   models:
 *     - name: fmnist            # required
 *       version: "1"            # required
 *       file: cloud.onnx        # required: the local ONNX file
 *       input: input            # default: the model's first input
 *       cut: [t1, t2]           # tensors sent to the cloud; absent: the raw input
 *       cut_id: "3"             # the gateway's name for the cut; default: the names
 *       final_output: logits    # default: the first output
 *       exits_file: heads.json  # fitted exit heads (tandem exits fit)
 *       exits: [{output: exit1, threshold: 0.9, temperature: 1.3}]
 *       finish_on_device: true  # may the device run the rest itself
 *       remote_model: fmnist    # the gateway's model name/version (default: the same)
 *       remote_version: "1"
 *       cloud_only_model: fmnist-cloud  # the gateway's model for raw inputs (cloud-only mode)
 *       deadline_ms: 500
 *       mode: collaborative     # or edge, cloud
 *   compression: {mode: int8, granularity: channel, channel_axis: 1, entropy: true,
 *                 clip: minmax, percentile: 99.9, zero_threshold: 0, topk_fraction: 0}
 *   transport: {endpoints: [...], ca_file, client_cert, client_key, token_file,
 *               tls13_only, health_interval_ms, telemetry_interval_ms, uplink_mbps,
 *               hedge_after_ms (ms or "auto")}
 *   cache: {ttl_s: 300, max_bytes: 16777216, similarity: 0.995}
 *   offline: {queue: queue.db, retention_h: 24, max_bytes: 268435456}
 *   policy: {confidence_threshold, max_rtt_ms, margin}
 *   cost: {per_1k_requests, per_gb, per_cpu_hour}
 *   workers: 4
 *   threads: 1
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edge/agent_internal.h"

typedef struct ctx {
    const char *base_dir;
    tdm_err *err;
} ctx;

static tdm_status bad(ctx *x, const char *path, const char *what)
{
    return tdm_errf(x->err, TDM_ERR_INVALID_ARG, "edge config: %s: %s", path, what);
}

/* Checks that every key of obj is in the NULL-terminated list. */
static tdm_status only_keys(ctx *x, const tdm_json *obj, const char *path, const char *const *keys)
{
    if (obj->type != TDM_JSON_OBJECT)
        return bad(x, path, "want a mapping");
    for (size_t i = 0; i < obj->len; i++) {
        const char *k = obj->items[i].key;
        bool known = false;
        for (int j = 0; keys[j] && !known; j++)
            known = strcmp(k, keys[j]) == 0;
        if (!known)
            return tdm_errf(x->err, TDM_ERR_INVALID_ARG, "edge config: %s: unknown key '%s'", path,
                            k);
    }
    return TDM_OK;
}

static tdm_status get_str(ctx *x, const tdm_json *obj, const char *key, const char *path,
                          bool required, char **out)
{
    const tdm_json *v = tdm_json_get(obj, key);
    char p[256];
    snprintf(p, sizeof p, "%s%s%s", path, path[0] ? "." : "", key);
    if (v == NULL || v->type == TDM_JSON_NULL) {
        if (required)
            return bad(x, p, "is required");
        return TDM_OK;
    }
    char num[64];
    const char *s;
    if (v->type == TDM_JSON_STRING) {
        s = v->str;
        if (strlen(s) != v->len || v->len == 0)
            return bad(x, p, "want a non-empty string without NUL bytes");
    } else if (v->type == TDM_JSON_NUMBER && v->is_int) {
        /* YAML reads `version: 1` as a number; a version is a name, so accept it. */
        snprintf(num, sizeof num, "%lld", (long long)v->integer);
        s = num;
    } else {
        return bad(x, p, "want a string");
    }
    char *d = strdup(s);
    if (d == NULL)
        return tdm_errf(x->err, TDM_ERR_NOMEM, "edge config: out of memory");
    free(*out);
    *out = d;
    return TDM_OK;
}

/* Like get_str, then made absolute against the config's folder. */
static tdm_status get_path(ctx *x, const tdm_json *obj, const char *key, const char *path,
                           bool required, char **out)
{
    tdm_status st = get_str(x, obj, key, path, required, out);
    if (st != TDM_OK || *out == NULL || (*out)[0] == '/' || x->base_dir == NULL)
        return st;
    size_t n = strlen(x->base_dir) + strlen(*out) + 2;
    char *abs = malloc(n);
    if (abs == NULL)
        return tdm_errf(x->err, TDM_ERR_NOMEM, "edge config: out of memory");
    snprintf(abs, n, "%s/%s", x->base_dir, *out);
    free(*out);
    *out = abs;
    return TDM_OK;
}

static tdm_status get_num(ctx *x, const tdm_json *obj, const char *key, const char *path, double lo,
                          double hi, double *out)
{
    const tdm_json *v = tdm_json_get(obj, key);
    if (v == NULL || v->type == TDM_JSON_NULL)
        return TDM_OK;
    char p[256], what[128];
    snprintf(p, sizeof p, "%s%s%s", path, path[0] ? "." : "", key);
    if (v->type != TDM_JSON_NUMBER || !isfinite(v->number) || v->number < lo || v->number > hi) {
        snprintf(what, sizeof what, "want a number in [%g, %g]", lo, hi);
        return bad(x, p, what);
    }
    *out = v->number;
    return TDM_OK;
}

static tdm_status get_bool(ctx *x, const tdm_json *obj, const char *key, const char *path,
                           bool *out)
{
    const tdm_json *v = tdm_json_get(obj, key);
    if (v == NULL || v->type == TDM_JSON_NULL)
        return TDM_OK;
    if (v->type != TDM_JSON_BOOL) {
        char p[256];
        snprintf(p, sizeof p, "%s%s%s", path, path[0] ? "." : "", key);
        return bad(x, p, "want true or false");
    }
    *out = v->boolean;
    return TDM_OK;
}

/* A list of strings (or one string) into out[0..max). */
static tdm_status get_str_list(ctx *x, const tdm_json *obj, const char *key, const char *path,
                               char **out, int max, int *n)
{
    const tdm_json *v = tdm_json_get(obj, key);
    char p[256];
    snprintf(p, sizeof p, "%s.%s", path, key);
    *n = 0;
    if (v == NULL || v->type == TDM_JSON_NULL)
        return TDM_OK;
    const tdm_json *items = v;
    size_t count = 1;
    if (v->type == TDM_JSON_ARRAY) {
        items = v->items;
        count = v->len;
    }
    if (count > (size_t)max) {
        char what[64];
        snprintf(what, sizeof what, "at most %d entries", max);
        return bad(x, p, what);
    }
    for (size_t i = 0; i < count; i++) {
        if (items[i].type != TDM_JSON_STRING || items[i].len == 0)
            return bad(x, p, "want a list of tensor names");
        out[i] = strdup(items[i].str);
        if (out[i] == NULL)
            return tdm_errf(x->err, TDM_ERR_NOMEM, "edge config: out of memory");
        *n = (int)i + 1;
    }
    return TDM_OK;
}

#define TRY(e)                \
    do {                      \
        tdm_status st_ = (e); \
        if (st_ != TDM_OK)    \
            return st_;       \
    } while (0)

static tdm_status parse_model(ctx *x, const tdm_json *m, int idx, tdm_edge_model_cfg *mc)
{
    char path[64];
    snprintf(path, sizeof path, "models[%d]", idx);
    static const char *const keys[] = {"name",
                                       "version",
                                       "file",
                                       "input",
                                       "cut",
                                       "cut_id",
                                       "final_output",
                                       "exits_file",
                                       "exits",
                                       "finish_on_device",
                                       "remote_model",
                                       "remote_version",
                                       "cloud_only_model",
                                       "cloud_only_version",
                                       "deadline_ms",
                                       "mode",
                                       NULL};
    TRY(only_keys(x, m, path, keys));
    TRY(get_str(x, m, "name", path, true, &mc->name));
    TRY(get_str(x, m, "version", path, true, &mc->version));
    TRY(get_path(x, m, "file", path, true, &mc->file));
    TRY(get_str(x, m, "input", path, false, &mc->input));
    TRY(get_str_list(x, m, "cut", path, mc->cut, TDM_EDGE_MAX_CUT, &mc->n_cut));
    TRY(get_str(x, m, "cut_id", path, false, &mc->cut_id));
    TRY(get_str(x, m, "final_output", path, false, &mc->final_output));
    TRY(get_path(x, m, "exits_file", path, false, &mc->exits_file));
    TRY(get_str(x, m, "remote_model", path, false, &mc->remote_model));
    TRY(get_str(x, m, "remote_version", path, false, &mc->remote_version));
    TRY(get_str(x, m, "cloud_only_model", path, false, &mc->cloud_only_model));
    TRY(get_str(x, m, "cloud_only_version", path, false, &mc->cloud_only_version));
    mc->finish_on_device = true;
    TRY(get_bool(x, m, "finish_on_device", path, &mc->finish_on_device));
    mc->deadline_ms = 1000;
    TRY(get_num(x, m, "deadline_ms", path, 1, 3.6e6, &mc->deadline_ms));
    char *mode = NULL;
    TRY(get_str(x, m, "mode", path, false, &mode));
    mc->mode = TDM_EDGE_MODE_COLLABORATIVE;
    if (mode) {
        if (strcmp(mode, "collaborative") == 0)
            mc->mode = TDM_EDGE_MODE_COLLABORATIVE;
        else if (strcmp(mode, "edge") == 0)
            mc->mode = TDM_EDGE_MODE_EDGE_ONLY;
        else if (strcmp(mode, "cloud") == 0)
            mc->mode = TDM_EDGE_MODE_CLOUD_ONLY;
        else {
            free(mode);
            snprintf(path + strlen(path), sizeof path - strlen(path), ".mode");
            return bad(x, path, "want collaborative, edge or cloud");
        }
        free(mode);
    }
    const tdm_json *ex = tdm_json_get(m, "exits");
    if (ex && ex->type != TDM_JSON_NULL) {
        if (ex->type != TDM_JSON_ARRAY || ex->len > TDM_EDGE_MAX_EXITS)
            return bad(x, path, "exits: want a list of at most 8 {output, threshold, temperature}");
        for (size_t i = 0; i < ex->len; i++) {
            char ep[96];
            snprintf(ep, sizeof ep, "%s.exits[%zu]", path, i);
            static const char *const ekeys[] = {"output", "threshold", "temperature", NULL};
            TRY(only_keys(x, &ex->items[i], ep, ekeys));
            tdm_edge_exit *e = &mc->exits[i];
            mc->n_exits = (int)i + 1;
            TRY(get_str(x, &ex->items[i], "output", ep, true, &e->tensor));
            e->threshold = 0.9;
            e->temperature = 1.0;
            TRY(get_num(x, &ex->items[i], "threshold", ep, 0, 1.0001, &e->threshold));
            TRY(get_num(x, &ex->items[i], "temperature", ep, 1e-3, 1e3, &e->temperature));
        }
    }
    if (mc->n_exits > 0 && mc->exits_file)
        return bad(x, path, "give exits (graph outputs) or exits_file (fitted heads), not both");
    return TDM_OK;
}

static tdm_status parse_codec(ctx *x, const tdm_json *c, tdm_codec_params *p)
{
    tdm_codec_params_default(p, TDM_CODEC_MODE_INT8);
    if (c == NULL || c->type == TDM_JSON_NULL)
        return TDM_OK;
    static const char *const keys[] = {
        "mode",           "granularity",   "channel_axis",  "clip",    "percentile",
        "zero_threshold", "zero_fraction", "topk_fraction", "entropy", NULL};
    TRY(only_keys(x, c, "compression", keys));
    char *s = NULL;
    TRY(get_str(x, c, "mode", "compression", false, &s));
    if (s) {
        tdm_codec_mode m;
        bool ok = tdm_codec_mode_parse(s, &m);
        free(s);
        if (!ok)
            return bad(x, "compression.mode", "want lossless, f16, int8 or int4");
        tdm_codec_params_default(p, m);
    }
    s = NULL;
    TRY(get_str(x, c, "granularity", "compression", false, &s));
    if (s) {
        bool ch = strcmp(s, "channel") == 0, t = strcmp(s, "tensor") == 0;
        free(s);
        if (!ch && !t)
            return bad(x, "compression.granularity", "want tensor or channel");
        p->granularity = ch ? TDM_CODEC_GRANULARITY_CHANNEL : TDM_CODEC_GRANULARITY_TENSOR;
        if (ch)
            p->channel_axis = 1;
    }
    double v = p->channel_axis;
    TRY(get_num(x, c, "channel_axis", "compression", -8, 7, &v));
    p->channel_axis = (int32_t)v;
    s = NULL;
    TRY(get_str(x, c, "clip", "compression", false, &s));
    if (s) {
        bool pc = strcmp(s, "percentile") == 0, mm = strcmp(s, "minmax") == 0;
        free(s);
        if (!pc && !mm)
            return bad(x, "compression.clip", "want minmax or percentile");
        p->clip = pc ? TDM_CODEC_CLIP_PERCENTILE : TDM_CODEC_CLIP_MINMAX;
    }
    v = p->percentile;
    TRY(get_num(x, c, "percentile", "compression", 50, 100, &v));
    p->percentile = (float)v;
    v = p->zero_threshold;
    TRY(get_num(x, c, "zero_threshold", "compression", 0, 1e30, &v));
    p->zero_threshold = (float)v;
    v = p->zero_fraction;
    TRY(get_num(x, c, "zero_fraction", "compression", 0, 0.999, &v));
    p->zero_fraction = (float)v;
    v = p->topk_fraction;
    TRY(get_num(x, c, "topk_fraction", "compression", 0, 1, &v));
    p->topk_fraction = (float)v;
    TRY(get_bool(x, c, "entropy", "compression", &p->entropy));
    return TDM_OK;
}

static tdm_status parse_all(ctx *x, const tdm_json *root, tdm_edge_config *c)
{
    static const char *const keys[] = {"device_id", "models",  "compression", "transport",
                                       "cache",     "offline", "policy",      "cost",
                                       "workers",   "threads", NULL};
    TRY(only_keys(x, root, "(top level)", keys));
    TRY(get_str(x, root, "device_id", "", false, &c->device_id));
    if (c->device_id == NULL && (c->device_id = strdup("edge")) == NULL)
        return tdm_errf(x->err, TDM_ERR_NOMEM, "edge config: out of memory");
    /* It becomes a metrics label and part of request ids: keep it plain. */
    if (strlen(c->device_id) > 48 ||
        strspn(c->device_id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") !=
            strlen(c->device_id))
        return bad(x, "device_id", "want 1 to 48 of A-Z a-z 0-9 _ . -");
    const tdm_json *models = tdm_json_get(root, "models");
    if (models == NULL || models->type != TDM_JSON_ARRAY || models->len == 0 ||
        models->len > TDM_EDGE_MAX_MODELS)
        return bad(x, "models", "want a list of 1 to 8 models");
    for (size_t i = 0; i < models->len; i++) {
        c->n_models = (int)i + 1;
        TRY(parse_model(x, &models->items[i], (int)i, &c->models[i]));
        for (size_t j = 0; j < i; j++)
            if (strcmp(c->models[j].name, c->models[i].name) == 0)
                return bad(x, "models", "two models have the same name");
    }
    TRY(parse_codec(x, tdm_json_get(root, "compression"), &c->codec));

    const tdm_json *t = tdm_json_get(root, "transport");
    c->health_interval_ms = 1000;
    if (t && t->type != TDM_JSON_NULL) {
        static const char *const tkeys[] = {"endpoints",
                                            "ca_file",
                                            "client_cert",
                                            "client_key",
                                            "token_file",
                                            "tls13_only",
                                            "health_interval_ms",
                                            "telemetry_interval_ms",
                                            "uplink_mbps",
                                            "hedge_after_ms",
                                            NULL};
        TRY(only_keys(x, t, "transport", tkeys));
        TRY(get_str_list(x, t, "endpoints", "transport", c->endpoints, 8, &c->n_endpoints));
        for (int i = 0; i < c->n_endpoints; i++)
            if (strncmp(c->endpoints[i], "http://", 7) && strncmp(c->endpoints[i], "https://", 8))
                return bad(x, "transport.endpoints", "want http:// or https:// URLs");
        TRY(get_path(x, t, "ca_file", "transport", false, &c->ca_file));
        TRY(get_path(x, t, "client_cert", "transport", false, &c->client_cert));
        TRY(get_path(x, t, "client_key", "transport", false, &c->client_key));
        TRY(get_path(x, t, "token_file", "transport", false, &c->token_file));
        TRY(get_bool(x, t, "tls13_only", "transport", &c->tls13_only));
        TRY(get_num(x, t, "health_interval_ms", "transport", 10, 3.6e6, &c->health_interval_ms));
        TRY(get_num(x, t, "telemetry_interval_ms", "transport", 0, 3.6e6,
                    &c->telemetry_interval_ms));
        TRY(get_num(x, t, "uplink_mbps", "transport", 0, 1e6, &c->uplink_mbps));
        const tdm_json *hg = tdm_json_get(t, "hedge_after_ms");
        if (hg && hg->type == TDM_JSON_STRING) {
            if (strcmp(hg->str, "auto") != 0)
                return bad(x, "transport.hedge_after_ms", "want a number of ms or \"auto\"");
            c->hedge_auto = true;
        } else {
            TRY(get_num(x, t, "hedge_after_ms", "transport", 0, 3.6e6, &c->hedge_after_ms));
        }
    }
    for (int i = 0; i < c->n_models; i++)
        if (c->models[i].mode != TDM_EDGE_MODE_EDGE_ONLY && c->n_endpoints == 0)
            return tdm_errf(
                x->err, TDM_ERR_INVALID_ARG,
                "edge config: models[%d] may use the cloud (mode %s) but "
                "transport.endpoints is empty",
                i, c->models[i].mode == TDM_EDGE_MODE_CLOUD_ONLY ? "cloud" : "collaborative");

    const tdm_json *ca = tdm_json_get(root, "cache");
    c->cache_max_bytes = (size_t)16 << 20;
    if (ca && ca->type != TDM_JSON_NULL) {
        static const char *const ckeys[] = {"ttl_s", "max_bytes", "similarity", NULL};
        TRY(only_keys(x, ca, "cache", ckeys));
        TRY(get_num(x, ca, "ttl_s", "cache", 0, 3.6e7, &c->cache_ttl_s));
        double mb = (double)c->cache_max_bytes;
        TRY(get_num(x, ca, "max_bytes", "cache", 1024, 1e12, &mb));
        c->cache_max_bytes = (size_t)mb;
        TRY(get_num(x, ca, "similarity", "cache", 0, 1, &c->cache_similarity));
    }

    const tdm_json *off = tdm_json_get(root, "offline");
    c->retention_s = 24 * 3600.0;
    c->queue_max_bytes = (uint64_t)256 << 20;
    if (off && off->type != TDM_JSON_NULL) {
        static const char *const okeys[] = {"queue", "retention_h", "max_bytes", NULL};
        TRY(only_keys(x, off, "offline", okeys));
        TRY(get_path(x, off, "queue", "offline", true, &c->queue_path));
        double h = c->retention_s / 3600.0;
        TRY(get_num(x, off, "retention_h", "offline", 1e-4, 24 * 365, &h));
        c->retention_s = h * 3600.0;
        double mb = (double)c->queue_max_bytes;
        TRY(get_num(x, off, "max_bytes", "offline", 1024, 1e13, &mb));
        c->queue_max_bytes = (uint64_t)mb;
    }

    tdm_policy_config_default(&c->policy);
    const tdm_json *po = tdm_json_get(root, "policy");
    if (po && po->type != TDM_JSON_NULL) {
        static const char *const pkeys[] = {"confidence_threshold", "max_rtt_ms", "margin", NULL};
        TRY(only_keys(x, po, "policy", pkeys));
        TRY(get_num(x, po, "confidence_threshold", "policy", 0, 1,
                    &c->policy.confidence_threshold));
        TRY(get_num(x, po, "max_rtt_ms", "policy", 0, 3.6e6, &c->policy.max_rtt_ms));
        TRY(get_num(x, po, "margin", "policy", 0.01, 100, &c->policy.margin));
    }
    const tdm_json *co = tdm_json_get(root, "cost");
    if (co && co->type != TDM_JSON_NULL) {
        static const char *const kkeys[] = {"per_1k_requests", "per_gb", "per_cpu_hour", NULL};
        TRY(only_keys(x, co, "cost", kkeys));
        TRY(get_num(x, co, "per_1k_requests", "cost", 0, 1e9, &c->cost_per_1k_requests));
        TRY(get_num(x, co, "per_gb", "cost", 0, 1e9, &c->cost_per_gb));
        TRY(get_num(x, co, "per_cpu_hour", "cost", 0, 1e9, &c->cost_per_cpu_hour));
    }
    double w = 4, th = 1;
    TRY(get_num(x, root, "workers", "", 1, 256, &w));
    TRY(get_num(x, root, "threads", "", 1, 256, &th));
    c->workers = (int)w;
    c->threads = (int)th;
    return TDM_OK;
}

tdm_status tdm_edge_config_parse(const tdm_json *root, const char *base_dir, tdm_edge_config *c,
                                 tdm_err *err)
{
    memset(c, 0, sizeof *c);
    ctx x = {base_dir, err};
    if (root == NULL || root->type != TDM_JSON_OBJECT)
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "edge config: want a mapping at the top level");
    tdm_status st = parse_all(&x, root, c);
    if (st != TDM_OK)
        tdm_edge_config_release(c);
    return st;
}

void tdm_edge_config_release(tdm_edge_config *c)
{
    free(c->device_id);
    for (int i = 0; i < TDM_EDGE_MAX_MODELS; i++) {
        tdm_edge_model_cfg *m = &c->models[i];
        free(m->name);
        free(m->version);
        free(m->file);
        free(m->input);
        for (int k = 0; k < TDM_EDGE_MAX_CUT; k++)
            free(m->cut[k]);
        free(m->cut_id);
        free(m->final_output);
        free(m->exits_file);
        for (int k = 0; k < TDM_EDGE_MAX_EXITS; k++)
            free(m->exits[k].tensor);
        free(m->remote_model);
        free(m->remote_version);
        free(m->cloud_only_model);
        free(m->cloud_only_version);
    }
    for (int i = 0; i < 8; i++)
        free(c->endpoints[i]);
    free(c->ca_file);
    free(c->client_cert);
    free(c->client_key);
    free(c->token_file);
    free(c->queue_path);
    memset(c, 0, sizeof *c);
}

/*
 * POST /v1/cache/get and /v1/cache/put: the gateway's response cache
 * (respcache.c) offered to clients, so that edge devices can share results by
 * content hash. Also the "respcache" module itself and small helpers that the
 * other extra handlers share.
 *
 * A key is either given ("key": 64 hex digits, e.g. the SHA-256 a device
 * computed itself) or derived exactly as the infer path derives it, from
 * "model", "version", "cut" and "input" (the input's bytes as a string), so a
 * device can ask whether the cloud already holds the answer for a request.
 * Values are any JSON; they are stored re-serialised (compact), and come back
 * verbatim inside {"hit": true, "value": ...}. A miss is not an error: 200
 * with {"hit": false}, so clients need no special case for a 404.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/sha256.h"
#include "cloud/extras.h"
#include "collab/respcache.h"

#define MAX_TTL_S (30.0 * 24 * 3600)

/* ---- shared helpers --------------------------------------------------------------------- */

tdm_status tdm_gw_cfg_number(const tdm_json *cfg, const char *section, const char *key, double lo,
                             double hi, double *out, tdm_err *err)
{
    const tdm_json *sec = cfg ? tdm_json_get(cfg, section) : NULL;
    const tdm_json *v = sec ? tdm_json_get(sec, key) : NULL;
    if (!v || v->type == TDM_JSON_NULL)
        return TDM_OK;
    double d;
    if (v->type == TDM_JSON_NUMBER) {
        d = v->number;
    } else if (v->type == TDM_JSON_STRING) {
        char *end;
        d = strtod(v->str, &end);
        if (end == v->str || *end)
            return tdm_errf(err, TDM_ERR_INVALID_ARG, "%s.%s: \"%s\" is not a number", section, key,
                            v->str);
    } else {
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "%s.%s must be a number, not %s", section, key,
                        tdm_json_type_name(v->type));
    }
    if (!isfinite(d) || d < lo || d > hi)
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "%s.%s = %g is outside [%g, %g]", section, key, d,
                        lo, hi);
    *out = d;
    return TDM_OK;
}

void tdm_gw_json_write(tdm_json_buf *b, const tdm_json *v)
{
    switch (v->type) {
    case TDM_JSON_NULL: tdm_json_buf_raw(b, "null", 4); break;
    case TDM_JSON_BOOL:
        if (v->boolean)
            tdm_json_buf_raw(b, "true", 4);
        else
            tdm_json_buf_raw(b, "false", 5);
        break;
    case TDM_JSON_NUMBER:
        if (v->is_int)
            tdm_json_buf_i64(b, v->integer);
        else
            tdm_json_buf_f64(b, v->number);
        break;
    case TDM_JSON_STRING: tdm_json_buf_string(b, v->str, v->len); break;
    case TDM_JSON_ARRAY:
        tdm_json_buf_raw(b, "[", 1);
        for (size_t i = 0; i < v->len; i++) {
            if (i)
                tdm_json_buf_raw(b, ",", 1);
            tdm_gw_json_write(b, &v->items[i]);
        }
        tdm_json_buf_raw(b, "]", 1);
        break;
    case TDM_JSON_OBJECT:
        tdm_json_buf_raw(b, "{", 1);
        for (size_t i = 0; i < v->len; i++) {
            if (i)
                tdm_json_buf_raw(b, ",", 1);
            tdm_json_buf_string(b, v->items[i].key, v->items[i].key_len);
            tdm_json_buf_raw(b, ":", 1);
            tdm_gw_json_write(b, &v->items[i]);
        }
        tdm_json_buf_raw(b, "}", 1);
        break;
    }
}

bool tdm_gw_valid_name(const char *s)
{
    size_t n = 0;
    if (!s || s[0] == '.' || s[0] == 0)
        return false;
    for (; s[n]; n++) {
        char c = s[n];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return n <= 128;
}

/* ---- the module ------------------------------------------------------------------------- */

tdm_status tdm_gw_respcache_init(tdm_gw *gw, const tdm_json *cfg, void **state, tdm_err *err)
{
    (void)gw;
    *state = NULL;
    double max_bytes = 64.0 * 1024 * 1024, ttl_s = 300;
    tdm_status s;
    if ((s = tdm_gw_cfg_number(cfg, "cache", "max_bytes", 0, 1e12, &max_bytes, err)) ||
        (s = tdm_gw_cfg_number(cfg, "cache", "ttl_s", 0.001, MAX_TTL_S, &ttl_s, err)))
        return s;
    if (max_bytes == 0)
        return TDM_OK; /* disabled */
    tdm_respcache *c;
    s = tdm_respcache_create((size_t)max_bytes, (uint64_t)(ttl_s * 1000), &c, err);
    if (s == TDM_OK)
        *state = c;
    return s;
}

void tdm_gw_respcache_free(void *state)
{
    tdm_respcache_free(state);
}

/* ---- handlers ----------------------------------------------------------------------------- */

static bool hex_key(const char *s, size_t len, uint8_t key[TDM_RESPCACHE_KEY_LEN])
{
    if (len != 2 * TDM_RESPCACHE_KEY_LEN)
        return false;
    for (size_t i = 0; i < TDM_RESPCACHE_KEY_LEN; i++) {
        int v = 0;
        for (int j = 0; j < 2; j++) {
            char c = s[2 * i + (size_t)j];
            int d = c >= '0' && c <= '9'   ? c - '0'
                    : c >= 'a' && c <= 'f' ? c - 'a' + 10
                    : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                           : -1;
            if (d < 0)
                return false;
            v = v * 16 + d;
        }
        key[i] = (uint8_t)v;
    }
    return true;
}

/* The key of a cache request; false with a 400 in resp when neither form is usable. */
static bool request_key(const tdm_json *root, uint8_t key[TDM_RESPCACHE_KEY_LEN],
                        tdm_gw_response *resp)
{
    const tdm_json *k = tdm_json_get(root, "key");
    if (k) {
        if (k->type != TDM_JSON_STRING || !hex_key(k->str, k->len, key)) {
            tdm_gw_error(resp, 400, "invalid_field", "\"key\" must be 64 hex digits (a SHA-256)");
            return false;
        }
        return true;
    }
    const char *f[4] = {"model", "version", "cut", "input"};
    const tdm_json *v[4];
    for (int i = 0; i < 4; i++) {
        v[i] = tdm_json_get(root, f[i]);
        if (v[i] && v[i]->type != TDM_JSON_STRING) {
            tdm_gw_error(resp, 400, "invalid_field", "\"%s\" must be a string, not %s", f[i],
                         tdm_json_type_name(v[i]->type));
            return false;
        }
    }
    if (!v[0] || !v[3]) {
        tdm_gw_error(resp, 400, "missing_field",
                     "give \"key\" (64 hex digits) or \"model\" and \"input\" (with optional "
                     "\"version\" and \"cut\")");
        return false;
    }
    tdm_respcache_key(v[0]->str, v[1] ? v[1]->str : "", v[2] ? v[2]->str : "", v[3]->str, v[3]->len,
                      key);
    return true;
}

static tdm_respcache *cache_or_503(const tdm_gw_request *req, tdm_gw_response *resp)
{
    tdm_respcache *c = req->gw ? tdm_gw_module_state(req->gw, "respcache") : NULL;
    if (!c)
        tdm_gw_error(resp, 503, "cache_disabled", "the response cache is off (cache.max_bytes 0)");
    return c;
}

static void put_key_hex(tdm_json_buf *b, const uint8_t key[TDM_RESPCACHE_KEY_LEN])
{
    char hex[TDM_SHA256_HEX_LEN + 1];
    tdm_sha256_hex(key, hex);
    tdm_json_buf_raw(b, "\"key\":\"", 7);
    tdm_json_buf_raw(b, hex, TDM_SHA256_HEX_LEN);
    tdm_json_buf_raw(b, "\"", 1);
}

void tdm_gw_h_cache_get(const tdm_gw_request *req, tdm_gw_response *resp)
{
    tdm_respcache *c = cache_or_503(req, resp);
    if (!c)
        return;
    tdm_json_doc *doc = tdm_gw_parse_json_body(req, resp);
    if (!doc)
        return;
    uint8_t key[TDM_RESPCACHE_KEY_LEN];
    bool ok = request_key(tdm_json_root(doc), key, resp);
    tdm_json_free(doc);
    if (!ok)
        return;
    uint64_t now = tdm_respcache_now_ms();
    tdm_respcache_value v;
    tdm_json_buf *b = &resp->body;
    if (tdm_respcache_get(c, key, now, &v)) {
        tdm_json_buf_raw(b, "{\"hit\":true,", 12);
        put_key_hex(b, key);
        tdm_json_buf_raw(b, ",\"ttl_remaining_s\":", 19);
        tdm_json_buf_f64(b, (double)(v.expires_ms - now) / 1000.0);
        tdm_json_buf_raw(b, ",\"value\":", 9);
        tdm_json_buf_raw(b, v.data, v.len);
        tdm_json_buf_raw(b, "}\n", 2);
        tdm_respcache_value_free(&v);
    } else {
        tdm_json_buf_raw(b, "{\"hit\":false,", 13);
        put_key_hex(b, key);
        tdm_json_buf_raw(b, "}\n", 2);
    }
    tdm_gw_resp_json(resp, 200);
}

void tdm_gw_h_cache_put(const tdm_gw_request *req, tdm_gw_response *resp)
{
    tdm_respcache *c = cache_or_503(req, resp);
    if (!c)
        return;
    tdm_json_doc *doc = tdm_gw_parse_json_body(req, resp);
    if (!doc)
        return;
    const tdm_json *root = tdm_json_root(doc);
    uint8_t key[TDM_RESPCACHE_KEY_LEN];
    if (!request_key(root, key, resp)) {
        tdm_json_free(doc);
        return;
    }
    const tdm_json *value = tdm_json_get(root, "value");
    if (!value) {
        tdm_json_free(doc);
        tdm_gw_error(resp, 400, "missing_field", "\"value\" (any JSON) is required");
        return;
    }
    double ttl_s = 0;
    const tdm_json *t = tdm_json_get(root, "ttl_s");
    if (t) {
        if (t->type != TDM_JSON_NUMBER || !isfinite(t->number) || t->number <= 0 ||
            t->number > MAX_TTL_S) {
            tdm_json_free(doc);
            tdm_gw_error(resp, 400, "invalid_field", "\"ttl_s\" must be a number in (0, %g]",
                         MAX_TTL_S);
            return;
        }
        ttl_s = t->number;
    }
    tdm_json_buf vb = {0};
    tdm_gw_json_write(&vb, value);
    tdm_json_free(doc);
    if (vb.failed) {
        tdm_json_buf_free(&vb);
        tdm_gw_error(resp, 500, "out_of_memory", "out of memory");
        return;
    }
    uint64_t ttl_ms = ttl_s > 0 ? (uint64_t)ceil(ttl_s * 1000.0) : 0;
    bool stored = tdm_respcache_put(c, key, vb.data, vb.len, ttl_ms, tdm_respcache_now_ms());
    tdm_json_buf_free(&vb);
    tdm_json_buf *b = &resp->body;
    if (stored)
        tdm_json_buf_raw(b, "{\"stored\":true,", 15);
    else
        tdm_json_buf_raw(b, "{\"stored\":false,\"reason\":\"larger than the cache\",", 49);
    put_key_hex(b, key);
    tdm_json_buf_raw(b, "}\n", 2);
    tdm_gw_resp_json(resp, stored ? 200 : 413);
}

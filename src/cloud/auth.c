/*
 * Gateway authentication (design in auth.h): API key digests, a JWKS turned
 * into PEM keys by kid, RS256 tokens checked header-first, then signature
 * (libjwt), then claims.
 *
 * The JWKS members n and e become a PEM "PUBLIC KEY" by writing the DER of a
 * SubjectPublicKeyInfo by hand: it is two nested SEQUENCEs, an OID, a NULL, a
 * BIT STRING and two INTEGERs, so a few lines replace a dependency on the
 * OpenSSL key-building API (whose RSA calls changed between 1.1 and 3.0).
 */
#include "cloud/auth.h"

#include <assert.h>
#include <errno.h>
#include <gnutls/gnutls.h>
#include <jwt.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "base/alloc.h"
#include "base/sha256.h"

#define MAX_TOKEN_LEN 16384
#define MAX_KEYFILE_BYTES (4u << 20)

typedef struct jwk {
    char kid[128];
    char *pem;
    size_t pem_len;
} jwk;

typedef struct api_key_entry {
    uint8_t digest[TDM_SHA256_LEN];
    tdm_gw_role role;
    char name[128];
} api_key_entry;

/* An immutable set of keys; replaced as a whole on reload. */
typedef struct keyset {
    jwk *jwks;
    int n_jwks;
    api_key_entry *keys;
    int n_keys;
} keyset;

struct tdm_auth {
    pthread_rwlock_t lock; /* guards ks */
    keyset *ks;
    /* configuration */
    bool use_api_keys, use_jwt;
    char api_keys_file[1024]; /* "" when only inline keys */
    api_key_entry *inline_keys;
    int n_inline_keys;
    char jwks_file[1024];
    char issuer[256];   /* "" = not checked */
    char audience[256]; /* "" = not checked */
    int64_t leeway_s;
    /* re-reading changed files, at most once a second */
    pthread_mutex_t reload_mu;
    int64_t last_kid_reload_s; /* forced re-read for an unknown kid */
    int64_t last_check_s;      /* stat of both files */
    struct timespec keys_mtime, jwks_mtime;
    off_t keys_size, jwks_size;
};

/* ---- roles ---------------------------------------------------------------------------- */

bool tdm_auth_role_parse(const char *s, tdm_gw_role *out)
{
    if (!strcmp(s, "observer") || !strcmp(s, "infer"))
        *out = TDM_GW_ROLE_OBSERVER;
    else if (!strcmp(s, "operator"))
        *out = TDM_GW_ROLE_OPERATOR;
    else if (!strcmp(s, "admin"))
        *out = TDM_GW_ROLE_ADMIN;
    else
        return false;
    return true;
}

const char *tdm_auth_role_name(tdm_gw_role r)
{
    switch (r) {
    case TDM_GW_ROLE_PUBLIC: return "public";
    case TDM_GW_ROLE_OBSERVER: return "observer";
    case TDM_GW_ROLE_OPERATOR: return "operator";
    case TDM_GW_ROLE_ADMIN: return "admin";
    }
    return "unknown";
}

/* ---- base64 --------------------------------------------------------------------------- */

static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

tdm_status tdm_b64url_decode(const char *s, size_t len, bool allow_pad, unsigned char **out,
                             size_t *out_len, tdm_err *err)
{
    *out = NULL;
    *out_len = 0;
    if (allow_pad)
        while (len > 0 && s[len - 1] == '=')
            len--;
    if (len % 4 == 1)
        return tdm_errf(err, TDM_ERR_PARSE, "base64url: %zu characters is not a valid length", len);
    unsigned char *buf = malloc(len / 4 * 3 + 3 + 1);
    if (!buf)
        return tdm_errf(err, TDM_ERR_NOMEM, "base64url: out of memory");
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64url_value((unsigned char)s[i]);
        if (v < 0) {
            free(buf);
            return tdm_errf(err, TDM_ERR_PARSE, "base64url: invalid character 0x%02x at %zu",
                            (unsigned char)s[i], i);
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[o++] = (unsigned char)(acc >> bits);
        }
    }
    /* Leftover bits must be zero (canonical encoding). */
    if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) {
        free(buf);
        return tdm_errf(err, TDM_ERR_PARSE, "base64url: non-canonical final character");
    }
    buf[o] = 0;
    *out = buf;
    *out_len = o;
    return TDM_OK;
}

static const char k_b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Standard base64 with '=' padding and a newline every 64 characters (PEM body). */
static size_t b64_pem_body(const unsigned char *in, size_t len, char *out)
{
    size_t o = 0, col = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < len)
            v |= in[i + 2];
        out[o++] = k_b64[(v >> 18) & 63];
        out[o++] = k_b64[(v >> 12) & 63];
        out[o++] = i + 1 < len ? k_b64[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < len ? k_b64[v & 63] : '=';
        col += 4;
        if (col == 64) {
            out[o++] = '\n';
            col = 0;
        }
    }
    if (col)
        out[o++] = '\n';
    return o;
}

/* ---- JWK -> PEM ----------------------------------------------------------------------- */

typedef struct der {
    unsigned char *p;
    size_t len, cap;
} der;

static size_t der_len_size(size_t n)
{
    return n < 128 ? 1 : n < 256 ? 2 : n < 65536 ? 3 : 4;
}

static void der_put_len(unsigned char **w, size_t n)
{
    unsigned char *p = *w;
    if (n < 128) {
        *p++ = (unsigned char)n;
    } else if (n < 256) {
        *p++ = 0x81;
        *p++ = (unsigned char)n;
    } else if (n < 65536) {
        *p++ = 0x82;
        *p++ = (unsigned char)(n >> 8);
        *p++ = (unsigned char)n;
    } else {
        *p++ = 0x83;
        *p++ = (unsigned char)(n >> 16);
        *p++ = (unsigned char)(n >> 8);
        *p++ = (unsigned char)n;
    }
    *w = p;
}

/* Strips leading zero bytes; returns the INTEGER content length (with a 0x00 when the high
 * bit is set). */
static size_t int_content_len(const unsigned char **b, size_t *len)
{
    while (*len > 1 && (*b)[0] == 0) {
        (*b)++;
        (*len)--;
    }
    return *len + ((*b)[0] & 0x80 ? 1 : 0);
}

static void der_put_int(unsigned char **w, const unsigned char *b, size_t len, size_t content)
{
    unsigned char *p = *w;
    *p++ = 0x02;
    der_put_len(&p, content);
    if (content > len)
        *p++ = 0;
    memcpy(p, b, len);
    *w = p + len;
}

tdm_status tdm_jwk_rsa_to_pem(const char *n_b64url, const char *e_b64url, char **pem, tdm_err *err)
{
    *pem = NULL;
    unsigned char *n = NULL, *e = NULL;
    size_t n_len, e_len;
    tdm_status s = tdm_b64url_decode(n_b64url, strlen(n_b64url), true, &n, &n_len, err);
    if (s != TDM_OK) {
        tdm_err_prefix(err, "JWK member \"n\"");
        return s;
    }
    s = tdm_b64url_decode(e_b64url, strlen(e_b64url), true, &e, &e_len, err);
    if (s != TDM_OK) {
        free(n);
        tdm_err_prefix(err, "JWK member \"e\"");
        return s;
    }
    const unsigned char *nb = n, *eb = e;
    size_t nl = n_len, el = e_len;
    if (nl == 0 || el == 0) {
        free(n);
        free(e);
        return tdm_errf(err, TDM_ERR_PARSE, "JWK: empty \"n\" or \"e\"");
    }
    size_t nc = int_content_len(&nb, &nl), ec = int_content_len(&eb, &el);
    if (nl < 128 || nl > 2048 || el > 8 || (el == 1 && eb[0] < 3)) {
        free(n);
        free(e);
        return tdm_errf(err, TDM_ERR_UNSUPPORTED,
                        "JWK: RSA modulus of %zu bits or exponent of %zu bytes is not accepted "
                        "(1024..16384 bits, exponent >= 3)",
                        nl * 8, el);
    }
    /* RSAPublicKey ::= SEQUENCE { n INTEGER, e INTEGER } */
    size_t rsa_body = 1 + der_len_size(nc) + nc + 1 + der_len_size(ec) + ec;
    size_t rsa_len = 1 + der_len_size(rsa_body) + rsa_body;
    static const unsigned char alg_id[] = {0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86,
                                           0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00};
    size_t bits_body = 1 + rsa_len; /* unused-bits byte + RSAPublicKey */
    size_t spki_body = sizeof alg_id + 1 + der_len_size(bits_body) + bits_body;
    size_t total = 1 + der_len_size(spki_body) + spki_body;
    unsigned char *d = malloc(total);
    char *out = malloc(total * 4 / 3 + total / 48 + 128);
    if (!d || !out) {
        free(d);
        free(out);
        free(n);
        free(e);
        return tdm_errf(err, TDM_ERR_NOMEM, "JWK: out of memory");
    }
    unsigned char *w = d;
    *w++ = 0x30;
    der_put_len(&w, spki_body);
    memcpy(w, alg_id, sizeof alg_id);
    w += sizeof alg_id;
    *w++ = 0x03;
    der_put_len(&w, bits_body);
    *w++ = 0x00;
    *w++ = 0x30;
    der_put_len(&w, rsa_body);
    der_put_int(&w, nb, nl, nc);
    der_put_int(&w, eb, el, ec);
    assert((size_t)(w - d) == total);
    free(n);
    free(e);

    size_t o = 0;
    static const char head[] = "-----BEGIN PUBLIC KEY-----\n",
                      tail[] = "-----END PUBLIC KEY-----\n";
    memcpy(out, head, sizeof head - 1);
    o += sizeof head - 1;
    o += b64_pem_body(d, total, out + o);
    memcpy(out + o, tail, sizeof tail);
    free(d);
    *pem = out;
    return TDM_OK;
}

/* ---- loading keys ----------------------------------------------------------------------- */

static tdm_status read_file(const char *path, char **out, size_t *len, tdm_err *err)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return tdm_errf(err, TDM_ERR_IO, "%s: %s", path, strerror(errno));
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (n > MAX_KEYFILE_BYTES) {
            free(buf);
            fclose(f);
            return tdm_errf(err, TDM_ERR_PARSE, "%s: larger than %u bytes", path,
                            MAX_KEYFILE_BYTES);
        }
        if (got == 0)
            break;
        if (n + 1 == cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    bool bad = ferror(f);
    fclose(f);
    if (!buf)
        return tdm_errf(err, TDM_ERR_NOMEM, "%s: out of memory", path);
    if (bad) {
        free(buf);
        return tdm_errf(err, TDM_ERR_IO, "%s: read error", path);
    }
    buf[n] = 0;
    *out = buf;
    *len = n;
    return TDM_OK;
}

static void keyset_free(keyset *ks)
{
    if (!ks)
        return;
    for (int i = 0; i < ks->n_jwks; i++)
        free(ks->jwks[i].pem);
    free(ks->jwks);
    free(ks->keys);
    free(ks);
}

static tdm_status load_jwks(const char *path, keyset *ks, tdm_err *err)
{
    char *text;
    size_t len;
    tdm_status s = read_file(path, &text, &len, err);
    if (s != TDM_OK)
        return s;
    tdm_json_doc *doc;
    s = tdm_json_parse(text, len, 0, &doc, err);
    free(text);
    if (s != TDM_OK) {
        tdm_err_prefix(err, "%s", path);
        return s;
    }
    const tdm_json *keys = tdm_json_get(tdm_json_root(doc), "keys");
    if (!keys || keys->type != TDM_JSON_ARRAY) {
        tdm_json_free(doc);
        return tdm_errf(err, TDM_ERR_PARSE, "%s: expected an object with a \"keys\" array", path);
    }
    ks->jwks = calloc(keys->len ? keys->len : 1, sizeof *ks->jwks);
    if (!ks->jwks) {
        tdm_json_free(doc);
        return tdm_errf(err, TDM_ERR_NOMEM, "%s: out of memory", path);
    }
    for (size_t i = 0; i < keys->len; i++) {
        const tdm_json *k = &keys->items[i];
        const char *kty = tdm_json_string(tdm_json_get(k, "kty"), NULL);
        const char *use = tdm_json_string(tdm_json_get(k, "use"), NULL);
        const char *alg = tdm_json_string(tdm_json_get(k, "alg"), NULL);
        /* Keys for other purposes may share the file: skip, don't fail. */
        if (!kty || strcmp(kty, "RSA") != 0 || (use && strcmp(use, "sig") != 0) ||
            (alg && strcmp(alg, "RS256") != 0))
            continue;
        size_t kid_len = 0;
        const char *kid = tdm_json_string(tdm_json_get(k, "kid"), &kid_len);
        const char *n = tdm_json_string(tdm_json_get(k, "n"), NULL);
        const char *e = tdm_json_string(tdm_json_get(k, "e"), NULL);
        if (!n || !e) {
            tdm_json_free(doc);
            return tdm_errf(err, TDM_ERR_PARSE, "%s: keys[%zu]: an RSA key needs \"n\" and \"e\"",
                            path, i);
        }
        if (kid && kid_len >= sizeof ks->jwks[0].kid) {
            tdm_json_free(doc);
            return tdm_errf(err, TDM_ERR_PARSE, "%s: keys[%zu]: \"kid\" longer than %zu bytes",
                            path, i, sizeof ks->jwks[0].kid - 1);
        }
        for (int j = 0; kid && j < ks->n_jwks; j++) {
            if (!strcmp(ks->jwks[j].kid, kid)) {
                tdm_json_free(doc);
                return tdm_errf(err, TDM_ERR_PARSE, "%s: keys[%zu]: kid \"%s\" appears twice", path,
                                i, kid);
            }
        }
        jwk *dst = &ks->jwks[ks->n_jwks];
        s = tdm_jwk_rsa_to_pem(n, e, &dst->pem, err);
        if (s != TDM_OK) {
            tdm_json_free(doc);
            tdm_err_prefix(err, "%s: keys[%zu]", path, i);
            return s;
        }
        dst->pem_len = strlen(dst->pem);
        snprintf(dst->kid, sizeof dst->kid, "%s", kid ? kid : "");
        ks->n_jwks++;
    }
    tdm_json_free(doc);
    if (ks->n_jwks == 0)
        return tdm_errf(err, TDM_ERR_PARSE, "%s: no RSA signing key (kty RSA, RS256) in \"keys\"",
                        path);
    return TDM_OK;
}

static tdm_status parse_key_entry(const char *key, size_t key_len, const char *role,
                                  const char *name, api_key_entry *out, const char *where,
                                  tdm_err *err)
{
    if (!tdm_auth_role_parse(role, &out->role))
        return tdm_errf(err, TDM_ERR_PARSE,
                        "%s: role \"%s\" is not one of observer, operator, admin", where, role);
    if (key_len >= 7 && !strncmp(key, "sha256:", 7)) {
        if (key_len != 7 + TDM_SHA256_HEX_LEN)
            return tdm_errf(err, TDM_ERR_PARSE, "%s: a sha256: key needs 64 hex digits", where);
        for (int i = 0; i < TDM_SHA256_LEN; i++) {
            unsigned v;
            char hx[3] = {key[7 + 2 * i], key[8 + 2 * i], 0};
            char *end;
            v = (unsigned)strtoul(hx, &end, 16);
            if (*end || !hx[0] || hx[0] == '+' || hx[0] == '-' || hx[0] == ' ')
                return tdm_errf(err, TDM_ERR_PARSE, "%s: bad hex digit in the sha256: key", where);
            out->digest[i] = (uint8_t)v;
        }
    } else {
        if (key_len < 8)
            return tdm_errf(err, TDM_ERR_PARSE, "%s: an API key needs at least 8 characters",
                            where);
        tdm_sha256_buf(key, key_len, out->digest);
    }
    snprintf(out->name, sizeof out->name, "%s", name && *name ? name : "api-key");
    return TDM_OK;
}

static tdm_status load_api_keys(const char *path, keyset *ks, tdm_err *err)
{
    char *text;
    size_t len;
    tdm_status s = read_file(path, &text, &len, err);
    if (s != TDM_OK)
        return s;
    int lines = 1;
    for (size_t i = 0; i < len; i++)
        lines += text[i] == '\n';
    api_key_entry *keys = realloc(ks->keys, (size_t)(ks->n_keys + lines) * sizeof *keys);
    if (!keys) {
        free(text);
        return tdm_errf(err, TDM_ERR_NOMEM, "%s: out of memory", path);
    }
    ks->keys = keys;
    int line = 0;
    char *save = NULL;
    for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        line++;
        char *f[4] = {0};
        int nf = 0;
        char *save2 = NULL;
        for (char *t = strtok_r(l, " \t\r", &save2); t && nf < 4;
             t = strtok_r(NULL, " \t\r", &save2))
            f[nf++] = t;
        if (nf == 0 || f[0][0] == '#')
            continue;
        char where[1100];
        snprintf(where, sizeof where, "%s line %d", path, line);
        if (nf < 2 || nf > 3) {
            free(text);
            return tdm_errf(err, TDM_ERR_PARSE, "%s: expected \"KEY ROLE [NAME]\"", where);
        }
        s = parse_key_entry(f[0], strlen(f[0]), f[1], f[2], &ks->keys[ks->n_keys], where, err);
        if (s != TDM_OK) {
            free(text);
            return s;
        }
        ks->n_keys++;
    }
    free(text);
    return TDM_OK;
}

/* (mtime, size) of a file, zeros when it cannot be read. */
static void file_stamp(const char *path, struct timespec *mtime, off_t *size)
{
    struct stat st;
    if (path[0] && stat(path, &st) == 0) {
        *mtime = st.st_mtim;
        *size = st.st_size;
    } else {
        memset(mtime, 0, sizeof *mtime);
        *size = 0;
    }
}

static tdm_status build_keyset(tdm_auth *a, keyset **out, tdm_err *err)
{
    /* Stamp before reading: a write racing with the read is seen as a change next time. */
    struct timespec km, jm;
    off_t ks_size, js_size;
    file_stamp(a->use_api_keys ? a->api_keys_file : "", &km, &ks_size);
    file_stamp(a->use_jwt ? a->jwks_file : "", &jm, &js_size);
    keyset *ks = calloc(1, sizeof *ks);
    if (!ks)
        return tdm_errf(err, TDM_ERR_NOMEM, "auth: out of memory");
    tdm_status s = TDM_OK;
    if (a->use_api_keys) {
        if (a->n_inline_keys) {
            ks->keys = malloc((size_t)a->n_inline_keys * sizeof *ks->keys);
            if (!ks->keys)
                s = tdm_errf(err, TDM_ERR_NOMEM, "auth: out of memory");
            else {
                memcpy(ks->keys, a->inline_keys, (size_t)a->n_inline_keys * sizeof *ks->keys);
                ks->n_keys = a->n_inline_keys;
            }
        }
        if (s == TDM_OK && a->api_keys_file[0])
            s = load_api_keys(a->api_keys_file, ks, err);
    }
    if (s == TDM_OK && a->use_jwt)
        s = load_jwks(a->jwks_file, ks, err);
    if (s != TDM_OK) {
        keyset_free(ks);
        return s;
    }
    pthread_mutex_lock(&a->reload_mu);
    a->keys_mtime = km;
    a->keys_size = ks_size;
    a->jwks_mtime = jm;
    a->jwks_size = js_size;
    pthread_mutex_unlock(&a->reload_mu);
    *out = ks;
    return TDM_OK;
}

/* ---- configuration -------------------------------------------------------------------- */

static tdm_status cfg_string(const tdm_json *obj, const char *key, const char *section,
                             const char **out, tdm_err *err)
{
    *out = NULL;
    const tdm_json *v = tdm_json_get(obj, key);
    if (!v || v->type == TDM_JSON_NULL)
        return TDM_OK;
    if (v->type != TDM_JSON_STRING)
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "%s.%s must be a string, not %s", section, key,
                        tdm_json_type_name(v->type));
    *out = v->str;
    return TDM_OK;
}

static tdm_status resolve_path(const char *dir, const char *p, char *dst, size_t cap,
                               const char *what, tdm_err *err)
{
    int n;
    if (p[0] == '/' || !dir || !dir[0])
        n = snprintf(dst, cap, "%s", p);
    else
        n = snprintf(dst, cap, "%s/%s", dir, p);
    if (n < 0 || (size_t)n >= cap)
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "%s: path too long", what);
    return TDM_OK;
}

tdm_status tdm_auth_create(const tdm_json *cfg, const char *config_dir, tdm_auth **out,
                           tdm_err *err)
{
    *out = NULL;
    if (!cfg || cfg->type != TDM_JSON_OBJECT)
        return tdm_errf(err, TDM_ERR_INVALID_ARG,
                        "auth: expected a section with api_keys, api_keys_file or jwt (or `auth: "
                        "none`)");
    tdm_auth *a = calloc(1, sizeof *a);
    if (!a)
        return tdm_errf(err, TDM_ERR_NOMEM, "auth: out of memory");
    pthread_rwlock_init(&a->lock, NULL);
    pthread_mutex_init(&a->reload_mu, NULL);
    a->leeway_s = 30;
    tdm_status s;
    const char *str;

    for (size_t i = 0; i < cfg->len; i++) {
        const char *k = cfg->items[i].key;
        if (strcmp(k, "mode") && strcmp(k, "api_keys") && strcmp(k, "api_keys_file") &&
            strcmp(k, "jwt")) {
            s = tdm_errf(err, TDM_ERR_INVALID_ARG,
                         "auth.%s: unknown setting (expected mode, api_keys, api_keys_file, jwt)",
                         k);
            goto fail;
        }
    }
    if ((s = cfg_string(cfg, "mode", "auth", &str, err)))
        goto fail;
    if (str && strcmp(str, "api_key") && strcmp(str, "jwt") && strcmp(str, "any")) {
        s = tdm_errf(err, TDM_ERR_INVALID_ARG,
                     "auth.mode \"%s\" is not one of none, api_key, jwt, any", str);
        goto fail;
    }
    const char *mode = str;

    if ((s = cfg_string(cfg, "api_keys_file", "auth", &str, err)))
        goto fail;
    if (str) {
        if ((s = resolve_path(config_dir, str, a->api_keys_file, sizeof a->api_keys_file,
                              "auth.api_keys_file", err)))
            goto fail;
        a->use_api_keys = true;
    }
    const tdm_json *inl = tdm_json_get(cfg, "api_keys");
    if (inl && inl->type != TDM_JSON_NULL) {
        if (inl->type != TDM_JSON_ARRAY) {
            s = tdm_errf(err, TDM_ERR_INVALID_ARG, "auth.api_keys must be a list");
            goto fail;
        }
        a->inline_keys = calloc(inl->len ? inl->len : 1, sizeof *a->inline_keys);
        if (!a->inline_keys) {
            s = tdm_errf(err, TDM_ERR_NOMEM, "auth: out of memory");
            goto fail;
        }
        for (size_t i = 0; i < inl->len; i++) {
            char where[64];
            snprintf(where, sizeof where, "auth.api_keys[%zu]", i);
            const char *key, *role, *name;
            size_t key_len = 0;
            if ((s = cfg_string(&inl->items[i], "key", where, &key, err)) ||
                (s = cfg_string(&inl->items[i], "role", where, &role, err)) ||
                (s = cfg_string(&inl->items[i], "name", where, &name, err)))
                goto fail;
            if (!key || !role) {
                s = tdm_errf(err, TDM_ERR_INVALID_ARG, "%s: needs \"key\" and \"role\"", where);
                goto fail;
            }
            tdm_json_string(tdm_json_get(&inl->items[i], "key"), &key_len);
            if ((s = parse_key_entry(key, key_len, role, name, &a->inline_keys[i], where, err)))
                goto fail;
            a->n_inline_keys++;
        }
        a->use_api_keys = true;
    }

    const tdm_json *jwt = tdm_json_get(cfg, "jwt");
    if (jwt && jwt->type != TDM_JSON_NULL) {
        if (jwt->type != TDM_JSON_OBJECT) {
            s = tdm_errf(err, TDM_ERR_INVALID_ARG, "auth.jwt must be a section");
            goto fail;
        }
        for (size_t i = 0; i < jwt->len; i++) {
            const char *k = jwt->items[i].key;
            if (strcmp(k, "jwks_file") && strcmp(k, "issuer") && strcmp(k, "audience") &&
                strcmp(k, "leeway_s")) {
                s = tdm_errf(err, TDM_ERR_INVALID_ARG,
                             "auth.jwt.%s: unknown setting (expected jwks_file, issuer, audience, "
                             "leeway_s)",
                             k);
                goto fail;
            }
        }
        if ((s = cfg_string(jwt, "jwks_file", "auth.jwt", &str, err)))
            goto fail;
        if (!str) {
            s = tdm_errf(err, TDM_ERR_INVALID_ARG, "auth.jwt.jwks_file is required");
            goto fail;
        }
        if ((s = resolve_path(config_dir, str, a->jwks_file, sizeof a->jwks_file,
                              "auth.jwt.jwks_file", err)))
            goto fail;
        if ((s = cfg_string(jwt, "issuer", "auth.jwt", &str, err)))
            goto fail;
        snprintf(a->issuer, sizeof a->issuer, "%s", str ? str : "");
        if ((s = cfg_string(jwt, "audience", "auth.jwt", &str, err)))
            goto fail;
        snprintf(a->audience, sizeof a->audience, "%s", str ? str : "");
        const tdm_json *lw = tdm_json_get(jwt, "leeway_s");
        if (lw) {
            int64_t v;
            /* YAML scalars may arrive as strings. */
            if (lw->type == TDM_JSON_STRING) {
                char *end;
                v = strtoll(lw->str, &end, 10);
                if (*end || !lw->str[0])
                    v = -1;
            } else if (!tdm_json_int(lw, &v)) {
                v = -1;
            }
            if (v < 0 || v > 3600) {
                s = tdm_errf(err, TDM_ERR_INVALID_ARG,
                             "auth.jwt.leeway_s must be an integer 0..3600");
                goto fail;
            }
            a->leeway_s = v;
        }
        a->use_jwt = true;
    }

    if (mode && !strcmp(mode, "api_key") && !a->use_api_keys) {
        s = tdm_errf(err, TDM_ERR_INVALID_ARG, "auth.mode api_key needs api_keys or api_keys_file");
        goto fail;
    }
    if (mode && !strcmp(mode, "jwt") && !a->use_jwt) {
        s = tdm_errf(err, TDM_ERR_INVALID_ARG, "auth.mode jwt needs a jwt section");
        goto fail;
    }
    if (mode && !strcmp(mode, "api_key"))
        a->use_jwt = false;
    if (mode && !strcmp(mode, "jwt"))
        a->use_api_keys = false;
    if (!a->use_api_keys && !a->use_jwt) {
        s = tdm_errf(err, TDM_ERR_INVALID_ARG,
                     "auth: no api_keys, api_keys_file or jwt configured (write `auth: none` to "
                     "turn authentication off)");
        goto fail;
    }
    if ((s = build_keyset(a, &a->ks, err)))
        goto fail;
    a->last_kid_reload_s = (int64_t)time(NULL);
    *out = a;
    return TDM_OK;
fail:
    tdm_auth_free(a);
    return s;
}

void tdm_auth_free(tdm_auth *a)
{
    if (!a)
        return;
    keyset_free(a->ks);
    free(a->inline_keys);
    pthread_rwlock_destroy(&a->lock);
    pthread_mutex_destroy(&a->reload_mu);
    free(a);
}

tdm_status tdm_auth_reload(tdm_auth *a, tdm_err *err)
{
    keyset *ks;
    tdm_status s = build_keyset(a, &ks, err);
    if (s != TDM_OK)
        return s;
    pthread_rwlock_wrlock(&a->lock);
    keyset *old = a->ks;
    a->ks = ks;
    pthread_rwlock_unlock(&a->lock);
    keyset_free(old);
    return TDM_OK;
}

/* ---- verification ------------------------------------------------------------------- */

static tdm_status decode_json_segment(const char *seg, size_t len, const char *what,
                                      tdm_json_doc **doc, tdm_err *err)
{
    unsigned char *raw;
    size_t raw_len;
    tdm_status s = tdm_b64url_decode(seg, len, false, &raw, &raw_len, err);
    if (s == TDM_OK) {
        s = tdm_json_parse((const char *)raw, raw_len, 16, doc, err);
        free(raw);
    }
    if (s != TDM_OK)
        tdm_err_prefix(err, "token %s", what);
    else if (tdm_json_root(*doc)->type != TDM_JSON_OBJECT) {
        tdm_json_free(*doc);
        *doc = NULL;
        s = tdm_errf(err, TDM_ERR_PARSE, "token %s is not a JSON object", what);
    }
    return s;
}

/* Copies the PEM of the key for kid (or the only key when kid is NULL) under the read
 * lock. */
static tdm_status find_key(tdm_auth *a, const char *kid, char **pem, size_t *pem_len, tdm_err *err)
{
    *pem = NULL;
    pthread_rwlock_rdlock(&a->lock);
    const keyset *ks = a->ks;
    const jwk *k = NULL;
    if (kid) {
        for (int i = 0; i < ks->n_jwks && !k; i++)
            if (!strcmp(ks->jwks[i].kid, kid))
                k = &ks->jwks[i];
    } else if (ks->n_jwks == 1) {
        k = &ks->jwks[0];
    }
    int n = ks->n_jwks;
    if (k) {
        *pem = tdm_strndup(k->pem, k->pem_len);
        *pem_len = k->pem_len;
    }
    pthread_rwlock_unlock(&a->lock);
    if (k && !*pem)
        return tdm_errf(err, TDM_ERR_NOMEM, "auth: out of memory");
    if (!k && kid)
        return tdm_errf(err, TDM_ERR_NOT_FOUND, "token kid \"%.100s\" is not in the JWKS", kid);
    if (!k)
        return tdm_errf(err, TDM_ERR_NOT_FOUND,
                        "token has no kid and the JWKS holds %d keys: cannot choose", n);
    return TDM_OK;
}

/* A kid we do not know may be a freshly rotated key: re-read the JWKS, once a second at
 * most (so a flood of bogus kids cannot turn into a flood of file reads). */
static void maybe_reload_for_kid(tdm_auth *a, int64_t now_s)
{
    bool go = false;
    pthread_mutex_lock(&a->reload_mu);
    if (now_s != a->last_kid_reload_s) {
        a->last_kid_reload_s = now_s;
        go = true;
    }
    pthread_mutex_unlock(&a->reload_mu);
    if (go)
        (void)tdm_auth_reload(a, NULL); /* failure keeps the old keys */
}

/* Re-reads the key files when either changed on disk (checked at most once a second), so
 * publishing or retiring a key is writing a file; no restart, no reload call. */
static void refresh_if_changed(tdm_auth *a, int64_t now_s)
{
    bool changed = false;
    pthread_mutex_lock(&a->reload_mu);
    if (now_s != a->last_check_s) {
        a->last_check_s = now_s;
        struct timespec km, jm;
        off_t ks, js;
        file_stamp(a->use_api_keys ? a->api_keys_file : "", &km, &ks);
        file_stamp(a->use_jwt ? a->jwks_file : "", &jm, &js);
        changed = km.tv_sec != a->keys_mtime.tv_sec || km.tv_nsec != a->keys_mtime.tv_nsec ||
                  ks != a->keys_size || jm.tv_sec != a->jwks_mtime.tv_sec ||
                  jm.tv_nsec != a->jwks_mtime.tv_nsec || js != a->jwks_size;
    }
    pthread_mutex_unlock(&a->reload_mu);
    if (changed)
        (void)tdm_auth_reload(a, NULL); /* a broken file keeps the old keys */
}

static bool number_claim(const tdm_json *claims, const char *name, double *out)
{
    const tdm_json *v = tdm_json_get(claims, name);
    if (!v || v->type != TDM_JSON_NUMBER)
        return false;
    *out = v->number;
    return true;
}

static tdm_status check_claims(tdm_auth *a, const tdm_json *c, int64_t now_s, tdm_gw_principal *who,
                               tdm_err *err)
{
    double exp, nbf;
    const tdm_json *v = tdm_json_get(c, "exp");
    if (!v)
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "token has no \"exp\" claim");
    if (!number_claim(c, "exp", &exp))
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "token claim \"exp\" is not a number");
    if ((double)now_s > exp + (double)a->leeway_s)
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "token expired at %.0f (now %lld)", exp,
                        (long long)now_s);
    if (tdm_json_get(c, "nbf")) {
        if (!number_claim(c, "nbf", &nbf))
            return tdm_errf(err, TDM_ERR_INVALID_ARG, "token claim \"nbf\" is not a number");
        if ((double)now_s + (double)a->leeway_s < nbf)
            return tdm_errf(err, TDM_ERR_INVALID_ARG, "token not valid before %.0f (now %lld)", nbf,
                            (long long)now_s);
    }
    if (a->issuer[0]) {
        const char *iss = tdm_json_string(tdm_json_get(c, "iss"), NULL);
        if (!iss || strcmp(iss, a->issuer) != 0)
            return tdm_errf(err, TDM_ERR_INVALID_ARG, "token issuer \"%.100s\" is not \"%s\"",
                            iss ? iss : "(none)", a->issuer);
    }
    if (a->audience[0]) {
        const tdm_json *aud = tdm_json_get(c, "aud");
        bool ok = false;
        if (aud && aud->type == TDM_JSON_STRING)
            ok = !strcmp(aud->str, a->audience);
        else if (aud && aud->type == TDM_JSON_ARRAY)
            for (size_t i = 0; i < aud->len && !ok; i++)
                ok = aud->items[i].type == TDM_JSON_STRING &&
                     !strcmp(aud->items[i].str, a->audience);
        if (!ok)
            return tdm_errf(err, TDM_ERR_INVALID_ARG, "token audience does not include \"%s\"",
                            a->audience);
    }
    tdm_gw_role role = TDM_GW_ROLE_OBSERVER, r;
    const tdm_json *rv = tdm_json_get(c, "role");
    if (rv && rv->type == TDM_JSON_STRING && tdm_auth_role_parse(rv->str, &r) && r > role)
        role = r;
    const tdm_json *rs = tdm_json_get(c, "roles");
    if (rs && rs->type == TDM_JSON_ARRAY)
        for (size_t i = 0; i < rs->len; i++)
            if (rs->items[i].type == TDM_JSON_STRING && tdm_auth_role_parse(rs->items[i].str, &r) &&
                r > role)
                role = r;
    memset(who, 0, sizeof *who);
    const char *sub = tdm_json_string(tdm_json_get(c, "sub"), NULL);
    snprintf(who->subject, sizeof who->subject, "%s", sub ? sub : "jwt");
    const char *tenant = tdm_json_string(tdm_json_get(c, "tenant"), NULL);
    snprintf(who->tenant, sizeof who->tenant, "%s", tenant ? tenant : "");
    who->role = role;
    return TDM_OK;
}

tdm_status tdm_auth_verify_jwt(tdm_auth *a, const char *token, int64_t now_s, tdm_gw_principal *who,
                               tdm_err *err)
{
    if (!a->use_jwt)
        return tdm_errf(err, TDM_ERR_UNSUPPORTED, "bearer tokens are not accepted here");
    size_t len = strnlen(token, MAX_TOKEN_LEN + 1);
    if (len > MAX_TOKEN_LEN)
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "token longer than %d bytes", MAX_TOKEN_LEN);
    const char *d1 = memchr(token, '.', len);
    const char *d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token)) : NULL;
    if (!d1 || !d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - token)))
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "token is not three base64url parts");
    if (d2 + 1 == token + len)
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "token is unsigned (empty signature)");

    tdm_json_doc *hdr;
    tdm_status s = decode_json_segment(token, (size_t)(d1 - token), "header", &hdr, err);
    if (s != TDM_OK)
        return TDM_ERR_INVALID_ARG;
    const char *alg = tdm_json_string(tdm_json_get(tdm_json_root(hdr), "alg"), NULL);
    if (!alg || strcmp(alg, "RS256") != 0) {
        s = tdm_errf(err, TDM_ERR_INVALID_ARG, "token alg \"%.20s\" is refused (only RS256)",
                     alg ? alg : "(none)");
        tdm_json_free(hdr);
        return s;
    }
    const tdm_json *kidv = tdm_json_get(tdm_json_root(hdr), "kid");
    char kid[128];
    bool has_kid = false;
    if (kidv) {
        if (kidv->type != TDM_JSON_STRING || kidv->len >= sizeof kid) {
            tdm_json_free(hdr);
            return tdm_errf(err, TDM_ERR_INVALID_ARG, "token kid is not a short string");
        }
        memcpy(kid, kidv->str, kidv->len + 1);
        has_kid = true;
    }
    tdm_json_free(hdr);

    char *pem;
    size_t pem_len;
    s = find_key(a, has_kid ? kid : NULL, &pem, &pem_len, err);
    if (s == TDM_ERR_NOT_FOUND && has_kid) {
        maybe_reload_for_kid(a, now_s);
        s = find_key(a, kid, &pem, &pem_len, err);
    }
    if (s != TDM_OK)
        return s == TDM_ERR_NOMEM ? s : TDM_ERR_INVALID_ARG;

    jwt_t *j = NULL;
    int rc = jwt_decode(&j, token, (const unsigned char *)pem, (int)pem_len);
    free(pem);
    if (rc != 0 || !j || jwt_get_alg(j) != JWT_ALG_RS256) {
        if (j)
            jwt_free(j);
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "token signature does not verify%s",
                        has_kid ? " with its kid's key" : "");
    }
    jwt_free(j);

    tdm_json_doc *claims;
    s = decode_json_segment(d1 + 1, (size_t)(d2 - d1 - 1), "payload", &claims, err);
    if (s != TDM_OK)
        return TDM_ERR_INVALID_ARG;
    s = check_claims(a, tdm_json_root(claims), now_s, who, err);
    tdm_json_free(claims);
    return s;
}

tdm_status tdm_auth_verify_api_key(tdm_auth *a, const char *key, tdm_gw_principal *who,
                                   tdm_err *err)
{
    if (!a->use_api_keys)
        return tdm_errf(err, TDM_ERR_UNSUPPORTED, "API keys are not accepted here");
    uint8_t d[TDM_SHA256_LEN];
    tdm_sha256_buf(key, strlen(key), d);
    pthread_rwlock_rdlock(&a->lock);
    const api_key_entry *found = NULL;
    /* Compare against every key without early exit so timing says nothing about which. */
    for (int i = 0; i < a->ks->n_keys; i++) {
        uint8_t diff = 0;
        for (int b = 0; b < TDM_SHA256_LEN; b++)
            diff |= (uint8_t)(a->ks->keys[i].digest[b] ^ d[b]);
        if (diff == 0 && !found)
            found = &a->ks->keys[i];
    }
    if (found) {
        memset(who, 0, sizeof *who);
        snprintf(who->subject, sizeof who->subject, "%s", found->name);
        who->role = found->role;
    }
    pthread_rwlock_unlock(&a->lock);
    if (!found)
        return tdm_errf(err, TDM_ERR_NOT_FOUND, "the API key is not valid");
    return TDM_OK;
}

static int count_dots(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '.';
    return n;
}

tdm_auth_outcome tdm_auth_check(tdm_auth *a, const char *authorization, const char *api_key,
                                int64_t now_s, tdm_gw_role required, tdm_gw_principal *who,
                                tdm_err *err)
{
    tdm_status s;
    refresh_if_changed(a, now_s);
    if (authorization) {
        if (strncasecmp(authorization, "Bearer ", 7) != 0) {
            tdm_errf(err, TDM_ERR_INVALID_ARG,
                     "the Authorization header must be \"Bearer <token or API key>\"");
            return TDM_AUTH_UNAUTHENTICATED;
        }
        const char *cred = authorization + 7;
        while (*cred == ' ')
            cred++;
        if (count_dots(cred) == 2 && a->use_jwt)
            s = tdm_auth_verify_jwt(a, cred, now_s, who, err);
        else if (a->use_api_keys)
            s = tdm_auth_verify_api_key(a, cred, who, err);
        else
            s = tdm_auth_verify_jwt(a, cred, now_s, who, err);
    } else if (api_key) {
        s = tdm_auth_verify_api_key(a, api_key, who, err);
    } else {
        tdm_errf(err, TDM_ERR_INVALID_ARG, "credentials required: %s",
                 a->use_jwt && a->use_api_keys ? "Authorization: Bearer <JWT or API key>"
                 : a->use_jwt                  ? "Authorization: Bearer <JWT>"
                                               : "X-API-Key or Authorization: Bearer <API key>");
        return TDM_AUTH_UNAUTHENTICATED;
    }
    if (s != TDM_OK)
        return TDM_AUTH_UNAUTHENTICATED;
    if (who->role < required) {
        tdm_errf(err, TDM_ERR_INVALID_ARG, "%s \"%s\" has role %s; this needs %s", "principal",
                 who->subject, tdm_auth_role_name(who->role), tdm_auth_role_name(required));
        return TDM_AUTH_FORBIDDEN;
    }
    return TDM_AUTH_OK;
}

/* ---- the server's hooks ------------------------------------------------------------- */

static tdm_status hook_create(const tdm_json *auth_cfg, const char *config_dir, void **ctx,
                              tdm_err *err)
{
    tdm_auth *a;
    tdm_status s = tdm_auth_create(auth_cfg, config_dir, &a, err);
    *ctx = a;
    return s;
}

static bool hook_check(void *ctx, const tdm_gw_request *req, tdm_gw_role required,
                       tdm_gw_principal *who, tdm_gw_response *resp)
{
    tdm_err err;
    tdm_auth_outcome o =
        tdm_auth_check(ctx, tdm_gw_header(req, "Authorization"), tdm_gw_header(req, "X-API-Key"),
                       (int64_t)time(NULL), required, who, &err);
    if (o == TDM_AUTH_OK)
        return true;
    if (o == TDM_AUTH_FORBIDDEN) {
        tdm_gw_error(resp, 403, "forbidden", "%s", err.msg);
        tdm_gw_resp_header(resp, "WWW-Authenticate",
                           "Bearer realm=\"tandem\", error=\"insufficient_scope\"");
        return false;
    }
    tdm_gw_error(resp, 401, "unauthorized", "%s", err.msg);
    tdm_gw_resp_header(resp, "WWW-Authenticate", "Bearer realm=\"tandem\"");
    return false;
}

static tdm_status hook_reload(void *ctx, tdm_err *err)
{
    return tdm_auth_reload(ctx, err);
}

static void hook_free(void *ctx)
{
    tdm_auth_free(ctx);
}

const tdm_gw_auth_hooks tdm_gw_auth_default_hooks = {
    hook_create,
    hook_check,
    hook_reload,
    hook_free,
};

/* ---- mutual TLS ----------------------------------------------------------------------- */

bool tdm_gw_tls_client_check(void *mhd_connection, tdm_gw_response *resp)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(mhd_connection, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    gnutls_session_t s = ci ? (gnutls_session_t)ci->tls_session : NULL;
    if (!s) {
        tdm_gw_error(resp, 401, "client_certificate_required",
                     "mutual TLS: this connection has no TLS session");
        return false;
    }
    unsigned status = 0;
    int rc = gnutls_certificate_verify_peers2(s, &status);
    if (rc == GNUTLS_E_NO_CERTIFICATE_FOUND || gnutls_certificate_get_peers(s, NULL) == NULL) {
        tdm_gw_error(resp, 401, "client_certificate_required",
                     "mutual TLS: present a client certificate signed by the gateway's client CA");
        return false;
    }
    if (rc < 0 || status != 0) {
        gnutls_datum_t why = {0};
        bool printed = rc >= 0 && gnutls_certificate_verification_status_print(
                                      status, GNUTLS_CRT_X509, &why, 0) == 0;
        tdm_gw_error(resp, 401, "client_certificate_required",
                     "mutual TLS: the client certificate does not verify: %s",
                     printed ? (const char *)why.data : gnutls_strerror(rc));
        if (printed)
            gnutls_free(why.data);
        return false;
    }
    return true;
}

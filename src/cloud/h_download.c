/*
 * Model downloads: GET /v1/models/{name}/versions/{v}[/download] lists the
 * files of a version (path, size, sha256, url), and
 * GET /v1/models/{name}/versions/{v}/download/{path} serves one file.
 *
 * A published version never changes, so a file's SHA-256 is its identity:
 * it is the ETag (quoted hex, which the edge downloader checks the bytes
 * against), the Digest header (base64, RFC 3230), and the reason every file
 * response says "Cache-Control: public, max-age=31536000, immutable" so a CDN
 * or nginx may keep it forever. If-None-Match answers 304 without a byte of
 * body; a single Range (bytes=a-b, a-, -n) answers 206 so an interrupted pull
 * resumes, and If-Range with a stale tag falls back to the whole file.
 * Several ranges in one request are answered with the whole file (allowed by
 * RFC 9110), which keeps the server free of multipart bodies.
 *
 * Digests are computed on first use and cached by (path, size, mtime) in the
 * "download" module, so a listing of a multi-gigabyte version costs a full
 * read once, not per request. Files are read straight from the model
 * repository; request paths are checked segment by segment (no "..", no
 * hidden names), so no request can name a file outside a version directory.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/sha256.h"
#include "cloud/extras.h"
#include "cloud/gateway_internal.h"

#define MAX_FILES 10000
#define MAX_DEPTH 16
#define DIGEST_CACHE_MAX 4096
#define IMMUTABLE "public, max-age=31536000, immutable"

typedef struct digest_entry {
    char *path;
    off_t size;
    struct timespec mtime;
    char hex[TDM_SHA256_HEX_LEN + 1];
} digest_entry;

typedef struct download_state {
    pthread_mutex_t mu;
    digest_entry *e;
    size_t n;
} download_state;

tdm_status tdm_gw_download_init(tdm_gw *gw, const tdm_json *cfg, void **state, tdm_err *err)
{
    (void)gw;
    (void)cfg;
    download_state *d = calloc(1, sizeof *d);
    if (!d)
        return tdm_errf(err, TDM_ERR_NOMEM, "download: out of memory");
    pthread_mutex_init(&d->mu, NULL);
    *state = d;
    return TDM_OK;
}

static void clear_digests(download_state *d)
{
    for (size_t i = 0; i < d->n; i++)
        free(d->e[i].path);
    free(d->e);
    d->e = NULL;
    d->n = 0;
}

void tdm_gw_download_free(void *state)
{
    download_state *d = state;
    if (!d)
        return;
    clear_digests(d);
    pthread_mutex_destroy(&d->mu);
    free(d);
}

/* The sha256 of path whose stat is st; from the cache when size and mtime still match. */
static tdm_status file_digest(download_state *d, const char *path, const struct stat *st,
                              char hex[TDM_SHA256_HEX_LEN + 1], tdm_err *err)
{
    if (d) {
        pthread_mutex_lock(&d->mu);
        for (size_t i = 0; i < d->n; i++) {
            digest_entry *e = &d->e[i];
            if (!strcmp(e->path, path) && e->size == st->st_size &&
                e->mtime.tv_sec == st->st_mtim.tv_sec && e->mtime.tv_nsec == st->st_mtim.tv_nsec) {
                memcpy(hex, e->hex, sizeof e->hex);
                pthread_mutex_unlock(&d->mu);
                return TDM_OK;
            }
        }
        pthread_mutex_unlock(&d->mu);
    }
    tdm_status s = tdm_sha256_file(path, hex, err);
    if (s != TDM_OK || !d)
        return s;
    pthread_mutex_lock(&d->mu);
    if (d->n == DIGEST_CACHE_MAX)
        clear_digests(d); /* rare: start over rather than track recency */
    digest_entry *grown = realloc(d->e, (d->n + 1) * sizeof *grown);
    char *p = tdm_strdup(path);
    if (grown && p) {
        d->e = grown;
        d->e[d->n].path = p;
        d->e[d->n].size = st->st_size;
        d->e[d->n].mtime = st->st_mtim;
        memcpy(d->e[d->n].hex, hex, TDM_SHA256_HEX_LEN + 1);
        d->n++;
    } else {
        if (grown)
            d->e = grown;
        free(p);
    }
    pthread_mutex_unlock(&d->mu);
    return TDM_OK;
}

/* ---- paths -------------------------------------------------------------------------------- */

/* A relative file path inside a version: segments of visible names, no "." or "..". */
static bool valid_rel_path(const char *p)
{
    if (!p || !*p || strlen(p) > 1024)
        return false;
    const char *s = p;
    while (*s) {
        const char *e = strchr(s, '/');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n == 0 || s[0] == '.')
            return false;
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)s[i] < 0x20 || s[i] == '\\')
                return false;
        s += n;
        if (*s == '/')
            s++;
        if (e && !*s)
            return false; /* trailing slash */
    }
    return true;
}

/* repo/name/version, checked; false with the error in resp. */
static bool version_dir(const tdm_gw_request *req, tdm_gw_response *resp, char *dir, size_t cap,
                        const char **name, const char **version)
{
    *name = tdm_gw_path_param(req, "name");
    *version = tdm_gw_path_param(req, "v");
    if (!tdm_gw_valid_name(*name) || !tdm_gw_valid_name(*version)) {
        tdm_gw_error(resp, 400, "invalid_name",
                     "model and version names are 1..128 of [A-Za-z0-9._-], not starting with '.'");
        return false;
    }
    const char *repo = req->gw ? tdm_gw_config_get(req->gw)->model_repo : "";
    int n = snprintf(dir, cap, "%s/%s/%s", repo, *name, *version);
    struct stat st;
    if (n < 0 || (size_t)n >= cap || stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        tdm_gw_error(resp, 404, "unknown_model", "model \"%s\" has no version \"%s\"", *name,
                     *version);
        return false;
    }
    return true;
}

static const char *content_type_of(const char *path)
{
    const char *dot = strrchr(path, '.');
    if (dot && (!strcmp(dot, ".json") || !strcmp(dot, ".jsonl")))
        return "application/json";
    if (dot && (!strcmp(dot, ".txt") || !strcmp(dot, ".yaml") || !strcmp(dot, ".yml")))
        return "text/plain; charset=utf-8";
    return "application/octet-stream";
}

/* ---- listing ------------------------------------------------------------------------------ */

typedef struct listed {
    char *rel;
    uint64_t size;
    char hex[TDM_SHA256_HEX_LEN + 1];
} listed;

typedef struct listing {
    listed *f;
    size_t n, cap;
    bool too_many;
} listing;

static int cmp_listed(const void *a, const void *b)
{
    return strcmp(((const listed *)a)->rel, ((const listed *)b)->rel);
}

static tdm_status walk(download_state *d, const char *root, const char *rel, int depth,
                       listing *out, tdm_err *err)
{
    char dir[2200];
    snprintf(dir, sizeof dir, "%s%s%s", root, rel[0] ? "/" : "", rel);
    DIR *dh = opendir(dir);
    if (!dh)
        return tdm_errf(err, TDM_ERR_IO, "%s: %s", dir, strerror(errno));
    tdm_status s = TDM_OK;
    struct dirent *de;
    while (s == TDM_OK && (de = readdir(dh)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char sub[1100], full[3400];
        int n = snprintf(sub, sizeof sub, "%s%s%s", rel, rel[0] ? "/" : "", de->d_name);
        if (n < 0 || (size_t)n >= sizeof sub)
            continue;
        snprintf(full, sizeof full, "%s/%s", root, sub);
        struct stat st;
        if (stat(full, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            if (depth < MAX_DEPTH)
                s = walk(d, root, sub, depth + 1, out, err);
            continue;
        }
        if (!S_ISREG(st.st_mode))
            continue;
        if (out->n == MAX_FILES) {
            out->too_many = true;
            break;
        }
        if (out->n == out->cap) {
            size_t cap = out->cap ? out->cap * 2 : 16;
            listed *g = realloc(out->f, cap * sizeof *g);
            if (!g) {
                s = tdm_errf(err, TDM_ERR_NOMEM, "out of memory");
                break;
            }
            out->f = g;
            out->cap = cap;
        }
        listed *l = &out->f[out->n];
        l->rel = tdm_strdup(sub);
        if (!l->rel) {
            s = tdm_errf(err, TDM_ERR_NOMEM, "out of memory");
            break;
        }
        l->size = (uint64_t)st.st_size;
        s = file_digest(d, full, &st, l->hex, err);
        if (s != TDM_OK) {
            free(l->rel);
            break;
        }
        out->n++;
    }
    closedir(dh);
    return s;
}

static void url_path_append(tdm_json_buf *b, const char *s)
{
    /* Names are [A-Za-z0-9._-] and '/', which need no escaping in a URL or a JSON string,
     * except files with other bytes: percent-encode those. */
    static const char hexd[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '.' || c == '_' || c == '-' || c == '/' || c == '~') {
            tdm_json_buf_raw(b, (const char *)&c, 1);
        } else {
            char e[3] = {'%', hexd[c >> 4], hexd[c & 15]};
            tdm_json_buf_raw(b, e, 3);
        }
    }
}

static bool if_none_match_hits(const char *inm, const char *hex)
{
    if (!inm)
        return false;
    const char *p = inm;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        if (*p == '*')
            return true;
        if (!strncmp(p, "W/", 2))
            p += 2;
        if (*p == '"' && !strncmp(p + 1, hex, TDM_SHA256_HEX_LEN) &&
            p[1 + TDM_SHA256_HEX_LEN] == '"')
            return true;
        while (*p && *p != ',')
            p++;
    }
    return false;
}

static void not_modified(tdm_gw_response *resp, const char *etag, const char *cache_control)
{
    tdm_gw_resp_bytes(resp, 304, "application/octet-stream", "", 0);
    tdm_gw_resp_header(resp, "ETag", etag);
    tdm_gw_resp_header(resp, "Cache-Control", cache_control);
}

void tdm_gw_h_download_list(const tdm_gw_request *req, tdm_gw_response *resp)
{
    char dir[2048];
    const char *name, *version;
    if (!version_dir(req, resp, dir, sizeof dir, &name, &version))
        return;
    download_state *d = req->gw ? tdm_gw_module_state(req->gw, "download") : NULL;
    listing l = {0};
    tdm_err err;
    tdm_status s = walk(d, dir, "", 0, &l, &err);
    if (s == TDM_OK && l.too_many)
        s = tdm_errf(&err, TDM_ERR_UNSUPPORTED, "more than %d files in the version", MAX_FILES);
    if (s != TDM_OK) {
        for (size_t i = 0; i < l.n; i++)
            free(l.f[i].rel);
        free(l.f);
        tdm_gw_error(resp, 500, "listing_failed", "%s/%s: %s", name, version, err.msg);
        return;
    }
    qsort(l.f, l.n, sizeof *l.f, cmp_listed);
    tdm_json_buf *b = &resp->body;
    uint64_t total = 0;
    tdm_json_buf_raw(b, "{\"model\":", 9);
    tdm_json_buf_string(b, name, strlen(name));
    tdm_json_buf_raw(b, ",\"version\":", 11);
    tdm_json_buf_string(b, version, strlen(version));
    tdm_json_buf_raw(b, ",\"files\":[", 10);
    for (size_t i = 0; i < l.n; i++) {
        tdm_json_buf_raw(b, i ? ",{\"path\":" : "{\"path\":", i ? 9 : 8);
        tdm_json_buf_string(b, l.f[i].rel, strlen(l.f[i].rel));
        tdm_json_buf_raw(b, ",\"size\":", 8);
        tdm_json_buf_i64(b, (int64_t)l.f[i].size);
        tdm_json_buf_raw(b, ",\"sha256\":\"", 11);
        tdm_json_buf_raw(b, l.f[i].hex, TDM_SHA256_HEX_LEN);
        tdm_json_buf_raw(b, "\",\"url\":\"/v1/models/", 20);
        url_path_append(b, name);
        tdm_json_buf_raw(b, "/versions/", 10);
        url_path_append(b, version);
        tdm_json_buf_raw(b, "/download/", 10);
        url_path_append(b, l.f[i].rel);
        tdm_json_buf_raw(b, "\"}", 2);
        total += l.f[i].size;
        free(l.f[i].rel);
    }
    free(l.f);
    tdm_json_buf_raw(b, "],\"total_bytes\":", 16);
    tdm_json_buf_i64(b, (int64_t)total);
    tdm_json_buf_raw(b, "}\n", 2);
    if (b->failed) {
        tdm_gw_error(resp, 500, "out_of_memory", "out of memory");
        return;
    }
    /* The listing's own tag: clients revalidate it cheaply (no-cache + 304). */
    uint8_t dg[TDM_SHA256_LEN];
    char hex[TDM_SHA256_HEX_LEN + 1], etag[TDM_SHA256_HEX_LEN + 3];
    tdm_sha256_buf(b->data, b->len, dg);
    tdm_sha256_hex(dg, hex);
    snprintf(etag, sizeof etag, "\"%s\"", hex);
    if (if_none_match_hits(tdm_gw_header(req, "If-None-Match"), hex)) {
        not_modified(resp, etag, "no-cache");
        return;
    }
    tdm_gw_resp_json(resp, 200);
    tdm_gw_resp_header(resp, "ETag", etag);
    tdm_gw_resp_header(resp, "Cache-Control", "no-cache");
}

/* ---- one file ------------------------------------------------------------------------------ */

typedef enum range_kind { RANGE_NONE, RANGE_ONE, RANGE_BAD } range_kind;

/* Parses a Range header for a file of size bytes: one range -> [*off, *off + *len). Several
 * ranges or another unit -> RANGE_NONE (whole file); unsatisfiable -> RANGE_BAD. */
static range_kind parse_range(const char *h, uint64_t size, uint64_t *off, uint64_t *len)
{
    if (!h)
        return RANGE_NONE;
    while (*h == ' ')
        h++;
    if (strncmp(h, "bytes=", 6) != 0 || strchr(h, ','))
        return RANGE_NONE;
    h += 6;
    char *end;
    if (*h == '-') {
        if (h[1] < '0' || h[1] > '9')
            return RANGE_BAD;
        unsigned long long n = strtoull(h + 1, &end, 10);
        if (*end || n == 0 || size == 0)
            return RANGE_BAD;
        if (n > size)
            n = size;
        *off = size - n;
        *len = n;
        return RANGE_ONE;
    }
    if (*h < '0' || *h > '9')
        return RANGE_BAD;
    unsigned long long a = strtoull(h, &end, 10), b;
    if (*end != '-')
        return RANGE_BAD;
    if (end[1] == 0) {
        b = size ? size - 1 : 0;
    } else {
        if (end[1] < '0' || end[1] > '9')
            return RANGE_BAD;
        b = strtoull(end + 1, &end, 10);
        if (*end || b < a)
            return RANGE_BAD;
        if (b >= size)
            b = size ? size - 1 : 0;
    }
    if (a >= size)
        return RANGE_BAD;
    *off = a;
    *len = b - a + 1;
    return RANGE_ONE;
}

static void b64_std(const uint8_t *in, size_t len, char *out)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < len)
            v |= in[i + 2];
        out[o++] = a[(v >> 18) & 63];
        out[o++] = a[(v >> 12) & 63];
        out[o++] = i + 1 < len ? a[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < len ? a[v & 63] : '=';
    }
    out[o] = 0;
}

void tdm_gw_h_download_file(const tdm_gw_request *req, tdm_gw_response *resp)
{
    char dir[2048];
    const char *name, *version;
    if (!version_dir(req, resp, dir, sizeof dir, &name, &version))
        return;
    const char *rel = tdm_gw_path_param(req, "path");
    if (!valid_rel_path(rel)) {
        tdm_gw_error(resp, 400, "invalid_path",
                     "file path \"%.200s\" must be relative, without \".\", \"..\" or hidden "
                     "segments",
                     rel ? rel : "");
        return;
    }
    char full[3200];
    snprintf(full, sizeof full, "%s/%s", dir, rel);
    int fd = open(full, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        if (fd >= 0)
            close(fd);
        tdm_gw_error(resp, 404, "not_found", "model \"%s\" version \"%s\" has no file \"%.200s\"",
                     name, version, rel);
        return;
    }
    download_state *d = req->gw ? tdm_gw_module_state(req->gw, "download") : NULL;
    char hex[TDM_SHA256_HEX_LEN + 1];
    tdm_err err;
    if (file_digest(d, full, &st, hex, &err) != TDM_OK) {
        close(fd);
        tdm_gw_error(resp, 500, "read_failed", "%s", err.msg);
        return;
    }
    char etag[TDM_SHA256_HEX_LEN + 3];
    snprintf(etag, sizeof etag, "\"%s\"", hex);
    if (if_none_match_hits(tdm_gw_header(req, "If-None-Match"), hex)) {
        close(fd);
        not_modified(resp, etag, IMMUTABLE);
        return;
    }
    uint64_t size = (uint64_t)st.st_size, off = 0, len = size;
    range_kind rk = parse_range(tdm_gw_header(req, "Range"), size, &off, &len);
    const char *if_range = tdm_gw_header(req, "If-Range");
    if (rk != RANGE_NONE && if_range && !if_none_match_hits(if_range, hex)) {
        rk = RANGE_NONE; /* the client's copy is of another file: send the whole new one */
        off = 0;
        len = size;
    }
    if (rk == RANGE_BAD) {
        close(fd);
        char cr[64];
        snprintf(cr, sizeof cr, "bytes */%llu", (unsigned long long)size);
        tdm_gw_error(resp, 416, "range_not_satisfiable",
                     "Range \"%.100s\" does not fit a file of %llu bytes",
                     tdm_gw_header(req, "Range"), (unsigned long long)size);
        tdm_gw_resp_header(resp, "Content-Range", cr);
        return;
    }
    uint8_t dg[TDM_SHA256_LEN];
    for (int i = 0; i < TDM_SHA256_LEN; i++) {
        unsigned v;
        sscanf(hex + 2 * i, "%2x", &v);
        dg[i] = (uint8_t)v;
    }
    char b64[48], digest[64];
    b64_std(dg, sizeof dg, b64);
    snprintf(digest, sizeof digest, "sha-256=%s", b64);
    tdm_gw_resp_file(resp, rk == RANGE_ONE ? 206 : 200, content_type_of(rel), fd, off, len);
    tdm_gw_resp_header(resp, "ETag", etag);
    tdm_gw_resp_header(resp, "Digest", digest);
    tdm_gw_resp_header(resp, "Accept-Ranges", "bytes");
    tdm_gw_resp_header(resp, "Cache-Control", IMMUTABLE);
    if (rk == RANGE_ONE) {
        char cr[96];
        snprintf(cr, sizeof cr, "bytes %llu-%llu/%llu", (unsigned long long)off,
                 (unsigned long long)(off + len - 1), (unsigned long long)size);
        tdm_gw_resp_header(resp, "Content-Range", cr);
    }
}

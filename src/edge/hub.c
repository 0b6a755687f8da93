/*
 * Hugging Face hub listing, URLs, pinned digests (see hub.h).
 *
 * Everything here is strict because it comes from a server or a file the
 * user may have edited: a listing entry without a path or with a negative
 * size, an LFS sha256 that is not 64 hex digits, a TSV row with four fields
 * are errors naming the entry, not guesses. Unknown fields of a listing are
 * ignored, so the hub can add fields without breaking us.
 */
#include "edge/hub.h"

#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "base/alloc.h"
#include "base/json.h"

static bool name_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
}

bool tdm_hub_repo_valid(const char *repo)
{
    if (repo == NULL)
        return false;
    const char *slash = strchr(repo, '/');
    if (slash == NULL || slash == repo || slash[1] == '\0' || strchr(slash + 1, '/') != NULL)
        return false;
    for (const char *p = repo; *p != '\0'; p++)
        if (p != slash && !name_char(*p))
            return false;
    size_t org = (size_t)(slash - repo);
    const char *name = slash + 1;
    if ((org == 1 && repo[0] == '.') || (org == 2 && repo[0] == '.' && repo[1] == '.'))
        return false;
    return strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}

bool tdm_hub_path_safe(const char *path)
{
    if (path == NULL || path[0] == '\0' || path[0] == '/')
        return false;
    const char *seg = path;
    for (const char *p = path;; p++) {
        if (*p == '/' || *p == '\0') {
            size_t n = (size_t)(p - seg);
            if (n == 0 || (n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
                return false;
            if (*p == '\0')
                return true;
            seg = p + 1;
        } else if (*p == '\\' || (unsigned char)*p < 0x20 || *p == 0x7f) {
            return false;
        }
    }
}

/* ---- URLs ----------------------------------------------------------------------------- */

typedef struct sbuf {
    char *s;
    size_t len, cap;
    bool failed;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 128;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->s, cap);
        if (p == NULL) {
            b->failed = true;
            return;
        }
        b->s = p;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void sb_str(sbuf *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

/* Percent-encodes all but RFC 3986 unreserved characters (and '/' when keep_slash). */
static void sb_enc(sbuf *b, const char *s, bool keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' ||
            (keep_slash && c == '/')) {
            sb_add(b, (const char *)&c, 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            sb_add(b, e, 3);
        }
    }
}

static char *sb_done(sbuf *b)
{
    if (b->failed || b->s == NULL) {
        free(b->s);
        return NULL;
    }
    return b->s;
}

static void sb_endpoint(sbuf *b, const char *endpoint)
{
    size_t n = strlen(endpoint);
    while (n > 0 && endpoint[n - 1] == '/')
        n--;
    sb_add(b, endpoint, n);
}

char *tdm_hub_tree_url(const char *endpoint, const char *repo, const char *revision)
{
    sbuf b = {0};
    sb_endpoint(&b, endpoint);
    sb_str(&b, "/api/models/");
    sb_str(&b, repo);
    sb_str(&b, "/tree/");
    sb_enc(&b, revision, false);
    sb_str(&b, "?recursive=true");
    return sb_done(&b);
}

char *tdm_hub_resolve_url(const char *endpoint, const char *repo, const char *revision,
                          const char *path)
{
    sbuf b = {0};
    sb_endpoint(&b, endpoint);
    sb_str(&b, "/");
    sb_str(&b, repo);
    sb_str(&b, "/resolve/");
    sb_enc(&b, revision, false);
    sb_str(&b, "/");
    sb_enc(&b, path, true);
    return sb_done(&b);
}

/* ---- listing -------------------------------------------------------------------------- */

static bool is_hex(const char *s, size_t n)
{
    if (s == NULL || strlen(s) != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isxdigit((unsigned char)s[i]))
            return false;
    return true;
}

static void lower(char *s)
{
    for (; *s != '\0'; s++)
        *s = (char)tolower((unsigned char)*s);
}

void tdm_hub_listing_free(tdm_hub_listing *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < l->n; i++)
        free(l->files[i].path);
    free(l->files);
    l->files = NULL;
    l->n = 0;
}

tdm_status tdm_hub_parse_tree(const char *json, size_t len, tdm_hub_listing *out, tdm_err *err)
{
    out->files = NULL;
    out->n = 0;
    tdm_json_doc *doc = NULL;
    tdm_status s = tdm_json_parse(json, len, 0, &doc, err);
    if (s != TDM_OK) {
        tdm_err_prefix(err, "hub listing");
        return s;
    }
    const tdm_json *root = tdm_json_root(doc);
    if (root->type != TDM_JSON_ARRAY) {
        s = tdm_errf(err, TDM_ERR_PARSE, "hub listing: expected a JSON array, got %s",
                     tdm_json_type_name(root->type));
        goto done;
    }
    out->files = calloc(root->len ? root->len : 1, sizeof *out->files);
    if (out->files == NULL) {
        s = tdm_errf(err, TDM_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < root->len; i++) {
        const tdm_json *e = &root->items[i];
        const char *type = tdm_json_string(tdm_json_get(e, "type"), NULL);
        const char *path = tdm_json_string(tdm_json_get(e, "path"), NULL);
        if (type == NULL || path == NULL) {
            s = tdm_errf(err, TDM_ERR_PARSE, "hub listing: entry %zu has no \"type\" or \"path\"",
                         i);
            goto done;
        }
        if (strcmp(type, "file") != 0)
            continue; /* directories (and whatever else the hub adds) */
        if (!tdm_hub_path_safe(path)) {
            s = tdm_errf(err, TDM_ERR_PARSE, "hub listing: unsafe path '%s' refused", path);
            goto done;
        }
        tdm_hub_file *f = &out->files[out->n];
        int64_t size = -1;
        if (!tdm_json_int(tdm_json_get(e, "size"), &size) || size < 0) {
            s = tdm_errf(err, TDM_ERR_PARSE, "hub listing: %s has no valid \"size\"", path);
            goto done;
        }
        f->size = size;
        const tdm_json *lfs = tdm_json_get(e, "lfs");
        if (lfs != NULL && lfs->type == TDM_JSON_OBJECT) {
            const char *sha = tdm_json_string(tdm_json_get(lfs, "oid"), NULL);
            if (sha != NULL && strncmp(sha, "sha256:", 7) == 0)
                sha += 7;
            int64_t lsize = -1;
            if (!is_hex(sha, 64)) {
                s = tdm_errf(err, TDM_ERR_PARSE, "hub listing: %s: LFS oid '%s' is not a sha256",
                             path, sha ? sha : "(none)");
                goto done;
            }
            if (tdm_json_int(tdm_json_get(lfs, "size"), &lsize) && lsize != size) {
                s = tdm_errf(err, TDM_ERR_PARSE,
                             "hub listing: %s: size %lld disagrees with its LFS size %lld", path,
                             (long long)size, (long long)lsize);
                goto done;
            }
            f->lfs = true;
            memcpy(f->sha256, sha, 65);
            lower(f->sha256);
        } else {
            const char *oid = tdm_json_string(tdm_json_get(e, "oid"), NULL);
            if (is_hex(oid, TDM_GITOID_HEX_LEN)) {
                memcpy(f->oid, oid, TDM_GITOID_HEX_LEN + 1);
                lower(f->oid);
            }
        }
        f->path = tdm_strdup(path);
        if (f->path == NULL) {
            s = tdm_errf(err, TDM_ERR_NOMEM, "out of memory");
            goto done;
        }
        out->n++;
    }
done:
    tdm_json_free(doc);
    if (s != TDM_OK)
        tdm_hub_listing_free(out);
    return s;
}

/* Moves the files of src to the end of dst. */
static tdm_status append_listing(tdm_hub_listing *dst, tdm_hub_listing *src, tdm_err *err)
{
    if (src->n == 0)
        return TDM_OK;
    tdm_hub_file *v = realloc(dst->files, (dst->n + src->n) * sizeof *v);
    if (v == NULL)
        return tdm_errf(err, TDM_ERR_NOMEM, "out of memory");
    memcpy(v + dst->n, src->files, src->n * sizeof *v);
    dst->files = v;
    dst->n += src->n;
    free(src->files);
    src->files = NULL;
    src->n = 0;
    return TDM_OK;
}

tdm_status tdm_hub_list(tdm_downloader *d, const char *endpoint, const char *repo,
                        const char *revision, tdm_hub_listing *out, tdm_err *err)
{
    out->files = NULL;
    out->n = 0;
    if (!tdm_hub_repo_valid(repo))
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "'%s' is not a repository name ORG/NAME",
                        repo ? repo : "(null)");
    if (revision == NULL || revision[0] == '\0')
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "empty revision");
    char *url = tdm_hub_tree_url(endpoint, repo, revision);
    if (url == NULL)
        return tdm_errf(err, TDM_ERR_NOMEM, "out of memory");
    /* Large repositories come in pages linked by "Link: <...>; rel=\"next\"". */
    tdm_status s = TDM_OK;
    int pages = 0;
    while (url != NULL && s == TDM_OK) {
        if (++pages > TDM_HUB_MAX_PAGES) {
            s = tdm_errf(err, TDM_ERR_PARSE, "more than %d pages", TDM_HUB_MAX_PAGES);
            break;
        }
        char *body = NULL, *next = NULL;
        size_t len = 0;
        tdm_hub_listing page = {0};
        s = tdm_downloader_get(d, url, TDM_HUB_LISTING_MAX, &body, &len, &next, err);
        if (s == TDM_OK)
            s = tdm_hub_parse_tree(body, len, &page, err);
        if (s == TDM_OK)
            s = append_listing(out, &page, err);
        tdm_hub_listing_free(&page);
        free(body);
        free(url);
        url = next;
    }
    free(url);
    if (s != TDM_OK) {
        tdm_err_prefix(err, "listing %s at %s", repo, revision);
        tdm_hub_listing_free(out);
    }
    return s;
}

bool tdm_hub_default_file(const char *path, bool onnx)
{
    static const char *const files[] = {
        "config.json",
        "model.safetensors",
        "modules.json",
        "sentence_bert_config.json",
        "config_sentence_transformers.json",
        "1_Pooling/config.json",
        "2_Normalize/config.json",
        "special_tokens_map.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "vocab.txt",
        "merges.txt",
        "sentencepiece.bpe.model",
        "spiece.model",
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        if (strcmp(path, files[i]) == 0)
            return true;
    return onnx && strcmp(path, "onnx/model.onnx") == 0;
}

bool tdm_hub_glob(const char *glob, const char *path)
{
    return fnmatch(glob, path, 0) == 0;
}

/* ---- pins ----------------------------------------------------------------------------- */

void tdm_hub_pins_free(tdm_hub_pins *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->n; i++)
        free(p->v[i].path);
    free(p->v);
    p->v = NULL;
    p->n = 0;
}

const tdm_hub_pin *tdm_hub_pins_find(const tdm_hub_pins *p, const char *path)
{
    if (p == NULL)
        return NULL;
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->v[i].path, path) == 0)
            return &p->v[i];
    return NULL;
}

/* Splits line at tabs into at most max fields; returns the count. */
static size_t split_tabs(char *line, char **fields, size_t max)
{
    size_t n = 0;
    char *p = line;
    for (;;) {
        if (n == max)
            return max + 1;
        fields[n++] = p;
        char *t = strchr(p, '\t');
        if (t == NULL)
            return n;
        *t = '\0';
        p = t + 1;
    }
}

tdm_status tdm_hub_pins_load(const char *tsv_path, const char *repo, const char *revision,
                             tdm_hub_pins *out, tdm_err *err)
{
    out->v = NULL;
    out->n = 0;
    FILE *f = fopen(tsv_path, "r");
    if (f == NULL)
        return tdm_errf(err, TDM_ERR_IO, "cannot open %s: %s", tsv_path, strerror(errno));
    bool by_commit = is_hex(revision, 40);
    size_t cap = 0, lineno = 0;
    char *line = NULL;
    size_t linecap = 0;
    ssize_t got;
    tdm_status s = TDM_OK;
    while ((got = getline(&line, &linecap, f)) >= 0) {
        lineno++;
        while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r'))
            line[--got] = '\0';
        char *fld[5];
        size_t nf = split_tabs(line, fld, 5);
        if (lineno == 1) {
            if (nf != 5 || strcmp(fld[0], "repo") != 0 || strcmp(fld[1], "commit") != 0 ||
                strcmp(fld[2], "path") != 0 || strcmp(fld[3], "lfs_sha256") != 0 ||
                strcmp(fld[4], "size_bytes") != 0) {
                s = tdm_errf(err, TDM_ERR_PARSE,
                             "%s: line 1: expected the header 'repo commit path lfs_sha256 "
                             "size_bytes' (tab-separated)",
                             tsv_path);
                break;
            }
            continue;
        }
        if (got == 0)
            continue;
        int64_t size = -1;
        char *end = NULL;
        errno = 0;
        long long v = nf == 5 ? strtoll(fld[4], &end, 10) : -1;
        if (nf == 5 && errno == 0 && end != fld[4] && *end == '\0' && v >= 0)
            size = v;
        if (nf != 5 || !is_hex(fld[3], 64) || size < 0 || !tdm_hub_path_safe(fld[2])) {
            s = tdm_errf(err, TDM_ERR_PARSE,
                         "%s: line %zu: expected 5 tab-separated fields with a 64-digit sha256, a "
                         "relative path and a size",
                         tsv_path, lineno);
            break;
        }
        if (strcmp(fld[0], repo) != 0)
            continue;
        if (by_commit && strcasecmp(fld[1], revision) != 0)
            continue;
        tdm_hub_pin *old = (tdm_hub_pin *)tdm_hub_pins_find(out, fld[2]);
        if (old != NULL) {
            if (strcasecmp(old->sha256, fld[3]) != 0 || old->size != size) {
                s = tdm_errf(err, TDM_ERR_PARSE,
                             "%s: line %zu: %s is pinned twice with different digests (commits "
                             "%s and %s); pull a commit with --revision",
                             tsv_path, lineno, fld[2], old->commit, fld[1]);
                break;
            }
            continue;
        }
        if (out->n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            tdm_hub_pin *nv = realloc(out->v, nc * sizeof *nv);
            if (nv == NULL) {
                s = tdm_errf(err, TDM_ERR_NOMEM, "out of memory");
                break;
            }
            out->v = nv;
            cap = nc;
        }
        tdm_hub_pin *p = &out->v[out->n];
        memset(p, 0, sizeof *p);
        p->path = tdm_strdup(fld[2]);
        if (p->path == NULL) {
            s = tdm_errf(err, TDM_ERR_NOMEM, "out of memory");
            break;
        }
        snprintf(p->commit, sizeof p->commit, "%s", fld[1]);
        memcpy(p->sha256, fld[3], 65);
        lower(p->sha256);
        p->size = size;
        out->n++;
    }
    if (s == TDM_OK && ferror(f))
        s = tdm_errf(err, TDM_ERR_IO, "cannot read %s", tsv_path);
    if (s == TDM_OK && lineno == 0)
        s = tdm_errf(err, TDM_ERR_PARSE, "%s: empty file (expected a header line)", tsv_path);
    free(line);
    fclose(f);
    if (s != TDM_OK)
        tdm_hub_pins_free(out);
    return s;
}

tdm_status tdm_hub_expect(const tdm_hub_file *f, const tdm_hub_pin *pin, char sha256[65],
                          tdm_err *err)
{
    sha256[0] = '\0';
    if (pin != NULL) {
        if (f->sha256[0] != '\0' && strcmp(f->sha256, pin->sha256) != 0)
            return tdm_errf(err, TDM_ERR_PARSE,
                            "%s: pinned sha256 %s (commit %.12s) disagrees with the hub's %s",
                            f->path, pin->sha256, pin->commit, f->sha256);
        if (pin->size != f->size)
            return tdm_errf(err, TDM_ERR_PARSE,
                            "%s: pinned size %lld (commit %.12s) disagrees with the hub's %lld",
                            f->path, (long long)pin->size, pin->commit, (long long)f->size);
        memcpy(sha256, pin->sha256, 65);
        return TDM_OK;
    }
    if (f->sha256[0] != '\0')
        memcpy(sha256, f->sha256, 65);
    return TDM_OK;
}

tdm_status tdm_hub_verify_oid(void *user, const char *path, tdm_err *err)
{
    const tdm_hub_file *f = user;
    if (f == NULL || f->oid[0] == '\0')
        return TDM_OK;
    char oid[TDM_GITOID_HEX_LEN + 1];
    tdm_status s = tdm_gitoid_file(path, oid, err);
    if (s != TDM_OK)
        return s;
    if (strcmp(oid, f->oid) != 0)
        return tdm_errf(err, TDM_ERR_PARSE, "%s: git blob id mismatch: expected %s, got %s",
                        f->path, f->oid, oid);
    return TDM_OK;
}

/*
 * hub_server: a stand-in for the Hugging Face hub that serves one folder as
 * one model repository, for testing downloads without the network.
 *
 *   hub_server --root DIR --repo ORG/NAME [--revision REV] [--port N]
 *              [--cut PATH:N] [--corrupt PATH] [--bad-lfs PATH] [--no-range PATH]
 *              [--fail PATH:K] [--token T] [--lfs-min BYTES] [--page N]
 *
 * It answers the two requests a pull makes, in the hub's layout:
 *   GET /api/models/ORG/NAME/tree/REV?recursive=true  JSON listing computed from the files
 *   GET /ORG/NAME/resolve/REV/PATH                    the file, honouring "Range: bytes=A-[B]"
 * A file is LFS (listed with its sha256) when it is at least --lfs-min bytes
 * (default 1 MiB) or ends in .safetensors/.onnx/.bin/.h5; other files are
 * listed with their git blob id only, as on the hub. With --page N the listing
 * comes in pages of N entries linked by "Link: <...&cursor=K>; rel=\"next\"",
 * as the hub paginates large repositories. Resolve answers carry the
 * hub's headers: ETag (sha256 for LFS, blob id otherwise), X-Repo-Commit.
 *
 * With --layout gateway it plays tandem's gateway instead (src/cloud/h_download.c):
 * ROOT/NAME/VERSION/... is listed by GET /v1/models/NAME/versions/VERSION as
 * {"files":[{"path","size","sha256"}]} and served by .../download/PATH with the
 * sha256 as ETag; fault PATHs are then NAME/VERSION/PATH.
 *
 * Faults, each for one file PATH (options may repeat):
 *   --cut PATH:N      the first response for PATH stops after N body bytes and
 *                     the connection is closed (a cut link)
 *   --corrupt PATH    serves PATH with one byte flipped in the middle
 *   --bad-lfs PATH    lists a wrong sha256 for PATH (wrong metadata)
 *   --no-range PATH   ignores Range for PATH: always 200 with the whole file
 *   --fail PATH:K     answers the first K requests for PATH with 503
 *   --token T         every request needs "Authorization: Bearer T" (else 401)
 *
 * It listens on 127.0.0.1 only, on --port (default 0: a free port chosen by
 * the kernel), prints the port on standard out as one line, logs one line per
 * request on standard error ("GET /path range=A- -> 206 bytes=N"), and runs
 * until SIGTERM or SIGINT. Files are read into memory at start: it is meant
 * for small test models.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <microhttpd.h>

#include "base/json.h"
#include "base/sha256.h"
#include "edge/gitoid.h"

#define MAX_FILES 512
#define MAX_FAULTS 32

typedef struct served {
    char *path; /* relative, '/'-separated */
    unsigned char *data;
    size_t size;
    bool lfs;
    char sha256[65];
    char oid[41];
    /* faults */
    long long cut_after; /* -1: none */
    bool cut_used;
    bool corrupt, bad_lfs, no_range;
    int fail_left;
} served;

typedef struct server {
    const char *repo, *revision, *token;
    size_t lfs_min;
    served files[MAX_FILES];
    size_t n;
    char *entries[2 * MAX_FILES]; /* listing entries as JSON: directories, then files */
    size_t nentries;
    size_t page;  /* entries per listing page; 0: one page */
    bool gateway; /* --layout gateway: ROOT/NAME/VERSION/... served as tandem's gateway does */
} server;

static char commit_sha[41];
static unsigned g_port; /* for absolute Link URLs */

static void die(const char *fmt, const char *arg)
{
    fprintf(stderr, "hub_server: ");
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    exit(2);
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static void add_file(server *sv, const char *root, const char *rel)
{
    if (sv->n == MAX_FILES)
        die("more than %s files", "512");
    char full[4096];
    snprintf(full, sizeof full, "%s/%s", root, rel);
    FILE *f = fopen(full, "rb");
    if (f == NULL)
        die("cannot open %s", full);
    struct stat st;
    if (fstat(fileno(f), &st) != 0)
        die("cannot stat %s", full);
    served *s = &sv->files[sv->n++];
    memset(s, 0, sizeof *s);
    s->cut_after = -1;
    s->path = strdup(rel);
    s->size = (size_t)st.st_size;
    s->data = malloc(s->size ? s->size : 1);
    if (s->path == NULL || s->data == NULL || fread(s->data, 1, s->size, f) != s->size)
        die("cannot read %s", full);
    fclose(f);
    uint8_t d[TDM_SHA256_LEN];
    tdm_sha256_buf(s->data, s->size, d);
    tdm_sha256_hex(d, s->sha256);
    s->lfs = s->size >= sv->lfs_min || ends_with(rel, ".safetensors") || ends_with(rel, ".onnx") ||
             ends_with(rel, ".bin") || ends_with(rel, ".h5");
    if (s->lfs) {
        /* The hub lists an LFS file with the blob id of its pointer file. */
        char pointer[256];
        int n = snprintf(pointer, sizeof pointer,
                         "version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize %zu\n",
                         s->sha256, s->size);
        tdm_gitoid_buf(pointer, (size_t)n, s->oid);
    } else {
        tdm_gitoid_buf(s->data, s->size, s->oid);
    }
}

static void walk(server *sv, const char *root, const char *rel)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s%s%s", root, rel[0] ? "/" : "", rel);
    DIR *dp = opendir(dir);
    if (dp == NULL)
        die("cannot open folder %s", dir);
    struct dirent *e;
    char *names[MAX_FILES];
    size_t nn = 0;
    while ((e = readdir(dp)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (nn == MAX_FILES)
            die("too many entries in %s", dir);
        names[nn++] = strdup(e->d_name);
    }
    closedir(dp);
    for (size_t i = 0; i < nn; i++) /* sorted, so the listing is stable */
        for (size_t j = i + 1; j < nn; j++)
            if (strcmp(names[j], names[i]) < 0) {
                char *t = names[i];
                names[i] = names[j];
                names[j] = t;
            }
    for (size_t i = 0; i < nn; i++) {
        char sub[4096], full[4096];
        snprintf(sub, sizeof sub, "%s%s%s", rel, rel[0] ? "/" : "", names[i]);
        snprintf(full, sizeof full, "%s/%s", root, sub);
        struct stat st;
        if (stat(full, &st) != 0)
            die("cannot stat %s", full);
        if (S_ISDIR(st.st_mode))
            walk(sv, root, sub);
        else if (S_ISREG(st.st_mode))
            add_file(sv, root, sub);
        free(names[i]);
    }
}

static served *find(server *sv, const char *path)
{
    for (size_t i = 0; i < sv->n; i++)
        if (strcmp(sv->files[i].path, path) == 0)
            return &sv->files[i];
    return NULL;
}

static served *fault_target(server *sv, const char *arg, const char *opt, long long *num)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", arg);
    if (num != NULL) {
        char *colon = strrchr(buf, ':');
        if (colon == NULL)
            die("%s needs PATH:N", opt);
        *colon = '\0';
        char *end = NULL;
        *num = strtoll(colon + 1, &end, 10);
        if (*end != '\0' || *num < 0)
            die("bad number in %s", arg);
    }
    served *s = find(sv, buf);
    if (s == NULL)
        die("no file %s to inject a fault into", buf);
    return s;
}

static void raw(tdm_json_buf *b, const char *s)
{
    tdm_json_buf_raw(b, s, strlen(s));
}

/* One listing entry as JSON, appended to the entry list. */
static void add_entry(server *sv, tdm_json_buf *b)
{
    if (b->failed || sv->nentries == 2 * MAX_FILES)
        die("out of memory building the %s", "listing");
    sv->entries[sv->nentries++] = b->data;
}

static void build_tree(server *sv)
{
    /* Directory entries first, as the hub lists them; clients must skip them. */
    for (size_t i = 0; i < sv->n; i++) {
        const char *slash = strrchr(sv->files[i].path, '/');
        if (slash == NULL)
            continue;
        size_t dl = (size_t)(slash - sv->files[i].path);
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = strncmp(sv->files[j].path, sv->files[i].path, dl) == 0 &&
                   sv->files[j].path[dl] == '/' && strchr(sv->files[j].path + dl + 1, '/') == NULL;
        if (seen)
            continue;
        tdm_json_buf b = {0};
        raw(&b, "{\"type\":\"directory\",\"oid\":\"");
        tdm_json_buf_raw(&b, sv->files[i].oid, 40);
        raw(&b, "\",\"size\":0,\"path\":");
        tdm_json_buf_string(&b, sv->files[i].path, dl);
        raw(&b, "}");
        add_entry(sv, &b);
    }
    for (size_t i = 0; i < sv->n; i++) {
        served *s = &sv->files[i];
        tdm_json_buf b = {0};
        raw(&b, "{\"type\":\"file\",\"oid\":\"");
        tdm_json_buf_raw(&b, s->oid, 40);
        raw(&b, "\",\"size\":");
        tdm_json_buf_i64(&b, (int64_t)s->size);
        if (s->lfs) {
            char sha[65];
            memcpy(sha, s->sha256, 65);
            if (s->bad_lfs) /* a wrong digest of the right shape */
                sha[0] = sha[0] == '0' ? '1' : '0';
            raw(&b, ",\"lfs\":{\"oid\":\"");
            tdm_json_buf_raw(&b, sha, 64);
            raw(&b, "\",\"size\":");
            tdm_json_buf_i64(&b, (int64_t)s->size);
            raw(&b, ",\"pointerSize\":133}");
        }
        raw(&b, ",\"path\":");
        tdm_json_buf_string(&b, s->path, strlen(s->path));
        raw(&b, "}");
        add_entry(sv, &b);
    }
}

/* The listing from entry cursor on: all of it, or one page with a Link to the next. */
static enum MHD_Result send_listing(server *sv, struct MHD_Connection *conn, const char *url)
{
    const char *cur = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "cursor");
    size_t from = cur ? (size_t)strtoull(cur, NULL, 10) : 0;
    if (from > sv->nentries)
        from = sv->nentries;
    size_t to = sv->page > 0 && from + sv->page < sv->nentries ? from + sv->page : sv->nentries;
    tdm_json_buf b = {0};
    raw(&b, "[");
    for (size_t i = from; i < to; i++) {
        if (i > from)
            raw(&b, ",");
        raw(&b, sv->entries[i]);
    }
    raw(&b, "]");
    if (b.failed)
        return MHD_NO;
    struct MHD_Response *r = MHD_create_response_from_buffer(b.len, b.data, MHD_RESPMEM_MUST_COPY);
    tdm_json_buf_free(&b);
    MHD_add_response_header(r, "Content-Type", "application/json");
    if (to < sv->nentries) {
        char link[1024];
        snprintf(link, sizeof link,
                 "<http://127.0.0.1:%u/api/models/%s/tree/%s?recursive=true&cursor=%zu>; "
                 "rel=\"next\"",
                 g_port, sv->repo, sv->revision, to);
        MHD_add_response_header(r, "Link", link);
    }
    enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    fprintf(stderr, "GET %s cursor=%zu -> 200 listing of %zu entries\n", url, from, to - from);
    return ret;
}

/* ---- responses ---------------------------------------------------------------------- */

typedef struct cut_body {
    const unsigned char *data;
    size_t len;
    size_t cut;
    unsigned char *owned; /* a corrupted copy, freed with the body */
} cut_body;

static void cut_free(void *cls)
{
    cut_body *c = cls;
    free(c->owned);
    free(c);
}

static ssize_t cut_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    cut_body *c = cls;
    if (pos >= c->cut)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    size_t n = c->cut - (size_t)pos;
    if (n > max)
        n = max;
    memcpy(buf, c->data + pos, n);
    return (ssize_t)n;
}

static enum MHD_Result send_text(struct MHD_Connection *conn, unsigned code, const char *msg)
{
    char body[512];
    snprintf(body, sizeof body, "{\"error\":\"%s\"}", msg);
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result ret = MHD_queue_response(conn, code, r);
    MHD_destroy_response(r);
    return ret;
}

static bool parse_range(const char *h, size_t size, size_t *a, size_t *b)
{
    if (strncmp(h, "bytes=", 6) != 0)
        return false;
    char *end = NULL;
    unsigned long long x = strtoull(h + 6, &end, 10);
    if (end == h + 6 || *end != '-')
        return false;
    unsigned long long y = size ? size - 1 : 0;
    if (end[1] != '\0') {
        char *e2 = NULL;
        y = strtoull(end + 1, &e2, 10);
        if (*e2 != '\0' || y < x)
            return false;
        if (size > 0 && y > size - 1)
            y = size - 1;
    }
    *a = (size_t)x;
    *b = (size_t)y;
    return true;
}

static enum MHD_Result serve_file(server *sv, struct MHD_Connection *conn, served *s,
                                  const char *url)
{
    if (s->fail_left > 0) {
        s->fail_left--;
        fprintf(stderr, "GET %s -> 503 (injected)\n", url);
        return send_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "injected failure");
    }
    const unsigned char *data = s->data;
    unsigned char *bad = NULL;
    if (s->corrupt && s->size > 0) {
        bad = malloc(s->size);
        if (bad == NULL)
            return MHD_NO;
        memcpy(bad, s->data, s->size);
        bad[s->size / 2] ^= 0x5a;
        data = bad;
    }
    const char *range = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Range");
    size_t a = 0, b = s->size ? s->size - 1 : 0, len = s->size;
    unsigned code = MHD_HTTP_OK;
    if (range != NULL && !s->no_range) {
        if (!parse_range(range, s->size, &a, &b)) {
            free(bad);
            return send_text(conn, MHD_HTTP_BAD_REQUEST, "bad range");
        }
        if (a >= s->size) {
            char cr[64];
            snprintf(cr, sizeof cr, "bytes */%zu", s->size);
            struct MHD_Response *r = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
            MHD_add_response_header(r, "Content-Range", cr);
            enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_RANGE_NOT_SATISFIABLE, r);
            MHD_destroy_response(r);
            fprintf(stderr, "GET %s range=%s -> 416\n", url, range + 6);
            free(bad);
            return ret;
        }
        code = MHD_HTTP_PARTIAL_CONTENT;
        len = b - a + 1;
    }
    struct MHD_Response *r;
    bool cut = s->cut_after >= 0 && !s->cut_used && (size_t)s->cut_after < len;
    if (cut) {
        s->cut_used = true;
        cut_body *c = malloc(sizeof *c);
        if (c == NULL)
            return MHD_NO;
        c->data = data + a;
        c->len = len;
        c->cut = (size_t)s->cut_after;
        c->owned = bad; /* the body outlives this call */
        r = MHD_create_response_from_callback(len, 4096, cut_reader, c, cut_free);
    } else {
        r = MHD_create_response_from_buffer(len, (void *)(data + a), MHD_RESPMEM_MUST_COPY);
        free(bad);
    }
    if (r == NULL)
        return MHD_NO;
    char etag[80];
    snprintf(etag, sizeof etag, "\"%s\"", s->lfs || sv->gateway ? s->sha256 : s->oid);
    MHD_add_response_header(r, "ETag", etag);
    MHD_add_response_header(r, "X-Repo-Commit", commit_sha);
    MHD_add_response_header(r, "Accept-Ranges", "bytes");
    if (code == MHD_HTTP_PARTIAL_CONTENT) {
        char cr[96];
        snprintf(cr, sizeof cr, "bytes %zu-%zu/%zu", a, b, s->size);
        MHD_add_response_header(r, "Content-Range", cr);
    }
    enum MHD_Result ret = MHD_queue_response(conn, code, r);
    MHD_destroy_response(r);
    fprintf(stderr, "GET %s range=%s -> %u bytes=%zu%s\n", url, range ? range + 6 : "none", code,
            len, cut ? " (cut)" : "");
    return ret;
}

/* tandem's gateway: GET /v1/models/N/versions/V[/download] lists, .../download/PATH serves. */
static enum MHD_Result gateway_request(server *sv, struct MHD_Connection *conn, const char *url)
{
    char name[256], version[256];
    int off = 0;
    if (sscanf(url, "/v1/models/%255[^/]/versions/%255[^/]%n", name, version, &off) != 2) {
        fprintf(stderr, "GET %s -> 404\n", url);
        return send_text(conn, MHD_HTTP_NOT_FOUND, "no such route");
    }
    const char *rest = url + off;
    char prefix[600];
    snprintf(prefix, sizeof prefix, "%s/%s/", name, version);
    size_t pl = strlen(prefix);
    if (strcmp(rest, "") == 0 || strcmp(rest, "/download") == 0) {
        tdm_json_buf b = {0};
        raw(&b, "{\"model\":");
        tdm_json_buf_string(&b, name, strlen(name));
        raw(&b, ",\"version\":");
        tdm_json_buf_string(&b, version, strlen(version));
        raw(&b, ",\"files\":[");
        int k = 0;
        for (size_t i = 0; i < sv->n; i++) {
            served *s = &sv->files[i];
            if (strncmp(s->path, prefix, pl) != 0)
                continue;
            raw(&b, k++ ? ",{\"path\":" : "{\"path\":");
            tdm_json_buf_string(&b, s->path + pl, strlen(s->path + pl));
            raw(&b, ",\"size\":");
            tdm_json_buf_i64(&b, (int64_t)s->size);
            raw(&b, ",\"sha256\":\"");
            tdm_json_buf_raw(&b, s->sha256, 64);
            raw(&b, "\"}");
        }
        raw(&b, "]}");
        if (k == 0) {
            tdm_json_buf_free(&b);
            fprintf(stderr, "GET %s -> 404\n", url);
            return send_text(conn, MHD_HTTP_NOT_FOUND, "unknown model or version");
        }
        struct MHD_Response *r =
            MHD_create_response_from_buffer(b.len, b.data, MHD_RESPMEM_MUST_COPY);
        tdm_json_buf_free(&b);
        MHD_add_response_header(r, "Content-Type", "application/json");
        enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_OK, r);
        MHD_destroy_response(r);
        fprintf(stderr, "GET %s -> 200 listing\n", url);
        return ret;
    }
    if (strncmp(rest, "/download/", 10) == 0) {
        char full[1024];
        snprintf(full, sizeof full, "%s%s", prefix, rest + 10);
        served *s = find(sv, full);
        if (s != NULL)
            return serve_file(sv, conn, s, url);
    }
    fprintf(stderr, "GET %s -> 404\n", url);
    return send_text(conn, MHD_HTTP_NOT_FOUND, "no such file");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    server *sv = cls;
    (void)version;
    (void)upload_data;
    static int first_call_marker;
    /* Answering at the first call (before MHD has read the whole request) would make MHD
     * close the connection; answering at the second keeps it alive for the next file. */
    if (*con_cls == NULL) {
        *con_cls = &first_call_marker;
        return MHD_YES;
    }
    if (*upload_data_size != 0) {
        *upload_data_size = 0; /* ignore a body */
        return MHD_YES;
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return send_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed");
    if (sv->token != NULL) {
        const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
        char want[512];
        snprintf(want, sizeof want, "Bearer %s", sv->token);
        if (auth == NULL || strcmp(auth, want) != 0) {
            fprintf(stderr, "GET %s -> 401\n", url);
            return send_text(conn, MHD_HTTP_UNAUTHORIZED, "invalid token");
        }
    }
    if (sv->gateway)
        return gateway_request(sv, conn, url);
    char prefix[1024];
    snprintf(prefix, sizeof prefix, "/api/models/%s/tree/%s", sv->repo, sv->revision);
    if (strcmp(url, prefix) == 0)
        return send_listing(sv, conn, url);
    snprintf(prefix, sizeof prefix, "/%s/resolve/%s/", sv->repo, sv->revision);
    size_t pl = strlen(prefix);
    if (strncmp(url, prefix, pl) == 0) {
        served *s = find(sv, url + pl);
        if (s != NULL)
            return serve_file(sv, conn, s, url);
    }
    fprintf(stderr, "GET %s -> 404\n", url);
    return send_text(conn, MHD_HTTP_NOT_FOUND, "Entry not found");
}

int main(int argc, char **argv)
{
    static server sv;
    const char *root = NULL;
    long port = 0;
    sv.revision = "main";
    sv.lfs_min = 1 << 20;
    /* Options naming files are applied after the folder is read. */
    const char *faults[MAX_FAULTS][2];
    int nf = 0;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        if (i + 1 >= argc)
            die("option %s needs a value", o);
        const char *v = argv[++i];
        if (strcmp(o, "--root") == 0)
            root = v;
        else if (strcmp(o, "--repo") == 0)
            sv.repo = v;
        else if (strcmp(o, "--revision") == 0)
            sv.revision = v;
        else if (strcmp(o, "--token") == 0)
            sv.token = v;
        else if (strcmp(o, "--port") == 0)
            port = strtol(v, NULL, 10);
        else if (strcmp(o, "--layout") == 0)
            sv.gateway = strcmp(v, "gateway") == 0;
        else if (strcmp(o, "--page") == 0)
            sv.page = (size_t)strtoull(v, NULL, 10);
        else if (strcmp(o, "--lfs-min") == 0)
            sv.lfs_min = (size_t)strtoull(v, NULL, 10);
        else if (strcmp(o, "--cut") == 0 || strcmp(o, "--corrupt") == 0 ||
                 strcmp(o, "--bad-lfs") == 0 || strcmp(o, "--no-range") == 0 ||
                 strcmp(o, "--fail") == 0) {
            if (nf == MAX_FAULTS)
                die("too many faults (%s)", "32");
            faults[nf][0] = o;
            faults[nf][1] = v;
            nf++;
        } else
            die("unknown option %s", o);
    }
    if (sv.gateway && sv.repo == NULL)
        sv.repo = "-";
    if (root == NULL || sv.repo == NULL)
        die("usage: hub_server --root DIR --repo ORG/NAME [options] (%s)", "see the source");
    walk(&sv, root, "");
    for (int i = 0; i < nf; i++) {
        long long num = 0;
        const char *o = faults[i][0];
        bool numbered = strcmp(o, "--cut") == 0 || strcmp(o, "--fail") == 0;
        served *s = fault_target(&sv, faults[i][1], o, numbered ? &num : NULL);
        if (strcmp(o, "--cut") == 0)
            s->cut_after = num;
        else if (strcmp(o, "--fail") == 0)
            s->fail_left = (int)num;
        else if (strcmp(o, "--corrupt") == 0)
            s->corrupt = true;
        else if (strcmp(o, "--bad-lfs") == 0)
            s->bad_lfs = true;
        else
            s->no_range = true;
    }
    build_tree(&sv);
    tdm_sha1_ctx c; /* a stable fake commit id: the blob ids of the files */
    tdm_sha1_init(&c);
    for (size_t i = 0; i < sv.n; i++)
        tdm_sha1_update(&c, sv.files[i].oid, 40);
    tdm_sha1_final_hex(&c, commit_sha);

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* MHD's thread inherits the mask */
    signal(SIGPIPE, SIG_IGN);

    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct MHD_Daemon *d =
        MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, (uint16_t)port, NULL,
                         NULL, on_request, &sv, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                         MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_END);
    if (d == NULL)
        die("cannot listen on port %s", port ? "given" : "0");
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    g_port = info->port;
    printf("%u\n", g_port);
    fflush(stdout);
    int sig = 0;
    sigwait(&set, &sig);
    MHD_stop_daemon(d);
    for (size_t i = 0; i < sv.n; i++) {
        free(sv.files[i].path);
        free(sv.files[i].data);
    }
    for (size_t i = 0; i < sv.nentries; i++)
        free(sv.entries[i]);
    return 0;
}

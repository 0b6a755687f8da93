/*
 * Downloads against a real HTTP server on loopback (tests/support/hub_server,
 * started as a child per test with the fault it needs): plain and reused
 * connections, resume after a cut link (next call and same call), a corrupted
 * body refused without leaving a file, a server that ignores Range (200), a
 * part that is already complete or too long (416), size limits, 5xx retries,
 * 404, bearer tokens, ETag checks; then the hub client: listing, wrong LFS
 * metadata, pinned digests, safe paths, URLs and git blob ids.
 *
 * The served repository is generated in a temporary folder, so the test needs
 * nothing from ../shared.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/sha256.h"
#include "support/hub_child.h"
#include "edge/gitoid.h"
#include "edge/hub.h"
#include "tandem/download.h"

#define BIG_SIZE 300000
#define SMALL_SIZE 1000

static char g_root[256]; /* the served repository */
static char g_work[256]; /* where downloads go */
static unsigned char g_big[BIG_SIZE];
static char g_big_sha[65];
static char g_small[SMALL_SIZE];

typedef hub_child server;

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static size_t read_file(const char *path, unsigned char *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return (size_t)-1;
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static int64_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (int64_t)st.st_size : -1;
}

static int setup_all(void **state)
{
    (void)state;
    snprintf(g_root, sizeof g_root, "/tmp/tdm_dl_root_XXXXXX");
    if (mkdtemp(g_root) == NULL)
        return -1;
    uint32_t x = 12345;
    for (size_t i = 0; i < BIG_SIZE; i++) {
        x = x * 1664525u + 1013904223u;
        g_big[i] = (unsigned char)(x >> 24);
    }
    for (size_t i = 0; i < SMALL_SIZE; i++)
        g_small[i] = (char)('a' + i % 26);
    uint8_t d[TDM_SHA256_LEN];
    tdm_sha256_buf(g_big, BIG_SIZE, d);
    tdm_sha256_hex(d, g_big_sha);
    char p[512];
    snprintf(p, sizeof p, "%s/big.bin", g_root);
    write_file(p, g_big, BIG_SIZE);
    snprintf(p, sizeof p, "%s/small.txt", g_root);
    write_file(p, g_small, SMALL_SIZE);
    snprintf(p, sizeof p, "%s/sub", g_root);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/sub/a b.json", g_root);
    write_file(p, "{}\n", 3);
    return 0;
}

static int teardown_all(void **state)
{
    (void)state;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_root);
    return system(cmd) == 0 ? 0 : -1;
}

static int setup(void **state)
{
    (void)state;
    snprintf(g_work, sizeof g_work, "/tmp/tdm_dl_work_XXXXXX");
    return mkdtemp(g_work) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_work);
    return system(cmd) == 0 ? 0 : -1;
}

/* Starts hub_server serving g_root as acme/tiny with extra args (NULL-terminated). */
static void server_start(server *s, ...)
{
    const char *args[32] = {"--root", g_root, "--repo", "acme/tiny"};
    int n = 4;
    va_list ap;
    va_start(ap, s);
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL && n < 31)
        args[n++] = a;
    va_end(ap);
    args[n] = NULL;
    char log[512];
    snprintf(log, sizeof log, "%s/server.log", g_work);
    if (!hub_child_start(s, args, log))
        fail_msg("hub_server did not start");
}

static void server_stop(server *s)
{
    hub_child_stop(s);
}

static bool log_has(const server *s, const char *needle)
{
    return hub_child_log_has(s, needle);
}

static tdm_downloader *make(int retries, const char *token)
{
    tdm_download_opts o = {0};
    o.max_retries = retries;
    o.backoff_ms = 5;
    o.connect_timeout_ms = 2000;
    o.stall_timeout_s = 5;
    o.bearer_token = token;
    tdm_downloader *d = NULL;
    tdm_err err;
    assert_int_equal(tdm_downloader_create(&o, &d, &err), TDM_OK);
    return d;
}

typedef struct job {
    char url[512];
    char dest[512];
    char part[520];
    tdm_download_req req;
} job;

static void job_init(job *j, const server *s, const char *file, const char *sha, int64_t size)
{
    memset(j, 0, sizeof *j);
    snprintf(j->url, sizeof j->url, "%s/acme/tiny/resolve/main/%s", s->base, file);
    snprintf(j->dest, sizeof j->dest, "%s/out/%s", g_work, file);
    snprintf(j->part, sizeof j->part, "%s.part", j->dest);
    j->req.url = j->url;
    j->req.dest = j->dest;
    j->req.name = file;
    j->req.sha256 = sha;
    j->req.size = size;
}

static void assert_big_exact(const char *path)
{
    static unsigned char buf[BIG_SIZE + 16];
    assert_int_equal(read_file(path, buf, sizeof buf), BIG_SIZE);
    assert_memory_equal(buf, g_big, BIG_SIZE);
}

static void write_part(const char *part, const void *data, size_t len)
{
    char dir[520];
    snprintf(dir, sizeof dir, "%s/out", g_work);
    mkdir(dir, 0755);
    write_file(part, data, len);
}

/* ---- downloads ---------------------------------------------------------------------- */

static void test_plain_and_reuse(void **state)
{
    (void)state;
    server s;
    server_start(&s, NULL);
    tdm_downloader *d = make(0, NULL);
    job j;
    job_init(&j, &s, "big.bin", g_big_sha, BIG_SIZE);
    tdm_download_result r;
    tdm_err err;
    assert_int_equal(tdm_downloader_fetch(d, &j.req, &r, &err), TDM_OK);
    assert_big_exact(j.dest);
    assert_false(exists(j.part));
    assert_string_equal(r.sha256, g_big_sha);
    assert_int_equal(r.fetched, BIG_SIZE);
    assert_int_equal(r.attempts, 1);
    assert_int_equal(r.new_connections, 1);
    assert_false(r.present);
    /* A second file through the same downloader reuses the connection. */
    job k;
    job_init(&k, &s, "small.txt", NULL, SMALL_SIZE);
    assert_int_equal(tdm_downloader_fetch(d, &k.req, &r, &err), TDM_OK);
    assert_int_equal(r.new_connections, 0);
    assert_int_equal(r.bytes, SMALL_SIZE);
    /* Present with the right digest: nothing fetched. */
    assert_int_equal(tdm_downloader_fetch(d, &j.req, &r, &err), TDM_OK);
    assert_true(r.present);
    assert_int_equal(r.attempts, 0);
    assert_int_equal(r.fetched, 0);
    tdm_downloader_free(d);
    server_stop(&s);
}

static void test_resume_next_call(void **state)
{
    (void)state;
    server s;
    server_start(&s, "--cut", "big.bin:100000", NULL);
    tdm_downloader *d = make(-1, NULL); /* no retries: the cut ends the call */
    job j;
    job_init(&j, &s, "big.bin", g_big_sha, BIG_SIZE);
    tdm_download_result r;
    tdm_err err;
    assert_int_equal(tdm_downloader_fetch(d, &j.req, &r, &err), TDM_ERR_IO);
    assert_non_null(strstr(err.msg, "big.bin"));
    assert_false(exists(j.dest));
    assert_int_equal(file_size(j.part), 100000);
    assert_int_equal(tdm_downloader_fetch(d, &j.req, &r, &err), TDM_OK);
    assert_int_equal(r.resumed_from, 100000);
    assert_int_equal(r.fetched, BIG_SIZE - 100000);
    assert_big_exact(j.dest);
    assert_false(exists(j.part));
    assert_true(log_has(&s, "range=100000- -> 206"));
    tdm_downloader_free(d);
    server_stop(&s);
}

static void test_resume_same_call(void **state)
{
    (void)state;
    server s;
    server_start(&s, "--cut", "big.bin:65536", NULL);
    tdm_downloader *d = make(2, NULL);
    job j;
    job_init(&j, &s, "big.bin", g_big_sha, BIG_SIZE);
    tdm_download_result r;
    tdm_err err;
    assert_int_equal(tdm_downloader_fetch(d, &j.req, &r, &err), TDM_OK);
    assert_int_equal(r.attempts, 2);
    assert_int_equal(r.fetched, BIG_SIZE);
    assert_big_exact(j.dest);
    assert_true(log_has(&s, "range=65536- -> 206"));
    tdm_downloader_free(d);
    server_stop(&s);
}

static void test_corrupt_refused(void **state)
{
    (void)state;
    server s;
    server_start(&s, "--corrupt", "big.bin", NULL);
    tdm_downloader *d = make(0, NULL);
    job j;
    job_init(&j, &s, "big.bin", g_big_sha, BIG_SIZE);
    write_part(j.dest, "old", 3); /* an older DEST must survive a refused download */
    tdm_download_result r;
    tdm_err err;
    assert_int_equal(tdm_downloader_fetch(d, &j.req, &r, &err), TDM_ERR_PARSE);
    assert_non_null(strstr(err.msg, "big.bin"));
    assert_non_null(strstr(err.msg, "sha256 mismatch"));
    assert_non_null(strstr(err.msg, g_big_sha));
    assert_non_null(strstr(err.msg, r.sha256)); /* the actual digest */
    assert_string_not_equal(r.sha256, g_big_sha);
    assert_false(exists(j.part));
    unsigned char buf[8];
    assert_int_equal(read_file(j.dest, buf, sizeof buf), 3);
    assert_memory_equal(buf, "old", 3);
    /* Without an expected digest, an ETag that is a sha256 (gateway style) still catches it. */
    unlink(j.dest);
    j.req.sha256 = NULL;
    j.req.etag_is_sha256 = true;
    assert_int_equal(tdm_downloader_fetch(d, &j.req, &r, &err), TDM_ERR_PARSE);
    assert_non_null(strstr(err.msg, "ETag"));
    assert_false(exists(j.dest));
    assert_false(exists(j.part));
    tdm_downloader_free(d);
    server_stop(&s);
}

static void test_server_ignores_range(void **state)
{
    (void)state;
    server s;
    server_start(&s, "--no-range", "big.bin", NULL);
    tdm_downloader *d = make(0, NULL);
    job j;
    job_init(&j, &s, "big.bin", g_big_sha, BIG_SIZE);
    write_part(j.part, g_big, 5000);
    tdm_download_result r;
    tdm_err err;
    assert_int_equal(tdm_downloader_fetch(d, &j.req, &r, &err), TDM_OK);
    assert_int_equal(r.resumed_from, 0);
    assert_int_equal(r.fetched, BIG_SIZE);
    assert_big_exact(j.dest);
    assert_true(log_has(&s, "range=5000- -> 200"));
    tdm_downloader_free(d);
    server_stop(&s);
}

static void test_part_complete_416(void **state)
{
    (void)state;
    server s;
    server_start(&s, NULL);
    tdm_downloader *d = make(0, NULL);
    job j;
    job_init(&j, &s, "big.bin", g_big_sha, BIG_SIZE);
    write_part(j.part, g_big, BIG_SIZE); /* complete, but a crash came before the rename */
    tdm_download_result r;
    tdm_err err;
    assert_int_equal(tdm_downloader_fetch(d, &j.req, &r, &err), TDM_OK);
    assert_int_equal(r.fetched, 0);
    assert_int_equal(r.resumed_from, BIG_SIZE);
    assert_big_exact(j.dest);
    assert_true(log_has(&s, "range=300000- -> 416"));
    tdm_downloader_free(d);
    server_stop(&s);
}

static void test_part_too_long_416(void **state)
{
    (void)state;
    server s;
    server_start(&s, NULL);
    tdm_downloader *d = make(-1, NULL); /* a restart spends no retry */
    job j;
    job_init(&j, &s, "big.bin", g_big_sha, -1); /* size unknown: the server must tell */
    static unsigned char longer[BIG_SIZE + 10];
    memcpy(longer, g_big, BIG_SIZE);
    memset(longer + BIG_SIZE, 'x', 10);
    write_part(j.part, longer, sizeof longer);
    tdm_download_result r;
    tdm_err err;
    assert_int_equal(tdm_downloader_fetch(d, &j.req, &r, &err), TDM_OK);
    assert_int_equal(r.fetched, BIG_SIZE);
    assert_int_equal(r.attempts, 2);
    assert_big_exact(j.dest);
    assert_true(log_has(&s, "range=300010- -> 416"));
    /* With the size known, a too-long part is dropped without asking. */
    unlink(j.dest);
    write_part(j.part, longer, sizeof longer);
    j.req.size = BIG_SIZE;
    assert_int_equal(tdm_downloader_fetch(d, &j.req, &r, &err), TDM_OK);
    assert_int_equal(r.attempts, 1);
    assert_big_exact(j.dest);
    tdm_downloader_free(d);
    server_stop(&s);
}

static void test_size_limits(void **state)
{
    (void)state;
    server s;
    server_start(&s, NULL);
    tdm_downloader *d = make(0, NULL);
    job j;
    job_init(&j, &s, "big.bin", NULL, BIG_SIZE + 1);
    tdm_download_result r;
    tdm_err err;
    assert_int_equal(tdm_downloader_fetch(d, &j.req, &r, &err), TDM_ERR_PARSE);
    assert_non_null(strstr(err.msg, "size mismatch"));
    assert_false(exists(j.dest));
    assert_false(exists(j.part));
    job_init(&j, &s, "big.bin", NULL, -1);
    j.req.max_bytes = BIG_SIZE - 1;
    assert_int_equal(tdm_downloader_fetch(d, &j.req, &r, &err), TDM_ERR_PARSE);
    assert_non_null(strstr(err.msg, "limit"));
    assert_false(exists(j.dest));
    assert_false(exists(j.part));
    /* Bad requests are refused before any I/O. */
    j.req.sha256 = "abc";
    assert_int_equal(tdm_downloader_fetch(d, &j.req, &r, &err), TDM_ERR_INVALID_ARG);
    tdm_downloader_free(d);
    server_stop(&s);
}

static void test_part_locked(void **state)
{
    (void)state;
    server s;
    server_start(&s, NULL);
    tdm_downloader *d = make(0, NULL);
    job j;
    job_init(&j, &s, "big.bin", g_big_sha, BIG_SIZE);
    write_part(j.part, g_big, 1000);
    int fd = open(j.part, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(flock(fd, LOCK_EX), 0); /* another download holds the part */
    tdm_download_result r;
    tdm_err err;
    assert_int_equal(tdm_downloader_fetch(d, &j.req, &r, &err), TDM_ERR_IO);
    assert_non_null(strstr(err.msg, "being written by another download"));
    assert_int_equal(file_size(j.part), 1000); /* untouched */
    assert_false(exists(j.dest));
    close(fd);
    assert_int_equal(tdm_downloader_fetch(d, &j.req, &r, &err), TDM_OK);
    assert_int_equal(r.resumed_from, 1000);
    assert_big_exact(j.dest);
    tdm_downloader_free(d);
    server_stop(&s);
}

static void test_retries_and_errors(void **state)
{
    (void)state;
    server s;
    server_start(&s, "--fail", "big.bin:2", "--fail", "small.txt:5", NULL);
    tdm_downloader *d = make(3, NULL);
    job j;
    job_init(&j, &s, "big.bin", g_big_sha, BIG_SIZE);
    tdm_download_result r;
    tdm_err err;
    assert_int_equal(tdm_downloader_fetch(d, &j.req, &r, &err), TDM_OK);
    assert_int_equal(r.attempts, 3);
    assert_big_exact(j.dest);
    tdm_downloader_free(d);
    d = make(1, NULL);
    job_init(&j, &s, "small.txt", NULL, -1);
    assert_int_equal(tdm_downloader_fetch(d, &j.req, &r, &err), TDM_ERR_IO);
    assert_int_equal(r.attempts, 2);
    assert_non_null(strstr(err.msg, "HTTP 503"));
    assert_non_null(strstr(err.msg, "gave up after 2 attempts"));
    job_init(&j, &s, "missing.txt", NULL, -1);
    assert_int_equal(tdm_downloader_fetch(d, &j.req, &r, &err), TDM_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, "HTTP 404"));
    assert_false(exists(j.dest));
    tdm_downloader_free(d);
    server_stop(&s);
    /* Nobody listens any more: a clear network error, not a hang. */
    d = make(-1, NULL);
    assert_int_equal(tdm_downloader_fetch(d, &j.req, &r, &err), TDM_ERR_IO);
    assert_non_null(strstr(err.msg, "missing.txt"));
    tdm_downloader_free(d);
}

static void test_bearer_token(void **state)
{
    (void)state;
    server s;
    server_start(&s, "--token", "s3cret", NULL);
    tdm_downloader *d = make(0, NULL);
    job j;
    job_init(&j, &s, "small.txt", NULL, SMALL_SIZE);
    tdm_download_result r;
    tdm_err err;
    assert_int_equal(tdm_downloader_fetch(d, &j.req, &r, &err), TDM_ERR_IO);
    assert_non_null(strstr(err.msg, "HTTP 401"));
    assert_non_null(strstr(err.msg, "not authorised"));
    tdm_downloader_free(d);
    d = make(0, "s3cret");
    assert_int_equal(tdm_downloader_fetch(d, &j.req, &r, &err), TDM_OK);
    assert_int_equal(r.bytes, SMALL_SIZE);
    tdm_downloader_free(d);
    tdm_download_opts o = {0};
    o.bearer_token = "bad\r\nX-Injected: 1";
    assert_int_equal(tdm_downloader_create(&o, &d, &err), TDM_ERR_INVALID_ARG);
    server_stop(&s);
}

/* ---- hub client --------------------------------------------------------------------- */

static const tdm_hub_file *find_file(const tdm_hub_listing *l, const char *path)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->files[i].path, path) == 0)
            return &l->files[i];
    return NULL;
}

static void test_hub_listing(void **state)
{
    (void)state;
    server s;
    server_start(&s, "--bad-lfs", "big.bin", NULL);
    tdm_downloader *d = make(0, NULL);
    tdm_hub_listing l;
    tdm_err err;
    assert_int_equal(tdm_hub_list(d, s.base, "acme/tiny", "main", &l, &err), TDM_OK);
    assert_int_equal(l.n, 3); /* the "sub" directory entry is skipped */
    const tdm_hub_file *big = find_file(&l, "big.bin");
    const tdm_hub_file *small = find_file(&l, "small.txt");
    const tdm_hub_file *sub = find_file(&l, "sub/a b.json");
    assert_non_null(big);
    assert_non_null(small);
    assert_non_null(sub);
    assert_true(big->lfs);
    assert_int_equal(big->size, BIG_SIZE);
    assert_string_not_equal(big->sha256, g_big_sha); /* --bad-lfs */
    assert_false(small->lfs);
    assert_string_equal(small->sha256, "");
    char oid[41];
    tdm_gitoid_buf(g_small, SMALL_SIZE, oid);
    assert_string_equal(small->oid, oid);
    /* Wrong LFS metadata: the right bytes are refused. */
    char *url = tdm_hub_resolve_url(s.base, "acme/tiny", "main", "big.bin");
    char dest[512];
    snprintf(dest, sizeof dest, "%s/big.bin", g_work);
    tdm_download_req req = {.url = url, .dest = dest, .sha256 = big->sha256, .size = big->size};
    assert_int_equal(tdm_downloader_fetch(d, &req, NULL, &err), TDM_ERR_PARSE);
    assert_false(exists(dest));
    free(url);
    /* A path with a space is percent-encoded and served. */
    url = tdm_hub_resolve_url(s.base, "acme/tiny", "main", sub->path);
    assert_non_null(strstr(url, "/sub/a%20b.json"));
    snprintf(dest, sizeof dest, "%s/sub/a b.json", g_work);
    tdm_download_req req2 = {
        .url = url, .dest = dest, .size = 3, .user = (void *)sub, .verify = tdm_hub_verify_oid};
    assert_int_equal(tdm_downloader_fetch(d, &req2, NULL, &err), TDM_OK);
    free(url);
    /* A git blob id that does not match refuses the file. */
    tdm_hub_file fake = *small;
    memset(fake.oid, 'a', 40);
    url = tdm_hub_resolve_url(s.base, "acme/tiny", "main", "small.txt");
    snprintf(dest, sizeof dest, "%s/small.txt", g_work);
    tdm_download_req req3 = {
        .url = url, .dest = dest, .size = -1, .user = &fake, .verify = tdm_hub_verify_oid};
    assert_int_equal(tdm_downloader_fetch(d, &req3, NULL, &err), TDM_ERR_PARSE);
    assert_non_null(strstr(err.msg, "git blob id mismatch"));
    assert_false(exists(dest));
    free(url);
    tdm_hub_listing_free(&l);
    /* Unknown revision: 404 names the repository. */
    assert_int_equal(tdm_hub_list(d, s.base, "acme/tiny", "v9", &l, &err), TDM_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, "acme/tiny"));
    tdm_downloader_free(d);
    server_stop(&s);
}

static void test_hub_paged(void **state)
{
    (void)state;
    server s;
    server_start(&s, "--page", "1", NULL); /* 4 entries: 1 directory, 3 files */
    tdm_downloader *d = make(0, NULL);
    tdm_hub_listing l;
    tdm_err err;
    assert_int_equal(tdm_hub_list(d, s.base, "acme/tiny", "main", &l, &err), TDM_OK);
    assert_int_equal(l.n, 3);
    assert_non_null(find_file(&l, "big.bin"));
    assert_non_null(find_file(&l, "small.txt"));
    assert_non_null(find_file(&l, "sub/a b.json"));
    assert_true(log_has(&s, "cursor=3 -> 200 listing of 1 entries"));
    tdm_hub_listing_free(&l);
    char *body = NULL, *next = NULL;
    size_t len = 0;
    char *url = tdm_hub_tree_url(s.base, "acme/tiny", "main");
    assert_int_equal(tdm_downloader_get(d, url, 1 << 20, &body, &len, &next, &err), TDM_OK);
    assert_non_null(next);
    assert_non_null(strstr(next, "&cursor=1"));
    free(body);
    free(next);
    /* A body over the limit is refused. */
    assert_int_not_equal(tdm_downloader_get(d, url, 10, &body, &len, NULL, &err), TDM_OK);
    assert_null(body);
    free(url);
    tdm_downloader_free(d);
    server_stop(&s);
}

static void test_hub_parse_tree_errors(void **state)
{
    (void)state;
    tdm_hub_listing l;
    tdm_err err;
    static const char *bad[] = {
        "{}",
        "[{\"type\":\"file\"}]",
        "[{\"type\":\"file\",\"path\":\"../etc/passwd\",\"size\":1}]",
        "[{\"type\":\"file\",\"path\":\"/abs\",\"size\":1}]",
        "[{\"type\":\"file\",\"path\":\"a\",\"size\":-1}]",
        "[{\"type\":\"file\",\"path\":\"a\",\"size\":1,\"lfs\":{\"oid\":\"xyz\",\"size\":1}}]",
        ("[{\"type\":\"file\",\"path\":\"a\",\"size\":2,\"lfs\":{\"oid\":"
         "\"0000000000000000000000000000000000000000000000000000000000000000\",\"size\":1}}]"),
        "[1,",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_not_equal(tdm_hub_parse_tree(bad[i], strlen(bad[i]), &l, &err), TDM_OK);
        assert_int_equal(l.n, 0);
        assert_null(l.files);
    }
    const char *ok = "[{\"type\":\"file\",\"path\":\"m.bin\",\"size\":1,\"oid\":\"x\",\"lfs\":"
                     "{\"oid\":\"sha256:ABCDEF0000000000000000000000000000000000000000000000000000"
                     "000000\",\"size\":1}}]";
    assert_int_equal(tdm_hub_parse_tree(ok, strlen(ok), &l, &err), TDM_OK);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.files[0].sha256,
                        "abcdef0000000000000000000000000000000000000000000000000000000000");
    tdm_hub_listing_free(&l);
}

static void test_hub_pins(void **state)
{
    (void)state;
    char tsv[512];
    snprintf(tsv, sizeof tsv, "%s/pins.tsv", g_work);
    char text[2048];
    snprintf(text, sizeof text,
             "repo\tcommit\tpath\tlfs_sha256\tsize_bytes\n"
             "acme/tiny\t%s\tbig.bin\t%s\t%d\n"
             "other/repo\t%s\tbig.bin\t%064d\t5\n",
             "1111111111111111111111111111111111111111", g_big_sha, BIG_SIZE,
             "2222222222222222222222222222222222222222", 0);
    write_file(tsv, text, strlen(text));
    tdm_hub_pins p;
    tdm_err err;
    assert_int_equal(tdm_hub_pins_load(tsv, "acme/tiny", "main", &p, &err), TDM_OK);
    assert_int_equal(p.n, 1);
    const tdm_hub_pin *pin = tdm_hub_pins_find(&p, "big.bin");
    assert_non_null(pin);
    tdm_hub_file f = {.path = "big.bin", .size = BIG_SIZE, .lfs = true};
    memcpy(f.sha256, g_big_sha, 65);
    char sha[65];
    assert_int_equal(tdm_hub_expect(&f, pin, sha, &err), TDM_OK);
    assert_string_equal(sha, g_big_sha);
    /* The hub says otherwise: refused before downloading. */
    f.sha256[0] = f.sha256[0] == '0' ? '1' : '0';
    assert_int_equal(tdm_hub_expect(&f, pin, sha, &err), TDM_ERR_PARSE);
    assert_non_null(strstr(err.msg, "pinned sha256"));
    assert_non_null(strstr(err.msg, "big.bin"));
    f.sha256[0] = '\0'; /* a non-LFS file: size still compared, pin becomes the digest */
    f.size = 7;
    assert_int_equal(tdm_hub_expect(&f, pin, sha, &err), TDM_ERR_PARSE);
    assert_non_null(strstr(err.msg, "pinned size"));
    tdm_hub_pins_free(&p);
    /* A commit revision only takes rows of that commit. */
    assert_int_equal(
        tdm_hub_pins_load(tsv, "acme/tiny", "3333333333333333333333333333333333333333", &p, &err),
        TDM_OK);
    assert_int_equal(p.n, 0);
    tdm_hub_pins_free(&p);
    /* Malformed files name the line. */
    const char *badrow =
        "repo\tcommit\tpath\tlfs_sha256\tsize_bytes\nacme/tiny\tc\tbig.bin\tzz\t1\n";
    write_file(tsv, badrow, strlen(badrow));
    assert_int_equal(tdm_hub_pins_load(tsv, "acme/tiny", "main", &p, &err), TDM_ERR_PARSE);
    assert_non_null(strstr(err.msg, "line 2"));
    write_file(tsv, "repo\tpath\n", 10);
    assert_int_equal(tdm_hub_pins_load(tsv, "acme/tiny", "main", &p, &err), TDM_ERR_PARSE);
    assert_non_null(strstr(err.msg, "line 1"));
    /* The shared reference file parses (when present). */
    const char *ref = TDM_SHARED_DIR "/reference/upstream-model-digests.tsv";
    if (exists(ref)) {
        assert_int_equal(tdm_hub_pins_load(ref, "Xyntopia/all-MiniLM-L6-v2", "main", &p, &err),
                         TDM_OK);
        assert_int_equal(p.n, 4);
        tdm_hub_pins_free(&p);
    }
}

static void test_hub_names_urls_oids(void **state)
{
    (void)state;
    assert_true(tdm_hub_repo_valid("sentence-transformers/all-MiniLM-L6-v2"));
    assert_false(tdm_hub_repo_valid("noslash"));
    assert_false(tdm_hub_repo_valid("a/b/c"));
    assert_false(tdm_hub_repo_valid("../x"));
    assert_false(tdm_hub_repo_valid("a/.."));
    assert_false(tdm_hub_repo_valid("a b/c"));
    assert_true(tdm_hub_path_safe("1_Pooling/config.json"));
    assert_false(tdm_hub_path_safe("a//b"));
    assert_false(tdm_hub_path_safe("a/./b"));
    assert_false(tdm_hub_path_safe("a/"));
    assert_false(tdm_hub_path_safe("a\\b"));
    char *u = tdm_hub_tree_url("https://hf.co/", "o/n", "refs/pr/1");
    assert_string_equal(u, "https://hf.co/api/models/o/n/tree/refs%2Fpr%2F1?recursive=true");
    free(u);
    u = tdm_hub_resolve_url("https://hf.co", "o/n", "main", "onnx/model #1.onnx");
    assert_string_equal(u, "https://hf.co/o/n/resolve/main/onnx/model%20%231.onnx");
    free(u);
    assert_true(tdm_hub_default_file("1_Pooling/config.json", false));
    assert_false(tdm_hub_default_file("onnx/model.onnx", false));
    assert_true(tdm_hub_default_file("onnx/model.onnx", true));
    assert_true(tdm_hub_glob("onnx/*", "onnx/model_O1.onnx"));
    assert_true(tdm_hub_glob("*.json", "1_Pooling/config.json"));
    assert_false(tdm_hub_glob("*.onnx", "model.safetensors"));
    /* git hash-object vectors */
    char oid[41];
    tdm_gitoid_buf("", 0, oid);
    assert_string_equal(oid, "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391");
    tdm_gitoid_buf("hello\n", 6, oid);
    assert_string_equal(oid, "ce013625030ba8dba906f756967f9e9ca394464a");
    tdm_sha1_ctx c;
    tdm_sha1_init(&c);
    for (size_t off = 0; off < 3; off++) /* SHA-1("abc") fed in pieces */
        tdm_sha1_update(&c, &"abc"[off], 1);
    tdm_sha1_final_hex(&c, oid);
    assert_string_equal(oid, "a9993e364706816aba3e25717850c26c9cd0d89d");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_plain_and_reuse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resume_next_call, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resume_same_call, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_ignores_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_part_complete_416, setup, teardown),
        cmocka_unit_test_setup_teardown(test_part_too_long_416, setup, teardown),
        cmocka_unit_test_setup_teardown(test_size_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_part_locked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retries_and_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bearer_token, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hub_listing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hub_paged, setup, teardown),
        cmocka_unit_test(test_hub_parse_tree_errors),
        cmocka_unit_test_setup_teardown(test_hub_pins, setup, teardown),
        cmocka_unit_test(test_hub_names_urls_oids),
    };
    return cmocka_run_group_tests(tests, setup_all, teardown_all);
}

/*
 * Verified, resumable downloads with libcurl (see include/tandem/download.h).
 *
 * Design. One attempt is one HTTP request; a download is a loop of attempts
 * around one open DEST.part. The part and the running SHA-256 always agree:
 * a byte is hashed only after it is written, so whatever ends an attempt (a
 * cut link, a time-out, a 5xx), the next attempt resumes with "Range:
 * bytes=<part size>-" and keeps hashing where the last one stopped. The
 * decision about a response (206 at the right offset, 200 that restarts, an
 * error status whose body is kept for the message) is made once, at the first
 * body byte, because libcurl reports the status only then (and after the
 * transfer for an empty body). Sizes are checked while bytes arrive, so a
 * hostile or broken server cannot fill the disk past max_bytes or the
 * expected size.
 *
 * The part is locked with flock while we write it, so two pulls into the same
 * folder refuse rather than interleave bytes. Completion is fsync(part),
 * rename(part, DEST), fsync(folder): after a crash DEST is the old or the new
 * file, never a mix.
 */
#include "tandem/download.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/sha256.h"
#include "edge/curl_init.h"
#include "tandem/tandem.h"

#define ERRBODY_MAX 200
#define PROGRESS_EVERY_NS 100000000ull
#define BACKOFF_MAX_MS 30000L

struct tdm_downloader {
    CURL *curl;
    long connect_timeout_ms;
    long stall_timeout_s;
    int max_retries;
    long backoff_ms;
    char *auth_header; /* "Authorization: Bearer ..." or NULL */
    char *user_agent;
    char curl_err[CURL_ERROR_SIZE];
};

tdm_status tdm_downloader_create(const tdm_download_opts *opts, tdm_downloader **out, tdm_err *err)
{
    *out = NULL;
    tdm_status st = tdm_curl_global_init(err); /* once per process, see edge/curl_init.h */
    if (st != TDM_OK)
        return st;
    tdm_download_opts o = {0};
    if (opts != NULL)
        o = *opts;
    tdm_downloader *d = calloc(1, sizeof *d);
    if (d == NULL)
        return tdm_errf(err, TDM_ERR_NOMEM, "out of memory");
    d->connect_timeout_ms = o.connect_timeout_ms > 0 ? o.connect_timeout_ms : 10000;
    d->stall_timeout_s = o.stall_timeout_s > 0 ? o.stall_timeout_s : 30;
    d->max_retries = o.max_retries == 0 ? 4 : (o.max_retries < 0 ? 0 : o.max_retries);
    d->backoff_ms = o.backoff_ms > 0 ? o.backoff_ms : 500;
    if (o.bearer_token != NULL && o.bearer_token[0] != '\0') {
        if (strpbrk(o.bearer_token, "\r\n") != NULL) {
            free(d);
            return tdm_errf(err, TDM_ERR_INVALID_ARG, "the bearer token holds a line break");
        }
        size_t n = strlen(o.bearer_token) + sizeof "Authorization: Bearer ";
        d->auth_header = malloc(n);
        if (d->auth_header != NULL)
            snprintf(d->auth_header, n, "Authorization: Bearer %s", o.bearer_token);
    }
    d->user_agent =
        tdm_strdup(o.user_agent != NULL ? o.user_agent : "tandem/" TANDEM_VERSION_STRING);
    d->curl = curl_easy_init();
    if (d->user_agent == NULL || d->curl == NULL ||
        (o.bearer_token != NULL && o.bearer_token[0] != '\0' && d->auth_header == NULL)) {
        tdm_downloader_free(d);
        return tdm_errf(err, TDM_ERR_NOMEM, "out of memory creating a downloader");
    }
    *out = d;
    return TDM_OK;
}

void tdm_downloader_free(tdm_downloader *d)
{
    if (d == NULL)
        return;
    if (d->curl != NULL)
        curl_easy_cleanup(d->curl);
    free(d->auth_header);
    free(d->user_agent);
    free(d);
}

/* ---- one transfer ------------------------------------------------------------------- */

enum abort_reason {
    ABORT_NONE = 0,
    ABORT_TOO_BIG, /* more bytes than max_bytes */
    ABORT_SIZE,    /* more bytes than the expected size */
    ABORT_RANGE,   /* a 206 that does not start where the part ends */
    ABORT_WRITE,   /* writing the part failed (errno in io_errno) */
    ABORT_NOMEM,
};

typedef struct xfer {
    tdm_downloader *d;
    const tdm_download_req *req; /* NULL for an in-memory GET */
    const char *name;
    /* file mode */
    int fd;
    tdm_sha256_ctx sha;
    /* memory mode */
    char *mem;
    size_t mem_len, mem_cap;
    uint64_t max_bytes; /* 0: none */
    int64_t want_size;  /* negative: unknown */
    /* state across attempts */
    uint64_t have;    /* bytes in the part (or memory), all hashed */
    uint64_t fetched; /* body bytes received by all attempts */
    uint64_t resumed_from;
    bool restarted; /* a 200 or a bad range made us drop the part */
    /* state of one attempt */
    uint64_t offset; /* where this attempt's range starts */
    bool started;    /* the response has been judged (first body byte or the end) */
    bool body_ok;    /* 200/206: bytes go to the part */
    long code;
    uint64_t total; /* full size from the headers; 0: unknown */
    bool cr_seen, cr_unsatisfied, cr_total_known;
    uint64_t cr_start, cr_total;
    char etag[80];
    char *link_next; /* Link rel="next" of the last response (in-memory GETs) */
    char errbody[ERRBODY_MAX + 1];
    size_t errbody_len;
    enum abort_reason abort;
    int io_errno;
    uint64_t last_progress_ns;
    int new_connections;
} xfer;

static void attempt_reset(xfer *x)
{
    if (x->req == NULL) { /* an in-memory GET never resumes: small bodies start over */
        x->have = 0;
        x->mem_len = 0;
    }
    x->offset = x->have;
    x->started = false;
    x->body_ok = false;
    x->code = 0;
    x->total = 0;
    x->cr_seen = x->cr_unsatisfied = x->cr_total_known = false;
    x->cr_start = x->cr_total = 0;
    x->etag[0] = '\0';
    x->errbody_len = 0;
    x->errbody[0] = '\0';
    x->abort = ABORT_NONE;
    x->io_errno = 0;
}

static bool parse_u64(const char *s, const char **end, uint64_t *out)
{
    if (!isdigit((unsigned char)*s))
        return false;
    uint64_t v = 0;
    while (isdigit((unsigned char)*s)) {
        unsigned dgt = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - dgt) / 10)
            return false;
        v = v * 10 + dgt;
        s++;
    }
    *end = s;
    *out = v;
    return true;
}

/* "Content-Range: bytes A-B/T", "bytes A-B/ *" or "bytes * /T" (416). */
static void parse_content_range(xfer *x, const char *v)
{
    while (*v == ' ')
        v++;
    if (strncasecmp(v, "bytes", 5) != 0)
        return;
    v += 5;
    while (*v == ' ')
        v++;
    const char *p = v;
    uint64_t a = 0, b = 0, t = 0;
    if (*p == '*') {
        x->cr_unsatisfied = true;
        p++;
    } else {
        if (!parse_u64(p, &p, &a) || *p != '-' || !parse_u64(p + 1, &p, &b))
            return;
        x->cr_start = a;
    }
    if (*p != '/')
        return;
    p++;
    if (parse_u64(p, &p, &t)) {
        x->cr_total = t;
        x->cr_total_known = true;
    }
    x->cr_seen = true;
}

/* "Link: <a>; rel=\"prev\", <b>; rel=\"next\"": keeps b (RFC 8288, as the hub paginates). */
static void parse_link_next(xfer *x, const char *v)
{
    for (const char *lt = strchr(v, '<'); lt != NULL; lt = strchr(lt + 1, '<')) {
        const char *gt = strchr(lt, '>');
        if (gt == NULL)
            return;
        const char *params_end = strchr(gt, '<');
        size_t plen = params_end ? (size_t)(params_end - gt) : strlen(gt);
        char params[256];
        snprintf(params, sizeof params, "%.*s", (int)(plen < 255 ? plen : 255), gt);
        if (strstr(params, "rel=\"next\"") != NULL || strstr(params, "rel=next") != NULL) {
            free(x->link_next);
            x->link_next = tdm_strndup(lt + 1, (size_t)(gt - lt - 1));
            return;
        }
    }
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *user)
{
    xfer *x = user;
    size_t n = size * nitems;
    /* A new response (after a redirect or a 100 Continue) starts over. */
    if (n >= 5 && memcmp(buf, "HTTP/", 5) == 0) {
        x->cr_seen = x->cr_unsatisfied = x->cr_total_known = false;
        x->etag[0] = '\0';
        free(x->link_next);
        x->link_next = NULL;
        return n;
    }
    char line[4096];
    size_t m = n < sizeof line - 1 ? n : sizeof line - 1;
    memcpy(line, buf, m);
    line[m] = '\0';
    while (m > 0 && (line[m - 1] == '\r' || line[m - 1] == '\n' || line[m - 1] == ' '))
        line[--m] = '\0';
    if (strncasecmp(line, "content-range:", 14) == 0) {
        parse_content_range(x, line + 14);
    } else if (strncasecmp(line, "link:", 5) == 0 && x->req == NULL) {
        parse_link_next(x, line + 5);
    } else if (strncasecmp(line, "etag:", 5) == 0) {
        const char *v = line + 5;
        while (*v == ' ')
            v++;
        if (strncmp(v, "W/", 2) == 0)
            v += 2;
        size_t len = strlen(v);
        if (len >= 2 && v[0] == '"' && v[len - 1] == '"') {
            v++;
            len -= 2;
        }
        if (len < sizeof x->etag) {
            memcpy(x->etag, v, len);
            x->etag[len] = '\0';
        }
    }
    return n;
}

/* Empties the part (or memory buffer) and the hash: the next bytes start the file anew. */
static bool restart_part(xfer *x)
{
    if (x->req != NULL) {
        if (ftruncate(x->fd, 0) != 0 || lseek(x->fd, 0, SEEK_SET) != 0) {
            x->io_errno = errno;
            return false;
        }
    }
    x->mem_len = 0;
    tdm_sha256_init(&x->sha);
    if (x->have > 0)
        x->restarted = true;
    x->have = 0;
    x->offset = 0;
    x->resumed_from = 0;
    return true;
}

/* Judges the response once its status is known. False aborts the transfer. */
static bool begin_body(xfer *x)
{
    x->started = true;
    curl_easy_getinfo(x->d->curl, CURLINFO_RESPONSE_CODE, &x->code);
    if (x->code != 200 && x->code != 206)
        return true; /* an error body: kept for the message */
    if (x->code == 200 && x->have > 0) {
        /* The server ignored our Range: the body is the whole file. */
        if (!restart_part(x)) {
            x->abort = ABORT_WRITE;
            return false;
        }
    }
    if (x->code == 206 && (!x->cr_seen || x->cr_unsatisfied || x->cr_start != x->have)) {
        x->abort = ABORT_RANGE;
        return false;
    }
    x->body_ok = true;
    curl_off_t cl = -1;
    curl_easy_getinfo(x->d->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
    if (x->code == 206 && x->cr_total_known)
        x->total = x->cr_total;
    else if (cl >= 0)
        x->total = x->offset + (uint64_t)cl;
    if (x->total > 0 && x->max_bytes > 0 && x->total > x->max_bytes) {
        x->abort = ABORT_TOO_BIG;
        return false;
    }
    if (x->total > 0 && x->want_size >= 0 && x->total != (uint64_t)x->want_size) {
        x->abort = ABORT_SIZE;
        return false;
    }
    return true;
}

static void report_progress(xfer *x, bool final)
{
    if (x->req == NULL || x->req->progress == NULL)
        return;
    uint64_t now = tdm_now_ns();
    if (!final && now - x->last_progress_ns < PROGRESS_EVERY_NS)
        return;
    x->last_progress_ns = now;
    uint64_t total = x->total;
    if (total == 0 && x->want_size >= 0)
        total = (uint64_t)x->want_size;
    x->req->progress(x->req->user, x->name, x->have, final ? x->have : total);
}

static size_t on_body(char *buf, size_t size, size_t nmemb, void *user)
{
    xfer *x = user;
    size_t n = size * nmemb;
    if (!x->started && !begin_body(x))
        return 0;
    if (!x->body_ok) {
        size_t room = ERRBODY_MAX - x->errbody_len;
        size_t k = n < room ? n : room;
        memcpy(x->errbody + x->errbody_len, buf, k);
        x->errbody_len += k;
        x->errbody[x->errbody_len] = '\0';
        return n;
    }
    if (x->max_bytes > 0 && x->have + n > x->max_bytes) {
        x->abort = ABORT_TOO_BIG;
        return 0;
    }
    if (x->want_size >= 0 && x->have + n > (uint64_t)x->want_size) {
        x->abort = ABORT_SIZE;
        return 0;
    }
    if (x->req != NULL) {
        size_t done = 0;
        while (done < n) {
            ssize_t w = write(x->fd, buf + done, n - done);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                x->io_errno = w < 0 ? errno : ENOSPC;
                x->abort = ABORT_WRITE;
                return 0;
            }
            done += (size_t)w;
        }
        tdm_sha256_update(&x->sha, buf, n);
    } else {
        if (x->mem_len + n + 1 > x->mem_cap) {
            size_t cap = x->mem_cap ? x->mem_cap * 2 : 4096;
            while (cap < x->mem_len + n + 1)
                cap *= 2;
            char *p = realloc(x->mem, cap);
            if (p == NULL) {
                x->abort = ABORT_NOMEM;
                return 0;
            }
            x->mem = p;
            x->mem_cap = cap;
        }
        memcpy(x->mem + x->mem_len, buf, n);
        x->mem_len += n;
        x->mem[x->mem_len] = '\0';
    }
    x->have += n;
    x->fetched += n;
    report_progress(x, false);
    return n;
}

static bool transient_curl(CURLcode rc)
{
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_PARTIAL_FILE:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_GOT_NOTHING:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR: return true;
    default: return false;
    }
}

static bool transient_http(long code)
{
    return code == 408 || code == 429 || (code >= 500 && code <= 599);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Quotes the start of an error body on one line. */
static void flatten(char *s)
{
    for (; *s != '\0'; s++)
        if (*s == '\n' || *s == '\r' || *s == '\t')
            *s = ' ';
}

/* OUT_RESTART: the part was dropped (bad range, 416): ask again now, without backoff and
 * without spending a retry, since nothing failed; bounded so a confused server cannot loop. */
enum outcome { OUT_DONE, OUT_RETRY, OUT_RESTART, OUT_FAIL };
#define MAX_RESTARTS 2

/* Runs one request; returns whether the download is done, should be retried, or failed. */
static enum outcome attempt(xfer *x, const char *url, tdm_status *st, tdm_err *err)
{
    tdm_downloader *d = x->d;
    CURL *c = d->curl;
    attempt_reset(x);
    /* reset keeps live connections, the DNS and TLS session caches: reuse across files. */
    curl_easy_reset(c);
    struct curl_slist *hdrs = NULL;
    if (d->auth_header != NULL) {
        hdrs = curl_slist_append(NULL, d->auth_header);
        if (hdrs == NULL) {
            *st = tdm_errf(err, TDM_ERR_NOMEM, "out of memory");
            return OUT_FAIL;
        }
    }
    /* Resuming from a server whose ETag is the sha256 we expect: "If-Range" makes it send the
     * whole file (200, we restart) rather than a range of a different file. */
    if (x->have > 0 && x->req != NULL && x->req->etag_is_sha256 && x->req->sha256 != NULL) {
        char ifr[96];
        snprintf(ifr, sizeof ifr, "If-Range: \"%s\"", x->req->sha256);
        struct curl_slist *h2 = curl_slist_append(hdrs, ifr);
        if (h2 == NULL) {
            curl_slist_free_all(hdrs);
            *st = tdm_errf(err, TDM_ERR_NOMEM, "out of memory");
            return OUT_FAIL;
        }
        hdrs = h2;
    }
    char range[48];
    d->curl_err[0] = '\0';
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, d->connect_timeout_ms);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, d->stall_timeout_s);
    curl_easy_setopt(c, CURLOPT_USERAGENT, d->user_agent);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, d->curl_err);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
    if (hdrs != NULL)
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    if (x->have > 0 && x->req != NULL) {
        snprintf(range, sizeof range, "%llu-", (unsigned long long)x->have);
        curl_easy_setopt(c, CURLOPT_RANGE, range);
    }
    CURLcode rc = curl_easy_perform(c);
    curl_slist_free_all(hdrs);
    long nconn = 0;
    if (curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &nconn) == CURLE_OK)
        x->new_connections += (int)nconn;
    if (!x->started && x->abort == ABORT_NONE && rc == CURLE_OK) {
        /* No body byte came: judge the status now (empty file, 416, error without body). */
        begin_body(x);
    }
    switch (x->abort) {
    case ABORT_NONE: break;
    case ABORT_TOO_BIG:
        *st = tdm_errf(err, TDM_ERR_PARSE, "%s: the server sends more than the limit of %llu bytes",
                       x->name, (unsigned long long)x->max_bytes);
        return OUT_FAIL;
    case ABORT_SIZE:
        *st = tdm_errf(err, TDM_ERR_PARSE,
                       "%s: size mismatch: expected %lld bytes, the server sends %s%llu", x->name,
                       (long long)x->want_size, x->total > 0 ? "" : "more than ",
                       (unsigned long long)(x->total > 0 ? x->total : x->have));
        return OUT_FAIL;
    case ABORT_RANGE:
        /* A 206 for other bytes than we asked: start the file over. */
        if (!restart_part(x)) {
            *st = tdm_errf(err, TDM_ERR_IO, "%s: cannot truncate the part: %s", x->name,
                           strerror(x->io_errno));
            return OUT_FAIL;
        }
        tdm_errf(err, TDM_ERR_IO, "%s: the server answered a range other than the one asked",
                 x->name);
        return OUT_RESTART;
    case ABORT_WRITE:
        *st = tdm_errf(err, TDM_ERR_IO, "%s: cannot write the part file: %s", x->name,
                       strerror(x->io_errno));
        return OUT_FAIL;
    case ABORT_NOMEM:
        *st = tdm_errf(err, TDM_ERR_NOMEM, "%s: out of memory", x->name);
        return OUT_FAIL;
    }
    if (rc != CURLE_OK) {
        tdm_errf(err, TDM_ERR_IO, "%s: %s", x->name,
                 d->curl_err[0] ? d->curl_err : curl_easy_strerror(rc));
        if (transient_curl(rc))
            return OUT_RETRY;
        *st = TDM_ERR_IO;
        return OUT_FAIL;
    }
    if (x->code == 200 || x->code == 206) {
        if (x->total > 0 && x->have != x->total) {
            tdm_errf(err, TDM_ERR_IO, "%s: transfer ended at %llu of %llu bytes", x->name,
                     (unsigned long long)x->have, (unsigned long long)x->total);
            return OUT_RETRY;
        }
        return OUT_DONE;
    }
    if (x->code == 416 && x->have > 0) {
        /* Our part reaches or passes the end of the file: complete, or to be restarted. */
        if (x->cr_seen && x->cr_total_known && x->cr_total == x->have) {
            x->total = x->have;
            return OUT_DONE;
        }
        if (!restart_part(x)) {
            *st = tdm_errf(err, TDM_ERR_IO, "%s: cannot truncate the part: %s", x->name,
                           strerror(x->io_errno));
            return OUT_FAIL;
        }
        tdm_errf(err, TDM_ERR_IO, "%s: the part is longer than the file on the server", x->name);
        return OUT_RESTART;
    }
    flatten(x->errbody);
    /* An in-memory GET is named by its URL: say it once. */
    tdm_errf(err, TDM_ERR_IO, "%s%sHTTP %ld from %s%s%s", x->req ? x->name : "", x->req ? ": " : "",
             x->code, url, x->errbody_len ? ": " : "", x->errbody);
    if (transient_http(x->code))
        return OUT_RETRY;
    if (x->code == 404)
        *st = TDM_ERR_NOT_FOUND;
    else
        *st = TDM_ERR_IO;
    if (x->code == 401 || x->code == 403)
        tdm_err_prefix(err, "%s", "not authorised (is the token set and valid?)");
    return OUT_FAIL;
}

/* Attempts until done, failed, or out of retries. */
static tdm_status run_attempts(xfer *x, const char *url, int *attempts, tdm_err *err)
{
    int retries = 0, restarts = 0;
    for (;;) {
        tdm_status st = TDM_ERR_IO;
        (*attempts)++;
        enum outcome o = attempt(x, url, &st, err);
        if (o == OUT_DONE)
            return TDM_OK;
        if (o == OUT_FAIL)
            return st;
        if (o == OUT_RESTART && restarts++ < MAX_RESTARTS)
            continue;
        if (retries >= x->d->max_retries) {
            if (x->d->max_retries > 0)
                tdm_err_prefix(err, "gave up after %d attempts", *attempts);
            return TDM_ERR_IO;
        }
        long wait = x->d->backoff_ms;
        for (int i = 0; i < retries && wait < BACKOFF_MAX_MS; i++)
            wait *= 2;
        sleep_ms(wait < BACKOFF_MAX_MS ? wait : BACKOFF_MAX_MS);
        retries++;
    }
}

/* ---- files -------------------------------------------------------------------------- */

static bool mkdirs_for(const char *path)
{
    char *buf = tdm_strdup(path);
    if (buf == NULL)
        return false;
    bool ok = true;
    char *slash = strrchr(buf, '/');
    if (slash != NULL && slash != buf) {
        *slash = '\0';
        for (char *p = buf + 1; ok; p++) {
            if (*p == '/' || *p == '\0') {
                char ch = *p;
                *p = '\0';
                if (mkdir(buf, 0777) != 0 && errno != EEXIST)
                    ok = false;
                *p = ch;
                if (ch == '\0')
                    break;
            }
        }
    }
    free(buf);
    return ok;
}

static void fsync_parent(const char *path)
{
    char *buf = tdm_strdup(path);
    if (buf == NULL)
        return;
    char *slash = strrchr(buf, '/');
    const char *dir = ".";
    if (slash == buf)
        dir = "/";
    else if (slash != NULL) {
        *slash = '\0';
        dir = buf;
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd); /* best effort: some file systems refuse fsync on folders */
        close(fd);
    }
    free(buf);
}

/* Hashes the bytes already in the part so that the running digest covers them. */
static bool hash_existing(int fd, uint64_t len, tdm_sha256_ctx *sha)
{
    static const size_t chunk = 1 << 16;
    char *buf = malloc(chunk);
    if (buf == NULL)
        return false;
    uint64_t done = 0;
    bool ok = true;
    while (done < len) {
        ssize_t r = pread(fd, buf, chunk, (off_t)done);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            ok = false;
            break;
        }
        tdm_sha256_update(sha, buf, (size_t)r);
        done += (uint64_t)r;
    }
    free(buf);
    return ok && lseek(fd, 0, SEEK_END) == (off_t)len;
}

/* Appends to the message already in err. */
static void err_append(tdm_err *err, const char *fmt, const char *arg)
{
    if (err == NULL)
        return;
    size_t n = strnlen(err->msg, sizeof err->msg);
    if (n + 1 < sizeof err->msg)
        snprintf(err->msg + n, sizeof err->msg - n, fmt, arg);
}

static bool is_hex64(const char *s)
{
    if (s == NULL || strlen(s) != 64)
        return false;
    for (int i = 0; i < 64; i++)
        if (!isxdigit((unsigned char)s[i]))
            return false;
    return true;
}

tdm_status tdm_downloader_fetch(tdm_downloader *d, const tdm_download_req *req,
                                tdm_download_result *res, tdm_err *err)
{
    tdm_download_result local;
    if (res == NULL)
        res = &local;
    memset(res, 0, sizeof *res);
    if (d == NULL || req == NULL || req->url == NULL || req->dest == NULL || req->dest[0] == '\0')
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "a download needs a URL and a destination");
    const char *name = req->name != NULL ? req->name : req->dest;
    if (req->sha256 != NULL && !is_hex64(req->sha256))
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "%s: expected sha256 '%s' is not 64 hex digits",
                        name, req->sha256);

    /* Present already? Only a digest proves it; a size alone does not. */
    struct stat st;
    if (req->sha256 != NULL && stat(req->dest, &st) == 0 && S_ISREG(st.st_mode) &&
        (req->size < 0 || (uint64_t)st.st_size == (uint64_t)req->size)) {
        char hex[TDM_SHA256_HEX_LEN + 1];
        if (tdm_sha256_file(req->dest, hex, NULL) == TDM_OK && strcasecmp(hex, req->sha256) == 0) {
            memcpy(res->sha256, hex, sizeof hex);
            res->bytes = (uint64_t)st.st_size;
            res->present = true;
            return TDM_OK;
        }
    }

    size_t plen = strlen(req->dest) + sizeof ".part";
    char *part = malloc(plen);
    if (part == NULL)
        return tdm_errf(err, TDM_ERR_NOMEM, "out of memory");
    snprintf(part, plen, "%s.part", req->dest);
    if (!mkdirs_for(req->dest)) {
        tdm_status s = tdm_errf(err, TDM_ERR_IO, "%s: cannot create the folder of %s: %s", name,
                                req->dest, strerror(errno));
        free(part);
        return s;
    }
    int fd = open(part, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        tdm_status s =
            tdm_errf(err, TDM_ERR_IO, "%s: cannot open %s: %s", name, part, strerror(errno));
        free(part);
        return s;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        tdm_status s =
            tdm_errf(err, TDM_ERR_IO, "%s: %s is being written by another download", name, part);
        close(fd);
        free(part);
        return s;
    }

    xfer x = {0};
    x.d = d;
    x.req = req;
    x.name = name;
    x.fd = fd;
    x.max_bytes = req->max_bytes;
    x.want_size = req->size;
    tdm_sha256_init(&x.sha);
    tdm_status s = TDM_OK;
    if (fstat(fd, &st) != 0) {
        s = tdm_errf(err, TDM_ERR_IO, "%s: cannot stat %s: %s", name, part, strerror(errno));
        goto fail_keep;
    }
    uint64_t have = (uint64_t)st.st_size;
    /* A part longer than the file can be is junk: start over without asking the server. */
    if ((req->size >= 0 && have > (uint64_t)req->size) ||
        (req->max_bytes > 0 && have > req->max_bytes)) {
        if (ftruncate(fd, 0) != 0) {
            s = tdm_errf(err, TDM_ERR_IO, "%s: cannot truncate %s: %s", name, part,
                         strerror(errno));
            goto fail_keep;
        }
        have = 0;
    }
    if (have > 0 && !hash_existing(fd, have, &x.sha)) {
        s = tdm_errf(err, TDM_ERR_IO, "%s: cannot read %s: %s", name, part, strerror(errno));
        goto fail_keep;
    }
    if (have == 0)
        lseek(fd, 0, SEEK_SET);
    x.have = have;
    x.resumed_from = have;

    s = run_attempts(&x, req->url, &res->attempts, err);
    res->fetched = x.fetched;
    res->resumed_from = x.resumed_from;
    res->new_connections = x.new_connections;
    if (s != TDM_OK) {
        if (s == TDM_ERR_PARSE)
            goto fail_refuse;
        goto fail_keep; /* keep the part: the next run resumes it */
    }

    uint8_t digest[TDM_SHA256_LEN];
    tdm_sha256_final(&x.sha, digest);
    tdm_sha256_hex(digest, res->sha256);
    res->bytes = x.have;
    if (req->size >= 0 && x.have != (uint64_t)req->size) {
        s = tdm_errf(err, TDM_ERR_PARSE, "%s: size mismatch: expected %lld bytes, got %llu", name,
                     (long long)req->size, (unsigned long long)x.have);
        goto fail_refuse;
    }
    if (req->sha256 != NULL && strcasecmp(res->sha256, req->sha256) != 0) {
        s = tdm_errf(err, TDM_ERR_PARSE, "%s: sha256 mismatch: expected %s, got %s", name,
                     req->sha256, res->sha256);
        goto fail_refuse;
    }
    if (req->etag_is_sha256 && is_hex64(x.etag) && strcasecmp(res->sha256, x.etag) != 0) {
        s = tdm_errf(err, TDM_ERR_PARSE, "%s: sha256 mismatch: the server's ETag says %s, got %s",
                     name, x.etag, res->sha256);
        goto fail_refuse;
    }
    if (fsync(fd) != 0) {
        s = tdm_errf(err, TDM_ERR_IO, "%s: cannot sync %s: %s", name, part, strerror(errno));
        goto fail_keep;
    }
    if (req->verify != NULL && (s = req->verify(req->user, part, err)) != TDM_OK)
        goto fail_refuse;
    if (rename(part, req->dest) != 0) {
        s = tdm_errf(err, TDM_ERR_IO, "%s: cannot rename %s onto %s: %s", name, part, req->dest,
                     strerror(errno));
        goto fail_keep;
    }
    close(fd);
    fsync_parent(req->dest);
    report_progress(&x, true);
    free(part);
    return TDM_OK;

fail_refuse:
    unlink(part);
    err_append(err, "; file refused, %s deleted", part);
fail_keep:
    /* An empty part helps no later run (e.g. after a 404): do not leave it behind. */
    if (fstat(fd, &st) == 0 && st.st_size == 0)
        unlink(part);
    close(fd);
    free(part);
    return s;
}

tdm_status tdm_downloader_get(tdm_downloader *d, const char *url, size_t max_bytes, char **body,
                              size_t *len, char **next_url, tdm_err *err)
{
    *body = NULL;
    *len = 0;
    if (next_url != NULL)
        *next_url = NULL;
    if (d == NULL || url == NULL)
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "a GET needs a downloader and a URL");
    xfer x = {0};
    x.d = d;
    x.name = url;
    x.fd = -1;
    x.max_bytes = max_bytes;
    x.want_size = -1;
    int attempts = 0;
    tdm_status s = run_attempts(&x, url, &attempts, err);
    if (s == TDM_OK && x.code == 206) /* we never ask for a range here */
        s = tdm_errf(err, TDM_ERR_IO, "%s: unexpected 206", url);
    if (s == TDM_OK && x.mem == NULL) {
        x.mem = calloc(1, 1);
        if (x.mem == NULL)
            s = tdm_errf(err, TDM_ERR_NOMEM, "out of memory");
    }
    if (s != TDM_OK) {
        free(x.mem);
        free(x.link_next);
        return s;
    }
    *body = x.mem;
    *len = x.mem_len;
    if (next_url != NULL)
        *next_url = x.link_next;
    else
        free(x.link_next);
    return TDM_OK;
}

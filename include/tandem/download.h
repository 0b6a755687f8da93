/*
 * Verified, resumable HTTP downloads (model files from the Hugging Face hub or
 * from tandem's own gateway).
 *
 * A download writes DEST.part next to DEST and renames it onto DEST only when
 * every byte is there and checked, so DEST is either absent, the old file, or
 * the complete new one: a crash or a cut link never leaves a half file under
 * the real name. An existing DEST.part is resumed with "Range: bytes=N-"; a
 * server that answers 200 instead of 206 restarts the file, one that answers
 * 416 either confirms that the part is already complete or makes us restart.
 * The bytes stream through SHA-256 as they arrive (the kept part is hashed
 * once when resuming), so checking a multi-gigabyte file costs no second read.
 *
 * A file whose digest or size disagrees with what the caller expects is
 * refused: its part is deleted, DEST is left as it was, and the message names
 * the file, the expected and the actual digest. Transient failures (refused or
 * reset connections, time-outs, cut transfers, 5xx, 429) are retried with
 * exponential backoff, each retry resuming where the last one stopped.
 *
 * One tdm_downloader owns one libcurl easy handle, reused for every file so
 * that the files of one pull share a kept-alive connection. A downloader is
 * for one thread at a time. libcurl's process-wide curl_global_init runs once,
 * on the first tdm_downloader_create (src/edge/curl_init.c, shared with the
 * agent's transport, guarded by pthread_once); it is never undone.
 */
#ifndef TANDEM_DOWNLOAD_H
#define TANDEM_DOWNLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tandem/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tdm_downloader tdm_downloader;

/* Settings of a downloader; zero fields take the defaults in brackets. */
typedef struct tdm_download_opts {
    long connect_timeout_ms;  /* [10000] to open a connection */
    long stall_timeout_s;     /* [30] abort a transfer that moves no byte for this long */
    int max_retries;          /* [4] retries after a transient failure; negative: none */
    long backoff_ms;          /* [500] first wait before a retry, doubled each time, max 30 s */
    const char *bearer_token; /* NULL: none. Sent as "Authorization: Bearer ..." to the
                                 request's host only (not across redirects to other hosts) */
    const char *user_agent;   /* NULL: "tandem/VERSION" */
} tdm_download_opts;

/*
 * Progress of one file: done bytes of total (0 when unknown). Called at most
 * about ten times a second while bytes arrive, and once more when the file is
 * complete (done == total).
 */
typedef void (*tdm_download_progress_fn)(void *user, const char *name, uint64_t done,
                                         uint64_t total);

/*
 * Checks a finished part before it is renamed (e.g. a git blob id); returns
 * non-OK with a message to refuse the file.
 */
typedef tdm_status (*tdm_download_verify_fn)(void *user, const char *part_path, tdm_err *err);

typedef struct tdm_download_req {
    const char *url;
    const char *dest;    /* final path; its parent directories are created */
    const char *name;    /* for messages and progress; NULL: dest */
    const char *sha256;  /* expected lower- or upper-case hex; NULL: not checked */
    int64_t size;        /* expected size in bytes; negative: not checked */
    uint64_t max_bytes;  /* refuse a file larger than this; 0: no limit */
    bool etag_is_sha256; /* the server's ETag is the file's sha256 (tandem's gateway):
                            check against it too when it has 64 hex digits */
    tdm_download_progress_fn progress;
    tdm_download_verify_fn verify;
    void *user; /* passed to progress and verify */
} tdm_download_req;

typedef struct tdm_download_result {
    char sha256[65];       /* lower-case hex digest of DEST */
    uint64_t bytes;        /* size of DEST */
    uint64_t fetched;      /* body bytes received by this call */
    uint64_t resumed_from; /* bytes of an earlier part kept and not fetched again */
    int attempts;          /* HTTP requests made (0 when present already) */
    int new_connections;   /* connections opened (0: an earlier file's connection was reused) */
    bool present;          /* DEST already had the expected sha256: nothing was fetched */
} tdm_download_result;

tdm_status tdm_downloader_create(const tdm_download_opts *opts, tdm_downloader **out, tdm_err *err);
void tdm_downloader_free(tdm_downloader *d);

/*
 * Downloads req->url to req->dest as described at the top. When req->sha256
 * is given and DEST already has that digest, nothing is fetched
 * (res->present). res may be NULL. Errors: TDM_ERR_PARSE for a refused file
 * (digest or size mismatch), TDM_ERR_NOT_FOUND for 404, TDM_ERR_IO for the
 * network, HTTP errors and the file system, TDM_ERR_INVALID_ARG for a bad
 * request.
 */
tdm_status tdm_downloader_fetch(tdm_downloader *d, const tdm_download_req *req,
                                tdm_download_result *res, tdm_err *err);

/*
 * GETs url into memory (for small API answers such as a JSON listing), with
 * the same retries. A body larger than max_bytes is refused. On success
 * *body (NUL-terminated, free() it) holds *len bytes, and *next_url (when
 * next_url is not NULL) the target of a "Link: <URL>; rel=\"next\"" header
 * (the next page of a paginated answer; free() it) or NULL. A status other
 * than 200 is an error whose message quotes the start of the body.
 */
tdm_status tdm_downloader_get(tdm_downloader *d, const char *url, size_t max_bytes, char **body,
                              size_t *len, char **next_url, tdm_err *err);

#ifdef __cplusplus
}
#endif
#endif

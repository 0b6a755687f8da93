/*
 * Model versions on an edge device, synchronised from tandem's gateway.
 *
 * Layout under a models folder DIR:
 *   DIR/NAME/versions/V/...     the files of version V, exactly as the gateway lists them
 *   DIR/NAME/current  -> versions/V      the active version (a symlink)
 *   DIR/NAME/previous -> versions/U      the one before, kept for rollback
 * The agent's config names files through current (e.g. models/fmnist/current/cloud.onnx), so
 * a swap changes what the next session loads, and a process that has a file open keeps
 * reading the old inode.
 *
 * A sync lists the version (GET {gateway}/v1/models/NAME/versions/V: path, size, sha256 per
 * file), downloads every file with the verified, resumable downloader (the gateway's ETag is
 * the sha256, checked as well), and only when every file of the version is verified swaps the
 * links: previous first, then current, each by rename() of a fresh symlink (atomic), then an
 * fsync of the folder. A crash at any point leaves current on a complete version. Versions
 * other than current and previous are then deleted. A failed sync changes no link and keeps
 * its .part files, so the next sync resumes them.
 */
#ifndef TANDEM_EDGE_MODELS_SYNC_H
#define TANDEM_EDGE_MODELS_SYNC_H

#include <stdbool.h>
#include <stdint.h>

#include "tandem/download.h"
#include "tandem/status.h"

#define TDM_MODEL_NAME_MAX 128

/* One line per file, for the CLI: status TDM_OK or the failure with its message. */
typedef void (*tdm_models_file_fn)(void *user, const char *path, const tdm_download_result *r,
                                   tdm_status s, const char *msg);

typedef struct tdm_models_sync_opts {
    const char *gateway; /* base URL, e.g. http://127.0.0.1:8080 */
    const char *name;
    const char *version;
    const char *dir; /* the models folder */
    tdm_downloader *downloader;
    tdm_download_progress_fn progress; /* optional, per file */
    tdm_models_file_fn on_file;        /* optional */
    void *user;
} tdm_models_sync_opts;

typedef struct tdm_models_sync_result {
    int files, downloaded, present, failed;
    uint64_t fetched;
    bool swapped;                          /* current changed */
    char previous[TDM_MODEL_NAME_MAX + 1]; /* the version kept for rollback, "" if none */
    int pruned;                            /* older versions deleted */
} tdm_models_sync_result;

/* True for 1..128 of [A-Za-z0-9._-] not starting with '.' (the gateway's rule). */
bool tdm_models_name_valid(const char *s);

tdm_status tdm_models_sync(const tdm_models_sync_opts *o, tdm_models_sync_result *r, tdm_err *err);

/* The active and previous versions of NAME ("" when none). */
tdm_status tdm_models_active(const char *dir, const char *name,
                             char current[TDM_MODEL_NAME_MAX + 1],
                             char previous[TDM_MODEL_NAME_MAX + 1], tdm_err *err);

/* Makes previous the active version and the active one previous. */
tdm_status tdm_models_rollback(const char *dir, const char *name, tdm_err *err);

#endif

/*
 * A client for the Hugging Face hub's file listing, and the rules that decide
 * what one downloaded file must be.
 *
 * The hub lists a repository at a revision with
 *   GET {endpoint}/api/models/{org}/{name}/tree/{revision}?recursive=true
 * which answers a JSON array of {"type":"file"|"directory","path","size",
 * "oid", "lfs":{"oid":"<sha256>","size"}}; a file is fetched from
 *   {endpoint}/{org}/{name}/resolve/{revision}/{path}.
 * LFS files (the weights) carry their sha256. Small files carry only their
 * git blob id ("oid"), which we check too (edge/gitoid.h), so every file is
 * verified byte for byte, not only by size.
 *
 * Pinned digests (a TSV "repo commit path lfs_sha256 size_bytes", like
 * ../shared/reference/upstream-model-digests.tsv) are a second, independent
 * source: a pin that disagrees with the hub's metadata refuses the file before
 * a byte is fetched, and the bytes must match the pin.
 *
 * Paths in a listing come from the network and become paths on disk: a path
 * that is absolute, has an empty, "." or ".." segment, a backslash or a
 * control character is refused (tdm_hub_path_safe).
 */
#ifndef TANDEM_EDGE_HUB_H
#define TANDEM_EDGE_HUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "edge/gitoid.h"
#include "tandem/download.h"
#include "tandem/status.h"

#define TDM_HUB_DEFAULT_ENDPOINT "https://huggingface.co"
/* The largest listing we accept (a repository with ~100k files). */
#define TDM_HUB_LISTING_MAX ((size_t)64 << 20)
/* The most listing pages we follow (a loop of "next" links ends here). */
#define TDM_HUB_MAX_PAGES 10000

typedef struct tdm_hub_file {
    char *path;
    int64_t size;
    bool lfs;
    char sha256[65];                  /* the LFS sha256, "" when not LFS */
    char oid[TDM_GITOID_HEX_LEN + 1]; /* git blob id of a non-LFS file, "" when unknown */
} tdm_hub_file;

typedef struct tdm_hub_listing {
    tdm_hub_file *files; /* files only, in the order listed */
    size_t n;
} tdm_hub_listing;

/* True for "ORG/NAME" with both parts in [A-Za-z0-9._-] and not "." or "..". */
bool tdm_hub_repo_valid(const char *repo);
/* True for a relative path safe to create under a folder (see the top). */
bool tdm_hub_path_safe(const char *path);

/* The listing URL and a file's download URL (malloc'd, NULL on OOM); the
 * revision and path are percent-encoded ('/' kept between path segments). */
char *tdm_hub_tree_url(const char *endpoint, const char *repo, const char *revision);
char *tdm_hub_resolve_url(const char *endpoint, const char *repo, const char *revision,
                          const char *path);

/* Parses a tree answer (directories skipped). Errors name the entry. */
tdm_status tdm_hub_parse_tree(const char *json, size_t len, tdm_hub_listing *out, tdm_err *err);
/* Fetches and parses the listing of repo at revision, following "next" pages. */
tdm_status tdm_hub_list(tdm_downloader *d, const char *endpoint, const char *repo,
                        const char *revision, tdm_hub_listing *out, tdm_err *err);
void tdm_hub_listing_free(tdm_hub_listing *l);

/* The sentence-transformers files a model needs (config, weights, tokenizer,
 * pooling); onnx adds onnx/model.onnx. */
bool tdm_hub_default_file(const char *path, bool onnx);
/* Shell-style glob over the whole path ('*' also crosses '/'). */
bool tdm_hub_glob(const char *glob, const char *path);

/* ---- pinned digests ------------------------------------------------------------------- */

typedef struct tdm_hub_pin {
    char *path;
    char commit[41];
    char sha256[65];
    int64_t size;
} tdm_hub_pin;

typedef struct tdm_hub_pins {
    tdm_hub_pin *v;
    size_t n;
} tdm_hub_pins;

/*
 * Loads the rows of tsv_path for repo. When revision is a 40-digit commit,
 * only rows of that commit apply; for a branch or tag every row of the repo
 * applies, and two rows that pin one path to different digests are an error.
 * A malformed row is an error naming the file and line.
 */
tdm_status tdm_hub_pins_load(const char *tsv_path, const char *repo, const char *revision,
                             tdm_hub_pins *out, tdm_err *err);
const tdm_hub_pin *tdm_hub_pins_find(const tdm_hub_pins *p, const char *path);
void tdm_hub_pins_free(tdm_hub_pins *p);

/*
 * What the bytes of f must hash to: the pin's sha256 if pinned (refused with
 * TDM_ERR_PARSE when it disagrees with the hub's sha256 or size), else the
 * hub's LFS sha256, else "" (the git blob id is then the check).
 */
tdm_status tdm_hub_expect(const tdm_hub_file *f, const tdm_hub_pin *pin, char sha256[65],
                          tdm_err *err);

/* A tdm_download_verify_fn: user is the tdm_hub_file; checks its git blob id if known. */
tdm_status tdm_hub_verify_oid(void *user, const char *path, tdm_err *err);

#endif

/*
 * Git blob object ids: SHA-1 of "blob <size>\0" followed by the content.
 *
 * The Hugging Face hub lists small (non-LFS) files with their git blob id
 * only, no sha256; computing the same id lets a download check those files
 * byte for byte too instead of trusting their size. SHA-1 is no defence
 * against a forger, but it catches every corruption and truncation, and the
 * large LFS files (the weights) are checked with sha256.
 */
#ifndef TANDEM_EDGE_GITOID_H
#define TANDEM_EDGE_GITOID_H

#include <stddef.h>
#include <stdint.h>

#include "tandem/status.h"

#define TDM_GITOID_HEX_LEN 40

typedef struct tdm_sha1_ctx {
    uint32_t h[5];
    uint64_t total;
    uint8_t block[64];
    size_t used;
} tdm_sha1_ctx;

void tdm_sha1_init(tdm_sha1_ctx *c);
void tdm_sha1_update(tdm_sha1_ctx *c, const void *data, size_t len);
/* Lower-case hex of the digest into hex[41]. */
void tdm_sha1_final_hex(tdm_sha1_ctx *c, char hex[TDM_GITOID_HEX_LEN + 1]);

/* The git blob id of a buffer. */
void tdm_gitoid_buf(const void *data, size_t len, char hex[TDM_GITOID_HEX_LEN + 1]);
/* The git blob id of a whole file. */
tdm_status tdm_gitoid_file(const char *path, char hex[TDM_GITOID_HEX_LEN + 1], tdm_err *err);

#endif

/*
 * SHA-256 (FIPS 180-4), written here so that model digests, download checks,
 * cache keys and ETags need no crypto library (and build for WebAssembly).
 *
 * Streaming: init, update any number of times, final. The context is a plain
 * struct the caller owns; nothing is allocated.
 */
#ifndef TANDEM_BASE_SHA256_H
#define TANDEM_BASE_SHA256_H

#include <stddef.h>
#include <stdint.h>

#include "tandem/status.h"

#define TDM_SHA256_LEN 32
#define TDM_SHA256_HEX_LEN 64

typedef struct tdm_sha256_ctx {
    uint32_t h[8];
    uint64_t total; /* bytes hashed so far */
    uint8_t block[64];
    size_t used; /* bytes waiting in block */
} tdm_sha256_ctx;

void tdm_sha256_init(tdm_sha256_ctx *c);
void tdm_sha256_update(tdm_sha256_ctx *c, const void *data, size_t len);
void tdm_sha256_final(tdm_sha256_ctx *c, uint8_t out[TDM_SHA256_LEN]);

/* One-shot digest of a buffer. */
void tdm_sha256_buf(const void *data, size_t len, uint8_t out[TDM_SHA256_LEN]);
/* Lower-case hex of a digest: hex must hold TDM_SHA256_HEX_LEN + 1 bytes. */
void tdm_sha256_hex(const uint8_t digest[TDM_SHA256_LEN], char *hex);
/* Digest of a whole file as lower-case hex (65 bytes with the NUL). */
tdm_status tdm_sha256_file(const char *path, char hex[TDM_SHA256_HEX_LEN + 1], tdm_err *err);

#endif

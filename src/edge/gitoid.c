/*
 * SHA-1 (FIPS 180-4) and git blob ids (see gitoid.h). Streaming like
 * base/sha256.c: a caller-owned context, nothing allocated but one read
 * buffer when hashing a file.
 */
#include "edge/gitoid.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static uint32_t rol(uint32_t x, int n)
{
    return (x << n) | (x >> (32 - n));
}

static void sha1_block(tdm_sha1_ctx *c, const uint8_t *p)
{
    uint32_t w[80];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | (uint32_t)p[4 * i + 3];
    for (int i = 16; i < 80; i++)
        w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = c->h[0], b = c->h[1], cc = c->h[2], d = c->h[3], e = c->h[4];
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20) {
            f = (b & cc) | (~b & d);
            k = 0x5a827999u;
        } else if (i < 40) {
            f = b ^ cc ^ d;
            k = 0x6ed9eba1u;
        } else if (i < 60) {
            f = (b & cc) | (b & d) | (cc & d);
            k = 0x8f1bbcdcu;
        } else {
            f = b ^ cc ^ d;
            k = 0xca62c1d6u;
        }
        uint32_t t = rol(a, 5) + f + e + k + w[i];
        e = d;
        d = cc;
        cc = rol(b, 30);
        b = a;
        a = t;
    }
    c->h[0] += a;
    c->h[1] += b;
    c->h[2] += cc;
    c->h[3] += d;
    c->h[4] += e;
}

void tdm_sha1_init(tdm_sha1_ctx *c)
{
    static const uint32_t h0[5] = {0x67452301u, 0xefcdab89u, 0x98badcfeu, 0x10325476u, 0xc3d2e1f0u};
    memcpy(c->h, h0, sizeof h0);
    c->total = 0;
    c->used = 0;
}

void tdm_sha1_update(tdm_sha1_ctx *c, const void *data, size_t len)
{
    const uint8_t *p = data;
    c->total += len;
    if (c->used > 0) {
        size_t k = 64 - c->used < len ? 64 - c->used : len;
        memcpy(c->block + c->used, p, k);
        c->used += k;
        p += k;
        len -= k;
        if (c->used < 64)
            return;
        sha1_block(c, c->block);
        c->used = 0;
    }
    for (; len >= 64; p += 64, len -= 64)
        sha1_block(c, p);
    memcpy(c->block, p, len);
    c->used = len;
}

void tdm_sha1_final_hex(tdm_sha1_ctx *c, char hex[TDM_GITOID_HEX_LEN + 1])
{
    uint64_t bits = c->total * 8;
    uint8_t pad[72] = {0x80};
    size_t padlen = c->used < 56 ? 56 - c->used : 120 - c->used;
    tdm_sha1_update(c, pad, padlen);
    uint8_t len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (uint8_t)(bits >> (56 - 8 * i));
    tdm_sha1_update(c, len8, 8);
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 20; i++) {
        uint8_t byte = (uint8_t)(c->h[i / 4] >> (24 - 8 * (i % 4)));
        hex[2 * i] = digits[byte >> 4];
        hex[2 * i + 1] = digits[byte & 15];
    }
    hex[TDM_GITOID_HEX_LEN] = '\0';
}

static void blob_header(tdm_sha1_ctx *c, uint64_t len)
{
    char head[32];
    int n = snprintf(head, sizeof head, "blob %llu", (unsigned long long)len);
    tdm_sha1_init(c);
    tdm_sha1_update(c, head, (size_t)n + 1); /* with the NUL */
}

void tdm_gitoid_buf(const void *data, size_t len, char hex[TDM_GITOID_HEX_LEN + 1])
{
    tdm_sha1_ctx c;
    blob_header(&c, len);
    tdm_sha1_update(&c, data, len);
    tdm_sha1_final_hex(&c, hex);
}

tdm_status tdm_gitoid_file(const char *path, char hex[TDM_GITOID_HEX_LEN + 1], tdm_err *err)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return tdm_errf(err, TDM_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0) {
        fclose(f);
        return tdm_errf(err, TDM_ERR_IO, "cannot stat %s: %s", path, strerror(errno));
    }
    char *buf = malloc(1 << 16);
    if (buf == NULL) {
        fclose(f);
        return tdm_errf(err, TDM_ERR_NOMEM, "out of memory");
    }
    tdm_sha1_ctx c;
    blob_header(&c, (uint64_t)st.st_size);
    uint64_t seen = 0;
    size_t n;
    while ((n = fread(buf, 1, 1 << 16, f)) > 0) {
        tdm_sha1_update(&c, buf, n);
        seen += n;
    }
    bool bad = ferror(f) || seen != (uint64_t)st.st_size;
    free(buf);
    fclose(f);
    if (bad)
        return tdm_errf(err, TDM_ERR_IO, "cannot read %s (or it changed while read)", path);
    tdm_sha1_final_hex(&c, hex);
    return TDM_OK;
}

/*
 * SHA-256 after FIPS 180-4, section 6.2. A straightforward one-block-at-a-time
 * compression function: digests here cover model files and request bodies,
 * where disk and network cost far more than the ~400 MB/s this reaches.
 */
#include "base/sha256.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(TDM_X86)
#include <cpuid.h>
#endif

static const uint32_t k_round[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static uint32_t rotr(uint32_t x, int n)
{
    return (x >> n) | (x << (32 - n));
}

static void compress(uint32_t h[8], const uint8_t *p)
{
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | (uint32_t)p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) +
                      k_round[i] + w[i];
        uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        hh = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
    h[5] += f;
    h[6] += g;
    h[7] += hh;
}

/* Compresses n consecutive 64-byte blocks. */
typedef void (*compress_fn)(uint32_t h[8], const uint8_t *p, size_t blocks);

static void compress_portable(uint32_t h[8], const uint8_t *p, size_t blocks)
{
    for (; blocks > 0; blocks--, p += 64)
        compress(h, p);
}

#if defined(TDM_X86)
void tdm_sha256_compress_shani(uint32_t h[8], const uint8_t *p, size_t blocks);
#endif

static compress_fn g_compress = compress_portable;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

/* The SHA extensions when the CPU has them (and TDM_CPU does not cap below AVX2). */
static void pick(void)
{
#if defined(TDM_X86)
    unsigned a, b, c, d;
    const char *cap = getenv("TDM_CPU");
    bool capped = cap && (strcmp(cap, "portable") == 0 || strcmp(cap, "scalar") == 0);
    if (!capped && __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & (1u << 29)) &&
        __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 19)) /* SSE4.1 */)
        g_compress = tdm_sha256_compress_shani;
#endif
}

void tdm_sha256_init(tdm_sha256_ctx *c)
{
    static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    pthread_once(&g_once, pick);
    memcpy(c->h, iv, sizeof iv);
    c->total = 0;
    c->used = 0;
}

void tdm_sha256_update(tdm_sha256_ctx *c, const void *data, size_t len)
{
    const uint8_t *p = data;
    c->total += len;
    if (c->used > 0) {
        size_t take = 64 - c->used < len ? 64 - c->used : len;
        memcpy(c->block + c->used, p, take);
        c->used += take;
        p += take;
        len -= take;
        if (c->used < 64)
            return;
        g_compress(c->h, c->block, 1);
        c->used = 0;
    }
    if (len >= 64) {
        g_compress(c->h, p, len / 64);
        p += len / 64 * 64;
        len %= 64;
    }
    if (len > 0) {
        memcpy(c->block, p, len);
        c->used = len;
    }
}

void tdm_sha256_final(tdm_sha256_ctx *c, uint8_t out[TDM_SHA256_LEN])
{
    uint64_t bits = c->total * 8;
    uint8_t pad[72] = {0x80};
    size_t npad = (c->used < 56 ? 56 : 120) - c->used;
    for (int i = 0; i < 8; i++)
        pad[npad + i] = (uint8_t)(bits >> (56 - 8 * i));
    uint64_t total = c->total;
    tdm_sha256_update(c, pad, npad + 8);
    c->total = total;
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)(c->h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(c->h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(c->h[i] >> 8);
        out[4 * i + 3] = (uint8_t)c->h[i];
    }
}

void tdm_sha256_buf(const void *data, size_t len, uint8_t out[TDM_SHA256_LEN])
{
    tdm_sha256_ctx c;
    tdm_sha256_init(&c);
    tdm_sha256_update(&c, data, len);
    tdm_sha256_final(&c, out);
}

void tdm_sha256_hex(const uint8_t digest[TDM_SHA256_LEN], char *hex)
{
    static const char k_hex[] = "0123456789abcdef";
    for (int i = 0; i < TDM_SHA256_LEN; i++) {
        hex[2 * i] = k_hex[digest[i] >> 4];
        hex[2 * i + 1] = k_hex[digest[i] & 15];
    }
    hex[TDM_SHA256_HEX_LEN] = '\0';
}

tdm_status tdm_sha256_file(const char *path, char hex[TDM_SHA256_HEX_LEN + 1], tdm_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return tdm_errf(err, TDM_ERR_IO, "%s: %s", path, strerror(errno));
    tdm_sha256_ctx c;
    tdm_sha256_init(&c);
    uint8_t buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        tdm_sha256_update(&c, buf, n);
    int bad = ferror(f);
    fclose(f);
    if (bad)
        return tdm_errf(err, TDM_ERR_IO, "%s: read error", path);
    uint8_t d[TDM_SHA256_LEN];
    tdm_sha256_final(&c, d);
    tdm_sha256_hex(d, hex);
    return TDM_OK;
}

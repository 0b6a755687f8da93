/*
 * Bounded byte writers and readers for the codec's frame format.
 *
 * Every field of a frame is little-endian and every read is checked against
 * the end of its buffer: a reader that runs short sets no flag to forget but
 * returns false, so a truncated or hostile frame turns into a parse error at
 * the exact field that is missing. A writer that runs out of room remembers
 * it and keeps counting, so the encoder can report the size it would have
 * needed. Varints are LEB128 (7 bits per byte, at most 10 bytes).
 */
#ifndef TANDEM_CODEC_BYTES_H
#define TANDEM_CODEC_BYTES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct tdm_wbuf {
    uint8_t *p;
    size_t cap;
    size_t len;    /* bytes written, or that would have been written on overflow */
    bool overflow; /* some write did not fit */
} tdm_wbuf;

static inline void tdm_wbuf_init(tdm_wbuf *w, void *p, size_t cap)
{
    w->p = (uint8_t *)p;
    w->cap = cap;
    w->len = 0;
    w->overflow = false;
}

/* Reserves n bytes and returns where to write them, or NULL (overflow noted). */
static inline uint8_t *tdm_wbuf_reserve(tdm_wbuf *w, size_t n)
{
    if (w->overflow || n > w->cap - w->len) {
        w->overflow = true;
        w->len = (n > SIZE_MAX - w->len) ? SIZE_MAX : w->len + n;
        return NULL;
    }
    uint8_t *at = w->p + w->len;
    w->len += n;
    return at;
}

static inline void tdm_wbuf_bytes(tdm_wbuf *w, const void *src, size_t n)
{
    uint8_t *at = tdm_wbuf_reserve(w, n);
    if (at != NULL && n > 0)
        memcpy(at, src, n);
}

static inline void tdm_wbuf_u8(tdm_wbuf *w, unsigned v)
{
    uint8_t b = (uint8_t)v;
    tdm_wbuf_bytes(w, &b, 1);
}

static inline void tdm_store_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static inline uint32_t tdm_load_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline void tdm_wbuf_u32(tdm_wbuf *w, uint32_t v)
{
    uint8_t b[4];
    tdm_store_le32(b, v);
    tdm_wbuf_bytes(w, b, 4);
}

static inline void tdm_wbuf_u64(tdm_wbuf *w, uint64_t v)
{
    tdm_wbuf_u32(w, (uint32_t)v);
    tdm_wbuf_u32(w, (uint32_t)(v >> 32));
}

/* Bytes of the LEB128 encoding of v (1..10). */
static inline size_t tdm_varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static inline size_t tdm_varint_put(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

static inline void tdm_wbuf_varint(tdm_wbuf *w, uint64_t v)
{
    uint8_t b[10];
    size_t n = tdm_varint_put(b, v);
    tdm_wbuf_bytes(w, b, n);
}

typedef struct tdm_rbuf {
    const uint8_t *p;
    size_t len;
    size_t pos;
} tdm_rbuf;

static inline void tdm_rbuf_init(tdm_rbuf *r, const void *p, size_t len)
{
    r->p = (const uint8_t *)p;
    r->len = len;
    r->pos = 0;
}

static inline size_t tdm_rbuf_left(const tdm_rbuf *r)
{
    return r->len - r->pos;
}

/* Returns a pointer to the next n bytes and advances, or NULL when fewer are left. */
static inline const uint8_t *tdm_rbuf_take(tdm_rbuf *r, size_t n)
{
    if (n > r->len - r->pos)
        return NULL;
    const uint8_t *at = r->p + r->pos;
    r->pos += n;
    return at;
}

static inline bool tdm_rbuf_u8(tdm_rbuf *r, unsigned *v)
{
    const uint8_t *at = tdm_rbuf_take(r, 1);
    if (at == NULL)
        return false;
    *v = at[0];
    return true;
}

static inline bool tdm_rbuf_u32(tdm_rbuf *r, uint32_t *v)
{
    const uint8_t *at = tdm_rbuf_take(r, 4);
    if (at == NULL)
        return false;
    *v = tdm_load_le32(at);
    return true;
}

static inline bool tdm_rbuf_u64(tdm_rbuf *r, uint64_t *v)
{
    const uint8_t *at = tdm_rbuf_take(r, 8);
    if (at == NULL)
        return false;
    *v = (uint64_t)tdm_load_le32(at) | (uint64_t)tdm_load_le32(at + 4) << 32;
    return true;
}

/* Reads a LEB128 varint; false when truncated, longer than 10 bytes or above 2^64. */
static inline bool tdm_rbuf_varint(tdm_rbuf *r, uint64_t *v)
{
    uint64_t x = 0;
    for (unsigned shift = 0; shift < 70; shift += 7) {
        if (r->pos >= r->len)
            return false;
        uint8_t b = r->p[r->pos++];
        if (shift == 63 && (b & 0x7e) != 0)
            return false;
        x |= (uint64_t)(b & 0x7f) << shift;
        if ((b & 0x80) == 0) {
            *v = x;
            return true;
        }
    }
    return false;
}

#endif

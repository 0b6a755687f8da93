/*
 * A tiny protobuf writer for tests: builds ONNX messages byte by byte.
 *
 * The reader's tests need models that exercise one feature or one defect at
 * a time (a hostile dim, a missing type, an unsorted graph), which real
 * files rarely provide. Writing the wire format directly keeps those cases
 * explicit and independent of any protobuf library; the encoding below is a
 * second implementation of the format, so a shared misreading between the
 * decoder and its tests is unlikely. Allocation failures abort the test.
 */
#ifndef TDM_TESTS_PBW_H
#define TDM_TESTS_PBW_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct pbw {
    uint8_t *b;
    size_t n, cap;
} pbw;

static inline void pbw_raw(pbw *w, const void *p, size_t n)
{
    if (w->n + n > w->cap) {
        size_t cap = w->cap ? w->cap : 64;
        while (cap < w->n + n)
            cap *= 2;
        uint8_t *b = realloc(w->b, cap);
        if (b == NULL) {
            fprintf(stderr, "pbw: out of memory\n");
            abort();
        }
        w->b = b;
        w->cap = cap;
    }
    if (n > 0)
        memcpy(w->b + w->n, p, n);
    w->n += n;
}

static inline void pbw_varint(pbw *w, uint64_t v)
{
    uint8_t buf[10];
    int n = 0;
    do {
        buf[n] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v)
            buf[n] |= 0x80;
        n++;
    } while (v);
    pbw_raw(w, buf, (size_t)n);
}

static inline void pbw_tag(pbw *w, uint32_t num, int wire)
{
    pbw_varint(w, (uint64_t)num << 3 | (uint64_t)wire);
}

/* varint field */
static inline void pbw_u(pbw *w, uint32_t num, uint64_t v)
{
    pbw_tag(w, num, 0);
    pbw_varint(w, v);
}

static inline void pbw_fixed32(pbw *w, uint32_t num, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    pbw_tag(w, num, 5);
    pbw_raw(w, b, 4);
}

static inline void pbw_f32(pbw *w, uint32_t num, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    pbw_fixed32(w, num, u);
}

static inline void pbw_fixed64(pbw *w, uint32_t num, uint64_t v)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    pbw_tag(w, num, 1);
    pbw_raw(w, b, 8);
}

static inline void pbw_bytes(pbw *w, uint32_t num, const void *p, size_t n)
{
    pbw_tag(w, num, 2);
    pbw_varint(w, n);
    pbw_raw(w, p, n);
}

static inline void pbw_str(pbw *w, uint32_t num, const char *s)
{
    pbw_bytes(w, num, s, strlen(s));
}

/* Embeds sub as a length-delimited field and frees it. */
static inline void pbw_msg(pbw *w, uint32_t num, pbw *sub)
{
    pbw_bytes(w, num, sub->b, sub->n);
    free(sub->b);
    memset(sub, 0, sizeof *sub);
}

/* Packed varints. */
static inline void pbw_packed(pbw *w, uint32_t num, const int64_t *v, size_t n)
{
    pbw p = {0};
    for (size_t i = 0; i < n; i++)
        pbw_varint(&p, (uint64_t)v[i]);
    pbw_msg(w, num, &p);
}

static inline void pbw_packed_f32(pbw *w, uint32_t num, const float *v, size_t n)
{
    pbw_bytes(w, num, v, n * 4); /* little-endian host */
}

static inline void pbw_free(pbw *w)
{
    free(w->b);
    memset(w, 0, sizeof *w);
}

#endif

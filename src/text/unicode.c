/*
 * UTF-8 validation/decoding and the growable vectors of the text layer.
 *
 * Vectors grow geometrically and never shrink: an encode call keeps its
 * scratch between the pieces of a text (and the texts of a batch), so after
 * the first few texts tokenization allocates nothing.
 */
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "text/text_internal.h"
#include "text/unicode.h"

static bool grow(void **data, size_t *cap, size_t n, size_t extra, size_t elem)
{
    size_t need;
    if (tdm_add_overflow(n, extra, &need))
        return false;
    if (need <= *cap)
        return true;
    size_t cap2 = *cap ? *cap : 64;
    while (cap2 < need) {
        if (cap2 > SIZE_MAX / 2)
            return false;
        cap2 *= 2;
    }
    size_t bytes;
    if (tdm_mul_overflow(cap2, elem, &bytes))
        return false;
    void *p = realloc(*data, bytes);
    if (p == NULL)
        return false;
    *data = p;
    *cap = cap2;
    return true;
}

bool tdm_u32vec_reserve(tdm_u32vec *a, size_t extra)
{
    return grow((void **)&a->v, &a->cap, a->n, extra, sizeof *a->v);
}

bool tdm_i32vec_reserve(tdm_i32vec *a, size_t extra)
{
    return grow((void **)&a->v, &a->cap, a->n, extra, sizeof *a->v);
}

bool tdm_bytevec_reserve(tdm_bytevec *a, size_t extra)
{
    return grow((void **)&a->v, &a->cap, a->n, extra, sizeof *a->v);
}

size_t tdm_utf8_invalid_at(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        if (u[i] < 0x80) {
            i++;
            continue;
        }
        uint32_t cp;
        size_t k = tdm_utf8_decode(u + i, len - i, &cp);
        if (k == 0)
            return i;
        i += k;
    }
    return len;
}

bool tdm_utf8_to_u32(const char *s, size_t len, tdm_u32vec *out, size_t *bad_at)
{
    out->n = 0;
    /* One code point per byte at most. */
    if (!tdm_u32vec_reserve(out, len)) {
        *bad_at = SIZE_MAX;
        return false;
    }
    const unsigned char *u = (const unsigned char *)s;
    uint32_t *o = out->v;
    size_t i = 0;
    while (i < len) {
        if (u[i] < 0x80) {
            *o++ = u[i++];
            continue;
        }
        size_t k = tdm_utf8_decode(u + i, len - i, o);
        if (k == 0) {
            *bad_at = i;
            out->n = (size_t)(o - out->v);
            return false;
        }
        o++;
        i += k;
    }
    out->n = (size_t)(o - out->v);
    return true;
}

/*
 * Context-modelled symbol streams: adaptive binary decisions, range coded.
 *
 * A symbol is a wrapped offset from the zero point, d in [-A/2, A/2) for an
 * alphabet of A symbols. With L the symbol to the left, U the one above and
 * UL above-left (0 outside the map; "above" is `row` symbols back), it is
 * coded as a chain of binary decisions, each with its own context:
 *   1. d == L?                 ctx: L == U, L == 0, buckets of L, U, UL
 *   2. d == U? (when U != L)   ctx: U == 0, L == 0, buckets of L, U, UL
 *   3. d == 0? (when 0 is neither L nor U, else d != 0 is known)
 *   4. sign                    ctx: signs of L and U
 *   5. e = floor(log2 |d|) in unary (up to bits - 1)
 *   6. the e bits below the top one: the first two in contexts of their
 *      prefix, the rest in one context per e.
 * Steps 5 and 6 take a context k from |L| + |U| in half-octave steps, so the
 * magnitude is coded against the neighbourhood's.
 *
 * Probabilities are 16-bit and adapt at rate 1/(n + 2) for the n-th use of
 * a context, down to 1/32: a fresh context learns from its first few
 * decisions as fast as a count would, which is what matters on a
 * thousand-symbol tensor, then settles. The range coder is LZMA's (32-bit
 * range, carry through a cached byte, 12-bit probabilities here); its
 * first byte is always zero and is not stored. The decoder reads exactly
 * the bytes the encoder wrote; reading past them or leaving any is an error,
 * and after the last symbol the decoder's offset in the range (`code`) must
 * be zero, as the encoder's flush leaves it (xz checks the same).
 *
 * The encoder and the decoder run the same function (code_symbols) so that
 * the context logic cannot diverge; `enc` only selects what a decision does.
 */
#include "codec/ctxcode.h"

#include <assert.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define RATE_LIMIT 30u /* rate 1/(n + 2) stops at 1/32 */
#define TOP (1u << 24)

enum {
    CTX_EQL = 0,                 /* 256: d == L */
    CTX_EQU = CTX_EQL + 256,     /* 256: d == U */
    CTX_ZERO = CTX_EQU + 256,    /* 64: d == 0 */
    CTX_SIGN = CTX_ZERO + 64,    /* 9 */
    CTX_EXP = CTX_SIGN + 9,      /* 15 k x 8 positions */
    CTX_MANT = CTX_EXP + 15 * 8, /* 8 e x 4 kinds x 15 k */
    CTX_COUNT = CTX_MANT + 8 * 4 * 15
};

typedef struct prob {
    uint16_t p; /* probability of a 0 decision, 16 bits */
    uint8_t n;  /* uses, up to RATE_LIMIT */
} prob;

typedef struct coder {
    /* encoder */
    uint64_t low;
    uint64_t cache_size;
    uint8_t cache;
    bool first;
    uint8_t *out;
    size_t cap, len;
    bool full;
    /* decoder */
    uint32_t code;
    const uint8_t *in;
    size_t nin, pos;
    bool overrun;
    /* both */
    uint32_t range;
    prob pr[CTX_COUNT];
} coder;

static const uint16_t k_rate[RATE_LIMIT + 1] = {32768, 21845, 16384, 13107, 10922, 9362, 8192, 7281,
                                                6553,  5957,  5461,  5041,  4681,  4369, 4096, 3855,
                                                3640,  3449,  3276,  3120,  2978,  2849, 2730, 2621,
                                                2520,  2427,  2340,  2259,  2184,  2114, 2048};

static void put_byte(coder *c, unsigned b)
{
    if (c->first) { /* LZMA's leading byte, always zero */
        assert(b == 0);
        c->first = false;
        return;
    }
    if (c->len < c->cap)
        c->out[c->len] = (uint8_t)b;
    else
        c->full = true;
    c->len++;
}

static void shift_low(coder *c)
{
    if ((uint32_t)c->low < 0xFF000000u || (c->low >> 32) != 0) {
        unsigned carry = (unsigned)(c->low >> 32);
        unsigned t = c->cache;
        do {
            put_byte(c, (t + carry) & 0xFFu);
            t = 0xFF;
        } while (--c->cache_size != 0);
        c->cache = (uint8_t)(c->low >> 24);
    }
    c->cache_size++;
    c->low = (c->low & 0x00FFFFFFu) << 8;
}

static unsigned next_byte(coder *c)
{
    if (c->pos < c->nin)
        return c->in[c->pos++];
    c->overrun = true;
    return 0;
}

#define ALWAYS_INLINE inline __attribute__((always_inline))

/* Encodes `bit` (enc) or decodes and returns it, in context pr. */
static ALWAYS_INLINE unsigned rc_bit(coder *c, prob *pr, unsigned bit, bool enc)
{
    uint32_t p12 = (uint32_t)(pr->p >> 4);
    p12 = p12 < 1 ? 1 : p12 > 4095 ? 4095 : p12;
    uint32_t bound = (c->range >> 12) * p12;
    if (enc) {
        if (bit == 0) {
            c->range = bound;
        } else {
            c->low += bound;
            c->range -= bound;
        }
        while (c->range < TOP) {
            c->range <<= 8;
            shift_low(c);
        }
    } else {
        if (c->code < bound) {
            c->range = bound;
            bit = 0;
        } else {
            c->code -= bound;
            c->range -= bound;
            bit = 1;
        }
        while (c->range < TOP) {
            c->range <<= 8;
            c->code = (c->code << 8) | next_byte(c);
        }
    }
    uint32_t r = k_rate[pr->n];
    if (bit == 0)
        pr->p = (uint16_t)(pr->p + (((65535u - pr->p) * r) >> 16));
    else
        pr->p = (uint16_t)(pr->p - ((pr->p * r) >> 16));
    if (pr->n < RATE_LIMIT)
        pr->n++;
    return bit;
}

static unsigned ilog2(unsigned v)
{
    return 31u - (unsigned)__builtin_clz(v);
}

/* |L| + |U| in half-octave steps, 0..14. */
static unsigned mag_ctx(unsigned v)
{
    if (v < 2)
        return v;
    unsigned e = ilog2(v), k = 2 * e + ((v >> (e - 1)) & 1u);
    return k > 14 ? 14 : k;
}

static unsigned bucket(int d, unsigned bits)
{
    unsigned m = (unsigned)(d < 0 ? -d : d);
    if (bits == 8)
        return m == 0 ? 0 : m <= 2 ? 1 : m <= 8 ? 2 : 3;
    return m == 0 ? 0 : m <= 1 ? 1 : m <= 3 ? 2 : 3;
}

static unsigned sign3(int d)
{
    return d > 0 ? 1 : d < 0 ? 2 : 0;
}

/*
 * Codes sym[0, n) (enc, out NULL) or decodes into out (sym == out). Returns false when the decoder
 * produced a symbol outside the alphabet.
 */
static ALWAYS_INLINE bool code_symbols(coder *c, const uint8_t *sym, uint8_t *out, size_t n,
                                       unsigned bits, size_t row, bool enc)
{
    const int half = 1 << (bits - 1), amask = (1 << bits) - 1;
    const unsigned emax = bits - 1;
    for (unsigned i = 0; i < CTX_COUNT; i++) {
        c->pr[i].p = 32768;
        c->pr[i].n = 0;
    }
    uint8_t bk[256]; /* bucket of a signed offset, indexed by its low byte */
    for (int v = -128; v < 128; v++)
        bk[v & 0xff] = (uint8_t)bucket(v, bits);
#define SGN(s) ((int)(s) < half ? (int)(s) : (int)(s) - (1 << bits))
    for (size_t i = 0; i < n; i++) {
        int L = i > 0 ? SGN(sym[i - 1]) : 0;
        int U = row != 0 && i >= row ? SGN(sym[i - row]) : 0;
        int UL = row != 0 && i > row ? SGN(sym[i - row - 1]) : 0;
        unsigned nb = bk[L & 0xff] * 16u + bk[U & 0xff] * 4u + bk[UL & 0xff];
        int d = enc ? SGN(sym[i]) : 0;
        unsigned b = rc_bit(c, &c->pr[CTX_EQL + ((L == U) * 2u + (L == 0)) * 64 + nb], d == L, enc);
        if (b) {
            if (out != NULL)
                out[i] = (uint8_t)(L & amask);
            continue;
        }
        if (U != L) {
            b = rc_bit(c, &c->pr[CTX_EQU + ((U == 0) * 2u + (L == 0)) * 64 + nb], d == U, enc);
            if (b) {
                if (out != NULL)
                    out[i] = (uint8_t)(U & amask);
                continue;
            }
        }
        if (L != 0 && U != 0) {
            b = rc_bit(c, &c->pr[CTX_ZERO + nb], d != 0, enc);
            if (!b) {
                if (out != NULL)
                    out[i] = 0;
                continue;
            }
        }
        unsigned neg = rc_bit(c, &c->pr[CTX_SIGN + sign3(L) * 3 + sign3(U)], d < 0, enc);
        unsigned mag = (unsigned)(d < 0 ? -d : d);
        unsigned k = mag_ctx((unsigned)(L < 0 ? -L : L) + (unsigned)(U < 0 ? -U : U));
        unsigned e = enc ? ilog2(mag) : 0;
        if (enc) {
            for (unsigned j = 0; j < e; j++)
                rc_bit(c, &c->pr[CTX_EXP + k * 8 + j], 1, enc);
            if (e < emax)
                rc_bit(c, &c->pr[CTX_EXP + k * 8 + e], 0, enc);
        } else {
            while (e < emax && rc_bit(c, &c->pr[CTX_EXP + k * 8 + e], 0, enc))
                e++;
        }
        unsigned v = 1; /* the bits of mag from the top one down */
        for (unsigned j = e; j-- > 0;) {
            unsigned t = e - j == 1 ? 0 : e - j == 2 ? 1 + (v & 1u) : 3;
            unsigned bit = rc_bit(c, &c->pr[CTX_MANT + (e * 4 + t) * 15 + k], (mag >> j) & 1u, enc);
            v = v * 2 + bit;
        }
        if (!enc) {
            if (neg ? v > (unsigned)half : v >= (unsigned)half)
                return false;
            out[i] = (uint8_t)((neg ? -(int)v : (int)v) & amask);
        }
    }
#undef SGN
    return true;
}

/* The two specialisations (the compiler drops the other side's branches from each). */
static void encode_symbols(coder *c, const uint8_t *sym, size_t n, unsigned bits, size_t row)
{
    code_symbols(c, sym, NULL, n, bits, row, true);
}

static bool decode_symbols(coder *c, uint8_t *sym, size_t n, unsigned bits, size_t row)
{
    return code_symbols(c, sym, sym, n, bits, row, false);
}

size_t tdm_ctx_encode(const uint8_t *sym, size_t n, unsigned bits, size_t row, uint8_t *out,
                      size_t cap)
{
    assert(bits == 4 || bits == 8);
    if (row >= n)
        row = 0;
    size_t hdr = tdm_varint_len(row) + tdm_varint_len(cap);
    if (cap <= hdr)
        return 0;
    coder *c = malloc(sizeof *c);
    if (c == NULL)
        return 0;
    memset(c, 0, sizeof *c);
    c->range = 0xFFFFFFFFu;
    c->cache_size = 1;
    c->first = true;
    c->out = out + hdr;
    c->cap = cap - hdr;
    encode_symbols(c, sym, n, bits, row);
    for (int i = 0; i < 5; i++)
        shift_low(c);
    size_t nbytes = c->len;
    bool full = c->full;
    free(c);
    size_t h = tdm_varint_len(row) + tdm_varint_len(nbytes);
    if (full || h + nbytes > cap)
        return 0;
    memmove(out + h, out + hdr, nbytes);
    size_t at = tdm_varint_put(out, row);
    at += tdm_varint_put(out + at, nbytes);
    assert(at == h);
    return h + nbytes;
}

tdm_status tdm_ctx_decode(tdm_rbuf *r, uint8_t *sym, size_t n, unsigned bits, const char *what,
                          tdm_err *err)
{
    assert(bits == 4 || bits == 8);
    uint64_t row, nbytes;
    if (!tdm_rbuf_varint(r, &row) || row >= (n > 0 ? n : 1))
        return tdm_errf(err, TDM_ERR_PARSE,
                        "codec: %s: context-modelled stream has a missing row length or one "
                        "not below its %zu symbols",
                        what, n);
    if (!tdm_rbuf_varint(r, &nbytes) || nbytes < 4 || nbytes > tdm_rbuf_left(r))
        return tdm_errf(err, TDM_ERR_PARSE,
                        "codec: %s: context-modelled stream's byte count is missing, below 4 or "
                        "above the %zu bytes left",
                        what, tdm_rbuf_left(r));
    coder *c = malloc(sizeof *c);
    if (c == NULL)
        return tdm_errf(err, TDM_ERR_NOMEM, "codec: out of memory for a context-model decoder");
    memset(c, 0, sizeof *c);
    c->in = tdm_rbuf_take(r, (size_t)nbytes);
    c->nin = (size_t)nbytes;
    c->range = 0xFFFFFFFFu;
    for (int i = 0; i < 4; i++)
        c->code = (c->code << 8) | next_byte(c);
    tdm_status s = TDM_OK;
    if (c->code == 0xFFFFFFFFu)
        s = tdm_errf(err, TDM_ERR_PARSE, "codec: %s: context-modelled stream starts invalid", what);
    else if (!decode_symbols(c, sym, n, bits, (size_t)row))
        s = tdm_errf(err, TDM_ERR_PARSE,
                     "codec: %s: context-modelled stream decodes a symbol outside the %u-bit "
                     "alphabet (corrupt)",
                     what, bits);
    else if (c->overrun || c->pos != c->nin || c->code != 0)
        s = tdm_errf(err, TDM_ERR_PARSE,
                     "codec: %s: context-modelled stream used %zu of its %zu bytes (corrupt)", what,
                     c->pos, c->nin);
    free(c);
    return s;
}

/*
 * The codec's entropy coder and checksum on their own: CRC32C against the
 * RFC 3720 check value with both implementations, symbol streams that round
 * trip for every method and context model, sizes close to the Shannon
 * entropy computed here, and corrupt streams rejected without crashing.
 * Context-modelled streams (ctxcode.c) round trip on their own for edge
 * cases and are chosen only when smaller; hostile ones are rejected.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "codec/crc32c.h"
#include "codec/ctxcode.h"
#include "codec/entropy.h"
#include "codec_util.h"

static void test_crc32c(void **state)
{
    (void)state;
    const char *check = "123456789";
    assert_int_equal(tdm_crc32c(0, check, 9), 0xE3069283u);
    assert_int_equal(tdm_crc32c_portable(0, check, 9), 0xE3069283u);
    assert_int_equal(tdm_crc32c(0, NULL, 0), 0);
    /* 32 bytes of zeros, RFC 3720 B.4 */
    uint8_t z[32] = {0};
    assert_int_equal(tdm_crc32c(0, z, 32), 0x8A9136AAu);
    rng r = {1};
    uint8_t buf[1100];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)rng_next(&r);
    for (size_t off = 0; off < 9; off++)
        for (size_t n = 0; n < 1000; n += 37) {
            uint32_t a = tdm_crc32c(0, buf + off, n), b = tdm_crc32c_portable(0, buf + off, n);
            assert_int_equal(a, b);
            /* chaining */
            uint32_t c = tdm_crc32c(tdm_crc32c(0, buf + off, n / 3), buf + off + n / 3, n - n / 3);
            assert_int_equal(a, c);
        }
}

/* Encodes (for a frame of `version`) and decodes n symbols; returns the stream size. */
static size_t sym_roundtrip_v(const uint8_t *sym, size_t n, unsigned bits, bool entropy,
                              unsigned version, tdm_sym_stats *stats)
{
    size_t cap = tdm_sym_bound(n, bits);
    uint8_t *buf = malloc(cap), *back = malloc(n ? n : 1);
    tdm_wbuf w;
    tdm_wbuf_init(&w, buf, cap);
    tdm_err err;
    assert_int_equal(tdm_sym_encode_v(sym, n, bits, entropy, version, &w, stats, &err), TDM_OK);
    assert_false(w.overflow);
    assert_int_equal(stats->stream_bytes, w.len);
    if (version < 2)
        assert_int_not_equal(stats->method, TDM_SYM_RUNS);
    tdm_rbuf r;
    tdm_rbuf_init(&r, buf, w.len);
    if (tdm_sym_decode_v(&r, back, n, bits, version, "test", &err) != TDM_OK)
        fail_msg("decode: %s", err.msg);
    assert_int_equal(tdm_rbuf_left(&r), 0);
    if (n > 0)
        assert_memory_equal(back, sym, n);
    free(buf);
    free(back);
    return w.len;
}

static size_t sym_roundtrip(const uint8_t *sym, size_t n, unsigned bits, bool entropy,
                            tdm_sym_stats *stats)
{
    return sym_roundtrip_v(sym, n, bits, entropy, TDM_SYM_VERSION, stats);
}

static double entropy_bits(const uint8_t *sym, size_t n)
{
    double cnt[256] = {0}, h = 0;
    for (size_t i = 0; i < n; i++)
        cnt[sym[i]]++;
    for (int s = 0; s < 256; s++)
        if (cnt[s] > 0)
            h -= cnt[s] * log2(cnt[s] / (double)n);
    return h;
}

static void test_methods(void **state)
{
    (void)state;
    rng r = {2};
    size_t n = 20000;
    uint8_t *s = malloc(n);
    tdm_sym_stats st;
    /* uniform bytes: raw */
    for (size_t i = 0; i < n; i++)
        s[i] = (uint8_t)rng_next(&r);
    assert_int_equal(sym_roundtrip(s, n, 8, true, &st), n + 1);
    assert_int_equal(st.method, TDM_SYM_RAW);
    /* constant */
    memset(s, 9, n);
    assert_int_equal(sym_roundtrip(s, n, 8, true, &st), 2);
    assert_int_equal(st.method, TDM_SYM_CONST);
    /* entropy off: raw even when compressible */
    assert_int_equal(sym_roundtrip(s, n, 8, false, &st), n + 1);
    /* 4-bit raw packs two per byte, odd counts too */
    for (size_t i = 0; i < n; i++)
        s[i] = (uint8_t)(rng_next(&r) & 15);
    assert_int_equal(sym_roundtrip(s, 7, 4, false, &st), 1 + 4);
    assert_int_equal(sym_roundtrip(s, n, 4, false, &st), 1 + n / 2);
    /* extreme skew: frequencies 4095 and 1, the edges of the reciprocal division (version 1
     * streams: version 2 codes these as a few runs) */
    memset(s, 0, n);
    s[500] = 1;
    sym_roundtrip_v(s, n, 8, true, 1, &st);
    assert_int_equal(st.method, TDM_SYM_RANS);
    assert_true(sym_roundtrip(s, n, 8, true, &st) < 24);
    assert_int_equal(st.method, TDM_SYM_RUNS);
    s[501] = 255;
    s[n - 1] = 17;
    sym_roundtrip_v(s, n, 8, true, 1, &st);
    assert_int_equal(st.method, TDM_SYM_RANS);
    /* small counts, every method */
    for (size_t k = 0; k < 40; k++) {
        sym_roundtrip(s, k, 4, true, &st);
        sym_roundtrip(s, k, 8, true, &st);
    }
    free(s);
}

/* i.i.d. skewed symbols: rANS within 1% of the entropy plus its tables. */
static void test_near_entropy(void **state)
{
    (void)state;
    rng r = {3};
    size_t n = 100000;
    uint8_t *s = malloc(n);
    for (int bits = 4; bits <= 8; bits += 4) {
        for (int rep = 0; rep < 3; rep++) {
            double p = 0.3 + 0.3 * rep; /* geometric-ish: symbol k with prob ~ p^k */
            for (size_t i = 0; i < n; i++) {
                unsigned k = 0;
                while (rng_unit(&r) < p && k < (1u << bits) - 1)
                    k++;
                s[i] = (uint8_t)k;
            }
            tdm_sym_stats st;
            size_t len = sym_roundtrip(s, n, (unsigned)bits, true, &st);
            double h = entropy_bits(s, n) / 8;
            print_message("bits %d p %.1f: %zu bytes, entropy %.0f, tables %zu, model %u\n", bits,
                          p, len, h, st.table_bytes, st.model);
            assert_int_equal(st.method, TDM_SYM_RANS);
            assert_true((double)len <= h * 1.01 + (double)st.table_bytes + 40);
        }
    }
    free(s);
}

/* Runs of zeros (dead channels, zero regions): a context model pays and is chosen. */
static void test_context_model_pays(void **state)
{
    (void)state;
    rng r = {4};
    size_t n = 65536;
    uint8_t *s = malloc(n);
    size_t i = 0;
    while (i < n) {
        size_t run = 1 + rng_next(&r) % 200;
        bool zero = rng_next(&r) & 1;
        for (size_t j = 0; j < run && i < n; j++, i++)
            s[i] = zero ? 0 : (uint8_t)(1 + rng_next(&r) % 40);
    }
    tdm_sym_stats st;
    size_t len = sym_roundtrip(s, n, 8, true, &st);
    double h0 = entropy_bits(s, n) / 8;
    print_message("zero runs: %zu bytes, order-0 entropy %.0f, model %u (%u tables)\n", len, h0,
                  st.model, st.nctx);
    assert_true(st.model > 0);
    assert_true((double)len < h0 * 0.8);
    free(s);
}

static void test_corrupt_streams(void **state)
{
    (void)state;
    rng r = {5};
    size_t n = 3000;
    uint8_t *s = malloc(n), *back = malloc(n);
    for (size_t i = 0; i < n; i++)
        s[i] = (rng_next(&r) % 3 == 0) ? (uint8_t)(rng_next(&r) % 50) : 0;
    size_t cap = tdm_sym_bound(n, 8);
    uint8_t *buf = malloc(cap), *m = malloc(cap);
    tdm_wbuf w;
    tdm_wbuf_init(&w, buf, cap);
    tdm_sym_stats st;
    assert_int_equal(tdm_sym_encode(s, n, 8, true, &w, &st, NULL), TDM_OK);
    assert_int_equal(st.method, TDM_SYM_RANS);
    tdm_err err;
    /* truncated at every length */
    for (size_t l = 0; l < w.len; l++) {
        tdm_rbuf rb;
        tdm_rbuf_init(&rb, buf, l);
        assert_int_not_equal(tdm_sym_decode(&rb, back, n, 8, "t", &err), TDM_OK);
    }
    /* random corruption: never a crash, mostly caught by the end-state check */
    size_t caught = 0;
    for (int rep = 0; rep < 2000; rep++) {
        memcpy(m, buf, w.len);
        m[rng_next(&r) % w.len] ^= (uint8_t)(1 + rng_next(&r) % 255);
        tdm_rbuf rb;
        tdm_rbuf_init(&rb, m, w.len);
        caught += tdm_sym_decode(&rb, back, n, 8, "t", &err) != TDM_OK;
    }
    print_message("corrupted rANS streams caught: %zu of 2000\n", caught);
    assert_true(caught > 1900);
    /* 4-bit symbols out of range in a constant stream, a bad method byte */
    uint8_t bad[2] = {TDM_SYM_CONST, 16};
    tdm_rbuf rb;
    tdm_rbuf_init(&rb, bad, 2);
    assert_int_equal(tdm_sym_decode(&rb, back, 5, 4, "t", &err), TDM_ERR_PARSE);
    bad[0] = 3;
    tdm_rbuf_init(&rb, bad, 2);
    assert_int_equal(tdm_sym_decode(&rb, back, 5, 4, "t", &err), TDM_ERR_PARSE);
    tdm_rbuf_init(&rb, bad, 2);
    assert_int_equal(tdm_sym_decode_v(&rb, back, 5, 4, 1, "t", &err), TDM_ERR_PARSE);
    assert_non_null(strstr(err.msg, "version-1"));
    bad[0] = 3 | 1 << 2; /* method 3 has no model bits */
    tdm_rbuf_init(&rb, bad, 2);
    assert_int_equal(tdm_sym_decode(&rb, back, 5, 4, "t", &err), TDM_ERR_PARSE);
    bad[0] = TDM_SYM_RANS | 7 << 2;
    tdm_rbuf_init(&rb, bad, 2);
    assert_int_equal(tdm_sym_decode(&rb, back, 5, 4, "t", &err), TDM_ERR_PARSE);
    free(s);
    free(back);
    free(buf);
    free(m);
}

/* Runs of random lengths (geometric, some very long) of symbols drawn from a skewed set. */
static void fill_runs(rng *r, uint8_t *s, size_t n, unsigned bits, unsigned zero_pct,
                      unsigned mean_run)
{
    size_t i = 0;
    while (i < n) {
        size_t run = 1;
        while (rng_next(r) % mean_run != 0 && run < n)
            run++;
        if (rng_next(r) % 50 == 0)
            run += rng_next(r) % 5000; /* the odd very long run */
        unsigned v = (rng_next(r) % 100 < zero_pct) ? 0 : (unsigned)(rng_next(r) % (1u << bits));
        for (size_t j = 0; j < run && i < n; j++)
            s[i++] = (uint8_t)v;
    }
}

/* Run-length streams (version 2) round trip on every shape of run. */
static void test_runs_roundtrip(void **state)
{
    (void)state;
    rng r = {7};
    size_t n = 70000;
    uint8_t *s = malloc(n);
    tdm_sym_stats st;
    /* all zeros, and one symbol everywhere: constant streams, never runs */
    for (unsigned bits = 4; bits <= 8; bits += 4) {
        memset(s, 0, n);
        assert_int_equal(sym_roundtrip(s, n, bits, true, &st), 2);
        assert_int_equal(st.method, TDM_SYM_CONST);
        memset(s, 9, n);
        assert_int_equal(sym_roundtrip(s, n, bits, true, &st), 2);
    }
    /* two runs, and a single nonzero in a sea of zeros at every offset mod 4 (rANS lanes) */
    memset(s, 0, n);
    memset(s + n / 2, 5, n - n / 2);
    assert_true(sym_roundtrip(s, n, 8, true, &st) < 24);
    assert_int_equal(st.method, TDM_SYM_RUNS);
    assert_int_equal(st.runs, 2);
    memset(s, 0, n);
    for (size_t off = 0; off < 9; off++) {
        s[1000 + off] = 3;
        sym_roundtrip(s, 4000 + off, 4, true, &st);
        assert_int_equal(st.method, TDM_SYM_RUNS);
        s[1000 + off] = 0;
    }
    /* every run length 1..300 and around every power of two up to 2^16, across lane and
     * length-code boundaries */
    {
        size_t i = 0;
        unsigned v = 1;
        for (size_t len = 1; len <= 300 && i + len < n; len++, v = v % 200 + 1) {
            memset(s + i, (int)(len % 3 == 0 ? 0 : v), len);
            i += len;
        }
        for (unsigned e = 2; e <= 16; e++)
            for (int d = -1; d <= 1; d++) {
                size_t len = ((size_t)1 << e) + (size_t)d;
                if (i + len > n)
                    break;
                memset(s + i, (int)((e + (unsigned)d) & 1 ? 0 : e), len);
                i += len;
            }
        sym_roundtrip(s, i, 8, true, &st);
        assert_int_equal(st.method, TDM_SYM_RUNS);
        for (size_t k = 0; k < i; k++)
            s[k] &= 15;
        sym_roundtrip(s, i, 4, true, &st);
    }
    /* alternating symbols: every run has length 1, the plain stream is kept */
    for (size_t i = 0; i < n; i++)
        s[i] = (uint8_t)(i & 1);
    sym_roundtrip(s, n, 8, true, &st);
    assert_int_not_equal(st.method, TDM_SYM_RUNS);
    /* random run structures, both alphabets, small to large: never larger than version 1 */
    for (int rep = 0; rep < 60; rep++) {
        unsigned bits = rep & 1 ? 8 : 4;
        size_t len = 1 + rng_next(&r) % (rep < 30 ? 200 : n);
        fill_runs(&r, s, len, bits, (unsigned)(rng_next(&r) % 100), 1 + rng_next(&r) % 40);
        tdm_sym_stats st1;
        size_t l2 = sym_roundtrip(s, len, bits, true, &st);
        size_t l1 = sym_roundtrip_v(s, len, bits, true, 1, &st1);
        assert_true(l2 <= l1);
        assert_true(st.method != TDM_SYM_RUNS || l2 < l1);
    }
    /* the longest run: 2^22 + 3 symbols, one literal first */
    size_t big = ((size_t)1 << 22) + 4;
    uint8_t *b = calloc(big, 1);
    assert_non_null(b);
    b[0] = 7;
    assert_true(sym_roundtrip(b, big, 8, true, &st) < 32);
    assert_int_equal(st.method, TDM_SYM_RUNS);
    free(b);
    free(s);
}

/* Decodes a hand-made stream of n 8-bit symbols; returns the status. */
static tdm_status decode_crafted(const uint8_t *p, size_t len, uint8_t *out, size_t n,
                                 unsigned version, tdm_err *err)
{
    tdm_rbuf rb;
    tdm_rbuf_init(&rb, p, len);
    tdm_status s = tdm_sym_decode_v(&rb, out, n, 8, version, "crafted", err);
    if (s == TDM_OK && tdm_rbuf_left(&rb) != 0)
        fail_msg("crafted stream left %zu bytes", tdm_rbuf_left(&rb));
    return s;
}

/* Hostile run-length streams: counts, lengths, codes and extra bits that lie. */
static void test_runs_hostile(void **state)
{
    (void)state;
    /*
     * 23 symbols: 5 5 5 then 0 x20. Run 0: literal 5 (a nonzero run, stream 0), v = 2, code 2.
     * Run 1: literal 0 (a zero run, stream 1), v = 19, code 16 (16-19) with two extra bits 11.
     */
    const uint8_t good[] = {3,    2,   0x00, 5,  0, /* runs, raw literal stream */
                            1,                      /* codes of nonzero runs */
                            0x00, 2,   0x00, 16,    /* two raw code streams */
                            1,    0x03};            /* one byte of extra bits */
    uint8_t out[32], m[sizeof good + 8];
    tdm_err err;
    assert_int_equal(decode_crafted(good, sizeof good, out, 23, 2, &err), TDM_OK);
    uint8_t want[23] = {5, 5, 5};
    assert_memory_equal(out, want, 23);
    /* a version-1 frame may not hold it */
    assert_int_equal(decode_crafted(good, sizeof good, out, 23, 1, &err), TDM_ERR_PARSE);
    /* the same stream for 22 or 24 symbols: overrun, or short */
    assert_int_equal(decode_crafted(good, sizeof good, out, 22, 2, &err), TDM_ERR_PARSE);
    assert_non_null(strstr(err.msg, "overruns"));
    assert_int_equal(decode_crafted(good, sizeof good, out, 24, 2, &err), TDM_ERR_PARSE);
    struct {
        size_t at;
        uint8_t v;
        const char *msg;
    } cases[] = {
        {1, 0, "run count"},      /* zero runs */
        {1, 24, "run count"},     /* more runs than symbols */
        {5, 3, "context 0"},      /* more codes than runs */
        {5, 0, ""},               /* codes shift between streams: any parse error */
        {7, 15, "overruns"},      /* the first run takes 16 symbols, the second overruns */
        {7, 200, "extra bits"},   /* a 2^49 run: 48 extra bits that are not there */
        {9, 255, "extra bits"},   /* the longest code: 61 extra bits */
        {11, 0x07, "extra bits"}, /* a nonzero padding bit */
        {10, 0, "extra bits"},    /* the extra bits are missing */
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        memcpy(m, good, sizeof good);
        m[cases[k].at] = cases[k].v;
        size_t len = sizeof good - (cases[k].at == 10 ? 1 : 0);
        tdm_status s = decode_crafted(m, len, out, 23, 2, &err);
        if (s != TDM_ERR_PARSE || strstr(err.msg, cases[k].msg) == NULL)
            fail_msg("case %zu: status %d, message '%s', want '%s'", k, (int)s,
                     s == TDM_OK ? "" : err.msg, cases[k].msg);
    }
    /* the longest code with all its extra bits: a run of about 2^63 must not wrap around */
    memcpy(m, good, sizeof good);
    m[9] = 255;
    m[10] = 8;
    memset(m + 11, 0xff, 8);
    m[18] = 0x1f; /* 61 bits set, 3 padding bits zero */
    assert_int_equal(decode_crafted(m, 19, out, 23, 2, &err), TDM_ERR_PARSE);
    assert_non_null(strstr(err.msg, "overruns"));
    /* one byte of extra bits too many */
    uint8_t longer[sizeof good + 1];
    memcpy(longer, good, sizeof good);
    longer[10] = 2;
    longer[sizeof good] = 0;
    assert_int_equal(decode_crafted(longer, sizeof longer, out, 23, 2, &err), TDM_ERR_PARSE);
    /* truncated at every length, and random corruption of an encoder-written stream */
    for (size_t l = 0; l < sizeof good; l++)
        assert_int_not_equal(decode_crafted(good, l, out, 23, 2, &err), TDM_OK);
    rng r = {8};
    size_t n = 5000;
    uint8_t *s = malloc(n), *back = malloc(n), *buf = malloc(tdm_sym_bound(n, 8));
    uint8_t *mm = malloc(tdm_sym_bound(n, 8));
    fill_runs(&r, s, n, 8, 60, 12);
    tdm_wbuf w;
    tdm_wbuf_init(&w, buf, tdm_sym_bound(n, 8));
    tdm_sym_stats st;
    assert_int_equal(tdm_sym_encode(s, n, 8, true, &w, &st, NULL), TDM_OK);
    assert_int_equal(st.method, TDM_SYM_RUNS);
    size_t caught = 0;
    for (int rep = 0; rep < 3000; rep++) {
        memcpy(mm, buf, w.len);
        mm[rng_next(&r) % w.len] ^= (uint8_t)(1 + rng_next(&r) % 255);
        tdm_rbuf rb;
        tdm_rbuf_init(&rb, mm, w.len);
        caught += tdm_sym_decode(&rb, back, n, 8, "t", &err) != TDM_OK;
    }
    print_message("corrupted run streams caught: %zu of 3000\n", caught);
    assert_true(caught > 2000);
    free(s);
    free(back);
    free(buf);
    free(mm);
}

/* Codes sym[0, n) as a context-modelled stream (forced) and decodes it back. */
static size_t ctx_roundtrip(const uint8_t *sym, size_t n, unsigned bits, size_t row)
{
    size_t cap = 2 * n + 64;
    uint8_t *buf = malloc(cap + 1), *back = malloc(n ? n : 1);
    assert_non_null(buf);
    assert_non_null(back);
    buf[0] = TDM_CTX_HDR;
    size_t len = tdm_ctx_encode(sym, n, bits, row, buf + 1, cap);
    assert_true(len >= 5);
    tdm_rbuf r;
    tdm_rbuf_init(&r, buf, len + 1);
    tdm_err err;
    if (tdm_sym_decode(&r, back, n, bits, "ctx", &err) != TDM_OK)
        fail_msg("ctx decode (n %zu, bits %u, row %zu): %s", n, bits, row, err.msg);
    assert_int_equal(tdm_rbuf_left(&r), 0);
    if (n > 0)
        assert_memory_equal(back, sym, n);
    /* a version-1 frame may not hold it */
    tdm_rbuf_init(&r, buf, len + 1);
    assert_int_equal(tdm_sym_decode_v(&r, back, n, bits, 1, "ctx", &err), TDM_ERR_PARSE);
    /* too little room: the encoder says so instead of writing past cap */
    assert_int_equal(tdm_ctx_encode(sym, n, bits, row, buf + 1, len / 2), 0);
    free(buf);
    free(back);
    return len + 1;
}

/* A 2-D map of `rows` x `w` with rows that repeat the row above, shifted, and a flat background. */
static void fill_map(rng *r, uint8_t *s, size_t rows, size_t w, unsigned bits)
{
    unsigned a = 1u << bits;
    for (size_t y = 0; y < rows; y++)
        for (size_t x = 0; x < w; x++) {
            size_t i = y * w + x;
            uint64_t u = rng_next(r) % 16;
            if (y > 0 && u < 9)
                s[i] = s[i - w];
            else if (x > 0 && u < 12)
                s[i] = s[i - 1];
            else if (u < 14)
                s[i] = 0;
            else
                s[i] = (uint8_t)(rng_next(r) % (a / 4));
        }
}

static void test_ctx_roundtrip(void **state)
{
    (void)state;
    rng r = {21};
    size_t n = 4096;
    uint8_t *s = malloc(n);
    assert_non_null(s);
    for (unsigned bits = 4; bits <= 8; bits += 4) {
        unsigned a = 1u << bits;
        /* empty, one symbol, two, every row length including 1 and n - 1 */
        for (size_t len = 0; len <= 3; len++)
            for (size_t row = 0; row <= 4; row++) {
                for (size_t i = 0; i < len; i++)
                    s[i] = (uint8_t)(rng_next(&r) % a);
                ctx_roundtrip(s, len, bits, row);
            }
        /* all equal (each symbol, extremes included), alternating extremes */
        unsigned pick[] = {0, 1, a / 2 - 1, a / 2, a / 2 + 1, a - 1};
        for (size_t k = 0; k < sizeof pick / sizeof pick[0]; k++) {
            memset(s, (int)pick[k], 300);
            assert_true(ctx_roundtrip(s, 300, bits, 10) < 20);
            for (size_t i = 0; i < 300; i++)
                s[i] = (uint8_t)(i & 1 ? pick[k] : a - 1 - pick[k]);
            ctx_roundtrip(s, 300, bits, 1);
            ctx_roundtrip(s, 300, bits, 299);
        }
        /* every symbol of the alphabet, uniformly, under several row lengths */
        for (size_t i = 0; i < n; i++)
            s[i] = (uint8_t)(rng_next(&r) % a);
        size_t rows[] = {0, 1, 2, 7, 64, n - 1, n, n + 5};
        for (size_t k = 0; k < sizeof rows / sizeof rows[0]; k++) {
            size_t len = ctx_roundtrip(s, n, bits, rows[k]);
            if (len >= tdm_sym_raw_bytes(n, bits) * 110 / 100 + 16)
                fail_msg("uniform %u-bit: %zu bytes", bits, len);
        }
        /* a map with structure above: chosen, and much smaller than without the row */
        fill_map(&r, s, 64, 64, bits);
        ctx_roundtrip(s, n, bits, 64);
        size_t cap = tdm_sym_bound(n, bits);
        uint8_t *buf = malloc(cap), *back = malloc(n);
        tdm_wbuf w;
        tdm_wbuf_init(&w, buf, cap);
        tdm_sym_stats st;
        tdm_err err;
        assert_int_equal(tdm_sym_encode_row(s, n, bits, true, 2, 64, &w, &st, &err), TDM_OK);
        assert_int_equal(st.method, TDM_SYM_CTX);
        assert_int_equal(st.stream_bytes, w.len);
        tdm_rbuf rb;
        tdm_rbuf_init(&rb, buf, w.len);
        assert_int_equal(tdm_sym_decode(&rb, back, n, bits, "t", &err), TDM_OK);
        assert_memory_equal(back, s, n);
        tdm_sym_stats st0;
        size_t without = sym_roundtrip(s, n, bits, true, &st0);
        print_message("%u-bit map: context %zu bytes, best other %zu\n", bits, w.len, without);
        assert_true(w.len * 10 < without * 9);
        /* a version-1 frame or no row: never chosen */
        tdm_wbuf_init(&w, buf, cap);
        assert_int_equal(tdm_sym_encode_row(s, n, bits, true, 1, 64, &w, &st, &err), TDM_OK);
        assert_int_not_equal(st.method, TDM_SYM_CTX);
        assert_int_not_equal(st0.method, TDM_SYM_CTX);
        free(buf);
        free(back);
    }
    free(s);
}

/* Never worse: with a row the stream is at most the size without one, on many kinds of data. */
static void test_ctx_never_worse(void **state)
{
    (void)state;
    rng r = {22};
    size_t n = 2048;
    uint8_t *s = malloc(n), *buf = malloc(tdm_sym_bound(n, 8)), *back = malloc(n);
    assert_non_null(s);
    for (int rep = 0; rep < 40; rep++) {
        unsigned bits = rep & 1 ? 4 : 8;
        size_t len = 1 + rng_next(&r) % n, row = rng_next(&r) % 70;
        unsigned kind = (unsigned)(rep / 2) % 4;
        if (kind == 0)
            fill_runs(&r, s, len, bits, 20, 6);
        else if (kind == 1)
            fill_map(&r, s, len / 32 + 1 < n / 32 ? len / 32 + 1 : n / 32, 32, bits);
        else
            for (size_t i = 0; i < len; i++)
                s[i] = (uint8_t)((kind == 2 ? rng_next(&r) % 3 : rng_next(&r)) % (1u << bits));
        tdm_sym_stats st0, st;
        size_t base = sym_roundtrip(s, len, bits, true, &st0);
        tdm_wbuf w;
        tdm_wbuf_init(&w, buf, tdm_sym_bound(len, bits));
        tdm_err err;
        assert_int_equal(tdm_sym_encode_row(s, len, bits, true, 2, row, &w, &st, &err), TDM_OK);
        assert_false(w.overflow);
        assert_true(w.len <= base);
        assert_true(st.method != TDM_SYM_CTX || w.len < base);
        tdm_rbuf rb;
        tdm_rbuf_init(&rb, buf, w.len);
        assert_int_equal(tdm_sym_decode(&rb, back, len, bits, "t", &err), TDM_OK);
        assert_int_equal(tdm_rbuf_left(&rb), 0);
        assert_memory_equal(back, s, len);
    }
    free(s);
    free(buf);
    free(back);
}

/* Hostile context-modelled streams: rows, byte counts, symbols and bytes that lie. */
static void test_ctx_hostile(void **state)
{
    (void)state;
    rng r = {23};
    size_t n = 600;
    uint8_t *s = malloc(n), *back = malloc(n + 8), *buf = malloc(2 * n + 64),
            *m = malloc(2 * n + 64);
    assert_non_null(m);
    fill_map(&r, s, 20, 30, 8);
    buf[0] = TDM_CTX_HDR;
    size_t len = 1 + tdm_ctx_encode(s, n, 8, 30, buf + 1, 2 * n);
    assert_int_equal(buf[1], 30);     /* varint row */
    size_t nb_at = 2, body = len - 4; /* nbytes is a two-byte varint here */
    assert_true(len > 130);
    assert_int_equal((size_t)(buf[2] & 0x7f) | (size_t)buf[3] << 7, body);
    tdm_err err;
    assert_int_equal(decode_crafted(buf, len, back, n, 2, &err), TDM_OK);
    assert_memory_equal(back, s, n);
    struct {
        size_t at;
        uint8_t v;
        const char *msg;
    } cases[] = {
        {1, 0x80, "row length"},         /* row varint runs on into the byte count */
        {nb_at, 0x03, "byte count"},     /* 3 bytes: below 4 */
        {nb_at + 1, 0x7f, "byte count"}, /* more bytes than left */
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        memcpy(m, buf, len);
        m[cases[k].at] = cases[k].v;
        if (cases[k].at == nb_at)
            m[nb_at + 1] = 0; /* a one-byte varint, the rest is left over */
        tdm_rbuf rb;
        tdm_rbuf_init(&rb, m, len);
        tdm_status st = tdm_sym_decode(&rb, back, n, 8, "crafted", &err);
        if (st != TDM_ERR_PARSE || strstr(err.msg, cases[k].msg) == NULL)
            fail_msg("case %zu: status %d, message '%s'", k, (int)st, st == TDM_OK ? "" : err.msg);
    }
    /* the row must be below the symbol count */
    const uint8_t rowbig[] = {TDM_CTX_HDR, 10, 4, 0, 0, 0, 0};
    assert_int_equal(decode_crafted(rowbig, sizeof rowbig, back, 10, 2, &err), TDM_ERR_PARSE);
    assert_non_null(strstr(err.msg, "row length"));
    /*
     * With one byte more or fewer. (Decoding the stream as a few symbols fewer or more can
     * succeed when the decisions at the end are nearly free: a range coder has no end marker.
     * The frame's dims and CRC pin the count.)
     */
    memcpy(m, buf, len);
    m[len] = 0;
    m[2] = (uint8_t)(m[2] + 1); /* body + 1 bytes (low byte of the varint has room: checked) */
    assert_true((buf[2] & 0x7f) != 0x7f);
    assert_int_equal(decode_crafted(m, len + 1, back, n, 2, &err), TDM_ERR_PARSE);
    assert_non_null(strstr(err.msg, "bytes"));
    /* truncated at every length */
    for (size_t l = 0; l < len; l++)
        assert_int_not_equal(decode_crafted(buf, l, back, n, 2, &err), TDM_OK);
    /* random bodies of every small size: never a crash, symbols outside the alphabet caught */
    size_t outside = 0;
    for (int rep = 0; rep < 2000; rep++) {
        size_t nb = 4 + rng_next(&r) % 40, cnt = rng_next(&r) % 200;
        m[0] = TDM_CTX_HDR;
        m[1] = (uint8_t)(cnt ? rng_next(&r) % cnt : 0);
        m[2] = (uint8_t)nb;
        for (size_t i = 0; i < nb; i++)
            m[3 + i] = (uint8_t)rng_next(&r);
        unsigned bits = rep & 1 ? 4 : 8;
        tdm_rbuf rb;
        tdm_rbuf_init(&rb, m, 3 + nb);
        if (tdm_sym_decode(&rb, back, cnt, bits, "crafted", &err) != TDM_OK)
            outside += strstr(err.msg, "alphabet") != NULL;
        else
            for (size_t i = 0; i < cnt; i++)
                assert_true(back[i] < (1u << bits));
    }
    print_message("random context streams with a symbol outside the alphabet: %zu of 2000\n",
                  outside);
    assert_true(outside > 0);
    /* random corruption of an encoder-written stream */
    size_t caught = 0;
    for (int rep = 0; rep < 3000; rep++) {
        memcpy(m, buf, len);
        m[4 + rng_next(&r) % (len - 4)] ^= (uint8_t)(1 + rng_next(&r) % 255);
        caught += decode_crafted(m, len, back, n, 2, &err) != TDM_OK;
    }
    print_message("corrupted context streams caught: %zu of 3000\n", caught);
    assert_true(caught > 2500);
    free(s);
    free(back);
    free(buf);
    free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c),          cmocka_unit_test(test_methods),
        cmocka_unit_test(test_near_entropy),    cmocka_unit_test(test_context_model_pays),
        cmocka_unit_test(test_corrupt_streams), cmocka_unit_test(test_runs_roundtrip),
        cmocka_unit_test(test_runs_hostile),    cmocka_unit_test(test_ctx_roundtrip),
        cmocka_unit_test(test_ctx_never_worse), cmocka_unit_test(test_ctx_hostile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

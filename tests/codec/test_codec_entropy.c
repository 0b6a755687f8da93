/*
 * The codec's entropy coder and checksum on their own: CRC32C against the
 * RFC 3720 check value with both implementations, symbol streams that round
 * trip for every method and context model, sizes close to the Shannon
 * entropy computed here, and corrupt streams rejected without crashing.
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

/* Encodes and decodes n symbols; returns the stream size and fills stats. */
static size_t sym_roundtrip(const uint8_t *sym, size_t n, unsigned bits, bool entropy,
                            tdm_sym_stats *stats)
{
    size_t cap = tdm_sym_bound(n, bits);
    uint8_t *buf = malloc(cap), *back = malloc(n ? n : 1);
    tdm_wbuf w;
    tdm_wbuf_init(&w, buf, cap);
    tdm_err err;
    assert_int_equal(tdm_sym_encode(sym, n, bits, entropy, &w, stats, &err), TDM_OK);
    assert_false(w.overflow);
    assert_int_equal(stats->stream_bytes, w.len);
    tdm_rbuf r;
    tdm_rbuf_init(&r, buf, w.len);
    if (tdm_sym_decode(&r, back, n, bits, "test", &err) != TDM_OK)
        fail_msg("decode: %s", err.msg);
    assert_int_equal(tdm_rbuf_left(&r), 0);
    if (n > 0)
        assert_memory_equal(back, sym, n);
    free(buf);
    free(back);
    return w.len;
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
    /* extreme skew: frequencies 4095 and 1, the edges of the reciprocal division */
    memset(s, 0, n);
    s[500] = 1;
    sym_roundtrip(s, n, 8, true, &st);
    assert_int_equal(st.method, TDM_SYM_RANS);
    s[501] = 255;
    s[n - 1] = 17;
    sym_roundtrip(s, n, 8, true, &st);
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
    bad[0] = TDM_SYM_RANS | 7 << 2;
    tdm_rbuf_init(&rb, bad, 2);
    assert_int_equal(tdm_sym_decode(&rb, back, 5, 4, "t", &err), TDM_ERR_PARSE);
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
        cmocka_unit_test(test_corrupt_streams),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

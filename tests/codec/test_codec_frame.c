/*
 * The frame format against hostile input: truncation at every length,
 * trailing bytes, every single-byte corruption (caught by the CRC), corrupt
 * payloads with a recomputed CRC (the parser alone must hold), newer
 * versions refused with a clear message, hostile shapes and sizes, and
 * invalid encoder arguments. Also the header fields frame_info reports.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "codec/bytes.h"
#include "codec/crc32c.h"
#include "codec_util.h"

#define LIMIT ((size_t)1 << 26)

static void recrc(uint8_t *f, size_t len)
{
    tdm_store_le32(f + len - 4, tdm_crc32c(0, f, len - 4));
}

/* A small frame of each interesting kind, for mutation. */
static uint8_t *sample_frame(int kind, size_t *len)
{
    rng r = {100 + (uint64_t)kind};
    size_t n = 300;
    float *x = malloc(n * sizeof *x);
    fill_relu(&r, x, n, 1.0f);
    x[7] = NAN;
    int64_t dims[3] = {3, 10, 10};
    tdm_tensor t;
    make_tensor(&t, x, 3, dims);
    tdm_codec_params p;
    tdm_codec_params_default(&p, (tdm_codec_mode)(kind % 4));
    if (kind >= 4) {
        p.granularity = TDM_CODEC_GRANULARITY_CHANNEL;
        p.topk_fraction = kind == 5 ? 0.05f : 0.4f;
    }
    if (kind == 6)
        p.entropy = false;
    tdm_status st;
    uint8_t *f = encode_alloc(&t, &p, len, &st, NULL);
    assert_int_equal(st, TDM_OK);
    free(x);
    return f;
}

#define NKINDS 8

static void test_frame_info(void **state)
{
    (void)state;
    float x[6] = {1, 2, 3, 4, 5, 6};
    int64_t dims[2] = {2, 3};
    tdm_tensor t;
    make_tensor(&t, x, 2, dims);
    tdm_codec_params p;
    tdm_codec_params_default(&p, TDM_CODEC_MODE_INT4);
    p.granularity = TDM_CODEC_GRANULARITY_CHANNEL;
    p.channel_axis = -1;
    size_t len;
    tdm_status st;
    uint8_t *f = encode_alloc(&t, &p, &len, &st, NULL);
    assert_int_equal(st, TDM_OK);
    tdm_codec_header h;
    /* the header alone is enough: 12 fixed bytes, dims 2 and 3 and the payload length as
     * one-byte varints (version 2) */
    assert_int_equal(tdm_codec_frame_info(f, 12 + 2 + 1, &h, NULL), TDM_OK);
    assert_int_equal(h.version, TDM_CODEC_VERSION);
    assert_int_equal(h.mode, TDM_CODEC_MODE_INT4);
    assert_int_equal(h.dtype, TDM_DTYPE_FLOAT32);
    assert_int_equal(h.ndim, 2);
    assert_int_equal(h.dims[0], 2);
    assert_int_equal(h.dims[1], 3);
    assert_true(h.per_channel);
    assert_int_equal(h.channel_axis, 1);
    assert_false(h.sparse);
    assert_true(h.entropy);
    assert_int_equal(h.header_len, 12 + 2 + 1);
    assert_int_equal(h.frame_len, len);
    assert_int_equal(h.decoded_bytes, 24);
    assert_memory_equal(f, "TDMC", 4);
    tdm_err err;
    assert_int_equal(tdm_codec_frame_info(f, 14, &h, &err), TDM_ERR_PARSE);
    free(f);
}

static void test_truncated_and_trailing(void **state)
{
    (void)state;
    for (int kind = 0; kind < NKINDS; kind++) {
        size_t len;
        uint8_t *f = sample_frame(kind, &len);
        tdm_tensor out;
        tdm_err err;
        for (size_t l = 0; l < len; l++) {
            uint8_t *cut = malloc(l ? l : 1);
            memcpy(cut, f, l);
            assert_int_not_equal(tdm_codec_decode(cut, l, &out, LIMIT, &err), TDM_OK);
            assert_null(out.data);
            free(cut);
        }
        uint8_t *longer = malloc(len + 1);
        memcpy(longer, f, len);
        longer[len] = 0;
        assert_int_equal(tdm_codec_decode(longer, len + 1, &out, LIMIT, &err), TDM_ERR_PARSE);
        assert_non_null(strstr(err.msg, "trailing"));
        assert_int_equal(tdm_codec_decode(f, len, &out, LIMIT, &err), TDM_OK);
        tdm_tensor_free(&out);
        free(longer);
        free(f);
    }
}

static void test_crc_catches_every_byte(void **state)
{
    (void)state;
    for (int kind = 0; kind < NKINDS; kind++) {
        size_t len;
        uint8_t *f = sample_frame(kind, &len);
        tdm_tensor out;
        tdm_err err;
        for (size_t i = 0; i < len; i++) {
            for (unsigned bit = 0; bit < 8; bit += 3) {
                f[i] ^= (uint8_t)(1u << bit);
                assert_int_not_equal(tdm_codec_decode(f, len, &out, LIMIT, &err), TDM_OK);
                f[i] ^= (uint8_t)(1u << bit);
            }
        }
        /* a payload byte flip is reported as a CRC mismatch */
        f[len - 10] ^= 0x40;
        assert_int_equal(tdm_codec_decode(f, len, &out, LIMIT, &err), TDM_ERR_PARSE);
        assert_non_null(strstr(err.msg, "CRC32C"));
        free(f);
    }
}

/* Mutated payloads with a valid CRC: the parser must reject or decode, never crash. */
static void test_corrupt_payload_with_valid_crc(void **state)
{
    (void)state;
    rng r = {200};
    size_t ok = 0, bad = 0;
    for (int kind = 0; kind < NKINDS; kind++) {
        size_t len;
        uint8_t *f = sample_frame(kind, &len);
        tdm_codec_header h;
        assert_int_equal(tdm_codec_frame_info(f, len, &h, NULL), TDM_OK);
        uint8_t *m = malloc(len);
        for (int rep = 0; rep < 600; rep++) {
            memcpy(m, f, len);
            int nmut = 1 + (int)(rng_next(&r) % 4);
            for (int j = 0; j < nmut; j++) {
                size_t at = h.header_len + rng_next(&r) % h.payload_len;
                switch (rng_next(&r) % 3) {
                case 0: m[at] ^= (uint8_t)(1u << (rng_next(&r) % 8)); break;
                case 1: m[at] = (uint8_t)rng_next(&r); break;
                default: m[at] = (rng_next(&r) & 1) ? 0 : 0xff; break;
                }
            }
            recrc(m, len);
            tdm_tensor out;
            tdm_err err;
            if (tdm_codec_decode(m, len, &out, LIMIT, &err) == TDM_OK) {
                assert_int_equal(tdm_tensor_numel(&out), 300);
                tdm_tensor_free(&out);
                ok++;
            } else {
                assert_true(err.msg[0] != '\0');
                bad++;
            }
        }
        free(m);
        free(f);
    }
    print_message("corrupt payloads: %zu decoded, %zu rejected\n", ok, bad);
    assert_true(bad > 0);
}

static void test_newer_version_refused(void **state)
{
    (void)state;
    size_t len;
    uint8_t *f = sample_frame(2, &len);
    f[4] = TDM_CODEC_VERSION + 1;
    recrc(f, len);
    tdm_tensor out;
    tdm_err err;
    assert_int_equal(tdm_codec_decode(f, len, &out, LIMIT, &err), TDM_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "newer"));
    tdm_codec_header h;
    assert_int_equal(tdm_codec_frame_info(f, len, &h, &err), TDM_ERR_UNSUPPORTED);
    /* even a newer frame with a different layout after the version byte is refused clearly */
    uint8_t newer[8] = {'T', 'D', 'M', 'C', 9, 0xee, 0xee, 0xee};
    assert_int_equal(tdm_codec_decode(newer, sizeof newer, &out, LIMIT, &err), TDM_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "version 9"));
    f[4] = 0;
    recrc(f, len);
    assert_int_equal(tdm_codec_decode(f, len, &out, LIMIT, &err), TDM_ERR_PARSE);
    memcpy(f, "TDMX", 4);
    f[4] = TDM_CODEC_VERSION;
    assert_int_equal(tdm_codec_decode(f, len, &out, LIMIT, &err), TDM_ERR_PARSE);
    assert_non_null(strstr(err.msg, "magic"));
    free(f);
}

/* Rewrites a version-2 frame with the version-1 header (u64 dims and payload length). */
static uint8_t *to_v1(const uint8_t *f, size_t len, size_t *len1)
{
    tdm_codec_header h;
    assert_int_equal(tdm_codec_frame_info(f, len, &h, NULL), TDM_OK);
    size_t cap = 12 + 8 * (size_t)h.ndim + 8 + h.payload_len + 4;
    uint8_t *g = malloc(cap);
    tdm_wbuf w;
    tdm_wbuf_init(&w, g, cap);
    tdm_wbuf_bytes(&w, f, 12);
    for (int i = 0; i < h.ndim; i++)
        tdm_wbuf_u64(&w, (uint64_t)h.dims[i]);
    tdm_wbuf_u64(&w, h.payload_len);
    tdm_wbuf_bytes(&w, f + h.header_len, h.payload_len);
    tdm_wbuf_u32(&w, 0);
    assert_false(w.overflow);
    g[4] = 1;
    recrc(g, w.len);
    *len1 = w.len;
    return g;
}

/*
 * Version 2 writes the header's dims and payload length as varints and adds
 * run-length streams: a sparse map is coded with runs and a 4-d header of 17
 * bytes instead of 52; the same frame in the version-1 layout is refused (a
 * v1 frame cannot hold runs), while a frame without runs decodes the same in
 * either layout. The v1 corpus (tests/codec/test_codec_corpus.c) keeps
 * decoding.
 */
static void test_version2_runs(void **state)
{
    (void)state;
    enum { C = 4, HW = 16 * 16 };
    float x[C * HW];
    for (int i = 0; i < C * HW; i++) {
        int row = (i % HW) / 16, col = i % 16;
        x[i] = (row >= 6 && row <= 8 && col >= 5 && col <= 9) ? (float)(i % 13) * 0.3f : 0.0f;
    }
    tdm_tensor t = {.dtype = TDM_DTYPE_FLOAT32, .ndim = 4, .dims = {1, C, 16, 16}, .data = x};
    tdm_codec_params p;
    tdm_codec_params_default(&p, TDM_CODEC_MODE_INT8);
    size_t cap = tdm_codec_bound(&t, &p), len;
    uint8_t *f = malloc(cap);
    tdm_err err;
    assert_int_equal(tdm_codec_encode(&t, &p, f, cap, &len, &err), TDM_OK);
    assert_int_equal(f[4], 2);
    tdm_codec_header h;
    assert_int_equal(tdm_codec_frame_info(f, len, &h, NULL), TDM_OK);
    assert_int_equal(h.header_len, 12 + 4 + 1); /* dims 1, 4, 16, 16; payload length < 128 */
    tdm_tensor out;
    assert_int_equal(tdm_codec_decode(f, len, &out, LIMIT, &err), TDM_OK);
    tdm_tensor_free(&out);
    size_t len1;
    uint8_t *g = to_v1(f, len, &len1);
    assert_int_equal(len1, len + 35);
    assert_int_equal(tdm_codec_decode(g, len1, &out, LIMIT, &err), TDM_ERR_PARSE);
    assert_non_null(strstr(err.msg, "version-1"));
    assert_null(out.data);
    free(g);
    free(f);
    /* no runs (raw symbols): both layouts decode to the same tensor */
    p.entropy = false;
    f = malloc(cap);
    assert_int_equal(tdm_codec_encode(&t, &p, f, cap, &len, &err), TDM_OK);
    g = to_v1(f, len, &len1);
    tdm_tensor a, b;
    assert_int_equal(tdm_codec_decode(f, len, &a, LIMIT, &err), TDM_OK);
    if (tdm_codec_decode(g, len1, &b, LIMIT, &err) != TDM_OK)
        fail_msg("v1 layout: %s", err.msg);
    assert_memory_equal(a.data, b.data, sizeof x);
    tdm_tensor_free(&a);
    tdm_tensor_free(&b);
    free(g);
    free(f);
}

/* Builds a header-only frame by hand with a given shape and payload. */
static size_t craft(uint8_t *buf, unsigned mode, unsigned flags, unsigned ndim,
                    const uint64_t *dims, const uint8_t *payload, size_t plen)
{
    tdm_wbuf w;
    tdm_wbuf_init(&w, buf, 4096);
    tdm_wbuf_bytes(&w, "TDMC", 4);
    tdm_wbuf_u8(&w, 1);
    tdm_wbuf_u8(&w, mode);
    tdm_wbuf_u8(&w, 1);
    tdm_wbuf_u8(&w, ndim);
    tdm_wbuf_u8(&w, 0);
    tdm_wbuf_u8(&w, flags);
    tdm_wbuf_u8(&w, 0);
    tdm_wbuf_u8(&w, 0);
    for (unsigned i = 0; i < ndim; i++)
        tdm_wbuf_u64(&w, dims[i]);
    tdm_wbuf_u64(&w, plen);
    tdm_wbuf_bytes(&w, payload, plen);
    tdm_wbuf_u32(&w, 0);
    assert_false(w.overflow);
    recrc(buf, w.len);
    return w.len;
}

static void test_hostile_shapes(void **state)
{
    (void)state;
    uint8_t buf[4096];
    tdm_tensor out;
    tdm_err err;
    /* product overflows */
    uint64_t big[3] = {1ull << 40, 1ull << 40, 16};
    size_t len = craft(buf, 2, 0, 3, big, NULL, 0);
    assert_int_equal(tdm_codec_decode(buf, len, &out, LIMIT, &err), TDM_ERR_PARSE);
    /* dim above INT64_MAX */
    uint64_t huge[1] = {~0ull};
    len = craft(buf, 2, 0, 1, huge, NULL, 0);
    assert_int_equal(tdm_codec_decode(buf, len, &out, LIMIT, &err), TDM_ERR_PARSE);
    /* a constant stream can honestly describe a billion zeros in a few bytes: the limit refuses */
    uint64_t billion[1] = {1000000000ull};
    uint8_t payload[16] = {0, 0, 0, 0, 0, /* scale 0, zp 0 */ 1, 0 /* const symbol 0 */};
    len = craft(buf, 2, 0, 1, billion, payload, 7);
    assert_int_equal(tdm_codec_decode(buf, len, &out, LIMIT, &err), TDM_ERR_NOMEM);
    assert_non_null(strstr(err.msg, "limit"));
    /* ... and within the limit the same frame decodes */
    uint64_t thousand[1] = {1000};
    len = craft(buf, 2, 0, 1, thousand, payload, 7);
    assert_int_equal(tdm_codec_decode(buf, len, &out, LIMIT, &err), TDM_OK);
    tdm_tensor_free(&out);
    /* empty tensor with a payload */
    uint64_t zero[2] = {0, 5};
    len = craft(buf, 2, 0, 2, zero, payload, 7);
    assert_int_equal(tdm_codec_decode(buf, len, &out, LIMIT, &err), TDM_ERR_PARSE);
    /* rank above the maximum */
    uint64_t ones[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    len = craft(buf, 2, 0, 9, ones, payload, 7);
    assert_int_equal(tdm_codec_decode(buf, len, &out, LIMIT, &err), TDM_ERR_PARSE);
    /* unknown flags, per-channel on a float mode, unknown mode */
    len = craft(buf, 2, 0x80, 1, thousand, payload, 7);
    assert_int_equal(tdm_codec_decode(buf, len, &out, LIMIT, &err), TDM_ERR_PARSE);
    len = craft(buf, 0, 0x01, 1, thousand, payload, 7);
    assert_int_equal(tdm_codec_decode(buf, len, &out, LIMIT, &err), TDM_ERR_PARSE);
    len = craft(buf, 7, 0, 1, thousand, payload, 7);
    assert_int_equal(tdm_codec_decode(buf, len, &out, LIMIT, &err), TDM_ERR_PARSE);
    /* a scale that is NaN, a zero point above 15 for int4 */
    uint8_t badscale[7] = {0, 0, 0xc0, 0x7f, 0, 1, 0};
    len = craft(buf, 2, 0, 1, thousand, badscale, 7);
    assert_int_equal(tdm_codec_decode(buf, len, &out, LIMIT, &err), TDM_ERR_PARSE);
    uint8_t badzp[7] = {0, 0, 0x80, 0x3f, 16, 1, 0};
    len = craft(buf, 3, 0, 1, thousand, badzp, 7);
    assert_int_equal(tdm_codec_decode(buf, len, &out, LIMIT, &err), TDM_ERR_PARSE);
    /* sparse frame claiming more kept values than elements */
    uint8_t sparse[4] = {0xe9, 0x07 /* 1001 */, 0, 0};
    len = craft(buf, 2, 0x02, 1, thousand, sparse, 4);
    assert_int_equal(tdm_codec_decode(buf, len, &out, LIMIT, &err), TDM_ERR_PARSE);
    /* payload length pointing past the end */
    len = craft(buf, 2, 0, 1, thousand, payload, 7);
    buf[12 + 8] = 0xff;
    recrc(buf, len);
    assert_int_equal(tdm_codec_decode(buf, len, &out, LIMIT, &err), TDM_ERR_PARSE);
    assert_int_equal(tdm_codec_decode(NULL, 0, &out, LIMIT, &err), TDM_ERR_PARSE);
    assert_int_equal(tdm_codec_decode(buf, len, NULL, LIMIT, &err), TDM_ERR_INVALID_ARG);
}

static void test_bad_encode_args(void **state)
{
    (void)state;
    float x[4] = {1, 2, 3, 4};
    int64_t dims[2] = {2, 2};
    tdm_tensor t;
    make_tensor(&t, x, 2, dims);
    uint8_t buf[512];
    size_t w;
    tdm_err err;
    tdm_codec_params p;
    tdm_codec_params_default(&p, TDM_CODEC_MODE_INT8);
    p.clip = TDM_CODEC_CLIP_PERCENTILE;
    p.percentile = 20.0f;
    assert_int_equal(tdm_codec_encode(&t, &p, buf, sizeof buf, &w, &err), TDM_ERR_INVALID_ARG);
    assert_non_null(strstr(err.msg, "percentile"));
    tdm_codec_params_default(&p, TDM_CODEC_MODE_INT8);
    p.zero_threshold = -1.0f;
    assert_int_equal(tdm_codec_encode(&t, &p, buf, sizeof buf, &w, &err), TDM_ERR_INVALID_ARG);
    p.zero_threshold = NAN;
    assert_int_equal(tdm_codec_encode(&t, &p, buf, sizeof buf, &w, &err), TDM_ERR_INVALID_ARG);
    tdm_codec_params_default(&p, TDM_CODEC_MODE_INT8);
    p.granularity = TDM_CODEC_GRANULARITY_CHANNEL;
    p.channel_axis = 2;
    assert_int_equal(tdm_codec_encode(&t, &p, buf, sizeof buf, &w, &err), TDM_ERR_INVALID_ARG);
    assert_non_null(strstr(err.msg, "channel_axis"));
    assert_int_equal(tdm_codec_bound(&t, &p), 0);
    p.channel_axis = -3;
    assert_int_equal(tdm_codec_encode(&t, &p, buf, sizeof buf, &w, &err), TDM_ERR_INVALID_ARG);
    tdm_codec_params_default(&p, TDM_CODEC_MODE_INT8);
    p.topk_fraction = 1.5f;
    assert_int_equal(tdm_codec_encode(&t, &p, buf, sizeof buf, &w, &err), TDM_ERR_INVALID_ARG);
    p.topk_fraction = 0;
    p.topk_count = -1;
    assert_int_equal(tdm_codec_encode(&t, &p, buf, sizeof buf, &w, &err), TDM_ERR_INVALID_ARG);
    tdm_codec_params_default(&p, (tdm_codec_mode)9);
    assert_int_equal(tdm_codec_encode(&t, &p, buf, sizeof buf, &w, &err), TDM_ERR_INVALID_ARG);
    tdm_codec_params_default(&p, TDM_CODEC_MODE_INT8);
    t.dtype = TDM_DTYPE_INT64;
    assert_int_equal(tdm_codec_encode(&t, &p, buf, sizeof buf, &w, &err), TDM_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "int64"));
    t.dtype = TDM_DTYPE_FLOAT32;
    t.data = NULL;
    assert_int_equal(tdm_codec_encode(&t, &p, buf, sizeof buf, &w, &err), TDM_ERR_INVALID_ARG);
    assert_true(tdm_codec_bound(&t, &p) > 0); /* the bound needs only the shape */
    t.data = x;
    t.dims[0] = -1;
    assert_int_equal(tdm_codec_encode(&t, &p, buf, sizeof buf, &w, &err), TDM_ERR_SHAPE);
    t.dims[0] = 2;
    assert_int_equal(tdm_codec_encode(&t, &p, buf, 10, &w, &err), TDM_ERR_INVALID_ARG);
    assert_non_null(strstr(err.msg, "too small"));
    assert_int_equal(w, 0);
    assert_int_equal(tdm_codec_encode(&t, &p, buf, sizeof buf, &w, &err), TDM_OK);
}

static void test_mode_names(void **state)
{
    (void)state;
    tdm_codec_mode m;
    for (int i = 0; i < 4; i++) {
        assert_true(tdm_codec_mode_parse(tdm_codec_mode_name((tdm_codec_mode)i), &m));
        assert_int_equal(m, i);
    }
    assert_false(tdm_codec_mode_parse("int2", &m));
    assert_string_equal(tdm_codec_mode_name((tdm_codec_mode)42), "?");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frame_info),
        cmocka_unit_test(test_truncated_and_trailing),
        cmocka_unit_test(test_crc_catches_every_byte),
        cmocka_unit_test(test_corrupt_payload_with_valid_crc),
        cmocka_unit_test(test_newer_version_refused),
        cmocka_unit_test(test_version2_runs),
        cmocka_unit_test(test_hostile_shapes),
        cmocka_unit_test(test_bad_encode_args),
        cmocka_unit_test(test_mode_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

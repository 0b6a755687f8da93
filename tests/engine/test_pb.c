/*
 * Tests of the protobuf wire-format decoder (engine/onnx/pb.h).
 *
 * Inputs are hand-assembled byte strings whose decoding is known from the
 * protobuf specification, so every expectation is independent of the code
 * under test: boundary varints, every wire type, packed and unpacked
 * repeats, and each malformation the decoder must refuse.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <string.h>

#include "engine/onnx/pb.h"
#include "engine/pbw.h"

static tdm_status next1(const uint8_t *b, size_t n, tdm_pb_field *f, tdm_err *e)
{
    tdm_pb r;
    tdm_pb_init(&r, b, n);
    return tdm_pb_next(&r, f, e);
}

static void test_varint_values(void **state)
{
    (void)state;
    struct {
        uint8_t b[11];
        size_t n;
        uint64_t v;
    } cases[] = {
        {{0x00}, 1, 0},
        {{0x01}, 1, 1},
        {{0x7f}, 1, 127},
        {{0x80, 0x01}, 2, 128},
        {{0xac, 0x02}, 2, 300},
        {{0xff, 0xff, 0xff, 0xff, 0x0f}, 5, 0xffffffffu},
        /* -1 as int64: ten bytes, the last is 0x01 */
        {{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 10, UINT64_MAX},
        /* a redundant (non-minimal) encoding of 1 is valid protobuf */
        {{0x81, 0x00}, 2, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const uint8_t *p = cases[i].b;
        uint64_t v = 0;
        assert_true(tdm_pb_varint(&p, cases[i].b + cases[i].n, &v));
        assert_int_equal(v, cases[i].v);
        assert_ptr_equal(p, cases[i].b + cases[i].n);
    }
}

static void test_varint_refused(void **state)
{
    (void)state;
    const uint8_t eleven[11] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00};
    const uint8_t tenth_big[10] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02};
    const uint8_t trunc[2] = {0x80, 0x80};
    const uint8_t *p;
    uint64_t v;
    p = eleven;
    assert_false(tdm_pb_varint(&p, eleven + 11, &v));
    p = tenth_big;
    assert_false(tdm_pb_varint(&p, tenth_big + 10, &v));
    p = trunc;
    assert_false(tdm_pb_varint(&p, trunc + 2, &v));
    p = trunc;
    assert_false(tdm_pb_varint(&p, trunc, &v)); /* empty */
}

static void test_all_wire_types(void **state)
{
    (void)state;
    pbw w = {0};
    pbw_u(&w, 1, 150);
    pbw_fixed64(&w, 2, 0x0102030405060708ull);
    pbw_str(&w, 3, "abc");
    pbw_fixed32(&w, 4, 0xdeadbeefu);
    pbw_u(&w, 536870911, 7); /* the largest field number */
    tdm_pb r;
    tdm_pb_field f;
    tdm_err e;
    tdm_pb_init(&r, w.b, w.n);
    assert_int_equal(tdm_pb_next(&r, &f, &e), TDM_OK);
    assert_int_equal(f.num, 1);
    assert_int_equal(f.wire, TDM_PB_VARINT);
    assert_int_equal(f.u, 150);
    assert_int_equal(f.offset, 0);
    assert_int_equal(tdm_pb_next(&r, &f, &e), TDM_OK);
    assert_int_equal(f.wire, TDM_PB_FIXED64);
    assert_int_equal(f.u, 0x0102030405060708ull);
    assert_int_equal(tdm_pb_next(&r, &f, &e), TDM_OK);
    assert_int_equal(f.wire, TDM_PB_LEN);
    assert_int_equal(f.len, 3);
    assert_memory_equal(f.data, "abc", 3);
    assert_int_equal(tdm_pb_next(&r, &f, &e), TDM_OK);
    assert_int_equal(f.wire, TDM_PB_FIXED32);
    assert_int_equal(f.u, 0xdeadbeefu);
    assert_int_equal(tdm_pb_next(&r, &f, &e), TDM_OK);
    assert_int_equal(f.num, 536870911);
    assert_true(tdm_pb_done(&r));
    pbw_free(&w);
}

static void test_malformed_fields(void **state)
{
    (void)state;
    tdm_pb_field f;
    tdm_err e;
    /* field number 0 */
    const uint8_t zero[] = {0x00, 0x01};
    assert_int_equal(next1(zero, sizeof zero, &f, &e), TDM_ERR_PARSE);
    /* wire types 6 and 7 */
    const uint8_t w6[] = {0x0e, 0x00}, w7[] = {0x0f, 0x00};
    assert_int_equal(next1(w6, sizeof w6, &f, &e), TDM_ERR_PARSE);
    assert_int_equal(next1(w7, sizeof w7, &f, &e), TDM_ERR_PARSE);
    /* groups are unsupported, not corrupt */
    const uint8_t sg[] = {0x0b}, eg[] = {0x0c};
    assert_int_equal(next1(sg, sizeof sg, &f, &e), TDM_ERR_UNSUPPORTED);
    assert_non_null(strstr(e.msg, "group"));
    assert_int_equal(next1(eg, sizeof eg, &f, &e), TDM_ERR_UNSUPPORTED);
    /* truncated fixed32 / fixed64 / varint value / length */
    const uint8_t f32[] = {0x0d, 1, 2, 3}, f64[] = {0x09, 1, 2, 3, 4, 5, 6, 7};
    const uint8_t vt[] = {0x08, 0x80}, lt[] = {0x0a};
    assert_int_equal(next1(f32, sizeof f32, &f, &e), TDM_ERR_PARSE);
    assert_int_equal(next1(f64, sizeof f64, &f, &e), TDM_ERR_PARSE);
    assert_int_equal(next1(vt, sizeof vt, &f, &e), TDM_ERR_PARSE);
    assert_non_null(strstr(e.msg, "offset 1"));
    assert_int_equal(next1(lt, sizeof lt, &f, &e), TDM_ERR_PARSE);
    /* a length beyond the buffer */
    const uint8_t big[] = {0x0a, 0x05, 'a', 'b'};
    assert_int_equal(next1(big, sizeof big, &f, &e), TDM_ERR_PARSE);
    assert_non_null(strstr(e.msg, "claims 5 bytes"));
    /* a huge 64-bit length */
    const uint8_t huge[] = {0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    assert_int_equal(next1(huge, sizeof huge, &f, &e), TDM_ERR_PARSE);
}

static void test_sub_message_bounds(void **state)
{
    (void)state;
    /* outer field 1 holds 4 bytes: an inner field 2 claiming 3 bytes but only 2 inside */
    const uint8_t b[] = {0x0a, 0x04, 0x12, 0x03, 'x', 'y', 'z', 'w'};
    tdm_pb r, sub;
    tdm_pb_field f, g;
    tdm_err e;
    tdm_pb_init(&r, b, sizeof b);
    assert_int_equal(tdm_pb_next(&r, &f, &e), TDM_OK);
    assert_int_equal(tdm_pb_sub(&r, &f, &sub, &e), TDM_OK);
    assert_int_equal(tdm_pb_next(&sub, &g, &e), TDM_ERR_PARSE);
    /* the error names the absolute offset of the inner field */
    assert_non_null(strstr(e.msg, "offset 2"));
    /* a varint field cannot be opened as a message */
    const uint8_t v[] = {0x08, 0x01};
    tdm_pb_init(&r, v, sizeof v);
    assert_int_equal(tdm_pb_next(&r, &f, &e), TDM_OK);
    assert_int_equal(tdm_pb_sub(&r, &f, &sub, &e), TDM_ERR_PARSE);
}

static void test_depth_limit(void **state)
{
    (void)state;
    /* TDM_PB_MAX_DEPTH + 2 nested empty messages */
    pbw w = {0};
    for (int i = 0; i < TDM_PB_MAX_DEPTH + 2; i++) {
        pbw outer = {0};
        pbw_msg(&outer, 1, &w);
        w = outer;
    }
    tdm_pb r;
    tdm_err e;
    tdm_pb_init(&r, w.b, w.n);
    tdm_status s = TDM_OK;
    int depth = 0;
    while (s == TDM_OK && !tdm_pb_done(&r)) {
        tdm_pb_field f;
        s = tdm_pb_next(&r, &f, &e);
        if (s == TDM_OK)
            s = tdm_pb_sub(&r, &f, &r, &e);
        if (s == TDM_OK)
            depth++;
    }
    assert_int_equal(s, TDM_ERR_PARSE);
    assert_int_equal(depth, TDM_PB_MAX_DEPTH);
    assert_non_null(strstr(e.msg, "nested"));
    pbw_free(&w);
}

static void test_skip_unknown(void **state)
{
    (void)state;
    /* unknown fields of each skippable wire type, then the field we want */
    pbw w = {0};
    pbw_u(&w, 99, 12345678901ull);
    pbw_fixed64(&w, 98, 1);
    pbw_str(&w, 97, "ignored payload");
    pbw_fixed32(&w, 96, 2);
    pbw_u(&w, 5, 42);
    tdm_pb r;
    tdm_err e;
    tdm_pb_init(&r, w.b, w.n);
    uint64_t found = 0;
    int seen = 0;
    while (!tdm_pb_done(&r)) {
        tdm_pb_field f;
        assert_int_equal(tdm_pb_next(&r, &f, &e), TDM_OK);
        seen++;
        if (f.num == 5)
            found = f.u;
    }
    assert_int_equal(seen, 5);
    assert_int_equal(found, 42);
    pbw_free(&w);
}

static void test_repeated_packed_and_unpacked(void **state)
{
    (void)state;
    const int64_t vals[] = {1, -1, 300, INT64_MIN, 0};
    pbw w = {0};
    pbw_packed(&w, 8, vals, 5);      /* packed run */
    pbw_u(&w, 8, (uint64_t)-7);      /* then one unpacked value */
    pbw_fixed32(&w, 7, 0x3f800000u); /* unpacked float 1.0 */
    const float fl[] = {2.5f, -0.5f};
    pbw_packed_f32(&w, 7, fl, 2);
    tdm_pb r;
    tdm_err e;
    tdm_pb_init(&r, w.b, w.n);
    int64_t got[8];
    float fgot[4];
    size_t ni = 0, nf = 0;
    while (!tdm_pb_done(&r)) {
        tdm_pb_field f;
        size_t n;
        uint64_t tmp[8];
        assert_int_equal(tdm_pb_next(&r, &f, &e), TDM_OK);
        if (f.num == 8) {
            assert_int_equal(tdm_pb_count(&r, &f, TDM_PB_VARINT, &n, &e), TDM_OK);
            assert_int_equal(tdm_pb_get_u64(&r, &f, TDM_PB_VARINT, tmp, n, &e), TDM_OK);
            for (size_t i = 0; i < n; i++)
                got[ni++] = (int64_t)tmp[i];
        } else if (f.num == 7) {
            assert_int_equal(tdm_pb_count(&r, &f, TDM_PB_FIXED32, &n, &e), TDM_OK);
            tdm_pb_iter it;
            uint64_t v;
            tdm_pb_iter_init(&it, &f, TDM_PB_FIXED32);
            while (tdm_pb_iter_next(&it, &v))
                fgot[nf++] = tdm_pb_as_float(v);
        }
    }
    assert_int_equal(ni, 6);
    for (int i = 0; i < 5; i++)
        assert_int_equal(got[i], vals[i]);
    assert_int_equal(got[5], -7);
    assert_int_equal(nf, 3);
    assert_true(fgot[0] == 1.0f && fgot[1] == 2.5f && fgot[2] == -0.5f);
    pbw_free(&w);
}

static void test_repeated_malformed(void **state)
{
    (void)state;
    tdm_pb r;
    tdm_pb_field f;
    tdm_err e;
    size_t n;
    /* packed fixed32 with 5 bytes */
    const uint8_t odd[] = {0x3a, 0x05, 0, 0, 0x80, 0x3f, 0};
    tdm_pb_init(&r, odd, sizeof odd);
    assert_int_equal(tdm_pb_next(&r, &f, &e), TDM_OK);
    assert_int_equal(tdm_pb_count(&r, &f, TDM_PB_FIXED32, &n, &e), TDM_ERR_PARSE);
    /* packed varints whose last value is cut */
    const uint8_t cut[] = {0x42, 0x02, 0x01, 0x80};
    tdm_pb_init(&r, cut, sizeof cut);
    assert_int_equal(tdm_pb_next(&r, &f, &e), TDM_OK);
    assert_int_equal(tdm_pb_count(&r, &f, TDM_PB_VARINT, &n, &e), TDM_ERR_PARSE);
    /* a fixed64 occurrence where varints are expected */
    const uint8_t wrong[] = {0x41, 1, 2, 3, 4, 5, 6, 7, 8};
    tdm_pb_init(&r, wrong, sizeof wrong);
    assert_int_equal(tdm_pb_next(&r, &f, &e), TDM_OK);
    assert_int_equal(tdm_pb_count(&r, &f, TDM_PB_VARINT, &n, &e), TDM_ERR_PARSE);
    assert_int_equal(tdm_pb_expect(&f, TDM_PB_LEN, &e), TDM_ERR_PARSE);
    assert_non_null(strstr(e.msg, "fixed64"));
}

/* Every prefix and every single-byte change of a message: errors, never crashes. */
static void test_prefixes_and_flips(void **state)
{
    (void)state;
    pbw w = {0}, sub = {0};
    const int64_t v[] = {3, 4, 5};
    pbw_packed(&sub, 1, v, 3);
    pbw_str(&sub, 2, "name");
    pbw_f32(&sub, 3, 1.5f);
    pbw_msg(&w, 1, &sub);
    pbw_fixed64(&w, 2, 9);
    for (size_t len = 0; len <= w.n; len++) {
        for (int flip = -1; flip < (int)len; flip++) {
            uint8_t buf[256];
            memcpy(buf, w.b, len);
            if (flip >= 0)
                buf[flip] ^= 0xa5;
            tdm_pb r;
            tdm_err e;
            tdm_pb_init(&r, buf, len);
            tdm_status s = TDM_OK;
            while (s == TDM_OK && !tdm_pb_done(&r)) {
                tdm_pb_field f;
                s = tdm_pb_next(&r, &f, &e);
                if (s == TDM_OK && f.wire == TDM_PB_LEN) {
                    tdm_pb in;
                    if (tdm_pb_sub(&r, &f, &in, &e) == TDM_OK)
                        while (!tdm_pb_done(&in) && tdm_pb_next(&in, &f, &e) == TDM_OK) {
                            size_t n;
                            tdm_pb_count(&in, &f, TDM_PB_VARINT, &n, &e);
                        }
                }
            }
            if (flip < 0 && len == w.n)
                assert_int_equal(s, TDM_OK);
        }
    }
    pbw_free(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_varint_values),
        cmocka_unit_test(test_varint_refused),
        cmocka_unit_test(test_all_wire_types),
        cmocka_unit_test(test_malformed_fields),
        cmocka_unit_test(test_sub_message_bounds),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_skip_unknown),
        cmocka_unit_test(test_repeated_packed_and_unpacked),
        cmocka_unit_test(test_repeated_malformed),
        cmocka_unit_test(test_prefixes_and_flips),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * Tests of the .npy reader and writer (engine/npy.c).
 *
 * The reference bytes below were produced once by numpy 1.24 (np.save) and
 * written out by hand, so the tests need no Python: headers are spelled as
 * the dict text numpy writes plus the number of padding spaces, data as
 * explicit little- or big-endian bytes. The writer must reproduce numpy's
 * files byte for byte, including numpy's quirk of adding a whole 64-byte
 * block when the header is already aligned.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tandem/npy.h"

/*
 * Builds a v1.0 file: magic, header length, dict, spaces up to `hdr_total`
 * bytes of preamble and header (0: none), '\n', data.
 */
static size_t npy_v1(uint8_t *out, const char *dict, size_t hdr_total, const void *data, size_t n)
{
    size_t dl = strlen(dict), spaces = hdr_total ? hdr_total - 11 - dl : 0, hl = dl + spaces + 1;
    memcpy(out, "\x93NUMPY\x01\x00", 8);
    out[8] = (uint8_t)(hl & 0xff);
    out[9] = (uint8_t)(hl >> 8);
    memcpy(out + 10, dict, dl);
    memset(out + 10 + dl, ' ', spaces);
    out[10 + dl + spaces] = '\n';
    if (n > 0)
        memcpy(out + 10 + hl, data, n);
    return 10 + hl + n;
}

/* np.save(np.arange(6, dtype='<f4').reshape(2, 3) * 0.5): 152 bytes. */
static const char k_f32_dict[] = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
static const uint8_t k_f32_data[24] = {0, 0, 0,    0,    0, 0, 0, 0x3f, 0, 0, 0x80, 0x3f,
                                       0, 0, 0xc0, 0x3f, 0, 0, 0, 0x40, 0, 0, 0x20, 0x40};

static void test_parse_numpy_f32(void **state)
{
    (void)state;
    uint8_t buf[256];
    size_t n = npy_v1(buf, k_f32_dict, 128, k_f32_data, sizeof k_f32_data);
    assert_int_equal(n, 152);
    tdm_tensor t;
    tdm_err e;
    assert_int_equal(tdm_npy_parse(buf, n, &t, &e), TDM_OK);
    assert_int_equal(t.dtype, TDM_DTYPE_FLOAT32);
    assert_int_equal(t.ndim, 2);
    assert_int_equal(t.dims[0], 2);
    assert_int_equal(t.dims[1], 3);
    const float *f = t.data;
    for (int i = 0; i < 6; i++)
        assert_true(f[i] == 0.5f * (float)i);
    assert_int_equal((uintptr_t)t.data % 64, 0);
    tdm_tensor_free(&t);
}

static void test_parse_numpy_others(void **state)
{
    (void)state;
    uint8_t buf[256];
    tdm_tensor t;
    tdm_err e;
    /* np.array([1.5, -2.0], dtype='>f4') */
    const uint8_t be[8] = {0x3f, 0xc0, 0, 0, 0xc0, 0, 0, 0};
    size_t n = npy_v1(buf, "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", 128, be, 8);
    assert_int_equal(n, 136);
    assert_int_equal(tdm_npy_parse(buf, n, &t, &e), TDM_OK);
    assert_true(((float *)t.data)[0] == 1.5f && ((float *)t.data)[1] == -2.0f);
    tdm_tensor_free(&t);
    /* np.array([[1, -2]], dtype='>i2') */
    const uint8_t be16[4] = {0, 1, 0xff, 0xfe};
    n = npy_v1(buf, "{'descr': '>i2', 'fortran_order': False, 'shape': (1, 2), }", 128, be16, 4);
    assert_int_equal(tdm_npy_parse(buf, n, &t, &e), TDM_OK);
    assert_int_equal(t.dtype, TDM_DTYPE_INT16);
    assert_int_equal(((int16_t *)t.data)[0], 1);
    assert_int_equal(((int16_t *)t.data)[1], -2);
    tdm_tensor_free(&t);
    /* np.array(7, dtype='|u1'): a scalar */
    const uint8_t seven = 7;
    n = npy_v1(buf, "{'descr': '|u1', 'fortran_order': False, 'shape': (), }", 128, &seven, 1);
    assert_int_equal(n, 129);
    assert_int_equal(tdm_npy_parse(buf, n, &t, &e), TDM_OK);
    assert_int_equal(t.ndim, 0);
    assert_int_equal(((uint8_t *)t.data)[0], 7);
    tdm_tensor_free(&t);
    /* np.zeros((0, 4), dtype='<f4'): empty, no data bytes */
    n = npy_v1(buf, "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 4), }", 128, NULL, 0);
    assert_int_equal(n, 128);
    assert_int_equal(tdm_npy_parse(buf, n, &t, &e), TDM_OK);
    assert_int_equal(tdm_tensor_numel(&t), 0);
    tdm_tensor_free(&t);
    /* Python 2 numpy: long suffixes, no growth padding; double quotes, no trailing comma */
    const uint8_t d8[16] = {0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0, 0, 0, 0, 0, 0, 0, 0x40};
    n = npy_v1(buf, "{'descr': '<f8', 'fortran_order': False, 'shape': (2L, 1L), }", 0, d8, 16);
    assert_int_equal(tdm_npy_parse(buf, n, &t, &e), TDM_OK);
    assert_int_equal(t.dtype, TDM_DTYPE_FLOAT64);
    assert_true(((double *)t.data)[1] == 2.0);
    tdm_tensor_free(&t);
    n = npy_v1(buf, "{\"shape\":(2,),\"fortran_order\":False,\"descr\":\"<u4\"}", 0, d8, 8);
    assert_int_equal(tdm_npy_parse(buf, n, &t, &e), TDM_OK);
    assert_int_equal(t.dtype, TDM_DTYPE_UINT32);
    tdm_tensor_free(&t);
}

static void test_versions_2_and_3(void **state)
{
    (void)state;
    const char *dict = "{'descr': '<i4', 'fortran_order': False, 'shape': (1,), }";
    for (int v = 2; v <= 3; v++) {
        uint8_t buf[256];
        size_t dl = strlen(dict), hl = dl + 1;
        memcpy(buf, "\x93NUMPY", 6);
        buf[6] = (uint8_t)v;
        buf[7] = 0;
        buf[8] = (uint8_t)hl;
        buf[9] = buf[10] = buf[11] = 0;
        memcpy(buf + 12, dict, dl);
        buf[12 + dl] = '\n';
        const int32_t x = -5;
        memcpy(buf + 12 + hl, &x, 4);
        tdm_tensor t;
        tdm_err e;
        assert_int_equal(tdm_npy_parse(buf, 12 + hl + 4, &t, &e), TDM_OK);
        assert_int_equal(((int32_t *)t.data)[0], -5);
        tdm_tensor_free(&t);
    }
}

/* Serialising must give numpy's exact bytes. */
static void expect_serialized(const tdm_tensor *t, const uint8_t *want, size_t n)
{
    void *buf = NULL;
    size_t len = 0;
    tdm_err e;
    assert_int_equal(tdm_npy_serialize(t, &buf, &len, &e), TDM_OK);
    assert_int_equal(len, n);
    assert_memory_equal(buf, want, n);
    free(buf);
}

static void test_write_matches_numpy(void **state)
{
    (void)state;
    uint8_t want[256];
    tdm_tensor t;
    tdm_err e;
    const int64_t d23[2] = {2, 3};
    assert_int_equal(tdm_tensor_make(&t, TDM_DTYPE_FLOAT32, 2, d23, &e), TDM_OK);
    memcpy(t.data, k_f32_data, 24);
    size_t n = npy_v1(want, k_f32_dict, 128, k_f32_data, 24);
    expect_serialized(&t, want, n);
    tdm_tensor_free(&t);

    /* np.array([True, False, True]): 131 bytes */
    const int64_t d3 = 3;
    const uint8_t bools[3] = {1, 0, 1};
    assert_int_equal(tdm_tensor_make(&t, TDM_DTYPE_BOOL, 1, &d3, &e), TDM_OK);
    memcpy(t.data, bools, 3);
    n = npy_v1(want, "{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }", 128, bools, 3);
    assert_int_equal(n, 131);
    expect_serialized(&t, want, n);
    tdm_tensor_free(&t);

    /* np.array([1, -2, 3], dtype='<i8'): 152 bytes */
    const int64_t iv[3] = {1, -2, 3};
    assert_int_equal(tdm_tensor_make(&t, TDM_DTYPE_INT64, 1, &d3, &e), TDM_OK);
    memcpy(t.data, iv, sizeof iv);
    n = npy_v1(want, "{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }", 128, iv, 24);
    expect_serialized(&t, want, n);
    tdm_tensor_free(&t);

    /* np.array([1.0, -2.0], dtype='<f2'): float16 stays float16 */
    const int64_t d2 = 2;
    const uint8_t h[4] = {0x00, 0x3c, 0x00, 0xc0};
    assert_int_equal(tdm_tensor_make(&t, TDM_DTYPE_FLOAT16, 1, &d2, &e), TDM_OK);
    memcpy(t.data, h, 4);
    n = npy_v1(want, "{'descr': '<f2', 'fortran_order': False, 'shape': (2,), }", 128, h, 4);
    assert_int_equal(n, 132);
    expect_serialized(&t, want, n);
    tdm_tensor_free(&t);

    /* a scalar */
    assert_int_equal(tdm_tensor_make(&t, TDM_DTYPE_UINT8, 0, NULL, &e), TDM_OK);
    ((uint8_t *)t.data)[0] = 7;
    n = npy_v1(want, "{'descr': '|u1', 'fortran_order': False, 'shape': (), }", 128, "\x07", 1);
    expect_serialized(&t, want, n);
    tdm_tensor_free(&t);

    /*
     * numpy's header for shape (0, 10**10, 10**10, 1, 1, 1, 1, 1) is 192 bytes:
     * the unpadded header is exactly 128, and numpy still adds 64 spaces.
     */
    const int64_t dd[8] = {0, 10000000000, 10000000000, 1, 1, 1, 1, 1};
    memset(&t, 0, sizeof t);
    tdm_tensor_set_shape(&t, TDM_DTYPE_FLOAT32, 8, dd);
    const char *dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 10000000000, "
                       "10000000000, 1, 1, 1, 1, 1), }";
    n = npy_v1(want, dict, 192, NULL, 0);
    assert_int_equal(n, 192);
    assert_int_equal(want[8], 182);
    expect_serialized(&t, want, n);
}

static void test_roundtrip_all_dtypes(void **state)
{
    (void)state;
    const tdm_dtype dts[] = {TDM_DTYPE_FLOAT32, TDM_DTYPE_FLOAT16, TDM_DTYPE_FLOAT64,
                             TDM_DTYPE_INT64,   TDM_DTYPE_INT32,   TDM_DTYPE_INT16,
                             TDM_DTYPE_INT8,    TDM_DTYPE_UINT8,   TDM_DTYPE_BOOL,
                             TDM_DTYPE_UINT16,  TDM_DTYPE_UINT32,  TDM_DTYPE_UINT64};
    char path[] = "/tmp/tdm_npy_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    for (size_t k = 0; k < sizeof dts / sizeof dts[0]; k++) {
        const int64_t dims[3] = {2, 3, 5};
        tdm_tensor t, u, v;
        tdm_err e;
        assert_int_equal(tdm_tensor_make(&t, dts[k], 3, dims, &e), TDM_OK);
        uint8_t *p = t.data;
        for (size_t i = 0; i < tdm_tensor_nbytes(&t); i++)
            p[i] = dts[k] == TDM_DTYPE_BOOL ? (uint8_t)(i & 1) : (uint8_t)(i * 37 + 11);
        void *buf;
        size_t len;
        assert_int_equal(tdm_npy_serialize(&t, &buf, &len, &e), TDM_OK);
        assert_int_equal(tdm_npy_parse(buf, len, &u, &e), TDM_OK);
        assert_true(tdm_tensor_same_shape(&t, &u));
        assert_memory_equal(t.data, u.data, tdm_tensor_nbytes(&t));
        assert_int_equal(tdm_npy_write(path, &t, &e), TDM_OK);
        assert_int_equal(tdm_npy_read(path, &v, &e), TDM_OK);
        assert_true(tdm_tensor_same_shape(&t, &v));
        assert_memory_equal(t.data, v.data, tdm_tensor_nbytes(&t));
        /* the header ends on a 64-byte boundary with a newline */
        assert_int_equal((len - tdm_tensor_nbytes(&t)) % 64, 0);
        assert_int_equal(((uint8_t *)buf)[len - tdm_tensor_nbytes(&t) - 1], '\n');
        free(buf);
        tdm_tensor_free(&t);
        tdm_tensor_free(&u);
        tdm_tensor_free(&v);
    }
    remove(path);
}

static void expect_error(const uint8_t *buf, size_t n, tdm_status s, const char *want)
{
    tdm_tensor t;
    tdm_err e = {{0}};
    tdm_status got = tdm_npy_parse(buf, n, &t, &e);
    if (got != s || strstr(e.msg, want) == NULL)
        fail_msg("expected %d '%s', got %d: %s", s, want, got, e.msg);
    assert_null(t.data);
}

static void test_errors(void **state)
{
    (void)state;
    uint8_t buf[512];
    const uint8_t zeros[64] = {0};
    size_t n;
    n = npy_v1(buf, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", 0, zeros, 24);
    expect_error(buf, n, TDM_ERR_UNSUPPORTED, "Fortran");
    n = npy_v1(buf, "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", 0, zeros, 8);
    expect_error(buf, n, TDM_ERR_UNSUPPORTED, "object");
    n = npy_v1(buf, "{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", 0, zeros, 8);
    expect_error(buf, n, TDM_ERR_UNSUPPORTED, "'<c8'");
    n = npy_v1(buf, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", 0, zeros,
               4);
    expect_error(buf, n, TDM_ERR_UNSUPPORTED, "structured");
    n = npy_v1(buf, k_f32_dict, 128, zeros, 23);
    expect_error(buf, n, TDM_ERR_PARSE, "truncated data");
    n = npy_v1(buf, k_f32_dict, 128, zeros, 25);
    expect_error(buf, n, TDM_ERR_PARSE, "1 unexpected bytes");
    n = npy_v1(buf, "{'descr': '<f4', 'shape': (2, 3), }", 0, zeros, 24);
    expect_error(buf, n, TDM_ERR_PARSE, "fortran_order");
    n = npy_v1(buf, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'x': 1}", 0, zeros,
               24);
    expect_error(buf, n, TDM_ERR_PARSE, "unexpected header key 'x'");
    n = npy_v1(buf, "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", 0, zeros, 4);
    expect_error(buf, n, TDM_ERR_PARSE, "shape");
    n = npy_v1(buf, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1), }", 0,
               zeros, 4);
    expect_error(buf, n, TDM_ERR_UNSUPPORTED, "rank");
    n = npy_v1(buf, "{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4), }",
               0, zeros, 4);
    expect_error(buf, n, TDM_ERR_PARSE, "overflow");
    n = npy_v1(buf, "{'descr': '|u1', 'fortran_order': False, 'shape': (4611686018427387904,), }",
               0, zeros, 4);
    expect_error(buf, n, TDM_ERR_PARSE, "truncated data");
    n = npy_v1(buf, "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }",
               0, zeros, 4);
    expect_error(buf, n, TDM_ERR_PARSE, "shape");
    n = npy_v1(buf, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), } junk", 0, zeros, 4);
    expect_error(buf, n, TDM_ERR_PARSE, "after the header");
    n = npy_v1(buf, k_f32_dict, 128, zeros, 24);
    buf[0] = 'x';
    expect_error(buf, n, TDM_ERR_PARSE, "magic");
    buf[0] = 0x93;
    buf[6] = 4;
    expect_error(buf, n, TDM_ERR_UNSUPPORTED, "version 4.0");
    buf[6] = 1;
    buf[9] = 0xff; /* header length beyond the file */
    expect_error(buf, n, TDM_ERR_PARSE, "truncated header");
    expect_error(buf, 9, TDM_ERR_PARSE, "magic");
    /* v2 with a 4 GiB header length */
    memcpy(buf, "\x93NUMPY\x02\x00\xff\xff\xff\xff", 12);
    expect_error(buf, 12, TDM_ERR_PARSE, "limit");
    /* writer refusals */
    tdm_tensor t;
    tdm_err e;
    const int64_t d1 = 1;
    assert_int_equal(tdm_tensor_make(&t, TDM_DTYPE_BFLOAT16, 1, &d1, &e), TDM_OK);
    void *out;
    size_t len;
    assert_int_equal(tdm_npy_serialize(&t, &out, &len, &e), TDM_ERR_UNSUPPORTED);
    tdm_tensor_free(&t);
    assert_int_equal(tdm_tensor_make(&t, TDM_DTYPE_FLOAT32, 1, &d1, &e), TDM_OK);
    assert_int_equal(tdm_npy_write("/nonexistent-dir/x.npy", &t, &e), TDM_ERR_IO);
    assert_non_null(strstr(e.msg, "/nonexistent-dir/x.npy"));
    tdm_tensor_free(&t);
    tdm_tensor r;
    assert_int_equal(tdm_npy_read("/nonexistent-dir/x.npy", &r, &e), TDM_ERR_NOT_FOUND);
}

static void test_read_file_errors(void **state)
{
    (void)state;
    char path[] = "/tmp/tdm_npyr_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    uint8_t buf[256];
    size_t n = npy_v1(buf, k_f32_dict, 128, k_f32_data, 24);
    /* every length of the file on disk */
    for (size_t len = 0; len <= n + 1; len++) {
        FILE *f = fopen(path, "wb");
        fwrite(buf, 1, len <= n ? len : n, f);
        if (len == n + 1)
            fputc(0, f);
        fclose(f);
        tdm_tensor t;
        tdm_err e;
        tdm_status s = tdm_npy_read(path, &t, &e);
        if (len == n) {
            assert_int_equal(s, TDM_OK);
            assert_memory_equal(t.data, k_f32_data, 24);
            tdm_tensor_free(&t);
        } else {
            assert_int_equal(s, TDM_ERR_PARSE);
            assert_non_null(strstr(e.msg, path));
        }
    }
    remove(path);
}

static void test_prefixes_and_flips(void **state)
{
    (void)state;
    uint8_t buf[256];
    size_t n = npy_v1(buf, k_f32_dict, 128, k_f32_data, 24);
    for (size_t len = 0; len < n; len++) {
        uint8_t *copy = malloc(len ? len : 1);
        memcpy(copy, buf, len);
        tdm_tensor t;
        tdm_err e;
        assert_int_not_equal(tdm_npy_parse(copy, len, &t, &e), TDM_OK);
        free(copy);
    }
    const uint8_t masks[] = {0x01, 0x20, 0x80, 0xff};
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < sizeof masks; k++) {
            uint8_t *copy = malloc(n);
            memcpy(copy, buf, n);
            copy[i] ^= masks[k];
            tdm_tensor t;
            tdm_err e;
            if (tdm_npy_parse(copy, n, &t, &e) == TDM_OK)
                tdm_tensor_free(&t);
            free(copy);
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_numpy_f32),      cmocka_unit_test(test_parse_numpy_others),
        cmocka_unit_test(test_versions_2_and_3),     cmocka_unit_test(test_write_matches_numpy),
        cmocka_unit_test(test_roundtrip_all_dtypes), cmocka_unit_test(test_errors),
        cmocka_unit_test(test_read_file_errors),     cmocka_unit_test(test_prefixes_and_flips),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

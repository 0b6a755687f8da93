/*
 * The safetensors reader: valid files (F32 borrowed, F16 converted, I64,
 * misaligned data copied), and every kind of corrupt header it must refuse
 * with a message rather than read out of bounds: truncation, hostile header
 * lengths, offsets past the data, overlapping or mis-sized tensors, unknown
 * dtypes, bad shapes, duplicate names. Files are built in memory here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "engine/safetensors.h"

/* header JSON + data bytes -> a safetensors image (caller frees). pad adds spaces to the header. */
static uint8_t *make(const char *header, size_t pad, const void *data, size_t dlen, size_t *len)
{
    size_t hl = strlen(header) + pad;
    *len = 8 + hl + dlen;
    uint8_t *b = malloc(*len);
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(hl >> (8 * i));
    memcpy(b + 8, header, strlen(header));
    memset(b + 8 + strlen(header), ' ', pad);
    if (dlen > 0)
        memcpy(b + 8 + hl, data, dlen);
    return b;
}

static tdm_status open_h(const char *header, size_t pad, const void *data, size_t dlen,
                         tdm_err *err)
{
    size_t len;
    uint8_t *b = make(header, pad, data, dlen, &len);
    tdm_safetensors *st = (tdm_safetensors *)1;
    tdm_status s = tdm_safetensors_open_buffer(b, len, "t.safetensors", &st, err);
    if (s == TDM_OK)
        tdm_safetensors_free(st);
    else
        assert_null(st);
    free(b);
    return s;
}

static void test_valid_f32_i64(void **state)
{
    (void)state;
    float f[6] = {1, 2, 3, 4, 5, 6};
    int64_t l[2] = {-7, 1LL << 40};
    uint8_t data[40];
    memcpy(data, f, 24);
    memcpy(data + 24, l, 16);
    const char *h = "{\"__metadata__\":{\"format\":\"pt\"},"
                    "\"b\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[24,40]},"
                    "\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}}";
    size_t hl = strlen(h), pad = (8 - hl % 8) % 8, len;
    uint8_t *b = make(h, pad, data, sizeof data, &len);
    tdm_safetensors *st = NULL;
    tdm_err err = {{0}};
    assert_int_equal(tdm_safetensors_open_buffer(b, len, NULL, &st, &err), TDM_OK);
    assert_int_equal(tdm_safetensors_count(st), 2);
    assert_string_equal(tdm_safetensors_info(st, 0)->name, "a"); /* data-offset order */
    const tdm_st_info *bi = tdm_safetensors_find(st, "b");
    assert_non_null(bi);
    assert_string_equal(bi->dtype, "I64");
    tdm_tensor t;
    assert_int_equal(tdm_safetensors_get(st, "a", &t, &err), TDM_OK);
    assert_int_equal(t.dtype, TDM_DTYPE_FLOAT32);
    assert_int_equal(t.ndim, 2);
    assert_int_equal(t.dims[1], 3);
    assert_int_equal(t.flags & TDM_TENSOR_OWNS_DATA, 0); /* aligned: borrowed */
    assert_memory_equal(t.data, f, sizeof f);
    tdm_tensor_free(&t);
    assert_int_equal(tdm_safetensors_get(st, "b", &t, &err), TDM_OK);
    assert_int_equal(t.dtype, TDM_DTYPE_INT64);
    assert_memory_equal(t.data, l, sizeof l);
    tdm_tensor_free(&t);
    assert_int_equal(tdm_safetensors_get(st, "c", &t, &err), TDM_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, "'c'"));
    assert_null(t.data);
    tdm_safetensors_free(st);
    free(b);
}

static void test_f16_and_misaligned(void **state)
{
    (void)state;
    /* 1.0, -2.0, 0.5, 65504 as IEEE half, then an F32 at an odd data offset */
    uint8_t data[4 * 2 + 1 + 4];
    uint16_t hv[4] = {0x3C00, 0xC000, 0x3800, 0x7BFF};
    for (int i = 0; i < 4; i++) {
        data[2 * i] = (uint8_t)hv[i];
        data[2 * i + 1] = (uint8_t)(hv[i] >> 8);
    }
    data[8] = 0;
    float x = 3.25f;
    memcpy(data + 9, &x, 4);
    const char *h = "{\"h\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[0,8]},"
                    "\"pad\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[8,9]},"
                    "\"x\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[9,13]}}";
    size_t hl = strlen(h), pad = (8 - hl % 8) % 8, len;
    uint8_t *b = make(h, pad, data, sizeof data, &len);
    tdm_safetensors *st = NULL;
    tdm_err err = {{0}};
    assert_int_equal(tdm_safetensors_open_buffer(b, len, NULL, &st, &err), TDM_OK);
    tdm_tensor t;
    assert_int_equal(tdm_safetensors_get(st, "h", &t, &err), TDM_OK);
    assert_int_equal(t.dtype, TDM_DTYPE_FLOAT32);
    const float *v = t.data;
    assert_true(v[0] == 1.f && v[1] == -2.f && v[2] == 0.5f && v[3] == 65504.f);
    assert_true(t.flags & TDM_TENSOR_OWNS_DATA);
    tdm_tensor_free(&t);
    assert_int_equal(tdm_safetensors_get(st, "x", &t, &err), TDM_OK);
    assert_int_equal(t.ndim, 0);
    assert_true(*(const float *)t.data == 3.25f);
    assert_true(t.flags & TDM_TENSOR_OWNS_DATA); /* misaligned: copied */
    tdm_tensor_free(&t);
    /* a dtype the reader validates but cannot hand out */
    assert_int_equal(tdm_safetensors_get(st, "pad", &t, &err), TDM_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "U8"));
    tdm_safetensors_free(st);
    free(b);
}

static void test_bf16_refused(void **state)
{
    (void)state;
    uint8_t data[4] = {0x80, 0x3f, 0, 0x40};
    const char *h = "{\"w\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,4]}}";
    size_t len;
    uint8_t *b = make(h, 0, data, sizeof data, &len);
    tdm_safetensors *st = NULL;
    tdm_err err = {{0}};
    assert_int_equal(tdm_safetensors_open_buffer(b, len, NULL, &st, &err), TDM_OK);
    tdm_tensor t;
    assert_int_equal(tdm_safetensors_get(st, "w", &t, &err), TDM_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "BF16"));
    assert_non_null(strstr(err.msg, "'w'"));
    tdm_safetensors_free(st);
    free(b);
}

static void expect_parse_error(const char *header, size_t dlen, const char *needle)
{
    uint8_t data[64] = {0};
    tdm_err err = {{0}};
    assert_true(dlen <= sizeof data);
    tdm_status s = open_h(header, 0, data, dlen, &err);
    if (s != TDM_ERR_PARSE)
        fail_msg("header %s: status %d (%s)", header, (int)s, err.msg);
    if (needle != NULL && strstr(err.msg, needle) == NULL)
        fail_msg("header %s: message '%s' lacks '%s'", header, err.msg, needle);
}

static void test_corrupt_headers(void **state)
{
    (void)state;
    /* offsets past the data area */
    expect_parse_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8,
                       "past the data");
    /* size != numel * dtype size */
    expect_parse_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8,
                       "'a'");
    /* overlap */
    expect_parse_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                       "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                       16, "overlap");
    /* duplicate names */
    expect_parse_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                       "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                       8, "twice");
    /* unknown dtype, bad shapes, bad offsets */
    expect_parse_error("{\"a\":{\"dtype\":\"Q4\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1, "Q4");
    expect_parse_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4,
                       "shape");
    expect_parse_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4,
                       "shape");
    expect_parse_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],"
                       "\"data_offsets\":[0,4]}}",
                       4, "shape");
    expect_parse_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 4,
                       "data_offsets");
    expect_parse_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4,
                       "data_offsets");
    expect_parse_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "data_offsets");
    expect_parse_error("{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "dtype");
    /* numel overflow: 2^32 * 2^32 elements */
    expect_parse_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],"
                       "\"data_offsets\":[0,0]}}",
                       0, "'a'");
    /* not an object, not JSON, an entry that is not an object */
    expect_parse_error("[1,2]", 0, "not an object");
    expect_parse_error("{\"a\":", 0, NULL);
    expect_parse_error("{\"a\":3}", 0, "not an object");
    expect_parse_error("{\"__metadata__\":3}", 0, "__metadata__");
}

static void test_truncated_and_hostile(void **state)
{
    (void)state;
    tdm_safetensors *st = NULL;
    tdm_err err = {{0}};
    uint8_t tiny[5] = {1, 0, 0, 0, 0};
    assert_int_equal(tdm_safetensors_open_buffer(tiny, sizeof tiny, NULL, &st, &err),
                     TDM_ERR_PARSE);
    assert_null(st);
    /* header length 2^64 - 1, and one just past the file */
    uint8_t hostile[16];
    memset(hostile, 0xff, 8);
    memcpy(hostile + 8, "{}      ", 8);
    assert_int_equal(tdm_safetensors_open_buffer(hostile, sizeof hostile, NULL, &st, &err),
                     TDM_ERR_PARSE);
    assert_non_null(strstr(err.msg, "header length"));
    memset(hostile, 0, 8);
    hostile[0] = 9;
    assert_int_equal(tdm_safetensors_open_buffer(hostile, sizeof hostile, NULL, &st, &err),
                     TDM_ERR_PARSE);
    /* a valid file cut short: data missing */
    float f[4] = {1, 2, 3, 4};
    size_t len;
    uint8_t *b = make("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 0, f,
                      sizeof f, &len);
    for (size_t cut = 0; cut < len; cut++) {
        tdm_status s = tdm_safetensors_open_buffer(b, cut, NULL, &st, &err);
        assert_int_equal(s, TDM_ERR_PARSE);
        assert_null(st);
    }
    assert_int_equal(tdm_safetensors_open_buffer(b, len, NULL, &st, &err), TDM_OK);
    tdm_safetensors_free(st);
    /* an empty header object is a valid, empty file */
    assert_int_equal(open_h("{}", 6, NULL, 0, &err), TDM_OK);
    free(b);
}

static void test_file_and_image(void **state)
{
    (void)state;
    char path[] = "/tmp/tdm_st_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    float f[2] = {0.25f, -8.f};
    size_t len;
    uint8_t *b = make("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 6, f,
                      sizeof f, &len);
    assert_int_equal(write(fd, b, len), (ssize_t)len);
    close(fd);
    free(b);
    tdm_safetensors *st = NULL;
    tdm_err err = {{0}};
    assert_int_equal(tdm_safetensors_open(path, &st, &err), TDM_OK);
    tdm_tensor t;
    assert_int_equal(tdm_safetensors_get(st, "w", &t, &err), TDM_OK);
    void *image = NULL;
    size_t ilen = 0;
    tdm_safetensors_take_image(st, &image, &ilen);
    tdm_safetensors_free(st);
    /* the borrowed tensor stays valid while the taken image lives */
    assert_non_null(image);
    assert_int_equal(ilen, len);
    assert_true(((const float *)t.data)[1] == -8.f);
    tdm_tensor_free(&t);
    munmap(image, ilen);
    unlink(path);
    assert_int_equal(tdm_safetensors_open(path, &st, &err), TDM_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, path));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_f32_i64),         cmocka_unit_test(test_f16_and_misaligned),
        cmocka_unit_test(test_bf16_refused),          cmocka_unit_test(test_corrupt_headers),
        cmocka_unit_test(test_truncated_and_hostile), cmocka_unit_test(test_file_and_image),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * Tests of the CSV image reader: the HWC -> CHW layout change and the
 * per-channel normalisation against values computed here by hand, the
 * tolerated variations (header, CRLF, blank lines, no final newline), every
 * malformed line it must refuse with the line and field named, and the real
 * CIFAR-10 file of ../shared when present.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skip.h"
#include "tandem/data.h"

static tdm_status parse(const char *text, int c, int h, int w, const tdm_data_norm *norm,
                        int64_t limit, tdm_dataset *d, tdm_err *err)
{
    return tdm_csv_parse(text, strlen(text), "t.csv", c, h, w, norm, limit, d, err);
}

/* 2 images of 3 channels, 1x2 pixels: HWC values r0 g0 b0 r1 g1 b1. */
static const char k_two[] = "4,10,20,30,40,50,60\n"
                            "9,0,255,1,2,3,4\n";

static void test_layout_and_norm(void **state)
{
    (void)state;
    tdm_dataset d;
    tdm_err err = {{0}};
    tdm_data_norm norm = {
        .scale = 255.0f, .n_channels = 3, .mean = {0.5f, 0.25f, 0.0f}, .std = {0.5f, 2.0f, 1.0f}};
    assert_int_equal(parse(k_two, 3, 1, 2, &norm, 0, &d, &err), TDM_OK);
    assert_int_equal(d.n, 2);
    assert_int_equal(d.x.ndim, 4);
    assert_int_equal(d.x.dims[0], 2);
    assert_int_equal(d.x.dims[1], 3);
    assert_int_equal(d.x.dims[2], 1);
    assert_int_equal(d.x.dims[3], 2);
    assert_int_equal(d.labels[0], 4);
    assert_int_equal(d.labels[1], 9);
    /* CHW: [c][x]; image 0 channel 0 holds pixels 10 and 40. */
    const float want_raw[2][3][2] = {{{10, 40}, {20, 50}, {30, 60}}, {{0, 2}, {255, 3}, {1, 4}}};
    const float *x = d.x.data;
    for (int n = 0; n < 2; n++)
        for (int c = 0; c < 3; c++)
            for (int p = 0; p < 2; p++) {
                float want = (want_raw[n][c][p] / 255.0f - norm.mean[c]) / norm.std[c];
                float got = x[(n * 3 + c) * 2 + p];
                if (got != want)
                    fail_msg("image %d channel %d pixel %d: %g, want %g", n, c, p, (double)got,
                             (double)want);
            }
    tdm_dataset_free(&d);

    /* One mean/std for all channels; scale 1 keeps raw values. */
    tdm_data_norm one = {.scale = 1.0f, .n_channels = 1, .mean = {10.0f}, .std = {2.0f}};
    assert_int_equal(parse(k_two, 3, 1, 2, &one, 1, &d, &err), TDM_OK);
    assert_int_equal(d.n, 1);
    x = d.x.data;
    assert_true(x[0] == 0.0f && x[1] == 15.0f && x[2] == 5.0f && x[5] == 25.0f);
    tdm_dataset_free(&d);
}

static void test_tolerated_forms(void **state)
{
    (void)state;
    tdm_dataset d;
    tdm_err err = {{0}};
    const char *text = "label,p0,p1\r\n"
                       "\r\n"
                       "1, 2 ,3\r\n"
                       "   \n"
                       "2,4.5,+6\r\n"
                       "3,7,8"; /* no final newline */
    tdm_data_norm raw = {.scale = 1.0f};
    assert_int_equal(parse(text, 1, 1, 2, &raw, 0, &d, &err), TDM_OK);
    assert_int_equal(d.n, 3);
    const float *x = d.x.data;
    const float want[6] = {2, 3, 4.5f, 6, 7, 8};
    for (int i = 0; i < 6; i++)
        assert_true(x[i] == want[i]);
    assert_int_equal(d.labels[2], 3);
    tdm_dataset_free(&d);
    assert_int_equal(parse(text, 1, 1, 2, &raw, 2, &d, &err), TDM_OK);
    assert_int_equal(d.n, 2);
    tdm_dataset_free(&d);
}

static void expect_error(const char *text, tdm_status want, const char *part)
{
    tdm_dataset d;
    tdm_err err = {{0}};
    tdm_status s = parse(text, 1, 1, 3, NULL, 0, &d, &err);
    if (s != want)
        fail_msg("'%s': want status %d, got %d (%s)", text, want, s, err.msg);
    if (strstr(err.msg, part) == NULL)
        fail_msg("'%s': message '%s' lacks '%s'", text, err.msg, part);
    assert_null(d.x.data);
    assert_null(d.labels);
}

static void test_malformed(void **state)
{
    (void)state;
    expect_error("", TDM_ERR_PARSE, "no data lines");
    expect_error("\n\n", TDM_ERR_PARSE, "no data lines");
    expect_error("header only\n", TDM_ERR_PARSE, "no data lines");
    expect_error("1,2,3\n", TDM_ERR_PARSE, "line 1: 2 values, expected 3");
    expect_error("1,2,3,4\n5,6,7\n", TDM_ERR_PARSE, "line 2: 2 values");
    expect_error("1,2,3,4,5\n", TDM_ERR_PARSE, "more than 3");
    expect_error("1,2,x,4\n", TDM_ERR_PARSE, "field 3 is not a number");
    expect_error("1,2,,4\n", TDM_ERR_PARSE, "field 3");
    expect_error("1,2,3,4x\n", TDM_ERR_PARSE, "field 4");
    expect_error("1,2,3,1e5\n", TDM_ERR_PARSE, "field 4");
    expect_error("1,2,3,nan\n", TDM_ERR_PARSE, "field 4");
    expect_error("-1,2,3,4\n", TDM_ERR_PARSE, "label");
    expect_error("1.5,2,3,4\n", TDM_ERR_PARSE, "label");
    expect_error("99999999999,2,3,4\n", TDM_ERR_PARSE, "label");
    expect_error("1,2,3,4\n2,3,4\0,5\n", TDM_ERR_PARSE, "line 2");

    tdm_dataset d;
    tdm_err err = {{0}};
    tdm_data_norm two = {.n_channels = 2, .mean = {0, 0}, .std = {1, 1}};
    assert_int_equal(parse("1,2,3,4\n", 3, 1, 1, &two, 0, &d, &err), TDM_ERR_INVALID_ARG);
    assert_non_null(strstr(err.msg, "2 values"));
    assert_int_equal(parse("1,2,3,4\n", 9, 1, 1, NULL, 0, &d, &err), TDM_ERR_INVALID_ARG);
    assert_int_equal(parse("1,2,3,4\n", 1, 0, 3, NULL, 0, &d, &err), TDM_ERR_INVALID_ARG);
    assert_int_equal(tdm_csv_load("/nonexistent/x.csv", 1, 1, 3, NULL, 0, &d, &err), TDM_ERR_IO);
    assert_non_null(strstr(err.msg, "/nonexistent/x.csv"));
}

/* Random mutations of a valid text: any status, never a crash (run under ASan). */
static void test_mutations(void **state)
{
    (void)state;
    const char base[] = "3,1,2,3,4,5,6\n4,7,8,9,10,11,12\n";
    char m[sizeof base];
    const char alphabet[] = "0123456789,.-+ \r\nx";
    uint32_t rng = 99;
    for (int iter = 0; iter < 20000; iter++) {
        memcpy(m, base, sizeof base);
        for (int k = 0; k < 3; k++) {
            rng = rng * 1664525u + 1013904223u;
            size_t at = (rng >> 8) % (sizeof base - 1);
            rng = rng * 1664525u + 1013904223u;
            m[at] = alphabet[(rng >> 24) % (sizeof alphabet - 1)];
        }
        rng = rng * 1664525u + 1013904223u;
        size_t len = (rng >> 8) % sizeof base;
        tdm_dataset d;
        tdm_err err = {{0}};
        if (tdm_csv_parse(m, len, "m.csv", 2, 1, 3, NULL, 0, &d, &err) == TDM_OK) {
            assert_true(d.n >= 1 && d.n <= 2);
            tdm_dataset_free(&d);
        } else {
            assert_true(err.msg[0] != '\0');
        }
    }
}

static void test_real_cifar(void **state)
{
    (void)state;
    const char *path = TDM_SHARED_DIR "/data/cifar10-100/test.csv";
    if (!tdm_test_path_exists(path)) {
        printf("SKIP: %s is absent\n", path);
        skip();
    }
    tdm_data_norm norm = {.scale = 255.0f,
                          .n_channels = 3,
                          .mean = {0.4914f, 0.4822f, 0.4465f},
                          .std = {0.2471f, 0.2435f, 0.2616f}};
    tdm_dataset d;
    tdm_err err = {{0}};
    assert_int_equal(tdm_csv_load(path, 3, 32, 32, &norm, 0, &d, &err), TDM_OK);
    assert_int_equal(d.n, 100);
    /* First line: "3,158,112,49,159,111,47,...": label 3, pixel (0,0) = (158,112,49). */
    assert_int_equal(d.labels[0], 3);
    const float *x = d.x.data;
    const float rgb[3] = {158, 112, 49}, rgb1[3] = {159, 111, 47};
    for (int c = 0; c < 3; c++) {
        assert_true(x[c * 1024] == (rgb[c] / 255.0f - norm.mean[c]) / norm.std[c]);
        assert_true(x[c * 1024 + 1] == (rgb1[c] / 255.0f - norm.mean[c]) / norm.std[c]);
    }
    for (int64_t i = 0; i < d.n; i++)
        assert_true(d.labels[i] >= 0 && d.labels[i] < 10);
    tdm_dataset_free(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout_and_norm), cmocka_unit_test(test_tolerated_forms),
        cmocka_unit_test(test_malformed),       cmocka_unit_test(test_mutations),
        cmocka_unit_test(test_real_cifar),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * The chart writer, checked through its output file: the PNG is decoded here
 * (signature, IHDR fields, every chunk's CRC, IDAT inflated with zlib's
 * uncompress, filter bytes) and must equal the rendered RGB buffer, and the
 * pixels where tdm_plot_to_pixel puts a known line or marker must have that
 * series' colour while pixels away from every series must not.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include <cmocka.h>

#include "base/plot.h"

static const uint8_t k_blue[3] = {31, 119, 180}; /* first palette colour */
static const uint8_t k_orange[3] = {255, 127, 14};

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Decodes the PNG subset tdm_png_encode writes; fails the test on anything else. */
static uint8_t *decode_png(const uint8_t *png, size_t len, int *w, int *h)
{
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    assert_true(len > 8);
    assert_memory_equal(png, sig, 8);
    size_t at = 8;
    uint8_t *idat = NULL;
    size_t idat_len = 0;
    bool saw_ihdr = false, saw_iend = false;
    while (at < len) {
        assert_true(at + 12 <= len);
        uint32_t n = be32(png + at);
        assert_true(at + 12 + n <= len);
        const uint8_t *type = png + at + 4, *data = png + at + 8;
        uLong crc = crc32(crc32(0L, Z_NULL, 0), type, 4 + n);
        assert_int_equal(be32(data + n), (uint32_t)crc);
        if (memcmp(type, "IHDR", 4) == 0) {
            assert_int_equal(n, 13);
            *w = (int)be32(data);
            *h = (int)be32(data + 4);
            assert_int_equal(data[8], 8);  /* bit depth */
            assert_int_equal(data[9], 2);  /* RGB */
            assert_int_equal(data[10], 0); /* deflate */
            assert_int_equal(data[11], 0);
            assert_int_equal(data[12], 0); /* no interlace */
            saw_ihdr = true;
        } else if (memcmp(type, "IDAT", 4) == 0) {
            idat = realloc(idat, idat_len + n);
            assert_non_null(idat);
            memcpy(idat + idat_len, data, n);
            idat_len += n;
        } else if (memcmp(type, "IEND", 4) == 0) {
            assert_int_equal(n, 0);
            saw_iend = true;
        }
        at += 12 + n;
    }
    assert_true(saw_ihdr && saw_iend && idat != NULL);
    assert_int_equal(at, len);
    const size_t stride = (size_t)*w * 3 + 1;
    uLongf raw_len = (uLongf)(stride * (size_t)*h);
    uint8_t *raw = malloc(raw_len);
    assert_non_null(raw);
    assert_int_equal(uncompress(raw, &raw_len, idat, (uLong)idat_len), Z_OK);
    assert_int_equal(raw_len, stride * (size_t)*h);
    free(idat);
    uint8_t *rgb = malloc((size_t)*w * (size_t)*h * 3);
    assert_non_null(rgb);
    for (int y = 0; y < *h; y++) {
        assert_int_equal(raw[(size_t)y * stride], 0); /* filter none */
        memcpy(rgb + (size_t)y * (size_t)*w * 3, raw + (size_t)y * stride + 1, (size_t)*w * 3);
    }
    free(raw);
    return rgb;
}

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)n);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static const uint8_t *pixel(const uint8_t *rgb, int w, int x, int y)
{
    return rgb + ((size_t)y * (size_t)w + (size_t)x) * 3;
}

static bool is_colour(const uint8_t *p, const uint8_t c[3])
{
    return p[0] == c[0] && p[1] == c[1] && p[2] == c[2];
}

static void test_png_roundtrip(void **state)
{
    (void)state;
    const uint8_t img[2 * 3 * 3] = {255, 0, 0, 0,   255, 0,   0, 0, 255,
                                    1,   2, 3, 250, 251, 252, 9, 8, 7};
    uint8_t *png;
    size_t len;
    assert_int_equal(tdm_png_encode(img, 3, 2, &png, &len, NULL), TDM_OK);
    int w = 0, h = 0;
    uint8_t *rgb = decode_png(png, len, &w, &h);
    assert_int_equal(w, 3);
    assert_int_equal(h, 2);
    assert_memory_equal(rgb, img, sizeof img);
    free(rgb);
    free(png);
    tdm_err err;
    assert_int_equal(tdm_png_encode(img, 0, 2, &png, &len, &err), TDM_ERR_INVALID_ARG);
    assert_null(png);
}

/* A horizontal line at y = 5 and a diagonal y = x on fixed 0..10 axes, written to a file. */
static void test_known_lines(void **state)
{
    (void)state;
    tdm_plot *p;
    tdm_err err;
    assert_int_equal(tdm_plot_create(400, 300, &p, &err), TDM_OK);
    assert_int_equal(tdm_plot_title(p, "Known lines \xC3\x97 2", &err), TDM_OK);
    assert_int_equal(tdm_plot_labels(p, "x (units)", "y %", &err), TDM_OK);
    assert_int_equal(tdm_plot_x_range(p, 0, 10, &err), TDM_OK);
    assert_int_equal(tdm_plot_y_range(p, 0, 10, &err), TDM_OK);
    const double hx[2] = {0, 10}, hy[2] = {5, 5}, dx[2] = {0, 10}, dy[2] = {0, 10};
    assert_int_equal(tdm_plot_series(p, "flat", hx, hy, 2, TDM_PLOT_LINE, &err), TDM_OK);
    assert_int_equal(tdm_plot_series(p, "diagonal", dx, dy, 2, TDM_PLOT_LINE, &err), TDM_OK);

    char path[] = "/tmp/tdm_plot_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(tdm_plot_write_png(p, path, &err), TDM_OK);
    size_t len;
    uint8_t *png = read_file(path, &len);
    unlink(path);
    int w = 0, h = 0;
    uint8_t *rgb = decode_png(png, len, &w, &h);
    assert_int_equal(w, 400);
    assert_int_equal(h, 300);

    uint8_t *direct;
    int rw, rh;
    assert_int_equal(tdm_plot_render(p, &direct, &rw, &rh, &err), TDM_OK);
    assert_memory_equal(rgb, direct, (size_t)w * (size_t)h * 3);
    free(direct);

    /* Along the flat line, away from the legend (top right) and the crossing at x = 5. */
    for (double x = 0.5; x <= 9.5; x += 0.5) {
        double px, py;
        assert_int_equal(tdm_plot_to_pixel(p, x, 5.0, &px, &py), TDM_OK);
        const uint8_t *c = pixel(rgb, w, (int)(px + 0.5), (int)(py + 0.5));
        if (x > 4.4 && x < 5.6)
            continue;
        assert_true(is_colour(c, k_blue));
    }
    for (double x = 0.5; x <= 6.5; x += 0.5) { /* the legend sits top right */
        double px, py;
        assert_int_equal(tdm_plot_to_pixel(p, x, x, &px, &py), TDM_OK);
        if (x > 4.4 && x < 5.6)
            continue;
        assert_true(is_colour(pixel(rgb, w, (int)(px + 0.5), (int)(py + 0.5)), k_orange));
    }
    /* Away from both lines: neither colour. */
    const double away[][2] = {{2, 8}, {8, 2}, {1, 3}, {3, 1.5}};
    for (size_t i = 0; i < sizeof away / sizeof away[0]; i++) {
        double px, py;
        assert_int_equal(tdm_plot_to_pixel(p, away[i][0], away[i][1], &px, &py), TDM_OK);
        const uint8_t *c = pixel(rgb, w, (int)(px + 0.5), (int)(py + 0.5));
        assert_false(is_colour(c, k_blue));
        assert_false(is_colour(c, k_orange));
    }
    /* The title is drawn: black pixels in the band above the plot area. */
    double top_x, top_y;
    assert_int_equal(tdm_plot_to_pixel(p, 0, 10, &top_x, &top_y), TDM_OK);
    int black = 0;
    for (int y = 0; y < (int)top_y - 1; y++)
        for (int x = 0; x < w; x++)
            black += is_colour(pixel(rgb, w, x, y), (const uint8_t[3]){0, 0, 0});
    assert_true(black > 40);
    free(rgb);
    free(png);
    tdm_plot_free(p);
}

/* Log x: decades are equally spaced; scatter markers land where to_pixel says; automatic ranges. */
static void test_log_scatter(void **state)
{
    (void)state;
    tdm_plot *p;
    assert_int_equal(tdm_plot_create(640, 480, &p, NULL), TDM_OK);
    tdm_plot_log_x(p, true);
    const double x[5] = {1, 10, 100, 1000, 0 /* skipped on a log axis */};
    const double y[5] = {0.2, 0.4, 0.6, 0.8, 0.5};
    assert_int_equal(tdm_plot_series(p, "points", x, y, 5, TDM_PLOT_POINTS, NULL), TDM_OK);
    double px[4], py[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(tdm_plot_to_pixel(p, x[i], y[i], &px[i], &py[i]), TDM_OK);
    assert_true(px[1] - px[0] > 50);
    assert_true(px[2] - px[1] > px[1] - px[0] - 1e-6 && px[2] - px[1] < px[1] - px[0] + 1e-6);
    assert_true(py[1] < py[0]); /* y grows upwards */
    double dummy;
    assert_int_equal(tdm_plot_to_pixel(p, 0, 1, &dummy, &dummy), TDM_ERR_INVALID_ARG);
    uint8_t *rgb;
    int w, h;
    assert_int_equal(tdm_plot_render(p, &rgb, &w, &h, NULL), TDM_OK);
    for (int i = 0; i < 4; i++)
        assert_true(is_colour(pixel(rgb, w, (int)(px[i] + 0.5), (int)(py[i] + 0.5)), k_blue));
    /* scatter only: the middle between two markers is not drawn */
    assert_false(
        is_colour(pixel(rgb, w, (int)((px[0] + px[1]) / 2), (int)((py[0] + py[1]) / 2)), k_blue));
    free(rgb);
    tdm_plot_free(p);
}

static void test_text_width(void **state)
{
    (void)state;
    assert_int_equal(tdm_plot_text_width("", 1), 0);
    assert_int_equal(tdm_plot_text_width("abc", 1), 17);
    assert_int_equal(tdm_plot_text_width("abc", 2), 34);
    assert_int_equal(tdm_plot_text_width("\xC3\x97", 1), 5); /* one UTF-8 character */
}

static void test_bad_arguments(void **state)
{
    (void)state;
    tdm_plot *p;
    tdm_err err;
    assert_int_equal(tdm_plot_create(10, 300, &p, &err), TDM_ERR_INVALID_ARG);
    assert_null(p);
    assert_non_null(strstr(err.msg, "10x300"));
    assert_int_equal(tdm_plot_create(300, 200, &p, &err), TDM_OK);
    assert_int_equal(tdm_plot_x_range(p, 5, 5, &err), TDM_ERR_INVALID_ARG);
    tdm_plot_log_x(p, true);
    assert_int_equal(tdm_plot_x_range(p, 0, 10, &err), TDM_ERR_INVALID_ARG);
    assert_non_null(strstr(err.msg, "log"));
    const double v[1] = {1};
    assert_int_equal(tdm_plot_series(p, "s", v, v, 1, (tdm_plot_style)7, &err),
                     TDM_ERR_INVALID_ARG);
    assert_int_equal(tdm_plot_series(p, "s", NULL, v, 1, TDM_PLOT_LINE, &err), TDM_ERR_INVALID_ARG);
    /* an empty plot still renders (default 0..1 axes) */
    assert_int_equal(tdm_plot_write_png(p, "/nonexistent-dir/x.png", &err), TDM_ERR_IO);
    assert_non_null(strstr(err.msg, "/nonexistent-dir/x.png"));
    uint8_t *rgb;
    int w, h;
    assert_int_equal(tdm_plot_render(p, &rgb, &w, &h, &err), TDM_OK);
    free(rgb);
    tdm_plot_free(p);
}

/* Extreme and non-finite data neither crash nor hang: they are skipped or clipped. */
static void test_extreme_data(void **state)
{
    (void)state;
    tdm_plot *p;
    assert_int_equal(tdm_plot_create(320, 240, &p, NULL), TDM_OK);
    const double x[5] = {-1e308, 0, NAN, 1e308, INFINITY};
    const double y[5] = {1e308, -1e308, 1, INFINITY, 2};
    assert_int_equal(tdm_plot_series(p, "wild", x, y, 5, TDM_PLOT_LINE_POINTS, NULL), TDM_OK);
    uint8_t *rgb;
    int w, h;
    assert_int_equal(tdm_plot_render(p, &rgb, &w, &h, NULL), TDM_OK);
    free(rgb);
    tdm_plot_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_png_roundtrip), cmocka_unit_test(test_known_lines),
        cmocka_unit_test(test_log_scatter),   cmocka_unit_test(test_text_width),
        cmocka_unit_test(test_bad_arguments), cmocka_unit_test(test_extreme_data),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

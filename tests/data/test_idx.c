/*
 * Tests of the idx (MNIST) reader: small files written here, raw and gzip,
 * every kind of corruption the header can carry, random mutations, and the
 * real MNIST / Fashion-MNIST files when they are installed. The real MNIST
 * images are cross-checked against ../shared/data/mnist/test100.csv through
 * the independent CSV reader, so each reader checks the other.
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
#include <zlib.h>

#include "skip.h"
#include "tandem/data.h"

static char g_dir[64];

static void path_in_dir(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", g_dir, name);
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static void write_gz(const char *path, const void *data, size_t len)
{
    gzFile f = gzopen(path, "wb");
    assert_non_null(f);
    if (len > 0)
        assert_int_equal(gzwrite(f, data, (unsigned)len), (int)len);
    assert_int_equal(gzclose(f), Z_OK);
}

/* Builds an idx ubyte image with the given dims and element values i*7+1. */
static size_t make_idx(unsigned char *buf, size_t cap, int ndim, const uint32_t *dims)
{
    size_t n = 1;
    buf[0] = 0;
    buf[1] = 0;
    buf[2] = 0x08;
    buf[3] = (unsigned char)ndim;
    for (int i = 0; i < ndim; i++) {
        buf[4 + 4 * i] = (unsigned char)(dims[i] >> 24);
        buf[5 + 4 * i] = (unsigned char)(dims[i] >> 16);
        buf[6 + 4 * i] = (unsigned char)(dims[i] >> 8);
        buf[7 + 4 * i] = (unsigned char)dims[i];
        n *= dims[i];
    }
    size_t head = 4 + 4 * (size_t)ndim;
    assert_true(head + n <= cap);
    for (size_t i = 0; i < n; i++)
        buf[head + i] = (unsigned char)(i * 7 + 1);
    return head + n;
}

static int setup_dir(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/tdm_test_idx_XXXXXX");
    return mkdtemp(g_dir) == NULL ? -1 : 0;
}

static int teardown_dir(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_parse_valid(void **state)
{
    (void)state;
    unsigned char buf[256];
    const uint32_t dims[3] = {2, 3, 4};
    size_t len = make_idx(buf, sizeof buf, 3, dims);
    tdm_tensor t;
    tdm_err err = {{0}};
    assert_int_equal(tdm_idx_parse(buf, len, &t, &err), TDM_OK);
    assert_int_equal(t.dtype, TDM_DTYPE_UINT8);
    assert_int_equal(t.ndim, 3);
    assert_int_equal(t.dims[0], 2);
    assert_int_equal(t.dims[1], 3);
    assert_int_equal(t.dims[2], 4);
    const uint8_t *d = t.data;
    for (int i = 0; i < 24; i++)
        assert_int_equal(d[i], (uint8_t)(i * 7 + 1));
    tdm_tensor_free(&t);
}

static void expect_parse_error(const unsigned char *buf, size_t len, tdm_status want,
                               const char *msg_part)
{
    tdm_tensor t;
    tdm_err err = {{0}};
    tdm_status s = tdm_idx_parse(buf, len, &t, &err);
    if (s != want)
        fail_msg("want status %d, got %d (%s)", want, s, err.msg);
    if (strstr(err.msg, msg_part) == NULL)
        fail_msg("message '%s' lacks '%s'", err.msg, msg_part);
    assert_null(t.data);
}

static void test_parse_corrupt(void **state)
{
    (void)state;
    unsigned char buf[256];
    const uint32_t dims[2] = {3, 5};
    size_t len = make_idx(buf, sizeof buf, 2, dims);

    expect_parse_error(buf, 3, TDM_ERR_PARSE, "magic");
    unsigned char bad[256];
    memcpy(bad, buf, len);
    bad[0] = 1;
    expect_parse_error(bad, len, TDM_ERR_PARSE, "magic");
    memcpy(bad, buf, len);
    bad[2] = 0x0d; /* float elements */
    expect_parse_error(bad, len, TDM_ERR_UNSUPPORTED, "0x0d");
    memcpy(bad, buf, len);
    bad[3] = 0;
    expect_parse_error(bad, len, TDM_ERR_PARSE, "rank 0");
    bad[3] = 200;
    expect_parse_error(bad, len, TDM_ERR_PARSE, "rank 200");
    expect_parse_error(buf, 9, TDM_ERR_PARSE, "header truncated");
    expect_parse_error(buf, len - 1, TDM_ERR_PARSE, "truncated");
    unsigned char longer[256];
    memcpy(longer, buf, len);
    longer[len] = 0;
    expect_parse_error(longer, len + 1, TDM_ERR_PARSE, "trailing");

    /* Dims whose product overflows or exceeds the limit: an error, not an allocation. */
    const uint32_t huge[4] = {0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu};
    unsigned char h[32] = {0, 0, 0x08, 4};
    for (int i = 0; i < 4; i++) {
        h[4 + 4 * i] = (unsigned char)(huge[i] >> 24);
        h[5 + 4 * i] = (unsigned char)(huge[i] >> 16);
        h[6 + 4 * i] = (unsigned char)(huge[i] >> 8);
        h[7 + 4 * i] = (unsigned char)huge[i];
    }
    expect_parse_error(h, 20, TDM_ERR_PARSE, "too large");
    /* Large but representable dims with no data: truncated, never a short read. */
    const uint32_t big[1] = {100000};
    unsigned char b[8];
    b[0] = 0;
    b[1] = 0;
    b[2] = 0x08;
    b[3] = 1;
    b[4] = (unsigned char)(big[0] >> 24);
    b[5] = (unsigned char)(big[0] >> 16);
    b[6] = (unsigned char)(big[0] >> 8);
    b[7] = (unsigned char)big[0];
    expect_parse_error(b, 8, TDM_ERR_PARSE, "truncated");
}

/* Random mutations of a valid image: any status, never a crash (run under ASan). */
static void test_parse_mutations(void **state)
{
    (void)state;
    unsigned char buf[256], m[256];
    const uint32_t dims[3] = {2, 4, 4};
    size_t len = make_idx(buf, sizeof buf, 3, dims);
    uint32_t rng = 12345;
    int ok = 0;
    for (int iter = 0; iter < 20000; iter++) {
        memcpy(m, buf, len);
        int flips = 1 + (int)(rng % 4);
        for (int k = 0; k < flips; k++) {
            rng = rng * 1664525u + 1013904223u;
            size_t at = (rng >> 8) % 20; /* mostly the header */
            rng = rng * 1664525u + 1013904223u;
            m[at] = (unsigned char)(rng >> 24);
        }
        rng = rng * 1664525u + 1013904223u;
        size_t mlen = (rng >> 28) == 0 ? (rng >> 8) % (len + 1) : len;
        tdm_tensor t;
        tdm_err err = {{0}};
        tdm_status s = tdm_idx_parse(m, mlen, &t, &err);
        if (s == TDM_OK) {
            ok++;
            size_t bytes = tdm_tensor_nbytes(&t);
            assert_true(bytes + 4 + 4 * (size_t)t.ndim == mlen);
            tdm_tensor_free(&t);
        } else {
            assert_true(err.msg[0] != '\0');
        }
    }
    assert_true(ok > 0);
}

static void write_pair(const char *img, const char *lab, bool gz, uint32_t n, uint32_t labels_n)
{
    unsigned char ib[4096], lb[256];
    const uint32_t idims[3] = {n, 3, 2};
    size_t il = make_idx(ib, sizeof ib, 3, idims);
    const uint32_t ldims[1] = {labels_n};
    size_t ll = make_idx(lb, sizeof lb, 1, ldims);
    for (uint32_t i = 0; i < labels_n; i++)
        lb[8 + i] = (unsigned char)(i % 10);
    if (gz) {
        write_gz(img, ib, il);
        write_gz(lab, lb, ll);
    } else {
        write_file(img, ib, il);
        write_file(lab, lb, ll);
    }
}

static void check_loaded(const tdm_dataset *d, int64_t n, float scale)
{
    assert_int_equal(d->n, n);
    assert_int_equal(d->x.dtype, TDM_DTYPE_FLOAT32);
    assert_int_equal(d->x.ndim, 4);
    assert_int_equal(d->x.dims[0], n);
    assert_int_equal(d->x.dims[1], 1);
    assert_int_equal(d->x.dims[2], 3);
    assert_int_equal(d->x.dims[3], 2);
    const float *x = d->x.data;
    for (int64_t i = 0; i < n * 6; i++) {
        float want = (float)(uint8_t)(i * 7 + 1) / scale;
        assert_true(x[i] == want);
    }
    for (int64_t i = 0; i < n; i++)
        assert_int_equal(d->labels[i], i % 10);
}

static void test_load_raw_and_gz(void **state)
{
    (void)state;
    char img[128], lab[128];
    for (int gz = 0; gz < 2; gz++) {
        path_in_dir(img, sizeof img, gz ? "img.gz" : "img");
        path_in_dir(lab, sizeof lab, gz ? "lab.gz" : "lab");
        write_pair(img, lab, gz != 0, 12, 12);
        tdm_dataset d;
        tdm_err err = {{0}};
        assert_int_equal(tdm_idx_load(img, lab, NULL, 0, &d, &err), TDM_OK);
        check_loaded(&d, 12, 255.0f);
        tdm_dataset_free(&d);
        tdm_data_norm norm = {.scale = 1.0f};
        assert_int_equal(tdm_idx_load(img, lab, &norm, 5, &d, &err), TDM_OK);
        check_loaded(&d, 5, 1.0f);
        tdm_dataset_free(&d);
    }
}

static void test_load_normalised(void **state)
{
    (void)state;
    char img[128], lab[128];
    path_in_dir(img, sizeof img, "nimg");
    path_in_dir(lab, sizeof lab, "nlab");
    write_pair(img, lab, false, 2, 2);
    tdm_data_norm norm = {.scale = 255.0f, .n_channels = 1, .mean = {0.1307f}, .std = {0.3081f}};
    tdm_dataset d;
    tdm_err err = {{0}};
    assert_int_equal(tdm_idx_load(img, lab, &norm, 0, &d, &err), TDM_OK);
    const float *x = d.x.data;
    for (int i = 0; i < 12; i++) {
        float v = (float)(uint8_t)(i * 7 + 1);
        assert_true(x[i] == (v / 255.0f - 0.1307f) / 0.3081f);
    }
    tdm_dataset_free(&d);
    /* Bad normalisations are caller errors with a message. */
    tdm_data_norm bad = {.n_channels = 1, .mean = {0}, .std = {0}};
    assert_int_equal(tdm_idx_load(img, lab, &bad, 0, &d, &err), TDM_ERR_INVALID_ARG);
    assert_non_null(strstr(err.msg, "std"));
    tdm_data_norm three = {.n_channels = 3, .mean = {0, 0, 0}, .std = {1, 1, 1}};
    assert_int_equal(tdm_idx_load(img, lab, &three, 0, &d, &err), TDM_ERR_INVALID_ARG);
    tdm_data_norm neg = {.scale = -1.0f};
    assert_int_equal(tdm_idx_load(img, lab, &neg, 0, &d, &err), TDM_ERR_INVALID_ARG);
}

static void test_load_errors(void **state)
{
    (void)state;
    char img[128], lab[128], path[128];
    tdm_dataset d;
    tdm_err err = {{0}};
    path_in_dir(img, sizeof img, "eimg");
    path_in_dir(lab, sizeof lab, "elab");

    write_pair(img, lab, false, 4, 3);
    assert_int_equal(tdm_idx_load(img, lab, NULL, 0, &d, &err), TDM_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "4 images"));
    assert_null(d.x.data);

    /* Swapped files: labels are rank 1, images rank 3. */
    write_pair(img, lab, false, 3, 3);
    assert_int_equal(tdm_idx_load(lab, img, NULL, 0, &d, &err), TDM_ERR_SHAPE);

    path_in_dir(path, sizeof path, "missing");
    assert_int_equal(tdm_idx_load(path, lab, NULL, 0, &d, &err), TDM_ERR_IO);
    assert_non_null(strstr(err.msg, "missing"));
    assert_int_equal(tdm_idx_load(g_dir, lab, NULL, 0, &d, &err) != TDM_OK, true);

    /* A truncated gzip stream is corruption, not a shorter file. */
    unsigned char ib[4096];
    const uint32_t idims[3] = {50, 8, 8};
    size_t il = make_idx(ib, sizeof ib, 3, idims);
    path_in_dir(path, sizeof path, "trunc.gz");
    write_gz(path, ib, il);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    unsigned char gzb[8192];
    size_t gl = fread(gzb, 1, sizeof gzb, f);
    fclose(f);
    assert_true(gl > 20);
    write_file(path, gzb, gl - 12);
    tdm_tensor t;
    tdm_status s = tdm_idx_read(path, &t, &err);
    assert_int_equal(s, TDM_ERR_PARSE);
    assert_non_null(strstr(err.msg, "trunc.gz"));
    /* Corrupt deflate data in the middle. */
    write_gz(path, ib, il);
    for (size_t i = 12; i < gl - 8; i += 3)
        gzb[i] ^= 0x5a;
    write_file(path, gzb, gl);
    assert_true(tdm_idx_read(path, &t, &err) != TDM_OK);
    assert_null(t.data);
}

static void test_gzip_bomb_limit(void **state)
{
    (void)state;
    char path[128];
    path_in_dir(path, sizeof path, "bomb.gz");
    size_t n = 8u << 20;
    unsigned char *zeros = calloc(n, 1);
    assert_non_null(zeros);
    write_gz(path, zeros, n);
    free(zeros);
    void *buf = NULL;
    size_t len = 0;
    tdm_err err = {{0}};
    assert_int_equal(tdm_data_read_file(path, 1u << 20, &buf, &len, &err), TDM_ERR_NOMEM);
    assert_null(buf);
    assert_non_null(strstr(err.msg, "larger than"));
    /* At or under the limit it reads, with a terminator past the end. */
    assert_int_equal(tdm_data_read_file(path, n, &buf, &len, &err), TDM_OK);
    assert_int_equal(len, n);
    assert_int_equal(((unsigned char *)buf)[n], 0);
    free(buf);
    /* An empty file reads as zero bytes. */
    path_in_dir(path, sizeof path, "empty");
    write_file(path, "", 0);
    assert_int_equal(tdm_data_read_file(path, 0, &buf, &len, &err), TDM_OK);
    assert_int_equal(len, 0);
    free(buf);
}

static void test_real_mnist(void **state)
{
    (void)state;
    const char *img = TDM_SHARED_DIR "/data/mnist/t10k-images-idx3-ubyte.gz";
    const char *lab = TDM_SHARED_DIR "/data/mnist/t10k-labels-idx1-ubyte.gz";
    const char *csv = TDM_SHARED_DIR "/data/mnist/test100.csv";
    if (!tdm_test_path_exists(img) || !tdm_test_path_exists(csv)) {
        printf("SKIP: %s is absent\n", img);
        skip();
    }
    tdm_dataset d, c;
    tdm_err err = {{0}};
    assert_int_equal(tdm_idx_load(img, lab, NULL, 0, &d, &err), TDM_OK);
    assert_int_equal(d.n, 10000);
    assert_int_equal(d.x.dims[2], 28);
    assert_int_equal(d.x.dims[3], 28);
    /* The well-known class counts of the MNIST test set. */
    const int want[10] = {980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009};
    int got[10] = {0};
    for (int64_t i = 0; i < d.n; i++) {
        assert_true(d.labels[i] >= 0 && d.labels[i] < 10);
        got[d.labels[i]]++;
    }
    for (int k = 0; k < 10; k++)
        assert_int_equal(got[k], want[k]);
    /* The first 100 images equal test100.csv, read by the other parser. */
    assert_int_equal(tdm_csv_load(csv, 1, 28, 28, NULL, 0, &c, &err), TDM_OK);
    assert_int_equal(c.n, 100);
    assert_memory_equal(c.x.data, d.x.data, 100 * 784 * sizeof(float));
    assert_memory_equal(c.labels, d.labels, 100 * sizeof(int32_t));
    tdm_dataset_free(&c);
    tdm_dataset_free(&d);
}

static void test_real_fashion(void **state)
{
    (void)state;
    const char *img = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";
    const char *lab = "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz";
    if (!tdm_test_path_exists(img)) {
        printf("SKIP: %s is absent (Debian package dataset-fashion-mnist)\n", img);
        skip();
    }
    tdm_dataset d;
    tdm_err err = {{0}};
    assert_int_equal(tdm_idx_load(img, lab, NULL, 2000, &d, &err), TDM_OK);
    assert_int_equal(d.n, 2000);
    assert_int_equal(d.x.dims[1], 1);
    float lo = 1.0f, hi = 0.0f;
    const float *x = d.x.data;
    for (int64_t i = 0; i < 2000 * 784; i++) {
        lo = x[i] < lo ? x[i] : lo;
        hi = x[i] > hi ? x[i] : hi;
    }
    assert_true(lo == 0.0f && hi == 1.0f);
    tdm_dataset_free(&d);
    /* The full test set is balanced: 1000 images of each class. */
    assert_int_equal(tdm_idx_load(img, lab, NULL, 0, &d, &err), TDM_OK);
    int got[10] = {0};
    for (int64_t i = 0; i < d.n; i++)
        got[d.labels[i]]++;
    for (int k = 0; k < 10; k++)
        assert_int_equal(got[k], 1000);
    tdm_dataset_free(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_valid),     cmocka_unit_test(test_parse_corrupt),
        cmocka_unit_test(test_parse_mutations), cmocka_unit_test(test_load_raw_and_gz),
        cmocka_unit_test(test_load_normalised), cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_gzip_bomb_limit), cmocka_unit_test(test_real_mnist),
        cmocka_unit_test(test_real_fashion),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}

/*
 * Exit heads: pooling arithmetic, training on synthetic data with a known
 * answer, determinism, and the heads file (round trip, and refusal of
 * truncated, corrupted, foreign and wrong-version files).
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "tandem/exits.h"

static void test_pool(void **state)
{
    (void)state;
    /* [1, 2, 4, 4]: channel 0 counts 0..15, channel 1 is all 3 */
    float data[32];
    for (int i = 0; i < 16; i++) {
        data[i] = (float)i;
        data[16 + i] = 3.0f;
    }
    tdm_tensor t = {0};
    int64_t dims[4] = {1, 2, 4, 4};
    tdm_tensor_set_shape(&t, TDM_DTYPE_FLOAT32, 4, dims);
    t.data = data;
    float out[32];
    int64_t dim;
    tdm_exit_pool used;
    assert_int_equal(tdm_exit_pool_dim(&t, "x", TDM_POOL_AUTO, 0, &used, &dim, NULL), TDM_OK);
    assert_int_equal(used, TDM_POOL_GAP);
    assert_int_equal(dim, 2);
    assert_int_equal(tdm_exit_pool_apply(&t, "x", TDM_POOL_GAP, 0, NULL, out, NULL), TDM_OK);
    assert_true(fabsf(out[0] - 7.5f) < 1e-6f);
    assert_true(fabsf(out[1] - 3.0f) < 1e-6f);
    assert_int_equal(tdm_exit_pool_apply(&t, "x", TDM_POOL_GRID, 2, NULL, out, NULL), TDM_OK);
    /* top-left 2x2 of channel 0 is {0,1,4,5} */
    assert_true(fabsf(out[0] - 2.5f) < 1e-6f);
    assert_true(fabsf(out[3] - 12.5f) < 1e-6f);
    assert_true(fabsf(out[4] - 3.0f) < 1e-6f);
    assert_int_equal(tdm_exit_pool_apply(&t, "x", TDM_POOL_FLATTEN, 0, NULL, out, NULL), TDM_OK);
    assert_true(out[17] == 3.0f && out[5] == 5.0f);
    tdm_err err = {{0}};
    assert_int_equal(tdm_exit_pool_dim(&t, "x", TDM_POOL_GRID, 5, NULL, &dim, &err), TDM_ERR_SHAPE);
    assert_int_equal(tdm_exit_pool_dim(&t, "x", TDM_POOL_TOKENS, 0, NULL, &dim, &err),
                     TDM_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "'x'"));
    /* tokens with a mask: [1, 3, 2], the middle token masked out */
    int64_t d3[3] = {1, 3, 2};
    tdm_tensor_set_shape(&t, TDM_DTYPE_FLOAT32, 3, d3);
    float tok[6] = {1, 2, 100, 100, 3, 4};
    float mask[3] = {1, 0, 1};
    t.data = tok;
    assert_int_equal(tdm_exit_pool_apply(&t, "x", TDM_POOL_AUTO, 0, mask, out, NULL), TDM_OK);
    assert_true(fabsf(out[0] - 2.0f) < 1e-6f && fabsf(out[1] - 3.0f) < 1e-6f);
    tdm_exit_pool p;
    int g;
    assert_true(tdm_exit_pool_parse("grid7", &p, &g) && p == TDM_POOL_GRID && g == 7);
    assert_true(tdm_exit_pool_parse("grid16", &p, &g) && g == 16);
    assert_false(tdm_exit_pool_parse("grid17", &p, &g));
    assert_false(tdm_exit_pool_parse("grid0", &p, &g));
    assert_false(tdm_exit_pool_parse("gap ", &p, &g));
}

static uint64_t rng_state;

static double urand(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (double)(z >> 11) * (1.0 / 9007199254740992.0);
}

/* Three classes separated by linear boundaries in 6 dims (2 informative, scaled and shifted). */
static void make_linear(float *x, int32_t *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        double a = urand() * 2 - 1, b = urand() * 2 - 1;
        int c = a + b > 0.3 ? 0 : (a - b > 0.0 ? 1 : 2);
        /* keep a margin so that the set is separable */
        if (fabs(a + b - 0.3) < 0.05 || (c != 0 && fabs(a - b) < 0.05)) {
            i--;
            continue;
        }
        y[i] = c;
        x[i * 6 + 0] = (float)(100.0 * a + 50.0);
        x[i * 6 + 1] = (float)(0.01 * b);
        for (int k = 2; k < 6; k++)
            x[i * 6 + k] = (float)(urand() - 0.5);
    }
}

/* XOR of two signs: not linearly separable, but one hidden layer learns it. */
static void make_xor(float *x, int32_t *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        double a = urand() * 2 - 1, b = urand() * 2 - 1;
        if (fabs(a) < 0.1 || fabs(b) < 0.1) {
            i--;
            continue;
        }
        x[i * 2] = (float)a;
        x[i * 2 + 1] = (float)b;
        y[i] = (a > 0) != (b > 0);
    }
}

static double accuracy(const tdm_exit_head *h, const float *x, const int32_t *y, int64_t n)
{
    float *l = malloc((size_t)(n * h->n_classes) * sizeof *l);
    assert_non_null(l);
    assert_int_equal(tdm_exit_head_logits(h, x, n, l, NULL), TDM_OK);
    int64_t right = 0;
    for (int64_t i = 0; i < n; i++) {
        int arg = 0;
        for (int c = 1; c < h->n_classes; c++)
            if (l[i * h->n_classes + c] > l[i * h->n_classes + arg])
                arg = c;
        right += arg == y[i];
    }
    free(l);
    return (double)right / (double)n;
}

static void test_train_linear(void **state)
{
    (void)state;
    const int64_t n = 3000;
    float *x = malloc((size_t)n * 6 * sizeof *x);
    int32_t *y = malloc((size_t)n * sizeof *y);
    assert_true(x && y);
    rng_state = 5;
    make_linear(x, y, n);
    tdm_exit_head h = {0}, h2 = {0};
    tdm_exit_train_options o = {.seed = 3, .lr = 0.01, .max_epochs = 200, .l2 = -1.0};
    tdm_exit_train_report rep;
    assert_int_equal(tdm_exit_head_train(&h, x, y, n, 6, 3, &o, &rep, NULL), TDM_OK);
    assert_true(rep.val_acc > 0.97);
    assert_true(accuracy(&h, x, y, n) > 0.97);
    assert_true(rep.best_epoch >= 1 && rep.best_epoch <= rep.epochs);
    /* standardisation found the scale of the big feature */
    assert_true(fabsf(h.mean[0] - 50.0f) < 5.0f && h.std[0] > 40.0f);
    /* same seed, same bytes */
    assert_int_equal(tdm_exit_head_train(&h2, x, y, n, 6, 3, &o, NULL, NULL), TDM_OK);
    assert_memory_equal(h.w2, h2.w2, 3 * 6 * sizeof(float));
    tdm_exit_head_clear(&h);
    tdm_exit_head_clear(&h2);
    tdm_err err = {{0}};
    y[7] = 3;
    assert_int_equal(tdm_exit_head_train(&h, x, y, n, 6, 3, &o, NULL, &err), TDM_ERR_INVALID_ARG);
    assert_non_null(strstr(err.msg, "label 3"));
    assert_int_equal(tdm_exit_head_train(&h, x, y, 5, 6, 3, &o, NULL, &err), TDM_ERR_INVALID_ARG);
    free(x);
    free(y);
}

static void test_train_hidden(void **state)
{
    (void)state;
    const int64_t n = 4000;
    float *x = malloc((size_t)n * 2 * sizeof *x);
    int32_t *y = malloc((size_t)n * sizeof *y);
    assert_true(x && y);
    rng_state = 11;
    make_xor(x, y, n);
    tdm_exit_head lin = {0}, mlp = {0};
    tdm_exit_train_options o = {.seed = 1, .lr = 0.01, .max_epochs = 100};
    assert_int_equal(tdm_exit_head_train(&lin, x, y, n, 2, 2, &o, NULL, NULL), TDM_OK);
    o.hidden = 16;
    assert_int_equal(tdm_exit_head_train(&mlp, x, y, n, 2, 2, &o, NULL, NULL), TDM_OK);
    assert_true(accuracy(&lin, x, y, n) < 0.75); /* a line cannot do XOR */
    assert_true(accuracy(&mlp, x, y, n) > 0.95);
    tdm_exit_head_clear(&lin);
    tdm_exit_head_clear(&mlp);
    free(x);
    free(y);
}

/* A small trained two-exit set, for the file tests. */
static tdm_exits *make_exits(void)
{
    tdm_exits *e = calloc(1, sizeof *e);
    assert_non_null(e);
    memset(e->model_sha256, 'a', 64);
    e->n_classes = 2;
    e->n_exits = 2;
    e->confidence = TDM_CONF_ENTROPY;
    const int64_t n = 200;
    float x[400];
    int32_t y[200];
    rng_state = 2;
    make_xor(x, y, n);
    for (int k = 0; k < 2; k++) {
        tdm_exit_head *h = &e->heads[k];
        h->cut = strdup(k ? "/layer1/Relu_output_0" : "in\"put");
        h->pool = k ? TDM_POOL_GRID : TDM_POOL_FLATTEN;
        h->grid = k ? 3 : 0;
        tdm_exit_train_options o = {.seed = 9, .hidden = k ? 3 : 0, .max_epochs = 3};
        assert_int_equal(tdm_exit_head_train(h, x, y, n, 2, 2, &o, NULL, NULL), TDM_OK);
        h->temperature = 1.25 + k;
        h->threshold = k ? 2.0 : 0.8125;
    }
    return e;
}

static char *write_read(const tdm_exits *e, size_t *len)
{
    char path[] = "/tmp/tdm_exits_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(tdm_exits_save(e, path, NULL), TDM_OK);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc(*len + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, *len, f), *len);
    buf[*len] = '\0';
    fclose(f);
    tdm_exits *back = NULL;
    assert_int_equal(tdm_exits_load(path, &back, NULL), TDM_OK);
    tdm_exits_free(back);
    unlink(path);
    return buf;
}

static void test_file_roundtrip(void **state)
{
    (void)state;
    tdm_exits *e = make_exits();
    size_t len;
    char *text = write_read(e, &len);
    tdm_exits *b = NULL;
    tdm_err err = {{0}};
    assert_int_equal(tdm_exits_parse(text, len, "mem", &b, &err), TDM_OK);
    assert_string_equal(b->model_sha256, e->model_sha256);
    assert_int_equal(b->n_exits, 2);
    assert_int_equal(b->confidence, TDM_CONF_ENTROPY);
    for (int k = 0; k < 2; k++) {
        const tdm_exit_head *x = &e->heads[k], *y = &b->heads[k];
        assert_string_equal(x->cut, y->cut);
        assert_int_equal(x->pool, y->pool);
        assert_int_equal(x->grid, y->grid);
        assert_int_equal(x->hidden, y->hidden);
        assert_true(x->temperature == y->temperature && x->threshold == y->threshold);
        int mid = x->hidden ? x->hidden : x->in_dim;
        assert_memory_equal(x->w2, y->w2, (size_t)(2 * mid) * sizeof(float));
        assert_memory_equal(x->mean, y->mean, (size_t)x->in_dim * sizeof(float));
        assert_memory_equal(x->std, y->std, (size_t)x->in_dim * sizeof(float));
        if (x->hidden)
            assert_memory_equal(x->w1, y->w1, (size_t)(x->hidden * x->in_dim) * sizeof(float));
    }
    tdm_exits_free(b);
    free(text);
    tdm_exits_free(e);
}

static tdm_status parse_str(const char *s, tdm_err *err)
{
    tdm_exits *b = NULL;
    tdm_status st = tdm_exits_parse(s, strlen(s), "f", &b, err);
    if (st == TDM_OK)
        tdm_exits_free(b);
    else
        assert_null(b);
    return st;
}

/* Replaces the first occurrence of from with to in text (a new string). */
static char *replace(const char *text, const char *from, const char *to)
{
    const char *p = strstr(text, from);
    assert_non_null(p);
    size_t a = (size_t)(p - text), fl = strlen(from), tl = strlen(to);
    char *r = malloc(strlen(text) - fl + tl + 1);
    assert_non_null(r);
    memcpy(r, text, a);
    memcpy(r + a, to, tl);
    strcpy(r + a + tl, p + fl);
    return r;
}

static void test_file_rejects(void **state)
{
    (void)state;
    tdm_exits *e = make_exits();
    size_t len;
    char *text = write_read(e, &len);
    tdm_err err = {{0}};
    /* every truncation fails cleanly */
    for (size_t cut = 0; cut < len - 1; cut++) {
        tdm_exits *b = NULL;
        assert_int_not_equal(tdm_exits_parse(text, cut, "f", &b, &err), TDM_OK);
        assert_null(b);
    }
    /* every single-byte corruption either parses to a valid set or fails cleanly */
    char *m = malloc(len);
    assert_non_null(m);
    for (size_t i = 0; i < len; i += 3) {
        memcpy(m, text, len);
        m[i] ^= (char)(1 + (i % 7));
        tdm_exits *b = NULL;
        if (tdm_exits_parse(m, len, "f", &b, &err) == TDM_OK)
            tdm_exits_free(b);
    }
    free(m);
    static const struct {
        const char *from, *to, *want;
    } cases[] = {
        {"\"version\":1", "\"version\":2", "version 2"},
        {"\"format\":\"tdm-exits\"", "\"format\":\"onnx\"", "not a heads file"},
        {"\"n_classes\":2", "\"n_classes\":3", "'w2' must be an array of"},
        {"\"in_dim\":2", "\"in_dim\":3", "'mean' must be an array of 3"},
        {"\"hidden\":0", "\"hidden\":-1", "'hidden'"},
        {"\"pool\":\"flatten\"", "\"pool\":\"median\"", "'pool'"},
        {"\"temperature\":1.25", "\"temperature\":0", "'temperature'"},
        {"\"model_sha256\":\"aaaa", "\"model_sha256\":\"Aaaa", "model_sha256"},
        {"\"confidence\":\"entropy\"", "\"confidence\":\"max\"", "confidence"},
        {"\"cut\":\"in\\\"put\"", "\"cut\":\"\"", "'cut'"},
        {"\"threshold\":0.8125", "\"threshold\":\"high\"", "'threshold'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *bad = replace(text, cases[i].from, cases[i].to);
        memset(err.msg, 0, sizeof err.msg);
        assert_int_not_equal(parse_str(bad, &err), TDM_OK);
        if (!strstr(err.msg, cases[i].want))
            fail_msg("case %zu: message '%s' lacks '%s'", i, err.msg, cases[i].want);
        free(bad);
    }
    /* a std of zero would divide by zero when the head runs */
    char *bad = replace(text, "\"std\":[", "\"std\":[0,");
    char *bad2 = replace(bad, "\"in_dim\":2", "\"in_dim\":3");
    char *bad3 = replace(bad2, "\"mean\":[", "\"mean\":[0,");
    assert_int_not_equal(parse_str(bad3, &err), TDM_OK);
    assert_non_null(strstr(err.msg, "'std'[0] is not a positive float"));
    free(bad);
    free(bad2);
    free(bad3);
    assert_int_not_equal(parse_str("[]", &err), TDM_OK);
    assert_int_not_equal(parse_str("{\"format\":\"tdm-exits\",\"version\":1}", &err), TDM_OK);
    tdm_exits *none = NULL;
    assert_int_equal(tdm_exits_load("/nonexistent/heads.tdmx", &none, &err), TDM_ERR_IO);
    assert_null(none);
    free(text);
    tdm_exits_free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pool),         cmocka_unit_test(test_train_linear),
        cmocka_unit_test(test_train_hidden), cmocka_unit_test(test_file_roundtrip),
        cmocka_unit_test(test_file_rejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

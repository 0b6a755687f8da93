/*
 * Sentence embeddings against Hugging Face: every text of
 * ../shared/models/bert-tiny/embeddings_ref.jsonl (the 201 tokenizer
 * reference texts; mean pooling, L2-normalised, truncation 256) through both
 * ways of loading the model, the safetensors directory (BERT builder) and
 * onnx/model.onnx (ONNX reader + fusion passes), at batch sizes 1 and 32. Each
 * embedding must have cosine >= 0.99999 to the reference; the minimum per
 * configuration is printed.
 *
 * Also here, because they need the same model: a split at a layer boundary of
 * the built graph (head to layer.0.output, tail from there) gives the
 * whole-graph result, and the ids-level call gives the same vectors as the
 * text-level one.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/json.h"
#include "engine/builders/bert.h"
#include "engine/safetensors.h"
#include "skip.h"
#include "tandem/embed.h"
#include "tandem/graph.h"
#include "tandem/text.h"

#define MODEL TDM_SHARED_DIR "/models/bert-tiny"
#define REF MODEL "/embeddings_ref.jsonl"

static char **g_texts;
static float *g_ref;
static int g_n, g_dim;

static int setup(void **state)
{
    (void)state;
    FILE *f = fopen(REF, "rb");
    if (f == NULL)
        return -1;
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    int cap_n = 256;
    g_texts = calloc((size_t)cap_n, sizeof *g_texts);
    g_ref = NULL;
    while ((got = getline(&line, &cap, f)) > 0) {
        tdm_json_doc *doc = NULL;
        tdm_err err;
        if (tdm_json_parse(line, (size_t)got, 0, &doc, &err) != TDM_OK)
            return -1;
        const tdm_json *r = tdm_json_root(doc);
        const char *t = tdm_json_string(tdm_json_get(r, "text"), NULL);
        const tdm_json *emb = tdm_json_get(r, "embedding");
        if (t == NULL || emb == NULL || emb->type != TDM_JSON_ARRAY || g_n >= cap_n)
            return -1;
        if (g_dim == 0) {
            g_dim = (int)emb->len;
            g_ref = malloc(sizeof *g_ref * (size_t)cap_n * (size_t)g_dim);
        }
        if ((int)emb->len != g_dim)
            return -1;
        for (int d = 0; d < g_dim; d++)
            g_ref[(size_t)g_n * (size_t)g_dim + (size_t)d] = (float)emb->items[d].number;
        g_texts[g_n++] = strdup(t);
        tdm_json_free(doc);
    }
    free(line);
    fclose(f);
    return g_n > 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < g_n; i++)
        free(g_texts[i]);
    free(g_texts);
    free(g_ref);
    return 0;
}

static double cosine(const float *a, const float *b, int n)
{
    double ab = 0, aa = 0, bb = 0;
    for (int i = 0; i < n; i++) {
        ab += (double)a[i] * b[i];
        aa += (double)a[i] * a[i];
        bb += (double)b[i] * b[i];
    }
    return ab / (sqrt(aa) * sqrt(bb) + 1e-30);
}

static void check_against_ref(const char *path, int batch)
{
    tdm_embedder_options o = {.threads = 1, .batch = batch};
    tdm_embedder *e = NULL;
    tdm_err err = {{0}};
    tdm_status s = tdm_embedder_load(path, &o, &e, &err);
    if (s != TDM_OK)
        fail_msg("%s", err.msg);
    assert_int_equal(tdm_embedder_dim(e), g_dim);
    assert_int_equal(tdm_embedder_max_len(e), 256); /* sentence_bert_config.json */
    float *out = malloc(sizeof *out * (size_t)g_n * (size_t)g_dim);
    assert_non_null(out);
    s = tdm_embedder_embed(e, (const char *const *)g_texts, g_n, out, &err);
    if (s != TDM_OK)
        fail_msg("%s", err.msg);
    double mn = 2.0;
    int worst = -1;
    for (int i = 0; i < g_n; i++) {
        double c =
            cosine(out + (size_t)i * (size_t)g_dim, g_ref + (size_t)i * (size_t)g_dim, g_dim);
        if (c < mn) {
            mn = c;
            worst = i;
        }
    }
    printf("%-60s batch %2d: %d texts, min cosine %.12f (1 - min %.2e, text %d)\n", path, batch,
           g_n, mn, 1.0 - mn, worst);
    assert_true(mn >= 0.99999);
    tdm_embedder_free(e);
    free(out);
}

static void test_safetensors_b1(void **state)
{
    (void)state;
    check_against_ref(MODEL, 1);
}

static void test_safetensors_b32(void **state)
{
    (void)state;
    check_against_ref(MODEL, 32);
}

static void test_onnx_b1(void **state)
{
    (void)state;
    check_against_ref(MODEL "/onnx/model.onnx", 1);
}

static void test_onnx_b32(void **state)
{
    (void)state;
    check_against_ref(MODEL "/onnx/model.onnx", 32);
}

/* ids-level call == text-level call, and texts come back in the caller's order */
static void test_embed_ids(void **state)
{
    (void)state;
    tdm_embedder_options o = {.batch = 7};
    tdm_embedder *e = NULL;
    tdm_err err = {{0}};
    assert_int_equal(tdm_embedder_load(MODEL, &o, &e, &err), TDM_OK);
    tdm_tokenizer *tok = NULL;
    assert_int_equal(tdm_tokenizer_load(MODEL, &tok, &err), TDM_OK);
    const int n = 20;
    int32_t *ids[20];
    int lens[20];
    for (int i = 0; i < n; i++) {
        ids[i] = malloc(sizeof(int32_t) * 256);
        size_t got = 0;
        assert_int_equal(
            tdm_tokenizer_encode(tok, g_texts[i], strlen(g_texts[i]), 256, ids[i], 256, &got, &err),
            TDM_OK);
        lens[i] = (int)got;
    }
    float *a = malloc(sizeof *a * (size_t)n * (size_t)g_dim);
    float *b = malloc(sizeof *b * (size_t)n * (size_t)g_dim);
    assert_int_equal(tdm_embedder_embed_ids(e, (const int32_t *const *)ids, lens, n, a, &err),
                     TDM_OK);
    assert_int_equal(tdm_embedder_embed(e, (const char *const *)g_texts, n, b, &err), TDM_OK);
    for (int i = 0; i < n * g_dim; i++)
        assert_float_equal(a[i], b[i], 1e-6);
    for (int i = 0; i < n; i++)
        assert_true(cosine(a + i * g_dim, g_ref + i * g_dim, g_dim) >= 0.99999);
    /* a sequence longer than max_len is refused, naming it */
    lens[3] = 300;
    assert_int_equal(tdm_embedder_embed_ids(e, (const int32_t *const *)ids, lens, n, a, &err),
                     TDM_ERR_INVALID_ARG);
    assert_non_null(strstr(err.msg, "text 3"));
    for (int i = 0; i < n; i++)
        free(ids[i]);
    free(a);
    free(b);
    tdm_tokenizer_free(tok);
    tdm_embedder_free(e);
}

/* head (inputs -> layer.0.output) + tail (layer.0.output -> last_hidden_state) == whole run */
static void test_split_at_layer(void **state)
{
    (void)state;
    tdm_graph *g = NULL;
    tdm_bert_config cfg;
    tdm_err err = {{0}};
    if (tdm_bert_load_dir(MODEL, NULL, &g, &cfg, &err) != TDM_OK)
        fail_msg("%s", err.msg);
    assert_int_equal(cfg.layers, 2);
    tdm_session *s = NULL;
    tdm_session_options so = {.threads = 2};
    assert_int_equal(tdm_session_create(g, &so, &s, &err), TDM_OK);
    int64_t ids[2 * 6] = {101, 8403, 1998, 13433, 1012, 102, 101, 2023, 102, 0, 0, 0};
    int64_t mask[2 * 6] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0};
    int64_t types[2 * 6] = {0};
    int64_t dims[2] = {2, 6};
    tdm_tensor in[3];
    memset(in, 0, sizeof in);
    int64_t *bufs[3] = {ids, mask, types};
    for (int i = 0; i < 3; i++) {
        tdm_tensor_set_shape(&in[i], TDM_DTYPE_INT64, 2, dims);
        in[i].data = bufs[i];
    }
    const char *in_names[3] = {"input_ids", "attention_mask", "token_type_ids"};
    tdm_tensor whole[1], cut[1], tail[1];
    memset(whole, 0, sizeof whole);
    memset(cut, 0, sizeof cut);
    memset(tail, 0, sizeof tail);
    assert_int_equal(tdm_session_run(s, 3, in_names, in, whole, &err), TDM_OK);
    const char *cut_name = "layer.0.output", *out_name = "last_hidden_state";
    if (tdm_session_run_range(s, 3, in_names, in, 1, &cut_name, cut, &err) != TDM_OK)
        fail_msg("%s", err.msg);
    const char *tail_from[2] = {"layer.0.output", "attention_mask"};
    tdm_tensor tail_in[2] = {cut[0], in[1]};
    if (tdm_session_run_range(s, 2, tail_from, tail_in, 1, &out_name, tail, &err) != TDM_OK)
        fail_msg("%s", err.msg);
    assert_true(tdm_tensor_same_shape(&whole[0], &tail[0]));
    assert_int_equal(whole[0].dims[2], cfg.hidden);
    assert_memory_equal(whole[0].data, tail[0].data, tdm_tensor_nbytes(&whole[0]));
    tdm_tensor_free(&whole[0]);
    tdm_tensor_free(&cut[0]);
    tdm_tensor_free(&tail[0]);
    tdm_session_free(s);
    tdm_graph_free(g);
}

/* bert-tiny's weights rewritten as float16 safetensors: converted at load, close to the reference
 */
static void test_f16_weights(void **state)
{
    (void)state;
    char dir[] = "/tmp/tdm_embed_f16_XXXXXX";
    assert_non_null(mkdtemp(dir));
    static const char *const links[] = {"config.json",
                                        "vocab.txt",
                                        "tokenizer.json",
                                        "tokenizer_config.json",
                                        "special_tokens_map.json",
                                        "modules.json",
                                        "1_Pooling",
                                        "sentence_bert_config.json"};
    char a[512], b[512];
    for (size_t i = 0; i < sizeof links / sizeof links[0]; i++) {
        snprintf(a, sizeof a, "%s/%s", MODEL, links[i]);
        snprintf(b, sizeof b, "%s/%s", dir, links[i]);
        assert_int_equal(symlink(a, b), 0);
    }
    tdm_safetensors *st = NULL;
    tdm_err err = {{0}};
    assert_int_equal(tdm_safetensors_open(MODEL "/model.safetensors", &st, &err), TDM_OK);
    /* header: every tensor as F16, data packed in the same order */
    tdm_json_buf h = {0};
    tdm_json_buf_raw(&h, "{", 1);
    uint64_t off = 0;
    for (int i = 0; i < tdm_safetensors_count(st); i++) {
        const tdm_st_info *e = tdm_safetensors_info(st, i);
        uint64_t n = (e->end - e->begin) / 4;
        char buf[256];
        int len = snprintf(buf, sizeof buf, "%s\"%s\":{\"dtype\":\"F16\",\"shape\":[", i ? "," : "",
                           e->name);
        tdm_json_buf_raw(&h, buf, (size_t)len);
        for (int d = 0; d < e->ndim; d++) {
            len = snprintf(buf, sizeof buf, "%s%lld", d ? "," : "", (long long)e->dims[d]);
            tdm_json_buf_raw(&h, buf, (size_t)len);
        }
        len = snprintf(buf, sizeof buf, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
                       (unsigned long long)(off + 2 * n));
        tdm_json_buf_raw(&h, buf, (size_t)len);
        off += 2 * n;
    }
    tdm_json_buf_raw(&h, "}", 1);
    while (h.len % 8 != 0)
        tdm_json_buf_raw(&h, " ", 1);
    assert_false(h.failed);
    snprintf(b, sizeof b, "%s/model.safetensors", dir);
    FILE *f = fopen(b, "wb");
    assert_non_null(f);
    uint8_t hl[8];
    for (int k = 0; k < 8; k++)
        hl[k] = (uint8_t)((uint64_t)h.len >> (8 * k));
    fwrite(hl, 1, 8, f);
    fwrite(h.data, 1, h.len, f);
    for (int i = 0; i < tdm_safetensors_count(st); i++) {
        tdm_tensor t;
        assert_int_equal(tdm_safetensors_get(st, tdm_safetensors_info(st, i)->name, &t, &err),
                         TDM_OK);
        const float *v = t.data;
        for (int64_t k = 0; k < tdm_tensor_numel(&t); k++) {
            uint16_t x = tdm_fp32_to_fp16(v[k]);
            uint8_t le[2] = {(uint8_t)x, (uint8_t)(x >> 8)};
            fwrite(le, 1, 2, f);
        }
        tdm_tensor_free(&t);
    }
    assert_int_equal(fclose(f), 0);
    tdm_json_buf_free(&h);
    tdm_safetensors_free(st);

    tdm_embedder *e = NULL;
    tdm_embedder_options o = {.batch = 32};
    if (tdm_embedder_load(dir, &o, &e, &err) != TDM_OK)
        fail_msg("%s", err.msg);
    float *out = malloc(sizeof *out * (size_t)g_n * (size_t)g_dim);
    assert_int_equal(tdm_embedder_embed(e, (const char *const *)g_texts, g_n, out, &err), TDM_OK);
    double mn = 2.0;
    for (int i = 0; i < g_n; i++) {
        double c =
            cosine(out + (size_t)i * (size_t)g_dim, g_ref + (size_t)i * (size_t)g_dim, g_dim);
        mn = c < mn ? c : mn;
    }
    printf("float16 weights, batch 32: %d texts, min cosine %.9f\n", g_n, mn);
    assert_true(mn >= 0.99999);
    tdm_embedder_free(e);
    free(out);
    unlink(b);
    for (size_t i = 0; i < sizeof links / sizeof links[0]; i++) {
        snprintf(b, sizeof b, "%s/%s", dir, links[i]);
        unlink(b);
    }
    rmdir(dir);
}

/* The loader's errors name what is wrong. */
static void test_load_errors(void **state)
{
    (void)state;
    tdm_embedder *e = (tdm_embedder *)1;
    tdm_err err = {{0}};
    assert_int_equal(tdm_embedder_load("/nonexistent/model", NULL, &e, &err), TDM_ERR_NOT_FOUND);
    assert_null(e);
    assert_non_null(strstr(err.msg, "/nonexistent/model"));
    /* a directory without a model */
    assert_int_not_equal(
        tdm_embedder_load(TDM_SHARED_DIR "/tokenizers/all-MiniLM-L6-v2", NULL, &e, &err), TDM_OK);
    assert_null(e);
    assert_true(err.msg[0] != '\0');
}

int main(void)
{
    TDM_REQUIRE_PATH(REF);
    TDM_REQUIRE_PATH(MODEL "/onnx/model.onnx");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_safetensors_b1), cmocka_unit_test(test_safetensors_b32),
        cmocka_unit_test(test_onnx_b1),        cmocka_unit_test(test_onnx_b32),
        cmocka_unit_test(test_embed_ids),      cmocka_unit_test(test_split_at_layer),
        cmocka_unit_test(test_f16_weights),    cmocka_unit_test(test_load_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

/*
 * The gateway end to end, in-process: a registry built in a temp dir from ../shared models
 * (a CNN with a cut and the BERT-shaped encoder), served on a free loopback port, driven
 * with libcurl.
 *
 * /v1/features gets real cut activations: the head is run here with the engine from the
 * same model file and encoded with the feature codec, and the answer must equal the
 * unsplit model's output. Idempotent replays must return the stored body and must not run
 * the model (the batch-size histogram count stays put). Concurrent requests must be
 * batched (a batch of more than one shows up in the answer's timings).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <pthread.h>

#include "base/json.h"
#include "skip.h"
#include "tandem/codec.h"
#include "tandem/gateway.h"
#include "tandem/graph.h"
#include "tandem/npy.h"

#define VNN TDM_SHARED_DIR "/models/vnncomp"
#define BERT TDM_SHARED_DIR "/models/bert-tiny"

static char g_repo[256];
static tdm_gateway_options *g_opt;
static tdm_gateway *g_gw;
static char g_base[64];

typedef struct reply {
    long status;
    char *body;
    size_t len;
    char replayed[16];
} reply;

static size_t on_body(char *p, size_t sz, size_t n, void *arg)
{
    reply *r = arg;
    char *nb = realloc(r->body, r->len + sz * n + 1);
    assert_non_null(nb);
    memcpy(nb + r->len, p, sz * n);
    r->len += sz * n;
    nb[r->len] = '\0';
    r->body = nb;
    return sz * n;
}

static size_t on_header(char *p, size_t sz, size_t n, void *arg)
{
    reply *r = arg;
    if (n * sz > 21 && strncasecmp(p, "Idempotent-Replayed: ", 21) == 0)
        snprintf(r->replayed, sizeof r->replayed, "%.4s", p + 21);
    return sz * n;
}

static reply http(const char *method, const char *path, const char *ctype, const void *body,
                  size_t len, const char *extra_header)
{
    reply r = {0};
    CURL *c = curl_easy_init();
    assert_non_null(c);
    char url[512];
    snprintf(url, sizeof url, "%s%s", g_base, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    struct curl_slist *h = NULL;
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)len);
        char ct[128];
        snprintf(ct, sizeof ct, "Content-Type: %s", ctype);
        h = curl_slist_append(h, ct);
    }
    if (extra_header)
        h = curl_slist_append(h, extra_header);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    if (!r.body)
        r.body = calloc(1, 1);
    return r;
}

static const char *error_code(const reply *r, char *buf, size_t n)
{
    tdm_json_doc *d = NULL;
    buf[0] = '\0';
    if (tdm_json_parse(r->body, r->len, 0, &d, NULL) != TDM_OK)
        return buf;
    const char *c =
        tdm_json_string(tdm_json_get(tdm_json_get(tdm_json_root(d), "error"), "code"), NULL);
    snprintf(buf, n, "%s", c ? c : "");
    tdm_json_free(d);
    return buf;
}

static void b64(const unsigned char *p, size_t n, char *out)
{
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
                     (i + 2 < n ? p[i + 2] : 0);
        out[o++] = t[v >> 18 & 63];
        out[o++] = t[v >> 12 & 63];
        out[o++] = i + 1 < n ? t[v >> 6 & 63] : '=';
        out[o++] = i + 2 < n ? t[v & 63] : '=';
    }
    out[o] = '\0';
}

static int sh(const char *fmt, ...)
{
    char cmd[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    return system(cmd);
}

static int setup(void **state)
{
    (void)state;
    snprintf(g_repo, sizeof g_repo, "/tmp/tdm_gw_test_XXXXXX");
    assert_non_null(mkdtemp(g_repo));
    assert_int_equal(sh("mkdir -p %s/resnet/1 %s/bert/1 && ln -s %s/resnet_2b.onnx "
                        "%s/resnet/1/model.onnx && ln -s %s/onnx/model.onnx %s/bert/1/model.onnx "
                        "&& ln -s %s/vocab.txt %s/bert/1/vocab.txt && ln -s %s/tokenizer.json "
                        "%s/bert/1/tokenizer.json",
                        g_repo, g_repo, VNN, g_repo, BERT, g_repo, BERT, g_repo, BERT, g_repo),
                     0);
    FILE *f = fopen(strcat(strcpy((char[300]){0}, g_repo), "/resnet/1/model.yaml"), "w");
    assert_non_null(f);
    fprintf(f, "task: classify\ncuts:\n  - name: c1\n    tensors:\n      - {name: '18', shape: "
               "[1, 8, 16, 16]}\n      - {name: '20', shape: [1, 16, 8, 8]}\n");
    fclose(f);
    f = fopen(strcat(strcpy((char[300]){0}, g_repo), "/bert/1/model.yaml"), "w");
    assert_non_null(f);
    fprintf(f, "task: embed\ninput: text\nmax_seq_len: 64\n");
    fclose(f);
    /* the response cache (on by default) would answer repeats without running the model:
     * these tests count model runs and batch sizes, so it is off (the integration test
     * checks it) */
    char cfg[300];
    snprintf(cfg, sizeof cfg, "%s/gw.yaml", g_repo);
    f = fopen(cfg, "w");
    assert_non_null(f);
    fprintf(f, "cache:\n  max_bytes: 0\n");
    fclose(f);
    tdm_err err = {{0}};
    assert_int_equal(tdm_gateway_options_create(&g_opt, &err), TDM_OK);
    assert_int_equal(tdm_gateway_options_load(g_opt, cfg, &err), TDM_OK);
    assert_int_equal(tdm_gateway_options_set(g_opt, "auth", "none", &err), TDM_OK);
    assert_int_equal(tdm_gateway_options_set(g_opt, "model-repo", g_repo, &err), TDM_OK);
    assert_int_equal(tdm_gateway_options_set(g_opt, "port", "0", &err), TDM_OK);
    assert_int_equal(tdm_gateway_options_set(g_opt, "log-requests", "false", &err), TDM_OK);
    assert_int_equal(tdm_gateway_options_set(g_opt, "max-queue-delay-ms", "20", &err), TDM_OK);
    assert_int_equal(tdm_gateway_options_set(g_opt, "max-body-bytes", "1000000", &err), TDM_OK);
    tdm_status st = tdm_gateway_start(g_opt, &g_gw, &err);
    if (st != TDM_OK)
        fprintf(stderr, "start: %s\n", err.msg);
    assert_int_equal(st, TDM_OK);
    snprintf(g_base, sizeof g_base, "http://127.0.0.1:%d", tdm_gateway_port(g_gw));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    assert_int_equal(tdm_gateway_drain(g_gw, 10), 0);
    tdm_gateway_free(g_gw);
    tdm_gateway_options_free(g_opt);
    sh("rm -rf %s", g_repo);
    return 0;
}

/* Head of resnet_2b on x: the two cut tensors, and the unsplit output. */
static void run_model(const tdm_tensor *x, tdm_tensor cut[2], tdm_tensor *full)
{
    tdm_graph *g = NULL;
    tdm_session *s = NULL;
    assert_int_equal(tdm_graph_load(VNN "/resnet_2b.onnx", NULL, &g, NULL), TDM_OK);
    assert_int_equal(tdm_session_create(g, NULL, &s, NULL), TDM_OK);
    const char *in[] = {"input.1"}, *cuts[] = {"18", "20"}, *out[] = {"33"};
    assert_int_equal(tdm_session_run_range(s, 1, in, x, 2, cuts, cut, NULL), TDM_OK);
    assert_int_equal(tdm_session_run_range(s, 1, in, x, 1, out, full, NULL), TDM_OK);
    tdm_session_free(s);
    tdm_graph_free(g);
}

static size_t encode_frames(const tdm_tensor cut[2], unsigned char *buf, size_t cap)
{
    tdm_codec_params p;
    tdm_codec_params_default(&p, TDM_CODEC_MODE_LOSSLESS);
    size_t off = 0;
    for (int i = 0; i < 2; i++) {
        size_t w = 0;
        assert_int_equal(tdm_codec_encode(&cut[i], &p, buf + off, cap - off, &w, NULL), TDM_OK);
        off += w;
    }
    return off;
}

static void random_input(tdm_tensor *x, unsigned seed)
{
    int64_t dims[4] = {1, 3, 32, 32};
    assert_int_equal(tdm_tensor_make(x, TDM_DTYPE_FLOAT32, 4, dims, NULL), TDM_OK);
    float *d = x->data;
    for (int i = 0; i < 3 * 32 * 32; i++) {
        seed = seed * 1103515245u + 12345u;
        d[i] = (float)((seed >> 8) & 0xffff) / 65536.0f - 0.5f;
    }
}

static void scores_equal(const reply *r, const tdm_tensor *full)
{
    tdm_json_doc *d = NULL;
    assert_int_equal(tdm_json_parse(r->body, r->len, 0, &d, NULL), TDM_OK);
    const tdm_json *sc = tdm_json_get(tdm_json_root(d), "scores");
    assert_non_null(sc);
    assert_int_equal(sc->len, 10);
    for (int i = 0; i < 10; i++)
        assert_float_equal(sc->items[i].number, ((float *)full->data)[i], 1e-4);
    tdm_json_free(d);
}

static double metric(const char *series)
{
    reply r = http("GET", "/metrics", NULL, NULL, 0, NULL);
    assert_int_equal(r.status, 200);
    const char *p = strstr(r.body, series);
    double v = p ? strtod(p + strlen(series), NULL) : 0;
    free(r.body);
    return v;
}

static void test_health_and_models(void **state)
{
    (void)state;
    reply r = http("GET", "/healthz", NULL, NULL, 0, NULL);
    assert_int_equal(r.status, 200);
    free(r.body);
    r = http("GET", "/readyz", NULL, NULL, 0, NULL);
    assert_int_equal(r.status, 200);
    free(r.body);
    r = http("GET", "/v1/models", NULL, NULL, 0, NULL);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"name\":\"resnet\""));
    assert_non_null(strstr(r.body, "\"name\":\"c1\""));
    assert_non_null(strstr(r.body, "\"name\":\"bert\""));
    free(r.body);
    r = http("GET", "/v1/nothing", NULL, NULL, 0, NULL);
    assert_int_equal(r.status, 404);
    free(r.body);
    r = http("GET", "/v1/infer", NULL, NULL, 0, NULL);
    assert_int_equal(r.status, 405);
    free(r.body);
}

static void test_features_binary_and_json(void **state)
{
    (void)state;
    tdm_tensor x = {0}, cut[2] = {{0}}, full = {0};
    random_input(&x, 7);
    run_model(&x, cut, &full);
    static unsigned char frames[200000];
    size_t n = encode_frames(cut, frames, sizeof frames);
    reply r = http("POST", "/v1/features?model=resnet&version=1&cut=c1", "application/octet-stream",
                   frames, n, NULL);
    assert_int_equal(r.status, 200);
    scores_equal(&r, &full);
    free(r.body);
    /* the same frames as JSON with base64, one frame per list item */
    size_t n0 = 0;
    {
        tdm_codec_header h;
        assert_int_equal(tdm_codec_frame_info(frames, n, &h, NULL), TDM_OK);
        n0 = h.frame_len;
    }
    char *a = malloc(n * 2 + 16), *b = malloc(n * 2 + 16), *body = malloc(n * 3 + 256);
    b64(frames, n0, a);
    b64(frames + n0, n - n0, b);
    int len =
        sprintf(body, "{\"model\":\"resnet\",\"cut\":\"c1\",\"features\":[\"%s\",\"%s\"]}", a, b);
    r = http("POST", "/v1/features", "application/json", body, (size_t)len, NULL);
    assert_int_equal(r.status, 200);
    scores_equal(&r, &full);
    free(r.body);
    /* cut=input: a frame of the model's own input, the cloud runs all of it */
    {
        tdm_codec_params p;
        tdm_codec_params_default(&p, TDM_CODEC_MODE_LOSSLESS);
        size_t w = 0;
        assert_int_equal(tdm_codec_encode(&x, &p, frames, sizeof frames, &w, NULL), TDM_OK);
        reply ri = http("POST", "/v1/features?model=resnet&cut=input",
                        "application/x-tandem-frames", frames, w, NULL);
        assert_int_equal(ri.status, 200);
        assert_non_null(strstr(ri.body, "\"entry\":\"full\""));
        scores_equal(&ri, &full);
        free(ri.body);
        n = encode_frames(cut, frames, sizeof frames);
    }
    /* truncated frame, wrong cut, unknown model, bad json: documented 4xx */
    char code[64];
    r = http("POST", "/v1/features?model=resnet&cut=c1", "application/octet-stream", frames, n - 10,
             NULL);
    assert_int_equal(r.status, 400);
    assert_string_equal(error_code(&r, code, sizeof code), "bad_frame");
    free(r.body);
    r = http("POST", "/v1/features?model=resnet&cut=c1", "application/octet-stream", frames, n0,
             NULL);
    assert_int_equal(r.status, 400);
    assert_string_equal(error_code(&r, code, sizeof code), "bad_frame");
    free(r.body);
    r = http("POST", "/v1/features?model=resnet&cut=nope", "application/octet-stream", frames, n,
             NULL);
    assert_int_equal(r.status, 404);
    assert_string_equal(error_code(&r, code, sizeof code), "unknown_cut");
    free(r.body);
    r = http("POST", "/v1/features?model=nope&cut=c1", "application/octet-stream", frames, n, NULL);
    assert_int_equal(r.status, 404);
    assert_string_equal(error_code(&r, code, sizeof code), "unknown_model");
    free(r.body);
    r = http("POST", "/v1/features", "application/json", "{\"model\":", 9, NULL);
    assert_int_equal(r.status, 400);
    assert_string_equal(error_code(&r, code, sizeof code), "bad_json");
    free(r.body);
    /* frames swapped: shapes do not match the cut */
    unsigned char *swapped = malloc(n);
    memcpy(swapped, frames + n0, n - n0);
    memcpy(swapped + (n - n0), frames, n0);
    r = http("POST", "/v1/features?model=resnet&cut=c1", "application/octet-stream", swapped, n,
             NULL);
    assert_int_equal(r.status, 400);
    assert_string_equal(error_code(&r, code, sizeof code), "bad_shape");
    free(r.body);
    free(swapped);
    free(a);
    free(b);
    free(body);
    tdm_tensor_free(&x);
    tdm_tensor_free(&cut[0]);
    tdm_tensor_free(&cut[1]);
    tdm_tensor_free(&full);
}

static void test_idempotent_replay(void **state)
{
    (void)state;
    tdm_tensor x = {0}, cut[2] = {{0}}, full = {0};
    random_input(&x, 99);
    run_model(&x, cut, &full);
    static unsigned char frames[200000];
    size_t n = encode_frames(cut, frames, sizeof frames);
    const char *series = "tandem_batch_size_count{model=\"resnet/1/c1\"} ";
    reply r1 = http("POST", "/v1/features?model=resnet&cut=c1", "application/octet-stream", frames,
                    n, "Idempotency-Key: key-123");
    assert_int_equal(r1.status, 200);
    assert_string_equal(r1.replayed, "");
    double runs = metric(series);
    assert_true(runs >= 1);
    /* the same key with different frames: the stored first answer, no model run */
    tdm_tensor x2 = {0}, cut2[2] = {{0}}, full2 = {0};
    random_input(&x2, 5);
    run_model(&x2, cut2, &full2);
    static unsigned char frames2[200000];
    size_t n2 = encode_frames(cut2, frames2, sizeof frames2);
    reply r2 = http("POST", "/v1/features?model=resnet&cut=c1", "application/octet-stream", frames2,
                    n2, "Idempotency-Key: key-123");
    assert_int_equal(r2.status, 200);
    assert_string_equal(r2.replayed, "true");
    assert_int_equal(r1.len, r2.len);
    assert_memory_equal(r1.body, r2.body, r1.len);
    assert_true(metric(series) == runs);
    scores_equal(&r2, &full);
    free(r1.body);
    free(r2.body);
    tdm_tensor_free(&x);
    tdm_tensor_free(&x2);
    for (int i = 0; i < 2; i++) {
        tdm_tensor_free(&cut[i]);
        tdm_tensor_free(&cut2[i]);
    }
    tdm_tensor_free(&full);
    tdm_tensor_free(&full2);
}

typedef struct par_arg {
    const unsigned char *frames;
    size_t n;
    long status;
    int batch;
} par_arg;

static void *par_main(void *p)
{
    par_arg *a = p;
    reply r = http("POST", "/v1/features?model=resnet&cut=c1", "application/octet-stream",
                   a->frames, a->n, NULL);
    a->status = r.status;
    const char *bs = strstr(r.body, "\"batch_size\":");
    a->batch = bs ? atoi(bs + 13) : 0;
    free(r.body);
    return NULL;
}

static void test_concurrent_requests_batch(void **state)
{
    (void)state;
    tdm_tensor x = {0}, cut[2] = {{0}}, full = {0};
    random_input(&x, 3);
    run_model(&x, cut, &full);
    static unsigned char frames[200000];
    size_t n = encode_frames(cut, frames, sizeof frames);
    enum { N = 12 };
    pthread_t t[N];
    par_arg a[N];
    for (int i = 0; i < N; i++) {
        a[i] = (par_arg){frames, n, 0, 0};
        assert_int_equal(pthread_create(&t[i], NULL, par_main, &a[i]), 0);
    }
    int max_batch = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(a[i].status, 200);
        if (a[i].batch > max_batch)
            max_batch = a[i].batch;
    }
    assert_true(max_batch > 1);
    tdm_tensor_free(&x);
    tdm_tensor_free(&cut[0]);
    tdm_tensor_free(&cut[1]);
    tdm_tensor_free(&full);
}

static void test_infer_tensor_and_text(void **state)
{
    (void)state;
    tdm_tensor x = {0}, cut[2] = {{0}}, full = {0};
    random_input(&x, 11);
    run_model(&x, cut, &full);
    void *npy = NULL;
    size_t nl = 0;
    assert_int_equal(tdm_npy_serialize(&x, &npy, &nl, NULL), TDM_OK);
    char *enc = malloc(nl * 2 + 16), *body = malloc(nl * 2 + 256);
    b64(npy, nl, enc);
    int len = sprintf(body, "{\"model\":\"resnet\",\"input\":\"%s\"}", enc);
    reply r = http("POST", "/v1/infer", "application/json", body, (size_t)len, NULL);
    assert_int_equal(r.status, 200);
    scores_equal(&r, &full);
    assert_non_null(strstr(r.body, "\"confidence\":"));
    free(r.body);
    /* wrong shape: a [1,3,32,31] tensor */
    x.dims[3] = 31;
    free(npy);
    assert_int_equal(tdm_npy_serialize(&x, &npy, &nl, NULL), TDM_OK);
    b64(npy, nl, enc);
    len = sprintf(body, "{\"model\":\"resnet\",\"input\":\"%s\"}", enc);
    r = http("POST", "/v1/infer", "application/json", body, (size_t)len, NULL);
    char code[64];
    assert_int_equal(r.status, 400);
    assert_string_equal(error_code(&r, code, sizeof code), "bad_shape");
    free(r.body);
    /* text */
    const char *tb = "{\"model\":\"bert\",\"text\":\"the gateway batches requests\"}";
    r = http("POST", "/v1/infer", "application/json", tb, strlen(tb), NULL);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"dim\":96"));
    free(r.body);
    /* oversized body */
    char *big = calloc(1, 1100000);
    memset(big, ' ', 1099999);
    r = http("POST", "/v1/infer", "application/json", big, 1099999, NULL);
    assert_int_equal(r.status, 413);
    assert_string_equal(error_code(&r, code, sizeof code), "payload_too_large");
    free(r.body);
    free(big);
    /* still serving */
    r = http("GET", "/healthz", NULL, NULL, 0, NULL);
    assert_int_equal(r.status, 200);
    free(r.body);
    free(npy);
    free(enc);
    free(body);
    tdm_tensor_free(&x);
    tdm_tensor_free(&cut[0]);
    tdm_tensor_free(&cut[1]);
    tdm_tensor_free(&full);
}

int main(void)
{
    TDM_REQUIRE_PATH(VNN "/resnet_2b.onnx");
    TDM_REQUIRE_PATH(BERT "/onnx/model.onnx");
    curl_global_init(CURL_GLOBAL_ALL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_health_and_models),
        cmocka_unit_test(test_features_binary_and_json),
        cmocka_unit_test(test_idempotent_replay),
        cmocka_unit_test(test_concurrent_requests_batch),
        cmocka_unit_test(test_infer_tensor_and_text),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    curl_global_cleanup();
    return rc;
}

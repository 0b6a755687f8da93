/*
 * Feature codec benchmark: size and speed on activation-like data, and the
 * entropy coder against zstd on the very same int8 symbols.
 *
 * usage: bench_codec [--quick] [FILE.npy ...]
 *
 * Data: three synthetic tensors that look like what crosses a cut (i.i.d.
 * ReLU outputs; conv-like ReLU maps with smooth spatial structure, per
 * channel scales and dead channels; transformer hidden states with a few
 * outlier dimensions), plus any float32 .npy files given, e.g. activations
 * dumped from a real model. For each: the int8 symbols the codec would code
 * (per-tensor min/max, offsets from the zero point) are compressed by
 * tandem's rANS coder and by zstd at levels 1, 3 and 19 (when built with
 * libzstd), with decode throughput in MB of symbols per second; then the
 * whole codec in each mode: frame bytes, encode and decode time, error.
 * Timings are the best of several batches of repeated calls, one thread.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "codec/bytes.h"
#include "codec/entropy.h"
#include "codec/quant.h"
#include "tandem/codec.h"
#include "tandem/npy.h"

#ifdef TDM_HAVE_ZSTD
#include <zstd.h>
#endif

typedef struct prng {
    uint64_t s;
} prng;

static uint64_t prng_next(prng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double prng_unit(prng *r)
{
    return (double)(prng_next(r) >> 11) * 0x1p-53;
}

static float prng_normal(prng *r)
{
    double u = prng_unit(r), v = prng_unit(r);
    return (float)(sqrt(-2.0 * log(u + 1e-300)) * cos(6.283185307179586 * v));
}

/* Best seconds per call of fn over five batches that together last about `secs`. */
typedef void (*bench_fn)(void *arg);

static double time_best(bench_fn fn, void *arg, double secs)
{
    uint64_t t0 = tdm_now_ns();
    fn(arg);
    double once = (double)(tdm_now_ns() - t0) * 1e-9;
    long reps = once > 0 ? (long)(secs / 5 / once) : 1000;
    reps = reps < 1 ? 1 : reps;
    double best = once;
    for (int b = 0; b < 5; b++) {
        t0 = tdm_now_ns();
        for (long i = 0; i < reps; i++)
            fn(arg);
        double per = (double)(tdm_now_ns() - t0) * 1e-9 / (double)reps;
        best = per < best ? per : best;
    }
    return best;
}

/* ---- data ----------------------------------------------------------------------- */

static tdm_tensor make(int ndim, const int64_t *dims)
{
    tdm_tensor t;
    memset(&t, 0, sizeof t);
    if (tdm_tensor_make(&t, TDM_DTYPE_FLOAT32, ndim, dims, NULL) != TDM_OK) {
        fprintf(stderr, "bench_codec: out of memory\n");
        exit(1);
    }
    return t;
}

static tdm_tensor data_relu_iid(void)
{
    int64_t dims[4] = {1, 64, 32, 32};
    tdm_tensor t = make(4, dims);
    prng r = {1};
    float *x = t.data;
    for (int64_t i = 0; i < 65536; i++) {
        float v = prng_normal(&r);
        x[i] = v > 0 ? v : 0;
    }
    return t;
}

/* Smooth maps: a random 8x8 grid per channel, bilinearly upsampled, plus noise, then ReLU. */
static tdm_tensor data_relu_conv(void)
{
    int64_t dims[4] = {1, 64, 32, 32};
    tdm_tensor t = make(4, dims);
    prng r = {2};
    float *x = t.data;
    for (int c = 0; c < 64; c++) {
        float grid[9][9];
        for (int i = 0; i < 9; i++)
            for (int j = 0; j < 9; j++)
                grid[i][j] = prng_normal(&r);
        float scale = expf(prng_normal(&r) * 0.7f), bias = prng_normal(&r) * 0.5f - 0.3f;
        bool dead = prng_unit(&r) < 0.1;
        for (int y = 0; y < 32; y++)
            for (int xx = 0; xx < 32; xx++) {
                float gy = (float)y / 4.0f, gx = (float)xx / 4.0f;
                int iy = (int)gy, ix = (int)gx;
                float fy = gy - (float)iy, fx = gx - (float)ix;
                float v = (1 - fy) * ((1 - fx) * grid[iy][ix] + fx * grid[iy][ix + 1]) +
                          fy * ((1 - fx) * grid[iy + 1][ix] + fx * grid[iy + 1][ix + 1]);
                v = (v + 0.3f * prng_normal(&r) + bias) * scale;
                x[(c * 32 + y) * 32 + xx] = dead || v < 0 ? 0.0f : v;
            }
    }
    return t;
}

/* Hidden states: N(0, 1) with a few dimensions 20x larger (the outlier features of transformers).
 */
static tdm_tensor data_hidden(void)
{
    int64_t dims[3] = {1, 128, 128};
    tdm_tensor t = make(3, dims);
    prng r = {3};
    float *x = t.data;
    for (int s = 0; s < 128; s++)
        for (int d = 0; d < 128; d++)
            x[s * 128 + d] = prng_normal(&r) * ((d % 41 == 7) ? 20.0f : 1.0f);
    return t;
}

/* ---- entropy coders on the same symbols ------------------------------------------ */

/* The int8 symbols the codec codes for t (per tensor, min/max): offsets from the zero point. */
static uint8_t *int8_symbols(const tdm_tensor *t, size_t n)
{
    const float *x = t->data;
    double lo = 0, hi = 0;
    for (size_t i = 0; i < n; i++) {
        lo = x[i] < lo ? x[i] : lo;
        hi = x[i] > hi ? x[i] : hi;
    }
    float s = hi > lo ? (float)((hi - lo) / 255) : 0.0f;
    unsigned zp = s > 0 ? (unsigned)nearbyint(-lo / s) : 0;
    uint8_t *sym = malloc(n);
    tdm_codec_kernels k;
    tdm_codec_kernels_select(&k);
    k.quantize(x, n, s > 0 ? 1.0f / s : 0.0f, (float)zp, 255, sym);
    return sym;
}

typedef struct sym_job {
    const uint8_t *sym;
    size_t n;
    uint8_t *stream;
    size_t cap, len;
    uint8_t *back;
    size_t row; /* the tensor's last dimension: rows for the context-modelled stream */
} sym_job;

static void job_sym_encode(void *arg)
{
    sym_job *j = arg;
    tdm_wbuf w;
    tdm_wbuf_init(&w, j->stream, j->cap);
    tdm_sym_encode_row(j->sym, j->n, 8, true, TDM_SYM_VERSION, j->row, &w, NULL, NULL);
    j->len = w.len;
}

static void job_sym_decode(void *arg)
{
    sym_job *j = arg;
    tdm_rbuf r;
    tdm_rbuf_init(&r, j->stream, j->len);
    if (tdm_sym_decode(&r, j->back, j->n, 8, "bench", NULL) != TDM_OK)
        abort();
}

#ifdef TDM_HAVE_ZSTD
typedef struct zstd_job {
    const uint8_t *sym;
    size_t n;
    int level;
    uint8_t *comp;
    size_t cap, len;
    uint8_t *back;
} zstd_job;

static void job_zstd_encode(void *arg)
{
    zstd_job *j = arg;
    j->len = ZSTD_compress(j->comp, j->cap, j->sym, j->n, j->level);
}

static void job_zstd_decode(void *arg)
{
    zstd_job *j = arg;
    size_t r = ZSTD_decompress(j->back, j->n, j->comp, j->len);
    if (ZSTD_isError(r) || r != j->n)
        abort();
}
#endif

static void compare_entropy(const char *name, const tdm_tensor *t, double secs)
{
    size_t n = (size_t)tdm_tensor_numel(t);
    uint8_t *sym = int8_symbols(t, n);
    size_t zeros = 0;
    for (size_t i = 0; i < n; i++)
        zeros += sym[i] == 0;
    size_t row = t->ndim >= 2 ? (size_t)t->dims[t->ndim - 1] : 0;
    sym_job sj = {sym, n, malloc(tdm_sym_bound(n, 8)), tdm_sym_bound(n, 8), 0, malloc(n), row};
    double te = time_best(job_sym_encode, &sj, secs);
    double td = time_best(job_sym_decode, &sj, secs);
    if (memcmp(sj.back, sym, n) != 0)
        abort();
    tdm_sym_stats st;
    tdm_wbuf w;
    tdm_wbuf_init(&w, sj.stream, sj.cap);
    tdm_sym_encode_row(sym, n, 8, true, TDM_SYM_VERSION, row, &w, &st, NULL);
    printf("\n[%s] %zu int8 symbols, %.1f%% zero\n", name, n, 100.0 * (double)zeros / (double)n);
    printf("  %-16s %10s %8s %12s %12s\n", "coder", "bytes", "bits/sym", "enc MB/s", "dec MB/s");
    static const char *const methods[] = {"raw", "constant", "rANS", "runs", "context"};
    printf("  %-16s %10zu %8.3f %12.0f %12.0f   (%s, model %u, %u tables, %zu table bytes, "
           "%zu runs)\n",
           "tandem", sj.len, 8.0 * (double)sj.len / (double)n, (double)n / te / 1e6,
           (double)n / td / 1e6, methods[st.method < 5 ? st.method : 0], st.model, st.nctx,
           st.table_bytes, st.runs);
    /* without the context-modelled stream (version 2 before it), and as a version-1 frame */
    tdm_wbuf_init(&w, sj.stream, sj.cap);
    tdm_sym_encode_v(sym, n, 8, true, 2, &w, &st, NULL);
    printf("  %-16s %10zu %8.3f\n", "tandem no-ctx", w.len, 8.0 * (double)w.len / (double)n);
    tdm_wbuf_init(&w, sj.stream, sj.cap);
    tdm_sym_encode_v(sym, n, 8, true, 1, &w, &st, NULL);
    printf("  %-16s %10zu %8.3f\n", "tandem v1", w.len, 8.0 * (double)w.len / (double)n);
#ifdef TDM_HAVE_ZSTD
    static const int levels[3] = {1, 3, 19};
    for (int li = 0; li < 3; li++) {
        size_t cap = ZSTD_compressBound(n);
        zstd_job zj = {sym, n, levels[li], malloc(cap), cap, 0, malloc(n)};
        double ze = levels[li] >= 19 ? 0 : time_best(job_zstd_encode, &zj, secs);
        if (levels[li] >= 19) {
            uint64_t t0 = tdm_now_ns();
            job_zstd_encode(&zj);
            ze = (double)(tdm_now_ns() - t0) * 1e-9;
        }
        double zd = time_best(job_zstd_decode, &zj, secs);
        char label[32];
        snprintf(label, sizeof label, "zstd -%d", levels[li]);
        printf("  %-16s %10zu %8.3f %12.0f %12.0f\n", label, zj.len,
               8.0 * (double)zj.len / (double)n, (double)n / ze / 1e6, (double)n / zd / 1e6);
        free(zj.comp);
        free(zj.back);
    }
#else
    printf("  (built without libzstd: no zstd comparison)\n");
#endif
    free(sj.stream);
    free(sj.back);
    free(sym);
}

/* ---- the whole codec --------------------------------------------------------------- */

typedef struct codec_job {
    const tdm_tensor *t;
    tdm_codec_params p;
    uint8_t *frame;
    size_t cap, len;
} codec_job;

static void job_encode(void *arg)
{
    codec_job *j = arg;
    if (tdm_codec_encode(j->t, &j->p, j->frame, j->cap, &j->len, NULL) != TDM_OK)
        abort();
}

static void job_decode(void *arg)
{
    codec_job *j = arg;
    tdm_tensor out;
    if (tdm_codec_decode(j->frame, j->len, &out, (size_t)1 << 32, NULL) != TDM_OK)
        abort();
    tdm_tensor_free(&out);
}

static void run_codec(const tdm_tensor *t, const char *label, const tdm_codec_params *p,
                      double secs)
{
    size_t n = (size_t)tdm_tensor_numel(t);
    codec_job j = {t, *p, NULL, tdm_codec_bound(t, p), 0};
    j.frame = malloc(j.cap);
    double te = time_best(job_encode, &j, secs);
    double td = time_best(job_decode, &j, secs);
    tdm_tensor out;
    tdm_err err;
    if (tdm_codec_decode(j.frame, j.len, &out, (size_t)1 << 32, &err) != TDM_OK) {
        fprintf(stderr, "bench_codec: %s\n", err.msg);
        exit(1);
    }
    const float *x = t->data, *y = out.data;
    double maxe = 0, se = 0, sx = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)x[i] - (double)y[i];
        maxe = fabs(d) > maxe ? fabs(d) : maxe;
        se += d * d;
        sx += (double)x[i] * x[i];
    }
    double snr = se > 0 ? 10 * log10(sx / se) : INFINITY;
    printf("  %-26s %9zu %7.2fx %9.1f %9.1f %9.1f %10.4g %8.1f\n", label, j.len,
           (double)(n * 4) / (double)j.len, te * 1e6, td * 1e6, (te + td) * 1e6, maxe, snr);
    tdm_tensor_free(&out);
    free(j.frame);
}

static void bench_modes(const tdm_tensor *t, double secs)
{
    printf("  %-26s %9s %8s %9s %9s %9s %10s %8s\n", "mode", "bytes", "ratio", "enc us", "dec us",
           "total us", "max err", "SNR dB");
    tdm_codec_params p;
    tdm_codec_params_default(&p, TDM_CODEC_MODE_LOSSLESS);
    run_codec(t, "lossless", &p, secs);
    tdm_codec_params_default(&p, TDM_CODEC_MODE_F16);
    run_codec(t, "f16", &p, secs);
    tdm_codec_params_default(&p, TDM_CODEC_MODE_INT8);
    p.entropy = false;
    run_codec(t, "int8 raw", &p, secs);
    p.entropy = true;
    run_codec(t, "int8", &p, secs);
    p.granularity = TDM_CODEC_GRANULARITY_CHANNEL;
    p.channel_axis = t->ndim == 3 ? -1 : 1;
    run_codec(t, "int8 per-channel", &p, secs);
    tdm_codec_params_default(&p, TDM_CODEC_MODE_INT8);
    p.clip = TDM_CODEC_CLIP_PERCENTILE;
    p.percentile = 99.9f;
    run_codec(t, "int8 p99.9", &p, secs);
    tdm_codec_params_default(&p, TDM_CODEC_MODE_INT4);
    run_codec(t, "int4", &p, secs);
    p.granularity = TDM_CODEC_GRANULARITY_CHANNEL;
    p.channel_axis = t->ndim == 3 ? -1 : 1;
    run_codec(t, "int4 per-channel", &p, secs);
    tdm_codec_params_default(&p, TDM_CODEC_MODE_INT8);
    p.topk_fraction = 0.1f;
    run_codec(t, "int8 top-10%", &p, secs);
}

static void bench_tensor(const char *name, const tdm_tensor *t, double secs)
{
    char shape[128];
    compare_entropy(name, t, secs);
    printf("  whole codec on %s:\n", tdm_tensor_shape_str(t, shape, sizeof shape));
    bench_modes(t, secs);
}

int main(int argc, char **argv)
{
    int first = 1;
    double secs = 0.25;
    if (argc > 1 && strcmp(argv[1], "--quick") == 0) {
        secs = 0.02;
        first = 2;
    }
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("usage: bench_codec [--quick] [FILE.npy ...]\n");
        return 0;
    }
    tdm_tensor a = data_relu_iid(), b = data_relu_conv(), c = data_hidden();
    bench_tensor("synthetic ReLU i.i.d.", &a, secs);
    bench_tensor("synthetic conv-like ReLU maps", &b, secs);
    bench_tensor("synthetic hidden states with outliers", &c, secs);
    tdm_tensor_free(&a);
    tdm_tensor_free(&b);
    tdm_tensor_free(&c);
    for (int i = first; i < argc; i++) {
        tdm_tensor t;
        tdm_err err;
        if (tdm_npy_read(argv[i], &t, &err) != TDM_OK) {
            fprintf(stderr, "bench_codec: %s: %s\n", argv[i], err.msg);
            return 1;
        }
        if (t.dtype != TDM_DTYPE_FLOAT32 || tdm_tensor_numel(&t) == 0) {
            fprintf(stderr, "bench_codec: %s: need a non-empty float32 tensor\n", argv[i]);
            tdm_tensor_free(&t);
            return 1;
        }
        bench_tensor(argv[i], &t, secs);
        tdm_tensor_free(&t);
    }
    return 0;
}

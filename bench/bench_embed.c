/*
 * Sentence-embedding throughput of tandem from token ids to normalised
 * embeddings: the tandem half of bench/embed_vs_ort.sh (its ORT half is
 * tools/peer/embed_ort.js, which follows the same procedure).
 *
 *   bench_embed --model DIR|FILE.onnx --ids FILE.jsonl [--batch B] [--threads T]
 *               [--passes P] [--limit N]
 *
 * FILE.jsonl is `tandem tokenize` output ({"ids": [...]} per line), so both
 * engines see identical token ids. The sequences are sorted by length and cut
 * into batches of B neighbours (what tdm_embedder_embed does with texts), each
 * batch is one timed tdm_embedder_embed_ids call. One warm-up pass, then P
 * timed passes; prints one JSON line:
 *   {"engine":"tandem","batch":B,"threads":T,"sentences":N,"sent_per_s":...,
 *    "sent_per_cpu_s":...,"p50_ms":...,"checksum":...}
 * sent_per_s is N / the median pass time (wall), sent_per_cpu_s N / the
 * median pass's process CPU time (all threads); p50_ms the median batch latency;
 * checksum the sum of the first embedding component of every sentence (so the
 * two engines' outputs can be compared at a glance).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "base/json.h"
#include "tandem/embed.h"

typedef struct seqs {
    int32_t **ids;
    int *len;
    int n;
} seqs;

static int cmp_len(const void *a, const void *b, void *arg);

static double now_s(void)
{
    return (double)tdm_now_ns() * 1e-9;
}

/* CPU seconds of the whole process (all threads): less sensitive to a loaded machine than wall
 * time, so the bench reports both. */
static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int read_ids(const char *path, int limit, seqs *s)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "bench_embed: cannot open %s\n", path);
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    int ncap = 1024;
    s->ids = malloc(sizeof *s->ids * (size_t)ncap);
    s->len = malloc(sizeof *s->len * (size_t)ncap);
    s->n = 0;
    while ((got = getline(&line, &cap, f)) > 0 && (limit <= 0 || s->n < limit)) {
        tdm_json_doc *doc = NULL;
        tdm_err err;
        if (tdm_json_parse(line, (size_t)got, 0, &doc, &err) != TDM_OK) {
            fprintf(stderr, "bench_embed: %s line %d: %s\n", path, s->n + 1, err.msg);
            return -1;
        }
        const tdm_json *a = tdm_json_get(tdm_json_root(doc), "ids");
        if (a == NULL || a->type != TDM_JSON_ARRAY || a->len == 0) {
            fprintf(stderr, "bench_embed: %s line %d: no \"ids\" array\n", path, s->n + 1);
            return -1;
        }
        if (s->n == ncap) {
            ncap *= 2;
            s->ids = realloc(s->ids, sizeof *s->ids * (size_t)ncap);
            s->len = realloc(s->len, sizeof *s->len * (size_t)ncap);
        }
        s->ids[s->n] = malloc(sizeof(int32_t) * a->len);
        for (size_t i = 0; i < a->len; i++) {
            int64_t v = 0;
            tdm_json_int(&a->items[i], &v);
            s->ids[s->n][i] = (int32_t)v;
        }
        s->len[s->n++] = (int)a->len;
        tdm_json_free(doc);
    }
    free(line);
    fclose(f);
    return s->n > 0 ? 0 : -1;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int cmp_len(const void *a, const void *b, void *arg)
{
    const int *len = arg;
    int x = *(const int *)a, y = *(const int *)b;
    if (len[x] != len[y])
        return len[x] < len[y] ? -1 : 1;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    const char *model = NULL, *ids_path = NULL;
    int batch = 32, threads = 1, passes = 3, limit = 0;
    bool int8 = false;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--model") == 0)
            model = argv[i + 1];
        else if (strcmp(argv[i], "--ids") == 0)
            ids_path = argv[i + 1];
        else if (strcmp(argv[i], "--batch") == 0)
            batch = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--threads") == 0)
            threads = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--passes") == 0)
            passes = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--limit") == 0)
            limit = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--int8") == 0) /* --int8 1: int8 linear layers */
            int8 = atoi(argv[i + 1]) != 0;
        else {
            fprintf(stderr, "bench_embed: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (model == NULL || ids_path == NULL || batch < 1 || threads < 1 || passes < 1) {
        fprintf(stderr, "usage: bench_embed --model DIR|FILE.onnx --ids FILE.jsonl [--batch B] "
                        "[--threads T] [--passes P] [--limit N]\n");
        return 2;
    }
    seqs s;
    if (read_ids(ids_path, limit, &s) != 0)
        return 1;
    tdm_embedder_options o = {.threads = threads, .batch = batch, .int8 = int8};
    tdm_embedder *e = NULL;
    tdm_err err = {{0}};
    if (tdm_embedder_load(model, &o, &e, &err) != TDM_OK) {
        fprintf(stderr, "bench_embed: %s\n", err.msg);
        return 1;
    }
    int dim = tdm_embedder_dim(e);
    /* sort by length, batch neighbours */
    int *order = malloc(sizeof *order * (size_t)s.n);
    for (int i = 0; i < s.n; i++)
        order[i] = i;
    qsort_r(order, (size_t)s.n, sizeof *order, cmp_len, s.len);
    const int32_t **bids = malloc(sizeof *bids * (size_t)batch);
    int *blen = malloc(sizeof *blen * (size_t)batch);
    float *out = malloc(sizeof *out * (size_t)s.n * (size_t)dim);
    int nb = (s.n + batch - 1) / batch;
    double *lat = malloc(sizeof *lat * (size_t)nb * (size_t)passes);
    double *pass_s = malloc(sizeof *pass_s * (size_t)passes);
    double *pass_cpu = malloc(sizeof *pass_cpu * (size_t)passes);
    int nl = 0;
    for (int p = -1; p < passes; p++) {
        double t0 = now_s(), c0 = cpu_s();
        for (int b0 = 0; b0 < s.n; b0 += batch) {
            int bn = s.n - b0 < batch ? s.n - b0 : batch;
            for (int r = 0; r < bn; r++) {
                bids[r] = s.ids[order[b0 + r]];
                blen[r] = s.len[order[b0 + r]];
            }
            double t1 = now_s();
            if (tdm_embedder_embed_ids(e, bids, blen, bn, out + (size_t)b0 * (size_t)dim, &err) !=
                TDM_OK) {
                fprintf(stderr, "bench_embed: %s\n", err.msg);
                return 1;
            }
            if (p >= 0)
                lat[nl++] = now_s() - t1;
        }
        if (p >= 0) {
            pass_s[p] = now_s() - t0;
            pass_cpu[p] = cpu_s() - c0;
        }
    }
    qsort(lat, (size_t)nl, sizeof *lat, cmp_double);
    qsort(pass_s, (size_t)passes, sizeof *pass_s, cmp_double);
    qsort(pass_cpu, (size_t)passes, sizeof *pass_cpu, cmp_double);
    double checksum = 0;
    for (int i = 0; i < s.n; i++)
        checksum += out[(size_t)i * (size_t)dim];
    printf("{\"engine\":\"tandem\",\"batch\":%d,\"threads\":%d,\"sentences\":%d,"
           "\"sent_per_s\":%.2f,\"sent_per_cpu_s\":%.2f,\"p50_ms\":%.4f,\"checksum\":%.6f}\n",
           batch, threads, s.n, s.n / pass_s[passes / 2], s.n / pass_cpu[passes / 2],
           lat[nl / 2] * 1e3, checksum);
    tdm_embedder_free(e);
    for (int i = 0; i < s.n; i++)
        free(s.ids[i]);
    free(s.ids);
    free(s.len);
    free(order);
    free(bids);
    free(blen);
    free(out);
    free(lat);
    free(pass_s);
    free(pass_cpu);
    return 0;
}

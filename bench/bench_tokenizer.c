/*
 * WordPiece tokenizer throughput, one thread: texts/s and MB/s of UTF-8 input
 * over the SST-2 training sentences (67,349 short movie-review phrases), the
 * way an edge agent tokenizes requests one at a time (tdm_tokenizer_encode
 * per text, no truncation). The best of --reps passes is reported, after one
 * warm-up pass, to keep page faults and frequency ramp-up out of the figure.
 *
 *   bench_tokenizer [--model DIR] [--data FILE.tsv] [--reps N] [--max-len N]
 *
 * Defaults: ../shared/tokenizers/all-MiniLM-L6-v2 and
 * ../shared/data/text/sst2/train.tsv relative to the working directory (run it
 * from the repository root). FILE.tsv has a header line and "text<TAB>label"
 * lines. The last line printed is JSON for scripts.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "tandem/text.h"

typedef struct corpus {
    char *data;
    const char **text;
    size_t *len;
    size_t n;
    size_t bytes;
} corpus;

static int load_tsv(const char *path, corpus *c)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "bench_tokenizer: %s: cannot open\n", path);
        return -1;
    }
    size_t cap = 1 << 20, n = 0;
    c->data = malloc(cap + 1);
    for (;;) {
        if (c->data == NULL) {
            fclose(f);
            return -1;
        }
        n += fread(c->data + n, 1, cap - n, f);
        if (n < cap)
            break;
        cap *= 2;
        c->data = realloc(c->data, cap + 1);
    }
    fclose(f);
    c->data[n] = '\0';
    size_t lines = 0;
    for (size_t i = 0; i < n; i++)
        lines += c->data[i] == '\n';
    c->text = malloc((lines + 1) * sizeof *c->text);
    c->len = malloc((lines + 1) * sizeof *c->len);
    if (c->text == NULL || c->len == NULL)
        return -1;
    char *p = c->data, *end = c->data + n;
    bool header = true;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *line_end = nl ? nl : end;
        char *tab = memchr(p, '\t', (size_t)(line_end - p));
        if (!header && line_end > p) {
            size_t len = (size_t)((tab ? tab : line_end) - p);
            c->text[c->n] = p;
            c->len[c->n] = len;
            c->bytes += len;
            c->n++;
        }
        header = false;
        p = line_end + 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *model = "../shared/tokenizers/all-MiniLM-L6-v2";
    const char *data = "../shared/data/text/sst2/train.tsv";
    int reps = 5;
    size_t max_len = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--model") == 0 && i + 1 < argc) {
            model = argv[++i];
        } else if (strcmp(argv[i], "--data") == 0 && i + 1 < argc) {
            data = argv[++i];
        } else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
            reps = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--max-len") == 0 && i + 1 < argc) {
            max_len = (size_t)atol(argv[++i]);
        } else {
            fprintf(stderr, "usage: bench_tokenizer [--model DIR] [--data FILE.tsv] [--reps N] "
                            "[--max-len N]\n");
            return 2;
        }
    }
    if (reps < 1)
        reps = 1;
    tdm_err err;
    tdm_tokenizer *tok = NULL;
    uint64_t t0 = tdm_now_ns();
    if (tdm_tokenizer_load(model, &tok, &err) != TDM_OK) {
        fprintf(stderr, "bench_tokenizer: %s\n", err.msg);
        return 1;
    }
    double load_ms = (double)(tdm_now_ns() - t0) / 1e6;
    corpus c = {0};
    if (load_tsv(data, &c) != 0 || c.n == 0) {
        fprintf(stderr, "bench_tokenizer: %s: no texts\n", data);
        return 1;
    }
    size_t cap = 0;
    for (size_t i = 0; i < c.n; i++) {
        size_t b = tdm_tokenizer_encode_bound(tok, c.len[i]);
        if (b > cap)
            cap = b;
    }
    int32_t *ids = malloc(cap * sizeof *ids);
    if (ids == NULL)
        return 1;
    double best = 1e30;
    size_t tokens = 0;
    for (int r = 0; r <= reps; r++) {
        tokens = 0;
        uint64_t s = tdm_now_ns();
        for (size_t i = 0; i < c.n; i++) {
            size_t n;
            if (tdm_tokenizer_encode(tok, c.text[i], c.len[i], max_len, ids, cap, &n, &err) !=
                TDM_OK) {
                fprintf(stderr, "bench_tokenizer: text %zu: %s\n", i, err.msg);
                return 1;
            }
            tokens += n;
        }
        double sec = (double)(tdm_now_ns() - s) / 1e9;
        if (r > 0 && sec < best)
            best = sec; /* pass 0 is the warm-up */
    }
    double texts_s = (double)c.n / best, mb_s = (double)c.bytes / 1e6 / best;
    printf("tokenizer load: %.1f ms (%s)\n", load_ms, model);
    printf("%zu texts, %.2f MB, %zu ids: %.3f s -> %.0f texts/s, %.1f MB/s, %.2f us/text "
           "(1 thread, best of %d)\n",
           c.n, (double)c.bytes / 1e6, tokens, best, texts_s, mb_s, best * 1e6 / (double)c.n, reps);
    printf("{\"texts\":%zu,\"bytes\":%zu,\"ids\":%zu,\"seconds\":%.4f,\"texts_per_s\":%.0f,"
           "\"mb_per_s\":%.2f,\"load_ms\":%.1f}\n",
           c.n, c.bytes, tokens, best, texts_s, mb_s, load_ms);
    free(ids);
    free(c.data);
    free(c.text);
    free(c.len);
    tdm_tokenizer_free(tok);
    return 0;
}

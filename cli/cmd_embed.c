/*
 * tandem embed --model DIR|FILE.onnx [--max-len N] [--batch B] [--threads T] [TEXT ...]
 *
 * Sentence embeddings of texts given as arguments, or of JSON lines
 * {"text": ...} on standard input, one {"embedding": [...]} line per text in
 * input order. Standard input is read in chunks of a few batches, so the
 * embedder can sort each chunk by length (less padding) while memory stays
 * bounded for any input size.
 *
 * As in `tandem tokenize`, a bad input line does not stop the run: its output
 * line is {"error": "..."} so that output line N answers input line N, the
 * message goes to standard error with the line number, and the exit status is
 * 1 at the end. Floats are printed with 9 significant digits, which
 * round-trips a float32 exactly.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "cli.h"
#include "cli_util.h"
#include "tandem/embed.h"

#define CMD "embed"
#define MAX_LINE_BYTES ((size_t)64 << 20)
#define CHUNK_BATCHES 8

static void usage(FILE *f)
{
    fprintf(f, "usage: tandem embed --model DIR|FILE.onnx [--max-len N] [--batch B] [--threads T]\n"
               "                    [--tokenizer DIR] [TEXT ...]\n"
               "\n"
               "Sentence embeddings: writes one JSON line {\"embedding\": [...]} per text, in\n"
               "order. Texts are the TEXT arguments, or else JSON lines {\"text\": \"...\"} on\n"
               "standard input (other fields are ignored, blank lines skipped).\n"
               "\n"
               "options:\n"
               "  --model PATH     a sentence-transformers directory (config.json,\n"
               "                   model.safetensors, tokenizer, pooling config) or an ONNX\n"
               "                   encoder; for DIR/onnx/model.onnx the tokenizer and pooling\n"
               "                   come from DIR\n"
               "  --tokenizer DIR  tokenizer and pooling directory for an .onnx model\n"
               "  --max-len N      truncate texts to N tokens (default: the model's\n"
               "                   max_seq_length, else 512)\n"
               "  --batch B        texts per engine run (default 32)\n"
               "  --threads T      engine threads (default 1)\n"
               "  --int8           int8 weights, dynamically quantised activations in the\n"
               "                   linear layers (faster, approximate)\n"
               "  -h, --help       this text\n"
               "\n"
               "A malformed input line is answered by {\"error\": \"...\"} and reported on\n"
               "standard error with its line number; the exit status is then 1.\n"
               "Exit status: 0 success, 1 failure, 2 bad usage.\n");
}

static bool blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
            return false;
    return true;
}

/* One pending output line: a text to embed, or an error message. */
typedef struct item {
    char *text;  /* owned, NULL for an error */
    char *error; /* owned */
} item;

static void put_embedding(tdm_json_buf *b, const float *v, int dim)
{
    char tmp[32];
    tdm_json_buf_raw(b, "{\"embedding\": [", 15);
    for (int d = 0; d < dim; d++) {
        int n = snprintf(tmp, sizeof tmp, d ? ", %.9g" : "%.9g", (double)v[d]);
        tdm_json_buf_raw(b, tmp, (size_t)n);
    }
    tdm_json_buf_raw(b, "]}\n", 3);
}

/* Embeds the texts among items[0..n) and prints every line in order. */
static int flush_items(tdm_embedder *e, item *items, int n, float *vecs, const char **texts)
{
    int nt = 0;
    for (int i = 0; i < n; i++)
        if (items[i].text != NULL)
            texts[nt++] = items[i].text;
    tdm_err err = {{0}};
    if (nt > 0 && tdm_embedder_embed(e, texts, nt, vecs, &err) != TDM_OK)
        return tdm_cli_fail(CMD, TDM_EXIT_FAIL, "%s", err.msg);
    tdm_json_buf out = {0};
    int dim = tdm_embedder_dim(e), k = 0;
    for (int i = 0; i < n; i++) {
        if (items[i].text != NULL) {
            put_embedding(&out, vecs + (size_t)k++ * (size_t)dim, dim);
        } else {
            tdm_json_buf_raw(&out, "{\"error\": ", 10);
            tdm_json_buf_string(&out, items[i].error, strlen(items[i].error));
            tdm_json_buf_raw(&out, "}\n", 2);
        }
        free(items[i].text);
        free(items[i].error);
        items[i].text = items[i].error = NULL;
    }
    int rc = TDM_EXIT_OK;
    if (out.failed)
        rc = tdm_cli_fail(CMD, TDM_EXIT_FAIL, "out of memory writing output");
    else if (fwrite(out.data, 1, out.len, stdout) != out.len)
        rc = tdm_cli_fail(CMD, TDM_EXIT_FAIL, "writing standard output failed");
    tdm_json_buf_free(&out);
    return rc;
}

/* Parses one input line into an item; false (and an error item) when it is bad. */
static bool parse_line(const char *line, size_t n, size_t lineno, item *it)
{
    tdm_err err = {{0}};
    char msg[TDM_ERR_MSG_MAX + 64];
    msg[0] = '\0';
    if (n > MAX_LINE_BYTES) {
        snprintf(msg, sizeof msg, "line is longer than %zu bytes", MAX_LINE_BYTES);
    } else {
        tdm_json_doc *doc = NULL;
        if (tdm_json_parse(line, n, 0, &doc, &err) != TDM_OK) {
            /* "line 1, column C: ..." of a one-line document: the line is ours */
            snprintf(msg, sizeof msg, "%s",
                     strncmp(err.msg, "line 1, ", 8) == 0 ? err.msg + 8 : err.msg);
        } else {
            const tdm_json *root = tdm_json_root(doc);
            const tdm_json *tv = tdm_json_get(root, "text");
            size_t tlen = 0;
            const char *text = tdm_json_string(tv, &tlen);
            if (root->type != TDM_JSON_OBJECT)
                snprintf(msg, sizeof msg, "expected a JSON object {\"text\": ...}");
            else if (tv == NULL)
                snprintf(msg, sizeof msg, "field \"text\" is missing");
            else if (text == NULL)
                snprintf(msg, sizeof msg, "field \"text\" must be a string, not %s",
                         tdm_json_type_name(tv->type));
            else if (strlen(text) != tlen)
                snprintf(msg, sizeof msg, "field \"text\" holds a NUL character");
            else if ((it->text = malloc(tlen + 1)) != NULL)
                memcpy(it->text, text, tlen + 1);
            else
                snprintf(msg, sizeof msg, "out of memory");
            tdm_json_free(doc);
        }
    }
    if (it->text != NULL)
        return true;
    fprintf(stderr, "tandem " CMD ": line %zu: %s\n", lineno, msg);
    size_t need = strlen(msg) + 32;
    it->error = malloc(need);
    if (it->error != NULL)
        snprintf(it->error, need, "line %zu: %s", lineno, msg);
    return false;
}

int tdm_cmd_embed(int argc, char **argv)
{
    const char *model = NULL, *tokdir = NULL;
    int64_t max_len = 0, batch = 32, threads = 1;
    bool int8 = false;
    int first_text = argc;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (tdm_cli_is_help(a)) {
            usage(stdout);
            return TDM_EXIT_OK;
        }
        if (strcmp(a, "--") == 0) {
            first_text = i + 1;
            break;
        }
        if (strncmp(a, "--", 2) != 0) {
            first_text = i;
            break;
        }
        if (strcmp(a, "--int8") == 0) {
            int8 = true;
            continue;
        }
        static const char *const opts[] = {"--model", "--tokenizer", "--max-len", "--batch",
                                           "--threads"};
        int which = -1;
        const char *val = NULL;
        for (int k = 0; k < 5 && which < 0; k++) {
            size_t ol = strlen(opts[k]);
            if (strcmp(a, opts[k]) == 0) {
                if (i + 1 >= argc)
                    return tdm_cli_fail(CMD, TDM_EXIT_USAGE, "%s needs a value (try --help)", a);
                which = k;
                val = argv[++i];
            } else if (strncmp(a, opts[k], ol) == 0 && a[ol] == '=') {
                which = k;
                val = a + ol + 1;
            }
        }
        switch (which) {
        case 0: model = val; break;
        case 1: tokdir = val; break;
        case 2:
            if (!tdm_cli_parse_int(val, 2, 1 << 20, &max_len))
                return tdm_cli_fail(CMD, TDM_EXIT_USAGE,
                                    "--max-len must be an integer in [2, 1048576], not '%s'", val);
            break;
        case 3:
            if (!tdm_cli_parse_int(val, 1, 4096, &batch))
                return tdm_cli_fail(CMD, TDM_EXIT_USAGE,
                                    "--batch must be an integer in [1, 4096], not '%s'", val);
            break;
        case 4:
            if (!tdm_cli_parse_int(val, 1, 1024, &threads))
                return tdm_cli_fail(CMD, TDM_EXIT_USAGE,
                                    "--threads must be an integer in [1, 1024], not '%s'", val);
            break;
        default: return tdm_cli_fail(CMD, TDM_EXIT_USAGE, "unknown option '%s' (try --help)", a);
        }
    }
    if (model == NULL)
        return tdm_cli_fail(CMD, TDM_EXIT_USAGE, "--model DIR|FILE.onnx is required (try --help)");

    tdm_err err = {{0}};
    tdm_embedder *e = NULL;
    tdm_embedder_options eo = {.threads = (int)threads,
                               .max_len = (int)max_len,
                               .batch = (int)batch,
                               .tokenizer_dir = tokdir,
                               .int8 = int8};
    if (tdm_embedder_load(model, &eo, &e, &err) != TDM_OK)
        return tdm_cli_fail(CMD, TDM_EXIT_FAIL, "%s", err.msg);

    int chunk = first_text < argc ? argc - first_text : (int)batch * CHUNK_BATCHES;
    item *items = calloc((size_t)chunk, sizeof *items);
    const char **texts = calloc((size_t)chunk, sizeof *texts);
    float *vecs = malloc(sizeof *vecs * (size_t)chunk * (size_t)tdm_embedder_dim(e));
    if (items == NULL || texts == NULL || vecs == NULL) {
        free(items);
        free(texts);
        free(vecs);
        tdm_embedder_free(e);
        return tdm_cli_fail(CMD, TDM_EXIT_FAIL, "out of memory");
    }
    int rc = TDM_EXIT_OK, n = 0;
    if (first_text < argc) {
        for (int i = first_text; i < argc && rc == TDM_EXIT_OK; i++) {
            items[n].text = malloc(strlen(argv[i]) + 1);
            if (items[n].text == NULL)
                rc = tdm_cli_fail(CMD, TDM_EXIT_FAIL, "out of memory");
            else
                strcpy(items[n++].text, argv[i]);
        }
        if (rc == TDM_EXIT_OK)
            rc = flush_items(e, items, n, vecs, texts);
        n = 0;
    } else {
        char *line = NULL;
        size_t line_cap = 0, lineno = 0;
        bool bad = false;
        for (;;) {
            errno = 0;
            ssize_t got = getline(&line, &line_cap, stdin);
            if (got < 0) {
                if (ferror(stdin))
                    rc = tdm_cli_fail(CMD, TDM_EXIT_FAIL, "reading standard input failed: %s",
                                      strerror(errno ? errno : EIO));
                break;
            }
            lineno++;
            if (blank(line, (size_t)got))
                continue;
            if (!parse_line(line, (size_t)got, lineno, &items[n]))
                bad = true;
            if (items[n].text == NULL && items[n].error == NULL) {
                rc = tdm_cli_fail(CMD, TDM_EXIT_FAIL, "line %zu: out of memory", lineno);
                break;
            }
            if (++n == chunk) {
                rc = flush_items(e, items, n, vecs, texts);
                n = 0;
                if (rc != TDM_EXIT_OK)
                    break;
            }
        }
        if (rc == TDM_EXIT_OK && n > 0)
            rc = flush_items(e, items, n, vecs, texts);
        if (rc == TDM_EXIT_OK && bad)
            rc = TDM_EXIT_FAIL;
        free(line);
    }
    for (int i = 0; i < chunk; i++) {
        free(items[i].text);
        free(items[i].error);
    }
    free(items);
    free(texts);
    free(vecs);
    tdm_embedder_free(e);
    if (fflush(stdout) != 0 && rc == TDM_EXIT_OK)
        rc = tdm_cli_fail(CMD, TDM_EXIT_FAIL, "writing standard output failed");
    return rc;
}

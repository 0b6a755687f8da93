/*
 * tandem tokenize --model DIR [--max-len N]
 *
 * Reads JSON lines {"text": ...} on standard input and writes one JSON line
 * {"ids": [...]} per input line, in order, with the model's WordPiece
 * tokenizer (byte-exact with Hugging Face tokenizers).
 *
 * A bad input line (malformed JSON, no "text" string) does not stop the run:
 * its output line is {"error": "..."} so that output line N still answers
 * input line N for a consumer that pairs them, the same message goes to
 * standard error with the line number, and the exit status is 1 at the end.
 * Blank lines are not inputs and produce no output. Other fields of an input
 * object are ignored, so the reference file can be piped in as it is.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "cli.h"
#include "cli_util.h"
#include "tandem/text.h"

#define CMD "tokenize"
#define MAX_LINE_BYTES ((size_t)64 << 20)

static void usage(FILE *f)
{
    fprintf(f, "usage: tandem tokenize --model DIR [--max-len N]\n"
               "\n"
               "Reads JSON lines {\"text\": \"...\"} on standard input and writes one JSON line\n"
               "{\"ids\": [...]} per input line, in order: the WordPiece ids of the text with\n"
               "[CLS] and [SEP], as Hugging Face tokenizers computes them.\n"
               "\n"
               "options:\n"
               "  --model DIR    model directory with vocab.txt and/or tokenizer.json\n"
               "                 (tokenizer.json settings such as lowercase are honoured)\n"
               "  --max-len N    truncate to at most N ids, [CLS] and [SEP] included\n"
               "                 (default: no limit)\n"
               "  -h, --help     this text\n"
               "\n"
               "A malformed input line is answered by {\"error\": \"...\"} (so that output\n"
               "lines stay aligned with input lines) and reported on standard error; the\n"
               "exit status is then 1. Blank lines are skipped. Exit status: 0 success,\n"
               "1 failure, 2 bad usage.\n");
}

/* Appends the decimal form of v (fast path for the hot loop). */
static void put_int(tdm_json_buf *b, int32_t v)
{
    char tmp[16];
    int n = 0;
    uint32_t u = v < 0 ? 0u - (uint32_t)v : (uint32_t)v;
    do {
        tmp[sizeof tmp - 1 - (size_t)n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0)
        tmp[sizeof tmp - 1 - (size_t)n++] = '-';
    tdm_json_buf_raw(b, tmp + sizeof tmp - n, (size_t)n);
}

static bool blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
            return false;
    return true;
}

/* Reports a bad line on stderr and answers it with an error object on stdout. */
static void line_error(tdm_json_buf *out, size_t lineno, const char *msg)
{
    /* A JSON error of a one-line document says "line 1, column C: ...": the line is ours. */
    if (strncmp(msg, "line 1, column ", 15) == 0) {
        msg += 8;
        fprintf(stderr, "tandem " CMD ": line %zu, %s\n", lineno, msg);
    } else {
        fprintf(stderr, "tandem " CMD ": line %zu: %s\n", lineno, msg);
    }
    tdm_json_buf_raw(out, "{\"error\": ", 10);
    tdm_json_buf_string(out, msg, strlen(msg));
    tdm_json_buf_raw(out, "}\n", 2);
}

int tdm_cmd_tokenize(int argc, char **argv)
{
    const char *model = NULL;
    int64_t max_len = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (tdm_cli_is_help(a)) {
            usage(stdout);
            return TDM_EXIT_OK;
        }
        const char *val = NULL;
        bool is_model = strcmp(a, "--model") == 0, is_max = strcmp(a, "--max-len") == 0;
        if (strncmp(a, "--model=", 8) == 0) {
            is_model = true;
            val = a + 8;
        } else if (strncmp(a, "--max-len=", 10) == 0) {
            is_max = true;
            val = a + 10;
        } else if (is_model || is_max) {
            if (i + 1 >= argc)
                return tdm_cli_fail(CMD, TDM_EXIT_USAGE, "%s needs a value (try --help)", a);
            val = argv[++i];
        }
        if (is_model) {
            model = val;
        } else if (is_max) {
            if (!tdm_cli_parse_int(val, 1, INT32_MAX, &max_len))
                return tdm_cli_fail(CMD, TDM_EXIT_USAGE,
                                    "--max-len must be an integer in [1, %d], not '%s'", INT32_MAX,
                                    val);
        } else {
            return tdm_cli_fail(CMD, TDM_EXIT_USAGE, "unknown argument '%s' (try --help)", a);
        }
    }
    if (model == NULL)
        return tdm_cli_fail(CMD, TDM_EXIT_USAGE, "--model DIR is required (try --help)");

    tdm_err err = {{0}};
    tdm_tokenizer *tok = NULL;
    if (tdm_tokenizer_load(model, &tok, &err) != TDM_OK)
        return tdm_cli_fail(CMD, TDM_EXIT_FAIL, "%s", err.msg);
    /* A max_len shorter than the special tokens is a usage error: find out before reading. */
    size_t probe;
    int32_t probe_ids[16];
    if (tdm_tokenizer_encode(tok, "", 0, (size_t)max_len, probe_ids, 16, &probe, &err) != TDM_OK) {
        tdm_tokenizer_free(tok);
        return tdm_cli_fail(CMD, TDM_EXIT_USAGE, "--max-len %lld: %s", (long long)max_len, err.msg);
    }

    int rc = TDM_EXIT_OK;
    char *line = NULL;
    size_t line_cap = 0, lineno = 0;
    int32_t *ids = NULL;
    size_t ids_cap = 0;
    tdm_json_buf out = {0};
    for (;;) {
        errno = 0;
        ssize_t got = getline(&line, &line_cap, stdin);
        if (got < 0) {
            if (ferror(stdin)) {
                rc = tdm_cli_fail(CMD, TDM_EXIT_FAIL, "reading standard input failed: %s",
                                  strerror(errno ? errno : EIO));
            }
            break;
        }
        lineno++;
        size_t n = (size_t)got;
        if (blank(line, n))
            continue;
        tdm_json_buf_reset(&out);
        if (n > MAX_LINE_BYTES) {
            char msg[96];
            snprintf(msg, sizeof msg, "line is longer than %zu bytes", MAX_LINE_BYTES);
            line_error(&out, lineno, msg);
            rc = TDM_EXIT_FAIL;
        } else {
            tdm_json_doc *doc = NULL;
            size_t tlen = 0;
            const char *text = NULL;
            if (tdm_json_parse(line, n, 0, &doc, &err) != TDM_OK) {
                line_error(&out, lineno, err.msg);
                rc = TDM_EXIT_FAIL;
            } else {
                const tdm_json *root = tdm_json_root(doc);
                const tdm_json *tv = tdm_json_get(root, "text");
                text = tdm_json_string(tv, &tlen);
                if (root->type != TDM_JSON_OBJECT) {
                    line_error(&out, lineno, "expected a JSON object {\"text\": ...}");
                    rc = TDM_EXIT_FAIL;
                } else if (tv == NULL) {
                    line_error(&out, lineno, "field \"text\" is missing");
                    rc = TDM_EXIT_FAIL;
                } else if (text == NULL) {
                    char msg[96];
                    snprintf(msg, sizeof msg, "field \"text\" must be a string, not %s",
                             tdm_json_type_name(tv->type));
                    line_error(&out, lineno, msg);
                    rc = TDM_EXIT_FAIL;
                }
            }
            if (text != NULL) {
                size_t need = tdm_tokenizer_encode_bound(tok, tlen), count = 0;
                if (need > ids_cap) {
                    int32_t *p = realloc(ids, need * sizeof *ids);
                    if (p == NULL) {
                        tdm_json_free(doc);
                        rc = tdm_cli_fail(CMD, TDM_EXIT_FAIL, "line %zu: out of memory", lineno);
                        break;
                    }
                    ids = p;
                    ids_cap = need;
                }
                if (tdm_tokenizer_encode(tok, text, tlen, (size_t)max_len, ids, ids_cap, &count,
                                         &err) != TDM_OK) {
                    line_error(&out, lineno, err.msg);
                    rc = TDM_EXIT_FAIL;
                } else {
                    tdm_json_buf_raw(&out, "{\"ids\": [", 9);
                    for (size_t k = 0; k < count; k++) {
                        if (k > 0)
                            tdm_json_buf_raw(&out, ", ", 2);
                        put_int(&out, ids[k]);
                    }
                    tdm_json_buf_raw(&out, "]}\n", 3);
                }
            }
            tdm_json_free(doc);
        }
        if (out.failed) {
            rc = tdm_cli_fail(CMD, TDM_EXIT_FAIL, "line %zu: out of memory", lineno);
            break;
        }
        if (fwrite(out.data, 1, out.len, stdout) != out.len) {
            rc = tdm_cli_fail(CMD, TDM_EXIT_FAIL, "writing standard output failed");
            break;
        }
    }
    if (fflush(stdout) != 0 && rc != TDM_EXIT_FAIL)
        rc = tdm_cli_fail(CMD, TDM_EXIT_FAIL, "writing standard output failed");
    free(line);
    free(ids);
    tdm_json_buf_free(&out);
    tdm_tokenizer_free(tok);
    return rc;
}

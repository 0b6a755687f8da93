/*
 * YAML -> JSON tree via libyaml events (see yaml.h for the design).
 *
 * An event stream maps one to one onto JSON text: mapping start/end become braces,
 * sequences brackets, scalars numbers/literals/strings, with commas tracked per nesting
 * level. Re-parsing the text costs a second pass over a small file, which buys a single
 * tree type and the JSON reader's limits for free. Nesting depth is bounded here too, so
 * the JSON reader's limit is never the one a user meets.
 */
#include "base/yaml.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define YAML_MAX_DEPTH 60
#define YAML_MAX_FILE (16u << 20)

/* True when a plain scalar is a JSON-compatible number (after YAML leniencies). */
static bool plain_number(const char *s, size_t n)
{
    if (n == 0)
        return false;
    char *end = NULL;
    errno = 0;
    const char *p = s;
    if (*p == '+' || *p == '-')
        p++;
    if (!isdigit((unsigned char)*p) && !(*p == '.' && isdigit((unsigned char)p[1])))
        return false;
    double v = strtod(s, &end);
    (void)v;
    if (errno || end != s + n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] == 'x' || s[i] == 'X' || s[i] == 'n' || s[i] == 'N' || s[i] == 'p' || s[i] == 'P')
            return false; /* hex floats, nan, inf */
    return true;
}

/* Writes a number in JSON form (strips '+', leading zeros and a bare '.5'). */
static void emit_number(tdm_json_buf *b, const char *s, size_t n)
{
    double v = strtod(s, NULL);
    long long iv = 0;
    bool is_int = true;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '.' || s[i] == 'e' || s[i] == 'E')
            is_int = false;
    if (is_int) {
        errno = 0;
        iv = strtoll(s, NULL, 10);
        if (errno == 0) {
            tdm_json_buf_i64(b, iv);
            return;
        }
    }
    tdm_json_buf_f64(b, v);
}

typedef struct level {
    bool mapping;
    int count; /* items (sequence) or keys+values (mapping) written */
} level;

static tdm_status convert(yaml_parser_t *p, tdm_json_buf *b, tdm_err *err)
{
    level stack[YAML_MAX_DEPTH + 1];
    int depth = 0;
    bool done = false;
    bool have_doc = false;
    bool wrote_root = false;
    while (!done) {
        yaml_event_t ev;
        if (!yaml_parser_parse(p, &ev))
            return tdm_errf(err, TDM_ERR_PARSE, "line %zu, column %zu: %s",
                            p->problem_mark.line + 1, p->problem_mark.column + 1,
                            p->problem ? p->problem : "malformed YAML");
        size_t line = ev.start_mark.line + 1, col = ev.start_mark.column + 1;
        tdm_status st = TDM_OK;
        bool is_value_start = ev.type == YAML_SCALAR_EVENT ||
                              ev.type == YAML_SEQUENCE_START_EVENT ||
                              ev.type == YAML_MAPPING_START_EVENT;
        if (is_value_start) {
            if (depth > 0) {
                level *l = &stack[depth - 1];
                if (l->mapping) {
                    bool is_key = (l->count % 2) == 0;
                    if (is_key && ev.type != YAML_SCALAR_EVENT)
                        st = tdm_errf(err, TDM_ERR_PARSE,
                                      "line %zu, column %zu: mapping keys must be scalars", line,
                                      col);
                    if (is_key && l->count > 0)
                        tdm_json_buf_raw(b, ",", 1);
                    else if (!is_key)
                        tdm_json_buf_raw(b, ":", 1);
                } else if (l->count > 0) {
                    tdm_json_buf_raw(b, ",", 1);
                }
                l->count++;
            } else {
                wrote_root = true;
            }
        }
        if (st == TDM_OK) {
            switch (ev.type) {
            case YAML_STREAM_START_EVENT:
            case YAML_DOCUMENT_END_EVENT: break;
            case YAML_DOCUMENT_START_EVENT:
                if (have_doc)
                    st = tdm_errf(err, TDM_ERR_UNSUPPORTED,
                                  "line %zu, column %zu: only one YAML document is supported", line,
                                  col);
                have_doc = true;
                break;
            case YAML_STREAM_END_EVENT: done = true; break;
            case YAML_ALIAS_EVENT:
                st = tdm_errf(err, TDM_ERR_UNSUPPORTED,
                              "line %zu, column %zu: aliases (*name) are not supported", line, col);
                break;
            case YAML_MAPPING_START_EVENT:
            case YAML_SEQUENCE_START_EVENT: {
                if (ev.type == YAML_MAPPING_START_EVENT ? ev.data.mapping_start.anchor != NULL
                                                        : ev.data.sequence_start.anchor != NULL) {
                    st = tdm_errf(err, TDM_ERR_UNSUPPORTED,
                                  "line %zu, column %zu: anchors (&name) are not supported", line,
                                  col);
                    break;
                }
                if (depth == YAML_MAX_DEPTH) {
                    st = tdm_errf(err, TDM_ERR_PARSE,
                                  "line %zu, column %zu: nesting deeper than %d levels", line, col,
                                  YAML_MAX_DEPTH);
                    break;
                }
                bool m = ev.type == YAML_MAPPING_START_EVENT;
                stack[depth].mapping = m;
                stack[depth].count = 0;
                depth++;
                tdm_json_buf_raw(b, m ? "{" : "[", 1);
                break;
            }
            case YAML_MAPPING_END_EVENT:
            case YAML_SEQUENCE_END_EVENT:
                depth--;
                tdm_json_buf_raw(b, ev.type == YAML_MAPPING_END_EVENT ? "}" : "]", 1);
                break;
            case YAML_SCALAR_EVENT: {
                const char *s = (const char *)ev.data.scalar.value;
                size_t n = ev.data.scalar.length;
                if (ev.data.scalar.anchor) {
                    st = tdm_errf(err, TDM_ERR_UNSUPPORTED,
                                  "line %zu, column %zu: anchors (&name) are not supported", line,
                                  col);
                    break;
                }
                bool is_key =
                    depth > 0 && stack[depth - 1].mapping && (stack[depth - 1].count % 2) == 1;
                bool plain = ev.data.scalar.plain_implicit && !ev.data.scalar.tag &&
                             ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
                if (is_key || !plain) {
                    tdm_json_buf_string(b, s, n);
                } else if (n == 0 || (n == 1 && s[0] == '~') ||
                           (n == 4 && (!memcmp(s, "null", 4) || !memcmp(s, "Null", 4) ||
                                       !memcmp(s, "NULL", 4)))) {
                    tdm_json_buf_raw(b, "null", 4);
                } else if ((n == 4 && (!memcmp(s, "true", 4) || !memcmp(s, "True", 4) ||
                                       !memcmp(s, "TRUE", 4)))) {
                    tdm_json_buf_raw(b, "true", 4);
                } else if ((n == 5 && (!memcmp(s, "false", 5) || !memcmp(s, "False", 5) ||
                                       !memcmp(s, "FALSE", 5)))) {
                    tdm_json_buf_raw(b, "false", 5);
                } else if (plain_number(s, n)) {
                    emit_number(b, s, n);
                } else {
                    tdm_json_buf_string(b, s, n);
                }
                break;
            }
            default: break;
            }
        }
        yaml_event_delete(&ev);
        if (st != TDM_OK)
            return st;
    }
    if (!wrote_root)
        tdm_json_buf_raw(b, "{}", 2);
    if (b->failed)
        return tdm_errf(err, TDM_ERR_NOMEM, "out of memory converting YAML");
    return TDM_OK;
}

tdm_status tdm_yaml_parse(const char *text, size_t len, tdm_json_doc **out, tdm_err *err)
{
    *out = NULL;
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p))
        return tdm_errf(err, TDM_ERR_NOMEM, "cannot initialise the YAML parser");
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    tdm_json_buf b = {0};
    tdm_status st = convert(&p, &b, err);
    yaml_parser_delete(&p);
    if (st == TDM_OK) {
        tdm_err jerr = {{0}};
        st = tdm_json_parse(b.data, b.len, TDM_JSON_MAX_DEPTH, out, &jerr);
        if (st != TDM_OK)
            tdm_errf(err, TDM_ERR_INTERNAL, "YAML converted to invalid JSON: %s", jerr.msg);
    }
    tdm_json_buf_free(&b);
    return st;
}

tdm_status tdm_yaml_read_file(const char *path, tdm_json_doc **out, tdm_err *err)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return tdm_errf(err, TDM_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    char *buf = malloc(YAML_MAX_FILE + 1);
    if (!buf) {
        fclose(f);
        return tdm_errf(err, TDM_ERR_NOMEM, "%s: out of memory", path);
    }
    size_t n = fread(buf, 1, YAML_MAX_FILE + 1, f);
    bool bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return tdm_errf(err, TDM_ERR_IO, "%s: read error", path);
    }
    if (n > YAML_MAX_FILE) {
        free(buf);
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "%s: larger than %u bytes", path, YAML_MAX_FILE);
    }
    tdm_status st = tdm_yaml_parse(buf, n, out, err);
    free(buf);
    if (st != TDM_OK)
        tdm_err_prefix(err, "%s", path);
    return st;
}

/*
 * CSV image files: "label,v0,...,v(C*H*W-1)" per line, values HWC-interleaved.
 *
 * This is the layout of ../shared/data/cifar10-100/test.csv (and of the
 * MNIST test100.csv with C = 1). The parser makes two passes over the text:
 * the first counts the data lines so that the output is allocated once at
 * its exact size; the second parses and normalises. Numbers are parsed by
 * hand against an end pointer rather than with strtod, which would need a
 * terminator and accepts locale-dependent forms, hex and "nan": a pixel is
 * an optionally signed decimal with an optional fraction, nothing else.
 * Every error names the file, the line and the field.
 */
#include <assert.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "data/data_internal.h"

typedef struct csv_cursor {
    const char *p, *end;
    const char *name;
    int64_t line; /* 1-based line number of the current line */
} csv_cursor;

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_blank_line(const char *p, const char *end)
{
    for (; p < end && *p != '\n'; p++)
        if (*p != ' ' && *p != '\t' && *p != '\r')
            return false;
    return true;
}

static const char *line_end(const char *p, const char *end)
{
    const char *q = memchr(p, '\n', (size_t)(end - p));
    return q ? q : end;
}

/* True when the line's first non-space character cannot start a number. */
static bool is_header_line(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    return p < end && !is_digit(*p) && *p != '-' && *p != '+' && *p != '.';
}

static void skip_spaces(const char **p, const char *end)
{
    while (*p < end && (**p == ' ' || **p == '\t'))
        (*p)++;
}

/*
 * Parses one number field of [p, end) (end = the line's end): sign, digits,
 * optional fraction, surrounding spaces. Stops at ',' or end; *p is left at
 * the separator. integer_only refuses a fraction.
 */
static bool parse_number(const char **pp, const char *end, bool integer_only, double *out)
{
    const char *p = *pp;
    skip_spaces(&p, end);
    bool neg = false;
    if (p < end && (*p == '-' || *p == '+'))
        neg = *p++ == '-';
    double v = 0.0;
    int digits = 0;
    while (p < end && is_digit(*p)) {
        if (digits < 18)
            v = v * 10.0 + (*p - '0');
        else
            v *= 10.0; /* beyond double's exactness; the value is out of any sane range anyway */
        p++;
        digits++;
    }
    if (p < end && *p == '.' && !integer_only) {
        p++;
        double f = 0.1;
        while (p < end && is_digit(*p)) {
            v += (*p - '0') * f;
            f *= 0.1;
            p++;
            digits++;
        }
    }
    if (digits == 0)
        return false;
    skip_spaces(&p, end);
    if (p < end && *p == '\r' && p + 1 == end)
        p++;
    if (p < end && *p != ',')
        return false;
    *out = neg ? -v : v;
    *pp = p;
    return true;
}

static tdm_status parse_line(csv_cursor *cur, const char *le, int64_t row, int c, int64_t h,
                             int64_t w, const tdm_data_norm *plan, tdm_dataset *out, tdm_err *err)
{
    const char *p = cur->p;
    double v;
    if (!parse_number(&p, le, true, &v) || v < 0 || v > INT32_MAX)
        return tdm_errf(err, TDM_ERR_PARSE,
                        "%s: line %lld: the label (field 1) is not an integer in 0..%d", cur->name,
                        (long long)cur->line, INT32_MAX);
    out->labels[row] = (int32_t)v;
    const int64_t per = (int64_t)c * h * w;
    float *img = (float *)out->x.data + row * per;
    for (int64_t k = 0; k < per; k++) {
        if (p >= le || *p != ',')
            return tdm_errf(
                err, TDM_ERR_PARSE,
                "%s: line %lld: %lld values, expected %lld (label + C*H*W = %dx%lldx%lld)",
                cur->name, (long long)cur->line, (long long)k, (long long)per, c, (long long)h,
                (long long)w);
        p++;
        if (!parse_number(&p, le, false, &v))
            return tdm_errf(err, TDM_ERR_PARSE, "%s: line %lld: field %lld is not a number",
                            cur->name, (long long)cur->line, (long long)k + 2);
        const int64_t pix = k / c, ch = k % c;
        img[(ch * h + pix / w) * w + pix % w] = tdm_data_norm_apply(plan, (int)ch, (float)v);
    }
    if (p < le)
        return tdm_errf(err, TDM_ERR_PARSE, "%s: line %lld: more than %lld values", cur->name,
                        (long long)cur->line, (long long)per);
    return TDM_OK;
}

tdm_status tdm_csv_parse(const char *text, size_t len, const char *name, int c, int h, int w,
                         const tdm_data_norm *norm, int64_t limit, tdm_dataset *out, tdm_err *err)
{
    memset(out, 0, sizeof *out);
    if (name == NULL)
        name = "<csv>";
    if (h < 1 || w < 1)
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "%s: image size %dx%d is invalid", name, h, w);
    tdm_data_norm plan;
    tdm_status s = tdm_data_norm_plan(norm, c, name, &plan, err);
    if (s != TDM_OK)
        return s;
    const char *end = text + len;

    /* Pass 1: count data lines (skipping blanks and a header). */
    int64_t n = 0;
    bool first = true;
    for (const char *p = text; p < end;) {
        const char *le = line_end(p, end);
        if (!is_blank_line(p, le)) {
            if (!(first && is_header_line(p, le)))
                n++;
            first = false;
        }
        p = le < end ? le + 1 : end;
        if (limit > 0 && n == limit)
            break;
    }
    if (n == 0)
        return tdm_errf(err, TDM_ERR_PARSE, "%s: no data lines", name);
    s = tdm_data_alloc(out, n, c, h, w, err);
    if (s != TDM_OK)
        return s;

    /* Pass 2: parse. */
    csv_cursor cur = {text, end, name, 0};
    int64_t row = 0;
    first = true;
    while (cur.p < end && row < n) {
        const char *le = line_end(cur.p, end);
        cur.line++;
        if (!is_blank_line(cur.p, le)) {
            bool header = first && is_header_line(cur.p, le);
            first = false;
            if (!header) {
                s = parse_line(&cur, le, row, c, h, w, &plan, out, err);
                if (s != TDM_OK) {
                    tdm_dataset_free(out);
                    return s;
                }
                row++;
            }
        }
        cur.p = le < end ? le + 1 : end;
    }
    assert(row == n);
    return TDM_OK;
}

tdm_status tdm_csv_load(const char *path, int c, int h, int w, const tdm_data_norm *norm,
                        int64_t limit, tdm_dataset *out, tdm_err *err)
{
    void *buf;
    size_t len;
    memset(out, 0, sizeof *out);
    tdm_status s = tdm_data_read_file(path, 0, &buf, &len, err);
    if (s != TDM_OK)
        return s;
    s = tdm_csv_parse(buf, len, path, c, h, w, norm, limit, out, err);
    free(buf);
    return s;
}

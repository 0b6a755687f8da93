/*
 * JSON reader and writer: values, escapes and surrogate pairs, strictness
 * (each malformed input gives TDM_ERR_PARSE with a position), nesting limits,
 * and robustness: every prefix and thousands of random mutations of a valid
 * document parse or fail cleanly (run under ASan/UBSan to make that mean
 * something).
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

#include "base/json.h"

static tdm_json_doc *parse_ok(const char *text)
{
    tdm_json_doc *doc = NULL;
    tdm_err err = {{0}};
    tdm_status st = tdm_json_parse(text, strlen(text), 0, &doc, &err);
    if (st != TDM_OK)
        fail_msg("parse of %s failed: %s", text, err.msg);
    assert_non_null(doc);
    return doc;
}

static void test_values(void **state)
{
    (void)state;
    tdm_json_doc *doc =
        parse_ok(" {\"n\": null, \"t\": true, \"f\": false, \"i\": -42, "
                 "\"d\": 2.5, \"s\": \"hi\", \"a\": [1, [], {}], \"o\": {\"k\": 1}} ");
    const tdm_json *r = tdm_json_root(doc);
    assert_int_equal(r->type, TDM_JSON_OBJECT);
    assert_int_equal(r->len, 8);
    assert_int_equal(tdm_json_get(r, "n")->type, TDM_JSON_NULL);
    assert_true(tdm_json_get(r, "t")->boolean);
    assert_int_equal(tdm_json_get(r, "f")->type, TDM_JSON_BOOL);
    assert_false(tdm_json_get(r, "f")->boolean);
    int64_t i = 0;
    assert_true(tdm_json_int(tdm_json_get(r, "i"), &i));
    assert_int_equal(i, -42);
    assert_false(tdm_json_int(tdm_json_get(r, "d"), &i));
    assert_true(tdm_json_get(r, "d")->number == 2.5);
    size_t len = 0;
    assert_string_equal(tdm_json_string(tdm_json_get(r, "s"), &len), "hi");
    assert_int_equal(len, 2);
    const tdm_json *a = tdm_json_get(r, "a");
    assert_int_equal(a->type, TDM_JSON_ARRAY);
    assert_int_equal(a->len, 3);
    assert_int_equal(a->items[1].type, TDM_JSON_ARRAY);
    assert_int_equal(a->items[1].len, 0);
    assert_int_equal(a->items[2].type, TDM_JSON_OBJECT);
    assert_true(tdm_json_int(tdm_json_get(tdm_json_get(r, "o"), "k"), &i));
    assert_int_equal(i, 1);
    assert_null(tdm_json_get(r, "missing"));
    assert_null(tdm_json_get(a, "k")); /* not an object */
    assert_null(tdm_json_string(tdm_json_get(r, "i"), NULL));
    /* Member order and names are kept. */
    assert_string_equal(r->items[0].key, "n");
    assert_string_equal(r->items[7].key, "o");
    tdm_json_free(doc);

    doc = parse_ok("\"top-level string\"");
    assert_int_equal(tdm_json_root(doc)->type, TDM_JSON_STRING);
    tdm_json_free(doc);
    doc = parse_ok("7");
    assert_true(tdm_json_int(tdm_json_root(doc), &i));
    assert_int_equal(i, 7);
    tdm_json_free(doc);
}

static void test_strings(void **state)
{
    (void)state;
    /* Expected bytes written out independently of the parser. */
    static const struct {
        const char *json;
        const char *bytes;
        size_t len;
    } cases[] = {
        {"\"a\\\"b\\\\c\\/d\"", "a\"b\\c/d", 7},
        {"\"\\b\\f\\n\\r\\t\"", "\b\f\n\r\t", 5},
        {"\"\\u0041\\u00e9\\u20AC\"", "A\xC3\xA9\xE2\x82\xAC", 6},
        {"\"\\ud83d\\ude00\"", "\xF0\x9F\x98\x80", 4}, /* U+1F600 */
        {"\"\\uDBFF\\uDFFF\"", "\xF4\x8F\xBF\xBF", 4}, /* U+10FFFF */
        {"\"x\\u0000y\"", "x\0y", 3},                  /* NUL kept, length says */
        {"\"caf\xC3\xA9 \xE6\x97\xA5 \xF0\x9F\x98\x80\"",
         "caf\xC3\xA9 \xE6\x97\xA5 \xF0\x9F\x98\x80", 14},
        {"\"\"", "", 0},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        tdm_json_doc *doc = parse_ok(cases[k].json);
        size_t len = 99;
        const char *s = tdm_json_string(tdm_json_root(doc), &len);
        assert_non_null(s);
        assert_int_equal(len, cases[k].len);
        assert_memory_equal(s, cases[k].bytes, len);
        assert_int_equal(s[len], '\0');
        tdm_json_free(doc);
    }
}

static void test_numbers(void **state)
{
    (void)state;
    static const struct {
        const char *json;
        bool is_int;
        int64_t i;
        double d;
    } cases[] = {
        {"0", true, 0, 0.0},
        {"-0", true, 0, -0.0},
        {"123", true, 123, 123.0},
        {"-9223372036854775808", true, INT64_MIN, -9223372036854775808.0},
        {"9223372036854775807", true, INT64_MAX, 9223372036854775807.0},
        {"9223372036854775808", false, 0, 9223372036854775808.0},
        {"1.5", false, 0, 1.5},
        {"1e3", true, 1000, 1000.0},
        {"3.0", true, 3, 3.0},
        {"-2.5E-3", false, 0, -0.0025},
        {"1e-400", true, 0, 0.0}, /* underflow to zero is a number */
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        tdm_json_doc *doc = parse_ok(cases[k].json);
        const tdm_json *v = tdm_json_root(doc);
        assert_int_equal(v->type, TDM_JSON_NUMBER);
        int64_t i = 0;
        assert_int_equal(tdm_json_int(v, &i), cases[k].is_int);
        if (cases[k].is_int)
            assert_true(i == cases[k].i);
        assert_true(v->number == cases[k].d);
        tdm_json_free(doc);
    }
}

static void expect_error(const char *text, size_t len, const char *what)
{
    tdm_json_doc *doc = (tdm_json_doc *)&doc; /* must be reset to NULL */
    tdm_err err = {{0}};
    tdm_status st = tdm_json_parse(text, len, 0, &doc, &err);
    if (st != TDM_ERR_PARSE)
        fail_msg("input %.40s: status %d, want parse error", text, (int)st);
    assert_null(doc);
    if (strstr(err.msg, what) == NULL)
        fail_msg("input %.40s: message '%s' lacks '%s'", text, err.msg, what);
    assert_non_null(strstr(err.msg, "line "));
}

static void test_errors(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *what;
    } cases[] = {
        {"", "unexpected end"},
        {"   ", "unexpected end"},
        {"{", "unterminated object"},
        {"[1,", "unexpected end"},
        {"[1,]", "expected a value"},
        {"[1 2]", "expected ',' or ']'"},
        {"{\"a\" 1}", "expected ':'"},
        {"{\"a\":1,}", "expected a string key"},
        {"{a:1}", "expected a string key"},
        {"01", "leading zero"},
        {"1.", "digits expected after '.'"},
        {"-", "invalid number"},
        {"1e", "digits expected in exponent"},
        {"+1", "expected a value"},
        {"NaN", "expected a value"},
        {"tru", "expected a value"},
        {"\"abc", "unterminated string"},
        {"\"a\\", "unterminated string"},
        {"\"\\x\"", "invalid escape"},
        {"\"\\u12\"", "four hex digits"},
        {"\"\\ud800\"", "not followed by a low one"},
        {"\"\\ud800\\u0041\"", "not followed by a low one"},
        {"\"\\udc00\"", "unpaired low surrogate"},
        {"\"a\x01\"", "control character"},
        {"\"\xFF\"", "invalid UTF-8"},
        {"\"\xC0\xAF\"", "invalid UTF-8"},         /* overlong '/' */
        {"\"\xED\xA0\x80\"", "invalid UTF-8"},     /* encoded surrogate */
        {"\"\xF4\x90\x80\x80\"", "invalid UTF-8"}, /* above U+10FFFF */
        {"\"\xE2\x82\"", "invalid UTF-8"},         /* truncated sequence */
        {"[1] x", "unexpected data after"},
        {"1e999", "out of range"},
        {"// c\n1", "expected a value"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++)
        expect_error(cases[k].text, strlen(cases[k].text), cases[k].what);
    /* A NUL byte inside the input is just a bad character. */
    expect_error("[1,\0 2]", 7, "expected a value");
}

static void test_error_position(void **state)
{
    (void)state;
    const char *text = "{\n  \"a\": tru\n}";
    tdm_json_doc *doc = NULL;
    tdm_err err = {{0}};
    assert_int_equal(tdm_json_parse(text, strlen(text), 0, &doc, &err), TDM_ERR_PARSE);
    assert_non_null(strstr(err.msg, "line 2, column 8"));
    /* Columns count characters, not bytes. */
    text = "[\"\xC3\xA9\xC3\xA9\", x]";
    assert_int_equal(tdm_json_parse(text, strlen(text), 0, &doc, &err), TDM_ERR_PARSE);
    assert_non_null(strstr(err.msg, "line 1, column 8"));
}

static char *nested(int depth)
{
    char *s = malloc((size_t)depth * 2 + 1);
    for (int i = 0; i < depth; i++) {
        s[i] = '[';
        s[depth * 2 - 1 - i] = ']';
    }
    s[depth * 2] = '\0';
    return s;
}

static void test_depth(void **state)
{
    (void)state;
    tdm_json_doc *doc = NULL;
    tdm_err err;
    char *ok = nested(TDM_JSON_DEFAULT_DEPTH);
    assert_int_equal(tdm_json_parse(ok, strlen(ok), 0, &doc, &err), TDM_OK);
    tdm_json_free(doc);
    char *deep = nested(TDM_JSON_DEFAULT_DEPTH + 1);
    assert_int_equal(tdm_json_parse(deep, strlen(deep), 0, &doc, &err), TDM_ERR_PARSE);
    assert_non_null(strstr(err.msg, "nesting too deep"));
    /* A caller may allow more, up to the hard limit; a hostile million-deep input fails. */
    assert_int_equal(tdm_json_parse(deep, strlen(deep), 100, &doc, &err), TDM_OK);
    tdm_json_free(doc);
    assert_int_equal(tdm_json_parse(ok, strlen(ok), 3, &doc, &err), TDM_ERR_PARSE);
    char *huge = nested(1000000);
    assert_int_equal(tdm_json_parse(huge, strlen(huge), 1 << 30, &doc, &err), TDM_ERR_PARSE);
    free(ok);
    free(deep);
    free(huge);
}

static void test_duplicates_and_big(void **state)
{
    (void)state;
    tdm_json_doc *doc = parse_ok("{\"a\": 1, \"b\": 2, \"a\": 3}");
    int64_t i = 0;
    assert_true(tdm_json_int(tdm_json_get(tdm_json_root(doc), "a"), &i));
    assert_int_equal(i, 3); /* last wins */
    tdm_json_free(doc);

    /* A large object (like a tokenizer vocabulary) keeps every member in order. */
    enum { N = 50000 };
    char *text = malloc((size_t)N * 24 + 16);
    size_t n = 0;
    text[n++] = '{';
    for (int k = 0; k < N; k++)
        n += (size_t)sprintf(text + n, "%s\"tok%d\": %d", k ? ", " : "", k, k * 3);
    text[n++] = '}';
    tdm_err err;
    assert_int_equal(tdm_json_parse(text, n, 0, &doc, &err), TDM_OK);
    const tdm_json *r = tdm_json_root(doc);
    assert_int_equal(r->len, N);
    for (int k = 0; k < N; k += 997) {
        char key[16];
        snprintf(key, sizeof key, "tok%d", k);
        assert_string_equal(r->items[k].key, key);
        assert_true(tdm_json_int(&r->items[k], &i));
        assert_int_equal(i, k * 3);
    }
    tdm_json_free(doc);
    free(text);
}

static const char k_sample[] =
    "{\"version\": \"1.0\", \"added\": [{\"id\": 0, \"content\": \"[PAD]\", \"x\": true}, "
    "{\"id\": 100, \"content\": \"\\u00e9\\ud83d\\ude00\", \"x\": null}], "
    "\"model\": {\"vocab\": {\"a\": 1, \"##b\": 2.5e1, \"c\": -3}, \"n\": [[], {}, \"\"]}}";

static void test_prefixes_and_mutations(void **state)
{
    (void)state;
    size_t n = strlen(k_sample);
    tdm_json_doc *doc = NULL;
    tdm_err err;
    assert_int_equal(tdm_json_parse(k_sample, n, 0, &doc, &err), TDM_OK);
    tdm_json_free(doc);
    /* Every proper prefix is incomplete. */
    for (size_t k = 0; k < n; k++) {
        char *p = malloc(k + 1);
        memcpy(p, k_sample, k);
        tdm_status st = tdm_json_parse(p, k, 0, &doc, &err);
        assert_int_equal(st, TDM_ERR_PARSE);
        assert_null(doc);
        free(p);
    }
    /* Random byte mutations: any outcome but a crash or a leak. */
    unsigned seed = 12345;
    char *buf = malloc(n);
    for (int round = 0; round < 20000; round++) {
        memcpy(buf, k_sample, n);
        int edits = 1 + round % 4;
        for (int e = 0; e < edits; e++) {
            seed = seed * 1103515245u + 12345u;
            size_t at = (seed >> 8) % n;
            seed = seed * 1103515245u + 12345u;
            buf[at] = (char)(seed >> 16);
        }
        tdm_status st = tdm_json_parse(buf, n, 0, &doc, &err);
        assert_true(st == TDM_OK || st == TDM_ERR_PARSE);
        if (st == TDM_OK)
            assert_non_null(tdm_json_root(doc));
        else
            assert_null(doc);
        tdm_json_free(doc);
    }
    free(buf);
}

static void test_writer(void **state)
{
    (void)state;
    tdm_json_buf b = {0};
    tdm_json_buf_raw(&b, "[", 1);
    tdm_json_buf_string(&b, "q\"b\\s/\n\t\x01\x1f", 10);
    tdm_json_buf_raw(&b, ",", 1);
    tdm_json_buf_string(&b, "bad\xFFutf8 \xE2\x82\xAC", 12);
    tdm_json_buf_raw(&b, ",", 1);
    tdm_json_buf_i64(&b, INT64_MIN);
    tdm_json_buf_raw(&b, ",", 1);
    tdm_json_buf_f64(&b, 0.1);
    tdm_json_buf_raw(&b, ",", 1);
    tdm_json_buf_f64(&b, NAN);
    tdm_json_buf_raw(&b, ",", 1);
    tdm_json_buf_f32(&b, 0.1f);
    tdm_json_buf_raw(&b, "]", 1);
    assert_false(b.failed);
    assert_string_equal(b.data, "[\"q\\\"b\\\\s/\\n\\t\\u0001\\u001f\","
                                "\"bad\xEF\xBF\xBDutf8 \xE2\x82\xAC\","
                                "-9223372036854775808,0.1,null,0.1]");
    /* What the writer writes, the reader reads back. */
    tdm_json_doc *doc = NULL;
    tdm_err err;
    assert_int_equal(tdm_json_parse(b.data, b.len, 0, &doc, &err), TDM_OK);
    const tdm_json *r = tdm_json_root(doc);
    assert_int_equal(r->len, 6);
    assert_memory_equal(r->items[0].str, "q\"b\\s/\n\t\x01\x1f", 10);
    assert_true(r->items[3].number == 0.1);
    assert_true((float)r->items[5].number == 0.1f);
    tdm_json_free(doc);

    /* Doubles round-trip exactly. */
    const double vals[] = {1.0 / 3.0, 1e300, -2.5e-300, 123456789.0, 5e-324};
    for (size_t k = 0; k < sizeof vals / sizeof vals[0]; k++) {
        tdm_json_buf_reset(&b);
        tdm_json_buf_f64(&b, vals[k]);
        assert_true(strtod(b.data, NULL) == vals[k]);
    }
    tdm_json_buf_free(&b);
    assert_null(b.data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_error_position),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_duplicates_and_big),
        cmocka_unit_test(test_prefixes_and_mutations),
        cmocka_unit_test(test_writer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

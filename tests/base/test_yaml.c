/*
 * YAML into the JSON tree: scalars get YAML's types (plain numbers, booleans, null; quoted
 * scalars stay strings), block and flow styles nest, and malformed or unsupported input
 * fails with a line and column.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/yaml.h"

static tdm_json_doc *parse_ok(const char *text)
{
    tdm_json_doc *d = NULL;
    tdm_err err = {{0}};
    tdm_status st = tdm_yaml_parse(text, strlen(text), &d, &err);
    if (st != TDM_OK)
        fprintf(stderr, "unexpected error: %s\n", err.msg);
    assert_int_equal(st, TDM_OK);
    return d;
}

static void test_types(void **state)
{
    (void)state;
    tdm_json_doc *d = parse_ok("# a comment\n"
                               "port: 8080\n"
                               "ratio: 0.25\n"
                               "neg: -3\n"
                               "on: true\n"
                               "off: False\n"
                               "nothing: ~\n"
                               "empty:\n"
                               "name: gateway\n"
                               "quoted: \"8080\"\n"
                               "single: 'true'\n"
                               "version: 1.2.3\n"
                               "hexish: 0x10\n");
    const tdm_json *r = tdm_json_root(d);
    int64_t i;
    assert_true(tdm_json_int(tdm_json_get(r, "port"), &i));
    assert_int_equal(i, 8080);
    assert_float_equal(tdm_json_get(r, "ratio")->number, 0.25, 1e-12);
    assert_true(tdm_json_int(tdm_json_get(r, "neg"), &i));
    assert_int_equal(i, -3);
    assert_int_equal(tdm_json_get(r, "on")->type, TDM_JSON_BOOL);
    assert_true(tdm_json_get(r, "on")->boolean);
    assert_false(tdm_json_get(r, "off")->boolean);
    assert_int_equal(tdm_json_get(r, "nothing")->type, TDM_JSON_NULL);
    assert_int_equal(tdm_json_get(r, "empty")->type, TDM_JSON_NULL);
    assert_string_equal(tdm_json_string(tdm_json_get(r, "name"), NULL), "gateway");
    assert_string_equal(tdm_json_string(tdm_json_get(r, "quoted"), NULL), "8080");
    assert_string_equal(tdm_json_string(tdm_json_get(r, "single"), NULL), "true");
    assert_string_equal(tdm_json_string(tdm_json_get(r, "version"), NULL), "1.2.3");
    assert_string_equal(tdm_json_string(tdm_json_get(r, "hexish"), NULL), "0x10");
    tdm_json_free(d);
}

static void test_nesting(void **state)
{
    (void)state;
    tdm_json_doc *d = parse_ok("limits:\n"
                               "  max_body_bytes: 1024\n"
                               "cuts:\n"
                               "  - name: c1\n"
                               "    tensors: [a, 'b', {name: c, shape: [1, 2]}]\n"
                               "  - name: c2\n"
                               "    tensors:\n"
                               "      - x\n"
                               "labels: [cat, dog]\n"
                               "text: |\n"
                               "  two\n"
                               "  lines\n");
    const tdm_json *r = tdm_json_root(d);
    int64_t v;
    assert_true(tdm_json_int(tdm_json_get(tdm_json_get(r, "limits"), "max_body_bytes"), &v));
    assert_int_equal(v, 1024);
    const tdm_json *cuts = tdm_json_get(r, "cuts");
    assert_int_equal(cuts->type, TDM_JSON_ARRAY);
    assert_int_equal(cuts->len, 2);
    const tdm_json *t = tdm_json_get(&cuts->items[0], "tensors");
    assert_int_equal(t->len, 3);
    assert_string_equal(tdm_json_string(&t->items[1], NULL), "b");
    const tdm_json *shape = tdm_json_get(&t->items[2], "shape");
    assert_int_equal(shape->len, 2);
    assert_string_equal(tdm_json_string(&tdm_json_get(&cuts->items[1], "tensors")->items[0], NULL),
                        "x");
    assert_string_equal(tdm_json_string(tdm_json_get(r, "text"), NULL), "two\nlines\n");
    assert_int_equal(tdm_json_get(r, "labels")->len, 2);
    tdm_json_free(d);
}

static void test_empty_is_object(void **state)
{
    (void)state;
    tdm_json_doc *d = parse_ok("# only a comment\n");
    assert_int_equal(tdm_json_root(d)->type, TDM_JSON_OBJECT);
    assert_int_equal(tdm_json_root(d)->len, 0);
    tdm_json_free(d);
    d = parse_ok("{\"json\": [1, 2]}");
    assert_int_equal(tdm_json_get(tdm_json_root(d), "json")->len, 2);
    tdm_json_free(d);
}

static void expect_error(const char *text, const char *needle)
{
    tdm_json_doc *d = (tdm_json_doc *)1;
    tdm_err err = {{0}};
    assert_int_not_equal(tdm_yaml_parse(text, strlen(text), &d, &err), TDM_OK);
    assert_null(d);
    if (!strstr(err.msg, needle))
        fprintf(stderr, "message '%s' lacks '%s'\n", err.msg, needle);
    assert_non_null(strstr(err.msg, needle));
}

static void test_errors(void **state)
{
    (void)state;
    expect_error("a: 1\n  b: 2\n", "line 2");
    expect_error("a: [1, 2\n", "line");
    expect_error("base: &x 1\nother: *x\n", "anchors");
    expect_error("a: 1\n---\nb: 2\n", "one YAML document");
    expect_error("? [1, 2]\n: v\n", "keys must be scalars");
    tdm_json_doc *d = NULL;
    tdm_err err = {{0}};
    assert_int_equal(tdm_yaml_read_file("/nonexistent/x.yaml", &d, &err), TDM_ERR_IO);
    assert_non_null(strstr(err.msg, "/nonexistent/x.yaml"));
}

static void test_deep_nesting_refused(void **state)
{
    (void)state;
    char buf[400];
    size_t n = 0;
    for (int i = 0; i < 100; i++)
        buf[n++] = '[';
    for (int i = 0; i < 100; i++)
        buf[n++] = ']';
    buf[n] = '\0';
    expect_error(buf, "nesting deeper");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_types),
        cmocka_unit_test(test_nesting),
        cmocka_unit_test(test_empty_is_object),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_deep_nesting_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

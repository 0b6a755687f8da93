/*
 * The acceptance check of the tokenizer: all 201 texts of
 * ../shared/reference/tokenizer_ref.jsonl (SST-2, AG News, CLINC and hard
 * Unicode cases), whose ids Hugging Face tokenizers computed for
 * all-MiniLM-L6-v2, must come out identical: `ids` without truncation and
 * `ids_max256` with max_len 256, one text at a time and as one padded batch.
 * The reference is read with the project's own JSON reader. Skips (77) when
 * ../shared is absent.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "skip.h"
#include "tandem/text.h"

#define REF TDM_SHARED_DIR "/reference/tokenizer_ref.jsonl"
#define MODEL TDM_SHARED_DIR "/tokenizers/all-MiniLM-L6-v2"

typedef struct ref_case {
    char *text;
    size_t len;
    int32_t *ids, *ids256;
    size_t n, n256;
} ref_case;

static ref_case *g_cases;
static size_t g_ncases;
static tdm_tokenizer *g_tok;

static int32_t *read_ids(const tdm_json *arr, size_t *n)
{
    if (arr == NULL || arr->type != TDM_JSON_ARRAY)
        return NULL;
    int32_t *ids = malloc((arr->len + 1) * sizeof *ids);
    for (size_t i = 0; i < arr->len; i++) {
        int64_t v = -1;
        if (!tdm_json_int(&arr->items[i], &v))
            return NULL;
        ids[i] = (int32_t)v;
    }
    *n = arr->len;
    return ids;
}

static int setup(void **state)
{
    (void)state;
    FILE *f = fopen(REF, "rb");
    if (f == NULL)
        return -1;
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    while ((got = getline(&line, &cap, f)) > 0) {
        tdm_json_doc *doc = NULL;
        tdm_err err;
        if (tdm_json_parse(line, (size_t)got, 0, &doc, &err) != TDM_OK) {
            fprintf(stderr, "%s line %zu: %s\n", REF, g_ncases + 1, err.msg);
            return -1;
        }
        const tdm_json *r = tdm_json_root(doc);
        g_cases = realloc(g_cases, (g_ncases + 1) * sizeof *g_cases);
        ref_case *c = &g_cases[g_ncases++];
        const char *text = tdm_json_string(tdm_json_get(r, "text"), &c->len);
        c->ids = read_ids(tdm_json_get(r, "ids"), &c->n);
        c->ids256 = read_ids(tdm_json_get(r, "ids_max256"), &c->n256);
        if (text == NULL || c->ids == NULL || c->ids256 == NULL)
            return -1;
        c->text = malloc(c->len + 1);
        memcpy(c->text, text, c->len + 1);
        tdm_json_free(doc);
    }
    free(line);
    fclose(f);
    tdm_err err;
    if (tdm_tokenizer_load(MODEL, &g_tok, &err) != TDM_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < g_ncases; i++) {
        free(g_cases[i].text);
        free(g_cases[i].ids);
        free(g_cases[i].ids256);
    }
    free(g_cases);
    tdm_tokenizer_free(g_tok);
    return 0;
}

static void describe(const ref_case *c, size_t idx, const int32_t *got, size_t n,
                     const int32_t *want, size_t nwant)
{
    size_t k = 0;
    while (k < n && k < nwant && got[k] == want[k])
        k++;
    const char *tg = k < n ? tdm_tokenizer_id_to_token(g_tok, got[k]) : "(end)";
    const char *tw = k < nwant ? tdm_tokenizer_id_to_token(g_tok, want[k]) : "(end)";
    fail_msg("text %zu (%.60s): %zu ids, want %zu; first difference at %zu: '%s', want '%s'",
             idx + 1, c->text, n, nwant, k, tg ? tg : "?", tw ? tw : "?");
}

static void check_all(size_t max_len)
{
    assert_int_equal(g_ncases, 201);
    size_t mismatches = 0;
    for (size_t i = 0; i < g_ncases; i++) {
        const ref_case *c = &g_cases[i];
        const int32_t *want = max_len ? c->ids256 : c->ids;
        size_t nwant = max_len ? c->n256 : c->n;
        size_t cap = tdm_tokenizer_encode_bound(g_tok, c->len), n = 0;
        int32_t *ids = malloc(cap * sizeof *ids);
        tdm_err err;
        assert_int_equal(tdm_tokenizer_encode(g_tok, c->text, c->len, max_len, ids, cap, &n, &err),
                         TDM_OK);
        if (n != nwant || memcmp(ids, want, n * sizeof *ids) != 0) {
            if (mismatches++ == 0)
                describe(c, i, ids, n, want, nwant);
        }
        free(ids);
    }
    assert_int_equal(mismatches, 0);
}

static void test_ids(void **state)
{
    (void)state;
    check_all(0);
}

static void test_ids_max256(void **state)
{
    (void)state;
    check_all(256);
}

static void test_batch_matches(void **state)
{
    (void)state;
    const char **texts = malloc(g_ncases * sizeof *texts);
    size_t *lens = malloc(g_ncases * sizeof *lens);
    for (size_t i = 0; i < g_ncases; i++) {
        texts[i] = g_cases[i].text;
        lens[i] = g_cases[i].len;
    }
    tdm_token_batch b;
    tdm_err err;
    assert_int_equal(tdm_tokenizer_encode_batch(g_tok, texts, lens, g_ncases, 256, &b, &err),
                     TDM_OK);
    assert_int_equal(b.seq_len, 256); /* the long AG News text is truncated to exactly 256 */
    for (size_t i = 0; i < g_ncases; i++) {
        const ref_case *c = &g_cases[i];
        assert_int_equal(b.lengths[i], c->n256);
        for (size_t j = 0; j < b.seq_len; j++) {
            int64_t id = b.ids[i * b.seq_len + j], m = b.attention_mask[i * b.seq_len + j];
            assert_int_equal(id, j < c->n256 ? c->ids256[j] : 0);
            assert_int_equal(m, j < c->n256);
        }
    }
    tdm_token_batch_free(&b);
    free(texts);
    free(lens);
}

int main(void)
{
    TDM_REQUIRE_PATH(REF);
    TDM_REQUIRE_PATH(MODEL "/vocab.txt");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ids),
        cmocka_unit_test(test_ids_max256),
        cmocka_unit_test(test_batch_matches),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

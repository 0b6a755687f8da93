/*
 * The tokenizer on small hand-made vocabularies written to a temporary
 * directory, where the right ids can be worked out by hand: greedy
 * longest-match-first with ## continuations, [UNK] for unmatched words and
 * words over 100 characters, punctuation and whitespace splitting, added
 * tokens, truncation, batches with padding and mask, each tokenizer.json
 * setting, the vocab.txt-only fallback, and the error messages of broken
 * model directories.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tandem/text.h"

/* Line number = id. */
static const char k_vocab[] = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n"             /* 0-4 */
                              "un\n##aff\n##able\nhello\nworld\n"                /* 5-9 */
                              "!\n,\na\n##a\n##b\n"                              /* 10-14 */
                              "unaff\n##ab\n\xE4\xB8\xAD\n##\xE4\xB8\xAD\ndup\n" /* 15-19 */
                              "dup\n[\n]\nmask\ncafe\n";                         /* 20-24 */

enum {
    PAD,
    UNK,
    CLS,
    SEP,
    MASK,
    UN,
    AFF,
    ABLE,
    HELLO,
    WORLD,
    BANG,
    COMMA,
    A,
    CA,
    CB,
    UNAFF,
    CAB,
    ZH,
    CZH,
    DUP1,
    DUP2,
    LBR,
    RBR,
    MASKW,
    CAFE
};

typedef struct tmpdir {
    char path[64];
    char files[8][32];
    int nfiles;
} tmpdir;

static void put(tmpdir *d, const char *name, const char *data, size_t len)
{
    char p[128];
    snprintf(p, sizeof p, "%s/%s", d->path, name);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
    for (int i = 0; i < d->nfiles; i++)
        if (strcmp(d->files[i], name) == 0)
            return;
    snprintf(d->files[d->nfiles++], sizeof d->files[0], "%s", name);
}

static void puts_file(tmpdir *d, const char *name, const char *text)
{
    put(d, name, text, strlen(text));
}

static void mk(tmpdir *d)
{
    memset(d, 0, sizeof *d);
    snprintf(d->path, sizeof d->path, "/tmp/tdm_tok_XXXXXX");
    assert_non_null(mkdtemp(d->path));
}

static void rm(tmpdir *d)
{
    char p[128];
    for (int i = 0; i < d->nfiles; i++) {
        snprintf(p, sizeof p, "%s/%s", d->path, d->files[i]);
        unlink(p);
    }
    rmdir(d->path);
}

static tdm_tokenizer *load_ok(const tmpdir *d)
{
    tdm_tokenizer *tok = NULL;
    tdm_err err = {{0}};
    if (tdm_tokenizer_load(d->path, &tok, &err) != TDM_OK)
        fail_msg("load: %s", err.msg);
    return tok;
}

static void expect_ids(const tdm_tokenizer *tok, const char *text, size_t max_len,
                       const int32_t *want, size_t nwant, int line)
{
    int32_t ids[512];
    size_t n = 0;
    tdm_err err = {{0}};
    tdm_status st = tdm_tokenizer_encode(tok, text, strlen(text), max_len, ids, 512, &n, &err);
    if (st != TDM_OK)
        fail_msg("line %d: encode failed: %s", line, err.msg);
    bool same = n == nwant && memcmp(ids, want, n * sizeof *ids) == 0;
    if (!same) {
        char got[512] = "";
        for (size_t i = 0; i < n && strlen(got) < 480; i++)
            snprintf(got + strlen(got), sizeof got - strlen(got), " %d", ids[i]);
        fail_msg("line %d: '%s' -> [%s ] (%zu ids, want %zu)", line, text, got, n, nwant);
    }
}

#define IDS(tok, text, max_len, ...)                                            \
    do {                                                                        \
        const int32_t w_[] = {__VA_ARGS__};                                     \
        expect_ids(tok, text, max_len, w_, sizeof w_ / sizeof w_[0], __LINE__); \
    } while (0)

static void test_wordpiece(void **state)
{
    (void)state;
    tmpdir d;
    mk(&d);
    put(&d, "vocab.txt", k_vocab, sizeof k_vocab - 1);
    tdm_tokenizer *tok = load_ok(&d);
    /* Longest match first: "unaff" beats "un" + "##aff". */
    IDS(tok, "unaffable", 0, CLS, UNAFF, ABLE, SEP);
    IDS(tok, "Hello, WORLD!", 0, CLS, HELLO, COMMA, WORLD, BANG, SEP);
    IDS(tok, "aaa", 0, CLS, A, CA, CA, SEP);
    IDS(tok, "abab", 0, CLS, A, CB, CAB, SEP);
    /* An unmatched piece makes the whole word [UNK], not just the rest. */
    IDS(tok, "hello aaxq world", 0, CLS, HELLO, UNK, WORLD, SEP);
    IDS(tok, "", 0, CLS, SEP);
    IDS(tok, " \t\n ", 0, CLS, SEP);
    /* Punctuation splits words, even inside them. */
    IDS(tok, "a,a!a", 0, CLS, A, COMMA, A, BANG, A, SEP);
    /* Accents stripped, case folded (BertTokenizer defaults without tokenizer.json). */
    IDS(tok, "Caf\xC3\xA9 H\xC3\xA9LLO", 0, CLS, CAFE, HELLO, SEP);
    /* CJK characters are words of their own. */
    IDS(tok, "\xE4\xB8\xAD\xE4\xB8\xAD", 0, CLS, ZH, ZH, SEP);
    /* Special tokens typed in the text are matched on the raw text, case-sensitively. */
    IDS(tok, "a[MASK]a", 0, CLS, A, MASK, A, SEP);
    IDS(tok, "[mask]", 0, CLS, LBR, MASKW, RBR, SEP);
    IDS(tok, "[CLS][SEP]", 0, CLS, CLS, SEP, SEP);
    /* A later duplicate in vocab.txt wins. */
    IDS(tok, "dup", 0, CLS, DUP2, SEP);
    assert_int_equal(tdm_tokenizer_token_to_id(tok, "dup"), DUP2);

    /* 100 characters is a word; 101 is [UNK]. */
    char word[128];
    memset(word, 'a', 101);
    word[100] = '\0';
    int32_t ids[128];
    size_t n = 0;
    tdm_err err;
    assert_int_equal(tdm_tokenizer_encode(tok, word, 100, 0, ids, 128, &n, &err), TDM_OK);
    assert_int_equal(n, 102);
    assert_int_equal(ids[1], A);
    assert_int_equal(ids[100], CA);
    word[100] = 'a';
    word[101] = '\0';
    IDS(tok, word, 0, CLS, UNK, SEP);
    /* Queries. */
    assert_int_equal(tdm_tokenizer_vocab_size(tok), 25);
    assert_int_equal(tdm_tokenizer_pad_id(tok), PAD);
    assert_string_equal(tdm_tokenizer_id_to_token(tok, AFF), "##aff");
    assert_null(tdm_tokenizer_id_to_token(tok, 25));
    assert_null(tdm_tokenizer_id_to_token(tok, -1));
    assert_int_equal(tdm_tokenizer_token_to_id(tok, "nope"), -1);
    tdm_tokenizer_free(tok);
    rm(&d);
}

static void test_truncation_and_buffers(void **state)
{
    (void)state;
    tmpdir d;
    mk(&d);
    put(&d, "vocab.txt", k_vocab, sizeof k_vocab - 1);
    tdm_tokenizer *tok = load_ok(&d);
    IDS(tok, "a a a a a", 4, CLS, A, A, SEP);
    IDS(tok, "a a a a a", 2, CLS, SEP);
    IDS(tok, "a a a a a", 7, CLS, A, A, A, A, A, SEP);
    IDS(tok, "a a a a a", 100, CLS, A, A, A, A, A, SEP);
    /* A word's pieces may be cut in the middle, like HF does. */
    IDS(tok, "unaffable a", 3, CLS, UNAFF, SEP);
    int32_t ids[8];
    size_t n = 0;
    tdm_err err;
    assert_int_equal(tdm_tokenizer_encode(tok, "a", 1, 1, ids, 8, &n, &err), TDM_ERR_INVALID_ARG);
    assert_non_null(strstr(err.msg, "special tokens"));
    /* Too small a buffer: the count is still reported, and the head written. */
    assert_int_equal(tdm_tokenizer_encode(tok, "a a a", 5, 0, ids, 2, &n, &err),
                     TDM_ERR_INVALID_ARG);
    assert_int_equal(n, 5);
    assert_int_equal(ids[0], CLS);
    assert_int_equal(ids[1], A);
    assert_true(tdm_tokenizer_encode_bound(tok, 5) >= 5);
    /* Invalid UTF-8 names the byte. */
    assert_int_equal(tdm_tokenizer_encode(tok, "ab\xC3(", 4, 0, ids, 8, &n, &err),
                     TDM_ERR_INVALID_ARG);
    assert_non_null(strstr(err.msg, "byte 2"));
    tdm_tokenizer_free(tok);
    rm(&d);
}

static void test_batch(void **state)
{
    (void)state;
    tmpdir d;
    mk(&d);
    put(&d, "vocab.txt", k_vocab, sizeof k_vocab - 1);
    tdm_tokenizer *tok = load_ok(&d);
    const char *texts[3] = {"hello", "hello world !", ""};
    size_t lens[3] = {5, 13, 0};
    tdm_token_batch b;
    tdm_err err;
    assert_int_equal(tdm_tokenizer_encode_batch(tok, texts, lens, 3, 0, &b, &err), TDM_OK);
    assert_int_equal(b.n, 3);
    assert_int_equal(b.seq_len, 5);
    const int64_t want_ids[15] = {CLS,  HELLO, SEP, PAD, PAD, CLS, HELLO, WORLD,
                                  BANG, SEP,   CLS, SEP, PAD, PAD, PAD};
    const int64_t want_mask[15] = {1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0};
    for (int i = 0; i < 15; i++) {
        assert_int_equal(b.ids[i], want_ids[i]);
        assert_int_equal(b.attention_mask[i], want_mask[i]);
        assert_int_equal(b.token_type_ids[i], 0);
    }
    assert_int_equal(b.lengths[0], 3);
    assert_int_equal(b.lengths[1], 5);
    assert_int_equal(b.lengths[2], 2);
    tdm_token_batch_free(&b);
    assert_null(b.ids);
    /* Truncation applies per row. */
    assert_int_equal(tdm_tokenizer_encode_batch(tok, texts, lens, 3, 3, &b, &err), TDM_OK);
    assert_int_equal(b.seq_len, 3);
    assert_int_equal(b.ids[3 + 1], HELLO);
    assert_int_equal(b.ids[3 + 2], SEP);
    tdm_token_batch_free(&b);
    /* An error names the text. */
    const char *bad[2] = {"ok", "\xFF"};
    size_t bad_lens[2] = {2, 1};
    assert_int_equal(tdm_tokenizer_encode_batch(tok, bad, bad_lens, 2, 0, &b, &err),
                     TDM_ERR_INVALID_ARG);
    assert_non_null(strstr(err.msg, "text 1"));
    assert_null(b.ids);
    /* An empty batch is fine. */
    assert_int_equal(tdm_tokenizer_encode_batch(tok, NULL, NULL, 0, 0, &b, &err), TDM_OK);
    assert_int_equal(b.n, 0);
    tdm_token_batch_free(&b);
    tdm_tokenizer_free(tok);
    rm(&d);
}

/* A tokenizer.json with the given normalizer settings (JSON text) and post-processor. */
static void write_tokenizer_json(tmpdir *d, const char *normalizer, const char *post,
                                 const char *added, bool with_vocab)
{
    char buf[4096];
    snprintf(buf, sizeof buf,
             "{\"version\": \"1.0\", \"truncation\": {\"max_length\": 3}, \"added_tokens\": %s,"
             " \"normalizer\": %s, \"pre_tokenizer\": {\"type\": \"BertPreTokenizer\"},"
             " \"post_processor\": %s, \"padding\": {\"pad_id\": 7},"
             " \"model\": {\"type\": \"WordPiece\", \"unk_token\": \"[UNK]\","
             " \"continuing_subword_prefix\": \"##\", \"max_input_chars_per_word\": 5%s}}",
             added, normalizer, post,
             with_vocab ? ", \"vocab\": {\"[UNK]\": 0, \"<s>\": 1, \"</s>\": 2, \"hello\": 3,"
                          " \"H\\u00e9llo\": 4, \"h\\u00e9llo\": 5, \"Hello\": 6, \"x\": 8,"
                          " \"##x\": 9, \"<m>\": 10, \"\\u4e2d\": 11, \"##\\u4e2d\": 12}"
                        : "");
    puts_file(d, "tokenizer.json", buf);
}

static void test_tokenizer_json(void **state)
{
    (void)state;
    tmpdir d;
    mk(&d);
    const char *roberta = "{\"type\": \"RobertaProcessing\", \"cls\": [\"<s>\", 1],"
                          " \"sep\": [\"</s>\", 2]}";
    const char *lower =
        "{\"type\": \"BertNormalizer\", \"lowercase\": true, \"strip_accents\": null}";
    write_tokenizer_json(&d, lower, roberta, "[]", true);
    tdm_tokenizer *tok = load_ok(&d);
    /* Vocabulary from model.vocab (no vocab.txt); truncation in the file is ignored. */
    IDS(tok, "H\xC3\xA9llo hello x xx", 0, 1, 3, 3, 8, 8, 9, 2);
    /* max_input_chars_per_word = 5. */
    IDS(tok, "xxxxx", 0, 1, 8, 9, 9, 9, 9, 2);
    IDS(tok, "xxxxxx", 0, 1, 0, 2);
    IDS(tok, "\xE4\xB8\xAD\xE4\xB8\xAD", 0, 1, 11, 11, 2);
    assert_int_equal(tdm_tokenizer_pad_id(tok), 7);
    tdm_tokenizer_free(tok);

    /* strip_accents false, lowercase true: "héllo". */
    write_tokenizer_json(&d, "{\"type\": \"BertNormalizer\", \"strip_accents\": false}", roberta,
                         "[]", true);
    tok = load_ok(&d);
    IDS(tok, "H\xC3\xA9llo", 0, 1, 5, 2);
    tdm_tokenizer_free(tok);

    /* lowercase false (strip_accents follows it: off). */
    write_tokenizer_json(&d, "{\"type\": \"BertNormalizer\", \"lowercase\": false}", roberta, "[]",
                         true);
    tok = load_ok(&d);
    IDS(tok, "H\xC3\xA9llo Hello hello", 0, 1, 4, 6, 3, 2);
    tdm_tokenizer_free(tok);

    /* handle_chinese_chars false: the ideographs form one word. No post-processor: nothing
     * added. */
    write_tokenizer_json(&d, "{\"type\": \"BertNormalizer\", \"handle_chinese_chars\": false}",
                         "null", "[]", true);
    tok = load_ok(&d);
    IDS(tok, "\xE4\xB8\xAD\xE4\xB8\xAD", 0, 11, 12);
    IDS(tok, "x", 1, 8);
    /* max_input_chars_per_word counts characters: 5 three-byte ones are a word, 6 are not. */
    IDS(tok, "\xE4\xB8\xAD\xE4\xB8\xAD\xE4\xB8\xAD\xE4\xB8\xAD\xE4\xB8\xAD", 0, 11, 12, 12, 12, 12);
    IDS(tok, "\xE4\xB8\xAD\xE4\xB8\xAD\xE4\xB8\xAD\xE4\xB8\xAD\xE4\xB8\xAD\xE4\xB8\xAD", 0, 0);
    tdm_tokenizer_free(tok);

    /* A TemplateProcessing and an added token that matches after normalization. */
    const char *tmpl = "{\"type\": \"TemplateProcessing\", \"single\": ["
                       "{\"SpecialToken\": {\"id\": \"<s>\", \"type_id\": 0}},"
                       "{\"Sequence\": {\"id\": \"A\", \"type_id\": 0}},"
                       "{\"SpecialToken\": {\"id\": \"</s>\", \"type_id\": 0}}],"
                       " \"special_tokens\": {\"<s>\": {\"ids\": [1]}, \"</s>\": {\"ids\": [2]}}}";
    const char *added = "[{\"id\": 10, \"content\": \"<m>\", \"normalized\": true}]";
    write_tokenizer_json(&d, lower, tmpl, added, true);
    tok = load_ok(&d);
    IDS(tok, "x<M>x", 0, 1, 8, 10, 8, 2); /* "<M>" lowercases to "<m>" */
    tdm_tokenizer_free(tok);
    /* The same token with normalized=false is matched in the raw text only. */
    added = "[{\"id\": 10, \"content\": \"<m>\", \"normalized\": false}]";
    write_tokenizer_json(&d, lower, tmpl, added, true);
    tok = load_ok(&d);
    IDS(tok, "x<m>x", 0, 1, 8, 10, 8, 2);
    IDS(tok, "x<M>x", 0, 1, 8, 0, 0, 0, 8, 2); /* '<' 'm' '>' are not in the vocabulary */
    tdm_tokenizer_free(tok);
    rm(&d);
}

static void expect_load_error(const tmpdir *d, tdm_status want, const char *what)
{
    tdm_tokenizer *tok = (tdm_tokenizer *)&tok;
    tdm_err err = {{0}};
    tdm_status st = tdm_tokenizer_load(d->path, &tok, &err);
    if (st != want)
        fail_msg("load: status %d (%s), want %d", (int)st, err.msg, (int)want);
    assert_null(tok);
    if (strstr(err.msg, what) == NULL)
        fail_msg("message '%s' lacks '%s'", err.msg, what);
}

static void test_load_errors(void **state)
{
    (void)state;
    tmpdir d;
    mk(&d);
    expect_load_error(&d, TDM_ERR_NOT_FOUND, "neither vocab.txt nor tokenizer.json");
    puts_file(&d, "vocab.txt", "a\nb\n");
    expect_load_error(&d, TDM_ERR_PARSE, "\"[CLS]\"");
    puts_file(&d, "vocab.txt", "[CLS]\n[SEP]\n");
    expect_load_error(&d, TDM_ERR_PARSE, "\"[UNK]\" is not in the vocabulary");
    puts_file(&d, "vocab.txt", "[UNK]\n[CLS]\nok\n\xC3\x28\n[SEP]\n");
    expect_load_error(&d, TDM_ERR_PARSE, "line 4 is not valid UTF-8");
    puts_file(&d, "vocab.txt", "");
    expect_load_error(&d, TDM_ERR_PARSE, "empty");
    /* CRLF line ends are accepted. */
    puts_file(&d, "vocab.txt", "[UNK]\r\n[CLS]\r\n[SEP]\r\nok\r\n");
    tdm_tokenizer *tok = load_ok(&d);
    IDS(tok, "ok", 0, 1, 3, 2);
    tdm_tokenizer_free(tok);
    /* tokenizer_config.json names other special tokens. */
    puts_file(&d, "tokenizer_config.json",
              "{\"do_lower_case\": false, \"cls_token\": {\"content\": \"ok\"}}");
    tok = load_ok(&d);
    IDS(tok, "OK ok", 0, 3, 0, 3, 2);
    tdm_tokenizer_free(tok);
    puts_file(&d, "tokenizer_config.json", "{\"do_lower_case\": \"yes\"}");
    expect_load_error(&d, TDM_ERR_PARSE, "do_lower_case must be a boolean");

    puts_file(&d, "tokenizer.json", "{\"model\": {");
    expect_load_error(&d, TDM_ERR_PARSE, "tokenizer.json: line 1, column");
    write_tokenizer_json(&d, "{\"type\": \"NFKC\"}", "null", "[]", true);
    expect_load_error(&d, TDM_ERR_UNSUPPORTED, "normalizer.type \"NFKC\"");
    write_tokenizer_json(&d, "{\"type\": \"BertNormalizer\", \"lowercase\": 1}", "null", "[]",
                         true);
    expect_load_error(&d, TDM_ERR_PARSE, "normalizer.lowercase must be a boolean");
    write_tokenizer_json(&d, "null", "{\"type\": \"ByteLevel\"}", "[]", true);
    expect_load_error(&d, TDM_ERR_UNSUPPORTED, "post_processor.type \"ByteLevel\"");
    write_tokenizer_json(&d, "null", "null",
                         "[{\"id\": 10, \"content\": \"<m>\", \"single_word\": true}]", true);
    expect_load_error(&d, TDM_ERR_UNSUPPORTED, "single_word");
    write_tokenizer_json(&d, "null", "null", "[{\"id\": -1, \"content\": \"<m>\"}]", true);
    expect_load_error(&d, TDM_ERR_PARSE, "added_tokens[0]");
    /* With vocab.txt present, it provides the vocabulary even when tokenizer.json has one. */
    write_tokenizer_json(&d, "null", "null", "[]", false);
    tok = load_ok(&d);
    IDS(tok, "ok", 0, 3);
    tdm_tokenizer_free(tok);
    rm(&d);
    /* Without vocab.txt, a tokenizer.json without model.vocab is an error. */
    mk(&d);
    write_tokenizer_json(&d, "null", "null", "[]", false);
    expect_load_error(&d, TDM_ERR_PARSE, "model.vocab");
    write_tokenizer_json(&d, "null", "null", "[]", true);
    tok = load_ok(&d);
    tdm_tokenizer_free(tok);
    rm(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wordpiece),   cmocka_unit_test(test_truncation_and_buffers),
        cmocka_unit_test(test_batch),       cmocka_unit_test(test_tokenizer_json),
        cmocka_unit_test(test_load_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * BertNormalizer edge cases, one code point sequence in and the expected one
 * out, with expectations written from the Unicode data by hand (not from
 * this code): cleaning, whitespace kinds, CJK spacing, NFD + Mn removal with
 * canonical reordering, Hangul, full lowercase (U+0130), the order of the
 * steps, each switch on its own, and the Unicode-version choices that match
 * Hugging Face tokenizers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text/text_internal.h"
#include "text/unicode.h"

#define END 0xFFFFFFFFu

static const tdm_bert_norm k_bert = {true, true, true, true};

static size_t count(const uint32_t *s)
{
    size_t n = 0;
    while (s[n] != END)
        n++;
    return n;
}

static void check(const tdm_bert_norm *opt, const uint32_t *in, const uint32_t *want, int line)
{
    tdm_u32vec tmp = {0}, out = {0};
    size_t n = count(in), m = count(want);
    assert_true(tdm_bert_normalize(opt, in, n, &tmp, &out));
    bool same = out.n == m && (m == 0 || memcmp(out.v, want, m * sizeof *want) == 0);
    if (!same) {
        char got[512] = "", exp[512] = "";
        for (size_t i = 0; i < out.n && strlen(got) < 480; i++)
            snprintf(got + strlen(got), sizeof got - strlen(got), " %04X", out.v[i]);
        for (size_t i = 0; i < m && strlen(exp) < 480; i++)
            snprintf(exp + strlen(exp), sizeof exp - strlen(exp), " %04X", want[i]);
        fail_msg("line %d: got [%s ], want [%s ]", line, got, exp);
    }
    free(tmp.v);
    free(out.v);
}

#define CHECK(opt, in, ...)                          \
    do {                                             \
        const uint32_t in_[] = {in, END};            \
        const uint32_t want_[] = {__VA_ARGS__, END}; \
        check(opt, in_, want_, __LINE__);            \
    } while (0)
#define S(...) __VA_ARGS__

static void test_ascii(void **state)
{
    (void)state;
    CHECK(&k_bert, S('H', 'i', ' ', 'A', 'Z', '!'), 'h', 'i', ' ', 'a', 'z', '!');
    /* \t \n \r become spaces; other controls (incl. \v, \f, DEL, NUL) are dropped. */
    CHECK(&k_bert, S('a', '\t', 'b', '\n', 'c', '\r', 'd'), 'a', ' ', 'b', ' ', 'c', ' ', 'd');
    CHECK(&k_bert, S('a', 0x0B, 0x0C, 0x7F, 0x00, 0x01, 0x1F, 'b'), 'a', 'b');
    /* Without clean_text the controls stay. */
    const tdm_bert_norm keep = {false, true, true, true};
    CHECK(&keep, S('A', 0x01, '\t'), 'a', 0x01, '\t');
    /* Without lowercase the case stays (and the ASCII fast path agrees with the slow one). */
    const tdm_bert_norm cased = {true, true, true, false};
    CHECK(&cased, S('A', 'b'), 'A', 'b');
    CHECK(&cased, S('A', 0x00E9), 'A', 'e');
}

static void test_clean_text(void **state)
{
    (void)state;
    /* Dropped: U+FFFD, Cf (soft hyphen, ZWSP, ZWJ, BOM, LRM, Arabic letter mark), Co (private
     * use), C1 controls (NEL is also whitespace but is a control first). */
    CHECK(&k_bert, S('a', 0xFFFD, 0x00AD, 0x200B, 0x200D, 0xFEFF, 0x200E, 0x061C, 'b'), 'a', 'b');
    CHECK(&k_bert, S('a', 0xE000, 0xF8FF, 0xF0000, 0x10FFFD, 0x0085, 0x009F, 'b'), 'a', 'b');
    /* Whitespace of every kind (Zs, line/paragraph separators) becomes ' '. */
    CHECK(&k_bert, S('a', 0x00A0, 0x1680, 0x2003, 0x202F, 0x205F, 0x3000, 0x2028, 0x2029, 'b'), 'a',
          ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', 'b');
    /* U+180E (Mongolian vowel separator) is Cf since Unicode 6.3: dropped, not a space. */
    CHECK(&k_bert, S('a', 0x180E, 'b'), 'a', 'b');
    /* Unassigned code points are not "other" for HF: kept. */
    CHECK(&k_bert, S(0x0378, 0xFFFF), 0x0378, 0xFFFF);
}

static void test_chinese(void **state)
{
    (void)state;
    CHECK(&k_bert, S('a', 0x4E2D, 0x6587, 'b'), 'a', ' ', 0x4E2D, ' ', ' ', 0x6587, ' ', 'b');
    /* HF's ranges: extension E starts at U+2B820 but HF's range starts at U+2B920. */
    CHECK(&k_bert, S(0x2B820), 0x2B820);
    CHECK(&k_bert, S(0x2B920), ' ', 0x2B920, ' ');
    CHECK(&k_bert, S(0x20000, 0x3400), ' ', 0x20000, ' ', ' ', 0x3400, ' ');
    /* Kana and Hangul are not "Chinese". */
    CHECK(&k_bert, S(0x3042), 0x3042);
    /* A compatibility ideograph is spaced, then NFD maps it to the unified one. */
    CHECK(&k_bert, S(0xF900), ' ', 0x8C48, ' ');
    const tdm_bert_norm off = {true, false, true, true};
    CHECK(&off, S('a', 0x4E2D, 'b'), 'a', 0x4E2D, 'b');
}

static void test_strip_accents(void **state)
{
    (void)state;
    /* "Héllo Wörld" */
    CHECK(&k_bert, S('H', 0x00E9, 'l', 'l', 'o', ' ', 'W', 0x00F6, 'r', 'l', 'd'), 'h', 'e', 'l',
          'l', 'o', ' ', 'w', 'o', 'r', 'l', 'd');
    /* Already decomposed marks are dropped too; so are stacked ones. */
    CHECK(&k_bert, S('e', 0x0301, 'n', 0x0303, 0x0323), 'e', 'n');
    /* Recursive decomposition: U+1E08 (C cedilla acute) -> C U+0327 U+0301. */
    CHECK(&k_bert, S(0x1E08), 'c');
    /* U+1F82 -> alpha + 3 marks. */
    CHECK(&k_bert, S(0x1F82), 0x03B1);
    /* Singletons: Kelvin sign -> K -> k; Ohm -> Omega -> omega; Angstrom -> A ring -> a. */
    CHECK(&k_bert, S(0x212A, 0x2126, 0x212B), 'k', 0x03C9, 'a');
    /* Compatibility forms are not decomposed (NFD, not NFKD). */
    CHECK(&k_bert, S(0xFB01, 0x00BD, 0x2460), 0xFB01, 0x00BD, 0x2460);
    /* Hangul: U+D55C -> U+1112 U+1161 U+11AB (Jamo are letters: kept); no final consonant. */
    CHECK(&k_bert, S(0xD55C, 0xAC00), 0x1112, 0x1161, 0x11AB, 0x1100, 0x1161);
    /* Japanese dakuten: U+3067 -> U+3066 U+3099 (Mn) -> U+3066. */
    CHECK(&k_bert, S(0x3067, 0x3059), 0x3066, 0x3059);
    /* Spacing marks (Mc) stay: Tamil U+0BCA -> U+0BC6 U+0BBE. */
    CHECK(&k_bert, S(0x0B95, 0x0BCA), 0x0B95, 0x0BC6, 0x0BBE);
    /* strip_accents off: no NFD, marks stay. */
    const tdm_bert_norm keep = {true, true, false, true};
    CHECK(&keep, S('E', 0x0301, 0x00C9), 'e', 0x0301, 0x00E9);
}

static void test_reordering(void **state)
{
    (void)state;
    /* Musical symbols: U+1D16D (Mc, ccc 226) before U+1D165 (Mc, ccc 216) is reordered by
     * NFD; both are spacing marks, so both survive and the order is visible. */
    CHECK(&k_bert, S(0x1D158, 0x1D16D, 0x1D165), 0x1D158, 0x1D165, 0x1D16D);
    /* Equal classes keep their order (stable). */
    CHECK(&k_bert, S(0x1D158, 0x1D166, 0x1D165), 0x1D158, 0x1D166, 0x1D165);
    /* Reordering happens across Mn that are then dropped. */
    CHECK(&k_bert, S('a', 0x1D16D, 0x0301, 0x1D165, 0x0316), 'a', 0x1D165, 0x1D16D);
    /* The canonical decomposition U+1D160 -> 1D158 1D165 1D16E takes part in it. */
    CHECK(&k_bert, S(0x1D160, 0x1D165), 0x1D158, 0x1D165, 0x1D16E, 0x1D165);
    /* A very long run (hostile input) takes the n log n path and stays stable. */
    enum { N = 1000 };
    uint32_t *in = malloc((N + 2) * sizeof *in), *want = malloc((N + 2) * sizeof *want);
    in[0] = want[0] = 'x';
    for (int i = 1; i <= N; i++)
        in[i] = i % 2 ? 0x1D16D : 0x1D165; /* 226, 216, 226, ... */
    for (int i = 1; i <= N; i++)
        want[i] = i <= N / 2 ? 0x1D165 : 0x1D16D;
    in[N + 1] = want[N + 1] = END;
    check(&k_bert, in, want, __LINE__);
    free(in);
    free(want);
}

static void test_lowercase(void **state)
{
    (void)state;
    const tdm_bert_norm low = {true, true, false, true};
    /* U+0130 lowercases to two characters: i + combining dot above. */
    CHECK(&low, S(0x0130), 'i', 0x0307);
    /* With strip_accents, NFD runs first: U+0130 -> I + U+0307 (dropped) -> i. */
    CHECK(&k_bert, S(0x0130, 's'), 'i', 's');
    /* Per character: no final-sigma rule, capital sharp s -> sharp s, titlecase dz. */
    CHECK(&low, S(0x03A3, 0x03A3), 0x03C3, 0x03C3);
    CHECK(&low, S(0x1E9E, 0x01C5, 0x0400, 0x10400), 0x00DF, 0x01C6, 0x0450, 0x10428);
    /* Roman numeral and circled letters have lowercase forms too. */
    CHECK(&low, S(0x216B, 0x24B6), 0x217B, 0x24D0);
}

static void test_unicode_versions(void **state)
{
    (void)state;
    /* HF's category tables are Unicode 8.0: U+08D4 (Mn since 9.0) is kept, U+1885 (Lo in
     * 8.0, Mn since 9.0) is kept, U+1734 (Mn in 8.0, Mc since 14.0) is stripped. */
    CHECK(&k_bert, S('a', 0x08D4, 'b', 0x1885, 'c', 0x1734), 'a', 0x08D4, 'b', 0x1885, 'c');
    /* ...but its NFD is Unicode 9.0, where U+08D4 has combining class 230: it is reordered
     * after U+1D165 (216) although it is kept. */
    CHECK(&k_bert, S('a', 0x08D4, 0x1D165), 'a', 0x1D165, 0x08D4);
    /* U+08E2 (Cf, new in 9.0) is unknown to HF's tables: kept. */
    CHECK(&k_bert, S(0x08E2), 0x08E2);
    /* Lowercase follows current Unicode (Rust std): U+2C2F (new in 14.0) -> U+2C5F. */
    CHECK(&k_bert, S(0x2C2F), 0x2C5F);
    /* Flags of the pre-tokenizer: U+166D was Po in 8.0, U+111C9 too. */
    assert_true(tdm_uc_get(0x166D)->flags & TDM_UC_PUNCT);
    assert_true(tdm_uc_get(0x111C9)->flags & TDM_UC_PUNCT);
    assert_false(tdm_uc_get(0x2E4F)->flags & TDM_UC_PUNCT); /* Po, but new in 11.0 */
    assert_true(tdm_uc_get(0x00BF)->flags & TDM_UC_PUNCT);  /* inverted question mark */
    assert_false(tdm_uc_get(0x20AC)->flags & TDM_UC_PUNCT); /* euro sign: Sc */
    assert_true(tdm_uc_get('$')->flags & TDM_UC_PUNCT);     /* ASCII symbols count */
    assert_true(tdm_uc_get(0x3000)->flags & TDM_UC_WS);
    assert_false(tdm_uc_get(0x200B)->flags & TDM_UC_WS);
}

static void test_utf8(void **state)
{
    (void)state;
    tdm_u32vec v = {0};
    size_t bad = 0;
    const char ok[] = "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80";
    assert_true(tdm_utf8_to_u32(ok, sizeof ok - 1, &v, &bad));
    assert_int_equal(v.n, 4);
    assert_int_equal(v.v[1], 0xE9);
    assert_int_equal(v.v[2], 0x20AC);
    assert_int_equal(v.v[3], 0x1F600);
    static const struct {
        const char *s;
        size_t len, at;
    } bads[] = {
        {"ab\x80", 3, 2},           {"\xC0\x80", 2, 0}, {"x\xED\xA0\x80", 4, 1},
        {"\xF4\x90\x80\x80", 4, 0}, {"\xE2\x82", 2, 0}, {"\xF8\x88\x80\x80\x80", 5, 0},
        {"ok\xE0\x9F\xBF", 5, 2}, /* overlong 3-byte */
    };
    for (size_t k = 0; k < sizeof bads / sizeof bads[0]; k++) {
        assert_false(tdm_utf8_to_u32(bads[k].s, bads[k].len, &v, &bad));
        assert_int_equal(bad, bads[k].at);
        assert_int_equal(tdm_utf8_invalid_at(bads[k].s, bads[k].len), bads[k].at);
    }
    free(v.v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ascii),
        cmocka_unit_test(test_clean_text),
        cmocka_unit_test(test_chinese),
        cmocka_unit_test(test_strip_accents),
        cmocka_unit_test(test_reordering),
        cmocka_unit_test(test_lowercase),
        cmocka_unit_test(test_unicode_versions),
        cmocka_unit_test(test_utf8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

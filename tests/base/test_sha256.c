/*
 * SHA-256 against the FIPS 180-4 examples and the one-million-'a' vector, fed
 * in odd-sized pieces so that every block-boundary path of update runs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/sha256.h"

static void hex_of(const char *msg, size_t len, size_t piece, char *hex)
{
    tdm_sha256_ctx c;
    tdm_sha256_init(&c);
    for (size_t off = 0; off < len; off += piece)
        tdm_sha256_update(&c, msg + off, len - off < piece ? len - off : piece);
    uint8_t d[TDM_SHA256_LEN];
    tdm_sha256_final(&c, d);
    tdm_sha256_hex(d, hex);
}

static void test_vectors(void **state)
{
    (void)state;
    static const struct {
        const char *msg, *hex;
    } v[] = {
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
        {"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqr"
         "lmnopqrsmnopqrstnopqrstu",
         "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"},
    };
    char hex[TDM_SHA256_HEX_LEN + 1];
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        for (size_t piece = 1; piece <= 130; piece += 43) {
            hex_of(v[i].msg, strlen(v[i].msg), piece, hex);
            assert_string_equal(hex, v[i].hex);
        }
}

static void test_million_a(void **state)
{
    (void)state;
    static char a[1000000];
    memset(a, 'a', sizeof a);
    char hex[TDM_SHA256_HEX_LEN + 1];
    hex_of(a, sizeof a, 4097, hex);
    assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

static void test_file(void **state)
{
    (void)state;
    char path[] = "/tmp/tdm_sha256_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "wb");
    fputs("abc", f);
    fclose(f);
    char hex[TDM_SHA256_HEX_LEN + 1];
    tdm_err err;
    assert_int_equal(tdm_sha256_file(path, hex, &err), TDM_OK);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    remove(path);
    assert_int_equal(tdm_sha256_file(path, hex, &err), TDM_ERR_IO);
    assert_non_null(strstr(err.msg, path));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_million_a),
        cmocka_unit_test(test_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

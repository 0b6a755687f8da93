/*
 * Corpus regression: every file of fuzz/corpus/codec/ goes through the
 * fuzzer's own checks (the fuzz target is compiled into this test), so an
 * input that once crashed or broke a contract is replayed in every CI run,
 * with or without clang and libFuzzer. Files named valid-* are frames written
 * by the encoder and must also decode successfully: they pin the format, so a
 * change that breaks old frames fails here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <dirent.h>

#include "../../fuzz/fuzz_codec.c"
#include "skip.h"

#define CORPUS_DIR TDM_SOURCE_DIR "/fuzz/corpus/codec"

static uint8_t *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 4096, n = 0;
    uint8_t *buf = malloc(cap);
    size_t got;
    while (buf != NULL && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            cap *= 2;
            uint8_t *nb = realloc(buf, cap);
            if (nb == NULL)
                free(buf);
            buf = nb;
        }
    }
    fclose(f);
    *len = n;
    return buf;
}

static void test_corpus(void **state)
{
    (void)state;
    DIR *d = opendir(CORPUS_DIR);
    assert_non_null(d);
    size_t files = 0, valid = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", CORPUS_DIR, e->d_name);
        size_t len = 0;
        uint8_t *buf = read_all(path, &len);
        assert_non_null(buf);
        LLVMFuzzerTestOneInput(buf, len);
        if (strncmp(e->d_name, "valid-", 6) == 0) {
            tdm_tensor out;
            tdm_err err;
            if (tdm_codec_decode(buf, len, &out, FUZZ_LIMIT, &err) != TDM_OK)
                fail_msg("%s: %s", e->d_name, err.msg);
            tdm_tensor_free(&out);
            valid++;
        }
        free(buf);
        files++;
    }
    closedir(d);
    print_message("%zu corpus files, %zu valid frames\n", files, valid);
    assert_true(files >= 10);
    assert_true(valid >= 8);
}

int main(void)
{
    TDM_REQUIRE_PATH(CORPUS_DIR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corpus),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

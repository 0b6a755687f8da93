/*
 * Regression test over the fuzz corpora (fuzz/corpus/onnx, fuzz/corpus/npy, and
 * every other fuzz/corpus/<name>/ as extra hostile input).
 *
 * The corpora hold the seeds and every input a fuzzer ever crashed on. This
 * test replays all of them through both parsers in the normal build (and
 * under ASan in the sanitizer build), so a fixed crash stays fixed without
 * needing clang or libFuzzer. The only expectation is "no crash, and a
 * consistent status": a success yields a graph or tensor, a failure a
 * message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/onnx/onnx.h"
#include "tandem/graph.h"
#include "tandem/npy.h"
#include "engine/safetensors.h"

static uint8_t *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    if (fseek(f, 0, SEEK_END) != 0) {
        fclose(f);
        return NULL;
    }
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    /* exactly the file's size, so ASan sees any overread */
    uint8_t *b = malloc(sz > 0 ? (size_t)sz : 1);
    *n = b != NULL && sz > 0 ? fread(b, 1, (size_t)sz, f) : 0;
    fclose(f);
    return b;
}

static void feed(const uint8_t *b, size_t n, int *loaded)
{
    tdm_load_options raw = {.no_optimize = true};
    tdm_graph *g = NULL;
    tdm_err e = {{0}};
    if (tdm_graph_load_buffer(b, n, NULL, &raw, &g, &e) == TDM_OK) {
        assert_non_null(g);
        tdm_graph_stats st;
        tdm_graph_get_stats(g, &st);
        tdm_graph_free(g);
        (*loaded)++;
    } else {
        assert_null(g);
        assert_true(e.msg[0] != '\0');
    }
    /* and with the passes, as a user would load it */
    if (tdm_graph_load_buffer(b, n, NULL, NULL, &g, &e) == TDM_OK)
        tdm_graph_free(g);
    tdm_tensor t;
    char *name = NULL;
    if (tdm_onnx_parse_tensor(b, n, &t, &name, &e) == TDM_OK)
        tdm_tensor_free(&t);
    else
        assert_null(t.data);
    free(name);
    if (tdm_npy_parse(b, n, &t, &e) == TDM_OK) {
        tdm_tensor_free(&t);
        (*loaded)++;
    } else {
        assert_null(t.data);
    }
    /* the safetensors reader: whatever opens must be readable entry by entry */
    tdm_safetensors *sf = NULL;
    if (tdm_safetensors_open_buffer(b, n, NULL, &sf, &e) == TDM_OK) {
        for (int i = 0; i < tdm_safetensors_count(sf); i++)
            if (tdm_safetensors_get(sf, tdm_safetensors_info(sf, i)->name, &t, &e) == TDM_OK)
                tdm_tensor_free(&t);
        tdm_safetensors_free(sf);
    } else {
        assert_null(sf);
    }
}

static int replay_dir(const char *dir, int *files)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int loaded = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        size_t n = 0;
        uint8_t *b = slurp(path, &n);
        if (b == NULL)
            continue;
        feed(b, n, &loaded);
        free(b);
        (*files)++;
    }
    closedir(d);
    return loaded;
}

static void test_onnx_corpus(void **state)
{
    (void)state;
    int files = 0;
    int loaded = replay_dir(TDM_SOURCE_DIR "/fuzz/corpus/onnx", &files);
    printf("onnx corpus: %d files, %d loaded\n", files, loaded);
    assert_true(files >= 20);
    assert_true(loaded >= 5); /* the seeds include valid models */
}

static void test_npy_corpus(void **state)
{
    (void)state;
    int files = 0;
    int loaded = replay_dir(TDM_SOURCE_DIR "/fuzz/corpus/npy", &files);
    printf("npy corpus: %d files, %d parsed\n", files, loaded);
    assert_true(files >= 10);
    assert_true(loaded >= 10);
}

/* Every other corpus (other fuzzers' seeds) goes through the readers too: hostile bytes. */
static void test_all_corpora(void **state)
{
    (void)state;
    DIR *d = opendir(TDM_SOURCE_DIR "/fuzz/corpus");
    assert_non_null(d);
    struct dirent *de;
    int dirs = 0;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.' || strcmp(de->d_name, "onnx") == 0 ||
            strcmp(de->d_name, "npy") == 0)
            continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/fuzz/corpus/%s", TDM_SOURCE_DIR, de->d_name);
        DIR *sub = opendir(path);
        if (sub == NULL)
            continue;
        closedir(sub);
        int files = 0;
        replay_dir(path, &files);
        printf("%s corpus: %d files replayed\n", de->d_name, files);
        dirs++;
    }
    closedir(d);
    (void)dirs;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_onnx_corpus),
        cmocka_unit_test(test_npy_corpus),
        cmocka_unit_test(test_all_corpora),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

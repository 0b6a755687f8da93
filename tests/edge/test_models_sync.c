/*
 * Model version sync against tests/support/hub_server in the gateway's layout
 * (GET /v1/models/N/versions/V, .../download/PATH, ETag = sha256): first sync
 * activates, a cut sync activates nothing and resumes next time, the previous
 * version is kept and older ones pruned, rollback swaps, a corrupted file is
 * refused and activates nothing, a broken link or a bad name is an error.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "edge/models_sync.h"
#include "support/hub_child.h"
#include "tandem/download.h"

static char g_tmp[256];

static void put(const char *rel, const char *text, size_t repeat)
{
    char path[512];
    snprintf(path, sizeof path, "%s/repo/%s", g_tmp, rel);
    char dir[512];
    snprintf(dir, sizeof dir, "%s", path);
    for (char *p = dir + strlen(g_tmp) + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            mkdir(dir, 0755);
            *p = '/';
        }
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    for (size_t i = 0; i < repeat; i++)
        fputs(text, f);
    fclose(f);
}

static bool same(const char *a_rel, const char *b_rel)
{
    char a[512], b[512], cmd[1100];
    snprintf(a, sizeof a, "%s/%s", g_tmp, a_rel);
    snprintf(b, sizeof b, "%s/%s", g_tmp, b_rel);
    snprintf(cmd, sizeof cmd, "cmp -s '%s' '%s'", a, b);
    return system(cmd) == 0;
}

static bool exists(const char *rel)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", g_tmp, rel);
    struct stat st;
    return lstat(p, &st) == 0;
}

static int setup(void **state)
{
    (void)state;
    snprintf(g_tmp, sizeof g_tmp, "/tmp/tdm_sync_XXXXXX");
    if (mkdtemp(g_tmp) == NULL)
        return -1;
    put("m/1/model.onnx", "version one weights\n", 2000);
    put("m/1/conf/a.json", "{\"v\":1}\n", 1);
    put("m/2/model.onnx", "version two weights\n", 20000);
    put("m/2/conf/a.json", "{\"v\":2}\n", 1);
    put("m/3/model.onnx", "version three\n", 10);
    put("m/4/model.onnx", "version four\n", 10);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
    return system(cmd) == 0 ? 0 : -1;
}

static void start(hub_child *s, const char *fault, const char *arg)
{
    char root[300], log[300];
    snprintf(root, sizeof root, "%s/repo", g_tmp);
    snprintf(log, sizeof log, "%s/server.log", g_tmp);
    const char *args[] = {"--root", root, "--layout", "gateway", fault, arg, NULL};
    assert_true(hub_child_start(s, args, log));
}

static tdm_status sync_version(const hub_child *s, const char *version, int retries,
                               tdm_models_sync_result *r, tdm_err *err)
{
    tdm_download_opts o = {0};
    o.max_retries = retries;
    o.backoff_ms = 5;
    tdm_downloader *d = NULL;
    assert_int_equal(tdm_downloader_create(&o, &d, err), TDM_OK);
    char dir[300];
    snprintf(dir, sizeof dir, "%s/edge", g_tmp);
    tdm_models_sync_opts so = {
        .gateway = s->base, .name = "m", .version = version, .dir = dir, .downloader = d};
    tdm_status st = tdm_models_sync(&so, r, err);
    tdm_downloader_free(d);
    return st;
}

static void assert_active(const char *cur, const char *prev)
{
    char dir[300], c[TDM_MODEL_NAME_MAX + 1], p[TDM_MODEL_NAME_MAX + 1];
    snprintf(dir, sizeof dir, "%s/edge", g_tmp);
    tdm_err err;
    assert_int_equal(tdm_models_active(dir, "m", c, p, &err), TDM_OK);
    assert_string_equal(c, cur);
    assert_string_equal(p, prev);
}

static void test_sync_swap_resume_prune_rollback(void **state)
{
    (void)state;
    hub_child s;
    start(&s, "--cut", "m/2/model.onnx:50000");
    tdm_models_sync_result r;
    tdm_err err;
    assert_int_equal(sync_version(&s, "1", 0, &r, &err), TDM_OK);
    assert_int_equal(r.files, 2);
    assert_int_equal(r.downloaded, 2);
    assert_true(r.swapped);
    assert_active("1", "");
    assert_true(same("repo/m/1/model.onnx", "edge/m/current/model.onnx"));
    assert_true(same("repo/m/1/conf/a.json", "edge/m/current/conf/a.json"));

    /* A cut transfer: nothing activated, the part stays for the next sync. */
    assert_int_equal(sync_version(&s, "2", -1, &r, &err), TDM_ERR_IO);
    assert_non_null(strstr(err.msg, "not activated"));
    assert_non_null(strstr(err.msg, "model.onnx"));
    assert_int_equal(r.failed, 1);
    assert_active("1", "");
    assert_true(exists("edge/m/versions/2/model.onnx.part"));
    assert_int_equal(sync_version(&s, "2", -1, &r, &err), TDM_OK);
    assert_true(hub_child_log_has(&s, "versions/2/download/model.onnx range=50000- -> 206"));
    assert_true(r.swapped);
    assert_active("2", "1");
    assert_true(same("repo/m/2/model.onnx", "edge/m/current/model.onnx"));
    assert_true(same("repo/m/1/model.onnx", "edge/m/previous/model.onnx"));
    /* The same version again: verified, nothing fetched, nothing swapped. */
    assert_int_equal(sync_version(&s, "2", 0, &r, &err), TDM_OK);
    assert_false(r.swapped);
    assert_int_equal(r.present, 2);
    assert_int_equal(r.fetched, 0);
    assert_active("2", "1");

    /* A third version: 2 becomes previous, 1 is deleted. */
    assert_int_equal(sync_version(&s, "3", 0, &r, &err), TDM_OK);
    assert_active("3", "2");
    assert_int_equal(r.pruned, 1);
    assert_false(exists("edge/m/versions/1"));

    /* Rollback swaps current and previous; twice is back where we were. */
    char dir[300];
    snprintf(dir, sizeof dir, "%s/edge", g_tmp);
    assert_int_equal(tdm_models_rollback(dir, "m", &err), TDM_OK);
    assert_active("2", "3");
    assert_true(same("repo/m/2/model.onnx", "edge/m/current/model.onnx"));
    assert_int_equal(tdm_models_rollback(dir, "m", &err), TDM_OK);
    assert_active("3", "2");
    hub_child_stop(&s);
}

static void test_corrupt_activates_nothing(void **state)
{
    (void)state;
    hub_child s;
    start(&s, "--corrupt", "m/4/model.onnx");
    tdm_models_sync_result r;
    tdm_err err;
    assert_int_equal(sync_version(&s, "3", 0, &r, &err), TDM_OK);
    assert_int_equal(sync_version(&s, "4", 0, &r, &err), TDM_ERR_PARSE);
    assert_non_null(strstr(err.msg, "sha256 mismatch"));
    assert_active("3", "");
    assert_false(exists("edge/m/versions/4/model.onnx"));
    assert_false(exists("edge/m/versions/4/model.onnx.part"));
    /* Unknown version: 404, nothing changes. */
    assert_int_equal(sync_version(&s, "9", 0, &r, &err), TDM_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, "HTTP 404"));
    assert_active("3", "");
    /* Bad names never reach the network. */
    assert_int_equal(sync_version(&s, "../x", 0, &r, &err), TDM_ERR_INVALID_ARG);
    /* No previous: rollback is an error that changes nothing. */
    char dir[300];
    snprintf(dir, sizeof dir, "%s/edge", g_tmp);
    assert_int_equal(tdm_models_rollback(dir, "m", &err), TDM_ERR_NOT_FOUND);
    assert_active("3", "");
    /* A current that points elsewhere is reported, not followed. */
    char link[400];
    snprintf(link, sizeof link, "%s/edge/m/current", g_tmp);
    unlink(link);
    assert_int_equal(symlink("../../etc", link), 0);
    char c[TDM_MODEL_NAME_MAX + 1], p[TDM_MODEL_NAME_MAX + 1];
    assert_int_equal(tdm_models_active(dir, "m", c, p, &err), TDM_ERR_PARSE);
    assert_non_null(strstr(err.msg, "../../etc"));
    assert_int_equal(sync_version(&s, "3", 0, &r, &err), TDM_ERR_PARSE);
    hub_child_stop(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sync_swap_resume_prune_rollback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_activates_nothing, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * tandem models sync NAME VERSION --gateway URL [--dir D] [--token-file F] [--retries N]
 * tandem models rollback NAME [--dir D]
 * tandem models active NAME [--dir D]
 *
 * The edge side of model distribution (src/edge/models_sync.h): download a version from
 * tandem's gateway, verified and resumable, then make it the active one atomically, keeping
 * the previous one for rollback. The token is read from --token-file (as the agent's
 * transport.token_file) or $TDM_TOKEN.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_util.h"
#include "edge/models_sync.h"
#include "tandem/download.h"

#define CMD "models"
#define TOKEN_MAX 16384

static void usage(FILE *f)
{
    fprintf(f, "usage: tandem models sync NAME VERSION --gateway URL [--dir D] [--token-file F]\n"
               "                          [--retries N]\n"
               "       tandem models rollback NAME [--dir D]\n"
               "       tandem models active NAME [--dir D]\n"
               "\n"
               "sync      downloads version VERSION of model NAME from the gateway into\n"
               "          D/NAME/versions/VERSION (every file checked against the gateway's\n"
               "          sha256; an interrupted sync resumes), then points D/NAME/current at it\n"
               "          and D/NAME/previous at the version it replaces; older versions are\n"
               "          deleted. Nothing changes when a file fails.\n"
               "rollback  makes the previous version current again (and the current previous).\n"
               "active    prints the current and previous versions.\n"
               "\n"
               "options:\n"
               "  --gateway URL     the gateway's base URL\n"
               "  --dir D           models folder (default: models)\n"
               "  --token-file F    bearer token file (default: $TDM_TOKEN, if set)\n"
               "  --retries N       retries per file after a transient failure (default 4)\n"
               "  -h, --help        this text\n"
               "\n"
               "Exit status: 0 success, 1 failure (nothing activated), 2 bad usage.\n");
}

static char *read_token(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return NULL;
    char *buf = malloc(TOKEN_MAX);
    size_t n = buf ? fread(buf, 1, TOKEN_MAX - 1, f) : 0;
    fclose(f);
    if (buf == NULL)
        return NULL;
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        n--;
    buf[n] = '\0';
    return buf;
}

static void on_file(void *user, const char *path, const tdm_download_result *r, tdm_status s,
                    const char *msg)
{
    (void)user;
    if (s != TDM_OK)
        fprintf(stderr, "%s: %s: %s\n", path, s == TDM_ERR_PARSE ? "refused" : "failed", msg);
    else if (r->present)
        fprintf(stderr, "%s: present, verified (sha256 %.12s)\n", path, r->sha256);
    else if (r->resumed_from > 0)
        fprintf(stderr, "%s: downloaded %llu bytes, resumed at %llu, sha256 %.12s ok\n", path,
                (unsigned long long)r->fetched, (unsigned long long)r->resumed_from, r->sha256);
    else
        fprintf(stderr, "%s: downloaded %llu bytes, sha256 %.12s ok\n", path,
                (unsigned long long)r->fetched, r->sha256);
}

int tdm_cmd_models(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return TDM_EXIT_USAGE;
    }
    if (tdm_cli_is_help(argv[1])) {
        usage(stdout);
        return TDM_EXIT_OK;
    }
    const char *sub = argv[1];
    const char *pos[2] = {NULL, NULL};
    int npos = 0;
    const char *gateway = NULL, *dir = "models", *token_file = NULL;
    int64_t retries = 4;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (tdm_cli_is_help(a)) {
            usage(stdout);
            return TDM_EXIT_OK;
        }
        if (strcmp(a, "--gateway") == 0 || strcmp(a, "--dir") == 0 ||
            strcmp(a, "--token-file") == 0 || strcmp(a, "--retries") == 0) {
            if (i + 1 >= argc)
                return tdm_cli_fail(CMD, TDM_EXIT_USAGE, "%s needs a value", a);
            const char *v = argv[++i];
            if (strcmp(a, "--gateway") == 0)
                gateway = v;
            else if (strcmp(a, "--dir") == 0)
                dir = v;
            else if (strcmp(a, "--token-file") == 0)
                token_file = v;
            else if (!tdm_cli_parse_int(v, 0, 100, &retries))
                return tdm_cli_fail(CMD, TDM_EXIT_USAGE,
                                    "--retries '%s' is not an integer in [0, 100]", v);
        } else if (a[0] == '-') {
            return tdm_cli_fail(CMD, TDM_EXIT_USAGE, "unknown option '%s' (see --help)", a);
        } else if (npos < 2) {
            pos[npos++] = a;
        } else {
            return tdm_cli_fail(CMD, TDM_EXIT_USAGE, "unexpected argument '%s'", a);
        }
    }
    bool is_sync = strcmp(sub, "sync") == 0;
    if (!is_sync && strcmp(sub, "rollback") != 0 && strcmp(sub, "active") != 0)
        return tdm_cli_fail(CMD, TDM_EXIT_USAGE, "unknown subcommand '%s' (sync, rollback, active)",
                            sub);
    if (npos != (is_sync ? 2 : 1))
        return tdm_cli_fail(CMD, TDM_EXIT_USAGE, "%s needs %s", sub,
                            is_sync ? "NAME VERSION" : "NAME");
    if (!tdm_models_name_valid(pos[0]) || (is_sync && !tdm_models_name_valid(pos[1])))
        return tdm_cli_fail(CMD, TDM_EXIT_USAGE,
                            "names are 1..128 of [A-Za-z0-9._-], not starting with '.'");
    tdm_err err = {{0}};
    if (strcmp(sub, "active") == 0) {
        char cur[TDM_MODEL_NAME_MAX + 1], prev[TDM_MODEL_NAME_MAX + 1];
        if (tdm_models_active(dir, pos[0], cur, prev, &err) != TDM_OK)
            return tdm_cli_fail(CMD, TDM_EXIT_FAIL, "%s", err.msg);
        printf("current %s\nprevious %s\n", cur[0] ? cur : "-", prev[0] ? prev : "-");
        return TDM_EXIT_OK;
    }
    if (strcmp(sub, "rollback") == 0) {
        if (tdm_models_rollback(dir, pos[0], &err) != TDM_OK)
            return tdm_cli_fail(CMD, TDM_EXIT_FAIL, "%s", err.msg);
        char cur[TDM_MODEL_NAME_MAX + 1], prev[TDM_MODEL_NAME_MAX + 1];
        tdm_models_active(dir, pos[0], cur, prev, &err);
        printf("%s: current %s, previous %s\n", pos[0], cur, prev[0] ? prev : "-");
        return TDM_EXIT_OK;
    }
    if (gateway == NULL)
        return tdm_cli_fail(CMD, TDM_EXIT_USAGE, "sync needs --gateway URL");
    char *token = NULL;
    if (token_file != NULL) {
        token = read_token(token_file);
        if (token == NULL)
            return tdm_cli_fail(CMD, TDM_EXIT_FAIL, "cannot read the token file %s", token_file);
    }
    tdm_download_opts opts = {0};
    opts.max_retries = retries == 0 ? -1 : (int)retries;
    opts.bearer_token = token != NULL ? token : getenv("TDM_TOKEN");
    tdm_downloader *d = NULL;
    if (tdm_downloader_create(&opts, &d, &err) != TDM_OK) {
        free(token);
        return tdm_cli_fail(CMD, TDM_EXIT_FAIL, "%s", err.msg);
    }
    tdm_models_sync_opts so = {0};
    so.gateway = gateway;
    so.name = pos[0];
    so.version = pos[1];
    so.dir = dir;
    so.downloader = d;
    so.on_file = on_file;
    tdm_models_sync_result r;
    tdm_status s = tdm_models_sync(&so, &r, &err);
    tdm_downloader_free(d);
    free(token);
    if (s != TDM_OK)
        return tdm_cli_fail(CMD, TDM_EXIT_FAIL, "%s", err.msg);
    printf("%s %s: %d files: %d downloaded, %d present; %llu bytes fetched; %s; previous %s; "
           "%d pruned\n",
           pos[0], pos[1], r.files, r.downloaded, r.present, (unsigned long long)r.fetched,
           r.swapped ? "activated" : "already active", r.previous[0] ? r.previous : "-", r.pruned);
    return TDM_EXIT_OK;
}

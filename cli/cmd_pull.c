/*
 * tandem pull ORG/NAME [--revision R] [--dir D] [--endpoint URL] [--digests TSV]
 *                      [--include GLOB]... [--onnx] [--retries N]
 *
 * Downloads the files of a sentence-transformers model from the Hugging Face
 * hub into a folder, each one verified before it gets its real name (see
 * include/tandem/download.h and src/edge/hub.h): LFS files against the hub's
 * sha256, small files against their git blob id, and every file against a
 * pinned digest when --digests names one. A refused file does not stop the
 * others (so one run reports every problem), but makes the exit status 1.
 * Running it again verifies what is there and fetches only what is missing or
 * wrong; a part left by a cut transfer is resumed.
 *
 * Output: a progress bar per file on standard error when it is a terminal,
 * otherwise one line per file; a summary line on standard out.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/clock.h"
#include "cli.h"
#include "cli_util.h"
#include "edge/hub.h"
#include "tandem/download.h"

#define CMD "pull"
#define MAX_INCLUDES 64

static void usage(FILE *f)
{
    fprintf(f,
            "usage: tandem pull ORG/NAME [--revision R] [--dir D] [--endpoint URL]\n"
            "                   [--digests TSV] [--include GLOB]... [--onnx] [--retries N]\n"
            "\n"
            "Downloads a sentence-transformers model from the Hugging Face hub: config.json,\n"
            "model.safetensors, the tokenizer files (tokenizer.json, vocab.txt, ...),\n"
            "modules.json, sentence_bert_config.json and 1_Pooling/config.json.\n"
            "Every file is verified (LFS files by sha256, others by git blob id) before it\n"
            "is renamed into place; a cut transfer resumes on the next run.\n"
            "\n"
            "options:\n"
            "  --revision R     branch, tag or commit (default: main)\n"
            "  --dir D          destination folder (default: ./models/ORG/NAME)\n"
            "  --endpoint URL   hub address (default: $HF_ENDPOINT or https://huggingface.co)\n"
            "  --digests TSV    pinned digests, columns 'repo commit path lfs_sha256\n"
            "                   size_bytes'; a file that disagrees is refused\n"
            "  --include GLOB   also fetch files whose path matches GLOB ('*' crosses '/');\n"
            "                   may repeat, e.g. --include 'onnx/*'\n"
            "  --onnx           also fetch onnx/model.onnx\n"
            "  --retries N      retries per file after a transient failure (default 4)\n"
            "  -h, --help       this text\n"
            "\n"
            "$HF_TOKEN, when set, is sent as a bearer token.\n"
            "Exit status: 0 every file verified, 1 a file refused or not fetched, 2 bad usage.\n");
}

typedef struct progress {
    bool tty;
    uint64_t start_ns;
} progress;

static void human(double bytes, char *buf, size_t len)
{
    if (bytes >= 1e9)
        snprintf(buf, len, "%.2f GB", bytes / 1e9);
    else if (bytes >= 1e6)
        snprintf(buf, len, "%.1f MB", bytes / 1e6);
    else if (bytes >= 1e3)
        snprintf(buf, len, "%.1f kB", bytes / 1e3);
    else
        snprintf(buf, len, "%.0f B", bytes);
}

typedef struct file_ctx {
    progress *pg;
    tdm_hub_file *file;
} file_ctx;

static void on_progress(void *user, const char *name, uint64_t done, uint64_t total)
{
    file_ctx *fc = user;
    if (!fc->pg->tty)
        return;
    enum { WIDTH = 30 };
    char bar[WIDTH + 1];
    double frac = total > 0 ? (double)done / (double)total : 0.0;
    if (frac > 1.0)
        frac = 1.0;
    int fill = (int)(frac * WIDTH);
    for (int i = 0; i < WIDTH; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[WIDTH] = '\0';
    double secs = (double)(tdm_now_ns() - fc->pg->start_ns) / 1e9;
    char d[32], t[32], r[32];
    human((double)done, d, sizeof d);
    human((double)total, t, sizeof t);
    human(secs > 0 ? (double)done / secs : 0.0, r, sizeof r);
    fprintf(stderr, "\r\033[K%-32.32s [%s] %3d%% %s/%s %s/s", name, bar, (int)(frac * 100), d, t,
            r);
    fflush(stderr);
}

static tdm_status verify_oid(void *user, const char *path, tdm_err *err)
{
    return tdm_hub_verify_oid(((file_ctx *)user)->file, path, err);
}

/* A non-LFS file without a pinned sha256 is present when its size and git blob id match. */
static bool present_by_oid(const tdm_hub_file *f, const char *dest)
{
    struct stat st;
    if (f->oid[0] == '\0' || stat(dest, &st) != 0 || !S_ISREG(st.st_mode) ||
        (int64_t)st.st_size != f->size)
        return false;
    return tdm_hub_verify_oid((void *)f, dest, NULL) == TDM_OK;
}

static bool selected(const char *path, bool onnx, const char **globs, int nglobs)
{
    if (tdm_hub_default_file(path, onnx))
        return true;
    for (int i = 0; i < nglobs; i++)
        if (tdm_hub_glob(globs[i], path))
            return true;
    return false;
}

int tdm_cmd_pull(int argc, char **argv)
{
    const char *repo = NULL, *revision = "main", *dir = NULL, *endpoint = NULL, *digests = NULL;
    const char *globs[MAX_INCLUDES];
    int nglobs = 0;
    bool onnx = false;
    int64_t retries = 4;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (tdm_cli_is_help(a)) {
            usage(stdout);
            return TDM_EXIT_OK;
        }
        bool has_val = i + 1 < argc;
        if (strcmp(a, "--onnx") == 0) {
            onnx = true;
        } else if (strcmp(a, "--revision") == 0 || strcmp(a, "--dir") == 0 ||
                   strcmp(a, "--endpoint") == 0 || strcmp(a, "--digests") == 0 ||
                   strcmp(a, "--include") == 0 || strcmp(a, "--retries") == 0) {
            if (!has_val)
                return tdm_cli_fail(CMD, TDM_EXIT_USAGE, "%s needs a value", a);
            const char *v = argv[++i];
            if (strcmp(a, "--revision") == 0)
                revision = v;
            else if (strcmp(a, "--dir") == 0)
                dir = v;
            else if (strcmp(a, "--endpoint") == 0)
                endpoint = v;
            else if (strcmp(a, "--digests") == 0)
                digests = v;
            else if (strcmp(a, "--retries") == 0) {
                if (!tdm_cli_parse_int(v, 0, 100, &retries))
                    return tdm_cli_fail(CMD, TDM_EXIT_USAGE,
                                        "--retries '%s' is not an integer in [0, 100]", v);
            } else {
                if (nglobs == MAX_INCLUDES)
                    return tdm_cli_fail(CMD, TDM_EXIT_USAGE, "more than %d --include",
                                        MAX_INCLUDES);
                globs[nglobs++] = v;
            }
        } else if (a[0] == '-') {
            return tdm_cli_fail(CMD, TDM_EXIT_USAGE, "unknown option '%s' (see --help)", a);
        } else if (repo == NULL) {
            repo = a;
        } else {
            return tdm_cli_fail(CMD, TDM_EXIT_USAGE, "one repository at a time ('%s' and '%s')",
                                repo, a);
        }
    }
    if (repo == NULL) {
        usage(stderr);
        return TDM_EXIT_USAGE;
    }
    if (!tdm_hub_repo_valid(repo))
        return tdm_cli_fail(CMD, TDM_EXIT_USAGE, "'%s' is not a repository name ORG/NAME", repo);
    if (revision[0] == '\0')
        return tdm_cli_fail(CMD, TDM_EXIT_USAGE, "--revision is empty");
    if (endpoint == NULL)
        endpoint = getenv("HF_ENDPOINT");
    if (endpoint == NULL || endpoint[0] == '\0')
        endpoint = TDM_HUB_DEFAULT_ENDPOINT;
    if (strncmp(endpoint, "http://", 7) != 0 && strncmp(endpoint, "https://", 8) != 0)
        return tdm_cli_fail(CMD, TDM_EXIT_USAGE, "endpoint '%s' is not an http(s) URL", endpoint);
    char defdir[1024];
    if (dir == NULL) {
        snprintf(defdir, sizeof defdir, "models/%s", repo);
        dir = defdir;
    }

    tdm_err err = {{0}};
    tdm_hub_pins pins = {0};
    if (digests != NULL && tdm_hub_pins_load(digests, repo, revision, &pins, &err) != TDM_OK)
        return tdm_cli_fail(CMD, TDM_EXIT_FAIL, "%s", err.msg);

    tdm_download_opts opts = {0};
    opts.max_retries = retries == 0 ? -1 : (int)retries;
    opts.bearer_token = getenv("HF_TOKEN");
    tdm_downloader *d = NULL;
    if (tdm_downloader_create(&opts, &d, &err) != TDM_OK) {
        tdm_hub_pins_free(&pins);
        return tdm_cli_fail(CMD, TDM_EXIT_FAIL, "%s", err.msg);
    }
    tdm_hub_listing list = {0};
    if (tdm_hub_list(d, endpoint, repo, revision, &list, &err) != TDM_OK) {
        tdm_downloader_free(d);
        tdm_hub_pins_free(&pins);
        return tdm_cli_fail(CMD, TDM_EXIT_FAIL, "%s", err.msg);
    }

    progress pg = {isatty(STDERR_FILENO) == 1, 0};
    int nsel = 0, ndown = 0, npresent = 0, nresumed = 0, nfail = 0;
    uint64_t fetched = 0;
    for (size_t i = 0; i < list.n; i++) {
        tdm_hub_file *f = &list.files[i];
        if (!selected(f->path, onnx, globs, nglobs))
            continue;
        nsel++;
        char dest[4096];
        snprintf(dest, sizeof dest, "%s/%s", dir, f->path);
        char sha[65];
        const tdm_hub_pin *pin = tdm_hub_pins_find(&pins, f->path);
        if (tdm_hub_expect(f, pin, sha, &err) != TDM_OK) {
            fprintf(stderr, "%s%s: refused: %s\n", pg.tty ? "\r\033[K" : "", f->path, err.msg);
            nfail++;
            continue;
        }
        if (sha[0] == '\0' && present_by_oid(f, dest)) {
            npresent++;
            if (!pg.tty)
                fprintf(stderr, "%s: present, verified (git blob %.12s)\n", f->path, f->oid);
            continue;
        }
        char *url = tdm_hub_resolve_url(endpoint, repo, revision, f->path);
        if (url == NULL) {
            nfail++;
            fprintf(stderr, "%s: out of memory\n", f->path);
            continue;
        }
        file_ctx fc = {&pg, f};
        tdm_download_req req = {0};
        req.url = url;
        req.dest = dest;
        req.name = f->path;
        req.sha256 = sha[0] ? sha : NULL;
        req.size = f->size;
        req.max_bytes = (uint64_t)f->size;
        req.progress = on_progress;
        req.verify = f->oid[0] && !f->lfs ? verify_oid : NULL;
        req.user = &fc;
        pg.start_ns = tdm_now_ns();
        tdm_download_result res;
        tdm_status s = tdm_downloader_fetch(d, &req, &res, &err);
        free(url);
        if (pg.tty)
            fputs("\r\033[K", stderr);
        fetched += res.fetched;
        if (s != TDM_OK) {
            fprintf(stderr, "%s: %s: %s\n", f->path, s == TDM_ERR_PARSE ? "refused" : "failed",
                    err.msg);
            nfail++;
            continue;
        }
        if (res.present) {
            npresent++;
            if (!pg.tty)
                fprintf(stderr, "%s: present, verified (sha256 %.12s)\n", f->path, res.sha256);
            continue;
        }
        ndown++;
        if (res.resumed_from > 0)
            nresumed++;
        char resumed[64] = "";
        if (res.resumed_from > 0)
            snprintf(resumed, sizeof resumed, ", resumed at %llu",
                     (unsigned long long)res.resumed_from);
        char check[64];
        if (req.sha256 != NULL)
            snprintf(check, sizeof check, "sha256 %.12s%s", res.sha256, pin ? " (pinned)" : "");
        else if (req.verify != NULL)
            snprintf(check, sizeof check, "git blob %.12s", f->oid);
        else
            snprintf(check, sizeof check, "size only");
        fprintf(stderr, "%s: downloaded %llu bytes%s, %s ok\n", f->path,
                (unsigned long long)res.fetched, resumed, check);
    }
    if (nsel == 0) {
        fprintf(stderr,
                "tandem " CMD ": %s at %s has none of the selected files (%zu files listed)\n",
                repo, revision, list.n);
        nfail++;
    }
    printf("%s@%s -> %s: %d files: %d downloaded (%d resumed), %d present, %d failed; %llu bytes "
           "fetched\n",
           repo, revision, dir, nsel, ndown, nresumed, npresent, nfail,
           (unsigned long long)fetched);
    tdm_hub_listing_free(&list);
    tdm_hub_pins_free(&pins);
    tdm_downloader_free(d);
    return nfail ? TDM_EXIT_FAIL : TDM_EXIT_OK;
}

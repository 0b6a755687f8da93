/*
 * Model version sync from the gateway, atomic swap and rollback (see models_sync.h).
 *
 * The links are relative ("versions/V"), so a models folder can be moved or mounted
 * elsewhere. Reading a link back is strict: a current or previous that is not a symlink of
 * the form versions/<valid name> is an error naming it, never guessed at, because the swap
 * and the pruning act on what it says.
 */
#include "edge/models_sync.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/json.h"
#include "edge/hub.h"

#define LISTING_MAX ((size_t)16 << 20)

bool tdm_models_name_valid(const char *s)
{
    if (s == NULL || s[0] == '\0' || s[0] == '.' || strlen(s) > TDM_MODEL_NAME_MAX)
        return false;
    for (; *s != '\0'; s++)
        if (!isalnum((unsigned char)*s) && *s != '.' && *s != '_' && *s != '-')
            return false;
    return true;
}

/* Reads DIR/NAME/<link> = "versions/V" into v; "" when the link does not exist. */
static tdm_status read_link(const char *base, const char *link, char v[TDM_MODEL_NAME_MAX + 1],
                            tdm_err *err)
{
    char path[4096], target[512];
    v[0] = '\0';
    snprintf(path, sizeof path, "%s/%s", base, link);
    ssize_t n = readlink(path, target, sizeof target - 1);
    if (n < 0) {
        if (errno == ENOENT)
            return TDM_OK;
        return tdm_errf(err, TDM_ERR_IO, "%s: not a symlink to versions/<version> (%s)", path,
                        strerror(errno));
    }
    target[n] = '\0';
    if (strncmp(target, "versions/", 9) != 0 || !tdm_models_name_valid(target + 9))
        return tdm_errf(err, TDM_ERR_PARSE, "%s points to '%s', not versions/<version>", path,
                        target);
    snprintf(v, TDM_MODEL_NAME_MAX + 1, "%s", target + 9);
    return TDM_OK;
}

/* Points DIR/NAME/<link> at versions/V by renaming a fresh symlink over it (atomic). */
static tdm_status set_link(const char *base, const char *link, const char *v, tdm_err *err)
{
    char path[4096], tmp[4200], target[256];
    snprintf(path, sizeof path, "%s/%s", base, link);
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp", base, link);
    snprintf(target, sizeof target, "versions/%s", v);
    unlink(tmp);
    if (symlink(target, tmp) != 0)
        return tdm_errf(err, TDM_ERR_IO, "cannot create %s: %s", tmp, strerror(errno));
    if (rename(tmp, path) != 0) {
        tdm_status s =
            tdm_errf(err, TDM_ERR_IO, "cannot rename %s onto %s: %s", tmp, path, strerror(errno));
        unlink(tmp);
        return s;
    }
    return TDM_OK;
}

static void fsync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path) == 0 ? 0 : -1;
}

/* Deletes versions other than keep1 and keep2; returns how many. */
static int prune(const char *base, const char *keep1, const char *keep2)
{
    char vdir[4096];
    snprintf(vdir, sizeof vdir, "%s/versions", base);
    DIR *dp = opendir(vdir);
    if (dp == NULL)
        return 0;
    int n = 0;
    struct dirent *e;
    char doomed[64][TDM_MODEL_NAME_MAX + 1];
    int nd = 0;
    while ((e = readdir(dp)) != NULL && nd < 64) {
        if (e->d_name[0] == '.' || !tdm_models_name_valid(e->d_name))
            continue;
        if (strcmp(e->d_name, keep1) == 0 || strcmp(e->d_name, keep2) == 0)
            continue;
        snprintf(doomed[nd++], TDM_MODEL_NAME_MAX + 1, "%s", e->d_name);
    }
    closedir(dp);
    for (int i = 0; i < nd; i++) {
        char p[4400];
        snprintf(p, sizeof p, "%s/%s", vdir, doomed[i]);
        if (nftw(p, rm_entry, 16, FTW_DEPTH | FTW_PHYS) == 0)
            n++;
    }
    return n;
}

static void append_enc(char *out, size_t cap, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(out);
    for (; *s != '\0' && n + 4 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == '/') {
            out[n++] = (char)c;
        } else {
            out[n++] = '%';
            out[n++] = hex[c >> 4];
            out[n++] = hex[c & 15];
        }
    }
    out[n] = '\0';
}

tdm_status tdm_models_active(const char *dir, const char *name,
                             char current[TDM_MODEL_NAME_MAX + 1],
                             char previous[TDM_MODEL_NAME_MAX + 1], tdm_err *err)
{
    current[0] = previous[0] = '\0';
    if (!tdm_models_name_valid(name))
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "'%s' is not a model name", name);
    char base[4096];
    snprintf(base, sizeof base, "%s/%s", dir, name);
    tdm_status s = read_link(base, "current", current, err);
    if (s == TDM_OK)
        s = read_link(base, "previous", previous, err);
    return s;
}

tdm_status tdm_models_rollback(const char *dir, const char *name, tdm_err *err)
{
    char cur[TDM_MODEL_NAME_MAX + 1], prev[TDM_MODEL_NAME_MAX + 1];
    tdm_status s = tdm_models_active(dir, name, cur, prev, err);
    if (s != TDM_OK)
        return s;
    if (prev[0] == '\0')
        return tdm_errf(err, TDM_ERR_NOT_FOUND, "%s/%s has no previous version to roll back to",
                        dir, name);
    char base[4096], vdir[4400];
    snprintf(base, sizeof base, "%s/%s", dir, name);
    snprintf(vdir, sizeof vdir, "%s/versions/%s", base, prev);
    struct stat st;
    if (stat(vdir, &st) != 0 || !S_ISDIR(st.st_mode))
        return tdm_errf(err, TDM_ERR_NOT_FOUND, "%s is gone: cannot roll back to it", vdir);
    if ((s = set_link(base, "current", prev, err)) != TDM_OK)
        return s;
    if (cur[0] != '\0' && (s = set_link(base, "previous", cur, err)) != TDM_OK)
        return s;
    fsync_dir(base);
    return TDM_OK;
}

typedef struct listed {
    const char *path;
    const char *sha256;
    int64_t size;
} listed;

/* Checks the gateway's listing and collects its files (pointers into doc). */
static tdm_status parse_listing(const tdm_json *root, listed **out, size_t *n, tdm_err *err)
{
    *out = NULL;
    *n = 0;
    const tdm_json *files = tdm_json_get(root, "files");
    if (files == NULL || files->type != TDM_JSON_ARRAY)
        return tdm_errf(err, TDM_ERR_PARSE, "the listing has no \"files\" array");
    if (files->len == 0)
        return tdm_errf(err, TDM_ERR_PARSE, "the listing has no files");
    listed *v = calloc(files->len, sizeof *v);
    if (v == NULL)
        return tdm_errf(err, TDM_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < files->len; i++) {
        const tdm_json *f = &files->items[i];
        v[i].path = tdm_json_string(tdm_json_get(f, "path"), NULL);
        v[i].sha256 = tdm_json_string(tdm_json_get(f, "sha256"), NULL);
        bool ok = tdm_json_int(tdm_json_get(f, "size"), &v[i].size) && v[i].size >= 0;
        if (!ok || v[i].path == NULL || !tdm_hub_path_safe(v[i].path) || v[i].sha256 == NULL ||
            strlen(v[i].sha256) != 64 || strspn(v[i].sha256, "0123456789abcdefABCDEF") != 64) {
            tdm_status st = tdm_errf(err, TDM_ERR_PARSE,
                                     "listing entry %zu (%s): needs a safe relative \"path\", a "
                                     "\"size\" and a 64-digit \"sha256\"",
                                     i, v[i].path ? v[i].path : "no path");
            free(v);
            return st;
        }
    }
    *out = v;
    *n = files->len;
    return TDM_OK;
}

tdm_status tdm_models_sync(const tdm_models_sync_opts *o, tdm_models_sync_result *r, tdm_err *err)
{
    memset(r, 0, sizeof *r);
    if (o->gateway == NULL || o->dir == NULL || o->downloader == NULL)
        return tdm_errf(err, TDM_ERR_INVALID_ARG,
                        "a sync needs a gateway, a folder and a downloader");
    if (!tdm_models_name_valid(o->name) || !tdm_models_name_valid(o->version))
        return tdm_errf(err, TDM_ERR_INVALID_ARG,
                        "model '%s' version '%s': names are 1..128 of [A-Za-z0-9._-], not "
                        "starting with '.'",
                        o->name ? o->name : "", o->version ? o->version : "");
    char gw[2048];
    snprintf(gw, sizeof gw, "%s", o->gateway);
    size_t gl = strlen(gw);
    while (gl > 0 && gw[gl - 1] == '/')
        gw[--gl] = '\0';
    char base[4096];
    snprintf(base, sizeof base, "%s/%s", o->dir, o->name);

    /* The current state first: a broken link is reported before any download. */
    char cur[TDM_MODEL_NAME_MAX + 1], prev[TDM_MODEL_NAME_MAX + 1];
    tdm_status s = tdm_models_active(o->dir, o->name, cur, prev, err);
    if (s != TDM_OK)
        return s;

    char url[4096];
    snprintf(url, sizeof url, "%s/v1/models/%s/versions/%s", gw, o->name, o->version);
    char *body = NULL;
    size_t len = 0;
    s = tdm_downloader_get(o->downloader, url, LISTING_MAX, &body, &len, NULL, err);
    if (s != TDM_OK) {
        tdm_err_prefix(err, "listing %s version %s", o->name, o->version);
        return s;
    }
    tdm_json_doc *doc = NULL;
    listed *files = NULL;
    size_t n = 0;
    s = tdm_json_parse(body, len, 0, &doc, err);
    if (s == TDM_OK)
        s = parse_listing(tdm_json_root(doc), &files, &n, err);
    if (s != TDM_OK) {
        tdm_err_prefix(err, "%s", url);
        goto done;
    }

    r->files = (int)n;
    for (size_t i = 0; i < n; i++) {
        char dest[4096], furl[4096];
        snprintf(dest, sizeof dest, "%s/versions/%s/%s", base, o->version, files[i].path);
        snprintf(furl, sizeof furl, "%s/v1/models/%s/versions/%s/download/", gw, o->name,
                 o->version);
        append_enc(furl, sizeof furl, files[i].path);
        tdm_download_req req = {0};
        req.url = furl;
        req.dest = dest;
        req.name = files[i].path;
        req.sha256 = files[i].sha256;
        req.size = files[i].size;
        req.max_bytes = (uint64_t)files[i].size;
        req.etag_is_sha256 = true;
        req.progress = o->progress;
        req.user = o->user;
        tdm_download_result res;
        tdm_err ferr = {{0}};
        tdm_status fs = tdm_downloader_fetch(o->downloader, &req, &res, &ferr);
        r->fetched += res.fetched;
        if (fs != TDM_OK)
            r->failed++;
        else if (res.present)
            r->present++;
        else
            r->downloaded++;
        if (o->on_file != NULL)
            o->on_file(o->user, files[i].path, &res, fs, ferr.msg);
        if (fs != TDM_OK && s == TDM_OK) {
            s = fs;
            tdm_errf(err, fs, "%s", ferr.msg);
        }
    }
    if (s != TDM_OK) {
        tdm_err_prefix(err, "%s version %s not activated (%d of %d files failed)", o->name,
                       o->version, r->failed, r->files);
        goto done;
    }

    /* Every file verified: swap. previous first, so a crash between leaves both valid. */
    if (strcmp(cur, o->version) != 0) {
        if (cur[0] != '\0' && (s = set_link(base, "previous", cur, err)) != TDM_OK)
            goto done;
        if ((s = set_link(base, "current", o->version, err)) != TDM_OK)
            goto done;
        fsync_dir(base);
        r->swapped = true;
        snprintf(r->previous, sizeof r->previous, "%s", cur[0] ? cur : prev);
    } else {
        snprintf(r->previous, sizeof r->previous, "%s", prev);
    }
    r->pruned = prune(base, o->version, r->previous);

done:
    free(files);
    tdm_json_free(doc);
    free(body);
    return s;
}

/*
 * Shared code of `tandem inspect` and `tandem split` (see split_common.h).
 */
#include "split_common.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_util.h"

/* "NAME=1x3x32x32" (or "1x3x32x32") into a name (NULL when absent) and dims. */
static int parse_shape(const char *cmd, const char *spec, char **name, tdm_tensor *t)
{
    const char *eq = strrchr(spec, '=');
    const char *dims = eq != NULL ? eq + 1 : spec;
    *name = NULL;
    memset(t, 0, sizeof *t);
    t->dtype = TDM_DTYPE_UNDEFINED;
    int nd = 0;
    const char *p = dims;
    while (*p != '\0') {
        char buf[32];
        size_t len = strcspn(p, "x");
        if (len == 0 || len >= sizeof buf || nd == TDM_MAX_DIMS)
            return tdm_cli_fail(cmd, TDM_EXIT_USAGE,
                                "--input-shape '%s': want NAME=D1xD2x... (up to %d dims)", spec,
                                TDM_MAX_DIMS);
        memcpy(buf, p, len);
        buf[len] = '\0';
        int64_t v;
        if (!tdm_cli_parse_int(buf, 1, INT64_C(1) << 40, &v))
            return tdm_cli_fail(cmd, TDM_EXIT_USAGE,
                                "--input-shape '%s': dim '%s' is not a positive integer", spec,
                                buf);
        t->dims[nd++] = v;
        p += len;
        if (*p == 'x') {
            p++;
            if (*p == '\0')
                return tdm_cli_fail(cmd, TDM_EXIT_USAGE, "--input-shape '%s': trailing 'x'", spec);
        }
    }
    if (nd == 0)
        return tdm_cli_fail(cmd, TDM_EXIT_USAGE, "--input-shape '%s': no dims", spec);
    t->ndim = nd;
    if (eq != NULL) {
        *name = strndup(spec, (size_t)(eq - spec));
        if (*name == NULL)
            return tdm_cli_fail(cmd, TDM_EXIT_FAIL, "out of memory");
    }
    return TDM_EXIT_OK;
}

int tdm_split_cli_load(const char *cmd, const char *model, int n_specs, char **specs, int threads,
                       tdm_split_cli *c)
{
    memset(c, 0, sizeof *c);
    tdm_err err = {{0}};
    char *names[TDM_SPLIT_MAX_SHAPES] = {0};
    tdm_tensor shapes[TDM_SPLIT_MAX_SHAPES];
    int rc = TDM_EXIT_OK, n = 0;
    tdm_load_options lo = {0}, lo_orig = {.no_optimize = true};
    if (tdm_graph_load(model, &lo, &c->g, &err) != TDM_OK ||
        tdm_graph_load(model, &lo_orig, &c->orig, &err) != TDM_OK) {
        rc = tdm_cli_fail(cmd, TDM_EXIT_FAIL, "%s", err.msg); /* the message names the file */
        goto done;
    }
    for (; n < n_specs && n < TDM_SPLIT_MAX_SHAPES; n++) {
        rc = parse_shape(cmd, specs[n], &names[n], &shapes[n]);
        if (rc != TDM_EXIT_OK)
            goto done;
        if (names[n] == NULL) {
            if (tdm_graph_num_inputs(c->g) != 1 || n_specs != 1) {
                rc = tdm_cli_fail(cmd, TDM_EXIT_USAGE,
                                  "--input-shape '%s': use NAME=DIMS (the model has %d inputs)",
                                  specs[n], tdm_graph_num_inputs(c->g));
                goto done;
            }
            tdm_value_info vi;
            tdm_graph_input_info(c->g, 0, &vi);
            names[n] = strdup(vi.name);
            if (names[n] == NULL) {
                rc = tdm_cli_fail(cmd, TDM_EXIT_FAIL, "out of memory");
                goto done;
            }
        }
    }
    tdm_cut_options co = {.n_shapes = n,
                          .shape_names = (const char *const *)names,
                          .shapes = shapes,
                          .original = c->orig};
    tdm_status st = tdm_cuts_find(c->g, &co, &c->cuts, &err);
    if (st != TDM_OK) {
        rc = tdm_cli_fail(
            cmd, st == TDM_ERR_SHAPE || st == TDM_ERR_NOT_FOUND ? TDM_EXIT_USAGE : TDM_EXIT_FAIL,
            "%s: %s", model, err.msg);
        goto done;
    }
    tdm_session_options so = {.threads = threads};
    if (tdm_session_create(c->g, &so, &c->s, &err) != TDM_OK)
        rc = tdm_cli_fail(cmd, TDM_EXIT_FAIL, "%s: %s", model, err.msg);
done:
    for (int i = 0; i < TDM_SPLIT_MAX_SHAPES; i++)
        free(names[i]);
    if (rc != TDM_EXIT_OK)
        tdm_split_cli_free(c);
    return rc;
}

void tdm_split_cli_free(tdm_split_cli *c)
{
    tdm_cut_list_free(c->cuts);
    tdm_session_free(c->s);
    tdm_graph_free(c->g);
    tdm_graph_free(c->orig);
    memset(c, 0, sizeof *c);
}

static bool save_all(const char *dir, const char *sub, const tdm_cut_tensor *t, const tdm_tensor *v,
                     int n, tdm_err *err)
{
    size_t len = strlen(dir) + strlen(sub) + 2;
    char *d = malloc(len);
    if (d == NULL)
        return false;
    snprintf(d, len, "%s/%s", dir, sub);
    bool ok = tdm_cli_mkdirs(d);
    if (!ok)
        tdm_errf(err, TDM_ERR_IO, "%s: cannot create the directory", d);
    for (int i = 0; i < n && ok; i++) {
        char nm[256], path[4096];
        tdm_cli_sanitize(t[i].name, nm, sizeof nm);
        snprintf(path, sizeof path, "%s/%s.npy", d, nm);
        ok = tdm_npy_write(path, &v[i], err) == TDM_OK;
    }
    free(d);
    return ok;
}

int tdm_split_cli_verify(const char *cmd, tdm_split_cli *c, tdm_session *head, tdm_session *tail,
                         const tdm_cut *cut, uint64_t seed, const char *save_dir, double *max_rel)
{
    const tdm_cut_list *l = c->cuts;
    tdm_err err = {{0}};
    tdm_tensor *in = calloc((size_t)l->n_inputs + 1, sizeof *in);
    tdm_tensor *ref = calloc((size_t)l->n_outputs + 1, sizeof *ref);
    tdm_tensor *got = calloc((size_t)l->n_outputs + 1, sizeof *got);
    int rc = TDM_EXIT_OK;
    *max_rel = 0;
    if (in == NULL || ref == NULL || got == NULL) {
        rc = tdm_cli_fail(cmd, TDM_EXIT_FAIL, "out of memory");
        goto done;
    }
    /* The probe's batch size: split files keep it symbolic, the check uses what was probed. */
    if (tdm_split_random_inputs(l, seed, 0, in, &err) != TDM_OK ||
        tdm_split_run_whole(c->s, l, in, ref, &err) != TDM_OK ||
        tdm_split_run(head, tail, l, cut, in, got, NULL, NULL, &err) != TDM_OK) {
        rc = tdm_cli_fail(cmd, TDM_EXIT_FAIL, "%s", err.msg);
        goto done;
    }
    for (int i = 0; i < l->n_outputs; i++) {
        double r = tdm_split_max_rel(&got[i], &ref[i]);
        if (r > *max_rel)
            *max_rel = r;
    }
    if (save_dir != NULL && (!save_all(save_dir, "in", l->inputs, in, l->n_inputs, &err) ||
                             !save_all(save_dir, "expected", l->outputs, ref, l->n_outputs, &err)))
        rc = tdm_cli_fail(cmd, TDM_EXIT_FAIL, "%s", err.msg[0] ? err.msg : "out of memory");
done:
    for (int i = 0; in != NULL && i < l->n_inputs; i++)
        tdm_tensor_free(&in[i]);
    for (int i = 0; ref != NULL && got != NULL && i < l->n_outputs; i++) {
        tdm_tensor_free(&ref[i]);
        tdm_tensor_free(&got[i]);
    }
    free(in);
    free(ref);
    free(got);
    return rc;
}

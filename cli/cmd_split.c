/*
 * tandem split: writes a model's head and tail as two ONNX files.
 *
 * `--cut C` picks a cut as `tandem inspect` lists it (an index), or names its
 * tensors. DIR receives head.onnx (graph inputs -> cut tensors), tail.onnx
 * (cut tensors -> graph outputs), both cut from the original graph so that
 * any ONNX runtime loads them, and manifest.json (cut tensors with shapes and
 * dtypes, the model's and both files' sha256). --verify then loads the two
 * files back, runs head then tail on seeded random inputs and compares with
 * the unsplit model; --save-io also writes those inputs and the unsplit
 * outputs as .npy (DIR/io/in, DIR/io/expected) for checking with another
 * runtime.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_util.h"
#include "split_common.h"

static void split_usage(FILE *f)
{
    fprintf(f,
            "usage: tandem split MODEL.onnx --cut C --out DIR [--input-shape NAME=1x3x32x32]...\n"
            "                    [--verify] [--tol T] [--save-io] [--threads N]\n"
            "\n"
            "Writes DIR/head.onnx, DIR/tail.onnx and DIR/manifest.json for one cut.\n"
            "  --cut C         a cut index from 'tandem inspect', a tensor name, or\n"
            "                  comma-separated tensor names (a name made of digits only is\n"
            "                  written with a trailing comma: '7,'); 'all' writes every\n"
            "                  listed cut into DIR/cut<i>\n"
            "  --input-shape   input shapes for the manifest's shapes (declared by default;\n"
            "                  a symbolic batch dim stays symbolic in the files)\n"
            "  --verify        load the written files, run head then tail on random inputs\n"
            "                  and compare with the unsplit model (exit 1 above --tol, 1e-5)\n"
            "  --save-io       with --verify: write the inputs and unsplit outputs as .npy\n"
            "                  under DIR/io/in and DIR/io/expected\n");
}

static int verify_files(tdm_split_cli *c, const tdm_cut *cut, const char *dir, bool save_io,
                        int threads, double tol)
{
    char path[4096];
    tdm_err err = {{0}};
    tdm_graph *hg = NULL, *tg = NULL;
    tdm_session *hs = NULL, *ts = NULL;
    tdm_session_options so = {.threads = threads};
    int rc = TDM_EXIT_FAIL;
    snprintf(path, sizeof path, "%s/head.onnx", dir);
    if (tdm_graph_load(path, NULL, &hg, &err) != TDM_OK ||
        tdm_session_create(hg, &so, &hs, &err) != TDM_OK) {
        tdm_cli_fail("split", TDM_EXIT_FAIL, "%s: %s", path, err.msg);
        goto done;
    }
    snprintf(path, sizeof path, "%s/tail.onnx", dir);
    if (tdm_graph_load(path, NULL, &tg, &err) != TDM_OK ||
        tdm_session_create(tg, &so, &ts, &err) != TDM_OK) {
        tdm_cli_fail("split", TDM_EXIT_FAIL, "%s: %s", path, err.msg);
        goto done;
    }
    double files = 0, original = 0;
    snprintf(path, sizeof path, "%s/io", dir);
    rc = tdm_split_cli_verify("split", c, hs, ts, cut, 1, save_io ? path : NULL, &files);
    if (rc == TDM_EXIT_OK)
        rc = tdm_split_cli_verify("split", c, c->s, c->s, cut, 1, NULL, &original);
    if (rc != TDM_EXIT_OK)
        goto done;
    printf("{\"dir\":\"%s\",\"max_rel_err_files\":%.3e,\"max_rel_err_original\":%.3e}\n", dir,
           files, original);
    if (!(files <= tol) || !(original <= tol))
        rc = tdm_cli_fail("split", TDM_EXIT_FAIL,
                          "head+tail differs from the unsplit model by %.3g (files) / %.3g "
                          "(original file), over %.3g",
                          files, original, tol);
done:
    tdm_session_free(hs);
    tdm_session_free(ts);
    tdm_graph_free(hg);
    tdm_graph_free(tg);
    return rc;
}

/* Resolves one cut, writes its files into out and optionally verifies them. */
static int split_one(tdm_split_cli *c, const char *model, const char *cut_spec, const char *out,
                     bool verify, bool save_io, int threads, double tol)
{
    tdm_cut cut;
    int index = -1, rc = TDM_EXIT_OK;
    tdm_err err = {{0}};
    tdm_status st = tdm_cut_resolve(c->cuts, c->orig, cut_spec, &cut, &index, &err);
    if (st != TDM_OK)
        return tdm_cli_fail("split", st == TDM_ERR_NOMEM ? TDM_EXIT_FAIL : TDM_EXIT_USAGE,
                            "--cut %s: %s", cut_spec, err.msg);
    if (!tdm_cli_mkdirs(out))
        rc = tdm_cli_fail("split", TDM_EXIT_FAIL, "%s: cannot create the directory", out);
    else if (tdm_split_write(model, c->orig, c->cuts, &cut, index, out, &err) != TDM_OK)
        rc = tdm_cli_fail("split", TDM_EXIT_FAIL, "%s", err.msg);
    else if (verify)
        rc = verify_files(c, &cut, out, save_io, threads, tol);
    else
        printf("%s/head.onnx %s/tail.onnx %s/manifest.json\n", out, out, out);
    tdm_cut_clear(&cut);
    return rc;
}

int tdm_cmd_split(int argc, char **argv)
{
    const char *model = NULL, *cut_spec = NULL, *out = NULL;
    char *specs[TDM_SPLIT_MAX_SHAPES];
    int n_specs = 0;
    int64_t threads = 1;
    bool verify = false, save_io = false;
    double tol = 1e-5;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (tdm_cli_is_help(a)) {
            split_usage(stdout);
            return TDM_EXIT_OK;
        }
        if (strcmp(a, "--input-shape") == 0 || strcmp(a, "--threads") == 0 ||
            strcmp(a, "--cut") == 0 || strcmp(a, "--out") == 0 || strcmp(a, "--tol") == 0) {
            if (i + 1 >= argc)
                return tdm_cli_fail("split", TDM_EXIT_USAGE, "%s needs a value", a);
            char *v = argv[++i];
            if (strcmp(a, "--input-shape") == 0) {
                if (n_specs == TDM_SPLIT_MAX_SHAPES)
                    return tdm_cli_fail("split", TDM_EXIT_USAGE, "more than %d input shapes",
                                        TDM_SPLIT_MAX_SHAPES);
                specs[n_specs++] = v;
            } else if (strcmp(a, "--threads") == 0) {
                if (!tdm_cli_parse_int(v, 1, 256, &threads))
                    return tdm_cli_fail("split", TDM_EXIT_USAGE, "--threads: '%s' is not 1..256",
                                        v);
            } else if (strcmp(a, "--cut") == 0) {
                cut_spec = v;
            } else if (strcmp(a, "--out") == 0) {
                out = v;
            } else {
                char *end;
                tol = strtod(v, &end);
                if (*end != '\0' || end == v || !(tol >= 0))
                    return tdm_cli_fail("split", TDM_EXIT_USAGE,
                                        "--tol: '%s' is not a non-negative number", v);
            }
        } else if (strcmp(a, "--verify") == 0) {
            verify = true;
        } else if (strcmp(a, "--save-io") == 0) {
            save_io = true;
        } else if (a[0] == '-') {
            return tdm_cli_fail("split", TDM_EXIT_USAGE, "unknown option '%s'", a);
        } else if (model == NULL) {
            model = a;
        } else {
            return tdm_cli_fail("split", TDM_EXIT_USAGE, "unexpected argument '%s'", a);
        }
    }
    if (model == NULL || cut_spec == NULL || out == NULL) {
        split_usage(stderr);
        return TDM_EXIT_USAGE;
    }
    if (save_io && !verify)
        return tdm_cli_fail("split", TDM_EXIT_USAGE, "--save-io needs --verify");
    tdm_split_cli c;
    int rc = tdm_split_cli_load("split", model, n_specs, specs, (int)threads, &c);
    if (rc != TDM_EXIT_OK)
        return rc;
    if (strcmp(cut_spec, "all") == 0) {
        /* Every listed cut into DIR/cut<i>: one process for a whole model's cuts. */
        for (int i = 0; i < c.cuts->n && rc == TDM_EXIT_OK; i++) {
            char sub[4096], spec[16];
            snprintf(sub, sizeof sub, "%s/cut%d", out, i);
            snprintf(spec, sizeof spec, "%d", i);
            rc = split_one(&c, model, spec, sub, verify, save_io, (int)threads, tol);
        }
    } else {
        rc = split_one(&c, model, cut_spec, out, verify, save_io, (int)threads, tol);
    }
    tdm_split_cli_free(&c);
    return rc;
}

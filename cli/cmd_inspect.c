/*
 * tandem inspect: the cut points of a model, with what each one costs.
 *
 * For every cut (see include/tandem/split.h) it prints the frontier tensors,
 * the bytes they take on the wire at float32 and at int8, and the FLOPs
 * before and after the cut; --profile adds the measured head and tail
 * latency on this machine (median of --repeat runs, each half timed on its
 * own), and --verify runs head then tail from the model file and reports how
 * far the result is from the unsplit run. A user picks a cut by its index or
 * by its tensor names (`tandem split --cut`).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "cli.h"
#include "cli_util.h"
#include "split_common.h"

static void inspect_usage(FILE *f)
{
    fprintf(f, "usage: tandem inspect MODEL.onnx [--input-shape NAME=1x3x32x32]... [--json]\n"
               "                      [--profile] [--repeat N] [--threads N] [--verify] [--tol T]\n"
               "\n"
               "Lists the model's cut points: frontier tensors, their bytes at float32 and\n"
               "int8, and cumulative FLOPs before and after each cut, for the given input\n"
               "shapes (declared shapes, symbolic dims 1, by default).\n"
               "  --json          one JSON object instead of a table\n"
               "  --profile       measure head and tail latency (median of --repeat runs, 20)\n"
               "  --threads N     worker threads for --profile and --verify (default 1)\n"
               "  --verify        run head then tail from the model file on random inputs and\n"
               "                  report the max relative difference from the unsplit run;\n"
               "                  exit 1 when any cut exceeds --tol (default 1e-5)\n");
}

typedef struct cut_extra {
    double head_ms, tail_ms, max_rel;
} cut_extra;

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int profile_cut(tdm_split_cli *c, const tdm_cut *cut, int repeat, cut_extra *x)
{
    const tdm_cut_list *l = c->cuts;
    tdm_err err = {{0}};
    tdm_tensor *in = calloc((size_t)l->n_inputs + 1, sizeof *in);
    tdm_tensor *out = calloc((size_t)l->n_outputs + 1, sizeof *out);
    double *h = calloc((size_t)repeat + 1, sizeof *h), *t = calloc((size_t)repeat + 1, sizeof *t);
    int rc = TDM_EXIT_OK;
    if (in == NULL || out == NULL || h == NULL || t == NULL) {
        rc = tdm_cli_fail("inspect", TDM_EXIT_FAIL, "out of memory");
        goto done;
    }
    if (tdm_split_random_inputs(l, 1, 0, in, &err) != TDM_OK) {
        rc = tdm_cli_fail("inspect", TDM_EXIT_FAIL, "%s", err.msg);
        goto done;
    }
    for (int r = -1; r < repeat; r++) { /* r = -1: warm-up, builds and caches the plans */
        double hm, tm;
        tdm_status st = tdm_split_run(c->s, c->s, l, cut, in, out, &hm, &tm, &err);
        for (int i = 0; i < l->n_outputs; i++)
            tdm_tensor_free(&out[i]);
        if (st != TDM_OK) {
            rc = tdm_cli_fail("inspect", TDM_EXIT_FAIL, "%s", err.msg);
            goto done;
        }
        if (r >= 0) {
            h[r] = hm;
            t[r] = tm;
        }
    }
    qsort(h, (size_t)repeat, sizeof *h, cmp_d);
    qsort(t, (size_t)repeat, sizeof *t, cmp_d);
    x->head_ms = h[repeat / 2];
    x->tail_ms = t[repeat / 2];
done:
    for (int i = 0; in != NULL && i < l->n_inputs; i++)
        tdm_tensor_free(&in[i]);
    free(in);
    free(out);
    free(h);
    free(t);
    return rc;
}

static void print_shape(const tdm_cut_tensor *t, char *buf, size_t len)
{
    size_t o = 0;
    o += (size_t)snprintf(buf + o, len - o, "[");
    for (int d = 0; d < t->ndim && o < len; d++)
        o += (size_t)snprintf(buf + o, len - o, "%s%lld", d ? "," : "", (long long)t->dims[d]);
    if (o < len)
        snprintf(buf + o, len - o, "]");
}

static void print_table(const char *model, const tdm_cut_list *l, const cut_extra *x, bool profile,
                        bool verify)
{
    printf("%s: %d cuts, %.4g MFLOPs in total, inputs", model, l->n, l->flops_total / 1e6);
    for (int i = 0; i < l->n_inputs; i++) {
        char sh[128];
        print_shape(&l->inputs[i], sh, sizeof sh);
        printf(" %s%s", l->inputs[i].name, sh);
    }
    printf("\n");
    printf("%4s %5s %12s %12s %11s %11s", "cut", "node", "fp32 bytes", "int8 bytes", "MFLOP head",
           "MFLOP tail");
    if (profile)
        printf(" %9s %9s", "head ms", "tail ms");
    if (verify)
        printf(" %9s", "max rel");
    printf("  tensors\n");
    for (int i = 0; i < l->n; i++) {
        const tdm_cut *c = &l->cuts[i];
        printf("%4d %5d %12llu %12llu %11.4g %11.4g", i, c->after_node,
               (unsigned long long)c->bytes_fp32, (unsigned long long)c->bytes_int8,
               c->flops_before / 1e6, c->flops_after / 1e6);
        if (profile)
            printf(" %9.4f %9.4f", x[i].head_ms, x[i].tail_ms);
        if (verify)
            printf(" %9.2e", x[i].max_rel);
        printf(" ");
        for (int k = 0; k < c->n; k++) {
            char sh[128];
            print_shape(&c->t[k], sh, sizeof sh);
            printf(" %s%s%s", c->t[k].name, sh, c->t[k].is_input ? "(input)" : "");
        }
        printf("\n");
    }
}

static void jstr(tdm_json_buf *b, const char *s)
{
    tdm_json_buf_string(b, s, strlen(s));
}

static void jlit(tdm_json_buf *b, const char *s)
{
    tdm_json_buf_raw(b, s, strlen(s));
}

static void jtensors(tdm_json_buf *b, const tdm_cut_tensor *t, int n)
{
    jlit(b, "[");
    for (int i = 0; i < n; i++) {
        jlit(b, i ? ",{\"name\":" : "{\"name\":");
        jstr(b, t[i].name);
        jlit(b, ",\"dtype\":");
        jstr(b, tdm_dtype_name(t[i].dtype));
        jlit(b, ",\"shape\":[");
        for (int d = 0; d < t[i].ndim; d++) {
            jlit(b, d ? "," : "");
            tdm_json_buf_i64(b, t[i].dims[d]);
        }
        jlit(b, "]");
        if (t[i].is_input)
            jlit(b, ",\"graph_input\":true");
        jlit(b, "}");
    }
    jlit(b, "]");
}

static int print_json(const char *model, const tdm_cut_list *l, const cut_extra *x, bool profile,
                      bool verify)
{
    tdm_json_buf b = {0};
    jlit(&b, "{\"model\":");
    jstr(&b, model);
    jlit(&b, ",\"flops_total\":");
    tdm_json_buf_f64(&b, l->flops_total);
    jlit(&b, ",\"inputs\":");
    jtensors(&b, l->inputs, l->n_inputs);
    jlit(&b, ",\"outputs\":");
    jtensors(&b, l->outputs, l->n_outputs);
    jlit(&b, ",\"cuts\":[");
    for (int i = 0; i < l->n; i++) {
        const tdm_cut *c = &l->cuts[i];
        jlit(&b, i ? ",\n{\"index\":" : "\n{\"index\":");
        tdm_json_buf_i64(&b, i);
        jlit(&b, ",\"after_node\":");
        tdm_json_buf_i64(&b, c->after_node);
        jlit(&b, ",\"tensors\":");
        jtensors(&b, c->t, c->n);
        jlit(&b, ",\"bytes_fp32\":");
        tdm_json_buf_i64(&b, (int64_t)c->bytes_fp32);
        jlit(&b, ",\"bytes_int8\":");
        tdm_json_buf_i64(&b, (int64_t)c->bytes_int8);
        jlit(&b, ",\"flops_before\":");
        tdm_json_buf_f64(&b, c->flops_before);
        jlit(&b, ",\"flops_after\":");
        tdm_json_buf_f64(&b, c->flops_after);
        if (profile) {
            jlit(&b, ",\"head_ms\":");
            tdm_json_buf_f64(&b, x[i].head_ms);
            jlit(&b, ",\"tail_ms\":");
            tdm_json_buf_f64(&b, x[i].tail_ms);
        }
        if (verify) {
            jlit(&b, ",\"max_rel_err\":");
            tdm_json_buf_f64(&b, x[i].max_rel);
        }
        jlit(&b, "}");
    }
    jlit(&b, "]}\n");
    int rc = TDM_EXIT_OK;
    if (b.failed)
        rc = tdm_cli_fail("inspect", TDM_EXIT_FAIL, "out of memory");
    else
        fwrite(b.data, 1, b.len, stdout);
    tdm_json_buf_free(&b);
    return rc;
}

int tdm_cmd_inspect(int argc, char **argv)
{
    const char *model = NULL;
    char *specs[TDM_SPLIT_MAX_SHAPES];
    int n_specs = 0;
    int64_t threads = 1, repeat = 20;
    bool json = false, profile = false, verify = false;
    double tol = 1e-5;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (tdm_cli_is_help(a)) {
            inspect_usage(stdout);
            return TDM_EXIT_OK;
        }
        if (strcmp(a, "--input-shape") == 0 || strcmp(a, "--threads") == 0 ||
            strcmp(a, "--repeat") == 0 || strcmp(a, "--tol") == 0) {
            if (i + 1 >= argc)
                return tdm_cli_fail("inspect", TDM_EXIT_USAGE, "%s needs a value", a);
            char *v = argv[++i];
            if (strcmp(a, "--input-shape") == 0) {
                if (n_specs == TDM_SPLIT_MAX_SHAPES)
                    return tdm_cli_fail("inspect", TDM_EXIT_USAGE, "more than %d input shapes",
                                        TDM_SPLIT_MAX_SHAPES);
                specs[n_specs++] = v;
            } else if (strcmp(a, "--threads") == 0) {
                if (!tdm_cli_parse_int(v, 1, 256, &threads))
                    return tdm_cli_fail("inspect", TDM_EXIT_USAGE, "--threads: '%s' is not 1..256",
                                        v);
            } else if (strcmp(a, "--repeat") == 0) {
                if (!tdm_cli_parse_int(v, 1, 1000000, &repeat))
                    return tdm_cli_fail("inspect", TDM_EXIT_USAGE,
                                        "--repeat: '%s' is not 1..1000000", v);
            } else {
                char *end;
                tol = strtod(v, &end);
                if (*end != '\0' || end == v || !(tol >= 0))
                    return tdm_cli_fail("inspect", TDM_EXIT_USAGE,
                                        "--tol: '%s' is not a non-negative number", v);
            }
        } else if (strcmp(a, "--json") == 0) {
            json = true;
        } else if (strcmp(a, "--profile") == 0) {
            profile = true;
        } else if (strcmp(a, "--verify") == 0) {
            verify = true;
        } else if (a[0] == '-') {
            return tdm_cli_fail("inspect", TDM_EXIT_USAGE, "unknown option '%s'", a);
        } else if (model == NULL) {
            model = a;
        } else {
            return tdm_cli_fail("inspect", TDM_EXIT_USAGE, "unexpected argument '%s'", a);
        }
    }
    if (model == NULL) {
        inspect_usage(stderr);
        return TDM_EXIT_USAGE;
    }
    tdm_split_cli c;
    int rc = tdm_split_cli_load("inspect", model, n_specs, specs, (int)threads, &c);
    if (rc != TDM_EXIT_OK)
        return rc;
    const tdm_cut_list *l = c.cuts;
    cut_extra *x = calloc((size_t)l->n + 1, sizeof *x);
    if (x == NULL) {
        rc = tdm_cli_fail("inspect", TDM_EXIT_FAIL, "out of memory");
        goto done;
    }
    bool bad = false;
    for (int i = 0; i < l->n && rc == TDM_EXIT_OK; i++) {
        if (profile)
            rc = profile_cut(&c, &l->cuts[i], (int)repeat, &x[i]);
        if (verify && rc == TDM_EXIT_OK) {
            rc = tdm_split_cli_verify("inspect", &c, c.s, c.s, &l->cuts[i], 1, NULL, &x[i].max_rel);
            if (!(x[i].max_rel <= tol)) {
                bad = true;
                fprintf(stderr,
                        "tandem inspect: cut %d: head+tail differs from the unsplit run by %.3g "
                        "(relative), over %.3g\n",
                        i, x[i].max_rel, tol);
            }
        }
    }
    if (rc == TDM_EXIT_OK) {
        if (json)
            rc = print_json(model, l, x, profile, verify);
        else
            print_table(model, l, x, profile, verify);
    }
    if (rc == TDM_EXIT_OK && bad)
        rc = TDM_EXIT_FAIL;
done:
    free(x);
    tdm_split_cli_free(&c);
    return rc;
}

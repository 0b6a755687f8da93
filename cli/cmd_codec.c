/*
 * tandem codec: tools around the feature codec. Subcommands dispatch from a
 * small table so that others (encode/decode of .npy files, say) can join.
 *
 * `tandem codec sweep` measures the rate-accuracy trade-off at one cut of a
 * real classifier on a real labelled dataset (src/collab/sweep.h does the
 * work): per codec setting, bytes per request, ratio to float32, encode and
 * decode time per request, top-1 accuracy, its loss against the
 * uncompressed model, and agreement with it. The table is sorted by bytes,
 * the Pareto front (fewest bytes for the accuracy) is marked '*' and the
 * smallest setting within --max-loss '<'. The images are fed in the model's
 * per-image shape exactly as `tandem eval` does, so the reference accuracy
 * printed here is the one `tandem eval` reports.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/plot.h"
#include "cli.h"
#include "cli_util.h"
#include "collab/sweep.h"
#include "split_common.h"
#include "tandem/data.h"

static void codec_usage(FILE *f)
{
    fprintf(f, "usage: tandem codec sweep ...   (see 'tandem codec sweep --help')\n"
               "\n"
               "subcommands:\n"
               "  sweep   rate-accuracy of the feature codec at a cut, on a labelled dataset\n");
}

static void sweep_usage(FILE *f)
{
    fprintf(f, "usage: tandem codec sweep MODEL.onnx --cut C --dataset mnist|fashion|cifar\n"
               "                          [--data PATH] [--scale S] [--mean a,b,c --std a,b,c]\n"
               "                          [--limit N] [--batch B] [--threads T]\n"
               "                          [--grid small|full] [--max-loss PCT] [--plot OUT.png]\n"
               "                          [--output NAME] [--json]\n"
               "\n"
               "Runs the head of MODEL over the dataset, encodes each image's cut tensors as\n"
               "its own codec frames at each setting of a grid, decodes them, runs the tail,\n"
               "and prints bytes per request, ratio to float32, encode/decode time per\n"
               "request, accuracy, loss vs the uncompressed model and agreement with it.\n"
               "  --cut C        a cut index from 'tandem inspect', a tensor name, or\n"
               "                 comma-separated tensor names\n"
               "  --dataset, --data, --scale, --mean, --std, --limit: as for 'tandem eval'\n"
               "  --batch B      images per head/tail run for a symbolic batch (default 32)\n"
               "  --grid G       small (10 settings, default) or full (44 settings: lossless,\n"
               "                 f16, int8/int4 x per-tensor/per-channel x min/max/p99.9 x\n"
               "                 top-k 0/0.5/0.25/0.1, plus dead zones 'z' (values below a\n"
               "                 fraction of the tensor's max |x| sent as 0) and int4 p99)\n"
               "  --max-loss PCT accuracy loss allowed, in percentage points (default 1)\n"
               "  --plot FILE    accuracy vs bytes per request (log x) as PNG\n"
               "  --output NAME  the scored output (default: the model's last output, the final\n"
               "                 prediction of a multi-exit model)\n"
               "  --json         one JSON object instead of the table\n");
}

static void put_json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

/* JSON has no NaN: print null for non-finite numbers. */
static void put_json_number(FILE *f, const char *fmt, double v)
{
    if (isfinite(v))
        fprintf(f, fmt, v);
    else
        fputs("null", f);
}

typedef struct sweep_args {
    const char *model, *cut, *dataset, *data, *plot, *output;
    tdm_data_norm norm;
    int64_t limit, batch, threads;
    tdm_sweep_grid_kind grid;
    double max_loss; /* fraction */
    bool json;
} sweep_args;

static int parse_sweep(int argc, char **argv, sweep_args *a)
{
    int n_mean = 0, n_std = 0;
    float mean[TDM_DATA_MAX_CHANNELS], stdv[TDM_DATA_MAX_CHANNELS];
    memset(a, 0, sizeof *a);
    a->norm.scale = 255.0f;
    a->threads = 1;
    a->max_loss = 0.01;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        if (tdm_cli_is_help(o)) {
            sweep_usage(stdout);
            return -1;
        }
        if (strcmp(o, "--json") == 0) {
            a->json = true;
            continue;
        }
        if (o[0] != '-') {
            if (a->model != NULL)
                return tdm_cli_fail("codec sweep", TDM_EXIT_USAGE, "unexpected argument '%s'", o);
            a->model = o;
            continue;
        }
        static const char *const with_value[] = {
            "--cut",   "--dataset", "--data", "--scale",    "--mean", "--std",   "--limit",
            "--batch", "--threads", "--grid", "--max-loss", "--plot", "--output"};
        bool known = false;
        for (size_t k = 0; k < sizeof with_value / sizeof with_value[0]; k++)
            known = known || strcmp(o, with_value[k]) == 0;
        if (!known)
            return tdm_cli_fail("codec sweep", TDM_EXIT_USAGE, "unknown option '%s'", o);
        if (i + 1 >= argc)
            return tdm_cli_fail("codec sweep", TDM_EXIT_USAGE, "%s needs a value", o);
        const char *v = argv[++i];
        if (strcmp(o, "--cut") == 0) {
            a->cut = v;
        } else if (strcmp(o, "--dataset") == 0) {
            if (strcmp(v, "mnist") && strcmp(v, "fashion") && strcmp(v, "cifar"))
                return tdm_cli_fail("codec sweep", TDM_EXIT_USAGE,
                                    "--dataset: '%s' is not mnist, fashion or cifar", v);
            a->dataset = v;
        } else if (strcmp(o, "--data") == 0) {
            a->data = v;
        } else if (strcmp(o, "--plot") == 0) {
            a->plot = v;
        } else if (strcmp(o, "--output") == 0) {
            a->output = v;
        } else if (strcmp(o, "--scale") == 0) {
            float s;
            if (tdm_cli_parse_floats(v, &s, 1) != 1 || !(s > 0.0f))
                return tdm_cli_fail("codec sweep", TDM_EXIT_USAGE,
                                    "--scale: '%s' is not a positive number", v);
            a->norm.scale = s;
        } else if (strcmp(o, "--mean") == 0 || strcmp(o, "--std") == 0) {
            bool is_mean = strcmp(o, "--mean") == 0;
            int n = tdm_cli_parse_floats(v, is_mean ? mean : stdv, TDM_DATA_MAX_CHANNELS);
            if (n < 0)
                return tdm_cli_fail("codec sweep", TDM_EXIT_USAGE,
                                    "%s: '%s' is not 1 to %d comma-separated numbers", o, v,
                                    TDM_DATA_MAX_CHANNELS);
            *(is_mean ? &n_mean : &n_std) = n;
        } else if (strcmp(o, "--limit") == 0) {
            if (!tdm_cli_parse_int(v, 1, INT64_MAX, &a->limit))
                return tdm_cli_fail("codec sweep", TDM_EXIT_USAGE,
                                    "--limit: '%s' is not a positive count", v);
        } else if (strcmp(o, "--batch") == 0) {
            if (!tdm_cli_parse_int(v, 1, 1 << 16, &a->batch))
                return tdm_cli_fail("codec sweep", TDM_EXIT_USAGE, "--batch: '%s' is not 1..%d", v,
                                    1 << 16);
        } else if (strcmp(o, "--threads") == 0) {
            if (!tdm_cli_parse_int(v, 1, 256, &a->threads))
                return tdm_cli_fail("codec sweep", TDM_EXIT_USAGE, "--threads: '%s' is not 1..256",
                                    v);
        } else if (strcmp(o, "--grid") == 0) {
            if (strcmp(v, "small") == 0)
                a->grid = TDM_SWEEP_GRID_SMALL;
            else if (strcmp(v, "full") == 0)
                a->grid = TDM_SWEEP_GRID_FULL;
            else
                return tdm_cli_fail("codec sweep", TDM_EXIT_USAGE,
                                    "--grid: '%s' is not small or full", v);
        } else {
            char *end;
            errno = 0;
            double pct = strtod(v, &end);
            if (end == v || *end != '\0' || errno != 0 || !(pct >= 0 && pct <= 100))
                return tdm_cli_fail("codec sweep", TDM_EXIT_USAGE,
                                    "--max-loss: '%s' is not a percentage in [0, 100]", v);
            a->max_loss = pct / 100.0;
        }
    }
    if (a->model == NULL || a->cut == NULL || a->dataset == NULL) {
        sweep_usage(stderr);
        return TDM_EXIT_USAGE;
    }
    if (a->data == NULL && tdm_dataset_default_path(a->dataset) == NULL)
        return tdm_cli_fail("codec sweep", TDM_EXIT_USAGE, "--data PATH is required for %s",
                            a->dataset);
    if ((n_mean == 0) != (n_std == 0))
        return tdm_cli_fail("codec sweep", TDM_EXIT_USAGE, "--mean and --std go together");
    if (n_mean > 1 && n_std > 1 && n_mean != n_std)
        return tdm_cli_fail("codec sweep", TDM_EXIT_USAGE,
                            "--mean has %d values but --std has %d (give 1 or one per channel)",
                            n_mean, n_std);
    a->norm.n_channels = n_mean > n_std ? n_mean : n_std;
    for (int k = 0; k < a->norm.n_channels; k++) {
        a->norm.mean[k] = mean[n_mean == 1 ? 0 : k];
        a->norm.std[k] = stdv[n_std == 1 ? 0 : k];
        if (!(a->norm.std[k] > 0.0f))
            return tdm_cli_fail("codec sweep", TDM_EXIT_USAGE,
                                "--std: value %d (%g) must be positive", k + 1,
                                (double)a->norm.std[k]);
    }
    return TDM_EXIT_OK;
}

/* Reshapes [N, C, H, W] images to the model's per-image shape when the element counts agree. */
static void fit_input_shape(tdm_tensor *x, const tdm_value_info *vi)
{
    const int64_t n = x->dims[0], per = tdm_tensor_numel(x) / (n > 0 ? n : 1);
    int64_t declared = 1;
    bool known = vi->ndim >= 2;
    for (int k = 1; k < vi->ndim; k++) {
        known = known && vi->dims[k] > 0;
        declared *= vi->dims[k] > 0 ? vi->dims[k] : 1;
    }
    if (!known || declared != per)
        return;
    x->ndim = vi->ndim;
    x->dims[0] = n;
    for (int k = 1; k < vi->ndim; k++)
        x->dims[k] = vi->dims[k];
}

static int write_plot(const char *path, const char *title, const tdm_sweep_result *r, int n,
                      const int *order, double ref_acc)
{
    tdm_err err = {{0}};
    tdm_plot *p = NULL;
    double *x = malloc((size_t)(2 * n + 2) * sizeof *x),
           *y = malloc((size_t)(2 * n + 2) * sizeof *y);
    int rc = TDM_EXIT_FAIL;
    if (x == NULL || y == NULL) {
        rc = tdm_cli_fail("codec sweep", TDM_EXIT_FAIL, "out of memory");
        goto done;
    }
    if (tdm_plot_create(900, 560, &p, &err) != TDM_OK || tdm_plot_title(p, title, &err) != TDM_OK ||
        tdm_plot_labels(p, "bytes per request", "top-1 accuracy (%)", &err) != TDM_OK)
        goto fail;
    tdm_plot_log_x(p, true);
    int m = 0;
    for (int i = 0; i < n; i++) {
        x[m] = r[order[i]].bytes_per_request;
        y[m++] = 100.0 * r[order[i]].accuracy;
    }
    if (tdm_plot_series(p, "all settings", x, y, (size_t)m, TDM_PLOT_POINTS, &err) != TDM_OK)
        goto fail;
    m = 0;
    for (int i = 0; i < n; i++)
        if (r[order[i]].pareto) {
            x[m] = r[order[i]].bytes_per_request;
            y[m++] = 100.0 * r[order[i]].accuracy;
        }
    if (tdm_plot_series(p, "Pareto front", x, y, (size_t)m, TDM_PLOT_LINE_POINTS, &err) != TDM_OK)
        goto fail;
    x[0] = r[order[0]].bytes_per_request;
    x[1] = r[order[n - 1]].bytes_per_request;
    y[0] = y[1] = 100.0 * ref_acc;
    if (tdm_plot_series(p, "uncompressed", x, y, 2, TDM_PLOT_LINE, &err) != TDM_OK)
        goto fail;
    if (tdm_plot_write_png(p, path, &err) != TDM_OK)
        goto fail;
    rc = TDM_EXIT_OK;
    goto done;
fail:
    rc = tdm_cli_fail("codec sweep", TDM_EXIT_FAIL, "--plot %s: %s", path, err.msg);
done:
    tdm_plot_free(p);
    free(x);
    free(y);
    return rc;
}

static void print_json(const sweep_args *a, const tdm_cut *cut, int cut_index, int64_t n_img,
                       double ref_acc, double fp32, const tdm_sweep_result *r, int n,
                       const int *order, int best)
{
    char label[96];
    printf("{\"model\":");
    put_json_string(stdout, a->model);
    printf(",\"dataset\":\"%s\",\"cut\":", a->dataset);
    put_json_string(stdout, a->cut);
    printf(",\"cut_index\":%d,\"cut_tensors\":[", cut_index);
    for (int k = 0; k < cut->n; k++) {
        if (k)
            putchar(',');
        put_json_string(stdout, cut->t[k].name);
    }
    printf("],\"images\":%lld,\"reference_accuracy\":%.6f,\"fp32_bytes\":%.0f,"
           "\"max_loss\":%.6f,\"settings\":[",
           (long long)n_img, ref_acc, fp32, a->max_loss);
    for (int i = 0; i < n; i++) {
        const tdm_sweep_result *s = &r[order[i]];
        const tdm_codec_params *p = &s->params;
        if (i)
            putchar(',');
        printf("{\"label\":");
        put_json_string(stdout, tdm_sweep_label(p, label, sizeof label));
        printf(",\"mode\":\"%s\",\"granularity\":\"%s\",\"clip\":\"%s\",\"percentile\":%g,"
               "\"topk_fraction\":%g,\"bytes_per_request\":",
               tdm_codec_mode_name(p->mode),
               p->granularity == TDM_CODEC_GRANULARITY_CHANNEL ? "channel" : "tensor",
               p->clip == TDM_CODEC_CLIP_PERCENTILE ? "percentile" : "minmax",
               (double)p->percentile, (double)p->topk_fraction);
        put_json_number(stdout, "%.1f", s->bytes_per_request);
        printf(",\"ratio_fp32\":");
        put_json_number(stdout, "%.3f", s->ratio_fp32);
        printf(",\"encode_us\":");
        put_json_number(stdout, "%.2f", s->encode_us);
        printf(",\"decode_us\":");
        put_json_number(stdout, "%.2f", s->decode_us);
        printf(",\"encode_p50_us\":");
        put_json_number(stdout, "%.2f", s->encode_p50_us);
        printf(",\"decode_p50_us\":");
        put_json_number(stdout, "%.2f", s->decode_p50_us);
        printf(",\"accuracy\":");
        put_json_number(stdout, "%.6f", s->accuracy);
        printf(",\"loss\":");
        put_json_number(stdout, "%.6f", s->loss);
        printf(",\"agreement\":");
        put_json_number(stdout, "%.6f", s->agreement);
        printf(",\"pareto\":%s,\"best\":%s}", s->pareto ? "true" : "false",
               order[i] == best ? "true" : "false");
    }
    printf("],\"best\":");
    if (best >= 0)
        put_json_string(stdout, tdm_sweep_label(&r[best].params, label, sizeof label));
    else
        printf("null");
    printf("}\n");
}

static void print_table(const sweep_args *a, const tdm_cut *cut, int64_t n_img, double ref_acc,
                        double fp32, const tdm_sweep_result *r, int n, const int *order, int best)
{
    char label[96];
    printf("%s, cut %s (%d tensor%s, %.0f bytes as float32 per request), %lld images\n", a->model,
           a->cut, cut->n, cut->n == 1 ? "" : "s", fp32, (long long)n_img);
    printf("uncompressed accuracy %.2f%%\n\n", 100.0 * ref_acc);
    printf("  %-28s %12s %9s %10s %10s %9s %8s %9s\n", "setting", "bytes/req", "x fp32",
           "enc us p50", "dec us p50", "accuracy", "loss", "agree");
    for (int i = 0; i < n; i++) {
        const tdm_sweep_result *s = &r[order[i]];
        printf("%c%c%-28s %12.1f %9.2f %10.2f %10.2f %8.2f%% %7.2f%% %8.2f%%\n",
               s->pareto ? '*' : ' ', order[i] == best ? '<' : ' ',
               tdm_sweep_label(&s->params, label, sizeof label), s->bytes_per_request,
               s->ratio_fp32, s->encode_p50_us, s->decode_p50_us, 100.0 * s->accuracy,
               100.0 * s->loss, 100.0 * s->agreement);
    }
    printf("\n* Pareto front   < smallest within %.2f%% loss", 100.0 * a->max_loss);
    if (best >= 0)
        printf(": %s, %.1f bytes/request, %.1fx smaller than float32\n",
               tdm_sweep_label(&r[best].params, label, sizeof label), r[best].bytes_per_request,
               r[best].ratio_fp32);
    else
        printf(": none\n");
}

static int cmd_sweep(int argc, char **argv)
{
    sweep_args a;
    int rc = parse_sweep(argc, argv, &a);
    if (rc < 0)
        return TDM_EXIT_OK;
    if (rc != TDM_EXIT_OK)
        return rc;

    tdm_err err = {{0}};
    tdm_dataset ds = {0};
    tdm_split_cli c;
    tdm_cut cut = {0};
    int cut_index = -1;
    bool have_cut = false;
    tdm_codec_params settings[TDM_SWEEP_MAX_SETTINGS];
    tdm_sweep_result results[TDM_SWEEP_MAX_SETTINGS];
    int order[TDM_SWEEP_MAX_SETTINGS];
    const char **names = NULL;

    if (tdm_dataset_load(a.dataset, a.data, false, &a.norm, a.limit, &ds, &err) != TDM_OK)
        return tdm_cli_fail("codec sweep", TDM_EXIT_FAIL, "%s", err.msg);
    rc = tdm_split_cli_load("codec sweep", a.model, 0, NULL, (int)a.threads, &c);
    if (rc != TDM_EXIT_OK)
        goto done;
    rc = TDM_EXIT_FAIL;
    if (tdm_graph_num_inputs(c.g) != 1 || tdm_graph_num_outputs(c.g) < 1) {
        rc = tdm_cli_fail("codec sweep", TDM_EXIT_FAIL,
                          "%s: has %d inputs and %d outputs; the sweep needs one input", a.model,
                          tdm_graph_num_inputs(c.g), tdm_graph_num_outputs(c.g));
        goto done;
    }
    tdm_status st = tdm_cut_resolve(c.cuts, c.orig, a.cut, &cut, &cut_index, &err);
    if (st != TDM_OK) {
        rc = tdm_cli_fail("codec sweep", st == TDM_ERR_NOMEM ? TDM_EXIT_FAIL : TDM_EXIT_USAGE,
                          "--cut %s: %s", a.cut, err.msg);
        goto done;
    }
    have_cut = true;
    tdm_value_info vi, vo;
    tdm_graph_input_info(c.g, 0, &vi);
    tdm_graph_output_info(c.g, tdm_graph_num_outputs(c.g) - 1, &vo);
    if (a.output != NULL)
        vo.name = a.output;
    if (vi.dtype != TDM_DTYPE_FLOAT32) {
        rc = tdm_cli_fail("codec sweep", TDM_EXIT_FAIL, "%s: input '%s' is %s, want float32",
                          a.model, vi.name, tdm_dtype_name(vi.dtype));
        goto done;
    }
    fit_input_shape(&ds.x, &vi);
    const bool fixed = vi.ndim >= 1 && vi.dims[0] > 0;
    int64_t batch = fixed ? vi.dims[0] : (a.batch > 0 ? a.batch : 32);
    if (fixed && a.batch > 0 && a.batch != batch) {
        rc = tdm_cli_fail("codec sweep", TDM_EXIT_USAGE,
                          "--batch %lld: %s declares a fixed batch of %lld", (long long)a.batch,
                          a.model, (long long)batch);
        goto done;
    }
    if (!fixed && batch > ds.n)
        batch = ds.n;
    names = calloc((size_t)cut.n, sizeof *names);
    if (names == NULL) {
        rc = tdm_cli_fail("codec sweep", TDM_EXIT_FAIL, "out of memory");
        goto done;
    }
    for (int k = 0; k < cut.n; k++)
        names[k] = cut.t[k].name;
    const int n = tdm_sweep_grid(a.grid, settings, TDM_SWEEP_MAX_SETTINGS);
    tdm_sweep_config cfg = {.session = c.s,
                            .input_name = vi.name,
                            .output_name = vo.name,
                            .n_cut = cut.n,
                            .cut_names = names,
                            .x = &ds.x,
                            .labels = ds.labels,
                            .batch = batch,
                            .fixed_batch = fixed,
                            .max_decoded = (size_t)1 << 30};
    int64_t ref_correct = 0;
    double fp32 = 0;
    if (tdm_sweep_run(&cfg, settings, n, results, &ref_correct, &fp32, &err) != TDM_OK) {
        rc = tdm_cli_fail("codec sweep", TDM_EXIT_FAIL, "%s: %s", a.model, err.msg);
        goto done;
    }
    const double ref_acc = ds.n > 0 ? (double)ref_correct / (double)ds.n : 0.0;
    tdm_sweep_finish(results, n, ref_acc, fp32);
    tdm_sweep_order(results, n, order);
    const int best = tdm_sweep_best(results, n, a.max_loss + 1e-12);
    if (a.json)
        print_json(&a, &cut, cut_index, ds.n, ref_acc, fp32, results, n, order, best);
    else
        print_table(&a, &cut, ds.n, ref_acc, fp32, results, n, order, best);
    rc = TDM_EXIT_OK;
    if (a.plot != NULL) {
        char title[TDM_PLOT_MAX_TEXT];
        const char *base = strrchr(a.model, '/');
        snprintf(title, sizeof title, "%s, cut %s: accuracy vs bytes per request",
                 base ? base + 1 : a.model, a.cut);
        rc = write_plot(a.plot, title, results, n, order, ref_acc);
    }
done:
    free(names);
    if (have_cut)
        tdm_cut_clear(&cut);
    tdm_split_cli_free(&c);
    tdm_dataset_free(&ds);
    return rc;
}

typedef struct codec_sub {
    const char *name;
    int (*fn)(int argc, char **argv);
} codec_sub;

static const codec_sub k_subs[] = {
    {"sweep", cmd_sweep},
};

int tdm_cmd_codec(int argc, char **argv)
{
    if (argc < 2) {
        codec_usage(stderr);
        return TDM_EXIT_USAGE;
    }
    if (tdm_cli_is_help(argv[1])) {
        codec_usage(stdout);
        return TDM_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof k_subs / sizeof k_subs[0]; i++)
        if (strcmp(argv[1], k_subs[i].name) == 0)
            return k_subs[i].fn(argc - 1, argv + 1);
    return tdm_cli_fail("codec", TDM_EXIT_USAGE,
                        "unknown subcommand '%s' (try 'tandem codec --help')", argv[1]);
}

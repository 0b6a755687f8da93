/*
 * tandem cascade: an edge model answers the images it is confident about,
 * a cloud model the rest; accuracy versus the fraction sent to the cloud.
 *
 * Both models run once over the labelled set (through the public API, with
 * tdm_session_run_range to the chosen output, so only the nodes that output
 * needs are run: the edge's early-exit branches cost nothing when the final
 * exit is scored). Every operating point is then computed from the saved
 * predictions by src/collab/cascade.h: one row per --thresholds value, and,
 * for --plot, the whole curve at every percent sent plus the oracle bound.
 *
 * FLOPs per image come from src/collab/flops.h: the nodes needed for the
 * chosen output of each model, for one image. Mean FLOPs of a point are
 * edge + (fraction sent) x cloud: the edge always runs.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/json.h"
#include "base/plot.h"
#include "cli.h"
#include "cli_util.h"
#include "collab/cascade.h"
#include "collab/flops.h"
#include "tandem/data.h"
#include "tandem/tandem.h"

#define MAX_THRESHOLDS 64
#define CURVE_POINTS 101

static void cascade_usage(FILE *f)
{
    fprintf(f, "usage: tandem cascade --edge EDGE.onnx --cloud CLOUD.onnx [--data D]\n"
               "                      [--dataset mnist|fashion|cifar] [--edge-output NAME]\n"
               "                      [--cloud-output NAME] [--thresholds t1,t2,...]\n"
               "                      [--temperature T] [--plot OUT.png] [--batch B] [--limit N]\n"
               "                      [--threads T] [--json]\n"
               "\n"
               "Runs both models over the test set once, then for each confidence threshold\n"
               "(max softmax probability of the edge output at temperature T) keeps the images\n"
               "with confidence >= threshold at the edge and sends the rest to the cloud.\n"
               "  --data D          fashion (alias fashion-mnist, the default), mnist, or a path\n"
               "                    (folder with t10k-* idx files, an images idx file, a .csv)\n"
               "  --dataset NAME    how to read a --data path (default fashion)\n"
               "  --edge-output N   edge output scored (default: 'logits' if the model has it,\n"
               "                    else its first output); likewise --cloud-output\n"
               "  --thresholds L    comma-separated, each in [0, 1]\n"
               "                    (default 0.5,0.6,0.7,0.8,0.9,0.95,0.98,0.99,0.995,0.999)\n"
               "  --temperature T   divide the edge logits by T first (default 1)\n"
               "  --plot OUT.png    accuracy vs %% sent to the cloud (curve, thresholds, oracle)\n"
               "  --batch B         images per run (default 256); --limit N first N images only\n"
               "  --threads T       worker threads (default 1)\n"
               "  --json            one JSON object instead of the table\n");
}

/* Parses "a,b,c" into at most max doubles; returns the count or -1. */
static int parse_list(const char *s, double *out, int max)
{
    int n = 0;
    const char *p = s;
    for (;;) {
        if (n == max)
            return -1;
        char *end;
        errno = 0;
        double v = strtod(p, &end);
        if (end == p || errno != 0)
            return -1;
        out[n++] = v;
        if (*end == '\0')
            return n;
        if (*end != ',')
            return -1;
        p = end + 1;
    }
}

/* One model's predictions over the dataset. */
typedef struct model_run {
    const char *path;
    const char *output; /* NULL: 'logits' or output 0 */
    char *output_owned;
    float *logits; /* [n, k] */
    int64_t k;
    double flops; /* per image; NAN when it could not be counted */
    char flops_note[TDM_ERR_MSG_MAX];
    double seconds;
} model_run;

static void model_run_free(model_run *m)
{
    free(m->logits);
    free(m->output_owned);
}

/* Runs m->path over ds in batches; fills logits, k, flops. Returns an exit code. */
static int run_model(model_run *m, const tdm_dataset *ds, int64_t batch, int threads)
{
    tdm_err err = {{0}};
    tdm_graph *g = NULL;
    tdm_session *s = NULL;
    tdm_tensor in = {0}, out = {0};
    int rc = TDM_EXIT_FAIL;
    if (tdm_graph_load(m->path, NULL, &g, &err) != TDM_OK) {
        if (strstr(err.msg, m->path) != NULL) /* the loader's message names the file already */
            rc = tdm_cli_fail("cascade", TDM_EXIT_FAIL, "%s", err.msg);
        else
            rc = tdm_cli_fail("cascade", TDM_EXIT_FAIL, "%s: %s", m->path, err.msg);
        goto done;
    }
    tdm_value_info vi;
    if (tdm_graph_num_inputs(g) != 1 || tdm_graph_input_info(g, 0, &vi) != TDM_OK ||
        vi.dtype != TDM_DTYPE_FLOAT32) {
        rc = tdm_cli_fail("cascade", TDM_EXIT_FAIL, "%s: want one float32 input, it has %d inputs",
                          m->path, tdm_graph_num_inputs(g));
        goto done;
    }
    const int64_t per = ds->x.dims[1] * ds->x.dims[2] * ds->x.dims[3];
    if (vi.ndim != 4 || (vi.dims[1] > 0 && vi.dims[1] != ds->x.dims[1]) ||
        (vi.dims[2] > 0 && vi.dims[2] != ds->x.dims[2]) ||
        (vi.dims[3] > 0 && vi.dims[3] != ds->x.dims[3])) {
        rc = tdm_cli_fail("cascade", TDM_EXIT_FAIL,
                          "%s: input '%s' is not [N,%lld,%lld,%lld] like the dataset's images",
                          m->path, vi.name, (long long)ds->x.dims[1], (long long)ds->x.dims[2],
                          (long long)ds->x.dims[3]);
        goto done;
    }
    if (vi.dims[0] > 0 && vi.dims[0] != batch) {
        if (vi.dims[0] > ds->n) {
            rc = tdm_cli_fail("cascade", TDM_EXIT_FAIL, "%s: declares a fixed batch of %lld",
                              m->path, (long long)vi.dims[0]);
            goto done;
        }
        batch = vi.dims[0];
    }
    if (m->output == NULL) { /* 'logits' if there is one, else output 0 */
        tdm_value_info vo;
        for (int i = tdm_graph_num_outputs(g) - 1; i >= 0; i--)
            if (tdm_graph_output_info(g, i, &vo) == TDM_OK &&
                (i == 0 || strcmp(vo.name, "logits") == 0)) {
                m->output_owned = tdm_strdup(vo.name);
                break;
            }
        if (m->output_owned == NULL) {
            rc = tdm_cli_fail("cascade", TDM_EXIT_FAIL, "%s: has no outputs", m->path);
            goto done;
        }
        m->output = m->output_owned;
    }
    tdm_session_options so = {.threads = threads};
    if (tdm_session_create(g, &so, &s, &err) != TDM_OK) {
        rc = tdm_cli_fail("cascade", TDM_EXIT_FAIL, "%s: %s", m->path, err.msg);
        goto done;
    }
    /* FLOPs of one image up to the scored output. */
    int64_t one[4] = {1, ds->x.dims[1], ds->x.dims[2], ds->x.dims[3]};
    tdm_tensor shape = {.dtype = TDM_DTYPE_FLOAT32, .ndim = 4};
    memcpy(shape.dims, one, sizeof one);
    double *per_node = NULL, total = 0;
    m->flops = NAN;
    if (tdm_flops_per_node(g, s, 1, &vi.name, &shape, &per_node, &total, &err) == TDM_OK &&
        tdm_flops_until(g, per_node, 1, &m->output, &m->flops, &err) == TDM_OK)
        m->flops_note[0] = '\0';
    else
        snprintf(m->flops_note, sizeof m->flops_note, "%s", err.msg);
    free(per_node);

    const char *in_name = vi.name;
    int64_t dims[4] = {batch, ds->x.dims[1], ds->x.dims[2], ds->x.dims[3]};
    if (tdm_tensor_make(&in, TDM_DTYPE_FLOAT32, 4, dims, &err) != TDM_OK) {
        rc = tdm_cli_fail("cascade", TDM_EXIT_FAIL, "%s", err.msg);
        goto done;
    }
    const bool fixed = vi.dims[0] > 0;
    const uint64_t t0 = tdm_now_ns();
    for (int64_t start = 0; start < ds->n; start += batch) {
        int64_t nb = ds->n - start < batch ? ds->n - start : batch;
        in.dims[0] = fixed ? batch : nb;
        memcpy(in.data, (const float *)ds->x.data + start * per,
               (size_t)(nb * per) * sizeof(float));
        if (nb < in.dims[0])
            memset((float *)in.data + nb * per, 0,
                   (size_t)((in.dims[0] - nb) * per) * sizeof(float));
        tdm_status st = tdm_session_run_range(s, 1, &in_name, &in, 1, &m->output, &out, &err);
        if (st == TDM_OK) {
            int64_t total_el = tdm_tensor_numel(&out);
            int64_t k = out.ndim >= 1 && out.dims[0] == in.dims[0] ? total_el / in.dims[0] : 0;
            if (out.dtype != TDM_DTYPE_FLOAT32 || k < 1 || k * in.dims[0] != total_el ||
                (m->k != 0 && k != m->k)) {
                char buf[128];
                st = tdm_errf(&err, TDM_ERR_SHAPE,
                              "output '%s' is %s, want float32 [%lld, classes]", m->output,
                              tdm_tensor_shape_str(&out, buf, sizeof buf), (long long)in.dims[0]);
            } else if (m->logits == NULL) {
                m->k = k;
                m->logits = malloc((size_t)(ds->n * k) * sizeof(float));
                if (m->logits == NULL)
                    st = tdm_errf(&err, TDM_ERR_NOMEM, "out of memory for %lld x %lld logits",
                                  (long long)ds->n, (long long)k);
            }
            if (st == TDM_OK)
                memcpy(m->logits + start * m->k, out.data, (size_t)(nb * m->k) * sizeof(float));
        }
        tdm_tensor_free(&out);
        if (st != TDM_OK) {
            rc = tdm_cli_fail("cascade", TDM_EXIT_FAIL, "%s: images %lld..%lld: %s", m->path,
                              (long long)start, (long long)(start + nb - 1), err.msg);
            goto done;
        }
    }
    m->seconds = (double)(tdm_now_ns() - t0) / 1e9;
    rc = TDM_EXIT_OK;
done:
    tdm_tensor_free(&in);
    tdm_session_free(s);
    tdm_graph_free(g);
    return rc;
}

static bool is_dataset_name(const char *s)
{
    return strcmp(s, "fashion") == 0 || strcmp(s, "fashion-mnist") == 0 ||
           strcmp(s, "mnist") == 0 || strcmp(s, "cifar") == 0;
}

static int write_plot(const char *path, const tdm_cascade_data *d, const tdm_cascade_point *pts,
                      int n_pts, double edge_acc, double cloud_acc)
{
    tdm_err err = {{0}};
    double f[CURVE_POINTS], cx[CURVE_POINTS], cy[CURVE_POINTS], oy[CURVE_POINTS];
    tdm_cascade_point curve[CURVE_POINTS];
    for (int j = 0; j < CURVE_POINTS; j++)
        f[j] = j / (double)(CURVE_POINTS - 1);
    if (tdm_cascade_fractions(d, f, CURVE_POINTS, curve, &err) != TDM_OK ||
        tdm_cascade_oracle(d, f, CURVE_POINTS, oy, &err) != TDM_OK)
        return tdm_cli_fail("cascade", TDM_EXIT_FAIL, "%s", err.msg);
    for (int j = 0; j < CURVE_POINTS; j++) {
        cx[j] = 100.0 * f[j];
        cy[j] = 100.0 * curve[j].accuracy;
        oy[j] *= 100.0;
    }
    double tx[MAX_THRESHOLDS], ty[MAX_THRESHOLDS];
    for (int t = 0; t < n_pts; t++) {
        tx[t] = 100.0 * pts[t].frac_cloud;
        ty[t] = 100.0 * pts[t].accuracy;
    }
    const double hx[2] = {0.0, 100.0}, ey[2] = {100.0 * edge_acc, 100.0 * edge_acc},
                 cly[2] = {100.0 * cloud_acc, 100.0 * cloud_acc};
    /* y from a little under the worst point to a little over the best one */
    double lo = 100.0 * (edge_acc < cloud_acc ? edge_acc : cloud_acc), hi = oy[CURVE_POINTS - 1];
    for (int j = 0; j < CURVE_POINTS; j++) {
        hi = cy[j] > hi ? cy[j] : hi;
        lo = cy[j] < lo ? cy[j] : lo;
    }
    double span = hi - lo > 0.5 ? hi - lo : 0.5;
    tdm_plot *p = NULL;
    tdm_status st = tdm_plot_create(800, 560, &p, &err);
    if (st == TDM_OK)
        st = tdm_plot_title(p, "Edge-cloud cascade: accuracy vs images sent to the cloud", &err);
    if (st == TDM_OK)
        st = tdm_plot_labels(p, "sent to the cloud (% of images)", "accuracy (%)", &err);
    if (st == TDM_OK)
        st = tdm_plot_x_range(p, 0.0, 100.0, &err);
    if (st == TDM_OK)
        st = tdm_plot_y_range(p, floor(lo - 0.15 * span), ceil(hi + 0.15 * span), &err);
    if (st == TDM_OK)
        st = tdm_plot_series(p, "cascade (max-softmax threshold)", cx, cy, CURVE_POINTS,
                             TDM_PLOT_LINE, &err);
    if (st == TDM_OK)
        st = tdm_plot_series(p, "thresholds of the table", tx, ty, (size_t)n_pts, TDM_PLOT_POINTS,
                             &err);
    if (st == TDM_OK)
        st = tdm_plot_series(p, "oracle (best possible choice)", cx, oy, CURVE_POINTS,
                             TDM_PLOT_LINE, &err);
    if (st == TDM_OK)
        st = tdm_plot_series(p, "edge alone", hx, ey, 2, TDM_PLOT_LINE, &err);
    if (st == TDM_OK)
        st = tdm_plot_series(p, "cloud alone", hx, cly, 2, TDM_PLOT_LINE, &err);
    if (st == TDM_OK)
        st = tdm_plot_write_png(p, path, &err);
    tdm_plot_free(p);
    if (st != TDM_OK)
        return tdm_cli_fail("cascade", TDM_EXIT_FAIL, "--plot %s: %s", path, err.msg);
    return TDM_EXIT_OK;
}

static void json_model(tdm_json_buf *b, const char *key, const model_run *m, double acc)
{
    tdm_json_buf_raw(b, ",\"", 2);
    tdm_json_buf_raw(b, key, strlen(key));
    tdm_json_buf_raw(b, "\":{\"model\":", 11);
    tdm_json_buf_string(b, m->path, strlen(m->path));
    tdm_json_buf_raw(b, ",\"output\":", 10);
    tdm_json_buf_string(b, m->output, strlen(m->output));
    tdm_json_buf_raw(b, ",\"accuracy\":", 12);
    tdm_json_buf_f64(b, acc);
    tdm_json_buf_raw(b, ",\"flops\":", 9);
    tdm_json_buf_f64(b, m->flops);
    tdm_json_buf_raw(b, ",\"seconds\":", 11);
    tdm_json_buf_f64(b, m->seconds);
    tdm_json_buf_raw(b, "}", 1);
}

static void json_field(tdm_json_buf *b, const char *key, double v, bool first)
{
    if (!first)
        tdm_json_buf_raw(b, ",", 1);
    tdm_json_buf_string(b, key, strlen(key));
    tdm_json_buf_raw(b, ":", 1);
    tdm_json_buf_f64(b, v);
}

int tdm_cmd_cascade(int argc, char **argv)
{
    model_run edge = {0}, cloud = {0};
    const char *data = NULL, *dataset = NULL, *plot = NULL;
    double thr[MAX_THRESHOLDS] = {0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999};
    int n_thr = 10;
    double temperature = 1.0;
    int64_t batch = 256, limit = 0, threads = 1;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (tdm_cli_is_help(a)) {
            cascade_usage(stdout);
            return TDM_EXIT_OK;
        }
        if (strcmp(a, "--json") == 0) {
            json = true;
            continue;
        }
        static const char *const k_valued[] = {
            "--edge",       "--cloud", "--data",  "--dataset", "--edge-output", "--cloud-output",
            "--thresholds", "--plot",  "--batch", "--limit",   "--threads",     "--temperature"};
        int which = -1;
        for (int k = 0; k < (int)(sizeof k_valued / sizeof k_valued[0]); k++)
            if (strcmp(a, k_valued[k]) == 0)
                which = k;
        if (which < 0)
            return tdm_cli_fail("cascade", TDM_EXIT_USAGE, "%s '%s'",
                                a[0] == '-' ? "unknown option" : "unexpected argument", a);
        if (i + 1 >= argc)
            return tdm_cli_fail("cascade", TDM_EXIT_USAGE, "%s needs a value", a);
        const char *v = argv[++i];
        switch (which) {
        case 0: edge.path = v; break;
        case 1: cloud.path = v; break;
        case 2: data = v; break;
        case 3:
            if (!is_dataset_name(v))
                return tdm_cli_fail("cascade", TDM_EXIT_USAGE,
                                    "--dataset: '%s' is not fashion, mnist or cifar", v);
            dataset = v;
            break;
        case 4: edge.output = v; break;
        case 5: cloud.output = v; break;
        case 6:
            n_thr = parse_list(v, thr, MAX_THRESHOLDS);
            if (n_thr < 1)
                return tdm_cli_fail("cascade", TDM_EXIT_USAGE,
                                    "--thresholds: '%s' is not 1 to %d comma-separated numbers", v,
                                    MAX_THRESHOLDS);
            for (int t = 0; t < n_thr; t++)
                if (!(thr[t] >= 0.0 && thr[t] <= 1.0))
                    return tdm_cli_fail("cascade", TDM_EXIT_USAGE,
                                        "--thresholds: value %d (%g) is not in [0, 1]", t + 1,
                                        thr[t]);
            break;
        case 7: plot = v; break;
        case 8:
            if (!tdm_cli_parse_int(v, 1, 1 << 16, &batch))
                return tdm_cli_fail("cascade", TDM_EXIT_USAGE, "--batch: '%s' is not 1..%d", v,
                                    1 << 16);
            break;
        case 9:
            if (!tdm_cli_parse_int(v, 1, INT64_MAX, &limit))
                return tdm_cli_fail("cascade", TDM_EXIT_USAGE,
                                    "--limit: '%s' is not a positive count", v);
            break;
        case 10:
            if (!tdm_cli_parse_int(v, 1, 256, &threads))
                return tdm_cli_fail("cascade", TDM_EXIT_USAGE, "--threads: '%s' is not 1..256", v);
            break;
        default: {
            char *end;
            errno = 0;
            temperature = strtod(v, &end);
            if (end == v || *end != '\0' || errno != 0 || !isfinite(temperature) ||
                !(temperature > 0))
                return tdm_cli_fail("cascade", TDM_EXIT_USAGE,
                                    "--temperature: '%s' is not a positive number", v);
        }
        }
    }
    if (edge.path == NULL || cloud.path == NULL) {
        cascade_usage(stderr);
        return TDM_EXIT_USAGE;
    }
    /* --data NAME (no such path) names a dataset; otherwise it is a path read as --dataset. */
    const char *name = dataset ? dataset : "fashion", *path = NULL;
    if (data != NULL) {
        struct stat sb;
        if (is_dataset_name(data) && stat(data, &sb) != 0)
            name = data;
        else
            path = data;
    }
    if (strcmp(name, "fashion-mnist") == 0)
        name = "fashion";
    if (path == NULL && tdm_dataset_default_path(name) == NULL)
        return tdm_cli_fail("cascade", TDM_EXIT_USAGE, "--data PATH is required for %s", name);

    /* Missing model files fail before the dataset is read. */
    const char *files[2] = {edge.path, cloud.path};
    for (int k = 0; k < 2; k++) {
        FILE *f = fopen(files[k], "rb");
        if (f == NULL)
            return tdm_cli_fail("cascade", TDM_EXIT_FAIL, "%s: cannot open: %s", files[k],
                                strerror(errno));
        fclose(f);
    }
    tdm_err err = {{0}};
    tdm_dataset ds = {0};
    int rc = TDM_EXIT_FAIL;
    double *conf = NULL;
    int32_t *edge_pred = NULL, *cloud_pred = NULL;
    tdm_json_buf jb = {0};
    tdm_data_norm norm = {.scale = 255.0f};
    if (tdm_dataset_load(name, path, false, &norm, limit, &ds, &err) != TDM_OK) {
        rc = tdm_cli_fail("cascade", TDM_EXIT_FAIL, "%s", err.msg);
        goto done;
    }
    if (ds.n < 1) {
        rc = tdm_cli_fail("cascade", TDM_EXIT_FAIL, "the %s dataset has no images", name);
        goto done;
    }
    if ((rc = run_model(&edge, &ds, batch, (int)threads)) != TDM_EXIT_OK ||
        (rc = run_model(&cloud, &ds, batch, (int)threads)) != TDM_EXIT_OK)
        goto done;
    rc = TDM_EXIT_FAIL;
    if (edge.k != cloud.k) {
        rc = tdm_cli_fail("cascade", TDM_EXIT_FAIL,
                          "%s gives %lld classes but %s gives %lld: not the same task", edge.path,
                          (long long)edge.k, cloud.path, (long long)cloud.k);
        goto done;
    }
    for (int64_t i = 0; i < ds.n; i++)
        if (ds.labels[i] < 0 || ds.labels[i] >= edge.k) {
            rc = tdm_cli_fail("cascade", TDM_EXIT_FAIL,
                              "image %lld has label %d but the models give %lld classes",
                              (long long)i, (int)ds.labels[i], (long long)edge.k);
            goto done;
        }
    conf = malloc((size_t)ds.n * sizeof *conf);
    double *cloud_conf = malloc((size_t)ds.n * sizeof *cloud_conf);
    edge_pred = malloc((size_t)ds.n * sizeof *edge_pred);
    cloud_pred = malloc((size_t)ds.n * sizeof *cloud_pred);
    if (conf == NULL || cloud_conf == NULL || edge_pred == NULL || cloud_pred == NULL) {
        free(cloud_conf);
        rc = tdm_cli_fail("cascade", TDM_EXIT_FAIL, "out of memory");
        goto done;
    }
    tdm_status st =
        tdm_cascade_confidence(edge.logits, ds.n, edge.k, temperature, conf, edge_pred, &err);
    if (st == TDM_OK)
        st = tdm_cascade_confidence(cloud.logits, ds.n, cloud.k, 1.0, cloud_conf, cloud_pred, &err);
    free(cloud_conf);
    if (st != TDM_OK) {
        rc = tdm_cli_fail("cascade", TDM_EXIT_FAIL, "%s", err.msg);
        goto done;
    }
    const bool have_flops = isfinite(edge.flops) && isfinite(cloud.flops);
    tdm_cascade_data d = {.n = ds.n,
                          .edge_conf = conf,
                          .edge_pred = edge_pred,
                          .cloud_pred = cloud_pred,
                          .labels = ds.labels,
                          .edge_flops = have_flops ? edge.flops : 0.0,
                          .cloud_flops = have_flops ? cloud.flops : 0.0};
    tdm_cascade_point pts[MAX_THRESHOLDS];
    if (tdm_cascade_thresholds(&d, thr, n_thr, pts, &err) != TDM_OK) {
        rc = tdm_cli_fail("cascade", TDM_EXIT_FAIL, "%s", err.msg);
        goto done;
    }
    double edge_acc, cloud_acc;
    tdm_cascade_reference(&d, &edge_acc, &cloud_acc);
    if (plot != NULL && (rc = write_plot(plot, &d, pts, n_thr, edge_acc, cloud_acc)) != TDM_EXIT_OK)
        goto done;

    if (json) {
        tdm_json_buf_raw(&jb, "{\"dataset\":", 11);
        tdm_json_buf_string(&jb, name, strlen(name));
        tdm_json_buf_raw(&jb, ",\"images\":", 10);
        tdm_json_buf_i64(&jb, ds.n);
        tdm_json_buf_raw(&jb, ",\"temperature\":", 15);
        tdm_json_buf_f64(&jb, temperature);
        json_model(&jb, "edge", &edge, edge_acc);
        json_model(&jb, "cloud", &cloud, cloud_acc);
        tdm_json_buf_raw(&jb, ",\"points\":[", 11);
        for (int t = 0; t < n_thr; t++) {
            tdm_json_buf_raw(&jb, t ? ",{" : "{", t ? 2 : 1);
            json_field(&jb, "threshold", pts[t].threshold, true);
            json_field(&jb, "frac_edge", pts[t].frac_edge, false);
            json_field(&jb, "frac_cloud", pts[t].frac_cloud, false);
            json_field(&jb, "accuracy", pts[t].accuracy, false);
            json_field(&jb, "correct", (double)pts[t].correct, false);
            json_field(&jb, "edge_kept_accuracy", pts[t].edge_kept_acc, false);
            json_field(&jb, "edge_accuracy", edge_acc, false);
            json_field(&jb, "cloud_accuracy", cloud_acc, false);
            json_field(&jb, "mean_flops", have_flops ? pts[t].mean_flops : NAN, false);
            tdm_json_buf_raw(&jb, "}", 1);
        }
        tdm_json_buf_raw(&jb, "]}\n", 3);
        if (jb.failed) {
            rc = tdm_cli_fail("cascade", TDM_EXIT_FAIL, "out of memory");
            goto done;
        }
        fputs(jb.data, stdout);
    } else {
        printf("%lld images of %s; edge confidence = max softmax of %s:%s at T = %g\n",
               (long long)ds.n, name, edge.path, edge.output, temperature);
        const model_run *ms[2] = {&edge, &cloud};
        const double accs[2] = {edge_acc, cloud_acc};
        for (int k = 0; k < 2; k++) {
            printf("%-5s %s (%s): accuracy %.2f%%", k ? "cloud" : "edge", ms[k]->path,
                   ms[k]->output, 100.0 * accs[k]);
            if (isfinite(ms[k]->flops))
                printf(", %.3f MFLOPs/image", ms[k]->flops / 1e6);
            else
                printf(", FLOPs unknown (%s)", ms[k]->flops_note);
            printf(", %.2f s for %lld images\n", ms[k]->seconds, (long long)ds.n);
        }
        printf("\n threshold  at edge  to cloud  cascade acc  acc kept at edge  mean MFLOPs\n");
        for (int t = 0; t < n_thr; t++) {
            printf(" %9.4g  %6.2f%%  %7.2f%%  %10.2f%%  ", pts[t].threshold,
                   100.0 * pts[t].frac_edge, 100.0 * pts[t].frac_cloud, 100.0 * pts[t].accuracy);
            if (isnan(pts[t].edge_kept_acc))
                printf("%16s  ", "-");
            else
                printf("%15.2f%%  ", 100.0 * pts[t].edge_kept_acc);
            if (have_flops)
                printf("%11.3f\n", pts[t].mean_flops / 1e6);
            else
                printf("%11s\n", "-");
        }
        if (plot)
            printf("\nplot: %s\n", plot);
    }
    rc = TDM_EXIT_OK;
done:
    tdm_json_buf_free(&jb);
    free(conf);
    free(edge_pred);
    free(cloud_pred);
    model_run_free(&edge);
    model_run_free(&cloud);
    tdm_dataset_free(&ds);
    return rc;
}

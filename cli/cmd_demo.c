/*
 * tandem demo: the whole system on one machine, on embedded defaults.
 *
 * It starts a cloud gateway (in-process, on a free loopback port) over a
 * temporary model registry holding the Fashion-MNIST cloud CNN and its cut,
 * puts the link emulator in front of it, and creates an edge agent that
 * reaches the gateway only through the emulator. Then, for each network
 * profile (LAN, 4G, congested), it runs the first --limit test images
 * through three modes with --concurrency client threads:
 *
 *   edge-only      the small edge CNN, final exit, on the device;
 *   cloud-only     the raw image, through the codec, to the cloud CNN;
 *   collab-split   the cloud CNN's head on the device with fitted exit heads;
 *                  confident inputs answer there, the rest send their cut
 *                  features (int8, entropy-coded) for the cloud to finish;
 *   collab-cascade the edge CNN with its two early exits and its final
 *                  classifier on the device; inputs none of them is sure of
 *                  go, as raw images, to the cloud CNN. The confidence
 *                  threshold is calibrated at start on training images.
 *
 * and prints one table: accuracy, p50/p95/p99 end-to-end latency, early-exit
 * rate, offload rate, bytes per request and the estimated cloud cost per 1k
 * requests (cost model: per request, per GB and per CPU-hour, below).
 *
 * Everything it needs ships in the repository (models/fashion-mnist: the two
 * ONNX files and the exit heads) or comes from Debian (the Fashion-MNIST
 * test set); nothing external is started.
 */
#include <errno.h>
#include <math.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/json.h"
#include "cli.h"
#include "cli_util.h"
#include "edge/linkemu.h"
#include "tandem/data.h"
#include "tandem/edge.h"
#include "tandem/exits.h"
#include "tandem/gateway.h"
#include "tandem/graph.h"

/* The cost model of the demo: a managed inference endpoint's order of magnitude. */
#define COST_PER_1K_REQUESTS 0.20
#define COST_PER_GB 0.09
#define COST_PER_CPU_HOUR 0.10
#define N_MODES 4

typedef struct demo_opts {
    const char *models_dir;
    const char *heads;
    const char *data;
    int limit;
    int concurrency;
    const char *profiles[3];
    int n_profiles;
    bool json;
} demo_opts;

typedef struct run_stats {
    const char *profile, *mode;
    int n, correct, exits, offloads, failed;
    double *lat;
    double *part[4]; /* offloaded requests: device, codec, network, gateway ms */
    int n_off;
    uint64_t bytes;
    double cost;
    double seconds;
} run_stats;

typedef struct runner {
    tdm_edge *agent;
    const tdm_dataset *ds;
    const char *model;
    int mode;
    int next;
    int limit;
    pthread_mutex_t mu;
    run_stats *st;
    tdm_err err;
    bool failed;
} runner;

static void *client(void *arg)
{
    runner *r = arg;
    for (;;) {
        pthread_mutex_lock(&r->mu);
        int i = r->next < r->limit && !r->failed ? r->next++ : -1;
        pthread_mutex_unlock(&r->mu);
        if (i < 0)
            return NULL;
        tdm_tensor x = {0};
        int64_t dims[4] = {1, 1, 28, 28};
        tdm_tensor_set_shape(&x, TDM_DTYPE_FLOAT32, 4, dims);
        x.data = (float *)r->ds->x.data + (size_t)i * 784;
        char id[64];
        snprintf(id, sizeof id, "demo-%s-%s-%d", r->st->profile, r->st->mode, i);
        tdm_edge_request req = {.model = r->model,
                                .input = &x,
                                .mode = r->mode,
                                .request_id = id,
                                .deadline_ms = 10000};
        tdm_edge_result res;
        tdm_err err;
        tdm_status s = tdm_edge_submit(r->agent, &req, &res, &err);
        pthread_mutex_lock(&r->mu);
        if (s != TDM_OK) {
            r->failed = true;
            r->err = err;
        } else {
            run_stats *st = r->st;
            st->lat[st->n++] = res.total_ms;
            st->correct += res.label == r->ds->labels[i];
            st->exits += res.route == TDM_EDGE_ROUTE_EXIT;
            st->offloads += res.route == TDM_EDGE_ROUTE_OFFLOAD;
            st->failed += res.route == TDM_EDGE_ROUTE_FAILED;
            st->bytes += res.bytes_sent;
            st->cost += res.cost;
            if (res.route == TDM_EDGE_ROUTE_OFFLOAD) {
                st->part[0][st->n_off] = res.local_ms;
                st->part[1][st->n_off] = res.encode_ms;
                st->part[2][st->n_off] = res.network_ms;
                st->part[3][st->n_off] = res.cloud_ms;
                st->n_off++;
            }
        }
        pthread_mutex_unlock(&r->mu);
    }
}

static tdm_status run_mode(tdm_edge *agent, const tdm_dataset *ds, const demo_opts *o,
                           const char *model, int mode, run_stats *st, tdm_err *err)
{
    runner r = {
        .agent = agent, .ds = ds, .model = model, .mode = mode, .limit = o->limit, .st = st};
    pthread_mutex_init(&r.mu, NULL);
    pthread_t th[64];
    int n = o->concurrency;
    uint64_t t0 = tdm_now_ns();
    int started = 0;
    for (; started < n; started++)
        if (pthread_create(&th[started], NULL, client, &r) != 0)
            break;
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    st->seconds = (double)(tdm_now_ns() - t0) / 1e9;
    pthread_mutex_destroy(&r.mu);
    if (started == 0)
        return tdm_errf(err, TDM_ERR_NOMEM, "cannot start client threads");
    if (r.failed) {
        *err = r.err;
        return TDM_ERR_INTERNAL;
    }
    return TDM_OK;
}

static bool file_exists(const char *p)
{
    struct stat s;
    return stat(p, &s) == 0 && S_ISREG(s.st_mode);
}

static bool write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return false;
    bool ok = fputs(text, f) >= 0;
    return fclose(f) == 0 && ok;
}

/* Builds <tmp>/repo/fmnist/1/{model.onnx -> cloud.onnx, model.yaml with the cut}. */
static tdm_status make_repo(const char *tmp, const char *cloud, const char *cut_tensor, char *repo,
                            size_t repo_len, tdm_err *err)
{
    char dir[4096], path[4200], yaml[1024];
    snprintf(repo, repo_len, "%s/repo", tmp);
    snprintf(dir, sizeof dir, "%s/fmnist/1", repo);
    if (!tdm_cli_mkdirs(dir))
        return tdm_errf(err, TDM_ERR_IO, "%s: %s", dir, strerror(errno));
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    if (symlink(cloud, path) != 0)
        return tdm_errf(err, TDM_ERR_IO, "%s: %s", path, strerror(errno));
    snprintf(yaml, sizeof yaml,
             "task: classify\n"
             "cuts:\n"
             "  - {name: edge-cut, tensors: [\"%s\"]}\n",
             cut_tensor);
    snprintf(path, sizeof path, "%s/model.yaml", dir);
    if (!write_file(path, yaml))
        return tdm_errf(err, TDM_ERR_IO, "%s: cannot write", path);
    return TDM_OK;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pct(const double *v, int n, double q)
{
    if (n == 0)
        return 0;
    int i = (int)(q * (n - 1) + 0.5);
    return v[i];
}

static void print_row(const run_stats *s, bool json)
{
    qsort(s->lat, (size_t)s->n, sizeof *s->lat, cmp_double);
    double mean = 0;
    for (int i = 0; i < s->n; i++)
        mean += s->lat[i];
    mean = s->n ? mean / s->n : 0;
    double n = s->n ? s->n : 1;
    if (json) {
        printf("{\"profile\":\"%s\",\"mode\":\"%s\",\"requests\":%d,\"accuracy\":%.4f,"
               "\"mean_ms\":%.3f,\"p50_ms\":%.3f,\"p95_ms\":%.3f,\"p99_ms\":%.3f,"
               "\"exit_rate\":%.4f,\"offload_rate\":%.4f,\"failed\":%d,\"bytes_per_request\":%.1f,"
               "\"cost_per_1k\":%.5f,\"seconds\":%.2f}\n",
               s->profile, s->mode, s->n, s->correct / n, mean, pct(s->lat, s->n, 0.5),
               pct(s->lat, s->n, 0.95), pct(s->lat, s->n, 0.99), s->exits / n, s->offloads / n,
               s->failed, (double)s->bytes / n, s->cost / n * 1000, s->seconds);
        return;
    }
    printf("| %-9s | %-14s | %6.2f%% | %8.2f | %8.2f | %8.2f | %8.2f | %5.1f%% | %5.1f%% | %7.0f "
           "| %7.4f |\n",
           s->profile, s->mode, 100.0 * s->correct / n, mean, pct(s->lat, s->n, 0.5),
           pct(s->lat, s->n, 0.95), pct(s->lat, s->n, 0.99), 100.0 * s->exits / n,
           100.0 * s->offloads / n, (double)s->bytes / n, s->cost / n * 1000);
}

/* One row of the breakdown table: p50 / p95 of each part over the offloaded requests. */
static void print_parts(const run_stats *s)
{
    if (s->n_off == 0)
        return;
    printf("| %-9s | %-14s | %9d |", s->profile, s->mode, s->n_off);
    for (int k = 0; k < 4; k++) {
        qsort(s->part[k], (size_t)s->n_off, sizeof(double), cmp_double);
        printf(" %5.2f/%5.2f |", pct(s->part[k], s->n_off, 0.5), pct(s->part[k], s->n_off, 0.95));
    }
    printf("\n");
}

/* Softmax max-probability and argmax of one row of logits. */
static void top1(const float *z, int n, int *label, double *conf)
{
    int b = 0;
    for (int i = 1; i < n; i++)
        if (z[i] > z[b])
            b = i;
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += exp((double)z[i] - z[b]);
    *label = b;
    *conf = 1.0 / sum;
}

/*
 * The cascade's threshold, calibrated on training images (disjoint from the
 * test images the demo measures): the smallest confidence threshold, applied
 * at each of the edge model's exits in turn, whose cascade accuracy (exited
 * inputs answered by the edge, the rest by the cloud model) stays within
 * max_loss of the cloud model alone.
 */
static tdm_status calibrate_cascade(const char *edge, const char *cloud, const char *data,
                                    const char *const *exits, int n_exits, int n_cal,
                                    double max_loss, double *threshold, tdm_err *err)
{
    tdm_dataset ds = {0};
    tdm_data_norm norm = {.scale = 255};
    tdm_graph *ge = NULL, *gc = NULL;
    tdm_session *se = NULL, *sc = NULL;
    int *cloud_ok = NULL, *lab = NULL;
    double *conf = NULL;
    tdm_status st = tdm_dataset_load("fashion", data, true, &norm, n_cal, &ds, err);
    if (st == TDM_OK)
        st = tdm_graph_load(edge, NULL, &ge, err);
    if (st == TDM_OK)
        st = tdm_graph_load(cloud, NULL, &gc, err);
    if (st == TDM_OK)
        st = tdm_session_create(ge, NULL, &se, err);
    if (st == TDM_OK)
        st = tdm_session_create(gc, NULL, &sc, err);
    int n = (int)ds.n;
    cloud_ok = calloc((size_t)n + 1, sizeof *cloud_ok);
    lab = calloc((size_t)n * n_exits + 1, sizeof *lab);
    conf = calloc((size_t)n * n_exits + 1, sizeof *conf);
    if (st == TDM_OK && (!cloud_ok || !lab || !conf))
        st = tdm_errf(err, TDM_ERR_NOMEM, "out of memory");
    tdm_value_info ie, ic;
    if (st == TDM_OK) {
        tdm_graph_input_info(ge, 0, &ie);
        tdm_graph_input_info(gc, 0, &ic);
    }
    int cloud_correct = 0;
    for (int i = 0; st == TDM_OK && i < n; i++) {
        tdm_tensor x = {0};
        int64_t dims[4] = {1, 1, 28, 28};
        tdm_tensor_set_shape(&x, TDM_DTYPE_FLOAT32, 4, dims);
        x.data = (float *)ds.x.data + (size_t)i * 784;
        tdm_tensor outs[8] = {{0}};
        st = tdm_session_run_range(se, 1, &ie.name, &x, n_exits, exits, outs, err);
        for (int k = 0; st == TDM_OK && k < n_exits; k++)
            top1(outs[k].data, (int)tdm_tensor_numel(&outs[k]), &lab[i * n_exits + k],
                 &conf[i * n_exits + k]);
        for (int k = 0; k < n_exits; k++)
            tdm_tensor_free(&outs[k]);
        tdm_tensor out = {0};
        if (st == TDM_OK)
            st = tdm_session_run(sc, 1, &ic.name, &x, &out, err);
        if (st == TDM_OK) {
            int l;
            double c;
            top1(out.data, (int)tdm_tensor_numel(&out), &l, &c);
            cloud_ok[i] = l == ds.labels[i];
            cloud_correct += cloud_ok[i];
        }
        tdm_tensor_free(&out);
    }
    if (st == TDM_OK) {
        *threshold = 0.999;
        for (int step = 0; step <= 100; step++) {
            double t = 0.5 + 0.499 * step / 100.0;
            int correct = 0;
            for (int i = 0; i < n; i++) {
                int k = 0;
                while (k < n_exits && conf[i * n_exits + k] < t)
                    k++;
                correct += k < n_exits ? lab[i * n_exits + k] == ds.labels[i] : cloud_ok[i];
            }
            if ((double)(cloud_correct - correct) / n <= max_loss) {
                *threshold = t;
                break;
            }
        }
    }
    free(cloud_ok);
    free(lab);
    free(conf);
    tdm_session_free(se);
    tdm_session_free(sc);
    tdm_graph_free(ge);
    tdm_graph_free(gc);
    tdm_dataset_free(&ds);
    return st;
}

static void demo_usage(FILE *f)
{
    fprintf(f, "usage: tandem demo [--models DIR] [--heads FILE] [--data DIR] [--limit N]\n"
               "                   [--concurrency C] [--profiles lan,4g,congested] [--json]\n"
               "\n"
               "Starts a gateway, the link emulator and an edge agent on loopback and runs the\n"
               "Fashion-MNIST test set through edge-only, cloud-only and collaborative modes at\n"
               "each network profile; prints accuracy, latency percentiles, exit and offload\n"
               "rates, bytes per request and estimated cloud cost per 1k requests.\n"
               "  --models DIR   edge.onnx, cloud.onnx (default models/fashion-mnist)\n"
               "  --heads FILE   exit heads of cloud.onnx (default DIR/cloud.exits.json)\n"
               "  --data DIR     Fashion-MNIST idx files (default " TDM_FASHION_MNIST_DIR ")\n"
               "  --limit N      test images per run (default 1000; 10000 = all)\n"
               "  --concurrency C  client threads (default 8)\n");
}

/* Every mode must pay for its own cloud compute: with the gateway's response cache on, the
 * modes after cloud-only would be answered from it for the same test images. */
static tdm_status start_gateway(const char *tmp, const char *repo, tdm_gateway_options **opts,
                                tdm_gateway **gw, tdm_err *err)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/gateway.yaml", tmp);
    if (!write_file(path, "cache: {max_bytes: 0}\n"))
        return tdm_errf(err, TDM_ERR_IO, "%s: cannot write", path);
    tdm_status st = tdm_gateway_options_create(opts, err);
    if (st == TDM_OK)
        st = tdm_gateway_options_load(*opts, path, err);
    const char *kv[][2] = {{"port", "0"},       {"model-repo", repo},
                           {"max-batch", "16"}, {"max-queue-delay-ms", "1"},
                           {"auth", "none"},    {"log-requests", "false"}};
    for (size_t i = 0; st == TDM_OK && i < sizeof kv / sizeof kv[0]; i++)
        st = tdm_gateway_options_set(*opts, kv[i][0], kv[i][1], err);
    if (st == TDM_OK)
        st = tdm_gateway_start(*opts, gw, err);
    return st;
}

int tdm_cmd_demo(int argc, char **argv)
{
    char prof_buf[256];
    demo_opts o = {.models_dir = "models/fashion-mnist",
                   .limit = 1000,
                   .concurrency = 8,
                   .profiles = {"lan", "4g", "congested"},
                   .n_profiles = 3};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (tdm_cli_is_help(a)) {
            demo_usage(stdout);
            return TDM_EXIT_OK;
        }
        if (strcmp(a, "--json") == 0) {
            o.json = true;
            continue;
        }
        if (i + 1 >= argc)
            return tdm_cli_fail("demo", TDM_EXIT_USAGE, "%s needs a value (see --help)", a);
        const char *v = argv[++i];
        int64_t x;
        if (strcmp(a, "--models") == 0)
            o.models_dir = v;
        else if (strcmp(a, "--heads") == 0)
            o.heads = v;
        else if (strcmp(a, "--data") == 0)
            o.data = v;
        else if (strcmp(a, "--limit") == 0 && tdm_cli_parse_int(v, 1, 10000, &x))
            o.limit = (int)x;
        else if (strcmp(a, "--concurrency") == 0 && tdm_cli_parse_int(v, 1, 64, &x))
            o.concurrency = (int)x;
        else if (strcmp(a, "--profiles") == 0) {
            snprintf(prof_buf, sizeof prof_buf, "%s", v);
            o.n_profiles = 0;
            char *save = NULL;
            for (char *s = strtok_r(prof_buf, ",", &save); s && o.n_profiles < 3;
                 s = strtok_r(NULL, ",", &save))
                o.profiles[o.n_profiles++] = s;
            if (o.n_profiles == 0)
                return tdm_cli_fail("demo", TDM_EXIT_USAGE, "--profiles: empty list");
        } else
            return tdm_cli_fail("demo", TDM_EXIT_USAGE, "bad option or value: %s %s", a, v);
    }
    tdm_err err = {{0}};
    for (int i = 0; i < o.n_profiles; i++) {
        tdm_link_profile p;
        if (tdm_link_profile_named(o.profiles[i], &p, &err) != TDM_OK)
            return tdm_cli_fail("demo", TDM_EXIT_USAGE, "--profiles: %s", err.msg);
    }
    char edge[4096], cloud[4096], heads[4096];
    snprintf(edge, sizeof edge, "%s/edge.onnx", o.models_dir);
    snprintf(cloud, sizeof cloud, "%s/cloud.onnx", o.models_dir);
    snprintf(heads, sizeof heads, "%s", o.heads ? o.heads : "");
    if (!o.heads)
        snprintf(heads, sizeof heads, "%s/cloud.exits.json", o.models_dir);
    const char *need[] = {edge, cloud, heads};
    for (int i = 0; i < 3; i++)
        if (!file_exists(need[i]))
            return tdm_cli_fail("demo", TDM_EXIT_FAIL,
                                "%s is missing (run from the repository root, or pass --models)",
                                need[i]);
    char abs_edge[4096], abs_cloud[4096], abs_heads[4096];
    if (!realpath(edge, abs_edge) || !realpath(cloud, abs_cloud) || !realpath(heads, abs_heads))
        return tdm_cli_fail("demo", TDM_EXIT_FAIL, "cannot resolve the model paths");

    /* The cut: the cloud CNN's last exit tensor (features offloaded from there). */
    tdm_exits *ex = NULL;
    if (tdm_exits_load(abs_heads, &ex, &err) != TDM_OK)
        return tdm_cli_fail("demo", TDM_EXIT_FAIL, "%s", err.msg);
    if (ex->n_exits < 1) {
        tdm_exits_free(ex);
        return tdm_cli_fail("demo", TDM_EXIT_FAIL, "%s: no exits", abs_heads);
    }
    char cut[512];
    snprintf(cut, sizeof cut, "%s", ex->heads[ex->n_exits - 1].cut);
    tdm_exits_free(ex);

    /* The edge CNN's exits are its outputs, in order (the last is its final classifier). */
    char exit_names[8][128];
    const char *exits[8];
    int n_exits = 0;
    {
        tdm_graph *ge = NULL;
        if (tdm_graph_load(abs_edge, NULL, &ge, &err) != TDM_OK)
            return tdm_cli_fail("demo", TDM_EXIT_FAIL, "%s", err.msg);
        for (int i = 0; i < tdm_graph_num_outputs(ge) && n_exits < 8; i++) {
            tdm_value_info vi;
            tdm_graph_output_info(ge, i, &vi);
            snprintf(exit_names[n_exits], sizeof exit_names[0], "%s", vi.name);
            exits[n_exits] = exit_names[n_exits];
            n_exits++;
        }
        tdm_graph_free(ge);
    }
    double threshold = 0.9;
    if (calibrate_cascade(abs_edge, abs_cloud, o.data, exits, n_exits, 2000, 0.005, &threshold,
                          &err) != TDM_OK)
        return tdm_cli_fail("demo", TDM_EXIT_FAIL, "calibrating the cascade: %s", err.msg);
    if (!o.json)
        fprintf(stderr,
                "demo: cascade threshold %.3f (calibrated on 2000 training images: within 0.5 "
                "points of the cloud model alone)\n",
                threshold);

    tdm_dataset ds = {0};
    tdm_data_norm norm = {.scale = 255};
    if (tdm_dataset_load("fashion", o.data, false, &norm, o.limit, &ds, &err) != TDM_OK)
        return tdm_cli_fail("demo", TDM_EXIT_FAIL, "%s", err.msg);
    if (ds.n < o.limit)
        o.limit = (int)ds.n;

    char tmp[] = "/tmp/tandem-demo-XXXXXX";
    if (mkdtemp(tmp) == NULL) {
        tdm_dataset_free(&ds);
        return tdm_cli_fail("demo", TDM_EXIT_FAIL, "mkdtemp: %s", strerror(errno));
    }
    int rc = TDM_EXIT_FAIL;
    char repo[4200];
    tdm_gateway_options *gopts = NULL;
    tdm_gateway *gw = NULL;
    run_stats *rows = calloc((size_t)o.n_profiles * N_MODES, sizeof *rows);
    if (rows == NULL)
        goto out;
    for (int i = 0; i < o.n_profiles * N_MODES; i++)
        for (int k = -1; k < 4; k++) {
            double **a = k < 0 ? &rows[i].lat : &rows[i].part[k];
            if ((*a = malloc((size_t)o.limit * sizeof(double))) == NULL)
                goto out;
        }
    if (make_repo(tmp, abs_cloud, cut, repo, sizeof repo, &err) != TDM_OK ||
        start_gateway(tmp, repo, &gopts, &gw, &err) != TDM_OK) {
        tdm_cli_fail("demo", TDM_EXIT_FAIL, "%s", err.msg);
        goto out;
    }
    if (!o.json)
        fprintf(stderr,
                "demo: gateway on 127.0.0.1:%d, %d Fashion-MNIST test images per run, "
                "%d clients; cut at %s\n",
                tdm_gateway_port(gw), o.limit, o.concurrency, cut);

    static const char *const mode_names[N_MODES] = {"edge-only", "cloud-only", "collab-split",
                                                    "collab-cascade"};
    static const int modes[N_MODES] = {TDM_EDGE_MODE_EDGE_ONLY, TDM_EDGE_MODE_CLOUD_ONLY,
                                       TDM_EDGE_MODE_COLLABORATIVE, TDM_EDGE_MODE_COLLABORATIVE};
    static const char *const mode_model[N_MODES] = {"edge", "fmnist", "fmnist", "cascade"};
    char exit_yaml[1024] = "";
    for (int k = 0; k < n_exits; k++)
        snprintf(exit_yaml + strlen(exit_yaml), sizeof exit_yaml - strlen(exit_yaml),
                 "%s{output: \"%s\", threshold: %.4f}", k ? ", " : "", exits[k], threshold);
    for (int p = 0; p < o.n_profiles; p++) {
        tdm_link_profile prof;
        tdm_link_profile_named(o.profiles[p], &prof, &err);
        tdm_linkemu *emu = NULL;
        if (tdm_linkemu_start("127.0.0.1", 0, "127.0.0.1", tdm_gateway_port(gw), &prof, 42, &emu,
                              &err) != TDM_OK) {
            tdm_cli_fail("demo", TDM_EXIT_FAIL, "%s", err.msg);
            goto out;
        }
        char yaml[12288];
        snprintf(
            yaml, sizeof yaml,
            "device_id: demo-%s\n"
            "models:\n"
            "  - {name: edge, version: \"1\", file: \"%s\", final_output: \"%s\", mode: edge}\n"
            "  - {name: fmnist, version: \"1\", file: \"%s\", cut: [\"%s\"], cut_id: edge-cut,\n"
            "     exits_file: \"%s\", finish_on_device: false, deadline_ms: 10000}\n"
            "  - {name: cascade, version: \"1\", file: \"%s\", exits: [%s],\n"
            "     finish_on_device: false, remote_model: fmnist, deadline_ms: 10000}\n"
            "compression: {mode: int8, granularity: channel, channel_axis: 1, entropy: true}\n"
            "transport: {endpoints: [\"http://127.0.0.1:%d\"], health_interval_ms: 500}\n"
            "cost: {per_1k_requests: %g, per_gb: %g, per_cpu_hour: %g}\n"
            "workers: 1\n",
            o.profiles[p], abs_edge, exits[n_exits - 1], abs_cloud, cut, abs_heads, abs_edge,
            exit_yaml, tdm_linkemu_port(emu), COST_PER_1K_REQUESTS, COST_PER_GB, COST_PER_CPU_HOUR);
        tdm_edge *agent = NULL;
        if (tdm_edge_create_from_text(yaml, strlen(yaml), tmp, &agent, &err) != TDM_OK) {
            tdm_linkemu_stop(emu);
            tdm_cli_fail("demo", TDM_EXIT_FAIL, "%s", err.msg);
            goto out;
        }
        for (int m = 0; m < N_MODES; m++) {
            run_stats *st = &rows[p * N_MODES + m];
            st->profile = o.profiles[p];
            st->mode = mode_names[m];
            if (run_mode(agent, &ds, &o, mode_model[m], modes[m], st, &err) != TDM_OK) {
                tdm_edge_free(agent);
                tdm_linkemu_stop(emu);
                tdm_cli_fail("demo", TDM_EXIT_FAIL, "%s, %s: %s", o.profiles[p], mode_names[m],
                             err.msg);
                goto out;
            }
            if (!o.json)
                fprintf(stderr, "demo: %-9s %-13s done in %.1f s\n", st->profile, st->mode,
                        st->seconds);
        }
        tdm_edge_free(agent);
        tdm_linkemu_stop(emu);
    }
    if (!o.json) {
        printf(
            "\n| profile   | mode           | accuracy | mean ms  | p50 ms   | p95 ms   | p99 ms "
            "  | exit   | offload| bytes/req | cost/1k |\n"
            "|-----------|----------------|----------|----------|----------|----------|------"
            "----|--------|--------|-----------|---------|\n");
    }
    for (int i = 0; i < o.n_profiles * N_MODES; i++)
        print_row(&rows[i], o.json);
    if (!o.json) {
        printf("\nWhere offloaded requests spend their time, p50 / p95 ms:\n\n"
               "| profile   | mode           | offloaded | device      | codec       | network     "
               "| gateway     |\n"
               "|-----------|----------------|-----------|-------------|-------------|------------"
               "-|-------------|\n");
        for (int i = 0; i < o.n_profiles * N_MODES; i++)
            print_parts(&rows[i]);
    }
    if (!o.json)
        printf("\nLatency is end to end inside the agent (device compute, codec, link, gateway); "
               "cost model: %.2f per 1k cloud requests + %.2f per GB + %.2f per CPU-hour.\n",
               COST_PER_1K_REQUESTS, COST_PER_GB, COST_PER_CPU_HOUR);
    rc = TDM_EXIT_OK;
out:
    if (gw)
        tdm_gateway_free(gw);
    tdm_gateway_options_free(gopts);
    for (int i = 0; rows && i < o.n_profiles * N_MODES; i++) {
        free(rows[i].lat);
        for (int k = 0; k < 4; k++)
            free(rows[i].part[k]);
    }
    free(rows);
    tdm_dataset_free(&ds);
    if (nftw(tmp, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
        fprintf(stderr, "demo: could not remove %s\n", tmp);
    return rc;
}

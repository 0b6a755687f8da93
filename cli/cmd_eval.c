/*
 * tandem eval: accuracy of a classifier over a labelled image dataset.
 *
 * It goes through the public API only (tdm_graph_load, tdm_session_run), so
 * what it measures is what an application gets. The dataset is read and
 * normalised once (include/tandem/data.h), then fed in batches: a model
 * whose batch dimension is symbolic gets --batch images per run (the last
 * run shorter); a model that declares a fixed batch gets exactly that many,
 * the last batch zero-padded and the padding's predictions ignored.
 *
 * Each image is reshaped to what the model's input declares when the
 * element counts agree (so a flat [1,784,1] MLP and a [1,1,28,28] CNN both
 * take MNIST without flags); --layout forces NCHW or flat [B, C*H*W]. The
 * prediction is the argmax over each image's slice of the first output, or of
 * the tensor named by --output (first maximum on ties, like numpy), compared
 * with the label. Only the nodes that tensor needs are run
 * (tdm_session_run_range), so scoring an early exit of a multi-exit model
 * costs only the layers before that exit.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "cli.h"
#include "cli_util.h"
#include "tandem/data.h"
#include "tandem/tandem.h"

typedef enum eval_layout { LAYOUT_AUTO, LAYOUT_NCHW, LAYOUT_FLAT } eval_layout;

static void eval_usage(FILE *f)
{
    fprintf(f,
            "usage: tandem eval MODEL.onnx --dataset mnist|fashion|cifar [--data PATH]\n"
            "                   [--scale S] [--mean a,b,c --std a,b,c] [--layout nchw|flat]\n"
            "                   [--batch B] [--limit N] [--threads T] [--output NAME] [--json]\n"
            "\n"
            "Runs MODEL over a labelled dataset and prints its top-1 accuracy.\n"
            "  --dataset D    mnist or fashion (idx files, 1x28x28) or cifar (csv, 3x32x32)\n"
            "  --data PATH    a folder holding t10k-images-idx3-ubyte[.gz] and\n"
            "                 t10k-labels-idx1-ubyte[.gz], an images idx file (the labels\n"
            "                 file is found by name), or a .csv (label + HWC values per line);\n"
            "                 fashion defaults to " TDM_FASHION_MNIST_DIR "\n"
            "  --scale S      pixels are divided by S first (default 255)\n"
            "  --mean, --std  then (x - mean) / std per channel (one value or one per channel)\n"
            "  --layout L     nchw [B,C,H,W] or flat [B,C*H*W]; default: the model's input shape\n"
            "  --batch B      images per run for models with a symbolic batch (default 32)\n"
            "  --limit N      only the first N images\n"
            "  --threads T    worker threads (default 1)\n"
            "  --output NAME  score this output (or any tensor) of the model, e.g. an early\n"
            "                 exit; default: the first output\n"
            "  --json         print one JSON line instead of text\n");
}

/* Writes s as a JSON string body (quotes, backslashes and controls escaped). */
static void put_json_string(const char *s)
{
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            printf("\\%c", *p);
        else if (*p < 0x20)
            printf("\\u%04x", *p);
        else
            putchar(*p);
    }
    putchar('"');
}

int tdm_cmd_eval(int argc, char **argv)
{
    const char *model = NULL, *dataset = NULL, *data = NULL, *output = NULL;
    tdm_data_norm norm = {.scale = 255.0f};
    int n_mean = 0, n_std = 0;
    float mean[TDM_DATA_MAX_CHANNELS], stdv[TDM_DATA_MAX_CHANNELS];
    eval_layout layout = LAYOUT_AUTO;
    int64_t batch = 0, limit = 0, threads = 1;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (tdm_cli_is_help(a)) {
            eval_usage(stdout);
            return TDM_EXIT_OK;
        }
        if (strcmp(a, "--json") == 0) {
            json = true;
            continue;
        }
        if (a[0] == '-' && a[1] == '-' && strcmp(a, "--dataset") && strcmp(a, "--data") &&
            strcmp(a, "--scale") && strcmp(a, "--mean") && strcmp(a, "--std") &&
            strcmp(a, "--layout") && strcmp(a, "--batch") && strcmp(a, "--limit") &&
            strcmp(a, "--threads") && strcmp(a, "--output"))
            return tdm_cli_fail("eval", TDM_EXIT_USAGE, "unknown option '%s'", a);
        if (a[0] == '-') {
            if (i + 1 >= argc)
                return tdm_cli_fail("eval", TDM_EXIT_USAGE, "%s needs a value", a);
            const char *v = argv[++i];
            if (strcmp(a, "--dataset") == 0) {
                if (strcmp(v, "mnist") && strcmp(v, "fashion") && strcmp(v, "cifar"))
                    return tdm_cli_fail("eval", TDM_EXIT_USAGE,
                                        "--dataset: '%s' is not mnist, fashion or cifar", v);
                dataset = v;
            } else if (strcmp(a, "--data") == 0) {
                data = v;
            } else if (strcmp(a, "--output") == 0) {
                output = v;
            } else if (strcmp(a, "--scale") == 0) {
                float s;
                if (tdm_cli_parse_floats(v, &s, 1) != 1 || !(s > 0.0f))
                    return tdm_cli_fail("eval", TDM_EXIT_USAGE,
                                        "--scale: '%s' is not a positive number", v);
                norm.scale = s;
            } else if (strcmp(a, "--mean") == 0 || strcmp(a, "--std") == 0) {
                bool is_mean = strcmp(a, "--mean") == 0;
                int n = tdm_cli_parse_floats(v, is_mean ? mean : stdv, TDM_DATA_MAX_CHANNELS);
                if (n < 0)
                    return tdm_cli_fail("eval", TDM_EXIT_USAGE,
                                        "%s: '%s' is not 1 to %d comma-separated numbers", a, v,
                                        TDM_DATA_MAX_CHANNELS);
                *(is_mean ? &n_mean : &n_std) = n;
            } else if (strcmp(a, "--layout") == 0) {
                if (strcmp(v, "nchw") == 0)
                    layout = LAYOUT_NCHW;
                else if (strcmp(v, "flat") == 0)
                    layout = LAYOUT_FLAT;
                else
                    return tdm_cli_fail("eval", TDM_EXIT_USAGE,
                                        "--layout: '%s' is not nchw or flat", v);
            } else if (strcmp(a, "--batch") == 0) {
                if (!tdm_cli_parse_int(v, 1, 1 << 20, &batch))
                    return tdm_cli_fail("eval", TDM_EXIT_USAGE, "--batch: '%s' is not 1..%d", v,
                                        1 << 20);
            } else if (strcmp(a, "--limit") == 0) {
                if (!tdm_cli_parse_int(v, 1, INT64_MAX, &limit))
                    return tdm_cli_fail("eval", TDM_EXIT_USAGE,
                                        "--limit: '%s' is not a positive count", v);
            } else if (!tdm_cli_parse_int(v, 1, 256, &threads)) {
                return tdm_cli_fail("eval", TDM_EXIT_USAGE, "--threads: '%s' is not 1..256", v);
            }
        } else if (model == NULL) {
            model = a;
        } else {
            return tdm_cli_fail("eval", TDM_EXIT_USAGE, "unexpected argument '%s'", a);
        }
    }
    if (model == NULL || dataset == NULL) {
        eval_usage(stderr);
        return TDM_EXIT_USAGE;
    }
    if (data == NULL && tdm_dataset_default_path(dataset) == NULL)
        return tdm_cli_fail("eval", TDM_EXIT_USAGE, "--data PATH is required for %s", dataset);
    /* One value of either applies to every channel: --mean 0.485,0.456,0.406 --std 0.225. */
    if (n_mean != n_std && n_mean > 1 && n_std > 1)
        return tdm_cli_fail("eval", TDM_EXIT_USAGE,
                            "--mean has %d values but --std has %d (give 1 or one per channel)",
                            n_mean, n_std);
    if ((n_mean == 0) != (n_std == 0))
        return tdm_cli_fail("eval", TDM_EXIT_USAGE, "--mean and --std go together");
    norm.n_channels = n_mean > n_std ? n_mean : n_std;
    for (int k = 0; k < norm.n_channels; k++) {
        norm.mean[k] = mean[n_mean == 1 ? 0 : k];
        norm.std[k] = stdv[n_std == 1 ? 0 : k];
        if (!(norm.std[k] > 0.0f))
            return tdm_cli_fail("eval", TDM_EXIT_USAGE, "--std: value %d (%g) must be positive",
                                k + 1, (double)norm.std[k]);
    }

    tdm_err err = {{0}};
    tdm_dataset ds = {0};
    tdm_graph *g = NULL;
    tdm_session *s = NULL;
    tdm_tensor in = {0};
    int rc = TDM_EXIT_FAIL;

    if (tdm_dataset_load(dataset, data, false, &norm, limit, &ds, &err) != TDM_OK) {
        rc = tdm_cli_fail("eval", TDM_EXIT_FAIL, "%s", err.msg);
        goto done;
    }
    if (tdm_graph_load(model, NULL, &g, &err) != TDM_OK) {
        rc = tdm_cli_fail("eval", TDM_EXIT_FAIL, "%s: %s", model, err.msg);
        goto done;
    }
    if (tdm_graph_num_inputs(g) != 1 || tdm_graph_num_outputs(g) < 1) {
        rc = tdm_cli_fail("eval", TDM_EXIT_FAIL,
                          "%s: has %d inputs and %d outputs; eval needs "
                          "one input and at least one output",
                          model, tdm_graph_num_inputs(g), tdm_graph_num_outputs(g));
        goto done;
    }
    tdm_value_info vi;
    if (tdm_graph_input_info(g, 0, &vi) != TDM_OK) {
        rc = tdm_cli_fail("eval", TDM_EXIT_FAIL, "%s: cannot describe input 0", model);
        goto done;
    }
    if (vi.dtype != TDM_DTYPE_FLOAT32) {
        rc = tdm_cli_fail("eval", TDM_EXIT_FAIL, "%s: input '%s' is %s, eval feeds float32", model,
                          vi.name, tdm_dtype_name(vi.dtype));
        goto done;
    }

    /* The per-image shape fed to the model. */
    const int64_t c = ds.x.dims[1], h = ds.x.dims[2], w = ds.x.dims[3];
    const int64_t per = c * h * w;
    int64_t item_dims[TDM_MAX_DIMS];
    int item_rank;
    if (layout == LAYOUT_AUTO) {
        int64_t declared = 1;
        bool known = vi.ndim >= 1;
        for (int k = 1; k < vi.ndim; k++) {
            known = known && vi.dims[k] > 0;
            declared *= vi.dims[k] > 0 ? vi.dims[k] : 1;
        }
        if (known && declared == per) {
            item_rank = vi.ndim - 1;
            for (int k = 1; k < vi.ndim; k++)
                item_dims[k - 1] = vi.dims[k];
        } else {
            item_rank = 3;
            item_dims[0] = c;
            item_dims[1] = h;
            item_dims[2] = w;
        }
    } else if (layout == LAYOUT_FLAT) {
        item_rank = 1;
        item_dims[0] = per;
    } else {
        item_rank = 3;
        item_dims[0] = c;
        item_dims[1] = h;
        item_dims[2] = w;
    }
    const bool fixed_batch = vi.ndim >= 1 && vi.dims[0] > 0;
    if (fixed_batch) {
        if (batch != 0 && batch != vi.dims[0]) {
            rc = tdm_cli_fail("eval", TDM_EXIT_USAGE,
                              "--batch %lld: %s declares a fixed batch of %lld", (long long)batch,
                              model, (long long)vi.dims[0]);
            goto done;
        }
        batch = vi.dims[0];
    } else if (batch == 0) {
        batch = 32;
    }
    if (batch > ds.n && !fixed_batch)
        batch = ds.n;

    tdm_session_options so = {.threads = (int)threads};
    if (tdm_session_create(g, &so, &s, &err) != TDM_OK) {
        rc = tdm_cli_fail("eval", TDM_EXIT_FAIL, "%s: %s", model, err.msg);
        goto done;
    }
    int64_t dims[TDM_MAX_DIMS];
    dims[0] = batch;
    for (int k = 0; k < item_rank; k++)
        dims[k + 1] = item_dims[k];
    if (tdm_tensor_make(&in, TDM_DTYPE_FLOAT32, item_rank + 1, dims, &err) != TDM_OK) {
        rc = tdm_cli_fail("eval", TDM_EXIT_FAIL, "%s", err.msg);
        goto done;
    }
    const char *in_name = vi.name;
    int64_t correct = 0;
    tdm_value_info vo;
    if (output == NULL) {
        if (tdm_graph_output_info(g, 0, &vo) != TDM_OK) {
            rc = tdm_cli_fail("eval", TDM_EXIT_FAIL, "%s: cannot describe output 0", model);
            goto done;
        }
        output = vo.name;
    }
    tdm_tensor out = {0};
    const uint64_t t0 = tdm_now_ns();
    for (int64_t start = 0; start < ds.n; start += batch) {
        int64_t nb = ds.n - start < batch ? ds.n - start : batch;
        in.dims[0] = fixed_batch ? batch : nb;
        memcpy(in.data, (const float *)ds.x.data + start * per, (size_t)(nb * per) * sizeof(float));
        if (nb < in.dims[0])
            memset((float *)in.data + nb * per, 0,
                   (size_t)((in.dims[0] - nb) * per) * sizeof(float));
        tdm_status st = tdm_session_run_range(s, 1, &in_name, &in, 1, &output, &out, &err);
        if (st == TDM_OK) {
            const tdm_tensor *o = &out;
            int64_t total = tdm_tensor_numel(o);
            if (o->dtype != TDM_DTYPE_FLOAT32 || o->ndim < 1 || o->dims[0] != in.dims[0] ||
                total / in.dims[0] < 1) {
                char buf[128];
                st = tdm_errf(&err, TDM_ERR_SHAPE,
                              "output '%s' is %s, want float32 [%lld, classes]", output,
                              tdm_tensor_shape_str(o, buf, sizeof buf), (long long)in.dims[0]);
            } else {
                const int64_t k = total / in.dims[0];
                const float *y = o->data;
                for (int64_t i = 0; i < nb; i++) {
                    int64_t best = 0;
                    for (int64_t j = 1; j < k; j++)
                        if (y[i * k + j] > y[i * k + best])
                            best = j;
                    correct += best == ds.labels[start + i];
                }
            }
        }
        tdm_tensor_free(&out);
        if (st != TDM_OK) {
            rc = tdm_cli_fail("eval", TDM_EXIT_FAIL, "%s: images %lld..%lld: %s", model,
                              (long long)start, (long long)(start + nb - 1), err.msg);
            goto done;
        }
    }
    const double secs = (double)(tdm_now_ns() - t0) / 1e9;
    const double acc = ds.n > 0 ? (double)correct / (double)ds.n : 0.0;
    if (json) {
        printf("{\"model\":");
        put_json_string(model);
        printf(",\"output\":");
        put_json_string(output);
        printf(",\"dataset\":\"%s\",\"accuracy\":%.6f,\"correct\":%lld,"
               "\"count\":%lld,\"batch\":%lld,\"threads\":%lld,\"seconds\":%.4f,"
               "\"images_per_s\":%.1f}\n",
               dataset, acc, (long long)correct, (long long)ds.n, (long long)batch,
               (long long)threads, secs, secs > 0 ? (double)ds.n / secs : 0.0);
    } else {
        printf("accuracy %.2f%% (%lld/%lld) on %s, %.3f s (%.0f images/s, batch %lld, %lld "
               "threads)\n",
               100.0 * acc, (long long)correct, (long long)ds.n, dataset, secs,
               secs > 0 ? (double)ds.n / secs : 0.0, (long long)batch, (long long)threads);
    }
    rc = TDM_EXIT_OK;
done:
    tdm_tensor_free(&in);
    tdm_session_free(s);
    tdm_graph_free(g);
    tdm_dataset_free(&ds);
    return rc;
}

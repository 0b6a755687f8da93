/*
 * tandem run: runs a model on .npy inputs and writes its outputs as .npy.
 *
 * With --repeat N it also times N runs after a warm-up (which builds and
 * caches the plan and lets the caches and thread pool settle) and prints one
 * JSON line with the median and 90th percentile, so scripts can compare it
 * with other engines run the same way.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "cli.h"
#include "cli_util.h"
#include "tandem/tandem.h"

#define MAX_INPUTS 64

static void run_usage(FILE *f)
{
    fprintf(f,
            "usage: tandem run MODEL.onnx [--input NAME=FILE.npy]... [--output-dir DIR]\n"
            "                  [--threads N] [--repeat N] [--no-optimize] [--int8]\n"
            "\n"
            "Runs MODEL on the given inputs and writes each graph output to DIR/<name>.npy\n"
            "(DIR defaults to the current directory; characters outside [A-Za-z0-9_.-] in\n"
            "the name become '_'). A model with one input also takes --input FILE.npy.\n"
            "  --threads N     worker threads (default 1)\n"
            "  --repeat N      time N runs after warm-up; print {\"p50_ms\",\"p90_ms\",\"runs\"}\n"
            "  --no-optimize   skip graph fusion passes\n"
            "  --int8          int8 weights, dynamically quantised activations for large\n"
            "                  constant MatMuls (approximate; see docs/BENCHMARKS.md)\n");
}

int tdm_cmd_run(int argc, char **argv)
{
    const char *model = NULL, *out_dir = ".";
    const char *in_spec[MAX_INPUTS];
    int n_spec = 0;
    int64_t threads = 1, repeat = 0;
    bool no_opt = false, int8 = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (tdm_cli_is_help(a)) {
            run_usage(stdout);
            return TDM_EXIT_OK;
        }
        if (strcmp(a, "--input") == 0 || strcmp(a, "--output-dir") == 0 ||
            strcmp(a, "--threads") == 0 || strcmp(a, "--repeat") == 0) {
            if (i + 1 >= argc)
                return tdm_cli_fail("run", TDM_EXIT_USAGE, "%s needs a value", a);
            const char *v = argv[++i];
            if (strcmp(a, "--input") == 0) {
                if (n_spec == MAX_INPUTS)
                    return tdm_cli_fail("run", TDM_EXIT_USAGE, "more than %d inputs", MAX_INPUTS);
                in_spec[n_spec++] = v;
            } else if (strcmp(a, "--output-dir") == 0) {
                out_dir = v;
            } else if (strcmp(a, "--threads") == 0) {
                if (!tdm_cli_parse_int(v, 1, 256, &threads))
                    return tdm_cli_fail("run", TDM_EXIT_USAGE, "--threads: '%s' is not 1..256", v);
            } else if (!tdm_cli_parse_int(v, 1, 100000000, &repeat)) {
                return tdm_cli_fail("run", TDM_EXIT_USAGE, "--repeat: '%s' is not a positive count",
                                    v);
            }
        } else if (strcmp(a, "--no-optimize") == 0) {
            no_opt = true;
        } else if (strcmp(a, "--int8") == 0) {
            int8 = true;
        } else if (a[0] == '-') {
            return tdm_cli_fail("run", TDM_EXIT_USAGE, "unknown option '%s'", a);
        } else if (model == NULL) {
            model = a;
        } else {
            return tdm_cli_fail("run", TDM_EXIT_USAGE, "unexpected argument '%s'", a);
        }
    }
    if (model == NULL) {
        run_usage(stderr);
        return TDM_EXIT_USAGE;
    }

    tdm_err err = {{0}};
    tdm_graph *g = NULL;
    tdm_session *s = NULL;
    tdm_load_options lo = {.no_optimize = no_opt, .int8 = int8};
    tdm_tensor inputs[MAX_INPUTS];
    char *names[MAX_INPUTS];
    tdm_tensor *outs = NULL;
    int n_in = 0, rc = TDM_EXIT_FAIL;
    memset(inputs, 0, sizeof inputs);
    memset(names, 0, sizeof names);
    double *times = NULL;

    if (tdm_graph_load(model, &lo, &g, &err) != TDM_OK) {
        tdm_cli_fail("run", TDM_EXIT_FAIL, "%s: %s", model, err.msg);
        goto done;
    }
    for (int i = 0; i < n_spec; i++) {
        const char *eq = strchr(in_spec[i], '=');
        const char *file = eq ? eq + 1 : in_spec[i];
        if (eq == NULL) {
            if (tdm_graph_num_inputs(g) != 1 || n_spec != 1) {
                rc = tdm_cli_fail("run", TDM_EXIT_USAGE,
                                  "--input '%s': use NAME=FILE.npy (the model has %d inputs)",
                                  in_spec[i], tdm_graph_num_inputs(g));
                goto done;
            }
            tdm_value_info vi;
            tdm_graph_input_info(g, 0, &vi);
            names[i] = strdup(vi.name);
        } else {
            names[i] = strndup(in_spec[i], (size_t)(eq - in_spec[i]));
        }
        if (names[i] == NULL) {
            tdm_cli_fail("run", TDM_EXIT_FAIL, "out of memory");
            goto done;
        }
        n_in = i + 1;
        if (tdm_npy_read(file, &inputs[i], &err) != TDM_OK) {
            tdm_cli_fail("run", TDM_EXIT_FAIL, "%s: %s", file, err.msg);
            goto done;
        }
    }
    for (int i = 0; i < tdm_graph_num_inputs(g); i++) {
        tdm_value_info vi;
        tdm_graph_input_info(g, i, &vi);
        bool given = false;
        for (int k = 0; k < n_in && !given; k++)
            given = strcmp(names[k], vi.name) == 0;
        if (!given) {
            rc = tdm_cli_fail("run", TDM_EXIT_USAGE, "input '%s' is required (--input %s=FILE.npy)",
                              vi.name, vi.name);
            goto done;
        }
    }

    tdm_session_options so = {.threads = (int)threads};
    if (tdm_session_create(g, &so, &s, &err) != TDM_OK) {
        tdm_cli_fail("run", TDM_EXIT_FAIL, "%s: %s", model, err.msg);
        goto done;
    }
    int n_out = tdm_graph_num_outputs(g);
    outs = calloc((size_t)n_out + 1, sizeof *outs);
    if (outs == NULL) {
        tdm_cli_fail("run", TDM_EXIT_FAIL, "out of memory");
        goto done;
    }
    const char *const *cnames = (const char *const *)names;
    if (tdm_session_run(s, n_in, cnames, inputs, outs, &err) != TDM_OK) {
        tdm_cli_fail("run", TDM_EXIT_FAIL, "%s: %s", model, err.msg);
        goto done;
    }
    if (repeat > 0) {
        times = malloc(sizeof *times * (size_t)repeat);
        if (times == NULL) {
            tdm_cli_fail("run", TDM_EXIT_FAIL, "out of memory");
            goto done;
        }
        int64_t warm = repeat / 10 < 3 ? 3 : (repeat / 10 > 20 ? 20 : repeat / 10);
        for (int64_t r = 0; r < warm + repeat; r++) {
            for (int k = 0; k < n_out; k++)
                tdm_tensor_free(&outs[k]);
            uint64_t t0 = tdm_now_ns();
            if (tdm_session_run(s, n_in, cnames, inputs, outs, &err) != TDM_OK) {
                tdm_cli_fail("run", TDM_EXIT_FAIL, "%s: %s", model, err.msg);
                goto done;
            }
            if (r >= warm)
                times[r - warm] = (double)(tdm_now_ns() - t0) / 1e6;
        }
        tdm_cli_sort_doubles(times, repeat);
        double sum = 0;
        for (int64_t r = 0; r < repeat; r++)
            sum += times[r];
        printf("{\"p50_ms\":%.4f,\"p90_ms\":%.4f,\"mean_ms\":%.4f,\"runs\":%lld}\n",
               tdm_cli_percentile(times, repeat, 0.5), tdm_cli_percentile(times, repeat, 0.9),
               sum / (double)repeat, (long long)repeat);
    }
    if (!tdm_cli_mkdirs(out_dir)) {
        tdm_cli_fail("run", TDM_EXIT_FAIL, "cannot create output directory '%s'", out_dir);
        goto done;
    }
    for (int k = 0; k < n_out; k++) {
        tdm_value_info vi;
        tdm_graph_output_info(g, k, &vi);
        char safe[256], path[4096];
        tdm_cli_sanitize(vi.name, safe, sizeof safe);
        snprintf(path, sizeof path, "%s/%s.npy", out_dir, safe);
        if (tdm_npy_write(path, &outs[k], &err) != TDM_OK) {
            tdm_cli_fail("run", TDM_EXIT_FAIL, "%s: %s", path, err.msg);
            goto done;
        }
    }
    rc = TDM_EXIT_OK;
done:
    if (outs != NULL)
        for (int k = 0; k < tdm_graph_num_outputs(g); k++)
            tdm_tensor_free(&outs[k]);
    free(outs);
    free(times);
    for (int i = 0; i < MAX_INPUTS; i++) {
        tdm_tensor_free(&inputs[i]);
        free(names[i]);
    }
    tdm_session_free(s);
    tdm_graph_free(g);
    return rc;
}

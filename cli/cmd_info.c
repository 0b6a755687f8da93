/*
 * tandem info: what a model declares (inputs, outputs, opset) and what it
 * holds (op counts, parameter bytes). By default the file is read without
 * optimising it, so the op counts are the file's; --optimized shows the graph
 * tandem actually runs.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cli_util.h"
#include "tandem/tandem.h"

static void info_usage(FILE *f)
{
    fprintf(f, "usage: tandem info MODEL.onnx [--json] [--optimized]\n"
               "\n"
               "Prints the model's inputs and outputs with shapes, opset, op counts and\n"
               "parameter bytes; --json prints the same as one JSON object; --optimized\n"
               "counts the ops of the graph after tandem's fusion passes.\n");
}

static void json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

static void print_value(const tdm_value_info *vi, bool json)
{
    if (json) {
        printf("{\"name\":");
        json_str(vi->name);
        printf(",\"dtype\":\"%s\",\"shape\":", tdm_dtype_name(vi->dtype));
        if (vi->ndim < 0) {
            printf("null}");
            return;
        }
        putchar('[');
        for (int d = 0; d < vi->ndim; d++) {
            if (d)
                putchar(',');
            if (vi->dims[d] >= 0)
                printf("%lld", (long long)vi->dims[d]);
            else if (vi->dim_names[d] != NULL)
                json_str(vi->dim_names[d]);
            else
                printf("null");
        }
        printf("]}");
        return;
    }
    printf("  %-24s %-8s ", vi->name, tdm_dtype_name(vi->dtype));
    if (vi->ndim < 0) {
        printf("[?]\n");
        return;
    }
    putchar('[');
    for (int d = 0; d < vi->ndim; d++) {
        if (d)
            putchar(',');
        if (vi->dims[d] >= 0)
            printf("%lld", (long long)vi->dims[d]);
        else
            printf("%s", vi->dim_names[d] ? vi->dim_names[d] : "?");
    }
    printf("]\n");
}

typedef struct op_print {
    bool json;
    int n;
} op_print;

static void print_op(void *arg, const char *op, int count)
{
    op_print *p = arg;
    if (p->json) {
        printf("%s", p->n ? "," : "");
        json_str(op);
        printf(":%d", count);
    } else {
        printf("  %-24s %d\n", op, count);
    }
    p->n++;
}

int tdm_cmd_info(int argc, char **argv)
{
    const char *model = NULL;
    bool json = false, optimized = false;
    for (int i = 1; i < argc; i++) {
        if (tdm_cli_is_help(argv[i])) {
            info_usage(stdout);
            return TDM_EXIT_OK;
        } else if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if (strcmp(argv[i], "--optimized") == 0) {
            optimized = true;
        } else if (argv[i][0] == '-') {
            return tdm_cli_fail("info", TDM_EXIT_USAGE, "unknown option '%s'", argv[i]);
        } else if (model == NULL) {
            model = argv[i];
        } else {
            return tdm_cli_fail("info", TDM_EXIT_USAGE, "unexpected argument '%s'", argv[i]);
        }
    }
    if (model == NULL) {
        info_usage(stderr);
        return TDM_EXIT_USAGE;
    }
    tdm_err err = {{0}};
    tdm_graph *g = NULL;
    tdm_load_options lo = {.no_optimize = !optimized};
    if (tdm_graph_load(model, &lo, &g, &err) != TDM_OK)
        return tdm_cli_fail("info", TDM_EXIT_FAIL, "%s: %s", model, err.msg);
    tdm_graph_stats st;
    tdm_graph_get_stats(g, &st);
    tdm_value_info vi;
    op_print op = {json, 0};
    if (json) {
        printf("{\"model\":");
        json_str(model);
        printf(",\"opset\":%lld,\"ir_version\":%lld,\"nodes\":%d,\"param_bytes\":%llu,"
               "\"param_count\":%llu,\"inputs\":[",
               (long long)st.opset, (long long)st.ir_version, st.n_nodes,
               (unsigned long long)st.param_bytes, (unsigned long long)st.param_count);
        for (int i = 0; i < tdm_graph_num_inputs(g); i++) {
            printf("%s", i ? "," : "");
            tdm_graph_input_info(g, i, &vi);
            print_value(&vi, true);
        }
        printf("],\"outputs\":[");
        for (int i = 0; i < tdm_graph_num_outputs(g); i++) {
            printf("%s", i ? "," : "");
            tdm_graph_output_info(g, i, &vi);
            print_value(&vi, true);
        }
        printf("],\"ops\":{");
        tdm_graph_op_counts(g, print_op, &op);
        printf("}}\n");
    } else {
        printf("model       %s\nopset       %lld (ir_version %lld)\nnodes       %d\n", model,
               (long long)st.opset, (long long)st.ir_version, st.n_nodes);
        printf("parameters  %llu (%llu bytes, %.2f MiB)\ninputs\n",
               (unsigned long long)st.param_count, (unsigned long long)st.param_bytes,
               (double)st.param_bytes / 1048576.0);
        for (int i = 0; i < tdm_graph_num_inputs(g); i++) {
            tdm_graph_input_info(g, i, &vi);
            print_value(&vi, false);
        }
        printf("outputs\n");
        for (int i = 0; i < tdm_graph_num_outputs(g); i++) {
            tdm_graph_output_info(g, i, &vi);
            print_value(&vi, false);
        }
        printf("ops\n");
        tdm_graph_op_counts(g, print_op, &op);
    }
    tdm_graph_free(g);
    return TDM_EXIT_OK;
}

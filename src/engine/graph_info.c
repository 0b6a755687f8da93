/*
 * Read-only queries over a loaded graph: declared inputs and outputs,
 * summary statistics and op histograms (for `tandem info` and callers that
 * must feed a model without knowing it in advance).
 *
 * Everything here reads the IR as the loader and passes left it; the info
 * structs borrow names from the graph, so they stay valid while it lives.
 */
#include <stdlib.h>
#include <string.h>

#include "engine/ir.h"
#include "tandem/graph.h"

int tdm_graph_num_inputs(const tdm_graph *g)
{
    return g != NULL ? g->n_inputs : 0;
}

int tdm_graph_num_outputs(const tdm_graph *g)
{
    return g != NULL ? g->n_outputs : 0;
}

static void fill_info(const tdm_value *v, tdm_value_info *info)
{
    memset(info, 0, sizeof *info);
    info->name = v->name;
    info->dtype = v->dtype;
    info->ndim = v->ndim;
    for (int d = 0; d < TDM_MAX_DIMS; d++) {
        info->dims[d] = d < v->ndim ? v->dims[d] : 0;
        info->dim_names[d] = d < v->ndim ? v->dim_param[d] : NULL;
    }
}

tdm_status tdm_graph_input_info(const tdm_graph *g, int i, tdm_value_info *info)
{
    if (g == NULL || info == NULL || i < 0 || i >= g->n_inputs)
        return TDM_ERR_INVALID_ARG;
    fill_info(&g->values[g->inputs[i]], info);
    return TDM_OK;
}

tdm_status tdm_graph_output_info(const tdm_graph *g, int i, tdm_value_info *info)
{
    if (g == NULL || info == NULL || i < 0 || i >= g->n_outputs)
        return TDM_ERR_INVALID_ARG;
    fill_info(&g->values[g->outputs[i]], info);
    return TDM_OK;
}

void tdm_graph_get_stats(const tdm_graph *g, tdm_graph_stats *st)
{
    memset(st, 0, sizeof *st);
    if (g == NULL)
        return;
    st->opset = g->opset;
    st->ir_version = g->ir_version;
    for (int32_t i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op_type != NULL)
            st->n_nodes++;
    for (int32_t v = 0; v < g->n_values; v++) {
        const tdm_value *val = &g->values[v];
        if (!val->is_const || val->cval.data == NULL)
            continue;
        st->param_bytes += tdm_tensor_nbytes(&val->cval);
        st->param_count += (uint64_t)tdm_tensor_numel(&val->cval);
    }
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

void tdm_graph_op_counts(const tdm_graph *g, void (*fn)(void *arg, const char *op, int count),
                         void *arg)
{
    if (g == NULL || g->n_nodes == 0)
        return;
    const char **ops = malloc(sizeof *ops * (size_t)g->n_nodes);
    if (ops == NULL) {
        /* No memory to sort: quadratic, in first-seen order. */
        for (int32_t i = 0; i < g->n_nodes; i++) {
            const char *op = g->nodes[i].op_type;
            bool seen = op == NULL;
            for (int32_t j = 0; j < i && !seen; j++)
                seen = g->nodes[j].op_type != NULL && strcmp(g->nodes[j].op_type, op) == 0;
            if (seen)
                continue;
            int c = 0;
            for (int32_t j = i; j < g->n_nodes; j++)
                c += g->nodes[j].op_type != NULL && strcmp(g->nodes[j].op_type, op) == 0;
            fn(arg, op, c);
        }
        return;
    }
    size_t n = 0;
    for (int32_t i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op_type != NULL)
            ops[n++] = g->nodes[i].op_type;
    qsort(ops, n, sizeof *ops, cmp_str);
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && strcmp(ops[j], ops[i]) == 0)
            j++;
        fn(arg, ops[i], (int)(j - i));
        i = j;
    }
    free(ops);
}

/*
 * FLOPs per node (see flops.h for the convention and why shapes come from a
 * probe run of the executor rather than a separate shape inference).
 */
#include "collab/flops.h"

#include <stdlib.h>
#include <string.h>

static bool known(const tdm_tensor *t)
{
    return t != NULL && t->ndim >= 0;
}

static double numel(const tdm_tensor *t)
{
    double n = 1;
    for (int d = 0; d < t->ndim; d++)
        n *= (double)t->dims[d];
    return n;
}

static bool is_op(const tdm_node *n, const char *name)
{
    return strcmp(n->op_type, name) == 0;
}

/* Ops that only move, select or describe data: no arithmetic. */
static bool data_movement(const tdm_node *n)
{
    static const char *const k[] = {
        "Reshape", "Flatten",  "Squeeze",      "Unsqueeze",    "Transpose",      "Concat",
        "Split",   "Slice",    "Gather",       "Shape",        "Size",           "Identity",
        "Dropout", "Expand",   "Tile",         "Pad",          "GatherElements", "ConstantOfShape",
        "Range",   "Constant", "DepthToSpace", "SpaceToDepth", "ScatterND",      "GatherND"};
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
        if (is_op(n, k[i]))
            return true;
    return false;
}

double tdm_flops_node(const tdm_node *n, const tdm_tensor *const *in, const tdm_tensor *const *out)
{
    if (n->op_type == NULL || n->n_out < 1 || !known(out[0]))
        return 0;
    const tdm_tensor *y = out[0];
    const tdm_tensor *a = n->n_in > 0 ? in[0] : NULL;
    const tdm_tensor *b = n->n_in > 1 ? in[1] : NULL;
    bool tandem = strcmp(n->domain, "tandem") == 0;
    if (n->domain[0] != '\0' && !tandem)
        return 0;
    if (!tandem && is_op(n, "Conv")) {
        /* W [Cout, Cin/group, k...]: each output element is Cin/group * prod(k) MACs. */
        if (!known(b) || b->ndim < 2)
            return 0;
        double per = 1;
        for (int d = 1; d < b->ndim; d++)
            per *= (double)b->dims[d];
        return 2 * numel(y) * per;
    }
    if (!tandem && is_op(n, "ConvTranspose")) {
        /* W [Cin, Cout/group, k...]: each input element scatters Cout/group * prod(k) MACs. */
        if (!known(a) || !known(b) || b->ndim < 2)
            return 0;
        double per = 1;
        for (int d = 1; d < b->ndim; d++)
            per *= (double)b->dims[d];
        return 2 * numel(a) * per;
    }
    if (is_op(n, "MatMul") || (tandem && (is_op(n, "FusedMatMul") || is_op(n, "QMatMul")))) {
        if (!known(a) || a->ndim < 1)
            return 0;
        double k = (double)a->dims[a->ndim - 1];
        return 2 * numel(y) * k;
    }
    if (!tandem && is_op(n, "Gemm")) {
        if (!known(a) || a->ndim != 2)
            return 0;
        double k = (double)(tdm_attr_int(n, "transA", 0) ? a->dims[0] : a->dims[1]);
        return 2 * numel(y) * k;
    }
    if (tandem && is_op(n, "Attention")) {
        /* Q [B,S,H*D], K [B,T,H*D], V [B,T,H*Dv]: the QK^T and PV products over all heads. */
        const tdm_tensor *v = n->n_in > 2 ? in[2] : NULL;
        if (!known(a) || !known(b) || !known(v) || a->ndim != 3 || b->ndim != 3 || v->ndim != 3)
            return 0;
        double bs = (double)a->dims[0] * (double)a->dims[1], t = (double)b->dims[1];
        return 2 * bs * t * (double)a->dims[2] + 2 * bs * t * (double)v->dims[2] +
               bs * t; /* softmax over the scores */
    }
    if (tandem)
        return numel(y);
    if (is_op(n, "MaxPool") || is_op(n, "AveragePool") || is_op(n, "LpPool")) {
        int64_t nk = 0;
        const int64_t *ks = tdm_attr_ints(n, "kernel_shape", &nk);
        double per = 1;
        for (int64_t d = 0; d < nk; d++)
            per *= (double)ks[d];
        return numel(y) * per;
    }
    if (is_op(n, "GlobalAveragePool") || is_op(n, "GlobalMaxPool") || is_op(n, "GlobalLpPool"))
        return known(a) ? numel(a) : 0;
    if (data_movement(n))
        return 0;
    return numel(y); /* element-wise, activations, normalisation, reductions' outputs */
}

/* Declared shape of graph input v with symbolic dims set to 1. */
static void declared_shape(const tdm_value *v, tdm_tensor *t)
{
    memset(t, 0, sizeof *t);
    t->dtype = v->dtype == TDM_DTYPE_UNDEFINED ? TDM_DTYPE_FLOAT32 : v->dtype;
    t->ndim = v->ndim < 0 ? 0 : v->ndim;
    for (int d = 0; d < t->ndim; d++)
        t->dims[d] = v->dims[d] < 0 ? 1 : v->dims[d];
}

tdm_status tdm_graph_probe_shapes(const tdm_graph *g, tdm_session *s, int n_in,
                                  const char *const *in_names, const tdm_tensor *in,
                                  tdm_tensor *shapes, tdm_err *err)
{
    for (int32_t v = 0; v < g->n_values; v++) {
        memset(&shapes[v], 0, sizeof shapes[v]);
        shapes[v].ndim = -1;
        if (g->values[v].is_const) {
            shapes[v] = g->values[v].cval;
            shapes[v].data = NULL;
            shapes[v].flags = 0;
        }
    }
    for (int i = 0; i < n_in; i++)
        if (tdm_graph_find(g, in_names[i]) < 0 ||
            !g->values[tdm_graph_find(g, in_names[i])].is_input)
            return tdm_errf(err, TDM_ERR_NOT_FOUND, "the model has no input named '%s'",
                            in_names[i]);
    tdm_session *own = NULL;
    tdm_status st = TDM_OK;
    if (s == NULL) {
        tdm_session_options so = {.threads = 1};
        st = tdm_session_create(g, &so, &own, err);
        if (st != TDM_OK)
            return st;
        s = own;
    }
    int32_t ni = g->n_inputs, nt = 0;
    const char **from_names = calloc((size_t)ni + 1, sizeof *from_names);
    tdm_tensor *from = calloc((size_t)ni + 1, sizeof *from);
    const char **until = calloc((size_t)g->n_values + 1, sizeof *until);
    int32_t *until_ids = calloc((size_t)g->n_values + 1, sizeof *until_ids);
    tdm_tensor *res = NULL;
    if (from_names == NULL || from == NULL || until == NULL || until_ids == NULL) {
        st = tdm_errf(err, TDM_ERR_NOMEM, "out of memory probing shapes");
        goto done;
    }
    for (int32_t i = 0; i < ni && st == TDM_OK; i++) {
        const tdm_value *v = &g->values[g->inputs[i]];
        from_names[i] = v->name;
        const tdm_tensor *given = NULL;
        for (int k = 0; k < n_in; k++)
            if (strcmp(in_names[k], v->name) == 0)
                given = &in[k];
        if (given != NULL && given->data != NULL) {
            st = tdm_tensor_copy(&from[i], given, err);
        } else {
            tdm_tensor t;
            declared_shape(v, &t);
            if (given != NULL)
                t = *given;
            st = tdm_tensor_make(&from[i], t.dtype, t.ndim, t.dims, err);
        }
        if (st == TDM_OK) {
            shapes[g->inputs[i]] = from[i];
            shapes[g->inputs[i]].data = NULL;
            shapes[g->inputs[i]].flags = 0;
        }
    }
    if (st != TDM_OK)
        goto done;
    for (int32_t v = 0; v < g->n_values; v++)
        if (!g->values[v].is_const && g->values[v].producer >= 0) {
            until[nt] = g->values[v].name;
            until_ids[nt++] = v;
        }
    if (nt == 0)
        goto done;
    res = calloc((size_t)nt, sizeof *res);
    if (res == NULL) {
        st = tdm_errf(err, TDM_ERR_NOMEM, "out of memory probing shapes");
        goto done;
    }
    st = tdm_session_run_range(s, ni, from_names, from, nt, until, res, err);
    if (st != TDM_OK) {
        tdm_err_prefix(err, "probing tensor shapes");
        goto done;
    }
    for (int32_t k = 0; k < nt; k++) {
        shapes[until_ids[k]] = res[k];
        shapes[until_ids[k]].data = NULL;
        shapes[until_ids[k]].flags = 0;
        tdm_tensor_free(&res[k]);
    }
done:
    if (from != NULL)
        for (int32_t i = 0; i < ni; i++)
            tdm_tensor_free(&from[i]);
    free(res);
    free(from);
    free(from_names);
    free(until);
    free(until_ids);
    tdm_session_free(own);
    return st;
}

void tdm_flops_from_shapes(const tdm_graph *g, const tdm_tensor *shapes, double *per_node)
{
    const tdm_tensor *in[64], *out[64];
    for (int32_t i = 0; i < g->n_nodes; i++) {
        const tdm_node *n = &g->nodes[i];
        per_node[i] = 0;
        if (n->n_in > 64 || n->n_out > 64)
            continue;
        for (int k = 0; k < n->n_in; k++)
            in[k] = n->in[k] >= 0 ? &shapes[n->in[k]] : NULL;
        for (int k = 0; k < n->n_out; k++)
            out[k] = n->out[k] >= 0 ? &shapes[n->out[k]] : NULL;
        per_node[i] = tdm_flops_node(n, in, out);
    }
}

tdm_status tdm_flops_per_node(const tdm_graph *g, tdm_session *s, int n_in,
                              const char *const *in_names, const tdm_tensor *in, double **per_node,
                              double *total, tdm_err *err)
{
    *per_node = NULL;
    tdm_tensor *shapes = calloc((size_t)g->n_values + 1, sizeof *shapes);
    double *f = calloc((size_t)g->n_nodes + 1, sizeof *f);
    if (shapes == NULL || f == NULL) {
        free(shapes);
        free(f);
        return tdm_errf(err, TDM_ERR_NOMEM, "out of memory counting FLOPs");
    }
    tdm_status st = tdm_graph_probe_shapes(g, s, n_in, in_names, in, shapes, err);
    if (st == TDM_OK) {
        tdm_flops_from_shapes(g, shapes, f);
        if (total != NULL)
            *total = tdm_flops_prefix(f, g->n_nodes);
        *per_node = f;
    } else {
        free(f);
    }
    free(shapes);
    return st;
}

tdm_status tdm_flops_until(const tdm_graph *g, const double *per_node, int n_targets,
                           const char *const *targets, double *flops, tdm_err *err)
{
    *flops = 0;
    bool *need = calloc((size_t)g->n_values + 1, sizeof *need);
    if (need == NULL)
        return tdm_errf(err, TDM_ERR_NOMEM, "out of memory counting FLOPs");
    for (int i = 0; i < n_targets; i++) {
        int32_t v = tdm_graph_find(g, targets[i]);
        if (v < 0) {
            free(need);
            return tdm_errf(err, TDM_ERR_NOT_FOUND, "no tensor named '%s' in the model",
                            targets[i]);
        }
        need[v] = true;
    }
    double sum = 0;
    for (int32_t i = g->n_nodes - 1; i >= 0; i--) {
        const tdm_node *n = &g->nodes[i];
        bool want = false;
        for (int k = 0; k < n->n_out && !want; k++)
            want = n->out[k] >= 0 && need[n->out[k]];
        if (!want)
            continue;
        sum += per_node[i];
        for (int k = 0; k < n->n_in; k++)
            if (n->in[k] >= 0)
                need[n->in[k]] = true;
    }
    free(need);
    *flops = sum;
    return TDM_OK;
}

double tdm_flops_prefix(const double *per_node, int32_t n_nodes_before)
{
    double s = 0;
    for (int32_t i = 0; i < n_nodes_before; i++)
        s += per_node[i];
    return s;
}

/*
 * Pattern-matching helpers for passes (see pass_util.h).
 */
#include "engine/passes/pass_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

tdm_status tdm_pass_begin(tdm_pass_ctx *c, tdm_graph *g, tdm_err *err)
{
    c->g = g;
    c->uses = NULL;
    return tdm_pass_refresh(c, err);
}

void tdm_pass_end(tdm_pass_ctx *c)
{
    free(c->uses);
    c->uses = NULL;
}

tdm_status tdm_pass_refresh(tdm_pass_ctx *c, tdm_err *err)
{
    tdm_graph *g = c->g;
    for (int32_t v = 0; v < g->n_values; v++)
        g->values[v].producer = -1;
    for (int32_t i = 0; i < g->n_nodes; i++) {
        const tdm_node *n = &g->nodes[i];
        if (n->op_type == NULL)
            continue;
        for (int o = 0; o < n->n_out; o++)
            if (n->out[o] >= 0)
                g->values[n->out[o]].producer = i;
    }
    free(c->uses);
    c->uses = tdm_graph_use_counts(g);
    if (c->uses == NULL)
        return tdm_errf(err, TDM_ERR_NOMEM, "out of memory in graph pass");
    return TDM_OK;
}

tdm_status tdm_pass_each_node(tdm_graph *g, tdm_pass_match_fn fn, tdm_err *err)
{
    tdm_pass_ctx c;
    tdm_status st = tdm_pass_begin(&c, g, err);
    for (int32_t i = 0; i < g->n_nodes && st == TDM_OK; i++) {
        bool done = false;
        st = fn(&c, i, &done, err);
        if (st == TDM_OK && done)
            st = tdm_pass_refresh(&c, err);
    }
    tdm_pass_end(&c);
    return st;
}

tdm_node *tdm_pass_producer(tdm_pass_ctx *c, int32_t v, const char *op)
{
    if (v < 0 || c->g->values[v].producer < 0)
        return NULL;
    tdm_node *n = &c->g->nodes[c->g->values[v].producer];
    if (n->op_type == NULL || (op != NULL && !tdm_pass_is(n, op)))
        return NULL;
    /* Binary ops come back only with both inputs present. */
    if (op != NULL && (n->n_in != 2 || n->in[1] < 0) &&
        (strcmp(op, "Add") == 0 || strcmp(op, "Mul") == 0 || strcmp(op, "Div") == 0 ||
         strcmp(op, "Sub") == 0 || strcmp(op, "MatMul") == 0 || strcmp(op, "Reshape") == 0))
        return NULL;
    return n;
}

bool tdm_pass_single_use(tdm_pass_ctx *c, int32_t v)
{
    return v >= 0 && c->uses[v] == 1 && !c->g->values[v].is_output;
}

tdm_node *tdm_pass_sole_consumer(tdm_pass_ctx *c, int32_t v, int *input_index)
{
    if (!tdm_pass_single_use(c, v))
        return NULL;
    tdm_graph *g = c->g;
    for (int32_t i = 0; i < g->n_nodes; i++) {
        tdm_node *n = &g->nodes[i];
        if (n->op_type == NULL)
            continue;
        for (int k = 0; k < n->n_in; k++)
            if (n->in[k] == v) {
                if (input_index != NULL)
                    *input_index = k;
                return n;
            }
    }
    return NULL;
}

bool tdm_pass_const_scalar(const tdm_graph *g, int32_t v, float *out)
{
    if (v < 0 || !g->values[v].is_const)
        return false;
    const tdm_tensor *t = &g->values[v].cval;
    if (tdm_tensor_numel(t) != 1)
        return false;
    if (t->dtype == TDM_DTYPE_FLOAT32)
        *out = *(const float *)t->data;
    else if (t->dtype == TDM_DTYPE_FLOAT64)
        *out = (float)*(const double *)t->data;
    else
        return false;
    return true;
}

int tdm_pass_const_ints(const tdm_graph *g, int32_t v, int64_t *out, int cap)
{
    if (v < 0 || !g->values[v].is_const)
        return -1;
    const tdm_tensor *t = &g->values[v].cval;
    int64_t n = tdm_tensor_numel(t);
    if (n > cap || t->ndim > 1)
        return -1;
    for (int64_t i = 0; i < n; i++) {
        if (t->dtype == TDM_DTYPE_INT64)
            out[i] = ((const int64_t *)t->data)[i];
        else if (t->dtype == TDM_DTYPE_INT32)
            out[i] = ((const int32_t *)t->data)[i];
        else
            return -1;
    }
    return (int)n;
}

const tdm_tensor *tdm_pass_const_f32(const tdm_graph *g, int32_t v)
{
    if (v < 0 || !g->values[v].is_const || g->values[v].cval.dtype != TDM_DTYPE_FLOAT32)
        return NULL;
    return &g->values[v].cval;
}

int32_t tdm_pass_add_const(tdm_graph *g, const char *hint, tdm_tensor *t)
{
    int32_t v = tdm_graph_new_value(g, hint);
    if (v < 0)
        return -1;
    tdm_value *val = &g->values[v];
    val->is_const = true;
    val->cval = *t;
    val->dtype = t->dtype;
    val->ndim = t->ndim;
    for (int d = 0; d < t->ndim; d++)
        val->dims[d] = t->dims[d];
    memset(t, 0, sizeof *t);
    return v;
}

int tdm_pass_axes(const tdm_graph *g, const tdm_node *n, const char *attr, int input_idx,
                  int64_t *out, int cap)
{
    int64_t cnt = 0;
    const int64_t *a = tdm_attr_ints(n, attr, &cnt);
    if (a != NULL) {
        if (cnt > cap)
            return -1;
        memcpy(out, a, sizeof *a * (size_t)cnt);
        return (int)cnt;
    }
    if (n->n_in > input_idx && n->in[input_idx] >= 0)
        return tdm_pass_const_ints(g, n->in[input_idx], out, cap);
    return 0;
}

void tdm_pass_replace_uses(tdm_graph *g, int32_t from, int32_t to)
{
    for (int32_t i = 0; i < g->n_nodes; i++) {
        tdm_node *n = &g->nodes[i];
        if (n->op_type == NULL)
            continue;
        for (int k = 0; k < n->n_in; k++)
            if (n->in[k] == from)
                n->in[k] = to;
    }
}

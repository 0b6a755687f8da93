/*
 * Graph IR construction, lookup and teardown (see ir.h).
 *
 * Names map to value ids through an open-addressing table keyed by FNV-1a;
 * the table is rebuilt when it is half full. Removal of values never
 * happens (passes leave unused values behind), so there are no tombstones.
 */
#include "engine/ir.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "base/alloc.h"

static uint32_t hash_str(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 16777619u;
    }
    return h;
}

tdm_status tdm_graph_new(tdm_graph **out, tdm_err *err)
{
    tdm_graph *g = calloc(1, sizeof *g);
    if (g == NULL)
        return tdm_errf(err, TDM_ERR_NOMEM, "out of memory creating graph");
    g->opset = 1;
    *out = g;
    return TDM_OK;
}

static bool index_insert(int32_t *index, uint32_t cap, const tdm_value *values, int32_t id)
{
    uint32_t m = cap - 1, h = hash_str(values[id].name) & m;
    while (index[h] >= 0)
        h = (h + 1) & m;
    index[h] = id;
    return true;
}

static bool index_grow(tdm_graph *g)
{
    uint32_t cap = g->index_cap ? g->index_cap * 2 : 64;
    int32_t *idx = malloc(sizeof *idx * cap);
    if (idx == NULL)
        return false;
    for (uint32_t i = 0; i < cap; i++)
        idx[i] = -1;
    for (int32_t v = 0; v < g->n_values; v++)
        index_insert(idx, cap, g->values, v);
    free(g->index);
    g->index = idx;
    g->index_cap = cap;
    return true;
}

int32_t tdm_graph_find(const tdm_graph *g, const char *name)
{
    if (g->index_cap == 0)
        return -1;
    uint32_t m = g->index_cap - 1, h = hash_str(name) & m;
    while (g->index[h] >= 0) {
        if (strcmp(g->values[g->index[h]].name, name) == 0)
            return g->index[h];
        h = (h + 1) & m;
    }
    return -1;
}

static int32_t add_value(tdm_graph *g, const char *name)
{
    if ((uint32_t)(g->n_values + 1) * 2 > g->index_cap && !index_grow(g))
        return -1;
    if (g->n_values == g->cap_values) {
        int32_t cap = g->cap_values ? g->cap_values * 2 : 64;
        tdm_value *v = realloc(g->values, sizeof *v * (size_t)cap);
        if (v == NULL)
            return -1;
        g->values = v;
        g->cap_values = cap;
    }
    tdm_value *v = &g->values[g->n_values];
    memset(v, 0, sizeof *v);
    v->name = tdm_strdup(name);
    if (v->name == NULL)
        return -1;
    v->ndim = -1;
    v->producer = -1;
    int32_t id = g->n_values++;
    index_insert(g->index, g->index_cap, g->values, id);
    return id;
}

int32_t tdm_graph_intern(tdm_graph *g, const char *name)
{
    int32_t id = tdm_graph_find(g, name);
    return id >= 0 ? id : add_value(g, name);
}

int32_t tdm_graph_new_value(tdm_graph *g, const char *hint)
{
    char buf[256];
    for (int k = 0;; k++) {
        snprintf(buf, sizeof buf, "%.200s/tdm%d", hint, k);
        if (tdm_graph_find(g, buf) < 0)
            return add_value(g, buf);
    }
}

int32_t tdm_graph_add_node(tdm_graph *g, const char *op_type, const char *domain, const char *name,
                           int n_in, int n_out)
{
    if (g->n_nodes == g->cap_nodes) {
        int32_t cap = g->cap_nodes ? g->cap_nodes * 2 : 64;
        tdm_node *nn = realloc(g->nodes, sizeof *nn * (size_t)cap);
        if (nn == NULL)
            return -1;
        g->nodes = nn;
        g->cap_nodes = cap;
    }
    tdm_node *n = &g->nodes[g->n_nodes];
    memset(n, 0, sizeof *n);
    n->op_type = tdm_strdup(op_type);
    n->domain = tdm_strdup(domain ? domain : "");
    n->name = tdm_strdup(name ? name : "");
    n->in = malloc(sizeof *n->in * (size_t)(n_in > 0 ? n_in : 1));
    n->out = malloc(sizeof *n->out * (size_t)(n_out > 0 ? n_out : 1));
    if (!n->op_type || !n->domain || !n->name || !n->in || !n->out) {
        tdm_node_clear(n);
        return -1;
    }
    n->n_in = n_in;
    n->n_out = n_out;
    for (int i = 0; i < n_in; i++)
        n->in[i] = -1;
    for (int i = 0; i < n_out; i++)
        n->out[i] = -1;
    n->opset = (int)g->opset;
    return g->n_nodes++;
}

tdm_attr *tdm_node_add_attr(tdm_node *n, const char *name, tdm_attr_type type)
{
    tdm_attr *a = realloc(n->attrs, sizeof *a * (size_t)(n->n_attr + 1));
    if (a == NULL)
        return NULL;
    n->attrs = a;
    tdm_attr *at = &a[n->n_attr];
    memset(at, 0, sizeof *at);
    at->name = tdm_strdup(name);
    if (at->name == NULL)
        return NULL;
    at->type = type;
    n->n_attr++;
    return at;
}

static void attr_free(tdm_attr *a)
{
    free(a->name);
    free(a->s);
    free(a->floats);
    free(a->ints);
    if (a->strings != NULL)
        for (int64_t i = 0; i < a->n; i++)
            free(a->strings[i]);
    free(a->strings);
    tdm_tensor_free(&a->t);
}

void tdm_node_clear(tdm_node *n)
{
    free(n->name);
    free(n->op_type);
    free(n->domain);
    free(n->in);
    free(n->out);
    for (int i = 0; i < n->n_attr; i++)
        attr_free(&n->attrs[i]);
    free(n->attrs);
    memset(n, 0, sizeof *n);
}

void tdm_graph_free(tdm_graph *g)
{
    if (g == NULL)
        return;
    for (int32_t i = 0; i < g->n_nodes; i++)
        tdm_node_clear(&g->nodes[i]);
    free(g->nodes);
    for (int32_t i = 0; i < g->n_values; i++) {
        tdm_value *v = &g->values[i];
        free(v->name);
        for (int d = 0; d < TDM_MAX_DIMS; d++)
            free(v->dim_param[d]);
        tdm_tensor_free(&v->cval);
    }
    free(g->values);
    free(g->inputs);
    free(g->outputs);
    free(g->producer);
    free(g->index);
    if (g->image != NULL) {
        if (g->image_mapped)
            munmap(g->image, g->image_len);
        else
            free(g->image);
    }
    free(g);
}

tdm_status tdm_graph_compact(tdm_graph *g, tdm_err *err)
{
    (void)err;
    int32_t w = 0;
    for (int32_t i = 0; i < g->n_nodes; i++) {
        if (g->nodes[i].op_type == NULL)
            continue;
        if (w != i)
            g->nodes[w] = g->nodes[i];
        w++;
    }
    g->n_nodes = w;
    for (int32_t v = 0; v < g->n_values; v++)
        g->values[v].producer = -1;
    for (int32_t i = 0; i < g->n_nodes; i++)
        for (int o = 0; o < g->nodes[i].n_out; o++)
            if (g->nodes[i].out[o] >= 0)
                g->values[g->nodes[i].out[o]].producer = i;
    return TDM_OK;
}

tdm_status tdm_graph_validate(const tdm_graph *g, tdm_err *err)
{
    char *defined = calloc((size_t)g->n_values + 1, 1);
    if (defined == NULL)
        return tdm_errf(err, TDM_ERR_NOMEM, "out of memory validating graph");
    for (int32_t v = 0; v < g->n_values; v++)
        defined[v] = g->values[v].is_input || g->values[v].is_const;
    tdm_status s = TDM_OK;
    for (int32_t i = 0; i < g->n_nodes && s == TDM_OK; i++) {
        const tdm_node *n = &g->nodes[i];
        for (int k = 0; k < n->n_in; k++) {
            int32_t v = n->in[k];
            if (v >= 0 && !defined[v]) {
                s = tdm_errf(err, TDM_ERR_PARSE,
                             "node %d (%s '%s'): input '%s' is not produced by an earlier node, "
                             "an initializer or a graph input",
                             i, n->op_type, n->name, g->values[v].name);
                break;
            }
        }
        for (int k = 0; k < n->n_out && s == TDM_OK; k++) {
            int32_t v = n->out[k];
            if (v < 0)
                continue;
            if (defined[v])
                s = tdm_errf(err, TDM_ERR_PARSE, "node %d (%s '%s'): output '%s' is defined twice",
                             i, n->op_type, n->name, g->values[v].name);
            defined[v] = 1;
        }
    }
    for (int32_t k = 0; k < g->n_outputs && s == TDM_OK; k++)
        if (!defined[g->outputs[k]])
            s = tdm_errf(err, TDM_ERR_PARSE, "graph output '%s' is never produced",
                         g->values[g->outputs[k]].name);
    free(defined);
    return s;
}

const tdm_attr *tdm_node_attr(const tdm_node *n, const char *name)
{
    for (int i = 0; i < n->n_attr; i++)
        if (strcmp(n->attrs[i].name, name) == 0)
            return &n->attrs[i];
    return NULL;
}

int64_t tdm_attr_int(const tdm_node *n, const char *name, int64_t def)
{
    const tdm_attr *a = tdm_node_attr(n, name);
    return a != NULL && a->type == TDM_ATTR_INT ? a->i : def;
}

float tdm_attr_float(const tdm_node *n, const char *name, float def)
{
    const tdm_attr *a = tdm_node_attr(n, name);
    if (a == NULL)
        return def;
    if (a->type == TDM_ATTR_FLOAT)
        return a->f;
    if (a->type == TDM_ATTR_INT)
        return (float)a->i;
    return def;
}

const char *tdm_attr_str(const tdm_node *n, const char *name, const char *def)
{
    const tdm_attr *a = tdm_node_attr(n, name);
    return a != NULL && a->type == TDM_ATTR_STRING ? a->s : def;
}

const int64_t *tdm_attr_ints(const tdm_node *n, const char *name, int64_t *count)
{
    const tdm_attr *a = tdm_node_attr(n, name);
    if (a == NULL || a->type != TDM_ATTR_INTS) {
        *count = 0;
        return NULL;
    }
    *count = a->n;
    return a->ints;
}

const float *tdm_attr_floats(const tdm_node *n, const char *name, int64_t *count)
{
    const tdm_attr *a = tdm_node_attr(n, name);
    if (a == NULL || a->type != TDM_ATTR_FLOATS) {
        *count = 0;
        return NULL;
    }
    *count = a->n;
    return a->floats;
}

const tdm_tensor *tdm_attr_tensor(const tdm_node *n, const char *name)
{
    const tdm_attr *a = tdm_node_attr(n, name);
    return a != NULL && a->type == TDM_ATTR_TENSOR ? &a->t : NULL;
}

int32_t *tdm_graph_use_counts(const tdm_graph *g)
{
    int32_t *c = calloc((size_t)g->n_values + 1, sizeof *c);
    if (c == NULL)
        return NULL;
    for (int32_t i = 0; i < g->n_nodes; i++) {
        const tdm_node *n = &g->nodes[i];
        if (n->op_type == NULL)
            continue;
        for (int k = 0; k < n->n_in; k++)
            if (n->in[k] >= 0)
                c[n->in[k]]++;
    }
    for (int32_t k = 0; k < g->n_outputs; k++)
        c[g->outputs[k]]++;
    return c;
}

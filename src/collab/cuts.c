/*
 * Cut enumeration (see include/tandem/split.h for what a cut is and why cuts
 * are taken on the optimised graph).
 *
 * One probe run of the executor gives every tensor's shape (collab/flops.h);
 * a second one at batch + 1, only when the inputs have a symbolic batch dim,
 * tells which dims follow the batch, so that split files keep them symbolic
 * instead of freezing the probe's batch size. Frontiers come from one sweep
 * over the topological order with each value's last reader precomputed, which
 * is O(nodes x values) and instant for any model this project runs.
 */
#include "collab/cuts.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "collab/flops.h"

static bool is_float(tdm_dtype dt)
{
    return dt == TDM_DTYPE_FLOAT32 || dt == TDM_DTYPE_FLOAT16 || dt == TDM_DTYPE_BFLOAT16 ||
           dt == TDM_DTYPE_FLOAT64;
}

void tdm_cut_bytes(const tdm_cut *c, uint64_t *fp32, uint64_t *int8)
{
    uint64_t a = 0, b = 0;
    for (int i = 0; i < c->n; i++) {
        const tdm_cut_tensor *t = &c->t[i];
        uint64_t n = 1;
        for (int d = 0; d < t->ndim; d++)
            n *= (uint64_t)t->dims[d];
        if (is_float(t->dtype)) {
            a += 4 * n;
            b += n;
        } else {
            a += n * tdm_dtype_size(t->dtype);
            b += n * tdm_dtype_size(t->dtype);
        }
    }
    *fp32 = a;
    *int8 = b;
}

bool tdm_cut_tensor_copy(tdm_cut_tensor *dst, const tdm_cut_tensor *src)
{
    *dst = *src;
    dst->name = tdm_strdup(src->name);
    return dst->name != NULL;
}

void tdm_cut_clear(tdm_cut *c)
{
    if (c == NULL)
        return;
    for (int i = 0; i < c->n; i++)
        free(c->t[i].name);
    free(c->t);
    memset(c, 0, sizeof *c);
}

void tdm_cut_list_free(tdm_cut_list *l)
{
    if (l == NULL)
        return;
    for (int i = 0; i < l->n; i++)
        tdm_cut_clear(&l->cuts[i]);
    free(l->cuts);
    if (l->all != NULL && l->graph != NULL)
        for (int32_t v = 0; v < l->graph->n_values; v++)
            free(l->all[v].name);
    free(l->all);
    for (int i = 0; l->inputs != NULL && i < l->n_inputs; i++)
        free(l->inputs[i].name);
    for (int i = 0; l->outputs != NULL && i < l->n_outputs; i++)
        free(l->outputs[i].name);
    free(l->inputs);
    free(l->outputs);
    free(l->node_flops);
    free(l->batch_param_buf);
    free(l);
}

void tdm_cut_tensor_info(const tdm_cut_list *l, const tdm_cut_tensor *t, tdm_value_info *vi)
{
    memset(vi, 0, sizeof *vi);
    vi->name = t->name;
    vi->dtype = t->dtype;
    vi->ndim = t->ndim;
    for (int d = 0; d < t->ndim; d++) {
        vi->dims[d] = t->dims[d];
        if (t->batch_dims & (1u << d)) {
            vi->dims[d] = -1;
            vi->dim_names[d] = l->batch_param;
        } else if (t->varying_dims & (1u << d)) {
            vi->dims[d] = -1;
        }
    }
}

tdm_status tdm_cut_check(const tdm_graph *g, int n, const char *const *names, tdm_err *err)
{
    return tdm_cut_separates(g, n, names, NULL, err);
}

tdm_status tdm_cut_separates(const tdm_graph *g, int n, const char *const *names,
                             bool *inputs_needed, tdm_err *err)
{
    uint8_t *role = calloc((size_t)g->n_values + 1, 1); /* 1 given, 2 needed */
    bool *run = calloc((size_t)g->n_nodes + 1, sizeof *run);
    tdm_status st = TDM_OK;
    if (role == NULL || run == NULL) {
        st = tdm_errf(err, TDM_ERR_NOMEM, "out of memory checking a cut");
        goto done;
    }
    for (int i = 0; i < n && st == TDM_OK; i++) {
        int32_t v = tdm_graph_find(g, names[i]);
        if (v < 0)
            st = tdm_errf(err, TDM_ERR_NOT_FOUND, "no tensor named '%s' in the model", names[i]);
        else if (g->values[v].is_const)
            st = tdm_errf(err, TDM_ERR_INVALID_ARG, "'%s' is a constant, not a cut tensor",
                          names[i]);
        else
            role[v] = 1;
    }
    if (st != TDM_OK)
        goto done;
    for (int32_t k = 0; k < g->n_outputs; k++)
        if (role[g->outputs[k]] == 0)
            role[g->outputs[k]] = 2;
    for (int32_t i = g->n_nodes - 1; i >= 0; i--) {
        const tdm_node *nd = &g->nodes[i];
        bool want = false;
        for (int k = 0; k < nd->n_out && !want; k++)
            want = nd->out[k] >= 0 && role[nd->out[k]] == 2;
        if (!want)
            continue;
        run[i] = true;
        for (int k = 0; k < nd->n_in; k++)
            if (nd->in[k] >= 0 && role[nd->in[k]] == 0)
                role[nd->in[k]] = 2;
    }
    int32_t bad = -1;
    for (int32_t v = 0; v < g->n_values && bad < 0; v++) {
        if (role[v] != 2 || g->values[v].is_const)
            continue;
        int32_t p = g->values[v].producer;
        if (p >= 0 && run[p])
            continue;
        if (inputs_needed != NULL && g->values[v].is_input) {
            for (int32_t k = 0; k < g->n_inputs; k++)
                if (g->inputs[k] == v)
                    inputs_needed[k] = true;
            continue;
        }
        bad = v;
    }
    if (bad >= 0) {
        /* Name the tensor that crosses the cut rather than the graph input the walk ended at:
         * an input, not computable from the cut tensors, of a node that also reads something
         * that is (the Add at the end of a skip connection). */
        bool *known = calloc((size_t)g->n_values + 1, sizeof *known);
        int32_t cross = -1;
        if (known != NULL) {
            for (int32_t v = 0; v < g->n_values; v++)
                known[v] = role[v] == 1;
            for (int32_t i = 0; i < g->n_nodes && cross < 0; i++) {
                const tdm_node *nd = &g->nodes[i];
                bool any = false, all = true;
                int32_t missing = -1;
                for (int k = 0; k < nd->n_in; k++) {
                    int32_t v = nd->in[k];
                    if (v < 0 || g->values[v].is_const)
                        continue;
                    if (known[v])
                        any = true;
                    else {
                        all = false;
                        missing = v;
                    }
                }
                if (all) /* also nodes without variable inputs (Constant) */
                    for (int k = 0; k < nd->n_out; k++)
                        if (nd->out[k] >= 0)
                            known[nd->out[k]] = true;
                if (any && !all && run[i])
                    cross = missing;
            }
            free(known);
        }
        if (cross >= 0 && cross != bad)
            st = tdm_errf(err, TDM_ERR_INVALID_ARG,
                          "the tensors do not separate the model: the rest also needs '%s' "
                          "(add it to the cut)",
                          g->values[cross].name);
        else
            st = tdm_errf(err, TDM_ERR_INVALID_ARG,
                          "the tensors do not separate the model: the rest still needs '%s'%s",
                          g->values[bad].name,
                          g->values[bad].is_input ? " (a graph input: add it to the cut)" : "");
    }
done:
    free(role);
    free(run);
    return st;
}

/* Input shapes for the probe: given ones by name, declared otherwise (symbolic dims 1). */
static tdm_status input_shapes(const tdm_graph *g, const tdm_cut_options *opt, tdm_tensor *in,
                               tdm_err *err)
{
    int ns = opt != NULL ? opt->n_shapes : 0;
    for (int k = 0; k < ns; k++) {
        int32_t v = tdm_graph_find(g, opt->shape_names[k]);
        if (v < 0 || !g->values[v].is_input)
            return tdm_errf(err, TDM_ERR_NOT_FOUND, "the model has no input named '%s'",
                            opt->shape_names[k]);
    }
    for (int32_t i = 0; i < g->n_inputs; i++) {
        const tdm_value *v = &g->values[g->inputs[i]];
        tdm_tensor *t = &in[i];
        memset(t, 0, sizeof *t);
        t->dtype = v->dtype == TDM_DTYPE_UNDEFINED ? TDM_DTYPE_FLOAT32 : v->dtype;
        t->ndim = v->ndim < 0 ? 0 : v->ndim;
        for (int d = 0; d < t->ndim; d++)
            t->dims[d] = v->dims[d] < 0 ? 1 : v->dims[d];
        for (int k = 0; k < ns; k++) {
            if (strcmp(opt->shape_names[k], v->name) != 0)
                continue;
            const tdm_tensor *s = &opt->shapes[k];
            if (v->ndim >= 0 && s->ndim != v->ndim)
                return tdm_errf(err, TDM_ERR_SHAPE,
                                "input '%s': the model declares rank %d, got %d", v->name, v->ndim,
                                s->ndim);
            for (int d = 0; d < s->ndim; d++)
                if (s->dims[d] < 0 || (v->ndim >= 0 && v->dims[d] >= 0 && v->dims[d] != s->dims[d]))
                    return tdm_errf(err, TDM_ERR_SHAPE, "input '%s': dim %d must be %lld, got %lld",
                                    v->name, d, (long long)v->dims[d], (long long)s->dims[d]);
            t->ndim = s->ndim;
            memcpy(t->dims, s->dims, sizeof t->dims);
        }
    }
    return TDM_OK;
}

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return x < y ? -1 : x > y;
}

static bool same_set(const int32_t *a, int na, const int32_t *b, int nb)
{
    if (na != nb)
        return false;
    for (int i = 0; i < na; i++)
        if (a[i] != b[i]) /* both sorted by value id */
            return false;
    return true;
}

static tdm_status make_cut(const tdm_cut_list *l, const int32_t *ids, int n, tdm_cut *c)
{
    memset(c, 0, sizeof *c);
    c->t = calloc((size_t)n + 1, sizeof *c->t);
    if (c->t == NULL)
        return TDM_ERR_NOMEM;
    for (int k = 0; k < n; k++) {
        if (!tdm_cut_tensor_copy(&c->t[k], &l->all[ids[k]])) {
            tdm_cut_clear(c);
            return TDM_ERR_NOMEM;
        }
        c->n = k + 1;
    }
    tdm_cut_bytes(c, &c->bytes_fp32, &c->bytes_int8);
    return TDM_OK;
}

tdm_status tdm_cuts_find(const tdm_graph *g, const tdm_cut_options *opt, tdm_cut_list **out,
                         tdm_err *err)
{
    *out = NULL;
    int32_t nv = g->n_values, nn = g->n_nodes;
    tdm_cut_list *l = calloc(1, sizeof *l);
    tdm_tensor *in = calloc((size_t)g->n_inputs + 1, sizeof *in);
    tdm_tensor *s1 = calloc((size_t)nv + 1, sizeof *s1);
    tdm_tensor *s2 = NULL;
    const char **in_names = calloc((size_t)g->n_inputs + 1, sizeof *in_names);
    int32_t *last_use = malloc(sizeof *last_use * ((size_t)nv + 1));
    int32_t *ids = malloc(sizeof *ids * ((size_t)nv + 1));
    int32_t *prev = malloc(sizeof *prev * ((size_t)nv + 1));
    const char **names = calloc((size_t)nv + 1, sizeof *names);
    bool *need_in_orig = NULL;
    tdm_status st = TDM_OK;
    if (l == NULL || in == NULL || s1 == NULL || in_names == NULL || last_use == NULL ||
        ids == NULL || prev == NULL || names == NULL)
        goto nomem;
    if (opt != NULL && opt->original != NULL) {
        need_in_orig = calloc((size_t)opt->original->n_inputs + 1, sizeof *need_in_orig);
        if (need_in_orig == NULL)
            goto nomem;
    }
    l->graph = g;
    l->all = calloc((size_t)nv + 1, sizeof *l->all);
    l->node_flops = calloc((size_t)nn + 1, sizeof *l->node_flops);
    l->inputs = calloc((size_t)g->n_inputs + 1, sizeof *l->inputs);
    l->outputs = calloc((size_t)g->n_outputs + 1, sizeof *l->outputs);
    if (l->all == NULL || l->node_flops == NULL || l->inputs == NULL || l->outputs == NULL)
        goto nomem;

    st = input_shapes(g, opt, in, err);
    if (st != TDM_OK)
        goto fail;
    for (int32_t i = 0; i < g->n_inputs; i++)
        in_names[i] = g->values[g->inputs[i]].name;
    st = tdm_graph_probe_shapes(g, NULL, g->n_inputs, in_names, in, s1, err);
    if (st != TDM_OK)
        goto fail;

    /* Symbolic input dims: probe again with the batch + 1 and every other symbolic dim + 2
     * to see which dims follow the batch and which vary otherwise (a sequence length). */
    int64_t batch = -1;
    bool symbolic = false;
    const char *bname = NULL;
    for (int32_t i = 0; i < g->n_inputs; i++) {
        const tdm_value *v = &g->values[g->inputs[i]];
        if (v->ndim >= 1 && v->dims[0] < 0 && batch < 0) {
            batch = in[i].dims[0];
            bname = v->dim_param[0];
        }
        for (int d = 0; d < v->ndim; d++)
            if (v->dims[d] < 0) {
                in[i].dims[d] += d == 0 ? 1 : 2;
                symbolic = true;
            }
    }
    l->batch_param_buf = tdm_strdup(bname != NULL && bname[0] != '\0' ? bname : "batch");
    if (l->batch_param_buf == NULL)
        goto nomem;
    l->batch_param = l->batch_param_buf;
    if (symbolic) {
        s2 = calloc((size_t)nv + 1, sizeof *s2);
        if (s2 == NULL)
            goto nomem;
        st = tdm_graph_probe_shapes(g, NULL, g->n_inputs, in_names, in, s2, err);
        if (st != TDM_OK)
            goto fail;
    }
    for (int32_t v = 0; v < nv; v++) {
        if (g->values[v].is_const || s1[v].ndim < 0)
            continue;
        tdm_cut_tensor *t = &l->all[v];
        t->name = tdm_strdup(g->values[v].name);
        if (t->name == NULL)
            goto nomem;
        t->dtype = s1[v].dtype;
        t->ndim = s1[v].ndim;
        memcpy(t->dims, s1[v].dims, sizeof t->dims);
        t->is_input = g->values[v].is_input;
        if (s2 != NULL && s2[v].ndim == s1[v].ndim)
            for (int d = 0; d < t->ndim && d < 32; d++) {
                if (s1[v].dims[d] == s2[v].dims[d])
                    continue;
                if (batch >= 0 && s1[v].dims[d] == batch && s2[v].dims[d] == batch + 1)
                    t->batch_dims |= 1u << d;
                else
                    t->varying_dims |= 1u << d;
            }
    }
    for (int32_t i = 0; i < g->n_inputs; i++)
        if (!tdm_cut_tensor_copy(&l->inputs[l->n_inputs++], &l->all[g->inputs[i]]))
            goto nomem;
    for (int32_t i = 0; i < g->n_outputs; i++) {
        if (l->all[g->outputs[i]].name == NULL) {
            st = tdm_errf(err, TDM_ERR_INTERNAL, "output '%s' was not computed by the probe",
                          g->values[g->outputs[i]].name);
            goto fail;
        }
        if (!tdm_cut_tensor_copy(&l->outputs[l->n_outputs++], &l->all[g->outputs[i]]))
            goto nomem;
    }
    tdm_flops_from_shapes(g, s1, l->node_flops);
    l->flops_total = tdm_flops_prefix(l->node_flops, nn);

    /* Last reader of every value. */
    for (int32_t v = 0; v < nv; v++)
        last_use[v] = -1;
    for (int32_t i = 0; i < nn; i++)
        for (int k = 0; k < g->nodes[i].n_in; k++)
            if (g->nodes[i].in[k] >= 0)
                last_use[g->nodes[i].in[k]] = i;

    int n_prev = -1;
    double before = 0;
    for (int32_t i = 0; i + 1 < nn; i++) {
        before += l->node_flops[i];
        int n = 0;
        bool only_inputs = true;
        for (int32_t v = 0; v < nv; v++) {
            const tdm_value *val = &g->values[v];
            if (val->is_const)
                continue;
            bool made = val->is_input || (val->producer >= 0 && val->producer <= i);
            bool later = last_use[v] > i || val->is_output;
            if (made && later) {
                ids[n++] = v;
                only_inputs = only_inputs && val->is_input;
            }
        }
        if (n == 0 || only_inputs || same_set(ids, n, prev, n_prev))
            continue;
        memcpy(prev, ids, sizeof *ids * (size_t)n);
        n_prev = n;
        bool ok = true;
        for (int k = 0; k < n; k++) {
            names[k] = g->values[ids[k]].name;
            ok = ok && l->all[ids[k]].name != NULL;
        }
        if (!ok)
            continue;
        if (opt != NULL && opt->original != NULL) {
            /* The original graph may read graph inputs where the optimised one folded the use
             * away (Shape(input_ids) feeding the Reshapes of an unfused attention): those
             * inputs join the cut, as the edge has them anyway. */
            tdm_err scratch;
            if (tdm_cut_separates(opt->original, n, names, need_in_orig, &scratch) != TDM_OK)
                continue; /* fused or renamed away in the original: not a boundary there */
            for (int32_t k = 0; k < opt->original->n_inputs; k++) {
                if (!need_in_orig[k])
                    continue;
                int32_t v = tdm_graph_find(g, opt->original->values[opt->original->inputs[k]].name);
                if (v < 0 || !g->values[v].is_input) {
                    ok = false;
                    break;
                }
                ids[n++] = v;
            }
            memset(need_in_orig, 0, sizeof *need_in_orig * ((size_t)opt->original->n_inputs + 1));
            if (!ok)
                continue;
            qsort(ids, (size_t)n, sizeof *ids, cmp_i32);
        }
        bool dup = false;
        for (int c = 0; c < l->n && !dup; c++) {
            if (l->cuts[c].n != n)
                continue;
            dup = true;
            for (int k = 0; k < n && dup; k++)
                dup = strcmp(l->cuts[c].t[k].name, g->values[ids[k]].name) == 0;
        }
        if (dup)
            continue;
        tdm_cut *nc = realloc(l->cuts, sizeof *nc * (size_t)(l->n + 1));
        if (nc == NULL)
            goto nomem;
        l->cuts = nc;
        if (make_cut(l, ids, n, &l->cuts[l->n]) != TDM_OK)
            goto nomem;
        l->cuts[l->n].after_node = i;
        l->cuts[l->n].flops_before = before;
        l->cuts[l->n].flops_after = l->flops_total - before;
        l->n++;
    }
    goto done;

nomem:
    st = tdm_errf(err, TDM_ERR_NOMEM, "out of memory enumerating cuts");
fail:
    tdm_cut_list_free(l);
    l = NULL;
done:
    free(in);
    free(s1);
    free(s2);
    free(in_names);
    free(last_use);
    free(ids);
    free(prev);
    free(names);
    free(need_in_orig);
    *out = l;
    return st;
}

static bool all_digits(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return false;
    return true;
}

tdm_status tdm_cut_resolve(const tdm_cut_list *l, const tdm_graph *original, const char *spec,
                           tdm_cut *out, int *index, tdm_err *err)
{
    memset(out, 0, sizeof *out);
    *index = -1;
    const tdm_graph *g = l->graph;
    if (all_digits(spec)) {
        char *end;
        long k = strtol(spec, &end, 10);
        if (l->n == 0)
            return tdm_errf(err, TDM_ERR_INVALID_ARG, "cut %s: the model has no cut points", spec);
        if (*end != '\0' || k < 0 || k >= l->n)
            return tdm_errf(err, TDM_ERR_INVALID_ARG,
                            "cut %s: no such cut (the model has cuts 0..%d; a tensor named '%s' "
                            "is written '%s,')",
                            spec, l->n - 1, spec, spec);
        *index = (int)k;
        *out = l->cuts[k];
        out->t = calloc((size_t)l->cuts[k].n + 1, sizeof *out->t);
        out->n = 0;
        if (out->t == NULL)
            return tdm_errf(err, TDM_ERR_NOMEM, "out of memory");
        for (int i = 0; i < l->cuts[k].n; i++) {
            if (!tdm_cut_tensor_copy(&out->t[i], &l->cuts[k].t[i])) {
                tdm_cut_clear(out);
                return tdm_errf(err, TDM_ERR_NOMEM, "out of memory");
            }
            out->n = i + 1;
        }
        return TDM_OK;
    }
    char *copy = tdm_strdup(spec);
    int32_t *ids = malloc(sizeof *ids * (strlen(spec) + 1));
    const char **names = malloc(sizeof *names * (strlen(spec) + 1));
    tdm_status st = TDM_OK;
    int n = 0;
    if (copy == NULL || ids == NULL || names == NULL) {
        st = tdm_errf(err, TDM_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (char *tok = copy, *next; tok != NULL && st == TDM_OK; tok = next) {
        next = strchr(tok, ',');
        if (next != NULL)
            *next++ = '\0';
        if (*tok == '\0')
            continue;
        int32_t v = tdm_graph_find(g, tok);
        if (v < 0)
            st = tdm_errf(err, TDM_ERR_NOT_FOUND,
                          "cut: no tensor named '%s' in the optimised model (fused tensors "
                          "cannot be cut; see 'tandem inspect')",
                          tok);
        else if (g->values[v].is_const || l->all[v].name == NULL)
            st = tdm_errf(err, TDM_ERR_INVALID_ARG, "cut: '%s' is a constant, not a cut tensor",
                          tok);
        for (int k = 0; k < n && st == TDM_OK; k++)
            if (ids[k] == v)
                st = tdm_errf(err, TDM_ERR_INVALID_ARG, "cut: '%s' is named twice", tok);
        if (st == TDM_OK)
            ids[n++] = v;
    }
    if (st == TDM_OK && n == 0)
        st = tdm_errf(err, TDM_ERR_INVALID_ARG, "cut: '%s' names no tensor", spec);
    if (st != TDM_OK)
        goto done;
    qsort(ids, (size_t)n, sizeof *ids, cmp_i32);
    for (int c = 0; c < l->n; c++) {
        bool same = l->cuts[c].n == n;
        for (int k = 0; k < n && same; k++)
            same = strcmp(l->cuts[c].t[k].name, g->values[ids[k]].name) == 0;
        if (same) {
            free(copy);
            free(ids);
            free(names);
            char num[16];
            snprintf(num, sizeof num, "%d", c);
            return tdm_cut_resolve(l, original, num, out, index, err);
        }
    }
    for (int k = 0; k < n; k++)
        names[k] = g->values[ids[k]].name;
    st = tdm_cut_check(g, n, names, err);
    if (st == TDM_OK && original != NULL) {
        st = tdm_cut_check(original, n, names, err);
        if (st != TDM_OK)
            tdm_err_prefix(err, "in the original (unoptimised) graph");
    }
    if (st != TDM_OK)
        goto done;
    double before = 0;
    st = tdm_flops_until(g, l->node_flops, n, names, &before, err);
    if (st == TDM_OK && make_cut(l, ids, n, out) != TDM_OK)
        st = tdm_errf(err, TDM_ERR_NOMEM, "out of memory");
    if (st == TDM_OK) {
        out->after_node = -1;
        out->flops_before = before;
        out->flops_after = l->flops_total - before;
    }
done:
    free(copy);
    free(ids);
    free(names);
    return st;
}

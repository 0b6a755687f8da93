/*
 * ONNX ModelProto writer for sub-graphs (see onnx_writer.h for what is kept).
 *
 * Protobuf nests messages behind a length prefix, so each message is built in
 * its own growable buffer and then appended to its parent as one
 * length-delimited field; the models this writes are the size of their
 * weights, and one extra copy of a tensor while it is appended is the price
 * of not computing sizes in a first pass. Repeated scalars are written
 * unpacked, which proto2 (ONNX's syntax) readers expect and every reader
 * accepts. Out-of-memory is sticky: builders set a flag and the top level
 * reports it once, so the emit code has no error path per field.
 */
#include "engine/onnx/onnx_writer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    W_VARINT = 0,
    W_FIXED32 = 5,
    W_LEN = 2,
};

enum {
    M_IR_VERSION = 1,
    M_PRODUCER = 2,
    M_PRODUCER_VERSION = 3,
    M_GRAPH = 7,
    M_OPSET = 8,
    OP_DOMAIN = 1,
    OP_VERSION = 2,
    G_NODE = 1,
    G_NAME = 2,
    G_INIT = 5,
    G_INPUT = 11,
    G_OUTPUT = 12,
    N_INPUT = 1,
    N_OUTPUT = 2,
    N_NAME = 3,
    N_OP = 4,
    N_ATTR = 5,
    N_DOMAIN = 7,
    A_NAME = 1,
    A_F = 2,
    A_I = 3,
    A_S = 4,
    A_T = 5,
    A_FLOATS = 7,
    A_INTS = 8,
    A_STRINGS = 9,
    A_TYPE = 20,
    T_DIMS = 1,
    T_TYPE = 2,
    T_NAME = 8,
    T_RAW = 9,
    VI_NAME = 1,
    VI_TYPE = 2,
    TY_TENSOR = 1,
    TT_ELEM = 1,
    TT_SHAPE = 2,
    SH_DIM = 1,
    D_VALUE = 1,
    D_PARAM = 2,
};

typedef struct wbuf {
    uint8_t *p;
    size_t n, cap;
    bool oom;
} wbuf;

static void wb_free(wbuf *w)
{
    free(w->p);
    memset(w, 0, sizeof *w);
}

static void wb_raw(wbuf *w, const void *data, size_t len)
{
    if (w->oom || len == 0)
        return;
    if (len > SIZE_MAX / 2 - w->n) {
        w->oom = true;
        return;
    }
    if (w->n + len > w->cap) {
        size_t cap = w->cap ? w->cap : 256;
        while (cap < w->n + len)
            cap *= 2;
        uint8_t *p = realloc(w->p, cap);
        if (p == NULL) {
            w->oom = true;
            return;
        }
        w->p = p;
        w->cap = cap;
    }
    memcpy(w->p + w->n, data, len);
    w->n += len;
}

static void wb_varint(wbuf *w, uint64_t v)
{
    uint8_t b[10];
    size_t n = 0;
    do {
        b[n] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v != 0)
            b[n] |= 0x80;
        n++;
    } while (v != 0);
    wb_raw(w, b, n);
}

static void wb_tag(wbuf *w, uint32_t field, int wire)
{
    wb_varint(w, ((uint64_t)field << 3) | (uint64_t)wire);
}

static void wb_uint(wbuf *w, uint32_t field, uint64_t v)
{
    wb_tag(w, field, W_VARINT);
    wb_varint(w, v);
}

static void wb_bytes(wbuf *w, uint32_t field, const void *data, size_t len)
{
    wb_tag(w, field, W_LEN);
    wb_varint(w, len);
    wb_raw(w, data, len);
}

static void wb_str(wbuf *w, uint32_t field, const char *s)
{
    wb_bytes(w, field, s, strlen(s));
}

static void wb_float(wbuf *w, uint32_t field, float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    uint8_t b[4] = {(uint8_t)u, (uint8_t)(u >> 8), (uint8_t)(u >> 16), (uint8_t)(u >> 24)};
    wb_tag(w, field, W_FIXED32);
    wb_raw(w, b, 4);
}

/* Appends sub as a length-delimited field of w and frees sub. */
static void wb_sub(wbuf *w, uint32_t field, wbuf *sub)
{
    if (sub->oom)
        w->oom = true;
    else
        wb_bytes(w, field, sub->p, sub->n);
    wb_free(sub);
}

static tdm_status emit_tensor(wbuf *w, uint32_t field, const char *name, const tdm_tensor *t,
                              tdm_err *err)
{
    if (tdm_dtype_size(t->dtype) == 0)
        return tdm_errf(err, TDM_ERR_UNSUPPORTED, "tensor '%s': dtype %s cannot be written",
                        name ? name : "", tdm_dtype_name(t->dtype));
    wbuf m = {0};
    for (int d = 0; d < t->ndim; d++)
        wb_uint(&m, T_DIMS, (uint64_t)t->dims[d]);
    wb_uint(&m, T_TYPE, (uint64_t)t->dtype);
    if (name != NULL)
        wb_str(&m, T_NAME, name);
    size_t nb = tdm_tensor_nbytes(t);
    wb_tag(&m, T_RAW, W_LEN);
    wb_varint(&m, nb);
    if (nb > 0)
        wb_raw(&m, t->data, nb); /* raw_data is little-endian: the host order here */
    wb_sub(w, field, &m);
    return TDM_OK;
}

static tdm_status emit_attr(wbuf *w, const tdm_attr *a, tdm_err *err)
{
    wbuf m = {0};
    tdm_status st = TDM_OK;
    wb_str(&m, A_NAME, a->name);
    switch (a->type) {
    case TDM_ATTR_FLOAT: wb_float(&m, A_F, a->f); break;
    case TDM_ATTR_INT: wb_uint(&m, A_I, (uint64_t)a->i); break;
    case TDM_ATTR_STRING: wb_bytes(&m, A_S, a->s, a->s_len); break;
    case TDM_ATTR_TENSOR: st = emit_tensor(&m, A_T, NULL, &a->t, err); break;
    case TDM_ATTR_FLOATS:
        for (int64_t k = 0; k < a->n; k++)
            wb_float(&m, A_FLOATS, a->floats[k]);
        break;
    case TDM_ATTR_INTS:
        for (int64_t k = 0; k < a->n; k++)
            wb_uint(&m, A_INTS, (uint64_t)a->ints[k]);
        break;
    case TDM_ATTR_STRINGS:
        for (int64_t k = 0; k < a->n; k++)
            wb_str(&m, A_STRINGS, a->strings[k]);
        break;
    default:
        st = tdm_errf(err, TDM_ERR_UNSUPPORTED, "attribute '%s' of type %d cannot be written",
                      a->name, (int)a->type);
    }
    wb_uint(&m, A_TYPE, (uint64_t)a->type);
    if (st == TDM_OK)
        wb_sub(w, N_ATTR, &m);
    else
        wb_free(&m);
    return st;
}

static tdm_status emit_node(wbuf *w, const tdm_graph *g, const tdm_node *n, tdm_err *err)
{
    wbuf m = {0};
    tdm_status st = TDM_OK;
    for (int k = 0; k < n->n_in; k++)
        wb_str(&m, N_INPUT, n->in[k] >= 0 ? g->values[n->in[k]].name : "");
    for (int k = 0; k < n->n_out; k++)
        wb_str(&m, N_OUTPUT, n->out[k] >= 0 ? g->values[n->out[k]].name : "");
    if (n->name != NULL && n->name[0] != '\0')
        wb_str(&m, N_NAME, n->name);
    wb_str(&m, N_OP, n->op_type);
    for (int k = 0; k < n->n_attr && st == TDM_OK; k++)
        st = emit_attr(&m, &n->attrs[k], err);
    if (n->domain[0] != '\0')
        wb_str(&m, N_DOMAIN, n->domain);
    if (st != TDM_OK) {
        tdm_err_prefix(err, "node '%s' (%s)", n->name ? n->name : "", n->op_type);
        wb_free(&m);
        return st;
    }
    wb_sub(w, G_NODE, &m);
    return TDM_OK;
}

static tdm_status emit_value_info(wbuf *w, uint32_t field, const tdm_graph *g,
                                  const tdm_value_info *vi, tdm_err *err)
{
    int32_t v = tdm_graph_find(g, vi->name);
    tdm_dtype dt = vi->dtype != TDM_DTYPE_UNDEFINED ? vi->dtype : g->values[v].dtype;
    if (dt == TDM_DTYPE_UNDEFINED)
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "tensor '%s': dtype unknown", vi->name);
    wbuf shape = {0}, tt = {0}, ty = {0}, m = {0};
    if (vi->ndim >= 0) {
        wbuf dim = {0};
        for (int d = 0; d < vi->ndim; d++) {
            if (vi->dims[d] >= 0)
                wb_uint(&dim, D_VALUE, (uint64_t)vi->dims[d]);
            else if (vi->dim_names[d] != NULL)
                wb_str(&dim, D_PARAM, vi->dim_names[d]);
            /* an unnamed unknown dim is an empty Dimension message */
            if (dim.n == 0 && !dim.oom)
                wb_bytes(&shape, SH_DIM, "", 0);
            else
                wb_sub(&shape, SH_DIM, &dim);
        }
    }
    wb_uint(&tt, TT_ELEM, (uint64_t)dt);
    if (vi->ndim >= 0) {
        if (vi->ndim == 0)
            wb_bytes(&tt, TT_SHAPE, "", 0); /* a scalar: a shape with no dims */
        else
            wb_sub(&tt, TT_SHAPE, &shape);
    }
    wb_free(&shape);
    wb_sub(&ty, TY_TENSOR, &tt);
    wb_str(&m, VI_NAME, vi->name);
    wb_sub(&m, VI_TYPE, &ty);
    wb_sub(w, field, &m);
    return TDM_OK;
}

/* Adds (domain, version) to the import list unless the domain is there already. */
static bool add_import(const char ***dom, int64_t **ver, int *n, const char *d, int64_t v)
{
    if (strcmp(d, "ai.onnx") == 0)
        d = "";
    for (int i = 0; i < *n; i++)
        if (strcmp((*dom)[i], d) == 0)
            return true;
    const char **nd = realloc(*dom, sizeof *nd * (size_t)(*n + 1));
    if (nd == NULL)
        return false;
    *dom = nd;
    int64_t *nv = realloc(*ver, sizeof *nv * (size_t)(*n + 1));
    if (nv == NULL)
        return false;
    *ver = nv;
    nd[*n] = d;
    nv[*n] = v;
    (*n)++;
    return true;
}

tdm_status tdm_onnx_write_subgraph(const tdm_graph *g, int n_from, const tdm_value_info *from,
                                   int n_to, const tdm_value_info *to, const char *graph_name,
                                   uint8_t **buf, size_t *len, tdm_err *err)
{
    *buf = NULL;
    *len = 0;
    if (n_to < 1)
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "a sub-model needs at least one output");
    int32_t nv = g->n_values;
    uint8_t *role = calloc((size_t)nv + 1, 1); /* 1 frontier, 2 needed */
    bool *keep = calloc((size_t)g->n_nodes + 1, sizeof *keep);
    const char **dom = NULL;
    int64_t *ver = NULL;
    int n_imp = 0;
    wbuf gr = {0};
    tdm_status st = TDM_OK;
    if (role == NULL || keep == NULL) {
        st = tdm_errf(err, TDM_ERR_NOMEM, "out of memory writing ONNX");
        goto done;
    }
    for (int i = 0; i < n_from + n_to && st == TDM_OK; i++) {
        const char *nm = i < n_from ? from[i].name : to[i - n_from].name;
        int32_t v = tdm_graph_find(g, nm);
        if (v < 0)
            st = tdm_errf(err, TDM_ERR_NOT_FOUND, "no tensor named '%s' in the model", nm);
        else if (i < n_from && g->values[v].is_const)
            st = tdm_errf(err, TDM_ERR_INVALID_ARG,
                          "'%s' is a constant of the model and cannot be a sub-model input", nm);
        else if (i < n_from)
            role[v] = 1;
        else if (role[v] != 1)
            role[v] = 2;
    }
    if (st != TDM_OK)
        goto done;
    for (int32_t i = g->n_nodes - 1; i >= 0; i--) {
        const tdm_node *n = &g->nodes[i];
        bool want = false;
        for (int k = 0; k < n->n_out && !want; k++)
            want = n->out[k] >= 0 && role[n->out[k]] == 2;
        if (!want)
            continue;
        keep[i] = true;
        for (int k = 0; k < n->n_in; k++)
            if (n->in[k] >= 0 && role[n->in[k]] == 0)
                role[n->in[k]] = 2;
    }
    /* Every needed value is given, constant, or made by a kept node. */
    for (int32_t v = 0; v < nv; v++) {
        if (role[v] != 2 || g->values[v].is_const)
            continue;
        int32_t p = g->values[v].producer;
        if (p < 0 || !keep[p]) {
            st = tdm_errf(err, TDM_ERR_INVALID_ARG,
                          "tensor '%s' is needed but not computable from the given inputs%s",
                          g->values[v].name, g->values[v].is_input ? " (a graph input)" : "");
            goto done;
        }
    }

    for (int32_t i = 0; i < g->n_nodes && st == TDM_OK; i++)
        if (keep[i])
            st = emit_node(&gr, g, &g->nodes[i], err);
    if (st == TDM_OK)
        wb_str(&gr, G_NAME, graph_name != NULL ? graph_name : "tandem_subgraph");
    for (int32_t v = 0; v < nv && st == TDM_OK; v++)
        if (role[v] == 2 && g->values[v].is_const)
            st = emit_tensor(&gr, G_INIT, g->values[v].name, &g->values[v].cval, err);
    for (int i = 0; i < n_from && st == TDM_OK; i++)
        st = emit_value_info(&gr, G_INPUT, g, &from[i], err);
    for (int i = 0; i < n_to && st == TDM_OK; i++)
        st = emit_value_info(&gr, G_OUTPUT, g, &to[i], err);
    if (st != TDM_OK)
        goto done;

    bool ok = add_import(&dom, &ver, &n_imp, "", g->opset);
    if (ok && g->opset_ml > 0)
        ok = add_import(&dom, &ver, &n_imp, "ai.onnx.ml", g->opset_ml);
    for (int32_t i = 0; i < g->n_nodes && ok; i++)
        if (keep[i])
            ok = add_import(&dom, &ver, &n_imp, g->nodes[i].domain, g->nodes[i].opset);
    if (!ok) {
        st = tdm_errf(err, TDM_ERR_NOMEM, "out of memory writing ONNX");
        goto done;
    }

    wbuf model = {0};
    /* IR 4 is the first that lets initializers be absent from the inputs. */
    wb_uint(&model, M_IR_VERSION, (uint64_t)(g->ir_version < 4 ? 4 : g->ir_version));
    wb_str(&model, M_PRODUCER, "tandem");
    wb_str(&model, M_PRODUCER_VERSION, "split");
    wb_sub(&model, M_GRAPH, &gr);
    for (int i = 0; i < n_imp; i++) {
        wbuf op = {0};
        if (dom[i][0] != '\0')
            wb_str(&op, OP_DOMAIN, dom[i]);
        wb_uint(&op, OP_VERSION, (uint64_t)ver[i]);
        wb_sub(&model, M_OPSET, &op);
    }
    if (model.oom) {
        wb_free(&model);
        st = tdm_errf(err, TDM_ERR_NOMEM, "out of memory writing ONNX");
        goto done;
    }
    *buf = model.p;
    *len = model.n;
done:
    wb_free(&gr);
    free(dom);
    free(ver);
    free(role);
    free(keep);
    return st;
}

tdm_status tdm_onnx_write_file(const char *path, const uint8_t *buf, size_t len, tdm_err *err)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return tdm_errf(err, TDM_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    bool ok = fwrite(buf, 1, len, f) == len;
    ok = (fclose(f) == 0) && ok;
    if (!ok)
        return tdm_errf(err, TDM_ERR_IO, "%s: write failed", path);
    return TDM_OK;
}

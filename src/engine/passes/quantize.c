/*
 * The int8 pass (tdm_load_options.int8): weight-heavy matrix products become
 * tandem.QMatMul with per-channel int8 weights, packed here, once.
 *
 * It runs after the fusions, so it sees tandem.FusedMatMul (bias and
 * activation already folded in) and the plain MatMuls the fusion left. A
 * FusedMatMul's residual (input 3: skip connections, from the BERT builder
 * or the residual fusion) is not something QMatMul takes: it becomes an Add
 * right after the QMatMul. A node is rewritten when its weight is a constant
 * float32 matrix of at least QUANT_MIN_ELEMS elements: the projections and
 * feed-forward layers of a transformer, where nearly all the multiply-adds
 * are. Everything else stays float: attention (both operands are
 * activations), LayerNorm, embeddings (Gather, not a product), small heads
 * and classifiers whose few weights cost little time and whose outputs are
 * read directly. Gemm nodes the fusion did not take (alpha, beta != 1,
 * transA, a full-matrix C) stay float too.
 *
 * This is the one pass that changes results beyond float rounding, which
 * is why it only runs when asked for; the error it may add is bounded per
 * element by the quantisation steps (see kernels/qgemm.h and the tests).
 * The original float weight loses its last reader and the dead-code pass
 * frees it, so an int8 model holds a quarter of the weight bytes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "engine/kernels/qgemm.h"
#include "engine/op.h"
#include "engine/passes/pass_util.h"
#include "engine/passes/passes.h"

#define QUANT_MIN_ELEMS 16384

/* Copies the activation attributes a FusedMatMul carries onto the QMatMul. */
static tdm_status copy_attrs(const tdm_node *from, tdm_node *to, tdm_err *err)
{
    for (int k = 0; k < from->n_attr; k++) {
        const tdm_attr *a = &from->attrs[k];
        bool str = strcmp(a->name, "activation") == 0 && a->type == TDM_ATTR_STRING;
        bool flt = (strcmp(a->name, "alpha") == 0 || strcmp(a->name, "beta") == 0) &&
                   a->type == TDM_ATTR_FLOAT;
        if (!str && !flt)
            continue;
        char *s = str ? tdm_strdup(a->s) : NULL;
        tdm_attr *b = (!str || s != NULL) ? tdm_node_add_attr(to, a->name, a->type) : NULL;
        if (b == NULL) {
            free(s);
            return tdm_errf(err, TDM_ERR_NOMEM, "out of memory in the int8 pass");
        }
        b->f = a->f;
        if (str) {
            b->s = s;
            b->s_len = strlen(s);
        }
    }
    return TDM_OK;
}

/* Rewrites node i if it qualifies; *done tells whether it did. */
static tdm_status quantize_node(tdm_graph *g, int32_t i, bool *done, tdm_err *err)
{
    *done = false;
    tdm_node *n = &g->nodes[i];
    if (n->op_type == NULL || n->n_in < 2 || n->n_out < 1 || n->in[0] < 0 || n->in[1] < 0 ||
        n->out[0] < 0)
        return TDM_OK;
    bool fused = strcmp(n->domain, "tandem") == 0 && strcmp(n->op_type, "FusedMatMul") == 0;
    bool plain = n->domain[0] == '\0' && strcmp(n->op_type, "MatMul") == 0 && n->n_in == 2;
    if (!fused && !plain)
        return TDM_OK;
    const tdm_tensor *w = tdm_pass_const_f32(g, n->in[1]);
    if (w == NULL || w->ndim != 2 || w->data == NULL || tdm_tensor_numel(w) < QUANT_MIN_ELEMS)
        return TDM_OK;
    int64_t tb = fused ? tdm_attr_int(n, "transB", 0) : 0;
    if (tb != 0 && tb != 1)
        return TDM_OK;
    int64_t K = tb ? w->dims[1] : w->dims[0], N = tb ? w->dims[0] : w->dims[1];
    int32_t bias = fused && n->n_in > 2 ? n->in[2] : -1;
    int32_t res = fused && n->n_in > 3 ? n->in[3] : -1;
    if (bias >= 0) {
        const tdm_tensor *bt = tdm_pass_const_f32(g, bias);
        if (bt == NULL || bt->ndim != 1 || bt->dims[0] != N)
            return TDM_OK; /* QMatMul takes a [N] bias only */
    }
    tdm_tensor qw = {0}, sc = {0};
    int64_t qdims[4] = {tdm_qgemm_np(N) / TDM_QGEMM_NR, tdm_qgemm_kp(K) / TDM_QGEMM_KG,
                        TDM_QGEMM_NR, TDM_QGEMM_KG};
    tdm_status st = tdm_tensor_make(&qw, TDM_DTYPE_INT8, 4, qdims, err);
    if (st == TDM_OK)
        st = tdm_tensor_make(&sc, TDM_DTYPE_FLOAT32, 1, &N, err);
    if (st != TDM_OK) {
        tdm_tensor_free(&qw);
        return st;
    }
    tdm_qgemm_quantize_pack(w->data, tb == 1, K, N, qw.data, sc.data);
    char name[256], add_name[256];
    snprintf(name, sizeof name, "%s_int8", n->name);
    snprintf(add_name, sizeof add_name, "%s_residual", n->name);
    int32_t a_in = n->in[0], y = n->out[0];
    int32_t vq = tdm_pass_add_const(g, "qweight", &qw);
    int32_t vs = vq >= 0 ? tdm_pass_add_const(g, "qscale", &sc) : -1;
    int32_t at = vs >= 0 ? tdm_graph_add_node(g, "QMatMul", "tandem", name, 4, 1) : -1;
    /* A residual (FusedMatMul input 3) is not QMatMul's: it becomes an Add right after it. */
    int32_t t = at >= 0 && res >= 0 ? tdm_graph_new_value(g, name) : -1;
    int32_t add = t >= 0 ? tdm_graph_add_node(g, "Add", "", add_name, 2, 1) : -1;
    if (at < 0 || (res >= 0 && add < 0)) {
        if (at >= 0) /* leave the graph as it was: drop what was appended */
            for (int32_t k = g->n_nodes - 1; k >= at; k--) {
                tdm_node_clear(&g->nodes[k]);
                g->n_nodes--;
            }
        tdm_tensor_free(&qw);
        tdm_tensor_free(&sc);
        return tdm_errf(err, TDM_ERR_NOMEM, "out of memory in the int8 pass");
    }
    /* Move the new node into slot i (keeps topological order), then drop the old one; the Add,
     * if any, goes into slot i + 1, the nodes after i moving up by one. */
    tdm_node fresh = g->nodes[at];
    fresh.opset = 1;
    fresh.in[0] = a_in;
    fresh.in[1] = vq;
    fresh.in[2] = vs;
    fresh.in[3] = bias;
    fresh.out[0] = res >= 0 ? t : y;
    st = copy_attrs(&g->nodes[i], &fresh, err);
    tdm_node_clear(&g->nodes[i]);
    g->nodes[i] = fresh;
    if (res >= 0) {
        tdm_node sum = g->nodes[add];
        sum.in[0] = t;
        sum.in[1] = res;
        sum.out[0] = y;
        memmove(&g->nodes[i + 2], &g->nodes[i + 1], sizeof sum * (size_t)(at - i - 1));
        g->nodes[i + 1] = sum;
    }
    g->n_nodes = at;
    if (res >= 0)
        g->n_nodes++;
    if (st != TDM_OK)
        return st;
    *done = true;
    return TDM_OK;
}

tdm_status tdm_pass_quantize_int8(tdm_graph *g, tdm_err *err)
{
    if (tdm_op_find("tandem", "QMatMul") == NULL)
        return TDM_OK;
    for (int32_t i = 0; i < g->n_nodes; i++) {
        bool done;
        tdm_status st = quantize_node(g, i, &done, err);
        if (st != TDM_OK)
            return st;
    }
    return TDM_OK;
}

tdm_status tdm_graph_quantize_int8(tdm_graph *g, tdm_err *err)
{
    tdm_status st = tdm_pass_quantize_int8(g, err);
    if (st == TDM_OK)
        st = tdm_pass_dead_code(g, err);
    if (st == TDM_OK)
        st = tdm_graph_validate(g, err);
    return st;
}

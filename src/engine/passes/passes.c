/*
 * The pass manager, constant folding, identity removal and dead code.
 *
 * Passes run in a fixed order: folding first (so Constant nodes and weight
 * preprocessing become plain constants that the matchers can read), then
 * the fusions, each of which detaches the nodes it replaced for the
 * dead-code pass to remove.
 *
 * Folding runs real kernels (the op table) on constant inputs at load time,
 * so a folded value is bit-identical to what the run would have computed.
 * It stops at tensors over FOLD_LIMIT bytes: folding a huge ConstantOfShape
 * would trade a cheap fill at run time for resident memory forever. Shape
 * subgraphs that depend on input shapes cannot fold here; the executor folds
 * them per input shape when it plans (session.c).
 */
#include "engine/passes/passes.h"

#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "engine/op.h"
#include "engine/passes/pass_util.h"

#define FOLD_LIMIT ((size_t)64 << 20)

static bool nondeterministic(const tdm_node *n)
{
    static const char *const k[] = {"RandomNormal",      "RandomUniform", "RandomNormalLike",
                                    "RandomUniformLike", "Multinomial",   "Bernoulli"};
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
        if (strcmp(n->op_type, k[i]) == 0)
            return true;
    return false;
}

/* Evaluates node i on its constant inputs; false (graph untouched) if it cannot. */
static bool fold_node(tdm_graph *g, int32_t i)
{
    tdm_node *n = &g->nodes[i];
    const tdm_op *op = tdm_op_find(n->domain, n->op_type);
    if (op == NULL || nondeterministic(n) || n->n_out > 16 || n->n_in > 64)
        return false;
    const tdm_tensor *in[64];
    tdm_tensor outs[16];
    tdm_tensor *out[16];
    memset(outs, 0, sizeof outs);
    for (int k = 0; k < n->n_in; k++)
        in[k] = n->in[k] >= 0 ? &g->values[n->in[k]].cval : NULL;
    for (int k = 0; k < n->n_out; k++)
        out[k] = n->out[k] >= 0 ? &outs[k] : NULL;
    tdm_scratch scratch = {NULL, 0};
    tdm_err err;
    tdm_op_ctx ctx = {n, n->n_in, in, n->n_out, out, NULL, NULL, &scratch, &err};
    tdm_status st = TDM_OK;
    if (op->prepare != NULL)
        st = op->prepare(&ctx);
    if (st == TDM_OK)
        st = op->infer(&ctx);
    for (int k = 0; k < n->n_out && st == TDM_OK; k++) {
        if (out[k] == NULL)
            continue;
        size_t bytes;
        if (!tdm_shape_checked_bytes(outs[k].dims, outs[k].ndim, tdm_dtype_size(outs[k].dtype),
                                     FOLD_LIMIT, &bytes))
            st = TDM_ERR_UNSUPPORTED;
        else
            st = tdm_tensor_alloc(&outs[k], &err);
    }
    if (st == TDM_OK)
        st = op->run(&ctx);
    if (op->release != NULL && ctx.state != NULL)
        op->release(ctx.state);
    tdm_aligned_free(scratch.p);
    if (st != TDM_OK) {
        for (int k = 0; k < n->n_out; k++)
            tdm_tensor_free(&outs[k]);
        return false;
    }
    for (int k = 0; k < n->n_out; k++) {
        if (n->out[k] < 0)
            continue;
        tdm_value *v = &g->values[n->out[k]];
        v->is_const = true;
        v->cval = outs[k];
        v->dtype = outs[k].dtype;
        v->ndim = outs[k].ndim;
        for (int d = 0; d < outs[k].ndim; d++)
            v->dims[d] = outs[k].dims[d];
        v->producer = -1;
    }
    tdm_node_clear(n);
    return true;
}

tdm_status tdm_pass_fold_constants(tdm_graph *g, tdm_err *err)
{
    (void)err;
    for (int32_t i = 0; i < g->n_nodes; i++) {
        tdm_node *n = &g->nodes[i];
        if (n->op_type == NULL)
            continue;
        bool all_const = true;
        for (int k = 0; k < n->n_in && all_const; k++)
            all_const = n->in[k] < 0 || g->values[n->in[k]].is_const;
        if (all_const)
            fold_node(g, i);
    }
    return TDM_OK;
}

tdm_status tdm_pass_remove_identity(tdm_graph *g, tdm_err *err)
{
    tdm_pass_ctx c;
    tdm_status st = tdm_pass_begin(&c, g, err);
    if (st != TDM_OK)
        return st;
    for (int32_t i = 0; i < g->n_nodes; i++) {
        tdm_node *n = &g->nodes[i];
        if (n->op_type == NULL || n->domain[0] != '\0' || n->n_in < 1 || n->in[0] < 0)
            continue;
        bool ident = strcmp(n->op_type, "Identity") == 0 && n->n_out == 1;
        if (strcmp(n->op_type, "Dropout") == 0) {
            /* Inference Dropout is identity unless its mask is read or training is on. */
            bool mask_used = n->n_out > 1 && n->out[1] >= 0 && c.uses[n->out[1]] > 0;
            bool training = n->n_in > 2 && n->in[2] >= 0;
            ident = !mask_used && !training;
        }
        if (!ident || n->out[0] < 0)
            continue;
        int32_t x = n->in[0], y = n->out[0];
        if (!g->values[y].is_output) {
            tdm_pass_replace_uses(g, y, x);
            tdm_node_clear(n);
        } else if (!g->values[x].is_output && !g->values[x].is_input && !g->values[x].is_const &&
                   g->values[x].producer >= 0 && c.uses[x] == 1) {
            /* y names a graph output: let x's producer write y directly. */
            tdm_node *p = &g->nodes[g->values[x].producer];
            for (int k = 0; k < p->n_out; k++)
                if (p->out[k] == x)
                    p->out[k] = y;
            tdm_node_clear(n);
        } else {
            continue;
        }
        st = tdm_pass_refresh(&c, err);
        if (st != TDM_OK)
            break;
    }
    tdm_pass_end(&c);
    return st;
}

tdm_status tdm_pass_dead_code(tdm_graph *g, tdm_err *err)
{
    bool *need = calloc((size_t)g->n_values + 1, sizeof *need);
    if (need == NULL)
        return tdm_errf(err, TDM_ERR_NOMEM, "out of memory in dead-code pass");
    for (int32_t k = 0; k < g->n_outputs; k++)
        need[g->outputs[k]] = true;
    for (int32_t i = g->n_nodes - 1; i >= 0; i--) {
        tdm_node *n = &g->nodes[i];
        if (n->op_type == NULL)
            continue;
        bool live = false;
        for (int k = 0; k < n->n_out && !live; k++)
            live = n->out[k] >= 0 && need[n->out[k]];
        if (!live) {
            tdm_node_clear(n);
            continue;
        }
        for (int k = 0; k < n->n_in; k++)
            if (n->in[k] >= 0)
                need[n->in[k]] = true;
    }
    /* Constants nobody reads any more (replaced by fused copies) free their memory. */
    for (int32_t v = 0; v < g->n_values; v++) {
        tdm_value *val = &g->values[v];
        if (val->is_const && !need[v] && !val->is_input) {
            tdm_tensor_free(&val->cval);
            val->is_const = false;
        }
    }
    free(need);
    return tdm_graph_compact(g, err);
}

tdm_status tdm_graph_optimize(tdm_graph *g, const tdm_load_options *opt, tdm_err *err)
{
    typedef tdm_status (*pass_fn)(tdm_graph *, tdm_err *);
    /* Dead code runs after each fusion so the next matcher never sees the
     * detached remains of a fused chain. */
    static const pass_fn fusions[] = {
        tdm_pass_fold_constants, tdm_pass_remove_identity, tdm_pass_dead_code,
        tdm_pass_fuse_conv,      tdm_pass_dead_code,       tdm_pass_fuse_layernorm,
        tdm_pass_dead_code,      tdm_pass_fuse_gelu,       tdm_pass_dead_code,
        tdm_pass_fuse_matmul,    tdm_pass_dead_code,       tdm_pass_fuse_attention,
        tdm_pass_dead_code,      tdm_pass_fuse_residual,   tdm_pass_dead_code,
    };
    /* Without optimisation the graph stays as the file has it (tandem info,
     * debugging); the executor still folds per plan. */
    if (opt != NULL && opt->no_optimize)
        return TDM_OK;
    for (size_t i = 0; i < sizeof fusions / sizeof fusions[0]; i++) {
        tdm_status st = fusions[i](g, err);
        if (st != TDM_OK)
            return st;
        st = tdm_graph_compact(g, err);
        if (st != TDM_OK)
            return st;
    }
    if (opt != NULL && opt->int8) {
        tdm_status st = tdm_pass_quantize_int8(g, err);
        if (st == TDM_OK)
            st = tdm_pass_dead_code(g, err);
        if (st != TDM_OK)
            return st;
    }
    return tdm_graph_validate(g, err);
}

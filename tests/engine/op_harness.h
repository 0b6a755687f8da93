/*
 * Runs one op directly (prepare, infer, alloc, run, release) for unit tests,
 * without a graph file or a session. Attributes are added to a scratch node.
 *
 *   tdm_node n; op_node_init(&n, "Conv", "", 13, 3, 1);
 *   op_attr_ints(&n, "pads", (int64_t[]){1,1,1,1}, 4);
 *   tdm_tensor out[1]; tdm_status s = op_run(&n, ins, 3, out, 1, pool, &err);
 */
#ifndef TDM_TESTS_OP_HARNESS_H
#define TDM_TESTS_OP_HARNESS_H

#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "engine/ir.h"
#include "engine/op.h"

static inline void op_node_init(tdm_node *n, const char *op, const char *domain, int opset,
                                int n_in, int n_out)
{
    memset(n, 0, sizeof *n);
    n->op_type = tdm_strdup(op);
    n->domain = tdm_strdup(domain);
    n->name = tdm_strdup("test");
    n->opset = opset;
    n->n_in = n_in;
    n->n_out = n_out;
    n->in = calloc((size_t)n_in + 1, sizeof *n->in);
    n->out = calloc((size_t)n_out + 1, sizeof *n->out);
}

static inline void op_attr_int(tdm_node *n, const char *name, int64_t v)
{
    tdm_node_add_attr(n, name, TDM_ATTR_INT)->i = v;
}

static inline void op_attr_float(tdm_node *n, const char *name, float v)
{
    tdm_node_add_attr(n, name, TDM_ATTR_FLOAT)->f = v;
}

static inline void op_attr_str(tdm_node *n, const char *name, const char *v)
{
    tdm_attr *a = tdm_node_add_attr(n, name, TDM_ATTR_STRING);
    a->s = tdm_strdup(v);
    a->s_len = strlen(v);
}

static inline void op_attr_ints(tdm_node *n, const char *name, const int64_t *v, int64_t count)
{
    tdm_attr *a = tdm_node_add_attr(n, name, TDM_ATTR_INTS);
    a->ints = malloc(sizeof *v * (size_t)(count + 1));
    memcpy(a->ints, v, sizeof *v * (size_t)count);
    a->n = count;
}

static inline void op_attr_floats(tdm_node *n, const char *name, const float *v, int64_t count)
{
    tdm_attr *a = tdm_node_add_attr(n, name, TDM_ATTR_FLOATS);
    a->floats = malloc(sizeof *v * (size_t)(count + 1));
    memcpy(a->floats, v, sizeof *v * (size_t)count);
    a->n = count;
}

/* Runs the node; ins[i] may be NULL for absent optional inputs. Outputs are
 * owned tensors (tdm_tensor_free). */
static inline tdm_status op_run(const tdm_node *n, const tdm_tensor *const *ins, int n_in,
                                tdm_tensor *outs, int n_out, tdm_pool *pool, tdm_err *err)
{
    const tdm_op *op = tdm_op_find(n->domain, n->op_type);
    if (op == NULL)
        return tdm_errf(err, TDM_ERR_UNSUPPORTED, "op %s not found", n->op_type);
    tdm_scratch scratch = {NULL, 0};
    tdm_tensor *out_ptrs[16];
    for (int i = 0; i < n_out; i++) {
        memset(&outs[i], 0, sizeof outs[i]);
        out_ptrs[i] = &outs[i];
    }
    tdm_op_ctx ctx = {n, n_in, ins, n_out, out_ptrs, NULL, pool, &scratch, err};
    tdm_status s = TDM_OK;
    if (op->prepare != NULL)
        s = op->prepare(&ctx);
    if (s == TDM_OK)
        s = op->infer(&ctx);
    for (int i = 0; i < n_out && s == TDM_OK; i++)
        s = tdm_tensor_alloc(&outs[i], err);
    if (s == TDM_OK)
        s = op->run(&ctx);
    if (op->release != NULL && ctx.state != NULL)
        op->release(ctx.state);
    tdm_aligned_free(scratch.p);
    return s;
}

#endif

/*
 * Pattern-matching helpers shared by the fusion passes.
 *
 * The helpers read producers and consumer counts that tdm_pass_refresh()
 * recomputes; a pass calls it after every rewrite that changes either.
 */
#ifndef TANDEM_PASS_UTIL_H
#define TANDEM_PASS_UTIL_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "engine/ir.h"

typedef struct tdm_pass_ctx {
    tdm_graph *g;
    int32_t *uses; /* consumers per value (graph outputs count as one) */
} tdm_pass_ctx;

tdm_status tdm_pass_begin(tdm_pass_ctx *c, tdm_graph *g, tdm_err *err);
void tdm_pass_end(tdm_pass_ctx *c);
/* Recomputes producers and use counts (after a rewrite). */
tdm_status tdm_pass_refresh(tdm_pass_ctx *c, tdm_err *err);

/* A rewrite at node i: sets *done when it changed the graph. */
typedef tdm_status (*tdm_pass_match_fn)(tdm_pass_ctx *c, int32_t i, bool *done, tdm_err *err);
/* Tries fn at every node in order, refreshing the use counts after each rewrite. */
tdm_status tdm_pass_each_node(tdm_graph *g, tdm_pass_match_fn fn, tdm_err *err);

/* The node producing v if it is a live node of op type `op` (domain ""), else NULL. */
tdm_node *tdm_pass_producer(tdm_pass_ctx *c, int32_t v, const char *op);
/* The only consumer node of v (v read once, not a graph output), else NULL. */
tdm_node *tdm_pass_sole_consumer(tdm_pass_ctx *c, int32_t v, int *input_index);
/* True when v has exactly one reader and is not a graph output. */
bool tdm_pass_single_use(tdm_pass_ctx *c, int32_t v);

/* Constant float32 scalar (any shape with one element). */
bool tdm_pass_const_scalar(const tdm_graph *g, int32_t v, float *out);
/* Constant integer tensor's values (int64/int32) into out (cap entries); count or -1. */
int tdm_pass_const_ints(const tdm_graph *g, int32_t v, int64_t *out, int cap);
/* Constant float32 tensor or NULL. */
const tdm_tensor *tdm_pass_const_f32(const tdm_graph *g, int32_t v);

/* Adds a constant value owning t (t's data moved in); -1 on OOM. */
int32_t tdm_pass_add_const(tdm_graph *g, const char *hint, tdm_tensor *t);

/* Ints attribute or, from opset `since` on, the constant input `idx` ("axes"). */
int tdm_pass_axes(const tdm_graph *g, const tdm_node *n, const char *attr, int input_idx,
                  int64_t *out, int cap);

/* Replaces every read of `from` by `to` (nodes only; graph outputs untouched). */
void tdm_pass_replace_uses(tdm_graph *g, int32_t from, int32_t to);

/* Node index of n in g->nodes. */
static inline int32_t tdm_pass_index(const tdm_graph *g, const tdm_node *n)
{
    return (int32_t)(n - g->nodes);
}

/* Returns the other input of a binary node given one input value. */
static inline int32_t tdm_pass_other_input(const tdm_node *n, int32_t v)
{
    return n->in[0] == v ? n->in[1] : n->in[0];
}

/* A live default-domain node of type op with a first input and a first output
 * (files may be corrupt: matchers never read slots that do not exist). */
static inline bool tdm_pass_is(const tdm_node *n, const char *op)
{
    return n != NULL && n->op_type != NULL && n->domain[0] == '\0' && strcmp(n->op_type, op) == 0 &&
           n->n_in >= 1 && n->in[0] >= 0 && n->n_out >= 1 && n->out[0] >= 0;
}

/* As tdm_pass_is, for binary ops: exactly two present inputs. */
static inline bool tdm_pass_is2(const tdm_node *n, const char *op)
{
    return tdm_pass_is(n, op) && n->n_in == 2 && n->in[1] >= 0;
}

#endif

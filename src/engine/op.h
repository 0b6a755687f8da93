/*
 * The operator interface.
 *
 * An op is a table of functions. The executor calls them in this order:
 *
 *   prepare (optional, once per session): constant inputs have data, the
 *       others have data == NULL and possibly unknown shape (ndim < 0). Used
 *       to pack weights or precompute tables into ctx->state.
 *   infer: given input dtypes and shapes (and values where known), sets each
 *       output's dtype, ndim and dims. At plan time an input whose value is
 *       not known has data == NULL; an op that needs it returns
 *       TDM_ERR_NEEDS_VALUE and is inferred again at run time, with data.
 *   run: inputs have data; outputs are allocated with the shapes infer set.
 *   release (optional): frees ctx->state.
 *
 * Absent optional inputs are NULL pointers in ctx->in; absent optional
 * outputs are NULL in ctx->out. Ops must check shapes and dtypes in infer and
 * return TDM_ERR_SHAPE / TDM_ERR_UNSUPPORTED with a message; run may then
 * assume what infer checked. Ops never allocate outputs themselves.
 */
#ifndef TANDEM_ENGINE_OP_H
#define TANDEM_ENGINE_OP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/pool.h"
#include "engine/ir.h"
#include "tandem/status.h"
#include "tandem/tensor.h"

/* A growable workspace owned by the session (or a test harness). */
typedef struct tdm_scratch {
    void *p;
    size_t n;
} tdm_scratch;

typedef struct tdm_op_ctx {
    const tdm_node *node;
    int n_in;
    const tdm_tensor *const *in;
    int n_out;
    tdm_tensor *const *out;
    void *state;          /* set by prepare, passed to infer/run */
    tdm_pool *pool;       /* may be NULL: run single-threaded */
    tdm_scratch *scratch; /* per-session workspace, see tdm_op_scratch */
    tdm_err *err;
} tdm_op_ctx;

typedef struct tdm_op {
    const char *domain; /* "" for ai.onnx, "tandem" for internal fused ops */
    const char *name;
    tdm_status (*infer)(tdm_op_ctx *ctx);
    tdm_status (*run)(tdm_op_ctx *ctx);
    tdm_status (*prepare)(tdm_op_ctx *ctx);
    void (*release)(void *state);
} tdm_op;

/* Looks up an op by domain and name; NULL when unsupported. */
const tdm_op *tdm_op_find(const char *domain, const char *name);

/*
 * Workspace of at least `bytes`, 64-byte aligned, valid until the op returns.
 * NULL on OOM (the op returns TDM_ERR_NOMEM). Ops running in parallel slices
 * ask once and split it.
 */
void *tdm_op_scratch(tdm_op_ctx *ctx, size_t bytes);

/* Error helper that names the node: "Conv 'conv1': <message>". */
tdm_status tdm_op_fail(tdm_op_ctx *ctx, tdm_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Reads element i of an integer tensor (int64, int32, int8/16, uint8, bool) as int64. */
int64_t tdm_tensor_get_i64(const tdm_tensor *t, int64_t i);
/* Reads element i of a numeric tensor as double. */
double tdm_tensor_get_f64(const tdm_tensor *t, int64_t i);

/* Convenience: require input i to have a known value at infer time. */
#define TDM_NEED_VALUE(ctx, i)                                      \
    do {                                                            \
        if ((ctx)->in[(i)] != NULL && (ctx)->in[(i)]->data == NULL) \
            return TDM_ERR_NEEDS_VALUE;                             \
    } while (0)

/*
 * Op tables, one per source group, each ending with an entry whose name is
 * NULL. The registry (ops/registry.c) searches them in this order.
 */
extern const tdm_op tdm_ops_math[];  /* elementwise, activations, logic, cast, reduce, softmax */
extern const tdm_op tdm_ops_shape[]; /* reshape, transpose, slice, gather, pad, ... */
extern const tdm_op tdm_ops_nn[];    /* conv, pool, matmul, gemm, norms, fused ops */

#endif

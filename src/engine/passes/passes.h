/*
 * Graph passes run once at load time, before any session exists.
 *
 * The ONNX reader calls tdm_graph_optimize right after the IR is built and
 * validated. Each pass rewrites the IR in place and keeps it valid: nodes
 * stay in topological order, removed nodes are cleared (op_type NULL) and
 * compacted away by the manager, and a value that a graph output names is
 * never renamed. Passes only fire when the rewrite is exact (same results up
 * to float rounding), never on a guess.
 */
#ifndef TANDEM_ENGINE_PASSES_PASSES_H
#define TANDEM_ENGINE_PASSES_PASSES_H

#include "engine/ir.h"
#include "tandem/graph.h"
#include "tandem/status.h"

/* Runs every pass in order; nothing when opt->no_optimize is set. */
tdm_status tdm_graph_optimize(tdm_graph *g, const tdm_load_options *opt, tdm_err *err);

/* Individual passes, in the order the manager runs them. */
tdm_status tdm_pass_fold_constants(tdm_graph *g, tdm_err *err);
tdm_status tdm_pass_remove_identity(tdm_graph *g, tdm_err *err);
tdm_status tdm_pass_fuse_conv(tdm_graph *g, tdm_err *err);
tdm_status tdm_pass_fuse_layernorm(tdm_graph *g, tdm_err *err);
tdm_status tdm_pass_fuse_gelu(tdm_graph *g, tdm_err *err);
tdm_status tdm_pass_fuse_matmul(tdm_graph *g, tdm_err *err);
tdm_status tdm_pass_fuse_attention(tdm_graph *g, tdm_err *err);
tdm_status tdm_pass_fuse_residual(tdm_graph *g, tdm_err *err);
tdm_status tdm_pass_dead_code(tdm_graph *g, tdm_err *err);
/* Opt-in (tdm_load_options.int8), after the fusions: see passes/quantize.c. */
tdm_status tdm_pass_quantize_int8(tdm_graph *g, tdm_err *err);
/* The int8 pass plus dead code and validation, for graphs built without a load (builders). */
tdm_status tdm_graph_quantize_int8(tdm_graph *g, tdm_err *err);

#endif

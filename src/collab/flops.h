/*
 * FLOPs per node, for choosing where to cut a model and what an early exit saves.
 *
 * Counting needs every tensor's shape for the actual input shapes. Rather than
 * a second, symbolic shape inference that could disagree with the executor,
 * the shapes are read from the executor itself: tdm_graph_probe_shapes runs
 * the graph once (on zeros unless the caller gives data) with every
 * intermediate tensor as a target of tdm_session_run_range. What the probe
 * reports is therefore exactly what a real run allocates.
 *
 * Convention: 2 x multiply-accumulates for Conv, ConvTranspose, MatMul, Gemm,
 * tandem.FusedMatMul and tandem.Attention (the usual GFLOP figures); pools
 * count one operation per window element; element-wise and normalisation ops
 * count one per output element; ops that only move or reshape data count 0.
 * Counts are doubles: a large model exceeds 2^53 only far beyond any model
 * this project runs, and fractions never occur.
 *
 * Node indices are positions in the given graph's node array, so counts taken
 * on an optimised graph index that graph (a fused Conv+BN+Relu is one node).
 */
#ifndef TANDEM_COLLAB_FLOPS_H
#define TANDEM_COLLAB_FLOPS_H

#include <stdint.h>

#include "engine/ir.h"
#include "tandem/graph.h"
#include "tandem/status.h"
#include "tandem/tensor.h"

/*
 * FLOPs of one node from the shapes of its inputs and outputs (data unused;
 * NULL entries are absent optional tensors). Unknown ops count 0.
 */
double tdm_flops_node(const tdm_node *n, const tdm_tensor *const *in, const tdm_tensor *const *out);

/*
 * Shapes of every value of g for the given inputs, by one run of session s
 * (a session of g; NULL creates a one-thread session for the call). in[i]
 * names graph input in_names[i] by dtype and dims; its data may be NULL
 * (zeros are used). Graph inputs not given take their declared shape with
 * symbolic dims set to 1. shapes (g->n_values entries) receives dtype and dims
 * with data NULL; values the run does not compute keep ndim -1.
 */
tdm_status tdm_graph_probe_shapes(const tdm_graph *g, tdm_session *s, int n_in,
                                  const char *const *in_names, const tdm_tensor *in,
                                  tdm_tensor *shapes, tdm_err *err);

/* FLOPs of every node (g->n_nodes entries) for probed shapes (from tdm_graph_probe_shapes). */
void tdm_flops_from_shapes(const tdm_graph *g, const tdm_tensor *shapes, double *per_node);

/*
 * Probe and count in one call: *per_node (malloc'd, g->n_nodes entries, the
 * caller frees) and, when total is not NULL, their sum.
 */
tdm_status tdm_flops_per_node(const tdm_graph *g, tdm_session *s, int n_in,
                              const char *const *in_names, const tdm_tensor *in, double **per_node,
                              double *total, tdm_err *err);

/*
 * FLOPs of the nodes needed to compute the named tensors from the graph
 * inputs: the cost of a head that ends at those tensors (an exit branch's
 * input, a cut). Fails naming a tensor the graph does not have.
 */
tdm_status tdm_flops_until(const tdm_graph *g, const double *per_node, int n_targets,
                           const char *const *targets, double *flops, tdm_err *err);

/* Sum of per_node over the first n_nodes_before nodes (cumulative FLOPs before a position). */
double tdm_flops_prefix(const double *per_node, int32_t n_nodes_before);

#endif

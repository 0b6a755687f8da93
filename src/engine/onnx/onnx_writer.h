/*
 * Writing a sub-graph of a loaded model back out as an ONNX ModelProto.
 *
 * Splitting a model into head.onnx and tail.onnx means cutting the ORIGINAL
 * graph (loaded with no_optimize, so every node is a standard ONNX op that
 * other runtimes know) at a set of tensors. The writer takes the frontier
 * (tensors that become the sub-model's inputs) and the targets (its outputs),
 * keeps exactly the nodes needed between them, in the graph's topological
 * order, and the initializers those nodes read (as raw_data), and copies the
 * opset imports the kept nodes need. Inputs and outputs get value_info with
 * dtype and shape as the caller describes them (tdm_value_info: a dim of -1
 * with a name is written as dim_param, so a symbolic batch dim survives).
 *
 * Only what the reader keeps can be written: subgraph attributes are refused
 * at load time already, and string tensors have no raw form (refused here).
 */
#ifndef TANDEM_ENGINE_ONNX_WRITER_H
#define TANDEM_ENGINE_ONNX_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "engine/ir.h"
#include "tandem/graph.h"
#include "tandem/status.h"

/*
 * Serialises the part of g between from[0..n_from) and to[0..n_to) (names in
 * the info structs) into *buf (malloc'd, the caller frees) of *len bytes.
 * Fails, naming the tensor, when a target cannot be computed from the
 * frontier and the constants (a graph input that the frontier lacks), or when
 * a name is not a tensor of g. graph_name may be NULL.
 */
tdm_status tdm_onnx_write_subgraph(const tdm_graph *g, int n_from, const tdm_value_info *from,
                                   int n_to, const tdm_value_info *to, const char *graph_name,
                                   uint8_t **buf, size_t *len, tdm_err *err);

/* Writes bytes to path (replacing it); an I/O error names the path. */
tdm_status tdm_onnx_write_file(const char *path, const uint8_t *buf, size_t len, tdm_err *err);

#endif

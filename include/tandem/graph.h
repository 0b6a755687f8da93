/*
 * Graphs and sessions: the engine's public API.
 *
 * A tdm_graph is a loaded model (ONNX today), immutable once loaded and
 * optimised, so several sessions may share it. A tdm_session owns what a run
 * needs: the thread pool, the memory plan and per-node state such as packed
 * weights. A session is used by one thread at a time.
 *
 * Split inference is a property of the executor, not a layer on top:
 * tdm_session_run_range() starts from any set of known tensors (a frontier)
 * and computes any set of target tensors, running only the nodes between
 * them. Running a whole model is the special case "from the graph inputs to
 * the graph outputs"; a head is "from the inputs to the cut", a tail "from the
 * cut to the outputs".
 */
#ifndef TANDEM_GRAPH_H
#define TANDEM_GRAPH_H

#include <stdbool.h>
#include <stdint.h>

#include "tandem/status.h"
#include "tandem/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tdm_graph tdm_graph;
typedef struct tdm_session tdm_session;

typedef struct tdm_load_options {
    bool no_optimize;       /* skip fusion passes (for debugging and tests) */
    uint64_t max_file_size; /* refuse larger files; 0 = 4 GiB */
    bool int8;              /* int8 weights for large constant MatMuls (tandem.QMatMul) */
} tdm_load_options;

/* Loads an ONNX model file; external data files are read relative to it. */
tdm_status tdm_graph_load(const char *path, const tdm_load_options *opt, tdm_graph **out,
                          tdm_err *err);
/* Loads from memory; base_dir (may be NULL) resolves external data. */
tdm_status tdm_graph_load_buffer(const void *data, size_t len, const char *base_dir,
                                 const tdm_load_options *opt, tdm_graph **out, tdm_err *err);
void tdm_graph_free(tdm_graph *g);

/* What a graph declares about one of its inputs or outputs. */
typedef struct tdm_value_info {
    const char *name;
    tdm_dtype dtype;
    int32_t ndim;                        /* -1 when the rank is unknown */
    int64_t dims[TDM_MAX_DIMS];          /* -1 for a symbolic or unknown dim */
    const char *dim_names[TDM_MAX_DIMS]; /* symbolic name or NULL */
} tdm_value_info;

int tdm_graph_num_inputs(const tdm_graph *g);
int tdm_graph_num_outputs(const tdm_graph *g);
tdm_status tdm_graph_input_info(const tdm_graph *g, int i, tdm_value_info *info);
tdm_status tdm_graph_output_info(const tdm_graph *g, int i, tdm_value_info *info);

/* Summary for `tandem info`. */
typedef struct tdm_graph_stats {
    int64_t opset; /* of the default (ai.onnx) domain */
    int64_t ir_version;
    int n_nodes;
    uint64_t param_bytes; /* bytes of all initializers as loaded */
    uint64_t param_count;
} tdm_graph_stats;
void tdm_graph_get_stats(const tdm_graph *g, tdm_graph_stats *st);
/* Number of nodes of each op type: calls fn once per distinct op type. */
void tdm_graph_op_counts(const tdm_graph *g, void (*fn)(void *arg, const char *op, int count),
                         void *arg);

typedef struct tdm_session_options {
    int threads; /* worker threads including the caller; <= 0 means 1 */
} tdm_session_options;

tdm_status tdm_session_create(const tdm_graph *g, const tdm_session_options *opt, tdm_session **out,
                              tdm_err *err);
void tdm_session_free(tdm_session *s);

/*
 * Runs the graph from n_from named tensors to n_until named tensors. The
 * results are written to until_out[i] as owned tensors (free them with
 * tdm_tensor_free). Names may be any tensor of the graph, so a cut is just a
 * list of tensor names. Inputs are borrowed for the call only.
 */
tdm_status tdm_session_run_range(tdm_session *s, int n_from, const char *const *from_names,
                                 const tdm_tensor *from, int n_until,
                                 const char *const *until_names, tdm_tensor *until_out,
                                 tdm_err *err);

/* Whole-graph run: inputs by name, all graph outputs in declaration order. */
tdm_status tdm_session_run(tdm_session *s, int n_in, const char *const *in_names,
                           const tdm_tensor *in, tdm_tensor *outputs, tdm_err *err);

#ifdef __cplusplus
}
#endif
#endif

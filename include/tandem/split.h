/*
 * Cut points and split models.
 *
 * A cut is a set of tensors that separates a model: given them (and the
 * graph inputs that are still needed later), the rest of the model can run
 * without anything computed before. For a chain it is one tensor per node
 * boundary; with skip connections it is the whole frontier of tensors alive
 * across the boundary. Cut i is taken after node i of the topological order:
 * the non-constant tensors produced at or before node i (or graph inputs)
 * that a later node reads or that are graph outputs. Cuts with the same set
 * are listed once.
 *
 * Cuts are enumerated on the OPTIMISED graph. The load-time fusions remove
 * intermediate tensors (a Conv's output when a BatchNormalization and a Relu
 * are folded into it), and a tensor that no longer exists cannot be a cut;
 * every tensor that survives optimisation keeps its name and is a real
 * boundary in the original graph too, so the same names split the original
 * file (tdm_split_write) and run from it (tdm_session_run_range).
 *
 * Shapes, bytes and FLOPs are for the input shapes given (declared shapes,
 * symbolic dims 1, by default), read from one probe run of the executor. When
 * the inputs have symbolic dims, a second probe with them changed finds the
 * dims that follow the batch (written as a named dim_param) and those that
 * vary otherwise (written as unknown dims), so split files stay as flexible
 * as the model.
 */
#ifndef TANDEM_SPLIT_H
#define TANDEM_SPLIT_H

#include <stdbool.h>
#include <stdint.h>

#include "tandem/graph.h"
#include "tandem/status.h"
#include "tandem/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tdm_cut_tensor {
    char *name;
    tdm_dtype dtype;
    int32_t ndim;
    int64_t dims[TDM_MAX_DIMS]; /* for the probed input shapes */
    uint32_t batch_dims;        /* bit d: dim d is the batch size (kept symbolic in files) */
    uint32_t varying_dims;      /* bit d: dim d changes with other symbolic input dims */
    bool is_input;              /* a graph input that the tail still reads */
} tdm_cut_tensor;

typedef struct tdm_cut {
    int32_t after_node; /* last node of the head in the optimised graph; -1 for a custom cut */
    int n;
    tdm_cut_tensor *t;
    uint64_t bytes_fp32; /* bytes to send: float tensors at 4 bytes per element */
    uint64_t bytes_int8; /* ... at 1 byte per element (other dtypes at their size) */
    double flops_before, flops_after;
} tdm_cut;

typedef struct tdm_cut_list {
    int n;
    tdm_cut *cuts;
    double flops_total;
    const char
        *batch_param; /* dim_param written for batch dims ("batch" unless the model names it) */
    int n_inputs, n_outputs;
    tdm_cut_tensor *inputs, *outputs; /* the graph's, with probed shapes */
    /* For resolving custom cuts: per value of the optimised graph, and per node FLOPs. */
    const tdm_graph *graph;
    tdm_cut_tensor *all; /* g->n_values entries; name NULL where the probe computed nothing */
    double *node_flops;
    char *batch_param_buf;
} tdm_cut_list;

typedef struct tdm_cut_options {
    /* Input shapes by name (dtype and dims; data unused). Inputs not listed take
     * their declared shape with symbolic dims set to 1. */
    int n_shapes;
    const char *const *shape_names;
    const tdm_tensor *shapes;
    /* The unoptimised graph of the same file (may be NULL): cuts with tensors it
     * lacks, or that do not separate it, are dropped. */
    const tdm_graph *original;
} tdm_cut_options;

/* Enumerates the cuts of an optimised graph. */
tdm_status tdm_cuts_find(const tdm_graph *g, const tdm_cut_options *opt, tdm_cut_list **out,
                         tdm_err *err);
void tdm_cut_list_free(tdm_cut_list *l);

/*
 * Resolves what a user typed: an index into the list ("3"), a tensor name, or
 * comma-separated tensor names ("a,b"; a name made only of digits is written
 * with a trailing comma, "7,"). A set of names that is not a listed cut is
 * checked to separate the graph (and the original graph, when the list has
 * one) and gets its shapes and FLOPs from the probe. *out is an owned copy
 * (free with tdm_cut_clear); *index is the list index or -1.
 */
tdm_status tdm_cut_resolve(const tdm_cut_list *l, const tdm_graph *original, const char *spec,
                           tdm_cut *out, int *index, tdm_err *err);
void tdm_cut_clear(tdm_cut *c);

/*
 * Checks that tensors names[0..n) separate graph g: the graph outputs can be
 * computed from them and the constants alone, except for graph inputs, which
 * are reported. Fails naming the first graph input or unknown tensor at fault.
 */
tdm_status tdm_cut_check(const tdm_graph *g, int n, const char *const *names, tdm_err *err);

/* Shapes of a cut tensor as a value_info: batch dims symbolic (named l->batch_param). */
void tdm_cut_tensor_info(const tdm_cut_list *l, const tdm_cut_tensor *t, tdm_value_info *vi);

/*
 * Writes DIR/head.onnx, DIR/tail.onnx and DIR/manifest.json for cut c of the
 * model file model_path (index: the list index for the manifest, -1 custom).
 * original is that file loaded with no_optimize. head.onnx maps the graph
 * inputs to the cut tensors that are not graph inputs; tail.onnx maps all cut
 * tensors to the graph outputs. DIR must exist.
 */
tdm_status tdm_split_write(const char *model_path, const tdm_graph *original, const tdm_cut_list *l,
                           const tdm_cut *c, int index, const char *dir, tdm_err *err);

#ifdef __cplusplus
}
#endif
#endif

/*
 * The graph IR shared by readers, passes and the executor.
 *
 * A graph is two arrays: values (named tensors: graph inputs, constants and
 * intermediates) and nodes (an op applied to value ids). Nodes are kept in
 * topological order; passes that rewrite the graph keep that order and mark
 * removed nodes dead (op_type NULL after tdm_graph_compact). Values are
 * referred to by index, never by pointer, because the arrays grow.
 *
 * Constants own their data or borrow it from the model file image (which the
 * graph keeps alive), so loading a model does not copy its weights twice.
 */
#ifndef TANDEM_ENGINE_IR_H
#define TANDEM_ENGINE_IR_H

#include <stdbool.h>
#include <stdint.h>

#include "tandem/graph.h"
#include "tandem/status.h"
#include "tandem/tensor.h"

typedef enum tdm_attr_type {
    TDM_ATTR_UNDEFINED = 0,
    TDM_ATTR_FLOAT = 1,
    TDM_ATTR_INT = 2,
    TDM_ATTR_STRING = 3,
    TDM_ATTR_TENSOR = 4,
    TDM_ATTR_GRAPH = 5,
    TDM_ATTR_FLOATS = 6,
    TDM_ATTR_INTS = 7,
    TDM_ATTR_STRINGS = 8,
} tdm_attr_type;

typedef struct tdm_attr {
    char *name;
    tdm_attr_type type;
    float f;
    int64_t i;
    char *s; /* NUL-terminated copy; s_len excludes the NUL */
    size_t s_len;
    float *floats;  /* FLOATS */
    int64_t *ints;  /* INTS */
    char **strings; /* STRINGS */
    int64_t n;      /* count for FLOATS / INTS / STRINGS */
    tdm_tensor t;   /* TENSOR (owned) */
} tdm_attr;

typedef struct tdm_node {
    char *name;
    char *op_type; /* NULL once the node is removed by a pass */
    char *domain;  /* "" for ai.onnx */
    int opset;     /* opset version of the node's domain */
    int n_in, n_out;
    int32_t *in;  /* value ids; -1 for an absent optional input */
    int32_t *out; /* value ids; -1 for an absent optional output */
    int n_attr;
    tdm_attr *attrs;
} tdm_node;

typedef struct tdm_value {
    char *name;
    tdm_dtype dtype;            /* declared; UNDEFINED when unknown */
    int32_t ndim;               /* declared rank, -1 when unknown */
    int64_t dims[TDM_MAX_DIMS]; /* declared dims, -1 when symbolic/unknown */
    char *dim_param[TDM_MAX_DIMS];
    bool is_input;  /* graph input fed by the caller */
    bool is_output; /* graph output */
    bool is_const;  /* initializer or folded constant: cval holds it */
    tdm_tensor cval;
    int32_t producer; /* node index, -1 for inputs and constants */
} tdm_value;

struct tdm_graph {
    tdm_value *values;
    int32_t n_values, cap_values;
    tdm_node *nodes;
    int32_t n_nodes, cap_nodes;
    int32_t *inputs; /* graph inputs that are not initializers, declared order */
    int32_t n_inputs;
    int32_t *outputs;
    int32_t n_outputs;
    int64_t ir_version;
    int64_t opset;    /* ai.onnx opset import */
    int64_t opset_ml; /* ai.onnx.ml, 0 when absent */
    char *producer;
    /* name -> value id, open addressing */
    int32_t *index;
    uint32_t index_cap;
    /* file image that constants may borrow from; freed with the graph */
    void *image;
    size_t image_len;
    bool image_mapped;
};

/* Creates an empty graph. */
tdm_status tdm_graph_new(tdm_graph **out, tdm_err *err);

/* Value id of name, or -1. */
int32_t tdm_graph_find(const tdm_graph *g, const char *name);
/* Value id of name, creating an empty intermediate value if absent; -1 on OOM. */
int32_t tdm_graph_intern(tdm_graph *g, const char *name);
/* A new value with a unique name derived from hint; -1 on OOM. */
int32_t tdm_graph_new_value(tdm_graph *g, const char *hint);

/*
 * Appends a node; in/out arrays are allocated with n_in/n_out slots set to -1
 * and strings copied. Returns the node index or -1 on OOM. The node pointer
 * is invalidated by the next append: use g->nodes[idx].
 */
int32_t tdm_graph_add_node(tdm_graph *g, const char *op_type, const char *domain, const char *name,
                           int n_in, int n_out);
/* Adds an attribute slot to a node (name copied); NULL on OOM. */
tdm_attr *tdm_node_add_attr(tdm_node *n, const char *name, tdm_attr_type type);
/* Frees a node's contents and marks it removed (op_type NULL). */
void tdm_node_clear(tdm_node *n);

/* Recomputes producers and drops removed nodes, keeping order. */
tdm_status tdm_graph_compact(tdm_graph *g, tdm_err *err);
/* Checks that nodes are in topological order and every input is defined. */
tdm_status tdm_graph_validate(const tdm_graph *g, tdm_err *err);

/* Attribute access; defaults when absent or of another type. */
const tdm_attr *tdm_node_attr(const tdm_node *n, const char *name);
int64_t tdm_attr_int(const tdm_node *n, const char *name, int64_t def);
float tdm_attr_float(const tdm_node *n, const char *name, float def);
const char *tdm_attr_str(const tdm_node *n, const char *name, const char *def);
/* NULL and *count 0 when absent. */
const int64_t *tdm_attr_ints(const tdm_node *n, const char *name, int64_t *count);
const float *tdm_attr_floats(const tdm_node *n, const char *name, int64_t *count);
const tdm_tensor *tdm_attr_tensor(const tdm_node *n, const char *name);

/* Number of consumers of each value (for passes); caller frees. */
int32_t *tdm_graph_use_counts(const tdm_graph *g);

#endif

/*
 * Early-exit heads fitted on a frozen model (shallow-deep style).
 *
 * A model without exits gets them from outside: at each cut tensor its
 * features are pooled to a vector (global average over H,W of a feature
 * map, a coarse KxK average grid, a flatten, or the mean over tokens) and a
 * small classifier (softmax regression or one hidden ReLU layer) is trained
 * on them in C. The backbone is never changed, so the same ONNX file serves
 * the edge (head up to the cut plus the exit) and the cloud (cut to the end).
 *
 * Heads live in a small JSON file, "tdm-exits" version 1, tied to the model
 * by its SHA-256. Each exit stores its cut tensor name, the pooling, the
 * feature standardisation (mean/std, learnt on the training features), the
 * weights, the fitted temperature and the chosen threshold. Loading checks
 * every field (types, sizes, finiteness) before anything is trusted, so a
 * truncated, corrupt or foreign file is refused with a message naming the
 * field.
 *
 * Feature extraction runs the model once per batch from the input to all
 * cut tensors and the final output together (tdm_session_run_range).
 */
#ifndef TANDEM_EXITS_H
#define TANDEM_EXITS_H

#include <stdbool.h>
#include <stdint.h>

#include "tandem/graph.h"
#include "tandem/status.h"
#include "tandem/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TDM_EXITS_FORMAT "tdm-exits"
#define TDM_EXITS_VERSION 1
#define TDM_EXITS_MAX 16          /* exits per file */
#define TDM_EXITS_MAX_DIM 65536   /* pooled feature length */
#define TDM_EXITS_MAX_HIDDEN 4096 /* hidden units */
#define TDM_EXITS_MAX_CLASSES 65536
#define TDM_EXITS_MAX_GRID 16

/* How a cut tensor becomes one feature vector per input. */
typedef enum tdm_exit_pool {
    TDM_POOL_AUTO = 0, /* GAP for rank 4, tokens for rank 3, flatten otherwise */
    TDM_POOL_GAP,      /* [N,C,H,W] -> [N,C]: mean over H and W */
    TDM_POOL_GRID,     /* [N,C,H,W] -> [N,C*K*K]: adaptive average to a KxK grid */
    TDM_POOL_FLATTEN,  /* [N,...] -> [N,prod(...)] */
    TDM_POOL_TOKENS,   /* [N,T,D] -> [N,D]: mean over tokens (mask optional) */
} tdm_exit_pool;

/* How sure an exit is: max softmax probability or 1 - entropy / log(C). */
typedef enum tdm_confidence {
    TDM_CONF_MAXPROB = 0,
    TDM_CONF_ENTROPY = 1,
} tdm_confidence;

/* "gap", "grid4", "flatten", "tokens" (grid gets its K); NULL on a bad value. */
const char *tdm_exit_pool_name(tdm_exit_pool p, int grid, char *buf, size_t len);
/* Parses the same names ("auto" too); false on anything else. */
bool tdm_exit_pool_parse(const char *s, tdm_exit_pool *p, int *grid);

/*
 * Length of one pooled vector for a cut of shape t (dtype and dims only)
 * and the pooling actually used (AUTO resolved). Unsuitable ranks give
 * TDM_ERR_SHAPE naming the cut.
 */
tdm_status tdm_exit_pool_dim(const tdm_tensor *t, const char *cut, tdm_exit_pool pool, int grid,
                             tdm_exit_pool *resolved, int64_t *dim, tdm_err *err);

/*
 * Pools a float32 cut tensor into out [N, dim]. mask (may be NULL) is
 * [N, T] for TDM_POOL_TOKENS: tokens with mask 0 are left out of the mean.
 */
tdm_status tdm_exit_pool_apply(const tdm_tensor *t, const char *cut, tdm_exit_pool pool, int grid,
                               const float *mask, float *out, tdm_err *err);

/* One exit head. Arrays are malloc'd and owned by the head. */
typedef struct tdm_exit_head {
    char *cut; /* tensor name in the model */
    tdm_exit_pool pool;
    int grid;   /* K for TDM_POOL_GRID, else 0 */
    int in_dim; /* pooled feature length */
    int hidden; /* 0 = softmax regression */
    int n_classes;
    float *mean, *std; /* [in_dim] standardisation */
    float *w1, *b1;    /* [hidden, in_dim], [hidden] when hidden > 0 */
    float *w2, *b2;    /* [n_classes, hidden or in_dim], [n_classes] */
    double temperature;
    double threshold; /* exit when confidence >= threshold; > 1 disables */
} tdm_exit_head;

typedef struct tdm_exit_train_options {
    int hidden;          /* 0 or the hidden layer width */
    int max_epochs;      /* 0 means 60 */
    int batch;           /* 0 means 64 */
    double lr;           /* Adam step; 0 means 1e-3 */
    double l2;           /* weight decay; < 0 means none, 0 means 1e-4 */
    double val_fraction; /* held out for early stopping; 0 means 0.1 */
    int patience;        /* epochs without validation improvement; 0 means 6 */
    uint64_t seed;       /* shuffling and initialisation */
} tdm_exit_train_options;

typedef struct tdm_exit_train_report {
    int epochs;       /* run */
    int best_epoch;   /* whose weights were kept (1-based) */
    double train_acc; /* on the training part */
    double val_acc;   /* on the validation part */
    double val_nll;   /* best validation loss */
} tdm_exit_train_report;

/*
 * Trains h (cut, pool, grid already set; weights allocated here) on x [n,
 * dim] with labels y in 0..n_classes-1: standardisation, then mini-batch
 * Adam on cross-entropy plus L2, keeping the weights of the epoch with the
 * lowest validation loss. Deterministic for a given seed.
 */
tdm_status tdm_exit_head_train(tdm_exit_head *h, const float *x, const int32_t *y, int64_t n,
                               int dim, int n_classes, const tdm_exit_train_options *opt,
                               tdm_exit_train_report *rep, tdm_err *err);

/* Logits [n, n_classes] of the head for raw pooled features x [n, in_dim]. */
tdm_status tdm_exit_head_logits(const tdm_exit_head *h, const float *x, int64_t n, float *logits,
                                tdm_err *err);

/* FLOPs of one input through the head: pooling of cut_numel values plus the layers. */
int64_t tdm_exit_head_flops(const tdm_exit_head *h, int64_t cut_numel);

/* Frees the head's arrays and zeroes it. */
void tdm_exit_head_clear(tdm_exit_head *h);

/* A set of heads for one model. */
typedef struct tdm_exits {
    char model_sha256[65]; /* lower-case hex */
    tdm_confidence confidence;
    int n_classes;
    int n_exits;
    tdm_exit_head heads[TDM_EXITS_MAX];
} tdm_exits;

/* Writes e as a tdm-exits v1 JSON file. */
tdm_status tdm_exits_save(const tdm_exits *e, const char *path, tdm_err *err);
/* Parses a heads file from memory (name is used in messages). */
tdm_status tdm_exits_parse(const char *text, size_t len, const char *name, tdm_exits **out,
                           tdm_err *err);
tdm_status tdm_exits_load(const char *path, tdm_exits **out, tdm_err *err);
void tdm_exits_free(tdm_exits *e);

/* Pooled features of a dataset at several cuts, plus the final output's logits. */
typedef struct tdm_exit_features {
    int64_t n;
    int n_cuts;
    int64_t dim[TDM_EXITS_MAX];       /* pooled length per cut */
    int64_t cut_numel[TDM_EXITS_MAX]; /* elements per input of the cut tensor */
    tdm_exit_pool pool[TDM_EXITS_MAX];
    float *x[TDM_EXITS_MAX]; /* [n, dim[k]] */
    int n_classes;
    float *final_logits; /* [n, n_classes] */
} tdm_exit_features;

/*
 * Runs model g (one float32 input) over images [first, first + count) of
 * images [N, C, H, W], reshaped to the input's declared per-item shape when
 * the element counts agree. One run per batch computes every cut and the
 * final tensor; a model with a fixed batch gets exactly that many (the last
 * batch zero-padded), others batch items (0 means 64). A cut may be the
 * input itself. grid may be NULL (no grid pooling).
 */
tdm_status tdm_exits_extract(const tdm_graph *g, tdm_session *s, const tdm_tensor *images,
                             int64_t first, int64_t count, int n_cuts, const char *const *cuts,
                             const tdm_exit_pool *pool, const int *grid, const char *final_name,
                             int batch, tdm_exit_features *out, tdm_err *err);
void tdm_exit_features_free(tdm_exit_features *f);

#ifdef __cplusplus
}
#endif
#endif

/*
 * Internal helpers shared by the cut enumeration (cuts.c) and the split
 * writer (split.c); the public API is include/tandem/split.h.
 */
#ifndef TANDEM_COLLAB_CUTS_H
#define TANDEM_COLLAB_CUTS_H

#include "engine/ir.h"
#include "tandem/split.h"

/*
 * tdm_cut_check that, when inputs_needed is not NULL (g->n_inputs entries,
 * set by the caller to false), accepts graph inputs the rest still reads and
 * flags them instead of failing.
 */
tdm_status tdm_cut_separates(const tdm_graph *g, int n, const char *const *names,
                             bool *inputs_needed, tdm_err *err);

/* Deep copy of a cut tensor (the name is duplicated); false on OOM. */
bool tdm_cut_tensor_copy(tdm_cut_tensor *dst, const tdm_cut_tensor *src);

/* Bytes of a frontier at 4 bytes per float element and at 1 byte per float element. */
void tdm_cut_bytes(const tdm_cut *c, uint64_t *fp32, uint64_t *int8);

#endif

/*
 * Running a split: the head (graph inputs -> the cut tensors that are not
 * graph inputs) on session head, then the tail (all cut tensors -> graph
 * outputs) on session tail. Both may be the same session of the whole model
 * (split from the one file) or sessions of head.onnx and tail.onnx. inputs
 * follow l->inputs; outs (l->n_outputs, owned) follow l->outputs. Times of
 * the two halves go to head_ms / tail_ms when not NULL.
 */
tdm_status tdm_split_run(tdm_session *head, tdm_session *tail, const tdm_cut_list *l,
                         const tdm_cut *c, const tdm_tensor *inputs, tdm_tensor *outs,
                         double *head_ms, double *tail_ms, tdm_err *err);

/* Whole-model run of session s on inputs (following l->inputs) into outs. */
tdm_status tdm_split_run_whole(tdm_session *s, const tdm_cut_list *l, const tdm_tensor *inputs,
                               tdm_tensor *outs, tdm_err *err);

/*
 * Deterministic inputs for l->inputs (seeded xorshift): floats uniform in
 * [0, 1), like pixels scaled by 1/255; integers 0 or 1; batch dims set to
 * batch when batch > 0. Owned tensors; on failure none are left allocated.
 */
tdm_status tdm_split_random_inputs(const tdm_cut_list *l, uint64_t seed, int64_t batch,
                                   tdm_tensor *inputs, tdm_err *err);

/*
 * max|a - b| / max(max|b|, 1e-12) over float32 tensors (as tools/peer/compare.js
 * measures); exact comparison (0 or 1) for other dtypes; infinity when the
 * shapes differ or a value is NaN in one and not the other.
 */
double tdm_split_max_rel(const tdm_tensor *a, const tdm_tensor *b);

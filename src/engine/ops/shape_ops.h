/*
 * Entry points of the shape and data-movement ops (referenced by the table in
 * ops_shape.c) and the helpers their source files share.
 *
 * Design: almost every op of this group is "compute an output shape, then
 * copy bytes". The copies are expressed as one primitive, a strided gather
 * (tdm_shp_strided_copy): Transpose, Slice, Expand, Tile, DepthToSpace and
 * SpaceToDepth only differ in the view (dims and element strides) they hand
 * it. The primitive merges contiguous dims and then picks a row-copy loop
 * (memcpy of the innermost run), a broadcast fill, or a cache-blocked 2-D
 * transpose, so one well-tuned routine serves them all. Everything moves
 * elements by size (1, 2, 4 or 8 bytes), never by dtype, so these ops work
 * for every fixed-size dtype without a per-element switch.
 *
 * Shape inference: an op that needs an input's value to know its output
 * shape returns TDM_ERR_NEEDS_VALUE at plan time (TDM_NEED_VALUE); an input
 * whose own shape is not known yet (ndim < 0 or a negative dim) gives the
 * same answer, so the executor retries at run time.
 */
#ifndef TANDEM_OPS_SHAPE_OPS_H
#define TANDEM_OPS_SHAPE_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/op.h"

/* ---- entry points (shape_basic.c) --------------------------------------- */
tdm_status tdm_op_identity_infer(tdm_op_ctx *ctx);
tdm_status tdm_op_copy_run(tdm_op_ctx *ctx); /* out[0] = in[0] bytes: Identity, Reshape, ... */
tdm_status tdm_op_dropout_infer(tdm_op_ctx *ctx);
tdm_status tdm_op_dropout_run(tdm_op_ctx *ctx);
tdm_status tdm_op_flatten_infer(tdm_op_ctx *ctx);
tdm_status tdm_op_reshape_infer(tdm_op_ctx *ctx);
tdm_status tdm_op_squeeze_infer(tdm_op_ctx *ctx);
tdm_status tdm_op_unsqueeze_infer(tdm_op_ctx *ctx);
tdm_status tdm_op_shape_infer(tdm_op_ctx *ctx);
tdm_status tdm_op_shape_run(tdm_op_ctx *ctx);
tdm_status tdm_op_size_infer(tdm_op_ctx *ctx);
tdm_status tdm_op_size_run(tdm_op_ctx *ctx);
tdm_status tdm_op_constant_infer(tdm_op_ctx *ctx);
tdm_status tdm_op_constant_run(tdm_op_ctx *ctx);
tdm_status tdm_op_constant_of_shape_infer(tdm_op_ctx *ctx);
tdm_status tdm_op_constant_of_shape_run(tdm_op_ctx *ctx);
tdm_status tdm_op_range_infer(tdm_op_ctx *ctx);
tdm_status tdm_op_range_run(tdm_op_ctx *ctx);
tdm_status tdm_op_eye_like_infer(tdm_op_ctx *ctx);
tdm_status tdm_op_eye_like_run(tdm_op_ctx *ctx);
tdm_status tdm_op_transpose_infer(tdm_op_ctx *ctx);
tdm_status tdm_op_transpose_run(tdm_op_ctx *ctx);
tdm_status tdm_op_depth_to_space_infer(tdm_op_ctx *ctx);
tdm_status tdm_op_depth_to_space_run(tdm_op_ctx *ctx);
tdm_status tdm_op_space_to_depth_infer(tdm_op_ctx *ctx);
tdm_status tdm_op_space_to_depth_run(tdm_op_ctx *ctx);

/* ---- entry points (shape_join.c) ---------------------------------------- */
tdm_status tdm_op_concat_infer(tdm_op_ctx *ctx);
tdm_status tdm_op_concat_run(tdm_op_ctx *ctx);
tdm_status tdm_op_split_infer(tdm_op_ctx *ctx);
tdm_status tdm_op_split_run(tdm_op_ctx *ctx);
tdm_status tdm_op_slice_infer(tdm_op_ctx *ctx);
tdm_status tdm_op_slice_run(tdm_op_ctx *ctx);
tdm_status tdm_op_expand_infer(tdm_op_ctx *ctx);
tdm_status tdm_op_expand_run(tdm_op_ctx *ctx);
tdm_status tdm_op_tile_infer(tdm_op_ctx *ctx);
tdm_status tdm_op_tile_run(tdm_op_ctx *ctx);
tdm_status tdm_op_pad_infer(tdm_op_ctx *ctx);
tdm_status tdm_op_pad_run(tdm_op_ctx *ctx);
tdm_status tdm_op_where_infer(tdm_op_ctx *ctx);
tdm_status tdm_op_where_run(tdm_op_ctx *ctx);
tdm_status tdm_op_trilu_infer(tdm_op_ctx *ctx);
tdm_status tdm_op_trilu_run(tdm_op_ctx *ctx);

/* ---- entry points (shape_index.c) --------------------------------------- */
tdm_status tdm_op_gather_infer(tdm_op_ctx *ctx);
tdm_status tdm_op_gather_run(tdm_op_ctx *ctx);
tdm_status tdm_op_gather_elements_infer(tdm_op_ctx *ctx);
tdm_status tdm_op_gather_elements_run(tdm_op_ctx *ctx);
tdm_status tdm_op_gather_nd_infer(tdm_op_ctx *ctx);
tdm_status tdm_op_gather_nd_run(tdm_op_ctx *ctx);
tdm_status tdm_op_scatter_elements_infer(tdm_op_ctx *ctx);
tdm_status tdm_op_scatter_elements_run(tdm_op_ctx *ctx);
tdm_status tdm_op_scatter_nd_infer(tdm_op_ctx *ctx);
tdm_status tdm_op_scatter_nd_run(tdm_op_ctx *ctx);
tdm_status tdm_op_one_hot_infer(tdm_op_ctx *ctx);
tdm_status tdm_op_one_hot_run(tdm_op_ctx *ctx);
tdm_status tdm_op_non_zero_infer(tdm_op_ctx *ctx);
tdm_status tdm_op_non_zero_run(tdm_op_ctx *ctx);
tdm_status tdm_op_compress_infer(tdm_op_ctx *ctx);
tdm_status tdm_op_compress_run(tdm_op_ctx *ctx);
tdm_status tdm_op_reverse_sequence_infer(tdm_op_ctx *ctx);
tdm_status tdm_op_reverse_sequence_run(tdm_op_ctx *ctx);

/* ---- entry points (shape_resize.c) -------------------------------------- */
tdm_status tdm_op_resize_infer(tdm_op_ctx *ctx); /* Resize 10-19 and Upsample 7-9 */
tdm_status tdm_op_resize_run(tdm_op_ctx *ctx);

/* ---- shared helpers (shape_util.c) -------------------------------------- */

/* Views built from a rank-8 tensor can double its rank (Tile). */
#define TDM_SHP_MAX_VIEW (2 * TDM_MAX_DIMS)

/*
 * Copies smaller than this run on the calling thread: they are memory bound,
 * and waking the pool costs more than a second core gains below ~1 MiB.
 */
#define TDM_SHP_PARALLEL_BYTES ((size_t)1 << 20)

/* Largest output the group will allocate: hostile shapes fail, not swap.
 * Fuzzing builds lower it on the command line. */
#ifndef TDM_SHP_MAX_BYTES
#define TDM_SHP_MAX_BYTES ((size_t)1 << 36)
#endif

/* Input i, or NULL when absent (index past n_in or an empty name). */
static inline const tdm_tensor *tdm_shp_in(const tdm_op_ctx *ctx, int i)
{
    return i < ctx->n_in ? ctx->in[i] : NULL;
}

/* Output o, or NULL when absent. */
static inline tdm_tensor *tdm_shp_out(const tdm_op_ctx *ctx, int o)
{
    return o < ctx->n_out ? ctx->out[o] : NULL;
}

/*
 * Fetches required input i with a known shape: TDM_ERR_INVALID_ARG naming
 * `what` when absent, TDM_ERR_NEEDS_VALUE when its shape is not known yet.
 * With `data` set, the dtype must also have a fixed size (not string).
 */
tdm_status tdm_shp_input(tdm_op_ctx *ctx, int i, const char *what, bool data,
                         const tdm_tensor **out);

/* Normalises axis from [-rank, rank) to [0, rank); error names `what`. */
tdm_status tdm_shp_axis(tdm_op_ctx *ctx, int64_t axis, int rank, const char *what, int *out);

/*
 * Reads a 0-D or 1-D int32/int64 tensor of at most `max` values. Returns
 * TDM_ERR_NEEDS_VALUE when its data is not known yet.
 */
tdm_status tdm_shp_read_ints(tdm_op_ctx *ctx, const tdm_tensor *t, const char *what, int64_t *out,
                             int64_t max, int64_t *n);

/*
 * Normalises `n` axes (negative allowed) against `rank`, rejecting
 * duplicates; `seen` (rank entries) is set to mark which axes appear.
 */
tdm_status tdm_shp_axes(tdm_op_ctx *ctx, const int64_t *axes, int64_t n, int rank, const char *what,
                        int *out, bool *seen);

/*
 * Sets output o (skipped when absent) after checking the rank and that the
 * byte size stays below TDM_SHP_MAX_BYTES.
 */
tdm_status tdm_shp_set_out(tdm_op_ctx *ctx, int o, tdm_dtype dt, int ndim, const int64_t *dims);

/* Multidirectional (numpy) broadcast of shapes a and b into out. */
tdm_status tdm_shp_broadcast(tdm_op_ctx *ctx, const int64_t *a, int na, const int64_t *b, int nb,
                             int64_t *out, int *nout);

/* Contiguous element strides of a shape. */
void tdm_shp_strides(const int64_t *dims, int ndim, int64_t *strides);

/*
 * Element strides of t read as a tensor of shape (ndim, dims) it broadcasts
 * to: right-aligned, 0 on broadcast dims.
 */
void tdm_shp_bcast_strides(const tdm_tensor *t, int ndim, const int64_t *dims, int64_t *strides);

/*
 * dst (contiguous, shape dims) [i0..in] = src[sum ik * strides[k]], element
 * size esize (1, 2, 4 or 8), strides in elements and possibly 0 or negative.
 * src points at the element with index (0, ..., 0). ndim <= TDM_SHP_MAX_VIEW.
 * pool may be NULL.
 */
void tdm_shp_strided_copy(void *dst, const void *src, size_t esize, int ndim, const int64_t *dims,
                          const int64_t *strides, tdm_pool *pool);

/* Copies n bytes with the pool when large (a plain memcpy otherwise). */
void tdm_shp_copy_bytes(void *dst, const void *src, size_t n, tdm_pool *pool);

/* Writes n copies of the esize-byte element at elem. */
void tdm_shp_fill(void *dst, const void *elem, size_t esize, int64_t n);

/*
 * Converts v to one element of dtype dt at out. Integers saturate (NaN -> 0),
 * bool is v != 0, float16/bfloat16 round to nearest. False for dtypes without
 * a numeric meaning (string, undefined).
 */
bool tdm_shp_scalar_from_f64(tdm_dtype dt, double v, void *out);

/*
 * Converts an index tensor (any integer dtype, or float with integral
 * values) into int64, one switch per tensor rather than per element.
 */
tdm_status tdm_shp_indices_i64(tdm_op_ctx *ctx, const tdm_tensor *t, const char *what,
                               int64_t *out);

#endif

/*
 * Op table of the shape group (see op.h): reshaping, permuting, slicing,
 * joining, indexing and resizing ops. Their code lives in shape_*.c and the
 * entry points are declared in shape_ops.h. The pure views (Identity,
 * Reshape, Flatten, Squeeze, Unsqueeze) share one byte-copy run function.
 */
#include "engine/op.h"
#include "engine/ops/shape_ops.h"

#define SHAPE_OP(NAME, INFER, RUN)                             \
    {                                                          \
        .domain = "", .name = NAME, .infer = INFER, .run = RUN \
    }

const tdm_op tdm_ops_shape[] = {
    SHAPE_OP("Identity", tdm_op_identity_infer, tdm_op_copy_run),
    SHAPE_OP("Dropout", tdm_op_dropout_infer, tdm_op_dropout_run),
    SHAPE_OP("Flatten", tdm_op_flatten_infer, tdm_op_copy_run),
    SHAPE_OP("Reshape", tdm_op_reshape_infer, tdm_op_copy_run),
    SHAPE_OP("Squeeze", tdm_op_squeeze_infer, tdm_op_copy_run),
    SHAPE_OP("Unsqueeze", tdm_op_unsqueeze_infer, tdm_op_copy_run),
    SHAPE_OP("Shape", tdm_op_shape_infer, tdm_op_shape_run),
    SHAPE_OP("Size", tdm_op_size_infer, tdm_op_size_run),
    SHAPE_OP("Constant", tdm_op_constant_infer, tdm_op_constant_run),
    SHAPE_OP("ConstantOfShape", tdm_op_constant_of_shape_infer, tdm_op_constant_of_shape_run),
    SHAPE_OP("Range", tdm_op_range_infer, tdm_op_range_run),
    SHAPE_OP("EyeLike", tdm_op_eye_like_infer, tdm_op_eye_like_run),
    SHAPE_OP("Transpose", tdm_op_transpose_infer, tdm_op_transpose_run),
    SHAPE_OP("DepthToSpace", tdm_op_depth_to_space_infer, tdm_op_depth_to_space_run),
    SHAPE_OP("SpaceToDepth", tdm_op_space_to_depth_infer, tdm_op_space_to_depth_run),
    SHAPE_OP("Concat", tdm_op_concat_infer, tdm_op_concat_run),
    SHAPE_OP("Split", tdm_op_split_infer, tdm_op_split_run),
    SHAPE_OP("Slice", tdm_op_slice_infer, tdm_op_slice_run),
    SHAPE_OP("Expand", tdm_op_expand_infer, tdm_op_expand_run),
    SHAPE_OP("Tile", tdm_op_tile_infer, tdm_op_tile_run),
    SHAPE_OP("Pad", tdm_op_pad_infer, tdm_op_pad_run),
    SHAPE_OP("Where", tdm_op_where_infer, tdm_op_where_run),
    SHAPE_OP("Trilu", tdm_op_trilu_infer, tdm_op_trilu_run),
    SHAPE_OP("Gather", tdm_op_gather_infer, tdm_op_gather_run),
    SHAPE_OP("GatherElements", tdm_op_gather_elements_infer, tdm_op_gather_elements_run),
    SHAPE_OP("GatherND", tdm_op_gather_nd_infer, tdm_op_gather_nd_run),
    SHAPE_OP("ScatterElements", tdm_op_scatter_elements_infer, tdm_op_scatter_elements_run),
    SHAPE_OP("Scatter", tdm_op_scatter_elements_infer, tdm_op_scatter_elements_run),
    SHAPE_OP("ScatterND", tdm_op_scatter_nd_infer, tdm_op_scatter_nd_run),
    SHAPE_OP("OneHot", tdm_op_one_hot_infer, tdm_op_one_hot_run),
    SHAPE_OP("NonZero", tdm_op_non_zero_infer, tdm_op_non_zero_run),
    SHAPE_OP("Compress", tdm_op_compress_infer, tdm_op_compress_run),
    SHAPE_OP("ReverseSequence", tdm_op_reverse_sequence_infer, tdm_op_reverse_sequence_run),
    SHAPE_OP("Resize", tdm_op_resize_infer, tdm_op_resize_run),
    SHAPE_OP("Upsample", tdm_op_resize_infer, tdm_op_resize_run),
    {.name = NULL},
};

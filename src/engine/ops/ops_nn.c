/*
 * Op table of the neural-network group: convolutions, pooling, matrix
 * multiplies, normalisations and the fused ops that passes create.
 * Kernels live in nn_*.c; their entry points are declared in nn_ops.h.
 */
#include "engine/op.h"
#include "engine/ops/nn_ops.h"

const tdm_op tdm_ops_nn[] = {
    /* matmul/attention/layernorm entries (nn_matmul.c, nn_attention.c, nn_layernorm.c) */
    /* conv/pool/batchnorm entries (nn_conv.c, nn_pool.c, nn_norm.c) */
    {.name = NULL},
};

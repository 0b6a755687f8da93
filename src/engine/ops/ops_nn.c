/*
 * Op table of the neural-network group: convolutions, pooling, matrix
 * multiplies, normalisations and the fused ops that passes create.
 * Kernels live in nn_*.c; their entry points are declared in nn_ops.h.
 */
#include "engine/op.h"
#include "engine/ops/nn_ops.h"

const tdm_op tdm_ops_nn[] = {
    /* matmul/attention/layernorm entries (nn_matmul.c, nn_attention.c, nn_layernorm.c) */
    {"", "MatMul", tdm_matmul_infer, tdm_matmul_run, NULL, NULL},
    {"", "Gemm", tdm_gemm_infer, tdm_gemm_run, NULL, NULL},
    {"tandem", "FusedMatMul", tdm_fused_matmul_infer, tdm_fused_matmul_run, NULL, NULL},
    {"tandem", "Attention", tdm_attention_infer, tdm_attention_run, NULL, NULL},
    {"", "LayerNormalization", tdm_layernorm_infer, tdm_layernorm_run, NULL, NULL},
    /* conv/pool/batchnorm entries (nn_conv.c, nn_pool.c, nn_norm.c) */
    {"", "Conv", tdm_conv_infer, tdm_conv_run, tdm_conv_prepare, tdm_conv_release},
    {"", "ConvTranspose", tdm_conv_transpose_infer, tdm_conv_transpose_run, NULL, NULL},
    {"", "MaxPool", tdm_maxpool_infer, tdm_maxpool_run, NULL, NULL},
    {"", "AveragePool", tdm_avgpool_infer, tdm_avgpool_run, NULL, NULL},
    {"", "GlobalAveragePool", tdm_global_pool_infer, tdm_global_avgpool_run, NULL, NULL},
    {"", "GlobalMaxPool", tdm_global_pool_infer, tdm_global_maxpool_run, NULL, NULL},
    {"", "BatchNormalization", tdm_batchnorm_infer, tdm_batchnorm_run, NULL, NULL},
    {"", "InstanceNormalization", tdm_instancenorm_infer, tdm_instancenorm_run, NULL, NULL},
    {.name = NULL},
};

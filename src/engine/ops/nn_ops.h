/*
 * Entry points of the neural-network ops, referenced by the table in ops_nn.c.
 */
#ifndef TANDEM_OPS_NN_OPS_H
#define TANDEM_OPS_NN_OPS_H

#include "engine/op.h"

/* matmul / gemm / fused matmul / attention / layernorm */
tdm_status tdm_matmul_infer(tdm_op_ctx *ctx);
tdm_status tdm_matmul_run(tdm_op_ctx *ctx);
tdm_status tdm_gemm_infer(tdm_op_ctx *ctx);
tdm_status tdm_gemm_run(tdm_op_ctx *ctx);
tdm_status tdm_fused_matmul_infer(tdm_op_ctx *ctx);
tdm_status tdm_fused_matmul_run(tdm_op_ctx *ctx);
tdm_status tdm_attention_infer(tdm_op_ctx *ctx);
tdm_status tdm_attention_run(tdm_op_ctx *ctx);
tdm_status tdm_layernorm_infer(tdm_op_ctx *ctx);
tdm_status tdm_layernorm_run(tdm_op_ctx *ctx);

/* conv / conv transpose / pooling / batch and instance norm */
tdm_status tdm_conv_infer(tdm_op_ctx *ctx);
tdm_status tdm_conv_run(tdm_op_ctx *ctx);
tdm_status tdm_conv_prepare(tdm_op_ctx *ctx);
void tdm_conv_release(void *state);
tdm_status tdm_conv_transpose_infer(tdm_op_ctx *ctx);
tdm_status tdm_conv_transpose_run(tdm_op_ctx *ctx);
tdm_status tdm_maxpool_infer(tdm_op_ctx *ctx);
tdm_status tdm_maxpool_run(tdm_op_ctx *ctx);
tdm_status tdm_avgpool_infer(tdm_op_ctx *ctx);
tdm_status tdm_avgpool_run(tdm_op_ctx *ctx);
tdm_status tdm_global_pool_infer(tdm_op_ctx *ctx);
tdm_status tdm_global_avgpool_run(tdm_op_ctx *ctx);
tdm_status tdm_global_maxpool_run(tdm_op_ctx *ctx);
tdm_status tdm_batchnorm_infer(tdm_op_ctx *ctx);
tdm_status tdm_batchnorm_run(tdm_op_ctx *ctx);
tdm_status tdm_instancenorm_infer(tdm_op_ctx *ctx);
tdm_status tdm_instancenorm_run(tdm_op_ctx *ctx);

#endif

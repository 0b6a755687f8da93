/*
 * Entry points of the neural-network ops, referenced by the table in ops_nn.c.
 */
#ifndef TANDEM_OPS_NN_OPS_H
#define TANDEM_OPS_NN_OPS_H

#include "engine/op.h"

/* matmul / gemm / fused matmul / attention / layernorm */

/* conv / conv transpose / pooling / batch and instance norm */

#endif

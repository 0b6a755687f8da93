/*
 * ONNX reader internals shared with the conformance runner and the tests.
 *
 * The public entry points (tdm_graph_load, tdm_graph_load_buffer) live in
 * include/tandem/graph.h. This header adds what a tool needs beyond loading
 * whole models: the ONNX backend test suite stores its inputs and expected
 * outputs as standalone serialized TensorProto messages (input_0.pb, ...),
 * which the conformance runner decodes with the same tensor decoder that
 * the model loader uses for initializers.
 *
 * The limits below bound what a hostile file can make the loader allocate
 * before it has proven that the bytes exist: names, attribute lists and node
 * arities are small in every real model.
 */
#ifndef TANDEM_ENGINE_ONNX_ONNX_H
#define TANDEM_ENGINE_ONNX_ONNX_H

#include <stddef.h>
#include <stdint.h>

#include "tandem/status.h"
#include "tandem/tensor.h"

#define TDM_ONNX_MAX_NAME (64u * 1024u)      /* bytes of a tensor, node or op name */
#define TDM_ONNX_MAX_ATTR_STRING (64u << 20) /* bytes of one string attribute */
#define TDM_ONNX_MAX_ATTRS 4096              /* attributes of one node */
#define TDM_ONNX_MAX_NODE_IO 65536           /* inputs or outputs of one node */
#define TDM_ONNX_MAX_OPSET_IMPORTS 1024
#define TDM_ONNX_DEFAULT_MAX_FILE ((uint64_t)4 << 30)

/*
 * Parses one serialized TensorProto into an owned tensor (64-byte aligned).
 * *name receives a malloc'd copy of the tensor's name, or NULL when it has
 * none; name itself may be NULL. External data is refused (there is no
 * directory to resolve it against). On failure *out is left empty.
 */
tdm_status tdm_onnx_parse_tensor(const void *buf, size_t len, tdm_tensor *out, char **name,
                                 tdm_err *err);

#endif

/*
 * A BERT encoder built directly from Hugging Face weights onto the engine IR.
 *
 * Instead of going through an ONNX export, the builder writes the graph that
 * the fusion passes would have produced from one: Gather embeddings,
 * LayerNormalization, and per layer three tandem.FusedMatMul projections,
 * one tandem.Attention, a FusedMatMul with the residual in its epilogue
 * (input 3) + LayerNormalization, and the feed-forward pair with the
 * activation in the first FusedMatMul's epilogue and the residual in the
 * second's (with another linear_op, the residual is a separate Add). The result is an ordinary
 * tdm_graph, so sessions, plans and split inference (tdm_session_run_range) work on it unchanged.
 *
 * Tensor names (stable, for cuts):
 *   inputs   input_ids, attention_mask, token_type_ids (when the model has
 *            token type embeddings): int64 [batch, seq]
 *   extended_attention_mask   float [batch, 1, 1, seq], (1 - mask) * lowest float
 *   embeddings.output         [batch, seq, hidden]
 *   layer.<i>.output          [batch, seq, hidden] for i < layers - 1
 *   last_hidden_state         the last layer's output (the graph output)
 * A tail that starts at layer.<i>.output needs attention_mask (or
 * extended_attention_mask) in its frontier as well.
 *
 * Weights are borrowed from the mapped safetensors file, whose mapping the
 * graph takes over. Linear weights are the exception: Hugging Face stores
 * them [out, in], and the GEMM reads B in place but repacks B^T on every
 * call, so they are transposed once at load into owned [in, out] tensors
 * (named "<name>^T") and their pages of the mapping are released; a float32
 * model's weights still exist about once in memory.
 */
#ifndef TANDEM_ENGINE_BUILDERS_BERT_H
#define TANDEM_ENGINE_BUILDERS_BERT_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/ir.h"
#include "engine/safetensors.h"
#include "tandem/status.h"

typedef struct tdm_bert_config {
    int64_t vocab_size, hidden, layers, heads, intermediate, max_positions, type_vocab;
    float layer_norm_eps;
    char act[24]; /* the epilogue activation name: "Gelu" or "Relu" */
} tdm_bert_config;

/* Reads and checks a Hugging Face config.json (model_type bert or a compatible one). */
tdm_status tdm_bert_config_load(const char *path, tdm_bert_config *cfg, tdm_err *err);

typedef struct tdm_bert_build_options {
    /*
     * The op every linear layer becomes: NULL means tandem.FusedMatMul.
     * Another op taking the same inputs (A, W [in, out], bias) and the same
     * attributes (activation, transB = 0) can be put in its place, e.g. a
     * quantised MatMul; the builder emits all linear layers through one
     * function so the choice is made once.
     */
    const char *linear_domain, *linear_op;
} tdm_bert_build_options;

/*
 * Builds the encoder graph from cfg and the weights in st. Every weight's
 * shape is checked against cfg, naming the tensor. On success the graph owns
 * st's mapping (tdm_safetensors_take_image) and st may be freed.
 */
tdm_status tdm_bert_build(const tdm_bert_config *cfg, tdm_safetensors *st,
                          const tdm_bert_build_options *opt, tdm_graph **out, tdm_err *err);

/* config.json + model.safetensors of a directory into a graph. */
tdm_status tdm_bert_load_dir(const char *dir, const tdm_bert_build_options *opt, tdm_graph **out,
                             tdm_bert_config *cfg, tdm_err *err);

#endif

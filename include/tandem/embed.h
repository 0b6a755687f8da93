/*
 * Sentence embeddings: a BERT-style encoder, pooling and normalisation.
 *
 * An embedder is loaded from either
 *   - a sentence-transformers model directory (config.json, model.safetensors,
 *     the tokenizer files, modules.json, 1_Pooling/config.json,
 *     sentence_bert_config.json): the encoder graph is built directly from the
 *     safetensors weights on the engine's IR, so it runs (and splits at
 *     layer boundaries) like any loaded ONNX graph; or
 *   - an ONNX file (an exported encoder whose first output is
 *     last_hidden_state): the tokenizer and the pooling settings come from the
 *     model directory, which is the .onnx file's parent's parent
 *     (`bert-tiny/onnx/model.onnx` -> `bert-tiny/`), or from
 *     opt->tokenizer_dir when given. Without pooling files the embedder uses
 *     mean pooling and L2 normalisation.
 *
 * Texts of different lengths are sorted by token count and batched with their
 * neighbours, so padding is only added within a batch of similar lengths; the
 * results come back in the caller's order.
 *
 * Threads: an embedder owns one engine session, which is used by one thread
 * at a time. Use one embedder per thread, or serialise calls with a mutex.
 * The options' `threads` are the engine's worker threads inside one call.
 */
#ifndef TANDEM_EMBED_H
#define TANDEM_EMBED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tandem/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tdm_embedder tdm_embedder;

typedef struct tdm_embedder_options {
    int threads;               /* engine worker threads per call; <= 0 means 1 */
    int max_len;               /* token truncation; <= 0: the model's max_seq_length (else 512) */
    int batch;                 /* texts per engine run; <= 0 means 32 */
    const char *tokenizer_dir; /* tokenizer + pooling directory for an .onnx path; NULL = derive */
    bool int8;                 /* int8 weights for the encoder's linear layers (approximate) */
} tdm_embedder_options;

/* Loads an embedder from a model directory or an .onnx file (see above). */
tdm_status tdm_embedder_load(const char *path, const tdm_embedder_options *opt, tdm_embedder **out,
                             tdm_err *err);
void tdm_embedder_free(tdm_embedder *e);

/* Embedding dimension (the encoder's hidden size). */
int tdm_embedder_dim(const tdm_embedder *e);
/* The effective truncation length in tokens. */
int tdm_embedder_max_len(const tdm_embedder *e);

/*
 * Embeds n UTF-8 texts into out (n * dim floats, row i for text i),
 * L2-normalised when the model's pooling configuration says so. On error
 * nothing useful is in out and the message names the failing text's index.
 */
tdm_status tdm_embedder_embed(tdm_embedder *e, const char *const *texts, int n, float *out,
                              tdm_err *err);

/*
 * The lower-level call for benchmarks and callers that tokenise themselves:
 * n sequences of token ids (ids[i] holds lens[i] ids, already including the
 * special tokens and truncated) into out (n * dim floats). Sequences are
 * batched by length like tdm_embedder_embed.
 */
tdm_status tdm_embedder_embed_ids(tdm_embedder *e, const int32_t *const *ids, const int *lens,
                                  int n, float *out, tdm_err *err);

#ifdef __cplusplus
}
#endif
#endif

/*
 * Sentence pooling: token vectors of one sequence -> one sentence vector.
 *
 * What sentence-transformers' Pooling and Normalize modules do, read from a
 * model directory's modules.json and <pooling dir>/config.json. Only one
 * pooling mode at a time is supported (sentence-transformers can concatenate
 * several; such a config is refused with a message rather than half-honoured).
 */
#ifndef TANDEM_TEXT_POOLING_H
#define TANDEM_TEXT_POOLING_H

#include <stdbool.h>
#include <stdint.h>

#include "tandem/status.h"

typedef enum tdm_pooling_mode {
    TDM_POOLING_MEAN = 0,      /* average over the attention mask */
    TDM_POOLING_CLS,           /* the first token */
    TDM_POOLING_MAX,           /* per-dimension maximum over real tokens */
    TDM_POOLING_MEAN_SQRT_LEN, /* sum / sqrt(tokens) */
} tdm_pooling_mode;

typedef struct tdm_pooling {
    tdm_pooling_mode mode;
    bool normalize;     /* L2-normalise the pooled vector */
    int max_seq_length; /* sentence_bert_config.json, 0 when absent */
} tdm_pooling;

/* "mean", "cls", "max", "mean_sqrt_len". */
const char *tdm_pooling_mode_name(tdm_pooling_mode m);

/*
 * Reads the pooling settings of a model directory. Without modules.json the
 * result is mean pooling with normalisation (the common sentence-embedding
 * recipe); a present but malformed file is an error naming it.
 */
tdm_status tdm_pooling_load(const char *dir, tdm_pooling *p, tdm_err *err);

/*
 * Pools one sequence: h is [seq, dim] (row stride dim), mask[t] != 0 marks
 * real tokens (NULL: all real). Writes dim floats to out, normalised when
 * p->normalize. Accumulates in double so the result does not depend on the
 * sequence's padding.
 */
void tdm_pooling_apply(const tdm_pooling *p, const float *h, const int64_t *mask, int64_t seq,
                       int64_t dim, float *out);

#endif

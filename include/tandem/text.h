/*
 * Text: the WordPiece tokenizer of BERT-style models.
 *
 * The tokenizer reproduces Hugging Face `tokenizers` (BertNormalizer,
 * BertPreTokenizer, WordPiece, the post-processor's [CLS]/[SEP]) id for id,
 * so that a model fed by tandem sees exactly what it was trained and
 * exported with. It loads a model directory as Hugging Face lays it out:
 * `vocab.txt` (or the vocabulary inside `tokenizer.json`), and the settings
 * of `tokenizer.json` (lowercase, strip_accents, handle_chinese_chars,
 * clean_text, special and added tokens) or, without it, `tokenizer_config.json`.
 * The truncation and padding settings stored in tokenizer.json are ignored:
 * callers choose max_len per call.
 *
 * A loaded tokenizer is immutable: any number of threads may encode with it
 * at once.
 */
#ifndef TANDEM_TEXT_H
#define TANDEM_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "tandem/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tdm_tokenizer tdm_tokenizer;

/*
 * Loads the tokenizer of a model directory. Errors name the file and the
 * field at fault (a missing vocab.txt and tokenizer.json, an unsupported
 * normalizer type, an unknown [UNK] token...).
 */
tdm_status tdm_tokenizer_load(const char *dir, tdm_tokenizer **out, tdm_err *err);
void tdm_tokenizer_free(tdm_tokenizer *tok);

/*
 * Encodes one UTF-8 text: [CLS] wordpieces [SEP] (whatever the model's
 * post-processor adds). max_len > 0 truncates like Hugging Face: the
 * wordpieces are cut so that the whole sequence, special tokens included, has
 * at most max_len ids (max_len smaller than the special tokens is an error);
 * 0 means no limit. *n receives the number of ids; when it exceeds cap,
 * only cap ids are written and TDM_ERR_INVALID_ARG is returned, so a caller
 * can retry with a larger buffer. tdm_tokenizer_encode_bound(tok, len) ids
 * are always enough. Invalid UTF-8 is an error naming the byte offset.
 */
tdm_status tdm_tokenizer_encode(const tdm_tokenizer *tok, const char *utf8, size_t len,
                                size_t max_len, int32_t *ids, size_t cap, size_t *n, tdm_err *err);

/* An upper bound on the ids of a text of len bytes (every token comes from >= 1 byte). */
size_t tdm_tokenizer_encode_bound(const tdm_tokenizer *tok, size_t len);

/*
 * A batch of encoded texts, padded to the longest one: row i of ids holds
 * the ids of text i followed by the pad id; attention_mask is 1 on real
 * tokens and 0 on padding; token_type_ids is all zeros (single sentences).
 * int64 because that is what exported BERT models take as inputs.
 */
typedef struct tdm_token_batch {
    size_t n;                /* texts (rows) */
    size_t seq_len;          /* columns: the longest encoding */
    int64_t *ids;            /* n * seq_len */
    int64_t *attention_mask; /* n * seq_len */
    int64_t *token_type_ids; /* n * seq_len */
    size_t *lengths;         /* real tokens of each row */
} tdm_token_batch;

/*
 * Encodes n texts (texts[i] of lens[i] bytes) with the same max_len rule as
 * tdm_tokenizer_encode into *out, which the caller releases with
 * tdm_token_batch_free. On error *out is left empty and the message names the
 * index of the failing text.
 */
tdm_status tdm_tokenizer_encode_batch(const tdm_tokenizer *tok, const char *const *texts,
                                      const size_t *lens, size_t n, size_t max_len,
                                      tdm_token_batch *out, tdm_err *err);
void tdm_token_batch_free(tdm_token_batch *b);

/* Vocabulary size (the largest id + 1). */
size_t tdm_tokenizer_vocab_size(const tdm_tokenizer *tok);
/* The id of an exact token string, or -1. */
int32_t tdm_tokenizer_token_to_id(const tdm_tokenizer *tok, const char *token);
/* The token string of an id (NUL-terminated), or NULL when no token has it. */
const char *tdm_tokenizer_id_to_token(const tdm_tokenizer *tok, int32_t id);
/* The padding id (tokenizer.json's padding.pad_id, else [PAD], else 0). */
int32_t tdm_tokenizer_pad_id(const tdm_tokenizer *tok);

#ifdef __cplusplus
}
#endif
#endif

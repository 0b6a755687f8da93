/*
 * Internals of the WordPiece tokenizer, shared by its files and unit tests.
 *
 * The pipeline of one text, mirroring Hugging Face tokenizers:
 *   1. UTF-8 -> code points (validated);
 *   2. split out added tokens that match the raw text ([CLS], [MASK], ...);
 *   3. BertNormalizer on each remaining piece (normalize.c);
 *   4. split out added tokens that match normalized text;
 *   5. BertPreTokenizer + WordPiece (wordpiece.c);
 *   6. post-processor: prefix/suffix special ids, truncation (tokenizer.c).
 * Code points travel as uint32 arrays in growable vectors that an encode
 * call reuses across the pieces of a text and the texts of a batch.
 */
#ifndef TANDEM_TEXT_INTERNAL_H
#define TANDEM_TEXT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tandem/status.h"
#include "tandem/text.h"

/* ---- growable vectors ---------------------------------------------------------------- */

typedef struct tdm_u32vec {
    uint32_t *v;
    size_t n, cap;
} tdm_u32vec;

typedef struct tdm_i32vec {
    int32_t *v;
    size_t n, cap;
} tdm_i32vec;

typedef struct tdm_bytevec {
    unsigned char *v;
    size_t n, cap;
} tdm_bytevec;

/* Ensures room for extra more elements; false on overflow or OOM. */
bool tdm_u32vec_reserve(tdm_u32vec *a, size_t extra);
bool tdm_i32vec_reserve(tdm_i32vec *a, size_t extra);
bool tdm_bytevec_reserve(tdm_bytevec *a, size_t extra);

/*
 * Decodes UTF-8 into code points (out is replaced). Returns false at the
 * first ill-formed byte, whose offset goes to *bad_at; OOM also returns
 * false with *bad_at = SIZE_MAX.
 */
bool tdm_utf8_to_u32(const char *s, size_t len, tdm_u32vec *out, size_t *bad_at);

/* ---- BertNormalizer (normalize.c) ------------------------------------------------------ */

typedef struct tdm_bert_norm {
    bool clean_text;           /* drop controls, map whitespace to ' ' */
    bool handle_chinese_chars; /* ' ' around CJK ideographs */
    bool strip_accents;        /* NFD, then drop nonspacing marks */
    bool lowercase;            /* Rust char::to_lowercase */
} tdm_bert_norm;

/*
 * Normalizes in[0..n) into out (replaced); tmp is scratch. Returns false on
 * OOM only.
 */
bool tdm_bert_normalize(const tdm_bert_norm *opt, const uint32_t *in, size_t n, tdm_u32vec *tmp,
                        tdm_u32vec *out);

/* ---- vocabulary and WordPiece (wordpiece.c) ---------------------------------------------- */

/*
 * A hash slot: 8 bytes, so that the table of a 30k vocabulary (64k slots)
 * stays in L2. The key length rides with the id, so most probes are decided
 * without leaving the slot.
 */
typedef struct tdm_vocab_slot {
    uint32_t hash;
    uint32_t idlen; /* id << 8 | min(key length, 255); UINT32_MAX: empty */
} tdm_vocab_slot;

typedef struct tdm_vocab {
    char *pool; /* token strings, each NUL-terminated */
    size_t pool_len, pool_cap;
    uint32_t *off; /* by id: offset in pool, UINT32_MAX when no token has the id */
    uint32_t *len; /* by id */
    size_t size;   /* largest id + 1 */
    size_t off_cap;
    tdm_vocab_slot *full;        /* open addressing: every token */
    tdm_vocab_slot *cont;        /* tokens starting with the prefix, keyed without it */
    size_t full_mask, cont_mask; /* a table has mask + 1 slots (a power of two) */
    size_t max_full, max_cont;   /* longest key in bytes */
    char prefix[16];             /* continuing_subword_prefix ("##") */
    size_t prefix_len;
} tdm_vocab;

/* Ids must be below this (they share a 32-bit slot word with a length byte). */
#define TDM_VOCAB_MAX_ID 0xFFFFFF

/* Starts an empty vocabulary; false when the prefix is longer than 15 bytes. */
bool tdm_vocab_init(tdm_vocab *v, const char *prefix);
/* Adds a token with its id (a later duplicate token string wins); false on OOM or bad id. */
bool tdm_vocab_add(tdm_vocab *v, const char *tok, size_t len, int32_t id);
/* Builds the lookup tables after the last add; false on OOM. */
bool tdm_vocab_finish(tdm_vocab *v);
void tdm_vocab_free(tdm_vocab *v);
/* Id of the exact token s[0..len), or -1. */
int32_t tdm_vocab_lookup(const tdm_vocab *v, const char *s, size_t len);
/* Id of prefix + s[0..len), or -1. */
int32_t tdm_vocab_lookup_cont(const tdm_vocab *v, const char *s, size_t len);

typedef struct tdm_wordpiece {
    tdm_vocab vocab;
    int32_t unk_id;
    size_t max_chars; /* longer words become unk (max_input_chars_per_word) */
} tdm_wordpiece;

/* Scratch of one encode call. */
typedef struct tdm_wp_scratch {
    tdm_bytevec word; /* UTF-8 of the current word */
    tdm_u32vec offs;  /* byte offset of each character of the word, plus the end */
} tdm_wp_scratch;

/*
 * BertPreTokenizer + WordPiece over normalized code points: splits on
 * whitespace (dropped) and punctuation (kept, one per word), and appends each
 * word's wordpieces (or unk_id) to out, stopping after the first word that
 * brings out->n to limit or beyond (truncation needs no more). Returns false
 * on OOM only.
 */
bool tdm_wordpiece_encode(const tdm_wordpiece *wp, const uint32_t *cps, size_t n, size_t limit,
                          tdm_wp_scratch *s, tdm_i32vec *out);

#endif

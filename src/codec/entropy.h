/*
 * Symbol streams: how the codec stores a run of 4- or 8-bit symbols.
 *
 * A stream is self-delimiting and picks the smallest of four methods: raw
 * bytes (4-bit symbols packed two to a byte), a constant (one symbol
 * repeated), a static rANS coder, or (frame version 2) runs of equal
 * symbols whose literals and lengths are themselves rANS streams. The rANS coder is two-pass
 * (count, then code with normalised 12-bit frequencies) with a 32-bit state, 16-bit renormalisation
 * and four interleaved states sharing one word stream, so the decoder has four independent
 * dependency chains. Context modelling: the table used for a symbol is chosen by the "magnitude
 * buckets" of the two previous symbols (symbols are offsets from the zero point, so bucket 0 means
 * zero, and a run of zeros selects a table where zero is nearly free). The encoder estimates the
 * size under six context models, from one table to sixteen, and keeps the cheapest including the
 * cost of its tables, so the model pays for itself or is not used. Frame version 2 adds a fifth
 * kind, context-modelled streams (ctxcode.h: adaptive binary decisions whose contexts see the
 * symbol above in the tensor's 2-D map), tried only when the caller passes a row length
 * (tdm_sym_encode_row) and kept only when it saves 2%.
 */
#ifndef TANDEM_CODEC_ENTROPY_H
#define TANDEM_CODEC_ENTROPY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec/bytes.h"
#include "tandem/status.h"

enum {
    TDM_SYM_RAW = 0,
    TDM_SYM_CONST = 1,
    TDM_SYM_RANS = 2,
    TDM_SYM_RUNS = 3, /* frame version 2: runs of equal symbols (see entropy.c) */
    TDM_SYM_CTX = 4,  /* frame version 2: context-modelled binary coder (see ctxcode.h) */
};

/* The newest stream format: version 2 adds run-length streams. */
#define TDM_SYM_VERSION 2u

#define TDM_SYM_NMODELS 6

/* What the encoder chose (for benchmarks and docs). */
typedef struct tdm_sym_stats {
    unsigned method;     /* TDM_SYM_* */
    unsigned model;      /* context model of a rANS stream (0 = one table) */
    unsigned nctx;       /* tables in the stream */
    size_t table_bytes;  /* serialised frequency tables */
    size_t stream_bytes; /* whole stream including its header */
    size_t runs;         /* runs of a run-length stream */
} tdm_sym_stats;

/* Bytes of n symbols of `bits` bits stored raw. */
static inline size_t tdm_sym_raw_bytes(size_t n, unsigned bits)
{
    return bits == 4 ? n / 2 + (n & 1) : n;
}

/* Largest stream tdm_sym_encode appends for n symbols (raw + 1 header byte). */
static inline size_t tdm_sym_bound(size_t n, unsigned bits)
{
    return tdm_sym_raw_bytes(n, bits) + 1;
}

/*
 * Appends the stream of sym[0, n) to w (bits is 4 or 8; every symbol must be
 * below 2^bits). entropy=false stores raw bytes. Running out of room in w is
 * noted in w, not returned; the status is for allocation failures.
 */
tdm_status tdm_sym_encode(const uint8_t *sym, size_t n, unsigned bits, bool entropy, tdm_wbuf *w,
                          tdm_sym_stats *stats, tdm_err *err);
/* The same for a frame of `version`: version 1 writes no run-length stream. */
tdm_status tdm_sym_encode_v(const uint8_t *sym, size_t n, unsigned bits, bool entropy,
                            unsigned version, tdm_wbuf *w, tdm_sym_stats *stats, tdm_err *err);

/*
 * The same with the length of a row of the symbols' 2-D map (the tensor's
 * last dimension; 0 when the symbols have no rows): with a row and version
 * >= 2 the encoder also tries a context-modelled stream whose contexts see
 * the symbol above, and keeps it only when it is smaller.
 */
tdm_status tdm_sym_encode_row(const uint8_t *sym, size_t n, unsigned bits, bool entropy,
                              unsigned version, size_t row, tdm_wbuf *w, tdm_sym_stats *stats,
                              tdm_err *err);

/*
 * Reads a stream of exactly n symbols from r into sym. `what` names the
 * stream in error messages. Corrupt or truncated streams give TDM_ERR_PARSE.
 * tdm_sym_decode_v reads a stream of a frame of `version`: a version-1
 * frame may not hold run-length streams. tdm_sym_decode reads the newest.
 */
tdm_status tdm_sym_decode_v(tdm_rbuf *r, uint8_t *sym, size_t n, unsigned bits, unsigned version,
                            const char *what, tdm_err *err);
tdm_status tdm_sym_decode(tdm_rbuf *r, uint8_t *sym, size_t n, unsigned bits, const char *what,
                          tdm_err *err);

#endif

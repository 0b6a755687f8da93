/*
 * Context-modelled symbol streams (frame version 2, stream header 0x07): an
 * adaptive binary range coder whose contexts see the symbol to the left and
 * the symbols above (same channel, previous row) of a 2-D map.
 *
 * Why a second coder beside the static rANS one: on the small sparse maps a
 * cut produces (a few thousand symbols) a static coder pays for its tables
 * and an order-2 context misses the structure an LZ coder finds, a row that
 * repeats the row above. Coding "equal to the left symbol?" and "equal to
 * the symbol above?" first, then zero, sign and an Elias-gamma-like
 * magnitude, each decision with an adaptive probability in its own context,
 * needs no tables and captures that structure. The encoder keeps it only
 * when it is smaller than the static stream (see entropy.c).
 */
#ifndef TANDEM_CODEC_CTXCODE_H
#define TANDEM_CODEC_CTXCODE_H

#include <stddef.h>
#include <stdint.h>

#include "codec/bytes.h"
#include "tandem/status.h"

/* The stream header byte of a context-modelled stream (method 3 with model bits 1). */
#define TDM_CTX_HDR 0x07u

/*
 * Writes the body of a context-modelled stream of sym[0, n) (bits 4 or 8,
 * row = length of a row of the map, 0 when there is no row above; row >= n
 * counts as 0) to out, at most cap bytes: varint row, varint nbytes, the
 * range coder's bytes. Returns the bytes written, or 0 when they do not fit
 * in cap (the caller then keeps another method).
 */
size_t tdm_ctx_encode(const uint8_t *sym, size_t n, unsigned bits, size_t row, uint8_t *out,
                      size_t cap);

/*
 * Reads the body of a context-modelled stream of exactly n symbols (after
 * the header byte). Every byte is untrusted: a row above n, a byte count
 * above what is left, a symbol outside the alphabet, bytes left over or
 * missing give TDM_ERR_PARSE naming `what`.
 */
tdm_status tdm_ctx_decode(tdm_rbuf *r, uint8_t *sym, size_t n, unsigned bits, const char *what,
                          tdm_err *err);

#endif

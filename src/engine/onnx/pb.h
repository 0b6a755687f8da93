/*
 * A minimal protobuf wire-format decoder.
 *
 * ONNX files are protobuf messages, but linking libprotobuf (C++) or
 * generating code for the ONNX schema would be a large dependency for the
 * handful of messages a loader needs. The wire format itself is small:
 * every field is a tag (field number and wire type) followed by a varint, a
 * fixed 4- or 8-byte value, or a length-prefixed byte range. This decoder
 * walks one message at a time over a borrowed (pointer, length) buffer and
 * never copies: a length-delimited field is returned as a pointer into the
 * buffer, and a sub-message is decoded by opening a new reader over it.
 *
 * Everything is bounds-checked against the enclosing message, so a length
 * that points past its parent is an error, not a read past the buffer.
 * Every reader remembers the start of the whole buffer so that errors can
 * name the absolute byte offset at fault. Nesting depth is bounded because
 * the callers recurse once per sub-message.
 *
 * Unknown fields are skipped for every wire type except the deprecated
 * groups (3/4), which ONNX never uses and which would need a recursive skip;
 * they are refused as unsupported. Repeated scalars may be packed (one
 * length-delimited field holding the values back to back) or unpacked (one
 * field per value); the helpers below count and decode both forms so that a
 * caller can size its array before filling it.
 */
#ifndef TANDEM_ENGINE_ONNX_PB_H
#define TANDEM_ENGINE_ONNX_PB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tandem/status.h"

#define TDM_PB_MAX_DEPTH 32

enum {
    TDM_PB_VARINT = 0,
    TDM_PB_FIXED64 = 1,
    TDM_PB_LEN = 2,
    TDM_PB_SGROUP = 3,
    TDM_PB_EGROUP = 4,
    TDM_PB_FIXED32 = 5,
};

/* A cursor over one message. */
typedef struct tdm_pb {
    const uint8_t *p;    /* next byte to read */
    const uint8_t *end;  /* end of this message */
    const uint8_t *base; /* start of the whole buffer, for error offsets */
    int depth;           /* nesting depth of this message (0 = top) */
} tdm_pb;

/* One decoded field. */
typedef struct tdm_pb_field {
    uint32_t num;        /* field number (>= 1) */
    int wire;            /* TDM_PB_VARINT, FIXED64, LEN or FIXED32 */
    uint64_t u;          /* value of a VARINT, FIXED32 or FIXED64 field */
    const uint8_t *data; /* bytes of a LEN field */
    size_t len;
    size_t offset; /* offset of the field's tag from the buffer start */
} tdm_pb_field;

/* Opens a reader over a whole buffer. */
void tdm_pb_init(tdm_pb *r, const void *buf, size_t len);

/* True when no bytes are left in this message. */
static inline bool tdm_pb_done(const tdm_pb *r)
{
    return r->p >= r->end;
}

/* Offset of a pointer inside the buffer (for messages). */
static inline size_t tdm_pb_offset(const tdm_pb *r, const uint8_t *p)
{
    return (size_t)(p - r->base);
}

/*
 * Decodes the next field. Returns TDM_ERR_PARSE on a truncated or malformed
 * field and TDM_ERR_UNSUPPORTED for groups; the message names the offset.
 * Must not be called when tdm_pb_done().
 */
tdm_status tdm_pb_next(tdm_pb *r, tdm_pb_field *f, tdm_err *err);

/*
 * Opens a reader over the sub-message held by a LEN field of r. Fails when
 * the field is not length-delimited or the nesting would exceed
 * TDM_PB_MAX_DEPTH.
 */
tdm_status tdm_pb_sub(const tdm_pb *r, const tdm_pb_field *f, tdm_pb *sub, tdm_err *err);

/*
 * Decodes one varint at *p (not past end), advancing *p. At most 10 bytes;
 * a tenth byte above 1 (bits beyond 64) is refused. Returns false when
 * truncated or overlong.
 */
bool tdm_pb_varint(const uint8_t **p, const uint8_t *end, uint64_t *v);

/*
 * Repeated scalar fields. elem_wire is the wire type of one element:
 * TDM_PB_VARINT, TDM_PB_FIXED32 or TDM_PB_FIXED64. A field occurrence with
 * that wire type holds one value; a LEN occurrence holds a packed run.
 *
 * tdm_pb_count counts the values one occurrence holds (checking that a
 * packed run is well formed); tdm_pb_get_u64 decodes them as raw 64-bit
 * values (fixed32 zero-extended) into out[0..count). Both fail on any other
 * wire type, naming the offset.
 */
tdm_status tdm_pb_count(const tdm_pb *r, const tdm_pb_field *f, int elem_wire, size_t *count,
                        tdm_err *err);
tdm_status tdm_pb_get_u64(const tdm_pb *r, const tdm_pb_field *f, int elem_wire, uint64_t *out,
                          size_t count, tdm_err *err);

/*
 * Streams the values of one occurrence that tdm_pb_count has validated,
 * without a temporary array (tensors may hold millions of them).
 */
typedef struct tdm_pb_iter {
    const uint8_t *p, *end;
    int elem_bytes; /* 0 for varints */
    bool single;    /* an unpacked occurrence: one value in u */
    uint64_t u;
} tdm_pb_iter;
void tdm_pb_iter_init(tdm_pb_iter *it, const tdm_pb_field *f, int elem_wire);
/* Next raw value; false when exhausted. */
bool tdm_pb_iter_next(tdm_pb_iter *it, uint64_t *v);

/*
 * Checks that a field has the expected wire type; otherwise a parse error
 * "field N has wire type W, expected E at offset O".
 */
tdm_status tdm_pb_expect(const tdm_pb_field *f, int wire, tdm_err *err);

/* Reinterpretations of raw values. */
static inline float tdm_pb_as_float(uint64_t u)
{
    union {
        uint32_t u;
        float f;
    } c = {(uint32_t)u};
    return c.f;
}

static inline double tdm_pb_as_double(uint64_t u)
{
    union {
        uint64_t u;
        double d;
    } c = {u};
    return c.d;
}

#endif

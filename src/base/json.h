/*
 * A small JSON reader and writer (RFC 8259).
 *
 * The reader parses a whole text into a read-only tree owned by one
 * tdm_json_doc. Nodes and decoded strings live in a chunked arena: freeing
 * the document frees everything at once, and a tree of N values costs a few
 * large allocations rather than N small ones. Children of an array or object
 * are stored contiguously (collected on a scratch stack while parsing, then
 * copied once), so walking them is a plain loop.
 *
 * The reader is strict, because its inputs are files and network requests:
 * well-formed UTF-8 only, no trailing commas, comments, NaN or leading zeros,
 * \u escapes must pair surrogates, numbers must fit a double, and nesting is
 * limited (default 64) so that hostile input cannot exhaust the C stack.
 * Errors say where: "line 3, column 17: expected ':' after an object key".
 * Duplicate object keys are kept; tdm_json_get returns the last one, as
 * JavaScript and Python do.
 *
 * The writer appends to a growable buffer (tdm_json_buf) and records an
 * allocation failure in the buffer, so a sequence of appends needs one check
 * at the end.
 */
#ifndef TANDEM_BASE_JSON_H
#define TANDEM_BASE_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tandem/status.h"

typedef enum tdm_json_type {
    TDM_JSON_NULL = 0,
    TDM_JSON_BOOL,
    TDM_JSON_NUMBER,
    TDM_JSON_STRING,
    TDM_JSON_ARRAY,
    TDM_JSON_OBJECT,
} tdm_json_type;

typedef struct tdm_json tdm_json;
struct tdm_json {
    tdm_json_type type;
    bool boolean; /* TDM_JSON_BOOL */
    bool is_int;  /* TDM_JSON_NUMBER with an exact int64 value (3, -7, 3.0, 1e3) */
    size_t len;   /* string bytes, or array/object member count */
    union {
        double number;   /* TDM_JSON_NUMBER */
        const char *str; /* TDM_JSON_STRING: decoded UTF-8, NUL-terminated (may hold NULs) */
        tdm_json *items; /* TDM_JSON_ARRAY, TDM_JSON_OBJECT: the members, in order */
    };
    int64_t integer; /* TDM_JSON_NUMBER, valid when is_int */
    const char *key; /* for an object member: its name, NUL-terminated */
    size_t key_len;
};

typedef struct tdm_json_doc tdm_json_doc;

#define TDM_JSON_DEFAULT_DEPTH 64
#define TDM_JSON_MAX_DEPTH 1000

/*
 * Parses text[0..len) (one JSON value, surrounding whitespace allowed).
 * max_depth limits nesting of arrays/objects: 0 means TDM_JSON_DEFAULT_DEPTH,
 * larger than TDM_JSON_MAX_DEPTH is clamped. On error *out is NULL and err
 * says "line L, column C: what".
 */
tdm_status tdm_json_parse(const char *text, size_t len, int max_depth, tdm_json_doc **out,
                          tdm_err *err);

const tdm_json *tdm_json_root(const tdm_json_doc *doc);
void tdm_json_free(tdm_json_doc *doc);

/* The member named key of an object (the last one if repeated); NULL when absent or v is not
 * an object. */
const tdm_json *tdm_json_get(const tdm_json *v, const char *key);

/* The string of v (and its length), or NULL when v is NULL or not a string. */
const char *tdm_json_string(const tdm_json *v, size_t *len);

/* True when v is a number with an exact int64 value (e.g. 3 or 3.0 or 3e0); sets *out. */
bool tdm_json_int(const tdm_json *v, int64_t *out);

/* "null", "boolean", "number", "string", "array", "object". */
const char *tdm_json_type_name(tdm_json_type t);

/* ---- writer ---------------------------------------------------------------------- */

typedef struct tdm_json_buf {
    char *data; /* NUL-terminated while not failed */
    size_t len;
    size_t cap;
    bool failed; /* an allocation failed: contents are incomplete */
} tdm_json_buf;

/* Appends raw bytes (already JSON). */
void tdm_json_buf_raw(tdm_json_buf *b, const char *s, size_t len);
/* Appends a quoted, escaped string; invalid UTF-8 bytes become U+FFFD. */
void tdm_json_buf_string(tdm_json_buf *b, const char *s, size_t len);
void tdm_json_buf_i64(tdm_json_buf *b, int64_t v);
/* Shortest "%.17g"-exact form; NaN and infinities (not JSON) are written as null. */
void tdm_json_buf_f64(tdm_json_buf *b, double v);
/* Like f64 but with float precision (9 significant digits round-trip a float). */
void tdm_json_buf_f32(tdm_json_buf *b, float v);
/* Empties the buffer, keeping its memory; clears failed. */
void tdm_json_buf_reset(tdm_json_buf *b);
void tdm_json_buf_free(tdm_json_buf *b);

#endif

/*
 * Status codes and error messages.
 *
 * Every fallible function returns a tdm_status. What a user can cause (a bad
 * file, a wrong shape, an unsupported op) is a status with a message; broken
 * invariants inside the library are asserts. Messages go into a caller-owned
 * tdm_err so that there is no hidden global "last error": a caller that does
 * not care passes NULL.
 */
#ifndef TANDEM_STATUS_H
#define TANDEM_STATUS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum tdm_status {
    TDM_OK = 0,
    TDM_ERR_INVALID_ARG, /* caller passed something malformed */
    TDM_ERR_NOMEM,       /* an allocation failed or a size is hostile */
    TDM_ERR_IO,          /* a file could not be opened, read or written */
    TDM_ERR_PARSE,       /* a file or buffer is corrupt or truncated */
    TDM_ERR_UNSUPPORTED, /* valid input that this build cannot handle */
    TDM_ERR_SHAPE,       /* shapes or dtypes do not fit together */
    TDM_ERR_NOT_FOUND,   /* a named tensor, node or file does not exist */
    TDM_ERR_NEEDS_VALUE, /* shape inference needs a value known only at run time */
    TDM_ERR_INTERNAL,    /* a bug: please report */
} tdm_status;

#define TDM_ERR_MSG_MAX 512

/* A caller-owned message buffer. */
typedef struct tdm_err {
    char msg[TDM_ERR_MSG_MAX];
} tdm_err;

/* A short fixed name for a status ("invalid argument", ...). */
const char *tdm_status_str(tdm_status s);

/*
 * Formats a message into err (if not NULL) and returns s, so that error
 * paths read `return tdm_errf(err, TDM_ERR_PARSE, "...", ...);`.
 */
tdm_status tdm_errf(tdm_err *err, tdm_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Prefixes the message already in err with "prefix: " (for adding context). */
void tdm_err_prefix(tdm_err *err, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

#ifdef __cplusplus
}
#endif
#endif

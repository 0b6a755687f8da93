/*
 * Status names and message formatting.
 */
#include "tandem/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *tdm_status_str(tdm_status s)
{
    switch (s) {
    case TDM_OK: return "ok";
    case TDM_ERR_INVALID_ARG: return "invalid argument";
    case TDM_ERR_NOMEM: return "out of memory";
    case TDM_ERR_IO: return "i/o error";
    case TDM_ERR_PARSE: return "corrupt or truncated input";
    case TDM_ERR_UNSUPPORTED: return "unsupported";
    case TDM_ERR_SHAPE: return "shape or dtype mismatch";
    case TDM_ERR_NOT_FOUND: return "not found";
    case TDM_ERR_NEEDS_VALUE: return "value needed for shape inference";
    case TDM_ERR_INTERNAL: return "internal error";
    }
    return "unknown status";
}

tdm_status tdm_errf(tdm_err *err, tdm_status s, const char *fmt, ...)
{
    if (err != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return s;
}

void tdm_err_prefix(tdm_err *err, const char *fmt, ...)
{
    if (err == NULL)
        return;
    char head[TDM_ERR_MSG_MAX];
    char old[TDM_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(head, sizeof head, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    old[sizeof old - 1] = '\0';
    /* Truncation is fine here: the start of the message matters most. */
    size_t h = strlen(head), o = strlen(old), cap = sizeof err->msg - 1;
    if (h > cap)
        h = cap;
    memcpy(err->msg, head, h);
    size_t w = h;
    for (const char *sep = ": "; *sep && w < cap; sep++)
        err->msg[w++] = *sep;
    if (o > cap - w)
        o = cap - w;
    memcpy(err->msg + w, old, o);
    err->msg[w + o] = '\0';
}

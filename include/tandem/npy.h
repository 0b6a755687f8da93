/*
 * NumPy .npy files: the interchange format of `tandem run` and the tests.
 *
 * Versions 1.0, 2.0 and 3.0 of the format are read; 1.0 is written (2.0 when
 * the header would not fit). Supported dtypes: float32, float16 (kept as
 * float16), float64, int64, int32, int8, uint8, bool, little- or big-endian,
 * C order; Fortran order is refused with a clear message. A header that
 * promises more data than the file holds is an error, never a short read.
 */
#ifndef TANDEM_NPY_H
#define TANDEM_NPY_H

#include <stddef.h>

#include "tandem/status.h"
#include "tandem/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Parses a whole .npy image in memory into an owned tensor. */
tdm_status tdm_npy_parse(const void *buf, size_t len, tdm_tensor *out, tdm_err *err);
tdm_status tdm_npy_read(const char *path, tdm_tensor *out, tdm_err *err);

/* Serialises t into a malloc'd buffer (*buf, *len); caller frees. */
tdm_status tdm_npy_serialize(const tdm_tensor *t, void **buf, size_t *len, tdm_err *err);
tdm_status tdm_npy_write(const char *path, const tdm_tensor *t, tdm_err *err);

#ifdef __cplusplus
}
#endif
#endif

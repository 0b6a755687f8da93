/*
 * Tensors: a dtype, a shape and a pointer to dense row-major data.
 *
 * The dtype numbers are ONNX's TensorProto.DataType numbers so that readers
 * and writers need no translation table. A tensor either owns its data
 * (TDM_TENSOR_OWNS_DATA, freed by tdm_tensor_free) or borrows it from an
 * arena, a mapped file or the caller. Rank is bounded by TDM_MAX_DIMS; a
 * scalar has ndim 0 and one element.
 */
#ifndef TANDEM_TENSOR_H
#define TANDEM_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tandem/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TDM_MAX_DIMS 8

typedef enum tdm_dtype {
    TDM_DTYPE_UNDEFINED = 0,
    TDM_DTYPE_FLOAT32 = 1,
    TDM_DTYPE_UINT8 = 2,
    TDM_DTYPE_INT8 = 3,
    TDM_DTYPE_UINT16 = 4,
    TDM_DTYPE_INT16 = 5,
    TDM_DTYPE_INT32 = 6,
    TDM_DTYPE_INT64 = 7,
    TDM_DTYPE_STRING = 8,
    TDM_DTYPE_BOOL = 9,
    TDM_DTYPE_FLOAT16 = 10,
    TDM_DTYPE_FLOAT64 = 11,
    TDM_DTYPE_UINT32 = 12,
    TDM_DTYPE_UINT64 = 13,
    TDM_DTYPE_BFLOAT16 = 16,
} tdm_dtype;

enum { TDM_TENSOR_OWNS_DATA = 1u };

typedef struct tdm_tensor {
    tdm_dtype dtype;
    int32_t ndim;
    int64_t dims[TDM_MAX_DIMS];
    void *data;     /* NULL when only the shape is known (shape inference) */
    uint32_t flags; /* TDM_TENSOR_OWNS_DATA */
} tdm_tensor;

/* Bytes of one element, 0 for dtypes without a fixed size (string, undefined). */
size_t tdm_dtype_size(tdm_dtype dt);
/* "float32", "int64", ...; "?" for unknown values. */
const char *tdm_dtype_name(tdm_dtype dt);

/* Product of the dims (1 for a scalar). Dims are assumed validated >= 0. */
int64_t tdm_tensor_numel(const tdm_tensor *t);
size_t tdm_tensor_nbytes(const tdm_tensor *t);

/*
 * Element count of a shape with overflow checking: returns false when a dim
 * is negative or the product (times elem_size) overflows or exceeds limit
 * bytes. Readers use it before trusting sizes from a file.
 */
bool tdm_shape_checked_bytes(const int64_t *dims, int ndim, size_t elem_size, size_t limit,
                             size_t *bytes);

/* Sets dtype and shape, leaves data alone. */
void tdm_tensor_set_shape(tdm_tensor *t, tdm_dtype dt, int ndim, const int64_t *dims);

/* Allocates owned, 64-byte aligned, zeroed data for the shape already set. */
tdm_status tdm_tensor_alloc(tdm_tensor *t, tdm_err *err);

/* Makes an owned tensor of the given shape (zeroed). */
tdm_status tdm_tensor_make(tdm_tensor *t, tdm_dtype dt, int ndim, const int64_t *dims,
                           tdm_err *err);

/* Deep copy into dst (owned). */
tdm_status tdm_tensor_copy(tdm_tensor *dst, const tdm_tensor *src, tdm_err *err);

/* Frees owned data and resets the tensor to empty. Safe on a zeroed tensor. */
void tdm_tensor_free(tdm_tensor *t);

/* True when both have the same dtype and dims. */
bool tdm_tensor_same_shape(const tdm_tensor *a, const tdm_tensor *b);

/* Formats "float32[1,3,224,224]" into buf; returns buf. */
char *tdm_tensor_shape_str(const tdm_tensor *t, char *buf, size_t len);

/* IEEE half <-> float conversions (round to nearest even). */
float tdm_fp16_to_fp32(uint16_t h);
uint16_t tdm_fp32_to_fp16(float f);
float tdm_bf16_to_fp32(uint16_t h);

#ifdef __cplusplus
}
#endif
#endif

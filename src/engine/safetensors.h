/*
 * The safetensors weight format (Hugging Face): an 8-byte little-endian
 * header length N, N bytes of JSON mapping tensor names to
 * {dtype, shape, data_offsets: [begin, end)}, then the raw little-endian
 * tensor bytes, offsets relative to the end of the header.
 *
 * The whole header is validated when the file is opened, before any tensor is
 * handed out: a header length beyond the file or beyond 100 MB, JSON that is
 * not an object of well-formed entries, a dtype this reader does not know, a
 * shape whose byte size overflows or differs from end - begin, offsets outside
 * the data area, and two tensors whose bytes overlap are all parse errors
 * naming the tensor. So a tensor that tdm_safetensors_get returns is always
 * safe to read.
 *
 * The file is mapped, not read: float32 tensors are borrowed from the mapping
 * (copied only when misaligned), float16 ones are converted to a float32 copy.
 * bfloat16 is refused with a clear message rather than silently converted,
 * because the engine has no bfloat16 path to compare against.
 * A loader that keeps borrowed tensors (the BERT builder puts them into a
 * graph as constants) takes the mapping over with tdm_safetensors_take_image.
 */
#ifndef TANDEM_ENGINE_SAFETENSORS_H
#define TANDEM_ENGINE_SAFETENSORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tandem/status.h"
#include "tandem/tensor.h"

typedef struct tdm_safetensors tdm_safetensors;

/* One entry of the header, as validated. */
typedef struct tdm_st_info {
    const char *name;
    const char *dtype; /* "F32", "F16", "BF16", "I64", ... as in the file */
    int ndim;
    int64_t dims[TDM_MAX_DIMS];
    uint64_t begin, end; /* byte offsets into the data area */
} tdm_st_info;

/* Maps and validates a file. */
tdm_status tdm_safetensors_open(const char *path, tdm_safetensors **out, tdm_err *err);
/* Validates a caller's buffer, which must outlive the handle (for tests and fuzzing);
 * what names the source in messages (NULL: "buffer"). */
tdm_status tdm_safetensors_open_buffer(const void *data, size_t len, const char *what,
                                       tdm_safetensors **out, tdm_err *err);
void tdm_safetensors_free(tdm_safetensors *st);

int tdm_safetensors_count(const tdm_safetensors *st);
/* Entry i in data-offset order. */
const tdm_st_info *tdm_safetensors_info(const tdm_safetensors *st, int i);
/* Entry by name, NULL when absent. */
const tdm_st_info *tdm_safetensors_find(const tdm_safetensors *st, const char *name);

/*
 * The tensor named name: float32 for F32 and F16 entries, int64 for I64,
 * int32 for I32. The data is borrowed from the mapping (flags 0) or owned
 * (TDM_TENSOR_OWNS_DATA): free it with tdm_tensor_free either way, and keep
 * the handle (or the image taken from it) alive while a borrowed tensor is
 * used. A missing name is TDM_ERR_NOT_FOUND, BF16 and other dtypes are
 * TDM_ERR_UNSUPPORTED, both naming the tensor and the file.
 */
tdm_status tdm_safetensors_get(const tdm_safetensors *st, const char *name, tdm_tensor *out,
                               tdm_err *err);

/*
 * Tells the kernel that a tensor's bytes will not be read again through the
 * mapping (after a caller made its own converted copy): the whole pages it
 * covers are dropped from memory. They read back from the file if touched.
 * No effect for a buffer handle or a name that is absent.
 */
void tdm_safetensors_release(const tdm_safetensors *st, const char *name);

/*
 * Hands over the file mapping (to munmap(image, len) later): the handle no
 * longer unmaps it when freed. *image is NULL for a buffer handle.
 */
void tdm_safetensors_take_image(tdm_safetensors *st, void **image, size_t *len);

#endif

/*
 * Tensor helpers: sizes, allocation, copies and half-precision conversion.
 */
#include "tandem/tensor.h"

#include <stdio.h>
#include <string.h>

#include "base/alloc.h"

size_t tdm_dtype_size(tdm_dtype dt)
{
    switch (dt) {
    case TDM_DTYPE_FLOAT32:
    case TDM_DTYPE_INT32:
    case TDM_DTYPE_UINT32: return 4;
    case TDM_DTYPE_UINT8:
    case TDM_DTYPE_INT8:
    case TDM_DTYPE_BOOL: return 1;
    case TDM_DTYPE_UINT16:
    case TDM_DTYPE_INT16:
    case TDM_DTYPE_FLOAT16:
    case TDM_DTYPE_BFLOAT16: return 2;
    case TDM_DTYPE_INT64:
    case TDM_DTYPE_FLOAT64:
    case TDM_DTYPE_UINT64: return 8;
    case TDM_DTYPE_STRING:
    case TDM_DTYPE_UNDEFINED: return 0;
    }
    return 0;
}

const char *tdm_dtype_name(tdm_dtype dt)
{
    switch (dt) {
    case TDM_DTYPE_FLOAT32: return "float32";
    case TDM_DTYPE_UINT8: return "uint8";
    case TDM_DTYPE_INT8: return "int8";
    case TDM_DTYPE_UINT16: return "uint16";
    case TDM_DTYPE_INT16: return "int16";
    case TDM_DTYPE_INT32: return "int32";
    case TDM_DTYPE_INT64: return "int64";
    case TDM_DTYPE_STRING: return "string";
    case TDM_DTYPE_BOOL: return "bool";
    case TDM_DTYPE_FLOAT16: return "float16";
    case TDM_DTYPE_FLOAT64: return "float64";
    case TDM_DTYPE_UINT32: return "uint32";
    case TDM_DTYPE_UINT64: return "uint64";
    case TDM_DTYPE_BFLOAT16: return "bfloat16";
    case TDM_DTYPE_UNDEFINED: return "undefined";
    }
    return "?";
}

int64_t tdm_tensor_numel(const tdm_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= t->dims[i];
    return n;
}

size_t tdm_tensor_nbytes(const tdm_tensor *t)
{
    return (size_t)tdm_tensor_numel(t) * tdm_dtype_size(t->dtype);
}

bool tdm_shape_checked_bytes(const int64_t *dims, int ndim, size_t elem_size, size_t limit,
                             size_t *bytes)
{
    if (ndim < 0 || ndim > TDM_MAX_DIMS)
        return false;
    size_t n = elem_size;
    for (int i = 0; i < ndim; i++) {
        if (dims[i] < 0)
            return false;
        if (tdm_mul_overflow(n, (size_t)dims[i], &n))
            return false;
    }
    if (n > limit)
        return false;
    *bytes = n;
    return true;
}

void tdm_tensor_set_shape(tdm_tensor *t, tdm_dtype dt, int ndim, const int64_t *dims)
{
    t->dtype = dt;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        t->dims[i] = dims[i];
    for (int i = ndim < 0 ? 0 : ndim; i < TDM_MAX_DIMS; i++)
        t->dims[i] = 0;
}

tdm_status tdm_tensor_alloc(tdm_tensor *t, tdm_err *err)
{
    size_t bytes;
    if (!tdm_shape_checked_bytes(t->dims, t->ndim, tdm_dtype_size(t->dtype), SIZE_MAX / 2, &bytes))
        return tdm_errf(err, TDM_ERR_NOMEM, "tensor size overflows");
    void *p = tdm_aligned_calloc(bytes);
    if (p == NULL)
        return tdm_errf(err, TDM_ERR_NOMEM, "out of memory allocating %zu bytes", bytes);
    t->data = p;
    t->flags |= TDM_TENSOR_OWNS_DATA;
    return TDM_OK;
}

tdm_status tdm_tensor_make(tdm_tensor *t, tdm_dtype dt, int ndim, const int64_t *dims, tdm_err *err)
{
    memset(t, 0, sizeof *t);
    if (ndim < 0 || ndim > TDM_MAX_DIMS)
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "rank %d out of range", ndim);
    tdm_tensor_set_shape(t, dt, ndim, dims);
    return tdm_tensor_alloc(t, err);
}

tdm_status tdm_tensor_copy(tdm_tensor *dst, const tdm_tensor *src, tdm_err *err)
{
    tdm_status s = tdm_tensor_make(dst, src->dtype, src->ndim, src->dims, err);
    if (s != TDM_OK)
        return s;
    size_t n = tdm_tensor_nbytes(src);
    if (n > 0 && src->data != NULL)
        memcpy(dst->data, src->data, n);
    return TDM_OK;
}

void tdm_tensor_free(tdm_tensor *t)
{
    if (t == NULL)
        return;
    if ((t->flags & TDM_TENSOR_OWNS_DATA) && t->data != NULL)
        tdm_aligned_free(t->data);
    memset(t, 0, sizeof *t);
}

bool tdm_tensor_same_shape(const tdm_tensor *a, const tdm_tensor *b)
{
    if (a->dtype != b->dtype || a->ndim != b->ndim)
        return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->dims[i] != b->dims[i])
            return false;
    return true;
}

char *tdm_tensor_shape_str(const tdm_tensor *t, char *buf, size_t len)
{
    size_t o = 0;
    int w = snprintf(buf, len, "%s[", tdm_dtype_name(t->dtype));
    o = w > 0 ? (size_t)w : 0;
    for (int i = 0; i < t->ndim && o < len; i++) {
        w = snprintf(buf + o, len - o, i ? ",%lld" : "%lld", (long long)t->dims[i]);
        o += w > 0 ? (size_t)w : 0;
    }
    if (o < len)
        snprintf(buf + o, len - o, "]");
    return buf;
}

float tdm_fp16_to_fp32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;
    uint32_t bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: normalise */
            int e = -1;
            do {
                e++;
                man <<= 1;
            } while ((man & 0x400) == 0);
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ff) << 13);
        }
    } else if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t tdm_fp32_to_fp16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t absx = x & 0x7fffffffu;
    if (absx >= 0x7f800000u) /* Inf or NaN */
        return (uint16_t)(sign | 0x7c00 | (absx > 0x7f800000u ? 0x200 : 0));
    if (absx >= 0x477ff000u) /* rounds to >= 65520: overflow to Inf */
        return (uint16_t)(sign | 0x7c00);
    if (absx < 0x38800000u) { /* subnormal or zero in half */
        if (absx < 0x33000000u)
            return (uint16_t)sign;
        uint32_t man = (absx & 0x7fffff) | 0x800000;
        int shift = 113 - (int)(absx >> 23) + 13; /* 126-14 = 112 .. */
        uint32_t r = man >> shift;
        uint32_t rem = man & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (r & 1)))
            r++;
        return (uint16_t)(sign | r);
    }
    uint32_t r = ((absx >> 13) - (112u << 10));
    uint32_t rem = absx & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (r & 1)))
        r++;
    return (uint16_t)(sign | r);
}

float tdm_bf16_to_fp32(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

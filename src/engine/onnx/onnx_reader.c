/*
 * The ONNX model reader: protobuf bytes -> graph IR (engine/ir.h).
 *
 * Design:
 * - The file is mapped read-only and private; the decoder (pb.h) walks it
 *   without copying. Each initializer is copied once into 64-byte aligned
 *   memory and the source pages it came from are then released with
 *   madvise(MADV_DONTNEED), so the resident set while loading stays near one
 *   copy of the weights instead of two. The mapping is dropped before the
 *   loader returns; the graph owns all of its data (g->image stays NULL).
 * - Protobuf fields may appear in any order, so messages whose parts depend
 *   on each other are read in several passes over the same bytes (skipping a
 *   length-delimited field costs one varint): the model's opset imports
 *   before its graph; a graph's initializers, then inputs (an input that is
 *   also an initializer is a constant), then nodes, then outputs and value
 *   infos. Arrays are counted before they are allocated, so the loader never
 *   grows buffers on the strength of a length it has not seen bytes for.
 * - A tensor's size comes from its dims, which are untrusted: the element
 *   count must match the data actually present (raw_data length, number of
 *   typed values, or the extent of an external file) before any memory is
 *   allocated. A 2^62-element tensor therefore fails with a message, it does
 *   not attempt a huge allocation.
 * - Errors are built inside-out: the decoder names the offset, and each
 *   level prefixes what it was reading ("node 3 (Conv 'c1'): attribute
 *   'pads': ..."), ending with the file name.
 */
#include "engine/onnx/onnx.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "engine/ir.h"
#include "engine/onnx/pb.h"
#include "engine/passes/passes.h"
#include "tandem/graph.h"

/* ONNX field numbers of the messages we read. */
enum {
    MODEL_IR_VERSION = 1,
    MODEL_PRODUCER = 2,
    MODEL_GRAPH = 7,
    MODEL_OPSET = 8,
    OPSET_DOMAIN = 1,
    OPSET_VERSION = 2,
    GRAPH_NODE = 1,
    GRAPH_INIT = 5,
    GRAPH_INPUT = 11,
    GRAPH_OUTPUT = 12,
    GRAPH_VALUE_INFO = 13,
    GRAPH_SPARSE_INIT = 15,
    NODE_INPUT = 1,
    NODE_OUTPUT = 2,
    NODE_NAME = 3,
    NODE_OP = 4,
    NODE_ATTR = 5,
    NODE_DOMAIN = 7,
    ATTR_NAME = 1,
    ATTR_F = 2,
    ATTR_I = 3,
    ATTR_S = 4,
    ATTR_T = 5,
    ATTR_G = 6,
    ATTR_FLOATS = 7,
    ATTR_INTS = 8,
    ATTR_STRINGS = 9,
    ATTR_TENSORS = 10,
    ATTR_GRAPHS = 11,
    ATTR_TP = 14,
    ATTR_TPS = 15,
    ATTR_TYPE = 20,
    ATTR_REF = 21,
    ATTR_SPARSE = 22,
    ATTR_SPARSES = 23,
    TENSOR_DIMS = 1,
    TENSOR_TYPE = 2,
    TENSOR_SEGMENT = 3,
    TENSOR_FLOAT = 4,
    TENSOR_INT32 = 5,
    TENSOR_STRING = 6,
    TENSOR_INT64 = 7,
    TENSOR_NAME = 8,
    TENSOR_RAW = 9,
    TENSOR_DOUBLE = 10,
    TENSOR_UINT64 = 11,
    TENSOR_EXTERNAL = 13,
    TENSOR_LOCATION = 14,
    ENTRY_KEY = 1,
    ENTRY_VALUE = 2,
    SPARSE_VALUES = 1,
    VI_NAME = 1,
    VI_TYPE = 2,
    TYPE_TENSOR = 1,
    TT_ELEM = 1,
    TT_SHAPE = 2,
    SHAPE_DIM = 1,
    DIM_VALUE = 1,
    DIM_PARAM = 2,
};

/* ONNX AttributeProto.AttributeType values beyond those in tdm_attr_type. */
enum {
    ONNX_ATTR_TENSORS = 9,
    ONNX_ATTR_GRAPHS = 10,
    ONNX_ATTR_SPARSE_TENSOR = 11,
    ONNX_ATTR_SPARSE_TENSORS = 12,
    ONNX_ATTR_TYPE_PROTO = 13,
    ONNX_ATTR_TYPE_PROTOS = 14,
};

/* What the tensor decoder needs to know about where its bytes come from. */
typedef struct tensor_src {
    const char *base_dir; /* resolves external data; NULL refuses it */
    bool drop_pages;      /* the buffer is our private mapping: release consumed pages */
    size_t page;          /* page size when drop_pages */
} tensor_src;

typedef struct opset_import {
    char *domain;
    int64_t version;
} opset_import;

typedef struct loader {
    tdm_graph *g;
    tensor_src src;
    opset_import *imports;
    int n_imports;
    tdm_err *err;
} loader;

/* ---- small helpers -------------------------------------------------------- */

/* Copies a length-delimited field as a C string (no embedded NUL), replacing *out. */
static tdm_status get_str(const tdm_pb_field *f, size_t max, const char *what, char **out,
                          tdm_err *err)
{
    tdm_status s = tdm_pb_expect(f, TDM_PB_LEN, err);
    if (s != TDM_OK) {
        tdm_err_prefix(err, "%s", what);
        return s;
    }
    if (f->len > max)
        return tdm_errf(err, TDM_ERR_PARSE, "%s at offset %zu is %zu bytes long (limit %zu)", what,
                        f->offset, f->len, max);
    if (f->len > 0 && memchr(f->data, 0, f->len) != NULL)
        return tdm_errf(err, TDM_ERR_PARSE, "%s at offset %zu contains a NUL byte", what,
                        f->offset);
    char *c = tdm_strndup(f->len > 0 ? (const char *)f->data : "", f->len);
    if (c == NULL)
        return tdm_errf(err, TDM_ERR_NOMEM, "out of memory copying %s", what);
    free(*out);
    *out = c;
    return TDM_OK;
}

static tdm_status get_varint(const tdm_pb_field *f, const char *what, uint64_t *v, tdm_err *err)
{
    tdm_status s = tdm_pb_expect(f, TDM_PB_VARINT, err);
    if (s != TDM_OK) {
        tdm_err_prefix(err, "%s", what);
        return s;
    }
    *v = f->u;
    return TDM_OK;
}

/* A growable array bounded by a maximum count; counts are known in advance. */
static void *alloc_array(size_t n, size_t size)
{
    size_t bytes;
    if (tdm_mul_overflow(n ? n : 1, size, &bytes))
        return NULL;
    return calloc(1, bytes);
}

/* ---- tensors ------------------------------------------------------------- */

/* Which typed field carries values of dtype dt, or 0 when unsupported. */
static uint32_t typed_field(int64_t dt)
{
    switch (dt) {
    case TDM_DTYPE_FLOAT32: return TENSOR_FLOAT;
    case TDM_DTYPE_INT32:
    case TDM_DTYPE_INT16:
    case TDM_DTYPE_INT8:
    case TDM_DTYPE_UINT16:
    case TDM_DTYPE_UINT8:
    case TDM_DTYPE_BOOL:
    case TDM_DTYPE_FLOAT16:
    case TDM_DTYPE_BFLOAT16: return TENSOR_INT32;
    case TDM_DTYPE_INT64: return TENSOR_INT64;
    case TDM_DTYPE_FLOAT64: return TENSOR_DOUBLE;
    case TDM_DTYPE_UINT32:
    case TDM_DTYPE_UINT64: return TENSOR_UINT64;
    default: return 0;
    }
}

static const char *field_name(uint32_t num)
{
    switch (num) {
    case TENSOR_FLOAT: return "float_data";
    case TENSOR_INT32: return "int32_data";
    case TENSOR_STRING: return "string_data";
    case TENSOR_INT64: return "int64_data";
    case TENSOR_DOUBLE: return "double_data";
    case TENSOR_UINT64: return "uint64_data";
    }
    return "?";
}

static int typed_wire(uint32_t num)
{
    return num == TENSOR_FLOAT    ? TDM_PB_FIXED32
           : num == TENSOR_DOUBLE ? TDM_PB_FIXED64
                                  : TDM_PB_VARINT;
}

/* Stores one value of a typed data field into element i of t. */
static void put_typed(tdm_tensor *t, size_t i, uint64_t v)
{
    switch (t->dtype) {
    case TDM_DTYPE_FLOAT32:
    case TDM_DTYPE_INT32:
    case TDM_DTYPE_UINT32: ((uint32_t *)t->data)[i] = (uint32_t)v; break;
    case TDM_DTYPE_INT64:
    case TDM_DTYPE_FLOAT64:
    case TDM_DTYPE_UINT64: ((uint64_t *)t->data)[i] = v; break;
    case TDM_DTYPE_INT16:
    case TDM_DTYPE_UINT16:
    case TDM_DTYPE_FLOAT16:
    case TDM_DTYPE_BFLOAT16: ((uint16_t *)t->data)[i] = (uint16_t)v; break;
    case TDM_DTYPE_INT8:
    case TDM_DTYPE_UINT8: ((uint8_t *)t->data)[i] = (uint8_t)v; break;
    case TDM_DTYPE_BOOL: ((uint8_t *)t->data)[i] = v != 0; break;
    default: assert(!"put_typed: dtype without a typed field"); break;
    }
}

/*
 * Allocates t's data without zeroing it: every path below overwrites all of
 * it, and zeroing a large initializer first would touch its pages twice.
 */
static tdm_status alloc_data(tdm_tensor *t, size_t bytes, tdm_err *err)
{
    t->data = tdm_aligned_alloc(bytes);
    if (t->data == NULL)
        return tdm_errf(err, TDM_ERR_NOMEM, "out of memory allocating %zu bytes", bytes);
    t->flags |= TDM_TENSOR_OWNS_DATA;
    return TDM_OK;
}

/*
 * Copies n bytes of raw_data out of the file image. From our private mapping
 * the copy goes in chunks, and after each chunk the whole source pages it
 * finished are released (madvise DONTNEED), so that even a model made of
 * one big tensor peaks near one copy of it rather than two.
 */
static void copy_raw(const tensor_src *src, uint8_t *dst, const uint8_t *raw, size_t n)
{
    const size_t chunk = (size_t)1 << 20;
    if (!src->drop_pages || n < 2 * src->page) {
        if (n > 0)
            memcpy(dst, raw, n);
        return;
    }
    uintptr_t mask = ~(uintptr_t)(src->page - 1);
    uintptr_t done = ((uintptr_t)raw + src->page - 1) & mask; /* first whole page */
    for (size_t off = 0; off < n; off += chunk) {
        size_t k = n - off < chunk ? n - off : chunk;
        memcpy(dst + off, raw + off, k);
        uintptr_t end = ((uintptr_t)raw + off + k) & mask;
        if (end > done) {
            madvise((void *)done, end - done, MADV_DONTNEED); /* advisory: failure costs memory */
            done = end;
        }
    }
}

/* Parses a non-negative decimal integer string ("offset", "length"). */
static bool parse_u64(const char *s, uint64_t *v)
{
    if (*s == '\0')
        return false;
    uint64_t x = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        if (x > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
            return false;
        x = x * 10 + (uint64_t)(*s - '0');
    }
    *v = x;
    return true;
}

/* Refuses absolute paths and any ".." component: external data stays beside the model. */
static bool safe_relative_path(const char *p)
{
    if (p[0] == '\0' || p[0] == '/')
        return false;
    const char *c = p;
    while (*c) {
        const char *e = strchr(c, '/');
        size_t n = e ? (size_t)(e - c) : strlen(c);
        if (n == 2 && c[0] == '.' && c[1] == '.')
            return false;
        if (e == NULL)
            break;
        c = e + 1;
    }
    return true;
}

typedef struct external_ref {
    char *location;
    char *offset;
    char *length;
} external_ref;

static void external_ref_free(external_ref *x)
{
    free(x->location);
    free(x->offset);
    free(x->length);
}

static tdm_status parse_external_entry(const tdm_pb *m, const tdm_pb_field *f, external_ref *x,
                                       tdm_err *err)
{
    tdm_pb e;
    tdm_status s = tdm_pb_sub(m, f, &e, err);
    char *key = NULL, *value = NULL;
    while (s == TDM_OK && !tdm_pb_done(&e)) {
        tdm_pb_field ef;
        s = tdm_pb_next(&e, &ef, err);
        if (s != TDM_OK)
            break;
        if (ef.num == ENTRY_KEY)
            s = get_str(&ef, TDM_ONNX_MAX_NAME, "external_data key", &key, err);
        else if (ef.num == ENTRY_VALUE)
            s = get_str(&ef, TDM_ONNX_MAX_NAME, "external_data value", &value, err);
    }
    if (s == TDM_OK && key != NULL && value != NULL) {
        char **slot = strcmp(key, "location") == 0 ? &x->location
                      : strcmp(key, "offset") == 0 ? &x->offset
                      : strcmp(key, "length") == 0 ? &x->length
                                                   : NULL;
        if (slot != NULL) {
            free(*slot);
            *slot = value;
            value = NULL;
        }
    }
    free(key);
    free(value);
    return s;
}

/* Reads the external bytes of t (shape set, data allocated) from the file x names. */
static tdm_status read_external(const tensor_src *src, const external_ref *x, size_t bytes,
                                tdm_tensor *t, tdm_err *err)
{
    if (x->location == NULL)
        return tdm_errf(err, TDM_ERR_PARSE, "external data has no 'location'");
    if (!safe_relative_path(x->location))
        return tdm_errf(err, TDM_ERR_PARSE,
                        "external data location '%s' must be a relative path inside the model's "
                        "directory (no leading '/', no '..')",
                        x->location);
    if (src->base_dir == NULL)
        return tdm_errf(err, TDM_ERR_UNSUPPORTED,
                        "external data '%s' cannot be resolved: no model directory is known",
                        x->location);
    uint64_t off = 0, len = 0;
    if (x->offset != NULL && !parse_u64(x->offset, &off))
        return tdm_errf(err, TDM_ERR_PARSE, "external data offset '%s' is not a number", x->offset);
    if (x->length != NULL && !parse_u64(x->length, &len))
        return tdm_errf(err, TDM_ERR_PARSE, "external data length '%s' is not a number", x->length);
    size_t dl = strlen(src->base_dir), ll = strlen(x->location);
    char *path = malloc(dl + ll + 2);
    if (path == NULL)
        return tdm_errf(err, TDM_ERR_NOMEM, "out of memory");
    memcpy(path, src->base_dir, dl);
    path[dl] = '/';
    memcpy(path + dl + 1, x->location, ll + 1);
    tdm_status s = TDM_OK;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0) {
        s = tdm_errf(err, TDM_ERR_IO, "cannot open external data '%s': %s", path, strerror(errno));
        goto out;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        s = tdm_errf(err, TDM_ERR_IO, "external data '%s' is not a regular file", path);
        goto out;
    }
    uint64_t fsize = (uint64_t)st.st_size;
    if (off > fsize) {
        s = tdm_errf(err, TDM_ERR_PARSE,
                     "external data offset %" PRIu64 " is beyond the end of '%s' (%" PRIu64
                     " bytes)",
                     off, path, fsize);
        goto out;
    }
    if (x->length == NULL)
        len = fsize - off;
    if (len > fsize - off) {
        s = tdm_errf(err, TDM_ERR_PARSE,
                     "external data range [%" PRIu64 ", +%" PRIu64 ") exceeds '%s' (%" PRIu64
                     " bytes)",
                     off, len, path, fsize);
        goto out;
    }
    if (len != bytes) {
        s = tdm_errf(err, TDM_ERR_PARSE,
                     "external data length %" PRIu64 " does not match the %zu bytes its dims "
                     "need",
                     len, bytes);
        goto out;
    }
    s = alloc_data(t, bytes, err);
    if (s != TDM_OK)
        goto out;
    size_t done = 0;
    while (done < bytes) {
        size_t chunk = bytes - done < ((size_t)1 << 30) ? bytes - done : (size_t)1 << 30;
        ssize_t r = pread(fd, (uint8_t *)t->data + done, chunk, (off_t)(off + done));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            s = tdm_errf(err, TDM_ERR_IO, "short read from external data '%s'", path);
            goto out;
        }
        done += (size_t)r;
    }
out:
    if (fd >= 0)
        close(fd);
    free(path);
    return s;
}

/*
 * Decodes one TensorProto message m into *t (owned). *name gets the tensor's
 * name (or stays NULL). Validates everything before allocating.
 */
static tdm_status parse_tensor_msg(const tensor_src *src, tdm_pb m, tdm_tensor *t, char **name,
                                   tdm_err *err)
{
    tdm_pb scan = m;
    int64_t dims[TDM_MAX_DIMS];
    size_t ndim = 0;
    uint64_t dtype = 0, location = 0;
    bool has_dtype = false;
    size_t counts[TENSOR_UINT64 + 1] = {0};
    const uint8_t *raw = NULL;
    size_t raw_len = 0;
    bool has_raw = false;
    external_ref ext = {0};
    tdm_status s = TDM_OK;
    memset(t, 0, sizeof *t);

    while (s == TDM_OK && !tdm_pb_done(&scan)) {
        tdm_pb_field f;
        s = tdm_pb_next(&scan, &f, err);
        if (s != TDM_OK)
            break;
        switch (f.num) {
        case TENSOR_DIMS: {
            size_t n;
            s = tdm_pb_count(&scan, &f, TDM_PB_VARINT, &n, err);
            if (s != TDM_OK)
                break;
            if (ndim + n > TDM_MAX_DIMS) {
                s = tdm_errf(err, TDM_ERR_UNSUPPORTED, "more than %d dims", TDM_MAX_DIMS);
                break;
            }
            uint64_t v[TDM_MAX_DIMS];
            s = tdm_pb_get_u64(&scan, &f, TDM_PB_VARINT, v, n, err);
            for (size_t k = 0; s == TDM_OK && k < n; k++) {
                if ((int64_t)v[k] < 0)
                    s = tdm_errf(err, TDM_ERR_PARSE, "negative dim %" PRId64, (int64_t)v[k]);
                dims[ndim++] = (int64_t)v[k];
            }
            break;
        }
        case TENSOR_TYPE:
            s = get_varint(&f, "data_type", &dtype, err);
            has_dtype = true;
            break;
        case TENSOR_SEGMENT:
            s = tdm_errf(err, TDM_ERR_UNSUPPORTED, "segmented tensors are not supported");
            break;
        case TENSOR_FLOAT:
        case TENSOR_INT32:
        case TENSOR_INT64:
        case TENSOR_DOUBLE:
        case TENSOR_UINT64: {
            size_t n = 0;
            s = tdm_pb_count(&scan, &f, typed_wire(f.num), &n, err);
            counts[f.num] += n; /* bounded by the message length: cannot overflow */
            break;
        }
        case TENSOR_STRING: counts[TENSOR_STRING]++; break;
        case TENSOR_NAME:
            if (name != NULL)
                s = get_str(&f, TDM_ONNX_MAX_NAME, "name", name, err);
            break;
        case TENSOR_RAW:
            s = tdm_pb_expect(&f, TDM_PB_LEN, err);
            raw = f.data;
            raw_len = f.len;
            has_raw = true;
            break;
        case TENSOR_EXTERNAL: s = parse_external_entry(&scan, &f, &ext, err); break;
        case TENSOR_LOCATION: s = get_varint(&f, "data_location", &location, err); break;
        default: break;
        }
    }
    if (s != TDM_OK)
        goto fail;

    if (!has_dtype || dtype == TDM_DTYPE_UNDEFINED) {
        s = tdm_errf(err, TDM_ERR_PARSE, "no data_type");
        goto fail;
    }
    if (dtype == TDM_DTYPE_STRING) {
        s = tdm_errf(err, TDM_ERR_UNSUPPORTED, "string tensors are not supported");
        goto fail;
    }
    uint32_t want = typed_field((int64_t)dtype);
    if (want == 0) {
        s = tdm_errf(err, TDM_ERR_UNSUPPORTED, "data_type %" PRIu64 " is not supported", dtype);
        goto fail;
    }
    size_t es = tdm_dtype_size((tdm_dtype)dtype), bytes;
    if (!tdm_shape_checked_bytes(dims, (int)ndim, es, SIZE_MAX / 2, &bytes)) {
        s = tdm_errf(err, TDM_ERR_PARSE, "dims overflow the address space");
        goto fail;
    }
    size_t numel = bytes / es;
    for (uint32_t k = TENSOR_FLOAT; k <= TENSOR_UINT64; k++) {
        if (k == want || counts[k] == 0)
            continue;
        s = tdm_errf(err, TDM_ERR_PARSE, "%s is set but data_type is %s", field_name(k),
                     tdm_dtype_name((tdm_dtype)dtype));
        goto fail;
    }
    tdm_tensor_set_shape(t, (tdm_dtype)dtype, (int)ndim, dims);
    if (location == 1) {
        if (has_raw || counts[want] > 0) {
            s = tdm_errf(err, TDM_ERR_PARSE, "has both external and inline data");
            goto fail;
        }
        s = read_external(src, &ext, bytes, t, err);
        if (s != TDM_OK)
            goto fail;
    } else if (location != 0) {
        s = tdm_errf(err, TDM_ERR_PARSE, "invalid data_location %" PRIu64, location);
        goto fail;
    } else if (has_raw) {
        if (counts[want] > 0) {
            s = tdm_errf(err, TDM_ERR_PARSE, "has both raw_data and %s", field_name(want));
            goto fail;
        }
        if (raw_len != bytes) {
            s = tdm_errf(err, TDM_ERR_PARSE,
                         "raw_data has %zu bytes but dims and data_type %s need %zu", raw_len,
                         tdm_dtype_name((tdm_dtype)dtype), bytes);
            goto fail;
        }
        s = alloc_data(t, bytes, err);
        if (s != TDM_OK)
            goto fail;
        copy_raw(src, t->data, raw, bytes);
    } else {
        if (counts[want] != numel) {
            s = tdm_errf(err, TDM_ERR_PARSE, "%s has %zu values but dims need %zu",
                         field_name(want), counts[want], numel);
            goto fail;
        }
        s = alloc_data(t, bytes, err);
        if (s != TDM_OK)
            goto fail;
        size_t i = 0;
        tdm_pb fill = m;
        while (!tdm_pb_done(&fill)) {
            tdm_pb_field f;
            s = tdm_pb_next(&fill, &f, err);
            if (s != TDM_OK)
                goto fail;
            if (f.num != want)
                continue;
            tdm_pb_iter it;
            uint64_t v;
            tdm_pb_iter_init(&it, &f, typed_wire(want));
            while (i < numel && tdm_pb_iter_next(&it, &v))
                put_typed(t, i++, v);
        }
        if (i != numel) {
            s = tdm_errf(err, TDM_ERR_INTERNAL, "typed data count changed between passes");
            goto fail;
        }
    }
    external_ref_free(&ext);
    return TDM_OK;
fail:
    external_ref_free(&ext);
    tdm_tensor_free(t);
    return s;
}

tdm_status tdm_onnx_parse_tensor(const void *buf, size_t len, tdm_tensor *out, char **name,
                                 tdm_err *err)
{
    if (name != NULL)
        *name = NULL;
    if (buf == NULL && len > 0)
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "NULL buffer");
    tdm_pb m;
    tdm_pb_init(&m, buf != NULL ? buf : "", len);
    tensor_src src = {NULL, false, 0};
    char *nm = NULL;
    tdm_status s = parse_tensor_msg(&src, m, out, &nm, err);
    if (s != TDM_OK) {
        tdm_err_prefix(err, "tensor '%s'", nm ? nm : "");
        free(nm);
        return s;
    }
    if (name != NULL)
        *name = nm;
    else
        free(nm);
    return TDM_OK;
}

/* ---- value infos ----------------------------------------------------------- */

/* A declared type: what ValueInfoProto says about a graph input or output. */
typedef struct decl_type {
    bool is_tensor; /* a TypeProto.tensor_type was present */
    tdm_dtype dtype;
    int32_t ndim; /* -1 when no shape */
    int64_t dims[TDM_MAX_DIMS];
    char *dim_param[TDM_MAX_DIMS];
} decl_type;

static void decl_type_free(decl_type *d)
{
    for (int i = 0; i < TDM_MAX_DIMS; i++)
        free(d->dim_param[i]);
}

static tdm_status parse_dim(const tdm_pb *shape, const tdm_pb_field *f, decl_type *d, tdm_err *err)
{
    tdm_pb m;
    tdm_status s = tdm_pb_sub(shape, f, &m, err);
    if (s != TDM_OK)
        return s;
    if (d->ndim >= TDM_MAX_DIMS)
        return tdm_errf(err, TDM_ERR_UNSUPPORTED, "rank above %d", TDM_MAX_DIMS);
    int k = d->ndim++;
    d->dims[k] = -1;
    while (s == TDM_OK && !tdm_pb_done(&m)) {
        tdm_pb_field df;
        s = tdm_pb_next(&m, &df, err);
        if (s != TDM_OK)
            break;
        if (df.num == DIM_VALUE) {
            uint64_t v = 0;
            s = get_varint(&df, "dim_value", &v, err);
            /* Negative sizes appear in some exporters' output to mean "unknown". */
            d->dims[k] = (int64_t)v >= 0 ? (int64_t)v : -1;
        } else if (df.num == DIM_PARAM) {
            s = get_str(&df, TDM_ONNX_MAX_NAME, "dim_param", &d->dim_param[k], err);
        }
    }
    if (s == TDM_OK && d->dim_param[k] != NULL) {
        if (d->dim_param[k][0] == '\0') {
            free(d->dim_param[k]);
            d->dim_param[k] = NULL;
        } else {
            d->dims[k] = -1;
        }
    }
    return s;
}

static tdm_status parse_tensor_type(const tdm_pb *type, const tdm_pb_field *f, decl_type *d,
                                    tdm_err *err)
{
    tdm_pb m;
    tdm_status s = tdm_pb_sub(type, f, &m, err);
    d->is_tensor = true;
    while (s == TDM_OK && !tdm_pb_done(&m)) {
        tdm_pb_field tf;
        s = tdm_pb_next(&m, &tf, err);
        if (s != TDM_OK)
            break;
        if (tf.num == TT_ELEM) {
            uint64_t v = 0;
            s = get_varint(&tf, "elem_type", &v, err);
            d->dtype = v <= TDM_DTYPE_BFLOAT16 && (v <= TDM_DTYPE_UINT64 || v == 16)
                           ? (tdm_dtype)v
                           : TDM_DTYPE_UNDEFINED;
        } else if (tf.num == TT_SHAPE) {
            tdm_pb sh;
            s = tdm_pb_sub(&m, &tf, &sh, err);
            /* A repeated shape field merges: dims accumulate. */
            if (d->ndim < 0)
                d->ndim = 0;
            while (s == TDM_OK && !tdm_pb_done(&sh)) {
                tdm_pb_field sf;
                s = tdm_pb_next(&sh, &sf, err);
                if (s == TDM_OK && sf.num == SHAPE_DIM)
                    s = parse_dim(&sh, &sf, d, err);
            }
        }
    }
    return s;
}

/* Parses a ValueInfoProto: its name into *name and its type into *d. */
static tdm_status parse_value_info(const tdm_pb *gm, const tdm_pb_field *f, char **name,
                                   decl_type *d, tdm_err *err)
{
    memset(d, 0, sizeof *d);
    d->ndim = -1;
    tdm_pb m;
    tdm_status s = tdm_pb_sub(gm, f, &m, err);
    while (s == TDM_OK && !tdm_pb_done(&m)) {
        tdm_pb_field vf;
        s = tdm_pb_next(&m, &vf, err);
        if (s != TDM_OK)
            break;
        if (vf.num == VI_NAME) {
            s = get_str(&vf, TDM_ONNX_MAX_NAME, "name", name, err);
        } else if (vf.num == VI_TYPE) {
            tdm_pb tm;
            s = tdm_pb_sub(&m, &vf, &tm, err);
            while (s == TDM_OK && !tdm_pb_done(&tm)) {
                tdm_pb_field tf;
                s = tdm_pb_next(&tm, &tf, err);
                if (s == TDM_OK && tf.num == TYPE_TENSOR)
                    s = parse_tensor_type(&tm, &tf, d, err);
            }
        }
    }
    return s;
}

/* Moves a declared type into a value (dim names change owner). */
static void apply_decl(tdm_value *v, decl_type *d)
{
    v->dtype = d->dtype;
    v->ndim = d->ndim;
    for (int i = 0; i < TDM_MAX_DIMS; i++) {
        v->dims[i] = i < d->ndim ? d->dims[i] : 0;
        free(v->dim_param[i]);
        v->dim_param[i] = d->dim_param[i];
        d->dim_param[i] = NULL;
    }
}

/* ---- attributes ------------------------------------------------------------- */

static tdm_status parse_attr(loader *L, int32_t node, const tdm_pb *nm, const tdm_pb_field *af,
                             char **attr_name)
{
    tdm_err *err = L->err;
    tdm_pb m;
    tdm_status s = tdm_pb_sub(nm, af, &m, err);
    if (s != TDM_OK)
        return s;
    /* Pass 1: what is set, and how many list values. */
    uint64_t type = 0;
    bool has_type = false, has_f = false, has_i = false, has_s = false, has_t = false;
    bool has_g = false, has_ref = false, has_other = false;
    size_t n_floats = 0, n_ints = 0, n_strings = 0, n_tensors = 0, n_graphs = 0;
    tdm_pb scan = m;
    while (s == TDM_OK && !tdm_pb_done(&scan)) {
        tdm_pb_field f;
        s = tdm_pb_next(&scan, &f, err);
        if (s != TDM_OK)
            break;
        size_t n = 0;
        switch (f.num) {
        case ATTR_NAME: s = get_str(&f, TDM_ONNX_MAX_NAME, "name", attr_name, err); break;
        case ATTR_F:
            s = tdm_pb_expect(&f, TDM_PB_FIXED32, err);
            has_f = true;
            break;
        case ATTR_I:
            s = tdm_pb_expect(&f, TDM_PB_VARINT, err);
            has_i = true;
            break;
        case ATTR_S:
            s = tdm_pb_expect(&f, TDM_PB_LEN, err);
            has_s = true;
            break;
        case ATTR_T:
            s = tdm_pb_expect(&f, TDM_PB_LEN, err);
            has_t = true;
            break;
        case ATTR_G: has_g = true; break;
        case ATTR_FLOATS:
            s = tdm_pb_count(&scan, &f, TDM_PB_FIXED32, &n, err);
            n_floats += n;
            break;
        case ATTR_INTS:
            s = tdm_pb_count(&scan, &f, TDM_PB_VARINT, &n, err);
            n_ints += n;
            break;
        case ATTR_STRINGS:
            s = tdm_pb_expect(&f, TDM_PB_LEN, err);
            n_strings++;
            break;
        case ATTR_TENSORS: n_tensors++; break;
        case ATTR_GRAPHS: n_graphs++; break;
        case ATTR_TP:
        case ATTR_TPS:
        case ATTR_SPARSE:
        case ATTR_SPARSES: has_other = true; break;
        case ATTR_TYPE:
            s = get_varint(&f, "type", &type, err);
            has_type = true;
            break;
        case ATTR_REF: has_ref = true; break;
        default: break;
        }
    }
    if (s != TDM_OK)
        return s;
    if (*attr_name == NULL || (*attr_name)[0] == '\0')
        return tdm_errf(err, TDM_ERR_PARSE, "attribute without a name");
    if (has_ref)
        return tdm_errf(err, TDM_ERR_UNSUPPORTED,
                        "attribute refers to a function attribute (ref_attr_name), which is only "
                        "valid inside functions");
    if (!has_type || type == 0) {
        /* Old files (IR < 2) have no type: infer it from the field that is set. */
        type = has_g || n_graphs ? TDM_ATTR_GRAPH
               : has_t           ? TDM_ATTR_TENSOR
               : has_f           ? TDM_ATTR_FLOAT
               : has_i           ? TDM_ATTR_INT
               : has_s           ? TDM_ATTR_STRING
               : n_floats        ? TDM_ATTR_FLOATS
               : n_ints          ? TDM_ATTR_INTS
               : n_strings       ? TDM_ATTR_STRINGS
               : n_tensors       ? ONNX_ATTR_TENSORS
               : has_other       ? ONNX_ATTR_SPARSE_TENSOR
                                 : 0;
        if (type == 0)
            return tdm_errf(err, TDM_ERR_PARSE, "attribute has neither a type nor a value");
    }
    switch (type) {
    case TDM_ATTR_GRAPH:
    case ONNX_ATTR_GRAPHS:
        return tdm_errf(err, TDM_ERR_UNSUPPORTED,
                        "subgraph attributes (If/Loop/Scan bodies) are not supported");
    case ONNX_ATTR_TENSORS:
    case ONNX_ATTR_SPARSE_TENSOR:
    case ONNX_ATTR_SPARSE_TENSORS:
    case ONNX_ATTR_TYPE_PROTO:
    case ONNX_ATTR_TYPE_PROTOS:
        return tdm_errf(err, TDM_ERR_UNSUPPORTED, "attribute type %" PRIu64 " is not supported",
                        type);
    case TDM_ATTR_FLOAT:
    case TDM_ATTR_INT:
    case TDM_ATTR_STRING:
    case TDM_ATTR_TENSOR:
    case TDM_ATTR_FLOATS:
    case TDM_ATTR_INTS:
    case TDM_ATTR_STRINGS: break;
    default: return tdm_errf(err, TDM_ERR_PARSE, "invalid attribute type %" PRIu64, type);
    }
    tdm_node *n = &L->g->nodes[node];
    if (tdm_node_attr(n, *attr_name) != NULL)
        return tdm_errf(err, TDM_ERR_PARSE, "attribute is set twice");
    if (n->n_attr >= TDM_ONNX_MAX_ATTRS)
        return tdm_errf(err, TDM_ERR_PARSE, "more than %d attributes", TDM_ONNX_MAX_ATTRS);
    if (type == TDM_ATTR_TENSOR && !has_t)
        return tdm_errf(err, TDM_ERR_PARSE, "TENSOR attribute without a tensor");
    tdm_attr *a = tdm_node_add_attr(n, *attr_name, (tdm_attr_type)type);
    if (a == NULL)
        return tdm_errf(err, TDM_ERR_NOMEM, "out of memory");
    size_t count = type == TDM_ATTR_FLOATS    ? n_floats
                   : type == TDM_ATTR_INTS    ? n_ints
                   : type == TDM_ATTR_STRINGS ? n_strings
                                              : 0;
    if (type == TDM_ATTR_FLOATS)
        a->floats = alloc_array(count, sizeof *a->floats);
    else if (type == TDM_ATTR_INTS)
        a->ints = alloc_array(count, sizeof *a->ints);
    else if (type == TDM_ATTR_STRINGS)
        a->strings = alloc_array(count, sizeof *a->strings);
    if ((type == TDM_ATTR_FLOATS && a->floats == NULL) ||
        (type == TDM_ATTR_INTS && a->ints == NULL) ||
        (type == TDM_ATTR_STRINGS && a->strings == NULL))
        return tdm_errf(err, TDM_ERR_NOMEM, "out of memory for %zu values", count);
    a->n = (int64_t)count;

    /* Pass 2: values. Scalars take the last occurrence, lists concatenate. */
    size_t k = 0;
    tdm_pb fill = m;
    while (s == TDM_OK && !tdm_pb_done(&fill)) {
        tdm_pb_field f;
        s = tdm_pb_next(&fill, &f, err);
        if (s != TDM_OK)
            break;
        if (type == TDM_ATTR_FLOAT && f.num == ATTR_F) {
            a->f = tdm_pb_as_float(f.u);
        } else if (type == TDM_ATTR_INT && f.num == ATTR_I) {
            a->i = (int64_t)f.u;
        } else if (type == TDM_ATTR_STRING && f.num == ATTR_S) {
            if (f.len > TDM_ONNX_MAX_ATTR_STRING) {
                s = tdm_errf(err, TDM_ERR_PARSE, "string of %zu bytes (limit %u)", f.len,
                             TDM_ONNX_MAX_ATTR_STRING);
                break;
            }
            char *c = tdm_strndup(f.len ? (const char *)f.data : "", f.len);
            if (c == NULL) {
                s = tdm_errf(err, TDM_ERR_NOMEM, "out of memory");
                break;
            }
            free(a->s);
            a->s = c;
            a->s_len = f.len;
        } else if (type == TDM_ATTR_TENSOR && f.num == ATTR_T) {
            tdm_pb tm;
            char *tname = NULL;
            s = tdm_pb_sub(&fill, &f, &tm, err);
            tdm_tensor_free(&a->t);
            if (s == TDM_OK)
                s = parse_tensor_msg(&L->src, tm, &a->t, &tname, err);
            if (s != TDM_OK)
                tdm_err_prefix(err, "tensor '%s'", tname ? tname : "");
            free(tname);
        } else if ((type == TDM_ATTR_FLOATS && f.num == ATTR_FLOATS) ||
                   (type == TDM_ATTR_INTS && f.num == ATTR_INTS)) {
            int w = type == TDM_ATTR_FLOATS ? TDM_PB_FIXED32 : TDM_PB_VARINT;
            tdm_pb_iter it;
            uint64_t v;
            tdm_pb_iter_init(&it, &f, w);
            while (k < count && tdm_pb_iter_next(&it, &v)) {
                if (type == TDM_ATTR_FLOATS)
                    a->floats[k++] = tdm_pb_as_float(v);
                else
                    a->ints[k++] = (int64_t)v;
            }
        } else if (type == TDM_ATTR_STRINGS && f.num == ATTR_STRINGS && k < count) {
            if (f.len > TDM_ONNX_MAX_ATTR_STRING) {
                s = tdm_errf(err, TDM_ERR_PARSE, "string of %zu bytes (limit %u)", f.len,
                             TDM_ONNX_MAX_ATTR_STRING);
                break;
            }
            a->strings[k] = tdm_strndup(f.len ? (const char *)f.data : "", f.len);
            if (a->strings[k++] == NULL)
                s = tdm_errf(err, TDM_ERR_NOMEM, "out of memory");
        }
    }
    if (s == TDM_OK && type == TDM_ATTR_STRING && a->s == NULL) {
        /* proto3 writers omit an empty string. */
        a->s = tdm_strdup("");
        if (a->s == NULL)
            s = tdm_errf(err, TDM_ERR_NOMEM, "out of memory");
    }
    if (s == TDM_OK && k != count)
        s = tdm_errf(err, TDM_ERR_INTERNAL, "list count changed between passes");
    return s;
}

/* ---- nodes ---------------------------------------------------------------- */

static int node_opset(const loader *L, const char *domain)
{
    if (domain[0] == '\0')
        return (int)L->g->opset;
    for (int i = 0; i < L->n_imports; i++)
        if (strcmp(L->imports[i].domain, domain) == 0)
            return (int)L->imports[i].version;
    return 1;
}

static tdm_status intern_io(loader *L, const tdm_pb_field *f, int32_t *slot)
{
    char *nm = NULL;
    tdm_status s = get_str(f, TDM_ONNX_MAX_NAME, "tensor name", &nm, L->err);
    if (s != TDM_OK)
        return s;
    if (nm[0] != '\0') {
        *slot = tdm_graph_intern(L->g, nm);
        if (*slot < 0)
            s = tdm_errf(L->err, TDM_ERR_NOMEM, "out of memory adding tensor '%s'", nm);
    }
    free(nm);
    return s;
}

static tdm_status parse_node(loader *L, const tdm_pb *gm, const tdm_pb_field *nf, int index)
{
    tdm_err *err = L->err;
    tdm_pb m;
    tdm_status s = tdm_pb_sub(gm, nf, &m, err);
    char *name = NULL, *op = NULL, *domain = NULL;
    size_t n_in = 0, n_out = 0;
    tdm_pb scan = m;
    while (s == TDM_OK && !tdm_pb_done(&scan)) {
        tdm_pb_field f;
        s = tdm_pb_next(&scan, &f, err);
        if (s != TDM_OK)
            break;
        switch (f.num) {
        case NODE_INPUT:
            s = tdm_pb_expect(&f, TDM_PB_LEN, err);
            n_in++;
            break;
        case NODE_OUTPUT:
            s = tdm_pb_expect(&f, TDM_PB_LEN, err);
            n_out++;
            break;
        case NODE_NAME: s = get_str(&f, TDM_ONNX_MAX_NAME, "name", &name, err); break;
        case NODE_OP: s = get_str(&f, TDM_ONNX_MAX_NAME, "op_type", &op, err); break;
        case NODE_DOMAIN: s = get_str(&f, TDM_ONNX_MAX_NAME, "domain", &domain, err); break;
        default: break;
        }
    }
    if (s == TDM_OK && (op == NULL || op[0] == '\0'))
        s = tdm_errf(err, TDM_ERR_PARSE, "no op_type");
    if (s == TDM_OK && (n_in > TDM_ONNX_MAX_NODE_IO || n_out > TDM_ONNX_MAX_NODE_IO))
        s = tdm_errf(err, TDM_ERR_PARSE, "%zu inputs and %zu outputs (limit %d)", n_in, n_out,
                     TDM_ONNX_MAX_NODE_IO);
    /* ai.onnx is spelled "" in the IR so that op lookup has one name for it. */
    const char *dom = domain == NULL || strcmp(domain, "ai.onnx") == 0 ? "" : domain;
    int32_t idx = -1;
    if (s == TDM_OK) {
        idx = tdm_graph_add_node(L->g, op, dom, name, (int)n_in, (int)n_out);
        if (idx < 0)
            s = tdm_errf(err, TDM_ERR_NOMEM, "out of memory adding the node");
    }
    if (s == TDM_OK) {
        L->g->nodes[idx].opset = node_opset(L, dom);
        size_t ki = 0, ko = 0;
        tdm_pb fill = m;
        char *attr_name = NULL;
        while (s == TDM_OK && !tdm_pb_done(&fill)) {
            tdm_pb_field f;
            s = tdm_pb_next(&fill, &f, err);
            if (s != TDM_OK)
                break;
            if (f.num == NODE_INPUT && ki < n_in) {
                s = intern_io(L, &f, &L->g->nodes[idx].in[ki++]);
            } else if (f.num == NODE_OUTPUT && ko < n_out) {
                s = intern_io(L, &f, &L->g->nodes[idx].out[ko++]);
            } else if (f.num == NODE_ATTR) {
                free(attr_name);
                attr_name = NULL;
                s = parse_attr(L, idx, &fill, &f, &attr_name);
                if (s != TDM_OK)
                    tdm_err_prefix(err, "attribute '%s'", attr_name ? attr_name : "?");
            }
        }
        free(attr_name);
    }
    if (s != TDM_OK)
        tdm_err_prefix(err, "node %d (%s '%s')", index, op ? op : "?", name ? name : "");
    free(name);
    free(op);
    free(domain);
    return s;
}

/*
 * Puts the nodes in topological order. Most files are already sorted, which
 * one scan confirms; otherwise Kahn's algorithm, taking ready nodes in file
 * order, so a sorted prefix keeps its order.
 */
static tdm_status sort_nodes(loader *L)
{
    tdm_graph *g = L->g;
    tdm_err *err = L->err;
    tdm_status s = TDM_OK;
    int32_t *prod = malloc(sizeof *prod * ((size_t)g->n_values + 1));
    if (prod == NULL)
        return tdm_errf(err, TDM_ERR_NOMEM, "out of memory sorting nodes");
    for (int32_t v = 0; v < g->n_values; v++)
        prod[v] = -1;
    for (int32_t i = 0; i < g->n_nodes && s == TDM_OK; i++) {
        const tdm_node *n = &g->nodes[i];
        for (int k = 0; k < n->n_out && s == TDM_OK; k++) {
            int32_t v = n->out[k];
            if (v < 0)
                continue;
            const tdm_value *val = &g->values[v];
            if (prod[v] >= 0)
                s = tdm_errf(err, TDM_ERR_PARSE,
                             "node %d (%s '%s'): output '%s' is also produced by node %d", i,
                             n->op_type, n->name, val->name, prod[v]);
            else if (val->is_const || val->is_input)
                s = tdm_errf(err, TDM_ERR_PARSE,
                             "node %d (%s '%s'): output '%s' is also a graph %s", i, n->op_type,
                             n->name, val->name, val->is_const ? "initializer" : "input");
            prod[v] = i;
        }
    }
    bool sorted = true;
    for (int32_t i = 0; i < g->n_nodes && s == TDM_OK && sorted; i++)
        for (int k = 0; k < g->nodes[i].n_in; k++)
            if (g->nodes[i].in[k] >= 0 && prod[g->nodes[i].in[k]] >= i)
                sorted = false;
    if (s != TDM_OK || sorted) {
        free(prod);
        return s;
    }

    size_t nn = (size_t)g->n_nodes;
    int32_t *indeg = calloc(nn + 1, sizeof *indeg);
    int32_t *order = malloc(sizeof *order * (nn + 1));
    int32_t *first = malloc(sizeof *first * (nn + 2)); /* CSR of consumers per producer */
    size_t n_edges = 0;
    for (size_t i = 0; i < nn; i++)
        n_edges += (size_t)g->nodes[i].n_in;
    int32_t *adj = NULL;
    tdm_node *sorted_nodes = NULL;
    if (n_edges > INT32_MAX) {
        s = tdm_errf(err, TDM_ERR_PARSE, "too many node inputs to sort");
        goto out;
    }
    adj = malloc(sizeof *adj * (n_edges + 1));
    sorted_nodes = malloc(sizeof *sorted_nodes * (nn + 1));
    if (!indeg || !order || !first || !adj || !sorted_nodes) {
        s = tdm_errf(err, TDM_ERR_NOMEM, "out of memory sorting nodes");
        goto out;
    }
    memset(first, 0, sizeof *first * (nn + 2));
    for (size_t i = 0; i < nn; i++)
        for (int k = 0; k < g->nodes[i].n_in; k++) {
            int32_t v = g->nodes[i].in[k];
            if (v >= 0 && prod[v] >= 0) {
                first[prod[v] + 1]++;
                indeg[i]++;
            }
        }
    for (size_t i = 0; i < nn; i++)
        first[i + 1] += first[i];
    int32_t *fillp = order; /* reuse order as a temporary write cursor per producer */
    for (size_t i = 0; i < nn; i++)
        fillp[i] = first[i];
    for (size_t i = 0; i < nn; i++)
        for (int k = 0; k < g->nodes[i].n_in; k++) {
            int32_t v = g->nodes[i].in[k];
            if (v >= 0 && prod[v] >= 0)
                adj[fillp[prod[v]]++] = (int32_t)i;
        }
    /* Kahn with a FIFO queue seeded in file order; order doubles as the queue. */
    size_t head = 0, tail = 0;
    for (size_t i = 0; i < nn; i++)
        if (indeg[i] == 0)
            order[tail++] = (int32_t)i;
    while (head < tail) {
        int32_t u = order[head++];
        for (int32_t e = first[u]; e < first[u + 1]; e++)
            if (--indeg[adj[e]] == 0)
                order[tail++] = adj[e];
    }
    if (tail < nn) {
        size_t i = 0;
        while (indeg[i] == 0)
            i++;
        s = tdm_errf(err, TDM_ERR_PARSE, "the graph has a cycle through node %zu (%s '%s')", i,
                     g->nodes[i].op_type, g->nodes[i].name);
        goto out;
    }
    for (size_t i = 0; i < nn; i++)
        sorted_nodes[i] = g->nodes[order[i]];
    memcpy(g->nodes, sorted_nodes, sizeof *sorted_nodes * nn);
out:
    free(prod);
    free(indeg);
    free(order);
    free(first);
    free(adj);
    free(sorted_nodes);
    return s;
}

/* ---- graph and model ------------------------------------------------------ */

static tdm_status parse_initializer(loader *L, const tdm_pb *gm, const tdm_pb_field *f)
{
    tdm_pb m;
    char *name = NULL;
    tdm_tensor t;
    memset(&t, 0, sizeof t);
    tdm_status s = tdm_pb_sub(gm, f, &m, L->err);
    if (s == TDM_OK)
        s = parse_tensor_msg(&L->src, m, &t, &name, L->err);
    if (s == TDM_OK && (name == NULL || name[0] == '\0'))
        s = tdm_errf(L->err, TDM_ERR_PARSE, "initializer without a name");
    int32_t v = -1;
    if (s == TDM_OK) {
        v = tdm_graph_intern(L->g, name);
        if (v < 0)
            s = tdm_errf(L->err, TDM_ERR_NOMEM, "out of memory");
        else if (L->g->values[v].is_const)
            s = tdm_errf(L->err, TDM_ERR_PARSE, "initializer is defined twice");
    }
    if (s == TDM_OK) {
        tdm_value *val = &L->g->values[v];
        val->is_const = true;
        val->cval = t;
        val->dtype = t.dtype;
        val->ndim = t.ndim;
        memcpy(val->dims, t.dims, sizeof val->dims);
    } else {
        tdm_tensor_free(&t);
        tdm_err_prefix(L->err, "initializer '%s'", name ? name : "");
    }
    free(name);
    return s;
}

/* Finds the name of a SparseTensorProto (its values tensor's name) for the message. */
static void sparse_name(const tdm_pb *gm, const tdm_pb_field *f, char **name)
{
    tdm_pb m, vm;
    tdm_err ignore;
    if (tdm_pb_sub(gm, f, &m, &ignore) != TDM_OK)
        return;
    while (!tdm_pb_done(&m)) {
        tdm_pb_field sf;
        if (tdm_pb_next(&m, &sf, &ignore) != TDM_OK)
            return;
        if (sf.num != SPARSE_VALUES || tdm_pb_sub(&m, &sf, &vm, &ignore) != TDM_OK)
            continue;
        while (!tdm_pb_done(&vm)) {
            tdm_pb_field tf;
            if (tdm_pb_next(&vm, &tf, &ignore) != TDM_OK)
                return;
            if (tf.num == TENSOR_NAME)
                get_str(&tf, TDM_ONNX_MAX_NAME, "name", name, &ignore);
        }
    }
}

static tdm_status parse_io(loader *L, const tdm_pb *gm, const tdm_pb_field *f, bool input)
{
    char *name = NULL;
    decl_type d;
    const char *what = input ? "graph input" : "graph output";
    tdm_status s = parse_value_info(gm, f, &name, &d, L->err);
    if (s == TDM_OK && (name == NULL || name[0] == '\0'))
        s = tdm_errf(L->err, TDM_ERR_PARSE, "%s without a name", what);
    if (s != TDM_OK) {
        tdm_err_prefix(L->err, "%s '%s'", what, name ? name : "");
        goto out;
    }
    int32_t v = tdm_graph_intern(L->g, name);
    if (v < 0) {
        s = tdm_errf(L->err, TDM_ERR_NOMEM, "out of memory");
        goto out;
    }
    tdm_value *val = &L->g->values[v];
    if (input) {
        if (val->is_input) {
            s = tdm_errf(L->err, TDM_ERR_PARSE, "graph input '%s' is declared twice", name);
            goto out;
        }
        if (val->is_const)
            goto out; /* an initializer listed as an input (IR < 4): a constant */
        val->is_input = true;
        L->g->inputs[L->g->n_inputs++] = v;
    } else {
        val->is_output = true;
        L->g->outputs[L->g->n_outputs++] = v;
    }
    if (!val->is_const && !(!input && val->is_input))
        apply_decl(val, &d);
out:
    decl_type_free(&d);
    free(name);
    return s;
}

static tdm_status parse_value_info_entry(loader *L, const tdm_pb *gm, const tdm_pb_field *f)
{
    char *name = NULL;
    decl_type d;
    tdm_status s = parse_value_info(gm, f, &name, &d, L->err);
    if (s != TDM_OK) {
        tdm_err_prefix(L->err, "value_info '%s'", name ? name : "");
    } else if (name != NULL) {
        int32_t v = tdm_graph_find(L->g, name);
        /* Only fills what inputs, outputs and initializers left undeclared. */
        if (v >= 0 && d.is_tensor) {
            tdm_value *val = &L->g->values[v];
            if (!val->is_const && !val->is_input && !val->is_output)
                apply_decl(val, &d);
        }
    }
    decl_type_free(&d);
    free(name);
    return s;
}

/* Runs fn over every field `num` of the graph message. */
typedef tdm_status (*field_fn)(loader *L, const tdm_pb *gm, const tdm_pb_field *f, int index);

static tdm_status for_each_field(loader *L, tdm_pb gm, uint32_t num, field_fn fn)
{
    tdm_pb r = gm;
    int index = 0;
    while (!tdm_pb_done(&r)) {
        tdm_pb_field f;
        tdm_status s = tdm_pb_next(&r, &f, L->err);
        if (s != TDM_OK)
            return s;
        if (f.num != num)
            continue;
        s = fn(L, &r, &f, index++);
        if (s != TDM_OK)
            return s;
    }
    return TDM_OK;
}

static tdm_status init_fn(loader *L, const tdm_pb *gm, const tdm_pb_field *f, int index)
{
    (void)index;
    return parse_initializer(L, gm, f);
}

static tdm_status input_fn(loader *L, const tdm_pb *gm, const tdm_pb_field *f, int index)
{
    (void)index;
    return parse_io(L, gm, f, true);
}

static tdm_status output_fn(loader *L, const tdm_pb *gm, const tdm_pb_field *f, int index)
{
    (void)index;
    return parse_io(L, gm, f, false);
}

static tdm_status node_fn(loader *L, const tdm_pb *gm, const tdm_pb_field *f, int index)
{
    return parse_node(L, gm, f, index);
}

static tdm_status value_info_fn(loader *L, const tdm_pb *gm, const tdm_pb_field *f, int index)
{
    (void)index;
    return parse_value_info_entry(L, gm, f);
}

static tdm_status parse_graph(loader *L, tdm_pb gm)
{
    tdm_err *err = L->err;
    size_t n_in = 0, n_out = 0;
    tdm_pb r = gm;
    while (!tdm_pb_done(&r)) {
        tdm_pb_field f;
        tdm_status s = tdm_pb_next(&r, &f, err);
        if (s != TDM_OK)
            return s;
        if (f.num == GRAPH_INPUT)
            n_in++;
        else if (f.num == GRAPH_OUTPUT)
            n_out++;
        else if (f.num == GRAPH_SPARSE_INIT) {
            char *name = NULL;
            sparse_name(&r, &f, &name);
            s = tdm_errf(err, TDM_ERR_UNSUPPORTED, "sparse initializer '%s' is not supported",
                         name ? name : "");
            free(name);
            return s;
        }
    }
    if (n_in > INT32_MAX / 2 || n_out > INT32_MAX / 2)
        return tdm_errf(err, TDM_ERR_PARSE, "too many graph inputs or outputs");
    L->g->inputs = alloc_array(n_in, sizeof *L->g->inputs);
    L->g->outputs = alloc_array(n_out, sizeof *L->g->outputs);
    if (L->g->inputs == NULL || L->g->outputs == NULL)
        return tdm_errf(err, TDM_ERR_NOMEM, "out of memory");
    tdm_status s = for_each_field(L, gm, GRAPH_INIT, init_fn);
    if (s == TDM_OK)
        s = for_each_field(L, gm, GRAPH_INPUT, input_fn);
    if (s == TDM_OK)
        s = for_each_field(L, gm, GRAPH_NODE, node_fn);
    if (s == TDM_OK)
        s = for_each_field(L, gm, GRAPH_OUTPUT, output_fn);
    if (s == TDM_OK)
        s = for_each_field(L, gm, GRAPH_VALUE_INFO, value_info_fn);
    if (s == TDM_OK)
        s = sort_nodes(L);
    if (s == TDM_OK)
        s = tdm_graph_compact(L->g, err);
    return s;
}

static tdm_status parse_opset(loader *L, const tdm_pb *mm, const tdm_pb_field *f)
{
    tdm_pb m;
    tdm_status s = tdm_pb_sub(mm, f, &m, L->err);
    char *domain = NULL;
    uint64_t version = 1;
    while (s == TDM_OK && !tdm_pb_done(&m)) {
        tdm_pb_field of;
        s = tdm_pb_next(&m, &of, L->err);
        if (s != TDM_OK)
            break;
        if (of.num == OPSET_DOMAIN)
            s = get_str(&of, TDM_ONNX_MAX_NAME, "domain", &domain, L->err);
        else if (of.num == OPSET_VERSION)
            s = get_varint(&of, "version", &version, L->err);
    }
    if (s == TDM_OK && (version == 0 || version > INT32_MAX))
        s = tdm_errf(L->err, TDM_ERR_PARSE, "opset version %" PRId64 " is out of range",
                     (int64_t)version);
    if (s == TDM_OK && L->n_imports >= TDM_ONNX_MAX_OPSET_IMPORTS)
        s = tdm_errf(L->err, TDM_ERR_PARSE, "more than %d opset imports",
                     TDM_ONNX_MAX_OPSET_IMPORTS);
    if (s == TDM_OK && domain == NULL) {
        domain = tdm_strdup("");
        if (domain == NULL)
            s = tdm_errf(L->err, TDM_ERR_NOMEM, "out of memory");
    }
    if (s == TDM_OK) {
        opset_import *im = realloc(L->imports, sizeof *im * (size_t)(L->n_imports + 1));
        if (im == NULL) {
            s = tdm_errf(L->err, TDM_ERR_NOMEM, "out of memory");
        } else {
            L->imports = im;
            im[L->n_imports].domain = domain;
            im[L->n_imports].version = (int64_t)version;
            L->n_imports++;
            domain = NULL;
        }
    }
    if (s != TDM_OK)
        tdm_err_prefix(L->err, "opset_import");
    free(domain);
    return s;
}

static tdm_status parse_model(loader *L, const uint8_t *buf, size_t len)
{
    tdm_err *err = L->err;
    tdm_pb m;
    tdm_pb_init(&m, buf, len);
    tdm_pb_field graph = {0};
    bool has_graph = false;
    tdm_status s = TDM_OK;
    tdm_graph *g = L->g;
    while (s == TDM_OK && !tdm_pb_done(&m)) {
        tdm_pb_field f;
        uint64_t v = 0;
        s = tdm_pb_next(&m, &f, err);
        if (s != TDM_OK)
            break;
        switch (f.num) {
        case MODEL_IR_VERSION:
            s = get_varint(&f, "ir_version", &v, err);
            g->ir_version = (int64_t)v;
            break;
        case MODEL_PRODUCER:
            s = get_str(&f, TDM_ONNX_MAX_NAME, "producer_name", &g->producer, err);
            break;
        case MODEL_GRAPH:
            s = tdm_pb_expect(&f, TDM_PB_LEN, err);
            graph = f;
            has_graph = true;
            break;
        case MODEL_OPSET: s = parse_opset(L, &m, &f); break;
        default: break;
        }
    }
    if (s != TDM_OK)
        return s;
    if (!has_graph)
        return tdm_errf(err, TDM_ERR_PARSE, "not an ONNX model: no graph");
    g->opset = 1;
    g->opset_ml = 0;
    for (int i = 0; i < L->n_imports; i++) {
        const char *d = L->imports[i].domain;
        if (d[0] == '\0' || strcmp(d, "ai.onnx") == 0)
            g->opset = L->imports[i].version;
        else if (strcmp(d, "ai.onnx.ml") == 0)
            g->opset_ml = L->imports[i].version;
    }
    tdm_pb gm;
    s = tdm_pb_sub(&m, &graph, &gm, err);
    if (s == TDM_OK)
        s = parse_graph(L, gm);
    if (s != TDM_OK)
        tdm_err_prefix(err, "graph");
    return s;
}

/* Loads from bytes; shared by the file and buffer entry points. */
static tdm_status load(const uint8_t *buf, size_t len, const char *base_dir, bool mapped,
                       const tdm_load_options *opt, tdm_graph **out, tdm_err *err)
{
    tdm_graph *g = NULL;
    tdm_status s = tdm_graph_new(&g, err);
    if (s != TDM_OK)
        return s;
    loader L;
    memset(&L, 0, sizeof L);
    L.g = g;
    L.err = err;
    L.src.base_dir = base_dir;
    L.src.drop_pages = mapped;
    long page = sysconf(_SC_PAGESIZE);
    L.src.page = page > 0 ? (size_t)page : 4096;
    s = parse_model(&L, buf, len);
    if (s == TDM_OK)
        s = tdm_graph_validate(g, err);
    /* ---- graph optimisation: the lead's pass manager runs here ---- */
    if (s == TDM_OK) {
        tdm_load_options def = {0};
        s = tdm_graph_optimize(g, opt != NULL ? opt : &def, err);
    }
    for (int i = 0; i < L.n_imports; i++)
        free(L.imports[i].domain);
    free(L.imports);
    if (s != TDM_OK) {
        tdm_graph_free(g);
        return s;
    }
    *out = g;
    return TDM_OK;
}

static uint64_t max_file_size(const tdm_load_options *opt)
{
    return opt != NULL && opt->max_file_size != 0 ? opt->max_file_size : TDM_ONNX_DEFAULT_MAX_FILE;
}

tdm_status tdm_graph_load_buffer(const void *data, size_t len, const char *base_dir,
                                 const tdm_load_options *opt, tdm_graph **out, tdm_err *err)
{
    if (out == NULL || (data == NULL && len > 0))
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "tdm_graph_load_buffer: NULL argument");
    *out = NULL;
    if ((uint64_t)len > max_file_size(opt))
        return tdm_errf(err, TDM_ERR_PARSE, "model of %zu bytes exceeds the limit of %" PRIu64, len,
                        max_file_size(opt));
    tdm_status s =
        load(data != NULL ? data : (const void *)"", len, base_dir, false, opt, out, err);
    if (s != TDM_OK)
        tdm_err_prefix(err, "onnx buffer");
    return s;
}

tdm_status tdm_graph_load(const char *path, const tdm_load_options *opt, tdm_graph **out,
                          tdm_err *err)
{
    if (path == NULL || out == NULL)
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "tdm_graph_load: NULL argument");
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return tdm_errf(err, errno == ENOENT ? TDM_ERR_NOT_FOUND : TDM_ERR_IO,
                        "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return tdm_errf(err, TDM_ERR_IO, "%s: not a regular file", path);
    }
    uint64_t size = (uint64_t)st.st_size;
    if (size > max_file_size(opt) || size > SIZE_MAX / 2) {
        close(fd);
        return tdm_errf(err, TDM_ERR_PARSE, "%s: %" PRIu64 " bytes exceeds the limit of %" PRIu64,
                        path, size, max_file_size(opt));
    }
    if (size == 0) {
        close(fd);
        return tdm_errf(err, TDM_ERR_PARSE, "%s: empty file", path);
    }
    void *map = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0);
    int map_errno = errno;
    close(fd);
    if (map == MAP_FAILED)
        return tdm_errf(err, TDM_ERR_IO, "%s: cannot map: %s", path, strerror(map_errno));
    /* External data lives beside the model. */
    const char *slash = strrchr(path, '/');
    char *dir = slash == NULL ? tdm_strdup(".")
                              : tdm_strndup(path, slash == path ? 1 : (size_t)(slash - path));
    tdm_status s;
    if (dir == NULL)
        s = tdm_errf(err, TDM_ERR_NOMEM, "out of memory");
    else
        s = load(map, (size_t)size, dir, true, opt, out, err);
    munmap(map, (size_t)size);
    free(dir);
    if (s != TDM_OK)
        tdm_err_prefix(err, "%s", path);
    return s;
}

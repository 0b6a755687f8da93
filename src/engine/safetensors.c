/*
 * safetensors reader: validate the header completely, then hand out views.
 *
 * The header is untrusted, so opening does all the checking once (see
 * safetensors.h) and keeps a table of entries sorted by data offset; overlap
 * is then one pass over neighbours. Getting a tensor only converts or
 * borrows. The mapping is MAP_PRIVATE and read-only; a float32 tensor whose
 * offset is not 4-byte aligned (the format does not promise alignment) is
 * copied so that kernels may read it as floats.
 */
#include "engine/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/json.h"

#define ST_MAX_HEADER ((uint64_t)100 << 20)

struct tdm_safetensors {
    const uint8_t *base; /* whole file or buffer */
    size_t len;
    const uint8_t *data; /* data area, after the header */
    size_t data_len;
    bool mapped;
    char *what; /* file name for messages */
    tdm_st_info *ents;
    int n;
    char *names; /* all names and dtypes, NUL-separated */
};

static size_t dtype_bytes(const char *dt)
{
    static const struct {
        const char *name;
        size_t size;
    } k[] = {{"F64", 8}, {"F32", 4}, {"F16", 2},  {"BF16", 2},    {"I64", 8},
             {"I32", 4}, {"I16", 2}, {"I8", 1},   {"U64", 8},     {"U32", 4},
             {"U16", 2}, {"U8", 1},  {"BOOL", 1}, {"F8_E4M3", 1}, {"F8_E5M2", 1}};
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
        if (strcmp(k[i].name, dt) == 0)
            return k[i].size;
    return 0;
}

static int cmp_begin(const void *a, const void *b)
{
    const tdm_st_info *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

static int cmp_name(const void *a, const void *b)
{
    const tdm_st_info *const *x = a, *const *y = b;
    return strcmp((*x)->name, (*y)->name);
}

static tdm_status parse_entry(tdm_safetensors *st, const tdm_json *m, tdm_st_info *e, char **pool,
                              tdm_err *err)
{
    const char *w = st->what;
    if (m->key_len != strlen(m->key) || m->key_len == 0)
        return tdm_errf(err, TDM_ERR_PARSE, "%s: a tensor name is empty or holds a NUL byte", w);
    if (m->type != TDM_JSON_OBJECT)
        return tdm_errf(err, TDM_ERR_PARSE, "%s: tensor '%s': entry is a %s, not an object", w,
                        m->key, tdm_json_type_name(m->type));
    const tdm_json *dt = tdm_json_get(m, "dtype"), *sh = tdm_json_get(m, "shape"),
                   *off = tdm_json_get(m, "data_offsets");
    size_t dlen = 0;
    const char *dts = tdm_json_string(dt, &dlen);
    if (dts == NULL || dlen > 16)
        return tdm_errf(err, TDM_ERR_PARSE, "%s: tensor '%s': missing or bad \"dtype\"", w, m->key);
    size_t esize = dtype_bytes(dts);
    if (esize == 0)
        return tdm_errf(err, TDM_ERR_PARSE, "%s: tensor '%s': unknown dtype \"%s\"", w, m->key,
                        dts);
    if (sh == NULL || sh->type != TDM_JSON_ARRAY || sh->len > TDM_MAX_DIMS)
        return tdm_errf(err, TDM_ERR_PARSE,
                        "%s: tensor '%s': \"shape\" must be an array of at most %d dims", w, m->key,
                        TDM_MAX_DIMS);
    e->ndim = (int)sh->len;
    for (size_t d = 0; d < sh->len; d++) {
        int64_t v;
        if (!tdm_json_int(&sh->items[d], &v) || v < 0)
            return tdm_errf(err, TDM_ERR_PARSE,
                            "%s: tensor '%s': shape[%zu] is not a non-negative integer", w, m->key,
                            d);
        e->dims[d] = v;
    }
    int64_t b, en;
    if (off == NULL || off->type != TDM_JSON_ARRAY || off->len != 2 ||
        !tdm_json_int(&off->items[0], &b) || !tdm_json_int(&off->items[1], &en) || b < 0 || en < b)
        return tdm_errf(err, TDM_ERR_PARSE,
                        "%s: tensor '%s': \"data_offsets\" must be [begin, end] with "
                        "0 <= begin <= end",
                        w, m->key);
    if ((uint64_t)en > st->data_len)
        return tdm_errf(err, TDM_ERR_PARSE,
                        "%s: tensor '%s': data_offsets [%" PRId64 ", %" PRId64
                        "] run past the data area of %zu bytes",
                        w, m->key, b, en, st->data_len);
    size_t bytes;
    if (!tdm_shape_checked_bytes(e->dims, e->ndim, esize, SIZE_MAX / 2, &bytes) ||
        bytes != (uint64_t)(en - b))
        return tdm_errf(err, TDM_ERR_PARSE,
                        "%s: tensor '%s': shape and dtype %s need a different size than the "
                        "%" PRId64 " bytes of data_offsets",
                        w, m->key, dts, en - b);
    e->begin = (uint64_t)b;
    e->end = (uint64_t)en;
    /* names and dtypes go into one pool, filled in order */
    memcpy(*pool, m->key, m->key_len + 1);
    e->name = *pool;
    *pool += m->key_len + 1;
    memcpy(*pool, dts, dlen + 1);
    e->dtype = *pool;
    *pool += dlen + 1;
    return TDM_OK;
}

static tdm_status parse_header(tdm_safetensors *st, tdm_err *err)
{
    const char *w = st->what;
    if (st->len < 8)
        return tdm_errf(err, TDM_ERR_PARSE, "%s: %zu bytes is too short for a safetensors file", w,
                        st->len);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--)
        hl = hl << 8 | st->base[i];
    if (hl > ST_MAX_HEADER || hl > st->len - 8)
        return tdm_errf(err, TDM_ERR_PARSE,
                        "%s: header length %" PRIu64 " exceeds the file (%zu bytes) or the "
                        "limit of %" PRIu64 " bytes",
                        w, hl, st->len, ST_MAX_HEADER);
    st->data = st->base + 8 + hl;
    st->data_len = st->len - 8 - (size_t)hl;
    tdm_json_doc *doc = NULL;
    tdm_status s = tdm_json_parse((const char *)st->base + 8, (size_t)hl, 0, &doc, err);
    if (s != TDM_OK) {
        tdm_err_prefix(err, "%s: header", w);
        return TDM_ERR_PARSE;
    }
    const tdm_json *root = tdm_json_root(doc);
    if (root->type != TDM_JSON_OBJECT) {
        tdm_json_type t = root->type;
        tdm_json_free(doc);
        return tdm_errf(err, TDM_ERR_PARSE, "%s: header is a %s, not an object", w,
                        tdm_json_type_name(t));
    }
    size_t pool_bytes = 0;
    int n = 0;
    for (size_t i = 0; i < root->len; i++) {
        const tdm_json *m = &root->items[i];
        if (strcmp(m->key, "__metadata__") == 0)
            continue;
        const tdm_json *dt = tdm_json_get(m, "dtype");
        size_t dl = 0;
        if (tdm_json_string(dt, &dl) == NULL)
            dl = 0;
        pool_bytes += m->key_len + 1 + dl + 1;
        n++;
    }
    st->ents = calloc((size_t)n + 1, sizeof *st->ents);
    st->names = malloc(pool_bytes + 1);
    if (st->ents == NULL || st->names == NULL) {
        tdm_json_free(doc);
        return tdm_errf(err, TDM_ERR_NOMEM, "%s: out of memory for %d header entries", w, n);
    }
    char *pool = st->names;
    int k = 0;
    for (size_t i = 0; i < root->len && s == TDM_OK; i++) {
        const tdm_json *m = &root->items[i];
        if (strcmp(m->key, "__metadata__") == 0) {
            if (m->type != TDM_JSON_OBJECT)
                s = tdm_errf(err, TDM_ERR_PARSE, "%s: __metadata__ is not an object", w);
            continue;
        }
        s = parse_entry(st, m, &st->ents[k], &pool, err);
        k++;
    }
    tdm_json_free(doc);
    if (s != TDM_OK)
        return s;
    st->n = n;
    qsort(st->ents, (size_t)n, sizeof *st->ents, cmp_begin);
    for (int i = 1; i < n; i++)
        if (st->ents[i].begin < st->ents[i - 1].end)
            return tdm_errf(err, TDM_ERR_PARSE,
                            "%s: tensors '%s' and '%s' overlap in the data area", w,
                            st->ents[i - 1].name, st->ents[i].name);
    /* duplicate names: the JSON reader keeps both, the format forbids it */
    const tdm_st_info **by_name = malloc(((size_t)n + 1) * sizeof *by_name);
    if (by_name == NULL)
        return tdm_errf(err, TDM_ERR_NOMEM, "%s: out of memory for %d header entries", w, n);
    for (int i = 0; i < n; i++)
        by_name[i] = &st->ents[i];
    qsort(by_name, (size_t)n, sizeof *by_name, cmp_name);
    for (int i = 1; i < n; i++)
        if (strcmp(by_name[i]->name, by_name[i - 1]->name) == 0) {
            s = tdm_errf(err, TDM_ERR_PARSE, "%s: tensor '%s' appears twice", w, by_name[i]->name);
            break;
        }
    free(by_name);
    if (s != TDM_OK)
        return s;
    return TDM_OK;
}

static tdm_status open_common(tdm_safetensors *st, tdm_safetensors **out, tdm_err *err)
{
    tdm_status s =
        st->what != NULL ? parse_header(st, err) : tdm_errf(err, TDM_ERR_NOMEM, "out of memory");
    if (s != TDM_OK) {
        tdm_safetensors_free(st);
        return s;
    }
    *out = st;
    return TDM_OK;
}

tdm_status tdm_safetensors_open_buffer(const void *data, size_t len, const char *what,
                                       tdm_safetensors **out, tdm_err *err)
{
    if (out == NULL || (data == NULL && len > 0))
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "tdm_safetensors_open_buffer: NULL argument");
    *out = NULL;
    tdm_safetensors *st = calloc(1, sizeof *st);
    if (st == NULL)
        return tdm_errf(err, TDM_ERR_NOMEM, "out of memory");
    st->base = data;
    st->len = len;
    st->what = tdm_strdup(what != NULL ? what : "buffer");
    return open_common(st, out, err);
}

tdm_status tdm_safetensors_open(const char *path, tdm_safetensors **out, tdm_err *err)
{
    if (path == NULL || out == NULL)
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "tdm_safetensors_open: NULL argument");
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return tdm_errf(err, errno == ENOENT ? TDM_ERR_NOT_FOUND : TDM_ERR_IO,
                        "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return tdm_errf(err, TDM_ERR_IO, "%s: not a regular file", path);
    }
    if (sb.st_size < 8 || (uint64_t)sb.st_size > SIZE_MAX / 2) {
        close(fd);
        return tdm_errf(err, TDM_ERR_PARSE, "%s: %lld bytes is not a safetensors file", path,
                        (long long)sb.st_size);
    }
    void *map = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int map_errno = errno;
    close(fd);
    if (map == MAP_FAILED)
        return tdm_errf(err, TDM_ERR_IO, "%s: cannot map: %s", path, strerror(map_errno));
    tdm_safetensors *st = calloc(1, sizeof *st);
    if (st == NULL) {
        munmap(map, (size_t)sb.st_size);
        return tdm_errf(err, TDM_ERR_NOMEM, "out of memory");
    }
    st->base = map;
    st->len = (size_t)sb.st_size;
    st->mapped = true;
    st->what = tdm_strdup(path);
    return open_common(st, out, err);
}

void tdm_safetensors_free(tdm_safetensors *st)
{
    if (st == NULL)
        return;
    if (st->mapped && st->base != NULL)
        munmap((void *)st->base, st->len);
    free(st->ents);
    free(st->names);
    free(st->what);
    free(st);
}

int tdm_safetensors_count(const tdm_safetensors *st)
{
    return st->n;
}

const tdm_st_info *tdm_safetensors_info(const tdm_safetensors *st, int i)
{
    return i >= 0 && i < st->n ? &st->ents[i] : NULL;
}

const tdm_st_info *tdm_safetensors_find(const tdm_safetensors *st, const char *name)
{
    for (int i = 0; i < st->n; i++)
        if (strcmp(st->ents[i].name, name) == 0)
            return &st->ents[i];
    return NULL;
}

tdm_status tdm_safetensors_get(const tdm_safetensors *st, const char *name, tdm_tensor *out,
                               tdm_err *err)
{
    memset(out, 0, sizeof *out);
    const tdm_st_info *e = tdm_safetensors_find(st, name);
    if (e == NULL)
        return tdm_errf(err, TDM_ERR_NOT_FOUND, "%s: no tensor named '%s'", st->what, name);
    const uint8_t *src = st->data + e->begin;
    size_t bytes = (size_t)(e->end - e->begin);
    tdm_dtype dt;
    bool f16 = false;
    if (strcmp(e->dtype, "F32") == 0) {
        dt = TDM_DTYPE_FLOAT32;
    } else if (strcmp(e->dtype, "F16") == 0) {
        dt = TDM_DTYPE_FLOAT32;
        f16 = true;
    } else if (strcmp(e->dtype, "I64") == 0) {
        dt = TDM_DTYPE_INT64;
    } else if (strcmp(e->dtype, "I32") == 0) {
        dt = TDM_DTYPE_INT32;
    } else {
        return tdm_errf(err, TDM_ERR_UNSUPPORTED,
                        "%s: tensor '%s' has dtype %s; only F32, F16, I64 and I32 are supported%s",
                        st->what, name, e->dtype,
                        strcmp(e->dtype, "BF16") == 0 ? " (convert the model to float32 or float16)"
                                                      : "");
    }
    tdm_tensor_set_shape(out, dt, e->ndim, e->dims);
    size_t esz = tdm_dtype_size(dt);
    if (!f16 && ((uintptr_t)src % esz) == 0) {
        out->data = (void *)src; /* borrowed from the read-only mapping */
        return TDM_OK;
    }
    tdm_status s = tdm_tensor_alloc(out, err);
    if (s != TDM_OK) {
        tdm_err_prefix(err, "%s: tensor '%s'", st->what, name);
        return s;
    }
    if (f16) {
        float *d = out->data;
        size_t n = bytes / 2;
        for (size_t i = 0; i < n; i++)
            d[i] = tdm_fp16_to_fp32((uint16_t)(src[2 * i] | src[2 * i + 1] << 8));
    } else if (bytes > 0) {
        memcpy(out->data, src, bytes);
    }
    return TDM_OK;
}

void tdm_safetensors_take_image(tdm_safetensors *st, void **image, size_t *len)
{
    if (st->mapped) {
        *image = (void *)st->base;
        *len = st->len;
        st->mapped = false;
    } else {
        *image = NULL;
        *len = 0;
    }
}

void tdm_safetensors_release(const tdm_safetensors *st, const char *name)
{
    const tdm_st_info *e = tdm_safetensors_find(st, name);
    long page = sysconf(_SC_PAGESIZE);
    if (e == NULL || !st->mapped || page <= 0)
        return;
    uintptr_t lo = (uintptr_t)(st->data + e->begin), hi = (uintptr_t)(st->data + e->end);
    uintptr_t p = (uintptr_t)page;
    lo = (lo + p - 1) / p * p; /* only pages entirely inside the tensor */
    hi = hi / p * p;
    if (hi > lo)
        (void)madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

/*
 * NumPy .npy reading and writing (see include/tandem/npy.h).
 *
 * The format is a 6-byte magic, a version, a little-endian header length
 * (2 bytes in 1.0, 4 bytes in 2.0/3.0) and a header that is a Python dict
 * literal such as {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
 * followed by the raw C-order data. Rather than a general Python literal
 * parser, the header is read by a small tokenizer that accepts exactly the
 * three keys numpy writes, with the value forms numpy (and older numpy under
 * Python 2: "3L") produce. Anything else is an error naming what was found.
 *
 * Sizes from the header are untrusted: the element count is computed with
 * overflow checks and must match the bytes present exactly before a tensor
 * is allocated. Big-endian data is byte-swapped to the host (little-endian)
 * order after the copy.
 *
 * Writing reproduces numpy's own layout (numpy 1.24): the header is padded
 * with spaces to a 64-byte boundary and ends in a newline, so that files are
 * byte-identical to np.save's for the same array.
 */
#include "tandem/npy.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAGIC_LEN 6
#define NPY_ALIGN 64
/* numpy refuses headers above 10000 bytes by default; allow more, but bounded. */
#define NPY_MAX_HEADER (1u << 20)

typedef struct npy_header {
    tdm_dtype dtype;
    bool big_endian; /* data needs a byte swap */
    int ndim;
    int64_t dims[TDM_MAX_DIMS];
    size_t data_offset;
} npy_header;

/* ---- header parsing ---------------------------------------------------------- */

typedef struct cursor {
    const char *p, *end;
} cursor;

static void skip_ws(cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static bool accept(cursor *c, char ch)
{
    skip_ws(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return true;
    }
    return false;
}

/* A quoted Python string without escapes; *s points into the header. */
static bool read_string(cursor *c, const char **s, size_t *n)
{
    skip_ws(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"'))
        return false;
    char q = *c->p++;
    const char *start = c->p;
    while (c->p < c->end && *c->p != q) {
        if (*c->p == '\\')
            return false;
        c->p++;
    }
    if (c->p >= c->end)
        return false;
    *s = start;
    *n = (size_t)(c->p - start);
    c->p++;
    return true;
}

static bool read_word(cursor *c, const char *w)
{
    skip_ws(c);
    size_t n = strlen(w);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, w, n) != 0)
        return false;
    c->p += n;
    return true;
}

static bool read_int(cursor *c, int64_t *v)
{
    skip_ws(c);
    int64_t x = 0;
    const char *start = c->p;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        int d = *c->p - '0';
        if (x > (INT64_MAX - d) / 10)
            return false;
        x = x * 10 + d;
        c->p++;
    }
    if (c->p == start)
        return false;
    if (c->p < c->end && *c->p == 'L') /* Python 2 long */
        c->p++;
    *v = x;
    return true;
}

static tdm_status parse_descr(const char *s, size_t n, npy_header *h, tdm_err *err)
{
    char buf[16];
    int shown = n < sizeof buf ? (int)n : (int)sizeof buf - 1;
    if (n >= 2 && s[1] == 'O')
        return tdm_errf(err, TDM_ERR_UNSUPPORTED, "object arrays (descr '%.*s') are not supported",
                        shown, s);
    if (n < 3 || n > 4)
        goto unsupported;
    char order = s[0], kind = s[1];
    int size = 0;
    for (size_t i = 2; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            goto unsupported;
        size = size * 10 + (s[i] - '0');
    }
    if (order != '<' && order != '>' && order != '|' && order != '=')
        goto unsupported;
    tdm_dtype dt = TDM_DTYPE_UNDEFINED;
    if (kind == 'f')
        dt = size == 2   ? TDM_DTYPE_FLOAT16
             : size == 4 ? TDM_DTYPE_FLOAT32
             : size == 8 ? TDM_DTYPE_FLOAT64
                         : TDM_DTYPE_UNDEFINED;
    else if (kind == 'i')
        dt = size == 1   ? TDM_DTYPE_INT8
             : size == 2 ? TDM_DTYPE_INT16
             : size == 4 ? TDM_DTYPE_INT32
             : size == 8 ? TDM_DTYPE_INT64
                         : TDM_DTYPE_UNDEFINED;
    else if (kind == 'u')
        dt = size == 1   ? TDM_DTYPE_UINT8
             : size == 2 ? TDM_DTYPE_UINT16
             : size == 4 ? TDM_DTYPE_UINT32
             : size == 8 ? TDM_DTYPE_UINT64
                         : TDM_DTYPE_UNDEFINED;
    else if (kind == 'b')
        dt = size == 1 ? TDM_DTYPE_BOOL : TDM_DTYPE_UNDEFINED;
    if (dt == TDM_DTYPE_UNDEFINED)
        goto unsupported;
    h->dtype = dt;
    h->big_endian = order == '>' && size > 1;
    return TDM_OK;
unsupported:
    memcpy(buf, s, (size_t)shown);
    buf[shown] = '\0';
    return tdm_errf(err, TDM_ERR_UNSUPPORTED, "dtype '%s' is not supported", buf);
}

static tdm_status parse_shape(cursor *c, npy_header *h, tdm_err *err)
{
    if (!accept(c, '('))
        return tdm_errf(err, TDM_ERR_PARSE, "'shape' is not a tuple");
    h->ndim = 0;
    for (;;) {
        if (accept(c, ')'))
            return TDM_OK;
        int64_t v;
        if (!read_int(c, &v))
            return tdm_errf(err, TDM_ERR_PARSE, "'shape' holds something other than sizes");
        if (h->ndim >= TDM_MAX_DIMS)
            return tdm_errf(err, TDM_ERR_UNSUPPORTED, "rank above %d", TDM_MAX_DIMS);
        h->dims[h->ndim++] = v;
        if (accept(c, ')'))
            return TDM_OK;
        if (!accept(c, ','))
            return tdm_errf(err, TDM_ERR_PARSE, "'shape' tuple is malformed");
    }
}

static tdm_status parse_dict(const char *text, size_t len, npy_header *h, tdm_err *err)
{
    cursor c = {text, text + len};
    bool have_descr = false, have_order = false, have_shape = false;
    if (!accept(&c, '{'))
        return tdm_errf(err, TDM_ERR_PARSE, "header is not a dict");
    for (;;) {
        if (accept(&c, '}'))
            break;
        const char *key;
        size_t kn;
        if (!read_string(&c, &key, &kn))
            return tdm_errf(err, TDM_ERR_PARSE, "header dict key is not a string");
        if (!accept(&c, ':'))
            return tdm_errf(err, TDM_ERR_PARSE, "header dict is missing a ':'");
        tdm_status s;
        if (kn == 5 && memcmp(key, "descr", 5) == 0) {
            const char *d;
            size_t dn;
            skip_ws(&c);
            if (c.p < c.end && *c.p == '[')
                return tdm_errf(err, TDM_ERR_UNSUPPORTED,
                                "structured dtypes (record arrays) are not supported");
            if (!read_string(&c, &d, &dn))
                return tdm_errf(err, TDM_ERR_PARSE, "'descr' is not a string");
            s = parse_descr(d, dn, h, err);
            if (s != TDM_OK)
                return s;
            have_descr = true;
        } else if (kn == 13 && memcmp(key, "fortran_order", 13) == 0) {
            if (read_word(&c, "True"))
                return tdm_errf(err, TDM_ERR_UNSUPPORTED,
                                "Fortran-order arrays are not supported (save a C-order copy: "
                                "np.ascontiguousarray)");
            if (!read_word(&c, "False"))
                return tdm_errf(err, TDM_ERR_PARSE, "'fortran_order' is not True or False");
            have_order = true;
        } else if (kn == 5 && memcmp(key, "shape", 5) == 0) {
            s = parse_shape(&c, h, err);
            if (s != TDM_OK)
                return s;
            have_shape = true;
        } else {
            return tdm_errf(err, TDM_ERR_PARSE, "unexpected header key '%.*s'",
                            kn > 64 ? 64 : (int)kn, key);
        }
        if (accept(&c, '}'))
            break;
        if (!accept(&c, ','))
            return tdm_errf(err, TDM_ERR_PARSE, "header dict entries are not separated by ','");
    }
    skip_ws(&c);
    if (c.p != c.end)
        return tdm_errf(err, TDM_ERR_PARSE, "unexpected bytes after the header dict");
    if (!have_descr || !have_order || !have_shape)
        return tdm_errf(err, TDM_ERR_PARSE, "header lacks '%s'",
                        !have_descr   ? "descr"
                        : !have_order ? "fortran_order"
                                      : "shape");
    return TDM_OK;
}

/*
 * Parses the preamble and header in buf (which holds at least the header;
 * `avail` bytes). Returns TDM_ERR_PARSE when truncated.
 */
static tdm_status parse_header(const uint8_t *buf, size_t avail, npy_header *h, tdm_err *err)
{
    memset(h, 0, sizeof *h);
    if (avail < 10 || memcmp(buf, NPY_MAGIC, NPY_MAGIC_LEN) != 0)
        return tdm_errf(err, TDM_ERR_PARSE, "not a .npy file (bad magic)");
    uint8_t major = buf[6];
    size_t hlen, pre;
    if (major == 1) {
        hlen = (size_t)buf[8] | (size_t)buf[9] << 8;
        pre = 10;
    } else if (major == 2 || major == 3) {
        if (avail < 12)
            return tdm_errf(err, TDM_ERR_PARSE, "truncated .npy preamble");
        hlen = (size_t)buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 | (size_t)buf[11] << 24;
        pre = 12;
    } else {
        return tdm_errf(err, TDM_ERR_UNSUPPORTED, ".npy format version %u.%u is not supported",
                        major, buf[7]);
    }
    if (hlen > NPY_MAX_HEADER)
        return tdm_errf(err, TDM_ERR_PARSE, "header of %zu bytes exceeds the limit of %u", hlen,
                        NPY_MAX_HEADER);
    if (avail - pre < hlen)
        return tdm_errf(err, TDM_ERR_PARSE, "truncated header: %zu bytes promised, %zu present",
                        hlen, avail - pre);
    tdm_status s = parse_dict((const char *)buf + pre, hlen, h, err);
    if (s != TDM_OK)
        return s;
    h->data_offset = pre + hlen;
    return TDM_OK;
}

static void swap_bytes(void *data, size_t numel, size_t es)
{
    uint8_t *p = data;
    for (size_t i = 0; i < numel; i++, p += es)
        for (size_t a = 0, b = es - 1; a < b; a++, b--) {
            uint8_t t = p[a];
            p[a] = p[b];
            p[b] = t;
        }
}

/* Checks that `data_len` bytes are exactly what the header needs; returns the count. */
static tdm_status check_size(const npy_header *h, size_t data_len, size_t *bytes, tdm_err *err)
{
    size_t es = tdm_dtype_size(h->dtype);
    if (!tdm_shape_checked_bytes(h->dims, h->ndim, es, SIZE_MAX / 2, bytes))
        return tdm_errf(err, TDM_ERR_PARSE, "shape overflows the address space");
    if (data_len < *bytes)
        return tdm_errf(err, TDM_ERR_PARSE, "truncated data: shape needs %zu bytes, %zu present",
                        *bytes, data_len);
    if (data_len > *bytes)
        return tdm_errf(err, TDM_ERR_PARSE, "%zu unexpected bytes after the data",
                        data_len - *bytes);
    return TDM_OK;
}

static tdm_status make_tensor(const npy_header *h, tdm_tensor *out, tdm_err *err)
{
    memset(out, 0, sizeof *out);
    tdm_tensor_set_shape(out, h->dtype, h->ndim, h->dims);
    return tdm_tensor_alloc(out, err);
}

tdm_status tdm_npy_parse(const void *buf, size_t len, tdm_tensor *out, tdm_err *err)
{
    if (out == NULL || (buf == NULL && len > 0))
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "tdm_npy_parse: NULL argument");
    memset(out, 0, sizeof *out);
    npy_header h;
    tdm_status s = parse_header(buf, len, &h, err);
    size_t bytes = 0;
    if (s == TDM_OK)
        s = check_size(&h, len - h.data_offset, &bytes, err);
    if (s == TDM_OK)
        s = make_tensor(&h, out, err);
    if (s != TDM_OK) {
        tdm_err_prefix(err, "npy");
        return s;
    }
    if (bytes > 0)
        memcpy(out->data, (const uint8_t *)buf + h.data_offset, bytes);
    if (h.big_endian)
        swap_bytes(out->data, bytes / tdm_dtype_size(h.dtype), tdm_dtype_size(h.dtype));
    return TDM_OK;
}

static bool pread_full(int fd, void *buf, size_t n, size_t off)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r = pread(fd, (uint8_t *)buf + done, n - done, (off_t)(off + done));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        done += (size_t)r;
    }
    return true;
}

tdm_status tdm_npy_read(const char *path, tdm_tensor *out, tdm_err *err)
{
    if (path == NULL || out == NULL)
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "tdm_npy_read: NULL argument");
    memset(out, 0, sizeof *out);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return tdm_errf(err, errno == ENOENT ? TDM_ERR_NOT_FOUND : TDM_ERR_IO,
                        "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    tdm_status s = TDM_OK;
    uint8_t pre[12] = {0};
    uint8_t *hdr = NULL;
    npy_header h;
    size_t bytes = 0, fsize = 0;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        s = tdm_errf(err, TDM_ERR_IO, "not a regular file");
        goto out;
    }
    fsize = (size_t)st.st_size;
    /* Read the preamble, then exactly the header, then the data into the tensor. */
    size_t first = fsize < sizeof pre ? fsize : sizeof pre;
    if (!pread_full(fd, pre, first, 0)) {
        s = tdm_errf(err, TDM_ERR_IO, "read error");
        goto out;
    }
    s = parse_header(pre, first, &h, err);
    if (s == TDM_OK || first < 10 || memcmp(pre, NPY_MAGIC, NPY_MAGIC_LEN) != 0 ||
        (pre[6] != 1 && pre[6] != 2 && pre[6] != 3))
        goto parsed; /* header fits in 12 bytes (impossible) or the preamble is bad */
    size_t hlen = pre[6] == 1 ? ((size_t)pre[8] | (size_t)pre[9] << 8)
                              : ((size_t)pre[8] | (size_t)pre[9] << 8 | (size_t)pre[10] << 16 |
                                 (size_t)pre[11] << 24);
    size_t total = (pre[6] == 1 ? 10 : 12) + (hlen < NPY_MAX_HEADER ? hlen : NPY_MAX_HEADER);
    if (total > fsize)
        total = fsize;
    hdr = malloc(total ? total : 1);
    if (hdr == NULL) {
        s = tdm_errf(err, TDM_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (!pread_full(fd, hdr, total, 0)) {
        s = tdm_errf(err, TDM_ERR_IO, "read error");
        goto out;
    }
    s = parse_header(hdr, total, &h, err);
parsed:
    if (s == TDM_OK)
        s = check_size(&h, fsize - h.data_offset, &bytes, err);
    if (s == TDM_OK)
        s = make_tensor(&h, out, err);
    if (s == TDM_OK && bytes > 0 && !pread_full(fd, out->data, bytes, h.data_offset)) {
        s = tdm_errf(err, TDM_ERR_IO, "short read");
        tdm_tensor_free(out);
    }
    if (s == TDM_OK && h.big_endian)
        swap_bytes(out->data, bytes / tdm_dtype_size(h.dtype), tdm_dtype_size(h.dtype));
out:
    free(hdr);
    close(fd);
    if (s != TDM_OK)
        tdm_err_prefix(err, "%s", path);
    return s;
}

/* ---- writing --------------------------------------------------------------------- */

static const char *descr_of(tdm_dtype dt)
{
    switch (dt) {
    case TDM_DTYPE_FLOAT32: return "<f4";
    case TDM_DTYPE_FLOAT16: return "<f2";
    case TDM_DTYPE_FLOAT64: return "<f8";
    case TDM_DTYPE_INT64: return "<i8";
    case TDM_DTYPE_INT32: return "<i4";
    case TDM_DTYPE_INT16: return "<i2";
    case TDM_DTYPE_INT8: return "|i1";
    case TDM_DTYPE_UINT8: return "|u1";
    case TDM_DTYPE_BOOL: return "|b1";
    case TDM_DTYPE_UINT16: return "<u2";
    case TDM_DTYPE_UINT32: return "<u4";
    case TDM_DTYPE_UINT64: return "<u8";
    default: return NULL;
    }
}

/*
 * Builds the preamble and header into hdr (capacity cap) as numpy 1.24 does:
 * the dict, then spaces for in-place growth of the first dim (to 21 digits),
 * then padding so that the data starts on a 64-byte boundary, then '\n'.
 */
static tdm_status build_header(const tdm_tensor *t, char *hdr, size_t cap, size_t *hdr_len,
                               tdm_err *err)
{
    const char *descr = descr_of(t->dtype);
    if (descr == NULL)
        return tdm_errf(err, TDM_ERR_UNSUPPORTED, "npy: dtype %s cannot be written",
                        tdm_dtype_name(t->dtype));
    if (t->ndim < 0 || t->ndim > TDM_MAX_DIMS)
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "npy: rank %d out of range", t->ndim);
    char dict[512];
    int n =
        snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
    for (int i = 0; i < t->ndim; i++)
        n += snprintf(dict + n, sizeof dict - (size_t)n, i ? ", %" PRId64 : "%" PRId64, t->dims[i]);
    n += snprintf(dict + n, sizeof dict - (size_t)n, "%s), }", t->ndim == 1 ? "," : "");
    size_t dl = (size_t)n;
    if (t->ndim > 0) {
        char first[32];
        int fl = snprintf(first, sizeof first, "%" PRId64, t->dims[0]);
        size_t grow = fl < 21 ? (size_t)(21 - fl) : 0;
        memset(dict + dl, ' ', grow);
        dl += grow;
    }
    /*
     * Version 1.0 unless the header would not fit in 16 bits. Like numpy, pad
     * by 64 - (size % 64): a full extra block when the size is already aligned.
     */
    size_t pre = 10;
    size_t total = pre + dl + 1;
    total += NPY_ALIGN - total % NPY_ALIGN;
    if (total - pre > 65535) {
        pre = 12;
        total = pre + dl + 1;
        total += NPY_ALIGN - total % NPY_ALIGN;
    }
    if (total > cap)
        return tdm_errf(err, TDM_ERR_INTERNAL, "npy: header buffer too small");
    size_t hlen = total - pre;
    memcpy(hdr, NPY_MAGIC, NPY_MAGIC_LEN);
    hdr[6] = pre == 10 ? 1 : 2;
    hdr[7] = 0;
    hdr[8] = (char)(hlen & 0xff);
    hdr[9] = (char)((hlen >> 8) & 0xff);
    if (pre == 12) {
        hdr[10] = (char)((hlen >> 16) & 0xff);
        hdr[11] = (char)((hlen >> 24) & 0xff);
    }
    memcpy(hdr + pre, dict, dl);
    memset(hdr + pre + dl, ' ', total - pre - dl - 1);
    hdr[total - 1] = '\n';
    *hdr_len = total;
    return TDM_OK;
}

static tdm_status check_tensor(const tdm_tensor *t, size_t *bytes, tdm_err *err)
{
    if (t == NULL)
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "npy: NULL tensor");
    if (!tdm_shape_checked_bytes(t->dims, t->ndim, tdm_dtype_size(t->dtype), SIZE_MAX / 2, bytes))
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "npy: invalid tensor shape");
    if (*bytes > 0 && t->data == NULL)
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "npy: tensor has no data");
    return TDM_OK;
}

tdm_status tdm_npy_serialize(const tdm_tensor *t, void **buf, size_t *len, tdm_err *err)
{
    size_t bytes, hl;
    char hdr[1024];
    tdm_status s = check_tensor(t, &bytes, err);
    if (s == TDM_OK)
        s = build_header(t, hdr, sizeof hdr, &hl, err);
    if (s != TDM_OK)
        return s;
    size_t total;
    if (tdm_add_overflow(hl, bytes, &total))
        return tdm_errf(err, TDM_ERR_NOMEM, "npy: size overflows");
    uint8_t *b = malloc(total);
    if (b == NULL)
        return tdm_errf(err, TDM_ERR_NOMEM, "npy: out of memory for %zu bytes", total);
    memcpy(b, hdr, hl);
    if (bytes > 0)
        memcpy(b + hl, t->data, bytes);
    *buf = b;
    *len = total;
    return TDM_OK;
}

tdm_status tdm_npy_write(const char *path, const tdm_tensor *t, tdm_err *err)
{
    size_t bytes, hl;
    char hdr[1024];
    if (path == NULL)
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "npy: NULL path");
    tdm_status s = check_tensor(t, &bytes, err);
    if (s == TDM_OK)
        s = build_header(t, hdr, sizeof hdr, &hl, err);
    if (s != TDM_OK)
        return s;
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return tdm_errf(err, TDM_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    bool ok = fwrite(hdr, 1, hl, f) == hl;
    if (ok && bytes > 0)
        ok = fwrite(t->data, 1, bytes, f) == bytes;
    int e = errno;
    if (fclose(f) != 0 && ok) {
        ok = false;
        e = errno;
    }
    if (!ok)
        return tdm_errf(err, TDM_ERR_IO, "%s: write failed: %s", path, strerror(e));
    return TDM_OK;
}

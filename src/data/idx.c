/*
 * idx files (MNIST, Fashion-MNIST) and the readers' shared plumbing.
 *
 * An idx file is a 4-byte magic (two zero bytes, an element type, a rank),
 * one big-endian uint32 per dimension, then the elements row-major. The
 * files are usually shipped gzip-compressed, so every file goes through
 * zlib's gzread, which passes plain files through unchanged: the reader
 * needs no file-name convention and a .gz that is really raw still loads.
 * Decompression stops at a byte limit, so a gzip bomb is an error, not an
 * exhausted machine; a truncated .gz is an error, never a short dataset.
 *
 * The header is the only source of sizes and it is checked against the
 * bytes actually present (exactly: trailing garbage is corruption too)
 * before any element is read.
 */
#include <errno.h>
#include <stdint.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "base/alloc.h"
#include "data/data_internal.h"

#define IDX_TYPE_UBYTE 0x08

tdm_status tdm_data_read_file(const char *path, size_t max_bytes, void **buf, size_t *len,
                              tdm_err *err)
{
    *buf = NULL;
    *len = 0;
    if (max_bytes == 0)
        max_bytes = TDM_DATA_MAX_BYTES;
    if (max_bytes > SIZE_MAX / 4)
        max_bytes = SIZE_MAX / 4; /* keeps max_bytes + 1 and the doubling from overflowing */
    gzFile f = gzopen(path, "rb");
    if (f == NULL)
        return tdm_errf(err, TDM_ERR_IO, "%s: cannot open: %s", path,
                        errno ? strerror(errno) : "out of memory");
    size_t cap = max_bytes < (1u << 20) ? max_bytes + 1 : (1u << 20), n = 0;
    unsigned char *p = malloc(cap + 1);
    if (p == NULL) {
        gzclose(f);
        return tdm_errf(err, TDM_ERR_NOMEM, "%s: out of memory", path);
    }
    for (;;) {
        if (n == cap) {
            if (cap > max_bytes) {
                free(p);
                gzclose(f);
                return tdm_errf(err, TDM_ERR_NOMEM, "%s: larger than %zu bytes (decompressed)",
                                path, max_bytes);
            }
            size_t ncap = cap * 2 > max_bytes + 1 ? max_bytes + 1 : cap * 2;
            unsigned char *q = realloc(p, ncap + 1);
            if (q == NULL) {
                free(p);
                gzclose(f);
                return tdm_errf(err, TDM_ERR_NOMEM, "%s: out of memory reading %zu bytes", path,
                                ncap);
            }
            p = q;
            cap = ncap;
        }
        size_t want = cap - n;
        if (want > (1u << 30))
            want = 1u << 30;
        int got = gzread(f, p + n, (unsigned)want);
        if (got < 0) {
            int zerr = 0;
            const char *msg = gzerror(f, &zerr);
            tdm_status s =
                tdm_errf(err, zerr == Z_ERRNO ? TDM_ERR_IO : TDM_ERR_PARSE, "%s: %s", path,
                         zerr == Z_ERRNO ? strerror(errno) : (msg ? msg : "corrupt"));
            free(p);
            gzclose(f);
            return s;
        }
        if (got == 0)
            break;
        n += (size_t)got;
        if (n > max_bytes) {
            free(p);
            gzclose(f);
            return tdm_errf(err, TDM_ERR_NOMEM, "%s: larger than %zu bytes (decompressed)", path,
                            max_bytes);
        }
    }
    /* gzread returns 0 at the end of a truncated stream too; gzerror tells. */
    int zerr = Z_OK;
    const char *msg = gzerror(f, &zerr);
    if (zerr != Z_OK) {
        tdm_status s = tdm_errf(err, TDM_ERR_PARSE, "%s: corrupt or truncated gzip data: %s", path,
                                msg ? msg : "?");
        free(p);
        gzclose(f);
        return s;
    }
    gzclose(f);
    p[n] = 0;
    *buf = p;
    *len = n;
    return TDM_OK;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

tdm_status tdm_idx_parse(const void *buf, size_t len, tdm_tensor *out, tdm_err *err)
{
    const unsigned char *p = buf;
    memset(out, 0, sizeof *out);
    if (len < 4 || p[0] != 0 || p[1] != 0)
        return tdm_errf(err, TDM_ERR_PARSE, "not an idx file (bad magic)");
    int type = p[2], ndim = p[3];
    if (type != IDX_TYPE_UBYTE)
        return tdm_errf(err, TDM_ERR_UNSUPPORTED,
                        "idx element type 0x%02x is not supported (only unsigned bytes, 0x08)",
                        type);
    if (ndim < 1 || ndim > TDM_MAX_DIMS)
        return tdm_errf(err, TDM_ERR_PARSE, "idx rank %d is out of range 1..%d", ndim,
                        TDM_MAX_DIMS);
    size_t head = 4 + 4 * (size_t)ndim;
    if (len < head)
        return tdm_errf(err, TDM_ERR_PARSE, "idx header truncated: %zu bytes, rank %d needs %zu",
                        len, ndim, head);
    int64_t dims[TDM_MAX_DIMS];
    for (int i = 0; i < ndim; i++)
        dims[i] = be32(p + 4 + 4 * i);
    size_t bytes;
    if (!tdm_shape_checked_bytes(dims, ndim, 1, TDM_DATA_MAX_BYTES, &bytes))
        return tdm_errf(err, TDM_ERR_PARSE, "idx dimensions are too large");
    if (len - head != bytes)
        return tdm_errf(err, TDM_ERR_PARSE,
                        "idx data is %zu bytes but the header's dimensions need %zu (%s)",
                        len - head, bytes, len - head < bytes ? "truncated" : "trailing bytes");
    tdm_status s = tdm_tensor_make(out, TDM_DTYPE_UINT8, ndim, dims, err);
    if (s != TDM_OK)
        return s;
    if (bytes > 0)
        memcpy(out->data, p + head, bytes);
    return TDM_OK;
}

tdm_status tdm_idx_read(const char *path, tdm_tensor *out, tdm_err *err)
{
    void *buf;
    size_t len;
    memset(out, 0, sizeof *out);
    tdm_status s = tdm_data_read_file(path, 0, &buf, &len, err);
    if (s != TDM_OK)
        return s;
    s = tdm_idx_parse(buf, len, out, err);
    free(buf);
    if (s != TDM_OK)
        tdm_err_prefix(err, "%s", path);
    return s;
}

tdm_status tdm_data_norm_plan(const tdm_data_norm *norm, int channels, const char *what,
                              tdm_data_norm *plan, tdm_err *err)
{
    if (channels < 1 || channels > TDM_DATA_MAX_CHANNELS)
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "%s: %d channels (supported: 1..%d)", what,
                        channels, TDM_DATA_MAX_CHANNELS);
    memset(plan, 0, sizeof *plan);
    plan->n_channels = channels;
    plan->scale = (norm != NULL && norm->scale != 0.0f) ? norm->scale : 255.0f;
    if (!(plan->scale > 0.0f) || !isfinite(plan->scale))
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "%s: scale %g must be a positive number", what,
                        (double)plan->scale);
    int given = norm != NULL ? norm->n_channels : 0;
    if (given != 0 && given != 1 && given != channels)
        return tdm_errf(err, TDM_ERR_INVALID_ARG,
                        "%s: mean/std have %d values but the data has %d channels", what, given,
                        channels);
    for (int c = 0; c < channels; c++) {
        plan->mean[c] = given == 0 ? 0.0f : norm->mean[given == 1 ? 0 : c];
        plan->std[c] = given == 0 ? 1.0f : norm->std[given == 1 ? 0 : c];
        if (!(plan->std[c] > 0.0f) || !isfinite(plan->std[c]) || !isfinite(plan->mean[c]))
            return tdm_errf(err, TDM_ERR_INVALID_ARG,
                            "%s: channel %d has mean %g, std %g (std must be positive)", what, c,
                            (double)plan->mean[c], (double)plan->std[c]);
    }
    return TDM_OK;
}

tdm_status tdm_data_alloc(tdm_dataset *out, int64_t n, int c, int64_t h, int64_t w, tdm_err *err)
{
    memset(out, 0, sizeof *out);
    const int64_t dims[4] = {n, c, h, w};
    size_t bytes, lbytes;
    if (!tdm_shape_checked_bytes(dims, 4, sizeof(float), SIZE_MAX / 2, &bytes) ||
        tdm_mul_overflow((size_t)n, sizeof(int32_t), &lbytes))
        return tdm_errf(err, TDM_ERR_NOMEM, "dataset of %lld images of %dx%lldx%lld overflows",
                        (long long)n, c, (long long)h, (long long)w);
    tdm_status s = tdm_tensor_make(&out->x, TDM_DTYPE_FLOAT32, 4, dims, err);
    if (s != TDM_OK)
        return s;
    out->labels = calloc(n > 0 ? (size_t)n : 1, sizeof(int32_t));
    if (out->labels == NULL) {
        tdm_tensor_free(&out->x);
        return tdm_errf(err, TDM_ERR_NOMEM, "out of memory for %lld labels", (long long)n);
    }
    out->n = n;
    return TDM_OK;
}

tdm_status tdm_idx_load(const char *images_path, const char *labels_path, const tdm_data_norm *norm,
                        int64_t limit, tdm_dataset *out, tdm_err *err)
{
    memset(out, 0, sizeof *out);
    tdm_data_norm plan;
    tdm_status s = tdm_data_norm_plan(norm, 1, images_path, &plan, err);
    if (s != TDM_OK)
        return s;
    tdm_tensor img = {0}, lab = {0};
    s = tdm_idx_read(images_path, &img, err);
    if (s != TDM_OK)
        return s;
    s = tdm_idx_read(labels_path, &lab, err);
    if (s != TDM_OK) {
        tdm_tensor_free(&img);
        return s;
    }
    if (img.ndim != 3) {
        s = tdm_errf(err, TDM_ERR_SHAPE, "%s: images must be [N,H,W], the file has rank %d",
                     images_path, img.ndim);
    } else if (lab.ndim != 1) {
        s = tdm_errf(err, TDM_ERR_SHAPE, "%s: labels must be [N], the file has rank %d",
                     labels_path, lab.ndim);
    } else if (img.dims[0] != lab.dims[0]) {
        s = tdm_errf(err, TDM_ERR_SHAPE, "%s has %lld images but %s has %lld labels", images_path,
                     (long long)img.dims[0], labels_path, (long long)lab.dims[0]);
    }
    if (s == TDM_OK) {
        int64_t n = img.dims[0];
        if (limit > 0 && limit < n)
            n = limit;
        const int64_t hw = img.dims[1] * img.dims[2];
        s = tdm_data_alloc(out, n, 1, img.dims[1], img.dims[2], err);
        if (s == TDM_OK) {
            const uint8_t *src = img.data;
            const uint8_t *ls = lab.data;
            float *dst = out->x.data;
            for (int64_t i = 0; i < n * hw; i++)
                dst[i] = tdm_data_norm_apply(&plan, 0, (float)src[i]);
            for (int64_t i = 0; i < n; i++)
                out->labels[i] = ls[i];
        }
    }
    tdm_tensor_free(&img);
    tdm_tensor_free(&lab);
    return s;
}

void tdm_dataset_free(tdm_dataset *d)
{
    if (d == NULL)
        return;
    tdm_tensor_free(&d->x);
    free(d->labels);
    memset(d, 0, sizeof *d);
}

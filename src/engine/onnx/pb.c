/*
 * Protobuf wire-format decoding (see pb.h).
 *
 * Fixed-width values are assembled byte by byte rather than loaded through a
 * cast pointer: the buffer has no alignment guarantee and the format is
 * little-endian whatever the host. All lengths are compared against the
 * bytes remaining before any pointer arithmetic, so a hostile length can
 * never form an out-of-range pointer.
 */
#include "engine/onnx/pb.h"

#include <inttypes.h>

void tdm_pb_init(tdm_pb *r, const void *buf, size_t len)
{
    r->base = buf;
    r->p = buf;
    r->end = r->p + len;
    r->depth = 0;
}

bool tdm_pb_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    const uint8_t *q = *p;
    uint64_t x = 0;
    for (int i = 0; i < 10; i++) {
        if (q >= end)
            return false;
        uint8_t b = *q++;
        if (i == 9 && b > 1)
            return false; /* more than 64 bits */
        x |= (uint64_t)(b & 0x7f) << (7 * i);
        if ((b & 0x80) == 0) {
            *v = x;
            *p = q;
            return true;
        }
    }
    return false; /* an eleventh byte would be needed */
}

static uint64_t load_le(const uint8_t *p, int n)
{
    uint64_t x = 0;
    for (int i = n - 1; i >= 0; i--)
        x = (x << 8) | p[i];
    return x;
}

static const char *wire_name(int w)
{
    switch (w) {
    case TDM_PB_VARINT: return "varint";
    case TDM_PB_FIXED64: return "fixed64";
    case TDM_PB_LEN: return "length-delimited";
    case TDM_PB_SGROUP: return "start-group";
    case TDM_PB_EGROUP: return "end-group";
    case TDM_PB_FIXED32: return "fixed32";
    }
    return "invalid";
}

tdm_status tdm_pb_next(tdm_pb *r, tdm_pb_field *f, tdm_err *err)
{
    const uint8_t *p = r->p;
    size_t off = tdm_pb_offset(r, p);
    uint64_t tag;
    if (!tdm_pb_varint(&p, r->end, &tag))
        return tdm_errf(err, TDM_ERR_PARSE, "truncated or overlong field tag at offset %zu", off);
    uint64_t num = tag >> 3;
    int wire = (int)(tag & 7);
    if (num == 0 || num > 0x1fffffff)
        return tdm_errf(err, TDM_ERR_PARSE, "invalid field number %" PRIu64 " at offset %zu", num,
                        off);
    f->num = (uint32_t)num;
    f->wire = wire;
    f->u = 0;
    f->data = NULL;
    f->len = 0;
    f->offset = off;
    size_t left;
    switch (wire) {
    case TDM_PB_VARINT:
        if (!tdm_pb_varint(&p, r->end, &f->u))
            return tdm_errf(err, TDM_ERR_PARSE,
                            "truncated or overlong varint in field %u at offset %zu", f->num,
                            tdm_pb_offset(r, p));
        break;
    case TDM_PB_FIXED64:
    case TDM_PB_FIXED32: {
        int n = wire == TDM_PB_FIXED64 ? 8 : 4;
        if ((size_t)(r->end - p) < (size_t)n)
            return tdm_errf(err, TDM_ERR_PARSE, "truncated %s in field %u at offset %zu",
                            wire_name(wire), f->num, tdm_pb_offset(r, p));
        f->u = load_le(p, n);
        p += n;
        break;
    }
    case TDM_PB_LEN: {
        uint64_t len;
        size_t loff = tdm_pb_offset(r, p);
        if (!tdm_pb_varint(&p, r->end, &len))
            return tdm_errf(err, TDM_ERR_PARSE,
                            "truncated or overlong length of field %u at offset %zu", f->num, loff);
        left = (size_t)(r->end - p);
        if (len > left)
            return tdm_errf(err, TDM_ERR_PARSE,
                            "field %u at offset %zu claims %" PRIu64
                            " bytes but only %zu remain in its message",
                            f->num, off, len, left);
        f->data = p;
        f->len = (size_t)len;
        p += len;
        break;
    }
    case TDM_PB_SGROUP:
    case TDM_PB_EGROUP:
        return tdm_errf(err, TDM_ERR_UNSUPPORTED,
                        "field %u at offset %zu uses protobuf groups (wire type %d), which are "
                        "not supported",
                        f->num, off, wire);
    default:
        return tdm_errf(err, TDM_ERR_PARSE, "field %u at offset %zu has invalid wire type %d",
                        f->num, off, wire);
    }
    r->p = p;
    return TDM_OK;
}

tdm_status tdm_pb_sub(const tdm_pb *r, const tdm_pb_field *f, tdm_pb *sub, tdm_err *err)
{
    tdm_status s = tdm_pb_expect(f, TDM_PB_LEN, err);
    if (s != TDM_OK)
        return s;
    if (r->depth + 1 > TDM_PB_MAX_DEPTH)
        return tdm_errf(err, TDM_ERR_PARSE, "messages nested deeper than %d levels at offset %zu",
                        TDM_PB_MAX_DEPTH, f->offset);
    sub->base = r->base;
    sub->p = f->data;
    sub->end = f->data + f->len;
    sub->depth = r->depth + 1;
    return TDM_OK;
}

tdm_status tdm_pb_expect(const tdm_pb_field *f, int wire, tdm_err *err)
{
    if (f->wire == wire)
        return TDM_OK;
    return tdm_errf(err, TDM_ERR_PARSE, "field %u at offset %zu is %s, expected %s", f->num,
                    f->offset, wire_name(f->wire), wire_name(wire));
}

static int elem_bytes(int elem_wire)
{
    return elem_wire == TDM_PB_FIXED64 ? 8 : elem_wire == TDM_PB_FIXED32 ? 4 : 0;
}

tdm_status tdm_pb_count(const tdm_pb *r, const tdm_pb_field *f, int elem_wire, size_t *count,
                        tdm_err *err)
{
    if (f->wire == elem_wire) {
        *count = 1;
        return TDM_OK;
    }
    if (f->wire != TDM_PB_LEN)
        return tdm_errf(err, TDM_ERR_PARSE, "field %u at offset %zu is %s, expected %s or packed",
                        f->num, f->offset, wire_name(f->wire), wire_name(elem_wire));
    int eb = elem_bytes(elem_wire);
    if (eb > 0) {
        if (f->len % (size_t)eb != 0)
            return tdm_errf(err, TDM_ERR_PARSE,
                            "packed field %u at offset %zu has %zu bytes, not a multiple of %d",
                            f->num, f->offset, f->len, eb);
        *count = f->len / (size_t)eb;
        return TDM_OK;
    }
    size_t n = 0;
    const uint8_t *p = f->data, *end = f->data + f->len;
    while (p < end) {
        uint64_t v;
        if (!tdm_pb_varint(&p, end, &v))
            return tdm_errf(err, TDM_ERR_PARSE,
                            "truncated or overlong varint in packed field %u at offset %zu", f->num,
                            tdm_pb_offset(r, p));
        n++;
    }
    *count = n;
    return TDM_OK;
}

void tdm_pb_iter_init(tdm_pb_iter *it, const tdm_pb_field *f, int elem_wire)
{
    it->single = f->wire == elem_wire;
    it->u = f->u;
    it->p = f->data;
    it->end = f->data != NULL ? f->data + f->len : NULL;
    it->elem_bytes = elem_bytes(elem_wire);
}

bool tdm_pb_iter_next(tdm_pb_iter *it, uint64_t *v)
{
    if (it->single) {
        it->single = false;
        it->p = it->end; /* exhausted after the one value */
        *v = it->u;
        return true;
    }
    if (it->p >= it->end)
        return false;
    if (it->elem_bytes > 0) {
        if ((size_t)(it->end - it->p) < (size_t)it->elem_bytes)
            return false;
        *v = load_le(it->p, it->elem_bytes);
        it->p += it->elem_bytes;
        return true;
    }
    return tdm_pb_varint(&it->p, it->end, v);
}

tdm_status tdm_pb_get_u64(const tdm_pb *r, const tdm_pb_field *f, int elem_wire, uint64_t *out,
                          size_t count, tdm_err *err)
{
    size_t n;
    tdm_status s = tdm_pb_count(r, f, elem_wire, &n, err);
    if (s != TDM_OK)
        return s;
    if (n != count)
        return tdm_errf(err, TDM_ERR_INTERNAL, "field %u: count changed between passes", f->num);
    tdm_pb_iter it;
    tdm_pb_iter_init(&it, f, elem_wire);
    for (size_t i = 0; i < n; i++)
        if (!tdm_pb_iter_next(&it, &out[i]))
            return tdm_errf(err, TDM_ERR_INTERNAL, "field %u: iteration ended early", f->num);
    return TDM_OK;
}

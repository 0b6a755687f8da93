/*
 * JSON reader and writer: see json.h for the design.
 *
 * The reader is a recursive-descent parser over a byte range. A value being
 * built is pushed on a scratch stack; when an array or object closes, its
 * children (the top of the stack) are copied into the arena in one block and
 * the container replaces them. Peak memory is the final tree plus the
 * deepest open containers' pending children.
 */
#include "base/json.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"

/* ---- arena ------------------------------------------------------------------------- */

typedef struct arena_chunk {
    struct arena_chunk *next;
    size_t used, cap;
    max_align_t data[]; /* cap bytes */
} arena_chunk;

#define ARENA_CHUNK 65536

struct tdm_json_doc {
    arena_chunk *chunks;
    tdm_json root;
};

static void *arena_alloc(tdm_json_doc *doc, size_t bytes)
{
    const size_t align = sizeof(max_align_t);
    size_t need;
    if (tdm_add_overflow(bytes, align - 1, &need))
        return NULL;
    need &= ~(align - 1);
    arena_chunk *c = doc->chunks;
    if (c == NULL || c->cap - c->used < need) {
        size_t cap = need > ARENA_CHUNK ? need : ARENA_CHUNK, total;
        if (tdm_add_overflow(cap, sizeof(arena_chunk), &total))
            return NULL;
        arena_chunk *n = malloc(total);
        if (n == NULL)
            return NULL;
        n->used = 0;
        n->cap = cap;
        /* A big block goes behind the current chunk so that its free space stays usable. */
        if (c != NULL && need > ARENA_CHUNK) {
            n->next = c->next;
            c->next = n;
        } else {
            n->next = c;
            doc->chunks = n;
        }
        c = n;
    }
    void *p = (char *)c->data + c->used;
    c->used += need;
    return p;
}

void tdm_json_free(tdm_json_doc *doc)
{
    if (doc == NULL)
        return;
    arena_chunk *c = doc->chunks;
    while (c != NULL) {
        arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    free(doc);
}

const tdm_json *tdm_json_root(const tdm_json_doc *doc)
{
    return doc == NULL ? NULL : &doc->root;
}

/* ---- parser ------------------------------------------------------------------------ */

typedef struct parser {
    const unsigned char *s;
    size_t len, pos;
    int depth, max_depth;
    tdm_json_doc *doc;
    tdm_json *stack; /* pending values */
    size_t sp, scap;
    tdm_err *err;
    tdm_status st; /* first error */
} parser;

static tdm_status fail_at(parser *p, size_t pos, tdm_status st, const char *what)
{
    if (p->st != TDM_OK)
        return p->st;
    size_t line = 1, col = 1;
    for (size_t i = 0; i < pos && i < p->len; i++) {
        if (p->s[i] == '\n') {
            line++;
            col = 1;
        } else if ((p->s[i] & 0xC0) != 0x80) {
            col++; /* count characters, not continuation bytes */
        }
    }
    p->st = st;
    return tdm_errf(p->err, st, "line %zu, column %zu: %s", line, col, what);
}

static tdm_status fail(parser *p, const char *what)
{
    return fail_at(p, p->pos, TDM_ERR_PARSE, what);
}

static tdm_status oom(parser *p)
{
    return fail_at(p, p->pos, TDM_ERR_NOMEM, "out of memory");
}

static void skip_ws(parser *p)
{
    while (p->pos < p->len) {
        unsigned char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        p->pos++;
    }
}

static tdm_json *push(parser *p)
{
    if (p->sp == p->scap) {
        size_t cap = p->scap ? p->scap * 2 : 64, bytes;
        if (tdm_mul_overflow(cap, sizeof(tdm_json), &bytes))
            return NULL;
        tdm_json *n = realloc(p->stack, bytes);
        if (n == NULL)
            return NULL;
        p->stack = n;
        p->scap = cap;
    }
    tdm_json *v = &p->stack[p->sp++];
    memset(v, 0, sizeof *v);
    return v;
}

static bool match_word(parser *p, const char *w)
{
    size_t n = strlen(w);
    if (p->len - p->pos < n || memcmp(p->s + p->pos, w, n) != 0)
        return false;
    p->pos += n;
    return true;
}

static int hex_digit(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static bool read_hex4(parser *p, unsigned *out)
{
    if (p->len - p->pos < 4)
        return false;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int d = hex_digit(p->s[p->pos + (size_t)i]);
        if (d < 0)
            return false;
        v = (v << 4) | (unsigned)d;
    }
    p->pos += 4;
    *out = v;
    return true;
}

/* Length of the well-formed UTF-8 sequence at s[0..n), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    if (c < 0xC2 || c > 0xF4)
        return 0;
    size_t k = c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    if (n < k)
        return 0;
    for (size_t i = 1; i < k; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    if (c == 0xE0 && s[1] < 0xA0)
        return 0; /* overlong */
    if (c == 0xED && s[1] > 0x9F)
        return 0; /* surrogate */
    if (c == 0xF0 && s[1] < 0x90)
        return 0; /* overlong */
    if (c == 0xF4 && s[1] > 0x8F)
        return 0; /* above U+10FFFF */
    return k;
}

static size_t put_utf8(unsigned cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/*
 * Parses a string starting at the opening quote into the arena. The decoded
 * form is never longer than the source (an escape of n bytes decodes to at
 * most n bytes), so the source span bounds the allocation.
 */
static tdm_status parse_string(parser *p, const char **out, size_t *out_len)
{
    assert(p->s[p->pos] == '"');
    size_t start = ++p->pos, end = start;
    bool plain = true;
    /* Find the closing quote first to size the allocation. */
    while (end < p->len && p->s[end] != '"') {
        if (p->s[end] == '\\') {
            plain = false;
            end++;
        }
        end++;
    }
    if (end >= p->len)
        return fail_at(p, start - 1, TDM_ERR_PARSE, "unterminated string");
    size_t cap;
    if (tdm_add_overflow(end - start, 1, &cap))
        return oom(p);
    char *dst = arena_alloc(p->doc, cap);
    if (dst == NULL)
        return oom(p);
    size_t n = 0;
    if (plain) {
        /* Fast path: validate and copy. */
        while (p->pos < end) {
            unsigned char c = p->s[p->pos];
            if (c < 0x20)
                return fail(p, "control character in string (must be escaped)");
            size_t k = utf8_seq(p->s + p->pos, end - p->pos);
            if (k == 0)
                return fail(p, "invalid UTF-8 in string");
            p->pos += k;
        }
        memcpy(dst, p->s + start, end - start);
        n = end - start;
    } else {
        while (p->pos < end) {
            unsigned char c = p->s[p->pos];
            if (c == '\\') {
                size_t esc = p->pos++;
                unsigned char e = p->s[p->pos++];
                switch (e) {
                case '"': dst[n++] = '"'; break;
                case '\\': dst[n++] = '\\'; break;
                case '/': dst[n++] = '/'; break;
                case 'b': dst[n++] = '\b'; break;
                case 'f': dst[n++] = '\f'; break;
                case 'n': dst[n++] = '\n'; break;
                case 'r': dst[n++] = '\r'; break;
                case 't': dst[n++] = '\t'; break;
                case 'u': {
                    unsigned u, lo;
                    if (!read_hex4(p, &u))
                        return fail_at(p, esc, TDM_ERR_PARSE, "\\u needs four hex digits");
                    if (u >= 0xDC00 && u <= 0xDFFF)
                        return fail_at(p, esc, TDM_ERR_PARSE, "unpaired low surrogate escape");
                    if (u >= 0xD800 && u <= 0xDBFF) {
                        if (p->len - p->pos < 2 || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u')
                            return fail_at(p, esc, TDM_ERR_PARSE,
                                           "high surrogate escape not followed by a low one");
                        p->pos += 2;
                        if (!read_hex4(p, &lo))
                            return fail_at(p, esc, TDM_ERR_PARSE, "\\u needs four hex digits");
                        if (lo < 0xDC00 || lo > 0xDFFF)
                            return fail_at(p, esc, TDM_ERR_PARSE,
                                           "high surrogate escape not followed by a low one");
                        u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
                    }
                    n += put_utf8(u, dst + n);
                    break;
                }
                default: return fail_at(p, esc, TDM_ERR_PARSE, "invalid escape in string");
                }
                /* An escape may run past the closing quote found above only if the quote
                 * itself was escaped, which the scan already accounted for. */
                if (p->pos > end)
                    return fail_at(p, esc, TDM_ERR_PARSE, "unterminated string");
            } else {
                if (c < 0x20)
                    return fail(p, "control character in string (must be escaped)");
                size_t k = utf8_seq(p->s + p->pos, end - p->pos);
                if (k == 0)
                    return fail(p, "invalid UTF-8 in string");
                memcpy(dst + n, p->s + p->pos, k);
                n += k;
                p->pos += k;
            }
        }
    }
    assert(n < cap);
    dst[n] = '\0';
    p->pos = end + 1;
    *out = dst;
    *out_len = n;
    return TDM_OK;
}

static tdm_status parse_number(parser *p, tdm_json *v)
{
    size_t start = p->pos;
    const unsigned char *s = p->s;
    bool neg = false, is_int = true, overflow = false;
    uint64_t mag = 0;
    if (p->pos < p->len && s[p->pos] == '-') {
        neg = true;
        p->pos++;
    }
    if (p->pos >= p->len || s[p->pos] < '0' || s[p->pos] > '9')
        return fail_at(p, start, TDM_ERR_PARSE, "invalid number");
    if (s[p->pos] == '0') {
        p->pos++;
        if (p->pos < p->len && s[p->pos] >= '0' && s[p->pos] <= '9')
            return fail_at(p, start, TDM_ERR_PARSE, "number with a leading zero");
    } else {
        while (p->pos < p->len && s[p->pos] >= '0' && s[p->pos] <= '9') {
            unsigned d = s[p->pos++] - '0';
            if (mag > (UINT64_MAX - d) / 10)
                overflow = true;
            else
                mag = mag * 10 + d;
        }
    }
    if (p->pos < p->len && s[p->pos] == '.') {
        is_int = false;
        p->pos++;
        if (p->pos >= p->len || s[p->pos] < '0' || s[p->pos] > '9')
            return fail_at(p, start, TDM_ERR_PARSE, "digits expected after '.'");
        while (p->pos < p->len && s[p->pos] >= '0' && s[p->pos] <= '9')
            p->pos++;
    }
    if (p->pos < p->len && (s[p->pos] == 'e' || s[p->pos] == 'E')) {
        is_int = false;
        p->pos++;
        if (p->pos < p->len && (s[p->pos] == '+' || s[p->pos] == '-'))
            p->pos++;
        if (p->pos >= p->len || s[p->pos] < '0' || s[p->pos] > '9')
            return fail_at(p, start, TDM_ERR_PARSE, "digits expected in exponent");
        while (p->pos < p->len && s[p->pos] >= '0' && s[p->pos] <= '9')
            p->pos++;
    }
    size_t n = p->pos - start;
    char small[64];
    char *buf = small;
    if (n >= sizeof small) {
        buf = malloc(n + 1);
        if (buf == NULL)
            return oom(p);
    }
    memcpy(buf, s + start, n);
    buf[n] = '\0';
    double d = strtod(buf, NULL);
    if (buf != small)
        free(buf);
    if (isinf(d))
        return fail_at(p, start, TDM_ERR_PARSE, "number out of range");
    v->type = TDM_JSON_NUMBER;
    v->number = d;
    if (is_int && !overflow && mag <= (uint64_t)INT64_MAX + (neg ? 1u : 0u)) {
        v->is_int = true;
        v->integer = neg ? (int64_t)(0 - mag) : (int64_t)mag;
    } else if (d == floor(d) && d >= -9223372036854775808.0 && d < 9223372036854775808.0) {
        v->is_int = true; /* 3.0, 1e3 */
        v->integer = (int64_t)d;
    }
    return TDM_OK;
}

static tdm_status parse_value(parser *p);

/* Replaces the children on top of the stack (from base) by one container value. */
static tdm_status close_container(parser *p, size_t base, tdm_json_type type)
{
    size_t count = p->sp - base, bytes;
    tdm_json *items = NULL;
    if (count > 0) {
        if (tdm_mul_overflow(count, sizeof(tdm_json), &bytes))
            return oom(p);
        items = arena_alloc(p->doc, bytes);
        if (items == NULL)
            return oom(p);
        memcpy(items, p->stack + base, bytes);
    }
    p->sp = base;
    tdm_json *v = push(p);
    if (v == NULL)
        return oom(p);
    v->type = type;
    v->items = items;
    v->len = count;
    return TDM_OK;
}

static tdm_status parse_array(parser *p)
{
    size_t open = p->pos++;
    size_t base = p->sp;
    if (++p->depth > p->max_depth)
        return fail_at(p, open, TDM_ERR_PARSE, "nesting too deep");
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == ']') {
        p->pos++;
    } else {
        for (;;) {
            tdm_status st = parse_value(p);
            if (st != TDM_OK)
                return st;
            skip_ws(p);
            if (p->pos >= p->len)
                return fail_at(p, open, TDM_ERR_PARSE, "unterminated array");
            if (p->s[p->pos] == ',') {
                p->pos++;
                continue;
            }
            if (p->s[p->pos] == ']') {
                p->pos++;
                break;
            }
            return fail(p, "expected ',' or ']' in array");
        }
    }
    p->depth--;
    return close_container(p, base, TDM_JSON_ARRAY);
}

static tdm_status parse_object(parser *p)
{
    size_t open = p->pos++;
    size_t base = p->sp;
    if (++p->depth > p->max_depth)
        return fail_at(p, open, TDM_ERR_PARSE, "nesting too deep");
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == '}') {
        p->pos++;
    } else {
        for (;;) {
            skip_ws(p);
            if (p->pos >= p->len)
                return fail_at(p, open, TDM_ERR_PARSE, "unterminated object");
            if (p->s[p->pos] != '"')
                return fail(p, "expected a string key in object");
            const char *key;
            size_t key_len;
            tdm_status st = parse_string(p, &key, &key_len);
            if (st != TDM_OK)
                return st;
            skip_ws(p);
            if (p->pos >= p->len || p->s[p->pos] != ':')
                return fail(p, "expected ':' after an object key");
            p->pos++;
            st = parse_value(p);
            if (st != TDM_OK)
                return st;
            p->stack[p->sp - 1].key = key;
            p->stack[p->sp - 1].key_len = key_len;
            skip_ws(p);
            if (p->pos >= p->len)
                return fail_at(p, open, TDM_ERR_PARSE, "unterminated object");
            if (p->s[p->pos] == ',') {
                p->pos++;
                continue;
            }
            if (p->s[p->pos] == '}') {
                p->pos++;
                break;
            }
            return fail(p, "expected ',' or '}' in object");
        }
    }
    p->depth--;
    return close_container(p, base, TDM_JSON_OBJECT);
}

static tdm_status parse_value(parser *p)
{
    skip_ws(p);
    if (p->pos >= p->len)
        return fail(p, "unexpected end of input, expected a value");
    unsigned char c = p->s[p->pos];
    if (c == '[')
        return parse_array(p);
    if (c == '{')
        return parse_object(p);
    tdm_json *v = push(p);
    if (v == NULL)
        return oom(p);
    if (c == '"') {
        v->type = TDM_JSON_STRING;
        const char *str;
        size_t n;
        tdm_status st = parse_string(p, &str, &n);
        if (st != TDM_OK)
            return st;
        v->str = str; /* v is still valid: parse_string does not push */
        v->len = n;
        return TDM_OK;
    }
    if (c == '-' || (c >= '0' && c <= '9'))
        return parse_number(p, v);
    if (match_word(p, "true")) {
        v->type = TDM_JSON_BOOL;
        v->boolean = true;
        return TDM_OK;
    }
    if (match_word(p, "false")) {
        v->type = TDM_JSON_BOOL;
        return TDM_OK;
    }
    if (match_word(p, "null")) {
        v->type = TDM_JSON_NULL;
        return TDM_OK;
    }
    return fail(p, "unexpected character, expected a value");
}

tdm_status tdm_json_parse(const char *text, size_t len, int max_depth, tdm_json_doc **out,
                          tdm_err *err)
{
    if (out == NULL || (text == NULL && len > 0))
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "tdm_json_parse: NULL argument");
    *out = NULL;
    tdm_json_doc *doc = calloc(1, sizeof *doc);
    if (doc == NULL)
        return tdm_errf(err, TDM_ERR_NOMEM, "out of memory");
    parser p = {
        .s = (const unsigned char *)text,
        .len = len,
        .max_depth = max_depth <= 0                   ? TDM_JSON_DEFAULT_DEPTH
                     : max_depth > TDM_JSON_MAX_DEPTH ? TDM_JSON_MAX_DEPTH
                                                      : max_depth,
        .doc = doc,
        .err = err,
    };
    tdm_status st = parse_value(&p);
    if (st == TDM_OK) {
        skip_ws(&p);
        if (p.pos != p.len)
            st = fail(&p, "unexpected data after the value");
    }
    if (st == TDM_OK) {
        assert(p.sp == 1);
        doc->root = p.stack[0];
        *out = doc;
    } else {
        tdm_json_free(doc);
    }
    free(p.stack);
    return st;
}

const tdm_json *tdm_json_get(const tdm_json *v, const char *key)
{
    if (v == NULL || v->type != TDM_JSON_OBJECT || key == NULL)
        return NULL;
    size_t n = strlen(key);
    for (size_t i = v->len; i-- > 0;) {
        const tdm_json *m = &v->items[i];
        if (m->key_len == n && memcmp(m->key, key, n) == 0)
            return m;
    }
    return NULL;
}

const char *tdm_json_string(const tdm_json *v, size_t *len)
{
    if (v == NULL || v->type != TDM_JSON_STRING)
        return NULL;
    if (len != NULL)
        *len = v->len;
    return v->str;
}

bool tdm_json_int(const tdm_json *v, int64_t *out)
{
    if (v == NULL || v->type != TDM_JSON_NUMBER || !v->is_int)
        return false;
    *out = v->integer;
    return true;
}

const char *tdm_json_type_name(tdm_json_type t)
{
    switch (t) {
    case TDM_JSON_NULL: return "null";
    case TDM_JSON_BOOL: return "boolean";
    case TDM_JSON_NUMBER: return "number";
    case TDM_JSON_STRING: return "string";
    case TDM_JSON_ARRAY: return "array";
    case TDM_JSON_OBJECT: return "object";
    }
    return "?";
}

/* ---- writer ------------------------------------------------------------------------ */

static bool buf_reserve(tdm_json_buf *b, size_t extra)
{
    if (b->failed)
        return false;
    size_t need;
    if (tdm_add_overflow(b->len, extra, &need) || tdm_add_overflow(need, 1, &need)) {
        b->failed = true;
        return false;
    }
    if (need <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) {
            cap = need;
            break;
        }
        cap *= 2;
    }
    char *d = realloc(b->data, cap);
    if (d == NULL) {
        b->failed = true;
        return false;
    }
    b->data = d;
    b->cap = cap;
    return true;
}

void tdm_json_buf_raw(tdm_json_buf *b, const char *s, size_t len)
{
    if (!buf_reserve(b, len))
        return;
    memcpy(b->data + b->len, s, len);
    b->len += len;
    b->data[b->len] = '\0';
}

void tdm_json_buf_string(tdm_json_buf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    /* Worst case: every byte becomes \u00XX (6) or U+FFFD (3). */
    size_t worst;
    if (tdm_mul_overflow(len, 6, &worst) || tdm_add_overflow(worst, 2, &worst)) {
        b->failed = true;
        return;
    }
    if (!buf_reserve(b, worst))
        return;
    char *o = b->data + b->len;
    *o++ = '"';
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        unsigned char c = u[i];
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            *o++ = (char)c;
            i++;
            continue;
        }
        if (c < 0x80) {
            *o++ = '\\';
            switch (c) {
            case '"': *o++ = '"'; break;
            case '\\': *o++ = '\\'; break;
            case '\n': *o++ = 'n'; break;
            case '\r': *o++ = 'r'; break;
            case '\t': *o++ = 't'; break;
            case '\b': *o++ = 'b'; break;
            case '\f': *o++ = 'f'; break;
            default:
                *o++ = 'u';
                *o++ = '0';
                *o++ = '0';
                *o++ = hex[c >> 4];
                *o++ = hex[c & 15];
            }
            i++;
            continue;
        }
        size_t k = utf8_seq(u + i, len - i);
        if (k == 0) {
            memcpy(o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        } else {
            memcpy(o, u + i, k);
            o += k;
            i += k;
        }
    }
    *o++ = '"';
    b->len = (size_t)(o - b->data);
    b->data[b->len] = '\0';
}

void tdm_json_buf_i64(tdm_json_buf *b, int64_t v)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%lld", (long long)v);
    tdm_json_buf_raw(b, tmp, (size_t)n);
}

static void buf_real(tdm_json_buf *b, double v, int min_digits, int max_digits, bool as_float)
{
    if (!isfinite(v)) {
        tdm_json_buf_raw(b, "null", 4);
        return;
    }
    char tmp[40];
    int n = 0;
    for (int digits = min_digits; digits <= max_digits; digits++) {
        n = snprintf(tmp, sizeof tmp, "%.*g", digits, v);
        double back = strtod(tmp, NULL);
        if (as_float ? (float)back == (float)v : back == v)
            break;
    }
    tdm_json_buf_raw(b, tmp, (size_t)n);
}

void tdm_json_buf_f64(tdm_json_buf *b, double v)
{
    buf_real(b, v, 15, 17, false);
}

void tdm_json_buf_f32(tdm_json_buf *b, float v)
{
    buf_real(b, v, 6, 9, true);
}

void tdm_json_buf_reset(tdm_json_buf *b)
{
    b->len = 0;
    b->failed = false;
    if (b->data != NULL)
        b->data[0] = '\0';
}

void tdm_json_buf_free(tdm_json_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

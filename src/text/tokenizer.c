/*
 * Tokenizer loading (vocab.txt, tokenizer.json, tokenizer_config.json) and
 * the encode pipeline of text_internal.h.
 *
 * What Hugging Face does beyond the normalizer and WordPiece, and how it is
 * mirrored here:
 * - Added tokens ("[CLS]", "[MASK]", ...) are matched in the text before
 *   anything else, leftmost-longest, on the raw text for tokens with
 *   normalized=false and on the normalized text otherwise; lstrip/rstrip
 *   swallow neighbouring whitespace. So "[MASK]" typed in a text is id 103,
 *   not "[", "mask", "]". (single_word matching needs word-character tables
 *   this build lacks: such a tokenizer is refused rather than approximated.)
 * - The post-processor adds fixed prefix/suffix ids (TemplateProcessing,
 *   BertProcessing, RobertaProcessing).
 * - Truncation to max_len keeps the special tokens: the wordpieces are cut to
 *   max_len - specials. Because no token depends on text after it, encoding
 *   stops at the first word boundary past that count.
 * - The vocabulary comes from vocab.txt (line number = id) when present
 *   (every BERT model directory has it, and it is cheaper to read), else
 *   from tokenizer.json's model.vocab. For the models in ../shared both
 *   agree id for id.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/json.h"
#include "text/text_internal.h"
#include "text/unicode.h"

#define MAX_FILE_BYTES ((size_t)1 << 30)
#define MAX_TOKEN_ID ((int64_t)TDM_VOCAB_MAX_ID)
#define MAX_SPECIALS 8

typedef struct added_token {
    uint32_t *cps;
    size_t n;
    int32_t id;
    bool normalized, lstrip, rstrip;
    char *content; /* UTF-8, for id_to_token */
} added_token;

struct tdm_tokenizer {
    tdm_bert_norm norm;
    tdm_wordpiece wp;
    int32_t prefix[MAX_SPECIALS], suffix[MAX_SPECIALS];
    size_t nprefix, nsuffix;
    int32_t pad_id;
    added_token *added;
    size_t nadded;
    uint64_t raw_first, norm_first; /* bit (cp & 63) set when an added token starts with cp */
};

/* ---- files --------------------------------------------------------------------------------- */

/* Reads a whole file. *exists is false (and TDM_OK returned) when it is absent. */
static tdm_status read_file(const char *path, char **data, size_t *len, bool *exists, tdm_err *err)
{
    *data = NULL;
    *len = 0;
    *exists = false;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        if (errno == ENOENT)
            return TDM_OK;
        return tdm_errf(err, TDM_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    }
    *exists = true;
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    if (buf == NULL) {
        fclose(f);
        return tdm_errf(err, TDM_ERR_NOMEM, "%s: out of memory", path);
    }
    for (;;) {
        if (n == cap) {
            if (cap >= MAX_FILE_BYTES) {
                free(buf);
                fclose(f);
                return tdm_errf(err, TDM_ERR_PARSE, "%s: larger than %zu bytes", path,
                                (size_t)MAX_FILE_BYTES);
            }
            char *b2 = realloc(buf, cap * 2);
            if (b2 == NULL) {
                free(buf);
                fclose(f);
                return tdm_errf(err, TDM_ERR_NOMEM, "%s: out of memory", path);
            }
            buf = b2;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    bool bad = ferror(f) != 0;
    fclose(f);
    if (bad) {
        free(buf);
        return tdm_errf(err, TDM_ERR_IO, "%s: read error", path);
    }
    *data = buf;
    *len = n;
    return TDM_OK;
}

static char *join_path(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (p == NULL)
        return NULL;
    memcpy(p, dir, a);
    size_t k = a;
    if (a > 0 && dir[a - 1] != '/')
        p[k++] = '/';
    memcpy(p + k, name, b + 1);
    return p;
}

typedef struct loaded_file {
    char *path;
    char *data;
    size_t len;
    bool exists;
    tdm_json_doc *json;
} loaded_file;

static void loaded_free(loaded_file *f)
{
    free(f->path);
    free(f->data);
    tdm_json_free(f->json);
    memset(f, 0, sizeof *f);
}

static tdm_status load_file(const char *dir, const char *name, bool json, loaded_file *f,
                            tdm_err *err)
{
    memset(f, 0, sizeof *f);
    f->path = join_path(dir, name);
    if (f->path == NULL)
        return tdm_errf(err, TDM_ERR_NOMEM, "out of memory");
    tdm_status st = read_file(f->path, &f->data, &f->len, &f->exists, err);
    if (st != TDM_OK || !f->exists || !json)
        return st;
    st = tdm_json_parse(f->data, f->len, 0, &f->json, err);
    if (st != TDM_OK)
        tdm_err_prefix(err, "%s", f->path);
    return st;
}

/* ---- JSON settings helpers ------------------------------------------------------------------ */

/* A boolean member: absent or null gives def; another type is an error. */
static tdm_status json_bool(const tdm_json *obj, const char *key, bool def, bool *out,
                            const char *path, const char *where, tdm_err *err)
{
    const tdm_json *v = tdm_json_get(obj, key);
    if (v == NULL || v->type == TDM_JSON_NULL) {
        *out = def;
        return TDM_OK;
    }
    if (v->type != TDM_JSON_BOOL)
        return tdm_errf(err, TDM_ERR_PARSE, "%s: %s%s must be a boolean, not %s", path, where, key,
                        tdm_json_type_name(v->type));
    *out = v->boolean;
    return TDM_OK;
}

/* A token setting that is a string or an object with "content" (tokenizer_config.json). */
static const char *json_token_name(const tdm_json *obj, const char *key)
{
    const tdm_json *v = tdm_json_get(obj, key);
    if (v != NULL && v->type == TDM_JSON_OBJECT)
        v = tdm_json_get(v, "content");
    return tdm_json_string(v, NULL);
}

/* ---- vocabulary ------------------------------------------------------------------------------ */

static tdm_status vocab_from_txt(tdm_vocab *v, const loaded_file *f, tdm_err *err)
{
    const char *s = f->data;
    size_t n = f->len, line = 0, pos = 0;
    while (pos < n) {
        const char *nl = memchr(s + pos, '\n', n - pos);
        size_t end = nl ? (size_t)(nl - s) : n;
        size_t tlen = end - pos;
        if (tlen > 0 && s[pos + tlen - 1] == '\r')
            tlen--;
        if (tdm_utf8_invalid_at(s + pos, tlen) != tlen)
            return tdm_errf(err, TDM_ERR_PARSE, "%s: line %zu is not valid UTF-8", f->path,
                            line + 1);
        if ((int64_t)line >= MAX_TOKEN_ID)
            return tdm_errf(err, TDM_ERR_PARSE, "%s: more than %lld tokens", f->path,
                            (long long)MAX_TOKEN_ID);
        if (!tdm_vocab_add(v, s + pos, tlen, (int32_t)line))
            return tdm_errf(err, TDM_ERR_NOMEM, "%s: out of memory", f->path);
        line++;
        pos = end + 1;
    }
    if (line == 0)
        return tdm_errf(err, TDM_ERR_PARSE, "%s: the vocabulary is empty", f->path);
    return TDM_OK;
}

static tdm_status vocab_from_json(tdm_vocab *v, const tdm_json *vocab, const char *path,
                                  tdm_err *err)
{
    if (vocab == NULL || vocab->type != TDM_JSON_OBJECT || vocab->len == 0)
        return tdm_errf(err, TDM_ERR_PARSE,
                        "%s: model.vocab must be a non-empty object (token -> id)", path);
    for (size_t i = 0; i < vocab->len; i++) {
        const tdm_json *m = &vocab->items[i];
        int64_t id;
        if (!tdm_json_int(m, &id) || id < 0 || id >= MAX_TOKEN_ID)
            return tdm_errf(err, TDM_ERR_PARSE,
                            "%s: model.vocab[\"%.64s\"] must be an integer id in [0, %lld)", path,
                            m->key, (long long)MAX_TOKEN_ID);
        if (!tdm_vocab_add(v, m->key, m->key_len, (int32_t)id))
            return tdm_errf(err, TDM_ERR_NOMEM, "%s: out of memory", path);
    }
    return TDM_OK;
}

/* ---- added tokens and the post-processor ---------------------------------------------------- */

static tdm_status add_added(tdm_tokenizer *t, const char *content, size_t len, int32_t id,
                            bool normalized, bool lstrip, bool rstrip, tdm_err *err)
{
    if (len == 0)
        return TDM_OK; /* HF ignores empty added tokens */
    for (size_t i = 0; i < t->nadded; i++)
        if (t->added[i].id == id && strcmp(t->added[i].content, content) == 0)
            return TDM_OK;
    added_token *a = realloc(t->added, (t->nadded + 1) * sizeof *a);
    if (a == NULL)
        return tdm_errf(err, TDM_ERR_NOMEM, "out of memory");
    t->added = a;
    added_token *x = &a[t->nadded];
    memset(x, 0, sizeof *x);
    tdm_u32vec cps = {0};
    size_t bad;
    if (!tdm_utf8_to_u32(content, len, &cps, &bad)) {
        free(cps.v);
        return bad == SIZE_MAX ? tdm_errf(err, TDM_ERR_NOMEM, "out of memory")
                               : tdm_errf(err, TDM_ERR_PARSE, "added token is not valid UTF-8");
    }
    x->content = tdm_strndup(content, len);
    if (x->content == NULL) {
        free(cps.v);
        return tdm_errf(err, TDM_ERR_NOMEM, "out of memory");
    }
    x->cps = cps.v;
    x->n = cps.n;
    x->id = id;
    x->normalized = normalized;
    x->lstrip = lstrip;
    x->rstrip = rstrip;
    if (normalized)
        t->norm_first |= 1ull << (x->cps[0] & 63);
    else
        t->raw_first |= 1ull << (x->cps[0] & 63);
    t->nadded++;
    return TDM_OK;
}

static tdm_status parse_added_tokens(tdm_tokenizer *t, const tdm_json *arr, const char *path,
                                     tdm_err *err)
{
    if (arr == NULL || arr->type == TDM_JSON_NULL)
        return TDM_OK;
    if (arr->type != TDM_JSON_ARRAY)
        return tdm_errf(err, TDM_ERR_PARSE, "%s: added_tokens must be an array", path);
    for (size_t i = 0; i < arr->len; i++) {
        const tdm_json *a = &arr->items[i];
        int64_t id;
        size_t len;
        const char *content = tdm_json_string(tdm_json_get(a, "content"), &len);
        if (content == NULL || !tdm_json_int(tdm_json_get(a, "id"), &id) || id < 0 ||
            id >= MAX_TOKEN_ID)
            return tdm_errf(err, TDM_ERR_PARSE,
                            "%s: added_tokens[%zu] needs a string content and an integer id", path,
                            i);
        bool single_word = false, lstrip = false, rstrip = false, normalized = true;
        char where[48];
        snprintf(where, sizeof where, "added_tokens[%zu].", i);
        tdm_status st;
        if ((st = json_bool(a, "single_word", false, &single_word, path, where, err)) != TDM_OK ||
            (st = json_bool(a, "lstrip", false, &lstrip, path, where, err)) != TDM_OK ||
            (st = json_bool(a, "rstrip", false, &rstrip, path, where, err)) != TDM_OK ||
            (st = json_bool(a, "normalized", true, &normalized, path, where, err)) != TDM_OK)
            return st;
        if (single_word)
            return tdm_errf(err, TDM_ERR_UNSUPPORTED,
                            "%s: added_tokens[%zu] (\"%.64s\"): single_word matching is not "
                            "supported",
                            path, i, content);
        st = add_added(t, content, len, (int32_t)id, normalized, lstrip, rstrip, err);
        if (st != TDM_OK) {
            tdm_err_prefix(err, "%s: added_tokens[%zu]", path, i);
            return st;
        }
    }
    return TDM_OK;
}

/* Ids of one special token of a TemplateProcessing: special_tokens[name].ids. */
static tdm_status template_ids(const tdm_json *specials, const char *name, int32_t *dst, size_t *n,
                               const char *path, tdm_err *err)
{
    const tdm_json *ids = tdm_json_get(tdm_json_get(specials, name), "ids");
    if (ids == NULL || ids->type != TDM_JSON_ARRAY)
        return tdm_errf(err, TDM_ERR_PARSE,
                        "%s: post_processor.special_tokens[\"%.64s\"].ids is missing", path, name);
    for (size_t i = 0; i < ids->len; i++) {
        int64_t id;
        if (!tdm_json_int(&ids->items[i], &id) || id < 0 || id >= MAX_TOKEN_ID)
            return tdm_errf(err, TDM_ERR_PARSE,
                            "%s: post_processor.special_tokens[\"%.64s\"].ids[%zu] is not a "
                            "valid id",
                            path, name, i);
        if (*n == MAX_SPECIALS)
            return tdm_errf(err, TDM_ERR_UNSUPPORTED,
                            "%s: post_processor adds more than %d special tokens", path,
                            MAX_SPECIALS);
        dst[(*n)++] = (int32_t)id;
    }
    return TDM_OK;
}

static tdm_status parse_post_processor(tdm_tokenizer *t, const tdm_json *pp, const char *path,
                                       tdm_err *err)
{
    if (pp == NULL || pp->type == TDM_JSON_NULL)
        return TDM_OK; /* nothing added */
    const char *type = tdm_json_string(tdm_json_get(pp, "type"), NULL);
    if (type == NULL)
        return tdm_errf(err, TDM_ERR_PARSE, "%s: post_processor.type is missing", path);
    if (strcmp(type, "BertProcessing") == 0 || strcmp(type, "RobertaProcessing") == 0) {
        const tdm_json *cls = tdm_json_get(pp, "cls"), *sep = tdm_json_get(pp, "sep");
        int64_t c, s;
        if (cls == NULL || sep == NULL || cls->type != TDM_JSON_ARRAY || cls->len != 2 ||
            sep->type != TDM_JSON_ARRAY || sep->len != 2 || !tdm_json_int(&cls->items[1], &c) ||
            !tdm_json_int(&sep->items[1], &s) || c < 0 || s < 0 || c >= MAX_TOKEN_ID ||
            s >= MAX_TOKEN_ID)
            return tdm_errf(err, TDM_ERR_PARSE,
                            "%s: post_processor.cls and .sep must be [token, id] pairs", path);
        t->prefix[t->nprefix++] = (int32_t)c;
        t->suffix[t->nsuffix++] = (int32_t)s;
        return TDM_OK;
    }
    if (strcmp(type, "TemplateProcessing") != 0)
        return tdm_errf(err, TDM_ERR_UNSUPPORTED,
                        "%s: post_processor.type \"%.64s\" is not supported (TemplateProcessing, "
                        "BertProcessing, RobertaProcessing are)",
                        path, type);
    const tdm_json *single = tdm_json_get(pp, "single");
    const tdm_json *specials = tdm_json_get(pp, "special_tokens");
    if (single == NULL || single->type != TDM_JSON_ARRAY)
        return tdm_errf(err, TDM_ERR_PARSE, "%s: post_processor.single must be an array", path);
    bool seen_seq = false;
    for (size_t i = 0; i < single->len; i++) {
        const tdm_json *piece = &single->items[i];
        const tdm_json *sp = tdm_json_get(piece, "SpecialToken");
        if (tdm_json_get(piece, "Sequence") != NULL) {
            if (seen_seq)
                return tdm_errf(err, TDM_ERR_UNSUPPORTED,
                                "%s: post_processor.single repeats the sequence", path);
            seen_seq = true;
            continue;
        }
        const char *name = tdm_json_string(tdm_json_get(sp, "id"), NULL);
        if (name == NULL)
            return tdm_errf(err, TDM_ERR_PARSE,
                            "%s: post_processor.single[%zu] is neither a Sequence nor a "
                            "SpecialToken with an id",
                            path, i);
        tdm_status st = seen_seq ? template_ids(specials, name, t->suffix, &t->nsuffix, path, err)
                                 : template_ids(specials, name, t->prefix, &t->nprefix, path, err);
        if (st != TDM_OK)
            return st;
    }
    if (!seen_seq)
        return tdm_errf(err, TDM_ERR_PARSE, "%s: post_processor.single has no Sequence", path);
    return TDM_OK;
}

/* ---- loading --------------------------------------------------------------------------------- */

void tdm_tokenizer_free(tdm_tokenizer *tok)
{
    if (tok == NULL)
        return;
    tdm_vocab_free(&tok->wp.vocab);
    for (size_t i = 0; i < tok->nadded; i++) {
        free(tok->added[i].cps);
        free(tok->added[i].content);
    }
    free(tok->added);
    free(tok);
}

static tdm_status configure_from_tokenizer_json(tdm_tokenizer *t, const tdm_json *root,
                                                const char *path, const loaded_file *vocab_txt,
                                                char *unk, size_t unk_cap, tdm_err *err)
{
    tdm_status st;
    if (root->type != TDM_JSON_OBJECT)
        return tdm_errf(err, TDM_ERR_PARSE, "%s: not a JSON object", path);

    const tdm_json *norm = tdm_json_get(root, "normalizer");
    if (norm == NULL || norm->type == TDM_JSON_NULL) {
        t->norm = (tdm_bert_norm){false, false, false, false};
    } else {
        const char *type = tdm_json_string(tdm_json_get(norm, "type"), NULL);
        if (type == NULL || strcmp(type, "BertNormalizer") != 0)
            return tdm_errf(err, TDM_ERR_UNSUPPORTED,
                            "%s: normalizer.type \"%.64s\" is not supported (only BertNormalizer)",
                            path, type ? type : "(missing)");
        if ((st = json_bool(norm, "clean_text", true, &t->norm.clean_text, path, "normalizer.",
                            err)) != TDM_OK ||
            (st = json_bool(norm, "handle_chinese_chars", true, &t->norm.handle_chinese_chars, path,
                            "normalizer.", err)) != TDM_OK ||
            (st = json_bool(norm, "lowercase", true, &t->norm.lowercase, path, "normalizer.",
                            err)) != TDM_OK ||
            (st = json_bool(norm, "strip_accents", t->norm.lowercase, &t->norm.strip_accents, path,
                            "normalizer.", err)) != TDM_OK)
            return st;
    }

    const tdm_json *pre = tdm_json_get(root, "pre_tokenizer");
    const char *pre_type = tdm_json_string(tdm_json_get(pre, "type"), NULL);
    if (pre_type == NULL || strcmp(pre_type, "BertPreTokenizer") != 0)
        return tdm_errf(err, TDM_ERR_UNSUPPORTED,
                        "%s: pre_tokenizer.type \"%.64s\" is not supported (only BertPreTokenizer)",
                        path, pre_type ? pre_type : "(missing)");

    const tdm_json *model = tdm_json_get(root, "model");
    if (model == NULL || model->type != TDM_JSON_OBJECT)
        return tdm_errf(err, TDM_ERR_PARSE, "%s: model is missing", path);
    const char *mtype = tdm_json_string(tdm_json_get(model, "type"), NULL);
    if (mtype != NULL && strcmp(mtype, "WordPiece") != 0)
        return tdm_errf(err, TDM_ERR_UNSUPPORTED,
                        "%s: model.type \"%.64s\" is not supported (only WordPiece)", path, mtype);
    const char *u = tdm_json_string(tdm_json_get(model, "unk_token"), NULL);
    if (u != NULL)
        snprintf(unk, unk_cap, "%s", u);
    const tdm_json *pfx = tdm_json_get(model, "continuing_subword_prefix");
    const char *prefix =
        pfx == NULL || pfx->type == TDM_JSON_NULL ? "##" : tdm_json_string(pfx, NULL);
    if (prefix == NULL || !tdm_vocab_init(&t->wp.vocab, prefix))
        return tdm_errf(err, TDM_ERR_PARSE,
                        "%s: model.continuing_subword_prefix must be a string of < 16 bytes", path);
    const tdm_json *mx = tdm_json_get(model, "max_input_chars_per_word");
    if (mx != NULL && mx->type != TDM_JSON_NULL) {
        int64_t m;
        if (!tdm_json_int(mx, &m) || m < 0)
            return tdm_errf(err, TDM_ERR_PARSE,
                            "%s: model.max_input_chars_per_word must be a non-negative integer",
                            path);
        t->wp.max_chars = (size_t)m;
    }
    if (vocab_txt->exists)
        st = vocab_from_txt(&t->wp.vocab, vocab_txt, err);
    else
        st = vocab_from_json(&t->wp.vocab, tdm_json_get(model, "vocab"), path, err);
    if (st != TDM_OK)
        return st;

    if ((st = parse_added_tokens(t, tdm_json_get(root, "added_tokens"), path, err)) != TDM_OK ||
        (st = parse_post_processor(t, tdm_json_get(root, "post_processor"), path, err)) != TDM_OK)
        return st;

    const tdm_json *pad = tdm_json_get(root, "padding");
    int64_t pad_id;
    if (tdm_json_int(tdm_json_get(pad, "pad_id"), &pad_id) && pad_id >= 0 && pad_id < MAX_TOKEN_ID)
        t->pad_id = (int32_t)pad_id;
    else
        t->pad_id = -1; /* decided after the vocabulary is indexed */
    return TDM_OK;
}

/*
 * Without tokenizer.json: the settings of the slow BertTokenizer
 * (tokenizer_config.json, defaults when absent): [CLS] text [SEP], and the
 * special tokens matched in the text as Hugging Face's conversion does.
 */
static tdm_status config_without_tokenizer_json(tdm_tokenizer *t, const loaded_file *cfg,
                                                const loaded_file *vt, char *unk, size_t unk_cap,
                                                tdm_err *err)
{
    const tdm_json *root = cfg->exists ? tdm_json_root(cfg->json) : NULL;
    tdm_status st;
    t->norm.clean_text = true;
    if ((st = json_bool(root, "do_lower_case", true, &t->norm.lowercase, cfg->path, "", err)) !=
            TDM_OK ||
        (st = json_bool(root, "tokenize_chinese_chars", true, &t->norm.handle_chinese_chars,
                        cfg->path, "", err)) != TDM_OK ||
        (st = json_bool(root, "strip_accents", t->norm.lowercase, &t->norm.strip_accents, cfg->path,
                        "", err)) != TDM_OK)
        return st;
    enum { UNK, CLS, SEP, PAD, MASK, NSPECIAL };
    const char *keys[NSPECIAL] = {"unk_token", "cls_token", "sep_token", "pad_token", "mask_token"};
    const char *names[NSPECIAL] = {"[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"};
    for (int i = 0; i < NSPECIAL; i++) {
        const char *v = root ? json_token_name(root, keys[i]) : NULL;
        if (v != NULL)
            names[i] = v;
    }
    snprintf(unk, unk_cap, "%s", names[UNK]);
    if (!tdm_vocab_init(&t->wp.vocab, "##"))
        return tdm_errf(err, TDM_ERR_INTERNAL, "bad subword prefix");
    if ((st = vocab_from_txt(&t->wp.vocab, vt, err)) != TDM_OK)
        return st;
    if (!tdm_vocab_finish(&t->wp.vocab))
        return tdm_errf(err, TDM_ERR_NOMEM, "out of memory");
    int32_t ids[NSPECIAL];
    for (int i = 0; i < NSPECIAL; i++) {
        ids[i] = tdm_vocab_lookup(&t->wp.vocab, names[i], strlen(names[i]));
        if (ids[i] >= 0 && (st = add_added(t, names[i], strlen(names[i]), ids[i], false, false,
                                           false, err)) != TDM_OK)
            return st;
    }
    if (ids[CLS] < 0 || ids[SEP] < 0)
        return tdm_errf(err, TDM_ERR_PARSE, "%s: special token \"%.64s\" is not in it", vt->path,
                        ids[CLS] < 0 ? names[CLS] : names[SEP]);
    t->prefix[t->nprefix++] = ids[CLS];
    t->suffix[t->nsuffix++] = ids[SEP];
    t->pad_id = ids[PAD];
    return TDM_OK;
}

tdm_status tdm_tokenizer_load(const char *dir, tdm_tokenizer **out, tdm_err *err)
{
    if (dir == NULL || out == NULL)
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "tdm_tokenizer_load: NULL argument");
    *out = NULL;
    tdm_tokenizer *t = calloc(1, sizeof *t);
    if (t == NULL)
        return tdm_errf(err, TDM_ERR_NOMEM, "out of memory");
    t->wp.max_chars = 100;
    t->pad_id = -1;
    char unk[256] = "[UNK]";
    loaded_file tj = {0}, vt = {0}, cfg = {0};
    tdm_status st = load_file(dir, "tokenizer.json", true, &tj, err);
    if (st == TDM_OK)
        st = load_file(dir, "vocab.txt", false, &vt, err);
    if (st == TDM_OK && !tj.exists && !vt.exists)
        st = tdm_errf(err, TDM_ERR_NOT_FOUND, "%s: neither vocab.txt nor tokenizer.json is there",
                      dir);
    if (st == TDM_OK && tj.exists) {
        st = configure_from_tokenizer_json(t, tdm_json_root(tj.json), tj.path, &vt, unk, sizeof unk,
                                           err);
        if (st == TDM_OK && !tdm_vocab_finish(&t->wp.vocab))
            st = tdm_errf(err, TDM_ERR_NOMEM, "out of memory");
    } else if (st == TDM_OK) {
        st = load_file(dir, "tokenizer_config.json", true, &cfg, err);
        if (st == TDM_OK)
            st = config_without_tokenizer_json(t, &cfg, &vt, unk, sizeof unk, err);
    }
    if (st == TDM_OK) {
        t->wp.unk_id = tdm_vocab_lookup(&t->wp.vocab, unk, strlen(unk));
        if (t->wp.unk_id < 0)
            st = tdm_errf(err, TDM_ERR_PARSE,
                          "%s: the unknown token \"%.64s\" is not in the vocabulary",
                          vt.exists ? vt.path : tj.path, unk);
    }
    if (st == TDM_OK && t->pad_id < 0) {
        t->pad_id = tdm_vocab_lookup(&t->wp.vocab, "[PAD]", 5);
        if (t->pad_id < 0)
            t->pad_id = 0;
    }
    loaded_free(&tj);
    loaded_free(&vt);
    loaded_free(&cfg);
    if (st != TDM_OK) {
        tdm_tokenizer_free(t);
        return st;
    }
    *out = t;
    return TDM_OK;
}

/* ---- encoding -------------------------------------------------------------------------------- */

typedef struct scratch {
    tdm_u32vec cps, tmp, norm;
    tdm_wp_scratch wp;
    tdm_i32vec ids;
} scratch;

static void scratch_free(scratch *s)
{
    free(s->cps.v);
    free(s->tmp.v);
    free(s->norm.v);
    free(s->wp.word.v);
    free(s->wp.offs.v);
    free(s->ids.v);
    memset(s, 0, sizeof *s);
}

static inline bool is_ws(uint32_t c)
{
    return c < 0x80 ? (c == ' ' || (c >= 9 && c <= 13)) : (tdm_uc_get(c)->flags & TDM_UC_WS) != 0;
}

/*
 * Finds the leftmost-longest added token (of the given kind) in v[from..n).
 * The match [*ms, *me) includes whitespace swallowed by lstrip/rstrip.
 */
static const added_token *find_added(const tdm_tokenizer *t, bool normalized, const uint32_t *v,
                                     size_t from, size_t n, size_t *ms, size_t *me)
{
    uint64_t first = normalized ? t->norm_first : t->raw_first;
    if (first == 0)
        return NULL;
    for (size_t i = from; i < n; i++) {
        if (!(first >> (v[i] & 63) & 1))
            continue;
        const added_token *best = NULL;
        for (size_t k = 0; k < t->nadded; k++) {
            const added_token *a = &t->added[k];
            if (a->normalized != normalized || a->n > n - i || (best && a->n <= best->n))
                continue;
            if (memcmp(v + i, a->cps, a->n * sizeof *v) == 0)
                best = a;
        }
        if (best == NULL)
            continue;
        size_t s = i, e = i + best->n;
        if (best->lstrip)
            while (s > from && is_ws(v[s - 1]))
                s--;
        if (best->rstrip)
            while (e < n && is_ws(v[e]))
                e++;
        *ms = s;
        *me = e;
        return best;
    }
    return NULL;
}

static inline bool push_id(tdm_i32vec *out, int32_t id)
{
    if (out->n == out->cap && !tdm_i32vec_reserve(out, 1))
        return false;
    out->v[out->n++] = id;
    return true;
}

/* Normalizes one piece of raw text and appends its ids; stops once ids->n >= limit. */
static bool encode_piece(const tdm_tokenizer *t, const uint32_t *v, size_t n, size_t limit,
                         scratch *s)
{
    if (n == 0 || s->ids.n >= limit)
        return true;
    if (!tdm_bert_normalize(&t->norm, v, n, &s->tmp, &s->norm))
        return false;
    const uint32_t *w = s->norm.v;
    size_t m = s->norm.n, pos = 0, ms, me;
    while (pos < m && s->ids.n < limit) {
        const added_token *a = find_added(t, true, w, pos, m, &ms, &me);
        size_t end = a ? ms : m;
        if (!tdm_wordpiece_encode(&t->wp, w + pos, end - pos, limit, &s->wp, &s->ids))
            return false;
        if (a == NULL)
            break;
        if (s->ids.n < limit && !push_id(&s->ids, a->id))
            return false;
        pos = me;
    }
    return true;
}

/* Encodes into s->ids: prefix, pieces, truncation, suffix. */
static tdm_status encode_into(const tdm_tokenizer *t, const char *text, size_t len, size_t max_len,
                              scratch *s, tdm_err *err)
{
    size_t specials = t->nprefix + t->nsuffix;
    if (max_len > 0 && max_len < specials)
        return tdm_errf(err, TDM_ERR_INVALID_ARG,
                        "max_len %zu leaves no room for the %zu special tokens", max_len, specials);
    if (text == NULL && len > 0)
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "NULL text");
    size_t bad;
    if (!tdm_utf8_to_u32(text, len, &s->cps, &bad)) {
        if (bad == SIZE_MAX)
            return tdm_errf(err, TDM_ERR_NOMEM, "out of memory");
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "invalid UTF-8 at byte %zu", bad);
    }
    s->ids.n = 0;
    if (!tdm_i32vec_reserve(&s->ids, specials + 64))
        return tdm_errf(err, TDM_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < t->nprefix; i++)
        s->ids.v[s->ids.n++] = t->prefix[i];
    size_t limit = max_len > 0 ? max_len - t->nsuffix : SIZE_MAX;

    const uint32_t *v = s->cps.v;
    size_t n = s->cps.n, pos = 0, ms, me;
    while (pos < n && s->ids.n < limit) {
        const added_token *a = find_added(t, false, v, pos, n, &ms, &me);
        size_t end = a ? ms : n;
        if (!encode_piece(t, v + pos, end - pos, limit, s))
            return tdm_errf(err, TDM_ERR_NOMEM, "out of memory");
        if (a == NULL)
            break;
        if (s->ids.n < limit && !push_id(&s->ids, a->id))
            return tdm_errf(err, TDM_ERR_NOMEM, "out of memory");
        pos = me;
    }
    if (s->ids.n > limit)
        s->ids.n = limit;
    if (!tdm_i32vec_reserve(&s->ids, t->nsuffix))
        return tdm_errf(err, TDM_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < t->nsuffix; i++)
        s->ids.v[s->ids.n++] = t->suffix[i];
    return TDM_OK;
}

size_t tdm_tokenizer_encode_bound(const tdm_tokenizer *tok, size_t len)
{
    size_t specials = tok->nprefix + tok->nsuffix;
    return len > SIZE_MAX - specials ? SIZE_MAX : len + specials;
}

tdm_status tdm_tokenizer_encode(const tdm_tokenizer *tok, const char *utf8, size_t len,
                                size_t max_len, int32_t *ids, size_t cap, size_t *n, tdm_err *err)
{
    if (tok == NULL || n == NULL || (ids == NULL && cap > 0))
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "tdm_tokenizer_encode: NULL argument");
    *n = 0;
    scratch s = {0};
    tdm_status st = encode_into(tok, utf8, len, max_len, &s, err);
    if (st == TDM_OK) {
        *n = s.ids.n;
        memcpy(ids, s.ids.v, (s.ids.n < cap ? s.ids.n : cap) * sizeof *ids);
        if (s.ids.n > cap)
            st = tdm_errf(err, TDM_ERR_INVALID_ARG, "the text has %zu ids; the buffer holds %zu",
                          s.ids.n, cap);
    }
    scratch_free(&s);
    return st;
}

void tdm_token_batch_free(tdm_token_batch *b)
{
    if (b == NULL)
        return;
    free(b->ids);
    free(b->attention_mask);
    free(b->token_type_ids);
    free(b->lengths);
    memset(b, 0, sizeof *b);
}

tdm_status tdm_tokenizer_encode_batch(const tdm_tokenizer *tok, const char *const *texts,
                                      const size_t *lens, size_t n, size_t max_len,
                                      tdm_token_batch *out, tdm_err *err)
{
    if (tok == NULL || out == NULL || (n > 0 && (texts == NULL || lens == NULL)))
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "tdm_tokenizer_encode_batch: NULL argument");
    memset(out, 0, sizeof *out);
    scratch s = {0};
    tdm_i32vec all = {0};
    size_t *lengths = calloc(n ? n : 1, sizeof *lengths);
    tdm_status st = lengths ? TDM_OK : tdm_errf(err, TDM_ERR_NOMEM, "out of memory");
    size_t seq = 0;
    for (size_t i = 0; st == TDM_OK && i < n; i++) {
        st = encode_into(tok, texts[i], lens[i], max_len, &s, err);
        if (st != TDM_OK) {
            tdm_err_prefix(err, "text %zu", i);
            break;
        }
        if (!tdm_i32vec_reserve(&all, s.ids.n)) {
            st = tdm_errf(err, TDM_ERR_NOMEM, "out of memory");
            break;
        }
        memcpy(all.v + all.n, s.ids.v, s.ids.n * sizeof *all.v);
        all.n += s.ids.n;
        lengths[i] = s.ids.n;
        if (s.ids.n > seq)
            seq = s.ids.n;
    }
    size_t cells = 0, bytes = 0;
    if (st == TDM_OK && (tdm_mul_overflow(n, seq, &cells) ||
                         tdm_mul_overflow(cells ? cells : 1, sizeof(int64_t), &bytes)))
        st = tdm_errf(err, TDM_ERR_NOMEM, "batch of %zu x %zu ids is too large", n, seq);
    if (st == TDM_OK) {
        out->ids = malloc(bytes);
        out->attention_mask = malloc(bytes);
        out->token_type_ids = calloc(cells ? cells : 1, sizeof(int64_t));
        if (out->ids == NULL || out->attention_mask == NULL || out->token_type_ids == NULL)
            st = tdm_errf(err, TDM_ERR_NOMEM, "out of memory");
    }
    if (st == TDM_OK) {
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            int64_t *row = out->ids + i * seq, *mask = out->attention_mask + i * seq;
            for (size_t j = 0; j < seq; j++) {
                bool real = j < lengths[i];
                row[j] = real ? all.v[k + j] : tok->pad_id;
                mask[j] = real;
            }
            k += lengths[i];
        }
        out->n = n;
        out->seq_len = seq;
        out->lengths = lengths;
        lengths = NULL;
    } else {
        tdm_token_batch_free(out);
    }
    free(lengths);
    free(all.v);
    scratch_free(&s);
    return st;
}

/* ---- vocabulary queries ---------------------------------------------------------------------- */

size_t tdm_tokenizer_vocab_size(const tdm_tokenizer *tok)
{
    size_t n = tok->wp.vocab.size;
    for (size_t i = 0; i < tok->nadded; i++)
        if ((size_t)tok->added[i].id + 1 > n)
            n = (size_t)tok->added[i].id + 1;
    return n;
}

int32_t tdm_tokenizer_token_to_id(const tdm_tokenizer *tok, const char *token)
{
    size_t len = strlen(token);
    for (size_t i = 0; i < tok->nadded; i++)
        if (strcmp(tok->added[i].content, token) == 0)
            return tok->added[i].id;
    return tdm_vocab_lookup(&tok->wp.vocab, token, len);
}

const char *tdm_tokenizer_id_to_token(const tdm_tokenizer *tok, int32_t id)
{
    const tdm_vocab *v = &tok->wp.vocab;
    if (id >= 0 && (size_t)id < v->size && v->off[id] != UINT32_MAX)
        return v->pool + v->off[id];
    for (size_t i = 0; i < tok->nadded; i++)
        if (tok->added[i].id == id)
            return tok->added[i].content;
    return NULL;
}

int32_t tdm_tokenizer_pad_id(const tdm_tokenizer *tok)
{
    return tok->pad_id;
}

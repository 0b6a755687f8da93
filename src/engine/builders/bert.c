/*
 * BERT encoder builder (see bert.h).
 *
 * The graph is emitted in topological order by construction, one small
 * helper per kind of node, so the layer loop reads like the model. Every
 * constant is a graph value: weights borrowed from the safetensors mapping
 * (named as in the file, so `tandem info` and errors speak Hugging Face's
 * names), and a few owned scalars for the mask arithmetic and position ids.
 * Shape checks happen here, against the config, before anything runs: a
 * mismatched file fails at load time with the tensor's name rather than
 * inside a kernel.
 */
#include "engine/builders/bert.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/json.h"

typedef struct builder {
    tdm_graph *g;
    tdm_safetensors *st;
    const tdm_bert_config *cfg;
    const char *prefix; /* "" or "bert." */
    const char *lin_domain, *lin_op;
    tdm_err *err;
} builder;

/* ---- config ------------------------------------------------------------------------ */

static tdm_status slurp(const char *path, char **data, size_t *len, tdm_err *err)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return tdm_errf(err, TDM_ERR_NOT_FOUND, "%s: cannot open", path);
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 4096;
            if (cap > ((size_t)16 << 20)) {
                free(buf);
                fclose(f);
                return tdm_errf(err, TDM_ERR_PARSE, "%s: larger than 16 MiB", path);
            }
            char *nb = realloc(buf, cap + 1);
            if (nb == NULL) {
                free(buf);
                fclose(f);
                return tdm_errf(err, TDM_ERR_NOMEM, "%s: out of memory", path);
            }
            buf = nb;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0)
            break;
    }
    bool bad = ferror(f) != 0;
    fclose(f);
    if (bad) {
        free(buf);
        return tdm_errf(err, TDM_ERR_IO, "%s: read error", path);
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return TDM_OK;
}

static tdm_status cfg_int(const tdm_json *root, const char *path, const char *key, int64_t lo,
                          int64_t hi, bool required, int64_t *out, tdm_err *err)
{
    const tdm_json *v = tdm_json_get(root, key);
    if (v == NULL && !required)
        return TDM_OK;
    int64_t x;
    if (v == NULL || !tdm_json_int(v, &x))
        return tdm_errf(err, TDM_ERR_PARSE, "%s: \"%s\" must be an integer", path, key);
    if (x < lo || x > hi)
        return tdm_errf(err, TDM_ERR_PARSE, "%s: \"%s\" = %lld is outside [%lld, %lld]", path, key,
                        (long long)x, (long long)lo, (long long)hi);
    *out = x;
    return TDM_OK;
}

tdm_status tdm_bert_config_load(const char *path, tdm_bert_config *cfg, tdm_err *err)
{
    memset(cfg, 0, sizeof *cfg);
    char *text = NULL;
    size_t len = 0;
    tdm_status s = slurp(path, &text, &len, err);
    if (s != TDM_OK)
        return s;
    tdm_json_doc *doc = NULL;
    s = tdm_json_parse(text, len, 0, &doc, err);
    free(text);
    if (s != TDM_OK) {
        tdm_err_prefix(err, "%s", path);
        return TDM_ERR_PARSE;
    }
    const tdm_json *r = tdm_json_root(doc);
    if (r->type != TDM_JSON_OBJECT) {
        tdm_json_free(doc);
        return tdm_errf(err, TDM_ERR_PARSE, "%s: not a JSON object", path);
    }
    const char *mt = tdm_json_string(tdm_json_get(r, "model_type"), NULL);
    if (mt != NULL && strcmp(mt, "bert") != 0) {
        s = tdm_errf(err, TDM_ERR_UNSUPPORTED,
                     "%s: model_type \"%s\" is not supported (only \"bert\")", path, mt);
        tdm_json_free(doc);
        return s;
    }
    cfg->type_vocab = 2;
    cfg->max_positions = 512;
    cfg->layer_norm_eps = 1e-12f;
    const int64_t big = (int64_t)1 << 24;
    if ((s = cfg_int(r, path, "vocab_size", 1, (int64_t)1 << 31, true, &cfg->vocab_size, err)) ||
        (s = cfg_int(r, path, "hidden_size", 1, big, true, &cfg->hidden, err)) ||
        (s = cfg_int(r, path, "num_hidden_layers", 1, 1024, true, &cfg->layers, err)) ||
        (s = cfg_int(r, path, "num_attention_heads", 1, 4096, true, &cfg->heads, err)) ||
        (s = cfg_int(r, path, "intermediate_size", 1, big, true, &cfg->intermediate, err)) ||
        (s = cfg_int(r, path, "max_position_embeddings", 1, big, false, &cfg->max_positions,
                     err)) ||
        (s = cfg_int(r, path, "type_vocab_size", 0, big, false, &cfg->type_vocab, err))) {
        tdm_json_free(doc);
        return s;
    }
    if (cfg->hidden % cfg->heads != 0) {
        tdm_json_free(doc);
        return tdm_errf(err, TDM_ERR_PARSE,
                        "%s: hidden_size %lld is not a multiple of num_attention_heads %lld", path,
                        (long long)cfg->hidden, (long long)cfg->heads);
    }
    const tdm_json *eps = tdm_json_get(r, "layer_norm_eps");
    if (eps != NULL) {
        if (eps->type != TDM_JSON_NUMBER || !(eps->number > 0) || eps->number > 1) {
            tdm_json_free(doc);
            return tdm_errf(err, TDM_ERR_PARSE, "%s: \"layer_norm_eps\" must be in (0, 1]", path);
        }
        cfg->layer_norm_eps = (float)eps->number;
    }
    const char *act = tdm_json_string(tdm_json_get(r, "hidden_act"), NULL);
    if (act == NULL || strcmp(act, "gelu") == 0) {
        snprintf(cfg->act, sizeof cfg->act, "Gelu"); /* erf GELU, Hugging Face's "gelu" */
    } else if (strcmp(act, "relu") == 0) {
        snprintf(cfg->act, sizeof cfg->act, "Relu");
    } else {
        s = tdm_errf(err, TDM_ERR_UNSUPPORTED,
                     "%s: hidden_act \"%s\" is not supported (gelu or relu)", path, act);
        tdm_json_free(doc);
        return s;
    }
    tdm_json_free(doc);
    return TDM_OK;
}

/* ---- graph helpers ------------------------------------------------------------------- */

static tdm_status oom(builder *b)
{
    return tdm_errf(b->err, TDM_ERR_NOMEM, "out of memory building the BERT graph");
}

/* The [rows, cols] matrix t as an owned [cols, rows] tensor (t is freed). */
static tdm_status transpose_owned(tdm_tensor *t, tdm_err *err)
{
    tdm_tensor u;
    int64_t dims[2] = {t->dims[1], t->dims[0]};
    tdm_status s = tdm_tensor_make(&u, TDM_DTYPE_FLOAT32, 2, dims, err);
    if (s != TDM_OK) {
        tdm_tensor_free(t);
        return s;
    }
    const float *src = t->data;
    float *dst = u.data;
    const int64_t R = t->dims[0], C = t->dims[1];
    /* 32 x 32 tiles keep both sides in cache */
    for (int64_t r0 = 0; r0 < R; r0 += 32)
        for (int64_t c0 = 0; c0 < C; c0 += 32)
            for (int64_t r = r0; r < R && r < r0 + 32; r++)
                for (int64_t c = c0; c < C && c < c0 + 32; c++)
                    dst[c * R + r] = src[r * C + c];
    tdm_tensor_free(t);
    *t = u;
    return TDM_OK;
}

/*
 * A weight from the file as a constant value, its shape checked. With
 * transpose, a [d0, d1] matrix is stored as an owned [d1, d0] copy named
 * "<name>^T" and the file's pages for it are released (the GEMM reads B in
 * place but repacks B^T on every call, so Linear weights are worth turning
 * once, at load).
 */
static tdm_status weight_t(builder *b, const char *suffix, int ndim, int64_t d0, int64_t d1,
                           bool transpose, int32_t *id)
{
    char name[256], vname[260];
    snprintf(name, sizeof name, "%s%s", b->prefix, suffix);
    snprintf(vname, sizeof vname, "%s%s", name, transpose ? "^T" : "");
    int32_t v = tdm_graph_find(b->g, vname);
    if (v >= 0) {
        *id = v;
        return TDM_OK;
    }
    tdm_tensor t;
    tdm_status s = tdm_safetensors_get(b->st, name, &t, b->err);
    if (s != TDM_OK)
        return s;
    int64_t want[2] = {d0, d1};
    bool ok = t.dtype == TDM_DTYPE_FLOAT32 && t.ndim == ndim;
    for (int d = 0; ok && d < ndim; d++)
        ok = t.dims[d] == want[d];
    if (!ok) {
        char sh[96];
        tdm_tensor_shape_str(&t, sh, sizeof sh);
        tdm_tensor_free(&t);
        if (ndim == 1)
            return tdm_errf(b->err, TDM_ERR_SHAPE,
                            "weight '%s' is %s; the config needs float32[%lld]", name, sh,
                            (long long)d0);
        return tdm_errf(b->err, TDM_ERR_SHAPE,
                        "weight '%s' is %s; the config needs float32[%lld,%lld]", name, sh,
                        (long long)d0, (long long)d1);
    }
    if (transpose) {
        bool borrowed = (t.flags & TDM_TENSOR_OWNS_DATA) == 0;
        if ((s = transpose_owned(&t, b->err)) != TDM_OK)
            return s;
        if (borrowed)
            tdm_safetensors_release(b->st, name);
    }
    v = tdm_graph_intern(b->g, vname);
    if (v < 0) {
        tdm_tensor_free(&t);
        return oom(b);
    }
    tdm_value *val = &b->g->values[v];
    val->is_const = true;
    val->cval = t;
    val->dtype = t.dtype;
    val->ndim = t.ndim;
    memcpy(val->dims, t.dims, sizeof t.dims);
    *id = v;
    return TDM_OK;
}

static tdm_status weight(builder *b, const char *suffix, int ndim, int64_t d0, int64_t d1,
                         int32_t *id)
{
    return weight_t(b, suffix, ndim, d0, d1, false, id);
}

/* An owned constant of n elements. */
static int32_t constant(builder *b, const char *name, tdm_dtype dt, int ndim, const int64_t *dims,
                        const void *data)
{
    int32_t v = tdm_graph_intern(b->g, name);
    if (v < 0)
        return -1;
    tdm_value *val = &b->g->values[v];
    if (tdm_tensor_make(&val->cval, dt, ndim, dims, NULL) != TDM_OK)
        return -1;
    memcpy(val->cval.data, data, tdm_tensor_nbytes(&val->cval));
    val->is_const = true;
    val->dtype = dt;
    val->ndim = ndim;
    memcpy(val->dims, val->cval.dims, sizeof val->dims);
    return v;
}

/* Adds op(in...) -> out (a new value named out_name); returns the node index or -1. */
static int32_t node(builder *b, const char *domain, const char *op, const char *out_name, int n_in,
                    const int32_t *in, int32_t *out)
{
    int32_t o = tdm_graph_intern(b->g, out_name);
    if (o < 0)
        return -1;
    char nname[300];
    snprintf(nname, sizeof nname, "%s/%s", out_name, op);
    int32_t ni = tdm_graph_add_node(b->g, op, domain, nname, n_in, 1);
    if (ni < 0)
        return -1;
    tdm_node *n = &b->g->nodes[ni];
    for (int i = 0; i < n_in; i++)
        n->in[i] = in[i];
    n->out[0] = o;
    *out = o;
    return ni;
}

static bool attr_int(builder *b, int32_t ni, const char *name, int64_t v)
{
    tdm_attr *a = tdm_node_add_attr(&b->g->nodes[ni], name, TDM_ATTR_INT);
    if (a != NULL)
        a->i = v;
    return a != NULL;
}

static bool attr_float(builder *b, int32_t ni, const char *name, float v)
{
    tdm_attr *a = tdm_node_add_attr(&b->g->nodes[ni], name, TDM_ATTR_FLOAT);
    if (a != NULL)
        a->f = v;
    return a != NULL;
}

static bool attr_str(builder *b, int32_t ni, const char *name, const char *v)
{
    char *s = tdm_strdup(v);
    tdm_attr *a = s != NULL ? tdm_node_add_attr(&b->g->nodes[ni], name, TDM_ATTR_STRING) : NULL;
    if (a == NULL) {
        free(s);
        return false;
    }
    a->s = s;
    a->s_len = strlen(s);
    return true;
}

static tdm_status binary(builder *b, const char *op, int32_t x, int32_t y, const char *out_name,
                         int32_t *out)
{
    int32_t in[2] = {x, y};
    return node(b, "", op, out_name, 2, in, out) < 0 ? oom(b) : TDM_OK;
}

/* act(x @ W^T + bias [+ res]) for the Linear layer `wname` ([n_out, n_in] weight, stored
 * transposed); res >= 0 is a skip connection of the output's shape, added in the GEMM's epilogue
 * (tandem.FusedMatMul's input 3) instead of by a separate Add over the whole tensor. */
static tdm_status linear(builder *b, int32_t x, const char *wname, int64_t n_out, int64_t n_in,
                         const char *act, int32_t res, const char *out_name, int32_t *out)
{
    char name[256];
    int32_t w, bias;
    tdm_status s;
    snprintf(name, sizeof name, "%s.weight", wname);
    if ((s = weight_t(b, name, 2, n_out, n_in, true, &w)) != TDM_OK)
        return s;
    snprintf(name, sizeof name, "%s.bias", wname);
    if ((s = weight(b, name, 1, n_out, 0, &bias)) != TDM_OK)
        return s;
    int32_t in[4] = {x, w, bias, res};
    bool fused =
        res >= 0 && strcmp(b->lin_domain, "tandem") == 0 && strcmp(b->lin_op, "FusedMatMul") == 0;
    if (res >= 0 && !fused) { /* another linear op: its output, then the Add */
        char lname[300];
        snprintf(lname, sizeof lname, "%s.linear", out_name);
        int32_t y;
        tdm_status st = linear(b, x, wname, n_out, n_in, act, -1, lname, &y);
        return st != TDM_OK ? st : binary(b, "Add", y, res, out_name, out);
    }
    int32_t ni = node(b, b->lin_domain, b->lin_op, out_name, fused ? 4 : 3, in, out);
    if (ni < 0 || !attr_int(b, ni, "transB", 0) || !attr_str(b, ni, "activation", act))
        return oom(b);
    return TDM_OK;
}

static tdm_status layer_norm(builder *b, int32_t x, const char *lname, const char *out_name,
                             int32_t *out)
{
    char name[256];
    int32_t gamma, beta;
    tdm_status s;
    const int64_t H = b->cfg->hidden;
    snprintf(name, sizeof name, "%s.weight", lname);
    if ((s = weight(b, name, 1, H, 0, &gamma)) != TDM_OK)
        return s;
    snprintf(name, sizeof name, "%s.bias", lname);
    if ((s = weight(b, name, 1, H, 0, &beta)) != TDM_OK)
        return s;
    int32_t in[3] = {x, gamma, beta};
    int32_t ni = node(b, "", "LayerNormalization", out_name, 3, in, out);
    if (ni < 0 || !attr_int(b, ni, "axis", -1) ||
        !attr_float(b, ni, "epsilon", b->cfg->layer_norm_eps))
        return oom(b);
    return TDM_OK;
}

static tdm_status add_input(builder *b, const char *name)
{
    int32_t v = tdm_graph_intern(b->g, name);
    int32_t *ins =
        v >= 0 ? realloc(b->g->inputs, sizeof *ins * (size_t)(b->g->n_inputs + 1)) : NULL;
    if (ins == NULL)
        return oom(b);
    b->g->inputs = ins;
    ins[b->g->n_inputs++] = v;
    tdm_value *val = &b->g->values[v];
    val->is_input = true;
    val->dtype = TDM_DTYPE_INT64;
    val->ndim = 2;
    val->dims[0] = val->dims[1] = -1;
    val->dim_param[0] = tdm_strdup("batch");
    val->dim_param[1] = tdm_strdup("seq");
    if (val->dim_param[0] == NULL || val->dim_param[1] == NULL)
        return oom(b);
    return TDM_OK;
}

/* ---- the model --------------------------------------------------------------------- */

static tdm_status embeddings(builder *b, int32_t *h)
{
    const tdm_bert_config *c = b->cfg;
    int32_t word, pos, ids = tdm_graph_find(b->g, "input_ids"), x;
    tdm_status s;
    if ((s = weight(b, "embeddings.word_embeddings.weight", 2, c->vocab_size, c->hidden, &word)) ||
        (s = weight(b, "embeddings.position_embeddings.weight", 2, c->max_positions, c->hidden,
                    &pos)))
        return s;
    int32_t in[3] = {word, ids};
    if (node(b, "", "Gather", "embeddings.word", 2, in, &x) < 0)
        return oom(b);
    /* position ids 0..seq-1: Shape -> Gather -> Range, folded per plan (depends on shapes only) */
    int64_t one = 1, zero = 0;
    int32_t shape, seq, range, pe;
    int32_t c1 = constant(b, "embeddings.const_1", TDM_DTYPE_INT64, 0, NULL, &one);
    int32_t c0 = constant(b, "embeddings.const_0", TDM_DTYPE_INT64, 0, NULL, &zero);
    if (c1 < 0 || c0 < 0 || node(b, "", "Shape", "embeddings.input_shape", 1, &ids, &shape) < 0)
        return oom(b);
    in[0] = shape;
    in[1] = c1;
    int32_t ni = node(b, "", "Gather", "embeddings.seq_len", 2, in, &seq);
    if (ni < 0 || !attr_int(b, ni, "axis", 0))
        return oom(b);
    in[0] = c0;
    in[1] = seq;
    in[2] = c1;
    if (node(b, "", "Range", "embeddings.position_ids", 3, in, &range) < 0)
        return oom(b);
    in[0] = pos;
    in[1] = range;
    if (node(b, "", "Gather", "embeddings.position", 2, in, &pe) < 0)
        return oom(b);
    if ((s = binary(b, "Add", x, pe, "embeddings.word_position", &x)) != TDM_OK)
        return s;
    if (c->type_vocab > 0) {
        int32_t typ, te, tids = tdm_graph_find(b->g, "token_type_ids");
        if ((s = weight(b, "embeddings.token_type_embeddings.weight", 2, c->type_vocab, c->hidden,
                        &typ)))
            return s;
        in[0] = typ;
        in[1] = tids;
        if (node(b, "", "Gather", "embeddings.token_type", 2, in, &te) < 0)
            return oom(b);
        if ((s = binary(b, "Add", x, te, "embeddings.sum", &x)) != TDM_OK)
            return s;
    }
    return layer_norm(b, x, "embeddings.LayerNorm", "embeddings.output", h);
}

/* (1 - mask[:, None, None, :]) * lowest float, as Hugging Face's get_extended_attention_mask. */
static tdm_status extended_mask(builder *b, int32_t *out)
{
    int64_t axes[2] = {1, 2}, n2 = 2;
    float onef = 1.f, lowest = -FLT_MAX;
    int32_t ax = constant(b, "mask.axes", TDM_DTYPE_INT64, 1, &n2, axes);
    int32_t c1 = constant(b, "mask.one", TDM_DTYPE_FLOAT32, 0, NULL, &onef);
    int32_t cl = constant(b, "mask.lowest", TDM_DTYPE_FLOAT32, 0, NULL, &lowest);
    int32_t in[2] = {tdm_graph_find(b->g, "attention_mask"), ax}, u = -1, f = -1, inv = -1;
    if (ax < 0 || c1 < 0 || cl < 0 || node(b, "", "Unsqueeze", "mask.unsqueezed", 2, in, &u) < 0)
        return oom(b);
    int32_t ni = node(b, "", "Cast", "mask.float", 1, &u, &f);
    if (ni < 0 || !attr_int(b, ni, "to", TDM_DTYPE_FLOAT32))
        return oom(b);
    tdm_status s = binary(b, "Sub", c1, f, "mask.inverted", &inv);
    if (s == TDM_OK)
        s = binary(b, "Mul", inv, cl, "extended_attention_mask", out);
    return s;
}

static tdm_status layer(builder *b, int i, int32_t h, int32_t mask, int32_t *out)
{
    const tdm_bert_config *c = b->cfg;
    const int64_t H = c->hidden, I = c->intermediate;
    char w[128], o[128], wq[128];
    int32_t q = -1, k = -1, v = -1, ctx = -1, r = -1, h1 = -1, f = -1;
    tdm_status s;
#define NAMES(wsuf, osuf)                                      \
    do {                                                       \
        snprintf(w, sizeof w, "encoder.layer.%d.%s", i, wsuf); \
        snprintf(o, sizeof o, "layer.%d.%s", i, osuf);         \
    } while (0)
    NAMES("attention.self.query", "attention.query");
    if ((s = linear(b, h, w, H, H, "", -1, o, &q)) != TDM_OK)
        return s;
    NAMES("attention.self.key", "attention.key");
    if ((s = linear(b, h, w, H, H, "", -1, o, &k)) != TDM_OK)
        return s;
    NAMES("attention.self.value", "attention.value");
    if ((s = linear(b, h, w, H, H, "", -1, o, &v)) != TDM_OK)
        return s;
    snprintf(o, sizeof o, "layer.%d.attention.context", i);
    int32_t in[5] = {q, k, v, mask, -1};
    int32_t ni = node(b, "tandem", "Attention", o, 5, in, &ctx);
    if (ni < 0 || !attr_int(b, ni, "num_heads", c->heads) ||
        !attr_float(b, ni, "scale", (float)(1.0 / sqrt((double)(H / c->heads)))))
        return oom(b);
    b->g->nodes[ni].opset = 1;
    /* dense + residual: one FusedMatMul with the skip connection in its epilogue */
    NAMES("attention.output.dense", "attention.residual");
    if ((s = linear(b, ctx, w, H, H, "", h, o, &r)) != TDM_OK)
        return s;
    NAMES("attention.output.LayerNorm", "attention.output");
    if ((s = layer_norm(b, r, w, o, &h1)) != TDM_OK)
        return s;
    NAMES("intermediate.dense", "intermediate");
    if ((s = linear(b, h1, w, I, H, c->act, -1, o, &f)) != TDM_OK)
        return s;
    NAMES("output.dense", "output.residual");
    if ((s = linear(b, f, w, H, I, "", h1, o, &r)) != TDM_OK)
        return s;
    snprintf(wq, sizeof wq, "encoder.layer.%d.output.LayerNorm", i);
    if (i == c->layers - 1)
        snprintf(o, sizeof o, "last_hidden_state");
    else
        snprintf(o, sizeof o, "layer.%d.output", i);
    return layer_norm(b, r, wq, o, out);
#undef NAMES
}

tdm_status tdm_bert_build(const tdm_bert_config *cfg, tdm_safetensors *st,
                          const tdm_bert_build_options *opt, tdm_graph **out, tdm_err *err)
{
    *out = NULL;
    builder b = {.st = st, .cfg = cfg, .err = err, .prefix = ""};
    b.lin_domain = opt != NULL && opt->linear_op != NULL ? opt->linear_domain : "tandem";
    b.lin_op = opt != NULL && opt->linear_op != NULL ? opt->linear_op : "FusedMatMul";
    if (b.lin_domain == NULL)
        b.lin_domain = "";
    if (tdm_safetensors_find(st, "embeddings.word_embeddings.weight") == NULL &&
        tdm_safetensors_find(st, "bert.embeddings.word_embeddings.weight") != NULL)
        b.prefix = "bert.";
    tdm_status s = tdm_graph_new(&b.g, err);
    if (s != TDM_OK)
        return s;
    b.g->opset = 17;
    b.g->ir_version = 8;
    b.g->producer = tdm_strdup("tandem bert builder");
    int32_t h, mask;
    s = b.g->producer == NULL ? oom(&b) : TDM_OK;
    if (s == TDM_OK)
        s = add_input(&b, "input_ids");
    if (s == TDM_OK)
        s = add_input(&b, "attention_mask");
    if (s == TDM_OK && cfg->type_vocab > 0)
        s = add_input(&b, "token_type_ids");
    if (s == TDM_OK)
        s = embeddings(&b, &h);
    if (s == TDM_OK)
        s = extended_mask(&b, &mask);
    for (int i = 0; s == TDM_OK && i < cfg->layers; i++)
        s = layer(&b, i, h, mask, &h);
    if (s == TDM_OK) {
        b.g->outputs = malloc(sizeof *b.g->outputs);
        if (b.g->outputs == NULL) {
            s = oom(&b);
        } else {
            b.g->outputs[0] = h;
            b.g->n_outputs = 1;
            tdm_value *ov = &b.g->values[h];
            ov->is_output = true;
            ov->dtype = TDM_DTYPE_FLOAT32;
            ov->ndim = 3;
            ov->dims[0] = ov->dims[1] = -1;
            ov->dims[2] = cfg->hidden;
            ov->dim_param[0] = tdm_strdup("batch");
            ov->dim_param[1] = tdm_strdup("seq");
        }
    }
    if (s == TDM_OK)
        s = tdm_graph_compact(b.g, err);
    if (s == TDM_OK)
        s = tdm_graph_validate(b.g, err);
    if (s != TDM_OK) {
        tdm_graph_free(b.g);
        return s;
    }
    /* the graph keeps the weights' mapping alive from now on */
    void *image = NULL;
    size_t len = 0;
    tdm_safetensors_take_image(st, &image, &len);
    b.g->image = image;
    b.g->image_len = len;
    b.g->image_mapped = image != NULL;
    *out = b.g;
    return TDM_OK;
}

tdm_status tdm_bert_load_dir(const char *dir, const tdm_bert_build_options *opt, tdm_graph **out,
                             tdm_bert_config *cfg, tdm_err *err)
{
    *out = NULL;
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    tdm_status s = tdm_bert_config_load(path, cfg, err);
    if (s != TDM_OK)
        return s;
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    tdm_safetensors *st = NULL;
    if ((s = tdm_safetensors_open(path, &st, err)) != TDM_OK)
        return s;
    s = tdm_bert_build(cfg, st, opt, out, err);
    if (s != TDM_OK)
        tdm_err_prefix(err, "%s", path);
    tdm_safetensors_free(st);
    return s;
}

/*
 * The sentence embedder: tokenizer -> encoder graph -> pooling (embed.h).
 *
 * Two ways to get the encoder, one way to run it: a safetensors directory is
 * turned into a graph by the BERT builder, an .onnx file is loaded by the
 * ONNX reader; both end as a tdm_graph run by one session, so the two paths
 * differ only in where the graph came from (which is what the reference test
 * checks).
 *
 * Batching is by length: the texts are tokenised first, sorted by token count
 * (stable, so equal lengths keep their order) and cut into batches of
 * neighbours, so a batch is padded only to its own longest sequence and a
 * short text never pays for a long one. Each batch's embeddings are written
 * straight to their original rows, so the output is in the caller's order.
 * The batch buffers live in the embedder and grow once to the largest batch.
 */
#include "tandem/embed.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/alloc.h"
#include "engine/builders/bert.h"
#include "engine/ir.h"
#include "engine/passes/passes.h"
#include "tandem/graph.h"
#include "tandem/text.h"
#include "text/pooling.h"

struct tdm_embedder {
    tdm_graph *g;
    tdm_session *s;
    tdm_tokenizer *tok;
    tdm_pooling pool;
    int dim, max_len, batch;
    int32_t pad_id;
    bool has_mask, has_types;
    char out_name[256];
    /* per-batch buffers, grown on demand */
    int64_t *ids, *mask, *types;
    size_t cap;
};

static bool is_dir(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static bool is_file(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

static bool has_tokenizer(const char *dir)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/tokenizer.json", dir);
    if (is_file(p))
        return true;
    snprintf(p, sizeof p, "%s/vocab.txt", dir);
    return is_file(p);
}

/* The directory of `path` ("." when it has none). */
static void parent_dir(const char *path, char *out, size_t cap)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        snprintf(out, cap, ".");
    else if (slash == path)
        snprintf(out, cap, "/");
    else
        snprintf(out, cap, "%.*s", (int)(slash - path), path);
}

static tdm_status load_onnx(tdm_embedder *e, const char *path, bool int8, tdm_err *err)
{
    tdm_load_options lo = {.int8 = int8};
    tdm_status s = tdm_graph_load(path, &lo, &e->g, err);
    if (s != TDM_OK)
        return s;
    bool ids = false;
    for (int i = 0; i < tdm_graph_num_inputs(e->g); i++) {
        tdm_value_info vi;
        tdm_graph_input_info(e->g, i, &vi);
        if (strcmp(vi.name, "input_ids") == 0)
            ids = true;
        else if (strcmp(vi.name, "attention_mask") == 0)
            e->has_mask = true;
        else if (strcmp(vi.name, "token_type_ids") == 0)
            e->has_types = true;
        else
            return tdm_errf(err, TDM_ERR_UNSUPPORTED,
                            "%s: input '%s' is not one of input_ids, attention_mask, "
                            "token_type_ids",
                            path, vi.name);
    }
    if (!ids)
        return tdm_errf(err, TDM_ERR_UNSUPPORTED, "%s: the model has no input named input_ids",
                        path);
    /* the token vectors: last_hidden_state, else the first output */
    tdm_value_info oi;
    int which = 0;
    for (int i = 0; i < tdm_graph_num_outputs(e->g); i++) {
        tdm_graph_output_info(e->g, i, &oi);
        if (strcmp(oi.name, "last_hidden_state") == 0)
            which = i;
    }
    tdm_graph_output_info(e->g, which, &oi);
    snprintf(e->out_name, sizeof e->out_name, "%s", oi.name);
    if (oi.ndim != 3 || (oi.dtype != TDM_DTYPE_FLOAT32 && oi.dtype != TDM_DTYPE_UNDEFINED))
        return tdm_errf(err, TDM_ERR_UNSUPPORTED,
                        "%s: output '%s' is not a float [batch, seq, hidden] tensor", path,
                        oi.name);
    e->dim = oi.dims[2] > 0 && oi.dims[2] <= (1 << 20) ? (int)oi.dims[2] : 0;
    return TDM_OK;
}

static tdm_status grow(tdm_embedder *e, size_t n, tdm_err *err)
{
    if (n <= e->cap)
        return TDM_OK;
    int64_t *a = realloc(e->ids, n * sizeof *a), *b = NULL, *c = NULL;
    if (a != NULL)
        e->ids = a;
    b = a != NULL ? realloc(e->mask, n * sizeof *b) : NULL;
    if (b != NULL)
        e->mask = b;
    c = b != NULL ? realloc(e->types, n * sizeof *c) : NULL;
    if (c == NULL)
        return tdm_errf(err, TDM_ERR_NOMEM, "out of memory for a batch of %zu tokens", n);
    e->types = c;
    e->cap = n;
    return TDM_OK;
}

/* Runs rows [0, n) of the current batch buffers ([n, seq]) and pools row r into out[row[r]]. */
static tdm_status run_batch(tdm_embedder *e, int n, int64_t seq, const int *row, float *out,
                            tdm_err *err)
{
    const char *names[3];
    tdm_tensor in[3];
    int k = 0;
    int64_t dims[2] = {n, seq};
    int64_t *bufs[3] = {e->ids, e->mask, e->types};
    const char *all[3] = {"input_ids", "attention_mask", "token_type_ids"};
    bool use[3] = {true, e->has_mask, e->has_types};
    for (int i = 0; i < 3; i++) {
        if (!use[i])
            continue;
        memset(&in[k], 0, sizeof in[k]);
        tdm_tensor_set_shape(&in[k], TDM_DTYPE_INT64, 2, dims);
        in[k].data = bufs[i];
        names[k++] = all[i];
    }
    const char *until = e->out_name;
    tdm_tensor h;
    memset(&h, 0, sizeof h);
    tdm_status s = tdm_session_run_range(e->s, k, names, in, 1, &until, &h, err);
    if (s != TDM_OK)
        return s;
    if (h.dtype != TDM_DTYPE_FLOAT32 || h.ndim != 3 || h.dims[0] != n || h.dims[1] != seq ||
        (e->dim > 0 && h.dims[2] != e->dim)) {
        char sh[96];
        tdm_tensor_shape_str(&h, sh, sizeof sh);
        tdm_tensor_free(&h);
        return tdm_errf(err, TDM_ERR_SHAPE,
                        "the encoder returned %s for a batch of [%d, %lld] tokens", sh, n,
                        (long long)seq);
    }
    if (e->dim == 0) {
        tdm_tensor_free(&h);
        return tdm_errf(err, TDM_ERR_INTERNAL, "embedding dimension unknown");
    }
    const float *hd = h.data;
    for (int r = 0; r < n; r++)
        tdm_pooling_apply(&e->pool, hd + (int64_t)r * seq * e->dim, e->mask + (int64_t)r * seq, seq,
                          e->dim, out + (int64_t)row[r] * e->dim);
    tdm_tensor_free(&h);
    return TDM_OK;
}

/* Learns the hidden size of an ONNX encoder whose output dim is symbolic: one tiny run. */
static tdm_status probe_dim(tdm_embedder *e, tdm_err *err)
{
    tdm_status s = grow(e, 2, err);
    if (s != TDM_OK)
        return s;
    int32_t cls = tdm_tokenizer_token_to_id(e->tok, "[CLS]");
    int32_t sep = tdm_tokenizer_token_to_id(e->tok, "[SEP]");
    e->ids[0] = cls >= 0 ? cls : 0;
    e->ids[1] = sep >= 0 ? sep : 0;
    e->mask[0] = e->mask[1] = 1;
    e->types[0] = e->types[1] = 0;
    const char *names[3] = {"input_ids", "attention_mask", "token_type_ids"};
    tdm_tensor in[3], h;
    memset(in, 0, sizeof in);
    memset(&h, 0, sizeof h);
    int64_t dims[2] = {1, 2};
    int k = 0;
    int64_t *bufs[3] = {e->ids, e->mask, e->types};
    bool use[3] = {true, e->has_mask, e->has_types};
    const char *nm[3];
    for (int i = 0; i < 3; i++)
        if (use[i]) {
            tdm_tensor_set_shape(&in[k], TDM_DTYPE_INT64, 2, dims);
            in[k].data = bufs[i];
            nm[k++] = names[i];
        }
    const char *until = e->out_name;
    s = tdm_session_run_range(e->s, k, nm, in, 1, &until, &h, err);
    if (s != TDM_OK)
        return s;
    if (h.ndim == 3 && h.dims[2] > 0 && h.dims[2] <= (1 << 20))
        e->dim = (int)h.dims[2];
    tdm_tensor_free(&h);
    return e->dim > 0 ? TDM_OK
                      : tdm_errf(err, TDM_ERR_UNSUPPORTED, "cannot tell the embedding size");
}

tdm_status tdm_embedder_load(const char *path, const tdm_embedder_options *opt, tdm_embedder **out,
                             tdm_err *err)
{
    if (path == NULL || out == NULL)
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "tdm_embedder_load: NULL argument");
    *out = NULL;
    tdm_embedder *e = calloc(1, sizeof *e);
    if (e == NULL)
        return tdm_errf(err, TDM_ERR_NOMEM, "out of memory");
    char dir[4096];
    tdm_status s = TDM_OK;
    int64_t max_pos = 512;
    if (is_dir(path)) {
        snprintf(dir, sizeof dir, "%s", path);
        char p[4200];
        snprintf(p, sizeof p, "%s/model.safetensors", path);
        if (is_file(p)) {
            tdm_bert_config cfg;
            s = tdm_bert_load_dir(path, NULL, &e->g, &cfg, err);
            if (s == TDM_OK && opt != NULL && opt->int8)
                s = tdm_graph_quantize_int8(e->g, err); /* the pass a load would run */
            if (s == TDM_OK) {
                e->dim = (int)cfg.hidden;
                max_pos = cfg.max_positions;
                e->has_mask = true;
                e->has_types = cfg.type_vocab > 0;
                snprintf(e->out_name, sizeof e->out_name, "last_hidden_state");
            }
        } else {
            snprintf(p, sizeof p, "%s/onnx/model.onnx", path);
            if (!is_file(p))
                snprintf(p, sizeof p, "%s/model.onnx", path);
            if (is_file(p))
                s = load_onnx(e, p, opt != NULL && opt->int8, err);
            else
                s = tdm_errf(err, TDM_ERR_NOT_FOUND,
                             "%s: no model.safetensors, onnx/model.onnx or model.onnx", path);
        }
    } else if (is_file(path)) {
        s = load_onnx(e, path, opt != NULL && opt->int8, err);
        /* the model directory: bert-tiny/onnx/model.onnx -> bert-tiny/ (or the file's own dir) */
        char up[4096];
        parent_dir(path, dir, sizeof dir);
        if (!has_tokenizer(dir)) {
            parent_dir(dir, up, sizeof up);
            snprintf(dir, sizeof dir, "%s", up);
        }
    } else {
        s = tdm_errf(err, TDM_ERR_NOT_FOUND, "%s: no such model file or directory", path);
    }
    if (s == TDM_OK && opt != NULL && opt->tokenizer_dir != NULL)
        snprintf(dir, sizeof dir, "%s", opt->tokenizer_dir);
    if (s == TDM_OK)
        s = tdm_tokenizer_load(dir, &e->tok, err);
    if (s == TDM_OK)
        s = tdm_pooling_load(dir, &e->pool, err);
    tdm_session_options so = {.threads = opt != NULL ? opt->threads : 1};
    if (s == TDM_OK)
        s = tdm_session_create(e->g, &so, &e->s, err);
    if (s == TDM_OK && e->dim == 0)
        s = probe_dim(e, err);
    if (s != TDM_OK) {
        tdm_embedder_free(e);
        return s;
    }
    e->pad_id = tdm_tokenizer_pad_id(e->tok);
    e->max_len = opt != NULL && opt->max_len > 0 ? opt->max_len
                 : e->pool.max_seq_length > 0    ? e->pool.max_seq_length
                                                 : 512;
    if (e->max_len > max_pos)
        e->max_len = (int)max_pos;
    if (e->max_len < 2)
        e->max_len = 2; /* room for [CLS] and [SEP] */
    e->batch = opt != NULL && opt->batch > 0 ? opt->batch : 32;
    *out = e;
    return TDM_OK;
}

void tdm_embedder_free(tdm_embedder *e)
{
    if (e == NULL)
        return;
    tdm_session_free(e->s);
    tdm_graph_free(e->g);
    tdm_tokenizer_free(e->tok);
    free(e->ids);
    free(e->mask);
    free(e->types);
    free(e);
}

int tdm_embedder_dim(const tdm_embedder *e)
{
    return e->dim;
}

int tdm_embedder_max_len(const tdm_embedder *e)
{
    return e->max_len;
}

typedef struct len_idx {
    int len, idx;
} len_idx;

static int cmp_len(const void *a, const void *b)
{
    const len_idx *x = a, *y = b;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx; /* stable */
}

tdm_status tdm_embedder_embed_ids(tdm_embedder *e, const int32_t *const *ids, const int *lens,
                                  int n, float *out, tdm_err *err)
{
    if (n < 0 || (n > 0 && (ids == NULL || lens == NULL || out == NULL)))
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "tdm_embedder_embed_ids: bad arguments");
    if (n == 0)
        return TDM_OK;
    len_idx *order = malloc(sizeof *order * (size_t)n);
    int *rows = malloc(sizeof *rows * (size_t)(e->batch));
    if (order == NULL || rows == NULL) {
        free(order);
        free(rows);
        return tdm_errf(err, TDM_ERR_NOMEM, "out of memory for %d texts", n);
    }
    tdm_status s = TDM_OK;
    const int64_t vocab = (int64_t)tdm_tokenizer_vocab_size(e->tok);
    for (int i = 0; i < n && s == TDM_OK; i++) {
        if (lens[i] < 1 || lens[i] > e->max_len || ids[i] == NULL)
            s = tdm_errf(err, TDM_ERR_INVALID_ARG,
                         "text %d: %d tokens; 1 to max_len %d are allowed", i, lens[i], e->max_len);
        for (int t = 0; s == TDM_OK && t < lens[i]; t++)
            if (ids[i][t] < 0 || ids[i][t] >= vocab)
                s = tdm_errf(err, TDM_ERR_INVALID_ARG,
                             "text %d: token %d has id %d, outside the vocabulary [0, %lld)", i, t,
                             (int)ids[i][t], (long long)vocab);
        order[i].len = lens[i];
        order[i].idx = i;
    }
    if (s == TDM_OK)
        qsort(order, (size_t)n, sizeof *order, cmp_len);
    for (int b0 = 0; b0 < n && s == TDM_OK; b0 += e->batch) {
        int bn = n - b0 < e->batch ? n - b0 : e->batch;
        int64_t seq = order[b0 + bn - 1].len; /* sorted: the last is the longest */
        s = grow(e, (size_t)bn * (size_t)seq, err);
        for (int r = 0; r < bn && s == TDM_OK; r++) {
            int i = order[b0 + r].idx;
            int64_t *ri = e->ids + r * seq, *rm = e->mask + r * seq;
            for (int64_t t = 0; t < seq; t++) {
                bool real = t < lens[i];
                ri[t] = real ? ids[i][t] : e->pad_id;
                rm[t] = real;
            }
            memset(e->types + r * seq, 0, sizeof(int64_t) * (size_t)seq);
            rows[r] = i;
        }
        if (s == TDM_OK)
            s = run_batch(e, bn, seq, rows, out, err);
        if (s != TDM_OK && bn > 0)
            tdm_err_prefix(err, "batch of texts %d..", order[b0].idx);
    }
    free(order);
    free(rows);
    return s;
}

tdm_status tdm_embedder_embed(tdm_embedder *e, const char *const *texts, int n, float *out,
                              tdm_err *err)
{
    if (n < 0 || (n > 0 && (texts == NULL || out == NULL)))
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "tdm_embedder_embed: bad arguments");
    if (n == 0)
        return TDM_OK;
    /* ids of all texts packed in one growing pool; offsets first, pointers once it is final */
    size_t *off = calloc((size_t)n, sizeof *off);
    int *lens = calloc((size_t)n, sizeof *lens);
    int32_t **ids = calloc((size_t)n, sizeof *ids);
    size_t pool_cap = (size_t)n * 16 + (size_t)e->max_len, used = 0;
    int32_t *pool = malloc(sizeof *pool * pool_cap);
    tdm_status s = TDM_OK;
    if (off == NULL || lens == NULL || ids == NULL || pool == NULL)
        s = tdm_errf(err, TDM_ERR_NOMEM, "out of memory for %d texts", n);
    for (int i = 0; i < n && s == TDM_OK; i++) {
        if (texts[i] == NULL) {
            s = tdm_errf(err, TDM_ERR_INVALID_ARG, "text %d is NULL", i);
            break;
        }
        if (pool_cap - used < (size_t)e->max_len) {
            size_t nc = pool_cap * 2 + (size_t)e->max_len;
            int32_t *np = realloc(pool, sizeof *np * nc);
            if (np == NULL) {
                s = tdm_errf(err, TDM_ERR_NOMEM, "out of memory for the ids of %d texts", n);
                break;
            }
            pool = np;
            pool_cap = nc;
        }
        size_t got = 0;
        s = tdm_tokenizer_encode(e->tok, texts[i], strlen(texts[i]), (size_t)e->max_len,
                                 pool + used, (size_t)e->max_len, &got, err);
        if (s != TDM_OK)
            tdm_err_prefix(err, "text %d", i);
        off[i] = used;
        lens[i] = (int)got;
        used += got;
    }
    for (int i = 0; i < n && s == TDM_OK; i++)
        ids[i] = pool + off[i];
    if (s == TDM_OK)
        s = tdm_embedder_embed_ids(e, (const int32_t *const *)ids, lens, n, out, err);
    free(ids);
    free(lens);
    free(off);
    free(pool);
    return s;
}

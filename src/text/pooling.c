/*
 * Sentence pooling and its configuration (see pooling.h).
 *
 * The configuration follows sentence-transformers' own loading: modules.json
 * lists the pipeline, the Pooling module's directory holds config.json with
 * one boolean per mode, a Normalize module means L2 normalisation, and
 * sentence_bert_config.json carries max_seq_length. Reading is strict about
 * what it uses (types, a single mode) and ignores keys it does not need.
 *
 * Pooling accumulates in double: the float32 reference (PyTorch) sums in a
 * different order anyway, and double keeps our side's rounding well below
 * the 1e-5 cosine budget for any sequence length.
 */
#include "text/pooling.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"

const char *tdm_pooling_mode_name(tdm_pooling_mode m)
{
    switch (m) {
    case TDM_POOLING_MEAN: return "mean";
    case TDM_POOLING_CLS: return "cls";
    case TDM_POOLING_MAX: return "max";
    case TDM_POOLING_MEAN_SQRT_LEN: return "mean_sqrt_len";
    }
    return "?";
}

/* Parses a small JSON file; *doc NULL (and TDM_OK) when it does not exist. */
static tdm_status read_json(const char *path, tdm_json_doc **doc, tdm_err *err)
{
    *doc = NULL;
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return TDM_OK;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    if (buf == NULL) {
        fclose(f);
        return tdm_errf(err, TDM_ERR_NOMEM, "%s: out of memory", path);
    }
    n = fread(buf, 1, cap, f);
    bool too_big = n == cap, bad = ferror(f) != 0;
    fclose(f);
    if (too_big || bad) {
        free(buf);
        return tdm_errf(err, bad ? TDM_ERR_IO : TDM_ERR_PARSE, "%s: %s", path,
                        bad ? "read error" : "larger than 64 KiB");
    }
    tdm_status s = tdm_json_parse(buf, n, 0, doc, err);
    free(buf);
    if (s != TDM_OK) {
        tdm_err_prefix(err, "%s", path);
        return TDM_ERR_PARSE;
    }
    if (tdm_json_root(*doc)->type !=
        (strstr(path, "modules.json") ? TDM_JSON_ARRAY : TDM_JSON_OBJECT)) {
        tdm_json_free(*doc);
        *doc = NULL;
        return tdm_errf(err, TDM_ERR_PARSE, "%s: unexpected top-level JSON type", path);
    }
    return TDM_OK;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static tdm_status load_pooling_config(const char *path, tdm_pooling *p, tdm_err *err)
{
    tdm_json_doc *doc;
    tdm_status s = read_json(path, &doc, err);
    if (s != TDM_OK)
        return s;
    if (doc == NULL)
        return tdm_errf(err, TDM_ERR_NOT_FOUND, "%s: missing (named by modules.json)", path);
    static const struct {
        const char *key;
        tdm_pooling_mode mode;
        bool supported;
    } k[] = {{"pooling_mode_mean_tokens", TDM_POOLING_MEAN, true},
             {"pooling_mode_cls_token", TDM_POOLING_CLS, true},
             {"pooling_mode_max_tokens", TDM_POOLING_MAX, true},
             {"pooling_mode_mean_sqrt_len_tokens", TDM_POOLING_MEAN_SQRT_LEN, true},
             {"pooling_mode_weightedmean_tokens", TDM_POOLING_MEAN, false},
             {"pooling_mode_lasttoken", TDM_POOLING_MEAN, false}};
    const tdm_json *root = tdm_json_root(doc);
    int on = 0;
    for (size_t i = 0; i < sizeof k / sizeof k[0] && s == TDM_OK; i++) {
        const tdm_json *v = tdm_json_get(root, k[i].key);
        if (v == NULL)
            continue;
        if (v->type != TDM_JSON_BOOL)
            s = tdm_errf(err, TDM_ERR_PARSE, "%s: \"%s\" must be true or false", path, k[i].key);
        else if (v->boolean && !k[i].supported)
            s = tdm_errf(err, TDM_ERR_UNSUPPORTED, "%s: \"%s\" is not supported", path, k[i].key);
        else if (v->boolean) {
            p->mode = k[i].mode;
            on++;
        }
    }
    if (s == TDM_OK && on != 1)
        s = tdm_errf(err, TDM_ERR_UNSUPPORTED,
                     "%s: exactly one pooling mode must be true (found %d)", path, on);
    tdm_json_free(doc);
    return s;
}

tdm_status tdm_pooling_load(const char *dir, tdm_pooling *p, tdm_err *err)
{
    memset(p, 0, sizeof *p);
    p->mode = TDM_POOLING_MEAN;
    p->normalize = true;
    char path[4096];
    tdm_json_doc *doc;
    snprintf(path, sizeof path, "%s/sentence_bert_config.json", dir);
    tdm_status s = read_json(path, &doc, err);
    if (s != TDM_OK)
        return s;
    if (doc != NULL) {
        const tdm_json *v = tdm_json_get(tdm_json_root(doc), "max_seq_length");
        int64_t m;
        if (v != NULL && (!tdm_json_int(v, &m) || m < 1 || m > (1 << 20))) {
            tdm_json_free(doc);
            return tdm_errf(err, TDM_ERR_PARSE,
                            "%s: \"max_seq_length\" must be an integer in [1, 1048576]", path);
        }
        if (v != NULL)
            p->max_seq_length = (int)m;
        tdm_json_free(doc);
    }
    snprintf(path, sizeof path, "%s/modules.json", dir);
    if ((s = read_json(path, &doc, err)) != TDM_OK)
        return s;
    if (doc == NULL)
        return TDM_OK; /* no pipeline description: mean + normalise */
    const tdm_json *root = tdm_json_root(doc);
    p->normalize = false;
    char pool_dir[1024] = "";
    bool have_pool = false;
    for (size_t i = 0; i < root->len; i++) {
        const tdm_json *m = &root->items[i];
        const char *type = tdm_json_string(tdm_json_get(m, "type"), NULL);
        const char *mpath = tdm_json_string(tdm_json_get(m, "path"), NULL);
        if (type == NULL) {
            tdm_json_free(doc);
            return tdm_errf(err, TDM_ERR_PARSE, "%s: module %zu has no \"type\" string", path, i);
        }
        if (ends_with(type, ".Normalize")) {
            p->normalize = true;
        } else if (ends_with(type, ".Pooling")) {
            if (mpath == NULL || strstr(mpath, "..") != NULL || mpath[0] == '/' ||
                strlen(mpath) >= sizeof pool_dir) {
                tdm_json_free(doc);
                return tdm_errf(err, TDM_ERR_PARSE, "%s: the Pooling module's \"path\" is bad",
                                path);
            }
            snprintf(pool_dir, sizeof pool_dir, "%s", mpath);
            have_pool = true;
        } else if (!ends_with(type, ".Transformer")) {
            s = tdm_errf(err, TDM_ERR_UNSUPPORTED, "%s: module type \"%s\" is not supported", path,
                         type);
            tdm_json_free(doc);
            return s;
        }
    }
    tdm_json_free(doc);
    if (!have_pool)
        return TDM_OK; /* mean pooling, as sentence-transformers defaults to */
    snprintf(path, sizeof path, "%s/%s/config.json", dir, pool_dir);
    return load_pooling_config(path, p, err);
}

void tdm_pooling_apply(const tdm_pooling *p, const float *h, const int64_t *mask, int64_t seq,
                       int64_t dim, float *out)
{
    int64_t count = 0;
    for (int64_t t = 0; t < seq; t++)
        count += mask == NULL || mask[t] != 0;
    switch (p->mode) {
    case TDM_POOLING_CLS:
        for (int64_t d = 0; d < dim; d++)
            out[d] = seq > 0 ? h[d] : 0.f;
        break;
    case TDM_POOLING_MAX:
        for (int64_t d = 0; d < dim; d++) {
            /* sentence-transformers sets padding to -1e9 before the max */
            float mx = -1e9f;
            for (int64_t t = 0; t < seq; t++)
                if ((mask == NULL || mask[t] != 0) && h[t * dim + d] > mx)
                    mx = h[t * dim + d];
            out[d] = mx;
        }
        break;
    case TDM_POOLING_MEAN:
    case TDM_POOLING_MEAN_SQRT_LEN: {
        double div = count > 0 ? (double)count : 1e-9;
        if (p->mode == TDM_POOLING_MEAN_SQRT_LEN)
            div = sqrt(div);
        /* blocks of dimensions, tokens inner in rows: reads h row by row */
        for (int64_t d0 = 0; d0 < dim; d0 += 256) {
            double acc[256] = {0};
            int64_t nd = dim - d0 < 256 ? dim - d0 : 256;
            for (int64_t t = 0; t < seq; t++)
                if (mask == NULL || mask[t] != 0)
                    for (int64_t d = 0; d < nd; d++)
                        acc[d] += h[t * dim + d0 + d];
            for (int64_t d = 0; d < nd; d++)
                out[d0 + d] = (float)(acc[d] / div);
        }
        break;
    }
    }
    if (p->normalize) {
        double ss = 0.0;
        for (int64_t d = 0; d < dim; d++)
            ss += (double)out[d] * out[d];
        double nrm = sqrt(ss);
        if (nrm < 1e-12)
            nrm = 1e-12;
        for (int64_t d = 0; d < dim; d++)
            out[d] = (float)(out[d] / nrm);
    }
}

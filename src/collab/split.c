/*
 * Split models: writing head.onnx, tail.onnx and the manifest, and running a
 * head then a tail to check that the halves compute what the whole model does.
 *
 * The files are cut from the ORIGINAL graph (loaded with no_optimize), so they
 * hold only standard ONNX ops that any runtime loads; the cut tensors come
 * from the optimised graph, where they are guaranteed to exist (see split.h).
 * A cut tensor that is a graph input (a mask the tail still reads) is not an
 * output of the head: the edge has it already, and ONNX Runtime rejects
 * graphs whose output is also an input. The manifest marks such tensors.
 *
 * Running a split goes through tdm_session_run_range twice with the same
 * names, whether the sessions are of the one original file or of the two
 * written files: nothing here knows which, which is the point.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/json.h"
#include "base/sha256.h"
#include "collab/cuts.h"
#include "engine/onnx/onnx_writer.h"

static void json_str(tdm_json_buf *b, const char *s)
{
    tdm_json_buf_string(b, s, strlen(s));
}

static void json_lit(tdm_json_buf *b, const char *s)
{
    tdm_json_buf_raw(b, s, strlen(s));
}

static void json_tensor(tdm_json_buf *b, const tdm_cut_list *l, const tdm_cut_tensor *t)
{
    json_lit(b, "{\"name\":");
    json_str(b, t->name);
    json_lit(b, ",\"dtype\":");
    json_str(b, tdm_dtype_name(t->dtype));
    json_lit(b, ",\"shape\":[");
    for (int d = 0; d < t->ndim; d++) {
        if (d > 0)
            json_lit(b, ",");
        if (t->batch_dims & (1u << d))
            json_str(b, l->batch_param);
        else if (t->varying_dims & (1u << d))
            json_lit(b, "null");
        else
            tdm_json_buf_i64(b, t->dims[d]);
    }
    json_lit(b, "],\"probe_shape\":[");
    for (int d = 0; d < t->ndim; d++) {
        if (d > 0)
            json_lit(b, ",");
        tdm_json_buf_i64(b, t->dims[d]);
    }
    json_lit(b, "]");
    if (t->is_input)
        json_lit(b, ",\"graph_input\":true");
    json_lit(b, "}");
}

static void json_tensors(tdm_json_buf *b, const tdm_cut_list *l, const tdm_cut_tensor *t, int n)
{
    json_lit(b, "[");
    for (int i = 0; i < n; i++) {
        if (i > 0)
            json_lit(b, ",");
        json_tensor(b, l, &t[i]);
    }
    json_lit(b, "]");
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s != NULL ? s + 1 : path;
}

/*
 * Graph inputs and outputs keep the dims the model declares symbolic (a
 * sequence length, not only the batch), so the split files accept what the
 * model accepts; the probe only decides dims the declaration leaves open.
 */
static void keep_declared(const tdm_graph *g, tdm_value_info *vi, bool input)
{
    int n = input ? tdm_graph_num_inputs(g) : tdm_graph_num_outputs(g);
    for (int i = 0; i < n; i++) {
        tdm_value_info d;
        if ((input ? tdm_graph_input_info(g, i, &d) : tdm_graph_output_info(g, i, &d)) != TDM_OK ||
            strcmp(d.name, vi->name) != 0 || d.ndim != vi->ndim)
            continue;
        for (int k = 0; k < d.ndim; k++)
            if (d.dims[k] < 0 && d.dim_names[k] != NULL) {
                vi->dims[k] = -1;
                vi->dim_names[k] = d.dim_names[k];
            }
    }
}

/* Writes one half and returns its sha256 in hex. */
static tdm_status write_half(const tdm_graph *orig, int n_from, const tdm_value_info *from,
                             int n_to, const tdm_value_info *to, const char *gname,
                             const char *path, char hex[TDM_SHA256_HEX_LEN + 1], tdm_err *err)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    tdm_status st = tdm_onnx_write_subgraph(orig, n_from, from, n_to, to, gname, &buf, &len, err);
    if (st == TDM_OK)
        st = tdm_onnx_write_file(path, buf, len, err);
    if (st == TDM_OK) {
        uint8_t d[TDM_SHA256_LEN];
        tdm_sha256_buf(buf, len, d);
        tdm_sha256_hex(d, hex);
    }
    free(buf);
    return st;
}

tdm_status tdm_split_write(const char *model_path, const tdm_graph *original, const tdm_cut_list *l,
                           const tdm_cut *c, int index, const char *dir, tdm_err *err)
{
    tdm_status st = TDM_OK;
    const char **names = calloc((size_t)c->n + 1, sizeof *names);
    tdm_value_info *in = calloc((size_t)l->n_inputs + 1, sizeof *in);
    tdm_value_info *cut = calloc((size_t)c->n + 1, sizeof *cut);
    tdm_value_info *cut_out = calloc((size_t)c->n + 1, sizeof *cut_out);
    tdm_value_info *out = calloc((size_t)l->n_outputs + 1, sizeof *out);
    size_t plen = strlen(dir) + 32;
    char *path = malloc(plen);
    tdm_json_buf b = {0};
    char model_hex[TDM_SHA256_HEX_LEN + 1], head_hex[TDM_SHA256_HEX_LEN + 1],
        tail_hex[TDM_SHA256_HEX_LEN + 1];
    if (names == NULL || in == NULL || cut == NULL || cut_out == NULL || out == NULL ||
        path == NULL) {
        st = tdm_errf(err, TDM_ERR_NOMEM, "out of memory writing the split");
        goto done;
    }
    for (int i = 0; i < c->n; i++)
        names[i] = c->t[i].name;
    st = tdm_cut_check(original, c->n, names, err);
    if (st != TDM_OK) {
        tdm_err_prefix(err, "%s (unoptimised)", model_path);
        goto done;
    }
    int n_cut_out = 0;
    for (int i = 0; i < l->n_inputs; i++) {
        tdm_cut_tensor_info(l, &l->inputs[i], &in[i]);
        keep_declared(original, &in[i], true);
    }
    for (int i = 0; i < c->n; i++) {
        tdm_cut_tensor_info(l, &c->t[i], &cut[i]);
        if (!c->t[i].is_input)
            cut_out[n_cut_out++] = cut[i];
    }
    for (int i = 0; i < l->n_outputs; i++) {
        tdm_cut_tensor_info(l, &l->outputs[i], &out[i]);
        keep_declared(original, &out[i], false);
    }
    if (n_cut_out == 0) {
        st =
            tdm_errf(err, TDM_ERR_INVALID_ARG, "the cut holds only graph inputs: no head to write");
        goto done;
    }
    st = tdm_sha256_file(model_path, model_hex, err);
    if (st != TDM_OK)
        goto done;
    snprintf(path, plen, "%s/head.onnx", dir);
    st = write_half(original, l->n_inputs, in, n_cut_out, cut_out, "head", path, head_hex, err);
    if (st != TDM_OK)
        goto done;
    snprintf(path, plen, "%s/tail.onnx", dir);
    st = write_half(original, c->n, cut, l->n_outputs, out, "tail", path, tail_hex, err);
    if (st != TDM_OK)
        goto done;

    json_lit(&b, "{\n  \"format\": \"tandem-split/1\",\n  \"model\": ");
    json_str(&b, base_name(model_path));
    json_lit(&b, ",\n  \"model_sha256\": ");
    json_str(&b, model_hex);
    json_lit(&b, ",\n  \"cut_index\": ");
    tdm_json_buf_i64(&b, index);
    json_lit(&b, ",\n  \"after_node\": ");
    tdm_json_buf_i64(&b, c->after_node);
    json_lit(&b, ",\n  \"cut\": ");
    json_tensors(&b, l, c->t, c->n);
    json_lit(&b, ",\n  \"bytes_fp32\": ");
    tdm_json_buf_i64(&b, (int64_t)c->bytes_fp32);
    json_lit(&b, ",\n  \"bytes_int8\": ");
    tdm_json_buf_i64(&b, (int64_t)c->bytes_int8);
    json_lit(&b, ",\n  \"flops_head\": ");
    tdm_json_buf_f64(&b, c->flops_before);
    json_lit(&b, ",\n  \"flops_tail\": ");
    tdm_json_buf_f64(&b, c->flops_after);
    json_lit(&b, ",\n  \"batch_param\": ");
    json_str(&b, l->batch_param);
    json_lit(&b, ",\n  \"inputs\": ");
    json_tensors(&b, l, l->inputs, l->n_inputs);
    json_lit(&b, ",\n  \"outputs\": ");
    json_tensors(&b, l, l->outputs, l->n_outputs);
    json_lit(&b, ",\n  \"head\": {\"file\": \"head.onnx\", \"sha256\": ");
    json_str(&b, head_hex);
    json_lit(&b, ", \"inputs\": [");
    for (int i = 0; i < l->n_inputs; i++) {
        json_lit(&b, i ? "," : "");
        json_str(&b, l->inputs[i].name);
    }
    json_lit(&b, "], \"outputs\": [");
    for (int i = 0; i < n_cut_out; i++) {
        json_lit(&b, i ? "," : "");
        json_str(&b, cut_out[i].name);
    }
    json_lit(&b, "]},\n  \"tail\": {\"file\": \"tail.onnx\", \"sha256\": ");
    json_str(&b, tail_hex);
    json_lit(&b, ", \"inputs\": [");
    for (int i = 0; i < c->n; i++) {
        json_lit(&b, i ? "," : "");
        json_str(&b, c->t[i].name);
    }
    json_lit(&b, "], \"outputs\": [");
    for (int i = 0; i < l->n_outputs; i++) {
        json_lit(&b, i ? "," : "");
        json_str(&b, l->outputs[i].name);
    }
    json_lit(&b, "]}\n}\n");
    if (b.failed) {
        st = tdm_errf(err, TDM_ERR_NOMEM, "out of memory writing the manifest");
        goto done;
    }
    snprintf(path, plen, "%s/manifest.json", dir);
    st = tdm_onnx_write_file(path, (const uint8_t *)b.data, b.len, err);
done:
    tdm_json_buf_free(&b);
    free(names);
    free(in);
    free(cut);
    free(cut_out);
    free(out);
    free(path);
    return st;
}

tdm_status tdm_split_run(tdm_session *head, tdm_session *tail, const tdm_cut_list *l,
                         const tdm_cut *c, const tdm_tensor *inputs, tdm_tensor *outs,
                         double *head_ms, double *tail_ms, tdm_err *err)
{
    const char **in_names = calloc((size_t)l->n_inputs + 1, sizeof *in_names);
    const char **cut_names = calloc((size_t)c->n + 1, sizeof *cut_names);
    const char **hout_names = calloc((size_t)c->n + 1, sizeof *hout_names);
    const char **out_names = calloc((size_t)l->n_outputs + 1, sizeof *out_names);
    tdm_tensor *hout = calloc((size_t)c->n + 1, sizeof *hout);
    tdm_tensor *cutv = calloc((size_t)c->n + 1, sizeof *cutv);
    tdm_status st = TDM_OK;
    if (in_names == NULL || cut_names == NULL || hout_names == NULL || out_names == NULL ||
        hout == NULL || cutv == NULL) {
        st = tdm_errf(err, TDM_ERR_NOMEM, "out of memory running a split");
        goto done;
    }
    for (int i = 0; i < l->n_inputs; i++)
        in_names[i] = l->inputs[i].name;
    for (int i = 0; i < l->n_outputs; i++)
        out_names[i] = l->outputs[i].name;
    int nh = 0;
    for (int i = 0; i < c->n; i++) {
        cut_names[i] = c->t[i].name;
        if (!c->t[i].is_input)
            hout_names[nh++] = c->t[i].name;
    }
    uint64_t t0 = tdm_now_ns();
    st = tdm_session_run_range(head, l->n_inputs, in_names, inputs, nh, hout_names, hout, err);
    uint64_t t1 = tdm_now_ns();
    if (st != TDM_OK) {
        tdm_err_prefix(err, "head");
        goto done;
    }
    /* The tail's frontier in cut order: head results, or graph inputs passed through. */
    for (int i = 0, k = 0; i < c->n; i++) {
        if (!c->t[i].is_input) {
            cutv[i] = hout[k++];
            continue;
        }
        for (int j = 0; j < l->n_inputs; j++)
            if (strcmp(l->inputs[j].name, c->t[i].name) == 0)
                cutv[i] = inputs[j];
        cutv[i].flags = 0;
    }
    uint64_t t2 = tdm_now_ns();
    st = tdm_session_run_range(tail, c->n, cut_names, cutv, l->n_outputs, out_names, outs, err);
    uint64_t t3 = tdm_now_ns();
    if (st != TDM_OK)
        tdm_err_prefix(err, "tail");
    if (head_ms != NULL)
        *head_ms = (double)(t1 - t0) / 1e6;
    if (tail_ms != NULL)
        *tail_ms = (double)(t3 - t2) / 1e6;
done:
    if (hout != NULL)
        for (int i = 0; i < c->n; i++)
            tdm_tensor_free(&hout[i]);
    free(hout);
    free(cutv);
    free(in_names);
    free(cut_names);
    free(hout_names);
    free(out_names);
    return st;
}

tdm_status tdm_split_run_whole(tdm_session *s, const tdm_cut_list *l, const tdm_tensor *inputs,
                               tdm_tensor *outs, tdm_err *err)
{
    const char **in_names = calloc((size_t)l->n_inputs + 1, sizeof *in_names);
    const char **out_names = calloc((size_t)l->n_outputs + 1, sizeof *out_names);
    tdm_status st;
    if (in_names == NULL || out_names == NULL) {
        st = tdm_errf(err, TDM_ERR_NOMEM, "out of memory");
    } else {
        for (int i = 0; i < l->n_inputs; i++)
            in_names[i] = l->inputs[i].name;
        for (int i = 0; i < l->n_outputs; i++)
            out_names[i] = l->outputs[i].name;
        st = tdm_session_run_range(s, l->n_inputs, in_names, inputs, l->n_outputs, out_names, outs,
                                   err);
    }
    free(in_names);
    free(out_names);
    return st;
}

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return x;
}

tdm_status tdm_split_random_inputs(const tdm_cut_list *l, uint64_t seed, int64_t batch,
                                   tdm_tensor *inputs, tdm_err *err)
{
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull;
    for (int i = 0; i < l->n_inputs; i++) {
        const tdm_cut_tensor *t = &l->inputs[i];
        int64_t dims[TDM_MAX_DIMS];
        for (int d = 0; d < t->ndim; d++)
            dims[d] = (batch > 0 && (t->batch_dims & (1u << d))) ? batch : t->dims[d];
        tdm_status st = tdm_tensor_make(&inputs[i], t->dtype, t->ndim, dims, err);
        if (st != TDM_OK) {
            for (int k = 0; k < i; k++)
                tdm_tensor_free(&inputs[k]);
            return st;
        }
        int64_t n = tdm_tensor_numel(&inputs[i]);
        for (int64_t k = 0; k < n; k++) {
            uint64_t r = xorshift(&s);
            switch (t->dtype) {
            case TDM_DTYPE_FLOAT32:
                ((float *)inputs[i].data)[k] = (float)(r >> 40) / (float)(1u << 24);
                break;
            case TDM_DTYPE_FLOAT64:
                ((double *)inputs[i].data)[k] = (double)(r >> 11) / (double)(1ull << 53);
                break;
            case TDM_DTYPE_INT64: ((int64_t *)inputs[i].data)[k] = (int64_t)(r >> 63); break;
            case TDM_DTYPE_INT32: ((int32_t *)inputs[i].data)[k] = (int32_t)(r >> 63); break;
            default: break; /* zeros */
            }
        }
    }
    return TDM_OK;
}

double tdm_split_max_rel(const tdm_tensor *a, const tdm_tensor *b)
{
    if (!tdm_tensor_same_shape(a, b))
        return INFINITY;
    int64_t n = tdm_tensor_numel(b);
    if (b->dtype != TDM_DTYPE_FLOAT32) {
        size_t nb = tdm_tensor_nbytes(b);
        return nb == 0 || memcmp(a->data, b->data, nb) == 0 ? 0.0 : 1.0;
    }
    const float *x = a->data, *y = b->data;
    double scale = 1e-12, diff = 0;
    for (int64_t i = 0; i < n; i++) {
        bool nx = isnan(x[i]) || isinf(x[i]), ny = isnan(y[i]) || isinf(y[i]);
        if (nx || ny) {
            if (!(nx && ny && (isnan(x[i]) == isnan(y[i])) && (isnan(x[i]) || x[i] == y[i])))
                return INFINITY;
            continue;
        }
        double d = fabs((double)x[i] - (double)y[i]);
        if (d > diff)
            diff = d;
        if (fabs((double)y[i]) > scale)
            scale = fabs((double)y[i]);
    }
    return diff / scale;
}

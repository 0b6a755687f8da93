/*
 * Conv fusions: BatchNormalization folded into the weights, and a following
 * activation applied in the GEMM epilogue.
 *
 * BN after Conv is an affine map per output channel, so
 *   W'[o] = W[o] * s[o],  b'[o] = (b[o] - mean[o]) * s[o] + beta[o],
 *   s = gamma / sqrt(var + eps)
 * and the BN node disappears. The fused weights are new constants; the old
 * ones are freed by the dead-code pass when nothing else reads them, so
 * memory does not grow.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "engine/passes/pass_util.h"
#include "engine/passes/passes.h"

static bool fold_bn(tdm_pass_ctx *c, tdm_node *conv, tdm_node *bn, tdm_err *err, tdm_status *st)
{
    tdm_graph *g = c->g;
    const tdm_tensor *w = tdm_pass_const_f32(g, conv->in[1]);
    if (w == NULL || w->ndim < 3 || bn->n_in < 5 || tdm_attr_int(bn, "training_mode", 0) != 0)
        return false;
    if (bn->n_out > 1) /* training outputs requested */
        for (int k = 1; k < bn->n_out; k++)
            if (bn->out[k] >= 0)
                return false;
    int64_t cout = w->dims[0];
    const tdm_tensor *p[4];
    for (int k = 0; k < 4; k++) {
        p[k] = tdm_pass_const_f32(g, bn->in[1 + k]);
        if (p[k] == NULL || tdm_tensor_numel(p[k]) != cout)
            return false;
    }
    const tdm_tensor *b = NULL;
    if (conv->n_in > 2 && conv->in[2] >= 0) {
        b = tdm_pass_const_f32(g, conv->in[2]);
        if (b == NULL || tdm_tensor_numel(b) != cout)
            return false;
    }
    float eps = tdm_attr_float(bn, "epsilon", 1e-5f);
    tdm_tensor nw, nb;
    if ((*st = tdm_tensor_copy(&nw, w, err)) != TDM_OK)
        return false;
    if ((*st = tdm_tensor_make(&nb, TDM_DTYPE_FLOAT32, 1, &cout, err)) != TDM_OK) {
        tdm_tensor_free(&nw);
        return false;
    }
    const float *gam = p[0]->data, *bet = p[1]->data, *mean = p[2]->data, *var = p[3]->data;
    int64_t per = tdm_tensor_numel(w) / (cout > 0 ? cout : 1);
    float *wd = nw.data, *bd = nb.data;
    for (int64_t o = 0; o < cout; o++) {
        float s = gam[o] / sqrtf(var[o] + eps);
        for (int64_t k = 0; k < per; k++)
            wd[o * per + k] *= s;
        bd[o] = ((b ? ((const float *)b->data)[o] : 0.f) - mean[o]) * s + bet[o];
    }
    int32_t vw = tdm_pass_add_const(g, g->values[conv->in[1]].name, &nw);
    int32_t vb = tdm_pass_add_const(g, "bn_bias", &nb);
    if (vw < 0 || vb < 0) {
        tdm_tensor_free(&nw);
        tdm_tensor_free(&nb);
        *st = tdm_errf(err, TDM_ERR_NOMEM, "out of memory fusing Conv+BatchNormalization");
        return false;
    }
    if (conv->n_in < 3) {
        int32_t *in = realloc(conv->in, sizeof *in * 3);
        if (in == NULL) {
            *st = tdm_errf(err, TDM_ERR_NOMEM, "out of memory fusing Conv+BatchNormalization");
            return false;
        }
        conv->in = in;
        conv->n_in = 3;
    }
    conv->in[1] = vw;
    conv->in[2] = vb;
    conv->out[0] = bn->out[0];
    tdm_node_clear(bn);
    return true;
}

static bool fuse_act(tdm_pass_ctx *c, tdm_node *conv, tdm_node *act, tdm_err *err, tdm_status *st)
{
    tdm_graph *g = c->g;
    if (tdm_node_attr(conv, "tdm_activation") != NULL)
        return false;
    float alpha = 0.f, beta = 0.f;
    const char *name = act->op_type;
    if (strcmp(name, "Relu") == 0 || strcmp(name, "Sigmoid") == 0 || strcmp(name, "Tanh") == 0 ||
        strcmp(name, "HardSwish") == 0) {
        /* no parameters */
    } else if (strcmp(name, "LeakyRelu") == 0) {
        alpha = tdm_attr_float(act, "alpha", 0.01f);
    } else if (strcmp(name, "HardSigmoid") == 0) {
        alpha = tdm_attr_float(act, "alpha", 0.2f);
        beta = tdm_attr_float(act, "beta", 0.5f);
    } else if (strcmp(name, "Clip") == 0) {
        alpha = -INFINITY;
        beta = INFINITY;
        if (act->opset < 11) {
            alpha = tdm_attr_float(act, "min", -INFINITY);
            beta = tdm_attr_float(act, "max", INFINITY);
        } else {
            if (act->n_in > 1 && act->in[1] >= 0 && !tdm_pass_const_scalar(g, act->in[1], &alpha))
                return false;
            if (act->n_in > 2 && act->in[2] >= 0 && !tdm_pass_const_scalar(g, act->in[2], &beta))
                return false;
        }
    } else {
        return false;
    }
    /* Attributes live in one realloc'd array: look each up again after adding. */
    char *s = tdm_strdup(name);
    if (s == NULL || tdm_node_add_attr(conv, "tdm_activation", TDM_ATTR_STRING) == NULL ||
        tdm_node_add_attr(conv, "tdm_alpha", TDM_ATTR_FLOAT) == NULL ||
        tdm_node_add_attr(conv, "tdm_beta", TDM_ATTR_FLOAT) == NULL) {
        free(s);
        *st = tdm_errf(err, TDM_ERR_NOMEM, "out of memory fusing Conv activation");
        return false;
    }
    tdm_attr *a = (tdm_attr *)tdm_node_attr(conv, "tdm_activation");
    a->s = s;
    a->s_len = strlen(s);
    ((tdm_attr *)tdm_node_attr(conv, "tdm_alpha"))->f = alpha;
    ((tdm_attr *)tdm_node_attr(conv, "tdm_beta"))->f = beta;
    conv->out[0] = act->out[0];
    tdm_node_clear(act);
    return true;
}

tdm_status tdm_pass_fuse_conv(tdm_graph *g, tdm_err *err)
{
    tdm_pass_ctx c;
    tdm_status st = tdm_pass_begin(&c, g, err);
    for (int32_t i = 0; i < g->n_nodes && st == TDM_OK; i++) {
        tdm_node *conv = &g->nodes[i];
        if (!tdm_pass_is(conv, "Conv") || conv->n_out != 1 || conv->n_in < 2)
            continue;
        bool changed = true;
        while (changed && st == TDM_OK) {
            changed = false;
            tdm_node *next = tdm_pass_sole_consumer(&c, conv->out[0], NULL);
            if (next == NULL || next->n_in < 1 || next->in[0] != conv->out[0])
                break;
            if (tdm_pass_is(next, "BatchNormalization") &&
                tdm_node_attr(conv, "tdm_activation") == NULL)
                changed = fold_bn(&c, conv, next, err, &st);
            else if (next->domain[0] == '\0')
                changed = fuse_act(&c, conv, next, err, &st);
            if (changed && st == TDM_OK)
                st = tdm_pass_refresh(&c, err);
        }
    }
    tdm_pass_end(&c);
    return st;
}

/*
 * Transformer fusions: decomposed LayerNorm, erf-GELU, MatMul+bias(+act),
 * multi-head attention and the residual Add after a FusedMatMul, as
 * exporters (PyTorch, Hugging Face) write them.
 *
 * Each matcher starts from a distinctive node (ReduceMean, Erf, MatMul,
 * Softmax), walks the exact chain the export produces, checks every
 * intermediate has a single reader (so nothing else sees the tensors that
 * disappear) and that constants have the values the formula needs, and only
 * then rewrites. The replaced nodes are cleared lazily by the dead-code pass:
 * the fused node takes over the chain's final output name, so the old chain
 * is unreachable.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "engine/op.h"
#include "engine/passes/pass_util.h"
#include "engine/passes/passes.h"

/* Appends a node in place of `at`'s slot order: nodes must stay topologically
 * sorted, so the new node replaces `at` (whose slot it reuses). */
static int32_t replace_node(tdm_graph *g, int32_t at, const char *op, const char *domain, int n_in,
                            int n_out)
{
    char name[256];
    snprintf(name, sizeof name, "%s_fused", g->nodes[at].name);
    int opset = g->nodes[at].opset;
    int32_t idx = tdm_graph_add_node(g, op, domain, name, n_in, n_out);
    if (idx < 0)
        return -1;
    /* Move the new node into slot `at`, clearing what was there. */
    tdm_node fresh = g->nodes[idx];
    fresh.opset = strcmp(domain, "") == 0 ? opset : 1;
    g->n_nodes--;
    tdm_node_clear(&g->nodes[at]);
    g->nodes[at] = fresh;
    return at;
}

/* Gives node i's first output a fresh unused name, cutting the chain it ends
 * off from its readers (which the fused node now feeds). */
static bool detach(tdm_graph *g, int32_t i)
{
    int32_t v = tdm_graph_new_value(g, "dead");
    if (v < 0)
        return false;
    g->nodes[i].out[0] = v;
    return true;
}

static bool is_reduce_mean_last(const tdm_graph *g, const tdm_node *n)
{
    if (!tdm_pass_is(n, "ReduceMean") || tdm_attr_int(n, "keepdims", 1) != 1)
        return false;
    int64_t axes[8];
    int na = tdm_pass_axes(g, n, "axes", 1, axes, 8);
    return na == 1 && axes[0] == -1;
}

/* ReduceMean -> Sub -> Pow 2 -> ReduceMean -> Add eps -> Sqrt -> Div -> Mul g -> Add b */
static tdm_status match_layernorm(tdm_pass_ctx *c, int32_t i, bool *done, tdm_err *err)
{
    tdm_graph *g = c->g;
    tdm_node *rm = &g->nodes[i];
    *done = false;
    if (!is_reduce_mean_last(g, rm))
        return TDM_OK;
    int32_t x = rm->in[0], mean = rm->out[0];
    /* Sub(x, mean): mean read only by Sub */
    tdm_node *sub = tdm_pass_sole_consumer(c, mean, NULL);
    if (!tdm_pass_is2(sub, "Sub") || sub->in[0] != x || sub->in[1] != mean)
        return TDM_OK;
    int32_t d = sub->out[0];
    if (c->uses[d] != 2 || g->values[d].is_output)
        return TDM_OK;
    tdm_node *pw = NULL, *dv = NULL;
    for (int32_t k = 0; k < g->n_nodes; k++) {
        tdm_node *n = &g->nodes[k];
        if (n->op_type == NULL || n->n_in < 2 || n->in[0] != d)
            continue;
        if (tdm_pass_is2(n, "Pow"))
            pw = n;
        else if (tdm_pass_is2(n, "Div"))
            dv = n;
    }
    float two, eps;
    if (pw == NULL || dv == NULL || !tdm_pass_const_scalar(g, pw->in[1], &two) || two != 2.f)
        return TDM_OK;
    tdm_node *rm2 = tdm_pass_sole_consumer(c, pw->out[0], NULL);
    if (!is_reduce_mean_last(g, rm2))
        return TDM_OK;
    tdm_node *add = tdm_pass_sole_consumer(c, rm2->out[0], NULL);
    if (!tdm_pass_is2(add, "Add") ||
        !tdm_pass_const_scalar(g, tdm_pass_other_input(add, rm2->out[0]), &eps))
        return TDM_OK;
    tdm_node *sq = tdm_pass_sole_consumer(c, add->out[0], NULL);
    if (!tdm_pass_is(sq, "Sqrt") || dv->in[1] != sq->out[0] || !tdm_pass_single_use(c, sq->out[0]))
        return TDM_OK;
    tdm_node *mul = tdm_pass_sole_consumer(c, dv->out[0], NULL);
    if (!tdm_pass_is2(mul, "Mul"))
        return TDM_OK;
    int32_t gamma = tdm_pass_other_input(mul, dv->out[0]);
    const tdm_tensor *gt = tdm_pass_const_f32(g, gamma);
    if (gt == NULL || gt->ndim != 1)
        return TDM_OK;
    int32_t beta = -1, y = mul->out[0];
    tdm_node *badd = tdm_pass_sole_consumer(c, mul->out[0], NULL);
    if (tdm_pass_is2(badd, "Add")) {
        int32_t b = tdm_pass_other_input(badd, mul->out[0]);
        const tdm_tensor *bt = tdm_pass_const_f32(g, b);
        if (bt != NULL && bt->ndim == 1 && bt->dims[0] == gt->dims[0]) {
            beta = b;
            y = badd->out[0];
        }
    }
    /* The fused node takes the ReduceMean's slot: x is defined before it.
     * Adding a node may move the node array: keep indices, not pointers. */
    int32_t last_i = tdm_pass_index(g, beta >= 0 ? badd : mul);
    int32_t at = replace_node(g, i, "LayerNormalization", "", 3, 1);
    if (at < 0)
        return tdm_errf(err, TDM_ERR_NOMEM, "out of memory fusing LayerNormalization");
    tdm_node *ln = &g->nodes[at];
    ln->opset = 17;
    ln->in[0] = x;
    ln->in[1] = gamma;
    ln->in[2] = beta;
    ln->out[0] = y;
    tdm_attr *a = tdm_node_add_attr(ln, "axis", TDM_ATTR_INT);
    if (a == NULL)
        return tdm_errf(err, TDM_ERR_NOMEM, "out of memory fusing LayerNormalization");
    a->i = -1;
    a = tdm_node_add_attr(ln, "epsilon", TDM_ATTR_FLOAT);
    if (a == NULL)
        return tdm_errf(err, TDM_ERR_NOMEM, "out of memory fusing LayerNormalization");
    a->f = eps;
    /* Detach the old chain's final output so the dead-code pass drops it. */
    if (!detach(g, last_i))
        return tdm_errf(err, TDM_ERR_NOMEM, "out of memory fusing LayerNormalization");
    *done = true;
    return TDM_OK;
}

tdm_status tdm_pass_fuse_layernorm(tdm_graph *g, tdm_err *err)
{
    if (tdm_op_find("", "LayerNormalization") == NULL)
        return TDM_OK;
    return tdm_pass_each_node(g, match_layernorm, err);
}

static bool near(float a, float b)
{
    return fabsf(a - b) <= 1e-5f * fabsf(b);
}

/* x / sqrt(2) (or x * 1/sqrt(2)) -> Erf -> + 1 -> * x -> * 0.5, any operand order. */
static tdm_status match_gelu(tdm_pass_ctx *c, int32_t i, bool *done, tdm_err *err)
{
    tdm_graph *g = c->g;
    tdm_node *erf = &g->nodes[i];
    *done = false;
    if (!tdm_pass_is(erf, "Erf"))
        return TDM_OK;
    tdm_node *scale = tdm_pass_producer(c, erf->in[0], NULL);
    float k;
    if (scale == NULL || !tdm_pass_single_use(c, erf->in[0]))
        return TDM_OK;
    int32_t x;
    if (tdm_pass_is2(scale, "Div") && tdm_pass_const_scalar(g, scale->in[1], &k) &&
        near(k, 1.41421356f))
        x = scale->in[0];
    else if (tdm_pass_is2(scale, "Mul") && tdm_pass_const_scalar(g, scale->in[1], &k) &&
             near(k, 0.70710678f))
        x = scale->in[0];
    else if (tdm_pass_is2(scale, "Mul") && tdm_pass_const_scalar(g, scale->in[0], &k) &&
             near(k, 0.70710678f))
        x = scale->in[1];
    else
        return TDM_OK;
    tdm_node *add = tdm_pass_sole_consumer(c, erf->out[0], NULL);
    float one, half;
    if (!tdm_pass_is2(add, "Add") ||
        !tdm_pass_const_scalar(g, tdm_pass_other_input(add, erf->out[0]), &one) || one != 1.f)
        return TDM_OK;
    tdm_node *m1 = tdm_pass_sole_consumer(c, add->out[0], NULL);
    if (!tdm_pass_is2(m1, "Mul"))
        return TDM_OK;
    int32_t other = tdm_pass_other_input(m1, add->out[0]);
    tdm_node *last;
    if (other == x) {
        /* (x * (1 + erf)) * 0.5 */
        last = tdm_pass_sole_consumer(c, m1->out[0], NULL);
        if (!tdm_pass_is2(last, "Mul") ||
            !tdm_pass_const_scalar(g, tdm_pass_other_input(last, m1->out[0]), &half) ||
            half != 0.5f)
            return TDM_OK;
    } else {
        /* (x * 0.5) * (1 + erf) */
        tdm_node *h = tdm_pass_producer(c, other, "Mul");
        if (h == NULL || !tdm_pass_single_use(c, other) || tdm_pass_other_input(h, x) == x ||
            (h->in[0] != x && h->in[1] != x) ||
            !tdm_pass_const_scalar(g, tdm_pass_other_input(h, x), &half) || half != 0.5f)
            return TDM_OK;
        last = m1;
    }
    int32_t y = last->out[0], last_i = tdm_pass_index(g, last);
    int32_t at = replace_node(g, i, "Gelu", "", 1, 1);
    if (at < 0)
        return tdm_errf(err, TDM_ERR_NOMEM, "out of memory fusing Gelu");
    g->nodes[at].opset = 20;
    g->nodes[at].in[0] = x;
    g->nodes[at].out[0] = y;
    if (!detach(g, last_i))
        return tdm_errf(err, TDM_ERR_NOMEM, "out of memory fusing Gelu");
    *done = true;
    return TDM_OK;
}

tdm_status tdm_pass_fuse_gelu(tdm_graph *g, tdm_err *err)
{
    if (tdm_op_find("", "Gelu") == NULL)
        return TDM_OK;
    return tdm_pass_each_node(g, match_gelu, err);
}

static tdm_status set_str_attr(tdm_node *n, const char *name, const char *val, tdm_err *err)
{
    char *s = tdm_strdup(val);
    tdm_attr *a = s ? tdm_node_add_attr(n, name, TDM_ATTR_STRING) : NULL;
    if (a == NULL) {
        free(s);
        return tdm_errf(err, TDM_ERR_NOMEM, "out of memory in fusion");
    }
    a->s = s;
    a->s_len = strlen(s);
    return TDM_OK;
}

/*
 * MatMul(A, W) [+ bias] [-> Relu|Gelu] with W a constant 2-D matrix, or
 * Gemm(A, W, c) with alpha = beta = 1, transA = 0 and c a vector, becomes
 * tandem.FusedMatMul(A, W, bias) with the activation in the epilogue.
 */
static tdm_status match_matmul(tdm_pass_ctx *c, int32_t i, bool *done, tdm_err *err)
{
    tdm_graph *g = c->g;
    tdm_node *mm = &g->nodes[i];
    *done = false;
    bool gemm = tdm_pass_is(mm, "Gemm") && mm->n_in >= 2 && mm->in[1] >= 0;
    if (!gemm && !tdm_pass_is2(mm, "MatMul"))
        return TDM_OK;
    const tdm_tensor *w = tdm_pass_const_f32(g, mm->in[1]);
    if (w == NULL || w->ndim != 2)
        return TDM_OK;
    int64_t trans_b = 0;
    int32_t bias = -1, y = mm->out[0];
    tdm_node *last = mm;
    if (gemm) {
        if (tdm_attr_int(mm, "transA", 0) != 0 || tdm_attr_float(mm, "alpha", 1.f) != 1.f ||
            tdm_attr_float(mm, "beta", 1.f) != 1.f)
            return TDM_OK;
        trans_b = tdm_attr_int(mm, "transB", 0);
        int64_t n = trans_b ? w->dims[0] : w->dims[1];
        if (mm->n_in > 2 && mm->in[2] >= 0) {
            const tdm_tensor *bt = tdm_pass_const_f32(g, mm->in[2]);
            if (bt == NULL || tdm_tensor_numel(bt) != n || (bt->ndim == 2 && bt->dims[0] != 1))
                return TDM_OK;
            bias = mm->in[2];
        }
    }
    int64_t n_cols = trans_b ? w->dims[0] : w->dims[1];
    if (bias < 0) {
        tdm_node *add = tdm_pass_sole_consumer(c, y, NULL);
        if (tdm_pass_is2(add, "Add")) {
            int32_t b = tdm_pass_other_input(add, y);
            const tdm_tensor *bt = tdm_pass_const_f32(g, b);
            if (bt != NULL && bt->ndim == 1 && bt->dims[0] == n_cols) {
                bias = b;
                y = add->out[0];
                last = add;
            }
        }
    }
    const char *act = "";
    tdm_node *an = tdm_pass_sole_consumer(c, y, NULL);
    if (an != NULL && an->n_in == 1 && (tdm_pass_is(an, "Relu") || tdm_pass_is(an, "Gelu")) &&
        strcmp(tdm_attr_str(an, "approximate", "none"), "none") == 0) {
        act = an->op_type;
        y = an->out[0];
        last = an;
    }
    if (last == mm && !gemm)
        return TDM_OK; /* nothing to fuse into a plain MatMul */
    int32_t a_in = mm->in[0], w_in = mm->in[1];
    char actbuf[16];
    snprintf(actbuf, sizeof actbuf, "%s", act);
    int32_t last_i = tdm_pass_index(g, last);
    int32_t at = replace_node(g, i, "FusedMatMul", "tandem", 3, 1);
    if (at < 0)
        return tdm_errf(err, TDM_ERR_NOMEM, "out of memory fusing MatMul");
    tdm_node *f = &g->nodes[at];
    f->in[0] = a_in;
    f->in[1] = w_in;
    f->in[2] = bias;
    f->out[0] = y;
    tdm_status st = set_str_attr(f, "activation", actbuf, err);
    tdm_attr *tb = st == TDM_OK ? tdm_node_add_attr(f, "transB", TDM_ATTR_INT) : NULL;
    if (tb == NULL)
        return st != TDM_OK ? st : tdm_errf(err, TDM_ERR_NOMEM, "out of memory fusing MatMul");
    tb->i = trans_b;
    if (last_i != i && !detach(g, last_i))
        return tdm_errf(err, TDM_ERR_NOMEM, "out of memory fusing MatMul");
    *done = true;
    return TDM_OK;
}

tdm_status tdm_pass_fuse_matmul(tdm_graph *g, tdm_err *err)
{
    if (tdm_op_find("tandem", "FusedMatMul") == NULL)
        return TDM_OK;
    return tdm_pass_each_node(g, match_matmul, err);
}

/*
 * FusedMatMul(A, W, bias) -> Add(., R) becomes FusedMatMul(A, W, bias, R):
 * a transformer's skip connection (dense + residual before each LayerNorm)
 * then rides in the GEMM's epilogue instead of costing a pass of its own.
 * The product must be read by the Add alone. The op adds R after its
 * activation and broadcasts it as Add does, so neither the activation nor
 * R's shape (often symbolic here) needs checking. The fused node takes the
 * Add's slot, where R is known to exist; the old FusedMatMul loses its
 * reader and goes with the dead code.
 */
static tdm_status match_residual(tdm_pass_ctx *c, int32_t i, bool *done, tdm_err *err)
{
    tdm_graph *g = c->g;
    *done = false;
    if (!tdm_pass_is2(&g->nodes[i], "Add"))
        return TDM_OK;
    for (int side = 0; side < 2; side++) {
        const tdm_node *add = &g->nodes[i];
        int32_t y = add->in[side], r = add->in[1 - side], out = add->out[0];
        const tdm_node *mm = tdm_pass_producer(c, y, NULL);
        if (y == r || mm == NULL || strcmp(mm->domain, "tandem") != 0 ||
            strcmp(mm->op_type, "FusedMatMul") != 0 || mm->n_in < 2 || mm->n_in > 3 ||
            mm->in[0] < 0 || mm->in[1] < 0 || mm->n_out != 1 || !tdm_pass_single_use(c, y))
            continue;
        int32_t mi = tdm_pass_index(g, mm);
        int32_t at = replace_node(g, i, "FusedMatMul", "tandem", 4, 1);
        if (at < 0)
            return tdm_errf(err, TDM_ERR_NOMEM, "out of memory fusing a residual Add");
        mm = &g->nodes[mi];
        tdm_node *f = &g->nodes[at];
        for (int k = 0; k < mm->n_in; k++)
            f->in[k] = mm->in[k];
        f->in[3] = r;
        f->out[0] = out;
        for (int k = 0; k < mm->n_attr; k++) {
            const tdm_attr *a = &mm->attrs[k];
            if (a->type == TDM_ATTR_STRING) {
                tdm_status st = set_str_attr(f, a->name, a->s, err);
                if (st != TDM_OK)
                    return st;
                continue;
            }
            tdm_attr *b = a->type == TDM_ATTR_INT || a->type == TDM_ATTR_FLOAT
                              ? tdm_node_add_attr(f, a->name, a->type)
                              : NULL;
            if (b == NULL)
                return tdm_errf(err, TDM_ERR_NOMEM, "out of memory fusing a residual Add");
            b->i = a->i;
            b->f = a->f;
        }
        if (!detach(g, mi))
            return tdm_errf(err, TDM_ERR_NOMEM, "out of memory fusing a residual Add");
        *done = true;
        return TDM_OK;
    }
    return TDM_OK;
}

tdm_status tdm_pass_fuse_residual(tdm_graph *g, tdm_err *err)
{
    if (tdm_op_find("tandem", "FusedMatMul") == NULL)
        return TDM_OK;
    return tdm_pass_each_node(g, match_residual, err);
}

static bool perm_is(const tdm_node *t, const int64_t *want)
{
    int64_t n = 0;
    const int64_t *p = tdm_attr_ints(t, "perm", &n);
    if (p == NULL || n != 4)
        return false;
    for (int k = 0; k < 4; k++)
        if (p[k] != want[k])
            return false;
    return true;
}

/* Transpose(Reshape(x, [b, s, H, D]), perm) -> x and H; -1 when it does not match. */
static int32_t head_split(tdm_pass_ctx *c, int32_t v, const int64_t *perm, int64_t *heads)
{
    tdm_graph *g = c->g;
    tdm_node *tr = tdm_pass_producer(c, v, "Transpose");
    if (tr == NULL || !tdm_pass_single_use(c, v) || !perm_is(tr, perm))
        return -1;
    tdm_node *rs = tdm_pass_producer(c, tr->in[0], "Reshape");
    if (rs == NULL || !tdm_pass_single_use(c, tr->in[0]))
        return -1;
    int64_t shape[4];
    int64_t h = -1;
    if (tdm_pass_const_ints(g, rs->in[1], shape, 4) == 4) {
        h = shape[2];
    } else {
        tdm_node *cat = tdm_pass_producer(c, rs->in[1], "Concat");
        int64_t one[1];
        if (cat != NULL && cat->n_in == 4 && tdm_pass_const_ints(g, cat->in[2], one, 1) == 1)
            h = one[0];
    }
    if (h <= 0 || (*heads > 0 && *heads != h))
        return -1;
    *heads = h;
    return rs->in[0];
}

static bool leads_to_matmul(tdm_pass_ctx *c, int32_t v)
{
    tdm_node *n = tdm_pass_producer(c, v, NULL);
    if (n != NULL && (tdm_pass_is2(n, "Div") || tdm_pass_is2(n, "Mul")))
        n = tdm_pass_producer(c, n->in[0], NULL);
    return tdm_pass_is2(n, "MatMul");
}

/*
 * Softmax(Q K^T * scale + mask) V with the head split/merge Reshape and
 * Transpose nodes around it (the Hugging Face BERT export) becomes
 * tandem.Attention(Q, K, V, mask, divisor) on [B, S, H*D] tensors, so the
 * [B, H, S, D] copies are never made.
 */
static tdm_status match_attention(tdm_pass_ctx *c, int32_t i, bool *done, tdm_err *err)
{
    static const int64_t p0213[4] = {0, 2, 1, 3}, p0231[4] = {0, 2, 3, 1};
    tdm_graph *g = c->g;
    tdm_node *sm = &g->nodes[i];
    *done = false;
    if (!tdm_pass_is(sm, "Softmax") || tdm_attr_int(sm, "axis", -1) != -1 ||
        (sm->opset < 13 && tdm_node_attr(sm, "axis") == NULL))
        return TDM_OK;
    /* backwards: [Add mask] <- [Div|Mul scale] <- MatMul(qT, kT) */
    int32_t cur = sm->in[0], mask = -1, divisor = -1;
    float scale = 1.f;
    tdm_node *n = tdm_pass_producer(c, cur, "Add");
    if (n != NULL && tdm_pass_single_use(c, cur)) {
        /* The scores side is the one that reaches Q K^T through at most one scaling. */
        bool left = leads_to_matmul(c, n->in[0]), right = leads_to_matmul(c, n->in[1]);
        if (left == right)
            return TDM_OK;
        mask = left ? n->in[1] : n->in[0];
        cur = left ? n->in[0] : n->in[1];
    }
    n = tdm_pass_producer(c, cur, NULL);
    if (n != NULL && (tdm_pass_is2(n, "Div") || tdm_pass_is2(n, "Mul")) &&
        tdm_pass_single_use(c, cur)) {
        float k;
        if (tdm_pass_const_scalar(g, n->in[1], &k))
            scale = tdm_pass_is2(n, "Div") ? 1.f / k : k;
        else if (tdm_pass_is2(n, "Div") && g->values[n->in[1]].producer >= 0)
            divisor = n->in[1];
        else
            return TDM_OK;
        cur = n->in[0];
    }
    tdm_node *qk = tdm_pass_producer(c, cur, "MatMul");
    if (qk == NULL || !tdm_pass_single_use(c, cur))
        return TDM_OK;
    int64_t heads = -1;
    int32_t q = head_split(c, qk->in[0], p0213, &heads);
    int32_t k = head_split(c, qk->in[1], p0231, &heads);
    /* forwards: MatMul(probs, vT) -> Transpose 0213 -> Reshape */
    tdm_node *pv = tdm_pass_sole_consumer(c, sm->out[0], NULL);
    if (q < 0 || k < 0 || !tdm_pass_is2(pv, "MatMul") || pv->in[0] != sm->out[0])
        return TDM_OK;
    int32_t v = head_split(c, pv->in[1], p0213, &heads);
    tdm_node *tr = tdm_pass_sole_consumer(c, pv->out[0], NULL);
    if (v < 0 || !tdm_pass_is(tr, "Transpose") || !perm_is(tr, p0213))
        return TDM_OK;
    tdm_node *rs = tdm_pass_sole_consumer(c, tr->out[0], NULL);
    if (!tdm_pass_is2(rs, "Reshape") || rs->in[0] != tr->out[0])
        return TDM_OK;
    int64_t shape[3];
    tdm_node *cat = tdm_pass_producer(c, rs->in[1], "Concat");
    if (tdm_pass_const_ints(g, rs->in[1], shape, 3) != 3 && (cat == NULL || cat->n_in != 3))
        return TDM_OK;
    int32_t y = rs->out[0];
    int32_t at = replace_node(g, tdm_pass_index(g, rs), "Attention", "tandem", 5, 1);
    if (at < 0)
        return tdm_errf(err, TDM_ERR_NOMEM, "out of memory fusing Attention");
    tdm_node *a = &g->nodes[at];
    a->in[0] = q;
    a->in[1] = k;
    a->in[2] = v;
    a->in[3] = mask;
    a->in[4] = divisor;
    a->out[0] = y;
    tdm_attr *at_h = tdm_node_add_attr(a, "num_heads", TDM_ATTR_INT);
    if (at_h == NULL)
        return tdm_errf(err, TDM_ERR_NOMEM, "out of memory fusing Attention");
    at_h->i = heads;
    tdm_attr *at_s = tdm_node_add_attr(a, "scale", TDM_ATTR_FLOAT);
    if (at_s == NULL)
        return tdm_errf(err, TDM_ERR_NOMEM, "out of memory fusing Attention");
    at_s->f = scale;
    *done = true;
    return TDM_OK;
}

tdm_status tdm_pass_fuse_attention(tdm_graph *g, tdm_err *err)
{
    if (tdm_op_find("tandem", "Attention") == NULL)
        return TDM_OK;
    return tdm_pass_each_node(g, match_attention, err);
}

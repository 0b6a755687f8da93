/*
 * Sessions and the executor.
 *
 * A run goes from a frontier of known tensors (graph inputs, or cut tensors
 * of a split model) to a set of targets. The executor first works out which
 * nodes lie between them, then builds a plan for the given input shapes:
 *
 *   - nodes whose inputs are all known values (initializers, or tensors that
 *     depend only on input shapes: Shape -> Gather -> Concat chains) are
 *     evaluated once, at plan time, and skipped on every later run; Shape
 *     and Size count as known as soon as their input's shape is, so an
 *     exported transformer's Range/Reshape chains stay static rather than
 *     making the whole encoder dynamic (heap tensors on every run);
 *   - every other node gets its output shapes inferred; the tensors whose
 *     shapes are known share one arena, with offsets assigned by lifetime
 *     (greedy by size: a tensor goes at the lowest offset that no tensor
 *     alive at the same time uses);
 *   - a node whose output shape depends on a value computed at run time is
 *     "dynamic": it is inferred again when it runs and its outputs (and any
 *     tensor downstream with unknown shape) are allocated on the heap and
 *     freed after their last use.
 *
 * Plans are cached per (frontier, targets, input shapes), so a model served
 * at a few batch sizes or sequence lengths plans a few times and then only
 * runs kernels. The arena itself belongs to the session, not to a plan: a
 * session runs one plan at a time, so one buffer sized for the largest plan
 * serves them all, and a new shape reuses pages already mapped instead of
 * faulting in a fresh arena (7-9% of an embedding run at batch 32 before).
 * A plan keeps its offsets and rebinds its tensors when the arena has grown.
 */
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "engine/ir.h"
#include "engine/op.h"
#include "engine/session_internal.h"
#include "tandem/graph.h"

#define PLAN_CACHE 8

enum {
    V_UNUSED = 0, /* not touched by this plan */
    V_FROM,       /* borrowed from the caller */
    V_CONST,      /* graph constant (cval) */
    V_FOLDED,     /* computed at plan time, owned by the plan */
    V_ARENA,      /* static shape, lives in the arena */
    V_DYNAMIC,    /* shape known only at run time, heap */
};

typedef struct plan {
    /* key */
    int n_from, n_until;
    int32_t *from_ids, *until_ids;
    tdm_tensor *from_meta; /* dtype + dims of the frontier tensors, data NULL */
    /* body */
    uint8_t *kind;    /* per value: V_* */
    tdm_tensor *vals; /* per value: meta and, for folded/arena, data */
    int32_t *exec;    /* node indices to run, in order */
    int32_t n_exec;
    uint8_t *dynamic;  /* per exec position: infer at run time */
    int32_t *last_use; /* per value: last exec position that reads it, -1 none */
    size_t arena_bytes;
    int32_t n_arena;   /* values living in the session's arena */
    int32_t *arena_v;  /* their ids */
    size_t *arena_off; /* and offsets */
    void *bound;       /* the arena their data pointers point into, or NULL */
    uint64_t stamp;    /* LRU */
} plan;

struct tdm_session {
    const tdm_graph *g;
    tdm_pool *pool;
    const tdm_op **ops; /* per node, looked up once (the registry is a linear scan) */
    void **state;       /* per node, from prepare */
    tdm_scratch scratch;
    plan *plans[PLAN_CACHE];
    uint64_t clock;
    /* One arena for every plan (a session runs one plan at a time): it only
     * grows, so changing shapes (each a plan) reuse memory whose pages are
     * already mapped instead of faulting in a fresh arena per plan. */
    void *arena;
    size_t arena_cap;
};

/* ---- node context -------------------------------------------------------- */

typedef struct node_io {
    const tdm_tensor *in[64];
    tdm_tensor *out[64];
} node_io;

static tdm_status node_ctx(tdm_session *s, int32_t ni, tdm_tensor *vals, node_io *io,
                           tdm_op_ctx *ctx, tdm_err *err)
{
    const tdm_node *n = &s->g->nodes[ni];
    if (n->n_in > 64 || n->n_out > 64)
        return tdm_errf(err, TDM_ERR_UNSUPPORTED,
                        "node '%s' (%s) has more than 64 inputs or outputs", n->name, n->op_type);
    for (int k = 0; k < n->n_in; k++)
        io->in[k] = n->in[k] >= 0 ? &vals[n->in[k]] : NULL;
    for (int k = 0; k < n->n_out; k++)
        io->out[k] = n->out[k] >= 0 ? &vals[n->out[k]] : NULL;
    ctx->node = n;
    ctx->n_in = n->n_in;
    ctx->in = io->in;
    ctx->n_out = n->n_out;
    ctx->out = io->out;
    ctx->state = s->state[ni];
    ctx->pool = s->pool;
    ctx->scratch = &s->scratch;
    ctx->err = err;
    return TDM_OK;
}

static const tdm_op *node_op(const tdm_session *s, int32_t ni)
{
    return s->ops[ni];
}

/* Shape and Size read only dims: with the input's shape known they fold. */
static bool shape_only_op(const tdm_node *n)
{
    return (n->domain[0] == '\0' || strcmp(n->domain, "ai.onnx") == 0) &&
           (strcmp(n->op_type, "Shape") == 0 || strcmp(n->op_type, "Size") == 0);
}

/* ---- session ------------------------------------------------------------- */

static void plan_free(plan *p, int32_t n_values);

tdm_status tdm_session_create(const tdm_graph *g, const tdm_session_options *opt, tdm_session **out,
                              tdm_err *err)
{
    *out = NULL;
    tdm_session *s = calloc(1, sizeof *s);
    if (s == NULL)
        return tdm_errf(err, TDM_ERR_NOMEM, "out of memory creating session");
    s->g = g;
    s->state = calloc((size_t)g->n_nodes + 1, sizeof *s->state);
    s->ops = calloc((size_t)g->n_nodes + 1, sizeof *s->ops);
    if (s->state == NULL || s->ops == NULL) {
        tdm_session_free(s);
        return tdm_errf(err, TDM_ERR_NOMEM, "out of memory creating session");
    }
    int threads = opt != NULL && opt->threads > 0 ? opt->threads : 1;
    tdm_status st = tdm_pool_create(threads, &s->pool, err);
    if (st != TDM_OK) {
        tdm_session_free(s);
        return st;
    }
    /* Every op must exist before anything runs: fail early with the node's name. */
    tdm_tensor *vals = calloc((size_t)g->n_values + 1, sizeof *vals);
    if (vals == NULL) {
        tdm_session_free(s);
        return tdm_errf(err, TDM_ERR_NOMEM, "out of memory creating session");
    }
    for (int32_t v = 0; v < g->n_values; v++) {
        const tdm_value *val = &g->values[v];
        if (val->is_const) {
            vals[v] = val->cval;
            vals[v].flags = 0;
        } else {
            vals[v].dtype = val->dtype;
            vals[v].ndim = val->ndim;
            for (int d = 0; d < val->ndim && d < TDM_MAX_DIMS; d++)
                vals[v].dims[d] = val->dims[d];
        }
    }
    for (int32_t i = 0; i < g->n_nodes && st == TDM_OK; i++) {
        const tdm_node *n = &g->nodes[i];
        const tdm_op *op = tdm_op_find(n->domain, n->op_type);
        s->ops[i] = op;
        if (op == NULL) {
            st = tdm_errf(err, TDM_ERR_UNSUPPORTED,
                          "node %d '%s': op %s%s%s (opset %d) is not supported", i, n->name,
                          n->domain[0] ? n->domain : "", n->domain[0] ? "." : "", n->op_type,
                          n->opset);
            break;
        }
        if (op->prepare != NULL) {
            node_io io;
            tdm_op_ctx ctx;
            st = node_ctx(s, i, vals, &io, &ctx, err);
            if (st == TDM_OK)
                st = op->prepare(&ctx);
            s->state[i] = ctx.state;
        }
    }
    free(vals);
    if (st != TDM_OK) {
        tdm_session_free(s);
        return st;
    }
    *out = s;
    return TDM_OK;
}

void tdm_session_free(tdm_session *s)
{
    if (s == NULL)
        return;
    for (int i = 0; i < PLAN_CACHE; i++)
        plan_free(s->plans[i], s->g->n_values);
    if (s->state != NULL) {
        for (int32_t i = 0; i < s->g->n_nodes; i++) {
            if (s->state[i] == NULL)
                continue;
            const tdm_op *op = s->ops != NULL ? s->ops[i] : NULL;
            if (op != NULL && op->release != NULL)
                op->release(s->state[i]);
        }
    }
    free(s->state);
    free(s->ops);
    tdm_aligned_free(s->scratch.p);
    tdm_aligned_free(s->arena);
    tdm_pool_free(s->pool);
    free(s);
}

tdm_pool *tdm_session_pool(tdm_session *s)
{
    return s->pool;
}

/* ---- planning ------------------------------------------------------------ */

static void plan_free(plan *p, int32_t n_values)
{
    if (p == NULL)
        return;
    if (p->vals != NULL)
        for (int32_t v = 0; v < n_values; v++)
            if (p->kind[v] == V_FOLDED)
                tdm_tensor_free(&p->vals[v]);
    free(p->from_ids);
    free(p->until_ids);
    free(p->from_meta);
    free(p->kind);
    free(p->vals);
    free(p->exec);
    free(p->dynamic);
    free(p->last_use);
    free(p->arena_v);
    free(p->arena_off);
    free(p);
}

static bool plan_matches(const plan *p, int n_from, const int32_t *from_ids, const tdm_tensor *from,
                         int n_until, const int32_t *until_ids)
{
    if (p->n_from != n_from || p->n_until != n_until)
        return false;
    for (int i = 0; i < n_from; i++)
        if (p->from_ids[i] != from_ids[i] || !tdm_tensor_same_shape(&p->from_meta[i], &from[i]))
            return false;
    for (int i = 0; i < n_until; i++)
        if (p->until_ids[i] != until_ids[i])
            return false;
    return true;
}

typedef struct slot {
    int32_t v;
    size_t bytes;
    int32_t start, end; /* exec positions, inclusive */
    size_t offset;
} slot;

static int slot_cmp(const void *a, const void *b)
{
    const slot *x = a, *y = b;
    if (x->bytes != y->bytes)
        return x->bytes < y->bytes ? 1 : -1;
    return x->v - y->v;
}

static int slot_off_cmp(const void *a, const void *b)
{
    const slot *x = *(const slot *const *)a, *y = *(const slot *const *)b;
    return x->offset < y->offset ? -1 : (x->offset > y->offset ? 1 : 0);
}

/*
 * Greedy by size (largest first): each tensor goes into the lowest gap that
 * no already placed tensor with an overlapping lifetime occupies. Returns the
 * arena size, or SIZE_MAX when the scratch list cannot be allocated.
 */
static size_t assign_offsets(slot *sl, int32_t n)
{
    qsort(sl, (size_t)n, sizeof *sl, slot_cmp);
    const slot **live = malloc(sizeof *live * (size_t)(n + 1));
    if (live == NULL)
        return SIZE_MAX;
    size_t total = 0;
    for (int32_t i = 0; i < n; i++) {
        int32_t nl = 0;
        for (int32_t j = 0; j < i; j++)
            if (!(sl[j].end < sl[i].start || sl[j].start > sl[i].end))
                live[nl++] = &sl[j];
        qsort(live, (size_t)nl, sizeof *live, slot_off_cmp);
        size_t off = 0;
        for (int32_t k = 0; k < nl; k++) {
            if (live[k]->offset >= off + sl[i].bytes)
                break; /* the gap before this one fits */
            if (live[k]->offset + live[k]->bytes > off)
                off = live[k]->offset + live[k]->bytes;
        }
        sl[i].offset = off;
        if (off + sl[i].bytes > total)
            total = off + sl[i].bytes;
    }
    free(live);
    return total;
}

static tdm_status fold_node(tdm_session *s, plan *p, int32_t ni, tdm_err *err)
{
    const tdm_node *n = &s->g->nodes[ni];
    const tdm_op *op = node_op(s, ni);
    node_io io;
    tdm_op_ctx ctx;
    tdm_status st = node_ctx(s, ni, p->vals, &io, &ctx, err);
    if (st == TDM_OK)
        st = op->infer(&ctx);
    for (int k = 0; k < n->n_out && st == TDM_OK; k++) {
        if (n->out[k] < 0)
            continue;
        p->kind[n->out[k]] = V_FOLDED; /* owned by the plan from here on */
        st = tdm_tensor_alloc(&p->vals[n->out[k]], err);
    }
    if (st == TDM_OK)
        st = op->run(&ctx);
    return st;
}

static tdm_status build_plan(tdm_session *s, int n_from, const int32_t *from_ids,
                             const tdm_tensor *from, int n_until, const int32_t *until_ids,
                             plan **out, tdm_err *err)
{
    const tdm_graph *g = s->g;
    int32_t nv = g->n_values, nn = g->n_nodes;
    plan *p = calloc(1, sizeof *p);
    tdm_status st = TDM_OK;
    bool *need = calloc((size_t)nv + 1, sizeof *need);
    bool *run_node = calloc((size_t)nn + 1, sizeof *run_node);
    slot *slots = NULL;
    int32_t bad_node = -1;
    if (p == NULL || need == NULL || run_node == NULL)
        goto nomem;
    p->n_from = n_from;
    p->n_until = n_until;
    p->from_ids = malloc(sizeof *p->from_ids * (size_t)(n_from + 1));
    p->until_ids = malloc(sizeof *p->until_ids * (size_t)(n_until + 1));
    p->from_meta = calloc((size_t)n_from + 1, sizeof *p->from_meta);
    p->kind = calloc((size_t)nv + 1, 1);
    p->vals = calloc((size_t)nv + 1, sizeof *p->vals);
    p->exec = malloc(sizeof *p->exec * (size_t)(nn + 1));
    p->dynamic = calloc((size_t)nn + 1, 1);
    p->last_use = malloc(sizeof *p->last_use * (size_t)(nv + 1));
    if (!p->from_ids || !p->until_ids || !p->from_meta || !p->kind || !p->vals || !p->exec ||
        !p->dynamic || !p->last_use)
        goto nomem;
    for (int i = 0; i < n_from; i++) {
        p->from_ids[i] = from_ids[i];
        p->from_meta[i] = from[i];
        p->from_meta[i].data = NULL;
        p->from_meta[i].flags = 0;
    }
    memcpy(p->until_ids, until_ids, sizeof *until_ids * (size_t)n_until);

    /* Which values are known at the start. */
    for (int32_t v = 0; v < nv; v++) {
        p->last_use[v] = -1;
        if (g->values[v].is_const) {
            p->kind[v] = V_CONST;
            p->vals[v] = g->values[v].cval;
            p->vals[v].flags = 0;
        }
    }
    for (int i = 0; i < n_from; i++) {
        p->kind[from_ids[i]] = V_FROM;
        p->vals[from_ids[i]] = p->from_meta[i]; /* shape only while planning */
    }

    /* Backward: nodes needed for the targets, stopping at the frontier. */
    for (int i = 0; i < n_until; i++)
        need[until_ids[i]] = true;
    for (int32_t ni = nn - 1; ni >= 0; ni--) {
        const tdm_node *n = &g->nodes[ni];
        bool want = false;
        for (int k = 0; k < n->n_out && !want; k++)
            want = n->out[k] >= 0 && need[n->out[k]] && p->kind[n->out[k]] == V_UNUSED;
        if (!want)
            continue;
        run_node[ni] = true;
        for (int k = 0; k < n->n_in; k++)
            if (n->in[k] >= 0 && p->kind[n->in[k]] == V_UNUSED)
                need[n->in[k]] = true;
    }
    for (int32_t v = 0; v < nv; v++) {
        if (!need[v] || p->kind[v] != V_UNUSED)
            continue;
        if (g->values[v].producer < 0 || !run_node[g->values[v].producer]) {
            st = tdm_errf(err, TDM_ERR_INVALID_ARG, "tensor '%s' is needed but was not given%s",
                          g->values[v].name, g->values[v].is_input ? " (it is a graph input)" : "");
            goto fail;
        }
    }

    /* Forward: fold what is known, infer the rest, collect the run list. */
    for (int32_t ni = 0; ni < nn; ni++) {
        if (!run_node[ni])
            continue;
        const tdm_node *n = &g->nodes[ni];
        bad_node = ni;
        bool all_known = true, shapes_known = true;
        for (int k = 0; k < n->n_in; k++) {
            int32_t v = n->in[k];
            if (v < 0)
                continue;
            uint8_t kd = p->kind[v];
            if (kd != V_CONST && kd != V_FOLDED)
                all_known = false;
            if (kd == V_DYNAMIC)
                shapes_known = false;
        }
        /* Shape/Size of a tensor whose shape the plan knows is a constant of
         * the plan (plans are per input shape): folding it keeps the
         * Shape -> Gather -> Range/Reshape chains of exported transformers
         * static, instead of making everything downstream dynamic. */
        if (!all_known && shapes_known && n->n_in >= 1 && n->in[0] >= 0 && shape_only_op(n) &&
            p->kind[n->in[0]] != V_UNUSED && p->vals[n->in[0]].ndim >= 0)
            all_known = true;
        if (all_known) {
            st = fold_node(s, p, ni, err);
            if (st != TDM_OK)
                goto fail_node;
            continue;
        }
        int32_t pos = p->n_exec++;
        p->exec[pos] = ni;
        if (shapes_known) {
            node_io io;
            tdm_op_ctx ctx;
            st = node_ctx(s, ni, p->vals, &io, &ctx, err);
            if (st == TDM_OK)
                st = node_op(s, ni)->infer(&ctx);
            if (st == TDM_ERR_NEEDS_VALUE) {
                shapes_known = false;
                st = TDM_OK;
            } else if (st != TDM_OK) {
                goto fail_node;
            }
        }
        p->dynamic[pos] = !shapes_known;
        for (int k = 0; k < n->n_out; k++)
            if (n->out[k] >= 0)
                p->kind[n->out[k]] = shapes_known ? V_ARENA : V_DYNAMIC;
        for (int k = 0; k < n->n_in; k++)
            if (n->in[k] >= 0)
                p->last_use[n->in[k]] = pos;
    }
    /* Targets live to the end, so they are still there to be copied out. */
    for (int i = 0; i < n_until; i++)
        p->last_use[until_ids[i]] = p->n_exec;

    /* Arena: offsets by lifetime for every statically shaped intermediate. */
    slots = malloc(sizeof *slots * (size_t)(nv + 1));
    if (slots == NULL)
        goto nomem;
    int32_t ns = 0;
    for (int32_t pos = 0; pos < p->n_exec; pos++) {
        const tdm_node *n = &g->nodes[p->exec[pos]];
        for (int k = 0; k < n->n_out; k++) {
            int32_t v = n->out[k];
            if (v < 0 || p->kind[v] != V_ARENA)
                continue;
            size_t bytes;
            if (!tdm_shape_checked_bytes(p->vals[v].dims, p->vals[v].ndim,
                                         tdm_dtype_size(p->vals[v].dtype), SIZE_MAX / 4, &bytes)) {
                st = tdm_errf(err, TDM_ERR_NOMEM, "tensor '%s' is too large", g->values[v].name);
                goto fail;
            }
            bytes = (bytes + TDM_ALIGN - 1) & ~(size_t)(TDM_ALIGN - 1);
            int32_t end = p->last_use[v] > pos ? p->last_use[v] : pos;
            slots[ns++] = (slot){v, bytes, pos, end, 0};
        }
    }
    p->arena_bytes = assign_offsets(slots, ns);
    if (p->arena_bytes == SIZE_MAX)
        goto nomem;
    p->arena_v = malloc(sizeof *p->arena_v * (size_t)(ns + 1));
    p->arena_off = malloc(sizeof *p->arena_off * (size_t)(ns + 1));
    if (p->arena_v == NULL || p->arena_off == NULL)
        goto nomem;
    for (int32_t i = 0; i < ns; i++) {
        p->arena_v[i] = slots[i].v;
        p->arena_off[i] = slots[i].offset;
    }
    p->n_arena = ns;
    p->bound = NULL;
    /* The frontier's slots are filled per run. */
    for (int i = 0; i < n_from; i++)
        p->vals[from_ids[i]].data = NULL;
    free(slots);
    free(need);
    free(run_node);
    *out = p;
    return TDM_OK;

fail_node:
    tdm_err_prefix(err, "node %d", bad_node);
    goto fail;
nomem:
    st = tdm_errf(err, TDM_ERR_NOMEM, "out of memory planning the run");
fail:
    free(slots);
    free(need);
    free(run_node);
    plan_free(p, nv);
    return st;
}

/* ---- running ------------------------------------------------------------- */

static tdm_status check_frontier(const tdm_graph *g, int32_t v, const tdm_tensor *t, tdm_err *err)
{
    const tdm_value *val = &g->values[v];
    if (t->ndim < 0 || t->ndim > TDM_MAX_DIMS)
        return tdm_errf(err, TDM_ERR_SHAPE, "input '%s': rank %d out of range", val->name, t->ndim);
    for (int d = 0; d < t->ndim; d++)
        if (t->dims[d] < 0)
            return tdm_errf(err, TDM_ERR_SHAPE, "input '%s': negative dim", val->name);
    if (t->data == NULL && tdm_tensor_numel(t) > 0)
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "input '%s' has no data", val->name);
    if (val->dtype != TDM_DTYPE_UNDEFINED && t->dtype != val->dtype)
        return tdm_errf(err, TDM_ERR_SHAPE, "input '%s': expected dtype %s, got %s", val->name,
                        tdm_dtype_name(val->dtype), tdm_dtype_name(t->dtype));
    if (val->ndim >= 0) {
        if (t->ndim != val->ndim)
            return tdm_errf(err, TDM_ERR_SHAPE, "input '%s': expected rank %d, got %d", val->name,
                            val->ndim, t->ndim);
        for (int d = 0; d < t->ndim; d++)
            if (val->dims[d] >= 0 && val->dims[d] != t->dims[d] && val->is_input)
                return tdm_errf(err, TDM_ERR_SHAPE, "input '%s': dim %d must be %lld, got %lld",
                                val->name, d, (long long)val->dims[d], (long long)t->dims[d]);
    }
    return TDM_OK;
}

static tdm_status execute(tdm_session *s, plan *p, const tdm_tensor *from, tdm_err *err)
{
    const tdm_graph *g = s->g;
    tdm_status st = TDM_OK;
    if (p->arena_bytes > s->arena_cap) {
        /* grow (plans bound to the old arena rebind when they next run) */
        tdm_aligned_free(s->arena);
        s->arena_cap = 0;
        s->arena = tdm_aligned_alloc(p->arena_bytes);
        if (s->arena == NULL)
            return tdm_errf(err, TDM_ERR_NOMEM, "out of memory for a %zu-byte arena",
                            p->arena_bytes);
        s->arena_cap = p->arena_bytes;
    }
    if (p->bound != s->arena) {
        for (int32_t i = 0; i < p->n_arena; i++)
            p->vals[p->arena_v[i]].data = (char *)s->arena + p->arena_off[i];
        p->bound = s->arena;
    }
    for (int i = 0; i < p->n_from; i++) {
        p->vals[p->from_ids[i]] = from[i];
        p->vals[p->from_ids[i]].flags = 0;
    }
    int32_t pos;
    for (pos = 0; pos < p->n_exec && st == TDM_OK; pos++) {
        int32_t ni = p->exec[pos];
        const tdm_node *n = &g->nodes[ni];
        const tdm_op *op = node_op(s, ni);
        node_io io;
        tdm_op_ctx ctx;
        st = node_ctx(s, ni, p->vals, &io, &ctx, err);
        if (st == TDM_OK && p->dynamic[pos]) {
            st = op->infer(&ctx);
            for (int k = 0; k < n->n_out && st == TDM_OK; k++)
                if (n->out[k] >= 0)
                    st = tdm_tensor_alloc(&p->vals[n->out[k]], err);
        }
        if (st == TDM_OK)
            st = op->run(&ctx);
        if (st != TDM_OK)
            tdm_err_prefix(err, "node %d", ni);
        /* Free heap tensors whose last reader was this node. */
        for (int k = 0; k < n->n_in; k++) {
            int32_t v = n->in[k];
            if (v >= 0 && p->kind[v] == V_DYNAMIC && p->last_use[v] == pos)
                tdm_tensor_free(&p->vals[v]);
        }
        /* Outputs nobody reads (optional outputs like MaxPool's indices). */
        for (int k = 0; k < n->n_out; k++) {
            int32_t v = n->out[k];
            if (v >= 0 && p->kind[v] == V_DYNAMIC && p->last_use[v] < 0)
                tdm_tensor_free(&p->vals[v]);
        }
    }
    if (st != TDM_OK) {
        /* Release whatever dynamic tensors are still alive. */
        for (int32_t v = 0; v < g->n_values; v++)
            if (p->kind[v] == V_DYNAMIC)
                tdm_tensor_free(&p->vals[v]);
    }
    return st;
}

tdm_status tdm_session_run_range(tdm_session *s, int n_from, const char *const *from_names,
                                 const tdm_tensor *from, int n_until,
                                 const char *const *until_names, tdm_tensor *until_out,
                                 tdm_err *err)
{
    const tdm_graph *g = s->g;
    if (n_from < 0 || n_until < 1 || (n_from > 0 && (from_names == NULL || from == NULL)) ||
        until_names == NULL || until_out == NULL)
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "run: bad arguments");
    for (int i = 0; i < n_until; i++)
        memset(&until_out[i], 0, sizeof until_out[i]);
    int32_t *ids = malloc(sizeof *ids * (size_t)(n_from + n_until + 1));
    if (ids == NULL)
        return tdm_errf(err, TDM_ERR_NOMEM, "out of memory");
    int32_t *from_ids = ids, *until_ids = ids + n_from;
    tdm_status st = TDM_OK;
    for (int i = 0; i < n_from && st == TDM_OK; i++) {
        from_ids[i] = tdm_graph_find(g, from_names[i]);
        if (from_ids[i] < 0)
            st = tdm_errf(err, TDM_ERR_NOT_FOUND, "no tensor named '%s' in the model",
                          from_names[i]);
        else if (g->values[from_ids[i]].is_const)
            st = tdm_errf(err, TDM_ERR_INVALID_ARG, "'%s' is a constant of the model, not an input",
                          from_names[i]);
        else
            st = check_frontier(g, from_ids[i], &from[i], err);
        for (int j = 0; j < i && st == TDM_OK; j++)
            if (from_ids[j] == from_ids[i])
                st = tdm_errf(err, TDM_ERR_INVALID_ARG, "tensor '%s' given twice", from_names[i]);
    }
    for (int i = 0; i < n_until && st == TDM_OK; i++) {
        until_ids[i] = tdm_graph_find(g, until_names[i]);
        if (until_ids[i] < 0)
            st = tdm_errf(err, TDM_ERR_NOT_FOUND, "no tensor named '%s' in the model",
                          until_names[i]);
    }
    if (st != TDM_OK) {
        free(ids);
        return st;
    }

    plan *p = NULL;
    int slot_i = -1;
    for (int i = 0; i < PLAN_CACHE; i++)
        if (s->plans[i] != NULL &&
            plan_matches(s->plans[i], n_from, from_ids, from, n_until, until_ids)) {
            p = s->plans[i];
            slot_i = i;
            break;
        }
    if (p == NULL) {
        st = build_plan(s, n_from, from_ids, from, n_until, until_ids, &p, err);
        if (st != TDM_OK) {
            free(ids);
            return st;
        }
        slot_i = 0;
        for (int i = 0; i < PLAN_CACHE; i++) {
            if (s->plans[i] == NULL) {
                slot_i = i;
                break;
            }
            if (s->plans[i]->stamp < s->plans[slot_i]->stamp)
                slot_i = i;
        }
        plan_free(s->plans[slot_i], g->n_values);
        s->plans[slot_i] = p;
    }
    p->stamp = ++s->clock;

    st = execute(s, p, from, err);
    for (int i = 0; i < n_until && st == TDM_OK; i++)
        st = tdm_tensor_copy(&until_out[i], &p->vals[until_ids[i]], err);
    for (int32_t v = 0; v < g->n_values; v++)
        if (p->kind[v] == V_DYNAMIC)
            tdm_tensor_free(&p->vals[v]);
    for (int i = 0; i < n_from; i++)
        p->vals[from_ids[i]].data = NULL;
    if (st != TDM_OK)
        for (int i = 0; i < n_until; i++)
            tdm_tensor_free(&until_out[i]);
    free(ids);
    return st;
}

tdm_status tdm_session_run(tdm_session *s, int n_in, const char *const *in_names,
                           const tdm_tensor *in, tdm_tensor *outputs, tdm_err *err)
{
    const tdm_graph *g = s->g;
    const char **names = malloc(sizeof *names * (size_t)(g->n_outputs + 1));
    if (names == NULL)
        return tdm_errf(err, TDM_ERR_NOMEM, "out of memory");
    for (int32_t i = 0; i < g->n_outputs; i++)
        names[i] = g->values[g->outputs[i]].name;
    /* Every declared graph input must be given for a whole-graph run. */
    tdm_status st = TDM_OK;
    for (int32_t i = 0; i < g->n_inputs && st == TDM_OK; i++) {
        const char *nm = g->values[g->inputs[i]].name;
        bool found = false;
        for (int k = 0; k < n_in && !found; k++)
            found = strcmp(in_names[k], nm) == 0;
        if (!found)
            st = tdm_errf(err, TDM_ERR_INVALID_ARG, "graph input '%s' was not given", nm);
    }
    if (st == TDM_OK)
        st = tdm_session_run_range(s, n_in, in_names, in, g->n_outputs, names, outputs, err);
    free(names);
    return st;
}

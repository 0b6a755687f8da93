/*
 * Op lookup over the per-group tables, and helpers every op uses.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "engine/op.h"

extern const tdm_op tdm_ops_quant[]; /* ops/nn_qmatmul.c: tandem.QMatMul (int8) */
static const tdm_op *const k_tables[] = {tdm_ops_math, tdm_ops_shape, tdm_ops_nn, tdm_ops_quant};

const tdm_op *tdm_op_find(const char *domain, const char *name)
{
    /* "ai.onnx" and "" name the same default domain. */
    if (domain == NULL || strcmp(domain, "ai.onnx") == 0)
        domain = "";
    for (size_t t = 0; t < sizeof k_tables / sizeof k_tables[0]; t++)
        for (const tdm_op *op = k_tables[t]; op->name != NULL; op++)
            if (strcmp(op->name, name) == 0 && strcmp(op->domain, domain) == 0)
                return op;
    return NULL;
}

tdm_status tdm_op_fail(tdm_op_ctx *ctx, tdm_status s, const char *fmt, ...)
{
    if (ctx->err != NULL) {
        char msg[TDM_ERR_MSG_MAX];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        snprintf(ctx->err->msg, sizeof ctx->err->msg, "%s '%s': %s", ctx->node->op_type,
                 ctx->node->name, msg);
    }
    return s;
}

int64_t tdm_tensor_get_i64(const tdm_tensor *t, int64_t i)
{
    switch (t->dtype) {
    case TDM_DTYPE_INT64: return ((const int64_t *)t->data)[i];
    case TDM_DTYPE_INT32: return ((const int32_t *)t->data)[i];
    case TDM_DTYPE_INT16: return ((const int16_t *)t->data)[i];
    case TDM_DTYPE_INT8: return ((const int8_t *)t->data)[i];
    case TDM_DTYPE_UINT8:
    case TDM_DTYPE_BOOL: return ((const uint8_t *)t->data)[i];
    case TDM_DTYPE_UINT16: return ((const uint16_t *)t->data)[i];
    case TDM_DTYPE_UINT32: return ((const uint32_t *)t->data)[i];
    case TDM_DTYPE_UINT64: return (int64_t)((const uint64_t *)t->data)[i];
    case TDM_DTYPE_FLOAT32: return (int64_t)((const float *)t->data)[i];
    case TDM_DTYPE_FLOAT64: return (int64_t)((const double *)t->data)[i];
    default: return 0;
    }
}

double tdm_tensor_get_f64(const tdm_tensor *t, int64_t i)
{
    switch (t->dtype) {
    case TDM_DTYPE_FLOAT32: return ((const float *)t->data)[i];
    case TDM_DTYPE_FLOAT64: return ((const double *)t->data)[i];
    case TDM_DTYPE_FLOAT16: return tdm_fp16_to_fp32(((const uint16_t *)t->data)[i]);
    default: return (double)tdm_tensor_get_i64(t, i);
    }
}

void *tdm_op_scratch(tdm_op_ctx *ctx, size_t bytes)
{
    tdm_scratch *sc = ctx->scratch;
    if (sc->n >= bytes && sc->p != NULL)
        return sc->p;
    /* Grow geometrically so a run settles after its first few nodes. */
    size_t want = sc->n * 2 > bytes ? sc->n * 2 : bytes;
    void *p = tdm_aligned_alloc(want);
    if (p == NULL)
        return NULL;
    tdm_aligned_free(sc->p);
    sc->p = p;
    sc->n = want;
    return p;
}

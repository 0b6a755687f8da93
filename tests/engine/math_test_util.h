/*
 * Small helpers shared by the math op tests (tests/engine/test_math_*.c):
 * building tensors, a deterministic random source, running a node through
 * op_harness.h and naive index arithmetic for independent references.
 */
#ifndef TDM_TESTS_MATH_TEST_UTIL_H
#define TDM_TESTS_MATH_TEST_UTIL_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/op_harness.h"
#include "tandem/tensor.h"

/* xorshift64*: reproducible across platforms, unlike rand(). */
typedef struct mt_rng {
    uint64_t s;
} mt_rng;

static inline uint64_t mt_next(mt_rng *r)
{
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 2685821657736338717ull;
}

/* Uniform in [lo, hi). */
static inline float mt_uniform(mt_rng *r, float lo, float hi)
{
    return lo + (hi - lo) * (float)((mt_next(r) >> 40) * (1.0 / 16777216.0));
}

static inline int64_t mt_int(mt_rng *r, int64_t lo, int64_t hi)
{
    return lo + (int64_t)(mt_next(r) % (uint64_t)(hi - lo + 1));
}

/* An owned tensor of the given shape; vals (may be NULL) copied in. */
static inline tdm_tensor mt_tensor(tdm_dtype dt, int nd, const int64_t *dims, const void *vals)
{
    tdm_tensor t;
    memset(&t, 0, sizeof t);
    tdm_err err;
    if (tdm_tensor_make(&t, dt, nd, dims, &err) != TDM_OK) {
        fprintf(stderr, "tensor_make: %s\n", err.msg);
        abort();
    }
    if (vals != NULL && tdm_tensor_nbytes(&t) > 0)
        memcpy(t.data, vals, tdm_tensor_nbytes(&t));
    return t;
}

static inline tdm_tensor mt_rand_f32(mt_rng *r, int nd, const int64_t *dims, float lo, float hi)
{
    tdm_tensor t = mt_tensor(TDM_DTYPE_FLOAT32, nd, dims, NULL);
    float *p = t.data;
    for (int64_t i = 0; i < tdm_tensor_numel(&t); i++)
        p[i] = mt_uniform(r, lo, hi);
    return t;
}

/* A scalar (rank 0) or 1-D int64 tensor. */
static inline tdm_tensor mt_i64s(int n, const int64_t *vals)
{
    int64_t d = n;
    return mt_tensor(TDM_DTYPE_INT64, 1, &d, vals);
}

/* Row-major multi-index of flat index i for dims. */
static inline void mt_unravel(int64_t i, int nd, const int64_t *dims, int64_t *idx)
{
    for (int d = nd - 1; d >= 0; d--) {
        idx[d] = dims[d] > 0 ? i % dims[d] : 0;
        i = dims[d] > 0 ? i / dims[d] : 0;
    }
}

/* Flat index into a tensor of (nd_t, dims_t) broadcast to an output index
 * of rank nd_out (numpy alignment: trailing dims). */
static inline int64_t mt_bcast_index(const int64_t *out_idx, int nd_out, int nd_t,
                                     const int64_t *dims_t)
{
    int64_t off = 0;
    for (int d = 0; d < nd_t; d++) {
        int64_t k = out_idx[d + nd_out - nd_t];
        off = off * dims_t[d] + (dims_t[d] == 1 ? 0 : k);
    }
    return off;
}

/* Runs a node with n_in inputs and n_out outputs; returns the status. */
static inline tdm_status mt_run(const tdm_node *n, const tdm_tensor *const *ins, int n_in,
                                tdm_tensor *outs, int n_out, tdm_pool *pool, tdm_err *err)
{
    err->msg[0] = 0;
    return op_run(n, ins, n_in, outs, n_out, pool, err);
}

static inline void mt_node_free(tdm_node *n)
{
    tdm_node_clear(n);
}

/* Relative-or-absolute closeness with NaN == NaN and exact infinities. */
static inline int mt_close(double got, double want, double rtol, double atol)
{
    if (isnan(want))
        return isnan(got);
    if (isinf(want))
        return got == want;
    return fabs(got - want) <= atol + rtol * fabs(want);
}

#endif

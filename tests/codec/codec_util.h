/*
 * Helpers shared by the codec tests: a seeded generator for activation-like
 * data (so every run sees the same values and a failure reproduces), and
 * encode/decode wrappers that also check the bound contract on every call.
 */
#ifndef TDM_TESTS_CODEC_UTIL_H
#define TDM_TESTS_CODEC_UTIL_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tandem/codec.h"

typedef struct rng {
    uint64_t s;
} rng;

static inline uint64_t rng_next(rng *r)
{
    /* splitmix64 */
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline double rng_unit(rng *r)
{
    return (double)(rng_next(r) >> 11) * 0x1p-53;
}

static inline float rng_normal(rng *r)
{
    double u = rng_unit(r), v = rng_unit(r);
    if (u < 1e-300)
        u = 1e-300;
    return (float)(sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v));
}

/* ReLU output: about half zeros, the rest half-normal with the given scale. */
static inline void fill_relu(rng *r, float *x, size_t n, float scale)
{
    for (size_t i = 0; i < n; i++) {
        float v = rng_normal(r) * scale;
        x[i] = v > 0 ? v : 0.0f;
    }
}

static inline void fill_normal(rng *r, float *x, size_t n, float scale)
{
    for (size_t i = 0; i < n; i++)
        x[i] = rng_normal(r) * scale;
}

static inline void make_tensor(tdm_tensor *t, float *data, int ndim, const int64_t *dims)
{
    memset(t, 0, sizeof *t);
    tdm_tensor_set_shape(t, TDM_DTYPE_FLOAT32, ndim, dims);
    t->data = data;
}

/* Encodes into a malloc'd buffer of tdm_codec_bound() bytes; returns it (caller frees). */
static inline uint8_t *encode_alloc(const tdm_tensor *t, const tdm_codec_params *p, size_t *len,
                                    tdm_status *st, tdm_err *err)
{
    size_t cap = tdm_codec_bound(t, p);
    uint8_t *buf = malloc(cap ? cap : 1);
    *len = 0;
    *st = tdm_codec_encode(t, p, buf, cap, len, err);
    if (*st == TDM_OK && *len > cap)
        *st = TDM_ERR_INTERNAL; /* the bound was broken */
    return buf;
}

static inline uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static inline float bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

#endif

/*
 * Aligned allocation and overflow-checked size arithmetic.
 *
 * Tensors and packed weights are 64-byte aligned so that AVX-512 loads of a
 * row start never straddle a cache line. Every size computed from untrusted
 * input goes through the checked helpers.
 */
#ifndef TANDEM_BASE_ALLOC_H
#define TANDEM_BASE_ALLOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TDM_ALIGN 64

/* 64-byte aligned; NULL on failure or bytes == 0 returns a valid minimal block. */
void *tdm_aligned_alloc(size_t bytes);
void *tdm_aligned_calloc(size_t bytes);
void tdm_aligned_free(void *p);

static inline bool tdm_mul_overflow(size_t a, size_t b, size_t *out)
{
    return __builtin_mul_overflow(a, b, out);
}

static inline bool tdm_add_overflow(size_t a, size_t b, size_t *out)
{
    return __builtin_add_overflow(a, b, out);
}

/* Duplicates a string; NULL on OOM. */
char *tdm_strdup(const char *s);
/* Duplicates n bytes and appends a NUL; NULL on OOM. */
char *tdm_strndup(const char *s, size_t n);

#endif

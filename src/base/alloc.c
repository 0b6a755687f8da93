/*
 * Aligned allocation on top of posix_memalign.
 */
#define _POSIX_C_SOURCE 200809L
#include "base/alloc.h"

#include <stdlib.h>
#include <string.h>

void *tdm_aligned_alloc(size_t bytes)
{
    void *p = NULL;
    /* Round up so vector loops may read a whole last vector of a buffer. */
    size_t n = (bytes + TDM_ALIGN - 1) & ~(size_t)(TDM_ALIGN - 1);
    if (n < bytes)
        return NULL;
    if (n == 0)
        n = TDM_ALIGN;
    if (posix_memalign(&p, TDM_ALIGN, n) != 0)
        return NULL;
    return p;
}

void *tdm_aligned_calloc(size_t bytes)
{
    void *p = tdm_aligned_alloc(bytes);
    if (p != NULL)
        memset(p, 0, bytes);
    return p;
}

void tdm_aligned_free(void *p)
{
    free(p);
}

char *tdm_strdup(const char *s)
{
    return tdm_strndup(s, strlen(s));
}

char *tdm_strndup(const char *s, size_t n)
{
    if (n == SIZE_MAX)
        return NULL;
    char *d = malloc(n + 1);
    if (d == NULL)
        return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

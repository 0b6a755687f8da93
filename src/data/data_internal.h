/*
 * What the dataset readers share: normalisation and the float output tensor.
 *
 * The normalisation is resolved once into a full per-channel table (scale,
 * mean, std) and applied as (v / scale - mean) / std in float, the same
 * operation order as the Python preprocessing that the reference accuracies
 * were measured with, so a borderline image is not flipped by a reordered
 * rounding.
 */
#ifndef TANDEM_DATA_INTERNAL_H
#define TANDEM_DATA_INTERNAL_H

#include "tandem/data.h"

/* Fills plan (all channels set) from norm (may be NULL); errors name `what`. */
tdm_status tdm_data_norm_plan(const tdm_data_norm *norm, int channels, const char *what,
                              tdm_data_norm *plan, tdm_err *err);

static inline float tdm_data_norm_apply(const tdm_data_norm *plan, int ch, float v)
{
    return (v / plan->scale - plan->mean[ch]) / plan->std[ch];
}

/* Makes out->x float32 [n, c, h, w] and out->labels[n], zeroed; frees on failure. */
tdm_status tdm_data_alloc(tdm_dataset *out, int64_t n, int c, int64_t h, int64_t w, tdm_err *err);

#endif

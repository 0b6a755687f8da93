/*
 * libFuzzer target: the safetensors header reader.
 *
 * Whatever opens must be safe to read in full: every entry the header
 * declares is fetched (borrowed, converted or refused with a message) and
 * its bytes touched, so an offset or size check that lets a tensor reach past
 * the buffer shows up as an ASan report rather than a silent misread.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tdm_safetensors *st = NULL;
    tdm_err err;
    if (tdm_safetensors_open_buffer(data, size, "fuzz", &st, &err) != TDM_OK) {
        if (st != NULL || err.msg[0] == '\0')
            abort(); /* a failure leaves no handle and always explains itself */
        return 0;
    }
    volatile uint8_t sink = 0;
    for (int i = 0; i < tdm_safetensors_count(st); i++) {
        const tdm_st_info *e = tdm_safetensors_info(st, i);
        if (e == NULL || e->end < e->begin)
            abort();
        tdm_tensor t;
        if (tdm_safetensors_get(st, e->name, &t, &err) != TDM_OK) {
            if (t.data != NULL)
                abort();
            continue;
        }
        size_t n = tdm_tensor_nbytes(&t);
        for (size_t k = 0; k < n; k++)
            sink ^= ((const uint8_t *)t.data)[k];
        tdm_tensor_free(&t);
    }
    (void)sink;
    tdm_safetensors_free(st);
    return 0;
}

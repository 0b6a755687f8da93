/*
 * libFuzzer target: the .npy parser, with a round-trip property.
 *
 * Whatever parses must serialise, and the serialised bytes must parse back
 * to the same dtype, shape and data (big-endian inputs come back
 * little-endian, already swapped, so the data still compares equal).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tandem/npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tdm_tensor t, u;
    tdm_err err;
    if (tdm_npy_parse(data, size, &t, &err) != TDM_OK)
        return 0;
    void *buf = NULL;
    size_t len = 0;
    if (tdm_npy_serialize(&t, &buf, &len, &err) != TDM_OK)
        abort(); /* every dtype the reader accepts can be written */
    if (tdm_npy_parse(buf, len, &u, &err) != TDM_OK)
        abort();
    if (!tdm_tensor_same_shape(&t, &u) || memcmp(t.data, u.data, tdm_tensor_nbytes(&t)) != 0)
        abort();
    free(buf);
    tdm_tensor_free(&t);
    tdm_tensor_free(&u);
    return 0;
}

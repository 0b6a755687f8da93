/*
 * Op table of the shape group (see op.h). Filled as ops are implemented.
 */
#include "engine/op.h"

const tdm_op tdm_ops_shape[] = {
    {.name = NULL},
};

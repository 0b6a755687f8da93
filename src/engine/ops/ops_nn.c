/*
 * Op table of the nn group (see op.h). Filled as ops are implemented.
 */
#include "engine/op.h"

const tdm_op tdm_ops_nn[] = {
    {.name = NULL},
};

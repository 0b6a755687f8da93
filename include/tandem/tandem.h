/*
 * tandem: edge-cloud collaborative inference. Umbrella header.
 */
#ifndef TANDEM_TANDEM_H
#define TANDEM_TANDEM_H

#include "tandem/graph.h"
#include "tandem/npy.h"
#include "tandem/split.h"
#include "tandem/status.h"
#include "tandem/tensor.h"

#define TANDEM_VERSION_MAJOR 0
#define TANDEM_VERSION_MINOR 1
#define TANDEM_VERSION_PATCH 0
#define TANDEM_VERSION_STRING "0.1.0"

#endif

/*
 * Engine-internal access to a session (for tools that time or inspect runs).
 */
#ifndef TANDEM_ENGINE_SESSION_INTERNAL_H
#define TANDEM_ENGINE_SESSION_INTERNAL_H

#include "base/pool.h"
#include "tandem/graph.h"

/* The session's thread pool (never NULL inside; size 1 runs inline). */
tdm_pool *tdm_session_pool(tdm_session *s);

#endif

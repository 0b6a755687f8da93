/*
 * The cloud gateway, in-process: start an HTTP server over a model registry, drain it, stop.
 *
 * `tandem serve` is a thin wrapper around this API; tests and the demo start a gateway on a
 * free loopback port (port 0) and ask tdm_gateway_port() which one it got. Options are the
 * same names as the YAML config and the serve flags (docs/gateway.md lists them).
 */
#ifndef TANDEM_GATEWAY_H
#define TANDEM_GATEWAY_H

#include "tandem/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tdm_gw_config tdm_gateway_options;
typedef struct tdm_gw tdm_gateway;

/* Options with every default (listen 127.0.0.1:8080, batching on, auth none). */
tdm_status tdm_gateway_options_create(tdm_gateway_options **out, tdm_err *err);
void tdm_gateway_options_free(tdm_gateway_options *o);
/* Reads a YAML config file on top of the current options. */
tdm_status tdm_gateway_options_load(tdm_gateway_options *o, const char *path, tdm_err *err);
/* Sets one option by its flag name ("port", "model-repo", "max-batch", ...). */
tdm_status tdm_gateway_options_set(tdm_gateway_options *o, const char *name, const char *value,
                                   tdm_err *err);

/*
 * Loads the models and starts serving on background threads. The options must stay alive
 * until tdm_gateway_free.
 */
tdm_status tdm_gateway_start(const tdm_gateway_options *o, tdm_gateway **out, tdm_err *err);
/* The port actually bound (useful with port 0). */
int tdm_gateway_port(const tdm_gateway *gw);
/*
 * Graceful drain: stop accepting connections, let every request already received finish
 * (at most timeout_s seconds), then stop the server. Returns the number of requests that
 * were still in flight at the timeout (0 when all finished).
 */
int tdm_gateway_drain(tdm_gateway *gw, double timeout_s);
/* Drains with the configured timeout if still running, and frees everything. */
void tdm_gateway_free(tdm_gateway *gw);

#ifdef __cplusplus
}
#endif
#endif

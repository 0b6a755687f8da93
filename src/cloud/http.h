/*
 * The gateway's HTTP model: a request view, a response builder and a route table.
 *
 * Handlers never see libmicrohttpd. server.c copies what a handler may need out of the
 * connection (method, path, query, headers, body, client address) into a tdm_gw_request,
 * calls the handler, and turns the tdm_gw_response it filled into an MHD response. This
 * keeps every handler testable without a socket and lets the server change its I/O model
 * without touching handlers.
 *
 * Handlers run on the connection's own thread (one thread per connection), so a handler
 * may block, e.g. on the batcher; it must not keep pointers into the request after it
 * returns.
 *
 * Adding a route (for the extras helper): one line in k_routes in src/cloud/routes.c:
 *     {"POST", "/v1/policy/decide", tdm_gw_h_policy_decide, TDM_GW_ROLE_INFER},
 * and a prototype of the handler below, in the "handlers" list. Path patterns are literal
 * segments or {name} segments ("/v1/models/{name}/versions/{v}/download"); a final {name*}
 * segment matches the rest of the path including slashes. Read captured segments with
 * tdm_gw_path_param(). A module that needs state (a cache, a policy) adds one line to
 * k_modules in routes.c with init/free functions; the handler gets its state with
 * tdm_gw_module_state(req->gw, "name").
 *
 * Authentication: the server calls the hooks returned by tdm_gw_auth_hooks_get() (in
 * routes.c; NULL until src/cloud/auth.c exists, and then only `auth: none` is accepted).
 * check() runs before every route whose role is not TDM_GW_ROLE_PUBLIC: it either fills
 * *who and returns true, or writes a 401/403 error into resp and returns false.
 */
#ifndef TANDEM_CLOUD_HTTP_H
#define TANDEM_CLOUD_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/json.h"
#include "tandem/status.h"

typedef struct tdm_gw tdm_gw; /* a running gateway (server.c) */

/* Roles, least to most privileged. A route names the least role it needs. */
typedef enum tdm_gw_role {
    TDM_GW_ROLE_PUBLIC = 0,   /* no authentication (health, metrics) */
    TDM_GW_ROLE_INFER = 1,    /* any authenticated principal */
    TDM_GW_ROLE_OBSERVER = 1, /* same level as INFER: read-only, any valid token */
    TDM_GW_ROLE_OPERATOR = 2, /* registry changes (reload) */
    TDM_GW_ROLE_ADMIN = 3,
} tdm_gw_role;

/* Who made a request; filled by the auth hook. */
typedef struct tdm_gw_principal {
    char subject[128]; /* JWT sub, API key name, or "anonymous" with auth: none */
    tdm_gw_role role;  /* the highest role granted */
    char tenant[64];   /* optional; "" when unknown */
} tdm_gw_principal;

#define TDM_GW_MAX_PARAMS 8
#define TDM_GW_MAX_HEADERS 64
#define TDM_GW_MAX_RESP_HEADERS 16

typedef struct tdm_gw_kv {
    const char *name;
    const char *value;
} tdm_gw_kv;

typedef struct tdm_gw_request {
    tdm_gw *gw;         /* the gateway (for module state, registry, metrics) */
    const char *method; /* "GET", "POST", ... */
    const char *path;   /* URL path without the query string, percent-decoded */
    const char *route;  /* the matched pattern ("/v1/models/{name}"), for metrics */
    const char *body;   /* the whole request body (not NUL-terminated); may be NULL */
    size_t body_len;
    const char *client_addr;     /* "127.0.0.1" or "::1" */
    const char *request_id;      /* X-Request-Id from the client, or generated; echoed back */
    const tdm_gw_principal *who; /* filled by the auth hook; NULL on public routes */
    uint64_t received_ns;        /* tdm_now_ns() when the headers arrived */
    int n_headers;
    tdm_gw_kv headers[TDM_GW_MAX_HEADERS]; /* names as sent; look up with tdm_gw_header */
    int n_query;
    tdm_gw_kv query[TDM_GW_MAX_PARAMS * 2]; /* decoded query arguments */
    int n_params;
    tdm_gw_kv params[TDM_GW_MAX_PARAMS]; /* {name} path captures */
    int conn_fd;        /* the client socket (to notice a disconnect); -1 in tests */
    size_t scratch_len; /* bytes used of scratch */
    char scratch[2048]; /* path captures live here */
} tdm_gw_request;

/* Copies s[0..len) NUL-terminated into the request's scratch; NULL when full. */
char *tdm_gw_req_scratch(tdm_gw_request *r, const char *s, size_t len);

/* Case-insensitive header lookup; NULL when absent. */
const char *tdm_gw_header(const tdm_gw_request *r, const char *name);
/* Query argument (?name=value); NULL when absent. */
const char *tdm_gw_query(const tdm_gw_request *r, const char *name);
/* A {name} path capture of the matched route; NULL when the route has none of that name. */
const char *tdm_gw_path_param(const tdm_gw_request *r, const char *name);
/* True when the client has closed its connection (checked without blocking). */
bool tdm_gw_client_gone(const tdm_gw_request *r);

typedef struct tdm_gw_response {
    int status;               /* HTTP status; 0 until set (the server answers 500 then) */
    const char *content_type; /* static string; "application/json" by default */
    tdm_json_buf body;        /* the body; handlers append JSON with tdm_json_buf_* */
    int n_headers;
    char *header_names[TDM_GW_MAX_RESP_HEADERS]; /* owned copies */
    char *header_values[TDM_GW_MAX_RESP_HEADERS];
    int file_fd;       /* >= 0: the body is file bytes [file_off, file_off+file_len) */
    uint64_t file_off; /* and the server closes file_fd after sending */
    uint64_t file_len;
    char error_code[48]; /* the error code when tdm_gw_error was used (for logs) */
} tdm_gw_response;

void tdm_gw_resp_init(tdm_gw_response *resp);
void tdm_gw_resp_free(tdm_gw_response *resp);
/* Adds (or replaces) a response header; the strings are copied. False when out of slots. */
bool tdm_gw_resp_header(tdm_gw_response *resp, const char *name, const char *value);
/* Sets status; the JSON in resp->body is the body (content type application/json). */
void tdm_gw_resp_json(tdm_gw_response *resp, int status);
/* Replaces the body with bytes of the given content type. */
void tdm_gw_resp_bytes(tdm_gw_response *resp, int status, const char *content_type,
                       const void *data, size_t len);
/* Serves [off, off+len) of an open file; takes ownership of fd. */
void tdm_gw_resp_file(tdm_gw_response *resp, int status, const char *content_type, int fd,
                      uint64_t off, uint64_t len);
/*
 * Replaces the body with {"error": {"code": code, "message": message}} and sets status.
 * code is a short snake_case identifier documented in docs/api.md ("bad_json",
 * "unknown_model", "payload_too_large", ...).
 */
void tdm_gw_error(tdm_gw_response *resp, int status, const char *code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/* Maps a tdm_status to an HTTP status for errors caused by request content. */
int tdm_gw_status_http(tdm_status s);

/* Parses the body as JSON (limits from the config: depth); on failure fills a 400 and
 * returns NULL. The caller frees the document. */
tdm_json_doc *tdm_gw_parse_json_body(const tdm_gw_request *r, tdm_gw_response *resp);

/* ---- routes ------------------------------------------------------------------------ */

typedef void (*tdm_gw_handler)(const tdm_gw_request *req, tdm_gw_response *resp);

typedef struct tdm_gw_route {
    const char *method;  /* "GET", "POST", ... */
    const char *pattern; /* "/v1/models/{name}/versions/{v}" */
    tdm_gw_handler fn;
    tdm_gw_role role; /* least role required; TDM_GW_ROLE_PUBLIC skips auth */
} tdm_gw_route;

/* The route table (routes.c); n_out receives its length. */
const tdm_gw_route *tdm_gw_routes(int *n_out);

/*
 * Finds the route for method and path. Fills req->params and req->route on a match. When
 * the path matches but not the method, returns NULL and sets *method_mismatch (405).
 */
const tdm_gw_route *tdm_gw_route_match(const tdm_gw_route *routes, int n, const char *method,
                                       const char *path, tdm_gw_request *req,
                                       bool *method_mismatch);

/* ---- modules with state (routes.c lists them) ---------------------------------------- */

typedef struct tdm_gw_module {
    const char *name;
    /* cfg is the whole gateway config tree (a module reads its own section); *state is what
     * tdm_gw_module_state() returns. */
    tdm_status (*init)(tdm_gw *gw, const tdm_json *cfg, void **state, tdm_err *err);
    void (*free)(void *state);
} tdm_gw_module;

const tdm_gw_module *tdm_gw_modules(int *n_out);
/* The state a module's init produced; NULL when no module of that name. */
void *tdm_gw_module_state(tdm_gw *gw, const char *name);

/* ---- authentication hook (auth.c, extras helper) ---------------------------------------- */

typedef struct tdm_gw_auth_hooks {
    /* auth_cfg is the config's "auth" section (never NULL when called; mode != "none"). */
    tdm_status (*create)(const tdm_json *auth_cfg, const char *config_dir, void **ctx,
                         tdm_err *err);
    /* True: *who is filled and the role suffices. False: resp holds a 401/403 error. */
    bool (*check)(void *ctx, const tdm_gw_request *req, tdm_gw_role required, tdm_gw_principal *who,
                  tdm_gw_response *resp);
    /* Reloads keys (JWKS, API keys) from disk; may be NULL. */
    tdm_status (*reload)(void *ctx, tdm_err *err);
    void (*free)(void *ctx);
} tdm_gw_auth_hooks;

/* NULL while no auth module is linked in (routes.c). */
const tdm_gw_auth_hooks *tdm_gw_auth_hooks_get(void);

/* ---- handlers (one prototype per route) ---------------------------------------------- */

void tdm_gw_h_healthz(const tdm_gw_request *req, tdm_gw_response *resp);
void tdm_gw_h_readyz(const tdm_gw_request *req, tdm_gw_response *resp);
void tdm_gw_h_metrics(const tdm_gw_request *req, tdm_gw_response *resp);
void tdm_gw_h_models_list(const tdm_gw_request *req, tdm_gw_response *resp);
void tdm_gw_h_models_reload(const tdm_gw_request *req, tdm_gw_response *resp);
void tdm_gw_h_infer(const tdm_gw_request *req, tdm_gw_response *resp);
void tdm_gw_h_features(const tdm_gw_request *req, tdm_gw_response *resp);

#endif

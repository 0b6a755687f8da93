/*
 * Gateway configuration: one table of options, read from YAML and from flags.
 *
 * Each option appears once, with its YAML path ("limits.max_body_bytes"), its flag
 * ("--max-body-bytes"), its type and where it lives in tdm_gw_config. The YAML reader, the
 * flag parser and --help all walk the same table, so a config file and a command line can
 * never disagree about names or types, and every option is automatically also a flag.
 * Unknown YAML keys in the gateway's own sections are errors (a typo must not silently
 * fall back to a default); sections that belong to modules (auth, cache, ...) are kept in
 * the tree for those modules.
 */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/yaml.h"
#include "cloud/gateway_internal.h"

typedef enum opt_type { OPT_STR, OPT_INT, OPT_SIZE, OPT_DOUBLE, OPT_BOOL } opt_type;

typedef struct opt {
    const char *yaml; /* "section.key" or "key" */
    const char *flag;
    opt_type type;
    size_t offset;
    size_t size; /* of a string field */
    double lo, hi;
    const char *help;
} opt;

#define F(field) offsetof(tdm_gw_config, field), sizeof(((tdm_gw_config *)0)->field)

static const opt k_opts[] = {
    {"listen", "listen", OPT_STR, F(listen), 0, 0, "address to bind (127.0.0.1)"},
    {"port", "port", OPT_INT, F(port), 0, 65535, "TCP port; 0 picks a free one (8080)"},
    {"model_repo", "model-repo", OPT_STR, F(model_repo), 0, 0,
     "model registry directory <repo>/<model>/<version>/"},
    {"engine_threads", "engine-threads", OPT_INT, F(engine_threads), 1, 256,
     "threads per engine session (1)"},
    {"workers", "workers", OPT_INT, F(workers), 1, 64,
     "batch workers (one engine session each) per model version and entry (1)"},
    {"limits.max_body_bytes", "max-body-bytes", OPT_SIZE, F(max_body_bytes), 1, 1e12,
     "largest request body (16777216)"},
    {"limits.max_json_depth", "max-json-depth", OPT_INT, F(max_json_depth), 1, 1000,
     "deepest JSON nesting (32)"},
    {"limits.max_tensor_bytes", "max-tensor-bytes", OPT_SIZE, F(max_tensor_bytes), 1, 1e12,
     "largest decoded input tensor (67108864)"},
    {"limits.max_concurrent", "max-concurrent", OPT_INT, F(max_concurrent), 1, 100000,
     "requests in flight before 429 (256)"},
    {"limits.retry_after_s", "retry-after", OPT_INT, F(retry_after_s), 0, 3600,
     "Retry-After seconds on 429 (1)"},
    {"limits.max_connections", "max-connections", OPT_INT, F(max_connections), 1, 100000,
     "open connections (1024)"},
    {"batching.enabled", "batching", OPT_BOOL, F(batching), 0, 0, "dynamic batching (true)"},
    {"batching.max_batch", "max-batch", OPT_INT, F(max_batch), 1, 1024, "largest batch (32)"},
    {"batching.max_queue_delay_ms", "max-queue-delay-ms", OPT_DOUBLE, F(max_queue_delay_ms), 0,
     10000, "longest a batch waits to fill (2)"},
    {"batching.adaptive", "adaptive", OPT_BOOL, F(adaptive), 0, 0,
     "AIMD batch size to keep p99 under the SLO (true)"},
    {"batching.slo_p99_ms", "slo-p99-ms", OPT_DOUBLE, F(slo_p99_ms), 0.01, 1e6,
     "latency SLO for the adaptive batch size (100)"},
    {"batching.default_deadline_ms", "default-deadline-ms", OPT_DOUBLE, F(default_deadline_ms), 1,
     1e7, "deadline of a request that names none (10000)"},
    {"batching.max_queue", "max-queue", OPT_INT, F(max_queue), 1, 1000000,
     "queued requests per batcher before 429 (1024)"},
    {"idempotency.capacity", "idempotency-capacity", OPT_INT, F(idempotency_capacity), 1, 10000000,
     "stored answers (10000)"},
    {"idempotency.ttl_s", "idempotency-ttl-s", OPT_DOUBLE, F(idempotency_ttl_s), 0.001, 1e7,
     "how long answers are kept (600)"},
    {"idempotency.db", "idempotency-db", OPT_STR, F(idempotency_db), 0, 0,
     "SQLite file for idempotency keys: survives restarts, shared by gateways (none)"},
    {"idempotency.lease_s", "idempotency-lease-s", OPT_DOUBLE, F(idempotency_lease_s), 0.01, 3600,
     "with a db: how long a run may hold its key before another gateway takes it over (2)"},
    {"auth.mode", "auth", OPT_STR, F(auth_mode), 0, 0, "none, or a mode of the auth module"},
    {"tls.cert", "tls-cert", OPT_STR, F(tls_cert), 0, 0, "PEM certificate (enables HTTPS)"},
    {"tls.key", "tls-key", OPT_STR, F(tls_key), 0, 0, "PEM private key"},
    {"tls.client_ca", "tls-client-ca", OPT_STR, F(tls_client_ca), 0, 0,
     "PEM CA for client certificates (mutual TLS)"},
    {"drain_timeout_s", "drain-timeout-s", OPT_DOUBLE, F(drain_timeout_s), 0, 3600,
     "longest wait for in-flight requests on SIGTERM (30)"},
    {"log_requests", "log-requests", OPT_BOOL, F(log_requests), 0, 0,
     "one JSON log line per request on stderr (true)"},
};
#define N_OPTS (sizeof k_opts / sizeof k_opts[0])

/* Sections the gateway reads itself; other top-level keys are left to modules. */
static const char *const k_sections[] = {"limits", "batching", "idempotency", "tls"};

void tdm_gw_config_defaults(tdm_gw_config *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->listen, sizeof c->listen, "127.0.0.1");
    c->port = 8080;
    c->engine_threads = 1;
    c->workers = 1;
    c->max_body_bytes = 16u << 20;
    c->max_json_depth = 32;
    c->max_tensor_bytes = 64u << 20;
    c->max_concurrent = 256;
    c->retry_after_s = 1;
    c->max_connections = 1024;
    c->batching = true;
    c->max_batch = 32;
    c->max_queue_delay_ms = 2;
    c->adaptive = true;
    c->slo_p99_ms = 100;
    c->default_deadline_ms = 10000;
    c->max_queue = 1024;
    c->idempotency_capacity = 10000;
    c->idempotency_ttl_s = 600;
    c->idempotency_lease_s = 2;
    /* Empty: start refuses until auth is configured or explicitly "none" (issue 6). */
    c->auth_mode[0] = '\0';
    c->drain_timeout_s = 30;
    c->log_requests = true;
}

static tdm_status set_value(tdm_gw_config *c, const opt *o, const char *text, const tdm_json *v,
                            tdm_err *err)
{
    char *base = (char *)c + o->offset;
    char numbuf[64];
    if (v) { /* from YAML: check the JSON type, then reuse the text path */
        if (o->type == OPT_STR) {
            if (v->type != TDM_JSON_STRING && v->type != TDM_JSON_NUMBER)
                return tdm_errf(err, TDM_ERR_INVALID_ARG, "%s: expected a string, got %s", o->yaml,
                                tdm_json_type_name(v->type));
            if (v->type == TDM_JSON_NUMBER) {
                snprintf(numbuf, sizeof numbuf, "%.17g", v->number);
                text = numbuf;
            } else {
                text = v->str;
            }
        } else if (o->type == OPT_BOOL) {
            if (v->type != TDM_JSON_BOOL)
                return tdm_errf(err, TDM_ERR_INVALID_ARG, "%s: expected true or false, got %s",
                                o->yaml, tdm_json_type_name(v->type));
            text = v->boolean ? "true" : "false";
        } else {
            if (v->type != TDM_JSON_NUMBER)
                return tdm_errf(err, TDM_ERR_INVALID_ARG, "%s: expected a number, got %s", o->yaml,
                                tdm_json_type_name(v->type));
            snprintf(numbuf, sizeof numbuf, "%.17g", v->number);
            text = numbuf;
        }
    }
    const char *name = v ? o->yaml : o->flag;
    switch (o->type) {
    case OPT_STR:
        if (strlen(text) >= o->size)
            return tdm_errf(err, TDM_ERR_INVALID_ARG, "%s: value longer than %zu bytes", name,
                            o->size - 1);
        memcpy(base, text, strlen(text) + 1);
        return TDM_OK;
    case OPT_BOOL:
        if (!strcmp(text, "true") || !strcmp(text, "on") || !strcmp(text, "1"))
            *(bool *)base = true;
        else if (!strcmp(text, "false") || !strcmp(text, "off") || !strcmp(text, "0"))
            *(bool *)base = false;
        else
            return tdm_errf(err, TDM_ERR_INVALID_ARG, "%s: expected true or false, got '%s'", name,
                            text);
        return TDM_OK;
    default: {
        char *end = NULL;
        errno = 0;
        double d = strtod(text, &end);
        if (errno || end == text || *end)
            return tdm_errf(err, TDM_ERR_INVALID_ARG, "%s: expected a number, got '%s'", name,
                            text);
        if (!(d >= o->lo && d <= o->hi))
            return tdm_errf(err, TDM_ERR_INVALID_ARG, "%s: %s is outside [%g, %g]", name, text,
                            o->lo, o->hi);
        if (o->type != OPT_DOUBLE && d != (double)(long long)d)
            return tdm_errf(err, TDM_ERR_INVALID_ARG, "%s: expected an integer, got '%s'", name,
                            text);
        if (o->type == OPT_INT)
            *(int *)base = (int)d;
        else if (o->type == OPT_SIZE)
            *(size_t *)base = (size_t)d;
        else
            *(double *)base = d;
        return TDM_OK;
    }
    }
}

tdm_status tdm_gw_config_set(tdm_gw_config *c, const char *name, const char *value, tdm_err *err)
{
    for (size_t i = 0; i < N_OPTS; i++)
        if (strcmp(k_opts[i].flag, name) == 0)
            return set_value(c, &k_opts[i], value, NULL, err);
    return tdm_errf(err, TDM_ERR_INVALID_ARG, "unknown option --%s", name);
}

static const opt *find_yaml(const char *section, const char *key)
{
    char full[128];
    if (section)
        snprintf(full, sizeof full, "%s.%s", section, key);
    else
        snprintf(full, sizeof full, "%s", key);
    for (size_t i = 0; i < N_OPTS; i++)
        if (strcmp(k_opts[i].yaml, full) == 0)
            return &k_opts[i];
    return NULL;
}

static bool own_section(const char *key)
{
    for (size_t i = 0; i < sizeof k_sections / sizeof k_sections[0]; i++)
        if (strcmp(k_sections[i], key) == 0)
            return true;
    return false;
}

tdm_status tdm_gw_config_load(tdm_gw_config *c, const char *path, tdm_err *err)
{
    tdm_json_doc *doc = NULL;
    tdm_status st = tdm_yaml_read_file(path, &doc, err);
    if (st != TDM_OK)
        return st;
    const tdm_json *root = tdm_json_root(doc);
    if (root->type != TDM_JSON_OBJECT) {
        tdm_json_free(doc);
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "%s: the top level must be a mapping", path);
    }
    for (size_t i = 0; i < root->len && st == TDM_OK; i++) {
        const tdm_json *m = &root->items[i];
        const opt *o = find_yaml(NULL, m->key);
        if (o) {
            st = set_value(c, o, NULL, m, err);
        } else if (strcmp(m->key, "auth") == 0 && m->type == TDM_JSON_OBJECT) {
            const tdm_json *mode = tdm_json_get(m, "mode");
            if (mode)
                st = set_value(c, find_yaml("auth", "mode"), NULL, mode, err);
            else /* an auth section turns auth on; only an explicit "none" turns it off */
                snprintf(c->auth_mode, sizeof c->auth_mode, "any");
        } else if (strcmp(m->key, "auth") == 0 && m->type == TDM_JSON_STRING) {
            st = set_value(c, find_yaml("auth", "mode"), NULL, m, err); /* "auth: none" */
        } else if (own_section(m->key)) {
            if (m->type != TDM_JSON_OBJECT) {
                st = tdm_errf(err, TDM_ERR_INVALID_ARG, "%s: expected a mapping", m->key);
                break;
            }
            for (size_t j = 0; j < m->len && st == TDM_OK; j++) {
                const tdm_json *kv = &m->items[j];
                const opt *so = find_yaml(m->key, kv->key);
                if (!so)
                    st = tdm_errf(err, TDM_ERR_INVALID_ARG, "unknown key '%s.%s'", m->key, kv->key);
                else
                    st = set_value(c, so, NULL, kv, err);
            }
        }
        /* other top-level keys belong to modules (cache, policy, ...) */
    }
    if (st != TDM_OK) {
        tdm_err_prefix(err, "%s", path);
        tdm_json_free(doc);
        return st;
    }
    tdm_json_free(c->doc);
    c->doc = doc;
    snprintf(c->config_dir, sizeof c->config_dir, "%s", path);
    char *slash = strrchr(c->config_dir, '/');
    if (slash)
        *slash = '\0';
    else
        snprintf(c->config_dir, sizeof c->config_dir, ".");
    return TDM_OK;
}

tdm_status tdm_gw_config_validate(const tdm_gw_config *c, tdm_err *err)
{
    if (!c->auth_mode[0])
        return tdm_errf(
            err, TDM_ERR_INVALID_ARG,
            "authentication is not configured: add an auth section (API keys or JWT) "
            "to the config, or run without it explicitly with auth: none / --auth none");
    if (!c->model_repo[0])
        return tdm_errf(err, TDM_ERR_INVALID_ARG,
                        "no model repository: set model_repo in the config or --model-repo");
    if ((c->tls_cert[0] != 0) != (c->tls_key[0] != 0))
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "tls.cert and tls.key must be given together");
    if (c->tls_client_ca[0] && !c->tls_cert[0])
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "tls.client_ca needs tls.cert and tls.key");
    return TDM_OK;
}

void tdm_gw_config_release(tdm_gw_config *c)
{
    tdm_json_free(c->doc);
    c->doc = NULL;
}

void tdm_gw_config_print_help(void *file)
{
    FILE *f = file;
    for (size_t i = 0; i < N_OPTS; i++)
        fprintf(f, "  --%-22s %-28s %s\n", k_opts[i].flag, k_opts[i].yaml, k_opts[i].help);
}

/*
 * The gateway's HTTP server on libmicrohttpd (see http.h for the handler model).
 *
 * MHD runs one thread per connection (MHD_USE_THREAD_PER_CONNECTION): handlers may block
 * on a batcher without stalling other connections, and a blocked handler costs one parked
 * thread, which at the connection counts a gateway sees is cheaper than the bookkeeping of
 * suspend/resume. The body is accumulated into one buffer, refused early from
 * Content-Length when it is too large and cut off when a chunked body grows past the limit.
 *
 * Admission: a request counts as in flight from its first callback to MHD's completion
 * callback. Above max_concurrent the gateway answers 429 with Retry-After before reading
 * the body. Draining (SIGTERM) quiesces the daemon (the listening socket is closed, so new
 * connections are refused), marks /readyz unready, waits for the in-flight count to reach
 * zero, then stops MHD: every request that was received is answered.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "cloud/auth.h"
#include "cloud/gateway_internal.h"
#include "cloud/http.h"
#include "cloud/idempotency.h"
#include "cloud/metrics.h"
#include "cloud/registry.h"
#include "tandem/gateway.h"

struct tdm_gw {
    const tdm_gw_config *cfg;
    struct MHD_Daemon *d;
    int port;
    tdm_gw_registry *reg;
    tdm_gw_metrics *metrics;
    tdm_gw_idem *idem;
    const tdm_gw_module *mods;
    int n_mods;
    void **mod_state;
    const tdm_gw_auth_hooks *auth;
    void *auth_ctx;
    atomic_int inflight;
    atomic_bool draining;
    atomic_bool ready;
    atomic_ullong req_counter;
    unsigned long long id_salt;
    pthread_mutex_t drain_mu;
    pthread_cond_t drain_cv;
    bool stopped;
    char *tls_cert, *tls_key, *tls_ca; /* PEM texts MHD reads from memory */
};

typedef struct conn_req {
    char *body;
    size_t len, cap;
    bool too_large;
    bool answered; /* a response was queued on the first call */
    uint64_t start_ns;
} conn_req;

/* ---- accessors used by handlers --------------------------------------------------------- */

const tdm_gw_config *tdm_gw_config_get(const tdm_gw *gw)
{
    return gw->cfg;
}
tdm_gw_registry *tdm_gw_registry_of(tdm_gw *gw)
{
    return gw->reg;
}
tdm_gw_metrics *tdm_gw_metrics_of(tdm_gw *gw)
{
    return gw->metrics;
}
tdm_gw_idem *tdm_gw_idem_of(tdm_gw *gw)
{
    return gw->idem;
}
bool tdm_gw_is_ready(tdm_gw *gw)
{
    return atomic_load(&gw->ready) && !atomic_load(&gw->draining);
}

void *tdm_gw_module_state(tdm_gw *gw, const char *name)
{
    for (int i = 0; i < gw->n_mods; i++)
        if (strcmp(gw->mods[i].name, name) == 0)
            return gw->mod_state[i];
    return NULL;
}

char *tdm_gw_req_scratch(tdm_gw_request *r, const char *s, size_t len)
{
    if (r->scratch_len + len + 1 > sizeof r->scratch)
        return NULL;
    char *p = r->scratch + r->scratch_len;
    memcpy(p, s, len);
    p[len] = '\0';
    r->scratch_len += len + 1;
    return p;
}

/* ---- building the request view ----------------------------------------------------------- */

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value)
{
    tdm_gw_request *r = cls;
    if (kind == MHD_HEADER_KIND && r->n_headers < TDM_GW_MAX_HEADERS) {
        r->headers[r->n_headers].name = key;
        r->headers[r->n_headers].value = value ? value : "";
        r->n_headers++;
    } else if (kind == MHD_GET_ARGUMENT_KIND && r->n_query < TDM_GW_MAX_PARAMS * 2) {
        r->query[r->n_query].name = key;
        r->query[r->n_query].value = value;
        r->n_query++;
    }
    return MHD_YES;
}

static bool sane_request_id(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.' || c == ':'))
            return false;
    }
    return true;
}

/* ---- dispatch ------------------------------------------------------------------------------ */

static void dispatch(tdm_gw *gw, tdm_gw_request *req, tdm_gw_response *resp, tdm_gw_principal *who)
{
    int n;
    const tdm_gw_route *routes = tdm_gw_routes(&n);
    bool mismatch = false;
    const tdm_gw_route *rt = tdm_gw_route_match(routes, n, req->method, req->path, req, &mismatch);
    if (!rt) {
        if (mismatch)
            tdm_gw_error(resp, 405, "method_not_allowed", "%s is not allowed on %s", req->method,
                         req->path);
        else
            tdm_gw_error(resp, 404, "not_found", "no endpoint %s", req->path);
        return;
    }
    if (rt->role != TDM_GW_ROLE_PUBLIC) {
        if (gw->auth) {
            if (!gw->auth->check(gw->auth_ctx, req, rt->role, who, resp)) {
                if (resp->status == 0)
                    tdm_gw_error(resp, 401, "unauthorized", "authentication failed");
                return;
            }
        } else {
            snprintf(who->subject, sizeof who->subject, "anonymous");
            who->role = TDM_GW_ROLE_ADMIN; /* auth: none */
        }
        req->who = who;
    }
    rt->fn(req, resp);
    if (resp->status == 0)
        tdm_gw_error(resp, 500, "internal", "the handler for %s produced no response", req->path);
}

static void log_line(tdm_gw *gw, const tdm_gw_request *req, const tdm_gw_response *resp, double ms)
{
    if (!gw->cfg->log_requests)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    tdm_json_buf b = {0};
    char num[64];
    snprintf(num, sizeof num, "{\"ts\":%lld.%03ld,\"request_id\":", (long long)ts.tv_sec,
             ts.tv_nsec / 1000000);
    tdm_json_buf_raw(&b, num, strlen(num));
    tdm_json_buf_string(&b, req->request_id, strlen(req->request_id));
    tdm_json_buf_raw(&b, ",\"method\":", 10);
    tdm_json_buf_string(&b, req->method, strlen(req->method));
    tdm_json_buf_raw(&b, ",\"path\":", 8);
    tdm_json_buf_string(&b, req->path, strlen(req->path));
    snprintf(num, sizeof num,
             ",\"status\":%d,\"ms\":%.3f,\"bytes_in\":%zu,\"client\":", resp->status, ms,
             req->body_len);
    tdm_json_buf_raw(&b, num, strlen(num));
    tdm_json_buf_string(&b, req->client_addr, strlen(req->client_addr));
    if (req->who) {
        tdm_json_buf_raw(&b, ",\"principal\":", 13);
        tdm_json_buf_string(&b, req->who->subject, strlen(req->who->subject));
    }
    if (resp->error_code[0]) {
        tdm_json_buf_raw(&b, ",\"error\":", 9);
        tdm_json_buf_string(&b, resp->error_code, strlen(resp->error_code));
    }
    tdm_json_buf_raw(&b, "}\n", 2);
    if (!b.failed)
        fwrite(b.data, 1, b.len, stderr);
    tdm_json_buf_free(&b);
}

static enum MHD_Result send_response(struct MHD_Connection *c, tdm_gw *gw, tdm_gw_response *resp,
                                     const char *request_id)
{
    struct MHD_Response *r;
    if (resp->file_fd >= 0) {
        r = MHD_create_response_from_fd_at_offset64(resp->file_len, resp->file_fd, resp->file_off);
        if (r)
            resp->file_fd = -1; /* MHD closes it */
    } else {
        size_t len = resp->body.failed ? 0 : resp->body.len;
        r = MHD_create_response_from_buffer(len, len ? resp->body.data : (void *)"",
                                            MHD_RESPMEM_MUST_COPY);
    }
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, resp->content_type);
    if (request_id)
        MHD_add_response_header(r, "X-Request-Id", request_id);
    for (int i = 0; i < resp->n_headers; i++)
        MHD_add_response_header(r, resp->header_names[i], resp->header_values[i]);
    if (atomic_load(&gw->draining))
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)resp->status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result quick_error(struct MHD_Connection *c, tdm_gw *gw, int status,
                                   const char *code, const char *msg, const char *request_id)
{
    tdm_gw_response resp;
    tdm_gw_resp_init(&resp);
    tdm_gw_error(&resp, status, code, "%s", msg);
    if (status == 429 || status == 503) {
        char ra[16];
        snprintf(ra, sizeof ra, "%d", gw->cfg->retry_after_s);
        tdm_gw_resp_header(&resp, "Retry-After", ra);
    }
    enum MHD_Result r = send_response(c, gw, &resp, request_id);
    tdm_gw_resp_free(&resp);
    return r;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    tdm_gw *gw = cls;
    conn_req *cr = *con_cls;
    if (!cr) {
        cr = calloc(1, sizeof *cr);
        if (!cr)
            return MHD_NO;
        cr->start_ns = tdm_now_ns();
        *con_cls = cr;
        int now_in = atomic_fetch_add(&gw->inflight, 1) + 1;
        tdm_gw_metrics_inflight(gw->metrics, 1);
        if (now_in > gw->cfg->max_concurrent) {
            cr->answered = true;
            tdm_gw_metrics_event(gw->metrics, "rejected_overload");
            tdm_gw_metrics_request(gw->metrics, NULL, method, 429, 0);
            return quick_error(c, gw, 429, "too_many_requests",
                               "the gateway is at its concurrent request limit", NULL);
        }
        const char *cl =
            MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl) {
            char *end;
            errno = 0;
            unsigned long long n = strtoull(cl, &end, 10);
            if (errno || *end || n > gw->cfg->max_body_bytes) {
                cr->answered = true;
                char msg[160];
                snprintf(msg, sizeof msg, "the request body (%s bytes) exceeds the limit of %zu",
                         cl, gw->cfg->max_body_bytes);
                tdm_gw_metrics_request(gw->metrics, NULL, method, 413, 0);
                return quick_error(c, gw, 413, "payload_too_large", msg, NULL);
            }
        }
        return MHD_YES;
    }
    if (cr->answered)
        return MHD_YES; /* discard the rest of a refused upload */
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (cr->too_large || cr->len + n > gw->cfg->max_body_bytes) {
            cr->too_large = true;
            return MHD_YES;
        }
        if (cr->len + n > cr->cap) {
            size_t cap = cr->cap ? cr->cap : 4096;
            while (cap < cr->len + n)
                cap *= 2;
            if (cap > gw->cfg->max_body_bytes)
                cap = gw->cfg->max_body_bytes;
            char *nb = realloc(cr->body, cap);
            if (!nb) {
                cr->too_large = true;
                return MHD_YES;
            }
            cr->body = nb;
            cr->cap = cap;
        }
        memcpy(cr->body + cr->len, upload_data, n);
        cr->len += n;
        return MHD_YES;
    }
    /* the whole request is here */
    tdm_gw_request *req = calloc(1, sizeof *req);
    if (!req)
        return MHD_NO;
    req->gw = gw;
    req->method = method;
    req->path = url;
    req->body = cr->body;
    req->body_len = cr->len;
    req->received_ns = cr->start_ns;
    req->conn_fd = -1;
    MHD_get_connection_values(c, MHD_HEADER_KIND | MHD_GET_ARGUMENT_KIND, collect_header, req);
    char addr[INET6_ADDRSTRLEN] = "?";
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci && ci->client_addr) {
        const struct sockaddr *sa = ci->client_addr;
        if (sa->sa_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, addr, sizeof addr);
        else if (sa->sa_family == AF_INET6)
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, addr, sizeof addr);
    }
    req->client_addr = addr;
    const union MHD_ConnectionInfo *fi =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (fi)
        req->conn_fd = fi->connect_fd;
    char rid[80];
    const char *given = tdm_gw_header(req, "X-Request-Id");
    if (given && sane_request_id(given))
        snprintf(rid, sizeof rid, "%s", given);
    else
        snprintf(rid, sizeof rid, "%016llx",
                 gw->id_salt ^ (atomic_fetch_add(&gw->req_counter, 1) * 0x9E3779B97F4A7C15ull));
    req->request_id = rid;

    tdm_gw_response resp;
    tdm_gw_resp_init(&resp);
    tdm_gw_principal who;
    memset(&who, 0, sizeof who);
    if (cr->too_large)
        tdm_gw_error(&resp, 413, "payload_too_large", "the request body exceeds the limit of %zu",
                     gw->cfg->max_body_bytes);
    else if (gw->tls_ca && !tdm_gw_tls_client_check(c, &resp))
        ; /* mutual TLS: no verified client certificate; auth.c wrote the 401 */
    else
        dispatch(gw, req, &resp, &who);
    double ms = (double)(tdm_now_ns() - cr->start_ns) * 1e-6;
    tdm_gw_metrics_request(gw->metrics, req->route, method, resp.status, ms * 1e-3);
    log_line(gw, req, &resp, ms);
    enum MHD_Result ret = send_response(c, gw, &resp, rid);
    tdm_gw_resp_free(&resp);
    free(req);
    (void)version;
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    tdm_gw *gw = cls;
    conn_req *cr = *con_cls;
    if (!cr)
        return;
    free(cr->body);
    free(cr);
    *con_cls = NULL;
    tdm_gw_metrics_inflight(gw->metrics, -1);
    pthread_mutex_lock(&gw->drain_mu);
    atomic_fetch_sub(&gw->inflight, 1);
    pthread_cond_broadcast(&gw->drain_cv);
    pthread_mutex_unlock(&gw->drain_mu);
    (void)c;
    (void)toe;
}

/* ---- options -------------------------------------------------------------------------- */

tdm_status tdm_gateway_options_create(tdm_gateway_options **out, tdm_err *err)
{
    *out = calloc(1, sizeof **out);
    if (!*out)
        return tdm_errf(err, TDM_ERR_NOMEM, "out of memory");
    tdm_gw_config_defaults(*out);
    return TDM_OK;
}

void tdm_gateway_options_free(tdm_gateway_options *o)
{
    if (!o)
        return;
    tdm_gw_config_release(o);
    free(o);
}

tdm_status tdm_gateway_options_load(tdm_gateway_options *o, const char *path, tdm_err *err)
{
    return tdm_gw_config_load(o, path, err);
}

tdm_status tdm_gateway_options_set(tdm_gateway_options *o, const char *name, const char *value,
                                   tdm_err *err)
{
    return tdm_gw_config_set(o, name, value, err);
}

/* ---- start / drain / free --------------------------------------------------------------- */

static char *read_text(const char *dir, const char *path, tdm_err *err)
{
    char full[2200];
    if (path[0] == '/' || !dir[0])
        snprintf(full, sizeof full, "%s", path);
    else
        snprintf(full, sizeof full, "%s/%s", dir, path);
    FILE *f = fopen(full, "rb");
    if (!f) {
        tdm_errf(err, TDM_ERR_IO, "%s: cannot open: %s", full, strerror(errno));
        return NULL;
    }
    char *buf = malloc(1 << 20);
    size_t n = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
    fclose(f);
    if (!buf) {
        tdm_errf(err, TDM_ERR_NOMEM, "out of memory");
        return NULL;
    }
    buf[n] = '\0';
    return buf;
}

static void gw_release(tdm_gw *gw)
{
    if (gw->d)
        MHD_stop_daemon(gw->d);
    gw->d = NULL;
    for (int i = gw->n_mods - 1; i >= 0; i--)
        if (gw->mod_state && gw->mod_state[i] && gw->mods[i].free)
            gw->mods[i].free(gw->mod_state[i]);
    free(gw->mod_state);
    if (gw->auth && gw->auth_ctx)
        gw->auth->free(gw->auth_ctx);
    tdm_gw_registry_free(gw->reg);
    tdm_gw_idem_free(gw->idem);
    tdm_gw_metrics_free(gw->metrics);
    free(gw->tls_cert);
    free(gw->tls_key);
    free(gw->tls_ca);
    pthread_mutex_destroy(&gw->drain_mu);
    pthread_cond_destroy(&gw->drain_cv);
    free(gw);
}

tdm_status tdm_gateway_start(const tdm_gateway_options *o, tdm_gateway **out, tdm_err *err)
{
    *out = NULL;
    tdm_status st = tdm_gw_config_validate(o, err);
    if (st != TDM_OK)
        return st;
    tdm_gw *gw = calloc(1, sizeof *gw);
    if (!gw)
        return tdm_errf(err, TDM_ERR_NOMEM, "out of memory");
    gw->cfg = o;
    pthread_mutex_init(&gw->drain_mu, NULL);
    pthread_cond_init(&gw->drain_cv, NULL);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    gw->id_salt = ((unsigned long long)ts.tv_nsec << 20) ^ (unsigned long long)getpid() ^
                  ((unsigned long long)ts.tv_sec << 40);
    st = tdm_gw_metrics_create(&gw->metrics, err);
    if (st == TDM_OK)
        st = tdm_gw_idem_create(o->idempotency_capacity, o->idempotency_ttl_s, &gw->idem, err);
    if (st == TDM_OK && o->idempotency_db[0])
        st = tdm_gw_idem_attach_db(gw->idem, o->idempotency_db, o->idempotency_lease_s, err);
    /* authentication */
    if (st == TDM_OK && strcmp(o->auth_mode, "none") != 0) {
        gw->auth = tdm_gw_auth_hooks_get();
        const tdm_json *sect = o->doc ? tdm_json_get(tdm_json_root(o->doc), "auth") : NULL;
        if (!gw->auth)
            st = tdm_errf(err, TDM_ERR_UNSUPPORTED,
                          "auth mode '%s': this build has no auth module (use auth: none)",
                          o->auth_mode);
        else if (!sect || sect->type != TDM_JSON_OBJECT)
            st = tdm_errf(err, TDM_ERR_INVALID_ARG,
                          "auth mode '%s' needs an auth section in the config file", o->auth_mode);
        else
            st = gw->auth->create(sect, o->config_dir, &gw->auth_ctx, err);
        if (st != TDM_OK)
            gw->auth = NULL;
    }
    /* modules */
    if (st == TDM_OK) {
        gw->mods = tdm_gw_modules(&gw->n_mods);
        gw->mod_state = calloc((size_t)gw->n_mods + 1, sizeof *gw->mod_state);
        if (!gw->mod_state)
            st = tdm_errf(err, TDM_ERR_NOMEM, "out of memory");
        const tdm_json *root = o->doc ? tdm_json_root(o->doc) : NULL;
        for (int i = 0; i < gw->n_mods && st == TDM_OK; i++) {
            st = gw->mods[i].init(gw, root, &gw->mod_state[i], err);
            if (st != TDM_OK)
                tdm_err_prefix(err, "module %s", gw->mods[i].name);
        }
    }
    if (st == TDM_OK)
        st = tdm_gw_registry_create(o, gw->metrics, &gw->reg, err);
    if (st != TDM_OK) {
        gw_release(gw);
        return st;
    }
    /* the listening socket */
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                         MHD_USE_ITC | MHD_USE_ERROR_LOG;
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, o->listen, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)o->port);
    } else if (inet_pton(AF_INET6, o->listen, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)o->port);
        flags |= MHD_USE_IPv6;
    } else {
        gw_release(gw);
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "listen: '%s' is not an IPv4 or IPv6 address",
                        o->listen);
    }
    struct MHD_OptionItem opts[16];
    int no = 0;
    opts[no++] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, &ss};
    opts[no++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, gw};
    opts[no++] =
        (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT, (intptr_t)o->max_connections, NULL};
    opts[no++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT, 120, NULL};
    opts[no++] = (struct MHD_OptionItem){MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024, NULL};
    if (o->tls_cert[0]) {
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
            gw_release(gw);
            return tdm_errf(err, TDM_ERR_UNSUPPORTED, "tls: libmicrohttpd was built without TLS");
        }
        gw->tls_cert = read_text(o->config_dir, o->tls_cert, err);
        gw->tls_key = gw->tls_cert ? read_text(o->config_dir, o->tls_key, err) : NULL;
        if (gw->tls_key && o->tls_client_ca[0])
            gw->tls_ca = read_text(o->config_dir, o->tls_client_ca, err);
        if (!gw->tls_cert || !gw->tls_key || (o->tls_client_ca[0] && !gw->tls_ca)) {
            gw_release(gw);
            return TDM_ERR_IO;
        }
        flags |= MHD_USE_TLS;
        opts[no++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, gw->tls_cert};
        opts[no++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, gw->tls_key};
        opts[no++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0,
                                             (void *)"NORMAL:-VERS-ALL:+VERS-TLS1.3"};
        if (gw->tls_ca)
            opts[no++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_TRUST, 0, gw->tls_ca};
    }
    opts[no++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    gw->d = MHD_start_daemon(flags, (uint16_t)o->port, NULL, NULL, on_request, gw, MHD_OPTION_ARRAY,
                             opts, MHD_OPTION_END);
    if (!gw->d) {
        int e = errno;
        gw_release(gw);
        return tdm_errf(err, TDM_ERR_IO, "cannot listen on %s:%d: %s", o->listen, o->port,
                        strerror(e));
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(gw->d, MHD_DAEMON_INFO_BIND_PORT);
    gw->port = di ? di->port : o->port;
    atomic_store(&gw->ready, true);
    *out = gw;
    return TDM_OK;
}

int tdm_gateway_port(const tdm_gateway *gw)
{
    return gw->port;
}

int tdm_gateway_drain(tdm_gateway *gw, double timeout_s)
{
    if (gw->stopped)
        return 0;
    atomic_store(&gw->draining, true);
    MHD_socket fd = MHD_quiesce_daemon(gw->d);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    double t = (double)until.tv_sec + until.tv_nsec * 1e-9 + timeout_s;
    until.tv_sec = (time_t)t;
    until.tv_nsec = (long)((t - (double)until.tv_sec) * 1e9);
    pthread_mutex_lock(&gw->drain_mu);
    while (atomic_load(&gw->inflight) > 0)
        if (pthread_cond_timedwait(&gw->drain_cv, &gw->drain_mu, &until) == ETIMEDOUT)
            break;
    int left = atomic_load(&gw->inflight);
    pthread_mutex_unlock(&gw->drain_mu);
    MHD_stop_daemon(gw->d);
    gw->d = NULL;
    gw->stopped = true;
    return left;
}

void tdm_gateway_free(tdm_gateway *gw)
{
    if (!gw)
        return;
    if (!gw->stopped)
        tdm_gateway_drain(gw, gw->cfg->drain_timeout_s);
    gw_release(gw);
}

/*
 * tandem edge: the edge agent as a daemon, for apps written in other
 * languages. It serves the agent's API on a local HTTP port (loopback by
 * default: the agent trusts whoever can reach it, like a local socket):
 *
 *   POST /v1/infer?model=M&deadline_ms=D&deferrable=1&mode=edge|cloud|collaborative&request_id=R
 *        body: one input as a .npy file (float32)  ->  the result as JSON
 *   GET  /v1/requests/{id}   the state of a deferred request (poll)
 *   GET  /metrics            Prometheus text
 *   GET  /healthz            "ok"
 *
 * Every error is {"error": {"code", "message"}} with a 4xx/5xx status, and
 * the daemon keeps serving: a bad request never reaches the agent's state.
 * SIGTERM/SIGINT stop it after in-flight requests finish (libmicrohttpd's
 * stop waits for its connection threads).
 */
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/json.h"
#include "cli.h"
#include "cli_util.h"
#include "tandem/edge.h"
#include "tandem/npy.h"

#define MAX_BODY ((size_t)16 << 20)

typedef struct daemon_ctx {
    tdm_edge *agent;
} daemon_ctx;

typedef struct conn_buf {
    char *p;
    size_t len, cap;
    bool too_big;
} conn_buf;

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static enum MHD_Result send_text(struct MHD_Connection *c, unsigned status, const char *type,
                                 const char *body, size_t len)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result send_error(struct MHD_Connection *c, unsigned status, const char *code,
                                  const char *msg)
{
    tdm_json_buf b = {0};
    tdm_json_buf_raw(&b, "{\"error\":{\"code\":", 17);
    tdm_json_buf_string(&b, code, strlen(code));
    tdm_json_buf_raw(&b, ",\"message\":", 11);
    tdm_json_buf_string(&b, msg, strlen(msg));
    tdm_json_buf_raw(&b, "}}\n", 3);
    enum MHD_Result r = b.failed ? MHD_NO : send_text(c, status, "application/json", b.data, b.len);
    tdm_json_buf_free(&b);
    return r;
}

static enum MHD_Result send_result(struct MHD_Connection *c, const tdm_edge_result *res)
{
    tdm_json_buf b = {0};
    char num[512];
    tdm_json_buf_raw(&b, "{\"request_id\":", 14);
    tdm_json_buf_string(&b, res->request_id, strlen(res->request_id));
    int n = snprintf(
        num, sizeof num,
        ",\"route\":\"%s\",\"label\":%d,\"confidence\":%.6f,\"exit\":%d,\"endpoint\":%d,"
        "\"cache_similar\":%s,\"bytes_sent\":%llu,\"cost\":%.9f,\"timings\":{"
        "\"total_ms\":%.3f,\"local_ms\":%.3f,\"encode_ms\":%.3f,\"network_ms\":%.3f,"
        "\"cloud_ms\":%.3f}",
        tdm_edge_route_name(res->route), res->label, (double)res->confidence, res->exit_index,
        res->endpoint, res->cache_similar ? "true" : "false", (unsigned long long)res->bytes_sent,
        res->cost, res->total_ms, res->local_ms, res->encode_ms, res->network_ms, res->cloud_ms);
    tdm_json_buf_raw(&b, num, (size_t)n);
    if (res->error[0]) {
        tdm_json_buf_raw(&b, ",\"error\":", 9);
        tdm_json_buf_string(&b, res->error, strlen(res->error));
    }
    tdm_json_buf_raw(&b, "}\n", 2);
    enum MHD_Result r = b.failed ? MHD_NO : send_text(c, 200, "application/json", b.data, b.len);
    tdm_json_buf_free(&b);
    return r;
}

static bool parse_num(const char *s, double lo, double hi, double *out)
{
    if (s == NULL)
        return true;
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || !(v >= lo && v <= hi))
        return false;
    *out = v;
    return true;
}

static enum MHD_Result handle_infer(daemon_ctx *d, struct MHD_Connection *c, const conn_buf *b)
{
    const char *model = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "model");
    const char *dl = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "deadline_ms");
    const char *df = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "deferrable");
    const char *mode = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "mode");
    const char *rid = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "request_id");
    tdm_edge_request req = {.model = model, .request_id = rid, .mode = -1};
    if (!parse_num(dl, 0, 3.6e6, &req.deadline_ms))
        return send_error(c, 400, "bad_request", "deadline_ms: want a number of ms, 0..3600000");
    if (df)
        req.deferrable = strcmp(df, "1") == 0 || strcmp(df, "true") == 0;
    if (mode) {
        if (strcmp(mode, "collaborative") == 0)
            req.mode = TDM_EDGE_MODE_COLLABORATIVE;
        else if (strcmp(mode, "edge") == 0)
            req.mode = TDM_EDGE_MODE_EDGE_ONLY;
        else if (strcmp(mode, "cloud") == 0)
            req.mode = TDM_EDGE_MODE_CLOUD_ONLY;
        else
            return send_error(c, 400, "bad_request", "mode: want collaborative, edge or cloud");
    }
    if (b->len == 0)
        return send_error(c, 400, "bad_request", "the body must be one input as a .npy file");
    tdm_tensor x = {0};
    tdm_err err = {{0}};
    if (tdm_npy_parse(b->p, b->len, &x, &err) != TDM_OK)
        return send_error(c, 400, "bad_npy", err.msg);
    tdm_edge_result res;
    req.input = &x;
    tdm_status st = tdm_edge_submit(d->agent, &req, &res, &err);
    tdm_tensor_free(&x);
    if (st == TDM_ERR_NOT_FOUND)
        return send_error(c, 404, "unknown_model", err.msg);
    if (st == TDM_ERR_SHAPE || st == TDM_ERR_INVALID_ARG)
        return send_error(c, 400, "bad_input", err.msg);
    if (st != TDM_OK)
        return send_error(c, 500, "internal", err.msg);
    return send_result(c, &res);
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version, const char *data,
                               size_t *data_size, void **ctx)
{
    daemon_ctx *d = cls;
    (void)version;
    if (*ctx == NULL) {
        conn_buf *b = calloc(1, sizeof *b);
        if (b == NULL)
            return MHD_NO;
        *ctx = b;
        return MHD_YES;
    }
    conn_buf *b = *ctx;
    if (*data_size > 0) {
        size_t n = *data_size;
        *data_size = 0;
        if (b->too_big || b->len + n > MAX_BODY) {
            b->too_big = true;
            return MHD_YES;
        }
        if (b->len + n > b->cap) {
            size_t cap = b->cap ? b->cap : 65536;
            while (cap < b->len + n)
                cap *= 2;
            char *p = realloc(b->p, cap);
            if (p == NULL) {
                b->too_big = true;
                return MHD_YES;
            }
            b->p = p;
            b->cap = cap;
        }
        memcpy(b->p + b->len, data, n);
        b->len += n;
        return MHD_YES;
    }
    if (b->too_big)
        return send_error(c, 413, "body_too_large", "the body is larger than 16 MiB");
    if (strcmp(url, "/healthz") == 0)
        return send_text(c, 200, "text/plain", "ok\n", 3);
    if (strcmp(url, "/metrics") == 0 && strcmp(method, "GET") == 0) {
        char *text = tdm_edge_metrics_text(d->agent);
        if (text == NULL)
            return send_error(c, 500, "internal", "out of memory");
        enum MHD_Result r = send_text(c, 200, "text/plain; version=0.0.4", text, strlen(text));
        free(text);
        return r;
    }
    if (strcmp(url, "/v1/infer") == 0) {
        if (strcmp(method, "POST") != 0)
            return send_error(c, 405, "method_not_allowed", "use POST");
        return handle_infer(d, c, b);
    }
    if (strncmp(url, "/v1/requests/", 13) == 0 && strcmp(method, "GET") == 0) {
        tdm_edge_result res;
        tdm_err err = {{0}};
        tdm_status st = tdm_edge_poll(d->agent, url + 13, &res, &err);
        if (st == TDM_ERR_NOT_FOUND)
            return send_error(c, 404, "unknown_request", err.msg);
        if (st != TDM_OK)
            return send_error(c, 400, "bad_request", err.msg);
        return send_result(c, &res);
    }
    return send_error(c, 404, "not_found", "no such endpoint");
}

static void completed(void *cls, struct MHD_Connection *c, void **ctx,
                      enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    conn_buf *b = *ctx;
    if (b) {
        free(b->p);
        free(b);
    }
    *ctx = NULL;
}

static void edge_usage(FILE *f)
{
    fprintf(f, "usage: tandem edge --config edge.yaml [--port P]\n"
               "\n"
               "Runs the edge agent with a local HTTP API on 127.0.0.1:P (default 8700):\n"
               "  POST /v1/infer?model=M[&deadline_ms=D][&deferrable=1][&mode=edge|cloud|\n"
               "       collaborative][&request_id=R]   body: one input as .npy\n"
               "  GET  /v1/requests/ID   state of a deferred request\n"
               "  GET  /metrics, GET /healthz\n"
               "It prints \"edge listening on PORT\" when ready (port 0 picks one).\n");
}

int tdm_cmd_edge(int argc, char **argv)
{
    const char *config = NULL;
    int64_t port = 8700;
    for (int i = 1; i < argc; i++) {
        if (tdm_cli_is_help(argv[i])) {
            edge_usage(stdout);
            return TDM_EXIT_OK;
        }
        if (i + 1 >= argc)
            return tdm_cli_fail("edge", TDM_EXIT_USAGE, "%s needs a value (see --help)", argv[i]);
        if (strcmp(argv[i], "--config") == 0)
            config = argv[++i];
        else if (strcmp(argv[i], "--port") == 0) {
            if (!tdm_cli_parse_int(argv[++i], 0, 65535, &port))
                return tdm_cli_fail("edge", TDM_EXIT_USAGE, "--port: '%s' is not 0..65535",
                                    argv[i]);
        } else
            return tdm_cli_fail("edge", TDM_EXIT_USAGE, "unknown option '%s'", argv[i]);
    }
    if (config == NULL) {
        edge_usage(stderr);
        return TDM_EXIT_USAGE;
    }
    daemon_ctx d = {0};
    tdm_err err = {{0}};
    if (tdm_edge_create(config, &d.agent, &err) != TDM_OK)
        return tdm_cli_fail("edge", TDM_EXIT_FAIL, "%s", err.msg);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct MHD_Daemon *mhd = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG,
        (uint16_t)port, NULL, NULL, handler, &d, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_NOTIFY_COMPLETED, completed, NULL, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
        MHD_OPTION_END);
    if (mhd == NULL) {
        tdm_edge_free(d.agent);
        return tdm_cli_fail("edge", TDM_EXIT_FAIL, "cannot listen on 127.0.0.1:%lld",
                            (long long)port);
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(mhd, MHD_DAEMON_INFO_BIND_PORT);
    printf("edge listening on %u\n", di ? di->port : (unsigned)port);
    fflush(stdout);
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    while (!g_stop)
        pause();
    MHD_stop_daemon(mhd);
    tdm_edge_free(d.agent);
    return TDM_EXIT_OK;
}

/*
 * Request lookups, the response builder and path-pattern matching (see http.h).
 *
 * Route matching walks the table in order and compares segment by segment, without
 * allocating: captures point into a per-request copy of the path that is split in place.
 * Tables are a few dozen lines, so a linear scan costs less than building a trie.
 */
#include "cloud/http.h"

#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cloud/gateway_internal.h"

const char *tdm_gw_header(const tdm_gw_request *r, const char *name)
{
    for (int i = 0; i < r->n_headers; i++)
        if (strcasecmp(r->headers[i].name, name) == 0)
            return r->headers[i].value;
    return NULL;
}

const char *tdm_gw_query(const tdm_gw_request *r, const char *name)
{
    for (int i = 0; i < r->n_query; i++)
        if (strcmp(r->query[i].name, name) == 0)
            return r->query[i].value ? r->query[i].value : "";
    return NULL;
}

const char *tdm_gw_path_param(const tdm_gw_request *r, const char *name)
{
    for (int i = 0; i < r->n_params; i++)
        if (strcmp(r->params[i].name, name) == 0)
            return r->params[i].value;
    return NULL;
}

bool tdm_gw_client_gone(const tdm_gw_request *r)
{
    if (r->conn_fd < 0)
        return false;
    struct pollfd p = {.fd = r->conn_fd, .events = POLLRDHUP};
    if (poll(&p, 1, 0) <= 0)
        return false;
    return (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

void tdm_gw_resp_init(tdm_gw_response *resp)
{
    memset(resp, 0, sizeof *resp);
    resp->content_type = "application/json";
    resp->file_fd = -1;
}

void tdm_gw_resp_free(tdm_gw_response *resp)
{
    tdm_json_buf_free(&resp->body);
    for (int i = 0; i < resp->n_headers; i++) {
        free(resp->header_names[i]);
        free(resp->header_values[i]);
    }
    if (resp->file_fd >= 0)
        close(resp->file_fd);
    resp->n_headers = 0;
    resp->file_fd = -1;
}

bool tdm_gw_resp_header(tdm_gw_response *resp, const char *name, const char *value)
{
    char *v = strdup(value);
    if (!v)
        return false;
    for (int i = 0; i < resp->n_headers; i++)
        if (strcasecmp(resp->header_names[i], name) == 0) {
            free(resp->header_values[i]);
            resp->header_values[i] = v;
            return true;
        }
    char *n = strdup(name);
    if (!n || resp->n_headers == TDM_GW_MAX_RESP_HEADERS) {
        free(n);
        free(v);
        return false;
    }
    resp->header_names[resp->n_headers] = n;
    resp->header_values[resp->n_headers] = v;
    resp->n_headers++;
    return true;
}

void tdm_gw_resp_json(tdm_gw_response *resp, int status)
{
    resp->status = status;
    resp->content_type = "application/json";
}

void tdm_gw_resp_bytes(tdm_gw_response *resp, int status, const char *content_type,
                       const void *data, size_t len)
{
    tdm_json_buf_reset(&resp->body);
    tdm_json_buf_raw(&resp->body, data, len);
    resp->status = status;
    resp->content_type = content_type;
}

void tdm_gw_resp_file(tdm_gw_response *resp, int status, const char *content_type, int fd,
                      uint64_t off, uint64_t len)
{
    if (resp->file_fd >= 0)
        close(resp->file_fd);
    tdm_json_buf_reset(&resp->body);
    resp->status = status;
    resp->content_type = content_type;
    resp->file_fd = fd;
    resp->file_off = off;
    resp->file_len = len;
}

void tdm_gw_error(tdm_gw_response *resp, int status, const char *code, const char *fmt, ...)
{
    char msg[TDM_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (resp->file_fd >= 0) {
        close(resp->file_fd);
        resp->file_fd = -1;
    }
    tdm_json_buf_reset(&resp->body);
    tdm_json_buf *b = &resp->body;
    tdm_json_buf_raw(b, "{\"error\":{\"code\":", 17);
    tdm_json_buf_string(b, code, strlen(code));
    tdm_json_buf_raw(b, ",\"message\":", 11);
    tdm_json_buf_string(b, msg, strlen(msg));
    tdm_json_buf_raw(b, "}}\n", 3);
    resp->status = status;
    resp->content_type = "application/json";
    snprintf(resp->error_code, sizeof resp->error_code, "%s", code);
}

int tdm_gw_status_http(tdm_status s)
{
    switch (s) {
    case TDM_OK: return 200;
    case TDM_ERR_INVALID_ARG:
    case TDM_ERR_PARSE:
    case TDM_ERR_SHAPE: return 400;
    case TDM_ERR_NOT_FOUND: return 404;
    case TDM_ERR_NOMEM: return 413;
    case TDM_ERR_UNSUPPORTED: return 422;
    default: return 500;
    }
}

tdm_json_doc *tdm_gw_parse_json_body(const tdm_gw_request *r, tdm_gw_response *resp)
{
    if (!r->body || r->body_len == 0) {
        tdm_gw_error(resp, 400, "bad_json", "the request body is empty; a JSON object is expected");
        return NULL;
    }
    int depth = r->gw ? tdm_gw_config_get(r->gw)->max_json_depth : 0;
    tdm_json_doc *doc = NULL;
    tdm_err err = {{0}};
    tdm_status st = tdm_json_parse(r->body, r->body_len, depth, &doc, &err);
    if (st != TDM_OK) {
        tdm_gw_error(resp, 400, "bad_json", "request body: %s", err.msg);
        return NULL;
    }
    if (tdm_json_root(doc)->type != TDM_JSON_OBJECT) {
        tdm_gw_error(resp, 400, "bad_json", "request body: expected a JSON object, got %s",
                     tdm_json_type_name(tdm_json_root(doc)->type));
        tdm_json_free(doc);
        return NULL;
    }
    return doc;
}

/* ---- matching ---------------------------------------------------------------------- */

/* Compares one segment [s, s_end) of the path against the pattern segment [p, p_end). */
static bool match_route(const char *pattern, const char *path, tdm_gw_request *req)
{
    int n_params = 0;
    const char *p = pattern, *s = path;
    while (*p && *s) {
        if (*p != '/' || *s != '/')
            return false;
        p++;
        s++;
        const char *pe = strchr(p, '/');
        if (!pe)
            pe = p + strlen(p);
        const char *se = strchr(s, '/');
        if (!se)
            se = s + strlen(s);
        size_t pl = (size_t)(pe - p);
        if (pl >= 2 && p[0] == '{' && p[pl - 1] == '}') {
            bool rest = pl >= 3 && p[pl - 2] == '*';
            if (rest)
                se = s + strlen(s);
            if (se == s)
                return false; /* empty capture */
            if (req && n_params < TDM_GW_MAX_PARAMS) {
                /* names and values are stored in the request's scratch: see server.c; here
                 * we record pointers into pattern and path with lengths in a side buffer */
                size_t nl = pl - 2 - (rest ? 1 : 0);
                size_t vl = (size_t)(se - s);
                char *name = tdm_gw_req_scratch(req, p + 1, nl);
                char *value = tdm_gw_req_scratch(req, s, vl);
                if (!name || !value)
                    return false;
                req->params[n_params].name = name;
                req->params[n_params].value = value;
            }
            n_params++;
        } else if (pl != (size_t)(se - s) || memcmp(p, s, pl) != 0) {
            return false;
        }
        p = pe;
        s = se;
    }
    if (*p || *s)
        return false;
    if (req)
        req->n_params = n_params < TDM_GW_MAX_PARAMS ? n_params : TDM_GW_MAX_PARAMS;
    return true;
}

const tdm_gw_route *tdm_gw_route_match(const tdm_gw_route *routes, int n, const char *method,
                                       const char *path, tdm_gw_request *req, bool *method_mismatch)
{
    *method_mismatch = false;
    for (int i = 0; i < n; i++) {
        if (!match_route(routes[i].pattern, path, NULL))
            continue;
        if (strcmp(routes[i].method, method) != 0) {
            *method_mismatch = true;
            continue;
        }
        if (req) {
            match_route(routes[i].pattern, path, req);
            req->route = routes[i].pattern;
        }
        *method_mismatch = false;
        return &routes[i];
    }
    return NULL;
}

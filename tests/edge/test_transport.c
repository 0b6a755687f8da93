/*
 * The transport against real HTTP servers on loopback (libmicrohttpd, the
 * gateway's own server library): requests reach the server, a stopped
 * endpoint costs one failed attempt and the request fails over, an endpoint
 * that is down comes back through a health check, a slow endpoint is cut
 * off by the request's own deadline, 5xx fails over while 4xx is an answer,
 * and the bearer token is read from its file and re-read on 401. Hedging: a
 * slow first endpoint gets a second copy sent to the next one, whose answer
 * wins long before the first's; a fast first endpoint gets no hedge; a dead
 * first endpoint fails over as without hedging; the automatic delay follows
 * the measured RTT; freeing the transport waits for an abandoned copy.
 */
#include <microhttpd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/clock.h"
#include "edge/transport.h"

typedef struct server {
    struct MHD_Daemon *d;
    int port;
    int delay_ms;           /* sleep before answering /slow */
    int echo_delay_ms;      /* sleep before answering /echo */
    int status;             /* answer of /echo; 0 = 200 */
    char name[8];           /* returned in the body of /echo */
    const char *want_token; /* when set, /echo needs "Bearer <token>" */
    int hits;
} server;

typedef struct upload {
    char buf[4096];
    size_t len;
} upload;

static enum MHD_Result reply(struct MHD_Connection *c, int status, const char *body)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version, const char *data,
                               size_t *data_size, void **ctx)
{
    server *s = cls;
    if (*ctx == NULL) {
        upload *u = calloc(1, sizeof *u);
        if (u == NULL)
            return MHD_NO;
        *ctx = u;
        return MHD_YES;
    }
    upload *u = *ctx;
    if (*data_size > 0) {
        size_t n = *data_size < sizeof u->buf - u->len ? *data_size : sizeof u->buf - u->len;
        memcpy(u->buf + u->len, data, n);
        u->len += n;
        *data_size = 0;
        return MHD_YES;
    }
    s->hits++;
    if (strcmp(url, "/healthz") == 0)
        return reply(c, 200, "ok");
    if (strcmp(url, "/slow") == 0) {
        usleep((useconds_t)s->delay_ms * 1000);
        return reply(c, 200, "slow");
    }
    if (s->want_token) {
        const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
        char want[256];
        snprintf(want, sizeof want, "Bearer %s", s->want_token);
        if (auth == NULL || strcmp(auth, want) != 0)
            return reply(c, 401, "{\"error\":{\"code\":\"unauthorized\"}}");
    }
    if (s->echo_delay_ms)
        usleep((useconds_t)s->echo_delay_ms * 1000);
    char body[4200];
    snprintf(body, sizeof body, "%s:%.*s", s->name, (int)u->len, u->buf);
    return reply(c, s->status ? s->status : 200, body);
}

static void done_cb(void *cls, struct MHD_Connection *c, void **ctx,
                    enum MHD_RequestTerminationCode toe)
{
    free(*ctx);
    *ctx = NULL;
}

static void server_start(server *s, const char *name, int port)
{
    snprintf(s->name, sizeof s->name, "%s", name);
    s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                                MHD_USE_ERROR_LOG,
                            (uint16_t)port, NULL, NULL, handler, s, MHD_OPTION_NOTIFY_COMPLETED,
                            done_cb, NULL, MHD_OPTION_END);
    assert_non_null(s->d);
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di->port;
}

static void server_stop(server *s)
{
    MHD_stop_daemon(s->d);
    s->d = NULL;
}

static tdm_transport *make(server *a, server *b)
{
    char ua[64], ub[64];
    snprintf(ua, sizeof ua, "http://127.0.0.1:%d", a->port);
    snprintf(ub, sizeof ub, "http://127.0.0.1:%d/", b->port);
    tdm_transport_options o = {.endpoints = {ua, ub}, .n_endpoints = 2, .max_failures = 1};
    tdm_transport *t;
    tdm_err err;
    assert_int_equal(tdm_transport_create(&o, &t, &err), TDM_OK);
    return t;
}

static void test_post_and_failover(void **state)
{
    (void)state;
    server a = {0}, b = {0};
    server_start(&a, "A", 0);
    server_start(&b, "B", 0);
    tdm_transport *t = make(&a, &b);
    tdm_http_response r;
    tdm_err err;
    const char *hdr[] = {"Content-Type: application/octet-stream", NULL};
    assert_int_equal(tdm_transport_post(t, "/echo", hdr, "hello", 5, 2000, &r, &err), TDM_OK);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "A:hello");
    assert_int_equal(r.attempts, 1);
    tdm_http_response_free(&r);

    int port_a = a.port;
    server_stop(&a);
    assert_int_equal(tdm_transport_post(t, "/echo", hdr, "x", 1, 2000, &r, &err), TDM_OK);
    assert_string_equal(r.body, "B:x");
    assert_int_equal(r.endpoint, 1);
    assert_int_equal(r.attempts, 2);
    tdm_http_response_free(&r);
    tdm_endpoint_stats st;
    tdm_transport_endpoint_stats(t, 0, &st);
    assert_false(st.healthy);
    /* Now B is first: no more failed attempts on A. */
    assert_int_equal(tdm_transport_post(t, "/echo", hdr, "y", 1, 2000, &r, &err), TDM_OK);
    assert_int_equal(r.attempts, 1);
    tdm_http_response_free(&r);
    assert_int_equal(tdm_transport_check_health(t, 1000), 1);

    /* A comes back on the same port; a health check brings it back. */
    server_start(&a, "A", port_a);
    assert_int_equal(tdm_transport_check_health(t, 1000), 2);
    assert_true(tdm_transport_any_healthy(t));
    assert_true(tdm_transport_rtt_ms(t) >= 0);

    server_stop(&b);
    server_stop(&a);
    assert_int_equal(tdm_transport_post(t, "/echo", hdr, "z", 1, 1000, &r, &err), TDM_ERR_IO);
    assert_non_null(strstr(err.msg, "/echo"));
    assert_int_equal(r.status, 0);
    assert_null(r.body);
    assert_int_equal(tdm_transport_check_health(t, 500), 0);
    assert_false(tdm_transport_any_healthy(t));
    tdm_transport_free(t);
}

static void test_deadline_and_5xx(void **state)
{
    (void)state;
    server a = {0}, b = {0};
    a.delay_ms = b.delay_ms = 1500;
    server_start(&a, "A", 0);
    server_start(&b, "B", 0);
    tdm_transport *t = make(&a, &b);
    tdm_http_response r;
    tdm_err err;
    /* Both are too slow for the deadline: the request ends in time, not after 1.5 s. */
    uint64_t t0 = tdm_now_ns();
    assert_int_equal(tdm_transport_get(t, "/slow", 300, &r, &err), TDM_ERR_IO);
    assert_true(tdm_now_ns() - t0 < 1400000000ull);
    tdm_transport_free(t);

    a.delay_ms = b.delay_ms = 0;
    a.status = 503;
    b.status = 404;
    t = make(&a, &b);
    assert_int_equal(tdm_transport_post(t, "/echo", NULL, "q", 1, 2000, &r, &err), TDM_OK);
    assert_int_equal(r.status, 404); /* 503 failed over, 404 is an answer */
    assert_int_equal(r.endpoint, 1);
    tdm_http_response_free(&r);
    tdm_transport_free(t);
    server_stop(&a);
    server_stop(&b);
}

static void test_token_file(void **state)
{
    (void)state;
    char path[] = "/tmp/tdm_token_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "old\n", 4), 4);
    close(fd);
    server a = {0};
    a.want_token = "new";
    server_start(&a, "A", 0);
    char ua[64];
    snprintf(ua, sizeof ua, "http://127.0.0.1:%d", a.port);
    tdm_transport_options o = {.endpoints = {ua}, .n_endpoints = 1, .token_file = path};
    tdm_transport *t;
    tdm_err err;
    assert_int_equal(tdm_transport_create(&o, &t, &err), TDM_OK);
    tdm_http_response r;
    assert_int_equal(tdm_transport_post(t, "/echo", NULL, "1", 1, 2000, &r, &err), TDM_OK);
    assert_int_equal(r.status, 401);
    tdm_http_response_free(&r);
    FILE *f = fopen(path, "w");
    fputs("new\n", f);
    fclose(f);
    assert_int_equal(tdm_transport_post(t, "/echo", NULL, "2", 1, 2000, &r, &err), TDM_OK);
    assert_int_equal(r.status, 200); /* the 401 made it re-read the file */
    assert_string_equal(r.body, "A:2");
    tdm_http_response_free(&r);
    tdm_transport_free(t);
    server_stop(&a);
    remove(path);
}

static tdm_transport *make_hedged(server *a, server *b, double after_ms, bool autom)
{
    char ua[64], ub[64];
    snprintf(ua, sizeof ua, "http://127.0.0.1:%d", a->port);
    snprintf(ub, sizeof ub, "http://127.0.0.1:%d", b->port);
    tdm_transport_options o = {
        .endpoints = {ua, ub}, .n_endpoints = 2, .hedge_after_ms = after_ms, .hedge_auto = autom};
    tdm_transport *t;
    tdm_err err;
    assert_int_equal(tdm_transport_create(&o, &t, &err), TDM_OK);
    return t;
}

static void test_hedge(void **state)
{
    (void)state;
    server a = {0}, b = {0};
    a.delay_ms = 600;
    server_start(&a, "A", 0);
    server_start(&b, "B", 0);
    tdm_transport *t = make_hedged(&a, &b, 50, false);
    tdm_http_response r;
    tdm_err err;
    /* A sits on it: B's copy, sent after 50 ms, answers first */
    uint64_t t0 = tdm_now_ns();
    assert_int_equal(tdm_transport_get(t, "/slow", 3000, &r, &err), TDM_OK);
    double ms = (double)(tdm_now_ns() - t0) / 1e6;
    assert_int_equal(r.status, 200);
    assert_int_equal(r.endpoint, 1);
    assert_int_equal(r.attempts, 2);
    assert_true(ms >= 45 && ms < 450);
    tdm_http_response_free(&r);
    tdm_endpoint_stats es;
    tdm_transport_endpoint_stats(t, 1, &es);
    assert_int_equal(es.hedges, 1);
    assert_int_equal(es.hedge_wins, 1);
    /* a POST: the hedge carries the same body and headers; the caller's buffers may go as
     * soon as the answer is in, while A's copy is still out */
    char *body = strdup("payload");
    const char *hdr[] = {"X-Test: 1", NULL};
    a.echo_delay_ms = 600;
    assert_int_equal(tdm_transport_post(t, "/echo", hdr, body, 7, 3000, &r, &err), TDM_OK);
    free(body);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.endpoint, 1);
    assert_string_equal(r.body, "B:payload");
    tdm_http_response_free(&r);
    a.echo_delay_ms = 0;
    /* freeing waits for A's abandoned copy rather than pulling its handles away */
    tdm_transport_free(t);

    /* a fast first endpoint: no hedge */
    a.delay_ms = 0;
    t = make_hedged(&a, &b, 200, false);
    assert_int_equal(tdm_transport_get(t, "/slow", 3000, &r, &err), TDM_OK);
    assert_int_equal(r.endpoint, 0);
    assert_int_equal(r.attempts, 1);
    tdm_http_response_free(&r);
    tdm_transport_endpoint_stats(t, 1, &es);
    assert_int_equal(es.hedges, 0);
    tdm_transport_free(t);

    /* automatic: too few answer times, no hedge; then a p95 of a few ms makes A's 600 ms
     * late (in between, a scheduling hiccup on a loaded machine may rightly cause a hedge) */
    t = make_hedged(&a, &b, 0, true);
    assert_int_equal(tdm_transport_get(t, "/slow", 3000, &r, &err), TDM_OK);
    assert_int_equal(r.endpoint, 0);
    assert_int_equal(r.attempts, 1);
    tdm_http_response_free(&r);
    for (int i = 0; i < 24; i++) {
        assert_int_equal(tdm_transport_get(t, "/slow", 3000, &r, &err), TDM_OK);
        tdm_http_response_free(&r);
    }
    a.delay_ms = 600;
    t0 = tdm_now_ns();
    assert_int_equal(tdm_transport_get(t, "/slow", 3000, &r, &err), TDM_OK);
    assert_int_equal(r.endpoint, 1);
    assert_true((double)(tdm_now_ns() - t0) / 1e6 < 450);
    tdm_http_response_free(&r);
    tdm_transport_free(t);

    /* a first endpoint that loses to its hedge is counted late: after a few, B leads */
    a.delay_ms = 900;
    t = make_hedged(&a, &b, 150, false); /* long enough for B's immediate answer on a busy CI */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(tdm_transport_get(t, "/slow", 3000, &r, &err), TDM_OK);
        assert_int_equal(r.endpoint, 1);
        tdm_http_response_free(&r);
    }
    tdm_transport_endpoint_stats(t, 1, &es);
    uint64_t hedges_before = es.hedges;
    assert_int_equal(tdm_transport_get(t, "/slow", 3000, &r, &err), TDM_OK);
    assert_int_equal(r.endpoint, 1);
    assert_int_equal(r.attempts, 1); /* B first now: no hedge needed */
    tdm_http_response_free(&r);
    tdm_transport_endpoint_stats(t, 1, &es);
    assert_int_equal(es.hedges, hedges_before);
    tdm_transport_free(t);

    /* a dead first endpoint fails over at once, hedge or not */
    t = make_hedged(&a, &b, 500, false);
    server_stop(&a);
    t0 = tdm_now_ns();
    assert_int_equal(tdm_transport_post(t, "/echo", NULL, "x", 1, 3000, &r, &err), TDM_OK);
    assert_int_equal(r.endpoint, 1);
    assert_string_equal(r.body, "B:x");
    assert_true((double)(tdm_now_ns() - t0) / 1e6 < 450);
    tdm_http_response_free(&r);
    tdm_transport_free(t);
    server_stop(&b);
}

static void test_bad_options(void **state)
{
    (void)state;
    tdm_transport *t;
    tdm_err err;
    tdm_transport_options o = {.endpoints = {"ftp://x"}, .n_endpoints = 1};
    assert_int_equal(tdm_transport_create(&o, &t, &err), TDM_ERR_INVALID_ARG);
    assert_non_null(strstr(err.msg, "ftp://x"));
    o.n_endpoints = 0;
    assert_int_equal(tdm_transport_create(&o, &t, &err), TDM_ERR_INVALID_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_post_and_failover), cmocka_unit_test(test_deadline_and_5xx),
        cmocka_unit_test(test_token_file),        cmocka_unit_test(test_hedge),
        cmocka_unit_test(test_bad_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

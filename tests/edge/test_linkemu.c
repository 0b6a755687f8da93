/*
 * The link emulator against a real echo server on loopback: bytes pass intact
 * (also under jitter), the delay and the rate cap are at least what the
 * profile says (lower bounds only: a loaded machine may add time, never
 * remove it), a cut resets connections and refuses new ones, a stall holds
 * data back until the link opens again, and an unreachable upstream is
 * refused rather than hung.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/clock.h"
#include "edge/linkemu.h"

typedef struct echo_server {
    int lfd, port;
    pthread_t thread;
} echo_server;

static void *echo_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[8192];
    ssize_t n;
    while ((n = recv(fd, buf, sizeof buf, 0)) > 0)
        if (send(fd, buf, (size_t)n, MSG_NOSIGNAL) != n)
            break;
    close(fd);
    return NULL;
}

static void *echo_accept(void *arg)
{
    echo_server *s = arg;
    for (;;) {
        int fd = accept(s->lfd, NULL, NULL);
        if (fd < 0)
            return NULL;
        pthread_t t;
        if (pthread_create(&t, NULL, echo_conn, (void *)(intptr_t)fd) == 0)
            pthread_detach(t);
        else
            close(fd);
    }
}

static void echo_start(echo_server *s)
{
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s->lfd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(s->lfd, 16), 0);
    socklen_t l = sizeof a;
    getsockname(s->lfd, (struct sockaddr *)&a, &l);
    s->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&s->thread, NULL, echo_accept, s), 0);
}

static void echo_stop(echo_server *s)
{
    shutdown(s->lfd, SHUT_RDWR);
    close(s->lfd);
    pthread_join(s->thread, NULL);
}

static int dial(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

/* Sends len bytes and reads the echo back; returns the bytes read (len on success). */
static size_t round_trip(int fd, const uint8_t *msg, uint8_t *back, size_t len)
{
    size_t sent = 0, got = 0;
    while (got < len) {
        if (sent < len) {
            size_t chunk = len - sent < 16384 ? len - sent : 16384;
            ssize_t n = send(fd, msg + sent, chunk, MSG_NOSIGNAL);
            if (n <= 0)
                return got;
            sent += (size_t)n;
        }
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, sent < len ? 0 : 10000) <= 0) {
            if (sent < len)
                continue;
            return got;
        }
        ssize_t n = recv(fd, back + got, len - got, 0);
        if (n <= 0)
            return got;
        got += (size_t)n;
    }
    return got;
}

static void test_profiles(void **state)
{
    (void)state;
    tdm_link_profile p;
    tdm_err err;
    assert_int_equal(tdm_link_profile_named("4g", &p, &err), TDM_OK);
    assert_true(p.delay_ms == 60 && p.jitter_ms == 10 && p.rate_kbps == 10000);
    assert_int_equal(tdm_link_profile_named("congested", &p, &err), TDM_OK);
    assert_true(p.delay_ms == 200 && p.jitter_ms == 50 && p.rate_kbps == 1000);
    assert_int_equal(tdm_link_profile_named("5g", &p, &err), TDM_ERR_INVALID_ARG);
    assert_non_null(strstr(err.msg, "5g"));
}

static void test_delay_and_integrity(void **state)
{
    (void)state;
    echo_server srv;
    echo_start(&srv);
    tdm_link_profile p = {.delay_ms = 30, .jitter_ms = 10, .rate_kbps = 0};
    tdm_linkemu *e;
    tdm_err err;
    assert_int_equal(tdm_linkemu_start("127.0.0.1", 0, "127.0.0.1", srv.port, &p, 7, &e, &err),
                     TDM_OK);
    int fd = dial(tdm_linkemu_port(e));
    enum { N = 300000 };
    uint8_t *msg = malloc(N), *back = malloc(N);
    assert_non_null(msg);
    assert_non_null(back);
    for (size_t i = 0; i < N; i++)
        msg[i] = (uint8_t)(i * 2654435761u >> 13);
    uint64_t t0 = tdm_now_ns();
    assert_int_equal(round_trip(fd, msg, back, 1), 1);
    double rtt_ms = (double)(tdm_now_ns() - t0) / 1e6;
    assert_true(rtt_ms >= 2 * (30 - 10) - 1); /* two one-way trips, each at least delay - jitter */
    assert_int_equal(round_trip(fd, msg, back, N), N);
    assert_memory_equal(msg, back, N);
    close(fd);
    tdm_linkemu_stats st;
    tdm_linkemu_get_stats(e, &st);
    assert_int_equal(st.connections, 1);
    assert_true(st.bytes_up >= N + 1);
    tdm_linkemu_stop(e);
    echo_stop(&srv);
    free(msg);
    free(back);
}

static void test_rate_cap(void **state)
{
    (void)state;
    echo_server srv;
    echo_start(&srv);
    tdm_link_profile p = {.delay_ms = 0, .jitter_ms = 0, .rate_kbps = 8000}; /* 1 MB/s */
    tdm_linkemu *e;
    tdm_err err;
    assert_int_equal(tdm_linkemu_start("127.0.0.1", 0, "127.0.0.1", srv.port, &p, 1, &e, &err),
                     TDM_OK);
    int fd = dial(tdm_linkemu_port(e));
    enum { N = 200000 };
    uint8_t *msg = calloc(1, N), *back = malloc(N);
    assert_non_null(msg);
    assert_non_null(back);
    uint64_t t0 = tdm_now_ns();
    assert_int_equal(round_trip(fd, msg, back, N), N);
    double s = (double)(tdm_now_ns() - t0) / 1e9;
    /* 200 kB each way at 1 MB/s: the two directions overlap, so at least ~0.2 s. */
    assert_true(s >= 0.18);
    close(fd);
    tdm_linkemu_stop(e);
    echo_stop(&srv);
    free(msg);
    free(back);
}

static void test_stall_then_open(void **state)
{
    (void)state;
    echo_server srv;
    echo_start(&srv);
    tdm_link_profile p = {0};
    tdm_linkemu *e;
    tdm_err err;
    assert_int_equal(tdm_linkemu_start("127.0.0.1", 0, "127.0.0.1", srv.port, &p, 1, &e, &err),
                     TDM_OK);
    int fd = dial(tdm_linkemu_port(e));
    uint8_t b = 42, r = 0;
    assert_int_equal(round_trip(fd, &b, &r, 1), 1);
    tdm_linkemu_set_state(e, TDM_LINK_STALLED);
    assert_int_equal(send(fd, &b, 1, 0), 1);
    struct pollfd pf = {fd, POLLIN, 0};
    assert_int_equal(poll(&pf, 1, 200), 0); /* nothing comes back while stalled */
    tdm_linkemu_set_state(e, TDM_LINK_OPEN);
    assert_int_equal(poll(&pf, 1, 5000), 1);
    assert_int_equal(recv(fd, &r, 1, 0), 1);
    assert_int_equal(r, 42);
    close(fd);
    tdm_linkemu_stop(e);
    echo_stop(&srv);
}

static void test_cut(void **state)
{
    (void)state;
    echo_server srv;
    echo_start(&srv);
    tdm_link_profile p = {0};
    tdm_linkemu *e;
    tdm_err err;
    assert_int_equal(tdm_linkemu_start("127.0.0.1", 0, "127.0.0.1", srv.port, &p, 1, &e, &err),
                     TDM_OK);
    int fd = dial(tdm_linkemu_port(e));
    uint8_t b = 1, r = 0;
    assert_int_equal(round_trip(fd, &b, &r, 1), 1);
    tdm_linkemu_set_state(e, TDM_LINK_CUT);
    /* The existing connection is reset... */
    struct pollfd pf = {fd, POLLIN, 0};
    assert_int_equal(poll(&pf, 1, 5000), 1);
    assert_true(recv(fd, &r, 1, 0) <= 0);
    close(fd);
    /* ...and a new one gets no service. */
    fd = dial(tdm_linkemu_port(e));
    pf.fd = fd;
    assert_int_equal(poll(&pf, 1, 5000), 1);
    assert_true(recv(fd, &r, 1, 0) <= 0);
    close(fd);
    tdm_linkemu_stats st;
    tdm_linkemu_get_stats(e, &st);
    assert_true(st.refused >= 1);
    /* Open again: service resumes. */
    tdm_linkemu_set_state(e, TDM_LINK_OPEN);
    fd = dial(tdm_linkemu_port(e));
    assert_int_equal(round_trip(fd, &b, &r, 1), 1);
    close(fd);
    tdm_linkemu_stop(e);
    echo_stop(&srv);
}

static void test_upstream_down(void **state)
{
    (void)state;
    /* A port with nothing listening: bind one, read its number, close it. */
    echo_server srv;
    echo_start(&srv);
    int dead = srv.port;
    echo_stop(&srv);
    tdm_link_profile p = {0};
    tdm_linkemu *e;
    tdm_err err;
    assert_int_equal(tdm_linkemu_start("127.0.0.1", 0, "127.0.0.1", dead, &p, 1, &e, &err), TDM_OK);
    int fd = dial(tdm_linkemu_port(e));
    uint8_t r;
    struct pollfd pf = {fd, POLLIN, 0};
    assert_int_equal(poll(&pf, 1, 5000), 1);
    assert_true(recv(fd, &r, 1, 0) <= 0);
    close(fd);
    tdm_linkemu_stop(e);
}

static void test_bad_args(void **state)
{
    (void)state;
    tdm_link_profile p = {.delay_ms = -1};
    tdm_linkemu *e = (tdm_linkemu *)1;
    tdm_err err;
    assert_int_equal(tdm_linkemu_start("127.0.0.1", 0, "127.0.0.1", 80, &p, 1, &e, &err),
                     TDM_ERR_INVALID_ARG);
    assert_null(e);
    p.delay_ms = 0;
    assert_int_equal(tdm_linkemu_start("127.0.0.1", 0, "127.0.0.1", 0, &p, 1, &e, &err),
                     TDM_ERR_INVALID_ARG);
    tdm_linkemu_stop(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_profiles), cmocka_unit_test(test_delay_and_integrity),
        cmocka_unit_test(test_rate_cap), cmocka_unit_test(test_stall_then_open),
        cmocka_unit_test(test_cut),      cmocka_unit_test(test_upstream_down),
        cmocka_unit_test(test_bad_args),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * The link emulator's proxy loop (see linkemu.h for the model).
 *
 * One thread, one ppoll() over the listening socket, a self-pipe that wakes
 * the loop when a setting changes, and both sockets of every connection.
 * Each direction of a connection is a FIFO of timestamped segments; a segment
 * becomes writable at its arrival time, so the loop sleeps until the earliest
 * arrival (ppoll has nanosecond timeouts, which matters at LAN delays).
 *
 * Everything the loop touches is guarded by one mutex that it holds while it
 * works and releases while it sleeps; setters take the same mutex and poke
 * the pipe. No allocation happens per byte: a segment is one malloc of at
 * most one MSS.
 */
#include "edge/linkemu.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/clock.h"

#define SEG_MAX 1448                      /* one Ethernet MSS */
#define DIR_QUEUE_MAX ((size_t)256 << 10) /* per direction: back-pressure beyond */
#define MAX_CONNS 256

typedef struct seg {
    struct seg *next;
    uint64_t at_ns; /* arrival time at the far end */
    uint32_t len, off;
    uint8_t data[];
} seg;

typedef struct dir {
    int from, to;
    seg *head, *tail;
    size_t queued;
    uint64_t last_at; /* arrivals never go backwards */
    bool eof;         /* the sender closed its side */
    bool shut;        /* we passed the close on */
} dir;

typedef struct conn {
    int cfd, ufd;
    bool connecting; /* non-blocking connect to upstream in progress */
    dir d[2];        /* 0: client -> upstream, 1: upstream -> client */
} conn;

struct tdm_linkemu {
    pthread_t thread;
    pthread_mutex_t mu;
    int lfd, port;
    int wake[2];
    char up_host[256];
    int up_port;
    tdm_link_profile prof;
    tdm_link_state state;
    bool stopping;
    uint64_t link_free[2]; /* per direction: when the shared link is idle again */
    uint64_t rng;
    conn *conns[MAX_CONNS];
    int nconns;
    tdm_linkemu_stats st;
};

tdm_status tdm_link_profile_named(const char *name, tdm_link_profile *out, tdm_err *err)
{
    static const struct {
        const char *name;
        tdm_link_profile p;
    } k[] = {
        {"none", {0, 0, 0}},
        {"lan", {2, 0, 1000000}},
        {"4g", {60, 10, 10000}},
        {"congested", {200, 50, 1000}},
    };
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
        if (strcmp(name, k[i].name) == 0) {
            *out = k[i].p;
            return TDM_OK;
        }
    return tdm_errf(err, TDM_ERR_INVALID_ARG,
                    "link profile '%s' is not one of none, lan, 4g, congested", name);
}

static uint64_t next_rand(uint64_t *s)
{
    /* xorshift64*: plenty for jitter, and reproducible from the seed. */
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static void set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL, 0);
    if (fl >= 0)
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* Closes with RST rather than FIN, as a cut link looks to the peer. */
static void close_reset(int fd)
{
    if (fd < 0)
        return;
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
}

static void conn_free(conn *c, bool reset)
{
    for (int k = 0; k < 2; k++) {
        seg *s = c->d[k].head;
        while (s) {
            seg *n = s->next;
            free(s);
            s = n;
        }
    }
    if (reset) {
        close_reset(c->cfd);
        close_reset(c->ufd);
    } else {
        close(c->cfd);
        close(c->ufd);
    }
    free(c);
}

static void drop_conn(tdm_linkemu *e, int i, bool reset)
{
    conn_free(e->conns[i], reset);
    e->conns[i] = e->conns[--e->nconns];
    e->st.active = (uint64_t)e->nconns;
}

/* Starts a non-blocking connect to the upstream; -1 when it fails at once. */
static int connect_upstream(const tdm_linkemu *e, bool *in_progress)
{
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    char port[16];
    snprintf(port, sizeof port, "%d", e->up_port);
    if (getaddrinfo(e->up_host, port, &hints, &res) != 0 || res == NULL)
        return -1;
    int fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, res->ai_protocol);
    if (fd >= 0) {
        set_nonblock(fd);
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(fd, res->ai_addr, res->ai_addrlen) == 0) {
            *in_progress = false;
        } else if (errno == EINPROGRESS) {
            *in_progress = true;
        } else {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    return fd;
}

static void accept_one(tdm_linkemu *e)
{
    int fd = accept4(e->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0)
        return;
    e->st.connections++;
    if (e->state == TDM_LINK_CUT || e->nconns == MAX_CONNS) {
        e->st.refused++;
        close_reset(fd);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    bool pending = false;
    int ufd = connect_upstream(e, &pending);
    conn *c = ufd >= 0 ? calloc(1, sizeof *c) : NULL;
    if (c == NULL) {
        e->st.refused++;
        close_reset(fd);
        if (ufd >= 0)
            close(ufd);
        return;
    }
    c->cfd = fd;
    c->ufd = ufd;
    c->connecting = pending;
    c->d[0].from = fd;
    c->d[0].to = ufd;
    c->d[1].from = ufd;
    c->d[1].to = fd;
    e->conns[e->nconns++] = c;
    e->st.active = (uint64_t)e->nconns;
}

/* Reads one segment into a direction's queue; false when the connection broke. */
static bool pump_in(tdm_linkemu *e, dir *d, int k, uint64_t now)
{
    size_t room = DIR_QUEUE_MAX - d->queued;
    size_t want = room < SEG_MAX ? room : SEG_MAX;
    seg *s = malloc(sizeof *s + want);
    if (s == NULL)
        return true; /* try again on the next wake-up */
    ssize_t n = recv(d->from, s->data, want, 0);
    if (n <= 0) {
        free(s);
        if (n == 0) {
            d->eof = true;
            return true;
        }
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    }
    const tdm_link_profile *p = &e->prof;
    uint64_t tx_start = e->link_free[k] > now ? e->link_free[k] : now;
    uint64_t tx_ns =
        p->rate_kbps > 0 ? (uint64_t)((double)n * 8.0 / (p->rate_kbps * 1e3) * 1e9) : 0;
    e->link_free[k] = tx_start + tx_ns;
    double delay = p->delay_ms;
    if (p->jitter_ms > 0) {
        double u = (double)(next_rand(&e->rng) >> 11) / 9007199254740992.0; /* [0,1) */
        delay += (2.0 * u - 1.0) * p->jitter_ms;
    }
    if (delay < 0)
        delay = 0;
    uint64_t at = e->link_free[k] + (uint64_t)(delay * 1e6);
    if (at < d->last_at)
        at = d->last_at;
    d->last_at = at;
    s->next = NULL;
    s->at_ns = at;
    s->len = (uint32_t)n;
    s->off = 0;
    if (d->tail)
        d->tail->next = s;
    else
        d->head = s;
    d->tail = s;
    d->queued += (size_t)n;
    return true;
}

/* Writes the segments that have arrived; false when the connection broke. */
static bool pump_out(tdm_linkemu *e, dir *d, int k, uint64_t now)
{
    while (d->head && d->head->at_ns <= now) {
        seg *s = d->head;
        ssize_t n = send(d->to, s->data + s->off, s->len - s->off, MSG_NOSIGNAL);
        if (n < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
        s->off += (uint32_t)n;
        d->queued -= (size_t)n;
        if (k == 0)
            e->st.bytes_up += (uint64_t)n;
        else
            e->st.bytes_down += (uint64_t)n;
        if (s->off < s->len)
            return true;
        d->head = s->next;
        if (d->head == NULL)
            d->tail = NULL;
        free(s);
    }
    if (d->head == NULL && d->eof && !d->shut) {
        shutdown(d->to, SHUT_WR);
        d->shut = true;
    }
    return true;
}

static void *loop(void *arg)
{
    tdm_linkemu *e = arg;
    struct pollfd pfd[2 + 2 * MAX_CONNS];
    pthread_mutex_lock(&e->mu);
    while (!e->stopping) {
        uint64_t now = tdm_now_ns();
        if (e->state == TDM_LINK_CUT)
            while (e->nconns > 0)
                drop_conn(e, e->nconns - 1, true);

        /* What to wait for, and until when. */
        int np = 0;
        pfd[np++] = (struct pollfd){.fd = e->wake[0], .events = POLLIN};
        pfd[np++] = (struct pollfd){.fd = e->lfd, .events = POLLIN};
        uint64_t wake_at = UINT64_MAX;
        const bool flowing = e->state == TDM_LINK_OPEN;
        for (int i = 0; i < e->nconns; i++) {
            conn *c = e->conns[i];
            short ev[2] = {0, 0}; /* for cfd, ufd */
            if (c->connecting) {
                ev[1] = POLLOUT;
            } else if (flowing) {
                for (int k = 0; k < 2; k++) {
                    dir *d = &c->d[k];
                    int from = k, to = 1 - k;
                    if (!d->eof && d->queued < DIR_QUEUE_MAX)
                        ev[from] |= POLLIN;
                    if (d->head) {
                        if (d->head->at_ns <= now)
                            ev[to] |= POLLOUT;
                        else if (d->head->at_ns < wake_at)
                            wake_at = d->head->at_ns;
                    }
                }
            }
            pfd[np++] = (struct pollfd){.fd = c->cfd, .events = ev[0]};
            pfd[np++] = (struct pollfd){.fd = c->ufd, .events = ev[1]};
        }
        struct timespec ts, *tsp = NULL;
        if (wake_at != UINT64_MAX) {
            uint64_t dt = wake_at > now ? wake_at - now : 0;
            ts.tv_sec = (time_t)(dt / 1000000000ull);
            ts.tv_nsec = (long)(dt % 1000000000ull);
            tsp = &ts;
        }
        pthread_mutex_unlock(&e->mu);
        int r = ppoll(pfd, (nfds_t)np, tsp, NULL);
        pthread_mutex_lock(&e->mu);
        if (r < 0 && errno != EINTR)
            break;
        if (pfd[0].revents & POLLIN) {
            char buf[64];
            while (read(e->wake[0], buf, sizeof buf) > 0) {
            }
        }
        if (e->stopping)
            break;
        now = tdm_now_ns();
        /* Connections are matched to poll slots by index: handle them from the
         * end so that drop_conn's swap-with-last never moves an unvisited one. */
        int polled = (np - 2) / 2;
        for (int i = polled - 1; i >= 0; i--) {
            if (i >= e->nconns)
                continue;
            conn *c = e->conns[i];
            short rc = pfd[2 + 2 * i].revents, ru = pfd[3 + 2 * i].revents;
            if (c->connecting) {
                if (ru & (POLLOUT | POLLERR | POLLHUP)) {
                    int so = 0;
                    socklen_t sl = sizeof so;
                    getsockopt(c->ufd, SOL_SOCKET, SO_ERROR, &so, &sl);
                    if (so != 0) {
                        e->st.refused++;
                        drop_conn(e, i, true);
                        continue;
                    }
                    c->connecting = false;
                }
                continue;
            }
            if (e->state != TDM_LINK_OPEN)
                continue;
            bool ok = true;
            if (rc & (POLLIN | POLLHUP | POLLERR))
                ok = ok && pump_in(e, &c->d[0], 0, now);
            if (ok && (ru & (POLLIN | POLLHUP | POLLERR)))
                ok = pump_in(e, &c->d[1], 1, now);
            if (ok)
                ok = pump_out(e, &c->d[0], 0, now) && pump_out(e, &c->d[1], 1, now);
            if (!ok)
                drop_conn(e, i, true);
            else if (c->d[0].shut && c->d[1].shut)
                drop_conn(e, i, false);
        }
        if (pfd[1].revents & POLLIN)
            accept_one(e);
    }
    while (e->nconns > 0)
        drop_conn(e, e->nconns - 1, true);
    pthread_mutex_unlock(&e->mu);
    return NULL;
}

static void poke(tdm_linkemu *e)
{
    char b = 1;
    ssize_t n = write(e->wake[1], &b, 1);
    (void)n; /* a full pipe already means "wake up" */
}

tdm_status tdm_linkemu_start(const char *listen_host, int listen_port, const char *upstream_host,
                             int upstream_port, const tdm_link_profile *profile, uint64_t seed,
                             tdm_linkemu **out, tdm_err *err)
{
    *out = NULL;
    if (listen_port < 0 || listen_port > 65535 || upstream_port <= 0 || upstream_port > 65535)
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "link emulator: port out of range");
    if (strlen(upstream_host) >= sizeof((tdm_linkemu *)0)->up_host)
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "link emulator: upstream host name too long");
    if (profile->delay_ms < 0 || profile->jitter_ms < 0 || profile->rate_kbps < 0)
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "link emulator: negative delay, jitter or rate");
    tdm_linkemu *e = calloc(1, sizeof *e);
    if (e == NULL)
        return tdm_errf(err, TDM_ERR_NOMEM, "link emulator: out of memory");
    e->lfd = e->wake[0] = e->wake[1] = -1;
    snprintf(e->up_host, sizeof e->up_host, "%s", upstream_host);
    e->up_port = upstream_port;
    e->prof = *profile;
    e->rng = seed ? seed : 0x9E3779B97F4A7C15ull;
    pthread_mutex_init(&e->mu, NULL);

    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    char port[16];
    snprintf(port, sizeof port, "%d", listen_port);
    tdm_status st = TDM_OK;
    if (getaddrinfo(listen_host, port, &hints, &res) != 0 || res == NULL) {
        st = tdm_errf(err, TDM_ERR_INVALID_ARG, "link emulator: cannot resolve '%s'", listen_host);
        goto fail;
    }
    e->lfd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, res->ai_protocol);
    int one = 1;
    if (e->lfd >= 0)
        setsockopt(e->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (e->lfd < 0 || bind(e->lfd, res->ai_addr, res->ai_addrlen) != 0 ||
        listen(e->lfd, 128) != 0) {
        st = tdm_errf(err, TDM_ERR_IO, "link emulator: cannot listen on %s:%d: %s", listen_host,
                      listen_port, strerror(errno));
        freeaddrinfo(res);
        goto fail;
    }
    freeaddrinfo(res);
    set_nonblock(e->lfd);
    struct sockaddr_storage sa;
    socklen_t sl = sizeof sa;
    getsockname(e->lfd, (struct sockaddr *)&sa, &sl);
    e->port = ntohs(sa.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&sa)->sin6_port
                                             : ((struct sockaddr_in *)&sa)->sin_port);
    if (pipe2(e->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
        st = tdm_errf(err, TDM_ERR_IO, "link emulator: pipe: %s", strerror(errno));
        goto fail;
    }
    if (pthread_create(&e->thread, NULL, loop, e) != 0) {
        st = tdm_errf(err, TDM_ERR_NOMEM, "link emulator: cannot start its thread");
        goto fail;
    }
    *out = e;
    return TDM_OK;
fail:
    if (e->lfd >= 0)
        close(e->lfd);
    if (e->wake[0] >= 0) {
        close(e->wake[0]);
        close(e->wake[1]);
    }
    pthread_mutex_destroy(&e->mu);
    free(e);
    return st;
}

void tdm_linkemu_stop(tdm_linkemu *e)
{
    if (e == NULL)
        return;
    pthread_mutex_lock(&e->mu);
    e->stopping = true;
    poke(e);
    pthread_mutex_unlock(&e->mu);
    pthread_join(e->thread, NULL);
    close(e->lfd);
    close(e->wake[0]);
    close(e->wake[1]);
    pthread_mutex_destroy(&e->mu);
    free(e);
}

int tdm_linkemu_port(const tdm_linkemu *e)
{
    return e->port;
}

void tdm_linkemu_set_profile(tdm_linkemu *e, const tdm_link_profile *profile)
{
    pthread_mutex_lock(&e->mu);
    e->prof = *profile;
    poke(e);
    pthread_mutex_unlock(&e->mu);
}

void tdm_linkemu_set_state(tdm_linkemu *e, tdm_link_state state)
{
    pthread_mutex_lock(&e->mu);
    e->state = state;
    poke(e);
    pthread_mutex_unlock(&e->mu);
}

void tdm_linkemu_set_upstream(tdm_linkemu *e, int upstream_port)
{
    pthread_mutex_lock(&e->mu);
    e->up_port = upstream_port;
    pthread_mutex_unlock(&e->mu);
}

void tdm_linkemu_get_stats(tdm_linkemu *e, tdm_linkemu_stats *st)
{
    pthread_mutex_lock(&e->mu);
    *st = e->st;
    pthread_mutex_unlock(&e->mu);
}

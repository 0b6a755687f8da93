/*
 * Starting tests/support/hub_server as a child process from a cmocka test.
 *
 * The server binary sits next to the tandem CLI (dirname of $TDM_BIN, set by
 * CTest). It prints its port on standard out once it listens; its request log
 * (standard error) goes to a file that tests grep to prove what was asked
 * ("range=100000- -> 206"). Each test starts its own server with the faults
 * it needs and stops it with SIGTERM.
 */
#ifndef TDM_TESTS_SUPPORT_HUB_CHILD_H
#define TDM_TESTS_SUPPORT_HUB_CHILD_H

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct hub_child {
    pid_t pid;
    int port;
    char log[512];
    char base[128]; /* http://127.0.0.1:PORT */
} hub_child;

/* Starts hub_server with args (NULL-terminated); logs to log_path. False with a message on
 * stderr when it does not start. */
static inline bool hub_child_start(hub_child *s, const char *const *args, const char *log_path)
{
    memset(s, 0, sizeof *s);
    const char *bin = getenv("TDM_BIN");
    if (bin == NULL) {
        fprintf(stderr, "TDM_BIN is not set (run through ctest)\n");
        return false;
    }
    char dirbuf[512], exe[600];
    snprintf(dirbuf, sizeof dirbuf, "%s", bin);
    snprintf(exe, sizeof exe, "%s/hub_server", dirname(dirbuf));
    const char *argv[40] = {exe};
    int argc = 1;
    for (int i = 0; args[i] != NULL && argc < 39; i++)
        argv[argc++] = args[i];
    argv[argc] = NULL;
    snprintf(s->log, sizeof s->log, "%s", log_path);
    int fds[2];
    if (pipe(fds) != 0)
        return false;
    s->pid = fork();
    if (s->pid < 0)
        return false;
    if (s->pid == 0) {
        /* A failed assertion ends the test without hub_child_stop: the server goes with it. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        int lf = open(s->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (lf >= 0)
            dup2(lf, 2);
        execv(exe, (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    char line[32] = {0};
    size_t n = 0;
    while (n < sizeof line - 1) {
        ssize_t r = read(fds[0], line + n, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0 || line[n] == '\n')
            break;
        n++;
    }
    close(fds[0]);
    s->port = atoi(line);
    if (s->port <= 0) {
        fprintf(stderr, "%s did not start (see %s)\n", exe, s->log);
        kill(s->pid, SIGTERM);
        waitpid(s->pid, NULL, 0);
        return false;
    }
    snprintf(s->base, sizeof s->base, "http://127.0.0.1:%d", s->port);
    return true;
}

static inline void hub_child_stop(hub_child *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        waitpid(s->pid, NULL, 0);
        s->pid = 0;
    }
}

/* True when the server's log contains needle. */
static inline bool hub_child_log_has(const hub_child *s, const char *needle)
{
    static char buf[65536];
    FILE *f = fopen(s->log, "r");
    if (f == NULL)
        return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strstr(buf, needle) != NULL;
}

#endif

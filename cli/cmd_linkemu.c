/*
 * tandem linkemu: the link emulator as a process, for scripts and fault tests.
 *
 * It prints "linkemu listening on PORT" once the socket is bound (so a script
 * that asked for port 0 learns the port), then reads commands, one per line,
 * on standard input: "open", "stall", "cut", "profile NAME",
 * "delay MS", "jitter MS", "rate KBPS", "stats". A script drives it through a
 * FIFO; end of input (or SIGTERM/SIGINT) stops it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_util.h"
#include "edge/linkemu.h"

static void linkemu_usage(FILE *f)
{
    fprintf(f, "usage: tandem linkemu --upstream HOST:PORT [--listen [HOST:]PORT]\n"
               "                      [--profile none|lan|4g|congested] [--delay-ms D]\n"
               "                      [--jitter-ms J] [--rate-kbit R] [--seed S]\n"
               "\n"
               "A TCP proxy that adds one-way delay with jitter, caps bandwidth and can stall\n"
               "or cut the link. Commands on stdin: open | stall | cut | profile NAME |\n"
               "delay MS | jitter MS | rate KBPS | stats. Delays are one-way.\n");
}

/* Splits "host:port" or "port"; host defaults to 127.0.0.1. */
static bool parse_hostport(const char *s, char *host, size_t hl, int *port)
{
    const char *colon = strrchr(s, ':');
    const char *p = colon ? colon + 1 : s;
    int64_t v;
    if (!tdm_cli_parse_int(p, 0, 65535, &v))
        return false;
    *port = (int)v;
    if (colon) {
        size_t n = (size_t)(colon - s);
        if (n == 0 || n >= hl)
            return false;
        memcpy(host, s, n);
        host[n] = '\0';
    } else {
        snprintf(host, hl, "127.0.0.1");
    }
    return true;
}

static bool parse_ms(const char *s, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || !(v >= 0) || v > 1e7)
        return false;
    *out = v;
    return true;
}

int tdm_cmd_linkemu(int argc, char **argv)
{
    char lhost[256] = "127.0.0.1", uhost[256] = "";
    int lport = 0, uport = 0;
    tdm_link_profile prof = {0, 0, 0};
    int64_t seed = 1;
    tdm_err err = {{0}};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (tdm_cli_is_help(a)) {
            linkemu_usage(stdout);
            return TDM_EXIT_OK;
        }
        if (i + 1 >= argc)
            return tdm_cli_fail("linkemu", TDM_EXIT_USAGE, "%s needs a value (see --help)", a);
        const char *v = argv[++i];
        if (strcmp(a, "--listen") == 0) {
            if (!parse_hostport(v, lhost, sizeof lhost, &lport))
                return tdm_cli_fail("linkemu", TDM_EXIT_USAGE, "--listen: '%s' is not [HOST:]PORT",
                                    v);
        } else if (strcmp(a, "--upstream") == 0) {
            if (!parse_hostport(v, uhost, sizeof uhost, &uport) || uport == 0)
                return tdm_cli_fail("linkemu", TDM_EXIT_USAGE, "--upstream: '%s' is not HOST:PORT",
                                    v);
        } else if (strcmp(a, "--profile") == 0) {
            if (tdm_link_profile_named(v, &prof, &err) != TDM_OK)
                return tdm_cli_fail("linkemu", TDM_EXIT_USAGE, "--profile: %s", err.msg);
        } else if (strcmp(a, "--delay-ms") == 0 || strcmp(a, "--jitter-ms") == 0 ||
                   strcmp(a, "--rate-kbit") == 0) {
            double *dst = a[2] == 'd'   ? &prof.delay_ms
                          : a[2] == 'j' ? &prof.jitter_ms
                                        : &prof.rate_kbps;
            if (!parse_ms(v, dst))
                return tdm_cli_fail("linkemu", TDM_EXIT_USAGE,
                                    "%s: '%s' is not a non-negative number", a, v);
        } else if (strcmp(a, "--seed") == 0) {
            if (!tdm_cli_parse_int(v, 0, INT64_MAX, &seed))
                return tdm_cli_fail("linkemu", TDM_EXIT_USAGE, "--seed: '%s' is not a count", v);
        } else {
            return tdm_cli_fail("linkemu", TDM_EXIT_USAGE, "unknown option '%s'", a);
        }
    }
    if (uport == 0) {
        linkemu_usage(stderr);
        return TDM_EXIT_USAGE;
    }
    tdm_linkemu *e = NULL;
    if (tdm_linkemu_start(lhost, lport, uhost, uport, &prof, (uint64_t)seed, &e, &err) != TDM_OK)
        return tdm_cli_fail("linkemu", TDM_EXIT_FAIL, "%s", err.msg);
    printf("linkemu listening on %d\n", tdm_linkemu_port(e));
    fflush(stdout);

    char line[256];
    while (fgets(line, sizeof line, stdin)) {
        char cmd[32] = "", arg[64] = "";
        if (sscanf(line, "%31s %63s", cmd, arg) < 1)
            continue;
        double x;
        if (strcmp(cmd, "open") == 0) {
            tdm_linkemu_set_state(e, TDM_LINK_OPEN);
        } else if (strcmp(cmd, "stall") == 0) {
            tdm_linkemu_set_state(e, TDM_LINK_STALLED);
        } else if (strcmp(cmd, "cut") == 0) {
            tdm_linkemu_set_state(e, TDM_LINK_CUT);
        } else if (strcmp(cmd, "profile") == 0) {
            if (tdm_link_profile_named(arg, &prof, &err) != TDM_OK) {
                fprintf(stderr, "tandem linkemu: %s\n", err.msg);
                continue;
            }
            tdm_linkemu_set_profile(e, &prof);
        } else if ((strcmp(cmd, "delay") == 0 || strcmp(cmd, "jitter") == 0 ||
                    strcmp(cmd, "rate") == 0) &&
                   parse_ms(arg, &x)) {
            *(cmd[0] == 'd'   ? &prof.delay_ms
              : cmd[0] == 'j' ? &prof.jitter_ms
                              : &prof.rate_kbps) = x;
            tdm_linkemu_set_profile(e, &prof);
        } else if (strcmp(cmd, "stats") == 0) {
            tdm_linkemu_stats st;
            tdm_linkemu_get_stats(e, &st);
            printf("{\"connections\":%llu,\"active\":%llu,\"refused\":%llu,\"bytes_up\":%llu,"
                   "\"bytes_down\":%llu}\n",
                   (unsigned long long)st.connections, (unsigned long long)st.active,
                   (unsigned long long)st.refused, (unsigned long long)st.bytes_up,
                   (unsigned long long)st.bytes_down);
            fflush(stdout);
        } else {
            fprintf(stderr, "tandem linkemu: unknown command '%s'\n", cmd);
            continue;
        }
        printf("ok %s\n", cmd);
        fflush(stdout);
    }
    tdm_linkemu_stop(e);
    return TDM_EXIT_OK;
}

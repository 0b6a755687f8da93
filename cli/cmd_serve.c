/*
 * tandem serve: the cloud gateway as a process.
 *
 * Every config option is also a flag (the same table drives both, see src/cloud/config.c);
 * flags are applied after --config, so a flag overrides the file. Signals are blocked
 * before the server threads start, so they inherit the mask and only this thread receives
 * SIGTERM/SIGINT through sigwait: the drain runs in ordinary code, not a signal handler.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_util.h"
#include "cloud/gateway_internal.h"
#include "tandem/gateway.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: tandem serve [--config FILE] [--OPTION VALUE]... [--port-file FILE]\n\n"
               "Serves the models of a registry directory over HTTP (docs/gateway.md).\n"
               "SIGTERM or SIGINT drains: new connections are refused, requests already\n"
               "received are answered, then the process exits 0.\n\n"
               "  --config FILE     YAML config; the flags below override it\n"
               "  --port-file FILE  write the bound port there once listening (for --port 0)\n\n"
               "options (flag, config key, meaning and default):\n");
    tdm_gw_config_print_help(f);
}

int tdm_cmd_serve(int argc, char **argv)
{
    const char *config = NULL, *port_file = NULL;
    for (int i = 1; i < argc; i++) {
        if (tdm_cli_is_help(argv[i])) {
            usage(stdout);
            return TDM_EXIT_OK;
        }
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            config = argv[++i];
        else if (strcmp(argv[i], "--port-file") == 0 && i + 1 < argc)
            port_file = argv[++i];
        else if (strncmp(argv[i], "--", 2) == 0 && i + 1 < argc)
            i++; /* an option, applied below */
        else
            return tdm_cli_fail("serve", TDM_EXIT_USAGE,
                                "unexpected argument '%s' (options take a value: --NAME VALUE)",
                                argv[i]);
    }
    tdm_gateway_options *o = NULL;
    tdm_err err = {{0}};
    if (tdm_gateway_options_create(&o, &err) != TDM_OK)
        return tdm_cli_fail("serve", TDM_EXIT_FAIL, "%s", err.msg);
    if (config && tdm_gateway_options_load(o, config, &err) != TDM_OK) {
        tdm_gateway_options_free(o);
        return tdm_cli_fail("serve", TDM_EXIT_FAIL, "%s", err.msg);
    }
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--config") == 0 || strcmp(argv[i], "--port-file") == 0)
            continue;
        if (tdm_gateway_options_set(o, argv[i] + 2, argv[i + 1], &err) != TDM_OK) {
            tdm_gateway_options_free(o);
            return tdm_cli_fail("serve", TDM_EXIT_USAGE, "%s", err.msg);
        }
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    tdm_gateway *gw = NULL;
    if (tdm_gateway_start(o, &gw, &err) != TDM_OK) {
        tdm_gateway_options_free(o);
        return tdm_cli_fail("serve", TDM_EXIT_FAIL, "%s", err.msg);
    }
    const tdm_gw_config *c = o;
    fprintf(stderr, "{\"event\":\"listening\",\"address\":\"%s\",\"port\":%d,\"tls\":%s}\n",
            c->listen, tdm_gateway_port(gw), c->tls_cert[0] ? "true" : "false");
    if (port_file) {
        char tmp[1100];
        snprintf(tmp, sizeof tmp, "%s.tmp", port_file);
        FILE *f = fopen(tmp, "w");
        if (!f || fprintf(f, "%d\n", tdm_gateway_port(gw)) < 0 || fclose(f) != 0 ||
            rename(tmp, port_file) != 0) {
            tdm_gateway_free(gw);
            tdm_gateway_options_free(o);
            return tdm_cli_fail("serve", TDM_EXIT_FAIL, "%s: cannot write the port", port_file);
        }
    }
    int sig = 0;
    sigwait(&set, &sig);
    fprintf(stderr, "{\"event\":\"draining\",\"signal\":%d}\n", sig);
    int left = tdm_gateway_drain(gw, c->drain_timeout_s);
    fprintf(stderr, "{\"event\":\"stopped\",\"unfinished\":%d}\n", left);
    tdm_gateway_free(gw);
    tdm_gateway_options_free(o);
    return left ? TDM_EXIT_FAIL : TDM_EXIT_OK;
}

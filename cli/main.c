/*
 * tandem command-line entry point: dispatches to one file per subcommand.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "tandem/tandem.h"

static const tdm_cli_command k_commands[] = {
    {"run", "run a model on .npy inputs, write .npy outputs", tdm_cmd_run},
    {"info", "describe a model: inputs, outputs, ops, parameters", tdm_cmd_info},
    {"conformance", "run the ONNX backend node tests", tdm_cmd_conformance},
    {"eval", "accuracy of a classifier on MNIST, Fashion-MNIST or CIFAR", tdm_cmd_eval},
    {"tokenize", "WordPiece ids of JSON-lines texts (stdin -> stdout)", tdm_cmd_tokenize},
    {"linkemu", "TCP proxy that emulates delay, jitter, bandwidth and outages", tdm_cmd_linkemu},
    {"version", "print the version", tdm_cmd_version},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: tandem <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof k_commands / sizeof k_commands[0]; i++)
        fprintf(f, "  %-12s %s\n", k_commands[i].name, k_commands[i].summary);
    fprintf(f, "\n'tandem <command> --help' describes a command.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return TDM_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return TDM_EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0)
        return tdm_cmd_version(argc - 1, argv + 1);
    for (size_t i = 0; i < sizeof k_commands / sizeof k_commands[0]; i++)
        if (strcmp(argv[1], k_commands[i].name) == 0)
            return k_commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "tandem: unknown command '%s' (try 'tandem --help')\n", argv[1]);
    return TDM_EXIT_USAGE;
}

int tdm_cmd_version(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("tandem %s\n", TANDEM_VERSION_STRING);
    return TDM_EXIT_OK;
}

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
    {"inspect", "list a model's cut points: tensors, bytes, FLOPs, latency", tdm_cmd_inspect},
    {"split", "write a model's head and tail at a cut as two ONNX files", tdm_cmd_split},
    {"conformance", "run the ONNX backend node tests", tdm_cmd_conformance},
    {"eval", "accuracy of a classifier on MNIST, Fashion-MNIST or CIFAR", tdm_cmd_eval},
    {"tokenize", "WordPiece ids of JSON-lines texts (stdin -> stdout)", tdm_cmd_tokenize},
    {"pull", "download a model from the Hugging Face hub, verified and resumable", tdm_cmd_pull},
    {"models", "sync model versions from the gateway; rollback; active", tdm_cmd_models},
    {"embed", "sentence embeddings of texts (args or JSON lines on stdin)", tdm_cmd_embed},
    {"demo", "the whole system on loopback: gateway, link emulator, edge agent", tdm_cmd_demo},
    {"edge", "run the edge agent with a local HTTP API", tdm_cmd_edge},
    {"linkemu", "TCP proxy that emulates delay, jitter, bandwidth and outages", tdm_cmd_linkemu},
    {"exits", "fit, calibrate and evaluate early-exit heads", tdm_cmd_exits},
    {"cascade", "edge model with a confidence threshold, cloud model for the rest",
     tdm_cmd_cascade},
    {"serve", "cloud gateway: HTTP inference over a model registry", tdm_cmd_serve},
    {"codec", "feature codec tools: 'codec sweep' rate-accuracy at a cut", tdm_cmd_codec},
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

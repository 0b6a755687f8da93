/*
 * Shared declarations of the tandem CLI: exit codes and subcommands.
 *
 * Exit status: 0 success, 1 failure, 2 bad usage; failures print one line on
 * standard error naming the file, field or value at fault.
 */
#ifndef TDM_CLI_H
#define TDM_CLI_H

enum { TDM_EXIT_OK = 0, TDM_EXIT_FAIL = 1, TDM_EXIT_USAGE = 2 };

typedef struct tdm_cli_command {
    const char *name;
    const char *summary;
    int (*fn)(int argc, char **argv); /* argv[0] is the command name */
} tdm_cli_command;

int tdm_cmd_version(int argc, char **argv);
int tdm_cmd_eval(int argc, char **argv);
int tdm_cmd_run(int argc, char **argv);
int tdm_cmd_info(int argc, char **argv);
int tdm_cmd_inspect(int argc, char **argv);
int tdm_cmd_split(int argc, char **argv);
int tdm_cmd_conformance(int argc, char **argv);
int tdm_cmd_tokenize(int argc, char **argv);
int tdm_cmd_pull(int argc, char **argv);
int tdm_cmd_models(int argc, char **argv);
int tdm_cmd_embed(int argc, char **argv);
int tdm_cmd_linkemu(int argc, char **argv);
int tdm_cmd_edge(int argc, char **argv);
int tdm_cmd_demo(int argc, char **argv);
int tdm_cmd_exits(int argc, char **argv);
int tdm_cmd_cascade(int argc, char **argv);
int tdm_cmd_serve(int argc, char **argv);
int tdm_cmd_codec(int argc, char **argv);

#endif

/*
 * What `tandem inspect` and `tandem split` share: loading a model twice (the
 * optimised graph that cuts are enumerated on and that runs, and the original
 * graph that split files are cut from), parsing --input-shape, and checking
 * a cut by running head then tail against the unsplit model.
 */
#ifndef TDM_CLI_SPLIT_COMMON_H
#define TDM_CLI_SPLIT_COMMON_H

#include <stdbool.h>
#include <stdint.h>

#include "collab/cuts.h"
#include "tandem/tandem.h"

#define TDM_SPLIT_MAX_SHAPES 64

typedef struct tdm_split_cli {
    tdm_graph *g;    /* optimised */
    tdm_graph *orig; /* no_optimize */
    tdm_session *s;  /* of g */
    tdm_cut_list *cuts;
} tdm_split_cli;

/*
 * Loads model, enumerates its cuts for the --input-shape specs given
 * ("NAME=1x3x32x32", or "1x3x32x32" for a one-input model) and creates a
 * session with threads threads. Returns a TDM_EXIT_* code, printing the
 * error as "tandem CMD: ...".
 */
int tdm_split_cli_load(const char *cmd, const char *model, int n_specs, char **specs, int threads,
                       tdm_split_cli *c);
void tdm_split_cli_free(tdm_split_cli *c);

/*
 * Runs the unsplit model and then head and tail (on sessions head and tail)
 * on seeded random inputs; *max_rel is the largest relative difference over
 * the outputs (see tdm_split_max_rel). Inputs and the unsplit outputs are
 * also written as .npy under save_dir/in and save_dir/expected when save_dir
 * is not NULL. Returns a TDM_EXIT_* code.
 */
int tdm_split_cli_verify(const char *cmd, tdm_split_cli *c, tdm_session *head, tdm_session *tail,
                         const tdm_cut *cut, uint64_t seed, const char *save_dir, double *max_rel);

#endif

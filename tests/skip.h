/*
 * Skipping tests that need data absent on this machine.
 *
 * A test that needs ../shared or Debian's ONNX test data and does not find it
 * prints why and exits with 77, which CTest reports as skipped: it never
 * passes silently.
 */
#ifndef TDM_TESTS_SKIP_H
#define TDM_TESTS_SKIP_H

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#define TDM_SKIP_CODE 77

static inline int tdm_test_path_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

#define TDM_REQUIRE_PATH(path)                                                \
    do {                                                                      \
        if (!tdm_test_path_exists(path)) {                                    \
            printf("SKIP: %s is absent (see ../shared/README.md)\n", (path)); \
            exit(TDM_SKIP_CODE);                                              \
        }                                                                     \
    } while (0)

#endif

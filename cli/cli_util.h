/*
 * Small helpers shared by the CLI commands: argument parsing, errors, names.
 */
#ifndef TDM_CLI_UTIL_H
#define TDM_CLI_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Parses a decimal integer in [lo, hi]; false on junk or out of range. */
bool tdm_cli_parse_int(const char *s, int64_t lo, int64_t hi, int64_t *out);

/* Parses "a" or "a,b,c" into up to max floats; returns the count or -1. */
int tdm_cli_parse_floats(const char *s, float *out, int max);

/* Prints "tandem CMD: message" to stderr and returns code. */
int tdm_cli_fail(const char *cmd, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Copies name into buf replacing every char outside [A-Za-z0-9_.-] with '_'. */
void tdm_cli_sanitize(const char *name, char *buf, size_t len);

/* True when arg is --help or -h. */
bool tdm_cli_is_help(const char *arg);

/* Creates a directory and its parents (like mkdir -p); false on failure. */
bool tdm_cli_mkdirs(const char *path);

/* Sorts doubles ascending (for percentiles). */
void tdm_cli_sort_doubles(double *v, int64_t n);

/* Percentile q in [0,1] of sorted values (nearest rank). */
double tdm_cli_percentile(const double *sorted, int64_t n, double q);

#endif

/*
 * CLI helpers (see cli_util.h).
 */
#include "cli_util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

bool tdm_cli_parse_int(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    if (s == NULL || *s == '\0')
        return false;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < lo || v > hi)
        return false;
    *out = (int64_t)v;
    return true;
}

int tdm_cli_fail(const char *cmd, int code, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "tandem %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return code;
}

void tdm_cli_sanitize(const char *name, char *buf, size_t len)
{
    size_t i = 0;
    for (; name[i] != '\0' && i + 1 < len; i++) {
        char c = name[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '.' || c == '-';
        buf[i] = ok ? c : '_';
    }
    buf[i] = '\0';
}

bool tdm_cli_is_help(const char *arg)
{
    return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0;
}

bool tdm_cli_mkdirs(const char *path)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf)
        return false;
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == '\0') {
            char c = buf[i];
            buf[i] = '\0';
            if (mkdir(buf, 0777) != 0 && errno != EEXIST)
                return false;
            buf[i] = c;
        }
    }
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : (x > y ? 1 : 0);
}

void tdm_cli_sort_doubles(double *v, int64_t n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
}

double tdm_cli_percentile(const double *sorted, int64_t n, double q)
{
    if (n <= 0)
        return 0.0;
    int64_t k = (int64_t)(q * (double)n + 0.999999) - 1;
    if (k < 0)
        k = 0;
    if (k >= n)
        k = n - 1;
    return sorted[k];
}

int tdm_cli_parse_floats(const char *s, float *out, int max)
{
    int n = 0;
    const char *p = s;
    for (;;) {
        if (n == max)
            return -1;
        char *end;
        errno = 0;
        double v = strtod(p, &end);
        if (end == p || errno != 0)
            return -1;
        out[n++] = (float)v;
        if (*end == '\0')
            return n;
        if (*end != ',')
            return -1;
        p = end + 1;
    }
}

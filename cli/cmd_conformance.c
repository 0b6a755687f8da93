/*
 * tandem conformance: runs an ONNX backend node-test tree.
 *
 * Each test folder holds model.onnx and test_data_set_N folders with input_K.pb and
 * output_K.pb files (serialised TensorProtos). A test passes when every output
 * matches within ONNX's backend-test tolerance (|a-b| <= atol + rtol*|b|,
 * rtol 1e-3, atol 1e-7; NaNs must be at the same places; integers and bools
 * exactly). It is skipped when the model needs something this build does not
 * support (an op, a dtype, a subgraph): that is a status the engine reports
 * as TDM_ERR_UNSUPPORTED, with the reason printed under -v. Anything else
 * that goes wrong is a failure. The last line is "N passed, M failed, K skipped".
 */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "cli_util.h"
#include "engine/ir.h"
#include "engine/onnx/onnx.h"
#include "tandem/tandem.h"

#define MAX_IO 64

typedef enum { R_PASS, R_FAIL, R_SKIP } result;

static void conf_usage(FILE *f)
{
    fprintf(f,
            "usage: tandem conformance DIR [--filter SUBSTR]... [--threads N] [-v]\n"
            "\n"
            "Runs every ONNX node test under DIR (test_*/model.onnx with test_data_set_*)\n"
            "and ends with the line 'N passed, M failed, K skipped'. Exit status 1 when any\n"
            "test failed.\n"
            "  --filter S   only tests whose folder name contains S (repeatable: any)\n"
            "  --threads N  worker threads per session (default 1)\n"
            "  --exclude F  skip the tests listed in F (lines 'test_name  reason'; '#' comments)\n"
            "  -v           print each failure and skip with its reason\n"
            "  -vv          also print each pass\n");
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted list of entries of dir starting with prefix; NULL on error. */
static char **list_dir(const char *dir, const char *prefix, int *count)
{
    DIR *d = opendir(dir);
    *count = 0;
    if (d == NULL)
        return NULL;
    int cap = 64, n = 0;
    char **v = malloc(sizeof *v * (size_t)cap);
    struct dirent *e;
    while (v != NULL && (e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, prefix, strlen(prefix)) != 0)
            continue;
        if (n == cap) {
            cap *= 2;
            char **nv = realloc(v, sizeof *v * (size_t)cap);
            if (nv == NULL)
                break;
            v = nv;
        }
        v[n] = strdup(e->d_name);
        if (v[n] != NULL)
            n++;
    }
    closedir(d);
    if (v != NULL)
        qsort(v, (size_t)n, sizeof *v, cmp_str);
    *count = n;
    return v;
}

static void free_list(char **v, int n)
{
    for (int i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static tdm_status read_pb(const char *path, tdm_tensor *t, tdm_err *err)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return tdm_errf(err, TDM_ERR_IO, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (len < 0 || len > (1L << 30)) {
        fclose(f);
        return tdm_errf(err, TDM_ERR_IO, "%s: bad size", path);
    }
    void *buf = malloc((size_t)len + 1);
    if (buf == NULL) {
        fclose(f);
        return tdm_errf(err, TDM_ERR_NOMEM, "out of memory reading %s", path);
    }
    size_t got = fread(buf, 1, (size_t)len, f);
    fclose(f);
    if (got != (size_t)len) {
        free(buf);
        return tdm_errf(err, TDM_ERR_IO, "%s: short read", path);
    }
    char *name = NULL;
    tdm_status s = tdm_onnx_parse_tensor(buf, (size_t)len, t, &name, err);
    free(name);
    free(buf);
    return s;
}

static bool is_float(tdm_dtype d)
{
    return d == TDM_DTYPE_FLOAT32 || d == TDM_DTYPE_FLOAT64 || d == TDM_DTYPE_FLOAT16 ||
           d == TDM_DTYPE_BFLOAT16;
}

static double get_f(const tdm_tensor *t, int64_t i)
{
    switch (t->dtype) {
    case TDM_DTYPE_FLOAT32: return ((const float *)t->data)[i];
    case TDM_DTYPE_FLOAT64: return ((const double *)t->data)[i];
    case TDM_DTYPE_FLOAT16: return tdm_fp16_to_fp32(((const uint16_t *)t->data)[i]);
    case TDM_DTYPE_BFLOAT16: return tdm_bf16_to_fp32(((const uint16_t *)t->data)[i]);
    default: return 0;
    }
}

/* Compares got against want; on mismatch writes why into msg. */
static bool compare(const tdm_tensor *got, const tdm_tensor *want, char *msg, size_t len)
{
    char a[128], b[128];
    if (!tdm_tensor_same_shape(got, want)) {
        snprintf(msg, len, "got %s, expected %s", tdm_tensor_shape_str(got, a, sizeof a),
                 tdm_tensor_shape_str(want, b, sizeof b));
        return false;
    }
    int64_t n = tdm_tensor_numel(want);
    if (is_float(want->dtype)) {
        for (int64_t i = 0; i < n; i++) {
            double x = get_f(got, i), y = get_f(want, i);
            if (isnan(y) || isnan(x)) {
                if (isnan(x) != isnan(y)) {
                    snprintf(msg, len, "element %lld: got %g, expected %g", (long long)i, x, y);
                    return false;
                }
                continue;
            }
            if (isinf(y) || isinf(x)) {
                if (x != y) {
                    snprintf(msg, len, "element %lld: got %g, expected %g", (long long)i, x, y);
                    return false;
                }
                continue;
            }
            if (fabs(x - y) > 1e-7 + 1e-3 * fabs(y)) {
                snprintf(msg, len, "element %lld: got %.9g, expected %.9g", (long long)i, x, y);
                return false;
            }
        }
        return true;
    }
    size_t bytes = tdm_tensor_nbytes(want);
    if (bytes > 0 && memcmp(got->data, want->data, bytes) != 0) {
        for (int64_t i = 0; i < n; i++) {
            size_t es = tdm_dtype_size(want->dtype);
            if (memcmp((const char *)got->data + i * es, (const char *)want->data + i * es, es)) {
                snprintf(msg, len, "element %lld differs", (long long)i);
                break;
            }
        }
        return false;
    }
    return true;
}

/* Documented exclusions: "test_name reason..." per line. */
typedef struct exclusions {
    char **names;
    char **reasons;
    int n;
} exclusions;

static void excl_free(exclusions *ex)
{
    for (int i = 0; i < ex->n; i++) {
        free(ex->names[i]);
        free(ex->reasons[i]);
    }
    free(ex->names);
    free(ex->reasons);
}

static bool excl_load(const char *path, exclusions *ex)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false;
    char line[1024];
    bool ok = true;
    while (ok && fgets(line, sizeof line, f) != NULL) {
        char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '#' || *p == '\n' || *p == '\0')
            continue;
        char *end = p;
        while (*end && *end != ' ' && *end != '\t' && *end != '\n')
            end++;
        char *reason = end;
        while (*reason == ' ' || *reason == '\t')
            reason++;
        reason[strcspn(reason, "\n")] = '\0';
        char **nn = realloc(ex->names, sizeof *nn * (size_t)(ex->n + 1));
        char **nr = nn ? realloc(ex->reasons, sizeof *nr * (size_t)(ex->n + 1)) : NULL;
        if (nn != NULL)
            ex->names = nn;
        if (nr == NULL) {
            ok = false;
            break;
        }
        ex->reasons = nr;
        ex->names[ex->n] = strndup(p, (size_t)(end - p));
        ex->reasons[ex->n] = strdup(*reason ? reason : "excluded");
        if (ex->names[ex->n] == NULL || ex->reasons[ex->n] == NULL) {
            free(ex->names[ex->n]);
            free(ex->reasons[ex->n]);
            ok = false;
            break;
        }
        ex->n++;
    }
    fclose(f);
    return ok;
}

static const char *excl_find(const exclusions *ex, const char *name)
{
    for (int i = 0; i < ex->n; i++)
        if (strcmp(ex->names[i], name) == 0)
            return ex->reasons[i];
    return NULL;
}

static result run_test(const char *dir, int threads, char *why, size_t why_len)
{
    char path[4096];
    tdm_err err = {{0}};
    tdm_graph *g = NULL;
    tdm_session *s = NULL;
    result r = R_PASS;
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    tdm_status st = tdm_graph_load(path, NULL, &g, &err);
    if (st != TDM_OK) {
        snprintf(why, why_len, "load: %s", err.msg);
        return st == TDM_ERR_UNSUPPORTED ? R_SKIP : R_FAIL;
    }
    tdm_session_options so = {.threads = threads};
    st = tdm_session_create(g, &so, &s, &err);
    if (st != TDM_OK) {
        snprintf(why, why_len, "%s", err.msg);
        tdm_graph_free(g);
        return st == TDM_ERR_UNSUPPORTED ? R_SKIP : R_FAIL;
    }
    int n_sets = 0;
    char **sets = list_dir(dir, "test_data_set_", &n_sets);
    if (n_sets == 0) {
        snprintf(why, why_len, "no test_data_set_* folder");
        r = R_FAIL;
    }
    for (int ds = 0; ds < n_sets && r == R_PASS; ds++) {
        tdm_tensor in[MAX_IO], want[MAX_IO], got[MAX_IO];
        const char *names[MAX_IO];
        memset(in, 0, sizeof in);
        memset(want, 0, sizeof want);
        memset(got, 0, sizeof got);
        int n_in = 0, n_want = 0;
        char sub[4096];
        snprintf(sub, sizeof sub, "%s/%s", dir, sets[ds]);
        /* Inputs bind to graph inputs in declaration order. */
        for (; n_in < MAX_IO && n_in < g->n_inputs; n_in++) {
            snprintf(path, sizeof path, "%s/input_%d.pb", sub, n_in);
            struct stat sb;
            if (stat(path, &sb) != 0)
                break;
            st = read_pb(path, &in[n_in], &err);
            if (st != TDM_OK) {
                snprintf(why, why_len, "%s: %s", path, err.msg);
                r = st == TDM_ERR_UNSUPPORTED ? R_SKIP : R_FAIL;
                break;
            }
            names[n_in] = g->values[g->inputs[n_in]].name;
        }
        for (; r == R_PASS && n_want < MAX_IO && n_want < g->n_outputs; n_want++) {
            snprintf(path, sizeof path, "%s/output_%d.pb", sub, n_want);
            st = read_pb(path, &want[n_want], &err);
            if (st != TDM_OK) {
                snprintf(why, why_len, "%s: %s", path, err.msg);
                r = st == TDM_ERR_UNSUPPORTED ? R_SKIP : R_FAIL;
                break;
            }
        }
        if (r == R_PASS) {
            st = tdm_session_run(s, n_in, names, in, got, &err);
            if (st != TDM_OK) {
                snprintf(why, why_len, "%s", err.msg);
                r = st == TDM_ERR_UNSUPPORTED ? R_SKIP : R_FAIL;
            }
        }
        for (int k = 0; k < n_want && r == R_PASS; k++) {
            char msg[512];
            if (!compare(&got[k], &want[k], msg, sizeof msg)) {
                snprintf(why, why_len, "%s output %d ('%s'): %s", sets[ds], k,
                         g->values[g->outputs[k]].name, msg);
                r = R_FAIL;
            }
        }
        for (int k = 0; k < MAX_IO; k++) {
            tdm_tensor_free(&in[k]);
            tdm_tensor_free(&want[k]);
            tdm_tensor_free(&got[k]);
        }
    }
    free_list(sets, n_sets);
    tdm_session_free(s);
    tdm_graph_free(g);
    return r;
}

int tdm_cmd_conformance(int argc, char **argv)
{
    const char *root = NULL, *excl_path = NULL;
    const char *filters[64];
    int n_filters = 0, verbose = 0;
    int64_t threads = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (tdm_cli_is_help(a)) {
            conf_usage(stdout);
            return TDM_EXIT_OK;
        } else if (strcmp(a, "--filter") == 0) {
            if (i + 1 >= argc || n_filters == 64)
                return tdm_cli_fail("conformance", TDM_EXIT_USAGE, "--filter needs a value");
            filters[n_filters++] = argv[++i];
        } else if (strcmp(a, "--threads") == 0) {
            if (i + 1 >= argc || !tdm_cli_parse_int(argv[i + 1], 1, 256, &threads))
                return tdm_cli_fail("conformance", TDM_EXIT_USAGE, "--threads needs 1..256");
            i++;
        } else if (strcmp(a, "--exclude") == 0) {
            if (i + 1 >= argc)
                return tdm_cli_fail("conformance", TDM_EXIT_USAGE, "--exclude needs a file");
            excl_path = argv[++i];
        } else if (strcmp(a, "-v") == 0) {
            verbose = 1;
        } else if (strcmp(a, "-vv") == 0) {
            verbose = 2;
        } else if (a[0] == '-') {
            return tdm_cli_fail("conformance", TDM_EXIT_USAGE, "unknown option '%s'", a);
        } else if (root == NULL) {
            root = a;
        } else {
            return tdm_cli_fail("conformance", TDM_EXIT_USAGE, "unexpected argument '%s'", a);
        }
    }
    if (root == NULL) {
        conf_usage(stderr);
        return TDM_EXIT_USAGE;
    }
    struct stat sb;
    if (stat(root, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return tdm_cli_fail("conformance", TDM_EXIT_FAIL, "%s: not a directory", root);
    exclusions ex = {NULL, NULL, 0};
    if (excl_path != NULL && !excl_load(excl_path, &ex)) {
        excl_free(&ex);
        return tdm_cli_fail("conformance", TDM_EXIT_FAIL, "%s: cannot read", excl_path);
    }
    int n = 0;
    char **tests = list_dir(root, "test_", &n);
    if (tests == NULL) {
        excl_free(&ex);
        return tdm_cli_fail("conformance", TDM_EXIT_FAIL, "%s: cannot list", root);
    }
    int passed = 0, failed = 0, skipped = 0;
    for (int i = 0; i < n; i++) {
        bool match = n_filters == 0;
        for (int f = 0; f < n_filters && !match; f++)
            match = strstr(tests[i], filters[f]) != NULL;
        if (!match)
            continue;
        char dir[4096], why[1024] = "";
        snprintf(dir, sizeof dir, "%s/%s", root, tests[i]);
        const char *reason = excl_find(&ex, tests[i]);
        result r;
        if (reason != NULL) {
            snprintf(why, sizeof why, "excluded: %s", reason);
            r = R_SKIP;
        } else {
            r = run_test(dir, (int)threads, why, sizeof why);
        }
        if (r == R_PASS) {
            passed++;
            if (verbose >= 2)
                printf("PASS %s\n", tests[i]);
        } else if (r == R_FAIL) {
            failed++;
            if (verbose)
                printf("FAIL %s: %s\n", tests[i], why);
        } else {
            skipped++;
            if (verbose)
                printf("SKIP %s: %s\n", tests[i], why);
        }
        fflush(stdout);
    }
    free_list(tests, n);
    excl_free(&ex);
    printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    return failed > 0 ? TDM_EXIT_FAIL : TDM_EXIT_OK;
}

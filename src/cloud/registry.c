/*
 * Loading the model repository into runnable entries (see registry.h).
 *
 * Loading is all-or-nothing per snapshot: every version directory is loaded, its model.yaml
 * and manifests checked against the graph (a cut tensor the graph does not have is an error
 * now, not at the first request), and only then does the snapshot become visible. Engine
 * sessions are made per batch worker at load time, so the first request pays no setup.
 */
#include "cloud/registry.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/yaml.h"

struct tdm_gw_models {
    atomic_int refs;
    int n;
    tdm_gw_version *v; /* sorted by model name, then version ascending */
};

struct tdm_gw_registry {
    const tdm_gw_config *cfg;
    tdm_gw_metrics *metrics;
    pthread_mutex_t mu;        /* guards cur */
    pthread_mutex_t reload_mu; /* one reload at a time */
    tdm_gw_models *cur;
};

/* ---- small helpers ---------------------------------------------------------------- */

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Names of the entries of dir (no dot files), sorted; *n receives the count. */
static tdm_status list_dir(const char *dir, bool want_dirs, char ***out, int *n, tdm_err *err)
{
    *out = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return tdm_errf(err, TDM_ERR_IO, "%s: cannot open directory: %s", dir, strerror(errno));
    char **names = NULL;
    int cnt = 0, cap = 0;
    struct dirent *de;
    tdm_status st = TDM_OK;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        if (want_dirs ? !is_dir(path) : !is_file(path))
            continue;
        if (cnt == cap) {
            cap = cap ? cap * 2 : 16;
            char **nn = realloc(names, sizeof *names * (size_t)cap);
            if (!nn) {
                st = tdm_errf(err, TDM_ERR_NOMEM, "out of memory listing %s", dir);
                break;
            }
            names = nn;
        }
        names[cnt] = strdup(de->d_name);
        if (!names[cnt]) {
            st = tdm_errf(err, TDM_ERR_NOMEM, "out of memory listing %s", dir);
            break;
        }
        cnt++;
    }
    closedir(d);
    if (st != TDM_OK) {
        for (int i = 0; i < cnt; i++)
            free(names[i]);
        free(names);
        return st;
    }
    if (cnt)
        qsort(names, (size_t)cnt, sizeof *names, cmp_str);
    *out = names;
    *n = cnt;
    return TDM_OK;
}

static void free_names(char **names, int n)
{
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* Versions compare numerically when both are numbers ("2" < "10"), else as strings. */
static int cmp_version(const char *a, const char *b)
{
    char *ea, *eb;
    long long x = strtoll(a, &ea, 10), y = strtoll(b, &eb, 10);
    if (*a && *b && !*ea && !*eb)
        return (x > y) - (x < y);
    return strcmp(a, b);
}

static int cmp_versions(const void *pa, const void *pb)
{
    const tdm_gw_version *a = pa, *b = pb;
    int c = strcmp(a->model, b->model);
    return c ? c : cmp_version(a->version, b->version);
}

/* Copies a JSON array of strings; NULL array gives 0 items. */
static tdm_status string_list(const tdm_json *arr, const char *what, char ***out, int *n,
                              tdm_err *err)
{
    *out = NULL;
    *n = 0;
    if (!arr)
        return TDM_OK;
    if (arr->type != TDM_JSON_ARRAY)
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "%s: expected a list", what);
    char **v = calloc(arr->len ? arr->len : 1, sizeof *v);
    if (!v)
        return tdm_errf(err, TDM_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < arr->len; i++) {
        const tdm_json *it = &arr->items[i];
        const char *s = tdm_json_string(it, NULL);
        if (!s && it->type == TDM_JSON_OBJECT)
            s = tdm_json_string(tdm_json_get(it, "name"), NULL);
        if (!s || !(v[i] = strdup(s))) {
            free_names(v, (int)i);
            return s ? tdm_errf(err, TDM_ERR_NOMEM, "out of memory")
                     : tdm_errf(err, TDM_ERR_INVALID_ARG, "%s[%zu]: expected a string", what, i);
        }
    }
    *out = v;
    *n = (int)arr->len;
    return TDM_OK;
}

/* ---- entries ------------------------------------------------------------------------ */

static tdm_status entry_run(void *ctx, int worker, int n_in, const tdm_tensor *in, int n_out,
                            tdm_tensor *out, tdm_err *err)
{
    tdm_gw_entry *e = ctx;
    return tdm_session_run_range(e->sessions[worker], n_in, (const char *const *)e->in_names, in,
                                 n_out, (const char *const *)e->out_names, out, err);
}

static void entry_free(tdm_gw_entry *e)
{
    tdm_gw_batcher_free(e->batcher); /* finishes queued jobs first */
    for (int i = 0; i < e->n_sessions; i++)
        tdm_session_free(e->sessions[i]);
    free(e->sessions);
    for (int i = 0; i < e->n_in; i++)
        free(e->in_names[i]);
    for (int i = 0; i < e->n_out; i++)
        free(e->out_names[i]);
    memset(e, 0, sizeof *e);
}

static tdm_status entry_start(tdm_gw_version *v, tdm_gw_entry *e, const tdm_gw_config *cfg,
                              tdm_gw_metrics *metrics, bool batchable, tdm_err *err)
{
    e->sessions = calloc((size_t)cfg->workers, sizeof *e->sessions);
    if (!e->sessions)
        return tdm_errf(err, TDM_ERR_NOMEM, "out of memory");
    tdm_session_options so = {.threads = cfg->engine_threads};
    for (int i = 0; i < cfg->workers; i++) {
        tdm_status st = tdm_session_create(v->graph, &so, &e->sessions[i], err);
        if (st != TDM_OK)
            return st;
        e->n_sessions++;
    }
    char label[160];
    snprintf(label, sizeof label, "%s/%s/%s", v->model, v->version, e->name);
    tdm_gw_batcher_opts o = {
        .run = entry_run,
        .run_ctx = e,
        .n_in = e->n_in,
        .n_out = e->n_out,
        .workers = cfg->workers,
        .batchable = batchable && cfg->batching,
        .pad_axis = v->text_input && strcmp(e->name, "full") == 0 ? 1 : -1,
        .max_batch = cfg->batching ? cfg->max_batch : 1,
        .max_delay_ms = cfg->max_queue_delay_ms,
        .adaptive = cfg->adaptive,
        .slo_ms = cfg->slo_p99_ms,
        .max_queue = cfg->max_queue,
        .metrics = metrics,
        .label = label,
    };
    return tdm_gw_batcher_create(&o, &e->batcher, err);
}

/* The "full" entry: graph inputs -> graph outputs. */
static tdm_status full_entry(tdm_gw_version *v, tdm_gw_entry *e, tdm_err *err)
{
    snprintf(e->name, sizeof e->name, "full");
    int ni = tdm_graph_num_inputs(v->graph), no = tdm_graph_num_outputs(v->graph);
    if (ni < 1 || ni > TDM_GW_MAX_IO || no < 1 || no > TDM_GW_MAX_IO)
        return tdm_errf(err, TDM_ERR_UNSUPPORTED, "%d inputs and %d outputs (1..%d supported)", ni,
                        no, TDM_GW_MAX_IO);
    for (int i = 0; i < ni; i++) {
        tdm_status st = tdm_graph_input_info(v->graph, i, &e->in_info[i]);
        if (st != TDM_OK)
            return tdm_errf(err, st, "input %d: no info", i);
        if (!(e->in_names[i] = strdup(e->in_info[i].name)))
            return tdm_errf(err, TDM_ERR_NOMEM, "out of memory");
        e->in_info[i].name = e->in_names[i];
        for (int d = 0; d < TDM_MAX_DIMS; d++)
            e->in_info[i].dim_names[d] = NULL;
        e->n_in++;
    }
    for (int i = 0; i < no; i++) {
        tdm_value_info info;
        tdm_status st = tdm_graph_output_info(v->graph, i, &info);
        if (st != TDM_OK)
            return tdm_errf(err, st, "output %d: no info", i);
        if (!(e->out_names[i] = strdup(info.name)))
            return tdm_errf(err, TDM_ERR_NOMEM, "out of memory");
        e->n_out++;
    }
    return TDM_OK;
}

/* A cut entry: cut tensors -> graph outputs. tensors is a JSON list of names or of
 * {name, shape|dims, dtype} objects. */
static tdm_status cut_entry(tdm_gw_version *v, tdm_gw_entry *e, const char *name,
                            const tdm_json *tensors, tdm_err *err)
{
    snprintf(e->name, sizeof e->name, "%s", name);
    if (!tensors || tensors->type != TDM_JSON_ARRAY || tensors->len == 0)
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "cut '%s': expected a non-empty list of tensors",
                        name);
    if (tensors->len > TDM_GW_MAX_IO)
        return tdm_errf(err, TDM_ERR_UNSUPPORTED, "cut '%s': %zu tensors (at most %d)", name,
                        tensors->len, TDM_GW_MAX_IO);
    for (size_t i = 0; i < tensors->len; i++) {
        const tdm_json *t = &tensors->items[i];
        const char *tn = tdm_json_string(t, NULL);
        tdm_value_info *info = &e->in_info[i];
        memset(info, 0, sizeof *info);
        info->dtype = TDM_DTYPE_FLOAT32; /* the codec decodes to float32 */
        info->ndim = -1;
        if (!tn && t->type == TDM_JSON_OBJECT) {
            tn = tdm_json_string(tdm_json_get(t, "name"), NULL);
            const tdm_json *sh = tdm_json_get(t, "shape");
            if (!sh)
                sh = tdm_json_get(t, "dims");
            if (sh && sh->type == TDM_JSON_ARRAY && sh->len <= TDM_MAX_DIMS) {
                info->ndim = (int32_t)sh->len;
                for (size_t d = 0; d < sh->len; d++) {
                    int64_t x = -1;
                    if (!tdm_json_int(&sh->items[d], &x) || x < 0)
                        x = -1;                      /* symbolic */
                    info->dims[d] = d == 0 ? -1 : x; /* dim 0 is the batch */
                }
            }
        }
        if (!tn)
            return tdm_errf(err, TDM_ERR_INVALID_ARG, "cut '%s': tensor %zu has no name", name, i);
        if (!(e->in_names[i] = strdup(tn)))
            return tdm_errf(err, TDM_ERR_NOMEM, "out of memory");
        info->name = e->in_names[i];
        e->n_in++;
    }
    int no = tdm_graph_num_outputs(v->graph);
    for (int i = 0; i < no && i < TDM_GW_MAX_IO; i++) {
        tdm_value_info info;
        if (tdm_graph_output_info(v->graph, i, &info) != TDM_OK ||
            !(e->out_names[i] = strdup(info.name)))
            return tdm_errf(err, TDM_ERR_NOMEM, "out of memory");
        e->n_out++;
    }
    return TDM_OK;
}

/* The cut tensor list of a manifest written by `tandem split` (field names tolerated:
 * cut_tensors, tensors, cut, frontier). */
static const tdm_json *manifest_tensors(const tdm_json *root)
{
    static const char *const keys[] = {"cut_tensors", "tensors", "cut", "frontier"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const tdm_json *t = tdm_json_get(root, keys[i]);
        if (t && t->type == TDM_JSON_ARRAY)
            return t;
        if (t && t->type == TDM_JSON_OBJECT) { /* {"cut": {"tensors": [...]}} */
            const tdm_json *inner = tdm_json_get(t, "tensors");
            if (inner && inner->type == TDM_JSON_ARRAY)
                return inner;
        }
    }
    return NULL;
}

/* ---- versions ------------------------------------------------------------------------ */

static void version_free(tdm_gw_version *v)
{
    for (int i = 0; i < v->n_entries; i++)
        entry_free(&v->entries[i]);
    free(v->entries);
    free_names(v->labels, v->n_labels);
    free_names(v->exits, v->n_exits);
    tdm_tokenizer_free(v->tok);
    tdm_graph_free(v->graph);
    memset(v, 0, sizeof *v);
}

static tdm_status add_entry(tdm_gw_version *v, tdm_gw_entry **e, tdm_err *err)
{
    tdm_gw_entry *ne = realloc(v->entries, sizeof *ne * (size_t)(v->n_entries + 1));
    if (!ne)
        return tdm_errf(err, TDM_ERR_NOMEM, "out of memory");
    v->entries = ne;
    *e = &v->entries[v->n_entries++];
    memset(*e, 0, sizeof **e);
    return TDM_OK;
}

static tdm_status version_load(const tdm_gw_config *cfg, tdm_gw_metrics *metrics, tdm_gw_version *v,
                               tdm_err *err)
{
    tdm_status st = TDM_OK;
    tdm_json_doc *yaml = NULL;
    const tdm_json *y = NULL;
    char path[2048];
    snprintf(path, sizeof path, "%s/model.yaml", v->dir);
    if (is_file(path)) {
        st = tdm_yaml_read_file(path, &yaml, err);
        if (st != TDM_OK)
            return st;
        y = tdm_json_root(yaml);
        if (y->type != TDM_JSON_OBJECT) {
            tdm_json_free(yaml);
            return tdm_errf(err, TDM_ERR_INVALID_ARG, "%s: the top level must be a mapping", path);
        }
    }
    /* the model file */
    const char *file = tdm_json_string(tdm_json_get(y, "file"), NULL);
    if (file) {
        snprintf(v->file, sizeof v->file, "%s", file);
    } else {
        char **files;
        int nf;
        st = list_dir(v->dir, false, &files, &nf, err);
        if (st != TDM_OK)
            goto out;
        int found = 0;
        for (int i = 0; i < nf; i++) {
            size_t l = strlen(files[i]);
            if (l > 5 && strcmp(files[i] + l - 5, ".onnx") == 0) {
                if (!found)
                    snprintf(v->file, sizeof v->file, "%s", files[i]);
                found++;
            }
        }
        free_names(files, nf);
        if (found != 1) {
            st = tdm_errf(err, TDM_ERR_INVALID_ARG,
                          "%s: %s .onnx file; name one with 'file:' in model.yaml", v->dir,
                          found ? "more than one" : "no");
            goto out;
        }
    }
    snprintf(path, sizeof path, "%s/%s", v->dir, v->file);
    st = tdm_graph_load(path, NULL, &v->graph, err);
    if (st != TDM_OK)
        goto out;
    const char *task = tdm_json_string(tdm_json_get(y, "task"), NULL);
    v->task = TDM_GW_TASK_CLASSIFY;
    if (task && strcmp(task, "embed") == 0)
        v->task = TDM_GW_TASK_EMBED;
    else if (task && strcmp(task, "raw") == 0)
        v->task = TDM_GW_TASK_RAW;
    else if (task && strcmp(task, "classify") != 0) {
        st = tdm_errf(err, TDM_ERR_INVALID_ARG,
                      "%s/model.yaml: task '%s' (expected classify, "
                      "embed or raw)",
                      v->dir, task);
        goto out;
    }
    const char *input = tdm_json_string(tdm_json_get(y, "input"), NULL);
    v->text_input = input && strcmp(input, "text") == 0;
    if (input && !v->text_input && strcmp(input, "tensor") != 0) {
        st = tdm_errf(err, TDM_ERR_INVALID_ARG,
                      "%s/model.yaml: input '%s' (expected tensor or text)", v->dir, input);
        goto out;
    }
    int64_t msl = 256;
    const tdm_json *jm = tdm_json_get(y, "max_seq_len");
    if (jm && (!tdm_json_int(jm, &msl) || msl < 2 || msl > 100000)) {
        st = tdm_errf(err, TDM_ERR_INVALID_ARG, "%s/model.yaml: max_seq_len must be 2..100000",
                      v->dir);
        goto out;
    }
    v->max_seq_len = (int)msl;
    if (v->text_input) {
        const char *td = tdm_json_string(tdm_json_get(y, "tokenizer"), NULL);
        if (td && td[0] == '/')
            snprintf(path, sizeof path, "%s", td);
        else
            snprintf(path, sizeof path, "%s/%s", v->dir, td ? td : ".");
        st = tdm_tokenizer_load(path, &v->tok, err);
        if (st != TDM_OK)
            goto out;
    }
    st = string_list(tdm_json_get(y, "labels"), "labels", &v->labels, &v->n_labels, err);
    if (st == TDM_OK)
        st = string_list(tdm_json_get(y, "exits"), "exits", &v->exits, &v->n_exits, err);
    if (st != TDM_OK)
        goto out;

    /* entries: the whole model, then cuts from model.yaml, then manifests */
    tdm_gw_entry *e = NULL;
    if ((st = add_entry(v, &e, err)) != TDM_OK || (st = full_entry(v, e, err)) != TDM_OK)
        goto out;
    const tdm_json *cuts = tdm_json_get(y, "cuts");
    if (cuts && cuts->type != TDM_JSON_ARRAY) {
        st = tdm_errf(err, TDM_ERR_INVALID_ARG, "%s/model.yaml: cuts must be a list", v->dir);
        goto out;
    }
    for (size_t i = 0; cuts && i < cuts->len; i++) {
        const char *cn = tdm_json_string(tdm_json_get(&cuts->items[i], "name"), NULL);
        if (!cn) {
            st = tdm_errf(err, TDM_ERR_INVALID_ARG, "%s/model.yaml: cuts[%zu] has no name", v->dir,
                          i);
            goto out;
        }
        if ((st = add_entry(v, &e, err)) != TDM_OK ||
            (st = cut_entry(v, e, cn, tdm_json_get(&cuts->items[i], "tensors"), err)) != TDM_OK)
            goto out;
    }
    char **subs;
    int ns;
    st = list_dir(v->dir, true, &subs, &ns, err);
    if (st != TDM_OK)
        goto out;
    for (int i = 0; i < ns && st == TDM_OK; i++) {
        snprintf(path, sizeof path, "%s/%s/manifest.json", v->dir, subs[i]);
        if (!is_file(path))
            continue;
        tdm_json_doc *md = NULL;
        st = tdm_yaml_read_file(path, &md, err); /* JSON is YAML */
        if (st != TDM_OK)
            break;
        const tdm_json *tensors = manifest_tensors(tdm_json_root(md));
        if (!tensors)
            st = tdm_errf(err, TDM_ERR_INVALID_ARG, "%s: no list of cut tensors (cut_tensors)",
                          path);
        else if ((st = add_entry(v, &e, err)) == TDM_OK)
            st = cut_entry(v, e, subs[i], tensors, err);
        if (st != TDM_OK)
            tdm_err_prefix(err, "%s", path);
        tdm_json_free(md);
    }
    free_names(subs, ns);
    if (st != TDM_OK)
        goto out;
    /* start a batcher per entry; the whole model batches when its inputs' dim 0 is free */
    for (int i = 0; i < v->n_entries && st == TDM_OK; i++) {
        tdm_gw_entry *en = &v->entries[i];
        bool batchable = true;
        if (i == 0)
            for (int k = 0; k < en->n_in; k++)
                if (en->in_info[k].ndim < 1 || en->in_info[k].dims[0] >= 0)
                    batchable = false;
        for (int a = 0; a < i && st == TDM_OK; a++)
            if (strcmp(v->entries[a].name, en->name) == 0)
                st = tdm_errf(err, TDM_ERR_INVALID_ARG, "two cuts named '%s'", en->name);
        if (st == TDM_OK)
            st = entry_start(v, en, cfg, metrics, batchable, err);
    }
out:
    tdm_json_free(yaml);
    if (st != TDM_OK)
        tdm_err_prefix(err, "model %s version %s", v->model, v->version);
    return st;
}

void tdm_gw_models_release(tdm_gw_models *m)
{
    if (!m || atomic_fetch_sub(&m->refs, 1) != 1)
        return;
    for (int i = 0; i < m->n; i++)
        version_free(&m->v[i]);
    free(m->v);
    free(m);
}

tdm_status tdm_gw_models_load(const tdm_gw_config *cfg, tdm_gw_metrics *metrics,
                              tdm_gw_models **out, tdm_err *err)
{
    *out = NULL;
    tdm_gw_models *m = calloc(1, sizeof *m);
    if (!m)
        return tdm_errf(err, TDM_ERR_NOMEM, "out of memory");
    atomic_init(&m->refs, 1);
    char **models = NULL;
    int nm = 0;
    tdm_status st = list_dir(cfg->model_repo, true, &models, &nm, err);
    for (int i = 0; i < nm && st == TDM_OK; i++) {
        char mdir[2048];
        snprintf(mdir, sizeof mdir, "%s/%s", cfg->model_repo, models[i]);
        char **vers = NULL;
        int nv = 0;
        st = list_dir(mdir, true, &vers, &nv, err);
        for (int j = 0; j < nv && st == TDM_OK; j++) {
            tdm_gw_version *nvv = realloc(m->v, sizeof *nvv * (size_t)(m->n + 1));
            if (!nvv) {
                st = tdm_errf(err, TDM_ERR_NOMEM, "out of memory");
                break;
            }
            m->v = nvv;
            tdm_gw_version *v = &m->v[m->n++];
            memset(v, 0, sizeof *v);
            snprintf(v->model, sizeof v->model, "%s", models[i]);
            snprintf(v->version, sizeof v->version, "%s", vers[j]);
            snprintf(v->dir, sizeof v->dir, "%s/%s", mdir, vers[j]);
            st = version_load(cfg, metrics, v, err);
        }
        free_names(vers, nv);
    }
    free_names(models, nm);
    if (st != TDM_OK) {
        tdm_gw_models_release(m);
        return st;
    }
    /* sorting moves versions: entries point back at nothing inside a version, but batchers
     * hold their entry as run context, so sort an index instead of the array */
    if (m->n > 1) {
        tdm_gw_version *sorted = malloc(sizeof *sorted * (size_t)m->n);
        if (!sorted) {
            tdm_gw_models_release(m);
            return tdm_errf(err, TDM_ERR_NOMEM, "out of memory");
        }
        memcpy(sorted, m->v, sizeof *sorted * (size_t)m->n);
        qsort(sorted, (size_t)m->n, sizeof *sorted, cmp_versions);
        /* versions are plain structs whose entries array is separately allocated, so moving
         * the struct does not move the entries the batchers point at */
        free(m->v);
        m->v = sorted;
    }
    *out = m;
    return TDM_OK;
}

int tdm_gw_models_count(const tdm_gw_models *m)
{
    return m ? m->n : 0;
}

const tdm_gw_version *tdm_gw_models_find(const tdm_gw_models *m, const char *model,
                                         const char *version)
{
    const tdm_gw_version *best = NULL;
    for (int i = 0; i < m->n; i++) {
        const tdm_gw_version *v = &m->v[i];
        if (strcmp(v->model, model) != 0)
            continue;
        if (version && version[0]) {
            if (strcmp(v->version, version) == 0)
                return v;
        } else {
            best = v; /* sorted ascending: the last is the highest */
        }
    }
    return best;
}

const tdm_gw_entry *tdm_gw_version_entry(const tdm_gw_version *v, const char *name)
{
    for (int i = 0; i < v->n_entries; i++)
        if (strcmp(v->entries[i].name, name) == 0)
            return &v->entries[i];
    return NULL;
}

static void json_str(tdm_json_buf *b, const char *s)
{
    tdm_json_buf_string(b, s, strlen(s));
}

static void json_info(tdm_json_buf *b, const tdm_value_info *info)
{
    tdm_json_buf_raw(b, "{\"name\":", 8);
    json_str(b, info->name);
    tdm_json_buf_raw(b, ",\"dtype\":", 9);
    json_str(b, tdm_dtype_name(info->dtype));
    tdm_json_buf_raw(b, ",\"shape\":", 9);
    if (info->ndim < 0) {
        tdm_json_buf_raw(b, "null", 4);
    } else {
        tdm_json_buf_raw(b, "[", 1);
        for (int d = 0; d < info->ndim; d++) {
            if (d)
                tdm_json_buf_raw(b, ",", 1);
            if (info->dims[d] < 0)
                tdm_json_buf_raw(b, "null", 4);
            else
                tdm_json_buf_i64(b, info->dims[d]);
        }
        tdm_json_buf_raw(b, "]", 1);
    }
    tdm_json_buf_raw(b, "}", 1);
}

void tdm_gw_models_list_json(const tdm_gw_models *m, tdm_json_buf *b)
{
    static const char *const tasks[] = {"classify", "embed", "raw"};
    tdm_json_buf_raw(b, "{\"models\":[", 11);
    for (int i = 0; i < m->n; i++) {
        const tdm_gw_version *v = &m->v[i];
        bool first_of_model = i == 0 || strcmp(m->v[i - 1].model, v->model) != 0;
        if (first_of_model) {
            if (i)
                tdm_json_buf_raw(b, "]},", 3);
            tdm_json_buf_raw(b, "{\"name\":", 8);
            json_str(b, v->model);
            tdm_json_buf_raw(b, ",\"versions\":[", 13);
        } else {
            tdm_json_buf_raw(b, ",", 1);
        }
        tdm_json_buf_raw(b, "{\"version\":", 11);
        json_str(b, v->version);
        tdm_json_buf_raw(b, ",\"file\":", 8);
        json_str(b, v->file);
        tdm_json_buf_raw(b, ",\"task\":", 8);
        json_str(b, tasks[v->task]);
        tdm_json_buf_raw(b, ",\"input\":", 9);
        json_str(b, v->text_input ? "text" : "tensor");
        const tdm_gw_entry *full = &v->entries[0];
        tdm_json_buf_raw(b, ",\"inputs\":[", 11);
        for (int k = 0; k < full->n_in; k++) {
            if (k)
                tdm_json_buf_raw(b, ",", 1);
            json_info(b, &full->in_info[k]);
        }
        tdm_json_buf_raw(b, "],\"outputs\":[", 13);
        for (int k = 0; k < full->n_out; k++) {
            if (k)
                tdm_json_buf_raw(b, ",", 1);
            json_str(b, full->out_names[k]);
        }
        tdm_json_buf_raw(b, "],\"batch_limit\":", 16);
        tdm_json_buf_i64(b, tdm_gw_batcher_limit(full->batcher));
        tdm_json_buf_raw(b, ",\"cuts\":[", 9);
        for (int c = 1; c < v->n_entries; c++) {
            const tdm_gw_entry *e = &v->entries[c];
            if (c > 1)
                tdm_json_buf_raw(b, ",", 1);
            tdm_json_buf_raw(b, "{\"name\":", 8);
            json_str(b, e->name);
            tdm_json_buf_raw(b, ",\"tensors\":[", 12);
            for (int k = 0; k < e->n_in; k++) {
                if (k)
                    tdm_json_buf_raw(b, ",", 1);
                json_info(b, &e->in_info[k]);
            }
            tdm_json_buf_raw(b, "]}", 2);
        }
        tdm_json_buf_raw(b, "],\"exits\":[", 11);
        for (int k = 0; k < v->n_exits; k++) {
            if (k)
                tdm_json_buf_raw(b, ",", 1);
            json_str(b, v->exits[k]);
        }
        tdm_json_buf_raw(b, "]}", 2);
    }
    if (m->n)
        tdm_json_buf_raw(b, "]}", 2);
    tdm_json_buf_raw(b, "]}\n", 3);
}

/* ---- the swappable registry ------------------------------------------------------------ */

tdm_status tdm_gw_registry_create(const tdm_gw_config *cfg, tdm_gw_metrics *metrics,
                                  tdm_gw_registry **out, tdm_err *err)
{
    *out = NULL;
    if (!is_dir(cfg->model_repo))
        return tdm_errf(err, TDM_ERR_NOT_FOUND, "model repository %s: not a directory",
                        cfg->model_repo);
    tdm_gw_registry *r = calloc(1, sizeof *r);
    if (!r)
        return tdm_errf(err, TDM_ERR_NOMEM, "out of memory");
    r->cfg = cfg;
    r->metrics = metrics;
    pthread_mutex_init(&r->mu, NULL);
    pthread_mutex_init(&r->reload_mu, NULL);
    tdm_status st = tdm_gw_models_load(cfg, metrics, &r->cur, err);
    if (st != TDM_OK) {
        tdm_gw_registry_free(r);
        return st;
    }
    *out = r;
    return TDM_OK;
}

void tdm_gw_registry_free(tdm_gw_registry *r)
{
    if (!r)
        return;
    tdm_gw_models_release(r->cur);
    pthread_mutex_destroy(&r->mu);
    pthread_mutex_destroy(&r->reload_mu);
    free(r);
}

tdm_status tdm_gw_registry_reload(tdm_gw_registry *r, tdm_err *err)
{
    pthread_mutex_lock(&r->reload_mu);
    tdm_gw_models *fresh = NULL;
    tdm_status st = tdm_gw_models_load(r->cfg, r->metrics, &fresh, err);
    if (st == TDM_OK) {
        pthread_mutex_lock(&r->mu);
        tdm_gw_models *old = r->cur;
        r->cur = fresh;
        pthread_mutex_unlock(&r->mu);
        tdm_gw_models_release(old);
    }
    pthread_mutex_unlock(&r->reload_mu);
    return st;
}

tdm_gw_models *tdm_gw_registry_acquire(tdm_gw_registry *r)
{
    pthread_mutex_lock(&r->mu);
    tdm_gw_models *m = r->cur;
    atomic_fetch_add(&m->refs, 1);
    pthread_mutex_unlock(&r->mu);
    return m;
}

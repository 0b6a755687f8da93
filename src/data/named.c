/*
 * Datasets by name: where "mnist", "fashion" and "cifar" live and how their
 * files are found, so that every command (eval, exits, cascade, codec sweep,
 * the demo) reads them the same way instead of each growing its own rules.
 *
 * A path may be a folder holding the idx pair of the wanted split
 * ("t10k-" for test, "train-" for train, gzip-compressed or not), an
 * *images-idx3* file whose labels file is found by name, or a .csv (label
 * plus HWC values per line). Fashion-MNIST defaults to the folder of Debian's
 * dataset-fashion-mnist package.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "tandem/data.h"

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

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Finds dir/base.gz or dir/base. */
static bool find_in_dir(const char *dir, const char *base, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s.gz", dir, base);
    if (is_file(buf))
        return true;
    snprintf(buf, len, "%s/%s", dir, base);
    return is_file(buf);
}

const char *tdm_dataset_default_path(const char *name)
{
    if (name != NULL && strcmp(name, "fashion") == 0)
        return TDM_FASHION_MNIST_DIR;
    return NULL;
}

tdm_status tdm_dataset_load(const char *name, const char *path, bool train,
                            const tdm_data_norm *norm, int64_t limit, tdm_dataset *ds, tdm_err *err)
{
    if (name == NULL || (strcmp(name, "mnist") && strcmp(name, "fashion") && strcmp(name, "cifar")))
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "dataset '%s' is not mnist, fashion or cifar",
                        name ? name : "(null)");
    if (path == NULL)
        path = tdm_dataset_default_path(name);
    if (path == NULL)
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "dataset %s: a path is required", name);
    const bool cifar = strcmp(name, "cifar") == 0;
    const int c = cifar ? 3 : 1, hw = cifar ? 32 : 28;
    if (ends_with(path, ".csv") || ends_with(path, ".csv.gz"))
        return tdm_csv_load(path, c, hw, hw, norm, limit, ds, err);
    if (cifar)
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "%s: the cifar dataset is read from a .csv file",
                        path);
    char img[4096], lab[4096];
    if (is_dir(path)) {
        const char *pre = train ? "train" : "t10k";
        char ib[64], lb[64];
        snprintf(ib, sizeof ib, "%s-images-idx3-ubyte", pre);
        snprintf(lb, sizeof lb, "%s-labels-idx1-ubyte", pre);
        if (!find_in_dir(path, ib, img, sizeof img) || !find_in_dir(path, lb, lab, sizeof lab))
            return tdm_errf(err, TDM_ERR_NOT_FOUND, "%s: no %s[.gz] and %s[.gz]", path, ib, lb);
    } else {
        const char *at = strstr(path, "images-idx3");
        if (at == NULL)
            return tdm_errf(err, TDM_ERR_INVALID_ARG,
                            "%s: want a folder, an *images-idx3* file or a .csv", path);
        snprintf(img, sizeof img, "%s", path);
        snprintf(lab, sizeof lab, "%.*slabels-idx1%s", (int)(at - path), path,
                 at + strlen("images-idx3"));
    }
    return tdm_idx_load(img, lab, norm, limit, ds, err);
}

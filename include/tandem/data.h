/*
 * Labelled image datasets for `tandem eval` and the accuracy tests.
 *
 * Two formats are read: the idx files of MNIST and Fashion-MNIST (raw or
 * gzip-compressed, told apart by their content, not their name) and CSV
 * files of one image per line, "label,v0,v1,..." with the pixel values
 * interleaved HWC (the CIFAR-10 and MNIST csv files of ../shared/data).
 * Both produce the same thing: a float32 tensor [N, C, H, W] already
 * normalised the way a model expects it, and N integer labels.
 *
 * Normalisation is x = (v / scale - mean[c]) / std[c] per channel, so one
 * description covers "pixels / 255" (MNIST models) and "(x/255 - mean) / std"
 * (CIFAR models). Every size comes from the file and is checked before it is
 * trusted: a header that promises more than the file holds, dimensions whose
 * product overflows, a label outside 0..255, a short line or a stray
 * character give TDM_ERR_PARSE with the file, line and field at fault. A
 * decompression limit guards against gzip bombs.
 */
#ifndef TANDEM_DATA_H
#define TANDEM_DATA_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

#include "tandem/status.h"
#include "tandem/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TDM_DATA_MAX_CHANNELS 4

/* x = (v / scale - mean[c]) / std[c]; a zeroed struct means v / 255. */
typedef struct tdm_data_norm {
    float scale;                       /* 0 means 255 */
    int n_channels;                    /* entries of mean/std given; 0 = none (mean 0, std 1) */
    float mean[TDM_DATA_MAX_CHANNELS]; /* one value applies to every channel */
    float std[TDM_DATA_MAX_CHANNELS];  /* must be > 0 */
} tdm_data_norm;

typedef struct tdm_dataset {
    tdm_tensor x;    /* float32 [N, C, H, W], owned */
    int32_t *labels; /* N labels, owned */
    int64_t n;
} tdm_dataset;

/* Largest file (after decompression) that the readers accept: 1 GiB. */
#define TDM_DATA_MAX_BYTES ((size_t)1 << 30)

/*
 * Parses an idx image (already decompressed) into an owned uint8 tensor with
 * the dims of its header. Only the unsigned-byte element type (0x08) is
 * supported, the one MNIST uses; others are TDM_ERR_UNSUPPORTED.
 */
tdm_status tdm_idx_parse(const void *buf, size_t len, tdm_tensor *out, tdm_err *err);

/* Reads an idx file, gzip-compressed or not, with tdm_idx_parse. */
tdm_status tdm_idx_read(const char *path, tdm_tensor *out, tdm_err *err);

/*
 * Loads an idx image file [N, H, W] and an idx label file [N] into
 * x [N, 1, H, W] (normalised) and labels. limit > 0 keeps the first limit
 * images only.
 */
tdm_status tdm_idx_load(const char *images_path, const char *labels_path, const tdm_data_norm *norm,
                        int64_t limit, tdm_dataset *out, tdm_err *err);

/*
 * Parses CSV text of images: one per line, "label,v0,...,v(C*H*W-1)" with
 * values interleaved HWC, into x [N, C, H, W] (normalised) and labels.
 * Blank lines and a first line that does not start with a digit (a header)
 * are skipped; "\r\n" line ends are accepted. limit > 0 keeps limit lines.
 */
tdm_status tdm_csv_parse(const char *text, size_t len, const char *name, int c, int h, int w,
                         const tdm_data_norm *norm, int64_t limit, tdm_dataset *out, tdm_err *err);

/* Reads a CSV file with tdm_csv_parse. */
tdm_status tdm_csv_load(const char *path, int c, int h, int w, const tdm_data_norm *norm,
                        int64_t limit, tdm_dataset *out, tdm_err *err);

/* Where Debian's dataset-fashion-mnist package puts its files. */
#define TDM_FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"

/*
 * Loads a dataset by name: "mnist" or "fashion" (idx, [N,1,28,28]) or
 * "cifar" (csv, [N,3,32,32]). path is a folder holding the idx pair of the
 * split (train-* when train, else t10k-*), an *images-idx3* file, or a .csv;
 * NULL means tdm_dataset_default_path(name).
 */
tdm_status tdm_dataset_load(const char *name, const char *path, bool train,
                            const tdm_data_norm *norm, int64_t limit, tdm_dataset *out,
                            tdm_err *err);
/* The default location of a named dataset, or NULL when it has none. */
const char *tdm_dataset_default_path(const char *name);

/* Frees what a loader filled in and zeroes d. Safe on a zeroed dataset. */
void tdm_dataset_free(tdm_dataset *d);

/*
 * Reads a whole file into a malloc'd buffer, transparently gunzipping it when
 * it starts with the gzip magic. Refuses more than max_bytes (0 means
 * TDM_DATA_MAX_BYTES) after decompression. The buffer gets one extra zero
 * byte past *len so text parsers may rely on a terminator.
 */
tdm_status tdm_data_read_file(const char *path, size_t max_bytes, void **buf, size_t *len,
                              tdm_err *err);

#ifdef __cplusplus
}
#endif
#endif

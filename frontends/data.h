/* Data readers for training and evaluation sets, the conversions that turn them
 * into what a model takes, and an .npy writer.
 *
 *   .npy   NumPy format versions 1.0, 2.0 and 3.0; float16/32/64, (u)int8/16/32/64
 *          and bool, little- or big-endian ('<', '>', '|', '='); C order only.
 *   IDX    the MNIST / Fashion-MNIST format, plain or gzip-compressed (zlib reads
 *          both); element types 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
 *          0x0D float32, 0x0E float64, big-endian.
 *   CSV    numeric, optional header row (detected), any one-byte delimiter, into
 *          float32 [rows, columns]; optionally one column taken out as int64 labels.
 *
 * Memory: a Dataset owns one malloc'd buffer and is released with dataset_free.
 * Data sets do not come from the compilation's Arena because they are large
 * (Fashion-MNIST's 60000 training images are 47 MB as float32, and conversions
 * make copies) and the host trainer keeps them across many compilations.
 *
 * Files are untrusted: every size is checked against the file (and against
 * DATA_MAX_BYTES) before anything is allocated, and every failure is one Diag line
 * naming the file and what is wrong ("data.npy: data shorter than the shape: ...").
 * Functions return 0 on success and -1 on error; on error the output is empty.
 */
#ifndef KDCC_FRONTENDS_DATA_H
#define KDCC_FRONTENDS_DATA_H

#include "compiler/ir/ir.h"

/* Largest data a reader or a conversion allocates (decoded, in memory). */
#define DATA_MAX_BYTES ((size_t)4 << 30)

typedef struct Dataset {
    DType dtype;
    int rank;
    int64_t dims[KD_MAX_RANK]; /* dims[0] counts samples, by convention */
    void *data;                /* C order, native byte order; malloc'd, owned */
    size_t nbytes;
    char name[256];            /* the file it came from, for messages */
} Dataset;

void dataset_init(Dataset *ds);   /* empty (what dataset_free leaves) */
void dataset_free(Dataset *ds);
int64_t dataset_numel(const Dataset *ds);
/* Allocate zeroed data for a dtype and shape; checks overflow and DATA_MAX_BYTES. */
int dataset_alloc(Dataset *ds, DType dt, int rank, const int64_t *dims, const char *name, Diag *d);

/* ------------------------------------------------------------------ readers */

int data_read_npy(const char *path, Dataset *out, Diag *d);
int data_read_idx(const char *path, Dataset *out, Diag *d);

typedef enum CsvHeader { CSV_HEADER_AUTO = 0, CSV_HEADER_YES, CSV_HEADER_NO } CsvHeader;

typedef struct CsvOptions {
    char delimiter;     /* 0: ',' */
    CsvHeader header;   /* AUTO: the first row is a header if a field of it is not a number */
    /* Column holding labels, taken out of the features: NULL for none; a 0-based
     * index ("0"), "last", or a header name. */
    const char *label;
} CsvOptions;

/* x: float32 [rows, columns] (without the label column); labels (may be NULL when
 * o->label is NULL): int64 [rows], values must be whole numbers. */
int data_read_csv(const char *path, const CsvOptions *o, Dataset *x, Dataset *labels, Diag *d);

/* By content: .npy magic, IDX (plain or gzip), else CSV with default options when
 * the name ends in .csv/.tsv/.txt (tab delimiter for .tsv). */
int data_read(const char *path, Dataset *out, Diag *d);

/* ------------------------------------------------------------------ conversions */

typedef struct DataNorm {
    double scale;        /* x * scale first (e.g. 1.0/255); 0 means 1 */
    /* then (x - mean[c]) / std[c]: one value for all elements (n = 1), or one per
     * channel (n = dims[1], the axis after the samples: NCHW or [N, features]). */
    int nmean;
    const double *mean;  /* nmean == 0: no mean */
    int nstd;
    const double *std;   /* nstd == 0: no std; every std must be > 0 */
} DataNorm;

/* Any numeric dtype to float32 (same shape), with optional scale and normalisation (n may be NULL). */
int data_to_float32(const Dataset *in, const DataNorm *n, Dataset *out, Diag *d);
/* Reshape in place (same element count); at most one dim may be -1 (inferred). */
int data_reshape(Dataset *ds, int rank, const int64_t *dims, Diag *d);
/* Reshape in place to [N, sample_dims...] keeping N = dims[0]: the model's input
 * shape without its batch dim. Each sample's element count must match. */
int data_reshape_samples(Dataset *ds, int rank, const int64_t *sample_dims, Diag *d);
/* Labels as int64 [N] from any integer or float dtype, shape [N] or [N, 1]; float
 * values must be whole numbers; with nclasses > 0 every label must be in [0, nclasses). */
int data_to_labels(const Dataset *in, int64_t nclasses, Dataset *out, Diag *d);

/* ------------------------------------------------------------------ writers */

/* Write an .npy file (version 1.0, little-endian, C order) atomically: a temporary
 * file in the same folder renamed over path. dt: float32 and int64 (soft targets,
 * logits, labels), and the other dtypes the reader takes. */
int data_write_npy(const char *path, DType dt, int rank, const int64_t *dims, const void *data, Diag *d);
int dataset_write_npy(const char *path, const Dataset *ds, Diag *d);

/* Write nparts buffers one after the other into path atomically (temporary file in
 * the same folder, fsync, rename); the temporary file is removed on failure. */
int data_save_atomic(const char *path, const void *const *parts, const size_t *lens, int nparts, Diag *d);

#endif

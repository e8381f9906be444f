/* Helpers shared by the data readers (data.c, data_npy.c, data_idx.c, data_csv.c). */
#ifndef KDCC_FRONTENDS_DATA_INTERNAL_H
#define KDCC_FRONTENDS_DATA_INTERNAL_H

#include "frontends/data.h"

/* An error about file `path`: "path: message" (d->file is left as it was). */
int data_err(Diag *d, const char *path, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Same, marked unsupported (valid input kdcc does not read). */
int data_unsupported(Diag *d, const char *path, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Reverse the bytes of each es-byte element. */
void data_swap_bytes(void *p, size_t nbytes, size_t es);
int data_host_little_endian(void);
/* "float[10,28,28]" */
void data_shape_str(DType dt, int rank, const int64_t *dims, char *buf, size_t n);
/* Element count and byte size of a shape, with overflow and DATA_MAX_BYTES checks. 0 ok. */
int data_shape_bytes(int rank, const int64_t *dims, size_t es, int64_t *numel, size_t *nbytes);

#endif

/* Data sets: the Dataset type, conversions to model inputs and labels, reading by
 * content, and the atomic .npy writer. The format readers are data_npy.c,
 * data_idx.c and data_csv.c. */
#include "frontends/data_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------ helpers */

static int data_verr(Diag *d, const char *path, int unsupported, const char *fmt, va_list ap)
{
    const char *saved = d->file;
    d->file = path && path[0] ? path : saved;
    if (unsupported && d->errors == 0)
        d->unsupported = 1;
    diag_verror(d, NULL, fmt, ap);
    d->file = saved;
    return -1;
}

int data_err(Diag *d, const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    data_verr(d, path, 0, fmt, ap);
    va_end(ap);
    return -1;
}

int data_unsupported(Diag *d, const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    data_verr(d, path, 1, fmt, ap);
    va_end(ap);
    return -1;
}

int data_host_little_endian(void)
{
    const uint16_t one = 1;
    return *(const uint8_t *)&one == 1;
}

void data_swap_bytes(void *p, size_t nbytes, size_t es)
{
    if (es < 2)
        return;
    uint8_t *b = p;
    for (size_t i = 0; i + es <= nbytes; i += es)
        for (size_t j = 0; j < es / 2; j++) {
            uint8_t t = b[i + j];
            b[i + j] = b[i + es - 1 - j];
            b[i + es - 1 - j] = t;
        }
}

void data_shape_str(DType dt, int rank, const int64_t *dims, char *buf, size_t n)
{
    size_t len = (size_t)snprintf(buf, n, "%s[", dtype_name(dt));
    for (int i = 0; i < rank && len < n; i++)
        len += (size_t)snprintf(buf + len, n - len, "%s%" PRId64, i ? "," : "", dims[i]);
    if (len < n)
        snprintf(buf + len, n - len, "]");
}

int data_shape_bytes(int rank, const int64_t *dims, size_t es, int64_t *numel, size_t *nbytes)
{
    int64_t n = dims_numel(rank, dims);
    if (n < 0 || es == 0 || (uint64_t)n > DATA_MAX_BYTES / es)
        return -1;
    *numel = n;
    *nbytes = (size_t)n * es;
    return 0;
}

/* ------------------------------------------------------------------ Dataset */

void dataset_init(Dataset *ds)
{
    memset(ds, 0, sizeof *ds);
}

void dataset_free(Dataset *ds)
{
    free(ds->data);
    dataset_init(ds);
}

int64_t dataset_numel(const Dataset *ds)
{
    return dims_numel(ds->rank, ds->dims);
}

int dataset_alloc(Dataset *ds, DType dt, int rank, const int64_t *dims, const char *name, Diag *d)
{
    dataset_init(ds);
    if (name)
        snprintf(ds->name, sizeof ds->name, "%s", name);
    size_t es = dtype_size(dt);
    if (!es)
        return data_unsupported(d, name, "data of dtype %s is not supported", dtype_name(dt));
    if (rank < 0 || rank > KD_MAX_RANK)
        return data_unsupported(d, name, "rank %d: at most %d dims are supported", rank, KD_MAX_RANK);
    int64_t numel;
    size_t nbytes;
    char shp[200];
    data_shape_str(dt, rank, dims, shp, sizeof shp);
    if (data_shape_bytes(rank, dims, es, &numel, &nbytes))
        return data_err(d, name, "shape %s is too large (more than %zu bytes, or the product of its dims overflows)",
                        shp, DATA_MAX_BYTES);
    void *p = calloc(nbytes ? nbytes : 1, 1);
    if (!p)
        return data_err(d, name, "out of memory allocating %zu bytes for %s", nbytes, shp);
    ds->dtype = dt;
    ds->rank = rank;
    for (int i = 0; i < rank; i++)
        ds->dims[i] = dims[i];
    ds->data = p;
    ds->nbytes = nbytes;
    return 0;
}

/* ------------------------------------------------------------------ by content */

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    if (n < m)
        return 0;
    for (size_t i = 0; i < m; i++) {
        char c = s[n - m + i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != suffix[i])
            return 0;
    }
    return 1;
}

int data_read(const char *path, Dataset *out, Diag *d)
{
    dataset_init(out);
    struct stat st;
    if (stat(path, &st) != 0)
        return data_err(d, path, "cannot open: %s", strerror(errno));
    if (!S_ISREG(st.st_mode))
        return data_err(d, path, "not a regular file");
    FILE *f = fopen(path, "rb");
    if (!f)
        return data_err(d, path, "cannot open: %s", strerror(errno));
    uint8_t m[6] = {0};
    size_t got = fread(m, 1, sizeof m, f);
    fclose(f);
    if (got == 6 && memcmp(m, "\x93NUMPY", 6) == 0)
        return data_read_npy(path, out, d);
    if (got >= 2 && m[0] == 0x1f && m[1] == 0x8b)
        return data_read_idx(path, out, d);
    if (got >= 4 && m[0] == 0 && m[1] == 0)
        return data_read_idx(path, out, d);
    if (ends_with(path, ".csv") || ends_with(path, ".txt") || ends_with(path, ".tsv")) {
        CsvOptions o = {0};
        if (ends_with(path, ".tsv"))
            o.delimiter = '\t';
        return data_read_csv(path, &o, out, NULL, d);
    }
    if (ends_with(path, ".npy"))
        return data_read_npy(path, out, d); /* says what is wrong with the magic */
    return data_err(d, path, "unknown data format: not .npy, not IDX (MNIST format, plain or gzip), and the name does not end in .csv");
}

/* ------------------------------------------------------------------ conversions */

int data_to_float32(const Dataset *in, const DataNorm *n, Dataset *out, Diag *d)
{
    const char *name = in->name;
    if (!in->data && in->nbytes)
        return data_err(d, name, "no data");
    if (!dtype_is_float(in->dtype) && !dtype_is_int(in->dtype) && in->dtype != DT_BOOL &&
        in->dtype != DT_FLOAT16 && in->dtype != DT_BFLOAT16)
        return data_unsupported(d, name, "cannot convert %s data to float", dtype_name(in->dtype));
    double scale = n && n->scale != 0 ? n->scale : 1.0;
    int nm = n ? n->nmean : 0, ns = n ? n->nstd : 0;
    if (nm < 0 || ns < 0 || (nm && !n->mean) || (ns && !n->std))
        return data_err(d, name, "normalisation: bad mean/std lists");
    int64_t channels = in->rank >= 2 ? in->dims[1] : 1;
    if (nm > 1 && nm != channels)
        return data_err(d, name, "normalisation: %d means given, but the data has %" PRId64 " channels (dims[1])", nm, channels);
    if (ns > 1 && ns != channels)
        return data_err(d, name, "normalisation: %d stds given, but the data has %" PRId64 " channels (dims[1])", ns, channels);
    for (int i = 0; i < ns; i++)
        if (!(n->std[i] > 0) || !isfinite(n->std[i]))
            return data_err(d, name, "normalisation: std %g is not a positive number", n->std[i]);
    if (dataset_alloc(out, DT_FLOAT, in->rank, in->dims, name, d))
        return -1;
    int64_t total = dataset_numel(in);
    /* elements per channel block: product of dims after dims[1] */
    int64_t inner = 1;
    for (int i = 2; i < in->rank; i++)
        inner *= in->dims[i];
    float *y = out->data;
    for (int64_t i = 0; i < total; i++) {
        double x = elem_get_f64(in->data, in->dtype, i) * scale;
        if (nm || ns) {
            int64_t c = inner > 0 && channels > 0 ? (i / inner) % channels : 0;
            if (nm)
                x -= n->mean[nm > 1 ? c : 0];
            if (ns)
                x /= n->std[ns > 1 ? c : 0];
        }
        y[i] = (float)x;
    }
    return 0;
}

int data_reshape(Dataset *ds, int rank, const int64_t *dims, Diag *d)
{
    const char *name = ds->name;
    if (rank < 0 || rank > KD_MAX_RANK)
        return data_err(d, name, "reshape: rank %d (at most %d dims)", rank, KD_MAX_RANK);
    int64_t have = dataset_numel(ds), known = 1;
    int infer = -1;
    for (int i = 0; i < rank; i++) {
        if (dims[i] == -1) {
            if (infer >= 0)
                return data_err(d, name, "reshape: more than one dim is -1");
            infer = i;
        } else if (dims[i] < 0) {
            return data_err(d, name, "reshape: negative dim %" PRId64, dims[i]);
        } else if (dims[i] && known > INT64_MAX / dims[i]) {
            return data_err(d, name, "reshape: the product of the dims overflows");
        } else {
            known *= dims[i];
        }
    }
    int64_t nd[KD_MAX_RANK];
    for (int i = 0; i < rank; i++)
        nd[i] = dims[i];
    char from[200], to[200];
    data_shape_str(ds->dtype, ds->rank, ds->dims, from, sizeof from);
    if (infer >= 0) {
        if (known == 0 || have % known) {
            data_shape_str(ds->dtype, rank, dims, to, sizeof to);
            return data_err(d, name, "cannot reshape %s (%" PRId64 " elements) to %s", from, have, to);
        }
        nd[infer] = have / known;
    } else if (known != have) {
        data_shape_str(ds->dtype, rank, dims, to, sizeof to);
        return data_err(d, name, "cannot reshape %s (%" PRId64 " elements) to %s (%" PRId64 " elements)", from, have, to, known);
    }
    ds->rank = rank;
    for (int i = 0; i < KD_MAX_RANK; i++)
        ds->dims[i] = i < rank ? nd[i] : 0;
    return 0;
}

int data_reshape_samples(Dataset *ds, int rank, const int64_t *sample_dims, Diag *d)
{
    const char *name = ds->name;
    if (ds->rank < 1)
        return data_err(d, name, "a scalar has no samples to reshape");
    if (rank < 0 || rank + 1 > KD_MAX_RANK)
        return data_err(d, name, "reshape: sample rank %d (at most %d dims)", rank, KD_MAX_RANK - 1);
    int64_t nd[KD_MAX_RANK];
    nd[0] = ds->dims[0];
    for (int i = 0; i < rank; i++) {
        if (sample_dims[i] < 0)
            return data_err(d, name, "reshape: sample dim %d is %" PRId64 "; the model's input shape must be known", i,
                            sample_dims[i]);
        nd[i + 1] = sample_dims[i];
    }
    int64_t per = dims_numel(rank, sample_dims), have = dims_numel(ds->rank - 1, ds->dims + 1);
    if (per < 0 || per != have) {
        char from[200], to[200];
        data_shape_str(ds->dtype, ds->rank - 1, ds->dims + 1, from, sizeof from);
        data_shape_str(ds->dtype, rank, sample_dims, to, sizeof to);
        return data_err(d, name, "each sample is %s (%" PRId64 " elements) but the model takes %s (%" PRId64 " elements)",
                        from, have, to, per);
    }
    return data_reshape(ds, rank + 1, nd, d);
}

int data_to_labels(const Dataset *in, int64_t nclasses, Dataset *out, Diag *d)
{
    const char *name = in->name;
    if (!(in->rank == 1 || (in->rank == 2 && in->dims[1] == 1))) {
        char shp[200];
        data_shape_str(in->dtype, in->rank, in->dims, shp, sizeof shp);
        return data_err(d, name, "labels must have shape [N] or [N,1], not %s", shp);
    }
    int isf = dtype_is_float(in->dtype) || in->dtype == DT_FLOAT16 || in->dtype == DT_BFLOAT16;
    if (!isf && !dtype_is_int(in->dtype) && in->dtype != DT_BOOL)
        return data_unsupported(d, name, "labels of dtype %s are not supported", dtype_name(in->dtype));
    int64_t n = in->dims[0];
    if (dataset_alloc(out, DT_INT64, 1, &n, name, d))
        return -1;
    int64_t *y = out->data;
    for (int64_t i = 0; i < n; i++) {
        int64_t v;
        if (isf) {
            double x = elem_get_f64(in->data, in->dtype, i);
            if (!(x == floor(x)) || x < -9.2e18 || x > 9.2e18) {
                dataset_free(out);
                return data_err(d, name, "label %" PRId64 " is %g, not a whole number", i, x);
            }
            v = (int64_t)x;
        } else {
            if (in->dtype == DT_UINT64 && ((const uint64_t *)in->data)[i] > (uint64_t)INT64_MAX) {
                dataset_free(out);
                return data_err(d, name, "label %" PRId64 " does not fit in int64", i);
            }
            v = elem_get_i64(in->data, in->dtype, i);
        }
        if (nclasses > 0 && (v < 0 || v >= nclasses)) {
            dataset_free(out);
            return data_err(d, name, "label %" PRId64 " is %" PRId64 ", outside [0, %" PRId64 ")", i, v, nclasses);
        }
        y[i] = v;
    }
    return 0;
}

/* ------------------------------------------------------------------ writers */

static int write_all(int fd, const void *buf, size_t n)
{
    const uint8_t *p = buf;
    while (n) {
        ssize_t r = write(fd, p, n > ((size_t)1 << 30) ? ((size_t)1 << 30) : n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

int data_save_atomic(const char *path, const void *const *parts, const size_t *lens, int nparts, Diag *d)
{
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    if (!tmp)
        return data_err(d, path, "out of memory");
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp.XXXXXX", 12);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        int e = errno;
        free(tmp);
        return data_err(d, path, "cannot write: %s", strerror(e));
    }
    int bad = 0, e = 0;
    for (int i = 0; i < nparts && !bad; i++)
        if (lens[i] && write_all(fd, parts[i], lens[i])) {
            bad = 1;
            e = errno;
        }
    if (!bad && fsync(fd) != 0 && errno != EINVAL && errno != EROFS) {
        bad = 1;
        e = errno;
    }
    /* mkstemp makes the file 0600; give it what a plain fopen would */
    mode_t um = umask(0);
    umask(um);
    if (!bad && fchmod(fd, 0666 & ~um) != 0) {
        bad = 1;
        e = errno;
    }
    if (close(fd) != 0 && !bad) {
        bad = 1;
        e = errno;
    }
    if (!bad && rename(tmp, path) != 0) {
        bad = 1;
        e = errno;
    }
    if (bad) {
        unlink(tmp);
        free(tmp);
        return data_err(d, path, "cannot write: %s", e ? strerror(e) : "short write");
    }
    free(tmp);
    return 0;
}

static const char *npy_descr(DType dt)
{
    switch (dt) {
    case DT_FLOAT: return "<f4";
    case DT_DOUBLE: return "<f8";
    case DT_FLOAT16: return "<f2";
    case DT_UINT8: return "|u1";
    case DT_INT8: return "|i1";
    case DT_BOOL: return "|b1";
    case DT_INT16: return "<i2";
    case DT_UINT16: return "<u2";
    case DT_INT32: return "<i4";
    case DT_UINT32: return "<u4";
    case DT_INT64: return "<i8";
    case DT_UINT64: return "<u8";
    default: return NULL;
    }
}

int data_write_npy(const char *path, DType dt, int rank, const int64_t *dims, const void *data, Diag *d)
{
    const char *descr = npy_descr(dt);
    if (!descr)
        return data_unsupported(d, path, "cannot write %s data as .npy", dtype_name(dt));
    if (rank < 0 || rank > KD_MAX_RANK)
        return data_err(d, path, "cannot write rank %d", rank);
    size_t es = dtype_size(dt);
    int64_t numel = dims_numel(rank, dims);
    if (numel < 0 || (uint64_t)numel > SIZE_MAX / es)
        return data_err(d, path, "shape too large to write");
    size_t nbytes = (size_t)numel * es;
    if (nbytes && !data)
        return data_err(d, path, "no data to write");

    char h[512];
    int len = snprintf(h, sizeof h, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
    for (int i = 0; i < rank; i++)
        len += snprintf(h + len, sizeof h - (size_t)len, "%" PRId64 "%s", dims[i], rank == 1 ? "," : i + 1 < rank ? ", " : "");
    len += snprintf(h + len, sizeof h - (size_t)len, "), }");
    /* pad with spaces so that magic + version + length + header is a multiple of 64, ending in '\n' */
    size_t total = 10 + (size_t)len + 1;
    size_t pad = (64 - total % 64) % 64;
    uint8_t pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 0, 0};
    size_t hlen = (size_t)len + pad + 1;
    pre[8] = (uint8_t)(hlen & 0xff);
    pre[9] = (uint8_t)(hlen >> 8);
    memset(h + len, ' ', pad);
    h[(size_t)len + pad] = '\n';

    const void *body = data;
    void *swapped = NULL;
    if (!data_host_little_endian() && es > 1 && nbytes) {
        swapped = malloc(nbytes);
        if (!swapped)
            return data_err(d, path, "out of memory");
        memcpy(swapped, data, nbytes);
        data_swap_bytes(swapped, nbytes, es);
        body = swapped;
    }
    const void *parts[3] = {pre, h, body};
    size_t lens[3] = {sizeof pre, hlen, nbytes};
    int rc = data_save_atomic(path, parts, lens, 3, d);
    free(swapped);
    return rc;
}

int dataset_write_npy(const char *path, const Dataset *ds, Diag *d)
{
    return data_write_npy(path, ds->dtype, ds->rank, ds->dims, ds->data, d);
}

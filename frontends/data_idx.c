/* IDX reader (the MNIST / Fashion-MNIST format), plain or gzip-compressed.
 *
 * Layout: two zero bytes, the element type (0x08 uint8, 0x09 int8, 0x0B int16,
 * 0x0C int32, 0x0D float32, 0x0E float64), the number of dims, each dim as a
 * big-endian uint32, then the elements big-endian. zlib's gzread reads both
 * compressed and plain files. The decoded size of a gzip file is bounded by what
 * deflate can expand to (about 1032:1), so a hostile header claiming huge dims is
 * refused before anything is allocated.
 */
#include "frontends/data_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#define DEFLATE_MAX_RATIO 1032u

/* Read exactly n bytes (n may exceed what one gzread takes); returns bytes read or -1. */
static int64_t gz_read_all(gzFile z, void *buf, size_t n)
{
    uint8_t *p = buf;
    size_t got = 0;
    while (got < n) {
        size_t chunk = n - got > ((size_t)1 << 28) ? ((size_t)1 << 28) : n - got;
        int r = gzread(z, p + got, (unsigned)chunk);
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (int64_t)got;
}

static const char *gz_why(gzFile z)
{
    int e = 0;
    const char *m = gzerror(z, &e);
    if (e == Z_ERRNO)
        return strerror(errno);
    return m && m[0] ? m : "read error";
}

int data_read_idx(const char *path, Dataset *out, Diag *d)
{
    dataset_init(out);
    struct stat st;
    if (stat(path, &st) != 0)
        return data_err(d, path, "cannot open: %s", strerror(errno));
    if (!S_ISREG(st.st_mode))
        return data_err(d, path, "not a regular file");
    gzFile z = gzopen(path, "rb");
    if (!z)
        return data_err(d, path, "cannot open: %s", errno ? strerror(errno) : "out of memory");
    gzbuffer(z, 1 << 17);
    int rc = -1;
    uint8_t h[4];
    int64_t got = gz_read_all(z, h, 4);
    int compressed = !gzdirect(z);
    const char *kind = compressed ? "gzip-compressed IDX" : "IDX";
    if (got < 0) {
        data_err(d, path, "cannot read the %s header: %s", kind, gz_why(z));
        goto out;
    }
    if (got < 4) {
        data_err(d, path, "not an IDX file: truncated header (%d bytes)", (int)got);
        goto out;
    }
    if (h[0] != 0 || h[1] != 0) {
        data_err(d, path, "not an IDX file: bad magic %02x %02x %02x %02x (IDX files start with two zero bytes)",
                 h[0], h[1], h[2], h[3]);
        goto out;
    }
    DType dt;
    switch (h[2]) {
    case 0x08: dt = DT_UINT8; break;
    case 0x09: dt = DT_INT8; break;
    case 0x0B: dt = DT_INT16; break;
    case 0x0C: dt = DT_INT32; break;
    case 0x0D: dt = DT_FLOAT; break;
    case 0x0E: dt = DT_DOUBLE; break;
    default:
        data_err(d, path, "not an IDX file: unknown element type 0x%02x (0x08, 0x09, 0x0B, 0x0C, 0x0D or 0x0E)", h[2]);
        goto out;
    }
    int rank = h[3];
    if (rank == 0) {
        data_err(d, path, "IDX header has 0 dimensions");
        goto out;
    }
    if (rank > KD_MAX_RANK) {
        data_unsupported(d, path, "IDX data has %d dimensions; at most %d are supported", rank, KD_MAX_RANK);
        goto out;
    }
    uint8_t db[4 * KD_MAX_RANK];
    got = gz_read_all(z, db, 4 * (size_t)rank);
    if (got < 0) {
        data_err(d, path, "cannot read the %s header: %s", kind, gz_why(z));
        goto out;
    }
    if (got < 4 * rank) {
        data_err(d, path, "truncated IDX header: the file ends inside the %d dimensions", rank);
        goto out;
    }
    int64_t dims[KD_MAX_RANK];
    for (int i = 0; i < rank; i++)
        dims[i] = (int64_t)((uint32_t)db[4 * i] << 24 | (uint32_t)db[4 * i + 1] << 16 | (uint32_t)db[4 * i + 2] << 8 |
                            (uint32_t)db[4 * i + 3]);
    size_t es = dtype_size(dt);
    int64_t numel;
    size_t need;
    char shp[200];
    data_shape_str(dt, rank, dims, shp, sizeof shp);
    if (data_shape_bytes(rank, dims, es, &numel, &need)) {
        data_err(d, path, "shape %s is too large (more than %zu bytes, or the product of its dims overflows)", shp, DATA_MAX_BYTES);
        goto out;
    }
    uint64_t fsize = (uint64_t)st.st_size, hbytes = 4 + 4 * (uint64_t)rank;
    if (!compressed && fsize - hbytes != need) {
        data_err(d, path, "%s: the shape %s needs %zu bytes of data, the file has %" PRIu64,
                 fsize - hbytes < need ? "data shorter than the shape" : "data longer than the shape", shp, need,
                 fsize - hbytes);
        goto out;
    }
    if (compressed && (uint64_t)need > fsize * DEFLATE_MAX_RATIO + 4096) {
        data_err(d, path, "data shorter than the shape: %s needs %zu bytes, more than %" PRIu64 " compressed bytes can hold",
                 shp, need, fsize);
        goto out;
    }
    if (dataset_alloc(out, dt, rank, dims, path, d))
        goto out;
    got = gz_read_all(z, out->data, need);
    if (got < 0) {
        data_err(d, path, "cannot read the %s data: %s", kind, gz_why(z));
        dataset_free(out);
        goto out;
    }
    if ((uint64_t)got < need) {
        data_err(d, path, "data shorter than the shape: the shape %s needs %zu bytes of data, the file has %" PRId64,
                 shp, need, got);
        dataset_free(out);
        goto out;
    }
    uint8_t extra;
    int64_t more = gz_read_all(z, &extra, 1);
    if (more != 0) {
        if (more < 0)
            data_err(d, path, "cannot read the %s data: %s", kind, gz_why(z));
        else
            data_err(d, path, "data longer than the shape: bytes follow the %zu that the shape %s needs", need, shp);
        dataset_free(out);
        goto out;
    }
    if (data_host_little_endian())
        data_swap_bytes(out->data, need, es);
    rc = 0;
out:
    gzclose(z);
    return rc;
}

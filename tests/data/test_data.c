/* Unit tests of the data readers and the .npy writer (frontends/data*.c).
 *
 *   test_data                 readers, conversions and writer on small files made here
 *                             (in KDCC_TMP_DIR), including malformed and hostile input
 *   test_data --fashion DIR   the real Fashion-MNIST test images and labels in DIR
 *                             (exit 77 = skipped when the files are absent)
 *   test_data --write DIR     write .npy files for an outside check (numpy) and exit
 *   test_data --dump FILE...  read each file (data_read) and print "dtype [dims] first last sum"
 *                             or "error: message" (files written by numpy, checked by it)
 */
#include "frontends/data.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#ifndef KDCC_TMP_DIR
#error "KDCC_TMP_DIR must name a scratch folder under the build dir"
#endif

static int failures, checks;

#define CHECK(cond)                                                                 \
    do {                                                                            \
        checks++;                                                                   \
        if (!(cond)) {                                                              \
            failures++;                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                           \
    } while (0)

/* ------------------------------------------------------------------ helpers */

static char *tmp_path(const char *name)
{
    static char buf[8][1024];
    static int k;
    char *p = buf[k++ & 7];
    snprintf(p, 1024, "%s/%s", KDCC_TMP_DIR, name);
    return p;
}

/* Scratch file for the corruption loops (thousands of rewrites): in memory
 * (/dev/shm) when there is one, as rewriting files on a busy disk is slow. */
static char fuzz_dir[256];

static char *fuzz_path(const char *name)
{
    static char buf[4][1024];
    static int k;
    char *p = buf[k++ & 3];
    snprintf(p, 1024, "%s/%s", fuzz_dir[0] ? fuzz_dir : KDCC_TMP_DIR, name);
    return p;
}

static void fuzz_setup(void)
{
    snprintf(fuzz_dir, sizeof fuzz_dir, "/dev/shm/kdcc-test-data-%ld", (long)getpid());
    if (mkdir(fuzz_dir, 0700) != 0)
        fuzz_dir[0] = 0;
}

static void fuzz_cleanup(void)
{
    if (!fuzz_dir[0])
        return;
    DIR *dir = opendir(fuzz_dir);
    struct dirent *e;
    while (dir && (e = readdir(dir)))
        if (e->d_name[0] != '.')
            unlink(fuzz_path(e->d_name));
    if (dir)
        closedir(dir);
    rmdir(fuzz_dir);
}

static void write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "cannot write %s: %s\n", path, strerror(errno));
        exit(2);
    }
    if (n)
        fwrite(data, 1, n, f);
    fclose(f);
}

static void write_gz(const char *path, const void *data, size_t n)
{
    gzFile z = gzopen(path, "wb");
    if (!z) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(2);
    }
    if (n)
        gzwrite(z, data, (unsigned)n);
    gzclose(z);
}

static uint8_t *read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc((size_t)len + 1);
    *n = fread(p, 1, (size_t)len, f);
    fclose(f);
    return p;
}

/* A failed read: one line that names the file and contains `want` (case-sensitive). */
static int err_ok(int rc, const Diag *d, const char *path, const char *want)
{
    if (rc == 0) {
        fprintf(stderr, "  %s: expected an error containing '%s', the read succeeded\n", path, want);
        return 0;
    }
    int ok = strchr(d->msg, '\n') == NULL && strstr(d->msg, path) != NULL && (!want || strstr(d->msg, want));
    if (!ok)
        fprintf(stderr, "  %s: expected an error containing '%s', got: %s\n", path, want ? want : "", d->msg);
    return ok;
}

static int empty(const Dataset *ds)
{
    return ds->data == NULL && ds->nbytes == 0 && ds->rank == 0;
}

/* An .npy file from a header dict (padded as numpy pads) and raw bytes. */
static void make_npy(const char *path, int major, const char *dict, const void *data, size_t n)
{
    size_t lenbytes = major == 1 ? 2 : 4;
    size_t dl = strlen(dict);
    size_t total = 6 + 2 + lenbytes + dl + 1;
    size_t pad = (64 - total % 64) % 64;
    size_t hlen = dl + pad + 1;
    size_t all = 6 + 2 + lenbytes + hlen + n;
    uint8_t *b = malloc(all);
    memcpy(b, "\x93NUMPY", 6);
    b[6] = (uint8_t)major;
    b[7] = 0;
    size_t o = 8;
    for (size_t i = 0; i < lenbytes; i++)
        b[o++] = (uint8_t)(hlen >> (8 * i));
    memcpy(b + o, dict, dl);
    memset(b + o + dl, ' ', pad);
    b[o + dl + pad] = '\n';
    o += hlen;
    if (n)
        memcpy(b + o, data, n);
    write_file(path, b, all);
    free(b);
}

static void put_be(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

/* ------------------------------------------------------------------ .npy */

static void test_npy_good(void)
{
    Diag d;
    Dataset ds;

    /* float32, version 1.0, shape (2, 3) */
    float f[6] = {1.5f, -2.0f, 0.25f, 1e-3f, 3e8f, -0.0f};
    const char *p = tmp_path("f32.npy");
    make_npy(p, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", f, sizeof f);
    diag_init(&d, NULL);
    CHECK(data_read_npy(p, &ds, &d) == 0);
    CHECK(ds.dtype == DT_FLOAT && ds.rank == 2 && ds.dims[0] == 2 && ds.dims[1] == 3 && ds.nbytes == 24);
    CHECK(ds.data && memcmp(ds.data, f, sizeof f) == 0);
    CHECK(strcmp(ds.name, p) == 0);
    dataset_free(&ds);
    CHECK(empty(&ds));

    /* version 2.0, big-endian int32, double quotes, keys in another order, no trailing comma */
    uint8_t be[12];
    int32_t want_i32[3] = {1, -2, 0x12345678};
    for (int i = 0; i < 3; i++)
        put_be(be + 4 * i, (uint32_t)want_i32[i], 4);
    p = tmp_path("be_i32.npy");
    make_npy(p, 2, "{\"shape\": (3,), \"fortran_order\": False, \"descr\": \">i4\"}", be, sizeof be);
    diag_init(&d, NULL);
    CHECK(data_read_npy(p, &ds, &d) == 0);
    CHECK(ds.dtype == DT_INT32 && ds.rank == 1 && ds.dims[0] == 3 && memcmp(ds.data, want_i32, 12) == 0);
    dataset_free(&ds);

    /* version 3.0, scalar uint8 */
    uint8_t u = 200;
    p = tmp_path("scalar_u8.npy");
    make_npy(p, 3, "{'descr': '|u1', 'fortran_order': False, 'shape': (), }", &u, 1);
    diag_init(&d, NULL);
    CHECK(data_read_npy(p, &ds, &d) == 0);
    CHECK(ds.dtype == DT_UINT8 && ds.rank == 0 && ds.nbytes == 1 && ((uint8_t *)ds.data)[0] == 200);
    dataset_free(&ds);

    /* every dtype, little and big endian */
    struct {
        const char *code;
        DType dt;
        size_t es;
    } ty[] = {{"f4", DT_FLOAT, 4}, {"f8", DT_DOUBLE, 8}, {"i1", DT_INT8, 1},  {"u1", DT_UINT8, 1},
              {"i2", DT_INT16, 2}, {"i4", DT_INT32, 4},  {"i8", DT_INT64, 8}, {"u2", DT_UINT16, 2},
              {"u4", DT_UINT32, 4}, {"u8", DT_UINT64, 8}, {"f2", DT_FLOAT16, 2}};
    for (size_t t = 0; t < sizeof ty / sizeof ty[0]; t++) {
        for (int endian = 0; endian < 2; endian++) {
            if (ty[t].es == 1 && endian)
                continue;
            uint8_t raw[4 * 8], native[4 * 8];
            for (size_t i = 0; i < sizeof raw; i++)
                native[i] = (uint8_t)(i * 37 + t);
            memcpy(raw, native, sizeof raw);
            char dict[128];
            snprintf(dict, sizeof dict, "{'descr': '%c%s', 'fortran_order': False, 'shape': (2, 2), }",
                     ty[t].es == 1 ? '|' : endian ? '>' : '<', ty[t].code);
            /* the file holds the elements in the marked order; native is little-endian here */
            if (endian)
                for (size_t i = 0; i < 4; i++)
                    for (size_t j = 0; j < ty[t].es; j++)
                        raw[i * ty[t].es + j] = native[i * ty[t].es + ty[t].es - 1 - j];
            p = tmp_path("dtype.npy");
            make_npy(p, 1, dict, raw, 4 * ty[t].es);
            diag_init(&d, NULL);
            int rc = data_read_npy(p, &ds, &d);
            CHECK(rc == 0);
            if (rc)
                fprintf(stderr, "  %s: %s\n", dict, d.msg);
            CHECK(ds.dtype == ty[t].dt && ds.nbytes == 4 * ty[t].es && memcmp(ds.data, native, ds.nbytes) == 0);
            dataset_free(&ds);
        }
    }

    /* bool: normalised to 0/1 */
    uint8_t bools[3] = {0, 1, 1};
    p = tmp_path("bool.npy");
    make_npy(p, 1, "{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }", bools, 3);
    diag_init(&d, NULL);
    CHECK(data_read_npy(p, &ds, &d) == 0 && ds.dtype == DT_BOOL && memcmp(ds.data, bools, 3) == 0);
    dataset_free(&ds);

    /* zero-size array */
    p = tmp_path("empty.npy");
    make_npy(p, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 5), }", NULL, 0);
    diag_init(&d, NULL);
    CHECK(data_read_npy(p, &ds, &d) == 0 && ds.rank == 2 && ds.dims[0] == 0 && ds.nbytes == 0);
    dataset_free(&ds);

    /* data_read picks the format by content */
    p = tmp_path("f32.npy");
    diag_init(&d, NULL);
    CHECK(data_read(p, &ds, &d) == 0 && ds.dtype == DT_FLOAT && ds.dims[1] == 3);
    dataset_free(&ds);
}

static void npy_bad(const char *name, int major, const char *dict, size_t ndata, const char *want)
{
    uint8_t *data = calloc(ndata ? ndata : 1, 1);
    const char *p = tmp_path(name);
    make_npy(p, major, dict, data, ndata);
    free(data);
    Diag d;
    diag_init(&d, NULL);
    Dataset ds;
    int rc = data_read_npy(p, &ds, &d);
    CHECK(err_ok(rc, &d, p, want));
    CHECK(empty(&ds));
}

static void test_npy_bad(void)
{
    const char *F = "'fortran_order': False";
    char dict[512];
    /* fortran order: refused clearly, as unsupported */
    npy_bad("fortran.npy", 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", 24, "Fortran order");
    {
        Diag d;
        Dataset ds;
        diag_init(&d, NULL);
        CHECK(data_read_npy(tmp_path("fortran.npy"), &ds, &d) != 0 && d.unsupported);
    }
    snprintf(dict, sizeof dict, "{'descr': '<f4', %s, 'shape': (4294967296, 4294967296, 4294967296), }", F);
    npy_bad("overflow.npy", 1, dict, 0, "overflows");
    snprintf(dict, sizeof dict, "{'descr': '<f4', %s, 'shape': (100000, 100000, 100000), }", F);
    npy_bad("huge.npy", 1, dict, 16, "too large");
    snprintf(dict, sizeof dict, "{'descr': '<f4', %s, 'shape': (2, 3), }", F);
    npy_bad("short.npy", 1, dict, 23, "data shorter than the shape");
    npy_bad("long.npy", 1, dict, 25, "data longer than the shape");
    snprintf(dict, sizeof dict, "{'descr': '<c8', %s, 'shape': (2,), }", F);
    npy_bad("complex.npy", 1, dict, 16, "'<c8'");
    snprintf(dict, sizeof dict, "{'descr': '|f4', %s, 'shape': (2,), }", F);
    npy_bad("pipe_f4.npy", 1, dict, 8, "byte order");
    snprintf(dict, sizeof dict, "{'descr': [('a', '<f4')], %s, 'shape': (2,), }", F);
    npy_bad("struct.npy", 1, dict, 8, "structured");
    snprintf(dict, sizeof dict, "{'descr': '<f4', %s, 'shape': (-1, 2), }", F);
    npy_bad("negative.npy", 1, dict, 8, "non-negative integers");
    snprintf(dict, sizeof dict, "{'descr': '<f4', %s, 'shape': (1,1,1,1,1,1,1,1,1), }", F);
    npy_bad("rank9.npy", 1, dict, 4, "more than 8 dims");
    npy_bad("nokey.npy", 1, "{'descr': '<f4', 'shape': (2,), }", 8, "no 'fortran_order' key");
    npy_bad("dupkey.npy", 1, "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 8, "twice");
    npy_bad("unknownkey.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", 8, "unknown key 'x'");
    npy_bad("junk.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), } junk", 8, "after the closing");
    npy_bad("unterminated.npy", 1, "{'descr': '<f4", 0, "malformed .npy header");
    npy_bad("nobrace.npy", 1, "descr", 0, "expected '{'");
    npy_bad("badbool.npy", 1, "{'descr': '<f4', 'fortran_order': maybe, 'shape': (2,), }", 8, "True or False");
    npy_bad("bigdim.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", 8, "too large");

    /* truncated files: bad magic, inside the length, inside the header */
    const char *p = tmp_path("magic.npy");
    write_file(p, "\x93NUMPZ\x01\x00\x10\x00", 10);
    Diag d;
    Dataset ds;
    diag_init(&d, NULL);
    CHECK(err_ok(data_read_npy(p, &ds, &d), &d, p, "bad magic"));
    p = tmp_path("tiny.npy");
    write_file(p, "\x93NU", 3);
    diag_init(&d, NULL);
    CHECK(err_ok(data_read_npy(p, &ds, &d), &d, p, "too short"));
    p = tmp_path("trunc_len.npy");
    write_file(p, "\x93NUMPY\x02\x00\x10\x00", 10);
    diag_init(&d, NULL);
    CHECK(err_ok(data_read_npy(p, &ds, &d), &d, p, "truncated header"));
    p = tmp_path("trunc_hdr.npy");
    write_file(p, "\x93NUMPY\x01\x00\x76\x00{'descr'", 18);
    diag_init(&d, NULL);
    CHECK(err_ok(data_read_npy(p, &ds, &d), &d, p, "truncated header"));
    p = tmp_path("hostile_len.npy");
    write_file(p, "\x93NUMPY\x02\x00\xff\xff\xff\xff{", 13);
    diag_init(&d, NULL);
    CHECK(err_ok(data_read_npy(p, &ds, &d), &d, p, "larger than the limit"));
    p = tmp_path("version9.npy");
    write_file(p, "\x93NUMPY\x09\x00\x10\x00", 10);
    diag_init(&d, NULL);
    CHECK(err_ok(data_read_npy(p, &ds, &d), &d, p, "version 9.0"));
    diag_init(&d, NULL);
    CHECK(err_ok(data_read_npy(tmp_path("does-not-exist.npy"), &ds, &d), &d, tmp_path("does-not-exist.npy"), "cannot open"));

    diag_init(&d, NULL);
    CHECK(err_ok(data_read(KDCC_TMP_DIR, &ds, &d), &d, KDCC_TMP_DIR, "not a regular file"));
    p = tmp_path("unknown.bin");
    write_file(p, "\x01\x02\x03\x04\x05\x06", 6);
    diag_init(&d, NULL);
    CHECK(err_ok(data_read(p, &ds, &d), &d, p, "unknown data format"));

    /* every truncation of a valid file fails cleanly; random corruption never crashes */
    float f[6] = {1, 2, 3, 4, 5, 6};
    p = tmp_path("good.npy");
    make_npy(p, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", f, sizeof f);
    size_t n;
    uint8_t *good = read_all(p, &n);
    const char *q = fuzz_path("mutant.npy");
    int clean = 1;
    for (size_t cut = 0; cut < n; cut++) {
        write_file(q, good, cut);
        diag_init(&d, NULL);
        int rc = data_read_npy(q, &ds, &d);
        clean &= rc != 0 && d.msg[0] && !strchr(d.msg, '\n') && empty(&ds);
    }
    CHECK(clean);
    srand(12345);
    uint8_t *m = malloc(n);
    for (int iter = 0; iter < 3000; iter++) {
        memcpy(m, good, n);
        int flips = 1 + rand() % 4;
        for (int k = 0; k < flips; k++)
            m[rand() % (int)n] = (uint8_t)rand();
        write_file(q, m, n);
        diag_init(&d, NULL);
        int rc = data_read_npy(q, &ds, &d);
        if (rc == 0) {
            clean &= ds.nbytes == (size_t)dataset_numel(&ds) * dtype_size(ds.dtype);
            dataset_free(&ds);
        } else {
            clean &= d.msg[0] && !strchr(d.msg, '\n') && empty(&ds);
        }
    }
    CHECK(clean);
    free(m);
    free(good);
}

/* ------------------------------------------------------------------ IDX */

/* IDX bytes for a shape and big-endian payload. */
static uint8_t *make_idx(uint8_t type, int rank, const uint32_t *dims, const uint8_t *payload, size_t n, size_t *len)
{
    *len = 4 + 4 * (size_t)rank + n;
    uint8_t *b = malloc(*len);
    b[0] = 0;
    b[1] = 0;
    b[2] = type;
    b[3] = (uint8_t)rank;
    for (int i = 0; i < rank; i++)
        put_be(b + 4 + 4 * i, dims[i], 4);
    if (n)
        memcpy(b + 4 + 4 * rank, payload, n);
    return b;
}

static void test_idx_good(void)
{
    Diag d;
    Dataset ds;
    /* uint8 images, plain and gzip */
    uint8_t px[2 * 3 * 4];
    for (int i = 0; i < 24; i++)
        px[i] = (uint8_t)(i * 10);
    uint32_t dims[3] = {2, 3, 4};
    size_t len;
    uint8_t *b = make_idx(0x08, 3, dims, px, sizeof px, &len);
    const char *p = tmp_path("img-idx3-ubyte");
    write_file(p, b, len);
    diag_init(&d, NULL);
    CHECK(data_read_idx(p, &ds, &d) == 0);
    CHECK(ds.dtype == DT_UINT8 && ds.rank == 3 && ds.dims[0] == 2 && ds.dims[1] == 3 && ds.dims[2] == 4 &&
          memcmp(ds.data, px, 24) == 0);
    dataset_free(&ds);
    p = tmp_path("img-idx3-ubyte.gz");
    write_gz(p, b, len);
    diag_init(&d, NULL);
    CHECK(data_read_idx(p, &ds, &d) == 0);
    CHECK(ds.dtype == DT_UINT8 && ds.rank == 3 && ds.dims[2] == 4 && memcmp(ds.data, px, 24) == 0);
    dataset_free(&ds);
    diag_init(&d, NULL);
    CHECK(data_read(p, &ds, &d) == 0 && ds.dtype == DT_UINT8 && ds.nbytes == 24);
    dataset_free(&ds);
    free(b);

    /* every element type, big-endian in the file */
    struct {
        uint8_t code;
        DType dt;
        int es;
    } ty[] = {{0x08, DT_UINT8, 1}, {0x09, DT_INT8, 1}, {0x0B, DT_INT16, 2},
              {0x0C, DT_INT32, 4}, {0x0D, DT_FLOAT, 4}, {0x0E, DT_DOUBLE, 8}};
    double vals[3] = {-3, 7, 100};
    for (size_t t = 0; t < sizeof ty / sizeof ty[0]; t++) {
        uint8_t payload[24];
        for (int i = 0; i < 3; i++) {
            double v = ty[t].dt == DT_UINT8 ? fabs(vals[i]) : vals[i];
            uint64_t bits = 0;
            if (ty[t].dt == DT_FLOAT) {
                float fv = (float)v;
                uint32_t u;
                memcpy(&u, &fv, 4);
                bits = u;
            } else if (ty[t].dt == DT_DOUBLE) {
                memcpy(&bits, &v, 8);
            } else {
                bits = (uint64_t)(int64_t)v;
            }
            put_be(payload + i * ty[t].es, bits, ty[t].es);
        }
        uint32_t dm[1] = {3};
        b = make_idx(ty[t].code, 1, dm, payload, 3 * (size_t)ty[t].es, &len);
        p = tmp_path("types.idx.gz");
        write_gz(p, b, len);
        free(b);
        diag_init(&d, NULL);
        int rc = data_read_idx(p, &ds, &d);
        CHECK(rc == 0 && ds.dtype == ty[t].dt && ds.rank == 1 && ds.dims[0] == 3);
        if (rc == 0)
            for (int i = 0; i < 3; i++)
                CHECK(elem_get_f64(ds.data, ds.dtype, i) == (ty[t].dt == DT_UINT8 ? fabs(vals[i]) : vals[i]));
        dataset_free(&ds);
    }
}

static void idx_bad(const char *name, int gz, const uint8_t *b, size_t len, const char *want)
{
    const char *p = tmp_path(name);
    if (gz)
        write_gz(p, b, len);
    else
        write_file(p, b, len);
    Diag d;
    Dataset ds;
    diag_init(&d, NULL);
    int rc = data_read_idx(p, &ds, &d);
    CHECK(err_ok(rc, &d, p, want));
    CHECK(empty(&ds));
}

static void test_idx_bad(void)
{
    uint8_t px[12] = {0};
    uint32_t dims[2] = {3, 4};
    size_t len;
    uint8_t *b = make_idx(0x08, 2, dims, px, 12, &len);
    for (int gz = 0; gz < 2; gz++) {
        idx_bad("short.idx", gz, b, len - 1, "data shorter than the shape");
        uint8_t *c = malloc(len + 1);
        memcpy(c, b, len);
        c[len] = 7;
        idx_bad("long.idx", gz, c, len + 1, "data longer than the shape");
        memcpy(c, b, len);
        c[0] = 1;
        idx_bad("magic.idx", gz, c, len, "bad magic");
        memcpy(c, b, len);
        c[2] = 0x0A;
        idx_bad("type.idx", gz, c, len, "unknown element type 0x0a");
        memcpy(c, b, len);
        c[3] = 0;
        idx_bad("rank0.idx", gz, c, len, "0 dimensions");
        c[3] = 9;
        idx_bad("rank9.idx", gz, c, len, "9 dimensions");
        idx_bad("trunc_dims.idx", gz, b, 6, "truncated IDX header");
        idx_bad("trunc_head.idx", gz, b, 3, "truncated header");
        free(c);
        /* dims whose product overflows, and a huge claim in a small (compressed) file */
        uint32_t big[4] = {0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu};
        size_t l2;
        uint8_t *h = make_idx(0x0E, 4, big, NULL, 0, &l2);
        idx_bad("overflow.idx", gz, h, l2, "overflows");
        free(h);
        uint32_t mid[3] = {60000, 100, 100};
        h = make_idx(0x08, 3, mid, px, 12, &l2);
        idx_bad("claim.idx", gz, h, l2, "data shorter than the shape");
        free(h);
    }
    idx_bad("empty.idx", 0, b, 0, "truncated header");

    /* a gzip stream cut in the middle, and corrupted compressed bytes */
    uint8_t big[4096];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (uint8_t)(i * 7919 >> 3);
    uint32_t bd[1] = {sizeof big};
    size_t bl;
    uint8_t *bi = make_idx(0x08, 1, bd, big, sizeof big, &bl);
    const char *p = tmp_path("whole.idx.gz");
    write_gz(p, bi, bl);
    size_t zn;
    uint8_t *z = read_all(p, &zn);
    p = fuzz_path("cut.idx.gz");
    write_file(p, z, zn / 2);
    Diag d;
    Dataset ds;
    diag_init(&d, NULL);
    CHECK(err_ok(data_read_idx(p, &ds, &d), &d, p, NULL) && empty(&ds));
    z[zn / 2] ^= 0x55;
    z[zn / 2 + 1] ^= 0xAA;
    p = fuzz_path("corrupt.idx.gz");
    write_file(p, z, zn);
    diag_init(&d, NULL);
    CHECK(err_ok(data_read_idx(p, &ds, &d), &d, p, NULL) && empty(&ds));
    /* every truncation of the compressed file fails cleanly */
    int clean = 1;
    for (size_t cut = 0; cut < zn; cut += 7) {
        write_file(p, z, cut);
        diag_init(&d, NULL);
        int rc = data_read_idx(p, &ds, &d);
        clean &= rc != 0 && d.msg[0] && !strchr(d.msg, '\n') && empty(&ds);
    }
    CHECK(clean);
    /* random corruption of plain and compressed files never crashes */
    srand(777);
    uint8_t *m = malloc(bl);
    for (int iter = 0; iter < 600; iter++) {
        memcpy(m, bi, bl);
        size_t span = iter % 2 ? bl : 12; /* header-only or anywhere */
        for (int k = 0; k < 1 + rand() % 3; k++)
            m[(size_t)rand() % span] = (uint8_t)rand();
        if (iter % 3 == 0)
            write_gz(p, m, bl);
        else
            write_file(p, m, iter % 5 ? bl : (size_t)rand() % bl);
        diag_init(&d, NULL);
        int rc = data_read_idx(p, &ds, &d);
        if (rc == 0) {
            clean &= ds.nbytes == (size_t)dataset_numel(&ds) * dtype_size(ds.dtype);
            dataset_free(&ds);
        } else {
            clean &= d.msg[0] && !strchr(d.msg, '\n') && empty(&ds);
        }
    }
    CHECK(clean);
    free(m);
    free(z);
    free(bi);
    free(b);
}

/* ------------------------------------------------------------------ CSV */

static int csv_read(const char *name, const char *text, const CsvOptions *o, Dataset *x, Dataset *y, Diag *d)
{
    const char *p = tmp_path(name);
    write_file(p, text, strlen(text));
    diag_init(d, NULL);
    return data_read_csv(p, o, x, y, d);
}

static void csv_bad(const char *name, const char *text, const CsvOptions *o, const char *want)
{
    Diag d;
    Dataset x, y;
    int rc = csv_read(name, text, o, &x, &y, &d);
    CHECK(err_ok(rc, &d, tmp_path(name), want));
    CHECK(empty(&x) && empty(&y));
}

static void test_csv(void)
{
    Diag d;
    Dataset x, y;
    /* header detected, label by name, CRLF, blank lines, spaces and quotes */
    CsvOptions o = {.label = "label"};
    int rc = csv_read("a.csv", "f1,label,f2\r\n1.5, 3 ,\"-2\"\r\n\r\n0,0,1e3\r\n", &o, &x, &y, &d);
    CHECK(rc == 0);
    if (rc)
        fprintf(stderr, "  %s\n", d.msg);
    CHECK(x.dtype == DT_FLOAT && x.rank == 2 && x.dims[0] == 2 && x.dims[1] == 2);
    CHECK(rc == 0 && ((float *)x.data)[0] == 1.5f && ((float *)x.data)[1] == -2.0f && ((float *)x.data)[3] == 1000.0f);
    CHECK(y.dtype == DT_INT64 && y.rank == 1 && y.dims[0] == 2 && rc == 0 && ((int64_t *)y.data)[0] == 3 &&
          ((int64_t *)y.data)[1] == 0);
    dataset_free(&x);
    dataset_free(&y);

    /* no header, ';' delimiter, no final newline, label "last" */
    o = (CsvOptions){.delimiter = ';', .label = "last"};
    rc = csv_read("b.csv", "1;2;3\n4;5;6", &o, &x, &y, &d);
    CHECK(rc == 0 && x.dims[0] == 2 && x.dims[1] == 2 && ((float *)x.data)[2] == 4.0f && ((int64_t *)y.data)[1] == 6);
    dataset_free(&x);
    dataset_free(&y);

    /* label by index; forced header on a numeric first row; no labels */
    o = (CsvOptions){.label = "0", .header = CSV_HEADER_YES};
    rc = csv_read("c.csv", "9,9,9\n1,2,3\n", &o, &x, &y, &d);
    CHECK(rc == 0 && x.dims[0] == 1 && x.dims[1] == 2 && ((float *)x.data)[0] == 2.0f && ((int64_t *)y.data)[0] == 1);
    dataset_free(&x);
    dataset_free(&y);
    rc = csv_read("d.csv", "\xEF\xBB\xBF" "0.5\n-1\nnan\n", NULL, &x, NULL, &d);
    CHECK(rc == 0 && x.dims[0] == 3 && x.dims[1] == 1 && isnan(((float *)x.data)[2]));
    dataset_free(&x);
    diag_init(&d, NULL);
    CHECK(data_read(tmp_path("d.csv"), &x, &d) == 0 && x.dims[0] == 3);
    dataset_free(&x);

    /* random bytes in a table never crash the reader */
    {
        const char *base = "a,label,c\n1.5,2,-3e2\n\"4\", 5 ,6\r\n7,8,nan\n";
        size_t bl = strlen(base);
        char m[64];
        const char *p = fuzz_path("fuzz.csv");
        const char alphabet[] = ",\n\r\"0123456789.-+eEx \t\0abc";
        int clean = 1;
        srand(4242);
        for (int iter = 0; iter < 2000; iter++) {
            memcpy(m, base, bl);
            size_t n = bl;
            for (int k = 0; k < 1 + rand() % 4; k++)
                m[(size_t)rand() % n] = alphabet[(size_t)rand() % (sizeof alphabet - 1)];
            if (iter % 7 == 0)
                n = (size_t)rand() % bl;
            write_file(p, m, n);
            CsvOptions fo = {.label = iter % 2 ? "label" : NULL};
            diag_init(&d, NULL);
            int rc = data_read_csv(p, &fo, &x, &y, &d);
            if (rc == 0) {
                clean &= x.dtype == DT_FLOAT && x.rank == 2 && x.nbytes == (size_t)dataset_numel(&x) * 4;
                dataset_free(&x);
                dataset_free(&y);
            } else {
                clean &= d.msg[0] && !strchr(d.msg, '\n') && empty(&x) && empty(&y);
            }
        }
        CHECK(clean);
    }

    csv_bad("ragged.csv", "a,b\n1,2\n3\n", NULL, "line 3 has 1 fields, the header has 2");
    csv_bad("nan.csv", "1,2\n3,x\n", NULL, "line 2, column 2: 'x' is not a number");
    csv_bad("emptyfield.csv", "1,2\n3,\n", NULL, "line 2, column 2: empty field");
    csv_bad("empty.csv", "\n\n", NULL, "no rows");
    csv_bad("headeronly.csv", "a,b\n", NULL, "no data rows");
    csv_bad("range.csv", "1e39\n", NULL, "out of the range of float32");
    csv_bad("range2.csv", "1e999\n", NULL, "out of the range of float32");
    csv_bad("hex.csv", "0x10\n", &(CsvOptions){.header = CSV_HEADER_NO}, "not a number");
    o = (CsvOptions){.label = "label"};
    csv_bad("nolabel.csv", "a,b\n1,2\n", &o, "no column is named 'label'");
    csv_bad("labelnoheader.csv", "1,2\n", &o, "no header row");
    o = (CsvOptions){.label = "last"};
    csv_bad("frac.csv", "1,2.5\n", &o, "not a whole number");
    csv_bad("onlylabel.csv", "1\n2\n", &o, "only column");
    o = (CsvOptions){.label = "7"};
    csv_bad("labelrange.csv", "1,2\n", &o, "label column 7 does not exist");
    csv_bad("nul.csv", "1,2\n", &(CsvOptions){.delimiter = '.'}, "cannot be a CSV delimiter");
    {
        const char *p = tmp_path("nulbyte.csv");
        write_file(p, "1,2\n\0,3\n", 8);
        diag_init(&d, NULL);
        CHECK(err_ok(data_read_csv(p, NULL, &x, NULL, &d), &d, p, "NUL bytes"));
    }
}

/* ------------------------------------------------------------------ conversions */

static void test_convert(void)
{
    Diag d;
    Dataset u8, f, l;
    int64_t dims[3] = {2, 2, 2};
    diag_init(&d, NULL);
    CHECK(dataset_alloc(&u8, DT_UINT8, 3, dims, "mem", &d) == 0);
    for (int i = 0; i < 8; i++)
        ((uint8_t *)u8.data)[i] = (uint8_t)(i * 30);
    DataNorm n = {.scale = 1.0 / 255};
    CHECK(data_to_float32(&u8, &n, &f, &d) == 0);
    CHECK(f.dtype == DT_FLOAT && f.rank == 3 && fabsf(((float *)f.data)[7] - 210.0f / 255) < 1e-7f);
    dataset_free(&f);
    /* per-channel mean/std along dims[1] */
    double mean[2] = {0, 100}, sd[2] = {1, 2};
    n = (DataNorm){.nmean = 2, .mean = mean, .nstd = 2, .std = sd};
    CHECK(data_to_float32(&u8, &n, &f, &d) == 0);
    /* element 2 is sample 0, channel 1: (60 - 100) / 2 */
    CHECK(((float *)f.data)[2] == -20.0f && ((float *)f.data)[1] == 30.0f && ((float *)f.data)[6] == (180.0f - 100) / 2);
    dataset_free(&f);
    n = (DataNorm){.nmean = 3, .mean = (double[]){1, 2, 3}};
    diag_init(&d, NULL);
    CHECK(err_ok(data_to_float32(&u8, &n, &f, &d), &d, "mem", "3 means given"));
    n = (DataNorm){.nstd = 1, .std = (double[]){0}};
    diag_init(&d, NULL);
    CHECK(err_ok(data_to_float32(&u8, &n, &f, &d), &d, "mem", "not a positive number"));

    /* reshapes */
    CHECK(data_to_float32(&u8, NULL, &f, &d) == 0);
    CHECK(data_reshape_samples(&f, 1, (int64_t[]){4}, &d) == 0 && f.rank == 2 && f.dims[0] == 2 && f.dims[1] == 4);
    CHECK(data_reshape_samples(&f, 3, (int64_t[]){1, 2, 2}, &d) == 0 && f.rank == 4 && f.dims[3] == 2);
    diag_init(&d, NULL);
    CHECK(err_ok(data_reshape_samples(&f, 2, (int64_t[]){3, 3}, &d), &d, "mem", "each sample is"));
    CHECK(f.rank == 4);
    diag_init(&d, NULL);
    CHECK(data_reshape(&f, 2, (int64_t[]){-1, 2}, &d) == 0 && f.dims[0] == 4 && f.dims[1] == 2);
    CHECK(err_ok(data_reshape(&f, 2, (int64_t[]){3, -1}, &d), &d, "mem", "cannot reshape"));
    diag_init(&d, NULL);
    CHECK(err_ok(data_reshape(&f, 2, (int64_t[]){-1, -1}, &d), &d, "mem", "more than one"));
    dataset_free(&f);

    /* labels */
    Dataset lab;
    CHECK(dataset_alloc(&lab, DT_UINT8, 1, (int64_t[]){3}, "labels", &d) == 0);
    memcpy(lab.data, "\x00\x09\x05", 3);
    CHECK(data_to_labels(&lab, 10, &l, &d) == 0 && l.dtype == DT_INT64 && ((int64_t *)l.data)[1] == 9);
    dataset_free(&l);
    diag_init(&d, NULL);
    CHECK(err_ok(data_to_labels(&lab, 9, &l, &d), &d, "labels", "outside [0, 9)") && empty(&l));
    dataset_free(&lab);
    CHECK(dataset_alloc(&lab, DT_FLOAT, 2, (int64_t[]){2, 1}, "flabels", &d) == 0);
    ((float *)lab.data)[0] = 2;
    ((float *)lab.data)[1] = 0.5f;
    diag_init(&d, NULL);
    CHECK(err_ok(data_to_labels(&lab, 0, &l, &d), &d, "flabels", "not a whole number"));
    ((float *)lab.data)[1] = 1;
    CHECK(data_to_labels(&lab, 0, &l, &d) == 0 && l.rank == 1 && l.dims[0] == 2 && ((int64_t *)l.data)[1] == 1);
    dataset_free(&l);
    CHECK(data_reshape(&lab, 1, (int64_t[]){2}, &d) == 0);
    CHECK(data_reshape(&lab, 2, (int64_t[]){1, 2}, &d) == 0);
    diag_init(&d, NULL);
    CHECK(err_ok(data_to_labels(&lab, 0, &l, &d), &d, "flabels", "[N] or [N,1]"));
    dataset_free(&lab);
    dataset_free(&u8);
}

/* ------------------------------------------------------------------ writer */

static int count_tmp_files(void)
{
    DIR *dir = opendir(KDCC_TMP_DIR);
    int n = 0;
    struct dirent *e;
    while (dir && (e = readdir(dir)))
        n += strstr(e->d_name, ".tmp.") != NULL;
    if (dir)
        closedir(dir);
    return n;
}

static void test_writer(void)
{
    Diag d;
    Dataset ds;
    float logits[6] = {0.5f, -1.25f, 3e-8f, INFINITY, 7, 8};
    int64_t dims[2] = {2, 3};
    const char *p = tmp_path("logits.npy");
    diag_init(&d, NULL);
    CHECK(data_write_npy(p, DT_FLOAT, 2, dims, logits, &d) == 0);
    CHECK(data_read_npy(p, &ds, &d) == 0 && ds.dtype == DT_FLOAT && ds.rank == 2 && ds.dims[1] == 3 &&
          memcmp(ds.data, logits, sizeof logits) == 0);
    dataset_free(&ds);
    size_t n;
    uint8_t *b = read_all(p, &n);
    /* version 1.0, header padded to a multiple of 64 bytes and ending in '\n' */
    CHECK(b && n > sizeof logits && (n - sizeof logits) % 64 == 0 && b[6] == 1 && b[n - sizeof logits - 1] == '\n');
    free(b);
    int64_t labels[4] = {0, 9, -1, INT64_MAX};
    p = tmp_path("labels.npy");
    CHECK(data_write_npy(p, DT_INT64, 1, (int64_t[]){4}, labels, &d) == 0);
    CHECK(data_read_npy(p, &ds, &d) == 0 && ds.dtype == DT_INT64 && ds.rank == 1 && ds.dims[0] == 4 &&
          memcmp(ds.data, labels, sizeof labels) == 0);
    /* overwrite in place, via a Dataset */
    CHECK(dataset_write_npy(p, &ds, &d) == 0);
    dataset_free(&ds);
    /* scalar and rank 8 */
    p = tmp_path("scalar.npy");
    float one = 1;
    CHECK(data_write_npy(p, DT_FLOAT, 0, NULL, &one, &d) == 0);
    CHECK(data_read_npy(p, &ds, &d) == 0 && ds.rank == 0 && ((float *)ds.data)[0] == 1);
    dataset_free(&ds);
    int64_t d8[8] = {1, 1, 1, 1, 1, 1, 1, 2};
    p = tmp_path("rank8.npy");
    CHECK(data_write_npy(p, DT_FLOAT, 8, d8, logits, &d) == 0);
    CHECK(data_read_npy(p, &ds, &d) == 0 && ds.rank == 8 && ds.dims[7] == 2);
    dataset_free(&ds);
    CHECK(d.errors == 0);
    if (d.errors)
        fprintf(stderr, "  %s\n", d.msg);
    CHECK(count_tmp_files() == 0);
    /* failures leave nothing behind */
    p = KDCC_TMP_DIR "/no-such-dir/x.npy";
    diag_init(&d, NULL);
    CHECK(err_ok(data_write_npy(p, DT_FLOAT, 1, (int64_t[]){1}, &one, &d), &d, p, "cannot write"));
    diag_init(&d, NULL);
    CHECK(err_ok(data_write_npy(tmp_path("c.npy"), DT_COMPLEX64, 1, (int64_t[]){1}, &one, &d), &d, "c.npy", "cannot write complex64"));
    CHECK(count_tmp_files() == 0);
}

/* ------------------------------------------------------------------ Fashion-MNIST */

static int test_fashion(const char *dir)
{
    char p[1024], q[1024];
    snprintf(p, sizeof p, "%s/t10k-images-idx3-ubyte.gz", dir);
    snprintf(q, sizeof q, "%s/t10k-labels-idx1-ubyte.gz", dir);
    if (access(p, R_OK) != 0 || access(q, R_OK) != 0) {
        printf("SKIP: Fashion-MNIST is not in %s\n", dir);
        return 77;
    }
    Diag d;
    Dataset img, lab, x, y;
    diag_init(&d, NULL);
    int rc = data_read(p, &img, &d);
    CHECK(rc == 0);
    if (rc) {
        fprintf(stderr, "%s\n", d.msg);
        return 1;
    }
    CHECK(img.dtype == DT_UINT8 && img.rank == 3 && img.dims[0] == 10000 && img.dims[1] == 28 && img.dims[2] == 28);
    uint64_t sum = 0;
    for (size_t i = 0; i < img.nbytes; i++)
        sum += ((uint8_t *)img.data)[i];
    double mean = (double)sum / (double)img.nbytes;
    printf("t10k images: %lld x %lld x %lld uint8, pixel sum %llu, mean %.4f (%.4f scaled)\n", (long long)img.dims[0],
           (long long)img.dims[1], (long long)img.dims[2], (unsigned long long)sum, mean, mean / 255);
    /* the known mean of the Fashion-MNIST test images is 0.2868 of full scale */
    CHECK(fabs(mean / 255 - 0.2868) < 0.0005);
    CHECK(data_to_float32(&img, &(DataNorm){.scale = 1.0 / 255}, &x, &d) == 0);
    CHECK(data_reshape_samples(&x, 3, (int64_t[]){1, 28, 28}, &d) == 0 && x.rank == 4 && x.dims[1] == 1);
    double fsum = 0;
    for (int64_t i = 0; i < dataset_numel(&x); i++)
        fsum += ((float *)x.data)[i];
    CHECK(fabs(fsum / (double)dataset_numel(&x) - mean / 255) < 1e-6);
    CHECK(data_read(q, &lab, &d) == 0 && lab.dtype == DT_UINT8 && lab.rank == 1 && lab.dims[0] == 10000);
    CHECK(data_to_labels(&lab, 10, &y, &d) == 0);
    int64_t count[10] = {0};
    for (int64_t i = 0; i < y.dims[0]; i++)
        count[((int64_t *)y.data)[i]]++;
    for (int c = 0; c < 10; c++)
        CHECK(count[c] == 1000); /* the test set is balanced */
    if (d.errors)
        fprintf(stderr, "%s\n", d.msg);
    dataset_free(&img);
    dataset_free(&lab);
    dataset_free(&x);
    dataset_free(&y);
    printf("%d checks, %d failed\n", checks, failures);
    return failures ? 1 : 0;
}

/* .npy files for numpy to read back (tests/data/check_numpy.py) */
static int write_for_numpy(const char *dir)
{
    Diag d;
    diag_init(&d, NULL);
    char p[1024];
    float f[6] = {0.5f, -1.25f, 3e-8f, 1e30f, 7, 8};
    int64_t l[3] = {0, 9, -5};
    uint8_t u[4] = {0, 1, 254, 255};
    double g[2] = {0.1, -1e-300};
    snprintf(p, sizeof p, "%s/f32.npy", dir);
    int rc = data_write_npy(p, DT_FLOAT, 2, (int64_t[]){2, 3}, f, &d);
    snprintf(p, sizeof p, "%s/i64.npy", dir);
    rc |= data_write_npy(p, DT_INT64, 1, (int64_t[]){3}, l, &d);
    snprintf(p, sizeof p, "%s/u8.npy", dir);
    rc |= data_write_npy(p, DT_UINT8, 3, (int64_t[]){1, 2, 2}, u, &d);
    snprintf(p, sizeof p, "%s/f64.npy", dir);
    rc |= data_write_npy(p, DT_DOUBLE, 0, NULL, g, &d);
    if (rc)
        fprintf(stderr, "%s\n", d.msg);
    return rc ? 1 : 0;
}

static int dump(int n, char **files)
{
    for (int i = 0; i < n; i++) {
        Diag d;
        Dataset ds;
        diag_init(&d, NULL);
        if (data_read(files[i], &ds, &d)) {
            printf("error: %s\n", d.msg);
            continue;
        }
        int64_t numel = dataset_numel(&ds);
        double sum = 0;
        for (int64_t k = 0; k < numel; k++)
            sum += elem_get_f64(ds.data, ds.dtype, k);
        printf("%s [", dtype_name(ds.dtype));
        for (int k = 0; k < ds.rank; k++)
            printf("%s%lld", k ? "," : "", (long long)ds.dims[k]);
        printf("] %.17g %.17g %.17g\n", numel ? elem_get_f64(ds.data, ds.dtype, 0) : 0.0,
               numel ? elem_get_f64(ds.data, ds.dtype, numel - 1) : 0.0, sum);
        dataset_free(&ds);
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "--dump") == 0)
        return dump(argc - 2, argv + 2);
    if (argc == 3 && strcmp(argv[1], "--fashion") == 0)
        return test_fashion(argv[2]);
    if (argc == 3 && strcmp(argv[1], "--write") == 0)
        return write_for_numpy(argv[2]);
    mkdir(KDCC_TMP_DIR, 0755);
    fuzz_setup();
    test_npy_good();
    test_npy_bad();
    test_idx_good();
    test_idx_bad();
    test_csv();
    test_convert();
    test_writer();
    fuzz_cleanup();
    printf("%d checks, %d failed\n", checks, failures);
    return failures ? 1 : 0;
}

/* .npy reader (NumPy format 1.0, 2.0, 3.0).
 *
 * Layout: "\x93NUMPY", major, minor, header length (uint16 LE in 1.0, uint32 LE in
 * 2.0/3.0), then a Python dict literal such as
 *     {'descr': '<f4', 'fortran_order': False, 'shape': (10, 28, 28), }
 * padded with spaces and '\n', then the raw elements. The header is parsed by a
 * small bounded parser (never eval-like): exactly the three keys, each once.
 */
#include "frontends/data_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* numpy itself refuses headers over 10000 bytes by default; allow some slack */
#define NPY_MAX_HEADER 65536

typedef struct NpyParse {
    const char *p, *end;
    const char *err;     /* what is wrong, for the message */
    char errbuf[160];
} NpyParse;

static void skip_ws(NpyParse *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

static int expect(NpyParse *s, char c, const char *what)
{
    skip_ws(s);
    if (s->p >= s->end || *s->p != c) {
        snprintf(s->errbuf, sizeof s->errbuf, "expected %s", what);
        s->err = s->errbuf;
        return -1;
    }
    s->p++;
    return 0;
}

/* A quoted string ('...' or "...") without escapes, into buf. */
static int parse_str(NpyParse *s, char *buf, size_t n)
{
    skip_ws(s);
    if (s->p >= s->end || (*s->p != '\'' && *s->p != '"')) {
        s->err = "expected a quoted string";
        return -1;
    }
    char q = *s->p++;
    size_t len = 0;
    while (s->p < s->end && *s->p != q) {
        if (*s->p == '\\' || *s->p == '\n') {
            s->err = "unsupported character in a string";
            return -1;
        }
        if (len + 1 >= n) {
            s->err = "string too long";
            return -1;
        }
        buf[len++] = *s->p++;
    }
    if (s->p >= s->end) {
        s->err = "unterminated string";
        return -1;
    }
    s->p++;
    buf[len] = 0;
    return 0;
}

static int parse_bool(NpyParse *s, int *out)
{
    skip_ws(s);
    size_t left = (size_t)(s->end - s->p);
    if (left >= 4 && memcmp(s->p, "True", 4) == 0) {
        s->p += 4;
        *out = 1;
        return 0;
    }
    if (left >= 5 && memcmp(s->p, "False", 5) == 0) {
        s->p += 5;
        *out = 0;
        return 0;
    }
    s->err = "fortran_order is not True or False";
    return -1;
}

/* (d0, d1, ...) with an optional trailing comma; () is a scalar. */
static int parse_shape(NpyParse *s, int *rank, int64_t *dims)
{
    if (expect(s, '(', "'(' to start the shape"))
        return -1;
    *rank = 0;
    for (;;) {
        skip_ws(s);
        if (s->p < s->end && *s->p == ')') {
            s->p++;
            return 0;
        }
        if (s->p >= s->end || *s->p < '0' || *s->p > '9') {
            s->err = "the shape holds something other than non-negative integers";
            return -1;
        }
        uint64_t v = 0;
        while (s->p < s->end && *s->p >= '0' && *s->p <= '9') {
            unsigned dgt = (unsigned)(*s->p - '0');
            if (v > ((uint64_t)INT64_MAX - dgt) / 10) {
                s->err = "a dimension of the shape is too large";
                return -1;
            }
            v = v * 10 + dgt;
            s->p++;
        }
        if (s->p < s->end && *s->p == 'L') /* Python 2 long */
            s->p++;
        if (*rank >= KD_MAX_RANK) {
            snprintf(s->errbuf, sizeof s->errbuf, "the shape has more than %d dims", KD_MAX_RANK);
            s->err = s->errbuf;
            return -1;
        }
        dims[(*rank)++] = (int64_t)v;
        skip_ws(s);
        if (s->p < s->end && *s->p == ',') {
            s->p++;
            continue;
        }
        if (s->p < s->end && *s->p == ')') {
            s->p++;
            return 0;
        }
        s->err = "expected ',' or ')' in the shape";
        return -1;
    }
}

/* descr such as '<f4' into dtype and whether bytes need swapping. */
static int npy_dtype(const char *descr, DType *dt, int *swap, const char **why)
{
    if (strlen(descr) < 3) {
        *why = "too short";
        return -1;
    }
    char order = descr[0];
    const char *t = descr + 1;
    static const struct {
        const char *code;
        DType dt;
    } tab[] = {
        {"f4", DT_FLOAT}, {"f8", DT_DOUBLE}, {"f2", DT_FLOAT16}, {"u1", DT_UINT8}, {"i1", DT_INT8},
        {"b1", DT_BOOL},  {"i2", DT_INT16},  {"u2", DT_UINT16},  {"i4", DT_INT32}, {"u4", DT_UINT32},
        {"i8", DT_INT64}, {"u8", DT_UINT64},
    };
    *dt = DT_UNDEFINED;
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
        if (strcmp(t, tab[i].code) == 0)
            *dt = tab[i].dt;
    if (*dt == DT_UNDEFINED) {
        *why = "not a supported element type (float16/32/64, int8/16/32/64, uint8/16/32/64, bool)";
        return -1;
    }
    size_t es = dtype_size(*dt);
    int little = data_host_little_endian();
    switch (order) {
    case '<': *swap = es > 1 && !little; break;
    case '>': *swap = es > 1 && little; break;
    case '=': *swap = 0; break;
    case '|':
        if (es > 1) {
            *why = "byte order '|' (not applicable) given for a multi-byte type";
            return -1;
        }
        *swap = 0;
        break;
    default:
        *why = "byte order is not '<', '>', '|' or '='";
        return -1;
    }
    return 0;
}

static uint32_t le32(const uint8_t *b)
{
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

int data_read_npy(const char *path, Dataset *out, Diag *d)
{
    dataset_init(out);
    FILE *f = fopen(path, "rb");
    if (!f)
        return data_err(d, path, "cannot open: %s", strerror(errno));
    int rc = -1;
    char *hdr = NULL;
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        data_err(d, path, "not a regular file");
        goto out;
    }
    uint64_t fsize = (uint64_t)st.st_size;
    uint8_t pre[12];
    size_t got = fread(pre, 1, 10, f);
    if (got < 8 || memcmp(pre, "\x93NUMPY", 6) != 0) {
        data_err(d, path, "not an .npy file (%s)", got < 6 ? "file too short for the magic \\x93NUMPY" : "bad magic: it does not start with \\x93NUMPY");
        goto out;
    }
    int major = pre[6], minor = pre[7];
    if (major < 1 || major > 3) {
        data_unsupported(d, path, ".npy format version %d.%d is not supported (1.0, 2.0, 3.0 are)", major, minor);
        goto out;
    }
    size_t lenbytes = major == 1 ? 2 : 4;
    if (got < 10) {
        data_err(d, path, "truncated header: the file ends inside the header length");
        goto out;
    }
    if (major > 1 && fread(pre + 10, 1, 2, f) != 2) {
        data_err(d, path, "truncated header: the file ends inside the header length");
        goto out;
    }
    uint64_t hlen = major == 1 ? ((uint64_t)pre[8] | (uint64_t)pre[9] << 8) : le32(pre + 8);
    uint64_t hstart = 8 + lenbytes;
    if (hlen > NPY_MAX_HEADER) {
        data_err(d, path, "header length %" PRIu64 " is larger than the limit of %d bytes", hlen, NPY_MAX_HEADER);
        goto out;
    }
    if (hstart + hlen > fsize) {
        data_err(d, path, "truncated header: it says %" PRIu64 " bytes but the file has %" PRIu64 " after the length field",
                 hlen, fsize - hstart);
        goto out;
    }
    hdr = malloc(hlen + 1);
    if (!hdr) {
        data_err(d, path, "out of memory");
        goto out;
    }
    if (fread(hdr, 1, hlen, f) != hlen) {
        data_err(d, path, "truncated header: cannot read %" PRIu64 " header bytes", hlen);
        goto out;
    }
    hdr[hlen] = 0;

    /* parse the dict */
    NpyParse s = {.p = hdr, .end = hdr + hlen};
    char descr[32] = "";
    int fortran = 0, rank = 0, seen = 0;
    int64_t dims[KD_MAX_RANK] = {0};
    if (expect(&s, '{', "'{' at the start of the header"))
        goto bad_header;
    for (;;) {
        skip_ws(&s);
        if (s.p < s.end && *s.p == '}') {
            s.p++;
            break;
        }
        char key[32];
        if (parse_str(&s, key, sizeof key))
            goto bad_header;
        if (expect(&s, ':', "':' after a key"))
            goto bad_header;
        int bit;
        if (strcmp(key, "descr") == 0) {
            bit = 1;
            skip_ws(&s);
            if (s.p < s.end && (*s.p == '[' || *s.p == '{')) {
                data_unsupported(d, path, "structured arrays (a list or dict as descr) are not supported");
                goto out;
            }
            if (parse_str(&s, descr, sizeof descr))
                goto bad_header;
        } else if (strcmp(key, "fortran_order") == 0) {
            bit = 2;
            if (parse_bool(&s, &fortran))
                goto bad_header;
        } else if (strcmp(key, "shape") == 0) {
            bit = 4;
            if (parse_shape(&s, &rank, dims))
                goto bad_header;
        } else {
            snprintf(s.errbuf, sizeof s.errbuf, "unknown key '%s'", key);
            s.err = s.errbuf;
            goto bad_header;
        }
        if (seen & bit) {
            snprintf(s.errbuf, sizeof s.errbuf, "key '%s' is given twice", key);
            s.err = s.errbuf;
            goto bad_header;
        }
        seen |= bit;
        skip_ws(&s);
        if (s.p < s.end && *s.p == ',') {
            s.p++;
            continue;
        }
        if (s.p < s.end && *s.p == '}') {
            s.p++;
            break;
        }
        s.err = "expected ',' or '}' after a value";
        goto bad_header;
    }
    skip_ws(&s);
    if (s.p != s.end) {
        s.err = "unexpected text after the closing '}'";
        goto bad_header;
    }
    if (seen != 7) {
        s.err = !(seen & 1) ? "no 'descr' key" : !(seen & 2) ? "no 'fortran_order' key" : "no 'shape' key";
        goto bad_header;
    }
    DType dt;
    int swap;
    const char *why;
    if (npy_dtype(descr, &dt, &swap, &why)) {
        data_unsupported(d, path, "element type '%s': %s", descr, why);
        goto out;
    }
    if (fortran) {
        data_unsupported(d, path, "the array is in Fortran order (fortran_order: True); only C order is supported: save it with np.ascontiguousarray");
        goto out;
    }
    int64_t numel;
    size_t need;
    char shp[200];
    data_shape_str(dt, rank, dims, shp, sizeof shp);
    if (data_shape_bytes(rank, dims, dtype_size(dt), &numel, &need)) {
        data_err(d, path, "shape %s is too large (more than %zu bytes, or the product of its dims overflows)", shp, DATA_MAX_BYTES);
        goto out;
    }
    uint64_t avail = fsize - hstart - hlen;
    if (avail != need) {
        data_err(d, path, "%s: the shape %s needs %zu bytes of data, the file has %" PRIu64,
                 avail < need ? "data shorter than the shape" : "data longer than the shape", shp, need, avail);
        goto out;
    }
    if (dataset_alloc(out, dt, rank, dims, path, d))
        goto out;
    if (need && fread(out->data, 1, need, f) != need) {
        data_err(d, path, "cannot read the data: %s", ferror(f) ? strerror(errno) : "file shrank while reading");
        dataset_free(out);
        goto out;
    }
    if (swap)
        data_swap_bytes(out->data, need, dtype_size(dt));
    if (dt == DT_BOOL)
        for (size_t i = 0; i < need; i++)
            ((uint8_t *)out->data)[i] = ((uint8_t *)out->data)[i] != 0;
    rc = 0;
    goto out;

bad_header:
    data_err(d, path, "malformed .npy header at byte %ld: %s", (long)(s.p - hdr), s.err ? s.err : "syntax error");
out:
    free(hdr);
    fclose(f);
    return rc;
}

/* ONNX binary import: ModelProto (decoded by protobuf-c from the system onnx.proto)
 * into a Graph.
 *
 * Everything read from the file is untrusted: dtypes, ranks, dims and data lengths
 * are checked before they reach an allocation, and every failure is one Diag line.
 * The decoded protobuf is freed before returning; the Graph holds arena copies only.
 */
#ifndef _XOPEN_SOURCE
#define _XOPEN_SOURCE 700 /* realpath */
#endif
#include "frontends/onnx.h"

#include "onnx.pb-c.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_MAX_MODEL_BYTES ((size_t)2 << 30) /* 2 GiB */

typedef struct Ctx {
    Arena *a;
    Graph *g;          /* NULL when reading a lone TensorProto */
    Diag *d;
    const char *path;  /* model (or tensor) file; NULL for a buffer without path */
    /* opsets of non-default domains, only so that their nodes can be listed */
    int ndom;
    const char **dom;
    int *domver;
} Ctx;

/* ------------------------------------------------------------------ files */

/* Read a whole regular file into malloc'd memory, refusing files larger than max
 * before reading. 0 ok (*buf may be NULL for an empty file). */
static int slurp(const char *path, size_t max, uint8_t **buf, size_t *len, Diag *d)
{
    *buf = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return diag_error(d, NULL, "cannot open '%s': %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return diag_error(d, NULL, "cannot read '%s': %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return diag_error(d, NULL, "'%s' is not a regular file", path);
    }
    if (st.st_size < 0 || (uint64_t)st.st_size > (uint64_t)max) {
        close(fd);
        return diag_error(d, NULL, "'%s' is %lld bytes, larger than the limit of %zu bytes",
                          path, (long long)st.st_size, max);
    }
    size_t n = (size_t)st.st_size;
    uint8_t *p = malloc(n ? n : 1);
    if (!p) {
        close(fd);
        return diag_error(d, NULL, "out of memory reading '%s' (%zu bytes)", path, n);
    }
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, p + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            int e = r < 0 ? errno : 0;
            free(p);
            close(fd);
            return diag_error(d, NULL, "cannot read '%s': %s", path, e ? strerror(e) : "file shrank while reading");
        }
        got += (size_t)r;
    }
    close(fd);
    *buf = p;
    *len = n;
    return 0;
}

/* Describe why bytes are not an ONNX protobuf, for the one-line error. */
static const char *sniff_not_onnx(const uint8_t *buf, size_t len)
{
    if (len == 0)
        return "empty file";
    if (len >= 8 && memcmp(buf, "\x89PNG\r\n\x1a\n", 8) == 0)
        return "this is a PNG image";
    if (len >= 3 && buf[0] == 0xff && buf[1] == 0xd8 && buf[2] == 0xff)
        return "this is a JPEG image";
    if (len >= 4 && (memcmp(buf, "PK\x03\x04", 4) == 0 || memcmp(buf, "\x1f\x8b", 2) == 0))
        return "this is a compressed archive";
    if (len >= 6 && memcmp(buf, "\x93NUMPY", 6) == 0)
        return "this is a .npy array";
    size_t n = len < 256 ? len : 256, text = 0;
    for (size_t i = 0; i < n; i++)
        if ((buf[i] >= 0x20 && buf[i] < 0x7f) || buf[i] == '\n' || buf[i] == '\r' || buf[i] == '\t')
            text++;
    if (text == n)
        return "this looks like a text file; the ONNX textual syntax is read from files ending in .txt or .onnxtxt";
    return NULL;
}

/* ------------------------------------------------------------------ tensors */

static void shape_str(DType dt, int rank, const int64_t *dims, char *buf, size_t n)
{
    size_t len = (size_t)snprintf(buf, n, "%s[", dtype_name(dt));
    for (int i = 0; i < rank && len < n; i++)
        len += (size_t)snprintf(buf + len, n - len, "%s%" PRId64, i ? "," : "", dims[i]);
    if (len < n)
        snprintf(buf + len, n - len, "]");
}

static int is_sep(char c)
{
    return c == '/' || c == '\\';
}

/* A location is acceptable if it is relative and has no ".." component. */
static int location_is_safe(const char *loc)
{
    if (!loc[0] || is_sep(loc[0]))
        return 0;
    if (((loc[0] >= 'A' && loc[0] <= 'Z') || (loc[0] >= 'a' && loc[0] <= 'z')) && loc[1] == ':')
        return 0; /* C:\... */
    const char *p = loc;
    while (*p) {
        const char *q = p;
        while (*q && !is_sep(*q))
            q++;
        if (q - p == 2 && p[0] == '.' && p[1] == '.')
            return 0;
        p = *q ? q + 1 : q;
    }
    return 1;
}

static int parse_u64(const char *s, uint64_t *out)
{
    if (!s || !*s)
        return -1;
    uint64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
            return -1;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *out = v;
    return 0;
}

/* Data of tensor `what` stored in a file beside the model. need = bytes the shape
 * needs (already validated). Checks the file before allocating. */
static int read_external(Ctx *c, const Onnx__TensorProto *tp, const char *what, const Node *n,
                         size_t need, void **out)
{
    Diag *d = c->d;
    const char *loc = NULL;
    uint64_t offset = 0, length = 0;
    int has_length = 0;
    for (size_t i = 0; i < tp->n_external_data; i++) {
        const Onnx__StringStringEntryProto *e = tp->external_data[i];
        if (!e || !e->key)
            continue;
        if (strcmp(e->key, "location") == 0)
            loc = e->value;
        else if (strcmp(e->key, "offset") == 0) {
            if (parse_u64(e->value, &offset))
                return diag_error(d, n, "%s: external data offset '%s' is not a non-negative integer", what, e->value ? e->value : "");
        } else if (strcmp(e->key, "length") == 0) {
            if (parse_u64(e->value, &length))
                return diag_error(d, n, "%s: external data length '%s' is not a non-negative integer", what, e->value ? e->value : "");
            has_length = 1;
        }
    }
    if (!loc || !loc[0])
        return diag_error(d, n, "%s: external data has no 'location'", what);
    if (!location_is_safe(loc))
        return diag_error(d, n, "%s: external data location '%s' must be a relative path inside the model's folder (no absolute paths, no '..')", what, loc);
    if (!c->path)
        return diag_error(d, n, "%s: external data '%s' needs the model's file path to be found", what, loc);

    /* the model's folder */
    const char *slash = strrchr(c->path, '/');
    char *dir = slash ? arena_strndup(c->a, c->path, slash == c->path ? 1 : (size_t)(slash - c->path))
                      : arena_strdup(c->a, ".");
    char *full = dir ? arena_printf(c->a, "%s/%s", dir, loc) : NULL;
    if (!full)
        return diag_error(d, n, "out of memory");
    char *rdir = realpath(dir, NULL);
    if (!rdir)
        return diag_error(d, n, "%s: cannot resolve the model's folder '%s': %s", what, dir, strerror(errno));
    char *rfile = realpath(full, NULL);
    if (!rfile) {
        int e = errno;
        free(rdir);
        return diag_error(d, n, "%s: cannot open external data file '%s': %s", what, full, strerror(e));
    }
    size_t dl = strlen(rdir);
    int inside = strncmp(rfile, rdir, dl) == 0 && (rfile[dl] == '/' || (dl == 1 && rdir[0] == '/'));
    free(rdir);
    if (!inside) {
        free(rfile);
        return diag_error(d, n, "%s: external data file '%s' resolves outside the model's folder (symbolic link?)", what, loc);
    }
    int fd = open(rfile, O_RDONLY);
    free(rfile);
    if (fd < 0)
        return diag_error(d, n, "%s: cannot open external data file '%s': %s", what, full, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 0) {
        close(fd);
        return diag_error(d, n, "%s: external data '%s' is not a readable regular file", what, full);
    }
    uint64_t fsize = (uint64_t)st.st_size;
    if (offset > fsize) {
        close(fd);
        return diag_error(d, n, "%s: external data offset %" PRIu64 " is past the end of '%s' (%" PRIu64 " bytes)", what, offset, full, fsize);
    }
    uint64_t avail = has_length ? length : fsize - offset;
    if (has_length && length > fsize - offset) {
        close(fd);
        return diag_error(d, n, "%s: external data '%s' is too short: %" PRIu64 " bytes at offset %" PRIu64 " requested, the file has %" PRIu64,
                          what, full, length, offset, fsize);
    }
    if (avail != (uint64_t)need) {
        close(fd);
        return diag_error(d, n, "%s: external data has %" PRIu64 " bytes but the shape needs %zu (%s)", what, avail, need,
                          avail < need ? "data shorter than the shape" : "data longer than the shape");
    }
    uint8_t *p = arena_alloc(c->a, need ? need : 1);
    if (!p) {
        close(fd);
        return diag_error(d, n, "%s: out of memory (%zu bytes)", what, need);
    }
    size_t got = 0;
    while (got < need) {
        ssize_t r = pread(fd, p + got, need - got, (off_t)(offset + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            close(fd);
            return diag_error(d, n, "%s: cannot read external data '%s'", what, full);
        }
        got += (size_t)r;
    }
    close(fd);
    *out = p;
    return 0;
}

static void to_little_endian(void *p, size_t nbytes, size_t es)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    uint8_t *b = p;
    for (size_t i = 0; i + es <= nbytes; i += es)
        for (size_t j = 0; j < es / 2; j++) {
            uint8_t t = b[i + j];
            b[i + j] = b[i + es - 1 - j];
            b[i + es - 1 - j] = t;
        }
#else
    (void)p;
    (void)nbytes;
    (void)es;
#endif
}

/* Decode a TensorProto into t (data in c->a). `what` names it in messages
 * ("initializer 'W'"); n is the node it belongs to, if any. */
static int decode_tensor(Ctx *c, const Onnx__TensorProto *tp, Tensor *t, const char *what, const Node *n)
{
    Diag *d = c->d;
    memset(t, 0, sizeof *t);
    t->name = tp->name && tp->name[0] ? arena_strdup(c->a, tp->name) : NULL;
    if (!tp->has_data_type || tp->data_type == DT_UNDEFINED)
        return diag_error(d, n, "%s has no data type", what);
    if (tp->data_type < 0 || tp->data_type >= DT_COUNT_)
        return diag_error(d, n, "%s has unknown data type %d", what, (int)tp->data_type);
    DType dt = (DType)tp->data_type;
    size_t es = dtype_size(dt);
    if (dt == DT_STRING)
        return diag_unsupported(d, n, "%s: string tensors are not supported", what);
    if (!es || !dtype_ctype(dt))
        return diag_unsupported(d, n, "%s has dtype %s, which kdcc does not support", what, dtype_name(dt));
    if (tp->n_dims > KD_MAX_RANK)
        return diag_unsupported(d, n, "%s has rank %zu; kdcc supports rank up to %d", what, tp->n_dims, KD_MAX_RANK);
    if (tp->segment)
        return diag_unsupported(d, n, "%s is a segment of a larger tensor, which is not supported", what);
    t->dtype = dt;
    t->rank = (int)tp->n_dims;
    for (int i = 0; i < t->rank; i++) {
        if (tp->dims[i] < 0)
            return diag_error(d, n, "%s has negative dimension %" PRId64 " at axis %d", what, tp->dims[i], i);
        t->dims[i] = tp->dims[i];
    }
    int64_t numel = dims_numel(t->rank, t->dims);
    if (numel < 0 || (uint64_t)numel > SIZE_MAX / es || (uint64_t)numel * es > ((uint64_t)1 << 47))
        return diag_error(d, n, "%s: shape has too many elements (the product of its dims overflows)", what);
    size_t need = (size_t)numel * es;
    char shp[160];
    shape_str(dt, t->rank, t->dims, shp, sizeof shp);

    if (tp->has_data_location && tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL) {
        if (read_external(c, tp, what, n, need, &t->data))
            return -1;
        to_little_endian(t->data, need, es);
        t->nbytes = need;
        return 0;
    }

    /* typed field carrying this dtype, and its element count */
    size_t ntyped = 0;
    switch (dt) {
    case DT_FLOAT: ntyped = tp->n_float_data; break;
    case DT_DOUBLE: ntyped = tp->n_double_data; break;
    case DT_INT64: ntyped = tp->n_int64_data; break;
    case DT_UINT32: case DT_UINT64: ntyped = tp->n_uint64_data; break;
    default: ntyped = tp->n_int32_data; break; /* int8/16/32, uint8/16, bool, float16, bfloat16 */
    }
    int use_raw = tp->has_raw_data && (tp->raw_data.len > 0 || ntyped == 0);
    if (use_raw) {
        if (tp->raw_data.len != need)
            return diag_error(d, n, "%s: raw data has %zu bytes but shape %s needs %zu (%s)", what,
                              tp->raw_data.len, shp, need,
                              tp->raw_data.len < need ? "data shorter than the shape" : "data longer than the shape");
    } else if (ntyped != (size_t)numel) {
        return diag_error(d, n, "%s: has %zu values but shape %s needs %" PRId64 " (%s)", what, ntyped, shp, numel,
                          ntyped < (size_t)numel ? "data shorter than the shape" : "data longer than the shape");
    }
    void *p = arena_alloc(c->a, need ? need : 1);
    if (!p)
        return diag_error(d, n, "%s: out of memory (%zu bytes)", what, need);
    t->data = p;
    t->nbytes = need;
    if (use_raw) {
        if (need)
            memcpy(p, tp->raw_data.data, need);
        to_little_endian(p, need, es);
        return 0;
    }
    for (size_t i = 0; i < ntyped; i++) {
        switch (dt) {
        case DT_FLOAT: ((float *)p)[i] = tp->float_data[i]; break;
        case DT_DOUBLE: ((double *)p)[i] = tp->double_data[i]; break;
        case DT_INT64: ((int64_t *)p)[i] = tp->int64_data[i]; break;
        case DT_UINT64: ((uint64_t *)p)[i] = tp->uint64_data[i]; break;
        case DT_UINT32: ((uint32_t *)p)[i] = (uint32_t)tp->uint64_data[i]; break;
        case DT_INT32: ((int32_t *)p)[i] = tp->int32_data[i]; break;
        case DT_INT16: ((int16_t *)p)[i] = (int16_t)tp->int32_data[i]; break;
        case DT_INT8: ((int8_t *)p)[i] = (int8_t)tp->int32_data[i]; break;
        case DT_UINT16: case DT_FLOAT16: case DT_BFLOAT16:
            ((uint16_t *)p)[i] = (uint16_t)(uint32_t)tp->int32_data[i]; break;
        case DT_UINT8: ((uint8_t *)p)[i] = (uint8_t)(uint32_t)tp->int32_data[i]; break;
        case DT_BOOL: ((uint8_t *)p)[i] = tp->int32_data[i] != 0; break;
        default: break;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ types */

/* dtype and shape of a ValueInfo. rank -1 if no shape. Non-tensor types: unsupported
 * (if strict) or ignored (returns 1). */
static int read_type(Ctx *c, const Onnx__ValueInfoProto *vi, const char *what, int strict,
                     DType *dt, int *rank, int64_t *dims, const char **dparam)
{
    *dt = DT_UNDEFINED;
    *rank = -1;
    for (int i = 0; i < KD_MAX_RANK; i++) {
        dims[i] = -1;
        dparam[i] = NULL;
    }
    const Onnx__TypeProto *tp = vi->type;
    if (!tp || tp->value_case == ONNX__TYPE_PROTO__VALUE__NOT_SET)
        return 0;
    if (tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !tp->tensor_type) {
        if (!strict)
            return 1;
        const char *k = tp->value_case == ONNX__TYPE_PROTO__VALUE_SEQUENCE_TYPE ? "a sequence"
                        : tp->value_case == ONNX__TYPE_PROTO__VALUE_MAP_TYPE ? "a map"
                        : tp->value_case == ONNX__TYPE_PROTO__VALUE_OPTIONAL_TYPE ? "an optional"
                        : tp->value_case == ONNX__TYPE_PROTO__VALUE_SPARSE_TENSOR_TYPE ? "a sparse tensor"
                                                                                       : "a non-tensor";
        return diag_unsupported(c->d, NULL, "%s '%s' has %s type; only tensors are supported", what, vi->name, k);
    }
    const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
    if (tt->has_elem_type && tt->elem_type != 0) {
        if (tt->elem_type < 0 || tt->elem_type >= DT_COUNT_) {
            if (!strict)
                return 1;
            return diag_error(c->d, NULL, "%s '%s' has unknown element type %d", what, vi->name, (int)tt->elem_type);
        }
        *dt = (DType)tt->elem_type;
        if (strict && !dtype_ctype(*dt))
            return diag_unsupported(c->d, NULL, "%s '%s' has dtype %s, which kdcc does not support", what, vi->name, dtype_name(*dt));
    }
    if (!tt->shape)
        return 0;
    if (tt->shape->n_dim > KD_MAX_RANK) {
        if (!strict)
            return 1;
        return diag_unsupported(c->d, NULL, "%s '%s' has rank %zu; kdcc supports rank up to %d", what, vi->name, tt->shape->n_dim, KD_MAX_RANK);
    }
    *rank = (int)tt->shape->n_dim;
    for (int i = 0; i < *rank; i++) {
        const Onnx__TensorShapeProto__Dimension *dm = tt->shape->dim[i];
        if (!dm)
            continue;
        if (dm->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE && dm->dim_value >= 0)
            dims[i] = dm->dim_value;
        else if (dm->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM && dm->dim_param && dm->dim_param[0])
            dparam[i] = arena_strdup(c->a, dm->dim_param);
    }
    return 0;
}

static void set_type(Value *v, DType dt, int rank, const int64_t *dims, const char *const *dparam)
{
    value_set_shape(v, dt, rank, dims);
    for (int i = 0; i < KD_MAX_RANK; i++)
        v->dim_param[i] = i < rank ? dparam[i] : NULL;
}

/* ------------------------------------------------------------------ nodes */

static AttrType guess_attr_type(const Onnx__AttributeProto *ap)
{
    if (ap->has_f) return AT_FLOAT;
    if (ap->has_i) return AT_INT;
    if (ap->has_s) return AT_STRING;
    if (ap->t) return AT_TENSOR;
    if (ap->g) return AT_GRAPH;
    if (ap->sparse_tensor) return AT_SPARSE_TENSOR;
    if (ap->tp) return AT_TYPE_PROTO;
    if (ap->n_floats) return AT_FLOATS;
    if (ap->n_ints) return AT_INTS;
    if (ap->n_strings) return AT_STRINGS;
    if (ap->n_tensors) return AT_TENSORS;
    if (ap->n_graphs) return AT_GRAPHS;
    if (ap->n_sparse_tensors) return AT_SPARSE_TENSORS;
    if (ap->n_type_protos) return AT_TYPE_PROTOS;
    return AT_UNDEFINED;
}

/* An identifier ([A-Za-z_][A-Za-z0-9_]*) or, with dots, a dotted one (a.b.c). The
 * ONNX IR makes operator types and attribute names identifiers and domains dotted
 * identifiers; the textual syntax writes them bare, so anything else is refused. */
static int is_identifier(const char *s, int dotted)
{
    int start = 1;
    for (; *s; s++) {
        char ch = *s;
        int alpha = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_';
        if (dotted && ch == '.' && !start && s[1])
            start = 1;
        else if (alpha || (!start && ch >= '0' && ch <= '9'))
            start = 0;
        else
            return 0;
    }
    return !start;
}

/* A name from the file for a message: printable ASCII, at most 60 bytes. */
static const char *shown(const char *s, char *buf, size_t n)
{
    size_t k = 0;
    for (; *s && k + 4 < n && k < 60; s++)
        buf[k++] = (*s >= 32 && *s < 127) ? *s : '?';
    if (*s && k + 3 < n)
        buf[k++] = '.', buf[k++] = '.', buf[k++] = '.';
    buf[k] = 0;
    return buf;
}

static int read_attr(Ctx *c, Node *n, const Onnx__AttributeProto *ap)
{
    Graph *g = c->g;
    Diag *d = c->d;
    const char *name = ap->name ? ap->name : "";
    if (!name[0])
        return diag_error(d, n, "an attribute has no name");
    char sb[80];
    if (!is_identifier(name, 0))
        return diag_error(d, n, "attribute name '%s' is not an identifier", shown(name, sb, sizeof sb));
    if (node_attr(n, name))
        return diag_error(d, n, "attribute '%s' is given twice", name);
    if (ap->ref_attr_name && ap->ref_attr_name[0])
        return diag_unsupported(d, n, "attribute '%s' refers to function attribute '%s' (ref_attr_name), which is not supported",
                                name, ap->ref_attr_name);
    AttrType ty = (ap->has_type && ap->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__UNDEFINED)
                      ? (AttrType)ap->type : guess_attr_type(ap);
    switch (ty) {
    case AT_GRAPH: case AT_GRAPHS:
        return diag_unsupported(d, n, "subgraphs (If/Loop/Scan bodies) are not supported yet (attribute '%s')", name);
    case AT_SPARSE_TENSOR: case AT_SPARSE_TENSORS:
        return diag_unsupported(d, n, "sparse tensor attribute '%s' is not supported", name);
    case AT_TYPE_PROTO: case AT_TYPE_PROTOS:
        return diag_unsupported(d, n, "type attribute '%s' is not supported", name);
    case AT_FLOAT: case AT_INT: case AT_STRING: case AT_TENSOR:
    case AT_FLOATS: case AT_INTS: case AT_STRINGS: case AT_TENSORS:
        break;
    default:
        return diag_error(d, n, "attribute '%s' has unknown or missing type %d", name, (int)ty);
    }
    Attr *a = node_add_attr(g, n, name, ty);
    if (!a)
        return diag_error(d, n, "out of memory");
    switch (ty) {
    case AT_FLOAT:
        a->f = ap->f;
        break;
    case AT_INT:
        a->i = ap->i;
        break;
    case AT_STRING:
        a->slen = ap->s.len;
        a->s = arena_strndup(g->arena, ap->s.data ? (const char *)ap->s.data : "", ap->s.len);
        if (!a->s)
            return diag_error(d, n, "out of memory");
        break;
    case AT_TENSOR: {
        if (!ap->t)
            return diag_error(d, n, "tensor attribute '%s' has no tensor", name);
        a->t = arena_alloc(g->arena, sizeof(Tensor));
        char *what = arena_printf(g->arena, "tensor of attribute '%s'", name);
        if (!a->t || !what)
            return diag_error(d, n, "out of memory");
        if (decode_tensor(c, ap->t, a->t, what, n))
            return -1;
        break;
    }
    case AT_FLOATS:
        if (ap->n_floats > INT_MAX)
            return diag_error(d, n, "attribute '%s' is too long", name);
        a->n = (int)ap->n_floats;
        a->floats = arena_array(g->arena, ap->n_floats ? ap->n_floats : 1, sizeof(double));
        if (!a->floats)
            return diag_error(d, n, "out of memory");
        for (size_t i = 0; i < ap->n_floats; i++)
            a->floats[i] = ap->floats[i];
        break;
    case AT_INTS:
        if (ap->n_ints > INT_MAX)
            return diag_error(d, n, "attribute '%s' is too long", name);
        a->n = (int)ap->n_ints;
        a->ints = arena_array(g->arena, ap->n_ints ? ap->n_ints : 1, sizeof(int64_t));
        if (!a->ints)
            return diag_error(d, n, "out of memory");
        if (ap->n_ints)
            memcpy(a->ints, ap->ints, ap->n_ints * sizeof(int64_t));
        break;
    case AT_STRINGS:
        if (ap->n_strings > INT_MAX)
            return diag_error(d, n, "attribute '%s' is too long", name);
        a->n = (int)ap->n_strings;
        a->strings = arena_array(g->arena, ap->n_strings ? ap->n_strings : 1, sizeof(char *));
        if (!a->strings)
            return diag_error(d, n, "out of memory");
        for (size_t i = 0; i < ap->n_strings; i++) {
            a->strings[i] = arena_strndup(g->arena, ap->strings[i].data ? (const char *)ap->strings[i].data : "",
                                          ap->strings[i].len);
            if (!a->strings[i])
                return diag_error(d, n, "out of memory");
        }
        break;
    case AT_TENSORS:
        if (ap->n_tensors > INT_MAX)
            return diag_error(d, n, "attribute '%s' is too long", name);
        a->n = (int)ap->n_tensors;
        a->tensors = arena_array(g->arena, ap->n_tensors ? ap->n_tensors : 1, sizeof(Tensor *));
        if (!a->tensors)
            return diag_error(d, n, "out of memory");
        for (size_t i = 0; i < ap->n_tensors; i++) {
            a->tensors[i] = arena_alloc(g->arena, sizeof(Tensor));
            char *what = arena_printf(g->arena, "tensor %zu of attribute '%s'", i, name);
            if (!a->tensors[i] || !what)
                return diag_error(d, n, "out of memory");
            if (!ap->tensors[i])
                return diag_error(d, n, "%s is missing", what);
            if (decode_tensor(c, ap->tensors[i], a->tensors[i], what, n))
                return -1;
        }
        break;
    default:
        break;
    }
    return 0;
}

static int is_default_domain(const char *dom)
{
    return !dom || !dom[0] || strcmp(dom, "ai.onnx") == 0;
}

static int same_domain(const char *a, const char *b)
{
    if (is_default_domain(a) || is_default_domain(b))
        return is_default_domain(a) && is_default_domain(b);
    return strcmp(a, b) == 0;
}

/* Map a node input/output name to a value id ("" = omitted optional: -1). -2 on OOM. */
static int name_to_id(Graph *g, const char *name)
{
    if (!name || !name[0])
        return -1;
    int id = graph_value(g, name);
    return id < 0 ? -2 : id;
}

static int read_node(Ctx *c, const Onnx__ModelProto *m, const Onnx__NodeProto *np, int index)
{
    Graph *g = c->g;
    Diag *d = c->d;
    const char *op = np->op_type ? np->op_type : "";
    if (!op[0])
        return diag_error(d, NULL, "node %d%s%s%s has no op_type", index, np->name && np->name[0] ? " '" : "",
                          np->name && np->name[0] ? np->name : "", np->name && np->name[0] ? "'" : "");
    char sb[80], sn[80];
    if (!is_identifier(op, 0))
        return diag_error(d, NULL, "node %d%s%s%s: operator type '%s' is not an identifier", index,
                          np->name && np->name[0] ? " '" : "", np->name && np->name[0] ? shown(np->name, sn, sizeof sn) : "",
                          np->name && np->name[0] ? "'" : "", shown(op, sb, sizeof sb));
    if (!is_default_domain(np->domain) && !is_identifier(np->domain, 1))
        return diag_error(d, NULL, "node %d%s%s%s (%s): domain '%s' is not a dotted identifier", index,
                          np->name && np->name[0] ? " '" : "", np->name && np->name[0] ? shown(np->name, sn, sizeof sn) : "",
                          np->name && np->name[0] ? "'" : "", op, shown(np->domain, sb, sizeof sb));
    if (np->n_input > INT_MAX / 2 || np->n_output > INT_MAX / 2)
        return diag_error(d, NULL, "node %d (%s) has too many inputs or outputs", index, op);
    int ni = (int)np->n_input, no = (int)np->n_output;
    int *in = arena_array(g->arena, (size_t)(ni ? ni : 1), sizeof(int));
    int *out = arena_array(g->arena, (size_t)(no ? no : 1), sizeof(int));
    if (!in || !out)
        return diag_error(d, NULL, "out of memory");
    for (int i = 0; i < ni; i++)
        if ((in[i] = name_to_id(g, np->input[i])) == -2)
            return diag_error(d, NULL, "out of memory");
    for (int i = 0; i < no; i++)
        if ((out[i] = name_to_id(g, np->output[i])) == -2)
            return diag_error(d, NULL, "out of memory");
    char synth[160];
    const char *name = np->name;
    if (!name || !name[0]) {
        snprintf(synth, sizeof synth, "%.120s_%d", op, index);
        name = synth;
    }
    Node *n = graph_add_node(g, op, name, in, ni, out, no);
    if (!n)
        return diag_error(d, NULL, "out of memory");
    if (is_default_domain(np->domain)) {
        n->domain = "";
        if (g->opset <= 0)
            return diag_error(d, n, "the model does not import a version of the default ONNX operator set (opset_import)");
        n->opset = g->opset;
    } else {
        n->domain = arena_strdup(g->arena, np->domain);
        if (!n->domain)
            return diag_error(d, n, "out of memory");
        n->opset = 0;
        for (int i = 0; i < c->ndom; i++)
            if (strcmp(c->dom[i], np->domain) == 0)
                n->opset = c->domver[i];
    }
    for (size_t i = 0; i < m->n_functions; i++) {
        const Onnx__FunctionProto *f = m->functions[i];
        if (f && f->name && strcmp(f->name, op) == 0 && same_domain(f->domain, np->domain))
            return diag_unsupported(d, n, "ONNX functions are not supported yet (%s%s%s is a model-local function)",
                                    is_default_domain(np->domain) ? "" : np->domain,
                                    is_default_domain(np->domain) ? "" : ":", op);
    }
    for (size_t i = 0; i < np->n_attribute; i++) {
        if (!np->attribute[i])
            continue;
        if (read_attr(c, n, np->attribute[i]))
            return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ model */

static int read_opsets(Ctx *c, const Onnx__ModelProto *m)
{
    Graph *g = c->g;
    c->dom = arena_array(c->a, m->n_opset_import + 1, sizeof(char *));
    c->domver = arena_array(c->a, m->n_opset_import + 1, sizeof(int));
    g->opset_domain = arena_array(c->a, m->n_opset_import + 1, sizeof(char *));
    g->opset_version = arena_array(c->a, m->n_opset_import + 1, sizeof(int64_t));
    if (!c->dom || !c->domver || !g->opset_domain || !g->opset_version)
        return diag_error(c->d, NULL, "out of memory");
    if (m->n_opset_import > INT_MAX)
        return diag_error(c->d, NULL, "too many opset_import entries");
    for (size_t i = 0; i < m->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *os = m->opset_import[i];
        if (!os)
            continue;
        if (!os->has_version || os->version < 1 || os->version > 100000)
            return diag_error(c->d, NULL, "opset_import of domain '%s' has invalid version %" PRId64,
                              os->domain ? os->domain : "", os->has_version ? os->version : (int64_t)0);
        g->opset_domain[g->nopsets] = is_default_domain(os->domain) ? "" : arena_strdup(c->a, os->domain);
        if (!g->opset_domain[g->nopsets])
            return diag_error(c->d, NULL, "out of memory");
        for (int k = 0; k < g->nopsets; k++)
            if (strcmp(g->opset_domain[k], g->opset_domain[g->nopsets]) == 0) {
                char sb[80];
                if (is_default_domain(os->domain))
                    return diag_error(c->d, NULL, "opset_import names the default domain ('' or 'ai.onnx') twice");
                return diag_error(c->d, NULL, "opset_import names domain '%s' twice", shown(os->domain, sb, sizeof sb));
            }
        g->opset_version[g->nopsets++] = os->version;
        if (is_default_domain(os->domain))
            g->opset = (int)os->version;
        else {
            c->dom[c->ndom] = arena_strdup(c->a, os->domain);
            if (!c->dom[c->ndom])
                return diag_error(c->d, NULL, "out of memory");
            c->domver[c->ndom++] = (int)os->version;
        }
    }
    if (m->n_opset_import == 0 && m->ir_version < 3)
        g->opset = 1; /* before opset_import existed: operator set 1 */
    return 0;
}

static int read_graph(Ctx *c, const Onnx__ModelProto *m, const ImportOptions *o)
{
    Graph *g = c->g;
    Diag *d = c->d;
    const Onnx__GraphProto *gp = m->graph;
    g->ir_version = m->ir_version > INT_MAX ? INT_MAX : (int)m->ir_version;
    if (gp->name && gp->name[0])
        g->name = arena_strdup(c->a, gp->name);
    if (m->producer_name && m->producer_name[0])
        g->producer_name = arena_strdup(c->a, m->producer_name);
    if (m->producer_version && m->producer_version[0])
        g->producer_version = arena_strdup(c->a, m->producer_version);
    if (m->domain && m->domain[0])
        g->model_domain = arena_strdup(c->a, m->domain);
    if (m->has_model_version)
        g->model_version = m->model_version;
    if (gp->doc_string && gp->doc_string[0])
        g->doc = arena_strdup(c->a, gp->doc_string);
    else if (m->doc_string && m->doc_string[0])
        g->doc = arena_strdup(c->a, m->doc_string);
    if (read_opsets(c, m))
        return -1;
    if (gp->n_sparse_initializer)
        return diag_unsupported(d, NULL, "sparse initializers are not supported ('%s')",
                                gp->sparse_initializer[0] && gp->sparse_initializer[0]->values &&
                                        gp->sparse_initializer[0]->values->name
                                    ? gp->sparse_initializer[0]->values->name : "?");

    /* initializers: constants */
    for (size_t i = 0; i < gp->n_initializer; i++) {
        const Onnx__TensorProto *tp = gp->initializer[i];
        if (!tp)
            continue;
        if (!tp->name || !tp->name[0])
            return diag_error(d, NULL, "initializer %zu has no name", i);
        if (graph_find(g, tp->name) >= 0)
            return diag_error(d, NULL, "initializer '%s' is defined twice", tp->name);
        char *what = arena_printf(c->a, "initializer '%s'", tp->name);
        Tensor t;
        if (!what)
            return diag_error(d, NULL, "out of memory");
        if (decode_tensor(c, tp, &t, what, NULL))
            return -1;
        int id = graph_value(g, tp->name);
        if (id < 0)
            return diag_error(d, NULL, "out of memory");
        Value *v = &g->values[id];
        value_set_shape(v, t.dtype, t.rank, t.dims);
        v->role = VR_CONST;
        v->data = t.data;
        v->nbytes = t.nbytes;
    }

    /* graph inputs */
    g->inputs = arena_array(c->a, gp->n_input + 1, sizeof(int));
    if (!g->inputs)
        return diag_error(d, NULL, "out of memory");
    g->ninputs = 0;
    for (size_t i = 0; i < gp->n_input; i++) {
        const Onnx__ValueInfoProto *vi = gp->input[i];
        if (!vi)
            continue;
        if (!vi->name || !vi->name[0])
            return diag_error(d, NULL, "graph input %zu has no name", i);
        DType dt;
        int rank;
        int64_t dims[KD_MAX_RANK];
        const char *dp[KD_MAX_RANK];
        int id = graph_find(g, vi->name);
        if (id >= 0 && g->values[id].role == VR_CONST) {
            /* an input with an initializer (a default value) */
            Value *v = &g->values[id];
            for (int k = 0; k < g->ninputs; k++)
                if (g->inputs[k] == id)
                    return diag_error(d, NULL, "graph input '%s' is listed twice", vi->name);
            if (read_type(c, vi, "graph input", 0, &dt, &rank, dims, dp) < 0)
                return -1;
            if (dt != DT_UNDEFINED && dt != v->dtype)
                return diag_error(d, NULL, "graph input '%s' is declared %s but its initializer is %s",
                                  vi->name, dtype_name(dt), dtype_name(v->dtype));
            if (o && o->inputs_as_params) {
                v->role = VR_INPUT;
                v->data = NULL;
                v->nbytes = 0;
                g->inputs[g->ninputs++] = id;
            }
            continue;
        }
        if (id >= 0)
            return diag_error(d, NULL, "graph input '%s' is listed twice", vi->name);
        if (read_type(c, vi, "graph input", 1, &dt, &rank, dims, dp))
            return -1;
        id = graph_value(g, vi->name);
        if (id < 0)
            return diag_error(d, NULL, "out of memory");
        Value *v = &g->values[id];
        set_type(v, dt, rank, dims, dp);
        v->role = VR_INPUT;
        g->inputs[g->ninputs++] = id;
    }

    /* nodes */
    if (gp->n_node > INT_MAX / 2)
        return diag_error(d, NULL, "too many nodes");
    for (size_t i = 0; i < gp->n_node; i++) {
        if (!gp->node[i])
            continue;
        if (read_node(c, m, gp->node[i], (int)i))
            return -1;
    }

    /* graph outputs */
    if (gp->n_output == 0)
        return diag_error(d, NULL, "the graph has no outputs");
    g->outputs = arena_array(c->a, gp->n_output, sizeof(int));
    if (!g->outputs)
        return diag_error(d, NULL, "out of memory");
    g->noutputs = 0;
    for (size_t i = 0; i < gp->n_output; i++) {
        const Onnx__ValueInfoProto *vi = gp->output[i];
        if (!vi)
            continue;
        if (!vi->name || !vi->name[0])
            return diag_error(d, NULL, "graph output %zu has no name", i);
        DType dt;
        int rank;
        int64_t dims[KD_MAX_RANK];
        const char *dp[KD_MAX_RANK];
        if (read_type(c, vi, "graph output", 1, &dt, &rank, dims, dp))
            return -1;
        int id = graph_find(g, vi->name);
        if (id < 0)
            return diag_error(d, NULL, "graph output '%s' is never defined (no node, input or initializer has that name)", vi->name);
        Value *v = &g->values[id];
        if (v->is_output)
            return diag_error(d, NULL, "graph output '%s' is listed twice", vi->name);
        v->is_output = 1;
        g->outputs[g->noutputs++] = id;
        if (v->role == VR_INTERMEDIATE) /* hints; inference sets the real type */
            set_type(v, dt, rank, dims, dp);
    }

    /* value_info: dtype/shape hints where fully known */
    for (size_t i = 0; i < gp->n_value_info; i++) {
        const Onnx__ValueInfoProto *vi = gp->value_info[i];
        if (!vi || !vi->name || !vi->name[0])
            continue;
        int id = graph_find(g, vi->name);
        if (id < 0)
            continue;
        Value *v = &g->values[id];
        if (v->role != VR_INTERMEDIATE || v->is_output)
            continue;
        DType dt;
        int rank;
        int64_t dims[KD_MAX_RANK];
        const char *dp[KD_MAX_RANK];
        if (read_type(c, vi, "value_info", 0, &dt, &rank, dims, dp))
            continue;
        if (dt != DT_UNDEFINED)
            v->dtype = dt;
        if (rank >= 0 && dims_numel(rank, dims) >= 0)
            value_set_shape(v, v->dtype, rank, dims);
    }

    if (graph_toposort(g, d))
        return -1;
    return 0;
}

Graph *onnx_import_buffer(Arena *a, const uint8_t *buf, size_t len, const char *path,
                          const ImportOptions *o, Diag *d)
{
    if (!d->file && path)
        d->file = path;
    size_t max = o && o->max_model_bytes ? o->max_model_bytes : DEFAULT_MAX_MODEL_BYTES;
    if (len > max) {
        diag_error(d, NULL, "the model is %zu bytes, larger than the limit of %zu bytes", len, max);
        return NULL;
    }
    const char *why = len == 0 ? "empty file" : NULL;
    Onnx__ModelProto *m = NULL;
    if (!why) {
        m = onnx__model_proto__unpack(NULL, len, buf);
        if (!m) {
            why = sniff_not_onnx(buf, len);
            if (!why)
                why = "protobuf decoding failed: the file is truncated or corrupt";
        } else if (!m->graph)
            why = "it has no graph";
        else if (!m->has_ir_version || m->ir_version <= 0)
            why = "it has no ir_version";
        else if (m->n_opset_import == 0 && m->ir_version >= 3)
            why = "it has no opset_import";
    }
    if (why) {
        if (m)
            onnx__model_proto__free_unpacked(m, NULL);
        diag_error(d, NULL, "not a valid ONNX model (%s)", why);
        return NULL;
    }
    Graph *g = graph_new(a, path);
    if (!g) {
        onnx__model_proto__free_unpacked(m, NULL);
        diag_error(d, NULL, "out of memory");
        return NULL;
    }
    Ctx c = {.a = a, .g = g, .d = d, .path = path};
    int rc = read_graph(&c, m, o);
    onnx__model_proto__free_unpacked(m, NULL);
    return rc ? NULL : g;
}

Graph *onnx_import_file(Arena *a, const char *path, const ImportOptions *o, Diag *d)
{
    if (!d->file)
        d->file = path;
    size_t max = o && o->max_model_bytes ? o->max_model_bytes : DEFAULT_MAX_MODEL_BYTES;
    uint8_t *buf;
    size_t len;
    if (slurp(path, max, &buf, &len, d))
        return NULL;
    Graph *g = onnx_import_buffer(a, buf, len, path, o, d);
    free(buf);
    return g;
}

int onnx_read_tensor_file(Arena *a, const char *path, Tensor *t, Diag *d)
{
    const char *saved = d->file;
    d->file = path; /* messages name the tensor file */
    uint8_t *buf;
    size_t len;
    int rc = -1;
    memset(t, 0, sizeof *t);
    if (slurp(path, DEFAULT_MAX_MODEL_BYTES, &buf, &len, d))
        goto out;
    Onnx__TensorProto *tp = len ? onnx__tensor_proto__unpack(NULL, len, buf) : NULL;
    /* SequenceProto/OptionalProto start with their name (field 1, length-delimited) and
     * keep tensors in field 3: a TensorProto reader sees packed dims and a segment. */
    int seq_like = len && buf[0] == 0x0a;
    free(buf);
    if (!tp) {
        diag_error(d, NULL, "not a valid ONNX tensor (%s)", len ? "protobuf decoding failed: truncated or corrupt" : "empty file");
        goto out;
    }
    Diag td;
    diag_init(&td, path);
    Ctx c = {.a = a, .g = NULL, .d = &td, .path = path};
    char what[300];
    snprintf(what, sizeof what, "tensor '%.250s'", tp->name ? tp->name : "");
    if (tp->segment && seq_like)
        rc = -1;
    else
        rc = decode_tensor(&c, tp, t, tp->name && tp->name[0] ? what : "tensor", NULL);
    onnx__tensor_proto__free_unpacked(tp, NULL);
    if (rc && seq_like)
        diag_unsupported(d, NULL, "not a tensor: the file looks like a sequence or optional value (SequenceProto/OptionalProto); only tensors are supported");
    else if (rc) {
        size_t pl = strlen(path) + 2; /* td.msg starts with "path: " */
        const char *m = strlen(td.msg) > pl ? td.msg + pl : td.msg;
        if (td.unsupported)
            diag_unsupported(d, NULL, "%s", m);
        else
            diag_error(d, NULL, "%s", m);
    }
out:
    d->file = saved; /* a message, if any, already carries the tensor file's name */
    return rc;
}

/* Parser for the ONNX textual syntax (the grammar of onnx/defs/parser.cc and
 * docs/Syntax.md), straight into the kdcc IR.
 *
 *   model  ::= ('<' key ':' value (',' key ':' value)* '>')? graph
 *   graph  ::= name '(' inputs ')' '=>' '(' outputs ')' ('<' initializers-or-value-infos '>')? '{' node* '}'
 *   node   ::= ('[' name ']')? ids '=' (domain '.')* Op ('<' attrs '>')? '(' ids ')' ('<' attrs '>')?
 *
 * Values map to the IR as the binary importer maps them: graph inputs are VR_INPUT;
 * initializers (also inputs given a value with '=') are VR_CONST with their data in
 * native layout; outputs are marked is_output and listed in g->outputs; nodes get the
 * opset of their domain from opset_import; the nodes are then sorted topologically.
 *
 * Every error is one line "FILE:LINE:COL: what was expected/found". The parser is not
 * recursive (subgraphs and nested types are refused as unsupported before any nesting),
 * and every size read from the text is checked before it reaches an allocation: a
 * tensor cannot hold more elements than there are bytes left in the text. */
#include "frontends/onnx.h"
#include "frontends/onnx_text.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

typedef struct PType {
    int present;          /* a type was written */
    DType dt;
    int rank;             /* -1: "float[]", unknown rank */
    int64_t dims[KD_MAX_RANK];
    const char *dim_param[KD_MAX_RANK];
    const char *pos;
} PType;

typedef struct POut {  /* a graph output, created after the initializer list */
    char *name;
    PType type;
    const char *pos;
} POut;

typedef struct P {
    Arena *a;
    Graph *g;
    Diag *d;
    const char *fname;    /* for messages */
    Lexer lx;
    Token tok;            /* current token */
    int failed;
    const char **node_pos; /* source position of each node, in text order */
    int cap_node_pos;
} P;

/* ------------------------------------------------------------------ errors */

static void line_col(const P *p, const char *at, int *line, int *col)
{
    int l = 1, c = 1;
    if (!at || at < p->lx.buf || at > p->lx.lim)
        at = p->lx.lim;
    for (const char *s = p->lx.buf; s < at; s++) {
        if (*s == '\n') {
            l++;
            c = 1;
        } else if (c < INT_MAX) {
            c++;
        }
        if (l == INT_MAX)
            break;
    }
    *line = l;
    *col = c;
}

static int verr(P *p, int unsupported, const char *at, const char *fmt, va_list ap)
{
    char msg[768];
    vsnprintf(msg, sizeof msg, fmt, ap);
    int line, col;
    line_col(p, at, &line, &col);
    p->failed = 1;
    /* the position follows the file name directly: "FILE:LINE:COL: ..." */
    const char *saved = p->d->file;
    p->d->file = NULL;
    if (unsupported)
        diag_unsupported(p->d, NULL, "%s:%d:%d: %s", p->fname, line, col, msg);
    else
        diag_error(p->d, NULL, "%s:%d:%d: %s", p->fname, line, col, msg);
    p->d->file = saved;
    return -1;
}

static int err_at(P *p, const char *at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int err_at(P *p, const char *at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verr(p, 0, at, fmt, ap);
    va_end(ap);
    return -1;
}

static int unsup_at(P *p, const char *at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int unsup_at(P *p, const char *at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verr(p, 1, at, fmt, ap);
    va_end(ap);
    return -1;
}

static int oom(P *p)
{
    return err_at(p, p->tok.start, "out of memory");
}

/* "'foo'", "end of input", "string \"ab...\"" */
static const char *describe(const Token *t, char *buf, size_t n)
{
    switch (t->kind) {
    case TK_EOF:
        return "end of input";
    case TK_STRING:
        snprintf(buf, n, "string %.*s%s", t->len > 24 ? 24 : (int)t->len, t->start, t->len > 24 ? "...\"" : "");
        return buf;
    default: {
        size_t len = t->len > 32 ? 32 : t->len;
        int printable = 1;
        for (size_t i = 0; i < len; i++)
            if ((unsigned char)t->start[i] < 0x20 || (unsigned char)t->start[i] >= 0x7f)
                printable = 0;
        if (!printable)
            snprintf(buf, n, "byte 0x%02x", (unsigned char)t->start[0]);
        else
            snprintf(buf, n, "'%.*s%s'", (int)len, t->start, t->len > len ? "..." : "");
        return buf;
    }
    }
}

static int err_expected(P *p, const char *what)
{
    char buf[96];
    return err_at(p, p->tok.start, "expected %s, found %s", what, describe(&p->tok, buf, sizeof buf));
}

/* ------------------------------------------------------------------ tokens */

static void advance(P *p)
{
    onnx_lex(&p->lx, &p->tok);
    if (p->tok.kind == TK_BAD_STRING) {
        err_at(p, p->tok.start, "unterminated string literal (no closing '\"' before the end of input)");
        p->tok.kind = TK_EOF;
    } else if (p->tok.kind == TK_BAD_CHAR) {
        char buf[64];
        err_at(p, p->tok.start, "unexpected %s", describe(&p->tok, buf, sizeof buf));
        p->tok.kind = TK_EOF;
    }
}

static int is_punct(const P *p, char c)
{
    return p->tok.kind == TK_PUNCT && p->tok.start[0] == c;
}

static int accept(P *p, char c)
{
    if (!is_punct(p, c))
        return 0;
    advance(p);
    return 1;
}

static int expect(P *p, char c, const char *context)
{
    if (accept(p, c))
        return 0;
    char what[96];
    snprintf(what, sizeof what, "'%c'%s%s", c, context ? " " : "", context ? context : "");
    return err_expected(p, what);
}

static int tok_is(const P *p, const char *s)
{
    size_t n = strlen(s);
    return p->tok.kind == TK_IDENT && p->tok.len == n && memcmp(p->tok.start, s, n) == 0;
}

static char *tok_dup(P *p)
{
    char *s = arena_strndup(p->a, p->tok.start, p->tok.len);
    if (!s)
        oom(p);
    return s;
}

/* Decode a string token ('\' takes the next byte literally, as ONNX does). */
static char *tok_string(P *p, size_t *len)
{
    const char *s = p->tok.start + 1, *e = p->tok.start + p->tok.len - 1;
    char *out = arena_alloc(p->a, (size_t)(e - s) + 1);
    if (!out) {
        oom(p);
        return NULL;
    }
    size_t n = 0;
    for (; s < e; s++) {
        if (*s == '\\' && s + 1 < e)
            s++;
        out[n++] = *s;
    }
    out[n] = 0;
    if (len)
        *len = n;
    return out;
}

/* identifier or quoted string; NULL (with error) otherwise */
static char *parse_qid(P *p, const char *what)
{
    char *s = NULL;
    if (p->tok.kind == TK_IDENT)
        s = tok_dup(p);
    else if (p->tok.kind == TK_STRING)
        s = tok_string(p, NULL);
    else {
        err_expected(p, what);
        return NULL;
    }
    if (s)
        advance(p);
    return s;
}

static char *parse_string(P *p, const char *what, size_t *len)
{
    if (p->tok.kind != TK_STRING) {
        err_expected(p, what);
        return NULL;
    }
    char *s = tok_string(p, len);
    if (s)
        advance(p);
    return s;
}

/* grow an arena array to hold at least n+1 elements */
static void *grow(P *p, void *arr, int *cap, int n, size_t elem)
{
    if (n < *cap)
        return arr;
    if (*cap > INT_MAX / 2) {
        err_at(p, p->tok.start, "too many items");
        return NULL;
    }
    int nc = *cap ? *cap * 2 : 8;
    void *na = arena_array(p->a, (size_t)nc, elem);
    if (!na) {
        oom(p);
        return NULL;
    }
    if (n)
        memcpy(na, arr, (size_t)n * elem);
    *cap = nc;
    return na;
}

/* ------------------------------------------------------------------ numbers */

typedef struct Num {
    int is_float;
    const char *pos;
    char text[128];
} Num;

static int is_special_float(const Token *t)
{
    static const char *names[] = {"inf", "infinity", "nan"};
    if (t->kind != TK_IDENT)
        return 0;
    for (int i = 0; i < 3; i++) {
        size_t n = strlen(names[i]);
        if (t->len != n)
            continue;
        size_t k = 0;
        while (k < n && (t->start[k] | 0x20) == names[i][k])
            k++;
        if (k == n)
            return 1;
    }
    return 0;
}

static int parse_num(P *p, Num *num, const char *what)
{
    num->pos = p->tok.start;
    size_t off = 0;
    if (is_punct(p, '-')) {
        advance(p);
        if (!is_special_float(&p->tok))
            return err_expected(p, "'inf' or 'nan' after '-'");
        num->text[0] = '-';
        off = 1;
    }
    if (p->tok.kind == TK_INT || p->tok.kind == TK_FLOAT || is_special_float(&p->tok)) {
        if (p->tok.len + off >= sizeof num->text)
            return err_at(p, p->tok.start, "number literal too long");
        memcpy(num->text + off, p->tok.start, p->tok.len);
        num->text[off + p->tok.len] = 0;
        num->is_float = p->tok.kind != TK_INT;
        advance(p);
        return 0;
    }
    return err_expected(p, what);
}

static int num_i64(P *p, const Num *n, int64_t *out)
{
    if (n->is_float)
        return err_at(p, n->pos, "expected an integer, found '%s'", n->text);
    errno = 0;
    long long v = strtoll(n->text, NULL, 10);
    if (errno == ERANGE)
        return err_at(p, n->pos, "integer %s is out of range", n->text);
    *out = (int64_t)v;
    return 0;
}

static int num_u64(P *p, const Num *n, uint64_t *out)
{
    if (n->is_float)
        return err_at(p, n->pos, "expected an integer, found '%s'", n->text);
    if (n->text[0] == '-')
        return err_at(p, n->pos, "expected a non-negative integer, found %s", n->text);
    errno = 0;
    unsigned long long v = strtoull(n->text, NULL, 10);
    if (errno == ERANGE)
        return err_at(p, n->pos, "integer %s is out of range", n->text);
    *out = (uint64_t)v;
    return 0;
}

static double num_f64(const Num *n)
{
    return strtod(n->text, NULL);
}

static float num_f32(const Num *n)
{
    return strtof(n->text, NULL);
}

/* an integer token in [lo, hi] */
static int parse_int_range(P *p, int64_t lo, int64_t hi, const char *what, int64_t *out)
{
    Num n;
    if (parse_num(p, &n, what) || num_i64(p, &n, out))
        return -1;
    if (*out < lo || *out > hi)
        return err_at(p, n.pos, "%s %s is out of range [%" PRId64 ", %" PRId64 "]", what, n.text, lo, hi);
    return 0;
}

/* ------------------------------------------------------------------ types */

static DType dtype_lookup(const Token *t)
{
    if (t->kind != TK_IDENT)
        return DT_UNDEFINED;
    for (int i = 1; i < DT_COUNT_; i++) {
        const char *nm = dtype_name((DType)i);
        if (strlen(nm) == t->len && memcmp(nm, t->start, t->len) == 0)
            return (DType)i;
    }
    return DT_UNDEFINED;
}

static int is_type_keyword(const P *p)
{
    return tok_is(p, "seq") || tok_is(p, "map") || tok_is(p, "optional") ||
           tok_is(p, "sparse_tensor") || tok_is(p, "opaque");
}

static int next_is_type(const P *p)
{
    return dtype_lookup(&p->tok) != DT_UNDEFINED || is_type_keyword(p);
}

/* tensor-type ::= prim-type | prim-type '[' ']' | prim-type '[' dims ']' */
static int parse_type(P *p, PType *t)
{
    memset(t, 0, sizeof *t);
    t->pos = p->tok.start;
    if (is_type_keyword(p)) {
        char buf[64];
        return unsup_at(p, p->tok.start, "%s types are not supported (only tensors)", describe(&p->tok, buf, sizeof buf));
    }
    t->dt = dtype_lookup(&p->tok);
    if (t->dt == DT_UNDEFINED)
        return err_expected(p, "a type");
    t->present = 1;
    advance(p);
    if (!accept(p, '[')) {
        t->rank = 0; /* "float": a scalar */
        return 0;
    }
    if (accept(p, ']')) {
        t->rank = -1; /* "float[]": rank unknown */
        return 0;
    }
    for (;;) {
        if (t->rank == KD_MAX_RANK)
            return unsup_at(p, p->tok.start, "tensors of rank above %d are not supported", KD_MAX_RANK);
        int k = t->rank++;
        t->dims[k] = -1;
        if (accept(p, '?')) {
            /* unknown dim */
        } else if (p->tok.kind == TK_IDENT || p->tok.kind == TK_STRING) {
            if (!(t->dim_param[k] = parse_qid(p, "a dimension")))
                return -1;
        } else if (p->tok.kind == TK_INT) {
            if (parse_int_range(p, 0, INT64_MAX, "dimension", &t->dims[k]))
                return -1;
        } else {
            return err_expected(p, "a dimension (integer, name or '?')");
        }
        if (accept(p, ','))
            continue;
        return expect(p, ']', "to close the dimensions");
    }
}

static void apply_type(Value *v, const PType *t)
{
    if (!t->present)
        return;
    value_set_shape(v, t->dt, t->rank, t->dims);
    for (int i = 0; i < t->rank; i++)
        v->dim_param[i] = t->dims[i] < 0 ? t->dim_param[i] : NULL;
}

/* ------------------------------------------------------------------ constant data */

/* Parse one element of dtype dt into data[i]. */
static int parse_elem(P *p, DType dt, void *data, int64_t i)
{
    Num n;
    if (parse_num(p, &n, "a number"))
        return -1;
    int64_t v = 0;
    uint64_t u = 0;
    switch (dt) {
    case DT_FLOAT:
        ((float *)data)[i] = num_f32(&n);
        return 0;
    case DT_DOUBLE:
        ((double *)data)[i] = num_f64(&n);
        return 0;
    case DT_FLOAT16:
    case DT_BFLOAT16:
        if (n.is_float) { /* extension: a real number, converted */
            float f = num_f32(&n);
            ((uint16_t *)data)[i] = dt == DT_FLOAT16 ? kd_float_to_half(f) : kd_float_to_bf16(f);
            return 0;
        }
        /* as in ONNX: an integer is the 16-bit pattern */
        if (num_i64(p, &n, &v))
            return -1;
        if (v < 0 || v > 65535)
            return err_at(p, n.pos, "%s bit pattern %s is out of range [0, 65535]", dtype_name(dt), n.text);
        ((uint16_t *)data)[i] = (uint16_t)v;
        return 0;
    case DT_FLOAT8E4M3FN:
    case DT_FLOAT8E4M3FNUZ:
    case DT_FLOAT8E5M2:
    case DT_FLOAT8E5M2FNUZ:
    case DT_FLOAT8E8M0:
    case DT_UINT8:
    case DT_UINT16:
    case DT_UINT32:
    case DT_UINT64: {
        if (num_u64(p, &n, &u))
            return -1;
        uint64_t max = dtype_size(dt) == 8 ? UINT64_MAX : (((uint64_t)1 << (8 * dtype_size(dt))) - 1);
        if (u > max)
            return err_at(p, n.pos, "%s value %s is out of range", dtype_name(dt), n.text);
        elem_set_i64(data, dt == DT_UINT64 ? DT_UINT64 : (dtype_size(dt) == 1 ? DT_UINT8 : dt), i, (int64_t)u);
        return 0;
    }
    case DT_INT8:
    case DT_INT16:
    case DT_INT32:
    case DT_INT64: {
        if (num_i64(p, &n, &v))
            return -1;
        int bits = 8 * (int)dtype_size(dt);
        if (bits < 64) {
            int64_t hi = ((int64_t)1 << (bits - 1)) - 1;
            if (v > hi || v < -hi - 1)
                return err_at(p, n.pos, "%s value %s is out of range", dtype_name(dt), n.text);
        }
        elem_set_i64(data, dt, i, v);
        return 0;
    }
    case DT_BOOL:
        if (num_i64(p, &n, &v))
            return -1;
        ((uint8_t *)data)[i] = v != 0;
        return 0;
    default:
        return unsup_at(p, n.pos, "constants of type %s are not supported", dtype_name(dt));
    }
}

/* '{' prim-constants? '}' for a tensor of type t; returns data (arena) and byte count */
static int parse_data(P *p, const PType *t, const char *name, void **data, size_t *nbytes)
{
    if (!t->present)
        return err_at(p, p->tok.start, "'%s' needs a type to be given a value", name);
    if (t->rank < 0)
        return err_at(p, t->pos, "'%s' is given a value, so its type needs a shape (e.g. float[2])", name);
    for (int i = 0; i < t->rank; i++)
        if (t->dims[i] < 0)
            return err_at(p, t->pos, "'%s' is given a value, so its dimensions must be numbers", name);
    if (is_punct(p, '['))
        return unsup_at(p, p->tok.start, "external data for '%s' is not supported in the textual syntax", name);
    size_t es = dtype_size(t->dt);
    if (!es || t->dt == DT_STRING)
        return unsup_at(p, t->pos, "constants of type %s are not supported", dtype_name(t->dt));
    int64_t numel = dims_numel(t->rank, t->dims);
    if (numel < 0)
        return err_at(p, t->pos, "the shape of '%s' has too many elements", name);
    const char *open = p->tok.start;
    if (expect(p, '{', "to start the values"))
        return -1;
    /* every value takes at least one byte of text: refuse shapes the text cannot fill
     * before allocating anything */
    size_t left = (size_t)(p->lx.lim - open);
    if ((uint64_t)numel > left)
        return err_at(p, open, "'%s' has %" PRId64 " elements but the rest of the text could hold at most %zu values", name, numel, left);
    void *buf = arena_array(p->a, (size_t)(numel ? numel : 1), es);
    if (!buf)
        return oom(p);
    int64_t n = 0;
    if (!is_punct(p, '}')) {
        for (;;) {
            if (n == numel)
                return err_at(p, p->tok.start, "too many values for '%s': its shape holds %" PRId64, name, numel);
            if (parse_elem(p, t->dt, buf, n))
                return -1;
            n++;
            if (!accept(p, ','))
                break;
        }
    }
    if (expect(p, '}', "after the values"))
        return -1;
    if (n != numel)
        return err_at(p, open, "'%s' has %" PRId64 " values but its shape holds %" PRId64, name, n, numel);
    *data = buf;
    *nbytes = (size_t)numel * es;
    return 0;
}

/* ------------------------------------------------------------------ attributes */

typedef enum SKind { SV_INT, SV_FLOAT, SV_STRING, SV_TENSOR } SKind;

typedef struct SVal {
    SKind kind;
    int64_t i;
    double f;
    const char *s;
    size_t slen;
    Tensor *t;
    const char *pos;
} SVal;

static const char *attr_type_name(AttrType t)
{
    switch (t) {
    case AT_FLOAT: return "float";
    case AT_INT: return "int";
    case AT_STRING: return "string";
    case AT_TENSOR: return "tensor";
    case AT_GRAPH: return "graph";
    case AT_FLOATS: return "floats";
    case AT_INTS: return "ints";
    case AT_STRINGS: return "strings";
    case AT_TENSORS: return "tensors";
    case AT_GRAPHS: return "graphs";
    case AT_SPARSE_TENSOR: return "sparse_tensor";
    case AT_SPARSE_TENSORS: return "sparse_tensors";
    case AT_TYPE_PROTO: return "type_proto";
    case AT_TYPE_PROTOS: return "type_protos";
    default: return "undefined";
    }
}

static AttrType attr_type_lookup(const Token *t)
{
    for (int i = 1; i <= AT_TYPE_PROTOS; i++) {
        const char *nm = attr_type_name((AttrType)i);
        if (strlen(nm) == t->len && memcmp(nm, t->start, t->len) == 0)
            return (AttrType)i;
    }
    return AT_UNDEFINED;
}

static const char *skind_name(SKind k)
{
    switch (k) {
    case SV_INT: return "an int";
    case SV_FLOAT: return "a float";
    case SV_STRING: return "a string";
    default: return "a tensor";
    }
}

/* tensor-constant ::= tensor-type (quotable-id)? ('=')? '{' prim-constants '}' (type already read) */
static Tensor *parse_tensor_rest(P *p, const PType *ty)
{
    Tensor *t = arena_alloc(p->a, sizeof *t);
    if (!t) {
        oom(p);
        return NULL;
    }
    if (p->tok.kind == TK_IDENT || p->tok.kind == TK_STRING) {
        if (!(t->name = parse_qid(p, "a tensor name")))
            return NULL;
    }
    accept(p, '=');
    if (ty->rank < 0) {
        err_at(p, ty->pos, "a tensor value needs a shape (e.g. float[2])");
        return NULL;
    }
    if (parse_data(p, ty, t->name ? t->name : "tensor", &t->data, &t->nbytes))
        return NULL;
    t->dtype = ty->dt;
    t->rank = ty->rank;
    for (int i = 0; i < ty->rank; i++)
        t->dims[i] = ty->dims[i];
    return t;
}

static int parse_single_value(P *p, SVal *sv)
{
    memset(sv, 0, sizeof *sv);
    sv->pos = p->tok.start;
    if (p->tok.kind == TK_STRING) {
        sv->kind = SV_STRING;
        return (sv->s = parse_string(p, "a string", &sv->slen)) ? 0 : -1;
    }
    if (is_punct(p, '@'))
        return unsup_at(p, p->tok.start, "attribute references ('@name') are only valid in functions, which are not supported");
    if (p->tok.kind == TK_IDENT && next_is_type(p)) {
        PType ty;
        if (parse_type(p, &ty))
            return -1;
        if (is_punct(p, '{') || is_punct(p, '=') || p->tok.kind == TK_IDENT || p->tok.kind == TK_STRING) {
            sv->kind = SV_TENSOR;
            return (sv->t = parse_tensor_rest(p, &ty)) ? 0 : -1;
        }
        return unsup_at(p, sv->pos, "type attributes (type_proto) are not supported");
    }
    if (p->tok.kind == TK_IDENT && !is_special_float(&p->tok))
        return unsup_at(p, p->tok.start, "graph attributes (subgraphs) are not supported");
    if (p->tok.kind == TK_INT || p->tok.kind == TK_FLOAT || is_special_float(&p->tok) || is_punct(p, '-')) {
        Num n;
        if (parse_num(p, &n, "a number"))
            return -1;
        if (n.is_float) {
            sv->kind = SV_FLOAT;
            sv->f = (double)num_f32(&n); /* ONNX attribute floats are 32-bit */
            return 0;
        }
        sv->kind = SV_INT;
        return num_i64(p, &n, &sv->i);
    }
    return err_expected(p, "an attribute value");
}

/* check (and convert) one value against the declared element type */
static int check_single(P *p, const char *aname, AttrType want, SVal *sv)
{
    SKind need;
    switch (want) {
    case AT_UNDEFINED: return 0;
    case AT_INT: need = SV_INT; break;
    case AT_FLOAT: need = SV_FLOAT; break;
    case AT_STRING: need = SV_STRING; break;
    default: need = SV_TENSOR; break;
    }
    if (sv->kind == need)
        return 0;
    if (need == SV_FLOAT && sv->kind == SV_INT) {
        sv->kind = SV_FLOAT;
        sv->f = (double)(float)sv->i;
        return 0;
    }
    return err_at(p, sv->pos, "attribute '%s' is declared %s but the value is %s", aname, attr_type_name(want), skind_name(sv->kind));
}

static AttrType singleton_of(AttrType t)
{
    switch (t) {
    case AT_INTS: return AT_INT;
    case AT_FLOATS: return AT_FLOAT;
    case AT_STRINGS: return AT_STRING;
    case AT_TENSORS: return AT_TENSOR;
    default: return AT_UNDEFINED;
    }
}

#define MAX_ATTRS 1024

typedef struct AttrVec {
    Attr *v;
    int n, cap;
} AttrVec;

/* attr ::= id (':' attr-type)? '=' attr-value */
static int parse_attr(P *p, AttrVec *n)
{
    const char *apos = p->tok.start;
    if (p->tok.kind != TK_IDENT)
        return err_expected(p, "an attribute name");
    char *aname = tok_dup(p);
    if (!aname)
        return -1;
    advance(p);
    if (n->n >= MAX_ATTRS)
        return err_at(p, apos, "too many attributes on one node (more than %d)", MAX_ATTRS);
    for (int i = 0; i < n->n; i++)
        if (strcmp(n->v[i].name, aname) == 0)
            return err_at(p, apos, "attribute '%s' is given twice", aname);
    AttrType declared = AT_UNDEFINED;
    if (accept(p, ':')) {
        if (p->tok.kind != TK_IDENT)
            return err_expected(p, "an attribute type");
        declared = attr_type_lookup(&p->tok);
        if (declared == AT_UNDEFINED)
            return err_expected(p, "an attribute type (int, float, string, tensor, ints, floats, strings, tensors)");
        if (declared == AT_GRAPH || declared == AT_GRAPHS)
            return unsup_at(p, p->tok.start, "graph attributes (subgraphs) are not supported");
        if (declared >= AT_SPARSE_TENSOR)
            return unsup_at(p, p->tok.start, "%s attributes are not supported", attr_type_name(declared));
        advance(p);
    }
    if (expect(p, '=', "after the attribute name"))
        return -1;
    Attr tmp;
    memset(&tmp, 0, sizeof tmp);
    if (!is_punct(p, '[')) {
        if (singleton_of(declared) != AT_UNDEFINED)
            return err_at(p, p->tok.start, "attribute '%s' is declared %s, so its value must be a list '[...]'", aname, attr_type_name(declared));
        SVal sv;
        if (parse_single_value(p, &sv) || check_single(p, aname, declared, &sv))
            return -1;
        switch (sv.kind) {
        case SV_INT: tmp.type = AT_INT; tmp.i = sv.i; break;
        case SV_FLOAT: tmp.type = AT_FLOAT; tmp.f = sv.f; break;
        case SV_STRING: tmp.type = AT_STRING; tmp.s = sv.s; tmp.slen = sv.slen; break;
        case SV_TENSOR: tmp.type = AT_TENSOR; tmp.t = sv.t; break;
        }
    } else {
        const char *lpos = p->tok.start;
        advance(p);
        if (declared != AT_UNDEFINED && singleton_of(declared) == AT_UNDEFINED)
            return err_at(p, lpos, "attribute '%s' is declared %s, so its value cannot be a list", aname, attr_type_name(declared));
        AttrType elem = singleton_of(declared);
        SVal *vals = NULL;
        int nv = 0, cap = 0;
        int has_int = 0, has_float = 0, has_string = 0, has_tensor = 0;
        if (!is_punct(p, ']')) {
            for (;;) {
                if (!(vals = grow(p, vals, &cap, nv, sizeof *vals)))
                    return -1;
                if (parse_single_value(p, &vals[nv]) || check_single(p, aname, elem, &vals[nv]))
                    return -1;
                switch (vals[nv].kind) {
                case SV_INT: has_int = 1; break;
                case SV_FLOAT: has_float = 1; break;
                case SV_STRING: has_string = 1; break;
                case SV_TENSOR: has_tensor = 1; break;
                }
                nv++;
                if (!accept(p, ','))
                    break;
            }
        }
        if (expect(p, ']', "to close the list"))
            return -1;
        if (has_string + has_tensor + (has_int || has_float) > 1)
            return err_at(p, lpos, "attribute '%s' mixes values of different kinds in one list", aname);
        if (declared != AT_UNDEFINED)
            tmp.type = declared;
        else if (nv == 0)
            return err_at(p, lpos, "the empty list of attribute '%s' needs a type, e.g. '%s: ints = []'", aname, aname);
        else
            tmp.type = has_string ? AT_STRINGS : has_tensor ? AT_TENSORS : has_float ? AT_FLOATS : AT_INTS;
        tmp.n = nv;
        size_t cnt = (size_t)(nv ? nv : 1);
        switch (tmp.type) {
        case AT_INTS:
            if (!(tmp.ints = arena_array(p->a, cnt, sizeof(int64_t))))
                return oom(p);
            for (int i = 0; i < nv; i++)
                tmp.ints[i] = vals[i].i;
            break;
        case AT_FLOATS:
            if (!(tmp.floats = arena_array(p->a, cnt, sizeof(double))))
                return oom(p);
            for (int i = 0; i < nv; i++)
                tmp.floats[i] = vals[i].kind == SV_INT ? (double)(float)vals[i].i : vals[i].f;
            break;
        case AT_STRINGS:
            if (!(tmp.strings = arena_array(p->a, cnt, sizeof(char *))))
                return oom(p);
            for (int i = 0; i < nv; i++)
                tmp.strings[i] = vals[i].s;
            break;
        default:
            if (!(tmp.tensors = arena_array(p->a, cnt, sizeof(Tensor *))))
                return oom(p);
            for (int i = 0; i < nv; i++)
                tmp.tensors[i] = vals[i].t;
            break;
        }
    }
    if (!(n->v = grow(p, n->v, &n->cap, n->n, sizeof(Attr))))
        return -1;
    tmp.name = aname;
    n->v[n->n++] = tmp;
    return 0;
}

/* attr-list ::= '<' attr (',' attr)* '>' */
static int parse_attr_list(P *p, AttrVec *n)
{
    advance(p); /* '<' */
    for (;;) {
        if (parse_attr(p, n))
            return -1;
        if (!accept(p, ','))
            break;
    }
    return expect(p, '>', "to close the attributes");
}

/* ------------------------------------------------------------------ nodes */

/* An id list with ONNX's rules for empty entries: "(,x)" has two, the first empty;
 * "(x,)" has one; "(,)" has one, empty. "" is an explicit empty name.
 * Empty entries come back as "" . */
static int parse_id_list(P *p, char ***out, const char ***pos, int *count, char close)
{
    char **ids = NULL;
    const char **ps = NULL;
    int n = 0, cap = 0, cap2 = 0;
    int after_comma = 0;
    for (;;) {
        const char *at = p->tok.start;
        char *id = NULL;
        if (p->tok.kind == TK_IDENT || p->tok.kind == TK_STRING) {
            if (!(id = parse_qid(p, "a name")))
                return -1;
        } else if (is_punct(p, ',')) {
            id = "";
        } else if (is_punct(p, close)) {
            if (after_comma && n == 0) /* "(,)" */
                id = "";
            else
                break;
        } else {
            char what[64];
            snprintf(what, sizeof what, "a name, ',' or '%c'", close);
            return err_expected(p, what);
        }
        if (!(ids = grow(p, ids, &cap, n, sizeof *ids)) || !(ps = grow(p, ps, &cap2, n, sizeof *ps)))
            return -1;
        ids[n] = id;
        ps[n] = at;
        n++;
        if (!accept(p, ','))
            break;
        after_comma = 1;
    }
    *out = ids;
    *pos = ps;
    *count = n;
    return 0;
}

static int opset_for(const Graph *g, const char *domain, int *out)
{
    for (int i = 0; i < g->nopsets; i++)
        if (strcmp(g->opset_domain[i], domain) == 0) {
            *out = (int)g->opset_version[i];
            return 0;
        }
    return -1;
}

/* node ::= ('[' name ']')? ids '=' qualified-id attrs? '(' ids ')' attrs? */
static int parse_node(P *p)
{
    Graph *g = p->g;
    const char *npos = p->tok.start;
    char *label = "";
    if (accept(p, '[')) {
        if (!is_punct(p, ']') && !(label = parse_qid(p, "a node name")))
            return -1;
        if (expect(p, ']', "after the node name"))
            return -1;
    }
    char **outs;
    const char **opos;
    int nout;
    if (parse_id_list(p, &outs, &opos, &nout, '='))
        return -1;
    if (expect(p, '=', "in the node (outputs = Op(inputs))"))
        return -1;
    /* qualified-id: domain parts then the op type */
    const char *oppos = p->tok.start;
    if (p->tok.kind != TK_IDENT)
        return err_expected(p, "an operator name");
    Writer dom;
    w_init(&dom);
    const char *last = p->tok.start;
    size_t lastlen = p->tok.len;
    advance(p);
    while (accept(p, '.')) {
        if (p->tok.kind != TK_IDENT) {
            w_free(&dom);
            return err_expected(p, "an operator name after '.'");
        }
        w_printf(&dom, "%s%.*s", dom.len ? "." : "", (int)lastlen, last);
        last = p->tok.start;
        lastlen = p->tok.len;
        advance(p);
    }
    char *domain = arena_strdup(p->a, dom.buf ? dom.buf : "");
    int dom_oom = dom.oom;
    w_free(&dom);
    char *op = arena_strndup(p->a, last, lastlen);
    if (!domain || !op || dom_oom)
        return oom(p);
    if (strcmp(domain, "ai.onnx") == 0)
        domain = "";
    if (is_punct(p, ':'))
        return unsup_at(p, p->tok.start, "operator overloads (functions) are not supported");

    AttrVec tmpn = {0};
    if (is_punct(p, '<') && parse_attr_list(p, &tmpn))
        return -1;
    if (expect(p, '(', "before the node inputs"))
        return -1;
    char **ins;
    const char **ipos;
    int nin;
    if (parse_id_list(p, &ins, &ipos, &nin, ')'))
        return -1;
    if (expect(p, ')', "after the node inputs"))
        return -1;
    if (tmpn.n == 0 && is_punct(p, '<') && parse_attr_list(p, &tmpn))
        return -1;

    int *in_ids = arena_array(p->a, (size_t)(nin ? nin : 1), sizeof(int));
    int *out_ids = arena_array(p->a, (size_t)(nout ? nout : 1), sizeof(int));
    if (!in_ids || !out_ids)
        return oom(p);
    for (int i = 0; i < nin; i++) {
        in_ids[i] = -1;
        if (ins[i][0] && (in_ids[i] = graph_value(g, ins[i])) < 0)
            return oom(p);
    }
    int idx = g->nnodes;
    for (int i = 0; i < nout; i++) {
        out_ids[i] = -1;
        if (!outs[i][0])
            continue;
        int v = graph_value(g, outs[i]);
        if (v < 0)
            return oom(p);
        Value *val = &g->values[v];
        if (val->role == VR_INPUT)
            return err_at(p, opos[i], "'%s' is a graph input and cannot be assigned by a node", outs[i]);
        if (val->role == VR_CONST)
            return err_at(p, opos[i], "'%s' is an initializer and cannot be assigned by a node", outs[i]);
        if (val->producer == idx) /* node_pos[idx] is only set below */
            return err_at(p, opos[i], "'%s' is assigned twice by this node", outs[i]);
        if (val->producer >= 0) {
            int l, c;
            line_col(p, p->node_pos[val->producer], &l, &c);
            return err_at(p, opos[i], "'%s' is assigned twice (also by the node at %d:%d)", outs[i], l, c);
        }
        val->producer = idx;
        out_ids[i] = v;
    }
    int dopset = 0; /* a custom domain missing from opset_import: 0, as the importer does */
    if (opset_for(g, domain, &dopset) && !domain[0])
        return err_at(p, oppos, "operator '%s': the model header has no opset_import for the default domain (e.g. <ir_version: 8, opset_import: [\"\" : 17]>)", op);
    Node *n = graph_add_node(g, op, label, in_ids, nin, out_ids, nout);
    if (!n)
        return oom(p);
    n->domain = domain;
    n->opset = dopset;
    n->nattrs = tmpn.n;
    n->attrs = tmpn.v;
    if (!(p->node_pos = grow(p, p->node_pos, &p->cap_node_pos, idx, sizeof *p->node_pos)))
        return -1;
    p->node_pos[idx] = npos;
    return 0;
}

/* ------------------------------------------------------------------ graph */

typedef struct IdVec {
    int *v;
    int n, cap;
} IdVec;

static int idvec_push(P *p, IdVec *iv, int id)
{
    if (!(iv->v = grow(p, iv->v, &iv->cap, iv->n, sizeof(int))))
        return -1;
    iv->v[iv->n++] = id;
    return 0;
}

/* value-info-or-initializer ::= type? quotable-id ('=' constant-data)? */
static int parse_vi(P *p, PType *ty, char **name, const char **npos)
{
    memset(ty, 0, sizeof *ty);
    if (p->tok.kind == TK_IDENT && next_is_type(p) && parse_type(p, ty))
        return -1;
    *npos = p->tok.start;
    return (*name = parse_qid(p, "a value name")) ? 0 : -1;
}

static int set_const(P *p, int id, const PType *ty, void *data, size_t nbytes)
{
    Value *v = &p->g->values[id];
    value_set_shape(v, ty->dt, ty->rank, ty->dims);
    v->role = VR_CONST;
    v->data = data;
    v->nbytes = nbytes;
    return 0;
}

static int parse_graph(P *p)
{
    Graph *g = p->g;
    if (p->tok.kind != TK_IDENT && p->tok.kind != TK_STRING)
        return err_expected(p, "a graph name");
    if (!(g->name = parse_qid(p, "a graph name")))
        return -1;

    /* inputs */
    IdVec inputs = {0};
    if (expect(p, '(', "to start the graph inputs"))
        return -1;
    if (!is_punct(p, ')')) {
        for (;;) {
            PType ty;
            char *name;
            const char *npos;
            if (parse_vi(p, &ty, &name, &npos))
                return -1;
            if (graph_find(g, name) >= 0)
                return err_at(p, npos, "graph input '%s' is declared twice", name);
            int id = graph_value(g, name);
            if (id < 0)
                return oom(p);
            if (accept(p, '=')) {
                /* an input with an initializer: a constant, as the importer makes it */
                void *data;
                size_t nb;
                if (parse_data(p, &ty, name, &data, &nb))
                    return -1;
                set_const(p, id, &ty, data, nb);
            } else {
                g->values[id].role = VR_INPUT;
                apply_type(&g->values[id], &ty);
                if (idvec_push(p, &inputs, id))
                    return -1;
            }
            if (!accept(p, ','))
                break;
        }
    }
    if (expect(p, ')', "to close the graph inputs"))
        return -1;
    if (p->tok.kind != TK_ARROW)
        return err_expected(p, "'=>' between the graph inputs and outputs");
    advance(p);

    /* outputs: created after the initializer list, so that printing and parsing keep
     * the values in the same order */
    POut *outs = NULL;
    int nout = 0, cap_out = 0;
    if (expect(p, '(', "to start the graph outputs"))
        return -1;
    if (!is_punct(p, ')')) {
        for (;;) {
            if (!(outs = grow(p, outs, &cap_out, nout, sizeof *outs)))
                return -1;
            POut *o = &outs[nout];
            if (parse_vi(p, &o->type, &o->name, &o->pos))
                return -1;
            nout++;
            if (!accept(p, ','))
                break;
        }
    }
    if (expect(p, ')', "to close the graph outputs"))
        return -1;

    /* initializers and value infos */
    if (accept(p, '<') && !accept(p, '>')) {
        for (;;) {
            PType ty;
            char *name;
            const char *npos;
            if (parse_vi(p, &ty, &name, &npos))
                return -1;
            int id = graph_value(g, name);
            if (id < 0)
                return oom(p);
            if (accept(p, '=')) {
                void *data;
                size_t nb;
                if (g->values[id].role == VR_CONST)
                    return err_at(p, npos, "initializer '%s' is defined twice", name);
                if (parse_data(p, &ty, name, &data, &nb))
                    return -1;
                if (g->values[id].role == VR_INPUT) /* old style: input with an initializer */
                    for (int i = 0; i < inputs.n; i++)
                        if (inputs.v[i] == id) {
                            memmove(&inputs.v[i], &inputs.v[i + 1], (size_t)(inputs.n - i - 1) * sizeof(int));
                            inputs.n--;
                            break;
                        }
                set_const(p, id, &ty, data, nb);
            } else if (g->values[id].role == VR_INTERMEDIATE) {
                apply_type(&g->values[id], &ty);
            }
            if (!accept(p, ','))
                break;
        }
        if (expect(p, '>', "to close the initializers"))
            return -1;
    }

    IdVec outputs = {0};
    for (int i = 0; i < nout; i++) {
        int id = graph_value(g, outs[i].name);
        if (id < 0)
            return oom(p);
        Value *v = &g->values[id];
        if (v->is_output)
            return err_at(p, outs[i].pos, "graph output '%s' is declared twice", outs[i].name);
        v->is_output = 1;
        if (v->role == VR_INTERMEDIATE)
            apply_type(v, &outs[i].type);
        if (idvec_push(p, &outputs, id))
            return -1;
    }
    g->inputs = inputs.v;
    g->ninputs = inputs.n;
    g->outputs = outputs.v;
    g->noutputs = outputs.n;

    /* nodes */
    if (expect(p, '{', "to start the graph's nodes"))
        return -1;
    while (!is_punct(p, '}')) {
        if (p->tok.kind == TK_EOF)
            return err_expected(p, "a node or '}'");
        if (parse_node(p))
            return -1;
    }
    advance(p);

    /* everything used must be defined somewhere */
    for (int i = 0; i < nout; i++) {
        const Value *v = &g->values[g->outputs[i]];
        if (v->role == VR_INTERMEDIATE && v->producer < 0)
            return err_at(p, outs[i].pos, "graph output '%s' is never defined (not an input, initializer or node output)", v->name);
    }
    for (int k = 0; k < g->nnodes; k++) {
        const Node *n = g->nodes[k];
        for (int j = 0; j < n->ninputs; j++) {
            const Value *v = n->inputs[j] >= 0 ? &g->values[n->inputs[j]] : NULL;
            if (v && v->role == VR_INTERMEDIATE && v->producer < 0)
                return err_at(p, p->node_pos[k], "input '%s' of %s is never defined (not an input, initializer or node output)",
                              v->name, n->op_type);
        }
    }
    return 0;
}

/* A cycle, reported at the node that closes it (graph_toposort would only name it).
 * Iterative depth-first search over producers, as graph_toposort does. */
static int check_cycles(P *p)
{
    Graph *g = p->g;
    int nn = g->nnodes;
    if (!nn)
        return 0;
    int *state = arena_array(p->a, (size_t)nn, sizeof(int)); /* 0 new, 1 on stack, 2 done */
    int *stack = arena_array(p->a, (size_t)nn, sizeof(int));
    int *next_in = arena_array(p->a, (size_t)nn, sizeof(int));
    if (!state || !stack || !next_in)
        return oom(p);
    for (int root = 0; root < nn; root++) {
        if (state[root])
            continue;
        int sp = 0;
        stack[sp++] = root;
        state[root] = 1;
        while (sp) {
            int i = stack[sp - 1];
            const Node *n = g->nodes[i];
            if (next_in[i] < n->ninputs) {
                int in = n->inputs[next_in[i]++];
                int pr = in >= 0 ? g->values[in].producer : -1;
                if (pr < 0 || state[pr] == 2)
                    continue;
                if (state[pr] == 1)
                    return err_at(p, p->node_pos[i], "the graph has a cycle: input '%s' of %s depends on this node's own output",
                                  g->values[in].name, n->op_type);
                state[pr] = 1;
                stack[sp++] = pr;
            } else {
                state[i] = 2;
                sp--;
            }
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ model */

static int parse_opsets(P *p)
{
    Graph *g = p->g;
    int cap = 0, cap2 = 0;
    g->nopsets = 0;
    if (expect(p, '[', "to start the opset list"))
        return -1;
    if (!is_punct(p, ']')) {
        for (;;) {
            const char *dpos = p->tok.start;
            char *dom = parse_string(p, "a domain string (\"\" for the default domain)", NULL);
            if (!dom)
                return -1;
            if (strcmp(dom, "ai.onnx") == 0)
                dom = "";
            if (expect(p, ':', "after the domain"))
                return -1;
            int64_t ver;
            if (parse_int_range(p, 1, INT_MAX, "opset version", &ver))
                return -1;
            for (int i = 0; i < g->nopsets; i++)
                if (strcmp(g->opset_domain[i], dom) == 0)
                    return err_at(p, dpos, "domain \"%s\" is imported twice", dom);
            if (!(g->opset_domain = grow(p, g->opset_domain, &cap, g->nopsets, sizeof(char *))) ||
                !(g->opset_version = grow(p, g->opset_version, &cap2, g->nopsets, sizeof(int64_t))))
                return -1;
            g->opset_domain[g->nopsets] = dom;
            g->opset_version[g->nopsets] = ver;
            g->nopsets++;
            if (!dom[0])
                g->opset = (int)ver;
            if (!accept(p, ','))
                break;
        }
    }
    return expect(p, ']', "to close the opset list");
}

static int parse_header(P *p)
{
    Graph *g = p->g;
    advance(p); /* '<' */
    for (;;) {
        if (p->tok.kind != TK_IDENT)
            return err_expected(p, "a model header key (ir_version, opset_import, producer_name, ...)");
        const char *kpos = p->tok.start;
        char *key = tok_dup(p);
        if (!key)
            return -1;
        advance(p);
        if (expect(p, ':', "after the header key"))
            return -1;
        int64_t v;
        if (strcmp(key, "ir_version") == 0) {
            if (parse_int_range(p, 0, INT_MAX, "ir_version", &v))
                return -1;
            g->ir_version = (int)v;
        } else if (strcmp(key, "model_version") == 0) {
            if (parse_int_range(p, INT64_MIN, INT64_MAX, "model_version", &v))
                return -1;
            g->model_version = v;
        } else if (strcmp(key, "opset_import") == 0) {
            if (parse_opsets(p))
                return -1;
        } else if (strcmp(key, "producer_name") == 0) {
            if (!(g->producer_name = parse_string(p, "a string", NULL)))
                return -1;
        } else if (strcmp(key, "producer_version") == 0) {
            if (!(g->producer_version = parse_string(p, "a string", NULL)))
                return -1;
        } else if (strcmp(key, "domain") == 0) {
            if (!(g->model_domain = parse_string(p, "a string", NULL)))
                return -1;
        } else if (strcmp(key, "doc_string") == 0) {
            if (!(g->doc = parse_string(p, "a string", NULL)))
                return -1;
        } else if (strcmp(key, "metadata_props") == 0) {
            /* read and dropped: the IR has no place for them */
            if (expect(p, '[', "to start the metadata list"))
                return -1;
            if (!is_punct(p, ']')) {
                for (;;) {
                    if (!parse_string(p, "a metadata key string", NULL) || expect(p, ':', "after the metadata key") ||
                        !parse_string(p, "a metadata value string", NULL))
                        return -1;
                    if (!accept(p, ','))
                        break;
                }
            }
            if (expect(p, ']', "to close the metadata list"))
                return -1;
        } else {
            return err_at(p, kpos, "unknown model header key '%s' (expected ir_version, opset_import, producer_name, producer_version, domain, model_version, doc_string or metadata_props)", key);
        }
        if (!accept(p, ','))
            break;
    }
    return expect(p, '>', "to close the model header");
}

/* buf[len] must be 0 */
static Graph *parse_buffer(Arena *a, const char *buf, size_t len, const char *path, Diag *d)
{
    P p;
    memset(&p, 0, sizeof p);
    p.a = a;
    p.d = d;
    p.fname = path ? path : (d->file ? d->file : "<text>");
    p.lx.buf = p.lx.cur = buf;
    p.lx.lim = buf + len;
    p.g = graph_new(a, path);
    if (!p.g) {
        diag_error(d, NULL, "out of memory");
        return NULL;
    }
    advance(&p);
    if (!p.failed && is_punct(&p, '<'))
        parse_header(&p);
    if (!p.failed && !parse_graph(&p))
        check_cycles(&p);
    if (!p.failed && p.tok.kind != TK_EOF) {
        if (p.tok.kind == TK_IDENT || is_punct(&p, '<'))
            unsup_at(&p, p.tok.start, "model-local functions are not supported");
        else
            err_expected(&p, "end of input after the graph");
    }
    if (p.failed)
        return NULL;
    /* text order is not necessarily topological */
    if (graph_toposort(p.g, d))
        return NULL;
    return p.g;
}

Graph *onnx_text_parse(Arena *a, const char *text, size_t len, const char *path, Diag *d)
{
    if (path && !d->file)
        d->file = path;
    if (len == SIZE_MAX) {
        diag_error(d, NULL, "text too large");
        return NULL;
    }
    char *buf = arena_alloc(a, len + 1); /* the lexer needs a NUL sentinel */
    if (!buf) {
        diag_error(d, NULL, "out of memory reading %zu bytes of text", len);
        return NULL;
    }
    if (len)
        memcpy(buf, text, len);
    buf[len] = 0;
    return parse_buffer(a, buf, len, path, d);
}

Graph *onnx_text_parse_file(Arena *a, const char *path, Diag *d)
{
    if (!d->file)
        d->file = path;
    FILE *f = fopen(path, "rb");
    if (!f) {
        diag_error(d, NULL, "cannot open '%s': %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf) {
            fclose(f);
            diag_error(d, NULL, "out of memory reading '%s'", path);
            return NULL;
        }
        len += fread(buf + len, 1, cap - len - 1, f);
        if (len < cap - 1)
            break;
        if (cap > ((size_t)1 << 40)) {
            free(buf);
            fclose(f);
            diag_error(d, NULL, "'%s' is too large for a text model", path);
            return NULL;
        }
        char *nb = realloc(buf, cap * 2);
        if (!nb)
            free(buf);
        buf = nb;
        cap *= 2;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        diag_error(d, NULL, "cannot read '%s'", path);
        return NULL;
    }
    Graph *g = onnx_text_parse(a, buf, len, path, d);
    free(buf);
    return g;
}

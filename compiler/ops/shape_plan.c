/* Plans of strided copies (see shape_internal.h): host execution for folding and
 * C emission, plus small helpers shared by the shape operator files. */
#include "compiler/ops/shape_internal.h"

#include <inttypes.h>
#include <string.h>

void plan_init(Plan *p, Arena *a)
{
    memset(p, 0, sizeof *p);
    p->arena = a;
}

Copy *plan_copy(Plan *p, int src, int dst, int rank)
{
    if (p->ncopies == p->cap) {
        int cap = p->cap ? p->cap * 2 : 8;
        Copy *c = arena_array(p->arena, (size_t)cap, sizeof *c);
        if (!c)
            return NULL;
        if (p->ncopies)
            memcpy(c, p->c, (size_t)p->ncopies * sizeof *c);
        p->c = c;
        p->cap = cap;
    }
    Copy *c = &p->c[p->ncopies++];
    memset(c, 0, sizeof *c);
    c->src = src;
    c->dst = dst;
    c->rank = rank;
    return c;
}

int plan_copy_all(Plan *p, const Value *x, int src, int dst)
{
    Copy *c = plan_copy(p, src, dst, 1);
    if (!c)
        return -1;
    c->dims[0] = value_numel(x);
    c->ss[0] = c->ds[0] = 1;
    return 0;
}

int plan_fill(Plan *p, int out, int in, DType dt, double value)
{
    if (p->nfills >= (int)(sizeof p->fills / sizeof p->fills[0]))
        return -1;
    Fill *f = &p->fills[p->nfills++];
    memset(f, 0, sizeof *f);
    f->out = out;
    f->in = in;
    if (in < 0)
        elem_set_f64(f->lit, dt, 0, value);
    return 0;
}

/* Drop unit dims and merge dims that are contiguous in both source and destination. */
static void copy_normalize(const Copy *in, Copy *c)
{
    *c = *in;
    int r = 0;
    for (int k = 0; k < in->rank; k++) {
        if (in->dims[k] == 1)
            continue;
        if (r > 0 && c->ss[r - 1] == in->ss[k] * in->dims[k] && c->ds[r - 1] == in->ds[k] * in->dims[k]) {
            c->dims[r - 1] *= in->dims[k];
            c->ss[r - 1] = in->ss[k];
            c->ds[r - 1] = in->ds[k];
            continue;
        }
        c->dims[r] = in->dims[k];
        c->ss[r] = in->ss[k];
        c->ds[r] = in->ds[k];
        r++;
    }
    c->rank = r;
}

static int copy_empty(const Copy *c)
{
    for (int k = 0; k < c->rank; k++)
        if (c->dims[k] <= 0)
            return 1;
    return 0;
}

static void run_copy(const Copy *c, const unsigned char *src, unsigned char *dst, size_t es)
{
    if (copy_empty(c))
        return;
    int64_t idx[CP_MAX_RANK] = {0};
    int r = c->rank;
    int64_t so = c->so, dof = c->doff;
    for (;;) {
        memcpy(dst + (size_t)dof * es, src + (size_t)so * es, es);
        int k = r - 1;
        for (; k >= 0; k--) {
            idx[k]++;
            so += c->ss[k];
            dof += c->ds[k];
            if (idx[k] < c->dims[k])
                break;
            so -= c->ss[k] * c->dims[k];
            dof -= c->ds[k] * c->dims[k];
            idx[k] = 0;
        }
        if (k < 0)
            break;
    }
}

int plan_fold(Graph *g, const Node *n, const Plan *p, Diag *d)
{
    unsigned char **outs = arena_array(g->arena, (size_t)n->noutputs + 1, sizeof *outs);
    if (!outs)
        return diag_error(d, n, "out of memory folding a constant");
    for (int o = 0; o < n->noutputs; o++) {
        Value *y = node_out(g, n, o);
        if (!y)
            continue;
        outs[o] = value_make_const(g, y, y->dtype, y->rank, y->dims);
        if (!outs[o])
            return diag_error(d, n, "out of memory folding a constant");
    }
    for (int f = 0; f < p->nfills; f++) {
        const Fill *fl = &p->fills[f];
        Value *y = node_out(g, n, fl->out);
        if (!y)
            continue;
        size_t es = dtype_size(y->dtype);
        const unsigned char *val = fl->lit;
        if (fl->in >= 0)
            val = node_in(g, n, fl->in)->data;
        int64_t numel = value_numel(y);
        for (int64_t i = 0; i < numel; i++)
            memcpy(outs[fl->out] + (size_t)i * es, val, es);
    }
    for (int k = 0; k < p->ncopies; k++) {
        const Copy *c = &p->c[k];
        Value *y = node_out(g, n, c->dst);
        if (!y)
            continue;
        run_copy(c, node_in(g, n, c->src)->data, outs[c->dst], dtype_size(y->dtype));
    }
    return 1;
}

/* "off + i0 * s0 + ..." for an index into a flat array */
static void w_index(Writer *w, int64_t off, int rank, const int64_t *st)
{
    int any = 0;
    if (off) {
        w_printf(w, "%" PRId64, off);
        any = 1;
    }
    for (int k = 0; k < rank; k++) {
        int64_t s = st[k];
        if (!s)
            continue;
        if (any)
            w_puts(w, s < 0 ? " - " : " + ");
        else if (s < 0)
            w_puts(w, "-");
        int64_t a = s < 0 ? -s : s;
        if (a == 1)
            w_printf(w, "i%d", k);
        else
            w_printf(w, "i%d * %" PRId64, k, a);
        any = 1;
    }
    if (!any)
        w_puts(w, "0");
}

static void emit_copy(Writer *w, const Copy *in)
{
    Copy c;
    copy_normalize(in, &c);
    if (copy_empty(&c))
        return;
    int r = c.rank;
    int inner_memcpy = r > 0 && c.ss[r - 1] == 1 && c.ds[r - 1] == 1;
    int loops = inner_memcpy ? r - 1 : r;
    for (int k = 0; k < loops; k++) {
        char var[8];
        snprintf(var, sizeof var, "i%d", k);
        em_for(w, var, c.dims[k]);
    }
    if (inner_memcpy) {
        w_printf(w, "memcpy(&y%d[", c.dst);
        w_index(w, c.doff, loops, c.ds);
        w_printf(w, "], &x%d[", c.src);
        w_index(w, c.so, loops, c.ss);
        w_printf(w, "], %" PRId64 " * sizeof(y%d[0]));\n", c.dims[r - 1], c.dst);
    } else {
        w_printf(w, "y%d[", c.dst);
        w_index(w, c.doff, r, c.ds);
        w_printf(w, "] = x%d[", c.src);
        w_index(w, c.so, r, c.ss);
        w_puts(w, "];\n");
    }
    em_close(w, loops);
}

int plan_emit(Emitter *e, const Node *n, const Plan *p, Diag *d)
{
    Writer *w = e->w;
    for (int o = 0; o < n->noutputs; o++) {
        const Value *y = node_out(e->g, n, o);
        if (y && !dtype_ctype(y->dtype))
            return err_dtype(d, n, n->op_type, y->dtype);
    }
    for (int f = 0; f < p->nfills; f++) {
        const Fill *fl = &p->fills[f];
        const Value *y = node_out(e->g, n, fl->out);
        if (!y || value_numel(y) == 0)
            continue;
        em_for(w, "i", value_numel(y));
        w_printf(w, "y%d[i] = ", fl->out);
        if (fl->in >= 0)
            w_printf(w, "x%d[0]", fl->in);
        else
            w_elem(w, y->dtype, fl->lit);
        w_puts(w, ";\n");
        w_close(w);
    }
    for (int k = 0; k < p->ncopies; k++)
        if (node_out(e->g, n, p->c[k].dst))
            emit_copy(w, &p->c[k]);
    return emit_done(e, n);
}

/* ------------------------------------------------------------------ helpers */

int shape_ints(Graph *g, const Node *n, const char *attr, int in, int since_input,
               const char *what, int64_t *out, int max, Diag *d)
{
    if (n->opset && n->opset < since_input) {
        const int64_t *v;
        int cnt = attr_ints(n, attr, &v);
        if (cnt < 0)
            return -2;
        if (cnt > max)
            return diag_unsupported(d, n, "attribute '%s' has %d values; at most %d are supported", attr, cnt, max);
        memcpy(out, v, (size_t)cnt * sizeof *v);
        return cnt;
    }
    if (in < 0 || !node_in(g, n, in))
        return -2;
    Value *v = need_const_input(g, n, in, what, d);
    if (!v)
        return -1;
    if (v->rank > 1 || !dtype_is_int(v->dtype))
        return diag_error(d, n, "input '%s' (%s) must be a 1-D integer tensor", v->name, what);
    int cnt = const_ints(v, out, max);
    if (cnt < 0)
        return diag_unsupported(d, n, "input '%s' (%s) has more than %d values", v->name, what, max);
    return cnt;
}

void w_elem(Writer *w, DType dt, const void *p)
{
    switch (dt) {
    case DT_FLOAT: {
        float f;
        memcpy(&f, p, sizeof f);
        w_float(w, f);
        break;
    }
    case DT_DOUBLE: {
        double f;
        memcpy(&f, p, sizeof f);
        w_double(w, f);
        break;
    }
    case DT_BOOL:
        w_puts(w, *(const unsigned char *)p ? "true" : "false");
        break;
    case DT_UINT64: {
        uint64_t v;
        memcpy(&v, p, sizeof v);
        w_printf(w, "UINT64_C(%" PRIu64 ")", v);
        break;
    }
    case DT_UINT32: {
        uint32_t v;
        memcpy(&v, p, sizeof v);
        w_printf(w, "%" PRIu32 "u", v);
        break;
    }
    case DT_FLOAT16:
    case DT_BFLOAT16:
    case DT_UINT16: {
        uint16_t v;
        memcpy(&v, p, sizeof v);
        w_printf(w, "%u", (unsigned)v);
        break;
    }
    default:
        w_int64(w, elem_get_i64(p, dt, 0));
    }
}

void emit_const_data(Emitter *e, int out, DType dt, const void *data, int64_t numel)
{
    if (numel <= 0)
        return;
    Writer *w = e->w;
    char k[32];
    em_tmp(e, k, sizeof k);
    w_printf(w, "static const %s %s[%" PRId64 "] = {", dtype_ctype(dt), k, numel);
    size_t es = dtype_size(dt);
    for (int64_t i = 0; i < numel; i++) {
        if (i % 8 == 0)
            w_puts(w, "\n    ");
        w_elem(w, dt, (const unsigned char *)data + (size_t)i * es);
        if (i + 1 < numel)
            w_puts(w, ", ");
    }
    w_puts(w, "\n};\n");
    w_line(w, "memcpy(y%d, %s, sizeof %s);", out, k, k);
}

int shape_dtype_ok(Diag *d, const Node *n, DType t)
{
    if (!dtype_ctype(t) || !dtype_size(t))
        return err_dtype(d, n, n->op_type, t);
    return 0;
}

/* 1 if identifier id occurs as a whole word in text */
static int text_uses(const char *text, const char *id)
{
    size_t n = strlen(id);
    for (const char *p = text ? strstr(text, id) : NULL; p; p = strstr(p + 1, id)) {
        int before = p > text && (p[-1] == '_' || (p[-1] >= '0' && p[-1] <= '9') || ((p[-1] | 32) >= 'a' && (p[-1] | 32) <= 'z'));
        char c = p[n];
        int after = c == '_' || (c >= '0' && c <= '9') || ((c | 32) >= 'a' && (c | 32) <= 'z');
        if (!before && !after)
            return 1;
    }
    return 0;
}

int emit_done(Emitter *e, const Node *n)
{
    for (int pass = 0; pass < 2; pass++) {
        int cnt = pass ? n->noutputs : n->ninputs;
        for (int i = 0; i < cnt; i++) {
            const Value *v = pass ? node_out(e->g, n, i) : node_in(e->g, n, i);
            if (!v || v->role == VR_CONST)
                continue;
            char id[16];
            snprintf(id, sizeof id, "%c%d", pass ? 'y' : 'x', i);
            if (!text_uses(e->w->buf, id))
                w_line(e->w, "(void)%s;", id);
        }
    }
    return 0;
}

/* Reductions: ReduceSum, ReduceMean, ReduceMax, ReduceMin, ReduceProd, ReduceL1,
 * ReduceL2, ReduceSumSquare, ReduceLogSum, ReduceLogSumExp, ArgMax, ArgMin.
 *
 * Axes come from the `axes` attribute (older opsets) or the optional second input
 * (ReduceSum from opset 13, the others from 18), which must be a constant.
 * Emission collapses the input shape into alternating groups of kept and reduced
 * dims. When the innermost group is reduced, each output element gets a scalar
 * accumulator over a contiguous inner loop; when it is kept (e.g. reducing the
 * channel axis), the output itself accumulates, so the inner loop runs contiguously
 * over both input and output and vectorises.
 */
#include "compiler/ops/ops.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>

enum RKind { R_SUM, R_MEAN, R_MAX, R_MIN, R_PROD, R_L1, R_L2, R_SUMSQ, R_LOGSUM, R_LSE };

static const struct {
    const char *name;
    enum RKind kind;
} reduce_names[] = {
    {"ReduceSum", R_SUM}, {"ReduceMean", R_MEAN}, {"ReduceMax", R_MAX}, {"ReduceMin", R_MIN},
    {"ReduceProd", R_PROD}, {"ReduceL1", R_L1}, {"ReduceL2", R_L2},
    {"ReduceSumSquare", R_SUMSQ}, {"ReduceLogSum", R_LOGSUM}, {"ReduceLogSumExp", R_LSE},
};

static enum RKind reduce_kind(const Node *n)
{
    for (size_t i = 0; i < sizeof reduce_names / sizeof reduce_names[0]; i++)
        if (strcmp(n->op_type, reduce_names[i].name) == 0)
            return reduce_names[i].kind;
    return R_SUM;
}

/* Which axes a Reduce node reduces: mask[d] = 1 for reduced dims. *noop = 1 when the
 * node is an identity (empty axes with noop_with_empty_axes). The axes input, when
 * present, must be constant (infer reports that through need_const_input). */
static int reduce_axes(const Graph *g, const Node *n, const Value *x, int *mask, int *noop, Diag *d)
{
    int64_t axes[KD_MAX_RANK * 2];
    int na = 0;
    const Value *a = node_in(g, n, 1);
    if (a) {
        if (!value_is_const(a))
            return diag_error(d, n, "axes input '%s' must be a constant", a->name);
        na = const_ints(a, axes, KD_MAX_RANK * 2);
        if (na < 0)
            return diag_error(d, n, "axes input '%s' must be a 1-D integer tensor of at most %d entries", a->name, KD_MAX_RANK * 2);
    } else {
        const int64_t *av;
        int k = attr_ints(n, "axes", &av);
        if (k > KD_MAX_RANK * 2)
            return diag_error(d, n, "too many axes (%d)", k);
        for (int i = 0; i < k; i++)
            axes[na++] = av[i];
    }
    *noop = 0;
    for (int i = 0; i < x->rank; i++)
        mask[i] = na == 0;
    if (na == 0 && attr_int(n, "noop_with_empty_axes", 0)) {
        *noop = 1;
        for (int i = 0; i < x->rank; i++)
            mask[i] = 0;
        return 0;
    }
    for (int i = 0; i < na; i++) {
        int ax = norm_axis(d, n, axes[i], x->rank);
        if (ax < 0)
            return -1;
        if (mask[ax] && na)
            return diag_error(d, n, "axis %lld is given twice", (long long)axes[i]);
        mask[ax] = 1;
    }
    return 0;
}

static int infer_reduce(Graph *g, Node *n, Diag *d)
{
    Value *x = need_input(g, n, 0, d);
    if (!x)
        return -1;
    if (node_in(g, n, 1) && !need_const_input(g, n, 1, "axes", d))
        return -1;
    enum RKind k = reduce_kind(n);
    if (x->dtype == DT_BOOL && k != R_MAX && k != R_MIN)
        return err_dtype(d, n, n->op_type, x->dtype);
    int mask[KD_MAX_RANK], noop;
    if (reduce_axes(g, n, x, mask, &noop, d))
        return -1;
    int keep = (int)attr_int(n, "keepdims", 1);
    int64_t dims[KD_MAX_RANK];
    int r = 0;
    for (int i = 0; i < x->rank; i++) {
        if (!mask[i])
            dims[r++] = x->dims[i];
        else if (keep)
            dims[r++] = 1;
    }
    value_set_shape(node_out(g, n, 0), x->dtype, r, dims);
    return 0;
}

/* ---- emission ---- */

/* Collapsed view of a shape under a reduce mask: groups of adjacent dims with the
 * same mask (size-1 dims dropped), with input strides and output strides (0 for
 * reduced groups). */
typedef struct Groups {
    int n;
    int64_t size[KD_MAX_RANK];
    int red[KD_MAX_RANK];
    int64_t xs[KD_MAX_RANK];
    int64_t ys[KD_MAX_RANK];
} Groups;

static void make_groups(const Value *x, const int *mask, Groups *G)
{
    G->n = 0;
    for (int i = 0; i < x->rank; i++) {
        if (x->dims[i] == 1)
            continue;
        if (G->n > 0 && G->red[G->n - 1] == mask[i]) {
            G->size[G->n - 1] *= x->dims[i];
        } else {
            G->size[G->n] = x->dims[i];
            G->red[G->n] = mask[i];
            G->n++;
        }
    }
    int64_t s = 1, o = 1;
    for (int k = G->n - 1; k >= 0; k--) {
        G->xs[k] = s;
        s *= G->size[k];
        G->ys[k] = G->red[k] ? 0 : o;
        if (!G->red[k])
            o *= G->size[k];
    }
}

/* Type handling of one Reduce node. */
typedef struct RT {
    DType xt;            /* element type */
    const char *ct;      /* its C type */
    const char *acc;     /* accumulator C type */
    DType adt;           /* accumulator dtype for literals */
    const char *ld;      /* load conversion applied to x0[...] ("" or "kd_h2f" or a cast) */
    const char *st;      /* store conversion to the element type */
    const char *fs;      /* math function suffix for the accumulator ("f" or "") */
    int is_float;        /* accumulator is floating point */
} RT;

static const char *cast_of(DType t)
{
    switch (t) {
    case DT_FLOAT: return "(float)";
    case DT_DOUBLE: return "(double)";
    case DT_INT8: return "(int8_t)";
    case DT_UINT8: return "(uint8_t)";
    case DT_INT16: return "(int16_t)";
    case DT_UINT16: return "(uint16_t)";
    case DT_INT32: return "(int32_t)";
    case DT_UINT32: return "(uint32_t)";
    case DT_INT64: return "(int64_t)";
    case DT_UINT64: return "(uint64_t)";
    case DT_BOOL: return "(bool)";
    default: return "";
    }
}

static int rt_init(Emitter *e, const Node *n, enum RKind k, DType t, RT *r, Diag *d)
{
    memset(r, 0, sizeof *r);
    r->xt = t;
    r->ct = dtype_ctype(t);
    r->ld = "";
    r->st = cast_of(t);
    r->fs = "f";
    if (t == DT_FLOAT || t == DT_FLOAT16 || t == DT_BFLOAT16) {
        r->acc = "float";
        r->adt = DT_FLOAT;
        r->is_float = 1;
        if (t == DT_FLOAT16) {
            e->prelude |= PRE_HALF;
            r->ld = "kd_h2f";
            r->st = "kd_f2h";
        } else if (t == DT_BFLOAT16) {
            e->prelude |= PRE_BF16;
            r->ld = "kd_bf2f";
            r->st = "kd_f2bf";
        }
    } else if (t == DT_DOUBLE) {
        r->acc = "double";
        r->adt = DT_DOUBLE;
        r->fs = "";
        r->is_float = 1;
    } else if (t == DT_BOOL) {
        r->acc = "bool";
        r->adt = DT_BOOL;
    } else if (dtype_is_int(t)) {
        if (k == R_MAX || k == R_MIN) {
            r->acc = r->ct;
            r->adt = t;
        } else if (k == R_L2 || k == R_LOGSUM || k == R_LSE) {
            r->acc = "double";
            r->adt = DT_DOUBLE;
            r->fs = "";
            r->is_float = 1;
            r->ld = "(double)";
        } else {
            int s = dtype_is_signed(t);
            r->acc = s ? "int64_t" : "uint64_t";
            r->adt = s ? DT_INT64 : DT_UINT64;
            r->ld = s ? "(int64_t)" : "(uint64_t)";
        }
    } else {
        return err_dtype(d, n, n->op_type, t);
    }
    return 0;
}

static const char *int_limit(DType t, int max)
{
    switch (t) {
    case DT_INT8: return max ? "INT8_MAX" : "INT8_MIN";
    case DT_UINT8: return max ? "UINT8_MAX" : "0";
    case DT_INT16: return max ? "INT16_MAX" : "INT16_MIN";
    case DT_UINT16: return max ? "UINT16_MAX" : "0";
    case DT_INT32: return max ? "INT32_MAX" : "INT32_MIN";
    case DT_UINT32: return max ? "UINT32_MAX" : "0";
    case DT_INT64: return max ? "INT64_MAX" : "INT64_MIN";
    case DT_UINT64: return max ? "UINT64_MAX" : "0";
    default: return "0";
    }
}

/* The identity of the reduction, as a C expression of the accumulator type. */
static void w_identity(Writer *w, enum RKind k, const RT *r)
{
    if (k == R_MAX || k == R_MIN) {
        if (r->adt == DT_BOOL)
            w_puts(w, k == R_MAX ? "false" : "true");
        else if (r->is_float)
            w_puts(w, k == R_MAX ? "-INFINITY" : "INFINITY");
        else
            w_puts(w, int_limit(r->adt, k == R_MIN));
    } else if (k == R_PROD) {
        em_literal(w, r->adt, 1);
    } else {
        em_literal(w, r->adt, 0);
    }
}

/* acc = acc (op) v, where v is the C expression of one loaded element. */
static void w_step(Writer *w, enum RKind k, const RT *r, const char *acc, const char *v)
{
    switch (k) {
    case R_SUM: case R_MEAN: case R_LOGSUM:
        w_line(w, "%s += %s;", acc, v);
        break;
    case R_PROD:
        w_line(w, "%s *= %s;", acc, v);
        break;
    case R_MAX:
        if (r->adt == DT_BOOL)
            w_line(w, "%s = %s || %s;", acc, acc, v);
        else
            w_line(w, "%s = %s > %s ? %s : %s;", acc, v, acc, v, acc);
        break;
    case R_MIN:
        if (r->adt == DT_BOOL)
            w_line(w, "%s = %s && %s;", acc, acc, v);
        else
            w_line(w, "%s = %s < %s ? %s : %s;", acc, v, acc, v, acc);
        break;
    case R_L1:
        if (r->is_float)
            w_line(w, "%s += fabs%s(%s);", acc, r->fs, v);
        else if (dtype_is_signed(r->xt))
            w_line(w, "%s += %s < 0 ? -%s : %s;", acc, v, v, v);
        else
            w_line(w, "%s += %s;", acc, v);
        break;
    case R_L2: case R_SUMSQ:
        w_line(w, "{ const %s t = %s; %s += t * t; }", r->acc, v, acc);
        break;
    case R_LSE:
        w_line(w, "%s += exp%s(%s - m);", acc, r->fs, v);
        break;
    }
}

/* Write the final value of accumulator `acc` over `count` elements, converted to the
 * element type, as an expression. */
static void w_final(Writer *w, enum RKind k, const RT *r, const char *acc, int64_t count)
{
    w_printf(w, "%s(", r->st);
    switch (k) {
    case R_MEAN:
        if (count == 0 && !r->is_float)
            w_puts(w, "0");
        else {
            w_printf(w, "%s / ", acc);
            em_literal(w, r->adt, (double)count);
        }
        break;
    case R_L2:
        w_printf(w, "sqrt%s(%s)", r->fs, acc);
        break;
    case R_LOGSUM:
        w_printf(w, "log%s(%s)", r->fs, acc);
        break;
    case R_LSE:
        w_printf(w, "isinf(m) ? m : m + log%s(%s)", r->fs, acc);
        break;
    default:
        w_puts(w, acc);
    }
    w_puts(w, ")");
}

static int emit_reduce(Emitter *e, const Node *n, Diag *d)
{
    const Value *x = node_in(e->g, n, 0), *y = node_out(e->g, n, 0);
    Writer *w = e->w;
    enum RKind k = reduce_kind(n);
    int mask[KD_MAX_RANK], noop;
    if (reduce_axes(e->g, n, x, mask, &noop, d))
        return -1;
    RT r;
    if (rt_init(e, n, k, x->dtype, &r, d))
        return -1;
    int64_t ny = value_numel(y), nx = value_numel(x);
    if (ny == 0) {
        w_line(w, "(void)y0; /* no elements */");
        return 0;
    }
    if (noop) {
        w_line(w, "memcpy(y0, x0, sizeof(%s) * %" PRId64 ");", r.ct, nx);
        return 0;
    }
    int64_t count = ny ? nx / ny : 0;
    if (nx == 0) {
        /* empty reduction: every output is the identity, finalised */
        em_for(w, "i", ny);
        w_printf(w, "const %s a = ", r.acc);
        w_identity(w, k, &r);
        w_puts(w, ";\n");
        if (k == R_LSE)
            w_line(w, "const %s m = -INFINITY;", r.acc);
        w_puts(w, "y0[i] = ");
        w_final(w, k, &r, "a", 0);
        w_puts(w, ";\n");
        w_close(w);
        return 0;
    }
    Groups G;
    make_groups(x, mask, &G);
    char v[64];
    snprintf(v, sizeof v, "%s(x0[xi])", r.ld);

    int inner_kept = G.n > 0 && !G.red[G.n - 1];
    int yacc = inner_kept && (x->dtype == DT_FLOAT || x->dtype == DT_DOUBLE) && k != R_LSE;
    if (yacc) {
        /* the output accumulates: init, one pass over x in order, finalise */
        em_for(w, "i", ny);
        w_puts(w, "y0[i] = ");
        w_identity(w, k, &r);
        w_puts(w, ";\n");
        w_close(w);
        for (int a = 0; a < G.n; a++) {
            char var[16];
            snprintf(var, sizeof var, "g%d", a);
            em_for(w, var, G.size[a]);
        }
        w_puts(w, "const int64_t xi = 0");
        for (int a = 0; a < G.n; a++)
            w_printf(w, " + g%d * %" PRId64, a, G.xs[a]);
        w_puts(w, ";\nconst int64_t yi = 0");
        for (int a = 0; a < G.n; a++)
            if (!G.red[a])
                w_printf(w, " + g%d * %" PRId64, a, G.ys[a]);
        w_puts(w, ";\n");
        w_step(w, k, &r, "y0[yi]", v);
        em_close(w, G.n);
        if (k == R_MEAN || k == R_L2 || k == R_LOGSUM) {
            em_for(w, "i", ny);
            w_puts(w, "y0[i] = ");
            w_final(w, k, &r, "y0[i]", count);
            w_puts(w, ";\n");
            w_close(w);
        }
        return 0;
    }

    /* scalar accumulator per output element */
    int nk = 0, nr = 0;
    for (int a = 0; a < G.n; a++) {
        char var[16];
        if (G.red[a]) {
            nr++;
            continue;
        }
        snprintf(var, sizeof var, "g%d", a);
        em_for(w, var, G.size[a]);
        nk++;
    }
    if (nk == 0) {
        w_puts(w, "{\n");
        w->indent++;
        nk = 1;
    }
    w_puts(w, "const int64_t xb = 0");
    for (int a = 0; a < G.n; a++)
        if (!G.red[a])
            w_printf(w, " + g%d * %" PRId64, a, G.xs[a]);
    w_puts(w, ";\nconst int64_t yi = 0");
    for (int a = 0; a < G.n; a++)
        if (!G.red[a])
            w_printf(w, " + g%d * %" PRId64, a, G.ys[a]);
    w_puts(w, ";\n");
    for (int pass = k == R_LSE ? 0 : 1; pass < 2; pass++) {
        const char *acc = pass == 0 ? "m" : "a";
        w_printf(w, "%s %s = ", r.acc, acc);
        w_identity(w, pass == 0 ? R_MAX : k, &r);
        w_puts(w, ";\n");
        for (int a = 0; a < G.n; a++) {
            char var[16];
            if (!G.red[a])
                continue;
            snprintf(var, sizeof var, "g%d", a);
            em_for(w, var, G.size[a]);
        }
        if (nr == 0) {
            w_puts(w, "{\n");
            w->indent++;
        }
        w_puts(w, "const int64_t xi = xb");
        for (int a = 0; a < G.n; a++)
            if (G.red[a])
                w_printf(w, " + g%d * %" PRId64, a, G.xs[a]);
        w_puts(w, ";\n");
        w_step(w, pass == 0 ? R_MAX : k, &r, acc, v);
        em_close(w, nr ? nr : 1);
    }
    w_puts(w, "y0[yi] = ");
    w_final(w, k, &r, "a", count);
    w_puts(w, ";\n");
    em_close(w, nk);
    return 0;
}


/* ---- constant folding (shape arithmetic such as ReduceProd over a Shape) ---- */

/* flat output index of flat input index i under a reduce mask (kept dims only) */
static int64_t out_index(const Value *x, const int *mask, int64_t i)
{
    int64_t yi = 0, ys = 1;
    for (int a = x->rank - 1; a >= 0; a--) {
        int64_t c = i % x->dims[a];
        i /= x->dims[a];
        if (!mask[a]) {
            yi += c * ys;
            ys *= x->dims[a];
        }
    }
    return yi;
}

static int fold_reduce(Graph *g, Node *n, Diag *d)
{
    Value *x = node_in(g, n, 0), *y = node_out(g, n, 0);
    if (!all_inputs_const(g, n) || !value_shape_known(y))
        return 0;
    enum RKind k = reduce_kind(n);
    int mask[KD_MAX_RANK], noop;
    if (reduce_axes(g, n, x, mask, &noop, d))
        return -1;
    int64_t nx = value_numel(x), ny = value_numel(y);
    if (nx > (1 << 22))
        return 0; /* large: leave it to run time */
    int real = !dtype_is_int(x->dtype) && x->dtype != DT_BOOL;
    int as_real = real || k == R_L2 || k == R_LOGSUM || k == R_LSE;
    double *f = arena_array(g->arena, (size_t)(ny ? ny : 1), sizeof *f);
    double *m = arena_array(g->arena, (size_t)(ny ? ny : 1), sizeof *m);
    int64_t *q = arena_array(g->arena, (size_t)(ny ? ny : 1), sizeof *q);
    if (!f || !m || !q)
        return diag_error(d, n, "out of memory");
    int64_t imax = INT64_MAX, imin = INT64_MIN;
    for (int64_t j = 0; j < ny; j++) {
        f[j] = k == R_PROD ? 1 : k == R_MAX ? -INFINITY : k == R_MIN ? INFINITY : 0;
        q[j] = k == R_PROD ? 1 : k == R_MAX ? imin : k == R_MIN ? imax : 0;
        m[j] = -INFINITY;
    }
    if (noop) {
        for (int a = 0; a < x->rank; a++)
            mask[a] = 0;
    }
    if (k == R_LSE)
        for (int64_t i = 0; i < nx; i++) {
            int64_t j = out_index(x, mask, i);
            double v = elem_get_f64(x->data, x->dtype, i);
            m[j] = v > m[j] ? v : m[j];
        }
    for (int64_t i = 0; i < nx; i++) {
        int64_t j = out_index(x, mask, i);
        if (noop) {
            f[j] = elem_get_f64(x->data, x->dtype, i);
            q[j] = elem_get_i64(x->data, x->dtype, i);
            continue;
        }
        if (as_real) {
            double v = elem_get_f64(x->data, x->dtype, i);
            switch (k) {
            case R_SUM: case R_MEAN: case R_LOGSUM: f[j] += v; break;
            case R_PROD: f[j] *= v; break;
            case R_MAX: f[j] = v > f[j] ? v : f[j]; break;
            case R_MIN: f[j] = v < f[j] ? v : f[j]; break;
            case R_L1: f[j] += fabs(v); break;
            case R_L2: case R_SUMSQ: f[j] += v * v; break;
            case R_LSE: f[j] += exp(v - m[j]); break;
            }
        } else {
            int64_t v = elem_get_i64(x->data, x->dtype, i);
            switch (k) {
            case R_SUM: case R_MEAN: q[j] = (int64_t)((uint64_t)q[j] + (uint64_t)v); break;
            case R_PROD: q[j] = (int64_t)((uint64_t)q[j] * (uint64_t)v); break;
            case R_MAX: q[j] = v > q[j] ? v : q[j]; break;
            case R_MIN: q[j] = v < q[j] ? v : q[j]; break;
            case R_L1: q[j] = (int64_t)((uint64_t)q[j] + (uint64_t)(v < 0 ? -v : v)); break;
            case R_SUMSQ: q[j] = (int64_t)((uint64_t)q[j] + (uint64_t)v * (uint64_t)v); break;
            default: break;
            }
        }
    }
    int64_t count = ny ? nx / ny : 0;
    void *out = value_make_const(g, y, y->dtype, y->rank, y->dims);
    if (!out)
        return diag_error(d, n, "out of memory");
    for (int64_t j = 0; j < ny; j++) {
        if (noop) {
            if (real)
                elem_set_f64(out, y->dtype, j, f[j]);
            else
                elem_set_i64(out, y->dtype, j, q[j]);
            continue;
        }
        if (as_real) {
            double v = f[j];
            switch (k) {
            case R_MEAN: v = v / (double)count; break;
            case R_L2: v = sqrt(v); break;
            case R_LOGSUM: v = log(v); break;
            case R_LSE: v = isinf(m[j]) ? m[j] : m[j] + log(v); break;
            default: break;
            }
            if (!real)
                v = trunc(v);
            if (!real && !isfinite(v))
                v = 0;
            elem_set_f64(out, y->dtype, j, v);
        } else {
            int64_t v = q[j];
            if (k == R_MEAN)
                v = count ? v / count : 0;
            if (x->dtype == DT_BOOL && (k == R_MAX || k == R_MIN) && count == 0)
                v = k == R_MIN;
            if ((k == R_MAX || k == R_MIN) && count == 0 && x->dtype != DT_BOOL) {
                /* empty: the type's extreme */
                double lim = k == R_MAX ? -1e300 : 1e300;
                elem_set_f64(out, y->dtype, j, lim);
                continue;
            }
            elem_set_i64(out, y->dtype, j, v);
        }
    }
    return 1;
}

/* ReduceSum / ReduceMean: dy spread back over the reduced axes (divided by the count for
 * the mean). Other reductions have no gradient rule. */
static int grad_reduce(GradCtx *c)
{
    enum RKind k = reduce_kind(c->n);
    if (c->dy[0] < 0 || !c->need[0])
        return 0;
    if (k != R_SUM && k != R_MEAN)
        return diag_unsupported(c->d, c->n, "%s has no gradient rule, so a model that trains through it cannot be "
                                            "differentiated", c->n->op_type);
    const Value *x = &c->g->values[c->n->inputs[0]];
    int mask[KD_MAX_RANK] = {0}, noop = 0;
    if (reduce_axes(c->g, c->n, x, mask, &noop, c->d))
        return -1;
    if (noop) {
        c->dx[0] = c->dy[0];
        return 0;
    }
    int64_t kd[KD_MAX_RANK], count = 1;
    for (int i = 0; i < x->rank; i++) {
        kd[i] = mask[i] ? 1 : x->dims[i];
        count *= mask[i] ? x->dims[i] : 1;
    }
    int shp = g_const_ints(c, kd, x->rank);
    int g = g_op2(c, "Reshape", c->dy[0], shp);
    if (g >= 0 && k == R_MEAN)
        g = g_op2(c, "Mul", g, g_const_scalar(c, DT_FLOAT, count ? 1.0 / (double)count : 0.0));
    int full = g_const_ints(c, x->dims, x->rank);
    c->dx[0] = g < 0 ? -1 : g_op2(c, "Expand", g, full);
    return c->dx[0] < 0 ? -1 : 0;
}

#define REDUCE_OP(var, NAME, SUMMARY)                                                  \
    static const OpDef var = {                                                         \
        .name = NAME, .domain = "", .since = 1,                                        \
        .min_inputs = 1, .max_inputs = 2, .min_outputs = 1, .max_outputs = 1,          \
        .infer = infer_reduce, .fold = fold_reduce, .emit = emit_reduce,               \
        .grad = grad_reduce,                                                           \
        .summary = SUMMARY,                                                            \
    }

REDUCE_OP(op_reduce_sum, "ReduceSum", "sum over axes");
REDUCE_OP(op_reduce_mean, "ReduceMean", "mean over axes");
REDUCE_OP(op_reduce_max, "ReduceMax", "maximum over axes");
REDUCE_OP(op_reduce_min, "ReduceMin", "minimum over axes");
REDUCE_OP(op_reduce_prod, "ReduceProd", "product over axes");
REDUCE_OP(op_reduce_l1, "ReduceL1", "sum of absolute values over axes");
REDUCE_OP(op_reduce_l2, "ReduceL2", "Euclidean norm over axes");
REDUCE_OP(op_reduce_sumsq, "ReduceSumSquare", "sum of squares over axes");
REDUCE_OP(op_reduce_logsum, "ReduceLogSum", "log of the sum over axes");
REDUCE_OP(op_reduce_lse, "ReduceLogSumExp", "log of the sum of exponentials over axes (stable)");

/* ---------------------------------------------------------------- ArgMax / ArgMin */

static int infer_arg(Graph *g, Node *n, Diag *d)
{
    Value *x = need_input(g, n, 0, d);
    if (!x)
        return -1;
    if (x->dtype == DT_BOOL)
        return err_dtype(d, n, n->op_type, x->dtype);
    int ax = norm_axis(d, n, attr_int(n, "axis", 0), x->rank);
    if (ax < 0)
        return -1;
    if (x->rank == 0)
        return diag_error(d, n, "input must have rank >= 1");
    if (x->dims[ax] == 0)
        return diag_error(d, n, "cannot take %s over an empty axis", n->op_type);
    int keep = (int)attr_int(n, "keepdims", 1);
    int64_t dims[KD_MAX_RANK];
    int r = 0;
    for (int i = 0; i < x->rank; i++) {
        if (i != ax)
            dims[r++] = x->dims[i];
        else if (keep)
            dims[r++] = 1;
    }
    value_set_shape(node_out(g, n, 0), DT_INT64, r, dims);
    return 0;
}

static int emit_arg(Emitter *e, const Node *n, Diag *d)
{
    const Value *x = node_in(e->g, n, 0);
    Writer *w = e->w;
    int ax = norm_axis(d, n, attr_int(n, "axis", 0), x->rank);
    if (ax < 0)
        return -1;
    int is_max = strcmp(n->op_type, "ArgMax") == 0;
    int last = (int)attr_int(n, "select_last_index", 0);
    const char *ld = "";
    const char *vt = dtype_ctype(x->dtype);
    if (x->dtype == DT_FLOAT16) {
        e->prelude |= PRE_HALF;
        ld = "kd_h2f";
        vt = "float";
    } else if (x->dtype == DT_BFLOAT16) {
        e->prelude |= PRE_BF16;
        ld = "kd_bf2f";
        vt = "float";
    } else if (!dtype_is_float(x->dtype) && !dtype_is_int(x->dtype)) {
        return err_dtype(d, n, n->op_type, x->dtype);
    }
    int64_t outer = 1, inner = 1, len = x->dims[ax];
    for (int i = 0; i < ax; i++)
        outer *= x->dims[i];
    for (int i = ax + 1; i < x->rank; i++)
        inner *= x->dims[i];
    if (outer * inner == 0)
        return 0;
    const char *cmp = is_max ? (last ? ">=" : ">") : (last ? "<=" : "<");
    em_for(w, "o", outer);
    em_for(w, "i", inner);
    w_line(w, "const int64_t b = o * %" PRId64 " + i;", len * inner);
    w_line(w, "%s best = %s(x0[b]);", vt, ld);
    w_line(w, "int64_t bi = 0;");
    w_open(w, "for (int64_t k = 1; k < %" PRId64 "; ++k)", len);
    w_line(w, "const %s v = %s(x0[b + k * %" PRId64 "]);", vt, ld, inner);
    w_open(w, "if (v %s best)", cmp);
    w_line(w, "best = v;");
    w_line(w, "bi = k;");
    w_close(w);
    w_close(w);
    w_line(w, "y0[o * %" PRId64 " + i] = bi;", inner);
    em_close(w, 2);
    /* the output is int64: reference the unused other half of the conversion pair */
    if (x->dtype == DT_FLOAT16)
        w_line(w, "(void)kd_f2h;");
    else if (x->dtype == DT_BFLOAT16)
        w_line(w, "(void)kd_f2bf;");
    return 0;
}


static int fold_arg(Graph *g, Node *n, Diag *d)
{
    Value *x = node_in(g, n, 0), *y = node_out(g, n, 0);
    if (!value_is_const(x) || !value_shape_known(y))
        return 0;
    int ax = norm_axis(d, n, attr_int(n, "axis", 0), x->rank);
    if (ax < 0)
        return -1;
    int is_max = strcmp(n->op_type, "ArgMax") == 0;
    int last = (int)attr_int(n, "select_last_index", 0);
    int64_t outer = 1, inner = 1, len = x->dims[ax];
    for (int i = 0; i < ax; i++)
        outer *= x->dims[i];
    for (int i = ax + 1; i < x->rank; i++)
        inner *= x->dims[i];
    int64_t *out = value_make_const(g, y, DT_INT64, y->rank, y->dims);
    if (!out)
        return diag_error(d, n, "out of memory");
    int real = !dtype_is_int(x->dtype);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            int64_t b = o * len * inner + i, bi = 0;
            double bf = real ? elem_get_f64(x->data, x->dtype, b) : 0;
            int64_t bq = real ? 0 : elem_get_i64(x->data, x->dtype, b);
            for (int64_t k = 1; k < len; k++) {
                int better;
                if (real) {
                    double v = elem_get_f64(x->data, x->dtype, b + k * inner);
                    better = is_max ? (last ? v >= bf : v > bf) : (last ? v <= bf : v < bf);
                    if (better)
                        bf = v;
                } else {
                    int64_t v = elem_get_i64(x->data, x->dtype, b + k * inner);
                    better = is_max ? (last ? v >= bq : v > bq) : (last ? v <= bq : v < bq);
                    if (better)
                        bq = v;
                }
                if (better)
                    bi = k;
            }
            out[o * inner + i] = bi;
        }
    return 1;
}

static const OpDef op_argmax = {
    .name = "ArgMax", .domain = "", .since = 1,
    .min_inputs = 1, .max_inputs = 1, .min_outputs = 1, .max_outputs = 1,
    .infer = infer_arg, .fold = fold_arg, .emit = emit_arg,
    .summary = "index of the maximum along an axis (int64)",
};

static const OpDef op_argmin = {
    .name = "ArgMin", .domain = "", .since = 1,
    .min_inputs = 1, .max_inputs = 1, .min_outputs = 1, .max_outputs = 1,
    .infer = infer_arg, .fold = fold_arg, .emit = emit_arg,
    .summary = "index of the minimum along an axis (int64)",
};

const OpDef *const ops_reduce[] = {
    &op_reduce_sum, &op_reduce_mean, &op_reduce_max, &op_reduce_min, &op_reduce_prod,
    &op_reduce_l1, &op_reduce_l2, &op_reduce_sumsq, &op_reduce_logsum, &op_reduce_lse,
    &op_argmax, &op_argmin, NULL,
};

/* Pooling: MaxPool (optional Indices), AveragePool, LpPool, GlobalAveragePool,
 * GlobalMaxPool, MaxUnpool and LpNormalization.
 *
 * Windowed pools precompute, per spatial dim and output position, the range of
 * kernel taps that land inside the input (static tables in the emitted function),
 * so the interior loops have no per-element bounds checks; dims where every
 * window is whole use constant bounds instead.
 */
#include "compiler/ops/ops.h"

#include <inttypes.h>
#include <string.h>

/* ---- element types: float16/bfloat16 are computed in float ---- */

typedef struct FT {
    const char *ct;   /* C element type */
    const char *acc;  /* compute type */
    const char *ld;   /* load conversion */
    const char *st;   /* store conversion */
    const char *fs;   /* math suffix */
    DType adt;        /* compute dtype (for literals) */
    int is_float;
} FT;

static const char *int_min_of(DType t)
{
    switch (t) {
    case DT_INT8: return "INT8_MIN";
    case DT_INT16: return "INT16_MIN";
    case DT_INT32: return "INT32_MIN";
    case DT_INT64: return "INT64_MIN";
    default: return "0";
    }
}

static int ft_init(Emitter *e, const Node *n, DType t, int allow_int, FT *f, Diag *d)
{
    memset(f, 0, sizeof *f);
    f->ct = dtype_ctype(t);
    f->ld = "";
    f->st = "";
    f->fs = "f";
    f->acc = "float";
    f->adt = DT_FLOAT;
    f->is_float = 1;
    switch (t) {
    case DT_FLOAT:
        return 0;
    case DT_DOUBLE:
        f->acc = "double";
        f->fs = "";
        f->adt = DT_DOUBLE;
        return 0;
    case DT_FLOAT16:
        e->prelude |= PRE_HALF;
        f->ld = "kd_h2f";
        f->st = "kd_f2h";
        return 0;
    case DT_BFLOAT16:
        e->prelude |= PRE_BF16;
        f->ld = "kd_bf2f";
        f->st = "kd_f2bf";
        return 0;
    default:
        if (allow_int && dtype_is_int(t)) {
            f->acc = f->ct;
            f->adt = t;
            f->is_float = 0;
            return 0;
        }
        return err_dtype(d, n, n->op_type, t);
    }
}

/* ---------------------------------------------------------------- windowed pools */

enum PKind { P_MAX, P_AVG, P_LP };

typedef struct PoolP {
    int S;                      /* spatial rank */
    int64_t N, C;
    int64_t in[KD_MAX_RANK], out[KD_MAX_RANK], k[KD_MAX_RANK], s[KD_MAX_RANK];
    int64_t dil[KD_MAX_RANK], pb[KD_MAX_RANK], pe[KD_MAX_RANK];
} PoolP;

static enum PKind pool_kind(const Node *n)
{
    if (strcmp(n->op_type, "MaxPool") == 0)
        return P_MAX;
    if (strcmp(n->op_type, "AveragePool") == 0)
        return P_AVG;
    return P_LP;
}

static int pool_params(const Node *n, const Value *x, PoolP *P, Diag *d)
{
    if (x->rank < 3)
        return diag_error(d, n, "input must have rank >= 3 (N, C, spatial...), got rank %d", x->rank);
    int S = x->rank - 2;
    P->S = S;
    P->N = x->dims[0];
    P->C = x->dims[1];
    const int64_t *ks, *st, *dl, *pd;
    int nk = attr_ints(n, "kernel_shape", &ks);
    if (nk != S)
        return diag_error(d, n, "kernel_shape must have %d entries (one per spatial dim), got %d", S, nk < 0 ? 0 : nk);
    int ns = attr_ints(n, "strides", &st);
    int nd = attr_ints(n, "dilations", &dl);
    int np = attr_ints(n, "pads", &pd);
    if ((ns >= 0 && ns != S) || (nd >= 0 && nd != S) || (np >= 0 && np != 2 * S))
        return diag_error(d, n, "strides/dilations need %d entries and pads %d", S, 2 * S);
    const char *ap = attr_string(n, "auto_pad", "NOTSET");
    int ceil_mode = (int)attr_int(n, "ceil_mode", 0);
    for (int i = 0; i < S; i++) {
        P->in[i] = x->dims[i + 2];
        P->k[i] = ks[i];
        P->s[i] = ns > 0 ? st[i] : 1;
        P->dil[i] = nd > 0 ? dl[i] : 1;
        P->pb[i] = np > 0 ? pd[i] : 0;
        P->pe[i] = np > 0 ? pd[i + S] : 0;
        if (P->k[i] < 1 || P->s[i] < 1 || P->dil[i] < 1 || P->pb[i] < 0 || P->pe[i] < 0)
            return diag_error(d, n, "kernel_shape, strides and dilations must be >= 1 and pads >= 0");
        int64_t eff = (P->k[i] - 1) * P->dil[i] + 1;
        if (strcmp(ap, "SAME_UPPER") == 0 || strcmp(ap, "SAME_LOWER") == 0) {
            P->out[i] = (P->in[i] + P->s[i] - 1) / P->s[i];
            int64_t total = (P->out[i] - 1) * P->s[i] + eff - P->in[i];
            if (total < 0)
                total = 0;
            int upper = strcmp(ap, "SAME_UPPER") == 0;
            P->pb[i] = upper ? total / 2 : total - total / 2;
            P->pe[i] = total - P->pb[i];
        } else if (strcmp(ap, "VALID") == 0) {
            P->pb[i] = P->pe[i] = 0;
            if (P->in[i] < eff)
                return diag_error(d, n, "kernel (extent %lld) is larger than the input (%lld)", (long long)eff, (long long)P->in[i]);
            P->out[i] = (P->in[i] - eff) / P->s[i] + 1;
        } else if (strcmp(ap, "NOTSET") == 0 || ap[0] == 0) {
            int64_t num = P->in[i] + P->pb[i] + P->pe[i] - eff;
            if (num < 0)
                return diag_error(d, n, "kernel (extent %lld) is larger than the padded input (%lld)", (long long)eff, (long long)(P->in[i] + P->pb[i] + P->pe[i]));
            if (ceil_mode) {
                P->out[i] = (num + P->s[i] - 1) / P->s[i] + 1;
                if ((P->out[i] - 1) * P->s[i] >= P->in[i] + P->pb[i])
                    P->out[i]--;
            } else {
                P->out[i] = num / P->s[i] + 1;
            }
        } else {
            return diag_error(d, n, "unknown auto_pad '%s'", ap);
        }
    }
    return 0;
}

static int infer_pool(Graph *g, Node *n, Diag *d)
{
    Value *x = need_input(g, n, 0, d);
    if (!x)
        return -1;
    enum PKind k = pool_kind(n);
    if (!dtype_is_float(x->dtype) && x->dtype != DT_FLOAT16 && x->dtype != DT_BFLOAT16 &&
        !(k == P_MAX && dtype_is_int(x->dtype)))
        return err_dtype(d, n, n->op_type, x->dtype);
    PoolP P;
    if (pool_params(n, x, &P, d))
        return -1;
    if (k == P_LP && attr_float(n, "p", 2) <= 0)
        return diag_error(d, n, "p must be positive");
    int64_t dims[KD_MAX_RANK];
    dims[0] = P.N;
    dims[1] = P.C;
    for (int i = 0; i < P.S; i++)
        dims[i + 2] = P.out[i];
    value_set_shape(node_out(g, n, 0), x->dtype, x->rank, dims);
    Value *ix = node_out(g, n, 1);
    if (ix) {
        if (k != P_MAX)
            return diag_error(d, n, "only MaxPool has a second output");
        value_set_shape(ix, DT_INT64, x->rank, dims);
    }
    return 0;
}

/* Along spatial dim i, per output position o: the kernel taps [kb[o], ke[o]) that
 * land inside the input, and cn[o] the taps inside the padded input (the count of
 * count_include_pad). -1 on out of memory. */
static int pool_windows(Arena *a, const PoolP *P, int i, int64_t **kbp, int64_t **kep, int64_t **cnp)
{
    int64_t *kb = arena_array(a, (size_t)P->out[i] + 1, sizeof *kb);
    int64_t *ke = arena_array(a, (size_t)P->out[i] + 1, sizeof *ke);
    int64_t *cn = arena_array(a, (size_t)P->out[i] + 1, sizeof *cn);
    if (!kb || !ke || !cn)
        return -1;
    for (int64_t o = 0; o < P->out[i]; o++) {
        int64_t start = o * P->s[i] - P->pb[i];
        int64_t b = start >= 0 ? 0 : (-start + P->dil[i] - 1) / P->dil[i];
        int64_t lim = P->in[i] - 1 - start;
        int64_t en = lim < 0 ? 0 : lim / P->dil[i] + 1;
        if (en > P->k[i])
            en = P->k[i];
        if (en < b)
            en = b;
        int64_t lim2 = P->in[i] + P->pe[i] - 1 - start;
        int64_t c = lim2 < 0 ? 0 : lim2 / P->dil[i] + 1;
        if (c > P->k[i])
            c = P->k[i];
        kb[o] = b;
        ke[o] = en;
        cn[o] = c;
    }
    *kbp = kb;
    *kep = ke;
    *cnp = cn;
    return 0;
}

static void w_table(Writer *w, const char *name, int i, const int64_t *v, int64_t n)
{
    w_printf(w, "static const int64_t %s%d[%" PRId64 "] = {", name, i, n);
    for (int64_t j = 0; j < n; j++)
        w_printf(w, "%s%" PRId64, j ? ", " : "", v[j]);
    w_puts(w, "};\n");
}

static int emit_pool(Emitter *e, const Node *n, Diag *d)
{
    const Value *x = node_in(e->g, n, 0);
    Writer *w = e->w;
    enum PKind kind = pool_kind(n);
    PoolP P;
    if (pool_params(n, x, &P, d))
        return -1;
    FT f;
    if (ft_init(e, n, x->dtype, kind == P_MAX, &f, d))
        return -1;
    int has_idx = node_out(e->g, n, 1) != NULL;
    int col_major = (int)attr_int(n, "storage_order", 0) == 1;
    int incl = (int)attr_int(n, "count_include_pad", 0);
    double p = attr_float(n, "p", 2);
    int S = P.S;
    int64_t insz = 1, outsz = 1;
    for (int i = 0; i < S; i++) {
        insz *= P.in[i];
        outsz *= P.out[i];
    }
    if (P.N * P.C * outsz == 0)
        return 0;
    /* row-major strides of the input's spatial dims, and column-major ones for Indices */
    int64_t xst[KD_MAX_RANK], cst[KD_MAX_RANK], ost[KD_MAX_RANK];
    shape_strides(S, P.in, xst);
    shape_strides(S, P.out, ost);
    for (int64_t i = 0, c = 1; i < S; i++) {
        cst[i] = c;
        c *= P.in[i];
    }

    /* window tables */
    int whole[KD_MAX_RANK] = {0}, cnt_whole[KD_MAX_RANK] = {0};
    int64_t lo = 0, hi = 0;
    for (int i = 0; i < S; i++) {
        int64_t *kb, *ke, *cn;
        if (pool_windows(e->g->arena, &P, i, &kb, &ke, &cn))
            return diag_error(d, n, "out of memory");
        whole[i] = cnt_whole[i] = 1;
        for (int64_t o = 0; o < P.out[i]; o++) {
            if (kb[o] != 0 || ke[o] != P.k[i])
                whole[i] = 0;
            if (cn[o] != P.k[i])
                cnt_whole[i] = 0;
        }
        if (!whole[i]) {
            w_table(w, "kb", i, kb, P.out[i]);
            w_table(w, "ke", i, ke, P.out[i]);
        }
        if (kind == P_AVG && incl && !cnt_whole[i])
            w_table(w, "cn", i, cn, P.out[i]);
        if (i == S - 1) {
            /* the contiguous run of whole windows along the last dim */
            lo = hi = 0;
            for (int64_t o = 0; o < P.out[i]; o++)
                if (kb[o] == 0 && ke[o] == P.k[i]) {
                    if (hi == 0)
                        lo = o;
                    hi = o + 1;
                }
            for (int64_t o = lo; o < hi; o++)
                if (kb[o] != 0 || ke[o] != P.k[i])
                    lo = hi = 0; /* not contiguous: no split */
        }
    }

    em_for(w, "nc", P.N * P.C);
    w_line(w, "const %s *restrict xp = x0 + nc * %" PRId64 ";", f.ct, insz);
    for (int i = 0; i < S - 1; i++) {
        char var[8];
        snprintf(var, sizeof var, "o%d", i);
        em_for(w, var, P.out[i]);
        w_line(w, "const int64_t s%d = o%d * %" PRId64 " - %" PRId64 ";", i, i, P.s[i], P.pb[i]);
    }
    /* the last dim in up to three segments: border, whole windows (constant
     * bounds, no tables), border */
    int64_t seg[4] = {0, lo, hi, P.out[S - 1]};
    int split = !whole[S - 1] && hi > lo;
    if (!split) {
        seg[1] = seg[2] = 0;
    }
    int save_whole = whole[S - 1], save_cnt = cnt_whole[S - 1];
    for (int sg = 0; sg < 3; sg++) {
        if (seg[sg + 1] <= seg[sg])
            continue;
        whole[S - 1] = sg == 1 ? 1 : save_whole;
        cnt_whole[S - 1] = sg == 1 ? 1 : save_cnt;
        w_open(w, "for (int64_t o%d = %" PRId64 "; o%d < %" PRId64 "; ++o%d)", S - 1, seg[sg], S - 1, seg[sg + 1], S - 1);
        w_line(w, "const int64_t s%d = o%d * %" PRId64 " - %" PRId64 ";", S - 1, S - 1, P.s[S - 1], P.pb[S - 1]);
        w_line(w, "const int64_t yi = nc * %" PRId64 "%s", outsz, S ? "" : ";");
        for (int i = 0; i < S; i++)
            w_printf(w, "    + o%d * %" PRId64 "%s\n", i, ost[i], i == S - 1 ? ";" : "");
        /* accumulator */
        if (kind == P_MAX) {
            w_printf(w, "%s a = %s;\n", f.acc, f.is_float ? "-INFINITY" : int_min_of(x->dtype));
            if (has_idx)
                w_line(w, "int64_t ai = -1;");
        } else {
            w_printf(w, "%s a = ", f.acc);
            em_literal(w, f.adt, 0);
            w_puts(w, ";\n");
        }
        for (int i = 0; i < S; i++) {
            if (whole[i])
                w_open(w, "for (int64_t k%d = 0; k%d < %" PRId64 "; ++k%d)", i, i, P.k[i], i);
            else
                w_open(w, "for (int64_t k%d = kb%d[o%d]; k%d < ke%d[o%d]; ++k%d)", i, i, i, i, i, i, i);
            w_line(w, "const int64_t p%d = s%d + k%d * %" PRId64 ";", i, i, i, P.dil[i]);
        }
        w_puts(w, "const int64_t xi = 0");
        for (int i = 0; i < S; i++)
            w_printf(w, " + p%d * %" PRId64, i, xst[i]);
        w_puts(w, ";\n");
        w_line(w, "const %s v = %s(xp[xi]);", f.acc, f.ld);
        switch (kind) {
        case P_MAX:
            if (has_idx) {
                w_open(w, "if (v > a)");
                w_line(w, "a = v;");
                if (col_major) {
                    w_puts(w, "ai = nc * ");
                    w_int64(w, insz);
                    for (int i = 0; i < S; i++)
                        w_printf(w, " + p%d * %" PRId64, i, cst[i]);
                    w_puts(w, ";\n");
                } else {
                    w_line(w, "ai = nc * %" PRId64 " + xi;", insz);
                }
                w_close(w);
            } else {
                w_line(w, "a = v > a ? v : a;");
            }
            break;
        case P_AVG:
            w_line(w, "a += v;");
            break;
        case P_LP:
            if (p == 1)
                w_line(w, "a += fabs%s(v);", f.fs);
            else if (p == 2)
                w_line(w, "a += v * v;");
            else {
                w_printf(w, "a += pow%s(fabs%s(v), ", f.fs, f.fs);
                em_literal(w, f.adt, p);
                w_puts(w, ");\n");
            }
            break;
        }
        em_close(w, S);
        switch (kind) {
        case P_MAX:
            w_line(w, "y0[yi] = %s(a);", f.st);
            if (has_idx)
                w_line(w, "y1[yi] = ai;");
            break;
        case P_AVG: {
            int64_t cconst = 1;
            int all_const = 1;
            for (int i = 0; i < S; i++) {
                if ((incl && cnt_whole[i]) || (!incl && whole[i]))
                    cconst *= P.k[i];
                else
                    all_const = 0;
            }
            w_printf(w, "y0[yi] = %s(a / ", f.st);
            if (all_const) {
                em_literal(w, f.adt, (double)cconst);
            } else {
                w_printf(w, "(%s)(%" PRId64, f.acc, cconst);
                for (int i = 0; i < S; i++) {
                    if (incl && !cnt_whole[i])
                        w_printf(w, " * cn%d[o%d]", i, i);
                    else if (!incl && !whole[i])
                        w_printf(w, " * (ke%d[o%d] - kb%d[o%d])", i, i, i, i);
                }
                w_puts(w, ")");
            }
            w_puts(w, ");\n");
            break;
        }
        case P_LP:
            if (p == 1)
                w_line(w, "y0[yi] = %s(a);", f.st);
            else if (p == 2)
                w_line(w, "y0[yi] = %s(sqrt%s(a));", f.st, f.fs);
            else {
                w_printf(w, "y0[yi] = %s(pow%s(a, ", f.st, f.fs);
                em_literal(w, f.adt, 1.0 / p);
                w_puts(w, "));\n");
            }
            break;
        }
        w_close(w);
    }
    whole[S - 1] = save_whole;
    cnt_whole[S - 1] = save_cnt;
    em_close(w, S);
    return 0;
}

/* ---------------------------------------------------------------- windowed pool gradients
 *
 * MaxPool:     dX = kdcc.MaxPoolGrad(X, dY): each window's arg-max is found again
 *              (the first maximum wins ties, as PyTorch) and receives dY.
 * AveragePool: dX = kdcc.AveragePoolGrad(dY; input_shape): every tap of a window
 *              inside the input receives dY / count (the forward's count: with or
 *              without the padding, ceil_mode windows clipped likewise).
 * Both take the forward node's attributes. AveragePoolGrad is emitted like a
 * depthwise ConvTranspose with a unit kernel: dY rows are scaled once by the
 * reciprocal counts (constants, or static tables per dim), then for each last-dim
 * tap a loop with constant bounds (precomputed valid range) adds them in. */

static int64_t p_floordiv(int64_t a, int64_t b) /* b > 0 */
{
    int64_t q = a / b;
    return (a % b != 0 && a < 0) ? q - 1 : q;
}

static int pool_grad_copy_attrs(GradCtx *c, Node *to)
{
    for (int i = 0; i < c->n->nattrs; i++) {
        if (strcmp(c->n->attrs[i].name, "storage_order") == 0)
            continue;
        Attr *a = node_add_attr(c->g, to, c->n->attrs[i].name, c->n->attrs[i].type);
        if (!a)
            return diag_error(c->d, c->n, "out of memory");
        const char *nm = a->name;
        *a = c->n->attrs[i];
        a->name = nm;
    }
    return 0;
}

static int grad_pool(GradCtx *c)
{
    if (c->dy[0] < 0 || !c->need[0])
        return 0;
    const Value *x = &c->g->values[c->n->inputs[0]];
    enum PKind kind = pool_kind(c->n);
    if (kind == P_LP)
        return diag_unsupported(c->d, c->n, "LpPool has no gradient rule, so a model that trains through it cannot be "
                                            "differentiated");
    if (x->dtype != DT_FLOAT && x->dtype != DT_DOUBLE)
        return diag_unsupported(c->d, c->n, "gradients of %s are implemented for float and double, not %s",
                                c->n->op_type, dtype_name(x->dtype));
    Node *m;
    if (kind == P_MAX) {
        int ins[2] = {c->n->inputs[0], c->dy[0]};
        m = g_new(c, "kdcc.MaxPoolGrad", ins, 2, 1);
    } else {
        m = g_new(c, "kdcc.AveragePoolGrad", &c->dy[0], 1, 1);
    }
    if (!m || pool_grad_copy_attrs(c, m))
        return -1;
    if (kind == P_AVG)
        g_attr_ints(c, m, "input_shape", x->dims, x->rank);
    c->dx[0] = g_done(c, m);
    return c->dx[0] < 0 ? -1 : 0;
}

/* The forward input's shape: X (MaxPoolGrad) or the input_shape attribute. */
static int pool_grad_x(const Graph *g, const Node *n, const Value *dy, Value *xv, Diag *d)
{
    if (strcmp(n->op_type, "MaxPoolGrad") == 0) {
        *xv = *node_in(g, n, 0);
        return 0;
    }
    const int64_t *v;
    int r = attr_ints(n, "input_shape", &v);
    if (r < 3 || r > KD_MAX_RANK)
        return diag_error(d, n, "input_shape must give rank 3 to %d", KD_MAX_RANK);
    memset(xv, 0, sizeof *xv);
    xv->name = "X";
    xv->rank = r;
    xv->dtype = dy->dtype;
    for (int i = 0; i < r; i++)
        xv->dims[i] = v[i];
    return 0;
}

static int infer_pool_grad(Graph *g, Node *n, Diag *d)
{
    int is_max = strcmp(n->op_type, "MaxPoolGrad") == 0;
    Value *dy = need_input(g, n, is_max ? 1 : 0, d);
    if (!dy || (is_max && !need_input(g, n, 0, d)))
        return -1;
    Value xv;
    PoolP P;
    if (pool_grad_x(g, n, dy, &xv, d) || pool_params(n, &xv, &P, d))
        return -1;
    if (xv.dtype != DT_FLOAT && xv.dtype != DT_DOUBLE)
        return err_dtype(d, n, n->op_type, xv.dtype);
    int ok = dy->dtype == xv.dtype && dy->rank == xv.rank && dy->dims[0] == P.N && dy->dims[1] == P.C;
    for (int i = 0; ok && i < P.S; i++)
        ok = dy->dims[i + 2] == P.out[i];
    if (!ok) {
        char b1[128], b2[128];
        return diag_error(d, n, "dY is %s; the pool of %s gives another shape", value_type_str(dy, b1, sizeof b1),
                          value_type_str(&xv, b2, sizeof b2));
    }
    value_set_shape(node_out(g, n, 0), xv.dtype, xv.rank, xv.dims);
    return 0;
}

#define POOL_TMP_MAX 16384 /* elements of the scaled dY row kept on the stack */

static int emit_pool_grad(Emitter *e, const Node *n, Diag *d)
{
    Writer *w = e->w;
    int is_max = strcmp(n->op_type, "MaxPoolGrad") == 0;
    const Value *dy = node_in(e->g, n, is_max ? 1 : 0);
    Value xv;
    PoolP P;
    if (pool_grad_x(e->g, n, dy, &xv, d) || pool_params(n, &xv, &P, d))
        return -1;
    const char *ct = dtype_ctype(xv.dtype);
    DType dt = xv.dtype;
    int S = P.S, L = S - 1;
    int incl = (int)attr_int(n, "count_include_pad", 0);
    int64_t insz = 1, outsz = 1;
    for (int i = 0; i < S; i++) {
        insz *= P.in[i];
        outsz *= P.out[i];
    }
    if (P.N * P.C * insz == 0) {
        w_line(w, "(void)x0;%s", is_max ? " (void)x1;" : "");
        return 0;
    }
    em_for(w, "i", P.N * P.C * insz);
    w_line(w, "y0[i] = 0;");
    w_close(w);
    if (outsz == 0) {
        w_line(w, "(void)x0;%s", is_max ? " (void)x1;" : "");
        return 0;
    }
    int64_t xst[KD_MAX_RANK], ost[KD_MAX_RANK];
    shape_strides(S, P.in, xst);
    shape_strides(S, P.out, ost);
    int64_t *kb[KD_MAX_RANK], *ke[KD_MAX_RANK], *cn[KD_MAX_RANK];
    int whole[KD_MAX_RANK], empty = 0;
    for (int i = 0; i < S; i++) {
        if (pool_windows(e->g->arena, &P, i, &kb[i], &ke[i], &cn[i]))
            return diag_error(d, n, "out of memory");
        whole[i] = 1;
        for (int64_t o = 0; o < P.out[i]; o++) {
            if (kb[i][o] != 0 || ke[i][o] != P.k[i])
                whole[i] = 0;
            if (ke[i][o] <= kb[i][o])
                empty = 1;
        }
    }

    if (is_max) {
        for (int i = 0; i < S; i++)
            if (!whole[i]) {
                w_table(w, "kb", i, kb[i], P.out[i]);
                w_table(w, "ke", i, ke[i], P.out[i]);
            }
        em_for(w, "nc", P.N * P.C);
        w_line(w, "const %s *restrict xp = x0 + nc * %" PRId64 ";", ct, insz);
        w_line(w, "const %s *restrict dyp = x1 + nc * %" PRId64 ";", ct, outsz);
        w_line(w, "%s *restrict dxp = y0 + nc * %" PRId64 ";", ct, insz);
        for (int i = 0; i < S; i++) {
            char var[8];
            snprintf(var, sizeof var, "o%d", i);
            em_for(w, var, P.out[i]);
            w_line(w, "const int64_t s%d = o%d * %" PRId64 " - %" PRId64 ";", i, i, P.s[i], P.pb[i]);
        }
        w_line(w, "%s a = -INFINITY;", ct);
        if (empty) {
            w_line(w, "int64_t ai = -1;");
        } else {
            /* the window's first tap: the arg-max when every tap is -inf */
            w_puts(w, "int64_t ai = 0");
            for (int i = 0; i < S; i++) {
                if (whole[i])
                    w_printf(w, " + s%d * %" PRId64, i, xst[i]);
                else
                    w_printf(w, " + (s%d + kb%d[o%d] * %" PRId64 ") * %" PRId64, i, i, i, P.dil[i], xst[i]);
            }
            w_puts(w, ";\n");
        }
        for (int i = 0; i < S; i++) {
            if (whole[i])
                w_open(w, "for (int64_t k%d = 0; k%d < %" PRId64 "; ++k%d)", i, i, P.k[i], i);
            else
                w_open(w, "for (int64_t k%d = kb%d[o%d]; k%d < ke%d[o%d]; ++k%d)", i, i, i, i, i, i, i);
        }
        w_puts(w, "const int64_t xi = 0");
        for (int i = 0; i < S; i++)
            w_printf(w, " + (s%d + k%d * %" PRId64 ") * %" PRId64, i, i, P.dil[i], xst[i]);
        w_puts(w, ";\n");
        w_line(w, "const %s v = xp[xi];", ct);
        /* selects, not a branch: which tap wins is data-dependent and unpredictable */
        w_line(w, "ai = v > a ? xi : ai;");
        w_line(w, "a = v > a ? v : a;");
        em_close(w, S);
        w_puts(w, "const int64_t yi = 0");
        for (int i = 0; i < S; i++)
            w_printf(w, " + o%d * %" PRId64, i, ost[i]);
        w_puts(w, ";\n");
        if (empty)
            w_line(w, "if (ai >= 0) dxp[ai] += dyp[yi];");
        else
            w_line(w, "dxp[ai] += dyp[yi];");
        em_close(w, S); /* o dims */
        w_close(w);     /* nc */
        return 0;
    }

    /* AveragePoolGrad: per dim, the window counts; constant ones fold into one factor */
    double cfac = 1;
    int cconst[KD_MAX_RANK];
    for (int i = 0; i < S; i++) {
        int64_t *cnt = arena_array(e->g->arena, (size_t)P.out[i] + 1, sizeof *cnt);
        if (!cnt)
            return diag_error(d, n, "out of memory");
        cconst[i] = 1;
        for (int64_t o = 0; o < P.out[i]; o++) {
            cnt[o] = incl ? cn[i][o] : ke[i][o] - kb[i][o];
            if (cnt[o] != cnt[0])
                cconst[i] = 0;
        }
        if (cconst[i]) {
            cfac *= cnt[0] > 0 ? 1.0 / (double)cnt[0] : 0.0;
        } else {
            w_printf(w, "static const %s rc%d[%" PRId64 "] = {", ct, i, P.out[i]);
            for (int64_t o = 0; o < P.out[i]; o++) {
                if (o)
                    w_puts(w, ", ");
                em_literal(w, dt, cnt[o] > 0 ? 1.0 / (double)cnt[o] : 0.0);
            }
            w_puts(w, "};\n");
        }
        if (i < L && !whole[i]) {
            w_table(w, "kb", i, kb[i], P.out[i]);
            w_table(w, "ke", i, ke[i], P.out[i]);
        }
    }
    int64_t KL = P.k[L], VL = P.out[L], UL = P.in[L], sL = P.s[L], dL = P.dil[L], pL = P.pb[L];
    int use_tmp = VL <= POOL_TMP_MAX;
    int unroll = KL <= 16;
    if (!unroll) {
        w_puts(w, "static const int64_t lo_t[] = {");
        for (int64_t kl = 0; kl < KL; kl++) {
            int64_t lo = -p_floordiv(-(pL - kl * dL), sL);
            w_printf(w, "%s%" PRId64, kl ? ", " : "", lo < 0 ? 0 : lo);
        }
        w_puts(w, "};\n");
        w_puts(w, "static const int64_t hi_t[] = {");
        for (int64_t kl = 0; kl < KL; kl++) {
            int64_t hi = p_floordiv(UL - 1 + pL - kl * dL, sL) + 1;
            w_printf(w, "%s%" PRId64, kl ? ", " : "", hi > VL ? VL : hi < 0 ? 0 : hi);
        }
        w_puts(w, "};\n");
    }
    em_for(w, "nc", P.N * P.C);
    w_line(w, "const %s *restrict dyp = x0 + nc * %" PRId64 ";", ct, outsz);
    w_line(w, "%s *restrict dxp = y0 + nc * %" PRId64 ";", ct, insz);
    for (int i = 0; i < L; i++) {
        char var[8];
        snprintf(var, sizeof var, "o%d", i);
        em_for(w, var, P.out[i]);
    }
    w_printf(w, "const %s *dyr = dyp + 0", ct);
    for (int i = 0; i < L; i++)
        w_printf(w, " + o%d * %" PRId64, i, ost[i]);
    w_puts(w, ";\n");
    /* the scale of this row: constant factor times the outer dims' reciprocal counts */
    w_printf(w, "const %s f = ", ct);
    em_literal(w, dt, cfac);
    for (int i = 0; i < L; i++)
        if (!cconst[i])
            w_printf(w, " * rc%d[o%d]", i, i);
    w_puts(w, ";\n");
    if (!use_tmp)
        w_line(w, "(void)f;");
    char sc[64];
    if (cconst[L])
        snprintf(sc, sizeof sc, "dyr[o] * f");
    else
        snprintf(sc, sizeof sc, "dyr[o] * (f * rc%d[o])", L);
    if (use_tmp) {
        w_line(w, "%s t[%" PRId64 "];", ct, VL);
        em_for(w, "o", VL);
        w_line(w, "t[o] = %s;", sc);
        w_close(w);
        snprintf(sc, sizeof sc, "t[o]");
    }
    for (int i = 0; i < L; i++) {
        if (whole[i])
            w_open(w, "for (int64_t k%d = 0; k%d < %" PRId64 "; ++k%d)", i, i, P.k[i], i);
        else
            w_open(w, "for (int64_t k%d = kb%d[o%d]; k%d < ke%d[o%d]; ++k%d)", i, i, i, i, i, i, i);
    }
    w_printf(w, "%s *dxr = dxp + 0", ct);
    for (int i = 0; i < L; i++)
        w_printf(w, " + (o%d * %" PRId64 " - %" PRId64 " + k%d * %" PRId64 ") * %" PRId64, i, P.s[i], P.pb[i], i,
                 P.dil[i], xst[i]);
    w_puts(w, ";\n");
    if (unroll) {
        int taps = 0;
        for (int64_t kl = 0; kl < KL; kl++) {
            int64_t off = kl * dL - pL;
            int64_t lo = -p_floordiv(off, sL), hi = p_floordiv(UL - 1 - off, sL) + 1;
            if (lo < 0)
                lo = 0;
            if (hi > VL)
                hi = VL;
            if (lo >= hi)
                continue;
            taps++;
            char idx[96];
            if (sL == 1)
                snprintf(idx, sizeof idx, "o%s%" PRId64, off < 0 ? " - " : " + ", off < 0 ? -off : off);
            else
                snprintf(idx, sizeof idx, "o * %" PRId64 "%s%" PRId64, sL, off < 0 ? " - " : " + ", off < 0 ? -off : off);
            w_open(w, "for (int64_t o = %" PRId64 "; o < %" PRId64 "; ++o)", lo, hi);
            w_line(w, "dxr[%s] += %s;", idx, sc);
            w_close(w);
        }
        if (!taps)
            w_line(w, "(void)dxr;");
    } else {
        em_for(w, "kl", KL);
        w_line(w, "const int64_t off = kl * %" PRId64 " - %" PRId64 ";", dL, pL);
        w_open(w, "for (int64_t o = lo_t[kl]; o < hi_t[kl]; ++o)");
        w_line(w, "dxr[o * %" PRId64 " + off] += %s;", sL, sc);
        w_close(w);
        w_close(w);
    }
    em_close(w, L); /* k dims */
    em_close(w, L); /* o dims */
    w_close(w);     /* nc */
    return 0;
}

static const OpDef op_maxpool_grad = {
    .name = "MaxPoolGrad", .domain = "kdcc", .since = 1,
    .min_inputs = 2, .max_inputs = 2, .min_outputs = 1, .max_outputs = 1,
    .infer = infer_pool_grad, .emit = emit_pool_grad,
    .summary = "d MaxPool / d X: dY routed to each window's first maximum",
};

static const OpDef op_averagepool_grad = {
    .name = "AveragePoolGrad", .domain = "kdcc", .since = 1,
    .min_inputs = 1, .max_inputs = 1, .min_outputs = 1, .max_outputs = 1,
    .infer = infer_pool_grad, .emit = emit_pool_grad,
    .summary = "d AveragePool / d X: dY spread over each window divided by its count",
};

static const OpDef op_maxpool = {
    .name = "MaxPool", .domain = "", .since = 1,
    .min_inputs = 1, .max_inputs = 1, .min_outputs = 1, .max_outputs = 2,
    .infer = infer_pool, .emit = emit_pool, .grad = grad_pool,
    .summary = "max over sliding windows (pads, strides, dilations, ceil_mode, Indices)",
};

static const OpDef op_averagepool = {
    .name = "AveragePool", .domain = "", .since = 1,
    .min_inputs = 1, .max_inputs = 1, .min_outputs = 1, .max_outputs = 1,
    .infer = infer_pool, .emit = emit_pool, .grad = grad_pool,
    .summary = "mean over sliding windows (count_include_pad, ceil_mode, dilations)",
};

static const OpDef op_lppool = {
    .name = "LpPool", .domain = "", .since = 1,
    .min_inputs = 1, .max_inputs = 1, .min_outputs = 1, .max_outputs = 1,
    .infer = infer_pool, .emit = emit_pool, .grad = grad_pool,
    .summary = "p-norm over sliding windows",
};

/* ---------------------------------------------------------------- global pools */

static int infer_global(Graph *g, Node *n, Diag *d)
{
    Value *x = need_input(g, n, 0, d);
    if (!x)
        return -1;
    if (x->rank < 2)
        return diag_error(d, n, "input must have rank >= 2 (N, C, spatial...), got rank %d", x->rank);
    if (!dtype_is_float(x->dtype) && x->dtype != DT_FLOAT16 && x->dtype != DT_BFLOAT16)
        return err_dtype(d, n, n->op_type, x->dtype);
    int64_t dims[KD_MAX_RANK];
    for (int i = 0; i < x->rank; i++)
        dims[i] = i < 2 ? x->dims[i] : 1;
    value_set_shape(node_out(g, n, 0), x->dtype, x->rank, dims);
    return 0;
}

#define GP_LANES 8

static int emit_global(Emitter *e, const Node *n, Diag *d)
{
    const Value *x = node_in(e->g, n, 0);
    Writer *w = e->w;
    int is_max = strcmp(n->op_type, "GlobalMaxPool") == 0;
    FT f;
    if (ft_init(e, n, x->dtype, 0, &f, d))
        return -1;
    int64_t nc = x->dims[0] * x->dims[1], sp = 1;
    for (int i = 2; i < x->rank; i++)
        sp *= x->dims[i];
    if (nc == 0)
        return 0;
    if (x->channels_last) {
        /* stored channels-last (passes/layout.c, float only): per image, a running
         * result per channel in y0, the pixels in order, each a run of channels */
        int64_t C = x->dims[1];
        em_for(w, "b", x->dims[0]);
        em_for(w, "c", C);
        w_line(w, "y0[b * %" PRId64 " + c] = %s;", C, is_max ? "-INFINITY" : "0.0f");
        w_close(w);
        em_for(w, "i", sp);
        em_for(w, "c", C);
        w_line(w, "const float v = x0[(b * %" PRId64 " + i) * %" PRId64 " + c];", sp, C);
        if (is_max)
            w_line(w, "y0[b * %" PRId64 " + c] = v > y0[b * %" PRId64 " + c] ? v : y0[b * %" PRId64 " + c];", C, C, C);
        else
            w_line(w, "y0[b * %" PRId64 " + c] += v;", C);
        em_close(w, 2);
        if (!is_max) {
            em_for(w, "c", C);
            w_printf(w, "y0[b * %" PRId64 " + c] /= ", C);
            em_literal(w, DT_FLOAT, (double)sp);
            w_puts(w, ";\n");
            w_close(w);
        }
        w_close(w);
        return 0;
    }
    em_for(w, "c", nc);
    w_printf(w, "%s a = ", f.acc);
    if (is_max)
        w_puts(w, "-INFINITY");
    else
        em_literal(w, f.adt, 0);
    w_puts(w, ";\n");
    /* GP_LANES running results side by side, then combined pairwise: a single one is
     * a chain of dependent adds that no compiler may reorder (DS-CNN's 64 x 125: 3.7
     * us, 3% of the model); this order is as fixed as the serial one */
    int64_t body = sp >= 2 * GP_LANES ? sp / GP_LANES * GP_LANES : 0;
    if (body) {
        w_open(w, "%s", "");
        w_line(w, "%s r[%d];", f.acc, GP_LANES);
        em_for(w, "l", GP_LANES);
        w_line(w, "r[l] = a;");
        w_close(w);
        w_open(w, "for (int64_t i = 0; i < %" PRId64 "; i += %d)", body, GP_LANES);
        em_for(w, "l", GP_LANES);
        w_line(w, "const %s v = %s(x0[c * %" PRId64 " + i + l]);", f.acc, f.ld, sp);
        w_line(w, is_max ? "r[l] = v > r[l] ? v : r[l];" : "r[l] += v;");
        em_close(w, 2);
        for (int span = 1; span < GP_LANES; span *= 2)
            for (int l = 0; l + span < GP_LANES; l += 2 * span)
                if (is_max)
                    w_line(w, "r[%d] = r[%d] > r[%d] ? r[%d] : r[%d];", l, l + span, l, l + span, l);
                else
                    w_line(w, "r[%d] += r[%d];", l, l + span);
        w_line(w, "a = r[0];");
        w_close(w);
    }
    if (sp > body) {
        w_open(w, "for (int64_t i = %" PRId64 "; i < %" PRId64 "; ++i)", body, sp);
        w_line(w, "const %s v = %s(x0[c * %" PRId64 " + i]);", f.acc, f.ld, sp);
        if (is_max)
            w_line(w, "a = v > a ? v : a;");
        else
            w_line(w, "a += v;");
        w_close(w);
    }
    if (is_max) {
        w_line(w, "y0[c] = %s(a);", f.st);
    } else {
        w_printf(w, "y0[c] = %s(a / ", f.st);
        em_literal(w, f.adt, (double)sp);
        w_puts(w, ");\n");
    }
    w_close(w);
    return 0;
}

/* GlobalAveragePool: dX = Expand(dY / spatial size). GlobalMaxPool: dX =
 * kdcc.GlobalMaxPoolGrad(X, dY), dY at each channel's first maximum. */
static int grad_global(GradCtx *c)
{
    if (c->dy[0] < 0 || !c->need[0])
        return 0;
    const Value *x = &c->g->values[c->n->inputs[0]];
    if (x->dtype != DT_FLOAT && x->dtype != DT_DOUBLE)
        return diag_unsupported(c->d, c->n, "gradients of %s are implemented for float and double, not %s",
                                c->n->op_type, dtype_name(x->dtype));
    if (strcmp(c->n->op_type, "GlobalMaxPool") == 0) {
        c->dx[0] = g_op2(c, "kdcc.GlobalMaxPoolGrad", c->n->inputs[0], c->dy[0]);
        return c->dx[0] < 0 ? -1 : 0;
    }
    int64_t sp = 1;
    for (int i = 2; i < x->rank; i++)
        sp *= x->dims[i];
    int k = g_const_scalar(c, x->dtype, sp ? 1.0 / (double)sp : 0.0);
    int m = k < 0 ? -1 : g_op2(c, "Mul", c->dy[0], k);
    int shape = m < 0 ? -1 : g_const_ints(c, x->dims, x->rank);
    c->dx[0] = shape < 0 ? -1 : g_op2(c, "Expand", m, shape);
    return c->dx[0] < 0 ? -1 : 0;
}

static int infer_gmax_grad(Graph *g, Node *n, Diag *d)
{
    Value *x = need_input(g, n, 0, d), *dy = x ? need_input(g, n, 1, d) : NULL;
    if (!dy)
        return -1;
    if (x->dtype != DT_FLOAT && x->dtype != DT_DOUBLE)
        return err_dtype(d, n, "GlobalMaxPoolGrad", x->dtype);
    if (x->rank < 2 || dy->rank != x->rank || dy->dtype != x->dtype || value_numel(dy) != x->dims[0] * x->dims[1])
        return diag_error(d, n, "dY must have one element per (batch, channel) of X");
    value_set_shape(node_out(g, n, 0), x->dtype, x->rank, x->dims);
    return 0;
}

static int emit_gmax_grad(Emitter *e, const Node *n, Diag *d)
{
    (void)d;
    const Value *x = node_in(e->g, n, 0);
    Writer *w = e->w;
    const char *ct = dtype_ctype(x->dtype);
    int64_t nc = x->dims[0] * x->dims[1], sp = 1;
    for (int i = 2; i < x->rank; i++)
        sp *= x->dims[i];
    if (nc * sp == 0) {
        w_line(w, "(void)x0; (void)x1; (void)y0;");
        return 0;
    }
    em_for(w, "c", nc);
    w_line(w, "const %s *restrict xr = x0 + c * %" PRId64 ";", ct, sp);
    w_line(w, "%s *restrict yr = y0 + c * %" PRId64 ";", ct, sp);
    w_line(w, "%s a = xr[0];", ct);
    w_line(w, "int64_t ai = 0;");
    em_for(w, "i", sp);
    w_line(w, "yr[i] = 0;");
    w_close(w);
    w_open(w, "for (int64_t i = 1; i < %" PRId64 "; ++i)", sp);
    w_open(w, "if (xr[i] > a)");
    w_line(w, "a = xr[i];");
    w_line(w, "ai = i;");
    w_close(w);
    w_close(w);
    w_line(w, "yr[ai] = x1[c];");
    w_close(w);
    return 0;
}

static const OpDef op_globalmax_grad = {
    .name = "GlobalMaxPoolGrad", .domain = "kdcc", .since = 1,
    .min_inputs = 2, .max_inputs = 2, .min_outputs = 1, .max_outputs = 1,
    .infer = infer_gmax_grad, .emit = emit_gmax_grad,
    .summary = "d GlobalMaxPool / d X: dY at each channel's first maximum",
};

static const OpDef op_globalavg = {
    .name = "GlobalAveragePool", .domain = "", .since = 1,
    .min_inputs = 1, .max_inputs = 1, .min_outputs = 1, .max_outputs = 1,
    .infer = infer_global, .emit = emit_global, .grad = grad_global,
    .summary = "mean over all spatial positions",
};

static const OpDef op_globalmax = {
    .name = "GlobalMaxPool", .domain = "", .since = 1,
    .min_inputs = 1, .max_inputs = 1, .min_outputs = 1, .max_outputs = 1,
    .infer = infer_global, .emit = emit_global, .grad = grad_global,
    .summary = "max over all spatial positions",
};

/* ---------------------------------------------------------------- LpNormalization */

static int infer_lpnorm(Graph *g, Node *n, Diag *d)
{
    Value *x = need_input(g, n, 0, d);
    if (!x)
        return -1;
    if (!dtype_is_float(x->dtype) && x->dtype != DT_FLOAT16 && x->dtype != DT_BFLOAT16)
        return err_dtype(d, n, n->op_type, x->dtype);
    if (norm_axis(d, n, attr_int(n, "axis", -1), x->rank) < 0)
        return -1;
    int64_t p = attr_int(n, "p", 2);
    if (p != 1 && p != 2)
        return diag_error(d, n, "p must be 1 or 2, got %lld", (long long)p);
    value_set_shape(node_out(g, n, 0), x->dtype, x->rank, x->dims);
    return 0;
}

static int emit_lpnorm(Emitter *e, const Node *n, Diag *d)
{
    const Value *x = node_in(e->g, n, 0);
    Writer *w = e->w;
    FT f;
    if (ft_init(e, n, x->dtype, 0, &f, d))
        return -1;
    int ax = norm_axis(d, n, attr_int(n, "axis", -1), x->rank);
    if (ax < 0)
        return -1;
    int p = (int)attr_int(n, "p", 2);
    int64_t outer = 1, len = x->rank ? x->dims[ax] : 1, inner = 1;
    for (int i = 0; i < ax; i++)
        outer *= x->dims[i];
    for (int i = ax + 1; i < x->rank; i++)
        inner *= x->dims[i];
    if (outer * len * inner == 0)
        return 0;
    em_for(w, "o", outer);
    em_for(w, "i", inner);
    w_line(w, "const int64_t b = o * %" PRId64 " + i;", len * inner);
    w_printf(w, "%s s = ", f.acc);
    em_literal(w, f.adt, 0);
    w_puts(w, ";\n");
    em_for(w, "k", len);
    w_line(w, "const %s v = %s(x0[b + k * %" PRId64 "]);", f.acc, f.ld, inner);
    if (p == 1)
        w_line(w, "s += fabs%s(v);", f.fs);
    else
        w_line(w, "s += v * v;");
    w_close(w);
    if (p == 2)
        w_line(w, "s = sqrt%s(s);", f.fs);
    /* a zero norm means an all-zero slice: leave it zero instead of 0/0 */
    w_printf(w, "if (s == 0) s = ");
    em_literal(w, f.adt, 1);
    w_puts(w, ";\n");
    em_for(w, "k", len);
    w_line(w, "y0[b + k * %" PRId64 "] = %s(%s(x0[b + k * %" PRId64 "]) / s);", inner, f.st, f.ld, inner);
    w_close(w);
    em_close(w, 2);
    return 0;
}

static const OpDef op_lpnorm = {
    .name = "LpNormalization", .domain = "", .since = 1,
    .min_inputs = 1, .max_inputs = 1, .min_outputs = 1, .max_outputs = 1,
    .infer = infer_lpnorm, .emit = emit_lpnorm,
    .summary = "x divided by its L1 or L2 norm along an axis",
};

/* ---------------------------------------------------------------- MaxUnpool */

/* The default output shape (from kernel, strides, pads) into dims[]. */
static int unpool_default(const Node *n, const Value *x, int64_t *dims, Diag *d)
{
    int S = x->rank - 2;
    const int64_t *ks, *st, *pd;
    if (S < 1)
        return diag_error(d, n, "input must have rank >= 3 (N, C, spatial...), got rank %d", x->rank);
    int nk = attr_ints(n, "kernel_shape", &ks);
    int ns = attr_ints(n, "strides", &st);
    int np = attr_ints(n, "pads", &pd);
    if (nk != S || (ns >= 0 && ns != S) || (np >= 0 && np != 2 * S))
        return diag_error(d, n, "kernel_shape and strides need %d entries and pads %d", S, 2 * S);
    dims[0] = x->dims[0];
    dims[1] = x->dims[1];
    for (int i = 0; i < S; i++) {
        int64_t s = ns > 0 ? st[i] : 1, pb = np > 0 ? pd[i] : 0, pe = np > 0 ? pd[i + S] : 0;
        dims[i + 2] = (x->dims[i + 2] - 1) * s - pb - pe + ks[i];
        if (dims[i + 2] < 0)
            return diag_error(d, n, "kernel, strides and pads give a negative output size");
    }
    return 0;
}

static int infer_unpool(Graph *g, Node *n, Diag *d)
{
    Value *x = need_input(g, n, 0, d), *ix = x ? need_input(g, n, 1, d) : NULL;
    if (!ix)
        return -1;
    if (!dtype_is_float(x->dtype) && x->dtype != DT_FLOAT16 && x->dtype != DT_BFLOAT16)
        return err_dtype(d, n, n->op_type, x->dtype);
    if (ix->dtype != DT_INT64 || value_numel(ix) != value_numel(x))
        return diag_error(d, n, "indices must be int64 with the shape of X");
    int64_t dims[KD_MAX_RANK];
    if (unpool_default(n, x, dims, d))
        return -1;
    if (node_in(g, n, 2)) {
        Value *os = need_const_input(g, n, 2, "output_shape", d);
        if (!os)
            return -1;
        int64_t od[KD_MAX_RANK];
        if (const_ints(os, od, KD_MAX_RANK) != x->rank)
            return diag_error(d, n, "output_shape must have %d entries", x->rank);
        for (int i = 0; i < x->rank; i++) {
            if (od[i] < dims[i] || (i < 2 && od[i] != dims[i]))
                return diag_error(d, n, "output_shape dim %d (%lld) is smaller than the unpooled size %lld", i, (long long)od[i], (long long)dims[i]);
            dims[i] = od[i];
        }
    }
    value_set_shape(node_out(g, n, 0), x->dtype, x->rank, dims);
    return 0;
}

static int emit_unpool(Emitter *e, const Node *n, Diag *d)
{
    const Value *x = node_in(e->g, n, 0), *y = node_out(e->g, n, 0);
    Writer *w = e->w;
    int64_t def[KD_MAX_RANK];
    if (unpool_default(n, x, def, d))
        return -1;
    int64_t ny = value_numel(y), nd = dims_numel(x->rank, def), nx = value_numel(x);
    if (ny == 0)
        return 0;
    w_line(w, "memset(y0, 0, sizeof(%s) * %" PRId64 ");", dtype_ctype(x->dtype), ny);
    if (nx == 0)
        return 0;
    int same = 1;
    for (int i = 0; i < x->rank; i++)
        if (def[i] != y->dims[i])
            same = 0;
    int64_t yst[KD_MAX_RANK];
    shape_strides(y->rank, y->dims, yst);
    em_for(w, "j", nx);
    w_line(w, "const int64_t t = x1[j];");
    w_line(w, "if (t < 0 || t >= %" PRId64 ") continue; /* not a position of the unpooled tensor */", nd);
    if (same) {
        w_line(w, "y0[t] = x0[j];");
    } else {
        /* indices address the default-size tensor; place at the same coordinates */
        w_puts(w, "const int64_t yi = 0");
        int64_t div = 1;
        for (int i = x->rank - 1; i >= 0; i--) {
            w_printf(w, " + (t / %" PRId64 " %% %" PRId64 ") * %" PRId64, div, def[i], yst[i]);
            div *= def[i];
        }
        w_puts(w, ";\n");
        w_line(w, "y0[yi] = x0[j];");
    }
    w_close(w);
    return 0;
}

static const OpDef op_maxunpool = {
    .name = "MaxUnpool", .domain = "", .since = 1,
    .min_inputs = 2, .max_inputs = 3, .min_outputs = 1, .max_outputs = 1,
    .infer = infer_unpool, .emit = emit_unpool,
    .summary = "scatter pooled values back to the positions MaxPool's Indices give",
};

const OpDef *const ops_pool[] = {
    &op_maxpool, &op_averagepool, &op_lppool, &op_globalavg, &op_globalmax, &op_lpnorm, &op_maxunpool,
    &op_maxpool_grad, &op_averagepool_grad, &op_globalmax_grad, NULL,
};

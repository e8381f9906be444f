/* Less common data-movement operators: Trilu, CumSum, OneHot, ReverseSequence, TopK. */
#include "compiler/ops/shape_internal.h"

#include <inttypes.h>
#include <string.h>

/* Optional constant scalar integer input i; *out unchanged when absent. -1 on error. */
static int const_scalar_int(Graph *g, const Node *n, int i, const char *what, int64_t *out, Diag *d)
{
    if (!node_in(g, n, i))
        return 0;
    Value *v = need_const_input(g, n, i, what, d);
    if (!v)
        return -1;
    if (value_numel(v) != 1)
        return diag_error(d, n, "%s must have exactly one element", what);
    if (dtype_is_int(v->dtype))
        *out = const_get_i64(v, 0);
    else if (dtype_is_float(v->dtype) || v->dtype == DT_FLOAT16 || v->dtype == DT_BFLOAT16)
        *out = (int64_t)const_get_f64(v, 0);
    else
        return diag_error(d, n, "%s has element type %s; expected a number", what, dtype_name(v->dtype));
    return 0;
}

static int numeric_ok(Diag *d, const Node *n, DType t)
{
    if (!dtype_is_float(t) && !dtype_is_int(t))
        return err_dtype(d, n, n->op_type, t);
    return 0;
}

/* ---------------------------------------------------------------- Trilu */

static int infer_trilu(Graph *g, Node *n, Diag *d)
{
    Value *x = need_input(g, n, 0, d);
    int64_t k = 0;
    if (!x || shape_dtype_ok(d, n, x->dtype) || const_scalar_int(g, n, 1, "k", &k, d))
        return -1;
    if (x->rank < 2)
        return diag_error(d, n, "input must have rank 2 or more, not %d", x->rank);
    value_set_shape(node_out(g, n, 0), x->dtype, x->rank, x->dims);
    return 0;
}

/* Kept columns of row i: [lo, hi). */
static void trilu_cols(int upper, int64_t k, int64_t i, int64_t W, int64_t *lo, int64_t *hi)
{
    int64_t a, b;
    if (upper) { /* j - i >= k */
        a = i + k;
        b = W;
    } else { /* j - i <= k */
        a = 0;
        b = i + k + 1;
    }
    a = a < 0 ? 0 : a > W ? W : a;
    b = b < 0 ? 0 : b > W ? W : b;
    *lo = a;
    *hi = b > a ? b : a;
}

static int plan_trilu(Graph *g, const Node *n, Plan *p, Diag *d)
{
    const Value *x = node_in(g, n, 0);
    int64_t k = 0;
    if (const_scalar_int(g, n, 1, "k", &k, d))
        return -1;
    int upper = (int)attr_int(n, "upper", 1);
    int64_t H = x->dims[x->rank - 2], W = x->dims[x->rank - 1], B = dims_numel(x->rank - 2, x->dims);
    if (plan_fill(p, 0, -1, x->dtype, 0))
        return -1;
    for (int64_t i = 0; i < H; i++) {
        int64_t lo, hi;
        trilu_cols(upper, k, i, W, &lo, &hi);
        if (hi <= lo)
            continue;
        Copy *c = plan_copy(p, 0, 0, 2);
        if (!c)
            return -1;
        c->dims[0] = B;
        c->dims[1] = hi - lo;
        c->ss[0] = c->ds[0] = H * W;
        c->ss[1] = c->ds[1] = 1;
        c->so = c->doff = i * W + lo;
    }
    return 0;
}

static int fold_trilu(Graph *g, Node *n, Diag *d)
{
    if (!all_inputs_const(g, n))
        return 0;
    Plan p;
    plan_init(&p, g->arena);
    if (plan_trilu(g, n, &p, d))
        return -1;
    return plan_fold(g, n, &p, d);
}

static int emit_trilu(Emitter *e, const Node *n, Diag *d)
{
    const Value *x = node_in(e->g, n, 0);
    int64_t k = 0;
    if (const_scalar_int((Graph *)e->g, n, 1, "k", &k, d))
        return -1;
    int upper = (int)attr_int(n, "upper", 1);
    int64_t H = x->dims[x->rank - 2], W = x->dims[x->rank - 1], B = dims_numel(x->rank - 2, x->dims);
    if (!B || !H || !W)
        return emit_done(e, n);
    Writer *w = e->w;
    em_for(w, "b", B);
    em_for(w, "i", H);
    em_for(w, "j", W);
    w_line(w, "const int64_t o = (b * %" PRId64 " + i) * %" PRId64 " + j;", H, W);
    w_printf(w, "y0[o] = j - i %s ", upper ? ">=" : "<=");
    w_int64(w, k);
    w_puts(w, " ? x0[o] : 0;\n");
    em_close(w, 3);
    return emit_done(e, n);
}

const OpDef op_trilu = {
    .name = "Trilu", .domain = "", .since = 14,
    .min_inputs = 1, .max_inputs = 2, .min_outputs = 1, .max_outputs = 1,
    .infer = infer_trilu, .fold = fold_trilu, .emit = emit_trilu,
    .summary = "upper or lower triangle of the last two dims",
};

/* ---------------------------------------------------------------- CumSum */

static int infer_cumsum(Graph *g, Node *n, Diag *d)
{
    Value *x = need_input(g, n, 0, d);
    int64_t axis = 0;
    if (!x || numeric_ok(d, n, x->dtype) || const_scalar_int(g, n, 1, "axis", &axis, d))
        return -1;
    if (x->rank == 0)
        return diag_error(d, n, "input must have rank 1 or more");
    if (norm_axis(d, n, axis, x->rank) < 0)
        return -1;
    value_set_shape(node_out(g, n, 0), x->dtype, x->rank, x->dims);
    return 0;
}

static int emit_cumsum(Emitter *e, const Node *n, Diag *d)
{
    const Value *x = node_in(e->g, n, 0);
    int64_t a = 0;
    if (const_scalar_int((Graph *)e->g, n, 1, "axis", &a, d))
        return -1;
    int axis = norm_axis(d, n, a, x->rank);
    if (axis < 0)
        return -1;
    int64_t outer = dims_numel(axis, x->dims), D = x->dims[axis], inner = dims_numel(x->rank - axis - 1, x->dims + axis + 1);
    if (!outer || !D || !inner)
        return emit_done(e, n);
    int excl = (int)attr_int(n, "exclusive", 0), rev = (int)attr_int(n, "reverse", 0);
    int prod = strcmp(n->op_type, "CumProd") == 0;
    Writer *w = e->w;
    em_for(w, "o", outer);
    em_for(w, "in", inner);
    w_line(w, "%s acc = %d;", dtype_ctype(x->dtype), prod);
    em_for(w, "t", D);
    if (rev)
        w_line(w, "const int64_t p = (o * %" PRId64 " + %" PRId64 " - t) * %" PRId64 " + in;", D, D - 1, inner);
    else
        w_line(w, "const int64_t p = (o * %" PRId64 " + t) * %" PRId64 " + in;", D, inner);
    if (excl)
        w_line(w, "y0[p] = acc;");
    w_line(w, "acc %s= x0[p];", prod ? "*" : "+");
    if (!excl)
        w_line(w, "y0[p] = acc;");
    em_close(w, 3);
    return emit_done(e, n);
}

const OpDef op_cumsum = {
    .name = "CumSum", .domain = "", .since = 11,
    .min_inputs = 2, .max_inputs = 2, .min_outputs = 1, .max_outputs = 1,
    .infer = infer_cumsum, .emit = emit_cumsum,
    .summary = "cumulative sum along axis (exclusive, reverse)",
};

const OpDef op_cumprod = {
    .name = "CumProd", .domain = "", .since = 26,
    .min_inputs = 2, .max_inputs = 2, .min_outputs = 1, .max_outputs = 1,
    .infer = infer_cumsum, .emit = emit_cumsum,
    .summary = "cumulative product along axis (exclusive, reverse)",
};

/* ---------------------------------------------------------------- Compress */

/* Selected indices along the axis (or of the flattened input) into *sel; count or -1. */
static int64_t compress_select(Graph *g, const Node *n, const Value *x, int64_t **sel, int *axis, Diag *d)
{
    Value *c = need_const_input(g, n, 1, "condition", d);
    if (!c)
        return -1;
    if (c->rank != 1)
        return diag_error(d, n, "condition must be 1-D");
    const Attr *a = node_attr(n, "axis");
    *axis = -1;
    int64_t dim = value_numel(x);
    if (a) {
        *axis = norm_axis(d, n, a->i, x->rank);
        if (*axis < 0)
            return -1;
        dim = x->dims[*axis];
    }
    int64_t len = value_numel(c);
    if (len > dim)
        return diag_error(d, n, "condition has %lld entries; the axis has only %lld", (long long)len, (long long)dim);
    *sel = arena_array(g->arena, (size_t)(len ? len : 1), sizeof **sel);
    if (!*sel)
        return diag_error(d, n, "out of memory");
    int64_t k = 0;
    for (int64_t i = 0; i < len; i++)
        if (const_get_i64(c, i))
            (*sel)[k++] = i;
    return k;
}

static int infer_compress(Graph *g, Node *n, Diag *d)
{
    Value *x = need_input(g, n, 0, d);
    if (!x || shape_dtype_ok(d, n, x->dtype))
        return -1;
    int64_t *sel;
    int axis;
    int64_t k = compress_select(g, n, x, &sel, &axis, d);
    if (k < 0)
        return -1;
    if (axis < 0) {
        value_set_shape(node_out(g, n, 0), x->dtype, 1, &k);
        return 0;
    }
    int64_t dims[KD_MAX_RANK];
    memcpy(dims, x->dims, sizeof dims);
    dims[axis] = k;
    value_set_shape(node_out(g, n, 0), x->dtype, x->rank, dims);
    return 0;
}

static int plan_compress(Graph *g, const Node *n, Plan *p, Diag *d)
{
    const Value *x = node_in(g, n, 0);
    int64_t *sel;
    int axis;
    int64_t k = compress_select(g, n, x, &sel, &axis, d);
    if (k < 0)
        return -1;
    int64_t outer = 1, dim = value_numel(x), inner = 1;
    if (axis >= 0) {
        outer = dims_numel(axis, x->dims);
        dim = x->dims[axis];
        inner = dims_numel(x->rank - axis - 1, x->dims + axis + 1);
    }
    for (int64_t j = 0; j < k; j++) {
        Copy *c = plan_copy(p, 0, 0, 2);
        if (!c)
            return -1;
        c->dims[0] = outer;
        c->dims[1] = inner;
        c->ss[0] = dim * inner;
        c->ss[1] = c->ds[1] = 1;
        c->ds[0] = k * inner;
        c->so = sel[j] * inner;
        c->doff = j * inner;
    }
    return 0;
}

static int fold_compress(Graph *g, Node *n, Diag *d)
{
    if (!all_inputs_const(g, n))
        return 0;
    Plan p;
    plan_init(&p, g->arena);
    if (plan_compress(g, n, &p, d))
        return -1;
    return plan_fold(g, n, &p, d);
}

static int emit_compress(Emitter *e, const Node *n, Diag *d)
{
    Plan p;
    plan_init(&p, e->g->arena);
    if (plan_compress((Graph *)e->g, n, &p, d))
        return -1;
    return plan_emit(e, n, &p, d);
}

const OpDef op_compress = {
    .name = "Compress", .domain = "", .since = 9,
    .min_inputs = 2, .max_inputs = 2, .min_outputs = 1, .max_outputs = 1,
    .infer = infer_compress, .fold = fold_compress, .emit = emit_compress,
    .summary = "select slices along axis where a constant condition is true",
};

/* ---------------------------------------------------------------- OneHot */

static int infer_onehot(Graph *g, Node *n, Diag *d)
{
    Value *idx = need_input(g, n, 0, d), *vals = idx ? need_input(g, n, 2, d) : NULL;
    int64_t depth = 0;
    if (!vals || numeric_ok(d, n, idx->dtype) || shape_dtype_ok(d, n, vals->dtype))
        return -1;
    if (!node_in(g, n, 1))
        return diag_error(d, n, "depth is missing");
    if (const_scalar_int(g, n, 1, "depth", &depth, d))
        return -1;
    if (depth <= 0)
        return diag_error(d, n, "depth must be positive, not %lld", (long long)depth);
    if (value_numel(vals) != 2)
        return diag_error(d, n, "values must have two elements (off, on)");
    int r = idx->rank + 1;
    if (r > KD_MAX_RANK)
        return diag_unsupported(d, n, "output rank %d exceeds the maximum of %d", r, KD_MAX_RANK);
    int axis = norm_axis(d, n, attr_int(n, "axis", -1), r);
    if (axis < 0)
        return -1;
    int64_t dims[KD_MAX_RANK];
    for (int i = 0, j = 0; i < r; i++)
        dims[i] = i == axis ? depth : idx->dims[j++];
    value_set_shape(node_out(g, n, 0), vals->dtype, r, dims);
    return 0;
}

static int emit_onehot(Emitter *e, const Node *n, Diag *d)
{
    const Value *idx = node_in(e->g, n, 0), *y = node_out(e->g, n, 0);
    int axis = norm_axis(d, n, attr_int(n, "axis", -1), y->rank);
    if (axis < 0)
        return -1;
    int64_t depth = y->dims[axis];
    int64_t outer = dims_numel(axis, y->dims), inner = dims_numel(y->rank - axis - 1, y->dims + axis + 1);
    Writer *w = e->w;
    if (!value_numel(y))
        return emit_done(e, n);
    em_for(w, "i", value_numel(y));
    w_line(w, "y0[i] = x2[0];");
    w_close(w);
    if (!value_numel(idx))
        return emit_done(e, n);
    em_for(w, "o", outer);
    em_for(w, "in", inner);
    w_line(w, "int64_t k = (int64_t)x0[o * %" PRId64 " + in];", inner);
    w_line(w, "if (k < 0)");
    w_line(w, "    k += %" PRId64 ";", depth);
    w_line(w, "if (k >= 0 && k < %" PRId64 ")", depth);
    w_line(w, "    y0[(o * %" PRId64 " + k) * %" PRId64 " + in] = x2[1];", depth, inner);
    em_close(w, 2);
    return emit_done(e, n);
}

const OpDef op_onehot = {
    .name = "OneHot", .domain = "", .since = 9,
    .min_inputs = 3, .max_inputs = 3, .min_outputs = 1, .max_outputs = 1,
    .infer = infer_onehot, .emit = emit_onehot,
    .summary = "one-hot encoding along axis with (off, on) values",
};

/* ---------------------------------------------------------------- ReverseSequence */

static int infer_reverse_sequence(Graph *g, Node *n, Diag *d)
{
    Value *x = need_input(g, n, 0, d), *len = x ? need_input(g, n, 1, d) : NULL;
    if (!len || shape_dtype_ok(d, n, x->dtype))
        return -1;
    if (x->rank < 2)
        return diag_error(d, n, "input must have rank 2 or more");
    int64_t ta = attr_int(n, "time_axis", 0), ba = attr_int(n, "batch_axis", 1);
    if (!((ta == 0 && ba == 1) || (ta == 1 && ba == 0)))
        return diag_error(d, n, "time_axis and batch_axis must be 0 and 1 (in some order)");
    if (len->dtype != DT_INT64 || len->rank != 1 || len->dims[0] != x->dims[ba])
        return diag_error(d, n, "sequence_lens must be int64 of shape [%lld]", (long long)x->dims[ba]);
    value_set_shape(node_out(g, n, 0), x->dtype, x->rank, x->dims);
    return 0;
}

static int emit_reverse_sequence(Emitter *e, const Node *n, Diag *d)
{
    (void)d;
    const Value *x = node_in(e->g, n, 0);
    int ta = (int)attr_int(n, "time_axis", 0), ba = (int)attr_int(n, "batch_axis", 1);
    int64_t st[KD_MAX_RANK];
    shape_strides(x->rank, x->dims, st);
    int64_t T = x->dims[ta], B = x->dims[ba], inner = st[1];
    if (!T || !B || !inner)
        return emit_done(e, n);
    Writer *w = e->w;
    em_for(w, "b", B);
    w_line(w, "int64_t len = x1[b];");
    w_line(w, "len = len < 0 ? 0 : len > %" PRId64 " ? %" PRId64 " : len;", T, T);
    em_for(w, "t", T);
    w_line(w, "const int64_t s = t < len ? len - 1 - t : t;");
    w_line(w, "memcpy(&y0[t * %" PRId64 " + b * %" PRId64 "], &x0[s * %" PRId64 " + b * %" PRId64 "], %" PRId64 " * sizeof(y0[0]));",
           st[ta], st[ba], st[ta], st[ba], inner);
    em_close(w, 2);
    return emit_done(e, n);
}

const OpDef op_reverse_sequence = {
    .name = "ReverseSequence", .domain = "", .since = 10,
    .min_inputs = 2, .max_inputs = 2, .min_outputs = 1, .max_outputs = 1,
    .infer = infer_reverse_sequence, .emit = emit_reverse_sequence,
    .summary = "reverse the first sequence_lens[b] steps of each batch",
};

/* ---------------------------------------------------------------- TopK */

static int topk_k(Graph *g, const Node *n, int64_t *k, Diag *d)
{
    if (n->opset && n->opset < 10) {
        *k = attr_int(n, "k", -1);
    } else {
        if (!node_in(g, n, 1))
            return diag_error(d, n, "K is missing");
        if (const_scalar_int(g, n, 1, "K", k, d))
            return -1;
    }
    return 0;
}

static int infer_topk(Graph *g, Node *n, Diag *d)
{
    Value *x = need_input(g, n, 0, d);
    int64_t k;
    if (!x || numeric_ok(d, n, x->dtype) || topk_k(g, n, &k, d))
        return -1;
    if (x->rank == 0)
        return diag_error(d, n, "input must have rank 1 or more");
    int axis = norm_axis(d, n, attr_int(n, "axis", -1), x->rank);
    if (axis < 0)
        return -1;
    if (k < 0 || k > x->dims[axis])
        return diag_error(d, n, "K = %lld is out of range for an axis of size %lld", (long long)k, (long long)x->dims[axis]);
    if (k > 4096)
        return diag_unsupported(d, n, "K = %lld is larger than the 4096 kdcc supports", (long long)k);
    int64_t dims[KD_MAX_RANK];
    memcpy(dims, x->dims, sizeof dims);
    dims[axis] = k;
    value_set_shape(node_out(g, n, 0), x->dtype, x->rank, dims);
    Value *yi = node_out(g, n, 1);
    if (yi)
        value_set_shape(yi, DT_INT64, x->rank, dims);
    return 0;
}

static int emit_topk(Emitter *e, const Node *n, Diag *d)
{
    const Value *x = node_in(e->g, n, 0);
    int64_t K;
    if (topk_k((Graph *)e->g, n, &K, d))
        return -1;
    int axis = norm_axis(d, n, attr_int(n, "axis", -1), x->rank);
    if (axis < 0)
        return -1;
    int64_t outer = dims_numel(axis, x->dims), D = x->dims[axis], inner = dims_numel(x->rank - axis - 1, x->dims + axis + 1);
    if (!K || !outer || !inner)
        return emit_done(e, n);
    int largest = (int)attr_int(n, "largest", 1);
    Writer *w = e->w;
    em_for(w, "o", outer);
    em_for(w, "in", inner);
    w_line(w, "int64_t best[%" PRId64 "] = {0};", K); /* each slot is written before it is read; cppcheck cannot see it */
    w_line(w, "int64_t cnt = 0;");
    w_line(w, "const int64_t base = o * %" PRId64 " + in;", D * inner);
    em_for(w, "j", D);
    w_line(w, "const %s v = x0[base + j * %" PRId64 "];", dtype_ctype(x->dtype), inner);
    w_line(w, "int64_t p = cnt;");
    w_open(w, "while (p > 0 && v %s x0[base + best[p - 1] * %" PRId64 "])", largest ? ">" : "<", inner);
    w_line(w, "if (p < %" PRId64 ")", K);
    w_line(w, "    best[p] = best[p - 1];");
    w_line(w, "p--;");
    w_close(w);
    w_open(w, "if (p < %" PRId64 ")", K);
    w_line(w, "best[p] = j;");
    w_line(w, "if (cnt < %" PRId64 ")", K);
    w_line(w, "    cnt++;");
    w_close(w);
    w_close(w);
    em_for(w, "t", K);
    w_line(w, "y0[o * %" PRId64 " + t * %" PRId64 " + in] = x0[base + best[t] * %" PRId64 "];", K * inner, inner, inner);
    if (node_out(e->g, n, 1))
        w_line(w, "y1[o * %" PRId64 " + t * %" PRId64 " + in] = best[t];", K * inner, inner);
    w_close(w);
    em_close(w, 2);
    return emit_done(e, n);
}

const OpDef op_topk = {
    .name = "TopK", .domain = "", .since = 1,
    .min_inputs = 1, .max_inputs = 2, .min_outputs = 1, .max_outputs = 2,
    .infer = infer_topk, .emit = emit_topk,
    .summary = "the K largest (or smallest) along axis, with indices; ties keep the lower index",
};

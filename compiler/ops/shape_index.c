/* Index-driven data movement: Gather, GatherElements, GatherND, ScatterElements
 * (and the older Scatter), ScatterND.
 *
 * Indices may be runtime inputs: the emitted code reads them, wraps negative ones
 * and clamps out-of-range ones into the axis (ONNX leaves those undefined; clamping
 * keeps the emitted code memory-safe). With constant indices the gathers become
 * plans of strided copies (shape_plan.c), which is also how they fold.
 */
#include "compiler/ops/shape_internal.h"

#include <inttypes.h>
#include <string.h>

static int64_t wrap_index(int64_t k, int64_t dim)
{
    if (k < 0)
        k += dim;
    return k < 0 ? 0 : k >= dim ? dim - 1 : k;
}

static int index_ok(Diag *d, const Node *n, const Value *idx)
{
    if (idx->dtype != DT_INT32 && idx->dtype != DT_INT64)
        return diag_error(d, n, "indices must be int32 or int64, not %s", dtype_name(idx->dtype));
    return 0;
}

/* Emit: `int64_t VAR = (int64_t)x1[EXPR]; wrap and clamp into [0, dim)` */
static void w_load_index(Writer *w, const char *var, int in, const char *expr, int64_t dim)
{
    w_line(w, "int64_t %s = (int64_t)x%d[%s];", var, in, expr);
    w_line(w, "%s = %s < 0 ? %s + %" PRId64 " : %s;", var, var, var, dim, var);
    w_line(w, "%s = %s < 0 ? 0 : %s > %" PRId64 " ? %" PRId64 " : %s;", var, var, var, dim - 1, dim - 1, var);
}

static int fold_plan_if_const(Graph *g, Node *n, Diag *d, int (*plan)(Graph *, const Node *, Plan *, Diag *))
{
    if (!all_inputs_const(g, n))
        return 0;
    Plan p;
    plan_init(&p, g->arena);
    if (plan(g, n, &p, d))
        return -1;
    return plan_fold(g, n, &p, d);
}

/* ---------------------------------------------------------------- Gather */

static int infer_gather(Graph *g, Node *n, Diag *d)
{
    Value *x = need_input(g, n, 0, d), *idx = x ? need_input(g, n, 1, d) : NULL;
    if (!idx || shape_dtype_ok(d, n, x->dtype) || index_ok(d, n, idx))
        return -1;
    if (x->rank == 0)
        return diag_error(d, n, "data must have rank 1 or more");
    int axis = norm_axis(d, n, attr_int(n, "axis", 0), x->rank);
    if (axis < 0)
        return -1;
    int r = x->rank - 1 + idx->rank;
    if (r > KD_MAX_RANK)
        return diag_unsupported(d, n, "output rank %d exceeds the maximum of %d", r, KD_MAX_RANK);
    int64_t dims[KD_MAX_RANK];
    int k = 0;
    for (int i = 0; i < axis; i++)
        dims[k++] = x->dims[i];
    for (int i = 0; i < idx->rank; i++)
        dims[k++] = idx->dims[i];
    for (int i = axis + 1; i < x->rank; i++)
        dims[k++] = x->dims[i];
    if (value_numel(x) == 0 && value_numel(idx) > 0)
        return diag_error(d, n, "cannot gather from an empty axis");
    value_set_shape(node_out(g, n, 0), x->dtype, r, dims);
    return 0;
}

/* Gather sizes: outer blocks, axis size, inner block, number of indices. */
static void gather_sizes(const Graph *g, const Node *n, int64_t *outer, int64_t *dim, int64_t *inner, int64_t *ni)
{
    const Value *x = node_in(g, n, 0), *idx = node_in(g, n, 1);
    int64_t a = attr_int(n, "axis", 0);
    int axis = (int)(a < 0 ? a + x->rank : a);
    *outer = dims_numel(axis, x->dims);
    *dim = x->dims[axis];
    *inner = dims_numel(x->rank - axis - 1, x->dims + axis + 1);
    *ni = value_numel(idx);
}

static int plan_gather_const(Graph *g, const Node *n, Plan *p, Diag *d)
{
    (void)d;
    const Value *idx = node_in(g, n, 1);
    int64_t outer, dim, inner, ni;
    gather_sizes(g, n, &outer, &dim, &inner, &ni);
    for (int64_t j = 0; j < ni; j++) {
        int64_t k = wrap_index(elem_get_i64(idx->data, idx->dtype, j), dim);
        Copy *c = plan_copy(p, 0, 0, 2);
        if (!c)
            return -1;
        c->dims[0] = outer;
        c->dims[1] = inner;
        c->ss[0] = dim * inner;
        c->ss[1] = 1;
        c->ds[0] = ni * inner;
        c->ds[1] = 1;
        c->so = k * inner;
        c->doff = j * inner;
    }
    return 0;
}

static int fold_gather(Graph *g, Node *n, Diag *d)
{
    return fold_plan_if_const(g, n, d, plan_gather_const);
}

static int emit_gather(Emitter *e, const Node *n, Diag *d)
{
    const Value *idx = node_in(e->g, n, 1);
    int64_t outer, dim, inner, ni;
    gather_sizes(e->g, n, &outer, &dim, &inner, &ni);
    if (value_is_const(idx) && ni <= 16) {
        Plan p;
        plan_init(&p, e->g->arena);
        if (plan_gather_const((Graph *)e->g, n, &p, d))
            return -1;
        return plan_emit(e, n, &p, d);
    }
    if (!outer || !inner || !ni)
        return emit_done(e, n);
    Writer *w = e->w;
    em_for(w, "o", outer);
    em_for(w, "j", ni);
    w_load_index(w, "k", 1, "j", dim);
    if (inner == 1)
        w_line(w, "y0[o * %" PRId64 " + j] = x0[o * %" PRId64 " + k];", ni, dim);
    else
        w_line(w, "memcpy(&y0[(o * %" PRId64 " + j) * %" PRId64 "], &x0[(o * %" PRId64 " + k) * %" PRId64 "], %" PRId64 " * sizeof(y0[0]));",
               ni, inner, dim, inner, inner);
    w_close(w);
    w_close(w);
    return emit_done(e, n);
}

/* dData: kdcc.GatherGrad adds dY's slices into zeros at the rows they came from
 * (compiler/ops/train.c); the indices get no gradient. */
static int grad_gather(GradCtx *c)
{
    if (!c->need[0] || c->dy[0] < 0)
        return 0;
    const Value *x = &c->g->values[c->n->inputs[0]];
    int64_t dims[KD_MAX_RANK], axis = attr_int(c->n, "axis", 0);
    int rank = x->rank;
    memcpy(dims, x->dims, (size_t)rank * sizeof(int64_t));
    int ins[2] = {c->dy[0], c->n->inputs[1]};
    Node *n = g_new(c, "kdcc.GatherGrad", ins, 2, 1);
    if (!n)
        return -1;
    g_attr_i(c, n, "axis", axis < 0 ? axis + rank : axis);
    g_attr_ints(c, n, "shape", dims, rank);
    c->dx[0] = g_done(c, n);
    return c->dx[0] < 0 ? -1 : 0;
}

const OpDef op_gather = {
    .name = "Gather", .domain = "", .since = 1,
    .min_inputs = 2, .max_inputs = 2, .min_outputs = 1, .max_outputs = 1,
    .infer = infer_gather, .fold = fold_gather, .emit = emit_gather, .grad = grad_gather,
    .summary = "take slices along axis at the given indices",
};

/* ---------------------------------------------------------------- GatherElements */

static int infer_gather_elements(Graph *g, Node *n, Diag *d)
{
    Value *x = need_input(g, n, 0, d), *idx = x ? need_input(g, n, 1, d) : NULL;
    if (!idx || shape_dtype_ok(d, n, x->dtype) || index_ok(d, n, idx))
        return -1;
    if (x->rank == 0 || idx->rank != x->rank)
        return diag_error(d, n, "data and indices must have the same rank (>= 1), not %d and %d", x->rank, idx->rank);
    int axis = norm_axis(d, n, attr_int(n, "axis", 0), x->rank);
    if (axis < 0)
        return -1;
    for (int i = 0; i < x->rank; i++)
        if (i != axis && idx->dims[i] > x->dims[i])
            return diag_error(d, n, "indices dim %d (%lld) exceeds the data dim (%lld)", i, (long long)idx->dims[i], (long long)x->dims[i]);
    if (x->dims[axis] == 0 && value_numel(idx) > 0)
        return diag_error(d, n, "cannot gather from an empty axis");
    value_set_shape(node_out(g, n, 0), x->dtype, idx->rank, idx->dims);
    return 0;
}

/* Data offset of element i of the indices with the axis coordinate replaced by k. */
static int64_t elements_offset(const Value *x, const Value *idx, int axis, int64_t i, int64_t k)
{
    int64_t xst[KD_MAX_RANK], off = 0;
    shape_strides(x->rank, x->dims, xst);
    for (int m = idx->rank - 1; m >= 0; m--) {
        int64_t c = i % idx->dims[m];
        i /= idx->dims[m];
        off += (m == axis ? k : c) * xst[m];
    }
    return off;
}

static int plan_gather_elements_const(Graph *g, const Node *n, Plan *p, Diag *d)
{
    (void)d;
    const Value *x = node_in(g, n, 0), *idx = node_in(g, n, 1);
    int axis = (int)attr_int(n, "axis", 0);
    axis = axis < 0 ? axis + x->rank : axis;
    int64_t num = value_numel(idx);
    for (int64_t i = 0; i < num; i++) {
        int64_t k = wrap_index(elem_get_i64(idx->data, idx->dtype, i), x->dims[axis]);
        Copy *c = plan_copy(p, 0, 0, 0);
        if (!c)
            return -1;
        c->so = elements_offset(x, idx, axis, i, k);
        c->doff = i;
    }
    return 0;
}

static int fold_gather_elements(Graph *g, Node *n, Diag *d)
{
    return fold_plan_if_const(g, n, d, plan_gather_elements_const);
}

/* Loops over all elements of `idx`; inside: `i` flat index, `k` the wrapped index
 * value, `s` the data/output offset with the axis coordinate replaced by k. */
static int open_elements_loops(Writer *w, const Value *x, const Value *idx, int axis, int in_idx)
{
    int64_t xst[KD_MAX_RANK], ist[KD_MAX_RANK];
    shape_strides(x->rank, x->dims, xst);
    shape_strides(idx->rank, idx->dims, ist);
    for (int m = 0; m < idx->rank; m++) {
        char var[8];
        snprintf(var, sizeof var, "i%d", m);
        em_for(w, var, idx->dims[m]);
    }
    w_puts(w, "const int64_t i = 0");
    for (int m = 0; m < idx->rank; m++)
        w_printf(w, " + i%d * %" PRId64, m, ist[m]);
    w_puts(w, ";\n");
    w_load_index(w, "k", in_idx, "i", x->dims[axis]);
    w_printf(w, "const int64_t s = k * %" PRId64, xst[axis]);
    for (int m = 0; m < idx->rank; m++)
        if (m != axis)
            w_printf(w, " + i%d * %" PRId64, m, xst[m]);
    w_puts(w, ";\n");
    return idx->rank;
}

static int emit_gather_elements(Emitter *e, const Node *n, Diag *d)
{
    (void)d;
    const Value *x = node_in(e->g, n, 0), *idx = node_in(e->g, n, 1);
    if (value_numel(idx) == 0)
        return emit_done(e, n);
    int axis = (int)attr_int(n, "axis", 0);
    axis = axis < 0 ? axis + x->rank : axis;
    int k = open_elements_loops(e->w, x, idx, axis, 1);
    w_line(e->w, "y0[i] = x0[s];");
    em_close(e->w, k);
    return emit_done(e, n);
}

const OpDef op_gather_elements = {
    .name = "GatherElements", .domain = "", .since = 11,
    .min_inputs = 2, .max_inputs = 2, .min_outputs = 1, .max_outputs = 1,
    .infer = infer_gather_elements, .fold = fold_gather_elements, .emit = emit_gather_elements,
    .summary = "take elements along axis at per-element indices",
};

/* ---------------------------------------------------------------- GatherND */

typedef struct NDSizes {
    int b, k;          /* batch dims, index tuple length */
    int64_t B, M, S;   /* batches, index tuples per batch, slice elements */
    int64_t DB;        /* data elements per batch */
    int64_t st[KD_MAX_RANK], dim[KD_MAX_RANK]; /* per tuple position: data stride and dim */
} NDSizes;

static int nd_sizes(const Node *n, const Value *x, const Value *idx, NDSizes *s, Diag *d)
{
    int64_t b = attr_int(n, "batch_dims", 0);
    if (idx->rank < 1)
        return diag_error(d, n, "indices must have rank 1 or more");
    int64_t k = idx->dims[idx->rank - 1];
    if (b < 0 || b >= idx->rank || b > x->rank)
        return diag_error(d, n, "batch_dims %lld is out of range", (long long)b);
    if (k < 0 || k > x->rank - b)
        return diag_error(d, n, "index tuples of length %lld do not fit data of rank %d with %lld batch dims", (long long)k, x->rank, (long long)b);
    for (int i = 0; i < b; i++)
        if (idx->dims[i] != x->dims[i])
            return diag_error(d, n, "batch dim %d differs between data (%lld) and indices (%lld)", i, (long long)x->dims[i], (long long)idx->dims[i]);
    s->b = (int)b;
    s->k = (int)k;
    s->B = dims_numel(s->b, x->dims);
    s->M = dims_numel(idx->rank - 1 - s->b, idx->dims + s->b);
    s->S = dims_numel(x->rank - s->b - s->k, x->dims + s->b + s->k);
    s->DB = dims_numel(x->rank - s->b, x->dims + s->b);
    int64_t xst[KD_MAX_RANK];
    shape_strides(x->rank, x->dims, xst);
    for (int t = 0; t < s->k; t++) {
        s->st[t] = xst[s->b + t];
        s->dim[t] = x->dims[s->b + t];
        if (s->dim[t] == 0 && s->M > 0 && s->B > 0)
            return diag_error(d, n, "cannot index an empty dim");
    }
    return 0;
}

static int infer_gather_nd(Graph *g, Node *n, Diag *d)
{
    Value *x = need_input(g, n, 0, d), *idx = x ? need_input(g, n, 1, d) : NULL;
    if (!idx || shape_dtype_ok(d, n, x->dtype))
        return -1;
    if (idx->dtype != DT_INT64)
        return diag_error(d, n, "indices must be int64, not %s", dtype_name(idx->dtype));
    NDSizes s;
    if (nd_sizes(n, x, idx, &s, d))
        return -1;
    int64_t dims[2 * KD_MAX_RANK];
    int r = 0;
    for (int i = 0; i < idx->rank - 1; i++)
        dims[r++] = idx->dims[i];
    for (int i = s.b + s.k; i < x->rank; i++)
        dims[r++] = x->dims[i];
    if (r > KD_MAX_RANK)
        return diag_unsupported(d, n, "output rank %d exceeds the maximum of %d", r, KD_MAX_RANK);
    value_set_shape(node_out(g, n, 0), x->dtype, r, dims);
    return 0;
}

static int plan_gather_nd_const(Graph *g, const Node *n, Plan *p, Diag *d)
{
    const Value *x = node_in(g, n, 0), *idx = node_in(g, n, 1);
    NDSizes s;
    if (nd_sizes(n, x, idx, &s, d))
        return -1;
    for (int64_t bi = 0; bi < s.B; bi++)
        for (int64_t m = 0; m < s.M; m++) {
            int64_t row = bi * s.M + m, off = bi * s.DB;
            for (int t = 0; t < s.k; t++)
                off += wrap_index(elem_get_i64(idx->data, idx->dtype, row * s.k + t), s.dim[t]) * s.st[t];
            Copy *c = plan_copy(p, 0, 0, 1);
            if (!c)
                return -1;
            c->dims[0] = s.S;
            c->ss[0] = c->ds[0] = 1;
            c->so = off;
            c->doff = row * s.S;
        }
    return 0;
}

static int fold_gather_nd(Graph *g, Node *n, Diag *d)
{
    return fold_plan_if_const(g, n, d, plan_gather_nd_const);
}

/* Loops over batches and index tuples; inside: `row` the tuple number, `off` its data offset. */
static int open_nd_loops(Writer *w, const NDSizes *s, int in_idx)
{
    em_for(w, "b", s->B);
    em_for(w, "m", s->M);
    w_line(w, "const int64_t row = b * %" PRId64 " + m;", s->M);
    w_line(w, "int64_t off = b * %" PRId64 ";", s->DB);
    for (int t = 0; t < s->k; t++) {
        char expr[64];
        snprintf(expr, sizeof expr, "row * %d + %d", s->k, t);
        w_line(w, "{");
        w->indent++;
        w_load_index(w, "k", in_idx, expr, s->dim[t]);
        w_line(w, "off += k * %" PRId64 ";", s->st[t]);
        w_close(w);
    }
    return 2;
}

static int emit_gather_nd(Emitter *e, const Node *n, Diag *d)
{
    const Value *x = node_in(e->g, n, 0), *idx = node_in(e->g, n, 1);
    NDSizes s;
    if (nd_sizes(n, x, idx, &s, d))
        return -1;
    if (!s.B || !s.M || !s.S)
        return emit_done(e, n);
    int k = open_nd_loops(e->w, &s, 1);
    if (s.S == 1)
        w_line(e->w, "y0[row] = x0[off];");
    else
        w_line(e->w, "memcpy(&y0[row * %" PRId64 "], &x0[off], %" PRId64 " * sizeof(y0[0]));", s.S, s.S);
    em_close(e->w, k);
    return emit_done(e, n);
}

const OpDef op_gather_nd = {
    .name = "GatherND", .domain = "", .since = 11,
    .min_inputs = 2, .max_inputs = 2, .min_outputs = 1, .max_outputs = 1,
    .infer = infer_gather_nd, .fold = fold_gather_nd, .emit = emit_gather_nd,
    .summary = "take slices at index tuples (batch_dims)",
};

/* ---------------------------------------------------------------- scatters */

/* Reduction kind: 0 none, 1 add, 2 mul, 3 max, 4 min. */
static int scatter_reduction(const Node *n, DType dt, Diag *d)
{
    const char *r = attr_string(n, "reduction", "none");
    int kind;
    if (strcmp(r, "none") == 0)
        return 0;
    if (strcmp(r, "add") == 0)
        kind = 1;
    else if (strcmp(r, "mul") == 0)
        kind = 2;
    else if (strcmp(r, "max") == 0)
        kind = 3;
    else if (strcmp(r, "min") == 0)
        kind = 4;
    else
        return diag_error(d, n, "unknown reduction '%s'", r);
    if (!dtype_is_float(dt) && !dtype_is_int(dt))
        return diag_unsupported(d, n, "reduction '%s' on element type %s is not supported", r, dtype_name(dt));
    return kind;
}

/* "DST = DST op SRC;" for a reduction kind */
static void w_reduce(Writer *w, int kind, const char *dst, const char *src)
{
    switch (kind) {
    case 1: w_line(w, "%s += %s;", dst, src); break;
    case 2: w_line(w, "%s *= %s;", dst, src); break;
    case 3: w_line(w, "%s = %s > %s ? %s : %s;", dst, src, dst, src, dst); break;
    case 4: w_line(w, "%s = %s < %s ? %s : %s;", dst, src, dst, src, dst); break;
    default: w_line(w, "%s = %s;", dst, src);
    }
}

static int infer_scatter_elements(Graph *g, Node *n, Diag *d)
{
    Value *x = need_input(g, n, 0, d), *idx = x ? need_input(g, n, 1, d) : NULL, *u = idx ? need_input(g, n, 2, d) : NULL;
    if (!u || shape_dtype_ok(d, n, x->dtype) || index_ok(d, n, idx))
        return -1;
    if (u->dtype != x->dtype)
        return diag_error(d, n, "updates have type %s but data has %s", dtype_name(u->dtype), dtype_name(x->dtype));
    if (idx->rank != x->rank || u->rank != idx->rank)
        return diag_error(d, n, "data, indices and updates must have the same rank");
    for (int i = 0; i < idx->rank; i++)
        if (u->dims[i] != idx->dims[i])
            return diag_error(d, n, "updates and indices must have the same shape");
    int axis = norm_axis(d, n, attr_int(n, "axis", 0), x->rank);
    if (axis < 0 || scatter_reduction(n, x->dtype, d) < 0)
        return -1;
    for (int i = 0; i < x->rank; i++)
        if (idx->dims[i] > x->dims[i] && i != axis)
            return diag_error(d, n, "indices dim %d exceeds the data dim", i);
    if (x->dims[axis] == 0 && value_numel(idx) > 0)
        return diag_error(d, n, "cannot scatter into an empty axis");
    value_set_shape(node_out(g, n, 0), x->dtype, x->rank, x->dims);
    return 0;
}

static int emit_scatter_elements(Emitter *e, const Node *n, Diag *d)
{
    const Value *x = node_in(e->g, n, 0), *idx = node_in(e->g, n, 1);
    int kind = scatter_reduction(n, x->dtype, d);
    if (kind < 0)
        return -1;
    Writer *w = e->w;
    if (value_numel(x))
        w_line(w, "memcpy(y0, x0, %" PRId64 " * sizeof(y0[0]));", value_numel(x));
    if (value_numel(idx) == 0)
        return emit_done(e, n);
    int axis = (int)attr_int(n, "axis", 0);
    axis = axis < 0 ? axis + x->rank : axis;
    int k = open_elements_loops(w, x, idx, axis, 1);
    w_reduce(w, kind, "y0[s]", "x2[i]");
    em_close(w, k);
    return emit_done(e, n);
}

const OpDef op_scatter_elements = {
    .name = "ScatterElements", .domain = "", .since = 11,
    .min_inputs = 3, .max_inputs = 3, .min_outputs = 1, .max_outputs = 1,
    .infer = infer_scatter_elements, .emit = emit_scatter_elements,
    .summary = "write updates along axis at per-element indices (reductions)",
};

const OpDef op_scatter = {
    .name = "Scatter", .domain = "", .since = 9,
    .min_inputs = 3, .max_inputs = 3, .min_outputs = 1, .max_outputs = 1,
    .infer = infer_scatter_elements, .emit = emit_scatter_elements,
    .summary = "deprecated ScatterElements",
};

static int infer_scatter_nd(Graph *g, Node *n, Diag *d)
{
    Value *x = need_input(g, n, 0, d), *idx = x ? need_input(g, n, 1, d) : NULL, *u = idx ? need_input(g, n, 2, d) : NULL;
    if (!u || shape_dtype_ok(d, n, x->dtype))
        return -1;
    if (idx->dtype != DT_INT64)
        return diag_error(d, n, "indices must be int64, not %s", dtype_name(idx->dtype));
    if (u->dtype != x->dtype)
        return diag_error(d, n, "updates have type %s but data has %s", dtype_name(u->dtype), dtype_name(x->dtype));
    NDSizes s;
    if (nd_sizes(n, x, idx, &s, d) || scatter_reduction(n, x->dtype, d) < 0)
        return -1;
    /* updates shape: indices.shape[:-1] + data.shape[k:] */
    int r = 0;
    int64_t want[2 * KD_MAX_RANK];
    for (int i = 0; i < idx->rank - 1; i++)
        want[r++] = idx->dims[i];
    for (int i = s.k; i < x->rank; i++)
        want[r++] = x->dims[i];
    int ok = u->rank == r;
    for (int i = 0; ok && i < r; i++)
        ok = u->dims[i] == want[i];
    if (!ok) {
        char su[128];
        return diag_error(d, n, "updates %s do not have the shape indices.shape[:-1] + data.shape[k:]", value_type_str(u, su, sizeof su));
    }
    value_set_shape(node_out(g, n, 0), x->dtype, x->rank, x->dims);
    return 0;
}

static int emit_scatter_nd(Emitter *e, const Node *n, Diag *d)
{
    const Value *x = node_in(e->g, n, 0), *idx = node_in(e->g, n, 1);
    int kind = scatter_reduction(n, x->dtype, d);
    NDSizes s;
    if (kind < 0 || nd_sizes(n, x, idx, &s, d))
        return -1;
    Writer *w = e->w;
    if (value_numel(x))
        w_line(w, "memcpy(y0, x0, %" PRId64 " * sizeof(y0[0]));", value_numel(x));
    if (!s.B || !s.M || !s.S)
        return emit_done(e, n);
    int k = open_nd_loops(w, &s, 1);
    em_for(w, "t", s.S);
    char src[64];
    snprintf(src, sizeof src, "x2[row * %" PRId64 " + t]", s.S);
    w_reduce(w, kind, "y0[off + t]", src);
    w_close(w);
    em_close(w, k);
    return emit_done(e, n);
}

const OpDef op_scatter_nd = {
    .name = "ScatterND", .domain = "", .since = 11,
    .min_inputs = 3, .max_inputs = 3, .min_outputs = 1, .max_outputs = 1,
    .infer = infer_scatter_nd, .emit = emit_scatter_nd,
    .summary = "write update slices at index tuples (reductions)",
};

/* Shape and data-movement operators that are pure strided copies: Reshape, Flatten,
 * Squeeze, Unsqueeze, Identity, Dropout (inference), Transpose, Concat, Split,
 * Slice, Expand, Tile, Pad, DepthToSpace, SpaceToDepth.
 *
 * Each operator has an infer function (output dtype and shape) and a plan function
 * that describes its data movement as fills and strided copies (shape_plan.c). The
 * plan is run on the host to fold constants and emitted as C loops otherwise.
 * Index-driven operators (Gather, Scatter, ...) are in shape_index.c; operators
 * whose outputs are known at compile time (Constant, Shape, Range, ...) in
 * shape_const.c; the rest in shape_misc.c.
 */
#include "compiler/ops/shape_internal.h"

#include <string.h>

typedef int (*PlanFn)(Graph *g, const Node *n, Plan *p, Diag *d);

static int fold_with(Graph *g, Node *n, Diag *d, PlanFn f)
{
    if (!all_inputs_const(g, n))
        return 0;
    Plan p;
    plan_init(&p, g->arena);
    if (f(g, n, &p, d))
        return -1;
    return plan_fold(g, n, &p, d);
}

static int emit_with(Emitter *e, const Node *n, Diag *d, PlanFn f)
{
    Plan p;
    plan_init(&p, e->g->arena);
    if (f((Graph *)e->g, n, &p, d))
        return -1;
    return plan_emit(e, n, &p, d);
}

#define PLAN_OP(x)                                                                      \
    static int fold_##x(Graph *g, Node *n, Diag *d) { return fold_with(g, n, d, plan_##x); } \
    static int emit_##x(Emitter *e, const Node *n, Diag *d) { return emit_with(e, n, d, plan_##x); }

static Value *data_input(Graph *g, const Node *n, Diag *d)
{
    Value *x = need_input(g, n, 0, d);
    if (x && shape_dtype_ok(d, n, x->dtype))
        return NULL;
    return x;
}

static int set_out(Graph *g, const Node *n, int o, DType dt, int rank, const int64_t *dims, Diag *d)
{
    if (rank > KD_MAX_RANK)
        return diag_unsupported(d, n, "output rank %d exceeds the maximum of %d", rank, KD_MAX_RANK);
    if (dims_numel(rank, dims) < 0)
        return diag_error(d, n, "output %d has an invalid or too large shape", o);
    Value *y = node_out(g, n, o);
    if (y)
        value_set_shape(y, dt, rank, dims);
    return 0;
}

/* ---------------------------------------------------------------- reshape family */

/* Output 0 has input 0's elements in the same order. */
static int plan_same(Graph *g, const Node *n, Plan *p, Diag *d)
{
    (void)d;
    return plan_copy_all(p, node_in(g, n, 0), 0, 0);
}
PLAN_OP(same)

static int infer_reshape(Graph *g, Node *n, Diag *d)
{
    Value *x = data_input(g, n, d);
    if (!x)
        return -1;
    int64_t s[KD_MAX_RANK + 1];
    int cnt = shape_ints(g, n, "shape", 1, 5, "shape", s, KD_MAX_RANK + 1, d);
    if (cnt == -1)
        return -1;
    if (cnt == -2)
        return diag_error(d, n, "the target shape is missing");
    if (cnt > KD_MAX_RANK)
        return diag_unsupported(d, n, "target rank %d exceeds the maximum of %d", cnt, KD_MAX_RANK);
    int allowzero = (int)attr_int(n, "allowzero", 0);
    int64_t dims[KD_MAX_RANK];
    int infer_at = -1;
    int64_t known = 1;
    for (int i = 0; i < cnt; i++) {
        if (s[i] == -1) {
            if (infer_at >= 0)
                return diag_error(d, n, "the target shape has more than one -1");
            infer_at = i;
            dims[i] = 1;
            continue;
        }
        if (s[i] < -1)
            return diag_error(d, n, "the target shape has an invalid dim %lld", (long long)s[i]);
        if (s[i] == 0 && !allowzero) {
            if (i >= x->rank)
                return diag_error(d, n, "target dim %d is 0 (copy) but the input has rank %d", i, x->rank);
            dims[i] = x->dims[i];
        } else
            dims[i] = s[i];
        if (dims[i] > 0 && known > INT64_MAX / dims[i])
            return diag_error(d, n, "the target shape's element count overflows int64");
        known *= dims[i];
    }
    int64_t numel = value_numel(x);
    char sx[128];
    if (infer_at >= 0) {
        if (known == 0 || numel % known != 0)
            return diag_error(d, n, "cannot reshape %s: %lld elements do not divide into the known dims (product %lld)",
                              value_type_str(x, sx, sizeof sx), (long long)numel, (long long)known);
        dims[infer_at] = numel / known;
    }
    if (dims_numel(cnt, dims) != numel)
        return diag_error(d, n, "cannot reshape %s (%lld elements) to a shape of %lld elements",
                          value_type_str(x, sx, sizeof sx), (long long)numel, (long long)dims_numel(cnt, dims));
    return set_out(g, n, 0, x->dtype, cnt, dims, d);
}

/* Ops that keep the elements in order (Reshape, Flatten, Squeeze, Unsqueeze, Identity,
 * inference Dropout): the gradient is dy in the input's shape. */
static int grad_same_elements(GradCtx *c)
{
    if (c->dy[0] < 0 || !c->need[0])
        return 0;
    c->dx[0] = g_reshape_like(c, c->dy[0], c->n->inputs[0]);
    return c->dx[0] < 0 ? -1 : 0;
}

/* Transpose: dy transposed back by the inverse permutation. */
static int grad_transpose(GradCtx *c)
{
    if (c->dy[0] < 0 || !c->need[0])
        return 0;
    const Value *x = &c->g->values[c->n->inputs[0]];
    const int64_t *perm;
    int np = attr_ints(c->n, "perm", &perm);
    int64_t inv[KD_MAX_RANK];
    for (int i = 0; i < x->rank; i++) {
        int64_t p = np == x->rank ? perm[i] : x->rank - 1 - i;
        if (p < 0)
            p += x->rank;
        inv[p] = i;
    }
    Node *t = g_new(c, "Transpose", &c->dy[0], 1, 1);
    if (!t)
        return -1;
    g_attr_ints(c, t, "perm", inv, x->rank);
    c->dx[0] = g_done(c, t);
    return c->dx[0] < 0 ? -1 : 0;
}

/* gradient rules of the data-movement operators (after their operators, below) */
static int grad_concat(GradCtx *c);
static int grad_split(GradCtx *c);
static int grad_slice(GradCtx *c);
static int grad_expand(GradCtx *c);
static int grad_pad(GradCtx *c);

static const OpDef op_reshape = {
    .name = "Reshape", .domain = "", .since = 1,
    .min_inputs = 1, .max_inputs = 2, .min_outputs = 1, .max_outputs = 1,
    .infer = infer_reshape, .fold = fold_same, .emit = emit_same,
    .grad = grad_same_elements, .view = 1,
    .summary = "same elements, new shape (0 copies a dim unless allowzero, -1 is inferred)",
};

static int infer_flatten(Graph *g, Node *n, Diag *d)
{
    Value *x = data_input(g, n, d);
    if (!x)
        return -1;
    int64_t axis = attr_int(n, "axis", 1);
    if (axis < -x->rank || axis > x->rank)
        return diag_error(d, n, "axis %lld is out of range for rank %d", (long long)axis, x->rank);
    if (axis < 0)
        axis += x->rank;
    int64_t dims[2] = {dims_numel((int)axis, x->dims), dims_numel(x->rank - (int)axis, x->dims + axis)};
    return set_out(g, n, 0, x->dtype, 2, dims, d);
}

static const OpDef op_flatten = {
    .name = "Flatten", .domain = "", .since = 1,
    .min_inputs = 1, .max_inputs = 1, .min_outputs = 1, .max_outputs = 1,
    .infer = infer_flatten, .fold = fold_same, .emit = emit_same,
    .grad = grad_same_elements, .view = 1,
    .summary = "reshape to 2-D at axis",
};

static int infer_squeeze(Graph *g, Node *n, Diag *d)
{
    Value *x = data_input(g, n, d);
    if (!x)
        return -1;
    int64_t axes[KD_MAX_RANK];
    int cnt = shape_ints(g, n, "axes", 1, 13, "axes", axes, KD_MAX_RANK, d);
    if (cnt == -1)
        return -1;
    int drop[KD_MAX_RANK] = {0};
    if (cnt == -2) {
        for (int i = 0; i < x->rank; i++)
            drop[i] = x->dims[i] == 1;
    } else {
        for (int k = 0; k < cnt; k++) {
            int a = norm_axis(d, n, axes[k], x->rank);
            if (a < 0)
                return -1;
            if (x->dims[a] != 1)
                return diag_error(d, n, "cannot squeeze axis %d of size %lld", a, (long long)x->dims[a]);
            drop[a] = 1;
        }
    }
    int64_t dims[KD_MAX_RANK];
    int r = 0;
    for (int i = 0; i < x->rank; i++)
        if (!drop[i])
            dims[r++] = x->dims[i];
    return set_out(g, n, 0, x->dtype, r, dims, d);
}

static const OpDef op_squeeze = {
    .name = "Squeeze", .domain = "", .since = 1,
    .min_inputs = 1, .max_inputs = 2, .min_outputs = 1, .max_outputs = 1,
    .infer = infer_squeeze, .fold = fold_same, .emit = emit_same,
    .grad = grad_same_elements, .view = 1,
    .summary = "remove dims of size 1",
};

static int infer_unsqueeze(Graph *g, Node *n, Diag *d)
{
    Value *x = data_input(g, n, d);
    if (!x)
        return -1;
    int64_t axes[KD_MAX_RANK];
    int cnt = shape_ints(g, n, "axes", 1, 13, "axes", axes, KD_MAX_RANK, d);
    if (cnt == -1)
        return -1;
    if (cnt == -2)
        return diag_error(d, n, "axes are missing");
    int r = x->rank + cnt;
    if (r > KD_MAX_RANK)
        return diag_unsupported(d, n, "output rank %d exceeds the maximum of %d", r, KD_MAX_RANK);
    int ins[KD_MAX_RANK] = {0};
    for (int k = 0; k < cnt; k++) {
        int a = norm_axis(d, n, axes[k], r);
        if (a < 0)
            return -1;
        if (ins[a])
            return diag_error(d, n, "axis %d is repeated", a);
        ins[a] = 1;
    }
    int64_t dims[KD_MAX_RANK];
    for (int i = 0, j = 0; i < r; i++)
        dims[i] = ins[i] ? 1 : x->dims[j++];
    return set_out(g, n, 0, x->dtype, r, dims, d);
}

static const OpDef op_unsqueeze = {
    .name = "Unsqueeze", .domain = "", .since = 1,
    .min_inputs = 1, .max_inputs = 2, .min_outputs = 1, .max_outputs = 1,
    .infer = infer_unsqueeze, .fold = fold_same, .emit = emit_same,
    .grad = grad_same_elements, .view = 1,
    .summary = "insert dims of size 1",
};

static int infer_identity(Graph *g, Node *n, Diag *d)
{
    Value *x = data_input(g, n, d);
    if (!x)
        return -1;
    return set_out(g, n, 0, x->dtype, x->rank, x->dims, d);
}

static const OpDef op_identity = {
    .name = "Identity", .domain = "", .since = 1,
    .min_inputs = 1, .max_inputs = 1, .min_outputs = 1, .max_outputs = 1,
    .infer = infer_identity, .fold = fold_same, .emit = emit_same,
    .grad = grad_same_elements, .view = 1,
    .summary = "copy",
};

/* ---------------------------------------------------------------- Dropout (inference) */

static int infer_dropout(Graph *g, Node *n, Diag *d)
{
    Value *x = data_input(g, n, d);
    if (!x)
        return -1;
    if (n->opset && n->opset < 7 && attr_int(n, "is_test", 0) == 0)
        return diag_unsupported(d, n, "training-mode Dropout (is_test=0) is not supported; kdcc compiles inference");
    if (n->opset >= 12 || n->opset == 0) {
        Value *tm = node_in(g, n, 2);
        if (tm) {
            tm = need_const_input(g, n, 2, "training_mode", d);
            if (!tm)
                return -1;
            if (value_numel(tm) != 1)
                return diag_error(d, n, "training_mode must be a scalar");
            if (const_get_i64(tm, 0)) {
                /* training with ratio 0 keeps everything: still a copy */
                double ratio = 0.5;
                if (node_in(g, n, 1)) {
                    Value *r = need_const_input(g, n, 1, "ratio", d);
                    if (!r)
                        return -1;
                    if (value_numel(r) != 1)
                        return diag_error(d, n, "ratio must be a scalar");
                    ratio = const_get_f64(r, 0);
                }
                if (ratio != 0)
                    return diag_unsupported(d, n, "training-mode Dropout (random masks) is not supported; kdcc compiles inference");
            }
        }
    }
    if (set_out(g, n, 0, x->dtype, x->rank, x->dims, d))
        return -1;
    DType mdt = (n->opset && n->opset < 10) ? x->dtype : DT_BOOL;
    return set_out(g, n, 1, mdt, x->rank, x->dims, d);
}

static int plan_dropout(Graph *g, const Node *n, Plan *p, Diag *d)
{
    (void)d;
    const Value *m = node_out(g, n, 1);
    if (m && plan_fill(p, 1, -1, m->dtype, 1.0))
        return -1;
    return plan_copy_all(p, node_in(g, n, 0), 0, 0);
}
PLAN_OP(dropout)

static const OpDef op_dropout = {
    .name = "Dropout", .domain = "", .since = 1,
    .min_inputs = 1, .max_inputs = 3, .min_outputs = 1, .max_outputs = 2,
    .infer = infer_dropout, .fold = fold_dropout, .emit = emit_dropout,
    .grad = grad_same_elements, .view = 1,
    .summary = "inference: copy (mask all true)",
};

/* ---------------------------------------------------------------- Transpose */

static int transpose_perm(const Node *n, int rank, int *perm, Diag *d)
{
    const int64_t *p;
    int cnt = attr_ints(n, "perm", &p);
    if (cnt < 0) {
        for (int i = 0; i < rank; i++)
            perm[i] = rank - 1 - i;
        return 0;
    }
    if (cnt != rank)
        return diag_error(d, n, "perm has %d entries for an input of rank %d", cnt, rank);
    int seen[KD_MAX_RANK] = {0};
    for (int i = 0; i < rank; i++) {
        int64_t a = p[i] < 0 ? p[i] + rank : p[i];
        if (a < 0 || a >= rank || seen[a])
            return diag_error(d, n, "perm is not a permutation of 0..%d", rank - 1);
        seen[a] = 1;
        perm[i] = (int)a;
    }
    return 0;
}

static int infer_transpose(Graph *g, Node *n, Diag *d)
{
    Value *x = data_input(g, n, d);
    if (!x)
        return -1;
    int perm[KD_MAX_RANK];
    if (transpose_perm(n, x->rank, perm, d))
        return -1;
    int64_t dims[KD_MAX_RANK];
    for (int i = 0; i < x->rank; i++)
        dims[i] = x->dims[perm[i]];
    return set_out(g, n, 0, x->dtype, x->rank, dims, d);
}

static int plan_transpose(Graph *g, const Node *n, Plan *p, Diag *d)
{
    const Value *x = node_in(g, n, 0);
    int perm[KD_MAX_RANK];
    if (transpose_perm(n, x->rank, perm, d))
        return -1;
    int64_t st[KD_MAX_RANK], ost[KD_MAX_RANK];
    shape_strides(x->rank, x->dims, st);
    if (x->channels_last && x->rank == 4) {   /* stored [N][H][W][C] (passes/layout.c) */
        st[1] = 1;
        st[3] = x->dims[1];
        st[2] = x->dims[3] * st[3];
        st[0] = x->dims[2] * st[2];
    }
    Copy *c = plan_copy(p, 0, 0, x->rank);
    if (!c)
        return -1;
    for (int i = 0; i < x->rank; i++)
        c->dims[i] = x->dims[perm[i]];
    shape_strides(x->rank, c->dims, ost);
    for (int i = 0; i < x->rank; i++) {
        c->ss[i] = st[perm[i]];
        c->ds[i] = ost[i];
    }
    return 0;
}
PLAN_OP(transpose)

static const OpDef op_transpose = {
    .name = "Transpose", .domain = "", .since = 1,
    .min_inputs = 1, .max_inputs = 1, .min_outputs = 1, .max_outputs = 1,
    .infer = infer_transpose, .fold = fold_transpose, .emit = emit_transpose,
    .grad = grad_transpose,
    .summary = "permute dims (default: reverse)",
};

/* ---------------------------------------------------------------- Concat */

static int infer_concat(Graph *g, Node *n, Diag *d)
{
    Value *x0 = NULL;
    int64_t dims[KD_MAX_RANK];
    int axis = 0;
    for (int k = 0; k < n->ninputs; k++) {
        Value *x = node_in(g, n, k);
        if (!x)
            continue;
        x = need_input(g, n, k, d);
        if (!x || shape_dtype_ok(d, n, x->dtype))
            return -1;
        if (!x0) {
            x0 = x;
            if (x->rank == 0)
                return diag_error(d, n, "cannot concatenate scalars");
            axis = norm_axis(d, n, attr_int(n, "axis", n->opset && n->opset < 4 ? 1 : 0), x->rank);
            if (axis < 0)
                return -1;
            memcpy(dims, x->dims, sizeof dims);
            continue;
        }
        if (x->dtype != x0->dtype)
            return diag_error(d, n, "inputs have different element types (%s and %s)", dtype_name(x0->dtype), dtype_name(x->dtype));
        char s0[128], s1[128];
        if (x->rank != x0->rank)
            return diag_error(d, n, "inputs %s and %s have different ranks", value_type_str(x0, s0, sizeof s0), value_type_str(x, s1, sizeof s1));
        for (int i = 0; i < x->rank; i++)
            if (i != axis && x->dims[i] != x0->dims[i])
                return diag_error(d, n, "inputs %s and %s differ outside axis %d", value_type_str(x0, s0, sizeof s0), value_type_str(x, s1, sizeof s1), axis);
        dims[axis] += x->dims[axis];
    }
    if (!x0)
        return diag_error(d, n, "has no inputs");
    return set_out(g, n, 0, x0->dtype, x0->rank, dims, d);
}

static int plan_concat(Graph *g, const Node *n, Plan *p, Diag *d)
{
    const Value *y = node_out(g, n, 0);
    int axis = norm_axis(d, n, attr_int(n, "axis", n->opset && n->opset < 4 ? 1 : 0), y->rank);
    if (axis < 0)
        return -1;
    int64_t ost[KD_MAX_RANK], at = 0;
    shape_strides(y->rank, y->dims, ost);
    for (int k = 0; k < n->ninputs; k++) {
        const Value *x = node_in(g, n, k);
        if (!x)
            continue;
        Copy *c = plan_copy(p, k, 0, x->rank);
        if (!c)
            return -1;
        memcpy(c->dims, x->dims, (size_t)x->rank * sizeof x->dims[0]);
        shape_strides(x->rank, x->dims, c->ss);
        memcpy(c->ds, ost, (size_t)y->rank * sizeof ost[0]);
        c->doff = at * ost[axis];
        at += x->dims[axis];
    }
    return 0;
}
PLAN_OP(concat)

static const OpDef op_concat = {
    .name = "Concat", .domain = "", .since = 1,
    .min_inputs = 1, .max_inputs = -1, .min_outputs = 1, .max_outputs = 1,
    .infer = infer_concat, .fold = fold_concat, .emit = emit_concat,
    .grad = grad_concat,
    .summary = "join inputs along axis",
};

/* ---------------------------------------------------------------- Split */

#define MAX_SPLIT 256

/* Sizes of the parts along the axis into sz[n->noutputs]. */
static int split_sizes(Graph *g, const Node *n, const Value *x, int axis, int64_t *sz, Diag *d)
{
    int nout = n->noutputs;
    if (nout > MAX_SPLIT)
        return diag_unsupported(d, n, "more than %d outputs", MAX_SPLIT);
    int cnt = shape_ints(g, n, "split", 1, 13, "split", sz, MAX_SPLIT, d);
    if (cnt == -1)
        return -1;
    int64_t dim = x->dims[axis];
    if (cnt >= 0) {
        if (cnt != nout)
            return diag_error(d, n, "split has %d sizes for %d outputs", cnt, nout);
        int64_t sum = 0;
        for (int i = 0; i < cnt; i++) {
            if (sz[i] < 0)
                return diag_error(d, n, "split size %lld is negative", (long long)sz[i]);
            sum += sz[i];
        }
        if (sum != dim)
            return diag_error(d, n, "split sizes add up to %lld but axis %d has size %lld", (long long)sum, axis, (long long)dim);
        return 0;
    }
    const Attr *no = node_attr(n, "num_outputs");
    if (no) {
        if (no->i != nout)
            return diag_error(d, n, "num_outputs is %lld but the node has %d outputs", (long long)no->i, nout);
        int64_t chunk = (dim + nout - 1) / nout;
        for (int i = 0; i < nout; i++) {
            int64_t left = dim - chunk * i;
            sz[i] = left < 0 ? 0 : left < chunk ? left : chunk;
        }
        return 0;
    }
    if (dim % nout)
        return diag_error(d, n, "axis %d of size %lld does not split evenly into %d parts", axis, (long long)dim, nout);
    for (int i = 0; i < nout; i++)
        sz[i] = dim / nout;
    return 0;
}

static int infer_split(Graph *g, Node *n, Diag *d)
{
    Value *x = data_input(g, n, d);
    if (!x)
        return -1;
    int axis = norm_axis(d, n, attr_int(n, "axis", 0), x->rank);
    if (axis < 0)
        return -1;
    int64_t sz[MAX_SPLIT];
    if (split_sizes(g, n, x, axis, sz, d))
        return -1;
    for (int o = 0; o < n->noutputs; o++) {
        int64_t dims[KD_MAX_RANK];
        memcpy(dims, x->dims, sizeof dims);
        dims[axis] = sz[o];
        if (set_out(g, n, o, x->dtype, x->rank, dims, d))
            return -1;
    }
    return 0;
}

static int plan_split(Graph *g, const Node *n, Plan *p, Diag *d)
{
    const Value *x = node_in(g, n, 0);
    int axis = norm_axis(d, n, attr_int(n, "axis", 0), x->rank);
    int64_t sz[MAX_SPLIT], st[KD_MAX_RANK], at = 0;
    if (axis < 0 || split_sizes(g, n, x, axis, sz, d))
        return -1;
    shape_strides(x->rank, x->dims, st);
    for (int o = 0; o < n->noutputs; o++) {
        Copy *c = plan_copy(p, 0, o, x->rank);
        if (!c)
            return -1;
        memcpy(c->dims, x->dims, (size_t)x->rank * sizeof x->dims[0]);
        c->dims[axis] = sz[o];
        memcpy(c->ss, st, (size_t)x->rank * sizeof st[0]);
        shape_strides(x->rank, c->dims, c->ds);
        c->so = at * st[axis];
        at += sz[o];
    }
    return 0;
}
PLAN_OP(split)

static const OpDef op_split = {
    .name = "Split", .domain = "", .since = 1,
    .min_inputs = 1, .max_inputs = 2, .min_outputs = 1, .max_outputs = -1,
    .infer = infer_split, .fold = fold_split, .emit = emit_split,
    .grad = grad_split,
    .summary = "split along axis (sizes, or equal parts)",
};

/* ---------------------------------------------------------------- Slice */

/* Per input dim: start, step and output length. */
static int slice_params(Graph *g, const Node *n, const Value *x, int64_t *start, int64_t *step, int64_t *len, Diag *d)
{
    int64_t st[KD_MAX_RANK], en[KD_MAX_RANK], ax[KD_MAX_RANK], sp[KD_MAX_RANK];
    int ns = shape_ints(g, n, "starts", 1, 10, "starts", st, KD_MAX_RANK, d);
    if (ns == -1)
        return -1;
    int ne = shape_ints(g, n, "ends", 2, 10, "ends", en, KD_MAX_RANK, d);
    if (ne == -1)
        return -1;
    if (ns < 0 || ne < 0)
        return diag_error(d, n, "starts and ends are required");
    if (ns != ne)
        return diag_error(d, n, "starts has %d values but ends has %d", ns, ne);
    int na = shape_ints(g, n, "axes", 3, 10, "axes", ax, KD_MAX_RANK, d);
    if (na == -1)
        return -1;
    int nsp = (n->opset && n->opset < 10) ? -2 : shape_ints(g, n, "steps", 4, 10, "steps", sp, KD_MAX_RANK, d);
    if (nsp == -1)
        return -1;
    if (na == -2) {
        na = ns;
        for (int i = 0; i < ns; i++)
            ax[i] = i;
    }
    if (nsp == -2) {
        nsp = ns;
        for (int i = 0; i < ns; i++)
            sp[i] = 1;
    }
    if (na != ns || nsp != ns)
        return diag_error(d, n, "starts, ends, axes and steps have different lengths");
    for (int i = 0; i < x->rank; i++) {
        start[i] = 0;
        step[i] = 1;
        len[i] = x->dims[i];
    }
    int seen[KD_MAX_RANK] = {0};
    for (int k = 0; k < ns; k++) {
        int a = norm_axis(d, n, ax[k], x->rank);
        if (a < 0)
            return -1;
        if (seen[a])
            return diag_error(d, n, "axis %d is repeated", a);
        seen[a] = 1;
        int64_t dim = x->dims[a], s = st[k], e = en[k], t = sp[k];
        if (t == 0)
            return diag_error(d, n, "step is 0 for axis %d", a);
        if (s < 0)
            s += dim;
        if (e < 0)
            e += dim;
        if (t > 0) {
            s = s < 0 ? 0 : s > dim ? dim : s;
            e = e < 0 ? 0 : e > dim ? dim : e;
            len[a] = e > s ? (e - s + t - 1) / t : 0;
        } else {
            s = s < 0 ? 0 : s > dim - 1 ? dim - 1 : s;
            e = e < -1 ? -1 : e > dim - 1 ? dim - 1 : e;
            len[a] = s > e ? (s - e + (-t) - 1) / (-t) : 0;
        }
        start[a] = len[a] ? s : 0;
        step[a] = t;
    }
    return 0;
}

static int infer_slice(Graph *g, Node *n, Diag *d)
{
    Value *x = data_input(g, n, d);
    if (!x)
        return -1;
    int64_t start[KD_MAX_RANK], step[KD_MAX_RANK], len[KD_MAX_RANK];
    if (slice_params(g, n, x, start, step, len, d))
        return -1;
    return set_out(g, n, 0, x->dtype, x->rank, len, d);
}

static int plan_slice(Graph *g, const Node *n, Plan *p, Diag *d)
{
    const Value *x = node_in(g, n, 0);
    int64_t start[KD_MAX_RANK], step[KD_MAX_RANK], len[KD_MAX_RANK], st[KD_MAX_RANK];
    if (slice_params(g, n, x, start, step, len, d))
        return -1;
    shape_strides(x->rank, x->dims, st);
    Copy *c = plan_copy(p, 0, 0, x->rank);
    if (!c)
        return -1;
    memcpy(c->dims, len, (size_t)x->rank * sizeof len[0]);
    shape_strides(x->rank, len, c->ds);
    for (int i = 0; i < x->rank; i++) {
        c->ss[i] = st[i] * step[i];
        c->so += start[i] * st[i];
    }
    return 0;
}
PLAN_OP(slice)

static const OpDef op_slice = {
    .name = "Slice", .domain = "", .since = 1,
    .min_inputs = 1, .max_inputs = 5, .min_outputs = 1, .max_outputs = 1,
    .infer = infer_slice, .fold = fold_slice, .emit = emit_slice,
    .grad = grad_slice,
    .summary = "strided slice with constant starts/ends/axes/steps",
};

/* ---------------------------------------------------------------- Expand */

static int infer_expand(Graph *g, Node *n, Diag *d)
{
    Value *x = data_input(g, n, d);
    if (!x)
        return -1;
    int64_t s[KD_MAX_RANK];
    int cnt = shape_ints(g, n, "shape", 1, 1, "shape", s, KD_MAX_RANK, d);
    if (cnt == -1)
        return -1;
    if (cnt == -2)
        return diag_error(d, n, "the shape input is missing");
    int r;
    int64_t dims[KD_MAX_RANK];
    if (broadcast_shapes(x->rank, x->dims, cnt, s, &r, dims)) {
        char sx[128];
        return diag_error(d, n, "input %s does not broadcast to the requested shape", value_type_str(x, sx, sizeof sx));
    }
    return set_out(g, n, 0, x->dtype, r, dims, d);
}

static int plan_expand(Graph *g, const Node *n, Plan *p, Diag *d)
{
    (void)d;
    const Value *x = node_in(g, n, 0), *y = node_out(g, n, 0);
    Copy *c = plan_copy(p, 0, 0, y->rank);
    if (!c)
        return -1;
    int64_t st[KD_MAX_RANK];
    shape_strides(x->rank, x->dims, st);
    memcpy(c->dims, y->dims, (size_t)y->rank * sizeof y->dims[0]);
    shape_strides(y->rank, y->dims, c->ds);
    int off = y->rank - x->rank;
    for (int i = 0; i < y->rank; i++)
        c->ss[i] = (i < off || x->dims[i - off] == 1) ? 0 : st[i - off];
    return 0;
}
PLAN_OP(expand)

static const OpDef op_expand = {
    .name = "Expand", .domain = "", .since = 8,
    .min_inputs = 2, .max_inputs = 2, .min_outputs = 1, .max_outputs = 1,
    .infer = infer_expand, .fold = fold_expand, .emit = emit_expand,
    .grad = grad_expand,
    .summary = "broadcast to a constant shape",
};

/* ---------------------------------------------------------------- Tile */

static int tile_repeats(Graph *g, const Node *n, const Value *x, int64_t *rep, Diag *d)
{
    int cnt = shape_ints(g, n, "repeats", 1, 1, "repeats", rep, KD_MAX_RANK, d);
    if (cnt == -1)
        return -1;
    if (cnt != x->rank)
        return diag_error(d, n, "repeats has %d values for an input of rank %d", cnt < 0 ? 0 : cnt, x->rank);
    for (int i = 0; i < cnt; i++)
        if (rep[i] < 0)
            return diag_error(d, n, "repeat %lld is negative", (long long)rep[i]);
        else if (rep[i] && x->dims[i] > INT64_MAX / rep[i])
            return diag_error(d, n, "repeat %lld of a dim of %lld overflows", (long long)rep[i], (long long)x->dims[i]);
    return 0;
}

static int infer_tile(Graph *g, Node *n, Diag *d)
{
    Value *x = data_input(g, n, d);
    if (!x)
        return -1;
    if (n->opset && n->opset < 6)
        return diag_unsupported(d, n, "Tile before opset 6 (tiles/axis inputs) is not supported");
    int64_t rep[KD_MAX_RANK], dims[KD_MAX_RANK];
    if (tile_repeats(g, n, x, rep, d))
        return -1;
    for (int i = 0; i < x->rank; i++)
        dims[i] = x->dims[i] * rep[i];
    return set_out(g, n, 0, x->dtype, x->rank, dims, d);
}

static int plan_tile(Graph *g, const Node *n, Plan *p, Diag *d)
{
    const Value *x = node_in(g, n, 0);
    int64_t rep[KD_MAX_RANK], st[KD_MAX_RANK];
    if (tile_repeats(g, n, x, rep, d))
        return -1;
    shape_strides(x->rank, x->dims, st);
    Copy *c = plan_copy(p, 0, 0, 2 * x->rank);
    if (!c)
        return -1;
    for (int i = 0; i < x->rank; i++) {
        c->dims[2 * i] = rep[i];
        c->dims[2 * i + 1] = x->dims[i];
        c->ss[2 * i] = 0;
        c->ss[2 * i + 1] = st[i];
    }
    shape_strides(2 * x->rank, c->dims, c->ds);
    return 0;
}
PLAN_OP(tile)

static const OpDef op_tile = {
    .name = "Tile", .domain = "", .since = 1,
    .min_inputs = 2, .max_inputs = 3, .min_outputs = 1, .max_outputs = 1,
    .infer = infer_tile, .fold = fold_tile, .emit = emit_tile,
    .summary = "repeat the input along each dim",
};

/* ---------------------------------------------------------------- Pad */

typedef struct PadSeg {
    int64_t out, len, src, step;
} PadSeg;

#define MAX_SEG 8

/* Pads per dim (begin, end) and the mode; constant value handled by the plan. */
static int pad_params(Graph *g, const Node *n, const Value *x, int64_t *pb, int64_t *pe, int *mode, Diag *d)
{
    int r = x->rank;
    int64_t pads[2 * KD_MAX_RANK], axes[KD_MAX_RANK];
    int cnt;
    if (n->opset && n->opset < 2)
        cnt = shape_ints(g, n, "paddings", -1, 1000, "pads", pads, 2 * KD_MAX_RANK, d);
    else
        cnt = shape_ints(g, n, "pads", 1, 11, "pads", pads, 2 * KD_MAX_RANK, d);
    if (cnt == -1)
        return -1;
    if (cnt == -2)
        return diag_error(d, n, "pads are missing");
    int na = -2;
    if (!n->opset || n->opset >= 18)
        na = shape_ints(g, n, "axes", 3, 18, "axes", axes, KD_MAX_RANK, d);
    if (na == -1)
        return -1;
    if (na == -2) {
        na = r;
        for (int i = 0; i < r; i++)
            axes[i] = i;
    }
    if (cnt != 2 * na)
        return diag_error(d, n, "pads has %d values; expected %d (2 per axis)", cnt, 2 * na);
    for (int i = 0; i < r; i++)
        pb[i] = pe[i] = 0;
    for (int k = 0; k < na; k++) {
        int a = norm_axis(d, n, axes[k], r);
        if (a < 0)
            return -1;
        pb[a] = pads[k];
        pe[a] = pads[na + k];
        if (x->dims[a] + pb[a] + pe[a] < 0)
            return diag_error(d, n, "pads %lld,%lld remove more than the %lld elements of axis %d",
                              (long long)pb[a], (long long)pe[a], (long long)x->dims[a], a);
    }
    const char *m = attr_string(n, "mode", "constant");
    if (strcmp(m, "constant") == 0)
        *mode = 0;
    else if (strcmp(m, "reflect") == 0)
        *mode = 1;
    else if (strcmp(m, "edge") == 0)
        *mode = 2;
    else if (strcmp(m, "wrap") == 0)
        *mode = 3;
    else
        return diag_error(d, n, "unknown pad mode '%s'", m);
    return 0;
}

/* Segments of one output dim: which source indices fill which output range. */
static int pad_segments(const Node *n, int64_t dim, int64_t b, int64_t e, int mode, PadSeg *s, Diag *d)
{
    int k = 0;
    /* the interior: source [max(-b,0), dim - max(-e,0)) at output max(b,0) */
    int64_t s0 = b < 0 ? -b : 0, s1 = dim - (e < 0 ? -e : 0);
    int64_t inner = s1 > s0 ? s1 - s0 : 0;
    int64_t ob = b > 0 ? b : 0, oe = e > 0 ? e : 0;
    if (inner)
        s[k++] = (PadSeg){ob, inner, s0, 1};
    if (mode == 0 || (!ob && !oe))
        return k;
    if (b < 0 || e < 0)
        return diag_unsupported(d, n, "negative pads with mode %s are not supported", attr_string(n, "mode", ""));
    if (dim == 0)
        return diag_error(d, n, "cannot pad an empty axis in mode %s", attr_string(n, "mode", ""));
    if (mode == 2) { /* edge */
        if (ob)
            s[k++] = (PadSeg){0, ob, 0, 0};
        if (oe)
            s[k++] = (PadSeg){ob + dim, oe, dim - 1, 0};
        return k;
    }
    if (mode == 1) { /* reflect: needs pads < dim */
        if (ob >= dim || oe >= dim)
            return diag_unsupported(d, n, "reflect pads of %lld,%lld for an axis of size %lld are not supported (must be smaller than the axis)",
                                    (long long)ob, (long long)oe, (long long)dim);
        if (ob)
            s[k++] = (PadSeg){0, ob, ob, -1};
        if (oe)
            s[k++] = (PadSeg){ob + dim, oe, dim - 2, -1};
        return k;
    }
    /* wrap */
    if (ob > dim || oe > dim)
        return diag_unsupported(d, n, "wrap pads of %lld,%lld for an axis of size %lld are not supported (must not exceed the axis)",
                                (long long)ob, (long long)oe, (long long)dim);
    if (ob)
        s[k++] = (PadSeg){0, ob, dim - ob, 1};
    if (oe)
        s[k++] = (PadSeg){ob + dim, oe, 0, 1};
    return k;
}

static int infer_pad(Graph *g, Node *n, Diag *d)
{
    Value *x = data_input(g, n, d);
    if (!x)
        return -1;
    int64_t pb[KD_MAX_RANK], pe[KD_MAX_RANK], dims[KD_MAX_RANK];
    int mode;
    if (pad_params(g, n, x, pb, pe, &mode, d))
        return -1;
    for (int i = 0; i < x->rank; i++) {
        PadSeg s[MAX_SEG];
        if (pad_segments(n, x->dims[i], pb[i], pe[i], mode, s, d) < 0)
            return -1;
        dims[i] = x->dims[i] + pb[i] + pe[i];
    }
    Value *cv = node_in(g, n, 2);
    if (cv && (!n->opset || n->opset >= 11)) {
        if (cv->dtype != x->dtype)
            return diag_error(d, n, "constant_value has type %s but the data has %s", dtype_name(cv->dtype), dtype_name(x->dtype));
        if (value_numel(cv) != 1)
            return diag_error(d, n, "constant_value must have one element");
    }
    return set_out(g, n, 0, x->dtype, x->rank, dims, d);
}

static int plan_pad(Graph *g, const Node *n, Plan *p, Diag *d)
{
    const Value *x = node_in(g, n, 0), *y = node_out(g, n, 0);
    int64_t pb[KD_MAX_RANK], pe[KD_MAX_RANK], xst[KD_MAX_RANK], yst[KD_MAX_RANK];
    int mode;
    if (pad_params(g, n, x, pb, pe, &mode, d))
        return -1;
    int r = x->rank;
    PadSeg seg[KD_MAX_RANK][MAX_SEG];
    int nseg[KD_MAX_RANK];
    int64_t total = 1;
    for (int i = 0; i < r; i++) {
        nseg[i] = pad_segments(n, x->dims[i], pb[i], pe[i], mode, seg[i], d);
        if (nseg[i] < 0)
            return -1;
        total *= nseg[i];
    }
    if (total > 4096)
        return diag_unsupported(d, n, "this padding needs %lld copies; at most 4096 are supported", (long long)total);
    /* constant mode: fill everything first unless the interior covers the output */
    int grows = 0;
    for (int i = 0; i < r; i++)
        grows |= pb[i] > 0 || pe[i] > 0;
    if (mode == 0 && grows) {
        int in = -1;
        double v = 0;
        if (n->opset && n->opset < 11)
            v = attr_float(n, "value", 0.0);
        else if (node_in(g, n, 2))
            in = 2;
        if (in >= 0 && value_is_const(node_in(g, n, 2))) {
            if (plan_fill(p, 0, -1, y->dtype, 0))
                return -1;
            memcpy(p->fills[p->nfills - 1].lit, node_in(g, n, 2)->data, dtype_size(y->dtype));
        } else if (plan_fill(p, 0, in, y->dtype, v))
            return -1;
    }
    if (!total)
        return 0;
    shape_strides(r, x->dims, xst);
    shape_strides(r, y->dims, yst);
    int idx[KD_MAX_RANK] = {0};
    for (int64_t t = 0; t < total; t++) {
        Copy *c = plan_copy(p, 0, 0, r);
        if (!c)
            return -1;
        for (int i = 0; i < r; i++) {
            const PadSeg *s = &seg[i][idx[i]];
            c->dims[i] = s->len;
            c->ss[i] = xst[i] * s->step;
            c->ds[i] = yst[i];
            c->so += s->src * xst[i];
            c->doff += s->out * yst[i];
        }
        for (int i = r - 1; i >= 0; i--) {
            if (++idx[i] < nseg[i])
                break;
            idx[i] = 0;
        }
    }
    return 0;
}
PLAN_OP(pad)

static const OpDef op_pad = {
    .name = "Pad", .domain = "", .since = 1,
    .min_inputs = 1, .max_inputs = 4, .min_outputs = 1, .max_outputs = 1,
    .infer = infer_pad, .fold = fold_pad, .emit = emit_pad,
    .grad = grad_pad,
    .summary = "pad with a constant, reflection, edge or wrap",
};

/* ---------------------------------------------------------------- DepthToSpace / SpaceToDepth */

static int infer_d2s(Graph *g, Node *n, Diag *d)
{
    Value *x = data_input(g, n, d);
    if (!x)
        return -1;
    int64_t b = attr_int(n, "blocksize", 0);
    if (x->rank != 4)
        return diag_error(d, n, "input must have rank 4, not %d", x->rank);
    if (b <= 0)
        return diag_error(d, n, "blocksize must be positive");
    int64_t dims[4];
    if (strcmp(n->op_type, "DepthToSpace") == 0) {
        const char *mode = attr_string(n, "mode", "DCR");
        if (strcmp(mode, "DCR") && strcmp(mode, "CRD"))
            return diag_error(d, n, "unknown mode '%s'", mode);
        if (x->dims[1] % (b * b))
            return diag_error(d, n, "channels %lld are not divisible by blocksize^2 = %lld", (long long)x->dims[1], (long long)(b * b));
        dims[0] = x->dims[0];
        dims[1] = x->dims[1] / (b * b);
        dims[2] = x->dims[2] * b;
        dims[3] = x->dims[3] * b;
    } else {
        if (x->dims[2] % b || x->dims[3] % b)
            return diag_error(d, n, "height %lld and width %lld must be divisible by blocksize %lld",
                              (long long)x->dims[2], (long long)x->dims[3], (long long)b);
        dims[0] = x->dims[0];
        dims[1] = x->dims[1] * b * b;
        dims[2] = x->dims[2] / b;
        dims[3] = x->dims[3] / b;
    }
    return set_out(g, n, 0, x->dtype, 4, dims, d);
}

static int plan_d2s(Graph *g, const Node *n, Plan *p, Diag *d)
{
    (void)d;
    const Value *x = node_in(g, n, 0);
    int64_t b = attr_int(n, "blocksize", 0);
    int64_t N = x->dims[0], C = x->dims[1], H = x->dims[2], W = x->dims[3];
    Copy *c = plan_copy(p, 0, 0, 6);
    if (!c)
        return -1;
    if (strcmp(n->op_type, "DepthToSpace") == 0) {
        int64_t Co = C / (b * b);
        int64_t dims[6] = {N, Co, H, b, W, b};
        memcpy(c->dims, dims, sizeof dims);
        if (strcmp(attr_string(n, "mode", "DCR"), "DCR") == 0) {
            /* x viewed as [N, b1, b2, Co, H, W] */
            int64_t ss[6] = {C * H * W, H * W, W, b * Co * H * W, 1, Co * H * W};
            memcpy(c->ss, ss, sizeof ss);
        } else {
            /* x viewed as [N, Co, b1, b2, H, W] */
            int64_t ss[6] = {C * H * W, b * b * H * W, W, b * H * W, 1, H * W};
            memcpy(c->ss, ss, sizeof ss);
        }
    } else {
        /* x viewed as [N, C, H/b, b1, W/b, b2]; output order [N, b1, b2, C, H/b, W/b] */
        int64_t dims[6] = {N, b, b, C, H / b, W / b};
        int64_t ss[6] = {C * H * W, W, 1, H * W, b * W, b};
        memcpy(c->dims, dims, sizeof dims);
        memcpy(c->ss, ss, sizeof ss);
    }
    shape_strides(6, c->dims, c->ds);
    return 0;
}
PLAN_OP(d2s)

static const OpDef op_depth_to_space = {
    .name = "DepthToSpace", .domain = "", .since = 1,
    .min_inputs = 1, .max_inputs = 1, .min_outputs = 1, .max_outputs = 1,
    .infer = infer_d2s, .fold = fold_d2s, .emit = emit_d2s,
    .summary = "move channel blocks into space (DCR or CRD)",
};

static const OpDef op_space_to_depth = {
    .name = "SpaceToDepth", .domain = "", .since = 1,
    .min_inputs = 1, .max_inputs = 1, .min_outputs = 1, .max_outputs = 1,
    .infer = infer_d2s, .fold = fold_d2s, .emit = emit_d2s,
    .summary = "move spatial blocks into channels",
};

/* ---------------------------------------------------------------- gradients */

/* Concat: each input's gradient is its slab of dy along the axis. */
static int grad_concat(GradCtx *c)
{
    const Node *fn = c->n;
    if (c->dy[0] < 0)
        return 0;
    const Value *y = node_out(c->g, fn, 0);
    int axis = norm_axis(c->d, fn, attr_int(fn, "axis", fn->opset && fn->opset < 4 ? 1 : 0), y->rank);
    if (axis < 0)
        return -1;
    int64_t at = 0;
    for (int k = 0; k < fn->ninputs; k++) {
        const Value *x = node_in(c->g, fn, k);
        if (!x)
            continue;
        int64_t len = x->dims[axis], st = at, en = at + len, ax = axis;
        at += len;
        if (!c->need[k])
            continue;
        int ins[4] = {c->dy[0], g_const_ints(c, &st, 1), g_const_ints(c, &en, 1), g_const_ints(c, &ax, 1)};
        if ((c->dx[k] = g_done(c, g_new(c, "Slice", ins, 4, 1))) < 0)
            return -1;
    }
    return 0;
}

/* Split: the outputs' gradients joined along the axis (zeros for an output without one). */
static int grad_split(GradCtx *c)
{
    const Node *fn = c->n;
    if (!c->need[0])
        return 0;
    const Value *x = node_in(c->g, fn, 0);
    int axis = norm_axis(c->d, fn, attr_int(fn, "axis", 0), x->rank);
    if (axis < 0)
        return -1;
    int *ins = arena_array(c->g->arena, (size_t)fn->noutputs + 1, sizeof(int));
    if (!ins)
        return diag_error(c->d, fn, "out of memory");
    int nin = 0;
    for (int o = 0; o < fn->noutputs; o++) {
        const Value *y = node_out(c->g, fn, o);
        if (!y)
            return diag_unsupported(c->d, fn, "the gradient of a Split with an omitted output");
        if (c->dy[o] >= 0) {
            ins[nin++] = c->dy[o];
            continue;
        }
        if (value_numel(y) == 0)
            continue;
        int z[2] = {g_const_scalar(c, DT_FLOAT, 0), g_const_ints(c, y->dims, y->rank)};
        if ((ins[nin++] = g_done(c, g_new(c, "Expand", z, 2, 1))) < 0)
            return -1;
    }
    if (nin == 1) {
        c->dx[0] = ins[0];
        return 0;
    }
    Node *n = g_new(c, "Concat", ins, nin, 1);
    if (!n)
        return -1;
    g_attr_i(c, n, "axis", axis);
    c->dx[0] = g_done(c, n);
    return c->dx[0] < 0 ? -1 : 0;
}

/* kdcc.SliceGrad(dy) -> dx of shape `shape`: zeros, with dy written where Slice read
 * (dx[starts + k * steps] = dy[k] per dim). */
static int slice_grad_attrs(const Node *n, const int64_t **shape, const int64_t **starts, const int64_t **steps, Diag *d)
{
    int r = attr_ints(n, "shape", shape);
    if (r < 0 || r > KD_MAX_RANK || attr_ints(n, "starts", starts) != r || attr_ints(n, "steps", steps) != r)
        return diag_error(d, n, "SliceGrad needs shape, starts and steps of one length");
    return r;
}

static int infer_slice_grad(Graph *g, Node *n, Diag *d)
{
    Value *dy = data_input(g, n, d);
    if (!dy)
        return -1;
    const int64_t *shape, *starts, *steps;
    int r = slice_grad_attrs(n, &shape, &starts, &steps, d);
    if (r < 0)
        return -1;
    if (r != dy->rank)
        return diag_error(d, n, "dy has rank %d, the input %d", dy->rank, r);
    for (int i = 0; i < r; i++) {
        int64_t last = starts[i] + (dy->dims[i] - 1) * steps[i];
        if (dy->dims[i] > 0 && (starts[i] < 0 || starts[i] >= shape[i] || last < 0 || last >= shape[i]))
            return diag_error(d, n, "the slice of dim %d falls outside the input", i);
    }
    return set_out(g, n, 0, dy->dtype, r, shape, d);
}

static int plan_slice_grad(Graph *g, const Node *n, Plan *p, Diag *d)
{
    const Value *dy = node_in(g, n, 0), *dx = node_out(g, n, 0);
    const int64_t *shape, *starts, *steps;
    int r = slice_grad_attrs(n, &shape, &starts, &steps, d);
    if (r < 0)
        return -1;
    if (plan_fill(p, 0, -1, dx->dtype, 0))
        return -1;
    if (value_numel(dy) == 0)
        return 0;
    int64_t st[KD_MAX_RANK];
    shape_strides(r, dx->dims, st);
    Copy *c = plan_copy(p, 0, 0, r);
    if (!c)
        return -1;
    memcpy(c->dims, dy->dims, (size_t)r * sizeof dy->dims[0]);
    shape_strides(r, dy->dims, c->ss);
    for (int i = 0; i < r; i++) {
        c->ds[i] = st[i] * steps[i];
        c->doff += starts[i] * st[i];
    }
    return 0;
}
PLAN_OP(slice_grad)

static const OpDef op_slice_grad = {
    .name = "SliceGrad", .domain = "kdcc", .since = 1,
    .min_inputs = 1, .max_inputs = 1, .min_outputs = 1, .max_outputs = 1,
    .infer = infer_slice_grad, .fold = fold_slice_grad, .emit = emit_slice_grad,
    .summary = "gradient of Slice: dy scattered into zeros of the input's shape",
};

static int grad_slice(GradCtx *c)
{
    const Node *fn = c->n;
    if (c->dy[0] < 0 || !c->need[0])
        return 0;
    const Value *x = node_in(c->g, fn, 0);
    int64_t start[KD_MAX_RANK], step[KD_MAX_RANK], len[KD_MAX_RANK];
    if (slice_params(c->g, fn, x, start, step, len, c->d))
        return -1;
    Node *n = g_new(c, "kdcc.SliceGrad", &c->dy[0], 1, 1);
    if (!n)
        return -1;
    g_attr_ints(c, n, "shape", x->dims, x->rank);
    g_attr_ints(c, n, "starts", start, x->rank);
    g_attr_ints(c, n, "steps", step, x->rank);
    c->dx[0] = g_done(c, n);
    return c->dx[0] < 0 ? -1 : 0;
}

/* Expand: dy summed over the broadcast dims. */
static int grad_expand(GradCtx *c)
{
    if (c->dy[0] < 0 || !c->need[0])
        return 0;
    c->dx[0] = g_unbroadcast(c, c->dy[0], c->n->inputs[0]);
    return c->dx[0] < 0 ? -1 : 0;
}

/* Pad (constant mode): dx[i] = dy[i + begin], i.e. dy padded by the negated pads (which
 * crops what was added and fills zeros where pads cropped); the constant's gradient is
 * the sum of dy over the padding. */
static int grad_pad(GradCtx *c)
{
    const Node *fn = c->n;
    if (c->dy[0] < 0)
        return 0;
    const Value *x = node_in(c->g, fn, 0);
    int64_t pb[KD_MAX_RANK], pe[KD_MAX_RANK], neg[2 * KD_MAX_RANK];
    int mode;
    if (pad_params(c->g, fn, x, pb, pe, &mode, c->d))
        return -1;
    if (mode != 0)
        return diag_unsupported(c->d, fn, "the gradient of Pad in mode %s is not computed (constant mode only)",
                                attr_string(fn, "mode", ""));
    for (int i = 0; i < x->rank; i++) {
        neg[i] = -pb[i];
        neg[x->rank + i] = -pe[i];
    }
    int dx = -1;
    if (c->need[0] || (fn->ninputs > 2 && c->need[2])) {
        int ins[2] = {c->dy[0], g_const_ints(c, neg, 2 * x->rank)};
        if ((dx = g_done(c, g_new(c, "Pad", ins, 2, 1))) < 0)
            return -1;
    }
    if (c->need[0])
        c->dx[0] = dx;
    if (fn->ninputs > 2 && c->need[2]) {
        int t[2] = {c->dy[0], dx};
        for (int k = 0; k < 2; k++) {
            Node *r = g_new(c, "ReduceSum", &t[k], 1, 1);
            if (!r)
                return -1;
            g_attr_i(c, r, "keepdims", 0);
            if ((t[k] = g_done(c, r)) < 0)
                return -1;
        }
        int s = g_op2(c, "Sub", t[0], t[1]);
        if (s < 0 || (c->dx[2] = g_reshape_like(c, s, fn->inputs[2])) < 0)
            return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- Dropout while training */

/* kdcc.DropoutTrain(x, rng) -> (y, mask, rng'), attribute ratio: the training form
 * pass_train_mode gives Dropout. rng is a uint64 state value: element i is kept when
 * the top 24 bits of splitmix64(rng + (i + 1) * golden) are at least ratio * 2^24,
 * kept elements are scaled by 1 / (1 - ratio), and rng' = rng + numel * golden (the
 * same sequence continues at the next step, written over rng in place). The mask is
 * what the gradient, kdcc.DropoutGrad(dy, mask), applies again. */
#define DROPOUT_GOLDEN "UINT64_C(0x9E3779B97F4A7C15)"

static int dropout_ratio_ok(const Node *n, Diag *d)
{
    double r = attr_float(n, "ratio", 0.5);
    if (!(r >= 0 && r <= 1))
        return diag_error(d, n, "ratio %g is outside [0, 1]", r);
    return 0;
}

static int infer_dropout_train(Graph *g, Node *n, Diag *d)
{
    Value *x = need_input(g, n, 0, d), *s = x ? need_input(g, n, 1, d) : NULL;
    if (!s)
        return -1;
    if (x->dtype != DT_FLOAT && x->dtype != DT_DOUBLE)
        return err_dtype(d, n, "DropoutTrain", x->dtype);
    if (s->dtype != DT_UINT64 || value_numel(s) != 1)
        return diag_error(d, n, "the random state '%s' must be one uint64", s->name);
    if (dropout_ratio_ok(n, d))
        return -1;
    if (set_out(g, n, 0, x->dtype, x->rank, x->dims, d) || set_out(g, n, 1, DT_BOOL, x->rank, x->dims, d))
        return -1;
    return set_out(g, n, 2, DT_UINT64, s->rank, s->dims, d);
}

static int emit_dropout_train(Emitter *e, const Node *n, Diag *d)
{
    (void)d;
    Writer *w = e->w;
    const Value *x = node_in(e->g, n, 0);
    double r = attr_float(n, "ratio", 0.5);
    int64_t numel = value_numel(x);
    uint64_t thresh = (uint64_t)(r * 16777216.0 + 0.5);
    w_line(w, "const uint64_t s0 = x1[0];");
    em_for(w, "i", numel);
    w_line(w, "uint64_t z = s0 + (uint64_t)(i + 1) * %s;", DROPOUT_GOLDEN);
    w_line(w, "z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);");
    w_line(w, "z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);");
    w_line(w, "z ^= z >> 31;");
    w_line(w, "const bool keep = (z >> 40) >= UINT64_C(%llu);", (unsigned long long)thresh);
    if (node_out(e->g, n, 1))
        w_line(w, "y1[i] = keep;");
    w_printf(w, "y0[i] = keep ? x0[i] * ");
    em_literal(w, x->dtype, r < 1 ? 1.0 / (1.0 - r) : 0.0);
    w_puts(w, " : ");
    em_literal(w, x->dtype, 0);
    w_puts(w, ";\n");
    w_close(w);
    if (node_out(e->g, n, 2))
        w_line(w, "y2[0] = s0 + UINT64_C(%llu) * %s;", (unsigned long long)numel, DROPOUT_GOLDEN);
    return 0;
}

static int grad_dropout_train(GradCtx *c)
{
    const Node *fn = c->n;
    if (c->dy[0] < 0 || !c->need[0])
        return 0;
    if (fn->noutputs < 2 || fn->outputs[1] < 0)
        return diag_error(c->d, fn, "internal error: a training Dropout without its mask output");
    int ins[2] = {c->dy[0], fn->outputs[1]};
    Node *n = g_new(c, "kdcc.DropoutGrad", ins, 2, 1);
    if (!n)
        return -1;
    g_attr_f(c, n, "ratio", attr_float(fn, "ratio", 0.5));
    c->dx[0] = g_done(c, n);
    return c->dx[0] < 0 ? -1 : 0;
}

static const OpDef op_dropout_train = {
    .name = "DropoutTrain", .domain = "kdcc", .since = 1,
    .min_inputs = 2, .max_inputs = 2, .min_outputs = 1, .max_outputs = 3,
    .infer = infer_dropout_train, .emit = emit_dropout_train, .grad = grad_dropout_train,
    .summary = "Dropout while training: seeded masks from a uint64 state advanced in place",
};

static int infer_dropout_grad(Graph *g, Node *n, Diag *d)
{
    Value *dy = need_input(g, n, 0, d), *m = dy ? need_input(g, n, 1, d) : NULL;
    if (!m)
        return -1;
    if ((dy->dtype != DT_FLOAT && dy->dtype != DT_DOUBLE) || m->dtype != DT_BOOL || value_numel(m) != value_numel(dy))
        return diag_error(d, n, "DropoutGrad takes a float gradient and a bool mask of its size");
    if (dropout_ratio_ok(n, d))
        return -1;
    return set_out(g, n, 0, dy->dtype, dy->rank, dy->dims, d);
}

static int emit_dropout_grad(Emitter *e, const Node *n, Diag *d)
{
    (void)d;
    Writer *w = e->w;
    const Value *dy = node_in(e->g, n, 0);
    double r = attr_float(n, "ratio", 0.5);
    em_for(w, "i", value_numel(dy));
    w_printf(w, "y0[i] = x1[i] ? x0[i] * ");
    em_literal(w, dy->dtype, r < 1 ? 1.0 / (1.0 - r) : 0.0);
    w_puts(w, " : ");
    em_literal(w, dy->dtype, 0);
    w_puts(w, ";\n");
    w_close(w);
    return 0;
}

static const OpDef op_dropout_grad = {
    .name = "DropoutGrad", .domain = "kdcc", .since = 1,
    .min_inputs = 2, .max_inputs = 2, .min_outputs = 1, .max_outputs = 1,
    .infer = infer_dropout_grad, .emit = emit_dropout_grad,
    .summary = "gradient of training Dropout: dy * mask / (1 - ratio)",
};

const OpDef *const ops_shape[] = {
    &op_reshape, &op_flatten, &op_squeeze, &op_unsqueeze, &op_identity, &op_dropout,
    &op_transpose, &op_concat, &op_split, &op_slice, &op_expand, &op_tile, &op_pad,
    &op_depth_to_space, &op_space_to_depth,
    &op_gather, &op_gather_elements, &op_gather_nd, &op_scatter_elements, &op_scatter,
    &op_scatter_nd,
    &op_constant, &op_shape, &op_size, &op_constant_of_shape, &op_range,
    &op_trilu, &op_cumsum, &op_onehot, &op_reverse_sequence, &op_topk,
    &op_cumprod, &op_compress, &op_eye_like,
    &op_slice_grad, &op_dropout_train, &op_dropout_grad,
    NULL,
};

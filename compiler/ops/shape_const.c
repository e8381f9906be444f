/* Operators whose output is known at compile time: Constant, Shape, Size,
 * ConstantOfShape, Range. One compute function per operator gives dtype, shape and
 * data; infer, fold and emit all use it, so they always agree. Shape and Size need
 * only the input's static shape; the others need their inputs to be constants. */
#include "compiler/ops/shape_internal.h"

#include <math.h>
#include <string.h>

typedef struct CData {
    DType dt;
    int rank;
    int64_t dims[KD_MAX_RANK];
    void *data;     /* arena, numel elements (may be NULL when numel is 0) */
} CData;

typedef int (*ComputeFn)(Graph *g, const Node *n, CData *c, Diag *d);

static void *cdata_alloc(Graph *g, CData *c)
{
    int64_t n = dims_numel(c->rank, c->dims);
    size_t es = dtype_size(c->dt);
    if (n < 0 || !es)
        return NULL;
    c->data = arena_array(g->arena, (size_t)(n ? n : 1), es);
    return c->data;
}

static int infer_with(Graph *g, Node *n, Diag *d, ComputeFn f)
{
    CData c;
    memset(&c, 0, sizeof c);
    if (f(g, n, &c, d))
        return -1;
    value_set_shape(node_out(g, n, 0), c.dt, c.rank, c.dims);
    return 0;
}

static int fold_with(Graph *g, Node *n, Diag *d, ComputeFn f)
{
    CData c;
    memset(&c, 0, sizeof c);
    if (f(g, n, &c, d))
        return -1;
    Value *y = node_out(g, n, 0);
    void *p = value_make_const(g, y, c.dt, c.rank, c.dims);
    if (!p)
        return diag_error(d, n, "out of memory folding a constant");
    memcpy(p, c.data, y->nbytes);
    return 1;
}

static int emit_with(Emitter *e, const Node *n, Diag *d, ComputeFn f)
{
    CData c;
    memset(&c, 0, sizeof c);
    if (f((Graph *)e->g, n, &c, d))
        return -1;
    emit_const_data(e, 0, c.dt, c.data, dims_numel(c.rank, c.dims));
    return emit_done(e, n);
}

#define CONST_OP(x)                                                                          \
    static int infer_##x(Graph *g, Node *n, Diag *d) { return infer_with(g, n, d, compute_##x); } \
    static int fold_##x(Graph *g, Node *n, Diag *d) { return fold_with(g, n, d, compute_##x); }   \
    static int emit_##x(Emitter *e, const Node *n, Diag *d) { return emit_with(e, n, d, compute_##x); }

/* ---------------------------------------------------------------- Constant */

static int compute_constant(Graph *g, const Node *n, CData *c, Diag *d)
{
    const Attr *a;
    if (node_attr(n, "sparse_value"))
        return diag_unsupported(d, n, "sparse constants are not supported");
    if (node_attr(n, "value_string") || node_attr(n, "value_strings"))
        return diag_unsupported(d, n, "string constants are not supported");
    if ((a = node_attr(n, "value")) && a->type == AT_TENSOR && a->t) {
        const Tensor *t = a->t;
        if (!dtype_ctype(t->dtype) || !dtype_size(t->dtype))
            return diag_unsupported(d, n, "constant of element type %s is not supported", dtype_name(t->dtype));
        c->dt = t->dtype;
        c->rank = t->rank;
        memcpy(c->dims, t->dims, sizeof c->dims);
        if (!cdata_alloc(g, c))
            return diag_error(d, n, "constant has an invalid shape");
        size_t want = (size_t)dims_numel(c->rank, c->dims) * dtype_size(c->dt);
        if (t->nbytes < want || (want && !t->data))
            return diag_error(d, n, "constant tensor has %zu bytes of data; its shape needs %zu", t->nbytes, want);
        if (want)
            memcpy(c->data, t->data, want);
        return 0;
    }
    if ((a = node_attr(n, "value_float")) || (a = node_attr(n, "value_int"))) {
        int isf = strcmp(a->name, "value_float") == 0;
        c->dt = isf ? DT_FLOAT : DT_INT64;
        c->rank = 0;
        if (!cdata_alloc(g, c))
            return diag_error(d, n, "out of memory");
        if (isf)
            elem_set_f64(c->data, DT_FLOAT, 0, a->f);
        else
            elem_set_i64(c->data, DT_INT64, 0, a->i);
        return 0;
    }
    if ((a = node_attr(n, "value_floats")) || (a = node_attr(n, "value_ints"))) {
        int isf = strcmp(a->name, "value_floats") == 0;
        c->dt = isf ? DT_FLOAT : DT_INT64;
        c->rank = 1;
        c->dims[0] = a->n;
        if (!cdata_alloc(g, c))
            return diag_error(d, n, "out of memory");
        for (int i = 0; i < a->n; i++) {
            if (isf)
                elem_set_f64(c->data, DT_FLOAT, i, a->floats[i]);
            else
                elem_set_i64(c->data, DT_INT64, i, a->ints[i]);
        }
        return 0;
    }
    return diag_error(d, n, "has no value attribute");
}
CONST_OP(constant)

const OpDef op_constant = {
    .name = "Constant", .domain = "", .since = 1,
    .min_inputs = 0, .max_inputs = 0, .min_outputs = 1, .max_outputs = 1,
    .infer = infer_constant, .fold = fold_constant, .emit = emit_constant,
    .summary = "a constant tensor (value, value_float(s), value_int(s))",
};

/* ---------------------------------------------------------------- Shape, Size */

static int compute_shape(Graph *g, const Node *n, CData *c, Diag *d)
{
    Value *x = node_in(g, n, 0);
    if (!x || !value_shape_known(x)) {
        if (!need_input(g, n, 0, d))
            return -1;
    }
    int r = x->rank;
    int64_t s = attr_int(n, "start", 0), e = attr_int(n, "end", r);
    if (s < 0)
        s += r;
    if (e < 0)
        e += r;
    s = s < 0 ? 0 : s > r ? r : s;
    e = e < 0 ? 0 : e > r ? r : e;
    c->dt = DT_INT64;
    c->rank = 1;
    c->dims[0] = e > s ? e - s : 0;
    if (!cdata_alloc(g, c))
        return diag_error(d, n, "out of memory");
    for (int64_t i = s; i < e; i++)
        ((int64_t *)c->data)[i - s] = x->dims[i];
    return 0;
}
CONST_OP(shape)

const OpDef op_shape = {
    .name = "Shape", .domain = "", .since = 1,
    .min_inputs = 1, .max_inputs = 1, .min_outputs = 1, .max_outputs = 1,
    .infer = infer_shape, .fold = fold_shape, .emit = emit_shape,
    .summary = "the input's static shape (start/end) as int64",
};

static int compute_size(Graph *g, const Node *n, CData *c, Diag *d)
{
    Value *x = node_in(g, n, 0);
    if (!x || !value_shape_known(x)) {
        if (!need_input(g, n, 0, d))
            return -1;
    }
    c->dt = DT_INT64;
    c->rank = 0;
    if (!cdata_alloc(g, c))
        return diag_error(d, n, "out of memory");
    ((int64_t *)c->data)[0] = value_numel(x);
    return 0;
}
CONST_OP(size)

const OpDef op_size = {
    .name = "Size", .domain = "", .since = 1,
    .min_inputs = 1, .max_inputs = 1, .min_outputs = 1, .max_outputs = 1,
    .infer = infer_size, .fold = fold_size, .emit = emit_size,
    .summary = "the input's element count as int64",
};

/* ---------------------------------------------------------------- ConstantOfShape */

static int compute_constant_of_shape(Graph *g, const Node *n, CData *c, Diag *d)
{
    int cnt = shape_ints(g, n, "shape", 0, 0, "shape", c->dims, KD_MAX_RANK, d);
    if (cnt == -1)
        return -1;
    if (cnt < 0)
        return diag_error(d, n, "the shape input is missing");
    for (int i = 0; i < cnt; i++)
        if (c->dims[i] < 0)
            return diag_error(d, n, "shape has a negative dim %lld", (long long)c->dims[i]);
    c->rank = cnt;
    c->dt = DT_FLOAT;
    const Tensor *t = attr_tensor(n, "value");
    if (t) {
        if (dims_numel(t->rank, t->dims) != 1 || !t->data)
            return diag_error(d, n, "value must have exactly one element");
        if (!dtype_ctype(t->dtype) || !dtype_size(t->dtype))
            return diag_unsupported(d, n, "value of element type %s is not supported", dtype_name(t->dtype));
        c->dt = t->dtype;
    }
    if (!cdata_alloc(g, c))
        return diag_error(d, n, "output shape is invalid or too large");
    size_t es = dtype_size(c->dt);
    int64_t numel = dims_numel(c->rank, c->dims);
    if (t)
        for (int64_t i = 0; i < numel; i++)
            memcpy((unsigned char *)c->data + (size_t)i * es, t->data, es);
    return 0;
}
CONST_OP(constant_of_shape)

const OpDef op_constant_of_shape = {
    .name = "ConstantOfShape", .domain = "", .since = 9,
    .min_inputs = 1, .max_inputs = 1, .min_outputs = 1, .max_outputs = 1,
    .infer = infer_constant_of_shape, .fold = fold_constant_of_shape, .emit = emit_constant_of_shape,
    .summary = "a tensor of a constant shape filled with one value",
};

/* ---------------------------------------------------------------- Range */

static int compute_range(Graph *g, const Node *n, CData *c, Diag *d)
{
    static const char *const what[3] = {"start", "limit", "delta"};
    Value *v[3];
    for (int i = 0; i < 3; i++) {
        v[i] = need_const_input(g, n, i, what[i], d);
        if (!v[i])
            return -1;
        if (value_numel(v[i]) != 1)
            return diag_error(d, n, "%s must be a scalar", what[i]);
        if (v[i]->dtype != v[0]->dtype)
            return diag_error(d, n, "start, limit and delta have different element types");
    }
    DType dt = v[0]->dtype;
    if (dt == DT_BOOL || !dtype_ctype(dt))
        return err_dtype(d, n, "Range", dt);
    int64_t count;
    c->dt = dt;
    c->rank = 1;
    if (dtype_is_int(dt)) {
        int64_t s = const_get_i64(v[0], 0), l = const_get_i64(v[1], 0), t = const_get_i64(v[2], 0);
        if (t == 0)
            return diag_error(d, n, "delta is 0");
        double q = ceil(((double)l - (double)s) / (double)t);
        count = q > 0 ? (int64_t)q : 0;
        if (count > ((int64_t)1 << 40))
            return diag_error(d, n, "the range has too many elements");
        c->dims[0] = count;
        if (!cdata_alloc(g, c))
            return diag_error(d, n, "the range is too large");
        for (int64_t i = 0; i < count; i++)
            elem_set_i64(c->data, dt, i, s + i * t);
        return 0;
    }
    double s = const_get_f64(v[0], 0), l = const_get_f64(v[1], 0), t = const_get_f64(v[2], 0);
    if (t == 0 || !isfinite(s) || !isfinite(l) || !isfinite(t))
        return diag_error(d, n, "start, limit and delta must be finite and delta non-zero");
    double q = ceil((l - s) / t);
    if (q > (double)((int64_t)1 << 40))
        return diag_error(d, n, "the range has too many elements");
    count = q > 0 ? (int64_t)q : 0;
    c->dims[0] = count;
    if (!cdata_alloc(g, c))
        return diag_error(d, n, "the range is too large");
    for (int64_t i = 0; i < count; i++) {
        if (dt == DT_DOUBLE)
            elem_set_f64(c->data, dt, i, s + (double)i * t);
        else
            elem_set_f64(c->data, dt, i, (float)s + (float)i * (float)t);
    }
    return 0;
}
CONST_OP(range)

const OpDef op_range = {
    .name = "Range", .domain = "", .since = 11,
    .min_inputs = 3, .max_inputs = 3, .min_outputs = 1, .max_outputs = 1,
    .infer = infer_range, .fold = fold_range, .emit = emit_range,
    .summary = "start, start+delta, ... below limit (constant inputs)",
};

/* ---------------------------------------------------------------- EyeLike */

static int compute_eye_like(Graph *g, const Node *n, CData *c, Diag *d)
{
    Value *x = node_in(g, n, 0);
    if (!x || !value_shape_known(x)) {
        if (!need_input(g, n, 0, d))
            return -1;
    }
    if (x->rank != 2)
        return diag_error(d, n, "input must have rank 2, not %d", x->rank);
    const Attr *a = node_attr(n, "dtype");
    c->dt = a ? (DType)a->i : x->dtype;
    if (c->dt == DT_STRING || !dtype_ctype(c->dt) || !dtype_size(c->dt))
        return err_dtype(d, n, "EyeLike", c->dt);
    c->rank = 2;
    c->dims[0] = x->dims[0];
    c->dims[1] = x->dims[1];
    if (!cdata_alloc(g, c))
        return diag_error(d, n, "output shape is too large");
    int64_t k = attr_int(n, "k", 0);
    for (int64_t i = 0; i < c->dims[0]; i++) {
        int64_t j = i + k;
        if (j >= 0 && j < c->dims[1])
            elem_set_f64(c->data, c->dt, i * c->dims[1] + j, 1.0);
    }
    return 0;
}
CONST_OP(eye_like)

const OpDef op_eye_like = {
    .name = "EyeLike", .domain = "", .since = 9,
    .min_inputs = 1, .max_inputs = 1, .min_outputs = 1, .max_outputs = 1,
    .infer = infer_eye_like, .fold = fold_eye_like, .emit = emit_eye_like,
    .summary = "ones on the k-th diagonal of the input's 2-D shape",
};

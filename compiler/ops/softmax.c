/* Softmax, LogSoftmax, Hardmax.
 *
 * Axis semantics changed in opset 13: before, the input is coerced to 2-D at `axis`
 * (default 1) and each row of the flattened trailing block is normalised; from 13,
 * normalisation runs along the one axis (default -1). Both are a view
 * [outer, len, inner] (inner = 1 for the old semantics). Numerically stable: the
 * row maximum is subtracted before exponentiating.
 */
#include "compiler/ops/ops.h"

#include <inttypes.h>
#include <string.h>

/* [outer, len, inner] view of x for node n. */
static int softmax_view(const Node *n, const Value *x, int64_t *outer, int64_t *len, int64_t *inner, Diag *d)
{
    int old = n->opset > 0 && n->opset < 13;
    int ax = norm_axis(d, n, attr_int(n, "axis", old ? 1 : -1), x->rank);
    if (ax < 0)
        return -1;
    *outer = 1;
    *len = 1;
    *inner = 1;
    for (int i = 0; i < x->rank; i++) {
        if (i < ax)
            *outer *= x->dims[i];
        else if (i == ax || old)
            *len *= x->dims[i];
        else
            *inner *= x->dims[i];
    }
    return 0;
}

static int infer_softmax(Graph *g, Node *n, Diag *d)
{
    Value *x = need_input(g, n, 0, d);
    if (!x)
        return -1;
    if (x->rank == 0)
        return diag_error(d, n, "input must have rank >= 1");
    if (!dtype_is_float(x->dtype) && x->dtype != DT_FLOAT16 && x->dtype != DT_BFLOAT16)
        return err_dtype(d, n, n->op_type, x->dtype);
    int64_t o, l, i;
    if (softmax_view(n, x, &o, &l, &i, d))
        return -1;
    value_set_shape(node_out(g, n, 0), x->dtype, x->rank, x->dims);
    return 0;
}

enum { SM_SOFTMAX, SM_LOG, SM_HARD };

/* Normalising along a non-innermost axis (e.g. channels of NCHW): walk each
 * [len, inner] slab row by row with per-column running statistics in small local
 * arrays, so every inner loop is contiguous. Only for float/double, where y can
 * hold the exponentials. */
static int emit_softmax_columns(Emitter *e, int kind, int64_t outer, int64_t len, int64_t inner,
                                const char *ct, const char *fs, DType adt)
{
    Writer *w = e->w;
    em_for(w, "o", outer);
    w_line(w, "const %s *restrict xs = x0 + o * %" PRId64 ";", ct, len * inner);
    w_line(w, "%s *restrict ys = y0 + o * %" PRId64 ";", ct, len * inner);
    w_line(w, "%s m[%" PRId64 "];", ct, inner);
    if (kind == SM_HARD)
        w_line(w, "int64_t mi[%" PRId64 "];", inner);
    em_for(w, "i", inner);
    w_line(w, "m[i] = xs[i];");
    if (kind == SM_HARD)
        w_line(w, "mi[i] = 0;");
    w_close(w);
    w_open(w, "for (int64_t k = 1; k < %" PRId64 "; ++k)", len);
    em_for(w, "i", inner);
    w_line(w, "const %s v = xs[k * %" PRId64 " + i];", ct, inner);
    if (kind == SM_HARD) {
        w_line(w, "mi[i] = v > m[i] ? k : mi[i];");
    }
    w_line(w, "m[i] = v > m[i] ? v : m[i];");
    em_close(w, 2);
    if (kind == SM_HARD) {
        em_for(w, "k", len);
        em_for(w, "i", inner);
        w_printf(w, "ys[k * %" PRId64 " + i] = mi[i] == k ? ", inner);
        em_literal(w, adt, 1);
        w_puts(w, " : ");
        em_literal(w, adt, 0);
        w_puts(w, ";\n");
        em_close(w, 3);
        return 0;
    }
    w_line(w, "%s s[%" PRId64 "];", ct, inner);
    em_for(w, "i", inner);
    w_printf(w, "s[i] = ");
    em_literal(w, adt, 0);
    w_puts(w, ";\n");
    w_close(w);
    em_for(w, "k", len);
    em_for(w, "i", inner);
    if (kind == SM_SOFTMAX) {
        w_line(w, "const %s t = exp%s(xs[k * %" PRId64 " + i] - m[i]);", ct, fs, inner);
        w_line(w, "ys[k * %" PRId64 " + i] = t;", inner);
        w_line(w, "s[i] += t;");
    } else {
        w_line(w, "s[i] += exp%s(xs[k * %" PRId64 " + i] - m[i]);", fs, inner);
    }
    em_close(w, 2);
    if (kind == SM_LOG) {
        em_for(w, "i", inner);
        w_line(w, "s[i] = m[i] + log%s(s[i]);", fs);
        w_close(w);
    }
    em_for(w, "k", len);
    em_for(w, "i", inner);
    if (kind == SM_SOFTMAX)
        w_line(w, "ys[k * %" PRId64 " + i] /= s[i];", inner);
    else
        w_line(w, "ys[k * %" PRId64 " + i] = xs[k * %" PRId64 " + i] - s[i];", inner, inner);
    em_close(w, 3);
    return 0;
}

static int emit_softmax(Emitter *e, const Node *n, Diag *d)
{
    const Value *x = node_in(e->g, n, 0);
    Writer *w = e->w;
    int64_t outer, len, inner;
    if (softmax_view(n, x, &outer, &len, &inner, d))
        return -1;
    int kind = strcmp(n->op_type, "Softmax") == 0 ? SM_SOFTMAX : strcmp(n->op_type, "LogSoftmax") == 0 ? SM_LOG : SM_HARD;
    const char *ct = "float", *fs = "f", *ld = "", *st = "";
    DType adt = DT_FLOAT;
    int direct = 1; /* y can hold intermediate values of the compute type */
    switch (x->dtype) {
    case DT_FLOAT:
        break;
    case DT_DOUBLE:
        ct = "double";
        fs = "";
        adt = DT_DOUBLE;
        break;
    case DT_FLOAT16:
        e->prelude |= PRE_HALF;
        ld = "kd_h2f";
        st = "kd_f2h";
        direct = 0;
        break;
    case DT_BFLOAT16:
        e->prelude |= PRE_BF16;
        ld = "kd_bf2f";
        st = "kd_f2bf";
        direct = 0;
        break;
    default:
        return err_dtype(d, n, n->op_type, x->dtype);
    }
    if (outer * len * inner == 0)
        return 0;
    if (inner > 1 && inner <= 2048 && direct)
        return emit_softmax_columns(e, kind, outer, len, inner, ct, fs, adt);
    char xk[96], yk[96];
    if (inner == 1) {
        snprintf(xk, sizeof xk, "%s(x0[b + k])", ld);
        snprintf(yk, sizeof yk, "y0[b + k]");
    } else {
        snprintf(xk, sizeof xk, "%s(x0[b + k * %" PRId64 "])", ld, inner);
        snprintf(yk, sizeof yk, "y0[b + k * %" PRId64 "]", inner);
    }
    em_for(w, "o", outer);
    if (inner > 1) {
        em_for(w, "i", inner);
        w_line(w, "const int64_t b = o * %" PRId64 " + i;", len * inner);
    } else {
        w_line(w, "const int64_t b = o * %" PRId64 ";", len);
    }
    w_line(w, "%s m = %s(x0[b]);", ct, ld);
    if (kind == SM_HARD) {
        w_line(w, "int64_t mi = 0;");
        w_open(w, "for (int64_t k = 1; k < %" PRId64 "; ++k)", len);
        w_open(w, "if (%s > m)", xk);
        w_line(w, "m = %s;", xk);
        w_line(w, "mi = k;");
        w_close(w);
        w_close(w);
        em_for(w, "k", len);
        w_printf(w, "%s = %s(k == mi ? ", yk, st);
        em_literal(w, adt, 1);
        w_puts(w, " : ");
        em_literal(w, adt, 0);
        w_puts(w, ");\n");
        w_close(w);
    } else {
        w_open(w, "for (int64_t k = 1; k < %" PRId64 "; ++k)", len);
        w_line(w, "const %s v = %s;", ct, xk);
        w_line(w, "m = v > m ? v : m;");
        w_close(w);
        w_printf(w, "%s s = ", ct);
        em_literal(w, adt, 0);
        w_puts(w, ";\n");
        em_for(w, "k", len);
        if (kind == SM_SOFTMAX && direct) {
            w_line(w, "const %s t = exp%s(%s - m);", ct, fs, xk);
            w_line(w, "%s = t;", yk);
            w_line(w, "s += t;");
        } else {
            w_line(w, "s += exp%s(%s - m);", fs, xk);
        }
        w_close(w);
        if (kind == SM_LOG)
            w_line(w, "const %s ls = m + log%s(s);", ct, fs);
        em_for(w, "k", len);
        if (kind == SM_LOG)
            w_line(w, "%s = %s(%s - ls);", yk, st, xk);
        else if (direct)
            w_line(w, "%s /= s;", yk);
        else
            w_line(w, "%s = %s(exp%s(%s - m) / s);", yk, st, fs, xk);
        w_close(w);
    }
    if (inner > 1)
        w_close(w);
    w_close(w);
    return 0;
}

/* ---------------------------------------------------------------- gradients */

/* kdcc.SoftmaxGrad(y, dy) -> dx, from the forward output y, along the [outer, len, inner]
 * view given by `axis` and `legacy` (1: the opset < 13 coercion to 2-D at axis):
 *     Softmax:    dx = y * (dy - sum(dy * y))
 *     LogSoftmax: dx = dy - exp(y) * sum(dy)        (attribute log = 1) */
static int sg_view(const Node *n, const Value *y, int64_t *outer, int64_t *len, int64_t *inner, Diag *d)
{
    int old = attr_int(n, "legacy", 0) != 0;
    int ax = norm_axis(d, n, attr_int(n, "axis", -1), y->rank);
    if (ax < 0)
        return -1;
    *outer = *len = *inner = 1;
    for (int i = 0; i < y->rank; i++) {
        if (i < ax)
            *outer *= y->dims[i];
        else if (i == ax || old)
            *len *= y->dims[i];
        else
            *inner *= y->dims[i];
    }
    return 0;
}

static int sg_infer(Graph *g, Node *n, Diag *d)
{
    Value *y = need_input(g, n, 0, d), *dy = y ? need_input(g, n, 1, d) : NULL;
    if (!dy)
        return -1;
    if (y->dtype != DT_FLOAT || dy->dtype != DT_FLOAT || value_numel(y) != value_numel(dy) || y->rank == 0)
        return diag_error(d, n, "SoftmaxGrad takes float y and dy of one shape");
    int64_t o, l, i;
    if (sg_view(n, y, &o, &l, &i, d))
        return -1;
    value_set_shape(node_out(g, n, 0), DT_FLOAT, y->rank, y->dims);
    return 0;
}

static int sg_emit(Emitter *e, const Node *n, Diag *d)
{
    Writer *w = e->w;
    int64_t outer, len, inner;
    if (sg_view(n, node_in(e->g, n, 0), &outer, &len, &inner, d))
        return -1;
    int lg = attr_int(n, "log", 0) != 0;
    if (outer * len * inner == 0)
        return 0;
    const char *acc = lg ? "g" : "g * y";
    const char *res = lg ? "g - expf(y) * s" : "y * (g - s)";
    if (inner > 1 && inner <= 4096) {
        /* per-column sums in a local array: every inner loop is contiguous */
        em_for(w, "o", outer);
        w_line(w, "const int64_t b = o * %" PRId64 ";", len * inner);
        w_line(w, "float sc[%" PRId64 "];", inner);
        em_for(w, "i", inner);
        w_line(w, "sc[i] = 0.0f;");
        w_close(w);
        em_for(w, "k", len);
        em_for(w, "i", inner);
        w_line(w, "const float y = x0[b + k * %" PRId64 " + i], g = x1[b + k * %" PRId64 " + i];", inner, inner);
        w_line(w, "sc[i] += %s;", acc);
        w_line(w, "(void)y;");
        em_close(w, 2);
        em_for(w, "k", len);
        em_for(w, "i", inner);
        w_line(w, "const float y = x0[b + k * %" PRId64 " + i], g = x1[b + k * %" PRId64 " + i], s = sc[i];", inner, inner);
        w_line(w, "y0[b + k * %" PRId64 " + i] = %s;", inner, res);
        em_close(w, 3);
        return 0;
    }
    em_for(w, "o", outer);
    if (inner > 1) {
        em_for(w, "i", inner);
        w_line(w, "const int64_t b = o * %" PRId64 " + i;", len * inner);
    } else {
        w_line(w, "const int64_t b = o * %" PRId64 ";", len);
    }
    w_line(w, "float s = 0.0f;");
    em_for(w, "k", len);
    w_line(w, "const float y = x0[b + k * %" PRId64 "], g = x1[b + k * %" PRId64 "];", inner, inner);
    w_line(w, "s += %s;", acc);
    w_line(w, "(void)y;");
    w_close(w);
    em_for(w, "k", len);
    w_line(w, "const float y = x0[b + k * %" PRId64 "], g = x1[b + k * %" PRId64 "];", inner, inner);
    w_line(w, "y0[b + k * %" PRId64 "] = %s;", inner, res);
    w_close(w);
    em_close(w, inner > 1 ? 2 : 1);
    return 0;
}

static const OpDef op_softmax_grad = {
    .name = "SoftmaxGrad", .domain = "kdcc", .since = 1,
    .min_inputs = 2, .max_inputs = 2, .min_outputs = 1, .max_outputs = 1,
    .infer = sg_infer, .emit = sg_emit,
    /* both loops over a row read y[k] and dy[k] before the second stores dx[k] */
    .inplace = 3u,
    .summary = "gradient of Softmax / LogSoftmax from the output",
};

/* In place along the last axis (and the old 2-D coercion): each row is read whole
 * for its maximum, then the second loop reads x[k] before it stores y[k] and the
 * last one reads y[k] or x[k] before storing y[k]; a row's bytes are its own. Not
 * along another axis: emit_softmax_columns walks the slab through restrict pointers. */
static unsigned softmax_inplace(const Graph *g, const Node *n)
{
    const Value *x = node_in(g, n, 0);
    int64_t outer, len, inner;
    Diag quiet;
    diag_init(&quiet, NULL);
    if (!x || softmax_view(n, x, &outer, &len, &inner, &quiet))
        return 0;
    return inner == 1 ? 1u : 0u;
}

static int grad_softmax(GradCtx *c)
{
    Node *fn = c->n;
    if (c->dy[0] < 0 || !c->need[0])
        return 0;
    const Value *x = node_in(c->g, fn, 0);
    if (x->dtype != DT_FLOAT)
        return diag_unsupported(c->d, fn, "the gradient of %s is computed for float tensors only", fn->op_type);
    int old = fn->opset > 0 && fn->opset < 13;
    int ins[2] = {fn->outputs[0], c->dy[0]};
    Node *n = g_new(c, "kdcc.SoftmaxGrad", ins, 2, 1);
    if (!n)
        return -1;
    g_attr_i(c, n, "axis", attr_int(fn, "axis", old ? 1 : -1));
    g_attr_i(c, n, "legacy", old);
    g_attr_i(c, n, "log", strcmp(fn->op_type, "LogSoftmax") == 0);
    c->dx[0] = g_done(c, n);
    return c->dx[0] < 0 ? -1 : 0;
}

static const OpDef op_softmax = {
    .name = "Softmax", .domain = "", .since = 1,
    .min_inputs = 1, .max_inputs = 1, .min_outputs = 1, .max_outputs = 1,
    .infer = infer_softmax, .emit = emit_softmax, .grad = grad_softmax,
    .summary = "exp(x - max) / sum(exp(x - max)) along an axis",
    .inplace_if = softmax_inplace,
};

static const OpDef op_logsoftmax = {
    .name = "LogSoftmax", .domain = "", .since = 1,
    .min_inputs = 1, .max_inputs = 1, .min_outputs = 1, .max_outputs = 1,
    .infer = infer_softmax, .emit = emit_softmax, .grad = grad_softmax,
    .summary = "x - max - log(sum(exp(x - max))) along an axis",
    .inplace_if = softmax_inplace,
};

static const OpDef op_hardmax = {
    .name = "Hardmax", .domain = "", .since = 1,
    .min_inputs = 1, .max_inputs = 1, .min_outputs = 1, .max_outputs = 1,
    .infer = infer_softmax, .emit = emit_softmax,
    .summary = "1 at the first maximum along an axis, 0 elsewhere",
    .inplace_if = softmax_inplace,
};

const OpDef *const ops_softmax[] = {&op_softmax, &op_logsoftmax, &op_hardmax, &op_softmax_grad, NULL};

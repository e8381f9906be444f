/* Gradient rules of the elementwise family, and ActivationGrad: the derivative of a
 * unary activation, dx = dy * f'(x), as one elementwise loop. */
#include "compiler/ops/ops.h"

#include <string.h>

/* derivative expressions over x (input), g (incoming gradient), $1 $2 (attributes) */
static const struct {
    const char *op;
    const char *expr;
    const char *a1, *a2;
    double d1, d2;
} DERIV[] = {
    {"Relu", "(x > 0 ? g : 0.0f)", 0, 0, 0, 0},
    {"LeakyRelu", "(x > 0 ? g : $1 * g)", "alpha", 0, 0.01, 0},
    {"Sigmoid", "(g * (1.0f / (1.0f + expf(-x))) * (1.0f - 1.0f / (1.0f + expf(-x))))", 0, 0, 0, 0},
    {"Tanh", "(g * (1.0f - tanhf(x) * tanhf(x)))", 0, 0, 0, 0},
    {"Clip", "(x >= $1 && x <= $2 ? g : 0.0f)", "min", "max", -3.4028234663852886e38, 3.4028234663852886e38},
    {"HardSigmoid", "($1 * x + $2 > 0 && $1 * x + $2 < 1 ? $1 * g : 0.0f)", "alpha", "beta", 0.2, 0.5},
    {"HardSwish", "(x < -3 ? 0.0f : x > 3 ? g : g * (2 * x + 3) / 6)", 0, 0, 0, 0},
    {"Erf", "(g * 1.1283791670955126f * expf(-x * x))", 0, 0, 0, 0},
    {"Gelu", "(g * (0.5f * (1 + erff(x * 0.70710678118654752f)) + x * 0.3989422804014327f * expf(-0.5f * x * x)))", 0, 0, 0, 0},
    {"GeluTanh", "(g * (0.5f * (1 + tanhf(0.7978845608f * (x + 0.044715f * x * x * x))) + 0.5f * x * (1 - tanhf(0.7978845608f * (x + 0.044715f * x * x * x)) * tanhf(0.7978845608f * (x + 0.044715f * x * x * x))) * 0.7978845608f * (1 + 0.134145f * x * x)))", 0, 0, 0, 0},
    {"Elu", "(x > 0 ? g : g * $1 * expf(x))", "alpha", 0, 1, 0},
    {"Softplus", "(g / (1.0f + expf(-x)))", 0, 0, 0, 0},
    {"Exp", "(g * expf(x))", 0, 0, 0, 0},
    {"Log", "(g / x)", 0, 0, 0, 0},
    {"Sqrt", "(g * 0.5f / sqrtf(x))", 0, 0, 0, 0},
    {"Reciprocal", "(-g / (x * x))", 0, 0, 0, 0},
    {"Abs", "(x > 0 ? g : x < 0 ? -g : 0.0f)", 0, 0, 0, 0},
    {"Neg", "(-g)", 0, 0, 0, 0},
    {"Sin", "(g * cosf(x))", 0, 0, 0, 0},
    {"Cos", "(-g * sinf(x))", 0, 0, 0, 0},
    {"Softsign", "(g / ((1 + fabsf(x)) * (1 + fabsf(x))))", 0, 0, 0, 0},
};

static int deriv_index(const char *op)
{
    for (size_t i = 0; i < sizeof DERIV / sizeof DERIV[0]; i++)
        if (strcmp(DERIV[i].op, op) == 0)
            return (int)i;
    return -1;
}

static int ag_infer(Graph *g, Node *n, Diag *d)
{
    Value *x = need_input(g, n, 0, d), *dy = x ? need_input(g, n, 1, d) : NULL;
    if (!dy)
        return -1;
    if (x->dtype != DT_FLOAT || dy->dtype != DT_FLOAT || value_numel(x) != value_numel(dy))
        return diag_error(d, n, "ActivationGrad takes float x and dy of one size");
    if (deriv_index(attr_string(n, "op", "")) < 0)
        return diag_unsupported(d, n, "no derivative for activation '%s'", attr_string(n, "op", ""));
    value_set_shape(node_out(g, n, 0), DT_FLOAT, x->rank, x->dims);
    return 0;
}

static int ag_emit(Emitter *e, const Node *n, Diag *d)
{
    (void)d;
    int k = deriv_index(attr_string(n, "op", ""));
    Writer *w = e->w;
    em_for(w, "i", value_numel(node_in(e->g, n, 0)));
    w_line(w, "const float x = x0[i], g = x1[i];");
    const char *p = DERIV[k].expr;
    w_puts(w, "y0[i] = ");
    for (; *p; p++) {
        if (p[0] == '$' && (p[1] == '1' || p[1] == '2')) {
            const char *an = p[1] == '1' ? DERIV[k].a1 : DERIV[k].a2;
            double dv = p[1] == '1' ? DERIV[k].d1 : DERIV[k].d2;
            w_float(w, (float)attr_float(n, an, dv));
            p++;
        } else {
            char ch[2] = {*p, 0};
            w_puts(w, ch);
        }
    }
    w_puts(w, ";\n");
    w_line(w, "(void)x; (void)g;");
    w_close(w);
    return 0;
}

const OpDef op_activation_grad = {
    .name = "ActivationGrad", .domain = "kdcc", .since = 1,
    .min_inputs = 2, .max_inputs = 2, .min_outputs = 1, .max_outputs = 1,
    .infer = ag_infer, .emit = ag_emit,
    .summary = "dy * f'(x) for a unary activation f (attribute op)",
    .inplace = 3u, /* x0[i] and x1[i] are loaded before y0[i] is stored */
};

/* Clip's min/max come from inputs from opset 11: they must be constants to differentiate. */
static int clip_bounds(GradCtx *c, double *lo, double *hi)
{
    Node *n = c->n;
    *lo = -3.4028234663852886e38;
    *hi = 3.4028234663852886e38;
    if (n->opset < 11) {
        *lo = attr_float(n, "min", *lo);
        *hi = attr_float(n, "max", *hi);
        return 0;
    }
    for (int k = 1; k <= 2; k++) {
        Value *v = node_in(c->g, n, k);
        if (!v)
            continue;
        if (!value_is_const(v))
            return diag_unsupported(c->d, n, "Clip bounds computed at run time cannot be differentiated");
        if (k == 1)
            *lo = const_get_f64(v, 0);
        else
            *hi = const_get_f64(v, 0);
    }
    return 0;
}

int ew_grad(GradCtx *c)
{
    Node *n = c->n;
    const char *op = n->op_type;
    int x0 = n->inputs[0], x1 = n->ninputs > 1 ? n->inputs[1] : -1, dy = c->dy[0];
    if (dy < 0)
        return 0;
    if (!strcmp(op, "Add") || !strcmp(op, "Sub") || !strcmp(op, "Sum")) {
        for (int i = 0; i < n->ninputs; i++) {
            if (!c->need[i])
                continue;
            int g = (!strcmp(op, "Sub") && i == 1) ? g_op1(c, "Neg", dy) : dy;
            c->dx[i] = g < 0 ? -1 : g_unbroadcast(c, g, n->inputs[i]);
            if (c->dx[i] < 0)
                return -1;
        }
        return 0;
    }
    if (!strcmp(op, "Mean")) {
        int k = g_const_scalar(c, DT_FLOAT, 1.0 / n->ninputs);
        int g = g_op2(c, "Mul", dy, k);
        for (int i = 0; i < n->ninputs; i++)
            if (c->need[i] && (c->dx[i] = g_unbroadcast(c, g, n->inputs[i])) < 0)
                return -1;
        return 0;
    }
    if (!strcmp(op, "Mul")) {
        if (c->need[0] && (c->dx[0] = g_unbroadcast(c, g_op2(c, "Mul", dy, x1), x0)) < 0)
            return -1;
        if (c->need[1] && (c->dx[1] = g_unbroadcast(c, g_op2(c, "Mul", dy, x0), x1)) < 0)
            return -1;
        return 0;
    }
    if (!strcmp(op, "Div")) {
        int q = g_op2(c, "Div", dy, x1);
        if (c->need[0] && (c->dx[0] = g_unbroadcast(c, q, x0)) < 0)
            return -1;
        if (c->need[1]) { /* d(a/b)/db = -dy * y / b */
            int t = g_op2(c, "Mul", q, n->outputs[0]);
            if ((c->dx[1] = g_unbroadcast(c, g_op1(c, "Neg", t), x1)) < 0)
                return -1;
        }
        return 0;
    }
    if (!strcmp(op, "Identity")) {
        c->dx[0] = dy;
        return 0;
    }
    const char *dname = op;
    if (!strcmp(op, "Gelu") && !strcmp(attr_string(n, "approximate", "none"), "tanh"))
        dname = "GeluTanh";
    int k = deriv_index(dname);
    if (k < 0)
        return diag_unsupported(c->d, n, "%s has no gradient rule, so a model that trains through it cannot be "
                                         "differentiated", op);
    if (c->need[1] || (n->ninputs > 2 && c->need[2]))
        return diag_unsupported(c->d, n, "gradients of %s's bounds are not computed", op);
    int ins[2] = {x0, dy};
    Node *g = g_new(c, "kdcc.ActivationGrad", ins, 2, 1);
    if (!g)
        return -1;
    g_attr_s(c, g, "op", dname);
    if (DERIV[k].a1 && strcmp(op, "Clip") != 0)
        g_attr_f(c, g, DERIV[k].a1, attr_float(n, DERIV[k].a1, DERIV[k].d1));
    if (DERIV[k].a2 && strcmp(op, "Clip") != 0)
        g_attr_f(c, g, DERIV[k].a2, attr_float(n, DERIV[k].a2, DERIV[k].d2));
    if (!strcmp(op, "Clip")) {
        double lo, hi;
        if (clip_bounds(c, &lo, &hi))
            return -1;
        g_attr_f(c, g, "min", lo);
        g_attr_f(c, g, "max", hi);
    }
    c->dx[0] = g_done(c, g);
    return c->dx[0] < 0 ? -1 : 0;
}

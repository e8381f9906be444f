/* Gradient rules of the elementwise family, and ActivationGrad: the derivative of a
 * unary activation, dx = dy * f'(x), as one elementwise loop.
 *
 * The derivative expressions are written in one place (DERIV) and by one function
 * (act_grad_write): ActivationGrad's loop and the epilogue step "<op>Grad" that the
 * fusion pass puts on the node producing dy (compiler/ops/fused.h) write the same
 * expression, so fusing moves where it is computed, not how.
 *
 * Where f' is a function of f's output y (Relu, LeakyRelu and Elu with a positive
 * alpha: y > 0 exactly when x > 0; Sigmoid: y (1 - y); Tanh: 1 - y^2), the rule reads
 * y (ActivationGrad's attribute from_output = 1, steps "<op>GradY"): the output is
 * what the next layer reads and the weight gradient keeps anyway, and the
 * pre-activation then has the activation as its only reader, so in a training graph
 * too it is fused into the Conv/Gemm before it and never stored. */
#include "compiler/ops/fused.h"

#include <ctype.h>
#include <string.h>

/* derivative expressions over x (input; y where from_output: the output), g
 * (incoming gradient), $1 $2 (attributes); step: the epilogue step's name */
static const struct {
    const char *op, *step;
    int from_output;
    const char *expr;
    const char *a1, *a2;
    double d1, d2;
} DERIV[] = {
    {"Relu", "ReluGrad", 0, "(x > 0 ? g : 0.0f)", 0, 0, 0, 0},
    {"LeakyRelu", "LeakyReluGrad", 0, "(x > 0 ? g : $1 * g)", "alpha", 0, 0.01, 0},
    {"Sigmoid", "SigmoidGrad", 0, "(g * (1.0f / (1.0f + expf(-x))) * (1.0f - 1.0f / (1.0f + expf(-x))))", 0, 0, 0, 0},
    {"Tanh", "TanhGrad", 0, "(g * (1.0f - tanhf(x) * tanhf(x)))", 0, 0, 0, 0},
    {"Clip", "ClipGrad", 0, "(x >= $1 && x <= $2 ? g : 0.0f)", "min", "max", -3.4028234663852886e38, 3.4028234663852886e38},
    {"HardSigmoid", "HardSigmoidGrad", 0, "($1 * x + $2 > 0 && $1 * x + $2 < 1 ? $1 * g : 0.0f)", "alpha", "beta", 0.2, 0.5},
    {"HardSwish", "HardSwishGrad", 0, "(x < -3 ? 0.0f : x > 3 ? g : g * (2 * x + 3) / 6)", 0, 0, 0, 0},
    {"Erf", "ErfGrad", 0, "(g * 1.1283791670955126f * expf(-x * x))", 0, 0, 0, 0},
    {"Gelu", "GeluGrad", 0, "(g * (0.5f * (1 + erff(x * 0.70710678118654752f)) + x * 0.3989422804014327f * expf(-0.5f * x * x)))", 0, 0, 0, 0},
    {"GeluTanh", "GeluTanhGrad", 0, "(g * (0.5f * (1 + tanhf(0.7978845608f * (x + 0.044715f * x * x * x))) + 0.5f * x * (1 - tanhf(0.7978845608f * (x + 0.044715f * x * x * x)) * tanhf(0.7978845608f * (x + 0.044715f * x * x * x))) * 0.7978845608f * (1 + 0.134145f * x * x)))", 0, 0, 0, 0},
    {"Elu", "EluGrad", 0, "(x > 0 ? g : g * $1 * expf(x))", "alpha", 0, 1, 0},
    {"Softplus", "SoftplusGrad", 0, "(g / (1.0f + expf(-x)))", 0, 0, 0, 0},
    {"Exp", "ExpGrad", 0, "(g * expf(x))", 0, 0, 0, 0},
    {"Log", "LogGrad", 0, "(g / x)", 0, 0, 0, 0},
    {"Sqrt", "SqrtGrad", 0, "(g * 0.5f / sqrtf(x))", 0, 0, 0, 0},
    {"Reciprocal", "ReciprocalGrad", 0, "(-g / (x * x))", 0, 0, 0, 0},
    {"Abs", "AbsGrad", 0, "(x > 0 ? g : x < 0 ? -g : 0.0f)", 0, 0, 0, 0},
    {"Neg", "NegGrad", 0, "(-g)", 0, 0, 0, 0},
    {"Sin", "SinGrad", 0, "(g * cosf(x))", 0, 0, 0, 0},
    {"Cos", "CosGrad", 0, "(-g * sinf(x))", 0, 0, 0, 0},
    {"Softsign", "SoftsignGrad", 0, "(g / ((1 + fabsf(x)) * (1 + fabsf(x))))", 0, 0, 0, 0},
    /* from the output y (LeakyRelu and Elu: for a positive alpha only) */
    {"Relu", "ReluGradY", 1, "(y > 0 ? g : 0.0f)", 0, 0, 0, 0},
    {"LeakyRelu", "LeakyReluGradY", 1, "(y > 0 ? g : $1 * g)", "alpha", 0, 0.01, 0},
    {"Sigmoid", "SigmoidGradY", 1, "(g * y * (1.0f - y))", 0, 0, 0, 0},
    {"Tanh", "TanhGradY", 1, "(g * (1.0f - y * y))", 0, 0, 0, 0},
    {"Elu", "EluGradY", 1, "(y > 0 ? g : g * (y + $1))", "alpha", 0, 1, 0},
};

static int deriv_index(const char *op, int from_output)
{
    for (size_t i = 0; i < sizeof DERIV / sizeof DERIV[0]; i++)
        if (strcmp(DERIV[i].op, op) == 0 && DERIV[i].from_output == (from_output != 0))
            return (int)i;
    return -1;
}

/* the DERIV row of ActivationGrad node n */
static int node_deriv(const Node *n)
{
    return deriv_index(attr_string(n, "op", ""), (int)attr_int(n, "from_output", 0));
}

static int step_index(const char *step)
{
    for (size_t i = 0; i < sizeof DERIV / sizeof DERIV[0]; i++)
        if (strcmp(DERIV[i].step, step) == 0)
            return (int)i;
    return -1;
}

/* node n's $1 $2: its attributes or their defaults */
static void deriv_params(const Node *n, int k, double *p1, double *p2)
{
    *p1 = DERIV[k].a1 ? attr_float(n, DERIV[k].a1, DERIV[k].d1) : 0;
    *p2 = DERIV[k].a2 ? attr_float(n, DERIV[k].a2, DERIV[k].d2) : 0;
}

/* DERIV[k]'s expression with the identifiers x (or y) and g replaced by the C
 * expressions x and g (primary or postfix expressions) and $1 $2 by p1 p2 as float
 * literals */
static void deriv_write(Writer *w, int k, double p1, double p2, const char *x, const char *g)
{
    const char *p = DERIV[k].expr;
    while (*p) {
        if (p[0] == '$' && (p[1] == '1' || p[1] == '2')) {
            w_float(w, (float)(p[1] == '1' ? p1 : p2));
            p += 2;
        } else if (isalpha((unsigned char)*p) || *p == '_') {
            const char *s = p;
            while (isalnum((unsigned char)*p) || *p == '_')
                p++;
            if (p - s == 1 && (*s == 'x' || *s == 'y' || *s == 'g')) {
                w_puts(w, *s == 'g' ? g : x);
            } else {
                char id[32];
                snprintf(id, sizeof id, "%.*s", (int)(p - s), s);
                w_puts(w, id);
            }
        } else if (isdigit((unsigned char)*p) || (*p == '.' && isdigit((unsigned char)p[1]))) {
            const char *s = p; /* a number with its exponent and suffix: 1.0f, 1e-5f */
            while (isalnum((unsigned char)*p) || *p == '.' ||
                   ((*p == '+' || *p == '-') && (p[-1] == 'e' || p[-1] == 'E')))
                p++;
            char num[64];
            snprintf(num, sizeof num, "%.*s", (int)(p - s), s);
            w_puts(w, num);
        } else {
            char ch[2] = {*p++, 0};
            w_puts(w, ch);
        }
    }
}

int act_grad_step_known(const char *step)
{
    return step_index(step) >= 0;
}

void act_grad_write(Writer *w, const EpiStep *st, const char *x, const char *g)
{
    int k = step_index(st->op);
    if (k < 0)
        return; /* epilogue_read refuses unknown steps */
    w_puts(w, "a = ");
    deriv_write(w, k, st->p1, st->p2, x, g);
    w_puts(w, ";\n");
}

int act_grad_epilogue_step(const Graph *g, const Node *n, int chain, EpiStep *st)
{
    if (!n->domain || strcmp(n->domain, "kdcc") != 0 || strcmp(n->op_type, "ActivationGrad") != 0 ||
        n->ninputs != 2 || chain < 0 || n->inputs[1] != chain || n->inputs[0] == chain || n->noutputs != 1)
        return 0;
    int k = node_deriv(n);
    const Value *x = node_in(g, n, 0), *dy = &g->values[chain], *y = node_out(g, n, 0);
    if (k < 0 || !x || !y || x->dtype != DT_FLOAT || dy->dtype != DT_FLOAT || y->dtype != DT_FLOAT ||
        x->rank != dy->rank)
        return 0;
    for (int i = 0; i < x->rank; i++)
        if (x->dims[i] != dy->dims[i])
            return 0;
    memset(st, 0, sizeof *st);
    st->op = DERIV[k].step;
    deriv_params(n, k, &st->p1, &st->p2);
    st->operand = n->inputs[0];
    st->scalar = value_numel(x) == 1 && value_numel(y) != 1;
    return 1;
}

static int ag_infer(Graph *g, Node *n, Diag *d)
{
    Value *x = need_input(g, n, 0, d), *dy = x ? need_input(g, n, 1, d) : NULL;
    if (!dy)
        return -1;
    if (x->dtype != DT_FLOAT || dy->dtype != DT_FLOAT || value_numel(x) != value_numel(dy))
        return diag_error(d, n, "ActivationGrad takes float x and dy of one size");
    if (node_deriv(n) < 0)
        return diag_unsupported(d, n, "no derivative for activation '%s'%s", attr_string(n, "op", ""),
                                attr_int(n, "from_output", 0) ? " from its output" : "");
    value_set_shape(node_out(g, n, 0), DT_FLOAT, x->rank, x->dims);
    return 0;
}

static int ag_emit(Emitter *e, const Node *n, Diag *d)
{
    (void)d;
    int k = node_deriv(n);
    double p1, p2;
    deriv_params(n, k, &p1, &p2);
    Writer *w = e->w;
    em_for(w, "i", value_numel(node_in(e->g, n, 0)));
    w_line(w, "const float x = x0[i], g = x1[i];");
    w_puts(w, "y0[i] = ");
    deriv_write(w, k, p1, p2, "x", "g");
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
    int k = deriv_index(dname, 0);
    if (k < 0)
        return diag_unsupported(c->d, n, "%s has no gradient rule, so a model that trains through it cannot be "
                                         "differentiated", op);
    if (c->need[1] || (n->ninputs > 2 && c->need[2]))
        return diag_unsupported(c->d, n, "gradients of %s's bounds are not computed", op);
    /* from the output where f' is a function of it (the header) */
    int ky = deriv_index(dname, 1);
    if (ky >= 0 && (!DERIV[ky].a1 || attr_float(n, DERIV[ky].a1, DERIV[ky].d1) > 0) && n->outputs[0] >= 0)
        k = ky;
    int ins[2] = {DERIV[k].from_output ? n->outputs[0] : x0, dy};
    Node *g = g_new(c, "kdcc.ActivationGrad", ins, 2, 1);
    if (!g)
        return -1;
    g_attr_s(c, g, "op", dname);
    if (DERIV[k].from_output)
        g_attr_i(c, g, "from_output", 1);
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

/* Epilogues of fused nodes (see fused.h): reading and checking the attributes,
 * writing them, and the store statement every fused emitter shares. Also
 * kdcc.Fused: a chain of elementwise steps over one input, as one loop. */
#include "compiler/ops/fused.h"

#include <inttypes.h>
#include <string.h>

static int present_inputs(const Node *n)
{
    int nin = n->ninputs;
    while (nin > 0 && n->inputs[nin - 1] < 0)
        nin--;
    return nin;
}

int epilogue_read(const Graph *g, const Node *n, int first_operand, Epilogue *ep, Diag *d)
{
    memset(ep, 0, sizeof *ep);
    const Attr *a = node_attr(n, "epilogue");
    int nin = present_inputs(n);
    if (!a) {
        if (nin > first_operand)
            return diag_error(d, n, "has %d inputs but no epilogue that reads the ones after input %d", nin,
                              first_operand - 1);
        return 0;
    }
    if (a->type != AT_STRINGS)
        return diag_error(d, n, "attribute 'epilogue' must be a list of strings");
    if (a->n > EPI_MAX_STEPS)
        return diag_unsupported(d, n, "an epilogue of %d steps (kdcc takes up to %d)", a->n, EPI_MAX_STEPS);
    const Attr *p = node_attr(n, "epilogue_params");
    if (p && (p->type != AT_FLOATS || p->n != 2 * a->n))
        return diag_error(d, n, "attribute 'epilogue_params' must hold 2 floats per epilogue step (%d)", 2 * a->n);
    int k = first_operand;
    for (int i = 0; i < a->n; i++) {
        EpiStep *s = &ep->s[i];
        int binary;
        s->op = a->strings[i];
        if (!ew_epilogue_known(s->op, &binary))
            return diag_error(d, n, "epilogue step '%s' is not one kdcc knows", s->op);
        s->p1 = p ? p->floats[2 * i] : 0;
        s->p2 = p ? p->floats[2 * i + 1] : 0;
        s->operand = -1;
        if (binary) {
            const Value *v = node_in(g, n, k);
            if (!v)
                return diag_error(d, n, "epilogue step %d (%s) reads input %d, which is missing", i, s->op, k);
            s->operand = k++;
            s->scalar = value_numel(v) == 1;
        }
    }
    ep->n = a->n;
    if (nin > k)
        return diag_error(d, n, "has %d inputs; its epilogue reads inputs up to %d", nin, k - 1);
    return 0;
}

int epilogue_check(const Graph *g, const Node *n, const Epilogue *ep, const Value *y, Diag *d)
{
    if (ep->n && y->dtype != DT_FLOAT && y->dtype != DT_DOUBLE)
        return err_dtype(d, n, "an epilogue", y->dtype);
    for (int i = 0; i < ep->n; i++) {
        const EpiStep *s = &ep->s[i];
        if (act_grad_step_known(s->op) && y->dtype != DT_FLOAT)
            return err_dtype(d, n, "an activation derivative step", y->dtype);
        if (s->operand < 0)
            continue;
        const Value *v = node_in(g, n, s->operand);
        char sv[128], sy[128];
        if (!value_shape_known(v) || (value_numel(v) != value_numel(y) && value_numel(v) != 1))
            return diag_error(d, n, "epilogue operand '%s' %s has neither the output's element count %s nor one element",
                              v->name, value_type_str(v, sv, sizeof sv), value_type_str(y, sy, sizeof sy));
        if (v->dtype != y->dtype)
            return diag_error(d, n, "epilogue operand '%s' is %s; the output is %s", v->name, dtype_name(v->dtype),
                              dtype_name(y->dtype));
    }
    return 0;
}

Attr *node_attr_own(Graph *g, Node *n, const char *name, AttrType t)
{
    if (!node_attr(n, name))
        return node_add_attr(g, n, name, t); /* a fresh array */
    Attr *na = arena_array(g->arena, (size_t)n->nattrs, sizeof(Attr));
    if (!na)
        return NULL;
    memcpy(na, n->attrs, (size_t)n->nattrs * sizeof(Attr));
    n->attrs = na;
    Attr *a = (Attr *)node_attr(n, name);
    a->type = t;
    return a;
}

static Attr *set_attr(Graph *g, Node *n, const char *name, AttrType t)
{
    return node_attr_own(g, n, name, t);
}

int epilogue_set_attrs(Graph *g, Node *n, const Epilogue *ep)
{
    Attr *a = set_attr(g, n, "epilogue", AT_STRINGS);
    const char **s = arena_array(g->arena, (size_t)ep->n + 1, sizeof(char *));
    if (!a || !s)
        return -1;
    for (int i = 0; i < ep->n; i++)
        s[i] = ep->s[i].op;
    a->strings = s;
    a->n = ep->n;
    Attr *p = set_attr(g, n, "epilogue_params", AT_FLOATS);
    double *f = arena_array(g->arena, 2 * (size_t)ep->n + 1, sizeof(double));
    if (!p || !f)
        return -1;
    for (int i = 0; i < ep->n; i++) {
        f[2 * i] = ep->s[i].p1;
        f[2 * i + 1] = ep->s[i].p2;
    }
    p->floats = f;
    p->n = 2 * ep->n;
    return 0;
}

void epilogue_store(Writer *w, const Epilogue *ep, DType dt, const char *dst, const char *val, const char *idx)
{
    if (!ep || ep->n == 0) {
        w_line(w, "%s = %s;", dst, val);
        return;
    }
    w_open(w, "%s", "");
    w_line(w, "%s a = %s;", dt == DT_DOUBLE ? "double" : "float", val);
    for (int i = 0; i < ep->n; i++) {
        char b[160];
        if (ep->s[i].operand >= 0)
            snprintf(b, sizeof b, "x%d[%s]", ep->s[i].operand, ep->s[i].scalar ? "0" : idx);
        else
            b[0] = 0;
        ew_epilogue_write(w, &ep->s[i], dt, b);
    }
    w_line(w, "%s = a;", dst);
    w_close(w);
}

const char *fused_base_op(const Node *n)
{
    if (!n->domain || strcmp(n->domain, "kdcc") != 0)
        return NULL;
    if (strcmp(n->op_type, "FusedConv") == 0 || strcmp(n->op_type, "WinogradConv") == 0)
        return "Conv";
    if (strcmp(n->op_type, "FusedGemm") == 0)
        return "Gemm";
    if (strcmp(n->op_type, "FusedMatMul") == 0)
        return "MatMul";
    if (strcmp(n->op_type, "FusedConvInteger") == 0)
        return "ConvInteger";
    return NULL;
}

/* ---------------------------------------------------------------- kdcc.Fused */

static int infer_fused(Graph *g, Node *n, Diag *d)
{
    Value *x = need_input(g, n, 0, d);
    if (!x)
        return -1;
    for (int i = 1; i < n->ninputs; i++)
        if (node_in(g, n, i) && !need_input(g, n, i, d))
            return -1;
    if (x->dtype != DT_FLOAT && x->dtype != DT_DOUBLE)
        return err_dtype(d, n, "Fused", x->dtype);
    Epilogue ep;
    Value *y = node_out(g, n, 0);
    value_set_shape(y, x->dtype, x->rank, x->dims);
    if (epilogue_read(g, n, 1, &ep, d) || epilogue_check(g, n, &ep, y, d))
        return -1;
    return 0;
}

static int emit_fused(Emitter *e, const Node *n, Diag *d)
{
    Epilogue ep;
    const Value *y = node_out(e->g, n, 0);
    if (epilogue_read(e->g, n, 1, &ep, d))
        return -1;
    int64_t count = value_numel(y);
    if (count == 0) {
        for (int i = 0; i < n->ninputs; i++)
            if (node_in(e->g, n, i))
                w_line(e->w, "(void)x%d;", i);
        w_line(e->w, "(void)y0;");
        return 0;
    }
    em_for(e->w, "i", count);
    epilogue_store(e->w, &ep, y->dtype, "y0[i]", "x0[i]", "i");
    w_close(e->w);
    return 0;
}

const OpDef op_fused_elementwise = {
    .name = "Fused", .domain = "kdcc", .since = 1,
    .min_inputs = 1, .max_inputs = -1, .min_outputs = 1, .max_outputs = 1,
    .infer = infer_fused, .emit = emit_fused,
    /* element i of x0 and of every full-size operand is read before y0[i] is stored
     * (epilogue_store); scalar operands have one element, never the output's count */
    .inplace = ~0u,
    .summary = "a chain of elementwise steps (attribute epilogue) over input 0, as one loop (made by the fusion pass)",
};

/* Helpers for gradient rules: new nodes with fresh values, constants, unbroadcasting. */
#include "compiler/ops/ops.h"

#include <string.h>

#define GRAD_OPSET 18

Node *g_new(GradCtx *c, const char *op, const int *ins, int nin, int nout)
{
    int outs[8];
    if (nout > 8)
        return NULL;
    const char *base = c->n && c->n->name && c->n->name[0] ? c->n->name : (c->n ? c->n->op_type : "grad");
    for (int i = 0; i < nout; i++) {
        char hint[200];
        snprintf(hint, sizeof hint, "%.120s/grad/%.40s", base, op);
        outs[i] = graph_new_value(c->g, hint);
        if (outs[i] < 0) {
            diag_error(c->d, c->n, "out of memory");
            return NULL;
        }
    }
    char nm[200];
    snprintf(nm, sizeof nm, "%.120s/grad/%.40s", base, op);
    Node *n = graph_add_node(c->g, op, nm, ins, nin, outs, nout);
    if (!n) {
        diag_error(c->d, c->n, "out of memory");
        return NULL;
    }
    const char *dot = strchr(op, '.');
    if (dot) { /* "kdcc.DistillLossGrad" */
        n->domain = arena_strndup(c->g->arena, op, (size_t)(dot - op));
        n->op_type = arena_strdup(c->g->arena, dot + 1);
    }
    n->opset = GRAD_OPSET;
    return n;
}

void g_attr_i(GradCtx *c, Node *n, const char *name, int64_t v)
{
    Attr *a = node_add_attr(c->g, n, name, AT_INT);
    if (a)
        a->i = v;
}

void g_attr_f(GradCtx *c, Node *n, const char *name, double v)
{
    Attr *a = node_add_attr(c->g, n, name, AT_FLOAT);
    if (a)
        a->f = v;
}

void g_attr_s(GradCtx *c, Node *n, const char *name, const char *v)
{
    Attr *a = node_add_attr(c->g, n, name, AT_STRING);
    if (a) {
        a->s = arena_strdup(c->g->arena, v);
        a->slen = strlen(v);
    }
}

void g_attr_ints(GradCtx *c, Node *n, const char *name, const int64_t *v, int count)
{
    Attr *a = node_add_attr(c->g, n, name, AT_INTS);
    if (!a)
        return;
    a->ints = arena_array(c->g->arena, (size_t)(count ? count : 1), sizeof(int64_t));
    if (a->ints && count)
        memcpy(a->ints, v, (size_t)count * sizeof(int64_t));
    a->n = count;
}

int g_done(GradCtx *c, Node *n)
{
    if (!n)
        return -1;
    n->op = op_lookup(n->domain, n->op_type);
    if (!n->op) {
        diag_error(c->d, c->n, "internal error: gradient rule uses unknown operator %s", n->op_type);
        return -1;
    }
    if (n->op->infer(c->g, n, c->d))
        return -1;
    c->g->values[n->outputs[0]].producer = c->g->nnodes - 1;
    for (int j = 1; j < n->noutputs; j++)
        c->g->values[n->outputs[j]].producer = c->g->nnodes - 1;
    return n->outputs[0];
}

int g_op1(GradCtx *c, const char *op, int a)
{
    return g_done(c, g_new(c, op, &a, 1, 1));
}

int g_op2(GradCtx *c, const char *op, int a, int b)
{
    int ins[2] = {a, b};
    return g_done(c, g_new(c, op, ins, 2, 1));
}

int g_const_ints(GradCtx *c, const int64_t *v, int count)
{
    int id = graph_new_value(c->g, "grad_const");
    if (id < 0)
        return -1;
    int64_t dims[1] = {count};
    int64_t *p = value_make_const(c->g, &c->g->values[id], DT_INT64, 1, dims);
    if (!p)
        return -1;
    if (count)
        memcpy(p, v, (size_t)count * sizeof(int64_t));
    return id;
}

int g_const_scalar(GradCtx *c, DType dt, double v)
{
    int id = graph_new_value(c->g, "grad_const");
    if (id < 0)
        return -1;
    void *p = value_make_const(c->g, &c->g->values[id], dt, 0, NULL);
    if (!p)
        return -1;
    elem_set_f64(p, dt, 0, v);
    return id;
}

int g_reshape_like(GradCtx *c, int dy, int target)
{
    const Value *t = &c->g->values[target];
    const Value *y = &c->g->values[dy];
    int same = y->rank == t->rank;
    for (int i = 0; same && i < t->rank; i++)
        same = y->dims[i] == t->dims[i];
    if (same)
        return dy;
    int shape = g_const_ints(c, t->dims, t->rank);
    return g_op2(c, "Reshape", dy, shape);
}

int g_unbroadcast(GradCtx *c, int dy, int target)
{
    const Value *t = &c->g->values[target];
    const Value *y = &c->g->values[dy];
    int64_t axes[KD_MAX_RANK];
    int na = 0, off = y->rank - t->rank;
    for (int i = 0; i < y->rank; i++) {
        int64_t td = i - off >= 0 ? t->dims[i - off] : 1;
        if (td == 1 && y->dims[i] != 1)
            axes[na++] = i;
    }
    if (na == 0)
        return g_reshape_like(c, dy, target);
    int ax = g_const_ints(c, axes, na);
    int ins[2] = {dy, ax};
    Node *n = g_new(c, "ReduceSum", ins, 2, 1);
    if (!n)
        return -1;
    g_attr_i(c, n, "keepdims", 1);
    int s = g_done(c, n);
    return s < 0 ? -1 : g_reshape_like(c, s, target);
}

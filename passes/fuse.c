/* Fusion: BatchNormalization (inference) folded into the Conv before it, so the
 * normalisation costs nothing at run time: with s = scale / sqrt(var + eps),
 *     W'[oc] = W[oc] * s[oc],   b'[oc] = (b[oc] - mean[oc]) * s[oc] + bias[oc].
 * Only when the Conv's output feeds nothing but the BatchNormalization, every
 * parameter is constant, and the result is computed in double. */
#include "compiler/ops/ops.h"
#include "passes/passes.h"

#include <math.h>
#include <string.h>

static int uses_of(const Graph *g, int v)
{
    int n = 0;
    for (int i = 0; i < g->nnodes; i++) {
        const Node *nd = g->nodes[i];
        if (nd->dead)
            continue;
        for (int j = 0; j < nd->ninputs; j++)
            n += nd->inputs[j] == v;
    }
    for (int i = 0; i < g->noutputs; i++)
        n += g->outputs[i] == v;
    return n;
}

static int fold_bn(Graph *g, Node *conv, Node *bn, Diag *d)
{
    Value *w = node_in(g, conv, 1), *b = node_in(g, conv, 2);
    Value *sc = node_in(g, bn, 1), *bi = node_in(g, bn, 2), *mu = node_in(g, bn, 3), *var = node_in(g, bn, 4);
    if (!w || !sc || !bi || !mu || !var || !value_is_const(w) || (b && !value_is_const(b)) || !value_is_const(sc) ||
        !value_is_const(bi) || !value_is_const(mu) || !value_is_const(var) || w->dtype != DT_FLOAT)
        return 0;
    int64_t oc = w->dims[0], per = value_numel(w) / (oc ? oc : 1);
    if (value_numel(sc) != oc || value_numel(bi) != oc || value_numel(mu) != oc || value_numel(var) != oc ||
        (b && value_numel(b) != oc))
        return 0;
    double eps = attr_float(bn, "epsilon", 1e-5);
    char nm[512];
    snprintf(nm, sizeof nm, "%s/folded_weight", bn->name && bn->name[0] ? bn->name : w->name);
    int wid = graph_new_value(g, nm);
    snprintf(nm, sizeof nm, "%s/folded_bias", bn->name && bn->name[0] ? bn->name : w->name);
    int bid = graph_new_value(g, nm);
    if (wid < 0 || bid < 0)
        return diag_error(d, bn, "out of memory");
    w = node_in(g, conv, 1); /* the value table may have moved */
    b = node_in(g, conv, 2);
    sc = node_in(g, bn, 1), bi = node_in(g, bn, 2), mu = node_in(g, bn, 3), var = node_in(g, bn, 4);
    float *nw = value_make_const(g, &g->values[wid], DT_FLOAT, w->rank, w->dims);
    int64_t bd[1] = {oc};
    float *nb = value_make_const(g, &g->values[bid], DT_FLOAT, 1, bd);
    if (!nw || !nb)
        return diag_error(d, bn, "out of memory");
    for (int64_t o = 0; o < oc; o++) {
        double s = const_get_f64(sc, o) / sqrt(const_get_f64(var, o) + eps);
        for (int64_t k = 0; k < per; k++)
            nw[o * per + k] = (float)((double)((const float *)w->data)[o * per + k] * s);
        nb[o] = (float)(((b ? const_get_f64(b, o) : 0.0) - const_get_f64(mu, o)) * s + const_get_f64(bi, o));
    }
    int *ins = arena_array(g->arena, 3, sizeof(int));
    if (!ins)
        return diag_error(d, bn, "out of memory");
    ins[0] = conv->inputs[0];
    ins[1] = wid;
    ins[2] = bid;
    conv->inputs = ins;
    conv->ninputs = 3;
    conv->outputs[0] = bn->outputs[0];
    bn->dead = 1;
    return 1;
}

int pass_fuse(Graph *g, Diag *d)
{
    for (int i = 0; i < g->nnodes; i++) {
        Node *bn = g->nodes[i];
        if (bn->dead || strcmp(bn->op_type, "BatchNormalization") || (bn->domain && bn->domain[0]))
            continue;
        if (attr_int(bn, "training_mode", 0) || (bn->opset < 9 && attr_int(bn, "spatial", 1) == 0))
            continue;
        int nout = 0;
        for (int j = 0; j < bn->noutputs; j++)
            nout += bn->outputs[j] >= 0;
        Value *x = node_in(g, bn, 0);
        if (nout != 1 || !x || x->producer < 0 || x->is_output || uses_of(g, bn->inputs[0]) != 1)
            continue;
        Node *conv = g->nodes[x->producer];
        if (conv->dead || strcmp(conv->op_type, "Conv") || (conv->domain && conv->domain[0]) || conv->noutputs != 1)
            continue;
        int r = fold_bn(g, conv, bn, d);
        if (r < 0)
            return -1;
    }
    graph_compact(g);
    return 0;
}

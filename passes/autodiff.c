/* Reverse-mode automatic differentiation over the IR.
 *
 * From a scalar loss, walk the nodes backwards and ask each operator's gradient
 * rule (OpDef.grad) for the gradients of its inputs given those of its outputs;
 * gradients of a value used more than once are summed. Only values that depend
 * on a wanted parameter and that the loss depends on get gradients. The new
 * nodes are ordinary IR nodes, appended after the forward pass, so every later
 * pass (folding, fusion, planning) and the emitter treat them like any other. */
#include "compiler/ops/ops.h"
#include "passes/passes.h"

#include <string.h>

int pass_autodiff(Graph *g, int loss, const int *wrt, int nwrt, int *grads, Diag *d)
{
    int nv = g->nvalues, nn = g->nnodes;
    unsigned char *dep = arena_alloc(g->arena, (size_t)nv + 1);   /* depends on a wanted value */
    unsigned char *use = arena_alloc(g->arena, (size_t)nv + 1);   /* the loss depends on it */
    int *gr = arena_array(g->arena, (size_t)nv + 1, sizeof(int));
    if (!dep || !use || !gr)
        return diag_error(d, NULL, "out of memory");
    for (int i = 0; i < nwrt; i++)
        dep[wrt[i]] = 1;
    for (int i = 0; i < nn; i++) {
        Node *n = g->nodes[i];
        int any = 0;
        for (int j = 0; j < n->ninputs; j++)
            any |= n->inputs[j] >= 0 && dep[n->inputs[j]];
        for (int j = 0; any && j < n->noutputs; j++)
            if (n->outputs[j] >= 0)
                dep[n->outputs[j]] = 1;
    }
    use[loss] = 1;
    for (int i = nn - 1; i >= 0; i--) {
        Node *n = g->nodes[i];
        int any = 0;
        for (int j = 0; j < n->noutputs; j++)
            any |= n->outputs[j] >= 0 && use[n->outputs[j]];
        for (int j = 0; any && j < n->ninputs; j++)
            if (n->inputs[j] >= 0)
                use[n->inputs[j]] = 1;
    }
    for (int v = 0; v < nv; v++)
        gr[v] = -1;
    if (value_numel(&g->values[loss]) != 1)
        return diag_error(d, NULL, "the loss '%s' must be a single number to differentiate", g->values[loss].name);

    GradCtx c = {.g = g, .d = d};
    /* d loss / d loss = 1 */
    {
        Value *lv = &g->values[loss];
        int one = graph_new_value(g, "grad_seed");
        if (one < 0)
            return diag_error(d, NULL, "out of memory");
        void *p = value_make_const(g, &g->values[one], lv->dtype, lv->rank, lv->dims);
        if (!p)
            return diag_error(d, NULL, "out of memory");
        elem_set_f64(p, lv->dtype, 0, 1.0);
        gr[loss] = one;
    }
    for (int i = nn - 1; i >= 0; i--) {
        Node *n = g->nodes[i];
        if (n->dead)
            continue;
        int have = 0, want = 0;
        for (int j = 0; j < n->noutputs; j++)
            have |= n->outputs[j] >= 0 && gr[n->outputs[j]] >= 0;
        unsigned char need[64] = {0};
        int dx[64], dy[64];
        if (n->ninputs > 64 || n->noutputs > 64)
            return diag_unsupported(d, n, "too many inputs or outputs to differentiate");
        for (int j = 0; j < n->ninputs; j++) {
            int v = n->inputs[j];
            need[j] = v >= 0 && dep[v] && use[v] && dtype_is_float(g->values[v].dtype);
            want |= need[j];
            dx[j] = -1;
        }
        if (!have || !want)
            continue;
        if (!n->op->grad)
            return diag_unsupported(d, n, "%s has no gradient rule, so a model that trains through it cannot be "
                                          "differentiated", n->op_type);
        for (int j = 0; j < n->noutputs; j++)
            dy[j] = n->outputs[j] >= 0 ? gr[n->outputs[j]] : -1;
        c.n = n;
        c.dy = dy;
        c.dx = dx;
        c.need = need;
        if (n->op->grad(&c))
            return -1;
        for (int j = 0; j < n->ninputs; j++) {
            if (!need[j] || dx[j] < 0)
                continue;
            int v = n->inputs[j];
            if (gr[v] < 0) {
                gr[v] = dx[j];
            } else {
                int sum = g_op2(&c, "Add", gr[v], dx[j]);
                if (sum < 0)
                    return -1;
                gr[v] = sum;
            }
        }
    }
    for (int i = 0; i < nwrt; i++)
        grads[i] = gr[wrt[i]];
    return 0;
}

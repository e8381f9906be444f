/* Views: an operator that only re-labels its input's elements (OpDef.view) gets an
 * output that shares the input's storage, so it moves no data and needs no arena
 * bytes. Not when the output is a graph output (the caller's buffer must be
 * written) or the input is constant or state (its storage is not the arena's). */
#include "compiler/ops/ops.h"
#include "passes/passes.h"

int pass_alias(Graph *g, Diag *d)
{
    (void)d;
    for (int i = 0; i < g->nnodes; i++) {
        Node *n = g->nodes[i];
        if (!node_may_view(g, n))
            continue;
        int extra = 0;
        for (int j = 1; j < n->noutputs; j++)
            extra |= n->outputs[j] >= 0;
        Value *x = &g->values[n->inputs[0]];
        Value *y = n->outputs[0] >= 0 ? &g->values[n->outputs[0]] : NULL;
        if (extra || !y || y->is_output || y->alias_of >= 0 || value_bytes(x) != value_bytes(y))
            continue;
        if (x->role != VR_INTERMEDIATE && x->role != VR_INPUT)
            continue;
        y->alias_of = n->inputs[0];
    }
    return 0;
}

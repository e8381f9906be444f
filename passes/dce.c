/* Dead-code elimination: drop nodes none of whose outputs reach a graph output. */
#include "passes/passes.h"

int pass_dce(Graph *g, Diag *d)
{
    char *live = arena_alloc(g->arena, (size_t)g->nvalues + 1);
    if (!live)
        return diag_error(d, NULL, "out of memory");
    for (int i = 0; i < g->noutputs; i++)
        live[g->outputs[i]] = 1;
    /* writes into state (optimizer updates) are effects: they are kept */
    for (int v = 0; v < g->nvalues; v++)
        if (g->values[v].alias_of >= 0 && g->values[g->values[v].alias_of].role == VR_STATE)
            live[v] = 1;
    for (int i = g->nnodes - 1; i >= 0; i--) {
        Node *n = g->nodes[i];
        int used = 0;
        for (int j = 0; j < n->noutputs; j++)
            if (n->outputs[j] >= 0 && live[n->outputs[j]])
                used = 1;
        if (!used) {
            n->dead = 1;
            continue;
        }
        for (int j = 0; j < n->ninputs; j++)
            if (n->inputs[j] >= 0)
                live[n->inputs[j]] = 1;
    }
    graph_compact(g);
    return 0;
}

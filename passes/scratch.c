/* Scratch memory for node functions: an operator whose emitted code wants working
 * memory of its own (OpDef.scratch: a padded copy of a Conv's input planes, say)
 * gets it as one more output of its node, a float value live only while the node
 * runs. The memory planner then places it in the arena like any intermediate, so
 * it shares bytes with values that are dead at that point, --report and
 * NAME_WORKSPACE_BYTES count it, and the emitted code stays free of malloc and of
 * large stack arrays. Runs right before pass_plan; running it twice adds nothing.
 * A node that would need more than scratch_budget gets none: its emit function
 * then takes a path that works without. */
#include "compiler/ir/target.h"
#include "compiler/ops/ops.h"
#include "passes/passes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* live[i] = bytes of the arena values live at node i (plan_lifetimes' intervals,
 * scratch left out): what the arena holds there without kernel scratch. */
static void live_bytes(const Graph *g, const int *start, const int *end, int64_t *live)
{
    for (int i = 0; i <= g->nnodes; i++)
        live[i] = 0;
    for (int v = 0; v < g->nvalues; v++)
        if (!g->values[v].is_scratch && plan_in_arena(g, v, start) && end[v] >= start[v]) {
            int64_t b = ((int64_t)value_bytes(&g->values[v]) + 15) / 16 * 16;
            live[start[v]] += b;
            live[end[v] + 1] -= b;
        }
    for (int i = 1; i <= g->nnodes; i++)
        live[i] += live[i - 1];
}

/* How much scratch a node may have: no more than the target allows (none on a
 * Cortex-M4, where RAM is what the device lacks), and no more than either
 *   - the node's own inputs and outputs take, so that a kernel's copy can at most
 *     double what is live while it runs (an im2col panel of a 5x5 layer is 25
 *     times its input: mnist-8's 8->16 5x5 layer on 14x14 asked for 166 KB where
 *     its tensors take 19 KB, and the arena grew from 49 to 181 KiB), or
 *   - the headroom under the graph's peak: the arena must be as large as the most
 *     bytes live at any node anyway, so a node where fewer are live may fill the
 *     difference without growing it (ResNet-8's 64-channel 8x8 layers have 48 KB
 *     live under a 192 KB peak). */
int64_t pass_scratch_budget(const Graph *g, const Node *n)
{
    const Target *t = g->target ? g->target : target_default();
    int64_t io = 0;
    for (int i = 0; i < n->ninputs; i++) {
        const Value *v = node_in(g, n, i);
        if (v && v->role != VR_CONST)
            io += (int64_t)value_bytes(v);
    }
    for (int j = 0; j < n->noutputs; j++) {
        const Value *v = node_out(g, n, j);
        if (v && !v->is_scratch)
            io += (int64_t)value_bytes(v);
    }
    int64_t budget = io;
    int *start = malloc(sizeof(int) * (size_t)(g->nvalues + 1));
    int *end = malloc(sizeof(int) * (size_t)(g->nvalues + 1));
    int64_t *live = malloc(sizeof(int64_t) * (size_t)(g->nnodes + 1));
    if (start && end && live) {
        plan_lifetimes(g, start, end);
        live_bytes(g, start, end, live);
        int64_t peak = 0, here = -1;
        for (int i = 0; i < g->nnodes; i++) {
            peak = live[i] > peak ? live[i] : peak;
            if (g->nodes[i] == n)
                here = live[i];
        }
        if (here >= 0 && peak - here > budget)
            budget = peak - here;
    }
    free(start);
    free(end);
    free(live);
    return budget < t->max_scratch ? budget : t->max_scratch;
}

int pass_scratch(Graph *g, Diag *d) { return pass_scratch_within(g, -1, d); }

int pass_scratch_within(Graph *g, int64_t budget, Diag *d)
{
    for (int i = 0; i < g->nnodes; i++) {
        Node *n = g->nodes[i];
        if (!n->op || n->op->max_outputs < 0 || n->noutputs > n->op->max_outputs)
            continue;
        if (!n->op->scratch && !n->op->scratch_within)
            continue;
        int64_t b = budget >= 0 ? budget : pass_scratch_budget(g, n);
        int64_t bytes = n->op->scratch_within ? n->op->scratch_within(g, n, b) : n->op->scratch(g, n);
        if (bytes <= 0 || bytes > b)
            continue;   /* the kernel falls back to a path without scratch */
        char hint[160];
        snprintf(hint, sizeof hint, "%s.scratch", n->name && n->name[0] ? n->name : n->op_type);
        int v = graph_new_value(g, hint);
        int *outs = arena_array(g->arena, (size_t)n->noutputs + 1, sizeof(int));
        if (v < 0 || !outs)
            return diag_error(d, n, "out of memory");
        Value *val = &g->values[v];
        val->dtype = DT_FLOAT;
        val->rank = 1;
        val->dims[0] = (bytes + (int64_t)sizeof(float) - 1) / (int64_t)sizeof(float);
        val->role = VR_INTERMEDIATE;
        val->is_scratch = 1;
        val->producer = i;
        memcpy(outs, n->outputs, (size_t)n->noutputs * sizeof(int));
        outs[n->noutputs] = v;
        n->outputs = outs;
        n->noutputs++;
    }
    return 0;
}

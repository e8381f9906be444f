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
#include <string.h>

/* How much scratch a node may have: no more than the target allows (none on a
 * Cortex-M4, where RAM is what the device lacks), and no more than the node's own
 * inputs and outputs take, so that a kernel's copy can at most double what is live
 * while it runs. An im2col panel of a 5x5 layer is 25 times its input: mnist-8's
 * 8->16 5x5 layer on 14x14 asked for 166 KB where its tensors take 19 KB, and the
 * arena grew from 49 to 181 KiB. */
static int64_t scratch_budget(const Graph *g, const Node *n)
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
        if (v)
            io += (int64_t)value_bytes(v);
    }
    return io < t->max_scratch ? io : t->max_scratch;
}

int pass_scratch(Graph *g, Diag *d)
{
    for (int i = 0; i < g->nnodes; i++) {
        Node *n = g->nodes[i];
        if (!n->op || !n->op->scratch || n->op->max_outputs < 0 || n->noutputs > n->op->max_outputs)
            continue;
        int64_t bytes = n->op->scratch(g, n);
        if (bytes <= 0 || bytes > scratch_budget(g, n))
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

/* Shape inference, with constant folding as it goes. */
#include "compiler/ops/ops.h"
#include "passes/passes.h"

#include <inttypes.h>

/* Largest tensor kdcc will fold at compile time (elements), and the most bytes it folds in
 * one graph; past either, results stay computed at run time by the emitted code. */
#define FOLD_MAX_ELEMS (1 << 24)
#define FOLD_MAX_TOTAL_BYTES ((size_t)256 << 20)

int pass_infer(Graph *g, int fold, Diag *d)
{
    size_t folded = 0;
    for (int i = 0; i < g->nnodes; i++) {
        Node *n = g->nodes[i];
        if (n->dead)
            continue;
        if (!n->op && ops_resolve(g, d))
            return -1;
        if (n->op->infer(g, n, d))
            return -1;
        for (int j = 0; j < n->noutputs; j++) {
            Value *v = node_out(g, n, j);
            if (!v)
                continue;
            if (v->rank < 0 || v->dtype == DT_UNDEFINED)
                return diag_error(d, n, "internal error: shape inference left output '%s' without a type", v->name);
            if (v->rank > KD_MAX_RANK)
                return diag_unsupported(d, n, "output '%s' has rank %d (kdcc supports up to %d)", v->name, v->rank, KD_MAX_RANK);
            if (dims_numel(v->rank, v->dims) < 0)
                return diag_error(d, n, "output '%s' has a negative or overflowing shape", v->name);
        }
        if (fold && n->op->fold) {
            int small = 1;
            size_t bytes = 0;
            for (int j = 0; j < n->noutputs; j++) {
                Value *v = node_out(g, n, j);
                if (v && value_numel(v) > FOLD_MAX_ELEMS)
                    small = 0;
                bytes += v ? value_bytes(v) : 0;
            }
            if (folded + bytes > FOLD_MAX_TOTAL_BYTES)
                small = 0;
            if (!small)
                continue;
            int r = n->op->fold(g, n, d);
            if (r < 0)
                return -1;
            if (r > 0) {
                folded += bytes;
                for (int j = 0; j < n->noutputs; j++) {
                    Value *v = node_out(g, n, j);
                    if (v && !value_is_const(v))
                        return diag_error(d, n, "internal error: folding left output '%s' without data", v->name);
                    if (v)
                        v->producer = -1;
                }
                n->dead = 1;
            }
        }
    }
    graph_compact(g);
    return 0;
}

/* Passes: plain functions int pass(Graph *, Diag *), run by a small pass manager
 * that can dump the graph after any pass in the textual syntax. */
#ifndef KDCC_PASSES_H
#define KDCC_PASSES_H

#include "compiler/ir/ir.h"

/* Bind symbolic dims of graph inputs: "input=1x3x32x32" strings and/or a batch size
 * for the first dim of every input whose first dim is symbolic (batch > 0). */
typedef struct ShapeBinding {
    const char *name;     /* graph input name */
    int rank;
    int64_t dims[KD_MAX_RANK];
} ShapeBinding;

typedef struct PassOptions {
    const ShapeBinding *shapes;
    int nshapes;
    int64_t batch;        /* --batch N; 0 = not given */
    int fold;             /* constant folding on (default 1) */
    const char *dump_after; /* pass name, or NULL; "all" dumps after every pass */
    FILE *dump_to;
    /* how to dump (the textual-syntax printer lives in frontends; the CLI passes it in) */
    void (*dump)(const Graph *g, FILE *f);
} PassOptions;

int pass_bind(Graph *g, const PassOptions *o, Diag *d);   /* bind symbolic dims */
/* Shape inference for every node, in order; with fold, constant folding as it goes
 * (a later node's shape may depend on a folded value: Shape -> Gather -> Concat -> Reshape). */
int pass_infer(Graph *g, int fold, Diag *d);
int pass_dce(Graph *g, Diag *d);
/* Reverse-mode differentiation of the scalar value `loss` with respect to the values
 * wrt[0..nwrt-1]; grads[i] gets the id of d loss / d wrt[i], or -1 when the loss does
 * not depend on it. Shapes of the forward graph must be inferred. */
int pass_autodiff(Graph *g, int loss, const int *wrt, int nwrt, int *grads, Diag *d);          /* dead-code elimination */
int pass_plan(Graph *g, Diag *d);         /* memory planning: arena offsets */
int64_t plan_arena_bytes(const Graph *g); /* bytes of the arena after pass_plan */

/* Names of the passes run_pipeline runs, in order (for --dump-after): NULL-terminated. */
extern const char *const pipeline_passes[];
/* The standard inference pipeline: resolve ops, bind, infer+fold, dce, plan.
 * Dumps the graph after the pass named o->dump_after. */
int run_pipeline(Graph *g, const PassOptions *o, Diag *d);

#endif

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
    const struct Target *target; /* --target (compiler/ir/target.h); NULL = generic */
    /* run after the graph's operators are final and before scratch memory is sized
     * (the CLI's --tune); NULL = none */
    int (*before_scratch)(Graph *g, void *ctx, Diag *d);
    void *before_scratch_ctx;
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
int pass_fuse(Graph *g, Diag *d);         /* BatchNormalization folded into the Conv before it */
int pass_alias(Graph *g, Diag *d);        /* views: Reshape-like outputs share their input's storage */
int pass_scratch(Graph *g, Diag *d);      /* scratch memory of node functions (passes/scratch.c) */
/* The most scratch bytes node n may be given (passes/scratch.c): the target's limit, and its own
 * tensors' bytes or the headroom under the graph's peak of live bytes, whichever is more. */
int64_t pass_scratch_budget(const Graph *g, const Node *n);
/* pass_scratch with one budget for every node (budget >= 0; -1: each node's own). --tune
 * times a layer alone in a graph of its own, with the budget the layer has in the model. */
int pass_scratch_within(Graph *g, int64_t budget, Diag *d);
int pass_winograd(Graph *g, Diag *d);     /* 3x3 Conv with constant weights -> kdcc.WinogradConv (passes/winograd.c) */
int pass_layout(Graph *g, Diag *d);       /* constant weights in the order their kernel reads (passes/layout.c) */
int pass_plan(Graph *g, Diag *d);         /* memory planning: arena offsets */
int64_t plan_arena_bytes(const Graph *g); /* bytes of the arena after pass_plan */
/* The planner's lifetime model, for reports: start[v] is the node that first writes
 * value v, end[v] the last node that reads it, any view of it or any output written
 * over it in place (-1: not written, not read). Arrays of g->nvalues. */
void plan_lifetimes(const Graph *g, int *start, int *end);
/* After pass_plan: the value whose bytes v's producer wrote v over in place
 * (OpDef.inplace), or -1. Such a v shares that value's storage (alias_of) and has
 * no arena bytes of its own. */
int plan_inplace_of(const Graph *g, int v);
/* The same as plan_lifetimes with each in-place output a value of its own: the
 * value it overwrites ends where it is last read (or a view of it), not where the
 * storage they share ends. For reports that classify tensors by lifetime. */
void plan_value_lifetimes(const Graph *g, int *start, int *end);
/* 1 if the planner gives value v bytes of the arena (an intermediate that is not a
 * graph output, not a view, and is written), given start[] from plan_lifetimes. */
int plan_in_arena(const Graph *g, int v, const int *start);
/* The smallest arena any placement could use for this node order and lifetimes:
 * the largest sum of (unaligned) bytes of arena values live at one node, views and
 * in-place outputs free (they count in the storage they share). Also the sum of
 * all of them, in-place outputs included (a plan with no sharing), and where the
 * peak is. */
typedef struct PlanBound {
    int64_t bound;        /* max over nodes of the live bytes */
    int peak_node;        /* a node index where it is reached, -1 if nothing is live */
    int64_t sum;          /* every arena value and in-place output in its own buffer */
    int count;            /* arena values and in-place outputs */
} PlanBound;
int64_t plan_lower_bound(const Graph *g, PlanBound *b); /* -1 on out of memory */
/* The same with every in-place output counted as a buffer of its own (the bound
 * of a plan without in-place writing, for this node order). */
int64_t plan_lower_bound_separate(const Graph *g, PlanBound *b);

/* ---- training ---- */
typedef enum { OPT_SGD, OPT_ADAM, OPT_ADAMW } OptimKind;
typedef struct OptimOptions {
    OptimKind kind;
    double momentum;      /* SGD */
    int nesterov;         /* SGD */
    double beta1, beta2, epsilon;  /* Adam */
    double weight_decay;  /* L2 for SGD/Adam, decoupled for AdamW */
    double clip_norm;     /* > 0: clip gradients by global norm */
} OptimOptions;

/* One update per parameter (grads[i] < 0: skipped). Adds graph inputs "lr" (and "step"
 * for Adam, counting from 1) and zero-initialised state for the moments. The updates
 * write over the parameters and moments (alias_of). */
int pass_optimizer(Graph *g, const OptimOptions *o, const int *params, const int *grads, int n, Diag *d);

typedef struct TrainModeOptions {
    uint64_t seed;        /* for Dropout masks */
} TrainModeOptions;
/* Switch operators with a training behaviour to it: BatchNormalization uses batch
 * statistics and updates its running mean and variance (state, written in place);
 * Dropout draws seeded masks. Runs on the student before its weights become state. */
int pass_train_mode(Graph *g, const TrainModeOptions *o, Diag *d);

typedef struct TeacherSpec {
    Graph *g;             /* shapes inferred with the student's batch (or batch / parts) */
    double weight;        /* relative weight of its softened distribution */
    const char *output;   /* its logits output (NULL: the first output) */
    int parts;            /* > 1: g is bound to batch / parts samples; the step runs one copy of it
                             on each slice of the batch (one set of weights) and concatenates the
                             logits, so each copy's intermediates are cache-sized. 0 or 1: whole batch */
} TeacherSpec;
#define KD_MAX_TEACHER_PARTS 256

/* Running a frozen teacher in slices of the batch (passes/distill.c).
 * The most bytes of non-constant tensors one node of t reads and writes, per sample
 * of its batch (t's shapes inferred at that batch). */
int64_t distill_bytes_per_sample(const Graph *t, int64_t batch);
/* The sub-batch the step runs teacher t in: the largest divisor S of batch whose
 * S * distill_bytes_per_sample fits cache_bytes (the target's L2 per core times the
 * step's threads); batch itself (no split) when even one sample does not fit or
 * cache_bytes is 0. */
int64_t distill_sub_batch(const Graph *t, int64_t batch, int64_t cache_bytes);
/* 1 if a teacher bound at the whole batch (full) and at batch / parts (part), both
 * loaded from one model and inferred, compute each sample apart from the others, so
 * that parts copies of part on the batch's slices give full's logits: the graphs match
 * node for node, every non-constant tensor has the batch as its first dim (full's
 * = parts x part's, the rest equal) and every operator is one known to keep samples
 * apart along that dim (an axis or axes attribute or input off dim 0). 0 otherwise,
 * with the reason in why. */
int distill_split_ok(const Graph *full, const Graph *part, int parts, char *why, size_t whylen);

typedef struct DistillOptions {
    double T, alpha;
    int mse;              /* soft loss: MSE on logits instead of KL */
    int with_labels;      /* a labels input even when alpha = 1 */
    const char *student_output;
    const TeacherSpec *teachers;  /* none: soft targets come as an input (cached teachers) */
    int nteachers;
    OptimOptions opt;
    TrainModeOptions train_mode;
} DistillOptions;


/* Student inference graph (inferred, batch bound) -> its training step: inputs
 * x..., labels (int64[B]) when alpha < 1, soft_targets (float[B,C]) when the teachers
 * are cached, lr, step; outputs loss and the student's logits; the student's float
 * weights become trainable state updated in place. */
int pass_distill(Graph *g, const DistillOptions *o, Diag *d);

/* Names of the passes run_pipeline runs, in order (for --dump-after): NULL-terminated. */
extern const char *const pipeline_passes[];
/* The standard inference pipeline: resolve ops, bind, infer+fold, dce, plan.
 * Dumps the graph after the pass named o->dump_after. */
int run_pipeline(Graph *g, const PassOptions *o, Diag *d);

#endif

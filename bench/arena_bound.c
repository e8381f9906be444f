/* arena_bound MODEL [BATCH [TARGET [TUNE_FILE]]]: how good is kdcc's memory plan?
 *
 * Runs kdcc's inference pipeline (import, bind, infer+fold, fuse, winograd, dce,
 * alias, the register blocks of TUNE_FILE as `kdcc --tune-file` sets them, scratch,
 * plan) for TARGET (kdcc's --target; default generic) on MODEL and prints one line, tab-separated:
 *
 *     planned  lower_bound  sum_of_intermediates  n_intermediates
 *
 * planned      the arena bytes the planner chose (what NAME_WORKSPACE_BYTES says)
 * lower_bound  the largest sum of bytes of intermediates live at the same node,
 *              with the planner's own lifetime model (a value lives from the node
 *              that writes it to the last node that reads it or any view of it;
 *              views share their input's bytes and cost nothing) but with every
 *              output the planner wrote in place over its input counted as a
 *              buffer of its own: plan_lower_bound_separate (passes/plan.c), the
 *              figure `kdcc MODEL --report` prints as "without in place". No
 *              plan for this node order can use less without in-place reuse, so
 *              `planned` below it is what in-place writing saves. (The report's
 *              "lower bound" counts the in-place sharing; the plan meets that.)
 * sum          every intermediate in its own buffer (no sharing at all)
 *
 * Sizes are unaligned element bytes; the planner rounds each buffer up to 16
 * bytes, so planned may exceed the bound by up to 15 bytes per live value even
 * when the packing is perfect.
 *
 * A benchmark tool, not part of the compiler: it links the compiler's libraries.
 */
#include "compiler/cli/cli.h"
#include "compiler/ir/target.h"
#include "frontends/onnx.h"
#include "passes/passes.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

static int tune_hook(Graph *g, void *ctx, Diag *d) { return tune_graph(g, ctx, d); }

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 5) {
        fprintf(stderr, "usage: arena_bound MODEL [BATCH [TARGET [TUNE_FILE]]]\n");
        return 2;
    }
    int64_t batch = argc >= 3 ? strtoll(argv[2], NULL, 10) : 1;
    const Target *target = argc >= 4 ? target_find(argv[3]) : NULL;
    if (argc >= 4 && !target) {
        fprintf(stderr, "arena_bound: no target named '%s'\n", argv[3]);
        return 2;
    }
    Arena a;
    arena_init(&a);
    Diag d;
    diag_init(&d, argv[1]);
    ImportOptions io = {0};
    Graph *g = model_load(&a, argv[1], &io, &d);
    PassOptions po = {0};
    po.batch = batch;
    po.fold = 1;
    po.target = target;
    /* the register blocks of the benchmark's build: a block decides a Conv kernel's
     * scratch, which the plan counts */
    TuneOptions to = {.file = argc == 5 ? argv[4] : NULL};
    if (to.file) {
        po.before_scratch = tune_hook;
        po.before_scratch_ctx = &to;
    }
    if (!g || run_pipeline(g, &po, &d)) {
        diag_print(&d, stderr);
        arena_free(&a);
        return 1;
    }
    PlanBound b;
    if (plan_lower_bound_separate(g, &b) < 0) {
        fprintf(stderr, "arena_bound: out of memory\n");
        arena_free(&a);
        return 1;
    }
    printf("%" PRId64 "\t%" PRId64 "\t%" PRId64 "\t%d\n", plan_arena_bytes(g), b.bound, b.sum, b.count);
    arena_free(&a);
    return 0;
}

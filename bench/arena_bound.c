/* arena_bound MODEL [BATCH]: how good is kdcc's memory plan?
 *
 * Runs kdcc's inference pipeline (import, bind, infer+fold, dce, plan) on MODEL
 * and prints one line, tab-separated:
 *
 *     planned  lower_bound  sum_of_intermediates  n_intermediates
 *
 * planned      the arena bytes the planner chose (what NAME_WORKSPACE_BYTES says)
 * lower_bound  the largest sum of bytes of intermediates that are live at the same
 *              node index, with the planner's own lifetime model (a value lives
 *              from the node that writes it to the last node that reads it,
 *              inclusive; an unread output lives at its writing node). No plan
 *              for this node order can use less without in-place reuse.
 * sum          every intermediate in its own buffer (no sharing at all)
 *
 * Sizes are unaligned element bytes; the planner rounds each buffer up to 16
 * bytes, so planned may exceed the bound by up to 15 bytes per live value even
 * when the packing is perfect.
 *
 * A benchmark tool, not part of the compiler: it links the compiler's libraries.
 */
#include "frontends/onnx.h"
#include "passes/passes.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: arena_bound MODEL [BATCH]\n");
        return 2;
    }
    int64_t batch = argc == 3 ? strtoll(argv[2], NULL, 10) : 1;
    Arena a;
    arena_init(&a);
    Diag d;
    diag_init(&d, argv[1]);
    ImportOptions io = {0};
    Graph *g = model_load(&a, argv[1], &io, &d);
    PassOptions po = {0};
    po.batch = batch;
    po.fold = 1;
    if (!g || run_pipeline(g, &po, &d)) {
        diag_print(&d, stderr);
        arena_free(&a);
        return 1;
    }
    int nv = g->nvalues, nn = g->nnodes;
    int *start = calloc((size_t)nv + 1, sizeof(int));
    int *end = calloc((size_t)nv + 1, sizeof(int));
    int64_t *live = calloc((size_t)nn + 1, sizeof(int64_t));
    if (!start || !end || !live) {
        fprintf(stderr, "arena_bound: out of memory\n");
        return 1;
    }
    for (int v = 0; v < nv; v++)
        start[v] = end[v] = -1;
    for (int i = 0; i < nn; i++) {
        const Node *n = g->nodes[i];
        for (int j = 0; j < n->noutputs; j++)
            if (n->outputs[j] >= 0 && start[n->outputs[j]] < 0)
                start[n->outputs[j]] = i;
        for (int j = 0; j < n->ninputs; j++)
            if (n->inputs[j] >= 0)
                end[n->inputs[j]] = i;
    }
    int64_t sum = 0;
    int count = 0;
    for (int v = 0; v < nv; v++) {
        const Value *val = &g->values[v];
        if (val->role != VR_INTERMEDIATE || val->is_output || start[v] < 0)
            continue;
        int64_t bytes = (int64_t)value_bytes(val);
        int e = end[v] < start[v] ? start[v] : end[v];
        for (int i = start[v]; i <= e; i++)
            live[i] += bytes;
        sum += bytes;
        count++;
    }
    int64_t bound = 0;
    for (int i = 0; i < nn; i++)
        if (live[i] > bound)
            bound = live[i];
    printf("%" PRId64 "\t%" PRId64 "\t%" PRId64 "\t%d\n", plan_arena_bytes(g), bound, sum, count);
    free(start);
    free(end);
    free(live);
    arena_free(&a);
    return 0;
}

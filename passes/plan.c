/* Memory planning: every intermediate gets an offset in one arena. Values whose
 * lifetimes (first definition to last use, in node order) do not overlap may share
 * bytes. Placement is greedy by size, largest first, each at the lowest offset
 * that does not collide with an already placed value whose lifetime overlaps. */
#include "passes/passes.h"

#include <stdlib.h>

#define PLAN_ALIGN 16

typedef struct {
    int id;
    int start, end;   /* node indices: defined at start, last read at end */
    int64_t size;
    int64_t off;
} Item;

static int by_size_desc(const void *a, const void *b)
{
    const Item *x = a, *y = b;
    if (x->size != y->size)
        return x->size < y->size ? 1 : -1;
    return x->id - y->id; /* deterministic */
}

static int by_off(const void *a, const void *b)
{
    const Item *x = *(const Item *const *)a, *y = *(const Item *const *)b;
    return x->off < y->off ? -1 : x->off > y->off;
}

void plan_lifetimes(const Graph *g, int *start, int *end)
{
    int nv = g->nvalues;
    for (int v = 0; v < nv; v++) {
        start[v] = -1;
        end[v] = -1;
    }
    for (int i = 0; i < g->nnodes; i++) {
        const Node *n = g->nodes[i];
        for (int j = 0; j < n->noutputs; j++)
            if (n->outputs[j] >= 0 && start[n->outputs[j]] < 0)
                start[n->outputs[j]] = i;
        for (int j = 0; j < n->ninputs; j++)
            if (n->inputs[j] >= 0)
                end[n->inputs[j]] = i;
    }
    /* a value that shares another's storage keeps that storage alive while it is used */
    for (int v = 0; v < nv; v++) {
        int root = v;
        for (int hops = 0; g->values[root].alias_of >= 0 && hops < nv; hops++)
            root = g->values[root].alias_of;
        if (root != v && end[v] > end[root])
            end[root] = end[v];
    }
}

int plan_in_arena(const Graph *g, int v, const int *start)
{
    const Value *val = &g->values[v];
    return val->role == VR_INTERMEDIATE && !val->is_output && val->alias_of < 0 && start[v] >= 0;
}

int pass_plan(Graph *g, Diag *d)
{
    int nv = g->nvalues;
    Item *items = arena_array(g->arena, (size_t)nv + 1, sizeof(Item));
    int *start = arena_array(g->arena, (size_t)nv + 1, sizeof(int));
    int *end = arena_array(g->arena, (size_t)nv + 1, sizeof(int));
    Item **placed = arena_array(g->arena, 2 * (size_t)nv + 2, sizeof(Item *)); /* placed list + scratch */
    if (!items || !start || !end || !placed)
        return diag_error(d, NULL, "out of memory");
    for (int v = 0; v < nv; v++)
        g->values[v].offset = -1;
    plan_lifetimes(g, start, end);
    /* state values: one after another in the state buffer */
    int64_t soff = 0;
    for (int v = 0; v < nv; v++) {
        Value *val = &g->values[v];
        val->state_offset = -1;
        if (val->role != VR_STATE)
            continue;
        val->state_offset = soff;
        soff += ((int64_t)value_bytes(val) + PLAN_ALIGN - 1) / PLAN_ALIGN * PLAN_ALIGN;
    }
    int ni = 0;
    for (int v = 0; v < nv; v++) {
        Value *val = &g->values[v];
        if (!plan_in_arena(g, v, start))
            continue;
        Item *it = &items[ni++];
        it->id = v;
        it->start = start[v];
        it->end = end[v] < start[v] ? start[v] : end[v]; /* unused outputs still get written */
        it->size = ((int64_t)value_bytes(val) + PLAN_ALIGN - 1) / PLAN_ALIGN * PLAN_ALIGN;
        if (it->size == 0)
            it->size = PLAN_ALIGN; /* distinct addresses: restrict pointers must not coincide */
    }
    qsort(items, (size_t)ni, sizeof(Item), by_size_desc);
    int np = 0;
    for (int k = 0; k < ni; k++) {
        Item *it = &items[k];
        /* collect placed items whose lifetimes overlap, sorted by offset, and find the first gap */
        int nc = 0;
        for (int p = 0; p < np; p++)
            if (placed[p]->start <= it->end && it->start <= placed[p]->end)
                placed[np + nc++] = placed[p]; /* scratch space past the placed list */
        qsort(placed + np, (size_t)nc, sizeof(Item *), by_off);
        int64_t off = 0, best = -1, best_gap = INT64_MAX;
        for (int c = 0; c < nc; c++) {
            Item *o = placed[np + c];
            if (o->off - off >= it->size && o->off - off < best_gap) {
                best = off;
                best_gap = o->off - off;
            }
            if (o->off + o->size > off)
                off = o->off + o->size;
        }
        it->off = best >= 0 ? best : off;
        placed[np++] = it;
    }
    for (int k = 0; k < ni; k++)
        g->values[items[k].id].offset = items[k].off;
    return 0;
}

int64_t plan_arena_bytes(const Graph *g)
{
    int64_t top = 0;
    for (int v = 0; v < g->nvalues; v++) {
        const Value *val = &g->values[v];
        if (val->offset >= 0 && val->offset + (int64_t)value_bytes(val) > top)
            top = val->offset + (int64_t)value_bytes(val);
    }
    return top;
}

int64_t plan_lower_bound(const Graph *g, PlanBound *b)
{
    int nv = g->nvalues, nn = g->nnodes;
    int *start = malloc(((size_t)nv + 1) * sizeof(int));
    int *end = malloc(((size_t)nv + 1) * sizeof(int));
    int64_t *live = calloc((size_t)nn + 1, sizeof(int64_t));
    PlanBound r = {.peak_node = -1};
    if (!start || !end || !live) {
        free(start);
        free(end);
        free(live);
        return -1;
    }
    plan_lifetimes(g, start, end);
    for (int v = 0; v < nv; v++) {
        if (!plan_in_arena(g, v, start))
            continue;
        int64_t bytes = (int64_t)value_bytes(&g->values[v]);
        int e = end[v] < start[v] ? start[v] : end[v];
        for (int i = start[v]; i <= e; i++)
            live[i] += bytes;
        r.sum += bytes;
        r.count++;
    }
    for (int i = 0; i < nn; i++)
        if (live[i] > r.bound) {
            r.bound = live[i];
            r.peak_node = i;
        }
    free(start);
    free(end);
    free(live);
    if (b)
        *b = r;
    return r.bound;
}

/* Memory planning: every intermediate gets an offset in one arena. Values whose
 * lifetimes (first definition to last use, in node order) do not overlap may share
 * bytes. Placement is greedy by size, largest first, each at the lowest offset
 * that does not collide with an already placed value whose lifetime overlaps.
 *
 * In place: before placing, an operator that may write its output over an input
 * (OpDef.inplace: elementwise loops that read element i before writing element i)
 * gets that input's bytes for its output when the input dies at that node. The
 * output then shares the input's storage like a view (Value.alias_of), so it needs
 * no bytes of its own, and the storage lives until the last use of either. */
#include "compiler/ops/ops.h"
#include "passes/passes.h"

#include <stdlib.h>
#include <string.h>

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

/* separate: an in-place output is storage of its own (its input's lifetime does not
 * grow with it), as if the planner had not written it in place */
static void lifetimes(const Graph *g, int *start, int *end, int separate)
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
    /* a value that shares another's storage keeps that storage alive while it is used:
     * every value it shares through (a view of an in-place output of x: both) */
    for (int v = 0; v < nv; v++) {
        int u = v;
        for (int hops = 0; g->values[u].alias_of >= 0 && hops < nv; hops++) {
            if (separate && plan_inplace_of(g, u) >= 0)
                break;
            u = g->values[u].alias_of;
            if (end[v] > end[u])
                end[u] = end[v];
        }
    }
}

void plan_lifetimes(const Graph *g, int *start, int *end)
{
    lifetimes(g, start, end, 0);
}

void plan_value_lifetimes(const Graph *g, int *start, int *end)
{
    lifetimes(g, start, end, 1);
}

int plan_in_arena(const Graph *g, int v, const int *start)
{
    const Value *val = &g->values[v];
    return val->role == VR_INTERMEDIATE && !val->is_output && val->alias_of < 0 && start[v] >= 0;
}

static unsigned inplace_mask(const Graph *g, const Node *n)
{
    if (!n->op || n->noutputs < 1 || n->outputs[0] < 0 || node_is_view(g, n))
        return 0;
    return n->op->inplace_if ? n->op->inplace_if(g, n) : n->op->inplace;
}

int plan_inplace_of(const Graph *g, int v)
{
    const Value *val = &g->values[v];
    if (val->alias_of < 0 || val->producer < 0 || val->producer >= g->nnodes)
        return -1;
    const Node *n = g->nodes[val->producer];
    if (n->noutputs < 1 || n->outputs[0] != v)
        return -1;
    unsigned mask = inplace_mask(g, n);
    for (int k = 0; k < n->ninputs && k < 32; k++)
        if (((mask >> k) & 1u) && n->inputs[k] == val->alias_of)
            return val->alias_of;
    return -1;
}

static int root_of(const Graph *g, int v)
{
    for (int hops = 0; g->values[v].alias_of >= 0 && hops < g->nvalues; hops++)
        v = g->values[v].alias_of;
    return v;
}

/* Output 0 of node i may take input k's bytes: input k's storage is an arena
 * intermediate whose every user (the value, its views, earlier in-place outputs)
 * is done at node i; same element type and count (no broadcasting); and any other
 * input reading those bytes reads them at the same flat index (an operand the
 * operator also lets it overwrite, with the output's element count). */
static int can_overwrite(const Graph *g, const Node *n, int i, int k, unsigned mask, const int *start,
                         const int *end)
{
    int x = n->inputs[k], y = n->outputs[0];
    if (x < 0 || y < 0 || x == y)
        return 0;
    const Value *xv = &g->values[x], *yv = &g->values[y];
    int r = root_of(g, x);
    if (!plan_in_arena(g, r, start) || end[r] != i)
        return 0;
    if (yv->role != VR_INTERMEDIATE || yv->is_output || yv->is_scratch || yv->alias_of >= 0 || start[y] != i)
        return 0;
    int64_t count = value_numel(yv);
    if (count <= 0 || xv->dtype != yv->dtype || value_numel(xv) != count || value_bytes(xv) != value_bytes(yv))
        return 0;
    for (int j = 0; j < n->ninputs; j++) {
        int u = n->inputs[j];
        if (j == k || u < 0 || root_of(g, u) != r)
            continue;
        if (j >= 32 || !((mask >> j) & 1u) || value_numel(&g->values[u]) != count)
            return 0;
    }
    for (int j = 1; j < n->noutputs; j++)
        if (n->outputs[j] >= 0 && root_of(g, n->outputs[j]) == r)
            return 0;
    return 1;
}

/* Give in-place outputs their input's storage, in node order (deterministic: the
 * first input that qualifies). end[] is kept as the storage's lifetime: a root's
 * end grows with the values that now share it. Returns how many it gave. */
static int plan_inplace(Graph *g, const int *start, int *end)
{
    int count = 0;
    for (int i = 0; i < g->nnodes; i++) {
        const Node *n = g->nodes[i];
        unsigned mask = inplace_mask(g, n);
        if (!mask)
            continue;
        for (int k = 0; k < n->ninputs && k < 32; k++) {
            if (!((mask >> k) & 1u) || !can_overwrite(g, n, i, k, mask, start, end))
                continue;
            int y = n->outputs[0], r = root_of(g, n->inputs[k]);
            g->values[y].alias_of = n->inputs[k];
            int ey = end[y] > start[y] ? end[y] : start[y];
            if (ey > end[r])
                end[r] = ey;
            count++;
            break;
        }
    }
    return count;
}

/* The arena values of g with their lifetimes and aligned sizes; returns how many. */
static int arena_items(const Graph *g, const int *start, const int *end, Item *items)
{
    int ni = 0;
    for (int v = 0; v < g->nvalues; v++) {
        if (!plan_in_arena(g, v, start))
            continue;
        Item *it = &items[ni++];
        it->id = v;
        it->start = start[v];
        it->end = end[v] < start[v] ? start[v] : end[v]; /* unused outputs still get written */
        it->size = ((int64_t)value_bytes(&g->values[v]) + PLAN_ALIGN - 1) / PLAN_ALIGN * PLAN_ALIGN;
        if (it->size == 0)
            it->size = PLAN_ALIGN; /* distinct addresses: restrict pointers must not coincide */
        it->off = -1;
    }
    return ni;
}

static int by_start(const void *a, const void *b)
{
    const Item *x = a, *y = b;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    return by_size_desc(a, b);
}

/* Place items in the order given, each in the smallest gap it fits among the placed
 * items whose lifetimes overlap it, else above them; returns the arena's top. */
static int64_t place(Item *items, int ni, Item **placed)
{
    int np = 0;
    int64_t top = 0;
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
        if (it->off + it->size > top)
            top = it->off + it->size;
        placed[np++] = it;
    }
    return top;
}

/* Placement: largest first (by id among equals), and, when that leaves more than
 * the other, in order of first definition (by size, then id, among equals). With
 * in-place outputs the merged lifetimes are longer and the greedy order can pack
 * worse than without them; the plan without in-place writing is placed too, and
 * the smallest arena wins (ties: in place, then the first order). All orders are
 * total, so the plan is deterministic. */
int pass_plan(Graph *g, Diag *d)
{
    int nv = g->nvalues;
    Item *items = arena_array(g->arena, (size_t)nv + 1, sizeof(Item));
    Item *best = arena_array(g->arena, (size_t)nv + 1, sizeof(Item));
    int *start = arena_array(g->arena, (size_t)nv + 1, sizeof(int));
    int *end = arena_array(g->arena, (size_t)nv + 1, sizeof(int));
    int *was = arena_array(g->arena, (size_t)nv + 1, sizeof(int));
    Item **placed = arena_array(g->arena, 2 * (size_t)nv + 2, sizeof(Item *)); /* placed list + scratch */
    if (!items || !best || !start || !end || !was || !placed)
        return diag_error(d, NULL, "out of memory");
    for (int v = 0; v < nv; v++) {
        g->values[v].offset = -1;
        was[v] = g->values[v].alias_of;
    }
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
    plan_lifetimes(g, start, end);
    int nchosen = plan_inplace(g, start, end);
    int nbest = 0, best_inplace = 1;
    int64_t best_top = -1;
    for (int inplace = 1; inplace >= 0; inplace--) {
        if (!inplace) /* the plan without this run's in-place choices */
            for (int v = 0; v < nv; v++)
                g->values[v].alias_of = was[v];
        plan_lifetimes(g, start, end);
        for (int order = 0; order < 2; order++) {
            int ni = arena_items(g, start, end, items);
            qsort(items, (size_t)ni, sizeof(Item), order ? by_start : by_size_desc);
            int64_t top = place(items, ni, placed);
            if (best_top < 0 || top < best_top) {
                best_top = top;
                best_inplace = inplace;
                nbest = ni;
                memcpy(best, items, (size_t)ni * sizeof(Item));
            }
        }
        if (!nchosen) /* nothing was written in place: the same plan */
            break;
    }
    if (best_inplace && nchosen) {
        plan_lifetimes(g, start, end);
        plan_inplace(g, start, end); /* the same choices again: the graph is as before */
    }
    for (int k = 0; k < nbest; k++)
        g->values[best[k].id].offset = best[k].off;
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

static int64_t lower_bound(const Graph *g, PlanBound *b, int separate)
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
    lifetimes(g, start, end, separate);
    for (int v = 0; v < nv; v++) {
        int64_t bytes = (int64_t)value_bytes(&g->values[v]);
        int inplace = plan_inplace_of(g, v) >= 0;
        if (inplace && !separate) { /* no bytes of its own, but one buffer without reuse */
            r.sum += bytes;
            r.count++;
            continue;
        }
        if (!inplace && !plan_in_arena(g, v, start))
            continue;
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

int64_t plan_lower_bound(const Graph *g, PlanBound *b)
{
    return lower_bound(g, b, 0);
}

int64_t plan_lower_bound_separate(const Graph *g, PlanBound *b)
{
    return lower_bound(g, b, 1);
}

/* The Winograd pass: a 3x3 or 5x5, stride-1, ungrouped float Conv (or
 * kdcc.FusedConv) with constant weights and at least 8 input and output channels
 * becomes kdcc.WinogradConv (compiler/ops/conv_wino.c), with the weights
 * transformed once here (U = G g G^T, [P, M, C]) in place of the original ones,
 * which dead-code elimination then drops. A 3x3 layer's tile is F(4x4,3x3)
 * (P = 36) where wino_tile's measured rule says so (output maps of 16x16 and
 * more) and its scratch fits, else F(2x2,3x3) (P = 16); a 5x5 layer's is
 * F(2x2,5x5) (P = 36), when chunks of at least WINO5_MIN_TILES fit. A WinogradConv cannot run without its scratch
 * (one chunk of transformed inputs), so a node is rewritten only when that
 * scratch fits passes/scratch.c's budget for it; on a target without scratch
 * (cortex-m4) nothing changes. Training graphs: only frozen (constant) weights
 * qualify, so a student's layers keep the Conv that autodiff differentiates.
 *
 * Why: F(2x2,3x3) does 16 multiplications per channel pair and 2x2 outputs where
 * the direct kernels do 36, F(4x4,3x3) 36 for 4x4 outputs where they do 144, and
 * 3x3 layers carry most MACs of the CNNs kdcc compiles (ResNet-8, the
 * distillation teacher).
 *
 * Then a MaxPool that is the only consumer of an F(4x4) WinogradConv's output
 * (not a graph output), with a window of 2 or 4 on each side, strides equal to
 * it, no padding or dilation, one output (no Indices) and floor mode (or ceil
 * mode where it rounds the same), is fused into it (attribute pool): the
 * WinogradConv computes the pooled planes from its staged output rows and the
 * Conv's output is never stored nor read back (the distillation teacher's 28x28
 * planes, 3.2 MB at batch 64, beyond L2). Where the pre-pool output is used
 * elsewhere (a training graph differentiating through the pool: MaxPoolGrad
 * reads it) the pool stays. */
#include "compiler/ir/target.h"
#include "compiler/ops/ops.h"
#include "passes/passes.h"

#include <stdio.h>
#include <string.h>

/* F(2x2,5x5) only with chunks of more than one vector of tiles: its V holds 36
 * positions per channel and tile, so a tight budget leaves chunks of 8 tiles, whose
 * products ran as 8x8 blocks (8 broadcasts per vector load). 32->32 channels on a
 * 16x16 map under its own tensors' budget (chunks of 8 tiles): 307 us direct,
 * 475 us as F(2x2,5x5); with 14 tiles or more per chunk it was 2.2-2.5x faster than
 * direct: 8->16 on 28x28 136 -> 67 us, 16->32 on 28x28 540-620 -> 220-245 us,
 * 32->32 on 32x32 1250-1510 -> 472-500 us (bench harness, one layer with bias and
 * Relu, gcc 12 -O3 -march=native, one core, fastest calls). mnist-8's 8->16 layer on
 * 14x14 does not fit under its model's 32 KB arena peak and stays direct. */
#define WINO5_MIN_TILES 9

static int rewrite(Graph *g, Node *n, const int64_t pads[4], int64_t tile, int64_t r, int64_t rows, Diag *d)
{
    const Value *wt = node_in(g, n, 1);
    int64_t M = wt->dims[0], C = wt->dims[1];
    char nm[512];
    snprintf(nm, sizeof nm, "%s/winograd_weight", wt->name ? wt->name : "W");
    int uid = graph_new_value(g, nm);
    if (uid < 0)
        return diag_error(d, n, "out of memory");
    wt = node_in(g, n, 1); /* the value table may have moved */
    int64_t ud[3] = {(tile + r - 1) * (tile + r - 1), M, C};
    float *u = value_make_const(g, &g->values[uid], DT_FLOAT, 3, ud);
    Attr *attrs = arena_array(g->arena, (size_t)n->nattrs + 4, sizeof(Attr));
    int64_t *pv = arena_array(g->arena, 4, sizeof(int64_t));
    const OpDef *o = op_lookup("kdcc", "WinogradConv");
    if (!u || !attrs || !pv || !o)
        return diag_error(d, n, "out of memory");
    wino_transform_weights(tile, r, (const float *)wt->data, M, C, u);
    /* attributes: the resolved pads and the epilogue; the Conv ones are implied */
    int na = 0;
    for (int i = 0; i < n->nattrs; i++)
        if (!strncmp(n->attrs[i].name, "epilogue", 8))
            attrs[na++] = n->attrs[i];
    memcpy(pv, pads, 4 * sizeof(int64_t));
    attrs[na++] = (Attr){.name = "pads", .type = AT_INTS, .n = 4, .ints = pv};
    attrs[na++] = (Attr){.name = "tile_rows", .type = AT_INT, .i = rows};
    if (tile != 2) /* absent: 2, so F(2x2) layers keep their --tune keys */
        attrs[na++] = (Attr){.name = "tile", .type = AT_INT, .i = tile};
    if (r != 3) /* absent: 3, likewise */
        attrs[na++] = (Attr){.name = "kernel", .type = AT_INT, .i = r};
    int *ins = arena_array(g->arena, (size_t)n->ninputs, sizeof(int));
    if (!ins)
        return diag_error(d, n, "out of memory");
    memcpy(ins, n->inputs, (size_t)n->ninputs * sizeof(int));
    ins[1] = uid;
    n->inputs = ins;
    n->attrs = attrs;
    n->nattrs = na;
    n->op_type = "WinogradConv";
    n->domain = "kdcc";
    n->op = o;
    return 0;
}

static int uses_of(const Graph *g, int v)
{
    int k = 0;
    for (int i = 0; i < g->nnodes; i++) {
        const Node *nd = g->nodes[i];
        for (int j = 0; !nd->dead && j < nd->ninputs; j++)
            k += nd->inputs[j] == v;
    }
    for (int i = 0; i < g->noutputs; i++)
        k += g->outputs[i] == v;
    return k;
}

/* 1 if INTS attribute `name` of n is absent or all its values are v */
static int ints_all(const Node *n, const char *name, int64_t v)
{
    const int64_t *p;
    int c = attr_ints(n, name, &p);
    for (int i = 0; i < c; i++)
        if (p[i] != v)
            return 0;
    return 1;
}

/* Fuse the MaxPool reading F(4x4) WinogradConv n's output, when it may (above). */
static void fuse_pool(Graph *g, Node *n)
{
    const int64_t *k, *st;
    int y = n->outputs[0];
    const Value *yv = &g->values[y];
    if (attr_int(n, "tile", 2) != 4 || node_attr(n, "pool") || n->noutputs != 1 || yv->is_output || yv->rank != 4 ||
        uses_of(g, y) != 1)
        return;
    Node *c = NULL;
    for (int i = 0; i < g->nnodes && !c; i++) {
        Node *nd = g->nodes[i];
        if (!nd->dead && nd->ninputs >= 1 && nd->inputs[0] == y)
            c = nd;
    }
    if (!c || (c->domain && c->domain[0]) || strcmp(c->op_type, "MaxPool") != 0 || c->noutputs < 1 || c->outputs[0] < 0)
        return;
    for (int i = 1; i < c->noutputs; i++)
        if (c->outputs[i] >= 0)
            return; /* Indices */
    const char *ap = attr_string(c, "auto_pad", "NOTSET");
    if (attr_ints(c, "kernel_shape", &k) != 2 || attr_ints(c, "strides", &st) != 2 || st[0] != k[0] || st[1] != k[1] ||
        !ints_all(c, "pads", 0) || !ints_all(c, "dilations", 1) || (strcmp(ap, "NOTSET") && strcmp(ap, "VALID")))
        return;
    int64_t OH = yv->dims[2], OW = yv->dims[3];
    for (int i = 0; i < 2; i++)
        if ((k[i] != 2 && k[i] != 4) || yv->dims[2 + i] < k[i])
            return;
    if (attr_int(c, "ceil_mode", 0) && (OH % k[0] || OW % k[1]))
        return;
    const Value *z = &g->values[c->outputs[0]];
    if (z->rank != 4 || z->dims[2] != OH / k[0] || z->dims[3] != OW / k[1] || z->dtype != DT_FLOAT)
        return;
    Attr *attrs = arena_array(g->arena, (size_t)n->nattrs + 1, sizeof(Attr));
    int64_t *pv = arena_array(g->arena, 2, sizeof(int64_t));
    int *outs = arena_array(g->arena, 1, sizeof(int)); /* arrays of their own: nodes may share them (fused.h) */
    if (!attrs || !pv || !outs)
        return; /* out of memory: the pool stays */
    memcpy(attrs, n->attrs, (size_t)n->nattrs * sizeof(Attr));
    pv[0] = k[0];
    pv[1] = k[1];
    attrs[n->nattrs] = (Attr){.name = "pool", .type = AT_INTS, .n = 2, .ints = pv};
    Attr *old_attrs = n->attrs;
    int *old_outs = n->outputs;
    n->attrs = attrs;
    n->nattrs++;
    outs[0] = c->outputs[0];
    n->outputs = outs;
    c->dead = 1;
    /* The scratch must still fit the budget, which shrinks with the node's output (its
     * own tensors' bytes): fewer tile rows per chunk if it must (as in pass_winograd),
     * else the pool stays. The dead pool changes no lifetime the budget sees. */
    const Value *x = node_in(g, n, 0), *u = node_in(g, n, 1);
    int64_t C = x->dims[1], M = u->dims[1], TW = (OW + 3) / 4, budget = pass_scratch_budget(g, n);
    Attr *tr = NULL;
    for (int i = 0; i < n->nattrs; i++)
        if (!strcmp(attrs[i].name, "tile_rows"))
            tr = &attrs[i];
    int64_t rows = tr ? tr->i : wino_default_rows(4, 3, C, M, OH, OW);
    while (rows > 1 && (rows - 1) * TW >= 8 && wino_scratch_bytes(g, n, 4, 3, C, M, OH, OW, rows) > budget)
        rows--;
    if (tr && wino_scratch_bytes(g, n, 4, 3, C, M, OH, OW, rows) <= budget) {
        tr->i = rows;
        return;
    }
    n->attrs = old_attrs;
    n->nattrs--;
    n->outputs = old_outs;
    c->dead = 0;
}

int pass_winograd(Graph *g, Diag *d)
{
    const Target *t = g->target ? g->target : target_default();
    if (t->max_scratch <= 0)
        return 0;
    for (int i = 0; i < g->nnodes; i++) {
        Node *n = g->nodes[i];
        int64_t pads[4], r = 3;
        if (n->dead || !wino_eligible(g, n, pads, &r))
            continue;
        /* the chunk of tile rows: the default, or fewer until the scratch fits (at
         * least 8 tiles, one vector of columns; F(2x2,5x5) at least 9, below) */
        const Value *x = node_in(g, n, 0), *wt = node_in(g, n, 1), *y = node_out(g, n, 0);
        int64_t C = x->dims[1], M = wt->dims[0], OH = y->dims[2], OW = y->dims[3];
        int64_t budget = pass_scratch_budget(g, n), tile = wino_tile(g, n, r), rows = 0, TW = 0;
        int64_t min_tiles = r == 5 ? WINO5_MIN_TILES : 8;
        for (;; tile = 2) { /* F(4x4) when it fits, else F(2x2) */
            TW = (OW + tile - 1) / tile;
            rows = wino_default_rows(tile, r, C, M, OH, OW);
            while (rows > 1 && (rows - 1) * TW >= min_tiles &&
                   wino_scratch_bytes(g, n, tile, r, C, M, OH, OW, rows) > budget)
                rows--;
            if (wino_scratch_bytes(g, n, tile, r, C, M, OH, OW, rows) <= budget || tile == 2)
                break;
        }
        if (wino_scratch_bytes(g, n, tile, r, C, M, OH, OW, rows) > budget || (r == 5 && rows * TW < min_tiles))
            continue;
        if (rewrite(g, n, pads, tile, r, rows, d))
            return -1;
    }
    for (int i = 0; i < g->nnodes; i++) {
        Node *n = g->nodes[i];
        if (!n->dead && n->domain && !strcmp(n->domain, "kdcc") && !strcmp(n->op_type, "WinogradConv"))
            fuse_pool(g, n);
    }
    graph_compact(g); /* the fused pools go (a frozen teacher's graph is copied as it is) */
    return 0;
}

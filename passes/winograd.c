/* The Winograd pass: a 3x3, stride-1, ungrouped float Conv (or kdcc.FusedConv)
 * with constant weights and at least 8 input and output channels becomes
 * kdcc.WinogradConv (compiler/ops/conv_wino.c), with the weights transformed
 * once here (U = G g G^T, [P, M, C]) in place of the original ones, which dead-
 * code elimination then drops. The tile is F(4x4,3x3) (P = 36) where wino_tile's
 * measured rule says so (output maps of 20x20 and more) and its scratch fits,
 * else F(2x2,3x3) (P = 16). A WinogradConv cannot run without its scratch
 * (one chunk of transformed inputs), so a node is rewritten only when that
 * scratch fits passes/scratch.c's budget for it; on a target without scratch
 * (cortex-m4) nothing changes. Training graphs: only frozen (constant) weights
 * qualify, so a student's layers keep the Conv that autodiff differentiates.
 *
 * Why: F(2x2,3x3) does 16 multiplications per channel pair and 2x2 outputs where
 * the direct kernels do 36, F(4x4,3x3) 36 for 4x4 outputs where they do 144, and
 * 3x3 layers carry most MACs of the CNNs kdcc compiles (ResNet-8, the
 * distillation teacher). */
#include "compiler/ir/target.h"
#include "compiler/ops/ops.h"
#include "passes/passes.h"

#include <stdio.h>
#include <string.h>

static int rewrite(Graph *g, Node *n, const int64_t pads[4], int64_t tile, int64_t rows, Diag *d)
{
    const Value *wt = node_in(g, n, 1);
    int64_t M = wt->dims[0], C = wt->dims[1];
    char nm[512];
    snprintf(nm, sizeof nm, "%s/winograd_weight", wt->name ? wt->name : "W");
    int uid = graph_new_value(g, nm);
    if (uid < 0)
        return diag_error(d, n, "out of memory");
    wt = node_in(g, n, 1); /* the value table may have moved */
    int64_t ud[3] = {(tile + 2) * (tile + 2), M, C};
    float *u = value_make_const(g, &g->values[uid], DT_FLOAT, 3, ud);
    Attr *attrs = arena_array(g->arena, (size_t)n->nattrs + 3, sizeof(Attr));
    int64_t *pv = arena_array(g->arena, 4, sizeof(int64_t));
    const OpDef *o = op_lookup("kdcc", "WinogradConv");
    if (!u || !attrs || !pv || !o)
        return diag_error(d, n, "out of memory");
    wino_transform_weights(tile, (const float *)wt->data, M, C, u);
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

int pass_winograd(Graph *g, Diag *d)
{
    const Target *t = g->target ? g->target : target_default();
    if (t->max_scratch <= 0)
        return 0;
    for (int i = 0; i < g->nnodes; i++) {
        Node *n = g->nodes[i];
        int64_t pads[4];
        if (n->dead || !wino_eligible(g, n, pads))
            continue;
        /* the chunk of tile rows: the default, or fewer until the scratch fits (at
         * least 8 tiles, one vector of columns) */
        const Value *x = node_in(g, n, 0), *wt = node_in(g, n, 1), *y = node_out(g, n, 0);
        int64_t C = x->dims[1], M = wt->dims[0], OH = y->dims[2], OW = y->dims[3];
        int64_t budget = pass_scratch_budget(g, n), tile = wino_tile(g, n), rows = 0;
        for (;; tile = 2) { /* F(4x4) when it fits, else F(2x2) */
            int64_t TW = (OW + tile - 1) / tile;
            rows = wino_default_rows(tile, C, M, OH, OW);
            while (rows > 1 && (rows - 1) * TW >= 8 && wino_scratch_bytes(g, n, tile, C, M, OH, OW, rows) > budget)
                rows--;
            if (wino_scratch_bytes(g, n, tile, C, M, OH, OW, rows) <= budget || tile == 2)
                break;
        }
        if (wino_scratch_bytes(g, n, tile, C, M, OH, OW, rows) > budget)
            continue;
        if (rewrite(g, n, pads, tile, rows, d))
            return -1;
    }
    return 0;
}

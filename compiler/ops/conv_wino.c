/* kdcc.WinogradConv: a 3x3 or 5x5, stride 1 Conv computed by Winograd's minimal
 * filtering F(m x m, r x r), which makes each m x m block of outputs from an
 * a x a patch of inputs (a = m + r - 1) with a^2 multiplications per input and
 * output channel pair instead of r^2 m^2: F(2x2,3x3) 16 for 4 outputs (2.25x
 * fewer), F(4x4,3x3) 36 for 16 (4x fewer), F(2x2,5x5) 36 for 4 (2.78x fewer).
 * For each tile t and channel pair (m, c):
 *
 *     Y = A^T [ U ⊙ V ] A,   U = G g G^T (a x a, from the r x r kernel g),
 *                            V = B^T d B (a x a, from the input patch d)
 *   F(2x2):
 *     B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]
 *     G   = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]
 *     A^T = [1 1 1 0; 0 1 -1 -1]
 *   F(4x4), interpolation points 0, 1, -1, 2, -2 and infinity:
 *     B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1]
 *     G   = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1]
 *     A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]
 *   F(2x2,5x5), the same points: B^T as F(4x4,3x3)'s,
 *     G   = [1/4 0 0 0 0; -1/6 -1/6 -1/6 -1/6 -1/6; -1/6 1/6 -1/6 1/6 -1/6;
 *            1/24 1/12 1/6 1/3 2/3; 1/24 -1/12 1/6 -1/3 2/3; 0 0 0 0 1]
 *     A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 1]
 *
 * and the sum over c is, for each of the P = a^2 transform positions p, a matrix
 * product M_p[m][t] = sum_c U_p[m][c] V_p[c][t], which runs in the same
 * register-blocked form as the other Conv kernels (compiler/ops/conv.c). One
 * emitter serves all three: the transforms are tables of C expressions (WinoTf).
 *
 * The node is made by passes/winograd.c from a Conv or kdcc.FusedConv whose
 * weights are constant, so U = G g G^T is computed once at compile time (in
 * double, rounded once) and replaces the weights (P/9 of their bytes):
 *     kdcc.WinogradConv(X[N,C,H,W], U[P,M,C], B[M]?, operands...) -> Y[N,M,OH,OW]
 *     attributes: pads (4 ints: top, left, bottom, right), tile (2 or 4; absent:
 *     2), kernel (3 or 5, 5 with tile 2 only; absent: 3), tile_rows (rows of tiles per chunk; optional), the epilogue (fused.h),
 *     pool (2 ints, F(4x4) only: a fused MaxPool's window kh x kw, each 2 or 4, at
 *     stride kh x kw without padding, applied after the epilogue; Y is then
 *     [N, M, OH / kh, OW / kw] while the epilogue's operands keep the Conv's shape)
 * Its scratch (passes/scratch.c) holds, per thread (Graph.threads), for one
 * chunk of tile rows, the transformed inputs V[P][C][TB] and the products of
 * one register block of output channels M[P][MB][TB] (MB = min(M, 8)), the
 * chunk's a rows of s = B^T d and a row of zeros (F(4x4) also the phases of s
 * and its output rows, below); the node cannot run without it, so the pass
 * rewrites a Conv only when the scratch fits the budget. All steps vectorise
 * along the chunk's tiles.
 *
 * Per chunk: the input transform for all channels, then for each block of mr
 * output channels its products and at once their output transform, while the
 * block's products are in L1 (they were stored for all M channels before the
 * output transform read them back: ResNet-8's 32->32 layer wrote and read 64 KB
 * per chunk, and the scratch that took left its 16->16 layer 2 tile rows per
 * chunk under the budget). Rows of tiles a multiple of 4 wide are compact
 * (WINO_COMPACT): V and the products leave out the gap column of each tile row
 * (below), which on small maps was much of the products' work: ResNet-8's 8x8
 * maps as F(2x2) have rows of 4 tiles, whose 16 tiles took 24 columns, computed
 * as two overlapping blocks of 16. ResNet-8 at batch 1, whole model (bench
 * harness, one core, fastest call of alternating runs): 486 -> 464 us with the blocks'
 * products, -> 424 with its 8x8 64->64 layer as F(2x2), -> 333 compact, -> 312
 * with F(4x4) on its 16x16 maps (default 8x16 blocks, no tune file).
 *
 * F(4x4) differs from F(2x2) in two steps, because its tiles are 4 columns
 * apart: V = s B reads s split into 4 phases (unit stride) instead of at
 * stride 4, and A^T M A runs over all the chunk's tiles into staged output rows,
 * which are then copied to y with the bias and the epilogue (wino_input_phases,
 * wino_output_staged). The distillation teacher's 16->16 layer on 28x28, 64
 * images, F(4x4) at stride 4 and per tile row: 3.95 ms against F(2x2)'s 4.40
 * (the input transform alone 70 -> 28 million instructions with the phases);
 * with both: 3.39 against 4.55 (best of 4 alternating runs each). Where the
 * time goes then (perf, F(4x4)): products 43%, input transform 31%, output
 * transform 13%, copy and epilogue 11%.
 *
 * Numerics: the transforms add and subtract inputs and the products in a
 * different order than the direct sum; the difference is a few float rounding
 * errors, larger for F(4x4), whose transforms scale by up to 5 and 8 and whose
 * G has 1/6 and 1/24 (tests/winograd, of the output's largest magnitude: F(2x2)
 * at most 4.4e-7, F(4x4) 4.9e-6, F(2x2,5x5), whose taps are 25 terms, 2.1e-6). The F(4x4) expressions group the sums and
 * differences that the rows share; a float simulation of 300 random 16-channel
 * tiles gave the same worst error (5.9e-6) for Lavin's scaling as above and no
 * better for G scaled to integers with the factors moved into A or B. */
#include "compiler/ops/conv_internal.h"

#include "compiler/ir/target.h"

#include <inttypes.h>
#include <string.h>

#define WINO_MIN_CH 8                  /* fewer input or output channels: the transforms cost more than they save */
#define WINO_CHUNK_BYTES (64 * 1024)   /* transformed inputs and products of one chunk of tile rows */
#define WINO_MIN_COLS 32               /* a chunk has at least this many tiles when the image does */
/* fewer output pixels: the transforms and the short rows of tiles cost more than the
 * multiplications saved. ResNet-8's 64->64 layer on 8x8 (64 pixels) took 166 us as a
 * Winograd layer against 149 us direct when the products were stored for all channels
 * with gap columns; compact and a block at a time, the whole model went 464 -> 424 us
 * with it (more below) */
#define WINO_MIN_PIXELS 64
/* the most output channels of a register block: the products buffer holds one block's */
#define WINO_MR_MAX 8
/* rows of TW tiles for which V and the products leave out the gap columns (the rows'
 * loops over TW then vectorise whole; the distillation teacher's rows of 7 tiles keep
 * the single loop over the chunk, which gcc vectorised where it did not the rows) */
#define WINO_COMPACT(TW) ((TW) % 4 == 0)

/* The transforms of one tile size, as C expression templates over operands {0},
 * {1}, ... (one per input of the 1-D transform), applied down the columns and then
 * along the rows. bt: V = B^T d B, `a` rows; at: Y = A^T M A, `m` rows (at_used
 * says which operands each row reads, for the partial tiles at the right edge). */
typedef struct WinoTf {
    int m, r, a;              /* outputs, kernel taps and inputs of a 1-D tile (a = m + r - 1) */
    const char *bt[6], *at[4];
    unsigned at_used[4];      /* bit k: row reads operand {k} */
    double G[6][5];           /* U = G g G^T */
} WinoTf;

static const WinoTf wino_f2 = {
    2, 3, 4,
    {"{0} - {2}", "{1} + {2}", "{2} - {1}", "{1} - {3}"},
    {"{0} + {1} + {2}", "{1} - {2} - {3}"},
    {0x7, 0xe},
    {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}},
};

/* F(4x4,3x3) at the points 0, 1, -1, 2, -2 and infinity, with the sums and
 * differences shared the way the expressions group them. */
static const WinoTf wino_f4 = {
    4, 3, 6,
    {"4.0f * {0} - 5.0f * {2} + {4}", "({3} + {4}) - 4.0f * ({1} + {2})", "({4} - {3}) + 4.0f * ({1} - {2})",
     "({4} - {2}) + 2.0f * ({3} - {1})", "({4} - {2}) - 2.0f * ({3} - {1})", "4.0f * {1} - 5.0f * {3} + {5}"},
    {"{0} + ({1} + {2}) + ({3} + {4})", "({1} - {2}) + 2.0f * ({3} - {4})", "({1} + {2}) + 4.0f * ({3} + {4})",
     "({1} - {2}) + 8.0f * ({3} - {4}) + {5}"},
    {0x1f, 0x1e, 0x1e, 0x3e},
    {{1.0 / 4, 0, 0},
     {-1.0 / 6, -1.0 / 6, -1.0 / 6},
     {-1.0 / 6, 1.0 / 6, -1.0 / 6},
     {1.0 / 24, 1.0 / 12, 1.0 / 6},
     {1.0 / 24, -1.0 / 12, 1.0 / 6},
     {0, 0, 1}},
};

/* F(2x2,5x5) at the same points as F(4x4,3x3): B^T depends on the points alone, so
 * it is F(4x4)'s; G's row for point p is (1, p, p^2, p^3, p^4) over the product of
 * p's differences to the other finite points, and A^T's rows are the points' powers
 * 0 and 1 (the point at infinity adds its product to the last row). */
static const WinoTf wino_f25 = {
    2, 5, 6,
    {"4.0f * {0} - 5.0f * {2} + {4}", "({3} + {4}) - 4.0f * ({1} + {2})", "({4} - {3}) + 4.0f * ({1} - {2})",
     "({4} - {2}) + 2.0f * ({3} - {1})", "({4} - {2}) - 2.0f * ({3} - {1})", "4.0f * {1} - 5.0f * {3} + {5}"},
    {"{0} + ({1} + {2}) + ({3} + {4})", "({1} - {2}) + 2.0f * ({3} - {4}) + {5}"},
    {0x1f, 0x3e},
    {{1.0 / 4, 0, 0, 0, 0},
     {-1.0 / 6, -1.0 / 6, -1.0 / 6, -1.0 / 6, -1.0 / 6},
     {-1.0 / 6, 1.0 / 6, -1.0 / 6, 1.0 / 6, -1.0 / 6},
     {1.0 / 24, 1.0 / 12, 1.0 / 6, 1.0 / 3, 2.0 / 3},
     {1.0 / 24, -1.0 / 12, 1.0 / 6, -1.0 / 3, 2.0 / 3},
     {0, 0, 0, 0, 1}},
};

/* the transforms of F(tile x tile, r x r); NULL for a pair kdcc has none for */
static const WinoTf *wino_tf(int64_t tile, int64_t r)
{
    if (r == 5)
        return tile == 2 ? &wino_f25 : NULL;
    return r != 3 ? NULL : tile == 4 ? &wino_f4 : tile == 2 ? &wino_f2 : NULL;
}

/* Tile slots per row of tiles in s: the TW tiles and the gap after them, which is
 * as many tiles as the last tile's inputs reach past its m columns (r - 1 more). */
static int64_t wino_gap(int64_t m, int64_t r) { return (r - 1 + m - 1) / m; }

/* Append template t to buf with each {k} replaced by operand k's text ops[k]. */
static void wino_expand(char *buf, size_t n, const char *t, char ops[][48])
{
    size_t len = strlen(buf);
    for (; *t && len + 1 < n; t++) {
        if (*t == '{' && t[1] >= '0' && t[1] <= '5' && t[2] == '}') {
            size_t l = strlen(ops[t[1] - '0']);
            if (len + l + 1 >= n)
                break;
            memcpy(buf + len, ops[t[1] - '0'], l);
            len += l;
            t += 2;
        } else
            buf[len++] = *t;
    }
    buf[len] = 0;
}

typedef struct WinoGeom {
    const WinoTf *tf;    /* the tile size's transforms */
    int64_t m, r, a, P;  /* outputs per tile side, kernel side, inputs per tile side, transform positions (a * a) */
    int64_t gt;          /* gap tiles after each row of tiles in s (wino_gap) */
    int64_t N, C, M, H, W, OH, OW, pt, pl;
    int64_t TH, TW, T;   /* tiles: rows, columns, count */
    int64_t PW;          /* a padded input row: m * (TW + gt) columns */
    int64_t mr, nr;      /* register block (mr at most WINO_MR_MAX) */
    int64_t MB;          /* output channels of the products buffer: one register block's, min(M, WINO_MR_MAX) */
    int64_t R, TB;       /* tile rows per chunk; the row length of V and the products: TJ columns per
                            tile row (R * TJ), rounded up to 8 */
    int64_t TG;          /* R * (TW + gt) rounded up to 8: the columns of a chunk's rows of s, gap columns included */
    int64_t SL;          /* floats of one row of s for a chunk: m * (TG + gt) */
    int compact;         /* V and the products without the gap columns (WINO_COMPACT) */
    int64_t TJ;          /* columns of V and the products per tile row: TW compact, else TW + gt (gap columns) */
    int staged;          /* F(4x4): outputs staged in rows (see wino_output_staged) */
    int phased;          /* F(4x4) and F(2x2,5x5): s split into m phases (see wino_input_phases) */
    int64_t NT;          /* threads the batch is split over (Graph.threads), each with its own scratch */
    int64_t kh, kw;      /* a fused MaxPool's window (attribute pool; stride = window, no padding): 1 x 1 without */
    int64_t vl;          /* the target's floats per vector (the products' accumulator arrays) */
} WinoGeom;

/* Chunks of whole tile rows: the node's tile_rows attribute (the Winograd pass
 * sets it to what fits the scratch budget), else as many as keep the chunk's
 * buffers within WINO_CHUNK_BYTES but at least WINO_MIN_COLS tiles. The rows do
 * not depend on the register block, so neither does the scratch size: --tune's
 * candidates all fit. */
int64_t wino_default_rows(int64_t tile, int64_t ksize, int64_t C, int64_t M, int64_t OH, int64_t OW)
{
    int64_t a = tile + ksize - 1, TW = (OW + tile - 1) / tile, TH = (OH + tile - 1) / tile;
    int64_t MB = M < WINO_MR_MAX ? M : WINO_MR_MAX;
    int64_t per_row = 4 * a * a * (C + MB) * (TW + wino_gap(tile, ksize)); /* bytes of V and products per tile row */
    int64_t r = WINO_CHUNK_BYTES / per_row, rmin = (WINO_MIN_COLS + TW - 1) / TW;
    if (r < rmin)
        r = rmin;
    if (r > TH)
        r = TH;
    return r < 1 ? 1 : r;
}

static void wino_chunk(WinoGeom *w, int64_t rows)
{
    int64_t r = rows > 0 ? rows : wino_default_rows(w->m, w->r, w->C, w->M, w->OH, w->OW);
    w->R = r < w->TH ? r : w->TH;
    w->TJ = w->compact ? w->TW : w->TW + w->gt;
    w->TB = (w->R * w->TJ + 7) / 8 * 8;
    w->TG = (w->R * (w->TW + w->gt) + 7) / 8 * 8;
    w->SL = w->m * (w->TG + w->gt);
}

/* columns of V and of the products a chunk of `rows` tile rows computes */
static int64_t wino_cols(const WinoGeom *g, int64_t rows) { return (rows * g->TJ + 7) / 8 * 8; }
/* columns of the chunk's rows of s (gap columns included) */
static int64_t wino_gcols(const WinoGeom *g, int64_t rows) { return (rows * (g->TW + g->gt) + 7) / 8 * 8; }

/* Per thread: V and the products of a chunk, the chunk's `a` rows of s, a row of
 * zeros; phased, also the m phases of each row of s (SL floats per row); staged,
 * also m rows of outputs (m * TB each). */
static int64_t wino_thread_floats(const WinoGeom *w)
{
    return w->P * (w->C + w->MB) * w->TB + w->a * w->SL + w->W + (w->phased ? w->a * w->SL : 0) +
           (w->staged ? w->m * w->m * w->TB : 0);
}
static int64_t wino_scratch_floats(const WinoGeom *w) { return w->NT * wino_thread_floats(w); }

static void wino_finish(const Graph *g, const Node *n, WinoGeom *w, int64_t tile, int64_t r, int64_t rows)
{
    w->tf = wino_tf(tile, r);
    w->m = w->tf->m;
    w->r = w->tf->r;
    w->a = w->tf->a;
    w->gt = wino_gap(w->m, w->r);
    w->P = w->a * w->a;
    w->staged = w->m == 4;
    w->phased = w->staged || w->r == 5;
    w->NT = g->threads > 1 && w->N > 1 ? (g->threads < w->N ? g->threads : w->N) : 1;
    w->TH = (w->OH + w->m - 1) / w->m;
    w->TW = (w->OW + w->m - 1) / w->m;
    w->T = w->TH * w->TW;
    w->PW = w->m * (w->TW + w->gt);
    w->compact = WINO_COMPACT(w->TW);
    conv_block(g, n, &w->mr, &w->nr);
    w->vl = (g->target ? g->target : target_default())->vector_bytes / 4;
    if (w->mr > WINO_MR_MAX)
        w->mr = WINO_MR_MAX;
    if (w->mr > w->M)
        w->mr = w->M;
    w->MB = w->M < WINO_MR_MAX ? w->M : WINO_MR_MAX;
    wino_chunk(w, rows);
}

/* The geometry of a WinogradConv node from its inputs and attributes. */
static int wino_geom(const Graph *g, const Node *n, WinoGeom *w, Diag *d)
{
    const Value *x = node_in(g, n, 0), *u = node_in(g, n, 1);
    memset(w, 0, sizeof *w);
    int64_t tile = attr_int(n, "tile", 2), r = attr_int(n, "kernel", 3);
    if (!wino_tf(tile, r))
        return diag_error(d, n, "WinogradConv: no F(%" PRId64 "x%" PRId64 ",%" PRId64 "x%" PRId64 ") (tile 2 or 4 with kernel 3, tile 2 with kernel 5)", tile, tile, r, r);
    int64_t P = (tile + r - 1) * (tile + r - 1);
    if (!x || !u || x->rank != 4 || u->rank != 3 || u->dims[0] != P)
        return diag_error(d, n, "WinogradConv (tile %" PRId64 ", kernel %" PRId64 ") wants X[N,C,H,W] and U[%" PRId64 ",M,C]", tile, r, P);
    if (u->dims[2] != x->dims[1])
        return diag_error(d, n, "WinogradConv: U has %" PRId64 " input channels, X has %" PRId64, u->dims[2], x->dims[1]);
    const int64_t *p;
    if (attr_ints(n, "pads", &p) != 4)
        return diag_error(d, n, "WinogradConv wants 4 pads (top, left, bottom, right)");
    for (int i = 0; i < 4; i++)
        if (p[i] < 0 || p[i] > r - 1)
            return diag_error(d, n, "WinogradConv: pads must be in [0, %" PRId64 "]", r - 1);
    w->N = x->dims[0];
    w->C = x->dims[1];
    w->H = x->dims[2];
    w->W = x->dims[3];
    w->M = u->dims[1];
    w->pt = p[0];
    w->pl = p[1];
    w->OH = w->H + p[0] + p[2] - (r - 1);
    w->OW = w->W + p[1] + p[3] - (r - 1);
    if (w->OH < 1 || w->OW < 1)
        return diag_error(d, n, "WinogradConv: the input is smaller than the kernel");
    int64_t rows = attr_int(n, "tile_rows", 0);
    if (rows < 0)
        return diag_error(d, n, "WinogradConv: tile_rows must be positive");
    w->kh = w->kw = 1;
    int np = attr_ints(n, "pool", &p);
    if (np >= 0) {
        if (np != 2 || tile != 4 || (p[0] != 2 && p[0] != 4) || (p[1] != 2 && p[1] != 4))
            return diag_error(d, n, "WinogradConv: pool wants 2 window sides of 2 or 4, and tile 4");
        if (w->OH < p[0] || w->OW < p[1])
            return diag_error(d, n, "WinogradConv: the output is smaller than the pool window");
        w->kh = p[0];
        w->kw = p[1];
    }
    wino_finish(g, n, w, tile, r, rows);
    return 0;
}

static int infer_wino(Graph *g, Node *n, Diag *d)
{
    Value *x = need_input(g, n, 0, d), *u = x ? need_input(g, n, 1, d) : NULL;
    if (!u)
        return -1;
    if (x->dtype != DT_FLOAT || u->dtype != DT_FLOAT)
        return diag_error(d, n, "WinogradConv computes float32 only");
    WinoGeom w;
    if (wino_geom(g, n, &w, d))
        return -1;
    const Value *b = node_in(g, n, 2);
    if (b && (b->rank != 1 || b->dims[0] != w.M || b->dtype != DT_FLOAT))
        return diag_error(d, n, "WinogradConv: the bias must be float[%" PRId64 "]", w.M);
    for (int i = 3; i < n->ninputs; i++)
        if (node_in(g, n, i) && !need_input(g, n, i, d))
            return -1;
    int64_t dims[4] = {w.N, w.M, w.OH, w.OW}, pdims[4] = {w.N, w.M, w.OH / w.kh, w.OW / w.kw};
    value_set_shape(node_out(g, n, 0), DT_FLOAT, 4, pdims);
    /* the epilogue applies before the pool, to the Conv's outputs: its operands have their shape */
    Value pre = *node_out(g, n, 0);
    memcpy(pre.dims, dims, sizeof dims);
    Epilogue ep;
    if (epilogue_read(g, n, 3, &ep, d) || epilogue_check(g, n, &ep, &pre, d))
        return -1;
    return 0;
}

static int64_t wino_scratch(const Graph *g, const Node *n)
{
    Diag d = {0};
    WinoGeom w;
    if (wino_geom(g, n, &w, &d))
        return 0;
    return wino_scratch_floats(&w) * (int64_t)sizeof(float);
}

static int wino_tunable(const Graph *g, const Node *n)
{
    (void)g;
    (void)n;
    return 1;
}

/* The loop of V = s B over a chunk's tiles: j indexes s's tiles (gap columns
 * included), jo V's column. Without compact, one loop over both (gap columns
 * computed, finite, never stored to y); compact, one loop per tile row over its TW
 * tiles, which leaves the gap columns out of the products. */
static void wino_v_open(Writer *w, const WinoGeom *g, int64_t rows)
{
    if (!g->compact) {
        em_for(w, "j", wino_gcols(g, rows));
        w_line(w, "const int64_t jo = j;");
        return;
    }
    em_for(w, "rr", rows);
    em_for(w, "tx", g->TW);
    w_line(w, "const int64_t j = rr * %" PRId64 " + tx, jo = rr * %" PRId64 " + tx;", g->TW + g->gt, g->TW);
}

/* Compact: zeros in V's columns past the chunk's tiles up to the vector the products
 * read (their products are never stored; zeros keep them finite and fast). */
static void wino_v_tail(Writer *w, const WinoGeom *g, int64_t rows)
{
    int64_t lo = rows * g->TJ, hi = wino_cols(g, rows);
    if (!g->compact || lo >= hi)
        return;
    em_for(w, "p", g->P);
    em_for(w, "jo", hi - lo);
    w_line(w, "vr[p * %" PRId64 " + %" PRId64 " + jo] = 0;", g->C * g->TB, lo);
    em_close(w, 2);
}

/* Input transform of channel c for a chunk of tile rows: s = B^T d down the rows,
 * straight from the `a` input rows of each tile row (a row of zeros in scratch
 * stands for rows in the padding; the padding columns of s are zero from the
 * start of the call), then V = s B along the tiles' columns. The rows of s lie end
 * to end, PW = m * (TW + gt) floats each, so tile tx of tile row r starts at s
 * column m * j with j = r * (TW + gt) + tx: one loop over j covers the whole chunk,
 * at the price of gt unused columns per tile row (one, but two for F(2x2,5x5); their
 * values are finite and never stored to y). Measured on the distillation teacher's 16->16 layer: per-row loops
 * of 14 tiles spent most of the input transform in their scalar remainders. */
/* Phased (F(4x4,3x3), F(2x2,5x5)): V = s B from s split by phase, ph_i,k[j] =
 * s_i[m * j + k], so that operand q of tile j is ph_i,(q % m)[j + q / m]: the split
 * reads s once in groups of m, and the transform then runs at unit stride. Measured
 * on the distillation teacher's 16->16 layer (callgrind, 6 calls): the input
 * transform read straight from s at stride 4 took 70 million instructions, this 28;
 * F(2x2,5x5), whose 6 operands at stride 2 gcc loaded as shuffled halves, 16->32 on
 * 28x28: 285 -> 220-245 us. */
static void wino_input_phases(Writer *w, const WinoGeom *g, int64_t rows)
{
    const WinoTf *tf = g->tf;
    int64_t C = g->C, TB = g->TB, TG = g->TG, SL = g->SL, cols = wino_gcols(g, rows);
    char buf[640], ops[6][48];
    for (int i = 0; i < g->a; i++) {
        em_for(w, "j", cols + g->gt);
        for (int k = 0; k < g->m; k++)
            w_line(w, "ph[%" PRId64 " + j] = s%d[%" PRId64 " * j + %d];", i * SL + k * (TG + g->gt), i, g->m, k);
        w_close(w);
        wino_v_open(w, g, rows);
        for (int q = 0; q < g->a; q++) {
            char off[16] = "";
            if (q >= g->m)
                snprintf(off, sizeof off, " + %d", q / (int)g->m);
            snprintf(ops[q], sizeof ops[q], "ph[%" PRId64 " + j%s]", i * SL + (q % g->m) * (TG + g->gt), off);
        }
        for (int k = 0; k < g->a; k++) {
            snprintf(buf, sizeof buf, "vr[%" PRId64 " + jo] = ", (int64_t)(i * g->a + k) * C * TB);
            wino_expand(buf, sizeof buf, tf->bt[k], ops);
            w_line(w, "%s;", buf);
        }
        em_close(w, g->compact ? 2 : 1);
    }
    wino_v_tail(w, g, rows);
}

static void wino_input(Writer *w, const WinoGeom *g, int64_t rows)
{
    const WinoTf *tf = g->tf;
    int64_t C = g->C, TB = g->TB, PW = g->PW, W = g->W, pl = g->pl;
    int64_t n = pl + W < PW ? W : PW - pl; /* input columns a row of s uses */
    char buf[640], ops[6][48];
    em_for(w, "c", C);
    w_line(w, "const float *restrict xc = xb + c * %" PRId64 ";", g->H * W);
    em_for(w, "r", rows);
    w_line(w, "const int64_t u = %" PRId64 " * (ty0 + r) - %" PRId64 ";", g->m, g->pt);
    for (int i = 0; i < g->a; i++)
        w_line(w, "const float *restrict r%d = u + %d >= 0 && u + %d < %" PRId64 " ? xc + (u + %d) * %" PRId64 " : zr;", i,
               i, i, g->H, i, W);
    buf[0] = 0;
    for (int i = 0; i < g->a; i++) {
        size_t l = strlen(buf);
        snprintf(buf + l, sizeof buf - l, "%s*restrict t%d = s%d + r * %" PRId64 " + %" PRId64, i ? ", " : "", i, i, PW, pl);
    }
    w_line(w, "float %s;", buf);
    em_for(w, "q", n);
    for (int i = 0; i < g->a; i++)
        snprintf(ops[i], sizeof ops[i], "r%d[q]", i);
    for (int i = 0; i < g->a; i++) {
        snprintf(buf, sizeof buf, "t%d[q] = ", i);
        wino_expand(buf, sizeof buf, tf->bt[i], ops);
        w_line(w, "%s;", buf);
    }
    em_close(w, 2); /* q, r */
    w_line(w, "float *restrict vr = vb + c * %" PRId64 ";", TB);
    if (g->phased) {
        wino_input_phases(w, g, rows);
        w_close(w); /* c */
        return;
    }
    for (int i = 0; i < g->a; i++) {
        wino_v_open(w, g, rows);
        snprintf(ops[0], sizeof ops[0], "s%d[%" PRId64 " * j]", i, g->m);
        for (int q = 1; q < g->a; q++)
            snprintf(ops[q], sizeof ops[q], "s%d[%" PRId64 " * j + %d]", i, g->m, q);
        for (int k = 0; k < g->a; k++) {
            snprintf(buf, sizeof buf, "vr[%" PRId64 " + jo] = ", (int64_t)(i * g->a + k) * C * TB);
            wino_expand(buf, sizeof buf, tf->bt[k], ops);
            w_line(w, "%s;", buf);
        }
        em_close(w, g->compact ? 2 : 1);
    }
    wino_v_tail(w, g, rows);
    w_close(w); /* c */
}

/* Products of the mb x nb block (m0, j0) for the P positions: mt[p][m][j].
 * Blocks of a part vector: acc[mb][nb], started from channel 0's products instead
 * of zeros (the distillation teacher's 16->16 layer with its pool, 8x16 block,
 * 2.77-2.83 -> 2.70-2.74 ms on the AMD EPYC, best of 6 alternating runs).
 *
 * Blocks a whole number of 8-float vectors wide: one named array of lv floats per
 * output channel and vector of columns (c{mm}_{q}[lv]), the form gcc keeps in
 * registers, from zeros over all C channels. As acc[mb][nb], gcc 12 left one row of
 * an 8 x 16 block in memory on x86-64-v4 (a store and reload per multiply-add, 30%
 * of the layer's time); and with the named arrays started from channel 0's products,
 * the loop over the other 63 channels of a 64-channel layer kept every accumulator
 * in memory (an odd trip count; 64 iterations did not). */
static void wino_gemm_block(Writer *w, const WinoGeom *g, int64_t mb, int64_t nb)
{
    int64_t C = g->C, TB = g->TB;
    w_open(w, "%s", "");
    w_line(w, "const float *restrict up = x1 + (p * %" PRId64 " + m0) * %" PRId64 ";", g->M, C);
    w_line(w, "const float *restrict vp = vb + p * %" PRId64 " + j0;", C * TB);
    if (nb % 8) {
        w_line(w, "float acc[%" PRId64 "][%" PRId64 "];", mb, nb);
        em_for(w, "mm", mb);
        w_line(w, "const float wv = up[mm * %" PRId64 "];", C);
        em_for(w, "v", nb);
        w_line(w, "acc[mm][v] = wv * vp[v];");
        em_close(w, 2);
        w_open(w, "for (int64_t c = 1; c < %" PRId64 "; ++c)", C);
        w_line(w, "const float *restrict vr = vp + c * %" PRId64 ";", TB);
        em_for(w, "mm", mb);
        w_line(w, "const float wv = up[mm * %" PRId64 " + c];", C);
        em_for(w, "v", nb);
        w_line(w, "acc[mm][v] += wv * vr[v];");
        em_close(w, 3);
        em_for(w, "mm", mb);
        em_for(w, "v", nb);
        w_line(w, "mt[(p * %" PRId64 " + mm) * %" PRId64 " + j0 + v] = acc[mm][v];", g->MB, TB);
        em_close(w, 3); /* v, mm, the block */
        return;
    }
    int64_t lv = target_lanes(g->vl, nb), nq = nb / lv;
    for (int64_t mm = 0; mm < mb; mm++)
        for (int64_t q = 0; q < nq; q++)
            w_line(w, "float c%" PRId64 "_%" PRId64 "[%" PRId64 "];", mm, q, lv);
    em_for_lanes(w, "l", lv);
    for (int64_t mm = 0; mm < mb; mm++)
        for (int64_t q = 0; q < nq; q++)
            w_line(w, "c%" PRId64 "_%" PRId64 "[l] = 0;", mm, q);
    w_close(w);
    w_open(w, "for (int64_t c = 0; c < %" PRId64 "; ++c)", C);
    w_line(w, "const float *restrict vr = vp + c * %" PRId64 ";", TB);
    for (int64_t mm = 0; mm < mb; mm++)
        w_line(w, "const float w%" PRId64 " = up[%" PRId64 " + c];", mm, mm * C);
    em_for_lanes(w, "l", lv);
    for (int64_t mm = 0; mm < mb; mm++)
        for (int64_t q = 0; q < nq; q++)
            w_line(w, "c%" PRId64 "_%" PRId64 "[l] += w%" PRId64 " * vr[%" PRId64 " + l];", mm, q, mm, q * lv);
    em_close(w, 2);
    for (int64_t mm = 0; mm < mb; mm++)
        for (int64_t q = 0; q < nq; q++) {
            em_for_lanes(w, "l", lv);
            w_line(w, "mt[(p * %" PRId64 " + %" PRId64 ") * %" PRId64 " + j0 + %" PRId64 " + l] = c%" PRId64 "_%" PRId64 "[l];",
                   g->MB, mm, TB, q * lv, mm, q);
            w_close(w);
        }
    w_close(w); /* the block */
}

/* The products for the nt tiles of a chunk and the output channels m0 .. m0 + mb - 1. */
static void wino_gemm(Emitter *e, const WinoGeom *g, int64_t mb, int64_t nt)
{
    Writer *w = e->w;
    int64_t nr = g->nr < nt ? g->nr : nt, full = nt / nr * nr;
    /* without a batch split, --openmp shares out the positions of each block of
     * output channels (the products buffer and the staged rows hold one block's, so
     * the blocks cannot run side by side), when the chunk's products are worth it */
    if (g->NT == 1)
        em_omp_for(e, g->P * g->M * g->C * nt, 1);
    em_for(w, "p", g->P);
    w_open(w, "for (int64_t j0 = 0; j0 < %" PRId64 "; j0 += %" PRId64 ")", full, nr);
    wino_gemm_block(w, g, mb, nr);
    w_close(w);
    if (full < nt) {
        /* a remainder of one vector (8 columns): the last block ends at nt instead,
         * overlapping the one before (those columns are computed twice, to the same
         * values), because blocks 8 wide ran far slower than wider ones: the
         * distillation teacher's 16->16 layer as F(4x4), 40 columns in blocks of 16,
         * 4.60 -> 3.37 ms; 16->16 on 16x16, batch 8, as F(2x2), 40 columns, 299 ->
         * 172 us. Wider remainders stay: ResNet-8's 16->16 layers as F(2x2), 40
         * columns in 8x24 blocks, lost 6% with a second 24-wide block */
        int overlap = nt > nr && nt - full <= 8;
        w_open(w, "%s", "");
        w_line(w, "const int64_t j0 = %" PRId64 ";", overlap ? nt - nr : full);
        wino_gemm_block(w, g, mb, overlap ? nr : nt - full);
        w_close(w);
    }
    w_close(w); /* p */
}

/* The nrows output rows of tile row r: Y = A^T M A per tile, plus the bias; the
 * last tile of a row has only OW % m columns when m does not divide OW. */
static void wino_out_row(Writer *w, const WinoGeom *g, int64_t nrows)
{
    const WinoTf *tf = g->tf;
    int64_t S = g->MB * g->TB, OW = g->OW, full = OW / g->m;
    char buf[640], ops[6][48];
    for (int pass = 0; pass < 2; pass++) {
        int64_t lo = pass ? full : 0, hi = pass ? g->TW : full, ncols = pass ? OW % g->m : g->m;
        if (hi <= lo)
            continue;
        w_open(w, "for (int64_t tx = %" PRId64 "; tx < %" PRId64 "; ++tx)", lo, hi);
        unsigned used = 0; /* the columns of A^T M the stored outputs read */
        for (int64_t j = 0; j < ncols; j++)
            used |= tf->at_used[j];
        for (int k = 0; k < g->a; k++) {
            if (!(used >> k & 1))
                continue;
            for (int q = 0; q < g->a; q++)
                snprintf(ops[q], sizeof ops[q], "mp[%" PRId64 " + tx]", (int64_t)(q * g->a + k) * S);
            for (int64_t i = 0; i < nrows; i++) {
                snprintf(buf, sizeof buf, "const float a%d%d = ", (int)i, k);
                wino_expand(buf, sizeof buf, tf->at[i], ops);
                w_line(w, "%s;", buf);
            }
        }
        for (int64_t i = 0; i < nrows; i++) {
            for (int k = 0; k < g->a; k++)
                snprintf(ops[k], sizeof ops[k], "a%d%d", (int)i, k);
            for (int64_t j = 0; j < ncols; j++) {
                if (j)
                    snprintf(buf, sizeof buf, "y%dr[%" PRId64 " * tx + %d] = bias + ", (int)i, g->m, (int)j);
                else
                    snprintf(buf, sizeof buf, "y%dr[%" PRId64 " * tx] = bias + ", (int)i, g->m);
                wino_expand(buf, sizeof buf, tf->at[j], ops);
                w_line(w, "%s;", buf);
            }
        }
        w_close(w);
    }
}

/* pointers y1r .. y{n-1}r to the rows under y0r */
static void wino_row_ptrs(Writer *w, const WinoGeom *g, int64_t n)
{
    for (int64_t i = 1; i < n; i++)
        w_line(w, "float *restrict y%dr = y0r + %" PRId64 ";", (int)i, i * g->OW);
}

/* Staged, with a MaxPool fused (attribute pool, set by passes/winograd.c when the
 * pool is the Conv's only consumer): the windows, kh x kw at stride kh x kw without
 * padding, lie within a tile row since kh divides m, and only the pooled planes are
 * stored: the Conv's output is never written nor read back. For each row of
 * windows of tile row r (in scope: r, oy, b, m, bias): the bias and the epilogue
 * applied in place to its kh staged rows (its operands read at the Conv's output
 * index, as without the pool), then the max over each window, in MaxPool's order
 * and way. Windows past the map's end are dropped (floor mode). */
static void wino_output_pooled(Writer *w, const WinoGeom *g, const Epilogue *ep)
{
    int64_t m = g->m, OW = g->OW, PH = g->OH / g->kh, PWo = OW / g->kw, rem = g->OH % m;
    for (int64_t pr = 0; pr < m / g->kh; pr++) {
        int64_t i0 = pr * g->kh;
        if (rem && i0 + g->kh > rem) /* in the last tile row, a window may pass the map's end */
            w_open(w, "if (oy + %" PRId64 " <= %" PRId64 ")", i0 + g->kh, g->OH);
        else
            w_open(w, "%s", "");
        for (int64_t i = i0; i < i0 + g->kh; i++) {
            int k = (int)(i - i0);
            char val[32], dst[16];
            w_line(w, "float *restrict sr%d = so + %" PRId64 " + r * %" PRId64 ";", k, i * m * g->TB, m * g->TJ);
            snprintf(val, sizeof val, "bias + sr%d[x]", k);
            snprintf(dst, sizeof dst, "sr%d[x]", k);
            em_for(w, "x", OW);
            if (ep->n) {
                char idx[160];
                snprintf(idx, sizeof idx, "(b * %" PRId64 " + m) * %" PRId64 " + (oy + %" PRId64 ") * %" PRId64 " + x", g->M,
                         g->OH * OW, i, OW);
                epilogue_store(w, ep, DT_FLOAT, dst, val, idx);
            } else
                w_line(w, "%s = %s;", dst, val);
            w_close(w);
        }
        w_line(w, "float *restrict yp = y0 + (b * %" PRId64 " + m) * %" PRId64 " + (oy / %" PRId64 " + %" PRId64 ") * %" PRId64 ";",
               g->M, PH * PWo, g->kh, pr, PWo);
        em_for(w, "x", PWo);
        w_line(w, "float mx = -INFINITY;");
        for (int64_t i = 0; i < g->kh; i++)
            for (int64_t jj = 0; jj < g->kw; jj++) {
                w_line(w, "const float e%d%d = sr%d[%" PRId64 " * x + %d];", (int)i, (int)jj, (int)i, g->kw, (int)jj);
                w_line(w, "mx = e%d%d > mx ? e%d%d : mx;", (int)i, (int)jj, (int)i, (int)jj);
            }
        w_line(w, "yp[x] = mx;");
        em_close(w, 2); /* x, the row of windows' block */
    }
}

/* Staged (F(4x4)): per output channel, Y = A^T M A for all the chunk's tiles in one
 * loop (j at unit stride over the products, gap columns included), into m rows laid
 * out like the rows of s (tile j's output column jj at m * j + jj), then each output
 * row copied from them with the bias and the epilogue. A^T runs down the tiles'
 * columns into ph (free after the input transform), then A along the rows: gcc
 * vectorised neither per-tile-row loops of 7 tiles (the teacher's 28x28) nor one
 * loop holding all 36 products of a tile; these two passes it does. */
static void wino_output_staged(Writer *w, const WinoGeom *g, int64_t rows, int64_t mb, int has_bias, const Epilogue *ep)
{
    const WinoTf *tf = g->tf;
    int64_t S = g->MB * g->TB, OW = g->OW, m = g->m, cols = wino_cols(g, rows), rem = g->OH % m;
    char buf[640], ops[6][48];
    w_open(w, "for (int64_t m = m0; m < m0 + %" PRId64 "; ++m)", mb);
    w_line(w, has_bias ? "const float bias = x2[m];" : "const float bias = 0.0f;");
    w_line(w, "const float *restrict mp = mt + (m - m0) * %" PRId64 ";", g->TB);
    /* A^T down the columns of each tile into ph (free after the input transform):
     * ph[(i * a + k) * TB + j] = row i of A^T M, column k; then A along the rows */
    for (int k = 0; k < g->a; k++) {
        em_for(w, "j", cols);
        for (int q = 0; q < g->a; q++)
            snprintf(ops[q], sizeof ops[q], "mp[%" PRId64 " + j]", (int64_t)(q * g->a + k) * S);
        for (int64_t i = 0; i < m; i++) {
            snprintf(buf, sizeof buf, "ph[%" PRId64 " + j] = ", (i * g->a + k) * g->TB);
            wino_expand(buf, sizeof buf, tf->at[i], ops);
            w_line(w, "%s;", buf);
        }
        w_close(w);
    }
    for (int64_t i = 0; i < m; i++) {
        em_for(w, "j", cols);
        for (int k = 0; k < g->a; k++)
            snprintf(ops[k], sizeof ops[k], "ph[%" PRId64 " + j]", (i * g->a + k) * g->TB);
        for (int64_t jj = 0; jj < m; jj++) {
            snprintf(buf, sizeof buf, "so[%" PRId64 " + %" PRId64 " * j + %d] = ", i * m * g->TB, m, (int)jj);
            wino_expand(buf, sizeof buf, tf->at[jj], ops);
            w_line(w, "%s;", buf);
        }
        w_close(w);
    }
    w_open(w, "for (int64_t r = 0; r < rows; ++r)");
    w_line(w, "const int64_t oy = %" PRId64 " * (ty0 + r);", m);
    if (g->kh > 1) {
        wino_output_pooled(w, g, ep);
        em_close(w, 2); /* r, m */
        return;
    }
    for (int64_t i = 0; i < m; i++) {
        int partial = rem && i >= rem;
        if (partial)
            w_open(w, "if (oy + %" PRId64 " < %" PRId64 ")", i, g->OH);
        else
            w_open(w, "%s", "");
        w_line(w, "const float *restrict sr = so + %" PRId64 " + r * %" PRId64 ";", i * m * g->TB, m * g->TJ);
        em_for(w, "x", OW);
        conv_store(w, ep, DT_FLOAT, "bias + sr[x]", "(b * %" PRId64 " + m) * %" PRId64 " + (oy + %" PRId64 ") * %" PRId64 " + x",
                   g->M, g->OH * OW, i, OW);
        em_close(w, 2);
    }
    em_close(w, 2); /* r, m */
}

static void wino_output(Writer *w, const WinoGeom *g, int64_t mb, int has_bias)
{
    int64_t OW = g->OW, rem = g->OH % g->m;
    w_open(w, "for (int64_t m = m0; m < m0 + %" PRId64 "; ++m)", mb);
    w_line(w, "float *restrict ym = yb + m * %" PRId64 ";", g->OH * OW);
    w_line(w, has_bias ? "const float bias = x2[m];" : "const float bias = 0.0f;");
    w_open(w, "for (int64_t r = 0; r < rows; ++r)");
    w_line(w, "const int64_t oy = %" PRId64 " * (ty0 + r);", g->m);
    w_line(w, "const float *restrict mp = mt + (m - m0) * %" PRId64 " + r * %" PRId64 ";", g->TB, g->TJ);
    w_line(w, "float *restrict y0r = ym + oy * %" PRId64 ";", OW);
    if (rem) { /* the last tile row has only rem output rows */
        w_open(w, "if (oy + %" PRId64 " < %" PRId64 ")", g->m - 1, g->OH);
        wino_row_ptrs(w, g, g->m);
        wino_out_row(w, g, g->m);
        w_close(w);
        w_open(w, "else");
        wino_row_ptrs(w, g, rem);
        wino_out_row(w, g, rem);
        w_close(w);
    } else {
        wino_row_ptrs(w, g, g->m);
        wino_out_row(w, g, g->m);
    }
    em_close(w, 2); /* r, m */
}

/* One chunk of `rows` tile rows starting at tile row ty0 (a C variable): the input
 * transform, the products, the output transform. Without a batch split (NT = 1),
 * --openmp puts the threads on the products' channel loop and, for F(2x2), the
 * output's (F(4x4)'s output channels take turns on the staged rows in scratch). */
static void wino_chunk_body(Emitter *e, const WinoGeom *g, int64_t rows, int has_bias, const Epilogue *ep)
{
    Writer *w = e->w;
    int64_t M = g->M, nt = wino_cols(g, rows);
    w_line(w, "const int64_t rows = %" PRId64 ";", rows);
    w_line(w, "(void)rows;");
    wino_input(w, g, rows);
    int64_t mr = g->mr, nfull = M / mr, rem = M % mr;
    for (int part = 0; part < 2; part++) {
        int64_t mb = part ? rem : mr;
        if (!mb)
            continue;
        if (part) {
            w_open(w, "%s", "");
            w_line(w, "const int64_t m0 = %" PRId64 ";", nfull * mr);
        } else
            w_open(w, "for (int64_t m0 = 0; m0 < %" PRId64 "; m0 += %" PRId64 ")", nfull * mr, mr);
        wino_gemm(e, g, mb, nt);
        if (g->staged)
            wino_output_staged(w, g, rows, mb, has_bias, ep);
        else
            wino_output(w, g, mb, has_bias);
        w_close(w);
    }
}

/* The node: with NT > 1, thread th takes images [th * N / NT, (th + 1) * N / NT)
 * and scratch slice th; each image is computed the same way whatever NT is. */
static int emit_wino(Emitter *e, const Node *n, Diag *d)
{
    WinoGeom g;
    Epilogue ep;
    if (wino_geom(e->g, n, &g, d) || epilogue_read(e->g, n, 3, &ep, d))
        return -1;
    const Value *s = n->noutputs >= 2 ? node_out(e->g, n, n->noutputs - 1) : NULL;
    if (!s || !s->is_scratch || value_numel(s) < wino_scratch_floats(&g))
        return diag_error(d, n, "WinogradConv needs its scratch memory (made by passes/winograd.c and passes/scratch.c)");
    Writer *w = e->w;
    int sy = n->noutputs - 1, has_bias = node_in(e->g, n, 2) != NULL;
    int64_t C = g.C, M = g.M, TB = g.TB, nfull = g.TH / g.R, last = g.TH % g.R;
    char buf[512];
    if (g.NT > 1) {
        w_puts(w, "#ifdef _OPENMP\n");
        w_printf(w, "#pragma omp parallel for num_threads(%" PRId64 ") schedule(static)\n", g.NT);
        w_puts(w, "#endif\n");
    }
    w_open(w, "for (int64_t th = 0; th < %" PRId64 "; ++th)", g.NT);
    w_line(w, "float *restrict vb = y%d + th * %" PRId64 ";", sy, wino_thread_floats(&g));
    w_line(w, "float *restrict mt = vb + %" PRId64 ";", g.P * C * TB);
    w_line(w, "float *restrict s0 = vb + %" PRId64 ";", g.P * (C + g.MB) * TB);
    buf[0] = 0;
    for (int i = 1; i < g.a; i++) {
        size_t l = strlen(buf);
        snprintf(buf + l, sizeof buf - l, "%s*restrict s%d = s0 + %" PRId64, i > 1 ? ", " : "", i, i * g.SL);
    }
    w_line(w, "float %s;", buf);
    w_line(w, "float *restrict zw = s0 + %" PRId64 ";", g.a * g.SL);
    /* zeros: the padding row, and all of s (its padding columns and its tail stay so) */
    em_for(w, "q", g.a * g.SL + g.W);
    w_line(w, "s0[q] = 0;");
    w_close(w);
    w_line(w, "const float *zr = zw;");
    if (g.staged)
        w_line(w, "float *restrict ph = zw + %" PRId64 ", *restrict so = ph + %" PRId64 ";", g.W, g.a * g.SL);
    else if (g.phased)
        w_line(w, "float *restrict ph = zw + %" PRId64 ";", g.W);
    w_open(w, "for (int64_t b = th * %" PRId64 " / %" PRId64 "; b < (th + 1) * %" PRId64 " / %" PRId64 "; ++b)", g.N, g.NT,
           g.N, g.NT);
    w_line(w, "const float *restrict xb = x0 + b * %" PRId64 ";", C * g.H * g.W);
    if (!g.staged) /* staged, the stores index y0 with the epilogue's operands */
        w_line(w, "float *restrict yb = y0 + b * %" PRId64 ";", M * g.OH * g.OW);
    w_open(w, "for (int64_t ty0 = 0; ty0 < %" PRId64 "; ty0 += %" PRId64 ")", nfull * g.R, g.R);
    wino_chunk_body(e, &g, g.R, has_bias, &ep);
    w_close(w);
    if (last) {
        w_open(w, "%s", "");
        w_line(w, "const int64_t ty0 = %" PRId64 ";", nfull * g.R);
        wino_chunk_body(e, &g, last, has_bias, &ep);
        w_close(w);
    }
    if (ep.n && !g.staged) {
        w_open(w, "%s", "");
        w_line(w, "const int64_t m0 = 0;");
        conv_epilogue_planes(w, &ep, M, g.OH * g.OW, M);
        w_close(w);
    }
    w_close(w); /* b */
    w_close(w); /* th */
    return 0;
}

/* ---------------------------------------------------------------- the rewrite */

int wino_eligible(const Graph *g, const Node *n, int64_t pads[4], int64_t *ksize)
{
    Diag d = {0};
    ConvGeom cg;
    const Value *x = node_in(g, n, 0), *wt = node_in(g, n, 1);
    if (!n->op || !n->domain)
        return 0;
    int conv = !n->domain[0] && strcmp(n->op_type, "Conv") == 0;
    int fused = strcmp(n->domain, "kdcc") == 0 && strcmp(n->op_type, "FusedConv") == 0;
    if ((!conv && !fused) || !x || !wt || x->dtype != DT_FLOAT || wt->dtype != DT_FLOAT || !value_is_const(wt))
        return 0;
    if (n->noutputs != 1 || conv_geom(g, n, 0, &cg, &d))
        return 0;
    if (cg.nsp != 2 || cg.G != 1 || (cg.k[0] != 3 && cg.k[0] != 5) || cg.k[1] != cg.k[0] || cg.s[0] != 1 ||
        cg.s[1] != 1 || cg.dl[0] != 1 || cg.dl[1] != 1 || cg.C < WINO_MIN_CH || cg.M < WINO_MIN_CH ||
        cg.out[0] * cg.out[1] < WINO_MIN_PIXELS)
        return 0;
    int64_t r = cg.k[0];
    for (int i = 0; i < 2; i++)
        if (cg.pb[i] < 0 || cg.pb[i] > r - 1 || cg.pe[i] < 0 || cg.pe[i] > r - 1)
            return 0;
    *ksize = r;
    pads[0] = cg.pb[0];
    pads[1] = cg.pb[1];
    pads[2] = cg.pe[0];
    pads[3] = cg.pe[1];
    return 1;
}

/* F(4x4) where it was measured clearly faster than F(2x2) (the target's 8x16
 * block, best of 3-4 alternating runs, gcc -O3 -march=native, one thread;
 * F(2x2) -> F(4x4)):
 *     16->16 on 28x28, batch 64 (+ Relu, residual; the distillation teacher)  4.66 -> 3.60 ms
 *     16->16 on 32x32 (ResNet-8's first stage)                                92 -> 66 us
 *     32->32 on 32x32                                                         336 -> 232 us
 *     64->64 on 56x56                                                         2.87 -> 1.78 ms
 *     8->8 on 28x28, batch 16                                                 337 -> 275 us
 *     16->16 on 16x16, batch 8                                                177 -> 165 us
 *     32->32 on 16x16 (ResNet-8's second stage)                               104 -> 104 us
 *     16->16 on 12x12, batch 8                                                106 -> 95 us
 *     8->8 on 12x12, batch 8                                                  37 -> 37 us
 * so: output maps at least 20 wide and high (5 tiles, whose gap column, below,
 * is then at most 1/6 of the work); on smaller ones F(4x4) gained 10% at most and
 * its weights take 36/16 of F(2x2)'s bytes. Since compact rows (WINO_COMPACT),
 * also 16 wide maps 16 or more high, whose rows of 4 tiles have no gap column:
 * ResNet-8 whole, its 32->32 layer on 16x16 as F(4x4), 329-369 -> 310-346 us (4
 * alternating runs). The pass falls back to F(2x2) when the F(4x4) scratch does
 * not fit (a chunk is at least one row of tiles: 64->64 on 224 wide needs 1.2 MB). */
int64_t wino_tile(const Graph *g, const Node *n, int64_t r)
{
    const Value *y = node_out(g, n, 0);
    if (!y || y->rank != 4 || r != 3)
        return 2;
    int64_t OH = y->dims[2], OW = y->dims[3];
    return (OH >= 20 && OW >= 20) || (OH >= 16 && OW >= 16 && WINO_COMPACT((OW + 3) / 4)) ? 4 : 2;
}

/* U[p][m][c] = (G g G^T)[p] for the r x r kernel g = W[m][c] (computed in double,
 * rounded once). */
void wino_transform_weights(int64_t tile, int64_t r, const float *wt, int64_t M, int64_t C, float *u)
{
    const WinoTf *tf = wino_tf(tile, r);
    int a = tf->a, R = tf->r;
    for (int64_t m = 0; m < M; m++)
        for (int64_t c = 0; c < C; c++) {
            const float *k = wt + (m * C + c) * R * R;
            double t[6][5];
            for (int i = 0; i < a; i++)
                for (int j = 0; j < R; j++) {
                    double v = 0;
                    for (int q = 0; q < R; q++)
                        v += tf->G[i][q] * k[q * R + j];
                    t[i][j] = v;
                }
            for (int i = 0; i < a; i++)
                for (int j = 0; j < a; j++) {
                    double v = 0;
                    for (int q = 0; q < R; q++)
                        v += t[i][q] * tf->G[j][q];
                    u[((int64_t)(i * a + j) * M + m) * C + c] = (float)v;
                }
        }
}

int64_t wino_scratch_bytes(const Graph *g, const Node *n, int64_t tile, int64_t r, int64_t C, int64_t M, int64_t OH,
                           int64_t OW, int64_t rows)
{
    WinoGeom w = {0};
    w.N = node_in(g, n, 0)->dims[0];
    w.C = C;
    w.M = M;
    w.OH = OH;
    w.OW = OW;
    w.W = node_in(g, n, 0)->dims[3];
    wino_finish(g, n, &w, tile, r, rows);
    return wino_scratch_floats(&w) * (int64_t)sizeof(float);
}

static const OpDef op_wino = {
    .name = "WinogradConv", .domain = "kdcc", .since = 1,
    .min_inputs = 2, .max_inputs = -1, .min_outputs = 1, .max_outputs = 1,
    .infer = infer_wino, .emit = emit_wino, .scratch = wino_scratch, .tunable = wino_tunable,
    .summary = "3x3 or 5x5 stride-1 Conv by Winograd F(2x2,3x3), F(4x4,3x3) or F(2x2,5x5) (attributes tile and kernel) "
               "over weights transformed at compile time, with an epilogue (made by the Winograd pass)",
};

const OpDef *const ops_conv_wino[] = {&op_wino, NULL};

/* kdcc.WinogradConv: a 3x3, stride 1 Conv computed by Winograd's minimal
 * filtering F(2x2, 3x3), which makes each 2x2 block of outputs from a 4x4 patch
 * of inputs with 16 multiplications per input and output channel pair instead of
 * 36 (2.25x fewer). For each 2x2 output tile t and channel pair (m, c):
 *
 *     Y = A^T [ U ⊙ V ] A,   U = G g G^T (4x4, from the 3x3 kernel g),
 *                            V = B^T d B (4x4, from the input patch d)
 *     B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]
 *     G   = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]
 *     A^T = [1 1 1 0; 0 1 -1 -1]
 *
 * and the sum over c is, for each of the 16 transform positions p, a matrix
 * product M_p[m][t] = sum_c U_p[m][c] V_p[c][t], which runs in the same
 * register-blocked form as the other Conv kernels (compiler/ops/conv.c).
 *
 * The node is made by passes/winograd.c from a Conv or kdcc.FusedConv whose
 * weights are constant, so U = G g G^T is computed once at compile time and
 * replaces the weights (16/9 of their bytes):
 *     kdcc.WinogradConv(X[N,C,H,W], U[16,M,C], B[M]?, operands...) -> Y[N,M,OH,OW]
 *     attributes: pads (4 ints: top, left, bottom, right), tile_rows (rows of 2x2
 *     tiles per chunk; optional), the epilogue (fused.h)
 * Its scratch (passes/scratch.c) holds, per thread (Graph.threads), for one
 * chunk of tile rows, the transformed inputs V[16][C][TB] and the products
 * M[16][M][TB], the chunk's four rows of s = B^T d and a row of zeros; the node
 * cannot run without it, so the pass rewrites a Conv only when the scratch fits
 * the budget. All three steps vectorise along the chunk's tiles.
 *
 * Numerics: the transforms add and subtract inputs and the products in a
 * different order than the direct sum; the difference is a few float rounding
 * errors (tests/winograd: at most 4.4e-7 of the output's largest magnitude). */
#include "compiler/ops/conv_internal.h"

#include "compiler/ir/target.h"

#include <inttypes.h>
#include <string.h>

#define WINO_MIN_CH 8                  /* fewer input or output channels: the transforms cost more than they save */
#define WINO_CHUNK_BYTES (64 * 1024)   /* transformed inputs and products of one chunk of tile rows */
#define WINO_MIN_COLS 32               /* a chunk has at least this many tiles when the image does */
/* fewer output pixels: the transforms and the short rows of tiles cost more than the
 * multiplications saved (ResNet-8's 64->64 layer on 8x8, timed alone: 166 us as a
 * Winograd layer against 149 us direct; its 32->32 layer on 16x16: 104 against 143) */
#define WINO_MIN_PIXELS 100

typedef struct WinoGeom {
    int64_t N, C, M, H, W, OH, OW, pt, pl;
    int64_t TH, TW, T;   /* tiles: rows, columns, count */
    int64_t PW;          /* a padded input row: 2 * TW + 2 columns */
    int64_t mr, nr;      /* register block */
    int64_t R, TB;       /* tile rows per chunk; the buffers' row length: a column per tile and one gap
                            column per tile row (R * (TW + 1)), rounded up to 8 */
    int64_t SL;          /* floats of one row of s for a chunk: 2 * TB + 2 */
    int64_t NT;          /* threads the batch is split over (Graph.threads), each with its own scratch */
} WinoGeom;

/* Chunks of whole tile rows: the node's tile_rows attribute (the Winograd pass
 * sets it to what fits the scratch budget), else as many as keep the chunk's
 * buffers within WINO_CHUNK_BYTES but at least WINO_MIN_COLS tiles. The rows do
 * not depend on the register block, so neither does the scratch size: --tune's
 * candidates all fit. */
int64_t wino_default_rows(int64_t C, int64_t M, int64_t OH, int64_t OW)
{
    int64_t TW = (OW + 1) / 2, TH = (OH + 1) / 2;
    int64_t per_row = 64 * (C + M) * (TW + 1); /* bytes of V and products per tile row */
    int64_t r = WINO_CHUNK_BYTES / per_row, rmin = (WINO_MIN_COLS + TW - 1) / TW;
    if (r < rmin)
        r = rmin;
    if (r > TH)
        r = TH;
    return r < 1 ? 1 : r;
}

static void wino_chunk(WinoGeom *w, int64_t rows)
{
    int64_t r = rows > 0 ? rows : wino_default_rows(w->C, w->M, w->OH, w->OW);
    w->R = r < w->TH ? r : w->TH;
    w->TB = (w->R * (w->TW + 1) + 7) / 8 * 8;
    w->SL = 2 * w->TB + 2;
}

/* columns of V and of the products a chunk of `rows` tile rows computes */
static int64_t wino_cols(int64_t rows, int64_t TW) { return (rows * (TW + 1) + 7) / 8 * 8; }

/* Per thread: V and the products of a chunk, the chunk's four rows of s, a row of zeros. */
static int64_t wino_thread_floats(const WinoGeom *w) { return 16 * (w->C + w->M) * w->TB + 4 * w->SL + w->W; }
static int64_t wino_scratch_floats(const WinoGeom *w) { return w->NT * wino_thread_floats(w); }

static void wino_finish(const Graph *g, const Node *n, WinoGeom *w, int64_t rows)
{
    w->NT = g->threads > 1 && w->N > 1 ? (g->threads < w->N ? g->threads : w->N) : 1;
    w->TH = (w->OH + 1) / 2;
    w->TW = (w->OW + 1) / 2;
    w->T = w->TH * w->TW;
    w->PW = 2 * w->TW + 2;
    conv_block(g, n, &w->mr, &w->nr);
    if (w->mr > w->M)
        w->mr = w->M;
    wino_chunk(w, rows);
}

/* The geometry of a WinogradConv node from its inputs and attributes. */
static int wino_geom(const Graph *g, const Node *n, WinoGeom *w, Diag *d)
{
    const Value *x = node_in(g, n, 0), *u = node_in(g, n, 1);
    memset(w, 0, sizeof *w);
    if (!x || !u || x->rank != 4 || u->rank != 3 || u->dims[0] != 16)
        return diag_error(d, n, "WinogradConv wants X[N,C,H,W] and U[16,M,C]");
    if (u->dims[2] != x->dims[1])
        return diag_error(d, n, "WinogradConv: U has %" PRId64 " input channels, X has %" PRId64, u->dims[2], x->dims[1]);
    const int64_t *p;
    if (attr_ints(n, "pads", &p) != 4)
        return diag_error(d, n, "WinogradConv wants 4 pads (top, left, bottom, right)");
    for (int i = 0; i < 4; i++)
        if (p[i] < 0 || p[i] > 2)
            return diag_error(d, n, "WinogradConv: pads must be in [0, 2]");
    w->N = x->dims[0];
    w->C = x->dims[1];
    w->H = x->dims[2];
    w->W = x->dims[3];
    w->M = u->dims[1];
    w->pt = p[0];
    w->pl = p[1];
    w->OH = w->H + p[0] + p[2] - 2;
    w->OW = w->W + p[1] + p[3] - 2;
    if (w->OH < 1 || w->OW < 1)
        return diag_error(d, n, "WinogradConv: the input is smaller than the kernel");
    int64_t rows = attr_int(n, "tile_rows", 0);
    if (rows < 0)
        return diag_error(d, n, "WinogradConv: tile_rows must be positive");
    wino_finish(g, n, w, rows);
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
    int64_t dims[4] = {w.N, w.M, w.OH, w.OW};
    value_set_shape(node_out(g, n, 0), DT_FLOAT, 4, dims);
    Epilogue ep;
    if (epilogue_read(g, n, 3, &ep, d) || epilogue_check(g, n, &ep, node_out(g, n, 0), d))
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

/* Input transform of channel c for a chunk of tile rows: s = B^T d down the rows,
 * straight from the four input rows of each tile row (a row of zeros in scratch
 * stands for rows in the padding; the padding columns of s are zero from the
 * start of the call), then V = s B along the tiles' columns. The rows of s lie end
 * to end, PW = 2 * TW + 2 floats each, so tile tx of tile row r starts at s column
 * 2 * j with j = r * (TW + 1) + tx: one loop over j covers the whole chunk, at the
 * price of one unused column per tile row (its values are finite and never
 * stored to y). Measured on the distillation teacher's 16->16 layer: per-row loops
 * of 14 tiles spent most of the input transform in their scalar remainders. */
static void wino_input(Writer *w, const WinoGeom *g, int64_t rows)
{
    int64_t C = g->C, TB = g->TB, PW = g->PW, W = g->W, pl = g->pl;
    int64_t n = pl + W < PW ? W : PW - pl; /* input columns a row of s uses */
    em_for(w, "c", C);
    w_line(w, "const float *restrict xc = xb + c * %" PRId64 ";", g->H * W);
    em_for(w, "r", rows);
    w_line(w, "const int64_t u = 2 * (ty0 + r) - %" PRId64 ";", g->pt);
    for (int i = 0; i < 4; i++)
        w_line(w, "const float *restrict r%d = u + %d >= 0 && u + %d < %" PRId64 " ? xc + (u + %d) * %" PRId64 " : zr;", i,
               i, i, g->H, i, W);
    w_line(w, "float *restrict t0 = s0 + r * %" PRId64 " + %" PRId64 ", *restrict t1 = s1 + r * %" PRId64 " + %" PRId64
              ", *restrict t2 = s2 + r * %" PRId64 " + %" PRId64 ", *restrict t3 = s3 + r * %" PRId64 " + %" PRId64 ";",
           PW, pl, PW, pl, PW, pl, PW, pl);
    em_for(w, "q", n);
    w_line(w, "t0[q] = r0[q] - r2[q];");
    w_line(w, "t1[q] = r1[q] + r2[q];");
    w_line(w, "t2[q] = r2[q] - r1[q];");
    w_line(w, "t3[q] = r1[q] - r3[q];");
    em_close(w, 2); /* q, r */
    w_line(w, "float *restrict vr = vb + c * %" PRId64 ";", TB);
    for (int i = 0; i < 4; i++) {
        em_for(w, "j", wino_cols(rows, g->TW));
        w_line(w, "vr[%" PRId64 " + j] = s%d[2 * j] - s%d[2 * j + 2];", (int64_t)(i * 4 + 0) * C * TB, i, i);
        w_line(w, "vr[%" PRId64 " + j] = s%d[2 * j + 1] + s%d[2 * j + 2];", (int64_t)(i * 4 + 1) * C * TB, i, i);
        w_line(w, "vr[%" PRId64 " + j] = s%d[2 * j + 2] - s%d[2 * j + 1];", (int64_t)(i * 4 + 2) * C * TB, i, i);
        w_line(w, "vr[%" PRId64 " + j] = s%d[2 * j + 1] - s%d[2 * j + 3];", (int64_t)(i * 4 + 3) * C * TB, i, i);
        w_close(w);
    }
    w_close(w); /* c */
}

/* Products of the mb x nb block (m0, j0) for the 16 positions: mt[p][m][j]. */
static void wino_gemm_block(Writer *w, const WinoGeom *g, int64_t mb, int64_t nb)
{
    int64_t C = g->C, TB = g->TB;
    em_for(w, "p", 16);
    w_line(w, "float acc[%" PRId64 "][%" PRId64 "];", mb, nb);
    em_for(w, "mm", mb);
    em_for(w, "v", nb);
    w_line(w, "acc[mm][v] = 0;");
    em_close(w, 2);
    w_line(w, "const float *restrict up = x1 + (p * %" PRId64 " + m0) * %" PRId64 ";", g->M, C);
    w_line(w, "const float *restrict vp = vb + p * %" PRId64 " + j0;", C * TB);
    em_for(w, "c", C);
    w_line(w, "const float *restrict vr = vp + c * %" PRId64 ";", TB);
    em_for(w, "mm", mb);
    w_line(w, "const float wv = up[mm * %" PRId64 " + c];", C);
    em_for(w, "v", nb);
    w_line(w, "acc[mm][v] += wv * vr[v];");
    em_close(w, 3);
    em_for(w, "mm", mb);
    em_for(w, "v", nb);
    w_line(w, "mt[(p * %" PRId64 " + m0 + mm) * %" PRId64 " + j0 + v] = acc[mm][v];", g->M, TB);
    em_close(w, 3); /* v, mm, p */
}

/* The products for the nt tiles of a chunk and the output channels m0 .. m0 + mb - 1. */
static void wino_gemm(Writer *w, const WinoGeom *g, int64_t mb, int64_t nt)
{
    int64_t nr = g->nr < nt ? g->nr : nt, full = nt / nr * nr;
    w_open(w, "for (int64_t j0 = 0; j0 < %" PRId64 "; j0 += %" PRId64 ")", full, nr);
    wino_gemm_block(w, g, mb, nr);
    w_close(w);
    if (full < nt) {
        w_open(w, "%s", "");
        w_line(w, "const int64_t j0 = %" PRId64 ";", full);
        wino_gemm_block(w, g, mb, nt - full);
        w_close(w);
    }
}

/* One output row pair of tile row r: Y = A^T M A per tile, plus the bias. */
static void wino_out_row(Writer *w, const WinoGeom *g, int both)
{
    int64_t S = g->M * g->TB, OW = g->OW, pairs = OW / 2;
    for (int pass = 0; pass < 2; pass++) {
        int64_t lo = pass ? pairs : 0, hi = pass ? g->TW : pairs;
        if (hi <= lo)
            continue;
        w_open(w, "for (int64_t tx = %" PRId64 "; tx < %" PRId64 "; ++tx)", lo, hi);
        for (int k = 0; k < (pass ? 3 : 4); k++) { /* the tail (odd OW) has no second column */
            w_line(w, "const float a0%d = mp[%" PRId64 " + tx] + mp[%" PRId64 " + tx] + mp[%" PRId64 " + tx];", k,
                   (int64_t)(0 * 4 + k) * S, (int64_t)(1 * 4 + k) * S, (int64_t)(2 * 4 + k) * S);
            if (both)
                w_line(w, "const float a1%d = mp[%" PRId64 " + tx] - mp[%" PRId64 " + tx] - mp[%" PRId64 " + tx];", k,
                       (int64_t)(1 * 4 + k) * S, (int64_t)(2 * 4 + k) * S, (int64_t)(3 * 4 + k) * S);
        }
        w_line(w, "y0r[2 * tx] = bias + a00 + a01 + a02;");
        if (!pass)
            w_line(w, "y0r[2 * tx + 1] = bias + a01 - a02 - a03;");
        if (both) {
            w_line(w, "y1r[2 * tx] = bias + a10 + a11 + a12;");
            if (!pass)
                w_line(w, "y1r[2 * tx + 1] = bias + a11 - a12 - a13;");
        }
        w_close(w);
    }
}

static void wino_output(Writer *w, const WinoGeom *g, int has_bias)
{
    int64_t OW = g->OW;
    em_for(w, "m", g->M);
    w_line(w, "float *restrict ym = yb + m * %" PRId64 ";", g->OH * OW);
    w_line(w, has_bias ? "const float bias = x2[m];" : "const float bias = 0.0f;");
    w_open(w, "for (int64_t r = 0; r < rows; ++r)");
    w_line(w, "const int64_t oy = 2 * (ty0 + r);");
    w_line(w, "const float *restrict mp = mt + m * %" PRId64 " + r * %" PRId64 ";", g->TB, g->TW + 1);
    w_line(w, "float *restrict y0r = ym + oy * %" PRId64 ";", OW);
    if (g->OH % 2) {
        w_open(w, "if (oy + 1 < %" PRId64 ")", g->OH);
        w_line(w, "float *restrict y1r = y0r + %" PRId64 ";", OW);
        wino_out_row(w, g, 1);
        w_close(w);
        w_open(w, "else");
        wino_out_row(w, g, 0);
        w_close(w);
    } else {
        w_line(w, "float *restrict y1r = y0r + %" PRId64 ";", OW);
        wino_out_row(w, g, 1);
    }
    em_close(w, 2); /* r, m */
}

/* One chunk of `rows` tile rows starting at tile row ty0 (a C variable): the input
 * transform, the products, the output transform. Without a batch split (NT = 1),
 * --openmp puts the threads on the products' and the output's channel loops. */
static void wino_chunk_body(Emitter *e, const WinoGeom *g, int64_t rows, int has_bias)
{
    Writer *w = e->w;
    int64_t M = g->M, nt = wino_cols(rows, g->TW);
    w_line(w, "const int64_t rows = %" PRId64 ";", rows);
    w_line(w, "(void)rows;");
    wino_input(w, g, rows);
    int64_t mr = g->mr, nfull = M / mr, rem = M % mr;
    if (g->NT == 1)
        em_omp_for(e, 16 * nfull * mr * g->C * nt, 1);
    w_open(w, "for (int64_t m0 = 0; m0 < %" PRId64 "; m0 += %" PRId64 ")", nfull * mr, mr);
    wino_gemm(w, g, mr, nt);
    w_close(w);
    if (rem) {
        w_open(w, "%s", "");
        w_line(w, "const int64_t m0 = %" PRId64 ";", nfull * mr);
        wino_gemm(w, g, rem, nt);
        w_close(w);
    }
    if (g->NT == 1)
        em_omp_for(e, 32 * M * nt, 1);
    wino_output(w, g, has_bias);
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
    if (g.NT > 1) {
        w_puts(w, "#ifdef _OPENMP\n");
        w_printf(w, "#pragma omp parallel for num_threads(%" PRId64 ") schedule(static)\n", g.NT);
        w_puts(w, "#endif\n");
    }
    w_open(w, "for (int64_t th = 0; th < %" PRId64 "; ++th)", g.NT);
    w_line(w, "float *restrict vb = y%d + th * %" PRId64 ";", sy, wino_thread_floats(&g));
    w_line(w, "float *restrict mt = vb + %" PRId64 ";", 16 * C * TB);
    w_line(w, "float *restrict s0 = vb + %" PRId64 ";", 16 * (C + M) * TB);
    w_line(w, "float *restrict s1 = s0 + %" PRId64 ", *restrict s2 = s0 + %" PRId64 ", *restrict s3 = s0 + %" PRId64 ";",
           g.SL, 2 * g.SL, 3 * g.SL);
    w_line(w, "float *restrict zw = s0 + %" PRId64 ";", 4 * g.SL);
    /* zeros: the padding row, and all of s (its padding columns and its tail stay so) */
    em_for(w, "q", 4 * g.SL + g.W);
    w_line(w, "s0[q] = 0;");
    w_close(w);
    w_line(w, "const float *zr = zw;");
    w_open(w, "for (int64_t b = th * %" PRId64 " / %" PRId64 "; b < (th + 1) * %" PRId64 " / %" PRId64 "; ++b)", g.N, g.NT,
           g.N, g.NT);
    w_line(w, "const float *restrict xb = x0 + b * %" PRId64 ";", C * g.H * g.W);
    w_line(w, "float *restrict yb = y0 + b * %" PRId64 ";", M * g.OH * g.OW);
    w_open(w, "for (int64_t ty0 = 0; ty0 < %" PRId64 "; ty0 += %" PRId64 ")", nfull * g.R, g.R);
    wino_chunk_body(e, &g, g.R, has_bias);
    w_close(w);
    if (last) {
        w_open(w, "%s", "");
        w_line(w, "const int64_t ty0 = %" PRId64 ";", nfull * g.R);
        wino_chunk_body(e, &g, last, has_bias);
        w_close(w);
    }
    if (ep.n) {
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

int wino_eligible(const Graph *g, const Node *n, int64_t pads[4])
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
    if (cg.nsp != 2 || cg.G != 1 || cg.k[0] != 3 || cg.k[1] != 3 || cg.s[0] != 1 || cg.s[1] != 1 || cg.dl[0] != 1 ||
        cg.dl[1] != 1 || cg.C < WINO_MIN_CH || cg.M < WINO_MIN_CH || cg.out[0] * cg.out[1] < WINO_MIN_PIXELS)
        return 0;
    for (int i = 0; i < 2; i++)
        if (cg.pb[i] < 0 || cg.pb[i] > 2 || cg.pe[i] < 0 || cg.pe[i] > 2)
            return 0;
    pads[0] = cg.pb[0];
    pads[1] = cg.pb[1];
    pads[2] = cg.pe[0];
    pads[3] = cg.pe[1];
    return 1;
}

/* U[p][m][c] = (G g G^T)[p] for the 3x3 kernel g = W[m][c] (computed in double). */
void wino_transform_weights(const float *wt, int64_t M, int64_t C, float *u)
{
    static const double G[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
    for (int64_t m = 0; m < M; m++)
        for (int64_t c = 0; c < C; c++) {
            const float *k = wt + (m * C + c) * 9;
            double t[4][3];
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 3; j++)
                    t[i][j] = G[i][0] * k[0 * 3 + j] + G[i][1] * k[1 * 3 + j] + G[i][2] * k[2 * 3 + j];
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 4; j++)
                    u[((int64_t)(i * 4 + j) * M + m) * C + c] =
                        (float)(t[i][0] * G[j][0] + t[i][1] * G[j][1] + t[i][2] * G[j][2]);
        }
}

int64_t wino_scratch_bytes(const Graph *g, const Node *n, int64_t C, int64_t M, int64_t OH, int64_t OW, int64_t rows)
{
    WinoGeom w = {0};
    w.N = node_in(g, n, 0)->dims[0];
    w.C = C;
    w.M = M;
    w.OH = OH;
    w.OW = OW;
    w.W = node_in(g, n, 0)->dims[3];
    wino_finish(g, n, &w, rows);
    return wino_scratch_floats(&w) * (int64_t)sizeof(float);
}

static const OpDef op_wino = {
    .name = "WinogradConv", .domain = "kdcc", .since = 1,
    .min_inputs = 2, .max_inputs = -1, .min_outputs = 1, .max_outputs = 1,
    .infer = infer_wino, .emit = emit_wino, .scratch = wino_scratch, .tunable = wino_tunable,
    .summary = "3x3 stride-1 Conv by Winograd F(2x2,3x3) over weights transformed at compile time, with an epilogue "
               "(made by the Winograd pass)",
};

const OpDef *const ops_conv_wino[] = {&op_wino, NULL};

/* Depthwise and pointwise Conv kernels (float32), the two halves of a
 * depthwise-separable layer, which the general kernels of conv.c serve badly: a
 * depthwise Conv has one input channel per output channel, so there is no block of
 * output channels sharing an input to hold in registers, and a pointwise (1x1) Conv
 * is a plain matrix product that needs no im2col copy.
 *
 * Depthwise (groups with DW_MAX_CG input channels or fewer and fewer than PP_MIN_M
 * output channels each: group == C, multiplier 1 or a few; 1-D or 2-D, any stride,
 * padding and dilation, kernel rows up to UNROLL_TAPS wide). Per image and group,
 * the group's input planes are copied into the node's scratch as zero-padded
 * "phase planes": with stride s, padded row r = r' * s + a and column
 * c = c' * s + b go to plane (a, b) at (r', c'). Output pixel (oy, ox) under tap
 * (k0, k1) reads padded (oy * s0 + k0 * d0, ox * s1 + k1 * d1), which is plane
 * ((k0 d0) % s0, (k1 d1) % s1) at (oy + (k0 d0) / s0, ox + (k1 d1) / s1): with
 * q = oy * PW + ox (PW the planes' width), every tap reads its plane at q plus a
 * constant, whatever the stride. Output pixels are then one contiguous run over q,
 * computed in blocks of DW_NR with the accumulators in registers and the taps
 * written out (constant bounds, unit-stride loads, no edge conditions: gcc
 * vectorises the block). The PW - OW columns past each output row are computed and
 * dropped when the run is copied out of the scratch into Y, through the epilogue.
 * Only the phases some tap reads are copied (stride 1: one plane, the padded one).
 *
 * Pointwise (1x1, stride 1, no padding; conv.c's conv_flatten_pointwise made it
 * 1-D over the P pixels): per image and group, Y[Mg][P] = W[Mg][Cg] x X[Cg][P],
 * where X's rows of pixels are already contiguous, so there is no copy. A block of
 * MR output channels x NR pixels accumulates in a local pwacc[MR][NR] over the
 * input channels, weights broadcast, the pixels innermost; the last P % NR pixels
 * take a block of that width. The block is conv_block's (--tune may choose it).
 * Measured with gcc 12 -O3 -march=native on an AMD EPYC (AVX2, 16 ymm registers):
 * see pw_default_block. */
#include "compiler/ops/conv_internal.h"

#include "compiler/ir/target.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* ---------------------------------------------------------------- depthwise */

/* Output pixels per register block (8 ymm registers on AVX2). Measured with gcc 12
 * -O3 -march=native on the AMD EPYC, 3x3 layers (DS-CNN's 64 x 25 x 5, MobileNet's
 * 8 x 48 x 48, 16 x 48 x 48 stride 2, 128 x 6 x 6), us: 64 wide 8.6, 12.4, 12.0, 7.6;
 * 32 wide 10.5, 15.3, 15.6, 7.6; 96 and 128 wide slower again; 16 wide 2-4x slower
 * (not kept in registers). */
#define DW_NR 64
#define DW_MAX_CG 4     /* input channels per group */
#define DW_MAX_TAPS 64  /* taps written out one by one; past that, a loop over kernel rows */

typedef struct DwPlan {
    int64_t IH, IW, OH, OW, K0, K1, s0, s1, d0, d1, pt, pl;
    int64_t PH, PW, PS;       /* phase planes: rows, columns, floats per plane */
    int nslot;                /* phase planes copied per input channel */
    int slot[16][16];         /* (row phase, column phase) -> plane index, -1 if unread */
    int64_t Q, QR;            /* run of output pixels q = oy * PW + ox, rounded up to DW_NR */
    int64_t plane;            /* floats per input channel: nslot * PS */
    int64_t slack;            /* zeroed floats after the planes (reads of dropped pixels) */
    int64_t run;              /* offset of the block outputs (QR floats) in the scratch */
    int64_t floats;           /* scratch floats */
} DwPlan;

static int dw_plan(const Graph *g, const Node *n, const ConvGeom *cg, DwPlan *p)
{
    const Value *x = node_in(g, n, 0);
    if (!x || x->dtype != DT_FLOAT || cg->transpose || cg->nsp < 1 || cg->nsp > 2)
        return 0;
    int64_t Cg = cg->C / cg->G, Mg = cg->M / cg->G;
    if (Cg > DW_MAX_CG || Mg >= PP_MIN_M)
        return 0;
    int L = cg->nsp - 1;
    memset(p, 0, sizeof *p);
    p->IH = L ? cg->in[0] : 1;
    p->OH = L ? cg->out[0] : 1;
    p->K0 = L ? cg->k[0] : 1;
    p->s0 = L ? cg->s[0] : 1;
    p->d0 = L ? cg->dl[0] : 1;
    p->pt = L ? cg->pb[0] : 0;
    p->IW = cg->in[L];
    p->OW = cg->out[L];
    p->K1 = cg->k[L];
    p->s1 = cg->s[L];
    p->d1 = cg->dl[L];
    p->pl = cg->pb[L];
    if (p->K1 > UNROLL_TAPS || p->s0 > 16 || p->s1 > 16 || p->pt < 0 || p->pl < 0)
        return 0;
    p->PH = p->OH + (p->K0 - 1) * p->d0 / p->s0;
    p->PW = p->OW + (p->K1 - 1) * p->d1 / p->s1;
    p->PS = p->PH * p->PW;
    /* worth it only when the dropped columns are few enough */
    if (p->PW > 2 * p->OW + 2)
        return 0;
    for (int a = 0; a < 16; a++)
        for (int b = 0; b < 16; b++)
            p->slot[a][b] = -1;
    for (int64_t k0 = 0; k0 < p->K0; k0++)
        for (int64_t k1 = 0; k1 < p->K1; k1++) {
            int a = (int)(k0 * p->d0 % p->s0), b = (int)(k1 * p->d1 % p->s1);
            if (p->slot[a][b] < 0)
                p->slot[a][b] = p->nslot++;
        }
    p->Q = p->OH * p->PW;
    p->QR = (p->Q + DW_NR - 1) / DW_NR * DW_NR;
    /* a map so small that the blocks would be mostly padding (256 channels of 3 x 3:
     * 9.8 us against 4.5 for the per-row path): the other paths */
    if (p->QR > 2 * p->Q)
        return 0;
    p->plane = p->nslot * p->PS;
    int64_t maxoff = (p->K0 - 1) * p->d0 / p->s0 * p->PW + (p->K1 - 1) * p->d1 / p->s1;
    p->slack = maxoff + p->QR - p->PS;
    if (p->slack < 0)
        p->slack = 0;
    p->run = Cg * p->plane + p->slack;
    p->floats = p->run + p->QR;
    return 1;
}


/* Copy input channel ci of group g into its phase planes at y1 + ci * plane. */
static void dw_copy(Writer *w, const ConvGeom *cg, const DwPlan *p)
{
    int64_t Cg = cg->C / cg->G;
    w_line(w, "const float *restrict xc = x0 + (b * %" PRId64 " + g * %" PRId64 " + ci) * %" PRId64 ";",
           cg->C, Cg, p->IH * p->IW);
    for (int a = 0; a < p->s0 && a < 16; a++)
        for (int bb = 0; bb < p->s1 && bb < 16; bb++) {
            if (p->slot[a][bb] < 0)
                continue;
            /* plane column c' holds input column c' * s1 + bb - pl: valid for c' in [clo, chi) */
            int64_t clo = conv_ceildiv(p->pl - bb, p->s1), chi = conv_floordiv(p->IW - 1 + p->pl - bb, p->s1) + 1;
            if (clo < 0)
                clo = 0;
            if (chi > p->PW)
                chi = p->PW;
            if (chi < clo)
                chi = clo;
            w_open(w, "%s", "");
            w_line(w, "float *restrict pp = y1 + ci * %" PRId64 " + %" PRId64 ";", p->plane,
                   (int64_t)p->slot[a][bb] * p->PS);
            em_for(w, "r", p->PH);
            w_line(w, "const int64_t u = r * %" PRId64 " + %" PRId64 ";", p->s0, a - p->pt);
            w_line(w, "float *restrict pr = pp + r * %" PRId64 ";", p->PW);
            conv_pad_row(w, p->IH, p->IW, p->PW, clo, chi, p->s1, bb - p->pl);
            w_close(w);   /* r */
            w_close(w);   /* plane */
        }
}

/* The taps of kernel row k0 (a C expression or a constant) for plane row offset. */
static void dw_taps(Writer *w, const DwPlan *p, int64_t k0)
{
    for (int64_t k1 = 0; k1 < p->K1; k1++) {
        int a = (int)(k0 * p->d0 % p->s0), bb = (int)(k1 * p->d1 % p->s1);
        int64_t off = p->slot[a][bb] * p->PS + k0 * p->d0 / p->s0 * p->PW + k1 * p->d1 / p->s1;
        w_open(w, "%s", "");
        w_line(w, "const float wv = wc[%" PRId64 "];", k0 * p->K1 + k1);
        w_line(w, "const float *restrict xq = pc + %" PRId64 ";", off);
        em_for(w, "v", DW_NR);
        w_line(w, "dwacc[v] += wv * xq[v];");
        w_close(w);
        w_close(w);
    }
}

int emit_conv_depthwise(Emitter *e, const Node *n, const ConvGeom *cg, const Epilogue *ep)
{
    DwPlan p;
    if (n->noutputs != 2 || !node_out(e->g, n, 1) || !dw_plan(e->g, n, cg, &p))
        return 0;
    const Value *t = node_out(e->g, n, 1);
    if (t->dtype != DT_FLOAT || value_numel(t) < p.floats)
        return 0;
    Writer *w = e->w;
    int has_bias = node_in(e->g, n, 2) != NULL;
    int64_t Cg = cg->C / cg->G, Mg = cg->M / cg->G, KSZ = p.K0 * p.K1, OSZ = p.OH * p.OW;
    w_line(w, "/* depthwise: %" PRId64 " phase plane(s) of %" PRId64 " x %" PRId64 " per input channel */",
           (int64_t)p.nslot, p.PH, p.PW);
    if (p.slack) {
        em_for(w, "j", p.slack);
        w_line(w, "y1[%" PRId64 " + j] = 0;", Cg * p.plane);
        w_close(w);
    }
    em_for(w, "b", cg->N);
    em_for(w, "g", cg->G);
    em_for(w, "ci", Cg);
    dw_copy(w, cg, &p);
    w_close(w);   /* ci */
    em_for(w, "mo", Mg);
    w_line(w, "const int64_t m = g * %" PRId64 " + mo;", Mg);
    w_line(w, "float *restrict yq = y1 + %" PRId64 ";", p.run);
    em_omp_for(e, p.QR * KSZ * Cg, 1);   /* the q0 loop: each block its own outputs */
    w_open(w, "for (int64_t q0 = 0; q0 < %" PRId64 "; q0 += %d)", p.QR, DW_NR);
    w_line(w, "float dwacc[%d];", DW_NR);
    em_for(w, "v", DW_NR);
    w_line(w, has_bias ? "dwacc[v] = x2[m];" : "dwacc[v] = 0;");
    w_close(w);
    em_for(w, "ci", Cg);
    w_line(w, "const float *restrict pc = y1 + ci * %" PRId64 " + q0;", p.plane);
    w_line(w, "const float *restrict wc = x1 + (m * %" PRId64 " + ci) * %" PRId64 ";", Cg, KSZ);
    if (KSZ <= DW_MAX_TAPS) {
        for (int64_t k0 = 0; k0 < p.K0; k0++)
            dw_taps(w, &p, k0);
    } else {
        /* kernel rows in a loop; within a row, the taps written out (k0's phase varies,
         * so the plane offset is computed) */
        em_for(w, "k0", p.K0);
        w_line(w, "const int64_t a = k0 * %" PRId64 " %% %" PRId64 ", r0 = k0 * %" PRId64 " / %" PRId64 ";",
               p.d0, p.s0, p.d0, p.s0);
        for (int64_t k1 = 0; k1 < p.K1; k1++) {
            int bb = (int)(k1 * p.d1 % p.s1);
            /* plane of (a, bb): a table indexed by a */
            w_open(w, "%s", "");
            w_printf(w, "static const int64_t sl[%" PRId64 "] = {", p.s0);
            for (int a = 0; a < p.s0; a++)
                w_printf(w, "%s%d", a ? ", " : "", p.slot[a][bb] < 0 ? 0 : p.slot[a][bb]);
            w_puts(w, "};\n");
            w_line(w, "const float wv = wc[k0 * %" PRId64 " + %" PRId64 "];", p.K1, k1);
            w_line(w, "const float *restrict xq = pc + sl[a] * %" PRId64 " + r0 * %" PRId64 " + %" PRId64 ";", p.PS,
                   p.PW, k1 * p.d1 / p.s1);
            em_for(w, "v", DW_NR);
            w_line(w, "dwacc[v] += wv * xq[v];");
            w_close(w);
            w_close(w);
        }
        w_close(w);   /* k0 */
    }
    w_close(w);   /* ci */
    em_for(w, "v", DW_NR);
    w_line(w, "yq[q0 + v] = dwacc[v];");
    w_close(w);
    w_close(w);   /* q0 */
    /* the run's pixels of each output row, through the epilogue */
    em_for(w, "oy", p.OH);
    em_for(w, "ox", p.OW);
    char val[64];
    snprintf(val, sizeof val, "yq[oy * %" PRId64 " + ox]", p.PW);
    conv_store(w, ep, DT_FLOAT, val, "(b * %" PRId64 " + m) * %" PRId64 " + oy * %" PRId64 " + ox", cg->M, OSZ, p.OW);
    em_close(w, 2);
    w_close(w);   /* mo */
    em_close(w, 2);   /* g, b */
    return 1;
}

/* ---------------------------------------------------------------- pointwise */

/* A pointwise geometry after conv_flatten_pointwise: 1-D, one tap, stride 1, no padding. */
static int pw_ok(const Graph *g, const Node *n, const ConvGeom *cg)
{
    const Value *x = node_in(g, n, 0);
    for (int i = 0; i < cg->nsp; i++)
        if (cg->k[i] != 1 || cg->s[i] != 1 || cg->pb[i] != 0 || cg->pe[i] != 0)
            return 0;
    return x && x->dtype == DT_FLOAT && !cg->transpose && cg->nsp >= 1;
}

/* The register block: --tune's choice, else (untuned, on a SIMD target) 2 x 4
 * vectors: on the AMD EPYC (AVX2), --tune chose 2x32 for 5 of the 10 distinct
 * pointwise layers of DS-CNN and MobileNetV1 x0.25, 3x32 for 3, 4x32 and 8x24 for one
 * each; never the target's 8 x 16 of the other kernels. */
static void pw_block_size(const Graph *g, const Node *n, int64_t *mr, int64_t *nr)
{
    const Target *t = g->target ? g->target : target_default();
    conv_block(g, n, mr, nr);
    if (n->block_m <= 0 && n->block_n <= 0 && t->vector_bytes >= 16) {
        *mr = 2;
        *nr = t->vector_bytes;   /* 4 vectors of vector_bytes / 4 floats */
    }
}

int conv_dw_tunable(const Graph *g, const Node *n)
{
    Diag d = {0};
    ConvGeom cg;
    DwPlan p;
    if (conv_geom(g, n, 0, &cg, &d))
        return -1;
    if (dw_plan(g, n, &cg, &p))
        return 0;
    return pw_ok(g, n, &cg) ? 1 : -1;
}

/* The pointwise blocks: mr x nr over the first pf = P - P % nr pixels; the other rem
 * pixels in one block of width tw = rem rounded up to the vector (vl floats), which
 * reads a zero-padded copy of those columns of X (Cg x tw floats of scratch), so no
 * block has a partial vector. Per block of channels, the weights are first packed
 * into the scratch as wp[Cg][mr] (Mg x Cg floats per image, against Mg x Cg x P
 * multiply-adds).
 *
 * The block's accumulators are mr x nr / vl arrays of vl floats, one loop over the
 * vl lanes holding every update of an input channel: gcc 12 turns each array into
 * one vector register and each statement into one FMA. Measured on the AMD EPYC
 * (AVX2), K = 128, GFLOP/s: with this form 2x32 70, 3x32 64, 4x24 53, 4x32 48, 8x16
 * 44, 6x16 39, 8x8 25, 4x16 20; written as acc[mr][nr] with loops over both, 4x16
 * ran at 3, 8x8 at 6, 8x16 at 2 (gcc vectorised the wrong loop or kept acc in
 * memory), and reading the weights in place (strided by Cg) instead of packed made
 * 4x16 and 8x8 fall to 5 (gcc vectorised the loop over the input channels). */
typedef struct PwPlan {
    int64_t P, mr, nr, vl, pf, rem, tw, tail, pack;
    int chan;   /* few pixels: the channel-vector form (pwc_rows) */
} PwPlan;

/* Fewer pixels than this: the channel-vector form. */
#define PW_CHAN_MAX_P 48

static int pw_plan(const Graph *g, const Node *n, const ConvGeom *cg, PwPlan *p)
{
    if (!pw_ok(g, n, cg))
        return 0;
    const Target *t = g->target ? g->target : target_default();
    int64_t Cg = cg->C / cg->G, Mg = cg->M / cg->G;
    p->vl = t->vector_bytes >= 8 ? t->vector_bytes / 4 : 1;
    p->P = 1;
    for (int i = 0; i < cg->nsp; i++)
        p->P *= cg->out[i];
    pw_block_size(g, n, &p->mr, &p->nr);
    p->chan = p->vl > 1 && p->P < PW_CHAN_MAX_P && Mg >= p->vl;
    if (p->chan) {
        /* the block's pixels x channels are --tune's mr x nr, channels in vectors */
        p->nr = (p->nr + p->vl - 1) / p->vl * p->vl;
        if (p->nr > (Mg + p->vl - 1) / p->vl * p->vl)
            p->nr = (Mg + p->vl - 1) / p->vl * p->vl;
        if (p->mr > p->P)
            p->mr = p->P;
        p->pack = Cg * p->nr;
        p->tail = p->pf = p->rem = p->tw = 0;
        return p->mr * (p->nr / p->vl) <= 64;
    }
    if (p->mr > Mg)
        p->mr = Mg;
    p->nr = (p->nr + p->vl - 1) / p->vl * p->vl;
    if (p->mr < 1 || p->nr < 1 || p->mr * (p->nr / p->vl) > 64)
        return 0;
    p->pf = p->P / p->nr * p->nr;
    p->rem = p->P - p->pf;
    p->tw = (p->rem + p->vl - 1) / p->vl * p->vl;
    p->tail = p->rem % p->vl ? Cg * p->tw : 0;
    p->pack = Cg * p->mr;
    return 1;
}

/* The accumulators of a pointwise block: rows x nv vector-wide arrays c<row>_<v>[vl]. */
static void pw_acc_decl(Writer *w, int64_t rows, int64_t nv, int64_t vl)
{
    w_printf(w, "float ");
    for (int64_t i = 0; i < rows; i++)
        for (int64_t v = 0; v < nv; v++)
            w_printf(w, "%sc%" PRId64 "_%" PRId64 "[%" PRId64 "]", i || v ? ", " : "", i, v, vl);
    w_puts(w, ";\n");
}

/* One block of mb channels (first "m0") x width pixels from "p0"; X's rows from
 * xsrc with row stride xs; the first `store` pixels stored. */
static void pw_block(Writer *w, const ConvGeom *cg, const PwPlan *p, int has_bias, int64_t mb, int64_t width,
                     const char *xsrc, int64_t xs, int64_t store)
{
    int64_t Cg = cg->C / cg->G, nv = width / p->vl, vl = p->vl;
    pw_acc_decl(w, mb, nv, vl);
    em_for(w, "l", vl);
    for (int64_t i = 0; i < mb; i++)
        for (int64_t v = 0; v < nv; v++) {
            if (has_bias)
                w_line(w, "c%" PRId64 "_%" PRId64 "[l] = x2[m0 + %" PRId64 "];", i, v, i);
            else
                w_line(w, "c%" PRId64 "_%" PRId64 "[l] = 0;", i, v);
        }
    w_close(w);
    em_for(w, "c", Cg);
    w_line(w, "const float *restrict xr = %s + c * %" PRId64 ";", xsrc, xs);
    w_line(w, "const float *restrict wr = wp + c * %" PRId64 ";", mb);
    for (int64_t i = 0; i < mb; i++)
        w_line(w, "const float a%" PRId64 " = wr[%" PRId64 "];", i, i);
    em_for(w, "l", vl);
    for (int64_t i = 0; i < mb; i++)
        for (int64_t v = 0; v < nv; v++)
            w_line(w, "c%" PRId64 "_%" PRId64 "[l] += a%" PRId64 " * xr[%" PRId64 " + l];", i, v, i, v * vl);
    em_close(w, 2);
    for (int64_t i = 0; i < mb; i++) {
        w_open(w, "%s", "");
        w_line(w, "float *restrict yr = y0 + (b * %" PRId64 " + m0 + %" PRId64 ") * %" PRId64 " + p0;", cg->M, i, p->P);
        for (int64_t v = 0; v < nv && v * vl < store; v++) {
            int64_t k = store - v * vl < vl ? store - v * vl : vl;
            em_for(w, "l", k);
            w_line(w, "yr[%" PRId64 " + l] = c%" PRId64 "_%" PRId64 "[l];", v * vl, i, v);
            w_close(w);
        }
        w_close(w);
    }
}

/* mb channels from m0 (declared by the caller) over every pixel of image b, group g. */
static void pw_rows(Emitter *e, const ConvGeom *cg, const PwPlan *p, int has_bias, int64_t mb, const Epilogue *ep)
{
    Writer *w = e->w;
    int64_t Cg = cg->C / cg->G;
    char src[128];
    w_line(w, "float *restrict wp = y1 + %" PRId64 ";", p->tail);
    em_for(w, "c", Cg);
    em_for(w, "i", mb);
    w_line(w, "wp[c * %" PRId64 " + i] = x1[(m0 + i) * %" PRId64 " + c];", mb, Cg);
    em_close(w, 2);
    snprintf(src, sizeof src, "x0 + (b * %" PRId64 " + g * %" PRId64 ") * %" PRId64 " + p0", cg->C, Cg, p->P);
    if (p->pf) {
        em_omp_for(e, p->pf * mb * Cg, 1);   /* the p0 loop: each block its own outputs */
        w_open(w, "for (int64_t p0 = 0; p0 < %" PRId64 "; p0 += %" PRId64 ")", p->pf, p->nr);
        pw_block(w, cg, p, has_bias, mb, p->nr, src, p->P, p->nr);
        w_close(w);
    }
    if (p->rem) {
        w_open(w, "%s", "");
        w_line(w, "const int64_t p0 = %" PRId64 ";", p->pf);
        if (p->tail)
            pw_block(w, cg, p, has_bias, mb, p->tw, "y1", p->tw, p->rem);
        else
            pw_block(w, cg, p, has_bias, mb, p->tw, src, p->P, p->rem);
        w_close(w);
    }
    conv_epilogue_planes(w, ep, cg->M, p->P, mb);
}

/* The channel-vector form, for layers of few pixels (P < PW_CHAN_MAX_P: a 6 x 6 or
 * 3 x 3 map, where blocks of pixels would be mostly padding): the roles swap, the
 * vectors run over output channels. A block of np pixels x nc channels (nc a
 * multiple of the vector, the weights packed as wp[Cg][nc] with zeros past Mg)
 * accumulates np x nc / vl vector arrays; per input channel, np pixels of X are
 * broadcast and nc / vl weight vectors loaded. The stores scatter over the output
 * planes (stride P), few against Cg x np x nc / vl multiply-adds. */
static void pwc_block(Writer *w, const ConvGeom *cg, const PwPlan *p, int has_bias, int64_t np, int64_t nc,
                      int64_t valid)
{
    int64_t Cg = cg->C / cg->G, nv = nc / p->vl, vl = p->vl;
    pw_acc_decl(w, np, nv, vl);
    em_for(w, "l", vl);
    for (int64_t j = 0; j < np; j++)
        for (int64_t v = 0; v < nv; v++)
            w_line(w, "c%" PRId64 "_%" PRId64 "[l] = 0;", j, v);
    w_close(w);
    em_for(w, "c", Cg);
    w_line(w, "const float *restrict xr = x0 + (b * %" PRId64 " + g * %" PRId64 " + c) * %" PRId64 " + p0;", cg->C, Cg,
           p->P);
    w_line(w, "const float *restrict wr = wp + c * %" PRId64 ";", nc);
    for (int64_t j = 0; j < np; j++)
        w_line(w, "const float a%" PRId64 " = xr[%" PRId64 "];", j, j);
    em_for(w, "l", vl);
    for (int64_t j = 0; j < np; j++)
        for (int64_t v = 0; v < nv; v++)
            w_line(w, "c%" PRId64 "_%" PRId64 "[l] += a%" PRId64 " * wr[%" PRId64 " + l];", j, v, j, v * vl);
    em_close(w, 2);
    for (int64_t v = 0; v < nv && v * vl < valid; v++) {
        int64_t k = valid - v * vl < vl ? valid - v * vl : vl;
        em_for(w, "l", k);
        w_line(w, "float *restrict yr = y0 + (b * %" PRId64 " + m0 + %" PRId64 " + l) * %" PRId64 " + p0;", cg->M, v * vl,
               p->P);
        for (int64_t j = 0; j < np; j++) {
            if (has_bias)
                w_line(w, "yr[%" PRId64 "] = c%" PRId64 "_%" PRId64 "[l] + x2[m0 + %" PRId64 " + l];", j, j, v, v * vl);
            else
                w_line(w, "yr[%" PRId64 "] = c%" PRId64 "_%" PRId64 "[l];", j, j, v);
        }
        w_close(w);
    }
}

/* Channels m0 .. m0 + mb - 1 (m0 declared by the caller; nc >= mb packed) over every
 * pixel of image b, group g. */
static void pwc_rows(Emitter *e, const ConvGeom *cg, const PwPlan *p, int has_bias, int64_t mb, int64_t nc,
                     const Epilogue *ep)
{
    Writer *w = e->w;
    int64_t Cg = cg->C / cg->G, np = p->mr, pf = p->P / np * np;
    w_line(w, "float *restrict wp = y1;");
    em_for(w, "c", Cg);
    em_for(w, "i", mb);
    w_line(w, "wp[c * %" PRId64 " + i] = x1[(m0 + i) * %" PRId64 " + c];", nc, Cg);
    w_close(w);
    if (mb < nc) {
        w_open(w, "for (int64_t i = %" PRId64 "; i < %" PRId64 "; ++i)", mb, nc);
        w_line(w, "wp[c * %" PRId64 " + i] = 0;", nc);
        w_close(w);
    }
    w_close(w);
    if (pf) {
        em_omp_for(e, pf * nc * Cg, 1);   /* the p0 loop: each block its own outputs */
        w_open(w, "for (int64_t p0 = 0; p0 < %" PRId64 "; p0 += %" PRId64 ")", pf, np);
        pwc_block(w, cg, p, has_bias, np, nc, mb);
        w_close(w);
    }
    if (p->P > pf) {
        w_open(w, "%s", "");
        w_line(w, "const int64_t p0 = %" PRId64 ";", pf);
        pwc_block(w, cg, p, has_bias, p->P - pf, nc, mb);
        w_close(w);
    }
    conv_epilogue_planes(w, ep, cg->M, p->P, mb);
}

static void emit_pwc(Emitter *e, const ConvGeom *cg, const PwPlan *p, int has_bias, const Epilogue *ep)
{
    Writer *w = e->w;
    int64_t Mg = cg->M / cg->G, nc = p->nr, nfull = Mg / nc, rem = Mg % nc;
    w_line(w, "/* pointwise: blocks of %" PRId64 " pixels x %" PRId64 " channels, vectors over the channels */", p->mr,
           nc);
    em_for(w, "b", cg->N);
    em_for(w, "g", cg->G);
    if (nfull) {
        w_open(w, "for (int64_t mo = 0; mo < %" PRId64 "; mo += %" PRId64 ")", nfull * nc, nc);
        w_line(w, "const int64_t m0 = g * %" PRId64 " + mo;", Mg);
        pwc_rows(e, cg, p, has_bias, nc, nc, ep);
        w_close(w);
    }
    if (rem) {
        w_open(w, "%s", "");
        w_line(w, "const int64_t m0 = g * %" PRId64 " + %" PRId64 ";", Mg, nfull * nc);
        pwc_rows(e, cg, p, has_bias, rem, (rem + p->vl - 1) / p->vl * p->vl, ep);
        w_close(w);
    }
    em_close(w, 2);   /* g, b */
}

int emit_conv_pointwise(Emitter *e, const Node *n, const ConvGeom *cg, const Epilogue *ep)
{
    PwPlan p;
    if (n->noutputs != 2 || !node_out(e->g, n, 1) || !pw_plan(e->g, n, cg, &p))
        return 0;
    const Value *t = node_out(e->g, n, 1);
    if (t->dtype != DT_FLOAT || value_numel(t) < p.tail + p.pack)
        return 0;
    Writer *w = e->w;
    int has_bias = node_in(e->g, n, 2) != NULL;
    if (p.chan) {
        emit_pwc(e, cg, &p, has_bias, ep);
        return 1;
    }
    int64_t Cg = cg->C / cg->G, Mg = cg->M / cg->G;
    int64_t nfull = Mg / p.mr, rem = Mg % p.mr;
    w_line(w, "/* pointwise: blocks of %" PRId64 " channels x %" PRId64 " pixels, weights packed%s */", p.mr, p.nr,
           p.tail ? ", the last pixels from a padded copy" : "");
    em_for(w, "b", cg->N);
    em_for(w, "g", cg->G);
    if (p.tail) {
        em_for(w, "c", Cg);
        w_line(w, "const float *restrict xr = x0 + (b * %" PRId64 " + g * %" PRId64 " + c) * %" PRId64 " + %" PRId64 ";",
               cg->C, Cg, p.P, p.pf);
        em_for(w, "j", p.rem);
        w_line(w, "y1[c * %" PRId64 " + j] = xr[j];", p.tw);
        w_close(w);
        w_open(w, "for (int64_t j = %" PRId64 "; j < %" PRId64 "; ++j)", p.rem, p.tw);
        w_line(w, "y1[c * %" PRId64 " + j] = 0;", p.tw);
        em_close(w, 2);
    }
    w_open(w, "for (int64_t mo = 0; mo < %" PRId64 "; mo += %" PRId64 ")", nfull * p.mr, p.mr);
    w_line(w, "const int64_t m0 = g * %" PRId64 " + mo;", Mg);
    pw_rows(e, cg, &p, has_bias, p.mr, ep);
    w_close(w);
    if (rem) {
        w_open(w, "%s", "");
        w_line(w, "const int64_t m0 = g * %" PRId64 " + %" PRId64 ";", Mg, nfull * p.mr);
        pw_rows(e, cg, &p, has_bias, rem, ep);
        w_close(w);
    }
    em_close(w, 2);   /* g, b */
    return 1;
}

int64_t conv_dw_scratch(const Graph *g, const Node *n, const ConvGeom *cg)
{
    DwPlan p;
    PwPlan q;
    if (dw_plan(g, n, cg, &p))
        return p.floats * (int64_t)sizeof(float);
    if (pw_plan(g, n, cg, &q))
        return (q.tail + q.pack) * (int64_t)sizeof(float);
    return 0;
}

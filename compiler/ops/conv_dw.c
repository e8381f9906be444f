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
 * Most layers take the flat form instead (dwf_*, below: stride 1 with "same" rows,
 * and strides up to DWF_MAX_S whose taps read no input column past a phase plane's
 * row of OW); the phase-plane form keeps the rest (kernels wider than DWF_MAX_K1,
 * "valid" strided rows, the flat form's scratch over the node's budget).
 *
 * Between activations stored channels-last (passes/layout.c), a third form,
 * emit_dwl: vectors over the channels, see DWL_MAX_TAPS.
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

/* The geometry of a depthwise layer, 1-D (one row) or 2-D. */
typedef struct DwGeom {
    int64_t IH, IW, OH, OW, K0, K1, s0, s1, d0, d1, pt, pl;
} DwGeom;

/* 1 if node n is a float depthwise Conv (at most max_cg input channels and fewer
 * than PP_MIN_M output channels per group) of one or two spatial dims; its geometry. */
static int dw_geom(const Graph *g, const Node *n, const ConvGeom *cg, int64_t max_cg, DwGeom *d)
{
    const Value *x = node_in(g, n, 0);
    if (!x || x->dtype != DT_FLOAT || cg->transpose || cg->nsp < 1 || cg->nsp > 2)
        return 0;
    if (cg->C / cg->G > max_cg || cg->M / cg->G >= PP_MIN_M)
        return 0;
    int L = cg->nsp - 1;
    d->IH = L ? cg->in[0] : 1;
    d->OH = L ? cg->out[0] : 1;
    d->K0 = L ? cg->k[0] : 1;
    d->s0 = L ? cg->s[0] : 1;
    d->d0 = L ? cg->dl[0] : 1;
    d->pt = L ? cg->pb[0] : 0;
    d->IW = cg->in[L];
    d->OW = cg->out[L];
    d->K1 = cg->k[L];
    d->s1 = cg->s[L];
    d->d1 = cg->dl[L];
    d->pl = cg->pb[L];
    return d->pt >= 0 && d->pl >= 0;
}

typedef struct DwPlan {
    DwGeom geo;
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
    memset(p, 0, sizeof *p);
    if (!dw_geom(g, n, cg, DW_MAX_CG, &p->geo))
        return 0;
    int64_t Cg = cg->C / cg->G;
    if (p->geo.K1 > UNROLL_TAPS || p->geo.s0 > 16 || p->geo.s1 > 16)
        return 0;
    p->PH = p->geo.OH + (p->geo.K0 - 1) * p->geo.d0 / p->geo.s0;
    p->PW = p->geo.OW + (p->geo.K1 - 1) * p->geo.d1 / p->geo.s1;
    p->PS = p->PH * p->PW;
    /* worth it only when the dropped columns are few enough */
    if (p->PW > 2 * p->geo.OW + 2)
        return 0;
    for (int a = 0; a < 16; a++)
        for (int b = 0; b < 16; b++)
            p->slot[a][b] = -1;
    for (int64_t k0 = 0; k0 < p->geo.K0; k0++)
        for (int64_t k1 = 0; k1 < p->geo.K1; k1++) {
            int a = (int)(k0 * p->geo.d0 % p->geo.s0), b = (int)(k1 * p->geo.d1 % p->geo.s1);
            if (p->slot[a][b] < 0)
                p->slot[a][b] = p->nslot++;
        }
    p->Q = p->geo.OH * p->PW;
    p->QR = (p->Q + DW_NR - 1) / DW_NR * DW_NR;
    /* a map so small that the blocks would be mostly padding (256 channels of 3 x 3:
     * 9.8 us against 4.5 for the per-row path): the other paths */
    if (p->QR > 2 * p->Q)
        return 0;
    p->plane = p->nslot * p->PS;
    int64_t maxoff = (p->geo.K0 - 1) * p->geo.d0 / p->geo.s0 * p->PW + (p->geo.K1 - 1) * p->geo.d1 / p->geo.s1;
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
           cg->C, Cg, p->geo.IH * p->geo.IW);
    for (int a = 0; a < p->geo.s0 && a < 16; a++)
        for (int bb = 0; bb < p->geo.s1 && bb < 16; bb++) {
            if (p->slot[a][bb] < 0)
                continue;
            /* plane column c' holds input column c' * s1 + bb - pl: valid for c' in [clo, chi) */
            int64_t clo = conv_ceildiv(p->geo.pl - bb, p->geo.s1), chi = conv_floordiv(p->geo.IW - 1 + p->geo.pl - bb, p->geo.s1) + 1;
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
            w_line(w, "const int64_t u = r * %" PRId64 " + %" PRId64 ";", p->geo.s0, a - p->geo.pt);
            w_line(w, "float *restrict pr = pp + r * %" PRId64 ";", p->PW);
            conv_pad_row(w, p->geo.IH, p->geo.IW, p->PW, clo, chi, p->geo.s1, bb - p->geo.pl);
            w_close(w);   /* r */
            w_close(w);   /* plane */
        }
}

/* The taps of kernel row k0 (a C expression or a constant) for plane row offset. */
static void dw_taps(Writer *w, const DwPlan *p, int64_t k0)
{
    for (int64_t k1 = 0; k1 < p->geo.K1; k1++) {
        int a = (int)(k0 * p->geo.d0 % p->geo.s0), bb = (int)(k1 * p->geo.d1 % p->geo.s1);
        int64_t off = p->slot[a][bb] * p->PS + k0 * p->geo.d0 / p->geo.s0 * p->PW + k1 * p->geo.d1 / p->geo.s1;
        w_open(w, "%s", "");
        w_line(w, "const float wv = wc[%" PRId64 "];", k0 * p->geo.K1 + k1);
        w_line(w, "const float *restrict xq = pc + %" PRId64 ";", off);
        em_for(w, "v", DW_NR);
        w_line(w, "dwacc[v] += wv * xq[v];");
        w_close(w);
        w_close(w);
    }
}

/* ---------------------------------------------------------------- depthwise, flat */

/* Stride 1 with output rows as wide as input rows ("same" padding along the last
 * dimension: DS-CNN's 25 x 5 maps, MobileNet's 6 x 6 and 3 x 3): the output plane is
 * read as one flat run q = oy * OW + ox, and tap (k0, k1) reads input q + (k0 d0 - pt)
 * IW + dx with dx = k1 d1 - pl, a constant offset, from one copy of the input plane
 * between zero margins for the rows above and below. A read with ox + dx outside the
 * row lands in a neighbouring row's first or last |dx| columns, so such a read is
 * replaced by zero where ox + dx is outside the row: a constant table per dx, one
 * byte per output pixel (`kd_dwm<k1>`). Every output pixel is computed once (no dropped
 * columns, unlike the phase planes, which on a 5-wide map compute 7 columns per row
 * and on 6 x 6 round 48 pixels up to a block of 64), a vector of pixels at a time
 * with the kernel's weights and the accumulators in registers, and the vector goes
 * through the epilogue straight into Y.
 * Before, each dx had its own copy of the plane with the crossing columns zeroed
 * (K1 copies, and K1 x the scratch), and each tap updated a block of 64 pixels in
 * memory: on DS-CNN the copies were memcpy calls taking 7% of the model's time,
 * and its four depthwise layers ran at about 25 GFLOP/s. Taken wherever it applies.
 *
 * In place: a read q + (k0 d0 - pt) IW + dx that lands inside the input plane is in
 * a valid row whenever its column is (masked otherwise), so the vectors whose reads
 * all land inside it (all but the first and last few rows) read the input plane in
 * place, and only the floats the others read are copied into the zero-margined
 * buffer (on 48 x 48, 210 of 2304 per channel; on 6 x 6 the whole plane still).
 * MobileNetV1 x0.25's 8 x 48 x 48 layer alone, best of ~30000 calls: 9.8 us with
 * the whole copy, 8.5 in place; in the model (perf, no inlining) the copies'
 * memmove went from 2.1% of the time to 0.7%, the layers' own share up by 0.7%.
 *
 * Strided (dwf_phases): the same, over phase planes whose rows are OW wide. Tap
 * (k0, k1) reads input row oy s0 + k0 d0 - pt = (oy + dy) s0 + a and column
 * ox s1 + k1 d1 - pl = (ox + dx) s1 + b (a, b the phases, dy, dx floor quotients),
 * so with plane (a, b) holding input row i s0 + a, column j s1 + b at i * OW + j,
 * every tap reads its plane at q + dy OW + dx, q = oy * OW + ox the flat output
 * pixel: one run over q again, straight into Y, with the row-crossing reads (ox + dx
 * outside [0, OW)) masked as before. The planes' columns past a phase's input columns
 * and rows past its input rows are zeros, written once per call with the margins; a
 * layer where some tap reads an input column at j >= OW (a "valid" row of a stride-2
 * layer: 48 columns to 23 outputs, the last tap at column 46) cannot be laid out so
 * and keeps the phase-plane form. The copy de-interleaves each input row once (gcc
 * loads it and permutes); only the phases some tap reads are kept. The sums are in
 * the phase-plane form's order (bias, then the taps in the kernel's order, padding
 * adding w * 0), so the outputs are bitwise those of that form.
 * MobileNetV1 x0.25's stride-2 layers (3x3, pads 1, Clip), us per call alone, gcc 12
 * -O3 -march=native on the AMD EPYC, best of ~30000 calls, phase-plane form -> flat:
 * 16 x 48 x 48 10.6 -> 9.5, 32 x 24 x 24 7.8 -> 5.1, 64 x 12 x 12 5.5 -> 2.6 (and
 * 128 x 6 x 6 -> 3 x 3 2.4 -> 2.3, channels last); the whole model (with the in-place
 * reads above), best call, 301 -> 288 us. On the 48 x 48 map the copy is over half
 * the time (the de-interleave alone, without the taps, 6.3 us; a plain copy of the
 * same floats 3.5: gcc de-interleaves with two vpermd and a blend per vector). */
#define DWF_MAX_K1 8    /* kernel columns */
/* Input planes copied before any is read: the taps' unaligned loads of a plane just
 * written by the copy's vector stores wait for those stores to leave the store
 * buffer (a load that spans two stores is not forwarded), so a few channels are
 * copied first, then computed. */
#define DWF_CB 4
/* Tiny maps of many channels (MobileNet's 256 x 3 x 3): a plane of 9 pixels is two
 * vectors, the second nearly empty, and the per-channel work (weights, copy, table
 * loads) outweighs the taps. There the vectors run over 8 channels instead
 * (dwc_emit): the input is copied channels-last into a padded [PH][PW][C] map and
 * the weights into [K0 * K1][C], and every output pixel is C / 8 vectors of taps,
 * whose lanes are stored to the channels' planes. Its scratch is larger than the
 * flat form's; a node whose budget does not hold it keeps the flat form.
 * MobileNet's 256 x 3 x 3 layer (perf, no inlining) went from 2.6% of the model's
 * time to 1.0%; its 128 x 6 x 6 layers from 1.3% to 1.7% each, so 6 x 6 stays flat.
 * Strides too: output pixel (oy, ox) reads the padded map at (oy s0, ox s1), and
 * the input rows and columns past the last tap's reach are not copied. */
#define DWC_MAX_P 16   /* output pixels per channel */
#define DWC_MIN_C 16

#define DWF_MAX_S 4     /* strides (phases per dimension) */
#define DWF_L1_FLOATS 4096   /* 16 KiB */

typedef struct DwfPlan {
    DwGeom geo;
    int64_t P;     /* output pixels per plane, OH * OW */
    int64_t vw;    /* floats per vector of pixels: 16 on targets with 16-float vectors (x86-64-v4,
                    * whose zmm registers then hold them: MobileNetV1 x0.25 141 -> 135 us on the
                    * Xeon, DS-CNN 45.5 -> 45.1, bench harness medians alternating), else 8 */
    int64_t PV;    /* pixels computed: P, rounded up to whole vectors on vector targets */
    int64_t lead;  /* zeros before each (phase) plane in the copy */
    int64_t FS;    /* floats of one (phase) plane's copy: lead + plane + the zeros the last reads reach */
    int64_t CS;    /* floats per channel: nph * FS */
    int64_t cb;    /* channels copied at a time (DWF_CB, or fewer groups) */
    int64_t floats;
    int64_t clf;   /* channels last (dwc_emit), for a tiny map of many channels: its
                    * scratch floats when it applies (taken when the node got them), else 0 */
    int64_t PH, PW;  /* channels last: the padded map's rows and columns */
    /* strided (s0 or s1 > 1): phase planes of rows OW floats wide */
    int strided, nph;
    int slot[DWF_MAX_S][DWF_MAX_S];  /* (row phase, column phase) -> plane, -1 if unread */
    int64_t HC[DWF_MAX_S];  /* per row phase: input rows copied */
    int64_t WC[DWF_MAX_S];  /* per column phase: input columns copied */
    /* stride 1: the vectors q0 in [qa, qb) read the input plane in place (0, 0: none) */
    int64_t qa, qb, top, bot;   /* and the copy: plane floats [0, top) and [bot, P) */
} DwfPlan;

/* a tap's input offset t = k d - pad as phase t mod s and plane offset floor(t / s) */
static void dwf_phase(int64_t t, int64_t s, int *ph, int64_t *off)
{
    *off = conv_floordiv(t, s);
    *ph = (int)(t - *off * s);
}

/* The strided form's phase planes (see DWF_MAX_S); 0 if a tap reads input columns
 * past the plane's row of OW, which rows that wide cannot hold. */
static int dwf_phases(DwfPlan *p)
{
    const DwGeom *d = &p->geo;
    int64_t OW = d->OW, minoff = 0, maxoff = 0, maxdy[DWF_MAX_S];
    for (int a = 0; a < DWF_MAX_S; a++) {
        maxdy[a] = INT64_MIN;
        p->HC[a] = p->WC[a] = 0;
        for (int b = 0; b < DWF_MAX_S; b++)
            p->slot[a][b] = -1;
    }
    for (int64_t k0 = 0; k0 < d->K0; k0++)
        for (int64_t k1 = 0; k1 < d->K1; k1++) {
            int a, b;
            int64_t dy, dx;
            dwf_phase(k0 * d->d0 - d->pt, d->s0, &a, &dy);
            dwf_phase(k1 * d->d1 - d->pl, d->s1, &b, &dx);
            int64_t wb = b < d->IW ? (d->IW - b + d->s1 - 1) / d->s1 : 0;   /* input columns of phase b */
            if (dx > 0 && wb > OW)
                return 0;
            if (p->slot[a][b] < 0)
                p->slot[a][b] = p->nph++;
            if (dy > maxdy[a])
                maxdy[a] = dy;
            int64_t off = dy * OW + dx;
            if (!k0 && !k1)
                minoff = maxoff = off;
            minoff = off < minoff ? off : minoff;
            maxoff = off > maxoff ? off : maxoff;
            p->WC[b] = wb < OW ? wb : OW;
        }
    int64_t body = 0;
    for (int a = 0; a < d->s0; a++) {
        if (maxdy[a] == INT64_MIN)
            continue;
        int64_t ha = a < d->IH ? (d->IH - a + d->s0 - 1) / d->s0 : 0, need = d->OH + maxdy[a];
        p->HC[a] = ha < need ? ha : need;
        if (p->HC[a] < 0)
            p->HC[a] = 0;
        if (p->HC[a] * OW > body)
            body = p->HC[a] * OW;
    }
    p->lead = minoff < 0 ? -minoff : 0;
    p->FS = p->lead + (p->PV + maxoff > body ? p->PV + maxoff : body);
    return 1;
}

static int dwf_plan(const Graph *g, const Node *n, const ConvGeom *cg, DwfPlan *p)
{
    memset(p, 0, sizeof *p);
    if (!dw_geom(g, n, cg, 1, &p->geo))
        return 0;
    p->strided = p->geo.s0 > 1 || p->geo.s1 > 1;
    if (p->geo.K1 > DWF_MAX_K1 || p->geo.K0 * p->geo.K1 > 64)
        return 0;
    if (p->strided ? p->geo.s0 > DWF_MAX_S || p->geo.s1 > DWF_MAX_S : p->geo.OW != p->geo.IW)
        return 0;
    const Target *tg = g->target ? g->target : target_default();
    p->P = p->geo.OH * p->geo.OW;
    p->vw = tg->vector_bytes >= 64 ? 16 : 8;
    p->PV = tg->vector_bytes >= 16 ? (p->P + p->vw - 1) / p->vw * p->vw : p->P;
    if (p->strided) {
        if (!dwf_phases(p))
            return 0;
    } else {
        p->nph = 1;
        p->lead = p->geo.pt * p->geo.IW + p->geo.pl;
        int64_t maxoff = ((p->geo.K0 - 1) * p->geo.d0 - p->geo.pt) * p->geo.IW + (p->geo.K1 - 1) * p->geo.d1 - p->geo.pl;
        int64_t end = p->PV + maxoff, plane = p->geo.IH * p->geo.IW;
        p->FS = p->lead + (end > plane ? end : plane);
        /* the vectors whose reads all fall in the plane (in place, see the comment
         * above DWF_MAX_K1), when they leave a copy of under half the plane */
        int64_t vw = p->vw, qa = (p->lead + vw - 1) / vw * vw, last = plane - vw - maxoff;
        int64_t qb = last >= 0 ? last / vw * vw + vw : 0;
        if (qb > plane / vw * vw)
            qb = plane / vw * vw;
        if (qb - qa >= 2 * vw && qb - p->lead >= qa + maxoff && (qa + maxoff) + (plane - qb + p->lead) < plane / 2 &&
            (qa + maxoff > 0 || qb - p->lead < plane)) {   /* (nothing to copy, 1 x 1: the whole copy kept) */
            p->qa = qa;
            p->qb = qb;
            p->top = qa + maxoff;
            p->bot = qb - p->lead;
            /* the last vector, which ends at the plane's end (see dwf_chunk), reads from P - vw - lead */
            if (p->P % vw && p->P >= vw && p->P - vw - p->lead < p->bot)
                p->bot = p->P - vw - p->lead;
        }
    }
    p->CS = p->nph * p->FS;
    p->cb = cg->G < DWF_CB ? cg->G : DWF_CB;
    /* strided: the channels copied at a time within DWF_L1_FLOATS (the phase planes
     * are read back from L1: MobileNet's 16 x 48 x 48 stride-2 layer, 9.6 KB of
     * planes per channel, 10.4 us in chunks of 4 channels, 9.8 in chunks of 1) */
    if (p->strided && p->cb > 1 && p->cb * p->CS > DWF_L1_FLOATS)
        p->cb = DWF_L1_FLOATS / p->CS > 1 ? DWF_L1_FLOATS / p->CS : 1;
    p->floats = p->cb * p->CS;
    if (tg->vector_bytes >= 16 && cg->G == cg->C && cg->M == cg->C && cg->C % 8 == 0 && cg->C >= DWC_MIN_C &&
        p->P <= DWC_MAX_P) {
        p->PH = (p->geo.OH - 1) * p->geo.s0 + (p->geo.K0 - 1) * p->geo.d0 + 1;
        p->PW = (p->geo.OW - 1) * p->geo.s1 + (p->geo.K1 - 1) * p->geo.d1 + 1;
        p->clf = (p->PH * p->PW + p->geo.K0 * p->geo.K1) * cg->C;
    }
    return 1;
}

/* Fit the form into `avail` floats of scratch: 1 if its scratch fits, or, strided,
 * fits when fewer channels (at least one) are copied at a time, which then it does. */
static int dwf_fit(DwfPlan *p, int64_t avail)
{
    if (p->floats <= avail)
        return 1;
    if (!p->strided || p->CS > avail)
        return 0;
    p->cb = avail / p->CS;
    p->floats = p->cb * p->CS;
    return 1;
}

/* the output columns [*lo, *hi) whose reads at column offset dx cross the row edge */
static void dwf_crossing(const DwfPlan *p, int64_t dx, int64_t *lo, int64_t *hi)
{
    int64_t IW = p->geo.OW;   /* the rows' width: the input's (stride 1) or the phase planes' */
    *lo = *hi = 0;
    if (dx < 0)
        *hi = -dx < IW ? -dx : IW;   /* ox + dx < 0 */
    else if (dx > 0)
        *lo = IW - dx > 0 ? IW - dx : 0, *hi = IW;   /* ox + dx >= IW */
}

static int64_t dwf_dx(const DwfPlan *p, int64_t k1) { return conv_floordiv(k1 * p->geo.d1 - p->geo.pl, p->geo.s1); }

/* tap (k0, k1)'s read offset from output pixel q in its channel's copy */
static int64_t dwf_off(const DwfPlan *p, int64_t k0, int64_t k1)
{
    int a, b;
    int64_t dy, dx;
    dwf_phase(k0 * p->geo.d0 - p->geo.pt, p->geo.s0, &a, &dy);
    dwf_phase(k1 * p->geo.d1 - p->geo.pl, p->geo.s1, &b, &dx);
    return p->slot[a][b] * p->FS + p->lead + dy * p->geo.OW + dx;
}

/* The `width` (<= 8) output pixels from q0 (a C expression) of output channel m, in
 * one loop over the pixels (a lanes loop when the width is a whole vector): the
 * whole block is straight-line vector code, the sum in a register. The taps add in
 * the order of the kernel (rows, then columns); a masked read adds w * 0, as the
 * zeroed columns of the former per-dx copies did, so the sums are bitwise those of
 * that kernel. The read is made before the choice: a load under a condition is not
 * if-converted by gcc 12 (nor, under the default -ftrapping-math, an add under one:
 * masking the sum of a column of taps instead left the loop scalar).
 * With store < width (the last, partial vector of the plane) the whole vector is
 * computed into cv, whose first `store` pixels are then stored: the copy and the
 * masks reach that far, and one vector costs less than a scalar loop. */
static void dwf_block(Writer *w, const ConvGeom *cg, const DwfPlan *p, int has_bias, const char *q0, int64_t width,
                      int64_t store, const Epilogue *ep, const char *src, int64_t shift)
{
    if (store < width) {
        w_open(w, "%s", "");
        w_line(w, "float cv[%" PRId64 "];", width);
    }
    (width == p->vw ? em_for_lanes : em_for)(w, "l", width);
    for (int64_t k1 = 0; k1 < p->geo.K1; k1++) {
        int64_t lo, hi;
        dwf_crossing(p, dwf_dx(p, k1), &lo, &hi);
        if (hi > lo && hi - lo < p->geo.OW)
            w_line(w, "const int in%" PRId64 " = kd_dwm%" PRId64 "[%s + l];", k1, k1, q0);
    }
    w_line(w, "float c = %s;", has_bias ? "bm" : "0");
    for (int64_t k0 = 0; k0 < p->geo.K0; k0++)
        for (int64_t k1 = 0; k1 < p->geo.K1; k1++) {
            int64_t dx = dwf_dx(p, k1), lo, hi, k = k0 * p->geo.K1 + k1;
            int64_t off = dwf_off(p, k0, k1) - shift;
            dwf_crossing(p, dx, &lo, &hi);
            if (hi - lo >= p->geo.OW)
                continue;   /* every read of this column of taps is outside the row */
            if (hi > lo) {
                w_line(w, "const float v%" PRId64 " = %s[%" PRId64 " + %s + l];", k, src, off, q0);
                w_line(w, "c += w%" PRId64 " * (in%" PRId64 " ? v%" PRId64 " : 0.0f);", k, k1, k);
            } else {
                w_line(w, "c += w%" PRId64 " * %s[%" PRId64 " + %s + l];", k, src, off, q0);
            }
        }
    if (store < width) {
        w_line(w, "cv[l] = c;");
        w_close(w);
        em_for(w, "l", store);
        conv_store(w, ep, DT_FLOAT, "cv[l]", "(b * %" PRId64 " + m) * %" PRId64 " + %s + l", cg->M, p->P, q0);
        w_close(w);
    } else {
        conv_store(w, ep, DT_FLOAT, "c", "(b * %" PRId64 " + m) * %" PRId64 " + %s + l", cg->M, p->P, q0);
    }
    w_close(w);
}

/* The copy of input plane xc into its phase planes at y1 + gi * CS: per row phase a
 * and copied row i, input row i * s0 + a de-interleaved into its column phases, one
 * loop over the columns for all of them (gcc loads each stretch of the row once and
 * permutes it), then the columns only some phases have. */
static void dwf_copy_phases(Writer *w, const DwfPlan *p)
{
    const DwGeom *d = &p->geo;
    for (int a = 0; a < d->s0; a++) {
        int64_t jc = -1, hc = p->HC[a];
        for (int b = 0; b < d->s1; b++)
            if (p->slot[a][b] >= 0 && (jc < 0 || p->WC[b] < jc))
                jc = p->WC[b];
        if (jc < 0 || hc <= 0)
            continue;
        em_for(w, "i", hc);
        w_line(w, "const float *restrict xr = xc + (i * %" PRId64 " + %d) * %" PRId64 ";", d->s0, a, d->IW);
        w_line(w, "float *restrict pr = y1 + gi * %" PRId64 " + %" PRId64 " + i * %" PRId64 ";", p->CS, p->lead, d->OW);
        if (jc > 0) {
            em_for(w, "j", jc);
            for (int b = 0; b < d->s1; b++)
                if (p->slot[a][b] >= 0)
                    w_line(w, "pr[%" PRId64 " + j] = xr[j * %" PRId64 " + %d];", p->slot[a][b] * p->FS, d->s1, b);
            w_close(w);
        }
        for (int b = 0; b < d->s1; b++)
            if (p->slot[a][b] >= 0 && p->WC[b] > jc) {
                w_open(w, "for (int64_t j = %" PRId64 "; j < %" PRId64 "; ++j)", jc, p->WC[b]);
                w_line(w, "pr[%" PRId64 " + j] = xr[j * %" PRId64 " + %d];", p->slot[a][b] * p->FS, d->s1, b);
                w_close(w);
            }
        w_close(w);   /* i */
    }
}

/* The zeros of the strided form's planes, which the copies never write: before the
 * plane, the columns past a phase's input columns, the rows past its input rows. */
static void dwf_zero_phases(Writer *w, const DwfPlan *p)
{
    const DwGeom *d = &p->geo;
    em_for(w, "s", p->cb);
    for (int a = 0; a < d->s0; a++)
        for (int b = 0; b < d->s1; b++) {
            if (p->slot[a][b] < 0)
                continue;
            int64_t base = p->slot[a][b] * p->FS, body = p->lead + p->HC[a] * d->OW;
            w_open(w, "%s", "");
            w_line(w, "float *restrict pz = y1 + s * %" PRId64 " + %" PRId64 ";", p->CS, base);
            if (p->lead) {
                em_for(w, "j", p->lead);
                w_line(w, "pz[j] = 0;");
                w_close(w);
            }
            if (p->WC[b] < d->OW && p->HC[a] > 0) {
                em_for(w, "i", p->HC[a]);
                w_open(w, "for (int64_t j = %" PRId64 "; j < %" PRId64 "; ++j)", p->WC[b], d->OW);
                w_line(w, "pz[%" PRId64 " + i * %" PRId64 " + j] = 0;", p->lead, d->OW);
                em_close(w, 2);
            }
            if (p->FS > body) {
                em_for(w, "j", p->FS - body);
                w_line(w, "pz[%" PRId64 " + j] = 0;", body);
                w_close(w);
            }
            w_close(w);
        }
    w_close(w);   /* s */
}

/* cnt groups from g0 (in scope): their planes copied into the slots, then computed */
static void dwf_chunk(Emitter *e, const ConvGeom *cg, const DwfPlan *p, int has_bias, int64_t cnt, const Epilogue *ep)
{
    Writer *w = e->w;
    int64_t Mg = cg->M / cg->G, plane = p->geo.IH * p->geo.IW, KSZ = p->geo.K0 * p->geo.K1;
    em_for(w, "gi", cnt);
    w_line(w, "const float *restrict xc = x0 + (b * %" PRId64 " + g0 + gi) * %" PRId64 ";", cg->C, plane);
    if (p->strided)
        dwf_copy_phases(w, p);
    else if (p->qb > p->qa) {
        /* only the floats the first and last vectors read */
        if (p->top > 0) {
            em_for(w, "j", p->top);
            w_line(w, "y1[gi * %" PRId64 " + %" PRId64 " + j] = xc[j];", p->FS, p->lead);
            w_close(w);
        }
        if (p->bot < plane) {
            w_open(w, "for (int64_t j = %" PRId64 "; j < %" PRId64 "; ++j)", p->bot, plane);
            w_line(w, "y1[gi * %" PRId64 " + %" PRId64 " + j] = xc[j];", p->FS, p->lead);
            w_close(w);
        }
    } else {
        em_for(w, "j", plane);
        w_line(w, "y1[gi * %" PRId64 " + %" PRId64 " + j] = xc[j];", p->FS, p->lead);
        w_close(w);
    }
    w_close(w);
    em_for(w, "gi", cnt);
    w_line(w, "const int64_t g = g0 + gi;");
    int64_t vw = p->vw, nfull = p->P / vw * vw, rem = p->P % vw;
    w_line(w, "const float *restrict ys = y1 + gi * %" PRId64 ";", p->CS);
    if (p->qb > p->qa)
        w_line(w, "const float *restrict xs = x0 + (b * %" PRId64 " + g) * %" PRId64 ";", cg->C, plane);
    em_for(w, "mo", Mg);
    w_line(w, "const int64_t m = g * %" PRId64 " + mo;", Mg);
    w_line(w, "const float *restrict wc = x1 + m * %" PRId64 ";", KSZ);
    /* the kernel's weights (and bias) as scalars, so they stay in registers */
    for (int64_t k = 0; k < KSZ; k++)
        w_line(w, "const float w%" PRId64 " = wc[%" PRId64 "];", k, k);
    if (has_bias)
        w_line(w, "const float bm = x2[m];");
    /* the vectors from the copy, and those in [qa, qb) from the plane in place */
    int64_t cut[4] = {0, p->qa, p->qb, nfull};
    for (int part = 0; part < 3; part++) {
        int64_t lo = p->qb > p->qa ? cut[part] : part ? nfull : 0, hi = p->qb > p->qa ? cut[part + 1] : nfull;
        if (hi <= lo)
            continue;
        em_omp_for(e, (hi - lo) * KSZ, 1);
        w_open(w, "for (int64_t q0 = %" PRId64 "; q0 < %" PRId64 "; q0 += %" PRId64 ")", lo, hi, vw);
        if (part == 1)
            dwf_block(w, cg, p, has_bias, "q0", vw, vw, ep, "xs", p->lead);
        else
            dwf_block(w, cg, p, has_bias, "q0", vw, vw, ep, "ys", 0);
        w_close(w);
    }
    if (rem) {
        /* the plane's last pixels: one whole vector ending at the plane's end, over
         * the last vw - rem pixels again (the same sums, stored again), where the
         * plane holds a vector; else the vector from nfull, of which rem pixels are
         * stored. Storing rem lanes took 13 scalar stores and the shuffles to reach
         * them: on DS-CNN's 25 x 5 planes a quarter of the layer's time */
        char q0[32];
        int whole = p->P >= vw;
        snprintf(q0, sizeof q0, "%" PRId64, whole ? p->P - vw : nfull);
        dwf_block(w, cg, p, has_bias, q0, whole ? vw : p->PV - nfull, whole ? vw : rem, ep, "ys", 0);
    }
    em_close(w, 2);   /* mo, gi */
}

/* The channels-last form (p->clf, see DWC_MAX_P), when the node got its scratch.
 * Each output is the bias plus the taps in the kernel's order, padding adding
 * w * 0: the flat form's sums. */
static void dwc_emit(Emitter *e, const ConvGeom *cg, const DwfPlan *p, int has_bias, const Epilogue *ep)
{
    Writer *w = e->w;
    int64_t C = cg->C, KSZ = p->geo.K0 * p->geo.K1, IH = p->geo.IH, IW = p->geo.IW, map = p->PH * p->PW * C;
    w_line(w, "/* depthwise: channels last, vectors over 8 channels, a %" PRId64 " x %" PRId64 " padded map */", p->PH, p->PW);
    w_line(w, "float *restrict xt = y1;");
    w_line(w, "float *restrict wt = y1 + %" PRId64 ";", map);
    em_for(w, "k", KSZ);
    em_for(w, "c", C);
    w_line(w, "wt[k * %" PRId64 " + c] = x1[c * %" PRId64 " + k];", C, KSZ);
    em_close(w, 2);
    em_for(w, "j", map);   /* the padding, which the copies below never write */
    w_line(w, "xt[j] = 0;");
    w_close(w);
    em_for(w, "b", cg->N);
    em_for(w, "c", C);
    w_line(w, "const float *restrict xc = x0 + (b * %" PRId64 " + c) * %" PRId64 ";", C, IH * IW);
    /* the input rows and columns the taps reach (with strides, maybe not the last) */
    int64_t nh = IH < p->PH - p->geo.pt ? IH : p->PH - p->geo.pt, nw = IW < p->PW - p->geo.pl ? IW : p->PW - p->geo.pl;
    em_for(w, "iy", nh);
    em_for(w, "ix", nw);
    w_line(w, "xt[((iy + %" PRId64 ") * %" PRId64 " + ix + %" PRId64 ") * %" PRId64 " + c] = xc[iy * %" PRId64 " + ix];",
           p->geo.pt, p->PW, p->geo.pl, C, IW);
    em_close(w, 3);
    em_for(w, "oy", p->geo.OH);
    em_for(w, "ox", p->geo.OW);
    w_open(w, "for (int64_t c0 = 0; c0 < %" PRId64 "; c0 += 8)", C);
    w_line(w, "const float *restrict xp = xt + (oy * %" PRId64 " + ox * %" PRId64 ") * %" PRId64 " + c0;",
           p->geo.s0 * p->PW, p->geo.s1, C);
    em_for_lanes(w, "l", 8);
    w_line(w, "float c = %s;", has_bias ? "x2[c0 + l]" : "0");
    for (int64_t k0 = 0; k0 < p->geo.K0; k0++)
        for (int64_t k1 = 0; k1 < p->geo.K1; k1++)
            w_line(w, "c += wt[%" PRId64 " + c0 + l] * xp[%" PRId64 " + l];", (k0 * p->geo.K1 + k1) * C,
                   (k0 * p->geo.d0 * p->PW + k1 * p->geo.d1) * C);
    conv_store(w, ep, DT_FLOAT, "c", "(b * %" PRId64 " + c0 + l) * %" PRId64 " + oy * %" PRId64 " + ox", C, p->P,
               p->geo.OW);
    em_close(w, 5);   /* l, c0, ox, oy, b */
}

static void emit_dwf(Emitter *e, const ConvGeom *cg, const DwfPlan *p, int has_bias, const Epilogue *ep)
{
    Writer *w = e->w;
    int64_t plane = p->geo.IH * p->geo.IW;
    const Target *tg = e->g->target ? e->g->target : target_default();
    int vec = tg->vector_bytes >= 16;
    if (p->strided)
        w_line(w, "/* depthwise: flat over %d zero-margined phase plane(s) of %" PRId64 "-wide rows per input channel, row-crossing taps masked */",
               p->nph, p->geo.OW);
    else if (p->qb > p->qa)
        w_line(w, "/* depthwise: flat over each input plane in place, its first and last rows over a zero-margined copy, row-crossing taps masked */");
    else
        w_line(w, "/* depthwise: flat over a zero-margined copy of each input plane, row-crossing taps masked */");
    for (int64_t k1 = 0; k1 < p->geo.K1; k1++) {
        int64_t lo, hi;
        dwf_crossing(p, dwf_dx(p, k1), &lo, &hi);
        if (hi <= lo || hi - lo >= p->geo.IW)
            continue;
        /* 1 where output pixel q's reads at this dx stay in its row; as int32_t where
         * the target has vectors (gcc 12 vectorised the loop over 2 floats at a time
         * when the table was of bytes), else as bytes, a quarter of the flash */
        w_printf(w, "static const %s kd_dwm%" PRId64 "[%" PRId64 "] = {", vec ? "int32_t" : "unsigned char", k1, p->PV);
        for (int64_t q = 0; q < p->PV; q++) {
            int64_t ox = q % p->geo.OW;
            w_printf(w, "%s%s%d", q ? "," : "", q && q % 40 == 0 ? "\n    " : "", ox < lo || ox >= hi);
        }
        w_puts(w, "};\n");
    }
    /* the margins, which the copies below never write */
    if (p->strided)
        dwf_zero_phases(w, p);
    else {
    em_for(w, "s", p->cb);
    if (p->lead) {
        em_for(w, "j", p->lead);
        w_line(w, "y1[s * %" PRId64 " + j] = 0;", p->FS);
        w_close(w);
    }
    if (p->FS > p->lead + plane) {
        em_for(w, "j", p->FS - p->lead - plane);
        w_line(w, "y1[s * %" PRId64 " + %" PRId64 " + j] = 0;", p->FS, p->lead + plane);
        w_close(w);
    }
    w_close(w);
    }
    em_for(w, "b", cg->N);
    int64_t gf = cg->G / p->cb * p->cb;
    for (int part = 0; part < 2; part++) {
        int64_t cnt = part ? cg->G - gf : p->cb;
        if (!cnt || (!part && !gf))
            continue;
        if (part) {
            w_open(w, "%s", "");
            w_line(w, "const int64_t g0 = %" PRId64 ";", gf);
        } else {
            w_open(w, "for (int64_t g0 = 0; g0 < %" PRId64 "; g0 += %" PRId64 ")", gf, p->cb);
        }
        dwf_chunk(e, cg, p, has_bias, cnt, ep);
        w_close(w);
    }
    w_close(w);   /* b */
}

static int emit_dwl(Emitter *e, const Node *n, const ConvGeom *cg, const Epilogue *ep);   /* below */

int emit_conv_depthwise(Emitter *e, const Node *n, const ConvGeom *cg, const Epilogue *ep)
{
    DwfPlan fp;
    if (node_in(e->g, n, 0)->channels_last || node_out(e->g, n, 0)->channels_last || attr_int(n, "weight_kc", 0) > 0)
        return emit_dwl(e, n, cg, ep);   /* (weights stored [1][K0][K1][Cp]: only it reads them) */
    if (dwf_plan(e->g, n, cg, &fp)) {
        const Value *ft = n->noutputs == 2 ? node_out(e->g, n, 1) : NULL;
        int64_t got = ft && ft->dtype == DT_FLOAT ? value_numel(ft) : 0;
        if (fp.clf && got >= fp.clf) {
            dwc_emit(e, cg, &fp, node_in(e->g, n, 2) != NULL, ep);
            return 1;
        }
        if (dwf_fit(&fp, got)) {
            emit_dwf(e, cg, &fp, node_in(e->g, n, 2) != NULL, ep);
            return 1;
        }
        if (!fp.strided)
            return 0;
        /* strided, without the scratch of one channel's phase planes: the phase-plane form */
    }
    DwPlan p;
    if (n->noutputs != 2 || !node_out(e->g, n, 1) || !dw_plan(e->g, n, cg, &p))
        return 0;
    const Value *t = node_out(e->g, n, 1);
    if (t->dtype != DT_FLOAT || value_numel(t) < p.floats)
        return 0;
    Writer *w = e->w;
    int has_bias = node_in(e->g, n, 2) != NULL;
    int64_t Cg = cg->C / cg->G, Mg = cg->M / cg->G, KSZ = p.geo.K0 * p.geo.K1, OSZ = p.geo.OH * p.geo.OW;
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
        for (int64_t k0 = 0; k0 < p.geo.K0; k0++)
            dw_taps(w, &p, k0);
    } else {
        /* kernel rows in a loop; within a row, the taps written out (k0's phase varies,
         * so the plane offset is computed) */
        em_for(w, "k0", p.geo.K0);
        w_line(w, "const int64_t a = k0 * %" PRId64 " %% %" PRId64 ", r0 = k0 * %" PRId64 " / %" PRId64 ";",
               p.geo.d0, p.geo.s0, p.geo.d0, p.geo.s0);
        for (int64_t k1 = 0; k1 < p.geo.K1; k1++) {
            int bb = (int)(k1 * p.geo.d1 % p.geo.s1);
            /* plane of (a, bb): a table indexed by a */
            w_open(w, "%s", "");
            w_printf(w, "static const int64_t sl[%" PRId64 "] = {", p.geo.s0);
            for (int a = 0; a < p.geo.s0; a++)
                w_printf(w, "%s%d", a ? ", " : "", p.slot[a][bb] < 0 ? 0 : p.slot[a][bb]);
            w_puts(w, "};\n");
            w_line(w, "const float wv = wc[k0 * %" PRId64 " + %" PRId64 "];", p.geo.K1, k1);
            w_line(w, "const float *restrict xq = pc + sl[a] * %" PRId64 " + r0 * %" PRId64 " + %" PRId64 ";", p.PS,
                   p.PW, k1 * p.geo.d1 / p.geo.s1);
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
    em_for(w, "oy", p.geo.OH);
    em_for(w, "ox", p.geo.OW);
    char val[64];
    snprintf(val, sizeof val, "yq[oy * %" PRId64 " + ox]", p.PW);
    conv_store(w, ep, DT_FLOAT, val, "(b * %" PRId64 " + m) * %" PRId64 " + oy * %" PRId64 " + ox", cg->M, OSZ, p.geo.OW);
    em_close(w, 2);
    w_close(w);   /* mo */
    em_close(w, 2);   /* g, b */
    return 1;
}

/* ---------------------------------------------------------------- depthwise, channels last */

/* Depthwise layers whose input and output are both stored channels-last
 * (Value.channels_last: passes/layout.c does so through a stack of depthwise-separable
 * layers, see conv_depthwise_channels_last). A pixel's channels are one run, so the
 * vectors run over the channels and every tap is one aligned load of the input and a
 * multiply-add with a weight vector: the weights stored [K0][K1][Cp] (weight_kc = C,
 * rows padded with zeros to whole vectors), read straight from the constant array.
 * No copy, no masks and no scratch: the output pixels fall into classes by which
 * kernel rows and columns stay inside the input (the edge rows and columns one by
 * one, the interior in a loop), and each class's code has exactly its taps. A row's
 * pixels go in blocks (dwl_block) that load each input vector once for all the
 * block's pixels reading it. A sum is the bias plus the taps in the kernel's order,
 * the padding left out (it adds w * 0 in the other forms).
 * DS-CNN's 64-channel 3x3 layer on 25 x 5 on the Xeon (x86-64-v4, alone, warm):
 * 0.84-0.97 us, against 2.4 us in the flat form over the planes, whose rows of 5
 * pixels cross each vector three times (masked taps). It was 1.11-1.14 us while the
 * weights were first copied into local arrays per vector of channels: gcc 12 copied
 * them in 256-bit halves and read them back as 512-bit vectors, a failed store
 * forwarding on each (a fifth of the layer's samples on that one copy). The blocks
 * themselves time the same as one pixel at a time on this core (whole DS-CNN within
 * 1%; UltraFace slim 1-2% faster); they halve the loads an in-order core issues. */
#define DWL_MAX_TAPS 25
#define DWL_MAX_LINES 2048   /* tap statements over all pixel classes: bounds the code */
#define DWL_MAX_U 8   /* dwl_block's pixels at most */

typedef struct DwlPlan {
    DwGeom geo;
    int64_t vl, cp;   /* channels per vector; the stored weight rows (>= C, whole vectors) */
    /* the output rows [r0, r1) whose every kernel row reads inside the input, one
     * class in a loop (r1 <= r0: none); each other row is a class of its own (its
     * taps: dwl_range); columns likewise */
    int64_t r0, r1, c0, c1;
    int64_t u;   /* output pixels of a row per block (dwl_block) */
} DwlPlan;

/* The output pixels of one row in blocks of p->u: the interior columns
 * [c0, c0 + nb * u) in a loop, every other column at a constant position. nb = 0
 * when the interior is narrower than a block; the whole row is then constants. */
static int64_t dwl_interior_blocks(const DwlPlan *p) { return (p->c1 - p->c0) / p->u; }

/* the kernel taps [*ka, *kb) along one dim that read inside the input for output position o */
static void dwl_range(int64_t o, int64_t s, int64_t dl, int64_t pad, int64_t K, int64_t I, int64_t *ka, int64_t *kb)
{
    int64_t lo = conv_ceildiv(pad - o * s, dl), hi = conv_floordiv(I - 1 + pad - o * s, dl) + 1;
    *ka = lo > 0 ? lo : 0;
    *kb = hi < K ? hi : K;
    if (*kb < *ka)
        *kb = *ka;
}

/* the output positions [*o0, *o1) whose taps all read inside the input along one dim */
static void dwl_interior(int64_t O, int64_t s, int64_t dl, int64_t pad, int64_t K, int64_t I, int64_t *o0, int64_t *o1)
{
    *o0 = conv_ceildiv(pad, s);
    *o1 = conv_floordiv(I - 1 + pad - (K - 1) * dl, s) + 1;
    if (*o0 > O)
        *o0 = O;
    if (*o1 > O)
        *o1 = O;
    if (*o1 < *o0)
        *o1 = *o0;
}

/* the taps of the pixel class (rows of kernel [ka, kb) x columns [la, lb)) */
static int64_t dwl_taps(const DwlPlan *p, int64_t oy, int64_t ox)
{
    int64_t ka, kb, la, lb;
    dwl_range(oy, p->geo.s0, p->geo.d0, p->geo.pt, p->geo.K0, p->geo.IH, &ka, &kb);
    dwl_range(ox, p->geo.s1, p->geo.d1, p->geo.pl, p->geo.K1, p->geo.IW, &la, &lb);
    return (kb - ka) * (lb - la);
}

static int dwl_plan(const Graph *g, const Node *n, const ConvGeom *cg, DwlPlan *p)
{
    const Target *t = g->target ? g->target : target_default();
    const Value *w = node_in(g, n, 1);
    memset(p, 0, sizeof *p);
    if (t->vector_bytes < 16 || cg->nsp != 2 || cg->G != cg->C || cg->M != cg->C || !conv_epilogue_index_free(g, n) ||
        !dw_geom(g, n, cg, 1, &p->geo))
        return 0;
    p->vl = t->vector_bytes / 4;
    int64_t kc = attr_int(n, "weight_kc", 0);
    p->cp = kc > 0 ? w->dims[3] : (cg->C + p->vl - 1) / p->vl * p->vl;
    if (cg->C < p->vl || p->geo.K0 * p->geo.K1 > DWL_MAX_TAPS || p->cp % p->vl)
        return 0;
    dwl_interior(p->geo.OH, p->geo.s0, p->geo.d0, p->geo.pt, p->geo.K0, p->geo.IH, &p->r0, &p->r1);
    dwl_interior(p->geo.OW, p->geo.s1, p->geo.d1, p->geo.pl, p->geo.K1, p->geo.IW, &p->c0, &p->c1);
    p->u = t->vector_regs >= 16 ? t->vector_regs / 8 : 1;   /* the sums, the input vectors and a few weights in registers */
    if (p->u > DWL_MAX_U)
        p->u = DWL_MAX_U;
    /* the code: every edge row its own class; in a row, the constant columns one by
     * one and one block of the interior (dwl_row) */
    int64_t lines = 0, nb = dwl_interior_blocks(p);
    for (int64_t oy = 0; oy < p->geo.OH; oy++) {
        if (oy >= p->r0 && oy < p->r1 && oy != p->r0)
            continue;   /* the interior rows: one class */
        for (int64_t ox = 0; ox < p->geo.OW; ox++)
            if (!nb || ox < p->c0 || ox >= p->c0 + nb * p->u)
                lines += dwl_taps(p, oy, ox);
        if (nb)
            lines += p->u * dwl_taps(p, oy, p->c0);
    }
    return lines <= DWL_MAX_LINES;
}

int conv_depthwise_channels_last(const Graph *g, const Node *n, int64_t *mp)
{
    Diag d = {0};
    ConvGeom cg;
    DwlPlan p;
    const Value *x = node_in(g, n, 0), *w = node_in(g, n, 1);
    if (!x || x->dtype != DT_FLOAT || !w || !value_is_const(w) || conv_geom(g, n, 0, &cg, &d) || !dwl_plan(g, n, &cg, &p))
        return 0;
    *mp = p.cp;
    return 1;
}

/* The C expression of position o * s + off: o the loop variable `var`, or the
 * constant `at` when var is NULL (folded, so no constant products reach the C). */
static const char *dwl_pos(char *buf, size_t n, const char *var, int64_t at, int64_t s, int64_t off)
{
    if (!var)
        snprintf(buf, n, "%" PRId64, at * s + off);
    else if (s == 1)
        snprintf(buf, n, off ? "%s %s %" PRId64 : "%s", var, off < 0 ? "-" : "+", off < 0 ? -off : off);
    else
        snprintf(buf, n, off ? "%s * %" PRId64 " %s %" PRId64 : "%s * %" PRId64, var, s, off < 0 ? "-" : "+",
                 off < 0 ? -off : off);
    return buf;
}

/* One block of cnt output pixels of a row (vy: the loop variable, or NULL for the
 * single row ry; otherwise ry is a row of the class for its taps): the columns
 * vx + j (the loop variable, interior taps) or rx + j, for the channels c0 ..
 * c0 + width - 1. Each pixel's sum is its own register; an input vector is loaded
 * once for every pixel of the block that reads it (with stride 1 and a 3-wide
 * kernel, a row of the block loads cnt + 2 vectors for up to 3 * cnt taps). */
static void dwl_block(Writer *w, const ConvGeom *cg, const DwlPlan *p, int has_bias, const Epilogue *ep, int64_t width,
                      const char *vy, int64_t ry, const char *vx, int64_t rx, int64_t cnt)
{
    const DwGeom *d = &p->geo;
    int64_t ka, kb, la[DWL_MAX_U], lb[DWL_MAX_U], C = cg->C;
    char iy[64], ix[64], oy[64], ox[64];
    dwl_range(ry, d->s0, d->d0, d->pt, d->K0, d->IH, &ka, &kb);
    for (int64_t j = 0; j < cnt; j++)
        dwl_range(vx ? rx : rx + j, d->s1, d->d1, d->pl, d->K1, d->IW, &la[j], &lb[j]);
    int64_t span = (cnt - 1) * d->s1 + (d->K1 - 1) * d->d1 + 1;   /* input columns the block may read */
    (width == p->vl ? em_for_lanes : em_for)(w, "l", width);
    for (int64_t j = 0; j < cnt; j++)
        w_line(w, "float s%" PRId64 " = %s;", j, has_bias ? "x2[c0 + l]" : "0");
    for (int64_t k0 = ka; k0 < kb; k0++) {
        w_open(w, "%s", "");
        dwl_pos(iy, sizeof iy, vy, ry, d->s0, k0 * d->d0 - d->pt);
        for (int64_t t = 0; t < span; t++) {
            int used = 0;
            for (int64_t j = 0; j < cnt && !used; j++)
                for (int64_t k1 = la[j]; k1 < lb[j]; k1++)
                    used |= j * d->s1 + k1 * d->d1 == t;
            if (used)
                w_line(w, "const float v%" PRId64 " = x0[((b * %" PRId64 " + %s) * %" PRId64 " + %s) * %" PRId64 " + c0 + l];",
                       t, d->IH, iy, d->IW, dwl_pos(ix, sizeof ix, vx, rx, d->s1, t - d->pl), C);
        }
        for (int64_t j = 0; j < cnt; j++)
            for (int64_t k1 = la[j]; k1 < lb[j]; k1++)
                w_line(w, "s%" PRId64 " += x1[%" PRId64 " + c0 + l] * v%" PRId64 ";", j, (k0 * d->K1 + k1) * p->cp,
                       j * d->s1 + k1 * d->d1);
        w_close(w);
    }
    for (int64_t j = 0; j < cnt; j++) {
        char val[16];
        snprintf(val, sizeof val, "s%" PRId64, j);
        conv_store(w, ep, DT_FLOAT, val, "((b * %" PRId64 " + %s) * %" PRId64 " + %s) * %" PRId64 " + c0 + l", d->OH,
                   dwl_pos(oy, sizeof oy, vy, ry, 1, 0), d->OW, dwl_pos(ox, sizeof ox, vx, rx, 1, j), C);
    }
    w_close(w);
}

/* The constant columns [x0, x1) of a row, in blocks of up to p->u of equal size. */
static void dwl_constants(Writer *w, const ConvGeom *cg, const DwlPlan *p, int has_bias, const Epilogue *ep,
                          int64_t width, const char *vy, int64_t ry, int64_t x0, int64_t x1)
{
    int64_t n = x1 - x0, nblk = (n + p->u - 1) / p->u;
    for (int64_t i = 0, x = x0; i < nblk; i++) {
        int64_t cnt = (n - (x - x0) + (nblk - i) - 1) / (nblk - i);
        dwl_block(w, cg, p, has_bias, ep, width, vy, ry, NULL, x, cnt);
        x += cnt;
    }
}

/* The output row(s) oy (ry: a row of the class) for the channels from c0. */
static void dwl_row(Writer *w, const ConvGeom *cg, const DwlPlan *p, int has_bias, const Epilogue *ep, int64_t width,
                    const char *vy, int64_t ry)
{
    int64_t nb = dwl_interior_blocks(p), x = 0;
    if (nb > 0) {
        dwl_constants(w, cg, p, has_bias, ep, width, vy, ry, 0, p->c0);
        w_open(w, "for (int64_t ox = %" PRId64 "; ox < %" PRId64 "; ox += %" PRId64 ")", p->c0, p->c0 + nb * p->u, p->u);
        dwl_block(w, cg, p, has_bias, ep, width, vy, ry, "ox", p->c0, p->u);
        w_close(w);
        x = p->c0 + nb * p->u;
    }
    dwl_constants(w, cg, p, has_bias, ep, width, vy, ry, x, p->geo.OW);
}

/* The channels from c0 (in scope), `width` of them, over the whole map of image b. */
static void dwl_channels(Writer *w, const ConvGeom *cg, const DwlPlan *p, int has_bias, const Epilogue *ep, int64_t width)
{
    for (int64_t y = 0; y < p->geo.OH; y++) {
        if (y == p->r0 && p->r1 > p->r0) {
            w_open(w, "for (int64_t oy = %" PRId64 "; oy < %" PRId64 "; ++oy)", p->r0, p->r1);
            dwl_row(w, cg, p, has_bias, ep, width, "oy", p->r0);
            w_close(w);
            y = p->r1 - 1;
            continue;
        }
        dwl_row(w, cg, p, has_bias, ep, width, NULL, y);
    }
}

static int emit_dwl(Emitter *e, const Node *n, const ConvGeom *cg, const Epilogue *ep)
{
    DwlPlan p;
    const Value *x = node_in(e->g, n, 0), *y = node_out(e->g, n, 0);
    if (!x->channels_last || !y->channels_last || attr_int(n, "weight_kc", 0) != cg->C || !dwl_plan(e->g, n, cg, &p))
        return 0;
    Writer *w = e->w;
    int has_bias = node_in(e->g, n, 2) != NULL;
    int64_t C = cg->C, cf = C / p.vl * p.vl;
    w_line(w, "/* depthwise: channels last, vectors over %" PRId64 " channels, weights [K0][K1][C], edge pixels with their "
           "own taps */", p.vl);
    em_for(w, "b", cg->N);
    em_omp_for(e, cf / p.vl > 1 ? cg->N * C * p.geo.OH * p.geo.OW * p.geo.K0 * p.geo.K1 : 0, 1);
    w_open(w, "for (int64_t c0 = 0; c0 < %" PRId64 "; c0 += %" PRId64 ")", cf, p.vl);
    dwl_channels(w, cg, &p, has_bias, ep, p.vl);
    w_close(w);
    if (C > cf) {
        w_open(w, "%s", "");
        w_line(w, "const int64_t c0 = %" PRId64 ";", cf);
        dwl_channels(w, cg, &p, has_bias, ep, C - cf);
        w_close(w);
    }
    w_close(w);   /* b */
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
    DwfPlan f;
    if (conv_geom(g, n, 0, &cg, &d))
        return -1;
    if (dwf_plan(g, n, &cg, &f) || dw_plan(g, n, &cg, &p))
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
    int chan;     /* few pixels: the channel-vector form (pwc_rows) */
    int either;   /* either form would do (the choice conv_dw_forms offers --tune) */
    int64_t ws;   /* weights stored [C][ws] by passes/layout.c (weight_cm): read in place, no packing; 0: packed */
    int pairs;    /* ... stored [C / 2][ws] in pairs of input channels (weight_pairs): two lanes per output channel */
} PwPlan;

/* Fewer pixels than this: the channel-vector form. */
#define PW_CHAN_MAX_P 48
/* Also that form when the pixels are not a whole number of vectors (the rows of X
 * start off the vector boundary and the last block reads a padded copy) and there
 * are at least this many input channels (the scattered stores, one per output and
 * lane, stay few against the multiply-adds). Timed on the AMD EPYC (AVX2) with
 * --tune, best block of each form, us: 64->64 on 125 pixels (DS-CNN) 20.4 pixel
 * form against 17.4, on 121 pixels 25.4 against 19.5, 32->64 on 225 pixels 24.2
 * against 19.9, 128->128 on 63 pixels 43.1 against 33.7; with whole vectors the
 * pixel form won (64->64 on 144 pixels 19.1 against 22.0, MobileNet's layers on
 * 24x24 and 48x48 maps by 1.4x to 7x). */
#define PW_CHAN_MIN_C 32
/* ... and only with vectors of at most this many floats. With 16 (x86-64-v4, zmm),
 * each block scatters twice as many lanes per vector, and the pixel form won on the
 * Xeon (--tune, best block of each form, us): DS-CNN's 64->64 on 125 pixels 6.6
 * against 7.4 (the model 44.3-44.9 against 49.1), UltraFace's 64->128 on 15 x 20
 * 32.2 against 35.8, 128->128 65.2 against 68.2.
 * Which form wins on maps of PW_CHAN_MAX_P pixels or more is the machine's to say:
 * the Xeon ran DS-CNN faster with the pixel form with vectors of 8 as well (generic
 * target, untuned: 64 against 70 us), where the EPYC ran that layer faster in the
 * channel form. So there the rule above is only the default: --tune times both
 * forms (conv_dw_forms) and Node.block_form records the choice. */
#define PW_CHAN_MAX_VL 8
enum { PW_FORM_RULE, PW_FORM_PIXELS, PW_FORM_CHANNELS };
static const char *const pw_form_names[] = {"pixels", "channels", NULL};

static int pw_plan(const Graph *g, const Node *n, const ConvGeom *cg, int force_chan, PwPlan *p)
{
    if (!pw_ok(g, n, cg))
        return 0;
    /* activations stored channels-last (passes/layout.c): only the channel-vector form
     * reads or writes them, whatever --tune chose */
    const Value *y = node_out(g, n, 0);
    int cl = node_in(g, n, 0)->channels_last || (y && y->channels_last);
    p->ws = attr_int(n, "weight_cm", 0) > 0 ? node_in(g, n, 1)->dims[1] : 0;
    /* in pairs: the channel-vector form, from an input stored channels-last (emit_conv_pointwise
     * checks; passes/layout.c keeps the input so when a graph kdcc exported comes back) */
    p->pairs = p->ws && attr_int(n, "weight_pairs", 0) == 1;
    force_chan |= cl || p->pairs;
    const Target *t = g->target ? g->target : target_default();
    int64_t Cg = cg->C / cg->G, Mg = cg->M / cg->G;
    p->vl = t->vector_bytes >= 8 ? t->vector_bytes / 4 : 1;
    p->P = 1;
    for (int i = 0; i < cg->nsp; i++)
        p->P *= cg->out[i];
    pw_block_size(g, n, &p->mr, &p->nr);
    p->either = p->vl > 1 && Mg >= p->vl && p->P >= PW_CHAN_MAX_P && !cl;
    p->chan = p->vl > 1 && ((Mg >= p->vl && (p->P < PW_CHAN_MAX_P || (p->P % p->vl && Cg >= PW_CHAN_MIN_C && p->vl <= PW_CHAN_MAX_VL))) ||
                            force_chan);
    if (p->either && !force_chan && n->block_form != PW_FORM_RULE)
        p->chan = n->block_form == PW_FORM_CHANNELS;
    if (p->chan) {
        int64_t lanes = (p->pairs ? 2 : 1) * Mg;   /* the block's channels are lanes: two per output channel in pairs */
        if (cl && n->block_m <= 0 && n->block_n <= 0 && p->vl > 1) {
            /* untuned, between channels-last activations: up to 4 vectors of channels
             * by as many pixels as three quarters of the registers hold (DS-CNN's
             * 64->64 layers on the Xeon: 6 x 64 and 4 x 64 5.7 us, 12 x 32 14) */
            const Target *t = g->target ? g->target : target_default();
            int64_t nv = (lanes + p->vl - 1) / p->vl < 4 ? (lanes + p->vl - 1) / p->vl : 4;
            p->nr = nv * p->vl;
            p->mr = t->vector_regs * 3 / 4 / nv > 1 ? t->vector_regs * 3 / 4 / nv : 1;
        }
        /* the block's pixels x channels are --tune's mr x nr, channels in vectors */
        p->nr = (p->nr + p->vl - 1) / p->vl * p->vl;
        if (p->nr > (lanes + p->vl - 1) / p->vl * p->vl)
            p->nr = (lanes + p->vl - 1) / p->vl * p->vl;
        if (p->mr > p->P)
            p->mr = p->P;
        p->pack = p->ws ? 0 : Cg * p->nr;
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
    p->pack = p->ws ? 0 : Cg * p->mr;
    return 1;
}

/* node n's pointwise plan (the channel-vector form forced or not), for passes/layout.c: 0 if the kernel does not take it */
static int pw_layer_plan(const Graph *g, const Node *n, int force_chan, ConvGeom *cg, PwPlan *p)
{
    Diag d = {0};
    return !conv_geom(g, n, 0, cg, &d) && conv_dw_tunable(g, n) == 1 && pw_plan(g, n, cg, force_chan, p);
}

int conv_pointwise_channels_last(const Graph *g, const Node *n)
{
    ConvGeom cg;
    PwPlan p;
    return pw_layer_plan(g, n, 0, &cg, &p) && p.chan && !p.either && p.ws && cg.G == 1 && n->ninputs <= 3;
}

int conv_pointwise_channel_form(const Graph *g, const Node *n)
{
    ConvGeom cg;
    PwPlan p;
    return pw_layer_plan(g, n, 1, &cg, &p) && p.chan && p.ws && cg.G == 1 && conv_epilogue_index_free(g, n);
}

/* In the channel-vector form each input channel costs every pixel ceil(M / vl) vector
 * multiply-adds, however few of the lanes hold output channels; UltraFace's 64->6
 * heads use 6 of 16. Stored in pairs, lane 2m + s of a pair's weight vector holds
 * W[m][2i + s], the pixel's channels 2i and 2i + 1 are broadcast as one 64-bit pair,
 * and each pair of input channels costs ceil(2M / vl): for 64->6 on 16 lanes, one
 * instead of two. The two lanes of an output are added at the store. Timed alone on
 * the Xeon (x86-64-v4, 64->6 on 30 x 40 channels-last, blocks of 12 pixels): 17.3 us
 * in the channel form, 9.5 in pairs. Needs an even C (no lane reads past a pixel).
 *
 * With 16-float vectors, also when the output channels fit in one vector: as many
 * multiply-adds, half the broadcasts. Timed alone on the Xeon, 128 input channels on
 * 15 x 20, blocks of 8 pixels, channel form against pairs: 16 floats, 128->12 6.6 us
 * against 6.1, 128->16 6.5 against 6.2; 8 floats (generic, -march=native), 128->8
 * 5.7 against 6.1 and 128->16 10.2 against 13.9, so there only fewer vectors count. */
int conv_pointwise_pairs(const Graph *g, const Node *n, int64_t *mq)
{
    ConvGeom cg;
    PwPlan p;
    if (!node_in(g, n, 0)->channels_last || attr_int(n, "weight_pairs", 0) || !pw_layer_plan(g, n, 1, &cg, &p) ||
        !p.chan || !p.ws || cg.G != 1 || cg.C % 2 || p.vl < 2 || p.vl % 2)
        return 0;
    int64_t one = (cg.M + p.vl - 1) / p.vl, two = (2 * cg.M + p.vl - 1) / p.vl;
    *mq = two * p.vl;
    return two < 2 * one || (one == 1 && p.vl >= 16);
}

const char *const *conv_dw_forms(const Graph *g, const Node *n)
{
    Diag d = {0};
    ConvGeom cg;
    PwPlan p;
    if (conv_geom(g, n, 0, &cg, &d) || conv_dw_tunable(g, n) != 1 || !pw_plan(g, n, &cg, 0, &p))
        return NULL;
    return p.either ? pw_form_names : NULL;
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
    w_line(w, "const float *restrict wr = wp + c * %" PRId64 ";", p->ws ? p->ws : mb);
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
    if (p->ws) {
        w_line(w, "const float *restrict wp = x1 + m0;");
    } else {
        w_line(w, "float *restrict wp = y1 + %" PRId64 ";", p->tail);
        em_for(w, "c", Cg);
        em_for(w, "i", mb);
        w_line(w, "wp[c * %" PRId64 " + i] = x1[(m0 + i) * %" PRId64 " + c];", mb, Cg);
        em_close(w, 2);
    }
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

/* Weights in place (p->ws): the pixel blocks outermost, every block of channels
 * inside, so one block's column of X (Cg x nr floats: 8 KiB for DS-CNN's 64 channels
 * and 32 pixels) stays in L1 while all Mg x Cg weights pass, instead of X being read
 * again from L2 for every block of channels (with 2 x 32 blocks, four X loads per
 * eight multiply-adds: half the FMA rate). Needs no packing, so nothing is redone
 * per column. The epilogue runs over all the planes at the end. */
static void pw_cols_block(Writer *w, const ConvGeom *cg, const PwPlan *p, int has_bias, int64_t width,
                          const char *xsrc, int64_t xs, int64_t store)
{
    int64_t Mg = cg->M / cg->G, nfull = Mg / p->mr, rem = Mg % p->mr;
    if (nfull) {
        w_open(w, "for (int64_t mo = 0; mo < %" PRId64 "; mo += %" PRId64 ")", nfull * p->mr, p->mr);
        w_line(w, "const int64_t m0 = g * %" PRId64 " + mo;", Mg);
        w_line(w, "const float *restrict wp = x1 + m0;");
        pw_block(w, cg, p, has_bias, p->mr, width, xsrc, xs, store);
        w_close(w);
    }
    if (rem) {
        w_open(w, "%s", "");
        w_line(w, "const int64_t m0 = g * %" PRId64 " + %" PRId64 ";", Mg, nfull * p->mr);
        w_line(w, "const float *restrict wp = x1 + m0;");
        pw_block(w, cg, p, has_bias, rem, width, xsrc, xs, store);
        w_close(w);
    }
}

static void pw_columns(Emitter *e, const ConvGeom *cg, const PwPlan *p, int has_bias, const Epilogue *ep)
{
    Writer *w = e->w;
    int64_t Cg = cg->C / cg->G, Mg = cg->M / cg->G;
    char src[128];
    snprintf(src, sizeof src, "x0 + (b * %" PRId64 " + g * %" PRId64 ") * %" PRId64 " + p0", cg->C, Cg, p->P);
    if (p->pf) {
        em_omp_for(e, p->pf * Mg * Cg, 1);   /* the p0 loop: each column its own outputs */
        w_open(w, "for (int64_t p0 = 0; p0 < %" PRId64 "; p0 += %" PRId64 ")", p->pf, p->nr);
        pw_cols_block(w, cg, p, has_bias, p->nr, src, p->P, p->nr);
        w_close(w);
    }
    if (p->rem) {
        w_open(w, "%s", "");
        w_line(w, "const int64_t p0 = %" PRId64 ";", p->pf);
        if (p->tail)
            pw_cols_block(w, cg, p, has_bias, p->tw, "y1", p->tw, p->rem);
        else
            pw_cols_block(w, cg, p, has_bias, p->tw, src, p->P, p->rem);
        w_close(w);
    }
    if (ep && ep->n) {
        w_open(w, "%s", "");
        w_line(w, "const int64_t m0 = g * %" PRId64 ";", Mg);
        conv_epilogue_planes(w, ep, cg->M, p->P, Mg);
        w_close(w);
    }
}

/* A channel-form block's multiply-adds, np pixels x nv vectors, pixel j's input a<j>
 * (with `lane` after it: "[l]" for an array over the lanes); closes the lane loop
 * and the caller's loop over the input channels. The lane loop behind KD_LANES: with
 * a block of one vector per pixel and the input channels-last, gcc 12 otherwise
 * unrolls it and vectorises the loop over the (then contiguous) input channels
 * instead, a transposing shuffle per multiply-add: 128->8 on 15 x 20 with 8-float
 * vectors (generic, -march=native), 8 pixels per block, ran 118 us, and 5.7 behind it. */
static void pwc_fma(Writer *w, int64_t np, int64_t nv, int64_t vl, const char *lane)
{
    em_for_lanes(w, "l", vl);
    for (int64_t j = 0; j < np; j++)
        for (int64_t v = 0; v < nv; v++)
            w_line(w, "c%" PRId64 "_%" PRId64 "[l] += a%" PRId64 "%s * wr[%" PRId64 " + l];", j, v, j, lane, v * vl);
    em_close(w, 2);
}

/* The body of a block in pairs (conv_pointwise_pairs), the accumulators declared: per
 * pair of input channels, each pixel's two channels broadcast as one 64-bit unit (a
 * uint64_t copied into every other pair of lanes, which gcc 12 makes one
 * vpbroadcastq), then nv weight vectors; at the store, output m0 + k is lanes 2k and
 * 2k + 1. */
static void pwc_pairs(Writer *w, const ConvGeom *cg, const PwPlan *p, int has_bias, int64_t np, int64_t nv, int64_t valid,
                      const Epilogue *ep, int cl)
{
    int64_t vl = p->vl, half = vl / 2;
    em_for(w, "c", cg->C / 2);
    w_line(w, "const float *restrict xr = x0 + (b * %" PRId64 " + p0) * %" PRId64 " + 2 * c;", p->P, cg->C);
    w_line(w, "const float *restrict wr = wp + c * %" PRId64 ";", p->ws);
    for (int64_t j = 0; j < np; j++) {
        w_line(w, "float a%" PRId64 "[%" PRId64 "];", j, vl);
        w_open(w, "%s", "");
        w_line(w, "uint64_t u, t[%" PRId64 "];", half);
        w_line(w, "memcpy(&u, xr + %" PRId64 ", sizeof u);", j * cg->C);
        em_for(w, "i", half);
        w_line(w, "t[i] = u;");
        w_close(w);
        w_line(w, "memcpy(a%" PRId64 ", t, sizeof t);", j);
        w_close(w);
    }
    pwc_fma(w, np, nv, vl, "[l]");
    for (int64_t v = 0; v < nv && v * half < valid; v++) {
        int64_t k = valid - v * half < half ? valid - v * half : half;
        em_for(w, "l", k);
        for (int64_t j = 0; j < np; j++) {
            char val[128];
            snprintf(val, sizeof val, "c%" PRId64 "_%" PRId64 "[2 * l] + c%" PRId64 "_%" PRId64 "[2 * l + 1]", j, v, j, v);
            if (has_bias)
                snprintf(val + strlen(val), sizeof val - strlen(val), " + x2[m0 + %" PRId64 " + l]", v * half);
            if (cl)
                conv_store(w, ep, DT_FLOAT, val, "(b * %" PRId64 " + p0 + %" PRId64 ") * %" PRId64 " + m0 + %" PRId64 " + l",
                           p->P, j, cg->M, v * half);
            else
                w_line(w, "y0[(b * %" PRId64 " + m0 + %" PRId64 " + l) * %" PRId64 " + p0 + %" PRId64 "] = %s;", cg->M,
                       v * half, p->P, j, val);
        }
        w_close(w);
    }
}

/* The channel-vector form, for layers of few pixels (P < PW_CHAN_MAX_P: a 6 x 6 or
 * 3 x 3 map, where blocks of pixels would be mostly padding) and for many input
 * channels over pixels that are not whole vectors (PW_CHAN_MIN_C): the roles swap, the
 * vectors run over output channels. A block of np pixels x nc channels (nc a
 * multiple of the vector, the weights packed as wp[Cg][nc] with zeros past Mg)
 * accumulates np x nc / vl vector arrays; per input channel, np pixels of X are
 * broadcast and nc / vl weight vectors loaded. The stores scatter over the output
 * planes (stride P), few against Cg x np x nc / vl multiply-adds. */
static void pwc_block(Writer *w, const ConvGeom *cg, const PwPlan *p, int has_bias, int64_t np, int64_t nc,
                      int64_t valid, const Epilogue *ep, int xcl, int cl)
{
    int64_t Cg = cg->C / cg->G, nv = nc / p->vl, vl = p->vl;
    pw_acc_decl(w, np, nv, vl);
    em_for(w, "l", vl);
    for (int64_t j = 0; j < np; j++)
        for (int64_t v = 0; v < nv; v++)
            w_line(w, "c%" PRId64 "_%" PRId64 "[l] = 0;", j, v);
    w_close(w);
    if (p->pairs) {
        pwc_pairs(w, cg, p, has_bias, np, nv, valid, ep, cl);
        return;
    }
    em_for(w, "c", Cg);
    if (xcl)   /* the input channels-last: a pixel's channels are one run */
        w_line(w, "const float *restrict xr = x0 + (b * %" PRId64 " + p0) * %" PRId64 " + g * %" PRId64 " + c;", p->P,
               cg->C, Cg);
    else
        w_line(w, "const float *restrict xr = x0 + (b * %" PRId64 " + g * %" PRId64 " + c) * %" PRId64 " + p0;", cg->C,
               Cg, p->P);
    w_line(w, "const float *restrict wr = wp + c * %" PRId64 ";", p->ws ? p->ws : nc);
    for (int64_t j = 0; j < np; j++)
        w_line(w, "const float a%" PRId64 " = xr[%" PRId64 "];", j, xcl ? j * cg->C : j);
    pwc_fma(w, np, nv, vl, "");
    for (int64_t v = 0; v < nv && v * vl < valid; v++) {
        int64_t k = valid - v * vl < vl ? valid - v * vl : vl;
        em_for(w, "l", k);
        if (cl) {   /* channels last: each pixel's vector of channels is one run, stored through the
                     * epilogue (which reads no operand by element: conv_pointwise_channel_form) */
            for (int64_t j = 0; j < np; j++) {
                char val[96];
                snprintf(val, sizeof val, "c%" PRId64 "_%" PRId64 "[l]", j, v);
                if (has_bias)
                    snprintf(val + strlen(val), sizeof val - strlen(val), " + x2[m0 + %" PRId64 " + l]", v * vl);
                conv_store(w, ep, DT_FLOAT, val, "(b * %" PRId64 " + p0 + %" PRId64 ") * %" PRId64 " + m0 + %" PRId64 " + l",
                           p->P, j, cg->M, v * vl);
            }
            w_close(w);
            continue;
        }
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

/* Channels m0 .. m0 + mb - 1 (m0 declared by the caller; nc >= mb lanes packed, 2 mb in pairs) over every
 * pixel of image b, group g. */
static void pwc_rows(Emitter *e, const ConvGeom *cg, const PwPlan *p, int has_bias, int64_t mb, int64_t nc,
                     const Epilogue *ep, int xcl, int cl)
{
    Writer *w = e->w;
    int64_t Cg = cg->C / cg->G, np = p->mr, pf = p->P / np * np;
    if (p->ws) {
        /* in place: the rows are padded with zeros to a whole number of vectors */
        w_line(w, "const float *restrict wp = x1 + %sm0;", p->pairs ? "2 * " : "");
    } else {
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
    }
    if (pf) {
        em_omp_for(e, pf * nc * Cg, 1);   /* the p0 loop: each block its own outputs */
        w_open(w, "for (int64_t p0 = 0; p0 < %" PRId64 "; p0 += %" PRId64 ")", pf, np);
        pwc_block(w, cg, p, has_bias, np, nc, mb, ep, xcl, cl);
        w_close(w);
    }
    if (p->P > pf) {
        w_open(w, "%s", "");
        w_line(w, "const int64_t p0 = %" PRId64 ";", pf);
        pwc_block(w, cg, p, has_bias, p->P - pf, nc, mb, ep, xcl, cl);
        w_close(w);
    }
    if (!cl)   /* (channels last: through the epilogue at the store) */
        conv_epilogue_planes(w, ep, cg->M, p->P, mb);
}

static void emit_pwc(Emitter *e, const ConvGeom *cg, const PwPlan *p, int has_bias, const Epilogue *ep, int xcl, int cl)
{
    Writer *w = e->w;
    /* f lanes per output channel: 2 in pairs */
    int64_t f = p->pairs ? 2 : 1, Mg = cg->M / cg->G, nc = p->nr, mb = nc / f, nfull = Mg / mb, rem = Mg % mb;
    w_line(w, "/* pointwise: blocks of %" PRId64 " pixels x %" PRId64 " channels, vectors over the channels%s%s%s%s */",
           p->mr, mb, p->ws ? ", weights input-channel-major" : "", p->pairs ? " in pairs of input channels" : "",
           xcl ? ", input stored channels-last" : "", cl ? ", output stored channels-last" : "");
    em_for(w, "b", cg->N);
    em_for(w, "g", cg->G);
    if (nfull) {
        w_open(w, "for (int64_t mo = 0; mo < %" PRId64 "; mo += %" PRId64 ")", nfull * mb, mb);
        w_line(w, "const int64_t m0 = g * %" PRId64 " + mo;", Mg);
        pwc_rows(e, cg, p, has_bias, mb, nc, ep, xcl, cl);
        w_close(w);
    }
    if (rem) {
        w_open(w, "%s", "");
        w_line(w, "const int64_t m0 = g * %" PRId64 " + %" PRId64 ";", Mg, nfull * mb);
        pwc_rows(e, cg, p, has_bias, rem, (f * rem + p->vl - 1) / p->vl * p->vl, ep, xcl, cl);
        w_close(w);
    }
    em_close(w, 2);   /* g, b */
}

int emit_conv_pointwise(Emitter *e, const Node *n, const ConvGeom *cg, const Epilogue *ep)
{
    PwPlan p;
    if (!pw_plan(e->g, n, cg, 0, &p))
        return 0;
    const Value *t = n->noutputs == 2 ? node_out(e->g, n, 1) : NULL;
    int64_t have = t && t->dtype == DT_FLOAT ? value_numel(t) : 0;
    if (have < p.tail + p.pack) {
        /* weights input-channel-major (no other kernel reads that layout) without the
         * scratch of the last pixels' copy: the channel-vector form, which needs none */
        if (!p.ws || !pw_plan(e->g, n, cg, 1, &p) || p.tail + p.pack > have)
            return 0;
    }
    Writer *w = e->w;
    int has_bias = node_in(e->g, n, 2) != NULL;
    int cl = node_out(e->g, n, 0)->channels_last, xcl = node_in(e->g, n, 0)->channels_last;
    if (p.pairs && !xcl)
        return 0;   /* the caller reports it: the pairs are adjacent channels of one pixel */
    if (p.chan) {
        emit_pwc(e, cg, &p, has_bias, ep, xcl, cl);
        return 1;
    }
    if (cl || xcl)
        return 0;   /* the caller reports it: only the channel-vector form stores channels-last */
    int64_t Cg = cg->C / cg->G, Mg = cg->M / cg->G;
    int64_t nfull = Mg / p.mr, rem = Mg % p.mr;
    w_line(w, "/* pointwise: blocks of %" PRId64 " channels x %" PRId64 " pixels, weights %s%s */", p.mr, p.nr,
           p.ws ? "input-channel-major" : "packed", p.tail ? ", the last pixels from a padded copy" : "");
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
    if (p.ws) {
        pw_columns(e, cg, &p, has_bias, ep);
        em_close(w, 2);   /* g, b */
        return 1;
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

int64_t conv_dw_scratch(const Graph *g, const Node *n, const ConvGeom *cg, int64_t budget)
{
    DwPlan p;
    PwPlan q;
    DwfPlan f;
    const Value *y = node_out(g, n, 0);
    if (node_in(g, n, 0)->channels_last || (y && y->channels_last))   /* emit_dwl needs none */
        return pw_plan(g, n, cg, 0, &q) ? (q.tail + q.pack) * (int64_t)sizeof(float) : 0;
    if (dwf_plan(g, n, cg, &f)) {   /* channels last when its scratch fits the budget */
        if (f.clf && f.clf * (int64_t)sizeof(float) <= budget)
            return f.clf * (int64_t)sizeof(float);
        /* strided: fewer channels at a time, else the phase-plane form (the emitter
         * makes the same choice from the scratch it got) */
        if (!f.strided || dwf_fit(&f, budget / (int64_t)sizeof(float)) || !dw_plan(g, n, cg, &p))
            return f.floats * (int64_t)sizeof(float);
        return p.floats * (int64_t)sizeof(float);
    }
    if (dw_plan(g, n, cg, &p))
        return p.floats * (int64_t)sizeof(float);
    if (pw_plan(g, n, cg, 0, &q))
        return (q.tail + q.pack) * (int64_t)sizeof(float);
    return 0;
}

/* For passes/layout.c: 1 if the pointwise kernel takes node n (a Conv or
 * kdcc.FusedConv) and would rather read its constant weights input-channel-major,
 * W^T as [C][*mp] with the rows padded to *mp (a whole number of vectors) — always,
 * when it takes it: both forms then read each input channel's weights as one
 * contiguous run in place, instead of first packing them into the scratch on every
 * call (a transposing copy of all M x C weights, scalar, which was a quarter of
 * MobileNet's 128->128 layers on 6 x 6 maps and half of its 256->256 on 3 x 3). */
int conv_pointwise_cm(const Graph *g, const Node *n, int64_t *mp)
{
    Diag d = {0};
    ConvGeom cg;
    PwPlan p;
    const Value *w = node_in(g, n, 1);
    if (!w || w->dtype != DT_FLOAT || !value_is_const(w) || attr_int(n, "weight_cm", 0) > 0 || conv_geom(g, n, 0, &cg, &d) ||
        cg.G != 1)
        return 0;
    if (!pw_plan(g, n, &cg, 0, &p))
        return 0;
    *mp = (cg.M + p.vl - 1) / p.vl * p.vl;
    return 1;
}

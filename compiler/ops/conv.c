/* Convolution operators: Conv and ConvTranspose (1-D to n-D, strides, pads,
 * dilations, auto_pad, groups, optional bias).
 *
 * Both are emitted by one generator as a correlation between a "source" index v
 * (Conv: output position; ConvTranspose: input position) and a "destination"
 * index u = v*stride + k*dilation - pad_begin (Conv: input position read;
 * ConvTranspose: output position written). The outer spatial dims loop over v
 * and the kernel with a row-level range check; along the last dim, the valid
 * range of v for each kernel tap is computed at compile time, so the innermost
 * loop has constant bounds and no conditionals:
 *     Conv:          yr[v] += w[k] * xr[v*s + k*d - p]
 *     ConvTranspose: yr[v*s + k*d - p] += w[k] * xr[v]
 */
#include "compiler/ops/conv_internal.h"

#include "compiler/ir/target.h"

#include <inttypes.h>
#include <stdarg.h>
#include <string.h>

/* Mark every parameter used, for degenerate shapes whose body reads nothing. */
static void void_params(Emitter *e, const Node *n)
{
    for (int i = 0; i < n->ninputs; i++)
        if (node_in(e->g, n, i))
            w_line(e->w, "(void)x%d;", i);
    for (int i = 0; i < n->noutputs; i++)
        if (node_out(e->g, n, i))
            w_line(e->w, "(void)y%d;", i);
}

int64_t conv_floordiv(int64_t a, int64_t b) /* b > 0 */
{
    int64_t q = a / b;
    return (a % b != 0 && a < 0) ? q - 1 : q;
}
int64_t conv_ceildiv(int64_t a, int64_t b) /* b > 0 */
{
    return -conv_floordiv(-a, b);
}

/* Read an INTS attribute of exactly nsp (or 2*nsp for pads) values into out, or
 * fill with def. */
static int spatial_attr(const Node *n, const char *name, int count, int64_t def, int64_t *out, Diag *d)
{
    const int64_t *v;
    int c = attr_ints(n, name, &v);
    if (c < 0) {
        for (int i = 0; i < count; i++)
            out[i] = def;
        return 0;
    }
    if (c != count)
        return diag_error(d, n, "attribute '%s' has %d values; expected %d", name, c, count);
    for (int i = 0; i < count; i++)
        out[i] = v[i];
    return 0;
}

int conv_geom(const Graph *g, const Node *n, int transpose, ConvGeom *cg, Diag *d)
{
    const Value *x = node_in(g, n, 0), *w = node_in(g, n, 1), *b = node_in(g, n, 2);
    memset(cg, 0, sizeof *cg);
    cg->transpose = transpose;
    if (x->rank < 3)
        return diag_error(d, n, "input X must have rank >= 3 (N, C, spatial...), got %d", x->rank);
    if (w->rank != x->rank)
        return diag_error(d, n, "weight W has rank %d; expected %d like X", w->rank, x->rank);
    int nsp = x->rank - 2;
    cg->nsp = nsp;
    cg->N = x->dims[0];
    cg->C = x->dims[1];
    cg->G = attr_int(n, "group", 1);
    if (cg->G < 1)
        return diag_error(d, n, "group must be >= 1, got %lld", (long long)cg->G);
    if (cg->C % cg->G != 0)
        return diag_error(d, n, "input channels %lld are not divisible by group %lld", (long long)cg->C, (long long)cg->G);
    /* weight_cm = M (passes/layout.c): a pointwise W stored input-channel-major, [C][Mp][1...], Mp >= M */
    int64_t cm = transpose ? 0 : attr_int(n, "weight_cm", 0);
    /* weight_hwc = 1 (passes/layout.c): W stored [M][K...][C], input channels last */
    int hwc = !transpose && attr_int(n, "weight_hwc", 0) != 0;
    /* weight_kc = M (passes/layout.c): W stored [C / G][K...][Mp], output channels last, Mp >= M;
     * one group, or depthwise (G = C = M) */
    int64_t kc = transpose ? 0 : attr_int(n, "weight_kc", 0);
    if (kc > 0) {
        cg->M = kc;
        if ((cg->G != 1 && (cg->G != cg->C || kc != cg->C)) || w->dims[0] != cg->C / cg->G || w->dims[w->rank - 1] < kc)
            return diag_error(d, n, "weight W stored output-channel-last has shape [%lld, ..., %lld]; expected [%lld, ..., >= %lld]",
                              (long long)w->dims[0], (long long)w->dims[w->rank - 1], (long long)(cg->C / cg->G), (long long)kc);
    } else if (hwc) {
        cg->M = w->dims[0];
        if (cg->G != 1 || w->dims[w->rank - 1] != cg->C)
            return diag_error(d, n, "weight W stored input-channel-last has shape [%lld, ..., %lld]; expected [M, ..., %lld]",
                              (long long)w->dims[0], (long long)w->dims[w->rank - 1], (long long)cg->C);
    } else if (cm > 0) {
        /* weight_pairs = 1 as well: input channels in pairs, [C / 2][Mq] with W[m][2i + s] at [i][2m + s] */
        int pairs = attr_int(n, "weight_pairs", 0) == 1;
        cg->M = cm;
        if (cg->G != 1 || (pairs ? cg->C % 2 || w->dims[0] != cg->C / 2 : w->dims[0] != cg->C) ||
            w->dims[1] < (pairs ? 2 * cm : cm))
            return diag_error(d, n, "weight W stored input-channel-major%s has shape [%lld, %lld]; expected [%lld, >= %lld]",
                              pairs ? " in pairs" : "", (long long)w->dims[0], (long long)w->dims[1],
                              (long long)(pairs ? cg->C / 2 : cg->C), (long long)(pairs ? 2 * cm : cm));
    } else if (!transpose) {
        cg->M = w->dims[0];
        if (w->dims[1] * cg->G != cg->C)
            return diag_error(d, n, "weight W has %lld input channels per group; X has %lld channels in %lld groups",
                              (long long)w->dims[1], (long long)cg->C, (long long)cg->G);
        if (cg->M % cg->G != 0)
            return diag_error(d, n, "output channels %lld are not divisible by group %lld", (long long)cg->M, (long long)cg->G);
    } else {
        if (w->dims[0] != cg->C)
            return diag_error(d, n, "weight W has %lld input channels; X has %lld", (long long)w->dims[0], (long long)cg->C);
        cg->M = w->dims[1] * cg->G;
    }
    if (b) {
        if (b->rank != 1 || b->dims[0] != cg->M)
            return diag_error(d, n, "bias B must have shape [%lld]", (long long)cg->M);
        if (b->dtype != x->dtype)
            return diag_error(d, n, "bias B has element type %s; X has %s", dtype_name(b->dtype), dtype_name(x->dtype));
    }
    if (w->dtype != x->dtype)
        return diag_error(d, n, "weight W has element type %s; X has %s", dtype_name(w->dtype), dtype_name(x->dtype));
    for (int i = 0; i < nsp; i++) {
        cg->in[i] = x->dims[2 + i];
        cg->k[i] = w->dims[(hwc || kc > 0 ? 1 : 2) + i];
    }
    int64_t ks[MAX_SP], pads[2 * MAX_SP], outpad[MAX_SP];
    const int64_t *v;
    if (attr_ints(n, "kernel_shape", &v) >= 0) {
        if (spatial_attr(n, "kernel_shape", nsp, 1, ks, d))
            return -1;
        for (int i = 0; i < nsp; i++)
            if (ks[i] != cg->k[i])
                return diag_error(d, n, "kernel_shape[%d] = %lld does not match the weight's dim %lld",
                                  i, (long long)ks[i], (long long)cg->k[i]);
    }
    if (spatial_attr(n, "strides", nsp, 1, cg->s, d) || spatial_attr(n, "dilations", nsp, 1, cg->dl, d) ||
        spatial_attr(n, "pads", 2 * nsp, 0, pads, d))
        return -1;
    if (transpose && spatial_attr(n, "output_padding", nsp, 0, outpad, d))
        return -1;
    for (int i = 0; i < nsp; i++) {
        if (cg->s[i] < 1 || cg->dl[i] < 1)
            return diag_error(d, n, "strides and dilations must be >= 1");
        if (cg->k[i] < 1)
            return diag_error(d, n, "kernel dims must be >= 1");
        cg->pb[i] = pads[i];
        cg->pe[i] = pads[nsp + i];
    }
    const char *ap = attr_string(n, "auto_pad", "NOTSET");
    int same_upper = strcmp(ap, "SAME_UPPER") == 0, same_lower = strcmp(ap, "SAME_LOWER") == 0;
    int valid = strcmp(ap, "VALID") == 0;
    if (!same_upper && !same_lower && !valid && strcmp(ap, "NOTSET") != 0 && ap[0])
        return diag_error(d, n, "unknown auto_pad '%s'", ap);
    if (!transpose) {
        for (int i = 0; i < nsp; i++) {
            int64_t ek = (cg->k[i] - 1) * cg->dl[i] + 1;
            if (valid) {
                cg->pb[i] = cg->pe[i] = 0;
            } else if (same_upper || same_lower) {
                int64_t o = conv_ceildiv(cg->in[i], cg->s[i]);
                int64_t total = (o - 1) * cg->s[i] + ek - cg->in[i];
                if (total < 0)
                    total = 0;
                cg->pb[i] = same_upper ? total / 2 : total - total / 2;
                cg->pe[i] = total - cg->pb[i];
            }
            int64_t span = cg->in[i] + cg->pb[i] + cg->pe[i] - ek;
            if (span < 0)
                return diag_error(d, n, "kernel (extent %lld) is larger than the padded input (%lld) along spatial dim %d",
                                  (long long)ek, (long long)(cg->in[i] + cg->pb[i] + cg->pe[i]), i);
            cg->out[i] = span / cg->s[i] + 1;
        }
    } else {
        int64_t oshape[KD_MAX_RANK];
        int nos = attr_ints(n, "output_shape", &v);
        if (nos >= 0) {
            if (nos != nsp && nos != nsp + 2)
                return diag_error(d, n, "output_shape has %d values; expected %d", nos, nsp);
            for (int i = 0; i < nsp; i++)
                oshape[i] = v[nos - nsp + i];
        }
        for (int i = 0; i < nsp; i++) {
            int64_t ek = (cg->k[i] - 1) * cg->dl[i] + 1;
            int64_t full = cg->s[i] * (cg->in[i] - 1) + outpad[i] + ek;
            if (nos >= 0 || same_upper || same_lower) {
                int64_t o = nos >= 0 ? oshape[i] : cg->in[i] * cg->s[i];
                int64_t total = full - o;
                if (same_upper) {
                    cg->pb[i] = conv_floordiv(total, 2);
                    cg->pe[i] = total - cg->pb[i];
                } else {
                    cg->pe[i] = conv_floordiv(total, 2);
                    cg->pb[i] = total - cg->pe[i];
                }
            } else if (valid) {
                cg->pb[i] = cg->pe[i] = 0;
            }
            cg->out[i] = full - cg->pb[i] - cg->pe[i];
            if (cg->out[i] < 1)
                return diag_error(d, n, "output spatial dim %d would be %lld", i, (long long)cg->out[i]);
        }
    }
    return 0;
}

/* A pointwise geometry (1x1, stride 1, no padding): the spatial dims are one
 * contiguous row, so it becomes 1-D over their product. */
static void conv_flatten_pointwise(ConvGeom *cg)
{
    int64_t sz = 1;
    for (int i = 0; i < cg->nsp; i++) {
        if (cg->k[i] != 1 || cg->s[i] != 1 || cg->pb[i] != 0 || cg->in[i] != cg->out[i])
            return;
        sz *= cg->out[i];
    }
    if (cg->nsp < 2)
        return;
    cg->nsp = 1;
    cg->in[0] = cg->out[0] = sz;
    cg->k[0] = cg->s[0] = cg->dl[0] = 1;
    cg->pb[0] = cg->pe[0] = 0;
}

static int infer_conv_common(Graph *g, Node *n, Diag *d, int transpose)
{
    Value *x = need_input(g, n, 0, d), *w = x ? need_input(g, n, 1, d) : NULL;
    if (!w)
        return -1;
    if (node_in(g, n, 2) && !need_input(g, n, 2, d))
        return -1;
    ConvGeom cg;
    if (conv_geom(g, n, transpose, &cg, d))
        return -1;
    int64_t dims[KD_MAX_RANK];
    dims[0] = cg.N;
    dims[1] = cg.M;
    for (int i = 0; i < cg.nsp; i++)
        dims[2 + i] = cg.out[i];
    value_set_shape(node_out(g, n, 0), x->dtype, x->rank, dims);
    return 0;
}

static int infer_conv(Graph *g, Node *n, Diag *d) { return infer_conv_common(g, n, d, 0); }
static int infer_convtranspose(Graph *g, Node *n, Diag *d) { return infer_conv_common(g, n, d, 1); }

/* Flat offset expression sum_j var_j * stride_j over the first nsp-1 dims of a
 * shape `ext` (row offset, in units of the last dim's row length). */
static void row_offset(Writer *w, char var, int nsp, const int64_t *ext)
{
    int any = 0;
    for (int j = 0; j < nsp - 1; j++) {
        int64_t st = 1;
        for (int t = j + 1; t < nsp - 1; t++)
            st *= ext[t];
        w_printf(w, "%s%c%d * %" PRId64, any ? " + " : "", var, j, st);
        any = 1;
    }
    if (!any)
        w_puts(w, "0");
}

/* Register-blocked Conv (float32, 1-D/2-D, any group): each block of up to
 * CB_M output channels of one group and run of up to CB_W output pixels of one
 * output row is a small GEMM accumulated in a local float acc[CB_M][CB_W] over
 * input channels and kernel taps, innermost over the pixels (contiguous input
 * for stride 1), weights broadcast. gcc keeps the block in vector registers.
 * Padding needs no separate path: as in the generic path, each last-dim tap's
 * valid pixel range is known at compile time, per run of pixels. */
/* The store of output element y0[idx] = val, through the node's epilogue (fused.h). */
void conv_store(Writer *w, const Epilogue *ep, DType dt, const char *val, const char *fmt, ...)
{
    char idx[192], dst[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(idx, sizeof idx, fmt, ap);
    va_end(ap);
    snprintf(dst, sizeof dst, "y0[%s]", idx);
    epilogue_store(w, ep, dt, dst, val, idx);
}

void conv_block_shape(int64_t nr, int64_t OH, int64_t OW, int64_t *VW, int64_t *R)
{
    int64_t best = -1;
    for (int64_t vw = nr; vw >= 1; vw--) {
        if (vw != nr && (vw % 8 || nr % vw))
            continue;
        int64_t r = nr / vw < OH ? nr / vw : OH;
        int64_t cover = (OW + vw - 1) / vw * vw * ((OH + r - 1) / r * r);
        if (best < 0 || cover < best) {
            best = cover;
            *VW = vw;
            *R = r;
        }
    }
}

/* The epilogue (fused.h) of the register-blocked kernels: over the finished output
 * planes of channels m0 .. m0 + mb - 1 of image b, one contiguous, vectorisable pass
 * while the planes are still in cache, not in the blocks' stores. Measured with gcc
 * 12 -O3 -march=native: a residual add in the padded-plane kernel's store (which
 * scatters over channels) made a ResNet-8 Conv 50% slower, and a Relu in the per-row
 * kernel's store made a 32->64 3x3 stride-2 layer 2.8x slower (acc no longer stayed
 * in registers); after the block each costs about what a plain store does. The
 * padded-plane kernel, whose stores now run along output rows in whole vectors,
 * applies the epilogue in its store instead (ResNet-8 ~2% faster than with this
 * pass, its 64->64 layer with a residual Add included). */
void conv_epilogue_planes(Writer *w, const Epilogue *ep, int64_t M, int64_t OSZ, int64_t mb)
{
    if (!ep || !ep->n)
        return;
    char idx[96], val[112];
    snprintf(idx, sizeof idx, "(b * %" PRId64 " + m0 + mm) * %" PRId64 " + q", M, OSZ);
    snprintf(val, sizeof val, "y0[%s]", idx);
    em_for(w, "mm", mb);
    em_for(w, "q", OSZ);
    epilogue_store(w, ep, DT_FLOAT, val, val, idx);
    em_close(w, 2);
}

#define CB_M 8
#define CB_W 32
#define CB_MAX_EDGE_RUNS 6

typedef struct CbRun {
    int64_t c0, cw;   /* first output pixel, width */
    int full;         /* every tap valid for every pixel and cw == CB_W */
} CbRun;

/* Valid output-pixel range [lo, hi) of last-dim tap kl (Conv: input x = v*s + kl*dl - p in [0, IW)). */
void conv_tap_range(const ConvGeom *cg, int L, int64_t kl, int64_t *lo, int64_t *hi)
{
    int64_t off = kl * cg->dl[L] - cg->pb[L];
    *lo = conv_ceildiv(-off, cg->s[L]);
    *hi = conv_floordiv(cg->in[L] - 1 - off, cg->s[L]) + 1;
    if (*lo < 0)
        *lo = 0;
    if (*hi > cg->out[L])
        *hi = cg->out[L];
}

void conv_pad_row(Writer *w, int64_t IH, int64_t IW, int64_t PW, int64_t clo, int64_t chi, int64_t stride, int64_t off)
{
    w_open(w, "if (u < 0 || u >= %" PRId64 ")", IH);
    em_for(w, "c", PW);
    w_line(w, "pr[c] = 0;");
    w_close(w);
    w_close(w);
    w_open(w, "else");
    if (clo > 0) {
        em_for(w, "c", clo);
        w_line(w, "pr[c] = 0;");
        w_close(w);
    }
    if (chi > clo) {
        const char *sg = off < 0 ? "-" : "+";
        int64_t ao = off < 0 ? -off : off;
        w_line(w, "const float *restrict xr = xc + u * %" PRId64 ";", IW);
        if (stride == 1) {
            /* a memcpy, not a loop: gcc 12.2 at -O3 -mavx2 vectorised the loop
             * pr[c] = xr[c - 1], c = 1 .. 14, of a 16-float padded row wrongly (a 16->8
             * 3x3 layer on 14x14 maps, batch 64: 57292 of 100352 outputs off by up to 4.2) */
            w_line(w, "memcpy(pr + %" PRId64 ", xr + %" PRId64 ", %" PRId64 " * sizeof(float));", clo, clo + off, chi - clo);
        } else {
            w_open(w, "for (int64_t c = %" PRId64 "; c < %" PRId64 "; ++c)", clo, chi);
            w_line(w, "pr[c] = xr[c * %" PRId64 " %s %" PRId64 "];", stride, sg, ao);
            w_close(w);
        }
    }
    if (chi < PW) {
        w_open(w, "for (int64_t c = %" PRId64 "; c < %" PRId64 "; ++c)", chi, PW);
        w_line(w, "pr[c] = 0;");
        w_close(w);
    }
    w_close(w);   /* else */
}

static int64_t cb_width(int64_t OW) { return OW <= CB_W + CB_W / 4 ? OW : CB_W; }

/* Plan the runs of one output row; returns the number of runs, or -1 if too many edge runs. */
static int cb_plan(const ConvGeom *cg, int L, CbRun *runs, int max)
{
    int64_t OW = cg->out[L];
    int64_t BW = cb_width(OW);
    int nr = 0, edges = 0;
    for (int64_t c0 = 0; c0 < OW; c0 += BW) {
        int64_t cw = OW - c0 < BW ? OW - c0 : BW;
        int full = cw == BW;
        for (int64_t kl = 0; kl < cg->k[L] && full; kl++) {
            int64_t lo, hi;
            conv_tap_range(cg, L, kl, &lo, &hi);
            if (lo > c0 || hi < c0 + cw)
                full = 0;
        }
        if (full && nr > 0 && runs[nr - 1].full) {
            runs[nr - 1].cw += cw;   /* merge: a loop over full runs */
            continue;
        }
        if (!full && ++edges > CB_MAX_EDGE_RUNS)
            return -1;
        if (nr == max)
            return -1;
        runs[nr].c0 = c0;
        runs[nr].cw = cw;
        runs[nr].full = full;
        nr++;
    }
    return nr;
}

/* One block of mb output channels (first m = "m0") and one run (start c0, width cw, or
 * a loop over full runs of width bw from c0 over cw pixels). */
static void cb_block(Writer *w, const ConvGeom *cg, int L, int has_bias, int mb, const CbRun *r, int64_t bw)
{
    int64_t Cg = cg->C / cg->G, KW = cg->k[L], s = cg->s[L], OW = cg->out[L];
    int64_t KSZ = KW * (L ? cg->k[0] : 1), ISZ = cg->in[L] * (L ? cg->in[0] : 1);
    int64_t OSZ = OW * (L ? cg->out[0] : 1), IW = cg->in[L];
    int64_t width = r->full ? bw : r->cw;
    if (r->full)
        w_open(w, "for (int64_t c0 = %" PRId64 "; c0 < %" PRId64 "; c0 += %" PRId64 ")", r->c0, r->c0 + r->cw, bw);
    else
        w_open(w, "%s", "");
    if (!r->full)
        w_line(w, "const int64_t c0 = %" PRId64 ";", r->c0);
    w_line(w, "float acc[%d][%" PRId64 "];", mb, width);
    em_for(w, "mm", mb);
    em_for(w, "v", width);
    w_line(w, has_bias ? "acc[mm][v] = x2[m0 + mm];" : "acc[mm][v] = 0;");
    em_close(w, 2);
    em_for(w, "ci", Cg);
    w_line(w, "const float *restrict xc = x0 + (b * %" PRId64 " + g * %" PRId64 " + ci) * %" PRId64 ";", cg->C, Cg, ISZ);
    w_line(w, "const float *restrict wc = x1 + (m0 * %" PRId64 " + ci) * %" PRId64 ";", Cg, KSZ);
    if (L) {
        em_for(w, "k0", cg->k[0]);
        w_line(w, "const int64_t u0 = oy * %" PRId64 " + k0 * %" PRId64 " - %" PRId64 ";", cg->s[0], cg->dl[0], cg->pb[0]);
        int64_t umin = -cg->pb[0], umax = (cg->out[0] - 1) * cg->s[0] + (cg->k[0] - 1) * cg->dl[0] - cg->pb[0];
        if (umin < 0 && umax >= cg->in[0])
            w_line(w, "if (u0 < 0 || u0 >= %" PRId64 ") continue;", cg->in[0]);
        else if (umin < 0)
            w_line(w, "if (u0 < 0) continue;");
        else if (umax >= cg->in[0])
            w_line(w, "if (u0 >= %" PRId64 ") continue;", cg->in[0]);
        if (r->full)
            w_line(w, "const float *xr = xc + u0 * %" PRId64 " + c0 * %" PRId64 ";", IW, s);
        else
            w_line(w, "const float *xr = xc + u0 * %" PRId64 ";", IW);
        w_line(w, "const float *wr = wc + k0 * %" PRId64 ";", KW);
    } else {
        if (r->full)
            w_line(w, "const float *xr = xc + c0 * %" PRId64 ";", s);
        else
            w_line(w, "const float *xr = xc;");
        w_line(w, "const float *wr = wc;");
    }
    int64_t dl = cg->dl[L], p = cg->pb[L];
    if (!r->full) {
        /* edge run: copy the input span it reads into a zero-padded local row */
        int64_t span = (width - 1) * s + (KW - 1) * dl + 1, start = r->c0 * s - p;
        int64_t jlo = start < 0 ? -start : 0, jhi = IW - start < span ? IW - start : span;
        w_line(w, "float xp[%" PRId64 "];", span);
        if (jhi <= jlo) {
            w_line(w, "(void)xr;");
            jlo = jhi = span;
        }
        if (jlo > 0) {
            em_for(w, "j", jlo);
            w_line(w, "xp[j] = 0;");
            w_close(w);
        }
        if (jlo < jhi) {
            w_open(w, "for (int64_t j = %" PRId64 "; j < %" PRId64 "; ++j)", jlo, jhi);
            w_line(w, "xp[j] = xr[j %s %" PRId64 "];", start < 0 ? "-" : "+", start < 0 ? -start : start);
            w_close(w);
        }
        if (jhi < span) {
            w_open(w, "for (int64_t j = %" PRId64 "; j < %" PRId64 "; ++j)", jhi, span);
            w_line(w, "xp[j] = 0;");
            w_close(w);
        }
    }
    for (int64_t kl = 0; kl < KW; kl++) {
        /* full run: xr is the row at c0 (the input x of pixel v is v*s + kl*dl - p);
         * edge run: xp[0] is input x c0*s - p */
        int64_t off = r->full ? kl * dl - p : kl * dl;
        char idx[96];
        if (s == 1)
            snprintf(idx, sizeof idx, "v%s%" PRId64, off < 0 ? " - " : " + ", off < 0 ? -off : off);
        else
            snprintf(idx, sizeof idx, "v * %" PRId64 "%s%" PRId64, s, off < 0 ? " - " : " + ", off < 0 ? -off : off);
        em_for(w, "mm", mb);
        w_line(w, "const float wv = wr[mm * %" PRId64 " + %" PRId64 "];", Cg * KSZ, kl);
        em_for(w, "v", width);
        w_line(w, "acc[mm][v] += wv * %s[%s];", r->full ? "xr" : "xp", idx);
        em_close(w, 2);
    }
    em_close(w, L ? 2 : 1);   /* k0, ci */
    em_for(w, "mm", mb);
    em_for(w, "v", width);
    char idx[160], yv[176];
    if (L)
        snprintf(idx, sizeof idx, "(b * %" PRId64 " + m0 + mm) * %" PRId64 " + oy * %" PRId64 " + c0 + v", cg->M, OSZ, OW);
    else
        snprintf(idx, sizeof idx, "(b * %" PRId64 " + m0 + mm) * %" PRId64 " + c0 + v", cg->M, OSZ);
    snprintf(yv, sizeof yv, "y0[%s]", idx);
    w_line(w, "%s = acc[mm][v];", yv);
    em_close(w, 2);
    w_close(w);
}

/* Emit Conv through the blocked kernel; returns 0 if the case is not one it handles. */
static int emit_conv_blocked(Emitter *e, const Node *n, const ConvGeom *cg, const Epilogue *ep)
{
    Writer *w = e->w;
    const Value *x = node_in(e->g, n, 0);
    int has_bias = node_in(e->g, n, 2) != NULL;
    if (x->dtype != DT_FLOAT || cg->transpose || cg->nsp > 2)
        return 0;
    int L = cg->nsp - 1;
    if (cg->k[L] > UNROLL_TAPS)
        return 0;
    CbRun runs[2 * CB_MAX_EDGE_RUNS + 2];
    int nr = cb_plan(cg, L, runs, (int)(sizeof runs / sizeof runs[0]));
    if (nr < 0)
        return 0;
    int64_t bw = cb_width(cg->out[L]);
    /* narrow runs with per-tap partial ranges (padding) are slower than the
     * generic path with gcc 12 (measured: 14 and 16 wide); full runs are not */
    int partial = 0;
    for (int i = 0; i < nr; i++)
        partial |= !runs[i].full;
    if (bw < CB_W / 4 && partial)
        return 0;
    int64_t Mg = cg->M / cg->G;
    /* rows of 8 pixels or fewer: 4 channels per block. Measured with gcc 12
     * -O3 -march=native (znver3): 8 x 8 ran slower than the generic path and
     * 4 x 8 twice as fast, while 8 x 10 was 4x faster and 4 x 10 slower */
    int64_t mbk = bw > CB_W / 4 ? CB_M : CB_M / 2;
    if (mbk > Mg)
        mbk = Mg;
    int64_t nfull = Mg / mbk, rem = Mg % mbk;
    em_for(w, "b", cg->N);
    em_for(w, "g", cg->G);
    for (int part = 0; part < 2; part++) {
        int64_t mb = part ? rem : mbk;
        if (!mb || (!part && !nfull))
            continue;
        if (!part) {
            w_open(w, "for (int64_t mo = 0; mo < %" PRId64 "; mo += %" PRId64 ")", nfull * mbk, mbk);
            w_line(w, "const int64_t m0 = g * %" PRId64 " + mo;", Mg);
        } else {
            w_open(w, "%s", "");
            w_line(w, "const int64_t m0 = g * %" PRId64 " + %" PRId64 ";", Mg, nfull * mbk);
        }
        if (L)
            em_for(w, "oy", cg->out[0]);
        for (int i = 0; i < nr; i++)
            cb_block(w, cg, L, has_bias, (int)mb, &runs[i], bw);
        if (L)
            w_close(w);
        conv_epilogue_planes(w, ep, cg->M, L ? cg->out[0] * cg->out[1] : cg->out[0], mb);
        w_close(w);
    }
    em_close(w, 2);
    return 1;
}

/* Padded-plane direct convolution (float32, 2-D, stride 1 or phase planes, any padding,
 * dilation and group, not 1x1 pointwise). Per image and group, the group's input
 * channels are copied once into a zero-padded plane of PH x PW (the rows and
 * columns the kernel reaches) in the node's scratch memory. With q = oy * PW + ox,
 * every kernel tap then reads the padded plane at q plus a constant, so output
 * pixels form one contiguous run over q regardless of row boundaries: a block of
 * MR output channels by NR consecutive q is a small GEMM over input
 * channels and taps with acc[MR][NR] in vector registers and unit-stride
 * loads. The PW - OW columns of each row that fall past the output width are
 * computed and dropped (PW / OW extra work, small for 3x3 kernels). Rows of any
 * width vectorise the same, unlike the per-row blocks of emit_conv_blocked, which
 * suit rows of 32 pixels or more. Measured with gcc 12 -O3 -march=native on znver3
 * for a 16->16 3x3 layer on 28x28 (batch 64): 8 x 16 blocks 33 GFLOP/s, 4 x 24 29,
 * 4 x 32 28, 8 x 8 21, against 13 for the per-row blocks. */

/* The register block, output channels x pixels (MR x NR above): what --tune
 * chose for this node (Node.block_m/n), else the target's (compiler/ir/target.h);
 * 8 x 16 for the default. How much scratch a node may take is passes/scratch.c's
 * decision (the target's limit, the node's own tensor bytes). */
void conv_block(const Graph *g, const Node *n, int64_t *mr, int64_t *nr)
{
    const Target *t = g->target ? g->target : target_default();
    *mr = n->block_m > 0 ? n->block_m : t->block_m;
    *nr = n->block_n > 0 ? n->block_n : t->block_n;
}

/* With AVX-512 (x86-64-v4, built with -mprefer-vector-width=512), arrays of 16
 * floats make gcc use zmm registers; arrays of 8 stay in ymm whatever the flags,
 * at half the multiply-adds per instruction. */
int64_t conv_lanes(const Graph *g, int64_t width)
{
    const Target *t = g->target ? g->target : target_default();
    return target_lanes(t->vector_bytes / 4, width);
}

#define IC_MIN_PIXELS 128 /* images of fewer output pixels share a panel in a batch */

typedef struct IcGeom {
    int64_t rows;     /* panel rows: Cg * K0 * K1 */
    int64_t ib;       /* images per panel (1, or several small ones of a batch) */
    int64_t cr;       /* output rows per chunk (OH: the whole image) */
    int64_t pp;       /* panel columns: a chunk's pixels rounded up to nr */
    int64_t mr, nr;   /* register block */
    int64_t lv;       /* floats per accumulator array (conv_lanes) */
} IcGeom;

static int ic_plan(const Graph *g, const Node *n, const ConvGeom *cg, int64_t avail, IcGeom *ic);
static int64_t conv_nt(const Graph *g, const ConvGeom *cg);

/* Strided layers (up to PP_MAX_S): each input channel is copied as S0 x S1 phase
 * planes, plane (f0, f1) holding the padded input's rows f0, f0 + S0, ... and
 * columns f1, f1 + S1, ...; output pixel (oy, ox) and tap (k0, k1) read phase plane
 * (k0 dl % S0, k1 dl % S1) at (oy + k0 dl / S0, ox + k1 dl / S1), so a stride-2 layer
 * runs as stride-1 products over the planes with the same blocks and contiguous
 * loads. The copy is about the input's size, against im2col's K0 x K1 / (S0 x S1)
 * times that: MobileNet's 3->8 3x3 stride-2 first layer on 48 x 48 outputs took
 * 22 us so against 38 through im2col, UltraFace's 3->16 on 120 x 160 374 against 656.
 *
 * The padded-plane kernel (stride 1): each input channel's plane is copied once
 * per image with its padding into PH x PW floats, so every tap of an output row
 * reads a contiguous, unconditional run of it. Outputs go in blocks of mr channels
 * by R rows x VW columns (R * VW = nr, VW a multiple of 8 that covers the row or
 * part of it), so a block's stores are whole vectors along an output row; a
 * partial block (the row's last columns, the plane's last rows) computes the full
 * block over the plane's slack and stores only its own pixels. Before, blocks ran
 * over the padded plane end to end and each pixel's store computed its row with a
 * division and scattered over channels: on a 1-input-channel 3x3 layer that store
 * took as long as the arithmetic. */
#define PP_MAX_S 4   /* strides up to this: phase planes (S0 x S1 of them per channel) */

/* Bands: when an image's planes exceed half the target's L1, they are copied and
 * used a band of RB output rows at a time, the band's planes a quarter of the L1 at
 * most, so the blocks read them back from the cache they were written into; where
 * such bands would be so short that the rows shared by two bands (the kernel's
 * height past the stride) made up more than a quarter of the copy, the same over
 * half and a quarter of the L2. MobileNet's 3->8 3x3 stride-2 first layer on 48 x 48
 * outputs (115 KB of planes; x86-64-v4, alone, warm): 11.0-11.2 us whole, 9.2-9.4
 * in 12 bands of 4 rows, 9.6-10.1 in 6 of 8 (planes within half the L1); of the
 * 11 us, 3.4 went on the copy even with the strided reads made contiguous, the
 * stores missing the L1. In the whole model its share of the time fell from 10.3%
 * to 8.8%. Only that benchmark layer takes the L1 bands; the others' planes fit in
 * the L1 whole or their rows are too long (UltraFace's 3->16 on 120 x 160: 7.7 KB a
 * plane row). The L2 bands: before them, UltraFace's 3->16 layer wrote 936 KB of
 * phase planes and read them back from memory for each of its two blocks of output
 * channels: 193-200 us against 159-188 in 4 bands of 30 rows (x86-64-v4,
 * --tune-retime, five runs each in turn). The band's scratch is the smaller too, so
 * the kernel fits targets whose max_scratch the whole planes exceed. Bands are as
 * even as the blocks' rows allow. */
typedef struct PpGeom {
    int64_t PH, PW, PS, slack; /* a band's planes: rows, columns, floats; floats read past the last */
    int64_t S0, S1, CS; /* strides; floats per input channel: S0 * S1 phase planes of PS */
    int64_t mr, nr;     /* register block: channels x pixels */
    int64_t VW, R;      /* a block's columns and rows (R * VW <= nr) */
    int64_t NXB, NYB;   /* blocks along a row, along the columns (of a band) */
    int64_t RB, NB;     /* output rows per band (NYB * R), bands (1: the whole image) */
    int64_t lv;         /* floats per accumulator array (conv_lanes) */
} PpGeom;

/* Fraction of a padded-plane layer's block pixels that fall outside the output. */
static double pp_waste(const ConvGeom *cg, const PpGeom *p)
{
    return (double)(p->NXB * p->VW * p->NB * p->NYB * p->R) / (double)(cg->out[0] * cg->out[1]) - 1.0;
}

static int pp_plan(const Graph *g, const Node *n, const ConvGeom *cg, PpGeom *p)
{
    const Value *x = node_in(g, n, 0);
    if (!x || x->dtype != DT_FLOAT || cg->transpose || cg->nsp != 2 || cg->s[0] > PP_MAX_S || cg->s[1] > PP_MAX_S)
        return 0;
    conv_block(g, n, &p->mr, &p->nr);
    if (cg->M / cg->G < PP_MIN_M || cg->k[1] > UNROLL_TAPS || (cg->k[0] == 1 && cg->k[1] == 1))
        return 0;
    int64_t OH = cg->out[0], OW = cg->out[1];
    p->S0 = cg->s[0];
    p->S1 = cg->s[1];
    p->PH = OH + (cg->k[0] - 1) * cg->dl[0] / p->S0;
    p->PW = OW + (cg->k[1] - 1) * cg->dl[1] / p->S1;
    p->PS = p->PH * p->PW;
    p->CS = p->S0 * p->S1 * p->PS;
    conv_block_shape(p->nr, OH, OW, &p->VW, &p->R);
    p->lv = conv_lanes(g, p->VW);
    p->NXB = (OW + p->VW - 1) / p->VW;
    p->NYB = (OH + p->R - 1) / p->R;
    p->RB = p->NYB * p->R;
    p->NB = 1;
    /* reads of a block beyond the plane: its rows past OH, its columns past PW */
    p->slack = (p->NYB * p->R - OH) * p->PW + p->NXB * p->VW + (cg->k[1] - 1) * cg->dl[1] / p->S1;
    const Target *t = g->target ? g->target : target_default();
    int64_t Cg = cg->C / cg->G, extra = (cg->k[0] - 1) * cg->dl[0] / p->S0, row = Cg * p->S0 * p->S1 * p->PW * 4;
    int64_t rb = 0;
    if (t->l1d > 0 && Cg * p->CS * 4 > t->l1d / 2) {   /* bands whose planes take a quarter of the L1 */
        int64_t lo = (4 * extra + p->R - 1) / p->R * p->R;   /* the halo rows copied twice: a quarter at most */
        int64_t r1 = (t->l1d / 4 / row - extra) / p->R * p->R;
        if (r1 >= lo && r1 >= p->R)
            rb = r1;
    }
    if (!rb && t->l2 > 0 && Cg * p->CS * 4 > t->l2 / 2)   /* else a quarter of the L2 */
        rb = (t->l2 / 4 / row - extra) / p->R * p->R;
    if (rb >= p->R && rb < p->RB) {   /* bands of at most rb rows, as even as the blocks allow */
        p->NB = (OH + rb - 1) / rb;
        p->RB = ((OH + p->NB - 1) / p->NB + p->R - 1) / p->R * p->R;
        p->NYB = p->RB / p->R;
        p->PH = p->RB + extra;   /* a band's rows past OH are copied as zeros */
        p->PS = p->PH * p->PW;
        p->CS = p->S0 * p->S1 * p->PS;
        p->slack = p->NXB * p->VW + (cg->k[1] - 1) * cg->dl[1] / p->S1;
    }
    return 1;
}

/* Threads the padded-plane and im2col kernels split a batch over (Graph.threads):
 * each takes its own images and its own slice of the scratch. */
static int64_t conv_nt(const Graph *g, const ConvGeom *cg)
{
    return g->threads > 1 && cg->N > 1 ? (g->threads < cg->N ? g->threads : cg->N) : 1;
}

/* Open the loop over threads: `ys` is the thread's scratch slice of `per` floats;
 * conv_batch_images then opens the loop over the thread's images `b`. Without
 * OpenMP the same loop runs on one thread, and each image is computed the same way
 * whatever nt is. */
static void conv_batch_open(Emitter *e, int64_t nt, int64_t per)
{
    Writer *w = e->w;
    if (nt > 1) {
        w_puts(w, "#ifdef _OPENMP\n");
        w_printf(w, "#pragma omp parallel for num_threads(%" PRId64 ") schedule(static)\n", nt);
        w_puts(w, "#endif\n");
    }
    w_open(w, "for (int64_t th = 0; th < %" PRId64 "; ++th)", nt);
    w_line(w, "float *restrict ys = y1 + th * %" PRId64 ";", per);
}

static void conv_batch_images(Writer *w, int64_t nt, int64_t N)
{
    w_open(w, "for (int64_t b = th * %" PRId64 " / %" PRId64 "; b < (th + 1) * %" PRId64 " / %" PRId64 "; ++b)", N, nt, N, nt);
}

/* Blocks of output channels x pixels over one image, as the channel-vector and
 * channel-dot kernels take them: m0 over M channels in steps of mb (then the
 * remainder), and within each, p0 over P pixels in steps of np (then the partial
 * last block); emit writes a block's code for `channels` channels and `valid`
 * pixels, with m0 and p0 in scope. */
typedef void (*ConvBlockFn)(Writer *w, const void *ctx, int64_t channels, int64_t valid);

static void conv_block_loops(Writer *w, int64_t M, int64_t mb, int64_t P, int64_t np, ConvBlockFn emit, const void *ctx)
{
    int64_t nfull = M / mb, rem = M % mb, pf = P / np * np;
    for (int part = 0; part < 2; part++) {
        int64_t ch = part ? rem : mb;
        if (!ch || (!part && !nfull))
            continue;
        if (part) {
            w_open(w, "%s", "");
            w_line(w, "const int64_t m0 = %" PRId64 ";", nfull * mb);
        } else {
            w_open(w, "for (int64_t m0 = 0; m0 < %" PRId64 "; m0 += %" PRId64 ")", nfull * mb, mb);
        }
        if (pf) {
            w_open(w, "for (int64_t p0 = 0; p0 < %" PRId64 "; p0 += %" PRId64 ")", pf, np);
            emit(w, ctx, ch, np);
            w_close(w);
        }
        if (pf < P) {
            w_open(w, "%s", "");
            w_line(w, "const int64_t p0 = %" PRId64 ";", pf);
            emit(w, ctx, ch, P - pf);
            w_close(w);
        }
        w_close(w);
    }
}

/* what a block of the channel-vector or channel-dot kernel reads besides its size */
typedef struct ConvBlockCtx {
    const ConvGeom *cg;
    const void *plan;
    int has_bias;
    const Epilogue *ep;
} ConvBlockCtx;

/* The channel-vector kernel, for small maps whose rows would leave the padded-plane
 * kernel's blocks mostly padding (LeNet-5's 6->16 5x5 layer on 10 x 10 outputs:
 * blocks of 8 columns cover 16 of every 10): the vectors run over the output
 * channels instead, and each block is np output pixels (consecutive in the image,
 * across rows) x nc output channels, np x nc / vl vector accumulators. Per input
 * channel and tap, np input values are broadcast and nc / vl weight vectors loaded,
 * so no lane is padding but the channels past the last multiple of the vector. The
 * weights are read as wp[Cg * K0 * K1][MP] (MP: the output channels rounded up to
 * the vector, zeros past them): constant weights stored so by passes/layout.c
 * (weight_kc), others packed into the scratch on every call; with padding the input
 * channels are copied into zero-padded planes as in the padded-plane kernel, without
 * they are read in place, so a layer with constant weights and no padding needs no
 * scratch at all (mnist-14x14-atmega's 20->12 3x3 layer on 3 x 3, whose im2col
 * panel does not fit the 2.4 KB its tensors take: 3.4 us in the per-row kernel).
 * Any stride, padding and dilation, one group; the last block of channels may be
 * partial (12 of a vector of 16: its lanes past M are computed from the zero
 * weights and not stored). Blocks are --tune's (pixels x channels, cv_plan), else
 * 6 pixels x 2 vectors (12 x 1 or 4 x 3 when M fits one or three). With the block as one
 * acc[np][nc] array, 4 x 2, 8 x 1, 2 x 4 and the like
 * took 8 to 17 times as long as 6 x 2 (gcc vectorised the loop over the kernel rows
 * or input channels instead of the lanes, as in-order reductions); with named
 * arrays and KD_LANES (cv_block) every block vectorises, and on the AMD EPYC (AVX2),
 * gcc 12 -O3, LeNet-5's layer took 9.1 us in 4 x 2 against 11.6 in 6 x 2 (12.0-12.9
 * in the old form; 17.1-18.3 us in the padded-plane kernel). Chosen after the padded plane within
 * PP_MAX_WASTE and im2col over whole images: on ResNet-8's 32->64 stride-2 layer on
 * 8 x 8 it took 93 us against im2col's 47, on the distillation teacher's 16->32
 * stride-2 layer 834 us against 646. A layer whose output passes/layout.c stores
 * channels-last (conv_channel_vectors_cl: the first layer of a depthwise-separable
 * stack) takes this kernel whatever else would, and stores each pixel's channels as
 * runs: DS-CNN's 1->64 10x4 stride-2 layer, tuned, 3.6 us, against 5.7 in im2col
 * into NCHW, and its first depthwise layer then reads that order too. */
#define CV_MAX_P 256   /* output pixels per image: at most this many */
#define CV_MAX_ACC 12  /* vector accumulators of a block (of 16 registers on AVX2) */

typedef struct CvPlan {
    int64_t vl, np, nc, MP, K;
    int ws;             /* weights stored [C][K0][K1][MP] by passes/layout.c (weight_kc): read in place */
    int ycl;            /* the output stored channels-last (passes/layout.c) */
    int plane;          /* padded copy of the input channels */
    int64_t PH, PW, PS; /* the planes read (the input's own when plane == 0) */
} CvPlan;

static int cv_plan(const Graph *g, const Node *n, const ConvGeom *cg, CvPlan *p)
{
    const Value *x = node_in(g, n, 0), *wt = node_in(g, n, 1);
    const Target *t = g->target ? g->target : target_default();
    if (!x || x->dtype != DT_FLOAT || cg->transpose || cg->nsp != 2 || cg->G != 1 || t->vector_bytes < 16)
        return 0;
    if (cg->M < PP_MIN_M || cg->k[1] > UNROLL_TAPS || (cg->k[0] == 1 && cg->k[1] == 1) ||
        cg->out[0] * cg->out[1] > CV_MAX_P)
        return 0;
    int64_t P = cg->out[0] * cg->out[1];
    p->vl = t->vector_bytes / 4;
    p->ws = attr_int(n, "weight_kc", 0) > 0;
    p->ycl = node_out(g, n, 0) && node_out(g, n, 0)->channels_last;
    p->MP = p->ws ? wt->dims[wt->rank - 1] : (cg->M + p->vl - 1) / p->vl * p->vl;
    if (p->MP % p->vl)   /* stored for another target's vectors */
        return 0;
    p->K = cg->C * cg->k[0] * cg->k[1];
    p->plane = 0;
    for (int i = 0; i < 2; i++)
        p->plane |= cg->pb[i] != 0 || cg->pe[i] != 0;
    if (p->plane) {
        p->PH = (cg->out[0] - 1) * cg->s[0] + (cg->k[0] - 1) * cg->dl[0] + 1;
        p->PW = (cg->out[1] - 1) * cg->s[1] + (cg->k[1] - 1) * cg->dl[1] + 1;
    } else {
        p->PH = cg->in[0];
        p->PW = cg->in[1];
    }
    p->PS = p->PH * p->PW;
    /* --tune's block (pixels x channels) when it fits: whole vectors of channels that
     * fit in MP, at most CV_MAX_ACC vector accumulators (24 of 32 registers); else
     * 6 pixels x 2 vectors, or 12 x 1, or 4 x 3 when MP is 1 or 3 vectors */
    int64_t mr, nr, most = t->vector_regs >= 32 ? 24 : CV_MAX_ACC;
    conv_block(g, n, &mr, &nr);
    int64_t q = p->MP / p->vl;
    p->nc = (q <= 3 ? q : 2) * p->vl;
    p->np = CV_MAX_ACC / (p->nc / p->vl);
    if ((n->block_m > 0 || n->block_n > 0) && nr % p->vl == 0 && nr <= p->MP && mr * (nr / p->vl) <= most)
        p->np = mr, p->nc = nr;
    if (p->np > P)
        p->np = P;
    return 1;
}

/* Whether a block's vectors hold enough of the layer's channels for the kernel to
 * come before the padded plane's fallback and im2col in chunks: 16 channels, or 12 in
 * a vector of 16. Fewer, and each broadcast input feeds too few lanes. Measured (one
 * 3x3 layer + Relu, gcc 12 -O3, this Xeon, generic / x86-64-v4, us, channel vectors
 * against the other kernel): 6->8 on 7x7 0.79 / 0.62 and 0.90 / 0.75; 6->12 1.00 /
 * 0.95 (generic: two vectors of 8, a quarter padding) but 0.91 / 1.08 on x86-64-v4;
 * 6->16 0.99 / 1.23 and 0.96 / 1.45; 4->12 dilation 2 on 13x19 3.55 / 2.75 and 3.05 /
 * 3.64; 6->10 stride 2 on 91x7 3.52 / 3.33 and 3.40 / 3.04; 6->16 there 3.81 / 4.44
 * and 3.70 / 3.87. Where neither of those fits its scratch, the kernel comes next
 * anyway, the per-row kernel being far slower still (20->12 on 5x5 3.43 us against
 * 0.29), unless half of its stored weights or more would be padding (4 channels of
 * a vector of 8). */
static int cv_full(const ConvGeom *cg, const CvPlan *p)
{
    int64_t u = cg->M < p->nc ? cg->M : p->nc;
    return u >= 16 || (p->vl >= 16 && 4 * u >= 3 * p->vl);
}

static int64_t cv_scratch(const ConvGeom *cg, const CvPlan *p)
{
    return ((p->ws ? 0 : p->K * p->MP) + (p->plane ? cg->C * p->PS : 0)) * (int64_t)sizeof(float);
}

/* One block: np pixels from p0 (valid of them inside the image) x nc channels from
 * m0, of which `channels` are the layer's (C variables p0, m0, b and xb in scope).
 * One named array of vl floats per pixel
 * and vector, c{j}_{v}, zeroed in its declaration, and every loop over the lanes
 * behind KD_LANES: the form gcc keeps in registers (see pp_block_vec). A loop that
 * zeroed them would be a memset to gcc 12, which keeps an array it touches in
 * memory; the bias is added at the store, as before. */
static void cv_block(Writer *w, const ConvGeom *cg, const CvPlan *p, int has_bias, int64_t channels, int64_t valid,
                     const Epilogue *ep)
{
    int64_t np = p->np, vl = p->vl, nv = (channels + vl - 1) / vl, OW = cg->out[1], P = cg->out[0] * OW;
    int64_t K0 = cg->k[0], K1 = cg->k[1];
    w_open(w, "%s", "");
    for (int64_t j = 0; j < np; j++)
        for (int64_t v = 0; v < nv; v++)
            w_line(w, "float c%" PRId64 "_%" PRId64 "[%" PRId64 "] = {0};", j, v, vl);
    /* each pixel's first input value in the planes; pixels past the valid ones repeat the last */
    for (int64_t j = 0; j < np; j++)
        w_line(w, "const int64_t o%" PRId64 " = (p0 + %" PRId64 ") / %" PRId64 " * %" PRId64 " + (p0 + %" PRId64 ") %% %" PRId64
               " * %" PRId64 ";", j, j < valid ? j : valid - 1, OW, cg->s[0] * p->PW, j < valid ? j : valid - 1, OW, cg->s[1]);
    em_for(w, "ci", cg->C);
    w_line(w, "const float *restrict xr = xb + ci * %" PRId64 ";", p->PS);
    w_line(w, "const float *restrict wr = wp + ci * %" PRId64 " + m0;", K0 * K1 * p->MP);
    em_for(w, "k0", K0);
    w_line(w, "const float *restrict xk = xr + k0 * %" PRId64 ";", cg->dl[0] * p->PW);
    w_line(w, "const float *restrict wk = wr + k0 * %" PRId64 ";", K1 * p->MP);
    for (int64_t k1 = 0; k1 < K1; k1++) {
        w_open(w, "%s", "");
        for (int64_t j = 0; j < np; j++)
            w_line(w, "const float a%" PRId64 " = xk[o%" PRId64 " + %" PRId64 "];", j, j, k1 * cg->dl[1]);
        em_for_lanes(w, "l", vl);
        for (int64_t j = 0; j < np; j++)
            for (int64_t v = 0; v < nv; v++)
                w_line(w, "c%" PRId64 "_%" PRId64 "[l] += a%" PRId64 " * wk[%" PRId64 " + l];", j, v, j, k1 * p->MP + v * vl);
        em_close(w, 2);
    }
    em_close(w, 2);   /* k0, ci */
    for (int64_t v = 0; v < nv; v++) {
        int64_t cnt = channels - v * vl < vl ? channels - v * vl : vl;   /* the layer's channels in this vector */
        if (cnt == vl)
            em_for_lanes(w, "l", vl);
        else
            em_for(w, "l", cnt);
        w_line(w, "const int64_t m = m0 + %" PRId64 " + l;", v * vl);
        for (int64_t j = 0; j < valid; j++) {
            char val[96];
            snprintf(val, sizeof val, has_bias ? "c%" PRId64 "_%" PRId64 "[l] + x2[m]" : "c%" PRId64 "_%" PRId64 "[l]", j, v);
            if (p->ycl)   /* a pixel's channels are one run */
                conv_store(w, ep, DT_FLOAT, val, "(b * %" PRId64 " + p0 + %" PRId64 ") * %" PRId64 " + m", P, j, cg->M);
            else
                conv_store(w, ep, DT_FLOAT, val, "(b * %" PRId64 " + m) * %" PRId64 " + p0 + %" PRId64, cg->M, P, j);
        }
        w_close(w);
    }
    w_close(w);
}

static void cv_block_fn(Writer *w, const void *ctx, int64_t channels, int64_t valid)
{
    const ConvBlockCtx *c = ctx;
    cv_block(w, c->cg, c->plan, c->has_bias, channels, valid, c->ep);
}

/* The channel-dot kernel, for tiny maps (CD_MAX_P pixels) that many input channels
 * reduce: the class and box heads of detectors (UltraFace's 256->6 and 256->12 3x3
 * layers on 4 x 5) and the last layers of small-image CNNs. There the other
 * kernels' vectors run over what is short: the pixels (20, in blocks of 8 or 24) or
 * the output channels (6 or 12 of a vector of 8). Here they run over the input
 * channels, which are many and a multiple of the vector: each output is a dot
 * product of C * K0 * K1 terms. The
 * input is copied channels-last into a zero-padded map in scratch (PH x PW x C),
 * and passes/layout.c stores the constant weights as [M][K0][K1][C] (the node's
 * attribute weight_hwc): for one output channel and kernel row, the weights and
 * each pixel's inputs are then one contiguous run of K1 * C floats (C per tap with
 * dilation). A block of mb output channels x pb pixels keeps one vector of partial
 * sums per pair (named arrays behind KD_LANES, as in cv_block) and loads mb weight
 * and pb input vectors per vector of mb x pb multiply-adds; the lanes are added at
 * the store. Blocks are --tune's (see cd_plan), else 3 x 4. */
#define CD_MAX_P 64    /* output pixels per image: at most this many */
#define CD_MIN_C 64    /* input channels: at least this many (and whole vectors) */
#define CD_MAX_M 128   /* output channels: at most this many */
/* Measured (bench harness, one layer + bias + Relu, batch 3, gcc 12 -O3 -march=native,
 * one core, fastest calls; the kernel before -> channel dots): 256->6 3x3 on 4x5
 * (im2col) 73 -> 31-34 us, 256->12 125-139 -> 59-61, 256->16 (padded plane) 169-191 ->
 * 78-88, 256->24 250-287 -> 113-114, 256->32 326-337 -> 150, 256->64 707-752 -> 326-331,
 * 128->128 on 4x4 (per-row loops) 2570 -> 240-280, 128->64 stride 2 on 8x8 (im2col)
 * 155-177 -> 127; on 64 pixels it ties with im2col (64->64 stride 2 on 16x16: 319-370
 * against 318-367), hence CD_MAX_P. */
#define CD_MAX_ACC 12  /* vector accumulators of a block (of 16 registers on AVX2) */

typedef struct CdPlan {
    int64_t vl, mb, pb; /* lanes; block: output channels x pixels */
    int64_t PH, PW;     /* the padded channels-last map */
} CdPlan;

static int cd_plan(const Graph *g, const Node *n, const ConvGeom *cg, CdPlan *p)
{
    const Value *x = node_in(g, n, 0);
    const Target *t = g->target ? g->target : target_default();
    if (!x || x->dtype != DT_FLOAT || cg->transpose || cg->nsp != 2 || cg->G != 1 || t->vector_bytes < 16)
        return 0;
    p->vl = t->vector_bytes / 4;
    int64_t P = cg->out[0] * cg->out[1];
    if (cg->C < CD_MIN_C || cg->C % p->vl || cg->M > CD_MAX_M || P > CD_MAX_P ||
        (cg->k[0] == 1 && cg->k[1] == 1) || cg->k[1] > UNROLL_TAPS)
        return 0;
    p->PH = (cg->out[0] - 1) * cg->s[0] + (cg->k[0] - 1) * cg->dl[0] + 1;
    p->PW = (cg->out[1] - 1) * cg->s[1] + (cg->k[1] - 1) * cg->dl[1] + 1;
    /* --tune's block: taken as it is when it holds at most CD_MAX_ACC accumulators
     * (a tune file's own), else read as the candidates are written for the other
     * kernels, pixels in floats: mr channels x nr / 8 pixels, when that fits the
     * target's registers (24 accumulators of 32 registers) */
    int64_t mr, nr, most = t->vector_regs >= 32 ? 24 : CD_MAX_ACC;
    conv_block(g, n, &mr, &nr);
    p->mb = 3;
    p->pb = 4;
    if ((n->block_m > 0 || n->block_n > 0) && mr * nr <= CD_MAX_ACC)
        p->mb = mr, p->pb = nr;
    else if ((n->block_m > 0 || n->block_n > 0) && nr >= 8 && mr * (nr / 8) <= most)
        p->mb = mr, p->pb = nr / 8;
    if (p->mb > cg->M)
        p->mb = cg->M;
    if (p->pb > P)
        p->pb = P;
    return 1;
}

static int64_t cd_scratch(const ConvGeom *cg, const CdPlan *p) { return p->PH * p->PW * cg->C * (int64_t)sizeof(float); }

/* Constant float weights still in ONNX's [M][C][K...] order: passes/layout.c may store
 * them for one kernel, once. */
static int weights_relayable(const Graph *g, const Node *n)
{
    const Value *w = node_in(g, n, 1);
    return w && w->dtype == DT_FLOAT && value_is_const(w) && !attr_int(n, "weight_cm", 0) &&
           !attr_int(n, "weight_hwc", 0) && !attr_int(n, "weight_kc", 0);
}

int conv_channel_dots(const Graph *g, const Node *n, int64_t budget)
{
    Diag d = {0};
    ConvGeom cg;
    CdPlan p;
    if (!weights_relayable(g, n) || conv_geom(g, n, 0, &cg, &d) || !cd_plan(g, n, &cg, &p))
        return 0;
    return cd_scratch(&cg, &p) <= budget;
}

/* One block: mb output channels from m0 x np pixels from p0 (valid of them in the
 * image; the others repeat the last). */
static void cd_block(Writer *w, const ConvGeom *cg, const CdPlan *p, int has_bias, int64_t mb, int64_t valid,
                     const Epilogue *ep)
{
    int64_t vl = p->vl, np = p->pb, C = cg->C, OW = cg->out[1], P = cg->out[0] * OW;
    int64_t K0 = cg->k[0], K1 = cg->k[1], run = cg->dl[1] == 1 ? K1 * C : C;
    w_open(w, "%s", "");
    for (int64_t i = 0; i < mb; i++)
        for (int64_t j = 0; j < np; j++)
            w_line(w, "float d%" PRId64 "_%" PRId64 "[%" PRId64 "] = {0};", i, j, vl);
    for (int64_t j = 0; j < np; j++)
        w_line(w, "const int64_t o%" PRId64 " = ((p0 + %" PRId64 ") / %" PRId64 " * %" PRId64 " + (p0 + %" PRId64 ") %% %" PRId64
               " * %" PRId64 ") * %" PRId64 ";", j, j < valid ? j : valid - 1, OW, cg->s[0] * p->PW, j < valid ? j : valid - 1, OW,
               cg->s[1], C);
    em_for(w, "k0", K0);
    /* dilation 1: the kernel row's taps are one run of K1 * C; else one run per tap */
    for (int64_t k1 = 0; k1 < (cg->dl[1] == 1 ? 1 : K1); k1++) {
        w_open(w, "%s", "");
        w_line(w, "const float *restrict xk = xs + (k0 * %" PRId64 " + %" PRId64 ") * %" PRId64 ";", cg->dl[0] * p->PW,
               k1 * cg->dl[1], C);
        w_line(w, "const float *restrict wk = x1 + (m0 * %" PRId64 " + k0 * %" PRId64 " + %" PRId64 ") * %" PRId64 ";", K0 * K1,
               K1, k1, C);
        w_open(w, "for (int64_t c = 0; c < %" PRId64 "; c += %" PRId64 ")", run, vl);
        em_for_lanes(w, "l", vl);
        for (int64_t i = 0; i < mb; i++)
            w_line(w, "const float w%" PRId64 " = wk[%" PRId64 " + c + l];", i, i * K0 * K1 * C);
        for (int64_t i = 0; i < mb; i++)
            for (int64_t j = 0; j < np; j++)
                w_line(w, "d%" PRId64 "_%" PRId64 "[l] += w%" PRId64 " * xk[o%" PRId64 " + c + l];", i, j, i, j);
        em_close(w, 3); /* l, c, the tap's block */
    }
    w_close(w); /* k0 */
    for (int64_t i = 0; i < mb; i++)
        for (int64_t j = 0; j < valid; j++) {
            char val[64];
            w_open(w, "%s", "");
            w_line(w, "float s = 0;");
            em_for(w, "l", vl);
            w_line(w, "s += d%" PRId64 "_%" PRId64 "[l];", i, j);
            w_close(w);
            snprintf(val, sizeof val, has_bias ? "s + x2[m0 + %" PRId64 "]" : "s", i);
            conv_store(w, ep, DT_FLOAT, val, "(b * %" PRId64 " + m0 + %" PRId64 ") * %" PRId64 " + p0 + %" PRId64, cg->M, i, P, j);
            w_close(w);
        }
    w_close(w);
}

static void cd_block_fn(Writer *w, const void *ctx, int64_t channels, int64_t valid)
{
    const ConvBlockCtx *c = ctx;
    cd_block(w, c->cg, c->plan, c->has_bias, channels, valid, c->ep);
}


/* The kernels with scratch, in order of preference: the padded-plane kernel when
 * at most PP_MAX_WASTE of its block pixels fall outside the output (strided layers
 * only when their rows are long or their input channels few); else im2col over
 * whole images (whose copy is as large as the layer's MACs over its output
 * channels); else the channel-vector kernel (stride 1, small maps: LeNet-5's 5x5
 * layer on 10 x 10); else the padded plane with up to PP_FALLBACK_WASTE, which still beats
 * the per-row kernel (mnist-8's 8->16 5x5 layer on 14x14, whose im2col panel of
 * 166 KB exceeds its budget, ran at 16 GFLOP/s per row); else im2col over chunks of
 * output rows (a strided layer whose panel exceeds the budget: ResNet-8's 16->32
 * layer, 100 us per row against ~50 us through a panel). A kernel is taken only if
 * its scratch fits `avail` bytes. passes/scratch.c asks with the node's budget and
 * the emitter again with the scratch it got, and both get the same answer: a kernel
 * preferred to the chosen one did not fit the budget, so it does not fit the
 * smaller scratch either. `stored`: as if the weights were stored for the
 * channel-vector kernel (passes/layout.c asks so; after it, weight_kc says so). */
#define PP_MAX_WASTE 0.25
#define PP_STRIDED_MAX_K 64   /* input channels x taps of a strided layer on short rows that takes the plane first */
#define PP_FALLBACK_WASTE 0.75   /* more, and the per-row kernel (no padding) does as well */
enum { CK_NONE, CK_PLANE, CK_IM2COL, CK_CHANVEC, CK_CHANDOT };

static int conv_choose(const Graph *g, const Node *n, const ConvGeom *cg, int64_t avail, int stored, int64_t *bytes)
{
    PpGeom p = {0};
    IcGeom ic = {0};
    int64_t nt = conv_nt(g, cg);
    CvPlan cv = {0};
    *bytes = 0;
    if (attr_int(n, "weight_hwc", 0)) { /* only the channel-dot kernel reads weights stored so */
        CdPlan cd;
        if (!cd_plan(g, n, cg, &cd) || cd_scratch(cg, &cd) > avail)
            return CK_NONE;
        return *bytes = cd_scratch(cg, &cd), CK_CHANDOT;
    }
    if (attr_int(n, "weight_kc", 0) > 0) { /* and only the channel-vector kernel these */
        if (!cv_plan(g, n, cg, &cv) || cv_scratch(cg, &cv) > avail)
            return CK_NONE;
        return *bytes = cv_scratch(cg, &cv), CK_CHANVEC;
    }
    int pk = pp_plan(g, n, cg, &p), ik = ic_plan(g, n, cg, avail, &ic), ck = cv_plan(g, n, cg, &cv);
    cv.ws |= stored;   /* as the layer would be with its weights stored for the kernel */
    int64_t cb = ck ? cv_scratch(cg, &cv) : 0;
    int64_t pb = pk ? nt * ((cg->C / cg->G) * p.CS + p.slack) * (int64_t)sizeof(float) : 0;
    int64_t ib = ik ? nt * ic.rows * ic.pp * (int64_t)sizeof(float) : 0;
    /* strided layers: the phase planes first when the rows are long or the input
     * channels few, else im2col over whole images (resnet8's 32->64 3x3 stride-2
     * layer on 8x8 outputs: 47 us through im2col, 54 us through phase planes) */
    int pfirst = (cg->s[0] == 1 && cg->s[1] == 1) || cg->out[1] >= 16 ||
                 (cg->C / cg->G) * cg->k[0] * cg->k[1] <= PP_STRIDED_MAX_K;
    *bytes = 0;
    if (pk && pfirst && pp_waste(cg, &p) <= PP_MAX_WASTE && pb <= avail)
        return *bytes = pb, CK_PLANE;
    if (ik && ic.cr == cg->out[0])   /* whole images */
        return *bytes = ib, CK_IM2COL;
    if (ck && cb <= avail && cv_full(cg, &cv))
        return *bytes = cb, CK_CHANVEC;
    if (pk && pp_waste(cg, &p) <= PP_FALLBACK_WASTE && pb <= avail)
        return *bytes = pb, CK_PLANE;
    if (ik)
        return *bytes = ib, CK_IM2COL;
    if (ck && cb <= avail && 2 * cg->M > cv.MP)   /* less than half of the weights padding */
        return *bytes = cb, CK_CHANVEC;
    return CK_NONE;
}

/* The scratch for the chosen kernel within the budget. The node's dtype and shape
 * decide; a node no kernel with scratch takes gets none (the per-row kernel, or the
 * channel-vector kernel over weights stored for it and an unpadded input). */
static int64_t conv_scratch(const Graph *g, const Node *n, int64_t budget)
{
    Diag d = {0};
    ConvGeom cg;
    int64_t bytes;
    if (conv_geom(g, n, 0, &cg, &d))
        return 0;
    int64_t dw = conv_dw_scratch(g, n, &cg, budget);
    if (dw > 0)
        return dw;
    conv_choose(g, n, &cg, budget, 0, &bytes);
    return bytes;
}

/* The kernel node n's emit function takes, from the scratch the node got (none:
 * only a kernel that needs none). */
static int conv_emitted_kernel(const Emitter *e, const Node *n, const ConvGeom *cg)
{
    const Value *t = n->noutputs == 2 ? node_out(e->g, n, 1) : NULL;
    int64_t bytes;
    if (t && t->dtype != DT_FLOAT)
        return CK_NONE;
    return conv_choose(e->g, n, cg, t ? value_numel(t) * (int64_t)sizeof(float) : 0, 0, &bytes);
}

/* --tune may choose this node's register block when a blocked kernel takes it */
static int conv_tunable(const Graph *g, const Node *n)
{
    int dw = conv_dw_tunable(g, n);
    Diag d = {0};
    ConvGeom cg;
    int64_t bytes;
    if (dw >= 0)
        return dw;
    return !conv_geom(g, n, 0, &cg, &d) && conv_choose(g, n, &cg, INT64_MAX, 0, &bytes) != CK_NONE;
}

int conv_channel_vectors(const Graph *g, const Node *n, int64_t budget, int64_t *mp)
{
    Diag d = {0};
    ConvGeom cg;
    CvPlan p;
    int64_t bytes;
    if (!weights_relayable(g, n) || conv_geom(g, n, 0, &cg, &d) || conv_dw_tunable(g, n) >= 0 || !cv_plan(g, n, &cg, &p))
        return 0;
    *mp = p.MP;
    return conv_choose(g, n, &cg, budget, 1, &bytes) == CK_CHANVEC;
}

int conv_epilogue_index_free(const Graph *g, const Node *n)
{
    Epilogue ep;
    Diag d = {0};
    if (epilogue_read(g, n, 3, &ep, &d))
        return 0;
    for (int i = 0; i < ep.n; i++)
        if (ep.s[i].operand >= 0 && !ep.s[i].scalar)
            return 0;
    return 1;
}

int conv_channel_vectors_cl(const Graph *g, const Node *n, int64_t budget, int64_t *mp)
{
    Diag d = {0};
    ConvGeom cg;
    CvPlan p;
    const Value *w = node_in(g, n, 1);
    if (!w || !value_is_const(w) || attr_int(n, "weight_cm", 0) || attr_int(n, "weight_hwc", 0) ||
        conv_geom(g, n, 0, &cg, &d) || conv_dw_tunable(g, n) >= 0 || !cv_plan(g, n, &cg, &p) || !cv_full(&cg, &p) ||
        !conv_epilogue_index_free(g, n))
        return 0;
    p.ws = 1;
    *mp = p.MP;
    return cv_scratch(&cg, &p) <= budget;
}

/* Open a padded-plane block's loops over input channels and kernel rows (closed with
 * em_close(w, 2)): xk, the plane row the block's first output row reads at kernel row
 * k0, and wk, channel m0's weights of that row (ys, x1, oy0, ox0, m0 in scope). */
static void pp_taps_open(Writer *w, const ConvGeom *cg, const PpGeom *p)
{
    int64_t Cg = cg->C / cg->G, K0 = cg->k[0], K1 = cg->k[1], KSZ = K0 * K1;
    em_for(w, "ci", Cg);
    w_line(w, "const float *restrict xr = ys + ci * %" PRId64 " + %s * %" PRId64 " + ox0;", p->CS,
           p->NB > 1 ? "(oy0 - by0)" : "oy0", p->PW);
    w_line(w, "const float *restrict wc = x1 + (m0 * %" PRId64 " + ci) * %" PRId64 ";", Cg, KSZ);
    em_for(w, "k0", K0);
    if (p->S0 == 1)
        w_line(w, "const float *restrict xk = xr + k0 * %" PRId64 ";", cg->dl[0] * p->PW);
    else   /* input row (oy * S0 + k0 * dl): phase row k0 * dl % S0, plane row oy + k0 * dl / S0 */
        w_line(w, "const float *restrict xk = xr + k0 * %" PRId64 " %% %" PRId64 " * %" PRId64 " + k0 * %" PRId64
               " / %" PRId64 " * %" PRId64 ";", cg->dl[0], p->S0, p->S1 * p->PS, cg->dl[0], p->S0, p->PW);
    w_line(w, "const float *restrict wk = wc + k0 * %" PRId64 ";", K1);
}

void conv_vec_acc_init(Writer *w, int64_t mb, int64_t nq, int64_t lv, int has_bias)
{
    for (int64_t mm = 0; mm < mb; mm++)
        for (int64_t q = 0; q < nq; q++)
            w_line(w, "float c%" PRId64 "_%" PRId64 "[%" PRId64 "];", mm, q, lv);
    em_for_lanes(w, "l", lv);
    for (int64_t mm = 0; mm < mb; mm++)
        for (int64_t q = 0; q < nq; q++) {
            if (has_bias)
                w_line(w, "c%" PRId64 "_%" PRId64 "[l] = x2[m0 + %" PRId64 "];", mm, q, mm);
            else
                w_line(w, "c%" PRId64 "_%" PRId64 "[l] = 0;", mm, q);
        }
    w_close(w);
}

void conv_vec_taps(Writer *w, int64_t mb, int64_t wstride, int64_t K1, int64_t dl1, int64_t S1, int64_t PS, int64_t rs,
                   int64_t nq, int64_t vr, int64_t lv)
{
    for (int64_t kl = 0; kl < K1; kl++) {
        int64_t e1 = kl * dl1, off = e1 % S1 * PS + e1 / S1;
        w_open(w, "%s", "");
        for (int64_t mm = 0; mm < mb; mm++)
            w_line(w, "const float w%" PRId64 " = wk[%" PRId64 "];", mm, mm * wstride + kl);
        em_for_lanes(w, "l", lv);
        for (int64_t mm = 0; mm < mb; mm++)
            for (int64_t q = 0; q < nq; q++)
                w_line(w, "c%" PRId64 "_%" PRId64 "[l] += w%" PRId64 " * xk[%" PRId64 " + l];", mm, q, mm,
                       q / vr * rs + q % vr * lv + off);
        em_close(w, 2);
    }
}

/* pp_block with one named 8-float array per output vector (c{mm}_{q}[8], q the block's
 * q-th vector: row q / (VW / 8), columns from q % (VW / 8) * 8), the form gcc keeps in
 * registers (gemm.c's blocks), and every loop over the lanes (per tap, the bias, the
 * stores with the epilogue) behind KD_LANES.
 * Same products summed in the same order as pp_block. gcc 12 -O3 -march=native on
 * the AMD EPYC (AVX2), mnist-8's 8->16 5x5 layer on 14x14 over --tune's candidates:
 * acc[mm][r][v] 35-41 us at best (6x16 or 8x16), 122 and 261 us in 4x16 and 2x16 (the
 * lane loops unrolled early, then left scalar); this form 24-28 us at best (8x8, 2x32,
 * 3x32), every candidate within 2.5x of the best. */
static void pp_block_vec(Writer *w, const ConvGeom *cg, const PpGeom *p, int has_bias, int64_t mb, const Epilogue *ep)
{
    int64_t Cg = cg->C / cg->G, K0 = cg->k[0], K1 = cg->k[1], KSZ = K0 * K1;
    int64_t OH = cg->out[0], OW = cg->out[1], OSZ = OH * OW, R = p->R, VW = p->VW, lv = p->lv, vr = VW / lv, nq = R * vr;
    w_open(w, "for (int64_t bk = 0; bk < %" PRId64 "; ++bk)", p->NYB * p->NXB);
    w_line(w, "const int64_t oy0 = %sbk / %" PRId64 " * %" PRId64 ", ox0 = bk %% %" PRId64 " * %" PRId64 ";",
           p->NB > 1 ? "by0 + " : "", p->NXB, R, p->NXB, VW);
    conv_vec_acc_init(w, mb, nq, lv, has_bias);
    pp_taps_open(w, cg, p);
    conv_vec_taps(w, mb, Cg * KSZ, K1, cg->dl[1], p->S1, p->PS, p->PW, nq, vr, lv);
    em_close(w, 2);   /* k0, ci */
    int partial = p->NB * p->NYB * R != OH || p->NXB * VW != OW;
    if (partial) {
        w_line(w, "const int64_t nrow = %" PRId64 " - oy0 < %" PRId64 " ? %" PRId64 " - oy0 : %" PRId64 ";", OH, R, OH, R);
        w_line(w, "const int64_t nv = %" PRId64 " - ox0 < %" PRId64 " ? %" PRId64 " - ox0 : %" PRId64 ";", OW, VW, OW, VW);
    }
    for (int64_t mm = 0; mm < mb; mm++)
        for (int64_t q = 0; q < nq; q++) {
            int64_t r = q / vr, v0 = q % vr * lv;
            char val[48];
            snprintf(val, sizeof val, "c%" PRId64 "_%" PRId64 "[l]", mm, q);
            if (partial) {
                w_open(w, "if (%" PRId64 " < nrow && nv >= %" PRId64 ")", r, v0 + lv);
                em_for_lanes(w, "l", lv);
            } else
                em_for_lanes(w, "l", lv);
            conv_store(w, ep, DT_FLOAT, val, "(b * %" PRId64 " + m0 + %" PRId64 ") * %" PRId64 " + (oy0 + %" PRId64 ") * %" PRId64
                       " + ox0 + %" PRId64 " + l", cg->M, mm, OSZ, r, OW, v0);
            w_close(w);
            if (partial) {
                w_close(w);
                w_open(w, "else if (%" PRId64 " < nrow)", r);
                w_open(w, "for (int64_t l = 0; l < nv - %" PRId64 "; ++l)", v0);
                conv_store(w, ep, DT_FLOAT, val, "(b * %" PRId64 " + m0 + %" PRId64 ") * %" PRId64 " + (oy0 + %" PRId64 ") * %" PRId64
                           " + ox0 + %" PRId64 " + l", cg->M, mm, OSZ, r, OW, v0);
                em_close(w, 2);
            }
        }
    w_close(w);   /* bk */
}

static void pp_block(Writer *w, const ConvGeom *cg, const PpGeom *p, int has_bias, int64_t mb, const Epilogue *ep)
{
    if (p->VW % 8 == 0) {
        pp_block_vec(w, cg, p, has_bias, mb, ep);
        return;
    }
    int64_t Cg = cg->C / cg->G, K0 = cg->k[0], K1 = cg->k[1], KSZ = K0 * K1;
    int64_t OH = cg->out[0], OW = cg->out[1], OSZ = OH * OW, R = p->R, VW = p->VW;
    w_open(w, "for (int64_t bk = 0; bk < %" PRId64 "; ++bk)", p->NYB * p->NXB);
    w_line(w, "const int64_t oy0 = %sbk / %" PRId64 " * %" PRId64 ", ox0 = bk %% %" PRId64 " * %" PRId64 ";",
           p->NB > 1 ? "by0 + " : "", p->NXB, R, p->NXB, VW);
    w_line(w, "float acc[%" PRId64 "][%" PRId64 "][%" PRId64 "];", mb, R, VW);
    em_for(w, "mm", mb);
    em_for(w, "r", R);
    em_for(w, "v", VW);
    w_line(w, has_bias ? "acc[mm][r][v] = x2[m0 + mm];" : "acc[mm][r][v] = 0;");
    em_close(w, 3);
    pp_taps_open(w, cg, p);
    for (int64_t kl = 0; kl < K1; kl++) {
        int64_t e1 = kl * cg->dl[1], off = e1 % p->S1 * p->PS + e1 / p->S1;
        em_for(w, "mm", mb);
        w_line(w, "const float wv = wk[mm * %" PRId64 " + %" PRId64 "];", Cg * KSZ, kl);
        em_for(w, "r", R);
        em_for(w, "v", VW);
        w_line(w, "acc[mm][r][v] += wv * xk[r * %" PRId64 " + v + %" PRId64 "];", p->PW, off);
        em_close(w, 3);
    }
    em_close(w, 2);   /* k0, ci */
    /* the stores: whole rows of VW pixels, or the block's part inside the output */
    int partial = p->NB * p->NYB * R != OH || p->NXB * VW != OW;
    char idx[160];
    snprintf(idx, sizeof idx, "(b * %" PRId64 " + m0 + mm) * %" PRId64 " + (oy0 + r) * %" PRId64 " + ox0 + v", cg->M, OSZ, OW);
    if (partial) {
        w_line(w, "const int64_t nrow = %" PRId64 " - oy0 < %" PRId64 " ? %" PRId64 " - oy0 : %" PRId64 ";", OH, R, OH, R);
        w_line(w, "const int64_t nv = %" PRId64 " - ox0 < %" PRId64 " ? %" PRId64 " - ox0 : %" PRId64 ";", OW, VW, OW, VW);
        w_open(w, "if (nrow == %" PRId64 " && nv == %" PRId64 ")", R, VW);
    }
    em_for(w, "mm", mb);
    em_for(w, "r", R);
    em_for(w, "v", VW);
    conv_store(w, ep, DT_FLOAT, "acc[mm][r][v]", "%s", idx);
    em_close(w, 3);
    if (partial) {
        w_close(w);
        w_open(w, "else");
        em_for(w, "mm", mb);
        w_open(w, "for (int64_t r = 0; r < nrow; ++r)");
        w_open(w, "for (int64_t v = 0; v < nv; ++v)");
        conv_store(w, ep, DT_FLOAT, "acc[mm][r][v]", "%s", idx);
        em_close(w, 4);
    }
    w_close(w);   /* bk */
}

/* im2col + register-blocked GEMM (float32, 2-D, any stride, padding, dilation
 * and group) for layers the padded-plane kernel does not take (strided ones).
 * Per image and group, the scratch holds col[Cg * K0 * K1][PP], where column
 * q = oy * OW + ox holds the input value each tap reads for that output pixel (0
 * in the padding) and PP is the pixel count rounded up to NR. The product
 * W[Mg][Cg * K0 * K1] x col runs in blocks of MR channels by NR pixels with
 * the accumulators in registers. Strided layers are small (their outputs are), so
 * the copy is cheap; their rows are short, which is what made the per-row blocks
 * slow: a 16->32 3x3 stride-2 layer on 14x14 took 30% of a CNN's time for 10% of
 * its MACs before. */
static int ic_plan(const Graph *g, const Node *n, const ConvGeom *cg, int64_t avail, IcGeom *ic)
{
    const Value *x = node_in(g, n, 0);
    conv_block(g, n, &ic->mr, &ic->nr);
    ic->lv = conv_lanes(g, ic->nr);
    if (!x || x->dtype != DT_FLOAT || cg->transpose || cg->nsp != 2 || cg->M / cg->G < PP_MIN_M)
        return 0;
    if (cg->k[1] > UNROLL_TAPS || (cg->k[0] == 1 && cg->k[1] == 1 && cg->s[0] == 1 && cg->s[1] == 1))
        return 0;
    int64_t OH = cg->out[0], OW = cg->out[1], P = OH * OW, nt = conv_nt(g, cg), nr = ic->nr;
    ic->rows = (cg->C / cg->G) * cg->k[0] * cg->k[1];
    /* small images of a batch: several in one panel, so the blocks are not mostly
     * the padding up to the block's pixels */
    int64_t per = (cg->N + nt - 1) / nt, ib = (IC_MIN_PIXELS + P - 1) / P;
    if (ib > per)
        ib = per;
    if (ib > 1 && cg->G == 1) {
        int64_t pp = (ib * P + nr - 1) / nr * nr;
        if (nt * ic->rows * pp * (int64_t)sizeof(float) <= avail) {
            ic->ib = ib;
            ic->cr = OH;
            ic->pp = pp;
            return 1;
        }
    }
    ic->ib = 1;
    /* the most output rows whose panel fits; a chunk of part of the image must hold
     * two blocks of pixels at least */
    for (int64_t cr = OH; cr >= 1; cr--) {
        int64_t pp = (cr * OW + nr - 1) / nr * nr;
        if (cr < OH && cr * OW < 2 * nr)
            break;
        if (nt * ic->rows * pp * (int64_t)sizeof(float) <= avail) {
            ic->cr = cr;
            ic->pp = pp;
            return 1;
        }
    }
    return 0;
}

/* One chunk's product, a block of mb channels from m0 at a time: the panel's
 * columns are the pixels of output rows oc .. of image b (pc of them), or of images
 * b0 .. b0 + nb - 1 (pc = nb * P); columns past pc are zeros and not stored. */
/* ic_block in the form of pp_block_vec: one named 8-float array per output vector,
 * every lane loop behind KD_LANES, stores in whole vectors where the block's columns
 * are all inside the output. Same sums in the same order. Best --tune block, gcc 12
 * on the AMD EPYC, against acc[mm][v]: ResNet-8's 16->32 3x3 stride-2 layer 62 -> 41
 * us, its 32->64 one 51 -> 46, DS-CNN's 1->64 10x4 stride-2 first layer 15.3 -> 10.4. */
static void ic_block_vec(Writer *w, const ConvGeom *cg, const IcGeom *ic, int has_bias, int64_t mb)
{
    int64_t P = cg->out[0] * cg->out[1], OW = cg->out[1], nr = ic->nr, lv = ic->lv, nq = nr / lv;
    int whole = ic->ib == 1 && ic->cr == cg->out[0];
    if (whole)
        w_open(w, "for (int64_t q0 = 0; q0 < %" PRId64 "; q0 += %" PRId64 ")", ic->pp, nr);
    else
        w_open(w, "for (int64_t q0 = 0; q0 < pc; q0 += %" PRId64 ")", nr);
    conv_vec_acc_init(w, mb, nq, lv, has_bias);
    em_for(w, "k", ic->rows);
    w_line(w, "const float *restrict cr = ys + k * %" PRId64 " + q0;", ic->pp);
    for (int64_t mm = 0; mm < mb; mm++)
        w_line(w, "const float w%" PRId64 " = x1[(m0 + %" PRId64 ") * %" PRId64 " + k];", mm, mm, ic->rows);
    em_for_lanes(w, "l", lv);
    for (int64_t mm = 0; mm < mb; mm++)
        for (int64_t q = 0; q < nq; q++)
            w_line(w, "c%" PRId64 "_%" PRId64 "[l] += w%" PRId64 " * cr[%" PRId64 " + l];", mm, q, mm, q * lv);
    em_close(w, 2);
    /* the stores: the columns below `lim` (the image's pixels, or the chunk's: pc) */
    char lim[32];
    snprintf(lim, sizeof lim, whole ? "%" PRId64 : "pc", P);
    int guard = !whole || P % nr;
    for (int64_t mm = 0; mm < mb; mm++)
        for (int64_t q = 0; q < nq; q++) {
            char dst[160];
            if (ic->ib > 1)
                snprintf(dst, sizeof dst, "y0[((b0 + j) * %" PRId64 " + m0 + %" PRId64 ") * %" PRId64 " + p]", cg->M, mm, P);
            else if (whole)
                snprintf(dst, sizeof dst, "y0[(b * %" PRId64 " + m0 + %" PRId64 ") * %" PRId64 " + q0 + %" PRId64 " + l]", cg->M,
                         mm, P, q * lv);
            else
                snprintf(dst, sizeof dst, "y0[(b * %" PRId64 " + m0 + %" PRId64 ") * %" PRId64 " + oc * %" PRId64 " + q0 + %" PRId64
                         " + l]", cg->M, mm, P, OW, q * lv);
            if (ic->ib > 1) {   /* each column's image and pixel */
                w_open(w, "for (int64_t l = 0; l < %" PRId64 " && q0 + %" PRId64 " + l < pc; ++l)", lv, q * lv);
                w_line(w, "const int64_t j = (q0 + %" PRId64 " + l) / %" PRId64 ", p = q0 + %" PRId64 " + l - j * %" PRId64 ";",
                       q * lv, P, q * lv, P);
                w_line(w, "%s = c%" PRId64 "_%" PRId64 "[l];", dst, mm, q);
                w_close(w);
                continue;
            }
            if (guard) {
                w_open(w, "if (q0 + %" PRId64 " <= %s)", q * lv + lv, lim);
                em_for_lanes(w, "l", lv);
                w_line(w, "%s = c%" PRId64 "_%" PRId64 "[l];", dst, mm, q);
                em_close(w, 2);
                w_open(w, "else");
                w_open(w, "for (int64_t l = 0; q0 + %" PRId64 " + l < %s; ++l)", q * lv, lim);
            } else
                em_for_lanes(w, "l", lv);
            w_line(w, "%s = c%" PRId64 "_%" PRId64 "[l];", dst, mm, q);
            em_close(w, guard ? 2 : 1);
        }
    w_close(w);   /* q0 */
}

static void ic_block(Writer *w, const ConvGeom *cg, const IcGeom *ic, int has_bias, int64_t mb)
{
    if (ic->nr % 8 == 0) {
        ic_block_vec(w, cg, ic, has_bias, mb);
        return;
    }
    int64_t P = cg->out[0] * cg->out[1], OW = cg->out[1], nr = ic->nr;
    int whole = ic->ib == 1 && ic->cr == cg->out[0];
    if (whole)
        w_open(w, "for (int64_t q0 = 0; q0 < %" PRId64 "; q0 += %" PRId64 ")", ic->pp, nr);
    else
        w_open(w, "for (int64_t q0 = 0; q0 < pc; q0 += %" PRId64 ")", nr);
    w_line(w, "float acc[%" PRId64 "][%" PRId64 "];", mb, nr);
    em_for(w, "mm", mb);
    em_for(w, "v", nr);
    w_line(w, has_bias ? "acc[mm][v] = x2[m0 + mm];" : "acc[mm][v] = 0;");
    em_close(w, 2);
    em_for(w, "k", ic->rows);
    w_line(w, "const float *restrict cr = ys + k * %" PRId64 " + q0;", ic->pp);
    em_for(w, "mm", mb);
    w_line(w, "const float wv = x1[(m0 + mm) * %" PRId64 " + k];", ic->rows);
    em_for(w, "v", nr);
    w_line(w, "acc[mm][v] += wv * cr[v];");
    em_close(w, 3);
    em_for(w, "v", nr);
    if (!whole)
        w_line(w, "if (q0 + v >= pc) continue;");
    else if (P % nr)
        w_line(w, "if (q0 + v >= %" PRId64 ") continue;", P);
    if (ic->ib > 1)
        w_line(w, "const int64_t j = (q0 + v) / %" PRId64 ", p = q0 + v - j * %" PRId64 ";", P, P);
    em_for(w, "mm", mb);
    if (ic->ib > 1)
        w_line(w, "y0[((b0 + j) * %" PRId64 " + m0 + mm) * %" PRId64 " + p] = acc[mm][v];", cg->M, P);
    else if (whole)
        w_line(w, "y0[(b * %" PRId64 " + m0 + mm) * %" PRId64 " + q0 + v] = acc[mm][v];", cg->M, P);
    else
        w_line(w, "y0[(b * %" PRId64 " + m0 + mm) * %" PRId64 " + oc * %" PRId64 " + q0 + v] = acc[mm][v];", cg->M, P, OW);
    em_close(w, 2);
    w_close(w);   /* q0 */
}

/* The panel's columns col0 + (oy - oy0) * OW + ox for output rows oy0 <= oy < oy1
 * of image b (C expressions). */
static void ic_fill(Writer *w, const ConvGeom *cg, const IcGeom *ic, const char *oy0, const char *oy1, const char *col0)
{
    int64_t Cg = cg->C / cg->G, IH = cg->in[0], IW = cg->in[1], OW = cg->out[1], K0 = cg->k[0], K1 = cg->k[1];
    int64_t pp = ic->pp;
    em_for(w, "ci", Cg);
    w_line(w, "const float *restrict xc = x0 + (b * %" PRId64 " + g * %" PRId64 " + ci) * %" PRId64 ";", cg->C, Cg, IH * IW);
    em_for(w, "k0", K0);
    w_line(w, "float *restrict cc = ys + (ci * %" PRId64 " + k0) * %" PRId64 " + %s;", K0, K1 * pp, col0);
    w_open(w, "for (int64_t oy = %s; oy < %s; ++oy)", oy0, oy1);
    w_line(w, "const int64_t u = oy * %" PRId64 " + k0 * %" PRId64 " - %" PRId64 ";", cg->s[0], cg->dl[0], cg->pb[0]);
    w_open(w, "if (u < 0 || u >= %" PRId64 ")", IH);
    em_for(w, "kl", K1);
    em_for(w, "ox", OW);
    w_line(w, "cc[kl * %" PRId64 " + (oy - %s) * %" PRId64 " + ox] = 0;", pp, oy0, OW);
    em_close(w, 2);
    w_line(w, "continue;");
    w_close(w);
    w_line(w, "const float *restrict xr = xc + u * %" PRId64 ";", IW);
    for (int64_t kl = 0; kl < K1; kl++) {
        int64_t lo, hi, off = kl * cg->dl[1] - cg->pb[1];
        conv_tap_range(cg, 1, kl, &lo, &hi);
        if (hi < lo)
            hi = lo;
        w_line(w, "float *restrict c%" PRId64 " = cc + %" PRId64 " + (oy - %s) * %" PRId64 ";", kl, kl * pp, oy0, OW);
        if (lo > 0) {
            em_for(w, "ox", lo);
            w_line(w, "c%" PRId64 "[ox] = 0;", kl);
            w_close(w);
        }
        if (hi > lo) {
            w_open(w, "for (int64_t ox = %" PRId64 "; ox < %" PRId64 "; ++ox)", lo, hi);
            w_line(w, "c%" PRId64 "[ox] = xr[ox * %" PRId64 " %s %" PRId64 "];", kl, cg->s[1], off < 0 ? "-" : "+", off < 0 ? -off : off);
            w_close(w);
        } else {
            w_line(w, "(void)xr;");
        }
        if (hi < OW) {
            w_open(w, "for (int64_t ox = %" PRId64 "; ox < %" PRId64 "; ++ox)", hi, OW);
            w_line(w, "c%" PRId64 "[ox] = 0;", kl);
            w_close(w);
        }
    }
    em_close(w, 3);   /* oy, k0, ci */
}

static int emit_conv_im2col(Emitter *e, const Node *n, const ConvGeom *cg, const Epilogue *ep)
{
    IcGeom ic;
    const Value *t = n->noutputs == 2 ? node_out(e->g, n, 1) : NULL;
    if (!t || conv_emitted_kernel(e, n, cg) != CK_IM2COL ||
        !ic_plan(e->g, n, cg, value_numel(t) * (int64_t)sizeof(float), &ic))
        return 0;
    int64_t nt = conv_nt(e->g, cg);
    Writer *w = e->w;
    int has_bias = node_in(e->g, n, 2) != NULL;
    int64_t Mg = cg->M / cg->G, OH = cg->out[0], OW = cg->out[1], P = OH * OW, pp = ic.pp;
    int64_t mr = ic.mr < Mg ? ic.mr : Mg;
    int whole = ic.ib == 1 && ic.cr == OH;
    char oh[32], col[64];
    snprintf(oh, sizeof oh, "%" PRId64, OH);
    w_line(w, "/* im2col: blocks of %" PRId64 " channels x %" PRId64 " pixels over a panel of %" PRId64 " x %" PRId64
           ", %" PRId64 " image(s) or %" PRId64 " output row(s) at a time */", mr, ic.nr, ic.rows, pp, ic.ib, ic.cr);
    conv_batch_open(e, nt, ic.rows * pp);
    if (ic.ib > 1) {
        /* several images per panel (one group) */
        w_open(w, "for (int64_t b0 = th * %" PRId64 " / %" PRId64 "; b0 < (th + 1) * %" PRId64 " / %" PRId64 "; b0 += %" PRId64 ")",
               cg->N, nt, cg->N, nt, ic.ib);
        w_line(w, "const int64_t hi = (th + 1) * %" PRId64 " / %" PRId64 ", nb = hi - b0 < %" PRId64 " ? hi - b0 : %" PRId64
               ", pc = nb * %" PRId64 ";", cg->N, nt, ic.ib, ic.ib, P);
        w_line(w, "const int64_t g = 0;");
        w_open(w, "for (int64_t j = 0; j < nb; ++j)");
        w_line(w, "const int64_t b = b0 + j;");
        snprintf(col, sizeof col, "j * %" PRId64, P);
        ic_fill(w, cg, &ic, "0", oh, col);
        w_close(w);
    } else {
        conv_batch_images(w, nt, cg->N);
        em_for(w, "g", cg->G);
        if (whole) {
            w_open(w, "%s", "");
            ic_fill(w, cg, &ic, "0", oh, "0");
        } else {
            w_open(w, "for (int64_t oc = 0; oc < %" PRId64 "; oc += %" PRId64 ")", OH, ic.cr);
            w_line(w, "const int64_t pc = (%" PRId64 " - oc < %" PRId64 " ? %" PRId64 " - oc : %" PRId64 ") * %" PRId64 ";",
                   OH, ic.cr, OH, ic.cr, OW);
            snprintf(col, sizeof col, "oc + pc / %" PRId64, OW);
            ic_fill(w, cg, &ic, "oc", col, "0");
        }
    }
    /* zeros in the columns past the chunk's pixels, up to the block */
    if (whole && pp > P) {
        em_for(w, "k", ic.rows);
        w_open(w, "for (int64_t q = %" PRId64 "; q < %" PRId64 "; ++q)", P, pp);
        w_line(w, "ys[k * %" PRId64 " + q] = 0;", pp);
        em_close(w, 2);
    } else if (!whole) {
        em_for(w, "k", ic.rows);
        w_open(w, "for (int64_t q = pc; q < (pc + %" PRId64 ") / %" PRId64 " * %" PRId64 "; ++q)", ic.nr - 1, ic.nr, ic.nr);
        w_line(w, "ys[k * %" PRId64 " + q] = 0;", pp);
        em_close(w, 2);
    }
    int64_t nfull = Mg / mr, rem = Mg % mr;
    w_open(w, "for (int64_t mo = 0; mo < %" PRId64 "; mo += %" PRId64 ")", nfull * mr, mr);
    w_line(w, "const int64_t m0 = g * %" PRId64 " + mo;", Mg);
    em_omp_for(e, nt > 1 ? 0 : pp * mr * ic.rows, 1);   /* the q0 loop: each block its own outputs */
    ic_block(w, cg, &ic, has_bias, mr);
    if (whole)
        conv_epilogue_planes(w, ep, cg->M, P, mr);
    w_close(w);
    if (rem) {
        w_open(w, "%s", "");
        w_line(w, "const int64_t m0 = g * %" PRId64 " + %" PRId64 ";", Mg, nfull * mr);
        em_omp_for(e, nt > 1 ? 0 : pp * rem * ic.rows, 1);
        ic_block(w, cg, &ic, has_bias, rem);
        if (whole)
            conv_epilogue_planes(w, ep, cg->M, P, rem);
        w_close(w);
    }
    if (!whole && ep && ep->n) {
        /* the epilogue once the chunk's images, or all chunks of the image, are made */
        if (ic.ib > 1) {
            w_open(w, "for (int64_t j = 0; j < nb; ++j)");
            w_line(w, "const int64_t b = b0 + j, m0 = 0;");
            conv_epilogue_planes(w, ep, cg->M, P, Mg);
            w_close(w);
        } else {
            w_close(w);   /* the chunks */
            w_open(w, "%s", "");
            w_line(w, "const int64_t m0 = g * %" PRId64 ";", Mg);
            conv_epilogue_planes(w, ep, cg->M, P, Mg);
        }
    }
    w_close(w);   /* the chunk, or the epilogue's block */
    em_close(w, ic.ib > 1 ? 1 : 3);   /* th; or g, b, th */
    return 1;
}

static int emit_conv_chanvec(Emitter *e, const Node *n, const ConvGeom *cg, const Epilogue *ep)
{
    CvPlan p;
    if (conv_emitted_kernel(e, n, cg) != CK_CHANVEC || !cv_plan(e->g, n, cg, &p))
        return 0;
    Writer *w = e->w;
    int has_bias = node_in(e->g, n, 2) != NULL;
    int64_t IH = cg->in[0], IW = cg->in[1], pt = cg->pb[0], pl = cg->pb[1];
    w_line(w, "/* channel vectors: blocks of %" PRId64 " pixels x %" PRId64 " channels, vectors over the output channels, "
           "weights %s [%" PRId64 "][%" PRId64 "]%s */", p.np, p.nc, p.ws ? "stored as" : "packed as", p.K, p.MP,
           p.plane ? ", padded planes" : "");
    if (p.ws) {
        w_line(w, "const float *restrict wp = x1;");
    } else {
        w_line(w, "float *restrict wp = y1;");
        em_for(w, "k", p.K);
        em_for(w, "m", cg->M);
        w_line(w, "wp[k * %" PRId64 " + m] = x1[m * %" PRId64 " + k];", p.MP, p.K);
        em_close(w, 2);
        if (p.MP > cg->M) {
            em_for(w, "k", p.K);
            w_open(w, "for (int64_t m = %" PRId64 "; m < %" PRId64 "; ++m)", cg->M, p.MP);
            w_line(w, "wp[k * %" PRId64 " + m] = 0;", p.MP);
            em_close(w, 2);
        }
    }
    em_for(w, "b", cg->N);
    if (p.plane) {
        int64_t clo = pl < 0 ? 0 : pl, chi = IW + pl < p.PW ? IW + pl : p.PW;
        if (chi < clo)
            chi = clo;
        w_line(w, "float *restrict ys = y1 + %" PRId64 ";", p.ws ? 0 : p.K * p.MP);
        em_for(w, "ci", cg->C);
        w_line(w, "const float *restrict xc = x0 + (b * %" PRId64 " + ci) * %" PRId64 ";", cg->C, IH * IW);
        em_for(w, "r", p.PH);
        w_line(w, "const int64_t u = r - %" PRId64 ";", pt);
        w_line(w, "float *restrict pr = ys + ci * %" PRId64 " + r * %" PRId64 ";", p.PS, p.PW);
        conv_pad_row(w, IH, IW, p.PW, clo, chi, 1, -pl);
        em_close(w, 2);   /* r, ci */
        w_line(w, "const float *restrict xb = ys;");
    } else {
        w_line(w, "const float *restrict xb = x0 + b * %" PRId64 ";", cg->C * IH * IW);
    }
    ConvBlockCtx ctx = {cg, &p, has_bias, ep};
    conv_block_loops(w, cg->M, p.nc, cg->out[0] * cg->out[1], p.np, cv_block_fn, &ctx);
    w_close(w);   /* b */
    return 1;
}

static int emit_conv_chandot(Emitter *e, const Node *n, const ConvGeom *cg, const Epilogue *ep)
{
    CdPlan p;
    if (conv_emitted_kernel(e, n, cg) != CK_CHANDOT || !cd_plan(e->g, n, cg, &p))
        return 0;
    Writer *w = e->w;
    int has_bias = node_in(e->g, n, 2) != NULL;
    int64_t C = cg->C, IH = cg->in[0], IW = cg->in[1], pt = cg->pb[0], pl = cg->pb[1];
    int cl = node_in(e->g, n, 0)->channels_last;
    w_line(w, "/* channel dots: blocks of %" PRId64 " channels x %" PRId64 " pixels, vectors over the input channels, "
           "the input channels-last in a padded %" PRId64 " x %" PRId64 " map%s, weights [M][K0][K1][C] */", p.mb, p.pb, p.PH,
           p.PW, cl ? " (copied from an input stored channels-last)" : "");
    w_line(w, "float *restrict xs = y1;");
    em_for(w, "b", cg->N);
    /* the map: padding positions zero, the others the input's C channels */
    em_for(w, "r", p.PH);
    em_for(w, "q", p.PW);
    w_line(w, "const int64_t u = r - %" PRId64 ", v = q - %" PRId64 ";", pt, pl);
    w_line(w, "float *restrict xp = xs + (r * %" PRId64 " + q) * %" PRId64 ";", p.PW, C);
    w_open(w, "if (u >= 0 && u < %" PRId64 " && v >= 0 && v < %" PRId64 ")", IH, IW);
    if (cl) {   /* a pixel's channels are one run already */
        w_line(w, "const float *restrict xc = x0 + ((b * %" PRId64 " + u) * %" PRId64 " + v) * %" PRId64 ";", IH, IW, C);
        em_for(w, "c", C);
        w_line(w, "xp[c] = xc[c];");
    } else {
        w_line(w, "const float *restrict xc = x0 + b * %" PRId64 " + u * %" PRId64 " + v;", C * IH * IW, IW);
        em_for(w, "c", C);
        w_line(w, "xp[c] = xc[c * %" PRId64 "];", IH * IW);
    }
    em_close(w, 2);
    w_open(w, "else");
    em_for(w, "c", C);
    w_line(w, "xp[c] = 0;");
    em_close(w, 4); /* c, else, q, r */
    ConvBlockCtx ctx = {cg, &p, has_bias, ep};
    conv_block_loops(w, cg->M, p.mb, cg->out[0] * cg->out[1], p.pb, cd_block_fn, &ctx);
    w_close(w); /* b */
    return 1;
}

/* Emit Conv through the padded-plane kernel; 0 if the node has no scratch for it. */
static int emit_conv_plane(Emitter *e, const Node *n, const ConvGeom *cg, const Epilogue *ep)
{
    PpGeom p;
    if (conv_emitted_kernel(e, n, cg) != CK_PLANE || !pp_plan(e->g, n, cg, &p))
        return 0;
    int64_t Cg = cg->C / cg->G, Mg = cg->M / cg->G, IH = cg->in[0], IW = cg->in[1], nt = conv_nt(e->g, cg);
    Writer *w = e->w;
    int has_bias = node_in(e->g, n, 2) != NULL;
    int64_t pt = cg->pb[0], pl = cg->pb[1];
    if (p.S0 * p.S1 == 1)
        w_line(w, "/* padded plane: blocks of %" PRId64 " channels x %" PRId64 " rows x %" PRId64 " columns, planes of %" PRId64
               " x %" PRId64 " */", p.mr < Mg ? p.mr : Mg, p.R, p.VW, p.PH, p.PW);
    else
        w_line(w, "/* padded plane: blocks of %" PRId64 " channels x %" PRId64 " rows x %" PRId64 " columns, %" PRId64
               " phase planes of %" PRId64 " x %" PRId64 " per input channel (strides %" PRId64 " x %" PRId64 ") */",
               p.mr < Mg ? p.mr : Mg, p.R, p.VW, p.S0 * p.S1, p.PH, p.PW, p.S0, p.S1);
    if (p.NB > 1)
        w_line(w, "/* in %" PRId64 " bands of %" PRId64 " output rows, planes of %" PRId64 " rows each */", p.NB, p.RB, p.PH);
    conv_batch_open(e, nt, Cg * p.CS + p.slack);
    em_for(w, "j", p.slack);
    w_line(w, "ys[%" PRId64 " + j] = 0;", Cg * p.CS);
    w_close(w);
    conv_batch_images(w, nt, cg->N);
    em_for(w, "g", cg->G);
    if (p.NB > 1)
        w_open(w, "for (int64_t by0 = 0; by0 < %" PRId64 "; by0 += %" PRId64 ")", cg->out[0], p.RB);
    em_for(w, "ci", Cg);
    w_line(w, "const float *restrict xc = x0 + (b * %" PRId64 " + g * %" PRId64 " + ci) * %" PRId64 ";", cg->C, Cg, IH * IW);
    /* phase plane (f0, f1) row r, column c: padded input row r * S0 + f0, column c * S1
     * + f1. The rows outermost, so the input is read once in order, each of its rows by
     * the S1 phases in turn (UltraFace's 3->16 first layer, whose 900 KB input comes
     * from beyond the L2: 4-5% faster than a phase plane at a time, which read the
     * input S0 x S1 times in strided rows) */
    if (p.NB > 1) {   /* the band's plane rows: r from by0 */
        em_for(w, "rl", p.PH);
        w_line(w, "const int64_t r = by0 + rl;");
    } else {
        em_for(w, "r", p.PH);
    }
    for (int64_t f0 = 0; f0 < p.S0; f0++)
        for (int64_t f1 = 0; f1 < p.S1; f1++) {
            /* columns that hold input columns: c * S1 + f1 - pl in [0, IW) */
            int64_t clo = conv_ceildiv(pl - f1, p.S1), chi = conv_floordiv(IW - 1 + pl - f1, p.S1) + 1;
            clo = clo < 0 ? 0 : clo > p.PW ? p.PW : clo;
            chi = chi > p.PW ? p.PW : chi < clo ? clo : chi;
            w_open(w, "%s", "");
            if (p.S0 == 1)
                w_line(w, "const int64_t u = r - %" PRId64 ";", pt);
            else
                w_line(w, "const int64_t u = r * %" PRId64 " %s %" PRId64 ";", p.S0, pt - f0 < 0 ? "+" : "-",
                       pt - f0 < 0 ? f0 - pt : pt - f0);
            w_line(w, "float *restrict pr = ys + ci * %" PRId64 " + %" PRId64 " + %s * %" PRId64 ";", p.CS,
                   (f0 * p.S1 + f1) * p.PS, p.NB > 1 ? "rl" : "r", p.PW);
            conv_pad_row(w, IH, IW, p.PW, clo, chi, p.S1, f1 - pl);
            w_close(w);   /* phase */
        }
    w_close(w);   /* r */
    w_close(w);   /* ci */
    int64_t mr = p.mr < Mg ? p.mr : Mg, P = p.NB > 1 ? p.RB * cg->out[1] : cg->out[0] * cg->out[1];
    int64_t nfull = Mg / mr, rem = Mg % mr;
    w_open(w, "for (int64_t mo = 0; mo < %" PRId64 "; mo += %" PRId64 ")", nfull * mr, mr);
    w_line(w, "const int64_t m0 = g * %" PRId64 " + mo;", Mg);
    em_omp_for(e, nt > 1 ? 0 : P * mr * Cg * cg->k[0] * cg->k[1], 1); /* the bk loop: each block its own outputs */
    pp_block(w, cg, &p, has_bias, mr, ep);
    w_close(w);
    if (rem) {
        w_open(w, "%s", "");
        w_line(w, "const int64_t m0 = g * %" PRId64 " + %" PRId64 ";", Mg, nfull * mr);
        em_omp_for(e, nt > 1 ? 0 : P * rem * Cg * cg->k[0] * cg->k[1], 1);
        pp_block(w, cg, &p, has_bias, rem, ep);
        w_close(w);
    }
    em_close(w, p.NB > 1 ? 4 : 3);   /* the band, g, b, th */
    return 1;
}

static int emit_conv_common(Emitter *e, const Node *n, Diag *d, int transpose)
{
    Writer *w = e->w;
    const Value *x = node_in(e->g, n, 0), *bias = node_in(e->g, n, 2), *y = node_out(e->g, n, 0);
    DType t = x->dtype;
    int half = t == DT_FLOAT16 || t == DT_BFLOAT16;
    if (t != DT_FLOAT && t != DT_DOUBLE && !half)
        return err_dtype(d, n, transpose ? "ConvTranspose" : "Conv", t);
    ConvGeom cg;
    Epilogue ep;
    if (conv_geom(e->g, n, transpose, &cg, d) || epilogue_read(e->g, n, 3, &ep, d))
        return -1;
    if (ep.n && (half || transpose))
        return err_dtype(d, n, transpose ? "an epilogue of ConvTranspose" : "an epilogue", t);
    if (value_numel(y) == 0) {
        void_params(e, n);
        return 0;
    }
    conv_flatten_pointwise(&cg);
    /* values stored channels-last (passes/layout.c) have one writer and readers of kernels that take them */
    if (y->channels_last || node_in(e->g, n, 0)->channels_last)
        return emit_conv_depthwise(e, n, &cg, &ep) || emit_conv_pointwise(e, n, &cg, &ep) ||
                       (!y->channels_last && emit_conv_chandot(e, n, &cg, &ep)) ||
                       (!node_in(e->g, n, 0)->channels_last && emit_conv_chanvec(e, n, &cg, &ep))
                   ? 0
                   : diag_error(d, n, "internal: no kernel for this layer reads or writes channels-last activations");
    if (emit_conv_depthwise(e, n, &cg, &ep) || emit_conv_pointwise(e, n, &cg, &ep) ||
        emit_conv_plane(e, n, &cg, &ep) || emit_conv_im2col(e, n, &cg, &ep) || emit_conv_chanvec(e, n, &cg, &ep) ||
        emit_conv_chandot(e, n, &cg, &ep))
        return 0;
    if (attr_int(n, "weight_hwc", 0))
        return diag_error(d, n, "Conv with weights stored input-channel-last needs its scratch memory (made by "
                                "passes/layout.c and passes/scratch.c)");
    if (attr_int(n, "weight_pairs", 0))
        return diag_error(d, n, "Conv with weights stored in pairs of input channels needs its input stored "
                                "channels-last (made by passes/layout.c)");
    if (attr_int(n, "weight_kc", 0))
        return diag_error(d, n, "Conv with weights stored output-channel-last needs the channel-vector kernel and its "
                                "scratch memory (made by passes/layout.c and passes/scratch.c)");
    if (emit_conv_blocked(e, n, &cg, &ep))
        return 0;
    const char *ct = dtype_ctype(t);
    /* float16/bfloat16: accumulate one output channel in a float array on the stack */
    const char *at = half ? "float" : ct, *ld = "", *st = "";
    if (half) {
        ld = t == DT_FLOAT16 ? "kd_h2f" : "kd_bf2f";
        st = t == DT_FLOAT16 ? "kd_f2h" : "kd_f2bf";
        e->prelude |= t == DT_FLOAT16 ? PRE_HALF : PRE_BF16;
        if (value_numel(y) / (cg.N * cg.M) > 16384)
            return diag_unsupported(d, n, "%s planes of more than 16384 elements in %s", dtype_name(t),
                                    transpose ? "ConvTranspose" : "Conv");
    }
    int nsp = cg.nsp, L = nsp - 1;
    int64_t Cg = cg.C / cg.G, Mg = cg.M / cg.G;
    int64_t ISZ = 1, OSZ = 1, KSZ = 1;
    for (int i = 0; i < nsp; i++) {
        ISZ *= cg.in[i];
        OSZ *= cg.out[i];
        KSZ *= cg.k[i];
    }
    /* source (looped) and destination (computed) extents */
    const int64_t *V = transpose ? cg.in : cg.out, *U = transpose ? cg.out : cg.in;

    em_for(w, "b", cg.N);
    em_for(w, "g", cg.G);
    em_for(w, "mo", Mg);
    w_line(w, "const int64_t m = g * %" PRId64 " + mo;", Mg);
    if (half)
        w_line(w, "float yc[%" PRId64 "];", OSZ);
    else
        w_line(w, "%s *restrict yc = y0 + (b * %" PRId64 " + m) * %" PRId64 ";", ct, cg.M, OSZ);
    em_for(w, "q", OSZ);
    if (bias)
        w_line(w, "yc[q] = %s(x2[m]);", ld);
    else
        w_line(w, "yc[q] = 0;");
    w_close(w);
    /* outer source dims */
    for (int j = 0; j < L; j++) {
        char var[16];
        snprintf(var, sizeof var, "v%d", j);
        em_for(w, var, V[j]);
    }
    em_for(w, "ci", Cg);
    w_line(w, "const %s *restrict xc = x0 + (b * %" PRId64 " + g * %" PRId64 " + ci) * %" PRId64 ";", ct, cg.C, Cg, ISZ);
    if (!transpose)
        w_line(w, "const %s *restrict wc = x1 + (m * %" PRId64 " + ci) * %" PRId64 ";", ct, Cg, KSZ);
    else
        w_line(w, "const %s *restrict wc = x1 + ((g * %" PRId64 " + ci) * %" PRId64 " + mo) * %" PRId64 ";", ct, Cg, Mg, KSZ);
    /* outer kernel dims, with a row-level range check where needed */
    for (int j = 0; j < L; j++) {
        char var[16];
        snprintf(var, sizeof var, "k%d", j);
        em_for(w, var, cg.k[j]);
        w_line(w, "const int64_t u%d = v%d * %" PRId64 " + k%d * %" PRId64 " - %" PRId64 ";",
               j, j, cg.s[j], j, cg.dl[j], cg.pb[j]);
        int64_t umin = -cg.pb[j];
        int64_t umax = (V[j] - 1) * cg.s[j] + (cg.k[j] - 1) * cg.dl[j] - cg.pb[j];
        if (umin < 0 && umax >= U[j])
            w_line(w, "if (u%d < 0 || u%d >= %" PRId64 ") continue;", j, j, U[j]);
        else if (umin < 0)
            w_line(w, "if (u%d < 0) continue;", j);
        else if (umax >= U[j])
            w_line(w, "if (u%d >= %" PRId64 ") continue;", j, U[j]);
    }
    /* row pointers: y indexed by the source for Conv, by the destination for ConvTranspose */
    w_printf(w, "%s *yr = yc + (", at);
    row_offset(w, transpose ? 'u' : 'v', nsp, transpose ? U : V);
    w_printf(w, ") * %" PRId64 ";\n", transpose ? U[L] : V[L]);
    w_printf(w, "const %s *xr = xc + (", ct);
    row_offset(w, transpose ? 'v' : 'u', nsp, transpose ? V : U);
    w_printf(w, ") * %" PRId64 ";\n", transpose ? V[L] : U[L]);
    w_printf(w, "const %s *wr = wc + (", ct);
    row_offset(w, 'k', nsp, cg.k);
    w_printf(w, ") * %" PRId64 ";\n", cg.k[L]);
    /* last dim: per tap, the valid source range [lo, hi) */
    int64_t KL = cg.k[L], s = cg.s[L], dl = cg.dl[L], p = cg.pb[L];
    if (KL <= UNROLL_TAPS) {
        int taps = 0;
        for (int64_t kl = 0; kl < KL; kl++) {
            int64_t off = kl * dl - p;
            int64_t lo = conv_ceildiv(-off, s), hi = conv_floordiv(U[L] - 1 - off, s) + 1;
            if (lo < 0)
                lo = 0;
            if (hi > V[L])
                hi = V[L];
            if (lo >= hi)
                continue;
            taps++;
            w_open(w, "for (int64_t v = %" PRId64 "; v < %" PRId64 "; ++v)", lo, hi);
            char idx[96];
            if (s == 1)
                snprintf(idx, sizeof idx, "v%s%" PRId64, off < 0 ? " - " : " + ", off < 0 ? -off : off);
            else
                snprintf(idx, sizeof idx, "v * %" PRId64 "%s%" PRId64, s, off < 0 ? " - " : " + ", off < 0 ? -off : off);
            if (!transpose)
                w_line(w, "yr[v] += %s(wr[%" PRId64 "]) * %s(xr[%s]);", ld, kl, ld, idx);
            else
                w_line(w, "yr[%s] += %s(wr[%" PRId64 "]) * %s(xr[v]);", idx, ld, kl, ld);
            w_close(w);
        }
        if (!taps)
            w_line(w, "(void)yr; (void)xr; (void)wr;");
    } else {
        w_puts(w, "static const int64_t lo_t[] = {");
        for (int64_t kl = 0; kl < KL; kl++) {
            int64_t off = kl * dl - p;
            int64_t lo = conv_ceildiv(-off, s);
            w_printf(w, "%s%" PRId64, kl ? ", " : "", lo < 0 ? 0 : lo);
        }
        w_puts(w, "};\n");
        w_puts(w, "static const int64_t hi_t[] = {");
        for (int64_t kl = 0; kl < KL; kl++) {
            int64_t off = kl * dl - p;
            int64_t hi = conv_floordiv(U[L] - 1 - off, s) + 1;
            w_printf(w, "%s%" PRId64, kl ? ", " : "", hi > V[L] ? V[L] : hi);
        }
        w_puts(w, "};\n");
        em_for(w, "kl", KL);
        w_line(w, "const int64_t off = kl * %" PRId64 " - %" PRId64 ";", dl, p);
        w_open(w, "for (int64_t v = lo_t[kl]; v < hi_t[kl]; ++v)");
        if (!transpose)
            w_line(w, "yr[v] += %s(wr[kl]) * %s(xr[v * %" PRId64 " + off]);", ld, ld, s);
        else
            w_line(w, "yr[v * %" PRId64 " + off] += %s(wr[kl]) * %s(xr[v]);", s, ld, ld);
        w_close(w);
        w_close(w);
    }
    em_close(w, L);   /* kernel dims */
    w_close(w);       /* ci */
    em_close(w, L);   /* source dims */
    if (ep.n) {
        em_for(w, "q", OSZ);
        conv_store(w, &ep, t, "yc[q]", "(b * %" PRId64 " + m) * %" PRId64 " + q", cg.M, OSZ);
        w_close(w);
    }
    if (half) {
        em_for(w, "q", OSZ);
        w_line(w, "y0[(b * %" PRId64 " + m) * %" PRId64 " + q] = %s(yc[q]);", cg.M, OSZ, st);
        w_close(w);
    }
    em_close(w, 3);   /* mo, g, b */
    return 0;
}

static int emit_conv(Emitter *e, const Node *n, Diag *d) { return emit_conv_common(e, n, d, 0); }
static int emit_convtranspose(Emitter *e, const Node *n, Diag *d) { return emit_conv_common(e, n, d, 1); }

/* ---------------------------------------------------------------- gradients
 *
 * Conv  Y = X (*) W + B, geometry g (strides, pads, dilations, group):
 *   dX = ConvTranspose(dY, W; g, output_padding = what gives X's size back)
 *        (the adjoint of the correlation; Conv's W [M, C/G, k] is exactly the
 *        weight ConvTranspose expects for M input and C output channels)
 *   dW = kdcc.ConvGradWeight(X, dY; g, kernel_shape)
 *   dB = kdcc.ConvGradBias(dY): the sum over N and the spatial dims
 * ConvTranspose is the adjoint pair:
 *   dX = Conv(dY, W; g)    dW = kdcc.ConvGradWeight(dY, X; g)    dB as above.
 *
 * kdcc.ConvGradWeight(X, dY) -> dW[M, C/G, k...], attributes kernel_shape,
 * strides, pads (explicit), dilations, group:
 *   dW[m, c, k] = sum_b sum_v dY[b, m, v] * X[b, g(m)*C/G + c, v*s + k*d - p]
 * Per (m, c) and outer kernel taps, the products of every last-dim tap are
 * accumulated elementwise into a stack array acc[tap][v] (constant bounds, the
 * contiguous dim innermost, no reduction in the inner loop, so it vectorises),
 * and reduced once at the end. */

static int grad_dtype_ok(GradCtx *c, DType t)
{
    if (t != DT_FLOAT && t != DT_DOUBLE)
        return diag_unsupported(c->d, c->n, "gradients of %s are implemented for float and double, not %s",
                                c->n->op_type, dtype_name(t));
    return 0;
}

/* geometry attributes (explicit pads) of cg on a gradient node */
static void g_geom_attrs(GradCtx *c, Node *m, const ConvGeom *cg, int with_kernel)
{
    int64_t pads[2 * MAX_SP];
    for (int i = 0; i < cg->nsp; i++) {
        pads[i] = cg->pb[i];
        pads[cg->nsp + i] = cg->pe[i];
    }
    g_attr_ints(c, m, "strides", cg->s, cg->nsp);
    g_attr_ints(c, m, "pads", pads, 2 * cg->nsp);
    g_attr_ints(c, m, "dilations", cg->dl, cg->nsp);
    g_attr_i(c, m, "group", cg->G);
    if (with_kernel)
        g_attr_ints(c, m, "kernel_shape", cg->k, cg->nsp);
}

/* id, or -1 with an internal error when the gradient's shape is not the input's */
static int g_check_like(GradCtx *c, int id, int like)
{
    if (id < 0)
        return -1;
    const Value *a = &c->g->values[id], *b = &c->g->values[like];
    int same = a->rank == b->rank;
    for (int i = 0; same && i < a->rank; i++)
        same = a->dims[i] == b->dims[i];
    if (!same) {
        char s1[128], s2[128];
        diag_error(c->d, c->n, "internal error: gradient %s does not have the shape %s of '%s'",
                   value_type_str(a, s1, sizeof s1), value_type_str(b, s2, sizeof s2), b->name);
        return -1;
    }
    return id;
}

/* dB = sum of dY over N and the spatial dims */
static int g_bias_grad(GradCtx *c, int dy)
{
    return g_op1(c, "kdcc.ConvGradBias", dy);
}

static int g_conv_weight(GradCtx *c, int x, int dy, const ConvGeom *cg)
{
    int ins[2] = {x, dy};
    Node *m = g_new(c, "kdcc.ConvGradWeight", ins, 2, 1);
    if (!m)
        return -1;
    g_geom_attrs(c, m, cg, 1);
    return g_done(c, m);
}

static int grad_conv(GradCtx *c)
{
    const Node *n = c->n;
    if (c->dy[0] < 0)
        return 0;
    const Value *x = node_in(c->g, n, 0);
    if (grad_dtype_ok(c, x->dtype))
        return -1;
    ConvGeom cg;
    if (conv_geom(c->g, n, 0, &cg, c->d))
        return -1;
    if (c->need[0]) {
        int64_t outpad[MAX_SP];
        for (int i = 0; i < cg.nsp; i++) {
            int64_t ek = (cg.k[i] - 1) * cg.dl[i] + 1;
            outpad[i] = (cg.in[i] + cg.pb[i] + cg.pe[i] - ek) % cg.s[i];
        }
        int ins[2] = {c->dy[0], n->inputs[1]};
        Node *m = g_new(c, "ConvTranspose", ins, 2, 1);
        if (!m)
            return -1;
        g_geom_attrs(c, m, &cg, 0);
        g_attr_ints(c, m, "output_padding", outpad, cg.nsp);
        if ((c->dx[0] = g_check_like(c, g_done(c, m), n->inputs[0])) < 0)
            return -1;
    }
    if (c->need[1] && (c->dx[1] = g_check_like(c, g_conv_weight(c, n->inputs[0], c->dy[0], &cg), n->inputs[1])) < 0)
        return -1;
    if (n->ninputs > 2 && n->inputs[2] >= 0 && c->need[2] &&
        (c->dx[2] = g_check_like(c, g_bias_grad(c, c->dy[0]), n->inputs[2])) < 0)
        return -1;
    return 0;
}

static int grad_convtranspose(GradCtx *c)
{
    const Node *n = c->n;
    if (c->dy[0] < 0)
        return 0;
    const Value *x = node_in(c->g, n, 0);
    if (grad_dtype_ok(c, x->dtype))
        return -1;
    ConvGeom cg;
    if (conv_geom(c->g, n, 1, &cg, c->d))
        return -1;
    /* the adjoint Conv maps the output's size back to the input's only when the
     * output padding is below the stride (negative pads, from an output_shape
     * beyond the natural size, are fine: the Conv then crops dY) */
    for (int i = 0; i < cg.nsp; i++) {
        int64_t ek = (cg.k[i] - 1) * cg.dl[i] + 1;
        int64_t span = cg.out[i] + cg.pb[i] + cg.pe[i] - ek;
        if (span < 0 || span / cg.s[i] + 1 != cg.in[i])
            return diag_unsupported(c->d, n, "gradients of ConvTranspose with an output padding of a stride or "
                                             "more (spatial dim %d) are not implemented", i);
    }
    if (c->need[0]) {
        int ins[2] = {c->dy[0], n->inputs[1]};
        Node *m = g_new(c, "Conv", ins, 2, 1);
        if (!m)
            return -1;
        g_geom_attrs(c, m, &cg, 0);
        if ((c->dx[0] = g_check_like(c, g_done(c, m), n->inputs[0])) < 0)
            return -1;
    }
    if (c->need[1] && (c->dx[1] = g_check_like(c, g_conv_weight(c, c->dy[0], n->inputs[0], &cg), n->inputs[1])) < 0)
        return -1;
    if (n->ninputs > 2 && n->inputs[2] >= 0 && c->need[2] &&
        (c->dx[2] = g_check_like(c, g_bias_grad(c, c->dy[0]), n->inputs[2])) < 0)
        return -1;
    return 0;
}

/* Geometry of kdcc.ConvGradWeight(X, dY): X is the forward input, dY the output. */
static int cgw_geom(const Graph *g, const Node *n, ConvGeom *cg, Diag *d)
{
    const Value *x = node_in(g, n, 0), *dy = node_in(g, n, 1);
    memset(cg, 0, sizeof *cg);
    if (x->rank < 3 || x->rank > KD_MAX_RANK || dy->rank != x->rank)
        return diag_error(d, n, "X and dY must have the same rank >= 3");
    if (x->dtype != DT_FLOAT && x->dtype != DT_DOUBLE)
        return err_dtype(d, n, "ConvGradWeight", x->dtype);
    if (dy->dtype != x->dtype)
        return diag_error(d, n, "dY has element type %s; X has %s", dtype_name(dy->dtype), dtype_name(x->dtype));
    int nsp = x->rank - 2;
    cg->nsp = nsp;
    cg->N = x->dims[0];
    cg->C = x->dims[1];
    cg->M = dy->dims[1];
    cg->G = attr_int(n, "group", 1);
    if (dy->dims[0] != cg->N)
        return diag_error(d, n, "dY has batch %lld; X has %lld", (long long)dy->dims[0], (long long)cg->N);
    if (cg->G < 1 || cg->C % cg->G || cg->M % cg->G)
        return diag_error(d, n, "group %lld does not divide the channels %lld and %lld", (long long)cg->G,
                          (long long)cg->C, (long long)cg->M);
    int64_t pads[2 * MAX_SP];
    if (attr_ints(n, "kernel_shape", &(const int64_t *){0}) != nsp)
        return diag_error(d, n, "kernel_shape must have %d values", nsp);
    if (spatial_attr(n, "kernel_shape", nsp, 1, cg->k, d) || spatial_attr(n, "strides", nsp, 1, cg->s, d) ||
        spatial_attr(n, "dilations", nsp, 1, cg->dl, d) || spatial_attr(n, "pads", 2 * nsp, 0, pads, d))
        return -1;
    for (int i = 0; i < nsp; i++) {
        cg->in[i] = x->dims[2 + i];
        cg->out[i] = dy->dims[2 + i];
        cg->pb[i] = pads[i];
        cg->pe[i] = pads[nsp + i];
        int64_t ek = (cg->k[i] - 1) * cg->dl[i] + 1;
        int64_t span = cg->in[i] + cg->pb[i] + cg->pe[i] - ek;
        if (cg->k[i] < 1 || cg->s[i] < 1 || cg->dl[i] < 1 || span < 0 || span / cg->s[i] + 1 != cg->out[i])
            return diag_error(d, n, "dY's spatial dim %d (%lld) is not the Conv output size of X's (%lld)", i,
                              (long long)cg->out[i], (long long)cg->in[i]);
    }
    return 0;
}

static int infer_cgw(Graph *g, Node *n, Diag *d)
{
    Value *x = need_input(g, n, 0, d), *dy = x ? need_input(g, n, 1, d) : NULL;
    if (!dy)
        return -1;
    ConvGeom cg;
    if (cgw_geom(g, n, &cg, d))
        return -1;
    int64_t dims[KD_MAX_RANK];
    dims[0] = cg.M;
    dims[1] = cg.C / cg.G;
    for (int i = 0; i < cg.nsp; i++)
        dims[2 + i] = cg.k[i];
    value_set_shape(node_out(g, n, 0), x->dtype, x->rank, dims);
    return 0;
}

#define CGW_ACC_MAX 8192   /* elements of the per-tap accumulator on the stack */

static int emit_cgw(Emitter *e, const Node *n, Diag *d)
{
    Writer *w = e->w;
    const Value *x = node_in(e->g, n, 0), *dwv = node_out(e->g, n, 0);
    ConvGeom cg;
    if (cgw_geom(e->g, n, &cg, d))
        return -1;
    const char *ct = dtype_ctype(x->dtype);
    if (value_numel(dwv) == 0) {
        void_params(e, n);
        return 0;
    }
    conv_flatten_pointwise(&cg);
    int nsp = cg.nsp, L = nsp - 1;
    int64_t Cg = cg.C / cg.G, Mg = cg.M / cg.G;
    int64_t ISZ = 1, OSZ = 1, KSZ = 1;
    for (int i = 0; i < nsp; i++) {
        ISZ *= cg.in[i];
        OSZ *= cg.out[i];
        KSZ *= cg.k[i];
    }
    int64_t KL = cg.k[L], VL = cg.out[L], UL = cg.in[L], s = cg.s[L], dl = cg.dl[L], p = cg.pb[L];
    if (cg.N * OSZ == 0) {
        em_for(w, "i", value_numel(dwv));
        w_line(w, "y0[i] = 0;");
        w_close(w);
        w_line(w, "(void)x0; (void)x1;");
        return 0;
    }
    int acc_mode = KL * VL <= CGW_ACC_MAX;
    em_for(w, "g", cg.G);
    em_for(w, "mo", Mg);
    w_line(w, "const int64_t m = g * %" PRId64 " + mo;", Mg);
    em_for(w, "ci", Cg);
    w_line(w, "%s *restrict dw = y0 + (m * %" PRId64 " + ci) * %" PRId64 ";", ct, Cg, KSZ);
    for (int j = 0; j < L; j++) {
        char var[16];
        snprintf(var, sizeof var, "k%d", j);
        em_for(w, var, cg.k[j]);
    }
    if (acc_mode) {
        w_line(w, "%s acc[%" PRId64 "];", ct, KL * VL);
        em_for(w, "t", KL * VL);
        w_line(w, "acc[t] = 0;");
        w_close(w);
    } else {
        /* long rows: one tap at a time, a scalar sum */
        w_puts(w, "static const int64_t lo_t[] = {");
        for (int64_t kl = 0; kl < KL; kl++) {
            int64_t lo = conv_ceildiv(p - kl * dl, s);
            w_printf(w, "%s%" PRId64, kl ? ", " : "", lo < 0 ? 0 : lo);
        }
        w_puts(w, "};\n");
        w_puts(w, "static const int64_t hi_t[] = {");
        for (int64_t kl = 0; kl < KL; kl++) {
            int64_t hi = conv_floordiv(UL - 1 + p - kl * dl, s) + 1;
            w_printf(w, "%s%" PRId64, kl ? ", " : "", hi > VL ? VL : hi < 0 ? 0 : hi);
        }
        w_puts(w, "};\n");
        em_for(w, "kl", KL);
        w_line(w, "const int64_t off = kl * %" PRId64 " - %" PRId64 ";", dl, p);
        w_line(w, "%s sum = 0;", ct);
    }
    em_for(w, "b", cg.N);
    w_line(w, "const %s *restrict xc = x0 + (b * %" PRId64 " + g * %" PRId64 " + ci) * %" PRId64 ";", ct, cg.C, Cg, ISZ);
    w_line(w, "const %s *restrict dyc = x1 + (b * %" PRId64 " + m) * %" PRId64 ";", ct, cg.M, OSZ);
    for (int j = 0; j < L; j++) {
        char var[16];
        snprintf(var, sizeof var, "v%d", j);
        em_for(w, var, cg.out[j]);
        w_line(w, "const int64_t u%d = v%d * %" PRId64 " + k%d * %" PRId64 " - %" PRId64 ";",
               j, j, cg.s[j], j, cg.dl[j], cg.pb[j]);
        int64_t umin = -cg.pb[j];
        int64_t umax = (cg.out[j] - 1) * cg.s[j] + (cg.k[j] - 1) * cg.dl[j] - cg.pb[j];
        if (umin < 0 && umax >= cg.in[j])
            w_line(w, "if (u%d < 0 || u%d >= %" PRId64 ") continue;", j, j, cg.in[j]);
        else if (umin < 0)
            w_line(w, "if (u%d < 0) continue;", j);
        else if (umax >= cg.in[j])
            w_line(w, "if (u%d >= %" PRId64 ") continue;", j, cg.in[j]);
    }
    w_printf(w, "const %s *xr = xc + (", ct);
    row_offset(w, 'u', nsp, cg.in);
    w_printf(w, ") * %" PRId64 ";\n", UL);
    w_printf(w, "const %s *dyr = dyc + (", ct);
    row_offset(w, 'v', nsp, cg.out);
    w_printf(w, ") * %" PRId64 ";\n", VL);
    if (acc_mode) {
        int taps = 0;
        for (int64_t kl = 0; kl < KL; kl++) {
            int64_t off = kl * dl - p;
            int64_t lo = conv_ceildiv(-off, s), hi = conv_floordiv(UL - 1 - off, s) + 1;
            if (lo < 0)
                lo = 0;
            if (hi > VL)
                hi = VL;
            if (lo >= hi)
                continue;
            taps++;
            char idx[96];
            if (s == 1)
                snprintf(idx, sizeof idx, "v%s%" PRId64, off < 0 ? " - " : " + ", off < 0 ? -off : off);
            else
                snprintf(idx, sizeof idx, "v * %" PRId64 "%s%" PRId64, s, off < 0 ? " - " : " + ", off < 0 ? -off : off);
            w_open(w, "for (int64_t v = %" PRId64 "; v < %" PRId64 "; ++v)", lo, hi);
            w_line(w, "acc[%" PRId64 " + v] += dyr[v] * xr[%s];", kl * VL, idx);
            w_close(w);
        }
        if (!taps)
            w_line(w, "(void)xr; (void)dyr;");
    } else {
        w_open(w, "for (int64_t v = lo_t[kl]; v < hi_t[kl]; ++v)");
        w_line(w, "sum += dyr[v] * xr[v * %" PRId64 " + off];", s);
        w_close(w);
    }
    em_close(w, L); /* v dims */
    w_close(w);     /* b */
    w_printf(w, "%s *dwr = dw + (", ct);
    row_offset(w, 'k', nsp, cg.k);
    w_printf(w, ") * %" PRId64 ";\n", KL);
    if (acc_mode) {
        em_for(w, "kl", KL);
        w_line(w, "%s sum = 0;", ct);
        em_for(w, "v", VL);
        w_line(w, "sum += acc[kl * %" PRId64 " + v];", VL);
        w_close(w);
        w_line(w, "dwr[kl] = sum;");
        w_close(w);
    } else {
        w_line(w, "dwr[kl] = sum;");
        w_close(w); /* kl */
    }
    em_close(w, L); /* k dims */
    em_close(w, 3); /* ci, mo, g */
    return 0;
}

/* kdcc.ConvGradBias(dY[N, M, spatial...]) -> dB[M]: the sum over N and the spatial
 * dims, in CGB_LANES independent partial sums (a plain float reduction does not
 * vectorise without reassociation; lane-wise sums do) added up at the end. */
#define CGB_LANES 16

static int infer_cgb(Graph *g, Node *n, Diag *d)
{
    Value *dy = need_input(g, n, 0, d);
    if (!dy)
        return -1;
    if (dy->dtype != DT_FLOAT && dy->dtype != DT_DOUBLE)
        return err_dtype(d, n, "ConvGradBias", dy->dtype);
    if (dy->rank < 2)
        return diag_error(d, n, "dY must have rank >= 2 (N, M, spatial...), got %d", dy->rank);
    value_set_shape(node_out(g, n, 0), dy->dtype, 1, &dy->dims[1]);
    return 0;
}

static int emit_cgb(Emitter *e, const Node *n, Diag *d)
{
    (void)d;
    Writer *w = e->w;
    const Value *dy = node_in(e->g, n, 0);
    const char *ct = dtype_ctype(dy->dtype);
    int64_t N = dy->dims[0], M = dy->dims[1], sp = 1;
    for (int i = 2; i < dy->rank; i++)
        sp *= dy->dims[i];
    if (M == 0) {
        w_line(w, "(void)x0; (void)y0;");
        return 0;
    }
    int64_t body = sp / CGB_LANES * CGB_LANES;
    em_for(w, "m", M);
    w_line(w, "%s acc[%d] = {0};", ct, CGB_LANES);
    w_line(w, "%s sum = 0;", ct);
    if (N * sp > 0) {
        em_for(w, "b", N);
        w_line(w, "const %s *restrict r = x0 + (b * %" PRId64 " + m) * %" PRId64 ";", ct, M, sp);
        if (body > 0) {
            w_open(w, "for (int64_t q = 0; q < %" PRId64 "; q += %d)", body, CGB_LANES);
            em_for(w, "l", CGB_LANES);
            w_line(w, "acc[l] += r[q + l];");
            w_close(w);
            w_close(w);
        }
        if (body < sp) {
            w_open(w, "for (int64_t q = %" PRId64 "; q < %" PRId64 "; ++q)", body, sp);
            w_line(w, "acc[q - %" PRId64 "] += r[q];", body);
            w_close(w);
        }
        w_close(w);
    } else {
        w_line(w, "(void)x0;");
    }
    em_for(w, "l", CGB_LANES);
    w_line(w, "sum += acc[l];");
    w_close(w);
    w_line(w, "y0[m] = sum;");
    w_close(w);
    return 0;
}

static const OpDef op_conv_grad_bias = {
    .name = "ConvGradBias", .domain = "kdcc", .since = 1,
    .min_inputs = 1, .max_inputs = 1, .min_outputs = 1, .max_outputs = 1,
    .infer = infer_cgb, .emit = emit_cgb,
    .summary = "d Conv / d B: dY summed over the batch and spatial dims",
};

static const OpDef op_conv_grad_weight = {
    .name = "ConvGradWeight", .domain = "kdcc", .since = 1,
    .min_inputs = 2, .max_inputs = 2, .min_outputs = 1, .max_outputs = 1,
    .infer = infer_cgw, .emit = emit_cgw,
    .summary = "d Conv / d W: correlation of X with dY per group",
};

static const OpDef op_conv = {
    .name = "Conv", .domain = "", .since = 1,
    .min_inputs = 2, .max_inputs = 3, .min_outputs = 1, .max_outputs = 1,
    .infer = infer_conv, .emit = emit_conv, .grad = grad_conv, .scratch_within = conv_scratch, .tunable = conv_tunable,
    .tune_forms = conv_dw_forms,
    .summary = "n-D convolution (strides, pads, dilations, auto_pad, groups, bias)",
};

/* kdcc.FusedConv(X, W, B?, operands...): Conv with an epilogue (fused.h) applied
 * where each output element is stored; made by passes/fuse.c. */
static int infer_fused_conv(Graph *g, Node *n, Diag *d)
{
    Epilogue ep;
    if (infer_conv(g, n, d))
        return -1;
    for (int i = 3; i < n->ninputs; i++)
        if (node_in(g, n, i) && !need_input(g, n, i, d))
            return -1;
    if (epilogue_read(g, n, 3, &ep, d) || epilogue_check(g, n, &ep, node_out(g, n, 0), d))
        return -1;
    return 0;
}

static const OpDef op_fused_conv = {
    .name = "FusedConv", .domain = "kdcc", .since = 1,
    .min_inputs = 2, .max_inputs = -1, .min_outputs = 1, .max_outputs = 1,
    .infer = infer_fused_conv, .emit = emit_conv, .scratch_within = conv_scratch, .tunable = conv_tunable,
    .tune_forms = conv_dw_forms,
    .summary = "Conv with an epilogue of elementwise steps (activation, residual add) at the store (made by the fusion pass)",
};

static const OpDef op_convtranspose = {
    .name = "ConvTranspose", .domain = "", .since = 1,
    .min_inputs = 2, .max_inputs = 3, .min_outputs = 1, .max_outputs = 1,
    .infer = infer_convtranspose, .emit = emit_convtranspose, .grad = grad_convtranspose,
    .summary = "n-D transposed convolution (strides, pads, output_padding, output_shape, dilations, groups)",
};

const OpDef *const ops_conv[] = {&op_conv, &op_convtranspose, &op_conv_grad_weight, &op_conv_grad_bias, &op_fused_conv, NULL};

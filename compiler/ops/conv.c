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
#include "compiler/ops/ops.h"

#include <inttypes.h>
#include <string.h>

#define MAX_SP (KD_MAX_RANK - 2)
#define UNROLL_TAPS 16   /* last-dim kernel taps written out one by one up to this size */

typedef struct ConvGeom {
    int transpose;
    int nsp;                       /* spatial dims */
    int64_t N, C, M, G;            /* batch, input channels, output channels, groups */
    int64_t in[MAX_SP], out[MAX_SP], k[MAX_SP];
    int64_t s[MAX_SP], dl[MAX_SP], pb[MAX_SP], pe[MAX_SP];
} ConvGeom;

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

static int64_t floordiv(int64_t a, int64_t b) /* b > 0 */
{
    int64_t q = a / b;
    return (a % b != 0 && a < 0) ? q - 1 : q;
}
static int64_t ceildiv(int64_t a, int64_t b) /* b > 0 */
{
    return -floordiv(-a, b);
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

static int conv_geom(const Graph *g, const Node *n, int transpose, ConvGeom *cg, Diag *d)
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
    if (!transpose) {
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
        cg->k[i] = w->dims[2 + i];
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
                int64_t o = ceildiv(cg->in[i], cg->s[i]);
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
                    cg->pb[i] = floordiv(total, 2);
                    cg->pe[i] = total - cg->pb[i];
                } else {
                    cg->pe[i] = floordiv(total, 2);
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

static int emit_conv_common(Emitter *e, const Node *n, Diag *d, int transpose)
{
    Writer *w = e->w;
    const Value *x = node_in(e->g, n, 0), *bias = node_in(e->g, n, 2), *y = node_out(e->g, n, 0);
    DType t = x->dtype;
    int half = t == DT_FLOAT16 || t == DT_BFLOAT16;
    if (t != DT_FLOAT && t != DT_DOUBLE && !half)
        return err_dtype(d, n, transpose ? "ConvTranspose" : "Conv", t);
    ConvGeom cg;
    if (conv_geom(e->g, n, transpose, &cg, d))
        return -1;
    if (value_numel(y) == 0) {
        void_params(e, n);
        return 0;
    }
    /* pointwise (1x1, stride 1, no padding): the spatial dims are one contiguous row */
    int pointwise = 1;
    for (int i = 0; i < cg.nsp; i++)
        if (cg.k[i] != 1 || cg.s[i] != 1 || cg.pb[i] != 0 || cg.in[i] != cg.out[i])
            pointwise = 0;
    if (pointwise && cg.nsp > 1) {
        int64_t sz = value_numel(y) / (cg.N * cg.M);
        cg.nsp = 1;
        cg.in[0] = cg.out[0] = sz;
        cg.k[0] = cg.s[0] = cg.dl[0] = 1;
        cg.pb[0] = cg.pe[0] = 0;
    }
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
            int64_t lo = ceildiv(-off, s), hi = floordiv(U[L] - 1 - off, s) + 1;
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
            int64_t lo = ceildiv(-off, s);
            w_printf(w, "%s%" PRId64, kl ? ", " : "", lo < 0 ? 0 : lo);
        }
        w_puts(w, "};\n");
        w_puts(w, "static const int64_t hi_t[] = {");
        for (int64_t kl = 0; kl < KL; kl++) {
            int64_t off = kl * dl - p;
            int64_t hi = floordiv(U[L] - 1 - off, s) + 1;
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

static const OpDef op_conv = {
    .name = "Conv", .domain = "", .since = 1,
    .min_inputs = 2, .max_inputs = 3, .min_outputs = 1, .max_outputs = 1,
    .infer = infer_conv, .emit = emit_conv,
    .summary = "n-D convolution (strides, pads, dilations, auto_pad, groups, bias)",
};

static const OpDef op_convtranspose = {
    .name = "ConvTranspose", .domain = "", .since = 1,
    .min_inputs = 2, .max_inputs = 3, .min_outputs = 1, .max_outputs = 1,
    .infer = infer_convtranspose, .emit = emit_convtranspose,
    .summary = "n-D transposed convolution (strides, pads, output_padding, output_shape, dilations, groups)",
};

const OpDef *const ops_conv[] = {&op_conv, &op_convtranspose, NULL};

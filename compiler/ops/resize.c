/* Resize and Upsample.
 *
 * Shapes, scales, sizes and roi are compile-time constants, so every source index
 * and interpolation weight is computed here, per axis, in double precision exactly
 * as the ONNX reference (onnx/reference/ops/op_resize.py) does: coordinate
 * transform, neighbour selection with edge padding, coefficients (nearest, linear,
 * cubic, antialiased linear/cubic), exclude_outside. Interpolation is separable, so
 * the emitted code holds one small static table per resized axis (source offsets
 * and weights for each output coordinate) and a loop nest that gathers and blends.
 * Axes that map every output coordinate to one source element with weight 1 (for
 * example nearest, or the N and C axes) need no weights: a pure gather.
 */
#include "compiler/ops/ops.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>

enum { RM_NEAREST, RM_LINEAR, RM_CUBIC };
enum { CT_HALF_PIXEL, CT_HALF_PIXEL_SYM, CT_PYTORCH_HALF_PIXEL, CT_ALIGN_CORNERS, CT_ASYMMETRIC, CT_TF_CROP, CT_TF_HALF_PIXEL_NN };
enum { NM_ROUND_PREFER_FLOOR, NM_ROUND_PREFER_CEIL, NM_FLOOR, NM_CEIL, NM_SIMPLE };

/* Everything the emitted code depends on, from attributes and constant inputs. */
typedef struct ResizeSpec {
    int rank;
    int64_t in[KD_MAX_RANK], out[KD_MAX_RANK];
    double scale[KD_MAX_RANK];      /* per-axis scale factor as the reference uses it */
    float roi_start[KD_MAX_RANK], roi_end[KD_MAX_RANK];
    int mode, ctm, nearest_mode;
    double cubic_a;
    int exclude_outside, antialias;
    double extrapolation;
} ResizeSpec;

static int pick(const char *s, const char *const *names, int count)
{
    for (int i = 0; i < count; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

/* Read attributes and constant inputs of a Resize/Upsample node; fill sp. */
static int resize_spec(Graph *g, const Node *n, Diag *d, ResizeSpec *sp)
{
    memset(sp, 0, sizeof *sp);
    Value *x = need_input(g, n, 0, d);
    if (!x)
        return -1;
    int r = x->rank, upsample = strcmp(n->op_type, "Upsample") == 0;
    int legacy = upsample || n->opset < 11; /* Upsample and Resize-10: asymmetric, scales only */
    sp->rank = r;
    for (int i = 0; i < r; i++) {
        sp->in[i] = x->dims[i];
        sp->roi_start[i] = 0.0f;
        sp->roi_end[i] = 1.0f;
        if (x->dims[i] <= 0)
            return diag_unsupported(d, n, "input '%s' has an empty dimension %d", x->name, i);
    }

    static const char *const modes[] = {"nearest", "linear", "cubic"};
    const char *mode = attr_string(n, "mode", "nearest");
    sp->mode = pick(mode, modes, legacy ? 2 : 3);
    if (sp->mode < 0)
        return diag_error(d, n, "mode '%s' is not valid (expected nearest, linear%s)", mode, legacy ? "" : " or cubic");

    static const char *const ctms[] = {"half_pixel", "half_pixel_symmetric", "pytorch_half_pixel",
                                       "align_corners", "asymmetric", "tf_crop_and_resize",
                                       "tf_half_pixel_for_nn"};
    if (legacy) {
        sp->ctm = CT_ASYMMETRIC;
        sp->nearest_mode = NM_SIMPLE;
    } else {
        const char *ctm = attr_string(n, "coordinate_transformation_mode", "half_pixel");
        sp->ctm = pick(ctm, ctms, n->opset < 13 ? 7 : 6); /* tf_half_pixel_for_nn: opsets 11-12 */
        if (sp->ctm < 0)
            return diag_error(d, n, "coordinate_transformation_mode '%s' is not valid", ctm);
        static const char *const nms[] = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"};
        const char *nm = attr_string(n, "nearest_mode", "round_prefer_floor");
        sp->nearest_mode = pick(nm, nms, 4);
        if (sp->nearest_mode < 0)
            return diag_error(d, n, "nearest_mode '%s' is not valid", nm);
        sp->cubic_a = attr_float(n, "cubic_coeff_a", -0.75);
        sp->exclude_outside = attr_int(n, "exclude_outside", 0) != 0;
        sp->extrapolation = attr_float(n, "extrapolation_value", 0.0);
        sp->antialias = n->opset >= 18 && attr_int(n, "antialias", 0) != 0 && sp->mode != RM_NEAREST;
    }
    /* float attributes are float32 in ONNX */
    sp->cubic_a = (double)(float)sp->cubic_a;
    sp->extrapolation = (double)(float)sp->extrapolation;

    /* axes (opset 18): the axes that scales/sizes/roi refer to */
    int axes[KD_MAX_RANK], naxes = r;
    for (int i = 0; i < r; i++)
        axes[i] = i;
    const int64_t *ax;
    int na = n->opset >= 18 ? attr_ints(n, "axes", &ax) : -1;
    if (na >= 0) {
        if (na > r)
            return diag_error(d, n, "axes has %d entries for an input of rank %d", na, r);
        int seen[KD_MAX_RANK] = {0};
        for (int i = 0; i < na; i++) {
            int a = norm_axis(d, n, ax[i], r);
            if (a < 0)
                return -1;
            if (seen[a]++)
                return diag_error(d, n, "axis %d appears twice in axes", a);
            axes[i] = a;
        }
        naxes = na;
    }

    for (int i = 0; i < r; i++) {
        sp->out[i] = sp->in[i];
        sp->scale[i] = 1.0;
    }

    /* scales: attribute (Upsample-7), input 1 (Upsample-9, Resize-10) or input 2 (Resize-11+) */
    double scales[KD_MAX_RANK];
    int nscales = -1;
    if (upsample && n->opset < 9) {
        const double *fs;
        int k = attr_floats(n, "scales", &fs);
        if (k < 0)
            return diag_error(d, n, "attribute 'scales' is missing");
        if (k != r)
            return diag_error(d, n, "scales has %d entries for an input of rank %d", k, r);
        for (int i = 0; i < k; i++)
            scales[i] = (double)(float)fs[i];
        nscales = k;
    } else {
        int si = legacy ? 1 : 2;
        if (node_in(g, n, si)) {
            Value *s = need_const_input(g, n, si, "scales", d);
            if (!s)
                return -1;
            int64_t k = value_numel(s);
            if (k > 0) {
                if (k != naxes)
                    return diag_error(d, n, "scales has %lld entries; expected %d", (long long)k, naxes);
                for (int i = 0; i < k; i++)
                    scales[i] = const_get_f64(s, i);
                nscales = (int)k;
            }
        }
    }
    int64_t sizes[KD_MAX_RANK];
    int nsizes = -1;
    if (!legacy && node_in(g, n, 3)) {
        Value *s = need_const_input(g, n, 3, "sizes", d);
        if (!s)
            return -1;
        int64_t k = value_numel(s);
        if (k > 0) {
            if (k != naxes)
                return diag_error(d, n, "sizes has %lld entries; expected %d", (long long)k, naxes);
            for (int i = 0; i < k; i++)
                sizes[i] = const_get_i64(s, i);
            nsizes = (int)k;
        }
    }
    if (nscales >= 0 && nsizes >= 0)
        return diag_error(d, n, "scales and sizes are both given; exactly one is allowed");
    if (nscales < 0 && nsizes < 0)
        return diag_error(d, n, "neither scales nor sizes is given");

    if (nscales >= 0) {
        for (int i = 0; i < naxes; i++) {
            int a = axes[i];
            if (!(scales[i] > 0) || !isfinite(scales[i]))
                return diag_error(d, n, "scale %g for axis %d is not a positive number", scales[i], a);
            double o = floor(scales[i] * (double)sp->in[a]);
            if (o > 1e15)
                return diag_error(d, n, "scale %g for axis %d gives an output that is too large", scales[i], a);
            sp->scale[a] = scales[i];
            sp->out[a] = (int64_t)o;
        }
    } else {
        for (int i = 0; i < naxes; i++) {
            if (sizes[i] <= 0)
                return diag_error(d, n, "size %lld for axis %d is not positive", (long long)sizes[i], axes[i]);
            sp->out[axes[i]] = sizes[i];
            sp->scale[axes[i]] = (double)sizes[i] / (double)sp->in[axes[i]];
        }
        const char *kp = n->opset >= 18 ? attr_string(n, "keep_aspect_ratio_policy", "stretch") : "stretch";
        if (strcmp(kp, "stretch") != 0) {
            int smaller = strcmp(kp, "not_larger") == 0;
            if (!smaller && strcmp(kp, "not_smaller") != 0)
                return diag_error(d, n, "keep_aspect_ratio_policy '%s' is not valid", kp);
            double s = sp->scale[axes[0]];
            for (int i = 1; i < naxes; i++) {
                double t = sp->scale[axes[i]];
                if (smaller ? t < s : t > s)
                    s = t;
            }
            for (int i = 0; i < naxes; i++) {
                sp->scale[axes[i]] = s;
                sp->out[axes[i]] = (int64_t)(s * (double)sp->in[axes[i]] + 0.5);
            }
        }
    }
    for (int i = 0; i < r; i++)
        if (sp->out[i] <= 0)
            return diag_unsupported(d, n, "output dimension %d would be empty", i);

    if (sp->ctm == CT_TF_CROP) {
        Value *roi = node_in(g, n, 1) ? need_const_input(g, n, 1, "roi", d) : NULL;
        if (!roi)
            return d->errors ? -1 : diag_error(d, n, "tf_crop_and_resize needs the roi input");
        if (value_numel(roi) != 2 * naxes)
            return diag_error(d, n, "roi has %lld entries; expected %d", (long long)value_numel(roi), 2 * naxes);
        for (int i = 0; i < naxes; i++) {
            sp->roi_start[axes[i]] = (float)const_get_f64(roi, i);
            sp->roi_end[axes[i]] = (float)const_get_f64(roi, naxes + i);
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- per-axis taps */

/* Coefficients for one output coordinate; returns their count (<= cap) or -1. */
static int coeffs(const ResizeSpec *sp, double ratio, double scale, int nearest_mode, double *c, int cap)
{
    double A = sp->cubic_a;
    if (sp->mode == RM_NEAREST) {
        int second;
        if (ratio == 1.0)
            second = 1;
        else if (nearest_mode == NM_ROUND_PREFER_FLOOR)
            second = ratio > 0.5;
        else if (nearest_mode == NM_ROUND_PREFER_CEIL)
            second = ratio >= 0.5;
        else
            second = nearest_mode == NM_CEIL;
        c[0] = !second;
        c[1] = second;
        return 2;
    }
    if (!sp->antialias) {
        if (sp->mode == RM_LINEAR) {
            c[0] = 1 - ratio;
            c[1] = ratio;
            return 2;
        }
        double r1 = ratio + 1, q = 1 - ratio, q1 = q + 1;
        c[0] = ((A * r1 - 5 * A) * r1 + 8 * A) * r1 - 4 * A;
        c[1] = ((A + 2) * ratio - (A + 3)) * ratio * ratio + 1;
        c[2] = ((A + 2) * q - (A + 3)) * q * q + 1;
        c[3] = ((A * q1 - 5 * A) * q1 + 8 * A) * q1 - 4 * A;
        return 4;
    }
    /* antialias: the filter stretched by 1/scale when downsampling */
    double s = scale < 1.0 ? scale : 1.0;
    int64_t start = (int64_t)(floor((sp->mode == RM_LINEAR ? -1.0 : -2.0) / s) + 1);
    int64_t count = 2 - 2 * start;
    if (count > cap)
        return -1;
    double sum = 0;
    for (int64_t i = 0; i < count; i++) {
        double t = fabs(((double)(start + i) - ratio) * s);
        double v;
        if (sp->mode == RM_LINEAR) {
            v = 1 - t;
            v = v < 0 ? 0 : v > 1 ? 1 : v;
        } else {
            double t2 = t * t, t3 = t * t2;
            if (t <= 1)
                v = (A + 2) * t3 - (A + 3) * t2 + 1;
            else if (t < 2)
                v = A * t3 - 5 * A * t2 + 8 * A * t - 4 * A;
            else
                v = 0;
        }
        c[i] = v;
        sum += v;
    }
    for (int64_t i = 0; i < count; i++)
        c[i] /= sum;
    return (int)count;
}

/* One axis' table: for each output coordinate, K source indices and weights,
 * plus whether the coordinate lies outside (tf_crop_and_resize extrapolation). */
typedef struct AxisTaps {
    int64_t in, out;
    int K;
    int64_t *idx;            /* out*K source indices in [0, in) */
    double *w;               /* out*K weights */
    unsigned char *inside;   /* out flags; NULL when all inside */
    int identity, gather;    /* gather: K == 1 and all weights 1 */
} AxisTaps;

static int axis_taps(Graph *g, const Node *n, Diag *d, const ResizeSpec *sp, int a, AxisTaps *t)
{
    int64_t in = sp->in[a], out = sp->out[a];
    double s = sp->scale[a], ow = s * (double)in, fin = (double)in;
    int cap = 8;
    if (sp->antialias && s < 1.0) {
        double c = 2.0 * ceil((sp->mode == RM_LINEAR ? 1.0 : 2.0) / s) + 4;
        if (c > 1e6)
            return diag_unsupported(d, n, "antialias filter for scale %g is too wide", s);
        cap = (int)c;
    }
    int nm = sp->nearest_mode;
    if (nm == NM_SIMPLE) /* Upsample and Resize-10, as onnxruntime: floor, ceil when downsampling */
        nm = s < 1.0 ? NM_CEIL : NM_FLOOR;
    double *c = arena_array(g->arena, (size_t)cap, sizeof *c);
    int64_t *ci = arena_array(g->arena, (size_t)cap, sizeof *ci);
    int64_t *allidx = arena_array(g->arena, (size_t)(out * cap), sizeof *allidx);
    double *allw = arena_array(g->arena, (size_t)(out * cap), sizeof *allw);
    int *cnt = arena_array(g->arena, (size_t)out, sizeof *cnt);
    unsigned char *inside = arena_array(g->arena, (size_t)out, 1);
    if (!c || !ci || !allidx || !allw || !cnt || !inside)
        return diag_error(d, n, "out of memory");
    int any_outside = 0, K = 1;
    for (int64_t o = 0; o < out; o++) {
        double x = (double)o, xo;
        inside[o] = 1;
        switch (sp->ctm) {
        case CT_ALIGN_CORNERS:
            xo = ow == 1 ? 0.0 : (double)(o * (in - 1)) / (ow - 1);
            break;
        case CT_ASYMMETRIC:
            xo = x / s;
            break;
        case CT_TF_CROP: {
            float span = sp->roi_end[a] - sp->roi_start[a];
            if (ow == 1)
                xo = (double)span * (fin - 1) / 2;
            else
                xo = x * (double)span * (fin - 1) / (ow - 1);
            xo += (double)sp->roi_start[a] * (fin - 1);
            if (xo < 0 || xo > fin - 1) {
                inside[o] = 0;
                any_outside = 1;
                cnt[o] = 0;
                continue;
            }
            break;
        }
        case CT_TF_HALF_PIXEL_NN:
            xo = (x + 0.5) / s;
            break;
        case CT_PYTORCH_HALF_PIXEL:
            xo = ow == 1 ? -0.5 : (x + 0.5) / s - 0.5;
            break;
        case CT_HALF_PIXEL_SYM: {
            double adjustment = (double)out / ow;
            double center = fin / 2;
            double offset = center * (1 - adjustment);
            xo = offset + (x + 0.5) / s - 0.5;
            break;
        }
        default:
            xo = (x + 0.5) / s - 0.5;
            break;
        }
        if (!isfinite(xo) || fabs(xo) > 1e15)
            return diag_error(d, n, "coordinate transform for axis %d gives %g", a, xo);
        double fl = floor(xo);
        double ratio = xo == fl ? 1.0 : xo - fl;
        int k = coeffs(sp, ratio, s, nm, c, cap);
        if (k < 0)
            return diag_unsupported(d, n, "antialias filter for scale %g is too wide", s);
        /* the k nearest indices to xo in the edge-padded axis, ties to the smaller */
        int64_t pad = (k + 1) / 2, L = in + 2 * pad;
        double xp = xo + (double)pad;
        int64_t lo = (int64_t)floor(xp) - k - 1;
        if (lo > L - (2 * k + 3))
            lo = L - (2 * k + 3);
        if (lo < 0)
            lo = 0;
        int64_t hi = lo + 2 * k + 3;
        if (hi > L)
            hi = L;
        int m = 0;
        for (int64_t i = lo; i < hi; i++) {
            /* insertion into the sorted-by-(distance, index) list, kept to k entries */
            double di = fabs(xp - (double)i);
            int p = m;
            while (p > 0 && fabs(xp - (double)ci[p - 1]) > di)
                p--;
            if (p >= k)
                continue;
            int top = m < k ? m : k - 1;
            for (int q = top; q > p; q--)
                ci[q] = ci[q - 1];
            ci[p] = i;
            if (m < k)
                m++;
        }
        if (m != k)
            return diag_error(d, n, "axis %d of size %lld is too small for the interpolation", a, (long long)in);
        /* ascending index order, as the reference pairs coefficients with sorted indices */
        for (int i = 1; i < k; i++)
            for (int j = i; j > 0 && ci[j - 1] > ci[j]; j--) {
                int64_t tmp = ci[j];
                ci[j] = ci[j - 1];
                ci[j - 1] = tmp;
            }
        if (sp->exclude_outside) {
            double sum = 0;
            for (int i = 0; i < k; i++) {
                int64_t src = ci[i] - pad;
                if (src < 0 || src >= in)
                    c[i] = 0;
                sum += c[i];
            }
            for (int i = 0; i < k && sum != 0; i++) /* all taps outside: keep the zeros, not 0/0 */
                c[i] /= sum;
        }
        /* clamp to the edge, merge equal sources, drop zero weights */
        int64_t *ix = allidx + o * cap;
        double *wt = allw + o * cap;
        int u = 0;
        for (int i = 0; i < k; i++) {
            int64_t src = ci[i] - pad;
            src = src < 0 ? 0 : src >= in ? in - 1 : src;
            if (c[i] == 0)
                continue;
            int j = 0;
            while (j < u && ix[j] != src)
                j++;
            if (j == u) {
                ix[u] = src;
                wt[u++] = c[i];
            } else {
                wt[j] += c[i];
            }
        }
        if (u == 1 && fabs(wt[0] - 1.0) < 1e-12)
            wt[0] = 1.0;
        cnt[o] = u;
        if (u > K)
            K = u;
    }
    t->in = in;
    t->out = out;
    t->K = K;
    t->idx = arena_array(g->arena, (size_t)(out * K), sizeof *t->idx);
    t->w = arena_array(g->arena, (size_t)(out * K), sizeof *t->w);
    if (!t->idx || !t->w)
        return diag_error(d, n, "out of memory");
    t->inside = any_outside ? inside : NULL;
    t->gather = K == 1;
    for (int64_t o = 0; o < out; o++) {
        for (int i = 0; i < K; i++) {
            int have = i < cnt[o];
            t->idx[o * K + i] = have ? allidx[o * cap + i] : (cnt[o] ? allidx[o * cap] : 0);
            t->w[o * K + i] = have ? allw[o * cap + i] : 0.0;
        }
        if (K == 1 && (cnt[o] != 1 || t->w[o] != 1.0) && inside[o])
            t->gather = 0;
    }
    t->identity = t->gather && !any_outside && in == out;
    for (int64_t o = 0; t->identity && o < out; o++)
        if (t->idx[o] != o)
            t->identity = 0;
    return 0;
}

/* ---------------------------------------------------------------- infer */

static int infer_resize(Graph *g, Node *n, Diag *d)
{
    ResizeSpec sp;
    if (resize_spec(g, n, d, &sp))
        return -1;
    const Value *x = node_in(g, n, 0);
    value_set_shape(node_out(g, n, 0), x->dtype, sp.rank, sp.out);
    return 0;
}

/* ---------------------------------------------------------------- emit */

static void emit_table_i(Writer *w, const char *ctype, const char *name, const int64_t *v, int64_t count, int64_t mul)
{
    w_line(w, "static const %s %s[%" PRId64 "] = {", ctype, name, count);
    w->indent++;
    for (int64_t i = 0; i < count; i++) {
        w_printf(w, "%" PRId64 "%s", v[i] * mul, i + 1 < count ? "," : "");
        w_puts(w, (i % 16 == 15 || i + 1 == count) ? "\n" : " ");
    }
    w->indent--;
    w_line(w, "};");
}

static void emit_table_f(Writer *w, DType ct, const char *name, const double *v, int64_t count)
{
    w_line(w, "static const %s %s[%" PRId64 "] = {", dtype_ctype(ct), name, count);
    w->indent++;
    for (int64_t i = 0; i < count; i++) {
        em_literal(w, ct, v[i]);
        w_puts(w, i + 1 < count ? "," : "");
        w_puts(w, (i % 8 == 7 || i + 1 == count) ? "\n" : " ");
    }
    w->indent--;
    w_line(w, "};");
}

static void emit_load(Writer *w, DType dt, const char *expr)
{
    if (dt == DT_FLOAT16)
        w_printf(w, "kd_h2f(%s)", expr);
    else if (dt == DT_BFLOAT16)
        w_printf(w, "kd_bf2f(%s)", expr);
    else if (dt == DT_FLOAT || dt == DT_DOUBLE)
        w_puts(w, expr);
    else
        w_printf(w, "(double)%s", expr);
}

/* y0[yo] = value of the compute-type expression in variable v, converted to dt. */
static void emit_store(Writer *w, DType dt, const char *v)
{
    if (dt == DT_FLOAT || dt == DT_DOUBLE) {
        w_line(w, "y0[yo] = %s;", v);
    } else if (dt == DT_FLOAT16) {
        w_line(w, "y0[yo] = kd_f2h(%s);", v);
    } else if (dt == DT_BFLOAT16) {
        w_line(w, "y0[yo] = kd_f2bf(%s);", v);
    } else {
        /* as the reference: truncation toward zero; saturated instead of undefined */
        const char *ct = dtype_ctype(dt);
        double lo, hi;
        switch (dt) {
        case DT_INT8: lo = -128.0; hi = 127.0; break;
        case DT_UINT8: lo = 0; hi = 255.0; break;
        case DT_INT16: lo = -32768.0; hi = 32767.0; break;
        case DT_UINT16: lo = 0; hi = 65535.0; break;
        case DT_INT32: lo = -2147483648.0; hi = 2147483647.0; break;
        case DT_UINT32: lo = 0; hi = 4294967295.0; break;
        case DT_UINT64: lo = 0; hi = 18446744073709549568.0; break;
        default: lo = -9223372036854775808.0; hi = 9223372036854774784.0; break;
        }
        w_line(w, "y0[yo] = %s < %.1f ? (%s)%.1f : %s > %.1f ? (%s)%.1f : (%s)%s;",
               v, lo, ct, lo, v, hi, ct, hi, ct, v);
    }
}

static int emit_resize(Emitter *e, const Node *n, Diag *d)
{
    Graph *g = (Graph *)e->g;
    Writer *w = e->w;
    ResizeSpec sp;
    if (resize_spec(g, n, d, &sp))
        return -1;
    const Value *x = node_in(g, n, 0);
    DType dt = x->dtype;
    const char *ctype = dtype_ctype(dt);
    if (!ctype)
        return err_dtype(d, n, n->op_type, dt);
    AxisTaps taps[KD_MAX_RANK];
    int r = sp.rank, weighted = 0, outside = 0;
    for (int a = 0; a < r; a++) {
        if (axis_taps(g, n, d, &sp, a, &taps[a]))
            return -1;
        if (!taps[a].gather)
            weighted++;
        if (taps[a].inside)
            outside = 1;
    }
    /* compute type for blending */
    DType ct = dt == DT_DOUBLE || dtype_is_int(dt) ? DT_DOUBLE : DT_FLOAT;
    if (weighted || outside) {
        if (dt == DT_BOOL || (!dtype_is_float(dt) && !dtype_is_int(dt) && dt != DT_FLOAT16 && dt != DT_BFLOAT16))
            return err_dtype(d, n, "interpolating Resize", dt);
        if (dt == DT_FLOAT16)
            e->prelude |= PRE_HALF;
        if (dt == DT_BFLOAT16)
            e->prelude |= PRE_BF16;
    }
    for (int i = 1; i < n->ninputs; i++)
        if (node_in(g, n, i))
            w_line(w, "(void)x%d;", i);

    int64_t ist[KD_MAX_RANK], ost[KD_MAX_RANK];
    int64_t in_numel = shape_strides(r, sp.in, ist);
    shape_strides(r, sp.out, ost);
    const char *itype = in_numel > INT32_MAX ? "int64_t" : "int32_t";

    /* tables */
    for (int a = 0; a < r; a++) {
        AxisTaps *t = &taps[a];
        if (t->identity)
            continue;
        char name[32];
        snprintf(name, sizeof name, "ix%d", a);
        emit_table_i(w, itype, name, t->idx, t->out * t->K, ist[a]);
        if (!t->gather) {
            snprintf(name, sizeof name, "wt%d", a);
            emit_table_f(w, ct, name, t->w, t->out * t->K);
        }
        if (t->inside) {
            w_line(w, "static const unsigned char in%d[%" PRId64 "] = {", a, t->out);
            w->indent++;
            for (int64_t o = 0; o < t->out; o++)
                w_printf(w, "%d%s%s", t->inside[o], o + 1 < t->out ? "," : "", (o % 32 == 31 || o + 1 == t->out) ? "\n" : " ");
            w->indent--;
            w_line(w, "};");
        }
    }

    /* loop levels: runs of identity axes merge into one loop */
    int opened = 0;
    const char *xo_prev = "0", *yo_prev = "0";
    char xo_name[KD_MAX_RANK][16], yo_name[KD_MAX_RANK][16];
    for (int a = 0; a < r;) {
        int b = a;
        int64_t size = taps[a].out;
        if (taps[a].identity)
            while (b + 1 < r && taps[b + 1].identity)
                size *= taps[++b].out;
        char var[16];
        snprintf(var, sizeof var, "o%d", b);
        snprintf(xo_name[b], sizeof xo_name[b], "xo%d", b);
        snprintf(yo_name[b], sizeof yo_name[b], "yo%d", b);
        if (size > 1 || !taps[b].identity) {
            em_for(w, var, size);
            opened++;
            w_line(w, "const int64_t %s = %s + %s * %" PRId64 ";", yo_name[b], yo_prev, var, ost[b]);
            if (taps[b].identity)
                w_line(w, "const int64_t %s = %s + %s * %" PRId64 ";", xo_name[b], xo_prev, var, ist[b]);
            else if (taps[b].gather)
                w_line(w, "const int64_t %s = %s + ix%d[%s];", xo_name[b], xo_prev, b, var);
            else
                snprintf(xo_name[b], sizeof xo_name[b], "%s", xo_prev);
            xo_prev = xo_name[b];
            yo_prev = yo_name[b];
        }
        a = b + 1;
    }
    w_line(w, "const int64_t yo = %s;", yo_prev);
    if (outside) {
        w_puts(w, "if (!(");
        int first = 1;
        for (int a = 0; a < r; a++)
            if (taps[a].inside) {
                w_printf(w, "%sin%d[o%d]", first ? "" : " && ", a, a);
                first = 0;
            }
        w_puts(w, ")) {\n");
        w->indent++;
        w_puts(w, "y0[yo] = ");
        if (dt == DT_FLOAT16 || dt == DT_BFLOAT16) {
            w_printf(w, "%s(", dt == DT_FLOAT16 ? "kd_f2h" : "kd_f2bf");
            w_float(w, (float)sp.extrapolation);
            w_puts(w, ");\n");
        } else {
            w_printf(w, "(%s)", ctype);
            em_literal(w, dt, dtype_is_int(dt) ? trunc(sp.extrapolation) : sp.extrapolation);
            w_puts(w, ";\n");
        }
        w->indent--;
        w_open(w, "} else");
        opened++;
    }
    if (!weighted) {
        w_line(w, "y0[yo] = x0[%s];", xo_prev);
    } else {
        /* nested tap sums, outer axes last as the reference does */
        int wa[KD_MAX_RANK], nw = 0;
        for (int a = 0; a < r; a++)
            if (!taps[a].gather)
                wa[nw++] = a;
        const char *cts = dtype_ctype(ct);
        for (int j = 0; j < nw; j++) {
            int a = wa[j];
            w_line(w, "%s s%d = 0;", cts, j);
            w_open(w, "for (int64_t k%d = 0; k%d < %d; ++k%d)", j, j, taps[a].K, j);
        }
        w_printf(w, "s%d += wt%d[o%d * %d + k%d] * ", nw - 1, wa[nw - 1], wa[nw - 1], taps[wa[nw - 1]].K, nw - 1);
        char expr[512];
        int len = snprintf(expr, sizeof expr, "x0[%s", xo_prev);
        for (int j = 0; j < nw; j++)
            len += snprintf(expr + len, sizeof expr - (size_t)len, " + ix%d[o%d * %d + k%d]", wa[j], wa[j], taps[wa[j]].K, j);
        snprintf(expr + len, sizeof expr - (size_t)len, "]");
        emit_load(w, dt, expr);
        w_puts(w, ";\n");
        for (int j = nw - 1; j >= 0; j--) {
            w_close(w);
            if (j > 0)
                w_line(w, "s%d += wt%d[o%d * %d + k%d] * s%d;", j - 1, wa[j - 1], wa[j - 1], taps[wa[j - 1]].K, j - 1, j);
        }
        emit_store(w, dt, "s0");
    }
    em_close(w, opened);
    return 0;
}

/* ---------------------------------------------------------------- GridSample */

/* Sampling positions come from the grid input at run time, so the emitted code
 * computes them per output point, following the reference (op_grid_sample.py,
 * itself PyTorch's GridSampler): denormalise, round half to even for nearest
 * (as the test data has it in 2-D and 3-D), bring outside coordinates back for border/reflection
 * padding, then blend separable taps whose indices go through the padding rule. */

enum { GP_ZEROS, GP_BORDER, GP_REFLECTION };

static int gridsample_spec(Graph *g, const Node *n, Diag *d, int *mode, int *pad, int *align)
{
    const char *m = attr_string(n, "mode", n->opset < 20 ? "bilinear" : "linear");
    if (strcmp(m, "nearest") == 0)
        *mode = RM_NEAREST;
    else if (strcmp(m, "linear") == 0 || strcmp(m, "bilinear") == 0)
        *mode = RM_LINEAR;
    else if (strcmp(m, "cubic") == 0 || strcmp(m, "bicubic") == 0)
        *mode = RM_CUBIC;
    else
        return diag_error(d, n, "mode '%s' is not valid (expected linear, nearest or cubic)", m);
    const char *p = attr_string(n, "padding_mode", "zeros");
    static const char *const pads[] = {"zeros", "border", "reflection"};
    *pad = pick(p, pads, 3);
    if (*pad < 0)
        return diag_error(d, n, "padding_mode '%s' is not valid (expected zeros, border or reflection)", p);
    *align = attr_int(n, "align_corners", 0) != 0;
    Value *x = need_input(g, n, 0, d), *grid = x ? need_input(g, n, 1, d) : NULL;
    if (!grid)
        return -1;
    int r = x->rank - 2;
    if (r < 1 || grid->rank != x->rank || grid->dims[0] != x->dims[0] || grid->dims[grid->rank - 1] != r) {
        char sx[128], sg[128];
        return diag_error(d, n, "grid %s does not fit input %s (expected [N, spatial..., %d])",
                          value_type_str(grid, sg, sizeof sg), value_type_str(x, sx, sizeof sx), r);
    }
    if (n->opset < 20 && r != 2)
        return diag_error(d, n, "GridSample-%d takes 4-D inputs only", n->opset);
    return 0;
}

static int infer_gridsample(Graph *g, Node *n, Diag *d)
{
    int mode, pad, align;
    if (gridsample_spec(g, n, d, &mode, &pad, &align))
        return -1;
    const Value *x = node_in(g, n, 0), *grid = node_in(g, n, 1);
    int64_t dims[KD_MAX_RANK];
    dims[0] = x->dims[0];
    dims[1] = x->dims[1];
    for (int i = 1; i < grid->rank - 1; i++)
        dims[i + 1] = grid->dims[i];
    value_set_shape(node_out(g, n, 0), x->dtype, x->rank, dims);
    return 0;
}

/* In place on the double variable v: reflect into [mn, mx] as the reference's _gs_reflect. */
static void emit_reflect(Writer *w, const char *v, double mn, double mx)
{
    w_open(w, "if (%s < %.17g)", v, mn);
    w_line(w, "const double dx = %.17g - %s;", mn, v);
    w_line(w, "const int64_t nr = (int64_t)(dx / %.17g);", mx - mn);
    w_line(w, "const double rr = dx - (double)nr * %.17g;", mx - mn);
    w_line(w, "%s = nr %% 2 == 0 ? %.17g + rr : %.17g - rr;", v, mn, mx);
    w->indent--;
    w_open(w, "} else if (%s > %.17g)", v, mx);
    w_line(w, "const double dx = %s - %.17g;", v, mx);
    w_line(w, "const int64_t nr = (int64_t)(dx / %.17g);", mx - mn);
    w_line(w, "const double rr = dx - (double)nr * %.17g;", mx - mn);
    w_line(w, "%s = nr %% 2 == 0 ? %.17g - rr : %.17g + rr;", v, mx, mn);
    w_close(w);
}

static int emit_gridsample(Emitter *e, const Node *n, Diag *d)
{
    Graph *g = (Graph *)e->g;
    Writer *w = e->w;
    int mode, pad, align;
    if (gridsample_spec(g, n, d, &mode, &pad, &align))
        return -1;
    const Value *x = node_in(g, n, 0), *grid = node_in(g, n, 1);
    if (x->dtype != DT_FLOAT && x->dtype != DT_DOUBLE)
        return err_dtype(d, n, "GridSample input", x->dtype);
    if (grid->dtype != DT_FLOAT && grid->dtype != DT_DOUBLE)
        return err_dtype(d, n, "GridSample grid", grid->dtype);
    const char *ct = dtype_ctype(x->dtype);
    int r = x->rank - 2, K = mode == RM_NEAREST ? 1 : mode == RM_LINEAR ? 2 : 4;
    int64_t N = x->dims[0], C = x->dims[1], P = 1, S = 1;
    int64_t ist[KD_MAX_RANK];
    shape_strides(r, x->dims + 2, ist);
    for (int i = 0; i < r; i++) {
        P *= grid->dims[1 + i];
        S *= x->dims[2 + i];
    }
    em_for(w, "b", N);
    em_for(w, "p", P);
    w_line(w, "const int64_t gq = (b * %" PRId64 " + p) * %d;", P, r);
    for (int i = 0; i < r; i++) {
        int64_t L = x->dims[2 + i];
        double mn = align ? 0.0 : -0.5, mx = align ? (double)L - 1 : (double)L - 0.5;
        /* spatial dim i is grid component r-1-i */
        w_line(w, "%s c%d[%d];", ct, i, K);
        w_line(w, "int64_t q%d[%d];", i, K);
        w_puts(w, "{\n");
        w->indent++;
        if (align)
            w_line(w, "double v = (double)(float)(((double)x1[gq + %d] + 1) / 2.0 * %" PRId64 ");", r - 1 - i, L - 1);
        else
            w_line(w, "double v = (double)(float)((((double)x1[gq + %d] + 1) * %" PRId64 " - 1) / 2.0);", r - 1 - i, L);
        /* NaN and huge values made harmless: far outside is outside for every padding mode */
        w_line(w, "v = v != v || v < -1e15 ? -1e15 : v > 1e15 ? 1e15 : v;");
        if (mode == RM_NEAREST)
            w_line(w, "v = rint(v);");
        if (pad == GP_BORDER) {
            w_line(w, "v = v < %.17g || v > %.17g ? (v < 0 ? 0 : v > %" PRId64 " ? %" PRId64 " : v) : v;", mn, mx, L - 1, L - 1);
        } else if (pad == GP_REFLECTION) {
            emit_reflect(w, "v", mn, mx);
            w_line(w, "v = (double)(float)v;");
        }
        w_line(w, "v = v < %" PRId64 " ? %" PRId64 " : v > %" PRId64 " ? %" PRId64 " : v;", -(L + 4), -(L + 4), L + 4, L + 4);
        if (mode == RM_NEAREST) {
            w_line(w, "const int64_t j0 = (int64_t)v;");
            w_line(w, "c%d[0] = 1;", i);
        } else {
            w_line(w, "const double f = floor(v);");
            w_line(w, "const double t = v - f;");
            w_line(w, "const int64_t j0 = (int64_t)f%s;", mode == RM_CUBIC ? " - 1" : "");
            if (mode == RM_LINEAR) {
                w_line(w, "c%d[0] = (%s)(1 - t);", i, ct);
                w_line(w, "c%d[1] = (%s)t;", i, ct);
            } else {
                w_line(w, "const double A = -0.75, t1 = t + 1, u = 1 - t, u1 = 2 - t;");
                w_line(w, "c%d[0] = (%s)(((A * t1 - 5 * A) * t1 + 8 * A) * t1 - 4 * A);", i, ct);
                w_line(w, "c%d[1] = (%s)(((A + 2) * t - (A + 3)) * t * t + 1);", i, ct);
                w_line(w, "c%d[2] = (%s)(((A + 2) * u - (A + 3)) * u * u + 1);", i, ct);
                w_line(w, "c%d[3] = (%s)(((A * u1 - 5 * A) * u1 + 8 * A) * u1 - 4 * A);", i, ct);
            }
        }
        w_open(w, "for (int k = 0; k < %d; ++k)", K);
        w_line(w, "int64_t j = j0 + k;");
        if (pad == GP_ZEROS) {
            w_open(w, "if (j < 0 || j >= %" PRId64 ")", L);
            w_line(w, "c%d[k] = 0;", i);
            w_line(w, "j = 0;");
            w_close(w);
        } else if (pad == GP_BORDER) {
            w_line(w, "j = j < 0 ? 0 : j >= %" PRId64 " ? %" PRId64 " : j;", L, L - 1);
        } else {
            w_line(w, "double fj = (double)j;");
            emit_reflect(w, "fj", mn, mx);
            w_line(w, "j = (int64_t)fj;");
            w_line(w, "j = j < 0 ? 0 : j >= %" PRId64 " ? %" PRId64 " : j;", L, L - 1);
        }
        w_line(w, "q%d[k] = j * %" PRId64 ";", i, ist[i]);
        w_close(w);
        w_close(w);
    }
    em_for(w, "ch", C);
    w_line(w, "const %s *restrict xs = x0 + (b * %" PRId64 " + ch) * %" PRId64 ";", ct, C, S);
    for (int i = 0; i < r; i++) {
        w_line(w, "%s s%d = 0;", ct, i);
        w_open(w, "for (int k%d = 0; k%d < %d; ++k%d)", i, i, K, i);
    }
    w_printf(w, "s%d += c%d[k%d] * xs[0", r - 1, r - 1, r - 1);
    for (int i = 0; i < r; i++)
        w_printf(w, " + q%d[k%d]", i, i);
    w_puts(w, "];\n");
    for (int i = r - 1; i >= 0; i--) {
        w_close(w);
        if (i > 0)
            w_line(w, "s%d += c%d[k%d] * s%d;", i - 1, i - 1, i - 1, i);
    }
    w_line(w, "y0[(b * %" PRId64 " + ch) * %" PRId64 " + p] = s0;", C, P);
    w_close(w);
    w_close(w);
    w_close(w);
    return 0;
}

static const OpDef op_gridsample = {
    .name = "GridSample", .domain = "", .since = 16,
    .min_inputs = 2, .max_inputs = 2, .min_outputs = 1, .max_outputs = 1,
    .infer = infer_gridsample, .emit = emit_gridsample,
    .summary = "sample the input at grid positions (nearest, linear, cubic; zeros, border, reflection padding)",
};

/* ---------------------------------------------------------------- AffineGrid */

/* size (constant) gives the output grid; the normalised base coordinates of each
 * axis are compile-time tables, theta is applied at run time in double precision
 * as the reference's float64 matmul. */

static int affinegrid_spec(Graph *g, const Node *n, Diag *d, int *r, int64_t *sz)
{
    Value *th = need_input(g, n, 0, d);
    if (!th)
        return -1;
    Value *s = need_const_input(g, n, 1, "size", d);
    if (!s)
        return -1;
    int k = const_ints(s, sz, KD_MAX_RANK);
    if (k != 4 && k != 5)
        return diag_error(d, n, "size has %d entries; expected 4 (N, C, H, W) or 5 (N, C, D, H, W)", k);
    for (int i = 0; i < k; i++)
        if (sz[i] <= 0)
            return diag_unsupported(d, n, "size entry %d is %lld; only positive sizes are supported", i, (long long)sz[i]);
    *r = k - 2;
    if (th->rank != 3 || th->dims[0] != sz[0] || th->dims[1] != *r || th->dims[2] != *r + 1) {
        char st[128];
        return diag_error(d, n, "theta %s does not fit size (expected [%lld, %d, %d])", value_type_str(th, st, sizeof st),
                          (long long)sz[0], *r, *r + 1);
    }
    return 0;
}

static int infer_affinegrid(Graph *g, Node *n, Diag *d)
{
    int r;
    int64_t sz[KD_MAX_RANK], dims[KD_MAX_RANK];
    if (affinegrid_spec(g, n, d, &r, sz))
        return -1;
    dims[0] = sz[0];
    for (int i = 0; i < r; i++)
        dims[1 + i] = sz[2 + i];
    dims[1 + r] = r;
    value_set_shape(node_out(g, n, 0), node_in(g, n, 0)->dtype, r + 2, dims);
    return 0;
}

static int emit_affinegrid(Emitter *e, const Node *n, Diag *d)
{
    Graph *g = (Graph *)e->g;
    Writer *w = e->w;
    int r;
    int64_t sz[KD_MAX_RANK];
    if (affinegrid_spec(g, n, d, &r, sz))
        return -1;
    DType dt = node_in(g, n, 0)->dtype;
    if (dt != DT_FLOAT && dt != DT_DOUBLE)
        return err_dtype(d, n, "AffineGrid", dt);
    int align = attr_int(n, "align_corners", 0) != 0;
    w_line(w, "(void)x1;");
    /* base coordinate tables, one per spatial axis (D, H, W order) */
    for (int i = 0; i < r; i++) {
        int64_t L = sz[2 + i];
        double *v = arena_array(g->arena, (size_t)L, sizeof *v);
        if (!v)
            return diag_error(d, n, "out of memory");
        for (int64_t j = 0; j < L; j++) {
            if (align)
                v[j] = L == 1 ? -1.0 : -1.0 + (double)j * (2.0 / (double)(L - 1));
            else
                v[j] = (-1.0 + 2.0 / (double)L / 2) + (double)j * (2.0 / (double)L);
        }
        char name[16];
        snprintf(name, sizeof name, "base%d", i);
        emit_table_f(w, DT_DOUBLE, name, v, L);
    }
    int64_t P = 1;
    for (int i = 0; i < r; i++)
        P *= sz[2 + i];
    em_for(w, "b", sz[0]);
    w_line(w, "const %s *restrict th = x0 + b * %d;", dtype_ctype(dt), r * (r + 1));
    w_line(w, "int64_t p = b * %" PRId64 ";", P * r);
    for (int i = 0; i < r; i++) {
        char var[8];
        snprintf(var, sizeof var, "i%d", i);
        em_for(w, var, sz[2 + i]);
    }
    /* homogeneous base point is (x, y[, z], 1): x from the last axis */
    w_open(w, "for (int j = 0; j < %d; ++j)", r);
    w_puts(w, "y0[p++] = (");
    w_printf(w, "%s)(", dtype_ctype(dt));
    for (int k = 0; k < r; k++)
        w_printf(w, "(double)th[j * %d + %d] * base%d[i%d] + ", r + 1, k, r - 1 - k, r - 1 - k);
    w_printf(w, "(double)th[j * %d + %d]);\n", r + 1, r);
    w_close(w);
    em_close(w, r + 1);
    return 0;
}

static const OpDef op_affinegrid = {
    .name = "AffineGrid", .domain = "", .since = 20,
    .min_inputs = 2, .max_inputs = 2, .min_outputs = 1, .max_outputs = 1,
    .infer = infer_affinegrid, .emit = emit_affinegrid,
    .summary = "sampling grid of an affine transform (2-D or 3-D; constant size)",
};

static const OpDef op_resize = {
    .name = "Resize", .domain = "", .since = 10,
    .min_inputs = 1, .max_inputs = 4, .min_outputs = 1, .max_outputs = 1,
    .infer = infer_resize, .emit = emit_resize,
    .summary = "resize with nearest, linear or cubic interpolation (constant scales/sizes)",
};

static const OpDef op_upsample = {
    .name = "Upsample", .domain = "", .since = 7,
    .min_inputs = 1, .max_inputs = 2, .min_outputs = 1, .max_outputs = 1,
    .infer = infer_resize, .emit = emit_resize,
    .summary = "upsample with nearest or linear interpolation (constant scales)",
};

const OpDef *const ops_resize[] = {&op_resize, &op_upsample, &op_gridsample, &op_affinegrid, NULL};

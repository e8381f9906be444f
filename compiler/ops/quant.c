/* Quantization operators: QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear,
 * the integer products MatMulInteger and ConvInteger, their requantizing forms
 * QLinearMatMul and QLinearConv, and kdcc.FusedConvInteger (ConvInteger with its
 * Cast to float and the steps after it, made by passes/fuse.c).
 *
 * Quantized element types: int8, uint8, int16, uint16 (and int32 as DequantizeLinear's
 * input). The 8-bit float, 4-bit and 2-bit types have no representation in kdcc
 * (the importer refuses them), and an output_dtype naming one is refused here.
 *
 * Rounding is half to even, written out (floor, then compare the remainder with one
 * half) rather than through rint/nearbyint, whose result depends on the floating-point
 * environment's rounding mode: the rounding to an integer is the same whatever mode
 * the caller runs in (the division x / scale before it still rounds in that mode;
 * tests/quant runs exact ties under all four). Folding at compile time uses the same arithmetic in the same
 * types, so a folded constant equals what the emitted code would have computed.
 *
 * The integer products run as float arithmetic on exact integers where the target
 * vectorises and the node gets scratch memory: (x - zx) * (w - zw) and sums of fewer
 * than 2^24 / (bx * bw) such products are exact in float, so chunks of that many are
 * summed in float (register-blocked kernels like the float Conv's and Gemm's) and
 * added up in int32; the results are the integer kernels' bit for bit (see "exact-float
 * planes" and "exact-float MatMul" below). Elsewhere (Cortex-M, no scratch) the integer
 * kernels: MatMulInteger and QLinearMatMul share one, whose int32 accumulators are
 * stored or requantized; ConvInteger accumulates in its int32 output planes and
 * QLinearConv, which has no int32 output to accumulate in, sums each output pixel
 * in a local (both take their geometry from the Conv family's conv_geom). The
 * QLinear forms requantize as y = saturate(round(acc * (sa * sb / sy) + zy)),
 * computed in double like the ONNX reference (int32 times a float array is float64
 * in numpy), with the multiplier rounded in the scales' own type.
 */
#include "compiler/ir/target.h"
#include "compiler/ops/conv_internal.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>

/* ---------------------------------------------------------------- shared */

/* Range of a quantized integer type; 0 if t is not one. */
static int qrange(DType t, int64_t *lo, int64_t *hi)
{
    switch (t) {
    case DT_UINT8: *lo = 0; *hi = 255; return 1;
    case DT_INT8: *lo = -128; *hi = 127; return 1;
    case DT_UINT16: *lo = 0; *hi = 65535; return 1;
    case DT_INT16: *lo = -32768; *hi = 32767; return 1;
    default: return 0;
    }
}

static int is_scale_type(DType t)
{
    return t == DT_FLOAT || t == DT_DOUBLE || t == DT_FLOAT16 || t == DT_BFLOAT16;
}

static int is_half(DType t) { return t == DT_FLOAT16 || t == DT_BFLOAT16; }

static int is_int8(DType t) { return t == DT_INT8 || t == DT_UINT8; }

/* Round half to even without the floating-point environment (see the file comment). */
static float round_even_f(float x)
{
    float r = floorf(x), diff = x - r;
    if (diff > 0.5f || (diff == 0.5f && fmodf(r, 2.0f) != 0.0f))
        r += 1.0f;
    return r;
}

static double round_even_d(double x)
{
    double r = floor(x), diff = x - r;
    if (diff > 0.5 || (diff == 0.5 && fmod(r, 2.0) != 0.0))
        r += 1.0;
    return r;
}

/* A value rounded to the half type t (float16/bfloat16) and back, as the C code does. */
static float through_half(DType t, float v)
{
    if (t == DT_FLOAT16)
        return kd_half_to_float(kd_float_to_half(v));
    return kd_bf16_to_float(kd_float_to_bf16(v));
}

/* The C expression reading element `idx` of parameter `p` (dtype t) as a number of C
 * type ct ("float" or "double"): half types through the prelude's converters. */
static const char *ld(Emitter *e, char *buf, size_t n, DType t, const char *ct, const char *p, const char *idx)
{
    if (t == DT_FLOAT16) {
        e->prelude |= PRE_HALF;
        snprintf(buf, n, "(%s)kd_h2f(%s[%s])", ct, p, idx);
    } else if (t == DT_BFLOAT16) {
        e->prelude |= PRE_BF16;
        snprintf(buf, n, "(%s)kd_bf2f(%s[%s])", ct, p, idx);
    } else {
        snprintf(buf, n, "(%s)%s[%s]", ct, p, idx);
    }
    return buf;
}

/* Float element `v` rounded through half type t in emitted code: "kd_h2f(kd_f2h(v))". */
static void w_through_half(Emitter *e, DType t, const char *var)
{
    if (t == DT_FLOAT16) {
        e->prelude |= PRE_HALF;
        w_line(e->w, "%s = kd_h2f(kd_f2h(%s));", var, var);
    } else if (t == DT_BFLOAT16) {
        e->prelude |= PRE_BF16;
        w_line(e->w, "%s = kd_bf2f(kd_f2bf(%s));", var, var);
    }
}

/* `float r = round half to even of v` in emitted code (r, v: C names; ct float or double). */
static void w_round_even(Emitter *e, const char *ct, const char *r, const char *v)
{
    if (strcmp(ct, "float") == 0) {
        e->prelude |= PRE_ROUND_EVEN;
        w_line(e->w, "%s %s = kd_rintf(%s);", ct, r, v);
        return;
    }
    /* the prelude has only the float form; the double one written out in place */
    w_line(e->w, "%s %s = floor(%s);", ct, r, v);
    w_line(e->w, "if (%s - %s > 0.5 || (%s - %s == 0.5 && fmod(%s, 2.0) != 0.0))", v, r, v, r, r);
    w_line(e->w, "    %s += 1.0;", r);
}

/* Mark every parameter used (degenerate shapes whose body reads nothing). */
static int void_params(Emitter *e, const Node *n)
{
    for (int i = 0; i < n->ninputs; i++)
        if (node_in(e->g, n, i))
            w_line(e->w, "(void)x%d;", i);
    for (int i = 0; i < n->noutputs; i++)
        if (node_out(e->g, n, i))
            w_line(e->w, "(void)y%d;", i);
    return 0;
}

/* ---------------------------------------------------------------- granularity */

/* How scale and zero point cover x: one for all (per tensor), one per index along
 * `axis` (per axis), or one per block of `bs` indices along axis (blocked, the scale
 * having x's shape with that dim ceil(A / bs)). Elements are visited as
 * x[(o * A + a) * I + r]. */
typedef struct QGran {
    int mode; /* 0 per tensor, 1 per axis, 2 blocked */
    int64_t O, A, I, SA, bs;
} QGran;

static int qgran(const Graph *g, const Node *n, const Value *x, int si, int zi, QGran *q, Diag *d)
{
    const Value *s = node_in(g, n, si), *z = node_in(g, n, zi);
    memset(q, 0, sizeof *q);
    q->O = q->A = q->I = q->SA = 1;
    if (z) {
        if (z->rank != s->rank || memcmp(z->dims, s->dims, sizeof(int64_t) * (size_t)s->rank) != 0)
            return diag_error(d, n, "the zero point's shape must be the scale's");
    }
    int64_t bs = attr_int(n, "block_size", 0);
    if (bs < 0)
        return diag_error(d, n, "block_size must be positive, got %" PRId64, bs);
    int64_t ns = value_numel(s);
    if (ns == 1 && s->rank <= 1) {
        q->A = value_numel(x);
        return 0;
    }
    if (x->rank == 0)
        return diag_error(d, n, "a scalar input takes a scalar scale");
    int axis = norm_axis(d, n, attr_int(n, "axis", 1), x->rank);
    if (axis < 0)
        return -1;
    q->O = dims_numel(axis, x->dims);
    q->A = x->dims[axis];
    q->I = dims_numel(x->rank - axis - 1, x->dims + axis + 1);
    if (!bs) {
        if (s->rank != 1 || s->dims[0] != q->A)
            return diag_error(d, n, "per-axis scale must have shape [%" PRId64 "] (dim %d of the input), not rank %d with %" PRId64 " elements",
                              q->A, axis, s->rank, ns);
        q->mode = 1;
        q->SA = q->A;
        return 0;
    }
    q->mode = 2;
    q->bs = bs;
    q->SA = (q->A + bs - 1) / bs;
    if (s->rank != x->rank)
        return diag_error(d, n, "blocked scale must have the input's rank %d, not %d", x->rank, s->rank);
    for (int i = 0; i < x->rank; i++)
        if (s->dims[i] != (i == axis ? q->SA : x->dims[i]))
            return diag_error(d, n, "blocked scale dim %d is %" PRId64 "; expected %" PRId64 " (block_size %" PRId64 " along axis %d)",
                              i, s->dims[i], i == axis ? q->SA : x->dims[i], bs, axis);
    return 0;
}

/* Index of the scale element for x element (o, a, r). */
static int64_t qgran_index(const QGran *q, int64_t o, int64_t a, int64_t r)
{
    switch (q->mode) {
    case 1: return a;
    case 2: return (o * q->SA + a / q->bs) * q->I + r;
    default: return 0;
    }
}

/* The loop nest over x's elements in emitted code. Inside, `i` is the flat index and
 * `s` (of C type ct, read from parameter sp of dtype st) and `z` (int32_t, parameter zp,
 * or 0 when zp is NULL) the element's scale and zero point. Returns blocks opened. */
static int qgran_loops(Emitter *e, const QGran *q, DType st, const char *ct, const char *sp, const char *zp)
{
    Writer *w = e->w;
    char buf[192], sidx[128];
    int open = 0;
    if (q->mode == 0) {
        w_line(w, "const %s s = %s;", ct, ld(e, buf, sizeof buf, st, ct, sp, "0"));
        w_line(w, "const int32_t z = %s;", zp ? (snprintf(sidx, sizeof sidx, "(int32_t)%s[0]", zp), sidx) : "0");
        em_for(w, "i", q->A);
        return 1;
    }
    em_for(w, "o", q->O);
    em_for(w, "a", q->A);
    open = 2;
    if (q->mode == 1)
        snprintf(sidx, sizeof sidx, "a");
    else {
        em_for(w, "r", q->I);
        open = 3;
        snprintf(sidx, sizeof sidx, "(o * %" PRId64 " + a / %" PRId64 ") * %" PRId64 " + r", q->SA, q->bs, q->I);
    }
    w_line(w, "const %s s = %s;", ct, ld(e, buf, sizeof buf, st, ct, sp, sidx));
    if (zp)
        w_line(w, "const int32_t z = (int32_t)%s[%s];", zp, sidx);
    else
        w_line(w, "const int32_t z = 0;");
    if (q->mode == 1) {
        em_for(w, "r", q->I);
        open = 3;
    }
    w_line(w, "const int64_t i = (o * %" PRId64 " + a) * %" PRId64 " + r;", q->A, q->I);
    return open;
}

/* ---------------------------------------------------------------- QuantizeLinear */

/* The type the division x / scale is done in: the precision attribute, else numpy's
 * promotion of x and the scale (a half type only when both are that type). */
static int quant_precision(const Node *n, DType xt, DType st, DType *out, Diag *d)
{
    int64_t p = attr_int(n, "precision", 0);
    if (p) {
        if (!is_scale_type((DType)p))
            return diag_unsupported(d, n, "precision %s is not supported (float, double, float16, bfloat16)", dtype_name((DType)p));
        *out = (DType)p;
        return 0;
    }
    if (xt == DT_DOUBLE || st == DT_DOUBLE)
        *out = DT_DOUBLE;
    else if (is_half(st) && xt == st)
        *out = st;
    else
        *out = DT_FLOAT;
    return 0;
}

static int infer_quantize(Graph *g, Node *n, Diag *d)
{
    Value *x = need_input(g, n, 0, d), *s = need_input(g, n, 1, d);
    if (!x || !s)
        return -1;
    const Value *z = node_in(g, n, 2);
    if (!is_scale_type(x->dtype) && x->dtype != DT_INT32)
        return err_dtype(d, n, "input x", x->dtype);
    if (!is_scale_type(s->dtype))
        return err_dtype(d, n, "scale", s->dtype);
    int64_t od = attr_int(n, "output_dtype", 0), lo = 0, hi = 0;
    DType yt = z ? z->dtype : od ? (DType)od : DT_UINT8;
    if (z && od && od != z->dtype)
        return diag_error(d, n, "output_dtype %s differs from the zero point's type %s", dtype_name((DType)od), dtype_name(z->dtype));
    if (!qrange(yt, &lo, &hi))
        return diag_unsupported(d, n, "quantizing to %s is not supported (int8, uint8, int16, uint16)", dtype_name(yt));
    DType pt;
    QGran q;
    if (quant_precision(n, x->dtype, s->dtype, &pt, d) || qgran(g, n, x, 1, 2, &q, d))
        return -1;
    value_set_shape(node_out(g, n, 0), yt, x->rank, x->dims);
    return 0;
}

/* x / s in precision pt, rounded half to even, plus z, saturated to [lo, hi]. */
static int64_t quantize_one(double xv, double sv, int64_t z, DType pt, int64_t lo, int64_t hi)
{
    double r;
    if (pt == DT_DOUBLE) {
        r = round_even_d(xv / sv);
    } else {
        float v = (float)xv / (float)sv;
        if (is_half(pt))
            v = through_half(pt, v);
        r = round_even_f(v);
    }
    /* clamp before the conversion (NaN to the low end), as the emitted code does */
    double l = (double)(lo - z), h = (double)(hi - z);
    r = r >= l ? (r <= h ? r : h) : l;
    return (int64_t)r + z;
}

static int fold_quantize(Graph *g, Node *n, Diag *d)
{
    if (!all_inputs_const(g, n))
        return 0;
    const Value *x = node_in(g, n, 0), *s = node_in(g, n, 1), *z = node_in(g, n, 2);
    Value *y = node_out(g, n, 0);
    DType pt, yt = y->dtype;
    QGran q;
    int64_t lo = 0, hi = 0;
    if (quant_precision(n, x->dtype, s->dtype, &pt, d) || qgran(g, n, x, 1, 2, &q, d) || !qrange(yt, &lo, &hi))
        return -1;
    void *out = value_make_const(g, y, yt, x->rank, x->dims);
    if (!out)
        return diag_error(d, n, "out of memory");
    for (int64_t o = 0; o < q.O; o++)
        for (int64_t a = 0; a < q.A; a++)
            for (int64_t r = 0; r < q.I; r++) {
                int64_t i = (o * q.A + a) * q.I + r, si = qgran_index(&q, o, a, r);
                /* x and the scale as the C code reads them: float, or double */
                double xv = const_get_f64(x, i), sv = const_get_f64(s, si);
                if (pt != DT_DOUBLE) {
                    xv = (float)xv;
                    sv = (float)sv;
                }
                int64_t zv = z ? const_get_i64(z, si) : 0;
                elem_set_i64(out, yt, i, quantize_one(xv, sv, zv, pt, lo, hi));
            }
    return 1;
}

static int emit_quantize(Emitter *e, const Node *n, Diag *d)
{
    const Graph *g = e->g;
    const Value *x = node_in(g, n, 0), *s = node_in(g, n, 1), *z = node_in(g, n, 2);
    const Value *y = node_out(g, n, 0);
    DType pt;
    QGran q;
    int64_t lo = 0, hi = 0;
    if (quant_precision(n, x->dtype, s->dtype, &pt, d) || qgran(g, n, x, 1, 2, &q, d) || !qrange(y->dtype, &lo, &hi))
        return -1;
    if (value_numel(x) == 0)
        return void_params(e, n);
    Writer *w = e->w;
    const char *ct = pt == DT_DOUBLE ? "double" : "float";
    char buf[128];
    int open = qgran_loops(e, &q, s->dtype, ct, "x1", z ? "x2" : NULL);
    w_line(w, "%s v = %s / s;", ct, ld(e, buf, sizeof buf, x->dtype, ct, "x0", "i"));
    if (is_half(pt))
        w_through_half(e, pt, "v");
    /* saturate before converting (out-of-range float to integer is undefined in C);
     * NaN goes to the low end */
    w_line(w, "const %s l = (%s)(%" PRId64 " - z), h = (%s)(%" PRId64 " - z);", ct, ct, lo, ct, hi);
    if (pt == DT_DOUBLE) {
        w_round_even(e, ct, "r", "v");
        w_line(w, "r = r >= l ? (r <= h ? r : h) : l;");
        w_line(w, "y0[i] = (%s)((int32_t)r + z);", dtype_ctype(y->dtype));
    } else {
        /* float: saturated first (l and h are integers, so rounding and saturating
         * commute; NaN to the low end), then rounded half to even, through the
         * prelude's vectorisable forms (mnist-8-quantized's three QuantizeLinear
         * nodes, 2,600 elements, were 30% of its time scalar) */
        e->prelude |= PRE_QROUND;
        w_line(w, "y0[i] = (%s)(kd_rint_i32(kd_clampf(v, l, h)) + z);", dtype_ctype(y->dtype));
    }
    em_close(w, open);
    return 0;
}

static const OpDef op_quantize_linear = {
    .name = "QuantizeLinear", .domain = "", .since = 10,
    .min_inputs = 2, .max_inputs = 3, .min_outputs = 1, .max_outputs = 1,
    .infer = infer_quantize, .fold = fold_quantize, .emit = emit_quantize,
    .summary = "saturate(round_half_even(x / scale) + zero_point) to int8, uint8, int16 or uint16; per tensor, per axis or blocked",
};

/* ---------------------------------------------------------------- DequantizeLinear */

/* The type of y: output_dtype, else the scale's. The product is computed in double
 * when y or the scale is double, else in float. */
static DType dequant_out(const Node *n, DType st)
{
    int64_t od = attr_int(n, "output_dtype", 0);
    return od ? (DType)od : st;
}

static int infer_dequantize(Graph *g, Node *n, Diag *d)
{
    Value *x = need_input(g, n, 0, d), *s = need_input(g, n, 1, d);
    if (!x || !s)
        return -1;
    const Value *z = node_in(g, n, 2);
    int64_t lo = 0, hi = 0;
    if (!qrange(x->dtype, &lo, &hi) && x->dtype != DT_INT32)
        return diag_unsupported(d, n, "dequantizing %s is not supported (int8, uint8, int16, uint16, int32)", dtype_name(x->dtype));
    if (!is_scale_type(s->dtype))
        return err_dtype(d, n, "scale", s->dtype);
    if (z && z->dtype != x->dtype)
        return diag_error(d, n, "the zero point has type %s; x has %s", dtype_name(z->dtype), dtype_name(x->dtype));
    DType yt = dequant_out(n, s->dtype);
    if (!is_scale_type(yt))
        return diag_unsupported(d, n, "output_dtype %s is not supported (float, double, float16, bfloat16)", dtype_name(yt));
    QGran q;
    if (qgran(g, n, x, 1, 2, &q, d))
        return -1;
    value_set_shape(node_out(g, n, 0), yt, x->rank, x->dims);
    return 0;
}

static int fold_dequantize(Graph *g, Node *n, Diag *d)
{
    if (!all_inputs_const(g, n))
        return 0;
    const Value *x = node_in(g, n, 0), *s = node_in(g, n, 1), *z = node_in(g, n, 2);
    Value *y = node_out(g, n, 0);
    DType yt = y->dtype;
    QGran q;
    if (qgran(g, n, x, 1, 2, &q, d))
        return -1;
    int dbl = yt == DT_DOUBLE || s->dtype == DT_DOUBLE;
    void *out = value_make_const(g, y, yt, x->rank, x->dims);
    if (!out)
        return diag_error(d, n, "out of memory");
    for (int64_t o = 0; o < q.O; o++)
        for (int64_t a = 0; a < q.A; a++)
            for (int64_t r = 0; r < q.I; r++) {
                int64_t i = (o * q.A + a) * q.I + r, si = qgran_index(&q, o, a, r);
                float dx = (float)const_get_i64(x, i) - (float)(z ? const_get_i64(z, si) : 0);
                double v = dbl ? (double)dx * const_get_f64(s, si) : (double)(dx * (float)const_get_f64(s, si));
                elem_set_f64(out, yt, i, v);
            }
    return 1;
}

static int emit_dequantize(Emitter *e, const Node *n, Diag *d)
{
    const Graph *g = e->g;
    const Value *x = node_in(g, n, 0), *s = node_in(g, n, 1), *z = node_in(g, n, 2);
    const Value *y = node_out(g, n, 0);
    QGran q;
    if (qgran(g, n, x, 1, 2, &q, d))
        return -1;
    if (value_numel(x) == 0)
        return void_params(e, n);
    Writer *w = e->w;
    const char *ct = (y->dtype == DT_DOUBLE || s->dtype == DT_DOUBLE) ? "double" : "float";
    int open = qgran_loops(e, &q, s->dtype, ct, "x1", z ? "x2" : NULL);
    /* x - z in float first, as the ONNX reference (exact for 8- and 16-bit types) */
    w_line(w, "const float dx = (float)x0[i] - (float)z;");
    w_line(w, "y0[i] = %s((%s)dx * s);", em_half_store(e, y->dtype), ct);
    em_close(w, open);
    return 0;
}

static const OpDef op_dequantize_linear = {
    .name = "DequantizeLinear", .domain = "", .since = 10,
    .min_inputs = 2, .max_inputs = 3, .min_outputs = 1, .max_outputs = 1,
    .infer = infer_dequantize, .fold = fold_dequantize, .emit = emit_dequantize,
    .summary = "(x - zero_point) * scale from int8, uint8, int16, uint16 or int32; per tensor, per axis or blocked",
};

/* ---------------------------------------------------------------- DynamicQuantizeLinear */

static int infer_dynquant(Graph *g, Node *n, Diag *d)
{
    Value *x = need_input(g, n, 0, d);
    if (!x)
        return -1;
    if (x->dtype != DT_FLOAT)
        return err_dtype(d, n, "input x", x->dtype);
    value_set_shape(node_out(g, n, 0), DT_UINT8, x->rank, x->dims);
    if (node_out(g, n, 1))
        value_set_shape(node_out(g, n, 1), DT_FLOAT, 0, NULL);
    if (node_out(g, n, 2))
        value_set_shape(node_out(g, n, 2), DT_UINT8, 0, NULL);
    return 0;
}

static int emit_dynquant(Emitter *e, const Node *n, Diag *d)
{
    (void)d;
    const Graph *g = e->g;
    const Value *x = node_in(g, n, 0);
    int64_t N = value_numel(x);
    Writer *w = e->w;
    e->prelude |= PRE_ROUND_EVEN;
    /* the range always holds 0; an all-zero input (empty range) gets scale 1, as the
     * ONNX reference defines it, so that zero point and y are 0 rather than NaN */
    w_line(w, "float mn = 0.0f, mx = 0.0f;");
    em_for(w, "i", N);
    w_line(w, "mn = x0[i] < mn ? x0[i] : mn;");
    w_line(w, "mx = x0[i] > mx ? x0[i] : mx;");
    w_close(w);
    w_line(w, "const float s = mx == mn ? 1.0f : (mx - mn) / 255.0f;");
    w_line(w, "float zf = 0.0f - mn / s;");
    w_line(w, "zf = zf >= 0.0f ? (zf <= 255.0f ? zf : 255.0f) : 0.0f;");
    w_line(w, "const float z = kd_rintf(zf);");
    if (node_out(g, n, 1))
        w_line(w, "y1[0] = s;");
    if (node_out(g, n, 2))
        w_line(w, "y2[0] = (uint8_t)z;");
    em_for(w, "i", N);
    w_line(w, "float r = kd_rintf(x0[i] / s) + z;");
    w_line(w, "r = r >= 0.0f ? (r <= 255.0f ? r : 255.0f) : 0.0f;");
    w_line(w, "y0[i] = (uint8_t)r;");
    w_close(w);
    return 0;
}

static const OpDef op_dynamic_quantize_linear = {
    .name = "DynamicQuantizeLinear", .domain = "", .since = 11,
    .min_inputs = 1, .max_inputs = 1, .min_outputs = 1, .max_outputs = 3,
    .infer = infer_dynquant, .emit = emit_dynquant,
    .summary = "uint8 quantization with scale and zero point from the input's range (which includes 0)",
};

/* ---------------------------------------------------------------- requantization */

/* The QLinear forms' output stage: y = saturate(round(acc * mult + zy)) where mult =
 * sa * sb / sy in the scales' type, sa and sb per tensor or per row/channel (index
 * expressions), computed in double (see the file comment). */
typedef struct Requant {
    DType st;        /* the scales' type */
    DType yt;        /* output type */
    int sa, sb, sy, zy; /* parameter numbers of a's scale, b's scale, y's scale and zero point (-1: none) */
    int64_t nb;      /* elements of b's scale: 1 or per column/channel */
} Requant;

/* Inside the loops: `const double mult = ...;` for b's scale element `bidx`. */
static void rq_mult(Emitter *e, const Requant *rq, const char *bidx)
{
    Writer *w = e->w;
    char ba[96], bb[96], by[96], idx[64];
    snprintf(idx, sizeof idx, "%s", rq->nb == 1 ? "0" : bidx);
    char pa[8], pb[8], py[8];
    snprintf(pa, sizeof pa, "x%d", rq->sa);
    snprintf(pb, sizeof pb, "x%d", rq->sb);
    snprintf(py, sizeof py, "x%d", rq->sy);
    if (rq->st == DT_DOUBLE) {
        w_line(w, "const double mult = %s * %s / %s;", ld(e, ba, sizeof ba, rq->st, "double", pa, "0"),
               ld(e, bb, sizeof bb, rq->st, "double", pb, idx), ld(e, by, sizeof by, rq->st, "double", py, "0"));
        return;
    }
    w_line(w, "float mult = %s * %s;", ld(e, ba, sizeof ba, rq->st, "float", pa, "0"), ld(e, bb, sizeof bb, rq->st, "float", pb, idx));
    w_through_half(e, rq->st, "mult");
    w_line(w, "mult = mult / %s;", ld(e, by, sizeof by, rq->st, "float", py, "0"));
    w_through_half(e, rq->st, "mult");
}

/* `dst = saturate(round(acc * mult + zy))`. */
static void rq_store(Emitter *e, const Requant *rq, const char *dst, const char *acc)
{
    Writer *w = e->w;
    int64_t lo = 0, hi = 0;
    qrange(rq->yt, &lo, &hi);
    if (rq->zy >= 0)
        w_line(w, "const double v = (double)%s * (double)mult + (double)x%d[0];", acc, rq->zy);
    else
        w_line(w, "const double v = (double)%s * (double)mult;", acc);
    w_round_even(e, "double", "r", "v");
    w_line(w, "%s = (%s)(r >= %" PRId64 ".0 ? (r <= %" PRId64 ".0 ? r : %" PRId64 ".0) : %" PRId64 ".0);",
           dst, dtype_ctype(rq->yt), lo, hi, hi, lo);
}

/* ---------------------------------------------------------------- integer MatMul */

/* Shapes of an integer matrix product (numpy matmul; 1-D operands promoted and their
 * dims dropped from the output). */
typedef struct IMM {
    int64_t M, K, N;
    int rb;                         /* batch rank of the output */
    int64_t ob[KD_MAX_RANK], ab[KD_MAX_RANK], bb[KD_MAX_RANK];
    int rab, rbb;
    int orank;
    int64_t odims[KD_MAX_RANK];
} IMM;

static int imm_shape(const Node *n, const Value *a, const Value *b, IMM *m, Diag *d)
{
    memset(m, 0, sizeof *m);
    if (a->rank < 1 || b->rank < 1)
        return diag_error(d, n, "matrix product of a scalar");
    m->M = a->rank == 1 ? 1 : a->dims[a->rank - 2];
    m->K = a->dims[a->rank - 1];
    int64_t kb = b->rank == 1 ? b->dims[0] : b->dims[b->rank - 2];
    m->N = b->rank == 1 ? 1 : b->dims[b->rank - 1];
    if (kb != m->K)
        return diag_error(d, n, "inner dims differ: A has %" PRId64 ", B has %" PRId64, m->K, kb);
    m->rab = a->rank > 2 ? a->rank - 2 : 0;
    m->rbb = b->rank > 2 ? b->rank - 2 : 0;
    memcpy(m->ab, a->dims, sizeof(int64_t) * (size_t)m->rab);
    memcpy(m->bb, b->dims, sizeof(int64_t) * (size_t)m->rbb);
    if (broadcast_shapes(m->rab, m->ab, m->rbb, m->bb, &m->rb, m->ob))
        return diag_error(d, n, "batch dims of A and B do not broadcast");
    m->orank = m->rb;
    memcpy(m->odims, m->ob, sizeof(int64_t) * (size_t)m->rb);
    if (a->rank > 1)
        m->odims[m->orank++] = m->M;
    if (b->rank > 1)
        m->odims[m->orank++] = m->N;
    return 0;
}

static void shape_value(Value *v, int rank, const int64_t *dims)
{
    memset(v, 0, sizeof *v);
    v->rank = rank;
    memcpy(v->dims, dims, sizeof(int64_t) * (size_t)rank);
}

/* Zero point check: per tensor (one element) or `per` elements (per row / column,
 * possibly with the batch dims in front: `batched` elements). */
static int zp_ok(const Node *n, const Value *z, DType want, int64_t per, int64_t batched, const char *what, Diag *d)
{
    if (!z)
        return 0;
    if (z->dtype != want)
        return diag_error(d, n, "%s has type %s; its operand has %s", what, dtype_name(z->dtype), dtype_name(want));
    int64_t c = value_numel(z);
    if (c != 1 && c != per && c != batched)
        return diag_error(d, n, "%s has %" PRId64 " elements; expected 1 or %" PRId64, what, c, per);
    return 0;
}

/* The product over inputs a (param ia), b (ib), zero points za, zb (-1: none): the
 * int32 accumulators of each output row go to y0 (rq NULL) or through rq. */
static int emit_imm(Emitter *e, const Node *n, int ia, int iza, int ib, int izb, const Requant *rq, Diag *d)
{
    const Graph *g = e->g;
    const Value *a = node_in(g, n, ia), *b = node_in(g, n, ib);
    const Value *za = iza >= 0 ? node_in(g, n, iza) : NULL, *zb = izb >= 0 ? node_in(g, n, izb) : NULL;
    IMM m;
    if (imm_shape(n, a, b, &m, d))
        return -1;
    int64_t M = m.M, K = m.K, N = m.N;
    if (dims_numel(m.orank, m.odims) == 0)
        return void_params(e, n);
    Writer *w = e->w;
    Value ov, av, bv;
    shape_value(&ov, m.rb, m.ob);
    shape_value(&av, m.rab, m.ab);
    shape_value(&bv, m.rbb, m.bb);
    const Value *ins[2] = {&av, &bv};
    int open = em_broadcast_loops(w, &ov, ins, 2);
    w_line(w, "const %s *restrict ab = x%d + j0 * %" PRId64 ";", dtype_ctype(a->dtype), ia, M * K);
    w_line(w, "const %s *restrict bb = x%d + j1 * %" PRId64 ";", dtype_ctype(b->dtype), ib, K * N);
    int64_t nza = za ? value_numel(za) : 0, nzb = zb ? value_numel(zb) : 0;
    /* b's zero point: one (zb), or per column (zbr[n]), per batch of B too if it has them */
    if (nzb == 1)
        w_line(w, "const int32_t zb = (int32_t)x%d[0];", izb);
    else if (nzb == N)
        w_line(w, "const %s *zbr = x%d;", dtype_ctype(zb->dtype), izb);
    else if (nzb)
        w_line(w, "const %s *zbr = x%d + j1 * %" PRId64 ";", dtype_ctype(zb->dtype), izb, N);
    em_for(w, "m", M);
    if (nza == 1)
        w_line(w, "const int32_t za = (int32_t)x%d[0];", iza);
    else if (nza == M)
        w_line(w, "const int32_t za = (int32_t)x%d[m];", iza);
    else if (nza)
        w_line(w, "const int32_t za = (int32_t)x%d[j0 * %" PRId64 " + m];", iza, M); /* per batch too */
    else
        w_line(w, "const int32_t za = 0;");
    if (rq) {
        w_line(w, "int32_t acc[%" PRId64 "];", N);
    } else {
        w_line(w, "int32_t *restrict acc = y0 + (i * %" PRId64 " + m) * %" PRId64 ";", M, N);
    }
    em_for(w, "n", N);
    w_line(w, "acc[n] = 0;");
    w_close(w);
    em_for(w, "k", K);
    w_line(w, "const int32_t av = (int32_t)ab[m * %" PRId64 " + k] - za;", K);
    w_line(w, "const %s *restrict br = bb + k * %" PRId64 ";", dtype_ctype(b->dtype), N);
    em_for(w, "n", N);
    if (nzb == 1)
        w_line(w, "acc[n] += av * ((int32_t)br[n] - zb);");
    else if (nzb)
        w_line(w, "acc[n] += av * ((int32_t)br[n] - (int32_t)zbr[n]);");
    else
        w_line(w, "acc[n] += av * (int32_t)br[n];");
    em_close(w, 2);
    if (rq) {
        em_for(w, "n", N);
        rq_mult(e, rq, "n");
        char dst[96];
        snprintf(dst, sizeof dst, "y0[(i * %" PRId64 " + m) * %" PRId64 " + n]", M, N);
        rq_store(e, rq, dst, "acc[n]");
        w_close(w);
    }
    w_close(w);
    em_close(w, open);
    return 0;
}

static int imm_infer_common(Graph *g, Node *n, int ia, int iza, int ib, int izb, DType yt, Diag *d)
{
    Value *a = need_input(g, n, ia, d), *b = need_input(g, n, ib, d);
    if (!a || !b)
        return -1;
    if (!is_int8(a->dtype))
        return err_dtype(d, n, "input A", a->dtype);
    if (!is_int8(b->dtype))
        return err_dtype(d, n, "input B", b->dtype);
    IMM m;
    if (imm_shape(n, a, b, &m, d))
        return -1;
    int64_t nba = dims_numel(m.rab, m.ab), nbb = dims_numel(m.rbb, m.bb);
    if (zp_ok(n, iza >= 0 ? node_in(g, n, iza) : NULL, a->dtype, m.M, nba * m.M, "A's zero point", d) ||
        zp_ok(n, izb >= 0 ? node_in(g, n, izb) : NULL, b->dtype, m.N, nbb * m.N, "B's zero point", d))
        return -1;
    value_set_shape(node_out(g, n, 0), yt, m.orank, m.odims);
    return 0;
}

static int infer_matmul_integer(Graph *g, Node *n, Diag *d)
{
    return imm_infer_common(g, n, 0, 2, 1, 3, DT_INT32, d);
}

/* the exact-float kernels further down */
static int emit_imm_fast(Emitter *e, const Node *n, int ia, int iza, int ib, int izb, const Requant *rq);
static int64_t scratch_matmul_integer(const Graph *g, const Node *n, int64_t budget);
static int64_t scratch_qlinear_matmul(const Graph *g, const Node *n, int64_t budget);
static int tunable_matmul_integer(const Graph *g, const Node *n);
static int tunable_qlinear_matmul(const Graph *g, const Node *n);

static int emit_matmul_integer(Emitter *e, const Node *n, Diag *d)
{
    if (emit_imm_fast(e, n, 0, 2, 1, 3, NULL))
        return 0;
    return emit_imm(e, n, 0, 2, 1, 3, NULL, d);
}

static const OpDef op_matmul_integer = {
    .name = "MatMulInteger", .domain = "", .since = 10,
    .min_inputs = 2, .max_inputs = 4, .min_outputs = 1, .max_outputs = 1,
    .infer = infer_matmul_integer, .emit = emit_matmul_integer, .scratch_within = scratch_matmul_integer,
    .tunable = tunable_matmul_integer,
    .summary = "int32 (A - a_zero_point) x (B - b_zero_point) of int8/uint8, numpy broadcasting; zero points per tensor, row or column",
};

/* Scales of a QLinear operator: per tensor, or `per` elements for `what`. */
static int scale_ok(const Node *n, const Value *s, DType st, int64_t per, const char *what, Diag *d)
{
    if (s->dtype != st)
        return diag_error(d, n, "%s has type %s; the other scales have %s", what, dtype_name(s->dtype), dtype_name(st));
    int64_t c = value_numel(s);
    if (c != 1 && c != per)
        return diag_error(d, n, "%s has %" PRId64 " elements; expected 1 or %" PRId64, what, c, per);
    return 0;
}

static int infer_qlinear_matmul(Graph *g, Node *n, Diag *d)
{
    for (int i = 0; i < 8; i++)
        if (!need_input(g, n, i, d))
            return -1;
    const Value *sa = node_in(g, n, 1), *sb = node_in(g, n, 4), *sy = node_in(g, n, 6), *zy = node_in(g, n, 7);
    IMM m;
    if (imm_shape(n, node_in(g, n, 0), node_in(g, n, 3), &m, d))
        return -1;
    if (!is_scale_type(sa->dtype))
        return err_dtype(d, n, "a_scale", sa->dtype);
    if (scale_ok(n, sa, sa->dtype, 1, "a_scale", d) || scale_ok(n, sb, sa->dtype, m.N, "b_scale", d) ||
        scale_ok(n, sy, sa->dtype, 1, "y_scale", d))
        return -1;
    if (!is_int8(zy->dtype))
        return err_dtype(d, n, "y_zero_point", zy->dtype);
    if (value_numel(zy) != 1)
        return diag_error(d, n, "y_zero_point must have one element");
    return imm_infer_common(g, n, 0, 2, 3, 5, zy->dtype, d);
}

static int emit_qlinear_matmul(Emitter *e, const Node *n, Diag *d)
{
    const Graph *g = e->g;
    Requant rq = {.st = node_in(g, n, 1)->dtype, .yt = node_out(g, n, 0)->dtype,
                  .sa = 1, .sb = 4, .sy = 6, .zy = 7, .nb = value_numel(node_in(g, n, 4))};
    if (emit_imm_fast(e, n, 0, 2, 3, 5, &rq))
        return 0;
    return emit_imm(e, n, 0, 2, 3, 5, &rq, d);
}

static const OpDef op_qlinear_matmul = {
    .name = "QLinearMatMul", .domain = "", .since = 10,
    .min_inputs = 8, .max_inputs = 8, .min_outputs = 1, .max_outputs = 1,
    .infer = infer_qlinear_matmul, .emit = emit_qlinear_matmul, .scratch_within = scratch_qlinear_matmul,
    .tunable = tunable_qlinear_matmul,
    .summary = "MatMulInteger requantized: saturate(round(acc * a_scale * b_scale / y_scale + y_zero_point))",
};

/* ---------------------------------------------------------------- integer Conv */

/* The convolution's geometry from the family's conv_geom (compiler/ops/conv.c), read
 * through a two-value view of the node: X = input ix, W = input iw, no bias (ours
 * are zero points), and W's element type taken as X's (ours may differ: uint8 x int8). */
static int qconv_geom(const Graph *g, const Node *n, int ix, int iw, ConvGeom *cg, Diag *d)
{
    Value vals[2] = {*node_in(g, n, ix), *node_in(g, n, iw)};
    vals[1].dtype = vals[0].dtype;
    Graph sg = *g;
    sg.values = vals;
    sg.nvalues = 2;
    int ins[2] = {0, 1};
    Node sn = *n;
    sn.inputs = ins;
    sn.ninputs = 2;
    return conv_geom(&sg, &sn, 0, cg, d);
}

static int iconv_infer_common(Graph *g, Node *n, int ix, int izx, int iw, int izw, DType yt, Diag *d)
{
    Value *x = need_input(g, n, ix, d), *w = need_input(g, n, iw, d);
    if (!x || !w)
        return -1;
    if (!is_int8(x->dtype))
        return err_dtype(d, n, "input x", x->dtype);
    if (!is_int8(w->dtype))
        return err_dtype(d, n, "weight w", w->dtype);
    ConvGeom cg;
    if (qconv_geom(g, n, ix, iw, &cg, d))
        return -1;
    if (zp_ok(n, izx >= 0 ? node_in(g, n, izx) : NULL, x->dtype, 1, 1, "x's zero point", d) ||
        zp_ok(n, izw >= 0 ? node_in(g, n, izw) : NULL, w->dtype, cg.M, cg.M, "w's zero point", d))
        return -1;
    int64_t dims[KD_MAX_RANK] = {cg.N, cg.M};
    for (int i = 0; i < cg.nsp; i++)
        dims[2 + i] = cg.out[i];
    value_set_shape(node_out(g, n, 0), yt, cg.nsp + 2, dims);
    return 0;
}

/* The start both integer Conv kernels share: the geometry (and the sizes of an
 * output, input and kernel plane), then the loops over images b and output channels
 * m with the zero points zx, zw, the image's group xg and the channel's weights wm in
 * scope. 0 with the two loops open, 1 when the output is empty (nothing opened, the
 * parameters marked used), -1 on error. */
static int iconv_open(Emitter *e, const Node *n, int ix, int izx, int iw, int izw, ConvGeom *cgp, int64_t sz[3],
                      Diag *d)
{
    const Graph *g = e->g;
    const Value *x = node_in(g, n, ix), *wv = node_in(g, n, iw);
    const Value *zx = izx >= 0 ? node_in(g, n, izx) : NULL, *zw = izw >= 0 ? node_in(g, n, izw) : NULL;
    if (qconv_geom(g, n, ix, iw, cgp, d))
        return -1;
    int nsp = cgp->nsp;
    int64_t OSZ = 1, ISZ = 1, KSZ = 1;
    for (int i = 0; i < nsp; i++) {
        OSZ *= cgp->out[i];
        ISZ *= cgp->in[i];
        KSZ *= cgp->k[i];
    }
    int64_t Cg = cgp->C / cgp->G, Mg = cgp->M / cgp->G;
    sz[0] = OSZ, sz[1] = ISZ, sz[2] = KSZ;
    if (cgp->N * cgp->M * OSZ == 0)
        return void_params(e, n), 1;
    Writer *w = e->w;
    if (zx)
        w_line(w, "const int32_t zx = (int32_t)x%d[0];", izx);
    else
        w_line(w, "const int32_t zx = 0;");
    em_for(w, "b", cgp->N);
    em_for(w, "m", cgp->M);
    w_line(w, "const int64_t g = m / %" PRId64 ";", Mg);
    if (zw)
        w_line(w, "const int32_t zw = (int32_t)x%d[%s];", izw, value_numel(zw) == 1 ? "0" : "m");
    else
        w_line(w, "const int32_t zw = 0;");
    w_line(w, "const %s *restrict xg = x%d + (b * %" PRId64 " + g * %" PRId64 ") * %" PRId64 ";",
           dtype_ctype(x->dtype), ix, cgp->C, Cg, ISZ);
    w_line(w, "const %s *restrict wm = x%d + m * %" PRId64 ";", dtype_ctype(wv->dtype), iw, Cg * KSZ);
    return 0;
}

/* The store of an integer Conv's int32 `val` through the epilogue of
 * kdcc.FusedConvInteger: a = (float)val (the Cast it absorbed), then the steps,
 * whose operands are read at the flat index `idx`, at 0 (one element, scalar 1) or
 * at the output channel `chan` (per-channel operands, scalar 2: see q_epi_read). */
static void q_epi_store(Writer *w, const Epilogue *ep, const char *dst, const char *val, const char *idx, const char *chan)
{
    w_open(w, "%s", "");
    w_line(w, "float a = (float)%s;", val);
    for (int i = 0; i < ep->n; i++) {
        const EpiStep *st = &ep->s[i];
        char b[200] = "";
        if (st->operand >= 0)
            snprintf(b, sizeof b, "x%d[%s]", st->operand, st->scalar == 1 ? "0" : st->scalar == 2 ? chan : idx);
        ew_epilogue_write(w, st, DT_FLOAT, b);
    }
    w_line(w, "%s = a;", dst);
    w_close(w);
}

/* Direct convolution over int32 accumulators: for each image, output channel and
 * output pixel, the sum over the group's input channels and the kernel taps that fall
 * inside the input (padding contributes (z - z) * w = 0, as if padded with the zero
 * point). bias: parameter of an int32 bias (-1: none). */
static int emit_iconv(Emitter *e, const Node *n, int ix, int izx, int iw, int izw, int ibias, const Requant *rq,
                      const Epilogue *ep, Diag *d)
{
    ConvGeom cg;
    int64_t sz[3];
    int r = iconv_open(e, n, ix, izx, iw, izw, &cg, sz, d);
    if (r)
        return r < 0 ? -1 : 0;
    Writer *w = e->w;
    int nsp = cg.nsp;
    int64_t OSZ = sz[0], ISZ = sz[1], KSZ = sz[2], Cg = cg.C / cg.G;
    if (rq)
        rq_mult(e, rq, "m");
    for (int i = 0; i < nsp; i++) {
        char v[8];
        snprintf(v, sizeof v, "o%d", i);
        em_for(w, v, cg.out[i]);
    }
    if (ibias >= 0)
        w_line(w, "int32_t acc = x%d[m];", ibias);
    else
        w_line(w, "int32_t acc = 0;");
    for (int i = 0; i < nsp; i++) {
        /* the taps k whose input index u = t + k * dl (t = o * s - pb) lies in [0, in):
         * from ceil(-t / dl) when t < 0, up to ceil((in - t) / dl) (<= 0: none) */
        int64_t dl = cg.dl[i];
        w_line(w, "const int64_t t%d = o%d * %" PRId64 " - %" PRId64 ";", i, i, cg.s[i], cg.pb[i]);
        w_line(w, "const int64_t kl%d = t%d < 0 ? (%" PRId64 " - t%d) / %" PRId64 " : 0;", i, i, dl - 1, i, dl);
        w_line(w, "int64_t kh%d = (%" PRId64 " - t%d) / %" PRId64 ";", i, cg.in[i] + dl - 1, i, dl);
        w_line(w, "kh%d = kh%d < %" PRId64 " ? kh%d : %" PRId64 ";", i, i, cg.k[i], i, cg.k[i]);
    }
    em_for(w, "c", Cg);
    for (int i = 0; i < nsp; i++) {
        int64_t dl = cg.dl[i];
        w_open(w, "for (int64_t k%d = kl%d; k%d < kh%d; ++k%d)", i, i, i, i, i);
        w_line(w, "const int64_t u%d = t%d + k%d * %" PRId64 ";", i, i, i, dl);
    }
    /* flat offsets of the input element and the tap */
    w_printf(w, "const int64_t xi = c * %" PRId64, ISZ);
    int64_t st = ISZ;
    for (int i = 0; i < nsp; i++) {
        st /= cg.in[i];
        w_printf(w, " + u%d * %" PRId64, i, st);
    }
    w_puts(w, ";\n");
    w_printf(w, "const int64_t wi = c * %" PRId64, KSZ);
    st = KSZ;
    for (int i = 0; i < nsp; i++) {
        st /= cg.k[i];
        w_printf(w, " + k%d * %" PRId64, i, st);
    }
    w_puts(w, ";\n");
    w_line(w, "acc += ((int32_t)xg[xi] - zx) * ((int32_t)wm[wi] - zw);");
    em_close(w, nsp + 1);
    /* flat output index */
    w_printf(w, "const int64_t yi = (b * %" PRId64 " + m) * %" PRId64, cg.M, OSZ);
    st = OSZ;
    for (int i = 0; i < nsp; i++) {
        st /= cg.out[i];
        w_printf(w, " + o%d * %" PRId64, i, st);
    }
    w_puts(w, ";\n");
    if (rq)
        rq_store(e, rq, "y0[yi]", "acc");
    else if (ep)
        q_epi_store(e->w, ep, "y0[yi]", "acc", "yi", "m");
    else
        w_line(w, "y0[yi] = acc;");
    em_close(w, nsp + 2);
    return 0;
}

/* ConvInteger's int32 output planes are their own accumulators: for each image, output
 * channel, input channel and tap, the shifted weight times the shifted input is added
 * over the output pixels whose input index is inside the input, the last dim innermost
 * (contiguous, vectorised for stride 1). Same sums as emit_iconv in another order
 * (integer addition: the same result). */
static int emit_iconv_planes(Emitter *e, const Node *n, int ix, int izx, int iw, int izw, Diag *d)
{
    ConvGeom cg;
    int64_t sz[3];
    int r = iconv_open(e, n, ix, izx, iw, izw, &cg, sz, d);
    if (r)
        return r < 0 ? -1 : 0;
    Writer *w = e->w;
    int nsp = cg.nsp;
    int64_t OSZ = sz[0], ISZ = sz[1], KSZ = sz[2], Cg = cg.C / cg.G;
    w_line(w, "int32_t *restrict yp = y0 + (b * %" PRId64 " + m) * %" PRId64 ";", cg.M, OSZ);
    em_for(w, "o", OSZ);
    w_line(w, "yp[o] = 0;");
    w_close(w);
    em_for(w, "c", Cg);
    for (int i = 0; i < nsp; i++) {
        char v[8];
        snprintf(v, sizeof v, "k%d", i);
        em_for(w, v, cg.k[i]);
        /* outputs o with 0 <= o * s + t < in, t = k * dl - pb: from ceil(-t / s) when
         * t < 0, below ceil((in - t) / s) (<= 0: none), at most out */
        int64_t s = cg.s[i];
        w_line(w, "const int64_t t%d = k%d * %" PRId64 " - %" PRId64 ";", i, i, cg.dl[i], cg.pb[i]);
        w_line(w, "const int64_t ol%d = t%d < 0 ? (%" PRId64 " - t%d) / %" PRId64 " : 0;", i, i, s - 1, i, s);
        w_line(w, "int64_t oh%d = (%" PRId64 " - t%d) / %" PRId64 ";", i, cg.in[i] + s - 1, i, s);
        w_line(w, "oh%d = oh%d < %" PRId64 " ? oh%d : %" PRId64 ";", i, i, cg.out[i], i, cg.out[i]);
    }
    w_printf(w, "const int32_t wv = (int32_t)wm[c * %" PRId64, KSZ);
    int64_t st = KSZ;
    for (int i = 0; i < nsp; i++) {
        st /= cg.k[i];
        w_printf(w, " + k%d * %" PRId64, i, st);
    }
    w_puts(w, "] - zw;\n");
    int64_t ist = ISZ, ost = OSZ;
    for (int i = 0; i < nsp; i++) {
        ist /= cg.in[i];
        ost /= cg.out[i];
        w_open(w, "for (int64_t o%d = ol%d; o%d < oh%d; ++o%d)", i, i, i, i, i);
        if (i < nsp - 1) {
            /* offsets of this dim into the input and output, plus the outer dims' */
            if (i == 0) {
                w_line(w, "const int64_t xo0 = (o0 * %" PRId64 " + t0) * %" PRId64 ";", cg.s[0], ist);
                w_line(w, "const int64_t yo0 = o0 * %" PRId64 ";", ost);
            } else {
                w_line(w, "const int64_t xo%d = xo%d + (o%d * %" PRId64 " + t%d) * %" PRId64 ";", i, i - 1, i, cg.s[i], i, ist);
                w_line(w, "const int64_t yo%d = yo%d + o%d * %" PRId64 ";", i, i - 1, i, ost);
            }
        }
    }
    char xb[32] = "0", yb[32] = "0";
    if (nsp > 1) {
        snprintf(xb, sizeof xb, "xo%d", nsp - 2);
        snprintf(yb, sizeof yb, "yo%d", nsp - 2);
    }
    int L = nsp - 1;
    w_line(w, "yp[%s + o%d] += wv * ((int32_t)xg[c * %" PRId64 " + %s + o%d * %" PRId64 " + t%d] - zx);",
           yb, L, ISZ, xb, L, cg.s[L], L);
    em_close(w, nsp);   /* output loops */
    em_close(w, nsp);   /* tap loops */
    em_close(w, 3);     /* c, m, b */
    return 0;
}

/* ---------------------------------------------------------------- exact-float planes */

/* The fast integer Conv (2-D, any stride, padding, dilation and group): a float
 * kernel on exact integers. (x - zx) and (w - zw) are exact in float, so are their
 * products, and a float sum of such products is exact as long as every partial sum
 * stays below 2^24 in magnitude: with |x - zx| <= bx and |w - zw| <= bw (bx from
 * the zero point's range or its constant value, bw from the constant weights when
 * they are), a run of Kc products with Kc * bx * bw < 2^24 sums exactly in any order
 * and in any rounding mode. The reduction over input channels goes in chunks of cc
 * channels (cc * K0 * K1 products, at most such a run): a chunk's float sums are
 * converted to int32 (exact: they are integers) and added up in int32. Every result is
 * therefore the int32 sum the integer kernels compute, bit for bit.
 * Per image and group, the group's input planes are copied once, shifted by zx and
 * converted to float, into zero-padded planes of PH x PW in the node's scratch (zero:
 * the shifted zero point, as padding with zx contributes nothing). Per block of mr
 * output channels, their weights, shifted by zw, are converted into the scratch after
 * the planes. Outputs go in blocks of mr channels by R rows x VW columns (R * VW = nr,
 * the register block of the float Conv kernels: --tune's or the target's), whose
 * float accumulators stay in vector registers across the reduction; a tap reads a
 * block's row at unit stride when the Conv's stride is 1. A block's columns past the
 * output width read into the next row of the plane and a block's rows past the
 * output height into the slack after the planes (zeros); those pixels are computed
 * and dropped. Taken where the target vectorises (vector_bytes >= 16) and the
 * scratch fits the node's budget; scalar-FPU microcontrollers (Cortex-M) and nodes
 * without scratch take the integer kernels below, which give the same integers. */
#define QP_EXACT ((int64_t)1 << 24)

typedef struct QpGeom {
    int64_t PH, PW, PS, slack;
    int64_t mr, nr, VW, R, NXB, NYB;
    int64_t cc;          /* input channels per exact chunk */
    int64_t floats;      /* scratch: planes, slack, a block's weights */
    int64_t lv;          /* floats per named accumulator array (conv_lanes); 0: acc[][][] form */
} QpGeom;

/* Largest |v - z| over v in a quantized operand: from the constant data and zero
 * point when both are known, else from the zero point's range (or the type's). */
static int64_t q_bound(const Value *v, const Value *z, int64_t per_z, int64_t inner)
{
    int64_t lo = 0, hi = 0;
    qrange(v->dtype, &lo, &hi);
    int zc = !z || value_is_const(z);
    if (value_is_const(v) && zc) {
        int64_t nz = z ? value_numel(z) : 0, b = 0, n = value_numel(v);
        for (int64_t i = 0; i < n; i++) {
            int64_t zv = !z ? 0 : nz == 1 ? const_get_i64(z, 0) : const_get_i64(z, (i / inner) % per_z);
            int64_t d = const_get_i64(v, i) - zv;
            d = d < 0 ? -d : d;
            b = d > b ? d : b;
        }
        return b;
    }
    if (!z)
        return hi > -lo ? hi : -lo;
    if (value_is_const(z)) {
        int64_t b = 0, nz = value_numel(z);
        for (int64_t i = 0; i < nz; i++) {
            int64_t zv = const_get_i64(z, i), d = hi - zv > zv - lo ? hi - zv : zv - lo;
            b = d > b ? d : b;
        }
        return b;
    }
    return hi - lo;
}

/* The plan of node n (inputs x ix, its zero point izx, w iw, izw); 0 when the kernel
 * does not take it. */
static int qp_plan(const Graph *g, const Node *n, int ix, int izx, int iw, int izw, QpGeom *p)
{
    const Target *t = g->target ? g->target : target_default();
    ConvGeom cg;
    Diag quiet;
    diag_init(&quiet, NULL);
    memset(p, 0, sizeof *p);
    if (t->vector_bytes < 16 || qconv_geom(g, n, ix, iw, &cg, &quiet) || cg.nsp != 2 || cg.k[1] > UNROLL_TAPS ||
        cg.N * cg.M * cg.out[0] * cg.out[1] == 0)
        return 0;
    const Value *x = node_in(g, n, ix), *w = node_in(g, n, iw);
    const Value *zx = izx >= 0 ? node_in(g, n, izx) : NULL, *zw = izw >= 0 ? node_in(g, n, izw) : NULL;
    int64_t Cg = cg.C / cg.G, Mg = cg.M / cg.G, KK = cg.k[0] * cg.k[1];
    int64_t bx = q_bound(x, zx, 1, 1), bw = q_bound(w, zw, cg.M, Cg * KK);
    int64_t per = bx * bw * KK;   /* bound of one channel's products */
    if (per >= QP_EXACT)
        return 0;
    p->cc = per ? (QP_EXACT - 1) / per : Cg;
    if (p->cc > Cg)
        p->cc = Cg;
    conv_block(g, n, &p->mr, &p->nr);
    if (p->mr > Mg)
        p->mr = Mg;
    int64_t OH = cg.out[0], OW = cg.out[1], s0 = cg.s[0], s1 = cg.s[1];
    p->PH = (OH - 1) * s0 + (cg.k[0] - 1) * cg.dl[0] + 1;
    p->PW = (OW - 1) * s1 + (cg.k[1] - 1) * cg.dl[1] + 1;
    p->PS = p->PH * p->PW;
    conv_block_shape(p->nr, OH, OW, &p->VW, &p->R);   /* the float padded-plane kernel's */
    p->NXB = (OW + p->VW - 1) / p->VW;
    p->NYB = (OH + p->R - 1) / p->R;
    p->lv = s1 == 1 && p->VW % 8 == 0 ? conv_lanes(g, p->VW) : 0;
    /* the last element a block reads, past the last plane's end */
    int64_t last = ((p->NYB * p->R - 1) * s0 + (cg.k[0] - 1) * cg.dl[0]) * p->PW +
                   (p->NXB * p->VW - 1) * s1 + (cg.k[1] - 1) * cg.dl[1] + 1;
    p->slack = last > p->PS ? last - p->PS : 0;
    p->floats = Cg * p->PS + p->slack + p->mr * Cg * KK;
    return 1;
}

static int64_t qp_bytes(const Graph *g, const Node *n, int ix, int izx, int iw, int izw)
{
    QpGeom p;
    return qp_plan(g, n, ix, izx, iw, izw, &p) ? p.floats * (int64_t)sizeof(float) : 0;
}

/* One block loop over the output pixels for mb output channels from m0 (C variables
 * b, g, m0 in scope; the weights of the block in wf). acc_init: the int32 each
 * accumulator starts from (a bias), NULL for 0. */
static void qp_block(Emitter *e, const ConvGeom *cg, const QpGeom *p, int64_t mb, int ibias, const Requant *rq,
                     const Epilogue *ep)
{
    Writer *w = e->w;
    int64_t Cg = cg->C / cg->G, K0 = cg->k[0], K1 = cg->k[1], KK = K0 * K1;
    int64_t OH = cg->out[0], OW = cg->out[1], OSZ = OH * OW, R = p->R, VW = p->VW;
    int64_t s0 = cg->s[0], s1 = cg->s[1];
    int chunks = p->cc < Cg;
    w_open(w, "for (int64_t bk = 0; bk < %" PRId64 "; ++bk)", p->NYB * p->NXB);
    w_line(w, "const int64_t oy0 = bk / %" PRId64 " * %" PRId64 ", ox0 = bk %% %" PRId64 " * %" PRId64 ";",
           p->NXB, R, p->NXB, VW);
    w_line(w, "const float *restrict xb = pl + oy0 * %" PRId64 " + ox0 * %" PRId64 ";", s0 * p->PW, s1);
    w_line(w, "float acc[%" PRId64 "][%" PRId64 "][%" PRId64 "];", mb, R, VW);
    if (chunks) {
        w_line(w, "int32_t iacc[%" PRId64 "][%" PRId64 "][%" PRId64 "];", mb, R, VW);
        em_for(w, "mm", mb);
        em_for(w, "r", R);
        em_for(w, "v", VW);
        w_line(w, "iacc[mm][r][v] = 0;");
        em_close(w, 3);
        w_open(w, "for (int64_t c0 = 0; c0 < %" PRId64 "; c0 += %" PRId64 ")", Cg, p->cc);
        w_line(w, "const int64_t ce = c0 + %" PRId64 " < %" PRId64 " ? c0 + %" PRId64 " : %" PRId64 ";", p->cc, Cg, p->cc, Cg);
    }
    int64_t lv = p->lv, vr = lv ? VW / lv : 0, nq = R * vr;
    if (lv)   /* named arrays, the form gcc keeps in registers (conv.c's pp_block_vec) */
        conv_vec_acc_init(w, mb, nq, lv, 0);
    else {
        em_for(w, "mm", mb);
        em_for(w, "r", R);
        em_for(w, "v", VW);
        w_line(w, "acc[mm][r][v] = 0;");
        em_close(w, 3);
    }
    if (chunks)
        w_open(w, "for (int64_t ci = c0; ci < ce; ++ci)");
    else
        em_for(w, "ci", Cg);
    w_line(w, "const float *restrict xr = xb + ci * %" PRId64 ";", p->PS);
    w_line(w, "const float *restrict wc = wf + ci * %" PRId64 ";", KK);
    em_for(w, "k0", K0);
    w_line(w, "const float *restrict xk = xr + k0 * %" PRId64 ";", cg->dl[0] * p->PW);
    w_line(w, "const float *restrict wk = wc + k0 * %" PRId64 ";", K1);
    if (lv) {
        conv_vec_taps(w, mb, Cg * KK, K1, cg->dl[1], 1, p->PS, s0 * p->PW, nq, vr, lv);
        em_close(w, 2);   /* k0, ci */
        /* the sums into acc, which the stores below read */
        em_for_lanes(w, "l", lv);
        for (int64_t mm = 0; mm < mb; mm++)
            for (int64_t q = 0; q < nq; q++)
                w_line(w, "acc[%" PRId64 "][%" PRId64 "][%" PRId64 " + l] = c%" PRId64 "_%" PRId64 "[l];", mm, q / vr,
                       q % vr * lv, mm, q);
        w_close(w);
    } else {
        for (int64_t kl = 0; kl < K1; kl++) {
            em_for(w, "mm", mb);
            w_line(w, "const float wv = wk[mm * %" PRId64 " + %" PRId64 "];", Cg * KK, kl);
            em_for(w, "r", R);
            em_for(w, "v", VW);
            if (s1 == 1)
                w_line(w, "acc[mm][r][v] += wv * xk[r * %" PRId64 " + v + %" PRId64 "];", s0 * p->PW, kl * cg->dl[1]);
            else
                w_line(w, "acc[mm][r][v] += wv * xk[r * %" PRId64 " + v * %" PRId64 " + %" PRId64 "];", s0 * p->PW, s1,
                       kl * cg->dl[1]);
            em_close(w, 3);
        }
        em_close(w, 2);   /* k0, ci */
    }
    if (chunks) {
        em_for(w, "mm", mb);
        em_for(w, "r", R);
        em_for(w, "v", VW);
        w_line(w, "iacc[mm][r][v] += (int32_t)acc[mm][r][v];");
        em_close(w, 3);
        w_close(w);   /* c0 */
    }
    /* with an epilogue (float output) the block stores the converted sums, and the
     * steps run over the channels' finished planes after the block loop: in the store
     * their operands would hold registers the accumulators need (8 x 16 blocks take all
     * 16 of AVX2's), and gcc then spills accumulators in the reduction (mnist-8-quantized's
     * 1 -> 8 channel layer: 9.5 -> 14.5 us) */
    const char *val = chunks ? (ep ? "(float)iacc[mm][r][v]" : "iacc[mm][r][v]")
                             : (ep ? "(float)(int32_t)acc[mm][r][v]" : "(int32_t)acc[mm][r][v]");
    int partial = p->NYB * R != OH || p->NXB * VW != OW;
    char idx[160];
    snprintf(idx, sizeof idx, "(b * %" PRId64 " + m0 + mm) * %" PRId64 " + (oy0 + r) * %" PRId64 " + ox0 + v", cg->M, OSZ, OW);
    if (partial) {
        w_line(w, "const int64_t nrow = %" PRId64 " - oy0 < %" PRId64 " ? %" PRId64 " - oy0 : %" PRId64 ";", OH, R, OH, R);
        w_line(w, "const int64_t nv = %" PRId64 " - ox0 < %" PRId64 " ? %" PRId64 " - ox0 : %" PRId64 ";", OW, VW, OW, VW);
    }
    /* a partial block without requantization: its values for the whole block into a
     * local (one vectorised loop), then the pixels inside the output copied out */
    int staged = partial && !rq;
    if (staged) {
        w_open(w, "if (nrow == %" PRId64 " && nv == %" PRId64 ")", R, VW);
    }
    for (int pass = 0; pass < 1 + partial; pass++) {
        if (staged && pass == 1) {
            w_close(w);
            w_open(w, "else");
            w_line(w, "%s o[%" PRId64 "][%" PRId64 "][%" PRId64 "];", ep ? "float" : "int32_t", mb, R, VW);
            em_for(w, "mm", mb);
            em_for(w, "r", R);
            em_for(w, "v", VW);
            w_line(w, "o[mm][r][v] = %s;", val);
            em_close(w, 2);
            w_open(w, "for (int64_t r = 0; r < nrow; ++r)");
            w_open(w, "for (int64_t v = 0; v < nv; ++v)");
            w_line(w, "y0[%s] = o[mm][r][v];", idx);
            em_close(w, 4);
            break;
        }
        if (partial && !staged)
            w_open(w, pass == 0 ? "if (nrow == %" PRId64 " && nv == %" PRId64 ")" : "else", R, VW);
        em_for(w, "mm", mb);
        if (rq)
            rq_mult(e, rq, "m0 + mm");
        if (pass == 0) {
            em_for(w, "r", R);
            em_for(w, "v", VW);
        } else {
            w_open(w, "for (int64_t r = 0; r < nrow; ++r)");
            w_open(w, "for (int64_t v = 0; v < nv; ++v)");
        }
        if (rq) {
            /* rq_store's locals r and v shadow the loops' from here */
            w_line(w, "const int64_t yi = %s;", idx);
            if (ibias >= 0)
                w_line(w, "const int32_t a = %s + x%d[m0 + mm];", val, ibias);
            else
                w_line(w, "const int32_t a = %s;", val);
            rq_store(e, rq, "y0[yi]", "a");
        } else {
            w_line(w, "y0[%s] = %s;", idx, val);
        }
        em_close(w, 3);
        if (partial && !staged)
            w_close(w);
    }
    w_close(w);   /* bk */
    if (ep && ep->n) {
        em_for(w, "mm", mb);
        w_line(w, "const int64_t y0i = (b * %" PRId64 " + m0 + mm) * %" PRId64 ";", cg->M, OSZ);
        w_line(w, "float *restrict yp = y0 + y0i;");
        em_for(w, "j", OSZ);
        q_epi_store(w, ep, "yp[j]", "yp[j]", "y0i + j", "m0 + mm");
        em_close(w, 2);
    }
}

/* Emit the integer Conv through the exact-float kernel: 1 if emitted, 0 if the node
 * has no scratch for it (or the kernel does not take it). */
static int emit_qplanes(Emitter *e, const Node *n, int ix, int izx, int iw, int izw, int ibias, const Requant *rq,
                        const Epilogue *ep)
{
    const Graph *g = e->g;
    QpGeom p;
    const Value *t = node_out(g, n, n->noutputs - 1);
    if (n->noutputs < 2 || !t || !t->is_scratch || !qp_plan(g, n, ix, izx, iw, izw, &p) || value_numel(t) < p.floats)
        return 0;
    ConvGeom cg;
    Diag quiet;
    diag_init(&quiet, NULL);
    if (qconv_geom(g, n, ix, iw, &cg, &quiet))
        return 0;
    const Value *x = node_in(g, n, ix), *zw = izw >= 0 ? node_in(g, n, izw) : NULL;
    int64_t Cg = cg.C / cg.G, Mg = cg.M / cg.G, KK = cg.k[0] * cg.k[1], IH = cg.in[0], IW = cg.in[1];
    int64_t pt = cg.pb[0], pl = cg.pb[1], s1 = cg.s[1];
    int ys = n->noutputs - 1;
    Writer *w = e->w;
    w_line(w, "/* exact-float planes: blocks of %" PRId64 " channels x %" PRId64 " rows x %" PRId64
           " columns, planes of %" PRId64 " x %" PRId64 ", %" PRId64 " input channel%s per exact chunk */",
           p.mr, p.R, p.VW, p.PH, p.PW, p.cc, p.cc == 1 ? "" : "s");
    if (izx >= 0 && node_in(g, n, izx))
        w_line(w, "const int32_t zx = (int32_t)x%d[0];", izx);
    else
        w_line(w, "const int32_t zx = 0;");
    w_line(w, "float *restrict pl = y%d;", ys);
    w_line(w, "float *restrict wf = y%d + %" PRId64 ";", ys, Cg * p.PS + p.slack);
    em_for(w, "j", p.slack);
    w_line(w, "pl[%" PRId64 " + j] = 0;", Cg * p.PS);
    w_close(w);
    em_for(w, "b", cg.N);
    em_for(w, "g", cg.G);
    /* the group's planes: padded column c holds input column (c - pl) when inside */
    em_for(w, "ci", Cg);
    w_line(w, "float *restrict pp = pl + ci * %" PRId64 ";", p.PS);
    w_line(w, "const %s *restrict xc = x%d + (b * %" PRId64 " + g * %" PRId64 " + ci) * %" PRId64 ";",
           dtype_ctype(x->dtype), ix, cg.C, Cg, IH * IW);
    em_for(w, "r", p.PH);
    w_line(w, "const int64_t u = r - %" PRId64 ";", pt);
    w_line(w, "float *restrict pr = pp + r * %" PRId64 ";", p.PW);
    w_open(w, "if (u < 0 || u >= %" PRId64 ")", IH);
    em_for(w, "c", p.PW);
    w_line(w, "pr[c] = 0;");
    w_close(w);
    w_line(w, "continue;");
    w_close(w);
    w_line(w, "const %s *restrict xr = xc + u * %" PRId64 ";", dtype_ctype(x->dtype), IW);
    int64_t clo = pl < p.PW ? pl : p.PW, chi = IW + pl < p.PW ? IW + pl : p.PW;
    if (chi < clo)
        chi = clo;
    if (clo > 0) {
        em_for(w, "c", clo);
        w_line(w, "pr[c] = 0;");
        w_close(w);
    }
    if (chi > clo) {
        w_open(w, "for (int64_t c = %" PRId64 "; c < %" PRId64 "; ++c)", clo, chi);
        w_line(w, "pr[c] = (float)((int32_t)xr[c - %" PRId64 "] - zx);", pl);
        w_close(w);
    }
    if (chi < p.PW) {
        w_open(w, "for (int64_t c = %" PRId64 "; c < %" PRId64 "; ++c)", chi, p.PW);
        w_line(w, "pr[c] = 0;");
        w_close(w);
    }
    em_close(w, 2);   /* r, ci */
    (void)s1;
    int64_t nfull = Mg / p.mr, rem = Mg % p.mr;
    for (int part = 0; part < 2; part++) {
        int64_t mb = part == 0 ? p.mr : rem;
        if (part == 0 && nfull == 0)
            continue;
        if (part == 1 && rem == 0)
            break;
        if (part == 0) {
            w_open(w, "for (int64_t mo = 0; mo < %" PRId64 "; mo += %" PRId64 ")", nfull * p.mr, p.mr);
            w_line(w, "const int64_t m0 = g * %" PRId64 " + mo;", Mg);
        } else {
            w_open(w, "%s", "");
            w_line(w, "const int64_t m0 = g * %" PRId64 " + %" PRId64 ";", Mg, nfull * p.mr);
        }
        /* the block's weights, shifted by their zero points */
        em_for(w, "mm", mb);
        if (zw)
            w_line(w, "const int32_t zw = (int32_t)x%d[%s];", izw, value_numel(zw) == 1 ? "0" : "m0 + mm");
        else
            w_line(w, "const int32_t zw = 0;");
        em_for(w, "j", Cg * KK);
        w_line(w, "wf[mm * %" PRId64 " + j] = (float)((int32_t)x%d[(m0 + mm) * %" PRId64 " + j] - zw);", Cg * KK, iw, Cg * KK);
        em_close(w, 2);
        qp_block(e, &cg, &p, mb, ibias, rq, ep);
        w_close(w);
    }
    em_close(w, 2);   /* g, b */
    return 1;
}

static int64_t scratch_conv_integer(const Graph *g, const Node *n, int64_t budget)
{
    int64_t b = qp_bytes(g, n, 0, 2, 1, 3);
    return b <= budget ? b : 0;
}

/* --tune may time register blocks for the node when the exact-float kernel takes it */
static int tunable_conv_integer(const Graph *g, const Node *n)
{
    QpGeom p;
    return qp_plan(g, n, 0, 2, 1, 3, &p);
}

static int tunable_qlinear_conv(const Graph *g, const Node *n)
{
    QpGeom p;
    return qp_plan(g, n, 0, 2, 3, 5, &p);
}

static int64_t scratch_qlinear_conv(const Graph *g, const Node *n, int64_t budget)
{
    int64_t b = qp_bytes(g, n, 0, 2, 3, 5);
    return b <= budget ? b : 0;
}

static int infer_conv_integer(Graph *g, Node *n, Diag *d)
{
    return iconv_infer_common(g, n, 0, 2, 1, 3, DT_INT32, d);
}

static int emit_conv_integer(Emitter *e, const Node *n, Diag *d)
{
    if (emit_qplanes(e, n, 0, 2, 1, 3, -1, NULL, NULL))
        return 0;
    return emit_iconv_planes(e, n, 0, 2, 1, 3, d);
}

/* ---------------------------------------------------------------- exact-float MatMul */

/* The fast integer matrix product, the same float-on-exact-integers idea as the Conv
 * kernel above: per output matrix and panel of NB columns, B - zb is converted into
 * the scratch as float Bf[K][NB] (the columns past N zero), then per block of mr rows
 * A - za into Af[mr][K], and each block of mr rows by nr columns of the panel sums
 * over K in float accumulators, in chunks of kc products that stay below 2^24
 * (kc * bx * bw < 2^24), each chunk added into int32. The panel is as wide as the
 * scratch allows (all of N rounded up to nr when it fits), so the rows of A are
 * converted once per panel. Taken where the target vectorises and the node has the
 * scratch for a panel of at least nr columns; else the integer loops. */
typedef struct QmGeom {
    int64_t mr, nr, NP, kc;
    int64_t NB;          /* panel columns (a multiple of nr, at most NP) */
    int64_t floats;      /* scratch for the widest panel */
} QmGeom;

/* The panel width that `floats` of scratch hold, 0 if not even nr columns. */
static int64_t qm_panel(const QmGeom *p, int64_t K, int64_t floats)
{
    int64_t nb = (floats - p->mr * K) / K / p->nr * p->nr;
    return nb < p->nr ? 0 : nb < p->NP ? nb : p->NP;
}

static int qm_plan(const Graph *g, const Node *n, int ia, int iza, int ib, int izb, QmGeom *p)
{
    const Target *t = g->target ? g->target : target_default();
    const Value *a = node_in(g, n, ia), *b = node_in(g, n, ib);
    const Value *za = iza >= 0 ? node_in(g, n, iza) : NULL, *zb = izb >= 0 ? node_in(g, n, izb) : NULL;
    IMM m;
    Diag quiet;
    diag_init(&quiet, NULL);
    memset(p, 0, sizeof *p);
    if (t->vector_bytes < 16 || !a || !b || imm_shape(n, a, b, &m, &quiet) || dims_numel(m.orank, m.odims) == 0 ||
        m.K == 0)
        return 0;
    /* zero points per tensor or per row/column (not per batch) */
    if ((za && value_numel(za) != 1 && value_numel(za) != m.M) || (zb && value_numel(zb) != 1 && value_numel(zb) != m.N))
        return 0;
    int64_t bx = q_bound(a, za && value_numel(za) == 1 ? za : NULL, 1, 1), bw = q_bound(b, zb && value_numel(zb) == 1 ? zb : NULL, 1, 1);
    int64_t lo = 0, hi = 0;
    if (za && value_numel(za) != 1) {
        qrange(a->dtype, &lo, &hi);
        bx = hi - lo;
    }
    if (zb && value_numel(zb) != 1) {
        qrange(b->dtype, &lo, &hi);
        bw = hi - lo;
    }
    int64_t per = bx * bw;
    p->kc = per ? (QP_EXACT - 1) / per : m.K;
    if (p->kc > m.K)
        p->kc = m.K;
    if (p->kc < 1)
        return 0;
    /* --tune's block, else 4 x 16 (gcc 12, znver3: 64x512x256 in 680 us against 890
     * for the integer loops, 128x64x64 39 against 55; 4 x 8 won the first, 546 us, but
     * took 533 us on the second, where gcc's vectoriser went wrong) */
    p->mr = n->block_m > 0 ? n->block_m : 4;
    p->nr = n->block_n > 0 ? n->block_n : 16;
    if (p->mr > m.M)
        p->mr = m.M;
    if (p->nr > (m.N + 7) / 8 * 8)
        p->nr = (m.N + 7) / 8 * 8;
    p->NP = (m.N + p->nr - 1) / p->nr * p->nr;
    p->NB = p->NP;
    p->floats = m.K * p->NP + p->mr * m.K;
    return 1;
}

static int64_t qm_scratch(const Graph *g, const Node *n, int64_t budget, int ia, int iza, int ib, int izb)
{
    QmGeom p;
    if (!qm_plan(g, n, ia, iza, ib, izb, &p))
        return 0;
    int64_t K = node_in(g, n, ia)->dims[node_in(g, n, ia)->rank - 1];
    int64_t nb = qm_panel(&p, K, budget / (int64_t)sizeof(float));
    return nb ? (nb * K + p.mr * K) * (int64_t)sizeof(float) : 0;
}

static int tunable_matmul_integer(const Graph *g, const Node *n)
{
    QmGeom p;
    return qm_plan(g, n, 0, 2, 1, 3, &p);
}

static int tunable_qlinear_matmul(const Graph *g, const Node *n)
{
    QmGeom p;
    return qm_plan(g, n, 0, 2, 3, 5, &p);
}

static int64_t scratch_matmul_integer(const Graph *g, const Node *n, int64_t budget)
{
    return qm_scratch(g, n, budget, 0, 2, 1, 3);
}

static int64_t scratch_qlinear_matmul(const Graph *g, const Node *n, int64_t budget)
{
    return qm_scratch(g, n, budget, 0, 2, 3, 5);
}

/* One block of mb rows from m0 (C variables i, j0, m0 in scope) over every column block. */
static void qm_block(Emitter *e, const IMM *m, const QmGeom *p, int64_t mb, int iza, int nza, const Requant *rq)
{
    Writer *w = e->w;
    int64_t K = m->K, N = m->N, M = m->M, NB = p->NB, nr = p->nr;
    int chunks = p->kc < K;
    /* the block's rows of A - za */
    em_for(w, "mm", mb);
    if (nza == 1)
        w_line(w, "const int32_t za = (int32_t)x%d[0];", iza);
    else if (nza)
        w_line(w, "const int32_t za = (int32_t)x%d[m0 + mm];", iza);
    else
        w_line(w, "const int32_t za = 0;");
    em_for(w, "k", K);
    w_line(w, "af[mm * %" PRId64 " + k] = (float)((int32_t)ab[(m0 + mm) * %" PRId64 " + k] - za);", K, K);
    em_close(w, 2);
    w_open(w, "for (int64_t q0 = 0; q0 < %" PRId64 "; q0 += %" PRId64 ")", NB, nr);
    w_line(w, "const int64_t n0 = p0 + q0;");
    w_open(w, "if (n0 >= %" PRId64 ")", N);
    w_line(w, "break;");
    w_close(w);
    w_line(w, "float acc[%" PRId64 "][%" PRId64 "];", mb, nr);
    if (chunks) {
        w_line(w, "int32_t iacc[%" PRId64 "][%" PRId64 "];", mb, nr);
        em_for(w, "mm", mb);
        em_for(w, "v", nr);
        w_line(w, "iacc[mm][v] = 0;");
        em_close(w, 2);
        w_open(w, "for (int64_t k0 = 0; k0 < %" PRId64 "; k0 += %" PRId64 ")", K, p->kc);
        w_line(w, "const int64_t ke = k0 + %" PRId64 " < %" PRId64 " ? k0 + %" PRId64 " : %" PRId64 ";", p->kc, K, p->kc, K);
    }
    em_for(w, "mm", mb);
    em_for(w, "v", nr);
    w_line(w, "acc[mm][v] = 0;");
    em_close(w, 2);
    if (chunks)
        w_open(w, "for (int64_t k = k0; k < ke; ++k)");
    else
        em_for(w, "k", K);
    w_line(w, "const float *restrict bk = bf + k * %" PRId64 " + q0;", NB);
    em_for(w, "mm", mb);
    w_line(w, "const float av = af[mm * %" PRId64 " + k];", K);
    em_for(w, "v", nr);
    w_line(w, "acc[mm][v] += av * bk[v];");
    em_close(w, 3);
    if (chunks) {
        em_for(w, "mm", mb);
        em_for(w, "v", nr);
        w_line(w, "iacc[mm][v] += (int32_t)acc[mm][v];");
        em_close(w, 3);   /* v, mm, k0 */
    }
    /* the sums into a local with constant bounds, then stored: reading the
     * accumulators in a loop of variable length kept some of them in memory across the
     * reduction (gcc 12: a store-to-load chain per k, 3x slower) */
    w_line(w, "int32_t o[%" PRId64 "][%" PRId64 "];", mb, nr);
    em_for(w, "mm", mb);
    em_for(w, "v", nr);
    w_line(w, "o[mm][v] = %s;", chunks ? "iacc[mm][v]" : "(int32_t)acc[mm][v]");
    em_close(w, 2);
    const char *val = "o[mm][v]";
    w_line(w, "const int64_t nv = %" PRId64 " - n0 < %" PRId64 " ? %" PRId64 " - n0 : %" PRId64 ";", N, nr, N, nr);
    em_for(w, "mm", mb);
    w_open(w, "for (int64_t v = 0; v < nv; ++v)");
    char dst[160];
    snprintf(dst, sizeof dst, "y0[(i * %" PRId64 " + m0 + mm) * %" PRId64 " + n0 + v]", M, N);
    if (rq) {
        /* rq_mult and rq_store declare mult, v and r: a block of their own */
        w_line(w, "const int64_t yi = (i * %" PRId64 " + m0 + mm) * %" PRId64 " + n0 + v;", M, N);
        w_line(w, "const int64_t col = n0 + v;");
        w_line(w, "const int32_t a = %s;", val);
        rq_mult(e, rq, "col");
        rq_store(e, rq, "y0[yi]", "a");
    } else {
        w_line(w, "%s = %s;", dst, val);
    }
    em_close(w, 3);   /* v, mm, n0 */
}

/* Emit the integer product through the exact-float kernel: 1 if emitted, 0 if not taken. */
static int emit_imm_fast(Emitter *e, const Node *n, int ia, int iza, int ib, int izb, const Requant *rq)
{
    const Graph *g = e->g;
    QmGeom p;
    const Value *t = node_out(g, n, n->noutputs - 1);
    if (n->noutputs < 2 || !t || !t->is_scratch || !qm_plan(g, n, ia, iza, ib, izb, &p))
        return 0;
    const Value *a = node_in(g, n, ia), *b = node_in(g, n, ib);
    const Value *za = iza >= 0 ? node_in(g, n, iza) : NULL, *zb = izb >= 0 ? node_in(g, n, izb) : NULL;
    IMM m;
    Diag quiet;
    diag_init(&quiet, NULL);
    if (imm_shape(n, a, b, &m, &quiet))
        return 0;
    int64_t K = m.K, N = m.N, M = m.M;
    p.NB = qm_panel(&p, K, value_numel(t));
    if (!p.NB)
        return 0;
    int64_t NB = p.NB;
    int ys = n->noutputs - 1;
    Writer *w = e->w;
    w_line(w, "/* exact-float product: blocks of %" PRId64 " rows x %" PRId64 " columns, panels of %" PRId64
           " columns, %" PRId64 " products per exact chunk */", p.mr, p.nr, NB, p.kc);
    w_line(w, "float *restrict bf = y%d;", ys);
    w_line(w, "float *restrict af = y%d + %" PRId64 ";", ys, K * NB);
    Value ov, av, bv;
    shape_value(&ov, m.rb, m.ob);
    shape_value(&av, m.rab, m.ab);
    shape_value(&bv, m.rbb, m.bb);
    const Value *ins[2] = {&av, &bv};
    int open = em_broadcast_loops(w, &ov, ins, 2);
    w_line(w, "const %s *restrict ab = x%d + j0 * %" PRId64 ";", dtype_ctype(a->dtype), ia, M * K);
    w_line(w, "const %s *restrict bb = x%d + j1 * %" PRId64 ";", dtype_ctype(b->dtype), ib, K * N);
    /* the panel's columns of B - zb, those past N zero */
    int64_t nzb = zb ? value_numel(zb) : 0;
    if (nzb == 1)
        w_line(w, "const int32_t zb = (int32_t)x%d[0];", izb);
    w_open(w, "for (int64_t p0 = 0; p0 < %" PRId64 "; p0 += %" PRId64 ")", p.NP, NB);
    w_line(w, "const int64_t pw = %" PRId64 " - p0 < %" PRId64 " ? %" PRId64 " - p0 : %" PRId64 ";", N, NB, N, NB);
    em_for(w, "k", K);
    w_line(w, "const %s *restrict br = bb + k * %" PRId64 " + p0;", dtype_ctype(b->dtype), N);
    w_line(w, "float *restrict bq = bf + k * %" PRId64 ";", NB);
    w_open(w, "for (int64_t c = 0; c < pw; ++c)");
    if (nzb == 1)
        w_line(w, "bq[c] = (float)((int32_t)br[c] - zb);");
    else if (nzb)
        w_line(w, "bq[c] = (float)((int32_t)br[c] - (int32_t)x%d[p0 + c]);", izb);
    else
        w_line(w, "bq[c] = (float)br[c];");
    w_close(w);
    w_open(w, "for (int64_t c = pw; c < %" PRId64 "; ++c)", NB);
    w_line(w, "bq[c] = 0;");
    em_close(w, 2);
    int nza = za ? (value_numel(za) == 1 ? 1 : 2) : 0;
    int64_t nfull = M / p.mr, rem = M % p.mr;
    if (nfull) {
        w_open(w, "for (int64_t m0 = 0; m0 < %" PRId64 "; m0 += %" PRId64 ")", nfull * p.mr, p.mr);
        qm_block(e, &m, &p, p.mr, iza, nza, rq);
        w_close(w);
    }
    if (rem) {
        w_open(w, "%s", "");
        w_line(w, "const int64_t m0 = %" PRId64 ";", nfull * p.mr);
        qm_block(e, &m, &p, rem, iza, nza, rq);
        w_close(w);
    }
    w_close(w);   /* p0 */
    em_close(w, open);
    return 1;
}

/* ---------------------------------------------------------------- kdcc.FusedConvInteger */

/* ConvInteger -> Cast to float -> elementwise steps, as one node (made by passes/fuse.c):
 * the inputs of ConvInteger (x, w, x_zero_point, w_zero_point; absent ones -1), then the
 * operands of the epilogue's binary steps from input 4, and the epilogue attributes of
 * compiler/ops/fused.h; the output is float. Each output element is the int32 sum
 * converted to float (what the Cast computes), then the steps in order, at the store
 * of either integer Conv kernel. Besides operands of the output's element count or of
 * one element, an operand may hold one value per output channel (shape [M, 1, ...] or
 * [1, M, 1, ...] aligned with y's dims from the right: a Conv's bias after its scale),
 * read at the channel. The planes of int32 sums and the Cast's, Mul's, Add's and
 * Relu's passes over them are never stored. */
static int q_epi_read(const Graph *g, const Node *n, Epilogue *ep, Diag *d)
{
    if (epilogue_read(g, n, 4, ep, d))
        return -1;
    const Value *y = node_out(g, n, 0);
    for (int i = 0; i < ep->n; i++) {
        EpiStep *st = &ep->s[i];
        if (act_grad_step_known(st->op))
            return diag_error(d, n, "epilogue step %s does not apply to an integer Conv", st->op);
        if (st->operand < 0 || st->scalar)
            continue;
        const Value *v = node_in(g, n, st->operand);
        if (value_numel(v) == value_numel(y))
            continue;
        /* per channel: M elements, every dim 1 but the one aligned with y's dim 1 */
        int off = y->rank - v->rank, ok = y->rank >= 3 && off >= 0 && off <= 1 && value_numel(v) == y->dims[1];
        for (int k = 0; ok && k < v->rank; k++)
            ok = v->dims[k] == (k + off == 1 ? y->dims[1] : 1);
        if (!ok)
            return diag_error(d, n, "epilogue operand '%s' has neither the output's element count, one element, nor one per output channel",
                              v->name);
        st->scalar = 2;
    }
    return 0;
}

static int infer_fused_conv_integer(Graph *g, Node *n, Diag *d)
{
    if (iconv_infer_common(g, n, 0, 2, 1, 3, DT_FLOAT, d))
        return -1;
    Epilogue ep;
    if (q_epi_read(g, n, &ep, d))
        return -1;
    for (int i = 0; i < ep.n; i++)
        if (ep.s[i].operand >= 0 && node_in(g, n, ep.s[i].operand)->dtype != DT_FLOAT)
            return err_dtype(d, n, "an epilogue operand", node_in(g, n, ep.s[i].operand)->dtype);
    return 0;
}

static int emit_fused_conv_integer(Emitter *e, const Node *n, Diag *d)
{
    Epilogue ep;
    if (q_epi_read(e->g, n, &ep, d))
        return -1;
    if (emit_qplanes(e, n, 0, 2, 1, 3, -1, NULL, &ep))
        return 0;
    return emit_iconv(e, n, 0, 2, 1, 3, -1, NULL, &ep, d);
}

static const OpDef op_fused_conv_integer = {
    .name = "FusedConvInteger", .domain = "kdcc", .since = 1,
    .min_inputs = 2, .max_inputs = -1, .min_outputs = 1, .max_outputs = 1,
    .infer = infer_fused_conv_integer, .emit = emit_fused_conv_integer, .scratch_within = scratch_conv_integer,
    .tunable = tunable_conv_integer,
    .summary = "ConvInteger, Cast to float and elementwise steps (scale, per-channel bias, activation) at the store (made by the fusion pass)",
};

static const OpDef op_conv_integer = {
    .name = "ConvInteger", .domain = "", .since = 10,
    .min_inputs = 2, .max_inputs = 4, .min_outputs = 1, .max_outputs = 1,
    .infer = infer_conv_integer, .emit = emit_conv_integer, .scratch_within = scratch_conv_integer,
    .tunable = tunable_conv_integer,
    .summary = "int32 convolution of (x - x_zero_point) and (w - w_zero_point), int8/uint8; w's zero point per tensor or channel",
};

static int infer_qlinear_conv(Graph *g, Node *n, Diag *d)
{
    for (int i = 0; i < 8; i++)
        if (!need_input(g, n, i, d))
            return -1;
    const Value *sx = node_in(g, n, 1), *sw = node_in(g, n, 4), *sy = node_in(g, n, 6), *zy = node_in(g, n, 7);
    ConvGeom cg;
    if (qconv_geom(g, n, 0, 3, &cg, d))
        return -1;
    if (!is_scale_type(sx->dtype))
        return err_dtype(d, n, "x_scale", sx->dtype);
    if (scale_ok(n, sx, sx->dtype, 1, "x_scale", d) || scale_ok(n, sw, sx->dtype, cg.M, "w_scale", d) ||
        scale_ok(n, sy, sx->dtype, 1, "y_scale", d))
        return -1;
    if (!is_int8(zy->dtype))
        return err_dtype(d, n, "y_zero_point", zy->dtype);
    if (value_numel(zy) != 1)
        return diag_error(d, n, "y_zero_point must have one element");
    const Value *bias = node_in(g, n, 8);
    if (bias && (bias->dtype != DT_INT32 || bias->rank != 1 || bias->dims[0] != cg.M))
        return diag_error(d, n, "bias B must be int32 of shape [%" PRId64 "]", cg.M);
    return iconv_infer_common(g, n, 0, 2, 3, 5, zy->dtype, d);
}

static int emit_qlinear_conv(Emitter *e, const Node *n, Diag *d)
{
    const Graph *g = e->g;
    Requant rq = {.st = node_in(g, n, 1)->dtype, .yt = node_out(g, n, 0)->dtype,
                  .sa = 1, .sb = 4, .sy = 6, .zy = 7, .nb = value_numel(node_in(g, n, 4))};
    int ibias = node_in(g, n, 8) ? 8 : -1;
    if (emit_qplanes(e, n, 0, 2, 3, 5, ibias, &rq, NULL))
        return 0;
    return emit_iconv(e, n, 0, 2, 3, 5, ibias, &rq, NULL, d);
}

static const OpDef op_qlinear_conv = {
    .name = "QLinearConv", .domain = "", .since = 10,
    .min_inputs = 8, .max_inputs = 9, .min_outputs = 1, .max_outputs = 1,
    .infer = infer_qlinear_conv, .emit = emit_qlinear_conv, .scratch_within = scratch_qlinear_conv,
    .tunable = tunable_qlinear_conv,
    .summary = "ConvInteger plus int32 bias, requantized: saturate(round(acc * x_scale * w_scale / y_scale + y_zero_point))",
};

const OpDef *const ops_quant[] = {
    &op_quantize_linear, &op_dequantize_linear, &op_dynamic_quantize_linear,
    &op_matmul_integer, &op_qlinear_matmul, &op_conv_integer, &op_qlinear_conv, &op_fused_conv_integer,
    NULL,
};

/* Normalisation: BatchNormalization (inference, and training_mode batch statistics),
 * LayerNormalization, RMSNormalization, InstanceNormalization, GroupNormalization,
 * MeanVarianceNormalization.
 *
 * Layer/RMS/Instance/Group normalisation all normalise contiguous blocks of the
 * input (M blocks of L elements) and differ only in how the scale and bias are
 * indexed, so they share one emitter. Statistics use two passes (mean, then the
 * mean of squared deviations) in the stash type (float unless told otherwise).
 */
#include "compiler/ops/ops.h"

#include <inttypes.h>
#include <string.h>

/* gradient rules (compiler/ops/norm_grad.c) */
int norm_grad_block(GradCtx *c);
int norm_grad_batchnorm(GradCtx *c);
extern const OpDef op_norm_grad, op_batchnorm_training_grad;

/* the index expression of an operand broadcast against the block shape (also used by
 * the gradient operators) */
int norm_bcast_index(char *buf, size_t n, int r, const int64_t *dims, int br, const int64_t *bdims);

/* ---- element conversions: float16/bfloat16 are computed in float (em_half_load
 * reads them); st_of also casts to float and double ---- */

static const char *st_of(Emitter *e, DType t)
{
    switch (t) {
    case DT_FLOAT16:
        e->prelude |= PRE_HALF;
        return "kd_f2h";
    case DT_BFLOAT16:
        e->prelude |= PRE_BF16;
        return "kd_f2bf";
    case DT_FLOAT:
        return "(float)";
    case DT_DOUBLE:
        return "(double)";
    default:
        return "";
    }
}

static int is_real(DType t)
{
    return t == DT_FLOAT || t == DT_DOUBLE || t == DT_FLOAT16 || t == DT_BFLOAT16;
}

/* compute type for a stash dtype */
static DType compute_dt(DType t)
{
    return t == DT_DOUBLE ? DT_DOUBLE : DT_FLOAT;
}

static int need_real(Graph *g, Node *n, int i, Diag *d)
{
    Value *v = node_in(g, n, i);
    if (!v)
        return 0;
    if (!need_input(g, n, i, d))
        return -1;
    if (!is_real(v->dtype))
        return err_dtype(d, n, n->op_type, v->dtype);
    return 0;
}

/* Index expression (in terms of the block-local flat index `j`) of an operand of
 * shape (r, dims) broadcast against the trailing block shape (br, bdims). Returns
 * -1 if it does not broadcast. */
int norm_bcast_index(char *buf, size_t n, int r, const int64_t *dims, int br, const int64_t *bdims)
{
    if (r > br)
        for (int i = 0; i < r - br; i++)
            if (dims[i] != 1)
                return -1;
    int64_t numel = 1, bnumel = 1;
    for (int i = 0; i < r; i++)
        numel *= dims[i];
    for (int i = 0; i < br; i++)
        bnumel *= bdims[i];
    if (numel == 1) {
        snprintf(buf, n, "0");
        return 0;
    }
    int off = br - r;
    int same = 1;
    for (int i = 0; i < br; i++) {
        int64_t dv = i - off >= 0 ? dims[i - off] : 1;
        if (dv != bdims[i] && dv != 1)
            return -1;
        if (dv != bdims[i])
            same = 0;
    }
    if (same) {
        snprintf(buf, n, "j");
        return 0;
    }
    size_t len = 0;
    len += (size_t)snprintf(buf + len, n - len, "(0");
    int64_t bst = bnumel, st = numel;
    for (int i = 0; i < br && len < n; i++) {
        int64_t dv = i - off >= 0 ? dims[i - off] : 1;
        bst /= bdims[i];
        st /= dv;
        if (dv == 1)
            continue;
        len += (size_t)snprintf(buf + len, n - len, " + (j / %" PRId64 " %% %" PRId64 ") * %" PRId64, bst, bdims[i], st);
    }
    if (len < n)
        snprintf(buf + len, n - len, ")");
    return len < n ? 0 : -1;
}

/* ---------------------------------------------------------------- block normalisation */

typedef struct BlockNorm {
    int64_t M, L;         /* M blocks of L contiguous elements */
    DType xt, ct;         /* element type of x/y, compute type */
    double eps;
    int rms;              /* no mean subtraction */
    const char *sidx;     /* scale index expression (m, j), NULL: no scale */
    DType st;
    const char *bidx;     /* bias index expression, NULL: no bias */
    DType bt;
    int scale_in, bias_in;  /* input positions of scale and bias */
    int mean_out, inv_out;  /* output positions (or -1) of Mean and InvStdDev (type ct) */
} BlockNorm;

static void emit_block_norm(Emitter *e, const BlockNorm *B)
{
    Writer *w = e->w;
    const char *ct = dtype_ctype(B->ct), *fs = B->ct == DT_DOUBLE ? "" : "f";
    const char *ld = em_half_load(e, B->xt), *st = st_of(e, B->xt);
    if (B->M * B->L == 0)
        return;
    em_for(w, "m", B->M);
    w_line(w, "const %s *restrict xb = x0 + m * %" PRId64 ";", dtype_ctype(B->xt), B->L);
    w_line(w, "%s *restrict yb = y0 + m * %" PRId64 ";", dtype_ctype(B->xt), B->L);
    if (!B->rms) {
        w_printf(w, "%s s = ", ct);
        em_literal(w, B->ct, 0);
        w_puts(w, ";\n");
        em_for(w, "j", B->L);
        w_line(w, "s += (%s)%s(xb[j]);", ct, ld);
        w_close(w);
        w_printf(w, "const %s mean = s / ", ct);
        em_literal(w, B->ct, (double)B->L);
        w_puts(w, ";\n");
    }
    w_printf(w, "%s q = ", ct);
    em_literal(w, B->ct, 0);
    w_puts(w, ";\n");
    em_for(w, "j", B->L);
    w_line(w, "const %s t = (%s)%s(xb[j])%s;", ct, ct, ld, B->rms ? "" : " - mean");
    w_line(w, "q += t * t;");
    w_close(w);
    w_printf(w, "const %s inv = ", ct);
    em_literal(w, B->ct, 1);
    w_printf(w, " / sqrt%s(q / ", fs);
    em_literal(w, B->ct, (double)B->L);
    w_puts(w, " + ");
    em_literal(w, B->ct, B->eps);
    w_puts(w, ");\n");
    em_for(w, "j", B->L);
    w_printf(w, "yb[j] = %s(((%s)%s(xb[j])%s) * inv", st, ct, ld, B->rms ? "" : " - mean");
    if (B->sidx)
        w_printf(w, " * (%s)%s(x%d[%s])", ct, em_half_load(e, B->st), B->scale_in, B->sidx);
    if (B->bidx)
        w_printf(w, " + (%s)%s(x%d[%s])", ct, em_half_load(e, B->bt), B->bias_in, B->bidx);
    w_puts(w, ");\n");
    w_close(w);
    if (B->mean_out >= 0)
        w_line(w, "y%d[m] = mean;", B->mean_out);
    if (B->inv_out >= 0)
        w_line(w, "y%d[m] = inv;", B->inv_out);
    w_close(w);
}

/* ---------------------------------------------------------------- LayerNormalization / RMSNormalization */

static DType stash_dtype(const Node *n)
{
    int64_t s = attr_int(n, "stash_type", 1);
    return s == DT_DOUBLE ? DT_DOUBLE : DT_FLOAT;
}

static int infer_layernorm(Graph *g, Node *n, Diag *d)
{
    Value *x = need_input(g, n, 0, d);
    if (!x)
        return -1;
    if (!is_real(x->dtype))
        return err_dtype(d, n, n->op_type, x->dtype);
    if (need_real(g, n, 1, d) || need_real(g, n, 2, d))
        return -1;
    int ax = norm_axis(d, n, attr_int(n, "axis", -1), x->rank);
    if (ax < 0)
        return -1;
    for (int i = 1; i <= 2; i++) {
        Value *v = node_in(g, n, i);
        char buf[256];
        if (v && norm_bcast_index(buf, sizeof buf, v->rank, v->dims, x->rank - ax, x->dims + ax) < 0)
            return diag_error(d, n, "%s '%s' does not broadcast to the normalised shape", i == 1 ? "scale" : "bias", v->name);
    }
    value_set_shape(node_out(g, n, 0), x->dtype, x->rank, x->dims);
    int64_t dims[KD_MAX_RANK];
    for (int i = 0; i < x->rank; i++)
        dims[i] = i < ax ? x->dims[i] : 1;
    for (int o = 1; o <= 2; o++) {
        Value *v = node_out(g, n, o);
        if (v)
            value_set_shape(v, stash_dtype(n), x->rank, dims);
    }
    return 0;
}

static int emit_layernorm(Emitter *e, const Node *n, Diag *d)
{
    const Value *x = node_in(e->g, n, 0), *s = node_in(e->g, n, 1), *b = node_in(e->g, n, 2);
    int rms = strcmp(n->op_type, "RMSNormalization") == 0;
    int ax = norm_axis(d, n, attr_int(n, "axis", -1), x->rank);
    if (ax < 0)
        return -1;
    BlockNorm B = {0};
    B.M = 1;
    B.L = 1;
    for (int i = 0; i < x->rank; i++) {
        if (i < ax)
            B.M *= x->dims[i];
        else
            B.L *= x->dims[i];
    }
    B.xt = x->dtype;
    B.ct = compute_dt(stash_dtype(n));
    B.eps = attr_float(n, "epsilon", 1e-5);
    B.rms = rms;
    char sbuf[256], bbuf[256];
    if (s) {
        if (norm_bcast_index(sbuf, sizeof sbuf, s->rank, s->dims, x->rank - ax, x->dims + ax) < 0)
            return diag_error(d, n, "scale does not broadcast to the normalised shape");
        B.sidx = sbuf;
        B.st = s->dtype;
        B.scale_in = 1;
    }
    if (b && !rms) {
        if (norm_bcast_index(bbuf, sizeof bbuf, b->rank, b->dims, x->rank - ax, x->dims + ax) < 0)
            return diag_error(d, n, "bias does not broadcast to the normalised shape");
        B.bidx = bbuf;
        B.bt = b->dtype;
        B.bias_in = 2;
    }
    B.mean_out = !rms && node_out(e->g, n, 1) ? 1 : -1;
    B.inv_out = !rms && node_out(e->g, n, 2) ? 2 : -1;
    emit_block_norm(e, &B);
    return 0;
}

static const OpDef op_layernorm = {
    .name = "LayerNormalization", .domain = "", .since = 1,
    .min_inputs = 2, .max_inputs = 3, .min_outputs = 1, .max_outputs = 3,
    .infer = infer_layernorm, .emit = emit_layernorm, .grad = norm_grad_block,
    .summary = "normalise over the trailing dims from axis, then scale and shift",
};

static const OpDef op_rmsnorm = {
    .name = "RMSNormalization", .domain = "", .since = 1,
    .min_inputs = 2, .max_inputs = 2, .min_outputs = 1, .max_outputs = 1,
    .infer = infer_layernorm, .emit = emit_layernorm, .grad = norm_grad_block,
    .summary = "x / sqrt(mean(x^2) + epsilon) * scale over the trailing dims from axis",
};

/* ---------------------------------------------------------------- Instance / Group normalisation */

static int infer_instgroup(Graph *g, Node *n, Diag *d)
{
    Value *x = need_input(g, n, 0, d);
    if (!x)
        return -1;
    if (!is_real(x->dtype))
        return err_dtype(d, n, n->op_type, x->dtype);
    if (x->rank < 2)
        return diag_error(d, n, "input must have rank >= 2 (N, C, ...), got rank %d", x->rank);
    if (need_real(g, n, 1, d) || need_real(g, n, 2, d))
        return -1;
    int64_t C = x->dims[1];
    int group = strcmp(n->op_type, "GroupNormalization") == 0;
    int64_t G = group ? attr_int(n, "num_groups", 0) : C;
    if (group && (G <= 0 || C % G != 0))
        return diag_error(d, n, "num_groups (%lld) must be positive and divide the channel count %lld", (long long)G, (long long)C);
    for (int i = 1; i <= 2; i++) {
        int64_t k = value_numel(node_in(g, n, i));
        if (k != C && k != G)
            return diag_error(d, n, "%s must have %lld (or num_groups) elements, has %lld", i == 1 ? "scale" : "bias", (long long)C, (long long)k);
    }
    value_set_shape(node_out(g, n, 0), x->dtype, x->rank, x->dims);
    return 0;
}

static int emit_instgroup(Emitter *e, const Node *n, Diag *d)
{
    (void)d;
    const Value *x = node_in(e->g, n, 0);
    int group = strcmp(n->op_type, "GroupNormalization") == 0;
    int64_t N = x->dims[0], C = x->dims[1], sp = 1;
    for (int i = 2; i < x->rank; i++)
        sp *= x->dims[i];
    int64_t G = group ? attr_int(n, "num_groups", 1) : C;
    int64_t cg = C / G;
    BlockNorm B = {0};
    B.M = N * G;
    B.L = cg * sp;
    B.xt = x->dtype;
    B.ct = compute_dt(group ? stash_dtype(n) : x->dtype);
    B.eps = attr_float(n, "epsilon", 1e-5);
    char idx[2][128];
    for (int i = 1; i <= 2; i++) {
        const Value *v = node_in(e->g, n, i);
        if (value_numel(v) == C && cg > 1)
            snprintf(idx[i - 1], sizeof idx[i - 1], "m %% %" PRId64 " * %" PRId64 " + j / %" PRId64, G, cg, sp);
        else
            snprintf(idx[i - 1], sizeof idx[i - 1], "m %% %" PRId64, G);
    }
    B.sidx = idx[0];
    B.st = node_in(e->g, n, 1)->dtype;
    B.scale_in = 1;
    B.bidx = idx[1];
    B.bt = node_in(e->g, n, 2)->dtype;
    B.bias_in = 2;
    B.mean_out = B.inv_out = -1;
    emit_block_norm(e, &B);
    return 0;
}

static const OpDef op_instnorm = {
    .name = "InstanceNormalization", .domain = "", .since = 1,
    .min_inputs = 3, .max_inputs = 3, .min_outputs = 1, .max_outputs = 1,
    .infer = infer_instgroup, .emit = emit_instgroup, .grad = norm_grad_block,
    .summary = "normalise each (n, c) over the spatial dims, then per-channel scale and shift",
};

static const OpDef op_groupnorm = {
    .name = "GroupNormalization", .domain = "", .since = 1,
    .min_inputs = 3, .max_inputs = 3, .min_outputs = 1, .max_outputs = 1,
    .infer = infer_instgroup, .emit = emit_instgroup, .grad = norm_grad_block,
    .summary = "normalise each group of channels, then scale and shift",
};

/* ---------------------------------------------------------------- BatchNormalization */

/* Training mode: batch statistics, and the running statistics outputs. */
static int bn_training(const Graph *g, const Node *n)
{
    if (n->opset >= 14 || n->opset == 0)
        return attr_int(n, "training_mode", 0) != 0;
    /* before 14: training when the statistics outputs are asked for (or is_test=0 < 7) */
    for (int o = 1; o < n->noutputs; o++)
        if (node_out(g, n, o))
            return 1;
    return 0;
}

static int infer_batchnorm(Graph *g, Node *n, Diag *d)
{
    Value *x = need_input(g, n, 0, d);
    if (!x)
        return -1;
    if (!is_real(x->dtype))
        return err_dtype(d, n, n->op_type, x->dtype);
    if (x->rank < 2)
        return diag_error(d, n, "input must have rank >= 2 (N, C, ...), got rank %d", x->rank);
    int64_t C = x->dims[1], sp = 1;
    for (int i = 2; i < x->rank; i++)
        sp *= x->dims[i];
    for (int i = 1; i <= 4; i++) {
        if (need_real(g, n, i, d))
            return -1;
        int64_t k = value_numel(node_in(g, n, i));
        if (k != C && k != C * sp)
            return diag_error(d, n, "input %d must have %lld elements (one per channel), has %lld", i, (long long)C, (long long)k);
    }
    value_set_shape(node_out(g, n, 0), x->dtype, x->rank, x->dims);
    int train = bn_training(g, n);
    if (train) {
        if (n->opset > 0 && n->opset < 14)
            return diag_unsupported(d, n, "training-mode outputs of BatchNormalization before opset 14");
        for (int i = 1; i <= 4; i++)
            if (value_numel(node_in(g, n, i)) != C)
                return diag_unsupported(d, n, "training mode with per-element (spatial=0) statistics");
    }
    for (int o = 1; o < n->noutputs; o++) {
        Value *v = node_out(g, n, o);
        if (!v)
            continue;
        if (!train)
            return diag_error(d, n, "output %d is only produced in training mode", o);
        if (o > 2)
            return diag_unsupported(d, n, "saved mean/variance outputs");
        const Value *src = node_in(g, n, o == 1 ? 3 : 4);
        value_set_shape(v, src->dtype, src->rank, src->dims);
    }
    return 0;
}

/* Training mode: batch statistics normalise x; outputs 1 and 2 (when present) are the
 * running mean and variance, momentum * running + (1 - momentum) * batch statistic,
 * the variance unbiased (divided by count - 1, as PyTorch keeps it) when asked. */
static int emit_bn_train(Emitter *e, const Node *n, double mom, int unbiased)
{
    Writer *w = e->w;
    const Value *x = node_in(e->g, n, 0);
    int64_t N = x->dims[0], C = x->dims[1], sp = 1;
    for (int i = 2; i < x->rank; i++)
        sp *= x->dims[i];
    DType cdt = compute_dt(x->dtype);
    const char *ct = dtype_ctype(cdt), *fs = cdt == DT_DOUBLE ? "" : "f";
    const char *lx = em_half_load(e, x->dtype), *sx = st_of(e, x->dtype);
    const char *l[5];
    for (int i = 1; i <= 4; i++)
        l[i] = em_half_load(e, node_in(e->g, n, i)->dtype);
    double eps = attr_float(n, "epsilon", 1e-5);
    if (N * C * sp == 0)
        return 0;
    int64_t cnt = N * sp;
    em_for(w, "c", C);
    w_printf(w, "%s s = ", ct);
    em_literal(w, cdt, 0);
    w_puts(w, ";\n");
    em_for(w, "b", N);
    em_for(w, "i", sp);
    w_line(w, "s += (%s)%s(x0[(b * %" PRId64 " + c) * %" PRId64 " + i]);", ct, lx, C, sp);
    em_close(w, 2);
    w_printf(w, "const %s mean = s / ", ct);
    em_literal(w, cdt, (double)cnt);
    w_printf(w, ";\n%s q = ", ct);
    em_literal(w, cdt, 0);
    w_puts(w, ";\n");
    em_for(w, "b", N);
    em_for(w, "i", sp);
    w_line(w, "const %s t = (%s)%s(x0[(b * %" PRId64 " + c) * %" PRId64 " + i]) - mean;", ct, ct, lx, C, sp);
    w_line(w, "q += t * t;");
    em_close(w, 2);
    w_printf(w, "const %s var = q / ", ct);
    em_literal(w, cdt, (double)cnt);
    w_puts(w, ";\n");
    if (unbiased && cnt > 1 && node_out(e->g, n, 2)) {
        w_printf(w, "const %s var_u = q / ", ct);
        em_literal(w, cdt, (double)(cnt - 1));
        w_puts(w, ";\n");
    }
    w_printf(w, "const %s a = (%s)%s(x1[c]) / sqrt%s(var + ", ct, ct, l[1], fs);
    em_literal(w, cdt, eps);
    w_puts(w, ");\n");
    w_line(w, "const %s sh = (%s)%s(x2[c]) - mean * a;", ct, ct, l[2]);
    em_for(w, "b", N);
    em_for(w, "i", sp);
    w_line(w, "const int64_t k = (b * %" PRId64 " + c) * %" PRId64 " + i;", C, sp);
    w_line(w, "y0[k] = %s((%s)%s(x0[k]) * a + sh);", sx, ct, lx);
    em_close(w, 2);
    for (int o = 1; o <= 2; o++) {
        const Value *v = node_out(e->g, n, o);
        if (!v)
            continue;
        w_printf(w, "y%d[c] = %s((%s)%s(x%d[c]) * ", o, st_of(e, v->dtype), ct, l[o + 2], o + 2);
        em_literal(w, cdt, mom);
        w_printf(w, " + %s * ", o == 1 ? "mean" : unbiased && cnt > 1 ? "var_u" : "var");
        em_literal(w, cdt, 1 - mom);
        w_puts(w, ");\n");
    }
    w_close(w);
    return 0;
}

static int emit_batchnorm_body(Emitter *e, const Node *n, Diag *d);

/* Does output 0 share input 0's bytes (the planner wrote it in place)? */
static int g_out_over_x(const Graph *g, const Node *n)
{
    const Value *y = node_out(g, n, 0);
    return y && n->inputs[0] >= 0 && y->alias_of == n->inputs[0];
}

/* In place in the inference form only: each element is read (x0[k]) before y0[k]
 * is stored, with per-channel constants computed first (the training form reads
 * x for its statistics, and pass_train_mode keeps x for the backward pass anyway). */
static unsigned bn_inplace(const Graph *g, const Node *n)
{
    return strcmp(n->op_type, "BatchNormalization") == 0 && !bn_training(g, n) ? 1u : 0u;
}

/* With mixed element types (float X, float16 statistics, ...) only one half of a
 * prelude conversion pair may be used; reference the other so the file compiles
 * warning-free. */
static int emit_batchnorm(Emitter *e, const Node *n, Diag *d)
{
    size_t start = e->w->len;
    if (emit_batchnorm_body(e, n, d))
        return -1;
    static const char *const pairs[2][2] = {{"kd_h2f", "kd_f2h"}, {"kd_bf2f", "kd_f2bf"}};
    const char *text = e->w->buf ? e->w->buf + start : "";
    for (int p = 0; p < 2; p++) {
        int a = strstr(text, pairs[p][0]) != NULL, b = strstr(text, pairs[p][1]) != NULL;
        if (a != b)
            w_line(e->w, "(void)%s;", pairs[p][a ? 1 : 0]);
    }
    return 0;
}

static int emit_batchnorm_body(Emitter *e, const Node *n, Diag *d)
{
    (void)d;
    Writer *w = e->w;
    const Value *x = node_in(e->g, n, 0);
    int64_t N = x->dims[0], C = x->dims[1], sp = 1;
    for (int i = 2; i < x->rank; i++)
        sp *= x->dims[i];
    DType cdt = compute_dt(x->dtype);
    const char *ct = dtype_ctype(cdt), *fs = cdt == DT_DOUBLE ? "" : "f";
    const char *lx = em_half_load(e, x->dtype), *sx = st_of(e, x->dtype);
    const char *l[5];
    for (int i = 1; i <= 4; i++)
        l[i] = em_half_load(e, node_in(e->g, n, i)->dtype);
    double eps = attr_float(n, "epsilon", 1e-5);
    if (N * C * sp == 0)
        return 0;
    if (strcmp(n->op_type, "BatchNormTraining") == 0)
        return emit_bn_train(e, n, attr_float(n, "momentum", 0.9), (int)attr_int(n, "unbiased", 0));
    if (bn_training(e->g, n))
        return emit_bn_train(e, n, attr_float(n, "momentum", 0.9), 0);
    int per_elem = value_numel(node_in(e->g, n, 1)) != C || value_numel(node_in(e->g, n, 2)) != C ||
                   value_numel(node_in(e->g, n, 3)) != C || value_numel(node_in(e->g, n, 4)) != C;
    if (per_elem) {
        /* spatial=0 (opset < 7): statistics per (c, spatial) element; C == 1-sized ones broadcast */
        char ix[5][16];
        for (int i = 1; i <= 4; i++)
            snprintf(ix[i], sizeof ix[i], "%s", value_numel(node_in(e->g, n, i)) == C ? "j / " : "j");
        em_for(w, "b", N);
        em_for(w, "j", C * sp);
        w_printf(w, "const %s a = (%s)%s(x1[%s", ct, ct, l[1], ix[1]);
        if (value_numel(node_in(e->g, n, 1)) == C)
            w_printf(w, "%" PRId64, sp);
        w_printf(w, "]) / sqrt%s((%s)%s(x4[%s", fs, ct, l[4], ix[4]);
        if (value_numel(node_in(e->g, n, 4)) == C)
            w_printf(w, "%" PRId64, sp);
        w_puts(w, "]) + ");
        em_literal(w, cdt, eps);
        w_puts(w, ");\n");
        w_printf(w, "y0[b * %" PRId64 " + j] = %s(((%s)%s(x0[b * %" PRId64 " + j]) - (%s)%s(x3[%s", C * sp, sx, ct, lx, C * sp, ct, l[3], ix[3]);
        if (value_numel(node_in(e->g, n, 3)) == C)
            w_printf(w, "%" PRId64, sp);
        w_printf(w, "])) * a + (%s)%s(x2[%s", ct, l[2], ix[2]);
        if (value_numel(node_in(e->g, n, 2)) == C)
            w_printf(w, "%" PRId64, sp);
        w_puts(w, "]));\n");
        em_close(w, 2);
        return 0;
    }
    em_for(w, "b", N);
    em_for(w, "c", C);
    w_printf(w, "const %s a = (%s)%s(x1[c]) / sqrt%s((%s)%s(x4[c]) + ", ct, ct, l[1], fs, ct, l[4]);
    em_literal(w, cdt, eps);
    w_puts(w, ");\n");
    w_line(w, "const %s sh = (%s)%s(x2[c]) - (%s)%s(x3[c]) * a;", ct, ct, l[2], ct, l[3]);
    /* written over x (the planner's in-place choice): xp and yp point to the same
     * bytes, so they must not be restrict */
    const char *rq = g_out_over_x(e->g, n) ? "" : "restrict ";
    w_line(w, "const %s *%sxp = x0 + (b * %" PRId64 " + c) * %" PRId64 ";", dtype_ctype(x->dtype), rq, C, sp);
    w_line(w, "%s *%syp = y0 + (b * %" PRId64 " + c) * %" PRId64 ";", dtype_ctype(x->dtype), rq, C, sp);
    em_for(w, "i", sp);
    w_line(w, "yp[i] = %s((%s)%s(xp[i]) * a + sh);", sx, ct, lx);
    em_close(w, 3);
    return 0;
}

static const OpDef op_batchnorm = {
    .name = "BatchNormalization", .domain = "", .since = 1,
    .min_inputs = 5, .max_inputs = 5, .min_outputs = 1, .max_outputs = 5,
    .infer = infer_batchnorm, .emit = emit_batchnorm, .grad = norm_grad_batchnorm,
    .summary = "per-channel (x - mean) / sqrt(var + epsilon) * scale + bias",
    .inplace_if = bn_inplace,
};

/* kdcc.BatchNormTraining(x, scale, bias, mean, var) -> (y, mean', var'): the training form
 * pass_train_mode gives BatchNormalization. y uses the batch statistics; mean' and var'
 * are the running statistics updated with `momentum` (ONNX's convention: the weight of
 * the old value, 1 - PyTorch's momentum), the variance unbiased when `unbiased` is 1. */
static int infer_bn_training(Graph *g, Node *n, Diag *d)
{
    Value *x = need_input(g, n, 0, d);
    if (!x)
        return -1;
    if (!is_real(x->dtype))
        return err_dtype(d, n, n->op_type, x->dtype);
    if (x->rank < 2)
        return diag_error(d, n, "input must have rank >= 2 (N, C, ...), got rank %d", x->rank);
    for (int i = 1; i <= 4; i++) {
        if (need_real(g, n, i, d))
            return -1;
        if (value_numel(node_in(g, n, i)) != x->dims[1])
            return diag_error(d, n, "input %d must have %lld elements (one per channel)", i, (long long)x->dims[1]);
    }
    double mom = attr_float(n, "momentum", 0.9);
    if (mom < 0 || mom > 1)
        return diag_error(d, n, "momentum %g is outside [0, 1]", mom);
    value_set_shape(node_out(g, n, 0), x->dtype, x->rank, x->dims);
    for (int o = 1; o <= 2; o++) {
        Value *v = node_out(g, n, o), *src = node_in(g, n, o + 2);
        if (v)
            value_set_shape(v, src->dtype, src->rank, src->dims);
    }
    return 0;
}

static const OpDef op_batchnorm_training = {
    .name = "BatchNormTraining", .domain = "kdcc", .since = 1,
    .min_inputs = 5, .max_inputs = 5, .min_outputs = 1, .max_outputs = 3,
    .infer = infer_bn_training, .emit = emit_batchnorm, .grad = norm_grad_batchnorm,
    .summary = "BatchNormalization while training: batch statistics, running mean/variance updated",
};

/* ---------------------------------------------------------------- MeanVarianceNormalization */

static int mvn_mask(const Node *n, const Value *x, int *mask, Diag *d)
{
    const int64_t *av;
    static const int64_t def[3] = {0, 2, 3};
    int k = attr_ints(n, "axes", &av);
    if (k < 0) {
        av = def;
        k = 3;
    }
    for (int i = 0; i < x->rank; i++)
        mask[i] = 0;
    for (int i = 0; i < k; i++) {
        int a = norm_axis(d, n, av[i], x->rank);
        if (a < 0)
            return -1;
        mask[a] = 1;
    }
    return 0;
}

static int infer_mvn(Graph *g, Node *n, Diag *d)
{
    Value *x = need_input(g, n, 0, d);
    if (!x)
        return -1;
    if (!is_real(x->dtype))
        return err_dtype(d, n, n->op_type, x->dtype);
    int mask[KD_MAX_RANK];
    if (mvn_mask(n, x, mask, d))
        return -1;
    value_set_shape(node_out(g, n, 0), x->dtype, x->rank, x->dims);
    return 0;
}

static int emit_mvn(Emitter *e, const Node *n, Diag *d)
{
    Writer *w = e->w;
    const Value *x = node_in(e->g, n, 0);
    int mask[KD_MAX_RANK];
    if (mvn_mask(n, x, mask, d))
        return -1;
    DType cdt = compute_dt(x->dtype);
    const char *ct = dtype_ctype(cdt), *fs = cdt == DT_DOUBLE ? "" : "f";
    const char *lx = em_half_load(e, x->dtype), *sx = st_of(e, x->dtype);
    if (value_numel(x) == 0)
        return 0;
    /* groups of adjacent kept / reduced dims */
    int ng = 0, red[KD_MAX_RANK];
    int64_t size[KD_MAX_RANK], xs[KD_MAX_RANK];
    for (int i = 0; i < x->rank; i++) {
        if (x->dims[i] == 1)
            continue;
        if (ng > 0 && red[ng - 1] == mask[i]) {
            size[ng - 1] *= x->dims[i];
        } else {
            size[ng] = x->dims[i];
            red[ng++] = mask[i];
        }
    }
    int64_t s = 1, cnt = 1;
    for (int k = ng - 1; k >= 0; k--) {
        xs[k] = s;
        s *= size[k];
        if (red[k])
            cnt *= size[k];
    }
    int nk = 0, nr = 0;
    for (int k = 0; k < ng; k++) {
        if (red[k]) {
            nr++;
            continue;
        }
        char v[8];
        snprintf(v, sizeof v, "g%d", k);
        em_for(w, v, size[k]);
        nk++;
    }
    if (!nk) {
        w_puts(w, "{\n");
        w->indent++;
    }
    w_puts(w, "const int64_t xb = 0");
    for (int k = 0; k < ng; k++)
        if (!red[k])
            w_printf(w, " + g%d * %" PRId64, k, xs[k]);
    w_puts(w, ";\n");
    w_printf(w, "%s s1 = ", ct);
    em_literal(w, cdt, 0);
    w_printf(w, ", s2 = ");
    em_literal(w, cdt, 0);
    w_puts(w, ";\n");
    for (int pass = 0; pass < 2; pass++) {
        for (int k = 0; k < ng; k++) {
            if (!red[k])
                continue;
            char v[8];
            snprintf(v, sizeof v, "g%d", k);
            em_for(w, v, size[k]);
        }
        if (!nr) {
            w_puts(w, "{\n");
            w->indent++;
        }
        w_puts(w, "const int64_t xi = xb");
        for (int k = 0; k < ng; k++)
            if (red[k])
                w_printf(w, " + g%d * %" PRId64, k, xs[k]);
        w_puts(w, ";\n");
        if (pass == 0) {
            w_line(w, "const %s v = (%s)%s(x0[xi]);", ct, ct, lx);
            w_line(w, "s1 += v;");
            w_line(w, "s2 += v * v;");
        } else {
            w_line(w, "y0[xi] = %s(((%s)%s(x0[xi]) - mean) / sd);", sx, ct, lx);
        }
        em_close(w, nr ? nr : 1);
        if (pass == 0) {
            w_printf(w, "const %s mean = s1 / ", ct);
            em_literal(w, cdt, (double)cnt);
            w_puts(w, ";\n");
            w_printf(w, "const %s sd = sqrt%s(s2 / ", ct, fs);
            em_literal(w, cdt, (double)cnt);
            w_puts(w, " - mean * mean) + ");
            em_literal(w, cdt, 1e-9);
            w_puts(w, ";\n");
        }
    }
    em_close(w, nk ? nk : 1);
    return 0;
}

static const OpDef op_mvn = {
    .name = "MeanVarianceNormalization", .domain = "", .since = 1,
    .min_inputs = 1, .max_inputs = 1, .min_outputs = 1, .max_outputs = 1,
    .infer = infer_mvn, .emit = emit_mvn,
    .summary = "(x - mean) / std over the given axes",
};

const OpDef *const ops_norm[] = {
    &op_batchnorm, &op_layernorm, &op_rmsnorm, &op_instnorm, &op_groupnorm, &op_mvn,
    &op_batchnorm_training, &op_batchnorm_training_grad, &op_norm_grad, NULL,
};

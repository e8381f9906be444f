/* Gradients of the normalisation family.
 *
 * kdcc.NormGrad(x, scale, dy) -> (dx, dscale, dbias): Layer/RMS/Instance/Group
 * normalisation, which all normalise M contiguous blocks of L elements. Per block,
 * with xh = (x - mean) * inv (RMS: x * inv) and g = dy * scale:
 *     dx = inv * (g - mean(g) - xh * mean(g * xh))          (RMS: no mean(g) term)
 * dscale and dbias sum dy * xh and dy over the blocks, in the shape the attribute
 * `kind` gives: "layer": the normalised shape x.dims[axis:]; "group": one per
 * scale element (per channel, or per group).
 *
 * kdcc.BatchNormTrainingGrad(x, scale, dy?, dmean'?, dvar'?) -> (dx, dscale, dbias):
 * BatchNormalization in training mode, statistics per channel over the batch and
 * the spatial dims (recomputed from x). With m elements per channel:
 *     dx = scale * inv / m * (m * dy - sum(dy) - xh * sum(dy * xh))
 * plus the paths through the running statistics when they have gradients:
 *     + dmean' * (1 - momentum) / m + dvar' * (1 - momentum) * 2 (x - mean) / m'
 * (m' = m - 1 for the unbiased running variance). */
#include "compiler/ops/ops.h"

#include <inttypes.h>
#include <string.h>

int norm_bcast_index(char *buf, size_t n, int r, const int64_t *dims, int br, const int64_t *bdims);
int norm_grad_block(GradCtx *c);
int norm_grad_batchnorm(GradCtx *c);

/* ---------------------------------------------------------------- NormGrad */

typedef struct NGView {
    int64_t M, L;
    char sidx[256];       /* scale element of block m, position j */
    char didx[256];       /* dscale/dbias element */
    int drank;            /* shape of dscale/dbias */
    int64_t ddims[KD_MAX_RANK];
} NGView;

static int ng_view(const Graph *g, const Node *n, NGView *v, Diag *d)
{
    const Value *x = node_in(g, n, 0), *s = node_in(g, n, 1);
    const char *kind = attr_string(n, "kind", "layer");
    if (strcmp(kind, "layer") == 0) {
        int ax = norm_axis(d, n, attr_int(n, "axis", -1), x->rank);
        if (ax < 0)
            return -1;
        v->M = v->L = 1;
        for (int i = 0; i < x->rank; i++) {
            if (i < ax)
                v->M *= x->dims[i];
            else
                v->L *= x->dims[i];
        }
        if (norm_bcast_index(v->sidx, sizeof v->sidx, s->rank, s->dims, x->rank - ax, x->dims + ax) < 0)
            return diag_error(d, n, "scale does not broadcast to the normalised shape");
        snprintf(v->didx, sizeof v->didx, "j");
        v->drank = x->rank - ax;
        memcpy(v->ddims, x->dims + ax, (size_t)v->drank * sizeof(int64_t));
        return 0;
    }
    if (strcmp(kind, "group") != 0)
        return diag_error(d, n, "unknown kind '%s' (layer or group)", kind);
    if (x->rank < 2)
        return diag_error(d, n, "input must have rank >= 2 (N, C, ...)");
    int64_t C = x->dims[1], G = attr_int(n, "num_groups", C), sp = 1, S = value_numel(s);
    for (int i = 2; i < x->rank; i++)
        sp *= x->dims[i];
    if (G <= 0 || C % G != 0 || (S != C && S != G))
        return diag_error(d, n, "num_groups %lld does not fit %lld channels and a scale of %lld elements", (long long)G,
                          (long long)C, (long long)S);
    int64_t cg = C / G;
    v->M = x->dims[0] * G;
    v->L = cg * sp;
    if (S == C && cg > 1)
        snprintf(v->sidx, sizeof v->sidx, "m %% %" PRId64 " * %" PRId64 " + j / %" PRId64, G, cg, sp);
    else
        snprintf(v->sidx, sizeof v->sidx, "m %% %" PRId64, G);
    snprintf(v->didx, sizeof v->didx, "%s", v->sidx);
    v->drank = 1;
    v->ddims[0] = S;
    return 0;
}

static int ng_infer(Graph *g, Node *n, Diag *d)
{
    Value *x = need_input(g, n, 0, d), *s = need_input(g, n, 1, d), *dy = need_input(g, n, 2, d);
    if (!x || !s || !dy)
        return -1;
    if (x->dtype != DT_FLOAT || s->dtype != DT_FLOAT || dy->dtype != DT_FLOAT || value_numel(x) != value_numel(dy))
        return diag_error(d, n, "NormGrad takes float x, scale and dy (dy of x's size)");
    NGView v;
    if (ng_view(g, n, &v, d))
        return -1;
    value_set_shape(node_out(g, n, 0), DT_FLOAT, x->rank, x->dims);
    for (int o = 1; o <= 2; o++)
        if (node_out(g, n, o))
            value_set_shape(node_out(g, n, o), DT_FLOAT, v.drank, v.ddims);
    return 0;
}

static int ng_emit(Emitter *e, const Node *n, Diag *d)
{
    Writer *w = e->w;
    NGView v;
    if (ng_view(e->g, n, &v, d))
        return -1;
    int rms = (int)attr_int(n, "rms", 0);
    int ds = node_out(e->g, n, 1) != NULL, db = node_out(e->g, n, 2) != NULL;
    int64_t D = dims_numel(v.drank, v.ddims), L = v.L;
    if (ds || db) {
        em_for(w, "k", D);
        if (ds)
            w_line(w, "y1[k] = 0.0f;");
        if (db)
            w_line(w, "y2[k] = 0.0f;");
        w_close(w);
    }
    if (v.M * L == 0)
        return 0;
    em_for(w, "m", v.M);
    w_line(w, "const float *restrict xb = x0 + m * %" PRId64 ";", L);
    w_line(w, "const float *restrict gb = x2 + m * %" PRId64 ";", L);
    w_line(w, "float *restrict db = y0 + m * %" PRId64 ";", L);
    if (!rms) {
        w_line(w, "float s = 0.0f;");
        em_for(w, "j", L);
        w_line(w, "s += xb[j];");
        w_close(w);
        w_printf(w, "const float mean = s / ");
        w_float(w, (float)L);
        w_puts(w, ";\n");
    }
    w_line(w, "float q = 0.0f;");
    em_for(w, "j", L);
    w_line(w, "const float t = xb[j]%s;", rms ? "" : " - mean");
    w_line(w, "q += t * t;");
    w_close(w);
    w_puts(w, "const float inv = 1.0f / sqrtf(q / ");
    w_float(w, (float)L);
    w_puts(w, " + ");
    w_float(w, (float)attr_float(n, "epsilon", 1e-5));
    w_puts(w, ");\n");
    w_line(w, "double sg = 0, sgx = 0;");
    em_for(w, "j", L);
    w_line(w, "const float xh = (xb[j]%s) * inv;", rms ? "" : " - mean");
    w_line(w, "const float g = gb[j] * x1[%s];", v.sidx);
    w_line(w, "sg += g;");
    w_line(w, "sgx += g * xh;");
    if (ds)
        w_line(w, "y1[%s] += gb[j] * xh;", v.didx);
    if (db)
        w_line(w, "y2[%s] += gb[j];", v.didx);
    w_close(w);
    w_puts(w, "const float ag = ");
    if (rms) {
        w_puts(w, "0.0f");
    } else {
        w_puts(w, "(float)(sg / ");
        w_double(w, (double)L);
        w_puts(w, ")");
    }
    w_puts(w, ", agx = (float)(sgx / ");
    w_double(w, (double)L);
    w_puts(w, ");\n");
    w_line(w, "(void)sg;");
    em_for(w, "j", L);
    w_line(w, "const float xh = (xb[j]%s) * inv;", rms ? "" : " - mean");
    w_line(w, "db[j] = inv * (gb[j] * x1[%s] - ag - xh * agx);", v.sidx);
    w_close(w);
    w_close(w);
    return 0;
}

const OpDef op_norm_grad = {
    .name = "NormGrad", .domain = "kdcc", .since = 1,
    .min_inputs = 3, .max_inputs = 3, .min_outputs = 1, .max_outputs = 3,
    .infer = ng_infer, .emit = ng_emit,
    .summary = "gradient of Layer/RMS/Instance/Group normalisation (dx, dscale, dbias)",
};

int norm_grad_block(GradCtx *c)
{
    Node *fn = c->n;
    Graph *g = c->g;
    for (int o = 1; o < fn->noutputs; o++)
        if (c->dy[o] >= 0)
            return diag_unsupported(c->d, fn, "gradients through the Mean/InvStdDev outputs of %s are not computed",
                                    fn->op_type);
    if (c->dy[0] < 0)
        return 0;
    const Value *x = node_in(g, fn, 0), *s = node_in(g, fn, 1), *b = node_in(g, fn, 2);
    if (x->dtype != DT_FLOAT || s->dtype != DT_FLOAT || (b && b->dtype != DT_FLOAT))
        return diag_unsupported(c->d, fn, "the gradient of %s is computed for float tensors only", fn->op_type);
    int rms = strcmp(fn->op_type, "RMSNormalization") == 0;
    int layer = rms || strcmp(fn->op_type, "LayerNormalization") == 0;
    int ins[3] = {fn->inputs[0], fn->inputs[1], c->dy[0]};
    Node *n = g_new(c, "kdcc.NormGrad", ins, 3, 3);
    if (!n)
        return -1;
    g_attr_s(c, n, "kind", layer ? "layer" : "group");
    g_attr_f(c, n, "epsilon", attr_float(fn, "epsilon", 1e-5));
    if (layer) {
        g_attr_i(c, n, "axis", attr_int(fn, "axis", -1));
        g_attr_i(c, n, "rms", rms);
    } else {
        int64_t C = x->dims[1];
        g_attr_i(c, n, "num_groups",
                 strcmp(fn->op_type, "GroupNormalization") == 0 ? attr_int(fn, "num_groups", 1) : C);
        if (b && c->need[2] && value_numel(b) != value_numel(s))
            return diag_unsupported(c->d, fn, "the bias gradient when scale and bias have different sizes");
    }
    if (g_done(c, n) < 0)
        return -1;
    if (c->need[0])
        c->dx[0] = n->outputs[0];
    if (c->need[1] && (c->dx[1] = g_unbroadcast(c, n->outputs[1], fn->inputs[1])) < 0)
        return -1;
    if (b && !rms && c->need[2] && (c->dx[2] = g_unbroadcast(c, n->outputs[2], fn->inputs[2])) < 0)
        return -1;
    return 0;
}

/* ---------------------------------------------------------------- BatchNormTrainingGrad */

static int bng_infer(Graph *g, Node *n, Diag *d)
{
    Value *x = need_input(g, n, 0, d), *s = need_input(g, n, 1, d);
    if (!x || !s)
        return -1;
    if (x->dtype != DT_FLOAT || s->dtype != DT_FLOAT || x->rank < 2 || value_numel(s) != x->dims[1])
        return diag_error(d, n, "BatchNormTrainingGrad takes float x [N, C, ...] and a float scale of C elements");
    for (int i = 2; i <= 4; i++) {
        Value *v = node_in(g, n, i);
        if (!v)
            continue;
        int64_t want = i == 2 ? value_numel(x) : x->dims[1];
        if (!need_input(g, n, i, d))
            return -1;
        if (v->dtype != DT_FLOAT || value_numel(v) != want)
            return diag_error(d, n, "input %d must be float with %lld elements", i, (long long)want);
    }
    value_set_shape(node_out(g, n, 0), DT_FLOAT, x->rank, x->dims);
    int64_t C = x->dims[1];
    for (int o = 1; o <= 2; o++)
        if (node_out(g, n, o))
            value_set_shape(node_out(g, n, o), DT_FLOAT, 1, &C);
    return 0;
}

static int bng_emit(Emitter *e, const Node *n, Diag *d)
{
    (void)d;
    Writer *w = e->w;
    const Value *x = node_in(e->g, n, 0);
    int64_t N = x->dims[0], C = x->dims[1], sp = 1;
    for (int i = 2; i < x->rank; i++)
        sp *= x->dims[i];
    int64_t m = N * sp;
    int has_dy = node_in(e->g, n, 2) != NULL, has_dm = node_in(e->g, n, 3) != NULL,
        has_dv = node_in(e->g, n, 4) != NULL;
    int ds = node_out(e->g, n, 1) != NULL, db = node_out(e->g, n, 2) != NULL;
    double mom = attr_float(n, "momentum", 0.9);
    int64_t mv = attr_int(n, "unbiased", 0) && m > 1 ? m - 1 : m;
    if (m == 0 || C == 0) {
        em_for(w, "c", C);
        if (ds)
            w_line(w, "y1[c] = 0.0f;");
        if (db)
            w_line(w, "y2[c] = 0.0f;");
        w_close(w);
        return 0;
    }
    em_for(w, "c", C);
    w_line(w, "float s = 0.0f;");
    em_for(w, "b", N);
    w_line(w, "const float *restrict xp = x0 + (b * %" PRId64 " + c) * %" PRId64 ";", C, sp);
    em_for(w, "i", sp);
    w_line(w, "s += xp[i];");
    em_close(w, 2);
    w_printf(w, "const float mean = s / ");
    w_float(w, (float)m);
    w_puts(w, ";\n");
    w_line(w, "float q = 0.0f;");
    em_for(w, "b", N);
    w_line(w, "const float *restrict xp = x0 + (b * %" PRId64 " + c) * %" PRId64 ";", C, sp);
    em_for(w, "i", sp);
    w_line(w, "const float t = xp[i] - mean;");
    w_line(w, "q += t * t;");
    em_close(w, 2);
    w_puts(w, "const float inv = 1.0f / sqrtf(q / ");
    w_float(w, (float)m);
    w_puts(w, " + ");
    w_float(w, (float)attr_float(n, "epsilon", 1e-5));
    w_puts(w, ");\n");
    w_line(w, "double sg = 0, sgx = 0;");
    if (has_dy) {
        em_for(w, "b", N);
        w_line(w, "const int64_t o = (b * %" PRId64 " + c) * %" PRId64 ";", C, sp);
        em_for(w, "i", sp);
        w_line(w, "sg += x2[o + i];");
        w_line(w, "sgx += x2[o + i] * (x0[o + i] - mean);");
        em_close(w, 2);
        w_line(w, "sgx *= inv;");
    }
    if (ds)
        w_line(w, "y1[c] = (float)sgx;");
    if (db)
        w_line(w, "y2[c] = (float)sg;");
    w_printf(w, "const float a = x1[c] * inv / ");
    w_float(w, (float)m);
    w_puts(w, ";\n");
    w_printf(w, "const float ag = (float)sg, agx = (float)sgx * inv;\n");
    w_puts(w, "const float cm = ");
    if (has_dm) {
        w_puts(w, "x3[c] * ");
        w_float(w, (float)((1 - mom) / (double)m));
    } else {
        w_puts(w, "0.0f");
    }
    w_puts(w, ", cv = ");
    if (has_dv) {
        w_puts(w, "x4[c] * ");
        w_float(w, (float)((1 - mom) * 2 / (double)mv));
    } else {
        w_puts(w, "0.0f");
    }
    w_puts(w, ";\n");
    w_line(w, "(void)a; (void)ag; (void)agx;");
    em_for(w, "b", N);
    w_line(w, "const int64_t o = (b * %" PRId64 " + c) * %" PRId64 ";", C, sp);
    em_for(w, "i", sp);
    w_line(w, "const float t = x0[o + i] - mean;");
    if (has_dy) {
        w_printf(w, "y0[o + i] = a * (");
        w_float(w, (float)m);
        w_line(w, " * x2[o + i] - ag - t * agx) + cm + cv * t;");
    } else {
        w_line(w, "y0[o + i] = cm + cv * t;");
    }
    em_close(w, 3);
    return 0;
}

const OpDef op_batchnorm_training_grad = {
    .name = "BatchNormTrainingGrad", .domain = "kdcc", .since = 1,
    .min_inputs = 2, .max_inputs = 5, .min_outputs = 1, .max_outputs = 3,
    .infer = bng_infer, .emit = bng_emit,
    .summary = "gradient of BatchNormalization in training mode (batch statistics)",
};

int norm_grad_batchnorm(GradCtx *c)
{
    Node *fn = c->n;
    Graph *g = c->g;
    int kd = strcmp(fn->op_type, "BatchNormTraining") == 0;
    int train = kd || ((fn->opset >= 14 || fn->opset == 0) && attr_int(fn, "training_mode", 0));
    if (!train)
        return diag_unsupported(c->d, fn, "BatchNormalization in inference mode has no gradient rule (training "
                                          "graphs switch it to batch statistics)");
    const Value *x = node_in(g, fn, 0), *s = node_in(g, fn, 1);
    for (int i = 0; i < 5; i++)
        if (node_in(g, fn, i)->dtype != DT_FLOAT)
            return diag_unsupported(c->d, fn, "the gradient of BatchNormalization is computed for float tensors only");
    (void)x;
    (void)s;
    double mom = attr_float(fn, "momentum", 0.9);
    int dy[3];
    for (int o = 0; o < 3; o++)
        dy[o] = o < fn->noutputs ? c->dy[o] : -1;
    if (c->need[0] || c->need[1] || c->need[2]) {
        int ins[5] = {fn->inputs[0], fn->inputs[1], dy[0], dy[1], dy[2]};
        Node *n = g_new(c, "kdcc.BatchNormTrainingGrad", ins, 5, 3);
        if (!n)
            return -1;
        g_attr_f(c, n, "epsilon", attr_float(fn, "epsilon", 1e-5));
        g_attr_f(c, n, "momentum", mom);
        g_attr_i(c, n, "unbiased", kd ? attr_int(fn, "unbiased", 0) : 0);
        if (g_done(c, n) < 0)
            return -1;
        if (c->need[0])
            c->dx[0] = n->outputs[0];
        for (int i = 1; i <= 2; i++)
            if (c->need[i] && (c->dx[i] = g_reshape_like(c, n->outputs[i], fn->inputs[i])) < 0)
                return -1;
    }
    /* the old running statistics enter the new ones with weight `momentum` */
    for (int i = 3; i <= 4; i++) {
        if (!c->need[i] || dy[i - 2] < 0)
            continue;
        int t = g_op2(c, "Mul", dy[i - 2], g_const_scalar(c, DT_FLOAT, mom));
        if (t < 0 || (c->dx[i] = g_reshape_like(c, t, fn->inputs[i])) < 0)
            return -1;
    }
    return 0;
}

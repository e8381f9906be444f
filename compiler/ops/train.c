/* Training operators (domain "kdcc"): the distillation loss and its closed-form
 * gradient, and the optimizer updates that write parameters in place.
 *
 * DistillLoss(z, labels?, soft?) -> loss, attributes temperature T, alpha, soft_loss:
 *   hard = mean over the labelled samples (label in [0, C); -1 marks an unlabelled one)
 *          of -log softmax(z_b)[label_b]                      (0 when none is labelled)
 *   soft = "kl":  T^2 * mean over the batch of KL(p_b || softmax(z_b / T)),
 *                 p = the teachers' softened distribution (rows of `soft`)
 *          "mse": mean over the batch and classes of (z - t)^2, t = teacher logits
 *   loss = (1 - alpha) * hard + alpha * soft
 * The T^2 keeps the soft term's gradient, (alpha * T / B) * (softmax(z/T) - p), on the
 * scale of the hard one. */
#include "compiler/ops/ops.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>

/* ---------------------------------------------------------------- DistillLoss */

static int dl_check(Graph *g, Node *n, Diag *d, Value **z, Value **lab, Value **soft)
{
    *z = need_input(g, n, 0, d);
    if (!*z)
        return -1;
    if ((*z)->dtype != DT_FLOAT || (*z)->rank != 2)
        return diag_error(d, n, "logits '%s' must be float[B,C]", (*z)->name);
    *lab = node_in(g, n, 1);
    *soft = node_in(g, n, 2);
    double alpha = attr_float(n, "alpha", 0.5);
    if (alpha < 0 || alpha > 1)
        return diag_error(d, n, "alpha %g is outside [0, 1]", alpha);
    if (attr_float(n, "temperature", 1) <= 0)
        return diag_error(d, n, "temperature must be positive");
    if (*lab && ((*lab)->dtype != DT_INT64 || (*lab)->rank != 1 || (*lab)->dims[0] != (*z)->dims[0]))
        return diag_error(d, n, "labels '%s' must be int64[%" PRId64 "]", (*lab)->name, (*z)->dims[0]);
    if (*soft && ((*soft)->dtype != DT_FLOAT || (*soft)->rank != 2 || (*soft)->dims[0] != (*z)->dims[0] ||
                  (*soft)->dims[1] != (*z)->dims[1]))
        return diag_error(d, n, "soft targets '%s' must be float[%" PRId64 ",%" PRId64 "]", (*soft)->name,
                          (*z)->dims[0], (*z)->dims[1]);
    if (!*lab && alpha < 1)
        return diag_error(d, n, "alpha %g < 1 weighs the hard labels, but no labels are given", alpha);
    if (!*soft && alpha > 0)
        return diag_error(d, n, "alpha %g > 0 weighs the teacher, but no soft targets are given", alpha);
    const char *sl = attr_string(n, "soft_loss", "kl");
    if (strcmp(sl, "kl") && strcmp(sl, "mse"))
        return diag_error(d, n, "soft_loss '%s' is not kl or mse", sl);
    return 0;
}

static int dl_infer(Graph *g, Node *n, Diag *d)
{
    Value *z, *lab, *soft;
    if (dl_check(g, n, d, &z, &lab, &soft))
        return -1;
    value_set_shape(node_out(g, n, 0), DT_FLOAT, 0, NULL);
    return 0;
}

/* Per sample b: the log-sum-exp of z_b (and of z_b/T), in double. Writes locals
 * m, lse (hard) and mt, lset (soft) for row zr. */
static void dl_row_stats(Writer *w, int64_t C, int need_t)
{
    w_line(w, "double m = zr[0], lse = 0;");
    em_for(w, "c", C);
    w_line(w, "if (zr[c] > m) m = zr[c];");
    w_close(w);
    em_for(w, "c", C);
    w_line(w, "lse += exp(zr[c] - m);");
    w_close(w);
    w_line(w, "lse = m + log(lse);");
    if (need_t) {
        w_line(w, "double lset = 0;");
        em_for(w, "c", C);
        w_line(w, "lset += exp((zr[c] - m) * invT);");
        w_close(w);
        w_line(w, "lset = m * invT + log(lset);");
    }
}

/* The loss (grad = 0) or d loss / d z (grad = 1, dloss is input 3). */
static int dl_emit_common(Emitter *e, const Node *n, int grad)
{
    Writer *w = e->w;
    const Graph *g = e->g;
    const Value *z = node_in(g, n, 0);
    int has_lab = node_in(g, n, 1) != NULL, has_soft = node_in(g, n, 2) != NULL;
    int64_t B = z->dims[0], C = z->dims[1];
    double T = attr_float(n, "temperature", 1), alpha = attr_float(n, "alpha", 0.5);
    int mse = strcmp(attr_string(n, "soft_loss", "kl"), "mse") == 0;
    int use_hard = has_lab && alpha < 1, use_soft = has_soft && alpha > 0;
    w_line(w, "const double T = %.17g, invT = %.17g, alpha = %.17g;", T, 1.0 / T, alpha);
    w_line(w, "double hard = 0, soft = 0;");
    w_line(w, "int64_t labelled = 0;");
    w_line(w, "(void)T; (void)invT; (void)alpha; (void)hard; (void)soft; (void)labelled;");
    if (use_hard) {
        em_for(w, "b", B);
        w_line(w, "labelled += x1[b] >= 0 && x1[b] < %" PRId64 ";", C);
        w_close(w);
    }
    if (grad)
        w_line(w, "const double scale = x3[0];");
    em_for(w, "b", B);
    w_line(w, "const float *zr = x0 + b * %" PRId64 ";", C);
    dl_row_stats(w, C, use_soft && !mse);
    w_line(w, "(void)lse;");
    if (use_hard) {
        w_line(w, "const int64_t y = x1[b];");
        w_line(w, "const int lab = y >= 0 && y < %" PRId64 ";", C);
        if (!grad)
            w_line(w, "if (lab) hard -= zr[y] - lse;");
    }
    if (grad) {
        em_for(w, "c", C);
        w_line(w, "double gz = 0;");
        if (use_hard)
            w_line(w, "if (lab) gz += (1 - alpha) / (double)labelled * (exp(zr[c] - lse) - (c == y ? 1.0 : 0.0));");
        if (use_soft) {
            if (mse)
                w_line(w, "gz += alpha * 2.0 * ((double)zr[c] - x2[b * %" PRId64 " + c]) / %" PRId64 ".0;", C, B * C);
            else
                w_line(w, "gz += alpha * T / %" PRId64 ".0 * (exp(zr[c] * invT - lset) - x2[b * %" PRId64 " + c]);", B, C);
        }
        w_line(w, "y0[b * %" PRId64 " + c] = (float)(gz * scale);", C);
        w_close(w);
    } else if (use_soft) {
        em_for(w, "c", C);
        w_line(w, "const double p = x2[b * %" PRId64 " + c];", C);
        if (mse)
            w_line(w, "soft += ((double)zr[c] - p) * ((double)zr[c] - p) / %" PRId64 ".0;", B * C);
        else
            w_line(w, "if (p > 0) soft += T * T / %" PRId64 ".0 * p * (log(p) - (zr[c] * invT - lset));", B);
        w_close(w);
    }
    w_close(w);
    if (!grad)
        w_line(w, "y0[0] = (float)((1 - alpha) * (labelled ? hard / (double)labelled : 0.0) + alpha * soft);");
    return 0;
}

static int dl_emit(Emitter *e, const Node *n, Diag *d)
{
    (void)d;
    return dl_emit_common(e, n, 0);
}

static int dlg_infer(Graph *g, Node *n, Diag *d)
{
    Value *z, *lab, *soft;
    if (dl_check(g, n, d, &z, &lab, &soft))
        return -1;
    Value *dl = need_input(g, n, 3, d);
    if (!dl || value_numel(dl) != 1)
        return dl ? diag_error(d, n, "the loss gradient must be a single number") : -1;
    value_set_shape(node_out(g, n, 0), DT_FLOAT, 2, z->dims);
    return 0;
}

static int dlg_emit(Emitter *e, const Node *n, Diag *d)
{
    (void)d;
    return dl_emit_common(e, n, 1);
}

static int copy_attrs(GradCtx *c, Node *to)
{
    for (int i = 0; i < c->n->nattrs; i++) {
        Attr *a = node_add_attr(c->g, to, c->n->attrs[i].name, c->n->attrs[i].type);
        if (!a)
            return -1;
        const char *nm = a->name;
        *a = c->n->attrs[i];
        a->name = nm;
    }
    return 0;
}

static int dl_grad(GradCtx *c)
{
    if (!c->need[0])
        return 0;
    if (c->need[2])
        return diag_unsupported(c->d, c->n, "gradients of the soft targets are not computed (teachers are frozen)");
    int ins[4] = {c->n->inputs[0], c->n->ninputs > 1 ? c->n->inputs[1] : -1, c->n->ninputs > 2 ? c->n->inputs[2] : -1,
                  c->dy[0]};
    Node *n = g_new(c, "kdcc.DistillLossGrad", ins, 4, 1);
    if (!n || copy_attrs(c, n))
        return -1;
    c->dx[0] = g_done(c, n);
    return c->dx[0] < 0 ? -1 : 0;
}

static const OpDef op_distill_loss = {
    .name = "DistillLoss", .domain = "kdcc", .since = 1,
    .min_inputs = 1, .max_inputs = 3, .min_outputs = 1, .max_outputs = 1,
    .infer = dl_infer, .emit = dl_emit, .grad = dl_grad,
    .summary = "(1-alpha)*CE(z, labels) + alpha*T^2*KL(p || softmax(z/T)), mean over the batch",
};

static const OpDef op_distill_loss_grad = {
    .name = "DistillLossGrad", .domain = "kdcc", .since = 1,
    .min_inputs = 4, .max_inputs = 4, .min_outputs = 1, .max_outputs = 1,
    .infer = dlg_infer, .emit = dlg_emit,
    .summary = "d DistillLoss / d logits, in closed form",
};

/* ---------------------------------------------------------------- optimizer updates */

/* SGDUpdate(W, dW, lr, scale?, velocity?) -> (W', velocity'?)
 * AdamUpdate(W, dW, m, v, lr, step, scale?) -> (W', m', v')
 * `scale` multiplies the gradient (gradient clipping by norm); lr and step are scalars. */

static int upd_infer(Graph *g, Node *n, Diag *d)
{
    int adam = strcmp(n->op_type, "AdamUpdate") == 0;
    Value *w = need_input(g, n, 0, d), *dw = need_input(g, n, 1, d);
    if (!w || !dw)
        return -1;
    if (w->dtype != DT_FLOAT || dw->dtype != DT_FLOAT || value_numel(w) != value_numel(dw))
        return diag_error(d, n, "parameter '%s' and its gradient must be float tensors of the same size", w->name);
    int nstate = adam ? 2 : (node_in(g, n, 4) ? 1 : 0);
    for (int k = 0; k < nstate; k++) {
        Value *s = need_input(g, n, adam ? 2 + k : 4, d);
        if (!s || value_numel(s) != value_numel(w))
            return s ? diag_error(d, n, "optimizer state '%s' has the wrong size", s->name) : -1;
    }
    int scalars[3] = {adam ? 4 : 2, adam ? 5 : -1, adam ? 6 : 3};
    for (int k = 0; k < 3; k++) {
        Value *s = scalars[k] >= 0 ? node_in(g, n, scalars[k]) : NULL;
        if (s && (s->dtype != DT_FLOAT || value_numel(s) != 1))
            return diag_error(d, n, "input %d must be a float scalar", scalars[k]);
    }
    value_set_shape(node_out(g, n, 0), DT_FLOAT, w->rank, w->dims);
    for (int k = 1; k < n->noutputs && k <= nstate; k++) {
        Value *o = node_out(g, n, k);
        if (o)
            value_set_shape(o, DT_FLOAT, w->rank, w->dims);
    }
    return 0;
}

static int sgd_emit(Emitter *e, const Node *n, Diag *d)
{
    (void)d;
    Writer *w = e->w;
    const Value *wv = node_in(e->g, n, 0);
    double mu = attr_float(n, "momentum", 0), wd = attr_float(n, "weight_decay", 0);
    int nesterov = (int)attr_int(n, "nesterov", 0);
    int has_scale = node_in(e->g, n, 3) != NULL, has_v = node_in(e->g, n, 4) != NULL && mu != 0;
    w_line(w, "const float lr = x2[0];");
    w_line(w, "const float scale = %s;", has_scale ? "x3[0]" : "1.0f");
    em_for(w, "i", value_numel(wv));
    w_printf(w, "float gr = x1[i] * scale");
    if (wd != 0) {
        w_puts(w, " + ");
        w_float(w, (float)wd);
        w_puts(w, " * x0[i]");
    }
    w_line(w, ";");
    if (has_v) {
        w_puts(w, "const float v = ");
        w_float(w, (float)mu);
        w_line(w, " * x4[i] + gr;");
        w_line(w, "y1[i] = v;");
        if (nesterov) {
            w_puts(w, "gr = gr + ");
            w_float(w, (float)mu);
            w_line(w, " * v;");
        } else {
            w_line(w, "gr = v;");
        }
    }
    w_line(w, "y0[i] = x0[i] - lr * gr;");
    w_close(w);
    return 0;
}

#define ADAM_BLOCK 256 /* elements per block of the Adam update */

static int adam_emit(Emitter *e, const Node *n, Diag *d)
{
    (void)d;
    Writer *w = e->w;
    const Value *wv = node_in(e->g, n, 0);
    double b1 = attr_float(n, "beta1", 0.9), b2 = attr_float(n, "beta2", 0.999);
    double eps = attr_float(n, "epsilon", 1e-8), wd = attr_float(n, "weight_decay", 0);
    int decoupled = (int)attr_int(n, "decoupled", 0);
    int has_scale = node_in(e->g, n, 6) != NULL;
    w_line(w, "const float lr = x4[0];");
    w_line(w, "const double t = x5[0];");
    w_line(w, "const float c1 = (float)(1.0 / (1.0 - pow(%.17g, t)));", b1);
    w_line(w, "const float c2 = (float)(1.0 / (1.0 - pow(%.17g, t)));", b2);
    w_line(w, "const float scale = %s;", has_scale ? "x6[0]" : "1.0f");
    /* W, m and v are updated in place (each output shares its input's buffer, so
     * none is restrict): with 12 pairs of pointers that might overlap, gcc 12 gave
     * up the runtime alias checks and ran the update scalar. Each block is computed
     * into local arrays (which nothing aliases), then copied out. */
    int64_t N = value_numel(wv);
    w_open(w, "for (int64_t i0 = 0; i0 < %" PRId64 "; i0 += %d)", N, ADAM_BLOCK);
    w_line(w, "const int64_t nb = %" PRId64 " - i0 < %d ? %" PRId64 " - i0 : %d;", N, ADAM_BLOCK, N, ADAM_BLOCK);
    w_line(w, "float tw[%d], tm[%d], tv[%d];", ADAM_BLOCK, ADAM_BLOCK, ADAM_BLOCK);
    w_open(w, "for (int64_t j = 0; j < nb; ++j)");
    w_line(w, "const int64_t i = i0 + j;");
    w_printf(w, "const float gr = x1[i] * scale");
    if (wd != 0 && !decoupled) {
        w_puts(w, " + ");
        w_float(w, (float)wd);
        w_puts(w, " * x0[i]");
    }
    w_line(w, ";");
    w_puts(w, "const float m = ");
    w_float(w, (float)b1);
    w_puts(w, " * x2[i] + ");
    w_float(w, (float)(1 - b1));
    w_line(w, " * gr;");
    w_puts(w, "const float v = ");
    w_float(w, (float)b2);
    w_puts(w, " * x3[i] + ");
    w_float(w, (float)(1 - b2));
    w_line(w, " * gr * gr;");
    w_line(w, "tm[j] = m;");
    w_line(w, "tv[j] = v;");
    w_puts(w, "tw[j] = x0[i] - lr * (m * c1 / (sqrtf(v * c2) + ");
    w_float(w, (float)eps);
    w_puts(w, ")");
    if (wd != 0 && decoupled) {
        w_puts(w, " + ");
        w_float(w, (float)wd);
        w_puts(w, " * x0[i]");
    }
    w_line(w, ");");
    w_close(w);
    w_open(w, "for (int64_t j = 0; j < nb; ++j)");
    w_line(w, "y0[i0 + j] = tw[j];");
    w_line(w, "y1[i0 + j] = tm[j];");
    w_line(w, "y2[i0 + j] = tv[j];");
    w_close(w);
    w_close(w);
    return 0;
}

static const OpDef op_sgd_update = {
    .name = "SGDUpdate", .domain = "kdcc", .since = 1,
    .min_inputs = 3, .max_inputs = 5, .min_outputs = 1, .max_outputs = 2,
    .infer = upd_infer, .emit = sgd_emit,
    .summary = "W -= lr * (g + wd*W), with momentum (and Nesterov) velocity",
};

static const OpDef op_adam_update = {
    .name = "AdamUpdate", .domain = "kdcc", .since = 1,
    .min_inputs = 6, .max_inputs = 7, .min_outputs = 3, .max_outputs = 3,
    .infer = upd_infer, .emit = adam_emit,
    .summary = "Adam / AdamW (decoupled weight decay) step with bias correction",
};

/* GradNormScale(g1, g2, ...) -> min(1, max_norm / ||(g1, g2, ...)||): clipping by global norm */
static int gns_infer(Graph *g, Node *n, Diag *d)
{
    for (int i = 0; i < n->ninputs; i++) {
        Value *v = need_input(g, n, i, d);
        if (!v)
            return -1;
        if (v->dtype != DT_FLOAT)
            return err_dtype(d, n, "GradNormScale", v->dtype);
    }
    if (attr_float(n, "max_norm", 0) <= 0)
        return diag_error(d, n, "max_norm must be positive");
    value_set_shape(node_out(g, n, 0), DT_FLOAT, 0, NULL);
    return 0;
}

static int gns_emit(Emitter *e, const Node *n, Diag *d)
{
    (void)d;
    Writer *w = e->w;
    w_line(w, "double ss = 0, norm;");
    for (int i = 0; i < n->ninputs; i++) {
        em_for(w, "k", value_numel(node_in(e->g, n, i)));
        w_line(w, "ss += (double)x%d[k] * x%d[k];", i, i);
        w_close(w);
    }
    w_line(w, "norm = sqrt(ss);");
    w_line(w, "y0[0] = norm > %.17g ? (float)(%.17g / norm) : 1.0f;", attr_float(n, "max_norm", 1),
           attr_float(n, "max_norm", 1));
    return 0;
}

static const OpDef op_grad_norm_scale = {
    .name = "GradNormScale", .domain = "kdcc", .since = 1,
    .min_inputs = 1, .max_inputs = -1, .min_outputs = 1, .max_outputs = 1,
    .infer = gns_infer, .emit = gns_emit,
    .summary = "scale for gradient clipping by global norm",
};

/* ---------------------------------------------------------------- Gather's gradient */

/* GatherGrad(dY, indices) -> dX, attributes axis (in [0, rank)) and shape (X's dims):
 * dX = zeros of `shape`, then dY's slice of each index is added into the row it was
 * taken from (repeated indices accumulate). An index is wrapped when negative and
 * clamped into the axis exactly as Gather reads it, so every slice of dY lands on
 * the element the forward pass copied. */
static int gg_sizes(const Node *n, const Value *idx, int64_t *outer, int64_t *dim, int64_t *inner, int64_t *ni,
                    const int64_t **shape, int *rank, int *axis)
{
    *rank = attr_ints(n, "shape", shape);
    *axis = (int)attr_int(n, "axis", -1);
    if (*rank < 1 || *axis < 0 || *axis >= *rank)
        return -1;
    *outer = dims_numel(*axis, *shape);
    *dim = (*shape)[*axis];
    *inner = dims_numel(*rank - *axis - 1, *shape + *axis + 1);
    *ni = value_numel(idx);
    return 0;
}

static int gg_infer(Graph *g, Node *n, Diag *d)
{
    Value *dy = need_input(g, n, 0, d), *idx = dy ? need_input(g, n, 1, d) : NULL;
    if (!idx)
        return -1;
    if (dy->dtype != DT_FLOAT && dy->dtype != DT_DOUBLE)
        return err_dtype(d, n, "GatherGrad", dy->dtype);
    if (idx->dtype != DT_INT32 && idx->dtype != DT_INT64)
        return diag_error(d, n, "indices must be int32 or int64, not %s", dtype_name(idx->dtype));
    const int64_t *shape;
    int rank, axis;
    int64_t outer, dim, inner, ni;
    if (gg_sizes(n, idx, &outer, &dim, &inner, &ni, &shape, &rank, &axis))
        return diag_error(d, n, "GatherGrad needs a shape and an axis inside it");
    int ok = dy->rank == rank - 1 + idx->rank;
    for (int i = 0, k = 0; ok && i < rank; i++) {
        if (i == axis)
            for (int j = 0; ok && j < idx->rank; j++)
                ok = dy->dims[k++] == idx->dims[j];
        else
            ok = dy->dims[k++] == shape[i];
    }
    if (!ok)
        return diag_error(d, n, "the gradient's shape does not match the gathered slices");
    if (dim == 0 && ni > 0 && outer * inner > 0)
        return diag_error(d, n, "cannot scatter into an empty axis");
    value_set_shape(node_out(g, n, 0), dy->dtype, rank, shape);
    return 0;
}

static int gg_emit(Emitter *e, const Node *n, Diag *d)
{
    (void)d;
    Writer *w = e->w;
    const Value *idx = node_in(e->g, n, 1), *y = node_out(e->g, n, 0);
    const int64_t *shape;
    int rank, axis;
    int64_t outer, dim, inner, ni;
    gg_sizes(n, idx, &outer, &dim, &inner, &ni, &shape, &rank, &axis);
    if (value_numel(y) == 0)
        return 0;
    w_line(w, "memset(y0, 0, %" PRId64 " * sizeof(y0[0]));", value_numel(y));
    if (outer * inner * ni == 0)
        return 0;
    const char *ct = dtype_ctype(y->dtype);
    /* the indices once, wrapped and clamped as Gather reads them */
    em_for(w, "j", ni);
    w_line(w, "int64_t k = (int64_t)x1[j];");
    w_line(w, "k = k < 0 ? k + %" PRId64 " : k;", dim);
    w_line(w, "k = k < 0 ? 0 : k > %" PRId64 " ? %" PRId64 " : k;", dim - 1, dim - 1);
    em_for(w, "o", outer);
    w_line(w, "%s *yr = y0 + (o * %" PRId64 " + k) * %" PRId64 ";", ct, dim, inner);
    w_line(w, "const %s *xr = x0 + (o * %" PRId64 " + j) * %" PRId64 ";", ct, ni, inner);
    em_for(w, "t", inner);
    w_line(w, "yr[t] += xr[t];");
    w_close(w);
    w_close(w);
    w_close(w);
    return 0;
}

static const OpDef op_gather_grad = {
    .name = "GatherGrad", .domain = "kdcc", .since = 1,
    .min_inputs = 2, .max_inputs = 2, .min_outputs = 1, .max_outputs = 1,
    .infer = gg_infer, .emit = gg_emit,
    .summary = "d Gather / d data: the gradient's slices added into zeros at the gathered rows",
};

const OpDef *const ops_train[] = {&op_distill_loss, &op_distill_loss_grad, &op_sgd_update, &op_adam_update,
                                  &op_grad_norm_scale, &op_gather_grad, NULL};

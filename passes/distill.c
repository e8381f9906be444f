/* The distillation graph builder and the optimizer pass.
 *
 * pass_distill turns a student inference graph (shapes inferred, batch bound) into
 * the training step: teachers merged in frozen (or soft targets as an input when the
 * teachers' outputs are cached), the DistillLoss, the backward pass (pass_autodiff)
 * and one update per parameter (pass_optimizer). Everything is ordinary IR, so the
 * same passes and the same emitter produce the train step's C. */
#include "compiler/ops/ops.h"
#include "passes/passes.h"

#include <string.h>

static int find_output(Graph *g, const char *name, Diag *d, const char *what)
{
    if (!name) {
        if (g->noutputs < 1)
            return diag_error(d, NULL, "the %s graph has no outputs", what);
        return g->outputs[0];
    }
    for (int i = 0; i < g->noutputs; i++)
        if (strcmp(g->values[g->outputs[i]].name, name) == 0)
            return g->outputs[i];
    return diag_error(d, NULL, "the %s graph has no output named '%s'", what, name);
}

static int new_input(Graph *g, const char *name, DType dt, int rank, const int64_t *dims)
{
    int id = graph_new_value(g, name);
    if (id < 0)
        return -1;
    value_set_shape(&g->values[id], dt, rank, dims);
    g->values[id].role = VR_INPUT;
    int *ins = arena_array(g->arena, (size_t)g->ninputs + 1, sizeof(int));
    if (!ins)
        return -1;
    if (g->ninputs)
        memcpy(ins, g->inputs, (size_t)g->ninputs * sizeof(int));
    ins[g->ninputs++] = id;
    g->inputs = ins;
    return id;
}

/* Copy src's nodes and values into dst, names prefixed; src's graph inputs become
 * dst's values input_map[i]. With share (a map of an earlier merge of the same src),
 * src's constants are that merge's values: copies of a teacher read one set of weights. */
static int merge_graph(Graph *dst, const Graph *src, const char *prefix, const int *input_map, const int *share,
                       int *map, Diag *d)
{
    for (int v = 0; v < src->nvalues; v++)
        map[v] = share && src->values[v].role == VR_CONST ? share[v] : -1;
    for (int i = 0; i < src->ninputs; i++)
        if (src->values[src->inputs[i]].role == VR_INPUT)
            map[src->inputs[i]] = input_map[i];
    for (int v = 0; v < src->nvalues; v++) {
        if (map[v] >= 0)
            continue;
        char nm[512];
        snprintf(nm, sizeof nm, "%s/%s", prefix, src->values[v].name);
        int id = graph_new_value(dst, nm);
        if (id < 0)
            return diag_error(d, NULL, "out of memory");
        Value *nv = &dst->values[id];
        const Value *sv = &src->values[v];
        const char *keep = nv->name;
        *nv = *sv;
        nv->name = keep;
        nv->is_output = 0;
        nv->producer = -1;
        nv->offset = -1;
        map[v] = id;
    }
    for (int i = 0; i < src->nnodes; i++) {
        const Node *sn = src->nodes[i];
        int ins[64], outs[64];
        if (sn->ninputs > 64 || sn->noutputs > 64)
            return diag_unsupported(d, sn, "too many inputs or outputs");
        for (int j = 0; j < sn->ninputs; j++)
            ins[j] = sn->inputs[j] >= 0 ? map[sn->inputs[j]] : -1;
        for (int j = 0; j < sn->noutputs; j++)
            outs[j] = sn->outputs[j] >= 0 ? map[sn->outputs[j]] : -1;
        char nm[512];
        snprintf(nm, sizeof nm, "%s/%s", prefix, sn->name);
        Node *n = graph_add_node(dst, sn->op_type, nm, ins, sn->ninputs, outs, sn->noutputs);
        if (!n)
            return diag_error(d, NULL, "out of memory");
        n->domain = sn->domain;
        n->op = sn->op;
        n->opset = sn->opset;
        n->nattrs = sn->nattrs;
        n->attrs = sn->attrs; /* attributes are read-only from here on */
        for (int j = 0; j < sn->noutputs; j++)
            if (outs[j] >= 0)
                dst->values[outs[j]].producer = dst->nnodes - 1;
    }
    return 0;
}

int pass_optimizer(Graph *g, const OptimOptions *o, const int *params, const int *grads, int n, Diag *d)
{
    GradCtx c = {.g = g, .d = d};
    int64_t none[1] = {0};
    int lr = new_input(g, "lr", DT_FLOAT, 0, none);
    int step = o->kind == OPT_SGD ? -1 : new_input(g, "step", DT_FLOAT, 0, none);
    if (lr < 0 || (o->kind != OPT_SGD && step < 0))
        return diag_error(d, NULL, "out of memory");
    int scale = -1;
    if (o->clip_norm > 0) {
        int gl[4096], ng = 0;
        for (int i = 0; i < n && ng < 4096; i++)
            if (grads[i] >= 0)
                gl[ng++] = grads[i];
        Node *s = g_new(&c, "kdcc.GradNormScale", gl, ng, 1);
        if (!s)
            return -1;
        g_attr_f(&c, s, "max_norm", o->clip_norm);
        if ((scale = g_done(&c, s)) < 0)
            return -1;
    }
    for (int i = 0; i < n; i++) {
        if (grads[i] < 0)
            continue; /* the loss does not depend on it */
        Value *w = &g->values[params[i]];
        int moments[2] = {-1, -1}, nm = o->kind == OPT_SGD ? (o->momentum != 0) : 2;
        for (int k = 0; k < nm; k++) {
            char nmv[512];
            snprintf(nmv, sizeof nmv, "%s/%s", w->name, o->kind == OPT_SGD ? "velocity" : (k ? "v" : "m"));
            moments[k] = graph_new_value(g, nmv);
            if (moments[k] < 0)
                return diag_error(d, NULL, "out of memory");
            w = &g->values[params[i]];
            value_set_shape(&g->values[moments[k]], DT_FLOAT, w->rank, w->dims);
            g->values[moments[k]].role = VR_STATE; /* starts at zero */
        }
        Node *u;
        if (o->kind == OPT_SGD) {
            int ins[5] = {params[i], grads[i], lr, scale, moments[0]};
            u = g_new(&c, "kdcc.SGDUpdate", ins, nm ? 5 : (scale >= 0 ? 4 : 3), 1 + nm);
            if (!u)
                return -1;
            g_attr_f(&c, u, "momentum", o->momentum);
            g_attr_i(&c, u, "nesterov", o->nesterov);
            g_attr_f(&c, u, "weight_decay", o->weight_decay);
        } else {
            int ins[7] = {params[i], grads[i], moments[0], moments[1], lr, step, scale};
            u = g_new(&c, "kdcc.AdamUpdate", ins, scale >= 0 ? 7 : 6, 3);
            if (!u)
                return -1;
            g_attr_f(&c, u, "beta1", o->beta1);
            g_attr_f(&c, u, "beta2", o->beta2);
            g_attr_f(&c, u, "epsilon", o->epsilon);
            g_attr_f(&c, u, "weight_decay", o->weight_decay);
            g_attr_i(&c, u, "decoupled", o->kind == OPT_ADAMW);
        }
        if (g_done(&c, u) < 0)
            return -1;
        /* the new values are written over the old ones */
        g->values[u->outputs[0]].alias_of = params[i];
        for (int k = 0; k < nm; k++)
            g->values[u->outputs[1 + k]].alias_of = moments[k];
    }
    return 0;
}

int pass_distill(Graph *g, const DistillOptions *o, Diag *d)
{
    int z = find_output(g, o->student_output, d, "student");
    if (z < 0)
        return -1;
    Value *zv = &g->values[z];
    if (zv->dtype != DT_FLOAT || zv->rank != 2)
        return diag_error(d, NULL, "the student's output '%s' must be float logits [batch, classes]", zv->name);
    int64_t B = zv->dims[0], C = zv->dims[1];
    if (pass_train_mode(g, &o->train_mode, d))
        return -1;
    /* the student's float weights become trainable state (values that are already
     * state, such as running statistics, stay as they are) */
    int *params = arena_array(g->arena, (size_t)g->nvalues + 1, sizeof(int));
    int *grads = arena_array(g->arena, (size_t)g->nvalues + 1, sizeof(int));
    if (!params || !grads)
        return diag_error(d, NULL, "out of memory");
    int np = 0;
    for (int i = 0; i < g->nnodes; i++) {
        Node *n = g->nodes[i];
        for (int j = 0; j < n->ninputs; j++) {
            int v = n->inputs[j];
            if (v < 0)
                continue;
            Value *val = &g->values[v];
            if (val->role != VR_CONST || val->dtype != DT_FLOAT || val->rank < 1 || val->is_param)
                continue;
            val->role = VR_STATE;
            val->is_param = 1;
            params[np++] = v;
        }
    }
    if (np == 0)
        return diag_error(d, NULL, "the student has no float weights to train");

    int64_t bdim[1] = {B}, bc[2] = {B, C};
    int labels = -1, soft = -1;
    if (o->alpha < 1 || o->with_labels)
        if ((labels = new_input(g, "labels", DT_INT64, 1, bdim)) < 0)
            return diag_error(d, NULL, "out of memory");
    GradCtx c = {.g = g, .d = d};
    if (o->alpha > 0) {
        if (o->nteachers == 0) {
            /* cached: the teachers' softened distribution (kl) or mean logits (mse) per sample */
            if ((soft = new_input(g, "soft_targets", DT_FLOAT, 2, bc)) < 0)
                return diag_error(d, NULL, "out of memory");
        }
        double wsum = 0;
        for (int t = 0; t < o->nteachers; t++)
            wsum += o->teachers[t].weight;
        for (int t = 0; t < o->nteachers; t++) {
            const Graph *tg = o->teachers[t].g;
            /* parts > 1: tg is bound to B / parts samples and runs on each slice of the batch */
            int parts = o->teachers[t].parts > 1 ? o->teachers[t].parts : 1;
            if (parts > KD_MAX_TEACHER_PARTS || B % parts)
                return diag_error(d, NULL, "teacher %d: a batch of %lld cannot run in %d equal parts", t + 1, (long long)B,
                                  parts);
            int in_map[64], nrun = 0;
            for (int i = 0; i < tg->ninputs && i < 64; i++) {
                in_map[i] = -1;
                if (tg->values[tg->inputs[i]].role != VR_INPUT)
                    continue;
                int k = 0, sid = -1;
                for (int s = 0; s < g->ninputs; s++)
                    if (g->values[g->inputs[s]].role == VR_INPUT && k++ == nrun)
                        sid = g->inputs[s];
                nrun++;
                if (sid < 0)
                    return diag_error(d, NULL, "teacher %d has more inputs than the student", t + 1);
                const Value *a = &tg->values[tg->inputs[i]], *b = &g->values[sid];
                if (value_numel(a) * parts != value_numel(b) || a->dtype != b->dtype ||
                    (parts > 1 && (b->rank < 1 || b->dims[0] != B)))
                    return diag_error(d, NULL, "teacher %d's input '%s' does not match the student's '%s'", t + 1,
                                      a->name, b->name);
                in_map[i] = sid;
            }
            int tz0 = find_output((Graph *)tg, o->teachers[t].output, d, "teacher");
            if (tz0 < 0)
                return -1;
            const int *first = NULL;
            int zs[KD_MAX_TEACHER_PARTS];
            for (int part = 0; part < parts; part++) {
                int pin[64];
                for (int i = 0; i < tg->ninputs && i < 64; i++) {
                    pin[i] = in_map[i];
                    if (in_map[i] < 0 || parts == 1)
                        continue;
                    /* rows [part * B / parts, (part + 1) * B / parts) of the input */
                    int64_t st = part * (B / parts), en = st + B / parts, ax = 0;
                    int sl[4] = {in_map[i], g_const_ints(&c, &st, 1), g_const_ints(&c, &en, 1), g_const_ints(&c, &ax, 1)};
                    Node *sn = g_new(&c, "Slice", sl, 4, 1);
                    if (!sn)
                        return -1;
                    char snm[64];
                    snprintf(snm, sizeof snm, "teacher%d.part%d.slice%d", t + 1, part, i);
                    if (!(sn->name = arena_strdup(g->arena, snm)))
                        return diag_error(d, NULL, "out of memory");
                    if ((pin[i] = g_done(&c, sn)) < 0)
                        return -1;
                    g->values[pin[i]].name = sn->name;
                }
                int *map = arena_array(g->arena, (size_t)tg->nvalues + 1, sizeof(int));
                char prefix[48];
                if (parts == 1)
                    snprintf(prefix, sizeof prefix, "teacher%d", t + 1);
                else
                    snprintf(prefix, sizeof prefix, "teacher%d.part%d", t + 1, part);
                if (!map || merge_graph(g, tg, prefix, pin, first, map, d))
                    return -1;
                first = first ? first : map;
                zs[part] = map[tz0];
                const Value *tv = &g->values[zs[part]];
                if (tv->rank != 2 || tv->dims[0] != B / parts || tv->dims[1] != C || tv->dtype != DT_FLOAT)
                    return diag_error(d, NULL,
                                      "teacher %d's output '%s' does not have the student's shape float[%lld,%lld]",
                                      t + 1, tv->name, (long long)(B / parts), (long long)C);
            }
            int tz = zs[0];
            if (parts > 1) {
                /* the parts' logits, in order: the whole batch's */
                Node *cat = g_new(&c, "Concat", zs, parts, 1);
                if (!cat)
                    return -1;
                g_attr_i(&c, cat, "axis", 0);
                char cnm[48];
                snprintf(cnm, sizeof cnm, "teacher%d.logits", t + 1);
                if (!(cat->name = arena_strdup(g->arena, cnm)))
                    return diag_error(d, NULL, "out of memory");
                if ((tz = g_done(&c, cat)) < 0)
                    return -1;
                g->values[tz].name = cat->name;
            }
            int p = tz;
            if (!o->mse) {
                p = g_op2(&c, "Div", tz, g_const_scalar(&c, DT_FLOAT, o->T));
                Node *sm = g_new(&c, "Softmax", &p, 1, 1);
                if (!sm)
                    return -1;
                g_attr_i(&c, sm, "axis", -1);
                p = g_done(&c, sm);
            }
            if (o->nteachers > 1)
                p = g_op2(&c, "Mul", p, g_const_scalar(&c, DT_FLOAT, o->teachers[t].weight / wsum));
            soft = soft < 0 ? p : g_op2(&c, "Add", soft, p);
            if (p < 0 || soft < 0)
                return -1;
        }
    }
    int ins[3] = {z, labels, soft};
    Node *ln = g_new(&c, "kdcc.DistillLoss", ins, 3, 1);
    if (!ln)
        return -1;
    g_attr_f(&c, ln, "temperature", o->T);
    g_attr_f(&c, ln, "alpha", o->alpha);
    g_attr_s(&c, ln, "soft_loss", o->mse ? "mse" : "kl");
    int loss = g_done(&c, ln);
    if (loss < 0)
        return -1;
    g->values[loss].is_output = 1;
    if (pass_autodiff(g, loss, params, np, grads, d))
        return -1;
    if (pass_optimizer(g, &o->opt, params, grads, np, d))
        return -1;
    /* outputs: the loss, then the student's logits (for accuracy while training) */
    for (int i = 0; i < g->noutputs; i++)
        g->values[g->outputs[i]].is_output = 0;
    g->outputs = arena_array(g->arena, 2, sizeof(int));
    g->outputs[0] = loss;
    g->outputs[1] = z;
    g->noutputs = 2;
    g->values[loss].is_output = g->values[z].is_output = 1;
    return 0;
}

/* ---- a frozen teacher in slices of the batch ---- */

int64_t distill_bytes_per_sample(const Graph *t, int64_t batch)
{
    int64_t most = 0;
    for (int i = 0; i < t->nnodes; i++) {
        const Node *n = t->nodes[i];
        int64_t bytes = 0;
        for (int pass = 0; pass < 2; pass++) {
            int cnt = pass ? n->noutputs : n->ninputs;
            for (int j = 0; j < cnt; j++) {
                int v = pass ? n->outputs[j] : n->inputs[j];
                if (v < 0 || t->values[v].role == VR_CONST || t->values[v].role == VR_STATE)
                    continue;
                int seen = 0; /* a tensor read twice (a residual) counts once */
                for (int q = 0; q < n->ninputs && !(pass == 0 && q >= j); q++)
                    seen |= n->inputs[q] == v;
                if (!seen)
                    bytes += (int64_t)value_bytes(&t->values[v]);
            }
        }
        most = bytes > most ? bytes : most;
    }
    return batch > 0 ? (most + batch - 1) / batch : most;
}

int64_t distill_sub_batch(const Graph *t, int64_t batch, int64_t cache_bytes)
{
    int64_t per = distill_bytes_per_sample(t, batch);
    if (cache_bytes <= 0 || per <= 0 || per > cache_bytes)
        return batch;
    for (int64_t s = batch; s > 1; s--)
        if (batch % s == 0 && s * per <= cache_bytes && batch / s <= KD_MAX_TEACHER_PARTS)
            return s;
    return batch <= KD_MAX_TEACHER_PARTS ? 1 : batch;
}

/* Operators that compute each sample apart when every tensor they read or write
 * that is not a constant has the batch as its first dim. */
static const char *const per_sample_ops[] = {
    "Conv", "ConvTranspose", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "LpPool",
    "BatchNormalization", "InstanceNormalization", "LRN", "Dropout", "Identity", "Flatten", "Reshape", "Gemm",
    "MatMul", "Resize", "Upsample", "Pad", "DepthToSpace", "SpaceToDepth", "Cast", "Relu", "LeakyRelu", "PRelu",
    "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Elu", "Selu", "Celu", "Gelu", "Mish", "Softplus", "Softsign",
    "Clip", "Exp", "Log", "Abs", "Neg", "Sqrt", "Reciprocal", "Erf", "Floor", "Ceil", "Round", "Sign", "Sin", "Cos",
    "Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean", "Where", "Equal", "Less", "Greater", "Not",
    "And", "Or", NULL};

/* Operators that mix elements along one axis or a set of axes: per sample when
 * none of them is dim 0. The axis' default when the attribute is absent. */
static const struct {
    const char *op;
    int axes;         /* 1: "axes" attribute or input 1; 0: "axis" attribute; 2: "perm" */
    int def;          /* default axis; 99: none (refuse) */
} axis_ops[] = {
    {"Softmax", 0, -1}, {"LogSoftmax", 0, -1}, {"Hardmax", 0, -1}, {"Concat", 0, 99}, {"LayerNormalization", 0, -1},
    {"LpNormalization", 0, -1}, {"ArgMax", 0, 0}, {"ArgMin", 0, 0}, {"Gather", 0, 0}, {"Split", 0, 0},
    {"Squeeze", 1, 99}, {"Unsqueeze", 1, 99}, {"ReduceMean", 1, 99}, {"ReduceSum", 1, 99}, {"ReduceMax", 1, 99},
    {"ReduceMin", 1, 99}, {"ReduceL2", 1, 99}, {"ReduceProd", 1, 99}, {"Transpose", 2, 99},
};

static int split_op_ok(const Graph *g, const Node *n, char *why, size_t whylen)
{
    for (int k = 0; per_sample_ops[k]; k++)
        if (!strcmp(n->op_type, per_sample_ops[k])) {
            if (!strcmp(n->op_type, "BatchNormalization") && attr_int(n, "training_mode", 0))
                break;
            return 1;
        }
    const Value *x = node_in(g, n, 0);
    for (size_t k = 0; k < sizeof axis_ops / sizeof axis_ops[0] && x; k++) {
        if (strcmp(n->op_type, axis_ops[k].op))
            continue;
        if (!strcmp(n->op_type, "Gather") && x->role == VR_CONST)
            return 1; /* rows of a table picked per sample */
        int rank = x->rank;
        if (!strcmp(n->op_type, "Unsqueeze") && node_out(g, n, 0))
            rank = node_out(g, n, 0)->rank;
        if (axis_ops[k].axes == 2) {
            const int64_t *perm;
            if (attr_ints(n, "perm", &perm) >= 1 && perm[0] == 0)
                return 1;
            break;
        }
        if (axis_ops[k].axes == 0) {
            int64_t def = axis_ops[k].def;
            if (!strcmp(n->op_type, "Softmax") || !strcmp(n->op_type, "LogSoftmax") || !strcmp(n->op_type, "Hardmax"))
                def = n->opset && n->opset < 13 ? 1 : -1;
            if (!node_attr(n, "axis") && def == 99)
                break;
            int64_t a = attr_int(n, "axis", def);
            a = a < 0 ? a + rank : a;
            if (a > 0 && a < rank)
                return 1;
            break;
        }
        const int64_t *axes = NULL;
        int na = attr_ints(n, "axes", &axes);
        const Value *av = node_in(g, n, 1);
        int ok = 1;
        if (na >= 1) {
            for (int q = 0; q < na; q++)
                ok &= (axes[q] < 0 ? axes[q] + rank : axes[q]) > 0;
        } else if (av && av->role == VR_CONST && av->data && value_numel(av) >= 1) {
            for (int64_t q = 0; q < value_numel(av); q++) {
                int64_t a = const_get_i64(av, q);
                ok &= (a < 0 ? a + rank : a) > 0;
            }
        } else {
            ok = 0; /* every axis */
        }
        if (ok)
            return 1;
        break;
    }
    snprintf(why, whylen, "node '%s' (%s) may combine samples", n->name ? n->name : "?", n->op_type);
    return 0;
}

int distill_split_ok(const Graph *full, const Graph *part, int parts, char *why, size_t whylen)
{
    snprintf(why, whylen, "%s", "");
    if (full->nnodes != part->nnodes || full->nvalues != part->nvalues) {
        snprintf(why, whylen, "the graph differs between batch sizes");
        return 0;
    }
    for (int i = 0; i < full->nnodes; i++) {
        const Node *n = full->nodes[i], *m = part->nodes[i];
        if (strcmp(n->op_type, m->op_type) || n->ninputs != m->ninputs || n->noutputs != m->noutputs) {
            snprintf(why, whylen, "the graph differs between batch sizes at node '%s'", n->name ? n->name : "?");
            return 0;
        }
        int live = 0; /* a node whose outputs were all folded computes nothing at run time */
        for (int j = 0; j < n->noutputs; j++)
            live |= n->outputs[j] >= 0 && full->values[n->outputs[j]].role != VR_CONST;
        if (!live)
            continue;
        for (int pass = 0; pass < 2; pass++) {
            int cnt = pass ? n->noutputs : n->ninputs;
            for (int j = 0; j < cnt; j++) {
                int v = pass ? n->outputs[j] : n->inputs[j];
                int w = pass ? m->outputs[j] : m->inputs[j];
                if (v < 0 && w < 0)
                    continue;
                if (v != w) {
                    snprintf(why, whylen, "the graph differs between batch sizes at node '%s'", n->name ? n->name : "?");
                    return 0;
                }
                const Value *a = &full->values[v], *b = &part->values[v];
                if (a->role == VR_CONST || a->role == VR_STATE)
                    continue;
                int ok = a->rank >= 1 && a->rank == b->rank && a->dtype == b->dtype && a->dims[0] == b->dims[0] * parts;
                for (int k = 1; k < a->rank && ok; k++)
                    ok = a->dims[k] == b->dims[k];
                if (!ok) {
                    snprintf(why, whylen, "tensor '%s' does not have the batch as its first dim", a->name);
                    return 0;
                }
            }
        }
        if (!split_op_ok(full, n, why, whylen))
            return 0;
    }
    return 1;
}

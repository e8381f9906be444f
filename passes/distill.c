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
 * dst's values input_map[i]. */
static int merge_graph(Graph *dst, const Graph *src, const char *prefix, const int *input_map, int *map, Diag *d)
{
    for (int v = 0; v < src->nvalues; v++)
        map[v] = -1;
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
                if (value_numel(a) != value_numel(b) || a->dtype != b->dtype)
                    return diag_error(d, NULL, "teacher %d's input '%s' does not match the student's '%s'", t + 1,
                                      a->name, b->name);
                in_map[i] = sid;
            }
            int *map = arena_array(g->arena, (size_t)tg->nvalues + 1, sizeof(int));
            char prefix[32];
            snprintf(prefix, sizeof prefix, "teacher%d", t + 1);
            if (!map || merge_graph(g, tg, prefix, in_map, map, d))
                return -1;
            int tz = find_output((Graph *)tg, o->teachers[t].output, d, "teacher");
            if (tz < 0)
                return -1;
            tz = map[tz];
            const Value *tv = &g->values[tz];
            if (tv->rank != 2 || tv->dims[0] != B || tv->dims[1] != C || tv->dtype != DT_FLOAT)
                return diag_error(d, NULL, "teacher %d's output '%s' does not have the student's shape float[%lld,%lld]",
                                  t + 1, tv->name, (long long)B, (long long)C);
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

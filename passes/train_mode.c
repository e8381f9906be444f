/* Operators that behave differently while training (BatchNormalization, Dropout):
 * pass_train_mode switches them to their training form in a training graph.
 *
 * BatchNormalization -> kdcc.BatchNormTraining(x, scale, bias, mean, var) ->
 *   (y, mean', var'): batch statistics; the running mean and variance become state
 *   (not trainable) and mean'/var' are written over them (alias_of), with the node's
 *   momentum (ONNX's: 0.9 is PyTorch's 0.1) and the unbiased batch variance, as
 *   PyTorch keeps it. The inference graph reads the same state by name, so the
 *   updated statistics reach validation and export.
 * Dropout -> kdcc.DropoutTrain(x, rng) -> (y, mask, rng'): a uint64 random state per
 *   node, seeded from TrainModeOptions.seed and advanced in place each step, so the
 *   masks differ per step, are the same for the same seed, and a resumed run (state
 *   restored) continues the sequence. The gradient reuses the mask. */
#include "compiler/ops/ops.h"
#include "passes/passes.h"

#include <string.h>

static uint64_t splitmix64(uint64_t z)
{
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Give node i (n) a kdcc-domain operator with new inputs, outputs and no attributes. */
static int retype(Graph *g, int i, const char *op, const int *ins, int nin, const int *outs, int nout, Diag *d)
{
    Node *n = g->nodes[i];
    int *ni = arena_array(g->arena, (size_t)nin, sizeof(int));
    int *no = arena_array(g->arena, (size_t)nout, sizeof(int));
    if (!ni || !no)
        return diag_error(d, n, "out of memory");
    memcpy(ni, ins, (size_t)nin * sizeof(int));
    memcpy(no, outs, (size_t)nout * sizeof(int));
    n->inputs = ni;
    n->ninputs = nin;
    n->outputs = no;
    n->noutputs = nout;
    n->op_type = op;
    n->domain = "kdcc";
    n->opset = 1;
    n->attrs = NULL;
    n->nattrs = 0;
    n->op = op_lookup("kdcc", op);
    if (!n->op)
        return diag_error(d, n, "internal error: no operator kdcc.%s", op);
    for (int k = 0; k < nout; k++)
        if (outs[k] >= 0)
            g->values[outs[k]].producer = i;
    return 0;
}

/* how many inputs of live nodes read value v */
static int uses(const Graph *g, int v)
{
    int k = 0;
    for (int i = 0; i < g->nnodes; i++)
        for (int j = 0; j < g->nodes[i]->ninputs; j++)
            k += !g->nodes[i]->dead && g->nodes[i]->inputs[j] == v;
    return k;
}

static int new_value(Graph *g, const char *base, const char *suffix, Diag *d)
{
    char nm[512];
    snprintf(nm, sizeof nm, "%s/%s", base, suffix);
    int id = graph_new_value(g, nm);
    if (id < 0)
        diag_error(d, NULL, "out of memory");
    return id;
}

static int batchnorm_train(Graph *g, int i, Diag *d)
{
    Node *n = g->nodes[i];
    for (int o = 1; o < n->noutputs; o++)
        if (n->outputs[o] >= 0)
            return diag_unsupported(d, n, "a student BatchNormalization that is already in training mode");
    const Value *x = node_in(g, n, 0);
    if (!x || x->rank < 2)
        return diag_error(d, n, "input must have rank >= 2 (N, C, ...)");
    for (int k = 1; k <= 4; k++) {
        const Value *v = node_in(g, n, k);
        if (value_numel(v) != x->dims[1])
            return diag_unsupported(d, n, "training with per-element (spatial=0) statistics");
        if (v->dtype != DT_FLOAT || x->dtype != DT_FLOAT)
            return diag_unsupported(d, n, "training BatchNormalization on %s tensors (float only)",
                                    dtype_name(v->dtype != DT_FLOAT ? v->dtype : x->dtype));
    }
    for (int k = 3; k <= 4; k++) {
        const Value *v = node_in(g, n, k);
        if (v->role != VR_CONST || !v->data)
            return diag_unsupported(d, n, "the running %s '%s' is not an initializer, so it cannot be updated as state",
                                    k == 3 ? "mean" : "variance", v->name);
        if (uses(g, n->inputs[k]) != 1)
            return diag_unsupported(d, n, "the running %s '%s' is shared with other nodes",
                                    k == 3 ? "mean" : "variance", v->name);
    }
    double eps = attr_float(n, "epsilon", 1e-5), mom = attr_float(n, "momentum", 0.9);
    int rm = new_value(g, g->values[n->inputs[3]].name, "updated", d);
    int rv = rm < 0 ? -1 : new_value(g, g->values[n->inputs[4]].name, "updated", d);
    if (rv < 0)
        return -1;
    int ins[5], outs[3] = {n->outputs[0], rm, rv};
    memcpy(ins, n->inputs, sizeof ins);
    g->values[ins[3]].role = VR_STATE;
    g->values[ins[4]].role = VR_STATE;
    g->values[rm].alias_of = ins[3];
    g->values[rv].alias_of = ins[4];
    if (retype(g, i, "BatchNormTraining", ins, 5, outs, 3, d))
        return -1;
    n = g->nodes[i];
    Attr *a;
    if (!(a = node_add_attr(g, n, "epsilon", AT_FLOAT)))
        return diag_error(d, n, "out of memory");
    a->f = eps;
    if (!(a = node_add_attr(g, n, "momentum", AT_FLOAT)))
        return diag_error(d, n, "out of memory");
    a->f = mom;
    if (!(a = node_add_attr(g, n, "unbiased", AT_INT)))
        return diag_error(d, n, "out of memory");
    a->i = 1;
    return n->op->infer(g, n, d);
}

/* the drop ratio of an inference Dropout: attribute before opset 12, then an input */
static int dropout_ratio(Graph *g, const Node *n, double *r, Diag *d)
{
    *r = 0.5;
    if (n->opset && n->opset < 12) {
        *r = attr_float(n, "ratio", 0.5);
        return 0;
    }
    const Value *v = node_in(g, n, 1);
    if (!v)
        return 0;
    if (!value_is_const(v) || value_numel(v) != 1)
        return diag_unsupported(d, n, "a Dropout ratio computed at run time");
    *r = const_get_f64(v, 0);
    return 0;
}

static int dropout_train(Graph *g, int i, uint64_t seed, int index, Diag *d)
{
    Node *n = g->nodes[i];
    double ratio;
    if (dropout_ratio(g, n, &ratio, d))
        return -1;
    if (!(ratio > 0))
        return 0; /* drops nothing: stays a copy */
    if (ratio > 1)
        return diag_error(d, n, "ratio %g is outside [0, 1]", ratio);
    const Value *x = node_in(g, n, 0);
    if (x->dtype != DT_FLOAT && x->dtype != DT_DOUBLE)
        return diag_unsupported(d, n, "training Dropout on %s tensors", dtype_name(x->dtype));
    int mask = n->noutputs > 1 ? n->outputs[1] : -1;
    if (mask >= 0 && g->values[mask].dtype != DT_BOOL && uses(g, mask) > 0)
        return diag_unsupported(d, n, "a training Dropout whose non-boolean mask output (opset < 10) is used");
    char base[256];
    snprintf(base, sizeof base, "%s", n->name && n->name[0] ? n->name : g->values[n->inputs[0]].name);
    int64_t one = 1;
    int rng = new_value(g, base, "dropout_rng", d);
    if (rng < 0)
        return -1;
    uint64_t *p = value_make_const(g, &g->values[rng], DT_UINT64, 1, &one);
    if (!p)
        return diag_error(d, n, "out of memory");
    p[0] = splitmix64(seed * 0x9E3779B97F4A7C15ull + (uint64_t)index);
    g->values[rng].role = VR_STATE;
    int rng2 = new_value(g, base, "dropout_rng_next", d);
    if (rng2 < 0)
        return -1;
    g->values[rng2].alias_of = rng;
    if (mask < 0 || g->values[mask].dtype != DT_BOOL)
        if ((mask = new_value(g, base, "dropout_mask", d)) < 0)
            return -1;
    int ins[2] = {n->inputs[0], rng}, outs[3] = {n->outputs[0], mask, rng2};
    if (retype(g, i, "DropoutTrain", ins, 2, outs, 3, d))
        return -1;
    n = g->nodes[i];
    Attr *a = node_add_attr(g, n, "ratio", AT_FLOAT);
    if (!a)
        return diag_error(d, n, "out of memory");
    a->f = ratio;
    return n->op->infer(g, n, d);
}

int pass_train_mode(Graph *g, const TrainModeOptions *o, Diag *d)
{
    int ndrop = 0;
    for (int i = 0; i < g->nnodes; i++) {
        Node *n = g->nodes[i];
        if (n->dead || (n->domain && n->domain[0] && strcmp(n->domain, "ai.onnx") != 0))
            continue;
        if (strcmp(n->op_type, "BatchNormalization") == 0) {
            if (batchnorm_train(g, i, d))
                return -1;
        } else if (strcmp(n->op_type, "Dropout") == 0) {
            if (dropout_train(g, i, o ? o->seed : 0, ndrop++, d))
                return -1;
        }
    }
    return 0;
}

/* Fusion: work the emitted code would do in separate passes over memory, done in one.
 *
 * 1. BatchNormalization (inference) folded into the Conv, Gemm or MatMul before
 *    it, so the normalisation costs nothing at run time: with
 *    s = scale / sqrt(var + eps), per output channel oc,
 *        W'[oc] = W[oc] * s[oc],   b'[oc] = (b[oc] - mean[oc]) * s[oc] + bias[oc].
 *    Only when the producer's output feeds nothing but the BatchNormalization, every
 *    parameter is constant, and the result is computed in double (fold_bn).
 *
 * 2. Epilogues: a float Conv, Gemm or MatMul whose output has one consumer (and is
 *    not a graph output) takes that consumer in when it is an elementwise step on
 *    the output: an activation (Relu, Clip with constant bounds, LeakyRelu, Sigmoid,
 *    HardSigmoid, HardSwish, Tanh, Gelu, Elu, any unary float operator), or
 *    Add/Sub/Mul/Div with an operand of the output's shape (a residual) or of one
 *    element. Repeatedly: Conv -> Relu -> Add -> Relu becomes one node whose store
 *    computes relu(relu(acc) + r), in the graph's order, so both Conv -> Relu -> Add
 *    and Conv -> Add -> Relu are exact. A bias broadcast over the last dim before
 *    any other step becomes the Gemm's C (MatMul of 2-D operands turns into Gemm,
 *    of more dims into kdcc.FusedMatMul with a bias input), and a constant
 *    per-channel Add becomes a Conv's bias when it has none.
 *    Representation: the node becomes a kdcc-domain operator, kdcc.FusedConv,
 *    kdcc.FusedGemm or kdcc.FusedMatMul, with the base operator's inputs and
 *    attributes, then the epilogue as attributes (`epilogue` steps and their
 *    `epilogue_params`) and the operands of binary steps as extra inputs after the
 *    base operator's three (compiler/ops/fused.h). Chosen over Node.pass_data and an
 *    extra input on an ONNX Conv because an ONNX Conv takes at most three inputs,
 *    and because a fused node made of attributes and inputs is ordinary IR: the
 *    text printer shows it with --dump-after fuse, a dumped graph compiles again,
 *    and shape inference checks it like any node.
 *    The fused node takes the place of the last node it absorbed when it gains an
 *    operand (the operand may be computed between the two), else keeps its own.
 *
 * 3. Elementwise chains: elementwise steps whose intermediates have one consumer
 *    become one kdcc.Fused node (input, operands, the same epilogue attributes),
 *    emitted as one loop.
 *
 * 4. Transposes (before the epilogues): Transpose(Transpose(x, p1), p2) is one
 *    Transpose with the composed permutation, or an Identity (a view that moves
 *    no data) when that is the identity; a 2-D Transpose read only by a Gemm or a
 *    2-D MatMul becomes the Gemm's transA/transB.
 *
 * 5. Activation derivatives (training graphs): kdcc.ActivationGrad(x, dy) is one
 *    more step, "<f>Grad" with operand x, on dy's producer: the Gemm/MatMul data
 *    gradient of the layer after the activation, an elementwise chain (the sum of
 *    two gradients of a value read twice), or through a view (a CNN's Gemm ->
 *    Reshape, the Flatten's gradient -> ActivationGrad): dy is never written and
 *    read back. Steps through a view apply at the producer's flat index, which a
 *    view does not change; the step's operand (of the view's shape) is read there
 *    too, and the view then relabels the producer's output as the step's.
 *
 * 6. Before the epilogues: a stride-1 ConvTranspose with a run-time weight (a
 *    Conv's data gradient) read only by an epilogue step becomes a Conv
 *    (convtransposes_as_convs below), so it takes the activation's derivative too.
 *
 * 7. Integer Conv epilogues: ConvInteger -> Cast to float -> steps become one
 *    kdcc.FusedConvInteger (fuse_conv_integers below).
 *
 * In a training graph (after autodiff; compiler/cli/distill.c runs this pass on
 * the training step) the same rules are safe: a value the backward pass reads (the
 * pre-activation of a Gelu, say) has a second consumer, so it is never fused away
 * (a Relu's, Sigmoid's or Tanh's derivative reads its output, compiler/ops/
 * elementwise_grad.c, so the Conv or Gemm before it takes the activation);
 * and a node does not move past an optimizer update that writes over one of its
 * inputs (the update's output is alias_of the weight). */
#include "compiler/ops/fused.h"
#include "passes/passes.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

static int uses_of(const Graph *g, int v)
{
    int n = 0;
    for (int i = 0; i < g->nnodes; i++) {
        const Node *nd = g->nodes[i];
        if (nd->dead)
            continue;
        for (int j = 0; j < nd->ninputs; j++)
            n += nd->inputs[j] == v;
    }
    for (int i = 0; i < g->noutputs; i++)
        n += g->outputs[i] == v;
    return n;
}

static int in_domain(const Node *n, const char *dom)
{
    const char *nd = n->domain ? n->domain : "";
    if (!strcmp(nd, "ai.onnx"))
        nd = "";
    return strcmp(nd, dom) == 0;
}

/* Fold an inference BatchNormalization over channel axis 1 into its producer p: a
 * Conv (weights [M][...], one row of weights per channel), a Gemm on [rows, N]
 * (channel = column n: B's row n with transB, else its column n) or a MatMul of two
 * matrices (B [K][N], column n), which becomes a Gemm to take the bias. Gemm's
 * alpha stays as it is (it scales A B, which the fold scales per column); its C,
 * per column or one element, is folded with beta into the new bias and beta
 * becomes 1. 1 when folded, 0 when the shapes or constants do not allow it. */
static int fold_bn(Graph *g, Node *p, Node *bn, Diag *d)
{
    int conv = !strcmp(p->op_type, "Conv"), matmul = !strcmp(p->op_type, "MatMul");
    Value *w = node_in(g, p, 1), *b = node_in(g, p, 2);
    Value *sc = node_in(g, bn, 1), *bi = node_in(g, bn, 2), *mu = node_in(g, bn, 3), *var = node_in(g, bn, 4);
    if (!w || !sc || !bi || !mu || !var || !value_is_const(w) || (b && !value_is_const(b)) || !value_is_const(sc) ||
        !value_is_const(bi) || !value_is_const(mu) || !value_is_const(var) || w->dtype != DT_FLOAT)
        return 0;
    /* rows: channel o's weights are w[o * per + k]; else w[k * oc + o] */
    int rows = conv || (!matmul && attr_int(p, "transB", 0));
    double beta = conv || matmul ? 1.0 : attr_float(p, "beta", 1.0);
    if (!conv) {
        const Value *a = node_in(g, p, 0), *y = node_out(g, p, 0);
        if (!a || !y || a->rank != 2 || w->rank != 2 || y->rank != 2 || (b && value_numel(b) != 1 &&
            (b->rank < 1 || b->rank > 2 || (b->rank == 2 && b->dims[0] != 1))))
            return 0;
    }
    int64_t oc = rows ? w->dims[0] : w->dims[1], per = value_numel(w) / (oc ? oc : 1);
    int64_t bstep = b && value_numel(b) == 1 && !conv ? 0 : 1;   /* one element broadcast over the columns */
    if (value_numel(sc) != oc || value_numel(bi) != oc || value_numel(mu) != oc || value_numel(var) != oc ||
        (b && bstep && value_numel(b) != oc))
        return 0;
    double eps = attr_float(bn, "epsilon", 1e-5);
    char nm[512];
    snprintf(nm, sizeof nm, "%s/folded_weight", bn->name && bn->name[0] ? bn->name : w->name);
    int wid = graph_new_value(g, nm);
    snprintf(nm, sizeof nm, "%s/folded_bias", bn->name && bn->name[0] ? bn->name : w->name);
    int bid = graph_new_value(g, nm);
    const OpDef *gemm = matmul ? op_lookup("", "Gemm") : NULL;
    if (wid < 0 || bid < 0 || (matmul && !gemm))
        return diag_error(d, bn, "out of memory");
    w = node_in(g, p, 1); /* the value table may have moved */
    b = node_in(g, p, 2);
    sc = node_in(g, bn, 1), bi = node_in(g, bn, 2), mu = node_in(g, bn, 3), var = node_in(g, bn, 4);
    float *nw = value_make_const(g, &g->values[wid], DT_FLOAT, w->rank, w->dims);
    int64_t bd[1] = {oc};
    float *nb = value_make_const(g, &g->values[bid], DT_FLOAT, 1, bd);
    if (!nw || !nb)
        return diag_error(d, bn, "out of memory");
    const float *src = (const float *)w->data;
    for (int64_t o = 0; o < oc; o++) {
        double s = const_get_f64(sc, o) / sqrt(const_get_f64(var, o) + eps);
        for (int64_t k = 0; k < per; k++) {
            int64_t at = rows ? o * per + k : k * oc + o;
            nw[at] = (float)((double)src[at] * s);
        }
        nb[o] = (float)(((b ? beta * const_get_f64(b, o * bstep) : 0.0) - const_get_f64(mu, o)) * s + const_get_f64(bi, o));
    }
    int *ins = arena_array(g->arena, 3, sizeof(int));
    if (!ins)
        return diag_error(d, bn, "out of memory");
    ins[0] = p->inputs[0];
    ins[1] = wid;
    ins[2] = bid;
    p->inputs = ins;
    p->ninputs = 3;
    p->outputs[0] = bn->outputs[0];
    if (matmul) {
        p->op_type = "Gemm";
        p->op = gemm;
    }
    for (int i = 0; i < p->nattrs && beta != 1.0; i++)
        if (!strcmp(p->attrs[i].name, "beta"))
            p->attrs[i].f = 1.0;
    bn->dead = 1;
    return 1;
}

static int fold_bns(Graph *g, Diag *d)
{
    for (int i = 0; i < g->nnodes; i++) {
        Node *bn = g->nodes[i];
        if (bn->dead || strcmp(bn->op_type, "BatchNormalization") || (bn->domain && bn->domain[0]))
            continue;
        if (attr_int(bn, "training_mode", 0) || (bn->opset < 9 && attr_int(bn, "spatial", 1) == 0))
            continue;
        int nout = 0;
        for (int j = 0; j < bn->noutputs; j++)
            nout += bn->outputs[j] >= 0;
        Value *x = node_in(g, bn, 0);
        if (nout != 1 || !x || x->producer < 0 || x->is_output || uses_of(g, bn->inputs[0]) != 1)
            continue;
        Node *p = g->nodes[x->producer];
        if (p->dead || !in_domain(p, "") || p->noutputs != 1 ||
            (strcmp(p->op_type, "Conv") && strcmp(p->op_type, "Gemm") && strcmp(p->op_type, "MatMul")))
            continue;
        int r = fold_bn(g, p, bn, d);
        if (r < 0)
            return -1;
    }
    return 0;
}


/* ---------------------------------------------------------------- epilogues */


/* the node index of v's only consumer, or -1 (no consumer, more than one use, or a
 * graph output) */
static int sole_consumer(const Graph *g, int v)
{
    if (v < 0 || g->values[v].is_output)
        return -1;
    int who = -1, uses = 0;
    for (int i = 0; i < g->nnodes; i++) {
        const Node *nd = g->nodes[i];
        if (nd->dead)
            continue;
        for (int j = 0; j < nd->ninputs; j++)
            if (nd->inputs[j] == v) {
                uses++;
                who = i;
            }
    }
    for (int i = 0; i < g->noutputs; i++)
        uses += g->outputs[i] == v;
    return uses == 1 ? who : -1;
}

static int live_outputs(const Node *n)
{
    int k = 0;
    for (int j = 0; j < n->noutputs; j++)
        k += n->outputs[j] >= 0;
    return k;
}

/* Kinds of producers that take an epilogue. */
enum { P_NONE, P_CONV, P_GEMM, P_MATMUL, P_CHAIN };

static int producer_kind(const Graph *g, const Node *n)
{
    if (n->dead || n->noutputs != 1 || n->outputs[0] < 0)
        return P_NONE;
    DType t = g->values[n->outputs[0]].dtype;
    if (t != DT_FLOAT && t != DT_DOUBLE)
        return P_NONE;
    if (in_domain(n, "")) {
        if (!strcmp(n->op_type, "Conv"))
            return P_CONV;
        if (!strcmp(n->op_type, "Gemm"))
            return P_GEMM;
        if (!strcmp(n->op_type, "MatMul"))
            return P_MATMUL;
    } else if (in_domain(n, "kdcc")) {
        if (!strcmp(n->op_type, "FusedConv"))
            return P_CONV;
        if (!strcmp(n->op_type, "FusedGemm"))
            return P_GEMM;
        if (!strcmp(n->op_type, "FusedMatMul"))
            return P_MATMUL;
        if (!strcmp(n->op_type, "Fused"))
            return P_CHAIN;
    }
    return P_NONE;
}

/* n's inputs with room for `extra` more; the new slots are -1. -1 on out of memory. */
static int grow_inputs(Graph *g, Node *n, int count)
{
    if (count <= n->ninputs)
        return 0;
    int *ins = arena_array(g->arena, (size_t)count, sizeof(int));
    if (!ins)
        return -1;
    for (int i = 0; i < count; i++)
        ins[i] = i < n->ninputs ? n->inputs[i] : -1;
    n->inputs = ins;
    n->ninputs = count;
    return 0;
}

/* Make n the kdcc form of its operator (inputs padded to three for Conv/Gemm/MatMul). */
static int to_fused(Graph *g, Node *n, int kind)
{
    if (in_domain(n, "kdcc"))
        return 0;
    const char *name = kind == P_CONV ? "FusedConv" : kind == P_GEMM ? "FusedGemm" : "FusedMatMul";
    const OpDef *o = op_lookup("kdcc", name);
    if (!o || grow_inputs(g, n, 3))
        return -1;
    n->op_type = name;
    n->domain = "kdcc";
    n->op = o;
    return 0;
}

/* number of the node's inputs up to the last present one */
static int present(const Node *n)
{
    int k = n->ninputs;
    while (k > 0 && n->inputs[k - 1] < 0)
        k--;
    return k;
}

/* Append step st to producer p's epilogue ep: p becomes its fused form (unless it is
 * one already), the step's operand (a value id) joins p's inputs at the first free
 * place from `first` and st.operand becomes that input index. -1 when out of memory. */
static int add_step(Graph *g, Node *p, int kind, int first, Epilogue *ep, EpiStep *st)
{
    if (kind != P_CHAIN && to_fused(g, p, kind))
        return -1;
    if (st->operand >= 0) {
        int k = present(p);
        if (k < first)
            k = first;
        if (grow_inputs(g, p, k + 1))
            return -1;
        p->inputs[k] = st->operand;
        st->operand = k;
    }
    ep->s[ep->n++] = *st;
    return epilogue_set_attrs(g, p, ep) ? -1 : 0;
}

/* Move node a (index ia) into the slot of node ib (ib > ia), which is dead now:
 * everything ib's inputs need is computed before ib. */
static void take_slot(Graph *g, int ia, int ib)
{
    Node *a = g->nodes[ia];
    g->nodes[ia] = g->nodes[ib];
    g->nodes[ib] = a;
}

/* a broadcast bias over the last dim of y: b has N = y's last dim elements, in its
 * own last dim */
static int is_row_bias(const Value *b, const Value *y)
{
    if (y->rank < 2 || b->rank < 1 || b->rank > y->rank || b->dtype != y->dtype)
        return 0;
    int64_t N = y->dims[y->rank - 1];
    return b->dims[b->rank - 1] == N && value_numel(b) == N && value_numel(y) != N;
}

/* a constant per-channel bias of a Conv output y[N, M, ...]: shape [M, 1, ...] or
 * [1, M, 1, ...] aligned with y's dims from the right */
static int is_channel_bias(const Value *b, const Value *y)
{
    if (!value_is_const(b) || b->dtype != y->dtype || y->rank < 3 || b->rank > y->rank || b->rank < y->rank - 1)
        return 0;
    int off = y->rank - b->rank;
    for (int i = 0; i < b->rank; i++) {
        int64_t want = i + off == 1 ? y->dims[1] : 1;
        if (b->dims[i] != want)
            return 0;
    }
    return 1;
}

/* 1 if a node between slots ia and ib writes over an input of node ia (a training
 * graph's optimizer update of a weight ia reads: its output is alias_of the weight),
 * so ia cannot move to slot ib */
static int overwritten_between(const Graph *g, int ia, int ib)
{
    const Node *a = g->nodes[ia];
    for (int i = ia + 1; i < ib; i++) {
        const Node *q = g->nodes[i];
        for (int j = 0; !q->dead && j < q->noutputs; j++) {
            int o = q->outputs[j];
            if (o < 0 || g->values[o].alias_of < 0)
                continue;
            for (int k = 0; k < a->ninputs; k++)
                if (a->inputs[k] >= 0 && a->inputs[k] == g->values[o].alias_of)
                    return 1;
        }
    }
    return 0;
}

/* Absorb the consumer c (index ic) of p's output into p's epilogue if it fits. 1 if
 * absorbed, 0 if not, -1 on error. */
static int absorb(Graph *g, int ip, int ic, int kind, Diag *d)
{
    Node *p = g->nodes[ip], *c = g->nodes[ic];
    int y = p->outputs[0];
    if (ic <= ip || c->dead || live_outputs(c) != 1 || c->noutputs < 1 || c->outputs[0] < 0)
        return 0;
    int pinned = overwritten_between(g, ip, ic);
    Epilogue ep;
    int first = kind == P_CHAIN ? 1 : 3;
    Diag quiet;
    diag_init(&quiet, NULL);
    if (epilogue_read(g, p, first, &ep, &quiet))
        return 0;
    const Value *yv = &g->values[y];
    /* a bias before any other step */
    if (!pinned && kind != P_CHAIN && ep.n == 0 && in_domain(c, "") && !strcmp(c->op_type, "Add") && present(c) == 2 &&
        (c->opset >= 7 || !attr_int(c, "broadcast", 0)) && c->inputs[0] != c->inputs[1]) {
        int b = c->inputs[0] == y ? c->inputs[1] : c->inputs[0];
        const Value *bv = &g->values[b], *zv = node_out(g, c, 0);
        int same = zv->rank == yv->rank;
        for (int i = 0; same && i < yv->rank; i++)
            same = zv->dims[i] == yv->dims[i];
        if (same && kind == P_MATMUL && is_row_bias(bv, yv) && !in_domain(p, "kdcc")) {
            const Value *a = node_in(g, p, 0), *w = node_in(g, p, 1);
            if (a->rank == 2 && w->rank == 2) {
                const OpDef *o = op_lookup("", "Gemm");
                if (!o || grow_inputs(g, p, 3))
                    return diag_error(d, p, "out of memory");
                p->op_type = "Gemm";
                p->op = o;
            } else if (to_fused(g, p, kind)) {
                return diag_error(d, p, "out of memory");
            }
            p->inputs[2] = b;
        } else if (same && kind == P_GEMM && !node_in(g, p, 2) && attr_float(p, "beta", 1.0) == 1.0 &&
                   is_row_bias(bv, yv) && bv->rank <= 2) {
            if (grow_inputs(g, p, 3))
                return diag_error(d, p, "out of memory");
            p->inputs[2] = b;
        } else if (same && kind == P_CONV && !node_in(g, p, 2) && is_channel_bias(bv, yv)) {
            char nm[512];
            snprintf(nm, sizeof nm, "%s/bias", c->name && c->name[0] ? c->name : bv->name);
            int id = graph_new_value(g, nm);
            if (id < 0 || grow_inputs(g, p, 3))
                return diag_error(d, p, "out of memory");
            bv = &g->values[b];
            yv = &g->values[y];
            int64_t M = yv->dims[1];
            void *data = value_make_const(g, &g->values[id], bv->dtype, 1, &M);
            if (!data)
                return diag_error(d, p, "out of memory");
            memcpy(data, bv->data, (size_t)M * dtype_size(bv->dtype));
            p->inputs[2] = id;
        } else {
            goto step;
        }
        p->outputs[0] = c->outputs[0];
        c->dead = 1;
        take_slot(g, ip, ic);
        return 1;
    }
step:;
    EpiStep st;
    if (ep.n >= EPI_MAX_STEPS || !ew_epilogue_step(g, c, y, &st) || (st.operand >= 0 && pinned))
        return 0;
    int moved = st.operand >= 0;
    if (add_step(g, p, kind, first, &ep, &st))
        return diag_error(d, p, "out of memory");
    p->outputs[0] = c->outputs[0];
    c->dead = 1;
    if (moved)
        take_slot(g, ip, ic);
    return 1;
}

/* the slot of the node computing v, -1 for a graph input or constant (Value.producer
 * is stale while nodes move) */
static int producer_slot(const Graph *g, int v)
{
    for (int i = 0; i < g->nnodes; i++) {
        const Node *n = g->nodes[i];
        for (int j = 0; !n->dead && j < n->noutputs; j++)
            if (n->outputs[j] == v)
                return i;
    }
    return -1;
}

/* Absorb a step through a view: p's output y is read only by a view v (index iv:
 * Reshape, Flatten, Squeeze, Unsqueeze, Identity), whose output is read only by a
 * step c on it. The step joins p's epilogue (it is elementwise, and a view keeps the
 * elements' order, so it applies at p's flat index; its operand, of the view's shape,
 * is read there too) and v then relabels p's output as c's: a gradient Gemm ->
 * Reshape (the Flatten's gradient) -> ActivationGrad in a CNN's backward pass. Only
 * when the operand is computed before p, so nothing moves. 1 if absorbed, 0 if not,
 * -1 on error. */
static int absorb_through_view(Graph *g, int ip, int iv, int kind, Diag *d)
{
    Node *p = g->nodes[ip], *v = g->nodes[iv];
    int y = p->outputs[0];
    if (iv <= ip || v->dead || !v->op || !v->op->view || !strcmp(v->op_type, "Dropout") || live_outputs(v) != 1 ||
        v->outputs[0] < 0 || v->inputs[0] != y)
        return 0;
    int z = v->outputs[0];
    if (value_numel(&g->values[z]) != value_numel(&g->values[y]) || g->values[z].dtype != g->values[y].dtype)
        return 0;
    int ic = sole_consumer(g, z);
    if (ic <= iv)
        return 0;
    Node *c = g->nodes[ic];
    if (c->dead || live_outputs(c) != 1 || c->outputs[0] < 0)
        return 0;
    Epilogue ep;
    Diag quiet;
    diag_init(&quiet, NULL);
    int first = kind == P_CHAIN ? 1 : 3;
    EpiStep st;
    if (epilogue_read(g, p, first, &ep, &quiet) || ep.n >= EPI_MAX_STEPS || !ew_epilogue_step(g, c, z, &st))
        return 0;
    if (st.operand >= 0 && producer_slot(g, st.operand) >= ip)
        return 0;
    if (add_step(g, p, kind, first, &ep, &st))
        return diag_error(d, p, "out of memory");
    v->outputs[0] = c->outputs[0];
    c->dead = 1;
    return 1;
}

/* Start a chain at elementwise node n (index i) when its output's consumer is a
 * step too: n becomes kdcc.Fused with its own step first. 1 if it did. */
static int start_chain(Graph *g, int i, Diag *d)
{
    Node *n = g->nodes[i];
    if (n->dead || live_outputs(n) != 1 || n->noutputs != 1 || n->outputs[0] < 0)
        return 0;
    int ic = sole_consumer(g, n->outputs[0]);
    if (ic < 0)
        return 0;
    EpiStep st, next;
    int chain = -1;
    for (int k = 0; k < 2 && k < n->ninputs && chain < 0; k++)
        if (n->inputs[k] >= 0 && ew_epilogue_step(g, n, n->inputs[k], &st))
            chain = n->inputs[k];
    if (chain < 0 || !ew_epilogue_step(g, g->nodes[ic], n->outputs[0], &next))
        return 0;
    const OpDef *o = op_lookup("kdcc", "Fused");
    int *ins = arena_array(g->arena, 2, sizeof(int));
    if (!o || !ins)
        return diag_error(d, n, "out of memory");
    ins[0] = chain;
    int nin = 1;
    if (st.operand >= 0) {
        ins[1] = st.operand;
        st.operand = 1;
        nin = 2;
    }
    /* Clip's bound inputs and the like are not inputs of the fused node */
    n->inputs = ins;
    n->ninputs = nin;
    n->op_type = "Fused";
    n->domain = "kdcc";
    n->op = o;
    n->nattrs = 0;
    n->attrs = NULL;
    Epilogue ep = {.n = 1};
    ep.s[0] = st;
    if (epilogue_set_attrs(g, n, &ep))
        return diag_error(d, n, "out of memory");
    return 1;
}

static int fuse_epilogues(Graph *g, Diag *d, int chains)
{
    for (int i = 0; i < g->nnodes; i++) {
        Node *p = g->nodes[i];
        int kind = producer_kind(g, p);
        if (chains && kind == P_NONE && !p->dead) {
            int r = start_chain(g, i, d);
            if (r < 0)
                return -1;
            kind = r ? P_CHAIN : P_NONE;
        }
        if (kind == P_NONE || (kind == P_CHAIN && !chains))
            continue;
        /* p may move to a later slot; follow it there */
        int ip = i;
        for (;;) {
            int ic = sole_consumer(g, g->nodes[ip]->outputs[0]);
            if (ic < 0)
                break;
            int r = absorb(g, ip, ic, kind, d);
            if (r == 0)
                r = absorb_through_view(g, ip, ic, kind, d);
            if (r < 0)
                return -1;
            if (!r)
                break;
            if (g->nodes[ic] == p)
                ip = ic;
            kind = producer_kind(g, p);
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- integer Conv epilogues */

/* 7. ConvInteger -> Cast to float -> elementwise steps (a quantized model's
 *    dequantizing scale, its per-channel bias, the activation: mnist-8-quantized)
 *    become one kdcc.FusedConvInteger (compiler/ops/quant.c), whose store converts each
 *    int32 sum to float and applies the steps: neither the int32 planes nor the float
 *    ones between the steps are stored. The steps are those of the float epilogues
 *    (ew_epilogue_step) and an Add or Mul by a constant per-channel operand
 *    (is_channel_bias), applied in the graph's order, so the result is the same; an
 *    operand must be computed before the Conv (nothing moves). */
static int channel_step(const Graph *g, const Node *c, int chain, EpiStep *st)
{
    if (!in_domain(c, "") || (strcmp(c->op_type, "Add") && strcmp(c->op_type, "Mul")) || present(c) != 2 ||
        (c->opset < 7 && attr_int(c, "broadcast", 0)) || c->inputs[0] == c->inputs[1] ||
        (c->inputs[0] != chain && c->inputs[1] != chain))
        return 0;
    int b = c->inputs[0] == chain ? c->inputs[1] : c->inputs[0];
    const Value *yv = &g->values[chain], *zv = node_out(g, c, 0);
    if (!zv || zv->rank != yv->rank || !is_channel_bias(&g->values[b], yv))
        return 0;
    for (int i = 0; i < yv->rank; i++)
        if (zv->dims[i] != yv->dims[i])
            return 0;
    memset(st, 0, sizeof *st);
    st->op = strcmp(c->op_type, "Add") ? "Mul" : "Add";
    st->operand = b;
    return 1;
}

static int fuse_conv_integers(Graph *g, Diag *d)
{
    const OpDef *o = op_lookup("kdcc", "FusedConvInteger");
    for (int ip = 0; o && ip < g->nnodes; ip++) {
        Node *p = g->nodes[ip];
        if (p->dead || !in_domain(p, "") || strcmp(p->op_type, "ConvInteger") || live_outputs(p) != 1 ||
            p->noutputs != 1 || p->outputs[0] < 0)
            continue;
        int ic = sole_consumer(g, p->outputs[0]);
        if (ic <= ip)
            continue;
        Node *c = g->nodes[ic];
        if (c->dead || !in_domain(c, "") || strcmp(c->op_type, "Cast") || live_outputs(c) != 1 || c->noutputs != 1 ||
            c->outputs[0] < 0 || g->values[c->outputs[0]].dtype != DT_FLOAT)
            continue;
        if (grow_inputs(g, p, 4))
            return diag_error(d, p, "out of memory");
        p->op_type = "FusedConvInteger";
        p->domain = "kdcc";
        p->op = o;
        p->outputs[0] = c->outputs[0];
        c->dead = 1;
        Epilogue ep;
        memset(&ep, 0, sizeof ep);
        for (;;) {
            int y = p->outputs[0];
            EpiStep st;
            ic = sole_consumer(g, y);
            if (ic <= ip || ep.n >= EPI_MAX_STEPS)
                break;
            c = g->nodes[ic];
            if (c->dead || live_outputs(c) != 1 || c->noutputs < 1 || c->outputs[0] < 0)
                break;
            if (!ew_epilogue_step(g, c, y, &st) && !channel_step(g, c, y, &st))
                break;
            if (st.operand >= 0 && producer_slot(g, st.operand) >= ip)
                break;
            if (add_step(g, p, P_CHAIN, 4, &ep, &st))
                return diag_error(d, p, "out of memory");
            p->outputs[0] = c->outputs[0];
            c->dead = 1;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- transposes */

/* n's permutation into perm (default: reversed dims); its rank, or -1 */
static int transpose_perm(const Graph *g, const Node *n, int64_t *perm)
{
    const Value *x = node_in(g, n, 0);
    if (!x || x->rank < 0 || x->rank > KD_MAX_RANK)
        return -1;
    const int64_t *p;
    int k = attr_ints(n, "perm", &p);
    if (k >= 0 && k != x->rank)
        return -1;
    for (int i = 0; i < x->rank; i++) {
        perm[i] = k >= 0 ? p[i] : x->rank - 1 - i;
        if (perm[i] < 0 || perm[i] >= x->rank)
            return -1;
    }
    return x->rank;
}

static int is_op(const Node *n, const char *op)
{
    return !n->dead && in_domain(n, "") && !strcmp(n->op_type, op);
}

/* the Transpose node producing v when v has no other reader, or NULL */
static Node *lone_transpose(const Graph *g, int v)
{
    if (v < 0 || g->values[v].producer < 0 || sole_consumer(g, v) < 0)
        return NULL;
    Node *t = g->nodes[g->values[v].producer];
    return is_op(t, "Transpose") && live_outputs(t) == 1 && t->outputs[0] == v ? t : NULL;
}

static int fold_transposes(Graph *g, Diag *d)
{
    for (int i = 0; i < g->nnodes; i++) {
        Node *n = g->nodes[i];
        if (is_op(n, "Transpose")) {
            Node *t = lone_transpose(g, n->inputs[0]);
            int64_t p1[KD_MAX_RANK], p2[KD_MAX_RANK], c[KD_MAX_RANK];
            int r = t ? transpose_perm(g, t, p1) : -1;
            if (r < 0 || transpose_perm(g, n, p2) != r)
                continue;
            int ident = 1;
            for (int k = 0; k < r; k++) {
                c[k] = p1[p2[k]];
                ident &= c[k] == k;
            }
            n->inputs[0] = t->inputs[0];
            t->dead = 1;
            if (ident) {
                const OpDef *o = op_lookup("", "Identity");
                if (!o)
                    return diag_error(d, n, "internal error: no Identity");
                n->op_type = "Identity";
                n->op = o;
                n->nattrs = 0;
                n->attrs = NULL;
            } else {
                Attr *a = node_attr_own(g, n, "perm", AT_INTS);
                int64_t *pv = arena_array(g->arena, (size_t)r, sizeof(int64_t));
                if (!a || !pv)
                    return diag_error(d, n, "out of memory");
                memcpy(pv, c, (size_t)r * sizeof(int64_t));
                a->ints = pv;
                a->n = r;
            }
            continue;
        }
        int gemm = is_op(n, "Gemm");
        if (!gemm && !is_op(n, "MatMul"))
            continue;
        const Value *a = node_in(g, n, 0), *b = node_in(g, n, 1);
        if (!a || !b || a->rank != 2 || b->rank != 2)
            continue;
        for (int k = 0; k < 2; k++) {
            Node *t = lone_transpose(g, n->inputs[k]);
            int64_t p[KD_MAX_RANK];
            if (!t || transpose_perm(g, t, p) != 2 || p[0] != 1)
                continue;
            const char *name = k ? "transB" : "transA";
            int64_t was = gemm ? attr_int(n, name, 0) != 0 : 0;
            if (!gemm) {
                const OpDef *o = op_lookup("", "Gemm");
                if (!o)
                    return diag_error(d, n, "internal error: no Gemm");
                n->op_type = "Gemm";
                n->op = o;
                gemm = 1;
            }
            Attr *at = node_attr_own(g, n, name, AT_INT);
            if (!at)
                return diag_error(d, n, "out of memory");
            at->i = !was;
            n->inputs[k] = t->inputs[0];
            t->dead = 1;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- ConvTranspose as Conv */

/* Move the nodes from slot `first` to the end in front of slot `at`. */
static void move_tail(Graph *g, int first, int at)
{
    Node *tmp[8];
    int k = g->nnodes - first;
    memcpy(tmp, g->nodes + first, (size_t)k * sizeof(Node *));
    memmove(g->nodes + at + k, g->nodes + at, (size_t)(first - at) * sizeof(Node *));
    memcpy(g->nodes + at, tmp, (size_t)k * sizeof(Node *));
}

/* n's int list attribute `name` into v (count values, default def); 0, or -1 when
 * it has another length */
static int ints_or(const Node *n, const char *name, int count, int64_t def, int64_t *v)
{
    const int64_t *p;
    int k = attr_ints(n, name, &p);
    if (k >= 0 && k != count)
        return -1;
    for (int i = 0; i < count; i++)
        v[i] = k >= 0 ? p[i] : def;
    return 0;
}

/* Rewrite ConvTranspose node n (slot i) as a Conv if it is one; the number of nodes
 * put in front of it (0: unchanged), -1 on error. */
static int convtranspose_as_conv(Graph *g, int i, Diag *d)
{
    Node *n = g->nodes[i];
    const Value *x = node_in(g, n, 0), *w = node_in(g, n, 1), *y = live_outputs(n) == 1 ? node_out(g, n, 0) : NULL;
    if (!x || !w || !y || value_is_const(w) || (w->dtype != DT_FLOAT && w->dtype != DT_DOUBLE) ||
        x->dtype != w->dtype || y->dtype != w->dtype || w->rank < 3 || w->rank > 5 || x->rank != w->rank ||
        y->rank != w->rank || node_attr(n, "output_shape") ||
        strcmp(attr_string(n, "auto_pad", "NOTSET"), "NOTSET") != 0)
        return 0;
    /* only where the Conv takes its consumer as an epilogue: as a Conv the layer runs
     * on the Conv kernels, 5x faster on 16 channels of 28x28 and 3x on 32 of 7x7, but
     * 10% slower on 16 -> 8 channels of 14x14 (batch 64, gcc -O3 -march=native) */
    EpiStep es;
    int ic = sole_consumer(g, n->outputs[0]);
    if (ic < 0 || !ew_epilogue_step(g, g->nodes[ic], n->outputs[0], &es))
        return 0;
    int nsp = w->rank - 2;
    int64_t st[3], dl[3], op[3], pads[6], ks[3], np[6];
    if (ints_or(n, "strides", nsp, 1, st) || ints_or(n, "dilations", nsp, 1, dl) ||
        ints_or(n, "output_padding", nsp, 0, op) || ints_or(n, "pads", 2 * nsp, 0, pads) ||
        ints_or(n, "kernel_shape", nsp, 0, ks))
        return 0;
    int64_t G = attr_int(n, "group", 1), M = w->dims[0], Cg = w->dims[1];
    if (G < 1 || M % G || x->dims[1] != M || y->dims[1] != G * Cg)
        return 0;
    for (int k = 0; k < nsp; k++) {
        int64_t span = dl[k] * (w->dims[2 + k] - 1);
        np[k] = span - pads[k];
        np[nsp + k] = span - pads[nsp + k];
        if (st[k] != 1 || op[k] != 0 || (ks[k] && ks[k] != w->dims[2 + k]) || np[k] < 0 || np[nsp + k] < 0 ||
            x->dims[2 + k] + np[k] + np[nsp + k] - span != y->dims[2 + k])
            return 0;
    }
    /* W [M, Cg, k...] -> W' [G Cg, Mg, k...]: per group, the channel dims swapped
     * (a Reshape alone when one of them is 1), then every tap flipped */
    GradCtx c = {.g = g, .n = n, .d = d};
    int first = g->nnodes, wv = n->inputs[1], Mg = (int)(M / G);
    int64_t dims[8], perm[8];
    if (Mg > 1 && Cg > 1) {
        int r = 0;
        if (G > 1) {
            dims[0] = G, dims[1] = Mg, dims[2] = Cg;
            for (int k = 0; k < nsp; k++)
                dims[3 + k] = w->dims[2 + k];
            wv = g_op2(&c, "Reshape", wv, g_const_ints(&c, dims, 3 + nsp));
            r = 1;
        }
        for (int k = 0; k < 2 + r + nsp; k++)
            perm[k] = k;
        perm[r] = r + 1;
        perm[r + 1] = r;
        Node *t = wv < 0 ? NULL : g_new(&c, "Transpose", &wv, 1, 1);
        if (!t)
            return -1;
        g_attr_ints(&c, t, "perm", perm, 2 + r + nsp);
        wv = g_done(&c, t);
    }
    if (wv >= 0 && (G > 1 || Mg == 1 || Cg == 1) && !(G == 1 && Mg == 1 && Cg == 1)) {
        dims[0] = G * Cg, dims[1] = Mg;
        for (int k = 0; k < nsp; k++)
            dims[2 + k] = g->values[n->inputs[1]].dims[2 + k];
        wv = g_op2(&c, "Reshape", wv, g_const_ints(&c, dims, 2 + nsp));
    }
    int64_t starts[3], ends[3], axes[3], steps[3];
    for (int k = 0; k < nsp; k++) {
        starts[k] = -1;
        ends[k] = INT64_MIN;
        axes[k] = 2 + k;
        steps[k] = -1;
    }
    int sl[5] = {wv, g_const_ints(&c, starts, nsp), g_const_ints(&c, ends, nsp), g_const_ints(&c, axes, nsp),
                 g_const_ints(&c, steps, nsp)};
    wv = wv < 0 || sl[1] < 0 || sl[2] < 0 || sl[3] < 0 || sl[4] < 0 ? -1 : g_done(&c, g_new(&c, "Slice", sl, 5, 1));
    if (wv < 0)
        return -1;
    const OpDef *o = op_lookup("", "Conv");
    if (!o)
        return diag_error(d, n, "internal error: no Conv");
    int64_t kdims[3];
    for (int k = 0; k < nsp; k++)
        kdims[k] = g->values[wv].dims[2 + k];
    n->op_type = "Conv";
    n->op = o;
    n->inputs[1] = wv;
    n->attrs = NULL;
    n->nattrs = 0;
    for (int k = 0; k < nsp; k++)
        st[k] = 1;
    g_attr_ints(&c, n, "strides", st, nsp);
    g_attr_ints(&c, n, "pads", np, 2 * nsp);
    g_attr_ints(&c, n, "dilations", dl, nsp);
    g_attr_ints(&c, n, "kernel_shape", kdims, nsp);
    g_attr_i(&c, n, "group", G);
    int added = g->nnodes - first;
    move_tail(g, first, i);
    if (o->infer(g, n, d))
        return -1;
    return added;
}

/* 6. A stride-1 ConvTranspose whose weight is computed at run time (a Conv's data
 *    gradient in a training graph: dX = ConvTranspose(dY, W)) and whose only reader
 *    is an epilogue step (the derivative of the activation before the Conv) is a
 *    Conv of dY with W's channel dims swapped and its taps flipped, pads
 *    d (k - 1) - p: as a Conv it takes that step as its epilogue. The weight's swap
 *    and flip are two small copies per step. */
static int convtransposes_as_convs(Graph *g, Diag *d)
{
    for (int i = 0; i < g->nnodes; i++) {
        if (!is_op(g->nodes[i], "ConvTranspose"))
            continue;
        int r = convtranspose_as_conv(g, i, d);
        if (r < 0)
            return -1;
        i += r;
    }
    return 0;
}

int pass_fuse(Graph *g, Diag *d)
{
    if (fold_bns(g, d))
        return -1;
    graph_compact(g);
    if (fold_transposes(g, d))
        return -1;
    graph_compact(g);
    if (convtransposes_as_convs(g, d))
        return -1;
    graph_compact(g);
    if (fuse_conv_integers(g, d))
        return -1;
    if (fuse_epilogues(g, d, 0) || fuse_epilogues(g, d, 1))
        return -1;
    graph_compact(g);
    return 0;
}

/* The layout pass: constant weights stored in the order the kernel that will read
 * them wants, once here at compile time, instead of rearranged on every call.
 *
 * Today one case: a pointwise (1x1, stride 1, unpadded, one group) float Conv or
 * kdcc.FusedConv with constant weights, which compiler/ops/conv_dw.c's pointwise
 * kernel serves. That kernel reads, per input channel, the weights of a block of
 * output channels as one run; from ONNX's [M][C] it had to pack them into its
 * scratch first, on every call. Here W becomes W^T, [C][Mp] with each row padded
 * with zeros to Mp (a whole number of vectors, so the channel-vector form's last
 * block reads no further than the row), and the node gets the attribute
 * weight_cm = M, which conv_geom reads (M from the attribute, C from W's first
 * dim). The original weights die and dead-code elimination drops them, so flash
 * grows only by the padding (none when M is a multiple of the vector). Training
 * graphs are untouched: only constant weights qualify, and the pass runs in the
 * inference pipeline.
 *
 * A Conv on a small map that compiler/ops/conv.c's channel-vector kernel takes
 * (conv_channel_vectors: vectors over the output channels, LeNet-5's 6->16 5x5
 * layer) stores W as [C][K0][K1][Mp], each row of M output channels padded with
 * zeros to Mp (whole vectors), with the attribute weight_kc = M: the order that
 * kernel packed the weights into on every call, in its scratch. Without padding
 * the kernel then needs no scratch at all, which lets it take layers whose budget
 * had no room for the packed copy (mnist-14x14-atmega's 2.4 KB arena).
 *
 * A Conv whose output is a tiny map of few channels from many input channels
 * (conv_channel_dots: a detector's 3x3 heads) stores W as [M][K0][K1][C] with the
 * attribute weight_hwc = 1, for compiler/ops/conv.c's channel-dot kernel, which
 * reads each output channel's kernel row as one run along the input channels. Only
 * when the kernel's scratch fits the node's budget: no other kernel reads that
 * order.
 *
 * Activations too (channels_last): between the layers of a depthwise-separable
 * stack, and from a pointwise layer to channel-dot heads, they are stored
 * channels-last (Value.channels_last), the order the kernels on both sides work in,
 * instead of transposed by the one and back by the others; a depthwise layer there
 * stores its weights [1][K0][K1][Cp] (weight_kc = C), a first layer the
 * channel-vector kernel writes channels-last has them stored as above, and a
 * pointwise layer of few output channels reading such a map has its [C][Mp] weights
 * stored again in pairs of input channels, [C / 2][Mq] (weight_pairs = 1,
 * conv_pointwise_pairs).
 * And a Gemm (or kdcc.FusedGemm) of one row, y[1][N] = a[1][K] B^T with a constant
 * transB weight [N][K] (PyTorch's Linear at batch 1): B becomes B^T, [K][N], and
 * transB 0. compiler/ops/gemm.c then runs it as a row of A times rows of B into a
 * block of whole vectors of y held in registers (one broadcast and a few loads per
 * multiply-add vector), where the transposed form needs one dot product per
 * output: two loads per multiply-add and a horizontal sum each. The weight is
 * replaced, not copied, so flash does not grow. Only when the weight fits in L2
 * (gemm_row_blocked): a larger one is read from L3 or memory, where the dot
 * products' row-by-row stream beats the blocks' column panels. */
#include "compiler/ops/ops.h"
#include "passes/passes.h"

#include <stdio.h>
#include <string.h>

/* Replace n's input 1 (a constant weight) by a new float constant "<its name>/<suffix>"
 * of the given shape, and give n copies of its input list and of its attributes with
 * `extra` free slots after them (n->nattrs unchanged). The new data, for the caller
 * to fill (having taken the old weight's data pointer before), or NULL after an
 * error in d. */
static float *new_weight(Graph *g, Node *n, const char *suffix, int rank, const int64_t *dims, int extra, Diag *d)
{
    const Value *w = node_in(g, n, 1);
    char nm[512];
    snprintf(nm, sizeof nm, "%s/%s", w->name ? w->name : "W", suffix);
    int id = graph_new_value(g, nm);
    float *t = id < 0 ? NULL : value_make_const(g, &g->values[id], DT_FLOAT, rank, dims);
    Attr *attrs = arena_array(g->arena, (size_t)n->nattrs + (size_t)extra, sizeof(Attr));
    int *ins = arena_array(g->arena, (size_t)n->ninputs, sizeof(int));
    if (!t || !attrs || !ins) {
        diag_error(d, n, "out of memory");
        return NULL;
    }
    if (n->nattrs) /* a node without attributes may have no array at all */
        memcpy(attrs, n->attrs, (size_t)n->nattrs * sizeof(Attr));
    memcpy(ins, n->inputs, (size_t)n->ninputs * sizeof(int));
    ins[1] = id;
    n->inputs = ins;
    n->attrs = attrs;
    return t;
}

/* new_weight for a pointwise W of n's rank: [rows][cols][1...] */
static float *new_pointwise_weight(Graph *g, Node *n, const char *suffix, int64_t rows, int64_t cols, Diag *d)
{
    int rank = node_in(g, n, 1)->rank;
    int64_t dims[KD_MAX_RANK] = {rows, cols};
    for (int i = 2; i < rank; i++)
        dims[i] = 1;
    return new_weight(g, n, suffix, rank, dims, 1, d);
}

static int to_cm(Graph *g, Node *n, int64_t mp, Diag *d)
{
    const Value *w = node_in(g, n, 1);
    int64_t M = w->dims[0], C = w->dims[1];
    const float *src = (const float *)w->data;
    float *t = new_pointwise_weight(g, n, "cm", C, mp, d);
    if (!t)
        return -1;
    for (int64_t c = 0; c < C; c++)
        for (int64_t m = 0; m < mp; m++)
            t[c * mp + m] = m < M ? src[m * C + c] : 0.0f;
    n->attrs[n->nattrs++] = (Attr){.name = "weight_cm", .type = AT_INT, .i = M};
    return 0;
}

/* W[M][C][K0][K1] -> [C][K0][K1][mp], weight_kc = M: the channel-vector kernel's order */
static int to_kc(Graph *g, Node *n, int64_t mp, Diag *d)
{
    const Value *w = node_in(g, n, 1);
    int64_t M = w->dims[0], C = w->dims[1], K = w->dims[2] * w->dims[3], dims[4] = {C, w->dims[2], w->dims[3], mp};
    const float *src = (const float *)w->data;
    float *t = new_weight(g, n, "kc", 4, dims, 1, d);
    if (!t)
        return -1;
    for (int64_t c = 0; c < C; c++)
        for (int64_t k = 0; k < K; k++)
            for (int64_t m = 0; m < mp; m++)
                t[(c * K + k) * mp + m] = m < M ? src[(m * C + c) * K + k] : 0.0f;
    n->attrs[n->nattrs++] = (Attr){.name = "weight_kc", .type = AT_INT, .i = M};
    return 0;
}

/* W stored [C][Mp] (weight_cm = M) -> [C / 2][mq], weight_pairs = 1: element [i][2m + s]
 * is W[m][2i + s], zeros past M (conv_pointwise_pairs) */
static int to_pairs(Graph *g, Node *n, int64_t mq, Diag *d)
{
    const Value *w = node_in(g, n, 1);
    int64_t C = w->dims[0], mp = w->dims[1], M = attr_int(n, "weight_cm", 0);
    const float *src = (const float *)w->data;
    float *t = new_pointwise_weight(g, n, "pairs", C / 2, mq, d);
    if (!t)
        return -1;
    for (int64_t i = 0; i < C / 2; i++)
        for (int64_t l = 0; l < mq; l++)
            t[i * mq + l] = l / 2 < M ? src[(2 * i + l % 2) * mp + l / 2] : 0.0f;
    n->attrs[n->nattrs++] = (Attr){.name = "weight_pairs", .type = AT_INT, .i = 1};
    return 0;
}

/* W[M][C][K0][K1] -> [M][K0][K1][C], weight_hwc = 1: the channel-dot kernel's order */
static int to_hwc(Graph *g, Node *n, Diag *d)
{
    const Value *w = node_in(g, n, 1);
    int64_t M = w->dims[0], C = w->dims[1], K0 = w->dims[2], K1 = w->dims[3], dims[4] = {M, K0, K1, C};
    const float *src = (const float *)w->data;
    float *t = new_weight(g, n, "hwc", 4, dims, 1, d);
    if (!t)
        return -1;
    for (int64_t m = 0; m < M; m++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t k = 0; k < K0 * K1; k++)
                t[(m * K0 * K1 + k) * C + c] = src[(m * C + c) * K0 * K1 + k];
    n->attrs[n->nattrs++] = (Attr){.name = "weight_hwc", .type = AT_INT, .i = 1};
    return 0;
}

static int uses_of(const Graph *g, int v)
{
    int k = 0;
    for (int i = 0; i < g->nnodes; i++)
        for (int j = 0; !g->nodes[i]->dead && j < g->nodes[i]->ninputs; j++)
            k += g->nodes[i]->inputs[j] == v;
    return k + g->values[v].is_output;
}

/* a one-row Gemm with a constant transB weight that only it reads */
static int gemv_transposable(const Graph *g, const Node *n)
{
    const Value *b = node_in(g, n, 1), *y = node_out(g, n, 0);
    return b && y && y->rank == 2 && y->dims[0] == 1 && b->rank == 2 && b->dtype == DT_FLOAT && value_is_const(b) &&
           attr_int(n, "transB", 0) && uses_of(g, n->inputs[1]) == 1 && gemm_row_blocked(g, b->dims[1], b->dims[0]);
}

static int to_kn(Graph *g, Node *n, Diag *d)
{
    const Value *b = node_in(g, n, 1);
    int64_t N = b->dims[0], K = b->dims[1], dims[2] = {K, N};
    const float *src = (const float *)b->data;
    float *t = new_weight(g, n, "kn", 2, dims, 0, d);
    if (!t)
        return -1;
    for (int64_t k = 0; k < K; k++)
        for (int64_t j = 0; j < N; j++)
            t[k * N + j] = src[j * K + k];
    for (int i = 0; i < n->nattrs; i++)   /* n's own copy */
        if (!strcmp(n->attrs[i].name, "transB"))
            n->attrs[i].i = 0;
    return 0;
}

static int is_conv(const Node *n)
{
    const char *dom = n->domain ? n->domain : "";
    return n->op_type &&
           ((!strcmp(dom, "") && !strcmp(n->op_type, "Conv")) || (!strcmp(dom, "kdcc") && !strcmp(n->op_type, "FusedConv")));
}

/* Activations stored channels-last (Value.channels_last), where the kernels on both
 * sides work in that order:
 *  - a stack of depthwise-separable layers (DS-CNN, MobileNet): the depthwise kernel
 *    for channels-last activations (conv_depthwise_channels_last: vectors over the
 *    channels, every tap an aligned load, no masks where a map's rows are shorter
 *    than a vector) between pointwise layers in their channel-vector form
 *    (conv_pointwise_channel_form: vectors over the output channels, the input
 *    broadcast from either order, the output stored as runs), and a global pool at
 *    the end;
 *  - a pointwise layer whose kernel writes the channel-vector form anyway and whose
 *    readers are channel-dot layers (each of which copied its input channels-last
 *    first, a transposing copy): a detector's last feature map and its heads,
 *    UltraFace's 64->256 layer on 4 x 5 and its 256->6 and 256->12 3x3 heads;
 *  - the output of such a stack's layer that a Transpose reads: a detector's head,
 *    Conv then Transpose to [N][H][W][C] (SSD, UltraFace). The Transpose reads either
 *    order by strides (plan_transpose), and to [N][H][W][C] from channels-last it is a
 *    view that moves no data (node_may_view); the Conv's store is then one run per
 *    pixel instead of one element per output plane. In UltraFace slim, 8 heads.
 * Candidates are a depthwise layer's input and output, a pointwise layer's output
 * when its input is one, and the old case; then each candidate is dropped until none
 * is left whose writer or a reader cannot take the order: not a graph input or
 * output (callers read NCHW), no views (only these readers, each as its input 0),
 * a depthwise layer's input and output both or neither. */
enum { LK_NONE, LK_PW, LK_DW, LK_CHANDOT, LK_POOL, LK_CV, LK_TRANSPOSE };

static int layer_kind(const Graph *g, const Node *n)
{
    const char *dom = n->domain ? n->domain : "";
    int64_t mp;
    if (n->dead || !n->op_type)
        return LK_NONE;
    if (!strcmp(dom, "") && (!strcmp(n->op_type, "GlobalAveragePool") || !strcmp(n->op_type, "GlobalMaxPool")))
        return LK_POOL;
    if (!strcmp(dom, "") && !strcmp(n->op_type, "Transpose"))   /* reads either order (plan_transpose) */
        return LK_TRANSPOSE;
    if (!is_conv(n) || n->noutputs < 1 || n->outputs[0] < 0)
        return LK_NONE;
    if (attr_int(n, "weight_hwc", 0) == 1)
        return LK_CHANDOT;
    if (conv_pointwise_channel_form(g, n))
        return LK_PW;
    if (conv_depthwise_channels_last(g, n, &mp))   /* (weights stored for it already: a graph kdcc exported) */
        return LK_DW;
    if (conv_channel_vectors_cl(g, n, pass_scratch_budget(g, n), &mp))
        return LK_CV;
    return LK_NONE;
}

/* the old case: the pointwise kernel writes the channel-vector form whatever --tune chooses */
static int pw_forced(const Graph *g, const Node *n)
{
    return is_conv(n) && conv_pointwise_channels_last(g, n);
}

/* 1 if value v may stay a candidate (see above) */
static int cl_keep(const Graph *g, const unsigned char *kind, const unsigned char *cl, int v)
{
    const Value *x = &g->values[v];
    if (x->is_output || x->rank != 4 || x->dtype != DT_FLOAT || x->role == VR_INPUT || value_is_const(x))
        return 0;
    int writer = 0;
    for (int i = 0; i < g->nnodes; i++) {
        const Node *m = g->nodes[i];
        int uses = 0;
        for (int j = 0; !m->dead && j < m->ninputs; j++)
            uses += m->inputs[j] == v;
        if (!m->dead && m->noutputs > 0 && m->outputs[0] == v) {
            if (kind[i] != LK_PW && kind[i] != LK_CV && !(kind[i] == LK_DW && cl[m->inputs[0]]))
                return 0;
            writer = 1;
        }
        if (!uses)
            continue;
        if (uses != 1 || m->inputs[0] != v || kind[i] == LK_NONE || kind[i] == LK_CV ||
            (kind[i] == LK_DW && !cl[m->outputs[0]]))
            return 0;
    }
    return writer;
}

static int channels_last(Graph *g, Diag *d)
{
    unsigned char *kind = arena_array(g->arena, (size_t)g->nnodes + 1, 1);
    unsigned char *cl = arena_array(g->arena, (size_t)g->nvalues + 1, 1);
    if (!kind || !cl)
        return diag_error(d, NULL, "out of memory");
    memset(cl, 0, (size_t)g->nvalues + 1);
    for (int i = 0; i < g->nnodes; i++) {
        Node *n = g->nodes[i];
        kind[i] = (unsigned char)layer_kind(g, n);
        if (kind[i] == LK_DW && uses_of(g, n->inputs[1]) != 1)
            kind[i] = LK_NONE;   /* its weights are about to be stored for it alone */
        if (kind[i] == LK_DW)
            cl[n->inputs[0]] = cl[n->outputs[0]] = 1;
    }
    for (int i = 0; i < g->nnodes; i++) {   /* the old case's values, whose readers are all channel-dot layers */
        const Node *n = g->nodes[i];
        if (n->dead || !pw_forced(g, n))
            continue;
        int readers = 0, others = 0;
        for (int k = 0; k < g->nnodes; k++)
            for (int j = 0; !g->nodes[k]->dead && j < g->nodes[k]->ninputs; j++)
                if (g->nodes[k]->inputs[j] == n->outputs[0])
                    *(kind[k] == LK_CHANDOT ? &readers : &others) += 1;
        if (readers && !others)
            cl[n->outputs[0]] = 1, kind[i] = LK_PW;
    }
    /* drop what cannot stay; then a pointwise layer reading a candidate writes one, and again */
    for (int round = 0; round < 2; round++) {
        for (int changed = round; changed;) {
            changed = 0;
            for (int i = 0; i < g->nnodes; i++) {
                const Node *n = g->nodes[i];
                if (kind[i] == LK_PW && cl[n->inputs[0]] && !cl[n->outputs[0]])
                    cl[n->outputs[0]] = 1, changed = 1;
            }
        }
        for (int changed = 1; changed;) {
            changed = 0;
            for (int v = 0; v < g->nvalues; v++)
                if (cl[v] && !cl_keep(g, kind, cl, v))
                    cl[v] = 0, changed = 1;
        }
    }
    for (int v = 0; v < g->nvalues; v++)
        g->values[v].channels_last = cl[v];
    for (int i = 0; i < g->nnodes; i++) {   /* the weights: depthwise [1][K0][K1][Cp], channel vectors [C][K0][K1][Mp], pairs */
        Node *n = g->nodes[i];
        int64_t mp;
        if (kind[i] == LK_DW && cl[n->outputs[0]] && !attr_int(n, "weight_kc", 0) &&
            conv_depthwise_channels_last(g, n, &mp) && to_kc(g, n, mp, d))
            return -1;
        if (kind[i] == LK_CV && cl[n->outputs[0]] && !attr_int(n, "weight_kc", 0) &&
            conv_channel_vectors_cl(g, n, pass_scratch_budget(g, n), &mp) && to_kc(g, n, mp, d))
            return -1;
        /* a pointwise layer of few output channels reading channels-last: its weights in pairs */
        if (kind[i] == LK_PW && cl[n->inputs[0]] && uses_of(g, n->inputs[1]) == 1 && conv_pointwise_pairs(g, n, &mp) &&
            to_pairs(g, n, mp, d))
            return -1;
    }
    return 0;
}

int pass_layout(Graph *g, Diag *d)
{
    for (int i = 0; i < g->nnodes; i++) {
        Node *n = g->nodes[i];
        int64_t mp;
        if (n->dead || !n->op_type)
            continue;
        const char *dom = n->domain ? n->domain : "";
        int gemm = (!strcmp(dom, "") && !strcmp(n->op_type, "Gemm")) || (!strcmp(dom, "kdcc") && !strcmp(n->op_type, "FusedGemm"));
        if (gemm && gemv_transposable(g, n) && to_kn(g, n, d))
            return -1;
        if (!is_conv(n))
            continue;
        if (conv_pointwise_cm(g, n, &mp) && to_cm(g, n, mp, d))
            return -1;
        if (conv_channel_dots(g, n, pass_scratch_budget(g, n)) && uses_of(g, n->inputs[1]) == 1 && to_hwc(g, n, d))
            return -1;
        if (conv_channel_vectors(g, n, pass_scratch_budget(g, n), &mp) && uses_of(g, n->inputs[1]) == 1 &&
            to_kc(g, n, mp, d))
            return -1;
    }
    /* then the activations between them: see channels_last */
    return channels_last(g, d);
}

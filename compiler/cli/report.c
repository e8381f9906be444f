/* What a compiled model costs, node by node: kdcc MODEL --report, and the MAC
 * counting and weight-byte count that kdcc info shares.
 *
 * Every figure comes from the planned graph (after folding, fusion, dead-code
 * elimination, views and memory planning) and the emitted C: the MACs from the
 * static shapes, the output bytes and arena offsets the planner chose, and the
 * lower bound from the planner's own lifetime model (passes/plan.c), so the
 * report says how far the plan is from the best any placement could do for
 * this node order. */
#include "compiler/cli/cli.h"
#include "compiler/ops/fused.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ MACs */

/* Multiply-accumulates of one node from its static shapes; 0 for operators that
 * do not multiply-accumulate (or whose count kdcc does not model). */
static int64_t einsum_macs(const Graph *g, const Node *n)
{
    const char *eq = attr_string(n, "equation", NULL);
    const Value *y = node_out(g, n, 0);
    if (!eq || !y)
        return 0;
    int64_t size[128];
    for (int i = 0; i < 128; i++)
        size[i] = -1;
    const char *arrow = strstr(eq, "->");
    const char *p = eq;
    for (int k = 0; k < n->ninputs && p && (!arrow || p < arrow); k++) {
        const Value *x = node_in(g, n, k);
        const char *end = strchr(p, ',');
        if (!end || (arrow && end > arrow))
            end = arrow ? arrow : p + strlen(p);
        if (!x || !value_shape_known(x))
            return 0;
        /* letters of this term; an ellipsis takes the dims the letters leave */
        char letters[KD_MAX_RANK + 8];
        int nl = 0, ell = -1;
        for (const char *q = p; q < end; q++) {
            if (*q == '.') {
                if (ell < 0)
                    ell = nl;
                continue;
            }
            if (*q == ' ')
                continue;
            if (nl < (int)sizeof letters)
                letters[nl++] = *q;
        }
        int extra = x->rank - nl;
        if (extra < 0 || (ell < 0 && extra != 0))
            return 0;
        for (int i = 0; i < nl; i++) {
            int dim = (ell >= 0 && i >= ell) ? i + extra : i;
            unsigned char c = (unsigned char)letters[i];
            if (c < 128 && (size[c] < 0 || size[c] == 1))
                size[c] = x->dims[dim];
        }
        p = *end == ',' ? end + 1 : NULL;
    }
    int64_t macs = value_numel(y);
    if (macs < 0)
        return 0;
    /* times the sizes of the contracted letters (those not in the output) */
    const char *out = arrow ? arrow + 2 : NULL;
    int seen[128] = {0};
    for (const char *q = eq; *q && (!arrow || q < arrow); q++) {
        unsigned char c = (unsigned char)*q;
        if (c >= 128 || !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) || seen[c] || size[c] < 0)
            continue;
        seen[c] = 1;
        int in_out;
        if (out)
            in_out = strchr(out, c) != NULL;
        else { /* implicit output: the letters that appear once */
            int cnt = 0;
            for (const char *r = eq; *r; r++)
                cnt += *r == (char)c;
            in_out = cnt == 1;
        }
        if (!in_out)
            macs *= size[c];
    }
    return macs;
}

static int64_t prod_from(const Value *v, int from)
{
    int64_t p = 1;
    for (int i = from; i < v->rank; i++)
        p *= v->dims[i];
    return p;
}

int op_counts_macs(const char *op)
{
    static const char *const ops[] = {"Conv", "ConvInteger", "QLinearConv", "ConvTranspose", "Gemm",
                                      "MatMul", "MatMulInteger", "QLinearMatMul", "Einsum", NULL};
    for (int i = 0; ops[i]; i++)
        if (strcmp(op, ops[i]) == 0)
            return 1;
    return 0;
}

int64_t node_macs(const Graph *g, const Node *n)
{
    const char *op = n->op_type;
    if (n->domain && n->domain[0] && strcmp(n->domain, "ai.onnx") != 0 && !(op = fused_base_op(n)))
        return 0; /* a kdcc fused node counts as the operator it fuses into */
    const Value *y = node_out(g, n, 0);
    if (!y || !value_shape_known(y))
        return 0;
    int64_t ny = value_numel(y);
    if (strcmp(op, "Einsum") == 0)
        return einsum_macs(g, n);
    int qlinear = strncmp(op, "QLinear", 7) == 0;
    const Value *a = node_in(g, n, 0);
    const Value *b = node_in(g, n, qlinear ? 3 : 1);
    if (!a || !b || !value_shape_known(a) || !value_shape_known(b))
        return 0;
    if (strcmp(n->op_type, "WinogradConv") == 0 && b->rank == 3) {
        const int64_t *pk; /* a fused MaxPool (attribute pool): the Conv's outputs are pk[0] * pk[1] per pooled one */
        if (attr_ints(n, "pool", &pk) == 2)
            ny *= pk[0] * pk[1];
        return ny * b->dims[2] * 9; /* U: [16, M, C]; the MACs of the 3x3 Conv it computes */
    }
    if (strcmp(op, "Conv") == 0 && attr_int(n, "weight_cm", 0) > 0)
        return ny * b->dims[0] * (attr_int(n, "weight_pairs", 0) == 1 ? 2 : 1); /* W stored by passes/layout.c: [C, Mp, 1...] or [C / 2, Mq, 1...] */
    if (strcmp(op, "Conv") == 0 && attr_int(n, "weight_kc", 0) > 0)
        return ny * prod_from(b, 0) / b->dims[b->rank - 1]; /* [C, k..., Mp] */
    if (strcmp(op, "Conv") == 0 || strcmp(op, "ConvInteger") == 0 || strcmp(op, "QLinearConv") == 0)
        return ny * prod_from(b, 1); /* W: [M, C/group, k...], or [M, k..., C] (weight_hwc) */
    if (strcmp(op, "ConvTranspose") == 0)
        return value_numel(a) * prod_from(b, 1); /* W: [C, M/group, k...] */
    if (strcmp(op, "Gemm") == 0) {
        if (a->rank != 2)
            return 0;
        return ny * a->dims[attr_int(n, "transA", 0) ? 0 : 1];
    }
    if (strcmp(op, "MatMul") == 0 || strcmp(op, "MatMulInteger") == 0 || strcmp(op, "QLinearMatMul") == 0) {
        if (a->rank < 1)
            return 0;
        return ny * a->dims[a->rank - 1];
    }
    return 0;
}

/* ------------------------------------------------------------------ the emitted file */

int64_t emitted_weight_bytes(const char *c, int *count)
{
    static const struct {
        const char *ct;
        int size;
    } types[] = {{"float", 4},   {"double", 8},  {"int8_t", 1},  {"uint8_t", 1}, {"int16_t", 2},
                 {"uint16_t", 2}, {"int32_t", 4}, {"uint32_t", 4}, {"int64_t", 8}, {"uint64_t", 8},
                 {"bool", 1}};
    int64_t total = 0;
    *count = 0;
    for (const char *p = c; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, "static const ", 13) != 0)
            continue;
        const char *q = p + 13;
        int size = 0;
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
            size_t l = strlen(types[i].ct);
            if (strncmp(q, types[i].ct, l) == 0 && q[l] == ' ') {
                size = types[i].size;
                q += l + 1;
                break;
            }
        }
        const char *br = strchr(q, '[');
        const char *nl = strchr(q, '\n');
        if (!size || !br || (nl && br > nl) || !strstr(br, "] KD_ALIGN"))
            continue;
        total += (int64_t)size * strtoll(br + 1, NULL, 10);
        (*count)++;
    }
    return total;
}

/* Lines of the emitted C outside the weight arrays (those run from their
 * `static const T name[N] KD_ALIGN = {` line to the `};` that ends them). */
static int64_t emitted_code_lines(const char *c)
{
    int64_t lines = 0;
    int in_weights = 0;
    for (const char *p = c; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (!in_weights && strncmp(p, "static const ", 13) == 0) {
            const char *k = strstr(p, "] KD_ALIGN = {");
            if (k && k < p + len) {
                in_weights = 1;
                const char *close = strstr(p, "};");
                if (close && close < p + len)
                    in_weights = 0; /* all on one line */
                continue;
            }
        }
        if (in_weights) {
            if (len >= 2 && strncmp(p, "};", 2) == 0)
                in_weights = 0;
            continue;
        }
        lines++;
    }
    return lines;
}

const char *human_count(char *buf, size_t n, int64_t v, int bytes)
{
    static const char *const si[] = {"", " k", " M", " G", " T"};
    static const char *const bin[] = {"", " KiB", " MiB", " GiB", " TiB"};
    double x = (double)v;
    int k = 0;
    double base = bytes ? 1024.0 : 1000.0;
    while (x >= base && k < 4) {
        x /= base;
        k++;
    }
    if (k == 0)
        snprintf(buf, n, "%" PRId64 "%s", v, bytes ? " bytes" : "");
    else
        snprintf(buf, n, "%" PRId64 "%s (%.*f%s)", v, bytes ? " bytes" : "", x < 10 ? 2 : x < 100 ? 1 : 0, x,
                 bytes ? bin[k] : si[k]);
    return buf;
}

/* ------------------------------------------------------------------ the report */

/* Where value v lives: an arena offset, a view, an input's bytes written over in
 * place, the caller's buffer, state. */
static const char *placement(const Graph *g, int v, char *buf, size_t n)
{
    const Value *val = &g->values[v];
    if (val->is_output)
        snprintf(buf, n, "output");
    else if (val->alias_of >= 0) {
        const Value *a = &g->values[val->alias_of];
        if (a->role == VR_STATE || plan_inplace_of(g, v) >= 0)
            snprintf(buf, n, "in place of %s", a->name);
        else
            snprintf(buf, n, "view of %s", a->name);
    } else if (val->role == VR_STATE)
        snprintf(buf, n, "state @%" PRId64, val->state_offset);
    else if (val->role == VR_CONST)
        snprintf(buf, n, "const");
    else if (val->role == VR_INPUT)
        snprintf(buf, n, "input");
    else if (val->offset >= 0)
        snprintf(buf, n, "%" PRId64, val->offset);
    else
        snprintf(buf, n, "-");
    return buf;
}

/* The node's display name: its own, or "#i" when it has none. */
static const char *node_label(const Node *n, int i, char *buf, size_t sz)
{
    if (n->name && n->name[0])
        return n->name;
    snprintf(buf, sz, "#%d", i);
    return buf;
}

static const char *op_label(const Node *n, char *buf, size_t sz)
{
    if (n->domain && n->domain[0] && strcmp(n->domain, "ai.onnx") != 0)
        snprintf(buf, sz, "%s.%s", n->domain, n->op_type);
    else
        snprintf(buf, sz, "%s", n->op_type);
    return buf;
}

static int maxi(int a, int b)
{
    return a > b ? a : b;
}

int report_write(const Graph *g, const char *csrc, Writer *w)
{
    int nv = g->nvalues;
    int *start = malloc(((size_t)nv + 1) * sizeof(int));
    int *end = malloc(((size_t)nv + 1) * sizeof(int));
    if (!start || !end) {
        free(start);
        free(end);
        return -1;
    }
    plan_lifetimes(g, start, end);
    PlanBound pb;
    if (plan_lower_bound(g, &pb) < 0) {
        free(start);
        free(end);
        return -1;
    }

    /* column widths */
    int wname = 4, wop = 8, wout = 6, wmac = 4, wb = 5, wpl = 5;
    char b1[512], b2[512], b3[512];
    for (int i = 0; i < g->nnodes; i++) {
        const Node *n = g->nodes[i];
        if (n->dead)
            continue;
        wname = maxi(wname, (int)strlen(node_label(n, i, b1, sizeof b1)));
        wop = maxi(wop, (int)strlen(op_label(n, b1, sizeof b1)));
        wmac = maxi(wmac, snprintf(b1, sizeof b1, "%" PRId64, node_macs(g, n)));
        for (int j = 0; j < n->noutputs; j++) {
            const Value *y = node_out(g, n, j);
            if (!y)
                continue;
            wout = maxi(wout, snprintf(b1, sizeof b1, "%s %s", y->name, value_type_str(y, b2, sizeof b2)));
            wb = maxi(wb, snprintf(b1, sizeof b1, "%zu", value_bytes(y)));
            wpl = maxi(wpl, (int)strlen(placement(g, n->outputs[j], b1, sizeof b1)));
        }
    }
    if (wout > 60)
        wout = 60;
    if (wpl > 40)
        wpl = 40;
    int widx = snprintf(b1, sizeof b1, "%d", g->nnodes);
    w_printf(w, "%*s  %-*s  %-*s  %-*s  %*s  %*s  %-*s  %s\n", widx, "#", wname, "node", wop, "operator", wout,
             "output", wmac, "MACs", wb, "bytes", wpl, "arena", "live");

    int64_t macs = 0;
    int live_nodes = 0;
    for (int i = 0; i < g->nnodes; i++) {
        const Node *n = g->nodes[i];
        if (n->dead)
            continue;
        live_nodes++;
        int64_t m = node_macs(g, n);
        macs += m;
        char mb[32];
        if (op_counts_macs(fused_base_op(n) ? fused_base_op(n) : n->op_type))
            snprintf(mb, sizeof mb, "%" PRId64, m);
        else
            snprintf(mb, sizeof mb, "-");
        int first = 1;
        for (int j = 0; j < n->noutputs || first; j++) {
            const Value *y = j < n->noutputs ? node_out(g, n, j) : NULL;
            if (!y && j < n->noutputs)
                continue;
            char outs[600] = "-", bytes[32] = "-", pl[600] = "-", live[64] = "";
            if (y) {
                snprintf(outs, sizeof outs, "%s %s", y->name, value_type_str(y, b2, sizeof b2));
                snprintf(bytes, sizeof bytes, "%zu", value_bytes(y));
                placement(g, n->outputs[j], pl, sizeof pl);
                int v = n->outputs[j];
                if (plan_in_arena(g, v, start))
                    snprintf(live, sizeof live, "%d..%d", start[v], end[v] < start[v] ? start[v] : end[v]);
            }
            if (first)
                w_printf(w, "%*d  %-*s  %-*s  %-*s  %*s  %*s  %-*s  %s\n", widx, i, wname, node_label(n, i, b1, sizeof b1),
                         wop, op_label(n, b3, sizeof b3), wout, outs, wmac, mb, wb, bytes, wpl, pl, live);
            else
                w_printf(w, "%*s  %-*s  %-*s  %-*s  %*s  %*s  %-*s  %s\n", widx, "", wname, "", wop, "", wout, outs, wmac,
                         "", wb, bytes, wpl, pl, live);
            first = 0;
        }
    }

    /* the peak: which values are live where the lower bound is reached */
    if (pb.peak_node >= 0) {
        const Node *pn = g->nodes[pb.peak_node];
        w_printf(w, "\npeak at node %d (%s): ", pb.peak_node, node_label(pn, pb.peak_node, b1, sizeof b1));
        int k = 0;
        for (int v = 0; v < nv; v++) {
            if (!plan_in_arena(g, v, start))
                continue;
            int e = end[v] < start[v] ? start[v] : end[v];
            if (start[v] <= pb.peak_node && pb.peak_node <= e)
                w_printf(w, "%s%s %zu", k++ ? " + " : "", g->values[v].name, value_bytes(&g->values[v]));
        }
        w_printf(w, " = %" PRId64 " bytes\n", pb.bound);
    }

    /* totals */
    int nweights = 0;
    int64_t weights = csrc ? emitted_weight_bytes(csrc, &nweights) : 0;
    int64_t lines = csrc ? emitted_code_lines(csrc) : 0;
    int64_t code = lines * REPORT_CODE_BYTES_PER_LINE;
    int64_t arena = plan_arena_bytes(g);
    int64_t in_bytes = 0, out_bytes = 0, state = 0;
    for (int i = 0; i < g->ninputs; i++) {
        const Value *v = &g->values[g->inputs[i]];
        if (v->role == VR_INPUT)
            in_bytes += (int64_t)value_bytes(v);
    }
    for (int i = 0; i < g->noutputs; i++)
        out_bytes += (int64_t)value_bytes(&g->values[g->outputs[i]]);
    for (int v = 0; v < nv; v++) {
        const Value *val = &g->values[v];
        if (val->role == VR_STATE && val->state_offset + (int64_t)value_bytes(val) > state)
            state = val->state_offset + (int64_t)value_bytes(val);
    }
    char h[64];
    w_printf(w, "\ntotals\n");
    w_printf(w, "  nodes          %d (after constant folding, fusion and dead-code elimination)\n", live_nodes);
    w_printf(w, "  MACs           %s\n", human_count(h, sizeof h, macs, 0));
    w_printf(w, "  weights        %s (%d const array%s)\n", human_count(h, sizeof h, weights, 1), nweights,
             nweights == 1 ? "" : "s");
    w_printf(w, "  code           ~%s (estimate: %" PRId64 " lines of emitted C outside the weights x %d bytes;\n"
                "                 measure the real size with size(1) on the object file)\n",
             human_count(h, sizeof h, code, 1), lines, REPORT_CODE_BYTES_PER_LINE);
    w_printf(w, "  flash          ~%s (weights + code estimate)\n", human_count(h, sizeof h, weights + code, 1));
    w_printf(w, "  arena          %s (NAME_WORKSPACE_BYTES; each buffer starts at a multiple of 16 bytes)\n", human_count(h, sizeof h, arena, 1));
    w_printf(w, "  lower bound    %s (most bytes of intermediates live at one node; views and in-place outputs free)\n",
             human_count(h, sizeof h, pb.bound, 1));
    if (pb.bound > 0)
        w_printf(w, "  arena / bound  %.3f\n", (double)arena / (double)pb.bound);
    else
        w_printf(w, "  arena / bound  -\n");
    w_printf(w, "  no reuse       %s (%d intermediates, each in its own buffer)\n", human_count(h, sizeof h, pb.sum, 1),
             pb.count);
    int ninplace = 0;
    int64_t inplace = 0;
    for (int v = 0; v < nv; v++)
        if (plan_inplace_of(g, v) >= 0) {
            ninplace++;
            inplace += (int64_t)value_bytes(&g->values[v]);
        }
    PlanBound sep;
    if (plan_lower_bound_separate(g, &sep) < 0) {
        free(start);
        free(end);
        return -1;
    }
    w_printf(w, "  in place       %s (%d output%s sharing the bytes of an input that dies at %s node)\n",
             human_count(h, sizeof h, inplace, 1), ninplace, ninplace == 1 ? "" : "s", ninplace == 1 ? "its" : "their");
    w_printf(w, "  no in place    %s (the lower bound with each in-place output in a buffer of its own)\n",
             human_count(h, sizeof h, sep.bound, 1));
    w_printf(w, "  inputs         %s, outputs %s (the caller's buffers, not in the arena)\n",
             human_count(h, sizeof h, in_bytes, 1), human_count(b1, sizeof b1, out_bytes, 1));
    if (state > 0)
        w_printf(w, "  state          %s (NAME_STATE_BYTES)\n", human_count(h, sizeof h, state, 1));
    free(start);
    free(end);
    return w->oom ? -1 : 0;
}

/* ------------------------------------------------------------------ training steps */

static int is_update(const Node *n)
{
    return n->domain && strcmp(n->domain, "kdcc") == 0 &&
           (strcmp(n->op_type, "SGDUpdate") == 0 || strcmp(n->op_type, "AdamUpdate") == 0);
}

static int is_loss(const Node *n)
{
    return n->domain && strcmp(n->domain, "kdcc") == 0 && strcmp(n->op_type, "DistillLoss") == 0;
}

/* The tensor whose bytes v is: itself, or what it is a view of. An output written
 * over its input in place is a tensor of its own (it has its own class). */
static int tensor_of(const Graph *g, int v)
{
    for (int hops = 0; v >= 0 && g->values[v].alias_of >= 0 && plan_inplace_of(g, v) < 0 && hops < g->nvalues; hops++)
        v = g->values[v].alias_of;
    return v;
}

int training_classes(const Graph *g, TrainBytes *tb)
{
    memset(tb, 0, sizeof *tb);
    int nv = g->nvalues;
    int *start = malloc(((size_t)nv + 1) * sizeof(int));
    int *end = malloc(((size_t)nv + 1) * sizeof(int));
    unsigned char *cls = calloc((size_t)nv + 1, 1); /* 1 gradient, 2 optimizer state */
    if (!start || !end || !cls) {
        free(start);
        free(end);
        free(cls);
        return -1;
    }
    plan_value_lifetimes(g, start, end); /* in-place outputs and what they overwrite: each its own lifetime */
    int loss_node = -1;
    for (int i = 0; i < g->nnodes; i++) {
        const Node *n = g->nodes[i];
        if (n->dead)
            continue;
        if (is_loss(n) && loss_node < 0)
            loss_node = i;
        if (!is_update(n))
            continue;
        /* inputs: the parameter, its gradient, then (Adam: m, v; SGD: lr, [scale], velocity) */
        int gv = n->ninputs > 1 ? tensor_of(g, n->inputs[1]) : -1;
        if (gv >= 0)
            cls[gv] = 1;
        for (int j = 2; j < n->ninputs; j++) {
            int v = n->inputs[j];
            if (v >= 0 && g->values[v].role == VR_STATE && !g->values[v].is_param)
                cls[v] = 2;
        }
    }
    tb->loss_node = loss_node;
    for (int v = 0; v < nv; v++) {
        const Value *val = &g->values[v];
        int64_t b = (int64_t)value_bytes(val);
        if (val->role == VR_STATE) {
            if (val->is_param)
                tb->weights += b, tb->nweights++;
            else if (cls[v] == 2)
                tb->optimizer += b, tb->noptimizer++;
            else
                tb->other_state += b, tb->nother_state++;
            continue;
        }
        if (val->role == VR_CONST && val->producer < 0) {
            /* constants read by live nodes: frozen teachers' weights, small constants */
            int used = end[v] >= 0;
            if (used)
                tb->frozen += b, tb->nfrozen++;
            continue;
        }
        if (!plan_in_arena(g, v, start) && plan_inplace_of(g, v) < 0)
            continue; /* in-place outputs count as tensors of their own: sums of sizes, not arena bytes */
        int e = end[v] < start[v] ? start[v] : end[v];
        if (cls[v] == 1)
            tb->gradients += b, tb->ngradients++;
        else if (loss_node >= 0 && start[v] <= loss_node && e > loss_node)
            tb->activations += b, tb->nactivations++;
        else
            tb->intermediates += b, tb->nintermediates++;
    }
    free(start);
    free(end);
    free(cls);
    return 0;
}

int report_training_write(const Graph *g, Writer *w)
{
    TrainBytes tb;
    PlanBound pb;
    if (training_classes(g, &tb) || plan_lower_bound(g, &pb) < 0)
        return -1;
    char h[64];
    w_printf(w, "training step: bytes by class (sums of tensor sizes)\n");
    w_printf(w, "  weights              %-28s %d trainable tensors (state)\n", human_count(h, sizeof h, tb.weights, 1),
             tb.nweights);
    w_printf(w, "  gradients            %-28s %d parameter gradients (arena)\n",
             human_count(h, sizeof h, tb.gradients, 1), tb.ngradients);
    w_printf(w, "  optimizer state      %-28s %d moment tensors (state)\n", human_count(h, sizeof h, tb.optimizer, 1),
             tb.noptimizer);
    if (tb.nother_state)
        w_printf(w, "  other state          %-28s %d tensors, e.g. running statistics (state)\n",
                 human_count(h, sizeof h, tb.other_state, 1), tb.nother_state);
    w_printf(w, "  activations          %-28s %d forward values kept for the backward pass (arena)\n",
             human_count(h, sizeof h, tb.activations, 1), tb.nactivations);
    w_printf(w, "  other intermediates  %-28s %d temporaries (arena)\n", human_count(h, sizeof h, tb.intermediates, 1),
             tb.nintermediates);
    if (tb.nfrozen)
        w_printf(w, "  constants            %-28s %d frozen tensors (teachers' weights, constants; flash)\n",
                 human_count(h, sizeof h, tb.frozen, 1), tb.nfrozen);
    w_printf(w, "  arena                %-28s the planned workspace (gradients, activations and temporaries\n"
                "                                                    share it where their lifetimes do not overlap)\n",
             human_count(h, sizeof h, plan_arena_bytes(g), 1));
    w_printf(w, "  lower bound          %s\n", human_count(h, sizeof h, pb.bound, 1));
    PlanBound sep;
    if (plan_lower_bound_separate(g, &sep) < 0)
        return -1;
    int ninplace = 0;
    int64_t inplace = 0;
    for (int v = 0; v < g->nvalues; v++)
        if (plan_inplace_of(g, v) >= 0) {
            ninplace++;
            inplace += (int64_t)value_bytes(&g->values[v]);
        }
    w_printf(w, "  in place             %-28s %d output%s sharing the bytes of an input that dies at %s node\n",
             human_count(h, sizeof h, inplace, 1), ninplace, ninplace == 1 ? "" : "s", ninplace == 1 ? "its" : "their");
    w_printf(w, "  no in place          %-28s the lower bound with each of them in a buffer of its own\n",
             human_count(h, sizeof h, sep.bound, 1));
    return w->oom ? -1 : 0;
}

int report_training_print(const Graph *g, FILE *f)
{
    Writer w;
    w_init(&w);
    int rc = report_training_write(g, &w);
    if (rc == 0)
        fputs(w.buf ? w.buf : "", f);
    w_free(&w);
    fflush(f);
    return rc;
}

/* Elementwise operators: unary math and activations, broadcasting binary
 * arithmetic, comparisons and logic. */
#include "compiler/ops/ops.h"

#include <math.h>
#include <string.h>

/* ---------------------------------------------------------------- unary */

static int infer_same(Graph *g, Node *n, Diag *d)
{
    Value *x = need_input(g, n, 0, d);
    if (!x)
        return -1;
    Value *y = node_out(g, n, 0);
    value_set_shape(y, x->dtype, x->rank, x->dims);
    return 0;
}

static int emit_relu(Emitter *e, const Node *n, Diag *d)
{
    const Value *x = node_in(e->g, n, 0);
    if (!dtype_is_float(x->dtype) && !dtype_is_signed(x->dtype))
        return err_dtype(d, n, "Relu", x->dtype);
    em_for(e->w, "i", value_numel(x));
    w_line(e->w, "y0[i] = x0[i] > 0 ? x0[i] : 0;");
    w_close(e->w);
    return 0;
}

static const OpDef op_relu = {
    .name = "Relu", .domain = "", .since = 1,
    .min_inputs = 1, .max_inputs = 1, .min_outputs = 1, .max_outputs = 1,
    .infer = infer_same, .emit = emit_relu,
    .summary = "max(x, 0)",
};

/* ---------------------------------------------------------------- binary */

static int infer_broadcast(Graph *g, Node *n, Diag *d)
{
    Value *a = need_input(g, n, 0, d), *b = a ? need_input(g, n, 1, d) : NULL;
    if (!b)
        return -1;
    if (a->dtype != b->dtype)
        return diag_error(d, n, "inputs have different element types (%s and %s)", dtype_name(a->dtype), dtype_name(b->dtype));
    int r;
    int64_t dims[KD_MAX_RANK];
    if (broadcast_shapes(a->rank, a->dims, b->rank, b->dims, &r, dims)) {
        char sa[128], sb[128];
        return diag_error(d, n, "shapes %s and %s do not broadcast", value_type_str(a, sa, sizeof sa), value_type_str(b, sb, sizeof sb));
    }
    value_set_shape(node_out(g, n, 0), a->dtype, r, dims);
    return 0;
}

static int emit_add(Emitter *e, const Node *n, Diag *d)
{
    const Value *ins[2] = {node_in(e->g, n, 0), node_in(e->g, n, 1)};
    if (ins[0]->dtype == DT_BOOL || !dtype_supported(ins[0]->dtype) || ins[0]->dtype == DT_FLOAT16 || ins[0]->dtype == DT_BFLOAT16)
        return err_dtype(d, n, "Add", ins[0]->dtype);
    int k = em_broadcast_loops(e->w, node_out(e->g, n, 0), ins, 2);
    w_line(e->w, "y0[i] = x0[j0] + x1[j1];");
    em_close(e->w, k);
    return 0;
}

static const OpDef op_add = {
    .name = "Add", .domain = "", .since = 1,
    .min_inputs = 2, .max_inputs = 2, .min_outputs = 1, .max_outputs = 1,
    .infer = infer_broadcast, .emit = emit_add,
    .summary = "a + b with numpy broadcasting",
};

const OpDef *const ops_elementwise[] = {&op_relu, &op_add, NULL};

/* Helpers shared by the operator files. */
#include "compiler/ops/ops.h"
#include <string.h>

int broadcast_shapes(int ra, const int64_t *da, int rb, const int64_t *db,
                     int *rout, int64_t *dout)
{
    int r = ra > rb ? ra : rb;
    for (int i = 0; i < r; i++) {
        int64_t a = i - (r - ra) >= 0 ? da[i - (r - ra)] : 1;
        int64_t b = i - (r - rb) >= 0 ? db[i - (r - rb)] : 1;
        if (a == b || b == 1)
            dout[i] = a;
        else if (a == 1)
            dout[i] = b;
        else
            return -1;
    }
    *rout = r;
    return 0;
}

int norm_axis(Diag *d, const Node *n, int64_t axis, int rank)
{
    if (axis < -rank || axis >= (rank ? rank : 1)) {
        diag_error(d, n, "axis %lld is out of range for rank %d", (long long)axis, rank);
        return -1;
    }
    return (int)(axis < 0 ? axis + rank : axis);
}

Value *need_input(Graph *g, const Node *n, int i, Diag *d)
{
    Value *v = node_in(g, n, i);
    if (!v) {
        diag_error(d, n, "input %d is missing", i);
        return NULL;
    }
    if (!value_shape_known(v)) {
        diag_error(d, n, "the shape of input '%s' is not known (bind symbolic dims with --shape or --batch)", v->name);
        return NULL;
    }
    if (!dtype_supported(v->dtype)) {
        diag_unsupported(d, n, "input '%s' has unsupported element type %s", v->name, dtype_name(v->dtype));
        return NULL;
    }
    return v;
}

Value *need_const_input(Graph *g, const Node *n, int i, const char *what, Diag *d)
{
    Value *v = need_input(g, n, i, d);
    if (!v)
        return NULL;
    if (!value_is_const(v)) {
        if (v->role == VR_INPUT) {
            diag_error(d, n, "input '%s' (%s) must be a constant to give static shapes; bind it with --const %s=FILE",
                       v->name, what, v->name);
            if (!d->need_const[0])
                snprintf(d->need_const, sizeof d->need_const, "%s", v->name);
        } else {
            diag_unsupported(d, n, "input '%s' (%s) is computed at run time; kdcc needs it constant for static shapes",
                             v->name, what);
        }
        return NULL;
    }
    return v;
}

int err_dtype(Diag *d, const Node *n, const char *which, DType t)
{
    return diag_unsupported(d, n, "element type %s is not supported for %s", dtype_name(t), which);
}

int all_inputs_const(const Graph *g, const Node *n)
{
    for (int i = 0; i < n->ninputs; i++) {
        const Value *v = node_in(g, n, i);
        if (v && !value_is_const(v))
            return 0;
    }
    return 1;
}

int64_t shape_strides(int rank, const int64_t *dims, int64_t *st)
{
    /* an empty shape: no element is ever addressed, and the product of the other
     * dims (a Tile's repeats beside a 0, say) may overflow int64 */
    for (int i = 0; i < rank; i++)
        if (dims[i] == 0) {
            for (int j = 0; j < rank; j++)
                st[j] = 0;
            return 0;
        }
    int64_t s = 1;
    for (int i = rank - 1; i >= 0; i--) {
        st[i] = s;
        s *= dims[i];
    }
    return s;
}

int node_may_view(const Graph *g, const Node *n)
{
    if (!n->op || n->ninputs < 1 || n->inputs[0] < 0 || n->noutputs < 1 || n->outputs[0] < 0)
        return 0;
    if (n->op->view)
        return 1;
    /* Transpose(x, perm = [0, 2, 3, 1]) of an x stored channels-last: its [N][H][W][C] storage is the output's */
    const int64_t *p;
    return !strcmp(n->op_type, "Transpose") && g->values[n->inputs[0]].channels_last && attr_ints(n, "perm", &p) == 4 &&
           p[0] == 0 && p[1] == 2 && p[2] == 3 && p[3] == 1;
}

int node_is_view(const Graph *g, const Node *n)
{
    return node_may_view(g, n) && g->values[n->outputs[0]].alias_of == n->inputs[0];
}

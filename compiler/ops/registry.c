/* The operator table: the families' tables, looked up by (domain, name). */
#include "compiler/ops/ops.h"

#include <string.h>

static const OpDef *const *const families[] = {
    ops_elementwise, ops_gemm, ops_conv, ops_pool, ops_norm,
    ops_softmax, ops_reduce, ops_shape, ops_resize, ops_train, ops_conv_wino,
    ops_quant,
};

const OpDef *op_at(int i)
{
    for (size_t f = 0; f < sizeof families / sizeof families[0]; f++)
        for (const OpDef *const *p = families[f]; *p; p++)
            if (i-- == 0)
                return *p;
    return NULL;
}

static int same_domain(const char *a, const char *b)
{
    if (!a || strcmp(a, "ai.onnx") == 0)
        a = "";
    if (!b || strcmp(b, "ai.onnx") == 0)
        b = "";
    return strcmp(a, b) == 0;
}

const OpDef *op_lookup(const char *domain, const char *name)
{
    const OpDef *o;
    for (int i = 0; (o = op_at(i)); i++)
        if (strcmp(o->name, name) == 0 && same_domain(o->domain, domain))
            return o;
    return NULL;
}

int ops_resolve(Graph *g, Diag *d)
{
    for (int i = 0; i < g->nnodes; i++) {
        Node *n = g->nodes[i];
        if (n->dead)
            continue;
        const OpDef *o = op_lookup(n->domain, n->op_type);
        if (!o) {
            if (n->domain && n->domain[0] && strcmp(n->domain, "ai.onnx") != 0)
                return diag_unsupported(d, n, "operator domain '%s' is not supported (only the default ONNX domain is)", n->domain);
            return diag_unsupported(d, n, "unsupported operator '%s'", n->op_type);
        }
        if (n->opset && n->opset < o->since)
            return diag_unsupported(d, n, "opset %d of %s is not supported (kdcc handles opset %d and later)", n->opset, o->name, o->since);
        int nin = n->ninputs;
        while (nin > 0 && n->inputs[nin - 1] < 0)
            nin--;
        if (nin < o->min_inputs || (o->max_inputs >= 0 && nin > o->max_inputs))
            return diag_error(d, n, "has %d inputs; %s takes %d to %d", nin, o->name, o->min_inputs, o->max_inputs);
        int nout = n->noutputs;
        while (nout > 0 && n->outputs[nout - 1] < 0)
            nout--;
        if (nout < o->min_outputs || (o->max_outputs >= 0 && nout > o->max_outputs))
            return diag_error(d, n, "has %d outputs; %s gives %d to %d", nout, o->name, o->min_outputs, o->max_outputs);
        for (int j = 0; j < o->min_inputs; j++)
            if (n->inputs[j] < 0)
                return diag_error(d, n, "required input %d is missing", j);
        n->op = o;
    }
    return 0;
}

/* Bind symbolic dims of graph inputs to numbers (--shape NAME=1x3x32x32, --batch N). */
#include "passes/passes.h"

#include <inttypes.h>
#include <string.h>

int pass_bind(Graph *g, const PassOptions *o, Diag *d)
{
    /* dim_param name -> value, learnt from explicit bindings, so one --shape binds "N" everywhere */
    const char *sym[64];
    int64_t symv[64];
    int nsym = 0;
    for (int k = 0; k < o->nshapes; k++) {
        const ShapeBinding *b = &o->shapes[k];
        int id = graph_find(g, b->name);
        int is_input = 0;
        for (int i = 0; i < g->ninputs; i++)
            is_input |= g->inputs[i] == id;
        if (id < 0 || !is_input)
            return diag_error(d, NULL, "--shape: '%s' is not a graph input", b->name);
        Value *v = &g->values[id];
        if (v->role != VR_INPUT)
            continue; /* bound to a constant */
        if (v->rank >= 0 && v->rank != b->rank)
            return diag_error(d, NULL, "--shape %s: rank %d given, the model says %d", b->name, b->rank, v->rank);
        for (int i = 0; i < b->rank; i++) {
            if (b->dims[i] < 0)
                return diag_error(d, NULL, "--shape %s: dim %d is negative", b->name, i);
            if (v->rank >= 0 && v->dims[i] >= 0 && v->dims[i] != b->dims[i])
                return diag_error(d, NULL, "--shape %s: dim %d is %" PRId64 " in the model, %" PRId64 " given",
                                  b->name, i, v->dims[i], b->dims[i]);
            if (v->rank >= 0 && v->dim_param[i] && nsym < 64) {
                sym[nsym] = v->dim_param[i];
                symv[nsym++] = b->dims[i];
            }
        }
        DType dt = v->dtype;
        value_set_shape(v, dt, b->rank, b->dims);
        if (dims_numel(v->rank, v->dims) < 0)
            return diag_error(d, NULL, "--shape %s: the element count overflows", b->name);
    }
    for (int i = 0; i < g->ninputs; i++) {
        Value *v = &g->values[g->inputs[i]];
        if (v->role != VR_INPUT)
            continue;
        if (v->rank < 0)
            return diag_error(d, NULL, "graph input '%s' has no known rank; give it with --shape %s=DxDx...", v->name, v->name);
        for (int k = 0; k < v->rank; k++) {
            if (v->dims[k] >= 0)
                continue;
            for (int s = 0; s < nsym; s++)
                if (v->dim_param[k] && strcmp(v->dim_param[k], sym[s]) == 0)
                    v->dims[k] = symv[s];
            if (v->dims[k] < 0 && k == 0 && o->batch > 0)
                v->dims[k] = o->batch;
            if (v->dims[k] < 0)
                return diag_error(d, NULL, "graph input '%s' has a symbolic dim %d ('%s'); bind it with --shape %s=... or --batch N",
                                  v->name, k, v->dim_param[k] ? v->dim_param[k] : "?", v->name);
        }
        if (dims_numel(v->rank, v->dims) < 0)
            return diag_error(d, NULL, "graph input '%s': the element count overflows", v->name);
    }
    return 0;
}

/* Emission helpers used by operator files: literals, loops, broadcasting. */
#include "compiler/ops/ops.h"

#include <inttypes.h>

const char *em_tmp(Emitter *e, char *buf, size_t n)
{
    snprintf(buf, n, "t%d", e->tmp_counter++);
    return buf;
}

void em_literal(Writer *w, DType dt, double x)
{
    switch (dt) {
    case DT_FLOAT:
        w_float(w, (float)x);
        break;
    case DT_DOUBLE:
        w_double(w, x);
        break;
    case DT_BOOL:
        w_puts(w, x != 0 ? "true" : "false");
        break;
    case DT_UINT64:
        w_printf(w, "UINT64_C(%" PRIu64 ")", (uint64_t)x);
        break;
    default:
        if (dtype_is_int(dt))
            w_int64(w, (int64_t)x);
        else
            w_float(w, (float)x);
    }
}

void em_for(Writer *w, const char *var, int64_t n)
{
    w_open(w, "for (int64_t %s = 0; %s < %" PRId64 "; ++%s)", var, var, n, var);
}

void em_for_lanes(Writer *w, const char *var, int64_t n)
{
    w_line(w, "KD_LANES");
    em_for(w, var, n);
}

const char *em_half_load(Emitter *e, DType t)
{
    if (t == DT_FLOAT16) {
        e->prelude |= PRE_HALF;
        return "kd_h2f";
    }
    if (t == DT_BFLOAT16) {
        e->prelude |= PRE_BF16;
        return "kd_bf2f";
    }
    return "";
}

const char *em_half_store(Emitter *e, DType t)
{
    if (t == DT_FLOAT16) {
        e->prelude |= PRE_HALF;
        return "kd_f2h";
    }
    if (t == DT_BFLOAT16) {
        e->prelude |= PRE_BF16;
        return "kd_f2bf";
    }
    return "";
}

void em_omp_for(const Emitter *e, int64_t work, int collapse)
{
    if (!e->openmp || work < EM_OMP_MIN_WORK)
        return;
    /* guarded: a build without OpenMP sees no pragma (and -Wunknown-pragmas stays quiet) */
    w_puts(e->w, "#ifdef _OPENMP\n");
    if (collapse > 1)
        w_printf(e->w, "#pragma omp parallel for collapse(%d)\n", collapse);
    else
        w_puts(e->w, "#pragma omp parallel for\n");
    w_puts(e->w, "#endif\n");
}

void em_close(Writer *w, int k)
{
    while (k-- > 0)
        w_close(w);
}

int em_broadcast_loops(Writer *w, const Value *out, const Value *const *ins, int nin)
{
    int r = out->rank;
    int64_t n = value_numel(out);
    /* per input, stride of each output dim (0 where broadcast) */
    int64_t st[8][KD_MAX_RANK];
    int same = 1;
    for (int k = 0; k < nin; k++) {
        const Value *v = ins[k];
        if (!v)
            continue;
        int off = r - v->rank;
        int64_t s = 1;
        for (int i = r - 1; i >= 0; i--) {
            int64_t dim = i - off >= 0 ? v->dims[i - off] : 1;
            st[k][i] = (dim == 1 && out->dims[i] != 1) ? 0 : s;
            s *= dim;
        }
        if (value_numel(v) == 1)
            continue;
        if (value_numel(v) != n)
            same = 0;
        else
            for (int i = 0; i < r; i++)
                if ((i - off >= 0 ? v->dims[i - off] : 1) != out->dims[i])
                    same = 0;
    }
    if (same || r == 0) {
        em_for(w, "i", n);
        for (int k = 0; k < nin; k++)
            if (ins[k])
                w_line(w, "const int64_t j%d = %s;", k, value_numel(ins[k]) == 1 ? "0" : "i");
        return 1;
    }
    /* collapse adjacent dims where every input's strides are contiguous together */
    int64_t cd[KD_MAX_RANK], cs[8][KD_MAX_RANK];
    int cr = 0;
    for (int i = 0; i < r; i++) {
        if (out->dims[i] == 1)
            continue;
        int merge = cr > 0;
        for (int k = 0; k < nin && merge; k++)
            if (ins[k] && cs[k][cr - 1] != st[k][i] * out->dims[i])
                merge = 0;
        if (merge) {
            cd[cr - 1] *= out->dims[i];
            for (int k = 0; k < nin; k++)
                if (ins[k])
                    cs[k][cr - 1] = st[k][i];
        } else {
            cd[cr] = out->dims[i];
            for (int k = 0; k < nin; k++)
                if (ins[k])
                    cs[k][cr] = st[k][i];
            cr++;
        }
    }
    if (cr == 0) {
        w_puts(w, "{\n");
        w->indent++;
        w_line(w, "const int64_t i = 0;");
        for (int k = 0; k < nin; k++)
            if (ins[k])
                w_line(w, "const int64_t j%d = 0;", k);
        return 1;
    }
    for (int a = 0; a < cr; a++) {
        char var[16];
        snprintf(var, sizeof var, "i%d", a);
        em_for(w, var, cd[a]);
    }
    w_puts(w, "const int64_t i = ");
    int64_t os = 1;
    for (int a = cr - 1; a >= 0; a--) {
        w_printf(w, "%si%d * %" PRId64, a == cr - 1 ? "" : " + ", a, os);
        os *= cd[a];
    }
    w_puts(w, ";\n");
    for (int k = 0; k < nin; k++) {
        if (!ins[k])
            continue;
        w_printf(w, "const int64_t j%d = 0", k);
        for (int a = 0; a < cr; a++)
            if (cs[k][a])
                w_printf(w, " + i%d * %" PRId64, a, cs[k][a]);
        w_puts(w, ";\n");
    }
    return cr;
}

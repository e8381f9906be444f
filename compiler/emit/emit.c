/* The C emitter: one .c and one .h per model, mechanical: it walks the planned
 * graph and writes what each node says. */
#include "compiler/emit/emit.h"

#include <ctype.h>
#include <inttypes.h>
#include <string.h>

extern const char *const emit_prelude_half;
extern const char *const emit_prelude_bf16;
extern const char *const emit_prelude_round;
extern const char *const emit_prelude_qround;

/* A C identifier from an arbitrary ONNX name. */
static void c_ident(char *out, size_t n, const char *prefix, const char *name)
{
    size_t k = (size_t)snprintf(out, n, "%s", prefix);
    if (k >= n)
        return;
    if (!prefix[0] && (!name[0] || isdigit((unsigned char)name[0])) && k + 1 < n)
        out[k++] = '_';
    for (const char *p = name; *p && k + 1 < n && k < 48; p++)
        out[k++] = (isalnum((unsigned char)*p)) ? *p : '_';
    out[k] = 0;
}

static void upper(char *s)
{
    for (; *s; s++)
        *s = (char)toupper((unsigned char)*s);
}

/* Does identifier `id` occur as a whole token in text? */
static int uses_ident(const char *text, const char *id)
{
    size_t n = strlen(id);
    for (const char *p = strstr(text, id); p; p = strstr(p + 1, id)) {
        int before = p > text && (isalnum((unsigned char)p[-1]) || p[-1] == '_');
        int after = isalnum((unsigned char)p[n]) || p[n] == '_';
        if (!before && !after)
            return 1;
    }
    return 0;
}

typedef struct EmitState {
    const Graph *g;
    const EmitOptions *opt;
    char **cname;   /* C expression for each value's storage in run_ws */
    char **pname;   /* parameter name of each graph input value */
    char **oname;   /* parameter name of graph output i */
} EmitState;

static void comment_safe(Writer *w, const char *s)
{
    /* names go into comments: keep them from closing the comment */
    for (; *s; s++) {
        if (s[0] == '*' && s[1] == '/')
            w_puts(w, "* /");
        else if ((unsigned char)*s < 32 || (unsigned char)*s >= 127)
            w_puts(w, "?");
        else {
            char c[2] = {*s, 0};
            w_puts(w, c);
        }
    }
}

static void emit_weight(Writer *w, const Value *v, const char *cname)
{
    int64_t n = value_numel(v);
    const char *ct = dtype_ctype(v->dtype);
    char ts[256];
    w_puts(w, "/* ");
    comment_safe(w, v->name);
    w_printf(w, ": %s */\n", value_type_str(v, ts, sizeof ts));
    w_printf(w, "static const %s %s[%" PRId64 "] KD_ALIGN = {", ct, cname, n);
    for (int64_t i = 0; i < n; i++) {
        if (i % 8 == 0)
            w_puts(w, "\n    ");
        else
            w_puts(w, " ");
        switch (v->dtype) {
        case DT_FLOAT:
            w_float(w, ((const float *)v->data)[i]);
            break;
        case DT_DOUBLE:
            w_double(w, ((const double *)v->data)[i]);
            break;
        case DT_BOOL:
            w_puts(w, ((const uint8_t *)v->data)[i] ? "true" : "false");
            break;
        case DT_FLOAT16:
        case DT_BFLOAT16:
            w_printf(w, "0x%04x", ((const uint16_t *)v->data)[i]);
            break;
        case DT_UINT64:
            w_printf(w, "UINT64_C(%" PRIu64 ")", ((const uint64_t *)v->data)[i]);
            break;
        case DT_UINT32:
            w_printf(w, "%" PRIu32 "u", ((const uint32_t *)v->data)[i]);
            break;
        default:
            w_int64(w, const_get_i64(v, i));
        }
        w_puts(w, ",");
    }
    w_puts(w, "\n};\n\n");
}

/* Give constant value v a weight array (written to `weights`) the first time it is needed. */
static int name_weight(EmitState *st, Writer *weights, int v, int *nweights, const Node *n, Diag *d)
{
    const Value *val = &st->g->values[v];
    if (!dtype_ctype(val->dtype))
        return diag_unsupported(d, n, "constant '%s' has element type %s, which kdcc cannot emit", val->name,
                                dtype_name(val->dtype));
    char buf[64];
    if (value_numel(val) == 0) {
        snprintf(buf, sizeof buf, "(const %s *)0", dtype_ctype(val->dtype));
    } else {
        snprintf(buf, sizeof buf, "kd_w%d", (*nweights)++);
        emit_weight(weights, val, buf);
    }
    st->cname[v] = arena_strdup(st->g->arena, buf);
    return st->cname[v] ? 0 : diag_error(d, n, "out of memory");
}

/* The value whose storage v uses (itself unless it aliases another). */
static int storage_root(const Graph *g, int v)
{
    for (int hops = 0; g->values[v].alias_of >= 0 && hops < g->nvalues; hops++)
        v = g->values[v].alias_of;
    return v;
}

/* Must parameter (outputs ? y : x)j of node n go without restrict? Yes when its
 * storage is shared with another parameter and one of the two is written: an
 * output written over an input in place (passes/plan.c), or an update of state
 * that the node also reads. Writing an object that another restrict-qualified
 * pointer reads is undefined behaviour (C99 6.7.3.1). Inputs that share bytes
 * only with other inputs (Add(x, x)) keep restrict: nothing modifies them. */
static int shares_written(const Graph *g, const Node *n, int outputs, int j)
{
    int v = outputs ? n->outputs[j] : n->inputs[j];
    if (v < 0)
        return 0;
    int r = storage_root(g, v);
    for (int k = 0; k < n->noutputs; k++)
        if (!(outputs && k == j) && n->outputs[k] >= 0 && storage_root(g, n->outputs[k]) == r)
            return 1;
    for (int k = 0; outputs && k < n->ninputs; k++)
        if (n->inputs[k] >= 0 && storage_root(g, n->inputs[k]) == r)
            return 1;
    return 0;
}

static int has_state(const Graph *g)
{
    for (int v = 0; v < g->nvalues; v++)
        if (g->values[v].role == VR_STATE)
            return 1;
    return 0;
}

static int64_t state_bytes(const Graph *g)
{
    int64_t top = 0;
    for (int v = 0; v < g->nvalues; v++) {
        const Value *val = &g->values[v];
        if (val->role == VR_STATE && val->state_offset + (int64_t)value_bytes(val) > top)
            top = val->state_offset + (int64_t)value_bytes(val);
    }
    return top;
}

static int is_graph_output(const Graph *g, int id)
{
    for (int i = 0; i < g->noutputs; i++)
        if (g->outputs[i] == id)
            return 1;
    return 0;
}

static int is_graph_input(const Graph *g, int id)
{
    for (int i = 0; i < g->ninputs; i++)
        if (g->inputs[i] == id && g->values[id].role == VR_INPUT)
            return 1;
    return 0;
}

static void write_params(Writer *w, EmitState *st)
{
    const Graph *g = st->g;
    int first = 1;
    for (int i = 0; i < g->ninputs; i++) {
        const Value *v = &g->values[g->inputs[i]];
        if (v->role != VR_INPUT)
            continue;
        w_printf(w, "%sconst %s *%s", first ? "" : ", ", dtype_ctype(v->dtype), st->pname[g->inputs[i]]);
        first = 0;
    }
    for (int i = 0; i < g->noutputs; i++) {
        const Value *v = &g->values[g->outputs[i]];
        w_printf(w, "%s%s *%s", first ? "" : ", ", dtype_ctype(v->dtype), st->oname[i]);
        first = 0;
    }
    if (first)
        w_puts(w, "void");
}

static void write_header(const Graph *g, EmitState *st, const char *name, Writer *h, int64_t arena)
{
    char guard[128], up[96];
    snprintf(up, sizeof up, "%s", name);
    upper(up);
    snprintf(guard, sizeof guard, "%s_H_", up);
    w_line(h, "/* %s.h: generated by kdcc %s. Do not edit. */", name, KDCC_VERSION);
    if (st->opt->source) {
        w_puts(h, "/* model: ");
        comment_safe(h, st->opt->source);
        w_puts(h, " */\n");
    }
    w_line(h, "#ifndef %s", guard);
    w_line(h, "#define %s", guard);
    w_puts(h, "\n");
    w_line(h, "#include <stdbool.h>");
    w_line(h, "#include <stdint.h>");
    w_puts(h, "\n");
    w_line(h, "#ifdef __cplusplus");
    w_line(h, "extern \"C\" {");
    w_line(h, "#endif");
    w_puts(h, "\n");
    w_line(h, "/* Bytes of the workspace %s_run_ws needs (intermediate tensors). */", name);
    w_line(h, "#define %s_WORKSPACE_BYTES %" PRId64, up, arena);
    int nin = 0;
    for (int i = 0; i < g->ninputs; i++)
        nin += g->values[g->inputs[i]].role == VR_INPUT;
    int stateful = has_state(g);
    if (stateful) {
        int ns = 0;
        for (int v = 0; v < g->nvalues; v++)
            ns += g->values[v].role == VR_STATE;
        w_line(h, "/* Bytes of the state kept across runs (parameters, optimizer moments, running statistics). */");
        w_line(h, "#define %s_STATE_BYTES %" PRId64, up, state_bytes(g));
        w_line(h, "#define %s_NUM_STATE %d", up, ns);
    }
    w_line(h, "#define %s_NUM_INPUTS %d", up, nin);
    w_line(h, "#define %s_NUM_OUTPUTS %d", up, g->noutputs);
    w_puts(h, "\n");
    int k = 0;
    for (int pass = 0; pass < 2; pass++) {
        int count = pass ? g->noutputs : g->ninputs;
        for (int i = 0; i < count; i++) {
            int id = pass ? g->outputs[i] : g->inputs[i];
            const Value *v = &g->values[id];
            if (!pass && v->role != VR_INPUT)
                continue;
            int idx = pass ? i : k++;
            const char *io = pass ? "OUT" : "IN";
            char ts[256];
            w_puts(h, "/* ");
            w_puts(h, pass ? "output " : "input ");
            w_printf(h, "%d: '", idx);
            comment_safe(h, v->name);
            w_printf(h, "' %s */\n", value_type_str(v, ts, sizeof ts));
            w_line(h, "#define %s_%s%d_RANK %d", up, io, idx, v->rank);
            w_printf(h, "#define %s_%s%d_SHAPE {", up, io, idx);
            for (int r = 0; r < v->rank; r++)
                w_printf(h, "%s%" PRId64, r ? ", " : "", v->dims[r]);
            w_line(h, "%s}", v->rank ? "" : "1");
            w_line(h, "#define %s_%s%d_COUNT %" PRId64, up, io, idx, value_numel(v));
        }
    }
    w_puts(h, "\n");
    if (stateful) {
        w_line(h, "/* Where each state tensor lives in the state buffer: ONNX name, byte offset, element count,");
        w_line(h, "   ONNX element type (1 = float). */");
        w_line(h, "typedef struct %s_state_entry {", name);
        w_line(h, "    const char *name;");
        w_line(h, "    int64_t offset;");
        w_line(h, "    int64_t count;");
        w_line(h, "    int dtype;");
        w_line(h, "} %s_state_entry;", name);
        w_line(h, "extern const %s_state_entry %s_state_table[%s_NUM_STATE];", name, name, up);
        w_puts(h, "\n");
        w_line(h, "/* Fill a state buffer of %s_STATE_BYTES bytes (aligned to 16) with the initial values. */", up);
        w_line(h, "void %s_state_init(void *state);", name);
        w_puts(h, "\n");
    }
    w_line(h, "/* Run the model. Inputs, then outputs, as flat row-major arrays. Returns 0.");
    w_line(h, "   Uses a static workspace: not reentrant. */");
    w_printf(h, "int %s_run(", name);
    write_params(h, st);
    w_line(h, ");");
    w_puts(h, "\n");
    w_line(h, "/* The same with a caller-given workspace of %s_WORKSPACE_BYTES bytes, aligned to 16", up);
    w_line(h, "   bytes (reentrant: one workspace per concurrent call). Returns 0, or -1 if workspace is NULL. */");
    w_printf(h, "int %s_run_ws(void *workspace, %s", name, stateful ? "void *state, " : "");
    write_params(h, st);
    w_line(h, ");");
    w_puts(h, "\n");
    w_line(h, "#ifdef __cplusplus");
    w_line(h, "}");
    w_line(h, "#endif");
    w_puts(h, "\n");
    w_line(h, "#endif");
}

/* The static workspace (state = 0) or state buffer (state = 1): a union of one array
 * per element type stored in it, each covering the whole buffer, plus the bytes.
 * C99 6.5p6: an object with a declared type has that type as its effective type,
 * so an unsigned char array read through a float * would break 6.5p7. In the union
 * every float at offset k (a multiple of 4: the plan aligns to 16) is the element
 * k/4 of the float member, an object whose declared type is float: an access
 * through a float lvalue is an access of a compatible type (6.5p7, first case).
 * A pointer to the union points to each member (6.7.2.1p14) and, as unsigned
 * char *, to every byte of it (6.3.2.3p7), so run_ws takes it like caller memory;
 * a region reused by a value of another type is read through that member
 * (6.5.2.3p3 with footnote 82). Member order follows the dtype enum: deterministic. */
static void emit_storage_union(Writer *c, const Graph *g, const char *name, const char *up, int state)
{
    const char *what = state ? "STATE" : "WORKSPACE";
    w_line(c, "static union {");
    w_line(c, "    unsigned char bytes[%s_%s_BYTES > 0 ? %s_%s_BYTES : 1];", up, what, up, what);
    const char *seen[DT_COUNT_];
    int nseen = 0;
    for (int t = 1; t < DT_COUNT_; t++) {
        const char *ct = dtype_ctype((DType)t);
        int used = 0;
        for (int v = 0; ct && !used && v < g->nvalues; v++) {
            const Value *val = &g->values[storage_root(g, v)];
            used = (int)g->values[v].dtype == t && (state ? val->role == VR_STATE : val->offset >= 0);
        }
        for (int k = 0; used && k < nseen; k++)
            used = strcmp(seen[k], ct) != 0;
        if (!used || !strcmp(ct, "unsigned char"))
            continue;
        seen[nseen++] = ct;
        char mem[64];
        c_ident(mem, sizeof mem, "t_", ct);
        w_line(c, "    %s %s[%s_%s_BYTES > 0 ? (%s_%s_BYTES + sizeof(%s) - 1) / sizeof(%s) : 1];", ct, mem, up, what, up,
               what, ct, ct);
    }
    w_line(c, "    double align;");
    w_line(c, "} KD_ALIGN %s_%s;", name, state ? "state" : "workspace");
}

int emit_c(const Graph *g, const EmitOptions *opt, Writer *c, Writer *h, Diag *d)
{
    const char *name = opt->name;
    EmitState st = {.g = g, .opt = opt};
    st.cname = arena_array(g->arena, (size_t)g->nvalues + 1, sizeof(char *));
    st.pname = arena_array(g->arena, (size_t)g->nvalues + 1, sizeof(char *));
    if (!st.cname || !st.pname)
        return diag_error(d, NULL, "out of memory");

    /* parameter names for graph inputs and outputs: sanitised, unique */
    st.oname = arena_array(g->arena, (size_t)g->noutputs + 1, sizeof(char *));
    if (!st.oname)
        return diag_error(d, NULL, "out of memory");
    const char **taken = arena_array(g->arena, (size_t)(g->ninputs + g->noutputs) + 1, sizeof(char *));
    int ntaken = 0;
    for (int pass = 0; pass < 2; pass++) {
        int count = pass ? g->noutputs : g->ninputs;
        for (int i = 0; i < count; i++) {
            int id = pass ? g->outputs[i] : g->inputs[i];
            if (!pass && g->values[id].role != VR_INPUT)
                continue;
            char buf[80];
            c_ident(buf, sizeof buf, "", g->values[id].name);
            if (strncmp(buf, "kd_", 3) == 0 || strncmp(buf, "KD_", 3) == 0) /* kdcc's own names */
                buf[0] = buf[0] == 'k' ? 'x' : 'X';
            char uniq[96];
            snprintf(uniq, sizeof uniq, "%s", buf);
            for (int k = 2;; k++) {
                int clash = !strcmp(uniq, "workspace") || !strcmp(uniq, "arena") || !strcmp(uniq, "state") ||
                            !strcmp(uniq, "state_buffer");
                for (int t = 0; t < ntaken && !clash; t++)
                    clash = strcmp(taken[t], uniq) == 0;
                if (!clash)
                    break;
                snprintf(uniq, sizeof uniq, "%s_%d", buf, k);
            }
            char *nm = arena_strdup(g->arena, uniq);
            if (!nm || !taken)
                return diag_error(d, NULL, "out of memory");
            taken[ntaken++] = nm;
            if (pass)
                st.oname[i] = nm;
            else
                st.pname[id] = nm;
        }
    }

    int64_t arena = 0;
    for (int v = 0; v < g->nvalues; v++) {
        const Value *val = &g->values[v];
        if (val->offset >= 0 && val->offset + (int64_t)value_bytes(val) > arena)
            arena = val->offset + (int64_t)value_bytes(val);
    }
    write_header(g, &st, name, h, arena);

    Writer body; /* node functions */
    w_init(&body);
    Writer weights;
    w_init(&weights);
    Emitter e = {.g = g, .name = name, .openmp = opt->openmp};

    /* storage of every value used by a live node or a graph output */
    for (int v = 0; v < g->nvalues; v++) {
        const Value *val = &g->values[v];
        char buf[128];
        if (is_graph_input(g, v))
            st.cname[v] = st.pname[v];
        else if (val->role == VR_CONST)
            continue; /* named when first used, below */
        else if (is_graph_output(g, v) && val->producer >= 0) {
            for (int i = 0; i < g->noutputs; i++)
                if (g->outputs[i] == v) {
                    st.cname[v] = st.oname[i];
                    break;
                }
        }
        else if (val->offset >= 0) {
            snprintf(buf, sizeof buf, "(%s *)(arena + %" PRId64 ")", dtype_ctype(val->dtype), val->offset);
            st.cname[v] = arena_strdup(g->arena, buf);
        } else if (val->role == VR_STATE) {
            snprintf(buf, sizeof buf, "(%s *)(state + %" PRId64 ")", dtype_ctype(val->dtype), val->state_offset);
            st.cname[v] = arena_strdup(g->arena, buf);
        }
    }
    /* values that share another value's storage (in-place updates, views) */
    for (int v = 0; v < g->nvalues; v++) {
        int root = storage_root(g, v);
        if (root != v && !st.cname[v])
            st.cname[v] = st.cname[root];
    }
    int nweights = 0; /* constants become weights when a node function or an output copy reads them */
    /* node functions */
    Writer call; /* the calls in run_ws */
    w_init(&call);
    call.indent = 1;
    /* node functions already written, to share one between nodes whose functions would
     * be the same text (copies of a layer on slices of a batch, passes/distill.c) */
    typedef struct { uint64_t hash; size_t sig, siglen, text, textlen; char fname[96]; } Written;
    Written *done = arena_array(g->arena, (size_t)g->nnodes + 1, sizeof(Written));
    int ndone = 0;
    if (!done)
        return diag_error(d, NULL, "out of memory");
    for (int i = 0; i < g->nnodes; i++) {
        const Node *n = g->nodes[i];
        if (node_is_view(g, n))
            continue; /* its output is its input's storage: nothing to move */
        Writer nb;
        w_init(&nb);
        nb.indent = 1;
        e.w = &nb;
        if (n->op->emit(&e, n, d)) {
            w_free(&nb);
            w_free(&body);
            w_free(&weights);
            w_free(&call);
            return -1;
        }
        if (nb.oom) {
            w_free(&nb);
            return diag_error(d, n, "out of memory while emitting");
        }
        const char *text = nb.buf ? nb.buf : "";
        char fname[96], opname[64];
        c_ident(opname, sizeof opname, "", n->op_type);
        snprintf(fname, sizeof fname, "kd_n%d_%s", i, opname);
        /* comment: node, operator, values */
        size_t node_comment_at = body.len;
        w_printf(&body, "/* node %d '", i);
        comment_safe(&body, n->name);
        w_printf(&body, "': %s", n->op_type);
        for (int pass = 0; pass < 2; pass++) {
            int cnt = pass ? n->noutputs : n->ninputs;
            for (int j = 0; j < cnt; j++) {
                const Value *v = pass ? node_out(g, n, j) : node_in(g, n, j);
                if (!v)
                    continue;
                char ts[256];
                w_printf(&body, "\n   %c%d = '", pass ? 'y' : 'x', j);
                comment_safe(&body, v->name);
                w_printf(&body, "' %s", value_type_str(v, ts, sizeof ts));
            }
        }
        w_puts(&body, " */\n");
        Writer sig, args; /* the function's parameters and the call's arguments */
        w_init(&sig);
        w_init(&args);
        int first = 1;
        for (int pass = 0; pass < 2; pass++) {
            int cnt = pass ? n->noutputs : n->ninputs;
            for (int j = 0; j < cnt; j++) {
                int vid = pass ? (j < n->noutputs ? n->outputs[j] : -1) : n->inputs[j];
                if (vid < 0)
                    continue;
                char pn[16];
                snprintf(pn, sizeof pn, "%c%d", pass ? 'y' : 'x', j);
                if (!uses_ident(text, pn))
                    continue;
                const Value *v = &g->values[vid];
                if ((!st.cname[vid] && v->role == VR_CONST && name_weight(&st, &weights, vid, &nweights, n, d)) ||
                    (!st.cname[vid] && diag_error(d, n, "internal error: value '%s' has no storage", v->name))) {
                    w_free(&sig);
                    w_free(&args);
                    return -1;
                }
                w_printf(&sig, "%s%s%s *%s%s", first ? "" : ", ", pass ? "" : "const ", dtype_ctype(v->dtype),
                         shares_written(g, n, pass, j) ? "" : "restrict ", pn);
                w_printf(&args, "%s%s", first ? "" : ", ", st.cname[vid]);
                first = 0;
            }
        }
        if (first)
            w_puts(&sig, "void");
        if (sig.oom || args.oom) {
            w_free(&sig);
            w_free(&args);
            return diag_error(d, n, "out of memory while emitting");
        }
        const char *sg = sig.buf ? sig.buf : "";
        size_t sl = strlen(sg), tl = strlen(text);
        uint64_t hash = 1469598103934665603ull; /* FNV-1a of the parameters and the body */
        for (size_t k = 0; k < sl; k++)
            hash = (hash ^ (unsigned char)sg[k]) * 1099511628211ull;
        for (size_t k = 0; k < tl; k++)
            hash = (hash ^ (unsigned char)text[k]) * 1099511628211ull;
        const Written *same = NULL;
        for (int k = 0; k < ndone && !same && opt->share_functions; k++)
            if (done[k].hash == hash && done[k].siglen == sl && done[k].textlen == tl &&
                !memcmp(body.buf + done[k].sig, sg, sl) && !memcmp(body.buf + done[k].text, text, tl))
                same = &done[k];
        if (same) {
            /* drop this node's comment: the call says which function it shares */
            body.len = node_comment_at;
            if (body.buf)
                body.buf[body.len] = 0;
            w_printf(&call, "%s(%s); /* node %d */\n", same->fname, args.buf ? args.buf : "", i);
        } else {
            Written *wr = &done[ndone++];
            wr->hash = hash;
            snprintf(wr->fname, sizeof wr->fname, "%s", fname);
            w_printf(&body, "static void %s(", fname);
            wr->sig = body.len;
            wr->siglen = sl;
            w_puts(&body, sg);
            w_puts(&body, ")\n{\n");
            wr->text = body.len;
            wr->textlen = tl;
            w_puts(&body, text);
            w_puts(&body, "}\n\n");
            w_printf(&call, "%s(%s);\n", fname, args.buf ? args.buf : "");
        }
        w_free(&sig);
        w_free(&args);
        w_free(&nb);
    }
    /* copies for outputs that no node writes (inputs, constants, repeated outputs) */
    for (int i = 0; i < g->noutputs; i++) {
        int v = g->outputs[i];
        const Value *val = &g->values[v];
        if (value_numel(val) == 0 || st.cname[v] == st.oname[i])
            continue;
        if (!st.cname[v] && name_weight(&st, &weights, v, &nweights, NULL, d))
            return -1;
        w_line(&call, "memcpy(%s, %s, %" PRId64 ");", st.oname[i], st.cname[v], (int64_t)value_bytes(val));
    }

    /* the .c file */
    w_line(c, "/* %s.c: generated by kdcc %s. Do not edit. */", name, KDCC_VERSION);
    if (opt->source) {
        w_puts(c, "/* model: ");
        comment_safe(c, opt->source);
        w_puts(c, " */\n");
    }
    if (opt->cmdline) {
        w_puts(c, "/* options: ");
        comment_safe(c, opt->cmdline);
        w_puts(c, " */\n");
    }
    w_line(c, "#include \"%s\"", opt->header ? opt->header : "model.h");
    w_puts(c, "\n");
    w_line(c, "#include <math.h>");
    w_line(c, "#include <stdbool.h>");
    w_line(c, "#include <stdint.h>");
    w_line(c, "#include <string.h>");
    w_puts(c, "\n");
    w_line(c, "#if defined(__GNUC__) || defined(__clang__)");
    w_line(c, "#define KD_ALIGN __attribute__((aligned(64)))");
    w_line(c, "#define KD_UNUSED __attribute__((unused))");
    w_line(c, "#else");
    w_line(c, "#define KD_ALIGN");
    w_line(c, "#define KD_UNUSED");
    w_line(c, "#endif");
    /* gcc (12) unrolls a small loop over a block's lanes completely before its loop
     * vectoriser runs, when the body is a few statements (a block of 8 or fewer
     * vectors), and then often neither vectorises the loop around it nor puts the
     * scattered scalars back together: mnist-8's 8->16 5x5 layer ran 10-15 times
     * slower in 4x16 and 2x16 blocks than in 6x16. Kept whole, the lane loop is
     * vectorised into one vector operation per statement whatever the block size. */
    w_line(c, "#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 8");
    w_line(c, "#define KD_LANES _Pragma(\"GCC unroll 1\")");
    w_line(c, "#else");
    w_line(c, "#define KD_LANES");
    w_line(c, "#endif");
    w_puts(c, "\n");
    if (e.prelude & PRE_HALF)
        w_printf(c, "%s\n", emit_prelude_half);
    if (e.prelude & PRE_BF16)
        w_printf(c, "%s\n", emit_prelude_bf16);
    if (e.prelude & PRE_ROUND_EVEN)
        w_printf(c, "%s\n", emit_prelude_round);
    if (e.prelude & PRE_QROUND)
        w_printf(c, "%s\n", emit_prelude_qround);
    char up[96];
    snprintf(up, sizeof up, "%s", name);
    upper(up);
    int stateful = has_state(g);
    Writer sw; /* the state's table and init */
    w_init(&sw);
    if (stateful) {
        /* the state: initial contents, the table of entries, init */
        w_line(&sw, "const %s_state_entry %s_state_table[%s_NUM_STATE] = {", name, name, up);
        for (int v = 0; v < g->nvalues; v++) {
            const Value *val = &g->values[v];
            if (val->role != VR_STATE)
                continue;
            w_puts(&sw, "    {\"");
            for (const char *p = val->name; *p; p++)
                w_printf(&sw, (*p == '"' || *p == '\\') ? "\\%c" : (*p < 32 || *p > 126) ? "?" : "%c", *p);
            w_line(&sw, "\", %" PRId64 ", %" PRId64 ", %d},", val->state_offset, value_numel(val), (int)val->dtype);
        }
        w_line(&sw, "};");
        w_puts(&sw, "\n");
        w_printf(&sw, "void %s_state_init(void *state)\n{\n", name);
        w_line(&sw, "    unsigned char *s = (unsigned char *)state;");
        w_line(&sw, "    memset(s, 0, %s_STATE_BYTES);", up);
        for (int v = 0; v < g->nvalues; v++) {
            const Value *val = &g->values[v];
            if (val->role != VR_STATE || !val->data || value_numel(val) == 0)
                continue;
            char wn[64];
            snprintf(wn, sizeof wn, "kd_w%d", nweights++);
            emit_weight(&weights, val, wn);
            w_line(&sw, "    memcpy(s + %" PRId64 ", %s, sizeof %s);", val->state_offset, wn, wn);
        }
        w_line(&sw, "}");
        w_puts(&sw, "\n");
    }
    if (weights.buf)
        w_puts(c, weights.buf);
    if (body.buf)
        w_puts(c, body.buf);
    if (sw.buf)
        w_puts(c, sw.buf);
    w_free(&sw);
    w_printf(c, "int %s_run_ws(void *workspace, %s", name, stateful ? "void *state_buffer, " : "");
    write_params(c, &st);
    w_puts(c, ")\n{\n");
    w_line(c, "    unsigned char *arena = (unsigned char *)workspace;");
    if (stateful)
        w_line(c, "    unsigned char *state = (unsigned char *)state_buffer;");
    w_line(c, "    if (!workspace%s)", stateful ? " || !state" : "");
    w_line(c, "        return -1;");
    if (!call.buf || !uses_ident(call.buf, "arena"))
        w_line(c, "    (void)arena;");
    if (stateful && (!call.buf || !uses_ident(call.buf, "state")))
        w_line(c, "    (void)state;");
    for (int i = 0; i < g->ninputs; i++) {
        const char *pn = st.pname[g->inputs[i]];
        if (g->values[g->inputs[i]].role == VR_INPUT && (!call.buf || !uses_ident(call.buf, pn)))
            w_line(c, "    (void)%s; /* not needed: everything that depends on it was computed at compile time */", pn);
    }
    for (int i = 0; i < g->noutputs; i++)
        if (!call.buf || !uses_ident(call.buf, st.oname[i]))
            w_line(c, "    (void)%s; /* has no elements */", st.oname[i]);
    if (call.buf)
        w_puts(c, call.buf);
    w_line(c, "    return 0;");
    w_line(c, "}");
    w_puts(c, "\n");
    emit_storage_union(c, g, name, up, 0);
    w_puts(c, "\n");
    if (stateful) {
        emit_storage_union(c, g, name, up, 1);
        w_line(c, "static int %s_state_ready;", name);
        w_puts(c, "\n");
    }
    w_printf(c, "int %s_run(", name);
    write_params(c, &st);
    w_puts(c, ")\n{\n");
    if (stateful) {
        w_line(c, "    if (!%s_state_ready) {", name);
        w_line(c, "        %s_state_init(&%s_state);", name, name);
        w_line(c, "        %s_state_ready = 1;", name);
        w_line(c, "    }");
    }
    w_printf(c, "    return %s_run_ws(&%s_workspace", name, name);
    if (stateful)
        w_printf(c, ", &%s_state", name);
    for (int i = 0; i < g->ninputs; i++)
        if (g->values[g->inputs[i]].role == VR_INPUT)
            w_printf(c, ", %s", st.pname[g->inputs[i]]);
    for (int i = 0; i < g->noutputs; i++)
        w_printf(c, ", %s", st.oname[i]);
    w_line(c, ");");
    w_line(c, "}");
    int oom = body.oom || weights.oom || call.oom || c->oom || h->oom;
    w_free(&body);
    w_free(&weights);
    w_free(&call);
    if (oom)
        return diag_error(d, NULL, "out of memory while emitting C");
    return 0;
}

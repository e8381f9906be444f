/* Printer for the ONNX textual syntax: any Graph (after import or after passes),
 * deterministically, with every initializer's data. onnx_text_parse reads the output
 * back to the same graph, and printing that graph gives the same text.
 *
 * Layout (as ONNX's printer, with the initializer list one entry per line):
 *   <
 *      ir_version: 8,
 *      opset_import: ["" : 17]
 *   >
 *   name (float[N,4] X) => (float[N,4] Y)
 *   <
 *      float[4] w = {1, 2.5, -inf, nan},
 *      float[N,4] t
 *   >
 *   {
 *      [n0] t = Add (X, w)
 *      Y = Softmax <axis: int = 1> (t)
 *   }
 * Numbers are printed in the shortest form that reads back to the same bits (NaN
 * payloads aside); float16/bfloat16/float8 data as their bit patterns, as ONNX does. */
#include "frontends/onnx.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define IND "   "
#define PER_LINE 16 /* values per line in long data lists */

static void put_float(Writer *w, float v)
{
    if (isnan(v)) {
        w_puts(w, signbit(v) ? "-nan" : "nan");
        return;
    }
    if (isinf(v)) {
        w_puts(w, v < 0 ? "-inf" : "inf");
        return;
    }
    if (v == 0 && signbit(v)) {
        w_puts(w, "-0.0"); /* "-0" would read back as the integer 0 where an int is allowed */
        return;
    }
    char buf[48];
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, (double)v);
        if (strtof(buf, NULL) == v)
            break;
    }
    w_puts(w, buf);
}

static void put_double(Writer *w, double v)
{
    if (isnan(v)) {
        w_puts(w, signbit(v) ? "-nan" : "nan");
        return;
    }
    if (isinf(v)) {
        w_puts(w, v < 0 ? "-inf" : "inf");
        return;
    }
    if (v == 0 && signbit(v)) {
        w_puts(w, "-0.0"); /* "-0" would read back as the integer 0 where an int is allowed */
        return;
    }
    char buf[48];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    w_puts(w, buf);
}

static int is_ident(const char *s)
{
    if (!s || !((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_'))
        return 0;
    for (const char *c = s + 1; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '_'))
            return 0;
    return 1;
}

/* names that would read as a type where a type is optional */
static int is_reserved(const char *s)
{
    static const char *kw[] = {"seq", "map", "optional", "sparse_tensor", "opaque"};
    for (size_t i = 0; i < sizeof kw / sizeof kw[0]; i++)
        if (strcmp(s, kw[i]) == 0)
            return 1;
    for (int i = 1; i < DT_COUNT_; i++)
        if (strcmp(s, dtype_name((DType)i)) == 0)
            return 1;
    return 0;
}

/* a quoted string: '\' before '"' and '\'; other bytes as they are */
static void put_quoted_n(Writer *w, const char *s, size_t n)
{
    char buf[256];
    size_t k = 0;
    buf[k++] = '"';
    for (size_t i = 0; i < n && s[i]; i++) {
        if (k > sizeof buf - 4) {
            buf[k] = 0;
            w_puts(w, buf);
            k = 0;
        }
        if (s[i] == '"' || s[i] == '\\')
            buf[k++] = '\\';
        buf[k++] = s[i];
    }
    buf[k++] = '"';
    buf[k] = 0;
    w_puts(w, buf);
}

static void put_quoted(Writer *w, const char *s)
{
    put_quoted_n(w, s ? s : "", s ? strlen(s) : 0);
}

static void put_id(Writer *w, const char *s)
{
    if (s && is_ident(s) && !is_reserved(s))
        w_puts(w, s);
    else
        put_quoted(w, s);
}

static void put_value_name(Writer *w, const Graph *g, int id)
{
    put_id(w, id >= 0 ? g->values[id].name : "");
}

/* "float[N,3]", "float" (scalar), "float[]" (rank unknown); nothing if dtype unknown */
static int put_type(Writer *w, const Value *v)
{
    if (v->dtype == DT_UNDEFINED)
        return 0;
    w_puts(w, dtype_name(v->dtype));
    if (v->rank < 0) {
        w_puts(w, "[]");
        return 1;
    }
    if (v->rank == 0)
        return 1;
    w_puts(w, "[");
    for (int i = 0; i < v->rank && i < KD_MAX_RANK; i++) {
        if (i)
            w_puts(w, ",");
        if (v->dims[i] >= 0)
            w_printf(w, "%" PRId64, v->dims[i]);
        else if (v->dim_param[i])
            put_id(w, v->dim_param[i]);
        else
            w_puts(w, "?");
    }
    w_puts(w, "]");
    return 1;
}

static void put_elem(Writer *w, const void *data, DType dt, int64_t i)
{
    switch (dt) {
    case DT_FLOAT: put_float(w, ((const float *)data)[i]); break;
    case DT_DOUBLE: put_double(w, ((const double *)data)[i]); break;
    case DT_INT8: w_printf(w, "%d", ((const int8_t *)data)[i]); break;
    case DT_INT16: w_printf(w, "%d", ((const int16_t *)data)[i]); break;
    case DT_INT32: w_printf(w, "%" PRId32, ((const int32_t *)data)[i]); break;
    case DT_INT64: w_printf(w, "%" PRId64, ((const int64_t *)data)[i]); break;
    case DT_UINT16: case DT_FLOAT16: case DT_BFLOAT16:
        w_printf(w, "%u", (unsigned)((const uint16_t *)data)[i]); break;
    case DT_UINT32: w_printf(w, "%" PRIu32, ((const uint32_t *)data)[i]); break;
    case DT_UINT64: w_printf(w, "%" PRIu64, ((const uint64_t *)data)[i]); break;
    case DT_BOOL: w_puts(w, ((const uint8_t *)data)[i] ? "1" : "0"); break;
    default: /* uint8 and the 8-bit float formats: the byte */
        w_printf(w, "%u", (unsigned)((const uint8_t *)data)[i]); break;
    }
}

/* "{1, 2, 3}"; long lists wrap, PER_LINE values per line, indented by `ind` */
static void put_data(Writer *w, const void *data, size_t nbytes, DType dt, int rank, const int64_t *dims, const char *ind)
{
    int64_t n = dims_numel(rank, dims);
    size_t es = dtype_size(dt);
    if (n < 0 || !es || !data || (uint64_t)n > nbytes / es)
        n = 0;
    if (n <= PER_LINE) {
        w_puts(w, "{");
        for (int64_t i = 0; i < n; i++) {
            if (i)
                w_puts(w, ", ");
            put_elem(w, data, dt, i);
        }
        w_puts(w, "}");
        return;
    }
    w_puts(w, "{\n");
    for (int64_t i = 0; i < n; i++) {
        if (i % PER_LINE == 0)
            w_printf(w, "%s" IND, ind);
        put_elem(w, data, dt, i);
        if (i + 1 < n)
            w_puts(w, (i + 1) % PER_LINE ? ", " : ",\n");
    }
    w_printf(w, "\n%s}", ind);
}

static void put_tensor(Writer *w, const Tensor *t, const char *ind)
{
    w_puts(w, dtype_name(t->dtype));
    if (t->rank > 0) {
        w_puts(w, "[");
        for (int i = 0; i < t->rank && i < KD_MAX_RANK; i++)
            w_printf(w, "%s%" PRId64, i ? "," : "", t->dims[i]);
        w_puts(w, "]");
    }
    if (t->name && t->name[0]) {
        w_puts(w, " ");
        put_id(w, t->name);
    }
    w_puts(w, " ");
    put_data(w, t->data, t->nbytes, t->dtype, t->rank, t->dims, ind);
}

static const char *attr_type_str(AttrType t)
{
    switch (t) {
    case AT_FLOAT: return "float";
    case AT_INT: return "int";
    case AT_STRING: return "string";
    case AT_TENSOR: return "tensor";
    case AT_GRAPH: return "graph";
    case AT_FLOATS: return "floats";
    case AT_INTS: return "ints";
    case AT_STRINGS: return "strings";
    case AT_TENSORS: return "tensors";
    case AT_GRAPHS: return "graphs";
    case AT_SPARSE_TENSOR: return "sparse_tensor";
    case AT_SPARSE_TENSORS: return "sparse_tensors";
    case AT_TYPE_PROTO: return "type_proto";
    case AT_TYPE_PROTOS: return "type_protos";
    default: return NULL;
    }
}

static int attr_printable(const Attr *a)
{
    switch (a->type) {
    case AT_FLOAT: case AT_INT: case AT_STRING: case AT_TENSOR:
    case AT_FLOATS: case AT_INTS: case AT_STRINGS: case AT_TENSORS:
        return 1;
    default:
        return a->ref_attr_name && attr_type_str(a->type);
    }
}

static void put_attr(Writer *w, const Attr *a)
{
    w_printf(w, "%s: %s = ", a->name, attr_type_str(a->type));
    if (a->ref_attr_name) {
        w_printf(w, "@%s", a->ref_attr_name);
        return;
    }
    switch (a->type) {
    case AT_INT: w_printf(w, "%" PRId64, a->i); break;
    case AT_FLOAT: put_float(w, (float)a->f); break;
    case AT_STRING: put_quoted_n(w, a->s ? a->s : "", a->s ? (a->slen ? a->slen : strlen(a->s)) : 0); break;
    case AT_TENSOR:
        if (a->t)
            put_tensor(w, a->t, IND);
        break;
    default:
        w_puts(w, "[");
        for (int i = 0; i < a->n; i++) {
            if (i)
                w_puts(w, ", ");
            if (a->type == AT_INTS)
                w_printf(w, "%" PRId64, a->ints[i]);
            else if (a->type == AT_FLOATS)
                put_float(w, (float)a->floats[i]);
            else if (a->type == AT_STRINGS)
                put_quoted(w, a->strings[i]);
            else if (a->type == AT_TENSORS && a->tensors[i])
                put_tensor(w, a->tensors[i], IND);
        }
        w_puts(w, "]");
        break;
    }
}

static void put_node(Writer *w, const Graph *g, const Node *n)
{
    w_puts(w, IND);
    if (n->name && n->name[0]) {
        w_puts(w, "[");
        put_id(w, n->name);
        w_puts(w, "] ");
    }
    for (int i = 0; i < n->noutputs; i++) {
        if (i)
            w_puts(w, ", ");
        put_value_name(w, g, n->outputs[i]);
    }
    w_puts(w, n->noutputs ? " = " : "= ");
    if (n->domain && n->domain[0])
        w_printf(w, "%s.", n->domain);
    w_puts(w, n->op_type ? n->op_type : "?");
    int first = 1;
    for (int i = 0; i < n->nattrs; i++) {
        if (!attr_printable(&n->attrs[i]))
            continue;
        w_puts(w, first ? " <" : ", ");
        first = 0;
        put_attr(w, &n->attrs[i]);
    }
    if (!first)
        w_puts(w, ">");
    w_puts(w, " (");
    for (int i = 0; i < n->ninputs; i++) {
        if (i)
            w_puts(w, ", ");
        put_value_name(w, g, n->inputs[i]);
    }
    w_puts(w, ")\n");
}

static void put_header(Writer *w, const Graph *g)
{
    int nkeys = 0;
#define KEY() w_puts(w, nkeys++ ? ",\n" IND : "<\n" IND)
    if (g->ir_version > 0) {
        KEY();
        w_printf(w, "ir_version: %d", g->ir_version);
    }
    if (g->nopsets > 0) {
        KEY();
        w_puts(w, "opset_import: [");
        for (int i = 0; i < g->nopsets; i++) {
            if (i)
                w_puts(w, ", ");
            put_quoted(w, g->opset_domain[i]);
            w_printf(w, " : %" PRId64, g->opset_version[i]);
        }
        w_puts(w, "]");
    } else {
        /* no import list kept: the default opset and the domains the nodes use */
        int any = 0;
        if (g->opset > 0) {
            KEY();
            w_printf(w, "opset_import: [\"\" : %d", g->opset);
            any = 1;
        }
        for (int i = 0; i < g->nnodes; i++) {
            const char *dom = g->nodes[i]->domain;
            if (!dom || !dom[0] || g->nodes[i]->opset <= 0) /* a domain without a version stays unlisted */
                continue;
            int seen = 0;
            for (int j = 0; j < i && !seen; j++)
                seen = g->nodes[j]->domain && strcmp(g->nodes[j]->domain, dom) == 0;
            if (seen)
                continue;
            if (!any) {
                KEY();
                w_puts(w, "opset_import: [");
            } else {
                w_puts(w, ", ");
            }
            any = 1;
            put_quoted(w, dom);
            w_printf(w, " : %d", g->nodes[i]->opset);
        }
        if (any)
            w_puts(w, "]");
    }
    if (g->producer_name && g->producer_name[0]) {
        KEY();
        w_puts(w, "producer_name: ");
        put_quoted(w, g->producer_name);
    }
    if (g->producer_version && g->producer_version[0]) {
        KEY();
        w_puts(w, "producer_version: ");
        put_quoted(w, g->producer_version);
    }
    if (g->model_domain && g->model_domain[0]) {
        KEY();
        w_puts(w, "domain: ");
        put_quoted(w, g->model_domain);
    }
    if (g->model_version) {
        KEY();
        w_printf(w, "model_version: %" PRId64, g->model_version);
    }
    if (g->doc && g->doc[0]) {
        KEY();
        w_puts(w, "doc_string: ");
        put_quoted(w, g->doc);
    }
#undef KEY
    if (nkeys)
        w_puts(w, "\n>\n");
}

/* a value given data in the input or initializer list */
static void put_initializer(Writer *w, const Value *v)
{
    if (!put_type(w, v))
        w_puts(w, "float[0]"); /* cannot happen for valid constants */
    w_puts(w, " ");
    put_id(w, v->name);
    w_puts(w, " = ");
    put_data(w, v->data, v->nbytes, v->dtype, v->rank, v->dims, IND);
}

void onnx_text_print(const Graph *g, Writer *w)
{
    int saved_indent = w->indent;
    w->indent = 0; /* strings may hold newlines: the writer must not indent inside them */
    put_header(w, g);

    char *is_input = calloc((size_t)(g->nvalues ? g->nvalues : 1), 1);
    if (!is_input) {
        w->oom = 1;
        w->indent = saved_indent;
        return;
    }
    for (int i = 0; i < g->ninputs; i++)
        if (g->inputs[i] >= 0 && g->inputs[i] < g->nvalues)
            is_input[g->inputs[i]] = 1;

    put_id(w, g->name ? g->name : "graph");
    w_puts(w, " (");
    for (int i = 0; i < g->ninputs; i++) {
        const Value *v = &g->values[g->inputs[i]];
        if (i)
            w_puts(w, ", ");
        if (v->data && v->dtype != DT_UNDEFINED && v->rank >= 0) {
            put_initializer(w, v);
            continue;
        }
        if (put_type(w, v))
            w_puts(w, " ");
        put_id(w, v->name);
    }
    w_puts(w, ") => (");
    for (int i = 0; i < g->noutputs; i++) {
        const Value *v = &g->values[g->outputs[i]];
        if (i)
            w_puts(w, ", ");
        if (put_type(w, v))
            w_puts(w, " ");
        put_id(w, v->name);
    }
    w_puts(w, ")\n");

    /* initializers and typed intermediates, in value order */
    int nlist = 0;
    for (int id = 0; id < g->nvalues; id++) {
        const Value *v = &g->values[id];
        if (is_input[id])
            continue;
        int init = v->role == VR_CONST;
        int info = v->role == VR_INTERMEDIATE && !v->is_output && v->dtype != DT_UNDEFINED;
        if (!init && !info)
            continue;
        w_puts(w, nlist++ ? ",\n" IND : "<\n" IND);
        if (init) {
            put_initializer(w, v);
        } else {
            put_type(w, v);
            w_puts(w, " ");
            put_id(w, v->name);
        }
    }
    if (nlist)
        w_puts(w, "\n>\n");
    free(is_input);

    w_puts(w, "{\n");
    for (int i = 0; i < g->nnodes; i++)
        if (!g->nodes[i]->dead)
            put_node(w, g, g->nodes[i]);
    w_puts(w, "}\n");
    w->indent = saved_indent;
}

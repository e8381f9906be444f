/* Graph, values, nodes, attributes, constants. */
#include "compiler/ir/ir.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

Graph *graph_new(Arena *a, const char *file)
{
    Graph *g = arena_alloc(a, sizeof *g);
    if (!g)
        return NULL;
    g->arena = a;
    g->file = file;
    g->name = "model";
    g->opset = 0;
    g->target = NULL;
    return g;
}

static uint32_t hash_str(const char *s)
{
    uint32_t h = 2166136261u;
    while (*s)
        h = (h ^ (unsigned char)*s++) * 16777619u;
    return h;
}

static int rehash(Graph *g, int cap)
{
    int *h = arena_array(g->arena, (size_t)cap, sizeof(int));
    if (!h)
        return -1;
    for (int i = 0; i < cap; i++)
        h[i] = -1;
    g->hash = h;
    g->hash_cap = cap;
    for (int v = 0; v < g->nvalues; v++) {
        uint32_t k = hash_str(g->values[v].name) & (uint32_t)(cap - 1);
        while (h[k] >= 0)
            k = (k + 1) & (uint32_t)(cap - 1);
        h[k] = v;
    }
    return 0;
}

int graph_find(const Graph *g, const char *name)
{
    if (!g->hash_cap || !name)
        return -1;
    uint32_t k = hash_str(name) & (uint32_t)(g->hash_cap - 1);
    while (g->hash[k] >= 0) {
        if (strcmp(g->values[g->hash[k]].name, name) == 0)
            return g->hash[k];
        k = (k + 1) & (uint32_t)(g->hash_cap - 1);
    }
    return -1;
}

static int add_value(Graph *g, const char *name)
{
    if (g->nvalues == g->cap_values) {
        int cap = g->cap_values ? g->cap_values * 2 : 64;
        Value *nv = arena_array(g->arena, (size_t)cap, sizeof(Value));
        if (!nv)
            return -1;
        if (g->nvalues)
            memcpy(nv, g->values, (size_t)g->nvalues * sizeof(Value));
        g->values = nv;
        g->cap_values = cap;
    }
    if ((g->nvalues + 1) * 2 > g->hash_cap && rehash(g, g->hash_cap ? g->hash_cap * 2 : 128))
        return -1;
    int id = g->nvalues++;
    Value *v = &g->values[id];
    memset(v, 0, sizeof *v);
    v->name = arena_strdup(g->arena, name);
    if (!v->name)
        return -1;
    v->rank = -1;
    v->producer = -1;
    v->offset = -1;
    v->alias_of = -1;
    v->state_offset = -1;
    for (int i = 0; i < KD_MAX_RANK; i++)
        v->dims[i] = -1;
    uint32_t k = hash_str(v->name) & (uint32_t)(g->hash_cap - 1);
    while (g->hash[k] >= 0)
        k = (k + 1) & (uint32_t)(g->hash_cap - 1);
    g->hash[k] = id;
    return id;
}

int graph_value(Graph *g, const char *name)
{
    int id = graph_find(g, name);
    return id >= 0 ? id : add_value(g, name);
}

int graph_new_value(Graph *g, const char *hint)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", hint && hint[0] ? hint : "t");
    for (int i = 1; graph_find(g, buf) >= 0; i++)
        snprintf(buf, sizeof buf, "%.200s_%d", hint && hint[0] ? hint : "t", i);
    return add_value(g, buf);
}

Node *graph_add_node(Graph *g, const char *op_type, const char *name,
                     const int *inputs, int ninputs, const int *outputs, int noutputs)
{
    if (g->nnodes == g->cap_nodes) {
        int cap = g->cap_nodes ? g->cap_nodes * 2 : 64;
        Node **nn = arena_array(g->arena, (size_t)cap, sizeof(Node *));
        if (!nn)
            return NULL;
        if (g->nnodes)
            memcpy(nn, g->nodes, (size_t)g->nnodes * sizeof(Node *));
        g->nodes = nn;
        g->cap_nodes = cap;
    }
    Node *n = arena_alloc(g->arena, sizeof *n);
    if (!n)
        return NULL;
    n->op_type = arena_strdup(g->arena, op_type);
    n->domain = "";
    n->block_m = n->block_n = 0;
    n->name = arena_strdup(g->arena, name ? name : "");
    n->ninputs = ninputs;
    n->noutputs = noutputs;
    n->inputs = arena_array(g->arena, (size_t)(ninputs ? ninputs : 1), sizeof(int));
    n->outputs = arena_array(g->arena, (size_t)(noutputs ? noutputs : 1), sizeof(int));
    if (!n->op_type || !n->name || !n->inputs || !n->outputs)
        return NULL;
    if (ninputs)
        memcpy(n->inputs, inputs, (size_t)ninputs * sizeof(int));
    if (noutputs)
        memcpy(n->outputs, outputs, (size_t)noutputs * sizeof(int));
    n->opset = g->opset;
    g->nodes[g->nnodes++] = n;
    return n;
}

Attr *node_add_attr(Graph *g, Node *n, const char *name, AttrType type)
{
    Attr *na = arena_array(g->arena, (size_t)n->nattrs + 1, sizeof(Attr));
    if (!na)
        return NULL;
    if (n->nattrs)
        memcpy(na, n->attrs, (size_t)n->nattrs * sizeof(Attr));
    n->attrs = na;
    Attr *a = &na[n->nattrs++];
    a->name = arena_strdup(g->arena, name);
    a->type = type;
    return a->name ? a : NULL;
}

void graph_compact(Graph *g)
{
    int k = 0;
    for (int i = 0; i < g->nnodes; i++)
        if (!g->nodes[i]->dead)
            g->nodes[k++] = g->nodes[i];
    g->nnodes = k;
    for (int v = 0; v < g->nvalues; v++)
        g->values[v].producer = -1;
    for (int i = 0; i < g->nnodes; i++)
        for (int j = 0; j < g->nodes[i]->noutputs; j++)
            if (g->nodes[i]->outputs[j] >= 0)
                g->values[g->nodes[i]->outputs[j]].producer = i;
}

int graph_link(Graph *g, Diag *d)
{
    for (int v = 0; v < g->nvalues; v++)
        g->values[v].producer = -1;
    for (int i = 0; i < g->nnodes; i++) {
        Node *n = g->nodes[i];
        if (n->dead)
            continue;
        for (int j = 0; j < n->noutputs; j++) {
            int o = n->outputs[j];
            if (o < 0)
                continue;
            Value *v = &g->values[o];
            if (v->producer >= 0 || v->role != VR_INTERMEDIATE)
                return diag_error(d, n, "value '%s' is produced more than once (SSA violated)", v->name);
            v->producer = i;
        }
    }
    return 0;
}

int graph_toposort(Graph *g, Diag *d)
{
    if (graph_link(g, d))
        return -1;
    int nn = g->nnodes;
    if (nn == 0)
        return 0;
    Node **order = arena_array(g->arena, (size_t)nn, sizeof(Node *));
    int *state = arena_array(g->arena, (size_t)nn, sizeof(int)); /* 0 new, 1 on stack, 2 done */
    int *stack = arena_array(g->arena, (size_t)nn, sizeof(int));
    int *next_in = arena_array(g->arena, (size_t)nn, sizeof(int));
    if (!order || !state || !stack || !next_in)
        return diag_error(d, NULL, "out of memory");
    int k = 0;
    for (int root = 0; root < nn; root++) {
        if (state[root])
            continue;
        int sp = 0;
        stack[sp++] = root;
        state[root] = 1;
        next_in[root] = 0;
        while (sp) {
            int i = stack[sp - 1];
            Node *n = g->nodes[i];
            if (next_in[i] < n->ninputs) {
                int in = n->inputs[next_in[i]++];
                if (in < 0)
                    continue;
                Value *v = &g->values[in];
                if (v->producer < 0) {
                    if (v->role == VR_INTERMEDIATE)
                        return diag_error(d, n, "input '%s' is never defined (not a graph input, initializer or node output)", v->name);
                    continue;
                }
                int p = v->producer;
                if (state[p] == 1)
                    return diag_error(d, g->nodes[p], "the graph has a cycle through value '%s'", v->name);
                if (state[p] == 0) {
                    state[p] = 1;
                    next_in[p] = 0;
                    stack[sp++] = p;
                }
            } else {
                state[i] = 2;
                order[k++] = n;
                sp--;
            }
        }
    }
    memcpy(g->nodes, order, (size_t)nn * sizeof(Node *));
    return graph_link(g, d);
}

/* ---- shapes ---- */

int64_t dims_numel(int rank, const int64_t *dims)
{
    int64_t n = 1;
    for (int i = 0; i < rank; i++) {
        if (dims[i] < 0)
            return -1;
        if (dims[i] && n > INT64_MAX / dims[i])
            return -1;
        n *= dims[i];
    }
    return n;
}

int64_t value_numel(const Value *v)
{
    return v->rank < 0 ? -1 : dims_numel(v->rank, v->dims);
}

size_t value_bytes(const Value *v)
{
    int64_t n = value_numel(v);
    size_t es = dtype_size(v->dtype);
    if (n < 0 || !es || (uint64_t)n > SIZE_MAX / es)
        return 0;
    return (size_t)n * es;
}

int value_shape_known(const Value *v)
{
    return v->rank >= 0 && dims_numel(v->rank, v->dims) >= 0;
}

void value_set_shape(Value *v, DType dt, int rank, const int64_t *dims)
{
    v->dtype = dt;
    v->rank = rank;
    for (int i = 0; i < KD_MAX_RANK; i++) {
        v->dims[i] = i < rank ? dims[i] : -1;
        if (i >= rank)
            v->dim_param[i] = NULL;
    }
}

const char *value_type_str(const Value *v, char *buf, size_t n)
{
    size_t len = (size_t)snprintf(buf, n, "%s", dtype_name(v->dtype));
    if (v->rank < 0) {
        if (len < n)
            snprintf(buf + len, n - len, "[?]");
        return buf;
    }
    if (len < n)
        len += (size_t)snprintf(buf + len, n - len, "[");
    for (int i = 0; i < v->rank && len < n; i++) {
        if (v->dims[i] >= 0)
            len += (size_t)snprintf(buf + len, n - len, "%s%" PRId64, i ? "," : "", v->dims[i]);
        else
            len += (size_t)snprintf(buf + len, n - len, "%s%s", i ? "," : "", v->dim_param[i] ? v->dim_param[i] : "?");
    }
    if (len < n)
        snprintf(buf + len, n - len, "]");
    return buf;
}

/* ---- attributes ---- */

const Attr *node_attr(const Node *n, const char *name)
{
    for (int i = 0; i < n->nattrs; i++)
        if (strcmp(n->attrs[i].name, name) == 0)
            return &n->attrs[i];
    return NULL;
}

int64_t attr_int(const Node *n, const char *name, int64_t def)
{
    const Attr *a = node_attr(n, name);
    if (!a)
        return def;
    if (a->type == AT_INT)
        return a->i;
    if (a->type == AT_FLOAT)
        return (int64_t)a->f;
    return def;
}

double attr_float(const Node *n, const char *name, double def)
{
    const Attr *a = node_attr(n, name);
    if (!a)
        return def;
    if (a->type == AT_FLOAT)
        return a->f;
    if (a->type == AT_INT)
        return (double)a->i;
    return def;
}

const char *attr_string(const Node *n, const char *name, const char *def)
{
    const Attr *a = node_attr(n, name);
    return (a && a->type == AT_STRING) ? a->s : def;
}

int attr_ints(const Node *n, const char *name, const int64_t **out)
{
    const Attr *a = node_attr(n, name);
    if (!a || a->type != AT_INTS)
        return -1;
    *out = a->ints;
    return a->n;
}

int attr_floats(const Node *n, const char *name, const double **out)
{
    const Attr *a = node_attr(n, name);
    if (!a || a->type != AT_FLOATS)
        return -1;
    *out = a->floats;
    return a->n;
}

const Tensor *attr_tensor(const Node *n, const char *name)
{
    const Attr *a = node_attr(n, name);
    return (a && a->type == AT_TENSOR) ? a->t : NULL;
}

/* ---- constants ---- */

int value_is_const(const Value *v)
{
    return v && v->role == VR_CONST && (v->data || value_numel(v) == 0);
}

double const_get_f64(const Value *v, int64_t i)
{
    return elem_get_f64(v->data, v->dtype, i);
}

int64_t const_get_i64(const Value *v, int64_t i)
{
    return elem_get_i64(v->data, v->dtype, i);
}

double tensor_get_f64(const Tensor *t, int64_t i)
{
    return elem_get_f64(t->data, t->dtype, i);
}

int64_t tensor_get_i64(const Tensor *t, int64_t i)
{
    return elem_get_i64(t->data, t->dtype, i);
}

void *value_make_const(Graph *g, Value *v, DType dt, int rank, const int64_t *dims)
{
    int64_t n = dims_numel(rank, dims);
    size_t es = dtype_size(dt);
    if (n < 0 || !es)
        return NULL;
    void *p = arena_array(g->arena, (size_t)(n ? n : 1), es);
    if (!p)
        return NULL;
    value_set_shape(v, dt, rank, dims);
    v->role = VR_CONST;
    v->data = p;
    v->nbytes = (size_t)n * es;
    return p;
}

int const_ints(const Value *v, int64_t *out, int max)
{
    if (!value_is_const(v) || v->rank > 1 || !(dtype_is_int(v->dtype) || v->dtype == DT_BOOL))
        return -1;
    int64_t n = value_numel(v);
    if (n < 0 || n > max)
        return -1;
    for (int64_t i = 0; i < n; i++)
        out[i] = const_get_i64(v, i);
    return (int)n;
}

/* ONNX export: a Graph into a ModelProto, packed by protobuf-c (see onnx_export.h).
 *
 * The protobuf structures are built in a scratch Arena that borrows strings and
 * data from the graph (protobuf-c only reads them while packing) and is freed
 * before returning.
 */
#include "frontends/onnx_export.h"
#include "frontends/data.h"

#include "onnx.pb-c.h"

#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define EXPORT_IR_VERSION 8
#define PROTOBUF_MAX_BYTES ((size_t)INT32_MAX) /* protobuf messages are limited to 2 GiB */

typedef struct Ex {
    Arena a;
    const Graph *g;
    Diag *d;
} Ex;

static int oom(Ex *x)
{
    return diag_error(x->d, NULL, "out of memory while exporting to ONNX");
}

static void *xarray(Ex *x, size_t n, size_t es)
{
    return arena_array(&x->a, n ? n : 1, es);
}

static char *str(const char *s)
{
    return (char *)(s ? s : ""); /* protobuf-c only reads strings while packing */
}

static int host_little(void)
{
    const uint16_t one = 1;
    return *(const uint8_t *)&one == 1;
}

/* ------------------------------------------------------------------ tensors */

static Onnx__TensorProto *make_tensor(Ex *x, const char *name, DType dt, int rank, const int64_t *dims,
                                      const void *data, size_t nbytes, const Node *n)
{
    size_t es = dtype_size(dt);
    if (!es || dt == DT_STRING || dt == DT_UNDEFINED) {
        diag_unsupported(x->d, n, "cannot export tensor '%s' of dtype %s", name ? name : "", dtype_name(dt));
        return NULL;
    }
    int64_t numel = dims_numel(rank, dims);
    if (numel < 0 || (uint64_t)numel > SIZE_MAX / es || (size_t)numel * es != nbytes || (nbytes && !data)) {
        diag_error(x->d, n, "cannot export tensor '%s': its data (%zu bytes) does not match its shape", name ? name : "", nbytes);
        return NULL;
    }
    Onnx__TensorProto *t = arena_alloc(&x->a, sizeof *t);
    int64_t *dd = xarray(x, (size_t)rank, sizeof(int64_t));
    if (!t || !dd) {
        oom(x);
        return NULL;
    }
    onnx__tensor_proto__init(t);
    if (name && name[0])
        t->name = str(name);
    t->has_data_type = 1;
    t->data_type = (int32_t)dt;
    t->n_dims = (size_t)rank;
    t->dims = dd;
    for (int i = 0; i < rank; i++)
        dd[i] = dims[i];
    t->has_raw_data = 1;
    t->raw_data.len = nbytes;
    t->raw_data.data = (uint8_t *)data;
    if (!host_little() && es > 1 && nbytes) {
        uint8_t *c = arena_alloc(&x->a, nbytes);
        if (!c) {
            oom(x);
            return NULL;
        }
        memcpy(c, data, nbytes);
        for (size_t i = 0; i + es <= nbytes; i += es)
            for (size_t j = 0; j < es / 2; j++) {
                uint8_t tmp = c[i + j];
                c[i + j] = c[i + es - 1 - j];
                c[i + es - 1 - j] = tmp;
            }
        t->raw_data.data = c;
    }
    return t;
}

static Onnx__TensorProto *tensor_from(Ex *x, const Tensor *tt, const Node *n)
{
    return make_tensor(x, tt->name, tt->dtype, tt->rank, tt->dims, tt->data, tt->nbytes, n);
}

/* ------------------------------------------------------------------ types */

static Onnx__ValueInfoProto *make_value_info(Ex *x, const Value *v)
{
    Onnx__ValueInfoProto *vi = arena_alloc(&x->a, sizeof *vi);
    Onnx__TypeProto *tp = arena_alloc(&x->a, sizeof *tp);
    Onnx__TypeProto__Tensor *tt = arena_alloc(&x->a, sizeof *tt);
    if (!vi || !tp || !tt) {
        oom(x);
        return NULL;
    }
    onnx__value_info_proto__init(vi);
    onnx__type_proto__init(tp);
    onnx__type_proto__tensor__init(tt);
    vi->name = str(v->name);
    vi->type = tp;
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    if (v->dtype != DT_UNDEFINED) {
        tt->has_elem_type = 1;
        tt->elem_type = (int32_t)v->dtype;
    }
    if (v->rank >= 0) {
        int rank = v->rank > KD_MAX_RANK ? KD_MAX_RANK : v->rank;
        Onnx__TensorShapeProto *sp = arena_alloc(&x->a, sizeof *sp);
        Onnx__TensorShapeProto__Dimension **dims = xarray(x, (size_t)rank, sizeof *dims);
        Onnx__TensorShapeProto__Dimension *dm = xarray(x, (size_t)rank, sizeof *dm);
        if (!sp || !dims || !dm) {
            oom(x);
            return NULL;
        }
        onnx__tensor_shape_proto__init(sp);
        sp->n_dim = (size_t)rank;
        sp->dim = dims;
        for (int i = 0; i < rank; i++) {
            onnx__tensor_shape_proto__dimension__init(&dm[i]);
            if (v->dims[i] >= 0) {
                dm[i].value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
                dm[i].dim_value = v->dims[i];
            } else if (v->dim_param[i] && v->dim_param[i][0]) {
                dm[i].value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
                dm[i].dim_param = str(v->dim_param[i]);
            }
            dims[i] = &dm[i];
        }
        tt->shape = sp;
    }
    return vi;
}

/* ------------------------------------------------------------------ nodes */

static int make_attr(Ex *x, const Node *n, const Attr *at, Onnx__AttributeProto *ap)
{
    onnx__attribute_proto__init(ap);
    ap->name = str(at->name);
    ap->has_type = 1;
    ap->type = (Onnx__AttributeProto__AttributeType)at->type;
    size_t cnt = at->n > 0 ? (size_t)at->n : 0;
    switch (at->type) {
    case AT_FLOAT:
        ap->has_f = 1;
        ap->f = (float)at->f;
        break;
    case AT_INT:
        ap->has_i = 1;
        ap->i = at->i;
        break;
    case AT_STRING:
        ap->has_s = 1;
        ap->s.data = (uint8_t *)str(at->s);
        ap->s.len = at->s ? (at->slen ? at->slen : strlen(at->s)) : 0;
        break;
    case AT_TENSOR:
        if (!at->t)
            return diag_error(x->d, n, "attribute '%s' has no tensor", at->name);
        if (!(ap->t = tensor_from(x, at->t, n)))
            return -1;
        break;
    case AT_FLOATS: {
        float *f = xarray(x, cnt, sizeof(float));
        if (!f)
            return oom(x);
        for (size_t i = 0; i < cnt; i++)
            f[i] = (float)at->floats[i];
        ap->n_floats = cnt;
        ap->floats = f;
        break;
    }
    case AT_INTS:
        ap->n_ints = cnt;
        ap->ints = cnt ? at->ints : NULL;
        break;
    case AT_STRINGS: {
        ProtobufCBinaryData *s = xarray(x, cnt, sizeof *s);
        if (!s)
            return oom(x);
        for (size_t i = 0; i < cnt; i++) {
            s[i].data = (uint8_t *)str(at->strings[i]);
            s[i].len = at->strings[i] ? strlen(at->strings[i]) : 0;
        }
        ap->n_strings = cnt;
        ap->strings = s;
        break;
    }
    case AT_TENSORS: {
        Onnx__TensorProto **ts = xarray(x, cnt, sizeof *ts);
        if (!ts)
            return oom(x);
        for (size_t i = 0; i < cnt; i++) {
            if (!at->tensors[i])
                return diag_error(x->d, n, "attribute '%s': tensor %zu is missing", at->name, i);
            if (!(ts[i] = tensor_from(x, at->tensors[i], n)))
                return -1;
        }
        ap->n_tensors = cnt;
        ap->tensors = ts;
        break;
    }
    default:
        return diag_unsupported(x->d, n, "cannot export attribute '%s' of type %d", at->name, (int)at->type);
    }
    return 0;
}

static const char *vname(const Graph *g, int id)
{
    return id >= 0 && id < g->nvalues ? g->values[id].name : "";
}

static Onnx__NodeProto *make_node(Ex *x, const Node *n)
{
    const Graph *g = x->g;
    Onnx__NodeProto *np = arena_alloc(&x->a, sizeof *np);
    char **in = xarray(x, (size_t)n->ninputs, sizeof(char *));
    char **out = xarray(x, (size_t)n->noutputs, sizeof(char *));
    Onnx__AttributeProto **aps = xarray(x, (size_t)n->nattrs, sizeof *aps);
    Onnx__AttributeProto *ad = xarray(x, (size_t)n->nattrs, sizeof *ad);
    if (!np || !in || !out || !aps || !ad) {
        oom(x);
        return NULL;
    }
    onnx__node_proto__init(np);
    np->op_type = str(n->op_type);
    if (n->name && n->name[0])
        np->name = str(n->name);
    if (n->domain && n->domain[0])
        np->domain = str(n->domain);
    for (int i = 0; i < n->ninputs; i++)
        in[i] = str(vname(g, n->inputs[i]));
    int nout = n->noutputs; /* a kernel's scratch output (passes/scratch.c) is not the model's */
    while (nout > 0 && n->outputs[nout - 1] >= 0 && n->outputs[nout - 1] < g->nvalues &&
           g->values[n->outputs[nout - 1]].is_scratch)
        nout--;
    for (int i = 0; i < nout; i++)
        out[i] = str(vname(g, n->outputs[i]));
    np->n_input = (size_t)n->ninputs;
    np->input = in;
    np->n_output = (size_t)nout;
    np->output = out;
    for (int i = 0; i < n->nattrs; i++) {
        if (make_attr(x, n, &n->attrs[i], &ad[i]))
            return NULL;
        aps[i] = &ad[i];
    }
    np->n_attribute = (size_t)n->nattrs;
    np->attribute = aps;
    return np;
}

/* ------------------------------------------------------------------ model */

static Onnx__OperatorSetIdProto *make_opset(Ex *x, const char *domain, int64_t version)
{
    Onnx__OperatorSetIdProto *o = arena_alloc(&x->a, sizeof *o);
    if (!o) {
        oom(x);
        return NULL;
    }
    onnx__operator_set_id_proto__init(o);
    o->domain = str(domain && strcmp(domain, "ai.onnx") != 0 ? domain : "");
    o->has_version = 1;
    o->version = version;
    return o;
}

static int same_domain(const char *a, const char *b)
{
    int da = !a || !a[0] || strcmp(a, "ai.onnx") == 0, db = !b || !b[0] || strcmp(b, "ai.onnx") == 0;
    if (da || db)
        return da && db;
    return strcmp(a, b) == 0;
}

static int build_opsets(Ex *x, Onnx__ModelProto *m)
{
    const Graph *g = x->g;
    size_t cap = (size_t)(g->nopsets > 0 ? g->nopsets : 0) + (size_t)g->nnodes + 1;
    Onnx__OperatorSetIdProto **os = xarray(x, cap, sizeof *os);
    if (!os)
        return oom(x);
    size_t k = 0;
    if (g->nopsets > 0) {
        for (int i = 0; i < g->nopsets; i++) {
            /* g->opset is what the nodes of the default domain were read and checked with */
            int64_t ver = same_domain(g->opset_domain[i], "") && g->opset > 0 ? g->opset : g->opset_version[i];
            if (!(os[k++] = make_opset(x, g->opset_domain[i], ver)))
                return -1;
        }
    } else if (g->opset > 0) {
        if (!(os[k++] = make_opset(x, "", g->opset)))
            return -1;
    }
    /* domains the nodes use that the list lacks (e.g. nodes added by passes) */
    for (int i = 0; i < g->nnodes; i++) {
        const Node *n = g->nodes[i];
        if (n->dead)
            continue;
        int found = 0;
        for (size_t j = 0; j < k && !found; j++)
            found = same_domain(os[j]->domain, n->domain);
        if (found)
            continue;
        int64_t ver = n->opset > 0 ? n->opset : (same_domain(n->domain, "") && g->opset > 0 ? g->opset : 1);
        if (!(os[k++] = make_opset(x, n->domain, ver)))
            return -1;
    }
    if (k == 0)
        return diag_error(x->d, NULL, "cannot export: the graph has no operator set version (opset)");
    m->n_opset_import = k;
    m->opset_import = os;
    return 0;
}

static int build_graph(Ex *x, Onnx__GraphProto *gp)
{
    const Graph *g = x->g;
    int nv = g->nvalues;
    /* 1: used by a live node or an output; 2: produced by a live node; 4: graph input */
    uint8_t *mark = xarray(x, (size_t)nv, 1);
    if (!mark)
        return oom(x);
    int nlive = 0;
    for (int i = 0; i < g->nnodes; i++) {
        const Node *n = g->nodes[i];
        if (n->dead)
            continue;
        nlive++;
        for (int j = 0; j < n->ninputs; j++)
            if (n->inputs[j] >= 0 && n->inputs[j] < nv)
                mark[n->inputs[j]] |= 1;
        for (int j = 0; j < n->noutputs; j++)
            if (n->outputs[j] >= 0 && n->outputs[j] < nv && !g->values[n->outputs[j]].is_scratch)
                mark[n->outputs[j]] |= 2;
    }
    for (int i = 0; i < g->noutputs; i++)
        mark[g->outputs[i]] |= 1;
    for (int i = 0; i < g->ninputs; i++)
        mark[g->inputs[i]] |= 4;

    onnx__graph_proto__init(gp);
    gp->name = str(g->name && g->name[0] ? g->name : "kdcc");
    if (g->doc && g->doc[0])
        gp->doc_string = str(g->doc);

    /* inputs and outputs */
    gp->input = xarray(x, (size_t)g->ninputs, sizeof *gp->input);
    gp->output = xarray(x, (size_t)g->noutputs, sizeof *gp->output);
    if (!gp->input || !gp->output)
        return oom(x);
    for (int i = 0; i < g->ninputs; i++)
        if (!(gp->input[gp->n_input++] = make_value_info(x, &g->values[g->inputs[i]])))
            return -1;
    for (int i = 0; i < g->noutputs; i++)
        if (!(gp->output[gp->n_output++] = make_value_info(x, &g->values[g->outputs[i]])))
            return -1;

    /* initializers and value_info */
    size_t ninit = 0, ninfo = 0;
    for (int id = 0; id < nv; id++) {
        const Value *v = &g->values[id];
        if (v->role == VR_CONST && ((mark[id] & 1) || (mark[id] & 4)) && !(mark[id] & 2))
            ninit++;
        else if (v->role == VR_INTERMEDIATE && (mark[id] & 2) && !v->is_output && v->dtype != DT_UNDEFINED)
            ninfo++;
    }
    gp->initializer = xarray(x, ninit, sizeof *gp->initializer);
    gp->value_info = xarray(x, ninfo, sizeof *gp->value_info);
    gp->node = xarray(x, (size_t)nlive, sizeof *gp->node);
    if (!gp->initializer || !gp->value_info || !gp->node)
        return oom(x);
    for (int id = 0; id < nv; id++) {
        const Value *v = &g->values[id];
        if (v->role == VR_CONST && ((mark[id] & 1) || (mark[id] & 4)) && !(mark[id] & 2)) {
            if (v->rank < 0)
                return diag_error(x->d, NULL, "cannot export constant '%s': its shape is not known", v->name);
            Onnx__TensorProto *t = make_tensor(x, v->name, v->dtype, v->rank, v->dims, v->data, v->nbytes, NULL);
            if (!t)
                return -1;
            gp->initializer[gp->n_initializer++] = t;
        } else if (v->role == VR_INTERMEDIATE && (mark[id] & 2) && !v->is_output && v->dtype != DT_UNDEFINED) {
            if (!(gp->value_info[gp->n_value_info++] = make_value_info(x, v)))
                return -1;
        }
    }

    /* nodes */
    for (int i = 0; i < g->nnodes; i++) {
        const Node *n = g->nodes[i];
        if (n->dead)
            continue;
        if (!(gp->node[gp->n_node++] = make_node(x, n)))
            return -1;
    }
    return 0;
}

int onnx_export_buffer(const Graph *g, uint8_t **buf, size_t *len, Diag *d)
{
    *buf = NULL;
    *len = 0;
    Ex x = {.g = g, .d = d};
    arena_init(&x.a);
    int rc = -1;
    Onnx__ModelProto m;
    Onnx__GraphProto gp;
    onnx__model_proto__init(&m);
    if (build_opsets(&x, &m) || build_graph(&x, &gp))
        goto out;
    m.graph = &gp;
    m.has_ir_version = 1;
    m.ir_version = g->ir_version > EXPORT_IR_VERSION ? g->ir_version : EXPORT_IR_VERSION;
    if (g->producer_name && g->producer_name[0]) {
        m.producer_name = str(g->producer_name);
        if (g->producer_version && g->producer_version[0])
            m.producer_version = str(g->producer_version);
    } else {
        m.producer_name = str("kdcc");
        m.producer_version = str(KDCC_VERSION);
    }
    if (g->model_domain && g->model_domain[0])
        m.domain = str(g->model_domain);
    if (g->model_version) {
        m.has_model_version = 1;
        m.model_version = g->model_version;
    }
    size_t n = onnx__model_proto__get_packed_size(&m);
    if (n > PROTOBUF_MAX_BYTES) {
        diag_unsupported(d, NULL, "the model is %zu bytes, over protobuf's 2 GiB limit (external data is not written yet)", n);
        goto out;
    }
    uint8_t *p = malloc(n ? n : 1);
    if (!p) {
        oom(&x);
        goto out;
    }
    size_t w = onnx__model_proto__pack(&m, p);
    if (w != n) {
        free(p);
        diag_error(d, NULL, "internal error: protobuf packing wrote %zu bytes, expected %zu", w, n);
        goto out;
    }
    *buf = p;
    *len = n;
    rc = 0;
out:
    arena_free(&x.a);
    return rc;
}

int onnx_export_file(const Graph *g, const char *path, Diag *d)
{
    uint8_t *buf;
    size_t len;
    if (onnx_export_buffer(g, &buf, &len, d))
        return -1;
    const void *parts[1] = {buf};
    size_t lens[1] = {len};
    int rc = data_save_atomic(path, parts, lens, 1, d);
    free(buf);
    return rc;
}

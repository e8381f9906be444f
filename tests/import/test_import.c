/* Unit tests of the ONNX binary importer (frontends/onnx_import.c, model_load.c).
 *
 *   test_import                 run all tests (real models from ../shared, crafted models, bad input)
 *   test_import --scan DIR      import every DIR/<test>/model.onnx; print "ok|unsupported|error<TAB>test<TAB>message"
 *                               and a summary; exit status 0 unless something crashed or an error had no message
 */
#include "frontends/onnx.h"
#include "onnx.pb-c.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef KDCC_SHARED_DIR
#error "KDCC_SHARED_DIR must point at the shared test data"
#endif
#ifndef KDCC_TMP_DIR
#error "KDCC_TMP_DIR must name a scratch folder under the build dir"
#endif

static int failures, checks;

#define CHECK(cond)                                                                 \
    do {                                                                            \
        checks++;                                                                   \
        if (!(cond)) {                                                              \
            failures++;                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                           \
    } while (0)

static const char *NODE = KDCC_SHARED_DIR "/onnx-tests/node";
static const char *MODELS = KDCC_SHARED_DIR "/onnx-tests/models";

/* ------------------------------------------------------------------ helpers */

static char *tmp_path(const char *name)
{
    static char buf[8][1024];
    static int k;
    char *p = buf[k++ & 7];
    snprintf(p, 1024, "%s/%s", KDCC_TMP_DIR, name);
    return p;
}

static void write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "cannot write %s: %s\n", path, strerror(errno));
        exit(2);
    }
    if (n)
        fwrite(data, 1, n, f);
    fclose(f);
}

static uint8_t *read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc((size_t)len + 1);
    *n = fread(p, 1, (size_t)len, f);
    fclose(f);
    return p;
}

/* Import expecting failure; the message must contain `want` (and be flagged unsupported iff unsup). */
static void expect_fail_file(const char *path, const ImportOptions *o, const char *want, int unsup, int line)
{
    Arena a;
    arena_init(&a);
    Diag d;
    diag_init(&d, path);
    Graph *g = onnx_import_file(&a, path, o, &d);
    checks++;
    if (g || !d.errors || !strstr(d.msg, want) || d.unsupported != unsup || strchr(d.msg, '\n')) {
        failures++;
        fprintf(stderr, "%s:%d: expected failure '%s'%s for %s, got %s: '%s' (unsupported=%d)\n", __FILE__, line,
                want, unsup ? " (unsupported)" : "", path, g ? "a graph" : "failure", d.msg, d.unsupported);
    }
    arena_free(&a);
}
#define EXPECT_FAIL(path, o, want, unsup) expect_fail_file(path, o, want, unsup, __LINE__)

static const Value *val(const Graph *g, const char *name)
{
    int id = graph_find(g, name);
    return id >= 0 ? &g->values[id] : NULL;
}

static int near(double a, double b)
{
    return fabs(a - b) <= 1e-6 * (1 + fabs(b));
}

/* ------------------------------------------------------------------ real models */

static void test_abs(void)
{
    Arena a;
    arena_init(&a);
    Diag d;
    char path[1024];
    snprintf(path, sizeof path, "%s/test_abs/model.onnx", NODE);
    diag_init(&d, path);
    Graph *g = onnx_import_file(&a, path, NULL, &d);
    CHECK(g != NULL);
    if (!g) {
        fprintf(stderr, "  %s\n", d.msg);
        arena_free(&a);
        return;
    }
    CHECK(g->nnodes == 1);
    CHECK(strcmp(g->nodes[0]->op_type, "Abs") == 0);
    CHECK(g->nodes[0]->opset == 13 && g->opset == 13);
    CHECK(g->ir_version == 7);
    CHECK(g->ninputs == 1 && g->noutputs == 1);
    const Value *x = &g->values[g->inputs[0]];
    CHECK(strcmp(x->name, "x") == 0 && x->role == VR_INPUT && x->dtype == DT_FLOAT);
    CHECK(x->rank == 3 && x->dims[0] == 3 && x->dims[1] == 4 && x->dims[2] == 5);
    const Value *y = &g->values[g->outputs[0]];
    CHECK(y->is_output && y->producer == 0 && y->dtype == DT_FLOAT);
    CHECK(g->nodes[0]->name[0]); /* synthesised if the model has none */

    Tensor t;
    snprintf(path, sizeof path, "%s/test_abs/test_data_set_0/input_0.pb", NODE);
    CHECK(onnx_read_tensor_file(&a, path, &t, &d) == 0);
    CHECK(t.dtype == DT_FLOAT && t.rank == 3 && t.dims[0] == 3 && t.dims[2] == 5 && t.nbytes == 60 * 4);
    if (t.data) {
        CHECK(near(((float *)t.data)[0], 1.7640524));
        CHECK(near(((float *)t.data)[1], 0.4001572));
        CHECK(near(((float *)t.data)[59], -0.36274117));
    }
    CHECK(t.name && strcmp(t.name, "x") == 0);
    arena_free(&a);
}

static void test_mnist(void)
{
    Arena a;
    arena_init(&a);
    Diag d;
    char path[1024];
    snprintf(path, sizeof path, "%s/mnist-8/model.onnx", MODELS);
    diag_init(&d, path);
    Graph *g = onnx_import_file(&a, path, NULL, &d);
    CHECK(g != NULL);
    if (!g) {
        fprintf(stderr, "  %s\n", d.msg);
        arena_free(&a);
        return;
    }
    CHECK(g->nnodes == 12 && g->ir_version == 3 && g->opset == 8);
    CHECK(strcmp(g->name, "CNTKGraph") == 0 && g->producer_name && strcmp(g->producer_name, "CNTK") == 0);
    /* IR 3: initializers are listed as inputs too; they become constants */
    CHECK(g->ninputs == 1 && strcmp(g->values[g->inputs[0]].name, "Input3") == 0);
    CHECK(g->noutputs == 1 && strcmp(g->values[g->outputs[0]].name, "Plus214_Output_0") == 0);
    const Value *w = val(g, "Parameter87"); /* float_data */
    CHECK(w && w->role == VR_CONST && w->dtype == DT_FLOAT && w->rank == 4);
    if (w) {
        CHECK(w->dims[0] == 16 && w->dims[1] == 8 && w->dims[2] == 5 && w->dims[3] == 5);
        CHECK(w->nbytes == 16 * 8 * 5 * 5 * 4);
        CHECK(near(const_get_f64(w, 0), -0.04855637) && near(const_get_f64(w, 1), -0.09101364));
        CHECK(near(const_get_f64(w, 16 * 8 * 25 - 1), -0.11389369));
    }
    const Value *s = val(g, "Pooling160_Output_0_reshape0_shape"); /* int64_data */
    CHECK(s && s->dtype == DT_INT64 && s->rank == 1 && s->dims[0] == 2);
    if (s)
        CHECK(const_get_i64(s, 0) == 1 && const_get_i64(s, 1) == 256);
    /* topological order: every input is defined before use */
    for (int i = 0; i < g->nnodes; i++)
        for (int j = 0; j < g->nodes[i]->ninputs; j++) {
            const Value *v = node_in(g, g->nodes[i], j);
            CHECK(v && (v->role != VR_INTERMEDIATE || (v->producer >= 0 && v->producer < i)));
        }
    /* inputs_as_params keeps initialized inputs as inputs */
    ImportOptions o = {.inputs_as_params = 1};
    Diag d2;
    diag_init(&d2, path);
    Graph *g2 = onnx_import_file(&a, path, &o, &d2);
    CHECK(g2 && g2->ninputs == 9);
    if (g2) {
        const Value *p = val(g2, "Parameter5");
        CHECK(p && p->role == VR_INPUT && p->dtype == DT_FLOAT && p->rank == 4 && p->dims[0] == 8);
    }
    arena_free(&a);
}

static void test_super_resolution(void)
{
    Arena a;
    arena_init(&a);
    Diag d;
    char path[1024];
    snprintf(path, sizeof path, "%s/super-resolution-10/model.onnx", MODELS);
    diag_init(&d, path);
    Graph *g = onnx_import_file(&a, path, NULL, &d);
    CHECK(g != NULL);
    if (!g) {
        fprintf(stderr, "  %s\n", d.msg);
        arena_free(&a);
        return;
    }
    CHECK(g->nnodes == 12 && g->ninputs == 1 && g->opset == 10);
    const Value *in = &g->values[g->inputs[0]];
    CHECK(strcmp(in->name, "input") == 0 && in->rank == 4 && in->dims[0] == -1);
    CHECK(in->dim_param[0] && strcmp(in->dim_param[0], "batch_size") == 0);
    CHECK(in->dims[1] == 1 && in->dims[2] == 224 && in->dim_param[1] == NULL);
    const Value *out = &g->values[g->outputs[0]];
    CHECK(out->dtype == DT_FLOAT && out->rank == 4 && out->dims[2] == 672);
    const Value *b = val(g, "conv1.bias"); /* raw_data */
    CHECK(b && b->role == VR_CONST && b->rank == 1 && b->dims[0] == 64);
    if (b)
        CHECK(near(const_get_f64(b, 0), 0.01281657) && near(const_get_f64(b, 1), 0.08157352));
    arena_free(&a);
}

/* ------------------------------------------------------------------ crafted models */

/* A one-node model: Y = Op(X, W) with initializer W, built with protobuf-c. */
typedef struct Mk {
    Onnx__ModelProto m;
    Onnx__GraphProto g;
    Onnx__OperatorSetIdProto os, *osp[2];
    Onnx__NodeProto node, *nodes[1];
    char *nin[2], *nout[1];
    Onnx__ValueInfoProto in, out, *ins[1], *outs[1];
    Onnx__TypeProto tin, tout;
    Onnx__TypeProto__Tensor ttin, ttout;
    Onnx__TensorShapeProto shp;
    Onnx__TensorShapeProto__Dimension dim0, *dims[1];
    Onnx__TensorProto w, *inits[1];
    int64_t wdims[KD_MAX_RANK + 2];
    float wdata[4];
    Onnx__AttributeProto attr, *attrs[1];
    Onnx__StringStringEntryProto ext[3], *extp[3];
    Onnx__FunctionProto fn, *fns[1];
} Mk;

static void mk_init(Mk *k)
{
    memset(k, 0, sizeof *k);
    onnx__model_proto__init(&k->m);
    onnx__graph_proto__init(&k->g);
    onnx__operator_set_id_proto__init(&k->os);
    onnx__node_proto__init(&k->node);
    onnx__value_info_proto__init(&k->in);
    onnx__value_info_proto__init(&k->out);
    onnx__type_proto__init(&k->tin);
    onnx__type_proto__init(&k->tout);
    onnx__type_proto__tensor__init(&k->ttin);
    onnx__type_proto__tensor__init(&k->ttout);
    onnx__tensor_shape_proto__init(&k->shp);
    onnx__tensor_shape_proto__dimension__init(&k->dim0);
    onnx__tensor_proto__init(&k->w);
    onnx__attribute_proto__init(&k->attr);
    onnx__function_proto__init(&k->fn);
    for (int i = 0; i < 3; i++) {
        onnx__string_string_entry_proto__init(&k->ext[i]);
        k->extp[i] = &k->ext[i];
    }
    k->m.has_ir_version = 1;
    k->m.ir_version = 8;
    k->os.domain = "";
    k->os.has_version = 1;
    k->os.version = 13;
    k->osp[0] = &k->os;
    k->m.n_opset_import = 1;
    k->m.opset_import = k->osp;
    k->m.producer_name = "test_import";
    k->m.graph = &k->g;
    k->g.name = "crafted";

    k->nin[0] = "X";
    k->nin[1] = "W";
    k->nout[0] = "Y";
    k->node.op_type = "Add";
    k->node.n_input = 2;
    k->node.input = k->nin;
    k->node.n_output = 1;
    k->node.output = k->nout;
    k->nodes[0] = &k->node;
    k->g.n_node = 1;
    k->g.node = k->nodes;

    k->dim0.value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
    k->dim0.dim_value = 4;
    k->dims[0] = &k->dim0;
    k->shp.n_dim = 1;
    k->shp.dim = k->dims;
    k->ttin.has_elem_type = 1;
    k->ttin.elem_type = DT_FLOAT;
    k->ttin.shape = &k->shp;
    k->tin.value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    k->tin.tensor_type = &k->ttin;
    k->in.name = "X";
    k->in.type = &k->tin;
    k->ins[0] = &k->in;
    k->g.n_input = 1;
    k->g.input = k->ins;
    k->ttout.has_elem_type = 1;
    k->ttout.elem_type = DT_FLOAT;
    k->tout.value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    k->tout.tensor_type = &k->ttout;
    k->out.name = "Y";
    k->out.type = &k->tout;
    k->outs[0] = &k->out;
    k->g.n_output = 1;
    k->g.output = k->outs;

    for (int i = 0; i < 4; i++)
        k->wdata[i] = (float)i + 0.5f;
    k->w.name = "W";
    k->w.has_data_type = 1;
    k->w.data_type = DT_FLOAT;
    k->wdims[0] = 4;
    k->w.n_dims = 1;
    k->w.dims = k->wdims;
    k->w.has_raw_data = 1;
    k->w.raw_data.len = sizeof k->wdata;
    k->w.raw_data.data = (uint8_t *)k->wdata;
    k->inits[0] = &k->w;
    k->g.n_initializer = 1;
    k->g.initializer = k->inits;
}

static void mk_attr(Mk *k)
{
    k->attrs[0] = &k->attr;
    k->node.n_attribute = 1;
    k->node.attribute = k->attrs;
}

static void mk_external(Mk *k, const char *location, const char *offset, const char *length)
{
    k->w.has_raw_data = 0;
    k->w.has_data_location = 1;
    k->w.data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    size_t n = 0;
    k->ext[n].key = "location";
    k->ext[n++].value = (char *)location;
    if (offset) {
        k->ext[n].key = "offset";
        k->ext[n++].value = (char *)offset;
    }
    if (length) {
        k->ext[n].key = "length";
        k->ext[n++].value = (char *)length;
    }
    k->w.n_external_data = n;
    k->w.external_data = k->extp;
}

static void mk_save(Mk *k, const char *path)
{
    size_t n = onnx__model_proto__get_packed_size(&k->m);
    uint8_t *buf = malloc(n ? n : 1);
    onnx__model_proto__pack(&k->m, buf);
    write_file(path, buf, n);
    free(buf);
}

/* Save k as NAME in the temp dir and import it; returns the graph (arena a) or NULL with d set. */
static Graph *mk_import(Mk *k, const char *name, Arena *a, Diag *d, const ImportOptions *o)
{
    const char *path = tmp_path(name);
    mk_save(k, path);
    diag_init(d, path);
    return onnx_import_file(a, path, o, d);
}

static void expect_mk_fail(Mk *k, const char *want, int unsup, int line)
{
    const char *path = tmp_path("crafted.onnx");
    mk_save(k, path);
    expect_fail_file(path, NULL, want, unsup, line);
}
#define EXPECT_MK_FAIL(k, want, unsup) expect_mk_fail(k, want, unsup, __LINE__)

static void test_crafted_ok(void)
{
    Mk k;
    Arena a;
    Diag d;
    arena_init(&a);

    /* raw data, unnamed node, dim_param, domain "ai.onnx", extra domain listed */
    mk_init(&k);
    k.dim0.value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
    k.dim0.dim_param = "N";
    Onnx__OperatorSetIdProto ml;
    onnx__operator_set_id_proto__init(&ml);
    ml.domain = "ai.onnx.ml";
    ml.has_version = 1;
    ml.version = 3;
    k.osp[1] = &ml;
    k.m.n_opset_import = 2;
    k.node.domain = "ai.onnx";
    Graph *g = mk_import(&k, "ok1.onnx", &a, &d, NULL);
    CHECK(g != NULL);
    if (g) {
        CHECK(g->nnodes == 1 && strcmp(g->nodes[0]->name, "Add_0") == 0 && g->nodes[0]->domain[0] == 0);
        CHECK(g->nodes[0]->opset == 13 && g->nopsets == 2);
        const Value *x = val(g, "X");
        CHECK(x && x->rank == 1 && x->dims[0] == -1 && x->dim_param[0] && strcmp(x->dim_param[0], "N") == 0);
        const Value *w = val(g, "W");
        CHECK(w && w->role == VR_CONST && w->nbytes == 16 && near(const_get_f64(w, 3), 3.5));
        CHECK(strcmp(g->name, "crafted") == 0);
        const Value *y = val(g, "Y");
        CHECK(y && y->is_output && y->dtype == DT_FLOAT && y->rank == -1);
    } else
        fprintf(stderr, "  %s\n", d.msg);

    /* a dim with neither value nor param; typed float_data; every attribute kind */
    mk_init(&k);
    k.dim0.value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE__NOT_SET;
    k.w.has_raw_data = 0;
    k.w.n_float_data = 4;
    k.w.float_data = k.wdata;
    Onnx__AttributeProto at[8], *atp[8];
    float fl[2] = {1.5f, -2};
    int64_t il[3] = {1, -2, 3};
    ProtobufCBinaryData sl[2] = {{1, (uint8_t *)"a"}, {2, (uint8_t *)"bc"}};
    int32_t i32[3] = {1, 0, 1};
    Onnx__TensorProto bt;
    onnx__tensor_proto__init(&bt);
    int64_t bdim = 3;
    bt.has_data_type = 1;
    bt.data_type = DT_BOOL;
    bt.n_dims = 1;
    bt.dims = &bdim;
    bt.n_int32_data = 3;
    bt.int32_data = i32;
    Onnx__TensorProto ht = bt, u32 = bt, *tl[2] = {&ht, &u32};
    int32_t hbits[3] = {0x3c00, 0xc000, 0x7c00};
    ht.data_type = DT_FLOAT16;
    ht.int32_data = hbits;
    uint64_t u64[3] = {1, 4000000000u, 7};
    u32.data_type = DT_UINT32;
    u32.n_int32_data = 0;
    u32.int32_data = NULL;
    u32.n_uint64_data = 3;
    u32.uint64_data = u64;
    for (int i = 0; i < 8; i++) {
        onnx__attribute_proto__init(&at[i]);
        at[i].has_type = 1;
        atp[i] = &at[i];
    }
    at[0].name = "f"; at[0].type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT; at[0].has_f = 1; at[0].f = 0.25f;
    at[1].name = "i"; at[1].type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT; at[1].has_i = 1; at[1].i = -7;
    at[2].name = "s"; at[2].type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING; at[2].has_s = 1;
    at[2].s.len = 3; at[2].s.data = (uint8_t *)"abc";
    at[3].name = "t"; at[3].type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR; at[3].t = &bt;
    at[4].name = "fs"; at[4].type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS; at[4].n_floats = 2; at[4].floats = fl;
    at[5].name = "is"; at[5].type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS; at[5].n_ints = 3; at[5].ints = il;
    at[6].name = "ss"; at[6].type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS; at[6].n_strings = 2; at[6].strings = sl;
    at[7].name = "ts"; at[7].type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSORS; at[7].n_tensors = 2; at[7].tensors = tl;
    at[1].has_type = 0; /* old models: type inferred from the field that is set */
    k.node.n_attribute = 8;
    k.node.attribute = atp;
    k.node.name = "my_add";
    g = mk_import(&k, "ok2.onnx", &a, &d, NULL);
    CHECK(g != NULL);
    if (g) {
        const Node *n = g->nodes[0];
        CHECK(strcmp(n->name, "my_add") == 0 && n->nattrs == 8);
        CHECK(attr_float(n, "f", 0) == 0.25 && attr_int(n, "i", 0) == -7);
        CHECK(strcmp(attr_string(n, "s", ""), "abc") == 0);
        const Tensor *t = attr_tensor(n, "t");
        CHECK(t && t->dtype == DT_BOOL && t->nbytes == 3 && ((uint8_t *)t->data)[0] == 1 && ((uint8_t *)t->data)[1] == 0);
        const double *fs;
        const int64_t *is;
        CHECK(attr_floats(n, "fs", &fs) == 2 && fs[0] == 1.5 && fs[1] == -2);
        CHECK(attr_ints(n, "is", &is) == 3 && is[1] == -2);
        const Attr *ss = node_attr(n, "ss");
        CHECK(ss && ss->type == AT_STRINGS && ss->n == 2 && strcmp(ss->strings[1], "bc") == 0);
        const Attr *ts = node_attr(n, "ts");
        CHECK(ts && ts->type == AT_TENSORS && ts->n == 2);
        if (ts && ts->n == 2) {
            CHECK(ts->tensors[0]->dtype == DT_FLOAT16 && tensor_get_f64(ts->tensors[0], 1) == -2.0);
            CHECK(((uint16_t *)ts->tensors[0]->data)[2] == 0x7c00);
            CHECK(ts->tensors[1]->dtype == DT_UINT32 && ((uint32_t *)ts->tensors[1]->data)[1] == 4000000000u);
        }
        const Value *x = val(g, "X");
        CHECK(x && x->rank == 1 && x->dims[0] == -1 && x->dim_param[0] == NULL);
        const Value *w = val(g, "W");
        CHECK(w && near(const_get_f64(w, 2), 2.5));
    } else
        fprintf(stderr, "  %s\n", d.msg);

    /* omitted optional input "" -> -1; input with initializer becomes a constant */
    mk_init(&k);
    k.nin[1] = "";
    k.node.op_type = "Relu";
    k.in.name = "W"; /* the graph input is W, which has an initializer */
    k.nin[0] = "W";
    g = mk_import(&k, "ok3.onnx", &a, &d, NULL);
    CHECK(g != NULL);
    if (g) {
        CHECK(g->nodes[0]->ninputs == 2 && g->nodes[0]->inputs[1] == -1);
        CHECK(g->ninputs == 0 && val(g, "W")->role == VR_CONST);
    } else
        fprintf(stderr, "  %s\n", d.msg);

    /* external data beside the model, with offset and length */
    mk_init(&k);
    char blob[4 + sizeof k.wdata];
    memcpy(blob, "abcd", 4);
    memcpy(blob + 4, k.wdata, sizeof k.wdata);
    mkdir(tmp_path("ext"), 0755);
    mkdir(tmp_path("ext/sub"), 0755);
    write_file(tmp_path("ext/sub/w.bin"), blob, sizeof blob);
    mk_external(&k, "sub/w.bin", "4", "16");
    g = mk_import(&k, "ext/model.onnx", &a, &d, NULL);
    CHECK(g != NULL);
    if (g) {
        const Value *w = val(g, "W");
        CHECK(w && w->nbytes == 16 && near(const_get_f64(w, 0), 0.5) && near(const_get_f64(w, 3), 3.5));
    } else
        fprintf(stderr, "  %s\n", d.msg);
    /* without length: the rest of the file */
    write_file(tmp_path("ext/w2.bin"), k.wdata, sizeof k.wdata);
    mk_external(&k, "w2.bin", NULL, NULL);
    g = mk_import(&k, "ext/model2.onnx", &a, &d, NULL);
    CHECK(g != NULL);
    if (!g)
        fprintf(stderr, "  %s\n", d.msg);

    /* onnx_import_buffer without a path */
    mk_init(&k);
    size_t n = onnx__model_proto__get_packed_size(&k.m);
    uint8_t *buf = malloc(n);
    onnx__model_proto__pack(&k.m, buf);
    diag_init(&d, NULL);
    g = onnx_import_buffer(&a, buf, n, NULL, NULL, &d);
    CHECK(g && g->nnodes == 1);
    diag_init(&d, NULL);
    CHECK(onnx_import_buffer(&a, buf, n / 2, NULL, NULL, &d) == NULL && strstr(d.msg, "not a valid ONNX model"));
    free(buf);
    arena_free(&a);
}

static void test_crafted_bad(void)
{
    Mk k;

    /* data shorter / longer than the shape */
    mk_init(&k);
    k.w.raw_data.len = 8;
    EXPECT_MK_FAIL(&k, "data shorter than the shape", 0);
    mk_init(&k);
    k.w.raw_data.len = 12;
    k.wdims[0] = 2;
    EXPECT_MK_FAIL(&k, "data longer than the shape", 0);
    mk_init(&k);
    k.w.has_raw_data = 0;
    k.w.n_float_data = 3;
    k.w.float_data = k.wdata;
    EXPECT_MK_FAIL(&k, "data shorter than the shape", 0);
    mk_init(&k);
    k.w.has_raw_data = 0;
    EXPECT_MK_FAIL(&k, "has 0 values but shape float[4] needs 4", 0);

    /* dims: negative, overflowing, too many */
    mk_init(&k);
    k.wdims[0] = -4;
    EXPECT_MK_FAIL(&k, "negative dimension", 0);
    mk_init(&k);
    k.w.n_dims = 3;
    k.wdims[0] = k.wdims[1] = k.wdims[2] = (int64_t)1 << 30;
    EXPECT_MK_FAIL(&k, "overflows", 0);
    mk_init(&k);
    k.w.n_dims = KD_MAX_RANK + 1;
    for (int i = 0; i < KD_MAX_RANK + 1; i++)
        k.wdims[i] = 1;
    EXPECT_MK_FAIL(&k, "rank 9", 1);

    /* dtypes without a native layout */
    mk_init(&k);
    k.w.data_type = DT_STRING;
    EXPECT_MK_FAIL(&k, "string tensors are not supported", 1);
    mk_init(&k);
    k.w.data_type = DT_FLOAT8E4M3FN;
    EXPECT_MK_FAIL(&k, "float8e4m3fn", 1);
    mk_init(&k);
    k.w.data_type = DT_INT4;
    EXPECT_MK_FAIL(&k, "int4", 1);
    mk_init(&k);
    k.w.data_type = 99;
    EXPECT_MK_FAIL(&k, "unknown data type 99", 0);
    mk_init(&k);
    k.ttin.elem_type = DT_STRING;
    EXPECT_MK_FAIL(&k, "graph input 'X' has dtype string", 1);

    /* external data that escapes the model's folder */
    write_file(tmp_path("outside.bin"), k.wdata, sizeof k.wdata);
    mkdir(tmp_path("esc"), 0755);
    mk_init(&k);
    mk_external(&k, "../outside.bin", NULL, NULL);
    mk_save(&k, tmp_path("esc/model.onnx"));
    EXPECT_FAIL(tmp_path("esc/model.onnx"), NULL, "must be a relative path inside the model's folder", 0);
    mk_init(&k);
    mk_external(&k, "sub/../../outside.bin", NULL, NULL);
    mk_save(&k, tmp_path("esc/model.onnx"));
    EXPECT_FAIL(tmp_path("esc/model.onnx"), NULL, "no '..'", 0);
    mk_init(&k);
    mk_external(&k, tmp_path("outside.bin"), NULL, NULL); /* absolute */
    mk_save(&k, tmp_path("esc/model.onnx"));
    EXPECT_FAIL(tmp_path("esc/model.onnx"), NULL, "no absolute paths", 0);
    unlink(tmp_path("esc/link.bin"));
    if (symlink("../outside.bin", tmp_path("esc/link.bin")) == 0) {
        mk_init(&k);
        mk_external(&k, "link.bin", NULL, NULL);
        mk_save(&k, tmp_path("esc/model.onnx"));
        EXPECT_FAIL(tmp_path("esc/model.onnx"), NULL, "resolves outside the model's folder", 0);
    }
    mk_init(&k);
    mk_external(&k, "missing.bin", NULL, NULL);
    mk_save(&k, tmp_path("esc/model.onnx"));
    EXPECT_FAIL(tmp_path("esc/model.onnx"), NULL, "cannot open external data file", 0);
    /* external data shorter than the shape, length past the end */
    write_file(tmp_path("esc/short.bin"), k.wdata, 8);
    mk_init(&k);
    mk_external(&k, "short.bin", NULL, NULL);
    mk_save(&k, tmp_path("esc/model.onnx"));
    EXPECT_FAIL(tmp_path("esc/model.onnx"), NULL, "data shorter than the shape", 0);
    mk_init(&k);
    mk_external(&k, "short.bin", "4", "16");
    mk_save(&k, tmp_path("esc/model.onnx"));
    EXPECT_FAIL(tmp_path("esc/model.onnx"), NULL, "is too short", 0);
    mk_init(&k);
    mk_external(&k, "short.bin", "-1", NULL);
    mk_save(&k, tmp_path("esc/model.onnx"));
    EXPECT_FAIL(tmp_path("esc/model.onnx"), NULL, "not a non-negative integer", 0);

    /* subgraphs, functions, sparse, ref_attr_name */
    mk_init(&k);
    mk_attr(&k);
    Onnx__GraphProto body;
    onnx__graph_proto__init(&body);
    k.attr.name = "then_branch";
    k.attr.has_type = 1;
    k.attr.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH;
    k.attr.g = &body;
    EXPECT_MK_FAIL(&k, "subgraphs (If/Loop/Scan bodies) are not supported yet", 1);
    mk_init(&k);
    mk_attr(&k);
    k.attr.name = "alpha";
    k.attr.ref_attr_name = "a";
    k.attr.has_type = 1;
    k.attr.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
    EXPECT_MK_FAIL(&k, "ref_attr_name", 1);
    mk_init(&k);
    mk_attr(&k);
    k.attr.name = "st";
    k.attr.has_type = 1;
    k.attr.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__SPARSE_TENSOR;
    EXPECT_MK_FAIL(&k, "sparse tensor attribute 'st'", 1);
    mk_init(&k);
    k.node.op_type = "MyFn";
    k.node.domain = "local";
    k.node.name = "call_fn";
    k.fn.name = "MyFn";
    k.fn.domain = "local";
    k.fns[0] = &k.fn;
    k.m.n_functions = 1;
    k.m.functions = k.fns;
    EXPECT_MK_FAIL(&k, "node 'call_fn' (MyFn): ONNX functions are not supported yet", 1);
    mk_init(&k);
    Onnx__TypeProto__Sequence seq;
    onnx__type_proto__sequence__init(&seq);
    k.tin.value_case = ONNX__TYPE_PROTO__VALUE_SEQUENCE_TYPE;
    k.tin.sequence_type = &seq;
    EXPECT_MK_FAIL(&k, "graph input 'X' has a sequence type", 1);

    /* structural errors */
    mk_init(&k);
    k.nin[1] = "nowhere";
    k.g.n_initializer = 0;
    EXPECT_MK_FAIL(&k, "input 'nowhere' is never defined", 0);
    mk_init(&k);
    k.out.name = "Z";
    EXPECT_MK_FAIL(&k, "graph output 'Z' is never defined", 0);
    mk_init(&k);
    k.nout[0] = "X";
    k.out.name = "X";
    EXPECT_MK_FAIL(&k, "produced more than once", 0);
    mk_init(&k);
    k.m.n_opset_import = 0;
    EXPECT_MK_FAIL(&k, "not a valid ONNX model (it has no opset_import)", 0);
    mk_init(&k);
    k.m.graph = NULL;
    EXPECT_MK_FAIL(&k, "not a valid ONNX model (it has no graph)", 0);
    mk_init(&k);
    k.os.domain = "ai.onnx.ml";
    EXPECT_MK_FAIL(&k, "does not import a version of the default ONNX operator set", 0);

    /* a model over the size limit is refused before it is read */
    mk_init(&k);
    mk_save(&k, tmp_path("limit.onnx"));
    ImportOptions o = {.max_model_bytes = 16};
    EXPECT_FAIL(tmp_path("limit.onnx"), &o, "larger than the limit of 16 bytes", 0);
}

/* ------------------------------------------------------------------ bad files */

static void test_bad_files(void)
{
    char path[1024];
    size_t n;
    snprintf(path, sizeof path, "%s/mnist-8/model.onnx", MODELS);
    uint8_t *model = read_all(path, &n);
    CHECK(model != NULL);
    if (!model)
        return;
    /* truncated at many points: never a crash, always one clear line */
    const char *trunc = tmp_path("truncated.onnx");
    write_file(trunc, model, n / 2);
    EXPECT_FAIL(trunc, NULL, "truncated.onnx: not a valid ONNX model (", 0);
    for (size_t cut = 1; cut < n; cut += n / 37 + 1) {
        Arena a;
        arena_init(&a);
        Diag d;
        diag_init(&d, "cut");
        Graph *g = onnx_import_buffer(&a, model, cut, "cut", NULL, &d);
        CHECK(g == NULL && d.errors > 0 && d.msg[0]);
        arena_free(&a);
    }
    /* a corrupt byte here and there */
    srand(7);
    for (int i = 0; i < 200; i++) {
        uint8_t *c = malloc(n);
        memcpy(c, model, n);
        for (int j = 0; j < 4; j++)
            c[(size_t)rand() % n] = (uint8_t)rand();
        Arena a;
        arena_init(&a);
        Diag d;
        diag_init(&d, "corrupt");
        Graph *g = onnx_import_buffer(&a, c, n, "corrupt", NULL, &d);
        CHECK(g != NULL || (d.errors > 0 && d.msg[0]));
        arena_free(&a);
        free(c);
    }
    free(model);

    /* random bytes */
    uint8_t rnd[4096];
    for (size_t i = 0; i < sizeof rnd; i++)
        rnd[i] = (uint8_t)(rand() >> 3);
    write_file(tmp_path("random.onnx"), rnd, sizeof rnd);
    EXPECT_FAIL(tmp_path("random.onnx"), NULL, "not a valid ONNX model (", 0);
    /* empty file */
    write_file(tmp_path("empty.onnx"), "", 0);
    EXPECT_FAIL(tmp_path("empty.onnx"), NULL, "not a valid ONNX model (empty file)", 0);
    /* PNG */
    static const uint8_t png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R',
                                  0, 0, 0, 1, 0, 0, 0, 1, 8, 6, 0, 0, 0, 0x1f, 0x15, 0xc4, 0x89};
    write_file(tmp_path("image.onnx"), png, sizeof png);
    EXPECT_FAIL(tmp_path("image.onnx"), NULL, "not a valid ONNX model (this is a PNG image)", 0);
    /* a text file */
    const char *txt = "hello, this is not a model\n";
    write_file(tmp_path("notes.onnx"), txt, strlen(txt));
    EXPECT_FAIL(tmp_path("notes.onnx"), NULL, "not a valid ONNX model (", 0);
    /* missing file, a folder */
    EXPECT_FAIL(tmp_path("does-not-exist.onnx"), NULL, "does-not-exist.onnx", 0);
    EXPECT_FAIL(KDCC_TMP_DIR, NULL, "is not a regular file", 0);

    /* tensor files */
    Arena a;
    arena_init(&a);
    Diag d;
    Tensor t;
    diag_init(&d, "model.onnx");
    CHECK(onnx_read_tensor_file(&a, tmp_path("empty.onnx"), &t, &d) != 0 && strstr(d.msg, "empty.onnx: not a valid ONNX tensor"));
    CHECK(d.file && strcmp(d.file, "model.onnx") == 0);
    diag_init(&d, NULL);
    CHECK(onnx_read_tensor_file(&a, tmp_path("nope.pb"), &t, &d) != 0 && strstr(d.msg, "nope.pb"));
    /* a sequence value is not a tensor */
    snprintf(path, sizeof path, "%s/test_identity_sequence/test_data_set_0/input_0.pb", NODE);
    diag_init(&d, NULL);
    CHECK(onnx_read_tensor_file(&a, path, &t, &d) != 0 && d.unsupported && strstr(d.msg, "sequence or optional"));
    arena_free(&a);
}

static void test_model_load(void)
{
    Arena a;
    arena_init(&a);
    Diag d;
    char path[1024];
    snprintf(path, sizeof path, "%s/test_relu/model.onnx", NODE);
    diag_init(&d, path);
    Graph *g = model_load(&a, path, NULL, &d);
    CHECK(g && g->nnodes == 1 && strcmp(g->nodes[0]->op_type, "Relu") == 0);
    /* a binary model under another name is still read as binary */
    size_t n;
    uint8_t *buf = read_all(path, &n);
    if (buf) {
        write_file(tmp_path("relu.model"), buf, n);
        free(buf);
        diag_init(&d, tmp_path("relu.model"));
        g = model_load(&a, tmp_path("relu.model"), NULL, &d);
        CHECK(g && g->nnodes == 1);
    }
    diag_init(&d, tmp_path("missing.onnx"));
    CHECK(model_load(&a, tmp_path("missing.onnx"), NULL, &d) == NULL && strstr(d.msg, "missing.onnx") &&
          strstr(d.msg, "cannot open"));
    /* textual syntax by extension and by content: handed to the text parser */
    const char *text = "<ir_version: 8, opset_import: [\"\" : 13]>\n"
                       "agraph (float[4] X) => (float[4] Y) {\n    Y = Relu(X)\n}\n";
    write_file(tmp_path("relu.txt"), text, strlen(text));
    write_file(tmp_path("relu.model2"), text, strlen(text));
    diag_init(&d, tmp_path("relu.txt"));
    g = model_load(&a, tmp_path("relu.txt"), NULL, &d);
    CHECK(g && g->nnodes == 1);
    if (!g)
        fprintf(stderr, "  %s\n", d.msg);
    diag_init(&d, tmp_path("relu.model2"));
    g = model_load(&a, tmp_path("relu.model2"), NULL, &d);
    CHECK(g && g->nnodes == 1);
    arena_free(&a);
}

/* ------------------------------------------------------------------ scan */

static int scan(const char *dir)
{
    DIR *dp = opendir(dir);
    if (!dp) {
        fprintf(stderr, "cannot open %s\n", dir);
        return 2;
    }
    struct dirent *e;
    int ok = 0, unsup = 0, err = 0, bad = 0, tok = 0, tunsup = 0, terr = 0;
    while ((e = readdir(dp))) {
        if (e->d_name[0] == '.')
            continue;
        char path[2048];
        size_t nl = strlen(e->d_name);
        if (nl > 5 && strcmp(e->d_name + nl - 5, ".onnx") == 0)
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        else
            snprintf(path, sizeof path, "%s/%s/model.onnx", dir, e->d_name);
        if (access(path, R_OK) != 0)
            continue;
        /* the test data tensors too */
        for (int io = 0; io < 2; io++)
            for (int k = 0;; k++) {
                char tp[2100];
                snprintf(tp, sizeof tp, "%s/%s/test_data_set_0/%s_%d.pb", dir, e->d_name, io ? "output" : "input", k);
                if (access(tp, R_OK) != 0)
                    break;
                Arena ta;
                arena_init(&ta);
                Diag td;
                diag_init(&td, NULL);
                Tensor t;
                if (onnx_read_tensor_file(&ta, tp, &t, &td) == 0)
                    tok++;
                else {
                    if (!td.msg[0] || strchr(td.msg, '\n'))
                        bad++;
                    printf("# tensor %s: %s\n", td.unsupported ? "unsupported" : "error", td.msg);
                    if (td.unsupported)
                        tunsup++;
                    else
                        terr++;
                }
                arena_free(&ta);
            }
        Arena a;
        arena_init(&a);
        Diag d;
        diag_init(&d, path);
        Graph *g = onnx_import_file(&a, path, NULL, &d);
        if (g) {
            ok++;
            printf("ok\t%s\t\n", e->d_name);
        } else {
            if (!d.msg[0] || strchr(d.msg, '\n'))
                bad++;
            const char *m = strncmp(d.msg, path, strlen(path)) == 0 ? d.msg + strlen(path) + 2 : d.msg;
            printf("%s\t%s\t%s\n", d.unsupported ? "unsupported" : "error", e->d_name, m);
            if (d.unsupported)
                unsup++;
            else
                err++;
        }
        arena_free(&a);
    }
    closedir(dp);
    printf("# test data tensors: read %d, unsupported %d, error %d\n", tok, tunsup, terr);
    printf("# imported %d, unsupported %d, error %d, errors without a message %d\n", ok, unsup, err, bad);
    return bad ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--scan") == 0)
        return scan(argv[2]);
    mkdir(KDCC_TMP_DIR, 0755);
    test_abs();
    test_mnist();
    test_super_resolution();
    test_crafted_ok();
    test_crafted_bad();
    test_bad_files();
    test_model_load();
    printf("test_import: %d checks, %d failed\n", checks, failures);
    return failures ? 1 : 0;
}

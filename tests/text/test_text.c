/* Unit tests of the ONNX textual syntax (frontends/onnx_text_*).
 *
 *   test_text               parse the samples and check the IR; print -> parse -> print fixed
 *                           points; errors (one line with FILE:LINE:COL, never a crash);
 *                           truncated and mutated inputs
 *   test_text --binary      every importable ../shared/onnx-tests model: binary -> IR -> text
 *                           -> IR -> text gives the same text and the same graph
 *   test_text --print FILE  print a model (.onnx or text) in the textual syntax
 */
#include "frontends/onnx.h"

#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef KDCC_TEXT_SAMPLES
#error "KDCC_TEXT_SAMPLES must name tests/text/samples"
#endif

static int failures, checks;

#define HDR "<ir_version: 8, opset_import: [\"\" : 17]>\n"

#define CHECK(cond)                                                                 \
    do {                                                                            \
        checks++;                                                                   \
        if (!(cond)) {                                                              \
            failures++;                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                           \
    } while (0)

/* ------------------------------------------------------------------ helpers */

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        n += fread(buf + n, 1, cap - n - 1, f);
        if (n < cap - 1)
            break;
        cap *= 2;
        buf = realloc(buf, cap);
    }
    fclose(f);
    buf[n] = 0;
    if (len)
        *len = n;
    return buf;
}

static const char *sample(const char *name)
{
    static char buf[4][1024];
    static int k;
    char *p = buf[k++ & 3];
    snprintf(p, 1024, "%s/%s", KDCC_TEXT_SAMPLES, name);
    return p;
}

static Graph *parse_str(Arena *a, const char *s, Diag *d)
{
    diag_init(d, NULL);
    d->quiet_warnings = 1;
    return onnx_text_parse(a, s, strlen(s), "t.txt", d);
}

static char *print_graph(const Graph *g)
{
    Writer w;
    w_init(&w);
    onnx_text_print(g, &w);
    if (w.oom || !w.buf) {
        w_free(&w);
        return strdup("<oom>");
    }
    return w.buf;
}

static const Value *val(const Graph *g, const char *name)
{
    int id = graph_find(g, name);
    return id >= 0 ? &g->values[id] : NULL;
}

static const Node *node_named(const Graph *g, const char *name)
{
    for (int i = 0; i < g->nnodes; i++)
        if (strcmp(g->nodes[i]->name, name) == 0)
            return g->nodes[i];
    return NULL;
}

static int same_str(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

/* ------------------------------------------------------------------ graph comparison */

static char why[512];

#define DIFF(...) (snprintf(why, sizeof why, __VA_ARGS__), 0)

static int same_elems(const void *a, const void *b, size_t nbytes, DType dt)
{
    if (dt == DT_FLOAT) {
        const uint32_t *x = a, *y = b;
        for (size_t i = 0; i < nbytes / 4; i++) {
            float fx, fy;
            memcpy(&fx, &x[i], 4);
            memcpy(&fy, &y[i], 4);
            if (x[i] != y[i] && !(isnan(fx) && isnan(fy)))
                return 0;
        }
        return 1;
    }
    if (dt == DT_DOUBLE) {
        const uint64_t *x = a, *y = b;
        for (size_t i = 0; i < nbytes / 8; i++) {
            double fx, fy;
            memcpy(&fx, &x[i], 8);
            memcpy(&fy, &y[i], 8);
            if (x[i] != y[i] && !(isnan(fx) && isnan(fy)))
                return 0;
        }
        return 1;
    }
    return nbytes == 0 || memcmp(a, b, nbytes) == 0;
}

static int same_tensor(const Tensor *a, const Tensor *b)
{
    if (!a || !b)
        return a == b;
    if (a->dtype != b->dtype || a->rank != b->rank || a->nbytes != b->nbytes || !same_str(a->name, b->name))
        return 0;
    for (int i = 0; i < a->rank; i++)
        if (a->dims[i] != b->dims[i])
            return 0;
    return same_elems(a->data, b->data, a->nbytes, a->dtype);
}

static int same_float(double x, double y)
{
    float a = (float)x, b = (float)y;
    return (isnan(a) && isnan(b)) || memcmp(&a, &b, 4) == 0;
}

static int same_attr(const Attr *a, const Attr *b)
{
    if (strcmp(a->name, b->name) || a->type != b->type)
        return 0;
    switch (a->type) {
    case AT_INT: return a->i == b->i;
    case AT_FLOAT: return same_float(a->f, b->f);
    case AT_STRING: return a->slen == b->slen && memcmp(a->s, b->s, a->slen) == 0;
    case AT_TENSOR: return same_tensor(a->t, b->t);
    default: break;
    }
    if (a->n != b->n)
        return 0;
    for (int i = 0; i < a->n; i++) {
        if (a->type == AT_INTS && a->ints[i] != b->ints[i])
            return 0;
        if (a->type == AT_FLOATS && !same_float(a->floats[i], b->floats[i]))
            return 0;
        if (a->type == AT_STRINGS && strcmp(a->strings[i], b->strings[i]))
            return 0;
        if (a->type == AT_TENSORS && !same_tensor(a->tensors[i], b->tensors[i]))
            return 0;
    }
    return 1;
}

static int relevant(const Graph *g, int id)
{
    const Value *v = &g->values[id];
    if (v->role != VR_INTERMEDIATE || v->is_output || v->producer >= 0 || v->dtype != DT_UNDEFINED)
        return 1;
    for (int i = 0; i < g->nnodes; i++)
        for (int j = 0; j < g->nodes[i]->ninputs; j++)
            if (g->nodes[i]->inputs[j] == id)
                return 1;
    return 0;
}

static int same_value(const Value *a, const Value *b)
{
    if (a->role != b->role || a->dtype != b->dtype || a->rank != b->rank || a->is_output != b->is_output)
        return DIFF("value '%s': role/dtype/rank/output differ (%d/%d/%d/%d vs %d/%d/%d/%d)", a->name, a->role, a->dtype,
                    a->rank, a->is_output, b->role, b->dtype, b->rank, b->is_output);
    for (int i = 0; i < a->rank; i++)
        if (a->dims[i] != b->dims[i] || !same_str(a->dims[i] < 0 ? a->dim_param[i] : NULL, b->dims[i] < 0 ? b->dim_param[i] : NULL))
            return DIFF("value '%s': dim %d differs", a->name, i);
    if (a->role == VR_CONST && (a->nbytes != b->nbytes || !same_elems(a->data, b->data, a->nbytes, a->dtype)))
        return DIFF("value '%s': data differs", a->name);
    return 1;
}

static const char *vname(const Graph *g, int id)
{
    return id >= 0 ? g->values[id].name : "";
}

static int same_graph(const Graph *a, const Graph *b)
{
    if (!same_str(a->name, b->name) || a->ir_version != b->ir_version || a->opset != b->opset)
        return DIFF("graph name/ir_version/opset differ");
    if (!same_str(a->producer_name, b->producer_name) || !same_str(a->producer_version, b->producer_version) ||
        !same_str(a->model_domain, b->model_domain) || a->model_version != b->model_version || !same_str(a->doc, b->doc))
        return DIFF("model header strings differ");
    if (a->nopsets && a->nopsets != b->nopsets) /* without a list, the printer makes one */
        return DIFF("opset_import counts differ");
    for (int i = 0; i < a->nopsets && i < b->nopsets; i++)
        if (strcmp(a->opset_domain[i], b->opset_domain[i]) || a->opset_version[i] != b->opset_version[i])
            return DIFF("opset_import %d differs", i);
    if (a->ninputs != b->ninputs || a->noutputs != b->noutputs)
        return DIFF("input/output counts differ");
    for (int i = 0; i < a->ninputs; i++)
        if (strcmp(vname(a, a->inputs[i]), vname(b, b->inputs[i])))
            return DIFF("input %d differs", i);
    for (int i = 0; i < a->noutputs; i++)
        if (strcmp(vname(a, a->outputs[i]), vname(b, b->outputs[i])))
            return DIFF("output %d differs", i);
    int na = 0, nb = 0;
    for (int id = 0; id < a->nvalues; id++) {
        if (!relevant(a, id))
            continue;
        na++;
        const Value *vb = val(b, a->values[id].name);
        if (!vb)
            return DIFF("value '%s' is missing", a->values[id].name);
        if (!same_value(&a->values[id], vb))
            return 0;
    }
    for (int id = 0; id < b->nvalues; id++)
        nb += relevant(b, id);
    if (na != nb)
        return DIFF("value counts differ (%d vs %d)", na, nb);
    if (a->nnodes != b->nnodes)
        return DIFF("node counts differ");
    for (int i = 0; i < a->nnodes; i++) {
        const Node *x = a->nodes[i], *y = b->nodes[i];
        if (strcmp(x->op_type, y->op_type) || !same_str(x->domain, y->domain) || x->opset != y->opset ||
            !same_str(x->name, y->name) || x->ninputs != y->ninputs || x->noutputs != y->noutputs || x->nattrs != y->nattrs)
            return DIFF("node %d (%s) differs", i, x->op_type);
        for (int j = 0; j < x->ninputs; j++)
            if (strcmp(vname(a, x->inputs[j]), vname(b, y->inputs[j])))
                return DIFF("node %d (%s) input %d differs", i, x->op_type, j);
        for (int j = 0; j < x->noutputs; j++)
            if (strcmp(vname(a, x->outputs[j]), vname(b, y->outputs[j])))
                return DIFF("node %d (%s) output %d differs", i, x->op_type, j);
        for (int j = 0; j < x->nattrs; j++)
            if (!same_attr(&x->attrs[j], &y->attrs[j]))
                return DIFF("node %d (%s) attribute '%s' differs", i, x->op_type, x->attrs[j].name);
    }
    return 1;
}

/* print -> parse -> print: the same text and the same graph. Returns the first text. */
static char *roundtrip(const Graph *g, const char *what)
{
    char *t1 = print_graph(g);
    Arena a;
    arena_init(&a);
    Diag d;
    Graph *g2 = parse_str(&a, t1, &d);
    CHECK(g2 != NULL);
    if (!g2) {
        fprintf(stderr, "%s: printed text does not parse: %s\n", what, d.msg);
    } else {
        char *t2 = print_graph(g2);
        CHECK(strcmp(t1, t2) == 0);
        if (strcmp(t1, t2)) {
            fprintf(stderr, "%s: print is not a fixed point\n--- first\n%s\n--- second\n%s\n", what, t1, t2);
        }
        free(t2);
        int same = same_graph(g, g2);
        CHECK(same);
        if (!same)
            fprintf(stderr, "%s: graph changed through text: %s\n", what, why);
    }
    arena_free(&a);
    return t1;
}

/* ------------------------------------------------------------------ samples */

static void test_basic(void)
{
    Arena a;
    arena_init(&a);
    Diag d;
    diag_init(&d, NULL);
    Graph *g = onnx_text_parse_file(&a, sample("basic.txt"), &d);
    CHECK(g != NULL);
    if (!g) {
        fprintf(stderr, "basic.txt: %s\n", d.msg);
        arena_free(&a);
        return;
    }
    CHECK(g->ir_version == 8 && g->opset == 17 && g->nopsets == 1 && strcmp(g->name, "agraph") == 0);
    CHECK(g->ninputs == 3 && g->noutputs == 1 && g->nnodes == 3);
    const Value *x = val(g, "X"), *w2 = val(g, "w2"), *c = val(g, "C");
    CHECK(x && x->role == VR_INPUT && x->dtype == DT_FLOAT && x->rank == 2 && x->dims[0] == -1 &&
          x->dim_param[0] && strcmp(x->dim_param[0], "N") == 0 && x->dims[1] == 128 && !x->dim_param[1]);
    CHECK(w2 && w2->role == VR_CONST && w2->rank == 1 && w2->dims[0] == 2 && w2->nbytes == 8 &&
          ((float *)w2->data)[0] == 1.0f && ((float *)w2->data)[1] == 2.0f);
    CHECK(c && c->is_output && g->outputs[0] == graph_find(g, "C") && c->rank == 2 && c->dims[1] == 10 &&
          c->dim_param[0] && strcmp(c->dim_param[0], "N") == 0);
    const Node *sm = g->nodes[2];
    CHECK(strcmp(sm->op_type, "Softmax") == 0 && sm->opset == 17 && sm->nattrs == 1 && attr_int(sm, "axis", 0) == 1 &&
          node_attr(sm, "axis")->type == AT_INT);
    CHECK(strcmp(g->nodes[0]->op_type, "MatMul") == 0 && g->nodes[0]->inputs[1] == graph_find(g, "W"));
    CHECK(g->values[graph_find(g, "T")].producer == 0);

    /* the canonical text: printing it gives it back, byte for byte */
    char *t = roundtrip(g, "basic.txt");
    char *expected = read_file(sample("basic.expected"), NULL);
    CHECK(expected && strcmp(t, expected) == 0);
    if (expected && strcmp(t, expected))
        fprintf(stderr, "basic.txt printed differently from basic.expected:\n%s", t);
    free(t);
    if (expected) {
        Graph *g2 = parse_str(&a, expected, &d);
        CHECK(g2);
        if (g2) {
            char *t2 = print_graph(g2);
            CHECK(strcmp(t2, expected) == 0);
            free(t2);
        }
    }
    free(expected);
    arena_free(&a);
}

static void test_features(void)
{
    Arena a;
    arena_init(&a);
    Diag d;
    diag_init(&d, NULL);
    Graph *g = onnx_text_parse_file(&a, sample("features.txt"), &d);
    CHECK(g != NULL);
    if (!g) {
        fprintf(stderr, "features.txt: %s\n", d.msg);
        arena_free(&a);
        return;
    }
    /* header */
    CHECK(g->ir_version == 9 && g->opset == 18 && g->nopsets == 3);
    CHECK(g->nopsets == 3 && strcmp(g->opset_domain[1], "com.microsoft") == 0 && g->opset_version[1] == 1 &&
          strcmp(g->opset_domain[2], "ai.onnx.ml") == 0 && g->opset_version[2] == 3);
    CHECK(same_str(g->producer_name, "kdcc \"tests\"") && same_str(g->producer_version, "1.2\\3"));
    CHECK(same_str(g->model_domain, "org.example") && g->model_version == -7 && same_str(g->doc, "a model\nover two lines"));
    CHECK(strcmp(g->name, "my graph") == 0);

    /* inputs: bias has an initializer, so it is a constant and not a graph input */
    CHECK(g->ninputs == 4);
    const Value *x = val(g, "X"), *k = val(g, "k"), *u = val(g, "U"), *odd = val(g, "odd name/0"), *bias = val(g, "bias");
    CHECK(x && x->rank == 3 && x->dims[0] == -1 && same_str(x->dim_param[0], "N") && x->dims[1] == -1 &&
          x->dim_param[1] == NULL && x->dims[2] == 3);
    CHECK(k && k->role == VR_INPUT && k->dtype == DT_INT64 && k->rank == 0);
    CHECK(u && u->role == VR_INPUT && u->dtype == DT_FLOAT && u->rank == -1);
    CHECK(odd && odd->role == VR_INPUT && odd->dtype == DT_UNDEFINED);
    CHECK(bias && bias->role == VR_CONST && bias->nbytes == 12 && ((float *)bias->data)[1] == -2.5e-3f &&
          ((float *)bias->data)[2] == 100.0f);
    /* outputs */
    CHECK(g->noutputs == 4 && val(g, "out:1") && val(g, "out:1")->is_output && val(g, "shp")->is_output);
    const Value *b2 = val(g, "bias2");
    CHECK(b2 && b2->role == VR_CONST && b2->is_output && isinf(((float *)b2->data)[0]) && ((float *)b2->data)[0] > 0 &&
          isinf(((float *)b2->data)[1]) && ((float *)b2->data)[1] < 0 && isnan(((float *)b2->data)[2]));
    /* constants of every dtype */
    const Value *shp = val(g, "shp");
    CHECK(shp && ((int64_t *)shp->data)[0] == INT64_MIN && ((int64_t *)shp->data)[1] == INT64_MAX);
    CHECK(((uint8_t *)val(g, "u8")->data)[1] == 255 && val(g, "u8")->rank == 2);
    CHECK(((int8_t *)val(g, "i8")->data)[0] == -128 && ((int16_t *)val(g, "i16")->data)[0] == -32768);
    CHECK(((int32_t *)val(g, "i32")->data)[0] == INT32_MIN && ((uint16_t *)val(g, "u16")->data)[0] == 65535);
    CHECK(((uint32_t *)val(g, "u32")->data)[0] == UINT32_MAX && ((uint64_t *)val(g, "u64")->data)[0] == UINT64_MAX);
    CHECK(memcmp(val(g, "flags")->data, "\1\0\1", 3) == 0 && val(g, "flags")->dtype == DT_BOOL);
    CHECK(((double *)val(g, "dd")->data)[0] == 0.1 && ((double *)val(g, "dd")->data)[1] == -1e-300);
    CHECK(((uint16_t *)val(g, "h")->data)[0] == 15360 && ((uint16_t *)val(g, "h")->data)[1] == kd_float_to_half(1.5f));
    CHECK(((uint16_t *)val(g, "bh")->data)[0] == 16256 && val(g, "bh")->dtype == DT_BFLOAT16);
    CHECK(val(g, "empty")->rank == 1 && val(g, "empty")->dims[0] == 0 && val(g, "empty")->nbytes == 0 &&
          value_is_const(val(g, "empty")));
    CHECK(val(g, "scalar")->rank == 0 && ((float *)val(g, "scalar")->data)[0] == 3.25f);
    /* value_info */
    const Value *mid = val(g, "mid");
    CHECK(mid && mid->role == VR_INTERMEDIATE && mid->dtype == DT_FLOAT && mid->rank == 3 && same_str(mid->dim_param[0], "N"));

    /* nodes: label, omitted outputs and inputs, custom domain, attributes */
    CHECK(g->nnodes == 4);
    const Node *first = node_named(g, "first");
    CHECK(first && first->opset == 18 && first->ninputs == 2);
    const Node *f = NULL;
    for (int i = 0; i < g->nnodes; i++)
        if (strcmp(g->nodes[i]->op_type, "Fancy") == 0)
            f = g->nodes[i];
    CHECK(f && strcmp(f->domain, "com.microsoft") == 0 && f->opset == 1);
    if (f) {
        CHECK(f->noutputs == 3 && f->outputs[1] == -1 && f->outputs[2] == graph_find(g, "out:1"));
        CHECK(f->ninputs == 5 && f->inputs[1] == -1 && f->inputs[3] == graph_find(g, "odd name/0"));
        CHECK(attr_int(f, "i", 0) == -3 && attr_int(f, "i2", 0) == 4 && node_attr(f, "i2")->type == AT_INT);
        CHECK(node_attr(f, "f")->type == AT_FLOAT && attr_float(f, "f", 0) == 2.0);
        CHECK(node_attr(f, "f2")->type == AT_FLOAT && attr_float(f, "f2", 0) == (double)1.5e-7f);
        CHECK(isinf(attr_float(f, "f3", 0)) && attr_float(f, "f3", 0) < 0 && isnan(attr_float(f, "f4", 0)));
        const Attr *s = node_attr(f, "s");
        CHECK(s && s->type == AT_STRING && s->slen == 5 && strcmp(s->s, "a\"b\\c") == 0);
        const int64_t *ints;
        const double *fl;
        CHECK(attr_ints(f, "ints", &ints) == 3 && ints[1] == -2);
        CHECK(attr_floats(f, "floats", &fl) == 3 && fl[1] == 2.0 && fl[2] == -0.5);
        CHECK(attr_floats(f, "mixed", &fl) == 2 && fl[0] == 1.0);
        const Attr *strs = node_attr(f, "strs");
        CHECK(strs && strs->type == AT_STRINGS && strs->n == 3 && strcmp(strs->strings[1], "") == 0 &&
              strcmp(strs->strings[2], "y z") == 0);
        CHECK(node_attr(f, "noints")->type == AT_INTS && node_attr(f, "noints")->n == 0);
        CHECK(node_attr(f, "nostr")->type == AT_STRINGS && node_attr(f, "nostr")->n == 0);
        const Tensor *t = attr_tensor(f, "t"), *t2 = attr_tensor(f, "t2");
        CHECK(t && t->dtype == DT_FLOAT && t->rank == 1 && ((float *)t->data)[1] == 2.0f && !t->name);
        CHECK(t2 && t2->dtype == DT_INT64 && t2->rank == 2 && t2->dims[0] == 2 && same_str(t2->name, "named") &&
              ((int64_t *)t2->data)[1] == 6);
        const Attr *ts = node_attr(f, "ts");
        CHECK(ts && ts->type == AT_TENSORS && ts->n == 2 && ts->tensors[0]->rank == 0 && ts->tensors[1]->dtype == DT_INT32);
        CHECK(node_attr(f, "ts0")->type == AT_TENSORS && node_attr(f, "ts0")->n == 0);
    }
    const Node *n2 = node_named(g, "n2");
    CHECK(n2 && n2->noutputs == 0 && n2->ninputs == 1);
    const Node *unnamed = NULL;
    for (int i = 0; i < g->nnodes; i++)
        if (strcmp(g->nodes[i]->op_type, "Identity") == 0)
            unnamed = g->nodes[i];
    CHECK(unnamed && unnamed->name[0] == 0);
    free(roundtrip(g, "features.txt"));
    arena_free(&a);
}

static void test_toposort(void)
{
    Arena a;
    arena_init(&a);
    Diag d;
    diag_init(&d, NULL);
    Graph *g = onnx_text_parse_file(&a, sample("unordered.txt"), &d);
    CHECK(g && g->nnodes == 2 && strcmp(g->nodes[0]->op_type, "Relu") == 0 && strcmp(g->nodes[1]->op_type, "Mul") == 0);
    if (g)
        free(roundtrip(g, "unordered.txt"));
    arena_free(&a);
}

/* ONNX's rules for empty names in id lists, and attributes after the inputs */
static void test_id_lists(void)
{
    static const struct {
        const char *call;
        int n;
        int omitted; /* index of the omitted input, or -1 */
    } cases[] = {
        {"Foo(x,)", 1, -1}, {"Foo(,)", 1, 0}, {"Foo(, x)", 2, 0}, {"Foo(x, , x)", 3, 1},
        {"Foo(x, \"\")", 2, 1}, {"Foo()", 0, -1}, {"Foo(x) <a = 1>", 1, -1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[256];
        snprintf(text, sizeof text, HDR "g (float[2] x) => (float[2] y) { y = %s }", cases[i].call);
        Arena a;
        arena_init(&a);
        Diag d;
        Graph *g = parse_str(&a, text, &d);
        CHECK(g && g->nnodes == 1);
        if (g && g->nnodes == 1) {
            const Node *n = g->nodes[0];
            CHECK(n->ninputs == cases[i].n);
            for (int j = 0; j < n->ninputs; j++)
                CHECK((n->inputs[j] < 0) == (j == cases[i].omitted));
            if (strstr(cases[i].call, "<a"))
                CHECK(attr_int(n, "a", 0) == 1);
        } else {
            fprintf(stderr, "%s: %s\n", cases[i].call, d.msg);
        }
        arena_free(&a);
    }
}

/* a graph changed by hand (as passes change graphs) prints and reads back */
static void test_print_modified(void)
{
    Arena a;
    arena_init(&a);
    Diag d;
    Graph *g = parse_str(&a, "<ir_version: 8, opset_import: [\"\" : 13]> g (float[2] x) => (float[2] y) { y = Relu(x) }", &d);
    CHECK(g);
    if (!g) {
        arena_free(&a);
        return;
    }
    g->nopsets = 0; /* a graph without its import list: printed from g->opset */
    int c = graph_value(g, "c");
    int64_t dims[1] = {2};
    float *cd = value_make_const(g, &g->values[c], DT_FLOAT, 1, dims);
    cd[0] = 0.1f;
    cd[1] = -0.0f;
    int t = graph_value(g, "t");
    value_set_shape(&g->values[t], DT_FLOAT, 1, dims);
    int ins[3] = {g->nodes[0]->outputs[0], -1, c};
    int outs[1] = {t};
    g->nodes[0]->outputs[0] = t;
    Node *n = graph_add_node(g, "Clip", "clip", ins, 3, outs, 1);
    n->inputs[0] = t;
    n->outputs[0] = graph_find(g, "y");
    Attr *at = node_add_attr(g, n, "alpha", AT_FLOAT);
    at->f = 1.0 / 3.0;
    CHECK(graph_toposort(g, &d) == 0);
    char *txt = roundtrip(g, "modified");
    CHECK(strstr(txt, "opset_import: [\"\" : 13]") && strstr(txt, "float[2] c = {0.1, -0.0}") && strstr(txt, "float[2] t\n") &&
          strstr(txt, "[clip] y = Clip <alpha: float = 0.33333334> (t, \"\", c)"));
    free(txt);
    arena_free(&a);
}

/* ------------------------------------------------------------------ errors */

typedef struct ErrCase {
    const char *text;
    const char *pos;   /* "LINE:COL" */
    const char *msg;   /* substring */
    int unsupported;
} ErrCase;


static void check_error(const char *text, size_t len, const char *pos, const char *msg, int unsupported)
{
    Arena a;
    arena_init(&a);
    Diag d;
    diag_init(&d, NULL);
    Graph *g = onnx_text_parse(&a, text, len, "t.txt", &d);
    char prefix[64];
    snprintf(prefix, sizeof prefix, "t.txt:%s: ", pos);
    int ok = !g && d.errors > 0 && strncmp(d.msg, prefix, strlen(prefix)) == 0 && strstr(d.msg, msg) &&
             !strchr(d.msg, '\n') && d.unsupported == unsupported;
    CHECK(ok);
    if (!ok)
        fprintf(stderr, "  text: %.200s\n  want: %s...%s (unsupported=%d)\n  got:  %s (unsupported=%d)\n", text, prefix, msg,
                unsupported, g ? "(parsed)" : d.msg, d.unsupported);
    arena_free(&a);
}

static void test_errors(void)
{
    static const ErrCase cases[] = {
        {"", "1:1", "expected a graph name, found end of input", 0},
        {"<ir_version: 8, producer_name: \"abc>\ng () => () {}", "1:32", "unterminated string literal", 0},
        {HDR "g (float[2] x) => (float[2] y) { y = Relu(x) $ }", "2:46", "unexpected '$'", 0},
        {HDR "g (float[2] x) => (float[2] y) {\n  y = Relu(x\n}", "4:1", "expected ')' after the node inputs, found '}'", 0},
        {HDR "g (float[2] x) => (float[2] y) { y = Relu(x) ", "2:46", "expected a node or '}', found end of input", 0},
        {HDR "g (float[2] x) => (float[2] y)\n<float[1000000000000] w = {1}>\n{ y = Relu(x) }", "3:27",
         "'w' has 1000000000000 elements but the rest of the text could hold at most", 0},
        {HDR "g (float[4294967296,4294967296,4294967296] w = {1}) => (float[2] y) { y = Relu(w) }", "2:4",
         "the shape of 'w' has too many elements", 0},
        {HDR "g (float[99999999999999999999] x) => (float[2] y) { y = Relu(x) }", "2:10", "integer 99999999999999999999 is out of range", 0},
        {HDR "g (float[-1] x) => (float[2] y) { y = Relu(x) }", "2:10", "dimension -1 is out of range", 0},
        {HDR "g (float[1,1,1,1,1,1,1,1,1] x) => (float[2] y) { y = Relu(x) }", "2:26", "rank above 8", 1},
        {HDR "g (seq(seq(seq(float))) x) => (float[2] y) { y = Relu(x) }", "2:4", "'seq' types are not supported", 1},
        {HDR "g (float[2] x) => (float[2] y) { y = If <then_branch = b () => (float x) {}> (x) }", "2:56",
         "graph attributes (subgraphs) are not supported", 1},
        {HDR "g (float[2] x) => (float[2] y) { y = If <then_branch: graph = b () => () {}> (x) }", "2:55",
         "graph attributes (subgraphs) are not supported", 1},
        {HDR "g (float[2] x) => (float[2] y) { y = Foo <t = float[2]> (x) }", "2:47", "type attributes (type_proto) are not supported", 1},
        {HDR "g (float[2] x) => (float[2] y) { y = Foo <a = @b> (x) }", "2:47", "attribute references", 1},
        {HDR "g (float[2] x) => (float[2] y) {\n  y = Relu(q)\n}", "3:3", "input 'q' of Relu is never defined", 0},
        {HDR "g (float[2] x) => (float[2] y) {\n  y = Relu(x)\n  y = Relu(x)\n}", "4:3", "'y' is assigned twice (also by the node at 3:3)", 0},
        {HDR "g (float[2] x) => (float[2] y) {\n  a = Relu(b)\n  b = Relu(a)\n  y = Relu(b)\n}", "4:3", "the graph has a cycle: input 'a' of Relu", 0},
        {HDR "g (float[2] x) => (float[2] y) {\n  y = Add(x, y)\n}", "3:3", "the graph has a cycle: input 'y' of Add", 0},
        {HDR "g (float[2] x) => (float[2] y) { x = Relu(x) }", "2:34", "'x' is a graph input", 0},
        {HDR "g (float[2] x) => (float[2] y, float[2] y) { y = Relu(x) }", "2:41", "graph output 'y' is declared twice", 0},
        {HDR "g (float[2] x) => (float[2] z) { y = Relu(x) }", "2:29", "graph output 'z' is never defined", 0},
        {HDR "g (float[2] x, float[2] x) => (float[2] y) { y = Relu(x) }", "2:25", "graph input 'x' is declared twice", 0},
        {"g (float[2] x) => (float[2] y) { y = Relu(x) }", "1:38", "no opset_import for the default domain", 0},
        {HDR "g (float[2] x) => (float[2] y) { y = Softmax <axis: int = 1.5> (x) }", "2:59", "declared int but the value is a float", 0},
        {HDR "g (float[2] x) => (float[2] y) { y = Foo <a: ints = 1> (x) }", "2:53", "must be a list", 0},
        {HDR "g (float[2] x) => (float[2] y) { y = Foo <a: int = [1]> (x) }", "2:52", "cannot be a list", 0},
        {HDR "g (float[2] x) => (float[2] y) { y = Foo <a = []> (x) }", "2:47", "needs a type", 0},
        {HDR "g (float[2] x) => (float[2] y) { y = Foo <a = [1, \"s\"]> (x) }", "2:47", "mixes values", 0},
        {HDR "g (float[2] x) => (float[2] y) { y = Foo <a = 1, a = 2> (x) }", "2:50", "attribute 'a' is given twice", 0},
        {HDR "g (float[2] x) => (float[2] y) { y = Foo <a = -x> (x) }", "2:48", "expected 'inf' or 'nan' after '-'", 0},
        {HDR "g (float[2] x) => (float[2] y) { y = Foo <a: blob = 1> (x) }", "2:46", "expected an attribute type", 0},
        {HDR "g (float[2] x) => (float[2] y) { y = Foo <a = [[[[[[[[1]]]]]]]]> (x) }", "2:48", "expected an attribute value, found '['", 0},
        {HDR "g (float[2] x) => (float[2] y) <float[2] w = {1, 2, 3}> { y = Relu(x) }", "2:53", "too many values for 'w'", 0},
        {HDR "g (float[2] x) => (float[2] y) <float[2] w = {1}> { y = Relu(x) }", "2:46", "'w' has 1 values but its shape holds 2", 0},
        {HDR "g (float[2] x) => (float[2] y) <uint8[1] w = {256}> { y = Relu(x) }", "2:47", "uint8 value 256 is out of range", 0},
        {HDR "g (float[2] x) => (float[2] y) <int64[1] w = {1.5}> { y = Relu(x) }", "2:47", "expected an integer, found '1.5'", 0},
        {HDR "g (float[2] x) => (float[2] y) <int64[1] w = {99999999999999999999}> { y = Relu(x) }", "2:47", "out of range", 0},
        {HDR "g (float[2] x) => (float[2] y) <float[N] w = {1}> { y = Relu(x) }", "2:33", "dimensions must be numbers", 0},
        {HDR "g (float[2] x) => (float[2] y) <float[] w = {1}> { y = Relu(x) }", "2:33", "needs a shape", 0},
        {HDR "g (float[2] x) => (float[2] y) <string[1] w = {\"a\"}> { y = Relu(x) }", "2:33", "constants of type string are not supported", 1},
        {HDR "g (float[2] x) => (float[2] y) <float[1] w = [\"location\": \"w.bin\"]> { y = Relu(x) }", "2:46", "external data", 1},
        {HDR "g (float[2] x) => (float[2] y) <float[1] w = {1}, float[1] w = {2}> { y = Relu(x) }", "2:60", "initializer 'w' is defined twice", 0},
        {HDR "g (float[2] x) => (float[2] y) { y = Relu(x) }\nf (x) => (y) { y = Relu(x) }", "3:1", "model-local functions are not supported", 1},
        {HDR "g (float[2] x) => (float[2] y) { y = Relu(x) } }", "2:48", "expected end of input after the graph", 0},
        {HDR "g (float[2] x) = > (float[2] y) { y = Relu(x) }", "2:16", "expected '=>'", 0},
        {HDR "g (float[2] x) => (float[2] y) { y = local.Fn:over(x) }", "2:46", "overloads", 1},
        {"<ir_version: 8, colour: \"red\"> g () => () {}", "1:17", "unknown model header key 'colour'", 0},
        {"<ir_version: 8, opset_import: [\"\" : 17, \"\" : 18]> g () => () {}", "1:41", "imported twice", 0},
        {"<ir_version: 8, opset_import: [\"\" : 0]> g () => () {}", "1:37", "opset version 0 is out of range", 0},
        {"<ir_version: 8,\n doc_string: \"two\nlines\", bogus: 1> g () => () {}", "3:9", "unknown model header key 'bogus'", 0},
        {HDR "g (float[2] x) => (float[2] y) { y = Relu(x) # comment }\n", "3:1", "expected a node or '}'", 0},
        {HDR "g (float[2] x) => (float[2] y) { y = Relu <alpha = 1e> (x) }", "2:53", "expected '>' to close the attributes, found 'e'", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_error(cases[i].text, strlen(cases[i].text), cases[i].pos, cases[i].msg, cases[i].unsupported);

    /* a NUL byte inside the text is a bad character, not the end */
    static const char nul[] = HDR "g (float[2] x) => (float[2] y) { y = Relu(x)\0 }";
    check_error(nul, sizeof nul - 1, "2:45", "unexpected byte 0x00", 0);

    /* very deep nesting and very long input: a clean error, no recursion */
    size_t n = 200000;
    char *deep = malloc(n * 2 + 200);
    int k = snprintf(deep, 200, HDR "g (float[2] x) => (float[2] y) { y = Foo <a = ");
    for (size_t i = 0; i < n; i++)
        deep[k++] = '[';
    deep[k] = 0;
    check_error(deep, strlen(deep), "2:48", "expected an attribute value", 0);
    k = snprintf(deep, 200, HDR "g (");
    for (size_t i = 0; i < n; i++)
        deep[k++] = 's', deep[k++] = '(';
    deep[k] = 0;
    check_error(deep, strlen(deep), "2:5", "expected ')' to close the graph inputs, found '('", 0);
    free(deep);

    /* a missing file */
    Arena a;
    arena_init(&a);
    Diag d;
    diag_init(&d, NULL);
    CHECK(!onnx_text_parse_file(&a, sample("no-such-file.txt"), &d) && strstr(d.msg, "no-such-file.txt") && strstr(d.msg, "cannot open"));
    arena_free(&a);
}

/* every prefix and many mutations of a sample: parse or a clean one-line error */
static void test_hostile(void)
{
    size_t len;
    char *text = read_file(sample("features.txt"), &len);
    CHECK(text != NULL);
    if (!text)
        return;
    int ok = 0, bad = 0;
    for (size_t cut = 0; cut <= len; cut++) {
        Arena a;
        arena_init(&a);
        Diag d;
        diag_init(&d, NULL);
        Graph *g = onnx_text_parse(&a, text, cut, "t.txt", &d);
        if (g)
            ok++;
        else if (strncmp(d.msg, "t.txt:", 6) != 0 || strchr(d.msg, '\n'))
            bad++, fprintf(stderr, "prefix %zu: bad message: %s\n", cut, d.msg);
        arena_free(&a);
    }
    CHECK(bad == 0);
    CHECK(ok >= 1);
    static const char alphabet[] = "()[]{}<>,:=.?@-\"#\\ \n0123456789eE_aZ\x01\xff";
    uint32_t seed = 12345;
    char *m = malloc(len + 1);
    for (int iter = 0; iter < 3000; iter++) {
        memcpy(m, text, len + 1);
        int edits = 1 + iter % 4;
        for (int e = 0; e < edits; e++) {
            seed = seed * 1103515245u + 12345u;
            size_t at = (seed >> 8) % len;
            seed = seed * 1103515245u + 12345u;
            m[at] = alphabet[(seed >> 8) % (sizeof alphabet - 1)];
        }
        Arena a;
        arena_init(&a);
        Diag d;
        diag_init(&d, NULL);
        d.quiet_warnings = 1;
        Graph *g = onnx_text_parse(&a, m, len, "t.txt", &d);
        if (g) {
            char *t = print_graph(g);
            free(t);
        } else if (!d.msg[0] || strchr(d.msg, '\n')) {
            bad++;
            fprintf(stderr, "mutation %d: bad message: %s\n", iter, d.msg);
        }
        arena_free(&a);
    }
    CHECK(bad == 0);
    free(m);
    free(text);
}

/* ------------------------------------------------------------------ binary models */
#ifdef KDCC_SHARED_DIR

static int binary_roundtrip(const char *path, const char *what)
{
    Arena a;
    arena_init(&a);
    Diag d;
    diag_init(&d, path);
    d.quiet_warnings = 1;
    Graph *g = onnx_import_file(&a, path, NULL, &d);
    int rc = 0;
    if (g) {
        free(roundtrip(g, what));
        rc = 1;
    }
    arena_free(&a);
    return rc;
}

static void test_binary(const char *dir, int limit)
{
    DIR *dp = opendir(dir);
    if (!dp) {
        printf("test_text: %s not found, binary round trips skipped\n", dir);
        return;
    }
    int done = 0, refused = 0, before = failures;
    struct dirent *e;
    char **names = NULL;
    int nn = 0;
    while ((e = readdir(dp))) {
        if (e->d_name[0] == '.')
            continue;
        names = realloc(names, (size_t)(nn + 1) * sizeof *names);
        names[nn++] = strdup(e->d_name);
    }
    closedir(dp);
    for (int i = 0; i < nn && (limit <= 0 || done < limit); i++) {
        char path[2048];
        snprintf(path, sizeof path, "%s/%s/model.onnx", dir, names[i]);
        struct stat st;
        if (stat(path, &st) == 0) {
            if (binary_roundtrip(path, names[i]))
                done++;
            else
                refused++;
        }
    }
    for (int i = 0; i < nn; i++)
        free(names[i]);
    free(names);
    printf("test_text: %s: %d models through binary -> text -> IR (%d not importable), %d failed\n", dir, done, refused,
           failures - before);
    CHECK(done > 0);
}
#endif

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--print") == 0) {
        Arena a;
        arena_init(&a);
        Diag d;
        diag_init(&d, argv[2]);
        Graph *g = model_load(&a, argv[2], NULL, &d);
        if (!g) {
            diag_print(&d, stderr);
            return 1;
        }
        char *t = print_graph(g);
        fputs(t, stdout);
        free(t);
        arena_free(&a);
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "--binary") == 0) {
#ifdef KDCC_SHARED_DIR
        test_binary(KDCC_SHARED_DIR "/onnx-tests/models", 0);
        test_binary(KDCC_SHARED_DIR "/onnx-tests/node", 0);
#endif
    } else {
        test_basic();
        test_features();
        test_toposort();
        test_id_lists();
        test_print_modified();
        test_errors();
        test_hostile();
    }
    printf("test_text: %d checks, %d failed\n", checks, failures);
    return failures ? 1 : 0;
}

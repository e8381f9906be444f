/* Tests of the ONNX exporter (frontends/onnx_export.c).
 *
 *   test_onnx_export [DIR...]      every DIR/<test>/model.onnx (default: the backend node
 *                                  tests and the model tests in ../shared/onnx-tests):
 *                                  import -> export -> import again, compare the graphs
 *                                  (values, shapes, symbolic dims, data bytes, nodes,
 *                                  attributes), then compile both through the kdcc
 *                                  pipeline and compare the emitted C and header;
 *                                  and export the compiled graph (shapes bound, constants
 *                                  folded, dead code gone), compile that again and
 *                                  compare the C.
 *   test_onnx_export --write OUT [DIR...]
 *                                  also keep the exported files in OUT (for onnx.checker)
 *   test_onnx_export --unit        crafted graphs: every attribute kind, omitted inputs,
 *                                  symbolic dims, custom domains, atomic write
 */
#include "compiler/cli/cli.h"
#include "frontends/onnx_export.h"

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

/* ------------------------------------------------------------------ graph comparison */

static char why[512];
#define DIFF(...) (snprintf(why, sizeof why, __VA_ARGS__), 0)

static int same_str(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
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
    return a->nbytes == 0 || memcmp(a->data, b->data, a->nbytes) == 0;
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

/* A value the exported model must carry: used or produced by a node, a graph input or output. */
static int relevant(const Graph *g, int id)
{
    const Value *v = &g->values[id];
    if (v->is_output)
        return 1;
    for (int i = 0; i < g->ninputs; i++)
        if (g->inputs[i] == id)
            return 1;
    for (int i = 0; i < g->nnodes; i++) {
        const Node *n = g->nodes[i];
        if (n->dead)
            continue;
        for (int j = 0; j < n->ninputs; j++)
            if (n->inputs[j] == id)
                return 1;
        for (int j = 0; j < n->noutputs; j++)
            if (n->outputs[j] == id)
                return 1;
    }
    return 0;
}

static int same_value(const Value *a, const Value *b)
{
    if (a->role != b->role || a->dtype != b->dtype || a->rank != b->rank || a->is_output != b->is_output)
        return DIFF("value '%s': role/dtype/rank/output differ (%d/%d/%d/%d vs %d/%d/%d/%d)", a->name, a->role, a->dtype,
                    a->rank, a->is_output, b->role, b->dtype, b->rank, b->is_output);
    for (int i = 0; i < a->rank; i++)
        if (a->dims[i] != b->dims[i] ||
            !same_str(a->dims[i] < 0 ? a->dim_param[i] : NULL, b->dims[i] < 0 ? b->dim_param[i] : NULL))
            return DIFF("value '%s': dim %d differs (%lld '%s' vs %lld '%s')", a->name, i, (long long)a->dims[i],
                        a->dim_param[i] ? a->dim_param[i] : "", (long long)b->dims[i], b->dim_param[i] ? b->dim_param[i] : "");
    if (a->role == VR_CONST && (a->nbytes != b->nbytes || (a->nbytes && memcmp(a->data, b->data, a->nbytes))))
        return DIFF("value '%s': data bytes differ", a->name);
    return 1;
}

static const char *vname(const Graph *g, int id)
{
    return id >= 0 ? g->values[id].name : "";
}

/* b is a re-import of a's export */
static int same_graph(const Graph *a, const Graph *b)
{
    int want_ir = a->ir_version > 8 ? a->ir_version : 8;
    if (!same_str(a->name && a->name[0] ? a->name : "kdcc", b->name) || b->ir_version != want_ir || a->opset != b->opset)
        return DIFF("graph name/ir_version/opset differ ('%s' %d %d vs '%s' %d %d)", a->name ? a->name : "", a->ir_version,
                    a->opset, b->name ? b->name : "", b->ir_version, b->opset);
    if (a->producer_name ? !same_str(a->producer_name, b->producer_name) || !same_str(a->producer_version, b->producer_version)
                         : !same_str(b->producer_name, "kdcc"))
        return DIFF("producer differs");
    if (!same_str(a->model_domain, b->model_domain) || a->model_version != b->model_version || !same_str(a->doc, b->doc))
        return DIFF("model header strings differ");
    if (a->nopsets && a->nopsets != b->nopsets)
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
        int j = graph_find(b, a->values[id].name);
        if (j < 0)
            return DIFF("value '%s' is missing", a->values[id].name);
        if (!same_value(&a->values[id], &b->values[j]))
            return 0;
    }
    for (int id = 0; id < b->nvalues; id++)
        nb += relevant(b, id);
    if (na != nb)
        return DIFF("value counts differ (%d vs %d)", na, nb);
    int k = 0;
    for (int i = 0; i < a->nnodes; i++) {
        const Node *x = a->nodes[i];
        if (x->dead)
            continue;
        if (k >= b->nnodes)
            return DIFF("node counts differ");
        const Node *y = b->nodes[k++];
        if (strcmp(x->op_type, y->op_type) || !same_str(x->domain, y->domain) || x->opset != y->opset ||
            (x->name && x->name[0] && !same_str(x->name, y->name)) || x->ninputs != y->ninputs || x->noutputs != y->noutputs || x->nattrs != y->nattrs)
            return DIFF("node %d (%s '%s') differs", i, x->op_type, x->name);
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
    if (k != b->nnodes)
        return DIFF("node counts differ");
    return 1;
}

/* ------------------------------------------------------------------ compile */

#define MAX_IO 64

typedef struct Compiled {
    int ok;
    int unsupported;
    char msg[1024];
    Writer c, h;
} Compiled;

static int file_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

/* Compile the model at path as the conformance runner does: input shapes bound from
 * test_data_set_0, inputs the compiler asks for bound as constants. */
static void compile_model(const char *path, const char *testdir, const char *export_to, Compiled *out)
{
    memset(out, 0, sizeof *out);
    w_init(&out->c);
    w_init(&out->h);
    char consts[16][256];
    int nconsts = 0;
    for (int attempt = 0;; attempt++) {
        Arena a;
        arena_init(&a);
        Diag d;
        diag_init(&d, NULL);
        d.quiet_warnings = 1;
        Tensor in[MAX_IO];
        int nin = 0;
        for (int k = 0; k < MAX_IO; k++) {
            char p[2048];
            snprintf(p, sizeof p, "%s/test_data_set_0/input_%d.pb", testdir, k);
            if (!testdir || !file_exists(p) || onnx_read_tensor_file(&a, p, &in[k], &d))
                break;
            nin++;
        }
        diag_init(&d, "model.onnx");
        d.quiet_warnings = 1;
        ImportOptions io = {0};
        Graph *g = onnx_import_file(&a, path, &io, &d);
        if (!g) {
            out->ok = 0;
            snprintf(out->msg, sizeof out->msg, "import: %.1000s", d.msg);
            arena_free(&a);
            return;
        }
        d.file = "model.onnx";
        /* test inputs are the graph inputs that are not constants, in order */
        int run_ids[MAX_IO], nrun = 0;
        for (int i = 0; i < g->ninputs && nrun < MAX_IO; i++)
            if (g->values[g->inputs[i]].role == VR_INPUT)
                run_ids[nrun++] = g->inputs[i];
        ShapeBinding sb[MAX_IO];
        ConstBinding cb[16];
        int nsb = 0, ncb = 0;
        for (int k = 0; k < nin && k < nrun; k++) {
            const Value *v = &g->values[run_ids[k]];
            int frozen = 0;
            for (int c = 0; c < nconsts; c++)
                if (strcmp(consts[c], v->name) == 0) {
                    cb[ncb].name = consts[c];
                    cb[ncb++].t = in[k];
                    frozen = 1;
                }
            if (frozen)
                continue;
            sb[nsb].name = v->name;
            sb[nsb].rank = in[k].rank;
            memcpy(sb[nsb].dims, in[k].dims, sizeof sb[nsb].dims);
            nsb++;
        }
        CompileOptions co = {.validate = 0};
        co.pass.fold = 1;
        co.pass.shapes = sb;
        co.pass.nshapes = nsb;
        co.consts = cb;
        co.nconsts = ncb;
        co.emit.name = "model";
        co.emit.header = "model.h";
        co.emit.source = "model.onnx"; /* the same source name for both compilations */
        w_free(&out->c);
        w_free(&out->h);
        w_init(&out->c);
        w_init(&out->h);
        int rc = compile_graph(g, &co, &out->c, &out->h, &d);
        if (rc == 0 && export_to && onnx_export_file(g, export_to, &d)) {
            snprintf(out->msg, sizeof out->msg, "export after compiling: %.900s", d.msg);
            arena_free(&a);
            return;
        }
        if (rc == 0) {
            out->ok = 1;
            arena_free(&a);
            return;
        }
        if (d.need_const[0] && nconsts < 16 && attempt < 16) {
            snprintf(consts[nconsts++], sizeof consts[0], "%s", d.need_const);
            arena_free(&a);
            continue;
        }
        out->ok = 0;
        out->unsupported = d.unsupported;
        snprintf(out->msg, sizeof out->msg, "%s", d.msg);
        arena_free(&a);
        return;
    }
}

/* First differing line of two texts, for the message. */
static void first_diff(const char *a, const char *b, char *out, size_t n)
{
    int line = 1;
    const char *la = a, *lb = b;
    while (*a && *a == *b) {
        if (*a == '\n') {
            line++;
            la = a + 1;
            lb = b + 1;
        }
        a++;
        b++;
    }
    const char *ea = strchr(la, '\n'), *eb = strchr(lb, '\n');
    snprintf(out, n, "line %d: '%.*s' vs '%.*s'", line, (int)(ea ? ea - la : 80) > 80 ? 80 : (int)(ea ? ea - la : 80), la,
             (int)(eb ? eb - lb : 80) > 80 ? 80 : (int)(eb ? eb - lb : 80), lb);
}

/* ------------------------------------------------------------------ one model */

typedef struct Stats {
    int models, skipped_import, roundtrip_ok, roundtrip_bad, c_same, c_differ, c_both_fail, compiled_same, compiled_bad;
} Stats;

static void one_model(const char *testdir, const char *label, const char *keep_dir, Stats *st)
{
    char src[1100], dst[2048];
    snprintf(src, sizeof src, "%s/model.onnx", testdir);
    if (!file_exists(src))
        return;
    st->models++;
    Arena a;
    arena_init(&a);
    Diag d;
    diag_init(&d, NULL);
    ImportOptions io = {0};
    Graph *g1 = onnx_import_file(&a, src, &io, &d);
    if (!g1) {
        st->skipped_import++;
        arena_free(&a);
        return;
    }
    if (keep_dir)
        snprintf(dst, sizeof dst, "%s/%s.onnx", keep_dir, label);
    else
        snprintf(dst, sizeof dst, "%s/export.onnx", KDCC_TMP_DIR);
    diag_init(&d, NULL);
    if (onnx_export_file(g1, dst, &d)) {
        st->roundtrip_bad++;
        fprintf(stderr, "FAIL %s: export: %s\n", label, d.msg);
        arena_free(&a);
        return;
    }
    diag_init(&d, NULL);
    Graph *g2 = onnx_import_file(&a, dst, &io, &d);
    if (!g2) {
        st->roundtrip_bad++;
        fprintf(stderr, "FAIL %s: the exported model does not import: %s\n", label, d.msg);
        arena_free(&a);
        return;
    }
    if (!same_graph(g1, g2)) {
        st->roundtrip_bad++;
        fprintf(stderr, "FAIL %s: graph changed through export: %s\n", label, why);
        arena_free(&a);
        return;
    }
    st->roundtrip_ok++;
    arena_free(&a);

    /* the same C from both */
    Compiled c1, c2;
    char compiled[2100];
    snprintf(compiled, sizeof compiled, "%s/compiled.onnx", KDCC_TMP_DIR);
    compile_model(src, testdir, compiled, &c1);
    compile_model(dst, testdir, NULL, &c2);
    if (!c1.ok || !c2.ok) {
        if (c1.ok != c2.ok || strcmp(c1.msg, c2.msg)) {
            st->c_differ++;
            fprintf(stderr, "FAIL %s: compiles differently: original: %s | exported: %s\n", label,
                    c1.ok ? "ok" : c1.msg, c2.ok ? "ok" : c2.msg);
        } else {
            st->c_both_fail++;
        }
    } else if (c1.c.len != c2.c.len || memcmp(c1.c.buf, c2.c.buf, c1.c.len) || c1.h.len != c2.h.len ||
               memcmp(c1.h.buf, c2.h.buf, c1.h.len)) {
        st->c_differ++;
        char fd[400];
        int cdiff = c1.c.len != c2.c.len || memcmp(c1.c.buf, c2.c.buf, c1.c.len);
        first_diff(cdiff ? c1.c.buf : c1.h.buf, cdiff ? c2.c.buf : c2.h.buf, fd, sizeof fd);
        fprintf(stderr, "FAIL %s: emitted %s differs: %s\n", label, cdiff ? "C" : "header", fd);
    } else {
        st->c_same++;
    }
    /* the compiled graph (shapes bound, constants folded, dead code gone) exported and compiled again */
    if (c1.ok) {
        Compiled c3;
        compile_model(compiled, NULL, NULL, &c3);
        if (!c3.ok) {
            st->compiled_bad++;
            fprintf(stderr, "FAIL %s: the exported compiled graph does not compile: %s\n", label, c3.msg);
        } else if (c1.c.len != c3.c.len || memcmp(c1.c.buf, c3.c.buf, c1.c.len)) {
            st->compiled_bad++;
            char fd[400];
            first_diff(c1.c.buf, c3.c.buf, fd, sizeof fd);
            fprintf(stderr, "FAIL %s: the exported compiled graph gives other C: %s\n", label, fd);
        } else {
            st->compiled_same++;
        }
        w_free(&c3.c);
        w_free(&c3.h);
    }
    w_free(&c1.c);
    w_free(&c1.h);
    w_free(&c2.c);
    w_free(&c2.h);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void scan(const char *root, const char *keep_dir, Stats *st)
{
    DIR *dir = opendir(root);
    if (!dir) {
        fprintf(stderr, "cannot open %s: %s\n", root, strerror(errno));
        failures++;
        return;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(dir))) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 256;
            names = realloc(names, cap * sizeof *names);
        }
        names[n++] = strdup(e->d_name);
    }
    closedir(dir);
    qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n; i++) {
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", root, names[i]);
        one_model(p, names[i], keep_dir, st);
        free(names[i]);
    }
    free(names);
}

/* ------------------------------------------------------------------ crafted graphs */

static int add_value(Graph *g, const char *name, DType dt, int rank, const int64_t *dims)
{
    int id = graph_value(g, name);
    value_set_shape(&g->values[id], dt, rank, dims);
    return id;
}

static void test_unit(void)
{
    Arena a;
    arena_init(&a);
    Graph *g = graph_new(&a, "crafted");
    g->name = "crafted";
    g->ir_version = 3; /* exported as 8 */
    g->opset = 13;
    g->doc = "a crafted graph";
    g->model_domain = "org.kdcc";
    g->model_version = 42;
    int x = add_value(g, "X", DT_FLOAT, 2, (int64_t[]){-1, 4});
    g->values[x].dim_param[0] = "batch";
    g->values[x].role = VR_INPUT;
    int w = add_value(g, "W", DT_FLOAT, 2, (int64_t[]){4, 3});
    float wd[12];
    for (int i = 0; i < 12; i++)
        wd[i] = (float)i * 0.5f - 1;
    wd[5] = NAN;
    g->values[w].role = VR_CONST;
    g->values[w].data = wd;
    g->values[w].nbytes = sizeof wd;
    int h16 = add_value(g, "H", DT_FLOAT16, 1, (int64_t[]){2});
    uint16_t hd[2] = {0x3c00, 0x7bff};
    g->values[h16].role = VR_CONST;
    g->values[h16].data = hd;
    g->values[h16].nbytes = sizeof hd;
    int unused = add_value(g, "unused", DT_INT64, 1, (int64_t[]){1});
    int64_t ud = 5;
    g->values[unused].role = VR_CONST;
    g->values[unused].data = &ud;
    g->values[unused].nbytes = 8;
    int t = add_value(g, "T", DT_FLOAT, 2, (int64_t[]){5, 3}); /* the importer keeps fully known hints only */
    int y = add_value(g, "Y", DT_FLOAT, 2, (int64_t[]){-1, 3});
    g->values[y].dim_param[0] = "batch";
    g->values[y].is_output = 1;
    int z = graph_value(g, "Z");
    g->values[z].is_output = 1;
    g->inputs = arena_array(&a, 1, sizeof(int));
    g->inputs[g->ninputs++] = x;
    g->outputs = arena_array(&a, 2, sizeof(int));
    g->outputs[g->noutputs++] = y;
    g->outputs[g->noutputs++] = z;
    Node *mm = graph_add_node(g, "MatMul", "mm", (int[]){x, w}, 2, &t, 1);
    mm->domain = "";
    mm->opset = 13;
    Node *f = graph_add_node(g, "Fancy", "", (int[]){t, -1, h16}, 3, (int[]){y, -1, z}, 3);
    f->domain = "com.example";
    f->opset = 2;
    Attr *at = node_add_attr(g, f, "f", AT_FLOAT);
    at->f = 1.5e-7f;
    at = node_add_attr(g, f, "i", AT_INT);
    at->i = INT64_MIN;
    at = node_add_attr(g, f, "s", AT_STRING);
    at->s = "a\"b\\c";
    at->slen = 5;
    at = node_add_attr(g, f, "ints", AT_INTS);
    at->n = 3;
    at->ints = (int64_t[]){1, -2, 3};
    at = node_add_attr(g, f, "floats", AT_FLOATS);
    at->n = 2;
    at->floats = (double[]){0.25, -INFINITY};
    at = node_add_attr(g, f, "strings", AT_STRINGS);
    at->n = 2;
    at->strings = (const char *[]){"one", ""};
    at = node_add_attr(g, f, "empty_ints", AT_INTS);
    at->n = 0;
    at->ints = NULL;
    Tensor tv = {.dtype = DT_INT32, .rank = 1, .dims = {2}, .data = (int32_t[]){7, -8}, .nbytes = 8, .name = "tv"};
    Tensor tb = {.dtype = DT_BOOL, .rank = 0, .data = (uint8_t[]){1}, .nbytes = 1};
    at = node_add_attr(g, f, "t", AT_TENSOR);
    at->t = &tv;
    at = node_add_attr(g, f, "ts", AT_TENSORS);
    at->n = 2;
    at->tensors = (Tensor *[]){&tv, &tb};
    Diag d;
    diag_init(&d, NULL);
    CHECK(graph_link(g, &d) == 0);

    const char *p = KDCC_TMP_DIR "/crafted.onnx";
    int rc = onnx_export_file(g, p, &d);
    CHECK(rc == 0);
    if (rc)
        fprintf(stderr, "%s\n", d.msg);
    Graph *g2 = onnx_import_file(&a, p, NULL, &d);
    CHECK(g2 != NULL);
    if (!g2) {
        fprintf(stderr, "%s\n", d.msg);
        arena_free(&a);
        return;
    }
    int same = same_graph(g, g2);
    CHECK(same);
    if (!same)
        fprintf(stderr, "crafted: %s\n", why);
    CHECK(g2->ir_version == 8 && g2->nopsets == 2 && strcmp(g2->opset_domain[1], "com.example") == 0 &&
          g2->opset_version[1] == 2 && g2->opset_version[0] == 13);
    CHECK(graph_find(g2, "unused") < 0);
    CHECK(strcmp(g2->producer_name, "kdcc") == 0 && strcmp(g2->producer_version, KDCC_VERSION) == 0);
    const Value *x2 = &g2->values[graph_find(g2, "X")];
    CHECK(x2->dims[0] == -1 && x2->dim_param[0] && strcmp(x2->dim_param[0], "batch") == 0 && x2->dims[1] == 4);
    const Value *t2 = &g2->values[graph_find(g2, "T")];
    CHECK(t2->dtype == DT_FLOAT && t2->rank == 2); /* from value_info */
    const Node *f2 = g2->nodes[1];
    CHECK(f2->inputs[1] == -1 && f2->outputs[1] == -1 && strcmp(f2->domain, "com.example") == 0 && f2->opset == 2);
    CHECK(strcmp(f2->name, "Fancy_1") == 0); /* unnamed nodes get a name on import */
    const int64_t *ei;
    CHECK(attr_ints(f2, "empty_ints", &ei) == 0 && node_attr(f2, "empty_ints")->type == AT_INTS);

    /* no temporary files left; writing into a missing folder fails with one line */
    DIR *dir = opendir(KDCC_TMP_DIR);
    struct dirent *e;
    int tmps = 0;
    while (dir && (e = readdir(dir)))
        tmps += strstr(e->d_name, ".tmp.") != NULL;
    if (dir)
        closedir(dir);
    CHECK(tmps == 0);
    diag_init(&d, NULL);
    CHECK(onnx_export_file(g, KDCC_TMP_DIR "/missing/x.onnx", &d) != 0 && strstr(d.msg, "cannot write") &&
          !strchr(d.msg, '\n'));
    /* a graph without any opset cannot be exported */
    Graph *e0 = graph_new(&a, "none");
    diag_init(&d, NULL);
    CHECK(onnx_export_file(e0, KDCC_TMP_DIR "/none.onnx", &d) != 0 && strstr(d.msg, "opset"));
    arena_free(&a);
}

int main(int argc, char **argv)
{
    mkdir(KDCC_TMP_DIR, 0755);
    int ai = 1;
    if (argc > 1 && strcmp(argv[1], "--unit") == 0) {
        test_unit();
        printf("%d checks, %d failed\n", checks, failures);
        return failures ? 1 : 0;
    }
    const char *keep = NULL;
    if (argc > 2 && strcmp(argv[1], "--write") == 0) {
        keep = argv[2];
        mkdir(keep, 0755);
        ai = 3;
    }
    Stats st = {0};
    if (ai < argc) {
        for (int i = ai; i < argc; i++)
            scan(argv[i], keep, &st);
    } else {
        scan(KDCC_SHARED_DIR "/onnx-tests/node", keep, &st);
        scan(KDCC_SHARED_DIR "/onnx-tests/models", keep, &st);
    }
    printf("%d models: %d not importable (skipped), %d round trips ok, %d bad; emitted C identical for %d, "
           "different for %d, both refused the same way for %d; compiled graphs exported and compiled again "
           "to the same C: %d, otherwise: %d\n",
           st.models, st.skipped_import, st.roundtrip_ok, st.roundtrip_bad, st.c_same, st.c_differ, st.c_both_fail,
           st.compiled_same, st.compiled_bad);
    return failures || st.roundtrip_bad || st.c_differ || st.compiled_bad ? 1 : 0;
}

/* kdcc info MODEL: what a model is and what compiling it costs.
 *
 * Everything that needs only the imported graph (inputs, outputs, opsets, producer,
 * parameters, the operators and whether kdcc supports them) is printed for any
 * model that loads. The figures that need the whole pipeline (MACs from the
 * inferred static shapes, flash = the weights the emitted file holds, arena = the
 * planned intermediates) are printed when the pipeline runs; otherwise a note
 * says why they are missing.
 */
#include "compiler/cli/cli.h"
#include "compiler/ops/fused.h"

#include "onnx.pb-c.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ------------------------------------------------------------------ external data files */

typedef struct FileList {
    Arena *a;
    const char *dir; /* the model's folder with a trailing '/', or "" */
    const char **files;
    int n, cap;
} FileList;

static void add_file(FileList *l, const char *loc)
{
    if (!loc || !loc[0])
        return;
    const char *full = arena_printf(l->a, "%s%s", l->dir, loc);
    if (!full)
        return;
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->files[i], full) == 0)
            return;
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 8;
        const char **f = arena_array(l->a, (size_t)cap, sizeof *f);
        if (!f)
            return;
        if (l->n)
            memcpy(f, l->files, (size_t)l->n * sizeof *f);
        l->files = f;
        l->cap = cap;
    }
    l->files[l->n++] = full;
}

static void tensor_files(FileList *l, const Onnx__TensorProto *t)
{
    if (!t || !t->has_data_location || t->data_location != ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)
        return;
    for (size_t i = 0; i < t->n_external_data; i++) {
        const Onnx__StringStringEntryProto *e = t->external_data[i];
        if (e && e->key && strcmp(e->key, "location") == 0)
            add_file(l, e->value);
    }
}

static void graph_files(FileList *l, const Onnx__GraphProto *g, int depth);

static void nodes_files(FileList *l, Onnx__NodeProto *const *nodes, size_t nn, int depth)
{
    for (size_t i = 0; i < nn; i++) {
        const Onnx__NodeProto *n = nodes[i];
        for (size_t k = 0; n && k < n->n_attribute; k++) {
            const Onnx__AttributeProto *at = n->attribute[k];
            if (!at)
                continue;
            tensor_files(l, at->t);
            for (size_t j = 0; j < at->n_tensors; j++)
                tensor_files(l, at->tensors[j]);
            if (at->sparse_tensor) {
                tensor_files(l, at->sparse_tensor->values);
                tensor_files(l, at->sparse_tensor->indices);
            }
            for (size_t j = 0; j < at->n_sparse_tensors; j++)
                if (at->sparse_tensors[j]) {
                    tensor_files(l, at->sparse_tensors[j]->values);
                    tensor_files(l, at->sparse_tensors[j]->indices);
                }
            graph_files(l, at->g, depth + 1);
            for (size_t j = 0; j < at->n_graphs; j++)
                graph_files(l, at->graphs[j], depth + 1);
        }
    }
}

static void graph_files(FileList *l, const Onnx__GraphProto *g, int depth)
{
    if (!g || depth > 64)
        return;
    for (size_t i = 0; i < g->n_initializer; i++)
        tensor_files(l, g->initializer[i]);
    for (size_t i = 0; i < g->n_sparse_initializer; i++)
        if (g->sparse_initializer[i]) {
            tensor_files(l, g->sparse_initializer[i]->values);
            tensor_files(l, g->sparse_initializer[i]->indices);
        }
    nodes_files(l, g->node, g->n_node, depth);
}

int model_external_files(Arena *a, const char *model, const char ***files, Diag *d)
{
    *files = NULL;
    FILE *f = fopen(model, "rb");
    if (!f)
        return diag_error(d, NULL, "cannot open model file '%s': %s", model, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 || st.st_size > (off_t)1 << 31) {
        fclose(f);
        return 0; /* not a file we can read whole: model_load reports it */
    }
    size_t len = (size_t)st.st_size;
    uint8_t *buf = malloc(len);
    if (!buf) {
        fclose(f);
        return diag_error(d, NULL, "out of memory reading '%s'", model);
    }
    size_t got = fread(buf, 1, len, f);
    fclose(f);
    Onnx__ModelProto *m = got == len ? onnx__model_proto__unpack(NULL, len, buf) : NULL;
    free(buf);
    if (!m)
        return 0; /* the textual syntax (no external data), or a file model_load rejects */
    const char *slash = strrchr(model, '/');
    FileList l = {.a = a, .dir = slash ? arena_strndup(a, model, (size_t)(slash - model) + 1) : ""};
    graph_files(&l, m->graph, 0);
    for (size_t i = 0; i < m->n_functions; i++)
        if (m->functions[i])
            nodes_files(&l, m->functions[i]->node, m->functions[i]->n_node, 0);
    onnx__model_proto__free_unpacked(m, NULL);
    *files = l.files;
    return l.n;
}

/* ------------------------------------------------------------------ the report */

typedef struct OpRow {
    const char *domain, *op;
    int count;
    const char *status;   /* "yes" or why not */
    int supported;
    int64_t macs;
} OpRow;

static int oprow_cmp(const void *pa, const void *pb)
{
    const OpRow *a = pa, *b = pb;
    int c = strcmp(a->domain, b->domain);
    return c ? c : strcmp(a->op, b->op);
}

static void print_values(const Graph *g, const int *ids, int n, int only_inputs, const char *indent)
{
    int w = 4;
    for (int i = 0; i < n; i++) {
        const Value *v = &g->values[ids[i]];
        if (only_inputs && v->role != VR_INPUT)
            continue;
        if ((int)strlen(v->name) > w)
            w = (int)strlen(v->name);
    }
    for (int i = 0; i < n; i++) {
        const Value *v = &g->values[ids[i]];
        if (only_inputs && v->role != VR_INPUT)
            continue;
        char ts[512];
        printf("%s%-*s  %s\n", indent, w, v->name, value_type_str(v, ts, sizeof ts));
    }
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: kdcc info MODEL [options]      describe MODEL and what compiling it costs\n"
            "\n"
            "Prints inputs and outputs, opset imports, IR version, producer, parameters, the\n"
            "operators used (and whether kdcc supports each), and, when the whole pipeline runs,\n"
            "MACs, flash (weights in the emitted file) and arena (intermediates) bytes.\n"
            "\n"
            "      --shape IN=DxDx..   bind the symbolic dims of graph input IN (repeatable)\n"
            "      --batch N           bind a symbolic first dim of every input to N\n"
            "                          (without --shape or --batch, symbolic first dims are taken as 1)\n"
            "      --keep-initializer-inputs  graph inputs with initializers stay inputs\n"
            "      --no-fold           no constant folding\n"
            "  -h, --help              this text\n");
}

int cmd_info(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"shape", required_argument, 0, 's'},
        {"batch", required_argument, 0, 'b'},
        {"keep-initializer-inputs", no_argument, 0, 'k'},
        {"no-fold", no_argument, 0, 'F'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    Arena a;
    arena_init(&a);
    Diag d;
    diag_init(&d, NULL);
    ImportOptions imp = {0};
    PassOptions po = {.fold = 1};
    ShapeBinding shapes[64];
    int nshapes = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 's':
            if (nshapes == 64 || parse_shape_binding(&a, optarg, &shapes[nshapes++], &d))
                goto fail;
            break;
        case 'b':
            if (parse_batch(optarg, &po.batch, &d))
                goto fail;
            break;
        case 'k': imp.inputs_as_params = 1; break;
        case 'F': po.fold = 0; break;
        case 'h':
            usage(stdout);
            arena_free(&a);
            return 0;
        default:
            usage(stderr);
            arena_free(&a);
            return 2;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "kdcc: error: %s\n", optind >= argc ? "no model given" : "more than one model given");
        usage(stderr);
        arena_free(&a);
        return 2;
    }
    const char *model = argv[optind];
    po.shapes = shapes;
    po.nshapes = nshapes;
    d.file = model;
    Graph *g = model_load(&a, model, &imp, &d);
    if (!g)
        goto fail;
    const char **ext = NULL;
    int next = model_external_files(&a, model, &ext, &d);
    if (next < 0)
        goto fail;

    /* ---- the model as imported ---- */
    printf("model        %s\n", model);
    if (g->name && g->name[0])
        printf("graph        %s\n", g->name);
    printf("ir_version   %d\n", g->ir_version);
    printf("opsets      ");
    if (g->nopsets == 0)
        printf(" ai.onnx %d", g->opset);
    for (int i = 0; i < g->nopsets; i++)
        printf(" %s %" PRId64 "%s", g->opset_domain[i][0] ? g->opset_domain[i] : "ai.onnx", g->opset_version[i],
               i + 1 < g->nopsets ? "," : "");
    printf("\n");
    if ((g->producer_name && g->producer_name[0]) || (g->producer_version && g->producer_version[0]))
        printf("producer     %s%s%s\n", g->producer_name ? g->producer_name : "",
               g->producer_version && g->producer_version[0] ? " " : "",
               g->producer_version ? g->producer_version : "");
    for (int i = 0; i < next; i++) {
        struct stat st;
        if (stat(ext[i], &st) == 0)
            printf("%s %s (%" PRId64 " bytes)\n", i ? "            " : "external    ", ext[i], (int64_t)st.st_size);
        else
            printf("%s %s (missing)\n", i ? "            " : "external    ", ext[i]);
    }

    /* parameters: initializers and Constant nodes' tensors */
    int64_t nparams = 0, pbytes = 0;
    int ntensors = 0;
    for (int v = 0; v < g->nvalues; v++) {
        const Value *val = &g->values[v];
        if (val->role != VR_CONST)
            continue;
        int64_t k = value_numel(val);
        nparams += k > 0 ? k : 0;
        pbytes += (int64_t)val->nbytes;
        ntensors++;
    }
    for (int i = 0; i < g->nnodes; i++) {
        const Node *n = g->nodes[i];
        const Tensor *t;
        if (strcmp(n->op_type, "Constant") != 0 || (n->domain && n->domain[0]) || !(t = attr_tensor(n, "value")))
            continue;
        int64_t k = dims_numel(t->rank, t->dims);
        nparams += k > 0 ? k : 0;
        pbytes += (int64_t)t->nbytes;
        ntensors++;
    }

    /* the operators */
    OpRow *rows = arena_array(&a, (size_t)g->nnodes + 1, sizeof *rows);
    int nrows = 0, nunsupported = 0;
    if (!rows) {
        diag_error(&d, NULL, "out of memory");
        goto fail;
    }
    for (int i = 0; i < g->nnodes; i++) {
        const Node *n = g->nodes[i];
        const char *dom = n->domain ? n->domain : "";
        if (strcmp(dom, "ai.onnx") == 0)
            dom = "";
        int r = 0;
        while (r < nrows && !(strcmp(rows[r].domain, dom) == 0 && strcmp(rows[r].op, n->op_type) == 0))
            r++;
        if (r == nrows) {
            rows[r] = (OpRow){.domain = dom, .op = n->op_type, .status = "yes", .supported = 1};
            nrows++;
        }
        rows[r].count++;
        if (!rows[r].supported)
            continue;
        const OpDef *o = op_lookup(n->domain, n->op_type);
        if (!o) {
            rows[r].supported = 0;
            rows[r].status = dom[0] ? "no (domain not supported)" : "no (unsupported operator)";
        } else if (n->opset && n->opset < o->since) {
            rows[r].supported = 0;
            rows[r].status = arena_printf(&a, "no (opset %d; kdcc handles %d and later)", n->opset, o->since);
        }
    }
    qsort(rows, (size_t)nrows, sizeof *rows, oprow_cmp);
    for (int r = 0; r < nrows; r++)
        nunsupported += !rows[r].supported;

    printf("\ninputs\n");
    print_values(g, g->inputs, g->ninputs, 1, "  ");
    printf("outputs\n");
    print_values(g, g->outputs, g->noutputs, 0, "  ");
    char hb[64], hb2[64];
    printf("\nparameters   %s in %d tensors, %s\n", human_count(hb, sizeof hb, nparams, 0), ntensors,
           human_count(hb2, sizeof hb2, pbytes, 1));
    printf("nodes        %d\n", g->nnodes);

    /* ---- the pipeline: static shapes, MACs, flash, arena ---- */
    int compiled = 0;
    int assumed_batch = 0;
    char why[1200] = "";
    Writer cw, hw;
    w_init(&cw);
    w_init(&hw);
    int64_t macs_total = 0, flash = 0, arena_bytes = 0;
    int nweights = 0;
    if (nunsupported) {
        snprintf(why, sizeof why, "%d operator%s not supported", nunsupported, nunsupported == 1 ? " is" : "s are");
    } else {
        if (po.batch == 0 && nshapes == 0) {
            for (int i = 0; i < g->ninputs; i++) {
                const Value *v = &g->values[g->inputs[i]];
                assumed_batch |= v->role == VR_INPUT && v->rank > 0 && v->dims[0] < 0;
            }
            if (assumed_batch)
                po.batch = 1;
        }
        Diag pd;
        diag_init(&pd, model);
        char nm[64];
        name_from_path(model, nm, sizeof nm);
        EmitOptions eo = {.name = nm, .header = "model.h"};
        if (run_pipeline(g, &po, &pd) == 0 && emit_c(g, &eo, &cw, &hw, &pd) == 0) {
            compiled = 1;
            for (int i = 0; i < g->nnodes; i++) {
                const Node *n = g->nodes[i];
                if (n->dead)
                    continue;
                int64_t m = node_macs(g, n);
                macs_total += m;
                const char *dom = n->domain && strcmp(n->domain, "ai.onnx") != 0 ? n->domain : "";
                const char *op = fused_base_op(n); /* kdcc.FusedConv: the model's Conv */
                if (op)
                    dom = "";
                else
                    op = n->op_type;
                for (int r = 0; r < nrows; r++)
                    if (strcmp(rows[r].domain, dom) == 0 && strcmp(rows[r].op, op) == 0)
                        rows[r].macs += m;
            }
            flash = emitted_weight_bytes(cw.buf, &nweights);
            arena_bytes = plan_arena_bytes(g);
        } else {
            snprintf(why, sizeof why, "%s", pd.msg);
        }
    }

    /* the operator table */
    int wop = 8, wst = 9;
    for (int r = 0; r < nrows; r++) {
        int l = (int)strlen(rows[r].op) + (rows[r].domain[0] ? (int)strlen(rows[r].domain) + 1 : 0);
        if (l > wop)
            wop = l;
        if ((int)strlen(rows[r].status) > wst)
            wst = (int)strlen(rows[r].status);
    }
    int wm = 4;
    for (int r = 0; compiled && r < nrows; r++) {
        char mb[32];
        int l = snprintf(mb, sizeof mb, "%" PRId64, rows[r].macs);
        if (l > wm)
            wm = l;
    }
    if (compiled)
        printf("\n  %-*s  %5s  %-*s  %*s\n", wop, "operator", "count", wst, "supported", wm, "MACs");
    else
        printf("\n  %-*s  %5s  %s\n", wop, "operator", "count", "supported");
    for (int r = 0; r < nrows; r++) {
        char on[512];
        snprintf(on, sizeof on, "%s%s%s", rows[r].domain, rows[r].domain[0] ? "." : "", rows[r].op);
        if (!compiled)
            printf("  %-*s  %5d  %s\n", wop, on, rows[r].count, rows[r].status);
        else if (op_counts_macs(rows[r].op))
            printf("  %-*s  %5d  %-*s  %*" PRId64 "\n", wop, on, rows[r].count, wst, rows[r].status, wm, rows[r].macs);
        else
            printf("  %-*s  %5d  %-*s  %*s\n", wop, on, rows[r].count, wst, rows[r].status, wm, "-");
    }

    if (!compiled) {
        printf("\nMACs, flash and arena need the whole pipeline, which did not run: %s\n", why);
        w_free(&cw);
        w_free(&hw);
        arena_free(&a);
        return 0;
    }
    if (assumed_batch)
        printf("\nsymbolic first dims taken as 1 (give --batch N or --shape IN=... to change)\n");
    printf("\ncompiled\n");
    printf("  inputs\n");
    print_values(g, g->inputs, g->ninputs, 1, "    ");
    printf("  outputs\n");
    print_values(g, g->outputs, g->noutputs, 0, "    ");
    int live = 0;
    for (int i = 0; i < g->nnodes; i++)
        live += !g->nodes[i]->dead;
    printf("  nodes      %d (after constant folding and dead-code elimination)\n", live);
    printf("  MACs       %s (Conv, ConvTranspose, Gemm, MatMul, Einsum and their integer forms;\n"
           "             other operators count as 0)\n",
           human_count(hb, sizeof hb, macs_total, 0));
    printf("  flash      %s (%d weight array%s as const data)\n", human_count(hb, sizeof hb, flash, 1), nweights,
           nweights == 1 ? "" : "s");
    printf("  arena      %s (intermediates; NAME_WORKSPACE_BYTES)\n", human_count(hb, sizeof hb, arena_bytes, 1));
    w_free(&cw);
    w_free(&hw);
    arena_free(&a);
    return 0;
fail:
    diag_print(&d, stderr);
    arena_free(&a);
    return 1;
}

/* kdcc dot MODEL: the graph in Graphviz dot.
 *
 * Nodes are boxes with the operator and the node name; constant inputs are folded
 * into the label of the node that reads them (small ones with their values), so big
 * models stay readable; edges carry the element type and shape of the tensor they
 * move; graph inputs and outputs are ellipses. Operators kdcc does not support are
 * filled red. The output depends only on the model and the options.
 */
#include "compiler/cli/cli.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* a string inside a double-quoted dot label */
static void dot_str(Writer *w, const char *s, size_t max)
{
    size_t n = strlen(s);
    size_t keep = n > max ? max - 3 : n;
    for (size_t i = 0; i < keep; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            w_printf(w, "\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            w_puts(w, "?");
        else
            w_printf(w, "%c", c);
    }
    if (keep < n)
        w_puts(w, "...");
}

static void const_label(Writer *w, const Value *v)
{
    char ts[256];
    dot_str(w, v->name, 32);
    int64_t n = value_numel(v);
    if (n >= 0 && n <= 8 && v->data && (dtype_is_float(v->dtype) || dtype_is_int(v->dtype) || v->dtype == DT_BOOL ||
                                        v->dtype == DT_FLOAT16 || v->dtype == DT_BFLOAT16)) {
        w_puts(w, v->rank == 0 ? " = " : " = [");
        for (int64_t i = 0; i < n; i++) {
            if (i)
                w_puts(w, ", ");
            if (dtype_is_int(v->dtype) || v->dtype == DT_BOOL)
                w_printf(w, "%" PRId64, const_get_i64(v, i));
            else
                w_printf(w, "%.6g", const_get_f64(v, i));
        }
        if (v->rank != 0)
            w_puts(w, "]");
        return;
    }
    w_puts(w, ": ");
    dot_str(w, value_type_str(v, ts, sizeof ts), 200);
}

static int is_graph_input(const Graph *g, int v)
{
    for (int i = 0; i < g->ninputs; i++)
        if (g->inputs[i] == v)
            return 1;
    return 0;
}

static void edge(Writer *w, const Graph *g, int vid, const char *to)
{
    const Value *v = &g->values[vid];
    char ts[256];
    if (v->producer >= 0 && !g->nodes[v->producer]->dead)
        w_printf(w, "  n%d -> %s [label=\"", v->producer, to);
    else
        w_printf(w, "  v%d -> %s [label=\"", vid, to);
    if (v->dtype == DT_UNDEFINED && v->rank < 0)
        w_puts(w, "?"); /* not inferred (yet) */
    else
        dot_str(w, value_type_str(v, ts, sizeof ts), 200);
    w_puts(w, "\", tooltip=\"");
    dot_str(w, v->name, 200);
    w_puts(w, "\"];\n");
}

/* The graph as it is now (any pass). */
static void dot_graph(const Graph *g, const char *title, Writer *w)
{
    char ts[256];
    w_puts(w, "digraph \"");
    dot_str(w, g->name && g->name[0] ? g->name : "model", 200);
    w_puts(w, "\" {\n");
    w_puts(w, "  graph [rankdir=TB, fontname=\"Helvetica\", fontsize=11, labelloc=t, label=\"");
    dot_str(w, title, 400);
    w_puts(w, "\"];\n");
    w_puts(w, "  node [shape=box, style=\"rounded,filled\", fillcolor=\"#f2f2f2\", fontname=\"Helvetica\", fontsize=10];\n");
    w_puts(w, "  edge [fontname=\"Helvetica\", fontsize=8, color=\"#555555\"];\n");

    /* graph inputs given at run time, and values with no producer that are not constants */
    for (int v = 0; v < g->nvalues; v++) {
        const Value *val = &g->values[v];
        int input = is_graph_input(g, v) && val->role == VR_INPUT;
        int orphan = !input && val->role != VR_CONST && val->producer < 0;
        if (!input && !orphan)
            continue;
        /* only values something reads or the graph returns */
        int used = val->is_output;
        for (int i = 0; i < g->nnodes && !used; i++)
            for (int j = 0; j < g->nodes[i]->ninputs && !used; j++)
                used = !g->nodes[i]->dead && g->nodes[i]->inputs[j] == v;
        if (!input && !used)
            continue;
        w_printf(w, "  v%d [shape=ellipse, %s, label=\"", v,
                 input ? "fillcolor=\"#d6e6fa\"" : "style=dashed, fillcolor=\"#ffffff\"");
        dot_str(w, val->name, 48);
        w_puts(w, "\\n");
        dot_str(w, value_type_str(val, ts, sizeof ts), 200);
        w_puts(w, "\"];\n");
    }

    /* the nodes, with their constant inputs in the label */
    for (int i = 0; i < g->nnodes; i++) {
        const Node *n = g->nodes[i];
        if (n->dead)
            continue;
        const OpDef *o = n->op ? n->op : op_lookup(n->domain, n->op_type);
        int supported = o && !(n->opset && n->opset < o->since);
        w_printf(w, "  n%d [", i);
        if (!supported)
            w_puts(w, "fillcolor=\"#f7c6c6\", ");
        w_puts(w, "label=\"");
        if (n->domain && n->domain[0] && strcmp(n->domain, "ai.onnx") != 0) {
            dot_str(w, n->domain, 48);
            w_puts(w, ".");
        }
        dot_str(w, n->op_type, 64);
        if (!supported)
            w_puts(w, " (unsupported)");
        if (n->name && n->name[0]) {
            w_puts(w, "\\n");
            dot_str(w, n->name, 48);
        }
        /* the header lines are centred; the constant lines below them left-justified */
        int first = 1;
        for (int j = 0; j < n->ninputs; j++) {
            const Value *v = node_in(g, n, j);
            if (!v || v->role != VR_CONST)
                continue;
            w_printf(w, "%sx%d ", first ? "\\n" : "", j);
            const_label(w, v);
            w_puts(w, "\\l");
            first = 0;
        }
        w_puts(w, "\"];\n");
    }

    /* graph outputs */
    for (int i = 0; i < g->noutputs; i++) {
        const Value *v = &g->values[g->outputs[i]];
        w_printf(w, "  out%d [shape=ellipse, fillcolor=\"#d8f0d8\", label=\"", i);
        dot_str(w, v->name, 48);
        w_puts(w, "\\n");
        dot_str(w, value_type_str(v, ts, sizeof ts), 200);
        if (v->role == VR_CONST)
            w_puts(w, "\\n(constant)");
        w_puts(w, "\"];\n");
    }

    /* edges: every non-constant input of a node, and every output */
    for (int i = 0; i < g->nnodes; i++) {
        const Node *n = g->nodes[i];
        if (n->dead)
            continue;
        char to[32];
        snprintf(to, sizeof to, "n%d", i);
        for (int j = 0; j < n->ninputs; j++)
            if (n->inputs[j] >= 0 && g->values[n->inputs[j]].role != VR_CONST)
                edge(w, g, n->inputs[j], to);
    }
    for (int i = 0; i < g->noutputs; i++) {
        int v = g->outputs[i];
        if (g->values[v].role == VR_CONST)
            continue;
        char to[32];
        snprintf(to, sizeof to, "out%d", i);
        edge(w, g, v, to);
    }
    w_puts(w, "}\n");
}

/* --dump-after: the pass manager calls this after the named pass */
static Writer *capture_w;
static const char *capture_title;
static int captured;
static void capture(const Graph *g, FILE *f)
{
    (void)f;
    if (captured || !capture_w)
        return;
    dot_graph(g, capture_title, capture_w);
    captured = 1;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: kdcc dot MODEL [options]       the graph of MODEL in Graphviz dot\n"
            "\n"
            "Nodes are boxes (operator, node name, constant inputs; unsupported operators in red),\n"
            "edges carry tensor types and shapes, graph inputs and outputs are ellipses.\n"
            "By default the graph kdcc compiles (after all passes); if the pipeline fails,\n"
            "the graph as imported, with a note on stderr. Render with: dot -Tsvg m.dot -o m.svg\n"
            "\n"
            "  -o, --output FILE       write to FILE (default: standard output)\n"
            "      --dump-after PASS   the graph after PASS (import bind infer fuse winograd layout dce alias plan)\n"
            "      --shape IN=DxDx..   bind the symbolic dims of graph input IN (repeatable)\n"
            "      --batch N           bind a symbolic first dim of every input to N\n"
            "                          (without --shape or --batch, symbolic first dims are taken as 1)\n"
            "      --keep-initializer-inputs  graph inputs with initializers stay inputs\n"
            "      --no-fold           no constant folding\n"
            "  -h, --help              this text\n");
}

int cmd_dot(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"output", required_argument, 0, 'o'},
        {"dump-after", required_argument, 0, 'D'},
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
    const char *out = NULL, *after = NULL;
    Writer w;
    w_init(&w);
    int rc = 1;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "o:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 'D': after = optarg; break;
        case 's':
            if (nshapes == 64 || parse_shape_binding(&a, optarg, &shapes[nshapes++], &d))
                goto done;
            break;
        case 'b':
            if (parse_batch(optarg, &po.batch, &d))
                goto done;
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
    if (after) {
        int known = 0;
        for (int i = 0; pipeline_passes[i]; i++)
            known |= strcmp(pipeline_passes[i], after) == 0;
        if (!known) {
            diag_error(&d, NULL, "--dump-after: no pass named '%s' (passes: import bind infer fuse winograd layout dce alias plan)", after);
            goto done;
        }
    }
    po.shapes = shapes;
    po.nshapes = nshapes;
    d.file = model;
    Graph *g = model_load(&a, model, &imp, &d);
    if (!g)
        goto done;
    if (po.batch == 0 && nshapes == 0)
        for (int i = 0; i < g->ninputs; i++) {
            const Value *v = &g->values[g->inputs[i]];
            if (v->role == VR_INPUT && v->rank > 0 && v->dims[0] < 0)
                po.batch = 1;
        }
    const char *mb = strrchr(model, '/');
    mb = mb ? mb + 1 : model;

    Diag pd;
    diag_init(&pd, model);
    if (after) {
        FILE *sink = tmpfile(); /* the pass manager's "# after PASS" line */
        if (!sink) {
            diag_error(&d, NULL, "cannot create a temporary file");
            goto done;
        }
        capture_w = &w;
        capture_title = arena_printf(&a, "%s after %s", mb, after);
        captured = 0;
        po.dump_after = after;
        po.dump = capture;
        po.dump_to = sink;
        int prc = run_pipeline(g, &po, &pd);
        fclose(sink);
        capture_w = NULL;
        if (!captured) { /* a pass before the one asked for failed */
            if (prc)
                d = pd;
            goto done;
        }
    } else {
        /* the graph as imported, kept in case the pipeline fails */
        Writer imported;
        w_init(&imported);
        dot_graph(g, arena_printf(&a, "%s as imported", mb), &imported);
        if (run_pipeline(g, &po, &pd) == 0) {
            dot_graph(g, arena_printf(&a, "%s", mb), &w);
            w_free(&imported);
        } else {
            fprintf(stderr, "kdcc: note: %s; drawing the graph as imported\n", pd.msg);
            w_free(&w);
            w = imported;
        }
    }
    if (w.oom) {
        diag_error(&d, NULL, "out of memory");
        goto done;
    }
    if (out) {
        if (w_save_atomic(&w, out, &d))
            goto done;
    } else if (w.len && fwrite(w.buf, 1, w.len, stdout) != w.len) {
        diag_error(&d, NULL, "cannot write to standard output");
        goto done;
    }
    rc = 0;
done:
    if (rc)
        diag_print(&d, stderr);
    w_free(&w);
    arena_free(&a);
    return rc;
}

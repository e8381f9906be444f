/* kdcc MODEL -o OUT: compile a model to C. */
#include "compiler/cli/cli.h"
#include "compiler/ir/target.h"
#include "runtime/validate.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int bind_const(Graph *g, const char *name, const Tensor *t, Diag *d)
{
    int id = graph_find(g, name);
    int is_input = 0;
    for (int i = 0; id >= 0 && i < g->ninputs; i++)
        is_input |= g->inputs[i] == id;
    if (!is_input)
        return diag_error(d, NULL, "--const: '%s' is not a graph input", name);
    Value *v = &g->values[id];
    if (v->role == VR_CONST)
        return 0;
    if (v->dtype != DT_UNDEFINED && v->dtype != t->dtype)
        return diag_error(d, NULL, "--const %s: element type %s given, the model says %s", name,
                          dtype_name(t->dtype), dtype_name(v->dtype));
    if (v->rank >= 0) {
        if (v->rank != t->rank)
            return diag_error(d, NULL, "--const %s: rank %d given, the model says %d", name, t->rank, v->rank);
        for (int i = 0; i < t->rank; i++)
            if (v->dims[i] >= 0 && v->dims[i] != t->dims[i])
                return diag_error(d, NULL, "--const %s: dim %d is %" PRId64 ", the model says %" PRId64, name, i,
                                  t->dims[i], v->dims[i]);
    }
    value_set_shape(v, t->dtype, t->rank, t->dims);
    v->role = VR_CONST;
    v->data = t->data;
    v->nbytes = t->nbytes;
    return 0;
}

int compile_graph(Graph *g, const CompileOptions *o, Writer *c, Writer *h, Diag *d)
{
    for (int i = 0; i < o->nconsts; i++)
        if (bind_const(g, o->consts[i].name, &o->consts[i].t, d))
            return -1;
    if (run_pipeline(g, &o->pass, d))
        return -1;
    if (emit_c(g, &o->emit, c, h, d))
        return -1;
    if (o->validate) {
        const char *hn = o->emit.header ? o->emit.header : "model.h";
        char cn[256];
        snprintf(cn, sizeof cn, "%s.c", o->emit.name);
        if (validate_c(cn, c->buf ? c->buf : "", c->len, hn, h->buf ? h->buf : "", h->len, d))
            return -1;
    }
    return 0;
}

int parse_shape_binding(Arena *a, const char *spec, ShapeBinding *b, Diag *d)
{
    const char *eq = strrchr(spec, '=');
    if (!eq || eq == spec)
        return diag_error(d, NULL, "--shape wants NAME=D1xD2x..., got '%s'", spec);
    b->name = arena_strndup(a, spec, (size_t)(eq - spec));
    b->rank = 0;
    const char *p = eq + 1;
    if (!*p)
        return 0; /* scalar */
    while (*p) {
        if (b->rank == KD_MAX_RANK)
            return diag_error(d, NULL, "--shape %s: more than %d dims", b->name, KD_MAX_RANK);
        char *end;
        errno = 0;
        long long v = strtoll(p, &end, 10);
        if (end == p || v < 0 || errno)
            return diag_error(d, NULL, "--shape %s: bad dim '%s'", b->name, p);
        b->dims[b->rank++] = v;
        p = end;
        if (*p == 'x' || *p == 'X' || *p == ',')
            p++;
        else if (*p)
            return diag_error(d, NULL, "--shape %s: bad dim separator '%c'", b->name, *p);
    }
    return 0;
}

/* Write w to a temporary file beside path; the caller renames it. */
static int save_tmp(const Writer *w, const char *tmp, const char *path, Diag *d)
{
    if (w->oom)
        return diag_error(d, NULL, "out of memory while writing '%s'", path);
    FILE *f = fopen(tmp, "wb");
    if (!f)
        return diag_error(d, NULL, "cannot write '%s': %s", path, strerror(errno));
    int bad = w->len && fwrite(w->buf, 1, w->len, f) != w->len;
    bad |= fflush(f) != 0;
    int e = errno;
    bad |= fclose(f) != 0;
    if (bad) {
        remove(tmp);
        return diag_error(d, NULL, "cannot write '%s': %s", path, strerror(e ? e : errno));
    }
    return 0;
}

int parse_batch(const char *s, int64_t *batch, Diag *d)
{
    char *end;
    errno = 0;
    long long b = strtoll(s, &end, 10);
    if (*end || end == s || b <= 0 || errno)
        return diag_error(d, NULL, "--batch wants a positive number, got '%s'", s);
    *batch = b;
    return 0;
}

int save_pair(const Writer *w1, const char *p1, const Writer *w2, const char *p2, Diag *d)
{
    char t1[4200], t2[4200];
    snprintf(t1, sizeof t1, "%s.tmp.%ld", p1, (long)getpid());
    snprintf(t2, sizeof t2, "%s.tmp.%ld", p2, (long)getpid());
    if (save_tmp(w1, t1, p1, d))
        return -1;
    if (save_tmp(w2, t2, p2, d)) {
        remove(t1);
        return -1;
    }
    if (rename(t1, p1) != 0) {
        int e = errno;
        remove(t1);
        remove(t2);
        return diag_error(d, NULL, "cannot write '%s': %s", p1, strerror(e));
    }
    if (rename(t2, p2) != 0) {
        int e = errno;
        remove(p1);
        remove(t2);
        return diag_error(d, NULL, "cannot write '%s': %s", p2, strerror(e));
    }
    return 0;
}

void name_from_path(const char *path, char *out, size_t n)
{
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    size_t k = 0;
    if (isdigit((unsigned char)*b) && k + 1 < n)
        out[k++] = 'm';
    for (; *b && *b != '.' && k + 1 < n && k < 40; b++)
        out[k++] = isalnum((unsigned char)*b) ? *b : '_';
    if (k == 0 && n > 5) {
        memcpy(out, "model", 5);
        k = 5;
    }
    out[k] = 0;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: kdcc MODEL -o OUT [options]       compile MODEL (.onnx or textual syntax) to C\n"
            "\n"
            "  -o, --output PATH       OUT.c and OUT.h; or a directory (ending in '/'): DIR/NAME.c, DIR/NAME.h\n"
            "      --name NAME         C prefix of the API (default: from the output file name)\n"
            "      --shape IN=DxDx..   bind the symbolic dims of graph input IN (repeatable)\n"
            "      --batch N           bind a symbolic first dim of every input to N\n"
            "      --const IN=FILE     freeze graph input IN to the tensor in FILE (TensorProto .pb)\n"
            "      --keep-initializer-inputs  graph inputs with initializers stay inputs\n"
            "      --dump-after PASS   print the graph in textual syntax after PASS\n"
            "                          (import bind infer fuse winograd layout dce alias plan, or all) to stderr\n"
            "      --target NAME       tile the kernels for NAME: generic (default), x86-64-v3, x86-64-v4,\n"
            "                          cortex-a53, cortex-m7, cortex-m4, or native (this host's CPU;\n"
            "                          kdcc --target list describes them)\n"
            "      --tune              time candidate register blocks of each distinct Conv layer on this\n"
            "                          host ($CC, KDCC_TUNE_CFLAGS) and keep the fastest; the choices are\n"
            "                          recorded in the tune file (default OUT.tune)\n"
            "      --tune-file FILE    read the choices from FILE (a build that gives it without --tune\n"
            "                          times nothing); with --tune, add the layers it lacks\n"
            "      --tune-retime       time each layer's recorded block (and form) again and rewrite its time\n"
            "                          in the tune file; the choices stay (figures from one run)\n"
            "      --openmp            OpenMP pragmas (guarded by #ifdef _OPENMP) on the block loops of large\n"
            "                          Conv layers: build with -fopenmp for threads; results do not change\n"
            "      --max-model-bytes N refuse a model file (with its external data) larger than N bytes\n"
            "                          (default 2 GiB; suffixes k, M, G)\n"
            "      --no-fold           no constant folding\n"
            "      --no-validate       do not parse the output with libclang before writing it\n"
            "      --depfile FILE      also write FILE, Make rules like cc -MD: 'OUT.c OUT.h: MODEL [external data]'\n"
            "      --report            print per node the operator, output shape, MACs, bytes and arena offset,\n"
            "                          and the totals (weights, code estimate, arena, its lower bound) to stdout;\n"
            "                          without -o only the report: no file is written\n"
            "  -h, --help              this text\n");
}

/* a path in a Make rule: spaces and '#' escaped with '\\', '$' doubled */
static void dep_path(Writer *w, const char *p)
{
    for (; *p; p++) {
        if (*p == ' ' || *p == '#' || *p == '\\')
            w_printf(w, "\\%c", *p);
        else if (*p == '$')
            w_puts(w, "$$");
        else
            w_printf(w, "%c", *p);
    }
}

/* --depfile: "OUT.c OUT.h: MODEL [external data files]", like cc -MD, so Make and
 * Ninja re-run kdcc when the model or its weights change. */
static int write_depfile(Arena *a, const char *path, const char *cpath, const char *hpath, const char *model,
                         const char *const *consts, int nconsts, Diag *d)
{
    const char **ext = NULL;
    int next = model_external_files(a, model, &ext, d);
    if (next < 0)
        return -1;
    Writer w;
    w_init(&w);
    dep_path(&w, cpath);
    w_puts(&w, " ");
    dep_path(&w, hpath);
    w_puts(&w, ":");
    w_puts(&w, " ");
    dep_path(&w, model);
    for (int i = 0; i < next; i++) {
        w_puts(&w, " \\\n  ");
        dep_path(&w, ext[i]);
    }
    for (int i = 0; i < nconsts; i++) { /* --const IN=FILE */
        w_puts(&w, " \\\n  ");
        dep_path(&w, strchr(consts[i], '=') + 1);
    }
    w_puts(&w, "\n");
    int rc = w_save_atomic(&w, path, d);
    w_free(&w);
    return rc;
}

static void dump_text(const Graph *g, FILE *f)
{
    Writer w;
    w_init(&w);
    onnx_text_print(g, &w);
    if (w.buf)
        fputs(w.buf, f);
    w_free(&w);
}

static int tune_hook(Graph *g, void *ctx, Diag *d) { return tune_graph(g, ctx, d); }

int cmd_compile(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"output", required_argument, 0, 'o'},
        {"name", required_argument, 0, 'n'},
        {"shape", required_argument, 0, 's'},
        {"batch", required_argument, 0, 'b'},
        {"const", required_argument, 0, 'c'},
        {"keep-initializer-inputs", no_argument, 0, 'k'},
        {"dump-after", required_argument, 0, 'D'},
        {"no-fold", no_argument, 0, 'F'},
        {"no-validate", no_argument, 0, 'V'},
        {"depfile", required_argument, 0, 'M'},
        {"report", no_argument, 0, 'R'},
        {"target", required_argument, 0, 'T'},
        {"tune", no_argument, 0, 'U'},
        {"openmp", no_argument, 0, 'P'},
        {"max-model-bytes", required_argument, 0, 'X'},
        {"tune-file", required_argument, 0, 'u'},
        {"tune-retime", no_argument, 0, 'Y'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    Arena a;
    arena_init(&a);
    Diag d;
    diag_init(&d, NULL);
    CompileOptions o = {.validate = 1};
    o.pass.fold = 1;
    o.pass.dump = dump_text;
    const char *out = NULL, *name = NULL, *depfile = NULL;
    int report = 0;
    TuneOptions tune = {.verbose = 1};
    char tpath[4200];
    ShapeBinding shapes[64];
    int nshapes = 0;
    ConstBinding consts[64];
    int nconsts = 0;
    const char *const_specs[64];
    int rc = 1;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "o:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 'n': name = optarg; break;
        case 's':
            if (nshapes == 64 || parse_shape_binding(&a, optarg, &shapes[nshapes++], &d))
                goto fail;
            break;
        case 'b':
            if (parse_batch(optarg, &o.pass.batch, &d))
                goto fail;
            break;
        case 'c':
            if (nconsts == 64 || !strchr(optarg, '=')) {
                diag_error(&d, NULL, "--const wants NAME=FILE, got '%s'", optarg);
                goto fail;
            }
            const_specs[nconsts++] = optarg;
            break;
        case 'k': o.imp.inputs_as_params = 1; break;
        case 'D': o.pass.dump_after = optarg; break;
        case 'F': o.pass.fold = 0; break;
        case 'V': o.validate = 0; break;
        case 'M': depfile = optarg; break;
        case 'R': report = 1; break;
        case 'U': tune.tune = 1; break;
        case 'P': o.emit.openmp = 1; break;
        case 'X': {
            char *end = NULL;
            errno = 0;
            unsigned long long v = strtoull(optarg, &end, 10);
            unsigned long long mul = 1;
            if (end && (*end == 'k' || *end == 'K'))
                mul = 1024ull, end++;
            else if (end && *end == 'M')
                mul = 1024ull * 1024, end++;
            else if (end && *end == 'G')
                mul = 1024ull * 1024 * 1024, end++;
            if (errno || !end || *end || optarg[0] == '-' || v == 0 || v > (unsigned long long)SIZE_MAX / mul) {
                diag_error(&d, NULL, "--max-model-bytes wants a positive byte count (suffix k, M or G), got '%s'", optarg);
                goto fail;
            }
            o.imp.max_model_bytes = (size_t)(v * mul);
            break;
        }
        case 'u': tune.file = optarg; break;
        case 'Y': tune.retime = 1; break;
        case 'T':
            if (!strcmp(optarg, "list")) {
                for (int i = 0; target_at(i); i++) {
                    const Target *t = target_at(i);
                    printf("%-11s %s\n            block %dx%d, scratch up to %" PRId64 " bytes; cflags: %s\n", t->name,
                           t->summary, t->block_m, t->block_n, t->max_scratch, t->cflags);
                }
                const Target *h = target_host();
                printf("%-11s this host's CPU: %s here\n", "native", h->name);
                return 0;
            }
            o.pass.target = strcmp(optarg, "native") ? target_find(optarg) : target_host();
            if (!o.pass.target) {
                Writer names;
                w_init(&names);
                for (int i = 0; target_at(i); i++)
                    w_printf(&names, "%s%s", i ? ", " : "", target_at(i)->name);
                w_printf(&names, ", native");
                diag_error(&d, NULL, "--target: no target named '%s' (targets: %s)", optarg, names.buf ? names.buf : "");
                w_free(&names);
                goto fail;
            }
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "kdcc: error: %s\n", optind >= argc ? "no model given" : "more than one model given");
        usage(stderr);
        return 2;
    }
    const char *model = argv[optind];
    if (report && !out && depfile) {
        diag_error(&d, NULL, "--depfile needs -o (--report alone writes no file)");
        goto fail;
    }
    for (int i = 0; i < nconsts; i++) {
        const char *eq = strchr(const_specs[i], '=');
        consts[i].name = arena_strndup(&a, const_specs[i], (size_t)(eq - const_specs[i]));
        if (onnx_read_tensor_file(&a, eq + 1, &consts[i].t, &d))
            goto fail;
    }
    o.pass.shapes = shapes;
    o.pass.nshapes = nshapes;
    o.consts = consts;
    o.nconsts = nconsts;

    /* output paths */
    char cpath[4096], hpath[4096], nm[64], hname[256];
    struct stat stt;
    size_t olen = out ? strlen(out) : 0;
    int is_dir = out && (out[olen - 1] == '/' || (stat(out, &stt) == 0 && S_ISDIR(stt.st_mode)));
    if (!out || is_dir) {
        name_from_path(name ? name : model, nm, sizeof nm);
        if (name)
            snprintf(nm, sizeof nm, "%s", name);
        snprintf(cpath, sizeof cpath, "%s%s%s.c", out ? out : "", out && out[olen - 1] != '/' ? "/" : "", nm);
        snprintf(hpath, sizeof hpath, "%s%s%s.h", out ? out : "", out && out[olen - 1] != '/' ? "/" : "", nm);
    } else {
        snprintf(cpath, sizeof cpath, "%s", out);
        char *dot = strrchr(cpath, '.');
        char *slash = strrchr(cpath, '/');
        if (dot && (!slash || dot > slash) && strcmp(dot, ".c") == 0)
            *dot = 0;
        if (strlen(cpath) + 3 > sizeof cpath) {
            diag_error(&d, NULL, "output path too long");
            goto fail;
        }
        memcpy(hpath, cpath, strlen(cpath) + 1);
        strcat(hpath, ".h");
        strcat(cpath, ".c");
        if (name)
            snprintf(nm, sizeof nm, "%s", name);
        else
            name_from_path(cpath, nm, sizeof nm);
    }
    for (const char *p = nm; *p; p++)
        if (!(isalnum((unsigned char)*p) || *p == '_') || isdigit((unsigned char)nm[0])) {
            diag_error(&d, NULL, "--name '%s' is not a C identifier", nm);
            goto fail;
        }
    const char *hb = strrchr(hpath, '/');
    hb = hb ? hb + 1 : hpath;
    if (strlen(hb) >= sizeof hname) {
        diag_error(&d, NULL, "output file name too long");
        goto fail;
    }
    memcpy(hname, hb, strlen(hb) + 1);
    o.emit.name = nm;
    o.emit.header = hname;
    const char *mb = strrchr(model, '/');
    o.emit.source = mb ? mb + 1 : model;

    if (tune.tune || tune.file || tune.retime) {
        if (!tune.file) {
            snprintf(tpath, sizeof tpath, "%.*s.tune", (int)(strlen(cpath) - 2), cpath);
            tune.file = tpath;
        }
        o.pass.before_scratch = tune_hook;
        o.pass.before_scratch_ctx = &tune;
    }

    d.file = model;
    Graph *g = model_load(&a, model, &o.imp, &d);
    if (!g)
        goto fail;
    Writer cw, hw;
    w_init(&cw);
    w_init(&hw);
    int write = !report || out; /* --report without -o writes nothing */
    if (compile_graph(g, &o, &cw, &hw, &d) == 0 && (!write || save_pair(&cw, cpath, &hw, hpath, &d) == 0) &&
        (!depfile || write_depfile(&a, depfile, cpath, hpath, model, const_specs, nconsts, &d) == 0))
        rc = 0;
    if (rc == 0 && report) {
        Writer rw;
        w_init(&rw);
        if (report_write(g, cw.buf, &rw) == 0) {
            fputs(rw.buf ? rw.buf : "", stdout);
        } else {
            diag_error(&d, NULL, "out of memory while writing the report");
            rc = 1;
        }
        w_free(&rw);
    }
    w_free(&cw);
    w_free(&hw);
    if (rc == 0) {
        arena_free(&a);
        return 0;
    }
fail:
    diag_print(&d, stderr);
    arena_free(&a);
    return 1;
}

int cmd_print(int argc, char **argv)
{
    if (argc != 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fprintf(argc == 2 ? stdout : stderr, "usage: kdcc print MODEL    print MODEL in the ONNX textual syntax\n");
        return argc == 2 ? 0 : 2;
    }
    Arena a;
    arena_init(&a);
    Diag d;
    diag_init(&d, argv[1]);
    ImportOptions io = {0};
    Graph *g = model_load(&a, argv[1], &io, &d);
    if (!g) {
        diag_print(&d, stderr);
        arena_free(&a);
        return 1;
    }
    dump_text(g, stdout);
    arena_free(&a);
    return 0;
}

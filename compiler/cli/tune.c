/* --tune: choose each tunable layer's register block by timing it on this host.
 *
 * The kernels of some operators (the float Conv paths with scratch memory) hold
 * a block of output channels x pixels in accumulators; which block runs fastest
 * depends on the CPU and the compiler far more than any table can say (on the
 * same machine 8x16 and 4x16 differ 2x for one layer). --target gives a default;
 * --tune measures. For every distinct layer (operator, input and output shapes,
 * attributes) it builds a graph of that one node, emits it once per candidate
 * block, compiles each with $CC and the flags of the real build, times it (CPU
 * time, best of several trials) and keeps the fastest.
 *
 * Where a kernel can take more than one form whose speed depends on the machine
 * (OpDef.tune_forms: the pointwise kernel's vectors over pixels or over channels),
 * each block is timed in each form, and the form kept with the block.
 *
 * The choices go to a tune file (--tune-file, default NAME.tune beside the
 * output), one line per layer: "KEY<TAB>MxN<TAB>ns", and "<TAB>FORM" after it when
 * the kernel has forms. A build given that file
 * without --tune reads the choices and times nothing, so it is deterministic; with
 * --tune, layers already in the file keep their recorded choice and only new ones
 * are timed. --tune-retime times each recorded choice again (as many runs as a kept
 * candidate had) and records the new time, the choices unchanged: the benchmark then
 * has layer times from the same run as its other figures. The file is rewritten
 * atomically. */
#define _POSIX_C_SOURCE 200809L
#include "compiler/cli/cli.h"
#include "compiler/emit/emit.h"
#include "compiler/ir/target.h"
#include "compiler/ir/tmpdir.h"
#include "compiler/ops/ops.h"
#include "passes/passes.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    int m, n;
    int form;   /* Node.block_form: 0, or 1 + the index of a form in the kernel's list */
} Block;

/* candidates, in the order ties are broken. 2x16 and 3x32: the Winograd layers'
 * products have only C (often 16) terms each, and there small blocks won (the
 * distillation teacher's 16->16 layer: 2x16 4.43 ms, 8x16 4.73, 3x32 5.31, 4x48
 * 7.38 for 64 images, best of 3 alternating). */
static const Block cands_base[] = {{8, 16, 0}, {4, 24, 0}, {4, 32, 0}, {6, 16, 0}, {8, 8, 0}, {4, 16, 0}, {8, 24, 0}, {2, 32, 0}, {2, 16, 0}, {3, 32, 0}};
#define NCANDS ((int)(sizeof cands_base / sizeof cands_base[0]))
/* and on targets with vectors of 16 floats (x86-64-v4: 32 zmm registers), blocks of
 * up to 24 accumulators, which the list above (at most 16) leaves out. 5x64: DS-CNN's
 * 125 pixels are 25 blocks of 5 with no partial block (its first and pointwise
 * layers in 5x64 against 4x64: the whole model 2.3% faster, alternating runs). */
static const Block cands_wide[] = {{8, 32, 0}, {12, 32, 0}, {6, 48, 0}, {4, 64, 0}, {6, 64, 0}, {5, 64, 0}};
#define NWIDE ((int)(sizeof cands_wide / sizeof cands_wide[0]))
#define MAXCANDS (NCANDS + NWIDE)
#define MAXFORMS 4   /* forms of one kernel timed at most */
#define FORM_MAX 24  /* bytes of a form's name */

typedef struct {
    char *key;
    int m, n;
    double ns;
    char form[FORM_MAX];   /* the form's name; "" when the kernel has none */
    int retimed;           /* timed again in this run (--tune-retime): once per layer key */
} TuneEntry;

typedef struct {
    TuneEntry *e;
    int n, cap;
} TuneTable;

static int tunable(const Graph *g, const Node *n)
{
    return n->op && n->op->tunable && n->op->tunable(g, n);
}

/* The layer's identity: operator, every input's type and shape (constants too:
 * the weights' shape), output 0's shape, and the attributes; "/nhwc" after a value
 * stored channels-last (passes/layout.c), where a kernel may take another form whose
 * block means something else (the pointwise kernel's pixels x channels). */
static void node_key(const Graph *g, const Node *n, Writer *w)
{
    char ts[256];
    w_printf(w, "%s%s%s", n->domain && n->domain[0] ? n->domain : "", n->domain && n->domain[0] ? "." : "", n->op_type);
    for (int i = 0; i < n->ninputs; i++) {
        const Value *v = node_in(g, n, i);
        w_printf(w, " x%d=%s%s", i, v ? value_type_str(v, ts, sizeof ts) : "-", v && v->channels_last ? "/nhwc" : "");
    }
    const Value *y = node_out(g, n, 0);
    w_printf(w, " y=%s%s", y ? value_type_str(y, ts, sizeof ts) : "-", y && y->channels_last ? "/nhwc" : "");
    for (int i = 0; i < n->nattrs; i++) {
        const Attr *a = &n->attrs[i];
        if (a->type == AT_INT)
            w_printf(w, " %s=%" PRId64, a->name, a->i);
        else if (a->type == AT_FLOAT)
            w_printf(w, " %s=%.9g", a->name, a->f);
        else if (a->type == AT_INTS) {
            w_printf(w, " %s=", a->name);
            for (int k = 0; k < a->n; k++)
                w_printf(w, "%s%" PRId64, k ? "," : "", a->ints[k]);
        } else if (a->type == AT_STRING)
            w_printf(w, " %s=%s", a->name, a->s ? a->s : "");
    }
}

static TuneEntry *find(TuneTable *t, const char *key)
{
    for (int i = 0; i < t->n; i++)
        if (strcmp(t->e[i].key, key) == 0)
            return &t->e[i];
    return NULL;
}

static TuneEntry *add(TuneTable *t, const char *key, int m, int n, double ns, const char *form)
{
    if (t->n == t->cap) {
        int cap = t->cap ? 2 * t->cap : 16;
        TuneEntry *e = realloc(t->e, (size_t)cap * sizeof *e);
        if (!e)
            return NULL;
        t->e = e;
        t->cap = cap;
    }
    char *k = strdup(key);
    if (!k)
        return NULL;
    t->e[t->n] = (TuneEntry){k, m, n, ns, "", 0};
    snprintf(t->e[t->n].form, FORM_MAX, "%s", form ? form : "");
    return &t->e[t->n++];
}

static void table_free(TuneTable *t)
{
    for (int i = 0; i < t->n; i++)
        free(t->e[i].key);
    free(t->e);
}

static int read_table(const char *path, TuneTable *t, Diag *d)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0; /* none yet */
    char line[8192];
    int ln = 0;
    while (fgets(line, sizeof line, f)) {
        ln++;
        size_t len = strlen(line);
        if (len && line[len - 1] == '\n')
            line[--len] = 0;
        if (!len || line[0] == '#')
            continue;
        char *t1 = strchr(line, '\t'), *t2 = t1 ? strchr(t1 + 1, '\t') : NULL, *t3 = t2 ? strchr(t2 + 1, '\t') : NULL;
        int m, n, ok = t3 ? t3[1] && strlen(t3 + 1) < FORM_MAX : 1;
        for (const char *c = t3 ? t3 + 1 : ""; ok && *c; c++)
            ok = (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_';
        if (!t1 || !t2 || !ok || sscanf(t1 + 1, "%dx%d", &m, &n) != 2 || m < 1 || m > 64 || n < 1 || n > 256) {
            fclose(f);
            return diag_error(d, NULL, "%s:%d: not a tune line (KEY<TAB>MxN<TAB>ns[<TAB>form])", path, ln);
        }
        *t1 = 0;
        if (!find(t, line) && !add(t, line, m, n, strtod(t2 + 1, NULL), t3 ? t3 + 1 : NULL)) {
            fclose(f);
            return diag_error(d, NULL, "out of memory");
        }
    }
    fclose(f);
    return 0;
}

static int write_table(const char *path, const TuneTable *t, Diag *d)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f)
        return diag_error(d, NULL, "cannot write '%s'", path);
    fprintf(f, "# kdcc --tune: register block per layer (KEY<TAB>MxN<TAB>ns per call on the host that tuned, then <TAB>FORM where the kernel has forms)\n");
    for (int i = 0; i < t->n; i++)
        fprintf(f, "%s\t%dx%d\t%.0f%s%s\n", t->e[i].key, t->e[i].m, t->e[i].n, t->e[i].ns, t->e[i].form[0] ? "\t" : "",
                t->e[i].form);
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        remove(tmp);
        return diag_error(d, NULL, "cannot write '%s'", path);
    }
    return 0;
}

/* A graph of node n alone: its non-constant inputs become graph inputs, its
 * constant inputs stay constants, its ONNX outputs graph outputs. */
static Graph *one_node(Arena *a, const Graph *g, const Node *n, Diag *d)
{
    Graph *t = graph_new(a, g->file);
    if (!t)
        return NULL;
    t->name = "tune";
    t->opset = g->opset;
    t->target = g->target;
    t->threads = g->threads;
    int nout = n->op->max_outputs >= 0 && n->noutputs > n->op->max_outputs ? n->op->max_outputs : n->noutputs;
    int *ins = arena_array(a, (size_t)n->ninputs + 1, sizeof(int));
    int *outs = arena_array(a, (size_t)nout + 1, sizeof(int));
    t->inputs = arena_array(a, (size_t)n->ninputs + 1, sizeof(int));
    t->outputs = arena_array(a, (size_t)nout + 1, sizeof(int));
    if (!ins || !outs || !t->inputs || !t->outputs)
        return NULL;
    for (int i = 0; i < n->ninputs; i++) {
        const Value *s = node_in(g, n, i);
        ins[i] = -1;
        if (!s)
            continue;
        char nm[16];
        snprintf(nm, sizeof nm, "x%d", i);
        int v = graph_value(t, nm);
        if (v < 0)
            return NULL;
        Value *val = &t->values[v];
        value_set_shape(val, s->dtype, s->rank, s->dims);
        val->channels_last = s->channels_last;
        if (value_is_const(s)) {
            val->role = VR_CONST;
            val->data = s->data;
            val->nbytes = s->nbytes;
        } else {
            val->role = VR_INPUT;
            t->inputs[t->ninputs++] = v;
        }
        ins[i] = v;
    }
    for (int j = 0; j < nout; j++) {
        const Value *s = node_out(g, n, j);
        outs[j] = -1;
        if (!s)
            continue;
        char nm[16];
        snprintf(nm, sizeof nm, "y%d", j);
        int v = graph_value(t, nm);
        if (v < 0)
            return NULL;
        t->values[v].is_output = 1;
        t->values[v].channels_last = s->channels_last;
        t->outputs[t->noutputs++] = v;
        outs[j] = v;
    }
    Node *m = graph_add_node(t, n->op_type, n->name, ins, n->ninputs, outs, nout);
    if (!m)
        return NULL;
    m->domain = n->domain;
    m->opset = n->opset;
    m->attrs = n->attrs;
    m->nattrs = n->nattrs;
    if (graph_link(t, d) || ops_resolve(t, d) || pass_infer(t, 0, d))
        return NULL;
    return t;
}

static int write_file(const char *path, const char *text, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    int bad = len && fwrite(text, 1, len, f) != len;
    return fclose(f) != 0 || bad ? -1 : 0;
}

/* Emit, compile and time the one-node graph with block b; ns per call, < 0 on failure. */
/* Run a candidate's built harness again: its time in ns, or -1. */
static double rerun(const char *bin)
{
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "'%s'", bin);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    double v = -1;
    if (fscanf(p, "%lf", &v) != 1)
        v = -1;
    return pclose(p) == 0 ? v : -1;
}

/* Build candidate k's harness as DIR/tune-k and time it. With `texts` (the C of
 * candidates 0 .. k - 1, NULL where they had none): candidate k's C is kept in
 * texts[k], and where it is the same as an earlier candidate's (a block the kernel
 * does not take falls back to the one it would choose anyway), *same is that
 * candidate and nothing is built or timed (0 is returned); else *same is -1. */
static double time_block(Arena *a, const Graph *g, const Node *n, Block b, int k, const char *dir, const char *cflags,
                         char **texts, int *same, Diag *d)
{
    Diag quiet;
    diag_init(&quiet, NULL);
    Graph *t = one_node(a, g, n, &quiet);
    if (!t)
        return diag_error(d, n, "--tune: cannot build the layer alone: %s", quiet.msg), -1;
    t->nodes[0]->block_m = b.m;
    t->nodes[0]->block_n = b.n;
    t->nodes[0]->block_form = b.form;
    if (pass_scratch_within(t, pass_scratch_budget(g, n), &quiet) || pass_plan(t, &quiet))
        return diag_error(d, n, "--tune: %s", quiet.msg), -1;
    Writer c, h, mw;
    w_init(&c);
    w_init(&h);
    w_init(&mw);
    EmitOptions eo = {.name = "tune", .header = "tune.h"};
    double ns = -1;
    if (emit_c(t, &eo, &c, &h, &quiet) != 0) {
        diag_error(d, n, "--tune: %s", quiet.msg);
        goto out;
    }
    if (texts) {
        *same = -1;
        for (int j = 0; j < k && *same < 0; j++)
            if (texts[j] && c.buf && strcmp(texts[j], c.buf) == 0)
                *same = j;
        if (*same >= 0) {
            ns = 0;
            goto out;
        }
        if (!c.oom && c.buf && !(texts[k] = strdup(c.buf))) {
            diag_error(d, NULL, "out of memory");
            goto out;
        }
    }
    /* the harness: inputs filled with small values, run once, then best of 5 trials
     * of enough calls for 20 ms of CPU time each */
    w_puts(&mw, "#define _POSIX_C_SOURCE 199309L\n#include \"tune.h\"\n#include <stdio.h>\n#include <stdlib.h>\n#include <time.h>\n");
    for (int i = 0; i < t->ninputs; i++)
        w_printf(&mw, "static %s in%d[TUNE_IN%d_COUNT];\n", dtype_ctype(t->values[t->inputs[i]].dtype), i, i);
    for (int i = 0; i < t->noutputs; i++)
        w_printf(&mw, "static %s out%d[TUNE_OUT%d_COUNT];\n", dtype_ctype(t->values[t->outputs[i]].dtype), i, i);
    w_puts(&mw, "static double now(void) { struct timespec s; clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &s); "
                "return s.tv_sec + 1e-9 * s.tv_nsec; }\n");
    w_puts(&mw, "static void *ws;\nstatic void call(void) { tune_run_ws(ws");
    for (int i = 0; i < t->ninputs; i++)
        w_printf(&mw, ", in%d", i);
    for (int i = 0; i < t->noutputs; i++)
        w_printf(&mw, ", out%d", i);
    w_puts(&mw, "); }\nint main(void)\n{\n    ws = malloc(TUNE_WORKSPACE_BYTES + 64);\n    if (!ws) return 1;\n");
    for (int i = 0; i < t->ninputs; i++)
        w_printf(&mw, "    for (long k = 0; k < (long)TUNE_IN%d_COUNT; k++) in%d[k] = (k %% 7) * 0.125f - 0.375f;\n", i, i);
    w_puts(&mw, "    call();\n    long reps = 1;\n    double t0 = now();\n    call();\n    double one = now() - t0;\n"
                "    if (one > 0) reps = (long)(0.02 / one) + 1;\n    double best = 1e30;\n"
                "    for (int trial = 0; trial < 5; trial++) {\n        t0 = now();\n"
                "        for (long r = 0; r < reps; r++) call();\n        double el = (now() - t0) / reps;\n"
                "        if (el < best) best = el;\n    }\n    printf(\"%.1f\\n\", best * 1e9);\n    free(ws);\n    return 0;\n}\n");
    char cp[4200], mp[4200], hp[4200], bin[4200], cmd[16384];
    snprintf(cp, sizeof cp, "%s/tune.c", dir);
    snprintf(hp, sizeof hp, "%s/tune.h", dir);
    snprintf(mp, sizeof mp, "%s/main.c", dir);
    snprintf(bin, sizeof bin, "%s/tune-%d", dir, k);
    if (c.oom || h.oom || mw.oom || write_file(cp, c.buf, c.len) || write_file(hp, h.buf, h.len) ||
        write_file(mp, mw.buf, mw.len)) {
        diag_error(d, NULL, "--tune: cannot write the candidate in %s", dir);
        goto out;
    }
    const char *cc = getenv("CC") && getenv("CC")[0] ? getenv("CC") : "cc";
    snprintf(cmd, sizeof cmd, "%s -std=c99 %s -o '%s' '%s' '%s' -lm > '%s/cc.log' 2>&1 && '%s'", cc, cflags, bin, cp, mp, dir, bin);
    FILE *p = popen(cmd, "r");
    if (!p) {
        diag_error(d, NULL, "--tune: cannot run %s", cc);
        goto out;
    }
    double v = -1;
    if (fscanf(p, "%lf", &v) != 1)
        v = -1;
    int st = pclose(p);
    if (st != 0 || v < 0) {
        diag_error(d, n, "--tune: compiling or running the %dx%d candidate failed (see %s/cc.log)", b.m, b.n, dir);
        goto out;
    }
    ns = v;
out:
    w_free(&c);
    w_free(&h);
    w_free(&mw);
    return ns;
}

/* 1 + the index of form `name` among the kernel's forms; 0 for none or not found */
static int form_index(const char *const *forms, int nforms, const char *name)
{
    for (int f = 0; name[0] && f < nforms; f++)
        if (strcmp(forms[f], name) == 0)
            return f + 1;
    return 0;
}

int tune_graph(Graph *g, const TuneOptions *o, Diag *d)
{
    TuneTable tab = {0};
    int rc = -1, changed = 0;
    char dir[KD_TMPDIR_MAX] = ""; /* made at the first layer to time */
    if (o->file && read_table(o->file, &tab, d))
        goto out;
    /* the host's build of what the target's flags would build */
    const Target *tg = g->target ? g->target : target_default();
    int wide = tg->vector_bytes >= 64;
    char native[256];
    snprintf(native, sizeof native, "-O3 %s -ffp-contract=fast", target_native_flags(tg));
    const char *cflags = getenv("KDCC_TUNE_CFLAGS") ? getenv("KDCC_TUNE_CFLAGS") : native;
    for (int i = 0; i < g->nnodes; i++) {
        Node *n = g->nodes[i];
        if (!tunable(g, n))
            continue;
        /* the candidates: every block, in each of the kernel's forms */
        const char *const *forms = n->op->tune_forms ? n->op->tune_forms(g, n) : NULL;
        int nforms = 0;
        while (forms && forms[nforms] && nforms < MAXFORMS)
            nforms++;
        Block cands[MAXCANDS * MAXFORMS];
        int ncands = 0;
        for (int f = nforms ? 1 : 0; f <= nforms; f++) {
            for (int k = 0; k < NCANDS; k++)
                cands[ncands++] = (Block){cands_base[k].m, cands_base[k].n, f};
            for (int k = 0; wide && k < NWIDE; k++)
                cands[ncands++] = (Block){cands_wide[k].m, cands_wide[k].n, f};
        }
        Writer kw;
        w_init(&kw);
        node_key(g, n, &kw);
        if (kw.oom || !kw.buf) {
            w_free(&kw);
            diag_error(d, n, "out of memory");
            goto out;
        }
        TuneEntry *e = find(&tab, kw.buf);
        /* the recorded form, where this build's kernel has forms (a file tuned for
         * another target may name one where this one has none) */
        int form = e ? form_index(forms, nforms, e->form) : 0;
        if (e && e->form[0] && nforms && !form) {
            diag_error(d, n, "tune file '%s': form '%s' is not one of this layer's kernel forms (%s%s%s)", o->file, e->form,
                       forms[0], nforms > 1 ? ", " : "", nforms > 1 ? forms[1] : "");
            w_free(&kw);
            goto out;
        }
        if (e && o->retime && !e->retimed) {
            /* the recorded choice timed again: as many runs as a kept candidate gets below */
            if (!dir[0] && tmpdir_make(dir, sizeof dir, "tune", d)) {
                w_free(&kw);
                goto out;
            }
            Arena ta;
            arena_init(&ta);
            double ns = time_block(&ta, g, n, (Block){e->m, e->n, form}, 0, dir, cflags, NULL, NULL, d);
            arena_free(&ta);
            if (ns < 0) {
                w_free(&kw);
                goto out;
            }
            char bin[4200];
            snprintf(bin, sizeof bin, "%s/tune-0", dir);
            for (int r = 0; r < 3; r++) {
                double again = rerun(bin);
                if (again >= 0 && again < ns)
                    ns = again;
            }
            e->ns = ns;
            e->retimed = 1;
            changed = 1;
            if (o->verbose)
                fprintf(stderr, "kdcc: tune: node '%s' (%s): %dx%d%s%s again: %.1f us\n", n->name, n->op_type, e->m, e->n,
                        e->form[0] ? " " : "", e->form, ns / 1000);
        } else if (!e && o->tune) {
            if (!dir[0] && tmpdir_make(dir, sizeof dir, "tune", d)) {
                w_free(&kw);
                goto out;
            }
            Arena ta;
            arena_init(&ta);
            double best = -1;
            int bi = 0;
            char times[4096] = "";
            size_t tl = 0;
            /* two rounds over the candidates, each candidate's best kept: a load change
             * on a shared machine during one candidate's run then does not decide (a
             * noisy single round picked a block 12% slower for the distillation
             * teacher's Winograd layer) */
            double ts[MAXCANDS * MAXFORMS];
            char *texts[MAXCANDS * MAXFORMS] = {0};
            int same[MAXCANDS * MAXFORMS];   /* an earlier candidate with the same C, or -1 */
            int failed = 0;
            for (int k = 0; k < ncands && !failed; k++)
                failed = (ts[k] = time_block(&ta, g, n, cands[k], k, dir, cflags, texts, &same[k], d)) < 0;
            for (int k = 0; k < ncands; k++)
                free(texts[k]);
            if (failed) {
                arena_free(&ta);
                w_free(&kw);
                goto out;
            }
            for (int k = 0; k < ncands; k++) {
                char bin[4200];
                if (same[k] >= 0)
                    continue;
                snprintf(bin, sizeof bin, "%s/tune-%d", dir, k);
                double again = rerun(bin);
                if (again >= 0 && again < ts[k])
                    ts[k] = again;
            }
            /* then the three fastest again, in turn, twice more, so that close
             * candidates are decided by several runs each (after two rounds alone, a
             * retune gave two MobileNet layers blocks with which the model ran ~5%
             * slower than with the earlier choices) */
            for (int round = 0; round < 2; round++) {
                int top[3] = {-1, -1, -1};
                for (int k = 0; k < ncands; k++)
                    for (int j = 0; j < 3 && same[k] < 0; j++)
                        if (top[j] < 0 || ts[k] < ts[top[j]]) {
                            for (int i = 2; i > j; i--)
                                top[i] = top[i - 1];
                            top[j] = k;
                            break;
                        }
                for (int j = 0; j < 3 && top[j] >= 0; j++) {
                    char bin[4200];
                    snprintf(bin, sizeof bin, "%s/tune-%d", dir, top[j]);
                    double again = rerun(bin);
                    if (again >= 0 && again < ts[top[j]])
                        ts[top[j]] = again;
                }
            }
            for (int k = 0; k < ncands; k++) {
                double ns = ts[k];
                if (tl < sizeof times && same[k] >= 0)
                    tl += (size_t)snprintf(times + tl, sizeof times - tl, "%s%dx%d%s%s = %dx%d", k ? ", " : "", cands[k].m,
                                           cands[k].n, cands[k].form ? " " : "", cands[k].form ? forms[cands[k].form - 1] : "",
                                           cands[same[k]].m, cands[same[k]].n);
                else if (tl < sizeof times)
                    tl += (size_t)snprintf(times + tl, sizeof times - tl, "%s%dx%d%s%s %.1f us", k ? ", " : "", cands[k].m,
                                           cands[k].n, cands[k].form ? " " : "", cands[k].form ? forms[cands[k].form - 1] : "",
                                           ns / 1000);
                if (same[k] >= 0)
                    continue;
                if (best < 0 || ns < best) {
                    best = ns;
                    bi = k;
                }
            }
            arena_free(&ta);
            e = add(&tab, kw.buf, cands[bi].m, cands[bi].n, best, cands[bi].form ? forms[cands[bi].form - 1] : NULL);
            if (!e) {
                w_free(&kw);
                diag_error(d, NULL, "out of memory");
                goto out;
            }
            changed = 1;
            if (o->verbose)
                fprintf(stderr, "kdcc: tune: node '%s' (%s): %dx%d%s%s (%s)\n", n->name, n->op_type, e->m, e->n,
                        e->form[0] ? " " : "", e->form, times);
        }
        w_free(&kw);
        if (e) {
            n->block_m = e->m;
            n->block_n = e->n;
            n->block_form = form_index(forms, nforms, e->form);
        }
    }
    if (changed && o->file && write_table(o->file, &tab, d))
        goto out;
    rc = 0;
out:
    tmpdir_remove(dir);
    table_free(&tab);
    return rc;
}

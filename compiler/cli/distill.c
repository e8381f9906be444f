/* kdcc distill / kdcc train: knowledge distillation with the training step compiled to C.
 *
 * The teachers' soft targets are computed once by their own compiled inference
 * code (unless --no-teacher-cache, which merges the teachers into the training
 * graph); the student's training step is the IR graph pass_distill builds, emitted
 * by the same emitter as inference, compiled with $CC and driven here over the data.
 * At the end the trained student is written as ONNX and as C. */
#include "compiler/cli/cli.h"
#include "compiler/emit/train_driver.h"
#include "compiler/ir/target.h"
#include "compiler/ir/tmpdir.h"
#include "frontends/data.h"
#include "frontends/onnx_export.h"
#include "runtime/trainer.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_TEACHERS 8

typedef struct Opts {
    const char *student, *student_output, *teacher_output;
    const char *teachers[MAX_TEACHERS];   /* a model, or NULL for logits from files */
    const char *tlogits[MAX_TEACHERS];    /* --teacher-logits FILE[,FILE...] (shards in order) */
    double tweights[MAX_TEACHERS];
    int nteachers;
    const char *data, *labels, *val_data, *val_labels;
    double T, alpha, lr, momentum, weight_decay, clip_norm, scale, val_frac;
    int mse, epochs, batch, nesterov, cache, warmup, step_size, quiet;
    int64_t labelled, limit;
    double mean[64], std[64];
    int nmean, nstd;
    double gamma;
    const char *optimizer, *schedule;
    uint64_t seed;
    const char *out_c, *out_onnx, *name, *log, *emit_train, *workdir, *checkpoint;
    int resume;
    int report; /* --report: the training step's bytes by class */
    int train_only; /* kdcc train: labels only */
    TuneOptions tune; /* --tune, --tune-file: register blocks of the compiled step's Conv layers */
    int threads;      /* --threads N: OpenMP in the compiled modules when > 1 */
    int64_t sub_batch; /* --teacher-sub-batch N: 0 = chosen from the L2 size, -1 = off (the whole batch) */
} Opts;

/* ---------------------------------------------------------------- modules */

/* A generic entry the host can call without knowing the model's signature. */
static void append_entry(Writer *c, const Graph *g, const char *name)
{
    char up[96];
    snprintf(up, sizeof up, "%s", name);
    for (char *p = up; *p; p++)
        if (*p >= 'a' && *p <= 'z')
            *p = (char)(*p - 'a' + 'A');
    int stateful = 0;
    for (int v = 0; v < g->nvalues; v++)
        stateful |= g->values[v].role == VR_STATE;
    w_line(c, "\n/* host entry points appended by kdcc for its trainer */");
    w_line(c, "void %s_kd_sizes(size_t *ws, size_t *st, int *ns);", name);
    w_line(c, "int %s_kd_call(void *ws, void *st, const void *const *in, void *const *out);", name);
    w_line(c, "void %s_kd_sizes(size_t *ws, size_t *st, int *ns)", name);
    w_line(c, "{");
    w_line(c, "    *ws = %s_WORKSPACE_BYTES;", up);
    w_line(c, "    *st = %s;", stateful ? "(size_t)0 + " : "0");
    if (stateful) {
        c->len -= 2; /* drop ";\n" to finish the expression */
        c->buf[c->len] = 0;
        w_line(c, "%s_STATE_BYTES;", up);
    }
    w_line(c, "    *ns = %s%s;", stateful ? up : "0", stateful ? "_NUM_STATE" : "");
    w_line(c, "}");
    w_line(c, "int %s_kd_call(void *ws, void *st, const void *const *in, void *const *out)", name);
    w_line(c, "{");
    if (!stateful)
        w_line(c, "    (void)st;");
    w_printf(c, "    return %s_run_ws(ws%s", name, stateful ? ", st" : "");
    int k = 0;
    for (int i = 0; i < g->ninputs; i++) {
        const Value *v = &g->values[g->inputs[i]];
        if (v->role == VR_INPUT)
            w_printf(c, ", (const %s *)in[%d]", dtype_ctype(v->dtype), k++);
    }
    if (k == 0)
        w_printf(c, "%s", "");
    for (int i = 0; i < g->noutputs; i++)
        w_printf(c, ", (%s *)out[%d]", dtype_ctype(g->values[g->outputs[i]].dtype), i);
    w_line(c, ");");
    if (k == 0)
        w_line(c, "    (void)in;");
    w_line(c, "}");
}

static int tune_hook(Graph *g, void *ctx, Diag *d) { return tune_graph(g, ctx, d); }

/* A frozen teacher runs in inference form: BatchNormalization folded, epilogues
 * fused, and its 3x3 layers with Winograd's transformed weights (passes/winograd.c). */
static int frozen_passes(Graph *g, Diag *d)
{
    g->threads = trainer_threads();
    g->target = target_host();
    return pass_fuse(g, d) || pass_winograd(g, d);
}

/* Passes, emission and the host entry, then compile and load. With tune, the Conv
 * layers' register blocks come from --tune/--tune-file (the block changes no
 * result: every accumulator sums in the same order whatever the block). */
static int build_module(Graph *g, const char *dir, const char *name, int infer_first, int64_t batch, Module *m,
                        Writer *keep_c, const TuneOptions *tune, Diag *d)
{
    /* the step runs here: tiled for this host's CPU (the student's emitted C keeps
     * the generic target) */
    PassOptions po = {.fold = 1, .batch = batch, .target = target_host()};
    g->threads = trainer_threads(); /* kernels with scratch split the batch over the step's threads */
    g->target = po.target;
    int tuning = tune && (tune->tune || tune->file);
    if (tuning) {
        po.before_scratch = tune_hook;
        po.before_scratch_ctx = (void *)tune;
    }
    if (infer_first) {
        if (run_pipeline(g, &po, d))
            return -1;
    } else if (pass_dce(g, d) || pass_alias(g, d) || (tuning && tune_graph(g, tune, d)) || pass_scratch(g, d) ||
               pass_plan(g, d)) {
        return -1;
    }
    EmitOptions eo = {.name = name, .openmp = trainer_threads() > 1, .share_functions = 1};
    char hn[128];
    snprintf(hn, sizeof hn, "%s.h", name);
    eo.header = hn;
    Writer c, h;
    w_init(&c);
    w_init(&h);
    int rc = emit_c(g, &eo, &c, &h, d);
    if (rc == 0 && keep_c) {
        w_puts(keep_c, c.buf ? c.buf : "");
    }
    if (rc == 0) {
        append_entry(&c, g, name);
        rc = module_build(dir, name, &c, &h, hn, m, d);
    }
    w_free(&c);
    w_free(&h);
    return rc;
}

/* The student's float weights as state, so that trained values can be poured in. */
static void weights_as_state(Graph *g)
{
    for (int i = 0; i < g->nnodes; i++) {
        Node *n = g->nodes[i];
        for (int j = 0; j < n->ninputs; j++) {
            Value *v = n->inputs[j] >= 0 ? &g->values[n->inputs[j]] : NULL;
            if (v && v->role == VR_CONST && v->dtype == DT_FLOAT && v->rank >= 1) {
                v->role = VR_STATE;
                v->is_param = 1;
            }
        }
    }
}

/* ---------------------------------------------------------------- helpers */

static int load_x(const char *path, const Opts *o, const Value *in, Dataset *x, Diag *d)
{
    Dataset raw;
    dataset_init(&raw);
    if (data_read(path, &raw, d))
        return -1;
    DataNorm norm = {.scale = o->scale, .nmean = o->nmean, .mean = o->mean, .nstd = o->nstd, .std = o->std};
    int rc = data_to_float32(&raw, &norm, x, d);
    dataset_free(&raw);
    if (rc == 0)
        rc = data_reshape_samples(x, in->rank - 1, in->dims + 1, d);
    return rc;
}

static int load_labels(const char *path, int64_t n, int64_t classes, Dataset *y, Diag *d)
{
    Dataset raw;
    dataset_init(&raw);
    if (data_read(path, &raw, d))
        return -1;
    int rc = data_to_labels(&raw, 0, y, d);
    dataset_free(&raw);
    if (rc)
        return -1;
    if (y->dims[0] != n)
        return diag_error(d, NULL, "%s has %" PRId64 " labels for %" PRId64 " samples", path, y->dims[0], n);
    const int64_t *l = y->data;
    for (int64_t i = 0; i < n; i++)
        if (l[i] < -1 || l[i] >= classes)
            return diag_error(d, NULL, "%s: label %" PRId64 " of sample %" PRId64 " is outside [0, %" PRId64 ") (-1 marks an unlabelled sample)",
                              path, l[i], i, classes);
    return 0;
}


/* "0.5" or "0.485,0.456,0.406" into v[]; count or -1 */
static int parse_list(const char *s, double *v, int max)
{
    int n = 0;
    char *end;
    while (*s && n < max) {
        v[n++] = strtod(s, &end);
        if (end == s)
            return -1;
        s = end;
        if (*s == ',')
            s++;
        else if (*s)
            return -1;
    }
    return *s ? -1 : n;
}

/* ---------------------------------------------------------------- the command */

static void usage(FILE *f, int train)
{
    if (train)
        fprintf(f, "usage: kdcc train --model M.onnx --data X --labels Y [options] -o OUT.onnx|OUT.c\n"
                   "  trains M on hard labels (the same loop as distill with alpha 0 and no teacher)\n\n");
    else
        fprintf(f, "usage: kdcc distill --teacher T.onnx[:WEIGHT]... --student S.onnx --data X [--labels Y] [options] -o OUT.c\n\n");
    fprintf(f,
            "  loss = (1-alpha)*CE(student, labels) + alpha*T^2*KL(softmax(teacher/T) || softmax(student/T)),\n"
            "  each term a mean over the batch (the hard term over its labelled samples; label -1 = unlabelled)\n\n"
            "  --teacher PATH[:W]        a teacher (repeatable; weights W of several are normalised)\n"
            "  --student PATH / --model PATH   the network to train (its float initializers are the weights)\n"
            "  --teacher-logits F[,F...][:W]   a teacher's logits computed elsewhere (kdcc soft-targets),\n"
            "                            .npy [samples, classes], shards in order; instead of --teacher\n"
            "  --teacher-output NAME, --student-output NAME   which graph output holds the logits\n"
            "  --data FILE, --labels FILE   .npy, IDX (.gz) or CSV; labels int, -1 for unlabelled\n"
            "  --val-data FILE --val-labels FILE, or --val FRACTION   held-out data for accuracy\n"
            "  -T, --temperature T (4)   --alpha A (0.9)   --soft-loss kl|mse (kl)\n"
            "  --epochs N (10)  --batch N (64)  --lr X (1e-3)  --optimizer sgd|adam|adamw (adam)\n"
            "  --momentum X  --nesterov  --weight-decay X  --clip-norm X\n"
            "  --schedule constant|step|cosine (constant)  --warmup EPOCHS  --step-size EPOCHS --gamma X\n"
            "  --scale X (e.g. 0.00392156862745098 for 1/255)   --seed N (1)\n"
            "  --mean M[,M...] --std S[,S...]   then (x - mean) / std, one value or one per channel\n"
            "  --no-teacher-cache        run the teachers in every step instead of once per sample\n"
            "  --teacher-sub-batch N|off with --no-teacher-cache: run each teacher on N samples at a time\n"
            "                            (N divides --batch; one copy of its layers per slice of the batch,\n"
            "                            one set of weights), so its intermediates stay in the L2 cache;\n"
            "                            0 (default) = the largest N whose tensors fit the L2 cache (on one\n"
            "                            thread; with --threads > 1 the whole batch, so the weights match\n"
            "                            one thread's bit for bit), off = the whole batch at once\n"
            "  -o OUT.c                  the trained student as C (OUT.c, OUT.h)   --onnx OUT.onnx  as ONNX\n"
            "  --limit N                 use only the first N samples of --data\n"
            "  --labelled N              keep the labels of N samples (chosen with --seed), mark the rest\n"
            "                            unlabelled (-1): the few-labels setting; kdcc train then skips them\n"
            "  --checkpoint FILE         save the training state after every epoch (atomically)\n"
            "  --resume                  continue from --checkpoint FILE: the same weights as an uninterrupted run\n"
            "  --name NAME  --log metrics.csv  --emit-train train.c (the step + a no-malloc driver, as C)  --quiet\n"
            "  --tune                    time candidate register blocks of the step's Conv layers (the teachers'\n"
            "                            in the loop) on this host and keep the fastest; --tune-file FILE\n"
            "                            reads and records the choices (see kdcc MODEL --help)\n"
            "  --threads N (1)           run the compiled step on N threads (OpenMP, when $CC has it); the\n"
            "                            weights are the same for any N\n"
            "  --report                  print the training step's bytes: weights, gradients, optimizer state,\n"
            "                            activations kept for backward, other intermediates, arena\n");
}

static int parse(int argc, char **argv, Opts *o, int train, Diag *d)
{
    static const struct option lo[] = {
        {"teacher", 1, 0, 't'}, {"student", 1, 0, 's'}, {"model", 1, 0, 's'}, {"teacher-output", 1, 0, 1},
        {"student-output", 1, 0, 2}, {"data", 1, 0, 3}, {"labels", 1, 0, 4}, {"val-data", 1, 0, 5},
        {"val-labels", 1, 0, 6}, {"temperature", 1, 0, 'T'}, {"alpha", 1, 0, 7}, {"soft-loss", 1, 0, 8},
        {"epochs", 1, 0, 9}, {"batch", 1, 0, 10}, {"lr", 1, 0, 11}, {"optimizer", 1, 0, 12},
        {"momentum", 1, 0, 13}, {"nesterov", 0, 0, 14}, {"weight-decay", 1, 0, 15}, {"clip-norm", 1, 0, 16},
        {"schedule", 1, 0, 17}, {"warmup", 1, 0, 18}, {"step-size", 1, 0, 19}, {"gamma", 1, 0, 20},
        {"scale", 1, 0, 21}, {"seed", 1, 0, 22}, {"no-teacher-cache", 0, 0, 23}, {"output", 1, 0, 'o'},
        {"onnx", 1, 0, 24}, {"name", 1, 0, 25}, {"log", 1, 0, 26}, {"emit-train", 1, 0, 27},
        {"val", 1, 0, 28}, {"quiet", 0, 0, 29}, {"labelled", 1, 0, 30}, {"limit", 1, 0, 31},
        {"checkpoint", 1, 0, 32}, {"resume", 0, 0, 33}, {"teacher-logits", 1, 0, 34},
        {"mean", 1, 0, 35}, {"std", 1, 0, 36}, {"report", 0, 0, 37},
        {"tune", 0, 0, 38}, {"tune-file", 1, 0, 39}, {"threads", 1, 0, 40}, {"teacher-sub-batch", 1, 0, 41},
        {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    o->T = 4;
    o->alpha = train ? 0 : 0.9;
    o->lr = 1e-3;
    o->epochs = 10;
    o->batch = 64;
    o->threads = 1;
    o->optimizer = "adam";
    o->schedule = "constant";
    o->gamma = 0.1;
    o->seed = 1;
    o->cache = 1;
    o->train_only = train;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "t:s:T:o:h", lo, NULL)) != -1) {
        char *end = NULL;
        switch (c) {
        case 't': {
            if (o->nteachers == MAX_TEACHERS)
                return diag_error(d, NULL, "at most %d teachers", MAX_TEACHERS);
            char *colon = strrchr(optarg, ':');
            o->tweights[o->nteachers] = 1;
            if (colon && colon[1] && strtod(colon + 1, &end) > 0 && *end == 0) {
                o->tweights[o->nteachers] = strtod(colon + 1, NULL);
                *colon = 0;
            }
            o->teachers[o->nteachers++] = optarg;
            break;
        }
        case 34: {
            if (o->nteachers == MAX_TEACHERS)
                return diag_error(d, NULL, "at most %d teachers", MAX_TEACHERS);
            char *colon = strrchr(optarg, ':');
            o->tweights[o->nteachers] = 1;
            if (colon && colon[1] && strtod(colon + 1, &end) > 0 && *end == 0) {
                o->tweights[o->nteachers] = strtod(colon + 1, NULL);
                *colon = 0;
            }
            end = NULL;
            o->teachers[o->nteachers] = NULL;
            o->tlogits[o->nteachers++] = optarg;
            break;
        }
        case 35:
            if ((o->nmean = parse_list(optarg, o->mean, 64)) < 1)
                return diag_error(d, NULL, "--mean wants one number or one per channel, got '%s'", optarg);
            break;
        case 36:
            if ((o->nstd = parse_list(optarg, o->std, 64)) < 1)
                return diag_error(d, NULL, "--std wants one number or one per channel, got '%s'", optarg);
            break;
        case 's': o->student = optarg; break;
        case 1: o->teacher_output = optarg; break;
        case 2: o->student_output = optarg; break;
        case 3: o->data = optarg; break;
        case 4: o->labels = optarg; break;
        case 5: o->val_data = optarg; break;
        case 6: o->val_labels = optarg; break;
        case 'T': o->T = strtod(optarg, &end); break;
        case 7: o->alpha = strtod(optarg, &end); break;
        case 8:
            if (strcmp(optarg, "kl") && strcmp(optarg, "mse"))
                return diag_error(d, NULL, "--soft-loss wants kl or mse, got '%s'", optarg);
            o->mse = !strcmp(optarg, "mse");
            break;
        case 9: o->epochs = atoi(optarg); break;
        case 10: o->batch = atoi(optarg); break;
        case 11: o->lr = strtod(optarg, &end); break;
        case 12: o->optimizer = optarg; break;
        case 13: o->momentum = strtod(optarg, &end); break;
        case 14: o->nesterov = 1; break;
        case 15: o->weight_decay = strtod(optarg, &end); break;
        case 16: o->clip_norm = strtod(optarg, &end); break;
        case 17: o->schedule = optarg; break;
        case 18: o->warmup = atoi(optarg); break;
        case 19: o->step_size = atoi(optarg); break;
        case 20: o->gamma = strtod(optarg, &end); break;
        case 21: o->scale = strtod(optarg, &end); break;
        case 22: o->seed = strtoull(optarg, &end, 10); break;
        case 23: o->cache = 0; break;
        case 'o': o->out_c = optarg; break;
        case 24: o->out_onnx = optarg; break;
        case 25: o->name = optarg; break;
        case 26: o->log = optarg; break;
        case 27: o->emit_train = optarg; break;
        case 28: o->val_frac = strtod(optarg, &end); break;
        case 29: o->quiet = 1; break;
        case 30: o->labelled = strtoll(optarg, &end, 10); break;
        case 31: o->limit = strtoll(optarg, &end, 10); break;
        case 32: o->checkpoint = optarg; break;
        case 33: o->resume = 1; break;
        case 37: o->report = 1; break;
        case 38: o->tune.tune = 1; break;
        case 39: o->tune.file = optarg; break;
        case 40: o->threads = (int)strtol(optarg, &end, 10); break;
        case 41:
            if (!strcmp(optarg, "off"))
                o->sub_batch = -1;
            else if ((o->sub_batch = strtoll(optarg, &end, 10)) < 0)
                return diag_error(d, NULL, "--teacher-sub-batch wants a number >= 0 or off, got '%s'", optarg);
            break;
        case 'h': usage(stdout, train); exit(0);
        default: usage(stderr, train); return -2;
        }
        if (end && *end)
            return diag_error(d, NULL, "bad number '%s'", optarg);
    }
    if (optind < argc)
        return diag_error(d, NULL, "unexpected argument '%s'", argv[optind]);
    if (!o->student)
        return diag_error(d, NULL, "no %s given", train ? "--model" : "--student");
    if (!o->data)
        return diag_error(d, NULL, "no --data given");
    if (!o->out_c && !o->out_onnx)
        return diag_error(d, NULL, "no output given (-o OUT.c and/or --onnx OUT.onnx)");
    if (o->alpha < 0 || o->alpha > 1)
        return diag_error(d, NULL, "--alpha %g is outside [0, 1]", o->alpha);
    if (o->T <= 0)
        return diag_error(d, NULL, "-T must be positive");
    if (o->alpha > 0 && o->nteachers == 0)
        return diag_error(d, NULL, "--alpha %g weighs a teacher, but no --teacher or --teacher-logits is given", o->alpha);
    for (int t = 0; t < o->nteachers; t++)
        if (!o->teachers[t] && !o->cache)
            return diag_error(d, NULL, "--no-teacher-cache needs teacher models, not --teacher-logits");
    if (o->alpha < 1 && !o->labels)
        return diag_error(d, NULL, "--alpha %g weighs the hard labels, but no --labels are given (use --alpha 1 for unlabelled data)", o->alpha);
    if (o->epochs < 0 || o->batch <= 0)
        return diag_error(d, NULL, "--epochs and --batch must be positive");
    if (o->sub_batch > 0 && (o->sub_batch > o->batch || o->batch % o->sub_batch ||
                             o->batch / o->sub_batch > KD_MAX_TEACHER_PARTS))
        return diag_error(d, NULL, "--teacher-sub-batch %" PRId64 " does not divide --batch %d into at most %d parts",
                          o->sub_batch, o->batch, KD_MAX_TEACHER_PARTS);
    if (o->threads < 1 || o->threads > 1024)
        return diag_error(d, NULL, "--threads wants a number from 1 to 1024");
    if (strcmp(o->optimizer, "sgd") && strcmp(o->optimizer, "adam") && strcmp(o->optimizer, "adamw"))
        return diag_error(d, NULL, "--optimizer wants sgd, adam or adamw, got '%s'", o->optimizer);
    if (strcmp(o->schedule, "constant") && strcmp(o->schedule, "step") && strcmp(o->schedule, "cosine"))
        return diag_error(d, NULL, "--schedule wants constant, step or cosine, got '%s'", o->schedule);
    if (o->val_frac < 0 || o->val_frac >= 1)
        return diag_error(d, NULL, "--val wants a fraction in [0, 1)");
    if (o->resume && !o->checkpoint)
        return diag_error(d, NULL, "--resume needs --checkpoint FILE");
    return 0;
}

/* Load, bind the batch, infer. */
static Graph *load_model(Arena *a, const char *path, int64_t batch, Diag *d)
{
    ImportOptions io = {0};
    d->file = path;
    Graph *g = model_load(a, path, &io, d);
    PassOptions po = {.fold = 1, .batch = batch};
    if (!g || ops_resolve(g, d) || pass_bind(g, &po, d) || pass_infer(g, 1, d))
        return NULL;
    d->file = NULL;
    return g;
}

static int first_input(const Graph *g)
{
    for (int i = 0; i < g->ninputs; i++)
        if (g->values[g->inputs[i]].role == VR_INPUT)
            return g->inputs[i];
    return -1;
}

/* With the teacher in the loop: the sub-batch it runs in (--teacher-sub-batch, or
 * chosen from the L2 cache of the step's cores and the teacher's bytes per sample),
 * and, when it is smaller than the batch and the teacher keeps samples apart, the
 * teacher bound to it for pass_distill to run once per slice of the batch. */
static int teacher_in_parts(Arena *a, const Opts *o, int t, Graph *tg, int64_t B, TeacherSpec *ts, Diag *d)
{
    const Target *tgt = tg->target ? tg->target : target_default();
    int64_t l2 = tgt->l2;
    int64_t S = o->sub_batch < 0 ? B : o->sub_batch > 0 ? o->sub_batch : distill_sub_batch(tg, B, l2);
    /* Chosen for more than one thread, the teacher stays whole: its Conv layers' loops
     * over the images of a slice, outlined by OpenMP, came out of gcc 12 with other
     * multiply-adds fused (-ffp-contract=fast) than the same loops on one thread, so
     * training on 2 threads no longer gave one thread's weights bit for bit (slices of
     * 8 or 16 samples; the whole batch of 64 gave the same bits, as tests/e2e/threads.sh
     * checks). --teacher-sub-batch N still splits it, rounding aside. */
    if (o->sub_batch == 0 && trainer_threads() > 1)
        S = B;
    if (S >= B)
        return 0;
    /* a teacher that cannot be bound to S samples (a batch written into a Reshape's
     * shape) runs on the whole batch, as one that combines samples does */
    Diag pd;
    diag_init(&pd, NULL);
    Graph *full = load_model(a, o->teachers[t], B, &pd), *part = full ? load_model(a, o->teachers[t], S, &pd) : NULL;
    char why[256];
    if (!part)
        snprintf(why, sizeof why, "at %" PRId64 " samples: %s", S, pd.msg);
    if (!part || !distill_split_ok(full, part, (int)(B / S), why, sizeof why)) {
        if (!o->quiet)
            fprintf(stderr, "kdcc: %s: teacher %d runs on the whole batch: %s\n", o->sub_batch > 0 ? "warning" : "note",
                    t + 1, why);
        return 0;
    }
    if (frozen_passes(part, d))
        return -1;
    ts->g = part;
    ts->parts = (int)(B / S);
    if (!o->quiet)
        printf("teacher %d runs in %d parts of %" PRId64 " samples (%" PRId64 " KB of tensors per sample, L2 %" PRId64
               " KB%s)\n",
               t + 1, ts->parts, S, (distill_bytes_per_sample(tg, B) + 1023) / 1024, l2 / 1024,
               o->sub_batch > 0 ? ", --teacher-sub-batch" : "");
    return 0;
}

int cmd_distill_like(int argc, char **argv, int train)
{
    Opts o = {0};
    Diag d;
    diag_init(&d, NULL);
    int pr = parse(argc, argv, &o, train, &d);
    if (pr) {
        if (pr == -1)
            diag_print(&d, stderr);
        return pr == -2 ? 2 : 1;
    }
    if (o.threads > 1 && trainer_set_threads(o.threads) == 1 && !o.quiet)
        fprintf(stderr, "kdcc: warning: --threads %d: %s cannot build OpenMP programs here; running on one thread\n",
                o.threads, getenv("CC") && getenv("CC")[0] ? getenv("CC") : "cc");
    Arena a;
    arena_init(&a);
    int rc = 1;
    Dataset X, Y, VX, VY;
    dataset_init(&X);
    dataset_init(&Y);
    dataset_init(&VX);
    dataset_init(&VY);
    Module train_m = {0}, eval_m = {0}, teach_m[MAX_TEACHERS] = {{0}};
    float *soft = NULL, *xb = NULL, *sb = NULL, *logits = NULL, *zb = NULL;
    char dir[KD_TMPDIR_MAX] = "";
    if (tmpdir_make(dir, sizeof dir, "train", &d))
        goto out;
    const int64_t B = o.batch;

    /* the student: its input shape tells how to read the data */
    Graph *sg = load_model(&a, o.student, B, &d);
    if (!sg)
        goto out;
    int sin = first_input(sg);
    if (sin < 0) {
        diag_error(&d, NULL, "%s: the student has no input", o.student);
        goto out;
    }
    Value *sx = &sg->values[sin];
    int64_t row = value_numel(sx) / B;
    int zid = -1;
    for (int i = 0; i < sg->noutputs; i++)
        if (!o.student_output || !strcmp(sg->values[sg->outputs[i]].name, o.student_output))
            if (zid < 0)
                zid = sg->outputs[i];
    if (zid < 0 || sg->values[zid].rank != 2) {
        diag_error(&d, NULL, "%s: %s is not a [batch, classes] output", o.student,
                   o.student_output ? o.student_output : "the first output");
        goto out;
    }
    const int64_t C = sg->values[zid].dims[1];

    if (load_x(o.data, &o, sx, &X, &d))
        goto out;
    int64_t N = X.dims[0];
    if (o.labels && load_labels(o.labels, N, C, &Y, &d))
        goto out;
    if (o.limit > 0 && o.limit < N) {
        N = X.dims[0] = o.limit;
        if (o.labels)
            Y.dims[0] = o.limit;
    }
    /* validation: given, or split off the end after a seeded shuffle */
    int64_t NV = 0;
    if (o.val_data) {
        if (load_x(o.val_data, &o, sx, &VX, &d))
            goto out;
        NV = VX.dims[0];
        if (!o.val_labels) {
            diag_error(&d, NULL, "--val-data needs --val-labels");
            goto out;
        }
        if (load_labels(o.val_labels, NV, C, &VY, &d))
            goto out;
    } else if (o.val_frac > 0 && o.labels) {
        NV = (int64_t)(N * o.val_frac);
        int64_t dims[KD_MAX_RANK];
        memcpy(dims, X.dims, sizeof dims);
        dims[0] = NV;
        int64_t one[1] = {NV};
        if (dataset_alloc(&VX, DT_FLOAT, X.rank, dims, "validation split", &d) ||
            dataset_alloc(&VY, DT_INT64, 1, one, "validation split", &d))
            goto out;
        memcpy(VX.data, (float *)X.data + (N - NV) * row, (size_t)(NV * row) * sizeof(float));
        memcpy(VY.data, (int64_t *)Y.data + (N - NV), (size_t)NV * sizeof(int64_t));
        N -= NV;
    }
    if (o.labelled > 0 && o.labels) {
        /* keep N' labels chosen by a seeded shuffle; the others become unlabelled */
        int64_t *lab = Y.data, *idx = malloc((size_t)N * sizeof(int64_t));
        if (!idx) {
            diag_error(&d, NULL, "out of memory");
            goto out;
        }
        uint64_t ls = o.seed * 0xD1B54A32D192ED03ull + 7;
        for (int64_t i = 0; i < N; i++)
            idx[i] = i;
        for (int64_t i = N - 1; i > 0; i--) {
            int64_t j = (int64_t)(trainer_rng(&ls) % (uint64_t)(i + 1)), t = idx[i];
            idx[i] = idx[j];
            idx[j] = t;
        }
        for (int64_t i = o.labelled; i < N; i++)
            lab[idx[i]] = -1;
        free(idx);
    }
    if (o.train_only && o.labels) {
        /* training on labels alone: unlabelled samples teach nothing, leave them out */
        int64_t k = 0, *lab = Y.data;
        for (int64_t i = 0; i < N; i++)
            if (lab[i] >= 0) {
                if (k != i) {
                    memmove((float *)X.data + k * row, (float *)X.data + i * row, (size_t)row * sizeof(float));
                    lab[k] = lab[i];
                }
                k++;
            }
        N = k;
    }
    if (N < B) {
        diag_error(&d, NULL, "%s: %" PRId64 " training samples, fewer than one batch of %" PRId64, o.data, N, B);
        goto out;
    }
    xb = malloc((size_t)(B * row) * sizeof(float));
    zb = malloc((size_t)(B * C) * sizeof(float));
    sb = malloc((size_t)(B * C) * sizeof(float));
    logits = malloc((size_t)((NV ? NV : 1) * C) * sizeof(float));
    if (!xb || !zb || !sb || !logits) {
        diag_error(&d, NULL, "out of memory");
        goto out;
    }

    /* teachers: compiled inference, run once over the data (cached soft targets) */
    TeacherSpec ts[MAX_TEACHERS];
    double tacc[MAX_TEACHERS] = {0};
    int use_teacher = o.alpha > 0;
    if (use_teacher) {
        soft = calloc((size_t)(N * C), sizeof(float));
        float *tl = malloc((size_t)((N > NV ? N : NV) * C) * sizeof(float));
        if (!soft || !tl) {
            free(tl);
            diag_error(&d, NULL, "out of memory");
            goto out;
        }
        double wsum = 0;
        for (int t = 0; t < o.nteachers; t++)
            wsum += o.tweights[t];
        for (int t = 0; t < o.nteachers; t++) {
            if (!o.teachers[t]) { /* logits computed elsewhere, maybe in shards */
                int64_t rows = 0;
                char spec[4096];
                snprintf(spec, sizeof spec, "%s", o.tlogits[t]);
                for (char *f = strtok(spec, ","); f; f = strtok(NULL, ",")) {
                    Dataset part;
                    dataset_init(&part);
                    int bad = data_read(f, &part, &d);
                    Dataset pf;
                    dataset_init(&pf);
                    if (!bad)
                        bad = data_to_float32(&part, NULL, &pf, &d);
                    dataset_free(&part);
                    if (!bad && (pf.rank != 2 || pf.dims[1] != C))
                        bad = diag_error(&d, NULL, "%s: teacher logits must be [samples, %" PRId64 "]", f, C);
                    int64_t take = bad ? 0 : (pf.dims[0] < N - rows ? pf.dims[0] : N - rows);
                    if (!bad && take > 0)
                        memcpy(tl + rows * C, pf.data, (size_t)(take * C) * sizeof(float));
                    rows += take;
                    dataset_free(&pf);
                    if (bad) {
                        free(tl);
                        goto out;
                    }
                }
                if (rows < N) {
                    diag_error(&d, NULL, "--teacher-logits %s: %" PRId64 " rows for %" PRId64 " training samples", o.tlogits[t],
                               rows, N);
                    free(tl);
                    goto out;
                }
            }
            Graph *tg = o.teachers[t] ? load_model(&a, o.teachers[t], B, &d) : NULL;
            if (o.teachers[t] && !tg) {
                free(tl);
                goto out;
            }
            /* the teacher is frozen and runs in inference form: BatchNormalization folded into
             * the Conv before it, as for any compiled model (halves its elementwise passes) */
            if (tg && frozen_passes(tg, &d)) {
                free(tl);
                goto out;
            }
            ts[t].g = tg;
            ts[t].weight = o.tweights[t];
            ts[t].output = o.teacher_output;
            ts[t].parts = 1;
            if (tg && !o.cache && teacher_in_parts(&a, &o, t, tg, B, &ts[t], &d)) {
                free(tl);
                goto out;
            }
            if (!o.cache)
                continue;
            Graph *tgi = o.teachers[t] ? load_model(&a, o.teachers[t], B, &d) : NULL;
            if (!o.teachers[t])
                goto mix;
            char nm[32];
            snprintf(nm, sizeof nm, "teacher%d", t + 1);
            if (!tgi || frozen_passes(tgi, &d) || build_module(tgi, dir, nm, 0, B, &teach_m[t], NULL, &o.tune, &d)) {
                free(tl);
                goto out;
            }
            /* the logits output: the first (or --teacher-output) */
            if (tgi->noutputs != 1 && !o.teacher_output) {
                diag_error(&d, NULL, "%s has %d outputs; say which holds the logits with --teacher-output", o.teachers[t],
                           tgi->noutputs);
                free(tl);
                goto out;
            }
            if (trainer_run_over(&teach_m[t], X.data, N, row, B, tl, C, xb, sb)) {
                free(tl);
                goto out;
            }
        mix:;
            double w = o.tweights[t] / wsum;
            for (int64_t i = 0; i < N; i++) {
                const float *zr = tl + i * C;
                float *pr = soft + i * C;
                if (o.mse) {
                    for (int64_t c = 0; c < C; c++)
                        pr[c] += (float)(w * zr[c]);
                    continue;
                }
                double m = zr[0], s = 0;
                for (int64_t c = 1; c < C; c++)
                    m = zr[c] > m ? zr[c] : m;
                for (int64_t c = 0; c < C; c++)
                    s += exp((zr[c] - m) / o.T);
                for (int64_t c = 0; c < C; c++)
                    pr[c] += (float)(w * exp((zr[c] - m) / o.T) / s);
            }
            if (NV && o.teachers[t] && trainer_run_over(&teach_m[t], VX.data, NV, row, B, tl, C, xb, sb) == 0)
                tacc[t] = trainer_accuracy(tl, VY.data, NV, C, NULL);
        }
        free(tl);
    }

    /* the training step */
    Graph *tg = load_model(&a, o.student, B, &d);
    if (!tg)
        goto out;
    DistillOptions dopt = {.T = o.T, .alpha = o.alpha, .mse = o.mse, .with_labels = o.labels != NULL,
                           .student_output = o.student_output};
    if (use_teacher && !o.cache) {
        dopt.teachers = ts;
        dopt.nteachers = o.nteachers;
    }
    dopt.opt.kind = !strcmp(o.optimizer, "sgd") ? OPT_SGD : !strcmp(o.optimizer, "adamw") ? OPT_ADAMW : OPT_ADAM;
    dopt.opt.momentum = o.momentum;
    dopt.opt.nesterov = o.nesterov;
    dopt.opt.beta1 = 0.9;
    dopt.opt.beta2 = 0.999;
    dopt.opt.epsilon = 1e-8;
    dopt.opt.weight_decay = o.weight_decay;
    dopt.opt.clip_norm = o.clip_norm;
    dopt.train_mode.seed = o.seed;
    Writer train_c;
    w_init(&train_c);
    /* fused like inference (passes/fuse.c): epilogues, and each activation's derivative
     * at the store of the gradient that reaches it */
    if (pass_distill(tg, &dopt, &d) || pass_fuse(tg, &d) ||
        build_module(tg, dir, "train_step", 0, B, &train_m, &train_c, &o.tune, &d)) {
        w_free(&train_c);
        goto out;
    }
    if (o.report)
        report_training_print(tg, stdout);
    if (o.emit_train) {
        /* the same step, standalone (header in the same file's folder) */
        Writer h;
        w_init(&h);
        EmitOptions eo = {.name = "train_step", .header = "train_step.h", .share_functions = 1};
        Writer c2;
        w_init(&c2);
        int bad = emit_c(tg, &eo, &c2, &h, &d);
        /* and the driver that runs epochs of it on a device (compiler/emit/train_driver.c) */
        TrainDriverOptions dro = {.name = eo.name, .batch = B, .epochs = o.epochs, .seed = o.seed, .lr = o.lr,
                                  .gamma = o.gamma, .warmup = o.warmup, .step_size = o.step_size,
                                  .schedule = !strcmp(o.schedule, "cosine") ? TD_LR_COSINE
                                              : !strcmp(o.schedule, "step") ? TD_LR_STEP : TD_LR_CONSTANT,
                                  .temperature = o.T, .mse = o.mse, .max_samples = N};
        if (!bad)
            bad = emit_train_driver(tg, &dro, &c2, &h, &d);
        char hp[4096];
        snprintf(hp, sizeof hp, "%s", o.emit_train);
        char *sl = strrchr(hp, '/');
        snprintf(sl ? sl + 1 : hp, sizeof hp - (size_t)(sl ? sl + 1 - hp : 0), "train_step.h");
        if (!bad)
            bad = save_pair(&c2, o.emit_train, &h, hp, &d);
        w_free(&h);
        w_free(&c2);
        if (bad) {
            w_free(&train_c);
            goto out;
        }
    }
    w_free(&train_c);
    /* the student's forward pass over the same weights, for accuracy */
    Graph *eg = load_model(&a, o.student, B, &d);
    if (!eg)
        goto out;
    weights_as_state(eg);
    if (build_module(eg, dir, "student_eval", 0, B, &eval_m, NULL, NULL, &d))
        goto out;

    /* the epochs: runtime/trainer.c drives the compiled step over the data */
    TrainConfig tc = {.batch = B, .epochs = o.epochs, .seed = o.seed, .lr = o.lr, .warmup = o.warmup,
                      .schedule = !strcmp(o.schedule, "cosine") ? LR_COSINE : !strcmp(o.schedule, "step") ? LR_STEP : LR_CONSTANT,
                      .step_size = o.step_size, .gamma = o.gamma, .checkpoint = o.checkpoint, .resume = o.resume,
                      .quiet = o.quiet, .log = o.log};
    for (int i = 0; i < tg->ninputs && tc.ninputs < 8; i++) {
        const Value *v = &tg->values[tg->inputs[i]];
        if (v->role != VR_INPUT)
            continue;
        tc.inputs[tc.ninputs++] = !strcmp(v->name, "labels") ? TI_LABELS : !strcmp(v->name, "soft_targets") ? TI_SOFT
                                  : !strcmp(v->name, "lr") ? TI_LR : !strcmp(v->name, "step") ? TI_STEP : TI_X;
    }
    TrainData td = {.x = X.data, .n = N, .row = row, .classes = C, .labels = o.labels ? Y.data : NULL,
                    .soft = soft, .vx = NV ? VX.data : NULL, .vy = NV ? VY.data : NULL, .nv = NV};
    if (!o.quiet)
        printf("training %s on %" PRId64 " samples (%" PRId64 " steps of %" PRId64 " per epoch)%s, %d epochs\n", o.student, N,
               N / B, B, use_teacher ? (o.cache ? ", teacher outputs cached" : ", teachers in the loop") : "", o.epochs);
    TrainResult tr;
    if (trainer_run(&train_m, &eval_m, &td, &tc, &tr, &d))
        goto out;
    double elapsed = tr.seconds;
    int64_t total = tr.steps;

    /* the trained student: weights poured into the inference graph, out as ONNX and C */
    ImportOptions io = {0};
    d.file = o.student;
    Graph *fg = model_load(&a, o.student, &io, &d);
    if (!fg)
        goto out;
    d.file = NULL;
    for (int v = 0; v < fg->nvalues; v++) {
        Value *val = &fg->values[v];
        const StateEntry *e = val->role == VR_CONST ? module_state(&train_m, val->name) : NULL;
        if (e && e->count == value_numel(val) && val->dtype == DT_FLOAT) {
            void *p = arena_alloc(&a, (size_t)e->count * sizeof(float));
            if (!p) {
                diag_error(&d, NULL, "out of memory");
                goto out;
            }
            memcpy(p, (const char *)train_m.state + e->offset, (size_t)e->count * sizeof(float));
            val->data = p;
        }
    }
    if (o.out_onnx && onnx_export_file(fg, o.out_onnx, &d))
        goto out;
    if (o.out_c) {
        CompileOptions co = {.validate = 1};
        co.pass.fold = 1;
        co.pass.batch = 1;
        char cpath[4096], hpath[4096], nm[64];
        snprintf(cpath, sizeof cpath, "%s", o.out_c);
        char *dot = strrchr(cpath, '.');
        if (dot && !strcmp(dot, ".c"))
            *dot = 0;
        snprintf(hpath, sizeof hpath, "%s.h", cpath);
        strcat(cpath, ".c");
        if (o.name)
            snprintf(nm, sizeof nm, "%s", o.name);
        else
            name_from_path(cpath, nm, sizeof nm);
        const char *hb = strrchr(hpath, '/');
        co.emit.name = nm;
        co.emit.header = hb ? hb + 1 : hpath;
        co.emit.source = o.student;
        Writer cw, hw;
        w_init(&cw);
        w_init(&hw);
        int bad = compile_graph(fg, &co, &cw, &hw, &d) || save_pair(&cw, cpath, &hw, hpath, &d);
        w_free(&cw);
        w_free(&hw);
        if (bad)
            goto out;
    }
    if (!o.quiet) {
        printf("done in %.1fs (%.0f samples/s)", elapsed, (double)(total * B) / (elapsed > 0 ? elapsed : 1e-9));
        for (int t = 0; t < o.nteachers && NV && o.cache; t++)
            if (o.teachers[t])
                printf("; teacher %d val acc %.2f%%", t + 1, 100 * tacc[t]);
        printf("\n");
        if (NV) {
            module_copy_state(&train_m, &eval_m);
            if (trainer_run_over(&eval_m, VX.data, NV, row, B, logits, C, xb, zb) == 0)
                printf("student val acc %.2f%%\n", 100 * trainer_accuracy(logits, VY.data, NV, C, NULL));
        }
    }
    rc = 0;
out:
    if (rc)
        diag_print(&d, stderr);
    module_free(&train_m);
    module_free(&eval_m);
    for (int t = 0; t < MAX_TEACHERS; t++)
        module_free(&teach_m[t]);
    free(soft);
    free(xb);
    free(sb);
    free(zb);
    free(logits);
    dataset_free(&X);
    dataset_free(&Y);
    dataset_free(&VX);
    dataset_free(&VY);
    arena_free(&a);
    if (!getenv("KDCC_KEEP_TRAIN_DIR"))
        tmpdir_remove(dir);
    return rc;
}

int cmd_distill(int argc, char **argv)
{
    return cmd_distill_like(argc, argv, 0);
}

int cmd_train(int argc, char **argv)
{
    return cmd_distill_like(argc, argv, 1);
}

/* kdcc eval MODEL --data X --labels Y: accuracy and confusion matrix of the model's
 * compiled inference code. */
int cmd_eval(int argc, char **argv)
{
    static const struct option lo[] = {{"data", 1, 0, 1}, {"labels", 1, 0, 2}, {"scale", 1, 0, 3},
                                       {"batch", 1, 0, 4}, {"output", 1, 0, 5}, {"mean", 1, 0, 6},
                                       {"std", 1, 0, 7}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    Opts o = {0};
    const char *data = NULL, *labels = NULL, *output = NULL;
    int64_t B = 100;
    Diag d;
    diag_init(&d, NULL);
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 1: data = optarg; break;
        case 2: labels = optarg; break;
        case 3: o.scale = strtod(optarg, NULL); break;
        case 4: B = strtoll(optarg, NULL, 10); break;
        case 5: output = optarg; break;
        case 6:
        case 7:
            if (((c == 6 ? (o.nmean = parse_list(optarg, o.mean, 64)) : (o.nstd = parse_list(optarg, o.std, 64)))) < 1) {
                fprintf(stderr, "kdcc: error: --%s wants one number or one per channel, got '%s'\n", c == 6 ? "mean" : "std",
                        optarg);
                return 2;
            }
            break;
        case 'h':
            printf("usage: kdcc eval MODEL --data X --labels Y [--scale X] [--mean M] [--std S] [--batch N] [--output NAME]\n"
                   "  accuracy and confusion matrix of MODEL's compiled C on the data\n");
            return 0;
        default: return 2;
        }
    }
    if (optind != argc - 1 || !data || !labels || B <= 0) {
        fprintf(stderr, "usage: kdcc eval MODEL --data X --labels Y [--scale X] [--batch N]\n");
        return 2;
    }
    const char *model = argv[optind];
    Arena a;
    arena_init(&a);
    Dataset X, Y;
    dataset_init(&X);
    dataset_init(&Y);
    Module m = {0};
    float *xb = NULL, *yb = NULL, *logits = NULL;
    int64_t *conf = NULL;
    int rc = 1;
    char dir[KD_TMPDIR_MAX] = "";
    if (tmpdir_make(dir, sizeof dir, "eval", &d))
        goto out;
    Graph *g = load_model(&a, model, B, &d);
    if (!g)
        goto out;
    int in = first_input(g);
    int z = -1;
    for (int i = 0; i < g->noutputs; i++)
        if (z < 0 && (!output || !strcmp(g->values[g->outputs[i]].name, output)))
            z = g->outputs[i];
    if (in < 0 || z < 0 || g->values[z].rank != 2) {
        diag_error(&d, NULL, "%s: needs an input and a [batch, classes] output", model);
        goto out;
    }
    int64_t row = value_numel(&g->values[in]) / B, C = g->values[z].dims[1];
    if (load_x(data, &o, &g->values[in], &X, &d) || load_labels(labels, X.dims[0], C, &Y, &d))
        goto out;
    if (g->noutputs > 1) { /* keep just the logits */
        g->outputs[0] = z;
        g->noutputs = 1;
    }
    if (build_module(g, dir, "eval_model", 0, B, &m, NULL, NULL, &d))
        goto out;
    int64_t N = X.dims[0];
    xb = malloc((size_t)(B * row) * sizeof(float));
    yb = malloc((size_t)(B * C) * sizeof(float));
    logits = malloc((size_t)(N * C) * sizeof(float));
    conf = calloc((size_t)(C * C), sizeof(int64_t));
    if (!xb || !yb || !logits || !conf) {
        diag_error(&d, NULL, "out of memory");
        goto out;
    }
    if (trainer_run_over(&m, X.data, N, row, B, logits, C, xb, yb)) {
        diag_error(&d, NULL, "internal error: the model failed");
        goto out;
    }
    int64_t counted = 0;
    double acc = trainer_accuracy(logits, Y.data, N, C, &counted);
    const int64_t *lab = Y.data;
    for (int64_t i = 0; i < N; i++) {
        if (lab[i] < 0)
            continue;
        int64_t best = 0;
        for (int64_t k = 1; k < C; k++)
            if (logits[i * C + k] > logits[i * C + best])
                best = k;
        conf[lab[i] * C + best]++;
    }
    printf("accuracy %.2f%% (%" PRId64 " of %" PRId64 " labelled samples)\n", 100 * acc,
           (int64_t)(acc * (double)counted + 0.5), counted);
    if (C <= 32) {
        printf("confusion matrix (rows: true class, columns: predicted)\n      ");
        for (int64_t k = 0; k < C; k++)
            printf(" %6" PRId64, k);
        printf("\n");
        for (int64_t t = 0; t < C; t++) {
            printf("%5" PRId64 " ", t);
            for (int64_t k = 0; k < C; k++)
                printf(" %6" PRId64, conf[t * C + k]);
            printf("\n");
        }
    }
    rc = 0;
out:
    if (rc)
        diag_print(&d, stderr);
    module_free(&m);
    free(xb);
    free(yb);
    free(logits);
    free(conf);
    dataset_free(&X);
    dataset_free(&Y);
    arena_free(&a);
    tmpdir_remove(dir);
    return rc;
}

/* kdcc soft-targets --teacher T.onnx --data X [--shard i/n] -o part.npy: a teacher's
 * logits for one shard of the data, so the expensive part of distillation can run as
 * n independent jobs on any batch system; distill reads the parts back in order with
 * --teacher-logits part0.npy,part1.npy,... */
int cmd_soft_targets(int argc, char **argv)
{
    static const struct option lo[] = {{"teacher", 1, 0, 1}, {"data", 1, 0, 2}, {"scale", 1, 0, 3},
                                       {"batch", 1, 0, 4}, {"shard", 1, 0, 5}, {"output", 1, 0, 'o'},
                                       {"teacher-output", 1, 0, 6}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    Opts o = {0};
    const char *teacher = NULL, *data = NULL, *out = NULL, *tout = NULL;
    int64_t B = 64, si = 0, sn = 1;
    Diag d;
    diag_init(&d, NULL);
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "o:h", lo, NULL)) != -1) {
        switch (c) {
        case 1: teacher = optarg; break;
        case 2: data = optarg; break;
        case 3: o.scale = strtod(optarg, NULL); break;
        case 4: B = strtoll(optarg, NULL, 10); break;
        case 5:
            if (sscanf(optarg, "%" SCNd64 "/%" SCNd64, &si, &sn) != 2 || sn < 1 || si < 0 || si >= sn) {
                fprintf(stderr, "kdcc: error: --shard wants I/N with 0 <= I < N, got '%s'\n", optarg);
                return 1;
            }
            break;
        case 6: tout = optarg; break;
        case 'o': out = optarg; break;
        case 'h':
            printf("usage: kdcc soft-targets --teacher T.onnx --data X [--scale X] [--batch N] [--shard I/N]\n"
                   "                         [--teacher-output NAME] -o PART.npy\n"
                   "  the teacher's logits for shard I of N of the data (rows [I*S/N, (I+1)*S/N)), as\n"
                   "  float32 .npy [rows, classes]; kdcc distill --teacher-logits P0.npy,P1.npy,... reads them\n");
            return 0;
        default: return 2;
        }
    }
    if (!teacher || !data || !out || optind != argc || B <= 0) {
        fprintf(stderr, "usage: kdcc soft-targets --teacher T.onnx --data X [--shard I/N] -o PART.npy\n");
        return 2;
    }
    Arena a;
    arena_init(&a);
    Dataset X;
    dataset_init(&X);
    Module m = {0};
    float *xb = NULL, *yb = NULL, *res = NULL;
    int rc = 1;
    char dir[KD_TMPDIR_MAX] = "";
    if (tmpdir_make(dir, sizeof dir, "soft", &d))
        goto out;
    Graph *g = load_model(&a, teacher, B, &d);
    if (!g)
        goto out;
    int in = first_input(g), z = -1;
    for (int i = 0; i < g->noutputs; i++)
        if (z < 0 && (!tout || !strcmp(g->values[g->outputs[i]].name, tout)))
            z = g->outputs[i];
    if (in < 0 || z < 0 || g->values[z].rank != 2) {
        diag_error(&d, NULL, "%s: needs an input and a [batch, classes] output", teacher);
        goto out;
    }
    g->outputs[0] = z;
    g->noutputs = 1;
    int64_t row = value_numel(&g->values[in]) / B, C = g->values[z].dims[1];
    if (load_x(data, &o, &g->values[in], &X, &d) || frozen_passes(g, &d) ||
        build_module(g, dir, "teacher", 0, B, &m, NULL, NULL, &d))
        goto out;
    int64_t S = X.dims[0], lo_r = si * S / sn, hi_r = (si + 1) * S / sn, rows = hi_r - lo_r;
    xb = malloc((size_t)(B * row) * sizeof(float));
    yb = malloc((size_t)(B * C) * sizeof(float));
    res = malloc((size_t)((rows ? rows : 1) * C) * sizeof(float));
    if (!xb || !yb || !res) {
        diag_error(&d, NULL, "out of memory");
        goto out;
    }
    if (trainer_run_over(&m, (const float *)X.data + lo_r * row, rows, row, B, res, C, xb, yb)) {
        diag_error(&d, NULL, "internal error: the teacher failed");
        goto out;
    }
    int64_t dims[2] = {rows, C};
    if (data_write_npy(out, DT_FLOAT, 2, dims, res, &d))
        goto out;
    rc = 0;
out:
    if (rc)
        diag_print(&d, stderr);
    module_free(&m);
    free(xb);
    free(yb);
    free(res);
    dataset_free(&X);
    arena_free(&a);
    tmpdir_remove(dir);
    return rc;
}

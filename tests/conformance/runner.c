/* The ONNX conformance runner: every backend test through the whole pipeline.
 *
 * For each test folder (model.onnx + test_data_set_N/{input,output}_K.pb):
 * import, bind input shapes from the test inputs, run the passes, emit C,
 * compile it with $CC together with a small harness, run it on every data set
 * and compare the outputs with the expected ones (rtol 1e-3, atol 1e-5 for
 * floats; exact for integers and bools). Inputs that must be constants for
 * static shapes (a Reshape's shape, a Slice's starts, ...) are bound to the
 * test's values when the compiler asks for it, as a user would with --const.
 *
 * Prints one line per failure and skip (with -v also per pass), the skip
 * reasons grouped, and "N passed, N failed, N skipped". With --expect FILE
 * every test listed there must pass (exit 1 otherwise).
 *
 * --sanitize builds the emitted C and the harness with -fsanitize=address,undefined
 * -fno-sanitize-recover=all -g -O1, so an out-of-bounds access, a signed overflow or
 * a leak in emitted code fails the test (the program exits non-zero); runs get 5x
 * the time. --sample N keeps every Nth test of the sorted (filtered) list, so that a
 * cheap run still spreads over all operators; --expect then checks only the tests kept.
 * A test whose program stops with a sanitizer report prints SANITIZER and makes the
 * exit status 1 even when --expect does not list it.
 */
#include "compiler/cli/cli.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef KDCC_SHARED_DIR
#define KDCC_SHARED_DIR "../shared"
#endif
#ifndef KDCC_WORK_DIR
#define KDCC_WORK_DIR "/tmp/kdcc-conformance"
#endif

typedef struct Options {
    const char *root;
    const char *work;
    const char *filters[32];
    int nfilters;
    const char *expect;
    const char *write_passes;
    const char *cc;
    const char *cflags; /* extra flags for the emitted C and the harness */
    int jobs;
    int verbose;
    int keep;
    int sanitize;
    int sample;
    int validate;
    double rtol, atol;
} Options;

typedef struct Test {
    char rel[256];     /* "node/test_abs" */
    char status;       /* 'P', 'F', 'S'; 'A': failed with a sanitizer report */
    char reason[512];
} Test;

static int cmp_test(const void *a, const void *b)
{
    return strcmp(((const Test *)a)->rel, ((const Test *)b)->rel);
}

static int matches(const Options *o, const char *rel)
{
    if (!o->nfilters)
        return 1;
    for (int i = 0; i < o->nfilters; i++)
        if (strstr(rel, o->filters[i]))
            return 1;
    return 0;
}

static int file_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

/* ---------------------------------------------------------------- one test */

#define MAX_IO 64

typedef struct Run {
    Arena a;
    Tensor in[MAX_IO];
    int nin;
    Graph *g;
    int input_of[MAX_IO]; /* value id of test input k, -1 if frozen */
} Run;

static int read_tensors(Arena *a, const char *dir, const char *prefix, Tensor *ts, int *n, Diag *d)
{
    *n = 0;
    for (int k = 0; k < MAX_IO; k++) {
        char p[1024];
        snprintf(p, sizeof p, "%s/%s_%d.pb", dir, prefix, k);
        if (!file_exists(p))
            break;
        if (onnx_read_tensor_file(a, p, &ts[k], d))
            return -1;
        (*n)++;
    }
    return 0;
}

static int write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t w = n ? fwrite(data, 1, n, f) : 0;
    int bad = w != n;
    bad |= fclose(f) != 0;
    return bad ? -1 : 0;
}

static void *read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *buf = malloc(len > 0 ? (size_t)len : 1);
    if (buf && len > 0 && fread(buf, 1, (size_t)len, f) != (size_t)len) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *n = len > 0 ? (size_t)len : 0;
    return buf;
}

/* The graph inputs that the test data feeds, in order. */
static int map_inputs(const Graph *g, int nfiles, int *ids)
{
    int nall = g->ninputs, nrun = 0;
    for (int i = 0; i < g->ninputs; i++)
        nrun += g->values[g->inputs[i]].role == VR_INPUT;
    if (nfiles == nall) {
        for (int i = 0; i < nall; i++)
            ids[i] = g->values[g->inputs[i]].role == VR_INPUT ? g->inputs[i] : -1;
        return 0;
    }
    if (nfiles == nrun) {
        int k = 0;
        for (int i = 0; i < g->ninputs; i++)
            if (g->values[g->inputs[i]].role == VR_INPUT)
                ids[k++] = g->inputs[i];
        return 0;
    }
    return -1;
}

static void harness(Writer *w, const Graph *g)
{
    w_line(w, "#include \"model.h\"");
    w_line(w, "#include <stdio.h>");
    w_line(w, "#include <stdlib.h>");
    w_line(w, "#include <string.h>");
    w_line(w, "static void *load(const char *dir, const char *name, size_t n)");
    w_line(w, "{");
    w_line(w, "    char p[4096];");
    w_line(w, "    void *buf = malloc(n + 1);");
    w_line(w, "    FILE *f;");
    w_line(w, "    snprintf(p, sizeof p, \"%%s/%%s\", dir, name);");
    w_line(w, "    f = fopen(p, \"rb\");");
    w_line(w, "    if (!f || !buf || (n && fread(buf, 1, n, f) != n)) { fprintf(stderr, \"cannot read %%s\\n\", p); exit(3); }");
    w_line(w, "    fclose(f);");
    w_line(w, "    return buf;");
    w_line(w, "}");
    w_line(w, "static void save(const char *dir, const char *name, const void *buf, size_t n)");
    w_line(w, "{");
    w_line(w, "    char p[4096];");
    w_line(w, "    FILE *f;");
    w_line(w, "    snprintf(p, sizeof p, \"%%s/%%s\", dir, name);");
    w_line(w, "    f = fopen(p, \"wb\");");
    w_line(w, "    if (!f || (n && fwrite(buf, 1, n, f) != n)) { fprintf(stderr, \"cannot write %%s\\n\", p); exit(3); }");
    w_line(w, "    fclose(f);");
    w_line(w, "}");
    w_line(w, "int main(int argc, char **argv)");
    w_line(w, "{");
    w_line(w, "    const char *dir = argc > 1 ? argv[1] : \".\";");
    w_line(w, "    int rc;");
    w_line(w, "    (void)load;");
    int k = 0;
    for (int i = 0; i < g->ninputs; i++) {
        const Value *v = &g->values[g->inputs[i]];
        if (v->role != VR_INPUT)
            continue;
        w_line(w, "    %s *in%d = (%s *)load(dir, \"in%d.bin\", %zu);", dtype_ctype(v->dtype), k, dtype_ctype(v->dtype), k,
               value_bytes(v));
        k++;
    }
    for (int i = 0; i < g->noutputs; i++) {
        const Value *v = &g->values[g->outputs[i]];
        w_line(w, "    %s *out%d = (%s *)calloc(%zu, 1);", dtype_ctype(v->dtype), i, dtype_ctype(v->dtype), value_bytes(v) + 1);
    }
    w_puts(w, "    rc = model_run(");
    k = 0;
    int first = 1;
    for (int i = 0; i < g->ninputs; i++)
        if (g->values[g->inputs[i]].role == VR_INPUT) {
            w_printf(w, "%sin%d", first ? "" : ", ", k++);
            first = 0;
        }
    for (int i = 0; i < g->noutputs; i++) {
        w_printf(w, "%sout%d", first ? "" : ", ", i);
        first = 0;
    }
    w_line(w, ");");
    w_line(w, "    if (rc != 0) { fprintf(stderr, \"model_run returned %%d\\n\", rc); return 4; }");
    for (int i = 0; i < g->noutputs; i++)
        w_line(w, "    save(dir, \"out%d.bin\", out%d, %zu);", i, i, value_bytes(&g->values[g->outputs[i]]));
    for (int i = 0; i < k; i++)
        w_line(w, "    free(in%d);", i);
    for (int i = 0; i < g->noutputs; i++)
        w_line(w, "    free(out%d);", i);
    w_line(w, "    return 0;");
    w_line(w, "}");
}

static int compare(const Options *o, const Value *v, const void *got, size_t got_bytes, const Tensor *want, char *why, size_t n)
{
    if (v->dtype != want->dtype) {
        snprintf(why, n, "output '%s' has type %s, expected %s", v->name, dtype_name(v->dtype), dtype_name(want->dtype));
        return -1;
    }
    int64_t numel = dims_numel(want->rank, want->dims);
    int same_shape = v->rank == want->rank;
    for (int i = 0; same_shape && i < v->rank; i++)
        same_shape = v->dims[i] == want->dims[i];
    if (!same_shape || numel != value_numel(v)) {
        char ts[128];
        snprintf(why, n, "output '%s' has shape %s, expected rank %d with %" PRId64 " elements", v->name,
                 value_type_str(v, ts, sizeof ts), want->rank, numel);
        return -1;
    }
    if (got_bytes < value_bytes(v)) {
        snprintf(why, n, "output '%s' file is short", v->name);
        return -1;
    }
    int isf = dtype_is_float(v->dtype) || v->dtype == DT_FLOAT16 || v->dtype == DT_BFLOAT16;
    int64_t bad = 0, first = -1;
    double worst = 0;
    for (int64_t i = 0; i < numel; i++) {
        if (isf) {
            double a = elem_get_f64(got, v->dtype, i), e = elem_get_f64(want->data, want->dtype, i);
            if (isnan(a) && isnan(e))
                continue;
            if (isinf(e) && a == e)
                continue;
            double err = fabs(a - e);
            if (!(err <= o->atol + o->rtol * fabs(e))) {
                if (first < 0)
                    first = i;
                bad++;
                if (!(err <= worst))
                    worst = err;
            }
        } else if (elem_get_i64(got, v->dtype, i) != elem_get_i64(want->data, want->dtype, i)) {
            if (first < 0)
                first = i;
            bad++;
        }
    }
    if (bad) {
        if (isf)
            snprintf(why, n, "output '%s': %" PRId64 " of %" PRId64 " values differ (first at %" PRId64 ": got %.6g, expected %.6g; max error %.3g)",
                     v->name, bad, numel, first, elem_get_f64(got, v->dtype, first), elem_get_f64(want->data, want->dtype, first), worst);
        else
            snprintf(why, n, "output '%s': %" PRId64 " of %" PRId64 " values differ (first at %" PRId64 ": got %" PRId64 ", expected %" PRId64 ")",
                     v->name, bad, numel, first, elem_get_i64(got, v->dtype, first), elem_get_i64(want->data, want->dtype, first));
        return -1;
    }
    return 0;
}

static int sh(const char *cmd)
{
    int r = system(cmd);
    if (r == -1)
        return -1;
    if (WIFEXITED(r))
        return WEXITSTATUS(r);
    return 128 + (WIFSIGNALED(r) ? WTERMSIG(r) : 0);
}

/* The first line of a log that mentions an error, else its first line. */
static void first_line(const char *path, char *out, size_t n)
{
    size_t len;
    char *s = read_file(path, &len);
    out[0] = 0;
    if (!s)
        return;
    char *text = realloc(s, len + 1);
    if (!text) {
        free(s);
        return;
    }
    text[len] = 0;
    const char *pick = NULL, *first = NULL;
    for (char *p = text; p && *p;) {
        char *nl = strchr(p, '\n');
        if (nl)
            *nl = 0;
        if (!first)
            first = p;
        if (!pick && strstr(p, "error"))
            pick = p;
        p = nl ? nl + 1 : NULL;
    }
    snprintf(out, n, "%s", pick ? pick : first ? first : "");
    free(text);
}

/* The first line of a log with a sanitizer report ("runtime error: ..." from UBSan,
 * "ERROR: AddressSanitizer: ..."), 1 if there is one. */
static int sanitizer_line(const char *path, char *out, size_t n)
{
    size_t len;
    char *s = read_file(path, &len);
    if (!s)
        return 0;
    char *text = realloc(s, len + 1);
    if (!text) {
        free(s);
        return 0;
    }
    text[len] = 0;
    int found = 0;
    for (char *p = text; p && *p && !found;) {
        char *nl = strchr(p, '\n');
        if (nl)
            *nl = 0;
        if (strstr(p, "runtime error:") || strstr(p, "Sanitizer:")) {
            snprintf(out, n, "%s", p);
            found = 1;
        }
        p = nl ? nl + 1 : NULL;
    }
    free(text);
    return found;
}

static void run_test(const Options *o, const char *dir, const char *work, Test *t)
{
    Diag d;
    char p[2048];
    char consts[16][256];
    int nconsts = 0;
    Run r;
    for (int attempt = 0;; attempt++) {
        arena_init(&r.a);
        diag_init(&d, NULL);
        d.quiet_warnings = 1;
        snprintf(p, sizeof p, "%s/test_data_set_0", dir);
        if (read_tensors(&r.a, p, "input", r.in, &r.nin, &d)) {
            t->status = d.unsupported ? 'S' : 'F';
            snprintf(t->reason, sizeof t->reason, "test input: %s", d.msg);
            arena_free(&r.a);
            return;
        }
        snprintf(p, sizeof p, "%s/model.onnx", dir);
        d.file = "model.onnx";
        ImportOptions io = {0};
        r.g = model_load(&r.a, p, &io, &d);
        if (!r.g)
            break;
        if (map_inputs(r.g, r.nin, r.input_of)) {
            t->status = 'F';
            snprintf(t->reason, sizeof t->reason, "the test has %d inputs, the model %d", r.nin, r.g->ninputs);
            arena_free(&r.a);
            return;
        }
        ShapeBinding sb[MAX_IO];
        ConstBinding cb[16];
        int nsb = 0, ncb = 0;
        for (int k = 0; k < r.nin; k++) {
            int id = r.input_of[k];
            if (id < 0)
                continue;
            const Value *v = &r.g->values[id];
            int frozen = 0;
            for (int c = 0; c < nconsts; c++)
                if (strcmp(consts[c], v->name) == 0) {
                    cb[ncb].name = consts[c];
                    cb[ncb++].t = r.in[k];
                    frozen = 1;
                }
            if (frozen)
                continue;
            sb[nsb].name = v->name;
            sb[nsb].rank = r.in[k].rank;
            memcpy(sb[nsb].dims, r.in[k].dims, sizeof sb[nsb].dims);
            nsb++;
        }
        CompileOptions co = {.validate = o->validate};
        co.pass.fold = 1;
        co.pass.shapes = sb;
        co.pass.nshapes = nsb;
        co.consts = cb;
        co.nconsts = ncb;
        co.emit.name = "model";
        co.emit.header = "model.h";
        Writer cw, hw;
        w_init(&cw);
        w_init(&hw);
        int rc = compile_graph(r.g, &co, &cw, &hw, &d);
        if (rc == 0) {
            mkdir(work, 0755);
            snprintf(p, sizeof p, "%s/model.c", work);
            int bad = write_file(p, cw.buf, cw.len);
            snprintf(p, sizeof p, "%s/model.h", work);
            bad |= write_file(p, hw.buf, hw.len);
            Writer hm;
            w_init(&hm);
            harness(&hm, r.g);
            snprintf(p, sizeof p, "%s/main.c", work);
            bad |= write_file(p, hm.buf, hm.len);
            w_free(&hm);
            w_free(&cw);
            w_free(&hw);
            if (bad) {
                t->status = 'F';
                snprintf(t->reason, sizeof t->reason, "cannot write into %s", work);
                arena_free(&r.a);
                return;
            }
            break;
        }
        w_free(&cw);
        w_free(&hw);
        if (d.need_const[0] && nconsts < 16 && attempt < 16) {
            snprintf(consts[nconsts++], sizeof consts[0], "%s", d.need_const);
            arena_free(&r.a);
            continue;
        }
        r.g = NULL;
        break;
    }
    if (!r.g) {
        t->status = d.unsupported ? 'S' : 'F';
        snprintf(t->reason, sizeof t->reason, "%s", d.msg);
        arena_free(&r.a);
        return;
    }
    /* compile */
    char cmd[8192];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && %s -std=c99 -O1 -Wall -Wextra -Wpedantic -Werror %s %s -o prog model.c main.c -lm > cc.log 2>&1",
             work, o->cc, o->sanitize ? "-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g" : "",
             o->cflags ? o->cflags : "");
    if (sh(cmd) != 0) {
        t->status = 'F';
        char line[400];
        snprintf(p, sizeof p, "%s/cc.log", work);
        first_line(p, line, sizeof line);
        snprintf(t->reason, sizeof t->reason, "emitted C does not compile: %s", line);
        arena_free(&r.a);
        return;
    }
    /* run on every data set */
    for (int ds = 0;; ds++) {
        char dsdir[2048];
        snprintf(dsdir, sizeof dsdir, "%s/test_data_set_%d", dir, ds);
        if (!file_exists(dsdir)) {
            if (ds == 0) {
                t->status = 'F';
                snprintf(t->reason, sizeof t->reason, "no test data");
                arena_free(&r.a);
                return;
            }
            break;
        }
        Tensor in[MAX_IO], out[MAX_IO];
        int nin, nout;
        if (read_tensors(&r.a, dsdir, "input", in, &nin, &d) || read_tensors(&r.a, dsdir, "output", out, &nout, &d)) {
            t->status = d.unsupported ? 'S' : 'F';
            snprintf(t->reason, sizeof t->reason, "reading test data: %s", d.msg);
            arena_free(&r.a);
            return;
        }
        if (nout != r.g->noutputs) {
            t->status = 'F';
            snprintf(t->reason, sizeof t->reason, "the test has %d outputs, the model %d", nout, r.g->noutputs);
            arena_free(&r.a);
            return;
        }
        int k = 0;
        for (int i = 0; i < nin && i < r.nin; i++) {
            int id = r.input_of[i];
            if (id < 0 || r.g->values[id].role != VR_INPUT)
                continue;
            /* the emitted API takes inputs in graph order; input_of follows graph order */
            snprintf(p, sizeof p, "%s/in%d.bin", work, k++);
            if (in[i].nbytes != value_bytes(&r.g->values[id])) {
                t->status = 'F';
                snprintf(t->reason, sizeof t->reason, "data set %d: input %d has another shape than data set 0", ds, i);
                arena_free(&r.a);
                return;
            }
            write_file(p, in[i].data, in[i].nbytes);
        }
        snprintf(cmd, sizeof cmd, "cd '%s' && timeout %d ./prog . > run.log 2>&1", work, o->sanitize ? 300 : 60);
        int rc = sh(cmd);
        if (rc != 0) {
            t->status = 'F';
            char line[400];
            snprintf(p, sizeof p, "%s/run.log", work);
            first_line(p, line, sizeof line);
            if (o->sanitize && sanitizer_line(p, line, sizeof line))
                t->status = 'A';
            snprintf(t->reason, sizeof t->reason, "emitted code failed (exit %d): %s", rc, line);
            arena_free(&r.a);
            return;
        }
        for (int i = 0; i < nout; i++) {
            size_t len;
            snprintf(p, sizeof p, "%s/out%d.bin", work, i);
            void *got = read_file(p, &len);
            if (!got) {
                t->status = 'F';
                snprintf(t->reason, sizeof t->reason, "no output %d", i);
                arena_free(&r.a);
                return;
            }
            char why[400];
            int bad = compare(o, &r.g->values[r.g->outputs[i]], got, len, &out[i], why, sizeof why);
            free(got);
            if (bad) {
                t->status = 'F';
                snprintf(t->reason, sizeof t->reason, "%s%s", ds ? "later data set: " : "", why);
                arena_free(&r.a);
                return;
            }
        }
    }
    t->status = 'P';
    t->reason[0] = 0;
    arena_free(&r.a);
}

/* ---------------------------------------------------------------- driver */

static Test *collect(const Options *o, int *count)
{
    static const char *const suites[] = {"node", "simple", "pytorch-converted", "pytorch-operator", "models"};
    Test *ts = NULL;
    int n = 0, cap = 0;
    for (size_t s = 0; s < sizeof suites / sizeof suites[0]; s++) {
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", o->root, suites[s]);
        DIR *dir = opendir(p);
        if (!dir)
            continue;
        struct dirent *e;
        while ((e = readdir(dir))) {
            if (e->d_name[0] == '.')
                continue;
            char rel[256];
            snprintf(rel, sizeof rel, "%s/%.200s", suites[s], e->d_name);
            char mp[2048];
            snprintf(mp, sizeof mp, "%s/%s/model.onnx", o->root, rel);
            if (!matches(o, rel) || !file_exists(mp))
                continue;
            if (n == cap) {
                cap = cap ? cap * 2 : 256;
                ts = realloc(ts, (size_t)cap * sizeof *ts);
                if (!ts) {
                    fprintf(stderr, "out of memory\n");
                    exit(2);
                }
            }
            memset(&ts[n], 0, sizeof ts[n]);
            snprintf(ts[n].rel, sizeof ts[n].rel, "%s", rel);
            n++;
        }
        closedir(dir);
    }
    if (n)
        qsort(ts, (size_t)n, sizeof *ts, cmp_test);
    *count = n;
    return ts;
}

static void child(const Options *o, Test *t, int fd)
{
    char dir[2048], work[2048];
    snprintf(dir, sizeof dir, "%s/%s", o->root, t->rel);
    char flat[256];
    snprintf(flat, sizeof flat, "%s", t->rel);
    for (char *c = flat; *c; c++)
        if (*c == '/')
            *c = '_';
    snprintf(work, sizeof work, "%s/%s", o->work, flat);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", work);
    sh(cmd);
    alarm(o->sanitize ? 900 : 300);
    run_test(o, dir, work, t);
    if (t->status == 'P' && !o->keep)
        sh(cmd);
    char msg[800];
    int n = snprintf(msg, sizeof msg, "%c%s", t->status, t->reason);
    if (write(fd, msg, (size_t)(n < (int)sizeof msg ? n : (int)sizeof msg - 1)) < 0)
        _exit(1);
    _exit(0);
}

static void usage(void)
{
    printf("usage: kdcc-conformance [--root DIR] [--filter SUBSTR]... [-j N] [-v] [--keep]\n"
           "                        [--expect FILE] [--write-passes FILE] [--sanitize] [--sample N] [--no-validate]\n"
           "                        [--cflags FLAGS]   (more flags for $CC on the emitted C and the harness)\n"
           "                        [--rtol X] [--atol X]   (default 1e-3 and 1e-5: |got-want| <= atol + rtol*|want|)\n");
}

int main(int argc, char **argv)
{
    Options o = {.root = KDCC_SHARED_DIR "/onnx-tests", .work = KDCC_WORK_DIR, .jobs = 0, .validate = 1,
                 .rtol = 1e-3, .atol = 1e-5};
    o.cc = getenv("CC") && getenv("CC")[0] ? getenv("CC") : "cc";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--root") && v) o.root = argv[++i];
        else if (!strcmp(a, "--work") && v) o.work = argv[++i];
        else if (!strcmp(a, "--filter") && v && o.nfilters < 32) o.filters[o.nfilters++] = argv[++i];
        else if (!strcmp(a, "--expect") && v) o.expect = argv[++i];
        else if (!strcmp(a, "--write-passes") && v) o.write_passes = argv[++i];
        else if (!strcmp(a, "-j") && v) o.jobs = atoi(argv[++i]);
        else if (!strcmp(a, "--sample") && v) o.sample = atoi(argv[++i]);
        else if (!strcmp(a, "--cflags") && v) o.cflags = argv[++i];
        else if (!strcmp(a, "--rtol") && v) o.rtol = atof(argv[++i]);
        else if (!strcmp(a, "--atol") && v) o.atol = atof(argv[++i]);
        else if (!strcmp(a, "-v")) o.verbose = 1;
        else if (!strcmp(a, "--keep")) o.keep = 1;
        else if (!strcmp(a, "--sanitize")) o.sanitize = 1;
        else if (!strcmp(a, "--no-validate")) o.validate = 0;
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(); return 0; }
        else { usage(); return 2; }
    }
    if (o.jobs <= 0) {
        long nc = sysconf(_SC_NPROCESSORS_ONLN);
        o.jobs = nc > 0 ? (int)nc : 1;
    }
    mkdir(o.work, 0755);
    int n;
    Test *ts = collect(&o, &n);
    if (o.sample > 1) { /* every Nth test of the sorted list */
        int k = 0;
        for (int i = 0; i < n; i += o.sample)
            ts[k++] = ts[i];
        n = k;
    }
    if (!n) {
        fprintf(stderr, "kdcc-conformance: no tests found under %s\n", o.root);
        return 2;
    }
    /* run in child processes, o.jobs at a time: a crash fails one test, not the run */
    pid_t *pids = calloc((size_t)o.jobs, sizeof *pids);
    int *fds = calloc((size_t)o.jobs, sizeof *fds);
    int *slot_test = calloc((size_t)o.jobs, sizeof *slot_test);
    int next = 0, running = 0;
    fflush(stdout);
    while (next < n || running) {
        while (next < n && running < o.jobs) {
            int s = 0;
            while (pids[s])
                s++;
            int pfd[2];
            if (pipe(pfd)) {
                perror("pipe");
                return 2;
            }
            pid_t pid = fork();
            if (pid == 0) {
                close(pfd[0]);
                child(&o, &ts[next], pfd[1]);
            }
            close(pfd[1]);
            pids[s] = pid;
            fds[s] = pfd[0];
            slot_test[s] = next++;
            running++;
        }
        int status;
        pid_t done = wait(&status);
        if (done < 0)
            break;
        for (int s = 0; s < o.jobs; s++) {
            if (pids[s] != done)
                continue;
            Test *t = &ts[slot_test[s]];
            char msg[800];
            ssize_t k = read(fds[s], msg, sizeof msg - 1);
            close(fds[s]);
            pids[s] = 0;
            running--;
            if (k > 0) {
                msg[k] = 0;
                t->status = msg[0];
                snprintf(t->reason, sizeof t->reason, "%s", msg + 1);
            } else {
                t->status = 'F';
                snprintf(t->reason, sizeof t->reason, "kdcc crashed (%s)",
                         WIFSIGNALED(status) ? strsignal(WTERMSIG(status)) : "no result");
            }
            if (t->status != 'P' || o.verbose)
                printf("%s %s%s%s\n",
                       t->status == 'P' ? "PASS" : t->status == 'S' ? "SKIP" : t->status == 'A' ? "SANITIZER" : "FAIL", t->rel,
                       t->reason[0] ? ": " : "", t->reason);
            fflush(stdout);
        }
    }
    free(pids), free(fds), free(slot_test); /* the run is over (LSan in --sanitize runs) */
    int np = 0, nf = 0, nsk = 0, nsan = 0;
    for (int i = 0; i < n; i++) {
        np += ts[i].status == 'P';
        nsan += ts[i].status == 'A';
        nf += ts[i].status == 'F' || ts[i].status == 'A';
        nsk += ts[i].status == 'S';
    }
    /* skip reasons, grouped (the part of the message after the node name) */
    if (nsk) {
        printf("\nskip reasons:\n");
        char (*seen)[160] = calloc((size_t)nsk, sizeof *seen);
        int *cnt = calloc((size_t)nsk, sizeof *cnt);
        int ns = 0;
        for (int i = 0; i < n; i++) {
            if (ts[i].status != 'S')
                continue;
            /* group by what is wrong: drop file and node prefixes, and names in quotes */
            const char *r = strstr(ts[i].reason, ".pb: ");
            r = r ? r + 5 : ts[i].reason;
            const char *q = strstr(r, "): ");
            r = q ? q + 3 : r;
            char key[160];
            size_t k = 0;
            for (int inq = 0, keep = 0; *r && k + 2 < sizeof key; r++) {
                if (*r == '\'' && !inq && !keep && k >= 9 && memcmp(key + k - 9, "operator ", 9) == 0) {
                    key[k++] = *r; /* operator names stay: they say what is missing */
                    keep = 1;
                } else if (*r == '\'' && keep) {
                    key[k++] = *r;
                    keep = 0;
                } else if (*r == '\'') {
                    if (!inq)
                        key[k++] = '*';
                    inq = !inq;
                } else if (!inq)
                    key[k++] = *r;
            }
            key[k] = 0;
            int j = 0;
            while (j < ns && strcmp(seen[j], key))
                j++;
            if (j == ns)
                snprintf(seen[ns++], sizeof seen[0], "%s", key);
            cnt[j]++;
        }
        for (int j = 0; j < ns; j++)
            printf("  %4d  %s\n", cnt[j], seen[j]);
        free(seen);
        free(cnt);
    }
    int regress = 0;
    if (o.expect) {
        FILE *f = fopen(o.expect, "r");
        if (!f) {
            fprintf(stderr, "kdcc-conformance: cannot read %s\n", o.expect);
            return 2;
        }
        char line[512];
        int listed = 0, newpass = 0;
        while (fgets(line, sizeof line, f)) {
            line[strcspn(line, "\r\n")] = 0;
            if (!line[0] || line[0] == '#' || !matches(&o, line))
                continue;
            Test key;
            snprintf(key.rel, sizeof key.rel, "%s", line);
            Test *t = bsearch(&key, ts, (size_t)n, sizeof *ts, cmp_test);
            if (!t && o.sample > 1)
                continue; /* not in the sample */
            listed++;
            if (!t || t->status != 'P') {
                printf("REGRESSION %s: expected to pass\n", line);
                regress++;
            }
        }
        fclose(f);
        newpass = np - (listed - regress);
        printf("\n%d of %d expected passes hold; %d tests pass that the list does not name yet\n", listed - regress, listed,
               newpass > 0 ? newpass : 0);
    }
    if (o.write_passes) {
        FILE *f = fopen(o.write_passes, "w");
        if (f) {
            for (int i = 0; i < n; i++)
                if (ts[i].status == 'P')
                    fprintf(f, "%s\n", ts[i].rel);
            fclose(f);
        }
    }
    printf("\n%d passed, %d failed, %d skipped\n", np, nf, nsk);
    if (nsan)
        printf("%d failed with a sanitizer report (an error whether or not --expect lists them)\n", nsan);
    free(ts);
    return regress || nsan ? 1 : 0;
}

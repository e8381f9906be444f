/* Compile, load and call emitted modules on the host. */
#include "runtime/trainer.h"
#include "compiler/ir/target.h"
#include "compiler/ir/tmpdir.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int write_all(const char *path, const Writer *w)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    int bad = w->len && fwrite(w->buf, 1, w->len, f) != w->len;
    return (fclose(f) != 0 || bad) ? -1 : 0;
}

static int train_threads = 1;

int trainer_set_threads(int n)
{
    if (n > 1 && trainer_openmp()) {
        char v[16];
        snprintf(v, sizeof v, "%d", n);
        /* read by libgomp when the first OpenMP module is loaded (kdcc itself does not link it) */
        setenv("OMP_NUM_THREADS", v, 1);
        train_threads = n;
    } else {
        train_threads = 1;
    }
    return train_threads;
}

int trainer_threads(void) { return train_threads; }

int trainer_openmp(void)
{
    static int known = -1;
    if (known >= 0)
        return known;
    known = 0;
    const char *env = getenv("KDCC_OPENMP");
    if (env && strcmp(env, "0") == 0)
        return known;
    char dir[KD_TMPDIR_MAX];
    Diag quiet;
    diag_init(&quiet, NULL);
    if (tmpdir_make(dir, sizeof dir, "omp", &quiet))
        return known;   /* no folder for the probe: OpenMP taken as absent */
    char src[KD_TMPDIR_MAX + 8], cmd[4 * KD_TMPDIR_MAX];
    snprintf(src, sizeof src, "%s/t.c", dir);
    FILE *f = fopen(src, "w");
    if (f) {
        fputs("#include <omp.h>\nint main(void) { return omp_get_max_threads() > 0 ? 0 : 1; }\n", f);
        if (fclose(f) == 0) {
            const char *cc = getenv("CC") && getenv("CC")[0] ? getenv("CC") : "cc";
            snprintf(cmd, sizeof cmd, "%s -fopenmp -o '%s/t' '%s' > /dev/null 2>&1 && '%s/t'", cc, dir, src, dir);
            known = system(cmd) == 0;
        }
    }
    tmpdir_remove(dir);
    return known;
}

int module_build(const char *dir, const char *name, const Writer *c_text, const Writer *h_text,
                 const char *h_name, Module *m, Diag *d)
{
    memset(m, 0, sizeof *m);
    char cp[4096], hp[4096], so[4096], log[4096], cmd[16384];
    snprintf(cp, sizeof cp, "%s/%s.c", dir, name);
    snprintf(hp, sizeof hp, "%s/%s", dir, h_name);
    snprintf(so, sizeof so, "%s/%s.so", dir, name);
    snprintf(log, sizeof log, "%s/%s.log", dir, name);
    if (write_all(cp, c_text) || write_all(hp, h_text))
        return diag_error(d, NULL, "cannot write '%s'", cp);
    const char *cc = getenv("CC") && getenv("CC")[0] ? getenv("CC") : "cc";
    /* the host's build of the step, which is tiled for target_host() */
    char native[256];
    snprintf(native, sizeof native, "-O3 %s -ffp-contract=fast -fno-math-errno", target_native_flags(target_host()));
    const char *flags = getenv("KDCC_TRAIN_CFLAGS") ? getenv("KDCC_TRAIN_CFLAGS") : native;
    snprintf(cmd, sizeof cmd, "%s -std=c99 %s%s -fPIC -shared -o '%s' '%s' -lm > '%s' 2>&1", cc, flags,
             train_threads > 1 ? " -fopenmp" : "", so, cp, log);
    if (system(cmd) != 0)
        return diag_error(d, NULL, "compiling the generated %s.c with %s failed (see %s)", name, cc, log);
    /* an OpenMP module stays mapped after dlclose: libgomp's idle worker threads would
     * otherwise run code that was unmapped under them */
    m->so = dlopen(so, RTLD_NOW | RTLD_LOCAL | (train_threads > 1 ? RTLD_NODELETE : 0));
    if (!m->so)
        return diag_error(d, NULL, "cannot load %s: %s", so, dlerror());
    char sym[256];
    snprintf(sym, sizeof sym, "%s_kd_call", name);
    *(void **)&m->call = dlsym(m->so, sym);
    snprintf(sym, sizeof sym, "%s_kd_sizes", name);
    void (*sizes)(size_t *, size_t *, int *) = NULL;
    *(void **)&sizes = dlsym(m->so, sym);
    if (!m->call || !sizes)
        return diag_error(d, NULL, "internal error: %s lacks its entry points", so);
    int ns = 0;
    sizes(&m->ws_bytes, &m->state_bytes, &ns);
    m->nstate = ns;
    if (ns) {
        snprintf(sym, sizeof sym, "%s_state_table", name);
        m->table = dlsym(m->so, sym);
        snprintf(sym, sizeof sym, "%s_state_init", name);
        void (*init)(void *) = NULL;
        *(void **)&init = dlsym(m->so, sym);
        if (!m->table || !init)
            return diag_error(d, NULL, "internal error: %s lacks its state table", so);
        m->state = aligned_alloc(64, (m->state_bytes + 63) / 64 * 64 + 64);
        if (!m->state)
            return diag_error(d, NULL, "out of memory for the training state (%zu bytes)", m->state_bytes);
        init(m->state);
    }
    m->ws = aligned_alloc(64, (m->ws_bytes + 63) / 64 * 64 + 64);
    if (!m->ws)
        return diag_error(d, NULL, "out of memory for the workspace (%zu bytes)", m->ws_bytes);
    return 0;
}

void module_free(Module *m)
{
    free(m->ws);
    free(m->state);
    if (m->so)
        dlclose(m->so);
    memset(m, 0, sizeof *m);
}

const StateEntry *module_state(const Module *m, const char *name)
{
    for (int i = 0; i < m->nstate; i++)
        if (strcmp(m->table[i].name, name) == 0)
            return &m->table[i];
    return NULL;
}

int module_copy_state(const Module *src, Module *dst)
{
    int n = 0;
    for (int i = 0; i < dst->nstate; i++) {
        const StateEntry *e = &dst->table[i];
        const StateEntry *s = module_state(src, e->name);
        if (!s || s->count != e->count || s->dtype != e->dtype)
            continue;
        memcpy((char *)dst->state + e->offset, (const char *)src->state + s->offset,
               (size_t)e->count * dtype_size((DType)e->dtype));
        n++;
    }
    return n;
}

/* ---------------------------------------------------------------- driving the step */

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

uint64_t trainer_rng(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int trainer_run_over(Module *m, const float *x, int64_t n, int64_t row, int64_t B, float *out, int64_t cols,
                     float *xb, float *yb)
{
    for (int64_t s = 0; s < n; s += B) {
        int64_t k = n - s < B ? n - s : B;
        memcpy(xb, x + s * row, (size_t)(k * row) * sizeof(float));
        if (k < B)
            memset(xb + k * row, 0, (size_t)((B - k) * row) * sizeof(float));
        const void *in[1] = {xb};
        void *outp[1] = {yb};
        if (m->call(m->ws, m->state, in, outp))
            return -1;
        memcpy(out + s * cols, yb, (size_t)(k * cols) * sizeof(float));
    }
    return 0;
}

double trainer_accuracy(const float *logits, const int64_t *labels, int64_t n, int64_t C, int64_t *counted)
{
    int64_t ok = 0, cnt = 0;
    for (int64_t i = 0; i < n; i++) {
        if (labels[i] < 0)
            continue;
        int64_t best = 0;
        for (int64_t c = 1; c < C; c++)
            if (logits[i * C + c] > logits[i * C + best])
                best = c;
        ok += best == labels[i];
        cnt++;
    }
    if (counted)
        *counted = cnt;
    return cnt ? (double)ok / (double)cnt : 0.0;
}

static double lr_at(const TrainConfig *o, int64_t step, int64_t spe, int64_t total)
{
    int64_t w = (int64_t)o->warmup * spe;
    if (w > 0 && step < w)
        return o->lr * (double)(step + 1) / (double)w;
    if (o->schedule == LR_COSINE) {
        double t = total > w ? (double)(step - w) / (double)(total - w) : 1.0;
        return o->lr * 0.5 * (1 + cos(3.14159265358979323846 * t));
    }
    if (o->schedule == LR_STEP)
        return o->lr * pow(o->gamma, (double)((step / (spe ? spe : 1)) / (o->step_size > 0 ? o->step_size : 1)));
    return o->lr;
}

/* ---- checkpoints: the whole state buffer, the step, where in which epoch, the shuffle state */

#define CKPT_MAGIC "KDCCCKPT"

typedef struct CkptHeader {
    char magic[8];
    uint32_t version;
    uint32_t epoch;        /* the epoch in progress (0-based; = epochs done when batch is 0) */
    uint32_t batch;        /* batches of that epoch done */
    uint32_t reserved;
    uint64_t step;         /* optimizer steps taken */
    uint64_t rng;          /* shuffling state at the start of that epoch */
    uint64_t state_bytes;  /* bytes of the training state that follow */
    uint64_t check;        /* FNV-1a of the state bytes */
} CkptHeader;

static uint64_t fnv1a(const void *p, size_t n)
{
    const unsigned char *b = p;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

static int ckpt_save(const char *path, const Module *m, int epoch, int64_t batch, uint64_t step, uint64_t rng, Diag *d)
{
    CkptHeader h = {.version = 2, .epoch = (uint32_t)epoch, .batch = (uint32_t)batch, .step = step, .rng = rng,
                    .state_bytes = m->state_bytes};
    memcpy(h.magic, CKPT_MAGIC, 8);
    h.check = fnv1a(m->state, m->state_bytes);
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f)
        return diag_error(d, NULL, "cannot write checkpoint '%s': %s", path, strerror(errno));
    int bad = fwrite(&h, sizeof h, 1, f) != 1 || fwrite(m->state, 1, m->state_bytes, f) != m->state_bytes;
    bad |= fflush(f) != 0 || fsync(fileno(f)) != 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path) != 0) {
        int e = errno;
        remove(tmp);
        return diag_error(d, NULL, "cannot write checkpoint '%s': %s", path, strerror(e));
    }
    return 0;
}

static int ckpt_load(const char *path, Module *m, int *epoch, int64_t *batch, uint64_t *step, uint64_t *rng, Diag *d)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return diag_error(d, NULL, "cannot read checkpoint '%s': %s", path, strerror(errno));
    CkptHeader h;
    int bad = fread(&h, sizeof h, 1, f) != 1 || memcmp(h.magic, CKPT_MAGIC, 8) || h.version != 2;
    if (!bad && h.state_bytes != m->state_bytes) {
        fclose(f);
        return diag_error(d, NULL, "checkpoint '%s' holds %llu bytes of state; this student and optimizer need %zu "
                                   "(another model or options?)", path, (unsigned long long)h.state_bytes, m->state_bytes);
    }
    bad = bad || fread(m->state, 1, m->state_bytes, f) != m->state_bytes || fnv1a(m->state, m->state_bytes) != h.check;
    fclose(f);
    if (bad)
        return diag_error(d, NULL, "'%s' is not a valid kdcc checkpoint (truncated or corrupt)", path);
    *epoch = (int)h.epoch;
    *batch = h.batch;
    *step = h.step;
    *rng = h.rng;
    return 0;
}

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

/* The first state tensor holding a NaN or an infinity, for the divergence message. */
static const char *first_bad_tensor(const Module *m)
{
    for (int k = 0; k < m->nstate; k++) {
        const StateEntry *e = &m->table[k];
        if (e->dtype != DT_FLOAT)
            continue;
        const float *p = (const float *)((const char *)m->state + e->offset);
        for (int64_t q = 0; q < e->count; q++)
            if (!isfinite(p[q]))
                return e->name;
    }
    return "the loss";
}

int trainer_run(Module *train, Module *eval, const TrainData *dt, const TrainConfig *o, TrainResult *res, Diag *d)
{
    const int64_t B = o->batch, N = dt->n, row = dt->row, C = dt->classes, NV = dt->nv;
    int rc = -1;
    float *xb = malloc((size_t)(B * row) * sizeof(float));
    float *zb = malloc((size_t)(B * C) * sizeof(float));
    float *sb = malloc((size_t)(B * C) * sizeof(float));
    int64_t *yb = malloc((size_t)B * sizeof(int64_t));
    int64_t *perm = malloc((size_t)(N ? N : 1) * sizeof(int64_t));
    float *logits = malloc((size_t)((NV ? NV : 1) * C) * sizeof(float));
    FILE *logf = NULL;
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    stop_requested = 0;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    if (!xb || !zb || !sb || !yb || !perm || !logits) {
        diag_error(d, NULL, "out of memory");
        goto out;
    }
    float lr_v = 0, step_v = 0, loss_v = 0;
    const void *ins[8];
    for (int i = 0; i < o->ninputs; i++)
        ins[i] = o->inputs[i] == TI_LABELS ? (const void *)yb : o->inputs[i] == TI_SOFT ? (const void *)sb
               : o->inputs[i] == TI_LR     ? (const void *)&lr_v : o->inputs[i] == TI_STEP ? (const void *)&step_v
                                           : (const void *)xb;
    void *outs[2] = {&loss_v, zb};
    if (o->log) {
        logf = fopen(o->log, "w");
        if (!logf) {
            diag_error(d, NULL, "cannot write '%s': %s", o->log, strerror(errno));
            goto out;
        }
        fprintf(logf, "epoch,loss,train_accuracy,val_accuracy,samples_per_s,seconds\n");
    }
    uint64_t rs = o->seed * 0x9E3779B97F4A7C15ull + 1;
    int64_t spe = N / B, total = spe * o->epochs, step = 0, first_batch = 0;
    int first_epoch = 0;
    if (o->resume && o->checkpoint && access(o->checkpoint, F_OK) == 0) {
        uint64_t st64 = 0;
        if (ckpt_load(o->checkpoint, train, &first_epoch, &first_batch, &st64, &rs, d))
            goto out;
        step = (int64_t)st64;
        if (!o->quiet)
            printf("resuming from %s at epoch %d, batch %" PRId64 "\n", o->checkpoint, first_epoch + 1, first_batch);
    }
    int tty = !o->quiet && isatty(STDOUT_FILENO);
    double t_start = now_s();
    for (int ep = first_epoch; ep < o->epochs; ep++) {
        double t0 = now_s(), lsum = 0;
        int64_t ok = 0, seen = 0;
        uint64_t rs_epoch = rs; /* what a checkpoint inside this epoch records */
        for (int64_t i = 0; i < N; i++) /* each epoch's order depends on the RNG state alone */
            perm[i] = i;
        for (int64_t i = N - 1; i > 0; i--) {
            int64_t j = (int64_t)(trainer_rng(&rs) % (uint64_t)(i + 1)), t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
        int64_t b0 = ep == first_epoch ? first_batch : 0;
        for (int64_t bi = b0; bi < spe; bi++, step++) {
            if (stop_requested) {
                if (tty)
                    printf("\n");
                if (o->checkpoint && ckpt_save(o->checkpoint, train, ep, bi, (uint64_t)step, rs_epoch, d))
                    goto out;
                diag_error(d, NULL, "interrupted at epoch %d, batch %" PRId64 "%s%s", ep + 1, bi,
                           o->checkpoint ? "; the checkpoint is saved: continue with --resume --checkpoint " : "",
                           o->checkpoint ? o->checkpoint : " (no --checkpoint: nothing saved)");
                goto out;
            }
            if (tty && (bi % 16 == 0 || bi == spe - 1)) {
                double el = now_s() - t0, rate = el > 0 ? (double)((bi - b0) * B) / el : 0;
                double left = rate > 0 ? (double)((spe - bi) * B + (int64_t)(o->epochs - ep - 1) * spe * B) / rate : 0;
                printf("\repoch %d/%d  batch %" PRId64 "/%" PRId64 "  loss %.4f  %.0f samples/s  %.0fs left   ", ep + 1,
                       o->epochs, bi, spe, bi > b0 ? lsum / (double)(bi - b0) : 0.0, rate, left);
                fflush(stdout);
            }
            for (int64_t k = 0; k < B; k++) {
                int64_t s = perm[bi * B + k];
                memcpy(xb + k * row, dt->x + s * row, (size_t)row * sizeof(float));
                yb[k] = dt->labels ? dt->labels[s] : -1;
                if (dt->soft)
                    memcpy(sb + k * C, dt->soft + s * C, (size_t)C * sizeof(float));
            }
            lr_v = (float)lr_at(o, step, spe, total);
            step_v = (float)(step + 1);
            if (train->call(train->ws, train->state, ins, outs)) {
                diag_error(d, NULL, "internal error: the training step failed");
                goto out;
            }
            if (!isfinite(loss_v)) {
                diag_error(d, NULL, "training diverged: the loss is %g at epoch %d, step %" PRId64
                                    " (first non-finite tensor: %s); try a smaller --lr or --clip-norm",
                           (double)loss_v, ep + 1, bi + 1, first_bad_tensor(train));
                goto out;
            }
            lsum += loss_v;
            int64_t c2;
            double acc = trainer_accuracy(zb, yb, B, C, &c2);
            ok += (int64_t)(acc * (double)c2 + 0.5);
            seen += c2;
        }
        double dtm = now_s() - t0, vacc = -1;
        if (NV && eval) {
            module_copy_state(train, eval);
            if (trainer_run_over(eval, dt->vx, NV, row, B, logits, C, xb, zb)) {
                diag_error(d, NULL, "internal error: validation failed");
                goto out;
            }
            vacc = trainer_accuracy(logits, dt->vy, NV, C, NULL);
        }
        double sps = (double)((spe - b0) * B) / (dtm > 0 ? dtm : 1e-9);
        double mloss = lsum / (double)(spe - b0 > 0 ? spe - b0 : 1);
        if (!o->quiet) {
            printf("%sepoch %d/%d  loss %.4f", tty ? "\r" : "", ep + 1, o->epochs, mloss);
            if (seen)
                printf("  train acc %.2f%%", 100.0 * (double)ok / (double)seen);
            if (vacc >= 0)
                printf("  val acc %.2f%%", 100 * vacc);
            printf("  %.0f samples/s  %.1fs\n", sps, dtm);
            fflush(stdout);
        }
        /* the checkpoint first: a logged epoch is always a saved one */
        if (o->checkpoint && ckpt_save(o->checkpoint, train, ep + 1, 0, (uint64_t)step, rs, d))
            goto out;
        if (logf) {
            fprintf(logf, "%d,%.6f,%.6f,%.6f,%.1f,%.3f\n", ep + 1, mloss, seen ? (double)ok / (double)seen : -1.0, vacc,
                    sps, dtm);
            fflush(logf); /* readable while training runs */
        }
    }
    res->seconds = now_s() - t_start;
    res->steps = step;
    rc = 0;
out:
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (logf && fclose(logf) != 0 && rc == 0)
        rc = diag_error(d, NULL, "cannot write '%s'", o->log);
    free(xb);
    free(zb);
    free(sb);
    free(yb);
    free(perm);
    free(logits);
    return rc;
}

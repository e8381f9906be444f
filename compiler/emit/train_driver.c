/* The on-device training driver (kdcc distill --emit-train).
 *
 * Appended to the emitted training step, it runs epochs of mini-batches over data
 * the caller owns: xorshift64 shuffling with Fisher-Yates in the order of
 * runtime/trainer.c (trainer_rng and the epoch loop), the same learning-rate
 * schedule as its lr_at (constant, step, cosine; linear warm-up), batches copied into
 * static buffers, the step run with the step's own static workspace and state (or
 * caller buffers), and the mean loss per epoch. Nothing is allocated; the code is
 * C99 with only the headers the step already includes. Every expression that feeds
 * the weights is written as the host trainer computes it, so with the same data,
 * recipe and compiler flags a device run gives the host's weights bit for bit
 * (tests/e2e/emit_train.sh). */
#include "compiler/emit/train_driver.h"

#include <inttypes.h>
#include <stdarg.h>
#include <string.h>

/* printf into a buffer, then write it with "@p@" replaced by the prefix and "@P@" by
 * its upper-case form. */
static void put(Writer *w, const char *p, const char *P, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void put(Writer *w, const char *p, const char *P, const char *fmt, ...)
{
    char buf[8192];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof buf) {
        w->oom = 1; /* a template longer than the buffer: reported as a failure */
        return;
    }
    for (const char *s = buf; *s;) {
        if (s[0] == '@' && (s[1] == 'p' || s[1] == 'P') && s[2] == '@') {
            w_puts(w, s[1] == 'p' ? p : P);
            s += 3;
            continue;
        }
        const char *e = strchr(s + 1, '@');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        char chunk[8192];
        memcpy(chunk, s, len);
        chunk[len] = 0;
        w_puts(w, chunk);
        s += len;
    }
}

/* A C double literal that reads back as exactly v. */
static const char *dlit(char *buf, size_t n, double v)
{
    snprintf(buf, n, "%.17g", v);
    if (!strpbrk(buf, ".eEn"))
        strncat(buf, ".0", n - strlen(buf) - 1);
    return buf;
}

/* The string as a C literal's contents, escaped as the step's state table writes it. */
static void put_cstring(Writer *w, const char *s)
{
    for (const char *p = s; *p; p++)
        w_printf(w, (*p == '"' || *p == '\\') ? "\\%c" : (*p < 32 || *p > 126) ? "?" : "%c", *p);
}

enum { IN_X, IN_LABELS, IN_SOFT, IN_LR, IN_STEP };

int emit_train_driver(const Graph *g, const TrainDriverOptions *o, Writer *c, Writer *h, Diag *d)
{
    const char *p = o->name;
    char P[96];
    snprintf(P, sizeof P, "%s", p);
    for (char *q = P; *q; q++)
        if (*q >= 'a' && *q <= 'z')
            *q = (char)(*q - 'a' + 'A');
    const int64_t B = o->batch;
    int kind[64], nin = 0, has[5] = {0};
    int64_t row = 0, C = 0;
    for (int i = 0; i < g->ninputs; i++) {
        const Value *v = &g->values[g->inputs[i]];
        if (v->role != VR_INPUT)
            continue;
        if (nin == 64)
            return diag_unsupported(d, NULL, "the training step has too many inputs for the driver");
        int k = !strcmp(v->name, "labels") ? IN_LABELS : !strcmp(v->name, "soft_targets") ? IN_SOFT
              : !strcmp(v->name, "lr") ? IN_LR : !strcmp(v->name, "step") ? IN_STEP : IN_X;
        DType want = k == IN_LABELS ? DT_INT64 : DT_FLOAT;
        int scalar = k == IN_LR || k == IN_STEP;
        if (has[k] || v->dtype != want || B <= 0 || (scalar ? value_numel(v) != 1 : value_numel(v) % B != 0))
            return diag_unsupported(d, NULL, "the training step's input '%s' (%s) does not fit the on-device driver",
                                    v->name, dtype_name(v->dtype));
        has[k] = 1;
        kind[nin++] = k;
        if (k == IN_X)
            row = value_numel(v) / B;
        if (k == IN_SOFT)
            C = value_numel(v) / B;
    }
    if (!has[IN_X] || !has[IN_LR] || g->noutputs < 1 ||
        g->values[g->outputs[0]].dtype != DT_FLOAT || value_numel(&g->values[g->outputs[0]]) != 1)
        return diag_unsupported(d, NULL, "the training step lacks the samples or lr input or the loss output "
                                         "the on-device driver needs");
    if (!has[IN_SOFT] && g->noutputs > 1 && g->values[g->outputs[1]].rank == 2)
        C = g->values[g->outputs[1]].dims[1];
    int nweights = 0, stateful = 0;
    int64_t wcount = 0;
    for (int v = 0; v < g->nvalues; v++) {
        const Value *val = &g->values[v];
        stateful |= val->role == VR_STATE;
        if (val->role == VR_STATE && val->is_param && val->dtype == DT_FLOAT) {
            nweights++;
            wcount += value_numel(val);
        }
    }
    if (!stateful || nweights == 0)
        return diag_unsupported(d, NULL, "the training step has no trainable weights for the on-device driver");
    char lr[40], gamma[40], T[40];
    dlit(lr, sizeof lr, o->lr);
    dlit(gamma, sizeof gamma, o->gamma);
    dlit(T, sizeof T, o->temperature);
    const int soft = has[IN_SOFT], labels = has[IN_LABELS];

    /* ---- the header: its own guarded block after the step's */
    put(h, p, P, "\n#ifndef @P@_DRIVER_H_\n#define @P@_DRIVER_H_\n\n");
    put(h, p, P,
        "/* ---- the training driver (kdcc distill --emit-train) ----\n"
        "   Epochs of seeded mini-batches over caller-owned data, without malloc: the shuffling,\n"
        "   batching and learning-rate schedule of kdcc distill, so the same data, recipe and\n"
        "   compiler flags give the same weights. See \"Training on the device\" in kdcc's\n"
        "   docs/DISTILLATION.md. */\n"
        "#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n");
    put(h, p, P, "#define @P@_BATCH %" PRId64 " /* samples per step */\n", B);
    put(h, p, P, "#define @P@_ROW %" PRId64 " /* floats per sample */\n", row);
    put(h, p, P, "#define @P@_CLASSES %" PRId64 " /* floats per soft-target row */\n", C);
    put(h, p, P, "#define @P@_HAS_SOFT_TARGETS %d /* 1: the step reads data.soft */\n", soft);
    put(h, p, P, "#define @P@_HAS_LABELS %d /* 1: the step reads data.labels */\n", labels);
    put(h, p, P, "#define @P@_NUM_WEIGHTS %d\n", nweights);
    put(h, p, P, "#define @P@_WEIGHT_COUNT %" PRId64 " /* floats of all the student's weights */\n", wcount);
    put(h, p, P,
        "/* Samples the static shuffling buffer holds (used when data.perm is NULL); define it\n"
        "   when compiling this file to change it (0: no buffer). */\n"
        "#ifndef @P@_MAX_SAMPLES\n#define @P@_MAX_SAMPLES %" PRId64 "\n#endif\n",
        o->max_samples > 0 ? o->max_samples : 0);
    put(h, p, P, "#define @P@_LR_CONSTANT 0\n#define @P@_LR_STEP 1\n#define @P@_LR_COSINE 2\n\n");
    put(h, p, P,
        "typedef struct @p@_trainer {\n"
        "    /* the recipe: @p@_trainer_init sets the values kdcc distill used */\n"
        "    int epochs;            /* of the whole run (the cosine schedule spans them) */\n"
        "    int schedule;          /* @P@_LR_* */\n"
        "    int warmup, step_size; /* epochs of linear warm-up; decay by gamma every step_size epochs */\n"
        "    double lr, gamma;\n"
        "    /* progress: with the state buffer, everything a checkpoint needs */\n"
        "    uint64_t rng;          /* the shuffling generator at the start of the next epoch */\n"
        "    int64_t step;          /* optimizer steps taken */\n"
        "    int epoch;             /* epochs done */\n"
        "    void *state;           /* @P@_STATE_BYTES: weights and optimizer moments */\n"
        "    void *workspace;       /* @P@_WORKSPACE_BYTES */\n"
        "} @p@_trainer;\n\n");
    put(h, p, P,
        "typedef struct @p@_data {\n"
        "    const float *x;        /* [n][@P@_ROW] samples */\n"
        "    const float *soft;     /* [n][@P@_CLASSES] soft targets (@p@_soft_targets), if the step reads them */\n"
        "    const int64_t *labels; /* [n], -1 = unlabelled; NULL: all unlabelled */\n"
        "    int64_t n;             /* samples, at least @P@_BATCH */\n"
        "    int32_t *perm;         /* n entries of scratch for the shuffled order, or NULL: the static buffer */\n"
        "} @p@_data;\n\n");
    put(h, p, P,
        "/* kdcc's recipe and seed, and the state initialised to the initial weights. state, workspace:\n"
        "   caller buffers of @P@_STATE_BYTES and @P@_WORKSPACE_BYTES bytes aligned to 16, or NULL\n"
        "   for the static ones @p@_run uses (it then runs the trained weights). */\n"
        "void @p@_trainer_init(@p@_trainer *t, void *state, void *workspace);\n"
        "/* Shuffle from another seed (kdcc distill --seed N) from the next epoch on. */\n"
        "void @p@_trainer_seed(@p@_trainer *t, uint64_t seed);\n"
        "/* One epoch: shuffle, then n / @P@_BATCH steps (the last partial batch is left out; the next\n"
        "   shuffle covers it). *mean_loss (if not NULL) gets the mean of the steps' losses. Returns 0;\n"
        "   -1 for bad arguments (n < @P@_BATCH, no big enough perm buffer, no soft targets); -2 if\n"
        "   a loss is not finite (lower the learning rate). */\n"
        "int @p@_epoch(@p@_trainer *t, const @p@_data *data, double *mean_loss);\n"
        "/* The epochs left, t->epoch up to t->epochs; epoch_loss[e] (if not NULL) the mean loss of epoch e. */\n"
        "int @p@_train(@p@_trainer *t, const @p@_data *data, double *epoch_loss);\n"
        "/* The learning rate of optimizer step `step` (from 0) with steps_per_epoch steps per epoch. */\n"
        "double @p@_lr_at(const @p@_trainer *t, int64_t step, int64_t steps_per_epoch);\n"
        "/* The student's weights (its float ONNX initializers) in the state: name, offset, count. */\n"
        "extern const @p@_state_entry @p@_weight_table[@P@_NUM_WEIGHTS];\n"
        "/* One weight tensor in t's state (NULL if no weight has that name; *count its floats). */\n"
        "const float *@p@_weight(const @p@_trainer *t, const char *name, int64_t *count);\n"
        "/* All weights, in table order, into out (@P@_WEIGHT_COUNT floats); returns the count. */\n"
        "int64_t @p@_read_weights(const @p@_trainer *t, float *out);\n");
    if (soft)
        put(h, p, P,
            "/* Soft targets from one teacher's logits [n][@P@_CLASSES]: adds weight * %s\n"
            "   to soft [n][@P@_CLASSES], which starts at zero; the weights of several teachers sum to 1. */\n"
            "void @p@_soft_targets(const float *logits, int64_t n, double weight, float *soft);\n",
            o->mse ? "logits (--soft-loss mse)" : "softmax(logits / T) with kdcc's T");
    put(h, p, P, "\n#ifdef __cplusplus\n}\n#endif\n\n#endif\n");

    /* ---- the code */
    put(c, p, P, "\n/* ---- the training driver (kdcc distill --emit-train): see @p@.h ---- */\n\n");
    put(c, p, P, "const @p@_state_entry @p@_weight_table[@P@_NUM_WEIGHTS] = {\n");
    for (int v = 0; v < g->nvalues; v++) {
        const Value *val = &g->values[v];
        if (val->role != VR_STATE || !val->is_param || val->dtype != DT_FLOAT)
            continue;
        w_puts(c, "    {\"");
        put_cstring(c, val->name);
        w_printf(c, "\", %" PRId64 ", %" PRId64 ", %d},\n", val->state_offset, value_numel(val), (int)val->dtype);
    }
    put(c, p, P, "};\n\n");
    /* the step's inputs and outputs for one batch */
    put(c, p, P, "static float @p@_drv_x[@P@_BATCH * @P@_ROW];\n");
    if (labels)
        put(c, p, P, "static int64_t @p@_drv_labels[@P@_BATCH];\n");
    if (soft)
        put(c, p, P, "static float @p@_drv_soft[@P@_BATCH * @P@_CLASSES];\n");
    put(c, p, P, "static float @p@_drv_lr;\n");
    if (has[IN_STEP]) /* Adam's step count; SGD has none */
        put(c, p, P, "static float @p@_drv_step;\n");
    for (int i = 0; i < g->noutputs; i++) {
        const Value *v = &g->values[g->outputs[i]];
        int64_t n = value_numel(v);
        put(c, p, P, "static %s @p@_drv_out%d[%" PRId64 "];\n", dtype_ctype(v->dtype), i, n > 0 ? n : 1);
    }
    put(c, p, P, "static int32_t @p@_drv_perm[@P@_MAX_SAMPLES > 0 ? @P@_MAX_SAMPLES : 1];\n\n");
    put(c, p, P,
        "/* xorshift64, kdcc's generator for every seeded choice */\n"
        "static uint64_t @p@_drv_rng(uint64_t *s)\n{\n"
        "    uint64_t x = *s;\n    x ^= x << 13;\n    x ^= x >> 7;\n    x ^= x << 17;\n    return *s = x;\n}\n\n");
    put(c, p, P,
        "void @p@_trainer_seed(@p@_trainer *t, uint64_t seed)\n{\n"
        "    t->rng = seed * UINT64_C(0x9E3779B97F4A7C15) + 1;\n}\n\n");
    put(c, p, P,
        "void @p@_trainer_init(@p@_trainer *t, void *state, void *workspace)\n{\n"
        "    t->epochs = %d;\n    t->schedule = %d;\n    t->warmup = %d;\n    t->step_size = %d;\n"
        "    t->lr = %s;\n    t->gamma = %s;\n    t->step = 0;\n    t->epoch = 0;\n"
        "    @p@_trainer_seed(t, UINT64_C(%" PRIu64 "));\n"
        "    t->state = state ? state : (void *)&@p@_state;\n"
        "    t->workspace = workspace ? workspace : (void *)&@p@_workspace;\n"
        "    @p@_state_init(t->state);\n"
        "    if (!state)\n        @p@_state_ready = 1;\n}\n\n",
        o->epochs, o->schedule, o->warmup, o->step_size, lr, gamma, o->seed);
    put(c, p, P,
        "double @p@_lr_at(const @p@_trainer *t, int64_t step, int64_t spe)\n{\n"
        "    int64_t w = (int64_t)t->warmup * spe, total = spe * t->epochs;\n"
        "    if (w > 0 && step < w)\n"
        "        return t->lr * (double)(step + 1) / (double)w;\n"
        "    if (t->schedule == @P@_LR_COSINE) {\n"
        "        double u = total > w ? (double)(step - w) / (double)(total - w) : 1.0;\n"
        "        return t->lr * 0.5 * (1 + cos(3.14159265358979323846 * u));\n"
        "    }\n"
        "    if (t->schedule == @P@_LR_STEP) {\n"
        "        /* decays after every step_size whole epochs: integer division on purpose */\n"
        "        const int64_t epochs_done = step / (spe ? spe : 1);\n"
        "        const int64_t decays = epochs_done / (t->step_size > 0 ? t->step_size : 1);\n"
        "        return t->lr * pow(t->gamma, (double)decays);\n"
        "    }\n"
        "    return t->lr;\n}\n\n");
    put(c, p, P,
        "int @p@_epoch(@p@_trainer *t, const @p@_data *data, double *mean_loss)\n{\n"
        "    int32_t *perm = data->perm ? data->perm : @p@_drv_perm;\n"
        "    const int64_t n = data->n;\n"
        "    int64_t spe, i, bi, k;\n"
        "    double lsum = 0;\n"
        "    if (!t->state || !t->workspace || !data->x || n < @P@_BATCH || n > INT32_MAX ||\n"
        "        (!data->perm && n > @P@_MAX_SAMPLES)%s)\n"
        "        return -1;\n"
        "    spe = n / @P@_BATCH;\n"
        "    /* each epoch's order depends on the generator's state alone */\n"
        "    for (i = 0; i < n; i++)\n        perm[i] = (int32_t)i;\n"
        "    for (i = n - 1; i > 0; i--) {\n"
        "        int64_t j = (int64_t)(@p@_drv_rng(&t->rng) %% (uint64_t)(i + 1));\n"
        "        int32_t s = perm[i];\n        perm[i] = perm[j];\n        perm[j] = s;\n    }\n"
        "    for (bi = 0; bi < spe; bi++) {\n"
        "        for (k = 0; k < @P@_BATCH; k++) {\n"
        "            const int64_t s = perm[bi * @P@_BATCH + k];\n"
        "            memcpy(@p@_drv_x + k * @P@_ROW, data->x + s * @P@_ROW, @P@_ROW * sizeof(float));\n",
        soft ? " || !data->soft" : "");
    if (labels)
        put(c, p, P, "            @p@_drv_labels[k] = data->labels ? data->labels[s] : -1;\n");
    if (soft)
        put(c, p, P, "            memcpy(@p@_drv_soft + k * @P@_CLASSES, data->soft + s * @P@_CLASSES, "
                     "@P@_CLASSES * sizeof(float));\n");
    put(c, p, P,
        "        }\n"
        "        @p@_drv_lr = (float)@p@_lr_at(t, t->step, spe);\n");
    if (has[IN_STEP])
        put(c, p, P, "        @p@_drv_step = (float)(t->step + 1);\n");
    put(c, p, P, "        if (@p@_run_ws(t->workspace, t->state");
    static const char *const in_name[] = {"x", "labels", "soft", "lr", "step"};
    for (int i = 0; i < nin; i++)
        put(c, p, P, ", %s@p@_drv_%s", kind[i] == IN_LR || kind[i] == IN_STEP ? "&" : "", in_name[kind[i]]);
    for (int i = 0; i < g->noutputs; i++)
        put(c, p, P, ", @p@_drv_out%d", i);
    put(c, p, P, ") != 0)\n            return -1;\n");
    put(c, p, P,
        "        t->step++;\n"
        "        if (!isfinite(@p@_drv_out0[0]))\n            return -2;\n"
        "        lsum += @p@_drv_out0[0];\n"
        "    }\n"
        "    t->epoch++;\n"
        "    if (mean_loss)\n        *mean_loss = lsum / (double)spe;\n"
        "    return 0;\n}\n\n");
    put(c, p, P,
        "int @p@_train(@p@_trainer *t, const @p@_data *data, double *epoch_loss)\n{\n"
        "    while (t->epoch < t->epochs) {\n"
        "        double m = 0;\n"
        "        const int e = t->epoch;\n"
        "        const int rc = @p@_epoch(t, data, &m);\n"
        "        if (rc != 0)\n            return rc;\n"
        "        if (epoch_loss)\n            epoch_loss[e] = m;\n"
        "    }\n    return 0;\n}\n\n");
    put(c, p, P,
        "const float *@p@_weight(const @p@_trainer *t, const char *name, int64_t *count)\n{\n"
        "    int i;\n"
        "    for (i = 0; i < @P@_NUM_WEIGHTS; i++) {\n"
        "        const char *a = @p@_weight_table[i].name, *b = name;\n"
        "        while (*a && *a == *b) {\n            a++;\n            b++;\n        }\n"
        "        if (*a == *b) {\n"
        "            if (count)\n                *count = @p@_weight_table[i].count;\n"
        "            return (const float *)(const void *)((const unsigned char *)t->state + @p@_weight_table[i].offset);\n"
        "        }\n    }\n    return NULL;\n}\n\n");
    put(c, p, P,
        "int64_t @p@_read_weights(const @p@_trainer *t, float *out)\n{\n"
        "    int64_t n = 0;\n    int i;\n"
        "    for (i = 0; i < @P@_NUM_WEIGHTS; i++) {\n"
        "        memcpy(out + n, (const unsigned char *)t->state + @p@_weight_table[i].offset,\n"
        "               (size_t)@p@_weight_table[i].count * sizeof(float));\n"
        "        n += @p@_weight_table[i].count;\n    }\n    return n;\n}\n");
    if (soft && o->mse)
        put(c, p, P,
            "\nvoid @p@_soft_targets(const float *logits, int64_t n, double weight, float *soft)\n{\n"
            "    int64_t i;\n"
            "    for (i = 0; i < n * @P@_CLASSES; i++)\n"
            "        soft[i] += (float)(weight * logits[i]);\n}\n");
    else if (soft)
        put(c, p, P,
            "\nvoid @p@_soft_targets(const float *logits, int64_t n, double weight, float *soft)\n{\n"
            "    int64_t i, k;\n"
            "    for (i = 0; i < n; i++) {\n"
            "        const float *zr = logits + i * @P@_CLASSES;\n"
            "        float *pr = soft + i * @P@_CLASSES;\n"
            "        double m = zr[0], s = 0;\n"
            "        for (k = 1; k < @P@_CLASSES; k++)\n            m = zr[k] > m ? zr[k] : m;\n"
            "        for (k = 0; k < @P@_CLASSES; k++)\n            s += exp((zr[k] - m) / %s);\n"
            "        for (k = 0; k < @P@_CLASSES; k++)\n            pr[k] += (float)(weight * exp((zr[k] - m) / %s) / s);\n"
            "    }\n}\n",
            T, T);
    return c->oom || h->oom ? diag_error(d, NULL, "out of memory while emitting the training driver") : 0;
}

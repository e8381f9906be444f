/* The host side of training: compile emitted C into a shared object, load it, and
 * call it. It knows nothing of graphs: a module is an emitted model plus a generic
 * entry `kd_call(workspace, state, inputs[], outputs[])` the CLI appends. */
#ifndef KDCC_TRAINER_H
#define KDCC_TRAINER_H

#include "compiler/ir/ir.h"

typedef struct StateEntry {
    const char *name;
    int64_t offset;
    int64_t count;
    int dtype;
} StateEntry;

typedef struct Module {
    void *so;
    int (*call)(void *ws, void *state, const void *const *in, void *const *out);
    void *ws;              /* workspace (malloc'd) */
    void *state;           /* state buffer (malloc'd, initialised), NULL if stateless */
    size_t ws_bytes, state_bytes;
    const StateEntry *table;
    int nstate;
} Module;

/* Compile c_text (with header h_text named h_name) in dir with $CC (default cc)
 * -O3 -march=native -ffp-contract=fast -fno-math-errno (FMA: -std=c99 alone turns it off in gcc; no errno: sqrtf vectorises) -shared -fPIC, load it, allocate its workspace and state. The
 * module's C prefix is `name`. 0 ok. */
/* 1 if $CC builds and runs an OpenMP program here (probed once; KDCC_OPENMP=0 turns
 * it off). */
int trainer_openmp(void);
/* --threads N: with N > 1 and OpenMP available, modules built afterwards get OpenMP
 * pragmas and -fopenmp and run on N threads; otherwise everything stays on one thread
 * (no OpenMP at all: an oversubscribed machine cannot make a spinning thread team
 * slow). Returns the thread count in force. The results do not depend on it. */
int trainer_set_threads(int n);
int trainer_threads(void);
int module_build(const char *dir, const char *name, const Writer *c_text, const Writer *h_text,
                 const char *h_name, Module *m, Diag *d);
void module_free(Module *m);
/* Copy state entries with equal names (and sizes) from src to dst; returns how many. */
int module_copy_state(const Module *src, Module *dst);
/* Find a state entry by name; NULL if none. */
const StateEntry *module_state(const Module *m, const char *name);

/* ---- driving a training step over data ---- */

/* What each input of the training step is, in order. */
enum { TI_X, TI_LABELS, TI_SOFT, TI_LR, TI_STEP };
typedef enum { LR_CONSTANT, LR_STEP, LR_COSINE } LrSchedule;

typedef struct TrainData {
    const float *x;          /* [n, row] samples */
    int64_t n, row, classes;
    const int64_t *labels;   /* [n], -1 = unlabelled; NULL: none */
    const float *soft;       /* [n, classes] cached soft targets, or NULL */
    const float *vx;         /* [nv, row] validation samples, or NULL */
    const int64_t *vy;
    int64_t nv;
} TrainData;

typedef struct TrainConfig {
    int64_t batch;           /* the batch the step was compiled for */
    int epochs;
    uint64_t seed;
    double lr, gamma;
    int warmup, step_size;   /* epochs */
    LrSchedule schedule;
    const char *checkpoint;  /* NULL: none */
    int resume, quiet;
    const char *log;         /* CSV per epoch, or NULL */
    int inputs[8];           /* TI_* of each step input */
    int ninputs;
} TrainConfig;

typedef struct TrainResult {
    double seconds;          /* wall time of the epochs */
    int64_t steps;           /* optimizer steps taken in this run and before a resume */
} TrainResult;

/* The epochs: seeded shuffling, batches (the last partial batch of an epoch is left
 * out), the learning-rate schedule, the step (outputs: loss, logits), a stop naming
 * the first non-finite state tensor, validation through `eval` (state copied by name)
 * after every epoch, progress lines, the CSV log, checkpoints after every epoch and
 * on SIGINT/SIGTERM (inside the epoch), and --resume. 0 ok. */
int trainer_run(Module *train, Module *eval, const TrainData *data, const TrainConfig *cfg, TrainResult *res,
                Diag *d);

/* Run a one-input one-output module over rows [0, n) of x in batches of B (the last
 * one padded with zeros), writing rows of `cols` to out; xb/yb are scratch of one
 * batch. 0 ok. */
int trainer_run_over(Module *m, const float *x, int64_t n, int64_t row, int64_t B, float *out, int64_t cols,
                     float *xb, float *yb);
/* Share of the labelled rows whose arg-max is the label; *counted gets their number. */
double trainer_accuracy(const float *logits, const int64_t *labels, int64_t n, int64_t C, int64_t *counted);
/* The xorshift generator used for every seeded choice. */
uint64_t trainer_rng(uint64_t *state);

#endif

/* The on-device training driver written next to an emitted training step
 * (kdcc distill --emit-train): epochs of seeded mini-batches over caller-owned data,
 * with the host trainer's shuffling and learning-rate schedule (runtime/trainer.c),
 * in C99 without malloc. */
#ifndef KDCC_TRAIN_DRIVER_H
#define KDCC_TRAIN_DRIVER_H

#include "compiler/emit/emit.h"

enum { TD_LR_CONSTANT, TD_LR_STEP, TD_LR_COSINE };

typedef struct TrainDriverOptions {
    const char *name;        /* the step's C prefix, as given to emit_c */
    int64_t batch;           /* the batch the step was compiled for */
    /* the recipe the driver starts with (the host's values, so a device run repeats it) */
    int epochs;
    uint64_t seed;
    double lr, gamma;
    int warmup, step_size;   /* epochs */
    int schedule;            /* TD_LR_* */
    /* how teacher logits become the step's soft targets */
    double temperature;
    int mse;                 /* 1: the soft targets are the logits themselves */
    int64_t max_samples;     /* default size of the static shuffling buffer */
} TrainDriverOptions;

/* Append the driver to the step's C text (c, after emit_c wrote it: the driver uses
 * the step's static workspace and state) and its API to the step's header (h).
 * The step's graph (planned, as emitted) tells the inputs: the one whose name is none
 * of labels, soft_targets, lr, step is the samples. 0, or -1 with a diagnostic. */
int emit_train_driver(const Graph *g, const TrainDriverOptions *o, Writer *c, Writer *h, Diag *d);

#endif

/* The commands: the only code that knows the whole pipeline. */
#ifndef KDCC_CLI_H
#define KDCC_CLI_H

#include "compiler/emit/emit.h"
#include "frontends/onnx.h"
#include "passes/passes.h"

typedef struct ConstBinding {
    const char *name;   /* graph input */
    Tensor t;           /* its value */
} ConstBinding;

typedef struct CompileOptions {
    ImportOptions imp;
    PassOptions pass;
    EmitOptions emit;
    int validate;           /* parse the output with libclang first (default 1) */
    const ConstBinding *consts;
    int nconsts;
} CompileOptions;

/* Turn graph input `name` into a constant with t's data (dtype and shape must fit). */
int bind_const(Graph *g, const char *name, const Tensor *t, Diag *d);
/* Constant bindings, passes, emission and validation, for a loaded graph. */
int compile_graph(Graph *g, const CompileOptions *o, Writer *c, Writer *h, Diag *d);
/* "name=1x3x32x32" */
int parse_shape_binding(Arena *a, const char *spec, ShapeBinding *b, Diag *d);
/* --batch N: a positive number into *batch; error otherwise. */
int parse_batch(const char *s, int64_t *batch, Diag *d);
/* Write two files so that either both appear or neither does. */
int save_pair(const Writer *w1, const char *p1, const Writer *w2, const char *p2, Diag *d);
/* A C identifier made from a file's base name ("models/mnist-8.onnx" -> "mnist_8"). */
void name_from_path(const char *path, char *out, size_t n);

/* --tune / --tune-file (compiler/cli/tune.c): set each tunable node's register block
 * from the tune file, timing the layers it lacks when tune is set (and recording
 * them in the file). Runs after fusion and before scratch memory is sized. */
typedef struct TuneOptions {
    int tune;             /* time candidates for layers the file lacks */
    const char *file;     /* the tune file: read, and rewritten when new layers were timed */
    int verbose;          /* one line per timed layer on stderr */
    int retime;           /* time each recorded choice again and record the new time (choices kept) */
} TuneOptions;
int tune_graph(Graph *g, const TuneOptions *o, Diag *d);

int cmd_compile(int argc, char **argv);
int cmd_print(int argc, char **argv);
int cmd_distill(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_soft_targets(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_dot(int argc, char **argv);
int cmd_ops(int argc, char **argv);

/* ---- costs (compiler/cli/report.c; kdcc info and --report) ---- */
/* Multiply-accumulates of one node from its static shapes (0 for operators that
 * do not multiply-accumulate); op_counts_macs says which operators are counted. */
int64_t node_macs(const Graph *g, const Node *n);
int op_counts_macs(const char *op);
/* Bytes and count of the weight arrays (`static const T name[N] KD_ALIGN`) in emitted C. */
int64_t emitted_weight_bytes(const char *c, int *count);
/* "1234567" -> "1234567 (1.23 M)"; bytes: binary units and " bytes" */
const char *human_count(char *buf, size_t n, int64_t v, int bytes);
/* Machine-code bytes per line of emitted C outside the weight arrays, the --report
 * estimate: gcc -O2 on x86-64 gave 2.8 to 7.2 over seven models (docs/GUIDE.md). */
#define REPORT_CODE_BYTES_PER_LINE 6
/* The --report text of a planned graph and its emitted C (csrc may be NULL). */
int report_write(const Graph *g, const char *csrc, Writer *w);

/* A planned training step's bytes by class. */
typedef struct TrainBytes {
    int64_t weights, gradients, optimizer, other_state, activations, intermediates, frozen;
    int nweights, ngradients, noptimizer, nother_state, nactivations, nintermediates, nfrozen;
    int loss_node;    /* the node that computes the loss (the end of the forward pass), -1 if none */
} TrainBytes;
int training_classes(const Graph *g, TrainBytes *tb);
int report_training_write(const Graph *g, Writer *w);
int report_training_print(const Graph *g, FILE *f); /* kdcc distill/train --report */

/* The external data files a binary .onnx model names (paths as the importer opens
 * them: relative to the model's folder), in first-use order. Returns the count
 * (0 for the textual syntax), -1 with a diagnostic if the model cannot be read. */
int model_external_files(Arena *a, const char *model, const char ***files, Diag *d);

#endif

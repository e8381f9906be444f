/* The C emitter: walks a planned graph and writes NAME.c and NAME.h.
 *
 * Every node becomes one static function
 *     static void nK_Op(const T0 *restrict x0, const T1 *restrict x1, ..., U0 *restrict y0, ...)
 * where xI is the node's input I and yJ its output J, as flat row-major arrays of the
 * values' C element types (dtype_ctype). Omitted optional inputs/outputs have no
 * parameter (the numbering keeps the ONNX positions). The operator's emit function
 * writes only the body, from the static shapes and attributes; run() calls the
 * node functions in order with pointers into the weights, the arena and the
 * caller's buffers.
 */
#ifndef KDCC_EMIT_H
#define KDCC_EMIT_H

#include "compiler/ops/ops.h"

typedef struct EmitOptions {
    const char *name;     /* C prefix; required */
    int openmp;
    const char *header;   /* file name of the header, as the .c includes it ("student.h") */
    const char *source;   /* model file name to mention in the header comment */
    const char *cmdline;  /* options to record in the header comment (deterministic) */
    /* 1: nodes whose functions would be the same text share the first one's (the
     * copies of a frozen teacher that kdcc distill runs on slices of the batch) */
    int share_functions;
} EmitOptions;

/* Write NAME.c and NAME.h text for a planned graph (offsets set by pass_plan). */
int emit_c(const Graph *g, const EmitOptions *opt, Writer *c_out, Writer *h_out, Diag *d);

#endif

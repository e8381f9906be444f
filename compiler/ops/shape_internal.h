/* Private to the shape operator family (compiler/ops/shape*.c).
 *
 * Most data-movement operators (Reshape, Transpose, Slice, Concat, Split, Expand,
 * Tile, Pad, DepthToSpace, ...) are described by a Plan: optional fills of whole
 * outputs with one element, then a list of strided copies from an input to an
 * output. The same Plan is executed on the host to fold constants and turned into
 * C loops with constant bounds for emission, so the two cannot disagree.
 */
#ifndef KDCC_OPS_SHAPE_INTERNAL_H
#define KDCC_OPS_SHAPE_INTERNAL_H

#include "compiler/ops/ops.h"

#define CP_MAX_RANK (2 * KD_MAX_RANK) /* Tile splits every dim in two */

/* dst[doff + sum i_k*ds_k] = src[so + sum i_k*ss_k] for all i < dims (element units). */
typedef struct Copy {
    int src, dst;            /* input index, output index */
    int rank;
    int64_t dims[CP_MAX_RANK];
    int64_t ss[CP_MAX_RANK], ds[CP_MAX_RANK];
    int64_t so, doff;
} Copy;

typedef struct Fill {
    int out;                 /* output index filled entirely */
    int in;                  /* input index whose element 0 is the value, or -1 */
    unsigned char lit[16];   /* the value as one raw element (in < 0) */
} Fill;

typedef struct Plan {
    Arena *arena;
    int ncopies, cap;
    Copy *c;
    int nfills;
    Fill fills[4];
} Plan;

void plan_init(Plan *p, Arena *a);
/* Append a copy; returns it (zeroed, src/dst/rank set) or NULL on OOM. */
Copy *plan_copy(Plan *p, int src, int dst, int rank);
/* Copy of a whole contiguous input into a contiguous output (same numel). */
int plan_copy_all(Plan *p, const Value *x, int src, int dst);
int plan_fill(Plan *p, int out, int in, DType dt, double value);

/* Run a plan on constant inputs: makes the outputs constant. 0 ok, -1 OOM. */
int plan_fold(Graph *g, const Node *n, const Plan *p, Diag *d);
/* Write the node body for a plan. */
int plan_emit(Emitter *e, const Node *n, const Plan *p, Diag *d);

/* Read an integer list given as attribute `attr` when n->opset < since_input, else as
 * constant input `in`. Returns count, -2 when absent, -1 on error (diagnosed). */
int shape_ints(Graph *g, const Node *n, const char *attr, int in, int since_input,
               const char *what, int64_t *out, int max, Diag *d);
/* Write one raw element as a C literal of dtype dt. */
void w_elem(Writer *w, DType dt, const void *p);
/* Emit `static const T k[] = {...}; memcpy(yK, k, sizeof k);` for constant data. */
void emit_const_data(Emitter *e, int out, DType dt, const void *data, int64_t numel);
/* End of an emit function: `(void)xK;` for every non-constant input or output the
 * body does not use (degenerate shapes), so the emitter keeps the parameter and the
 * graph's run function uses it. Returns 0. */
int emit_done(Emitter *e, const Node *n);
/* Check the dtype has a C type that data movement can use. */
int shape_dtype_ok(Diag *d, const Node *n, DType t);

extern const OpDef op_gather, op_gather_elements, op_gather_nd, op_scatter_elements,
    op_scatter, op_scatter_nd;
extern const OpDef op_constant, op_shape, op_size, op_constant_of_shape, op_range;
extern const OpDef op_trilu, op_cumsum, op_onehot, op_topk, op_reverse_sequence,
    op_cumprod, op_compress, op_eye_like;

#endif

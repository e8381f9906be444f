/* The operator table. Each operator is defined in one place, in the file of its
 * family: schema (input/output counts, opset range), shape inference, a constant
 * folding evaluator where folding needs one, its C emission, and (later) its
 * gradient rule.
 */
#ifndef KDCC_OPS_H
#define KDCC_OPS_H

#include "compiler/ir/ir.h"

struct Emitter;
struct GradCtx;

typedef struct OpDef {
    const char *name;      /* "Conv" */
    const char *domain;    /* "" = ai.onnx */
    int since;             /* first opset version handled (usually 1) */
    int min_inputs, max_inputs;   /* max -1: variadic */
    int min_outputs, max_outputs;
    /* Shape inference: set dtype and shape of every present output from the inputs
     * (whose dtypes/shapes are known), attributes and constant inputs.
     * Returns 0, or -1 with a diagnostic (bad attribute, shapes that do not fit,
     * a shape-giving input that is not constant, ...). Required. */
    int (*infer)(Graph *g, Node *n, Diag *d);
    /* Constant folding: compute the outputs' data when possible (usually when all
     * inputs are constant; Shape/Size only need shapes). Returns 1 if folded
     * (outputs made constant with value_make_const), 0 if not foldable now, -1 on error.
     * Optional. */
    int (*fold)(Graph *g, Node *n, Diag *d);
    /* C emission: write the body of the node's function (see emit.h). Required. */
    int (*emit)(struct Emitter *e, const Node *n, Diag *d);
    /* Optional: which dtypes this op accepts for input 0 (NULL-terminated check), NULL = any the
     * infer function accepts. Used by `kdcc info`/docs. */
    const char *summary;   /* one line for the operator table in the docs */
    /* Gradient rule (reverse mode): add nodes to c->g that compute the gradient of
     * each input i with c->need[i] set, from the gradients of the outputs (c->dy[j],
     * -1 where an output has none), and store their value ids in c->dx[i]. NULL: the
     * operator is not differentiable. See passes/autodiff.c. */
    int (*grad)(struct GradCtx *c);
    /* 1: output 0 holds input 0's elements in the same order (Reshape, Flatten,
     * Squeeze, Unsqueeze, Identity, inference Dropout): pass_alias may make it a view
     * that moves no data, and the emitter then writes nothing for the node. */
    int view;
    /* Optional: bytes of scratch memory the emitted function wants for this node
     * (a padded copy, a packed panel), 0 for none. passes/scratch.c gives such a
     * node one more output, a float value of that size live only while the node
     * runs, so the memory planner places it in the arena like any intermediate and
     * the node function receives it as its last y parameter. The emit function must
     * still work without it (when the pass did not run). */
    int64_t (*scratch)(const Graph *g, const Node *n);
    /* Optional, for an operator whose kernels need different amounts of scratch (Conv:
     * padded planes or an im2col panel): the bytes of the preferred kernel whose
     * scratch fits `budget`, 0 for none. passes/scratch.c calls it instead of scratch. */
    int64_t (*scratch_within)(const Graph *g, const Node *n, int64_t budget);
    /* Optional: 1 if the emitted kernel for this node honours Node.block_m/block_n (its
     * register block), so --tune (compiler/cli/tune.c) may time candidates for it. */
    int (*tunable)(const Graph *g, const Node *n);
    /* Optional: where the kernel for this node can take more than one form whose
     * speed depends on the machine (a tunable node), the forms' names, NULL-terminated;
     * --tune then times each block in each form and sets Node.block_form. NULL: one form. */
    const char *const *(*tune_forms)(const Graph *g, const Node *n);
    /* In place: bit k set if output 0 may be written over input k. Set only where the
     * emitted kernel, for every flat index i, reads input k's element i (and no other
     * element of input k after it) before it writes output element i, with no
     * block-scope restrict pointers into both. The memory planner (passes/plan.c)
     * then gives output 0 input k's bytes when input k is an arena intermediate
     * that dies at this node and has output 0's element type and count (so no
     * broadcasting of it), and no other input reads those bytes at other indices.
     * inplace_if, when set, decides per node instead (it may look at attributes and
     * shapes: Softmax along the last axis only). 0/NULL: never in place. */
    unsigned inplace;
    unsigned (*inplace_if)(const Graph *g, const Node *n);
} OpDef;

typedef struct GradCtx {
    Graph *g;
    Node *n;                    /* the forward node */
    const int *dy;              /* per output: gradient value id, or -1 (zero) */
    int *dx;                    /* per input: gradient value id set by the rule, or -1 */
    const unsigned char *need;  /* per input: 1 if its gradient is wanted */
    Diag *d;
} GradCtx;

/* ---- building gradient graphs (compiler/ops/grad_util.c) ----
 * g_new makes a node of operator `op` (domain "" or "kdcc") over value ids ins
 * (-1 = omitted) with nout fresh outputs; add attributes with g_attr_*, then
 * g_done resolves the operator and runs its shape inference, returning the id
 * of output 0 (or -1 after reporting to c->d). Nodes run at opset 18. */
Node *g_new(GradCtx *c, const char *op, const int *ins, int nin, int nout);
void g_attr_i(GradCtx *c, Node *n, const char *name, int64_t v);
void g_attr_f(GradCtx *c, Node *n, const char *name, double v);
void g_attr_s(GradCtx *c, Node *n, const char *name, const char *v);
void g_attr_ints(GradCtx *c, Node *n, const char *name, const int64_t *v, int count);
int g_done(GradCtx *c, Node *n);
/* one-line forms for nodes without attributes */
int g_op1(GradCtx *c, const char *op, int a);
int g_op2(GradCtx *c, const char *op, int a, int b);
/* constants */
int g_const_ints(GradCtx *c, const int64_t *v, int count);
int g_const_scalar(GradCtx *c, DType dt, double v);
/* Sum dy over the axes that broadcasting expanded so it gets target's shape. */
int g_unbroadcast(GradCtx *c, int dy, int target);
/* dy reshaped to target's shape (same element count). */
int g_reshape_like(GradCtx *c, int dy, int target);

/* Look up an operator; NULL if kdcc does not know it. */
const OpDef *op_lookup(const char *domain, const char *name);
/* Iterate over all operators (for docs and `kdcc info`): returns NULL past the end. */
const OpDef *op_at(int i);

/* Resolve every node's OpDef and check input/output counts; error names the node. */
int ops_resolve(Graph *g, Diag *d);

/* Families: each file compiler/ops/<family>.c defines a NULL-terminated table. */
extern const OpDef *const ops_elementwise[];
extern const OpDef *const ops_gemm[];
extern const OpDef *const ops_conv[];
extern const OpDef *const ops_pool[];
extern const OpDef *const ops_norm[];
extern const OpDef *const ops_softmax[];
extern const OpDef *const ops_reduce[];
extern const OpDef *const ops_shape[];
extern const OpDef *const ops_resize[];
extern const OpDef *const ops_train[];
extern const OpDef *const ops_conv_wino[];
extern const OpDef *const ops_quant[];

/* ---- compiler/ops/conv_dw.c, for passes/layout.c ---- */
/* 1 if the pointwise kernel takes Conv/kdcc.FusedConv node n and would read its
 * constant weights input-channel-major ([C][*mp], rows padded with zeros to
 * *mp >= M), which it does when the node has the attribute weight_cm = M. */
int conv_pointwise_cm(const Graph *g, const Node *n, int64_t *mp);
/* 1 if the channel-dot kernel (compiler/ops/conv.c: tiny maps, many input channels, few
 * output channels) takes Conv/kdcc.FusedConv node n with its constant weights stored
 * [M][K0][K1][C] (attribute weight_hwc = 1) with its scratch within `budget` bytes. */
int conv_channel_dots(const Graph *g, const Node *n, int64_t budget);
/* 1 if the channel-vector kernel (compiler/ops/conv.c: small maps, vectors over the
 * output channels) takes Conv/kdcc.FusedConv node n once its constant weights are
 * stored [C][K0][K1][*mp] (attribute weight_kc = M, rows padded with zeros to
 * *mp >= M) with its scratch within `budget` bytes. */
int conv_channel_vectors(const Graph *g, const Node *n, int64_t budget, int64_t *mp);
/* For passes/layout.c: 1 if the channel-vector kernel can take Conv/kdcc.FusedConv
 * node n and store its output channels-last (constant weights, to be stored as for
 * conv_channel_vectors, an epilogue that reads no operand element by element), its
 * scratch within `budget` bytes: which it then does, whatever kernel would take the
 * layer otherwise. */
int conv_channel_vectors_cl(const Graph *g, const Node *n, int64_t budget, int64_t *mp);
/* For passes/layout.c: 1 if the pointwise kernel writes node n's output through its
 * channel-vector form whatever --tune chooses, with no epilogue operands, so it can
 * store the output channels-last (Value.channels_last). */
int conv_pointwise_channels_last(const Graph *g, const Node *n);
/* For passes/layout.c: 1 if the pointwise kernel can take node n in its
 * channel-vector form, which reads and writes activations stored channels-last
 * (weights stored input-channel-major, one group, an epilogue that reads no operand
 * element by element). */
int conv_pointwise_channel_form(const Graph *g, const Node *n);
/* 1 if pointwise node n, its weights stored [C][Mp] (weight_cm) and its input
 * channels-last, would run fewer multiply-adds with the weights stored in pairs of
 * input channels, [C / 2][*mq] (attribute weight_pairs = 1): few output channels,
 * which fill less than half of their last vector (or, with 16-float vectors, fit in
 * one vector: as many multiply-adds, half the broadcasts). */
int conv_pointwise_pairs(const Graph *g, const Node *n, int64_t *mq);
/* For passes/layout.c: 1 if the depthwise kernel for channels-last activations
 * (compiler/ops/conv_dw.c's emit_dwl) takes node n once its constant weights are
 * stored [1][K0][K1][*mp] (attribute weight_kc = C, rows padded with zeros to *mp). */
int conv_depthwise_channels_last(const Graph *g, const Node *n, int64_t *mp);

/* ---- compiler/ops/conv_wino.c, for passes/winograd.c ---- */
/* 1 if Conv/kdcc.FusedConv node n can become kdcc.WinogradConv (3x3 or 5x5, stride 1, no dilation,
 * one group, float, constant weights, >= 8 channels in and out); pads gets top, left, bottom,
 * right, *ksize the kernel side r. */
int wino_eligible(const Graph *g, const Node *n, int64_t pads[4], int64_t *ksize);
/* The output tile side node n of kernel side r takes as a WinogradConv: 2 or 4 for 3x3
 * (F(2x2,3x3) or F(4x4,3x3)), 2 for 5x5 (F(2x2,5x5)). */
int64_t wino_tile(const Graph *g, const Node *n, int64_t r);
/* U[P][M][C] = G g G^T of each r x r kernel of W[M][C][r][r]; P = (tile + r - 1)^2. */
void wino_transform_weights(int64_t tile, int64_t r, const float *w, int64_t M, int64_t C, float *u);
/* The scratch bytes node n would take as a WinogradConv of C -> M channels, r x r kernels and
 * OH x OW outputs in chunks of `rows` rows of tile x tile tiles; wino_default_rows: the rows it
 * takes by default. */
int64_t wino_scratch_bytes(const Graph *g, const Node *n, int64_t tile, int64_t r, int64_t C, int64_t M, int64_t OH,
                           int64_t OW, int64_t rows);
int64_t wino_default_rows(int64_t tile, int64_t r, int64_t C, int64_t M, int64_t OH, int64_t OW);

/* ---- compiler/ops/gemm.c, for passes/layout.c ---- */
/* 1 if a product of one row of A by a K x N float B whose rows are contiguous runs
 * through compiler/ops/gemm.c's register blocks: B fits in the target's L2 (the
 * blocks read it a column panel at a time, rows apart; a larger B streams better
 * row by row). passes/layout.c transposes a transB weight for it on the same
 * condition. */
int gemm_row_blocked(const Graph *g, int64_t K, int64_t N);

/* ---- emission context (the emitter, compiler/emit, drives it) ----
 * Every node becomes one static C function whose parameters are x0, x1, ... (inputs,
 * `const T *restrict`) and y0, y1, ... (outputs, `T *restrict`), flat row-major arrays
 * of the values' C element types (dtype_ctype; bool is C99 bool, float16/bfloat16 are
 * uint16_t bit patterns). An omitted optional input or output has no parameter, but
 * the numbering keeps ONNX positions. An operator's emit function writes only the body.
 */
/* Prelude pieces an operator can ask for; only those asked for are written. */
enum {
    PRE_HALF = 1 << 0,     /* static float kd_h2f(uint16_t), static uint16_t kd_f2h(float) */
    PRE_BF16 = 1 << 1,     /* kd_bf2f, kd_f2bf */
    PRE_ROUND_EVEN = 1 << 2, /* static float kd_rintf(float): round half to even, as ONNX Round */
    PRE_QROUND = 1 << 3,   /* kd_clampf(v, l, h), kd_rint_i32(v): QuantizeLinear's steps, vectorisable */
};

typedef struct Emitter {
    Writer *w;            /* the body of the current node's function goes here */
    const Graph *g;
    const char *name;     /* model prefix, a C identifier */
    unsigned prelude;     /* PRE_* bits requested */
    int tmp_counter;      /* for em_tmp */
    int openmp;           /* emit OpenMP pragmas on large loops */
} Emitter;

/* Before a loop whose iterations are independent (each writes its own outputs, no
 * reduction across them): "#pragma omp parallel for [collapse(k)]", guarded by
 * #ifdef _OPENMP, when the Emitter asks for OpenMP and the loop nest does at least
 * EM_OMP_MIN_WORK multiply-adds (smaller ones lose more to the fork than they gain).
 * Results do not depend on the thread count: each output element is computed by one
 * thread in the same order as without OpenMP. */
#define EM_OMP_MIN_WORK (1 << 18)
void em_omp_for(const Emitter *e, int64_t work, int collapse);
/* The C function that reads an element of dtype t as float ("kd_h2f", "kd_bf2f") and
 * the one that writes a float back ("kd_f2h", "kd_f2bf"), requesting their prelude;
 * "" for other dtypes (plain C conversions). */
const char *em_half_load(Emitter *e, DType t);
const char *em_half_store(Emitter *e, DType t);

/* A fresh identifier for a local ("t3"), unique within the file. */
const char *em_tmp(Emitter *e, char *buf, size_t n);
/* A C literal of dtype dt for value x ("1.5f", "INT64_C(-3)", "true"). */
void em_literal(Writer *w, DType dt, double x);
/* Loop helper: "for (int64_t i = 0; i < N; ++i) {" with indent; close with w_close. */
void em_for(Writer *w, const char *var, int64_t n);
/* A loop over the lanes of a register block's vectors (arrays of one vector each):
 * em_for after KD_LANES, which tells gcc not to unroll it before the vectoriser
 * runs (see the KD_LANES definition in compiler/emit/emit.c). */
void em_for_lanes(Writer *w, const char *var, int64_t n);

/* Open nested loops over all elements of `out`; inside, the C variable `i` is the flat
 * output index and `j0`, `j1`, ... the flat index of each of ins[0..nin-1] under numpy
 * broadcasting (ins[k] may be NULL: no index for it). Collapses contiguous dims and uses a
 * single flat loop when no broadcasting is needed. Returns the number of blocks opened;
 * close them with em_close(w, k). */
int em_broadcast_loops(Writer *w, const Value *out, const Value *const *ins, int nin);
void em_close(Writer *w, int k);

/* ---- helpers shared by operator files (compiler/ops/util.c) ---- */

/* Numpy-style multidirectional broadcast of two shapes. -1 (with diag) if incompatible. */
int broadcast_shapes(int ra, const int64_t *da, int rb, const int64_t *db,
                     int *rout, int64_t *dout);
/* Normalise an axis in [-rank, rank) to [0, rank); -1 with diag if out of range. */
int norm_axis(Diag *d, const Node *n, int64_t axis, int rank);
/* Require input i present with known shape; error otherwise. */
Value *need_input(Graph *g, const Node *n, int i, Diag *d);
/* Require that input i is a constant (for shape-giving inputs); error tells how to bind it. */
Value *need_const_input(Graph *g, const Node *n, int i, const char *what, Diag *d);
/* Error for an unsupported dtype on a node. */
int err_dtype(Diag *d, const Node *n, const char *which, DType t);
/* 1 if all present inputs are constants */
int all_inputs_const(const Graph *g, const Node *n);
/* 1 if n's output may share its input's storage (pass_alias): a view operator
 * (OpDef.view), or a Transpose to [N][H][W][C] of a value stored channels-last */
int node_may_view(const Graph *g, const Node *n);
/* 1 if n is a view whose output shares its input's storage (it emits no code) */
int node_is_view(const Graph *g, const Node *n);
/* Strides (row-major) of a shape into st[rank]; returns numel */
int64_t shape_strides(int rank, const int64_t *dims, int64_t *st);

#endif

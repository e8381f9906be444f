/* Epilogues of fused nodes (passes/fuse.c decides them; the emitters follow).
 *
 * A fused node (kdcc.FusedConv, kdcc.FusedGemm, kdcc.FusedMatMul, kdcc.Fused)
 * carries its epilogue as attributes, so --dump-after shows it and a dumped graph
 * compiles again:
 *   epilogue         strings, one elementwise step per entry, applied in order to
 *                    each output element `a` right where it is stored:
 *                    an ONNX unary operator's name (Relu, LeakyRelu, Sigmoid, Tanh,
 *                    HardSigmoid, HardSwish, Elu, Gelu, ..., "GeluTanh" for Gelu with
 *                    approximate = tanh), "Clip" (both bounds), or a binary step
 *                    "Add", "Sub", "Mul", "Div" (a OP b) or "RSub", "RDiv" (b OP a),
 *                    whose operand b is the node's next operand input, or the
 *                    derivative of an activation f, "<f>Grad" ("ReluGrad",
 *                    "GeluTanhGrad", ... one per operator kdcc.ActivationGrad
 *                    knows): a = a * f'(b), b the activation's input (float only)
 *   epilogue_params  floats, two per step: the operator's $1 $2 (LeakyRelu alpha,
 *                    HardSigmoid alpha and beta, Clip min and max, ...); unused ones 0
 * Operand inputs follow the base operator's own inputs (FusedConv and FusedGemm: from
 * input 3, FusedMatMul: from 3 after A, B and an optional bias, Fused: from 1) in the
 * order of the steps that read them. An operand has the output's shape or at least
 * its element count (read at the element's flat index: the fusion pass looks
 * through views such as a Reshape between a producer and its step) or one element
 * (read at 0).
 * The expression of each step is the one the unfused operator's emitter writes
 * (compiler/ops/elementwise.c), so fusing changes where a value is computed, not
 * how. */
#ifndef KDCC_FUSED_H
#define KDCC_FUSED_H

#include "compiler/ops/ops.h"

#define EPI_MAX_STEPS 8

typedef struct EpiStep {
    const char *op;  /* step name as in the `epilogue` attribute */
    double p1, p2;   /* $1 $2 */
    int operand;     /* binary steps: the node's input index of b; -1 for unary steps */
    int scalar;      /* the operand has one element */
} EpiStep;

typedef struct Epilogue {
    int n;
    EpiStep s[EPI_MAX_STEPS];
} Epilogue;

/* ---- compiler/ops/elementwise.c ---- */
/* Is node n (an ONNX elementwise operator) one epilogue step applied to the value
 * `chain`, one of its inputs? Unary float operators with chain as input 0, Clip with
 * constant bounds, and Add/Sub/Mul/Div whose other operand has chain's shape or one
 * element, with chain's shape for the output (no broadcasting of chain); also a
 * kdcc.ActivationGrad whose dy is chain (act_grad_epilogue_step). Fills st
 * (st->operand = the other operand's value id for binary steps). 1 yes, 0 no. */
int ew_epilogue_step(const Graph *g, const Node *n, int chain, EpiStep *st);
/* 1 if `op` names a step the writer knows (binary: *binary = 1). */
int ew_epilogue_known(const char *op, int *binary);
/* Write the statement "a = <step applied to a>;" for compute type dt (float or
 * double); `b` is the C expression of the operand (binary steps). */
void ew_epilogue_write(Writer *w, const EpiStep *st, DType dt, const char *b);

/* ---- compiler/ops/elementwise_grad.c ---- */
/* 1 if `step` is an activation derivative step ("ReluGrad", ...; binary). */
int act_grad_step_known(const char *step);
/* Is n a kdcc.ActivationGrad(x, dy) with dy = `chain` and x of chain's shape? Fills
 * st (st->operand = x's value id). 1 yes, 0 no. */
int act_grad_epilogue_step(const Graph *g, const Node *n, int chain, EpiStep *st);
/* Write "a = <g * f'(x)>;" for a derivative step, with x and g C expressions
 * (primary or postfix: "x3[i]", "a"): the expression kdcc.ActivationGrad writes. */
void act_grad_write(Writer *w, const EpiStep *st, const char *x, const char *g);

/* ---- compiler/ops/fused.c ---- */
/* Read and check a node's epilogue attributes; operands are numbered from input
 * first_operand. An absent `epilogue` is an empty epilogue. 0, or -1 with a diagnostic. */
int epilogue_read(const Graph *g, const Node *n, int first_operand, Epilogue *ep, Diag *d);
/* Check operand shapes against the output value y (inference). */
int epilogue_check(const Graph *g, const Node *n, const Epilogue *ep, const Value *y, Diag *d);
/* The attribute `name` of n for writing (type t), added when absent. Node attributes
 * may be shared between graphs (passes/distill.c copies teachers' nodes with their
 * attribute arrays), so the node gets its own copy of the array first. NULL on out
 * of memory. */
Attr *node_attr_own(Graph *g, Node *n, const char *name, AttrType t);
/* Write the node's epilogue attributes (replacing earlier ones). 0, -1 on out of memory. */
int epilogue_set_attrs(Graph *g, Node *n, const Epilogue *ep);
/* The ONNX operator a kdcc fused node computes before its epilogue ("Conv" for
 * kdcc.FusedConv, "Gemm", "MatMul"), for reports that count MACs or operators;
 * NULL for any other node. */
const char *fused_base_op(const Node *n);
/* The store of one output element: "dst = val;" without an epilogue, else
 * "{ T a = val; <steps>; dst = a; }" where operand k is read as xK[idx] (or xK[0]).
 * ct is the C type of a (the compute type). */
void epilogue_store(Writer *w, const Epilogue *ep, DType dt, const char *dst, const char *val, const char *idx);

#endif

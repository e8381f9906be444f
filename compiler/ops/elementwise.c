/* Elementwise operators: unary math and activations, broadcasting binary
 * arithmetic, variadic Sum/Mean/Min/Max, comparisons and logic, Clip, Cast,
 * CastLike and Where.
 *
 * Each operator is one row of EW_OPS below: which element types it takes, and
 * a C expression template per kind of element type (float family, signed
 * integers, unsigned integers, bool) over the operands `a`, `b`, `c` (inputs
 * 0, 1, 2 loaded into locals of their compute type). Template placeholders:
 *   $f  math function suffix of the compute type: "f" for float, "" for double
 *   $T  C compute type of input 0 (float for float16/bfloat16)
 *   $U  unsigned type wide enough for wrapping arithmetic (uint32_t/uint64_t)
 *   $1 $2  the values of the row's attributes a1/a2 (or fixed values d1/d2)
 * float16 and bfloat16 are computed in float (kd_h2f/kd_f2h). The constant
 * folder (elementwise_fold below) computes the same functions in double for the
 * float family and in int64 (wrapping, like the emitted C) for integers.
 */
#include "compiler/ops/ops.h"
#include "compiler/ops/fused.h"

#include <math.h>
#include <string.h>

/* ---------------------------------------------------------------- element type sets */

#define TB(t) (1u << (t))
#define T_FLT (TB(DT_FLOAT) | TB(DT_DOUBLE) | TB(DT_FLOAT16) | TB(DT_BFLOAT16))
#define T_SI (TB(DT_INT8) | TB(DT_INT16) | TB(DT_INT32) | TB(DT_INT64))
#define T_UI (TB(DT_UINT8) | TB(DT_UINT16) | TB(DT_UINT32) | TB(DT_UINT64))
#define T_INT (T_SI | T_UI)
#define T_BOOL TB(DT_BOOL)
#define T_NUM (T_FLT | T_INT)
#define T_ALL (T_NUM | T_BOOL)

/* kinds of operators: how inputs combine */
enum { K_UNARY, K_BINARY, K_VARIADIC, K_SPECIAL };

typedef struct EwDef {
    OpDef op;            /* first member: n->op points here */
    int id;
    int kind;
    unsigned types;      /* accepted element types of input 0 */
    int outbool;         /* the output is bool */
    const char *tf, *ts, *tu, *tb;   /* templates: float family, signed, unsigned (NULL: ts), bool */
    const char *tf2, *ts2, *tu2;     /* variant templates (Gelu tanh, Mod fmod=1, BitShift RIGHT) */
    const char *a1, *a2; /* attribute names giving $1 $2 (NULL: the fixed value d1/d2) */
    double d1, d2;       /* defaults */
    int iattr;           /* $1 $2 are integers */
} EwDef;

#define HSIG "(a * $1 + $2 < 0 ? 0 : a * $1 + $2 > 1 ? 1 : a * $1 + $2)"
#define SOFTPLUS "((a > 0 ? a : 0) + log1p$f(exp$f(-fabs$f(a))))"
#define WRAP(op) "($T)(($U)a " op " ($U)b)"
#define MATH1(fn) .tf = fn "$f(a)"

/* X(Name, min_inputs, max_inputs, kind, summary, fields...) */
#define EW_OPS(X) \
    X(Abs, 1, 1, K_UNARY, "|x|", .types = T_NUM, MATH1("fabs"), .ts = "(a < 0 ? ($T)(0 - ($U)a) : a)", .tu = "a") \
    X(Neg, 1, 1, K_UNARY, "-x", .types = T_FLT | T_SI, .tf = "-a", .ts = "($T)(0 - ($U)a)") \
    X(Sqrt, 1, 1, K_UNARY, "square root", .types = T_FLT, MATH1("sqrt")) \
    X(Exp, 1, 1, K_UNARY, "e^x", .types = T_FLT, MATH1("exp")) \
    X(Log, 1, 1, K_UNARY, "natural logarithm", .types = T_FLT, MATH1("log")) \
    X(Reciprocal, 1, 1, K_UNARY, "1/x", .types = T_FLT, .tf = "1 / a") \
    X(Floor, 1, 1, K_UNARY, "floor", .types = T_FLT, MATH1("floor")) \
    X(Ceil, 1, 1, K_UNARY, "ceiling", .types = T_FLT, MATH1("ceil")) \
    X(Round, 1, 1, K_UNARY, "round half to even", .types = T_FLT, MATH1("rint")) \
    X(Erf, 1, 1, K_UNARY, "error function", .types = T_FLT, MATH1("erf")) \
    X(Tanh, 1, 1, K_UNARY, "hyperbolic tangent", .types = T_FLT, MATH1("tanh")) \
    X(Sigmoid, 1, 1, K_UNARY, "1/(1+e^-x)", .types = T_FLT, .tf = "1 / (1 + exp$f(-a))") \
    X(Relu, 1, 1, K_UNARY, "max(x, 0)", .types = T_FLT | T_SI, .tf = "(a < 0 ? 0 : a)", .ts = "(a < 0 ? 0 : a)") \
    X(LeakyRelu, 1, 1, K_UNARY, "x<0 ? alpha*x : x", .types = T_FLT, .tf = "(a < 0 ? $1 * a : a)", .a1 = "alpha", .d1 = 0.01) \
    X(Elu, 1, 1, K_UNARY, "x<0 ? alpha*(e^x-1) : x", .types = T_FLT, .tf = "(a < 0 ? $1 * (exp$f(a) - 1) : a)", .a1 = "alpha", .d1 = 1) \
    X(Selu, 1, 1, K_UNARY, "gamma*(x>0 ? x : alpha*e^x-alpha)", .types = T_FLT, \
      .tf = "$2 * (a > 0 ? a : $1 * exp$f(a) - $1)", .a1 = "alpha", .d1 = 1.67326319217681884765625, \
      .a2 = "gamma", .d2 = 1.05070102214813232421875) \
    X(Celu, 1, 1, K_UNARY, "max(0,x) + min(0, alpha*(e^(x/alpha)-1))", .types = T_FLT, \
      .tf = "(a > 0 ? a : $1 * (exp$f(a / $1) - 1))", .a1 = "alpha", .d1 = 1) \
    X(HardSigmoid, 1, 1, K_UNARY, "clamp(alpha*x+beta, 0, 1)", .types = T_FLT, .tf = HSIG, \
      .a1 = "alpha", .d1 = 0.2, .a2 = "beta", .d2 = 0.5) \
    X(HardSwish, 1, 1, K_UNARY, "x*clamp(x/6+1/2, 0, 1)", .types = T_FLT, .tf = "a * " HSIG, .d1 = 1.0 / 6, .d2 = 0.5) \
    X(Softplus, 1, 1, K_UNARY, "log(e^x+1)", .types = T_FLT, .tf = SOFTPLUS) \
    X(Softsign, 1, 1, K_UNARY, "x/(1+|x|)", .types = T_FLT, .tf = "a / (1 + fabs$f(a))") \
    X(Sign, 1, 1, K_UNARY, "-1, 0 or 1", .types = T_NUM, .tf = "(a > 0 ? 1 : a < 0 ? -1 : a)", \
      .ts = "((a > 0) - (a < 0))", .tu = "(a > 0)") \
    X(Gelu, 1, 1, K_UNARY, "x*Phi(x) (approximate none or tanh)", .types = T_FLT, \
      .tf = "0.5f * a * (1 + erf$f(a * $1))", \
      .tf2 = "0.5f * a * (1 + tanh$f($2 * (a + 0.044715f * a * a * a)))", \
      .d1 = 0.70710678118654752440, .d2 = 0.79788456080286535588) \
    X(Mish, 1, 1, K_UNARY, "x*tanh(softplus(x))", .types = T_FLT, .tf = "a * tanh$f" SOFTPLUS) \
    X(ThresholdedRelu, 1, 1, K_UNARY, "x>alpha ? x : 0", .types = T_FLT, .tf = "(a > $1 ? a : 0)", .a1 = "alpha", .d1 = 1) \
    X(Shrink, 1, 1, K_UNARY, "x<-lambd ? x+bias : x>lambd ? x-bias : 0", .types = T_FLT, \
      .tf = "(a < -$1 ? a + $2 : a > $1 ? a - $2 : 0)", .a1 = "lambd", .d1 = 0.5, .a2 = "bias", .d2 = 0) \
    X(Not, 1, 1, K_UNARY, "logical not", .types = T_BOOL, .tb = "!a") \
    X(IsNaN, 1, 1, K_UNARY, "x is NaN", .types = T_FLT, .outbool = 1, .tf = "isnan(a)") \
    X(IsInf, 1, 1, K_UNARY, "x is infinite (detect_positive/negative)", .types = T_FLT, .outbool = 1, \
      .tf = "(isinf(a) && ((a > 0 && $2) || (a < 0 && $1)))", .a1 = "detect_negative", .d1 = 1, \
      .a2 = "detect_positive", .d2 = 1, .iattr = 1) \
    X(Sin, 1, 1, K_UNARY, "sine", .types = T_FLT, MATH1("sin")) \
    X(Cos, 1, 1, K_UNARY, "cosine", .types = T_FLT, MATH1("cos")) \
    X(Tan, 1, 1, K_UNARY, "tangent", .types = T_FLT, MATH1("tan")) \
    X(Asin, 1, 1, K_UNARY, "arcsine", .types = T_FLT, MATH1("asin")) \
    X(Acos, 1, 1, K_UNARY, "arccosine", .types = T_FLT, MATH1("acos")) \
    X(Atan, 1, 1, K_UNARY, "arctangent", .types = T_FLT, MATH1("atan")) \
    X(Sinh, 1, 1, K_UNARY, "hyperbolic sine", .types = T_FLT, MATH1("sinh")) \
    X(Cosh, 1, 1, K_UNARY, "hyperbolic cosine", .types = T_FLT, MATH1("cosh")) \
    X(Asinh, 1, 1, K_UNARY, "inverse hyperbolic sine", .types = T_FLT, MATH1("asinh")) \
    X(Acosh, 1, 1, K_UNARY, "inverse hyperbolic cosine", .types = T_FLT, MATH1("acosh")) \
    X(Atanh, 1, 1, K_UNARY, "inverse hyperbolic tangent", .types = T_FLT, MATH1("atanh")) \
    X(BitwiseNot, 1, 1, K_UNARY, "~x", .types = T_INT, .ts = "($T)~a") \
    X(Add, 2, 2, K_BINARY, "a + b with numpy broadcasting", .types = T_NUM, .tf = "a + b", .ts = WRAP("+")) \
    X(Sub, 2, 2, K_BINARY, "a - b with numpy broadcasting", .types = T_NUM, .tf = "a - b", .ts = WRAP("-")) \
    X(Mul, 2, 2, K_BINARY, "a * b with numpy broadcasting", .types = T_NUM, .tf = "a * b", .ts = WRAP("*")) \
    X(Div, 2, 2, K_BINARY, "a / b (integers truncate toward zero)", .types = T_NUM, .tf = "a / b", \
      .ts = "(b == 0 ? 0 : b == -1 ? ($T)(0 - ($U)a) : a / b)", .tu = "(b == 0 ? 0 : a / b)") \
    X(Mod, 2, 2, K_BINARY, "remainder (fmod=0: sign of divisor; fmod=1: sign of dividend)", .types = T_NUM, \
      .tf = "(fmod$f(a, b) != 0 && (fmod$f(a, b) < 0) != (b < 0) ? fmod$f(a, b) + b : fmod$f(a, b))", \
      .ts = "(b == 0 || b == -1 ? 0 : a % b != 0 && (a % b < 0) != (b < 0) ? a % b + b : a % b)", \
      .tu = "(b == 0 ? 0 : a % b)", \
      .tf2 = "fmod$f(a, b)", .ts2 = "(b == 0 || b == -1 ? 0 : a % b)", .tu2 = "(b == 0 ? 0 : a % b)") \
    X(Pow, 2, 2, K_SPECIAL, "a ^ b (base and exponent types may differ)", .types = T_NUM) \
    X(PRelu, 2, 2, K_SPECIAL, "x<0 ? slope*x : x (slope broadcast to x)", .types = T_NUM, \
      .tf = "(a < 0 ? b * a : a)", .ts = "(a < 0 ? ($T)(($U)b * ($U)a) : a)", .tu = "a") \
    X(Min, 1, -1, K_VARIADIC, "elementwise minimum of all inputs (NaN propagates)", .types = T_NUM, \
      .tf = "(a < b || isnan(a) ? a : b)", .ts = "(a < b ? a : b)") \
    X(Max, 1, -1, K_VARIADIC, "elementwise maximum of all inputs (NaN propagates)", .types = T_NUM, \
      .tf = "(a > b || isnan(a) ? a : b)", .ts = "(a > b ? a : b)") \
    X(Sum, 1, -1, K_VARIADIC, "sum of all inputs", .types = T_NUM, .tf = "a + b", .ts = WRAP("+")) \
    X(Mean, 1, -1, K_VARIADIC, "mean of all inputs", .types = T_FLT, .tf = "a + b") \
    X(Equal, 2, 2, K_BINARY, "a == b", .types = T_ALL, .outbool = 1, .tf = "a == b", .ts = "a == b", .tb = "a == b") \
    X(Less, 2, 2, K_BINARY, "a < b", .types = T_NUM, .outbool = 1, .tf = "a < b", .ts = "a < b") \
    X(LessOrEqual, 2, 2, K_BINARY, "a <= b", .types = T_NUM, .outbool = 1, .tf = "a <= b", .ts = "a <= b") \
    X(Greater, 2, 2, K_BINARY, "a > b", .types = T_NUM, .outbool = 1, .tf = "a > b", .ts = "a > b") \
    X(GreaterOrEqual, 2, 2, K_BINARY, "a >= b", .types = T_NUM, .outbool = 1, .tf = "a >= b", .ts = "a >= b") \
    X(And, 2, 2, K_BINARY, "logical and", .types = T_BOOL, .tb = "a && b") \
    X(Or, 2, 2, K_BINARY, "logical or", .types = T_BOOL, .tb = "a || b") \
    X(Xor, 2, 2, K_BINARY, "logical xor", .types = T_BOOL, .tb = "a != b") \
    X(BitShift, 2, 2, K_BINARY, "a << b or a >> b (direction)", .types = T_UI, \
      .ts = "(b >= 64 ? 0 : ($T)((uint64_t)a << b))", .ts2 = "(b >= 64 ? 0 : ($T)((uint64_t)a >> b))") \
    X(BitwiseAnd, 2, 2, K_BINARY, "a & b", .types = T_INT, .ts = "($T)(a & b)") \
    X(BitwiseOr, 2, 2, K_BINARY, "a | b", .types = T_INT, .ts = "($T)(a | b)") \
    X(BitwiseXor, 2, 2, K_BINARY, "a ^ b", .types = T_INT, .ts = "($T)(a ^ b)") \
    X(Where, 3, 3, K_SPECIAL, "cond ? a : b with numpy broadcasting", .types = T_BOOL) \
    X(Clip, 1, 3, K_SPECIAL, "clamp(x, min, max) (attributes before opset 11, inputs after)", .types = T_NUM) \
    X(Cast, 1, 1, K_SPECIAL, "conversion to the element type `to`", .types = T_ALL) \
    X(CastLike, 2, 2, K_SPECIAL, "conversion to the element type of the second input", .types = T_ALL) \
    X(BitCast, 1, 1, K_SPECIAL, "reinterpretation of the bits as the same-sized element type `to`", .types = T_ALL) \
    X(Swish, 1, 1, K_UNARY, "x*sigmoid(alpha*x)", .types = T_FLT, .tf = "a / (1 + exp$f(-$1 * a))", .a1 = "alpha", .d1 = 1) \
    X(SwiGLU, 2, 2, K_BINARY, "swish(a, alpha) * b with numpy broadcasting", .types = T_FLT, \
      .tf = "a / (1 + exp$f(-$1 * a)) * b", .a1 = "alpha", .d1 = 1)

/* the same, in the ai.onnx.ml domain */
#define EW_ML_OPS(X) \
    X(Binarizer, 1, 1, K_UNARY, "x > threshold ? 1 : 0", .types = T_FLT, .tf = "(a > $1 ? 1.0f : 0.0f)", .a1 = "threshold", .d1 = 0)

enum {
#define X_ENUM(N, ...) E_##N,
    EW_OPS(X_ENUM)
    EW_ML_OPS(X_ENUM)
#undef X_ENUM
    E_COUNT_
};

static int ew_infer(Graph *g, Node *n, Diag *d);
static int ew_fold(Graph *g, Node *n, Diag *d);
static int ew_emit(Emitter *e, const Node *n, Diag *d);
static unsigned ew_inplace(const Graph *g, const Node *n);
int ew_grad(GradCtx *c); /* elementwise_grad.c */
extern const OpDef op_activation_grad;
extern const OpDef op_fused_elementwise; /* fused.c */

#define X_DEF_IN(DOMAIN, N, MIN, MAX, KIND, SUM, ...)                                          \
    static const EwDef ew_##N = {                                                              \
        .op = {.name = #N, .domain = DOMAIN, .since = 1, .min_inputs = MIN, .max_inputs = MAX, \
               .min_outputs = 1, .max_outputs = 1, .infer = ew_infer, .fold = ew_fold,        \
               .emit = ew_emit, .summary = SUM, .grad = ew_grad, .inplace_if = ew_inplace},   \
        .id = E_##N, .kind = KIND, __VA_ARGS__};
#define X_DEF(...) X_DEF_IN("", __VA_ARGS__)
#define X_DEF_ML(...) X_DEF_IN("ai.onnx.ml", __VA_ARGS__)
EW_OPS(X_DEF)
EW_ML_OPS(X_DEF_ML)
#undef X_DEF
#undef X_DEF_ML
#undef X_DEF_IN

const OpDef *const ops_elementwise[] = {
#define X_REF(N, ...) &ew_##N.op,
    EW_OPS(X_REF)
    EW_ML_OPS(X_REF)
#undef X_REF
    &op_activation_grad,
    &op_fused_elementwise,
    NULL};

static const EwDef *ew_of(const Node *n)
{
    return (const EwDef *)n->op;
}

/* Which inputs output 0 may overwrite (OpDef.inplace). The loops of ew_emit_body
 * load every operand of element i into a local (a, b, ...) before the one store
 * to y0[i], each operand at its broadcast index j_k, which is i whenever that
 * operand has the output's element count (the planner's condition); Clip reads
 * its bounds once before the loop, Pow and PRelu load both operands first too,
 * and Where reads x0[j0], x1[j1], x2[j2] in the one expression it stores (its
 * condition is bool, so only the branches can match the output's type). Not
 * Cast, CastLike (another element type) nor BitCast (a memcpy, whose operands
 * must not overlap). */
static unsigned ew_inplace(const Graph *g, const Node *n)
{
    (void)g;
    const EwDef *o = (const EwDef *)n->op;
    switch (o->id) {
    case E_Cast:
    case E_CastLike:
    case E_BitCast:
        return 0;
    case E_Where:
        return 6u; /* x1, x2 */
    case E_Clip:
        return 1u; /* x0; min and max are scalars */
    default:
        return ~0u; /* every operand */
    }
}

/* ---------------------------------------------------------------- dtype helpers */

static int is_flt(DType t)
{
    return (T_FLT >> t) & 1u;
}

static int is_half(DType t)
{
    return t == DT_FLOAT16 || t == DT_BFLOAT16;
}

/* C type in which values of dtype t are computed */
static const char *ctype_compute(DType t)
{
    return is_half(t) ? "float" : dtype_ctype(t);
}

static int in_set(unsigned set, DType t)
{
    return t > 0 && t < 32 && ((set >> t) & 1u);
}

/* ---------------------------------------------------------------- attributes and variants */

static double attr_num(const Node *n, const char *name, double def)
{
    const Attr *a = node_attr(n, name);
    if (!a)
        return def;
    if (a->type == AT_INT)
        return (double)a->i;
    if (a->type == AT_FLOAT)
        return a->f;
    return def;
}

/* which template variant the node uses (0 or 1); -1 with diag if the attribute is invalid */
static int ew_variant(const EwDef *o, const Node *n, Diag *d)
{
    switch (o->id) {
    case E_Gelu: {
        const char *s = attr_string(n, "approximate", "none");
        if (strcmp(s, "none") == 0)
            return 0;
        if (strcmp(s, "tanh") == 0)
            return 1;
        return diag_error(d, n, "attribute approximate is '%s'; expected 'none' or 'tanh'", s);
    }
    case E_BitShift: {
        const char *s = attr_string(n, "direction", "");
        if (strcmp(s, "LEFT") == 0)
            return 0;
        if (strcmp(s, "RIGHT") == 0)
            return 1;
        return diag_error(d, n, "attribute direction is '%s'; expected 'LEFT' or 'RIGHT'", s);
    }
    case E_Mod: {
        int64_t f = attr_int(n, "fmod", 0);
        if (f != 0 && f != 1)
            return diag_error(d, n, "attribute fmod is %lld; expected 0 or 1", (long long)f);
        return (int)f;
    }
    default:
        return 0;
    }
}

static void ew_attrs(const EwDef *o, const Node *n, double *v1, double *v2)
{
    *v1 = o->a1 ? attr_num(n, o->a1, o->d1) : o->d1;
    *v2 = o->a2 ? attr_num(n, o->a2, o->d2) : o->d2;
}

/* Target element type of Cast / CastLike */
static DType cast_target(const Graph *g, const Node *n, Diag *d)
{
    if (ew_of(n)->id == E_CastLike) {
        const Value *t = node_in(g, n, 1);
        return t ? t->dtype : DT_UNDEFINED;
    }
    const Attr *a = node_attr(n, "to");
    if (!a) {
        diag_error(d, n, "attribute 'to' is missing");
        return DT_UNDEFINED;
    }
    if (a->type == AT_STRING) { /* Cast-1: "FLOAT", "INT64", ... */
        char low[32];
        size_t k = 0;
        for (; a->s[k] && k + 1 < sizeof low; k++)
            low[k] = (char)(a->s[k] >= 'A' && a->s[k] <= 'Z' ? a->s[k] - 'A' + 'a' : a->s[k]);
        low[k] = 0;
        DType t = dtype_from_name(low);
        if (t == DT_UNDEFINED)
            diag_error(d, n, "attribute 'to' names unknown type '%s'", a->s);
        return t;
    }
    if (a->i <= 0 || a->i >= DT_COUNT_) {
        diag_error(d, n, "attribute 'to' is %lld, not an ONNX element type", (long long)a->i);
        return DT_UNDEFINED;
    }
    return (DType)a->i;
}

/* ---------------------------------------------------------------- inference */

static int shapes_error(Diag *d, const Node *n, const Value *a, const Value *b)
{
    char sa[128], sb[128];
    return diag_error(d, n, "shapes %s and %s do not broadcast", value_type_str(a, sa, sizeof sa),
                      value_type_str(b, sb, sizeof sb));
}

/* does s broadcast to x's shape without changing it (unidirectional)? 1 yes, 0 no */
static int unidirectional(const Value *x, const Value *s)
{
    if (s->rank > x->rank)
        return 0;
    for (int i = 0; i < s->rank; i++) {
        int64_t sd = s->dims[s->rank - 1 - i], xd = x->dims[x->rank - 1 - i];
        if (sd != 1 && sd != xd)
            return 0;
    }
    return 1;
}

/* PRelu slope seen with the shape that numpy-broadcasts to x: the slope itself, or a
 * 1-D per-channel slope [C] (older exporters) viewed as [C,1,...,1]. */
static int prelu_slope_view(const Value *x, const Value *s, Value *view)
{
    *view = *s;
    if (unidirectional(x, s))
        return 0;
    int64_t numel = value_numel(s);
    if (x->rank >= 2 && numel == x->dims[1]) {
        view->rank = x->rank - 1;
        view->dims[0] = numel;
        for (int i = 1; i < view->rank; i++)
            view->dims[i] = 1;
        return 0;
    }
    return -1;
}

/* Binary ops before opset 7 with broadcast=1: B's dims align with A's from `axis`
 * (default: the trailing dims); B is seen with trailing 1s so numpy broadcasting applies.
 * Returns 1 if a view was made, 0 if the node needs none, -1 if axis is out of range. */
static int old_broadcast_view(const Node *n, const Value *a, const Value *b, Value *view)
{
    *view = *b;
    if (!(n->opset > 0 && n->opset < 7) || !attr_int(n, "broadcast", 0))
        return 0;
    int64_t axis = attr_int(n, "axis", a->rank - b->rank);
    if (axis < 0)
        axis += a->rank;
    if (axis < 0 || axis + b->rank > a->rank)
        return -1;
    view->rank = a->rank - (int)axis;
    for (int i = b->rank; i < view->rank; i++)
        view->dims[i] = 1;
    return 1;
}

static int ew_infer(Graph *g, Node *n, Diag *d)
{
    const EwDef *o = ew_of(n);
    Value *x = need_input(g, n, 0, d);
    if (!x)
        return -1;
    Value *y = node_out(g, n, 0);
    if (ew_variant(o, n, d) < 0)
        return -1;
    if (!in_set(o->types, x->dtype))
        return err_dtype(d, n, o->op.name, x->dtype);
    switch (o->id) {
    case E_Cast:
    case E_CastLike:
    case E_BitCast: {
        if (o->id == E_CastLike && !need_input(g, n, 1, d))
            return -1;
        DType t = cast_target(g, n, d);
        if (t == DT_UNDEFINED)
            return -1;
        if (!dtype_supported(t))
            return err_dtype(d, n, o->id == E_BitCast ? "the output of BitCast" : "the output of Cast", t);
        if (o->id == E_BitCast && dtype_size(t) != dtype_size(x->dtype))
            return diag_error(d, n, "BitCast from %s to %s: the element sizes differ", dtype_name(x->dtype), dtype_name(t));
        value_set_shape(y, t, x->rank, x->dims);
        return 0;
    }
    case E_Clip:
        for (int i = 1; i < 3; i++) {
            const Value *v = node_in(g, n, i);
            if (!v)
                continue;
            if (!need_input(g, n, i, d))
                return -1;
            if (v->dtype != x->dtype)
                return diag_error(d, n, "input '%s' is %s but input '%s' is %s", v->name, dtype_name(v->dtype),
                                  x->name, dtype_name(x->dtype));
            if (value_numel(v) != 1)
                return diag_error(d, n, "input '%s' (a bound) must have one element, not %lld", v->name,
                                  (long long)value_numel(v));
        }
        value_set_shape(y, x->dtype, x->rank, x->dims);
        return 0;
    case E_PRelu: {
        Value *s = need_input(g, n, 1, d);
        if (!s)
            return -1;
        if (s->dtype != x->dtype)
            return diag_error(d, n, "inputs have different element types (%s and %s)", dtype_name(x->dtype),
                              dtype_name(s->dtype));
        Value view;
        if (prelu_slope_view(x, s, &view)) {
            char ss[128], sx[128];
            return diag_error(d, n, "slope %s does not broadcast to the input's shape %s", value_type_str(s, ss, sizeof ss),
                              value_type_str(x, sx, sizeof sx));
        }
        value_set_shape(y, x->dtype, x->rank, x->dims);
        return 0;
    }
    case E_Where: {
        Value *a = need_input(g, n, 1, d), *b = a ? need_input(g, n, 2, d) : NULL;
        if (!b)
            return -1;
        if (a->dtype != b->dtype)
            return diag_error(d, n, "inputs X and Y have different element types (%s and %s)", dtype_name(a->dtype),
                              dtype_name(b->dtype));
        int r;
        int64_t dims[KD_MAX_RANK], d2[KD_MAX_RANK];
        if (broadcast_shapes(x->rank, x->dims, a->rank, a->dims, &r, dims))
            return shapes_error(d, n, x, a);
        if (broadcast_shapes(r, dims, b->rank, b->dims, &r, d2))
            return shapes_error(d, n, a, b);
        value_set_shape(y, a->dtype, r, d2);
        return 0;
    }
    default:
        break;
    }
    if (o->kind == K_UNARY) {
        value_set_shape(y, o->outbool ? DT_BOOL : x->dtype, x->rank, x->dims);
        return 0;
    }
    /* binary and variadic: all inputs broadcast together */
    int nin = n->ninputs;
    while (nin > 0 && n->inputs[nin - 1] < 0)
        nin--;
    if ((o->kind == K_BINARY || o->id == E_Pow) && n->opset > 0 && n->opset < 7) {
        /* explicit broadcasting of B onto A's shape (broadcast=1, optional axis) */
        Value *b = need_input(g, n, 1, d);
        if (!b)
            return -1;
        Value view;
        if (attr_int(n, "broadcast", 0)) {
            if (old_broadcast_view(n, x, b, &view) < 0 || !unidirectional(x, &view)) {
                char sa[128], sb[128];
                return diag_error(d, n, "input B %s does not broadcast onto A %s (axis %lld)", value_type_str(b, sb, sizeof sb),
                                  value_type_str(x, sa, sizeof sa), (long long)attr_int(n, "axis", x->rank - b->rank));
            }
            value_set_shape(y, o->outbool ? DT_BOOL : x->dtype, x->rank, x->dims);
            return 0;
        } else if (value_numel(b) != value_numel(x) || b->rank != x->rank) {
            return shapes_error(d, n, x, b);
        }
    }
    if (nin > 8)
        return diag_unsupported(d, n, "%d inputs (kdcc supports up to 8)", nin);
    int r = x->rank;
    int64_t dims[KD_MAX_RANK];
    memcpy(dims, x->dims, sizeof dims);
    for (int i = 1; i < nin; i++) {
        Value *v = need_input(g, n, i, d);
        if (!v)
            return -1;
        if (o->id == E_Pow) {
            if (!in_set(T_NUM, v->dtype))
                return err_dtype(d, n, "the exponent of Pow", v->dtype);
        } else if (v->dtype != x->dtype) {
            return diag_error(d, n, "inputs have different element types (%s and %s)", dtype_name(x->dtype),
                              dtype_name(v->dtype));
        }
        int64_t nd[KD_MAX_RANK];
        if (broadcast_shapes(r, dims, v->rank, v->dims, &r, nd))
            return shapes_error(d, n, x, v);
        memcpy(dims, nd, sizeof dims);
    }
    value_set_shape(y, o->outbool ? DT_BOOL : x->dtype, r, dims);
    return 0;
}

/* ---------------------------------------------------------------- emission */

/* What a template expands with. */
typedef struct Tctx {
    DType dt;        /* element type of input 0 */
    double v1, v2;   /* $1 $2 */
    int iattr;
} Tctx;

static void w_attr(Writer *w, const Tctx *c, double v)
{
    w_puts(w, "(");
    if (c->iattr || dtype_is_int(c->dt) || c->dt == DT_BOOL)
        w_int64(w, (int64_t)v);
    else if (c->dt == DT_DOUBLE)
        w_double(w, v);
    else
        w_float(w, (float)v);
    w_puts(w, ")");
}

static void w_tmpl(Writer *w, const char *t, const Tctx *c)
{
    const char *p = t;
    while (*p) {
        const char *q = strchr(p, '$');
        if (!q) {
            w_puts(w, p);
            return;
        }
        if (q > p)
            w_printf(w, "%.*s", (int)(q - p), p);
        switch (q[1]) {
        case 'f':
            w_puts(w, c->dt == DT_DOUBLE ? "" : "f");
            break;
        case 'T':
            w_puts(w, ctype_compute(c->dt));
            break;
        case 'U':
            w_puts(w, dtype_size(c->dt) == 8 ? "uint64_t" : "uint32_t");
            break;
        case '1':
            w_attr(w, c, c->v1);
            break;
        case '2':
            w_attr(w, c, c->v2);
            break;
        default:
            w_printf(w, "$%c", q[1]);
            break;
        }
        p = q + (q[1] ? 2 : 1);
    }
}

/* the template of op o for element type dt in variant var; NULL if none */
static const char *ew_template(const EwDef *o, DType dt, int var)
{
    if (is_flt(dt))
        return var && o->tf2 ? o->tf2 : o->tf;
    if (dt == DT_BOOL)
        return o->tb;
    if (!dtype_is_signed(dt) && (var ? o->tu2 : o->tu))
        return var ? o->tu2 : o->tu;
    return var && o->ts2 ? o->ts2 : o->ts;
}

/* "kd_h2f(" for halves (and note the prelude), "" otherwise; close with load_close */
static const char *load_open(Emitter *e, DType t)
{
    if (t == DT_FLOAT16) {
        e->prelude |= PRE_HALF;
        return "kd_h2f(";
    }
    if (t == DT_BFLOAT16) {
        e->prelude |= PRE_BF16;
        return "kd_bf2f(";
    }
    return "";
}

static const char *load_close(DType t)
{
    return is_half(t) ? ")" : "";
}

static const char *store_open(Emitter *e, DType t)
{
    if (t == DT_FLOAT16) {
        e->prelude |= PRE_HALF;
        return "kd_f2h(";
    }
    if (t == DT_BFLOAT16) {
        e->prelude |= PRE_BF16;
        return "kd_f2bf(";
    }
    return "";
}

static void w_load_local(Emitter *e, const char *name, DType t, int k, int constant)
{
    w_line(e->w, "%s%s %s = %sx%d[j%d]%s;", constant ? "const " : "", ctype_compute(t), name, load_open(e, t), k, k,
           load_close(t));
}

/* y0[i] = <store conversion>(expr) with expr written by the caller between open and close */
static void w_store_open(Emitter *e, DType out)
{
    w_printf(e->w, "y0[i] = %s", store_open(e, out));
    if (dtype_is_int(out))
        w_printf(e->w, "(%s)(", dtype_ctype(out));
}

static void w_store_close(Emitter *e, DType out)
{
    if (dtype_is_int(out))
        w_puts(e->w, ")");
    w_puts(e->w, is_half(out) ? ");\n" : ";\n");
}

/* does template t use the operand `name` (a whole identifier)? */
static int uses_name(const char *t, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = strstr(t, name); p; p = strstr(p + 1, name)) {
        int before = p > t && (p[-1] == '_' || p[-1] == '$' || (p[-1] >= 'a' && p[-1] <= 'z') ||
                               (p[-1] >= 'A' && p[-1] <= 'Z') || (p[-1] >= '0' && p[-1] <= '9'));
        char c = p[n];
        int after = c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!before && !after)
            return 1;
    }
    return 0;
}

static int present_inputs(const Node *n)
{
    int nin = n->ninputs;
    while (nin > 0 && n->inputs[nin - 1] < 0)
        nin--;
    return nin;
}

static int emit_pow(Emitter *e, const Node *n, Diag *d)
{
    const Graph *g = e->g;
    const Value *ins[2] = {node_in(g, n, 0), node_in(g, n, 1)};
    const Value *y = node_out(g, n, 0);
    DType bt = ins[0]->dtype, et = ins[1]->dtype;
    Tctx c = {.dt = bt};
    Value view;
    (void)d;
    if (old_broadcast_view(n, ins[0], ins[1], &view) > 0)
        ins[1] = &view;
    int k = em_broadcast_loops(e->w, y, ins, 2);
    if (is_flt(bt) || is_flt(et))
        w_load_local(e, "a", bt, 0, 1);
    else
        w_line(e->w, "const int64_t a = (int64_t)x0[j0];");
    if (is_flt(bt)) {
        w_load_local(e, "b", et, 1, 1);
        w_store_open(e, y->dtype);
        w_tmpl(e->w, "pow$f(a, ($T)b)", &c);
        w_store_close(e, y->dtype);
    } else if (is_flt(et)) {
        w_load_local(e, "b", et, 1, 1);
        w_store_open(e, y->dtype);
        w_puts(e->w, "pow((double)a, (double)b)");
        w_store_close(e, y->dtype);
    } else {
        /* integer power by squaring, wrapping like integer multiplication */
        w_line(e->w, "int64_t b = (int64_t)x1[j1];");
        w_line(e->w, "uint64_t r = 1, p = (uint64_t)a;");
        w_open(e->w, "if (b < 0)");
        w_line(e->w, "r = a == 1 ? 1 : a == -1 ? ((b & 1) ? UINT64_MAX : 1) : 0;");
        w_close(e->w);
        w_open(e->w, "else");
        w_open(e->w, "for (; b > 0; b >>= 1)");
        w_open(e->w, "if (b & 1)");
        w_line(e->w, "r *= p;");
        w_close(e->w);
        w_line(e->w, "p *= p;");
        w_close(e->w);
        w_close(e->w);
        w_line(e->w, "y0[i] = (%s)r;", dtype_ctype(y->dtype));
    }
    em_close(e->w, k);
    return 0;
}

static int emit_clip(Emitter *e, const Node *n, Diag *d)
{
    const Graph *g = e->g;
    const Value *x = node_in(g, n, 0), *y = node_out(g, n, 0);
    DType t = x->dtype;
    const char *ct = ctype_compute(t);
    int has[2] = {0, 0};
    (void)d;
    if (n->opset > 0 && n->opset < 11) {
        const char *names[2] = {"min", "max"};
        for (int k = 0; k < 2; k++) {
            const Attr *a = node_attr(n, names[k]);
            if (!a)
                continue;
            has[k] = 1;
            w_printf(e->w, "const %s %s = ", ct, k ? "hi" : "lo");
            em_literal(e->w, is_half(t) ? DT_FLOAT : t, a->f);
            w_puts(e->w, ";\n");
        }
    } else {
        for (int k = 0; k < 2; k++) {
            if (!node_in(g, n, k + 1))
                continue;
            has[k] = 1;
            w_line(e->w, "const %s %s = %sx%d[0]%s;", ct, k ? "hi" : "lo", load_open(e, t), k + 1, load_close(t));
        }
    }
    em_for(e->w, "i", value_numel(y));
    w_line(e->w, "%s a = %sx0[i]%s;", ct, load_open(e, t), load_close(t));
    if (has[0])
        w_line(e->w, "a = a < lo ? lo : a;");
    if (has[1])
        w_line(e->w, "a = a > hi ? hi : a;");
    w_store_open(e, y->dtype);
    w_puts(e->w, "a");
    w_store_close(e, y->dtype);
    w_close(e->w);
    return 0;
}

/* C expression converting `v` (a value of compute type of `from`) to the storage of `to` */
static void w_convert(Emitter *e, DType from, DType to, const char *v)
{
    Writer *w = e->w;
    if (to == DT_BOOL) {
        w_printf(w, "%s != 0", v);
    } else if (is_half(to)) {
        w_printf(w, "%s(float)%s)", store_open(e, to), v);
    } else if (dtype_is_int(to) && is_flt(from)) {
        /* saturate where C leaves the conversion undefined, like the constant folder */
        DType ct = from == DT_DOUBLE ? DT_DOUBLE : DT_FLOAT;
        w_printf(w, "(%s)(isnan(%s) ? 0 : %s >= ", dtype_ctype(to), v, v);
        em_literal(w, ct, 9223372036854775808.0);
        w_printf(w, " ? INT64_MAX : %s <= ", v);
        em_literal(w, ct, -9223372036854775808.0);
        w_printf(w, " ? INT64_MIN : (int64_t)%s)", v);
    } else {
        w_printf(w, "(%s)%s", dtype_ctype(to), v);
    }
}

static int emit_cast(Emitter *e, const Node *n, Diag *d)
{
    const Graph *g = e->g;
    const Value *x = node_in(g, n, 0), *y = node_out(g, n, 0);
    DType from = x->dtype, to = y->dtype;
    (void)d;
    em_for(e->w, "i", value_numel(y));
    if (from == to) {
        w_line(e->w, "y0[i] = x0[i];");
    } else if (from == DT_FLOAT16 && to == DT_BFLOAT16) {
        w_line(e->w, "y0[i] = %s%sx0[i]));", store_open(e, to), load_open(e, from));
    } else if (from == DT_BFLOAT16 && to == DT_FLOAT16) {
        w_line(e->w, "y0[i] = %s%sx0[i]));", store_open(e, to), load_open(e, from));
    } else {
        w_line(e->w, "const %s v = %sx0[i]%s;", ctype_compute(from), load_open(e, from), load_close(from));
        w_puts(e->w, "y0[i] = ");
        w_convert(e, from, to, "v");
        w_puts(e->w, ";\n");
    }
    w_close(e->w);
    return 0;
}

static int emit_where(Emitter *e, const Node *n)
{
    const Graph *g = e->g;
    const Value *ins[3] = {node_in(g, n, 0), node_in(g, n, 1), node_in(g, n, 2)};
    int k = em_broadcast_loops(e->w, node_out(g, n, 0), ins, 3);
    w_line(e->w, "y0[i] = x0[j0] ? x1[j1] : x2[j2];");
    em_close(e->w, k);
    return 0;
}

static int ew_emit_body(Emitter *e, const Node *n, Diag *d)
{
    const EwDef *o = ew_of(n);
    const Graph *g = e->g;
    switch (o->id) {
    case E_Pow:
        return emit_pow(e, n, d);
    case E_Clip:
        return emit_clip(e, n, d);
    case E_Cast:
    case E_CastLike:
        return emit_cast(e, n, d);
    case E_BitCast: {
        const Value *y = node_out(g, n, 0);
        w_line(e->w, "memcpy(y0, x0, %lld);", (long long)value_bytes(y));
        return 0;
    }
    case E_Where:
        return emit_where(e, n);
    default:
        break;
    }
    int var = ew_variant(o, n, d);
    if (var < 0)
        return -1;
    const Value *x = node_in(g, n, 0), *y = node_out(g, n, 0);
    const char *t = ew_template(o, x->dtype, var);
    if (!t)
        return err_dtype(d, n, o->op.name, x->dtype);
    Tctx c = {.dt = x->dtype, .iattr = o->iattr};
    ew_attrs(o, n, &c.v1, &c.v2);
    int nin = present_inputs(n);
    const Value *ins[8] = {0};
    Value view;
    for (int i = 0; i < nin && i < 8; i++)
        ins[i] = node_in(g, n, i);
    if (o->id == E_PRelu) {
        prelu_slope_view(ins[0], ins[1], &view);
        ins[1] = &view;
    } else if (o->kind == K_BINARY && old_broadcast_view(n, ins[0], ins[1], &view) > 0) {
        ins[1] = &view;
    }
    static const char *const names[] = {"a", "b", "c"};
    if (o->kind != K_VARIADIC)
        for (int i = 0; i < nin && i < 3; i++)
            if (!uses_name(t, names[i]))
                ins[i] = NULL; /* no index, no load, no parameter */
    int k = em_broadcast_loops(e->w, y, ins, nin);
    if (o->kind == K_VARIADIC) {
        w_load_local(e, "a", x->dtype, 0, 0);
        for (int i = 1; i < nin; i++) {
            w_line(e->w, "{");
            e->w->indent++;
            w_load_local(e, "b", x->dtype, i, 1);
            w_puts(e->w, "a = ");
            w_tmpl(e->w, t, &c);
            w_puts(e->w, ";\n");
            w_close(e->w);
        }
        if (o->id == E_Mean)
            w_line(e->w, "a = a / %d;", nin);
        w_store_open(e, y->dtype);
        w_puts(e->w, "a");
        w_store_close(e, y->dtype);
    } else {
        for (int i = 0; i < nin && i < 3; i++)
            if (ins[i])
                w_load_local(e, names[i], ins[i]->dtype, i, 1);
        w_store_open(e, y->dtype);
        w_tmpl(e->w, t, &c);
        w_store_close(e, y->dtype);
    }
    em_close(e->w, k);
    return 0;
}

/* The prelude's conversion helpers come in pairs (static functions); a node that uses
 * only one of a pair references the other so that a file using only that node compiles
 * without an unused-function warning. */
static int ew_emit(Emitter *e, const Node *n, Diag *d)
{
    size_t start = e->w->len;
    unsigned before = e->prelude;
    e->prelude = 0;
    int r = ew_emit_body(e, n, d);
    unsigned asked = e->prelude;
    e->prelude |= before;
    if (r)
        return r;
    static const struct {
        unsigned bit;
        const char *f[2];
    } pairs[] = {{PRE_HALF, {"kd_h2f", "kd_f2h"}}, {PRE_BF16, {"kd_bf2f", "kd_f2bf"}}};
    for (size_t p = 0; p < sizeof pairs / sizeof pairs[0]; p++) {
        if (!(asked & pairs[p].bit))
            continue;
        for (int k = 0; k < 2; k++)
            if (!e->w->buf || !strstr(e->w->buf + start, pairs[p].f[k]))
                w_line(e->w, "(void)%s;", pairs[p].f[k]);
    }
    return 0;
}

/* ---------------------------------------------------------------- epilogue steps
 * A fused node applies elementwise steps where its producer stores each element
 * (compiler/ops/fused.h). Unary steps use the operator's own template, so a fused
 * step computes exactly what the unfused node would. */

static const EwDef *ew_by_name(const char *name)
{
    const OpDef *o = op_lookup("", name);
    return o && o->emit == ew_emit ? (const EwDef *)o : NULL;
}

/* binary steps: name, C operator, operand on the left */
static const struct {
    const char *name;
    const char *op;
    int swap;
} EPI_BIN[] = {{"Add", "+", 0}, {"Sub", "-", 0}, {"Mul", "*", 0}, {"Div", "/", 0}, {"RSub", "-", 1}, {"RDiv", "/", 1}};

/* the unary operator of a step name ("GeluTanh": Gelu, variant 1) */
static const EwDef *epi_unary(const char *op, int *var)
{
    *var = 0;
    if (strcmp(op, "GeluTanh") == 0) {
        *var = 1;
        op = "Gelu";
    }
    const EwDef *o = ew_by_name(op);
    if (!o || o->kind != K_UNARY || o->outbool || !(o->types & TB(DT_FLOAT)) || !o->tf)
        return NULL;
    return o;
}

int ew_epilogue_known(const char *op, int *binary)
{
    int var;
    *binary = 0;
    for (size_t i = 0; i < sizeof EPI_BIN / sizeof EPI_BIN[0]; i++)
        if (strcmp(op, EPI_BIN[i].name) == 0)
            return *binary = 1;
    if (act_grad_step_known(op))
        return *binary = 1;
    return strcmp(op, "Clip") == 0 || epi_unary(op, &var) != NULL;
}

static int same_shape(const Value *a, const Value *b)
{
    if (a->rank != b->rank)
        return 0;
    for (int i = 0; i < a->rank; i++)
        if (a->dims[i] != b->dims[i])
            return 0;
    return 1;
}

int ew_epilogue_step(const Graph *g, const Node *n, int chain, EpiStep *st)
{
    if (act_grad_epilogue_step(g, n, chain, st))
        return 1;
    const EwDef *o = n->op && n->op->emit == ew_emit ? ew_of(n) : NULL;
    if (!o || (n->domain && n->domain[0]) || chain < 0)
        return 0;
    const Value *c = &g->values[chain], *y = node_out(g, n, 0);
    if (!y || (c->dtype != DT_FLOAT && c->dtype != DT_DOUBLE) || y->dtype != c->dtype || !same_shape(c, y))
        return 0;
    for (int j = 1; j < n->noutputs; j++)
        if (n->outputs[j] >= 0)
            return 0;
    memset(st, 0, sizeof *st);
    st->operand = -1;
    int nin = present_inputs(n);
    if (o->kind == K_UNARY) {
        Diag quiet;
        diag_init(&quiet, NULL);
        int var = ew_variant(o, n, &quiet);
        if (nin != 1 || n->inputs[0] != chain || var < 0 || o->outbool || !o->tf)
            return 0;
        st->op = var ? "GeluTanh" : o->op.name;
        ew_attrs(o, n, &st->p1, &st->p2);
        return epi_unary(st->op, &var) != NULL;
    }
    if (o->id == E_Clip) {
        if (n->inputs[0] != chain)
            return 0;
        if (n->opset > 0 && n->opset < 11) {
            const Attr *lo = node_attr(n, "min"), *hi = node_attr(n, "max");
            if (!lo || !hi)
                return 0;
            st->p1 = lo->f;
            st->p2 = hi->f;
        } else {
            const Value *lo = node_in(g, n, 1), *hi = node_in(g, n, 2);
            if (!lo || !hi || !value_is_const(lo) || !value_is_const(hi) || value_numel(lo) != 1 || value_numel(hi) != 1)
                return 0;
            st->p1 = const_get_f64(lo, 0);
            st->p2 = const_get_f64(hi, 0);
        }
        st->op = "Clip";
        return 1;
    }
    if (o->kind != K_BINARY || nin != 2 || (n->opset > 0 && n->opset < 7 && attr_int(n, "broadcast", 0)))
        return 0;
    int side = n->inputs[0] == chain ? 0 : n->inputs[1] == chain ? 1 : -1;
    if (side < 0 || n->inputs[0] == n->inputs[1])
        return 0;
    const Value *b = node_in(g, n, 1 - side);
    if (!b || b->dtype != c->dtype || (!same_shape(b, y) && value_numel(b) != 1) || b->rank > y->rank)
        return 0;
    static const char *const names[4][2] = {{"Add", "Add"}, {"Sub", "RSub"}, {"Mul", "Mul"}, {"Div", "RDiv"}};
    int k = o->id == E_Add ? 0 : o->id == E_Sub ? 1 : o->id == E_Mul ? 2 : o->id == E_Div ? 3 : -1;
    if (k < 0)
        return 0;
    st->op = names[k][side];
    st->operand = n->inputs[1 - side];
    st->scalar = !same_shape(b, y);
    return 1;
}

void ew_epilogue_write(Writer *w, const EpiStep *st, DType dt, const char *b)
{
    Tctx c = {.dt = dt, .v1 = st->p1, .v2 = st->p2};
    for (size_t i = 0; i < sizeof EPI_BIN / sizeof EPI_BIN[0]; i++)
        if (strcmp(st->op, EPI_BIN[i].name) == 0) {
            if (EPI_BIN[i].swap)
                w_line(w, "a = %s %s a;", b, EPI_BIN[i].op);
            else
                w_line(w, "a = a %s %s;", EPI_BIN[i].op, b);
            return;
        }
    if (act_grad_step_known(st->op)) {
        act_grad_write(w, st, b, "a");
        return;
    }
    if (strcmp(st->op, "Clip") == 0) {
        DType lt = dt == DT_DOUBLE ? DT_DOUBLE : DT_FLOAT;
        w_puts(w, "a = a < ");
        em_literal(w, lt, st->p1);
        w_puts(w, " ? ");
        em_literal(w, lt, st->p1);
        w_puts(w, " : a;\n");
        w_puts(w, "a = a > ");
        em_literal(w, lt, st->p2);
        w_puts(w, " ? ");
        em_literal(w, lt, st->p2);
        w_puts(w, " : a;\n");
        return;
    }
    int var;
    const EwDef *o = epi_unary(st->op, &var);
    if (!o)
        return; /* epilogue_read refuses unknown steps */
    c.iattr = o->iattr;
    w_puts(w, "a = ");
    w_tmpl(w, ew_template(o, dt, var), &c);
    w_puts(w, ";\n");
}

/* ---------------------------------------------------------------- constant folding */

/* flat index into `in` of output element i under numpy broadcasting */
static int64_t bcast_index(const Value *out, const Value *in, int64_t i)
{
    int64_t idx = 0, stride = 1;
    for (int dd = out->rank - 1, k = in->rank - 1; dd >= 0; dd--, k--) {
        int64_t od = out->dims[dd];
        int64_t c = od ? i % od : 0;
        i = od ? i / od : 0;
        if (k >= 0) {
            if (in->dims[k] != 1)
                idx += c * stride;
            stride *= in->dims[k];
        }
    }
    return idx;
}

static double sign_d(double x)
{
    return x > 0 ? 1 : x < 0 ? -1 : x;
}

static double softplus_d(double x)
{
    return (x > 0 ? x : 0) + log1p(exp(-fabs(x)));
}

static double hsig_d(double x, double al, double be)
{
    double t = x * al + be;
    return t < 0 ? 0 : t > 1 ? 1 : t;
}

static double pymod_d(double a, double b)
{
    double r = fmod(a, b);
    return r != 0 && (r < 0) != (b < 0) ? r + b : r;
}

/* the operator on the float family, computed in double (a, b: operands) */
static double fold_f(int id, int var, double a, double b, double v1, double v2)
{
    switch (id) {
    case E_Abs: return fabs(a);
    case E_Neg: return -a;
    case E_Sqrt: return sqrt(a);
    case E_Exp: return exp(a);
    case E_Log: return log(a);
    case E_Reciprocal: return 1 / a;
    case E_Floor: return floor(a);
    case E_Ceil: return ceil(a);
    case E_Round: return nearbyint(a);
    case E_Erf: return erf(a);
    case E_Tanh: return tanh(a);
    case E_Sigmoid: return 1 / (1 + exp(-a));
    case E_Relu: return a < 0 ? 0 : a;
    case E_LeakyRelu: return a < 0 ? v1 * a : a;
    case E_Elu: return a < 0 ? v1 * (exp(a) - 1) : a;
    case E_Selu: return v2 * (a > 0 ? a : v1 * exp(a) - v1);
    case E_Celu: return a > 0 ? a : v1 * (exp(a / v1) - 1);
    case E_HardSigmoid: return hsig_d(a, v1, v2);
    case E_HardSwish: return a * hsig_d(a, v1, v2);
    case E_Softplus: return softplus_d(a);
    case E_Softsign: return a / (1 + fabs(a));
    case E_Sign: return sign_d(a);
    case E_Gelu:
        return var ? 0.5 * a * (1 + tanh(v2 * (a + 0.044715 * a * a * a))) : 0.5 * a * (1 + erf(a * v1));
    case E_Mish: return a * tanh(softplus_d(a));
    case E_Swish: return a / (1 + exp(-v1 * a));
    case E_SwiGLU: return a / (1 + exp(-v1 * a)) * b;
    case E_Binarizer: return a > v1 ? 1 : 0;
    case E_ThresholdedRelu: return a > v1 ? a : 0;
    case E_Shrink: return a < -v1 ? a + v2 : a > v1 ? a - v2 : 0;
    case E_IsNaN: return isnan(a) != 0;
    case E_IsInf: return isinf(a) && (a > 0 ? v2 != 0 : v1 != 0);
    case E_Sin: return sin(a);
    case E_Cos: return cos(a);
    case E_Tan: return tan(a);
    case E_Asin: return asin(a);
    case E_Acos: return acos(a);
    case E_Atan: return atan(a);
    case E_Sinh: return sinh(a);
    case E_Cosh: return cosh(a);
    case E_Asinh: return asinh(a);
    case E_Acosh: return acosh(a);
    case E_Atanh: return atanh(a);
    case E_Add: case E_Sum: case E_Mean: return a + b;
    case E_Sub: return a - b;
    case E_Mul: return a * b;
    case E_Div: return a / b;
    case E_Mod: return var ? fmod(a, b) : pymod_d(a, b);
    case E_Pow: return pow(a, b);
    case E_PRelu: return a < 0 ? b * a : a;
    case E_Min: return a < b || isnan(a) ? a : b;
    case E_Max: return a > b || isnan(a) ? a : b;
    case E_Equal: return a == b;
    case E_Less: return a < b;
    case E_LessOrEqual: return a <= b;
    case E_Greater: return a > b;
    case E_GreaterOrEqual: return a >= b;
    default: return 0;
    }
}

static int64_t ipow(int64_t a, int64_t b)
{
    if (b < 0)
        return a == 1 ? 1 : a == -1 ? ((b & 1) ? -1 : 1) : 0;
    uint64_t r = 1, p = (uint64_t)a;
    for (; b > 0; b >>= 1) {
        if (b & 1)
            r *= p;
        p *= p;
    }
    return (int64_t)r;
}

/* the operator on integers and bool, with the emitted C's wrapping (the caller narrows
 * the result to the output type); dt: element type of the operands. *ok = 0 if the
 * operator has no integer form. */
static int64_t fold_i(int id, int var, DType dt, int64_t a, int64_t b, int *ok)
{
    int u64 = dt == DT_UINT64;
    uint64_t ua = (uint64_t)a, ub = (uint64_t)b;
    switch (id) {
    case E_Abs: return a < 0 ? (int64_t)(0 - ua) : a;
    case E_Neg: return (int64_t)(0 - ua);
    case E_Relu: return a < 0 ? 0 : a;
    case E_Sign: return u64 ? ua > 0 : (a > 0) - (a < 0);
    case E_Not: return !a;
    case E_BitwiseNot: return (int64_t)~ua;
    case E_Add: case E_Sum: return (int64_t)(ua + ub);
    case E_Sub: return (int64_t)(ua - ub);
    case E_Mul: return (int64_t)(ua * ub);
    case E_Div:
        if (b == 0)
            return 0;
        if (u64)
            return (int64_t)(ua / ub);
        return b == -1 ? (int64_t)(0 - ua) : a / b;
    case E_Mod:
        if (b == 0)
            return 0;
        if (u64)
            return (int64_t)(ua % ub);
        if (b == -1)
            return 0;
        if (var || a % b == 0 || (a % b < 0) == (b < 0))
            return a % b;
        return a % b + b;
    case E_Pow: return ipow(a, b);
    case E_PRelu: return a < 0 ? (int64_t)(ub * ua) : a;
    case E_Min: return (u64 ? ua < ub : a < b) ? a : b;
    case E_Max: return (u64 ? ua > ub : a > b) ? a : b;
    case E_Equal: return a == b;
    case E_Less: return u64 ? ua < ub : a < b;
    case E_LessOrEqual: return u64 ? ua <= ub : a <= b;
    case E_Greater: return u64 ? ua > ub : a > b;
    case E_GreaterOrEqual: return u64 ? ua >= ub : a >= b;
    case E_And: return a && b;
    case E_Or: return a || b;
    case E_Xor: return (a != 0) != (b != 0);
    case E_BitShift:
        if (ub >= 64)
            return 0;
        return (int64_t)(var ? ua >> ub : ua << ub);
    case E_BitwiseAnd: return a & b;
    case E_BitwiseOr: return a | b;
    case E_BitwiseXor: return a ^ b;
    default:
        *ok = 0;
        return 0;
    }
}

/* Cast one element with the emitted code's conversion rules */
static void fold_convert(const void *src, DType from, int64_t si, void *dst, DType to, int64_t di)
{
    if (from == to) {
        size_t sz = dtype_size(to);
        memcpy((char *)dst + di * sz, (const char *)src + si * sz, sz);
    } else if (is_flt(from)) {
        elem_set_f64(dst, to, di, elem_get_f64(src, from, si));
    } else if (to == DT_FLOAT) {
        ((float *)dst)[di] = from == DT_UINT64 ? (float)(uint64_t)elem_get_i64(src, from, si)
                                               : (float)elem_get_i64(src, from, si);
    } else if (is_half(to)) {
        float f = from == DT_UINT64 ? (float)(uint64_t)elem_get_i64(src, from, si) : (float)elem_get_i64(src, from, si);
        elem_set_f64(dst, to, di, f);
    } else if (to == DT_DOUBLE) {
        elem_set_f64(dst, to, di, elem_get_f64(src, from, si));
    } else {
        elem_set_i64(dst, to, di, elem_get_i64(src, from, si));
    }
}

static int ew_fold(Graph *g, Node *n, Diag *d)
{
    const EwDef *o = ew_of(n);
    if (!all_inputs_const(g, n))
        return 0;
    int var = ew_variant(o, n, d);
    if (var < 0)
        return -1;
    Value *y = node_out(g, n, 0);
    int nin = present_inputs(n);
    if (nin > 8)
        return 0;
    const Value *ins[8] = {0};
    for (int i = 0; i < nin; i++)
        ins[i] = node_in(g, n, i);
    const Value *x = ins[0];
    Value view;
    if (o->id == E_PRelu) {
        if (prelu_slope_view(ins[0], ins[1], &view))
            return 0;
        ins[1] = &view;
    } else if (o->kind == K_BINARY || o->id == E_Pow) {
        int r = old_broadcast_view(n, ins[0], ins[1], &view);
        if (r < 0)
            return 0;
        if (r > 0)
            ins[1] = &view;
    }
    int64_t numel = value_numel(y);
    if (numel < 0)
        return 0;
    /* keep the output's shape: value_make_const takes dims that may alias y's */
    int64_t dims[KD_MAX_RANK];
    memcpy(dims, y->dims, sizeof dims);
    DType out = y->dtype;
    int rank = y->rank;
    void *data = value_make_const(g, y, out, rank, dims);
    if (!data)
        return diag_error(d, n, "out of memory");
    double v1, v2;
    ew_attrs(o, n, &v1, &v2);
    for (int64_t i = 0; i < numel; i++) {
        int64_t j[8];
        for (int k = 0; k < nin; k++)
            j[k] = !ins[k] || value_numel(ins[k]) == 1 ? 0 : bcast_index(y, ins[k], i);
        switch (o->id) {
        case E_Cast:
        case E_CastLike:
            fold_convert(x->data, x->dtype, i, data, out, i);
            continue;
        case E_BitCast:
            memcpy((char *)data + i * dtype_size(out), (const char *)x->data + i * dtype_size(out), dtype_size(out));
            continue;
        case E_Where: {
            const Value *src = elem_get_i64(x->data, DT_BOOL, j[0]) ? ins[1] : ins[2];
            size_t sz = dtype_size(out);
            memcpy((char *)data + i * sz, (const char *)src->data + (src == ins[1] ? j[1] : j[2]) * sz, sz);
            continue;
        }
        case E_Clip: {
            int old = n->opset > 0 && n->opset < 11; /* bounds are attributes */
            const Value *lo = old ? NULL : ins[1], *hi = old ? NULL : ins[2];
            if (is_flt(x->dtype)) {
                double a = elem_get_f64(x->data, x->dtype, i);
                if (old ? node_attr(n, "min") != NULL : lo != NULL) {
                    double l = old ? attr_float(n, "min", 0) : elem_get_f64(lo->data, lo->dtype, 0);
                    a = a < l ? l : a;
                }
                if (old ? node_attr(n, "max") != NULL : hi != NULL) {
                    double h = old ? attr_float(n, "max", 0) : elem_get_f64(hi->data, hi->dtype, 0);
                    a = a > h ? h : a;
                }
                elem_set_f64(data, out, i, a);
            } else {
                int64_t a = elem_get_i64(x->data, x->dtype, i);
                int u64 = x->dtype == DT_UINT64;
                if (lo) {
                    int64_t l = elem_get_i64(lo->data, lo->dtype, 0);
                    a = (u64 ? (uint64_t)a < (uint64_t)l : a < l) ? l : a;
                }
                if (hi) {
                    int64_t h = elem_get_i64(hi->data, hi->dtype, 0);
                    a = (u64 ? (uint64_t)a > (uint64_t)h : a > h) ? h : a;
                }
                elem_set_i64(data, out, i, a);
            }
            continue;
        }
        default:
            break;
        }
        if (o->id == E_Pow && !is_flt(x->dtype) && is_flt(ins[1]->dtype)) {
            elem_set_f64(data, out, i, pow(elem_get_f64(x->data, x->dtype, j[0]), elem_get_f64(ins[1]->data, ins[1]->dtype, j[1])));
        } else if (is_flt(x->dtype)) {
            double a = elem_get_f64(x->data, x->dtype, j[0]);
            if (o->kind == K_UNARY)
                a = fold_f(o->id, var, a, 0, v1, v2);
            for (int k = 1; k < nin; k++)
                a = fold_f(o->id, var, a, elem_get_f64(ins[k]->data, ins[k]->dtype, j[k]), v1, v2);
            if (o->id == E_Mean)
                a /= nin;
            elem_set_f64(data, out, i, a);
        } else {
            int ok = 1;
            int64_t a = elem_get_i64(x->data, x->dtype, j[0]);
            if (o->kind == K_UNARY)
                a = fold_i(o->id, var, x->dtype, a, 0, &ok);
            for (int k = 1; k < nin; k++)
                a = fold_i(o->id, var, x->dtype, a, elem_get_i64(ins[k]->data, ins[k]->dtype, j[k]), &ok);
            if (!ok)
                return diag_error(d, n, "internal error: no integer folding for %s", o->op.name);
            elem_set_i64(data, out, i, a);
        }
    }
    return 1;
}

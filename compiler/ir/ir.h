/* kdcc IR: the floor everything stands on.
 *
 * One Graph per model. A Graph owns Values (tensors: name, dtype, static shape,
 * role, constant data) and Nodes (an operator applied to value ids, with typed
 * attributes). Nodes are kept in topological order. All memory comes from one
 * Arena per compilation and is freed at once.
 */
#ifndef KDCC_IR_H
#define KDCC_IR_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define KDCC_VERSION "0.1.0"

/* ------------------------------------------------------------------ arena */

typedef struct ArenaBlock ArenaBlock;
typedef struct Arena {
    ArenaBlock *head;
    size_t total;   /* bytes handed out, for reporting */
    size_t limit;   /* 0 = no limit; allocations past it fail */
} Arena;

void arena_init(Arena *a);
void arena_free(Arena *a);
/* Zeroed, 16-byte aligned memory; NULL on overflow or when the limit is hit. */
void *arena_alloc(Arena *a, size_t size);
void *arena_array(Arena *a, size_t count, size_t elem); /* checks count*elem overflow */
char *arena_strdup(Arena *a, const char *s);
char *arena_strndup(Arena *a, const char *s, size_t n);
char *arena_printf(Arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ------------------------------------------------------------------ dtypes */

/* Numbering is ONNX's TensorProto.DataType, so import needs no table. */
typedef enum DType {
    DT_UNDEFINED = 0,
    DT_FLOAT = 1,
    DT_UINT8 = 2,
    DT_INT8 = 3,
    DT_UINT16 = 4,
    DT_INT16 = 5,
    DT_INT32 = 6,
    DT_INT64 = 7,
    DT_STRING = 8,
    DT_BOOL = 9,
    DT_FLOAT16 = 10,
    DT_DOUBLE = 11,
    DT_UINT32 = 12,
    DT_UINT64 = 13,
    DT_COMPLEX64 = 14,
    DT_COMPLEX128 = 15,
    DT_BFLOAT16 = 16,
    DT_FLOAT8E4M3FN = 17,
    DT_FLOAT8E4M3FNUZ = 18,
    DT_FLOAT8E5M2 = 19,
    DT_FLOAT8E5M2FNUZ = 20,
    DT_UINT4 = 21,
    DT_INT4 = 22,
    DT_FLOAT4E2M1 = 23,
    DT_FLOAT8E8M0 = 24,
    DT_UINT2 = 25,
    DT_INT2 = 26,
    DT_COUNT_
} DType;

const char *dtype_name(DType t);      /* ONNX text name: "float", "int64", ... ; "?" if unknown */
DType dtype_from_name(const char *s); /* DT_UNDEFINED if unknown */
size_t dtype_size(DType t);           /* bytes of one element in memory; 0 for string/sub-byte/unknown */
const char *dtype_ctype(DType t);     /* C type in emitted code: "float", "int64_t", "bool", "uint16_t" (fp16) ...; NULL if none */
int dtype_is_float(DType t);          /* float, double (types computed as real numbers in C) */
int dtype_is_int(DType t);            /* signed or unsigned integer types (not bool) */
int dtype_is_signed(DType t);
int dtype_supported(DType t);         /* has a C representation kdcc can compute with */

/* ------------------------------------------------------------------ diagnostics */

/* One place where errors are formatted: "file: node 'name' (Op): message".
 * Functions return a status (0 ok, -1 error) and report here. Only main exits. */
typedef struct Diag {
    const char *file;      /* input file, for messages */
    char msg[1024];        /* first error (the one printed) */
    int errors;
    int warnings;
    int quiet_warnings;
    int unsupported;       /* the first error says kdcc does not (yet) support something valid */
    char need_const[256];  /* set when a graph input must be bound to a constant (--const NAME=FILE) */
} Diag;

struct Node;
void diag_init(Diag *d, const char *file);
/* Record an error. node may be NULL. Returns -1 so callers can `return diag_error(...)`. */
int diag_error(Diag *d, const struct Node *node, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int diag_verror(Diag *d, const struct Node *node, const char *fmt, va_list ap);
/* An error for valid input that kdcc does not support (operator, dtype, attribute value):
 * same as diag_error, but marks the diagnostic so test runners count it as a skip. */
int diag_unsupported(Diag *d, const struct Node *node, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void diag_warn(Diag *d, const struct Node *node, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void diag_print(const Diag *d, FILE *f); /* prints "kdcc: error: <msg>\n" if any */

/* ------------------------------------------------------------------ writer */

/* The only way text is produced: printf-style appends to a growing buffer, with indentation. */
typedef struct Writer {
    char *buf;
    size_t len, cap;
    int indent;     /* current indentation level (4 spaces each) */
    int at_bol;     /* at beginning of line: indentation pending */
    int oom;        /* an allocation failed; the text is incomplete */
} Writer;

void w_init(Writer *w);
void w_free(Writer *w);
void w_printf(Writer *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void w_vprintf(Writer *w, const char *fmt, va_list ap);
void w_puts(Writer *w, const char *s);   /* appends as is (indentation applied at line starts) */
void w_line(Writer *w, const char *fmt, ...) __attribute__((format(printf, 2, 3))); /* printf + '\n' */
void w_open(Writer *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));  /* line ending in " {", indent++ */
void w_close(Writer *w);                 /* indent--, "}" line */
/* Literals that round-trip exactly in C99: floats as "1.5f", "(-INFINITY)", "NAN"; doubles without suffix. */
void w_float(Writer *w, float v);
void w_double(Writer *w, double v);
void w_int64(Writer *w, int64_t v);  /* valid C99 for INT64_MIN too */
/* write the whole buffer to path atomically (tmp + rename); 0 ok */
int w_save_atomic(const Writer *w, const char *path, Diag *d);

/* ------------------------------------------------------------------ attributes */

typedef enum AttrType {
    AT_UNDEFINED = 0,
    AT_FLOAT = 1,
    AT_INT = 2,
    AT_STRING = 3,
    AT_TENSOR = 4,
    AT_GRAPH = 5,
    AT_FLOATS = 6,
    AT_INTS = 7,
    AT_STRINGS = 8,
    AT_TENSORS = 9,
    AT_GRAPHS = 10,
    AT_SPARSE_TENSOR = 11,
    AT_SPARSE_TENSORS = 12,
    AT_TYPE_PROTO = 13,
    AT_TYPE_PROTOS = 14
} AttrType; /* ONNX AttributeProto.AttributeType numbering */

#define KD_MAX_RANK 8

/* A constant tensor (attribute value, or the payload of a constant Value). */
typedef struct Tensor {
    DType dtype;
    int rank;
    int64_t dims[KD_MAX_RANK];
    void *data;        /* packed elements in native layout (bool: 1 byte each; fp16: uint16_t bits) */
    size_t nbytes;
    const char *name;  /* optional */
} Tensor;

typedef struct Attr {
    const char *name;
    AttrType type;
    const char *ref_attr_name; /* for function bodies (refused for now) */
    double f;          /* AT_FLOAT (stored as double, ONNX value is float) */
    int64_t i;         /* AT_INT */
    const char *s;     /* AT_STRING (NUL-terminated; slen gives the byte length) */
    size_t slen;
    Tensor *t;         /* AT_TENSOR */
    int n;             /* count for list kinds */
    double *floats;    /* AT_FLOATS */
    int64_t *ints;     /* AT_INTS */
    const char **strings; /* AT_STRINGS */
    Tensor **tensors;  /* AT_TENSORS */
} Attr;

/* ------------------------------------------------------------------ values and nodes */

typedef enum ValueRole {
    VR_INTERMEDIATE = 0,
    VR_INPUT,          /* graph input, data given at run time */
    VR_CONST,          /* initializer, Constant, or folded: data known at compile time */
    VR_STATE,          /* mutable state kept across runs (trainable parameters, optimizer moments,
                          running statistics): lives in the caller's state buffer, starts as `data`
                          (or zeros when data is NULL) */
} ValueRole;

typedef struct Value {
    const char *name;
    DType dtype;        /* DT_UNDEFINED until inferred */
    int rank;           /* -1 while unknown */
    int64_t dims[KD_MAX_RANK];          /* -1: not known yet */
    const char *dim_param[KD_MAX_RANK]; /* symbolic name of a dim (e.g. "N"), or NULL */
    ValueRole role;
    int is_output;      /* a graph output */
    int is_param;       /* trainable parameter (training graphs) */
    void *data;         /* VR_CONST: elements (see Tensor.data) */
    size_t nbytes;
    int producer;       /* index of producing node in g->nodes, -1 if none */
    int64_t offset;     /* arena offset set by the memory planner, -1 if not in the arena */
    int alias_of;       /* value id whose storage this value shares, -1 if none: a view, or the new
                           contents of a VR_STATE value written in place (an optimizer update) */
    int64_t state_offset; /* VR_STATE: byte offset in the state buffer (set by the memory planner) */
    int channels_last;  /* stored [N][spatial...][C] instead of [N][C][spatial...] (passes/layout.c: between a
                           kernel that writes that order and readers that want it); the shape stays NCHW */
    int is_scratch;     /* working memory of its producer's kernel (passes/scratch.c), an extra
                           output past the operator's own: not part of the model (not exported) */
} Value;

struct OpDef;

typedef struct Node {
    const char *name;     /* from ONNX (may be synthesised), for messages */
    const char *op_type;  /* "Conv" */
    const char *domain;   /* "" for the default domain */
    const struct OpDef *op; /* resolved definition, NULL until resolved */
    int opset;            /* opset version of the node's domain in force */
    int ninputs;
    int *inputs;          /* value ids; -1 for an omitted optional input */
    int noutputs;
    int *outputs;         /* value ids; -1 for an omitted optional output */
    int nattrs;
    Attr *attrs;
    int dead;             /* removed by a pass; compacted away by graph_compact */
    void *pass_data;      /* decisions of passes (fusion epilogue, tiling), owned by the arena */
    int block_m, block_n; /* register block chosen by --tune (compiler/cli/tune.c); 0 = the target's */
    int block_form;       /* kernel form chosen by --tune: 1 + an index into OpDef.tune_forms' list; 0 = the kernel's rule */
} Node;

typedef struct Graph {
    Arena *arena;
    const char *name;     /* graph name from the model */
    const char *file;     /* source file, for messages */
    int ir_version;
    int opset;            /* default-domain opset */
    const char *producer_name;
    const char *doc;

    Value *values;
    int nvalues, cap_values;
    Node **nodes;
    int nnodes, cap_nodes;
    int *inputs;          /* graph inputs, in order (value ids) */
    int ninputs;
    int *outputs;         /* graph outputs, in order (value ids) */
    int noutputs;

    /* string -> value id lookup */
    int *hash;
    int hash_cap;

    /* Rest of the model header, kept so printers/exporters can reproduce it.
     * nopsets == 0: only g->opset is known (printers then use it for domain ""). */
    int nopsets;
    const char **opset_domain;   /* opset_import entries in model order ("" = default domain) */
    int64_t *opset_version;
    const char *producer_version;
    const char *model_domain;
    int64_t model_version;

    /* code-generation target (compiler/ir/target.h) the kernels are tiled for; NULL = generic */
    const struct Target *target;
    /* threads a kernel may split a batch over (each thread its own images and its own
     * slice of the kernel's scratch; OpenMP pragmas guarded by _OPENMP, so a build
     * without OpenMP runs the same loop on one thread): 0 or 1 = none */
    int threads;
} Graph;

Graph *graph_new(Arena *a, const char *file);
/* Find a value by name; -1 if absent. */
int graph_find(const Graph *g, const char *name);
/* Find or create a value by name (new: role intermediate, dtype undefined, rank -1). -1 on OOM. */
int graph_value(Graph *g, const char *name);
/* Create a fresh value with a unique name derived from hint. -1 on OOM. */
int graph_new_value(Graph *g, const char *hint);
/* Append a node; inputs/outputs copied. Returns the node or NULL on OOM. */
Node *graph_add_node(Graph *g, const char *op_type, const char *name,
                     const int *inputs, int ninputs, const int *outputs, int noutputs);
/* Add an attribute slot to a node; returns it zeroed (name and type set) or NULL. */
Attr *node_add_attr(Graph *g, Node *n, const char *name, AttrType type);
/* Drop dead nodes, recompute producers. */
void graph_compact(Graph *g);
/* Recompute Value.producer for all values; detect duplicate producers. 0 ok. */
int graph_link(Graph *g, Diag *d);
/* Sort nodes topologically (stable); error naming a node on a cycle or an undefined input. */
int graph_toposort(Graph *g, Diag *d);

/* Shape helpers */
int64_t value_numel(const Value *v);     /* product of dims; -1 if unknown or overflow */
size_t value_bytes(const Value *v);      /* numel * dtype_size; 0 if unknown */
int value_shape_known(const Value *v);   /* rank >= 0 and all dims >= 0 */
void value_set_shape(Value *v, DType dt, int rank, const int64_t *dims);
/* "float[1,3,32,32]" into a caller buffer */
const char *value_type_str(const Value *v, char *buf, size_t n);
/* Multiply dims with overflow check; -1 on overflow or negative dims */
int64_t dims_numel(int rank, const int64_t *dims);

/* Node helpers */
static inline Value *node_in(const Graph *g, const Node *n, int i)
{
    return (i < n->ninputs && n->inputs[i] >= 0) ? &g->values[n->inputs[i]] : NULL;
}
static inline Value *node_out(const Graph *g, const Node *n, int i)
{
    return (i < n->noutputs && n->outputs[i] >= 0) ? &g->values[n->outputs[i]] : NULL;
}
const Attr *node_attr(const Node *n, const char *name);
int64_t attr_int(const Node *n, const char *name, int64_t def);
double attr_float(const Node *n, const char *name, double def);
const char *attr_string(const Node *n, const char *name, const char *def);
/* list attributes: returns count (and sets *out), or -1 if absent */
int attr_ints(const Node *n, const char *name, const int64_t **out);
int attr_floats(const Node *n, const char *name, const double **out);
const Tensor *attr_tensor(const Node *n, const char *name);

/* Constant data helpers */
int value_is_const(const Value *v);
/* Read element i of a constant of any numeric dtype, as double / int64. */
double const_get_f64(const Value *v, int64_t i);
int64_t const_get_i64(const Value *v, int64_t i);
double tensor_get_f64(const Tensor *t, int64_t i);
int64_t tensor_get_i64(const Tensor *t, int64_t i);
/* Store element i of data of dtype dt from double / int64 (with C conversion semantics, saturating where C is undefined). */
void elem_set_f64(void *data, DType dt, int64_t i, double x);
void elem_set_i64(void *data, DType dt, int64_t i, int64_t x);
double elem_get_f64(const void *data, DType dt, int64_t i);
int64_t elem_get_i64(const void *data, DType dt, int64_t i);
/* Make v a constant with given dtype/shape and freshly allocated zeroed data. NULL on OOM. */
void *value_make_const(Graph *g, Value *v, DType dt, int rank, const int64_t *dims);
/* Read a constant 1-D (or scalar) integer tensor into out[max]; returns count or -1. */
int const_ints(const Value *v, int64_t *out, int max);

/* float16 / bfloat16 conversions (round to nearest even) */
float kd_half_to_float(uint16_t h);
uint16_t kd_float_to_half(float f);
float kd_bf16_to_float(uint16_t h);
uint16_t kd_float_to_bf16(float f);

/* Graph dump in ONNX textual syntax lives in frontends (text printer). */

#endif

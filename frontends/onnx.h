/* ONNX frontends: binary import (protobuf-c, schema compiled at build time from
 * the system onnx.proto) and the ONNX textual syntax (re2c lexer, recursive-descent
 * parser, printer). */
#ifndef KDCC_FRONTENDS_ONNX_H
#define KDCC_FRONTENDS_ONNX_H

#include "compiler/ir/ir.h"

typedef struct ImportOptions {
    int inputs_as_params;     /* graph inputs that have initializers stay inputs (default: constants) */
    size_t max_model_bytes;   /* refuse larger files; 0 = default (2 GiB) */
} ImportOptions;

/* Read an .onnx file into a new graph in arena a. NULL with diagnostic on error. */
Graph *onnx_import_file(Arena *a, const char *path, const ImportOptions *o, Diag *d);
/* Same from memory; path is used for messages and to resolve external data (may be NULL). */
Graph *onnx_import_buffer(Arena *a, const uint8_t *buf, size_t len, const char *path,
                          const ImportOptions *o, Diag *d);
/* Read a serialized TensorProto (test_data_set_N/input_K.pb) into t. 0 ok. */
int onnx_read_tensor_file(Arena *a, const char *path, Tensor *t, Diag *d);

/* Textual syntax. */
Graph *onnx_text_parse(Arena *a, const char *text, size_t len, const char *path, Diag *d);
Graph *onnx_text_parse_file(Arena *a, const char *path, Diag *d);
/* Print a graph in the textual syntax (with all initializer data). */
void onnx_text_print(const Graph *g, Writer *w);

/* Read a model by extension/content: .onnx binary or textual syntax. */
Graph *model_load(Arena *a, const char *path, const ImportOptions *o, Diag *d);

#endif

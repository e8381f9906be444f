/* ONNX export: a Graph written as an ONNX ModelProto (protobuf-c, the same schema
 * the importer reads), so that a trained or transformed model can be loaded by
 * ONNX Runtime, onnx.checker, or kdcc itself.
 *
 * What is written:
 *   - ir_version: 8, or the graph's if higher; opset_import: the graph's list
 *     (g->opset_domain/opset_version), else g->opset for the default domain, plus
 *     any domain a node uses that the list lacks (at the node's opset, or 1);
 *   - the model header the importer keeps (producer, domain, model_version, doc);
 *     producer "kdcc" when the graph has none;
 *   - graph inputs (g->inputs, in order) and outputs (g->outputs) with element
 *     types and shapes; a dim that is not known keeps its symbolic name (dim_param);
 *   - an initializer (raw_data, little-endian) for every constant value a live node
 *     or a graph output uses and no live node produces; a constant that is also in
 *     g->inputs is written as both (an input with a default value);
 *   - value_info for intermediate values whose element type is known;
 *   - the live nodes in order with names, domains and all attribute kinds the IR
 *     holds (float, int, string, tensor, floats, ints, strings, tensors).
 * The file is written atomically (temporary file + rename).
 */
#ifndef KDCC_FRONTENDS_ONNX_EXPORT_H
#define KDCC_FRONTENDS_ONNX_EXPORT_H

#include "compiler/ir/ir.h"

/* Write g to path as a binary .onnx file. 0 ok, -1 with a diagnostic. */
int onnx_export_file(const Graph *g, const char *path, Diag *d);
/* Same into a malloc'd buffer (*buf freed by the caller). */
int onnx_export_buffer(const Graph *g, uint8_t **buf, size_t *len, Diag *d);

#endif

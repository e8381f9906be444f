"""Multiply-accumulates of one inference of an ONNX model at batch 1.

    /usr/bin/python3 bench/macs.py MODEL.onnx [...]   ->  "path<TAB>macs<TAB>conv_macs" per model

Counts the MACs of Conv, ConvTranspose, Gemm, MatMul, ConvInteger and
MatMulInteger (the usual convention: elementwise ops, pooling, normalisation
and activations are not counted). Shapes come from ONNX shape inference with
every symbolic input dimension bound to 1.
"""
import sys

import onnx
from onnx import shape_inference


def _dims(vi):
    t = vi.type.tensor_type
    if not t.HasField("shape"):
        return None
    out = []
    for d in t.shape.dim:
        if d.HasField("dim_value"):
            out.append(d.dim_value)
        else:
            return None
    return out


def _prod(xs):
    p = 1
    for x in xs:
        p *= x
    return p


def model_macs(path):
    m = onnx.load(path)
    inits = {i.name for i in m.graph.initializer}
    for vi in m.graph.input:
        if vi.name in inits:
            continue
        for d in vi.type.tensor_type.shape.dim:
            if not d.HasField("dim_value"):
                d.Clear()
                d.dim_value = 1
    m = shape_inference.infer_shapes(m, data_prop=True)
    shapes = {}
    for vi in list(m.graph.input) + list(m.graph.value_info) + list(m.graph.output):
        s = _dims(vi)
        if s is not None:
            shapes[vi.name] = s
    for i in m.graph.initializer:
        shapes[i.name] = list(i.dims)

    def attr(n, name, default):
        for a in n.attribute:
            if a.name == name:
                return onnx.helper.get_attribute_value(a)
        return default

    total = 0
    conv = 0
    unknown = []
    for n in m.graph.node:
        op = n.op_type
        if op not in ("Conv", "ConvInteger", "ConvTranspose", "Gemm", "MatMul", "MatMulInteger"):
            continue
        ins = [shapes.get(x) for x in n.input[:2]]
        out = shapes.get(n.output[0])
        if any(s is None for s in ins) or out is None:
            unknown.append(n.name or op)
            continue
        a, b = ins
        if op in ("Conv", "ConvInteger"):
            c = _prod(out) * b[1] * _prod(b[2:])  # W is [M, C/group, k...]
            total += c
            conv += c
        elif op == "ConvTranspose":
            c = _prod(a) * b[1] * _prod(b[2:])  # W is [C, M/group, k...]
            total += c
            conv += c
        elif op == "Gemm":
            k = a[0] if attr(n, "transA", 0) else a[1]
            total += _prod(out) * k
        else:  # MatMul: broadcast batch dims, K is a's last dim (or its only dim)
            total += _prod(out) * a[-1]
    return total, unknown, conv


def main():
    for p in sys.argv[1:]:
        macs, unknown, conv = model_macs(p)
        if unknown:
            print("macs.py: %s: shapes unknown for %s" % (p, ", ".join(unknown)), file=sys.stderr)
        print("%s\t%d\t%d" % (p, macs, conv))


if __name__ == "__main__":
    main()

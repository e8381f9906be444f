#!/usr/bin/python3
"""Write a small untrained CNN student for Fashion-MNIST ([N,1,28,28] -> 10 logits)
to the path given, with PyTorch's default initialisation from a fixed seed:

    Conv 1->8 3x3 pad 1, Relu, MaxPool 2           (28x28 -> 14x14)
    Conv 8->16 3x3 pad 1, Relu                      (14x14)
    Conv 16->16 3x3 stride 2 pad 1, Relu            (7x7)
    Flatten, Gemm 784->10

Its backward pass has an activation derivative behind each kind of data gradient:
a Gemm's through the Flatten's Reshape, a Conv's (ConvTranspose) and a MaxPool's.

    /usr/bin/python3 tests/gradfuse/make_cnn_student.py OUT.onnx
"""
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def main():
    out = sys.argv[1]
    rng = np.random.default_rng(0)

    def uniform(shape, fan_in):
        b = 1.0 / np.sqrt(fan_in)
        return rng.uniform(-b, b, size=shape).astype(np.float32)

    inits = [
        numpy_helper.from_array(uniform((8, 1, 3, 3), 9), "conv1.weight"),
        numpy_helper.from_array(uniform((8,), 9), "conv1.bias"),
        numpy_helper.from_array(uniform((16, 8, 3, 3), 72), "conv2.weight"),
        numpy_helper.from_array(uniform((16,), 72), "conv2.bias"),
        numpy_helper.from_array(uniform((16, 16, 3, 3), 144), "conv3.weight"),
        numpy_helper.from_array(uniform((16,), 144), "conv3.bias"),
        numpy_helper.from_array(uniform((10, 784), 784), "fc.weight"),
        numpy_helper.from_array(uniform((10,), 784), "fc.bias"),
    ]
    conv = dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    nodes = [
        helper.make_node("Conv", ["image", "conv1.weight", "conv1.bias"], ["c1"], name="conv1", **conv),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("MaxPool", ["r1"], ["p1"], name="pool1", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "conv2.weight", "conv2.bias"], ["c2"], name="conv2", **conv),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("Conv", ["r2", "conv3.weight", "conv3.bias"], ["c3"], name="conv3", strides=[2, 2], **conv),
        helper.make_node("Relu", ["c3"], ["r3"], name="relu3"),
        helper.make_node("Flatten", ["r3"], ["flat"], name="flatten", axis=1),
        helper.make_node("Gemm", ["flat", "fc.weight", "fc.bias"], ["logits"], name="fc", transB=1),
    ]
    graph = helper.make_graph(
        nodes, "student_cnn",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 1, 28, 28])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="kdcc tests")
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, out)


if __name__ == "__main__":
    main()
